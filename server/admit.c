/*
 * Admission of writes under /registry/: the API server's work on an
 * object between receiving it and storing it (api/objects/admit.h:
 * decode, key check, defaulting, validation, server-set metadata,
 * immutable fields, generation), done here before the write is proposed.
 *
 * A put (alone or inside a txn, at any depth) whose key starts with
 * /registry/ sends its request to a pool job: the job reads the stored
 * object at that key (for updates), runs obj_admit and replaces the put's
 * value with the admitted bytes.  A refused write is answered
 * INVALID_ARGUMENT with Kubernetes' message and nothing is proposed.  The
 * stored object is read before proposing, so two writers racing on one
 * object should guard their puts with a compare on mod_revision (the
 * resourceVersion), as skiffctl apply does.
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "admit.h"

#define REGISTRY "/registry/"

typedef struct admit_job {
    uv_work_t w;
    server *s;
    conn *c;
    uint32_t gen;
    uint64_t stream;
    Skiffpb__Request *req;
    cm_arena *a;
    obj_admit_code code;
    char msg[OBJ_ADMIT_MSG_MAX];
} admit_job;

static bool is_registry(const ProtobufCBinaryData *k)
{
    return k->len > sizeof REGISTRY - 1 &&
           !memcmp(k->data, REGISTRY, sizeof REGISTRY - 1);
}

static bool txn_touches(const Skiffpb__TxnRequest *t, int depth)
{
    if (!t || depth > 16)
        return false;
    for (int pass = 0; pass < 2; pass++) {
        Skiffpb__RequestOp **ops = pass ? t->failure : t->success;
        size_t n = pass ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            const Skiffpb__RequestOp *o = ops[i];
            if (o->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT &&
                is_registry(&o->request_put->key))
                return true;
            if (o->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN &&
                txn_touches(o->request_txn, depth + 1))
                return true;
        }
    }
    return false;
}

bool srv_admit_needed(const Skiffpb__Request *req)
{
    if (req->body_case == SKIFFPB__REQUEST__BODY_PUT)
        return is_registry(&req->put->key);
    if (req->body_case == SKIFFPB__REQUEST__BODY_TXN)
        return txn_touches(req->txn, 0);
    return false;
}

static void new_uid(void *data, char *buf, size_t cap)
{
    (void)data;
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        /* Not on Linux >= 3.17; still unique enough per process. */
        cm_rand r;
        cm_rand_seed(&r, (uint64_t)cm_now_ms() ^ (uint64_t)(uintptr_t)buf);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)cm_rand_next(&r);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(buf, cap,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Admits one put in place; false (with the job's code) when refused. */
static bool admit_put(admit_job *j, Skiffpb__PutRequest *p)
{
    if (!is_registry(&p->key))
        return true;
    char key[600];
    if (p->key.len >= sizeof key) {
        j->code = OBJ_ADMIT_BAD_REQUEST;
        snprintf(j->msg, sizeof j->msg, "registry key too long");
        return false;
    }
    memcpy(key, p->key.data, p->key.len);
    key[p->key.len] = 0;
    Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
    rr.key = p->key;
    Skiffpb__RangeResponse *resp = NULL;
    int64_t compact = 0;
    int rc = kv_range(j->s->kv, &rr, j->a, &resp, &compact);
    if (rc) {
        j->code = OBJ_ADMIT_BAD_REQUEST;
        snprintf(j->msg, sizeof j->msg, "reading %s: %s", key,
                 kv_strerror(rc));
        return false;
    }
    obj_admit_req rq = {0};
    rq.key = key;
    rq.value = p->value.data;
    rq.value_len = p->value.len;
    if (resp->n_kvs == 1) {
        rq.old_value = resp->kvs[0]->value.data;
        rq.old_value_len = resp->kvs[0]->value.len;
        rq.old_mod_revision = resp->kvs[0]->mod_revision;
    }
    rq.now_ms = cm_now_ms();
    rq.uid = new_uid;
    obj_admit_res res;
    rc = obj_admit(&rq, j->a, &res);
    if (rc == -ENOMEM || (rc && res.code == OBJ_ADMIT_OK)) {
        j->code = OBJ_ADMIT_BAD_REQUEST;
        snprintf(j->msg, sizeof j->msg, "admission failed: %s",
                 cm_strerror(rc));
        return false;
    }
    if (res.code != OBJ_ADMIT_OK) {
        j->code = res.code;
        snprintf(j->msg, sizeof j->msg, "%s", res.message);
        return false;
    }
    p->value.data = (uint8_t *)res.value;
    p->value.len = res.value_len;
    return true;
}

static bool admit_txn(admit_job *j, Skiffpb__TxnRequest *t, int depth)
{
    if (!t || depth > 16)
        return true;
    for (int pass = 0; pass < 2; pass++) {
        Skiffpb__RequestOp **ops = pass ? t->failure : t->success;
        size_t n = pass ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            Skiffpb__RequestOp *o = ops[i];
            if (o->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT &&
                !admit_put(j, o->request_put))
                return false;
            if (o->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN &&
                !admit_txn(j, o->request_txn, depth + 1))
                return false;
        }
    }
    return true;
}

static void admit_work(uv_work_t *w)
{
    admit_job *j = w->data;
    j->code = OBJ_ADMIT_OK;
    if (j->req->body_case == SKIFFPB__REQUEST__BODY_PUT)
        admit_put(j, j->req->put);
    else
        admit_txn(j, j->req->txn, 0);
}

static void admit_after(uv_work_t *w, int status)
{
    admit_job *j = w->data;
    conn *c = j->c;
    if (conn_alive(c, j->gen)) {
        if (status < 0) {
            conn_send_code(c, j->stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                           "admission could not run", 0);
        } else if (j->code != OBJ_ADMIT_OK) {
            CM_INFO("write refused by admission", "user=%s reason=\"%s\"",
                    c->user[0] ? c->user : "-", j->msg);
            conn_send_code(c, j->stream,
                           j->code == OBJ_ADMIT_FORBIDDEN
                               ? SKIFFPB__ERROR_CODE__PERMISSION_DENIED
                               : SKIFFPB__ERROR_CODE__INVALID_ARGUMENT,
                           j->msg, 0);
        } else {
            int rc = srv_propose_request(c, j->stream, j->req);
            if (rc)
                conn_send_code(c, j->stream,
                               rc == -ESHUTDOWN
                                   ? SKIFFPB__ERROR_CODE__UNAVAILABLE
                                   : api_code_from_err(rc),
                               rc == -ESHUTDOWN ? "server is shutting down"
                                                : cm_strerror(rc),
                               0);
        }
    }
    conn_unref(c);
    cm_arena_free(j->a);
    cm_free(j->a);
    cm_free(j);
}

int srv_admit_start(conn *c, uint64_t stream, Skiffpb__Request *req,
                    cm_arena *a)
{
    admit_job *j = cm_calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->s = c->s;
    j->c = c;
    j->gen = c->gen;
    j->stream = stream;
    j->req = req;
    j->a = a;
    j->w.data = j;
    int rc = uv_queue_work(c->s->loop, &j->w, admit_work, admit_after);
    if (rc) {
        cm_free(j);
        return rc;
    }
    conn_ref(c);
    return 0;
}
