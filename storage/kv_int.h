/*
 * storage/kv_int.h -- internals shared by the storage files.
 *
 * LMDB layout (one environment, named databases):
 *   meta        short ASCII names -> fixed-width big-endian values
 *               ("applied", "rev", "compact", "alarm", "lease_seq", "keys")
 *   rev         be64 main | be64 sub  ->  record (see below).  The history:
 *               every key version and tombstone, in revision order.
 *   idx         DUPSORT|DUPFIXED: user key -> be64 main | be64 sub | flags,
 *               one dup per version, sorted by revision.
 *   lease       be64 id -> be64 ttl | be64 expiry_ms
 *   lease_keys  DUPSORT: be64 id -> user key
 *   lease_exp   be64 expiry_ms | be64 id -> (empty), for expiry queries
 *
 * A rev record is: flags(1) | create(8) | version(8) | lease(8) |
 * keylen(2) | key | value; flags bit 0 marks a tombstone.
 */
#ifndef SKIFF_KV_INT_H
#define SKIFF_KV_INT_H

#include <lmdb.h>
#include <stdbool.h>

#include "kv.h"

#define KV__REC_HDR 27
#define KV__IDX_SZ 17
#define KV__TOMBSTONE 0x01
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
} kv__wctx;

/* Applies a membership change in w's txn (kv_member.c). */
int kv__member_change(kv__wctx *w, const Skiffpb__MemberChange *mc,
                      Skiffpb__Membership **reply);

void kv__err_register(void);
int kv__lmdb_err(kv_store *s, int rc, const char *what);

/* Meta access inside a txn. */
int kv__meta_get(kv_store *s, MDB_txn *txn, const char *name, int64_t *out);
int kv__meta_put(kv_store *s, MDB_txn *txn, const char *name, int64_t v);
void kv__sizes(kv_store *s, MDB_txn *txn, uint64_t *in_use, uint64_t *high);
#define KV__ALARM_NOSPACE 1
#define KV__ALARM_CORRUPT 2

/* Records and versions (kv_record.c). */
void kv__revkey(uint8_t out[16], int64_t main, int64_t sub);
int kv__rec_decode(const MDB_val *k, const MDB_val *v, kv__rec *out);
/* Newest version of `key` with main <= at, via cursor `c` on idx.
 * 0 found, MDB_NOTFOUND none, else LMDB error. */
int kv__latest(MDB_cursor *c, const uint8_t *key, size_t klen, int64_t at,
               kv__ver *out);
/* Loads the rev record of a version. 0, MDB_NOTFOUND (KV_ECORRUPT for
 * callers), or an LMDB error. */
int kv__load(kv_store *s, MDB_txn *txn, int64_t main, int64_t sub,
             kv__rec *out);
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
int kv__lease_revoke(kv__wctx *w, int64_t id);
int kv__lease_keepalive(kv__wctx *w, int64_t id,
                        Skiffpb__LeaseKeepAliveResponse *resp);
int kv__lease_refresh_all(kv__wctx *w);

/* Compaction (kv_compact.c). */
int kv__compact(kv__wctx *w, int64_t rev);

#endif
