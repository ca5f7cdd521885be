/* The library's one allocation path (after Lua's lua_Alloc). Not installed. */
#ifndef VP_CORE_ALLOC_H
#define VP_CORE_ALLOC_H

#include <stddef.h>

#include "vitport/vitport.h"

/* Every allocation in the library goes through these: the calling thread's
 * current allocator (below), else the process default. Never inside an
 * OpenMP parallel region (debug builds abort): its worker threads have no
 * current allocator, so a block would go to the wrong one. */
void *vp__malloc(size_t n);
void *vp__calloc(size_t n, size_t size);
void *vp__realloc(void *p, size_t n);
void vp__free(void *p);
char *vp__strdup(const char *s);
char *vp__strndup(const char *s, size_t n);
typedef void *(*vp_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);
/* The process default, used where no handle's allocator is current (tests
 * install failing allocators with it); NULL restores malloc / realloc /
 * free. Set it only while no library object or cJSON tree is alive. */
void vp__set_allocator(vp_alloc_fn fn, void *ud);

/* ---- the current allocator: per thread, per call ---------------------------
 * Each public entry point of a handle (constructor, method, destructor)
 * makes the handle's allocator current for the call and restores the
 * previous one after, so nested calls (a conversion opening a source) and
 * other threads are unaffected. A constructor without an allocator argument
 * takes the current one (the process default outside the library). cJSON's
 * global hooks forward here too. */
typedef struct vp__alloc_scope {
    vp_allocator a;                 /* a copy: the handle may be freed inside the scope */
    const vp_allocator *prev;
} vp__alloc_scope;
/* Make a (NULL or a->alloc NULL: the process default) current until leave. */
void vp__alloc_enter(vp__alloc_scope *s, const vp_allocator *a);
void vp__alloc_leave(vp__alloc_scope *s);
/* The current allocator, NULL for the process default. */
const vp_allocator *vp__alloc_current(void);

/* The body of an entry point, run with allocator a (const vp_allocator *)
 * current: `return` the value of expr, of type T. */
#define VP__WITH_ALLOC(a, T, expr) do { \
        vp__alloc_scope vp__sc_; vp__alloc_enter(&vp__sc_, (a)); \
        T vp__r_ = (expr); vp__alloc_leave(&vp__sc_); return vp__r_; } while (0)
#define VP__WITH_ALLOC_VOID(a, expr) do { \
        vp__alloc_scope vp__sc_; vp__alloc_enter(&vp__sc_, (a)); \
        (expr); vp__alloc_leave(&vp__sc_); } while (0)
/* What a constructor stores in its handle: the allocator that is current
 * (by value; alloc NULL for the process default). */
static inline vp_allocator vp__alloc_get(void)
{
    const vp_allocator *c = vp__alloc_current();
    vp_allocator a = {NULL, NULL};
    return c ? *c : a;
}
/* How many allocations have failed so far (process-wide). */
size_t vp__alloc_failures(void);

#endif
