/*
 * Cluster membership in the store.
 *
 * The membership is one packed skiffpb.Membership under the meta key
 * "members".  A MemberChange is applied like any other command, in log
 * order and in the same transaction as its index, so every member holds
 * the same membership at the same index, snapshots carry it, and a
 * restart finds the one that matches the applied index.  Like every meta
 * value it is followed by a CRC32C over its name and bytes.
 */
#include "kv_int.h"

#include <errno.h>
#include <string.h>

#define MEMBERS_KEY "members"

/* protobuf-c reports a failed allocation and a malformed message alike;
 * this allocator remembers which it was. */
typedef struct pb_nomem {
    cm_arena *arena;
    bool oom;
} pb_nomem;

static void *pb_alloc(void *d, size_t n)
{
    pb_nomem *p = d;
    void *r = cm_arena_alloc(p->arena, n);
    if (!r)
        p->oom = true;
    return r;
}

static int load(kv_store *s, MDB_txn *txn, cm_arena *a, Skiffpb__Membership **out)
{
    MDB_val k = {sizeof MEMBERS_KEY - 1, (void *)MEMBERS_KEY}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    Skiffpb__Membership *m;
    if (rc == MDB_NOTFOUND) {
        if (!(m = cm_arena_alloc(a, sizeof *m)))
            return -ENOMEM;
        skiffpb__membership__init(m);
        *out = m;
        return 0;
    }
    if (rc)
        return kv__lmdb_err(s, rc, "read members");
    size_t n;
    if ((rc = kv__meta_check(s, &k, &v, &n)))
        return rc;
    pb_nomem nm = {a, false};
    ProtobufCAllocator pa = {pb_alloc, cm_arena_pb_free, &nm};
    m = skiffpb__membership__unpack(&pa, n, v.mv_data);
    if (!m && nm.oom)
        return -ENOMEM;
    if (!m)
        return kv__corrupt(s, "meta \"members\": not a Membership");
    *out = m;
    return 0;
}

int kv_membership_get(kv_store *s, cm_arena *arena, Skiffpb__Membership **out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    rc = load(s, txn, arena, out);
    mdb_txn_abort(txn);
    return rc;
}

static size_t find(const Skiffpb__Membership *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i]->id == id)
            return i;
    return SIZE_MAX;
}

int kv__member_change(kv__wctx *w, const Skiffpb__MemberChange *mc,
                      Skiffpb__Membership **reply)
{
    kv_store *s = w->s;
    Skiffpb__Membership *m = NULL;
    int rc = load(s, w->txn, w->arena, &m);
    if (rc)
        return rc;
    const Skiffpb__ClusterMember *cm = mc->member;
    size_t at = cm ? find(m, cm->id) : SIZE_MAX;
    switch (mc->op) {
    case SKIFFPB__MEMBER_CHANGE__OP__BOOTSTRAP:
        if (!mc->bootstrap)
            return KV_EBAD_COMMAND;
        m = mc->bootstrap;
        break;
    case SKIFFPB__MEMBER_CHANGE__OP__ADD: {
        if (!cm || cm->id == 0)
            return KV_EBAD_COMMAND;
        if (at != SIZE_MAX)
            return KV_EMEMBER_EXISTS;
        Skiffpb__ClusterMember **nv =
            cm_arena_alloc(w->arena, (m->n_members + 1) * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        if (m->n_members)
            memcpy(nv, m->members, m->n_members * sizeof *nv);
        nv[m->n_members] = (Skiffpb__ClusterMember *)cm;
        m->members = nv;
        m->n_members++;
        break;
    }
    case SKIFFPB__MEMBER_CHANGE__OP__PROMOTE:
        if (at == SIZE_MAX)
            return KV_EMEMBER_NOT_FOUND;
        m->members[at]->learner = 0;
        break;
    case SKIFFPB__MEMBER_CHANGE__OP__REMOVE:
        if (at == SIZE_MAX)
            return KV_EMEMBER_NOT_FOUND;
        memmove(&m->members[at], &m->members[at + 1],
                (m->n_members - at - 1) * sizeof *m->members);
        m->n_members--;
        break;
    case SKIFFPB__MEMBER_CHANGE__OP__PUBLISH: {
        if (at == SIZE_MAX)
            return KV_EMEMBER_NOT_FOUND;
        Skiffpb__ClusterMember *t = m->members[at];
        t->name = cm->name;
        t->n_client_urls = cm->n_client_urls;
        t->client_urls = cm->client_urls;
        break;
    }
    default:
        return KV_EBAD_COMMAND;
    }
    size_t len = skiffpb__membership__get_packed_size(m);
    uint8_t *buf = cm_arena_alloc(w->arena, len + KV__SUM);
    if (!buf)
        return -ENOMEM;
    skiffpb__membership__pack(m, buf);
    MDB_val k = {sizeof MEMBERS_KEY - 1, (void *)MEMBERS_KEY},
            v = {len + KV__SUM, buf};
    cm_be32_put(buf + len, kv__meta_sum(&k, buf, len));
    if ((rc = kv__lmdb_err(s, mdb_put(w->txn, s->meta, &k, &v, 0),
                           "write members")))
        return rc;
    *reply = m;
    return 0;
}
