/*
 * Replaceable heap hooks.  Every allocation in skiff goes through
 * cm_malloc/cm_realloc/cm_free so tests can count outstanding blocks and
 * make the N-th allocation fail (fault injection, SQLite's faultsim).
 */
#include "cm.h"

#include <stdlib.h>
#include <string.h>

static void *libc_malloc(void *d, size_t n)
{
    (void)d;
    return malloc(n);
}
static void *libc_realloc(void *d, void *p, size_t n)
{
    (void)d;
    return realloc(p, n);
}
static void libc_free(void *d, void *p)
{
    (void)d;
    free(p);
}

static cm_allocator cur = {NULL, libc_malloc, libc_realloc, libc_free};

void cm_allocator_set(const cm_allocator *a)
{
    if (a)
        cur = *a;
    else
        cur = (cm_allocator){NULL, libc_malloc, libc_realloc, libc_free};
}

void *cm_malloc(size_t size)
{
    return cur.malloc(cur.data, size ? size : 1);
}

void *cm_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = cm_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *cm_realloc(void *ptr, size_t size)
{
    return cur.realloc(cur.data, ptr, size ? size : 1);
}

void cm_free(void *ptr)
{
    if (ptr)
        cur.free(cur.data, ptr);
}

void *cm_memdup(const void *p, size_t n)
{
    void *q = cm_malloc(n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *cm_strdup(const char *s)
{
    return cm_memdup(s, strlen(s) + 1);
}
