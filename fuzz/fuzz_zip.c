/* The zip path (torch zip, TorchScript, npz): only inputs that start with
 * "PK", so that every run reaches the archive parser. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || data[0] != 'P' || data[1] != 'K') return -1;   /* -1: keep out of the corpus */
    fz_run(data, size, NULL);
    return 0;
}
