/*
 * Revoking a lease under RBAC.  A revoke deletes every key attached to
 * the lease, so, as etcd does, a user who is not an administrator needs
 * write access to each of them: raw keys by the grants file, and keys of
 * objects (under /registry/) not at all, since deleting objects that way
 * would bypass admission.  The keys are looked up in the pool; the revoke
 * is proposed only when every one is allowed.  A key attached between the
 * look-up and the apply is not checked (etcd checks at apply time).
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct revoke_job {
    uv_work_t w;
    conn *c;
    uint32_t gen;
    uint64_t stream;
    Skiffpb__Request *req;
    cm_arena *a;
    Skiffpb__LeaseTimeToLiveResponse *ttl;
    int rc;
    srv_held_job held;
} revoke_job;

static void job_free(revoke_job *j)
{
    conn_unref(j->c);
    cm_arena_free(j->a);
    cm_free(j->a);
    cm_free(j);
}

static void revoke_work(uv_work_t *w)
{
    revoke_job *j = w->data;
    server *s = j->c->s;
    j->rc = kv_lease_ttl(s->kv, j->req->lease_revoke->id, 1, srv_clock_ms(s),
                         j->a, &j->ttl);
}

static void revoke_after(uv_work_t *w, int status)
{
    revoke_job *j = w->data;
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
    /* An unknown lease has no keys: the revoke goes on and the store
     * answers that the lease is not found. */
    for (size_t i = 0; i < j->ttl->n_keys; i++) {
        char why[512];
        const ProtobufCBinaryData *k = &j->ttl->keys[i];
        if (!srv_auth_raw_write(c, k->data, k->len, why, sizeof why)) {
            char what[96];
            snprintf(what, sizeof what, "revoke lease %llx",
                     (unsigned long long)j->req->lease_revoke->id);
            char full[768];
            snprintf(full, sizeof full, "a key of the lease (%.*s): %s",
                     (int)(k->len < 200 ? k->len : 200), (const char *)k->data,
                     why);
            srv_auth_deny(c, j->stream, what, full);
            job_free(j);
            return;
        }
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

void srv_lease_revoke_start(conn *c, uint64_t stream, Skiffpb__Request *req,
                            cm_arena *a)
{
    revoke_job *j = cm_calloc(1, sizeof *j);
    if (!j) {
        cm_arena_free(a);
        cm_free(a);
        conn_send_error(c, stream, -ENOMEM, NULL, 0);
        return;
    }
    j->c = c;
    j->gen = c->gen;
    j->stream = stream;
    j->req = req;
    j->a = a;
    j->w.data = j;
    conn_ref(c);
    /* A read: a put with this lease answered a moment ago must be seen. */
    int rc = srv_queue_read_job(c->s, &j->held, &j->w, revoke_work,
                                revoke_after);
    if (rc) {
        conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                       cm_strerror(rc), 0);
        job_free(j);
    }
}
