/*
 * skiffd over its raw wire protocol: real server processes on loopback,
 * blocking sockets, frames built by hand.  Covers request/response on many
 * concurrent streams, every error path a client can provoke, oversized and
 * malformed frames, watches (live, from the past, compacted, slow
 * consumers), lease expiry, snapshots, and SIGKILL durability of
 * acknowledged writes.
 *
 *   server_proto SKIFFD_BINARY
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "srv.h"
#include "tu.h"

static const char *skiffd;

typedef struct fx {
    srv s;
    int fd;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(srv_spawn(&f->s, skiffd, 0, NULL), 0);
    f->fd = cli_connect(f->s.port);
    assert_true(f->fd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->fd >= 0)
        close(f->fd);
    srv_cleanup(&f->s);
    free(f);
    return 0;
}

static Skiffpb__Response *put(int fd, const char *k, const char *v,
                              int64_t lease)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = bin_of(k);
    p.value = bin_of(v);
    p.lease = lease;
    r.body_case = SKIFFPB__REQUEST__BODY_PUT;
    r.put = &p;
    return cli_call(fd, &r);
}

static Skiffpb__Response *get(int fd, const char *k, const char *end,
                              int64_t rev)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = bin_of(k);
    q.range_end = bin_of(end);
    q.revision = rev;
    r.body_case = SKIFFPB__REQUEST__BODY_RANGE;
    r.range = &q;
    return cli_call(fd, &r);
}

static void expect_ok(Skiffpb__Response *r)
{
    assert_non_null(r);
    if (r->error)
        fail_msg("error %s: %s", api_code_name(r->error->code),
                 r->error->message);
    skiffpb__response__free_unpacked(r, NULL);
}

static void expect_code(Skiffpb__Response *r, Skiffpb__ErrorCode code)
{
    assert_non_null(r);
    assert_non_null(r->error);
    if (r->error->code != code)
        fail_msg("got %s (%s), want %s", api_code_name(r->error->code),
                 r->error->message, api_code_name(code));
    assert_true(strlen(r->error->message) > 0);
    skiffpb__response__free_unpacked(r, NULL);
}

static void test_put_get(void **state)
{
    fx *f = *state;
    Skiffpb__Response *r = put(f->fd, "a", "1", 0);
    assert_non_null(r);
    assert_null(r->error);
    assert_int_equal(r->body_case, SKIFFPB__RESPONSE__BODY_PUT);
    assert_int_equal(r->put->header->revision, 1);
    assert_true(r->put->header->member_id != 0);
    assert_false(r->more);
    skiffpb__response__free_unpacked(r, NULL);
    expect_ok(put(f->fd, "a", "2", 0));
    r = get(f->fd, "a", NULL, 0);
    assert_int_equal(r->range->n_kvs, 1);
    assert_int_equal(r->range->kvs[0]->version, 2);
    assert_memory_equal(r->range->kvs[0]->value.data, "2", 1);
    assert_int_equal(r->range->header->revision, 2);
    skiffpb__response__free_unpacked(r, NULL);
    r = get(f->fd, "a", NULL, 1);
    assert_memory_equal(r->range->kvs[0]->value.data, "1", 1);
    skiffpb__response__free_unpacked(r, NULL);
}

/* Many requests in flight on one connection: each stream answered once. */
static void test_pipelined_streams(void **state)
{
    fx *f = *state;
    enum { N = 300 };
    char key[32];
    for (int i = 1; i <= N; i++) {
        Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
        Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
        snprintf(key, sizeof key, "p/%04d", i);
        p.key = bin_of(key);
        p.value = bin_of("v");
        r.body_case = SKIFFPB__REQUEST__BODY_PUT;
        r.put = &p;
        assert_int_equal(cli_send(f->fd, (uint64_t)i, &r), 0);
    }
    static char seen[N + 1];
    memset(seen, 0, sizeof seen);
    int64_t maxrev = 0;
    for (int i = 0; i < N; i++) {
        uint64_t st;
        Skiffpb__Response *r;
        assert_int_equal(cli_recv(f->fd, &st, &r, 10000), 0);
        assert_true(st >= 1 && st <= N);
        assert_int_equal(seen[st], 0);
        seen[st] = 1;
        assert_null(r->error);
        if (r->put->header->revision > maxrev)
            maxrev = r->put->header->revision;
        skiffpb__response__free_unpacked(r, NULL);
    }
    assert_int_equal(maxrev, N);
    Skiffpb__Response *r = get(f->fd, "p/", "p0", 0);
    assert_int_equal(r->range->count, N);
    skiffpb__response__free_unpacked(r, NULL);
}

static void test_errors(void **state)
{
    fx *f = *state;
    expect_code(put(f->fd, "", "x", 0), SKIFFPB__ERROR_CODE__EMPTY_KEY);
    char big[600];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = 0;
    expect_code(put(f->fd, big, "x", 0), SKIFFPB__ERROR_CODE__KEY_TOO_LARGE);
    expect_code(put(f->fd, "k", "x", 77),
                SKIFFPB__ERROR_CODE__LEASE_NOT_FOUND);
    expect_ok(put(f->fd, "k", "1", 0));
    expect_ok(put(f->fd, "k", "2", 0));
    expect_code(get(f->fd, "k", NULL, 99), SKIFFPB__ERROR_CODE__FUTURE_REV);
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__CompactionRequest c = SKIFFPB__COMPACTION_REQUEST__INIT;
    c.revision = 2;
    r.body_case = SKIFFPB__REQUEST__BODY_COMPACT;
    r.compact = &c;
    expect_ok(cli_call(f->fd, &r));
    expect_code(cli_call(f->fd, &r), SKIFFPB__ERROR_CODE__COMPACTED);
    Skiffpb__Response *resp = get(f->fd, "k", NULL, 1);
    assert_non_null(resp->error);
    assert_int_equal(resp->error->code, SKIFFPB__ERROR_CODE__COMPACTED);
    assert_int_equal(resp->error->compact_revision, 2);
    skiffpb__response__free_unpacked(resp, NULL);
    /* A txn with too many ops. */
    Skiffpb__TxnRequest t = SKIFFPB__TXN_REQUEST__INIT;
    Skiffpb__RequestOp ops[129], *opp[129];
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = bin_of("k");
    for (int i = 0; i < 129; i++) {
        skiffpb__request_op__init(&ops[i]);
        ops[i].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        ops[i].request_range = &q;
        opp[i] = &ops[i];
    }
    t.n_success = 129;
    t.success = opp;
    r.body_case = SKIFFPB__REQUEST__BODY_TXN;
    r.txn = &t;
    expect_code(cli_call(f->fd, &r), SKIFFPB__ERROR_CODE__TOO_MANY_OPS);
    /* A watch op on a stream without a watch. */
    Skiffpb__WatchCancelRequest wc = SKIFFPB__WATCH_CANCEL_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_CANCEL;
    r.watch_cancel = &wc;
    expect_code(cli_call(f->fd, &r), SKIFFPB__ERROR_CODE__WATCH_NOT_FOUND);
}

static void test_oversized_and_malformed(void **state)
{
    fx *f = *state;
    size_t n = 2u << 20;
    char *junk = calloc(1, n);
    assert_int_equal(cli_send_raw(f->fd, 5, junk, (uint32_t)n), 0);
    free(junk);
    uint64_t st;
    Skiffpb__Response *r;
    assert_int_equal(cli_recv(f->fd, &st, &r, 10000), 0);
    assert_int_equal(st, 5);
    expect_code(r, SKIFFPB__ERROR_CODE__REQUEST_TOO_LARGE);
    /* The connection survived. */
    expect_ok(put(f->fd, "after", "big", 0));
    /* Garbage closes this connection only. */
    uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(cli_send_raw(f->fd, 6, bad, sizeof bad), 0);
    assert_int_equal(cli_recv(f->fd, &st, &r, 10000), -1);
    close(f->fd);
    f->fd = cli_connect(f->s.port);
    assert_true(f->fd >= 0);
    /* Stream 0 is not for requests. */
    Skiffpb__Request q = SKIFFPB__REQUEST__INIT;
    Skiffpb__StatusRequest sr = SKIFFPB__STATUS_REQUEST__INIT;
    q.body_case = SKIFFPB__REQUEST__BODY_STATUS;
    q.status = &sr;
    assert_int_equal(cli_send(f->fd, 0, &q), 0);
    assert_int_equal(cli_recv(f->fd, &st, &r, 10000), -1);
    close(f->fd);
    f->fd = cli_connect(f->s.port);
    r = cli_call(f->fd, &q);
    assert_non_null(r);
    assert_non_null(r->status);
    assert_int_equal(r->status->header->revision, 1);
    skiffpb__response__free_unpacked(r, NULL);
}

static int watch_create(int fd, uint64_t stream, const char *k,
                        const char *end, int64_t start, int prev)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__WatchCreateRequest w = SKIFFPB__WATCH_CREATE_REQUEST__INIT;
    w.key = bin_of(k);
    w.range_end = bin_of(end);
    w.start_revision = start;
    w.prev_kv = prev;
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_CREATE;
    r.watch_create = &w;
    if (cli_send(fd, stream, &r))
        return -1;
    Skiffpb__Response *resp;
    uint64_t st;
    if (cli_recv(fd, &st, &resp, 10000) || st != stream || !resp->watch ||
        !resp->watch->created || !resp->more)
        return -1;
    int64_t id = resp->watch->watch_id;
    skiffpb__response__free_unpacked(resp, NULL);
    return (int)id;
}

static Skiffpb__WatchResponse *next_watch(int fd, uint64_t stream,
                                         Skiffpb__Response **hold)
{
    uint64_t st;
    if (cli_recv(fd, &st, hold, 10000) || st != stream || !(*hold)->watch)
        return NULL;
    return (*hold)->watch;
}

static void test_watch_live(void **state)
{
    fx *f = *state;
    int w = cli_connect(f->s.port);
    assert_true(watch_create(w, 9, "w/", "w0", 0, 1) > 0);
    expect_ok(put(f->fd, "w/a", "1", 0));
    expect_ok(put(f->fd, "other", "x", 0));
    expect_ok(put(f->fd, "w/a", "2", 0));
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__DeleteRangeRequest d = SKIFFPB__DELETE_RANGE_REQUEST__INIT;
    d.key = bin_of("w/");
    d.range_end = bin_of("w0");
    r.body_case = SKIFFPB__REQUEST__BODY_DELETE_RANGE;
    r.delete_range = &d;
    expect_ok(cli_call(f->fd, &r));
    Skiffpb__Response *h;
    int64_t revs[3] = {1, 3, 4};
    for (int i = 0; i < 3; i++) {
        Skiffpb__WatchResponse *wr = next_watch(w, 9, &h);
        assert_non_null(wr);
        assert_int_equal(wr->n_events, 1);
        assert_int_equal(wr->header->revision, revs[i]);
        assert_int_equal(wr->events[0]->kv->mod_revision, revs[i]);
        if (i == 1) {
            assert_non_null(wr->events[0]->prev_kv);
            assert_int_equal(wr->events[0]->prev_kv->mod_revision, 1);
        }
        if (i == 2)
            assert_int_equal(wr->events[0]->type,
                             SKIFFPB__EVENT__EVENT_TYPE__DELETE);
        skiffpb__response__free_unpacked(h, NULL);
    }
    /* Progress on request, then cancel. */
    Skiffpb__WatchProgressRequest pr = SKIFFPB__WATCH_PROGRESS_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_PROGRESS;
    r.watch_progress = &pr;
    assert_int_equal(cli_send(w, 9, &r), 0);
    Skiffpb__WatchResponse *wr = next_watch(w, 9, &h);
    assert_non_null(wr);
    assert_int_equal(wr->n_events, 0);
    assert_int_equal(wr->header->revision, 4);
    skiffpb__response__free_unpacked(h, NULL);
    Skiffpb__WatchCancelRequest wc = SKIFFPB__WATCH_CANCEL_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_CANCEL;
    r.watch_cancel = &wc;
    assert_int_equal(cli_send(w, 9, &r), 0);
    wr = next_watch(w, 9, &h);
    assert_non_null(wr);
    assert_true(wr->canceled);
    assert_false(h->more);
    skiffpb__response__free_unpacked(h, NULL);
    close(w);
}

static void test_watch_past_and_compacted(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 5; i++)
        expect_ok(put(f->fd, "h/k", "v", 0));
    int w = cli_connect(f->s.port);
    assert_true(watch_create(w, 3, "h/k", NULL, 2, 0) > 0);
    Skiffpb__Response *h;
    for (int64_t rev = 2; rev <= 5; rev++) {
        Skiffpb__WatchResponse *wr = next_watch(w, 3, &h);
        assert_non_null(wr);
        assert_int_equal(wr->header->revision, rev);
        assert_int_equal(wr->events[0]->kv->version, rev);
        skiffpb__response__free_unpacked(h, NULL);
    }
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__CompactionRequest c = SKIFFPB__COMPACTION_REQUEST__INIT;
    c.revision = 4;
    r.body_case = SKIFFPB__REQUEST__BODY_COMPACT;
    r.compact = &c;
    expect_ok(cli_call(f->fd, &r));
    assert_true(watch_create(w, 4, "h/k", NULL, 3, 0) > 0);
    Skiffpb__WatchResponse *wr = next_watch(w, 4, &h);
    assert_non_null(wr);
    assert_true(wr->canceled);
    assert_int_equal(wr->compact_revision, 4);
    assert_false(h->more);
    skiffpb__response__free_unpacked(h, NULL);
    close(w);
}

/* A consumer that stops reading is parked, not dropped: once it reads
 * again it gets every revision, in order, without a gap. */
static void test_watch_slow_consumer(void **state)
{
    fx *f = *state;
    int w = cli_connect(f->s.port);
    int sz = 1 << 16;
    setsockopt(w, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    assert_true(watch_create(w, 7, "s/", "s0", 0, 0) > 0);
    enum { N = 300 };
    char *val = malloc(100000);
    memset(val, 'v', 99999);
    val[99999] = 0;
    for (int i = 0; i < N; i++)
        expect_ok(put(f->fd, "s/k", val, 0)); /* 30 MB in all */
    free(val);
    Skiffpb__Response *h;
    for (int64_t rev = 1; rev <= N; rev++) {
        Skiffpb__WatchResponse *wr = next_watch(w, 7, &h);
        assert_non_null(wr);
        assert_int_equal(wr->header->revision, rev);
        assert_int_equal(wr->n_events, 1);
        assert_int_equal(wr->events[0]->kv->version, rev);
        skiffpb__response__free_unpacked(h, NULL);
    }
    close(w);
}

/* A client that asks for replies and never reads them is disconnected
 * once its queue passes the bound; the server keeps serving others. */
static void test_slow_reader_disconnected(void **state)
{
    fx *f = *state;
    char *val = malloc(500000);
    memset(val, 'v', 499999);
    val[499999] = 0;
    expect_ok(put(f->fd, "big", val, 0));
    free(val);
    int r = cli_connect(f->s.port);
    int sz = 1 << 14;
    setsockopt(r, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    Skiffpb__Request q = SKIFFPB__REQUEST__INIT;
    Skiffpb__RangeRequest rr = SKIFFPB__RANGE_REQUEST__INIT;
    rr.key = bin_of("big");
    q.body_case = SKIFFPB__REQUEST__BODY_RANGE;
    q.range = &rr;
    int sent = 0;
    for (int i = 1; i <= 200; i++)
        if (cli_send(r, (uint64_t)i, &q) == 0)
            sent++;
    /* Drain what the server did send; the connection must end early. */
    uint64_t st;
    Skiffpb__Response *resp;
    int got = 0, rc;
    while ((rc = cli_recv(r, &st, &resp, 10000)) == 0) {
        skiffpb__response__free_unpacked(resp, NULL);
        got++;
    }
    assert_int_equal(rc, -1);
    assert_true(got < 200);
    close(r);
    expect_ok(put(f->fd, "still", "serving", 0));
}

static void test_lease_expiry(void **state)
{
    fx *f = *state;
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__LeaseGrantRequest g = SKIFFPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = 1;
    r.body_case = SKIFFPB__REQUEST__BODY_LEASE_GRANT;
    r.lease_grant = &g;
    Skiffpb__Response *resp = cli_call(f->fd, &r);
    assert_non_null(resp);
    assert_null(resp->error);
    int64_t id = resp->lease_grant->id;
    skiffpb__response__free_unpacked(resp, NULL);
    int w = cli_connect(f->s.port);
    assert_true(watch_create(w, 2, "session", NULL, 0, 0) > 0);
    expect_ok(put(f->fd, "session", "alive", id));
    Skiffpb__Response *h;
    Skiffpb__WatchResponse *wr = next_watch(w, 2, &h);
    assert_non_null(wr);
    assert_int_equal(wr->events[0]->type, SKIFFPB__EVENT__EVENT_TYPE__PUT);
    skiffpb__response__free_unpacked(h, NULL);
    /* Expiry arrives as a DELETE event (the wait is the event). */
    wr = next_watch(w, 2, &h);
    assert_non_null(wr);
    assert_int_equal(wr->events[0]->type, SKIFFPB__EVENT__EVENT_TYPE__DELETE);
    skiffpb__response__free_unpacked(h, NULL);
    Skiffpb__LeaseTimeToLiveRequest t = SKIFFPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    t.id = id;
    r.body_case = SKIFFPB__REQUEST__BODY_LEASE_TTL;
    r.lease_ttl = &t;
    resp = cli_call(f->fd, &r);
    assert_int_equal(resp->lease_ttl->ttl, -1);
    skiffpb__response__free_unpacked(resp, NULL);
    close(w);
}

static void test_snapshot(void **state)
{
    fx *f = *state;
    char k[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "snap/%03d", i);
        expect_ok(put(f->fd, k, "some value for the snapshot", 0));
    }
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__SnapshotRequest sq = SKIFFPB__SNAPSHOT_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_SNAPSHOT;
    r.snapshot = &sq;
    assert_int_equal(cli_send(f->fd, 11, &r), 0);
    char dir[256];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/snap", dir);
    int out = open(path, O_CREAT | O_RDWR, 0600);
    for (;;) {
        uint64_t st;
        Skiffpb__Response *resp;
        assert_int_equal(cli_recv(f->fd, &st, &resp, 10000), 0);
        assert_int_equal(st, 11);
        assert_null(resp->error);
        assert_int_equal(write(out, resp->snapshot->blob.data,
                               resp->snapshot->blob.len),
                         (ssize_t)resp->snapshot->blob.len);
        int more = resp->more;
        if (!more)
            assert_int_equal(resp->snapshot->remaining_bytes, 0);
        skiffpb__response__free_unpacked(resp, NULL);
        if (!more)
            break;
    }
    kv_store *kv;
    assert_int_equal(kv_open(&kv, dir, NULL), 0);
    lseek(out, 0, SEEK_SET);
    assert_int_equal(kv_restore(kv, out), 0);
    close(out);
    kv_hash h;
    assert_int_equal(kv_hash_get(kv, 0, &h), 0);
    kv_close(kv);
    tu_rmrf(dir);
    Skiffpb__HashKVRequest hq = SKIFFPB__HASH_KVREQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_HASH_KV;
    r.hash_kv = &hq;
    Skiffpb__Response *resp = cli_call(f->fd, &r);
    assert_int_equal(resp->hash_kv->hash, h.hash);
    assert_int_equal(resp->hash_kv->hash_revision, 200);
    skiffpb__response__free_unpacked(resp, NULL);
}

/* SIGKILL under a pipelined write load, 20 times: every acknowledged put
 * is there after the restart. */
static void test_sigkill_durability(void **state)
{
    fx *f = *state;
    cm_rand rnd;
    uint64_t seed = tu_seed((uint64_t)time(NULL));
    cm_rand_seed(&rnd, seed);
    printf("durability seed %llu\n", (unsigned long long)seed);
    enum { CONNS = 4, MAXKEYS = 4000 };
    static char acked[MAXKEYS];
    int total_acked = 0;
    for (int cycle = 0; cycle < 20; cycle++) {
        memset(acked, 0, sizeof acked);
        int fds[CONNS];
        for (int c = 0; c < CONNS; c++)
            fds[c] = cli_connect(f->s.port);
        int next = 0, in_acks = 0;
        int kill_after = 20 + (int)cm_rand_below(&rnd, 300);
        char key[32], val[32];
        bool killed = false;
        while (!killed) {
            /* A burst of puts on every connection... */
            for (int c = 0; c < CONNS && next < MAXKEYS; c++)
                for (int b = 0; b < 8 && next < MAXKEYS; b++, next++) {
                    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
                    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
                    snprintf(key, sizeof key, "d/%d/%05d", cycle, next);
                    snprintf(val, sizeof val, "v%d", next);
                    p.key = bin_of(key);
                    p.value = bin_of(val);
                    r.body_case = SKIFFPB__REQUEST__BODY_PUT;
                    r.put = &p;
                    cli_send(fds[c], (uint64_t)next + 1, &r);
                }
            /* ...then collect some replies; kill mid-flight. */
            for (int c = 0; c < CONNS && !killed; c++) {
                uint64_t st;
                Skiffpb__Response *resp;
                if (cli_recv(fds[c], &st, &resp, 2000) == 0) {
                    if (!resp->error)
                        acked[st - 1] = 1, in_acks++;
                    skiffpb__response__free_unpacked(resp, NULL);
                }
                if (in_acks >= kill_after || next >= MAXKEYS) {
                    srv_kill(&f->s, SIGKILL);
                    killed = true;
                }
            }
        }
        /* Replies already in the socket buffers were acknowledged too. */
        for (int c = 0; c < CONNS; c++) {
            uint64_t st;
            Skiffpb__Response *resp;
            while (cli_recv(fds[c], &st, &resp, 200) == 0) {
                if (!resp->error)
                    acked[st - 1] = 1, in_acks++;
                skiffpb__response__free_unpacked(resp, NULL);
            }
            close(fds[c]);
        }
        close(f->fd);
        assert_int_equal(srv_spawn(&f->s, skiffd, 1, NULL), 0);
        f->fd = cli_connect(f->s.port);
        for (int i = 0; i < next; i++) {
            if (!acked[i])
                continue;
            snprintf(key, sizeof key, "d/%d/%05d", cycle, i);
            snprintf(val, sizeof val, "v%d", i);
            Skiffpb__Response *r = get(f->fd, key, NULL, 0);
            assert_non_null(r);
            if (r->range->n_kvs != 1)
                fail_msg("cycle %d: acknowledged %s lost (seed %llu)", cycle,
                         key, (unsigned long long)seed);
            assert_memory_equal(r->range->kvs[0]->value.data, val,
                                strlen(val));
            skiffpb__response__free_unpacked(r, NULL);
        }
        total_acked += in_acks;
    }
    printf("durability: %d acknowledged puts checked over 20 kills\n",
           total_acked);
    assert_true(total_acked > 200);
}

static void test_metrics_and_shutdown(void **state)
{
    fx *f = *state;
    expect_ok(put(f->fd, "m", "1", 0));
    int h = cli_connect(f->s.mport);
    assert_true(h >= 0);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(h, req, strlen(req)), (ssize_t)strlen(req));
    char buf[16384];
    size_t n = 0;
    ssize_t got;
    while ((got = read(h, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = 0;
    close(h);
    assert_non_null(strstr(buf, "200 OK"));
    assert_non_null(strstr(buf, "skiff_mvcc_current_revision 1"));
    h = cli_connect(f->s.mport);
    req = "GET /health HTTP/1.1\r\n\r\n";
    assert_int_equal(write(h, req, strlen(req)), (ssize_t)strlen(req));
    n = 0;
    while ((got = read(h, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = 0;
    close(h);
    assert_non_null(strstr(buf, "{\"health\":\"true\""));
    /* SIGTERM: a clean exit with status 0. */
    kill(f->s.pid, SIGTERM);
    int st;
    waitpid(f->s.pid, &st, 0);
    f->s.pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Per-connection limits answer with their codes and the connection
 * stays usable. */
static void test_limits(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--max-concurrent-streams", "3",
                           "--max-watches-per-connection", "2", NULL};
    assert_int_equal(srv_spawn(&s, skiffd, 0, extra), 0);
    int fd = cli_connect(s.port);
    assert_true(watch_create(fd, 1, "a", NULL, 0, 0) > 0);
    assert_true(watch_create(fd, 2, "b", NULL, 0, 0) > 0);
    /* A third watch: over the watch limit. */
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__WatchCreateRequest w = SKIFFPB__WATCH_CREATE_REQUEST__INIT;
    w.key = bin_of("c");
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_CREATE;
    r.watch_create = &w;
    expect_code(cli_call(fd, &r), SKIFFPB__ERROR_CODE__TOO_MANY_WATCHES);
    close(fd);
    /* Streams: three watches hold three streams; the next is refused. */
    srv_kill(&s, SIGKILL);
    const char *extra2[] = {"--max-concurrent-streams", "3", NULL};
    assert_int_equal(srv_spawn(&s, skiffd, 1, extra2), 0);
    fd = cli_connect(s.port);
    for (int i = 1; i <= 3; i++)
        assert_true(watch_create(fd, (uint64_t)i, "a", NULL, 0, 0) > 0);
    expect_code(put(fd, "x", "1", 0), SKIFFPB__ERROR_CODE__TOO_MANY_STREAMS);
    /* Cancelling a watch frees its stream. */
    Skiffpb__WatchCancelRequest wc = SKIFFPB__WATCH_CANCEL_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_CANCEL;
    r.watch_cancel = &wc;
    assert_int_equal(cli_send(fd, 2, &r), 0);
    Skiffpb__Response *h;
    Skiffpb__WatchResponse *wr = next_watch(fd, 2, &h);
    assert_non_null(wr);
    assert_true(wr->canceled);
    skiffpb__response__free_unpacked(h, NULL);
    expect_ok(put(fd, "x", "1", 0));
    close(fd);
    srv_cleanup(&s);
}

/* 200 clients at once, each with several writes in flight. */
static void test_many_clients(void **state)
{
    fx *f = *state;
    enum { CLIENTS = 200, EACH = 10 };
    static int fds[CLIENTS];
    char key[32];
    for (int c = 0; c < CLIENTS; c++) {
        fds[c] = cli_connect(f->s.port);
        assert_true(fds[c] >= 0);
    }
    for (int c = 0; c < CLIENTS; c++)
        for (int i = 0; i < EACH; i++) {
            Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
            Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
            snprintf(key, sizeof key, "c/%03d/%02d", c, i);
            p.key = bin_of(key);
            p.value = bin_of("v");
            r.body_case = SKIFFPB__REQUEST__BODY_PUT;
            r.put = &p;
            assert_int_equal(cli_send(fds[c], (uint64_t)i + 1, &r), 0);
        }
    for (int c = 0; c < CLIENTS; c++) {
        for (int i = 0; i < EACH; i++) {
            uint64_t st;
            Skiffpb__Response *resp;
            assert_int_equal(cli_recv(fds[c], &st, &resp, 20000), 0);
            assert_null(resp->error);
            skiffpb__response__free_unpacked(resp, NULL);
        }
        close(fds[c]);
    }
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = bin_of("c/");
    q.range_end = bin_of("c0");
    q.count_only = 1;
    r.body_case = SKIFFPB__REQUEST__BODY_RANGE;
    r.range = &q;
    Skiffpb__Response *resp = cli_call(f->fd, &r);
    assert_int_equal(resp->range->count, CLIENTS * EACH);
    skiffpb__response__free_unpacked(resp, NULL);
}

/* Periodic progress notifications reach watches that asked for them. */
static void test_progress_notify(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--experimental-watch-progress-notify-interval",
                           "200ms", NULL};
    assert_int_equal(srv_spawn(&s, skiffd, 0, extra), 0);
    int fd = cli_connect(s.port);
    expect_ok(put(fd, "p", "1", 0));
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__WatchCreateRequest w = SKIFFPB__WATCH_CREATE_REQUEST__INIT;
    w.key = bin_of("elsewhere");
    w.progress_notify = 1;
    r.body_case = SKIFFPB__REQUEST__BODY_WATCH_CREATE;
    r.watch_create = &w;
    assert_int_equal(cli_send(fd, 5, &r), 0);
    Skiffpb__Response *h;
    Skiffpb__WatchResponse *wr = next_watch(fd, 5, &h);
    assert_non_null(wr);
    assert_true(wr->created);
    skiffpb__response__free_unpacked(h, NULL);
    /* The next response is a progress notification at revision 1. */
    wr = next_watch(fd, 5, &h);
    assert_non_null(wr);
    assert_int_equal(wr->n_events, 0);
    assert_false(wr->canceled);
    assert_int_equal(wr->header->revision, 1);
    skiffpb__response__free_unpacked(h, NULL);
    close(fd);
    srv_cleanup(&s);
}

/* Periodic auto-compaction with a short retention compacts by itself. */
static void test_auto_compaction(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--auto-compaction-mode", "periodic",
                           "--auto-compaction-retention", "1s", NULL};
    assert_int_equal(srv_spawn(&s, skiffd, 0, extra), 0);
    int fd = cli_connect(s.port);
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__HashKVRequest hq = SKIFFPB__HASH_KVREQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_HASH_KV;
    r.hash_kv = &hq;
    int64_t compact = 0;
    /* Keep writing; the compaction is the event awaited (bounded). */
    for (int i = 0; i < 300 && compact == 0; i++) {
        expect_ok(put(fd, "auto", "v", 0));
        Skiffpb__Response *resp = cli_call(fd, &r);
        assert_non_null(resp);
        compact = resp->hash_kv->compact_revision;
        skiffpb__response__free_unpacked(resp, NULL);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    assert_true(compact > 0);
    /* Reading below the compact revision is now refused. */
    expect_code(get(fd, "auto", NULL, 1), SKIFFPB__ERROR_CODE__COMPACTED);
    close(fd);
    srv_cleanup(&s);
}

/* A restart counts as a new leader: time spent down does not count
 * against leases (they get their TTL again). */
static void test_lease_survives_restart(void **state)
{
    fx *f = *state;
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__LeaseGrantRequest g = SKIFFPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = 3;
    r.body_case = SKIFFPB__REQUEST__BODY_LEASE_GRANT;
    r.lease_grant = &g;
    Skiffpb__Response *resp = cli_call(f->fd, &r);
    int64_t id = resp->lease_grant->id;
    skiffpb__response__free_unpacked(resp, NULL);
    expect_ok(put(f->fd, "held", "x", id));
    srv_kill(&f->s, SIGKILL);
    close(f->fd);
    /* The member is down for longer than the TTL. */
    struct timespec ts = {3, 500000000};
    nanosleep(&ts, NULL);
    assert_int_equal(srv_spawn(&f->s, skiffd, 1, NULL), 0);
    f->fd = cli_connect(f->s.port);
    resp = get(f->fd, "held", NULL, 0);
    assert_int_equal(resp->range->n_kvs, 1);
    skiffpb__response__free_unpacked(resp, NULL);
    Skiffpb__LeaseTimeToLiveRequest t = SKIFFPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    t.id = id;
    r.body_case = SKIFFPB__REQUEST__BODY_LEASE_TTL;
    r.lease_ttl = &t;
    resp = cli_call(f->fd, &r);
    assert_true(resp->lease_ttl->ttl >= 1);
    skiffpb__response__free_unpacked(resp, NULL);
}

/* Runs skiffd with exactly `argv` (no helper flags); returns its exit
 * status and its stderr in `err`. */
static int run_skiffd(const char *const *argv, char *err, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        dup2(p[1], 1);
        close(p[0]);
        execv(skiffd, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t got;
    while (n < cap - 1 && (got = read(p[0], err + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    err[n] = 0;
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_flags_and_config_file(void **state)
{
    (void)state;
    char out[8192];
    const char *help[] = {skiffd, "--help", NULL};
    assert_int_equal(run_skiffd(help, out, sizeof out), 0);
    const char *flags[] = {"--name", "--data-dir", "--listen-client-urls",
                           "--advertise-client-urls", "--listen-peer-urls",
                           "--initial-advertise-peer-urls",
                           "--initial-cluster", "--initial-cluster-state",
                           "--cert-file", "--key-file", "--trusted-ca-file",
                           "--client-cert-auth", "--peer-cert-file",
                           "--peer-key-file", "--peer-trusted-ca-file",
                           "--quota-backend-bytes", "--auto-compaction-mode",
                           "--auto-compaction-retention", "--log-level",
                           "--listen-metrics-urls", "--config-file"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(out, flags[i]))
            fail_msg("--help does not list %s", flags[i]);
    const char *bad[] = {skiffd, "--no-such-flag", NULL};
    assert_int_equal(run_skiffd(bad, out, sizeof out), 2);
    const char *badv[] = {skiffd, "--auto-compaction-mode", "weekly", NULL};
    assert_int_equal(run_skiffd(badv, out, sizeof out), 2);
    assert_non_null(strstr(out, "auto-compaction-mode"));
    /* A config file: unknown keys are named; good ones are used and a
     * flag overrides them. */
    char dir[256], cfg[300], data[300];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    snprintf(cfg, sizeof cfg, "%s/skiff.yaml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    FILE *fp = fopen(cfg, "w");
    fprintf(fp, "name: from-file\nquota-backend-bytez: 5\n");
    fclose(fp);
    const char *withcfg[] = {skiffd, "--config-file", cfg, NULL};
    assert_int_equal(run_skiffd(withcfg, out, sizeof out), 2);
    assert_non_null(strstr(out, "quota-backend-bytez"));
    srv s = {0};
    snprintf(s.dir, sizeof s.dir, "%s", dir);
    fp = fopen(cfg, "w");
    fprintf(fp, "# skiffd settings\nname: from-file\n"
                "auto-compaction-mode: revision\n"
                "auto-compaction-retention: \"1000\"\n"
                "log-level: error\n");
    fclose(fp);
    const char *extra[] = {"--config-file", cfg, NULL};
    assert_int_equal(srv_spawn(&s, skiffd, 1, extra), 0);
    int fd = cli_connect(s.port);
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__MemberListRequest ml = SKIFFPB__MEMBER_LIST_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_MEMBER_LIST;
    r.member_list = &ml;
    Skiffpb__Response *resp = cli_call(fd, &r);
    assert_non_null(resp);
    assert_int_equal(resp->member_list->n_members, 1);
    /* srv_spawn's --name t1 comes after the file: the flag wins. */
    assert_string_equal(resp->member_list->members[0]->name, "t1");
    skiffpb__response__free_unpacked(resp, NULL);
    close(fd);
    srv_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SKIFFD\n", argv[0]);
        return 2;
    }
    skiffd = argv[1];
    if (access(skiffd, X_OK)) {
        fprintf(stderr, "%s: not executable\n", skiffd);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_get),
        T(test_pipelined_streams),
        T(test_errors),
        T(test_oversized_and_malformed),
        T(test_watch_live),
        T(test_watch_past_and_compacted),
        T(test_watch_slow_consumer),
        T(test_slow_reader_disconnected),
        T(test_lease_expiry),
        T(test_snapshot),
        T(test_sigkill_durability),
        T(test_metrics_and_shutdown),
        T(test_many_clients),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_flags_and_config_file),
        cmocka_unit_test(test_auto_compaction),
        cmocka_unit_test(test_progress_notify),
        T(test_lease_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
