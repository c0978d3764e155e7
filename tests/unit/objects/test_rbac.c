/*
 * Unit tests for api/objects/rbac.c, rbac_kv.c and rbac_builtin.c: each
 * RBAC rule with an allowed and a denied case (namespace scoping,
 * RoleBinding to a ClusterRole, resourceNames, subresources, groups,
 * service accounts, wildcards, the administrator bypass), incremental
 * updates, the built-in roles, NodeRestriction and raw KV permissions.
 * Objects are written as YAML and decoded, as the server's watch would
 * hand them over.
 */
#include <errno.h>

#include "obj_tu.h"
#include "rbac.h"

#define RBAC "apiVersion: rbac.authorization.k8s.io/v1\n"
#define USER(n)                                                                \
    "- {apiGroup: rbac.authorization.k8s.io, kind: User, name: " n "}\n"
#define GROUP(n)                                                               \
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: " n "}\n"

/* ---- helpers ------------------------------------------------------------- */

static void put_yaml(rbac_store *s, const char *yaml)
{
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    obj_error err;
    char msg[600];
    int rc = obj_yaml_decode(yaml, strlen(yaml), &a, &objs, &n, &err);
    if (rc)
        fail_msg("decode: %s",
                 obj_error_format(&err, "t.yaml", msg, sizeof msg));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rbac_store_put(s, objs[i]), 0);
    cm_arena_free(&a);
}

/* Puts a RoleBinding (ns set) or ClusterRoleBinding (ns NULL) named name
 * of ref_kind ref_name to the subjects (a YAML list). */
static void bind(rbac_store *s, const char *ns, const char *name,
                 const char *ref_kind, const char *ref_name,
                 const char *subjects)
{
    char y[2048];
    snprintf(y, sizeof y,
             RBAC "kind: %s\nmetadata: {name: %s%s%s}\n"
                  "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: %s, "
                  "name: %s}\nsubjects:\n%s",
             ns ? "RoleBinding" : "ClusterRoleBinding", name,
             ns ? ", namespace: " : "", ns ? ns : "", ref_kind, ref_name,
             subjects);
    put_yaml(s, y);
}

static authn_user mkuser(const char *name, const char *g1, const char *g2)
{
    const char *g[2];
    size_t n = 0;
    if (g1)
        g[n++] = g1;
    if (g2)
        g[n++] = g2;
    authn_user u;
    assert_int_equal(authn_user_init(&u, name, g, n), 0);
    return u;
}

/* Shorthand: may u do verb on group/resource[/sub] ns/name? */
static bool can(const rbac_store *s, const authn_user *u, const char *verb,
                const char *group, const char *res, const char *sub,
                const char *ns, const char *name)
{
    rbac_reason r;
    return rbac_allowed(s, u, verb, group, res, sub, ns, name, &r);
}

static rbac_store *mkstore(void)
{
    rbac_store *s;
    assert_int_equal(rbac_store_create(&s), 0);
    return s;
}

/* ---- RBAC ---------------------------------------------------------------- */

static void test_admin_bypass(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    authn_user admin = mkuser("admin", "system:masters", NULL);
    authn_user bob = mkuser("bob", "devs", NULL);
    rbac_reason r;
    assert_true(rbac_allowed(s, &admin, "delete", "apps", "deployments", "",
                             "prod", "web", &r));
    assert_non_null(strstr(r.msg, "system:masters"));
    assert_true(can(s, &admin, "create", "", "pods", "binding", "x", "p"));
    assert_true(rbac_is_admin(&admin));
    /* An empty store denies everyone else, with Kubernetes' message. */
    assert_false(
        rbac_allowed(s, &bob, "get", "", "pods", "", "default", "p", &r));
    assert_string_equal(r.msg, "User \"bob\" cannot get resource \"pods\" in "
                               "API group \"\" in the namespace \"default\"");
    assert_false(rbac_allowed(s, &bob, "list", "", "nodes", "", "", "", &r));
    assert_string_equal(r.msg, "User \"bob\" cannot list resource \"nodes\" "
                               "in API group \"\" at the cluster scope");
    assert_false(rbac_allowed(s, NULL, "get", "", "pods", "", "", "", NULL));
    rbac_store_destroy(s);
}

static void test_role_namespace_scoping(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    put_yaml(s, RBAC "kind: Role\nmetadata: {name: pod-reader, namespace: "
                     "dev}\nrules:\n- apiGroups: ['']\n  resources: [pods]\n"
                     "  verbs: [get, list, watch]\n");
    bind(s, "dev", "read-pods", "Role", "pod-reader", USER("alice"));
    authn_user alice = mkuser("alice", NULL, NULL);
    authn_user bob = mkuser("bob", NULL, NULL);
    rbac_reason r;
    assert_true(
        rbac_allowed(s, &alice, "get", "", "pods", "", "dev", "p1", &r));
    assert_string_equal(r.msg, "RBAC: allowed by RoleBinding "
                               "\"dev/read-pods\" of Role \"pod-reader\" to "
                               "User \"alice\"");
    assert_true(can(s, &alice, "list", "", "pods", "", "dev", ""));
    assert_true(can(s, &alice, "watch", "", "pods", "", "dev", ""));
    /* Another namespace, all namespaces, another verb, resource, group or
     * user: no. */
    assert_false(can(s, &alice, "get", "", "pods", "", "prod", "p1"));
    assert_false(can(s, &alice, "list", "", "pods", "", "", ""));
    assert_false(can(s, &alice, "create", "", "pods", "", "dev", ""));
    assert_false(can(s, &alice, "delete", "", "pods", "", "dev", "p1"));
    assert_false(can(s, &alice, "get", "", "nodes", "", "dev", "p1"));
    assert_false(can(s, &alice, "get", "apps", "pods", "", "dev", "p1"));
    assert_false(can(s, &bob, "get", "", "pods", "", "dev", "p1"));
    /* A Role of the same name in another namespace is another Role. */
    bind(s, "prod", "rb", "Role", "pod-reader", USER("bob"));
    assert_false(can(s, &bob, "get", "", "pods", "", "prod", "p1"));
    rbac_store_destroy(s);
}

static void test_rolebinding_to_clusterrole(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    put_yaml(s, RBAC "kind: ClusterRole\nmetadata: {name: deployer}\nrules:\n"
                     "- apiGroups: [apps]\n  resources: [deployments]\n"
                     "  verbs: [get, create, update]\n");
    bind(s, "dev", "d", "ClusterRole", "deployer", USER("carol"));
    authn_user carol = mkuser("carol", NULL, NULL);
    rbac_reason r;
    assert_true(rbac_allowed(s, &carol, "create", "apps", "deployments", "",
                             "dev", "", &r));
    assert_string_equal(r.msg, "RBAC: allowed by RoleBinding \"dev/d\" of "
                               "ClusterRole \"deployer\" to User \"carol\"");
    /* Only inside the binding's namespace. */
    assert_false(
        can(s, &carol, "create", "apps", "deployments", "", "prod", ""));
    assert_false(can(s, &carol, "get", "apps", "deployments", "", "", ""));
    assert_false(
        can(s, &carol, "delete", "apps", "deployments", "", "dev", "web"));
    /* A ClusterRoleBinding grants the same everywhere. */
    bind(s, NULL, "all", "ClusterRole", "deployer", USER("dave"));
    authn_user dave = mkuser("dave", NULL, NULL);
    assert_true(can(s, &dave, "get", "apps", "deployments", "", "prod", "w"));
    assert_true(can(s, &dave, "get", "apps", "deployments", "", "", ""));
    assert_true(rbac_allowed(s, &dave, "update", "apps", "deployments", "", "x",
                             "w", &r));
    assert_string_equal(r.msg, "RBAC: allowed by ClusterRoleBinding \"all\" "
                               "of ClusterRole \"deployer\" to User \"dave\"");
    rbac_store_destroy(s);
}

static void test_resource_names(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    put_yaml(s,
             RBAC "kind: Role\nmetadata: {name: r, namespace: kube-system}\n"
                  "rules:\n- apiGroups: [coordination.k8s.io]\n"
                  "  resources: [leases]\n  resourceNames: [kube-scheduler]\n"
                  "  verbs: [get, update, list, create]\n");
    bind(s, "kube-system", "b", "Role", "r", USER("s"));
    authn_user u = mkuser("s", NULL, NULL);
    const char *g = "coordination.k8s.io";
    assert_true(
        can(s, &u, "get", g, "leases", "", "kube-system", "kube-scheduler"));
    assert_true(
        can(s, &u, "update", g, "leases", "", "kube-system", "kube-scheduler"));
    assert_false(can(s, &u, "get", g, "leases", "", "kube-system", "other"));
    /* No name in the request: a named rule cannot cover it. */
    assert_false(can(s, &u, "list", g, "leases", "", "kube-system", ""));
    assert_false(can(s, &u, "create", g, "leases", "", "kube-system", ""));
    rbac_store_destroy(s);
}

static void test_subresources(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    put_yaml(s,
             RBAC "kind: ClusterRole\nmetadata: {name: pods-only}\nrules:\n"
                  "- {apiGroups: [''], resources: [pods], verbs: ['*']}\n"
                  "---\n" RBAC "kind: ClusterRole\nmetadata: {name: status}\n"
                  "rules:\n- {apiGroups: [''], resources: [pods/status], "
                  "verbs: [update]}\n"
                  "---\n" RBAC "kind: ClusterRole\nmetadata: {name: all-st}\n"
                  "rules:\n- {apiGroups: ['*'], resources: ['*/status'], "
                  "verbs: [patch]}\n");
    bind(s, NULL, "a", "ClusterRole", "pods-only", USER("a"));
    bind(s, NULL, "b", "ClusterRole", "status", USER("b"));
    bind(s, NULL, "c", "ClusterRole", "all-st", USER("c"));
    authn_user a = mkuser("a", NULL, NULL), b = mkuser("b", NULL, NULL),
               c = mkuser("c", NULL, NULL);
    /* "pods" does not cover pods/status or pods/binding. */
    assert_true(can(s, &a, "update", "", "pods", "", "ns", "p"));
    assert_false(can(s, &a, "update", "", "pods", "status", "ns", "p"));
    assert_false(can(s, &a, "create", "", "pods", "binding", "ns", "p"));
    /* "pods/status" covers only that subresource. */
    assert_true(can(s, &b, "update", "", "pods", "status", "ns", "p"));
    assert_false(can(s, &b, "update", "", "pods", "", "ns", "p"));
    assert_false(can(s, &b, "update", "", "pods", "binding", "ns", "p"));
    assert_false(can(s, &b, "update", "", "nodes", "status", "", "n"));
    /* "* /status" is the status of everything. */
    assert_true(can(s, &c, "patch", "apps", "deployments", "status", "n", "d"));
    assert_true(can(s, &c, "patch", "", "nodes", "status", "", "n"));
    assert_false(can(s, &c, "patch", "apps", "deployments", "", "n", "d"));
    assert_false(can(s, &c, "patch", "apps", "deployments", "scale", "n", "d"));
    rbac_store_destroy(s);
}

static void test_groups_wildcards_serviceaccounts(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    put_yaml(s, RBAC "kind: ClusterRole\nmetadata: {name: god}\nrules:\n"
                     "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n");
    bind(s, NULL, "g", "ClusterRole", "god", GROUP("ops"));
    bind(s, "ci", "sa", "ClusterRole", "god",
         "- {kind: ServiceAccount, name: builder}\n"
         "- {kind: ServiceAccount, name: deployer, namespace: ops}\n");
    authn_user op = mkuser("erin", "ops", NULL);
    authn_user dev = mkuser("frank", "devs", NULL);
    rbac_reason r;
    assert_true(rbac_allowed(s, &op, "delete", "rbac.authorization.k8s.io",
                             "clusterroles", "", "", "x", &r));
    assert_string_equal(r.msg, "RBAC: allowed by ClusterRoleBinding \"g\" of "
                               "ClusterRole \"god\" to Group \"ops\"");
    assert_true(can(s, &op, "create", "", "pods", "binding", "a", "p"));
    assert_false(can(s, &dev, "get", "", "pods", "", "a", "p"));
    /* A ServiceAccount subject without namespace is in the binding's. */
    authn_user sa = mkuser("system:serviceaccount:ci:builder", NULL, NULL);
    authn_user sa2 = mkuser("system:serviceaccount:ops:deployer", NULL, NULL);
    authn_user sa3 = mkuser("system:serviceaccount:dev:builder", NULL, NULL);
    assert_true(can(s, &sa, "create", "apps", "deployments", "", "ci", ""));
    assert_false(can(s, &sa, "create", "apps", "deployments", "", "dev", ""));
    assert_true(can(s, &sa2, "get", "", "pods", "", "ci", "p"));
    assert_false(can(s, &sa3, "get", "", "pods", "", "ci", "p"));
    /* A User subject does not match a group of that name, nor the
     * reverse. */
    authn_user named_ops = mkuser("ops", NULL, NULL);
    assert_false(can(s, &named_ops, "get", "", "pods", "", "ci", "p"));
    rbac_store_destroy(s);
}

static void test_incremental(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    authn_user u = mkuser("u", NULL, NULL);
    /* A binding to a role that does not exist yet grants nothing. */
    bind(s, "ns1", "b", "Role", "r", USER("u"));
    assert_false(can(s, &u, "get", "", "pods", "", "ns1", "p"));
    put_yaml(s, RBAC "kind: Role\nmetadata: {name: r, namespace: ns1}\nrules:\n"
                     "- {apiGroups: [''], resources: [pods], verbs: [get, "
                     "delete]}\n");
    assert_true(can(s, &u, "delete", "", "pods", "", "ns1", "p"));
    /* Updating the role replaces its rules. */
    put_yaml(s, RBAC "kind: Role\nmetadata: {name: r, namespace: ns1}\nrules:\n"
                     "- {apiGroups: [''], resources: [pods], verbs: [get]}\n");
    assert_int_equal(rbac_store_count(s, "Role"), 1);
    assert_false(can(s, &u, "delete", "", "pods", "", "ns1", "p"));
    assert_true(can(s, &u, "get", "", "pods", "", "ns1", "p"));
    /* Removing the binding by its registry key. */
    const char *key = "/registry/rolebindings/ns1/b";
    assert_int_equal(rbac_store_del_key(s, key, strlen(key)), 0);
    assert_int_equal(rbac_store_count(s, "RoleBinding"), 0);
    assert_false(can(s, &u, "get", "", "pods", "", "ns1", "p"));
    assert_int_equal(rbac_store_del_key(s, key, strlen(key)), 0); /* again */
    key = "/registry/roles/ns1/r";
    assert_int_equal(rbac_store_del_key(s, key, strlen(key)), 0);
    assert_int_equal(rbac_store_count(s, "Role"), 0);
    static const char *const bad[] = {
        "/registry/pods/n/p", "/registry/roles/r", "/registry/clusterroles/n/r",
        "/registry/roles/n/", "/regist",           "/registry/roles/n/r/x",
        "roles/n/r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(rbac_store_del_key(s, bad[i], strlen(bad[i])),
                         CM_EINVAL);
    assert_int_equal(rbac_store_del(s, "Pod", "n", "p"), CM_EINVAL);
    /* Cluster kinds by key. */
    put_yaml(s, RBAC "kind: ClusterRole\nmetadata: {name: c}\nrules: []\n");
    assert_int_equal(rbac_store_count(s, "ClusterRole"), 1);
    key = "/registry/clusterroles/c";
    assert_int_equal(rbac_store_del_key(s, key, strlen(key)), 0);
    assert_int_equal(rbac_store_count(s, "ClusterRole"), 0);
    /* Objects of other kinds are refused. */
    cm_arena a = {0};
    obj_object *pod = otu_one(&a, "apiVersion: v1\nkind: Pod\nmetadata: "
                                  "{name: p, namespace: ns1}\nspec: {}\n");
    assert_int_equal(rbac_store_put(s, pod), CM_EINVAL);
    obj_object *nons = otu_one(&a, RBAC "kind: Role\nmetadata: {name: r}\n");
    assert_int_equal(rbac_store_put(s, nons), CM_EINVAL);
    cm_arena_free(&a);
    rbac_store_destroy(s);
}

/* Every allocation failure leaves the store as it was. */
static void test_put_enomem(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = otu_one(
        &a, RBAC "kind: ClusterRoleBinding\nmetadata: {name: x}\n"
                 "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: "
                 "ClusterRole, name: r}\nsubjects:\n" USER("u") GROUP("g"));
    rbac_store *s = mkstore();
    authn_user u = mkuser("u", NULL, NULL);
    int rc;
    long n = 0;
    do {
        tu_alloc_fail_after(n++);
        rc = rbac_store_put(s, o);
        tu_alloc_fail_after(-1);
        if (rc) {
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(rbac_store_count(s, "ClusterRoleBinding"), 0);
        }
    } while (rc);
    assert_true(n > 2);
    assert_int_equal(rbac_store_count(s, "ClusterRoleBinding"), 1);
    /* An update that fails leaves the old version in force. */
    put_yaml(s, RBAC "kind: ClusterRole\nmetadata: {name: r}\nrules:\n"
                     "- {apiGroups: [''], resources: [pods], verbs: [get]}\n");
    assert_true(can(s, &u, "get", "", "pods", "", "", ""));
    obj_object *upd =
        otu_one(&a, RBAC "kind: ClusterRoleBinding\nmetadata: {name: x}\n"
                         "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: "
                         "ClusterRole, name: r}\nsubjects:\n" USER("v"));
    tu_alloc_fail_after(0);
    assert_int_equal(rbac_store_put(s, upd), -ENOMEM);
    tu_alloc_fail_after(-1);
    assert_true(can(s, &u, "get", "", "pods", "", "", ""));
    assert_int_equal(rbac_store_put(s, upd), 0);
    assert_false(can(s, &u, "get", "", "pods", "", "", ""));
    rbac_store_destroy(s);
    /* The built-ins, from nothing. */
    n = 0;
    do {
        assert_int_equal(rbac_store_create(&s), 0);
        tu_alloc_fail_after(n++);
        rc = rbac_store_put_builtin(s);
        tu_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == -ENOMEM);
        if (rc)
            rbac_store_destroy(s);
    } while (rc);
    assert_false(can(s, &u, "get", "", "pods", "", "", ""));
    rbac_store_destroy(s);
    cm_arena_free(&a);
}

/* ---- built-in roles ------------------------------------------------------ */

static const char *const builtin_files[] = {
    "kube-scheduler.yaml", "kube-controller-manager.yaml", "node.yaml"};

static void test_builtin_manifests(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    assert_int_equal(rbac_builtin(&a, &objs, &n), 0);
    assert_int_equal(n, 6);
    /* Each validates as admission would, and the embedded copy is the
     * files' content. */
    size_t at = 0;
    for (size_t f = 0; f < 3; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", RBAC_MANIFEST_DIR,
                 builtin_files[f]);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        char buf[8192];
        size_t len = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        obj_object **fobjs;
        size_t fn;
        obj_error err;
        assert_int_equal(obj_yaml_decode(buf, len, &a, &fobjs, &fn, &err), 0);
        assert_int_equal(fn, 2);
        for (size_t i = 0; i < fn; i++, at++) {
            assert_true(obj_object_equal(fobjs[i], objs[at]));
            assert_int_equal(obj_defaults(fobjs[i], &otu_env, &a), 0);
            int rc = obj_validate(fobjs[i], &err);
            if (rc)
                fail_msg("%s: %s: %s", builtin_files[f], err.path, err.msg);
        }
    }
    assert_non_null(strstr(rbac_builtin_yaml(), "system:kube-scheduler"));
    cm_arena_free(&a);
}

static void test_builtin_scheduler(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    assert_int_equal(rbac_store_put_builtin(s), 0);
    assert_int_equal(rbac_store_count(s, "ClusterRole"), 3);
    assert_int_equal(rbac_store_count(s, "ClusterRoleBinding"), 3);
    authn_user u = mkuser("system:kube-scheduler", NULL, NULL);
    assert_true(can(s, &u, "list", "", "pods", "", "", ""));
    assert_true(can(s, &u, "watch", "", "nodes", "", "", ""));
    assert_true(can(s, &u, "get", "", "persistentvolumeclaims", "", "d", "c"));
    assert_true(can(s, &u, "create", "", "pods", "binding", "d", "p"));
    assert_true(can(s, &u, "update", "", "pods", "status", "d", "p"));
    assert_true(can(s, &u, "create", "", "events", "", "d", ""));
    assert_true(can(s, &u, "update", "", "events", "", "d", "e"));
    assert_true(can(s, &u, "update", "coordination.k8s.io", "leases", "",
                    "kube-system", "kube-scheduler"));
    /* Binding and events only: no pod writes, no other workloads. */
    assert_false(can(s, &u, "create", "", "pods", "", "d", ""));
    assert_false(can(s, &u, "update", "", "pods", "", "d", "p"));
    assert_false(can(s, &u, "delete", "", "pods", "", "d", "p"));
    assert_false(can(s, &u, "update", "", "nodes", "", "", "n"));
    assert_false(can(s, &u, "get", "apps", "deployments", "", "d", "x"));
    assert_false(can(s, &u, "update", "coordination.k8s.io", "leases", "",
                     "kube-node-lease", "n1"));
    assert_false(can(s, &u, "create", "rbac.authorization.k8s.io",
                     "clusterrolebindings", "", "", ""));
    rbac_store_destroy(s);
}

static void test_builtin_controllers_and_node(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    assert_int_equal(rbac_store_put_builtin(s), 0);
    authn_user cm = mkuser("system:kube-controller-manager", NULL, NULL);
    static const char *const verbs[] = {"get",    "list",  "watch", "create",
                                        "update", "patch", "delete"};
    for (size_t i = 0; i < 7; i++) {
        assert_true(can(s, &cm, verbs[i], "apps", "deployments", "", "d", "x"));
        assert_true(can(s, &cm, verbs[i], "apps", "replicasets", "", "d", "x"));
        assert_true(can(s, &cm, verbs[i], "apps", "daemonsets", "", "d", "x"));
        assert_true(
            can(s, &cm, verbs[i], "apps", "statefulsets", "", "d", "x"));
        assert_true(can(s, &cm, verbs[i], "", "pods", "", "d", "x"));
        assert_true(
            can(s, &cm, verbs[i], "", "persistentvolumeclaims", "", "d", "x"));
        assert_true(can(s, &cm, verbs[i], "autoscaling",
                        "horizontalpodautoscalers", "", "d", "x"));
        assert_true(can(s, &cm, verbs[i], "", "events", "", "d", "x"));
        assert_true(can(s, &cm, verbs[i], "coordination.k8s.io", "leases", "",
                        "d", "x"));
    }
    assert_true(
        can(s, &cm, "update", "apps", "deployments", "status", "d", "x"));
    assert_false(can(s, &cm, "delete", "", "nodes", "", "", "n"));
    assert_false(can(s, &cm, "create", "rbac.authorization.k8s.io", "roles", "",
                     "d", ""));
    assert_false(can(s, &cm, "delete", "", "namespaces", "", "", "d"));
    assert_false(can(s, &cm, "create", "", "pods", "binding", "d", "p"));

    authn_user node = mkuser("system:node:w1", "system:nodes", NULL);
    assert_true(can(s, &node, "get", "", "pods", "", "d", "p"));
    assert_true(can(s, &node, "watch", "", "pods", "", "", ""));
    assert_true(can(s, &node, "patch", "", "pods", "status", "d", "p"));
    assert_true(can(s, &node, "update", "", "nodes", "", "", "w1"));
    assert_true(can(s, &node, "create", "coordination.k8s.io", "leases", "",
                    "kube-node-lease", ""));
    assert_false(can(s, &node, "update", "", "pods", "", "d", "p"));
    assert_false(can(s, &node, "delete", "", "pods", "", "d", "p"));
    assert_false(can(s, &node, "create", "", "pods", "binding", "d", "p"));
    assert_false(can(s, &node, "delete", "", "nodes", "", "", "w1"));
    assert_false(can(s, &node, "get", "apps", "deployments", "", "d", "x"));
    /* The group is what is bound: a node name without it gets nothing. */
    authn_user fake = mkuser("system:node:w1", NULL, NULL);
    assert_false(can(s, &fake, "get", "", "pods", "", "d", "p"));
    rbac_store_destroy(s);
}

/* ---- NodeRestriction ----------------------------------------------------- */

static bool nr(const authn_user *u, const char *verb, const char *res,
               const char *sub, const char *ns, const char *name,
               const char *node)
{
    rbac_reason r;
    return rbac_node_restriction(u, verb, res, sub, ns, name, node, &r);
}

static void test_node_restriction(void **state)
{
    (void)state;
    authn_user w1 = mkuser("system:node:w1", "system:nodes", NULL);
    rbac_reason r;
    /* Own pods' status yes, another node's and unbound pods no. */
    assert_true(nr(&w1, "update", "pods", "status", "d", "p", "w1"));
    assert_true(nr(&w1, "patch", "pods", "status", "d", "p", "w1"));
    assert_false(rbac_node_restriction(&w1, "update", "pods", "status", "d",
                                       "p", "w2", &r));
    assert_string_equal(r.msg, "NodeRestriction: node \"w1\" may only modify "
                               "pods bound to it (update pods/status d/p)");
    assert_false(nr(&w1, "patch", "pods", "status", "d", "p", ""));
    assert_false(nr(&w1, "delete", "pods", "", "d", "p", "w2"));
    /* Own Node and Lease only. */
    assert_true(nr(&w1, "update", "nodes", "", "", "w1", NULL));
    assert_true(nr(&w1, "create", "nodes", "", "", "w1", NULL));
    assert_true(nr(&w1, "patch", "nodes", "status", "", "w1", NULL));
    assert_false(nr(&w1, "update", "nodes", "", "", "w2", NULL));
    assert_false(nr(&w1, "patch", "nodes", "status", "", "w2", NULL));
    assert_true(nr(&w1, "update", "leases", "", "kube-node-lease", "w1", NULL));
    assert_false(
        nr(&w1, "update", "leases", "", "kube-node-lease", "w2", NULL));
    assert_false(nr(&w1, "update", "leases", "", "kube-system", "w1", NULL));
    /* Events yes, anything else no; reads are RBAC's alone. */
    assert_true(nr(&w1, "create", "events", "", "d", "", NULL));
    assert_false(nr(&w1, "create", "deployments", "", "d", "", NULL));
    assert_true(nr(&w1, "get", "pods", "", "d", "p", "w2"));
    assert_true(nr(&w1, "list", "nodes", "", "", "", NULL));
    /* Not a node: nothing to restrict. */
    authn_user sched = mkuser("system:kube-scheduler", NULL, NULL);
    assert_true(nr(&sched, "update", "pods", "status", "d", "p", "w2"));
    authn_user nogroup = mkuser("system:node:w1", NULL, NULL);
    assert_true(nr(&nogroup, "update", "nodes", "", "", "w2", NULL));
    /* A node identity without a node name may do nothing. */
    authn_user empty = mkuser("system:node:", "system:nodes", NULL);
    assert_false(nr(&empty, "get", "pods", "", "d", "p", ""));
    assert_false(nr(&empty, "update", "nodes", "", "", "", NULL));
}

/* RBAC and NodeRestriction together, as the server checks a request. */
static void test_node_end_to_end(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    assert_int_equal(rbac_store_put_builtin(s), 0);
    authn_user w1 = mkuser("system:node:w1", "system:nodes", NULL);
#define BOTH(verb, res, sub, ns, name, node)                                   \
    (can(s, &w1, verb, rbac_resource_group(res), res, sub, ns, name) &&        \
     nr(&w1, verb, res, sub, ns, name, node))
    assert_true(BOTH("update", "pods", "status", "d", "p1", "w1"));
    assert_false(BOTH("update", "pods", "status", "d", "p2", "w2"));
    assert_false(BOTH("update", "pods", "", "d", "p1", "w1")); /* RBAC */
    assert_true(BOTH("update", "nodes", "status", "", "w1", NULL));
    assert_false(BOTH("update", "nodes", "status", "", "w2", NULL));
    assert_true(BOTH("update", "leases", "", "kube-node-lease", "w1", NULL));
    assert_false(BOTH("update", "leases", "", "kube-node-lease", "w2", NULL));
    assert_true(BOTH("get", "pods", "", "d", "p2", "w2"));
#undef BOTH
    rbac_store_destroy(s);
}

/* ---- raw KV -------------------------------------------------------------- */

#define KEY(k) (k), strlen(k)

static rbac_kv_config *kvcfg(const char *text)
{
    rbac_kv_config *c;
    char msg[256];
    int rc = rbac_kv_config_parse(text, strlen(text), "kv.conf", &c, msg,
                                  sizeof msg);
    if (rc)
        fail_msg("kv config: %s", msg);
    return c;
}

static bool kv(const rbac_store *s, const rbac_kv_config *c,
               const authn_user *u, const char *k, const char *re, size_t rl,
               rbac_kv_access acc)
{
    rbac_reason r;
    return rbac_kv_allowed(s, c, u, k, strlen(k), re, rl, acc, &r);
}

static void test_kv_grants(void **state)
{
    (void)state;
    rbac_kv_config *c = kvcfg("# raw KV grants\n"
                              "user:app   readwrite /app/*\n"
                              "user:app   read      /shared/config\n"
                              "group:ro   read      /app/*   # read only\n"
                              "\n"
                              "user:split readwrite /x/a*\n"
                              "user:split readwrite /x/b*\n"
                              "user:all   read      *\n"
                              "user:all   readwrite *\n");
    authn_user app = mkuser("app", NULL, NULL);
    authn_user ro = mkuser("viewer", "ro", NULL);
    authn_user split = mkuser("split", NULL, NULL);
    authn_user all = mkuser("all", NULL, NULL);
    authn_user admin = mkuser("root", "system:masters", NULL);
    authn_user none = mkuser("nobody", NULL, NULL);
    const rbac_kv_access R = RBAC_KV_READ, W = RBAC_KV_WRITE;
    /* Single keys and prefix ranges inside a grant. */
    assert_true(kv(NULL, c, &app, "/app/x", NULL, 0, W));
    assert_true(kv(NULL, c, &app, "/app/", "/app0", 5, R));
    assert_true(kv(NULL, c, &app, "/app/a", "/app/b", 6, W));
    assert_false(kv(NULL, c, &app, "/app/", "/apq", 4, R)); /* past it */
    assert_false(kv(NULL, c, &app, "/apps", NULL, 0, R));
    assert_false(kv(NULL, c, &app, "/app/", "\0", 1, R)); /* to the end */
    /* Exact-key grants cover that key only, and read only. */
    assert_true(kv(NULL, c, &app, "/shared/config", NULL, 0, RBAC_KV_WATCH));
    assert_false(kv(NULL, c, &app, "/shared/config", NULL, 0, W));
    assert_false(kv(NULL, c, &app, "/shared/config2", NULL, 0, R));
    /* Group grants, read-only. */
    assert_true(kv(NULL, c, &ro, "/app/x", NULL, 0, R));
    assert_false(kv(NULL, c, &ro, "/app/x", NULL, 0, W));
    /* A range is allowed when the union of grants covers it. */
    assert_true(kv(NULL, c, &split, "/x/a", "/x/c", 4, W));
    assert_false(kv(NULL, c, &split, "/x/a", "/x/d", 4, W));
    assert_false(kv(NULL, c, &split, "/x/", "/x/c", 4, W));
    /* "*" is every key, with "\0" as range_end. */
    assert_true(kv(NULL, c, &all, "/", "\0", 1, R));
    assert_true(kv(NULL, c, &all, "/zzz", NULL, 0, W));
    /* Nobody else, and empty or inverted ranges. */
    assert_false(kv(NULL, c, &none, "/app/x", NULL, 0, R));
    assert_false(kv(NULL, c, &app, "/app/b", "/app/a", 6, R));
    assert_false(kv(NULL, NULL, &app, "/app/x", NULL, 0, R));
    /* The administrator needs no grant. */
    assert_true(kv(NULL, NULL, &admin, "/anything", "\0", 1, W));
    rbac_kv_config_destroy(c);
}

static void test_kv_registry(void **state)
{
    (void)state;
    rbac_store *s = mkstore();
    assert_int_equal(rbac_store_put_builtin(s), 0);
    rbac_kv_config *c = kvcfg("user:all readwrite *\n"
                              "user:backup read /registry/*\n");
    authn_user all = mkuser("all", NULL, NULL);
    authn_user backup = mkuser("backup", NULL, NULL);
    authn_user admin = mkuser("root", "system:masters", NULL);
    authn_user sched = mkuser("system:kube-scheduler", NULL, NULL);
    authn_user cm = mkuser("system:kube-controller-manager", NULL, NULL);
    const rbac_kv_access R = RBAC_KV_READ, W = RBAC_KV_WRITE,
                         WA = RBAC_KV_WATCH;
    rbac_reason r;
    /* Raw writes under /registry/: administrators only, whatever the
     * grants or RBAC say. */
    assert_false(
        rbac_kv_allowed(s, c, &all, KEY("/registry/pods/d/p"), NULL, 0, W, &r));
    assert_non_null(strstr(r.msg, "may not write under /registry/"));
    assert_false(kv(s, c, &cm, "/registry/pods/d/p", NULL, 0, W));
    assert_false(kv(s, c, &all, "/registr", "/registry0", 10, W)); /* spans */
    assert_false(kv(s, c, &all, "/a", "\0", 1, W));
    assert_true(kv(s, c, &all, "/registry0", NULL, 0, W)); /* just past */
    assert_true(kv(s, c, &all, "/registr", "/registry/", 10, W)); /* before */
    assert_true(kv(s, c, &admin, "/registry/pods/d/p", NULL, 0, W));
    /* A read grant covers registry reads. */
    assert_true(kv(s, c, &backup, "/registry/", "/registry0", 10, R));
    /* Otherwise reads map to RBAC: the scheduler lists and watches pods. */
    assert_true(
        kv(s, NULL, &sched, "/registry/pods/", "/registry/pods0", 15, R));
    assert_true(
        kv(s, NULL, &sched, "/registry/pods/", "/registry/pods0", 15, WA));
    assert_true(
        kv(s, NULL, &sched, "/registry/pods/d/", "/registry/pods/d0", 17, R));
    assert_true(kv(s, NULL, &sched, "/registry/pods/d/p", NULL, 0, R));
    assert_true(kv(s, NULL, &sched, "/registry/nodes/n1", NULL, 0, WA));
    assert_false(kv(s, NULL, &sched, "/registry/deployments/",
                    "/registry/deployments0", 22, R));
    assert_false(kv(s, NULL, &sched, "/registry/", "/registry0", 10, R));
    assert_false(kv(s, NULL, &sched, "/registry/pods/d", NULL, 0, R));
    assert_false(kv(s, NULL, &sched, "/registry/nodes/a/", "/registry/nodes/a0",
                    18, R)); /* nodes have no namespace */
    assert_false(kv(s, NULL, &sched, "/registry/pods/a", "/registry/pods/z", 16,
                    R)); /* not a prefix */
    assert_false(kv(s, NULL, &sched, "/registry/secrets/", "/registry/secrets0",
                    18, R)); /* unknown resource */
    assert_false(kv(NULL, NULL, &sched, "/registry/pods/d/p", NULL, 0, R));
    /* Outside /registry/ the scheduler has nothing. */
    assert_false(kv(s, NULL, &sched, "/app/x", NULL, 0, R));
    rbac_kv_config_destroy(c);
    rbac_store_destroy(s);
}

static void test_kv_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"user:a read\n", "kv.conf:1: want <user:NAME|group:NAME> "
                          "<read|readwrite> <key|prefix*>"},
        {"# c\n\nuser:a read /x /y\n", "kv.conf:3: want <user:NAME|group:NAME> "
                                       "<read|readwrite> <key|prefix*>"},
        {"alice read /x\n", "kv.conf:1: subject must start with user: or "
                            "group:"},
        {"user: read /x\n", "kv.conf:1: empty subject name"},
        {"user:a write /x\n", "kv.conf:1: access must be read or readwrite"},
        {"user:a read /x*/y\n", "kv.conf:1: '*' may only end a key"},
        {"user:a read /x\nuser:b read /\0y\n", "kv.conf:2: NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rbac_kv_config *c = NULL;
        char msg[256];
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].want, "NUL"))
            len += 3; /* past the embedded NUL */
        assert_int_equal(rbac_kv_config_parse(cases[i].text, len, "kv.conf", &c,
                                              msg, sizeof msg),
                         RBAC_EFORMAT);
        assert_string_equal(msg, cases[i].want);
        assert_null(c);
    }
    /* From a file, and a missing file. */
    char dir[256], path[300];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/kv.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("user:a readwrite /a/*\r\n", f);
    fclose(f);
    rbac_kv_config *c;
    char msg[256];
    assert_int_equal(rbac_kv_config_load(path, &c, msg, sizeof msg), 0);
    authn_user a = mkuser("a", NULL, NULL);
    assert_true(kv(NULL, c, &a, "/a/1", NULL, 0, RBAC_KV_WRITE));
    rbac_kv_config_destroy(c);
    snprintf(path, sizeof path, "%s/none", dir);
    assert_int_equal(rbac_kv_config_load(path, &c, msg, sizeof msg), -ENOENT);
    tu_rmrf(dir);
    /* Out of memory at every step. */
    const char *text = "user:a readwrite /a/*\ngroup:g read /b\n";
    long n = 0;
    int rc;
    do {
        tu_alloc_fail_after(n++);
        rc = rbac_kv_config_parse(text, strlen(text), "x", &c, msg, sizeof msg);
        tu_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == -ENOMEM);
    } while (rc);
    rbac_kv_config_destroy(c);
}

static void test_resource_table(void **state)
{
    (void)state;
    assert_string_equal(rbac_resource_group("pods"), "");
    assert_string_equal(rbac_resource_group("deployments"), "apps");
    assert_string_equal(rbac_resource_group("horizontalpodautoscalers"),
                        "autoscaling");
    assert_string_equal(rbac_resource_group("leases"), "coordination.k8s.io");
    assert_string_equal(rbac_resource_group("clusterroles"),
                        "rbac.authorization.k8s.io");
    assert_null(rbac_resource_group("secrets"));
    assert_true(rbac_resource_cluster_scoped("nodes"));
    assert_true(rbac_resource_cluster_scoped("clusterrolebindings"));
    assert_false(rbac_resource_cluster_scoped("pods"));
    assert_false(rbac_resource_cluster_scoped("secrets"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, otu_setup, otu_teardown)
        T(test_admin_bypass),
        T(test_role_namespace_scoping),
        T(test_rolebinding_to_clusterrole),
        T(test_resource_names),
        T(test_subresources),
        T(test_groups_wildcards_serviceaccounts),
        T(test_incremental),
        T(test_put_enomem),
        T(test_builtin_manifests),
        T(test_builtin_scheduler),
        T(test_builtin_controllers_and_node),
        T(test_node_restriction),
        T(test_node_end_to_end),
        T(test_kv_grants),
        T(test_kv_registry),
        T(test_kv_config_errors),
        T(test_resource_table),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
