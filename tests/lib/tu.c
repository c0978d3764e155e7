/*
 * Counting and failing allocator for tests, plus temporary directories.
 * The counters are atomics because LMDB and libuv tests may allocate from
 * worker threads.
 */
#include "tu.h"

#include "cm.h"

#include <errno.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long outstanding;
static atomic_long fail_countdown = -1;
static atomic_long failures;

static int should_fail(void)
{
    long c = atomic_load(&fail_countdown);
    while (c >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) {
            if (c == 0) {
                atomic_fetch_add(&failures, 1);
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

static void *t_malloc(void *d, size_t n)
{
    (void)d;
    if (should_fail())
        return NULL;
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&outstanding, 1);
    return p;
}

static void *t_realloc(void *d, void *p, size_t n)
{
    (void)d;
    if (should_fail())
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&outstanding, 1);
    return q;
}

static void t_free(void *d, void *p)
{
    (void)d;
    if (p)
        atomic_fetch_sub(&outstanding, 1);
    free(p);
}

void tu_alloc_install(void)
{
    static const cm_allocator a = {NULL, t_malloc, t_realloc, t_free};
    atomic_store(&outstanding, 0);
    atomic_store(&fail_countdown, -1);
    atomic_store(&failures, 0);
    cm_allocator_set(&a);
}

long tu_alloc_outstanding(void)
{
    return atomic_load(&outstanding);
}

void tu_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

long tu_alloc_failures(void)
{
    return atomic_load(&failures);
}

long tu_alloc_uninstall(void)
{
    long n = atomic_load(&outstanding);
    atomic_store(&fail_countdown, -1);
    cm_allocator_set(NULL);
    return n;
}

int tu_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    int n = snprintf(out, cap, "%s/skiff-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return mkdtemp(out) ? 0 : -errno;
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

void tu_rmrf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t tu_seed(uint64_t dflt)
{
    const char *s = getenv("SKIFF_SEED");
    return s && s[0] ? strtoull(s, NULL, 0) : dflt;
}
