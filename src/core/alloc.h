/* The library's one allocation path (after Lua's lua_Alloc). Not installed. */
#ifndef VP_CORE_ALLOC_H
#define VP_CORE_ALLOC_H

#include <stddef.h>

/* Every allocation in the library goes through these. Tests may install a
 * failing allocator to exercise out-of-memory paths. */
void *vp__malloc(size_t n);
void *vp__calloc(size_t n, size_t size);
void *vp__realloc(void *p, size_t n);
void vp__free(void *p);
char *vp__strdup(const char *s);
char *vp__strndup(const char *s, size_t n);
typedef void *(*vp_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);
/* NULL restores the default. cJSON is routed through it too (cJSON_InitHooks),
 * so set it only while no library object or cJSON tree is alive. */
void vp__set_allocator(vp_alloc_fn fn, void *ud);
/* How many allocations have failed so far (process-wide). */
size_t vp__alloc_failures(void);

#endif
