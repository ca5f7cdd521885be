/* CRC-32 throughput: zlib's crc32() against libdeflate's libdeflate_crc32()
 * over one buffer (default 256 MiB of pseudo-random bytes), best of 7 runs
 * each, interleaved. Built and run by bench/bench_crc.sh. */
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t n = (argc > 1 ? (size_t)atol(argv[1]) : 256) << 20;
    unsigned char *p = malloc(n);
    if (!p) return 1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; p[i] = (unsigned char)x; }
    double bz = 1e9, bd = 1e9;
    unsigned long cz = 0, cd = 0;
    for (int r = 0; r < 7; r++) {
        double t = now();
        uLong c = crc32(0L, Z_NULL, 0);
        for (size_t off = 0; off < n; off += 1u << 30) c = crc32(c, p + off, (uInt)(n - off < (1u << 30) ? n - off : (1u << 30)));
        t = now() - t; if (t < bz) bz = t; cz = c;
        t = now();
        uint32_t d = libdeflate_crc32(0, p, n);
        t = now() - t; if (t < bd) bd = t; cd = d;
    }
    if (cz != cd) { fprintf(stderr, "the CRCs differ: %08lx %08lx\n", cz, cd); return 1; }
    printf("buffer %zu MiB, crc %08lx\n", n >> 20, cz);
    printf("zlib %s crc32:          %7.3f s  %6.2f GB/s\n", zlibVersion(), bz, (double)n / bz / 1e9);
    printf("libdeflate %s crc32:   %7.3f s  %6.2f GB/s\n", LIBDEFLATE_VERSION_STRING, bd, (double)n / bd / 1e9);
    printf("ratio libdeflate/zlib: %.2fx faster\n", bz / bd);
    free(p);
    return 0;
}
