/*
 * Unit tests for storage/: the etcd v3 contract of revisions, ranges,
 * puts, deletes, transactions, leases, compaction, HashKV, quota, apply
 * idempotency and snapshots, each including its errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvt.h"
#include "tu.h"

static void assert_kv(const Skiffpb__KeyValue *kv, const char *k,
                      const char *v, int64_t create, int64_t mod,
                      int64_t ver)
{
    assert_int_equal(kv->key.len, strlen(k));
    assert_memory_equal(kv->key.data, k, strlen(k));
    if (v) {
        assert_int_equal(kv->value.len, strlen(v));
        assert_memory_equal(kv->value.data, v, strlen(v));
    }
    assert_int_equal(kv->create_revision, create);
    assert_int_equal(kv->mod_revision, mod);
    assert_int_equal(kv->version, ver);
}

static void test_revisions_and_versions(void **state)
{
    kvt *t = *state;
    Skiffpb__RangeResponse *r;
    assert_int_equal(kvt_rev(t), 0);
    assert_int_equal(kvt_put(t, "a", "1", 0), 0);
    assert_int_equal(t->res.revision, 1);
    assert_int_equal(kvt_put(t, "a", "2", 0), 0);
    assert_int_equal(kvt_put(t, "b", "x", 0), 0);
    assert_int_equal(kvt_range(t, "a", NULL, 0, &r), 0);
    assert_int_equal(r->header->revision, 3);
    assert_int_equal(r->n_kvs, 1);
    assert_kv(r->kvs[0], "a", "2", 1, 2, 2);
    /* Delete resets the version; re-create starts a new life. */
    assert_int_equal(kvt_del(t, "a", NULL), 0);
    assert_int_equal(t->res.reply.delete_range->deleted, 1);
    assert_int_equal(t->res.revision, 4);
    assert_null(kvt_get(t, "a"));
    assert_int_equal(kvt_put(t, "a", "3", 0), 0);
    assert_int_equal(kvt_range(t, "a", NULL, 0, &r), 0);
    assert_kv(r->kvs[0], "a", "3", 5, 5, 1);
    /* History stays readable at every revision. */
    assert_int_equal(kvt_range(t, "a", NULL, 1, &r), 0);
    assert_kv(r->kvs[0], "a", "1", 1, 1, 1);
    assert_int_equal(kvt_range(t, "a", NULL, 4, &r), 0);
    assert_int_equal(r->n_kvs, 0);
    assert_int_equal(kvt_range(t, "b", NULL, 2, &r), 0);
    assert_int_equal(r->n_kvs, 0);
    /* Deleting nothing writes nothing and keeps the revision. */
    assert_int_equal(kvt_del(t, "zzz", NULL), 0);
    assert_int_equal(t->res.reply.delete_range->deleted, 0);
    assert_int_equal(t->res.revision, 5);
    assert_int_equal(t->res.events.n, 0);
}

static void fill_abc(kvt *t)
{
    /* a=1@1 b=2@2 c=3@3 d=4@4 foo/1@5 foo/2@6 b=22@7 */
    assert_int_equal(kvt_put(t, "a", "1", 0), 0);
    assert_int_equal(kvt_put(t, "b", "2", 0), 0);
    assert_int_equal(kvt_put(t, "c", "3", 0), 0);
    assert_int_equal(kvt_put(t, "d", "4", 0), 0);
    assert_int_equal(kvt_put(t, "foo/1", "f1", 0), 0);
    assert_int_equal(kvt_put(t, "foo/2", "f2", 0), 0);
    assert_int_equal(kvt_put(t, "b", "22", 0), 0);
}

static Skiffpb__RangeResponse *rng(kvt *t, Skiffpb__RangeRequest *q)
{
    Skiffpb__RangeResponse *r;
    assert_int_equal(kv_range(t->s, q, &t->arena, &r, NULL), 0);
    return r;
}

static void assert_keys(Skiffpb__RangeResponse *r, const char *want)
{
    char got[256] = "";
    for (size_t i = 0; i < r->n_kvs; i++) {
        if (i)
            strcat(got, ",");
        strncat(got, (char *)r->kvs[i]->key.data, r->kvs[i]->key.len);
    }
    assert_string_equal(got, want);
}

static void test_range_forms(void **state)
{
    kvt *t = *state;
    fill_abc(t);
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = kvt_bytes("b");
    q.range_end = kvt_bytes("d");
    Skiffpb__RangeResponse *r = rng(t, &q);
    assert_keys(r, "b,c");
    assert_int_equal(r->count, 2);
    assert_false(r->more);
    /* Prefix: range_end = prefix with its last byte + 1. */
    q.key = kvt_bytes("foo/");
    q.range_end = kvt_bytes("foo0");
    assert_keys(rng(t, &q), "foo/1,foo/2");
    /* From-key. */
    q.key = kvt_bytes("c");
    q.range_end.data = (uint8_t *)"\0";
    q.range_end.len = 1;
    assert_keys(rng(t, &q), "c,d,foo/1,foo/2");
    /* All keys. */
    q.key.data = (uint8_t *)"\0";
    q.key.len = 1;
    assert_keys(rng(t, &q), "a,b,c,d,foo/1,foo/2");
    /* Limit and more; count stays the total. */
    q.limit = 2;
    r = rng(t, &q);
    assert_keys(r, "a,b");
    assert_true(r->more);
    assert_int_equal(r->count, 6);
    /* Count only. */
    q.limit = 0;
    q.count_only = 1;
    r = rng(t, &q);
    assert_int_equal(r->n_kvs, 0);
    assert_int_equal(r->count, 6);
    /* Keys only. */
    q.count_only = 0;
    q.keys_only = 1;
    r = rng(t, &q);
    assert_int_equal(r->n_kvs, 6);
    assert_int_equal(r->kvs[0]->value.len, 0);
    assert_int_equal(r->kvs[0]->mod_revision, 1);
    /* At a past revision. */
    q.keys_only = 0;
    q.revision = 3;
    r = rng(t, &q);
    assert_keys(r, "a,b,c");
    assert_kv(r->kvs[1], "b", "2", 2, 2, 1);
    /* Mod revision filters. */
    q.revision = 0;
    q.min_mod_revision = 4;
    assert_keys(rng(t, &q), "b,d,foo/1,foo/2");
    q.min_mod_revision = 0;
    q.max_mod_revision = 3;
    assert_keys(rng(t, &q), "a,c");
    q.max_mod_revision = 0;
    q.min_create_revision = 5;
    assert_keys(rng(t, &q), "foo/1,foo/2");
}

static void test_range_sort(void **state)
{
    kvt *t = *state;
    fill_abc(t);
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = kvt_bytes("a");
    q.range_end = kvt_bytes("e");
    q.sort_order = SKIFFPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    assert_keys(rng(t, &q), "d,c,b,a");
    q.sort_target = SKIFFPB__RANGE_REQUEST__SORT_TARGET__MOD;
    assert_keys(rng(t, &q), "b,d,c,a");
    q.sort_order = SKIFFPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    assert_keys(rng(t, &q), "a,c,d,b");
    q.sort_target = SKIFFPB__RANGE_REQUEST__SORT_TARGET__CREATE;
    assert_keys(rng(t, &q), "a,b,c,d");
    q.sort_order = SKIFFPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    assert_keys(rng(t, &q), "d,c,b,a");
    q.sort_target = SKIFFPB__RANGE_REQUEST__SORT_TARGET__VERSION;
    q.limit = 1;
    Skiffpb__RangeResponse *r = rng(t, &q);
    assert_keys(r, "b"); /* the only key at version 2 */
    assert_true(r->more);
    q.limit = 0;
    q.sort_target = SKIFFPB__RANGE_REQUEST__SORT_TARGET__VALUE;
    q.sort_order = SKIFFPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    assert_keys(rng(t, &q), "a,b,c,d"); /* 1 < 22 < 3 < 4 bytewise */
    /* Sort target without order defaults to ascending (etcd). */
    q.sort_order = SKIFFPB__RANGE_REQUEST__SORT_ORDER__NONE;
    q.sort_target = SKIFFPB__RANGE_REQUEST__SORT_TARGET__MOD;
    assert_keys(rng(t, &q), "a,c,d,b");
}

static void test_range_errors(void **state)
{
    kvt *t = *state;
    fill_abc(t);
    Skiffpb__RangeResponse *r;
    int64_t compact = -1;
    assert_int_equal(kvt_range(t, "a", NULL, 8, &r), KV_EFUTURE_REV);
    assert_int_equal(kvt_range(t, "", NULL, 0, &r), KV_EEMPTY_KEY);
    char big[600];
    memset(big, 'k', sizeof big);
    big[599] = 0;
    assert_int_equal(kvt_range(t, big, NULL, 0, &r), KV_EKEY_TOO_LARGE);
    assert_int_equal(kvt_compact(t, 5), 0);
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = kvt_bytes("a");
    q.revision = 4;
    assert_int_equal(kv_range(t->s, &q, &t->arena, &r, &compact),
                     KV_ECOMPACTED);
    assert_int_equal(compact, 5);
    q.revision = 5;
    assert_int_equal(kv_range(t->s, &q, &t->arena, &r, NULL), 0);
    assert_string_equal(kv_err_name(KV_ECOMPACTED), "KV_ECOMPACTED");
    assert_string_equal(cm_strerror(KV_EFUTURE_REV),
                        "requested revision is a future revision");
}

static void test_put_options(void **state)
{
    kvt *t = *state;
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes("k");
    p.ignore_value = 1;
    assert_int_equal(kvt_put_opts(t, &p), KV_EKEY_NOT_FOUND);
    assert_int_equal(t->res.revision, 0);
    assert_int_equal(kvt_put(t, "k", "v1", 0), 0);
    /* prev_kv */
    p = (Skiffpb__PutRequest)SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes("k");
    p.value = kvt_bytes("v2");
    p.prev_kv = 1;
    assert_int_equal(kvt_put_opts(t, &p), 0);
    assert_non_null(t->res.reply.put->prev_kv);
    assert_kv(t->res.reply.put->prev_kv, "k", "v1", 1, 1, 1);
    /* ignore_value keeps the value, bumps version. */
    int64_t lease;
    assert_int_equal(kvt_grant(t, 0, 60, &lease), 0);
    p = (Skiffpb__PutRequest)SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes("k");
    p.ignore_value = 1;
    p.lease = lease;
    assert_int_equal(kvt_put_opts(t, &p), 0);
    assert_string_equal(kvt_get(t, "k"), "v2");
    /* ignore_lease keeps the lease. */
    p = (Skiffpb__PutRequest)SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes("k");
    p.value = kvt_bytes("v3");
    p.ignore_lease = 1;
    assert_int_equal(kvt_put_opts(t, &p), 0);
    Skiffpb__RangeResponse *r;
    assert_int_equal(kvt_range(t, "k", NULL, 0, &r), 0);
    assert_kv(r->kvs[0], "k", "v3", 1, 4, 4);
    assert_int_equal(r->kvs[0]->lease, lease);
    /* Errors. */
    p.lease = 7;
    assert_int_equal(kvt_put_opts(t, &p), KV_ELEASE_PROVIDED);
    p = (Skiffpb__PutRequest)SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes("k");
    p.value = kvt_bytes("x");
    p.ignore_value = 1;
    assert_int_equal(kvt_put_opts(t, &p), KV_EVALUE_PROVIDED);
    assert_int_equal(kvt_put(t, "k", "x", 999), KV_ELEASE_NOT_FOUND);
    assert_int_equal(kvt_put(t, "", "x", 0), KV_EEMPTY_KEY);
    char big[513];
    memset(big, 'a', 512);
    big[512] = 0;
    assert_int_equal(kvt_put(t, big, "x", 0), KV_EKEY_TOO_LARGE);
    big[511] = 0; /* exactly 511 bytes is fine */
    assert_int_equal(kvt_put(t, big, "x", 0), 0);
    /* Refused commands changed nothing but consumed their index. */
    kv_status st;
    assert_int_equal(kv_status_get(t->s, &st), 0);
    assert_int_equal(st.applied_index, t->index);
    assert_int_equal(st.revision, 5);
}

static void test_value_too_large(void **state)
{
    kvt *t = *state;
    kvt_close(t, 0);
    kv_options o = {.max_value = 1024};
    assert_int_equal(kvt_open(t, &o), 0);
    char *v = calloc(1, 1026);
    memset(v, 'v', 1025);
    assert_int_equal(kvt_put(t, "k", v, 0), KV_EVALUE_TOO_LARGE);
    v[1024] = 0;
    assert_int_equal(kvt_put(t, "k", v, 0), 0);
    free(v);
}

static void test_delete_range(void **state)
{
    kvt *t = *state;
    fill_abc(t);
    assert_int_equal(kvt_del(t, "b", "foo/"), 0);
    Skiffpb__DeleteRangeResponse *d = t->res.reply.delete_range;
    assert_int_equal(d->deleted, 3);
    assert_int_equal(d->n_prev_kvs, 3);
    assert_kv(d->prev_kvs[0], "b", "22", 2, 7, 2);
    assert_int_equal(t->res.revision, 8);
    /* One revision, three events with increasing sub-revisions. */
    assert_int_equal(t->res.events.revision, 8);
    assert_int_equal(t->res.events.n, 3);
    assert_int_equal(t->res.events.ev[2]->type,
                     SKIFFPB__EVENT__EVENT_TYPE__DELETE);
    assert_int_equal(t->res.events.ev[2]->kv->mod_revision, 8);
    Skiffpb__RangeResponse *r;
    assert_int_equal(kvt_range(t, "a", "z", 0, &r), 0);
    assert_keys(r, "a,foo/1,foo/2");
    kv_status st;
    kv_status_get(t->s, &st);
    assert_int_equal(st.keys, 3);
}

static Skiffpb__RequestOp *op_put(const char *k, const char *v)
{
    Skiffpb__RequestOp *o = calloc(1, sizeof *o);
    Skiffpb__PutRequest *p = calloc(1, sizeof *p);
    skiffpb__request_op__init(o);
    skiffpb__put_request__init(p);
    p->key = kvt_bytes(k);
    p->value = kvt_bytes(v);
    o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    o->request_put = p;
    return o;
}

static Skiffpb__RequestOp *op_get(const char *k)
{
    Skiffpb__RequestOp *o = calloc(1, sizeof *o);
    Skiffpb__RangeRequest *p = calloc(1, sizeof *p);
    skiffpb__request_op__init(o);
    skiffpb__range_request__init(p);
    p->key = kvt_bytes(k);
    o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    o->request_range = p;
    return o;
}

static Skiffpb__RequestOp *op_del(const char *k)
{
    Skiffpb__RequestOp *o = calloc(1, sizeof *o);
    Skiffpb__DeleteRangeRequest *p = calloc(1, sizeof *p);
    skiffpb__request_op__init(o);
    skiffpb__delete_range_request__init(p);
    p->key = kvt_bytes(k);
    o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
    o->request_delete_range = p;
    return o;
}

static void op_free(Skiffpb__RequestOp *o)
{
    if (o->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN) {
        Skiffpb__TxnRequest *t = o->request_txn;
        for (size_t i = 0; i < t->n_success; i++)
            op_free(t->success[i]);
        free(t->success);
        free(t);
    } else {
        free(o->request_put); /* any member of the union */
    }
    free(o);
}

static Skiffpb__Compare cmp_int(const char *k, int target, int result,
                                int64_t v)
{
    Skiffpb__Compare c = SKIFFPB__COMPARE__INIT;
    c.key = kvt_bytes(k);
    c.target = target;
    c.result = result;
    switch (target) {
    case SKIFFPB__COMPARE__COMPARE_TARGET__VERSION:
        c.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VERSION;
        c.version = v;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__CREATE:
        c.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_CREATE_REVISION;
        c.create_revision = v;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__MOD:
        c.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_MOD_REVISION;
        c.mod_revision = v;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__LEASE:
        c.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_LEASE;
        c.lease = v;
        break;
    }
    return c;
}

/* Runs a txn of one compare, success = put k2=yes, failure = put k2=no;
 * returns whether it took the success branch. */
static int txn_cmp(kvt *t, Skiffpb__Compare *c)
{
    Skiffpb__RequestOp *s = op_put("probe", "yes"), *f = op_put("probe", "no");
    Skiffpb__Compare *cs[1] = {c};
    Skiffpb__TxnRequest tx = SKIFFPB__TXN_REQUEST__INIT;
    tx.n_compare = 1;
    tx.compare = cs;
    tx.n_success = 1;
    tx.success = &s;
    tx.n_failure = 1;
    tx.failure = &f;
    int rc = kvt_txn(t, &tx);
    op_free(s);
    op_free(f);
    assert_int_equal(rc, 0);
    return t->res.reply.txn->succeeded;
}

static void test_txn_compares(void **state)
{
    kvt *t = *state;
    assert_int_equal(kvt_put(t, "k", "b", 0), 0); /* rev 1 */
    assert_int_equal(kvt_put(t, "k", "b", 0), 0); /* rev 2, version 2 */
    enum { EQ = 0, GT = 1, LT = 2, NE = 3 };
    const int V = SKIFFPB__COMPARE__COMPARE_TARGET__VERSION,
              C = SKIFFPB__COMPARE__COMPARE_TARGET__CREATE,
              M = SKIFFPB__COMPARE__COMPARE_TARGET__MOD,
              L = SKIFFPB__COMPARE__COMPARE_TARGET__LEASE;
    struct {
        int target, result;
        int64_t v;
        int want;
    } cases[] = {
        {V, EQ, 2, 1}, {V, EQ, 1, 0}, {V, GT, 1, 1}, {V, LT, 3, 1},
        {V, NE, 2, 0}, {C, EQ, 1, 1}, {C, GT, 1, 0}, {M, EQ, 2, 1},
        {M, LT, 2, 0}, {M, NE, 5, 1}, {L, EQ, 0, 1}, {L, GT, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Skiffpb__Compare c =
            cmp_int("k", cases[i].target, cases[i].result, cases[i].v);
        if (txn_cmp(t, &c) != cases[i].want)
            fail_msg("case %zu", i);
    }
    /* Value compares, bytewise. */
    Skiffpb__Compare c = SKIFFPB__COMPARE__INIT;
    c.key = kvt_bytes("k");
    c.target = SKIFFPB__COMPARE__COMPARE_TARGET__VALUE;
    c.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VALUE;
    c.value = kvt_bytes("b");
    assert_true(txn_cmp(t, &c));
    c.result = SKIFFPB__COMPARE__COMPARE_RESULT__GREATER;
    c.value = kvt_bytes("a");
    assert_true(txn_cmp(t, &c));
    c.result = SKIFFPB__COMPARE__COMPARE_RESULT__LESS;
    assert_false(txn_cmp(t, &c));
    /* Missing key: version 0 matches; a value compare always fails. */
    Skiffpb__Compare m = cmp_int("missing", V, EQ, 0);
    assert_true(txn_cmp(t, &m));
    c.key = kvt_bytes("missing");
    c.result = SKIFFPB__COMPARE__COMPARE_RESULT__NOT_EQUAL;
    assert_false(txn_cmp(t, &c));
    /* Range compare: every key in range must satisfy. */
    assert_int_equal(kvt_put(t, "r/1", "x", 0), 0);
    assert_int_equal(kvt_put(t, "r/2", "x", 0), 0);
    assert_int_equal(kvt_put(t, "r/2", "x", 0), 0);
    Skiffpb__Compare rc = cmp_int("r/", V, EQ, 1);
    rc.range_end = kvt_bytes("r0");
    assert_false(txn_cmp(t, &rc));
    rc.result = SKIFFPB__COMPARE__COMPARE_RESULT__GREATER;
    rc.version = 0;
    assert_true(txn_cmp(t, &rc));
}

static void test_txn_atomic_one_revision(void **state)
{
    kvt *t = *state;
    assert_int_equal(kvt_put(t, "old", "o", 0), 0);
    Skiffpb__RequestOp *ops[4] = {op_put("x", "1"), op_del("old"),
                                  op_put("y", "2"), op_get("x")};
    Skiffpb__TxnRequest tx = SKIFFPB__TXN_REQUEST__INIT;
    tx.n_success = 4;
    tx.success = ops;
    assert_int_equal(kvt_txn(t, &tx), 0);
    Skiffpb__TxnResponse *r = t->res.reply.txn;
    assert_true(r->succeeded);
    assert_int_equal(t->res.revision, 2);
    assert_int_equal(r->n_responses, 4);
    /* The range inside the txn sees the txn's own put. */
    Skiffpb__RangeResponse *rr = r->responses[3]->response_range;
    assert_int_equal(rr->n_kvs, 1);
    assert_kv(rr->kvs[0], "x", "1", 2, 2, 1);
    assert_int_equal(t->res.events.n, 3);
    assert_int_equal(t->res.events.revision, 2);
    assert_int_equal(t->res.events.ev[1]->type,
                     SKIFFPB__EVENT__EVENT_TYPE__DELETE);
    for (int i = 0; i < 4; i++)
        op_free(ops[i]);
    /* A read-only txn does not bump the revision. */
    Skiffpb__RequestOp *g = op_get("x");
    tx.n_success = 1;
    tx.success = &g;
    assert_int_equal(kvt_txn(t, &tx), 0);
    assert_int_equal(t->res.revision, 2);
    assert_int_equal(t->res.events.n, 0);
    op_free(g);
    /* Nested txn. */
    Skiffpb__RequestOp *inner_ops[1] = {op_put("z", "3")};
    Skiffpb__TxnRequest *inner = calloc(1, sizeof *inner);
    skiffpb__txn_request__init(inner);
    inner->n_success = 1;
    inner->success = calloc(1, sizeof *inner->success);
    inner->success[0] = inner_ops[0];
    Skiffpb__RequestOp *nested = calloc(1, sizeof *nested);
    skiffpb__request_op__init(nested);
    nested->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN;
    nested->request_txn = inner;
    Skiffpb__RequestOp *outer[2] = {op_put("w", "4"), nested};
    tx.n_success = 2;
    tx.success = outer;
    assert_int_equal(kvt_txn(t, &tx), 0);
    assert_int_equal(t->res.revision, 3);
    assert_int_equal(t->res.events.n, 2);
    assert_string_equal(kvt_get(t, "z"), "3");
    assert_true(t->res.reply.txn->responses[1]->response_txn->succeeded);
    op_free(outer[0]);
    op_free(nested);
}

static void test_txn_errors(void **state)
{
    kvt *t = *state;
    assert_int_equal(kvt_put(t, "a", "1", 0), 0);
    /* Same key twice: refused, nothing written. */
    Skiffpb__RequestOp *ops[3] = {op_put("n", "1"), op_put("n", "2"),
                                  op_del("n")};
    Skiffpb__TxnRequest tx = SKIFFPB__TXN_REQUEST__INIT;
    tx.n_success = 2;
    tx.success = ops;
    assert_int_equal(kvt_txn(t, &tx), KV_EDUPLICATE_KEY);
    assert_null(kvt_get(t, "n"));
    /* Put inside a delete range of the same txn. */
    tx.success = &ops[1];
    assert_int_equal(kvt_txn(t, &tx), KV_EDUPLICATE_KEY);
    /* A bad op anywhere on the path refuses the whole txn. */
    Skiffpb__RequestOp *bad[2] = {op_put("ok", "1"), op_put("", "x")};
    tx.success = bad;
    assert_int_equal(kvt_txn(t, &tx), KV_EEMPTY_KEY);
    assert_null(kvt_get(t, "ok"));
    assert_int_equal(kvt_rev(t), 1);
    /* Too many ops. */
    Skiffpb__RequestOp *many[129];
    char keys[129][8];
    for (int i = 0; i < 129; i++) {
        snprintf(keys[i], sizeof keys[i], "m%d", i);
        many[i] = op_put(keys[i], "v");
    }
    tx.n_success = 129;
    tx.success = many;
    assert_int_equal(kvt_txn(t, &tx), KV_ETOO_MANY_OPS);
    tx.n_success = 128;
    assert_int_equal(kvt_txn(t, &tx), 0);
    assert_int_equal(t->res.events.n, 128);
    for (int i = 0; i < 129; i++)
        op_free(many[i]);
    for (int i = 0; i < 3; i++)
        op_free(ops[i]);
    op_free(bad[0]);
    op_free(bad[1]);
}

static void test_leases(void **state)
{
    kvt *t = *state;
    int64_t id1, id2;
    assert_int_equal(kvt_grant(t, 0, 10, &id1), 0);
    assert_true(id1 > 0);
    assert_int_equal(kvt_grant(t, 42, 20, &id2), 0);
    assert_int_equal(id2, 42);
    assert_int_equal(kvt_grant(t, 42, 20, NULL), KV_ELEASE_EXISTS);
    assert_int_equal(kvt_grant(t, 0, 0, NULL), KV_EBAD_TTL);
    assert_int_equal(kvt_put(t, "l/a", "1", 42), 0);
    assert_int_equal(kvt_put(t, "l/b", "2", 42), 0);
    assert_int_equal(kvt_put(t, "l/c", "3", id1), 0);
    /* Moving a key to another lease detaches it from the first. */
    assert_int_equal(kvt_put(t, "l/c", "3", 42), 0);
    assert_int_equal(kvt_put(t, "l/c", "3", 0), 0);
    Skiffpb__LeaseTimeToLiveResponse *ttl;
    assert_int_equal(kv_lease_ttl(t->s, 42, 1, t->now_ms + 5000, &t->arena,
                                  &ttl),
                     0);
    assert_int_equal(ttl->grantedttl, 20);
    assert_int_equal(ttl->ttl, 15);
    assert_int_equal(ttl->n_keys, 2);
    assert_int_equal(kv_lease_ttl(t->s, 777, 0, t->now_ms, &t->arena, &ttl),
                     0);
    assert_int_equal(ttl->ttl, -1);
    Skiffpb__LeaseLeasesResponse *ls;
    assert_int_equal(kv_lease_list(t->s, &t->arena, &ls), 0);
    assert_int_equal(ls->n_leases, 2);
    /* Expiry as of a time: id1 (10 s) first, then 42 (20 s). */
    int64_t ids[4];
    size_t n;
    assert_int_equal(kv_lease_expired(t->s, t->now_ms + 9999, ids, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kv_lease_expired(t->s, t->now_ms + 10000, ids, 4, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id1);
    /* Keep-alive at a later time moves the expiry. */
    t->now_ms += 15000;
    Skiffpb__LeaseKeepAliveRequest ka = SKIFFPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    ka.id = 42;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_KEEPALIVE;
    c.lease_keepalive = &ka;
    assert_int_equal(kvt_apply(t, &c), 0);
    assert_int_equal(t->res.reply.lease_keepalive->ttl, 20);
    assert_int_equal(kv_lease_expired(t->s, t->now_ms + 19999, ids, 4, &n),
                     0);
    assert_int_equal(n, 1); /* only id1 */
    ka.id = 999;
    assert_int_equal(kvt_apply(t, &c), KV_ELEASE_NOT_FOUND);
    /* Refresh-all (a new leader): nothing expires before now + TTL. */
    t->now_ms += 100000;
    Skiffpb__LeaseRefreshAllRequest ra = SKIFFPB__LEASE_REFRESH_ALL_REQUEST__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_REFRESH_ALL;
    c.lease_refresh_all = &ra;
    assert_int_equal(kvt_apply(t, &c), 0);
    assert_int_equal(kv_lease_expired(t->s, t->now_ms + 9999, ids, 4, &n), 0);
    assert_int_equal(n, 0);
    /* Revoke deletes the attached keys in one revision. */
    int64_t before = kvt_rev(t);
    assert_int_equal(kvt_revoke(t, 42), 0);
    assert_int_equal(t->res.revision, before + 1);
    assert_int_equal(t->res.events.n, 2);
    assert_null(kvt_get(t, "l/a"));
    assert_null(kvt_get(t, "l/b"));
    assert_string_equal(kvt_get(t, "l/c"), "3");
    assert_int_equal(kvt_revoke(t, 42), KV_ELEASE_NOT_FOUND);
    /* Revoking a lease without keys writes no revision. */
    assert_int_equal(kvt_revoke(t, id1), 0);
    assert_int_equal(t->res.revision, before + 1);
    assert_int_equal(kv_lease_list(t->s, &t->arena, &ls), 0);
    assert_int_equal(ls->n_leases, 0);
}

/* The leader's expiry is a command that revokes only a lease still past
 * its expiry when applied: the leader may decide from a state that does
 * not show a keepalive committed ahead of the command. */
static void test_lease_expire(void **state)
{
    kvt *t = *state;
    int64_t id;
    assert_int_equal(kvt_grant(t, 7, 10, &id), 0);
    assert_int_equal(kvt_put(t, "e/a", "1", 7), 0);
    int64_t t0 = t->now_ms;
    /* A keepalive at t0 + 9 s moves the expiry to t0 + 19 s. */
    t->now_ms = t0 + 9000;
    Skiffpb__LeaseKeepAliveRequest ka = SKIFFPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    ka.id = 7;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_KEEPALIVE;
    c.lease_keepalive = &ka;
    assert_int_equal(kvt_apply(t, &c), 0);
    /* An expiry decided from the state before it (t0 + 10 s): a no-op. */
    Skiffpb__LeaseRevokeRequest ex = SKIFFPB__LEASE_REVOKE_REQUEST__INIT;
    ex.id = 7;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_EXPIRE;
    c.lease_expire = &ex;
    int64_t before = kvt_rev(t);
    t->now_ms = t0 + 10000;
    assert_int_equal(kvt_apply(t, &c), 0);
    assert_int_equal(kvt_rev(t), before);
    assert_int_equal(t->res.events.n, 0);
    assert_string_equal(kvt_get(t, "e/a"), "1");
    /* Past the new expiry it revokes, keys and all, in one revision. */
    t->now_ms = t0 + 19000;
    assert_int_equal(kvt_apply(t, &c), 0);
    assert_int_equal(kvt_rev(t), before + 1);
    assert_int_equal(t->res.events.n, 1);
    assert_null(kvt_get(t, "e/a"));
    assert_int_equal(kvt_apply(t, &c), KV_ELEASE_NOT_FOUND);
}

static void test_compaction(void **state)
{
    kvt *t = *state;
    assert_int_equal(kvt_put(t, "a", "1", 0), 0); /* 1 */
    assert_int_equal(kvt_put(t, "a", "2", 0), 0); /* 2 */
    assert_int_equal(kvt_put(t, "b", "1", 0), 0); /* 3 */
    assert_int_equal(kvt_del(t, "b", NULL), 0);   /* 4 */
    assert_int_equal(kvt_put(t, "c", "1", 0), 0); /* 5 */
    assert_int_equal(kvt_put(t, "a", "3", 0), 0); /* 6 */
    assert_int_equal(kvt_compact(t, 7), KV_EFUTURE_REV);
    assert_int_equal(kvt_compact(t, 5), 0);
    assert_int_equal(kvt_compact(t, 5), KV_ECOMPACTED);
    assert_int_equal(kvt_compact(t, 3), KV_ECOMPACTED);
    Skiffpb__RangeResponse *r;
    /* At the compact revision everything live is still there. */
    assert_int_equal(kvt_range(t, "a", "z", 5, &r), 0);
    assert_keys(r, "a,c");
    assert_kv(r->kvs[0], "a", "2", 1, 2, 2);
    assert_int_equal(kvt_range(t, "a", NULL, 4, &r), KV_ECOMPACTED);
    assert_int_equal(kvt_range(t, "a", NULL, 6, &r), 0);
    assert_kv(r->kvs[0], "a", "3", 1, 6, 3);
    /* The history keeps exactly: a@2, c@5, a@6. */
    kv_status st;
    kv_status_get(t->s, &st);
    assert_int_equal(st.compact_revision, 5);
    assert_int_equal(st.keys, 2);
    kv_hash h;
    assert_int_equal(kv_hash_get(t->s, 4, &h), KV_ECOMPACTED);
    assert_int_equal(kv_hash_get(t->s, 9, &h), KV_EFUTURE_REV);
    /* A second store with the same history and compaction hashes equal;
     * one with a different value does not. */
    kvt u, v;
    assert_int_equal(kvt_open(&u, NULL), 0);
    assert_int_equal(kvt_open(&v, NULL), 0);
    const char *vals[] = {"1", "2", "1", NULL, "1", "3"};
    const char *keys[] = {"a", "a", "b", "b", "c", "a"};
    for (int i = 0; i < 6; i++) {
        if (vals[i]) {
            assert_int_equal(kvt_put(&u, keys[i], vals[i], 0), 0);
            assert_int_equal(kvt_put(&v, keys[i], i == 4 ? "9" : vals[i], 0),
                             0);
        } else {
            assert_int_equal(kvt_del(&u, keys[i], NULL), 0);
            assert_int_equal(kvt_del(&v, keys[i], NULL), 0);
        }
    }
    kv_hash hu, hv, ht;
    assert_int_equal(kv_hash_get(u.s, 0, &hu), 0);
    assert_int_equal(kvt_compact(&u, 5), 0);
    assert_int_equal(kv_hash_get(u.s, 0, &hu), 0);
    assert_int_equal(kvt_compact(&v, 5), 0);
    assert_int_equal(kv_hash_get(v.s, 0, &hv), 0);
    assert_int_equal(kv_hash_get(t->s, 0, &ht), 0);
    assert_int_equal(hu.hash, ht.hash);
    assert_int_equal(hu.hash_revision, 6);
    assert_int_equal(hu.compact_revision, 5);
    assert_int_not_equal(hv.hash, ht.hash);
    kvt_close(&u, 0);
    kvt_close(&v, 0);
}

static void test_quota_nospace(void **state)
{
    kvt *t = *state;
    kvt_close(t, 0);
    kv_options o = {.quota_bytes = 256 * 1024};
    assert_int_equal(kvt_open(t, &o), 0);
    char val[4096];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    int rc = 0, i;
    char key[32];
    for (i = 0; i < 1000 && rc == 0; i++) {
        snprintf(key, sizeof key, "k%04d", i);
        rc = kvt_put(t, key, val, 0);
    }
    assert_int_equal(rc, KV_ENOSPACE);
    assert_true(i > 10);
    kv_status st;
    kv_status_get(t->s, &st);
    assert_int_equal(st.nospace_alarm, 1);
    /* Further puts are refused even if small; reads, deletes and
     * compactions still work. */
    assert_int_equal(kvt_put(t, "small", "x", 0), KV_ENOSPACE);
    assert_int_equal(kvt_grant(t, 0, 5, NULL), KV_ENOSPACE);
    assert_string_equal(kvt_get(t, "k0000"), val);
    assert_int_equal(kvt_del(t, "k", "l"), 0);
    assert_true(t->res.reply.delete_range->deleted > 10);
    assert_int_equal(kvt_compact(t, kvt_rev(t)), 0);
    /* Disarm: writes work again now that space was freed. */
    Skiffpb__AlarmRequest a = SKIFFPB__ALARM_REQUEST__INIT;
    a.action = SKIFFPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE;
    a.alarm = SKIFFPB__ALARM_TYPE__NOSPACE;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_ALARM;
    c.alarm = &a;
    assert_int_equal(kvt_apply(t, &c), 0);
    assert_int_equal(t->res.reply.alarm->n_alarms, 0);
    assert_int_equal(kvt_put(t, "small", "x", 0), 0);
    /* The alarm survives a restart. */
    a.action = SKIFFPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    assert_int_equal(kvt_apply(t, &c), 0);
    assert_int_equal(t->res.reply.alarm->n_alarms, 1);
    assert_int_equal(kvt_reopen(t, &o), 0);
    assert_int_equal(kvt_put(t, "small", "y", 0), KV_ENOSPACE);
}

static void test_apply_idempotent_and_durable(void **state)
{
    kvt *t = *state;
    assert_int_equal(kvt_put(t, "a", "1", 0), 0);
    assert_int_equal(kvt_put(t, "a", "2", 0), 0);
    /* Re-applying an applied index is a no-op. */
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = kvt_bytes("a");
    p.value = kvt_bytes("stale");
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_PUT;
    c.put = &p;
    cm_buf b = {0};
    assert_int_equal(kv_command_pack(&c, &b), 0);
    kv_entry e = {2, b.base, b.len, 0};
    assert_int_equal(kv_apply(t->s, &e, &t->arena, &t->res), 0);
    assert_true(t->res.skipped);
    assert_string_equal(kvt_get(t, "a"), "2");
    /* Reopen: same state and applied index. */
    assert_int_equal(kvt_reopen(t, NULL), 0);
    assert_int_equal(t->index, 2);
    assert_string_equal(kvt_get(t, "a"), "2");
    assert_int_equal(kvt_rev(t), 2);
    /* A malformed command consumes its index and changes nothing. */
    uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    e = (kv_entry){3, junk, sizeof junk, 0};
    assert_int_equal(kv_apply(t->s, &e, &t->arena, &t->res), 0);
    assert_int_equal(t->res.code, KV_EBAD_COMMAND);
    kv_status st;
    kv_status_get(t->s, &st);
    assert_int_equal(st.applied_index, 3);
    assert_int_equal(st.revision, 2);
    cm_buf_free(&b);
}

static void test_apply_batch(void **state)
{
    kvt *t = *state;
    enum { N = 100 };
    cm_buf bufs[N];
    kv_entry e[N];
    kv_result res[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
        snprintf(keys[i], sizeof keys[i], "b%03d", i);
        p.key = kvt_bytes(i == 50 ? "" : keys[i]);
        p.value = kvt_bytes("v");
        Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
        c.op_case = SKIFFPB__COMMAND__OP_PUT;
        c.put = &p;
        c.id = 1000 + i;
        memset(&bufs[i], 0, sizeof bufs[i]);
        assert_int_equal(kv_command_pack(&c, &bufs[i]), 0);
        e[i] = (kv_entry){i + 1, bufs[i].base, bufs[i].len, 0};
    }
    assert_int_equal(kv_apply_batch(t->s, e, N, &t->arena, res), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].cmd_id, 1000 + i);
        if (i == 50) {
            assert_int_equal(res[i].code, KV_EEMPTY_KEY);
            continue;
        }
        assert_int_equal(res[i].code, 0);
        assert_int_equal(res[i].events.n, 1);
        assert_int_equal(res[i].revision, i < 50 ? i + 1 : i);
    }
    kv_status st;
    kv_status_get(t->s, &st);
    assert_int_equal(st.applied_index, N);
    assert_int_equal(st.revision, N - 1);
    assert_int_equal(st.keys, N - 1);
    /* Replaying the same batch skips every entry. */
    assert_int_equal(kv_apply_batch(t->s, e, N, &t->arena, res), 0);
    for (int i = 0; i < N; i++)
        assert_true(res[i].skipped);
    for (int i = 0; i < N; i++)
        cm_buf_free(&bufs[i]);
}

typedef struct early_seen {
    kv_store *s;
    kv_result *res;
    size_t n;
    int calls;
    uint64_t applied_then;
    int64_t last_rev_then;
} early_seen;

static void on_early(void *arg)
{
    early_seen *e = arg;
    e->calls++;
    kv_status st;
    assert_int_equal(kv_status_meta(e->s, &st), 0);
    e->applied_then = st.applied_index;
    e->last_rev_then = e->res[e->n - 1].revision;
}

/* Packs n puts "e<i>" at indexes from+1 ... into bufs/e. */
static void early_batch(cm_buf *bufs, kv_entry *e, size_t n, uint64_t from)
{
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "e%zu", i);
        Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
        p.key = kvt_bytes(key);
        p.value = kvt_bytes("v");
        Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
        c.op_case = SKIFFPB__COMMAND__OP_PUT;
        c.put = &p;
        c.id = 1 + i;
        memset(&bufs[i], 0, sizeof bufs[i]);
        assert_int_equal(kv_command_pack(&c, &bufs[i]), 0);
        e[i] = (kv_entry){from + i + 1, bufs[i].base, bufs[i].len, 0};
    }
}

/* The early callback sees the batch's final results while the store
 * still shows the state before it; with a map too small to be sure the
 * commit fits, it is not called at all. */
static void test_apply_batch_early(void **state)
{
    kvt *t = *state;
    enum { N = 10, M = 500 };
    cm_buf bufs[M];
    kv_entry e[M];
    kv_result res[M];
    early_batch(bufs, e, N, 0);
    early_seen seen = {t->s, res, N, 0, 99, 0};
    assert_int_equal(
        kv_apply_batch_early(t->s, e, N, &t->arena, res, on_early, &seen), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.applied_then, 0);
    assert_int_equal(seen.last_rev_then, N);
    kv_status st;
    assert_int_equal(kv_status_meta(t->s, &st), 0);
    assert_int_equal(st.applied_index, N);
    for (int i = 0; i < N; i++)
        cm_buf_free(&bufs[i]);

    kvt_close(t, 0);
    kv_options o = {.quota_bytes = 256 * 1024}; /* map of 64.25 MiB */
    assert_int_equal(kvt_open(t, &o), 0);
    early_batch(bufs, e, M, 0);
    seen = (early_seen){t->s, res, M, 0, 99, 0};
    assert_int_equal(
        kv_apply_batch_early(t->s, e, M, &t->arena, res, on_early, &seen), 0);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(res[M - 1].revision, M);
    for (int i = 0; i < M; i++)
        cm_buf_free(&bufs[i]);
}

typedef struct collected {
    int64_t revs[64];
    size_t counts[64];
    size_t n;
    int has_prev;
} collected;

static int collect(void *arg, const kv_events *evs)
{
    collected *c = arg;
    c->revs[c->n] = evs->revision;
    c->counts[c->n++] = evs->n;
    for (size_t i = 0; i < evs->n; i++)
        if (evs->ev[i]->prev_kv)
            c->has_prev++;
    return 0;
}

static void test_events_read(void **state)
{
    kvt *t = *state;
    fill_abc(t);                            /* revs 1..7 */
    assert_int_equal(kvt_del(t, "a", "c"), 0); /* rev 8: a, b */
    collected c = {0};
    int64_t next, compact;
    const uint8_t *k = (const uint8_t *)"a", *e = (const uint8_t *)"e";
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 2, 0, 1, 0, &t->arena,
                                    collect, &c, &next, &compact),
                     0);
    /* Revisions 2,3,4,7,8 touch [a, e). */
    assert_int_equal(c.n, 5);
    assert_int_equal(c.revs[0], 2);
    assert_int_equal(c.revs[3], 7);
    assert_int_equal(c.revs[4], 8);
    assert_int_equal(c.counts[4], 2);
    assert_int_equal(next, 9);
    assert_int_equal(c.has_prev, 3); /* b@7, a@8, b@8 */
    /* A batch limit stops at a revision boundary, never inside one. */
    memset(&c, 0, sizeof c);
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 7, 0, 0, 2, &t->arena,
                                    collect, &c, &next, &compact),
                     0);
    assert_int_equal(c.n, 2);
    assert_int_equal(next, 9);
    memset(&c, 0, sizeof c);
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 2, 0, 0, 1, &t->arena,
                                    collect, &c, &next, &compact),
                     0);
    assert_int_equal(c.n, 1);
    assert_int_equal(next, 3);
    /* Up to a bound. */
    memset(&c, 0, sizeof c);
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 1, 3, 0, 0, &t->arena,
                                    collect, &c, &next, &compact),
                     0);
    assert_int_equal(c.n, 3);
    assert_int_equal(next, 4);
    /* Compacted and future starts. */
    assert_int_equal(kvt_compact(t, 4), 0);
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 4, 0, 0, 0, &t->arena,
                                    collect, &c, &next, &compact),
                     KV_ECOMPACTED);
    assert_int_equal(compact, 4);
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 10, 0, 0, 0,
                                    &t->arena, collect, &c, &next, &compact),
                     KV_EFUTURE_REV);
    memset(&c, 0, sizeof c);
    assert_int_equal(kv_events_read(t->s, k, 1, e, 1, 9, 0, 0, 0, &t->arena,
                                    collect, &c, &next, &compact),
                     0);
    assert_int_equal(c.n, 0);
    assert_int_equal(next, 9);
}

static void test_snapshot_restore(void **state)
{
    kvt *t = *state;
    fill_abc(t);
    int64_t lease;
    assert_int_equal(kvt_grant(t, 0, 30, &lease), 0);
    assert_int_equal(kvt_put(t, "leased", "x", lease), 0);
    assert_int_equal(kvt_compact(t, 3), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/snap", t->dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint64_t idx;
    assert_int_equal(kv_snapshot_write(t->s, fd, &idx), 0);
    assert_int_equal(idx, t->index);
    off_t size = lseek(fd, 0, SEEK_END);

    kvt u;
    assert_int_equal(kvt_open(&u, NULL), 0);
    assert_int_equal(kvt_put(&u, "junk", "j", 0), 0);
    kv_hash hu0;
    kv_hash_get(u.s, 0, &hu0);
    /* A flipped byte or a truncated stream is refused; store untouched. */
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, size / 2), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, size / 2), 1);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_restore(u.s, fd), KV_EBAD_SNAPSHOT);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, size / 2), 1);
    assert_int_equal(ftruncate(fd, size - 3), 0);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_restore(u.s, fd), KV_EBAD_SNAPSHOT);
    kv_hash hu1;
    kv_hash_get(u.s, 0, &hu1);
    assert_int_equal(hu0.hash, hu1.hash);
    assert_string_equal(kvt_get(&u, "junk"), "j");
    /* The intact snapshot restores the same state. */
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_snapshot_write(t->s, fd, &idx), 0);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(kv_restore(u.s, fd), 0);
    close(fd);
    kv_hash ht, hu;
    assert_int_equal(kv_hash_get(t->s, 0, &ht), 0);
    assert_int_equal(kv_hash_get(u.s, 0, &hu), 0);
    assert_int_equal(ht.hash, hu.hash);
    assert_int_equal(hu.compact_revision, 3);
    kv_status st;
    kv_status_get(u.s, &st);
    assert_int_equal(st.applied_index, t->index);
    assert_null(kvt_get(&u, "junk"));
    Skiffpb__LeaseTimeToLiveResponse *ttl;
    assert_int_equal(kv_lease_ttl(u.s, lease, 1, t->now_ms, &u.arena, &ttl),
                     0);
    assert_int_equal(ttl->n_keys, 1);
    /* The restored store keeps applying where the snapshot left off. */
    u.index = st.applied_index;
    assert_int_equal(kvt_put(&u, "after", "1", lease), 0);
    assert_int_equal(u.res.revision, ht.hash_revision + 1);
    kvt_close(&u, 0);
}

/* Every allocation failure inside apply returns a clean error and leaves
 * the store unchanged; the retry then succeeds. */
static void test_apply_enomem(void **state)
{
    kvt *t = *state;
    fill_abc(t);
    Skiffpb__RequestOp *ops[3] = {op_put("x", "1"), op_del("a"),
                                  op_get("b")};
    Skiffpb__TxnRequest tx = SKIFFPB__TXN_REQUEST__INIT;
    tx.n_success = 3;
    tx.success = ops;
    kv_hash before;
    kv_hash_get(t->s, 0, &before);
    int failures = 0;
    t->arena.chunk_sz = 64; /* so nearly every arena allocation can fail */
    for (long n = 0;; n++) {
        cm_arena_free(&t->arena);
        tu_alloc_fail_after(n);
        int rc = kvt_txn(t, &tx);
        tu_alloc_fail_after(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        failures++;
        kv_hash h;
        kv_hash_get(t->s, 0, &h);
        assert_int_equal(h.hash, before.hash);
    }
    assert_true(failures > 3);
    assert_int_equal(kvt_rev(t), 8);
    for (int i = 0; i < 3; i++)
        op_free(ops[i]);
}

static void test_open_errors(void **state)
{
    (void)state;
    kv_store *s;
    assert_int_equal(kv_open(&s, "/nonexistent/skiff/dir", NULL), -ENOENT);
    char dir[256];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    char f[300];
    snprintf(f, sizeof f, "%s/data.mdb", dir);
    FILE *fp = fopen(f, "w");
    fputs("this is not an LMDB file, just some text that is long enough",
          fp);
    fclose(fp);
    int rc = kv_open(&s, dir, NULL);
    assert_true(rc == KV_ECORRUPT || rc == KV_ELMDB || rc == -EINVAL);
    tu_rmrf(dir);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, kvt_setup, kvt_teardown)
    const struct CMUnitTest tests[] = {
        T(test_revisions_and_versions),
        T(test_range_forms),
        T(test_range_sort),
        T(test_range_errors),
        T(test_put_options),
        T(test_value_too_large),
        T(test_delete_range),
        T(test_txn_compares),
        T(test_txn_atomic_one_revision),
        T(test_txn_errors),
        T(test_leases),
        T(test_lease_expire),
        T(test_compaction),
        T(test_quota_nospace),
        T(test_apply_batch_early),
        T(test_apply_idempotent_and_durable),
        T(test_apply_batch),
        T(test_events_read),
        T(test_snapshot_restore),
        T(test_apply_enomem),
        T(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
