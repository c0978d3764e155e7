/*
 * Authentication and authorization of client requests (docs/security.md).
 *
 * Who: a connection's user comes from its verified client certificate
 * (CN the name, O the groups) when --client-cert-auth is on, or from a
 * bearer token (--token-auth-file) presented by an Authenticate request;
 * otherwise it is system:anonymous.
 *
 * May they: with --authorization-mode=RBAC every request is checked
 * before it does anything.  Objects under /registry/ are decided as the
 * Kubernetes API server decides them: reads, lists and watches here
 * (rbac_kv_allowed maps key ranges to get, list and watch), writes in
 * admission (admit.c), which knows the verb (create, update, delete), the
 * subresource (status, binding) and the pod's node for NodeRestriction.
 * Other keys need raw key-value grants (--kv-permissions-file).  Cluster
 * maintenance (snapshots, hashes, compaction, defragmentation, alarms,
 * membership) is for administrators (group system:masters); status and
 * member list are open to everyone, leases to every authenticated user
 * (revoking one needs write access to its keys, auth_lease.c).
 * Every denial is answered PERMISSION_DENIED and logged.
 *
 * The RBAC objects are kept in an rbac_store fed by four watchers on this
 * member's own watch hub, so a Role written through any member takes
 * effect here when this member applies it.  The built-in roles of the
 * system components are always in force.
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "rbac.h"

#define REGISTRY "/registry/"
#define REGISTRY_END "/registry0" /* the first key after every /registry/ */

static const char *const rbac_prefixes[4] = {
    "/registry/roles/", "/registry/rolebindings/", "/registry/clusterroles/",
    "/registry/clusterrolebindings/"};

struct srv_auth {
    server *s;
    bool rbac;
    authn_tokens *tokens;
    rbac_kv_config *kvperm;
    rbac_store *store;
    watch_watcher *w[4];
    watch_sink sink;
    cm_arena scratch;
};

/* ---- the RBAC objects ------------------------------------------------------ */

static void feed_put(srv_auth *au, const Skiffpb__KeyValue *kv)
{
    ProtobufCAllocator pa = {cm_arena_pb_alloc, cm_arena_pb_free,
                             &au->scratch};
    obj_object *o =
        skiffpb__v1__object__unpack(&pa, kv->value.len, kv->value.data);
    int rc = o ? rbac_store_put(au->store, o) : CM_EINVAL;
    if (rc) {
        /* Fail closed: an older version must not stay in force. */
        rbac_store_del_key(au->store, (const char *)kv->key.data, kv->key.len);
        CM_WARN("RBAC object ignored", "key=%.*s error=\"%s\"",
                (int)kv->key.len, (const char *)kv->key.data,
                rc == CM_EINVAL ? "not a valid RBAC object" : cm_strerror(rc));
    }
    cm_arena_reset(&au->scratch);
}

static int sink_send(watch_sink *sk, watch_watcher *w, const kv_events *evs)
{
    (void)w;
    srv_auth *au = sk->data;
    for (size_t i = 0; i < evs->n; i++) {
        const Skiffpb__Event *e = evs->ev[i];
        if (!e->kv)
            continue;
        if (e->type == SKIFFPB__EVENT__EVENT_TYPE__DELETE)
            rbac_store_del_key(au->store, (const char *)e->kv->key.data,
                               e->kv->key.len);
        else
            feed_put(au, e->kv);
    }
    return 0;
}

static int sink_progress(watch_sink *sk, watch_watcher *w, int64_t rev)
{
    (void)sk;
    (void)w;
    (void)rev;
    return 0;
}

static int load(srv_auth *au);

static void sink_cancel(watch_sink *sk, watch_watcher *w, int reason,
                        int64_t compact_rev)
{
    srv_auth *au = sk->data;
    CM_WARN("RBAC watch cancelled; reloading", "reason=\"%s\" compact=%lld",
            watch_strerror(reason), (long long)compact_rev);
    for (int i = 0; i < 4; i++)
        if (au->w[i] == w)
            au->w[i] = NULL;
    watch_stop(w);
    /* Start over from the store: every watcher restarts at its revision. */
    if (load(au))
        CM_ERROR("RBAC reload failed: only administrators are allowed",
                 "%s", "");
}

/* Reads every RBAC object at the hub's revision into a fresh store and
 * (re)starts the watchers from the next revision. */
static int load(srv_auth *au)
{
    server *s = au->s;
    for (int i = 0; i < 4; i++)
        if (au->w[i]) {
            watch_stop(au->w[i]);
            au->w[i] = NULL;
        }
    rbac_store *st = NULL;
    int rc = rbac_store_create(&st);
    if (!rc)
        rc = rbac_store_put_builtin(st);
    if (rc) {
        rbac_store_destroy(st);
        return rc;
    }
    rbac_store_destroy(au->store);
    au->store = st;
    int64_t rev = watch_hub_revision(s->hub);
    for (int i = 0; i < 4 && !rc; i++) {
        const char *p = rbac_prefixes[i];
        size_t n = strlen(p);
        char end[48];
        memcpy(end, p, n);
        end[n - 1]++; /* '/' + 1: every key under the prefix */
        Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
        rr.key.data = (uint8_t *)p;
        rr.key.len = n;
        rr.range_end.data = (uint8_t *)end;
        rr.range_end.len = n;
        rr.revision = rev;
        Skiffpb__RangeResponse *resp = NULL;
        int64_t compact = 0;
        cm_arena a = {0};
        rc = kv_range(s->kv, &rr, &a, &resp, &compact);
        for (size_t k = 0; !rc && k < resp->n_kvs; k++)
            feed_put(au, resp->kvs[k]);
        cm_arena_free(&a);
        if (rc)
            break;
        watch_options wo = {.key = (const uint8_t *)p,
                            .key_len = n,
                            .range_end = (const uint8_t *)end,
                            .end_len = n,
                            .start_revision = rev + 1,
                            .sink = &au->sink,
                            .data = au};
        rc = watch_start(s->hub, &wo, &au->w[i]);
    }
    return rc;
}

int srv_auth_setup(server *s)
{
    srv_config *c = &s->cfg;
    srv_auth *au = cm_calloc(1, sizeof *au);
    if (!au)
        return -1;
    s->auth = au;
    au->s = s;
    au->scratch.chunk_sz = 64 << 10;
    char err[512] = "";
    int rc;
    if (strcmp(c->authorization_mode, "RBAC") == 0) {
        au->rbac = true;
    } else if (strcmp(c->authorization_mode, "AlwaysAllow")) {
        fprintf(stderr,
                "skiffd: --authorization-mode %s: must be AlwaysAllow or "
                "RBAC\n",
                c->authorization_mode);
        return -1;
    }
    if (c->token_auth_file[0] &&
        (rc = authn_tokens_load(c->token_auth_file, &au->tokens, err,
                                sizeof err))) {
        fprintf(stderr, "skiffd: --token-auth-file: %s\n",
                err[0] ? err : cm_strerror(rc));
        return -1;
    }
    if (c->kv_permissions_file[0] &&
        (rc = rbac_kv_config_load(c->kv_permissions_file, &au->kvperm, err,
                                  sizeof err))) {
        fprintf(stderr, "skiffd: --kv-permissions-file: %s\n",
                err[0] ? err : cm_strerror(rc));
        return -1;
    }
    if (!au->rbac)
        return 0;
    au->sink = (watch_sink){.data = au,
                            .send = sink_send,
                            .progress = sink_progress,
                            .cancel = sink_cancel};
    if ((rc = load(au))) {
        fprintf(stderr, "skiffd: loading RBAC objects: %s\n",
                watch_strerror(rc));
        return -1;
    }
    CM_INFO("RBAC authorization on", "roles=%zu clusterroles=%zu "
            "rolebindings=%zu clusterrolebindings=%zu tokens=%zu",
            rbac_store_count(au->store, "Role"),
            rbac_store_count(au->store, "ClusterRole"),
            rbac_store_count(au->store, "RoleBinding"),
            rbac_store_count(au->store, "ClusterRoleBinding"),
            au->tokens ? authn_tokens_count(au->tokens) : (size_t)0);
    return 0;
}

void srv_auth_close(server *s)
{
    srv_auth *au = s->auth;
    if (!au)
        return;
    /* Watchers die with the hub. */
    rbac_store_destroy(au->store);
    authn_tokens_destroy(au->tokens);
    rbac_kv_config_destroy(au->kvperm);
    cm_arena_free(&au->scratch);
    cm_free(au);
    s->auth = NULL;
}

bool srv_auth_rbac(const server *s)
{
    return s->auth && s->auth->rbac;
}

/* ---- who ------------------------------------------------------------------- */

static const authn_user *anonymous(void)
{
    static authn_user anon;
    if (!anon.name[0]) {
        snprintf(anon.name, sizeof anon.name, "system:anonymous");
        anon.n_groups = 1;
        snprintf(anon.groups[0], sizeof anon.groups[0],
                 "system:unauthenticated");
    }
    return &anon;
}

const authn_user *srv_auth_who(const conn *c)
{
    return c->who ? c->who : anonymous();
}

static void set_user(conn *c, const authn_user *u)
{
    if (!c->who && !(c->who = cm_malloc(sizeof *c->who)))
        return; /* stays anonymous: denied, never more */
    *c->who = *u;
    /* For log lines only: a long name is cut. */
    size_t n = strnlen(u->name, sizeof c->user - 1);
    memcpy(c->user, u->name, n);
    c->user[n] = 0;
}

void srv_auth_conn_cert(conn *c)
{
    if (!c->s->cfg.client_cert_auth)
        return;
    X509 *cert = cm_tls_peer_cert(c->tls);
    if (!cert)
        return;
    authn_user u;
    int rc = authn_from_cert(cert, &u);
    X509_free(cert);
    if (rc) {
        CM_WARN("client certificate names no user", "peer=%s error=\"%s\"",
                c->peer, authn_strerror(rc));
        return;
    }
    set_user(c, &u);
    CM_INFO("client authenticated", "peer=%s user=%s groups=%zu", c->peer,
            u.name, u.n_groups);
}

void srv_auth_conn_free(conn *c)
{
    cm_free(c->who);
    c->who = NULL;
}

static void reply_who(conn *c, uint64_t stream)
{
    const authn_user *u = srv_auth_who(c);
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__AuthenticateResponse ar = SKIFFPB__AUTHENTICATE_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(c->s, &h, watch_hub_revision(c->s->hub));
    char *groups[AUTHN_GROUPS_MAX];
    for (size_t i = 0; i < u->n_groups; i++)
        groups[i] = (char *)u->groups[i];
    ar.header = &h;
    ar.user = (char *)u->name;
    ar.n_groups = u->n_groups;
    ar.groups = groups;
    r.body_case = SKIFFPB__RESPONSE__BODY_AUTHENTICATE;
    r.authenticate = &ar;
    conn_send(c, stream, &r);
}

static void authenticate(conn *c, uint64_t stream,
                         const Skiffpb__AuthenticateRequest *q)
{
    srv_auth *au = c->s->auth;
    if (!q->token[0]) { /* no token: only "who am I?" */
        reply_who(c, stream);
        return;
    }
    authn_user u;
    int rc = au->tokens ? authn_token_lookup(au->tokens, q->token, &u)
                        : AUTHN_EUNKNOWN_TOKEN;
    if (rc) {
        c->bad_token = true;
        CM_WARN("bearer token refused", "peer=%s", c->peer);
        conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAUTHENTICATED,
                       au->tokens ? "invalid bearer token"
                                  : "this server takes no bearer tokens "
                                    "(no --token-auth-file)",
                       0);
        return;
    }
    set_user(c, &u);
    CM_INFO("client authenticated", "peer=%s user=%s by=token", c->peer,
            u.name);
    reply_who(c, stream);
}

/* ---- may they -------------------------------------------------------------- */

static void deny_log(conn *c, const char *what, const char *why)
{
    CM_WARN("request denied", "user=%s peer=%s request=\"%s\" reason=\"%s\"",
            srv_auth_who(c)->name, c->peer, what, why);
}

static bool deny(conn *c, uint64_t stream, const char *what, const char *why)
{
    char msg[768];
    deny_log(c, what, why);
    if (!strncmp(why, "User \"", 6)) /* the authorizer's: names the user */
        snprintf(msg, sizeof msg, "%s", why);
    else
        snprintf(msg, sizeof msg, "User \"%s\" cannot %s: %s",
                 srv_auth_who(c)->name, what, why);
    conn_send_code(c, stream, SKIFFPB__ERROR_CODE__PERMISSION_DENIED, msg, 0);
    return false;
}

/* Bytewise order of a (al bytes) against the string b. */
static int lex(const uint8_t *a, size_t al, const char *b)
{
    size_t bl = strlen(b), m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Does [k, end) (etcd's range conventions) meet the keys under
 * /registry/? */
static bool touches_registry(const ProtobufCBinaryData *k,
                             const ProtobufCBinaryData *end)
{
    size_t rl = sizeof REGISTRY - 1;
    if (end->len == 0) /* the single key */
        return k->len > rl && !memcmp(k->data, REGISTRY, rl);
    if (lex(k->data, k->len, REGISTRY_END) >= 0)
        return false;
    if (end->len == 1 && end->data[0] == 0) /* every key from k on */
        return true;
    return lex(end->data, end->len, REGISTRY) > 0;
}

static bool kv_ok(conn *c, const ProtobufCBinaryData *k,
                  const ProtobufCBinaryData *end, rbac_kv_access acc,
                  rbac_reason *why)
{
    srv_auth *au = c->s->auth;
    return rbac_kv_allowed(au->store, au->kvperm, srv_auth_who(c), k->data,
                           k->len, end->data, end->len, acc, why);
}

bool srv_auth_lease_check(conn *c)
{
    srv_auth *au = c->s->auth;
    return au && au->rbac && !rbac_is_admin(srv_auth_who(c));
}

bool srv_auth_raw_write(conn *c, const uint8_t *key, size_t len, char *why,
                        size_t cap)
{
    static const ProtobufCBinaryData none = {0, NULL};
    ProtobufCBinaryData k = {len, (uint8_t *)key};
    if (touches_registry(&k, &none)) {
        snprintf(why, cap, "it holds objects under %s; that needs an "
                           "administrator", REGISTRY);
        return false;
    }
    rbac_reason r = {{0}};
    if (kv_ok(c, &k, &none, RBAC_KV_WRITE, &r))
        return true;
    snprintf(why, cap, "%s", r.msg);
    return false;
}

bool srv_auth_raw_read(conn *c, const uint8_t *key, size_t len, char *why,
                       size_t cap)
{
    static const ProtobufCBinaryData none = {0, NULL};
    ProtobufCBinaryData k = {len, (uint8_t *)key};
    rbac_reason r = {{0}};
    if (kv_ok(c, &k, &none, RBAC_KV_READ, &r))
        return true;
    snprintf(why, cap, "%s", r.msg);
    return false;
}

bool srv_auth_deny(conn *c, uint64_t stream, const char *what,
                   const char *why)
{
    return deny(c, stream, what, why);
}

/* The raw part of a txn: reads, compares and writes outside /registry/
 * (objects are admission's).  A range delete inside /registry/ is for
 * administrators only. */
static bool txn_ok(conn *c, const Skiffpb__TxnRequest *t, int depth,
                   rbac_reason *why)
{
    if (depth > 16)
        return false;
    static const ProtobufCBinaryData none = {0, NULL};
    for (size_t i = 0; i < t->n_compare; i++) {
        const Skiffpb__Compare *k = t->compare[i];
        if (!kv_ok(c, &k->key, &k->range_end, RBAC_KV_READ, why))
            return false;
    }
    for (int pass = 0; pass < 2; pass++) {
        Skiffpb__RequestOp **ops = pass ? t->failure : t->success;
        size_t n = pass ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            const Skiffpb__RequestOp *o = ops[i];
            switch (o->request_case) {
            case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
                if (!kv_ok(c, &o->request_range->key,
                           &o->request_range->range_end, RBAC_KV_READ, why))
                    return false;
                break;
            case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT:
                if (!touches_registry(&o->request_put->key, &none) &&
                    !kv_ok(c, &o->request_put->key, &none, RBAC_KV_WRITE,
                           why))
                    return false;
                break;
            case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
                const Skiffpb__DeleteRangeRequest *d =
                    o->request_delete_range;
                if (touches_registry(&d->key, &d->range_end)) {
                    if (d->range_end.len) {
                        snprintf(why->msg, sizeof why->msg,
                                 "deleting a range of objects needs an "
                                 "administrator");
                        return false;
                    }
                } else if (!kv_ok(c, &d->key, &d->range_end, RBAC_KV_WRITE,
                                  why)) {
                    return false;
                }
                break;
            }
            case SKIFFPB__REQUEST_OP__REQUEST_REQUEST_TXN:
                if (!txn_ok(c, o->request_txn, depth + 1, why))
                    return false;
                break;
            default:
                break;
            }
        }
    }
    return true;
}

/* A request's name for logs and messages. */
static const char *request_name(int body)
{
    switch (body) {
    case SKIFFPB__REQUEST__BODY_RANGE: return "range";
    case SKIFFPB__REQUEST__BODY_PUT: return "put";
    case SKIFFPB__REQUEST__BODY_DELETE_RANGE: return "delete";
    case SKIFFPB__REQUEST__BODY_TXN: return "txn";
    case SKIFFPB__REQUEST__BODY_COMPACT: return "compact";
    case SKIFFPB__REQUEST__BODY_WATCH_CREATE: return "watch";
    case SKIFFPB__REQUEST__BODY_LEASE_GRANT: return "grant a lease";
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE: return "revoke a lease";
    case SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE: return "keep a lease alive";
    case SKIFFPB__REQUEST__BODY_LEASE_TTL: return "read a lease";
    case SKIFFPB__REQUEST__BODY_LEASE_LEASES: return "list leases";
    case SKIFFPB__REQUEST__BODY_HASH_KV: return "hash the store";
    case SKIFFPB__REQUEST__BODY_SNAPSHOT: return "take a snapshot";
    case SKIFFPB__REQUEST__BODY_ALARM: return "change alarms";
    case SKIFFPB__REQUEST__BODY_DEFRAGMENT: return "defragment";
    case SKIFFPB__REQUEST__BODY_MEMBER_ADD: return "add a member";
    case SKIFFPB__REQUEST__BODY_MEMBER_REMOVE: return "remove a member";
    case SKIFFPB__REQUEST__BODY_MEMBER_PROMOTE: return "promote a member";
    case SKIFFPB__REQUEST__BODY_MOVE_LEADER: return "move the leader";
    default: return "do this";
    }
}

static void access_review(conn *c, uint64_t stream,
                          const Skiffpb__AccessReviewRequest *q);

bool srv_auth_check(conn *c, uint64_t stream, const Skiffpb__Request *req)
{
    srv_auth *au = c->s->auth;
    int body = req->body_case;
    if (body == SKIFFPB__REQUEST__BODY_AUTHENTICATE) {
        authenticate(c, stream, req->authenticate);
        return false;
    }
    if (c->bad_token) {
        conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAUTHENTICATED,
                       "invalid bearer token", 0);
        return false;
    }
    if (body == SKIFFPB__REQUEST__BODY_ACCESS_REVIEW) {
        access_review(c, stream, req->access_review);
        return false;
    }
    if (!au || !au->rbac)
        return true;
    const authn_user *u = srv_auth_who(c);
    bool admin = rbac_is_admin(u);
    bool authed = c->who != NULL;
    rbac_reason why = {{0}};
    static const ProtobufCBinaryData none = {0, NULL};
    switch (body) {
    case SKIFFPB__REQUEST__BODY_STATUS:
    case SKIFFPB__REQUEST__BODY_MEMBER_LIST:
    case SKIFFPB__REQUEST__BODY_WATCH_CANCEL:
    case SKIFFPB__REQUEST__BODY_WATCH_PROGRESS:
        return true;
    case SKIFFPB__REQUEST__BODY_ALARM:
        if (req->alarm->action == SKIFFPB__ALARM_REQUEST__ALARM_ACTION__GET)
            return true;
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_GRANT:
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE:
    case SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE:
    case SKIFFPB__REQUEST__BODY_LEASE_TTL:
    case SKIFFPB__REQUEST__BODY_LEASE_LEASES:
        if (authed)
            return true;
        return deny(c, stream, request_name(body),
                    "leases are for authenticated users");
    case SKIFFPB__REQUEST__BODY_RANGE:
        if (admin || kv_ok(c, &req->range->key, &req->range->range_end,
                           RBAC_KV_READ, &why))
            return true;
        return deny(c, stream, "read these keys", why.msg);
    case SKIFFPB__REQUEST__BODY_WATCH_CREATE:
        if (admin || kv_ok(c, &req->watch_create->key,
                           &req->watch_create->range_end, RBAC_KV_WATCH,
                           &why))
            return true;
        return deny(c, stream, "watch these keys", why.msg);
    case SKIFFPB__REQUEST__BODY_PUT:
        if (admin || touches_registry(&req->put->key, &none) ||
            kv_ok(c, &req->put->key, &none, RBAC_KV_WRITE, &why))
            return true; /* objects: admission decides */
        return deny(c, stream, "write this key", why.msg);
    case SKIFFPB__REQUEST__BODY_DELETE_RANGE: {
        const Skiffpb__DeleteRangeRequest *d = req->delete_range;
        if (admin)
            return true;
        if (touches_registry(&d->key, &d->range_end)) {
            if (!d->range_end.len)
                return true; /* one object: admission decides */
            return deny(c, stream, "delete these keys",
                        "deleting a range of objects needs an "
                        "administrator");
        }
        if (kv_ok(c, &d->key, &d->range_end, RBAC_KV_WRITE, &why))
            return true;
        return deny(c, stream, "delete these keys", why.msg);
    }
    case SKIFFPB__REQUEST__BODY_TXN:
        if (admin || txn_ok(c, req->txn, 0, &why))
            return true;
        return deny(c, stream, "run this transaction", why.msg);
    default:
        break;
    }
    /* Maintenance and membership. */
    if (admin)
        return true;
    return deny(c, stream, request_name(body),
                "this needs an administrator (group system:masters)");
}

bool srv_auth_object(conn *c, const srv_obj_access *a, char *msg, size_t cap)
{
    srv_auth *au = c->s->auth;
    if (!au || !au->rbac)
        return true;
    const authn_user *u = srv_auth_who(c);
    if (rbac_is_admin(u))
        return true;
    const char *group = rbac_resource_group(a->resource);
    rbac_reason why = {{0}};
    bool ok = group && rbac_allowed(au->store, u, a->verb, group, a->resource,
                                    a->subresource, a->ns, a->name, &why);
    if (ok)
        ok = rbac_node_restriction(u, a->verb, a->resource, a->subresource,
                                   a->ns, a->name, a->node, &why);
    if (ok)
        return true;
    char what[600];
    snprintf(what, sizeof what, "%s %s%s%s %s%s%s", a->verb, a->resource,
             a->subresource[0] ? "/" : "", a->subresource, a->name,
             a->ns[0] ? " in namespace " : "", a->ns);
    deny_log(c, what, group ? why.msg : "unknown resource");
    /* Kubernetes' Forbidden message. */
    if (a->ns[0])
        snprintf(msg, cap,
                 "%s \"%s\" is forbidden: User \"%s\" cannot %s resource "
                 "\"%s%s%s\" in API group \"%s\" in the namespace \"%s\"%s%s",
                 a->resource, a->name, u->name, a->verb, a->resource,
                 a->subresource[0] ? "/" : "", a->subresource,
                 group ? group : "", a->ns, why.msg[0] ? ": " : "", why.msg);
    else
        snprintf(msg, cap,
                 "%s \"%s\" is forbidden: User \"%s\" cannot %s resource "
                 "\"%s%s%s\" in API group \"%s\" at the cluster scope%s%s",
                 a->resource, a->name, u->name, a->verb, a->resource,
                 a->subresource[0] ? "/" : "", a->subresource,
                 group ? group : "", why.msg[0] ? ": " : "", why.msg);
    return false;
}

static void access_review(conn *c, uint64_t stream,
                          const Skiffpb__AccessReviewRequest *q)
{
    srv_auth *au = c->s->auth;
    const authn_user *self = srv_auth_who(c);
    authn_user as;
    const authn_user *u = self;
    if (q->as_user[0]) {
        if (au && au->rbac && !rbac_is_admin(self)) {
            deny(c, stream, "impersonate users",
                 "--as needs an administrator (group system:masters)");
            return;
        }
        const char *gs[AUTHN_GROUPS_MAX];
        size_t ng = q->n_as_groups < AUTHN_GROUPS_MAX - 1
                        ? q->n_as_groups
                        : AUTHN_GROUPS_MAX - 1;
        for (size_t i = 0; i < ng; i++)
            gs[i] = q->as_groups[i];
        if (authn_user_init(&as, q->as_user, gs, ng)) {
            conn_send_code(c, stream, SKIFFPB__ERROR_CODE__INVALID_ARGUMENT,
                           "--as: not a valid user name", 0);
            return;
        }
        u = &as;
    }
    char res[128], sub[64] = "";
    snprintf(res, sizeof res, "%s", q->resource);
    char *slash = strchr(res, '/');
    if (slash) {
        snprintf(sub, sizeof sub, "%s", slash + 1);
        *slash = 0;
    }
    bool allowed = true;
    rbac_reason why = {{0}};
    if (!au || !au->rbac) {
        snprintf(why.msg, sizeof why.msg,
                 "authorization mode AlwaysAllow: everything is allowed");
    } else if (rbac_is_admin(u)) {
        snprintf(why.msg, sizeof why.msg,
                 "member of system:masters: everything is allowed");
    } else {
        const char *group = rbac_resource_group(res);
        if (!group) {
            allowed = false;
            snprintf(why.msg, sizeof why.msg, "the server has no resource "
                     "type \"%s\"", res);
        } else {
            allowed = rbac_allowed(au->store, u, q->verb, group, res, sub,
                                   q->namespace_, q->name, &why);
        }
    }
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__AccessReviewResponse ar = SKIFFPB__ACCESS_REVIEW_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(c->s, &h, watch_hub_revision(c->s->hub));
    ar.header = &h;
    ar.allowed = allowed;
    ar.reason = why.msg;
    r.body_case = SKIFFPB__RESPONSE__BODY_ACCESS_REVIEW;
    r.access_review = &ar;
    conn_send(c, stream, &r);
}
