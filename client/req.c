/*
 * Requests of a libskiff client: start, send, retry, time out, complete.
 *
 * A request is encoded once, into an arena taken from the client's pool,
 * and then lives in exactly one place: the wait queue (no connection with
 * a free stream), the retry list (waiting out a backoff), or a stream slot
 * of a connection.  Independently it sits in the client's deadline list,
 * kept sorted by deadline; since most calls use the same timeout,
 * insertion from the tail is O(1) in practice, and one timer serves every
 * deadline.  Completion removes it from everything, hands the arena to the
 * result for the callback's duration, runs the callback and then returns
 * the arena to the pool unless the caller took the result -- so the
 * steady state of a benchmark allocates nothing per request.
 *
 * Retry policy (docs/client.md, "Failover").  Members forward writes to
 * the leader, so an answer of NO_LEADER or UNAVAILABLE, like a broken
 * connection, no longer proves a write was not applied: the member may
 * have passed it on before the leader went away.  Hence two classes:
 *   - safe to repeat (reads, read-only txns, lease keep-alive/ttl/list,
 *     status, hashkv, member list, alarm GET): sent again after a backoff
 *     when the connection breaks or the member answers NO_LEADER,
 *     NOT_LEADER, UNAVAILABLE or TOO_MANY_STREAMS;
 *   - everything else: sent again only while it provably never reached a
 *     member (not yet written to a socket) or the answer proves it was not
 *     applied (NOT_LEADER, TOO_MANY_STREAMS: refused before any proposal);
 *     a broken connection completes it with SKIFF_EUNKNOWN and NO_LEADER
 *     or UNAVAILABLE with that error.
 * MOVE_LEADER's NOT_LEADER goes back to the caller (skiff_move_leader)
 * because resending to the same member cannot succeed.  UNAVAILABLE,
 * NOT_LEADER and NO_LEADER also move the connection to the next endpoint
 * once its requests are answered.  Everything stops at the deadline
 * (SKIFF_EDEADLINE).
 *
 * The blocking calls are skiff_do plus a private uv_run(UV_RUN_ONCE) loop
 * on the calling thread until the callback has run.
 */
#include "skiff_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char *op_name(skiff_op_type t)
{
    static const char *const names[] = {"?",
                                        "range",
                                        "put",
                                        "delete",
                                        "txn",
                                        "compact",
                                        "lease grant",
                                        "lease revoke",
                                        "lease keepalive",
                                        "lease ttl",
                                        "lease list",
                                        "status",
                                        "hashkv",
                                        "alarm",
                                        "defragment",
                                        "member list",
                                        "snapshot",
                                        "member add",
                                        "member remove",
                                        "member promote",
                                        "move leader"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

int64_t skiff__now(skiff_client *c)
{
    return (int64_t)uv_now(c->loop);
}

/* ---- arena pool ---------------------------------------------------------- */

cm_arena *skiff__arena_get(skiff_client *c)
{
    if (c->npool)
        return c->pool[--c->npool];
    cm_arena *a = cm_calloc(1, sizeof *a);
    if (a)
        a->chunk_sz = SKIFF__ARENA_CHUNK;
    return a;
}

void skiff__arena_destroy(cm_arena *a)
{
    if (!a)
        return;
    cm_arena_free(a);
    cm_free(a);
}

void skiff__arena_put(skiff_client *c, cm_arena *a)
{
    if (!a)
        return;
    cm_arena_reset(a);
    if (c->npool < SKIFF__ARENA_POOL) {
        if (!c->pool) {
            c->pool = cm_calloc(SKIFF__ARENA_POOL, sizeof *c->pool);
            if (!c->pool) {
                skiff__arena_destroy(a);
                return;
            }
        }
        c->pool[c->npool++] = a;
        return;
    }
    skiff__arena_destroy(a);
}

ProtobufCAllocator skiff__pb_alloc(cm_arena *a)
{
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, a};
    return al;
}

void skiff_result_free(skiff_result *res)
{
    if (!res)
        return;
    skiff__arena_destroy(res->priv_arena);
    memset(res, 0, sizeof *res);
}

/* ---- lists --------------------------------------------------------------- */

static void dl_insert(skiff_client *c, skiff_req *req)
{
    skiff_req *p = c->dl_tail;
    while (p && p->deadline_ms > req->deadline_ms)
        p = p->prev;
    req->prev = p;
    req->next = p ? p->next : c->dl_head;
    if (req->next)
        req->next->prev = req;
    else
        c->dl_tail = req;
    if (p)
        p->next = req;
    else
        c->dl_head = req;
}

static void dl_remove(skiff_client *c, skiff_req *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        c->dl_head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        c->dl_tail = req->prev;
    req->next = req->prev = NULL;
}

static void wait_remove(skiff_client *c, skiff_req *req)
{
    skiff_req **pp = &c->wait_head, *prev = NULL;
    while (*pp && *pp != req) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp)
        return;
    *pp = req->qnext;
    if (c->wait_tail == req)
        c->wait_tail = prev;
    req->qnext = NULL;
}

static void retry_remove(skiff_client *c, skiff_req *req)
{
    skiff_req **pp = &c->retry_head;
    while (*pp && *pp != req)
        pp = &(*pp)->qnext;
    if (*pp)
        *pp = req->qnext;
    req->qnext = NULL;
}

/* ---- completion ---------------------------------------------------------- */

static void complete(skiff_req *req, int status)
{
    skiff_client *c = req->client;
    switch (req->state) {
    case REQ_WAIT:
        wait_remove(c, req);
        break;
    case REQ_RETRY:
        retry_remove(c, req);
        break;
    case REQ_INFLIGHT:
        if (req->conn)
            skiff__slot_free(req->conn, req->stream);
        break;
    default:
        break;
    }
    dl_remove(c, req);
    /* A stream slot may have been freed: let a waiting request have it. */
    if (c->wait_head && !c->closing)
        skiff__reqs_on_ready(c);
    req->conn = NULL;
    req->state = REQ_DONE;
    req->end_ns = (int64_t)uv_hrtime();
    if (status < 0 && status != -ECANCELED && !req->result.error_message)
        skiff__errmsg(c, "%s: %s", op_name(req->type), skiff_strerror(status));
    cm_arena *a = req->arena;
    req->arena = NULL;
    req->result.priv_arena = a;
    cm_arena *saved = c->cur_arena;
    c->cur_arena = a;
    /* The callback may free req; nothing touches it afterwards. */
    req->cb(req, status);
    if (c->cur_arena)
        skiff__arena_put(c, c->cur_arena);
    c->cur_arena = saved;
}

void skiff_req_take_result(skiff_req *req, skiff_result *out)
{
    skiff_client *c = req->client;
    *out = req->result;
    if (c->cur_arena == req->result.priv_arena)
        c->cur_arena = NULL;
    memset(&req->result, 0, sizeof req->result);
}

/* ---- deadlines and retries ----------------------------------------------- */

static int any_ready(skiff_client *c)
{
    for (int i = 0; i < c->n_conns; i++)
        if (c->conns[i].state == C_READY)
            return 1;
    return 0;
}

static void on_deadline(uv_timer_t *t)
{
    skiff_client *c = t->data;
    int64_t now = skiff__now(c);
    while (c->dl_head && c->dl_head->deadline_ms <= now)
        complete(c->dl_head, SKIFF_EDEADLINE);
    /* A request that never got a connection gives up after the dial
     * timeout instead of waiting out its whole deadline. */
    if (!any_ready(c)) {
        skiff_req *r = c->wait_head;
        while (r) {
            skiff_req *next = r->qnext;
            if (r->attempts == 0 &&
                r->wait_since_ms + c->dial_timeout_ms <= now) {
                char why[SKIFF__ERRMSG];
                memcpy(why, c->errmsg, sizeof why);
                complete(r, SKIFF_ENOENDPOINT);
                skiff__errmsg(c, "%s: %s", skiff_strerror(SKIFF_ENOENDPOINT),
                              why);
                /* The list may have changed under the callback. */
                next = c->wait_head;
            }
            r = next;
        }
    }
    skiff__deadline_arm(c);
}

void skiff__deadline_arm(skiff_client *c)
{
    if (c->closing)
        return;
    int64_t next = INT64_MAX;
    if (c->dl_head)
        next = c->dl_head->deadline_ms;
    for (skiff_req *r = any_ready(c) ? NULL : c->wait_head; r; r = r->qnext) {
        if (r->attempts == 0) {
            int64_t w = r->wait_since_ms + c->dial_timeout_ms;
            if (w < next)
                next = w;
            break;
        }
    }
    if (next == INT64_MAX) {
        uv_timer_stop(&c->dl_timer);
        return;
    }
    int64_t now = skiff__now(c);
    uv_timer_start(&c->dl_timer, on_deadline,
                   next > now ? (uint64_t)(next - now) : 0, 0);
}

static void on_retry(uv_timer_t *t)
{
    skiff_client *c = t->data;
    int64_t now = skiff__now(c);
    skiff_req *due = NULL, **pp = &c->retry_head;
    while (*pp) {
        skiff_req *r = *pp;
        if (r->retry_at_ms <= now) {
            *pp = r->qnext;
            r->qnext = due;
            due = r;
        } else {
            pp = &r->qnext;
        }
    }
    while (due) {
        skiff_req *r = due;
        due = r->qnext;
        r->qnext = NULL;
        r->state = REQ_IDLE;
        skiff__req_dispatch(r);
    }
    skiff__watches_due(c, now);
    skiff__retry_arm(c);
}

void skiff__retry_arm(skiff_client *c)
{
    if (c->closing)
        return;
    int64_t next = INT64_MAX, now = skiff__now(c);
    for (skiff_req *r = c->retry_head; r; r = r->qnext)
        if (r->retry_at_ms < next)
            next = r->retry_at_ms;
    skiff__watches_retry(c, now, &next);
    if (next == INT64_MAX) {
        uv_timer_stop(&c->retry_timer);
        return;
    }
    uv_timer_start(&c->retry_timer, on_retry,
                   next > now ? (uint64_t)(next - now) : 0, 0);
}

static void schedule_retry(skiff_req *req)
{
    skiff_client *c = req->client;
    int64_t delay = c->backoff_min_ms;
    for (int i = 1; i < req->attempts && delay < c->backoff_max_ms; i++)
        delay *= 2;
    if (delay > c->backoff_max_ms)
        delay = c->backoff_max_ms;
    req->retry_at_ms = skiff__now(c) + delay;
    req->state = REQ_RETRY;
    req->qnext = c->retry_head;
    c->retry_head = req;
    skiff__retry_arm(c);
}

/* ---- sending ------------------------------------------------------------- */

void skiff__req_dispatch(skiff_req *req)
{
    skiff_client *c = req->client;
    skiff_conn *cn = skiff__conn_pick(c);
    if (!cn) {
        req->state = REQ_WAIT;
        req->wait_since_ms = skiff__now(c);
        req->qnext = NULL;
        if (c->wait_tail)
            c->wait_tail->qnext = req;
        else
            c->wait_head = req;
        c->wait_tail = req;
        skiff__deadline_arm(c);
        return;
    }
    uint64_t stream = skiff__slot_alloc(cn, 1, req);
    if (!stream) {
        schedule_retry(req);
        return;
    }
    req->conn = cn;
    req->stream = stream;
    req->state = REQ_INFLIGHT;
    req->attempts++;
    req->send_gen = cn->gen + 1;
    if (skiff__conn_send(cn, stream, req->payload, req->payload_len)) {
        skiff__slot_free(cn, stream);
        req->conn = NULL;
        req->attempts--;
        schedule_retry(req);
    }
}

void skiff__reqs_on_ready(skiff_client *c)
{
    while (c->wait_head) {
        skiff_conn *cn = skiff__conn_pick(c);
        if (!cn)
            break;
        skiff_req *r = c->wait_head;
        c->wait_head = r->qnext;
        if (!c->wait_head)
            c->wait_tail = NULL;
        r->qnext = NULL;
        r->state = REQ_IDLE;
        skiff__req_dispatch(r);
    }
}

void skiff__req_on_conn_lost(skiff_req *req, int sent)
{
    req->conn = NULL;
    req->state = REQ_IDLE;
    if (sent && !(req->flags & REQF_SAFE)) {
        if (req->type == SKIFF_OP_SNAPSHOT)
            complete(req, -ECONNRESET);
        else
            complete(req, SKIFF_EUNKNOWN);
        return;
    }
    if (req->type == SKIFF_OP_SNAPSHOT && req->result.snapshot_bytes) {
        complete(req, -ECONNRESET);
        return;
    }
    skiff__req_dispatch(req);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Whether an error answer lets `req` be sent again (see the policy in the
 * file comment). */
static int retryable(const skiff_req *req, int code)
{
    switch (code) {
    case SKIFFPB__ERROR_CODE__TOO_MANY_STREAMS:
        return 1;
    case SKIFFPB__ERROR_CODE__NOT_LEADER:
        return req->type != SKIFF_OP_MOVE_LEADER;
    case SKIFFPB__ERROR_CODE__NO_LEADER:
    case SKIFFPB__ERROR_CODE__UNAVAILABLE:
        /* A snapshot only reads; the caller checks it has no bytes yet. */
        return (req->flags & REQF_SAFE) != 0 || req->type == SKIFF_OP_SNAPSHOT;
    default:
        return 0;
    }
}

/* Whether the member asked to be left: UNAVAILABLE (shutting down,
 * failed store), NOT_LEADER, or NO_LEADER (it may be cut off from the
 * majority while others have a leader). */
static int go_elsewhere(int code)
{
    return code == SKIFFPB__ERROR_CODE__UNAVAILABLE ||
           code == SKIFFPB__ERROR_CODE__NOT_LEADER ||
           code == SKIFFPB__ERROR_CODE__NO_LEADER;
}

void skiff__req_on_response(skiff_conn *cn, skiff_req *req, const uint8_t *p,
                            size_t len)
{
    skiff_client *c = req->client;
    if (!p) {
        complete(req, -EMSGSIZE);
        return;
    }
    int snap = req->type == SKIFF_OP_SNAPSHOT;
    cm_arena *a = snap ? &c->scratch : req->arena;
    ProtobufCAllocator al = skiff__pb_alloc(a);
    Skiffpb__Response *r = skiffpb__response__unpack(&al, len, p);
    if (!r) {
        if (snap)
            cm_arena_reset(&c->scratch);
        complete(req, SKIFF_EPROTO);
        skiff__conn_fail_over(cn, "malformed response", SKIFF_EPROTO);
        return;
    }
    skiff_result *res = &req->result;
    if (r->error && r->error->code != SKIFFPB__ERROR_CODE__OK) {
        int code = r->error->code;
        int st = skiff__err_from_wire(code);
        /* An error is the stream's last response. */
        skiff__slot_free(cn, req->stream);
        req->state = REQ_IDLE;
        req->conn = NULL;
        if (go_elsewhere(code))
            skiff__conn_drain(cn);
        if (retryable(req, code) && !(snap && res->snapshot_bytes)) {
            if (snap)
                cm_arena_reset(&c->scratch);
            schedule_retry(req);
            return;
        }
        res->type = req->type;
        res->compact_revision = r->error->compact_revision;
        res->leader_hint = r->error->leader_hint;
        if (!snap && r->error->message && r->error->message[0])
            res->error_message = r->error->message;
        const char *wn = skiff_err_wire_name(st);
        skiff__errmsg(c, "%s: %s: %s (%s)", op_name(req->type), cn->addr,
                      r->error->message ? r->error->message : "",
                      wn ? wn : "UNKNOWN");
        if (snap)
            cm_arena_reset(&c->scratch);
        complete(req, st);
        return;
    }
    if (snap) {
        int rc = 0;
        if (r->body_case != SKIFFPB__RESPONSE__BODY_SNAPSHOT || !r->snapshot)
            rc = SKIFF_EPROTO;
        else
            rc = write_all(req->snapshot_fd, r->snapshot->blob.data,
                           r->snapshot->blob.len);
        if (rc == 0 && r->snapshot) {
            res->snapshot_bytes += r->snapshot->blob.len;
            skiff__header_fill(&res->header, r->snapshot->header);
        }
        int more = r->more;
        cm_arena_reset(&c->scratch);
        if (rc < 0) {
            complete(req, rc);
            return;
        }
        if (more) {
            /* A snapshot may take long: the deadline bounds the wait for
             * each chunk, not the whole transfer. */
            dl_remove(c, req);
            req->deadline_ms = skiff__now(c) + c->request_timeout_ms;
            dl_insert(c, req);
            skiff__deadline_arm(c);
            return;
        }
        res->type = SKIFF_OP_SNAPSHOT;
        complete(req, 0);
        return;
    }
    int rc = skiff__result_fill(req->arena, req->type, r, res);
    complete(req, rc);
}

/* ---- public -------------------------------------------------------------- */

static int op_is_safe(const skiff_op *op)
{
    switch (op->type) {
    case SKIFF_OP_RANGE:
    case SKIFF_OP_LEASE_KEEPALIVE:
    case SKIFF_OP_LEASE_TTL:
    case SKIFF_OP_LEASE_LEASES:
    case SKIFF_OP_STATUS:
    case SKIFF_OP_HASHKV:
    case SKIFF_OP_MEMBER_LIST:
    case SKIFF_OP_WHOAMI:
    case SKIFF_OP_ACCESS_REVIEW:
        return 1;
    case SKIFF_OP_ALARM:
        return op->alarm_action == SKIFF_ALARM_GET;
    case SKIFF_OP_TXN:
        for (size_t i = 0; i < op->n_success; i++)
            if (!op_is_safe(&op->success[i]))
                return 0;
        for (size_t i = 0; i < op->n_failure; i++)
            if (!op_is_safe(&op->failure[i]))
                return 0;
        return 1;
    default:
        return 0;
    }
}

int skiff_do(skiff_client *c, skiff_req *req, const skiff_op *op,
             skiff_req_cb cb)
{
    if (!c || !req || !cb || skiff__op_check(op))
        return -EINVAL;
    if (c->closing)
        return SKIFF_EFAILED;
    cm_arena *a = skiff__arena_get(c);
    if (!a)
        return -ENOMEM;
    const uint8_t *payload;
    size_t len;
    int rc = skiff__encode_op(a, op, &payload, &len);
    if (rc) {
        skiff__arena_put(c, a);
        skiff__errmsg(c, "%s: encoding failed: %s", op_name(op->type),
                      skiff_strerror(rc));
        return rc;
    }
    if (c->blocking)
        uv_update_time(c->loop);
    void *data = req->data;
    memset(req, 0, sizeof *req);
    req->data = data;
    req->cb = cb;
    req->client = c;
    req->arena = a;
    req->payload = payload;
    req->payload_len = len;
    req->type = op->type;
    req->flags = op->flags | (op_is_safe(op) ? REQF_SAFE : 0);
    req->snapshot_fd = op->type == SKIFF_OP_SNAPSHOT ? op->snapshot_fd : -1;
    req->start_ns = (int64_t)uv_hrtime();
    int timeout = op->timeout_ms > 0 ? op->timeout_ms : c->request_timeout_ms;
    req->deadline_ms = skiff__now(c) + timeout;
    dl_insert(c, req);
    skiff__deadline_arm(c);
    skiff__req_dispatch(req);
    return 0;
}

void skiff__cancel_all_reqs(skiff_client *c)
{
    while (c->dl_head)
        complete(c->dl_head, -ECANCELED);
}

/* ---- blocking ------------------------------------------------------------ */

typedef struct sync_ctx {
    int done;
    int status;
    skiff_result res;
} sync_ctx;

static void sync_cb(skiff_req *req, int status)
{
    sync_ctx *x = req->data;
    x->done = 1;
    x->status = status;
    skiff_req_take_result(req, &x->res);
}

int skiff_do_sync(skiff_client *c, const skiff_op *op, skiff_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!c)
        return -EINVAL;
    if (!c->blocking) {
        skiff__errmsg(c, "blocking call on an asynchronous client");
        return SKIFF_EWRONG_MODE;
    }
    sync_ctx x;
    memset(&x, 0, sizeof x);
    skiff_req req;
    req.data = &x;
    /* The loop has not run since the last call: take in what happened
     * meanwhile (a connection closed by a restarted server, say) before
     * choosing where to send, so an idle client does not write into a
     * dead socket and turn a plain write into an unknown outcome. */
    uv_run(c->loop, UV_RUN_NOWAIT);
    int rc = skiff_do(c, &req, op, sync_cb);
    if (rc)
        return rc;
    while (!x.done)
        uv_run(c->loop, UV_RUN_ONCE);
    if (res)
        *res = x.res;
    else
        skiff_result_free(&x.res);
    return x.status;
}

int skiff_put(skiff_client *c, const void *key, size_t key_len, const void *val,
              size_t val_len, int64_t lease, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_PUT,
                   .key = key,
                   .key_len = key_len,
                   .value = val,
                   .value_len = val_len,
                   .lease = lease};
    return skiff_do_sync(c, &op, res);
}

int skiff_get(skiff_client *c, const void *key, size_t key_len,
              skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_RANGE, .key = key, .key_len = key_len};
    return skiff_do_sync(c, &op, res);
}

int skiff_get_prefix(skiff_client *c, const void *prefix, size_t prefix_len,
                     skiff_result *res)
{
    uint8_t stackbuf[512];
    skiff_op op = {
        .type = SKIFF_OP_RANGE, .key = prefix, .key_len = prefix_len};
    uint8_t *buf = prefix_len + 1 <= sizeof stackbuf
                       ? stackbuf
                       : cm_malloc(prefix_len + 1);
    if (!buf)
        return -ENOMEM;
    int rc = skiff_op_prefix(&op, buf, prefix_len + 1);
    if (rc == 0)
        rc = skiff_do_sync(c, &op, res);
    if (buf != stackbuf)
        cm_free(buf);
    return rc;
}

int skiff_delete(skiff_client *c, const void *key, size_t key_len,
                 const void *range_end, size_t range_end_len, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_DELETE,
                   .key = key,
                   .key_len = key_len,
                   .range_end = range_end,
                   .range_end_len = range_end ? range_end_len : 0};
    return skiff_do_sync(c, &op, res);
}

int skiff_compact(skiff_client *c, int64_t revision, int physical)
{
    skiff_op op = {.type = SKIFF_OP_COMPACT,
                   .revision = revision,
                   .flags = physical ? SKIFF_PHYSICAL : 0};
    return skiff_do_sync(c, &op, NULL);
}

int skiff_lease_grant(skiff_client *c, int64_t ttl, int64_t id, int64_t *id_out,
                      int64_t *ttl_out)
{
    skiff_op op = {.type = SKIFF_OP_LEASE_GRANT, .ttl = ttl, .lease = id};
    skiff_result res;
    int rc = skiff_do_sync(c, &op, &res);
    if (rc == 0) {
        if (id_out)
            *id_out = res.lease_id;
        if (ttl_out)
            *ttl_out = res.ttl;
    }
    skiff_result_free(&res);
    return rc;
}

int skiff_lease_revoke(skiff_client *c, int64_t id)
{
    skiff_op op = {.type = SKIFF_OP_LEASE_REVOKE, .lease = id};
    return skiff_do_sync(c, &op, NULL);
}

int skiff_lease_keepalive_once(skiff_client *c, int64_t id, int64_t *ttl_out)
{
    skiff_op op = {.type = SKIFF_OP_LEASE_KEEPALIVE, .lease = id};
    skiff_result res;
    int rc = skiff_do_sync(c, &op, &res);
    if (rc == 0 && res.ttl <= 0)
        rc = SKIFF_ELEASE_NOT_FOUND;
    if (rc == 0 && ttl_out)
        *ttl_out = res.ttl;
    skiff_result_free(&res);
    return rc;
}

int skiff_status(skiff_client *c, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_STATUS};
    return skiff_do_sync(c, &op, res);
}

int skiff_snapshot(skiff_client *c, int fd, uint64_t *bytes_out)
{
    skiff_op op = {
        .type = SKIFF_OP_SNAPSHOT, .snapshot_fd = fd, .timeout_ms = 0};
    skiff_result res;
    int rc = skiff_do_sync(c, &op, &res);
    if (bytes_out)
        *bytes_out = res.snapshot_bytes;
    skiff_result_free(&res);
    return rc;
}
