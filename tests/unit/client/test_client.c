/*
 * libskiff against a fake server (fs.c): the request paths, retry rules,
 * deadlines, watch resume without gap or duplicate, compaction cancel,
 * lease keep-alive, the asynchronous API under thousands of in-flight
 * requests, close semantics, and allocation-failure injection.  Every
 * test's teardown fails if the client leaked a cm_* allocation.
 */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include <uv.h>

#include "skiff.h"
#include "tu.h"

typedef struct fx {
    fs *srv;
    fs_knobs *k;
    char ep[64];
    const char *eps[1];
} fx;

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    f->srv = fs_start();
    f->k = fs_knobs_of(f->srv);
    snprintf(f->ep, sizeof f->ep, "127.0.0.1:%d", fs_port(f->srv));
    f->eps[0] = f->ep;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fs_stop(f->srv);
    free(f);
    long left = tu_alloc_uninstall();
    if (left != 0)
        fprintf(stderr, "leaked %ld blocks\n", left);
    return left == 0 ? 0 : -1;
}

static skiff_config cfg_of(fx *f)
{
    skiff_config c;
    memset(&c, 0, sizeof c);
    c.endpoints = f->eps;
    c.n_endpoints = 1;
    c.dial_timeout_ms = 1000;
    c.request_timeout_ms = 3000;
    c.backoff_min_ms = 10;
    c.backoff_max_ms = 50;
    return c;
}

static skiff_client *blocking(fx *f)
{
    skiff_config c = cfg_of(f);
    skiff_client *cl = NULL;
    assert_int_equal(skiff_client_create(&cl, &c), 0);
    return cl;
}

/* ---- pure pieces --------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(SKIFF_ECOMPACTED, -6002);
    assert_string_equal(skiff_err_name(SKIFF_ECOMPACTED), "SKIFF_ECOMPACTED");
    assert_string_equal(skiff_err_wire_name(SKIFF_ENO_SPACE), "NO_SPACE");
    assert_null(skiff_err_wire_name(SKIFF_EUNKNOWN));
    assert_string_equal(skiff_err_name(-ECONNREFUSED), "ECONNREFUSED");
    assert_non_null(strstr(skiff_strerror(SKIFF_EUNKNOWN), "unknown"));
    /* The membership codes follow the wire's numbering. */
    assert_int_equal(SKIFF_EMEMBER_EXISTS, -6030);
    assert_int_equal(SKIFF_EUNHEALTHY_CLUSTER, -6034);
    assert_string_equal(skiff_err_wire_name(SKIFF_EMEMBER_NOT_FOUND),
                        "MEMBER_NOT_FOUND");
    assert_string_equal(skiff_err_wire_name(SKIFF_ELEARNER_NOT_READY),
                        "LEARNER_NOT_READY");

    uint8_t buf[8];
    skiff_op op = {.type = SKIFF_OP_RANGE, .key = "abc", .key_len = 3};
    assert_int_equal(skiff_op_prefix(&op, buf, sizeof buf), 0);
    assert_int_equal(op.range_end_len, 3);
    assert_memory_equal(op.range_end, "abd", 3);
    op.key = "a\xff";
    op.key_len = 2;
    assert_int_equal(skiff_op_prefix(&op, buf, sizeof buf), 0);
    assert_int_equal(op.range_end_len, 1);
    assert_memory_equal(op.range_end, "b", 1);
    op.key = "";
    op.key_len = 0;
    assert_int_equal(skiff_op_prefix(&op, buf, sizeof buf), 0);
    assert_int_equal(op.range_end_len, 1);
    assert_int_equal(((const uint8_t *)op.range_end)[0], 0);
    op.key = "abc";
    op.key_len = 3;
    assert_int_equal(skiff_op_prefix(&op, buf, 2), -EINVAL);
    skiff_op_from_key(&op);
    assert_int_equal(op.range_end_len, 1);
}

static void test_config(void **state)
{
    fx *f = *state;
    skiff_client *cl = NULL;
    skiff_config c = cfg_of(f);
    c.n_endpoints = 0;
    assert_int_equal(skiff_client_create(&cl, &c), -EINVAL);
    const char *bad[] = {"no-port-here"};
    c = cfg_of(f);
    c.endpoints = bad;
    assert_int_equal(skiff_client_create(&cl, &c), -EINVAL);
    c = cfg_of(f);
    c.cert_file = "/nonexistent/cert.pem";
    assert_int_equal(skiff_client_create(&cl, &c), -EINVAL);
    c.key_file = "/nonexistent/key.pem";
    assert_int_equal(skiff_client_create(&cl, &c), SKIFF_ETLS);
    c = cfg_of(f);
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(skiff_client_create(&cl, &c), SKIFF_ETLS);
    const char *ok[] = {"http://localhost:2379", "[::1]:2379"};
    c = cfg_of(f);
    c.endpoints = ok;
    c.n_endpoints = 2;
    assert_int_equal(skiff_client_create(&cl, &c), 0);
    skiff_client_destroy(cl);
}

/* ---- blocking calls ------------------------------------------------------ */

static void test_put_get(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    skiff_result r;
    assert_int_equal(skiff_put(cl, "a/1", 3, "x", 1, 0, &r), 0);
    assert_int_equal(r.header.revision, 1);
    assert_int_equal(r.header.cluster_id, 7);
    skiff_result_free(&r);
    assert_int_equal(skiff_put(cl, "a/2", 3, "yy", 2, 0, NULL), 0);
    skiff_op op = {.type = SKIFF_OP_PUT,
                   .key = "a/1",
                   .key_len = 3,
                   .value = "z",
                   .value_len = 1,
                   .flags = SKIFF_PREV_KV};
    assert_int_equal(skiff_do_sync(cl, &op, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    assert_memory_equal(r.kvs[0].value, "x", 1);
    skiff_result_free(&r);

    assert_int_equal(skiff_get(cl, "a/1", 3, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    assert_memory_equal(r.kvs[0].value, "z", 1);
    assert_int_equal(r.kvs[0].version, 2);
    assert_int_equal(r.kvs[0].mod_revision, 3);
    skiff_result_free(&r);
    assert_int_equal(skiff_get_prefix(cl, "a/", 2, &r), 0);
    assert_int_equal(r.n_kvs, 2);
    assert_int_equal(r.count, 2);
    skiff_result_free(&r);
    assert_int_equal(skiff_get(cl, "nope", 4, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    skiff_result_free(&r);

    assert_int_equal(skiff_status(cl, &r), 0);
    assert_string_equal(r.status.version, "fake-1");
    skiff_result_free(&r);

    /* Unknown to the fake: the server's error comes back typed. */
    skiff_op hk = {.type = SKIFF_OP_HASHKV};
    assert_int_equal(skiff_do_sync(cl, &hk, &r), SKIFF_EUNIMPLEMENTED);
    assert_non_null(r.error_message);
    assert_non_null(strstr(skiff_client_errmsg(cl), "UNIMPLEMENTED"));
    skiff_result_free(&r);

    FILE *tmp = tmpfile();
    uint64_t n = 0;
    assert_int_equal(skiff_snapshot(cl, fileno(tmp), &n), 0);
    assert_int_equal(n, 8);
    char buf[16] = {0};
    rewind(tmp);
    assert_int_equal(fread(buf, 1, sizeof buf, tmp), 8);
    assert_string_equal(buf, "abcdefgh");
    fclose(tmp);

    skiff_op bad = {.type = SKIFF_OP_PUT, .key = NULL, .key_len = 3};
    assert_int_equal(skiff_do_sync(cl, &bad, NULL), -EINVAL);
    skiff_client_destroy(cl);
}

static void test_retry_no_leader(void **state)
{
    fx *f = *state;
    /* By name this time, through the resolver. */
    snprintf(f->ep, sizeof f->ep, "http://localhost:%d", fs_port(f->srv));
    skiff_client *cl = blocking(f);
    assert_int_equal(skiff_put(cl, "k", 1, "v", 1, 0, NULL), 0);
    /* A read is safe to repeat: sent until a member has a leader. */
    atomic_store(&f->k->no_leader, 3);
    skiff_result r;
    assert_int_equal(skiff_get(cl, "k", 1, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    skiff_result_free(&r);
    assert_int_equal(atomic_load(&f->k->requests), 5);
    /* A write is not: the member may have forwarded it before it lost
     * the leader, so the caller gets the answer instead of a resend. */
    atomic_store(&f->k->no_leader, 1);
    assert_int_equal(skiff_put(cl, "k", 1, "v2", 2, 0, &r), SKIFF_ENO_LEADER);
    skiff_result_free(&r);
    assert_int_equal(atomic_load(&f->k->requests), 6);
    assert_int_equal(atomic_load(&f->k->puts), 1);
    assert_non_null(strstr(skiff_client_errmsg(cl), "NO_LEADER"));
    skiff_client_destroy(cl);
}

static void test_unknown_outcome(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    assert_int_equal(skiff_put(cl, "k", 1, "v1", 2, 0, NULL), 0);
    /* Applied, then the connection dies before the answer. */
    atomic_store(&f->k->drop_after_put, 1);
    assert_int_equal(skiff_put(cl, "k", 1, "v2", 2, 0, NULL), SKIFF_EUNKNOWN);
    assert_int_equal(atomic_load(&f->k->puts), 2); /* never resent */
    skiff_result r;
    assert_int_equal(skiff_get(cl, "k", 1, &r), 0);
    assert_memory_equal(r.kvs[0].value, "v2", 2);
    skiff_result_free(&r);
    /* A read whose connection dies is simply sent again. */
    atomic_store(&f->k->drop_before, 1);
    assert_int_equal(skiff_get(cl, "k", 1, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    skiff_result_free(&r);
    assert_true(atomic_load(&f->k->accepts) >= 3);
    skiff_client_destroy(cl);
}

static void test_deadline(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    atomic_store(&f->k->silent, 1);
    skiff_op op = {
        .type = SKIFF_OP_RANGE, .key = "k", .key_len = 1, .timeout_ms = 200};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(skiff_do_sync(cl, &op, NULL), SKIFF_EDEADLINE);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 150 && ms < 2000);
    skiff_client_destroy(cl);
}

static void test_no_endpoint(void **state)
{
    (void)state;
    /* A port nobody listens on: bind one, learn it, close it. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t t;
    uv_tcp_init(&loop, &t);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&t, (struct sockaddr *)&sa, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", ntohs(sa.sin_port));
    const char *eps[] = {ep};
    skiff_config c = {.endpoints = eps,
                      .n_endpoints = 1,
                      .dial_timeout_ms = 300,
                      .request_timeout_ms = 5000,
                      .backoff_min_ms = 10,
                      .backoff_max_ms = 50};
    skiff_client *cl;
    assert_int_equal(skiff_client_create(&cl, &c), 0);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(skiff_get(cl, "k", 1, NULL), SKIFF_ENOENDPOINT);
    assert_true((uv_hrtime() - t0) / 1000000 < 3000);
    assert_non_null(strstr(skiff_client_errmsg(cl), ep));
    skiff_client_destroy(cl);
}

static void test_failover(void **state)
{
    fx *f = *state;
    /* Two members: the first says UNAVAILABLE to everything.  Reads move
     * to the second and are retried there; a write is answered with the
     * error (never re-sent), and the next write goes to the second. */
    fs *bad = fs_start();
    atomic_store(&fs_knobs_of(bad)->unavailable, 1000000);
    char ep2[64];
    snprintf(ep2, sizeof ep2, "127.0.0.1:%d", fs_port(bad));
    for (int order = 0; order < 2; order++) {
        const char *eps[2] = {order ? f->ep : ep2, order ? ep2 : f->ep};
        skiff_config c = cfg_of(f);
        c.endpoints = eps;
        c.n_endpoints = 2;
        skiff_client *cl;
        assert_int_equal(skiff_client_create(&cl, &c), 0);
        for (int i = 0; i < 3; i++)
            assert_int_equal(skiff_get(cl, "k", 1, NULL), 0);
        skiff_client_destroy(cl);
    }
    int bad_reqs = atomic_load(&fs_knobs_of(bad)->requests);
    assert_true(bad_reqs >= 1);
    const char *eps[2] = {ep2, f->ep};
    skiff_config c = cfg_of(f);
    c.endpoints = eps;
    c.n_endpoints = 2;
    skiff_client *cl;
    assert_int_equal(skiff_client_create(&cl, &c), 0);
    assert_int_equal(skiff_put(cl, "k", 1, "v", 1, 0, NULL),
                     SKIFF_EUNAVAILABLE);
    assert_int_equal(atomic_load(&fs_knobs_of(bad)->requests), bad_reqs + 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(skiff_put(cl, "k", 1, "v", 1, 0, NULL), 0);
    skiff_client_destroy(cl);
    assert_int_equal(atomic_load(&f->k->puts), 3);
    assert_int_equal(atomic_load(&fs_knobs_of(bad)->requests), bad_reqs + 1);
    assert_int_equal(atomic_load(&fs_knobs_of(bad)->puts), 0);
    fs_stop(bad);
}

static void test_members(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    const char *urls[] = {"http://127.0.0.1:2390"};
    skiff_result r;
    assert_int_equal(skiff_member_add(cl, urls, 1, 1, &r), 0);
    assert_int_equal(r.member.id, 42);
    assert_true(r.member.is_learner);
    assert_int_equal(r.member.n_peer_urls, 1);
    assert_string_equal(r.member.peer_urls[0], urls[0]);
    assert_int_equal(r.n_members, 2);
    assert_string_equal(r.members[0].name, "fake");
    assert_int_equal(r.members[1].id, 42);
    assert_int_equal(r.header.cluster_id, 7);
    skiff_result_free(&r);
    assert_int_equal(skiff_member_remove(cl, 5, &r), SKIFF_EMEMBER_NOT_FOUND);
    skiff_result_free(&r);
    assert_non_null(strstr(skiff_client_errmsg(cl), "MEMBER_NOT_FOUND"));
    /* A membership change whose connection breaks is not sent again. */
    int before = atomic_load(&f->k->requests);
    atomic_store(&f->k->drop_before, 1);
    assert_int_equal(skiff_member_add(cl, urls, 1, 0, NULL), SKIFF_EUNKNOWN);
    assert_int_equal(atomic_load(&f->k->requests), before + 1);
    skiff_client_destroy(cl);
}

static void test_move_leader(void **state)
{
    fx *f = *state;
    /* Two members; the second listed (f->srv, ID 1) is the leader.  The
     * request must reach it even though the client's connection starts at
     * the follower, which would answer NOT_LEADER. */
    fs *fol = fs_start();
    fs_knobs *fk = fs_knobs_of(fol);
    atomic_store(&fk->member_id, 2);
    atomic_store(&fk->leader, 1);
    char ep2[64];
    snprintf(ep2, sizeof ep2, "127.0.0.1:%d", fs_port(fol));
    const char *eps[2] = {ep2, f->ep};
    skiff_config c = cfg_of(f);
    c.endpoints = eps;
    c.n_endpoints = 2;
    skiff_client *cl;
    assert_int_equal(skiff_client_create(&cl, &c), 0);
    uint64_t from = 0;
    skiff_result r;
    assert_int_equal(skiff_move_leader(cl, 2, &from, &r), 0);
    assert_int_equal(from, 1);
    assert_int_equal(r.header.member_id, 1);
    skiff_result_free(&r);
    assert_int_equal(atomic_load(&f->k->move_leaders), 1);
    assert_int_equal(atomic_load(&fk->move_leaders), 0);
    /* Sent to the follower with skiff_do_sync, NOT_LEADER comes back with
     * the hint instead of being retried until the deadline. */
    skiff_client *one;
    skiff_config c1 = cfg_of(f);
    c1.endpoints = eps;
    assert_int_equal(skiff_client_create(&one, &c1), 0);
    skiff_op op = {.type = SKIFF_OP_MOVE_LEADER, .member_id = 2};
    assert_int_equal(skiff_do_sync(one, &op, &r), SKIFF_ENOT_LEADER);
    assert_int_equal(r.leader_hint, 1);
    skiff_result_free(&r);
    /* Bad input never reaches a member. */
    assert_int_equal(skiff_move_leader(one, 0, NULL, NULL), -EINVAL);
    assert_int_equal(skiff_member_remove(one, 0, NULL), -EINVAL);
    assert_int_equal(skiff_member_promote(one, 0, NULL), -EINVAL);
    assert_int_equal(skiff_member_add(one, NULL, 0, 1, NULL), -EINVAL);
    skiff_client_destroy(one);
    /* No endpoint is the leader and the one named is unknown to member
     * list (the fake does not implement it): a clear error, no request. */
    atomic_store(&f->k->leader, 3);
    assert_true(skiff_move_leader(cl, 2, NULL, NULL) < 0);
    assert_int_equal(atomic_load(&f->k->move_leaders), 1);
    skiff_client_destroy(cl);
    fs_stop(fol);
}

/* ---- watches ------------------------------------------------------------- */

static void expect_event(skiff_watcher *wr, const char *key, int64_t rev)
{
    skiff_watch_resp r;
    assert_int_equal(skiff_watcher_next(wr, 3000, &r), 0);
    assert_int_equal(r.n_events, 1);
    assert_int_equal(r.revision, rev);
    assert_int_equal(r.events[0].kv.key_len, strlen(key));
    assert_memory_equal(r.events[0].kv.key, key, strlen(key));
    skiff_watch_resp_free(&r);
}

static void test_watch_resume(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    skiff_op op = {.key = "w/", .key_len = 2};
    uint8_t end[8];
    skiff_op_prefix(&op, end, sizeof end);
    skiff_watch_opts o = {.key = "w/",
                          .key_len = 2,
                          .range_end = op.range_end,
                          .range_end_len = op.range_end_len};
    skiff_watcher *wr;
    assert_int_equal(skiff_watcher_open(cl, &wr, &o), 0);
    assert_int_equal(skiff_put(cl, "w/a", 3, "1", 1, 0, NULL), 0);
    assert_int_equal(skiff_put(cl, "x", 1, "1", 1, 0, NULL), 0);
    assert_int_equal(skiff_put(cl, "w/b", 3, "2", 1, 0, NULL), 0);
    expect_event(wr, "w/a", 1);
    expect_event(wr, "w/b", 3);

    /* Break the connection; the server then replays one revision too
     * many on re-creation.  The caller must see neither gap nor dup. */
    atomic_store(&f->k->sloppy_resume, 1);
    atomic_store(&f->k->drop_before, 1);
    assert_int_equal(skiff_put(cl, "w/c", 3, "3", 1, 0, NULL), SKIFF_EUNKNOWN);
    assert_int_equal(skiff_put(cl, "w/d", 3, "4", 1, 0, NULL), 0);
    expect_event(wr, "w/d", 4);
    assert_int_equal(atomic_load(&f->k->watch_creates), 2);
    assert_int_equal(atomic_load(&f->k->last_watch_start), 4);
    skiff_watch_resp r;
    assert_int_equal(skiff_watcher_next(wr, 100, &r), -ETIMEDOUT);

    /* Progress on request. */
    assert_int_equal(skiff_watcher_progress(wr), 0);
    assert_int_equal(skiff_watcher_next(wr, 3000, &r), 0);
    assert_int_equal(r.n_events, 0);
    assert_int_equal(r.revision, 4);
    skiff_watch_resp_free(&r);
    skiff_watcher_close(wr);
    skiff_client_destroy(cl);
}

typedef struct wctx {
    int status;
    int ended;
    int64_t compact;
    int created;
    int events;
} wctx;

static void compact_cb(skiff_watch *w, int status, const skiff_watch_resp *r)
{
    wctx *x = w->data;
    if (status < 0) {
        x->ended++;
        x->status = status;
        x->compact = r->compact_revision;
    } else if (r->created) {
        x->created++;
    } else {
        x->events++;
    }
}

static void test_watch_compacted(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    atomic_store(&f->k->compact_rev, 5);
    wctx x = {0};
    skiff_watch w;
    w.data = &x;
    skiff_watch_opts o = {.key = "a", .key_len = 1, .start_revision = 2};
    assert_int_equal(skiff_watch_start(cl, &w, &o, compact_cb), 0);
    assert_int_equal(x.ended, 0); /* never inside the starting call */
    uint64_t t0 = uv_hrtime();
    while (!x.ended && uv_hrtime() - t0 < 5000000000ull)
        skiff_client_poll(cl, 10);
    assert_int_equal(x.status, SKIFF_ECOMPACTED);
    assert_int_equal(x.compact, 5);
    assert_int_equal(x.created, 0);
    skiff_client_destroy(cl);
}

/* ---- leases -------------------------------------------------------------- */

typedef struct kctx {
    int ok;
    int ended;
    int status;
} kctx;

static void ka_cb(skiff_keepalive *ka, int status, int64_t ttl)
{
    kctx *x = ka->data;
    if (status == 0) {
        assert_int_equal(ttl, 1);
        x->ok++;
    } else {
        x->ended++;
        x->status = status;
    }
}

static void test_keepalive(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f);
    int64_t id = 0, ttl = 0;
    assert_int_equal(skiff_lease_grant(cl, 1, 0, &id, &ttl), 0);
    assert_true(id > 0);
    assert_int_equal(ttl, 1);
    kctx x = {0};
    skiff_keepalive ka;
    ka.data = &x;
    assert_int_equal(skiff_keepalive_start(cl, &ka, id, ttl, ka_cb), 0);
    /* TTL 1 s: a keep-alive at once, then every 500 ms (the floor). */
    uint64_t t0 = uv_hrtime();
    while (x.ok < 3 && (uv_hrtime() - t0) < 5000000000ull)
        skiff_client_poll(cl, 50);
    assert_true(x.ok >= 3);
    assert_int_equal(x.ended, 0);
    assert_int_equal(skiff_lease_revoke(cl, id), 0);
    while (!x.ended && (uv_hrtime() - t0) < 10000000000ull)
        skiff_client_poll(cl, 50);
    assert_int_equal(x.status, SKIFF_ELEASE_NOT_FOUND);
    int64_t left;
    assert_int_equal(skiff_lease_keepalive_once(cl, id, &left),
                     SKIFF_ELEASE_NOT_FOUND);
    skiff_client_destroy(cl);
}

/* ---- informers ----------------------------------------------------------- */

typedef struct ictx {
    int add, upd, del, synced, ended, status;
} ictx;

static void inf_cb(skiff_informer *inf, int status, skiff_informer_event ev,
                   const skiff_kv *kv, const skiff_kv *old, void *data)
{
    ictx *x = data;
    (void)inf;
    switch (ev) {
    case SKIFF_INFORMER_ADD:
        assert_non_null(kv);
        assert_null(old);
        x->add++;
        break;
    case SKIFF_INFORMER_UPDATE:
        assert_non_null(kv);
        assert_non_null(old);
        assert_true(kv->mod_revision > old->mod_revision);
        x->upd++;
        break;
    case SKIFF_INFORMER_DELETE:
        assert_null(kv);
        assert_non_null(old);
        x->del++;
        break;
    case SKIFF_INFORMER_SYNCED:
        x->synced++;
        break;
    case SKIFF_INFORMER_ENDED:
        x->ended++;
        x->status = status;
        break;
    }
}

static void poll_until(skiff_client *cl, const int *v, int want)
{
    uint64_t t0 = uv_hrtime();
    while (*v < want && uv_hrtime() - t0 < 5000000000ull)
        skiff_client_poll(cl, 10);
    assert_true(*v >= want);
}

static void test_informer(void **state)
{
    fx *f = *state;
    skiff_client *cl = blocking(f), *w = blocking(f);
    assert_int_equal(skiff_put(w, "i/a", 3, "1", 1, 0, NULL), 0);
    assert_int_equal(skiff_put(w, "i/b", 3, "2", 1, 0, NULL), 0);
    assert_int_equal(skiff_put(w, "j", 1, "x", 1, 0, NULL), 0);
    ictx x = {0};
    skiff_informer *inf;
    assert_int_equal(skiff_informer_start(cl, &inf, "i/", 2, inf_cb, &x), 0);
    assert_int_equal(x.synced, 0);
    poll_until(cl, &x.synced, 1);
    assert_int_equal(x.add, 2);
    assert_int_equal(skiff_informer_len(inf), 2);
    assert_int_equal(skiff_informer_revision(inf), 3);

    /* Live changes arrive through the watch. */
    assert_int_equal(skiff_put(w, "i/c", 3, "3", 1, 0, NULL), 0);
    assert_int_equal(skiff_put(w, "i/a", 3, "11", 2, 0, NULL), 0);
    assert_int_equal(skiff_delete(w, "i/b", 3, NULL, 0, NULL), 0);
    poll_until(cl, &x.del, 1);
    assert_int_equal(x.add, 3);
    assert_int_equal(x.upd, 1);
    assert_int_equal(skiff_informer_len(inf), 2);
    const skiff_kv *kv = skiff_informer_get(inf, "i/a", 3);
    assert_non_null(kv);
    assert_memory_equal(kv->value, "11", 2);
    assert_null(skiff_informer_get(inf, "i/b", 3));
    assert_int_equal(skiff_informer_revision(inf), 6);

    /* The watch breaks while changes happen, and its history is gone:
     * the informer lists again and reports the difference. */
    atomic_store(&f->k->drop_before, 1);
    assert_int_equal(skiff_status(w, NULL), 0); /* dropped, then retried */
    assert_int_equal(skiff_delete(w, "i/c", 3, NULL, 0, NULL), 0);
    assert_int_equal(skiff_put(w, "i/d", 3, "4", 1, 0, NULL), 0);
    atomic_store(&f->k->compact_next_watch, 1);
    poll_until(cl, &x.synced, 2);
    assert_int_equal(x.del, 2);
    assert_int_equal(x.add, 4);
    assert_int_equal(x.upd, 1);
    assert_non_null(skiff_informer_get(inf, "i/d", 3));
    assert_int_equal(skiff_informer_len(inf), 2);

    skiff_informer_close(inf);
    assert_int_equal(x.ended, 0);
    poll_until(cl, &x.ended, 1);
    assert_int_equal(x.status, -ECANCELED);
    skiff_client_destroy(w);
    skiff_client_destroy(cl);
}

/* ---- asynchronous -------------------------------------------------------- */

#define NREQ 5000

typedef struct actx {
    int done;
    int failed;
    int in_start;
    int closed;
    int canceled;
    int64_t max_lat_ns;
} actx;

static void put_cb(skiff_req *req, int status)
{
    actx *x = req->data;
    assert_false(x->in_start);
    if (status == 0) {
        assert_int_equal(req->result.type, SKIFF_OP_PUT);
        int64_t lat = req->end_ns - req->start_ns;
        assert_true(lat >= 0);
        if (lat > x->max_lat_ns)
            x->max_lat_ns = lat;
    } else if (status == -ECANCELED) {
        x->canceled++;
    } else {
        if (!x->failed)
            fprintf(stderr, "first failure: %s done=%d\n",
                    skiff_err_name(status), x->done);
        x->failed++;
    }
    x->done++;
}

static void close_cb(skiff_client *c)
{
    actx *x = *(actx **)uv_loop_get_data(skiff_client_loop(c));
    x->closed = 1;
}

static void test_async_many(void **state)
{
    fx *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    skiff_config c = cfg_of(f);
    c.conns = 3;
    c.max_streams = 256; /* more than that waits inside the client */
    skiff_client *cl;
    assert_int_equal(skiff_client_create_async(&cl, &c, &loop), 0);
    assert_int_equal(
        skiff_do_sync(cl, &(skiff_op){.type = SKIFF_OP_STATUS}, NULL),
        SKIFF_EWRONG_MODE);
    actx x = {0};
    actx *xp = &x;
    uv_loop_set_data(&loop, &xp);
    skiff_req *reqs = calloc(NREQ, sizeof *reqs);
    char key[32];
    x.in_start = 1;
    for (int i = 0; i < NREQ; i++) {
        snprintf(key, sizeof key, "bench/%d", i);
        skiff_op op = {.type = SKIFF_OP_PUT,
                       .key = key,
                       .key_len = strlen(key),
                       .value = "v",
                       .value_len = 1};
        reqs[i].data = &x;
        assert_int_equal(skiff_do(cl, &reqs[i], &op, put_cb), 0);
    }
    x.in_start = 0;
    while (x.done < NREQ)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(x.failed, 0);
    assert_int_equal(atomic_load(&f->k->puts), NREQ);
    assert_true(atomic_load(&f->k->accepts) == 3);

    /* Close with requests outstanding: each ends -ECANCELED, later. */
    atomic_store(&f->k->silent, 1);
    x.done = 0;
    x.in_start = 1;
    for (int i = 0; i < 10; i++) {
        skiff_op op = {.type = SKIFF_OP_RANGE, .key = "k", .key_len = 1};
        assert_int_equal(skiff_do(cl, &reqs[i], &op, put_cb), 0);
    }
    skiff_client_close(cl, close_cb);
    assert_int_equal(x.done, 0);
    x.in_start = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(x.canceled, 10);
    assert_int_equal(x.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(reqs);
}

/* ---- allocation failures ------------------------------------------------- */

static void test_alloc_failures(void **state)
{
    fx *f = *state;
    int succeeded = 0;
    for (long n = 0; n < 400 && !succeeded; n++) {
        long before = tu_alloc_failures();
        tu_alloc_fail_after(n);
        skiff_config c = cfg_of(f);
        c.request_timeout_ms = 1000;
        skiff_client *cl = NULL;
        int rc = skiff_client_create(&cl, &c);
        if (rc == 0) {
            skiff_result r;
            rc = skiff_put(cl, "f", 1, "v", 1, 0, NULL);
            if (rc == 0)
                rc = skiff_get(cl, "f", 1, &r);
            if (rc == 0) {
                assert_int_equal(r.n_kvs, 1);
                skiff_result_free(&r);
            }
            skiff_client_destroy(cl);
        }
        succeeded = rc == 0 && tu_alloc_failures() == before;
        tu_alloc_fail_after(-1);
        if (rc != 0)
            assert_true(rc == -ENOMEM || rc == SKIFF_EUNKNOWN ||
                        rc == SKIFF_EDEADLINE || rc == SKIFF_ENOENDPOINT);
        assert_int_equal(tu_alloc_outstanding(), 0);
    }
    assert_true(succeeded);
}

/* skiff_move_leader opens and closes clients of its own: under allocation
 * failures it must return an error and leak nothing. */
static void test_alloc_failures_move_leader(void **state)
{
    fx *f = *state;
    int succeeded = 0;
    for (long n = 0; n < 600 && !succeeded; n++) {
        long before = tu_alloc_failures();
        tu_alloc_fail_after(n);
        skiff_config c = cfg_of(f);
        c.request_timeout_ms = 1000;
        skiff_client *cl = NULL;
        int rc = skiff_client_create(&cl, &c);
        if (rc == 0) {
            uint64_t from = 0;
            rc = skiff_move_leader(cl, 2, &from, NULL);
            if (rc == 0)
                assert_int_equal(from, 1);
            skiff_client_destroy(cl);
        }
        succeeded = rc == 0 && tu_alloc_failures() == before;
        tu_alloc_fail_after(-1);
        if (rc != 0)
            assert_true(rc == -ENOMEM || rc == SKIFF_EUNKNOWN ||
                        rc == SKIFF_EDEADLINE || rc == SKIFF_ENOENDPOINT ||
                        rc == SKIFF_ENO_LEADER);
        assert_int_equal(tu_alloc_outstanding(), 0);
    }
    assert_true(succeeded);
}

/* The watch and keep-alive paths under allocation failures: every
 * failure must surface as an error or a retry, never a leak or a crash. */
static void test_alloc_failures_watch(void **state)
{
    fx *f = *state;
    int succeeded = 0;
    for (long n = 0; n < 600 && !succeeded; n++) {
        long before = tu_alloc_failures();
        tu_alloc_fail_after(n);
        skiff_config c = cfg_of(f);
        c.request_timeout_ms = 500;
        skiff_client *cl = NULL;
        int rc = skiff_client_create(&cl, &c);
        if (rc == 0) {
            skiff_watcher *wr = NULL;
            skiff_watch_opts o = {.key = "fw", .key_len = 2};
            rc = skiff_watcher_open(cl, &wr, &o);
            if (rc == 0) {
                rc = skiff_put(cl, "fw", 2, "v", 1, 0, NULL);
                skiff_watch_resp r;
                if (rc == 0)
                    rc = skiff_watcher_next(wr, 500, &r);
                if (rc == 0) {
                    assert_int_equal(r.n_events, 1);
                    skiff_watch_resp_free(&r);
                }
                skiff_watcher_close(wr);
            }
            skiff_keepalive ka;
            ka.data = NULL;
            if (skiff_keepalive_start(cl, &ka, 42, 5, NULL) == 0)
                skiff_client_poll(cl, 0);
            skiff_client_destroy(cl);
        }
        succeeded = rc == 0 && tu_alloc_failures() == before;
        tu_alloc_fail_after(-1);
        assert_int_equal(tu_alloc_outstanding(), 0);
    }
    assert_true(succeeded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_no_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_compacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_informer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures_move_leader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures_watch, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
