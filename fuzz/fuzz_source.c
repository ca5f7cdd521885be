/* Any input, through the format dispatch; also narrowed by a key, as
 * `--key model` would. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run(data, size, (size & 1) ? "model" : NULL);
    return 0;
}
