/*
 * `skiffctl check perf [--load s|m|l|xl]`: etcdctl's quick performance
 * check of a cluster, with the same load levels and pass criteria.
 *
 *   load  writes/s  clients
 *   s        150       50
 *   m       1000      200
 *   l       8000      500
 *   xl     15000     1000
 *
 * For 60 seconds (--duration changes that; a skiff addition) the clients
 * put 1 KiB values under random 256-byte keys below --prefix, the whole
 * load paced to the level's rate.  The check passes when throughput is
 * above 90% of the rate, the slowest request took at most 0.5 s, the
 * standard deviation of latency is at most 0.1 s, and no request failed.
 * The prefix must be empty at the start (so the check never touches real
 * data) and is deleted at the end; --auto-compact and --auto-defrag then
 * compact to the current revision and defragment the endpoints.
 *
 * The clients are asynchronous requests on one libuv loop, spread over
 * up to 128 connections; a 1 ms timer releases requests at the target
 * rate (a token bucket with a burst of one, like etcdctl's limiter) to
 * whichever clients are idle.
 */
#include "cli_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#define KEY_SIZE 256
#define VAL_SIZE 1024

typedef struct perf_level {
    const char *name;
    int limit, clients;
} perf_level;

static const perf_level levels[] = {
    {"s", 150, 50},
    {"m", 1000, 200},
    {"l", 8000, 500},
    {"xl", 15000, 1000},
};

typedef struct perf_run perf_run;

typedef struct perf_client {
    skiff_req req;
    perf_run *run;
    int busy;
    uint8_t key[512];
} perf_client;

struct perf_run {
    uv_loop_t loop;
    uv_timer_t tick;
    skiff_client *c;
    perf_client *clients;
    int n_clients, limit;
    const char *prefix;
    size_t prefix_len;
    uint8_t value[VAL_SIZE];
    uint64_t start_ns, end_ns;
    uint64_t issued, done, errors, in_flight;
    double sum, sumsq, slowest;
    int stopping, last_sec, tty;
    int duration_s;
    uint64_t rng;
    int first_error;
};

/* xorshift64*: enough for spreading keys. */
static uint64_t next_rand(perf_run *r)
{
    /* xorshift64*: enough for spreading keys. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ULL;
}

/* A put finished: record its latency or error. */
static void on_put(skiff_req *req, int status);

/* Starts one put for an idle client. */
static void issue(perf_run *r, perf_client *pc)
{
    memcpy(pc->key, r->prefix, r->prefix_len);
    memset(pc->key + r->prefix_len, 0, KEY_SIZE);
    uint64_t v = next_rand(r) & INT64_MAX;
    /* A varint of a random number at the front of a zeroed key, as
     * etcdctl builds its keys. */
    uint8_t *p = pc->key + r->prefix_len;
    uint64_t zz = v << 1;
    while (zz >= 0x80) {
        *p++ = (uint8_t)(zz | 0x80);
        zz >>= 7;
    }
    *p = (uint8_t)zz;
    skiff_op op = {.type = SKIFF_OP_PUT};
    op.key = pc->key;
    op.key_len = r->prefix_len + KEY_SIZE;
    op.value = r->value;
    op.value_len = VAL_SIZE;
    pc->req.data = pc;
    if (skiff_do(r->c, &pc->req, &op, on_put) == 0) {
        pc->busy = 1;
        r->issued++;
        r->in_flight++;
    } else {
        r->errors++;
    }
}

/* A put finished: record its latency or error. */
static void on_put(skiff_req *req, int status)
{
    perf_client *pc = req->data;
    perf_run *r = pc->run;
    pc->busy = 0;
    r->in_flight--;
    if (status < 0) {
        if (status != -ECANCELED) {
            r->errors++;
            if (!r->first_error)
                r->first_error = status;
        }
        return;
    }
    double s = (double)(req->end_ns - req->start_ns) / 1e9;
    r->done++;
    r->sum += s;
    r->sumsq += s * s;
    if (s > r->slowest)
        r->slowest = s;
}

/* Every millisecond: releases the puts due by now to idle clients,
 * and ends the run after the duration once nothing is in flight. */
static void on_tick(uv_timer_t *t)
{
    perf_run *r = t->data;
    uint64_t now = uv_hrtime();
    double el = (double)(now - r->start_ns) / 1e9;
    if (el >= r->duration_s) {
        if (!r->stopping) {
            r->stopping = 1;
            r->end_ns = now;
        }
        if (!r->in_flight)
            uv_timer_stop(t);
        return;
    }
    if (r->tty && (int)el != r->last_sec) {
        r->last_sec = (int)el;
        fprintf(stderr, "\r %d / %d %.2f%%", r->last_sec, r->duration_s,
                100.0 * el / r->duration_s);
    }
    /* Token bucket with a burst of one: what is due by now, minus what
     * went out already. */
    uint64_t due = (uint64_t)(el * r->limit) + 1;
    for (int i = 0; i < r->n_clients && r->issued < due; i++)
        if (!r->clients[i].busy)
            issue(r, &r->clients[i]);
}

/* The async client is gone; nothing to free. */
static void on_closed(skiff_client *c)
{
    (void)c;
}

/* Deletes the prefix (and compacts/defragments when asked).  0 or an
 * exit code. */
static int cleanup(ctl *x, const char *prefix, int compact, int defrag)
{
    skiff_client *c = ctl_client(x);
    skiff_op op = {.type = SKIFF_OP_DELETE,
                   .key = prefix,
                   .key_len = strlen(prefix),
                   .timeout_ms = 30000};
    uint8_t *b = malloc(op.key_len + 1);
    if (!b || skiff_op_prefix(&op, b, op.key_len + 1)) {
        free(b);
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    }
    skiff_result res = {0};
    int rc = skiff_do_sync(c, &op, &res);
    free(b);
    if (rc) {
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    int64_t rev = res.header.revision;
    skiff_result_free(&res);
    if (compact) {
        skiff_op cop = {
            .type = SKIFF_OP_COMPACT, .revision = rev, .flags = SKIFF_PHYSICAL};
        if ((rc = skiff_do_sync(c, &cop, NULL)))
            return ctl_fail(x, c, rc, NULL);
    }
    if (defrag) {
        for (size_t i = 0; i < x->n_endpoints; i++) {
            skiff_client *ec;
            if (ctl_client_for(x, &x->endpoints[i], 1, &ec))
                return CTL_EXIT_ERROR;
            skiff_op dop = {.type = SKIFF_OP_DEFRAGMENT};
            rc = skiff_do_sync(ec, &dop, NULL);
            if (rc)
                rc = ctl_fail(x, ec, rc, NULL);
            skiff_client_destroy(ec);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Runs the paced load for the level.  0 or an exit code. */
static int run_load(ctl *x, const perf_level *lv, const char *prefix,
                    int duration_s, perf_run *r)
{
    memset(r, 0, sizeof *r);
    r->limit = lv->limit;
    r->n_clients = lv->clients;
    r->prefix = prefix;
    r->prefix_len = strlen(prefix);
    r->duration_s = duration_s;
    r->rng = uv_hrtime() | 1;
    r->tty = isatty(2);
    r->last_sec = -1;
    if (r->prefix_len > 200)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "--prefix is too long");
    r->clients = calloc((size_t)r->n_clients, sizeof *r->clients);
    if (!r->clients)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    for (int i = 0; i < r->n_clients; i++)
        r->clients[i].run = r;
    uv_loop_init(&r->loop);
    skiff_config cfg;
    ctl_config(x, x->endpoints, x->n_endpoints, &cfg);
    cfg.request_timeout_ms = 10000;
    cfg.conns = r->n_clients < 128 ? r->n_clients : 128;
    int rc = skiff_client_create_async(&r->c, &cfg, &r->loop);
    if (rc) {
        free(r->clients);
        uv_loop_close(&r->loop);
        return ctl_errorf(CTL_EXIT_BAD_CONNECTION, "%s", skiff_strerror(rc));
    }
    uv_timer_init(&r->loop, &r->tick);
    r->tick.data = r;
    r->start_ns = uv_hrtime();
    uv_timer_start(&r->tick, on_tick, 0, 1);
    while (!r->stopping || r->in_flight)
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_timer_stop(&r->tick);
    uv_close((uv_handle_t *)&r->tick, NULL);
    return 0;
}

/* check perf [--load s|m|l|xl] */
int cmd_check(ctl *x, const char *sub, int argc, char **argv)
{
    const char *load = "s", *prefix = "/skiffctl-check-perf/";
    int auto_compact = 0, auto_defrag = 0, duration_ms = 60000;
    ctl_flag flags[] = {
        {"load", 0, CTL_STR, &load},
        {"prefix", 0, CTL_STR, &prefix},
        {"auto-compact", 0, CTL_BOOL, &auto_compact},
        {"auto-defrag", 0, CTL_BOOL, &auto_defrag},
        {"duration", 0, CTL_DURATION, &duration_ms},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (strcmp(sub, "perf"))
        return ctl_errorf(CTL_EXIT_ERROR,
                          "unknown command \"%s\" for \"skiffctl check\"", sub);
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "check perf does not accept arguments");
    const perf_level *lv = NULL;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (!strcmp(levels[i].name, load))
            lv = &levels[i];
    if (!lv)
        return ctl_errorf(4, "unknown load option %s", load);
    int duration_s = duration_ms / 1000 > 0 ? duration_ms / 1000 : 1;

    /* Refuse to run over existing data. */
    skiff_client *c = ctl_client(x);
    skiff_op op = {.type = SKIFF_OP_RANGE,
                   .key = prefix,
                   .key_len = strlen(prefix),
                   .flags = SKIFF_COUNT_ONLY};
    uint8_t *b = malloc(op.key_len + 1);
    if (!b || skiff_op_prefix(&op, b, op.key_len + 1)) {
        free(b);
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    }
    skiff_result res = {0};
    rc = skiff_do_sync(c, &op, &res);
    free(b);
    if (rc) {
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    int64_t count = res.count;
    skiff_result_free(&res);
    if (count)
        return ctl_errorf(CTL_EXIT_INVALID_INPUT,
                          "prefix \"%s\" has keys. Delete with 'skiffctl del "
                          "--prefix %s' first",
                          prefix, prefix);

    perf_run *r = malloc(sizeof *r);
    if (!r)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    if ((rc = run_load(x, lv, prefix, duration_s, r))) {
        free(r);
        return rc;
    }
    skiff_client_close(r->c, on_closed);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    free(r->clients);
    if (r->tty)
        fprintf(stderr, "\r %d / %d 100.00%%\n", duration_s, duration_s);

    double secs = (double)(r->end_ns - r->start_ns) / 1e9;
    double rps = secs > 0 ? (double)r->done / secs : 0;
    double mean = r->done ? r->sum / (double)r->done : 0;
    double var = r->done ? r->sumsq / (double)r->done - mean * mean : 0;
    double stddev = var > 0 ? sqrt(var) : 0;
    int ok = 1;
    if (r->errors) {
        printf("FAIL: too many errors\n");
        printf("FAIL: ERROR(%s) -> %llu\n", skiff_strerror(r->first_error),
               (unsigned long long)r->errors);
        ok = 0;
    }
    if (rps / lv->limit <= 0.9) {
        printf("FAIL: Throughput too low: %d writes/s\n", (int)rps + 1);
        ok = 0;
    } else {
        printf("PASS: Throughput is %d writes/s\n", (int)rps + 1);
    }
    if (r->slowest > 0.5) {
        printf("Slowest request took too long: %fs\n", r->slowest);
        ok = 0;
    } else {
        printf("PASS: Slowest request took %fs\n", r->slowest);
    }
    if (stddev > 0.1) {
        printf("Stddev too high: %fs\n", stddev);
        ok = 0;
    } else {
        printf("PASS: Stddev is %fs\n", stddev);
    }
    free(r);
    rc = cleanup(x, prefix, auto_compact, auto_defrag);
    if (ok && !rc) {
        printf("PASS\n");
        return 0;
    }
    printf("FAIL\n");
    return rc ? rc : CTL_EXIT_ERROR;
}
