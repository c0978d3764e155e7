/*
 * Unit tests for api/objects/defaults.c: Kubernetes' defaults one by one
 * (metadata, pods, probes, requests from limits, tolerations, QoS classes,
 * workload strategies, HPA, other kinds), canonical quantities,
 * idempotence, and allocation failures.
 */
#include "obj_tu.h"

#include <errno.h>

#define POD "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"

static obj_object *dflt(cm_arena *a, const char *yaml)
{
    obj_object *o = otu_one(a, yaml);
    assert_int_equal(obj_defaults(o, &otu_env, a), 0);
    return o;
}

static const char *req(const Skiffpb__V1__Container *c, const char *name)
{
    for (size_t i = 0; c->resources && i < c->resources->n_requests; i++)
        if (!strcmp(c->resources->requests[i]->key, name))
            return c->resources->requests[i]->value->string;
    return NULL;
}

/* Every seed defaults and then validates, as admission will run them. */
static void test_seeds(void **state)
{
    (void)state;
    for (size_t i = 0; i < OTU_N_SEEDS; i++) {
        size_t len;
        char *buf = otu_read(otu_seeds[i].file, &len);
        cm_arena a = {0};
        obj_object **objs;
        size_t n;
        obj_error err;
        char msg[600];
        assert_int_equal(obj_yaml_decode(buf, len, &a, &objs, &n, &err), 0);
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(obj_defaults(objs[j], &otu_env, &a), 0);
            if (obj_validate(objs[j], &err))
                fail_msg("%s: %s", otu_seeds[i].file,
                         obj_error_format(&err, NULL, msg, sizeof msg));
        }
        cm_arena_free(&a);
        free(buf);
    }
}

static void test_meta(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = dflt(&a, POD);
    Skiffpb__V1__ObjectMeta *md = o->pod->metadata;
    assert_string_equal(md->namespace_, "default");
    assert_string_equal(md->uid, "0b7c1f0e-0000-4000-8000-000000000001");
    assert_string_equal(md->creation_timestamp, "2026-01-02T03:04:05Z");
    assert_string_equal(o->pod->api_version, "v1");
    assert_string_equal(o->pod->kind, "Pod");

    o = dflt(&a, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: "
                 "prod, uid: u1, creationTimestamp: \"2020-01-01T00:00:00Z\"}"
                 "\n");
    md = o->pod->metadata;
    assert_string_equal(md->namespace_, "prod");
    assert_string_equal(md->uid, "u1");
    assert_string_equal(md->creation_timestamp, "2020-01-01T00:00:00Z");

    /* Cluster-scoped kinds get no namespace. */
    o = dflt(&a, "apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n");
    assert_null(o->node->metadata->namespace_);
    o = dflt(&a, "apiVersion: v1\nkind: Node\nmetadata: {name: node-a, "
                 "namespace: default}\n");
    assert_null(o->node->metadata->namespace_);

    /* Without an env, uid and time are left to the caller. */
    o = otu_one(&a, POD);
    assert_int_equal(obj_defaults(o, NULL, &a), 0);
    assert_null(o->pod->metadata->uid);
    assert_null(o->pod->metadata->creation_timestamp);

    /* No metadata at all: one is made. */
    o = otu_one(&a, "apiVersion: v1\nkind: Namespace\n");
    assert_int_equal(obj_defaults(o, &otu_env, &a), 0);
    assert_non_null(o->namespace_->metadata);
    obj_object empty = SKIFFPB__V1__OBJECT__INIT;
    assert_int_equal(obj_defaults(&empty, &otu_env, &a), CM_EINVAL);
    cm_arena_free(&a);
}

static void test_pod_spec(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = dflt(&a, POD "spec:\n  containers:\n  - name: c\n"
                                 "    image: nginx\n    ports:\n"
                                 "    - containerPort: 80\n");
    Skiffpb__V1__PodSpec *s = o->pod->spec;
    assert_string_equal(s->restart_policy, "Always");
    assert_true(s->has_termination_grace_period_seconds);
    assert_int_equal(s->termination_grace_period_seconds, 30);
    assert_string_equal(s->scheduler_name, "default-scheduler");
    assert_true(s->has_priority);
    assert_int_equal(s->priority, 0);
    assert_string_equal(s->containers[0]->ports[0]->protocol, "TCP");
    assert_string_equal(o->pod->status->phase, "Pending");

    /* Set fields are kept. */
    o = dflt(&a, POD "spec:\n  restartPolicy: Never\n"
                     "  terminationGracePeriodSeconds: 0\n"
                     "  schedulerName: mine\n"
                     "  containers:\n  - name: c\n    image: nginx\n"
                     "    ports: [{containerPort: 53, protocol: UDP}]\n");
    s = o->pod->spec;
    assert_string_equal(s->restart_policy, "Never");
    assert_int_equal(s->termination_grace_period_seconds, 0);
    assert_string_equal(s->scheduler_name, "mine");
    assert_string_equal(s->containers[0]->ports[0]->protocol, "UDP");
    cm_arena_free(&a);
}

static void test_pull_policy(void **state)
{
    (void)state;
    static const struct {
        const char *image, *policy;
    } cases[] = {
        {"nginx", "Always"},
        {"nginx:latest", "Always"},
        {"nginx:1.25", "IfNotPresent"},
        {"my-app:1.0", "IfNotPresent"},
        {"registry.local:5000/team/app", "Always"},
        {"registry.local:5000/team/app:v2", "IfNotPresent"},
        {"registry.local:5000/team/app:latest", "Always"},
        {"nginx@sha256:0123abcd", "IfNotPresent"},
    };
    cm_arena a = {0};
    char y[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(y, sizeof y,
                 POD "spec:\n  containers:\n  - name: c\n    image: \"%s\"\n",
                 cases[i].image);
        obj_object *o = dflt(&a, y);
        if (strcmp(o->pod->spec->containers[0]->image_pull_policy,
                   cases[i].policy))
            fail_msg("%s: %s, want %s", cases[i].image,
                     o->pod->spec->containers[0]->image_pull_policy,
                     cases[i].policy);
    }
    obj_object *o = dflt(&a, POD "spec:\n  containers:\n  - name: c\n"
                                 "    image: nginx\n"
                                 "    imagePullPolicy: Never\n");
    assert_string_equal(o->pod->spec->containers[0]->image_pull_policy,
                        "Never");
    cm_arena_free(&a);
}

static void test_probes(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("08-pod-probes.yaml", &len);
    cm_arena a = {0};
    obj_object *o = dflt(&a, buf);
    Skiffpb__V1__Container *c = o->pod->spec->containers[0];
    Skiffpb__V1__Probe *st = c->startup_probe, *lv = c->liveness_probe,
                       *rd = c->readiness_probe;
    /* Given in the manifest: kept. */
    assert_int_equal(st->failure_threshold, 30);
    assert_int_equal(st->period_seconds, 10);
    assert_int_equal(rd->period_seconds, 5);
    assert_true(lv->has_initial_delay_seconds);
    assert_int_equal(lv->initial_delay_seconds, 0);
    /* Defaulted. */
    for (int i = 0; i < 3; i++) {
        Skiffpb__V1__Probe *p = i == 0 ? st : i == 1 ? lv : rd;
        assert_int_equal(p->timeout_seconds, 1);
        assert_int_equal(p->success_threshold, 1);
        assert_string_equal(p->http_get->scheme, "HTTP");
    }
    assert_int_equal(lv->failure_threshold, 3);
    cm_arena_free(&a);
    free(buf);

    buf = otu_read("09-pod-probe-kinds.yaml", &len);
    o = dflt(&a, buf);
    for (size_t i = 0; i < 3; i++) {
        c = o->pod->spec->containers[i];
        Skiffpb__V1__Probe *p =
            c->liveness_probe ? c->liveness_probe : c->readiness_probe;
        assert_int_equal(p->period_seconds, 10);
        assert_int_equal(p->timeout_seconds, 1);
        assert_int_equal(p->success_threshold, 1);
        assert_int_equal(p->failure_threshold, 3);
        assert_false(p->has_initial_delay_seconds);
    }
    cm_arena_free(&a);
    free(buf);

    /* An explicit 0 is "unset" for these plain Kubernetes ints. */
    o = dflt(&a, POD "spec:\n  containers:\n  - name: c\n    image: i\n"
                     "    livenessProbe:\n      exec: {command: [\"true\"]}\n"
                     "      periodSeconds: 0\n      timeoutSeconds: 0\n");
    assert_int_equal(
        o->pod->spec->containers[0]->liveness_probe->period_seconds, 10);
    cm_arena_free(&a);
}

static void test_requests_from_limits(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = dflt(&a, POD "spec:\n  containers:\n  - name: c\n"
                                 "    image: i\n    resources:\n"
                                 "      limits: {cpu: \"1\", memory: 1Gi}\n"
                                 "      requests: {memory: 512Mi}\n");
    Skiffpb__V1__Container *c = o->pod->spec->containers[0];
    assert_int_equal(c->resources->n_requests, 2);
    assert_string_equal(req(c, "memory"), "512Mi");
    assert_string_equal(req(c, "cpu"), "1");
    /* A copy, not the limit's own message. */
    assert_ptr_not_equal(c->resources->requests[1]->value,
                         c->resources->limits[0]->value);
    assert_string_equal(o->pod->status->qos_class, "Burstable");
    cm_arena_free(&a);
}

static const char *qos_of(cm_arena *a, const char *resources)
{
    char y[1024];
    snprintf(y, sizeof y, POD "spec:\n  containers:\n%s", resources);
    return dflt(a, y)->pod->status->qos_class;
}

static void test_qos(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("07-qos-pods.yaml", &len);
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    obj_error err;
    assert_int_equal(obj_yaml_decode(buf, len, &a, &objs, &n, &err), 0);
    static const char *const want[] = {"Guaranteed", "Burstable", "BestEffort"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(obj_defaults(objs[i], &otu_env, &a), 0);
        assert_string_equal(objs[i]->pod->status->qos_class, want[i]);
        assert_string_equal(obj_pod_qos_class(objs[i]->pod->spec), want[i]);
    }
    free(buf);

    /* Limits only: requests default to them, so Guaranteed. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "    resources:\n      limits: {cpu: 1, "
                                   "memory: 1Gi}\n"),
                        "Guaranteed");
    /* Equal by value, written differently. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "    resources:\n      limits: {cpu: 1, "
                                   "memory: 1Gi}\n      requests: {cpu: "
                                   "1000m, memory: 1024Mi}\n"),
                        "Guaranteed");
    /* A cpu limit only: Burstable. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "    resources:\n      limits: {cpu: 1}\n"),
                        "Burstable");
    /* Requests only. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "    resources:\n      requests: {memory: "
                                   "1Gi}\n"),
                        "Burstable");
    /* One Guaranteed container and one with nothing: Burstable. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "    resources:\n      limits: {cpu: 1, "
                                   "memory: 1Gi}\n  - name: d\n    image: i\n"),
                        "Burstable");
    /* Zero requests do not count; other resources are not looked at. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "    resources:\n      requests: {cpu: 0, "
                                   "ephemeral-storage: 1Gi}\n"),
                        "BestEffort");
    /* Init containers count too. */
    assert_string_equal(qos_of(&a, "  - name: c\n    image: i\n"
                                   "  initContainers:\n  - name: i\n"
                                   "    image: i\n    resources:\n"
                                   "      requests: {cpu: 100m}\n"),
                        "Burstable");
    cm_arena_free(&a);
}

static void test_tolerations(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = dflt(&a, POD "spec:\n  containers:\n  - {name: c, "
                                 "image: i}\n");
    Skiffpb__V1__PodSpec *s = o->pod->spec;
    assert_int_equal(s->n_tolerations, 2);
    assert_string_equal(s->tolerations[0]->key, "node.kubernetes.io/not-ready");
    assert_string_equal(s->tolerations[1]->key,
                        "node.kubernetes.io/unreachable");
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(s->tolerations[i]->operator_, "Exists");
        assert_string_equal(s->tolerations[i]->effect, "NoExecute");
        assert_true(s->tolerations[i]->has_toleration_seconds);
        assert_int_equal(s->tolerations[i]->toleration_seconds, 300);
    }

    /* The seed's gpu toleration is kept, the two are added after it. */
    size_t len;
    char *buf = otu_read("06-pod-toleration.yaml", &len);
    o = dflt(&a, buf);
    free(buf);
    s = o->pod->spec;
    assert_int_equal(s->n_tolerations, 3);
    assert_string_equal(s->tolerations[0]->key, "gpu");
    assert_false(s->tolerations[0]->has_toleration_seconds);

    /* An own not-ready toleration wins. */
    o = dflt(&a, POD "spec:\n  containers:\n  - {name: c, image: i}\n"
                     "  tolerations:\n  - key: node.kubernetes.io/not-ready\n"
                     "    operator: Exists\n    effect: NoExecute\n"
                     "    tolerationSeconds: 60\n");
    s = o->pod->spec;
    assert_int_equal(s->n_tolerations, 2);
    assert_int_equal(s->tolerations[0]->toleration_seconds, 60);
    assert_string_equal(s->tolerations[1]->key,
                        "node.kubernetes.io/unreachable");

    /* Tolerating everything: nothing added. */
    o = dflt(&a, POD "spec:\n  containers:\n  - {name: c, image: i}\n"
                     "  tolerations:\n  - operator: Exists\n");
    assert_int_equal(o->pod->spec->n_tolerations, 1);

    /* Templates are not pods: no tolerations, no QoS. */
    buf = otu_read("01-deployment.yaml", &len);
    o = dflt(&a, buf);
    free(buf);
    assert_int_equal(o->deployment->spec->template_->spec->n_tolerations, 0);
    cm_arena_free(&a);
}

static void test_deployment(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("01-deployment.yaml", &len);
    cm_arena a = {0};
    obj_object *o = dflt(&a, buf);
    free(buf);
    Skiffpb__V1__DeploymentSpec *s = o->deployment->spec;
    assert_int_equal(s->replicas, 3);
    assert_string_equal(s->strategy->type, "RollingUpdate");
    assert_int_equal(s->strategy->rolling_update->max_surge->type, 1);
    assert_string_equal(s->strategy->rolling_update->max_surge->str_val, "25%");
    assert_string_equal(s->strategy->rolling_update->max_unavailable->str_val,
                        "25%");
    assert_int_equal(s->revision_history_limit, 10);
    assert_int_equal(s->progress_deadline_seconds, 600);
    Skiffpb__V1__PodSpec *ps = s->template_->spec;
    assert_string_equal(ps->restart_policy, "Always");
    assert_string_equal(ps->containers[0]->image_pull_policy, "IfNotPresent");

    buf = otu_read("11-deployment-for-hpa.yaml", &len);
    o = dflt(&a, buf);
    free(buf);
    assert_true(o->deployment->spec->has_replicas);
    assert_int_equal(o->deployment->spec->replicas, 1);

    /* Recreate gets no rollingUpdate; replicas 0 stays 0; set ones stay. */
    o = dflt(&a, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
                 "spec:\n  replicas: 0\n  strategy: {type: Recreate}\n"
                 "  revisionHistoryLimit: 2\n");
    s = o->deployment->spec;
    assert_int_equal(s->replicas, 0);
    assert_null(s->strategy->rolling_update);
    assert_int_equal(s->revision_history_limit, 2);
    o = dflt(&a, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
                 "spec:\n  strategy:\n    rollingUpdate: {maxSurge: 1}\n");
    s = o->deployment->spec;
    assert_int_equal(s->strategy->rolling_update->max_surge->int_val, 1);
    assert_string_equal(s->strategy->rolling_update->max_unavailable->str_val,
                        "25%");
    cm_arena_free(&a);
}

static void test_other_workloads(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("02-daemonset.yaml", &len);
    cm_arena a = {0};
    obj_object *o = dflt(&a, buf);
    free(buf);
    Skiffpb__V1__DaemonSetSpec *ds = o->daemon_set->spec;
    assert_string_equal(ds->update_strategy->type, "RollingUpdate");
    assert_int_equal(
        ds->update_strategy->rolling_update->max_unavailable->int_val, 1);
    assert_int_equal(ds->update_strategy->rolling_update->max_surge->int_val,
                     0);
    assert_int_equal(ds->revision_history_limit, 10);
    assert_string_equal(ds->template_->spec->containers[0]->image_pull_policy,
                        "Always"); /* fluentd:latest */

    buf = otu_read("03-statefulset.yaml", &len);
    o = dflt(&a, buf);
    free(buf);
    Skiffpb__V1__StatefulSetSpec *ss = o->stateful_set->spec;
    assert_int_equal(ss->replicas, 3);
    assert_string_equal(ss->pod_management_policy, "OrderedReady");
    assert_string_equal(ss->update_strategy->type, "RollingUpdate");
    assert_true(ss->update_strategy->rolling_update->has_partition);
    assert_int_equal(ss->update_strategy->rolling_update->partition, 0);
    assert_int_equal(ss->revision_history_limit, 10);
    assert_string_equal(ss->volume_claim_templates[0]->spec->volume_mode,
                        "Filesystem");

    o = dflt(&a, "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\n"
                 "spec: {}\n");
    assert_int_equal(o->replica_set->spec->replicas, 1);
    cm_arena_free(&a);
}

static void test_hpa(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("10-hpa.yaml", &len);
    cm_arena a = {0};
    obj_object *o = dflt(&a, buf);
    free(buf);
    Skiffpb__V1__HorizontalPodAutoscalerSpec *s =
        o->horizontal_pod_autoscaler->spec;
    assert_int_equal(s->min_replicas, 2);
    assert_int_equal(s->n_metrics, 1);
    assert_int_equal(s->metrics[0]->resource->target->average_utilization, 70);
    assert_null(s->behavior); /* only filled in when given */

    o = dflt(&a, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                 "metadata: {name: h}\nspec:\n  scaleTargetRef: {kind: "
                 "Deployment, name: d}\n  maxReplicas: 5\n  behavior:\n"
                 "    scaleDown: {stabilizationWindowSeconds: 60}\n");
    s = o->horizontal_pod_autoscaler->spec;
    assert_int_equal(s->min_replicas, 1);
    Skiffpb__V1__MetricTarget *t = s->metrics[0]->resource->target;
    assert_string_equal(s->metrics[0]->type, "Resource");
    assert_string_equal(s->metrics[0]->resource->name, "cpu");
    assert_string_equal(t->type, "Utilization");
    assert_int_equal(t->average_utilization, 80);
    Skiffpb__V1__HPAScalingRules *up = s->behavior->scale_up;
    Skiffpb__V1__HPAScalingRules *down = s->behavior->scale_down;
    assert_int_equal(up->stabilization_window_seconds, 0);
    assert_string_equal(up->select_policy, "Max");
    assert_int_equal(up->n_policies, 2);
    assert_string_equal(up->policies[0]->type, "Percent");
    assert_int_equal(up->policies[0]->value, 100);
    assert_string_equal(up->policies[1]->type, "Pods");
    assert_int_equal(up->policies[1]->value, 4);
    assert_int_equal(up->policies[1]->period_seconds, 15);
    assert_int_equal(down->stabilization_window_seconds, 60);
    assert_int_equal(down->n_policies, 1);
    assert_int_equal(down->policies[0]->value, 100);
    cm_arena_free(&a);
}

static void test_other_kinds(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = dflt(&a, "apiVersion: v1\nkind: PersistentVolumeClaim\n"
                             "metadata: {name: c}\nspec: {accessModes: "
                             "[ReadWriteOnce], resources: {requests: "
                             "{storage: 1Gi}}}\n");
    assert_string_equal(o->persistent_volume_claim->status->phase, "Pending");
    assert_string_equal(o->persistent_volume_claim->spec->volume_mode,
                        "Filesystem");
    o = dflt(&a, "apiVersion: v1\nkind: Namespace\nmetadata: {name: node-a}\n");
    assert_string_equal(o->namespace_->status->phase, "Active");
    o = dflt(&a, "apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n"
                 "status: {capacity: {cpu: 4, memory: 8Gi, pods: 110}}\n");
    assert_int_equal(o->node->status->n_allocatable, 3);
    assert_string_equal(o->node->status->allocatable[1]->key, "memory");
    assert_string_equal(o->node->status->allocatable[1]->value->string, "8Gi");
    o = dflt(&a, "apiVersion: rbac.authorization.k8s.io/v1\nkind: "
                 "RoleBinding\nmetadata: {name: b}\nsubjects:\n"
                 "- {kind: User, name: alice}\n"
                 "- {kind: ServiceAccount, name: sa, namespace: x}\n"
                 "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, "
                 "name: r}\n");
    assert_string_equal(o->role_binding->subjects[0]->api_group,
                        "rbac.authorization.k8s.io");
    assert_null(o->role_binding->subjects[1]->api_group);
    cm_arena_free(&a);
}

static void test_canonical_quantities(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = dflt(&a, POD "spec:\n  containers:\n  - name: c\n"
                                 "    image: i\n    resources:\n"
                                 "      limits: {cpu: 0.5, memory: 1024Mi}\n"
                                 "      requests: {cpu: 250m, memory: "
                                 "2048Ki}\n");
    Skiffpb__V1__Container *c = o->pod->spec->containers[0];
    assert_string_equal(c->resources->limits[0]->value->string, "500m");
    assert_string_equal(c->resources->limits[1]->value->string, "1Gi");
    assert_string_equal(req(c, "cpu"), "250m");
    assert_string_equal(req(c, "memory"), "2Mi");
    cm_arena_free(&a);
}

/* Defaulting twice changes nothing. */
static void test_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < OTU_N_SEEDS; i++) {
        size_t len;
        char *buf = otu_read(otu_seeds[i].file, &len);
        cm_arena a = {0};
        obj_object **x, **y;
        size_t n;
        obj_error err;
        assert_int_equal(obj_yaml_decode(buf, len, &a, &x, &n, &err), 0);
        assert_int_equal(obj_yaml_decode(buf, len, &a, &y, &n, &err), 0);
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(obj_defaults(x[j], &otu_env, &a), 0);
            assert_int_equal(obj_defaults(y[j], &otu_env, &a), 0);
            assert_int_equal(obj_defaults(y[j], &otu_env, &a), 0);
            assert_true(obj_object_equal(x[j], y[j]));
        }
        cm_arena_free(&a);
        free(buf);
    }
}

static void test_enomem(void **state)
{
    (void)state;
    static const char *const files[] = {
        "01-deployment.yaml", "02-daemonset.yaml", "03-statefulset.yaml",
        "07-qos-pods.yaml", "10-hpa.yaml"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        size_t len;
        char *buf = otu_read(files[f], &len);
        for (long k = 0;; k++) {
            cm_arena a = {.chunk_sz = 64};
            obj_object **objs;
            size_t n;
            obj_error err;
            assert_int_equal(obj_yaml_decode(buf, len, &a, &objs, &n, &err), 0);
            int rc = 0;
            tu_alloc_fail_after(k);
            for (size_t j = 0; j < n && !rc; j++)
                rc = obj_defaults(objs[j], &otu_env, &a);
            tu_alloc_fail_after(-1);
            cm_arena_free(&a);
            assert_int_equal(tu_alloc_outstanding(), 0);
            if (!rc)
                break;
            assert_int_equal(rc, -ENOMEM);
            assert_true(k < 10000);
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seeds, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_meta, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_pod_spec, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_pull_policy, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_probes, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_requests_from_limits, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_qos, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_tolerations, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_deployment, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_other_workloads, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_hpa, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_other_kinds, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_canonical_quantities, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_idempotent, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_enomem, otu_setup, otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
