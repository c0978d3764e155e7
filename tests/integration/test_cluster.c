/*
 * Multi-member skiffd clusters under real faults (SIGKILL, lost quorum,
 * lagging followers, torn WAL tails, membership changes), checked from the
 * outside through libskiff and the raw wire protocol.
 *
 * Usage: server_cluster SKIFFD [CASE]; CASE is one test's name (ctest runs
 * each as its own server_cluster_<CASE> entry so they spread over cores).
 * A missing binary or an unknown case fails; nothing is skipped.
 *
 * What "correct" means here, for every case: an acknowledged write is on
 * every member with its value and revision once they have applied the same
 * index; a write that failed may or may not be there, but no key ever holds
 * a value nobody wrote; HashKV agrees on all members at one revision.  The
 * load generator below records the fate of every put so those properties
 * can be checked key by key.
 */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "cluster.h"
#include "skiff.h"
#include "srv.h"

#define OK(x) assert_int_equal((x), 0)
#define LEADER_MS 30000 /* election under ASan on 2 busy cores */

static const char *skiffd_bin;

static int setup(void **state)
{
    (void)state;
    if (access(skiffd_bin, X_OK)) {
        fprintf(stderr, "skiffd not found at %s\n", skiffd_bin);
        return -1;
    }
    cl_set_binary(skiffd_bin);
    return 0;
}

/* Fails the test when a member's log shows a sanitizer report. */
static int teardown(void **state)
{
    (void)state;
    return cl_stop();
}

/* ---- small helpers ------------------------------------------------------ */

static int64_t put_rev(skiff_client *c, const char *k, const char *v)
{
    skiff_result r = {0};
    int rc = skiff_put(c, k, strlen(k), v, strlen(v), 0, &r);
    if (rc)
        fprintf(stderr, "put %s: %s (%s)\n", k, skiff_err_name(rc),
                skiff_client_errmsg(c));
    int64_t rev = rc ? -1 : r.header.revision;
    skiff_result_free(&r);
    return rev;
}

/* Reads one key; 0 found (value copied, *mod set), 1 absent, < 0 error. */
static int get_kv(skiff_client *c, const char *k, unsigned flags, char *val,
                  size_t cap, int64_t *mod)
{
    skiff_op op = {
        .type = SKIFF_OP_RANGE, .flags = flags, .key = k, .key_len = strlen(k)};
    skiff_result r = {0};
    int rc = skiff_do_sync(c, &op, &r);
    if (rc == 0 && r.n_kvs == 0)
        rc = 1;
    else if (rc == 0) {
        size_t n = r.kvs[0].value_len < cap - 1 ? r.kvs[0].value_len : cap - 1;
        memcpy(val, r.kvs[0].value, n);
        val[n] = 0;
        if (mod)
            *mod = r.kvs[0].mod_revision;
    }
    skiff_result_free(&r);
    return rc;
}

/* Asserts key k holds v at revision rev on client c with flags. */
static void expect_kv(skiff_client *c, const char *k, unsigned flags,
                      const char *v, int64_t rev)
{
    char got[128];
    int64_t mod = 0;
    int rc = get_kv(c, k, flags, got, sizeof got, &mod);
    if (rc)
        fprintf(stderr, "get %s: %s (%s)\n", k, skiff_err_name(rc),
                skiff_client_errmsg(c));
    assert_int_equal(rc, 0);
    assert_string_equal(got, v);
    if (rev)
        assert_int_equal(mod, rev);
}

/* ---- load generator ------------------------------------------------------
 * nclients asynchronous libskiff clients on one loop thread, each with one
 * put in flight, each client's endpoint list rotated so the load starts
 * spread over all members.  Client k's op s: even s puts the unique key
 * P/u/k/s = "v.k.s"; odd s overwrites P/last/k with s.  Every outcome is
 * recorded: rev[s] > 0 acknowledged at that revision, 0 failed or unknown,
 * and `sent` says how many ops were attempted. */
typedef struct lclient {
    struct load *L;
    skiff_client *c;
    skiff_req req;
    int k;
    int sent;
    int64_t *rev;
    char key[64], val[64];
} lclient;

typedef struct load {
    const char *prefix;
    int n, cap, timeout_ms;
    lclient *cl;
    uv_loop_t loop;
    uv_async_t stop_async;
    uv_timer_t close_timer;
    pthread_t th;
    atomic_long acks, fails;
    atomic_int stop;
    int running, closed;
    int first_err; /* a sample failure code, for the log */
} load;

static void issue(lclient *lc);

static void close_all_cb(uv_timer_t *t)
{
    load *L = t->data;
    for (int k = 0; k < L->n; k++)
        skiff_client_close(L->cl[k].c, NULL);
    uv_close((uv_handle_t *)&L->stop_async, NULL);
    uv_close((uv_handle_t *)&L->close_timer, NULL);
}

/* Closing clients from inside their own callbacks is avoided: a 0 ms
 * timer closes them from the loop once nothing is in flight. */
static void maybe_close(load *L)
{
    if (L->running == 0 && !L->closed) {
        L->closed = 1;
        uv_timer_start(&L->close_timer, close_all_cb, 0, 0);
    }
}

static void on_put(skiff_req *req, int status)
{
    lclient *lc = req->data;
    load *L = lc->L;
    int s = lc->sent - 1;
    if (status == 0) {
        lc->rev[s] = req->result.header.revision;
        atomic_fetch_add(&L->acks, 1);
    } else {
        if (!L->first_err)
            L->first_err = status;
        atomic_fetch_add(&L->fails, 1);
    }
    if (atomic_load(&L->stop) || lc->sent >= L->cap) {
        L->running--;
        maybe_close(L);
        return;
    }
    issue(lc);
}

static void issue(lclient *lc)
{
    load *L = lc->L;
    int s = lc->sent++;
    if (s % 2 == 0)
        snprintf(lc->key, sizeof lc->key, "%s/u/%03d/%06d", L->prefix, lc->k,
                 s);
    else
        snprintf(lc->key, sizeof lc->key, "%s/last/%03d", L->prefix, lc->k);
    snprintf(lc->val, sizeof lc->val, "v.%d.%d", lc->k, s);
    skiff_op op = {.type = SKIFF_OP_PUT,
                   .key = lc->key,
                   .key_len = strlen(lc->key),
                   .value = lc->val,
                   .value_len = strlen(lc->val)};
    lc->req.data = lc;
    int rc = skiff_do(lc->c, &lc->req, &op, on_put);
    if (rc) {
        fprintf(stderr, "load: skiff_do: %s\n", skiff_err_name(rc));
        L->running--;
        maybe_close(L);
    }
}

static void on_stop(uv_async_t *a)
{
    (void)a; /* on_put sees L->stop; this only wakes the loop */
}

static void *load_main(void *arg)
{
    load *L = arg;
    for (int k = 0; k < L->n; k++)
        issue(&L->cl[k]);
    uv_run(&L->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Starts the generator; the cluster must be running (cl_size members). */
static load *load_start(const char *prefix, int n, int cap, int timeout_ms)
{
    load *L = calloc(1, sizeof *L);
    L->prefix = prefix;
    L->n = n;
    L->cap = cap;
    L->timeout_ms = timeout_ms;
    L->cl = calloc((size_t)n, sizeof *L->cl);
    assert_int_equal(uv_loop_init(&L->loop), 0);
    uv_async_init(&L->loop, &L->stop_async, on_stop);
    uv_timer_init(&L->loop, &L->close_timer);
    L->close_timer.data = L;
    int m = cl_size();
    for (int k = 0; k < n; k++) {
        lclient *lc = &L->cl[k];
        lc->L = L;
        lc->k = k;
        lc->rev = calloc((size_t)cap, sizeof *lc->rev);
        const char *eps[CL_MAX];
        size_t ne = 0;
        for (int j = 0; j < m; j++) {
            int i = (k + j) % m;
            if (!cl_removed(i))
                eps[ne++] = cl_member_endpoint(i);
        }
        skiff_config cfg = {.endpoints = eps,
                            .n_endpoints = ne,
                            .dial_timeout_ms = 1000,
                            .request_timeout_ms = timeout_ms,
                            .backoff_max_ms = 250};
        assert_int_equal(skiff_client_create_async(&lc->c, &cfg, &L->loop), 0);
    }
    L->running = n;
    assert_int_equal(pthread_create(&L->th, NULL, load_main, L), 0);
    return L;
}

/* Stops issuing (now, or when every client reached its cap when
 * wait_cap) and joins the loop thread. */
static void load_stop(load *L, int wait_cap)
{
    if (!wait_cap) {
        atomic_store(&L->stop, 1);
        uv_async_send(&L->stop_async);
    }
    pthread_join(L->th, NULL);
    uv_loop_close(&L->loop);
    fprintf(stderr, "load %s: %ld acknowledged, %ld failed (e.g. %s)\n",
            L->prefix, atomic_load(&L->acks), atomic_load(&L->fails),
            L->first_err ? skiff_err_name(L->first_err) : "-");
}

static void load_free(load *L)
{
    for (int k = 0; k < L->n; k++)
        free(L->cl[k].rev);
    free(L->cl);
    free(L);
}

/* Polls until `more` further acknowledgements arrived. */
static int load_progress(load *L, long more, int timeout_ms)
{
    long want = atomic_load(&L->acks) + more;
    int64_t end = cl_now_ms() + timeout_ms;
    while (atomic_load(&L->acks) < want) {
        if (cl_now_ms() > end)
            return -1;
        cl_poll_sleep();
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks every recorded outcome on member i, serializably (the caller
 * has waited for all members to apply the same index). */
static void load_verify_member(load *L, int i)
{
    skiff_client *c = cl_client(i, 20000);
    assert_non_null(c);
    long found_acked = 0, found_unacked = 0;
    for (int k = 0; k < L->n; k++) {
        lclient *lc = &L->cl[k];
        char pfx[64];
        uint8_t end[64];
        snprintf(pfx, sizeof pfx, "%s/u/%03d/", L->prefix, k);
        skiff_op op = {.type = SKIFF_OP_RANGE,
                       .flags = SKIFF_SERIALIZABLE,
                       .key = pfx,
                       .key_len = strlen(pfx)};
        skiff_op_prefix(&op, end, sizeof end);
        skiff_result r = {0};
        OK(skiff_do_sync(c, &op, &r));
        char *seen = calloc((size_t)L->cap, 1);
        for (size_t j = 0; j < r.n_kvs; j++) {
            const skiff_kv *kv = &r.kvs[j];
            int s = atoi((const char *)kv->key + strlen(pfx));
            char want[64];
            snprintf(want, sizeof want, "v.%d.%d", k, s);
            /* Only keys some put tried, and only the value it wrote. */
            if (s < 0 || s >= lc->sent || s % 2 ||
                kv->value_len != strlen(want) ||
                memcmp(kv->value, want, kv->value_len)) {
                fprintf(stderr, "%s: unexpected %.*s = %.*s\n", cl_name(i),
                        (int)kv->key_len, kv->key, (int)kv->value_len,
                        kv->value);
                fail();
            }
            seen[s] = 1;
            if (lc->rev[s] > 0) {
                assert_int_equal(kv->mod_revision, lc->rev[s]);
                found_acked++;
            } else
                found_unacked++;
        }
        for (int s = 0; s < lc->sent; s += 2)
            if (lc->rev[s] > 0 && !seen[s]) {
                fprintf(stderr,
                        "%s: acknowledged %s%06d (rev %" PRId64
                        ") is missing\n",
                        cl_name(i), pfx, s, lc->rev[s]);
                fail();
            }
        free(seen);
        skiff_result_free(&r);

        /* The overwritten key: at least the last acknowledged value, at
         * most the last attempted one, never anything else. */
        int last_acked = -1;
        for (int s = 1; s < lc->sent; s += 2)
            if (lc->rev[s] > 0)
                last_acked = s;
        char key[64], got[64];
        int64_t mod = 0;
        snprintf(key, sizeof key, "%s/last/%03d", L->prefix, k);
        int rc = get_kv(c, key, SKIFF_SERIALIZABLE, got, sizeof got, &mod);
        if (last_acked < 0) {
            assert_true(rc == 0 || rc == 1);
        } else {
            assert_int_equal(rc, 0);
        }
        if (rc == 0) {
            int gk = -1, gs = -1;
            assert_int_equal(sscanf(got, "v.%d.%d", &gk, &gs), 2);
            assert_int_equal(gk, k);
            assert_true(gs % 2 == 1 && gs >= last_acked && gs < lc->sent);
            if (lc->rev[gs] > 0)
                assert_int_equal(mod, lc->rev[gs]);
        }
    }
    fprintf(stderr,
            "%s: %ld acknowledged and %ld unacknowledged writes "
            "present, all values as written\n",
            cl_name(i), found_acked, found_unacked);
    skiff_client_destroy(c);
}

/* No two acknowledged writes share a revision: each put is its own. */
static void load_check_revisions(load *L)
{
    long n = 0;
    for (int k = 0; k < L->n; k++)
        for (int s = 0; s < L->cl[k].sent; s++)
            n += L->cl[k].rev[s] > 0;
    int64_t *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    long j = 0;
    for (int k = 0; k < L->n; k++)
        for (int s = 0; s < L->cl[k].sent; s++)
            if (L->cl[k].rev[s] > 0)
                all[j++] = L->cl[k].rev[s];
    qsort(all, (size_t)n, sizeof *all, cmp_i64);
    for (long x = 1; x < n; x++)
        if (all[x] == all[x - 1]) {
            fprintf(stderr, "two acknowledged writes at revision %" PRId64 "\n",
                    all[x]);
            fail();
        }
    free(all);
}

/* Waits for one leader and equal applied indexes, then verifies every
 * member and compares HashKV. */
static void converge_and_verify(load *L)
{
    assert_true(cl_wait_leader(LEADER_MS) >= 0);
    assert_true(cl_wait_applied(60000) > 0);
    load_check_revisions(L);
    for (int i = 0; i < cl_size(); i++)
        if (cl_alive(i) && !cl_removed(i))
            load_verify_member(L, i);
    OK(cl_hashkv_all(0, NULL, NULL));
}

/* ---- watches ------------------------------------------------------------ */

typedef struct wev {
    int64_t rev;
    int type;
    uint64_t member;
    char key[32], val[32];
} wev;

/* Collects events from w until one at revision >= upto arrives. */
static int collect(skiff_watcher *w, int64_t upto, wev *out, int cap)
{
    int n = 0;
    int64_t end = cl_now_ms() + 30000, last = 0;
    while (last < upto && cl_now_ms() < end) {
        skiff_watch_resp r;
        int rc = skiff_watcher_next(w, 1000, &r);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc) {
            fprintf(stderr, "watch ended: %s\n", skiff_err_name(rc));
            break;
        }
        for (size_t j = 0; j < r.n_events && n < cap; j++, n++) {
            const skiff_event *e = &r.events[j];
            out[n].rev = e->kv.mod_revision;
            out[n].type = e->type;
            out[n].member = r.header.member_id;
            snprintf(out[n].key, sizeof out[n].key, "%.*s", (int)e->kv.key_len,
                     e->kv.key);
            snprintf(out[n].val, sizeof out[n].val, "%.*s",
                     (int)e->kv.value_len, e->kv.value);
            last = e->kv.mod_revision;
        }
        skiff_watch_resp_free(&r);
    }
    return n;
}

static skiff_watcher *watch_prefix(skiff_client *c, const char *p)
{
    skiff_op pr = {.key = p, .key_len = strlen(p)};
    static uint8_t end[32];
    skiff_op_prefix(&pr, end, sizeof end);
    skiff_watch_opts o = {.key = p,
                          .key_len = strlen(p),
                          .range_end = pr.range_end,
                          .range_end_len = pr.range_end_len};
    skiff_watcher *w = NULL;
    OK(skiff_watcher_open(c, &w, &o));
    return w;
}

/* ---- a: basic reads and writes on three members ------------------------- */

static void test_basic(void **state)
{
    (void)state;
    OK(cl_start(3));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    int fo = (li + 1) % 3;
    skiff_client *c[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(c[i] = cl_client(i, 10000));

    /* A put on a follower is forwarded; a linearizable read on any member
     * must then see it, and a serializable read on that same member after
     * its linearizable read must too (it has applied at least that far). */
    int64_t rev = put_rev(c[fo], "a", "1");
    assert_true(rev > 0);
    for (int i = 0; i < 3; i++) {
        expect_kv(c[i], "a", 0, "1", rev);
        expect_kv(c[i], "a", SKIFF_SERIALIZABLE, "1", rev);
    }

    /* Watches on the leader and on a follower see the same events. */
    skiff_watcher *wl = watch_prefix(c[li], "w/");
    skiff_watcher *wf = watch_prefix(c[fo], "w/");
    enum { N = 40 };
    int64_t revs[N];
    for (int j = 0; j < N; j++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "w/%d", j % 7);
        snprintf(v, sizeof v, "%d", j);
        skiff_client *wc = c[j % 3];
        if (j % 9 == 8) {
            skiff_result r = {0};
            OK(skiff_delete(wc, k, strlen(k), NULL, 0, &r));
            revs[j] = r.count ? r.header.revision : 0;
            skiff_result_free(&r);
        } else {
            assert_true((revs[j] = put_rev(wc, k, v)) > 0);
        }
    }
    int64_t last = revs[N - 1] ? revs[N - 1] : revs[N - 2];
    wev a[2 * N], b[2 * N];
    int na = collect(wl, last, a, 2 * N), nb = collect(wf, last, b, 2 * N);
    int nw = 0;
    for (int j = 0; j < N; j++)
        if (revs[j]) {
            assert_true(nw < na);
            assert_int_equal(a[nw].rev, revs[j]);
            nw++;
        }
    assert_int_equal(na, nw);
    assert_int_equal(nb, na);
    for (int j = 0; j < na; j++) {
        assert_int_equal(a[j].rev, b[j].rev);
        assert_int_equal(a[j].type, b[j].type);
        assert_string_equal(a[j].key, b[j].key);
        assert_string_equal(a[j].val, b[j].val);
    }
    skiff_watcher_close(wl);
    skiff_watcher_close(wf);

    /* One WAL fdatasync per proposal, not two: every put is synced on
     * each member before it is acknowledged, and the commit index that
     * follows it is written without a sync of its own.  Puts one at a
     * time, so no two share a sync. */
    enum { P = 100 };
    double before[3], after[3];
    const char *fs = "skiff_disk_wal_fsync_duration_seconds_count";
    for (int i = 0; i < 3; i++)
        OK(cl_metric(i, fs, &before[i]));
    for (int j = 0; j < P; j++)
        assert_true(put_rev(c[li], "sync", "x") > 0);
    for (int i = 0; i < 3; i++) {
        OK(cl_metric(i, fs, &after[i]));
        double d = after[i] - before[i];
        printf("member %d: %.0f WAL fsyncs for %d puts\n", i, d, P);
        if (i == li) /* followers may still be syncing the last ones */
            assert_true(d >= P);
        assert_true(d <= P + P / 10);
    }

    /* A write is answered before the store's commit of it ends
     * (server/apply.c).  A serializable read sent to the same member
     * right after the answer must still see it, and a watch opened there
     * "from now" must start after it. */
    for (int j = 0; j < 300; j++) {
        skiff_client *wc = c[j % 2 ? li : fo];
        char v[16];
        snprintf(v, sizeof v, "%d", j);
        int64_t r = put_rev(wc, "ryw", v);
        assert_true(r > 0);
        expect_kv(wc, "ryw", SKIFF_SERIALIZABLE, v, r);
    }
    for (int j = 0; j < 20; j++) {
        skiff_client *wc = c[j % 2 ? li : fo];
        assert_true(put_rev(wc, "wn/a", "old") > 0);
        skiff_watcher *wn = watch_prefix(wc, "wn/");
        int64_t r2 = put_rev(wc, "wn/a", "new");
        assert_true(r2 > 0);
        wev ev[4];
        int ne = collect(wn, r2, ev, 4);
        assert_true(ne >= 1);
        assert_int_equal(ev[0].rev, r2);
        skiff_watcher_close(wn);
    }
    for (int i = 0; i < 3; i++)
        skiff_client_destroy(c[i]);
    OK(cl_hashkv_all(last, NULL, NULL));
}

/* ---- b: the leader SIGKILLed 20 times under 100 writing clients -------- */

static void test_leader_kill(void **state)
{
    (void)state;
    OK(cl_start(3));
    assert_true(cl_wait_leader(LEADER_MS) >= 0);
    load *L = load_start("b", 100, 20000, 5000);
    for (int round = 0; round < 20; round++) {
        int li = cl_wait_leader(LEADER_MS);
        assert_true(li >= 0);
        /* Writes flow under this leader before it dies. */
        if (load_progress(L, 100, 30000)) {
            fprintf(stderr, "round %d: no write progress\n", round);
            fail();
        }
        OK(cl_kill(li, SIGKILL));
        int nl = cl_wait_leader(LEADER_MS);
        assert_true(nl >= 0 && nl != li);
        OK(cl_restart(li));
    }
    assert_int_equal(load_progress(L, 100, 30000), 0);
    load_stop(L, 0);
    converge_and_verify(L);
    load_free(L);
}

/* ---- c: five members, losing two, then quorum ------------------------ */

static void test_quorum(void **state)
{
    (void)state;
    OK(cl_start(5));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    skiff_client *c = cl_client_all(10000);
    assert_true(put_rev(c, "q/0", "0") > 0);

    /* Two down, the leader among them: 3 of 5 still make progress. */
    int down[3] = {li, (li + 1) % 5, -1};
    OK(cl_kill(down[0], SIGKILL));
    OK(cl_kill(down[1], SIGKILL));
    assert_true(cl_wait_leader(LEADER_MS) >= 0);
    int64_t r1 = put_rev(c, "q/1", "1");
    assert_true(r1 > 0);

    /* A third down: no quorum.  A write must fail with a clear error in
     * bounded time, both through libskiff and on the raw protocol. */
    int li2 = cl_wait_leader(LEADER_MS);
    down[2] = li2;
    OK(cl_kill(li2, SIGKILL));
    int alive = -1;
    for (int i = 0; i < 5; i++)
        if (cl_alive(i))
            alive = i;
    skiff_op op = {.type = SKIFF_OP_PUT,
                   .key = "q/2",
                   .key_len = 3,
                   .value = "2",
                   .value_len = 1,
                   .timeout_ms = 3000};
    int64_t t0 = cl_now_ms();
    int rc = skiff_do_sync(c, &op, NULL);
    int64_t took = cl_now_ms() - t0;
    fprintf(stderr, "put without quorum: %s after %" PRId64 " ms (%s)\n",
            skiff_err_name(rc), took, skiff_client_errmsg(c));
    assert_true(rc == SKIFF_ENO_LEADER || rc == SKIFF_ETIMEOUT ||
                rc == SKIFF_EUNAVAILABLE || rc == SKIFF_EDEADLINE ||
                rc == SKIFF_EUNKNOWN);
    assert_true(took < 8000);

    int fd = cli_connect(cl_member_client_port(alive));
    assert_true(fd >= 0);
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = bin_of("q/3");
    p.value = bin_of("3");
    Skiffpb__Request req = SKIFFPB__REQUEST__INIT;
    req.body_case = SKIFFPB__REQUEST__BODY_PUT;
    req.put = &p;
    t0 = cl_now_ms();
    OK(cli_send(fd, 7, &req));
    uint64_t sid;
    Skiffpb__Response *resp = NULL;
    rc = cli_recv(fd, &sid, &resp, 30000);
    took = cl_now_ms() - t0;
    assert_int_equal(rc, 0); /* answered, not hanging */
    assert_non_null(resp->error);
    fprintf(stderr,
            "raw put without quorum on %s: %s after %" PRId64 " ms: %s\n",
            cl_name(alive), api_code_name(resp->error->code), took,
            resp->error->message);
    Skiffpb__ErrorCode code = resp->error->code;
    assert_true(code == SKIFFPB__ERROR_CODE__NO_LEADER ||
                code == SKIFFPB__ERROR_CODE__TIMEOUT ||
                code == SKIFFPB__ERROR_CODE__UNAVAILABLE);
    skiffpb__response__free_unpacked(resp, NULL);
    close(fd);

    /* Serializable reads still answer from a lone member's state. */
    skiff_client *one = cl_client(alive, 5000);
    expect_kv(one, "q/1", SKIFF_SERIALIZABLE, "1", r1);
    skiff_client_destroy(one);

    for (int j = 0; j < 3; j++)
        OK(cl_restart(down[j]));
    assert_true(cl_wait_leader(LEADER_MS) >= 0);
    int64_t r4 = put_rev(c, "q/4", "4");
    assert_true(r4 > 0);
    assert_true(cl_wait_applied(60000) > 0);
    for (int i = 0; i < 5; i++) {
        skiff_client *m = cl_client(i, 10000);
        expect_kv(m, "q/1", SKIFF_SERIALIZABLE, "1", r1);
        expect_kv(m, "q/4", SKIFF_SERIALIZABLE, "4", r4);
        skiff_client_destroy(m);
    }
    OK(cl_hashkv_all(r4, NULL, NULL));
    skiff_client_destroy(c);
}

/* ---- d: a follower catches up by snapshot ------------------------------- */

/* 1 when some line of the file at path contains s. */
static int file_has(const char *path, const char *s)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, s) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_snapshot_catchup(void **state)
{
    (void)state;
    cl_opts o = {.snapshot_count = 100, .log_level = "info"};
    OK(cl_start_opts(3, &o));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    int fo = (li + 1) % 3;
    OK(cl_kill(fo, SIGKILL));
    /* 6000 entries with a snapshot every 100: the leader's log is
     * compacted far past what the stopped follower has. */
    load *L = load_start("d", 20, 300, 10000);
    load_stop(L, 1);
    assert_int_equal(atomic_load(&L->fails), 0);
    skiff_client *c = cl_client_all(10000);
    OK(skiff_compact(c, put_rev(c, "d/compact", "x") - 100, 1));
    skiff_client_destroy(c);

    OK(cl_restart(fo));
    converge_and_verify(L);
    load_free(L);
    /* It caught up by snapshot, not by replaying the log it missed. */
    if (!file_has(cl_log_path(fo), "installed snapshot")) {
        fprintf(stderr, "%s's log has no \"installed snapshot\" line\n",
                cl_name(fo));
        fail();
    }
}

/* Member i's applied index, or -1 when it does not answer. */
static int64_t applied_of(int i)
{
    skiff_client *c = cl_client(i, 2000);
    skiff_result st = {0};
    int rc = c ? skiff_status(c, &st) : -1;
    int64_t a = rc ? -1 : (int64_t)st.status.raft_applied_index;
    skiff_result_free(&st);
    if (c)
        skiff_client_destroy(c);
    return a;
}

/* A follower that catches up while writes go on.  With the log compacted
 * every 100 entries and only 20 kept behind, the leader's log moves past
 * each snapshot while it is in flight, so the follower needs snapshot
 * after snapshot, back to back.  Each must complete: a transfer that
 * stalls until the leader gives up (10 s) leaves the member behind for
 * as long as the load lasts. */
static void test_snapshot_catchup_under_load(void **state)
{
    (void)state;
    static const char *const extra[] = {"--snapshot-catchup-entries", "20",
                                        NULL};
    cl_opts o = {.snapshot_count = 100, .extra = extra, .log_level = "info"};
    OK(cl_start_opts(3, &o));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    int fo = (li + 1) % 3;
    /* Some 6 MB of data, so that each snapshot is a dozen chunks. */
    skiff_client *c = cl_client_all(10000);
    static char big[2048];
    memset(big, 'b', sizeof big - 1);
    for (int k = 0; k < 3000; k++) {
        char key[32];
        snprintf(key, sizeof key, "big/%05d", k);
        assert_true(put_rev(c, key, big) > 0);
    }
    skiff_client_destroy(c);
    OK(cl_kill(fo, SIGKILL));
    load *L = load_start("u", 16, 50000, 10000);
    assert_int_equal(load_progress(L, 2000, 30000), 0);
    OK(cl_restart(fo));
    /* Three rounds: each time the follower must reach the index the
     * leader had when the round began, while the load keeps going. */
    for (int round = 0; round < 3; round++) {
        int64_t target = applied_of(li), got = -1;
        assert_true(target > 0);
        int64_t end = cl_now_ms() + 8000;
        while ((got = applied_of(fo)) < target && cl_now_ms() < end)
            cl_poll_sleep();
        if (got < target)
            fprintf(stderr, "round %d: %s applied %" PRId64 " < %" PRId64
                    " after 8 s\n", round, cl_name(fo), got, target);
        assert_true(got >= target);
    }
    load_stop(L, 0);
    converge_and_verify(L);
    load_free(L);
    if (file_has(cl_log_path(li), "snapshot transfer failed")) {
        fprintf(stderr, "%s's log: a snapshot transfer failed\n",
                cl_name(li));
        fail();
    }
    assert_true(file_has(cl_log_path(fo), "installed snapshot"));
}

/* ---- e: learner, promote, remove, replace the leader ------------------- */

static int member_count(skiff_client *c, int *learners)
{
    skiff_op op = {.type = SKIFF_OP_MEMBER_LIST, .flags = SKIFF_LINEARIZABLE};
    skiff_result r = {0};
    int rc = skiff_do_sync(c, &op, &r);
    int n = rc ? -1 : (int)r.n_members;
    *learners = 0;
    for (size_t j = 0; !rc && j < r.n_members; j++)
        *learners += r.members[j].is_learner;
    skiff_result_free(&r);
    return n;
}

/* A removed member must stop serving; when it does not exit by itself
 * within the deadline the test says so and kills it. */
static void retire(int i)
{
    int64_t end = cl_now_ms() + 15000;
    while (cl_alive(i) && cl_now_ms() < end)
        cl_poll_sleep();
    if (cl_alive(i)) {
        fprintf(stderr,
                "note: removed member %s still running after 15 s; "
                "killing it\n",
                cl_name(i));
        cl_kill(i, SIGKILL);
    }
}

static void test_membership(void **state)
{
    (void)state;
    OK(cl_start(3));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    skiff_client *c = cl_client_all(10000);
    int64_t r0 = 0;
    for (int j = 0; j < 50; j++) {
        char k[16];
        snprintf(k, sizeof k, "e/%d", j);
        assert_true((r0 = put_rev(c, k, "x")) > 0);
    }
    int learners;

    /* A learner joins and catches up without voting. */
    int n4 = cl_add_member(1);
    assert_true(n4 >= 0);
    assert_int_equal(member_count(c, &learners), 4);
    assert_int_equal(learners, 1);
    assert_true(cl_wait_applied(60000) > 0);
    skiff_client *c4 = cl_client(n4, 10000);
    expect_kv(c4, "e/49", SKIFF_SERIALIZABLE, "x", r0);
    skiff_result st = {0};
    OK(skiff_status(c4, &st));
    assert_true(st.status.is_learner);
    skiff_result_free(&st);

    OK(cl_promote(n4, 30000));
    assert_int_equal(member_count(c, &learners), 4);
    assert_int_equal(learners, 0);
    OK(skiff_status(c4, &st));
    assert_false(st.status.is_learner);
    skiff_result_free(&st);
    skiff_client_destroy(c4);

    /* Remove a follower; the rest goes on. */
    li = cl_wait_leader(LEADER_MS);
    int fo = (li + 1) % 3;
    OK(cl_remove_member(fo));
    retire(fo);
    skiff_client_destroy(c);
    c = cl_client_all(10000);
    assert_true(put_rev(c, "e/after-remove", "y") > 0);
    assert_int_equal(member_count(c, &learners), 3);

    /* Replace the leader: remove it, a new one is elected, writes go on,
     * and a new member takes its place. */
    li = cl_wait_leader(LEADER_MS);
    OK(cl_remove_member(li));
    retire(li);
    int nl = cl_wait_leader(LEADER_MS);
    assert_true(nl >= 0 && nl != li);
    skiff_client_destroy(c);
    c = cl_client_all(10000);
    assert_true(put_rev(c, "e/after-leader", "z") > 0);
    assert_int_equal(member_count(c, &learners), 2);
    int n5 = cl_add_member(1);
    assert_true(n5 >= 0);
    OK(cl_promote(n5, 30000));
    int64_t rl = put_rev(c, "e/last", "w");
    assert_true(rl > 0);
    assert_int_equal(member_count(c, &learners), 3);
    assert_true(cl_wait_applied(60000) > 0);
    OK(cl_hashkv_all(rl, NULL, NULL));
    skiff_client_destroy(c);
}

/* ---- f: torn tail of the newest WAL segment ----------------------------- */

/* Finds the newest *.wal under dir (recursively; names sort by sequence
 * number, so the greatest name is the newest).  0 or -1. */
static int newest_wal(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int found = -1;
    char best[256] = "";
    char path[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb))
            continue;
        size_t l = strlen(e->d_name);
        if (S_ISDIR(sb.st_mode)) {
            if (found && !newest_wal(path, out, cap))
                found = 0;
        } else if (l > 4 && !strcmp(e->d_name + l - 4, ".wal") &&
                   strcmp(e->d_name, best) > 0) {
            snprintf(best, sizeof best, "%s", e->d_name);
            snprintf(out, cap, "%s", path);
            found = 0;
        }
    }
    closedir(d);
    return found;
}

/* Simulates a torn write at the end of the written part of a preallocated
 * segment: garbles its last 300 written bytes (several records: entries
 * the member had already applied, so its state is ahead of its log) and
 * leaves 16 garbage bytes after them.  Returns the written length found. */
static long tear_tail(const char *path)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat sb;
    OK(fstat(fd, &sb));
    uint8_t *img = malloc((size_t)sb.st_size + 1);
    assert_int_equal(pread(fd, img, (size_t)sb.st_size, 0), sb.st_size);
    long end = sb.st_size;
    while (end > 0 && img[end - 1] == 0)
        end--;
    assert_true(end > 4096);
    uint8_t junk[316];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(0xa5 ^ (i * 7));
    assert_int_equal(pwrite(fd, junk, sizeof junk, end - 300), sizeof junk);
    close(fd);
    free(img);
    return end;
}

static void test_torn_wal(void **state)
{
    (void)state;
    OK(cl_start(3));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    load *L = load_start("f", 10, 100, 10000);
    load_stop(L, 1);
    assert_int_equal(atomic_load(&L->fails), 0);
    int fo = (li + 2) % 3;
    OK(cl_kill(fo, SIGKILL));
    char seg[512];
    OK(newest_wal(cl_data_dir(fo), seg, sizeof seg));
    long end = tear_tail(seg);
    fprintf(stderr, "tore %s at offset %ld\n", seg, end);

    OK(cl_restart(fo));
    /* Recovery saw the damage (rather than, say, a WAL elsewhere). */
    if (!file_has(cl_log_path(fo), "torn or corrupt")) {
        fprintf(stderr, "%s's log does not report the torn tail\n",
                cl_name(fo));
        fail();
    }
    skiff_client *c = cl_client_all(10000);
    int64_t r = put_rev(c, "f/after", "1");
    assert_true(r > 0);
    skiff_client_destroy(c);
    converge_and_verify(L);
    load_free(L);
}

/* ---- g: a watch survives the SIGKILL of its member ----------------------- */

static void test_watch_failover(void **state)
{
    (void)state;
    OK(cl_start(3));
    int li = cl_wait_leader(LEADER_MS);
    assert_true(li >= 0);
    int fo = (li + 1) % 3, other = (li + 2) % 3;
    uint64_t fid = cl_member_id(fo);
    /* The watch's client prefers the follower (first endpoint). */
    const char *eps[3] = {cl_member_endpoint(fo), cl_member_endpoint(other),
                          cl_member_endpoint(li)};
    skiff_config cfg = {.endpoints = eps,
                        .n_endpoints = 3,
                        .request_timeout_ms = 10000,
                        .backoff_max_ms = 250};
    skiff_client *wc;
    OK(skiff_client_create(&wc, &cfg));
    skiff_client *writer = cl_client(li, 10000);
    skiff_watcher *w = watch_prefix(wc, "g/");

    enum { N = 100 };
    int64_t revs[N];
    wev got[2 * N];
    for (int j = 0; j < N / 2; j++) {
        char k[16];
        snprintf(k, sizeof k, "g/%d", j);
        assert_true((revs[j] = put_rev(writer, k, k)) > 0);
    }
    int n = collect(w, revs[N / 4], got, 2 * N);
    assert_true(n > 0);
    assert_int_equal(got[0].member, fid); /* it really was on fo */
    OK(cl_kill(fo, SIGKILL));
    for (int j = N / 2; j < N; j++) {
        char k[16];
        snprintf(k, sizeof k, "g/%d", j);
        assert_true((revs[j] = put_rev(writer, k, k)) > 0);
    }
    n += collect(w, revs[N - 1], got + n, 2 * N - n);
    assert_int_equal(n, N);
    for (int j = 0; j < N; j++) {
        char k[16];
        snprintf(k, sizeof k, "g/%d", j);
        assert_int_equal(got[j].rev, revs[j]);
        assert_string_equal(got[j].key, k);
    }
    assert_true(got[N - 1].member != fid); /* resumed elsewhere */
    skiff_watcher_close(w);
    skiff_client_destroy(wc);
    skiff_client_destroy(writer);
}

/* ---- h: a member refuses data that is not its own ----------------------- */

/* 1 when a line of err that is not an info log line contains needle
 * (case-insensitive): the refusal itself must say what is wrong. */
static int says(const char *err, const char *needle)
{
    char *copy = strdup(err), *save = NULL;
    int found = 0;
    for (char *l = strtok_r(copy, "\n", &save); l && !found;
         l = strtok_r(NULL, "\n", &save))
        found = !strstr(l, " info ") && strcasestr(l, needle);
    free(copy);
    return found;
}

static void test_wrong_data(void **state)
{
    (void)state;
    OK(cl_start(3));
    assert_true(cl_wait_leader(LEADER_MS) >= 0);
    skiff_client *c = cl_client_all(10000);
    assert_true(put_rev(c, "h/1", "1") > 0);
    skiff_client_destroy(c);
    OK(cl_kill(0, SIGKILL));
    char err[4096], client[64], peer[64];
    snprintf(client, sizeof client, "127.0.0.1:%d", cl_member_client_port(0));
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", cl_member_peer_port(0));

    /* n1's data under the name n2, everything else as n1's. */
    const char *a1[] = {"--name",
                        "n2",
                        "--data-dir",
                        cl_data_dir(0),
                        "--listen-client-urls",
                        client,
                        "--listen-peer-urls",
                        peer,
                        "--initial-advertise-peer-urls",
                        peer,
                        "--initial-cluster",
                        cl_initial_cluster(),
                        "--initial-cluster-state",
                        "existing",
                        "--initial-cluster-token",
                        cl_cluster_token(),
                        NULL};
    int st = cl_run_skiffd(a1, 20000, err, sizeof err);
    fprintf(stderr, "--name n2 on n1's data: exit %d, stderr:\n%s\n", st, err);
    assert_true(st > 0 && st < 128);
    assert_true(says(err, "name"));

    /* n1's data as the founding member of another cluster. */
    char other[128];
    snprintf(other, sizeof other,
             "n1=%s,x2=http://127.0.0.1:1,"
             "x3=http://127.0.0.1:2",
             peer);
    const char *a2[] = {"--name",
                        "n1",
                        "--data-dir",
                        cl_data_dir(0),
                        "--listen-client-urls",
                        client,
                        "--listen-peer-urls",
                        peer,
                        "--initial-advertise-peer-urls",
                        peer,
                        "--initial-cluster",
                        other,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        "another-cluster",
                        NULL};
    st = cl_run_skiffd(a2, 20000, err, sizeof err);
    fprintf(stderr, "n1's data in another cluster: exit %d, stderr:\n%s\n", st,
            err);
    assert_true(st > 0 && st < 128);
    assert_true(says(err, "cluster") || says(err, "member"));

    /* The refused starts left the data usable: n1 rejoins. */
    OK(cl_restart(0));
    assert_true(cl_wait_leader(LEADER_MS) >= 0);
    assert_true(cl_wait_applied(60000) > 0);
    OK(cl_hashkv_all(0, NULL, NULL));
}

int main(int argc, char **argv)
{
    skiffd_bin = argc > 1 ? argv[1] : "skiffd-path-not-given";
    const char *only = argc > 2 ? argv[2] : NULL;
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_catchup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_catchup_under_load, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_membership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_data, setup, teardown),
    };
    struct CMUnitTest pick[1];
    size_t n = sizeof all / sizeof all[0];
    if (!only)
        return cmocka_run_group_tests(all, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(all[i].name + 5, only)) { /* skip "test_" */
            pick[0] = all[i];
            return _cmocka_run_group_tests("server_cluster", pick, 1, NULL,
                                           NULL);
        }
    fprintf(stderr, "server_cluster: unknown case \"%s\"\n", only);
    return 2;
}
