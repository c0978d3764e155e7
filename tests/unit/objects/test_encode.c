/*
 * Unit tests for api/objects/encode.c and kinds.c: every seed manifest
 * round-trips through YAML (decode -> encode -> decode gives an equal
 * object, before and after defaulting), strings that YAML would retype are
 * quoted, JSON has kubectl's shape, and registry keys and the kind table
 * follow Kubernetes' resource names.
 */
#include "obj_tu.h"

#include <errno.h>

/* decode(encode(o)) == o, through YAML; also checks the JSON encoder runs. */
static void roundtrip(obj_object *o, const char *what)
{
    cm_buf b = {0};
    cm_arena a2 = {0};
    assert_int_equal(obj_yaml_encode(o, &b), 0);
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    obj_object **objs;
    size_t n;
    obj_error err;
    char msg[600];
    int rc = obj_yaml_decode(b.base, b.len - 1, &a2, &objs, &n, &err);
    if (rc)
        fail_msg("%s: re-decode: %s\n%s", what,
                 obj_error_format(&err, "out.yaml", msg, sizeof msg),
                 (char *)b.base);
    assert_int_equal(n, 1);
    if (!obj_object_equal(o, objs[0]))
        fail_msg("%s: round trip differs:\n%s", what, (char *)b.base);
    cm_buf_reset(&b);
    assert_int_equal(obj_json_encode(o, &b), 0);
    assert_true(b.len > 2 && b.base[0] == '{' && b.base[b.len - 1] == '\n');
    cm_buf_free(&b);
    cm_arena_free(&a2);
}

static void test_seeds_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < OTU_N_SEEDS; i++) {
        size_t len;
        char *buf = otu_read(otu_seeds[i].file, &len);
        cm_arena a = {0};
        obj_object **objs;
        size_t n;
        obj_error err;
        assert_int_equal(obj_yaml_decode(buf, len, &a, &objs, &n, &err), 0);
        for (size_t j = 0; j < n; j++) {
            roundtrip(objs[j], otu_seeds[i].file);
            /* What the store holds (defaulted) round-trips too: this is
             * `get -o yaml` fed back to `apply`. */
            assert_int_equal(obj_defaults(objs[j], &otu_env, &a), 0);
            roundtrip(objs[j], otu_seeds[i].file);
        }
        cm_arena_free(&a);
        free(buf);
    }
}

static void test_yaml_shape(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o =
        otu_one(&a, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
                    "  labels: {a: \"true\", b: \"8080\", c: \"\", d: \"1.5\", "
                    "e: \"null\", f: \"yes\", g: \"~\", h: plain}\n"
                    "  creationTimestamp: 2026-01-02T03:04:05Z\n"
                    "spec:\n  containers:\n  - name: c\n    image: nginx\n"
                    "    args: []\n    resources: {}\n"
                    "    livenessProbe:\n      initialDelaySeconds: 0\n"
                    "      httpGet: {port: http, path: \"/a: b\"}\n"
                    "  hostNetwork: false\n");
    cm_buf b = {0};
    assert_int_equal(obj_yaml_encode(o, &b), 0);
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    assert_string_equal((char *)b.base,
                        "apiVersion: v1\n"
                        "kind: Pod\n"
                        "metadata:\n"
                        "  name: p\n"
                        "  creationTimestamp: \"2026-01-02T03:04:05Z\"\n"
                        "  labels:\n"
                        "    a: \"true\"\n"
                        "    b: \"8080\"\n"
                        "    c: \"\"\n"
                        "    d: \"1.5\"\n"
                        "    e: \"null\"\n"
                        "    f: \"yes\"\n"
                        "    g: \"~\"\n"
                        "    h: plain\n"
                        "spec:\n"
                        "  containers:\n"
                        "  - name: c\n"
                        "    image: nginx\n"
                        "    resources: {}\n"
                        "    livenessProbe:\n"
                        "      httpGet:\n"
                        "        path: '/a: b'\n"
                        "        port: http\n"
                        "      initialDelaySeconds: 0\n"
                        "  hostNetwork: false\n");
    roundtrip(o, "shape");
    cm_buf_free(&b);
    cm_arena_free(&a);
}

static void test_json_shape(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o =
        otu_one(&a, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
                    "  annotations: {note: \"say \\\"hi\\\"\\n\"}\n"
                    "spec:\n  containers:\n  - name: c\n    image: nginx\n"
                    "    resources: {}\n    ports: [{containerPort: 80}]\n"
                    "  hostNetwork: true\n");
    cm_buf b = {0};
    assert_int_equal(obj_json_encode(o, &b), 0);
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    assert_string_equal((char *)b.base,
                        "{\n"
                        "    \"apiVersion\": \"v1\",\n"
                        "    \"kind\": \"Pod\",\n"
                        "    \"metadata\": {\n"
                        "        \"name\": \"p\",\n"
                        "        \"annotations\": {\n"
                        "            \"note\": \"say \\\"hi\\\"\\n\"\n"
                        "        }\n"
                        "    },\n"
                        "    \"spec\": {\n"
                        "        \"containers\": [\n"
                        "            {\n"
                        "                \"name\": \"c\",\n"
                        "                \"image\": \"nginx\",\n"
                        "                \"ports\": [\n"
                        "                    {\n"
                        "                        \"containerPort\": 80\n"
                        "                    }\n"
                        "                ],\n"
                        "                \"resources\": {}\n"
                        "            }\n"
                        "        ],\n"
                        "        \"hostNetwork\": true\n"
                        "    }\n"
                        "}\n");
    cm_buf_free(&b);
    cm_arena_free(&a);
}

/* Objects built in C, not decoded, encode too; no kind is an error. */
static void test_encode_built(void **state)
{
    (void)state;
    Skiffpb__V1__ObjectMeta md = SKIFFPB__V1__OBJECT_META__INIT;
    md.name = "n1";
    Skiffpb__V1__Node node = SKIFFPB__V1__NODE__INIT;
    node.metadata = &md;
    obj_object o;
    assert_int_equal(obj_object_wrap(&o, &node.base), 0);
    cm_buf b = {0};
    assert_int_equal(obj_yaml_encode(&o, &b), 0);
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    assert_string_equal((char *)b.base, "metadata:\n  name: n1\n");
    cm_buf_free(&b);

    obj_object empty = SKIFFPB__V1__OBJECT__INIT;
    assert_int_equal(obj_yaml_encode(&empty, &b), CM_EINVAL);
    assert_int_equal(obj_json_encode(&empty, &b), CM_EINVAL);
    assert_int_equal(obj_object_wrap(&o, &md.base), CM_EINVAL);
    cm_buf_free(&b);
}

static void test_encode_enomem(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("01-deployment.yaml", &len);
    cm_arena a = {0};
    obj_object *o = otu_one(&a, buf);
    for (int json = 0; json < 2; json++)
        for (long k = 0;; k++) {
            cm_buf b = {0};
            tu_alloc_fail_after(k);
            int rc = json ? obj_json_encode(o, &b) : obj_yaml_encode(o, &b);
            tu_alloc_fail_after(-1);
            cm_buf_free(&b);
            if (!rc)
                break;
            assert_int_equal(rc, -ENOMEM);
            assert_true(k < 1000);
        }
    cm_arena_free(&a);
    free(buf);
}

static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *key;
    } cases[] = {
        {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, "
         "namespace: prod}\n",
         "/registry/deployments/prod/web"},
        {"apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n",
         "/registry/nodes/node-1"},
        {"apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n",
         "/registry/namespaces/prod"},
        {"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
         "metadata: {name: h, namespace: default}\n",
         "/registry/horizontalpodautoscalers/default/h"},
        {"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
         "metadata: {name: system:scheduler}\n",
         "/registry/clusterrolebindings/system:scheduler"},
        {"apiVersion: v1\nkind: PersistentVolumeClaim\n"
         "metadata: {name: data-redis-0, namespace: default}\n",
         "/registry/persistentvolumeclaims/default/data-redis-0"},
        {"apiVersion: coordination.k8s.io/v1\nkind: Lease\n"
         "metadata: {name: node-1, namespace: kube-node-lease}\n",
         "/registry/leases/kube-node-lease/node-1"},
    };
    cm_arena a = {0};
    char key[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        obj_object *o = otu_one(&a, cases[i].yaml);
        assert_int_equal(obj_object_key(o, key, sizeof key), 0);
        assert_string_equal(key, cases[i].key);
    }
    /* Namespaced without namespace: default first. */
    obj_object *o = otu_one(&a, "apiVersion: v1\nkind: Pod\n"
                                "metadata: {name: p}\n");
    assert_int_equal(obj_object_key(o, key, sizeof key), CM_EINVAL);
    assert_int_equal(obj_defaults(o, NULL, &a), 0);
    assert_int_equal(obj_object_key(o, key, sizeof key), 0);
    assert_string_equal(key, "/registry/pods/default/p");
    assert_int_equal(obj_object_key(o, key, 10), CM_ETOOBIG);
    assert_string_equal(key, "");
    o = otu_one(&a, "apiVersion: v1\nkind: Pod\nmetadata: {generateName: "
                    "p-}\n");
    assert_int_equal(obj_object_key(o, key, sizeof key), CM_EINVAL);
    obj_object empty = SKIFFPB__V1__OBJECT__INIT;
    assert_int_equal(obj_object_key(&empty, key, sizeof key), CM_EINVAL);
    cm_arena_free(&a);
}

static void test_kind_table(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *api, *resource;
        bool ns;
    } want[] = {
        {"Namespace", "v1", "namespaces", false},
        {"Node", "v1", "nodes", false},
        {"Pod", "v1", "pods", true},
        {"ReplicaSet", "apps/v1", "replicasets", true},
        {"Deployment", "apps/v1", "deployments", true},
        {"DaemonSet", "apps/v1", "daemonsets", true},
        {"StatefulSet", "apps/v1", "statefulsets", true},
        {"PersistentVolumeClaim", "v1", "persistentvolumeclaims", true},
        {"HorizontalPodAutoscaler", "autoscaling/v2",
         "horizontalpodautoscalers", true},
        {"Event", "v1", "events", true},
        {"Lease", "coordination.k8s.io/v1", "leases", true},
        {"Role", "rbac.authorization.k8s.io/v1", "roles", true},
        {"RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings", true},
        {"ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", false},
        {"ClusterRoleBinding", "rbac.authorization.k8s.io/v1",
         "clusterrolebindings", false},
    };
    cm_arena a = {0};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const obj_kind *k = obj_kind_find(want[i].kind);
        assert_non_null(k);
        assert_string_equal(k->api_version, want[i].api);
        assert_string_equal(k->resource, want[i].resource);
        assert_int_equal(k->namespaced, want[i].ns);
        /* Each kind decodes from its minimal manifest, and wraps. */
        char y[256];
        snprintf(y, sizeof y, "apiVersion: %s\nkind: %s\nmetadata: {name: x}\n",
                 want[i].api, want[i].kind);
        obj_object *o = otu_one(&a, y);
        assert_ptr_equal(obj_kind_get(o), k);
        assert_string_equal(obj_object_meta(o)->name, "x");
        assert_ptr_equal(obj_object_msg(o)->descriptor, k->desc);
    }
    assert_null(obj_kind_find("Service"));
    assert_null(obj_kind_find("pod"));
    assert_null(obj_kind_find(NULL));
    cm_arena_free(&a);
}

static void test_equal(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *x = otu_one(&a, "apiVersion: v1\nkind: Pod\n"
                                "metadata: {name: p}\nspec: {priority: 0}\n");
    obj_object *y = otu_one(&a, "apiVersion: v1\nkind: Pod\n"
                                "metadata: {name: p}\nspec: {}\n");
    obj_object *z = otu_one(&a, "apiVersion: v1\nkind: Pod\n"
                                "metadata: {name: p}\nspec: {priority: 0}\n");
    assert_false(obj_object_equal(x, y)); /* explicit 0 is kept */
    assert_true(obj_object_equal(x, z));
    cm_arena_free(&a);
}

static void test_error_format(void **state)
{
    (void)state;
    obj_error e = {.line = 3};
    snprintf(e.path, sizeof e.path, "spec.replicas");
    snprintf(e.msg, sizeof e.msg, "bad");
    char buf[64];
    assert_string_equal(obj_error_format(&e, "f.yaml", buf, sizeof buf),
                        "f.yaml:3: spec.replicas: bad");
    assert_string_equal(obj_error_format(&e, NULL, buf, sizeof buf),
                        "spec.replicas: bad");
    e.line = 0;
    assert_string_equal(obj_error_format(&e, "f.yaml", buf, sizeof buf),
                        "f.yaml: spec.replicas: bad");
    e.path[0] = '\0';
    assert_string_equal(obj_error_format(&e, NULL, buf, sizeof buf), "bad");
    /* Truncated to the buffer. */
    assert_string_equal(obj_error_format(&e, "a-long-file-name.yaml", buf, 8),
                        "a-long-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seeds_roundtrip, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_yaml_shape, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_json_shape, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_encode_built, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_encode_enomem, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_keys, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_kind_table, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_equal, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_error_format, otu_setup,
                                        otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
