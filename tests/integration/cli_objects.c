/*
 * Integration test of skiffctl's object commands (kubectl's interface): a
 * real one-member skiffd and the real skiffctl binary run as a child with
 * its output on pipes.
 *
 * Covered: every example manifest applies unchanged and reads back with
 * `get -o yaml` holding the same fields; apply twice says "unchanged";
 * a spec change says "configured" and bumps generation; a manifest with an
 * unknown field exits 1 naming file:line:path and writes nothing; create,
 * replace, delete (by name, file and selector); label, annotate, scale,
 * taint and cordon round trips; kubectl's table columns for pods (with
 * STATUS computed from states written straight to the store), deployments
 * and nodes; two processes applying the same object at once both
 * succeed (the loser of each compare re-reads and retries); and `get -w`:
 * rows in order for additions, updates and deletions, filtered by -n, -l
 * and NAME, a relist after a dropped connection and a compaction,
 * --watch-only with -o name, -o yaml documents, and etcdctl's `-w json`
 * on keys.
 *
 * Usage: cli_objects <skiffctl> <skiffd> <examples/manifests dir>.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "obj_int.h"
#include "objects.h"
#include "skiff.h"
#include "srv.h"
#include "tu.h"

#define OUT_CAP (256 * 1024)
#define RUN_TIMEOUT_MS 60000

static const char *ctl_bin, *srv_bin, *manifests;
static srv server;
static char endpoint[64];
static char tmpdir[256];

typedef struct run_res {
    int code;
    char out[OUT_CAP];
    char err[OUT_CAP];
} run_res;

static run_res R;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts skiffctl --endpoints <server> args...; stdout and stderr on
 * pipes (fds[0], fds[1]). */
static pid_t spawn_ctl(const char *const *args, int fds[2])
{
    const char *argv[64];
    int n = 0;
    argv[n++] = ctl_bin;
    argv[n++] = "--endpoints";
    argv[n++] = endpoint;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int out[2], err[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(ctl_bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    fds[0] = out[0];
    fds[1] = err[0];
    return pid;
}

/* Collects a child's output into r and waits for it. */
static void collect(pid_t pid, int fds[2], run_res *r)
{
    size_t len[2] = {0, 0};
    int open_[2] = {1, 1};
    int64_t deadline = now_ms() + RUN_TIMEOUT_MS;
    while ((open_[0] || open_[1]) && now_ms() < deadline) {
        struct pollfd p[2] = {{open_[0] ? fds[0] : -1, POLLIN, 0},
                              {open_[1] ? fds[1] : -1, POLLIN, 0}};
        if (poll(p, 2, 1000) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *buf = i ? r->err : r->out;
            ssize_t n = read(fds[i], buf + len[i], OUT_CAP - 1 - len[i]);
            if (n <= 0)
                open_[i] = 0;
            else
                len[i] += (size_t)n;
        }
    }
    r->out[len[0]] = 0;
    r->err[len[1]] = 0;
    if (open_[0] || open_[1])
        kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    close(fds[0]);
    close(fds[1]);
}

static void run_v(const char *const *args)
{
    int fds[2];
    pid_t pid = spawn_ctl(args, fds);
    collect(pid, fds, &R);
}

#define run(...)                                                               \
    do {                                                                       \
        const char *a_[] = {__VA_ARGS__, NULL};                                \
        run_v(a_);                                                             \
    } while (0)

static void expect(int code, const char *out)
{
    if (R.code != code || (out && strcmp(R.out, out)))
        fprintf(stderr, "exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", R.code,
                code, R.out, R.err);
    assert_int_equal(R.code, code);
    if (out)
        assert_string_equal(R.out, out);
}

static void expect_has(const char *where, const char *needle)
{
    if (!strstr(where, needle))
        fprintf(stderr, "missing \"%s\" in:\n%s\n", needle, where);
    assert_non_null(strstr(where, needle));
}

/* Writes a file under the test's temp dir; returns its path (static). */
static const char *write_tmp(const char *name, const char *text)
{
    static char path[2][512];
    static int which;
    char *p = path[which++ & 1];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---- "same fields" ------------------------------------------------------- */

/* Whether every field set in want is set in got with the same value.
 * Repeated fields compare their first count(want) items: defaulting may
 * append (a pod's not-ready tolerations).  Quantities compare by value
 * (the store keeps the canonical form). */
static void same_fields(const ProtobufCMessage *want,
                        const ProtobufCMessage *got, const char *path)
{
    const ProtobufCMessageDescriptor *d = want->descriptor;
    assert_ptr_equal(d, got->descriptor);
    if (d == &skiffpb__v1__quantity__descriptor) {
        obj_quantity a, b;
        const Skiffpb__V1__Quantity *qa = (const void *)want,
                                    *qb = (const void *)got;
        assert_int_equal(obj_quantity_parse(qa->string, &a), 0);
        assert_int_equal(obj_quantity_parse(qb->string, &b), 0);
        if (obj_quantity_cmp(&a, &b))
            fail_msg("%s: %s != %s", path, qa->string, qb->string);
        return;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s", path, f->name);
        const char *wp = (const char *)want + f->offset;
        const char *gp = (const char *)got + f->offset;
        size_t n = 1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)((const char *)want + f->quantifier_offset);
            size_t gn =
                *(const size_t *)((const char *)got + f->quantifier_offset);
            if (gn < n)
                fail_msg("%s: %zu items, want %zu", sub, gn, n);
            wp = *(const char *const *)wp;
            gp = *(const char *const *)gp;
        } else if (f->type == PROTOBUF_C_TYPE_STRING ||
                   f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (!*(void *const *)wp)
                continue;
            if (!*(void *const *)gp)
                fail_msg("%s: missing", sub);
        } else {
            if (!*(const protobuf_c_boolean *)((const char *)want +
                                               f->quantifier_offset))
                continue;
            if (!*(const protobuf_c_boolean *)((const char *)got +
                                               f->quantifier_offset))
                fail_msg("%s: missing", sub);
        }
        for (size_t j = 0; j < n; j++) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                same_fields(((ProtobufCMessage *const *)wp)[j],
                            ((ProtobufCMessage *const *)gp)[j], sub);
            } else if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *ws = ((const char *const *)wp)[j];
                const char *gs = ((const char *const *)gp)[j];
                if (strcmp(ws, gs))
                    fail_msg("%s: \"%s\" != \"%s\"", sub, ws, gs);
            } else {
                size_t sz = f->type == PROTOBUF_C_TYPE_INT64 ? 8
                            : f->type == PROTOBUF_C_TYPE_BOOL
                                ? sizeof(protobuf_c_boolean)
                                : 4;
                if (memcmp(wp + j * sz, gp + j * sz, sz))
                    fail_msg("%s: differs", sub);
            }
        }
    }
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    memset(&server, 0, sizeof server);
    if (srv_spawn(&server, srv_bin, 0, NULL))
        return -1;
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", server.port);
    return tu_tmpdir(tmpdir, sizeof tmpdir) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    srv_cleanup(&server);
    tu_rmrf(tmpdir);
    return 0;
}

/* ---- tests --------------------------------------------------------------- */

static const char *const seeds[] = {
    "01-deployment.yaml",         "02-daemonset.yaml",
    "03-statefulset.yaml",        "04-pod-nodeselector.yaml",
    "05-pod-affinity.yaml",       "06-pod-toleration.yaml",
    "07-qos-pods.yaml",           "08-pod-probes.yaml",
    "09-pod-probe-kinds.yaml",    "10-hpa.yaml",
    "11-deployment-for-hpa.yaml",
};

static void test_examples_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", manifests, seeds[i]);
        run("apply", "-f", path);
        expect(0, NULL);
        size_t len;
        char *text = read_all(path, &len);
        cm_arena a = {0};
        obj_object **objs;
        size_t n;
        obj_error err;
        assert_int_equal(obj_yaml_decode(text, len, &a, &objs, &n, &err), 0);
        for (size_t j = 0; j < n; j++) {
            const obj_kind *k = obj_kind_get(objs[j]);
            const char *name = obj_object_meta(objs[j])->name;
            run("get", k->resource, name, "-o", "yaml");
            expect(0, NULL);
            obj_object **back;
            size_t nb;
            if (obj_yaml_decode(R.out, strlen(R.out), &a, &back, &nb, &err))
                fail_msg("%s: -o yaml does not decode: line %d %s: %s\n%s",
                         seeds[i], err.line, err.path, err.msg, R.out);
            assert_int_equal(nb, 1);
            same_fields(obj_object_msg(objs[j]), obj_object_msg(back[0]), name);
            /* Server-set fields are there. */
            expect_has(R.out, "  uid: ");
            expect_has(R.out, "  resourceVersion: \"");
            expect_has(R.out, "  creationTimestamp: \"");
            expect_has(R.out, "  generation: ");
        }
        cm_arena_free(&a);
        free(text);
    }
    /* The whole directory again: nothing but the Deployment that 01 and 11
     * both define changes. */
    run("apply", "-f", manifests);
    expect(0, NULL);
    expect_has(R.out, "pod/qos-burstable unchanged\n");
    expect_has(R.out, "horizontalpodautoscaler.autoscaling/my-app-hpa "
                      "unchanged\n");
    expect_has(R.out, "statefulset.apps/redis unchanged\n");
}

static void test_apply_unchanged_configured(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/01-deployment.yaml", manifests);
    run("apply", "-f", path);
    expect(0, "deployment.apps/my-app created\n");
    run("apply", "-f", path);
    expect(0, "deployment.apps/my-app unchanged\n");
    /* -o yaml output applies back as unchanged (it round-trips). */
    run("get", "deploy", "my-app", "-o", "yaml");
    expect(0, NULL);
    expect_has(R.out, "  generation: 1\n");
    const char *back = write_tmp("back.yaml", R.out);
    run("apply", "-f", back);
    expect(0, "deployment.apps/my-app unchanged\n");
    /* A replicas change: configured, generation 2. */
    size_t len;
    char *text = read_all(path, &len);
    char *r = strstr(text, "replicas: 3");
    assert_non_null(r);
    r[10] = '5';
    const char *mod = write_tmp("mod.yaml", text);
    free(text);
    run("apply", "-f", mod);
    expect(0, "deployment.apps/my-app configured\n");
    run("get", "deployment.apps", "my-app", "-o", "yaml");
    expect(0, NULL);
    expect_has(R.out, "  generation: 2\n");
    expect_has(R.out, "  replicas: 5\n");
    /* Labels only: configured, no generation bump. */
    run("label", "deploy", "my-app", "team=a");
    expect(0, "deployment.apps/my-app labeled\n");
    run("apply", "-f", mod);
    expect(0, "deployment.apps/my-app unchanged\n");
    run("get", "deploy/my-app", "-o", "yaml");
    expect_has(R.out, "  generation: 2\n");
    expect_has(R.out, "    team: a\n");
    /* create of an existing object: AlreadyExists. */
    run("create", "-f", mod);
    expect(1, "");
    expect_has(R.err, "Error from server (AlreadyExists): error when "
                      "creating \"");
    expect_has(R.err, "deployments.apps \"my-app\" already exists");
    /* replace needs the object and overwrites labels. */
    run("replace", "-f", path);
    expect(0, "deployment.apps/my-app replaced\n");
    run("get", "deploy", "my-app", "-o", "yaml");
    assert_null(strstr(R.out, "team: a"));
    expect_has(R.out, "  generation: 3\n");
    run("delete", "-f", path);
    expect(0, "deployment.apps \"my-app\" deleted\n");
    run("replace", "-f", path);
    expect(1, "");
    expect_has(R.err, "Error from server (NotFound)");
    run("create", "-f", path);
    expect(0, "deployment.apps/my-app created\n");
}

static void test_unknown_field_writes_nothing(void **state)
{
    (void)state;
    const char *bad = write_tmp(
        "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\n"
                    "spec:\n  containers:\n  - name: a\n    image: i\n---\n"
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n"
                    "spec:\n  containers:\n  - name: a\n    image: i\n"
                    "    resorces: {}\n");
    run("apply", "-f", bad);
    expect(1, "");
    expect_has(R.err, "bad.yaml:18: spec.containers[0].resorces: unknown "
                      "field");
    run("get", "pod", "good");
    expect(1, "");
    expect_has(R.err, "Error from server (NotFound): pods \"good\" not "
                      "found");
    run("get", "pods");
    expect(0, "");
    expect_has(R.err, "No resources found in default namespace.");
    /* Validation refusals name the field too, and write nothing. */
    const char *inv = write_tmp(
        "inv.yaml", "apiVersion: apps/v1\nkind: Deployment\n"
                    "metadata: {name: web}\nspec:\n  replicas: -1\n"
                    "  selector: {matchLabels: {app: w}}\n  template:\n"
                    "    metadata: {labels: {app: w}}\n"
                    "    spec: {containers: [{name: a, image: i}]}\n");
    run("apply", "-f", inv);
    expect(1, "");
    expect_has(R.err, "Deployment.apps \"web\" is invalid: spec.replicas: "
                      "Invalid value: -1: must be greater than or equal to "
                      "0");
    run("get", "deploy", "web");
    expect(1, "");
}

static void test_delete(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/07-qos-pods.yaml", manifests);
    run("apply", "-f", path);
    expect(0, NULL);
    run("delete", "pod", "qos-guaranteed");
    expect(0, "pod \"qos-guaranteed\" deleted\n");
    run("get", "pod", "qos-guaranteed");
    expect(1, "");
    run("delete", "pod", "qos-guaranteed");
    expect(1, "");
    expect_has(R.err, "Error from server (NotFound): pods \"qos-guaranteed\" "
                      "not found");
    run("label", "pod", "qos-burstable", "app=x");
    expect(0, "pod/qos-burstable labeled\n");
    run("delete", "pods", "-l", "app=x");
    expect(0, "pod \"qos-burstable\" deleted\n");
    run("delete", "-f", path, "--ignore-not-found");
    expect(0, "pod \"qos-besteffort\" deleted\n");
    run("get", "po", "-A");
    expect(0, "");
}

static void test_edits(void **state)
{
    (void)state;
    const char *node =
        write_tmp("node.yaml",
                  "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"
                  "  labels: {node-role.kubernetes.io/control-plane: \"\"}\n"
                  "status:\n  conditions: [{type: Ready, status: \"True\"}]\n"
                  "  nodeInfo: {kubeletVersion: v1.30.0}\n");
    run("apply", "-f", node);
    expect(0, "node/n1 created\n");
    run("label", "nodes", "n1", "zone=a");
    expect(0, "node/n1 labeled\n");
    run("label", "no", "n1", "zone=b");
    expect(1, "");
    expect_has(R.err, "error: 'zone' already has a value (a), and "
                      "--overwrite is false");
    run("label", "node/n1", "zone=b", "--overwrite");
    expect(0, "node/n1 labeled\n");
    run("get", "nodes", "-l", "zone in (b,c)", "-o", "name");
    expect(0, "node/n1\n");
    run("label", "nodes", "n1", "zone-");
    expect(0, "node/n1 labeled\n");
    run("get", "nodes", "-l", "zone", "-o", "name");
    expect(0, "");
    run("annotate", "node", "n1", "note=hello world");
    expect(0, "node/n1 annotated\n");
    run("get", "node", "n1", "-o", "json");
    expect_has(R.out, "\"note\": \"hello world\"");
    run("annotate", "node", "n1", "note-");
    expect(0, "node/n1 annotated\n");
    run("taint", "nodes", "n1", "dedicated=gpu:NoSchedule");
    expect(0, "node/n1 tainted\n");
    run("taint", "nodes", "n1", "dedicated=gpu:NoSchedule");
    expect(1, "");
    run("taint", "nodes", "n1", "evict:NoExecute");
    expect(0, "node/n1 tainted\n");
    run("get", "node", "n1", "-o", "yaml");
    expect_has(R.out, "  - key: dedicated\n    value: gpu\n"
                      "    effect: NoSchedule\n");
    expect_has(R.out, "  - key: evict\n    effect: NoExecute\n"
                      "    timeAdded: \"");
    run("taint", "nodes", "n1", "dedicated-");
    expect(0, "node/n1 untainted\n");
    run("taint", "nodes", "n1", "evict:NoExecute-");
    expect(0, "node/n1 untainted\n");
    run("get", "node", "n1", "-o", "yaml");
    assert_null(strstr(R.out, "taints"));
    run("cordon", "n1");
    expect(0, "node/n1 cordoned\n");
    run("cordon", "n1");
    expect(0, "node/n1 already cordoned\n");
    run("get", "nodes");
    expect_has(R.out, "Ready,SchedulingDisabled");
    run("uncordon", "n1");
    expect(0, "node/n1 uncordoned\n");
    run("get", "node", "n1", "-o", "yaml");
    assert_null(strstr(R.out, "unschedulable"));
    /* scale goes through admission: -1 is refused. */
    char path[512];
    snprintf(path, sizeof path, "%s/03-statefulset.yaml", manifests);
    run("apply", "-f", path);
    expect(0, NULL);
    run("scale", "sts", "redis", "--replicas=5");
    expect(0, "statefulset.apps/redis scaled\n");
    run("scale", "statefulset", "redis", "--replicas", "-1");
    expect(1, "");
    expect_has(R.err, "Invalid value: -1");
    run("get", "sts", "redis", "-o", "yaml");
    expect_has(R.out, "  replicas: 5\n");
    run("describe", "node", "n1");
    expect(0, NULL);
    expect_has(R.out, "Name:         n1\n");
    expect_has(R.out, "Roles:        control-plane\n");
    expect_has(R.out, "Events:");
    run("api-resources");
    expect(0, NULL);
    expect_has(R.out, "deployments                deploy       apps/v1");
}

/* Writes an object straight to the store (as the node agent's status
 * updates will), bypassing admission. */
static void put_object(skiff_client *c, const char *yaml)
{
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    obj_error err;
    if (obj_yaml_decode(yaml, strlen(yaml), &a, &objs, &n, &err))
        fail_msg("decode: %d %s: %s", err.line, err.path, err.msg);
    assert_int_equal(obj_defaults(objs[0], NULL, &a), 0);
    char key[256];
    assert_int_equal(obj_object_key(objs[0], key, sizeof key), 0);
    size_t len = protobuf_c_message_get_packed_size(&objs[0]->base);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    protobuf_c_message_pack(&objs[0]->base, buf);
    assert_int_equal(skiff_put(c, key, strlen(key), buf, len, 0, NULL), 0);
    free(buf);
    cm_arena_free(&a);
}

/* The row of `name` in a table, split into whitespace-separated cells;
 * returns the count. */
static int row_of(const char *table, const char *name, char cells[16][64])
{
    size_t nl = strlen(name);
    for (const char *l = table; l && *l;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, nl) || l[nl] != ' ')
            continue;
        int n = 0;
        const char *p = l;
        while (*p && *p != '\n' && n < 16) {
            while (*p == ' ')
                p++;
            size_t k = 0;
            while (*p && *p != ' ' && *p != '\n' && k < 63)
                cells[n][k++] = *p++;
            cells[n][k] = 0;
            if (k)
                n++;
        }
        return n;
    }
    fail_msg("no row %s in:\n%s", name, table);
    return 0;
}

#define POD(name, extra_meta, status)                                          \
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " name "\n"                 \
    "  creationTimestamp: \"2026-01-01T00:00:00Z\"\n" extra_meta               \
    "spec:\n  nodeName: n1\n  containers:\n  - {name: a, image: i}\n"          \
    "  - {name: b, image: i}\nstatus:\n  podIP: 10.0.0.9\n" status

#define WAITING(r) "{name: a, state: {waiting: {reason: " r "}}}"
#define TERMINATED(r, code)                                                    \
    "{name: a, state: {terminated: {reason: " r ", exitCode: " code "}}}"
#define RUNNING(ready) "{name: b, state: {running: {}}, ready: " ready "}"

static const struct pod_case {
    const char *yaml, *name, *ready, *status, *restarts;
} pods[] = {
    {POD("p-pending", "", "  phase: Pending\n"), "p-pending", "0/2", "Pending",
     "0"},
    {POD("p-creating", "",
         "  phase: Pending\n  containerStatuses:\n"
         "  - " WAITING("ContainerCreating") "\n"),
     "p-creating", "0/2", "ContainerCreating", "0"},
    {POD("p-running", "",
         "  phase: Running\n  containerStatuses:\n"
         "  - {name: a, state: {running: {}}, ready: true}\n"
         "  - " RUNNING("true") "\n"),
     "p-running", "2/2", "Running", "0"},
    {POD("p-crash", "",
         "  phase: Running\n  containerStatuses:\n"
         "  - {name: a, state: {waiting: {reason: CrashLoopBackOff}}, "
         "restartCount: 4}\n  - " RUNNING("true") "\n"),
     "p-crash", "1/2", "CrashLoopBackOff", "4"},
    {POD("p-oom", "",
         "  phase: Running\n  containerStatuses:\n"
         "  - " TERMINATED("OOMKilled", "137") "\n  - " RUNNING("false") "\n"),
     "p-oom", "0/2", "OOMKilled", "0"},
    {POD("p-done", "",
         "  phase: Succeeded\n  containerStatuses:\n"
         "  - " TERMINATED(
             "Completed",
             "0") "\n"
                  "  - {name: b, state: {terminated: {reason: Completed, "
                  "exitCode: 0}}}\n"),
     "p-done", "0/2", "Completed", "0"},
    {POD("p-error", "",
         "  phase: Failed\n  containerStatuses:\n"
         "  - " TERMINATED("Error", "1") "\n"),
     "p-error", "0/2", "Error", "0"},
    {POD("p-evicted", "",
         "  phase: Failed\n  reason: Evicted\n"
         "  message: \"The node was low on resource: memory.\"\n"),
     "p-evicted", "0/2", "Evicted", "0"},
    {POD("p-pull", "",
         "  phase: Pending\n  containerStatuses:\n"
         "  - " WAITING("ImagePullBackOff") "\n"),
     "p-pull", "0/2", "ImagePullBackOff", "0"},
    {POD("p-term", "  deletionTimestamp: \"2026-01-01T00:01:00Z\"\n",
         "  phase: Running\n  containerStatuses:\n"
         "  - " RUNNING("true") "\n"),
     "p-term", "1/2", "Terminating", "0"},
    {POD("p-initcrash", "",
         "  phase: Pending\n  initContainerStatuses:\n"
         "  - {name: i, state: {waiting: {reason: CrashLoopBackOff}}, "
         "restartCount: 2}\n"),
     "p-initcrash", "0/2", "Init:CrashLoopBackOff", "2"},
    {POD("p-notready", "",
         "  phase: Running\n  containerStatuses:\n"
         "  - " TERMINATED("Completed", "0") "\n  - " RUNNING("true") "\n"),
     "p-notready", "1/2", "NotReady", "0"},
};

/* kubectl's STATUS for pods whose status the node agent wrote: called
 * directly, since the store's admission keeps clients from writing a
 * pod's status (only the status subresource may, which has no wire
 * route yet). */
static void test_pod_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pods / sizeof *pods; i++) {
        cm_arena a = {0};
        obj_object **objs;
        size_t n;
        obj_error err;
        assert_int_equal(obj_yaml_decode(pods[i].yaml, strlen(pods[i].yaml), &a,
                                         &objs, &n, &err),
                         0);
        char status[64], ready[16], restarts[16];
        int r, t, rs;
        const char *last;
        octl_pod_status(objs[0]->pod, status, sizeof status, &r, &t, &rs,
                        &last);
        snprintf(ready, sizeof ready, "%d/%d", r, t);
        snprintf(restarts, sizeof restarts, "%d", rs);
        if (strcmp(status, pods[i].status))
            fail_msg("%s: STATUS %s, want %s", pods[i].name, status,
                     pods[i].status);
        assert_string_equal(ready, pods[i].ready);
        assert_string_equal(restarts, pods[i].restarts);
        cm_arena_free(&a);
    }
}

static void test_tables(void **state)
{
    (void)state;
    skiff_client *c;
    const char *eps[] = {endpoint};
    skiff_config cfg = {.endpoints = eps, .n_endpoints = 1};
    assert_int_equal(skiff_client_create(&c, &cfg), 0);
    /* Written raw: admission (in skiffd) creates them, so pods and the
     * Deployment start with a fresh status; a Node keeps its own. */
    for (size_t i = 0; i < sizeof pods / sizeof *pods; i++)
        put_object(c, pods[i].yaml);
    put_object(c, "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"
                  "  creationTimestamp: \"2026-01-01T00:00:00Z\"\n"
                  "  labels: {node-role.kubernetes.io/worker: \"\"}\n"
                  "spec: {unschedulable: true}\n"
                  "status:\n  conditions: [{type: Ready, status: \"False\"}]\n"
                  "  nodeInfo: {kubeletVersion: v1.30.1}\n");
    put_object(c, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                  "  name: web\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n"
                  "spec:\n  replicas: 3\n  selector: {matchLabels: {app: w}}\n"
                  "  template:\n    metadata: {labels: {app: w}}\n"
                  "    spec: {containers: [{name: a, image: nginx}]}\n"
                  "status: {replicas: 3, readyReplicas: 2, updatedReplicas: 3,"
                  " availableReplicas: 2}\n");
    skiff_client_destroy(c);

    char cells[16][64];
    run("get", "pods");
    expect(0, NULL);
    assert_int_equal(strncmp(R.out, "NAME ", 5), 0);
    expect_has(R.out, "   READY   STATUS    RESTARTS   AGE\n");
    for (size_t i = 0; i < sizeof pods / sizeof *pods; i++) {
        int n = row_of(R.out, pods[i].name, cells);
        assert_int_equal(n, 5);
        assert_string_equal(cells[1], "0/2");
        assert_string_equal(cells[2], "Pending");
        assert_string_equal(cells[3], "0");
        assert_true(cells[4][0] >= '0' && cells[4][0] <= '9'); /* AGE */
    }
    run("get", "pods", "-o", "wide");
    expect(0, NULL);
    /* The wide columns follow AGE (whose width depends on the age). */
    expect_has(R.out, "   RESTARTS   AGE ");
    expect_has(R.out, "   IP       NODE   NOMINATED NODE   READINESS GATES\n");
    row_of(R.out, "p-running", cells);
    assert_string_equal(cells[5], "<none>");
    assert_string_equal(cells[6], "n1");
    run("get", "deployments");
    expect(0, NULL);
    expect_has(R.out, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n");
    assert_int_equal(row_of(R.out, "web", cells), 5);
    assert_string_equal(cells[1], "0/3");
    assert_string_equal(cells[2], "0");
    assert_string_equal(cells[3], "0");
    run("get", "nodes");
    expect(0, NULL);
    expect_has(R.out, "NAME   STATUS                        ROLES    AGE ");
    expect_has(R.out, "   VERSION\n");
    assert_int_equal(row_of(R.out, "n1", cells), 5);
    assert_string_equal(cells[1], "NotReady,SchedulingDisabled");
    assert_string_equal(cells[2], "worker");
    assert_string_equal(cells[4], "v1.30.1");
    run("get", "deploy,nodes", "-o", "name");
    expect(0, "deployment.apps/web\nnode/n1\n");
    run("get", "deploy,no");
    expect_has(R.out, "\ndeployment.apps/web   0/3 ");
    expect_has(R.out, "\n\nNAME      STATUS ");
    run("get", "pods", "-A", "--no-headers", "-l", "!nothing");
    expect(0, NULL);
    assert_int_equal(strncmp(R.out, "default ", 8), 0);
    run("describe", "pod", "p-crash");
    expect(0, NULL);
    expect_has(R.out, "Status:       Pending\n");
    expect_has(R.out, "Node:         n1\n");
}

static void test_concurrent_apply(void **state)
{
    (void)state;
    /* Two writers with different replicas, many rounds: every apply must
     * succeed, the losers of compares by retrying. */
    char text[2][1024];
    const char *paths[2];
    for (int w = 0; w < 2; w++) {
        snprintf(text[w], sizeof text[w],
                 "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                 "  name: race\n  labels: {writer: w%d}\nspec:\n"
                 "  replicas: %d\n  selector: {matchLabels: {app: r}}\n"
                 "  template:\n    metadata: {labels: {app: r}}\n"
                 "    spec: {containers: [{name: a, image: i}]}\n",
                 w, 2 + w);
        char name[32];
        snprintf(name, sizeof name, "race%d.yaml", w);
        const char *p = write_tmp(name, text[w]);
        paths[w] = strdup(p);
    }
    static run_res rr[2];
    for (int round = 0; round < 12; round++) {
        pid_t pid[2];
        int fds[2][2];
        for (int w = 0; w < 2; w++) {
            const char *args[] = {"apply", "-f", paths[w], NULL};
            pid[w] = spawn_ctl(args, fds[w]);
        }
        for (int w = 0; w < 2; w++) {
            collect(pid[w], fds[w], &rr[w]);
            if (rr[w].code)
                fprintf(stderr, "round %d writer %d: %s%s\n", round, w,
                        rr[w].out, rr[w].err);
            assert_int_equal(rr[w].code, 0);
            expect_has(rr[w].out, "deployment.apps/race ");
        }
    }
    free((void *)paths[0]);
    free((void *)paths[1]);
    run("get", "deploy", "race", "-o", "yaml");
    expect(0, NULL);
    expect_has(R.out, "  uid: ");
    /* Lost updates would show here: six writers add one label each at
     * once, so most compares fail, and every label must survive. */
    static run_res lr[6];
    for (int round = 0; round < 3; round++) {
        pid_t pid[6];
        int fds[6][2];
        char lab[6][32];
        for (int w = 0; w < 6; w++) {
            snprintf(lab[w], sizeof lab[w], "r%d-w%d=x", round, w);
            const char *args[] = {"label", "deploy", "race", lab[w], NULL};
            pid[w] = spawn_ctl(args, fds[w]);
        }
        for (int w = 0; w < 6; w++) {
            collect(pid[w], fds[w], &lr[w]);
            if (lr[w].code)
                fprintf(stderr, "labeler %d: %s\n", w, lr[w].err);
            assert_int_equal(lr[w].code, 0);
        }
    }
    run("get", "deploy", "race", "-o", "yaml");
    for (int round = 0; round < 3; round++)
        for (int w = 0; w < 6; w++) {
            char want[48];
            snprintf(want, sizeof want, "    r%d-w%d: x\n", round, w);
            expect_has(R.out, want);
        }
}

/* ---- get -w -------------------------------------------------------------- */

#define WATCH_WAIT_MS 20000

/* A running `skiffctl get ... -w`, its stdout read line by line. */
typedef struct watcher {
    pid_t pid;
    int fds[2];
    char buf[OUT_CAP];
    size_t len, pos; /* bytes read; start of the next unread line */
    char line[4096];
} watcher;

static watcher W;

static void watch_start(watcher *w, const char *const *args)
{
    memset(w, 0, sizeof *w);
    w->pid = spawn_ctl(args, w->fds);
}

#define watch(...)                                                             \
    do {                                                                       \
        const char *a_[] = {__VA_ARGS__, NULL};                                \
        watch_start(&W, a_);                                                   \
    } while (0)

/* The next line of the watcher's stdout, without its newline, waiting
 * for it with poll() up to ms; NULL when none came in time.  Fails the
 * test when the watch ends. */
static const char *watch_line_within(watcher *w, int ms)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        char *nl = memchr(w->buf + w->pos, '\n', w->len - w->pos);
        if (nl) {
            size_t n = (size_t)(nl - (w->buf + w->pos));
            assert_true(n < sizeof w->line);
            memcpy(w->line, w->buf + w->pos, n);
            w->line[n] = '\0';
            w->pos += n + 1;
            return w->line;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return NULL;
        struct pollfd p = {w->fds[0], POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(w->fds[0], w->buf + w->len, OUT_CAP - 1 - w->len);
        if (n <= 0) {
            char err[4096];
            ssize_t e = read(w->fds[1], err, sizeof err - 1);
            err[e > 0 ? e : 0] = '\0';
            fail_msg("the watch ended; its output:\n%s\nstderr:\n%s", w->buf,
                     err);
        }
        w->len += (size_t)n;
        w->buf[w->len] = '\0';
    }
}

/* The next line, which must come within WATCH_WAIT_MS. */
static const char *watch_line(watcher *w)
{
    const char *l = watch_line_within(w, WATCH_WAIT_MS);
    if (!l)
        fail_msg("no line from the watch in %d ms; its output:\n%s",
                 WATCH_WAIT_MS, w->buf);
    return l;
}

/* A --watch-only watch prints nothing until something changes, so a
 * change made at once may fall in its list (and never print).  Creates
 * pods w-sync-1, w-sync-2, ... in ns, the next one whenever a second
 * passes without output, until the watch prints one; then reads the
 * lines up to the last one created, after which the watch is live and
 * nothing of the sync is left unread. */
static void watch_sync(watcher *w, const char *ns)
{
    int made = 0;
    const char *l = NULL;
    char want[64], yaml[256];
    while (!l) {
        assert_true(made < 20);
        made++;
        snprintf(yaml, sizeof yaml,
                 "apiVersion: v1\nkind: Pod\nmetadata:\n  name: w-sync-%d\n"
                 "  namespace: %s\nspec:\n  containers:\n"
                 "  - {name: a, image: i}\n",
                 made, ns);
        run("apply", "-f", write_tmp("sync.yaml", yaml));
        expect(0, NULL);
        l = watch_line_within(w, 1000);
    }
    snprintf(want, sizeof want, "pod/w-sync-%d", made);
    while (strcmp(l, want)) {
        if (strncmp(l, "pod/w-sync-", 11))
            fail_msg("unexpected line \"%s\" while waiting for %s", l, want);
        l = watch_line(w);
    }
}

/* Asserts that line starts with prefix. */
static void expect_prefix(const char *line, const char *prefix)
{
    if (strncmp(line, prefix, strlen(prefix)))
        fail_msg("\"%s\" does not start with \"%s\"", line, prefix);
}

/* Expects the next line to be a row of `name` and returns it. */
static const char *watch_row(watcher *w, const char *name)
{
    const char *l = watch_line(w);
    size_t n = strlen(name);
    if (strncmp(l, name, n) || l[n] != ' ')
        fail_msg("want a row of %s, got \"%s\"; output so far:\n%s", name, l,
                 w->buf);
    return l;
}

/* Ends the watch with SIGTERM; R gets what it printed after the lines
 * read so far, its stderr and exit code. */
static void watch_end(watcher *w)
{
    kill(w->pid, SIGTERM);
    collect(w->pid, w->fds, &R);
    size_t unread = w->len - w->pos, rest = strlen(R.out);
    if (unread + rest >= OUT_CAP)
        rest = OUT_CAP - 1 - unread;
    memmove(R.out + unread, R.out, rest);
    memcpy(R.out, w->buf + w->pos, unread);
    R.out[unread + rest] = '\0';
}

#define WPOD(name, ns, app)                                                    \
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " name "\n"                 \
    "  namespace: " ns "\n  labels: {app: " app "}\n"                          \
    "spec:\n  containers:\n  - {name: a, image: i}\n"

static void apply_yaml(const char *yaml)
{
    run("apply", "-f", write_tmp("w.yaml", yaml));
    expect(0, NULL);
}

/* get pods -l app=web -w: the list, then one row per change of a pod of
 * the namespace that matches, deletions included; nothing for other
 * namespaces or other labels. */
static void test_get_watch(void **state)
{
    (void)state;
    apply_yaml(WPOD("w-a", "default", "web"));
    apply_yaml(WPOD("w-old", "other", "web"));
    watch("get", "pods", "-l", "app=web", "-w");
    /* The list: header and rows aligned like get's table. */
    assert_string_equal(watch_line(&W),
                        "NAME   READY   STATUS    RESTARTS   AGE");
    const char *l = watch_row(&W, "w-a");
    expect_prefix(l, "w-a    0/1     Pending   0          ");
    /* An addition: a row in the list's columns, no header. */
    apply_yaml(WPOD("w-b", "default", "web"));
    l = watch_row(&W, "w-b");
    expect_prefix(l, "w-b    0/1     Pending   0          ");
    /* Another namespace, another label: nothing.  The next row is the
     * label change, written after them. */
    apply_yaml(WPOD("w-x", "default", "db"));
    apply_yaml(WPOD("w-o", "other", "web"));
    run("label", "pod", "w-b", "tier=front");
    expect(0, "pod/w-b labeled\n");
    watch_row(&W, "w-b");
    /* Entering the selection shows the pod; leaving it shows its last
     * state (the API server's watch sends that as a deletion). */
    run("label", "pod", "w-x", "app=web", "--overwrite");
    expect(0, NULL);
    watch_row(&W, "w-x");
    run("label", "pod", "w-x", "app=db", "--overwrite");
    expect(0, NULL);
    watch_row(&W, "w-x");
    /* A deletion prints the object's last state. */
    run("delete", "pod", "w-a");
    expect(0, "pod \"w-a\" deleted\n");
    l = watch_row(&W, "w-a");
    assert_non_null(strstr(l, " Pending "));
    /* Out of the selection now: its deletion prints nothing. */
    run("delete", "pod", "w-x");
    expect(0, NULL);
    run("delete", "pod", "w-b");
    expect(0, NULL);
    watch_row(&W, "w-b");
    watch_end(&W);
    expect(0, "");
    assert_null(strstr(W.buf, "w-o"));
    assert_null(strstr(W.buf, "w-old"));
}

/* Starts skiffd again on the same ports and data dir (srv_spawn picks new
 * client ports, and the watch must reconnect to the one it knows). */
static void respawn_same_ports(srv *s)
{
    char listen[64], metrics[64], data[300], peer[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", s->mport);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", s->pport);
    snprintf(data, sizeof data, "%s/data", s->dir);
    const char *argv[] = {s->bin,  "--name",
                          "t1",    "--data-dir",
                          data,    "--listen-client-urls",
                          listen,  "--listen-metrics-urls",
                          metrics, "--listen-peer-urls",
                          peer,    "--initial-advertise-peer-urls",
                          peer,    "--log-level",
                          "warn",  NULL};
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(s->bin, (char *const *)argv);
        _exit(127);
    }
    int64_t deadline = now_ms() + WATCH_WAIT_MS;
    for (;;) {
        int fd = cli_connect(s->port);
        if (fd >= 0) {
            close(fd);
            return;
        }
        int st;
        assert_int_not_equal(waitpid(s->pid, &st, WNOHANG), s->pid);
        assert_true(now_ms() < deadline);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* The watch outlives its connection and a compaction of the history it
 * needed: the list again, printing what changed, then the watch goes on. */
static void test_get_watch_relist(void **state)
{
    (void)state;
    apply_yaml(WPOD("w-a", "default", "web"));
    apply_yaml(WPOD("w-b", "default", "web"));
    watch("get", "pods", "--watch");
    watch_line(&W);
    watch_row(&W, "w-a");
    watch_row(&W, "w-b");
    /* Stopped, it cannot resume before the history is gone: its
     * connection breaks, three changes are made and compacted away. */
    kill(W.pid, SIGSTOP);
    srv_kill(&server, SIGKILL);
    respawn_same_ports(&server);
    apply_yaml(WPOD("w-c", "default", "web"));
    run("delete", "pod", "w-a");
    expect(0, NULL);
    run("label", "pod", "w-b", "k=v");
    expect(0, NULL);
    skiff_client *c;
    const char *eps[] = {endpoint};
    skiff_config cfg = {.endpoints = eps, .n_endpoints = 1};
    assert_int_equal(skiff_client_create(&c, &cfg), 0);
    skiff_result res = {0};
    assert_int_equal(skiff_get(c, "x", 1, &res), 0);
    assert_int_equal(skiff_compact(c, res.header.revision, 1), 0);
    skiff_result_free(&res);
    skiff_client_destroy(c);
    kill(W.pid, SIGCONT);
    /* The relist's changes, in the informer's order. */
    char seen[3][8];
    for (int i = 0; i < 3; i++) {
        const char *l = watch_line(&W);
        snprintf(seen[i], sizeof seen[i], "%.*s", (int)strcspn(l, " "), l);
    }
    qsort(seen, 3, sizeof seen[0], cmp_names);
    assert_string_equal(seen[0], "w-a");
    assert_string_equal(seen[1], "w-b");
    assert_string_equal(seen[2], "w-c");
    /* And it watches on. */
    run("label", "pod", "w-c", "k=v");
    expect(0, NULL);
    watch_row(&W, "w-c");
    watch_end(&W);
    expect(0, "");
}

/* --watch-only -o name, -n; NAME with -o yaml; and etcdctl's -w FORMAT on
 * a key, which keeps its meaning. */
static void test_get_watch_only(void **state)
{
    (void)state;
    apply_yaml(WPOD("w-pre", "other", "web"));
    watch("get", "pods", "-n", "other", "--watch-only", "-o", "name");
    watch_sync(&W, "other");
    /* Nothing was printed for w-pre; the next line is w-n's creation, and
     * w-d (another namespace) would come before its deletion. */
    apply_yaml(WPOD("w-n", "other", "web"));
    assert_string_equal(watch_line(&W), "pod/w-n");
    apply_yaml(WPOD("w-d", "default", "web"));
    run("delete", "pod", "w-n", "-n", "other");
    expect(0, NULL);
    assert_string_equal(watch_line(&W), "pod/w-n");
    watch_end(&W);
    expect(0, "");
    assert_null(strstr(W.buf, "w-pre"));

    /* One object by name (`-w` before the kind), as yaml documents: its
     * state, then each change after "---"; a pod whose name only starts
     * with the same letters is not it. */
    apply_yaml(WPOD("w-y", "default", "web"));
    watch("get", "-w", "pod", "w-y", "-o", "yaml");
    while (strcmp(watch_line(&W), "  name: w-y"))
        ;
    apply_yaml(WPOD("w-y2", "default", "web"));
    run("label", "pod", "w-y", "k=v");
    expect(0, NULL);
    while (strcmp(watch_line(&W), "---"))
        ;
    run("delete", "pod", "w-y");
    expect(0, NULL);
    while (strcmp(watch_line(&W), "---"))
        ;
    while (strcmp(watch_line(&W), "  name: w-y"))
        ;
    watch_end(&W);
    expect(0, NULL);
    assert_null(strstr(W.buf, "w-y2"));
    expect_has(W.buf, "    k: v\n");
    /* A missing name is NotFound, as without -w. */
    run("get", "pod", "nope", "-w");
    expect(1, "");
    expect_has(R.err, "Error from server (NotFound): pods \"nope\" not found");
    run("get", "pods,deploy", "--watch-only");
    expect(1, "");
    expect_has(R.err, "watch is only supported on individual resources");

    /* Keys: -w is etcdctl's output format, before or after the key. */
    run("put", "w-key", "v");
    expect(0, "OK\n");
    run("get", "w-key", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"kvs\":[{\"key\":\"dy1rZXk=\"");
    run("get", "-w", "json", "w-key");
    expect(0, NULL);
    expect_has(R.out, "\"kvs\":[{\"key\":\"dy1rZXk=\"");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <skiffctl> <skiffd> <manifests>\n", argv[0]);
        return 2;
    }
    ctl_bin = argv[1];
    srv_bin = argv[2];
    manifests = argv[3];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_examples_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_unchanged_configured, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_field_writes_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edits, setup, teardown),
        cmocka_unit_test(test_pod_status),
        cmocka_unit_test_setup_teardown(test_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_watch_relist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_watch_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
