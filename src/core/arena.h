/* A bump allocator with a hard cap. Not installed. */
#ifndef VP_CORE_ARENA_H
#define VP_CORE_ARENA_H

#include <stddef.h>

typedef struct vp_arena {
    struct vp_arena_block *head;
    size_t used, cap;   /* bytes handed out, and the most allowed */
} vp_arena;
void vp__arena_init(vp_arena *a, size_t cap);
void *vp__arena_alloc(vp_arena *a, size_t n);          /* 16-aligned, zeroed; NULL past cap */
char *vp__arena_strndup(vp_arena *a, const char *s, size_t n);
void vp__arena_free(vp_arena *a);

#endif
