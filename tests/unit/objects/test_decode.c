/*
 * Unit tests for api/objects/decode.c: every seed manifest decodes, field
 * names map to Kubernetes' spelling, every error path gives its exact
 * message and line, and no input (truncated seeds, mutated seeds, random
 * bytes, alias bombs, allocation failures) crashes or leaks.
 */
#include "obj_tu.h"

#include <errno.h>

#define HDR "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"

static void test_seeds_decode(void **state)
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
        int rc = obj_yaml_decode(buf, len, &a, &objs, &n, &err);
        if (rc)
            fail_msg("%s", obj_error_format(&err, otu_seeds[i].file, msg,
                                            sizeof msg));
        assert_int_equal(n, otu_seeds[i].n);
        for (size_t j = 0; j < n; j++)
            assert_non_null(obj_kind_get(objs[j]));
        cm_arena_free(&a);
        free(buf);
    }
}

/* A few fields of the seeds, read back through the generated structs. */
static void test_seed_fields(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("01-deployment.yaml", &len);
    cm_arena a = {0};
    obj_object *o = otu_one(&a, buf);
    assert_int_equal(o->object_case, SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT);
    Skiffpb__V1__Deployment *d = o->deployment;
    assert_string_equal(d->api_version, "apps/v1");
    assert_string_equal(d->metadata->name, "my-app");
    assert_true(d->spec->has_replicas);
    assert_int_equal(d->spec->replicas, 3);
    assert_string_equal(d->spec->selector->match_labels[0]->key, "app");
    Skiffpb__V1__Container *c = d->spec->template_->spec->containers[0];
    assert_string_equal(c->image, "my-app:1.0");
    assert_int_equal(c->ports[0]->container_port, 8080);
    assert_string_equal(c->resources->requests[0]->key, "cpu");
    assert_string_equal(c->resources->requests[0]->value->string, "100m");
    assert_string_equal(c->resources->limits[1]->value->string, "512Mi");
    cm_arena_free(&a);
    free(buf);

    buf = otu_read("05-pod-affinity.yaml", &len);
    o = otu_one(&a, buf);
    Skiffpb__V1__NodeAffinity *na = o->pod->spec->affinity->node_affinity;
    Skiffpb__V1__NodeSelectorRequirement *r =
        na->required_during_scheduling_ignored_during_execution
            ->node_selector_terms[0]
            ->match_expressions[0];
    assert_string_equal(r->operator_, "In");
    assert_int_equal(r->n_values, 2);
    assert_string_equal(r->values[1], "ap-northeast-2c");
    assert_int_equal(
        na->preferred_during_scheduling_ignored_during_execution[0]->weight,
        100);
    cm_arena_free(&a);
    free(buf);

    buf = otu_read("09-pod-probe-kinds.yaml", &len);
    o = otu_one(&a, buf);
    Skiffpb__V1__PodSpec *s = o->pod->spec;
    assert_int_equal(s->containers[0]->liveness_probe->http_get->port->type, 0);
    assert_int_equal(
        s->containers[1]->readiness_probe->tcp_socket->port->int_val, 3306);
    assert_string_equal(s->containers[2]->liveness_probe->exec->command[1],
                        "/tmp/healthy");
    cm_arena_free(&a);
    free(buf);
}

/* The acronyms Kubernetes capitalises, and the other kinds. */
static void test_field_names(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = otu_one(
        &a, HDR "status:\n  podIP: 10.0.0.1\n  hostIP: 192.168.0.2\n"
                "  qosClass: Burstable\n  containerStatuses:\n"
                "  - name: c\n    imageID: sha\n    containerID: cid\n"
                "    restartCount: 2\n    lastState:\n      terminated:\n"
                "        exitCode: 137\n        reason: OOMKilled\n");
    assert_string_equal(o->pod->status->pod_ip, "10.0.0.1");
    assert_string_equal(o->pod->status->host_ip, "192.168.0.2");
    Skiffpb__V1__ContainerStatus *cs = o->pod->status->container_statuses[0];
    assert_string_equal(cs->image_id, "sha");
    assert_string_equal(cs->container_id, "cid");
    assert_int_equal(cs->last_state->terminated->exit_code, 137);

    o = otu_one(&a, "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"
                    "spec:\n  podCIDR: 10.1.0.0/24\n  podCIDRs: [10.1.0.0/24]\n"
                    "  taints:\n  - {key: gpu, value: \"true\", effect: "
                    "NoSchedule}\nstatus:\n  capacity: {cpu: 4, memory: 8Gi, "
                    "pods: 110}\n  nodeInfo:\n    systemUUID: u\n"
                    "    machineID: m\n    bootID: b\n    osImage: x\n");
    assert_string_equal(o->node->spec->pod_cidr, "10.1.0.0/24");
    assert_string_equal(o->node->spec->pod_cidrs[0], "10.1.0.0/24");
    assert_string_equal(o->node->status->capacity[0]->value->string, "4");
    assert_string_equal(o->node->status->node_info->system_uuid, "u");

    o = otu_one(&a, "apiVersion: rbac.authorization.k8s.io/v1\n"
                    "kind: ClusterRole\nmetadata:\n  name: r\nrules:\n"
                    "- nonResourceURLs: [/healthz]\n  verbs: [get]\n");
    assert_string_equal(o->cluster_role->rules[0]->non_resource_urls[0],
                        "/healthz");

    o = otu_one(&a, "apiVersion: coordination.k8s.io/v1\nkind: Lease\n"
                    "metadata: {name: node-1, namespace: kube-node-lease}\n"
                    "spec: {holderIdentity: node-1, "
                    "leaseDurationSeconds: 40}\n");
    assert_int_equal(o->lease->spec->lease_duration_seconds, 40);

    o = otu_one(&a, "apiVersion: v1\nkind: Event\nmetadata: {name: e}\n"
                    "involvedObject: {kind: Pod, name: p}\nreason: "
                    "Scheduled\ncount: 3\nsource: {component: "
                    "default-scheduler}\n");
    assert_int_equal(o->event->count, 3);
    assert_string_equal(o->event->source->component, "default-scheduler");
    cm_arena_free(&a);
}

/* YAML 1.1 scalars: what goes into which field type. */
static void test_scalars(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = otu_one(
        &a, HDR "  labels: {a: \"true\", b: '8080', c: \"\", d: x y}\n"
                "spec:\n  hostNetwork: yes\n  priority: -5\n"
                "  terminationGracePeriodSeconds: 0x10\n"
                "  containers:\n  - name: c\n    image: i\n"
                "    args: []\n    resources: {}\n"
                "    livenessProbe:\n      httpGet: {port: http}\n"
                "    readinessProbe:\n      tcpSocket: {port: 80}\n"
                "  volumes:\n  - name: v\n    emptyDir: {sizeLimit: 0.5}\n"
                "  nodeName: ~\n");
    Skiffpb__V1__PodSpec *s = o->pod->spec;
    assert_string_equal(o->pod->metadata->labels[0]->value, "true");
    assert_string_equal(o->pod->metadata->labels[1]->value, "8080");
    assert_string_equal(o->pod->metadata->labels[2]->value, "");
    assert_string_equal(o->pod->metadata->labels[3]->value, "x y");
    assert_true(s->has_host_network && s->host_network);
    assert_int_equal(s->priority, -5);
    assert_int_equal(s->termination_grace_period_seconds, 16);
    assert_int_equal(s->containers[0]->n_args, 0);
    assert_non_null(s->containers[0]->resources);
    assert_int_equal(s->containers[0]->resources->n_limits, 0);
    Skiffpb__V1__IntOrString *p =
        s->containers[0]->liveness_probe->http_get->port;
    assert_int_equal(p->type, 1);
    assert_string_equal(p->str_val, "http");
    assert_string_equal(s->volumes[0]->empty_dir->size_limit->string, "0.5");
    assert_null(s->node_name); /* null is "not set" */
    cm_arena_free(&a);
}

static void test_documents(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    obj_error err;
    static const char multi[] = "---\n# nothing\n---\n" HDR "---\n...\n---\n"
                                "apiVersion: v1\nkind: Namespace\n"
                                "metadata: {name: prod}\n---\n";
    assert_int_equal(obj_yaml_decode(multi, strlen(multi), &a, &objs, &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(objs[1]->object_case,
                     SKIFFPB__V1__OBJECT__OBJECT_NAMESPACE);
    assert_int_equal(obj_yaml_decode("", 0, &a, &objs, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(obj_yaml_decode("# only\n", 7, &a, &objs, &n, &err), 0);
    assert_int_equal(n, 0);
    /* The buffer need not be NUL-terminated. */
    static const char cut[] = HDR "XXXX";
    assert_int_equal(obj_yaml_decode(cut, sizeof cut - 5, &a, &objs, &n, &err),
                     0);
    assert_int_equal(n, 1);
    cm_arena_free(&a);
}

static void test_issue_example(void **state)
{
    (void)state;
    static const char y[] = "apiVersion: apps/v1\n"            /* 1 */
                            "kind: Deployment\n"               /* 2 */
                            "metadata:\n"                      /* 3 */
                            "  name: my-app\n"                 /* 4 */
                            "spec:\n"                          /* 5 */
                            "  selector:\n"                    /* 6 */
                            "    matchLabels: {app: my-app}\n" /* 7 */
                            "  template:\n"                    /* 8 */
                            "    metadata:\n"                  /* 9 */
                            "      labels: {app: my-app}\n"    /* 10 */
                            "    spec:\n"                      /* 11 */
                            "      containers:\n"              /* 12 */
                            "      - name: app\n"              /* 13 */
                            "        resorces: {}\n";          /* 14 */
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    obj_error err;
    char msg[600];
    assert_int_equal(obj_yaml_decode(y, strlen(y), &a, &objs, &n, &err),
                     OBJ_EDECODE);
    assert_string_equal(
        obj_error_format(&err, "deployment.yaml", msg, sizeof msg),
        "deployment.yaml:14: spec.template.spec.containers[0].resorces: "
        "unknown field");
    assert_int_equal(err.line, 14);
    assert_string_equal(err.path, "spec.template.spec.containers[0].resorces");
    assert_string_equal(err.msg, "unknown field");
    cm_arena_free(&a);
}

static const struct err_case {
    const char *yaml;
    const char *want;
} err_cases[] = {
    /* unknown fields, at every level */
    {HDR "  labelz: {}\n", "t.yaml:5: metadata.labelz: unknown field"},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspek: {}\n",
     "t.yaml:4: spek: unknown field"},
    {HDR "spec:\n  containers:\n  - name: a\n  - name: b\n    imag: x\n",
     "t.yaml:9: spec.containers[1].imag: unknown field"},
    {HDR "spec:\n  containers:\n  - name: a\n    ports:\n"
         "    - {containerPort: 80, hostport: 8080}\n",
     "t.yaml:9: spec.containers[0].ports[0].hostport: unknown field"},
    /* Kubernetes' names only: snake_case is unknown */
    {HDR "spec:\n  node_name: n\n", "t.yaml:6: spec.node_name: unknown field"},
    /* wrong types */
    {HDR "spec:\n  containers:\n  - name: a\n    ports:\n"
         "    - containerPort: \"80\"\n",
     "t.yaml:9: spec.containers[0].ports[0].containerPort: wrong type: "
     "expected an integer, got a string"},
    {HDR "spec:\n  containers:\n  - name: a\n    image: 5\n",
     "t.yaml:8: spec.containers[0].image: wrong type: expected a string, got "
     "an integer"},
    {HDR "spec:\n  nodeSelector:\n    gpu: true\n",
     "t.yaml:7: spec.nodeSelector[gpu]: wrong type: expected a string, got a "
     "boolean"},
    {HDR "  labels:\n    v: 1.0\n",
     "t.yaml:6: metadata.labels[v]: wrong type: expected a string, got a "
     "number"},
    {HDR "spec:\n  containers: {name: a}\n",
     "t.yaml:6: spec.containers: wrong type: expected a list, got a mapping"},
    {HDR "spec: [a]\n",
     "t.yaml:5: spec: wrong type: expected a mapping, got a list"},
    {HDR "spec:\n  hostNetwork: \"true\"\n",
     "t.yaml:6: spec.hostNetwork: wrong type: expected a boolean, got a "
     "string"},
    {HDR "spec:\n  containers:\n  - ~\n",
     "t.yaml:7: spec.containers[0]: wrong type: expected a mapping, got null"},
    {HDR "spec:\n  containers:\n  - name: a\n    args: [a, [b]]\n",
     "t.yaml:8: spec.containers[0].args[1]: wrong type: expected a string, "
     "got a list"},
    {HDR "spec:\n  containers:\n  - name: a\n    livenessProbe:\n"
         "      tcpSocket: {port: 1.5}\n",
     "t.yaml:9: spec.containers[0].livenessProbe.tcpSocket.port: wrong type: "
     "expected an integer or a string, got a number"},
    {HDR "spec:\n  containers:\n  - name: a\n    ports:\n"
         "    - containerPort: 99999999999\n",
     "t.yaml:9: spec.containers[0].ports[0].containerPort: integer "
     "99999999999 out of range [-2147483648, 2147483647]"},
    {HDR "spec:\n  priority: 99999999999999999999\n",
     "t.yaml:6: spec.priority: integer 99999999999999999999 out of range "
     "[-2147483648, 2147483647]"},
    /* quantities */
    {HDR "spec:\n  containers:\n  - name: a\n    resources:\n      limits:\n"
         "        cpu: 5OOm\n",
     "t.yaml:10: spec.containers[0].resources.limits[cpu]: bad quantity "
     "\"5OOm\""},
    {HDR "spec:\n  containers:\n  - name: a\n    resources:\n      requests:\n"
         "        memory: 1e999\n",
     "t.yaml:10: spec.containers[0].resources.requests[memory]: bad quantity "
     "\"1e999\": out of range"},
    {HDR "spec:\n  containers:\n  - name: a\n    resources:\n      requests:\n"
         "        cpu: true\n",
     "t.yaml:10: spec.containers[0].resources.requests[cpu]: wrong type: "
     "expected a quantity, got a boolean"},
    {HDR "spec:\n  containers:\n  - name: a\n    resources:\n"
         "      requests: [1]\n",
     "t.yaml:9: spec.containers[0].resources.requests: wrong type: expected "
     "a mapping, got a list"},
    /* apiVersion and kind */
    {"kind: Pod\nmetadata: {name: p}\n",
     "t.yaml:1: apiVersion: missing required field"},
    {"# a comment\n\napiVersion: v1\nmetadata: {name: p}\n",
     "t.yaml:3: kind: missing required field"},
    {"apiVersion: v1\nkind: Service\n",
     "t.yaml:2: kind: unsupported kind \"Service\""},
    {"apiVersion: v1\nkind: Deployment\n",
     "t.yaml:1: apiVersion: no matches for kind \"Deployment\" in version "
     "\"v1\" (want \"apps/v1\")"},
    {"apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\n",
     "t.yaml:1: apiVersion: no matches for kind \"HorizontalPodAutoscaler\" "
     "in version \"autoscaling/v1\" (want \"autoscaling/v2\")"},
    {"apiVersion: 1\nkind: Pod\n",
     "t.yaml:1: apiVersion: wrong type: expected a string, got an integer"},
    {"apiVersion: v1\nkind: [Pod]\n",
     "t.yaml:2: kind: wrong type: expected a string, got a list"},
    {"- a\n- b\n",
     "t.yaml:1: expected a mapping (a Kubernetes object), got a list"},
    {"just text\n",
     "t.yaml:1: expected a mapping (a Kubernetes object), got a string"},
    /* duplicates and odd keys */
    {HDR "  name: q\n", "t.yaml:5: metadata.name: duplicate field"},
    {HDR "  labels: {a: b, a: c}\n",
     "t.yaml:5: metadata.labels[a]: duplicate key"},
    {HDR "  labels: {[a]: b}\n", "t.yaml:5: metadata.labels: keys must be "
                                 "strings"},
    {HDR "? [x]\n: y\n", "t.yaml:5: field names must be strings"},
    {HDR "  namespace: \"a\\0b\"\n",
     "t.yaml:5: metadata.namespace: strings must not contain NUL"},
    /* YAML syntax */
    {HDR "  labels: {a: b\n",
     "t.yaml:6: yaml: while parsing a flow mapping: did not find expected "
     "',' or '}'"},
    {"a: b\n c: d\n",
     "t.yaml:2: yaml: mapping values are not allowed in this context"},
    {"a: *nope\n", "t.yaml:1: yaml: found undefined alias"},
    {"a: \"\\q\"\n", "t.yaml:1: yaml: while parsing a quoted scalar: found "
                     "unknown escape character"},
    /* an error in the second document counts lines from the file's top */
    {HDR "---\n" HDR "spec: {nodeName: 1}\n",
     "t.yaml:10: spec.nodeName: wrong type: expected a string, got an "
     "integer"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof err_cases / sizeof *err_cases; i++) {
        const char *got = otu_decode_err(err_cases[i].yaml);
        if (strcmp(got, err_cases[i].want))
            fail_msg("case %zu:\n got: %s\nwant: %s", i, got,
                     err_cases[i].want);
    }
}

/* A file that fails is refused whole: objects before the error are not
 * returned (out and n are untouched). */
static void test_error_refuses_file(void **state)
{
    (void)state;
    static const char y[] = HDR "---\n" HDR "bogus: 1\n";
    cm_arena a = {0};
    obj_object **objs = NULL;
    size_t n = 77;
    obj_error err;
    assert_int_equal(obj_yaml_decode(y, strlen(y), &a, &objs, &n, &err),
                     OBJ_EDECODE);
    assert_null(objs);
    assert_int_equal(n, 77);
    cm_arena_free(&a);
}

/* Aliases are legal YAML: a reference to a whole container works. */
static void test_aliases(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = otu_one(&a, HDR "spec:\n  containers:\n"
                                    "  - &c {name: a, args: &v [x, z]}\n"
                                    "  - {name: b, command: *v}\n"
                                    "  initContainers: [*c]\n");
    assert_string_equal(o->pod->spec->containers[1]->command[1], "z");
    assert_string_equal(o->pod->spec->init_containers[0]->name, "a");
    cm_arena_free(&a);
}

static void test_alias_budget(void **state)
{
    (void)state;
    /* 200 values x 100 expressions x 100 terms = 2 * 10^6 > the budget. */
    char *y = malloc(20000);
    assert_non_null(y);
    int o = snprintf(y, 20000,
                     HDR "spec:\n  containers:\n  - name: a\n"
                         "    args: &v [");
    for (int i = 0; i < 200; i++)
        o += snprintf(y + o, 20000 - (size_t)o, "%sa", i ? "," : "");
    o += snprintf(y + o, 20000 - (size_t)o,
                  "]\n  affinity:\n    nodeAffinity:\n"
                  "      requiredDuringSchedulingIgnoredDuringExecution:\n"
                  "        nodeSelectorTerms: [");
    for (int t = 0; t < 100; t++) {
        o += snprintf(y + o, 20000 - (size_t)o, "%s", t ? "," : "");
        if (t == 0) {
            o += snprintf(y + o, 20000 - (size_t)o, "&t {matchExpressions: [");
            for (int e = 0; e < 100; e++)
                o += snprintf(y + o, 20000 - (size_t)o,
                              "%s{key: k, operator: In, values: *v}",
                              e ? "," : "");
            o += snprintf(y + o, 20000 - (size_t)o, "]}");
        } else {
            o += snprintf(y + o, 20000 - (size_t)o, "*t");
        }
    }
    snprintf(y + o, 20000 - (size_t)o, "]\n");
    const char *got = otu_decode_err(y);
    assert_non_null(strstr(got, "document too large"));
    free(y);
}

/* Input shapes that are slow for a naive decoder stay fast: deep flow
 * nesting (libyaml is quadratic in it) and huge mappings (duplicate keys
 * are found by sorting). */
static void test_depth_and_size(void **state)
{
    (void)state;
    size_t n = 200000;
    char *y = malloc(2 * n + 64);
    assert_non_null(y);
    int o = snprintf(y, 64, "apiVersion: v1\nkind: Pod\nspec: ");
    memset(y + o, '[', n);
    memset(y + o + n, ']', n);
    y[o + 2 * n] = '\0';
    assert_string_equal(otu_decode_err(y),
                        "t.yaml:3: yaml: nested deeper than 100 levels");
    free(y);

    /* 100 levels deep is fine as far as YAML goes. */
    char small[512];
    o = snprintf(small, sizeof small, "apiVersion: v1\nkind: Pod\nx: ");
    for (int i = 0; i < 99; i++)
        small[o++] = '[';
    for (int i = 0; i < 99; i++)
        small[o++] = ']';
    small[o] = '\0';
    assert_string_equal(otu_decode_err(small), "t.yaml:3: x: unknown field");

    /* 50000 labels, the last one repeating the first. */
    size_t cap = 50000 * 24 + 128;
    y = malloc(cap);
    assert_non_null(y);
    size_t w = (size_t)snprintf(y, cap, HDR "  labels:\n");
    for (int i = 0; i < 50000; i++)
        w += (size_t)snprintf(y + w, cap - w, "    k%d: v\n", i);
    snprintf(y + w, cap - w, "    k0: again\n");
    assert_string_equal(otu_decode_err(y),
                        "t.yaml:50006: metadata.labels[k0]: duplicate key");
    y[w] = '\0';
    cm_arena a = {0};
    obj_object *obj = otu_one(&a, y);
    assert_int_equal(obj->pod->metadata->n_labels, 50000);
    cm_arena_free(&a);
    free(y);
}

/* Never crash: every prefix of every seed, and byte mutations. */
static void test_truncated_and_mutated(void **state)
{
    (void)state;
    uint64_t seed = tu_seed(7);
    print_message("seed %llu\n", (unsigned long long)seed);
    for (size_t i = 0; i < OTU_N_SEEDS; i++) {
        size_t len;
        char *buf = otu_read(otu_seeds[i].file, &len);
        for (size_t cut = 0; cut <= len; cut++) {
            cm_arena a = {0};
            obj_object **objs;
            size_t n;
            obj_error err;
            int rc = obj_yaml_decode(buf, cut, &a, &objs, &n, &err);
            assert_true(rc == 0 || rc == OBJ_EDECODE);
            cm_arena_free(&a);
        }
        static const char noise[] = "\0\t\n :-[]{}\"'&*!|>%@`#,?~\xff\xc3";
        for (int k = 0; k < 300; k++) {
            char *m = malloc(len + 1);
            assert_non_null(m);
            memcpy(m, buf, len);
            for (int f = 0; f < 3; f++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                size_t at = (size_t)(seed >> 33) % len;
                m[at] = noise[(seed >> 13) % (sizeof noise - 1)];
            }
            cm_arena a = {0};
            obj_object **objs;
            size_t n;
            obj_error err;
            char msg[700];
            int rc = obj_yaml_decode(m, len, &a, &objs, &n, &err);
            assert_true(rc == 0 || rc == OBJ_EDECODE);
            if (rc)
                obj_error_format(&err, "m.yaml", msg, sizeof msg);
            cm_arena_free(&a);
            free(m);
        }
        free(buf);
    }
}

static void test_garbage(void **state)
{
    (void)state;
    uint64_t seed = tu_seed(11);
    char buf[512];
    for (int k = 0; k < 3000; k++) {
        size_t len = (size_t)(seed >> 40) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = (char)(seed >> 56);
        }
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        cm_arena a = {0};
        obj_object **objs;
        size_t n;
        obj_error err;
        int rc = obj_yaml_decode(buf, len, &a, &objs, &n, &err);
        assert_true(rc == 0 || rc == OBJ_EDECODE);
        cm_arena_free(&a);
    }
}

/* Every allocation failure returns -ENOMEM and leaks nothing. */
static void test_enomem(void **state)
{
    (void)state;
    size_t len;
    char *buf = otu_read("07-qos-pods.yaml", &len);
    for (long k = 0;; k++) {
        cm_arena a = {.chunk_sz = 256};
        obj_object **objs;
        size_t n;
        obj_error err;
        tu_alloc_fail_after(k);
        int rc = obj_yaml_decode(buf, len, &a, &objs, &n, &err);
        tu_alloc_fail_after(-1);
        cm_arena_free(&a);
        assert_int_equal(tu_alloc_outstanding(), 0);
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_string_equal(err.msg, "out of memory");
        assert_true(k < 10000);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seeds_decode, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_seed_fields, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_field_names, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_scalars, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_documents, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_issue_example, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_errors, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_error_refuses_file, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_aliases, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_alias_budget, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_depth_and_size, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_mutated, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_garbage, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_enomem, otu_setup, otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
