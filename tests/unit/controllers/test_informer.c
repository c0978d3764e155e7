/*
 * Property test of the object informer against a real single-member
 * skiffd: random creates, updates and deletes of Pod objects, with the
 * server killed (SIGKILL) and restarted on the same data dir and port,
 * and compactions while the informer is disconnected (which forces its
 * relist).  After every round, once the informer has reached the store's
 * revision:
 *   - the cache equals the store (every key, mod_revision and value) and
 *     the namespace index agrees with it;
 *   - the handler calls replay on an empty map to the cache, with no add
 *     of a known key, no update or delete of an unknown one, and each
 *     update/delete naming the version the replay holds.
 * Round kinds: 0 writes with the informer running now and then; 1 kill and
 * restart while the informer is idle (it must resume its watch: no
 * relist); 2 the same plus a compaction at the newest revision (it must
 * relist and report the difference).  Rounds 0-2 cover each kind once,
 * the rest are random.  The seed is $SKIFF_SEED (printed).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "informer.h"
#include "pods.h"
#include "srv.h"
#include "tu.h"

#define NNS 3
#define NPODS 12
#define NKEYS (NNS * NPODS)
#define ROUNDS 10

static const char *skiffd_bin;
/* The informer client's largest accepted response (0: default); the
 * restart test makes lists fail with it. */
static size_t max_response;

typedef struct entry {
    int present;
    int64_t mod;
} entry;

typedef struct fx {
    srv s;
    char ep[64];
    const char *eps[1];
    skiff_client *w; /* blocking writer */
    uv_loop_t loop;
    skiff_client *ac; /* the informer's, on `loop` */
    ctl_informer *inf;
    entry replay[NKEYS];
    long adds, updates, deletes, resyncs, synced, bad;
    int ended, end_status;
    cm_rand r;
} fx;

/* ---- handlers: replay on a map of the test's own --------------------------
 */

static int key_index(const char *key)
{
    int ns, p;
    if (sscanf(key, "/registry/pods/ns%d/p%d", &ns, &p) != 2 || ns < 0 ||
        ns >= NNS || p < 0 || p >= NPODS)
        return -1;
    return ns * NPODS + p;
}

static void complain(fx *f, const char *what, const ctl_obj *o)
{
    if (f->bad++ < 10)
        fprintf(stderr, "inconsistent handler call: %s %s@%lld\n", what, o->key,
                (long long)o->mod_revision);
}

static void on_add(ctl_informer *inf, const ctl_obj *o, void *data)
{
    fx *f = data;
    int i = key_index(o->key);
    if (i < 0 || f->replay[i].present)
        complain(f, "add of a known key", o);
    if (ctl_indexer_get(ctl_informer_cache(inf), o->key) != o)
        complain(f, "add not in the cache", o);
    if (i >= 0)
        f->replay[i] = (entry){1, o->mod_revision};
    f->adds++;
}

static void on_update(ctl_informer *inf, const ctl_obj *old, const ctl_obj *o,
                      void *data)
{
    fx *f = data;
    int i = key_index(o->key);
    if (i < 0 || !f->replay[i].present)
        complain(f, "update of an unknown key", o);
    else if (f->replay[i].mod != old->mod_revision)
        complain(f, "update from another version", old);
    if (strcmp(old->key, o->key) != 0)
        complain(f, "update across keys", o);
    if (ctl_indexer_get(ctl_informer_cache(inf), o->key) != o)
        complain(f, "update not in the cache", o);
    if (i >= 0)
        f->replay[i] = (entry){1, o->mod_revision};
    if (old == o)
        f->resyncs++;
    else
        f->updates++;
}

static void on_delete(ctl_informer *inf, const ctl_obj *old, void *data)
{
    fx *f = data;
    int i = key_index(old->key);
    if (i < 0 || !f->replay[i].present)
        complain(f, "delete of an unknown key", old);
    else if (f->replay[i].mod != old->mod_revision)
        complain(f, "delete of another version", old);
    if (ctl_indexer_get(ctl_informer_cache(inf), old->key))
        complain(f, "deleted but still cached", old);
    if (i >= 0)
        f->replay[i].present = 0;
    f->deletes++;
}

static void on_synced(ctl_informer *inf, void *data)
{
    (void)inf;
    ((fx *)data)->synced++;
}

static void on_ended(ctl_informer *inf, int status, void *data)
{
    (void)inf;
    fx *f = data;
    f->ended = 1;
    f->end_status = status;
}

/* ---- the server ---------------------------------------------------------- */

static int respawn(fx *f)
{
    srv *s = &f->s;
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
              "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2000 && s->pid > 0; i++) {
        int fd = cli_connect(s->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    *state = f;
    if (access(skiffd_bin, X_OK) != 0) {
        fprintf(stderr, "skiffd not found at %s\n", skiffd_bin);
        return -1;
    }
    if (srv_spawn(&f->s, skiffd_bin, 0, NULL))
        return -1;
    snprintf(f->ep, sizeof f->ep, "127.0.0.1:%d", f->s.port);
    f->eps[0] = f->ep;
    skiff_config c = {.endpoints = f->eps,
                      .n_endpoints = 1,
                      .request_timeout_ms = 5000,
                      .backoff_max_ms = 200};
    if (skiff_client_create(&f->w, &c))
        return -1;
    uv_loop_init(&f->loop);
    c.max_response = max_response;
    if (skiff_client_create_async(&f->ac, &c, &f->loop))
        return -1;
    uint64_t seed = tu_seed(1);
    printf("seed %llu\n", (unsigned long long)seed);
    cm_rand_seed(&f->r, seed);
    return 0;
}

static int setup_small(void **state)
{
    max_response = 2500;
    int rc = setup(state);
    max_response = 0;
    return rc;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->inf && !f->ended) {
        ctl_informer_close(f->inf);
        while (!f->ended)
            uv_run(&f->loop, UV_RUN_ONCE);
    }
    if (f->ac) {
        skiff_client_close(f->ac, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&f->loop), 0);
    }
    skiff_client_destroy(f->w);
    srv_cleanup(&f->s);
    free(f);
    assert_int_equal(tu_alloc_uninstall(), 0);
    return 0;
}

/* ---- steps --------------------------------------------------------------- */

static void run_informer(fx *f, int passes)
{
    for (int i = 0; i < passes; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void random_write(fx *f)
{
    int i = (int)cm_rand_below(&f->r, NKEYS);
    char key[96], ns[16], name[16], node[16], label[32];
    snprintf(ns, sizeof ns, "ns%d", i / NPODS);
    snprintf(name, sizeof name, "p%d", i % NPODS);
    snprintf(key, sizeof key, "/registry/pods/%s/%s", ns, name);
    if (cm_rand_below(&f->r, 4) == 0) {
        skiff_delete(f->w, key, strlen(key), NULL, 0, NULL);
        return;
    }
    snprintf(node, sizeof node, "n%d", (int)cm_rand_below(&f->r, 3));
    snprintf(label, sizeof label, "app=a%d", (int)cm_rand_below(&f->r, 3));
    char image[32];
    snprintf(image, sizeof image, "img:%llu",
             (unsigned long long)cm_rand_below(&f->r, 1000000));
    size_t len;
    uint8_t *v = pod_pack(ns, name, label, NULL,
                          cm_rand_below(&f->r, 2) ? node : NULL, image, &len);
    /* Errors are fine here (a write cut by a kill): the check reads the
     * store itself rather than trusting a model of it. */
    skiff_put(f->w, key, strlen(key), v, len, 0, NULL);
    free(v);
}

static int64_t store_list(fx *f, skiff_result *res)
{
    for (int tries = 0; tries < 50; tries++) {
        if (skiff_get_prefix(f->w, "/registry/pods/", 15, res) == 0)
            return res->header.revision;
        skiff_result_free(res);
        usleep(100000);
    }
    fail_msg("cannot list the store");
    return -1;
}

static void wait_current(fx *f, int64_t rev)
{
    uint64_t t0 = uv_hrtime();
    while (!(ctl_informer_has_synced(f->inf) &&
             ctl_informer_revision(f->inf) >= rev) &&
           uv_hrtime() - t0 < 30000000000ull && !f->ended) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    if (ctl_informer_revision(f->inf) < rev)
        fail_msg("informer at revision %lld, store at %lld (ended %d)",
                 (long long)ctl_informer_revision(f->inf), (long long)rev,
                 f->ended);
}

static void count_ns(const ctl_obj *o, void *arg)
{
    (void)o;
    (*(long *)arg)++;
}

static void check(fx *f)
{
    skiff_result res;
    int64_t rev = store_list(f, &res);
    wait_current(f, rev);
    assert_int_equal(f->bad, 0);
    const ctl_indexer *ix = ctl_informer_cache(f->inf);
    assert_int_equal(ctl_indexer_len(ix), res.n_kvs);
    long per_ns[NNS] = {0};
    int in_store[NKEYS] = {0};
    for (size_t i = 0; i < res.n_kvs; i++) {
        const skiff_kv *kv = &res.kvs[i];
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key_len,
                 (const char *)kv->key);
        const ctl_obj *o = ctl_indexer_get(ix, key);
        if (!o)
            fail_msg("%s in the store, not in the cache", key);
        assert_int_equal(o->mod_revision, kv->mod_revision);
        assert_int_equal(o->create_revision, kv->create_revision);
        assert_int_equal(o->raw_len, kv->value_len);
        assert_memory_equal(o->raw, kv->value, kv->value_len);
        int k = key_index(key);
        assert_true(k >= 0);
        in_store[k] = 1;
        per_ns[k / NPODS]++;
        assert_int_equal(f->replay[k].present, 1);
        assert_int_equal(f->replay[k].mod, kv->mod_revision);
    }
    for (int k = 0; k < NKEYS; k++)
        assert_int_equal(f->replay[k].present, in_store[k]);
    for (int n = 0; n < NNS; n++) {
        char ns[16];
        long seen = 0;
        snprintf(ns, sizeof ns, "ns%d", n);
        long c =
            ctl_indexer_by_index(ix, CTL_INDEX_NAMESPACE, ns, count_ns, &seen);
        assert_int_equal(c < 0 ? 0 : c, per_ns[n]);
        assert_int_equal(seen, per_ns[n]);
    }
    skiff_result_free(&res);
}

static void test_property(void **state)
{
    fx *f = *state;
    ctl_informer_config cfg = {.resource = "pods",
                               .kind = obj_kind_find("Pod"),
                               .resync_ms = 40,
                               .restart_ms = 200};
    assert_int_equal(ctl_informer_create(f->ac, &cfg, &f->inf), 0);
    assert_int_equal(ctl_informer_add_index(f->inf, "spec.nodeName",
                                            ctl_index_pod_node_name, NULL),
                     0);
    ctl_handlers h = {.data = f,
                      .on_add = on_add,
                      .on_update = on_update,
                      .on_delete = on_delete,
                      .on_synced = on_synced,
                      .on_ended = on_ended};
    assert_int_equal(ctl_informer_add_handlers(f->inf, &h), 0);
    /* Objects that exist before the informer starts come as adds. */
    for (int i = 0; i < 10; i++)
        random_write(f);
    assert_int_equal(ctl_informer_start(f->inf), 0);
    assert_int_equal(ctl_informer_start(f->inf), -EBUSY);
    assert_int_equal(ctl_informer_add_handlers(f->inf, &h), -EBUSY);
    check(f);
    int kinds_seen[3] = {0};
    for (int round = 0; round < ROUNDS; round++) {
        int kind = round < 3 ? round : (int)cm_rand_below(&f->r, 3);
        kinds_seen[kind]++;
        ctl_informer_stats before = ctl_informer_get_stats(f->inf);
        if (kind == 0) {
            for (int i = 0; i < 40; i++) {
                random_write(f);
                if (cm_rand_below(&f->r, 3) == 0)
                    run_informer(f, 3);
            }
        } else {
            /* The informer's loop does not run until check(): it finds
             * its connection dead and must resume (or relist). */
            srv_kill(&f->s, SIGKILL);
            assert_int_equal(respawn(f), 0);
            for (int i = 0; i < 30; i++)
                random_write(f);
            if (kind == 2) {
                skiff_result st;
                int64_t rev = store_list(f, &st);
                skiff_result_free(&st);
                assert_int_equal(skiff_compact(f->w, rev, 1), 0);
            }
        }
        check(f);
        ctl_informer_stats after = ctl_informer_get_stats(f->inf);
        printf("round %d kind %d: lists %llu restarts %llu; adds %ld "
               "updates %ld deletes %ld resyncs %ld\n",
               round, kind, (unsigned long long)after.lists,
               (unsigned long long)after.restarts, f->adds, f->updates,
               f->deletes, f->resyncs);
        assert_int_equal(after.decode_errors, 0);
        if (kind == 1) /* resumed from where the watch was: no relist */
            assert_int_equal(after.lists, before.lists);
        if (kind == 2) /* the watch's history is gone: relisted */
            assert_true(after.lists > before.lists);
    }
    assert_true(f->deletes > 0);
    assert_true(f->updates > 0);
    /* Resync re-delivers cached objects as updates while the loop runs. */
    uint64_t t0 = uv_hrtime();
    long r0 = f->resyncs;
    while (f->resyncs <=
               r0 + (long)ctl_indexer_len(ctl_informer_cache(f->inf)) &&
           uv_hrtime() - t0 < 5000000000ull) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(f->resyncs > r0);
    assert_int_equal(f->bad, 0);
    ctl_informer_close(f->inf);
    assert_int_equal(f->ended, 0); /* never inside close */
    while (!f->ended)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->end_status, -ECANCELED);
}

static void start_informer(fx *f, int64_t resync_ms)
{
    ctl_informer_config cfg = {.resource = "pods",
                               .kind = obj_kind_find("Pod"),
                               .resync_ms = resync_ms,
                               .restart_ms = 100};
    assert_int_equal(ctl_informer_create(f->ac, &cfg, &f->inf), 0);
    ctl_handlers h = {.data = f,
                      .on_add = on_add,
                      .on_update = on_update,
                      .on_delete = on_delete,
                      .on_synced = on_synced,
                      .on_ended = on_ended};
    assert_int_equal(ctl_informer_add_handlers(f->inf, &h), 0);
    assert_int_equal(ctl_informer_start(f->inf), 0);
}

static void put_pod(fx *f, int i, const char *image)
{
    char key[96], ns[16], name[16];
    snprintf(ns, sizeof ns, "ns%d", i / NPODS);
    snprintf(name, sizeof name, "p%d", i % NPODS);
    snprintf(key, sizeof key, "/registry/pods/%s/%s", ns, name);
    size_t len;
    uint8_t *v = pod_pack(ns, name, "app=x", NULL, NULL, image, &len);
    assert_int_equal(skiff_put(f->w, key, strlen(key), v, len, 0, NULL), 0);
    free(v);
}

static void del_pod(fx *f, int i)
{
    char key[96];
    snprintf(key, sizeof key, "/registry/pods/ns%d/p%d", i / NPODS, i % NPODS);
    assert_int_equal(skiff_delete(f->w, key, strlen(key), NULL, 0, NULL), 0);
}

/* The raw informer gives up when its relist fails for good (here: a
 * response over the client's size limit).  This layer starts a new one
 * every restart_ms; once a list gets through, keys it does not report are
 * deleted, changed ones updated, and the replay still matches. */
static void test_restart(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 6; i++)
        put_pod(f, i, "v1");
    start_informer(f, 0);
    check(f);
    /* While the informer is cut off: grow the list past the limit, change
     * and delete some cached pods, and compact the history away. */
    srv_kill(&f->s, SIGKILL);
    assert_int_equal(respawn(f), 0);
    for (int i = 0; i < NKEYS; i++)
        put_pod(f, i, "v2-with-a-longer-image-name-to-grow-the-list");
    del_pod(f, 0);
    del_pod(f, 1);
    skiff_result st;
    int64_t rev = store_list(f, &st);
    skiff_result_free(&st);
    assert_int_equal(skiff_compact(f->w, rev, 1), 0);
    uint64_t t0 = uv_hrtime();
    while (ctl_informer_get_stats(f->inf).restarts < 3 &&
           uv_hrtime() - t0 < 20000000000ull && !f->ended) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(ctl_informer_get_stats(f->inf).restarts >= 3);
    /* The old cache stays readable and consistent meanwhile. */
    assert_int_equal(f->bad, 0);
    /* Shrink the store below the limit: the next restart gets through. */
    for (int i = 2; i < NKEYS - 3; i++)
        del_pod(f, i);
    check(f);
    assert_true(f->deletes >= 2);
    assert_int_equal(ctl_indexer_len(ctl_informer_cache(f->inf)), 3);
}

/* A handler may close the informer; nothing is delivered after that, and
 * an informer never started is freed at once. */
static void close_in_add(ctl_informer *inf, const ctl_obj *o, void *data)
{
    (void)o;
    fx *f = data;
    f->adds++;
    ctl_informer_close(inf);
}

static void test_close(void **state)
{
    fx *f = *state;
    ctl_informer_config cfg = {.resource = "pods"};
    ctl_informer *idle;
    assert_int_equal(ctl_informer_create(f->ac, &cfg, &idle), 0);
    ctl_informer_close(idle);
    cfg.resource = "a/b";
    assert_int_equal(ctl_informer_create(f->ac, &cfg, &idle), -EINVAL);
    cfg.resource = "pods";
    for (int i = 0; i < 4; i++)
        put_pod(f, i, "v1");
    assert_int_equal(ctl_informer_create(f->ac, &cfg, &f->inf), 0);
    ctl_handlers h = {.data = f,
                      .on_add = close_in_add,
                      .on_synced = on_synced,
                      .on_ended = on_ended};
    assert_int_equal(ctl_informer_add_handlers(f->inf, &h), 0);
    assert_int_equal(ctl_informer_start(f->inf), 0);
    uint64_t t0 = uv_hrtime();
    while (!f->ended && uv_hrtime() - t0 < 10000000000ull)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->ended);
    assert_int_equal(f->end_status, -ECANCELED);
    assert_int_equal(f->adds, 1);
    assert_int_equal(f->synced, 0);
}

int main(int argc, char **argv)
{
    skiffd_bin = argc > 1 ? argv[1] : "./skiffd";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_property, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
