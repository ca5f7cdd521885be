/*
 * ZIP reader (APPNOTE 6.3.x subset) for torch.save / torch.jit.save archives
 * and numpy.savez(_compressed). See zip.h for what is accepted and refused.
 *
 * The central directory is trusted for sizes, CRCs and methods (local headers
 * may hold zeros when a data descriptor follows, or 0xFFFFFFFF with a ZIP64
 * extra as numpy writes); the local header is read only for where the data
 * starts and to check it names the same member.
 */
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/zip.h"

#define SIG_LOCAL   0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD    0x06054b50u
#define SIG_EOCD64  0x06064b50u
#define SIG_LOC64   0x07064b50u

#define EOCD_LEN 22u
#define LOC64_LEN 20u
#define EOCD64_LEN 56u
#define CENTRAL_LEN 46u
#define LOCAL_LEN 30u
#define MAX_COMMENT 65535u

#define FLAG_ENCRYPTED 0x0001u
#define FLAG_STRONG_ENCRYPTION 0x0040u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* What the end records say about the central directory. */
typedef struct cdir_info {
    uint64_t count, size, offset;
    uint64_t end;            /* where the central directory must end (next record) */
} cdir_info;

/* ---- end of central directory ------------------------------------------- */

/* Find the EOCD record: the last signature in the final 65535+22 bytes whose
 * comment runs exactly to the end of the file; failing that, the last one
 * whose comment fits (some writers pad files). */
static int find_eocd(vp_source *src, uint64_t *pos)
{
    const uint8_t *b = src->map.base;
    uint64_t n = src->map.size;
    if (n < EOCD_LEN) return vp__err(src, VP_ERR_FORMAT, "zip: file of %llu bytes is too short for an end-of-central-directory record", (unsigned long long)n);
    uint64_t lo = n - EOCD_LEN > MAX_COMMENT ? n - EOCD_LEN - MAX_COMMENT : 0;
    bool have_loose = false;
    uint64_t loose = 0;
    for (uint64_t p = n - EOCD_LEN + 1; p-- > lo;) {
        if (rd32(b + p) != SIG_EOCD) continue;
        uint64_t room = n - p - EOCD_LEN, clen = rd16(b + p + 20);
        if (clen == room) { *pos = p; return VP_OK; }
        if (clen < room && !have_loose) { have_loose = true; loose = p; }
    }
    if (have_loose) { *pos = loose; return VP_OK; }
    return vp__err(src, VP_ERR_FORMAT, "zip: no end-of-central-directory record (truncated or not a zip archive)");
}

/* Read the ZIP64 end record that the locator just before the EOCD points to. */
static int read_eocd64(vp_source *src, uint64_t loc, cdir_info *ci)
{
    const uint8_t *b = src->map.base;
    if (rd32(b + loc + 4) != 0 || rd32(b + loc + 16) > 1)
        return vp__err(src, VP_ERR_UNSUPPORTED, "zip: multi-disk (spanned) archives are not supported");
    uint64_t off = rd64(b + loc + 8);
    if (off > loc || loc - off < EOCD64_LEN)
        return vp__err(src, VP_ERR_FORMAT, "zip: ZIP64 end record at offset %llu lies outside the file", (unsigned long long)off);
    const uint8_t *r = b + off;
    if (rd32(r) != SIG_EOCD64) return vp__err(src, VP_ERR_FORMAT, "zip: bad ZIP64 end record signature at offset %llu", (unsigned long long)off);
    uint64_t rsize = rd64(r + 4);
    if (rsize < EOCD64_LEN - 12 || rsize > loc - off - 12)
        return vp__err(src, VP_ERR_FORMAT, "zip: ZIP64 end record claims %llu bytes", (unsigned long long)rsize);
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0)
        return vp__err(src, VP_ERR_UNSUPPORTED, "zip: multi-disk (spanned) archives are not supported");
    uint64_t here = rd64(r + 24);
    ci->count = rd64(r + 32);
    ci->size = rd64(r + 40);
    ci->offset = rd64(r + 48);
    ci->end = off;
    if (here != ci->count)
        return vp__err(src, VP_ERR_UNSUPPORTED, "zip: ZIP64 end record lists %llu of %llu entries on this disk (spanned archive)",
                       (unsigned long long)here, (unsigned long long)ci->count);
    return VP_OK;
}

static int read_end_records(vp_source *src, cdir_info *ci)
{
    uint64_t pos = 0;
    int rc = find_eocd(src, &pos);
    if (rc) return rc;
    const uint8_t *e = src->map.base + pos;
    if (pos >= LOC64_LEN && rd32(src->map.base + pos - LOC64_LEN) == SIG_LOC64) {
        rc = read_eocd64(src, pos - LOC64_LEN, ci);
        if (rc) return rc;
    } else {
        uint16_t disk = rd16(e + 4), cdisk = rd16(e + 6), here = rd16(e + 8);
        if (disk != 0 || cdisk != 0)
            return vp__err(src, VP_ERR_UNSUPPORTED, "zip: multi-disk (spanned) archives are not supported");
        ci->count = rd16(e + 10);
        ci->size = rd32(e + 12);
        ci->offset = rd32(e + 16);
        ci->end = pos;
        if (here != ci->count)
            return vp__err(src, VP_ERR_UNSUPPORTED, "zip: end record lists %u of %llu entries on this disk (spanned archive)",
                           (unsigned)here, (unsigned long long)ci->count);
    }
    if (ci->count > VP_ZIP_MAX_ENTRIES)
        return vp__err(src, VP_ERR_LIMIT, "zip: %llu entries (at most %u)", (unsigned long long)ci->count, VP_ZIP_MAX_ENTRIES);
    if (ci->offset > ci->end || ci->size > ci->end - ci->offset)
        return vp__err(src, VP_ERR_FORMAT, "zip: central directory (offset %llu, %llu bytes) lies past its end record at %llu",
                       (unsigned long long)ci->offset, (unsigned long long)ci->size, (unsigned long long)ci->end);
    /* Before allocating: each entry needs at least a fixed-size header. */
    uint64_t min;
    if (!vp__mul_u64(ci->count, CENTRAL_LEN, &min) || min > ci->size)
        return vp__err(src, VP_ERR_FORMAT, "zip: central directory of %llu bytes cannot hold %llu entries",
                       (unsigned long long)ci->size, (unsigned long long)ci->count);
    return VP_OK;
}

/* ---- central directory ---------------------------------------------------- */

/* Apply the ZIP64 extended-information extra field (id 0x0001): it holds, in
 * this order, the uncompressed size, compressed size and local header offset
 * for exactly those central fields that are 0xFFFFFFFF. */
static int apply_zip64_extra(vp_source *src, const char *name, const uint8_t *x, size_t xlen,
                             bool need_u, bool need_c, bool need_o, vp_zip_entry *e)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = rd16(x + i), len = rd16(x + i + 2);
        if (len > xlen - i - 4) return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': extra field runs past its header", name);
        if (id == 0x0001) {
            const uint8_t *f = x + i + 4;
            size_t need = 8u * ((size_t)need_u + need_c + need_o);
            if (len < need) return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': ZIP64 extra field too short (%u bytes, needs %zu)", name, (unsigned)len, need);
            if (need_u) { e->usize = rd64(f); f += 8; }
            if (need_c) { e->csize = rd64(f); f += 8; }
            if (need_o) e->header_offset = rd64(f);
            return VP_OK;
        }
        i += 4u + len;
    }
    if (need_u || need_c || need_o)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': sizes marked 0xFFFFFFFF but no ZIP64 extra field", name);
    return VP_OK;
}

/* Semantic checks on one member, from its central header alone. */
static int check_entry(vp_source *src, const vp_zip_entry *e)
{
    if (e->flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))
        return vp__err(src, VP_ERR_UNSUPPORTED, "zip: member '%s' is encrypted", e->name);
    if (e->method != VP_ZIP_STORED && e->method != VP_ZIP_DEFLATED)
        return vp__err(src, VP_ERR_UNSUPPORTED, "zip: member '%s' uses compression method %u (only stored and deflate are supported)",
                       e->name, (unsigned)e->method);
    if (e->method == VP_ZIP_STORED && e->csize != e->usize)
        return vp__err(src, VP_ERR_FORMAT, "zip: stored member '%s' has compressed size %llu but size %llu", e->name,
                       (unsigned long long)e->csize, (unsigned long long)e->usize);
    if (e->method == VP_ZIP_DEFLATED) {
        uint64_t most;
        if (!vp__mul_u64(e->csize, VP_ZIP_MAX_RATIO, &most) || !vp__add_u64(most, 1024, &most)) most = UINT64_MAX;
        if (e->usize > most)
            return vp__err(src, VP_ERR_LIMIT, "zip: member '%s' claims %llu bytes from %llu compressed (more than deflate's %u:1, a zip bomb)",
                           e->name, (unsigned long long)e->usize, (unsigned long long)e->csize, VP_ZIP_MAX_RATIO);
    }
    if (e->csize > src->map.size)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s' claims %llu compressed bytes in a file of %llu", e->name,
                       (unsigned long long)e->csize, (unsigned long long)src->map.size);
    return VP_OK;
}

/* Locate the data through the local header and check it lies before the
 * central directory. */
static int read_local(vp_source *src, vp_zip_entry *e, uint64_t cd_offset)
{
    const uint8_t *b = src->map.base;
    uint64_t h = e->header_offset;
    if (h > cd_offset || cd_offset - h < LOCAL_LEN)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': local header offset %llu lies outside the member area", e->name, (unsigned long long)h);
    if (rd32(b + h) != SIG_LOCAL)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': no local header at offset %llu", e->name, (unsigned long long)h);
    uint64_t nlen = rd16(b + h + 26), xlen = rd16(b + h + 28);
    uint64_t data = h + LOCAL_LEN + nlen + xlen;
    if (data > cd_offset || e->csize > cd_offset - data)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': data (%llu bytes at offset %llu) runs past the member area",
                       e->name, (unsigned long long)e->csize, (unsigned long long)data);
    if (nlen != e->name_len || memcmp(b + h + LOCAL_LEN, e->name, nlen) != 0)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': local header names a different member", e->name);
    e->data_offset = data;
    return VP_OK;
}

/* Parse the central header at *pos into e (name copied to *names). */
static int read_central(vp_source *src, const cdir_info *ci, uint64_t *pos, vp_zip_entry *e, char **names)
{
    const uint8_t *b = src->map.base;
    uint64_t p = *pos, end = ci->offset + ci->size;
    if (end - p < CENTRAL_LEN || rd32(b + p) != SIG_CENTRAL)
        return vp__err(src, VP_ERR_FORMAT, "zip: bad central directory header at offset %llu", (unsigned long long)p);
    const uint8_t *c = b + p;
    uint64_t nlen = rd16(c + 28), xlen = rd16(c + 30), klen = rd16(c + 32);
    if (end - p - CENTRAL_LEN < nlen + xlen + klen)
        return vp__err(src, VP_ERR_FORMAT, "zip: central directory header at offset %llu runs past the directory", (unsigned long long)p);
    const char *name = (const char *)c + CENTRAL_LEN;
    if (nlen == 0) return vp__err(src, VP_ERR_FORMAT, "zip: member with an empty name at offset %llu", (unsigned long long)p);
    if (memchr(name, 0, nlen)) return vp__err(src, VP_ERR_FORMAT, "zip: member name at offset %llu contains a NUL byte", (unsigned long long)p);
    memcpy(*names, name, nlen);
    (*names)[nlen] = 0;
    e->name = *names;
    e->name_len = (uint32_t)nlen;
    *names += nlen + 1;

    e->flags = rd16(c + 8);
    e->method = rd16(c + 10);
    e->crc32 = rd32(c + 16);
    e->csize = rd32(c + 20);
    e->usize = rd32(c + 24);
    e->header_offset = rd32(c + 42);
    if (rd16(c + 34) != 0 && rd16(c + 34) != 0xFFFF)
        return vp__err(src, VP_ERR_UNSUPPORTED, "zip: member '%s' starts on another disk (spanned archive)", e->name);
    int rc = apply_zip64_extra(src, e->name, c + CENTRAL_LEN + nlen, (size_t)xlen,
                               e->usize == 0xFFFFFFFFu, e->csize == 0xFFFFFFFFu, e->header_offset == 0xFFFFFFFFu, e);
    if (rc) return rc;
    if ((rc = check_entry(src, e))) return rc;
    if ((rc = read_local(src, e, ci->offset))) return rc;
    *pos = p + CENTRAL_LEN + nlen + xlen + klen;
    return VP_OK;
}

/* ---- consistency across members ----------------------------------------- */

typedef struct span { uint64_t start, end; long idx; } span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Members must not overlap: overlapping members let a small file claim
 * unbounded output (the "better zip bomb"), and no real writer makes them. */
static int check_overlaps(vp_source *src, const struct vp_zip *z)
{
    if (z->count < 2) return VP_OK;
    span *s = vp__malloc((size_t)z->count * sizeof *s);
    if (!s) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    for (long i = 0; i < z->count; i++) {
        const vp_zip_entry *e = &z->entries[i];
        s[i] = (span){e->header_offset, e->data_offset + e->csize, i};
    }
    qsort(s, (size_t)z->count, sizeof *s, cmp_span);
    int rc = VP_OK;
    for (long i = 1; i < z->count && !rc; i++)
        if (s[i].start < s[i - 1].end)
            rc = vp__err(src, VP_ERR_FORMAT, "zip: members '%s' and '%s' overlap", z->entries[s[i - 1].idx].name, z->entries[s[i].idx].name);
    vp__free(s);
    return rc;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Index the names; refuses duplicates (which member would a reader mean?). */
static int build_hash(vp_source *src, struct vp_zip *z)
{
    size_t size = 16;
    while (size < (size_t)z->count * 2) size *= 2;
    z->hash = vp__calloc(size, sizeof *z->hash);
    if (!z->hash) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    z->hash_mask = size - 1;
    for (long i = 0; i < z->count; i++) {
        const char *nm = z->entries[i].name;
        size_t h = (size_t)hash_name(nm) & z->hash_mask;
        while (z->hash[h]) {
            if (!strcmp(z->entries[z->hash[h] - 1].name, nm))
                return vp__err(src, VP_ERR_FORMAT, "zip: duplicate member name '%s'", nm);
            h = (h + 1) & z->hash_mask;
        }
        z->hash[h] = (uint32_t)i + 1;
    }
    return VP_OK;
}

/* The zip directory a zip-format source keeps as its format state (NULL
 * for any other source). */
static struct vp_zip *zip_of(const vp_source *src)
{
    return src && src->reader == &vp__format_zip ? src->state : NULL;
}

/* ---- open / free ---------------------------------------------------------- */

int vp__zip_open(vp_source *src)
{
    cdir_info ci = {0, 0, 0, 0};
    int rc = read_end_records(src, &ci);
    if (rc) return rc;
    struct vp_zip *z = vp__calloc(1, sizeof *z);
    if (!z) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    src->state = z;   /* the format's state: freed by vp_source_close, also on failure */
    /* Names total less than the directory size, so this bounds the block. */
    z->entries = vp__calloc(ci.count ? (size_t)ci.count : 1, sizeof *z->entries);
    z->crc_state = vp__calloc(ci.count ? (size_t)ci.count : 1, 1);
    z->crc_got = vp__calloc(ci.count ? (size_t)ci.count : 1, sizeof *z->crc_got);
    z->names = vp__malloc((size_t)ci.size + 1);
    if (!z->entries || !z->crc_state || !z->crc_got || !z->names) return vp__err(src, VP_ERR_NOMEM, "out of memory for %llu zip entries", (unsigned long long)ci.count);
    char *names = z->names;
    uint64_t pos = ci.offset;
    for (uint64_t i = 0; i < ci.count; i++) {
        if ((rc = read_central(src, &ci, &pos, &z->entries[i], &names))) return rc;
        z->count++;
    }
    if (pos != ci.offset + ci.size)
        return vp__err(src, VP_ERR_FORMAT, "zip: central directory holds %llu bytes after its %llu entries",
                       (unsigned long long)(ci.offset + ci.size - pos), (unsigned long long)ci.count);
    if ((rc = check_overlaps(src, z))) return rc;
    return build_hash(src, z);
}

static void ahead_stop(struct vp_zip *z);

void vp__zip_free(struct vp_zip *zip)
{
    if (!zip) return;
    ahead_stop(zip);
    vp__free(zip->entries);
    vp__free(zip->crc_state);
    vp__free(zip->crc_got);
    vp__free(zip->names);
    vp__free(zip->hash);
    vp__free(zip);
}

/* ---- lookups -------------------------------------------------------------- */

long vp__zip_count(const vp_source *src) { const struct vp_zip *z = zip_of(src); return z ? z->count : 0; }

const vp_zip_entry *vp__zip_entry(const vp_source *src, long i)
{
    return i >= 0 && i < vp__zip_count(src) ? &zip_of(src)->entries[i] : NULL;
}

const char *vp__zip_name(const vp_source *src, long i)
{
    const vp_zip_entry *e = vp__zip_entry(src, i);
    return e ? e->name : NULL;
}

int vp__zip_method(const vp_source *src, long i)
{
    const vp_zip_entry *e = vp__zip_entry(src, i);
    return e ? e->method : -1;
}

uint64_t vp__zip_csize(const vp_source *src, long i) { const vp_zip_entry *e = vp__zip_entry(src, i); return e ? e->csize : 0; }
uint64_t vp__zip_usize(const vp_source *src, long i) { const vp_zip_entry *e = vp__zip_entry(src, i); return e ? e->usize : 0; }
uint64_t vp__zip_data_offset(const vp_source *src, long i) { const vp_zip_entry *e = vp__zip_entry(src, i); return e ? e->data_offset : 0; }

long vp__zip_find(const vp_source *src, const char *name)
{
    if (!name || vp__zip_count(src) == 0) return -1;
    const struct vp_zip *z = zip_of(src);
    for (size_t h = (size_t)hash_name(name) & z->hash_mask; z->hash[h]; h = (h + 1) & z->hash_mask)
        if (!strcmp(z->entries[z->hash[h] - 1].name, name)) return (long)z->hash[h] - 1;
    return -1;
}

static bool ends_with(const vp_zip_entry *e, const char *suffix, size_t slen)
{
    return e->name_len >= slen && !memcmp(e->name + e->name_len - slen, suffix, slen);
}

long vp__zip_find_suffix(const vp_source *src, const char *suffix)
{
    if (!suffix) return -1;
    size_t slen = strlen(suffix);
    long found = -1;
    for (long i = 0; i < vp__zip_count(src); i++) {
        const vp_zip_entry *e = &zip_of(src)->entries[i];
        if (!ends_with(e, suffix, slen)) continue;
        if (e->name_len != slen && e->name[e->name_len - slen - 1] != '/') continue;
        if (found >= 0) return -2;
        found = i;
    }
    return found;
}

bool vp__zip_has_suffix(const vp_source *src, const char *suffix)
{
    if (!suffix) return false;
    size_t slen = strlen(suffix);
    for (long i = 0; i < vp__zip_count(src); i++)
        if (ends_with(&zip_of(src)->entries[i], suffix, slen)) return true;
    return false;
}

/* ---- data ------------------------------------------------------------------ */

static uint32_t crc_of(const uint8_t *p, uint64_t n)
{
    return (uint32_t)libdeflate_crc32(0, p, (size_t)n);
}

/* Member states; CRC_BUSY: one thread is computing it, others wait. */
enum { CRC_UNCHECKED = 0, CRC_GOOD = 1, CRC_BAD = 2, CRC_BUSY = 3 };

/* ---- checking ahead -----------------------------------------------------
 * A conversion copies stored members with copy_file_range, which never
 * brings their bytes into the process, so their CRC-32 costs one more read
 * of the data. Once a big archive's first stored member is checked, a
 * thread checks the others in archive order while the caller copies, and a
 * caller that needs a member the thread has not reached checks it itself
 * (or waits for the thread to finish the one it is on). No member's bytes
 * are handed out before its check is done. */
struct vp_crc_ahead {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    vp_source *src;          /* read only: the mapping and the zip table */
    uint8_t *want;           /* members to check */
};

static void zlock(struct vp_zip *z) { if (z->ahead) pthread_mutex_lock(&z->ahead->mu); }
static void zunlock(struct vp_zip *z) { if (z->ahead) pthread_mutex_unlock(&z->ahead->mu); }

/* Settle member i's state after a check that ran to the end (`done`) or
 * was stopped; wakes the waiters. */
static void settle(struct vp_zip *z, long i, bool done, uint32_t got)
{
    zlock(z);
    if (done) {
        z->crc_state[i] = got == z->entries[i].crc32 ? CRC_GOOD : CRC_BAD;
        z->crc_got[i] = got;
    } else {
        z->crc_state[i] = CRC_UNCHECKED;
    }
    if (z->ahead) pthread_cond_broadcast(&z->ahead->cv);
    zunlock(z);
}

/* CRC-32 of a stored member through the mapping, in bounded steps, dropping
 * the pages behind (they stay in the page cache for the copy that follows),
 * so a multi-gigabyte member costs no resident memory. False when stopped. */
static bool crc_stored(vp_source *src, const vp_zip_entry *e, const atomic_bool *stop, uint32_t *out)
{
    uint32_t c = 0;
    for (uint64_t done = 0; done < e->usize;) {
        /* the thread looks at its own flag only (set by vp_source_close) */
        if (stop ? atomic_load(stop) : src->cancel && atomic_load(src->cancel)) return false;
        uint64_t k = e->usize - done < VP_CRC_CHUNK ? e->usize - done : VP_CRC_CHUNK;
        c = (uint32_t)libdeflate_crc32(c, src->map.base + e->data_offset + done, (size_t)k);
        vp__map_release(&src->map, e->data_offset + done, k);
        done += k;
    }
    *out = c;
    return true;
}

static void *ahead_main(void *arg)
{
    struct vp_crc_ahead *a = arg;
    /* the source's allocator, should anything here allocate (nothing does) */
    vp__alloc_scope sc;
    vp__alloc_enter(&sc, &a->src->alloc);
    struct vp_zip *z = zip_of(a->src);
    for (long i = 0; i < z->count && !atomic_load(&a->stop); i++) {
        if (!a->want[i]) continue;
        pthread_mutex_lock(&a->mu);
        bool mine = z->crc_state[i] == CRC_UNCHECKED;
        if (mine) z->crc_state[i] = CRC_BUSY;
        pthread_mutex_unlock(&a->mu);
        if (!mine) continue;
        uint32_t got = 0;
        bool done = crc_stored(a->src, &z->entries[i], &a->stop, &got);
        settle(z, i, done, got);
    }
    vp__alloc_leave(&sc);
    return NULL;
}

/* Start the thread when the stored members to check are many and big
 * (VP_CRC_AHEAD_MIN bytes); best effort: without it callers check alone. */
static void ahead_start(vp_source *src)
{
    struct vp_zip *z = zip_of(src);
    z->ahead_tried = true;
    uint8_t *want = vp__calloc((size_t)z->count + 1, 1);
    if (!want) return;
    uint64_t bytes = 0;
    long n = 0;
    for (size_t t = 0; t < src->nview; t++) {   /* the members the (narrowed) tensors use */
        if (src->view[t].storage < 0 || (size_t)src->view[t].storage >= src->nstorages) continue;
        const vp_storage *st = &src->storages[src->view[t].storage];
        if (!st->crc || st->member < 0 || st->member >= z->count || want[st->member]) continue;
        const vp_zip_entry *e = &z->entries[st->member];
        if (e->method != VP_ZIP_STORED || z->crc_state[st->member] != CRC_UNCHECKED) continue;
        want[st->member] = 1;
        bytes += e->usize;
        n++;
    }
    struct vp_crc_ahead *a = n >= 2 && bytes >= VP_CRC_AHEAD_MIN ? vp__calloc(1, sizeof *a) : NULL;
    if (!a) { vp__free(want); return; }
    a->src = src;
    a->want = want;
    atomic_init(&a->stop, false);
    if (pthread_mutex_init(&a->mu, NULL)) { vp__free(want); vp__free(a); return; }
    if (pthread_cond_init(&a->cv, NULL)) { pthread_mutex_destroy(&a->mu); vp__free(want); vp__free(a); return; }
    z->ahead = a;   /* from here on the states are read and written under a->mu */
    if (pthread_create(&a->thr, NULL, ahead_main, a)) {
        z->ahead = NULL;
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        vp__free(want);
        vp__free(a);
    }
}

static void ahead_stop(struct vp_zip *z)
{
    struct vp_crc_ahead *a = z->ahead;
    if (!a) return;
    atomic_store(&a->stop, true);
    pthread_join(a->thr, NULL);
    z->ahead = NULL;
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    vp__free(a->want);
    vp__free(a);
}

bool vp__interrupted(vp_source *src)
{
    if (!src->cancel || !atomic_load(src->cancel)) return false;
    vp__err(src, VP_ERR_IO, "interrupted");
    return true;
}

static int crc_fail(vp_source *src, const vp_zip_entry *e, uint32_t got)
{
    return vp__err(src, VP_ERR_FORMAT, "zip: member '%s' fails its CRC-32 check: the archive says %08x, its bytes give %08x (the file is damaged)",
                   e->name, (unsigned)e->crc32, (unsigned)got);
}

/* Record the outcome of a check over all of member e's bytes (made by this
 * thread on a member nobody else is checking). */
static int crc_settle(vp_source *src, const vp_zip_entry *e, uint32_t got)
{
    long i = (long)(e - zip_of(src)->entries);
    settle(zip_of(src), i, true, got);
    return got == e->crc32 ? VP_OK : crc_fail(src, e, got);
}

/* An inflate stream over a member's compressed bytes, fed in chunks that
 * fit zlib's 32-bit counters. */
typedef struct zin { z_stream zs; const uint8_t *in; uint64_t in_left; vp_source *src; } zin;

#define ZIN_CANCELLED 100   /* not a zlib code */

/* Inflate until n bytes are produced, the stream ends or input runs out.
 * Returns Z_OK (n bytes), Z_STREAM_END, Z_BUF_ERROR (input exhausted),
 * ZIN_CANCELLED (src->cancel set; looked at every VP_IO_CHUNK bytes) or a
 * zlib error; *got receives the bytes produced. */
static int zin_run(zin *z, uint8_t *out, uint64_t n, uint64_t *got)
{
    *got = 0;
    while (*got < n) {
        if (z->src && vp__interrupted(z->src)) return ZIN_CANCELLED;
        if (z->zs.avail_in == 0 && z->in_left) {
            uInt k = z->in_left > 0x40000000u ? 0x40000000u : (uInt)z->in_left;
            z->zs.next_in = (Bytef *)(uintptr_t)z->in;   /* zlib does not write its input */
            z->zs.avail_in = k;
            z->in += k; z->in_left -= k;
        }
        uint64_t room = n - *got;
        uInt k = room > VP_IO_CHUNK ? VP_IO_CHUNK : (uInt)room;
        z->zs.next_out = out + *got;
        z->zs.avail_out = k;
        int rc = inflate(&z->zs, Z_NO_FLUSH);
        *got += k - z->zs.avail_out;
        if (rc == Z_STREAM_END) return rc;
        if (rc == Z_BUF_ERROR && z->zs.avail_in == 0 && z->in_left == 0) return Z_BUF_ERROR;
        if (rc != Z_OK && rc != Z_BUF_ERROR) return rc;
    }
    return Z_OK;
}

/* After `usize` bytes the stream must end, producing nothing more. */
static int check_stream_end(vp_source *src, zin *z, int last, const vp_zip_entry *e)
{
    if (last == Z_STREAM_END) return VP_OK;
    uint8_t extra;
    uint64_t got;
    int rc = zin_run(z, &extra, 1, &got);
    if (rc == ZIN_CANCELLED) return VP_ERR_IO;
    if (got) return vp__err(src, VP_ERR_FORMAT, "zip: member '%s' inflates to more than its declared %llu bytes", e->name, (unsigned long long)e->usize);
    if (rc == Z_STREAM_END) return VP_OK;
    if (rc == Z_BUF_ERROR) return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': deflate stream is truncated", e->name);
    return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': corrupt deflate stream (%s)", e->name, z->zs.msg ? z->zs.msg : "error");
}

/* zlib's allocations go through the library's allocator too. */
static voidpf zalloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return vp__calloc(items, size);
}

static void zfree(voidpf opaque, voidpf p)
{
    (void)opaque;
    vp__free(p);
}

static int zin_start(vp_source *src, const vp_zip_entry *e, zin *z)
{
    memset(z, 0, sizeof *z);
    z->zs.zalloc = zalloc;
    z->zs.zfree = zfree;
    z->in = src->map.base + e->data_offset;
    z->in_left = e->csize;
    z->src = src;
    int rc = inflateInit2(&z->zs, -15);   /* raw deflate: zip members have no zlib header */
    if (rc != Z_OK) return vp__err(src, rc == Z_MEM_ERROR ? VP_ERR_NOMEM : VP_ERR_IO, "zip: cannot start inflate for '%s'", e->name);
    return VP_OK;
}

/* The message for zin_run's result rc after `got` of `want` bytes; VP_OK
 * when all came. */
static int zin_result(vp_source *src, zin *z, const vp_zip_entry *e, int rc, uint64_t got, uint64_t want)
{
    if (rc == ZIN_CANCELLED) return VP_ERR_IO;   /* message set */
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s': corrupt deflate stream (%s)", e->name, z->zs.msg ? z->zs.msg : "error");
    if (rc == Z_MEM_ERROR) return vp__err(src, VP_ERR_NOMEM, "zip: out of memory inflating '%s'", e->name);
    if (got < want)
        return vp__err(src, VP_ERR_FORMAT, "zip: member '%s' inflates to %llu bytes, fewer than the %llu declared",
                       e->name, (unsigned long long)got, (unsigned long long)e->usize);
    return VP_OK;
}

static int inflate_member(vp_source *src, const vp_zip_entry *e, uint8_t *dst, uint64_t want)
{
    zin z;
    int rc = zin_start(src, e, &z);
    if (rc) return rc;
    uint64_t got;
    rc = zin_run(&z, dst, want, &got);
    int out = zin_result(src, &z, e, rc, got, want);
    if (out == VP_OK && want == e->usize) out = check_stream_end(src, &z, rc, e);
    inflateEnd(&z.zs);
    return out;
}

int vp__zip_inflate(vp_source *src, long entry, uint8_t *dst, uint64_t want)
{
    const vp_zip_entry *e = vp__zip_entry(src, entry);
    if (!e) return vp__err(src, VP_ERR_ARG, "zip: no member %ld", entry);
    if (want > e->usize)
        return vp__err(src, VP_ERR_ARG, "zip: member '%s': %llu bytes asked of %llu", e->name, (unsigned long long)want, (unsigned long long)e->usize);
    int rc;
    if (e->method == VP_ZIP_STORED) {
        if (want) memcpy(dst, src->map.base + e->data_offset, (size_t)want);
        rc = VP_OK;
    } else {
        rc = inflate_member(src, e, dst, want);
    }
    if (rc == VP_OK && want == e->usize) rc = crc_settle(src, e, crc_of(dst, want));
    return rc;
}

/* CRC-32 of a deflated member, inflated through a bounded buffer. */
static int crc_deflated(vp_source *src, const vp_zip_entry *e, uint32_t *out)
{
    uint8_t *buf = vp__malloc(VP_COPY_CHUNK);
    if (!buf) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    zin z;
    int rc = zin_start(src, e, &z);
    if (rc) { vp__free(buf); return rc; }
    uint32_t c = 0;
    uint64_t done = 0;
    int zr = Z_OK;
    while (done < e->usize) {
        uint64_t want = e->usize - done < VP_COPY_CHUNK ? e->usize - done : VP_COPY_CHUNK, got;
        zr = zin_run(&z, buf, want, &got);
        c = (uint32_t)libdeflate_crc32(c, buf, (size_t)got);
        done += got;
        if (got < want) { rc = zin_result(src, &z, e, zr, done, e->usize); break; }
    }
    if (rc == VP_OK) rc = check_stream_end(src, &z, zr, e);
    inflateEnd(&z.zs);
    vp__free(buf);
    *out = c;
    return rc;
}

int vp__zip_verify(vp_source *src, long entry, bool force)
{
    const vp_zip_entry *e = vp__zip_entry(src, entry);
    if (!e) return vp__err(src, VP_ERR_ARG, "zip: no member %ld", entry);
    struct vp_zip *z = zip_of(src);
    if (!z->ahead_tried && !src->no_crc && e->method == VP_ZIP_STORED && z->crc_state[entry] == CRC_UNCHECKED) {
        /* check this one first, then the others ahead */
        z->ahead_tried = true;
        int rc = vp__zip_verify(src, entry, force);
        ahead_start(src);
        return rc;
    }
    zlock(z);
    while (z->crc_state[entry] == CRC_BUSY) pthread_cond_wait(&z->ahead->cv, &z->ahead->mu);
    uint8_t st = z->crc_state[entry];
    uint32_t got = z->crc_got[entry];
    bool check = st == CRC_UNCHECKED && (force || !src->no_crc);
    if (check) z->crc_state[entry] = CRC_BUSY;   /* mine */
    zunlock(z);
    if (st == CRC_GOOD || (st == CRC_UNCHECKED && !check)) return VP_OK;
    if (st == CRC_BAD) return crc_fail(src, e, got);
    int rc;
    if (e->method == VP_ZIP_STORED) rc = crc_stored(src, e, NULL, &got) ? VP_OK : (vp__interrupted(src), VP_ERR_IO);
    else rc = crc_deflated(src, e, &got);
    settle(z, entry, rc == VP_OK, got);
    return rc ? rc : got == e->crc32 ? VP_OK : crc_fail(src, e, got);
}

int vp__zip_read(vp_source *src, long i, const uint8_t **data, size_t *len, uint8_t **owned, size_t max)
{
    *data = NULL;
    *owned = NULL;
    *len = 0;
    const vp_zip_entry *e = vp__zip_entry(src, i);
    if (!e) return vp__err(src, VP_ERR_ARG, "zip: no member %ld", i);
    if (e->usize > max)
        return vp__err(src, VP_ERR_LIMIT, "zip: member '%s' holds %llu bytes (at most %zu read whole)", e->name, (unsigned long long)e->usize, max);
    if (e->method == VP_ZIP_STORED) {
        const uint8_t *p = src->map.base + e->data_offset;
        int rc = crc_settle(src, e, crc_of(p, e->usize));
        if (rc) return rc;
        *data = p;
        *len = (size_t)e->usize;
        return VP_OK;
    }
    uint8_t *buf = vp__malloc(e->usize ? (size_t)e->usize : 1);
    if (!buf) return vp__err(src, VP_ERR_NOMEM, "out of memory inflating '%s' (%llu bytes)", e->name, (unsigned long long)e->usize);
    int rc = vp__zip_inflate(src, i, buf, e->usize);
    if (rc) { vp__free(buf); return rc; }
    *data = buf;
    *owned = buf;
    *len = (size_t)e->usize;
    return VP_OK;
}
