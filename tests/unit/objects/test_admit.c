/*
 * Unit tests for api/objects/admit.c: each admission rule once, on create
 * and on update, with the exact message Kubernetes would give, plus an
 * allocation-failure sweep (every failure is a clean error, no leak).
 */
#include "obj_tu.h"

#include <errno.h>

#include "admit.h"

#define DEP_KEY "/registry/deployments/default/web"
#define DEP(replicas, extra)                                                   \
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" extra    \
    "spec:\n  replicas: " replicas "\n  selector: {matchLabels: {app: web}}\n" \
    "  template:\n    metadata: {labels: {app: web}}\n    spec:\n"             \
    "      containers: [{name: a, image: nginx:1.25}]\n"

static int uid_calls;

static void uid_a(void *data, char *buf, size_t cap)
{
    (void)data;
    uid_calls++;
    snprintf(buf, cap, "11111111-2222-4333-8444-555555555555");
}

/* A packed object (arena memory) from YAML. */
static const uint8_t *packed(cm_arena *a, const char *yaml, size_t *len)
{
    obj_object *o = otu_one(a, yaml);
    *len = protobuf_c_message_get_packed_size(&o->base);
    uint8_t *p = cm_arena_alloc(a, *len ? *len : 1);
    assert_non_null(p);
    protobuf_c_message_pack(&o->base, p);
    return p;
}

typedef struct fix {
    cm_arena a;
    obj_admit_req rq;
    obj_admit_res res;
} fix;

static void req(fix *f, const char *key, const char *yaml)
{
    memset(&f->rq, 0, sizeof f->rq);
    f->rq.key = key;
    f->rq.value = packed(&f->a, yaml, &f->rq.value_len);
    f->rq.now_ms = 1767323045000; /* 2026-01-02T03:04:05Z */
    f->rq.uid = uid_a;
}

/* Sets the old value to a previous admission's result. */
static void old_from(fix *f, const obj_admit_res *prev, int64_t rev)
{
    f->rq.old_value = prev->value;
    f->rq.old_value_len = prev->value_len;
    f->rq.old_mod_revision = rev;
}

static void admit_ok(fix *f)
{
    int rc = obj_admit(&f->rq, &f->a, &f->res);
    if (rc)
        fail_msg("refused (%d, code %d): %s", rc, f->res.code, f->res.message);
    assert_int_equal(f->res.code, OBJ_ADMIT_OK);
}

static void admit_fails(fix *f, obj_admit_code code, const char *msg)
{
    int rc = obj_admit(&f->rq, &f->a, &f->res);
    assert_int_equal(rc, OBJ_EINVALID);
    assert_int_equal(f->res.code, code);
    if (msg)
        assert_string_equal(f->res.message, msg);
}

/* Creates DEP(replicas) and returns the admitted result in *out. */
static void create_dep(fix *f, obj_admit_res *out)
{
    req(f, DEP_KEY, DEP("3", ""));
    admit_ok(f);
    *out = f->res;
}

/* ---- create -------------------------------------------------------------- */

static void test_create_sets_server_fields(void **state)
{
    (void)state;
    fix f = {0};
    uid_calls = 0;
    req(&f, DEP_KEY,
        DEP("3", "  uid: client-uid\n  resourceVersion: \"77\"\n"
                 "  creationTimestamp: \"2000-01-01T00:00:00Z\"\n"
                 "  generation: 9\n"));
    admit_ok(&f);
    assert_int_equal(uid_calls, 1);
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(f.res.object);
    assert_string_equal(md->uid, "11111111-2222-4333-8444-555555555555");
    assert_string_equal(md->creation_timestamp, "2026-01-02T03:04:05Z");
    assert_string_equal(md->namespace_, "default");
    assert_null(md->resource_version);
    assert_true(md->has_generation);
    assert_int_equal(md->generation, 1);
    assert_false(f.res.unchanged);
    /* Defaults were applied (strategy 25%/25%). */
    const Skiffpb__V1__DeploymentSpec *s = f.res.object->deployment->spec;
    assert_non_null(s->strategy);
    assert_string_equal(s->strategy->type, "RollingUpdate");
    /* The packed value decodes to the same object. */
    cm_arena b = {0};
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, &b};
    obj_object *back = (obj_object *)protobuf_c_message_unpack(
        &skiffpb__v1__object__descriptor, &al, f.res.value_len, f.res.value);
    assert_non_null(back);
    assert_true(obj_object_equal(back, f.res.object));
    cm_arena_free(&b);
    cm_arena_free(&f.a);
}

static void test_create_drops_status(void **state)
{
    (void)state;
    fix f = {0};
    req(&f, "/registry/pods/default/p",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: a, image: i}]}\n"
        "status: {phase: Running, podIP: 10.0.0.1}\n");
    admit_ok(&f);
    const Skiffpb__V1__PodStatus *st = f.res.object->pod->status;
    assert_string_equal(st->phase, "Pending"); /* the default, not Running */
    assert_null(st->pod_ip);
    assert_string_equal(st->qos_class, "BestEffort");
    /* A Node keeps the status its agent registers with. */
    req(&f, "/registry/nodes/n1",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n"
        "status: {capacity: {cpu: \"4\"}, conditions: [{type: Ready, "
        "status: \"True\"}]}\n");
    admit_ok(&f);
    assert_int_equal(f.res.object->node->status->n_conditions, 1);
    assert_int_equal(f.res.object->node->status->n_allocatable, 1);
    cm_arena_free(&f.a);
}

static void test_create_key_must_match(void **state)
{
    (void)state;
    fix f = {0};
    req(&f, "/registry/deployments/default/other", DEP("3", ""));
    admit_fails(&f, OBJ_ADMIT_BAD_REQUEST,
                "the object (Deployment.apps \"web\") does not belong at key "
                "/registry/deployments/default/other (its key is " DEP_KEY ")");
    req(&f, "/registry/pods/default/web", DEP("3", ""));
    admit_fails(&f, OBJ_ADMIT_BAD_REQUEST, NULL);
    req(&f, "/registry/deployments/prod/web", DEP("3", ""));
    admit_fails(&f, OBJ_ADMIT_BAD_REQUEST, NULL);
    req(&f, "/registry/deployments/prod/web", DEP("3", "  namespace: prod\n"));
    admit_ok(&f);
    /* Cluster-scoped: no namespace segment, a namespace is dropped. */
    req(&f, "/registry/nodes/n1",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1, namespace: x}\n");
    admit_ok(&f);
    assert_null(obj_object_meta(f.res.object)->namespace_);
    /* No name at all. */
    req(&f, DEP_KEY,
        "apiVersion: v1\nkind: Pod\nmetadata: {labels: {a: b}}\n"
        "spec: {containers: [{name: a, image: i}]}\n");
    admit_fails(&f, OBJ_ADMIT_INVALID,
                "Pod \"\" is invalid: metadata.name: Required value: name or "
                "generateName is required");
    cm_arena_free(&f.a);
}

static void test_create_invalid(void **state)
{
    (void)state;
    fix f = {0};
    req(&f, DEP_KEY, DEP("-1", ""));
    admit_fails(&f, OBJ_ADMIT_INVALID,
                "Deployment.apps \"web\" is invalid: spec.replicas: Invalid "
                "value: -1: must be greater than or equal to 0");
    req(&f, "/registry/pods/default/p",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers: [{name: a, image: i, resources: {requests: "
        "{cpu: 600m}, limits: {cpu: 500m}}}]\n");
    admit_fails(&f, OBJ_ADMIT_INVALID,
                "Pod \"p\" is invalid: "
                "spec.containers[0].resources.requests[cpu]: Invalid value: "
                "\"600m\": must be less than or equal to cpu limit of 500m");
    cm_arena_free(&f.a);
}

static void test_bad_value(void **state)
{
    (void)state;
    fix f = {0};
    memset(&f.rq, 0, sizeof f.rq);
    f.rq.key = DEP_KEY;
    f.rq.value = "\xff\xff\xff";
    f.rq.value_len = 3;
    f.rq.uid = uid_a;
    admit_fails(&f, OBJ_ADMIT_BAD_REQUEST, NULL);
    /* An empty Object holds no kind. */
    f.rq.value = "";
    f.rq.value_len = 0;
    admit_fails(&f, OBJ_ADMIT_BAD_REQUEST, NULL);
    cm_arena_free(&f.a);
}

/* ---- update -------------------------------------------------------------- */

static void test_update_keeps_server_fields(void **state)
{
    (void)state;
    fix f = {0};
    obj_admit_res first;
    create_dep(&f, &first);
    uid_calls = 0;
    req(&f, DEP_KEY,
        DEP("3", "  creationTimestamp: \"2000-01-01T00:00:00Z\"\n"
                 "  generation: 40\n"));
    old_from(&f, &first, 5);
    admit_ok(&f);
    assert_int_equal(uid_calls, 0);
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(f.res.object);
    assert_string_equal(md->uid, "11111111-2222-4333-8444-555555555555");
    assert_string_equal(md->creation_timestamp, "2026-01-02T03:04:05Z");
    assert_int_equal(md->generation, 1);
    assert_true(f.res.unchanged);
    cm_arena_free(&f.a);
}

static void test_update_generation(void **state)
{
    (void)state;
    fix f = {0};
    obj_admit_res first;
    create_dep(&f, &first);
    /* Metadata only: no bump, but a change. */
    req(&f, DEP_KEY, DEP("3", "  labels: {tier: web}\n"));
    old_from(&f, &first, 5);
    admit_ok(&f);
    assert_false(f.res.unchanged);
    assert_int_equal(obj_object_meta(f.res.object)->generation, 1);
    obj_admit_res second = f.res;
    /* Spec: bump. */
    req(&f, DEP_KEY, DEP("5", "  labels: {tier: web}\n"));
    old_from(&f, &second, 6);
    admit_ok(&f);
    assert_int_equal(obj_object_meta(f.res.object)->generation, 2);
    /* A kind without spec: the user-owned fields count (Role rules). */
    req(&f, "/registry/roles/default/r",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
        "metadata: {name: r}\nrules: [{apiGroups: [\"\"], resources: [pods], "
        "verbs: [get]}]\n");
    admit_ok(&f);
    obj_admit_res role = f.res;
    req(&f, "/registry/roles/default/r",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
        "metadata: {name: r}\nrules: [{apiGroups: [\"\"], resources: [pods], "
        "verbs: [get, list]}]\n");
    old_from(&f, &role, 9);
    admit_ok(&f);
    assert_int_equal(obj_object_meta(f.res.object)->generation, 2);
    cm_arena_free(&f.a);
}

static void test_update_keeps_status(void **state)
{
    (void)state;
    fix f = {0};
    req(&f, "/registry/pods/default/p",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: a, image: i}]}\n");
    admit_ok(&f);
    obj_admit_res created = f.res;
    /* A status update sets Running; a spec change in it is ignored. */
    req(&f, "/registry/pods/default/p",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {k: v}}\n"
        "spec: {containers: [{name: a, image: other}]}\n"
        "status: {phase: Running, podIP: 10.0.0.7}\n");
    old_from(&f, &created, 3);
    f.rq.status_update = true;
    admit_ok(&f);
    const Skiffpb__V1__Pod *p = f.res.object->pod;
    assert_string_equal(p->status->phase, "Running");
    assert_string_equal(p->status->pod_ip, "10.0.0.7");
    assert_string_equal(p->spec->containers[0]->image, "i");
    assert_int_equal(p->metadata->n_labels, 0);
    assert_int_equal(p->metadata->generation, 1);
    obj_admit_res running = f.res;
    /* A plain update cannot change status. */
    req(&f, "/registry/pods/default/p",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {k: v}}\n"
        "spec: {containers: [{name: a, image: i}]}\n"
        "status: {phase: Failed}\n");
    old_from(&f, &running, 4);
    admit_ok(&f);
    assert_string_equal(f.res.object->pod->status->phase, "Running");
    assert_int_equal(f.res.object->pod->metadata->n_labels, 1);
    /* Status of something that does not exist. */
    req(&f, "/registry/pods/default/p",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: a, image: i}]}\n");
    f.rq.status_update = true;
    admit_fails(&f, OBJ_ADMIT_NOT_FOUND, "pods \"p\" not found");
    cm_arena_free(&f.a);
}

static void test_update_conflict(void **state)
{
    (void)state;
    fix f = {0};
    obj_admit_res first;
    create_dep(&f, &first);
    req(&f, DEP_KEY, DEP("4", "  resourceVersion: \"4\"\n"));
    old_from(&f, &first, 5);
    admit_fails(&f, OBJ_ADMIT_CONFLICT,
                "Operation cannot be fulfilled on deployments.apps \"web\": "
                "the object has been modified; please apply your changes to "
                "the latest version and try again");
    req(&f, DEP_KEY, DEP("4", "  resourceVersion: \"5\"\n"));
    old_from(&f, &first, 5);
    admit_ok(&f);
    assert_null(obj_object_meta(f.res.object)->resource_version);
    cm_arena_free(&f.a);
}

static void test_update_immutable(void **state)
{
    (void)state;
    fix f = {0};
    obj_admit_res first;
    create_dep(&f, &first);
    req(&f, DEP_KEY, DEP("3", "  uid: other\n"));
    old_from(&f, &first, 5);
    admit_fails(&f, OBJ_ADMIT_INVALID,
                "Deployment.apps \"web\" is invalid: metadata.uid: Invalid "
                "value: \"other\": field is immutable");
    req(&f, DEP_KEY,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec:\n  selector: {matchLabels: {app: web2}}\n  template:\n"
        "    metadata: {labels: {app: web2}}\n    spec:\n"
        "      containers: [{name: a, image: nginx:1.25}]\n");
    old_from(&f, &first, 5);
    admit_fails(&f, OBJ_ADMIT_INVALID,
                "Deployment.apps \"web\" is invalid: spec.selector: Invalid "
                "value: \"app=web2\": field is immutable");
    /* Another kind at the key. */
    req(&f, DEP_KEY,
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec:\n"
        "      containers: [{name: a, image: nginx:1.25}]\n");
    old_from(&f, &first, 5);
    admit_fails(&f, OBJ_ADMIT_BAD_REQUEST, NULL);
    cm_arena_free(&f.a);
}

#define STS(replicas, service, claim)                                          \
    "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n"    \
    "  serviceName: " service "\n  replicas: " replicas "\n"                   \
    "  selector: {matchLabels: {app: db}}\n  template:\n"                      \
    "    metadata: {labels: {app: db}}\n    spec:\n"                           \
    "      containers: [{name: a, image: i, volumeMounts: [{name: data, "      \
    "mountPath: /d}]}]\n  volumeClaimTemplates:\n"                             \
    "  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], "    \
    "resources: {requests: {storage: " claim "}}}\n"

static void test_update_statefulset(void **state)
{
    (void)state;
    fix f = {0};
    const char *key = "/registry/statefulsets/default/db";
    req(&f, key, STS("1", "db", "1Gi"));
    admit_ok(&f);
    obj_admit_res first = f.res;
    const char *forbidden =
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to "
        "statefulset spec for fields other than 'replicas', 'ordinals', "
        "'template', 'updateStrategy', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
        "forbidden";
    req(&f, key, STS("1", "db2", "1Gi"));
    old_from(&f, &first, 2);
    admit_fails(&f, OBJ_ADMIT_INVALID, forbidden);
    req(&f, key, STS("1", "db", "2Gi"));
    old_from(&f, &first, 2);
    admit_fails(&f, OBJ_ADMIT_INVALID, forbidden);
    req(&f, key, STS("4", "db", "1Gi"));
    old_from(&f, &first, 2);
    admit_ok(&f);
    assert_int_equal(obj_object_meta(f.res.object)->generation, 2);
    cm_arena_free(&f.a);
}

static void test_kind_group(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(
        obj_admit_kind_group(obj_kind_find("Deployment"), b, sizeof b),
        "Deployment.apps");
    assert_string_equal(obj_admit_kind_group(obj_kind_find("Pod"), b, sizeof b),
                        "Pod");
    assert_string_equal(
        obj_admit_kind_group(obj_kind_find("HorizontalPodAutoscaler"), b,
                             sizeof b),
        "HorizontalPodAutoscaler.autoscaling");
}

/* Every allocation failure is -ENOMEM or a refusal, never a crash or a
 * leak, and the sweep ends in success. */
static void test_alloc_failures(void **state)
{
    (void)state;
    cm_arena y = {0};
    size_t len;
    const uint8_t *v = packed(&y, DEP("3", ""), &len);
    for (long n = 0;; n++) {
        cm_arena a = {0};
        obj_admit_req rq = {.key = DEP_KEY,
                            .value = v,
                            .value_len = len,
                            .uid = uid_a,
                            .now_ms = 1};
        obj_admit_res res;
        tu_alloc_fail_after(n);
        int rc = obj_admit(&rq, &a, &res);
        tu_alloc_fail_after(-1);
        cm_arena_free(&a);
        if (rc == 0)
            break;
        assert_true(rc == -ENOMEM || rc == OBJ_EINVALID);
        assert_true(n < 10000);
    }
    cm_arena_free(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_sets_server_fields,
                                        otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_create_drops_status, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_create_key_must_match, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_create_invalid, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_bad_value, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_server_fields,
                                        otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_update_generation, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_status, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_update_conflict, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_update_immutable, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_update_statefulset, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_kind_group, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, otu_setup,
                                        otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
