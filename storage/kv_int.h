/*
 * storage/kv_int.h -- internals shared by the storage files.
 *
 * LMDB layout (one environment, named databases), store format 2:
 *   meta        short ASCII names -> value | crc32c(4)
 *               ("format", "applied", "applied_term", "rev", "compact",
 *               "alarm", "lease_seq", "keys": be64 values; "members": a
 *               packed skiffpb.Membership)
 *   rev         be64 main | be64 sub  ->  record (see below).  The history:
 *               every key version and tombstone, in revision order.
 *   idx         DUPSORT|DUPFIXED: user key -> be64 main | be64 sub | flags |
 *               crc32c(4), one dup per version, sorted by revision.
 *   lease       be64 id -> be64 ttl | be64 expiry_ms | crc32c(4)
 *   lease_keys  DUPSORT: be64 id -> user key
 *   lease_exp   be64 expiry_ms | be64 id -> (empty), for expiry queries
 *
 * A rev record is: crc32c(4) | flags(1) | create(8) | version(8) |
 * lease(8) | keylen(2) | key | value; flags bit 0 marks a tombstone.
 *
 * Every checksum is a big-endian CRC32C over the LMDB key followed by the
 * rest of the value, so a value that moved under another key fails too.
 * lease_keys and lease_exp carry no checksum: they are cross-checked
 * against the records and the lease table (kv_verify.c).
 */
#ifndef SKIFF_KV_INT_H
#define SKIFF_KV_INT_H

#include <lmdb.h>
#include <stdbool.h>

#include "kv.h"

/* On-disk format, kept in meta "format".  1 (no marker) had no checksums;
 * 2 added them.  A store of any other format is refused at open. */
#define KV__FORMAT 2
#define KV__SUM 4        /* bytes of a CRC32C */
#define KV__REC_HDR 31   /* crc, flags, create, version, lease, keylen */
#define KV__IDX_SZ 21    /* main, sub, flags, crc */
#define KV__LEASE_SZ 20  /* ttl, expiry, crc */
#define KV__META_SZ 12   /* be64, crc */
#define KV__TOMBSTONE 0x01

/* The databases, in snapshot order. */
enum {
    KV__DB_META,
    KV__DB_REV,
    KV__DB_IDX,
    KV__DB_LEASE,
    KV__DB_LEASE_KEYS,
    KV__DB_LEASE_EXP,
    KV__NDBS
};
/* "Newest, including this transaction's own writes." */
#define KV__LATEST INT64_MAX

struct kv_store {
    MDB_env *env;
    MDB_dbi meta, rev, idx, lease, lease_keys, lease_exp;
    kv_options opts;
    unsigned page_size;
    uint64_t map_size;
    int failed;
    char errmsg[256];
    /* Writer-thread copies of meta, published after each commit. */
    uint64_t applied;
    uint64_t applied_term;
    int64_t cur_rev;
    int64_t compact_rev;
    int alarm;
    int64_t lease_seq;
    int64_t keys;
    /* Index versions kv_verify matches per window; 0: its default.  Tests
     * set it small to exercise the windows. */
    size_t verify_window;
};

/* One version of a key as the index knows it. */
typedef struct kv__ver {
    int64_t main, sub;
    bool tombstone;
} kv__ver;

/* A decoded rev record; pointers into LMDB's map (valid until the txn
 * ends or, in a write txn, until the next write). */
typedef struct kv__rec {
    int64_t main, sub;
    bool tombstone;
    int64_t create, version, lease;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} kv__rec;

/* State of one write transaction (a command or a batch of them). */
typedef struct kv__wctx {
    kv_store *s;
    MDB_txn *txn;
    cm_arena *arena;
    int64_t rev;      /* last committed revision seen by this txn */
    int64_t sub;      /* next sub-revision of the pending revision */
    bool changed;     /* the pending revision (rev + 1) has writes */
    int64_t compact_rev;
    int alarm;
    int64_t lease_seq;
    int64_t keys;
    int64_t now_ms;
    Skiffpb__ResponseHeader *hdr; /* shared by the command's replies */
    /* Events of the pending revision (arena array, grown by doubling). */
    Skiffpb__Event **ev;
    size_t nev, capev;
    /* kv_apply_batch_early's callback and the pages its batch may need. */
    kv_applied_fn early;
    void *early_arg;
    uint64_t early_pages;
} kv__wctx;

/* Applies a membership change in w's txn (kv_member.c). */
int kv__member_change(kv__wctx *w, const Skiffpb__MemberChange *mc,
                      Skiffpb__Membership **reply);

void kv__err_register(void);
/* Maps an LMDB return code to a module code and, for LMDB codes, puts
 * "what: LMDB's message" in errmsg.  Codes that are already the module's
 * (KV_E*, -errno) pass through with errmsg untouched. */
int kv__lmdb_err(kv_store *s, int rc, const char *what);
/* Puts the formatted message in s->errmsg (when s is not NULL) and
 * returns KV_ECORRUPT. */
int kv__corrupt(kv_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes key as printable text (escaped, cut at ~48 bytes) into buf. */
const char *kv__keystr(char *buf, size_t n, const uint8_t *k, size_t kl);

/* Meta access inside a txn.  get: a missing name reads as 0; a damaged
 * value is KV_ECORRUPT. */
int kv__meta_get(kv_store *s, MDB_txn *txn, const char *name, int64_t *out);
int kv__meta_put(kv_store *s, MDB_txn *txn, const char *name, int64_t v);
/* Checksums of meta values: `sum` over name and payload; `check` verifies
 * a stored value (payload | crc) and returns the payload's length in
 * *len, or KV_ECORRUPT naming the entry. */
uint32_t kv__meta_sum(const MDB_val *k, const uint8_t *payload, size_t n);
int kv__meta_check(kv_store *s, const MDB_val *k, const MDB_val *v,
                   size_t *len);
void kv__sizes(kv_store *s, MDB_txn *txn, uint64_t *in_use, uint64_t *high);
#define KV__ALARM_NOSPACE 1
#define KV__ALARM_CORRUPT 2

/* Records and versions (kv_record.c). */
void kv__revkey(uint8_t out[16], int64_t main, int64_t sub);
/* Stores the checksum of a rev record whose other bytes are written. */
void kv__rec_seal(const uint8_t revkey[16], uint8_t *v, size_t n);
/* Decodes a rev record after verifying its checksum: 0, or KV_ECORRUPT
 * with errmsg naming the revision (s may be NULL).  Every read of the
 * history goes through it. */
int kv__rec_decode(kv_store *s, const MDB_val *k, const MDB_val *v,
                   kv__rec *out);
/* The same without the checksum, for a record verified earlier in the
 * same transaction (kv_verify's second pass). */
int kv__rec_parse(kv_store *s, const MDB_val *k, const MDB_val *v,
                  kv__rec *out);
/* Builds the idx dup of a version of `key`. */
void kv__idx_make(uint8_t out[KV__IDX_SZ], const uint8_t *key, size_t klen,
                  int64_t main, int64_t sub, bool tombstone);
/* Decodes an idx dup of `key` after verifying its checksum: 0 or
 * KV_ECORRUPT. */
int kv__ver_decode(kv_store *s, const uint8_t *key, size_t klen,
                   const MDB_val *d, kv__ver *out);
/* Newest version of `key` with main <= at, via cursor `c` on idx.
 * 0 found, MDB_NOTFOUND none, KV_ECORRUPT, else an LMDB error. */
int kv__latest(kv_store *s, MDB_cursor *c, const uint8_t *key, size_t klen,
               int64_t at, kv__ver *out);
/* Loads the rev record of version `v` of `key` and checks that it is
 * that key's and agrees on the tombstone flag.  0, KV_ECORRUPT (also when
 * the record is missing), or a code from kv__lmdb_err. */
int kv__load(kv_store *s, MDB_txn *txn, const uint8_t *key, size_t klen,
             const kv__ver *v, kv__rec *out);
/* Fills an arena KeyValue from a record (value omitted if keys_only). */
Skiffpb__KeyValue *kv__kv_new(cm_arena *a, const kv__rec *r, bool keys_only);
/* Whether key is inside [key0, end) under kv_range's conventions. */
bool kv__in_range(const uint8_t *k, size_t kl, const uint8_t *key0,
                  size_t k0l, const uint8_t *end, size_t endl);
int kv__check_key(const uint8_t *k, size_t kl);
void *kv__arena_grow(cm_arena *a, void *old, size_t oldn, size_t newn,
                     size_t elem);

/* Writes (kv_put.c): each records history, index, leases and an event. */
int kv__put(kv__wctx *w, const Skiffpb__PutRequest *r,
            Skiffpb__PutResponse *resp);
int kv__delete_range(kv__wctx *w, const uint8_t *key, size_t klen,
                     const uint8_t *end, size_t endl, bool want_prev,
                     Skiffpb__DeleteRangeResponse *resp);
int kv__validate_put(kv__wctx *w, const Skiffpb__PutRequest *r);

/* Range over a txn (kv_range.c); `at` may be KV__LATEST in a write txn. */
int kv__range(kv_store *s, MDB_txn *txn, int64_t cur_rev,
              int64_t compact_rev, const Skiffpb__RangeRequest *req,
              cm_arena *a, Skiffpb__RangeResponse *out);

/* Transactions (kv_txn.c). */
int kv__txn(kv__wctx *w, const Skiffpb__TxnRequest *req,
            Skiffpb__TxnResponse **out);

/* Leases (kv_lease.c). */
int kv__lease_exists(kv__wctx *w, int64_t id);
int kv__lease_attach(kv__wctx *w, int64_t id, const uint8_t *key,
                     size_t klen, bool attach);
int kv__lease_grant(kv__wctx *w, const Skiffpb__LeaseGrantRequest *r,
                    Skiffpb__LeaseGrantResponse *resp);
/* Revokes lease id (KV_ELEASE_NOT_FOUND when there is none); with
 * only_expired, only if it is past its expiry at w->now_ms (else nothing:
 * the leader's expiry command). */
int kv__lease_revoke(kv__wctx *w, int64_t id, bool only_expired);
int kv__lease_keepalive(kv__wctx *w, int64_t id,
                        Skiffpb__LeaseKeepAliveResponse *resp);
int kv__lease_refresh_all(kv__wctx *w);

/* Compaction (kv_compact.c). */
int kv__compact(kv__wctx *w, int64_t rev);

/* Lease values (kv_lease.c): seal writes ttl, expiry and the checksum;
 * decode verifies it: 0 or KV_ECORRUPT. */
void kv__lease_seal(uint8_t out[KV__LEASE_SZ], const MDB_val *k,
                    int64_t ttl, int64_t expiry);
int kv__lease_decode(kv_store *s, const MDB_val *k, const MDB_val *v,
                     int64_t *ttl, int64_t *expiry);

/* Checks one entry of database `db` on its own (checksum, sizes): 0 or
 * KV_ECORRUPT (kv_verify.c).  Snapshots check every entry they write and
 * restore. */
int kv__entry_check(kv_store *s, int db, const MDB_val *k, const MDB_val *v);

#endif
