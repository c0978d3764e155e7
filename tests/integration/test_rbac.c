/*
 * Authentication and authorization through a real skiffd
 * (--authorization-mode=RBAC, TLS with --client-cert-auth, a token file
 * and raw key-value grants), driven through libskiff as the components
 * will use it.
 *
 * Identities: certificates from deploy/make-certs.sh (admin in
 * system:masters, node agents system:node:n1 and n2, the scheduler) and
 * bearer tokens (alice, bob, a token-held node).  Checked:
 *   - anonymous connections read nothing (status stays open);
 *   - a node agent updates the status of a pod bound to it, and cannot
 *     touch (status, spec, delete) a pod bound to another node, nor update
 *     a pod's spec at all, nor create another node's Node; it may read;
 *   - the scheduler binds a pod once (pods/binding; a second binding is a
 *     conflict) and cannot change a pod's spec otherwise;
 *   - a Role and RoleBinding written by the administrator take effect
 *     (alice may then list pods in default only, and still not create);
 *   - raw writes under /registry/ and range deletes of objects are for
 *     administrators; other keys follow the grants file;
 *   - revoking a lease, or a put with it (alone or in a txn), needs write
 *     access to each of its keys (a lease holding an object: an
 *     administrator); time-to-live with keys needs read access to each;
 *   - an unknown bearer token gets UNAUTHENTICATED; whoami and the access
 *     review answer as the server decides; --as is for administrators;
 *   - every denial is PERMISSION_DENIED and logged, and nothing denied
 *     was written.
 *
 * skiffctl's side: `auth whoami`, `auth can-i` (yes exit 0, no exit 1)
 * and kubectl's "Error from server (Forbidden)" for a denied get.
 *
 * Usage: server_rbac <skiffd> <deploy/make-certs.sh> <skiffctl>
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "objects.h"
#include "skiff.h"
#include "srv.h"
#include "tu.h"

static const char *skiffd, *make_certs, *skiffctl;
static srv S;
static char certs[300], logpath[300], endpoint[64];

#define POD_YAML                                                               \
    "apiVersion: v1\n"                                                         \
    "kind: Pod\n"                                                              \
    "metadata:\n"                                                              \
    "  name: %s\n"                                                             \
    "  namespace: default\n"                                                   \
    "  labels: {app: %s}\n"                                                    \
    "spec:\n"                                                                  \
    "%s"                                                                       \
    "  containers:\n"                                                          \
    "  - name: c\n"                                                            \
    "    image: %s\n"                                                          \
    "%s"

static size_t yaml_obj(const char *y, uint8_t **out)
{
    cm_arena a = {.chunk_sz = 65536};
    obj_object **objs;
    size_t n;
    obj_error err;
    assert_int_equal(obj_yaml_decode(y, strlen(y), &a, &objs, &n, &err), 0);
    size_t len = skiffpb__v1__object__get_packed_size(objs[0]);
    *out = malloc(len);
    skiffpb__v1__object__pack(objs[0], *out);
    cm_arena_free(&a);
    return len;
}

/* A packed Pod (malloc'ed): node "" for unbound; phase "" for no status. */
static size_t pod(const char *name, const char *node, const char *image,
                  const char *phase, uint8_t **out)
{
    char nodeline[128] = "", status[128] = "", y[2048];
    if (node[0])
        snprintf(nodeline, sizeof nodeline, "  nodeName: %s\n", node);
    if (phase[0])
        snprintf(status, sizeof status, "status:\n  phase: %s\n", phase);
    snprintf(y, sizeof y, POD_YAML, name, name, nodeline, image, status);
    return yaml_obj(y, out);
}

/* A client for a certificate (name of the .crt/.key pair, or NULL) and/or
 * a bearer token. */
static skiff_client *client(const char *cert, const char *token)
{
    char crt[400], key[400], ca[400];
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    snprintf(crt, sizeof crt, "%s/%s.crt", certs, cert ? cert : "");
    snprintf(key, sizeof key, "%s/%s.key", certs, cert ? cert : "");
    const char *eps[1] = {endpoint};
    skiff_config cfg = {.endpoints = eps,
                        .n_endpoints = 1,
                        .ca_file = ca,
                        .cert_file = cert ? crt : NULL,
                        .key_file = cert ? key : NULL,
                        .token = token,
                        .request_timeout_ms = 10000};
    skiff_client *c = NULL;
    assert_int_equal(skiff_client_create(&c, &cfg), 0);
    return c;
}

static int put_obj(skiff_client *c, const char *key, const uint8_t *v,
                   size_t n, const char *sub, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_PUT,
                   .key = key,
                   .key_len = strlen(key),
                   .value = v,
                   .value_len = n,
                   .subresource = sub};
    return skiff_do_sync(c, &op, res);
}

static int put_pod(skiff_client *c, const char *name, const char *node,
                   const char *image, const char *phase, const char *sub,
                   skiff_result *res)
{
    char key[256];
    snprintf(key, sizeof key, "/registry/pods/default/%s", name);
    uint8_t *v;
    size_t n = pod(name, node, image, phase, &v);
    int rc = put_obj(c, key, v, n, sub, res);
    free(v);
    return rc;
}

/* Expects rc; prints the server's message on a mismatch. */
static void expect(int rc, const skiff_result *r, int want)
{
    if (rc != want)
        fprintf(stderr, "got %d (%s) want %d: %s\n", rc, skiff_strerror(rc),
                want, r->error_message ? r->error_message : "");
    assert_int_equal(rc, want);
}

/* The stored pod, decoded into a (NULL when missing). */
static Skiffpb__V1__Pod *stored_pod(skiff_client *admin, const char *name,
                                    cm_arena *a)
{
    char key[256];
    snprintf(key, sizeof key, "/registry/pods/default/%s", name);
    skiff_result r;
    assert_int_equal(skiff_get(admin, key, strlen(key), &r), 0);
    Skiffpb__V1__Pod *p = NULL;
    if (r.n_kvs == 1) {
        ProtobufCAllocator pa = {cm_arena_pb_alloc, cm_arena_pb_free, a};
        obj_object *o = skiffpb__v1__object__unpack(
            &pa, r.kvs[0].value_len, r.kvs[0].value);
        assert_non_null(o);
        p = (Skiffpb__V1__Pod *)obj_object_msg(o);
    }
    skiff_result_free(&r);
    return p;
}

static int can_i(skiff_client *c, const char *verb, const char *res,
                 const char *ns, const char *as)
{
    skiff_op op = {.type = SKIFF_OP_ACCESS_REVIEW,
                   .verb = verb,
                   .resource = res,
                   .ns = ns,
                   .as_user = as};
    skiff_result r;
    int rc = skiff_do_sync(c, &op, &r);
    int out = rc ? rc : r.allowed;
    skiff_result_free(&r);
    return out;
}

/* Runs skiffctl with args (a shell fragment) against the server, stdout
 * and stderr into out; returns the exit status. */
static int ctl(char *out, size_t cap, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --endpoints %s --cacert %s/ca.crt %s 2>&1",
             skiffctl, endpoint, certs, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state)
{
    (void)state;
    char out[8192], args[1024];
    assert_int_equal(ctl(out, sizeof out, "--token bob-token auth whoami"), 0);
    assert_string_equal(out, "ATTRIBUTE   VALUE\nUsername    bob\n"
                             "Groups      [devs qa system:authenticated]\n");
    assert_int_equal(
        ctl(out, sizeof out, "--token bob-token auth can-i list pods"), 1);
    assert_string_equal(out, "no\n");
    snprintf(args, sizeof args,
             "--cert %s/admin.crt --key %s/admin.key auth can-i create "
             "pods/binding --as system:kube-scheduler",
             certs, certs);
    assert_int_equal(ctl(out, sizeof out, args), 0);
    assert_string_equal(out, "yes\n");
    assert_int_equal(ctl(out, sizeof out, "--token bob-token get pods"), 1);
    assert_non_null(strstr(out, "Error from server (Forbidden): User \"bob\" "
                                "cannot list resource \"pods\""));
    assert_int_equal(ctl(out, sizeof out, "--token nope get pods"), 1);
    assert_non_null(strstr(out, "(Unauthorized)"));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    (void)state;
    memset(&S, 0, sizeof S);
    assert_int_equal(tu_tmpdir(S.dir, sizeof S.dir), 0);
    snprintf(certs, sizeof certs, "%s/certs", S.dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "sh %s -d %s --node n1 --node n2 --member m1 >/dev/null",
             make_certs, certs);
    assert_int_equal(system(cmd), 0);
    char tokens[400], grants[400];
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", S.dir);
    FILE *f = fopen(tokens, "w");
    assert_non_null(f);
    fprintf(f, "alice-token,alice,1001\n"
               "bob-token,bob,1002,\"devs,qa\"\n"
               "n2-token,system:node:n2,2002,system:nodes\n");
    fclose(f);
    snprintf(grants, sizeof grants, "%s/kv-grants", S.dir);
    f = fopen(grants, "w");
    assert_non_null(f);
    fprintf(f, "# alice owns /app/\nuser:alice readwrite /app/*\n"
               "group:devs read /app/*\nuser:bob readwrite /bob/*\n");
    fclose(f);
    char crt[400], key[400], ca[400];
    snprintf(crt, sizeof crt, "%s/m1.crt", certs);
    snprintf(key, sizeof key, "%s/m1.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    snprintf(logpath, sizeof logpath, "%s/skiffd.log", S.dir);
    const char *extra[] = {"--cert-file", crt, "--key-file", key,
                           "--trusted-ca-file", ca, "--client-cert-auth",
                           "--authorization-mode", "RBAC",
                           "--token-auth-file", tokens,
                           "--kv-permissions-file", grants, NULL};
    /* skiffd's log (stderr) into a file, to find the denials in it. */
    fflush(stderr);
    int saved = dup(2), lf = open(logpath, O_WRONLY | O_CREAT | O_TRUNC,
                                  0644);
    assert_true(saved >= 0 && lf >= 0);
    dup2(lf, 2);
    int rc = srv_spawn(&S, skiffd, 1, extra);
    dup2(saved, 2);
    close(saved);
    close(lf);
    assert_int_equal(rc, 0);
    snprintf(endpoint, sizeof endpoint, "https://127.0.0.1:%d", S.port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srv_cleanup(&S);
    return 0;
}

static void test_rbac(void **state)
{
    (void)state;
    skiff_client *admin = client("admin", NULL);
    skiff_client *n1 = client("node-n1", NULL);
    skiff_client *sched = client("kube-scheduler", NULL);
    skiff_client *anon = client(NULL, NULL);
    skiff_client *alice = client(NULL, "alice-token");
    skiff_client *bob = client(NULL, "bob-token");
    skiff_client *n2tok = client(NULL, "n2-token");
    skiff_client *bad = client(NULL, "no-such-token");
    skiff_result r;
    int rc;
    cm_arena a = {.chunk_sz = 65536};

    /* Who is who. */
    skiff_op who = {.type = SKIFF_OP_WHOAMI};
    assert_int_equal(skiff_do_sync(n1, &who, &r), 0);
    assert_string_equal(r.user, "system:node:n1");
    assert_int_equal(r.n_groups, 2);
    assert_string_equal(r.groups[0], "system:nodes");
    skiff_result_free(&r);
    assert_int_equal(skiff_do_sync(bob, &who, &r), 0);
    assert_string_equal(r.user, "bob");
    skiff_result_free(&r);

    /* Anonymous: status yes, data no.  A bad token: nothing at all. */
    assert_int_equal(skiff_status(anon, &r), 0);
    skiff_result_free(&r);
    rc = skiff_get_prefix(anon, "/registry/", 10, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    rc = skiff_get(bad, "/app/x", 6, &r);
    expect(rc, &r, SKIFF_EUNAUTHENTICATED);
    skiff_result_free(&r);

    /* The administrator creates pods: p1 on n1, p2 on n2, p3 unbound. */
    expect(put_pod(admin, "p1", "n1", "nginx:1", "", NULL, &r), &r, 0);
    skiff_result_free(&r);
    expect(put_pod(admin, "p2", "n2", "nginx:1", "", NULL, &r), &r, 0);
    skiff_result_free(&r);
    expect(put_pod(admin, "p3", "", "nginx:1", "", NULL, &r), &r, 0);
    skiff_result_free(&r);

    /* Node n1 (certificate): its own pod's status yes ... */
    expect(put_pod(n1, "p1", "n1", "nginx:1", "Running", "status", &r), &r, 0);
    skiff_result_free(&r);
    Skiffpb__V1__Pod *p = stored_pod(admin, "p1", &a);
    assert_non_null(p->status);
    assert_string_equal(p->status->phase, "Running");
    /* ... another node's pod: not its status, spec or existence ... */
    rc = put_pod(n1, "p2", "n2", "nginx:1", "Failed", "status", &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    assert_non_null(strstr(r.error_message, "system:node:n1"));
    skiff_result_free(&r);
    rc = skiff_delete(n1, "/registry/pods/default/p2", 25, NULL, 0, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    /* ... nor the spec of any pod, its own included ... */
    rc = put_pod(n1, "p1", "n1", "nginx:2", "", NULL, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    p = stored_pod(admin, "p2", &a);
    assert_true(!p->status || !p->status->phase ||
                strcmp(p->status->phase, "Failed"));
    p = stored_pod(admin, "p1", &a);
    assert_string_equal(p->spec->containers[0]->image, "nginx:1");
    /* ... but it may read them all. */
    assert_int_equal(skiff_get(n1, "/registry/pods/default/p2", 25, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    skiff_result_free(&r);
    /* The same rules for a node known by a token. */
    rc = put_pod(n2tok, "p1", "n1", "nginx:1", "Failed", "status", &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    expect(put_pod(n2tok, "p2", "n2", "nginx:1", "Pending", "status", &r), &r,
           0);
    skiff_result_free(&r);

    /* Nodes: its own Node yes, another's no. */
    uint8_t *v;
    size_t n = yaml_obj("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
                        &v);
    expect(put_obj(n1, "/registry/nodes/n1", v, n, NULL, &r), &r, 0);
    skiff_result_free(&r);
    free(v);
    n = yaml_obj("apiVersion: v1\nkind: Node\nmetadata: {name: n2}\n", &v);
    rc = put_obj(n1, "/registry/nodes/n2", v, n, NULL, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    free(v);

    /* The scheduler binds p3 once; it cannot edit specs. */
    expect(put_pod(sched, "p3", "n1", "nginx:1", "", "binding", &r), &r, 0);
    skiff_result_free(&r);
    p = stored_pod(admin, "p3", &a);
    assert_string_equal(p->spec->node_name, "n1");
    rc = put_pod(sched, "p3", "n2", "nginx:1", "", "binding", &r);
    expect(rc, &r, SKIFF_ECONFLICT);
    assert_non_null(strstr(r.error_message, "already assigned"));
    skiff_result_free(&r);
    rc = put_pod(sched, "p3", "n1", "nginx:9", "", NULL, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    p = stored_pod(admin, "p3", &a);
    assert_string_equal(p->spec->node_name, "n1");
    assert_string_equal(p->spec->containers[0]->image, "nginx:1");
    /* A binding names a node. */
    rc = put_pod(admin, "p3", "", "nginx:1", "", "binding", &r);
    expect(rc, &r, SKIFF_EINVALID_ARGUMENT);
    assert_non_null(strstr(r.error_message, "spec.nodeName"));
    skiff_result_free(&r);

    /* Alice: nothing until the administrator binds a Role to her. */
    rc = skiff_get_prefix(alice, "/registry/pods/default/", 23, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    assert_int_equal(can_i(alice, "list", "pods", "default", NULL), 0);
    n = yaml_obj("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                 "metadata: {name: pod-reader, namespace: default}\n"
                 "rules:\n- apiGroups: [\"\"]\n  resources: [pods]\n"
                 "  verbs: [get, list, watch]\n",
                 &v);
    expect(put_obj(admin, "/registry/roles/default/pod-reader", v, n, NULL,
                   &r),
           &r, 0);
    skiff_result_free(&r);
    free(v);
    n = yaml_obj("apiVersion: rbac.authorization.k8s.io/v1\n"
                 "kind: RoleBinding\n"
                 "metadata: {name: read-pods, namespace: default}\n"
                 "subjects:\n- kind: User\n  name: alice\n"
                 "  apiGroup: rbac.authorization.k8s.io\n"
                 "roleRef:\n  kind: Role\n  name: pod-reader\n"
                 "  apiGroup: rbac.authorization.k8s.io\n",
                 &v);
    expect(put_obj(admin, "/registry/rolebindings/default/read-pods", v, n,
                   NULL, &r),
           &r, 0);
    skiff_result_free(&r);
    free(v);
    /* The member applies the binding and then its watch feeds the
     * authorizer: wait for that (bounded). */
    int64_t deadline = now_ms() + 10000;
    while (can_i(alice, "list", "pods", "default", NULL) != 1 &&
           now_ms() < deadline)
        skiff_client_poll(alice, 20);
    assert_int_equal(can_i(alice, "list", "pods", "default", NULL), 1);
    assert_int_equal(skiff_get_prefix(alice, "/registry/pods/default/", 23,
                                      &r),
                     0);
    assert_int_equal(r.n_kvs, 3);
    skiff_result_free(&r);
    rc = skiff_get_prefix(alice, "/registry/pods/", 15, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED); /* every namespace: no */
    skiff_result_free(&r);
    rc = put_pod(alice, "p4", "", "nginx:1", "", NULL, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    assert_int_equal(can_i(alice, "create", "pods", "default", NULL), 0);

    /* Access review as another user: administrators only. */
    assert_int_equal(can_i(admin, "delete", "pods", "default",
                           "system:kube-scheduler"),
                     0);
    assert_int_equal(can_i(admin, "create", "pods/binding", "default",
                           "system:kube-scheduler"),
                     1);
    assert_int_equal(can_i(alice, "get", "pods", "default", "bob"),
                     SKIFF_EPERMISSION_DENIED);

    /* Raw keys: grants outside /registry/; objects only by admission. */
    expect(skiff_put(alice, "/app/x", 6, "1", 1, 0, &r), &r, 0);
    skiff_result_free(&r);
    rc = skiff_put(alice, "/other", 6, "1", 1, 0, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    assert_int_equal(skiff_get(bob, "/app/x", 6, &r), 0); /* group devs */
    assert_int_equal(r.n_kvs, 1);
    skiff_result_free(&r);
    rc = skiff_put(bob, "/app/x", 6, "2", 1, 0, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    rc = skiff_delete(alice, "/registry/", 10, "/registry0", 10, &r);
    expect(rc, &r, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    /* Revoking a lease deletes its keys, so it needs write access to
     * every one of them (etcd's rule): bob only reads /app/. */
    int64_t lid = 0, lid2 = 0;
    assert_int_equal(skiff_lease_grant(alice, 600, 0, &lid, NULL), 0);
    expect(skiff_put(alice, "/app/leased", 11, "1", 1, lid, &r), &r, 0);
    skiff_result_free(&r);
    assert_int_equal(skiff_lease_revoke(bob, lid), SKIFF_EPERMISSION_DENIED);
    assert_int_equal(skiff_get(admin, "/app/leased", 11, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    skiff_result_free(&r);
    assert_int_equal(skiff_lease_revoke(alice, lid), 0);
    assert_int_equal(skiff_get(admin, "/app/leased", 11, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    skiff_result_free(&r);
    /* A put with a lease ties its key to the lease's other keys, so it
     * needs write access to each of them too (etcd's rule), in a txn as
     * well; and TimeToLive with keys needs read access to each. */
    {
        int64_t la = 0, lb = 0;
        assert_int_equal(skiff_lease_grant(alice, 600, 0, &la, NULL), 0);
        expect(skiff_put(alice, "/app/l3", 7, "1", 1, la, &r), &r, 0);
        skiff_result_free(&r);
        rc = skiff_put(bob, "/bob/k", 6, "1", 1, la, &r);
        expect(rc, &r, SKIFF_EPERMISSION_DENIED);
        skiff_result_free(&r);
        skiff_op put = {.type = SKIFF_OP_PUT,
                        .key = "/bob/k",
                        .key_len = 6,
                        .value = "1",
                        .value_len = 1,
                        .lease = la};
        skiff_op txn = {.type = SKIFF_OP_TXN, .success = &put, .n_success = 1};
        rc = skiff_do_sync(bob, &txn, &r);
        expect(rc, &r, SKIFF_EPERMISSION_DENIED);
        skiff_result_free(&r);
        assert_int_equal(skiff_get(admin, "/bob/k", 6, &r), 0);
        assert_int_equal(r.n_kvs, 0); /* nothing denied was written */
        skiff_result_free(&r);
        /* His own lease: allowed, alone and in a txn. */
        assert_int_equal(skiff_lease_grant(bob, 600, 0, &lb, NULL), 0);
        expect(skiff_put(bob, "/bob/k", 6, "1", 1, lb, &r), &r, 0);
        skiff_result_free(&r);
        put.lease = lb;
        expect(skiff_do_sync(bob, &txn, &r), &r, 0);
        skiff_result_free(&r);
        skiff_op ttl = {.type = SKIFF_OP_LEASE_TTL,
                        .lease = lb,
                        .flags = SKIFF_LEASE_KEYS};
        rc = skiff_do_sync(alice, &ttl, &r); /* alice cannot read /bob/ */
        expect(rc, &r, SKIFF_EPERMISSION_DENIED);
        skiff_result_free(&r);
        ttl.flags = 0;
        expect(skiff_do_sync(alice, &ttl, &r), &r, 0);
        skiff_result_free(&r);
        ttl.flags = SKIFF_LEASE_KEYS;
        expect(skiff_do_sync(bob, &ttl, &r), &r, 0);
        assert_int_equal(r.n_lease_keys, 1);
        skiff_result_free(&r);
        assert_int_equal(skiff_lease_revoke(alice, la), 0);
        assert_int_equal(skiff_lease_revoke(bob, lb), 0);
    }
    /* A lease that holds an object is an administrator's to revoke. */
    assert_int_equal(skiff_lease_grant(admin, 600, 0, &lid2, NULL), 0);
    {
        uint8_t *pv;
        size_t pn = pod("leased", "", "nginx", "", &pv);
        skiff_op op = {.type = SKIFF_OP_PUT,
                       .key = "/registry/pods/default/leased",
                       .key_len = strlen("/registry/pods/default/leased"),
                       .value = pv,
                       .value_len = pn,
                       .lease = lid2};
        expect(skiff_do_sync(admin, &op, &r), &r, 0);
        skiff_result_free(&r);
        free(pv);
    }
    assert_int_equal(skiff_lease_revoke(alice, lid2),
                     SKIFF_EPERMISSION_DENIED);
    assert_non_null(stored_pod(admin, "leased", &a));
    assert_int_equal(skiff_lease_revoke(admin, lid2), 0);
    assert_null(stored_pod(admin, "leased", &a));

    /* Maintenance is the administrator's. */
    rc = skiff_compact(alice, 1, 0);
    assert_int_equal(rc, SKIFF_EPERMISSION_DENIED);
    skiff_op hk = {.type = SKIFF_OP_HASHKV};
    assert_int_equal(skiff_do_sync(alice, &hk, &r), SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);
    assert_int_equal(skiff_do_sync(admin, &hk, &r), 0);
    skiff_result_free(&r);

    /* Nothing denied was written: the pods are as the allowed writes left
     * them, and no p4. */
    assert_null(stored_pod(admin, "p4", &a));
    assert_int_equal(skiff_get(admin, "/other", 6, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    skiff_result_free(&r);

    /* Every denial was logged with the user. */
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    static char log[1 << 20];
    size_t ll = fread(log, 1, sizeof log - 1, f);
    log[ll] = 0;
    fclose(f);
    assert_non_null(strstr(log, "request denied"));
    assert_non_null(strstr(log, "user=system:node:n1"));
    assert_non_null(strstr(log, "user=alice"));
    assert_non_null(strstr(log, "user=system:anonymous"));

    cm_arena_free(&a);
    skiff_client_destroy(admin);
    skiff_client_destroy(n1);
    skiff_client_destroy(sched);
    skiff_client_destroy(anon);
    skiff_client_destroy(alice);
    skiff_client_destroy(bob);
    skiff_client_destroy(n2tok);
    skiff_client_destroy(bad);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <skiffd> <make-certs.sh> <skiffctl>\n",
                argv[0]);
        return 2;
    }
    skiffd = argv[1];
    make_certs = argv[2];
    skiffctl = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rbac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
