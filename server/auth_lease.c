/*
 * Leases under RBAC, as in etcd.  A revoke deletes every key attached to
 * the lease, and a put with a lease ties its key's life to every other
 * key of that lease, so for both a user who is not an administrator needs
 * write access to each key the lease holds: raw keys by the grants file,
 * and keys of objects (under /registry/) not at all, since deleting
 * objects that way would bypass admission.  Txns are checked for each
 * lease their puts name.  The keys are looked up in the pool; the request
 * is proposed only when every one is allowed.  A key attached between the
 * look-up and the apply is not checked (etcd checks at apply time).
 * Object writes with a lease (Events) are admission's to authorize.
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct lease_job {
    uv_work_t w;
    conn *c;
    uint32_t gen;
    uint64_t stream;
    Skiffpb__Request *req;
    cm_arena *a;
    const char *what; /* for the denial: "revoke lease", "put with lease" */
    int64_t *ids;     /* the leases whose keys are checked */
    size_t nids;
    Skiffpb__LeaseTimeToLiveResponse **ttl;
    int rc;
    srv_held_job held;
} lease_job;

static void job_free(lease_job *j)
{
    conn_unref(j->c);
    cm_arena_free(j->a);
    cm_free(j->a);
    cm_free(j);
}

static void lease_work(uv_work_t *w)
{
    lease_job *j = w->data;
    server *s = j->c->s;
    for (size_t i = 0; i < j->nids && !j->rc; i++)
        j->rc = kv_lease_ttl(s->kv, j->ids[i], 1, srv_clock_ms(s), j->a,
                             &j->ttl[i]);
}

static void lease_after(uv_work_t *w, int status)
{
    lease_job *j = w->data;
    conn *c = j->c;
    if (!conn_alive(c, j->gen)) {
        job_free(j);
        return;
    }
    int rc = status < 0 ? status : j->rc;
    if (rc) {
        conn_send_error(c, j->stream, rc, kv_strerror(rc), 0);
        job_free(j);
        return;
    }
    /* An unknown lease has no keys: the request goes on and the store
     * answers that the lease is not found. */
    for (size_t l = 0; l < j->nids; l++)
        for (size_t i = 0; i < j->ttl[l]->n_keys; i++) {
            char why[512];
            const ProtobufCBinaryData *k = &j->ttl[l]->keys[i];
            if (srv_auth_raw_write(c, k->data, k->len, why, sizeof why))
                continue;
            char what[96];
            snprintf(what, sizeof what, "%s %llx", j->what,
                     (unsigned long long)j->ids[l]);
            char full[768];
            snprintf(full, sizeof full, "a key of the lease (%.*s): %s",
                     (int)(k->len < 200 ? k->len : 200), (const char *)k->data,
                     why);
            srv_auth_deny(c, j->stream, what, full);
            job_free(j);
            return;
        }
    rc = srv_propose_request(c, j->stream, j->req);
    if (rc)
        conn_send_code(c, j->stream,
                       rc == -ESHUTDOWN ? SKIFFPB__ERROR_CODE__UNAVAILABLE
                                        : api_code_from_err(rc),
                       rc == -ESHUTDOWN ? "server is shutting down"
                                        : cm_strerror(rc),
                       0);
    job_free(j);
}

/* Adds id to the job's list unless it is there already. */
static int add_id(lease_job *j, size_t *cap, int64_t id)
{
    for (size_t i = 0; i < j->nids; i++)
        if (j->ids[i] == id)
            return 0;
    if (j->nids == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        int64_t *v = cm_arena_alloc(j->a, ncap * sizeof *v);
        if (!v)
            return -ENOMEM;
        if (j->nids)
            memcpy(v, j->ids, j->nids * sizeof *v);
        j->ids = v;
        *cap = ncap;
    }
    j->ids[j->nids++] = id;
    return 0;
}

/* The leases of every put in a txn, nested txns included (depth is
 * bounded by the store's own txn checks; 16 here as in auth.c). */
static int txn_leases(lease_job *j, size_t *cap, const Skiffpb__TxnRequest *t,
                      int depth)
{
    if (depth > 16)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        Skiffpb__RequestOp **ops = pass ? t->failure : t->success;
        size_t n = pass ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            int rc = 0;
            if (ops[i]->request_case ==
                    SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT &&
                ops[i]->request_put->lease)
                rc = add_id(j, cap, ops[i]->request_put->lease);
            else if (ops[i]->request_case ==
                     SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN)
                rc = txn_leases(j, cap, ops[i]->request_txn, depth + 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

bool srv_lease_keys_start(conn *c, uint64_t stream, Skiffpb__Request *req,
                          cm_arena *a)
{
    if (!srv_auth_lease_check(c) ||
        (req->body_case == SKIFFPB__REQUEST__BODY_PUT &&
         (!req->put->lease || req->put->ignore_lease)))
        return false;
    lease_job *j = cm_calloc(1, sizeof *j);
    if (!j) {
        cm_arena_free(a);
        cm_free(a);
        conn_send_error(c, stream, -ENOMEM, NULL, 0);
        return true;
    }
    j->c = c;
    j->gen = c->gen;
    j->stream = stream;
    j->req = req;
    j->a = a;
    j->w.data = j;
    size_t cap = 0;
    int rc = 0;
    switch (req->body_case) {
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE:
        j->what = "revoke lease";
        rc = add_id(j, &cap, req->lease_revoke->id);
        break;
    case SKIFFPB__REQUEST__BODY_PUT:
        j->what = "put with lease";
        if (req->put->lease && !req->put->ignore_lease)
            rc = add_id(j, &cap, req->put->lease);
        break;
    case SKIFFPB__REQUEST__BODY_TXN:
        j->what = "put with lease";
        rc = txn_leases(j, &cap, req->txn, 0);
        break;
    default:
        break;
    }
    if (!rc && j->nids &&
        !(j->ttl = cm_arena_alloc(a, j->nids * sizeof *j->ttl)))
        rc = -ENOMEM;
    if (rc || !j->nids) {
        /* Nothing to check (a put without a lease), or no memory. */
        cm_free(j);
        if (!rc)
            return false;
        cm_arena_free(a);
        cm_free(a);
        conn_send_error(c, stream, rc, NULL, 0);
        return true;
    }
    conn_ref(c);
    /* A read: a put with this lease answered a moment ago must be seen. */
    rc = srv_queue_read_job(c->s, &j->held, &j->w, lease_work, lease_after);
    if (rc) {
        conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                       cm_strerror(rc), 0);
        job_free(j);
    }
    return true;
}
