/* The library's single allocator path (after Lua's lua_Alloc and zstd's
 * ZSTD_customMem): the calling thread's current allocator, which each public
 * entry point sets to its handle's for the duration of the call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#ifndef NDEBUG
#include <omp.h>
#endif

#include "internal.h"

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud; (void)osize;
    if (nsize == 0) { free(ptr); return NULL; }
    return realloc(ptr, nsize);
}

/* The process default (malloc / realloc / free; tests replace it with
 * vp__set_allocator), used when the thread has no current allocator. */
static vp_alloc_fn g_alloc = default_alloc;
static void *g_alloc_ud;

/* The calling thread's current allocator: the innermost entry point's
 * scope, NULL for the process default. */
static _Thread_local const vp_allocator *tl_current;

void vp__set_allocator(vp_alloc_fn fn, void *ud)
{
    g_alloc = fn ? fn : default_alloc;
    g_alloc_ud = fn ? ud : NULL;
}

/* cJSON's hooks are process-global: they forward to vp__malloc / vp__free,
 * i.e. to the calling thread's current allocator (malloc / free outside the
 * library), set once when the library is loaded. */
static void *cjson_malloc(size_t n) { return vp__malloc(n); }
__attribute__((constructor)) static void vp__alloc_init(void)
{
    cJSON_Hooks hooks = {cjson_malloc, vp__free};
    cJSON_InitHooks(&hooks);
}

const vp_allocator *vp__alloc_current(void) { return tl_current; }

void vp__alloc_enter(vp__alloc_scope *s, const vp_allocator *a)
{
    s->prev = tl_current;
    if (a && a->alloc) {
        s->a = *a;
        tl_current = &s->a;
    } else {
        s->a.alloc = NULL;
        s->a.ud = NULL;
        tl_current = NULL;
    }
}

void vp__alloc_leave(vp__alloc_scope *s) { tl_current = s->prev; }

/* Failed allocations so far: lets a caller of a library that reports every
 * failure alike (cJSON's parser) tell "out of memory" from "malformed". */
static _Atomic size_t g_failures;
size_t vp__alloc_failures(void) { return g_failures; }

/* The rule (vitport.h, "Allocators"): nothing allocates inside an OpenMP
 * parallel region, whose worker threads have no current allocator. Debug
 * builds check it. */
#ifndef NDEBUG
static void check_not_parallel(void)
{
    if (omp_in_parallel()) {
        fputs("vitport: internal error: allocation inside an OpenMP parallel region\n", stderr);
        abort();
    }
}
#else
static inline void check_not_parallel(void) {}
#endif

static void *call(void *ptr, size_t nsize)
{
    check_not_parallel();
    const vp_allocator *a = tl_current;
    return a ? a->alloc(a->ud, ptr, 0, nsize) : g_alloc(g_alloc_ud, ptr, 0, nsize);
}

void *vp__malloc(size_t n)
{
    void *p = call(NULL, n ? n : 1);
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
    void *q = call(p, n ? n : 1);
    if (!q) g_failures++;
    return q;
}

void vp__free(void *p) { if (p) call(p, 0); }

char *vp__strndup(const char *s, size_t n)
{
    char *d = vp__malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *vp__strdup(const char *s) { return vp__strndup(s, strlen(s)); }
