/*
 * skiff-bench: a load generator for skiffd, modelled on etcd's `benchmark`
 * tool so figures from the two can be put side by side.
 *
 *   skiff-bench [--endpoints E] [--conns N] [--clients M] <command> ...
 *     put       --total --key-size --val-size --key-space-size
 *               --sequential-keys --rate
 *     range KEY [END] --total --consistency l|s --rate
 *     txn-put   --total --key-size --val-size --key-space-size --txn-ops
 *     watch     --watchers --streams --put-total --put-rate --key-size
 *               --val-size  (event delivery latency)
 *
 * Every client is a closed loop of asynchronous libskiff requests: it
 * starts the next request when the previous one completes, so M clients
 * keep M requests in flight, spread by the library over N connections.
 * Hundreds of clients therefore cost one thread and one libuv loop.  With
 * --rate the requests are paced by a 1 ms token timer instead of going out
 * back to back.
 *
 * The report has etcd's shape: total time, slowest/fastest/average/stddev,
 * requests per second, a ten-bucket latency histogram and the 10th to
 * 99.9th percentiles.  For `watch`, the latency is from the moment a put
 * is sent to the moment each watcher receives its event (one sample per
 * watcher and put); the puts' own latencies are reported too.
 *
 * Benchmarks measure and print; they never gate CI.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "skiff.h"

#define MAX_ENDPOINTS 16

/* ---- options ------------------------------------------------------------- */

typedef struct opts {
    const char *endpoints[MAX_ENDPOINTS];
    size_t n_endpoints;
    char *ep_buf;
    const char *cacert, *cert, *key;
    int conns, clients;
    int64_t total;
    int key_size, val_size;
    int64_t key_space;
    int sequential;
    double rate;
    int serializable;
    const char *range_key, *range_end;
    int txn_ops;
    int watchers, streams;
    int64_t put_total;
    double put_rate;
} opts;

/* ---- statistics ---------------------------------------------------------- */

typedef struct stats {
    double *lat; /* seconds, one per completed request */
    size_t n, cap;
    uint64_t errors;
    int first_error;
    double elapsed; /* seconds */
} stats;

/* Records one latency.  0 or -ENOMEM. */
static int stats_add(stats *s, double v)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        double *n = realloc(s->lat, nc * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->lat = n;
        s->cap = nc;
    }
    s->lat[s->n++] = v;
    return 0;
}

/* qsort order for doubles. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints etcd benchmark's summary, histogram and percentiles. */
static void stats_report(stats *s, const char *title)
{
    printf("\n%s\n", title);
    printf("Summary:\n");
    printf("  Total:\t%.4f secs.\n", s->elapsed);
    if (!s->n) {
        printf("  (no successful requests)\n");
    } else {
        qsort(s->lat, s->n, sizeof *s->lat, cmp_double);
        double sum = 0, sq = 0;
        for (size_t i = 0; i < s->n; i++)
            sum += s->lat[i];
        double avg = sum / (double)s->n;
        for (size_t i = 0; i < s->n; i++)
            sq += (s->lat[i] - avg) * (s->lat[i] - avg);
        double fastest = s->lat[0], slowest = s->lat[s->n - 1];
        printf("  Slowest:\t%.4f secs.\n", slowest);
        printf("  Fastest:\t%.4f secs.\n", fastest);
        printf("  Average:\t%.4f secs.\n", avg);
        printf("  Stddev:\t%.4f secs.\n", sqrt(sq / (double)s->n));
        printf("  Requests/sec:\t%.4f\n",
               s->elapsed > 0 ? (double)s->n / s->elapsed : 0);

        /* Ten equal buckets between fastest and slowest, bars scaled to
         * the fullest bucket. */
        enum { NB = 10, BAR = 40 };
        double marks[NB + 1];
        size_t counts[NB + 1] = {0};
        double step = (slowest - fastest) / NB;
        for (int i = 0; i <= NB; i++)
            marks[i] = fastest + step * i;
        size_t bi = 0;
        for (size_t i = 0; i < s->n;) {
            if (s->lat[i] <= marks[bi] || bi == NB) {
                counts[bi]++;
                i++;
            } else {
                bi++;
            }
        }
        size_t maxc = 0;
        for (int i = 0; i <= NB; i++)
            if (counts[i] > maxc)
                maxc = counts[i];
        printf("\nResponse time histogram:\n");
        for (int i = 0; i <= NB; i++) {
            int bar = maxc ? (int)(counts[i] * BAR / maxc) : 0;
            printf("  %.4f [%zu]\t|", marks[i], counts[i]);
            for (int j = 0; j < bar; j++)
                fputs("\xe2\x88\x8e", stdout); /* U+220E, like etcd's */
            putchar('\n');
        }
        static const double pct[] = {10, 25, 50, 75, 90, 95, 99, 99.9};
        printf("\nLatency distribution:\n");
        for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++) {
            size_t k = (size_t)ceil(pct[i] / 100.0 * (double)s->n);
            if (k > 0)
                k--;
            if (k >= s->n)
                k = s->n - 1;
            printf("  %g%% in %.4f secs.\n", pct[i], s->lat[k]);
        }
    }
    if (s->errors) {
        printf("\nError distribution:\n");
        printf("  [%" PRIu64 "]\t%s\n", s->errors,
               skiff_strerror(s->first_error));
    }
    fflush(stdout);
}

/* ---- the request loop ---------------------------------------------------- */

typedef struct bench bench;

typedef struct bclient {
    skiff_req req;
    bench *b;
    int busy;
    uint8_t *key; /* key buffer (key_size, or txn_ops * key_size) */
} bclient;

enum kind { K_PUT, K_RANGE, K_TXN_PUT };

struct bench {
    const opts *o;
    enum kind kind;
    uv_loop_t *loop;
    skiff_client *c;
    bclient *clients;
    uv_timer_t pacer;
    uint8_t *value;
    int64_t issued, done;
    uint64_t start_ns;
    stats st;
    uint64_t rng;
    int64_t seq;
};

/* xorshift64*. */
static uint64_t rnd(bench *b)
{
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 2685821657736338717ULL;
}

/* Writes key number n into buf (key_size bytes): a varint at the front of
 * a zeroed buffer, as etcd's benchmark builds its keys. */
static void make_key(uint8_t *buf, int size, int64_t n)
{
    memset(buf, 0, (size_t)size);
    uint64_t zz = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    int i = 0;
    while (zz >= 0x80 && i < size - 1) {
        buf[i++] = (uint8_t)(zz | 0x80);
        zz >>= 7;
    }
    if (i < size)
        buf[i] = (uint8_t)zz;
}

/* The next key number: sequential or random in the key space. */
static int64_t next_key(bench *b)
{
    if (b->o->sequential)
        return b->seq++ % b->o->key_space;
    return (int64_t)(rnd(b) % (uint64_t)b->o->key_space);
}

/* A request finished: record it and, unpaced, start the next one. */
static void on_done(skiff_req *req, int status);

/* Starts the next request for an idle client. */
static void issue(bench *b, bclient *bc)
{
    const opts *o = b->o;
    skiff_op op = {0};
    skiff_op subs[64];
    switch (b->kind) {
    case K_PUT:
        make_key(bc->key, o->key_size, next_key(b));
        op.type = SKIFF_OP_PUT;
        op.key = bc->key;
        op.key_len = (size_t)o->key_size;
        op.value = b->value;
        op.value_len = (size_t)o->val_size;
        break;
    case K_RANGE:
        op.type = SKIFF_OP_RANGE;
        op.key = o->range_key;
        op.key_len = strlen(o->range_key);
        if (o->range_end) {
            op.range_end = o->range_end;
            op.range_end_len = strlen(o->range_end);
        }
        if (o->serializable)
            op.flags |= SKIFF_SERIALIZABLE;
        break;
    case K_TXN_PUT:
        op.type = SKIFF_OP_TXN;
        for (int i = 0; i < o->txn_ops; i++) {
            uint8_t *k = bc->key + (size_t)i * (size_t)o->key_size;
            make_key(k, o->key_size, next_key(b));
            subs[i] = (skiff_op){.type = SKIFF_OP_PUT,
                                 .key = k,
                                 .key_len = (size_t)o->key_size,
                                 .value = b->value,
                                 .value_len = (size_t)o->val_size};
        }
        op.success = subs;
        op.n_success = (size_t)o->txn_ops;
        break;
    }
    bc->req.data = bc;
    b->issued++;
    int rc = skiff_do(b->c, &bc->req, &op, on_done);
    if (rc) {
        b->done++;
        b->st.errors++;
        if (!b->st.first_error)
            b->st.first_error = rc;
        return;
    }
    bc->busy = 1;
}

/* A request finished: record it and, unpaced, start the next one. */
static void on_done(skiff_req *req, int status)
{
    bclient *bc = req->data;
    bench *b = bc->b;
    bc->busy = 0;
    b->done++;
    if (status < 0) {
        b->st.errors++;
        if (!b->st.first_error)
            b->st.first_error = status;
    } else {
        stats_add(&b->st, (double)(req->end_ns - req->start_ns) / 1e9);
    }
    /* Closed loop: the client goes again unless paced by the timer. */
    if (b->o->rate <= 0 && b->issued < b->o->total)
        issue(b, bc);
}

/* Every millisecond with --rate: releases the requests due by now. */
static void on_pace(uv_timer_t *t)
{
    bench *b = t->data;
    double el = (double)(uv_hrtime() - b->start_ns) / 1e9;
    int64_t due = (int64_t)(el * b->o->rate) + 1;
    for (int i = 0;
         i < b->o->clients && b->issued < due && b->issued < b->o->total; i++)
        if (!b->clients[i].busy)
            issue(b, &b->clients[i]);
    if (b->issued >= b->o->total)
        uv_timer_stop(t);
}

/* Client configuration from the options. */
static void fill_config(const opts *o, skiff_config *cfg, int conns)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->endpoints = o->endpoints;
    cfg->n_endpoints = o->n_endpoints;
    cfg->ca_file = o->cacert;
    cfg->cert_file = o->cert;
    cfg->key_file = o->key;
    cfg->conns = conns;
    cfg->request_timeout_ms = 30000;
}

/* The async client is gone; nothing to free. */
static void on_closed(skiff_client *c)
{
    (void)c;
}

/* put, range and txn-put: runs --total requests and reports. */
static int run_requests(const opts *o, enum kind kind, const char *title)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return 1;
    b->o = o;
    b->kind = kind;
    b->rng = uv_hrtime() | 1;
    b->loop = uv_default_loop();
    b->value = malloc((size_t)o->val_size + 1);
    b->clients = calloc((size_t)o->clients, sizeof *b->clients);
    if (!b->value || !b->clients)
        return 1;
    for (int i = 0; i < o->val_size; i++)
        b->value[i] = (uint8_t)('a' + rnd(b) % 26);
    size_t kcap =
        (size_t)o->key_size * (size_t)(o->txn_ops > 0 ? o->txn_ops : 1);
    for (int i = 0; i < o->clients; i++) {
        b->clients[i].b = b;
        b->clients[i].key = calloc(1, kcap + 1);
    }
    skiff_config cfg;
    fill_config(o, &cfg, o->conns);
    int rc = skiff_client_create_async(&b->c, &cfg, b->loop);
    if (rc) {
        fprintf(stderr, "skiff-bench: client: %s\n", skiff_strerror(rc));
        return 1;
    }
    b->start_ns = uv_hrtime();
    if (o->rate > 0) {
        uv_timer_init(b->loop, &b->pacer);
        b->pacer.data = b;
        uv_timer_start(&b->pacer, on_pace, 0, 1);
    } else {
        for (int i = 0; i < o->clients && b->issued < o->total; i++)
            issue(b, &b->clients[i]);
    }
    while (b->done < o->total)
        uv_run(b->loop, UV_RUN_ONCE);
    b->st.elapsed = (double)(uv_hrtime() - b->start_ns) / 1e9;
    if (o->rate > 0)
        uv_close((uv_handle_t *)&b->pacer, NULL);
    skiff_client_close(b->c, on_closed);
    uv_run(b->loop, UV_RUN_DEFAULT);
    stats_report(&b->st, title);
    for (int i = 0; i < o->clients; i++)
        free(b->clients[i].key);
    free(b->clients);
    free(b->value);
    free(b->st.lat);
    int failed = b->st.errors != 0;
    free(b);
    return failed;
}

/* ---- watch latency ------------------------------------------------------- */

typedef struct wbench wbench;

typedef struct bwatcher {
    skiff_watch w;
    wbench *wb;
    int index;
    int created;
} bwatcher;

struct wbench {
    const opts *o;
    uv_loop_t *loop;
    skiff_client *wc, *pc; /* watch client, put client */
    bwatcher *ws;
    int created, ended;
    uint64_t *sent_ns; /* per put: when it was sent */
    uint64_t *ack_ns;  /* per put: when its response came */
    uint64_t *recv_ns; /* per put and watcher: when the event came */
    int64_t first_rev; /* revision of put 0 */
    int64_t puts_issued, puts_done;
    int64_t received;
    skiff_req put_req;
    uv_timer_t pacer;
    uint8_t key[512];
    uint8_t *value;
    stats watch_st, put_st, ack_st;
    uint64_t start_ns;
    int64_t *revs; /* per put: its revision */
};

/* A watcher's delivery: one latency sample per event. */
static void on_event(skiff_watch *w, int status, const skiff_watch_resp *r)
{
    bwatcher *bw = w->data;
    wbench *wb = bw->wb;
    if (status < 0) {
        wb->ended++;
        if (status != -ECANCELED) {
            wb->watch_st.errors++;
            wb->watch_st.first_error = status;
        }
        return;
    }
    if (r->created) {
        bw->created = 1;
        wb->created++;
        return;
    }
    uint64_t now = uv_hrtime();
    for (size_t i = 0; i < r->n_events; i++) {
        /* Puts go out one at a time, so revision order is put order. */
        int64_t idx = r->events[i].kv.mod_revision - wb->first_rev;
        if (wb->first_rev > 0 && idx >= 0 && idx < wb->puts_issued) {
            stats_add(&wb->watch_st, (double)(now - wb->sent_ns[idx]) / 1e9);
            wb->recv_ns[idx * wb->o->watchers + bw->index] = now;
            wb->received++;
        }
    }
}

/* Sends the next put, noting when it left. */
static void put_next(wbench *wb);

/* The writer's put finished. */
static void on_put_done(skiff_req *req, int status)
{
    wbench *wb = req->data;
    /* One put is in flight at a time: this is put number puts_done. */
    wb->ack_ns[wb->puts_done] = req->end_ns;
    wb->puts_done++;
    if (status < 0) {
        wb->put_st.errors++;
        wb->put_st.first_error = status;
    } else {
        stats_add(&wb->put_st, (double)(req->end_ns - req->start_ns) / 1e9);
    }
    if (wb->o->put_rate <= 0 && wb->puts_issued < wb->o->put_total)
        put_next(wb);
}

/* Sends the next put, noting when it left. */
static void put_next(wbench *wb)
{
    skiff_op op = {.type = SKIFF_OP_PUT,
                   .key = wb->key,
                   .key_len = (size_t)wb->o->key_size,
                   .value = wb->value,
                   .value_len = (size_t)wb->o->val_size};
    wb->put_req.data = wb;
    wb->sent_ns[wb->puts_issued] = uv_hrtime();
    wb->puts_issued++;
    if (skiff_do(wb->pc, &wb->put_req, &op, on_put_done)) {
        wb->puts_done++;
        wb->put_st.errors++;
    }
}

/* Every millisecond: the next put when it is due and none is in
 * flight. */
static void on_put_pace(uv_timer_t *t)
{
    wbench *wb = t->data;
    double el = (double)(uv_hrtime() - wb->start_ns) / 1e9;
    int64_t due = (int64_t)(el * wb->o->put_rate) + 1;
    /* One put in flight at a time keeps revisions in put order. */
    if (wb->puts_issued < due && wb->puts_issued == wb->puts_done &&
        wb->puts_issued < wb->o->put_total)
        put_next(wb);
    if (wb->puts_issued >= wb->o->put_total)
        uv_timer_stop(t);
}

/* The warm-up put: its revision anchors put number 0. */
static void on_warm(skiff_req *req, int status)
{
    wbench *wb = req->data;
    /* No other writer is assumed: put i gets revision warm-up + 1 + i. */
    wb->first_rev = status < 0 ? -1 : req->result.header.revision + 1;
}

/* watch: creates the watchers, writes at --put-rate, and reports put
 * and delivery latencies. */
static int run_watch(const opts *o)
{
    wbench *wb = calloc(1, sizeof *wb);
    if (!wb)
        return 1;
    wb->o = o;
    wb->loop = uv_default_loop();
    wb->ws = calloc((size_t)o->watchers, sizeof *wb->ws);
    wb->sent_ns = calloc((size_t)o->put_total + 1, sizeof *wb->sent_ns);
    wb->ack_ns = calloc((size_t)o->put_total + 1, sizeof *wb->ack_ns);
    wb->recv_ns =
        calloc((size_t)o->put_total * (size_t)o->watchers, sizeof *wb->recv_ns);
    wb->value = malloc((size_t)o->val_size + 1);
    if (!wb->ws || !wb->sent_ns || !wb->ack_ns || !wb->recv_ns || !wb->value)
        return 1;
    memset(wb->value, 'v', (size_t)o->val_size);
    snprintf((char *)wb->key, sizeof wb->key, "/skiff-bench/watch");
    if ((int)strlen((char *)wb->key) < o->key_size)
        memset(wb->key + strlen((char *)wb->key), 'k',
               (size_t)o->key_size - strlen((char *)wb->key));
    skiff_config cfg;
    fill_config(o, &cfg, o->streams);
    int rc = skiff_client_create_async(&wb->wc, &cfg, wb->loop);
    if (!rc) {
        fill_config(o, &cfg, 1);
        rc = skiff_client_create_async(&wb->pc, &cfg, wb->loop);
    }
    if (rc) {
        fprintf(stderr, "skiff-bench: client: %s\n", skiff_strerror(rc));
        return 1;
    }
    skiff_watch_opts wo = {.key = wb->key, .key_len = (size_t)o->key_size};
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < o->watchers; i++) {
        wb->ws[i].wb = wb;
        wb->ws[i].index = i;
        wb->ws[i].w.data = &wb->ws[i];
        if ((rc = skiff_watch_start(wb->wc, &wb->ws[i].w, &wo, on_event))) {
            fprintf(stderr, "skiff-bench: watch: %s\n", skiff_strerror(rc));
            return 1;
        }
    }
    while (wb->created + wb->ended < o->watchers)
        uv_run(wb->loop, UV_RUN_ONCE);
    printf("created %d watchers over %d connections in %.4f secs.\n",
           wb->created, o->streams, (double)(uv_hrtime() - t0) / 1e9);
    skiff_op warm = {.type = SKIFF_OP_PUT,
                     .key = wb->key,
                     .key_len = (size_t)o->key_size,
                     .value = wb->value,
                     .value_len = (size_t)o->val_size};
    wb->put_req.data = wb;
    if (skiff_do(wb->pc, &wb->put_req, &warm, on_warm))
        return 1;
    while (!wb->first_rev)
        uv_run(wb->loop, UV_RUN_ONCE);
    if (wb->first_rev < 0) {
        fprintf(stderr, "skiff-bench: warm-up put failed\n");
        return 1;
    }
    wb->start_ns = uv_hrtime();
    if (o->put_rate > 0) {
        uv_timer_init(wb->loop, &wb->pacer);
        wb->pacer.data = wb;
        uv_timer_start(&wb->pacer, on_put_pace, 0, 1);
    } else {
        put_next(wb);
    }
    int64_t want = (int64_t)wb->created * o->put_total;
    uint64_t give_up = 0;
    while (wb->puts_done < o->put_total || wb->received < want) {
        uv_run(wb->loop, UV_RUN_ONCE);
        if (wb->puts_done == o->put_total && !give_up)
            give_up = uv_hrtime() + 30ull * 1000000000ull;
        if (give_up && uv_hrtime() > give_up) {
            fprintf(stderr,
                    "skiff-bench: %" PRId64 " of %" PRId64 " events arrived\n",
                    wb->received, want);
            break;
        }
    }
    double el = (double)(uv_hrtime() - wb->start_ns) / 1e9;
    wb->watch_st.elapsed = el;
    wb->put_st.elapsed = el;
    if (o->put_rate > 0)
        uv_close((uv_handle_t *)&wb->pacer, NULL);
    for (int i = 0; i < o->watchers; i++)
        skiff_watch_stop(&wb->ws[i].w);
    skiff_client_close(wb->wc, on_closed);
    skiff_client_close(wb->pc, on_closed);
    uv_run(wb->loop, UV_RUN_DEFAULT);
    stats_report(&wb->put_st, "Put summary:");
    stats_report(&wb->watch_st,
                 "Watch event delivery summary (from each put sent):");
    /* etcd's watch-latency measures from the put's response instead (an
     * event that came earlier counts as 0). */
    for (int64_t i = 0; i < o->put_total; i++)
        for (int j = 0; j < o->watchers; j++) {
            uint64_t r = wb->recv_ns[i * o->watchers + j];
            if (r && wb->ack_ns[i])
                stats_add(&wb->ack_st, r > wb->ack_ns[i]
                                           ? (double)(r - wb->ack_ns[i]) / 1e9
                                           : 0);
        }
    wb->ack_st.elapsed = el;
    stats_report(&wb->ack_st, "Watch event delivery summary (from each put "
                              "acknowledged, etcd's watch-latency):");
    int failed =
        wb->watch_st.errors || wb->put_st.errors || wb->received < want;
    free(wb->watch_st.lat);
    free(wb->put_st.lat);
    free(wb->ws);
    free(wb->sent_ns);
    free(wb->ack_ns);
    free(wb->recv_ns);
    free(wb->ack_st.lat);
    free(wb->value);
    free(wb);
    return failed;
}

/* ---- command line -------------------------------------------------------- */

/* Prints the usage. */
static void usage(FILE *f)
{
    fputs("usage: skiff-bench [--endpoints h:p,...] [--conns N] "
          "[--clients M]\n"
          "                   [--cacert F --cert F --key F] <command>\n"
          "  put      [--total N] [--key-size B] [--val-size B]\n"
          "           [--key-space-size N] [--sequential-keys] [--rate R]\n"
          "  range KEY [END] [--total N] [--consistency l|s] [--rate R]\n"
          "  txn-put  [--total N] [--key-size B] [--val-size B]\n"
          "           [--key-space-size N] [--txn-ops N] [--rate R]\n"
          "  watch    [--watchers N] [--streams N] [--put-total N]\n"
          "           [--put-rate R] [--key-size B] [--val-size B]\n",
          f);
}

enum {
    O_ENDPOINTS = 256,
    O_CONNS,
    O_CLIENTS,
    O_CACERT,
    O_CERT,
    O_KEY,
    O_TOTAL,
    O_KEY_SIZE,
    O_VAL_SIZE,
    O_KEY_SPACE,
    O_SEQ,
    O_RATE,
    O_CONSISTENCY,
    O_TXN_OPS,
    O_WATCHERS,
    O_STREAMS,
    O_PUT_TOTAL,
    O_PUT_RATE,
    O_HELP
};

static const struct option long_opts[] = {
    {"endpoints", required_argument, NULL, O_ENDPOINTS},
    {"conns", required_argument, NULL, O_CONNS},
    {"clients", required_argument, NULL, O_CLIENTS},
    {"cacert", required_argument, NULL, O_CACERT},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"total", required_argument, NULL, O_TOTAL},
    {"key-size", required_argument, NULL, O_KEY_SIZE},
    {"val-size", required_argument, NULL, O_VAL_SIZE},
    {"key-space-size", required_argument, NULL, O_KEY_SPACE},
    {"sequential-keys", no_argument, NULL, O_SEQ},
    {"rate", required_argument, NULL, O_RATE},
    {"consistency", required_argument, NULL, O_CONSISTENCY},
    {"txn-ops", required_argument, NULL, O_TXN_OPS},
    {"watchers", required_argument, NULL, O_WATCHERS},
    {"streams", required_argument, NULL, O_STREAMS},
    {"put-total", required_argument, NULL, O_PUT_TOTAL},
    {"put-rate", required_argument, NULL, O_PUT_RATE},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* Parses a positive integer option value; exits on nonsense. */
static int64_t num(const char *name, const char *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0) {
        fprintf(stderr, "skiff-bench: --%s: not a number: %s\n", name, v);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    opts o = {.conns = 1,
              .clients = 1,
              .total = 10000,
              .key_size = 8,
              .val_size = 8,
              .key_space = 1,
              .txn_ops = 1,
              .watchers = 10,
              .streams = 1,
              .put_total = 1000};
    const char *eps = "127.0.0.1:2379";
    int c;
    /* '+' would stop at the command; permute so flags may follow it. */
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (c) {
        case O_ENDPOINTS:
            eps = optarg;
            break;
        case O_CONNS:
            o.conns = (int)num("conns", optarg);
            break;
        case O_CLIENTS:
            o.clients = (int)num("clients", optarg);
            break;
        case O_CACERT:
            o.cacert = optarg;
            break;
        case O_CERT:
            o.cert = optarg;
            break;
        case O_KEY:
            o.key = optarg;
            break;
        case O_TOTAL:
            o.total = num("total", optarg);
            break;
        case O_KEY_SIZE:
            o.key_size = (int)num("key-size", optarg);
            break;
        case O_VAL_SIZE:
            o.val_size = (int)num("val-size", optarg);
            break;
        case O_KEY_SPACE:
            o.key_space = num("key-space-size", optarg);
            break;
        case O_SEQ:
            o.sequential = 1;
            break;
        case O_RATE:
            o.rate = (double)num("rate", optarg);
            break;
        case O_CONSISTENCY:
            if (strcmp(optarg, "l") && strcmp(optarg, "s")) {
                fprintf(stderr, "skiff-bench: --consistency: l or s\n");
                return 2;
            }
            o.serializable = optarg[0] == 's';
            break;
        case O_TXN_OPS:
            o.txn_ops = (int)num("txn-ops", optarg);
            break;
        case O_WATCHERS:
            o.watchers = (int)num("watchers", optarg);
            break;
        case O_STREAMS:
            o.streams = (int)num("streams", optarg);
            break;
        case O_PUT_TOTAL:
            o.put_total = num("put-total", optarg);
            break;
        case O_PUT_RATE:
            o.put_rate = (double)num("put-rate", optarg);
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    o.ep_buf = strdup(eps);
    char *save = NULL;
    for (char *t = strtok_r(o.ep_buf, ",", &save);
         t && o.n_endpoints < MAX_ENDPOINTS; t = strtok_r(NULL, ",", &save))
        o.endpoints[o.n_endpoints++] = t;
    if (o.conns < 1 || o.clients < 1 || o.key_size < 1 || o.key_size > 511 ||
        o.key_space < 1 || o.total < 1 || o.txn_ops < 1 || o.txn_ops > 64 ||
        o.streams < 1 || o.watchers < 1 || o.put_total < 1) {
        fprintf(stderr, "skiff-bench: an option is out of range\n");
        return 2;
    }
    const char *cmd = argv[optind];
    int rc;
    if (!strcmp(cmd, "put")) {
        rc = run_requests(&o, K_PUT, "Put summary:");
    } else if (!strcmp(cmd, "range")) {
        if (optind + 1 >= argc) {
            fprintf(stderr, "skiff-bench: range needs KEY [END]\n");
            return 2;
        }
        o.range_key = argv[optind + 1];
        o.range_end = optind + 2 < argc ? argv[optind + 2] : NULL;
        rc = run_requests(&o, K_RANGE, "Range summary:");
    } else if (!strcmp(cmd, "txn-put")) {
        rc = run_requests(&o, K_TXN_PUT, "Txn-put summary:");
    } else if (!strcmp(cmd, "watch")) {
        rc = run_watch(&o);
    } else {
        usage(stderr);
        rc = 2;
    }
    free(o.ep_buf);
    return rc;
}
