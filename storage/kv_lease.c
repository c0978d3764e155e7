/*
 * Leases.  A lease is an id with a TTL and an expiry time; keys attach to
 * it on put and are deleted, in one revision, when it is revoked.
 *
 * The store never decides that a lease expired: time only enters through
 * commands (grant, keep-alive and refresh carry the proposer's clock), and
 * kv_lease_expired answers which leases are past their expiry as of a time
 * the leader gives, so the leader can propose their revocation.  lease_exp
 * orders leases by expiry so that question costs one short cursor walk.
 *
 * A lease value carries a CRC32C over its id, TTL and expiry.  The two
 * side tables carry none; instead what they answer is checked where a
 * wrong answer would do harm: an expired id must name a lease with that
 * very expiry (a damaged expiry must not revoke a live lease), and every
 * key a revoke is about to delete must be live and attached to that lease.
 */
#include "kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define MAX_TTL 9000000000ll /* seconds, etcd's limit */

static void id_key(uint8_t b[8], int64_t id)
{
    cm_be64_put(b, (uint64_t)id);
}

static int exp_put(kv__wctx *w, int64_t expiry, int64_t id, bool add)
{
    uint8_t b[16];
    cm_be64_put(b, (uint64_t)(expiry < 0 ? 0 : expiry));
    cm_be64_put(b + 8, (uint64_t)id);
    MDB_val k = {16, b}, v = {0, NULL};
    int rc = add ? mdb_put(w->txn, w->s->lease_exp, &k, &v, 0)
                 : mdb_del(w->txn, w->s->lease_exp, &k, NULL);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return kv__lmdb_err(w->s, rc, "lease expiry index");
}

void kv__lease_seal(uint8_t out[KV__LEASE_SZ], const MDB_val *k,
                    int64_t ttl, int64_t expiry)
{
    cm_be64_put(out, (uint64_t)ttl);
    cm_be64_put(out + 8, (uint64_t)expiry);
    uint32_t sum = cm_crc32c(0, k->mv_data, k->mv_size);
    cm_be32_put(out + 16, cm_crc32c(sum, out, 16));
}

int kv__lease_decode(kv_store *s, const MDB_val *k, const MDB_val *v,
                     int64_t *ttl, int64_t *expiry)
{
    if (k->mv_size != 8 || v->mv_size != KV__LEASE_SZ)
        return kv__corrupt(s, "lease: %zu-byte id with a %zu-byte value",
                           k->mv_size, v->mv_size);
    const uint8_t *p = v->mv_data;
    int64_t id = (int64_t)cm_be64_get(k->mv_data);
    uint32_t stored = cm_be32_get(p + 16);
    uint32_t computed =
        cm_crc32c(cm_crc32c(0, k->mv_data, k->mv_size), p, 16);
    if (stored != computed)
        return kv__corrupt(s, "lease %" PRId64 ": checksum mismatch "
                              "(stored 0x%08" PRIx32 ", computed 0x%08" PRIx32
                              ")",
                           id, stored, computed);
    *ttl = (int64_t)cm_be64_get(p);
    *expiry = (int64_t)cm_be64_get(p + 8);
    return 0;
}

/* Reads a lease: 1 found (ttl, expiry set), 0 absent, <0 error. */
static int lease_get(kv_store *s, MDB_txn *txn, int64_t id, int64_t *ttl,
                     int64_t *expiry)
{
    uint8_t b[8];
    id_key(b, id);
    MDB_val k = {8, b}, v;
    int rc = mdb_get(txn, s->lease, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return kv__lmdb_err(s, rc, "read lease");
    if ((rc = kv__lease_decode(s, &k, &v, ttl, expiry)))
        return rc;
    return 1;
}

static int lease_set(kv__wctx *w, int64_t id, int64_t ttl, int64_t expiry)
{
    uint8_t kb[8], vb[KV__LEASE_SZ];
    id_key(kb, id);
    MDB_val k = {8, kb}, v = {KV__LEASE_SZ, vb};
    kv__lease_seal(vb, &k, ttl, expiry);
    return kv__lmdb_err(w->s, mdb_put(w->txn, w->s->lease, &k, &v, 0),
                        "write lease");
}

int kv__lease_exists(kv__wctx *w, int64_t id)
{
    int64_t ttl, exp;
    return lease_get(w->s, w->txn, id, &ttl, &exp);
}

int kv__lease_attach(kv__wctx *w, int64_t id, const uint8_t *key,
                     size_t klen, bool attach)
{
    uint8_t b[8];
    id_key(b, id);
    MDB_val k = {8, b}, v = {klen, (void *)key};
    int rc = attach ? mdb_put(w->txn, w->s->lease_keys, &k, &v,
                              MDB_NODUPDATA)
                    : mdb_del(w->txn, w->s->lease_keys, &k, &v);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND)
        rc = 0;
    return kv__lmdb_err(w->s, rc, "lease keys");
}

static int64_t expiry_of(int64_t now, int64_t ttl)
{
    return now + ttl * 1000;
}

int kv__lease_grant(kv__wctx *w, const Skiffpb__LeaseGrantRequest *r,
                    Skiffpb__LeaseGrantResponse *resp)
{
    if (r->ttl <= 0 || r->ttl > MAX_TTL || r->id < 0)
        return KV_EBAD_TTL;
    int64_t id = r->id, ttl, exp;
    int rc;
    if (id == 0) {
        /* Deterministic: the next free id of a replicated sequence. */
        do {
            id = ++w->lease_seq;
            rc = lease_get(w->s, w->txn, id, &ttl, &exp);
            if (rc < 0)
                return rc;
        } while (rc == 1);
    } else {
        rc = lease_get(w->s, w->txn, id, &ttl, &exp);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return KV_ELEASE_EXISTS;
    }
    int64_t expiry = expiry_of(w->now_ms, r->ttl);
    if ((rc = lease_set(w, id, r->ttl, expiry)) ||
        (rc = exp_put(w, expiry, id, true)))
        return rc;
    resp->id = id;
    resp->ttl = r->ttl;
    return 0;
}

/* A key lease_keys attaches to `id` must be live with that lease: a
 * damaged entry must not make a revoke delete some other key. */
static int check_attached(kv__wctx *w, int64_t id, const MDB_val *key)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->idx, &c);
    if (rc)
        return kv__lmdb_err(w->s, rc, "cursor");
    kv__ver ver;
    kv__rec r = {0};
    char ks[200];
    rc = kv__latest(w->s, c, key->mv_data, key->mv_size, KV__LATEST, &ver);
    mdb_cursor_close(c);
    if (rc == 0 && !ver.tombstone)
        rc = kv__load(w->s, w->txn, key->mv_data, key->mv_size, &ver, &r);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(w->s, rc, "read index");
    if (r.lease != id)
        return kv__corrupt(w->s, "lease_keys: lease %" PRId64
                                 " lists key %s, which is not live with it",
                           id,
                           kv__keystr(ks, sizeof ks, key->mv_data,
                                      key->mv_size));
    return 0;
}

int kv__lease_revoke(kv__wctx *w, int64_t id, bool only_expired)
{
    int64_t ttl, expiry;
    int rc = lease_get(w->s, w->txn, id, &ttl, &expiry);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return KV_ELEASE_NOT_FOUND;
    /* The leader's expiry may have been decided from a state that did not
     * show a keepalive ordered before it: then the lease lives on. */
    if (only_expired && expiry > w->now_ms)
        return 0;
    /* Collect the attached keys (arena copies), then delete them: the
     * deletes detach them from lease_keys while we would be walking it. */
    uint8_t b[8];
    id_key(b, id);
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(w->txn, w->s->lease_keys, &c)))
        return kv__lmdb_err(w->s, rc, "cursor");
    MDB_val k = {8, b}, v;
    MDB_val *keys = NULL;
    size_t n = 0, cap = 0;
    MDB_cursor_op op = MDB_SET;
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT_DUP;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            keys = kv__arena_grow(w->arena, keys, n, cap, sizeof *keys);
            if (!keys)
                break;
        }
        keys[n].mv_size = v.mv_size;
        keys[n].mv_data = cm_arena_memdup(w->arena, v.mv_data, v.mv_size);
        if (!keys[n].mv_data)
            break;
        n++;
    }
    mdb_cursor_close(c);
    if (rc == 0)
        return -ENOMEM;
    if (rc != MDB_NOTFOUND)
        return kv__lmdb_err(w->s, rc, "scan lease keys");
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_attached(w, id, &keys[i])))
            return rc;
        if ((rc = kv__delete_range(w, keys[i].mv_data, keys[i].mv_size,
                                   NULL, 0, false, NULL)))
            return rc;
    }
    MDB_val lk = {8, b};
    rc = mdb_del(w->txn, w->s->lease_keys, &lk, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return kv__lmdb_err(w->s, rc, "drop lease keys");
    if ((rc = mdb_del(w->txn, w->s->lease, &lk, NULL)))
        return kv__lmdb_err(w->s, rc, "drop lease");
    return exp_put(w, expiry, id, false);
}

int kv__lease_keepalive(kv__wctx *w, int64_t id,
                        Skiffpb__LeaseKeepAliveResponse *resp)
{
    int64_t ttl, expiry;
    int rc = lease_get(w->s, w->txn, id, &ttl, &expiry);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return KV_ELEASE_NOT_FOUND;
    int64_t next = expiry_of(w->now_ms, ttl);
    if (next > expiry) {
        if ((rc = exp_put(w, expiry, id, false)) ||
            (rc = lease_set(w, id, ttl, next)) ||
            (rc = exp_put(w, next, id, true)))
            return rc;
    }
    resp->id = id;
    resp->ttl = ttl;
    return 0;
}

int kv__lease_refresh_all(kv__wctx *w)
{
    /* Collect first: rewriting lease_exp while walking lease is fine, but
     * lease itself is rewritten too. */
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->lease, &c);
    if (rc)
        return kv__lmdb_err(w->s, rc, "cursor");
    typedef struct {
        int64_t id, ttl, exp;
    } ent;
    ent *v = NULL;
    size_t n = 0, cap = 0;
    MDB_val k, d;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(c, &k, &d, op)) == 0) {
        op = MDB_NEXT;
        int64_t ttl, exp;
        if ((rc = kv__lease_decode(w->s, &k, &d, &ttl, &exp)))
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if (!(v = kv__arena_grow(w->arena, v, n, cap, sizeof *v))) {
                mdb_cursor_close(c);
                return -ENOMEM;
            }
        }
        v[n++] = (ent){(int64_t)cm_be64_get(k.mv_data), ttl, exp};
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return kv__lmdb_err(w->s, rc, "scan leases");
    for (size_t i = 0; i < n; i++) {
        int64_t next = expiry_of(w->now_ms, v[i].ttl);
        if (next <= v[i].exp)
            continue;
        if ((rc = exp_put(w, v[i].exp, v[i].id, false)) ||
            (rc = lease_set(w, v[i].id, v[i].ttl, next)) ||
            (rc = exp_put(w, next, v[i].id, true)))
            return rc;
    }
    return 0;
}

/* ---- reads --------------------------------------------------------------- */

int kv_lease_ttl(kv_store *s, int64_t id, int with_keys, int64_t now_ms,
                 cm_arena *arena, Skiffpb__LeaseTimeToLiveResponse **out)
{
    Skiffpb__LeaseTimeToLiveResponse *r = cm_arena_alloc(arena, sizeof *r);
    Skiffpb__ResponseHeader *hdr = cm_arena_alloc(arena, sizeof *hdr);
    if (!r || !hdr)
        return -ENOMEM;
    skiffpb__lease_time_to_live_response__init(r);
    skiffpb__response_header__init(hdr);
    r->header = hdr;
    r->id = id;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    int64_t ttl, expiry;
    if ((rc = kv__meta_get(s, txn, "rev", &hdr->revision)))
        goto done;
    rc = lease_get(s, txn, id, &ttl, &expiry);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        r->ttl = -1;
        rc = 0;
        goto done;
    }
    rc = 0;
    r->grantedttl = ttl;
    r->ttl = expiry > now_ms ? (expiry - now_ms) / 1000 : 0;
    if (with_keys) {
        uint8_t b[8];
        id_key(b, id);
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, s->lease_keys, &c))) {
            rc = kv__lmdb_err(s, rc, "cursor");
            goto done;
        }
        MDB_val k = {8, b}, v;
        size_t cap = 0;
        MDB_cursor_op op = MDB_SET;
        while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
            op = MDB_NEXT_DUP;
            if (r->n_keys == cap) {
                cap = cap ? cap * 2 : 8;
                r->keys = kv__arena_grow(arena, r->keys, r->n_keys, cap,
                                         sizeof *r->keys);
                if (!r->keys)
                    break;
            }
            ProtobufCBinaryData *kd = &r->keys[r->n_keys];
            kd->data = cm_arena_memdup(arena, v.mv_data, v.mv_size);
            kd->len = v.mv_size;
            if (!kd->data)
                break;
            r->n_keys++;
        }
        mdb_cursor_close(c);
        rc = rc == MDB_NOTFOUND ? 0 : rc == 0 ? -ENOMEM
                                              : kv__lmdb_err(s, rc, "scan");
    }
done:
    mdb_txn_abort(txn);
    if (!rc)
        *out = r;
    return rc;
}

int kv_lease_list(kv_store *s, cm_arena *arena,
                  Skiffpb__LeaseLeasesResponse **out)
{
    Skiffpb__LeaseLeasesResponse *r = cm_arena_alloc(arena, sizeof *r);
    Skiffpb__ResponseHeader *hdr = cm_arena_alloc(arena, sizeof *hdr);
    if (!r || !hdr)
        return -ENOMEM;
    skiffpb__lease_leases_response__init(r);
    skiffpb__response_header__init(hdr);
    r->header = hdr;
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    if ((rc = kv__meta_get(s, txn, "rev", &hdr->revision)))
        goto done;
    if ((rc = mdb_cursor_open(txn, s->lease, &c))) {
        rc = kv__lmdb_err(s, rc, "cursor");
        goto done;
    }
    MDB_val k, v;
    size_t cap = 0;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (r->n_leases == cap) {
            cap = cap ? cap * 2 : 16;
            r->leases = kv__arena_grow(arena, r->leases, r->n_leases, cap,
                                       sizeof *r->leases);
            if (!r->leases)
                break;
        }
        int64_t ttl, exp;
        if ((rc = kv__lease_decode(s, &k, &v, &ttl, &exp)))
            break;
        Skiffpb__LeaseStatus *st = cm_arena_alloc(arena, sizeof *st);
        if (!st)
            break;
        skiffpb__lease_status__init(st);
        st->id = (int64_t)cm_be64_get(k.mv_data);
        r->leases[r->n_leases++] = st;
    }
    mdb_cursor_close(c);
    rc = rc == MDB_NOTFOUND ? 0 : rc == 0 ? -ENOMEM
                                          : kv__lmdb_err(s, rc, "scan");
done:
    mdb_txn_abort(txn);
    if (!rc)
        *out = r;
    return rc;
}

int kv_lease_expired(kv_store *s, int64_t now_ms, int64_t *ids, size_t max,
                     size_t *n)
{
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    if ((rc = mdb_cursor_open(txn, s->lease_exp, &c))) {
        mdb_txn_abort(txn);
        return kv__lmdb_err(s, rc, "cursor");
    }
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    while (*n < max && (rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != 16) {
            rc = kv__corrupt(s, "lease_exp: %zu-byte entry", k.mv_size);
            break;
        }
        int64_t at = (int64_t)cm_be64_get(k.mv_data);
        if (at > now_ms)
            break;
        /* The leader revokes what this returns: make sure the lease
         * really expires then. */
        int64_t id = (int64_t)cm_be64_get((uint8_t *)k.mv_data + 8);
        int64_t ttl, expiry;
        rc = lease_get(s, txn, id, &ttl, &expiry);
        if (rc < 0)
            break;
        if (rc == 0 || (expiry < 0 ? 0 : expiry) != at) {
            rc = kv__corrupt(s, "lease_exp: entry (%" PRId64 ", %" PRId64
                                ") does not match the lease table",
                             at, id);
            break;
        }
        rc = 0;
        ids[(*n)++] = id;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc == 0 || rc == MDB_NOTFOUND)
        return 0;
    *n = 0; /* none of them is to be trusted */
    return kv__lmdb_err(s, rc, "scan");
}
