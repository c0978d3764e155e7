/*
 * raft/io/transport.c -- raft messages between members over libuv TCP.
 *
 * Outbound, every peer owns a FIFO of framed messages (12-byte header plus
 * the raft_msg_encode bytes, one heap block each) and at most one
 * connection object (rt_out).  A connection is never reused after a
 * failure: the failing rt_out is detached from its peer and closed, and
 * the peer's timer starts a fresh one after the backoff delay.  Detaching
 * first means a late libuv callback of the old connection (connect or write
 * cancelled by the close) finds no peer and only frees its own memory.
 * Connection attempts are always started from the peer's timer, even the
 * first one (with a 0 ms delay), so that rt_send never runs a callback.
 * While connected, everything queued is handed to one uv_write (a gather
 * of the queued blocks) and the next batch goes out when that write
 * completes, so there is at most one write in flight per peer and the
 * messages to one peer keep their order.  While a connection attempt is
 * pending the same timer bounds it (RT_CONNECT_TIMEOUT), since a silent
 * host would otherwise hold it for the kernel's SYN retries.  Failures are
 * reported to the unreachable callback from the timer too, then the timer
 * waits out the backoff.  The queue bound counts only the
 * messages still waiting; the one batch in flight is bounded by it too,
 * since it was taken from the queue.
 *
 * Inbound, the listener accepts any number of connections (rt_in), each
 * with its own cm_frame_reader.  Frames are decoded and passed to the
 * receive callback one by one; anything malformed (bad payload, oversized
 * frame, stream id that is not the sender) closes that connection only.
 * Inbound connections are never written to.
 *
 * With TLS (rt_set_tls) an outbound connection counts as connected only
 * once its client-mode cm_tls handshake is done (the connect timeout
 * covers the handshake too), and queued messages are then handed to
 * cm_tls_write, which copies them; they count as sent at that point.  An
 * inbound connection runs a server-mode cm_tls and its plaintext goes
 * through the same frame reader.  A refused handshake is logged with the
 * reason and closes that connection only.  cm_tls owns stream->data while
 * attached, so it is pointed back at our object when the cm_tls goes.
 *
 * Allocation failures never strand a message: a failed connection object
 * or gather array is retried from the peer's timer, and an inbound
 * connection that cannot be set up is still accepted (into t->reject) and
 * closed, so the sender sees the failure instead of a silent socket.
 *
 * Closing counts open handles: every uv_*_init bumps t->handles, every
 * close callback drops it, and the transport is freed when rt_close has
 * been called and the count reaches zero.
 */
#include "transport.h"

#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_BATCH_MAX 1024 /* messages in one uv_write */
#define RT_IN_RBUF 65536
#define RT_CONNECT_TIMEOUT 5000 /* ms; a silent host must not stall us */

typedef struct rt_peer rt_peer;

/* One framed message: header and payload contiguous in b.base. */
typedef struct rt_qmsg {
    struct rt_qmsg *next;
    cm_buf b;
} rt_qmsg;

/* One outbound connection attempt to a peer. */
typedef struct rt_out {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    rt *t;
    rt_peer *peer;  /* NULL once detached (closing) */
    rt_qmsg *batch; /* messages of the write in flight */
    size_t batch_n;
    uv_buf_t *bufs;
    cm_tls *tls;   /* NULL without TLS or once destroyed */
    int connected; /* TCP connected and, with TLS, handshake done */
    int writing;
    char host[64];  /* the peer's IP, checked against its certificate */
    char rbuf[256]; /* peers never write to us; reads only detect EOF */
} rt_out;

struct rt_peer {
    rt_peer *next;
    rt *t;
    raft_id id;
    struct sockaddr_storage sa;
    uv_timer_t timer;
    rt_out *out;
    int timer_armed;
    int report_pending; /* a failure to report from the timer */
    unsigned backoff;   /* delay before the next attempt, ms */
    rt_qmsg *head;
    rt_qmsg *tail;
    size_t qn;
    size_t qbytes;
    uint64_t dropped;
    uint64_t sent;
    uint64_t failures;
};

/* One accepted inbound connection. */
typedef struct rt_in {
    uv_tcp_t tcp;
    struct rt_in *next;
    struct rt_in **pprev;
    rt *t;
    cm_frame_reader rd;
    cm_tls *tls; /* NULL without TLS or once destroyed */
    int closing;
    char rbuf[RT_IN_RBUF];
} rt_in;

struct rt {
    uv_loop_t *loop;
    raft_id id;
    uv_tcp_t listener;
    rt_recv_cb recv_cb;
    rt_unreachable_cb unreach_cb;
    rt_close_cb close_cb;
    void *data;
    rt_peer *peers;
    rt_in *ins;
    size_t max_msgs;
    size_t max_bytes;
    unsigned bmin;
    unsigned bmax;
    int closing;
    unsigned handles;
    cm_tls_ctx *tls_srv; /* inbound side; NULL: plain TCP */
    cm_tls_ctx *tls_cli; /* outbound side */
    uint64_t refused;    /* inbound connections refused (TLS, memory) */
    uv_tcp_t reject;     /* accepts a connection we cannot serve */
    int reject_busy;     /* reject is open or closing */
    int accept_pending;  /* a connection waits for reject to be free */
};

static void maybe_finish(rt *t);
static void out_fail(rt_out *o, int err);
static void out_flush(rt_out *o);
static void peer_arm(rt_peer *p, unsigned ms);
static void on_connection(uv_stream_t *server, int status);

/* ---- helpers ------------------------------------------------------------- */

static void qmsg_free_list(rt_qmsg *q)
{
    while (q) {
        rt_qmsg *n = q->next;
        cm_buf_free(&q->b);
        cm_free(q);
        q = n;
    }
}

/* Parses "a.b.c.d:port" or "[v6]:port" into *sa.  0 or CM_EINVAL. */
static int parse_addr(const char *s, struct sockaddr_storage *sa)
{
    char host[64];
    const char *colon;
    const char *hs = s;
    size_t hlen;
    int v6 = 0;

    if (!s)
        return CM_EINVAL;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return CM_EINVAL;
        hs = s + 1;
        hlen = (size_t)(rb - hs);
        colon = rb + 1;
        v6 = 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return CM_EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof host)
        return CM_EINVAL;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';

    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port > 65535)
        return CM_EINVAL;

    memset(sa, 0, sizeof *sa);
    if (v6) {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa))
            return CM_EINVAL;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa)) {
        return CM_EINVAL;
    }
    return 0;
}

/* Name of a code for logs: libuv's end-of-stream is not an errno. */
static const char *errname(int err)
{
    return err == UV_EOF ? "EOF" : cm_err_name(err);
}

static rt_peer *peer_find(const rt *t, raft_id id)
{
    for (rt_peer *p = t->peers; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void maybe_finish(rt *t)
{
    if (!t->closing || t->handles)
        return;
    if (t->close_cb)
        t->close_cb(t, t->data);
    cm_tls_ctx_destroy(t->tls_srv);
    cm_tls_ctx_destroy(t->tls_cli);
    cm_free(t);
}

/* ---- outbound ------------------------------------------------------------ */

static void out_closed(uv_handle_t *h)
{
    rt_out *o = h->data;
    rt *t = o->t;

    /* uv_close cancels the pending write before this runs, so the batch
     * is normally gone already. */
    qmsg_free_list(o->batch);
    cm_free(o->bufs);
    cm_free(o);
    t->handles--;
    maybe_finish(t);
}

/* Cuts `o` loose from its peer and closes it; later callbacks of `o` see
 * no peer and only clean up. */
static void out_detach(rt_out *o)
{
    rt_peer *p = o->peer;

    if (!p)
        return;
    p->out = NULL;
    o->peer = NULL;
    if (o->tls) {
        cm_tls_destroy(o->tls);
        o->tls = NULL;
        o->tcp.data = o;
    }
    uv_close((uv_handle_t *)&o->tcp, out_closed);
}

static void out_fail(rt_out *o, int err)
{
    rt_peer *p = o->peer;

    if (!p)
        return;
    CM_WARN("peer connection failed", "peer=%" PRIu64 " err=%s backoff_ms=%u",
            p->id, errname(err), p->backoff);
    out_detach(o);
    p->failures++;
    /* Reported from the timer so the report never runs inside a caller's
     * rt_ function; the timer then waits out the backoff. */
    p->report_pending = 1;
    peer_arm(p, 0);
}

static void out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    rt_out *o = h->data;

    (void)hint;
    *buf = uv_buf_init(o->rbuf, sizeof o->rbuf);
}

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    rt_out *o = s->data;

    (void)buf;
    if (nread < 0)
        out_fail(o, (int)nread);
    /* Bytes from a peer on our outbound connection mean nothing; drop. */
}

static void out_written(uv_write_t *req, int status)
{
    rt_out *o = req->data;
    rt_peer *p = o->peer;

    if (p && status == 0)
        p->sent += o->batch_n;
    qmsg_free_list(o->batch);
    o->batch = NULL;
    o->batch_n = 0;
    cm_free(o->bufs);
    o->bufs = NULL;
    o->writing = 0;
    if (!p)
        return;
    if (status < 0)
        out_fail(o, status);
    else
        out_flush(o);
}

/* Hands every queued message to cm_tls, which copies it; any error
 * (-ENOMEM included) fails the connection, and the message that failed
 * stays queued for the next one. */
static void out_flush_tls(rt_out *o)
{
    rt_peer *p = o->peer;

    while (p->head) {
        rt_qmsg *q = p->head;
        int rc = cm_tls_write(o->tls, q->b.base, q->b.len);
        if (rc < 0) {
            /* Part of it may be encrypted already, so a retry on this
             * connection could repeat it: start afresh instead. */
            out_fail(o, rc);
            return;
        }
        p->head = q->next;
        if (!p->head)
            p->tail = NULL;
        p->qn--;
        p->qbytes -= q->b.len;
        p->sent++;
        cm_buf_free(&q->b);
        cm_free(q);
    }
}

/* Starts one write with everything queued (up to RT_BATCH_MAX). */
static void out_flush(rt_out *o)
{
    rt_peer *p = o->peer;

    if (!p || !o->connected || o->writing || !p->head)
        return;
    if (o->tls) {
        out_flush_tls(o);
        return;
    }
    size_t n = 0;
    for (rt_qmsg *q = p->head; q && n < RT_BATCH_MAX; q = q->next)
        n++;
    uv_buf_t *bufs = cm_calloc(n, sizeof *bufs);
    if (!bufs) {
        peer_arm(p, p->backoff); /* the timer calls out_flush again */
        return;
    }

    rt_qmsg *first = p->head;
    rt_qmsg *last = NULL;
    rt_qmsg *q = first;
    for (size_t i = 0; i < n; i++) {
        bufs[i] = uv_buf_init((char *)q->b.base, (unsigned)q->b.len);
        p->qbytes -= q->b.len;
        last = q;
        q = q->next;
    }
    p->head = q;
    if (!q)
        p->tail = NULL;
    p->qn -= n;
    last->next = NULL;

    o->batch = first;
    o->batch_n = n;
    o->bufs = bufs;
    o->writing = 1;
    o->wreq.data = o;
    int rc = uv_write(&o->wreq, (uv_stream_t *)&o->tcp, bufs, (unsigned)n,
                      out_written);
    if (rc < 0) {
        qmsg_free_list(o->batch);
        o->batch = NULL;
        o->batch_n = 0;
        cm_free(o->bufs);
        o->bufs = NULL;
        o->writing = 0;
        out_fail(o, rc);
    }
}

/* The connection is usable (TCP, and TLS when configured). */
static void out_ready(rt_out *o)
{
    rt_peer *p = o->peer;

    o->connected = 1;
    p->backoff = o->t->bmin;
    uv_timer_stop(&p->timer); /* the connect timeout */
    p->timer_armed = 0;
    CM_DEBUG("peer connected", "peer=%" PRIu64, p->id);
    out_flush(o);
}

static void out_tls_hs(cm_tls *tls, int status)
{
    rt_out *o = cm_tls_data(tls);

    if (!o->peer)
        return;
    if (status < 0) {
        CM_WARN("peer tls handshake failed",
                "peer=%" PRIu64 " addr=%s reason=\"%s\" err=%s", o->peer->id,
                o->host, cm_tls_errmsg(tls), errname(status));
        out_fail(o, status);
        return;
    }
    out_ready(o);
}

static void out_tls_read(cm_tls *tls, ssize_t nread, const char *buf)
{
    rt_out *o = cm_tls_data(tls);

    (void)buf;
    if (nread < 0 && o->peer) {
        /* With TLS 1.3 a server that refuses our certificate says so only
         * after our side of the handshake has finished. */
        CM_WARN("peer tls connection failed", "peer=%" PRIu64 " err=%s",
                o->peer->id, errname((int)nread));
        out_fail(o, (int)nread);
    }
}

static void out_connected(uv_connect_t *req, int status)
{
    rt_out *o = req->data;
    rt_peer *p = o->peer;
    rt *t = o->t;
    int rc;

    if (!p)
        return; /* detached: the close callback frees it */
    if (status < 0) {
        out_fail(o, status);
        return;
    }
    if (!t->tls_cli) {
        rc = uv_read_start((uv_stream_t *)&o->tcp, out_alloc, out_read);
        if (rc < 0) {
            out_fail(o, rc);
            return;
        }
        out_ready(o);
        return;
    }
    /* The connect timeout stays armed until the handshake is done. */
    rc = cm_tls_create(&o->tls, t->tls_cli, (uv_stream_t *)&o->tcp, o->host, o);
    if (rc == 0) {
        rc = cm_tls_start(o->tls, out_tls_hs, out_tls_read);
        if (rc < 0)
            CM_WARN("peer tls start failed", "peer=%" PRIu64 " err=%s", p->id,
                    errname(rc));
    }
    if (rc < 0)
        out_fail(o, rc); /* destroys o->tls */
}

/* Opens a new outbound connection for `p` (called from its timer). */
static void peer_connect(rt_peer *p)
{
    rt *t = p->t;
    rt_out *o = cm_calloc(1, sizeof *o);

    if (!o) {
        /* Try again later rather than lose the peer. */
        peer_arm(p, p->backoff);
        return;
    }
    o->t = t;
    o->peer = p;
    if (p->sa.ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&p->sa, o->host,
                    sizeof o->host);
    else
        uv_ip4_name((const struct sockaddr_in *)&p->sa, o->host,
                    sizeof o->host);
    int rc = uv_tcp_init(t->loop, &o->tcp);
    if (rc < 0) {
        cm_free(o);
        peer_arm(p, p->backoff);
        return;
    }
    t->handles++;
    o->tcp.data = o;
    o->creq.data = o;
    p->out = o;
    (void)uv_tcp_nodelay(&o->tcp, 1);
    rc = uv_tcp_connect(&o->creq, &o->tcp, (const struct sockaddr *)&p->sa,
                        out_connected);
    if (rc < 0)
        out_fail(o, rc);
    else
        peer_arm(p, RT_CONNECT_TIMEOUT);
}

static void peer_timer(uv_timer_t *tm)
{
    rt_peer *p = tm->data;
    rt *t = p->t;

    p->timer_armed = 0;
    if (p->report_pending) {
        p->report_pending = 0;
        unsigned delay = p->backoff;
        p->backoff = delay >= t->bmax / 2 ? t->bmax : delay * 2;
        peer_arm(p, delay);
        if (t->unreach_cb)
            t->unreach_cb(t, p->id, t->data);
        return;
    }
    if (!p->out && p->head)
        peer_connect(p);
    else if (p->out && !p->out->connected)
        out_fail(p->out, UV_ETIMEDOUT);
    else if (p->out)
        out_flush(p->out); /* after an allocation failure */
}

static void peer_arm(rt_peer *p, unsigned ms)
{
    if (p->timer_armed)
        uv_timer_stop(&p->timer);
    p->timer_armed = 1;
    uv_timer_start(&p->timer, peer_timer, ms, 0);
}

static void peer_closed(uv_handle_t *h)
{
    rt_peer *p = h->data;
    rt *t = p->t;

    cm_free(p);
    t->handles--;
    maybe_finish(t);
}

/* Unlinks nothing: the caller has already taken `p` off the list. */
static void peer_destroy(rt_peer *p)
{
    if (p->out)
        out_detach(p->out);
    qmsg_free_list(p->head);
    p->head = p->tail = NULL;
    p->qn = p->qbytes = 0;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, peer_closed);
}

/* ---- inbound ------------------------------------------------------------- */

static void in_closed(uv_handle_t *h)
{
    rt_in *in = h->data;
    rt *t = in->t;

    cm_frame_reader_free(&in->rd);
    cm_free(in);
    t->handles--;
    maybe_finish(t);
}

static void in_close(rt_in *in)
{
    if (in->closing)
        return;
    in->closing = 1;
    *in->pprev = in->next;
    if (in->next)
        in->next->pprev = in->pprev;
    if (in->tls) {
        cm_tls_destroy(in->tls);
        in->tls = NULL;
        in->tcp.data = in;
    }
    uv_close((uv_handle_t *)&in->tcp, in_closed);
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    rt_in *in = h->data;

    (void)hint;
    *buf = uv_buf_init(in->rbuf, sizeof in->rbuf);
}

/* Feeds `n` bytes of the peer's stream (plaintext) to the frame reader and
 * delivers every complete message.  `in` may be closed on return. */
static void in_feed(rt_in *in, const char *buf, size_t n)
{
    rt *t = in->t;

    int rc = cm_frame_feed(&in->rd, buf, n);
    if (rc < 0) {
        CM_WARN("peer inbound dropped", "err=%s", errname(rc));
        in_close(in);
        return;
    }
    for (;;) {
        uint64_t stream;
        const uint8_t *payload;
        size_t len;
        rc = cm_frame_next(&in->rd, &stream, &payload, &len);
        if (rc == 0)
            return;
        if (rc < 0) {
            CM_WARN("malformed peer frame", "stream=%" PRIu64 " len=%zu err=%s",
                    stream, len, errname(rc));
            in_close(in);
            return;
        }
        raft_msg m;
        memset(&m, 0, sizeof m);
        rc = raft_msg_decode(payload, len, &m);
        if (rc == -ENOMEM) {
            CM_WARN("peer inbound dropped", "stream=%" PRIu64 " err=%s", stream,
                    errname(rc));
            in_close(in);
            return;
        }
        if (rc < 0) {
            CM_WARN("malformed peer frame", "stream=%" PRIu64 " len=%zu err=%s",
                    stream, len, errname(rc));
            in_close(in);
            return;
        }
        if (m.from != stream) {
            CM_WARN("malformed peer frame",
                    "stream=%" PRIu64 " from=%" PRIu64 " err=stream_mismatch",
                    stream, m.from);
            raft_msg_free(&m);
            in_close(in);
            return;
        }
        t->recv_cb(t, &m, t->data);
        raft_msg_free(&m);
        /* The callback may have closed the transport (and so `in`). */
        if (t->closing || in->closing)
            return;
    }
}

static void in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    rt_in *in = s->data;

    if (nread < 0) {
        if (nread != UV_EOF)
            CM_DEBUG("peer inbound closed", "err=%s", errname((int)nread));
        in_close(in);
        return;
    }
    if (nread > 0)
        in_feed(in, buf->base, (size_t)nread);
}

static void in_tls_hs(cm_tls *tls, int status)
{
    rt_in *in = cm_tls_data(tls);
    char cn[128];

    if (status < 0) {
        CM_WARN("peer tls refused", "reason=\"%s\" err=%s", cm_tls_errmsg(tls),
                errname(status));
        in->t->refused++;
        in_close(in);
        return;
    }
    if (cm_tls_peer_cn(tls, cn, sizeof cn) < 0)
        snprintf(cn, sizeof cn, "?");
    CM_DEBUG("peer tls accepted", "cn=%s", cn);
}

static void in_tls_read(cm_tls *tls, ssize_t nread, const char *buf)
{
    rt_in *in = cm_tls_data(tls);

    if (nread < 0) {
        if (nread != UV_EOF)
            CM_DEBUG("peer inbound closed", "err=%s", errname((int)nread));
        in_close(in);
        return;
    }
    if (nread > 0)
        in_feed(in, buf, (size_t)nread);
}

static void reject_closed(uv_handle_t *h)
{
    rt *t = h->data;

    t->reject_busy = 0;
    t->handles--;
    if (t->accept_pending && !t->closing) {
        t->accept_pending = 0;
        on_connection((uv_stream_t *)&t->listener, 0);
        return;
    }
    t->accept_pending = 0;
    maybe_finish(t);
}

/* Accepts the waiting connection into t->reject and closes it at once, so
 * the peer sees a failure rather than a socket nobody reads, and the
 * listener goes on accepting.  If reject is still closing, the accept
 * happens from its close callback. */
static void reject_one(rt *t, int err)
{
    t->refused++;
    CM_WARN("peer accept failed", "err=%s", errname(err));
    if (t->reject_busy) {
        t->accept_pending = 1;
        return;
    }
    if (uv_tcp_init(t->loop, &t->reject) < 0)
        return;
    t->reject_busy = 1;
    t->handles++;
    t->reject.data = t;
    (void)uv_accept((uv_stream_t *)&t->listener, (uv_stream_t *)&t->reject);
    uv_close((uv_handle_t *)&t->reject, reject_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    rt *t = server->data;

    if (status < 0) {
        CM_WARN("peer accept failed", "err=%s", errname(status));
        return;
    }
    rt_in *in = cm_calloc(1, sizeof *in);
    if (!in) {
        reject_one(t, -ENOMEM);
        return;
    }
    in->t = t;
    in->rd.max = RT_FRAME_MAX;
    int rc = uv_tcp_init(t->loop, &in->tcp);
    if (rc < 0) {
        cm_free(in);
        reject_one(t, rc);
        return;
    }
    t->handles++;
    in->tcp.data = in;
    in->next = t->ins;
    in->pprev = &t->ins;
    if (t->ins)
        t->ins->pprev = &in->next;
    t->ins = in;
    rc = uv_accept(server, (uv_stream_t *)&in->tcp);
    if (rc == 0 && t->tls_srv) {
        rc = cm_tls_create(&in->tls, t->tls_srv, (uv_stream_t *)&in->tcp, NULL,
                           in);
        if (rc == 0)
            rc = cm_tls_start(in->tls, in_tls_hs, in_tls_read);
    } else if (rc == 0) {
        rc = uv_read_start((uv_stream_t *)&in->tcp, in_alloc, in_read);
    }
    if (rc < 0) {
        CM_WARN("peer accept failed", "err=%s", errname(rc));
        t->refused++;
        in_close(in);
    }
}

/* ---- public -------------------------------------------------------------- */

static void listener_closed(uv_handle_t *h)
{
    rt *t = h->data;

    t->handles--;
    maybe_finish(t);
}

static void create_failed_closed(uv_handle_t *h)
{
    cm_free(h->data);
}

int rt_create(rt **out, uv_loop_t *loop, raft_id my_id, const char *listen_addr,
              rt_recv_cb recv_cb, void *data)
{
    struct sockaddr_storage sa;
    int rc;

    if (!out || !loop || !my_id || !recv_cb)
        return CM_EINVAL;
    rc = parse_addr(listen_addr, &sa);
    if (rc < 0)
        return rc;
    rt *t = cm_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->loop = loop;
    t->id = my_id;
    t->recv_cb = recv_cb;
    t->data = data;
    t->max_msgs = RT_QUEUE_MSGS_DEFAULT;
    t->max_bytes = RT_QUEUE_BYTES_DEFAULT;
    t->bmin = RT_BACKOFF_MIN_DEFAULT;
    t->bmax = RT_BACKOFF_MAX_DEFAULT;
    rc = uv_tcp_init(loop, &t->listener);
    if (rc < 0) {
        cm_free(t);
        return rc;
    }
    t->listener.data = t;
    rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
    if (rc < 0)
        goto err;
    t->handles = 1;
    *out = t;
    return 0;

err:
    /* The handle is live; its memory goes in the close callback, on the
     * next run of the loop. */
    uv_close((uv_handle_t *)&t->listener, create_failed_closed);
    return rc;
}

int rt_set_tls(rt *t, const cm_tls_config *server_side,
               const cm_tls_config *client_side)
{
    cm_tls_ctx *srv = NULL;
    cm_tls_ctx *cli = NULL;
    char why[256] = "";
    int rc;

    if (!t || !server_side || !client_side || t->closing || t->tls_srv ||
        t->peers || t->ins || !server_side->server || client_side->server)
        return CM_EINVAL;
    rc = cm_tls_ctx_create(&srv, server_side, why, sizeof why);
    if (rc < 0)
        goto err;
    rc = cm_tls_ctx_create(&cli, client_side, why, sizeof why);
    if (rc < 0)
        goto err_srv;
    t->tls_srv = srv;
    t->tls_cli = cli;
    return 0;

err_srv:
    cm_tls_ctx_destroy(srv);
err:
    CM_WARN("peer tls setup failed", "err=%s reason=\"%s\"", errname(rc), why);
    return rc;
}

uint64_t rt_refused(const rt *t)
{
    return t->refused;
}

void rt_set_unreachable_cb(rt *t, rt_unreachable_cb cb)
{
    t->unreach_cb = cb;
}

void rt_set_limits(rt *t, size_t max_msgs, size_t max_bytes)
{
    if (max_msgs)
        t->max_msgs = max_msgs;
    if (max_bytes)
        t->max_bytes = max_bytes;
}

void rt_set_backoff(rt *t, unsigned min_ms, unsigned max_ms)
{
    if (min_ms)
        t->bmin = min_ms;
    if (max_ms)
        t->bmax = max_ms;
    if (t->bmax < t->bmin)
        t->bmax = t->bmin;
}

int rt_port(const rt *t, int *port)
{
    struct sockaddr_storage sa;
    int len = (int)sizeof sa;

    int rc = uv_tcp_getsockname(&t->listener, (struct sockaddr *)&sa, &len);
    if (rc < 0)
        return rc;
    if (sa.ss_family == AF_INET6)
        *port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    else
        *port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    return 0;
}

int rt_peer_set(rt *t, raft_id id, const char *addr)
{
    struct sockaddr_storage sa;

    if (t->closing || !id || id == t->id)
        return CM_EINVAL;
    int rc = parse_addr(addr, &sa);
    if (rc < 0)
        return rc;
    rt_peer *p = peer_find(t, id);
    if (p) {
        if (memcmp(&p->sa, &sa, sizeof sa) != 0) {
            p->sa = sa;
            if (p->out)
                out_detach(p->out);
            p->backoff = t->bmin;
            if (p->head)
                peer_arm(p, 0);
        }
        return 0;
    }
    p = cm_calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->t = t;
    p->id = id;
    p->sa = sa;
    p->backoff = t->bmin;
    rc = uv_timer_init(t->loop, &p->timer);
    if (rc < 0) {
        cm_free(p);
        return rc;
    }
    t->handles++;
    p->timer.data = p;
    p->next = t->peers;
    t->peers = p;
    return 0;
}

int rt_peer_remove(rt *t, raft_id id)
{
    for (rt_peer **pp = &t->peers; *pp; pp = &(*pp)->next) {
        rt_peer *p = *pp;
        if (p->id == id) {
            *pp = p->next;
            peer_destroy(p);
            return 0;
        }
    }
    return -ENOENT;
}

int rt_peer_stats(const rt *t, raft_id id, rt_peer_stat *st)
{
    const rt_peer *p = peer_find(t, id);

    if (!p)
        return -ENOENT;
    st->queued = p->qn;
    st->queued_bytes = p->qbytes;
    st->dropped = p->dropped;
    st->sent = p->sent;
    st->failures = p->failures;
    st->connected = p->out && p->out->connected;
    return 0;
}

int rt_send(rt *t, const raft_msg *m)
{
    if (t->closing || !m)
        return CM_EINVAL;
    rt_peer *p = peer_find(t, m->to);
    if (!p)
        return -ENOENT;
    if (p->qn >= t->max_msgs) {
        p->dropped++;
        return -ENOBUFS;
    }

    rt_qmsg *q = cm_calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    static const uint8_t zero[CM_FRAME_HDR];
    int rc = cm_buf_append(&q->b, zero, sizeof zero);
    if (rc == 0)
        rc = raft_msg_encode(m, &q->b);
    if (rc < 0)
        goto err;
    size_t plen = q->b.len - CM_FRAME_HDR;
    if (plen > RT_FRAME_MAX) {
        rc = CM_ETOOBIG;
        goto err;
    }
    if (p->qbytes + q->b.len > t->max_bytes) {
        p->dropped++;
        rc = -ENOBUFS;
        goto err;
    }
    /* The stream id is the sender, which the receiver checks. */
    cm_frame_header(q->b.base, m->from, (uint32_t)plen);

    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    p->qn++;
    p->qbytes += q->b.len;

    if (p->out)
        out_flush(p->out); /* no-op while connecting or writing */
    else if (!p->timer_armed)
        peer_arm(p, 0);
    return 0;

err:
    cm_buf_free(&q->b);
    cm_free(q);
    return rc;
}

void rt_close(rt *t, rt_close_cb close_cb)
{
    if (t->closing)
        return;
    t->closing = 1;
    t->close_cb = close_cb;
    while (t->peers) {
        rt_peer *p = t->peers;
        t->peers = p->next;
        peer_destroy(p);
    }
    while (t->ins)
        in_close(t->ins);
    uv_close((uv_handle_t *)&t->listener, listener_closed);
}
