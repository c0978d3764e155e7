/*
 * Unit tests for raft/io/wal: append and recover, hard state updates,
 * Raft's conflicting-suffix truncation, segment rollover and release, each
 * kind of on-disk damage (truncated file, flipped bit, zeroed tail, garbage
 * tail, damage before the last segment, missing segments), the directory
 * lock, and allocation failures injected at every step of a recovery and
 * append sequence.
 *
 * A model of the log (terms by index, payloads derived from index and
 * term) is kept next to the WAL; every reopen compares what recovery
 * returned with the model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tu.h"
#include "wal.h"

#define MAXIDX 4096
#define SMALL_SEG 4096

typedef struct fx {
    char dir[256];
    wal *w;
    wal_recovered rec;
    wal_options opt;
    uint64_t terms[MAXIDX]; /* model: term of each live index */
    uint64_t snap, last;    /* model: snapshot marker and last index */
} fx;

static uint32_t len_of(uint64_t index)
{
    return (uint32_t)(index * 37 % 120); /* 0 for some entries */
}

static uint8_t byte_of(uint64_t index, uint64_t term, size_t j)
{
    return (uint8_t)(index * 131 + term * 7 + j * 3 + 1);
}

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(tu_tmpdir(f->dir, sizeof f->dir), 0);
    strcat(f->dir, "/wal");
    f->opt.segment_size = SMALL_SEG;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    assert_int_equal(wal_close(f->w), 0);
    wal_recovered_free(&f->rec);
    char *slash = strrchr(f->dir, '/');
    *slash = 0;
    tu_rmrf(f->dir);
    free(f);
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

static int fx_open(fx *f)
{
    wal_recovered_free(&f->rec);
    return wal_open(f->dir, &f->opt, &f->w, &f->rec);
}

static void fx_reopen(fx *f)
{
    assert_int_equal(wal_close(f->w), 0);
    f->w = NULL;
    int rc = fx_open(f);
    if (rc)
        fail_msg("reopen: %s: %s", cm_err_name(rc), f->rec.errmsg);
}

/* Appends [from, to] with `term` (truncating the model from `from`). */
static void append_range(fx *f, uint64_t from, uint64_t to, uint64_t term,
                         const raft_hard_state *hs)
{
    size_t n = (size_t)(to - from + 1);
    raft_entry *e = calloc(n, sizeof *e);
    uint8_t *data = malloc(n * 120 + 1);
    assert_true(e && data);
    uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = from + i;
        e[i] = (raft_entry){.index = idx,
                            .term = term,
                            .len = len_of(idx),
                            .type = (uint32_t)(idx % 3)};
        for (size_t j = 0; j < e[i].len; j++)
            p[j] = byte_of(idx, term, j);
        e[i].buf = e[i].len ? p : NULL;
        p += e[i].len;
        f->terms[idx] = term;
    }
    int rc = wal_append(f->w, hs, e, n);
    if (rc)
        fail_msg("append %llu..%llu: %s: %s", (unsigned long long)from,
                 (unsigned long long)to, cm_err_name(rc), wal_errmsg(f->w));
    f->last = to;
    free(e);
    free(data);
}

/* Checks that recovery returned exactly the model's [snap+1, last]. */
static void check_rec(fx *f)
{
    const wal_recovered *r = &f->rec;
    assert_int_equal(r->snap_index, f->snap);
    if (r->n_entries != f->last - f->snap)
        fail_msg("recovered %zu entries, want %llu", r->n_entries,
                 (unsigned long long)(f->last - f->snap));
    for (size_t i = 0; i < r->n_entries; i++) {
        const raft_entry *e = &r->entries[i];
        uint64_t idx = f->snap + 1 + i;
        assert_int_equal(e->index, idx);
        assert_int_equal(e->term, f->terms[idx]);
        assert_int_equal(e->type, idx % 3);
        assert_int_equal(e->len, len_of(idx));
        for (size_t j = 0; j < e->len; j++)
            assert_int_equal(e->buf[j], byte_of(idx, e->term, j));
    }
    uint64_t li, lt;
    wal_last(f->w, &li, &lt);
    assert_int_equal(li, f->last);
}

/* Name of the k-th segment in sequence order (k < 0: from the end). */
static void seg_path(fx *f, int k, char *out, size_t cap)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    char names[64][64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 37 && n < 64)
            strcpy(names[n++], de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0],
          (int (*)(const void *, const void *))strcmp);
    if (k < 0)
        k += n;
    assert_true(k >= 0 && k < n);
    snprintf(out, cap, "%s/%s", f->dir, names[k]);
}

/* Offsets of the records in a segment file (up to the first zero
 * header); returns their count. */
static int record_offsets(const char *path, long *offs, int max)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    int n = 0;
    long off = 0;
    uint8_t h[9];
    while (n < max && fseek(fp, off, SEEK_SET) == 0 &&
           fread(h, 1, 9, fp) == 9) {
        uint32_t len = cm_be32_get(h);
        if (len == 0 && h[8] == 0)
            break;
        offs[n++] = off;
        off += 9 + (long)len;
    }
    fclose(fp);
    return n;
}

static void patch_file(const char *path, long off, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
    close(fd);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* ---- tests */

static void test_append_recover(void **state)
{
    fx *f = *state;
    assert_int_equal(fx_open(f), 0);
    check_rec(f);
    assert_int_equal(f->rec.hs.term, 0);
    raft_hard_state hs = {3, 2, 5};
    append_range(f, 1, 10, 3, &hs);
    assert_int_equal(wal_sync(f->w), 0);
    assert_int_equal(wal_sync(f->w), 0); /* nothing new: no-op */
    fx_reopen(f);
    check_rec(f);
    assert_int_equal(f->rec.hs.term, 3);
    assert_int_equal(f->rec.hs.vote, 2);
    assert_int_equal(f->rec.hs.commit, 5);
    append_range(f, 11, 40, 4, NULL);
    assert_int_equal(wal_sync(f->w), 0);
    fx_reopen(f);
    check_rec(f);
    uint64_t li, lt;
    wal_last(f->w, &li, &lt);
    assert_int_equal(li, 40);
    assert_int_equal(lt, 4);
    /* Close syncs what was appended after the last sync. */
    append_range(f, 41, 42, 4, NULL);
    fx_reopen(f);
    check_rec(f);
}

static void test_hard_state(void **state)
{
    fx *f = *state;
    assert_int_equal(fx_open(f), 0);
    for (uint64_t t = 1; t <= 50; t++) {
        raft_hard_state hs = {t, t % 3, t / 2};
        assert_int_equal(wal_append(f->w, &hs, NULL, 0), 0);
    }
    assert_int_equal(wal_sync(f->w), 0);
    fx_reopen(f);
    assert_int_equal(f->rec.hs.term, 50);
    assert_int_equal(f->rec.hs.vote, 2);
    assert_int_equal(f->rec.hs.commit, 25);
    assert_int_equal(f->rec.n_entries, 0);
    /* Hard state survives rollovers and releases that drop the segment
     * it was written in. */
    append_range(f, 1, 200, 50, NULL);
    assert_true(wal_segment_count(f->w) > 3);
    size_t before = wal_segment_count(f->w);
    assert_int_equal(wal_release(f->w, 190, 50), 0);
    assert_true(wal_segment_count(f->w) < before);
    f->snap = 190;
    fx_reopen(f);
    check_rec(f);
    assert_int_equal(f->rec.hs.term, 50);
    assert_int_equal(f->rec.snap_term, 50);
}

static void test_suffix_truncation(void **state)
{
    fx *f = *state;
    assert_int_equal(fx_open(f), 0);
    append_range(f, 1, 10, 1, NULL);
    /* A new leader's entries replace 6..10 (Raft §5.3). */
    append_range(f, 6, 8, 2, NULL);
    assert_int_equal(wal_sync(f->w), 0);
    fx_reopen(f);
    check_rec(f);
    assert_int_equal(f->rec.entries[7].term, 2);
    /* Truncate back to the very first entry. */
    append_range(f, 1, 3, 3, NULL);
    fx_reopen(f);
    check_rec(f);
    /* Truncation across a rollover boundary. */
    append_range(f, 4, 150, 3, NULL);
    size_t segs = wal_segment_count(f->w);
    assert_true(segs > 2);
    append_range(f, 20, 25, 4, NULL);
    fx_reopen(f);
    check_rec(f);
    /* Gaps and indexes at or behind the snapshot are refused. */
    raft_entry e = {.index = 27, .term = 4};
    assert_int_equal(wal_append(f->w, NULL, &e, 1), WAL_EINVAL);
    e.index = 0;
    assert_int_equal(wal_append(f->w, NULL, &e, 1), WAL_EINVAL);
    raft_entry two[2] = {{.index = 26, .term = 4}, {.index = 28, .term = 4}};
    assert_int_equal(wal_append(f->w, NULL, two, 2), WAL_EINVAL);
    assert_int_equal(wal_release(f->w, 10, 3), 0);
    f->snap = 10;
    e.index = 10;
    assert_int_equal(wal_append(f->w, NULL, &e, 1), WAL_EINVAL);
    /* The refusals changed nothing. */
    fx_reopen(f);
    check_rec(f);
}

static void test_rollover_release(void **state)
{
    fx *f = *state;
    assert_int_equal(fx_open(f), 0);
    assert_int_equal(wal_segment_count(f->w), 1);
    for (uint64_t i = 1; i <= 400; i += 20)
        append_range(f, i, i + 19, 1 + i / 100, NULL);
    assert_int_equal(wal_sync(f->w), 0);
    size_t segs = wal_segment_count(f->w);
    assert_true(segs >= 8);
    fx_reopen(f);
    check_rec(f);
    assert_int_equal(wal_segment_count(f->w), segs);
    /* Release behind index 150: the segments wholly at or behind it go. */
    assert_int_equal(wal_release(f->w, 150, f->terms[150]), 0);
    f->snap = 150;
    size_t after = wal_segment_count(f->w);
    assert_true(after < segs && after > 1);
    fx_reopen(f);
    check_rec(f);
    assert_int_equal(f->rec.snap_term, f->terms[150]);
    assert_int_equal(wal_segment_count(f->w), after);
    /* A stale release changes nothing. */
    assert_int_equal(wal_release(f->w, 100, 1), 0);
    assert_int_equal(wal_segment_count(f->w), after);
    /* A big record gets a segment of its own. */
    uint8_t big[3 * SMALL_SEG];
    memset(big, 0x5a, sizeof big);
    raft_entry be = {.index = 401, .term = 9, .len = sizeof big, .buf = big};
    assert_int_equal(wal_append(f->w, NULL, &be, 1), 0);
    assert_int_equal(wal_sync(f->w), 0);
    wal_close(f->w);
    f->w = NULL;
    assert_int_equal(fx_open(f), 0);
    assert_int_equal(f->rec.n_entries, 251);
    assert_int_equal(f->rec.entries[250].len, sizeof big);
    assert_memory_equal(f->rec.entries[250].buf, big, sizeof big);
    /* A snapshot marker whose term does not match drops the whole log
     * (Raft §7); appends go on after it. */
    assert_int_equal(wal_release(f->w, 300, 77), 0);
    f->snap = f->last = 300;
    fx_reopen(f);
    check_rec(f);
    uint64_t li, lt;
    wal_last(f->w, &li, &lt);
    assert_int_equal(lt, 77);
    /* A follower's snapshot ahead of the log. */
    assert_int_equal(wal_release(f->w, 1000, 80), 0);
    f->snap = f->last = 1000;
    append_range(f, 1001, 1010, 80, NULL);
    fx_reopen(f);
    check_rec(f);
}

/* Ten entries in the first segment; returns the offsets of its records
 * (record 0 is the hard state written at creation, record k the entry k). */
static void ten_entries(fx *f, long *offs)
{
    f->opt.segment_size = 64 * 1024;
    assert_int_equal(fx_open(f), 0);
    append_range(f, 1, 10, 2, NULL);
    assert_int_equal(wal_sync(f->w), 0);
    assert_int_equal(wal_close(f->w), 0);
    f->w = NULL;
    char p[512];
    seg_path(f, 0, p, sizeof p);
    assert_int_equal(record_offsets(p, offs, 32), 11);
}

/* Reopens after damage to segment file `p`: recovery returns 1..want,
 * the damaged file is whole again with `records` records, appends go on in
 * a new segment, and reopening works. */
static void after_damage(fx *f, const char *p, int records, uint64_t want)
{
    assert_int_equal(fx_open(f), 0);
    f->last = want;
    check_rec(f);
    assert_int_equal(file_size(p), 64 * 1024);
    long offs[32];
    assert_int_equal(record_offsets(p, offs, 32), records);
    size_t segs = wal_segment_count(f->w);
    append_range(f, want + 1, want + 2, 3, NULL);
    assert_int_equal(wal_sync(f->w), 0);
    fx_reopen(f);
    check_rec(f);
    assert_int_equal(wal_segment_count(f->w), segs);
    char last[512];
    seg_path(f, -1, last, sizeof last);
    assert_string_not_equal(last, p);
}

static void test_damage_truncated_file(void **state)
{
    fx *f = *state;
    long offs[32];
    ten_entries(f, offs);
    char p[512];
    seg_path(f, 0, p, sizeof p);
    assert_int_equal(truncate(p, offs[7] + 12), 0);
    after_damage(f, p, 7, 6);
}

/* Damage with valid records after it is not a torn write (those records
 * were written, and perhaps acknowledged, after the damaged one): the WAL
 * refuses to open rather than silently drop them. */
static void expect_refused(fx *f)
{
    wal_recovered rec = {0};
    wal *w = NULL;
    assert_int_equal(wal_open(f->dir, &f->opt, &w, &rec), WAL_ECORRUPT);
    assert_non_null(strstr(rec.errmsg, "damage inside the log"));
    wal_recovered_free(&rec);
}

static void test_damage_flipped_bit(void **state)
{
    fx *f = *state;
    long offs[32];
    ten_entries(f, offs);
    char p[512];
    seg_path(f, 0, p, sizeof p);
    /* Entry 5's payload (index 5 has 65 bytes); entries 6..10 follow. */
    uint8_t b;
    int fd = open(p, O_RDONLY);
    assert_int_equal(pread(fd, &b, 1, offs[5] + 9 + 30), 1);
    close(fd);
    b ^= 0x10;
    patch_file(p, offs[5] + 9 + 30, &b, 1);
    expect_refused(f);
    /* The same flip in the last record looks like a torn write: that
     * record is dropped, the rest kept. */
    b ^= 0x10;
    patch_file(p, offs[5] + 9 + 30, &b, 1);
    fd = open(p, O_RDONLY);
    assert_int_equal(pread(fd, &b, 1, offs[10] + 5), 1); /* its CRC */
    close(fd);
    b ^= 0x10;
    patch_file(p, offs[10] + 5, &b, 1);
    after_damage(f, p, 10, 9);
}

static void test_damage_flipped_length(void **state)
{
    fx *f = *state;
    long offs[32];
    ten_entries(f, offs);
    char p[512];
    seg_path(f, 0, p, sizeof p);
    uint8_t big[4] = {0x7f, 0, 0, 0};
    patch_file(p, offs[3], big, 4); /* length beyond the file */
    expect_refused(f);
}

static void test_damage_zeroed_tail(void **state)
{
    fx *f = *state;
    long offs[32];
    ten_entries(f, offs);
    char p[512];
    seg_path(f, 0, p, sizeof p);
    uint8_t z[4096] = {0};
    patch_file(p, offs[8] + 20, z, sizeof z);
    after_damage(f, p, 8, 7);
}

static void test_damage_garbage_tail(void **state)
{
    fx *f = *state;
    long offs[32];
    ten_entries(f, offs);
    char p[512];
    seg_path(f, 0, p, sizeof p);
    long end = offs[10] + 9 + len_of(10) + 20;
    uint8_t g[300];
    for (size_t i = 0; i < sizeof g; i++)
        g[i] = (uint8_t)(i * 7 + 3);
    patch_file(p, end, g, sizeof g);
    after_damage(f, p, 11, 10);
    /* Garbage behind a zero header is damage too.  The last segment now
     * holds its hard state and entries 11 and 12. */
    wal_close(f->w);
    f->w = NULL;
    seg_path(f, -1, p, sizeof p);
    patch_file(p, 60000, g, 10);
    after_damage(f, p, 3, 12);
}

/* Builds several small segments; returns how many. */
static size_t many_segments(fx *f)
{
    assert_int_equal(fx_open(f), 0);
    append_range(f, 1, 200, 1, NULL);
    assert_int_equal(wal_sync(f->w), 0);
    size_t n = wal_segment_count(f->w);
    assert_true(n >= 4);
    assert_int_equal(wal_close(f->w), 0);
    f->w = NULL;
    return n;
}

static void test_damage_before_last_segment(void **state)
{
    fx *f = *state;
    many_segments(f);
    char p[512];
    seg_path(f, 1, p, sizeof p);
    long offs[64];
    assert_true(record_offsets(p, offs, 64) > 4);
    uint8_t b = 0xff;
    patch_file(p, offs[3] + 9 + 2, &b, 1);
    assert_int_equal(fx_open(f), WAL_ECORRUPT);
    assert_null(f->w);
    assert_non_null(strstr(f->rec.errmsg, strrchr(p, '/') + 1));
    assert_int_equal(f->rec.n_entries, 0);
}

static void test_missing_segment(void **state)
{
    fx *f = *state;
    many_segments(f);
    char p[512], q[512];
    seg_path(f, 1, p, sizeof p);
    seg_path(f, 2, q, sizeof q);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(fx_open(f), WAL_EMISSING);
    assert_null(f->w);
    /* The message names the neighbours of the hole and the missing seq. */
    assert_non_null(strstr(f->rec.errmsg, strrchr(q, '/') + 1));
    assert_non_null(strstr(f->rec.errmsg, "0000000000000002"));
    assert_string_equal(wal_err_name(WAL_EMISSING), "WAL_EMISSING");
    assert_string_equal(cm_err_name(WAL_EMISSING), "WAL_EMISSING");
}

static void test_missing_first_segment(void **state)
{
    fx *f = *state;
    many_segments(f);
    char p[512];
    seg_path(f, 0, p, sizeof p);
    assert_int_equal(unlink(p), 0);
    /* Without a snapshot marker the entries no longer start at 1. */
    assert_int_equal(fx_open(f), WAL_EMISSING);
    assert_non_null(strstr(f->rec.errmsg, "missing"));
}

static void test_lock_and_leftovers(void **state)
{
    fx *f = *state;
    assert_int_equal(fx_open(f), 0);
    wal *w2;
    wal_recovered r2 = {0};
    assert_int_equal(wal_open(f->dir, &f->opt, &w2, &r2), WAL_ELOCKED);
    wal_recovered_free(&r2);
    append_range(f, 1, 5, 1, NULL);
    assert_int_equal(wal_close(f->w), 0);
    f->w = NULL;
    /* A segment whose creation was cut short is removed. */
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/0000000000000002-0000000000000006.wal.tmp",
             f->dir);
    int fd = open(tmp, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
    assert_int_equal(fx_open(f), 0);
    check_rec(f);
    assert_int_equal(access(tmp, F_OK), -1);
    wal_options bad = {.segment_size = 100};
    assert_int_equal(wal_open(f->dir, &bad, &w2, &r2), WAL_EINVAL);
    wal_recovered_free(&r2);
}

/* Open-recover-append-sync-release-close with the N-th allocation failing,
 * N = 0, 1, ... until the sequence succeeds: every failure is a clean
 * -ENOMEM with nothing leaked, and the log is never damaged by it. */
static void test_alloc_failures(void **state)
{
    fx *f = *state;
    assert_int_equal(fx_open(f), 0);
    append_range(f, 1, 60, 1, NULL);
    assert_int_equal(wal_release(f->w, 10, 1), 0);
    f->snap = 10;
    assert_int_equal(wal_close(f->w), 0);
    f->w = NULL;
    wal_recovered_free(&f->rec);
    long base = tu_alloc_outstanding();
    raft_hard_state hs = {2, 1, 40};
    uint8_t data[50];
    memset(data, 7, sizeof data);
    int done = 0;
    for (long n = 0; !done && n < 10000; n++) {
        tu_alloc_fail_after(n);
        wal *w = NULL;
        wal_recovered rec = {0};
        int rc = wal_open(f->dir, &f->opt, &w, &rec);
        if (rc == 0) {
            raft_entry e[3];
            for (int i = 0; i < 3; i++)
                e[i] = (raft_entry){.index = 59 + (uint64_t)i,
                                    .term = 2,
                                    .len = sizeof data,
                                    .buf = data};
            rc = wal_append(w, &hs, e, 3);
            if (rc == 0)
                rc = wal_sync(w);
            if (rc == 0)
                rc = wal_release(w, 30, 1);
            if (rc == 0)
                done = 1;
            assert_int_equal(wal_close(w), 0);
        }
        tu_alloc_fail_after(-1);
        if (!done)
            assert_int_equal(rc, -ENOMEM);
        wal_recovered_free(&rec);
        assert_int_equal(tu_alloc_outstanding(), base);
        /* Whatever happened, the log recovers as a valid prefix. */
        assert_int_equal(fx_open(f), 0);
        assert_true(f->rec.n_entries >= 1);
        for (size_t i = 1; i < f->rec.n_entries; i++)
            assert_int_equal(f->rec.entries[i].index,
                             f->rec.entries[i - 1].index + 1);
        assert_int_equal(f->rec.entries[0].index, f->rec.snap_index + 1);
        assert_int_equal(wal_close(f->w), 0);
        f->w = NULL;
        wal_recovered_free(&f->rec);
    }
    assert_true(done);
    assert_true(tu_alloc_failures() > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suffix_truncation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollover_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_truncated_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damage_flipped_bit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damage_flipped_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damage_zeroed_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damage_garbage_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damage_before_last_segment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_first_segment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_leftovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    cm_log_set_level(CM_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
