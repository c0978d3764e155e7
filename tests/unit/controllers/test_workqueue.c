/*
 * The work queue (controllers/workqueue.c): deduplication, one worker per
 * key, delayed adds in due order, per-item exponential backoff and
 * forget, shutdown, and out-of-memory at every allocation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm.h"
#include "tu.h"
#include "workqueue.h"

typedef struct fx {
    uv_loop_t loop;
    ctl_wq *q;
    int ready, closed;
} fx;

static void on_ready(ctl_wq *q, void *data)
{
    (void)q;
    ((fx *)data)->ready++;
}

static void on_closed(void *data)
{
    ((fx *)data)->closed = 1;
}

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    ctl_wq_config cfg = {.data = f, .ready_cb = on_ready};
    if (ctl_wq_create(&f->loop, &cfg, &f->q))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->q) {
        ctl_wq_close(f->q, on_closed);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_true(f->closed);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    assert_int_equal(tu_alloc_uninstall(), 0);
    return 0;
}

static const char *get(ctl_wq *q)
{
    const char *k = NULL;
    int rc = ctl_wq_get(q, &k);
    return rc == 0 ? k : NULL;
}

/* Runs the loop until `n` keys are ready or 2 s pass. */
static void run_until_ready(fx *f, size_t n)
{
    uint64_t t0 = uv_hrtime();
    while (ctl_wq_len(f->q) < n && uv_hrtime() - t0 < 2000000000ull)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_dedup(void **state)
{
    fx *f = *state;
    assert_int_equal(ctl_wq_add(f->q, "a"), 0);
    assert_int_equal(ctl_wq_add(f->q, "b"), 0);
    assert_int_equal(ctl_wq_add(f->q, "a"), 0);
    assert_int_equal(ctl_wq_len(f->q), 2);
    /* ready_cb never runs inside the call that made a key ready. */
    assert_int_equal(f->ready, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->ready, 1);
    assert_string_equal(get(f->q), "a");
    assert_string_equal(get(f->q), "b");
    const char *k;
    assert_int_equal(ctl_wq_get(f->q, &k), -EAGAIN);
    assert_int_equal(ctl_wq_done(f->q, "a"), 0);
    assert_int_equal(ctl_wq_done(f->q, "b"), 0);
    assert_int_equal(ctl_wq_done(f->q, "b"), -EINVAL);
}

static void test_processing_readd(void **state)
{
    fx *f = *state;
    ctl_wq_add(f->q, "a");
    const char *k = get(f->q);
    assert_string_equal(k, "a");
    /* Added while processing: waits for done, once, however many adds. */
    ctl_wq_add(f->q, "a");
    ctl_wq_add(f->q, "a");
    assert_int_equal(ctl_wq_len(f->q), 0);
    assert_null(get(f->q));
    assert_int_equal(ctl_wq_done(f->q, k), 0);
    assert_int_equal(ctl_wq_len(f->q), 1);
    k = get(f->q);
    assert_string_equal(k, "a");
    assert_int_equal(ctl_wq_done(f->q, k), 0);
    assert_int_equal(ctl_wq_len(f->q), 0);
}

/* Random adds/gets/dones by several workers: a key is never held by two
 * workers, and every add is followed by a processing that starts after
 * it (no lost key). */
static void test_random_workers(void **state)
{
    fx *f = *state;
    enum { W = 4, K = 6, STEPS = 20000 };
    cm_rand r;
    uint64_t seed = tu_seed(7);
    printf("seed %llu\n", (unsigned long long)seed);
    cm_rand_seed(&r, seed);
    const char *held[W] = {0};
    int busy[K] = {0}, pending[K] = {0};
    char keys[K][4];
    for (int i = 0; i < K; i++)
        snprintf(keys[i], sizeof keys[i], "k%d", i);
    for (int s = 0; s < STEPS + 1000; s++) {
        int w = (int)(cm_rand_next(&r) % W);
        int op = s < STEPS ? (int)(cm_rand_next(&r) % 3) : 1;
        if (op == 0) {
            int k = (int)(cm_rand_next(&r) % K);
            assert_int_equal(ctl_wq_add(f->q, keys[k]), 0);
            pending[k] = 1;
        } else if (!held[w]) {
            const char *k = get(f->q);
            if (!k)
                continue;
            int i = k[1] - '0';
            assert_int_equal(busy[i], 0);
            busy[i] = 1;
            pending[i] = 0; /* this processing covers earlier adds */
            held[w] = k;
        } else {
            int i = held[w][1] - '0';
            busy[i] = 0;
            assert_int_equal(ctl_wq_done(f->q, held[w]), 0);
            held[w] = NULL;
        }
    }
    for (int w = 0; w < W; w++)
        if (held[w])
            ctl_wq_done(f->q, held[w]);
    const char *k;
    while ((k = get(f->q))) {
        pending[k[1] - '0'] = 0;
        ctl_wq_done(f->q, k);
    }
    for (int i = 0; i < K; i++)
        assert_int_equal(pending[i], 0);
}

static void test_add_after_order(void **state)
{
    fx *f = *state;
    assert_int_equal(ctl_wq_add_after(f->q, "c", 60), 0);
    assert_int_equal(ctl_wq_add_after(f->q, "a", 20), 0);
    assert_int_equal(ctl_wq_add_after(f->q, "b", 40), 0);
    /* A later time for a waiting key does not delay it; an earlier one
     * moves it up. */
    assert_int_equal(ctl_wq_add_after(f->q, "a", 500), 0);
    assert_int_equal(ctl_wq_add_after(f->q, "d", 500), 0);
    assert_int_equal(ctl_wq_add_after(f->q, "d", 50), 0);
    assert_int_equal(ctl_wq_len(f->q), 0);
    uint64_t t0 = uv_hrtime();
    run_until_ready(f, 4);
    uint64_t waited = (uv_hrtime() - t0) / 1000000;
    assert_true(waited >= 40);
    assert_true(waited < 400);
    assert_string_equal(get(f->q), "a");
    assert_string_equal(get(f->q), "b");
    assert_string_equal(get(f->q), "d");
    assert_string_equal(get(f->q), "c");
    ctl_wq_done(f->q, "a");
    ctl_wq_done(f->q, "b");
    ctl_wq_done(f->q, "c");
    ctl_wq_done(f->q, "d");
    /* ms <= 0 is a plain add. */
    ctl_wq_add_after(f->q, "e", 0);
    assert_int_equal(ctl_wq_len(f->q), 1);
}

static void test_backoff(void **state)
{
    fx *f = *state;
    int64_t d, want = 5;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(ctl_wq_add_rate_limited(f->q, "x", &d), 0);
        assert_int_equal(d, want);
        assert_int_equal(ctl_wq_num_requeues(f->q, "x"), i + 1);
        want = want * 2 > 1000000 ? 1000000 : want * 2;
    }
    assert_int_equal(d, 1000000); /* Kubernetes' 1000 s cap */
    /* Per item: another key starts at the base. */
    assert_int_equal(ctl_wq_add_rate_limited(f->q, "y", &d), 0);
    assert_int_equal(d, 5);
    ctl_wq_forget(f->q, "x");
    assert_int_equal(ctl_wq_num_requeues(f->q, "x"), 0);
    /* x still waits for its first (5 ms) delay; forget only resets the
     * count, so the next failure starts at the base again. */
    run_until_ready(f, 2);
    assert_int_equal(ctl_wq_len(f->q), 2);
    const char *a = get(f->q), *b = get(f->q);
    ctl_wq_done(f->q, a);
    ctl_wq_done(f->q, b);
    assert_int_equal(ctl_wq_add_rate_limited(f->q, "x", &d), 0);
    assert_int_equal(d, 5);
    assert_int_equal(ctl_wq_add_rate_limited(f->q, "y", &d), 0);
    assert_int_equal(d, 10);
    ctl_wq_forget(f->q, "x");
    ctl_wq_forget(f->q, "y");
}

static void test_shutdown(void **state)
{
    fx *f = *state;
    ctl_wq_add(f->q, "a");
    ctl_wq_add_after(f->q, "later", 10000);
    ctl_wq_shutdown(f->q);
    assert_true(ctl_wq_shutting_down(f->q));
    assert_int_equal(ctl_wq_add(f->q, "b"), -ESHUTDOWN);
    assert_int_equal(ctl_wq_add_after(f->q, "b", 5), -ESHUTDOWN);
    assert_int_equal(ctl_wq_add_rate_limited(f->q, "b", NULL), -ESHUTDOWN);
    /* What was ready drains, then workers are told to exit. */
    const char *k = get(f->q);
    assert_string_equal(k, "a");
    ctl_wq_done(f->q, k);
    assert_int_equal(ctl_wq_get(f->q, &k), -ESHUTDOWN);
}

/* Every allocation failing in turn: a clean -ENOMEM and no leak. */
static void test_oom(void **state)
{
    fx *f = *state;
    ctl_wq_close(f->q, on_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    f->q = NULL;
    for (long n = 0;; n++) {
        tu_alloc_fail_after(n);
        ctl_wq *q;
        int rc = ctl_wq_create(&f->loop, NULL, &q);
        if (rc == 0) {
            rc = ctl_wq_add(q, "a");
            if (rc == 0)
                rc = ctl_wq_add_after(q, "b", 10);
            if (rc == 0)
                rc = ctl_wq_add_rate_limited(q, "c", NULL);
            if (rc == 0)
                rc = ctl_wq_add(q, "d");
            ctl_wq_close(q, NULL);
            uv_run(&f->loop, UV_RUN_DEFAULT);
        }
        tu_alloc_fail_after(-1);
        assert_int_equal(tu_alloc_outstanding(), 0);
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_true(n < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processing_readd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_after_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
