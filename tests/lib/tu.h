/*
 * Test utilities shared by every cmocka suite: a counting allocator that
 * fails teardown when blocks leak, and fault injection that makes the N-th
 * allocation fail (SQLite's faultsimStep).
 */
#ifndef SKIFF_TU_H
#define SKIFF_TU_H

#include <stddef.h>
#include <stdint.h>

/* Installs the counting allocator (cm_allocator_set) and resets counters. */
void tu_alloc_install(void);
/* Blocks allocated through cm_* and not yet freed. */
long tu_alloc_outstanding(void);
/* Makes the allocation after `n` more succeed fail (n = 0: the next one);
 * -1 disables injection.  Returns how many injected failures happened. */
void tu_alloc_fail_after(long n);
long tu_alloc_failures(void);
/* Restores libc's allocator; returns outstanding blocks at that moment. */
long tu_alloc_uninstall(void);

/* A fresh empty directory under $TMPDIR (or /tmp) for one test; the path
 * is written into `out` (≥ 256 bytes).  0 or -errno. */
int tu_tmpdir(char *out, size_t cap);
/* rm -rf of a directory made by tu_tmpdir. */
void tu_rmrf(const char *path);

/* Seed for randomised tests: $SKIFF_SEED if set, else `dflt`.  Tests print
 * the seed they use so a failure can be replayed. */
uint64_t tu_seed(uint64_t dflt);

#endif
