/*
 * Transactions: compares, then the success or failure ops, atomically and
 * as one revision.
 *
 * Like etcd, every compare on the taken path (nested transactions
 * included) is evaluated against the state before the transaction, then
 * the whole path is validated (sizes, leases, revisions, one write per
 * key), and only then executed.  A refused transaction has written
 * nothing.  Reads inside the transaction see its earlier writes.
 */
#include "kv_int.h"

#include <errno.h>
#include <string.h>

/* Branch decisions of the taken path, in depth-first order. */
typedef struct path {
    bool *taken;
    size_t n, cap, pos;
} path;

typedef struct wr {
    const uint8_t *key, *end;
    size_t klen, endl;
    bool is_put;
} wr;

typedef struct writes {
    wr *v;
    size_t n, cap;
} writes;

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b,
                     size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static bool compare_kv(const Skiffpb__Compare *c, const Skiffpb__KeyValue *kv)
{
    int r = 0;
    int64_t want = 0, have = 0;
    bool bytes = false;
    switch (c->target) {
    case SKIFFPB__COMPARE__COMPARE_TARGET__VERSION:
        have = kv->version;
        if (c->target_union_case == SKIFFPB__COMPARE__TARGET_UNION_VERSION)
            want = c->version;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__CREATE:
        have = kv->create_revision;
        if (c->target_union_case ==
            SKIFFPB__COMPARE__TARGET_UNION_CREATE_REVISION)
            want = c->create_revision;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__MOD:
        have = kv->mod_revision;
        if (c->target_union_case ==
            SKIFFPB__COMPARE__TARGET_UNION_MOD_REVISION)
            want = c->mod_revision;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__LEASE:
        have = kv->lease;
        if (c->target_union_case == SKIFFPB__COMPARE__TARGET_UNION_LEASE)
            want = c->lease;
        break;
    case SKIFFPB__COMPARE__COMPARE_TARGET__VALUE:
        bytes = true;
        if (c->target_union_case == SKIFFPB__COMPARE__TARGET_UNION_VALUE)
            r = cmp_bytes(kv->value.data, kv->value.len, c->value.data,
                          c->value.len);
        else
            r = kv->value.len ? 1 : 0;
        break;
    default:
        return false;
    }
    if (!bytes)
        r = have < want ? -1 : have > want;
    switch (c->result) {
    case SKIFFPB__COMPARE__COMPARE_RESULT__EQUAL:
        return r == 0;
    case SKIFFPB__COMPARE__COMPARE_RESULT__GREATER:
        return r > 0;
    case SKIFFPB__COMPARE__COMPARE_RESULT__LESS:
        return r < 0;
    case SKIFFPB__COMPARE__COMPARE_RESULT__NOT_EQUAL:
        return r != 0;
    default:
        return false;
    }
}

static int compare(kv__wctx *w, const Skiffpb__Compare *c, bool *ok)
{
    int rc = kv__check_key(c->key.data, c->key.len);
    if (rc)
        return rc;
    Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
    Skiffpb__RangeResponse resp = SKIFFPB__RANGE_RESPONSE__INIT;
    rr.key = c->key;
    rr.range_end = c->range_end;
    rc = kv__range(w->s, w->txn, KV__LATEST, w->compact_rev, &rr, w->arena,
                   &resp);
    if (rc)
        return rc;
    if (resp.n_kvs == 0) {
        /* A value cannot be compared on a missing key (etcd's rule);
         * other targets compare against zero. */
        static const Skiffpb__KeyValue zero = SKIFFPB__KEY_VALUE__INIT;
        *ok = c->target != SKIFFPB__COMPARE__COMPARE_TARGET__VALUE &&
              compare_kv(c, &zero);
        return 0;
    }
    *ok = true;
    for (size_t i = 0; i < resp.n_kvs && *ok; i++)
        *ok = compare_kv(c, resp.kvs[i]);
    return 0;
}

static int path_push(kv__wctx *w, path *p, bool v)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        bool *t = kv__arena_grow(w->arena, p->taken, p->n, cap, sizeof *t);
        if (!t)
            return -ENOMEM;
        p->taken = t;
        p->cap = cap;
    }
    p->taken[p->n++] = v;
    return 0;
}

static int eval(kv__wctx *w, const Skiffpb__TxnRequest *t, path *p,
                int depth)
{
    int max = w->s->opts.max_txn_ops;
    if ((int)t->n_compare > max || (int)t->n_success > max ||
        (int)t->n_failure > max)
        return KV_ETOO_MANY_OPS;
    if (depth > 16)
        return KV_EBAD_COMMAND;
    bool ok = true;
    for (size_t i = 0; i < t->n_compare && ok; i++) {
        int rc = compare(w, t->compare[i], &ok);
        if (rc)
            return rc;
    }
    int rc = path_push(w, p, ok);
    if (rc)
        return rc;
    Skiffpb__RequestOp **ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++)
        if (ops[i]->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN &&
            (rc = eval(w, ops[i]->request_txn, p, depth + 1)))
            return rc;
    return 0;
}

static int note_write(kv__wctx *w, writes *ws, const uint8_t *k, size_t kl,
                      const uint8_t *e, size_t el, bool is_put)
{
    for (size_t i = 0; i < ws->n; i++) {
        const wr *o = &ws->v[i];
        bool clash;
        if (is_put && o->is_put)
            clash = cmp_bytes(k, kl, o->key, o->klen) == 0;
        else if (is_put)
            clash = kv__in_range(k, kl, o->key, o->klen, o->end, o->endl);
        else if (o->is_put)
            clash = kv__in_range(o->key, o->klen, k, kl, e, el);
        else
            clash = false; /* two deletes may overlap */
        if (clash)
            return KV_EDUPLICATE_KEY;
    }
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 16;
        wr *v = kv__arena_grow(w->arena, ws->v, ws->n, cap, sizeof *v);
        if (!v)
            return -ENOMEM;
        ws->v = v;
        ws->cap = cap;
    }
    ws->v[ws->n++] = (wr){k, e, kl, el, is_put};
    return 0;
}

static int validate(kv__wctx *w, const Skiffpb__TxnRequest *t, path *p,
                    writes *ws)
{
    bool ok = p->taken[p->pos++];
    Skiffpb__RequestOp **ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const Skiffpb__RequestOp *op = ops[i];
        switch (op->request_case) {
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
            const Skiffpb__RangeRequest *r = op->request_range;
            rc = kv__check_key(r->key.data, r->key.len);
            if (!rc && r->revision > w->rev)
                rc = KV_EFUTURE_REV;
            if (!rc && r->revision > 0 && r->revision < w->compact_rev)
                rc = KV_ECOMPACTED;
            break;
        }
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
            const Skiffpb__PutRequest *r = op->request_put;
            rc = kv__validate_put(w, r);
            if (!rc)
                rc = note_write(w, ws, r->key.data, r->key.len, NULL, 0,
                                true);
            break;
        }
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
            const Skiffpb__DeleteRangeRequest *r = op->request_delete_range;
            rc = kv__check_key(r->key.data, r->key.len);
            if (!rc)
                rc = note_write(w, ws, r->key.data, r->key.len,
                                r->range_end.data, r->range_end.len, false);
            break;
        }
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN:
            rc = validate(w, op->request_txn, p, ws);
            break;
        default:
            rc = KV_EBAD_COMMAND;
        }
    }
    return rc;
}

static int execute(kv__wctx *w, const Skiffpb__TxnRequest *t, path *p,
                   Skiffpb__TxnResponse **out)
{
    cm_arena *a = w->arena;
    Skiffpb__TxnResponse *resp = cm_arena_alloc(a, sizeof *resp);
    if (!resp)
        return -ENOMEM;
    skiffpb__txn_response__init(resp);
    resp->header = w->hdr;
    bool ok = p->taken[p->pos++];
    resp->succeeded = ok;
    Skiffpb__RequestOp **ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    if (n) {
        resp->responses = cm_arena_alloc(a, n * sizeof *resp->responses);
        if (!resp->responses)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Skiffpb__RequestOp *op = ops[i];
        Skiffpb__ResponseOp *ro = cm_arena_alloc(a, sizeof *ro);
        if (!ro)
            return -ENOMEM;
        skiffpb__response_op__init(ro);
        resp->responses[i] = ro;
        resp->n_responses = i + 1;
        int rc;
        switch (op->request_case) {
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
            Skiffpb__RangeResponse *rr = cm_arena_alloc(a, sizeof *rr);
            if (!rr)
                return -ENOMEM;
            skiffpb__range_response__init(rr);
            rr->header = w->hdr;
            rc = kv__range(w->s, w->txn, KV__LATEST, w->compact_rev,
                           op->request_range, a, rr);
            ro->response_case = SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
            ro->response_range = rr;
            break;
        }
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
            Skiffpb__PutResponse *pr = cm_arena_alloc(a, sizeof *pr);
            if (!pr)
                return -ENOMEM;
            skiffpb__put_response__init(pr);
            pr->header = w->hdr;
            rc = kv__put(w, op->request_put, pr);
            ro->response_case = SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
            ro->response_put = pr;
            break;
        }
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
            const Skiffpb__DeleteRangeRequest *d = op->request_delete_range;
            Skiffpb__DeleteRangeResponse *dr = cm_arena_alloc(a, sizeof *dr);
            if (!dr)
                return -ENOMEM;
            skiffpb__delete_range_response__init(dr);
            dr->header = w->hdr;
            rc = kv__delete_range(w, d->key.data, d->key.len,
                                  d->range_end.data, d->range_end.len,
                                  d->prev_kv, dr);
            ro->response_case =
                SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
            ro->response_delete_range = dr;
            break;
        }
        case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN:
            rc = execute(w, op->request_txn, p, &ro->response_txn);
            ro->response_case = SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
            break;
        default:
            rc = KV_EBAD_COMMAND;
        }
        if (rc)
            return rc;
    }
    *out = resp;
    return 0;
}

/* Whether the taken path writes anything (for the quota check). */
static bool path_writes(const Skiffpb__TxnRequest *t, path *p)
{
    bool ok = p->taken[p->pos++];
    Skiffpb__RequestOp **ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT)
            any = true;
        else if (ops[i]->request_case ==
                 SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN)
            any = path_writes(ops[i]->request_txn, p) || any;
    }
    return any;
}

int kv__txn(kv__wctx *w, const Skiffpb__TxnRequest *req,
            Skiffpb__TxnResponse **out)
{
    path p = {0};
    writes ws = {0};
    int rc = eval(w, req, &p, 0);
    if (rc)
        return rc;
    if ((rc = validate(w, req, &p, &ws)))
        return rc;
    p.pos = 0;
    if (w->alarm & KV__ALARM_NOSPACE && path_writes(req, &p))
        return KV_ENOSPACE;
    p.pos = 0;
    return execute(w, req, &p, out);
}
