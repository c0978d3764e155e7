/*
 * storage/kv.h -- skiff's MVCC state machine on LMDB.
 *
 * The store implements etcd v3's data model: one global revision bumped
 * once per applied write, per-key create/mod revision, version and lease,
 * ranges at past revisions, transactions, leases, compaction, HashKV, a
 * quota with a NOSPACE alarm, and logical snapshots.
 *
 * Writes arrive only as serialized skiffpb.Command messages (kv.proto),
 * each with the Raft log index it was committed at.  Applying runs in one
 * LMDB write transaction that also records the index, so after a crash the
 * state and the applied index agree, and re-applying an index at or below
 * the applied one is a no-op.  Apply uses no clock and no randomness: time
 * comes inside the command.
 *
 * Threads: kv_apply* and kv_restore must be called from one thread at a
 * time (the single writer).  Every read function (kv_range, kv_events_read,
 * kv_hash, kv_lease_*, kv_status, kv_snapshot_write) may run concurrently
 * from any thread; each sees one consistent snapshot of the store.
 *
 * Memory: replies and events are allocated from a cm_arena the caller
 * passes and stay valid until the caller resets that arena.  Nothing in a
 * reply points into LMDB's map.
 */
#ifndef SKIFF_KV_H
#define SKIFF_KV_H

#include <stddef.h>
#include <stdint.h>

#include "cm.h"
#include "kv.pb-c.h"

/* ---- errors (-2000..-2999) ---------------------------------------------- */
#define KV_ERRNO_MAP(XX)                                                    \
    XX(KV_ECOMPACTED, -2001, "requested revision has been compacted")      \
    XX(KV_EFUTURE_REV, -2002, "requested revision is a future revision")   \
    XX(KV_EKEY_TOO_LARGE, -2003, "key is larger than 511 bytes")           \
    XX(KV_EVALUE_TOO_LARGE, -2004, "value is larger than the limit")       \
    XX(KV_EEMPTY_KEY, -2005, "key is not provided")                        \
    XX(KV_ENOSPACE, -2006, "database space exceeded")                      \
    XX(KV_ELEASE_NOT_FOUND, -2007, "requested lease not found")            \
    XX(KV_ELEASE_EXISTS, -2008, "lease already exists")                    \
    XX(KV_ETOO_MANY_OPS, -2009, "too many operations in txn request")      \
    XX(KV_EDUPLICATE_KEY, -2010, "duplicate key given in txn request")     \
    XX(KV_EKEY_NOT_FOUND, -2011, "key not found")                          \
    XX(KV_EVALUE_PROVIDED, -2012, "value is provided")                     \
    XX(KV_ELEASE_PROVIDED, -2013, "lease is provided")                     \
    XX(KV_EBAD_COMMAND, -2014, "malformed command")                        \
    XX(KV_EMAP_FULL, -2015, "LMDB map is full")                            \
    XX(KV_ECORRUPT, -2016, "stored data is corrupt")                       \
    XX(KV_EFAILED, -2017, "store failed and refuses further writes")       \
    XX(KV_EBAD_SNAPSHOT, -2018, "snapshot is malformed or truncated")      \
    XX(KV_ELMDB, -2019, "LMDB error")                                      \
    XX(KV_EBAD_TTL, -2020, "lease TTL is out of range")                    \
    XX(KV_EMEMBER_EXISTS, -2021, "member already exists")                  \
    XX(KV_EMEMBER_NOT_FOUND, -2022, "member not found")                    \
    XX(KV_EFORMAT, -2023,                                                   \
       "store file is of a format this version does not read")

enum kv_errno {
#define XX(name, val, msg) name = (val),
    KV_ERRNO_MAP(XX)
#undef XX
};
const char *kv_strerror(int code); /* any code; falls back to cm_strerror */
const char *kv_err_name(int code);

#define KV_MAX_KEY 511                  /* LMDB's key size limit */
#define KV_DEFAULT_MAX_VALUE (1536 * 1024) /* 1.5 MiB, the request limit */
#define KV_MAX_TXN_OPS 128
#define KV_DEFAULT_QUOTA (2ull << 30)   /* 2 GiB, etcd's default */

typedef struct kv_store kv_store;

/* How much each apply's commit waits for the disk. */
enum kv_sync {
    /* Every apply is durable when it returns: LMDB's full commit (data,
     * then meta page, each fdatasync'ed).  The default. */
    KV_SYNC_FULL = 0,
    /* One fdatasync per apply; the meta page is synced by the next commit.
     * Atomic and consistent always; an OS crash or power loss may undo the
     * last apply (never half of it).  Right when a durable log replays
     * entries past the applied index, as the Raft WAL does. */
    KV_SYNC_DATA = 1,
    /* No fdatasync; call kv_sync to make everything durable.  For tests,
     * benchmarks and bulk loads. */
    KV_SYNC_NONE = 2,
};

typedef struct kv_options {
    uint64_t quota_bytes; /* 0: KV_DEFAULT_QUOTA.  Past it: NOSPACE alarm */
    size_t max_value;     /* 0: KV_DEFAULT_MAX_VALUE */
    unsigned max_readers; /* 0: 126 */
    int max_txn_ops;      /* 0: KV_MAX_TXN_OPS */
    enum kv_sync sync;    /* default KV_SYNC_FULL */
    /* Optional, caller-owned: when kv_open fails it writes why here
     * (NUL-terminated, cut to errmsg_size), since there is no store left
     * to ask kv_errmsg. */
    char *errmsg;
    size_t errmsg_size;
} kv_options;

/* Opens (creating if needed) the store in directory `dir` (which must
 * exist).  `opts` may be NULL.  On success *out owns an LMDB environment
 * until kv_close.  Open reads only the meta values (their checksums are
 * verified); call kv_verify to check everything else.  Errors: -errno
 * from the filesystem, KV_ELMDB, KV_ECORRUPT when the files are not a
 * skiff store or a meta value is damaged, KV_EFORMAT when the store was
 * written in another on-disk format (format 1, before checksums, has no
 * marker), -ENOMEM.  The reason goes to opts->errmsg when given. */
int kv_open(kv_store **out, const char *dir, const kv_options *opts);
/* Flushes every committed apply to disk (fdatasync).  0, KV_ELMDB or
 * -errno.  Any thread. */
int kv_sync(kv_store *s);
/* Closes the store; no call may be in flight. */
void kv_close(kv_store *s);
/* Human context of the last failure on this store (borrowed, valid until
 * the next call on the store from the writer thread). */
const char *kv_errmsg(const kv_store *s);

/* ---- apply ------------------------------------------------------------- */

/* One committed log entry to apply.  `data` is a serialized skiffpb.Command
 * (borrowed for the call). */
typedef struct kv_entry {
    uint64_t index;
    const uint8_t *data;
    size_t len;
    uint64_t term; /* Raft term of the entry, recorded with the index */
} kv_entry;

/* Events of a revision in sub-revision order; `kv` of a DELETE carries key
 * and mod_revision (the deleting revision) only.  Events made by kv_apply
 * always carry prev_kv when the key had a live previous version (watchers
 * that did not ask for it get it stripped); kv_events_read fills it only
 * when asked.  Arena memory. */
typedef struct kv_events {
    int64_t revision;
    size_t n;
    Skiffpb__Event **ev;
} kv_events;

/* What one applied command produced. */
typedef struct kv_result {
    uint64_t index;    /* the entry's index */
    uint64_t cmd_id;   /* skiffpb.Command.id, to match the proposer */
    int skipped;       /* 1: index was already applied; nothing else set */
    int code;          /* 0, or why the command was refused (KV_E*): a
                          refused command changes nothing but its index */
    int64_t revision;  /* store revision after the command */
    /* The reply, by Command.op: one of these is set (arena memory). */
    Skiffpb__Command__OpCase op;
    union {
        Skiffpb__PutResponse *put;
        Skiffpb__DeleteRangeResponse *delete_range;
        Skiffpb__TxnResponse *txn;
        Skiffpb__CompactionResponse *compaction;
        Skiffpb__LeaseGrantResponse *lease_grant;
        Skiffpb__LeaseRevokeResponse *lease_revoke;
        Skiffpb__LeaseKeepAliveResponse *lease_keepalive;
        Skiffpb__AlarmResponse *alarm;
        Skiffpb__Membership *membership; /* after a member_change */
        void *any;
    } reply;
    kv_events events; /* empty when the command wrote nothing */
} kv_result;

/* Applies one entry in one LMDB write transaction that also records
 * `e->index` as applied, then fsyncs.  Results and events are allocated in
 * `arena`.  Returns 0 when the entry was applied (check res->code for a
 * refused command) or skipped; a negative code only when the store could
 * not record the entry: KV_EFAILED (store already failed), KV_ELMDB or
 * -errno (I/O: the store is now failed), -ENOMEM (nothing changed, may be
 * retried).  Writer thread only. */
int kv_apply(kv_store *s, const kv_entry *e, cm_arena *arena, kv_result *res);
/* Applies `n` entries with increasing indexes in one LMDB transaction and
 * one fsync; res[i] describes entry i.  Same errors as kv_apply; on error
 * no entry of the batch is applied. */
int kv_apply_batch(kv_store *s, const kv_entry *e, size_t n, cm_arena *arena,
                   kv_result *res);

/* Called inside kv_apply_batch_early once every entry of the batch has
 * been applied in the write transaction and only its commit (and fsync)
 * is left.  From then on res[] is final: the commit either makes exactly
 * those results durable or fails the store (an I/O error), which no
 * retry of the batch would turn into other results.  So a caller may
 * answer the batch's clients while the commit runs, as long as nothing
 * it serves afterwards reads the store's state before the batch. */
typedef void (*kv_applied_fn)(void *arg);
/* kv_apply_batch, calling `fn(arg)` on the calling thread before the
 * commit -- but only when the map has room enough that the commit cannot
 * run out of it (a full map re-applies the batch entry by entry, and the
 * results may then differ).  When it is not called, results are ready
 * when the function returns, as with kv_apply_batch. */
int kv_apply_batch_early(kv_store *s, const kv_entry *e, size_t n,
                         cm_arena *arena, kv_result *res, kv_applied_fn fn,
                         void *arg);

/* ---- reads (any thread) -------------------------------------------------- */

typedef struct kv_status {
    uint64_t applied_index;
    uint64_t applied_term;    /* Raft term of that entry */
    int64_t revision;         /* current revision */
    int64_t compact_revision; /* 0: never compacted */
    uint64_t db_size;         /* bytes of the data file in use */
    uint64_t db_size_in_use;  /* bytes of pages holding data */
    uint64_t quota_bytes;
    int nospace_alarm;        /* 1 while the NOSPACE alarm is active */
    int corrupt_alarm;        /* 1 while the CORRUPT alarm is active */
    int64_t keys;             /* live keys */
} kv_status;
/* Everything, including the sizes, which walk LMDB's free list (cost grows
 * with the free list: keep it off latency-sensitive threads). */
int kv_status_get(kv_store *s, kv_status *out);
/* The same without the sizes (db_size, db_size_in_use stay 0): a few meta
 * reads in one read transaction, cheap enough for an event loop. */
int kv_status_meta(kv_store *s, kv_status *out);

/* The cluster membership as last applied (*out is arena memory; an empty
 * Membership when none was ever applied).  0, -ENOMEM, KV_ECORRUPT,
 * KV_ELMDB. */
int kv_membership_get(kv_store *s, cm_arena *arena, Skiffpb__Membership **out);

/* Range per skiffpb.RangeRequest (revision 0 = current).  *out is arena
 * memory.  Errors: KV_ECOMPACTED (out->header->revision unset; the compact
 * revision is in *compact_rev if non-NULL), KV_EFUTURE_REV, KV_EKEY_TOO_LARGE,
 * KV_EEMPTY_KEY, -ENOMEM, KV_ELMDB, KV_ECORRUPT (a record or index entry
 * the range needs is damaged: nothing of it is returned; kv_errmsg names
 * it). */
int kv_range(kv_store *s, const Skiffpb__RangeRequest *req, cm_arena *arena,
             Skiffpb__RangeResponse **out, int64_t *compact_rev);

/* Callback of kv_events_read, once per revision with all of that
 * revision's events that match the range, in order.  Return nonzero to
 * stop after this revision.  `evs` is arena memory. */
typedef int (*kv_events_cb)(void *arg, const kv_events *evs);

/* Reads the history of [key, range_end) (kv_range's conventions) from
 * revision `from` to `to` inclusive (to = 0: current), calling `cb` once per
 * revision that has matching events.  Stops at a revision boundary once at
 * least `max_events` events were delivered (0: no limit), or when `cb`
 * returns nonzero.  prev_kv fills each event's prev_kv when history still
 * has it.  *next receives the first revision not read (resume there).
 * Errors: KV_ECOMPACTED when from <= the compact revision (which goes to
 * *compact_rev when non-NULL), KV_EFUTURE_REV when from > current + 1,
 * KV_ELMDB, -ENOMEM, KV_ECORRUPT (a damaged record in the span: events
 * of revisions before it may have been delivered; see kv_errmsg). */
int kv_events_read(kv_store *s, const uint8_t *key, size_t key_len,
                   const uint8_t *range_end, size_t end_len, int64_t from,
                   int64_t to, int prev_kv, size_t max_events,
                   cm_arena *arena, kv_events_cb cb, void *arg,
                   int64_t *next, int64_t *compact_rev);

typedef struct kv_hash {
    uint32_t hash;             /* CRC32C of history up to hash_revision */
    int64_t hash_revision;
    int64_t compact_revision;
} kv_hash;
/* HashKV: a hash of every retained key version with mod revision <= rev
 * (0: current).  Replicas with equal history and compactions give equal
 * hashes.  Every record hashed is verified first.  Errors: KV_ECOMPACTED,
 * KV_EFUTURE_REV, KV_ELMDB, KV_ECORRUPT. */
int kv_hash_get(kv_store *s, int64_t rev, kv_hash *out);

/* ---- leases (reads) -------------------------------------------------------- */

/* TimeToLive as of `now_ms`.  Unknown lease: out->TTL = -1 and 0 returned,
 * like etcd.  Arena memory. */
int kv_lease_ttl(kv_store *s, int64_t id, int with_keys, int64_t now_ms,
                 cm_arena *arena, Skiffpb__LeaseTimeToLiveResponse **out);
/* All lease ids, ascending.  Arena memory. */
int kv_lease_list(kv_store *s, cm_arena *arena,
                  Skiffpb__LeaseLeasesResponse **out);
/* Ids of leases whose expiry is <= now_ms, ascending by expiry, at most
 * `max`; *n receives how many.  The leader proposes revokes for them. */
int kv_lease_expired(kv_store *s, int64_t now_ms, int64_t *ids, size_t max,
                     size_t *n);

/* ---- integrity ----------------------------------------------------------- */

/* What kv_verify checked, and the first damage it found. */
typedef struct kv_verify_report {
    uint64_t revs;        /* history records whose checksum was verified */
    uint64_t bytes;       /* bytes of those records (keys and values) */
    uint64_t versions;    /* idx versions verified against their record */
    uint64_t keys;        /* distinct keys in idx */
    uint64_t live_keys;   /* keys whose newest version is not a delete */
    uint64_t leased_keys; /* live keys attached to a lease */
    uint64_t leases;      /* lease records verified */
    uint64_t lease_keys;  /* lease_keys entries */
    uint64_t lease_exp;   /* lease_exp entries */
    uint64_t meta;        /* meta values verified */
    /* The first damage found, naming what and where, e.g. "rev 1234/0:
     * checksum mismatch (stored 0x1a2b3c4d, computed 0x5e6f7a8b)"; empty
     * when the store is intact. */
    char msg[256];
} kv_verify_report;

/* Checks the whole store in one read transaction: every checksum (history
 * records, index versions, leases, meta values) and every cross-reference
 * (each index version names an existing record with the same key and
 * tombstone flag and each record has one; the lease tables agree with the
 * live keys' leases and with each other; meta "keys" counts the live
 * keys).  Stops at the first damage.  Cost: sequential walks of every
 * database and a sort of the index versions (16 bytes each, in windows of
 * at most 4M versions); no random lookups except for leased keys.  It
 * reads the data file through once first, so that a cold store is read
 * sequentially rather than faulted in page by page.
 *
 * Returns 0 when the store is intact, KV_ECORRUPT when it is not (the
 * reason is in out->msg and kv_errmsg), or KV_ELMDB, -errno or -ENOMEM
 * when it could not be read (reason in out->msg).  *out is filled either
 * way (the counts are of what was checked before stopping).  Any thread;
 * meant for startup, before the store serves: a store that fails must not
 * be served. */
int kv_verify(kv_store *s, kv_verify_report *out);

/* ---- snapshots ------------------------------------------------------------- */

/* Writes a consistent snapshot of the whole store to `fd` (a stream: a
 * header with the applied index, every record checksummed, a trailer).
 * *applied_index receives the index the snapshot is at.  Errors: -errno
 * from write(2), KV_ELMDB, -ENOMEM, KV_ECORRUPT (an entry failed its
 * check: a damaged store is never shipped; see kv_errmsg). */
int kv_snapshot_write(kv_store *s, int fd, uint64_t *applied_index);
/* Replaces the whole store with the snapshot read from `fd`, in one LMDB
 * transaction: on any error (KV_EBAD_SNAPSHOT, also for a record failing
 * its own checksum or a snapshot of another store format; -errno) the
 * store is left as it was.  Writer thread only, with no reads in flight. */
int kv_restore(kv_store *s, int fd);

/* Builds a serialized Command (for tests, tools and proposers): packs `cmd`
 * into `out` (appended).  0 or -ENOMEM. */
int kv_command_pack(const Skiffpb__Command *cmd, cm_buf *out);

#endif /* SKIFF_KV_H */
