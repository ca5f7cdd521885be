/* The library's single allocator path (after Lua's lua_Alloc). */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "internal.h"

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud; (void)osize;
    if (nsize == 0) { free(ptr); return NULL; }
    return realloc(ptr, nsize);
}

static vp_alloc_fn g_alloc = default_alloc;
static void *g_alloc_ud;

static void *cjson_malloc(size_t n) { return vp__malloc(n); }

void vp__set_allocator(vp_alloc_fn fn, void *ud)
{
    g_alloc = fn ? fn : default_alloc;
    g_alloc_ud = fn ? ud : NULL;
    /* cJSON (configs, summaries) allocates through the same path; NULL hooks
     * are cJSON's malloc/free, which the default allocator is too */
    cJSON_Hooks hooks = {cjson_malloc, vp__free};
    cJSON_InitHooks(fn ? &hooks : NULL);
}

/* Failed allocations so far: lets a caller of a library that reports every
 * failure alike (cJSON's parser) tell "out of memory" from "malformed". */
static _Atomic size_t g_failures;
size_t vp__alloc_failures(void) { return g_failures; }

void *vp__malloc(size_t n)
{
    void *p = g_alloc(g_alloc_ud, NULL, 0, n ? n : 1);
    if (!p) g_failures++;
    return p;
}

void *vp__calloc(size_t n, size_t size)
{
    size_t t;
    if (__builtin_mul_overflow(n, size, &t)) return NULL;
    void *p = vp__malloc(t);
    if (p) memset(p, 0, t ? t : 1);
    return p;
}

void *vp__realloc(void *p, size_t n)
{
    void *q = g_alloc(g_alloc_ud, p, 0, n ? n : 1);
    if (!q) g_failures++;
    return q;
}

void vp__free(void *p) { if (p) g_alloc(g_alloc_ud, p, 0, 0); }

char *vp__strndup(const char *s, size_t n)
{
    char *d = vp__malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *vp__strdup(const char *s) { return vp__strndup(s, strlen(s)); }
