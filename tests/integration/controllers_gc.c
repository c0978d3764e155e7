/*
 * Integration test of deletion, the garbage collector and Events: a real
 * one-member skiffd, the real skiff-controller-manager process, and the
 * real skiffctl binary for `delete` and `describe`.
 *
 * Each case writes a Deployment -> ReplicaSet -> Pods chain linked by
 * ownerReferences (uids as the store assigned them) and checks, by
 * polling the store every 20 ms up to a 20 s deadline (never a bare
 * sleep), what Kubernetes would do:
 *   - background delete of the owner removes the whole chain;
 *   - foreground delete keeps the owner (deletionTimestamp, finalizer
 *     foregroundDeletion) while a dependent is held by a finalizer, and
 *     removes everything once it is released;
 *   - orphan delete removes the owner and leaves the ReplicaSet without
 *     its ownerReference, the pods untouched;
 *   - a dependent with two owners loses only the reference to the deleted
 *     one;
 *   - killed (SIGKILL) during a foreground deletion and restarted, the
 *     collector finishes it from the store alone;
 *   - a finalizer ("example.com/hold") keeps a deleted object until an
 *     update removes it, and a raw DeleteRange of an object with
 *     finalizers is refused by the server;
 *   - Events: the same event recorded 5 times is one Event with count 5,
 *     a different message a second Event, both attached to a lease of TTL
 *     3600 s, and `skiffctl describe` lists them (kubectl's table, "(x5
 *     over ...)"); an object without events shows "<none>".
 *
 * Usage: controllers_gc <skiffd> <skiff-controller-manager> <skiffctl>.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "delete.h"
#include "events.h"
#include "objects.h"
#include "skiff.h"
#include "srv.h"
#include "tu.h"

#define POLL_MS 20
#define DEADLINE_MS 20000
#define OUT_CAP 65536

static const char *srv_bin, *cm_bin, *ctl_bin;
static srv server;
static pid_t cm_pid = -1;
static char endpoint[64];
static skiff_client *C;
static char tmpdir[256];
static struct {
    int code;
    char out[OUT_CAP], err[OUT_CAP];
} R;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits POLL_MS without being a synchronisation point: callers loop on a
 * condition read from the store. */
static void pause_poll(void)
{
    struct timespec ts = {0, POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- store access -------------------------------------------------------- */

/* Writes one object (admission in skiffd assigns uid and timestamps). */
static void put_yaml(const char *yaml)
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
    uint8_t *buf = cm_arena_alloc(&a, len);
    protobuf_c_message_pack(&objs[0]->base, buf);
    skiff_result res = {0};
    int rc = skiff_put(C, key, strlen(key), buf, len, 0, &res);
    if (rc)
        fail_msg("put %s: %s", key,
                 res.error_message ? res.error_message : skiff_strerror(rc));
    skiff_result_free(&res);
    cm_arena_free(&a);
}

/* The object at key (arena a), or NULL when absent. */
static obj_object *get_obj(const char *key, cm_arena *a, int64_t *lease)
{
    skiff_result res = {0};
    assert_int_equal(skiff_get(C, key, strlen(key), &res), 0);
    obj_object *o = NULL;
    if (res.n_kvs) {
        ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, a};
        o = (obj_object *)protobuf_c_message_unpack(
            &skiffpb__v1__object__descriptor, &al, res.kvs[0].value_len,
            res.kvs[0].value);
        assert_non_null(o);
        if (lease)
            *lease = res.kvs[0].lease;
    }
    skiff_result_free(&res);
    return o;
}

static const Skiffpb__V1__ObjectMeta *get_meta(const char *key, cm_arena *a)
{
    obj_object *o = get_obj(key, a, NULL);
    return o ? obj_object_meta(o) : NULL;
}

static void get_uid(const char *key, char uid[64])
{
    cm_arena a = {0};
    const Skiffpb__V1__ObjectMeta *md = get_meta(key, &a);
    assert_non_null(md);
    snprintf(uid, 64, "%s", md->uid);
    cm_arena_free(&a);
}

static int exists(const char *key)
{
    cm_arena a = {0};
    int found = get_meta(key, &a) != NULL;
    cm_arena_free(&a);
    return found;
}

/* ---- waiting on the store ------------------------------------------------ */

enum cond { GONE, MARKED, N_REFS };

static int holds(const char *key, enum cond c, size_t n)
{
    cm_arena a = {0};
    const Skiffpb__V1__ObjectMeta *md = get_meta(key, &a);
    int ok = c == GONE     ? md == NULL
             : c == MARKED ? md && md->deletion_timestamp
                           : md && md->n_owner_references == n;
    cm_arena_free(&a);
    return ok;
}

static void wait_for(const char *key, enum cond c, size_t n)
{
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while (!holds(key, c, n)) {
        if (mono_ms() > deadline)
            fail_msg("%s: condition %d not reached in %d ms", key, (int)c,
                     DEADLINE_MS);
        pause_poll();
    }
}

static int has_finalizer(const Skiffpb__V1__ObjectMeta *md, const char *f)
{
    return ctl_meta_has_finalizer(md, f);
}

static int drop_fin(obj_object *o, cm_arena *a, void *arg)
{
    (void)a;
    return ctl_meta_remove_finalizer(obj_object_meta(o), arg);
}

static void remove_finalizer(const char *key, const char *f)
{
    char msg[512];
    int written = 0;
    assert_int_equal(ctl_update_object(C, key, NULL, drop_fin, (void *)f,
                                       &written, msg, sizeof msg),
                     0);
    assert_true(written);
}

/* ---- skiffctl ------------------------------------------------------------ */

static void read_fd(int fd, char *buf)
{
    size_t n = 0;
    ssize_t r;
    while (n < OUT_CAP - 1 && (r = read(fd, buf + n, OUT_CAP - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
}

/* Runs skiffctl --endpoints <server> args... (NULL-terminated) to the
 * end; stdout and stderr go through files in the temp dir. */
static void run_ctl(const char *first, ...)
{
    const char *argv[32] = {ctl_bin, "--endpoints", endpoint};
    int n = 3;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s && n < 31; s = va_arg(ap, const char *))
        argv[n++] = s;
    va_end(ap);
    argv[n] = NULL;
    char po[512], pe[512];
    snprintf(po, sizeof po, "%s/out", tmpdir);
    snprintf(pe, sizeof pe, "%s/err", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execv(ctl_bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    int fo = open(po, O_RDONLY), fe = open(pe, O_RDONLY);
    read_fd(fo, R.out);
    read_fd(fe, R.err);
    close(fo);
    close(fe);
}

static void expect(int code, const char *out)
{
    if (R.code != code || (out && strcmp(R.out, out)))
        fprintf(stderr, "exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", R.code,
                code, R.out, R.err);
    assert_int_equal(R.code, code);
    if (out)
        assert_string_equal(R.out, out);
}

/* ---- fixture ------------------------------------------------------------- */

/* Starts skiff-controller-manager on the server, its log in the temp
 * dir (appended across restarts).  0 or -1. */
static int start_cm(void)
{
    char log[512];
    snprintf(log, sizeof log, "%s/controller-manager.log", tmpdir);
    cm_pid = fork();
    if (cm_pid < 0)
        return -1;
    if (cm_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(cm_bin, cm_bin, "--endpoints", endpoint, "--controllers=*",
              (char *)NULL);
        _exit(127);
    }
    return 0;
}

static void kill_cm(void)
{
    if (cm_pid > 0) {
        kill(cm_pid, SIGKILL);
        waitpid(cm_pid, NULL, 0);
    }
    cm_pid = -1;
}

static int setup(void **state)
{
    (void)state;
    memset(&server, 0, sizeof server);
    if (tu_tmpdir(tmpdir, sizeof tmpdir) ||
        srv_spawn(&server, srv_bin, 0, NULL))
        return -1;
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", server.port);
    if (start_cm())
        return -1;
    const char *eps[] = {endpoint};
    skiff_config cfg = {.endpoints = eps, .n_endpoints = 1};
    return skiff_client_create(&C, &cfg) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    skiff_client_destroy(C);
    C = NULL;
    kill_cm();
    srv_cleanup(&server);
    tu_rmrf(tmpdir);
    return 0;
}

#define wait_gone(k) wait_for(k, GONE, 0)
#define wait_marked(k) wait_for(k, MARKED, 0)
#define wait_refs(k, n) wait_for(k, N_REFS, n)

/* ---- the chain ----------------------------------------------------------- */

#define DEP_KEY "/registry/deployments/default/web"
#define RS_KEY "/registry/replicasets/default/web-1"
#define POD_KEY(i) "/registry/pods/default/web-1-" #i

static const char *owner_ref(char *buf, size_t cap, const char *kind,
                             const char *name, const char *uid, int block)
{
    snprintf(buf, cap,
             "  ownerReferences:\n  - {apiVersion: %s, kind: %s, name: %s, "
             "uid: %s, controller: true, blockOwnerDeletion: %s}\n",
             strcmp(kind, "Pod") ? "apps/v1" : "v1", kind, name, uid,
             block ? "true" : "false");
    return buf;
}

static void put_rs(const char *name, const char *meta)
{
    char y[2048];
    snprintf(y, sizeof y,
             "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: %s\n"
             "%sspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
             "  template:\n    metadata: {labels: {app: web}}\n    spec:\n"
             "      containers: [{name: a, image: nginx}]\n",
             name, meta);
    put_yaml(y);
}

static void put_pod(const char *name, const char *meta)
{
    char y[2048];
    snprintf(y, sizeof y,
             "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n"
             "  labels: {app: web}\n%sspec:\n"
             "  containers: [{name: a, image: nginx}]\n",
             name, meta);
    put_yaml(y);
}

/* Deployment web -> ReplicaSet web-1 -> pods web-1-0, web-1-1 (every
 * reference blocking); pod 0 gets pod0_meta (a finalizer) too. */
static void chain(const char *pod0_meta)
{
    char ref[512], uid[64], meta[1024];
    put_yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
             "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
             "  template:\n    metadata: {labels: {app: web}}\n    spec:\n"
             "      containers: [{name: a, image: nginx}]\n");
    get_uid(DEP_KEY, uid);
    put_rs("web-1", owner_ref(ref, sizeof ref, "Deployment", "web", uid, 1));
    get_uid(RS_KEY, uid);
    owner_ref(ref, sizeof ref, "ReplicaSet", "web-1", uid, 1);
    snprintf(meta, sizeof meta, "%s%s", ref, pod0_meta);
    put_pod("web-1-0", meta);
    put_pod("web-1-1", ref);
}

/* ---- cases --------------------------------------------------------------- */

static void test_background(void **state)
{
    (void)state;
    chain("");
    run_ctl("delete", "deployment", "web", NULL);
    expect(0, "deployment.apps \"web\" deleted\n");
    wait_gone(DEP_KEY);
    wait_gone(RS_KEY);
    wait_gone(POD_KEY(0));
    wait_gone(POD_KEY(1));
}

static void test_foreground(void **state)
{
    (void)state;
    chain("  finalizers: [example.com/hold]\n");
    run_ctl("delete", "deployment", "web", "--cascade=foreground", NULL);
    expect(0, "deployment.apps \"web\" deleted\n");
    /* The held pod is marked; its owners wait for it. */
    wait_marked(POD_KEY(0));
    wait_gone(POD_KEY(1));
    cm_arena a = {0};
    const Skiffpb__V1__ObjectMeta *md = get_meta(DEP_KEY, &a);
    assert_non_null(md);
    assert_non_null(md->deletion_timestamp);
    assert_true(has_finalizer(md, "foregroundDeletion"));
    md = get_meta(RS_KEY, &a);
    assert_non_null(md);
    assert_non_null(md->deletion_timestamp);
    assert_true(has_finalizer(md, "foregroundDeletion"));
    cm_arena_free(&a);
    /* Released: the cascade completes, owner last. */
    remove_finalizer(POD_KEY(0), "example.com/hold");
    wait_gone(POD_KEY(0));
    wait_gone(RS_KEY);
    wait_gone(DEP_KEY);
}

static void test_orphan(void **state)
{
    (void)state;
    chain("");
    char rs_uid[64];
    get_uid(RS_KEY, rs_uid);
    run_ctl("delete", "deployment", "web", "--cascade=orphan", NULL);
    expect(0, "deployment.apps \"web\" deleted\n");
    wait_gone(DEP_KEY);
    cm_arena a = {0};
    const Skiffpb__V1__ObjectMeta *md = get_meta(RS_KEY, &a);
    assert_non_null(md);
    assert_int_equal(md->n_owner_references, 0);
    assert_null(md->deletion_timestamp);
    for (int i = 0; i < 2; i++) {
        md = get_meta(i ? POD_KEY(1) : POD_KEY(0), &a);
        assert_non_null(md);
        assert_int_equal(md->n_owner_references, 1);
        assert_string_equal(md->owner_references[0]->uid, rs_uid);
    }
    cm_arena_free(&a);
    /* The deprecated --cascade=false is orphan too. */
    run_ctl("delete", "rs", "web-1", "--cascade=false", NULL);
    expect(0, "replicaset.apps \"web-1\" deleted\n");
    wait_gone(RS_KEY);
    a = (cm_arena){0};
    assert_non_null(get_meta(POD_KEY(0), &a));
    assert_int_equal(get_meta(POD_KEY(0), &a)->n_owner_references, 0);
    cm_arena_free(&a);
}

static void test_two_owners(void **state)
{
    (void)state;
    char ref_a[512], ref_b[512], uid_a[64], uid_b[64], meta[1100];
    put_rs("a", "");
    put_rs("b", "");
    get_uid("/registry/replicasets/default/a", uid_a);
    get_uid("/registry/replicasets/default/b", uid_b);
    owner_ref(ref_a, sizeof ref_a, "ReplicaSet", "a", uid_a, 0);
    snprintf(ref_b, sizeof ref_b,
             "  - {apiVersion: apps/v1, kind: ReplicaSet, name: b, uid: %s}\n",
             uid_b);
    snprintf(meta, sizeof meta, "%s%s", ref_a, ref_b);
    put_pod("shared", meta);
    run_ctl("delete", "rs", "a", NULL);
    expect(0, "replicaset.apps \"a\" deleted\n");
    wait_refs("/registry/pods/default/shared", 1);
    cm_arena a = {0};
    const Skiffpb__V1__ObjectMeta *md =
        get_meta("/registry/pods/default/shared", &a);
    assert_string_equal(md->owner_references[0]->uid, uid_b);
    cm_arena_free(&a);
    /* The last owner gone: the pod goes. */
    run_ctl("delete", "rs", "b", NULL);
    wait_gone("/registry/pods/default/shared");
}

static void test_finalizer_holds(void **state)
{
    (void)state;
    put_pod("held", "  finalizers: [example.com/hold]\n");
    run_ctl("delete", "pod", "held", NULL);
    expect(0, "pod \"held\" deleted\n");
    wait_marked("/registry/pods/default/held");
    /* Deleting again changes nothing: it is already terminating. */
    run_ctl("delete", "pod", "held", NULL);
    expect(0, "pod \"held\" deleted\n");
    assert_true(exists("/registry/pods/default/held"));
    remove_finalizer("/registry/pods/default/held", "example.com/hold");
    wait_gone("/registry/pods/default/held");
}

/* The collector keeps no state: killed, it leaves a foreground deletion
 * where it is; restarted, it lists everything and finishes it. */
static void test_restart(void **state)
{
    (void)state;
    chain("");
    kill_cm();
    run_ctl("delete", "deployment", "web", "--cascade=foreground", NULL);
    expect(0, "deployment.apps \"web\" deleted\n");
    wait_marked(DEP_KEY);
    assert_true(exists(RS_KEY) && exists(POD_KEY(0)) && exists(POD_KEY(1)));
    assert_int_equal(start_cm(), 0);
    wait_gone(POD_KEY(0));
    wait_gone(POD_KEY(1));
    wait_gone(RS_KEY);
    wait_gone(DEP_KEY);
}

/* Needs skiffd to run obj_admit_delete on DeleteRange. */
static void test_raw_delete_refused(void **state)
{
    (void)state;
    put_pod("raw", "  finalizers: [example.com/hold]\n");
    const char *key = "/registry/pods/default/raw";
    skiff_result res = {0};
    int rc = skiff_delete(C, key, strlen(key), NULL, 0, &res);
    skiff_result_free(&res);
    assert_true(exists(key));
    assert_int_not_equal(rc, 0);
}

static void test_events(void **state)
{
    (void)state;
    put_pod("ev", "");
    put_pod("quiet", "");
    cm_arena a = {0};
    obj_object *pod = get_obj("/registry/pods/default/ev", &a, NULL);
    assert_non_null(pod);
    ctl_recorder_config rc = {
        .client = C, .component = "default-scheduler", .host = "n1"};
    ctl_recorder *r;
    assert_int_equal(ctl_recorder_create(&rc, &r), 0);
    char first[256] = "";
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ctl_event_record(r, pod, CTL_EVENT_NORMAL, "Scheduled",
                                          "Successfully assigned default/ev "
                                          "to %s",
                                          "n1"),
                         0);
        if (!i)
            snprintf(first, sizeof first, "%s", ctl_recorder_last_key(r));
        assert_string_equal(ctl_recorder_last_key(r), first);
    }
    assert_int_equal(ctl_event_record(r, pod, CTL_EVENT_WARNING, "Scheduled",
                                      "another message"),
                     0);
    char second[256];
    snprintf(second, sizeof second, "%s", ctl_recorder_last_key(r));
    assert_string_not_equal(first, second);
    /* "<involved name>.<16 hex digits>" */
    const char *dot = strrchr(first, '.');
    assert_non_null(dot);
    assert_int_equal(strlen(dot + 1), 16);
    assert_int_equal(strncmp(first, "/registry/events/default/ev.", 28), 0);

    int64_t lease = 0;
    obj_object *o = get_obj(first, &a, &lease);
    assert_non_null(o);
    const Skiffpb__V1__Event *e = o->event;
    assert_non_null(e);
    assert_int_equal(e->count, 5);
    assert_string_equal(e->type, "Normal");
    assert_string_equal(e->reason, "Scheduled");
    assert_string_equal(e->message, "Successfully assigned default/ev to n1");
    assert_string_equal(e->involved_object->kind, "Pod");
    assert_string_equal(e->involved_object->name, "ev");
    assert_string_equal(e->involved_object->namespace_, "default");
    assert_string_equal(e->involved_object->api_version, "v1");
    assert_string_equal(e->involved_object->uid, obj_object_meta(pod)->uid);
    assert_string_equal(e->source->component, "default-scheduler");
    assert_string_equal(e->source->host, "n1");
    assert_true(strcmp(e->first_timestamp, e->last_timestamp) <= 0);
    o = get_obj(second, &a, NULL);
    assert_int_equal(o->event->count, 1);
    assert_string_equal(o->event->type, "Warning");
    /* Expiry: a lease of about an hour. */
    assert_true(lease != 0);
    assert_true(lease == ctl_recorder_lease(r));
    skiff_op op = {.type = SKIFF_OP_LEASE_TTL, .lease = lease};
    skiff_result res = {0};
    assert_int_equal(skiff_do_sync(C, &op, &res), 0);
    assert_int_equal(res.granted_ttl, 3600);
    assert_true(res.ttl > 3500 && res.ttl <= 3600);
    skiff_result_free(&res);
    ctl_recorder_destroy(r);
    cm_arena_free(&a);

    run_ctl("describe", "pod", "ev", NULL);
    expect(0, NULL);
    const char *ev = strstr(R.out, "Events:\n");
    if (!ev)
        fail_msg("no Events section in:\n%s", R.out);
    assert_non_null(strstr(ev, "Type"));
    assert_non_null(strstr(ev, "Reason"));
    assert_non_null(strstr(ev, "From"));
    const char *l1 = strstr(ev, "Normal ");
    const char *l2 = strstr(ev, "Warning ");
    assert_non_null(l1);
    assert_non_null(l2);
    assert_true(l1 < l2); /* by lastTimestamp; equal ones keep key order */
    assert_non_null(strstr(ev, "(x5 over "));
    assert_non_null(strstr(ev, "default-scheduler"));
    assert_non_null(strstr(ev, "Successfully assigned default/ev to n1"));
    run_ctl("describe", "pod", "quiet", NULL);
    expect(0, NULL);
    assert_non_null(strstr(R.out, "Events:            <none>\n"));
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s <skiffd> <skiff-controller-manager> <skiffctl>\n",
                argv[0]);
        return 2;
    }
    srv_bin = argv[1];
    cm_bin = argv[2];
    ctl_bin = argv[3];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_background, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreground, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizer_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_delete_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
