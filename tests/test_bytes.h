/* Little-endian byte buffers and writers for the containers the tests
 * build byte by byte (zip, npy, torch pickles, safetensors), for tests that
 * need inputs no real tool writes. Implemented in tests/util/testutil.c
 * with the helpers of test_util.h. The names are short and unprefixed because the
 * tests call them hundreds of times; a test that includes this header
 * must not define functions of the same names. */
#ifndef VP_TEST_BYTES_H
#define VP_TEST_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- bytes, little-endian ------------------------------------------------ */
typedef struct bytes { uint8_t *p; size_t n, cap; } bytes;

void put(bytes *b, const void *d, size_t n);
void put8(bytes *b, unsigned v);
void put16(bytes *b, unsigned v);
void put32(bytes *b, uint32_t v);
void put64(bytes *b, uint64_t v);
void put_str(bytes *b, const char *s);                    /* without its NUL */
void wr16(uint8_t *p, unsigned v);                        /* overwrite in place */
void wr32(uint8_t *p, uint32_t v);
void wr64(uint8_t *p, uint64_t v);
unsigned rd16(const uint8_t *p);
uint32_t rd32(const uint8_t *p);

/* Raw deflate (no zlib or gzip wrapper, as zip members hold it) at level 6;
 * *out is malloc'ed. */
size_t deflate_raw(const void *in, size_t n, uint8_t **out);

/* ---- a zip writer (PKWARE APPNOTE) --------------------------------------- */
#define ZIP_MAX_MEMBERS 16
typedef struct zmember {
    const char *name;
    const void *data;
    size_t len;
    int method;         /* 0 stored, 8 deflate */
    bool align64;       /* torch.save: pad the local extra (id 0x4246 "FB") so data starts at a multiple of 64 */
} zmember;

/* Where build_zip put each part, for tests that damage them. */
typedef struct zlayout {
    size_t lho[ZIP_MAX_MEMBERS], data[ZIP_MAX_MEMBERS], cen[ZIP_MAX_MEMBERS], csize[ZIP_MAX_MEMBERS];
    size_t cd, cdsize, eocd64, loc64, eocd;
} zlayout;

/* At most ZIP_MAX_MEMBERS members. zip64: every central size/offset as
 * 0xFFFFFFFF with a 0x0001 extra, the local header as numpy's force_zip64
 * writes it, and the ZIP64 end record and locator (as zipfile does past
 * 65,535 entries or 4 GiB). L may be NULL. */
bytes build_zip(const zmember *m, int n, bool zip64, zlayout *L);

/* ---- an npy writer ------------------------------------------------------ */
/* As numpy.lib.format writes: magic, version `major` (1: 16-bit header
 * length, 2: 32-bit), the dict padded with spaces and ended by '\n' so that
 * the data starts at a multiple of 64, then the data. */
bytes make_npy(int major, const char *dict, const void *data, size_t len);

/* ---- a safetensors writer ----------------------------------------------- */
/* The 8-byte little-endian length of `header`, the header text as given (no
 * padding, so a test may give any text), then n data bytes: `data`, or when
 * data is NULL the bytes 0, 1, 2, ... (mod 256). tu_write_st (test_util.h)
 * writes the same to a file. */
bytes st_build(const char *header, const void *data, size_t n);

/* ---- pickle opcodes, as torch.save writes them (protocol 2) -------------- */
void pk_str(bytes *b, const char *s);                     /* BINUNICODE */
void pk_int(bytes *b, int32_t v);                         /* BININT */
void pk_global(bytes *b, const char *mod, const char *name);
/* torch._utils._rebuild_tensor_v2(persid(('storage', torch.<stype>, key,
 * 'cpu', numel)), offset, size, stride, False, OrderedDict()). legacy: the
 * persistent id is the legacy 6-tuple, ending in None (no view). */
void pk_tensor(bytes *b, const char *stype, const char *key, int64_t numel, int64_t offset, int nd,
               const int64_t *size, const int64_t *stride, bool legacy);

#endif
