/*
 * The full check of a store: every checksum, and every cross-reference
 * between the databases, in one read transaction.
 *
 * LMDB keeps no checksums, so a flipped bit in data.mdb would otherwise
 * be served as good data.  Reads verify what they touch (kv_record.c);
 * kv_verify goes over everything once, and is what a member runs before
 * it serves: damage found there means the member refuses to start and is
 * rebuilt from its peers, instead of answering from a store it cannot
 * trust.  Passes, cheapest first:
 *
 *   1. meta: every value's checksum; the format; the alarm bits.
 *   2. lease: every value's checksum, and its entry in lease_exp; then
 *      lease_exp holds as many entries as there are leases.
 *   3. idx: every version's checksum; at most one version per key at or
 *      below the compact revision, and it is live.  Each version is
 *      collected as (revision, CRC32C of its key, tombstone, newest of its
 *      key) and the list is sorted by revision.
 *   4. rev: every record's checksum, walked in revision order beside the
 *      sorted list: each record must meet exactly one version with the
 *      same key and tombstone flag, and each version its record.  A live
 *      key's newest record, when leased, must name an existing lease that
 *      lists the key in lease_keys.
 *   5. counts: as many lease_keys entries as leased live keys (each of
 *      which was found there), and meta "keys" equals the live keys.
 *
 * Matching by a sort and two sequential walks, rather than one B-tree
 * lookup per version, is what makes this fast: random lookups into a
 * large history cost microseconds each, a sequential walk a fraction.
 * The list takes 16 bytes per version; beyond WINDOW versions the history
 * is checked in revision windows, one idx walk each, so memory stays
 * bounded.  When something does not match, a slower walk finds the name
 * of what is missing for the message.  Before all this the data file is
 * read through once, sequentially, since the map is opened for random
 * reads and faulting a cold store in page by page is several times
 * slower.
 */
#include "kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW (1u << 22) /* versions checked per window: 64 MiB */
#define VENT_TOMB 0x80000000u
#define VENT_LAST 0x40000000u
#define VENT_SUB 0x3fffffffu

/* One index version, as pass 4 matches it with its record. */
typedef struct vent {
    int64_t main;
    uint32_t sub;  /* sub revision | VENT_TOMB | VENT_LAST */
    uint32_t ksum; /* CRC32C of the user key */
} vent;

typedef struct vctx {
    kv_store *s;
    MDB_txn *txn;
    kv_verify_report *out;
    int64_t cur_rev, compact_rev, keys;
    /* The window being checked: versions with lo <= main < hi. */
    int64_t lo, hi;
    bool first; /* first window: count what idx holds */
    vent *v;
    size_t n, cap;
} vctx;

/* Walks database `dbi`, calling `fn` on every entry until it returns
 * nonzero.  0 at the end, fn's code, or a code from kv__lmdb_err. */
static int walk(vctx *c, MDB_dbi dbi,
                int (*fn)(vctx *c, const MDB_val *k, const MDB_val *v))
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->txn, dbi, &cur);
    if (rc)
        return kv__lmdb_err(c->s, rc, "cursor");
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if ((rc = fn(c, &k, &v)))
            break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    return kv__lmdb_err(c->s, rc, "verify scan");
}

static int meta_one(vctx *c, const MDB_val *k, const MDB_val *v)
{
    size_t n;
    c->out->meta++;
    return kv__meta_check(c->s, k, v, &n);
}

static int meta_values(vctx *c)
{
    int64_t format, alarm;
    int rc;
    if ((rc = kv__meta_get(c->s, c->txn, "format", &format)) ||
        (rc = kv__meta_get(c->s, c->txn, "alarm", &alarm)) ||
        (rc = kv__meta_get(c->s, c->txn, "rev", &c->cur_rev)) ||
        (rc = kv__meta_get(c->s, c->txn, "compact", &c->compact_rev)) ||
        (rc = kv__meta_get(c->s, c->txn, "keys", &c->keys)))
        return rc;
    if (format != KV__FORMAT)
        return kv__corrupt(c->s, "meta \"format\": %" PRId64 ", expected %d",
                           format, KV__FORMAT);
    if (alarm & ~(int64_t)(KV__ALARM_NOSPACE | KV__ALARM_CORRUPT))
        return kv__corrupt(c->s, "meta \"alarm\": unknown bits 0x%" PRIx64,
                           (uint64_t)alarm);
    if (c->compact_rev < 0 || c->compact_rev > c->cur_rev)
        return kv__corrupt(
            c->s, "meta \"compact\" %" PRId64 " is outside 0..rev %" PRId64,
            c->compact_rev, c->cur_rev);
    return 0;
}

static int lease_one(vctx *c, const MDB_val *k, const MDB_val *v)
{
    int64_t ttl, exp;
    int rc = kv__lease_decode(c->s, k, v, &ttl, &exp);
    if (rc)
        return rc;
    int64_t id = (int64_t)cm_be64_get(k->mv_data);
    uint8_t b[16];
    cm_be64_put(b, (uint64_t)(exp < 0 ? 0 : exp));
    cm_be64_put(b + 8, (uint64_t)id);
    MDB_val ek = {16, b}, ev;
    rc = mdb_get(c->txn, c->s->lease_exp, &ek, &ev);
    if (rc == MDB_NOTFOUND)
        return kv__corrupt(c->s,
                           "lease %" PRId64 ": no lease_exp entry "
                           "for its expiry %" PRId64,
                           id, exp);
    if (rc)
        return kv__lmdb_err(c->s, rc, "read lease_exp");
    c->out->leases++;
    return 0;
}

static int count_one(vctx *c, const MDB_val *k, const MDB_val *v)
{
    (void)k;
    (void)v;
    c->out->lease_exp++;
    return 0;
}

static int lease_keys_one(vctx *c, const MDB_val *k, const MDB_val *v)
{
    int rc = kv__entry_check(c->s, KV__DB_LEASE_KEYS, k, v);
    if (rc)
        return rc;
    c->out->lease_keys++;
    return 0;
}

/* Checks the live, leased newest version `r` of its key against the lease
 * tables. */
static int leased_key(vctx *c, MDB_cursor *lk, const kv__rec *r)
{
    char ks[200];
    uint8_t b[8];
    cm_be64_put(b, (uint64_t)r->lease);
    MDB_val k = {8, b}, v;
    int rc = mdb_get(c->txn, c->s->lease, &k, &v);
    if (rc == MDB_NOTFOUND)
        return kv__corrupt(
            c->s,
            "rev %" PRId64 "/%" PRId64 ": key %s is attached to lease %" PRId64
            ", which does not exist",
            r->main, r->sub, kv__keystr(ks, sizeof ks, r->key, r->key_len),
            r->lease);
    if (rc)
        return kv__lmdb_err(c->s, rc, "read lease");
    v.mv_size = r->key_len;
    v.mv_data = (void *)r->key;
    rc = mdb_cursor_get(lk, &k, &v, MDB_GET_BOTH);
    if (rc == MDB_NOTFOUND)
        return kv__corrupt(
            c->s,
            "rev %" PRId64 "/%" PRId64 ": key %s is missing from lease_keys of "
            "lease %" PRId64,
            r->main, r->sub, kv__keystr(ks, sizeof ks, r->key, r->key_len),
            r->lease);
    if (rc)
        return kv__lmdb_err(c->s, rc, "read lease_keys");
    c->out->leased_keys++;
    return 0;
}

static int vent_cmp(const void *x, const void *y)
{
    const vent *a = x, *b = y;
    if (a->main != b->main)
        return a->main < b->main ? -1 : 1;
    uint32_t as = a->sub & VENT_SUB, bs = b->sub & VENT_SUB;
    return as < bs ? -1 : as > bs;
}

static int vent_add(vctx *c, const kv__ver *ver, uint32_t ksum, bool last)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        vent *v = cm_realloc(c->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] =
        (vent){ver->main,
               (uint32_t)ver->sub | (ver->tombstone ? VENT_TOMB : 0) |
                   (last ? VENT_LAST : 0),
               ksum};
    return 0;
}

/* Pass 3 for one window: verifies idx and collects the window's versions,
 * sorted by revision. */
static int idx_collect(vctx *c)
{
    kv_store *s = c->s;
    MDB_cursor *ic;
    int rc = mdb_cursor_open(c->txn, s->idx, &ic);
    if (rc)
        return kv__lmdb_err(s, rc, "cursor");
    char ks[200];
    c->n = 0;
    MDB_val k, d;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(ic, &k, &d, op)) == 0) {
        op = MDB_NEXT_NODUP;
        uint32_t ksum = cm_crc32c(0, k.mv_data, k.mv_size);
        size_t ndup, at_compact = 0;
        size_t count;
        if ((rc = mdb_cursor_count(ic, &count)))
            break;
        kv__ver ver = {0};
        MDB_cursor_op dop = MDB_FIRST_DUP;
        for (ndup = 0; (rc = mdb_cursor_get(ic, &k, &d, dop)) == 0; ndup++) {
            dop = MDB_NEXT_DUP;
            if ((rc = kv__ver_decode(s, k.mv_data, k.mv_size, &d, &ver)))
                goto done;
            if (ver.sub < 0 || ver.sub > (int64_t)VENT_SUB) {
                rc =
                    kv__corrupt(s,
                                "idx key %s version %" PRId64 "/%" PRId64
                                ": sub revision out of range",
                                kv__keystr(ks, sizeof ks, k.mv_data, k.mv_size),
                                ver.main, ver.sub);
                goto done;
            }
            if (ver.main <= c->compact_rev &&
                (++at_compact > 1 || ver.tombstone)) {
                rc = kv__corrupt(
                    s,
                    "idx key %s version %" PRId64 "/%" PRId64
                    ": compaction at %" PRId64 " should have removed it",
                    kv__keystr(ks, sizeof ks, k.mv_data, k.mv_size), ver.main,
                    ver.sub, c->compact_rev);
                goto done;
            }
            if (ver.main >= c->lo && ver.main < c->hi &&
                (rc = vent_add(c, &ver, ksum, ndup + 1 == count)))
                goto done;
        }
        if (rc != MDB_NOTFOUND)
            break;
        rc = 0;
        if (c->first) {
            c->out->versions += ndup;
            c->out->keys++;
            if (ndup && !ver.tombstone)
                c->out->live_keys++;
        }
    }
done:
    mdb_cursor_close(ic);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(s, rc, "verify index");
    qsort(c->v, c->n, sizeof *c->v, vent_cmp);
    return 0;
}

/* Names the index version `e` that has no record. */
static int missing_record(vctx *c, const vent *e)
{
    kv_store *s = c->s;
    MDB_cursor *ic;
    int rc = mdb_cursor_open(c->txn, s->idx, &ic);
    if (rc)
        return kv__lmdb_err(s, rc, "cursor");
    char ks[200] = "?";
    MDB_val k, d;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(ic, &k, &d, op)) == 0) {
        op = MDB_NEXT;
        const uint8_t *p = d.mv_data;
        if (d.mv_size == KV__IDX_SZ && (int64_t)cm_be64_get(p) == e->main &&
            cm_be64_get(p + 8) == (e->sub & VENT_SUB)) {
            kv__keystr(ks, sizeof ks, k.mv_data, k.mv_size);
            break;
        }
    }
    mdb_cursor_close(ic);
    return kv__corrupt(s,
                       "idx key %s version %" PRId64 "/%" PRIu32
                       ": no such record in history",
                       ks, e->main, e->sub & VENT_SUB);
}

/* Pass 4 for one window: the records beside the sorted versions. */
static int rev_window(vctx *c)
{
    kv_store *s = c->s;
    MDB_cursor *rc_cur, *lk;
    int rc = mdb_cursor_open(c->txn, s->rev, &rc_cur);
    if (rc)
        return kv__lmdb_err(s, rc, "cursor");
    if ((rc = mdb_cursor_open(c->txn, s->lease_keys, &lk))) {
        mdb_cursor_close(rc_cur);
        return kv__lmdb_err(s, rc, "cursor");
    }
    char ks[200];
    uint8_t start[16];
    kv__revkey(start, c->lo, 0);
    MDB_val k = {16, start}, v;
    size_t j = 0;
    MDB_cursor_op op = MDB_SET_RANGE;
    while ((rc = mdb_cursor_get(rc_cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        kv__rec r;
        if ((rc = kv__rec_decode(s, &k, &v, &r)))
            break;
        if (r.main < 1 || r.main > c->cur_rev) {
            rc = kv__corrupt(s,
                             "rev %" PRId64 "/%" PRId64
                             ": outside the history 1..%" PRId64,
                             r.main, r.sub, c->cur_rev);
            break;
        }
        if (r.main >= c->hi)
            break;
        c->out->revs++;
        c->out->bytes += k.mv_size + v.mv_size;
        vent want = {r.main, (uint32_t)r.sub, 0};
        if (j < c->n && vent_cmp(&c->v[j], &want) < 0) {
            rc = missing_record(c, &c->v[j]);
            break;
        }
        if (j == c->n || vent_cmp(&c->v[j], &want) > 0) {
            rc = kv__corrupt(
                s, "rev %" PRId64 "/%" PRId64 ": key %s has no version in idx",
                r.main, r.sub, kv__keystr(ks, sizeof ks, r.key, r.key_len));
            break;
        }
        const vent *e = &c->v[j++];
        if (e->ksum != cm_crc32c(0, r.key, r.key_len) ||
            !(e->sub & VENT_TOMB) != !r.tombstone) {
            rc = kv__corrupt(s,
                             "rev %" PRId64 "/%" PRId64
                             ": record of key %s disagrees with its idx "
                             "version (key or tombstone flag)",
                             r.main, r.sub,
                             kv__keystr(ks, sizeof ks, r.key, r.key_len));
            break;
        }
        if ((e->sub & VENT_LAST) && !r.tombstone && r.lease &&
            (rc = leased_key(c, lk, &r)))
            break;
    }
    mdb_cursor_close(lk);
    mdb_cursor_close(rc_cur);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(s, rc, "verify history");
    if (j < c->n)
        return missing_record(c, &c->v[j]);
    return 0;
}

/* Passes 3 and 4, window by window. */
static int versions_and_records(vctx *c)
{
    MDB_stat st;
    int rc = mdb_stat(c->txn, c->s->idx, &st);
    if (rc)
        return kv__lmdb_err(c->s, rc, "stat");
    size_t window = c->s->verify_window ? c->s->verify_window : WINDOW;
    uint64_t nwin = st.ms_entries / window + 1;
    int64_t span = (int64_t)((uint64_t)c->cur_rev / nwin + 1);
    size_t cap = st.ms_entries < window ? st.ms_entries + 1 : window;
    if (!(c->v = cm_malloc(cap * sizeof *c->v)))
        return -ENOMEM;
    c->cap = cap;
    c->first = true;
    for (c->lo = 0; !rc; c->lo = c->hi) {
        bool last = c->lo > INT64_MAX - span || c->lo + span > c->cur_rev;
        c->hi = last ? INT64_MAX : c->lo + span;
        if ((rc = idx_collect(c)) || (rc = rev_window(c)))
            break;
        c->first = false;
        if (last)
            break;
    }
    cm_free(c->v);
    c->v = NULL;
    return rc;
}

/* The lease_keys entry whose key is not live with that lease. */
static int stray_lease_key(vctx *c, const MDB_val *k, const MDB_val *v)
{
    MDB_cursor *ic;
    int64_t id = (int64_t)cm_be64_get(k->mv_data);
    int rc = mdb_cursor_open(c->txn, c->s->idx, &ic);
    if (rc)
        return kv__lmdb_err(c->s, rc, "cursor");
    kv__ver ver;
    kv__rec r = {0};
    rc = kv__latest(c->s, ic, v->mv_data, v->mv_size, KV__LATEST, &ver);
    mdb_cursor_close(ic);
    if (rc == 0 && !ver.tombstone)
        rc = kv__load(c->s, c->txn, v->mv_data, v->mv_size, &ver, &r);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(c->s, rc, "read index");
    if (r.lease == id)
        return 0;
    char ks[200];
    return kv__corrupt(c->s,
                       "lease_keys: lease %" PRId64 " lists key %s, "
                       "which is not live with it",
                       id, kv__keystr(ks, sizeof ks, v->mv_data, v->mv_size));
}

static int verify(vctx *c)
{
    kv_store *s = c->s;
    kv_verify_report *o = c->out;
    int rc;
    if ((rc = walk(c, s->meta, meta_one)) || (rc = meta_values(c)) ||
        (rc = walk(c, s->lease, lease_one)) ||
        (rc = walk(c, s->lease_exp, count_one)))
        return rc;
    if (o->lease_exp != o->leases)
        return kv__corrupt(
            s, "lease_exp: %" PRIu64 " entries for %" PRIu64 " leases",
            o->lease_exp, o->leases);
    if ((rc = versions_and_records(c)) ||
        (rc = walk(c, s->lease_keys, lease_keys_one)))
        return rc;
    if (o->versions != o->revs)
        return kv__corrupt(
            s, "idx: %" PRIu64 " versions for %" PRIu64 " history records",
            o->versions, o->revs);
    if (o->lease_keys != o->leased_keys) {
        if ((rc = walk(c, s->lease_keys, stray_lease_key)))
            return rc;
        return kv__corrupt(s,
                           "lease_keys: %" PRIu64 " entries for %" PRIu64
                           " leased live keys",
                           o->lease_keys, o->leased_keys);
    }
    if ((uint64_t)c->keys != o->live_keys)
        return kv__corrupt(
            s, "meta \"keys\": %" PRId64 ", but idx has %" PRIu64 " live keys",
            c->keys, o->live_keys);
    return 0;
}

/* The map is opened for random reads (no read-ahead), so a full scan of a
 * cold store would fault it in one page at a time, which costs several
 * times a sequential read of the file.  Reading the file through once puts
 * it in the page cache first.  Best effort: any failure just skips it. */
static void prefetch(kv_store *s)
{
    MDB_envinfo info;
    mdb_filehandle_t fd;
    if (mdb_env_info(s->env, &info) || mdb_env_get_fd(s->env, &fd))
        return;
    uint64_t size = ((uint64_t)info.me_last_pgno + 1) * s->page_size;
    size_t chunk = 1u << 20;
    uint8_t *buf = cm_malloc(chunk);
    if (!buf)
        return;
    for (uint64_t off = 0; off < size;) {
        ssize_t n = pread(fd, buf, chunk, (off_t)off);
        if (n <= 0)
            break;
        off += (uint64_t)n;
    }
    cm_free(buf);
}

int kv__entry_check(kv_store *s, int db, const MDB_val *k, const MDB_val *v)
{
    kv__rec r;
    kv__ver ver;
    size_t n;
    int64_t ttl, exp;
    switch (db) {
    case KV__DB_META:
        return kv__meta_check(s, k, v, &n);
    case KV__DB_REV:
        return kv__rec_decode(s, k, v, &r);
    case KV__DB_IDX:
        return kv__ver_decode(s, k->mv_data, k->mv_size, v, &ver);
    case KV__DB_LEASE:
        return kv__lease_decode(s, k, v, &ttl, &exp);
    case KV__DB_LEASE_KEYS:
        if (k->mv_size != 8 || v->mv_size == 0 || v->mv_size > KV_MAX_KEY)
            return kv__corrupt(s,
                               "lease_keys: %zu-byte id with a %zu-byte "
                               "key",
                               k->mv_size, v->mv_size);
        return 0;
    case KV__DB_LEASE_EXP:
        if (k->mv_size != 16 || v->mv_size != 0)
            return kv__corrupt(s,
                               "lease_exp: %zu-byte entry with a "
                               "%zu-byte value",
                               k->mv_size, v->mv_size);
        return 0;
    default:
        return kv__corrupt(s, "no database %d", db);
    }
}

int kv_verify(kv_store *s, kv_verify_report *out)
{
    memset(out, 0, sizeof *out);
    prefetch(s);
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    vctx c = {.s = s, .txn = txn, .out = out};
    s->errmsg[0] = 0;
    rc = verify(&c);
    mdb_txn_abort(txn);
    if (rc)
        snprintf(out->msg, sizeof out->msg, "%s",
                 s->errmsg[0] ? s->errmsg : kv_strerror(rc));
    return rc;
}
