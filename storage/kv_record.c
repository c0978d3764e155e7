/*
 * History records and the per-key version index.
 *
 * Revisions are stored big-endian so LMDB's bytewise order is revision
 * order: the rev database is the history in apply order, and a key's dups
 * in idx are its versions oldest first.  Finding a key's newest version at
 * or below a revision is one GET_BOTH_RANGE (first version above it) and a
 * step back, so ranges at past revisions cost the same as current ones.
 */
#include "kv_int.h"

#include <errno.h>
#include <string.h>

void kv__revkey(uint8_t out[16], int64_t main, int64_t sub)
{
    cm_be64_put(out, (uint64_t)main);
    cm_be64_put(out + 8, (uint64_t)sub);
}

int kv__rec_decode(const MDB_val *k, const MDB_val *v, kv__rec *r)
{
    if (k->mv_size != 16 || v->mv_size < KV__REC_HDR)
        return KV_ECORRUPT;
    const uint8_t *p = v->mv_data;
    r->main = (int64_t)cm_be64_get(k->mv_data);
    r->sub = (int64_t)cm_be64_get((const uint8_t *)k->mv_data + 8);
    r->tombstone = p[0] & KV__TOMBSTONE;
    r->create = (int64_t)cm_be64_get(p + 1);
    r->version = (int64_t)cm_be64_get(p + 9);
    r->lease = (int64_t)cm_be64_get(p + 17);
    r->key_len = cm_be16_get(p + 25);
    if (KV__REC_HDR + r->key_len > v->mv_size)
        return KV_ECORRUPT;
    r->key = p + KV__REC_HDR;
    r->value = r->key + r->key_len;
    r->value_len = v->mv_size - KV__REC_HDR - r->key_len;
    return 0;
}

static void ver_decode(const MDB_val *d, kv__ver *out)
{
    const uint8_t *p = d->mv_data;
    out->main = (int64_t)cm_be64_get(p);
    out->sub = (int64_t)cm_be64_get(p + 8);
    out->tombstone = p[16] & KV__TOMBSTONE;
}

int kv__latest(MDB_cursor *c, const uint8_t *key, size_t klen, int64_t at,
               kv__ver *out)
{
    MDB_val k = {klen, (void *)key}, d;
    int rc;
    if (at == KV__LATEST) {
        rc = mdb_cursor_get(c, &k, &d, MDB_SET);
        if (rc)
            return rc;
        rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
        if (rc)
            return rc;
        ver_decode(&d, out);
        return 0;
    }
    uint8_t probe[KV__IDX_SZ] = {0};
    cm_be64_put(probe, (uint64_t)at + 1);
    d.mv_size = KV__IDX_SZ;
    d.mv_data = probe;
    rc = mdb_cursor_get(c, &k, &d, MDB_GET_BOTH_RANGE);
    if (rc == 0) {
        /* Positioned on the first version above `at`; step back. */
        rc = mdb_cursor_get(c, &k, &d, MDB_PREV_DUP);
    } else if (rc == MDB_NOTFOUND) {
        /* Every version is at or below `at` (or the key is absent). */
        k.mv_size = klen;
        k.mv_data = (void *)key;
        rc = mdb_cursor_get(c, &k, &d, MDB_SET);
        if (rc == 0)
            rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
    }
    if (rc)
        return rc;
    ver_decode(&d, out);
    return 0;
}

int kv__load(kv_store *s, MDB_txn *txn, int64_t main, int64_t sub,
             kv__rec *out)
{
    uint8_t kb[16];
    kv__revkey(kb, main, sub);
    MDB_val k = {16, kb}, v;
    int rc = mdb_get(txn, s->rev, &k, &v);
    if (rc)
        return rc;
    return kv__rec_decode(&k, &v, out) ? MDB_CORRUPTED : 0;
}

Skiffpb__KeyValue *kv__kv_new(cm_arena *a, const kv__rec *r, bool keys_only)
{
    Skiffpb__KeyValue *kv = cm_arena_alloc(a, sizeof *kv);
    if (!kv)
        return NULL;
    skiffpb__key_value__init(kv);
    kv->key.data = cm_arena_memdup(a, r->key, r->key_len);
    if (!kv->key.data)
        return NULL;
    kv->key.len = r->key_len;
    kv->create_revision = r->create;
    kv->mod_revision = r->main;
    kv->version = r->version;
    kv->lease = r->lease;
    if (!keys_only && r->value_len) {
        kv->value.data = cm_arena_memdup(a, r->value, r->value_len);
        if (!kv->value.data)
            return NULL;
        kv->value.len = r->value_len;
    }
    return kv;
}

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

bool kv__in_range(const uint8_t *k, size_t kl, const uint8_t *key0,
                  size_t k0l, const uint8_t *end, size_t endl)
{
    if (endl == 0)
        return keycmp(k, kl, key0, k0l) == 0;
    if (keycmp(k, kl, key0, k0l) < 0)
        return false;
    if (endl == 1 && end[0] == 0)
        return true; /* from-key */
    return keycmp(k, kl, end, endl) < 0;
}

int kv__check_key(const uint8_t *k, size_t kl)
{
    (void)k;
    if (kl == 0)
        return KV_EEMPTY_KEY;
    if (kl > KV_MAX_KEY)
        return KV_EKEY_TOO_LARGE;
    return 0;
}

void *kv__arena_grow(cm_arena *a, void *old, size_t oldn, size_t newn,
                     size_t elem)
{
    void *p = cm_arena_alloc(a, newn * elem);
    if (p && oldn)
        memcpy(p, old, oldn * elem);
    return p;
}
