/*
 * Translation between libskiff's plain C structs and the wire's protobuf
 * messages.  A skiff_op becomes a packed skiffpb.Request at once, when the
 * call starts, so the caller's buffers are borrowed only during that call
 * and a retry resends the same bytes.  A decoded skiffpb.Response becomes
 * a skiff_result whose pointers lead into the protobuf-c objects; both live
 * in the request's arena, so converting costs no copy of keys or values
 * and freeing is one arena reset.  Everything here is pure: no I/O, no
 * client state.
 */
#include "skiff_int.h"

#include <errno.h>
#include <string.h>

#define MAX_TXN_DEPTH 16

#define NEW(a, T) ((T *)cm_arena_alloc((a), sizeof(T)))
#define NEWN(a, T, n) ((T *)cm_arena_alloc((a), sizeof(T) * ((n) ? (n) : 1)))

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)p};
    return b;
}

static int check_op(const skiff_op *op, int depth)
{
    if (!op || depth > MAX_TXN_DEPTH)
        return -EINVAL;
    if ((op->key_len && !op->key) || (op->range_end_len && !op->range_end) ||
        (op->value_len && !op->value))
        return -EINVAL;
    switch (op->type) {
    case SKIFF_OP_RANGE:
    case SKIFF_OP_PUT:
    case SKIFF_OP_DELETE:
        return 0;
    case SKIFF_OP_TXN:
        if ((op->n_cmps && !op->cmps) || (op->n_success && !op->success) ||
            (op->n_failure && !op->failure))
            return -EINVAL;
        for (size_t i = 0; i < op->n_cmps; i++)
            if ((op->cmps[i].key_len && !op->cmps[i].key) ||
                (op->cmps[i].value_len && !op->cmps[i].value) ||
                (op->cmps[i].range_end_len && !op->cmps[i].range_end))
                return -EINVAL;
        for (size_t i = 0; i < op->n_success; i++)
            if (op->success[i].type > SKIFF_OP_TXN ||
                check_op(&op->success[i], depth + 1))
                return -EINVAL;
        for (size_t i = 0; i < op->n_failure; i++)
            if (op->failure[i].type > SKIFF_OP_TXN ||
                check_op(&op->failure[i], depth + 1))
                return -EINVAL;
        return 0;
    case SKIFF_OP_SNAPSHOT:
        return op->snapshot_fd >= 0 ? 0 : -EINVAL;
    case SKIFF_OP_COMPACT:
    case SKIFF_OP_LEASE_GRANT:
    case SKIFF_OP_LEASE_REVOKE:
    case SKIFF_OP_LEASE_KEEPALIVE:
    case SKIFF_OP_LEASE_TTL:
    case SKIFF_OP_LEASE_LEASES:
    case SKIFF_OP_STATUS:
    case SKIFF_OP_HASHKV:
    case SKIFF_OP_ALARM:
    case SKIFF_OP_DEFRAGMENT:
    case SKIFF_OP_MEMBER_LIST:
    case SKIFF_OP_WHOAMI:
        return 0;
    case SKIFF_OP_ACCESS_REVIEW:
        return op->verb && op->verb[0] && op->resource && op->resource[0] &&
                       (op->n_as_groups == 0 || op->as_groups)
                   ? 0
                   : -EINVAL;
    case SKIFF_OP_MEMBER_ADD:
        if (op->n_peer_urls == 0 || !op->peer_urls)
            return -EINVAL;
        for (size_t i = 0; i < op->n_peer_urls; i++)
            if (!op->peer_urls[i] || !op->peer_urls[i][0])
                return -EINVAL;
        return 0;
    case SKIFF_OP_MEMBER_REMOVE:
    case SKIFF_OP_MEMBER_PROMOTE:
    case SKIFF_OP_MOVE_LEADER:
        /* No member has ID 0: it is a forgotten field, not a request. */
        return op->member_id ? 0 : -EINVAL;
    }
    return -EINVAL;
}

int skiff__op_check(const skiff_op *op)
{
    return check_op(op, 0);
}

static Skiffpb__RangeRequest *mk_range(cm_arena *a, const skiff_op *op)
{
    Skiffpb__RangeRequest *r = NEW(a, Skiffpb__RangeRequest);
    if (!r)
        return NULL;
    skiffpb__range_request__init(r);
    r->key = bin(op->key, op->key_len);
    r->range_end = bin(op->range_end, op->range_end_len);
    r->limit = op->limit;
    r->revision = op->revision;
    r->sort_order = (Skiffpb__RangeRequest__SortOrder)op->sort_order;
    r->sort_target = (Skiffpb__RangeRequest__SortTarget)op->sort_target;
    r->serializable = !!(op->flags & SKIFF_SERIALIZABLE);
    r->keys_only = !!(op->flags & SKIFF_KEYS_ONLY);
    r->count_only = !!(op->flags & SKIFF_COUNT_ONLY);
    r->min_mod_revision = op->min_mod_revision;
    r->max_mod_revision = op->max_mod_revision;
    r->min_create_revision = op->min_create_revision;
    r->max_create_revision = op->max_create_revision;
    return r;
}

static Skiffpb__PutRequest *mk_put(cm_arena *a, const skiff_op *op)
{
    Skiffpb__PutRequest *p = NEW(a, Skiffpb__PutRequest);
    if (!p)
        return NULL;
    skiffpb__put_request__init(p);
    p->key = bin(op->key, op->key_len);
    p->value = bin(op->value, op->value_len);
    p->lease = op->lease;
    p->prev_kv = !!(op->flags & SKIFF_PREV_KV);
    p->ignore_value = !!(op->flags & SKIFF_IGNORE_VALUE);
    p->ignore_lease = !!(op->flags & SKIFF_IGNORE_LEASE);
    if (op->subresource && op->subresource[0])
        p->subresource = (char *)op->subresource;
    return p;
}

static Skiffpb__DeleteRangeRequest *mk_del(cm_arena *a, const skiff_op *op)
{
    Skiffpb__DeleteRangeRequest *d = NEW(a, Skiffpb__DeleteRangeRequest);
    if (!d)
        return NULL;
    skiffpb__delete_range_request__init(d);
    d->key = bin(op->key, op->key_len);
    d->range_end = bin(op->range_end, op->range_end_len);
    d->prev_kv = !!(op->flags & SKIFF_PREV_KV);
    return d;
}

static Skiffpb__TxnRequest *mk_txn(cm_arena *a, const skiff_op *op);

static Skiffpb__RequestOp **mk_ops(cm_arena *a, const skiff_op *ops, size_t n)
{
    Skiffpb__RequestOp **v = NEWN(a, Skiffpb__RequestOp *, n);
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        Skiffpb__RequestOp *o = NEW(a, Skiffpb__RequestOp);
        if (!o)
            return NULL;
        skiffpb__request_op__init(o);
        const skiff_op *s = &ops[i];
        switch (s->type) {
        case SKIFF_OP_RANGE:
            o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
            o->request_range = mk_range(a, s);
            if (!o->request_range)
                return NULL;
            break;
        case SKIFF_OP_PUT:
            o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            o->request_put = mk_put(a, s);
            if (!o->request_put)
                return NULL;
            break;
        case SKIFF_OP_DELETE:
            o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            o->request_delete_range = mk_del(a, s);
            if (!o->request_delete_range)
                return NULL;
            break;
        default:
            o->request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN;
            o->request_txn = mk_txn(a, s);
            if (!o->request_txn)
                return NULL;
            break;
        }
        v[i] = o;
    }
    return v;
}

static Skiffpb__TxnRequest *mk_txn(cm_arena *a, const skiff_op *op)
{
    Skiffpb__TxnRequest *t = NEW(a, Skiffpb__TxnRequest);
    if (!t)
        return NULL;
    skiffpb__txn_request__init(t);
    t->n_compare = op->n_cmps;
    t->compare = NEWN(a, Skiffpb__Compare *, op->n_cmps);
    if (!t->compare)
        return NULL;
    for (size_t i = 0; i < op->n_cmps; i++) {
        const skiff_cmp *s = &op->cmps[i];
        Skiffpb__Compare *c = NEW(a, Skiffpb__Compare);
        if (!c)
            return NULL;
        skiffpb__compare__init(c);
        c->result = (Skiffpb__Compare__CompareResult)s->result;
        c->target = (Skiffpb__Compare__CompareTarget)s->target;
        c->key = bin(s->key, s->key_len);
        c->range_end = bin(s->range_end, s->range_end_len);
        switch (s->target) {
        case SKIFF_CMP_VERSION:
            c->target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VERSION;
            c->version = s->number;
            break;
        case SKIFF_CMP_CREATE:
            c->target_union_case =
                SKIFFPB__COMPARE__TARGET_UNION_CREATE_REVISION;
            c->create_revision = s->number;
            break;
        case SKIFF_CMP_MOD:
            c->target_union_case = SKIFFPB__COMPARE__TARGET_UNION_MOD_REVISION;
            c->mod_revision = s->number;
            break;
        case SKIFF_CMP_VALUE:
            c->target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VALUE;
            c->value = bin(s->value, s->value_len);
            break;
        case SKIFF_CMP_LEASE:
            c->target_union_case = SKIFFPB__COMPARE__TARGET_UNION_LEASE;
            c->lease = s->number;
            break;
        }
        t->compare[i] = c;
    }
    t->n_success = op->n_success;
    t->success = mk_ops(a, op->success, op->n_success);
    t->n_failure = op->n_failure;
    t->failure = mk_ops(a, op->failure, op->n_failure);
    if (!t->success || !t->failure)
        return NULL;
    return t;
}

static int pack(cm_arena *a, const Skiffpb__Request *rq, const uint8_t **out,
                size_t *len)
{
    size_t n = skiffpb__request__get_packed_size(rq);
    uint8_t *buf = cm_arena_alloc(a, n);
    if (!buf)
        return -ENOMEM;
    *len = skiffpb__request__pack(rq, buf);
    *out = buf;
    return 0;
}

int skiff__encode_op(cm_arena *a, const skiff_op *op, const uint8_t **out,
                     size_t *len)
{
    Skiffpb__Request rq = SKIFFPB__REQUEST__INIT;
    void *body = NULL;
    switch (op->type) {
    case SKIFF_OP_RANGE:
        rq.body_case = SKIFFPB__REQUEST__BODY_RANGE;
        body = rq.range = mk_range(a, op);
        break;
    case SKIFF_OP_PUT:
        rq.body_case = SKIFFPB__REQUEST__BODY_PUT;
        body = rq.put = mk_put(a, op);
        break;
    case SKIFF_OP_DELETE:
        rq.body_case = SKIFFPB__REQUEST__BODY_DELETE_RANGE;
        body = rq.delete_range = mk_del(a, op);
        break;
    case SKIFF_OP_TXN:
        rq.body_case = SKIFFPB__REQUEST__BODY_TXN;
        body = rq.txn = mk_txn(a, op);
        break;
    case SKIFF_OP_COMPACT: {
        Skiffpb__CompactionRequest *m = NEW(a, Skiffpb__CompactionRequest);
        if (m) {
            skiffpb__compaction_request__init(m);
            m->revision = op->revision;
            m->physical = !!(op->flags & SKIFF_PHYSICAL);
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_COMPACT;
        body = rq.compact = m;
        break;
    }
    case SKIFF_OP_LEASE_GRANT: {
        Skiffpb__LeaseGrantRequest *m = NEW(a, Skiffpb__LeaseGrantRequest);
        if (m) {
            skiffpb__lease_grant_request__init(m);
            m->ttl = op->ttl;
            m->id = op->lease;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_LEASE_GRANT;
        body = rq.lease_grant = m;
        break;
    }
    case SKIFF_OP_LEASE_REVOKE: {
        Skiffpb__LeaseRevokeRequest *m = NEW(a, Skiffpb__LeaseRevokeRequest);
        if (m) {
            skiffpb__lease_revoke_request__init(m);
            m->id = op->lease;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_LEASE_REVOKE;
        body = rq.lease_revoke = m;
        break;
    }
    case SKIFF_OP_LEASE_KEEPALIVE: {
        Skiffpb__LeaseKeepAliveRequest *m =
            NEW(a, Skiffpb__LeaseKeepAliveRequest);
        if (m) {
            skiffpb__lease_keep_alive_request__init(m);
            m->id = op->lease;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE;
        body = rq.lease_keepalive = m;
        break;
    }
    case SKIFF_OP_LEASE_TTL: {
        Skiffpb__LeaseTimeToLiveRequest *m =
            NEW(a, Skiffpb__LeaseTimeToLiveRequest);
        if (m) {
            skiffpb__lease_time_to_live_request__init(m);
            m->id = op->lease;
            m->keys = !!(op->flags & SKIFF_LEASE_KEYS);
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_LEASE_TTL;
        body = rq.lease_ttl = m;
        break;
    }
    case SKIFF_OP_LEASE_LEASES: {
        Skiffpb__LeaseLeasesRequest *m = NEW(a, Skiffpb__LeaseLeasesRequest);
        if (m)
            skiffpb__lease_leases_request__init(m);
        rq.body_case = SKIFFPB__REQUEST__BODY_LEASE_LEASES;
        body = rq.lease_leases = m;
        break;
    }
    case SKIFF_OP_STATUS: {
        Skiffpb__StatusRequest *m = NEW(a, Skiffpb__StatusRequest);
        if (m)
            skiffpb__status_request__init(m);
        rq.body_case = SKIFFPB__REQUEST__BODY_STATUS;
        body = rq.status = m;
        break;
    }
    case SKIFF_OP_HASHKV: {
        Skiffpb__HashKVRequest *m = NEW(a, Skiffpb__HashKVRequest);
        if (m) {
            skiffpb__hash_kvrequest__init(m);
            m->revision = op->revision;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_HASH_KV;
        body = rq.hash_kv = m;
        break;
    }
    case SKIFF_OP_ALARM: {
        Skiffpb__AlarmRequest *m = NEW(a, Skiffpb__AlarmRequest);
        if (m) {
            skiffpb__alarm_request__init(m);
            m->action = (Skiffpb__AlarmRequest__AlarmAction)op->alarm_action;
            m->memberid = op->member_id;
            m->alarm = (Skiffpb__AlarmType)op->alarm_type;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_ALARM;
        body = rq.alarm = m;
        break;
    }
    case SKIFF_OP_DEFRAGMENT: {
        Skiffpb__DefragmentRequest *m = NEW(a, Skiffpb__DefragmentRequest);
        if (m)
            skiffpb__defragment_request__init(m);
        rq.body_case = SKIFFPB__REQUEST__BODY_DEFRAGMENT;
        body = rq.defragment = m;
        break;
    }
    case SKIFF_OP_MEMBER_LIST: {
        Skiffpb__MemberListRequest *m = NEW(a, Skiffpb__MemberListRequest);
        if (m) {
            skiffpb__member_list_request__init(m);
            m->linearizable = !!(op->flags & SKIFF_LINEARIZABLE);
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_MEMBER_LIST;
        body = rq.member_list = m;
        break;
    }
    case SKIFF_OP_SNAPSHOT: {
        Skiffpb__SnapshotRequest *m = NEW(a, Skiffpb__SnapshotRequest);
        if (m)
            skiffpb__snapshot_request__init(m);
        rq.body_case = SKIFFPB__REQUEST__BODY_SNAPSHOT;
        body = rq.snapshot = m;
        break;
    }
    case SKIFF_OP_MEMBER_ADD: {
        Skiffpb__MemberAddRequest *m = NEW(a, Skiffpb__MemberAddRequest);
        if (m) {
            skiffpb__member_add_request__init(m);
            /* protobuf-c only reads the strings while packing, which
             * happens before the caller's buffers are released. */
            m->peerurls = (char **)(uintptr_t)op->peer_urls;
            m->n_peerurls = op->n_peer_urls;
            m->islearner = !!(op->flags & SKIFF_LEARNER);
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_MEMBER_ADD;
        body = rq.member_add = m;
        break;
    }
    case SKIFF_OP_MEMBER_REMOVE: {
        Skiffpb__MemberRemoveRequest *m = NEW(a, Skiffpb__MemberRemoveRequest);
        if (m) {
            skiffpb__member_remove_request__init(m);
            m->id = op->member_id;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_MEMBER_REMOVE;
        body = rq.member_remove = m;
        break;
    }
    case SKIFF_OP_MEMBER_PROMOTE: {
        Skiffpb__MemberPromoteRequest *m =
            NEW(a, Skiffpb__MemberPromoteRequest);
        if (m) {
            skiffpb__member_promote_request__init(m);
            m->id = op->member_id;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_MEMBER_PROMOTE;
        body = rq.member_promote = m;
        break;
    }
    case SKIFF_OP_MOVE_LEADER: {
        Skiffpb__MoveLeaderRequest *m = NEW(a, Skiffpb__MoveLeaderRequest);
        if (m) {
            skiffpb__move_leader_request__init(m);
            m->targetid = op->member_id;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_MOVE_LEADER;
        body = rq.move_leader = m;
        break;
    }
    case SKIFF_OP_WHOAMI: {
        /* An Authenticate without a token only says who we are. */
        Skiffpb__AuthenticateRequest *m = NEW(a, Skiffpb__AuthenticateRequest);
        if (m)
            skiffpb__authenticate_request__init(m);
        rq.body_case = SKIFFPB__REQUEST__BODY_AUTHENTICATE;
        body = rq.authenticate = m;
        break;
    }
    case SKIFF_OP_ACCESS_REVIEW: {
        Skiffpb__AccessReviewRequest *m = NEW(a, Skiffpb__AccessReviewRequest);
        if (m) {
            skiffpb__access_review_request__init(m);
            m->verb = (char *)op->verb;
            m->resource = (char *)op->resource;
            if (op->ns)
                m->namespace_ = (char *)op->ns;
            if (op->name)
                m->name = (char *)op->name;
            if (op->as_user)
                m->as_user = (char *)op->as_user;
            m->as_groups = (char **)op->as_groups;
            m->n_as_groups = op->n_as_groups;
        }
        rq.body_case = SKIFFPB__REQUEST__BODY_ACCESS_REVIEW;
        body = rq.access_review = m;
        break;
    }
    default:
        return -EINVAL;
    }
    if (!body)
        return -ENOMEM;
    return pack(a, &rq, out, len);
}

int skiff__encode_watch(cm_arena *a, const skiff_watch *w, const uint8_t **out,
                        size_t *len)
{
    Skiffpb__Request rq = SKIFFPB__REQUEST__INIT;
    Skiffpb__WatchCreateRequest m = SKIFFPB__WATCH_CREATE_REQUEST__INIT;
    Skiffpb__WatchCreateRequest__FilterType filters[2];
    m.key = bin(w->key, w->key_len);
    m.range_end = bin(w->range_end, w->range_end_len);
    m.start_revision = w->next_rev;
    m.progress_notify = !!(w->flags & SKIFF_WATCH_PROGRESS_NOTIFY);
    m.prev_kv = !!(w->flags & SKIFF_WATCH_PREV_KV);
    if (w->flags & SKIFF_WATCH_NOPUT)
        filters[m.n_filters++] =
            SKIFFPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
    if (w->flags & SKIFF_WATCH_NODELETE)
        filters[m.n_filters++] =
            SKIFFPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE;
    m.filters = filters;
    rq.body_case = SKIFFPB__REQUEST__BODY_WATCH_CREATE;
    rq.watch_create = &m;
    return pack(a, &rq, out, len);
}

int skiff__encode_simple(cm_arena *a, int which, int64_t watch_id,
                         const uint8_t **out, size_t *len)
{
    Skiffpb__Request rq = SKIFFPB__REQUEST__INIT;
    Skiffpb__WatchCancelRequest wc = SKIFFPB__WATCH_CANCEL_REQUEST__INIT;
    Skiffpb__WatchProgressRequest wp = SKIFFPB__WATCH_PROGRESS_REQUEST__INIT;
    rq.body_case = (Skiffpb__Request__BodyCase)which;
    if (which == SKIFFPB__REQUEST__BODY_WATCH_CANCEL) {
        wc.watch_id = watch_id;
        rq.watch_cancel = &wc;
    } else if (which == SKIFFPB__REQUEST__BODY_WATCH_PROGRESS) {
        rq.watch_progress = &wp;
    } else {
        return -EINVAL;
    }
    return pack(a, &rq, out, len);
}

/* ---- responses ----------------------------------------------------------- */

void skiff__header_fill(skiff_header *h, const Skiffpb__ResponseHeader *p)
{
    memset(h, 0, sizeof *h);
    if (!p)
        return;
    h->cluster_id = p->cluster_id;
    h->member_id = p->member_id;
    h->revision = p->revision;
    h->raft_term = p->raft_term;
}

void skiff__kv_fill(skiff_kv *out, const Skiffpb__KeyValue *kv)
{
    memset(out, 0, sizeof *out);
    if (!kv)
        return;
    out->key = kv->key.data;
    out->key_len = kv->key.len;
    out->value = kv->value.data;
    out->value_len = kv->value.len;
    out->create_revision = kv->create_revision;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
    out->lease = kv->lease;
}

static int kvs_fill(cm_arena *a, skiff_result *res, Skiffpb__KeyValue **kvs,
                    size_t n)
{
    res->n_kvs = 0;
    res->kvs = NEWN(a, skiff_kv, n);
    if (!res->kvs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        skiff__kv_fill(&res->kvs[res->n_kvs++], kvs[i]);
    return 0;
}

static int fill_range(cm_arena *a, const Skiffpb__RangeResponse *m,
                      skiff_result *res)
{
    if (!m)
        return SKIFF_EPROTO;
    skiff__header_fill(&res->header, m->header);
    res->more = m->more;
    res->count = m->count;
    return kvs_fill(a, res, m->kvs, m->n_kvs);
}

static int fill_put(cm_arena *a, const Skiffpb__PutResponse *m,
                    skiff_result *res)
{
    if (!m)
        return SKIFF_EPROTO;
    skiff__header_fill(&res->header, m->header);
    if (m->prev_kv)
        return kvs_fill(a, res, &((Skiffpb__PutResponse *)m)->prev_kv, 1);
    return 0;
}

static int fill_del(cm_arena *a, const Skiffpb__DeleteRangeResponse *m,
                    skiff_result *res)
{
    if (!m)
        return SKIFF_EPROTO;
    skiff__header_fill(&res->header, m->header);
    res->count = m->deleted;
    return kvs_fill(a, res, m->prev_kvs, m->n_prev_kvs);
}

static int fill_txn(cm_arena *a, const Skiffpb__TxnResponse *m,
                    skiff_result *res, int depth)
{
    if (!m || depth > MAX_TXN_DEPTH)
        return SKIFF_EPROTO;
    skiff__header_fill(&res->header, m->header);
    res->succeeded = m->succeeded;
    res->responses = NEWN(a, skiff_result, m->n_responses);
    if (!res->responses)
        return -ENOMEM;
    memset(res->responses, 0, sizeof(skiff_result) * m->n_responses);
    res->n_responses = m->n_responses;
    for (size_t i = 0; i < m->n_responses; i++) {
        const Skiffpb__ResponseOp *o = m->responses[i];
        skiff_result *r = &res->responses[i];
        int rc;
        switch (o->response_case) {
        case SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
            r->type = SKIFF_OP_RANGE;
            rc = fill_range(a, o->response_range, r);
            break;
        case SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
            r->type = SKIFF_OP_PUT;
            rc = fill_put(a, o->response_put, r);
            break;
        case SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
            r->type = SKIFF_OP_DELETE;
            rc = fill_del(a, o->response_delete_range, r);
            break;
        case SKIFFPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
            r->type = SKIFF_OP_TXN;
            rc = fill_txn(a, o->response_txn, r, depth + 1);
            break;
        default:
            rc = SKIFF_EPROTO;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static const char *const *strv(char **v)
{
    return (const char *const *)v;
}

static void member_fill(skiff_member *o, const Skiffpb__Member *p)
{
    memset(o, 0, sizeof *o);
    if (!p)
        return;
    o->id = p->id;
    o->name = p->name;
    o->peer_urls = strv(p->peerurls);
    o->n_peer_urls = p->n_peerurls;
    o->client_urls = strv(p->clienturls);
    o->n_client_urls = p->n_clienturls;
    o->is_learner = p->islearner;
}

/* The member lists of member list/add/remove/promote replies. */
static int members_fill(cm_arena *a, skiff_result *res, Skiffpb__Member **v,
                        size_t n)
{
    res->members = NEWN(a, skiff_member, n);
    if (!res->members)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        member_fill(&res->members[i], v[i]);
    res->n_members = n;
    return 0;
}

int skiff__result_fill(cm_arena *a, skiff_op_type type,
                       const Skiffpb__Response *r, skiff_result *res)
{
    res->type = type;
    switch (type) {
    case SKIFF_OP_RANGE:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_RANGE)
            return SKIFF_EPROTO;
        return fill_range(a, r->range, res);
    case SKIFF_OP_PUT:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_PUT)
            return SKIFF_EPROTO;
        return fill_put(a, r->put, res);
    case SKIFF_OP_DELETE:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_DELETE_RANGE)
            return SKIFF_EPROTO;
        return fill_del(a, r->delete_range, res);
    case SKIFF_OP_TXN:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_TXN)
            return SKIFF_EPROTO;
        return fill_txn(a, r->txn, res, 0);
    case SKIFF_OP_COMPACT:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_COMPACT || !r->compact)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->compact->header);
        return 0;
    case SKIFF_OP_LEASE_GRANT:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_LEASE_GRANT ||
            !r->lease_grant)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->lease_grant->header);
        res->lease_id = r->lease_grant->id;
        res->ttl = r->lease_grant->ttl;
        res->granted_ttl = r->lease_grant->ttl;
        return 0;
    case SKIFF_OP_LEASE_REVOKE:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_LEASE_REVOKE ||
            !r->lease_revoke)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->lease_revoke->header);
        return 0;
    case SKIFF_OP_LEASE_KEEPALIVE:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_LEASE_KEEPALIVE ||
            !r->lease_keepalive)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->lease_keepalive->header);
        res->lease_id = r->lease_keepalive->id;
        res->ttl = r->lease_keepalive->ttl;
        return 0;
    case SKIFF_OP_LEASE_TTL: {
        const Skiffpb__LeaseTimeToLiveResponse *m = r->lease_ttl;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_LEASE_TTL || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        res->lease_id = m->id;
        res->ttl = m->ttl;
        res->granted_ttl = m->grantedttl;
        skiff_kv *keys = NEWN(a, skiff_kv, m->n_keys);
        if (!keys)
            return -ENOMEM;
        for (size_t i = 0; i < m->n_keys; i++) {
            memset(&keys[i], 0, sizeof keys[i]);
            keys[i].key = m->keys[i].data;
            keys[i].key_len = m->keys[i].len;
            keys[i].lease = m->id;
        }
        res->lease_keys = keys;
        res->n_lease_keys = m->n_keys;
        return 0;
    }
    case SKIFF_OP_LEASE_LEASES: {
        const Skiffpb__LeaseLeasesResponse *m = r->lease_leases;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_LEASE_LEASES || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        res->leases = NEWN(a, int64_t, m->n_leases);
        if (!res->leases)
            return -ENOMEM;
        for (size_t i = 0; i < m->n_leases; i++)
            res->leases[i] = m->leases[i]->id;
        res->n_leases = m->n_leases;
        return 0;
    }
    case SKIFF_OP_STATUS: {
        const Skiffpb__StatusResponse *m = r->status;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_STATUS || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        res->status.version = m->version;
        res->status.db_size = m->dbsize;
        res->status.db_size_in_use = m->dbsizeinuse;
        res->status.leader = m->leader;
        res->status.raft_index = m->raftindex;
        res->status.raft_term = m->raftterm;
        res->status.raft_applied_index = m->raftappliedindex;
        res->status.errors = strv(m->errors);
        res->status.n_errors = m->n_errors;
        res->status.is_learner = m->islearner;
        return 0;
    }
    case SKIFF_OP_HASHKV:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_HASH_KV || !r->hash_kv)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->hash_kv->header);
        res->hash = r->hash_kv->hash;
        res->compact_revision = r->hash_kv->compact_revision;
        res->hash_revision = r->hash_kv->hash_revision;
        return 0;
    case SKIFF_OP_ALARM: {
        const Skiffpb__AlarmResponse *m = r->alarm;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_ALARM || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        res->alarms = NEWN(a, skiff_alarm_member, m->n_alarms);
        if (!res->alarms)
            return -ENOMEM;
        for (size_t i = 0; i < m->n_alarms; i++) {
            res->alarms[i].member_id = m->alarms[i]->memberid;
            res->alarms[i].alarm = (enum skiff_alarm_type)m->alarms[i]->alarm;
        }
        res->n_alarms = m->n_alarms;
        return 0;
    }
    case SKIFF_OP_DEFRAGMENT:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_DEFRAGMENT ||
            !r->defragment)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->defragment->header);
        return 0;
    case SKIFF_OP_MEMBER_LIST: {
        const Skiffpb__MemberListResponse *m = r->member_list;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_MEMBER_LIST || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        return members_fill(a, res, m->members, m->n_members);
    }
    case SKIFF_OP_MEMBER_ADD: {
        const Skiffpb__MemberAddResponse *m = r->member_add;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_MEMBER_ADD || !m ||
            !m->member)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        member_fill(&res->member, m->member);
        return members_fill(a, res, m->members, m->n_members);
    }
    case SKIFF_OP_MEMBER_REMOVE: {
        const Skiffpb__MemberRemoveResponse *m = r->member_remove;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_MEMBER_REMOVE || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        return members_fill(a, res, m->members, m->n_members);
    }
    case SKIFF_OP_MEMBER_PROMOTE: {
        const Skiffpb__MemberPromoteResponse *m = r->member_promote;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_MEMBER_PROMOTE || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        return members_fill(a, res, m->members, m->n_members);
    }
    case SKIFF_OP_MOVE_LEADER:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_MOVE_LEADER ||
            !r->move_leader)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->move_leader->header);
        return 0;
    case SKIFF_OP_SNAPSHOT:
        if (r->body_case != SKIFFPB__RESPONSE__BODY_SNAPSHOT || !r->snapshot)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, r->snapshot->header);
        return 0;
    case SKIFF_OP_WHOAMI: {
        const Skiffpb__AuthenticateResponse *m = r->authenticate;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_AUTHENTICATE || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        res->user = m->user;
        res->groups = strv(m->groups);
        res->n_groups = m->n_groups;
        return 0;
    }
    case SKIFF_OP_ACCESS_REVIEW: {
        const Skiffpb__AccessReviewResponse *m = r->access_review;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_ACCESS_REVIEW || !m)
            return SKIFF_EPROTO;
        skiff__header_fill(&res->header, m->header);
        res->allowed = m->allowed;
        res->reason = m->reason;
        return 0;
    }
    }
    return SKIFF_EPROTO;
}

/* ---- range helpers ------------------------------------------------------- */

static const uint8_t zero_key[1] = {0};

int skiff_op_prefix(skiff_op *op, uint8_t *buf, size_t cap)
{
    if (op->key_len == 0) {
        /* The empty prefix is every key: etcd's key "\0", end "\0". */
        op->key = zero_key;
        op->key_len = 1;
        op->range_end = zero_key;
        op->range_end_len = 1;
        return 0;
    }
    const uint8_t *k = op->key;
    size_t n = op->key_len;
    /* The end of a prefix is the prefix with its last byte below 0xff
     * incremented and the rest dropped; an all-0xff (or empty) prefix has
     * no end, so it becomes "every key >= key". */
    while (n > 0 && k[n - 1] == 0xff)
        n--;
    if (n == 0) {
        if (cap < 1)
            return -EINVAL;
        buf[0] = 0;
        op->range_end = buf;
        op->range_end_len = 1;
        return 0;
    }
    if (cap < n)
        return -EINVAL;
    memcpy(buf, k, n);
    buf[n - 1]++;
    op->range_end = buf;
    op->range_end_len = n;
    return 0;
}

void skiff_op_from_key(skiff_op *op)
{
    if (op->key_len == 0) {
        op->key = zero_key;
        op->key_len = 1;
    }
    op->range_end = zero_key;
    op->range_end_len = 1;
}
