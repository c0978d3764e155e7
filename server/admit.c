/*
 * Admission of writes under /registry/: the API server's work on an
 * object between receiving it and storing it (api/objects/admit.h:
 * decode, key check, defaulting, validation, server-set metadata,
 * immutable fields, generation), done here before the write is proposed.
 *
 * A put or a single-key delete (alone or inside a txn, at any depth)
 * whose key starts with /registry/ sends its request to a pool job: the
 * job reads the stored object at that key, runs obj_admit (puts) or
 * obj_admit_delete (deletes: finalizers) and replaces the put's value with
 * the admitted bytes.  A put names its subresource as Kubernetes routes
 * them: "status" writes only the status, "binding" only sets a pod's
 * spec.nodeName, once.  A refused write is answered INVALID_ARGUMENT with
 * Kubernetes' message and nothing is proposed.
 *
 * With RBAC, the job also notes what each write is (verb, resource,
 * subresource, namespace, name, the pod's node) and the loop thread asks
 * srv_auth_object about each before proposing (auth.c): a forbidden write
 * is answered PERMISSION_DENIED, before any admission error, as the API
 * server authorizes before it admits.
 *
 * The stored object is read before proposing, so two writers racing on
 * one object should guard their writes with a compare on mod_revision
 * (the resourceVersion), as skiffctl does.  When such a guard (in a txn
 * without a failure branch) is already false against the object read,
 * the write is answered CONFLICT at once rather than admitted against an
 * object its writer never saw.  Admission is a read: while a commit of
 * writes already answered runs, it waits for it (srv_queue_read_job).
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "admit.h"
#include "rbac.h"

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
    srv_obj_access *acc; /* arena: what each object write is, for RBAC */
    size_t nacc, acc_cap;
    srv_held_job held; /* while a commit holds reads */
} admit_job;

static bool is_registry(const ProtobufCBinaryData *k)
{
    return k->len > sizeof REGISTRY - 1 &&
           !memcmp(k->data, REGISTRY, sizeof REGISTRY - 1);
}

static bool is_registry_delete(const Skiffpb__DeleteRangeRequest *d)
{
    return d->range_end.len == 0 && is_registry(&d->key);
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
            if (o->request_case ==
                    SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE &&
                is_registry_delete(o->request_delete_range))
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
    if (req->body_case == SKIFFPB__REQUEST__BODY_DELETE_RANGE)
        return is_registry_delete(req->delete_range);
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

static bool refuse(admit_job *j, obj_admit_code code, const char *fmt,
                   const char *arg)
{
    j->code = code;
    snprintf(j->msg, sizeof j->msg, fmt, arg);
    return false;
}

static char *astr(cm_arena *a, const char *p, size_t n)
{
    char *s = cm_arena_alloc(a, n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* Notes what a write to `key` is, for srv_auth_object (RBAC only). */
static bool note(admit_job *j, const char *key, const char *verb,
                 const char *sub, const char *node)
{
    if (!srv_auth_rbac(j->s))
        return true;
    if (j->nacc == j->acc_cap) {
        size_t cap = j->acc_cap ? j->acc_cap * 2 : 4;
        srv_obj_access *n = cm_arena_alloc(j->a, cap * sizeof *n);
        if (!n)
            return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s", "out of memory");
        if (j->nacc)
            memcpy(n, j->acc, j->nacc * sizeof *n);
        j->acc = n;
        j->acc_cap = cap;
    }
    /* /registry/<resource>/[<namespace>/]<name> */
    const char *p = key + sizeof REGISTRY - 1;
    const char *s1 = strchr(p, '/');
    const char *res = s1 ? astr(j->a, p, (size_t)(s1 - p)) : key;
    const char *ns = "", *name = "";
    if (s1) {
        const char *s2 = strchr(s1 + 1, '/');
        if (s2 && !rbac_resource_cluster_scoped(res)) {
            ns = astr(j->a, s1 + 1, (size_t)(s2 - s1 - 1));
            name = s2 + 1;
        } else {
            name = s1 + 1;
        }
    }
    if (!res || !ns)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s", "out of memory");
    j->acc[j->nacc++] = (srv_obj_access){.verb = verb,
                                         .resource = res,
                                         .subresource = sub,
                                         .ns = ns,
                                         .name = astr(j->a, name,
                                                      strlen(name)),
                                         .node = node ? node : ""};
    return true;
}

static obj_object *unpack(admit_job *j, const void *p, size_t n)
{
    ProtobufCAllocator pa = {cm_arena_pb_alloc, cm_arena_pb_free, j->a};
    return skiffpb__v1__object__unpack(&pa, n, p);
}

/* A pod's spec.nodeName ("" when o is not a bound pod). */
static const char *pod_node(const obj_object *o)
{
    ProtobufCMessage *m = o ? obj_object_msg(o) : NULL;
    if (!m || m->descriptor != &skiffpb__v1__pod__descriptor)
        return "";
    const Skiffpb__V1__Pod *p = (const Skiffpb__V1__Pod *)m;
    return p->spec && p->spec->node_name ? p->spec->node_name : "";
}

/* The stored value at a registry key (*kv NULL when there is none). */
static bool read_stored(admit_job *j, const ProtobufCBinaryData *k,
                        const char *key, Skiffpb__KeyValue **kv)
{
    Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
    rr.key = *k;
    Skiffpb__RangeResponse *resp = NULL;
    int64_t compact = 0;
    int rc = kv_range(j->s->kv, &rr, j->a, &resp, &compact);
    if (rc) {
        j->code = OBJ_ADMIT_BAD_REQUEST;
        snprintf(j->msg, sizeof j->msg, "reading %s: %s", key,
                 kv_strerror(rc));
        return false;
    }
    *kv = resp->n_kvs == 1 ? resp->kvs[0] : NULL;
    return true;
}

/* pods/binding: the stored pod with spec.nodeName set from the new value,
 * packed into the arena; false (refused) when the pod is missing or bound. */
static bool binding_value(admit_job *j, const char *key,
                          const Skiffpb__KeyValue *old,
                          Skiffpb__PutRequest *p)
{
    if (!old)
        return refuse(j, OBJ_ADMIT_NOT_FOUND, "%s: pod not found", key);
    obj_object *so = unpack(j, old->value.data, old->value.len);
    obj_object *no = unpack(j, p->value.data, p->value.len);
    ProtobufCMessage *sm = so ? obj_object_msg(so) : NULL;
    if (!sm || sm->descriptor != &skiffpb__v1__pod__descriptor)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST,
                      "%s: binding is a subresource of pods only", key);
    Skiffpb__V1__Pod *pod = (Skiffpb__V1__Pod *)sm;
    const char *target = pod_node(no);
    if (!target[0])
        return refuse(j, OBJ_ADMIT_INVALID,
                      "%s: binding: spec.nodeName: Required value", key);
    const char *bound = pod_node(so);
    if (bound[0]) {
        j->code = OBJ_ADMIT_CONFLICT;
        snprintf(j->msg, sizeof j->msg,
                 "Operation cannot be fulfilled on pods/binding \"%.253s\": "
                 "pod is already assigned to node \"%.253s\"",
                 pod->metadata && pod->metadata->name ? pod->metadata->name
                                                      : key,
                 bound);
        return false;
    }
    if (!pod->spec)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s: stored pod has no spec",
                      key);
    pod->spec->node_name = (char *)target;
    /* The binding's resourceVersion, if any, guards the stored pod. */
    Skiffpb__V1__ObjectMeta *nm = obj_object_meta(no), *sm2 = pod->metadata;
    if (sm2)
        sm2->resource_version = nm ? nm->resource_version : NULL;
    size_t n = protobuf_c_message_get_packed_size(&so->base);
    uint8_t *buf = cm_arena_alloc(j->a, n ? n : 1);
    if (!buf)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s", "out of memory");
    protobuf_c_message_pack(&so->base, buf);
    p->value.data = buf;
    p->value.len = n;
    return true;
}

/* Admits one put in place; false (with the job's code) when refused. */
static bool admit_put(admit_job *j, Skiffpb__PutRequest *p)
{
    if (!is_registry(&p->key))
        return true;
    char key[600];
    if (p->key.len >= sizeof key)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s",
                      "registry key too long");
    memcpy(key, p->key.data, p->key.len);
    key[p->key.len] = 0;
    const char *sub = p->subresource ? p->subresource : "";
    bool status = !strcmp(sub, "status"), binding = !strcmp(sub, "binding");
    if (sub[0] && !status && !binding)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST,
                      "unknown subresource \"%s\" (status or binding)", sub);
    Skiffpb__KeyValue *old;
    if (!read_stored(j, &p->key, key, &old))
        return false;
    if (binding && !binding_value(j, key, old, p))
        return false;
    obj_admit_req rq = {0};
    rq.key = key;
    rq.value = p->value.data;
    rq.value_len = p->value.len;
    if (old) {
        rq.old_value = old->value.data;
        rq.old_value_len = old->value.len;
        rq.old_mod_revision = old->mod_revision;
    }
    rq.status_update = status;
    rq.now_ms = cm_now_ms();
    rq.uid = new_uid;
    obj_admit_res res;
    int rc = obj_admit(&rq, j->a, &res);
    if (rc == -ENOMEM || (rc && res.code == OBJ_ADMIT_OK))
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "admission failed: %s",
                      cm_strerror(rc));
    /* NodeRestriction looks at the stored pod's node (the new pod's on
     * create). */
    const char *node =
        old ? pod_node(unpack(j, old->value.data, old->value.len))
            : res.code == OBJ_ADMIT_OK ? pod_node(res.object) : "";
    if (!note(j, key, binding ? "create" : old ? "update" : "create", sub,
              node))
        return false;
    if (res.code != OBJ_ADMIT_OK)
        return refuse(j, res.code, "%s", res.message);
    p->value.data = (uint8_t *)res.value;
    p->value.len = res.value_len;
    p->subresource = (char *)""; /* the log holds the object only */
    return true;
}

/* A single-key delete of an object: finalizers block it. */
static bool admit_delete(admit_job *j, Skiffpb__DeleteRangeRequest *d)
{
    if (!is_registry_delete(d))
        return true;
    char key[600];
    if (d->key.len >= sizeof key)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s",
                      "registry key too long");
    memcpy(key, d->key.data, d->key.len);
    key[d->key.len] = 0;
    Skiffpb__KeyValue *old;
    if (!read_stored(j, &d->key, key, &old))
        return false;
    obj_object *o = old ? unpack(j, old->value.data, old->value.len) : NULL;
    if (!note(j, key, "delete", "", pod_node(o)))
        return false;
    obj_admit_req rq = {0};
    rq.key = key;
    if (old) {
        rq.old_value = old->value.data;
        rq.old_value_len = old->value.len;
        rq.old_mod_revision = old->mod_revision;
    }
    obj_admit_res res;
    if (obj_admit_delete(&rq, j->a, &res) && res.code == OBJ_ADMIT_OK)
        return refuse(j, OBJ_ADMIT_BAD_REQUEST, "%s", "admission failed");
    if (res.code != OBJ_ADMIT_OK)
        return refuse(j, res.code, "%s", res.message);
    return true;
}

/* A txn that only writes when its compares hold (no failure branch) and
 * whose compare on an object's revision is already false against the
 * stored object: the write cannot happen as the client meant it (a create
 * racing another create, an update of a version already replaced), so it
 * is a conflict, and the put is not admitted against an object its writer
 * never saw. */
static bool guard_fails(admit_job *j, const Skiffpb__TxnRequest *t)
{
    if (t->n_failure)
        return false;
    for (size_t i = 0; i < t->n_compare; i++) {
        const Skiffpb__Compare *k = t->compare[i];
        if (k->range_end.len || !is_registry(&k->key) ||
            k->result != SKIFFPB__COMPARE__COMPARE_RESULT__EQUAL)
            continue;
        Skiffpb__KeyValue *old;
        char key[600];
        if (k->key.len >= sizeof key)
            continue;
        memcpy(key, k->key.data, k->key.len);
        key[k->key.len] = 0;
        if (!read_stored(j, &k->key, key, &old))
            return false;
        int64_t have, want;
        switch (k->target) {
        case SKIFFPB__COMPARE__COMPARE_TARGET__MOD:
            have = old ? old->mod_revision : 0;
            want = k->mod_revision;
            break;
        case SKIFFPB__COMPARE__COMPARE_TARGET__CREATE:
            have = old ? old->create_revision : 0;
            want = k->create_revision;
            break;
        case SKIFFPB__COMPARE__COMPARE_TARGET__VERSION:
            have = old ? old->version : 0;
            want = k->version;
            break;
        default:
            continue;
        }
        if (have != want) {
            j->code = OBJ_ADMIT_CONFLICT;
            snprintf(j->msg, sizeof j->msg,
                     "Operation cannot be fulfilled on %.200s: %s; please apply "
                     "your changes to the latest version and try again",
                     key,
                     old && !want ? "the object already exists"
                                  : "the object has been modified");
            return true;
        }
    }
    return false;
}

static bool admit_txn(admit_job *j, Skiffpb__TxnRequest *t, int depth)
{
    if (!t || depth > 16)
        return true;
    if (guard_fails(j, t))
        return false;
    if (j->code != OBJ_ADMIT_OK)
        return false; /* the stored object could not be read */
    for (int pass = 0; pass < 2; pass++) {
        Skiffpb__RequestOp **ops = pass ? t->failure : t->success;
        size_t n = pass ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            Skiffpb__RequestOp *o = ops[i];
            bool ok = true;
            if (o->request_case == SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT)
                ok = admit_put(j, o->request_put);
            else if (o->request_case ==
                     SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE)
                ok = admit_delete(j, o->request_delete_range);
            else if (o->request_case ==
                     SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN)
                ok = admit_txn(j, o->request_txn, depth + 1);
            if (!ok)
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
    else if (j->req->body_case == SKIFFPB__REQUEST__BODY_DELETE_RANGE)
        admit_delete(j, j->req->delete_range);
    else
        admit_txn(j, j->req->txn, 0);
}

static void admit_after(uv_work_t *w, int status)
{
    admit_job *j = w->data;
    conn *c = j->c;
    char denied[OBJ_ADMIT_MSG_MAX] = "";
    if (conn_alive(c, j->gen) && status == 0)
        for (size_t i = 0; i < j->nacc && !denied[0]; i++)
            if (!srv_auth_object(c, &j->acc[i], denied, sizeof denied) &&
                !denied[0])
                snprintf(denied, sizeof denied, "forbidden");
    if (conn_alive(c, j->gen)) {
        if (status < 0) {
            conn_send_code(c, j->stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                           "admission could not run", 0);
        } else if (denied[0]) {
            conn_send_code(c, j->stream,
                           SKIFFPB__ERROR_CODE__PERMISSION_DENIED, denied, 0);
        } else if (j->code != OBJ_ADMIT_OK) {
            CM_INFO("write refused by admission", "user=%s reason=\"%s\"",
                    c->user[0] ? c->user : "-", j->msg);
            conn_send_code(c, j->stream,
                           j->code == OBJ_ADMIT_FORBIDDEN
                               ? SKIFFPB__ERROR_CODE__PERMISSION_DENIED
                           : j->code == OBJ_ADMIT_CONFLICT
                               ? SKIFFPB__ERROR_CODE__CONFLICT
                           : j->code == OBJ_ADMIT_NOT_FOUND
                               ? SKIFFPB__ERROR_CODE__NOT_FOUND
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
    /* Admission reads the objects it checks against: like any read, it
     * waits for the commit of writes already answered. */
    int rc = srv_queue_read_job(c->s, &j->held, &j->w, admit_work,
                                admit_after);
    if (rc) {
        cm_free(j);
        return rc;
    }
    conn_ref(c);
    return 0;
}
