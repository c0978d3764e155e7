/*
 * Compaction and HashKV.
 *
 * Compacting at revision C drops every version at or below C that a read
 * at C or later cannot see: all versions of a key older than its newest
 * one at or below C, and that newest one too when it is a tombstone.  The
 * newest version of every key live at C therefore survives, whatever its
 * age.  Compaction runs inside the applying transaction, so it is part of
 * the replicated history: replicas with equal logs compact identically and
 * their HashKV agree.  It walks the history up to C once; its cost is
 * proportional to the history it examines.
 */
#include "kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

int kv__compact(kv__wctx *w, int64_t rev)
{
    kv_store *s = w->s;
    MDB_cursor *rc_cur, *ic;
    int rc = mdb_cursor_open(w->txn, s->rev, &rc_cur);
    if (rc)
        return kv__lmdb_err(s, rc, "cursor");
    if ((rc = mdb_cursor_open(w->txn, s->idx, &ic))) {
        mdb_cursor_close(rc_cur);
        return kv__lmdb_err(s, rc, "cursor");
    }
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(rc_cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        kv__rec r;
        if ((rc = kv__rec_decode(s, &k, &v, &r)))
            break;
        if (r.main > rev)
            break;
        kv__ver latest;
        rc = kv__latest(s, ic, r.key, r.key_len, rev, &latest);
        if (rc == MDB_NOTFOUND)
            rc = kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                                ": key has no version in idx",
                             r.main, r.sub);
        if (rc)
            break;
        if (latest.main == r.main && latest.sub == r.sub && !r.tombstone)
            continue;
        uint8_t dup[KV__IDX_SZ];
        kv__idx_make(dup, r.key, r.key_len, r.main, r.sub, r.tombstone);
        MDB_val ik = {r.key_len, (void *)r.key}, iv = {KV__IDX_SZ, dup};
        rc = mdb_del(w->txn, s->idx, &ik, &iv);
        if (rc == MDB_NOTFOUND)
            rc = kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                                ": no matching version in idx",
                             r.main, r.sub);
        if (rc)
            break;
        if ((rc = mdb_cursor_del(rc_cur, 0)))
            break;
    }
    mdb_cursor_close(ic);
    mdb_cursor_close(rc_cur);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(s, rc, "compact");
    w->compact_rev = rev;
    return 0;
}

int kv_hash_get(kv_store *s, int64_t rev, kv_hash *out)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    int64_t cur, compact;
    if ((rc = kv__meta_get(s, txn, "rev", &cur)) ||
        (rc = kv__meta_get(s, txn, "compact", &compact)))
        goto done;
    if (rev == 0)
        rev = cur;
    if (rev > cur) {
        rc = KV_EFUTURE_REV;
        goto done;
    }
    if (rev < compact) {
        rc = KV_ECOMPACTED;
        goto done;
    }
    if ((rc = mdb_cursor_open(txn, s->rev, &c))) {
        rc = kv__lmdb_err(s, rc, "cursor");
        goto done;
    }
    uint32_t h = 0;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        kv__rec r;
        if ((rc = kv__rec_decode(s, &k, &v, &r)))
            break;
        if (r.main > rev)
            break;
        h = cm_crc32c(h, k.mv_data, k.mv_size);
        h = cm_crc32c(h, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    rc = rc == 0 || rc == MDB_NOTFOUND ? 0 : kv__lmdb_err(s, rc, "hash");
    out->hash = h;
    out->hash_revision = rev;
    out->compact_revision = compact;
done:
    mdb_txn_abort(txn);
    return rc;
}
