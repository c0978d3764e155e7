/*
 * libskiff against real skiffd processes on loopback: every KV option the
 * CLI exposes, compaction errors, leases with automatic keep-alive,
 * maintenance calls, a watch that survives a SIGKILL and restart of the
 * server without gap or duplicate, many concurrent asynchronous requests,
 * and TLS with a client certificate.  The skiffd binary comes as argv[1]
 * (CMake's $<TARGET_FILE:skiffd>); a missing binary fails every test.
 */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "skiff.h"
#include "srv.h"
#include "tu.h"

static const char *skiffd_bin;

typedef struct fx {
    srv s;
    char ep[64];
    const char *eps[1];
    skiff_client *c;
} fx;

static int start(fx *f, const char *const *extra, int tls)
{
    if (access(skiffd_bin, X_OK) != 0) {
        fprintf(stderr, "skiffd not found at %s\n", skiffd_bin);
        return -1;
    }
    if (srv_spawn(&f->s, skiffd_bin, f->s.dir[0] != 0, extra))
        return -1;
    snprintf(f->ep, sizeof f->ep, "%s127.0.0.1:%d", tls ? "https://" : "",
             f->s.port);
    f->eps[0] = f->ep;
    return 0;
}

static skiff_config cfg_of(fx *f)
{
    skiff_config c;
    memset(&c, 0, sizeof c);
    c.endpoints = f->eps;
    c.n_endpoints = 1;
    c.dial_timeout_ms = 2000;
    c.request_timeout_ms = 5000;
    c.backoff_min_ms = 20;
    c.backoff_max_ms = 200;
    return c;
}

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    *state = f;
    if (start(f, NULL, 0))
        return -1;
    skiff_config c = cfg_of(f);
    return skiff_client_create(&f->c, &c);
}

static int setup_bare(void **state)
{
    tu_alloc_install();
    *state = calloc(1, sizeof(fx));
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    skiff_client_destroy(f->c);
    srv_cleanup(&f->s);
    free(f);
    long left = tu_alloc_uninstall();
    if (left)
        fprintf(stderr, "leaked %ld blocks\n", left);
    return left ? -1 : 0;
}

#define OK(call)                                                               \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_)                                                               \
            fprintf(stderr, "%s: %s: %s\n", #call, skiff_err_name(rc_),        \
                    skiff_client_errmsg(f->c));                                \
        assert_int_equal(rc_, 0);                                              \
    } while (0)

static int64_t put(fx *f, const char *k, const char *v)
{
    skiff_result r;
    OK(skiff_put(f->c, k, strlen(k), v, strlen(v), 0, &r));
    int64_t rev = r.header.revision;
    skiff_result_free(&r);
    return rev;
}

/* ---- KV ------------------------------------------------------------------ */

static void test_kv(void **state)
{
    fx *f = *state;
    int64_t r1 = put(f, "k/a", "1");
    put(f, "k/b", "22");
    put(f, "k/c", "333");
    int64_t r4 = put(f, "k/a", "4444");
    assert_int_equal(r4, r1 + 3);

    skiff_result r;
    uint8_t end[8];
    skiff_op op = {.type = SKIFF_OP_RANGE, .key = "k/", .key_len = 2};
    skiff_op_prefix(&op, end, sizeof end);
    op.limit = 2;
    op.sort_order = SKIFF_SORT_DESCEND;
    op.sort_target = SKIFF_SORT_KEY;
    OK(skiff_do_sync(f->c, &op, &r));
    assert_int_equal(r.n_kvs, 2);
    assert_int_equal(r.count, 3);
    assert_true(r.more);
    assert_memory_equal(r.kvs[0].key, "k/c", 3);
    assert_memory_equal(r.kvs[1].key, "k/b", 3);
    skiff_result_free(&r);

    op.limit = 0;
    op.sort_order = SKIFF_SORT_NONE;
    op.flags = SKIFF_COUNT_ONLY;
    OK(skiff_do_sync(f->c, &op, &r));
    assert_int_equal(r.n_kvs, 0);
    assert_int_equal(r.count, 3);
    skiff_result_free(&r);

    op.flags = SKIFF_KEYS_ONLY | SKIFF_SERIALIZABLE;
    OK(skiff_do_sync(f->c, &op, &r));
    assert_int_equal(r.n_kvs, 3);
    assert_int_equal(r.kvs[0].value_len, 0);
    skiff_result_free(&r);

    /* An old revision, and from-key. */
    skiff_op old = {
        .type = SKIFF_OP_RANGE, .key = "k/a", .key_len = 3, .revision = r1};
    OK(skiff_do_sync(f->c, &old, &r));
    assert_int_equal(r.n_kvs, 1);
    assert_memory_equal(r.kvs[0].value, "1", 1);
    skiff_result_free(&r);
    skiff_op fk = {.type = SKIFF_OP_RANGE, .key = "k/b", .key_len = 3};
    skiff_op_from_key(&fk);
    OK(skiff_do_sync(f->c, &fk, &r));
    assert_int_equal(r.n_kvs, 2);
    skiff_result_free(&r);

    /* prev_kv on put and delete. */
    skiff_op p = {.type = SKIFF_OP_PUT,
                  .key = "k/b",
                  .key_len = 3,
                  .value = "x",
                  .value_len = 1,
                  .flags = SKIFF_PREV_KV};
    OK(skiff_do_sync(f->c, &p, &r));
    assert_int_equal(r.n_kvs, 1);
    assert_memory_equal(r.kvs[0].value, "22", 2);
    skiff_result_free(&r);
    skiff_op d = {.type = SKIFF_OP_DELETE,
                  .key = "k/b",
                  .key_len = 3,
                  .flags = SKIFF_PREV_KV};
    OK(skiff_do_sync(f->c, &d, &r));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.n_kvs, 1);
    assert_memory_equal(r.kvs[0].value, "x", 1);
    skiff_result_free(&r);

    /* Typed errors. */
    assert_int_equal(skiff_put(f->c, "", 0, "v", 1, 0, NULL), SKIFF_EEMPTY_KEY);
    skiff_op iv = {.type = SKIFF_OP_PUT,
                   .key = "k/none",
                   .key_len = 6,
                   .flags = SKIFF_IGNORE_VALUE};
    assert_int_equal(skiff_do_sync(f->c, &iv, NULL), SKIFF_EKEY_NOT_FOUND);
    skiff_op fut = {
        .type = SKIFF_OP_RANGE, .key = "k/a", .key_len = 3, .revision = 1000};
    assert_int_equal(skiff_do_sync(f->c, &fut, NULL), SKIFF_EFUTURE_REV);

    /* Txn: compare-and-swap with a nested txn in the success branch. */
    skiff_cmp cmp = {.result = SKIFF_CMP_EQUAL,
                     .target = SKIFF_CMP_VALUE,
                     .key = "k/a",
                     .key_len = 3,
                     .value = "4444",
                     .value_len = 4};
    skiff_op inner_ops[] = {
        {.type = SKIFF_OP_PUT,
         .key = "k/n",
         .key_len = 3,
         .value = "n",
         .value_len = 1},
    };
    skiff_op succ[] = {
        {.type = SKIFF_OP_PUT,
         .key = "k/a",
         .key_len = 3,
         .value = "5",
         .value_len = 1},
        {.type = SKIFF_OP_TXN, .success = inner_ops, .n_success = 1},
        {.type = SKIFF_OP_RANGE, .key = "k/c", .key_len = 3},
    };
    skiff_op fail_ops[] = {
        {.type = SKIFF_OP_RANGE, .key = "k/a", .key_len = 3}};
    skiff_op txn = {.type = SKIFF_OP_TXN,
                    .cmps = &cmp,
                    .n_cmps = 1,
                    .success = succ,
                    .n_success = 3,
                    .failure = fail_ops,
                    .n_failure = 1};
    OK(skiff_do_sync(f->c, &txn, &r));
    assert_true(r.succeeded);
    assert_int_equal(r.n_responses, 3);
    assert_int_equal(r.responses[0].type, SKIFF_OP_PUT);
    assert_int_equal(r.responses[1].type, SKIFF_OP_TXN);
    assert_int_equal(r.responses[1].n_responses, 1);
    assert_int_equal(r.responses[2].n_kvs, 1);
    skiff_result_free(&r);
    OK(skiff_do_sync(f->c, &txn, &r)); /* value is now "5": failure branch */
    assert_false(r.succeeded);
    assert_int_equal(r.n_responses, 1);
    assert_memory_equal(r.responses[0].kvs[0].value, "5", 1);
    skiff_result_free(&r);
}

static void test_compaction(void **state)
{
    fx *f = *state;
    int64_t r1 = put(f, "c", "1");
    put(f, "c", "2");
    int64_t r3 = put(f, "c", "3");
    OK(skiff_compact(f->c, r3, 1));
    skiff_result r;
    skiff_op old = {
        .type = SKIFF_OP_RANGE, .key = "c", .key_len = 1, .revision = r1};
    assert_int_equal(skiff_do_sync(f->c, &old, &r), SKIFF_ECOMPACTED);
    assert_int_equal(r.compact_revision, r3);
    skiff_result_free(&r);
    /* A watch that needs compacted history is canceled with the compact
     * revision. */
    skiff_watcher *w;
    skiff_watch_opts o = {.key = "c", .key_len = 1, .start_revision = r1};
    int rc = skiff_watcher_open(f->c, &w, &o);
    if (rc == 0) {
        /* created first, canceled right after (etcd's order) */
        skiff_watch_resp wr;
        rc = skiff_watcher_next(w, 5000, &wr);
        assert_int_equal(wr.compact_revision, r3);
        skiff_watcher_close(w);
    }
    assert_int_equal(rc, SKIFF_ECOMPACTED);
}

/* ---- leases -------------------------------------------------------------- */

typedef struct kctx {
    int ok, ended, status;
} kctx;

static void ka_cb(skiff_keepalive *ka, int status, int64_t ttl)
{
    kctx *x = ka->data;
    (void)ttl;
    if (status == 0)
        x->ok++;
    else {
        x->ended++;
        x->status = status;
    }
}

static void test_leases(void **state)
{
    fx *f = *state;
    int64_t id, ttl;
    OK(skiff_lease_grant(f->c, 3, 0, &id, &ttl));
    assert_int_equal(ttl, 3);
    OK(skiff_put(f->c, "l/1", 3, "v", 1, id, NULL));
    skiff_result r;
    skiff_op q = {
        .type = SKIFF_OP_LEASE_TTL, .lease = id, .flags = SKIFF_LEASE_KEYS};
    OK(skiff_do_sync(f->c, &q, &r));
    assert_int_equal(r.granted_ttl, 3);
    assert_true(r.ttl > 0 && r.ttl <= 3);
    assert_int_equal(r.n_lease_keys, 1);
    assert_memory_equal(r.lease_keys[0].key, "l/1", 3);
    skiff_result_free(&r);
    skiff_op ls = {.type = SKIFF_OP_LEASE_LEASES};
    OK(skiff_do_sync(f->c, &ls, &r));
    int found = 0;
    for (size_t i = 0; i < r.n_leases; i++)
        found |= r.leases[i] == id;
    assert_true(found);
    skiff_result_free(&r);

    /* Automatic keep-alive every TTL/3 = 1 s, over 2.5 s. */
    kctx x = {0};
    skiff_keepalive ka;
    ka.data = &x;
    OK(skiff_keepalive_start(f->c, &ka, id, ttl, ka_cb));
    OK(skiff_client_poll(f->c, 2500));
    assert_true(x.ok >= 3);
    assert_int_equal(x.ended, 0);
    OK(skiff_do_sync(f->c, &q, &r));
    assert_true(r.ttl >= 2);
    skiff_result_free(&r);
    OK(skiff_lease_revoke(f->c, id));
    OK(skiff_client_poll(f->c, 1200));
    assert_int_equal(x.ended, 1);
    assert_int_equal(x.status, SKIFF_ELEASE_NOT_FOUND);
    OK(skiff_get(f->c, "l/1", 3, &r));
    assert_int_equal(r.n_kvs, 0);
    skiff_result_free(&r);
}

/* ---- maintenance --------------------------------------------------------- */

static void test_maintenance(void **state)
{
    fx *f = *state;
    put(f, "m", "1");
    skiff_result r;
    OK(skiff_status(f->c, &r));
    assert_non_null(r.status.version);
    assert_true(r.status.leader != 0);
    assert_true(r.status.db_size > 0);
    skiff_result_free(&r);
    skiff_op hk = {.type = SKIFF_OP_HASHKV};
    OK(skiff_do_sync(f->c, &hk, &r));
    assert_true(r.hash_revision > 0);
    skiff_result_free(&r);
    skiff_op ml = {.type = SKIFF_OP_MEMBER_LIST};
    OK(skiff_do_sync(f->c, &ml, &r));
    assert_int_equal(r.n_members, 1);
    assert_string_equal(r.members[0].name, "t1");
    skiff_result_free(&r);
    skiff_op al = {.type = SKIFF_OP_ALARM, .alarm_action = SKIFF_ALARM_GET};
    OK(skiff_do_sync(f->c, &al, &r));
    assert_int_equal(r.n_alarms, 0);
    skiff_result_free(&r);
    skiff_op df = {.type = SKIFF_OP_DEFRAGMENT};
    OK(skiff_do_sync(f->c, &df, NULL));
    char path[300];
    snprintf(path, sizeof path, "%s/snap.db", f->s.dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    uint64_t n = 0;
    OK(skiff_snapshot(f->c, fd, &n));
    close(fd);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(n > 0);
    assert_int_equal((uint64_t)st.st_size, n);
}

/* ---- watch across a server crash ----------------------------------------- */

static int respawn_same_port(srv *s)
{
    char listen[64], metrics[64], data[300], peer[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", s->mport);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", s->pport);
    snprintf(data, sizeof data, "%s/data", s->dir);
    s->pid = fork();
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The same peer URL: it names the member. */
        execl(s->bin, s->bin, "--name", "t1", "--data-dir", data,
              "--listen-client-urls", listen, "--listen-metrics-urls", metrics,
              "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
              peer, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    return s->pid > 0 ? 0 : -1;
}

static void expect(fx *f, skiff_watcher *w, const char *key, int64_t rev)
{
    skiff_watch_resp r;
    int rc = skiff_watcher_next(w, 10000, &r);
    if (rc)
        fprintf(stderr, "watch: %s: %s\n", skiff_err_name(rc),
                skiff_client_errmsg(f->c));
    assert_int_equal(rc, 0);
    assert_int_equal(r.n_events, 1);
    assert_int_equal(r.revision, rev);
    assert_int_equal(r.events[0].kv.key_len, strlen(key));
    assert_memory_equal(r.events[0].kv.key, key, strlen(key));
    skiff_watch_resp_free(&r);
}

static void test_watch_survives_restart(void **state)
{
    fx *f = *state;
    skiff_watcher *w;
    skiff_watch_opts o = {.key = "w/", .key_len = 2};
    uint8_t end[8];
    skiff_op pr = {.key = "w/", .key_len = 2};
    skiff_op_prefix(&pr, end, sizeof end);
    o.range_end = pr.range_end;
    o.range_end_len = pr.range_end_len;
    o.flags = SKIFF_WATCH_PREV_KV;
    OK(skiff_watcher_open(f->c, &w, &o));
    int64_t r1 = put(f, "w/1", "a");
    int64_t r2 = put(f, "w/2", "b");
    expect(f, w, "w/1", r1);
    expect(f, w, "w/2", r2);

    /* Crash the member; restart it on the same port and data dir. */
    srv_kill(&f->s, SIGKILL);
    assert_int_equal(respawn_same_port(&f->s), 0);
    /* The client has not run since: its connection to the dead process
     * is noticed by the next call, before anything is sent. */
    /* The put waits for the connection, then goes out exactly once. */
    int64_t r3 = put(f, "w/3", "c");
    int64_t r4 = put(f, "w/1", "d");
    expect(f, w, "w/3", r3);
    skiff_watch_resp r;
    assert_int_equal(skiff_watcher_next(w, 10000, &r), 0);
    assert_int_equal(r.revision, r4);
    assert_int_equal(r.n_events, 1);
    assert_int_equal(r.events[0].has_prev_kv, 1);
    assert_memory_equal(r.events[0].prev_kv.value, "a", 1);
    skiff_watch_resp_free(&r);
    assert_int_equal(skiff_watcher_next(w, 300, &r), -ETIMEDOUT);
    /* A zero timeout polls: it returns at once when nothing is queued. */
    assert_int_equal(skiff_watcher_next(w, 0, &r), -ETIMEDOUT);
    skiff_watcher_close(w);
    /* An empty prefix means every key (key "\0"), as in etcd. */
    skiff_result all, some;
    OK(skiff_get_prefix(f->c, "", 0, &all));
    OK(skiff_get_prefix(f->c, "w/", 2, &some));
    assert_true(some.n_kvs >= 2);
    assert_int_equal(all.n_kvs, some.n_kvs); /* only w/ keys exist here */
    skiff_result_free(&all);
    skiff_result_free(&some);
}

/* ---- informer ------------------------------------------------------------ */

typedef struct ictx {
    int add, upd, del, synced, ended;
} ictx;

static void inf_cb(skiff_informer *inf, int status, skiff_informer_event ev,
                   const skiff_kv *kv, const skiff_kv *old, void *data)
{
    ictx *x = data;
    (void)inf, (void)status, (void)kv, (void)old;
    x->add += ev == SKIFF_INFORMER_ADD;
    x->upd += ev == SKIFF_INFORMER_UPDATE;
    x->del += ev == SKIFF_INFORMER_DELETE;
    x->synced += ev == SKIFF_INFORMER_SYNCED;
    x->ended += ev == SKIFF_INFORMER_ENDED;
}

/* Runs the client's loop until cond holds; fails after 10 s. */
#define POLL_UNTIL(cond)                                                       \
    do {                                                                       \
        uint64_t t0_ = uv_hrtime();                                            \
        while (!(cond) && uv_hrtime() - t0_ < 10000000000ull)                  \
            OK(skiff_client_poll(f->c, 20));                                   \
        assert_true(cond);                                                     \
    } while (0)

static void test_informer(void **state)
{
    fx *f = *state;
    put(f, "/informed/pods/a", "1");
    put(f, "/informed/pods/b", "2");
    put(f, "/informed/nodes/n", "3");
    ictx x = {0};
    skiff_informer *inf;
    OK(skiff_informer_start(f->c, &inf, "/informed/pods/", 15, inf_cb, &x));
    POLL_UNTIL(x.synced);
    assert_int_equal(x.add, 2);
    put(f, "/informed/pods/c", "3");
    put(f, "/informed/pods/a", "4");
    OK(skiff_delete(f->c, "/informed/pods/b", 16, NULL, 0, NULL));
    int64_t last = put(f, "/informed/nodes/m", "x");
    /* The informer is current once it has seen the last revision. */
    POLL_UNTIL(x.del >= 1 && skiff_informer_revision(inf) >= last - 1);
    assert_int_equal(x.add, 3);
    assert_int_equal(x.upd, 1);
    assert_int_equal(skiff_informer_len(inf), 2);
    const skiff_kv *kv = skiff_informer_get(inf, "/informed/pods/a", 16);
    assert_non_null(kv);
    assert_memory_equal(kv->value, "4", 1);
    skiff_informer_close(inf);
    POLL_UNTIL(x.ended);
}

/* ---- asynchronous load --------------------------------------------------- */

#define NASYNC 3000

typedef struct actx {
    int done, failed;
} actx;

static void acb(skiff_req *req, int status)
{
    actx *x = req->data;
    if (status) {
        if (!x->failed)
            fprintf(stderr, "async: %s\n", skiff_err_name(status));
        x->failed++;
    }
    x->done++;
}

static void test_async_load(void **state)
{
    fx *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    skiff_config c = cfg_of(f);
    c.conns = 4;
    skiff_client *ac;
    assert_int_equal(skiff_client_create_async(&ac, &c, &loop), 0);
    skiff_req *reqs = calloc(NASYNC, sizeof *reqs);
    actx x = {0};
    char key[32];
    for (int round = 0; round < 2; round++) {
        x.done = 0;
        for (int i = 0; i < NASYNC; i++) {
            snprintf(key, sizeof key, "a/%05d", i);
            skiff_op op = {.type = round ? SKIFF_OP_RANGE : SKIFF_OP_PUT,
                           .key = key,
                           .key_len = strlen(key),
                           .value = "value",
                           .value_len = 5};
            if (round)
                op.value = NULL, op.value_len = 0;
            reqs[i].data = &x;
            assert_int_equal(skiff_do(ac, &reqs[i], &op, acb), 0);
        }
        while (x.done < NASYNC)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(x.failed, 0);
    }
    skiff_client_close(ac, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(reqs);
    skiff_result r;
    skiff_op cnt = {.type = SKIFF_OP_RANGE,
                    .key = "a/",
                    .key_len = 2,
                    .flags = SKIFF_COUNT_ONLY};
    uint8_t end[8];
    skiff_op_prefix(&cnt, end, sizeof end);
    OK(skiff_do_sync(f->c, &cnt, &r));
    assert_int_equal(r.count, NASYNC);
    skiff_result_free(&r);
}

/* ---- TLS ----------------------------------------------------------------- */

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void test_tls(void **state)
{
    fx *f = *state;
    assert_int_equal(tu_tmpdir(f->s.dir, sizeof f->s.dir), 0);
    const char *d = f->s.dir;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
             "-subj /CN=skiff-test-ca -keyout ca.key -out ca.pem "
             ">/dev/null 2>&1 && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
             "-keyout srv.key -out srv.csr >/dev/null 2>&1 && "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 2 -extfile ext -out srv.pem "
             ">/dev/null 2>&1 && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=alice "
             "-keyout cli.key -out cli.csr >/dev/null 2>&1 && "
             "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 2 -out cli.pem >/dev/null 2>&1",
             d);
    assert_int_equal(sh(cmd), 0);
    char cert[300], key[300], ca[300], ccert[300], ckey[300];
    snprintf(cert, sizeof cert, "%s/srv.pem", d);
    snprintf(key, sizeof key, "%s/srv.key", d);
    snprintf(ca, sizeof ca, "%s/ca.pem", d);
    snprintf(ccert, sizeof ccert, "%s/cli.pem", d);
    snprintf(ckey, sizeof ckey, "%s/cli.key", d);
    const char *extra[] = {
        "--cert-file",       cert, "--key-file",         key,
        "--trusted-ca-file", ca,   "--client-cert-auth", NULL};
    assert_int_equal(start(f, extra, 1), 0);

    /* With the CA and a client certificate: works. */
    skiff_config c = cfg_of(f);
    c.ca_file = ca;
    c.cert_file = ccert;
    c.key_file = ckey;
    assert_int_equal(skiff_client_create(&f->c, &c), 0);
    put(f, "tls", "yes");
    skiff_result r;
    OK(skiff_get(f->c, "tls", 3, &r));
    assert_int_equal(r.n_kvs, 1);
    skiff_result_free(&r);
    skiff_client_destroy(f->c);
    f->c = NULL;

    /* Without a client certificate the server refuses us. */
    c.cert_file = c.key_file = NULL;
    c.dial_timeout_ms = 500;
    c.request_timeout_ms = 1500;
    assert_int_equal(skiff_client_create(&f->c, &c), 0);
    int rc = skiff_get(f->c, "tls", 3, NULL);
    assert_true(rc == SKIFF_ENOENDPOINT || rc == SKIFF_EDEADLINE ||
                rc == SKIFF_EUNKNOWN);
    skiff_client_destroy(f->c);
    f->c = NULL;

    /* A CA that did not sign the server: verification fails. */
    c.ca_file = ccert;
    c.cert_file = ccert;
    c.key_file = ckey;
    assert_int_equal(skiff_client_create(&f->c, &c), 0);
    rc = skiff_get(f->c, "tls", 3, NULL);
    assert_true(rc == SKIFF_ENOENDPOINT || rc == SKIFF_EDEADLINE);
    assert_non_null(strstr(skiff_client_errmsg(f->c), "TLS"));
}

int main(int argc, char **argv)
{
    skiffd_bin = argc > 1 ? argv[1] : "skiffd-path-not-given";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maintenance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_informer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup_bare, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
