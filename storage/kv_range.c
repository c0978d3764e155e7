/*
 * Range reads, for plain requests (in a read transaction of their own, from
 * any thread) and for range ops inside a write transaction.
 *
 * The index walk visits each key in range once (NEXT_NODUP) and picks its
 * newest version at the asked revision.  Only references are collected at
 * first; records are loaded from the history for all of them only when
 * the sort or a filter needs record fields, otherwise just for the ones
 * the limit keeps.  `count` is always the number of live keys in range.
 */
#include "kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref {
    int64_t main, sub;
    const uint8_t *key;
    size_t klen;
    bool loaded;
    kv__rec rec;
} ref;

static int bytecmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int ref_cmp(const void *x, const void *y, void *arg)
{
    const ref *a = x, *b = y;
    int c = 0;
    switch (*(const int *)arg) {
    case SKIFFPB__RANGE_REQUEST__SORT_TARGET__VERSION:
        c = cmp_i64(a->rec.version, b->rec.version);
        break;
    case SKIFFPB__RANGE_REQUEST__SORT_TARGET__CREATE:
        c = cmp_i64(a->rec.create, b->rec.create);
        break;
    case SKIFFPB__RANGE_REQUEST__SORT_TARGET__MOD:
        c = cmp_i64(a->main, b->main);
        break;
    case SKIFFPB__RANGE_REQUEST__SORT_TARGET__VALUE:
        c = bytecmp(a->rec.value, a->rec.value_len, b->rec.value,
                    b->rec.value_len);
        break;
    default:
        break;
    }
    return c ? c : bytecmp(a->key, a->klen, b->key, b->klen);
}

static int load(kv_store *s, MDB_txn *txn, ref *r)
{
    if (r->loaded)
        return 0;
    kv__ver v = {r->main, r->sub, false};
    int rc = kv__load(s, txn, r->key, r->klen, &v, &r->rec);
    if (rc)
        return rc;
    r->loaded = true;
    return 0;
}

static void reverse(ref *v, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        ref t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
}

int kv__range(kv_store *s, MDB_txn *txn, int64_t cur_rev,
              int64_t compact_rev, const Skiffpb__RangeRequest *req,
              cm_arena *a, Skiffpb__RangeResponse *out)
{
    int rc = kv__check_key(req->key.data, req->key.len);
    if (rc)
        return rc;
    int64_t at = req->revision;
    if (at > cur_rev && cur_rev != KV__LATEST)
        return KV_EFUTURE_REV;
    if (at > 0 && at < compact_rev)
        return KV_ECOMPACTED;
    if (at <= 0 || at == cur_rev)
        at = KV__LATEST;
    int target = req->sort_target;
    int order = req->sort_order;
    if (order == SKIFFPB__RANGE_REQUEST__SORT_ORDER__NONE &&
        target != SKIFFPB__RANGE_REQUEST__SORT_TARGET__KEY)
        order = SKIFFPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    bool need_rec = req->min_create_revision || req->max_create_revision ||
                    (order != SKIFFPB__RANGE_REQUEST__SORT_ORDER__NONE &&
                     (target == SKIFFPB__RANGE_REQUEST__SORT_TARGET__VERSION ||
                      target == SKIFFPB__RANGE_REQUEST__SORT_TARGET__CREATE ||
                      target == SKIFFPB__RANGE_REQUEST__SORT_TARGET__VALUE));
    const uint8_t *key = req->key.data, *end = req->range_end.data;
    size_t klen = req->key.len, endl = req->range_end.len;

    ref *refs = NULL;
    size_t n = 0, cap = 0;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->idx, &c)))
        return kv__lmdb_err(s, rc, "cursor");
    MDB_val k = {klen, (void *)key}, d;
    MDB_cursor_op op = endl ? MDB_SET_RANGE : MDB_SET;
    while ((rc = mdb_cursor_get(c, &k, &d, op)) == 0) {
        op = MDB_NEXT_NODUP;
        if (!kv__in_range(k.mv_data, k.mv_size, key, klen, end, endl))
            break;
        kv__ver v;
        rc = kv__latest(s, c, k.mv_data, k.mv_size, at, &v);
        if (rc == MDB_NOTFOUND) {
            /* Created after `at`; put the cursor back on this key so
             * NEXT_NODUP moves past it. */
            MDB_val kk = k;
            if ((rc = mdb_cursor_get(c, &kk, &d, MDB_SET)))
                break;
            continue;
        }
        if (rc)
            break;
        if (v.tombstone)
            continue;
        if ((req->min_mod_revision && v.main < req->min_mod_revision) ||
            (req->max_mod_revision && v.main > req->max_mod_revision))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            if (!(refs = kv__arena_grow(a, refs, n, cap, sizeof *refs))) {
                mdb_cursor_close(c);
                return -ENOMEM;
            }
        }
        ref *r = &refs[n];
        memset(r, 0, sizeof *r);
        r->main = v.main;
        r->sub = v.sub;
        r->key = k.mv_data;
        r->klen = k.mv_size;
        if (need_rec) {
            if ((rc = load(s, txn, r))) {
                mdb_cursor_close(c);
                return rc;
            }
            if ((req->min_create_revision &&
                 r->rec.create < req->min_create_revision) ||
                (req->max_create_revision &&
                 r->rec.create > req->max_create_revision))
                continue;
        }
        n++;
        if (!endl)
            break;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(s, rc, "scan index");

    out->count = (int64_t)n;
    if (req->count_only)
        return 0;
    if (order != SKIFFPB__RANGE_REQUEST__SORT_ORDER__NONE &&
        !(target == SKIFFPB__RANGE_REQUEST__SORT_TARGET__KEY &&
          order == SKIFFPB__RANGE_REQUEST__SORT_ORDER__ASCEND)) {
        if (n > 1)
            qsort_r(refs, n, sizeof *refs, ref_cmp, &target);
        if (order == SKIFFPB__RANGE_REQUEST__SORT_ORDER__DESCEND)
            reverse(refs, n);
    }
    size_t keep = n;
    if (req->limit > 0 && (uint64_t)req->limit < n)
        keep = (size_t)req->limit;
    out->more = keep < n;
    if (!keep)
        return 0;
    out->kvs = cm_arena_alloc(a, keep * sizeof *out->kvs);
    if (!out->kvs)
        return -ENOMEM;
    for (size_t i = 0; i < keep; i++) {
        if ((rc = load(s, txn, &refs[i])))
            return rc;
        out->kvs[i] = kv__kv_new(a, &refs[i].rec, req->keys_only);
        if (!out->kvs[i])
            return -ENOMEM;
    }
    out->n_kvs = keep;
    return 0;
}

int kv_range(kv_store *s, const Skiffpb__RangeRequest *req, cm_arena *arena,
             Skiffpb__RangeResponse **out, int64_t *compact_rev)
{
    Skiffpb__RangeResponse *resp = cm_arena_alloc(arena, sizeof *resp);
    Skiffpb__ResponseHeader *hdr = cm_arena_alloc(arena, sizeof *hdr);
    if (!resp || !hdr)
        return -ENOMEM;
    skiffpb__range_response__init(resp);
    skiffpb__response_header__init(hdr);
    resp->header = hdr;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    int64_t cur = 0, compact = 0;
    if ((rc = kv__meta_get(s, txn, "rev", &cur)) ||
        (rc = kv__meta_get(s, txn, "compact", &compact)))
        goto done;
    hdr->revision = cur;
    rc = kv__range(s, txn, cur, compact, req, arena, resp);
done:
    mdb_txn_abort(txn);
    if (compact_rev)
        *compact_rev = compact;
    if (rc == 0)
        *out = resp;
    return rc;
}
