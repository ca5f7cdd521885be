/* The .npy reader: the magic string is put in front when the input lacks
 * it, so that every run reaches the header parser. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char magic[6] = "\x93NUMPY";
    if (size >= 6 && !memcmp(data, magic, 6)) { fz_run(data, size, NULL); return 0; }
    uint8_t *buf = malloc(size + 6);
    if (!buf) return 0;
    memcpy(buf, magic, 6);
    if (size) memcpy(buf + 6, data, size);
    fz_run(buf, size + 6, NULL);
    free(buf);
    return 0;
}
