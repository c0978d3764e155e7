/*
 * Request dispatch: decide what each request is (a write for the apply
 * pipeline, a read for the thread pool, a watch, or something answered on
 * the spot) and turn apply results into responses.
 *
 * Writes are packed into the batch at once, so their decode arena is freed
 * here; a read job takes its arena with it.
 */
#include "server_int.h"

#include <errno.h>
#include <string.h>

static void free_arena(cm_arena *a)
{
    cm_arena_free(a);
    cm_free(a);
}

int srv_propose_request(conn *c, uint64_t stream, Skiffpb__Request *req)
{
    Skiffpb__Command cmd = SKIFFPB__COMMAND__INIT;
    switch (req->body_case) {
    case SKIFFPB__REQUEST__BODY_PUT:
        cmd.op_case = SKIFFPB__COMMAND__OP_PUT;
        cmd.put = req->put;
        break;
    case SKIFFPB__REQUEST__BODY_DELETE_RANGE:
        cmd.op_case = SKIFFPB__COMMAND__OP_DELETE_RANGE;
        cmd.delete_range = req->delete_range;
        break;
    case SKIFFPB__REQUEST__BODY_TXN:
        cmd.op_case = SKIFFPB__COMMAND__OP_TXN;
        cmd.txn = req->txn;
        break;
    case SKIFFPB__REQUEST__BODY_COMPACT:
        cmd.op_case = SKIFFPB__COMMAND__OP_COMPACTION;
        cmd.compaction = req->compact;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_GRANT:
        cmd.op_case = SKIFFPB__COMMAND__OP_LEASE_GRANT;
        cmd.lease_grant = req->lease_grant;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE:
        cmd.op_case = SKIFFPB__COMMAND__OP_LEASE_REVOKE;
        cmd.lease_revoke = req->lease_revoke;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE:
        cmd.op_case = SKIFFPB__COMMAND__OP_LEASE_KEEPALIVE;
        cmd.lease_keepalive = req->lease_keepalive;
        break;
    case SKIFFPB__REQUEST__BODY_ALARM:
        cmd.op_case = SKIFFPB__COMMAND__OP_ALARM;
        cmd.alarm = req->alarm;
        cmd.alarm->memberid = c->s->member_id;
        break;
    default:
        return CM_EINVAL;
    }
    return srv_propose(c->s, c, stream, (int)req->body_case, &cmd, 0);
}

void srv_dispatch(conn *c, uint64_t stream, Skiffpb__Request *req,
                  cm_arena *a)
{
    server *s = c->s;
    int rc;
    if (!srv_auth_check(c, stream, req)) {
        free_arena(a); /* answered: denied, or an auth request */
        return;
    }
    switch (req->body_case) {
    case SKIFFPB__REQUEST__BODY_ALARM:
        if (req->alarm->action == SKIFFPB__ALARM_REQUEST__ALARM_ACTION__GET)
            goto read;
        /* fall through */
    case SKIFFPB__REQUEST__BODY_PUT:
    case SKIFFPB__REQUEST__BODY_DELETE_RANGE:
    case SKIFFPB__REQUEST__BODY_TXN:
    case SKIFFPB__REQUEST__BODY_COMPACT:
    case SKIFFPB__REQUEST__BODY_LEASE_GRANT:
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE:
    case SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE:
        if (srv_admit_needed(req)) {
            /* Objects go through admission first (admit.c), which takes
             * the request and its arena. */
            if ((rc = srv_admit_start(c, stream, req, a)) == 0)
                return;
            free_arena(a);
            conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                           cm_strerror(rc), 0);
            return;
        }
        if (srv_lease_keys_start(c, stream, req, a))
            return; /* RBAC: every key of its leases checked first */
        rc = srv_propose_request(c, stream, req);
        free_arena(a);
        if (rc)
            conn_send_code(c, stream,
                           rc == -ESHUTDOWN ? SKIFFPB__ERROR_CODE__UNAVAILABLE
                                            : api_code_from_err(rc),
                           rc == -ESHUTDOWN ? "server is shutting down"
                                            : cm_strerror(rc),
                           0);
        return;
    case SKIFFPB__REQUEST__BODY_WATCH_CREATE:
        srv_watch_create(c, stream, req->watch_create);
        free_arena(a);
        return;
    case SKIFFPB__REQUEST__BODY_WATCH_CANCEL:
    case SKIFFPB__REQUEST__BODY_WATCH_PROGRESS:
        free_arena(a);
        conn_send_code(c, stream, SKIFFPB__ERROR_CODE__WATCH_NOT_FOUND,
                       "no watch on this stream", 0);
        return;
    case SKIFFPB__REQUEST__BODY_DEFRAGMENT: {
        /* LMDB reuses freed pages and the quota counts pages in use, so
         * there is nothing to defragment: answer success like etcd. */
        free_arena(a);
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__DefragmentResponse d = SKIFFPB__DEFRAGMENT_RESPONSE__INIT;
        Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
        conn_fill_header(s, &h, watch_hub_revision(s->hub));
        d.header = &h;
        r.body_case = SKIFFPB__RESPONSE__BODY_DEFRAGMENT;
        r.defragment = &d;
        conn_send(c, stream, &r);
        return;
    }
    case SKIFFPB__REQUEST__BODY_MEMBER_LIST:
        free_arena(a);
        srv_member_list(c, stream);
        return;
    case SKIFFPB__REQUEST__BODY_MEMBER_ADD:
    case SKIFFPB__REQUEST__BODY_MEMBER_REMOVE:
    case SKIFFPB__REQUEST__BODY_MEMBER_PROMOTE:
    case SKIFFPB__REQUEST__BODY_MOVE_LEADER:
        srv_member_request(c, stream, req);
        free_arena(a);
        return;
    default:
        break;
    }
read:
    if ((rc = srv_read(c, stream, req, a))) {
        free_arena(a);
        conn_send_error(c, stream, rc, NULL, 0);
    }
}

void srv_applied(server *s, const waiter *p, const kv_result *res)
{
    if (res->code) {
        int64_t compact = 0;
        if (res->code == KV_ECOMPACTED) {
            kv_status st;
            if (kv_status_meta(s->kv, &st) == 0)
                compact = st.compact_revision;
        }
        conn_send_error(p->c, p->stream, res->code, kv_strerror(res->code),
                        compact);
        return;
    }
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    r.body_case = (Skiffpb__Response__BodyCase)p->op;
    /* Request and response bodies share field numbers. */
    Skiffpb__ResponseHeader *h = NULL;
    switch (p->op) {
    case SKIFFPB__REQUEST__BODY_PUT:
        r.put = res->reply.put;
        h = r.put->header;
        break;
    case SKIFFPB__REQUEST__BODY_DELETE_RANGE:
        r.delete_range = res->reply.delete_range;
        h = r.delete_range->header;
        break;
    case SKIFFPB__REQUEST__BODY_TXN:
        r.txn = res->reply.txn;
        h = r.txn->header;
        break;
    case SKIFFPB__REQUEST__BODY_COMPACT:
        r.compact = res->reply.compaction;
        h = r.compact->header;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_GRANT:
        r.lease_grant = res->reply.lease_grant;
        h = r.lease_grant->header;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE:
        r.lease_revoke = res->reply.lease_revoke;
        h = r.lease_revoke->header;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE:
        r.lease_keepalive = res->reply.lease_keepalive;
        h = r.lease_keepalive->header;
        break;
    case SKIFFPB__REQUEST__BODY_ALARM:
        r.alarm = res->reply.alarm;
        h = r.alarm->header;
        break;
    case SKIFFPB__REQUEST__BODY_MEMBER_ADD:
    case SKIFFPB__REQUEST__BODY_MEMBER_REMOVE:
    case SKIFFPB__REQUEST__BODY_MEMBER_PROMOTE:
        srv_member_reply(s, p, res);
        return;
    default:
        conn_send_code(p->c, p->stream, SKIFFPB__ERROR_CODE__INTERNAL,
                       "unexpected reply", 0);
        return;
    }
    if (h)
        conn_fill_header(s, h, 0);
    conn_send(p->c, p->stream, &r);
}
