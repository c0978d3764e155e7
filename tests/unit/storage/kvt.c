/* Storage test helpers; see kvt.h. */
#include "kvt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tu.h"

int kvt_setup(void **state)
{
    tu_alloc_install();
    kvt *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(kvt_open(t, NULL), 0);
    *state = t;
    return 0;
}

int kvt_teardown(void **state)
{
    kvt *t = *state;
    kvt_close(t, 0);
    free(t);
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

int kvt_open(kvt *t, const kv_options *o)
{
    memset(t, 0, sizeof *t);
    t->now_ms = 1000000;
    int rc = tu_tmpdir(t->dir, sizeof t->dir);
    if (rc)
        return rc;
    return kv_open(&t->s, t->dir, o);
}

void kvt_close(kvt *t, int keep_dir)
{
    kv_close(t->s);
    t->s = NULL;
    cm_arena_free(&t->arena);
    if (!keep_dir)
        tu_rmrf(t->dir);
}

int kvt_reopen(kvt *t, const kv_options *o)
{
    kv_close(t->s);
    t->s = NULL;
    int rc = kv_open(&t->s, t->dir, o);
    if (rc == 0) {
        kv_status st;
        kv_status_get(t->s, &st);
        t->index = st.applied_index;
    }
    return rc;
}

ProtobufCBinaryData kvt_bytes(const char *s)
{
    ProtobufCBinaryData b = {s ? strlen(s) : 0, (uint8_t *)s};
    return b;
}

int kvt_apply(kvt *t, Skiffpb__Command *c)
{
    cm_buf b = {0};
    c->time_ms = t->now_ms;
    int rc = kv_command_pack(c, &b);
    if (rc)
        return rc;
    kv_entry e = {++t->index, b.base, b.len, 0};
    rc = kv_apply(t->s, &e, &t->arena, &t->res);
    cm_buf_free(&b);
    if (rc) {
        t->index--;
        return rc;
    }
    return t->res.code;
}

int kvt_put_opts(kvt *t, Skiffpb__PutRequest *p)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_PUT;
    c.put = p;
    return kvt_apply(t, &c);
}

int kvt_put(kvt *t, const char *k, const char *v, int64_t lease)
{
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes(k);
    p.value = kvt_bytes(v);
    p.lease = lease;
    return kvt_put_opts(t, &p);
}

int kvt_del(kvt *t, const char *k, const char *end)
{
    Skiffpb__DeleteRangeRequest d = SKIFFPB__DELETE_RANGE_REQUEST__INIT;
    d.key = kvt_bytes(k);
    d.range_end = kvt_bytes(end);
    d.prev_kv = 1;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_DELETE_RANGE;
    c.delete_range = &d;
    return kvt_apply(t, &c);
}

int kvt_compact(kvt *t, int64_t rev)
{
    Skiffpb__CompactionRequest r = SKIFFPB__COMPACTION_REQUEST__INIT;
    r.revision = rev;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_COMPACTION;
    c.compaction = &r;
    return kvt_apply(t, &c);
}

int kvt_grant(kvt *t, int64_t id, int64_t ttl, int64_t *got)
{
    Skiffpb__LeaseGrantRequest r = SKIFFPB__LEASE_GRANT_REQUEST__INIT;
    r.id = id;
    r.ttl = ttl;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &r;
    int rc = kvt_apply(t, &c);
    if (rc == 0 && got)
        *got = t->res.reply.lease_grant->id;
    return rc;
}

int kvt_revoke(kvt *t, int64_t id)
{
    Skiffpb__LeaseRevokeRequest r = SKIFFPB__LEASE_REVOKE_REQUEST__INIT;
    r.id = id;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_REVOKE;
    c.lease_revoke = &r;
    return kvt_apply(t, &c);
}

int kvt_txn(kvt *t, Skiffpb__TxnRequest *txn)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_TXN;
    c.txn = txn;
    return kvt_apply(t, &c);
}

int kvt_range(kvt *t, const char *k, const char *end, int64_t rev,
              Skiffpb__RangeResponse **out)
{
    Skiffpb__RangeRequest r = SKIFFPB__RANGE_REQUEST__INIT;
    r.key = kvt_bytes(k);
    r.range_end = kvt_bytes(end);
    r.revision = rev;
    return kv_range(t->s, &r, &t->arena, out, NULL);
}

int64_t kvt_rev(kvt *t)
{
    kv_status st;
    kv_status_get(t->s, &st);
    return st.revision;
}

const char *kvt_get(kvt *t, const char *k)
{
    Skiffpb__RangeResponse *r;
    if (kvt_range(t, k, NULL, 0, &r) || r->n_kvs == 0)
        return NULL;
    char *s = cm_arena_alloc(&t->arena, r->kvs[0]->value.len + 1);
    memcpy(s, r->kvs[0]->value.data, r->kvs[0]->value.len);
    s[r->kvs[0]->value.len] = 0;
    return s;
}
