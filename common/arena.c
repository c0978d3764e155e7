/*
 * Bump-pointer arenas for per-request memory.  Chunks are chained; a large
 * request gets a chunk of its own size.  Reset keeps the first (newest)
 * chunk of the default size so a long-lived arena reused per request stays
 * off the heap in the steady state.
 */
#include "cm.h"

#include <string.h>

struct cm_arena_chunk {
    cm_arena_chunk *next;
    size_t cap;
    _Alignas(16) uint8_t data[];
};

static size_t chunk_size(const cm_arena *a)
{
    return a->chunk_sz ? a->chunk_sz : 16384;
}

void *cm_arena_alloc(cm_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!n)
        n = 8;
    if (!a->head || a->used + n > a->head->cap) {
        size_t cap = chunk_size(a);
        if (n > cap)
            cap = n;
        cm_arena_chunk *c = cm_malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        a->used = 0;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    a->total += n;
    return p;
}

void *cm_arena_memdup(cm_arena *a, const void *p, size_t n)
{
    void *q = cm_arena_alloc(a, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

void cm_arena_reset(cm_arena *a)
{
    cm_arena_chunk *keep = NULL, *c = a->head;
    while (c) {
        cm_arena_chunk *next = c->next;
        if (!keep && c->cap == chunk_size(a))
            keep = c;
        else
            cm_free(c);
        c = next;
    }
    if (keep)
        keep->next = NULL;
    a->head = keep;
    a->used = 0;
    a->total = 0;
}

void cm_arena_free(cm_arena *a)
{
    cm_arena_chunk *c = a->head;
    while (c) {
        cm_arena_chunk *next = c->next;
        cm_free(c);
        c = next;
    }
    a->head = NULL;
    a->used = a->total = 0;
}

void *cm_arena_pb_alloc(void *arena, size_t n)
{
    return cm_arena_alloc(arena, n);
}

void cm_arena_pb_free(void *arena, void *p)
{
    (void)arena;
    (void)p;
}
