/*
 * RBAC on a three-member cluster: a RoleBinding written through one member
 * takes effect on another (each member feeds its authorizer from its own
 * watch hub), its deletion revokes the access there too, and a member
 * restarted with SIGKILL loads the bindings from its store before it
 * serves (no window where a granted user is refused or a revoked one let
 * in).
 *
 * Usage: server_cluster_rbac <skiffd>
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"
#include "objects.h"
#include "skiff.h"
#include "tu.h"

static const char *skiffd;
static char dir[256], tokens[320];

static const char *ROLE =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
    "metadata: {name: pod-reader, namespace: default}\n"
    "rules:\n- apiGroups: [\"\"]\n  resources: [pods]\n"
    "  verbs: [get, list, watch]\n";
static const char *BINDING =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
    "metadata: {name: read-pods, namespace: default}\n"
    "subjects:\n- kind: User\n  name: alice\n"
    "  apiGroup: rbac.authorization.k8s.io\n"
    "roleRef:\n  kind: Role\n  name: pod-reader\n"
    "  apiGroup: rbac.authorization.k8s.io\n";

static skiff_client *client_at(int member, const char *token)
{
    const char *eps[1] = {cl_member_endpoint(member)};
    skiff_config cfg = {.endpoints = eps,
                        .n_endpoints = 1,
                        .token = token,
                        .request_timeout_ms = 10000};
    skiff_client *c = NULL;
    assert_int_equal(skiff_client_create(&c, &cfg), 0);
    return c;
}

static void put_yaml(skiff_client *c, const char *key, const char *y)
{
    cm_arena a = {.chunk_sz = 65536};
    obj_object **objs;
    size_t n;
    obj_error err;
    assert_int_equal(obj_yaml_decode(y, strlen(y), &a, &objs, &n, &err), 0);
    size_t len = skiffpb__v1__object__get_packed_size(objs[0]);
    uint8_t *v = malloc(len);
    skiffpb__v1__object__pack(objs[0], v);
    skiff_result r;
    int rc = skiff_put(c, key, strlen(key), v, len, 0, &r);
    if (rc)
        fprintf(stderr, "put %s: %s\n", key,
                r.error_message ? r.error_message : skiff_strerror(rc));
    assert_int_equal(rc, 0);
    skiff_result_free(&r);
    free(v);
    cm_arena_free(&a);
}

/* 1 when alice may list pods in default on this client's member. */
static int alice_may_list(skiff_client *alice)
{
    skiff_result r;
    int rc = skiff_get_prefix(alice, "/registry/pods/default/", 23, &r);
    skiff_result_free(&r);
    if (rc != 0 && rc != SKIFF_EPERMISSION_DENIED)
        fail_msg("list: %s", skiff_strerror(rc));
    return rc == 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (bounded) until alice's access on this member is `want`. */
static void wait_access(skiff_client *alice, int want)
{
    int64_t deadline = now_ms() + 15000;
    while (alice_may_list(alice) != want && now_ms() < deadline)
        skiff_client_poll(alice, 20);
    assert_int_equal(alice_may_list(alice), want);
}

static void test_propagation(void **state)
{
    (void)state;
    const char *extra[] = {"--authorization-mode", "RBAC",
                           "--token-auth-file", tokens, NULL};
    cl_opts o = {.extra = extra};
    assert_int_equal(cl_start_opts(3, &o), 0);
    assert_true(cl_wait_leader(20000) >= 0);
    skiff_client *admin = client_at(0, "admin-token");
    skiff_client *alice = client_at(2, "alice-token");

    /* Nothing yet; then a binding written through member 1 opens member 3. */
    assert_int_equal(alice_may_list(alice), 0);
    put_yaml(admin, "/registry/roles/default/pod-reader", ROLE);
    put_yaml(admin, "/registry/rolebindings/default/read-pods", BINDING);
    wait_access(alice, 1);

    /* Deleting it through member 2 closes member 3 again. */
    skiff_client *admin2 = client_at(1, "admin-token");
    skiff_result r;
    const char *bk = "/registry/rolebindings/default/read-pods";
    assert_int_equal(skiff_delete(admin2, bk, strlen(bk), NULL, 0, &r), 0);
    assert_int_equal(r.count, 1);
    skiff_result_free(&r);
    wait_access(alice, 0);

    /* Bind again, then SIGKILL member 3 and restart it: the binding is
     * loaded from its store before it answers anything. */
    put_yaml(admin, "/registry/rolebindings/default/read-pods", BINDING);
    wait_access(alice, 1);
    skiff_client_destroy(alice);
    assert_int_equal(cl_kill(2, SIGKILL), 0);
    assert_int_equal(cl_restart(2), 0);
    alice = client_at(2, "alice-token");
    assert_int_equal(alice_may_list(alice), 1);
    /* And writing is still not hers anywhere. */
    const char *pk = "/registry/pods/default/x";
    int rc = skiff_put(alice, pk, strlen(pk), "x", 1, 0, &r);
    assert_int_equal(rc, SKIFF_EPERMISSION_DENIED);
    skiff_result_free(&r);

    skiff_client_destroy(alice);
    skiff_client_destroy(admin);
    skiff_client_destroy(admin2);
    assert_int_equal(cl_stop(), 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <skiffd>\n", argv[0]);
        return 2;
    }
    skiffd = argv[1];
    cl_set_binary(skiffd);
    if (tu_tmpdir(dir, sizeof dir))
        return 1;
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", dir);
    FILE *f = fopen(tokens, "w");
    if (!f)
        return 1;
    fprintf(f, "admin-token,admin,1,system:masters\n"
               "alice-token,alice,2\n");
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_propagation),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmrf(dir);
    return rc;
}
