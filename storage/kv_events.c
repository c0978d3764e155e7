/*
 * Reading history as watch events, for watchers that start in the past or
 * fell behind.  The history database is in revision order, so this is one
 * cursor walk from (from, 0); events of one revision are always delivered
 * together (a batch limit is only honoured at revision boundaries), which
 * is what makes watch responses atomic.  prev_kv comes from the key's
 * version just before the event, when compaction has not removed it.
 */
#include "kv_int.h"

#include <errno.h>
#include <string.h>

static int prev_of(kv_store *s, MDB_txn *txn, MDB_cursor *ic,
                   const kv__rec *r, cm_arena *a, Skiffpb__KeyValue **out)
{
    *out = NULL;
    uint8_t probe[KV__IDX_SZ] = {0};
    kv__revkey(probe, r->main, r->sub);
    MDB_val k = {r->key_len, (void *)r->key}, d = {KV__IDX_SZ, probe};
    int rc = mdb_cursor_get(ic, &k, &d, MDB_GET_BOTH_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(ic, &k, &d, MDB_PREV_DUP);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return kv__lmdb_err(s, rc, "read index");
    kv__ver ver;
    if ((rc = kv__ver_decode(s, r->key, r->key_len, &d, &ver)))
        return rc;
    if (ver.tombstone)
        return 0;
    kv__rec pr;
    if ((rc = kv__load(s, txn, r->key, r->key_len, &ver, &pr)))
        return rc;
    *out = kv__kv_new(a, &pr, false);
    return *out ? 0 : -ENOMEM;
}

static Skiffpb__Event *event_of(const kv__rec *r, cm_arena *a)
{
    Skiffpb__Event *e = cm_arena_alloc(a, sizeof *e);
    if (!e)
        return NULL;
    skiffpb__event__init(e);
    if (r->tombstone) {
        Skiffpb__KeyValue *kv = cm_arena_alloc(a, sizeof *kv);
        if (!kv)
            return NULL;
        skiffpb__key_value__init(kv);
        kv->key.data = cm_arena_memdup(a, r->key, r->key_len);
        kv->key.len = r->key_len;
        kv->mod_revision = r->main;
        e->type = SKIFFPB__EVENT__EVENT_TYPE__DELETE;
        e->kv = kv;
        return kv->key.data ? e : NULL;
    }
    e->type = SKIFFPB__EVENT__EVENT_TYPE__PUT;
    e->kv = kv__kv_new(a, r, false);
    return e->kv ? e : NULL;
}

int kv_events_read(kv_store *s, const uint8_t *key, size_t key_len,
                   const uint8_t *range_end, size_t end_len, int64_t from,
                   int64_t to, int prev_kv, size_t max_events,
                   cm_arena *arena, kv_events_cb cb, void *arg,
                   int64_t *next, int64_t *compact_rev)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL, *ic = NULL;
    *next = from;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    int64_t cur, compact;
    if ((rc = kv__meta_get(s, txn, "rev", &cur)) ||
        (rc = kv__meta_get(s, txn, "compact", &compact)))
        goto done;
    if (compact_rev)
        *compact_rev = compact;
    if (from <= compact) {
        rc = KV_ECOMPACTED;
        goto done;
    }
    if (from > cur + 1) {
        rc = KV_EFUTURE_REV;
        goto done;
    }
    if (to <= 0 || to > cur)
        to = cur;
    if ((rc = mdb_cursor_open(txn, s->rev, &c)) ||
        (rc = mdb_cursor_open(txn, s->idx, &ic))) {
        rc = kv__lmdb_err(s, rc, "cursor");
        goto done;
    }
    uint8_t start[16];
    kv__revkey(start, from, 0);
    MDB_val k = {16, start}, v;
    kv_events evs = {0};
    size_t cap = 0, delivered = 0;
    bool limited = false;
    MDB_cursor_op op = MDB_SET_RANGE;
    for (;;) {
        rc = mdb_cursor_get(c, &k, &v, op);
        op = MDB_NEXT;
        if (rc && rc != MDB_NOTFOUND) {
            rc = kv__lmdb_err(s, rc, "read history");
            goto done;
        }
        kv__rec r;
        bool end = rc == MDB_NOTFOUND;
        rc = 0;
        if (!end) {
            if ((rc = kv__rec_decode(s, &k, &v, &r)))
                goto done;
            end = r.main > to;
        }
        /* Flush the finished revision before moving past it. */
        if (evs.n && (end || r.main != evs.revision)) {
            delivered += evs.n;
            int stop = cb(arg, &evs);
            *next = evs.revision + 1;
            evs.n = 0;
            cap = 0;
            evs.ev = NULL;
            if (stop || (max_events && delivered >= max_events)) {
                limited = true;
                break;
            }
        }
        if (end)
            break;
        if (!kv__in_range(r.key, r.key_len, key, key_len, range_end,
                          end_len))
            continue;
        Skiffpb__Event *e = event_of(&r, arena);
        if (!e) {
            rc = -ENOMEM;
            goto done;
        }
        if (prev_kv && (rc = prev_of(s, txn, ic, &r, arena, &e->prev_kv)))
            goto done;
        if (evs.n == cap) {
            cap = cap ? cap * 2 : 8;
            evs.ev = kv__arena_grow(arena, evs.ev, evs.n, cap,
                                    sizeof *evs.ev);
            if (!evs.ev) {
                rc = -ENOMEM;
                goto done;
            }
        }
        evs.revision = r.main;
        evs.ev[evs.n++] = e;
    }
    if (!limited)
        *next = to + 1;
done:
    if (ic)
        mdb_cursor_close(ic);
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return rc;
}
