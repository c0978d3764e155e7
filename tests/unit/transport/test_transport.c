/*
 * Unit tests for raft/io/transport over real sockets on 127.0.0.1, all in
 * one libuv loop: three members exchanging every kind of message, a peer
 * that comes up late, a peer that restarts on the same port, the per-peer
 * queue bound, garbage from a raw socket, mutual TLS (with certificates
 * the openssl command makes in a temporary directory for each run, and a
 * member whose certificate comes from another CA), and allocation
 * failures injected at every step.  Waits are for events (a
 * counter reaching a target) with a uv_timer as the timeout; nothing
 * sleeps.  Teardown closes every transport and fails on leaked blocks or
 * open handles (uv_loop_close must return 0).
 *
 * Every message is built from (sender, receiver, sequence number), so the
 * receiver rebuilds the expected message and compares it field by field;
 * sequence numbers also check the per-sender order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "transport.h"
#include "tu.h"

#define NN 4 /* members 1..3 (index 0 unused) */
#define WAIT_MS 5000
#define BIG_SEQ 5
#define BIG_LEN 300000u

typedef struct node {
    rt *t;
    raft_id id;
    int port;
    size_t closed;
    size_t got;            /* messages received */
    size_t bad;            /* wrong content or order */
    uint64_t next_seq[NN]; /* expected next sequence per sender */
    size_t unreach[NN];    /* unreachable reports per peer */
    size_t unreach_total;
} node;

typedef struct fx {
    uv_loop_t loop;
    uv_timer_t timeout;
    int timed_out;
    node n[NN];
} fx;

static const uint32_t types[] = {
    RAFT_MSG_APPEND,    RAFT_MSG_APPEND_RESP, RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP, RAFT_MSG_PREVOTE,     RAFT_MSG_HEARTBEAT,
    RAFT_MSG_SNAPSHOT,  RAFT_MSG_TIMEOUT_NOW, RAFT_MSG_HEARTBEAT_RESP,
};
#define NTYPES (sizeof types / sizeof types[0])

/* ---- message model ------------------------------------------------------ */

static uint8_t pat(raft_id from, uint64_t seq, size_t j, size_t k)
{
    return (uint8_t)(from * 31 + seq * 7 + j * 3 + k);
}

/* Fills *m for (from, to, seq); APPEND entries live in ents and a new blob
 * returned in *blob (unref after use). */
static void build(raft_msg *m, raft_entry ents[3], raft_blob **blob,
                  raft_id from, raft_id to, uint64_t seq)
{
    memset(m, 0, sizeof *m);
    *blob = NULL;
    m->type = types[seq % NTYPES];
    m->from = from;
    m->to = to;
    m->term = 100 + seq;
    m->index = seq;
    m->log_term = seq / 2;
    m->commit = seq * 2;
    m->hint = seq + 7;
    m->ctx = (from << 32) | seq;
    if (m->type == RAFT_MSG_APPEND_RESP || m->type == RAFT_MSG_VOTE_RESP)
        m->reject = (uint8_t)(seq & 1);
    if (m->type == RAFT_MSG_VOTE)
        m->force = (uint8_t)(seq & 1);
    if (m->type == RAFT_MSG_APPEND) {
        size_t n = seq % 3 + 1;
        size_t lens[3], total = 0;
        for (size_t j = 0; j < n; j++) {
            lens[j] = (seq == BIG_SEQ && j == 0) ? BIG_LEN : 10 + j * 7;
            total += lens[j];
        }
        *blob = raft_blob_create(total);
        assert_non_null(*blob);
        uint8_t *p = raft_blob_bytes(*blob);
        for (size_t j = 0; j < n; j++) {
            for (size_t k = 0; k < lens[j]; k++)
                p[k] = pat(from, seq, j, k);
            ents[j].term = m->term;
            ents[j].index = seq + j + 1;
            ents[j].type = RAFT_ENTRY_NORMAL;
            ents[j].len = (uint32_t)lens[j];
            ents[j].buf = p;
            ents[j].blob = *blob;
            p += lens[j];
        }
        m->entries = ents;
        m->n_entries = n;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        m->snap.index = seq + 50;
        m->snap.term = seq;
        m->snap.conf.n_voters = 3;
        for (uint32_t i = 0; i < 3; i++)
            m->snap.conf.voters[i] = i + 1;
        m->snap.conf.n_learners = 1;
        m->snap.conf.learners[0] = 9;
    }
}

static int same(const raft_msg *a, const raft_msg *b)
{
    if (a->type != b->type || a->reject != b->reject || a->force != b->force ||
        a->from != b->from || a->to != b->to || a->term != b->term ||
        a->log_term != b->log_term || a->index != b->index ||
        a->commit != b->commit || a->hint != b->hint || a->ctx != b->ctx ||
        a->n_entries != b->n_entries || a->snap.index != b->snap.index ||
        a->snap.term != b->snap.term ||
        a->snap.conf.n_voters != b->snap.conf.n_voters ||
        a->snap.conf.n_learners != b->snap.conf.n_learners)
        return 0;
    for (uint32_t i = 0; i < a->snap.conf.n_voters; i++)
        if (a->snap.conf.voters[i] != b->snap.conf.voters[i])
            return 0;
    for (uint32_t i = 0; i < a->snap.conf.n_learners; i++)
        if (a->snap.conf.learners[i] != b->snap.conf.learners[i])
            return 0;
    for (size_t i = 0; i < a->n_entries; i++) {
        const raft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type ||
            x->len != y->len || (x->len && memcmp(x->buf, y->buf, x->len) != 0))
            return 0;
    }
    return 1;
}

/* ---- callbacks and helpers ---------------------------------------------- */

static void on_recv(rt *t, const raft_msg *m, void *data)
{
    node *n = data;
    raft_msg want;
    raft_entry ents[3];
    raft_blob *blob;

    (void)t;
    n->got++;
    if (m->from == 0 || m->from >= NN || m->to != n->id ||
        m->index != n->next_seq[m->from]) {
        n->bad++;
        return;
    }
    n->next_seq[m->from]++;
    build(&want, ents, &blob, m->from, m->to, m->index);
    if (!same(&want, m))
        n->bad++;
    raft_blob_unref(blob);
}

static void on_unreach(rt *t, raft_id id, void *data)
{
    node *n = data;

    (void)t;
    if (id < NN)
        n->unreach[id]++;
    n->unreach_total++;
}

static void on_closed(rt *t, void *data)
{
    node *n = data;

    (void)t;
    n->closed++;
}

static void on_timeout(uv_timer_t *tm)
{
    fx *f = tm->data;

    f->timed_out = 1;
}

/* Runs the loop until *ctr >= target or WAIT_MS pass; 1 if reached. */
static int run_until(fx *f, const size_t *ctr, size_t target)
{
    f->timed_out = 0;
    uv_timer_start(&f->timeout, on_timeout, WAIT_MS, 0);
    while (*ctr < target && !f->timed_out)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->timeout);
    return *ctr >= target;
}

static void node_start(fx *f, raft_id id, int port)
{
    node *n = &f->n[id];
    char addr[64];

    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    n->id = id;
    n->closed = 0;
    assert_int_equal(rt_create(&n->t, &f->loop, id, addr, on_recv, n), 0);
    rt_set_unreachable_cb(n->t, on_unreach);
    rt_set_backoff(n->t, 10, 100);
    assert_int_equal(rt_port(n->t, &n->port), 0);
    assert_true(n->port > 0);
    if (port)
        assert_int_equal(n->port, port);
}

static void node_stop(fx *f, raft_id id)
{
    node *n = &f->n[id];

    rt_close(n->t, on_closed);
    n->t = NULL;
    assert_true(run_until(f, &n->closed, 1));
}

/* Tells member `id` where member `peer` listens. */
static void link_peer(fx *f, raft_id id, raft_id peer, int port)
{
    char addr[64];

    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(rt_peer_set(f->n[id].t, peer, addr), 0);
}

static int send_seq(fx *f, raft_id from, raft_id to, uint64_t seq)
{
    raft_msg m;
    raft_entry ents[3];
    raft_blob *blob;

    build(&m, ents, &blob, from, to, seq);
    int rc = rt_send(f->n[from].t, &m);
    raft_blob_unref(blob);
    return rc;
}

/* A port nothing listens on right now (bound, read, released). */
static int free_port(fx *f)
{
    node_start(f, 3, 0);
    int port = f->n[3].port;
    node_stop(f, 3);
    return port;
}

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = cm_calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->timeout), 0);
    f->timeout.data = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    for (raft_id i = 1; i < NN; i++)
        if (f->n[i].t)
            node_stop(f, i);
    uv_close((uv_handle_t *)&f->timeout, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    cm_free(f);
    long leaked = tu_alloc_uninstall();
    if (rc != 0 || leaked != 0) {
        fprintf(stderr, "teardown: uv_loop_close=%d leaked=%ld\n", rc, leaked);
        return -1;
    }
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

/* (1) Three members, every type of message, intact and in order. */
static void test_exchange(void **state)
{
    fx *f = *state;
    const uint64_t per = 3 * NTYPES; /* messages per ordered pair */

    for (raft_id i = 1; i < NN; i++)
        node_start(f, i, 0);
    for (raft_id i = 1; i < NN; i++)
        for (raft_id j = 1; j < NN; j++)
            if (i != j)
                link_peer(f, i, j, f->n[j].port);
    for (uint64_t s = 0; s < per; s++)
        for (raft_id i = 1; i < NN; i++)
            for (raft_id j = 1; j < NN; j++)
                if (i != j)
                    assert_int_equal(send_seq(f, i, j, s), 0);
    for (raft_id j = 1; j < NN; j++) {
        assert_true(run_until(f, &f->n[j].got, 2 * per));
        assert_int_equal(f->n[j].bad, 0);
    }
    for (raft_id i = 1; i < NN; i++) {
        for (raft_id j = 1; j < NN; j++) {
            if (i == j)
                continue;
            rt_peer_stat st;
            assert_int_equal(rt_peer_stats(f->n[i].t, j, &st), 0);
            assert_int_equal(st.dropped, 0);
            assert_int_equal(st.failures, 0);
            assert_int_equal(st.queued, 0);
            assert_int_equal(f->n[j].next_seq[i], per);
        }
    }
    /* Unknown peer and removal. */
    assert_int_equal(send_seq(f, 1, 3, per), 0);
    assert_int_equal(rt_peer_remove(f->n[1].t, 3), 0);
    assert_int_equal(rt_peer_remove(f->n[1].t, 3), -ENOENT);
    assert_int_equal(send_seq(f, 1, 3, per + 1), -ENOENT);
}

/* (2) The peer is not up yet: messages wait and arrive once it is. */
static void test_late_peer(void **state)
{
    fx *f = *state;
    int port = free_port(f);

    node_start(f, 1, 0);
    link_peer(f, 1, 2, port);
    for (uint64_t s = 0; s < 5; s++)
        assert_int_equal(send_seq(f, 1, 2, s), 0);
    assert_true(run_until(f, &f->n[1].unreach[2], 2));

    rt_peer_stat st;
    assert_int_equal(rt_peer_stats(f->n[1].t, 2, &st), 0);
    assert_int_equal(st.queued, 5);
    assert_false(st.connected);

    node_start(f, 2, port);
    assert_true(run_until(f, &f->n[2].got, 5));
    assert_int_equal(f->n[2].bad, 0);
    assert_int_equal(f->n[2].next_seq[1], 5);
    assert_int_equal(rt_peer_stats(f->n[1].t, 2, &st), 0);
    assert_true(st.connected);
    assert_int_equal(st.sent, 5);
}

/* (3) The peer goes away and comes back on the same port. */
static void test_peer_restart(void **state)
{
    fx *f = *state;

    node_start(f, 1, 0);
    node_start(f, 2, 0);
    int port = f->n[2].port;
    link_peer(f, 1, 2, port);
    for (uint64_t s = 0; s < 4; s++)
        assert_int_equal(send_seq(f, 1, 2, s), 0);
    assert_true(run_until(f, &f->n[2].got, 4));

    node_stop(f, 2);
    assert_true(run_until(f, &f->n[1].unreach[2], 1));
    /* Sent while the peer is down: queued, delivered after it returns. */
    for (uint64_t s = 4; s < 8; s++)
        assert_int_equal(send_seq(f, 1, 2, s), 0);
    assert_true(run_until(f, &f->n[1].unreach[2], 2));

    node_start(f, 2, port);
    for (uint64_t s = 8; s < 12; s++)
        assert_int_equal(send_seq(f, 1, 2, s), 0);
    assert_true(run_until(f, &f->n[2].got, 12));
    assert_int_equal(f->n[2].bad, 0);
    assert_int_equal(f->n[2].next_seq[1], 12);
}

/* (4) With the peer down the queue stays bounded; the rest is dropped. */
static void test_queue_bound(void **state)
{
    fx *f = *state;
    int port = free_port(f);
    rt_peer_stat st;

    node_start(f, 1, 0);
    link_peer(f, 1, 2, port);
    link_peer(f, 1, 3, port);

    /* Default count bound: 4096 messages. */
    size_t ok = 0, dropped = 0;
    for (uint64_t s = 0; s < RT_QUEUE_MSGS_DEFAULT + 100; s++) {
        int rc = send_seq(f, 1, 2, 1);
        if (rc == 0)
            ok++;
        else if (rc == -ENOBUFS)
            dropped++;
    }
    assert_int_equal(ok, RT_QUEUE_MSGS_DEFAULT);
    assert_int_equal(dropped, 100);
    assert_int_equal(rt_peer_stats(f->n[1].t, 2, &st), 0);
    assert_int_equal(st.queued, RT_QUEUE_MSGS_DEFAULT);
    assert_int_equal(st.dropped, 100);

    /* Dropping allocates nothing that stays. */
    long before = tu_alloc_outstanding();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(send_seq(f, 1, 2, 6), -ENOBUFS);
    assert_int_equal(tu_alloc_outstanding(), before);

    /* Byte bound, on another peer: APPEND seq 2 carries 3 entries. */
    rt_set_limits(f->n[1].t, 0, 1000);
    ok = dropped = 0;
    for (int i = 0; i < 50; i++) {
        int rc = send_seq(f, 1, 3, 2);
        if (rc == 0)
            ok++;
        else if (rc == -ENOBUFS)
            dropped++;
    }
    assert_int_equal(rt_peer_stats(f->n[1].t, 3, &st), 0);
    assert_true(ok > 0 && dropped > 0);
    assert_int_equal(ok + dropped, 50);
    assert_true(st.queued_bytes <= 1000);
    assert_int_equal(st.dropped, dropped);
    assert_int_equal(st.queued, ok);

    /* The peer is refused the whole time. */
    assert_true(run_until(f, &f->n[1].unreach[2], 1));
}

/* ---- raw socket garbage */

typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    char rbuf[64];
    size_t eof; /* the transport closed us */
    size_t closed;
    const uint8_t *junk;
    size_t junk_len;
} raw;

static void raw_closed(uv_handle_t *h)
{
    raw *r = h->data;

    r->closed++;
}

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    raw *r = h->data;

    (void)hint;
    *buf = uv_buf_init(r->rbuf, sizeof r->rbuf);
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    raw *r = s->data;

    (void)buf;
    if (nread < 0) {
        r->eof++;
        uv_read_stop(s);
    }
}

static void raw_written(uv_write_t *req, int status)
{
    (void)req;
    (void)status;
}

static void raw_connected(uv_connect_t *req, int status)
{
    raw *r = req->data;

    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)r->junk, (unsigned)r->junk_len);
    assert_int_equal(uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read),
                     0);
    assert_int_equal(
        uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, raw_written), 0);
}

/* Connects to `port`, writes junk, waits until the transport hangs up. */
static void raw_junk(fx *f, int port, const uint8_t *junk, size_t len)
{
    raw r;
    struct sockaddr_in sa;

    memset(&r, 0, sizeof r);
    r.junk = junk;
    r.junk_len = len;
    assert_int_equal(uv_ip4_addr("127.0.0.1", port, &sa), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &r.tcp), 0);
    r.tcp.data = &r;
    r.creq.data = &r;
    assert_int_equal(uv_tcp_connect(&r.creq, &r.tcp,
                                    (const struct sockaddr *)&sa,
                                    raw_connected),
                     0);
    int hung_up = run_until(f, &r.eof, 1);
    uv_close((uv_handle_t *)&r.tcp, raw_closed);
    assert_true(run_until(f, &r.closed, 1));
    assert_true(hung_up);
}

/* (5) Garbage on one inbound connection closes it alone. */
static void test_garbage(void **state)
{
    fx *f = *state;

    node_start(f, 1, 0);
    node_start(f, 2, 0);
    link_peer(f, 1, 2, f->n[2].port);
    for (uint64_t s = 0; s < 3; s++)
        assert_int_equal(send_seq(f, 1, 2, s), 0);
    assert_true(run_until(f, &f->n[2].got, 3));

    /* A frame whose payload is not a raft message. */
    uint8_t bad[CM_FRAME_HDR + 5];
    cm_frame_header(bad, 1, 5);
    memcpy(bad + CM_FRAME_HDR, "hello", 5);
    raw_junk(f, f->n[2].port, bad, sizeof bad);

    /* A frame over the size limit. */
    uint8_t huge[CM_FRAME_HDR];
    cm_frame_header(huge, 1, 0xffffffffu);
    raw_junk(f, f->n[2].port, huge, sizeof huge);

    /* A valid message under another member's stream id. */
    raft_msg m;
    raft_entry ents[3];
    raft_blob *blob;
    cm_buf b = {0};
    build(&m, ents, &blob, 1, 2, 1);
    uint8_t hdr[CM_FRAME_HDR] = {0};
    assert_int_equal(cm_buf_append(&b, hdr, sizeof hdr), 0);
    assert_int_equal(raft_msg_encode(&m, &b), 0);
    cm_frame_header(b.base, 3, (uint32_t)(b.len - CM_FRAME_HDR));
    raw_junk(f, f->n[2].port, b.base, b.len);
    cm_buf_free(&b);
    raft_blob_unref(blob);

    /* The member's own connection was never disturbed. */
    for (uint64_t s = 3; s < 6; s++)
        assert_int_equal(send_seq(f, 1, 2, s), 0);
    assert_true(run_until(f, &f->n[2].got, 6));
    assert_int_equal(f->n[2].bad, 0);
    assert_int_equal(f->n[1].unreach_total, 0);
    rt_peer_stat st;
    assert_int_equal(rt_peer_stats(f->n[1].t, 2, &st), 0);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.sent, 6);
}

/* Bad arguments are refused without side effects. */
static void test_args(void **state)
{
    fx *f = *state;
    rt *t = NULL;

    assert_int_equal(rt_create(&t, &f->loop, 1, "nope", on_recv, NULL),
                     CM_EINVAL);
    assert_int_equal(rt_create(&t, &f->loop, 0, "127.0.0.1:0", on_recv, NULL),
                     CM_EINVAL);
    node_start(f, 1, 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->n[1].port);
    /* The failed transport's memory goes on the next loop run (teardown
     * checks it is gone). */
    assert_int_equal(rt_create(&t, &f->loop, 2, addr, on_recv, NULL),
                     UV_EADDRINUSE);
    assert_int_equal(rt_peer_set(f->n[1].t, 1, "127.0.0.1:1"), CM_EINVAL);
    assert_int_equal(rt_peer_set(f->n[1].t, 2, "127.0.0.1"), CM_EINVAL);
    assert_int_equal(rt_peer_set(f->n[1].t, 2, "127.0.0.1:70000"), CM_EINVAL);
    assert_int_equal(rt_peer_set(f->n[1].t, 2, "[::1]:7001"), 0);
    assert_int_equal(rt_peer_set(f->n[1].t, 2, "127.0.0.1:7001"), 0);
}

/* ---- mutual TLS ------------------------------------------------------- */

static char certs[256]; /* made once per run by make_certs */

/* A CA with certificates for members 1 and 2 (both valid for 127.0.0.1),
 * and another CA with a certificate for member 3.  EC keys keep it fast.
 * 0, or -1 if openssl failed (its output is in certs/log). */
static int make_certs(void)
{
    char cmd[3072];
    static const char *const key =
        "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

    if (tu_tmpdir(certs, sizeof certs) != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec >log 2>&1 && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
             "openssl req -x509 %s -days 2 -subj /CN=ca "
             "-keyout ca.key -out ca.crt && "
             "openssl req -x509 %s -days 2 -subj /CN=other "
             "-keyout other.key -out other.crt && "
             "for m in m1:ca m2:ca m3:other; do n=${m%%%%:*}; c=${m#*:}; "
             "openssl req %s -subj /CN=$n -keyout $n.key -out $n.csr && "
             "openssl x509 -req -in $n.csr -CA $c.crt -CAkey $c.key "
             "-CAcreateserial -days 2 -extfile san.ext -out $n.crt || exit 1; "
             "done",
             certs, key, key, key);
    return system(cmd) == 0 ? 0 : -1;
}

/* Starts member `id` with mutual TLS: its own certificate `name`.crt,
 * trusting ca.crt.  `client_cert` 0 makes its outbound side present no
 * certificate at all. */
static void node_start_tls(fx *f, raft_id id, const char *name, int client_cert)
{
    char ca[320], cert[320], key[320];

    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    snprintf(cert, sizeof cert, "%s/%s.crt", certs, name);
    snprintf(key, sizeof key, "%s/%s.key", certs, name);
    cm_tls_config srv = {.server = 1,
                         .ca_file = ca,
                         .cert_file = cert,
                         .key_file = key,
                         .require_client_cert = 1};
    cm_tls_config cli = {.server = 0,
                         .ca_file = ca,
                         .cert_file = client_cert ? cert : NULL,
                         .key_file = client_cert ? key : NULL};
    node_start(f, id, 0);
    assert_int_equal(rt_set_tls(f->n[id].t, &srv, &cli), 0);
    /* Only once per transport. */
    assert_int_equal(rt_set_tls(f->n[id].t, &srv, &cli), CM_EINVAL);
}

/* Members 1 and 2 exchange messages over mutual TLS; member 3 (a
 * certificate from another CA, or no client certificate) is refused both
 * ways and never delivers anything, while 1 and 2 keep working. */
static void tls_case(fx *f, int client_cert)
{
    rt_peer_stat st;

    node_start_tls(f, 1, "m1", 1);
    node_start_tls(f, 2, "m2", 1);
    node_start_tls(f, 3, "m3", client_cert);
    link_peer(f, 1, 2, f->n[2].port);
    link_peer(f, 2, 1, f->n[1].port);
    link_peer(f, 1, 3, f->n[3].port);
    link_peer(f, 3, 1, f->n[1].port);

    for (uint64_t s = 0; s < NTYPES; s++) {
        assert_int_equal(send_seq(f, 1, 2, s), 0);
        assert_int_equal(send_seq(f, 2, 1, s), 0);
    }
    assert_true(run_until(f, &f->n[2].got, NTYPES));
    assert_true(run_until(f, &f->n[1].got, NTYPES));

    /* 3 -> 1: member 1 refuses 3's certificate (3 learns it from the
     * handshake or from the first read after it, depending on the TLS
     * version). */
    assert_int_equal(send_seq(f, 3, 1, 0), 0);
    assert_true(run_until(f, &f->n[3].unreach[1], 1));
    assert_int_equal(rt_peer_stats(f->n[3].t, 1, &st), 0);
    assert_true(st.failures >= 1);
    assert_true(rt_refused(f->n[1].t) >= 1);
    /* 1 -> 3: member 1 does not trust 3's server certificate. */
    assert_int_equal(send_seq(f, 1, 3, 0), 0);
    assert_true(run_until(f, &f->n[1].unreach[3], 1));
    assert_int_equal(rt_peer_stats(f->n[1].t, 3, &st), 0);
    assert_true(st.failures >= 1);
    assert_false(st.connected);
    assert_int_equal(f->n[3].got, 0);

    /* The good pair is unaffected. */
    for (uint64_t s = NTYPES; s < 2 * NTYPES; s++) {
        assert_int_equal(send_seq(f, 1, 2, s), 0);
        assert_int_equal(send_seq(f, 2, 1, s), 0);
    }
    assert_true(run_until(f, &f->n[2].got, 2 * NTYPES));
    assert_true(run_until(f, &f->n[1].got, 2 * NTYPES));
    assert_int_equal(f->n[1].bad, 0);
    assert_int_equal(f->n[2].bad, 0);
    assert_int_equal(f->n[1].next_seq[2], 2 * NTYPES);
    assert_int_equal(f->n[2].next_seq[1], 2 * NTYPES);
    assert_int_equal(f->n[1].next_seq[3], 0);
    assert_int_equal(rt_peer_stats(f->n[1].t, 2, &st), 0);
    assert_int_equal(st.failures, 0);
    assert_true(st.connected);
    assert_int_equal(st.sent, 2 * NTYPES);
}

static void test_tls_wrong_ca(void **state)
{
    tls_case(*state, 1);
}

static void test_tls_no_client_cert(void **state)
{
    tls_case(*state, 0);
}

/* TLS settings are checked and refused once peers exist. */
static void test_tls_args(void **state)
{
    fx *f = *state;
    char ca[320], cert[320], key[320];

    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    snprintf(cert, sizeof cert, "%s/m1.crt", certs);
    snprintf(key, sizeof key, "%s/m1.key", certs);
    cm_tls_config srv = {1, ca, cert, key, 1, 0};
    cm_tls_config cli = {0, ca, cert, key, 0, 0};
    cm_tls_config nofile = {1, ca, "/nonexistent.crt", key, 1, 0};
    node_start(f, 1, 0);
    assert_int_equal(rt_set_tls(f->n[1].t, &cli, &srv), CM_EINVAL);
    assert_true(rt_set_tls(f->n[1].t, &nofile, &cli) < 0);
    link_peer(f, 1, 2, 7001);
    assert_int_equal(rt_set_tls(f->n[1].t, &srv, &cli), CM_EINVAL);
}

/* ---- allocation failures ---------------------------------------------- */

/* Runs the loop until *a or *b is non-zero, or WAIT_MS pass. */
static int run_until_either(fx *f, const size_t *a, const size_t *b)
{
    f->timed_out = 0;
    uv_timer_start(&f->timeout, on_timeout, WAIT_MS, 0);
    while (!*a && !*b && !f->timed_out)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->timeout);
    return *a || *b;
}

/* Receive callback of the fault rounds: it must not allocate itself (an
 * injected failure belongs to the transport), so it compares the message
 * with one built before the round. */
static const raft_msg *fault_want;

static void on_recv_fault(rt *t, const raft_msg *m, void *data)
{
    node *n = data;

    (void)t;
    n->got++;
    if (!same(fault_want, m))
        n->bad++;
}

/* One create/peer/send/deliver/close round on its own loop with the
 * allocation after `n` failing.  Returns 1 when no failure was injected
 * (so every step succeeded and the message arrived). */
static int fault_round(long n, long base)
{
    fx *g = cm_calloc(1, sizeof *g);
    assert_non_null(g);
    assert_int_equal(uv_loop_init(&g->loop), 0);
    assert_int_equal(uv_timer_init(&g->loop, &g->timeout), 0);
    g->timeout.data = g;
    long before = tu_alloc_failures();
    raft_msg m;
    raft_entry ents[3];
    raft_blob *blob;
    int rc;

    build(&m, ents, &blob, 1, 2, 0); /* an APPEND with one entry */
    fault_want = &m;
    tu_alloc_fail_after(n);
    for (raft_id i = 1; i <= 2; i++) {
        node *nd = &g->n[i];
        nd->id = i;
        rc = rt_create(&nd->t, &g->loop, i, "127.0.0.1:0", on_recv_fault, nd);
        if (rc < 0) {
            assert_int_equal(rc, -ENOMEM);
            nd->t = NULL;
            goto done;
        }
        rt_set_unreachable_cb(nd->t, on_unreach);
        rt_set_backoff(nd->t, 5, 20);
        assert_int_equal(rt_port(nd->t, &nd->port), 0);
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g->n[2].port);
    rc = rt_peer_set(g->n[1].t, 2, addr);
    if (rc < 0) {
        assert_int_equal(rc, -ENOMEM);
        goto done;
    }
    rc = rt_send(g->n[1].t, &m);
    if (rc < 0) {
        assert_int_equal(rc, -ENOMEM);
        goto done;
    }
    /* Delivered, or lost with a connection the sender saw fail. */
    assert_true(run_until_either(g, &g->n[2].got, &g->n[1].unreach_total));
    assert_int_equal(g->n[2].bad, 0);

done:
    tu_alloc_fail_after(-1);
    long injected = tu_alloc_failures() - before;
    int delivered = g->n[2].got == 1;
    for (raft_id i = 1; i <= 2; i++)
        if (g->n[i].t)
            node_stop(g, i);
    uv_close((uv_handle_t *)&g->timeout, NULL);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&g->loop), 0);
    cm_free(g);
    raft_blob_unref(blob);
    assert_int_equal(tu_alloc_outstanding(), base);
    if (injected == 0)
        assert_true(delivered);
    return injected == 0;
}

/* Fails the first, second, ... allocation of a whole round until a round
 * runs with no failure; every round must end cleanly. */
static void test_alloc_failures(void **state)
{
    (void)state;
    long base = tu_alloc_outstanding(); /* the fixture */
    long n;

    for (n = 0; n < 10000; n++)
        if (fault_round(n, base))
            break;
    assert_true(n > 0 && n < 10000);
}

int main(void)
{
    if (make_certs() != 0) {
        fprintf(stderr, "openssl could not make test certificates (%s/log)\n",
                certs);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_wrong_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_no_client_cert, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tls_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmrf(certs);
    return rc;
}
