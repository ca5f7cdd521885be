/* The safetensors reader. A real file (byte 8 is '{') is used as it is;
 * otherwise the input is read as "JSON header, NUL, data" and the 8-byte
 * size is put in front, so the fuzzer need not guess a consistent size. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 9 && data[8] == '{') { fz_run(data, size, NULL); return 0; }
    if (size == 0 || data[0] != '{') return -1;
    const uint8_t *nul = memchr(data, 0, size);
    size_t hn = nul ? (size_t)(nul - data) : size;
    size_t rest = nul ? size - hn - 1 : 0;
    uint8_t *buf = malloc(8 + hn + rest);
    if (!buf) return 0;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, data, hn);
    if (rest) memcpy(buf + 8 + hn, nul + 1, rest);
    fz_run(buf, 8 + hn + rest, NULL);
    free(buf);
    return 0;
}
