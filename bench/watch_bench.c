/*
 * skiff-watch-bench: how fast the watch hub hands events to sinks.
 *
 * Scenarios, each run three times (the median is printed):
 *   fanout N   N watchers (1, 100, 10000) on one prefix; the hub is fed
 *              one-event revisions the way kv_apply produces them (a PUT
 *              with prev_kv, 256-byte values) and every watcher's sink
 *              takes each event.  Measures delivered events per second:
 *              revisions notified x watchers reached, per second.
 *   keys       10000 watchers, each on its own key; revisions touch random
 *              keys.  Measures notified revisions per second, which shows
 *              that matching does not walk every watcher.
 *   catch-up   N watchers (1, 100) starting at revision 1 of a store with
 *              100000 revisions under their prefix; watch_hub_step runs
 *              until all are synced.  Measures events read from storage
 *              and delivered per second.
 * Peak memory is the process's ru_maxrss after each scenario (it only
 * grows, so it bounds every scenario run so far; it includes the pages of
 * LMDB's map that reads touched).  The cm_* heap is also counted through
 * the allocator hooks, and its peak per scenario is printed: that is the
 * hub's own memory (watchers, groups, tables, scratch, read arena) plus
 * the store's per-call arenas.
 *
 * The sink does what a real one must at least do: it looks at every event
 * (key and value lengths are summed), but does not encode or copy them.
 * The bench measures and prints; it never fails a build.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "watch.h"

#define RUNS 3
#define VALUE_LEN 256
#define PREFIX "/registry/pods/default/"

/* Counting cm_* allocator: a 16-byte header keeps each block's size. */
static size_t heap_now, heap_peak;

static void *h_malloc(void *d, size_t n)
{
    (void)d;
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    *p = n;
    heap_now += n;
    if (heap_now > heap_peak)
        heap_peak = heap_now;
    return (char *)p + 16;
}

static void h_free(void *d, void *q)
{
    (void)d;
    if (!q)
        return;
    size_t *p = (size_t *)(void *)((char *)q - 16);
    heap_now -= *p;
    free(p);
}

static void *h_realloc(void *d, void *q, size_t n)
{
    if (!q)
        return h_malloc(d, n);
    size_t *p = (size_t *)(void *)((char *)q - 16);
    size_t old = *p;
    size_t *np = realloc(p, n + 16);
    if (!np)
        return NULL;
    *np = n;
    heap_now = heap_now - old + n;
    if (heap_now > heap_peak)
        heap_peak = heap_now;
    return (char *)np + 16;
}

static size_t heap_take_peak(void)
{
    size_t p = heap_peak;
    heap_peak = heap_now;
    return p;
}

typedef struct counter {
    watch_sink sink;
    uint64_t events, bytes;
} counter;

static int c_send(watch_sink *s, watch_watcher *w, const kv_events *evs)
{
    (void)w;
    counter *c = s->data;
    for (size_t i = 0; i < evs->n; i++)
        c->bytes += evs->ev[i]->kv->key.len + evs->ev[i]->kv->value.len;
    c->events += evs->n;
    return 0;
}

static int c_progress(watch_sink *s, watch_watcher *w, int64_t rev)
{
    (void)s;
    (void)w;
    (void)rev;
    return 0;
}

static void c_cancel(watch_sink *s, watch_watcher *w, int reason, int64_t rev)
{
    (void)s;
    (void)w;
    fprintf(stderr, "unexpected cancel: %s at %lld\n", watch_strerror(reason),
            (long long)rev);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, watch_strerror(rc));
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof *v, cmp_double);
    return v[RUNS / 2];
}

static void rmrf(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

static watch_watcher **watch_many(watch_hub *hub, counter *c, size_t n,
                                  int64_t start, int distinct)
{
    watch_watcher **w = calloc(n, sizeof *w);
    if (!w)
        die("calloc", -ENOMEM);
    for (size_t i = 0; i < n; i++) {
        char key[64];
        watch_options o = {0};
        if (distinct) {
            snprintf(key, sizeof key, PREFIX "pod-%06zu", i);
            o.key = (const uint8_t *)key;
            o.key_len = strlen(key);
        } else {
            o.key = (const uint8_t *)PREFIX;
            o.key_len = strlen(PREFIX);
            /* The prefix's end: last byte '/' + 1. */
            static char end[sizeof PREFIX];
            memcpy(end, PREFIX, sizeof PREFIX);
            end[sizeof PREFIX - 2]++;
            o.range_end = (const uint8_t *)end;
            o.end_len = strlen(end);
        }
        o.start_revision = start;
        o.sink = &c->sink;
        int rc = watch_start(hub, &o, &w[i]);
        if (rc)
            die("watch_start", rc);
    }
    return w;
}

/* One-event revisions shaped like kv_apply's: PUT with prev_kv. */
typedef struct feed {
    Skiffpb__Event ev;
    Skiffpb__Event *evp;
    Skiffpb__KeyValue kv, prev;
    char key[64];
    uint8_t value[VALUE_LEN];
} feed;

static void feed_init(feed *f)
{
    skiffpb__event__init(&f->ev);
    skiffpb__key_value__init(&f->kv);
    skiffpb__key_value__init(&f->prev);
    memset(f->value, 'v', sizeof f->value);
    f->ev.type = SKIFFPB__EVENT__EVENT_TYPE__PUT;
    f->ev.kv = &f->kv;
    f->ev.prev_kv = &f->prev;
    f->kv.value.data = f->value;
    f->kv.value.len = sizeof f->value;
    f->prev.value = f->kv.value;
    f->evp = &f->ev;
}

static void feed_set(feed *f, int64_t rev, size_t keyno)
{
    int n = snprintf(f->key, sizeof f->key, PREFIX "pod-%06zu", keyno);
    f->kv.key.data = (uint8_t *)f->key;
    f->kv.key.len = (size_t)n;
    f->prev.key = f->kv.key;
    f->kv.mod_revision = rev;
    f->kv.create_revision = 1;
    f->kv.version = rev;
    f->prev.mod_revision = rev - 1;
}

static double run_fanout(kv_store *kv, size_t nwatchers, uint64_t target)
{
    watch_hub *hub;
    int rc = watch_hub_create(&hub, kv, NULL);
    if (rc)
        die("watch_hub_create", rc);
    counter c = {{&c, c_send, c_progress, c_cancel}, 0, 0};
    watch_watcher **w = watch_many(hub, &c, nwatchers, 0, 0);
    feed f;
    feed_init(&f);
    uint64_t revs = target / nwatchers;
    int64_t rev = watch_hub_revision(hub);
    double t0 = now_s();
    for (uint64_t i = 0; i < revs; i++) {
        feed_set(&f, ++rev, i % 1000);
        kv_events evs = {rev, 1, &f.evp};
        if ((rc = watch_hub_notify(hub, &evs)))
            die("notify", rc);
    }
    double dt = now_s() - t0;
    if (c.events != revs * nwatchers) {
        fprintf(stderr, "lost events: %llu of %llu\n",
                (unsigned long long)c.events,
                (unsigned long long)(revs * nwatchers));
        exit(1);
    }
    for (size_t i = 0; i < nwatchers; i++)
        watch_stop(w[i]);
    free(w);
    watch_hub_destroy(hub);
    return (double)c.events / dt;
}

static double run_keys(kv_store *kv, size_t nwatchers, uint64_t revs)
{
    watch_hub *hub;
    int rc = watch_hub_create(&hub, kv, NULL);
    if (rc)
        die("watch_hub_create", rc);
    counter c = {{&c, c_send, c_progress, c_cancel}, 0, 0};
    watch_watcher **w = watch_many(hub, &c, nwatchers, 0, 1);
    feed f;
    feed_init(&f);
    int64_t rev = watch_hub_revision(hub);
    uint64_t x = 88172645463325252ull;
    double t0 = now_s();
    for (uint64_t i = 0; i < revs; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        feed_set(&f, ++rev, (size_t)(x % (2 * nwatchers)));
        kv_events evs = {rev, 1, &f.evp};
        if ((rc = watch_hub_notify(hub, &evs)))
            die("notify", rc);
    }
    double dt = now_s() - t0;
    for (size_t i = 0; i < nwatchers; i++)
        watch_stop(w[i]);
    free(w);
    watch_hub_destroy(hub);
    return (double)revs / dt;
}

/* Fills the store with `n` one-put revisions under PREFIX. */
static void fill(kv_store *kv, size_t n)
{
    enum { BATCH = 1000 };
    cm_arena arena = {0};
    kv_entry *e = calloc(BATCH, sizeof *e);
    kv_result *res = calloc(BATCH, sizeof *res);
    cm_buf *bufs = calloc(BATCH, sizeof *bufs);
    uint8_t value[VALUE_LEN];
    memset(value, 'v', sizeof value);
    kv_status st;
    kv_status_get(kv, &st);
    uint64_t index = st.applied_index;
    for (size_t done = 0; done < n; done += BATCH) {
        for (size_t i = 0; i < BATCH; i++) {
            char key[64];
            int kl = snprintf(key, sizeof key, PREFIX "pod-%06zu",
                              (done + i) % 1000);
            Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
            Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
            p.key.data = (uint8_t *)key;
            p.key.len = (size_t)kl;
            p.value.data = value;
            p.value.len = sizeof value;
            c.op_case = SKIFFPB__COMMAND__OP_PUT;
            c.put = &p;
            cm_buf_reset(&bufs[i]);
            if (kv_command_pack(&c, &bufs[i]))
                die("pack", -ENOMEM);
            e[i].index = ++index;
            e[i].data = bufs[i].base;
            e[i].len = bufs[i].len;
        }
        int rc = kv_apply_batch(kv, e, BATCH, &arena, res);
        if (rc)
            die("kv_apply_batch", rc);
        cm_arena_reset(&arena);
    }
    for (size_t i = 0; i < BATCH; i++)
        cm_buf_free(&bufs[i]);
    free(bufs);
    free(res);
    free(e);
    cm_arena_free(&arena);
}

static double run_catchup(kv_store *kv, size_t nwatchers, uint64_t *events)
{
    watch_hub *hub;
    int rc = watch_hub_create(&hub, kv, NULL);
    if (rc)
        die("watch_hub_create", rc);
    counter c = {{&c, c_send, c_progress, c_cancel}, 0, 0};
    watch_watcher **w = watch_many(hub, &c, nwatchers, 1, 0);
    double t0 = now_s();
    while ((rc = watch_hub_step(hub, 0)) == 1)
        ;
    if (rc)
        die("watch_hub_step", rc);
    double dt = now_s() - t0;
    *events = c.events;
    for (size_t i = 0; i < nwatchers; i++)
        watch_stop(w[i]);
    free(w);
    watch_hub_destroy(hub);
    return (double)c.events / dt;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static const cm_allocator counting = {NULL, h_malloc, h_realloc, h_free};
    cm_allocator_set(&counting);
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/skiff-watch-bench-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    kv_store *kv;
    int rc = kv_open(&kv, dir, NULL);
    if (rc)
        die("kv_open", rc);

    printf("skiff-watch-bench: median of %d runs, events of %d-byte "
           "values\n",
           RUNS, VALUE_LEN);
    static const size_t fan[] = {1, 100, 10000};
    for (size_t k = 0; k < 3; k++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++)
            v[r] = run_fanout(kv, fan[k], 20000000);
        printf("fanout   watchers=%-6zu delivered=%12.0f events/s  "
               "heap=%zu KiB maxrss=%ld KiB\n",
               fan[k], median(v), heap_take_peak() / 1024, maxrss_kib());
    }
    {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++)
            v[r] = run_keys(kv, 10000, 2000000);
        printf("keys     watchers=%-6d notified=%13.0f revisions/s  "
               "heap=%zu KiB maxrss=%ld KiB\n",
               10000, median(v), heap_take_peak() / 1024, maxrss_kib());
    }
    const size_t history = 100000;
    fill(kv, history);
    heap_take_peak();
    static const size_t cu[] = {1, 100};
    for (size_t k = 0; k < 2; k++) {
        double v[RUNS];
        uint64_t ev = 0;
        for (int r = 0; r < RUNS; r++)
            v[r] = run_catchup(kv, cu[k], &ev);
        printf("catch-up watchers=%-6zu history=%zu delivered=%10.0f "
               "events/s (%llu events)  heap=%zu KiB maxrss=%ld KiB\n",
               cu[k], history, median(v), (unsigned long long)ev,
               heap_take_peak() / 1024, maxrss_kib());
    }
    kv_close(kv);
    rmrf(dir);
    return 0;
}
