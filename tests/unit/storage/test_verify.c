/*
 * Unit tests for storage integrity: checksums on history records, index
 * versions, leases and meta values, kv_verify's full check, the refusal
 * of reads that meet damage, and the refusal of stores of another format.
 *
 * Damage is made the way it happens: a closed store's data.mdb gets one
 * byte flipped, at an offset found by searching the file for a pattern
 * only the target holds.  Cross-reference damage (an entry deleted or
 * added while its partner stays) is made through LMDB directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_int.h" /* verify_window */
#include "kvt.h"
#include "tu.h"

/* ---- helpers ---------------------------------------------------------- */

/* Reads the whole data.mdb of t's store. */
static uint8_t *read_file(kvt *t, size_t *n)
{
    char path[300];
    snprintf(path, sizeof path, "%s/data.mdb", t->dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 0);
    uint8_t *b = malloc((size_t)size);
    assert_int_equal(pread(fd, b, (size_t)size, 0), size);
    close(fd);
    *n = (size_t)size;
    return b;
}

/* Offset of the one place `pat` occurs in data.mdb (fails if it occurs
 * elsewhere too: the flip must hit the live copy). */
static off_t find_unique(kvt *t, const void *pat, size_t plen)
{
    size_t n;
    uint8_t *b = read_file(t, &n);
    off_t at = -1;
    int hits = 0;
    for (size_t i = 0; i + plen <= n; i++)
        if (memcmp(b + i, pat, plen) == 0) {
            at = (off_t)i;
            hits++;
        }
    free(b);
    assert_int_equal(hits, 1);
    return at;
}

static void flip(kvt *t, off_t at, uint8_t mask)
{
    char path[300];
    snprintf(path, sizeof path, "%s/data.mdb", t->dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= mask;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

/* Closes the store (keeping its files) and opens it with LMDB alone. */
static void raw_open(kvt *t, MDB_env **env, MDB_txn **txn)
{
    kv_close(t->s);
    t->s = NULL;
    assert_int_equal(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 8);
    assert_int_equal(mdb_env_open(*env, t->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
}

static MDB_dbi raw_dbi(MDB_txn *txn, const char *name)
{
    MDB_dbi d;
    assert_int_equal(mdb_dbi_open(txn, name, 0, &d), 0);
    return d;
}

static void raw_close(MDB_env *env, MDB_txn *txn)
{
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static uint32_t crc(uint32_t c, const void *p, size_t n)
{
    return cm_crc32c(c, p, n);
}

static void be64(uint8_t *p, uint64_t v)
{
    cm_be64_put(p, v);
}

static int64_t apply_rev(kvt *t)
{
    return t->res.revision;
}

/* Expects kv_verify to fail with KV_ECORRUPT and a message holding
 * `want`. */
static void expect_damage(kvt *t, const char *want)
{
    kv_verify_report rep;
    int rc = kv_verify(t->s, &rep);
    if (rc != KV_ECORRUPT || !strstr(rep.msg, want))
        fail_msg("kv_verify: %s, \"%s\"; wanted KV_ECORRUPT, \"%s\"",
                 kv_err_name(rc), rep.msg, want);
    assert_non_null(strstr(kv_errmsg(t->s), want));
}

static void expect_intact(kvt *t)
{
    kv_verify_report rep;
    int rc = kv_verify(t->s, &rep);
    if (rc)
        fail_msg("kv_verify: %s, \"%s\"", kv_err_name(rc), rep.msg);
    assert_string_equal(rep.msg, "");
    assert_int_equal(rep.versions, rep.revs);
}

static int count_events(void *arg, const kv_events *evs)
{
    *(size_t *)arg += evs->n;
    return 0;
}

/* Some history around the targets: versions, deletes, a txn, a lease,
 * a compaction. */
static void fill(kvt *t, int64_t *lease)
{
    char k[32], v[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "fill/%02d", i % 13);
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(kvt_put(t, k, v, 0), 0);
    }
    assert_int_equal(kvt_del(t, "fill/03", NULL), 0);
    assert_int_equal(kvt_grant(t, 0, 60, lease), 0);
    assert_int_equal(kvt_put(t, "leased/a", "la", *lease), 0);
    assert_int_equal(kvt_put(t, "leased/b", "lb", *lease), 0);
    assert_int_equal(kvt_compact(t, 20), 0);
    assert_int_equal(kvt_put(t, "fill/00", "after", 0), 0);
}

/* ---- tests ------------------------------------------------------------ */

static void test_intact_store(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    kv_verify_report rep;
    assert_int_equal(kv_verify(t->s, &rep), 0);
    assert_string_equal(rep.msg, "");
    assert_true(rep.revs > 20);
    assert_int_equal(rep.versions, rep.revs);
    assert_int_equal(rep.live_keys, 14); /* 12 fill keys, 2 leased */
    assert_int_equal(rep.leased_keys, 2);
    assert_int_equal(rep.lease_keys, 2);
    assert_int_equal(rep.leases, 1);
    assert_int_equal(rep.lease_exp, 1);
    assert_true(rep.meta >= 8);
    /* Expiry answers pass their cross-check, also when the walk runs off
     * the end of lease_exp. */
    int64_t ids[4];
    size_t n;
    assert_int_equal(kv_lease_expired(t->s, t->now_ms + 100000, ids, 4, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], lease);
    /* Reopening and revoking keep it intact; so does an empty store. */
    assert_int_equal(kvt_reopen(t, NULL), 0);
    expect_intact(t);
    assert_int_equal(kvt_revoke(t, lease), 0);
    expect_intact(t);
    kvt u;
    assert_int_equal(kvt_open(&u, NULL), 0);
    expect_intact(&u);
    kvt_close(&u, 0);
    /* The same in windows of a few versions each. */
    t->s->verify_window = 5;
    assert_int_equal(kv_verify(t->s, &rep), 0);
    assert_int_equal(rep.versions, rep.revs);
    assert_int_equal(rep.live_keys, 12);
}

/* A flipped byte inside a value: verify names the revision, a read of the
 * key is refused (never the damaged bytes), other keys still read. */
static void test_flipped_value(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    const char *val = "target-value-7f3a9c-unique-pattern";
    assert_int_equal(kvt_put(t, "target", val, 0), 0);
    int64_t rev = apply_rev(t);
    kvt_close(t, 1);
    flip(t, find_unique(t, val, strlen(val)) + 10, 0x04);
    assert_int_equal(kvt_reopen(t, NULL), 0);

    char want[64];
    snprintf(want, sizeof want, "rev %lld/0: checksum mismatch",
             (long long)rev);
    expect_damage(t, want);

    Skiffpb__RangeResponse *r;
    assert_int_equal(kvt_range(t, "target", NULL, 0, &r), KV_ECORRUPT);
    assert_non_null(strstr(kv_errmsg(t->s), want));
    assert_int_equal(kvt_range(t, "t", "u", 0, &r), KV_ECORRUPT);
    /* keys_only still reads the record, count_only does not need it. */
    Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
    rr.key = kvt_bytes("target");
    rr.count_only = 1;
    assert_int_equal(kv_range(t->s, &rr, &t->arena, &r, NULL), 0);
    assert_int_equal(r->count, 1);

    assert_string_equal(kvt_get(t, "fill/05"), "v31");
    assert_string_equal(kvt_get(t, "fill/00"), "after");
    assert_string_equal(kvt_get(t, "leased/a"), "la");
    assert_int_equal(kvt_range(t, "fill/", "fill0", 0, &r), 0);
    assert_int_equal(r->n_kvs, 12);

    /* Every other reader of history refuses it too. */
    kv_hash h;
    assert_int_equal(kv_hash_get(t->s, 0, &h), KV_ECORRUPT);
    int64_t next;
    size_t events = 0;
    assert_int_equal(kv_events_read(t->s, (const uint8_t *)"target", 6,
                                    NULL, 0, rev, 0, 0, 0, &t->arena,
                                    count_events, &events, &next, NULL),
                     KV_ECORRUPT);
    int fd = open("/dev/null", O_WRONLY);
    uint64_t idx;
    assert_int_equal(kv_snapshot_write(t->s, fd, &idx), KV_ECORRUPT);
    close(fd);
    assert_int_equal(events, 0);
    /* A write that needs the damaged record fails the store rather than
     * build on it. */
    assert_int_equal(kvt_put(t, "target", "new", 0), KV_ECORRUPT);
    assert_int_equal(kvt_put(t, "other", "x", 0), KV_EFAILED);
}

/* A flipped byte in a record's header (its version field). */
static void test_flipped_header(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    const char *val = "header-target-55e1d0-unique-pattern";
    assert_int_equal(kvt_put(t, "hdr", "one", 0), 0);
    assert_int_equal(kvt_put(t, "hdr", val, 0), 0);
    int64_t rev = apply_rev(t);
    kvt_close(t, 1);
    /* Record: crc(4) flags(1) create(8) version(8) lease(8) keylen(2) key
     * value; the version's low byte is 13 bytes before the lease. */
    off_t v = find_unique(t, val, strlen(val));
    off_t rec = v - 3 - 31;
    flip(t, rec + 20, 0x01); /* version 2 -> 3 */
    assert_int_equal(kvt_reopen(t, NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "rev %lld/0: checksum mismatch",
             (long long)rev);
    expect_damage(t, want);
    Skiffpb__RangeResponse *r;
    assert_int_equal(kvt_range(t, "hdr", NULL, 0, &r), KV_ECORRUPT);
    assert_non_null(strstr(kv_errmsg(t->s), want));
    /* The older version is intact and still readable at its revision. */
    assert_int_equal(kvt_range(t, "hdr", NULL, rev - 1, &r), 0);
    assert_int_equal(r->n_kvs, 1);
    assert_int_equal(r->kvs[0]->version, 1);
    assert_string_equal(kvt_get(t, "fill/07"), "v33");
}

/* A flipped tombstone bit in an index version: without a checksum the key
 * would silently vanish from reads. */
static void test_flipped_index(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    const char *key = "index-target-2b9e44";
    assert_int_equal(kvt_put(t, key, "value", 0), 0);
    int64_t rev = apply_rev(t);
    kvt_close(t, 1);
    /* A key with one version holds it inline: key, main, sub, flags, crc. */
    uint8_t pat[64];
    size_t kl = strlen(key);
    memcpy(pat, key, kl);
    be64(pat + kl, (uint64_t)rev);
    be64(pat + kl + 8, 0);
    off_t at = find_unique(t, pat, kl + 16);
    flip(t, at + (off_t)kl + 16, 0x01);
    assert_int_equal(kvt_reopen(t, NULL), 0);
    char want[96];
    snprintf(want, sizeof want,
             "idx key \"%s\" version %lld/0: checksum mismatch", key,
             (long long)rev);
    expect_damage(t, want);
    Skiffpb__RangeResponse *r;
    assert_int_equal(kvt_range(t, key, NULL, 0, &r), KV_ECORRUPT);
    assert_non_null(strstr(kv_errmsg(t->s), want));
    Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
    rr.key = kvt_bytes(key);
    rr.count_only = 1;
    assert_int_equal(kv_range(t->s, &rr, &t->arena, &r, NULL), KV_ECORRUPT);
    assert_string_equal(kvt_get(t, "fill/11"), "v37");
}

/* A flipped byte in a lease's expiry. */
static void test_flipped_lease(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    int64_t id;
    assert_int_equal(kvt_grant(t, 0x5eed1ea5e, 77, &id), 0);
    kvt_close(t, 1);
    uint8_t pat[24];
    be64(pat, (uint64_t)id);
    be64(pat + 8, 77);
    be64(pat + 16, (uint64_t)(t->now_ms + 77000));
    off_t at = find_unique(t, pat, sizeof pat);
    flip(t, at + 23, 0x80);
    assert_int_equal(kvt_reopen(t, NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "lease %lld: checksum mismatch",
             (long long)id);
    expect_damage(t, want);
    Skiffpb__LeaseTimeToLiveResponse *ttl;
    assert_int_equal(kv_lease_ttl(t->s, id, 0, t->now_ms, &t->arena, &ttl),
                     KV_ECORRUPT);
    /* The leader must not revoke it on the strength of a damaged entry. */
    int64_t ids[4];
    size_t n;
    assert_int_equal(kv_lease_expired(t->s, t->now_ms + 100000, ids, 4, &n),
                     KV_ECORRUPT);
    assert_int_equal(n, 0);
    assert_int_equal(kv_lease_ttl(t->s, lease, 1, t->now_ms, &t->arena,
                                  &ttl),
                     0);
    assert_int_equal(ttl->n_keys, 2);
}

/* Cross-references: an index version or a lease attachment that lost its
 * partner, and a meta value with a bad checksum. */
static void test_cross_checks(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    int64_t rev = kvt_rev(t);
    MDB_env *env;
    MDB_txn *txn;

    /* idx version of fill/00's newest record removed. */
    raw_open(t, &env, &txn);
    MDB_dbi idx = raw_dbi(txn, "idx");
    MDB_val k = {7, "fill/00"}, d;
    MDB_cursor *c;
    assert_int_equal(mdb_cursor_open(txn, idx, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &d, MDB_SET), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &d, MDB_LAST_DUP), 0);
    assert_int_equal(mdb_cursor_del(c, 0), 0);
    mdb_cursor_close(c);
    raw_close(env, txn);
    assert_int_equal(kvt_reopen(t, NULL), 0);
    char want[96];
    snprintf(want, sizeof want, "rev %lld/0: key \"fill/00\" has no version",
             (long long)rev);
    expect_damage(t, want);
    t->s->verify_window = 4;
    expect_damage(t, want);

    /* A record removed under its index version. */
    kvt_close(t, 0);
    assert_int_equal(kvt_open(t, NULL), 0);
    fill(t, &lease);
    raw_open(t, &env, &txn);
    MDB_dbi rv = raw_dbi(txn, "rev");
    uint8_t rk[16];
    be64(rk, 27);
    be64(rk + 8, 0);
    k = (MDB_val){16, rk};
    assert_int_equal(mdb_del(txn, rv, &k, NULL), 0);
    raw_close(env, txn);
    assert_int_equal(kvt_reopen(t, NULL), 0);
    expect_damage(t, "idx key \"fill/00\" version 27/0: no such record");
    t->s->verify_window = 3;
    expect_damage(t, "idx key \"fill/00\" version 27/0: no such record");

    /* A stray lease attachment: verify names it, and a revoke refuses to
     * delete a key that is not the lease's. */
    kvt_close(t, 0);
    assert_int_equal(kvt_open(t, NULL), 0);
    fill(t, &lease);
    raw_open(t, &env, &txn);
    MDB_dbi lk = raw_dbi(txn, "lease_keys");
    uint8_t id[8];
    be64(id, (uint64_t)lease);
    MDB_val ik = {8, id}, iv = {7, "fill/04"};
    assert_int_equal(mdb_put(txn, lk, &ik, &iv, 0), 0);
    raw_close(env, txn);
    assert_int_equal(kvt_reopen(t, NULL), 0);
    expect_damage(t, "lease_keys: lease");
    assert_int_equal(kvt_revoke(t, lease), KV_ECORRUPT);
    assert_string_equal(kvt_get(t, "fill/04"), "v30");

    /* An attachment missing. */
    kvt_close(t, 0);
    assert_int_equal(kvt_open(t, NULL), 0);
    fill(t, &lease);
    raw_open(t, &env, &txn);
    lk = raw_dbi(txn, "lease_keys");
    iv = (MDB_val){8, "leased/b"};
    assert_int_equal(mdb_del(txn, lk, &ik, &iv), 0);
    raw_close(env, txn);
    assert_int_equal(kvt_reopen(t, NULL), 0);
    expect_damage(t, "\"leased/b\" is missing from lease_keys");

    /* A meta value with a wrong checksum: open itself refuses, and says
     * why through the options. */
    kvt_close(t, 0);
    assert_int_equal(kvt_open(t, NULL), 0);
    fill(t, &lease);
    raw_open(t, &env, &txn);
    MDB_dbi meta = raw_dbi(txn, "meta");
    k = (MDB_val){3, "rev"};
    assert_int_equal(mdb_get(txn, meta, &k, &d), 0);
    uint8_t b[12];
    memcpy(b, d.mv_data, 12);
    b[7] ^= 0x10;
    d = (MDB_val){12, b};
    assert_int_equal(mdb_put(txn, meta, &k, &d, 0), 0);
    raw_close(env, txn);
    char msg[256] = "";
    kv_options o = {.errmsg = msg, .errmsg_size = sizeof msg};
    assert_int_equal(kvt_reopen(t, &o), KV_ECORRUPT);
    assert_non_null(strstr(msg, "meta \"rev\": checksum mismatch"));
}

/* Snapshots carry the checksummed records and restore checks them. */
static void test_snapshot_checks(void **state)
{
    kvt *t = *state;
    int64_t lease;
    fill(t, &lease);
    char path[300];
    snprintf(path, sizeof path, "%s/snap", t->dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint64_t idx;
    assert_int_equal(kv_snapshot_write(t->s, fd, &idx), 0);
    kvt u;
    assert_int_equal(kvt_open(&u, NULL), 0);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_restore(u.s, fd), 0);
    expect_intact(&u);
    kv_hash ht, hu;
    assert_int_equal(kv_hash_get(t->s, 0, &ht), 0);
    assert_int_equal(kv_hash_get(u.s, 0, &hu), 0);
    assert_int_equal(ht.hash, hu.hash);

    /* A record damaged inside an otherwise well-formed stream (its outer
     * CRC recomputed) is refused by its own checksum. */
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc((size_t)size);
    assert_int_equal(pread(fd, b, (size_t)size, 0), size);
    const char *v = "v38";
    uint8_t *hit = NULL;
    for (off_t i = 0; i + 3 <= size; i++)
        if (memcmp(b + i, v, 3) == 0)
            hit = b + i;
    assert_non_null(hit);
    hit[1] ^= 0x01;
    cm_be32_put(b + size - 4, crc(0, b, (size_t)size - 4));
    assert_int_equal(pwrite(fd, b, (size_t)size, 0), size);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_restore(u.s, fd), KV_EBAD_SNAPSHOT);
    assert_non_null(strstr(kv_errmsg(u.s), "checksum mismatch"));
    /* A stream of the format before checksums is refused. */
    memcpy(b, "SKIFSNP1", 8);
    assert_int_equal(pwrite(fd, b, (size_t)size, 0), size);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_restore(u.s, fd), KV_EBAD_SNAPSHOT);
    free(b);
    close(fd);
    expect_intact(&u);
    kvt_close(&u, 0);
}

/* A store of the format before checksums (no marker, 8-byte meta values)
 * and one of an unknown format are refused, not misread. */
static void test_old_format(void **state)
{
    kvt *t = *state;
    assert_int_equal(kvt_put(t, "a", "1", 0), 0);
    MDB_env *env;
    MDB_txn *txn;
    raw_open(t, &env, &txn);
    MDB_dbi meta = raw_dbi(txn, "meta");
    MDB_val k = {6, "format"};
    assert_int_equal(mdb_del(txn, meta, &k, NULL), 0);
    uint8_t b[8];
    be64(b, 1);
    MDB_val rk = {3, "rev"}, rv = {8, b};
    assert_int_equal(mdb_put(txn, meta, &rk, &rv, 0), 0);
    raw_close(env, txn);
    char msg[256] = "";
    kv_options o = {.errmsg = msg, .errmsg_size = sizeof msg};
    assert_int_equal(kvt_reopen(t, &o), KV_EFORMAT);
    assert_non_null(strstr(msg, "format 1"));
    assert_non_null(strstr(kv_strerror(KV_EFORMAT), "format"));

    /* The old marker written directly. */
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, t->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    meta = raw_dbi(txn, "meta");
    MDB_val fv = {8, b};
    assert_int_equal(mdb_put(txn, meta, &k, &fv, 0), 0);
    raw_close(env, txn);
    msg[0] = 0;
    assert_int_equal(kvt_reopen(t, &o), KV_EFORMAT);
    assert_non_null(strstr(msg, "store is of format 1"));

    /* A later format, checksummed as this one would be. */
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, t->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    meta = raw_dbi(txn, "meta");
    uint8_t f3[12];
    be64(f3, 3);
    cm_be32_put(f3 + 8, crc(crc(0, "format", 6), f3, 8));
    fv = (MDB_val){12, f3};
    assert_int_equal(mdb_put(txn, meta, &k, &fv, 0), 0);
    raw_close(env, txn);
    assert_int_equal(kvt_reopen(t, &o), KV_EFORMAT);
    assert_non_null(strstr(msg, "store is of format 3"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, kvt_setup, kvt_teardown)
    const struct CMUnitTest tests[] = {
        T(test_intact_store),   T(test_flipped_value),
        T(test_flipped_header), T(test_flipped_index),
        T(test_flipped_lease),  T(test_cross_checks),
        T(test_snapshot_checks), T(test_old_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
