/*
 * The corruption check finds a member whose store diverged.
 *
 * A follower is stopped and one extra put is applied straight into its
 * store at the next log index, as a disk or a bug could: its store now
 * holds a revision the others will fill with a different write.  After
 * it restarts and the cluster writes that next entry, the follower skips
 * it (already applied) and the members disagree at that revision.  The
 * leader's periodic HashKV comparison must notice, log it and raise the
 * CORRUPT alarm through the log, which every member then reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"
#include "kv.h"

static const char *skiffd;

static void put_on(skiff_client *c, const char *k, const char *v)
{
    skiff_result r;
    assert_int_equal(skiff_put(c, k, strlen(k), v, strlen(v), 0, &r), 0);
    skiff_result_free(&r);
}

/* Applies put k=v at the next index of the stopped member's store. */
static void diverge(const char *dir)
{
    kv_store *kv;
    assert_int_equal(kv_open(&kv, dir, NULL), 0);
    kv_status st;
    assert_int_equal(kv_status_meta(kv, &st), 0);
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)"diverged";
    p.key.len = 8;
    p.value.data = (uint8_t *)"x";
    p.value.len = 1;
    Skiffpb__Command cmd = SKIFFPB__COMMAND__INIT;
    cmd.op_case = SKIFFPB__COMMAND__OP_PUT;
    cmd.put = &p;
    cm_buf b = {0};
    assert_int_equal(kv_command_pack(&cmd, &b), 0);
    cm_arena a = {.chunk_sz = 65536};
    kv_entry e = {st.applied_index + 1, b.base, b.len, st.applied_term};
    kv_result res;
    assert_int_equal(kv_apply(kv, &e, &a, &res), 0);
    assert_int_equal(res.code, 0);
    cm_arena_free(&a);
    cm_buf_free(&b);
    kv_close(kv);
}

static int corrupt_alarm_seen(skiff_client *c)
{
    skiff_op op = {.type = SKIFF_OP_ALARM};
    op.alarm_action = SKIFF_ALARM_GET;
    skiff_result r;
    if (skiff_do_sync(c, &op, &r))
        return 0;
    int seen = 0;
    for (size_t i = 0; i < r.n_alarms; i++)
        seen |= r.alarms[i].alarm == SKIFF_ALARM_CORRUPT;
    skiff_result_free(&r);
    return seen;
}

static void test_divergence_detected(void **state)
{
    (void)state;
    cl_set_binary(skiffd);
    const char *extra[] = {"--experimental-corrupt-check-time", "1s", NULL};
    cl_opts o = {.extra = extra};
    assert_int_equal(cl_start_opts(3, &o), 0);
    int leader = cl_wait_leader(10000);
    assert_true(leader >= 0);
    skiff_client *c = cl_client(leader, 0);
    assert_non_null(c);
    for (int i = 0; i < 10; i++)
        put_on(c, "k", "v");
    assert_true(cl_wait_applied(10000) > 0);
    /* No alarm while the members agree. */
    assert_int_equal(corrupt_alarm_seen(c), 0);
    int f = (leader + 1) % 3;
    assert_int_equal(cl_kill(f, SIGKILL), 0);
    diverge(cl_data_dir(f));
    assert_int_equal(cl_restart(f), 0);
    assert_true(cl_wait_leader(10000) >= 0);
    skiff_client_destroy(c);
    c = cl_client(cl_wait_leader(10000), 0);
    assert_non_null(c);
    put_on(c, "k", "after"); /* the entry the follower skips */
    int64_t deadline = cl_now_ms() + 20000;
    int seen = 0;
    while (!seen && cl_now_ms() < deadline) {
        seen = corrupt_alarm_seen(c);
        if (!seen)
            cl_poll_sleep();
    }
    assert_true(seen);
    skiff_client_destroy(c);
    assert_int_equal(cl_stop(), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SKIFFD\n", argv[0]);
        return 2;
    }
    skiffd = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_divergence_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
