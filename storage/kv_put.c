/*
 * The two primitive writes, put and delete, shared by plain requests,
 * transactions and lease revocation.
 *
 * Each write takes the next sub-revision of the pending revision, appends
 * one record to the history (rev), one version to the key's index entry,
 * keeps lease attachments in step, and adds an event (with the previous
 * version, when it was live) to the pending revision's event list.  The
 * history is append-only in revision order, so rev is written with
 * MDB_APPEND.  Values read from the map are copied to the arena before any
 * write, since an LMDB write may move the page they live on.
 */
#include "kv_int.h"

#include <errno.h>
#include <string.h>

static int add_event(kv__wctx *w, Skiffpb__Event *e)
{
    if (w->nev == w->capev) {
        size_t cap = w->capev ? w->capev * 2 : 8;
        Skiffpb__Event **n =
            kv__arena_grow(w->arena, w->ev, w->nev, cap, sizeof *n);
        if (!n)
            return -ENOMEM;
        w->ev = n;
        w->capev = cap;
    }
    w->ev[w->nev++] = e;
    return 0;
}

static int write_version(kv__wctx *w, const uint8_t *key, size_t klen,
                         const uint8_t *val, size_t vlen, int64_t create,
                         int64_t version, int64_t lease, bool tombstone)
{
    kv_store *s = w->s;
    int64_t main = w->rev + 1, sub = w->sub++;
    uint8_t kb[16], ib[KV__IDX_SZ];
    kv__revkey(kb, main, sub);
    size_t n = KV__REC_HDR + klen + vlen;
    MDB_val k = {16, kb}, v = {n, NULL};
    int rc = mdb_put(w->txn, s->rev, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc)
        return kv__lmdb_err(s, rc, "append history");
    uint8_t *p = v.mv_data;
    p[4] = tombstone ? KV__TOMBSTONE : 0;
    cm_be64_put(p + 5, (uint64_t)create);
    cm_be64_put(p + 13, (uint64_t)version);
    cm_be64_put(p + 21, (uint64_t)lease);
    cm_be16_put(p + 29, (uint16_t)klen);
    memcpy(p + KV__REC_HDR, key, klen);
    if (vlen)
        memcpy(p + KV__REC_HDR + klen, val, vlen);
    kv__rec_seal(kb, p, n);
    kv__idx_make(ib, key, klen, main, sub, tombstone);
    MDB_val ik = {klen, (void *)key}, iv = {KV__IDX_SZ, ib};
    rc = mdb_put(w->txn, s->idx, &ik, &iv, 0);
    if (rc)
        return kv__lmdb_err(s, rc, "index version");
    w->changed = true;
    return 0;
}

/* The live version of `key` now (including this txn's writes), copied to
 * the arena; *out NULL when the key is absent or deleted. */
static int current(kv__wctx *w, const uint8_t *key, size_t klen,
                   Skiffpb__KeyValue **out)
{
    MDB_cursor *c;
    *out = NULL;
    int rc = mdb_cursor_open(w->txn, w->s->idx, &c);
    if (rc)
        return kv__lmdb_err(w->s, rc, "cursor");
    kv__ver ver;
    rc = kv__latest(w->s, c, key, klen, KV__LATEST, &ver);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND || (rc == 0 && ver.tombstone))
        return 0;
    if (rc)
        return kv__lmdb_err(w->s, rc, "read index");
    kv__rec r;
    if ((rc = kv__load(w->s, w->txn, key, klen, &ver, &r)))
        return rc;
    *out = kv__kv_new(w->arena, &r, false);
    return *out ? 0 : -ENOMEM;
}

int kv__validate_put(kv__wctx *w, const Skiffpb__PutRequest *r)
{
    int rc = kv__check_key(r->key.data, r->key.len);
    if (rc)
        return rc;
    if (r->value.len > w->s->opts.max_value)
        return KV_EVALUE_TOO_LARGE;
    if (r->ignore_value && r->value.len)
        return KV_EVALUE_PROVIDED;
    if (r->ignore_lease && r->lease)
        return KV_ELEASE_PROVIDED;
    if (r->lease && !r->ignore_lease) {
        rc = kv__lease_exists(w, r->lease);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return KV_ELEASE_NOT_FOUND;
    }
    if (r->ignore_value || r->ignore_lease) {
        Skiffpb__KeyValue *prev;
        rc = current(w, r->key.data, r->key.len, &prev);
        if (rc)
            return rc;
        if (!prev)
            return KV_EKEY_NOT_FOUND;
    }
    return 0;
}

int kv__put(kv__wctx *w, const Skiffpb__PutRequest *r,
            Skiffpb__PutResponse *resp)
{
    Skiffpb__KeyValue *prev;
    int rc = current(w, r->key.data, r->key.len, &prev);
    if (rc)
        return rc;
    const uint8_t *val = r->value.data;
    size_t vlen = r->value.len;
    int64_t lease = r->lease;
    if (r->ignore_value && prev) {
        val = prev->value.data;
        vlen = prev->value.len;
    }
    if (r->ignore_lease && prev)
        lease = prev->lease;
    int64_t main = w->rev + 1;
    int64_t create = prev ? prev->create_revision : main;
    int64_t version = prev ? prev->version + 1 : 1;
    int64_t old_lease = prev ? prev->lease : 0;
    if (old_lease != lease) {
        if (old_lease &&
            (rc = kv__lease_attach(w, old_lease, r->key.data, r->key.len,
                                   false)))
            return rc;
        if (lease && (rc = kv__lease_attach(w, lease, r->key.data,
                                            r->key.len, true)))
            return rc;
    }
    rc = write_version(w, r->key.data, r->key.len, val, vlen, create,
                       version, lease, false);
    if (rc)
        return rc;
    if (!prev)
        w->keys++;

    Skiffpb__Event *e = cm_arena_alloc(w->arena, sizeof *e);
    Skiffpb__KeyValue *kv = cm_arena_alloc(w->arena, sizeof *kv);
    if (!e || !kv)
        return -ENOMEM;
    skiffpb__event__init(e);
    skiffpb__key_value__init(kv);
    kv->key.data = cm_arena_memdup(w->arena, r->key.data, r->key.len);
    kv->value.data = cm_arena_memdup(w->arena, val, vlen);
    if (!kv->key.data || (vlen && !kv->value.data))
        return -ENOMEM;
    kv->key.len = r->key.len;
    kv->value.len = vlen;
    kv->create_revision = create;
    kv->mod_revision = main;
    kv->version = version;
    kv->lease = lease;
    e->type = SKIFFPB__EVENT__EVENT_TYPE__PUT;
    e->kv = kv;
    e->prev_kv = prev;
    if ((rc = add_event(w, e)))
        return rc;
    if (resp && r->prev_kv)
        resp->prev_kv = prev;
    return 0;
}

int kv__delete_range(kv__wctx *w, const uint8_t *key, size_t klen,
                     const uint8_t *end, size_t endl, bool want_prev,
                     Skiffpb__DeleteRangeResponse *resp)
{
    kv_store *s = w->s;
    /* Collect the live keys first: writing while a cursor walks the same
     * database would invalidate it. */
    Skiffpb__KeyValue **live = NULL;
    size_t n = 0, cap = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, s->idx, &c);
    if (rc)
        return kv__lmdb_err(s, rc, "cursor");
    MDB_val k = {klen, (void *)key}, d;
    MDB_cursor_op op = endl ? MDB_SET_RANGE : MDB_SET;
    while ((rc = mdb_cursor_get(c, &k, &d, op)) == 0) {
        op = MDB_NEXT_NODUP;
        if (!kv__in_range(k.mv_data, k.mv_size, key, klen, end, endl))
            break;
        rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
        if (rc)
            break;
        kv__ver ver;
        if ((rc = kv__ver_decode(s, k.mv_data, k.mv_size, &d, &ver)))
            break;
        if (ver.tombstone)
            continue;
        kv__rec r;
        if ((rc = kv__load(s, w->txn, k.mv_data, k.mv_size, &ver, &r)))
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            live = kv__arena_grow(w->arena, live, n, cap, sizeof *live);
            if (!live) {
                mdb_cursor_close(c);
                return -ENOMEM;
            }
        }
        if (!(live[n++] = kv__kv_new(w->arena, &r, false))) {
            mdb_cursor_close(c);
            return -ENOMEM;
        }
        if (!endl)
            break;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(s, rc, "scan index");

    for (size_t i = 0; i < n; i++) {
        Skiffpb__KeyValue *prev = live[i];
        if (prev->lease && (rc = kv__lease_attach(w, prev->lease,
                                                  prev->key.data,
                                                  prev->key.len, false)))
            return rc;
        int64_t main = w->rev + 1;
        rc = write_version(w, prev->key.data, prev->key.len, NULL, 0, 0, 0,
                           0, true);
        if (rc)
            return rc;
        w->keys--;
        Skiffpb__Event *e = cm_arena_alloc(w->arena, sizeof *e);
        Skiffpb__KeyValue *kv = cm_arena_alloc(w->arena, sizeof *kv);
        if (!e || !kv)
            return -ENOMEM;
        skiffpb__event__init(e);
        skiffpb__key_value__init(kv);
        kv->key = prev->key;
        kv->mod_revision = main;
        e->type = SKIFFPB__EVENT__EVENT_TYPE__DELETE;
        e->kv = kv;
        e->prev_kv = prev;
        if ((rc = add_event(w, e)))
            return rc;
    }
    if (resp) {
        resp->deleted = (int64_t)n;
        if (want_prev) {
            resp->prev_kvs = live;
            resp->n_prev_kvs = n;
        }
    }
    return 0;
}
