/*
 * The table of formats and vp_source_open: sniff the leading bytes, let the
 * first reader that recognises them fill the source, narrow it to the key.
 * Core (src/core/source.c) supplies the source object, the tables and the
 * narrowing, and reaches a reader only through the vp_format it records.
 */
#include <string.h>

#include "format/format.h"

/* ---- sniffing ------------------------------------------------------------ */
static bool sniff_zip(const uint8_t *b, uint64_t n)
{
    return n >= 4 && b[0] == 'P' && b[1] == 'K' && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6));
}

static bool sniff_npy(const uint8_t *b, uint64_t n) { return n >= 6 && !memcmp(b, "\x93NUMPY", 6); }

/* Before the pickle test: a safetensors header size such as 0x180 starts
 * with the bytes 0x80 0x01, like a pickle. A legacy torch file's byte 8 lies
 * inside its magic number, never '{'. */
static bool sniff_safetensors(const uint8_t *b, uint64_t n) { return n >= 9 && b[8] == '{'; }

/* Legacy torch: a pickle (protocol 2+), or protocol 0/1 where the magic
 * number 0x1950a86a20f9469cfc6c is written as LONG text. */
static bool sniff_torch_legacy(const uint8_t *b, uint64_t n)
{
    return (n >= 2 && b[0] == 0x80 && b[1] <= 5) || (n >= 27 && !memcmp(b, "L119547037146038801333356L\n", 27));
}

/* ---- opening ------------------------------------------------------------- */
/* A zip archive: torch.save / torch.jit.save, or NumPy's .npz. */
static int open_zip(vp_source *src)
{
    int rc = vp__zip_open(src);
    if (rc) return rc;
    if (vp__zip_has_suffix(src, "data.pkl")) return vp__open_torch_zip(src);
    if (vp__zip_has_suffix(src, ".npy")) return vp__open_npz(src);
    return vp__err(src, VP_ERR_UNSUPPORTED, "zip archive holds neither data.pkl (torch) nor .npy members (npz)");
}

/* What the readers keep beside the tables: their state (the zip directory,
 * safetensors' metadata) and the pickled value tree (in the arena; only the
 * root pointer to forget). */
static void free_reader_state(vp_source *src)
{
    vp__value_free_all(src);
}

static void free_zip(vp_source *src)
{
    vp__zip_free(src->state);
    src->state = NULL;
    free_reader_state(src);
}

static void free_safetensors(vp_source *src)
{
    vp__safetensors_free(src);
    free_reader_state(src);
}

const vp_format vp__format_zip = {"zip", sniff_zip, open_zip, vp__zip_inflate, free_zip, vp__zip_count, vp__zip_verify};
const vp_format vp__format_safetensors = {"safetensors", sniff_safetensors, vp__open_safetensors, NULL, free_safetensors, NULL, NULL};
static const vp_format FMT_NPY = {"npy", sniff_npy, vp__open_npy, NULL, free_reader_state, NULL, NULL};
static const vp_format FMT_TORCH_LEGACY = {"torch-legacy", sniff_torch_legacy, vp__open_torch_legacy, NULL, free_reader_state, NULL, NULL};

const vp_format *const vp__formats[] = {&vp__format_zip, &FMT_NPY, &vp__format_safetensors, &FMT_TORCH_LEGACY, NULL};

static int vp_source_open__impl(vp_source **out, const char *path, const char *key)
{
    int rc = vp__source_new(out, path);
    if (rc) return rc;
    vp_source *src = *out;
    const uint8_t *b = src->map.base;
    uint64_t n = src->map.size;
    const vp_format *f = NULL;
    for (const vp_format *const *p = vp__formats; *p && !f; p++)
        if ((*p)->sniff(b, n)) f = *p;
    if (!f) {
        if (n == 0) return vp__err(src, VP_ERR_FORMAT, "empty file");
        return vp__err(src, VP_ERR_FORMAT, "unrecognised format (not a torch zip/legacy file, npy, npz or safetensors)");
    }
    src->reader = f;
    rc = f->open(src);
    if (rc) return rc;
    return vp__source_narrow(src, key);
}

int vp_source_open_ex(vp_source **out, const char *path, const char *key, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_source_open__impl(out, path, key));
}

int vp_source_open(vp_source **out, const char *path, const char *key)
{
    return vp_source_open_ex(out, path, key, vp__alloc_current());
}
