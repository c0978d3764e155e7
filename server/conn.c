/*
 * Client connections: framing in, responses out.
 *
 * Reading: bytes go into a frame reader; each whole frame's payload is
 * decoded as a Request into an arena of its own (handed to the request's
 * handler, freed when the request is answered).  An oversized frame is
 * answered REQUEST_TOO_LARGE on its stream and skipped; a payload that does
 * not decode closes this connection only.
 *
 * Writing: responses are framed straight into `out`; the connection is
 * queued, and a prepare and a check handle write every queued
 * connection's `out` once per loop iteration, so the replies a batch of
 * work produced leave in one write per connection.  At most one uv_write
 * is in flight: it owns `wbuf`, and when it completes `out` and `wbuf`
 * swap.  So a connection costs two growable buffers, and many small
 * responses leave in one write.  The bytes queued are bounded: past the
 * limit the peer is not reading and the connection is closed, logged as a
 * slow reader.  A request that is still being served when its connection
 * dies holds a reference; `gen` tells its reply that nobody listens.
 *
 * TLS: when the server has certificates, a cm_tls sits between the socket
 * and the frame reader; `out` is handed to it instead of uv_write, and the
 * bytes it has not yet written count against the same bound.  It has no
 * completion callback, so a uv_check handle looks after the connections
 * that wait for room (parked watchers, a snapshot).
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void on_close(uv_handle_t *h)
{
    conn *c = h->data;
    conn_unref(c);
}

void conn_ref(conn *c)
{
    c->refs++;
}

void conn_unref(conn *c)
{
    if (--c->refs)
        return;
    cm_frame_reader_free(&c->rd);
    cm_buf_free(&c->out);
    cm_buf_free(&c->wbuf);
    srv_auth_conn_free(c);
    cm_free(c);
}

bool conn_alive(const conn *c, uint32_t gen)
{
    return c && !c->closing && c->gen == gen;
}

void conn_close(conn *c, const char *why)
{
    if (c->closing)
        return;
    server *s = c->s;
    c->closing = true;
    c->gen++;
    if (why)
        CM_INFO("closing client connection", "peer=%s reason=\"%s\"",
                c->peer, why);
    srv_watch_conn_closed(c);
    if (c->tls) {
        cm_tls_destroy(c->tls);
        c->tls = NULL;
        c->tcp.data = c; /* the TLS layer had taken it over */
    }
    if (c->snap_fd >= 0) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, c->snap_fd, NULL);
        uv_fs_req_cleanup(&req);
        c->snap_fd = -1;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_fill_header(server *s, Skiffpb__ResponseHeader *h, int64_t rev)
{
    h->cluster_id = s->cluster_id;
    h->member_id = s->member_id;
    h->raft_term = s->term;
    if (rev)
        h->revision = rev;
}

static void flush(conn *c);

static void on_write(uv_write_t *req, int status)
{
    conn *c = req->data;
    c->writing = false;
    c->wbuf.len = 0;
    if (status < 0) {
        if (!c->closing)
            conn_close(c, uv_strerror(status));
        conn_unref(c);
        return;
    }
    if (!c->closing) {
        flush(c);
        /* Room again: parked watchers and a snapshot may go on. */
        if (conn_has_room(c)) {
            srv_watch_conn_drained(c);
            srv_snapshot_pump(c);
        }
    }
    conn_unref(c);
}

static void flush(conn *c)
{
    if (c->tls) {
        if (c->closing || c->out.len == 0)
            return;
        c->s->m.bytes_out += c->out.len;
        int rc = cm_tls_write(c->tls, c->out.base, c->out.len);
        c->out.len = 0;
        if (rc)
            conn_close(c, "TLS write failed");
        return;
    }
    if (c->writing || c->closing || c->out.len == 0)
        return;
    cm_buf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    c->out.len = 0;
    uv_buf_t b = uv_buf_init((char *)c->wbuf.base, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    c->s->m.bytes_out += c->wbuf.len;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc) {
        conn_close(c, uv_strerror(rc));
        return;
    }
    c->writing = true;
    conn_ref(c);
}

static size_t queued(const conn *c)
{
    return c->out.len + (c->tls ? cm_tls_pending(c->tls) : c->wbuf.len);
}

static void tls_check(uv_check_t *h)
{
    server *s = h->data;
    bool waiting = false;
    for (conn *c = s->conns; c; c = c->next) {
        if (!c->wait_drain)
            continue;
        if (conn_has_room(c)) {
            c->wait_drain = false;
            srv_watch_conn_drained(c);
            srv_snapshot_pump(c);
        }
        waiting |= c->wait_drain;
    }
    if (!waiting) {
        uv_check_stop(h);
        s->tls_check_on = false;
    }
}

bool conn_has_room(const conn *c)
{
    bool room = queued(c) < c->s->cfg.max_outbuf / 2;
    if (!room && c->tls) {
        conn *m = (conn *)c;
        m->wait_drain = true;
        if (!c->s->tls_check_on) {
            c->s->tls_check.data = c->s;
            uv_check_start(&c->s->tls_check, tls_check);
            c->s->tls_check_on = true;
        }
    }
    return room;
}

int conn_send(conn *c, uint64_t stream, const Skiffpb__Response *r)
{
    if (c->closing)
        return -EPIPE;
    size_t n = skiffpb__response__get_packed_size(r);
    if (queued(c) + n > c->s->cfg.max_outbuf) {
        c->s->m.conns_closed_slow++;
        conn_close(c, "slow reader: output buffer limit reached");
        return -EPIPE;
    }
    int rc = cm_buf_reserve(&c->out, CM_FRAME_HDR + n);
    if (rc)
        return rc;
    cm_frame_header(c->out.base + c->out.len, stream, (uint32_t)n);
    skiffpb__response__pack(r, c->out.base + c->out.len + CM_FRAME_HDR);
    c->out.len += CM_FRAME_HDR + n;
    if (!r->more)
        conn_stream_done(c);
    if (!c->in_flushq) {
        c->in_flushq = true;
        c->flush_next = c->s->flushq;
        c->s->flushq = c;
        conn_ref(c);
    }
    return 0;
}

static void flush_all(server *s)
{
    while (s->flushq) {
        conn *c = s->flushq;
        s->flushq = c->flush_next;
        c->in_flushq = false;
        if (!c->closing)
            flush(c);
        conn_unref(c);
    }
}

static void on_prepare(uv_prepare_t *h)
{
    flush_all(h->data);
}

static void on_check(uv_check_t *h)
{
    flush_all(h->data);
}

void srv_flush_init(server *s)
{
    uv_prepare_init(s->loop, &s->flush_prepare);
    uv_check_init(s->loop, &s->flush_check);
    s->flush_prepare.data = s->flush_check.data = s;
    uv_prepare_start(&s->flush_prepare, on_prepare);
    uv_check_start(&s->flush_check, on_check);
    /* They must not keep the loop alive on their own at shutdown. */
    uv_unref((uv_handle_t *)&s->flush_prepare);
    uv_unref((uv_handle_t *)&s->flush_check);
}

void conn_stream_done(conn *c)
{
    if (c->open_streams)
        c->open_streams--;
}

int conn_send_error(conn *c, uint64_t stream, int err, const char *msg,
                    int64_t compact_rev)
{
    if (err == KV_ECORRUPT)
        srv_corrupt_found(c->s, msg);
    return conn_send_code(c, stream, api_code_from_err(err),
                          msg ? msg : cm_strerror(err), compact_rev);
}

int conn_send_code(conn *c, uint64_t stream, Skiffpb__ErrorCode code,
                   const char *msg, int64_t compact_rev)
{
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__Error e = SKIFFPB__ERROR__INIT;
    e.code = code;
    e.message = (char *)msg;
    e.compact_revision = compact_rev;
    r.error = &e;
    return conn_send(c, stream, &r);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn *c = h->data;
    (void)hint;
    /* Read straight into the frame reader's buffer, dropping the consumed
     * prefix first when it is most of the buffer. */
    cm_frame_reader *r = &c->rd;
    if (r->off && r->off == r->buf.len) {
        r->off = r->buf.len = 0;
    } else if (r->off > r->buf.len / 2) {
        memmove(r->buf.base, r->buf.base + r->off, r->buf.len - r->off);
        r->buf.len -= r->off;
        r->off = 0;
    }
    if (cm_buf_reserve(&c->rd.buf, 65536)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->rd.buf.base + c->rd.buf.len;
    buf->len = c->rd.buf.cap - c->rd.buf.len;
}

static void handle_frames(conn *c)
{
    uint64_t stream;
    const uint8_t *payload;
    size_t len;
    int rc;
    while (!c->closing &&
           (rc = cm_frame_next(&c->rd, &stream, &payload, &len)) != 0) {
        if (stream == 0) {
            conn_close(c, "frame on stream 0");
            return;
        }
        if (rc == CM_ETOOBIG) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "request of %zu bytes is over the limit of %zu", len,
                     c->s->cfg.max_request_bytes);
            c->open_streams++;
            conn_send_error(c, stream, CM_ETOOBIG, msg, 0);
            continue;
        }
        cm_arena *a = cm_calloc(1, sizeof *a);
        if (!a) {
            conn_close(c, "out of memory");
            return;
        }
        ProtobufCAllocator pa = {cm_arena_pb_alloc, cm_arena_pb_free, a};
        Skiffpb__Request *req = skiffpb__request__unpack(&pa, len, payload);
        if (!req || req->body_case == SKIFFPB__REQUEST__BODY__NOT_SET) {
            cm_arena_free(a);
            cm_free(a);
            conn_close(c, req ? "request without a body"
                              : "malformed request frame");
            return;
        }
        /* Frames on a watch's own stream steer that watch. */
        if (srv_watch_stream_frame(c, stream, req)) {
            cm_arena_free(a);
            cm_free(a);
            continue;
        }
        if (c->open_streams >= c->s->cfg.max_streams) {
            cm_arena_free(a);
            cm_free(a);
            c->open_streams++;
            conn_send_code(c, stream, SKIFFPB__ERROR_CODE__TOO_MANY_STREAMS,
                           "too many open streams on this connection", 0);
            continue;
        }
        c->open_streams++;
        srv_dispatch(c, stream, req, a);
    }
}

static void tls_read(cm_tls *t, ssize_t n, const char *buf)
{
    conn *c = cm_tls_data(t);
    if (n < 0) {
        conn_close(c, n == UV_EOF ? NULL : "TLS connection failed");
        return;
    }
    c->s->m.bytes_in += (uint64_t)n;
    if (cm_frame_feed(&c->rd, buf, (size_t)n)) {
        conn_close(c, "out of memory");
        return;
    }
    handle_frames(c);
}

static void tls_handshake(cm_tls *t, int status)
{
    conn *c = cm_tls_data(t);
    if (status) {
        CM_WARN("client TLS handshake failed", "peer=%s error=\"%s\"",
                c->peer, uv_strerror(status));
        conn_close(c, NULL);
        return;
    }
    c->tls_ready = true;
    srv_auth_conn_cert(c);
}

int srv_tls_setup(server *s)
{
    srv_config *c = &s->cfg;
    if (!c->cert_file[0] && !c->key_file[0])
        return 0;
    cm_tls_config tc = {.server = 1,
                        .ca_file = c->trusted_ca_file[0] ? c->trusted_ca_file
                                                         : NULL,
                        .cert_file = c->cert_file,
                        .key_file = c->key_file,
                        /* With RBAC a client without a certificate is
                         * anonymous or shows a token (as with the
                         * Kubernetes API server); without RBAC,
                         * --client-cert-auth requires one, as etcd does. */
                        .require_client_cert =
                            c->client_cert_auth && !srv_auth_rbac(s)};
    if (c->client_cert_auth && !tc.ca_file) {
        fprintf(stderr, "skiffd: --client-cert-auth needs --trusted-ca-file\n");
        return -1;
    }
    char err[256] = "";
    int rc = cm_tls_ctx_create(&s->tls, &tc, err, sizeof err);
    if (rc) {
        fprintf(stderr, "skiffd: client TLS: %s%s%s\n", cm_strerror(rc),
                err[0] ? ": " : "", err);
        return -1;
    }
    uv_check_init(s->loop, &s->tls_check);
    return 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;
    (void)buf;
    if (n < 0) {
        conn_close(c, n == UV_EOF ? NULL : uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    c->s->m.bytes_in += (uint64_t)n;
    /* The bytes are already in rd.buf (on_alloc); account for them, and
     * let the reader drop what belongs to an oversized frame. */
    cm_frame_reader *r = &c->rd;
    size_t at = r->buf.len;
    r->buf.len += (size_t)n;
    if (r->skip_left) {
        size_t drop = (size_t)n < r->skip_left ? (size_t)n
                                               : (size_t)r->skip_left;
        memmove(r->buf.base + at, r->buf.base + at + drop, (size_t)n - drop);
        r->buf.len -= drop;
        r->skip_left -= drop;
    }
    handle_frames(c);
    /* Give the reader a chance to drop consumed bytes. */
    if (!c->closing && r->off == r->buf.len) {
        r->off = 0;
        r->buf.len = 0;
    }
}

void srv_on_connection(uv_stream_t *listener, int status)
{
    server *s = listener->data;
    if (status < 0 || s->stopping)
        return;
    conn *c = cm_calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    c->refs = 1;
    c->snap_fd = -1;
    c->rd.max = s->cfg.max_request_bytes;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[48] = "?";
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            snprintf(c->peer, sizeof c->peer, "%s:%d", ip, ntohs(a->sin_port));
        } else {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip,
                     ntohs(a->sin6_port));
        }
    }
    if (s->tls) {
        if (cm_tls_create(&c->tls, s->tls, (uv_stream_t *)&c->tcp, NULL, c) ||
            cm_tls_start(c->tls, tls_handshake, tls_read)) {
            if (c->tls)
                cm_tls_destroy(c->tls);
            c->tcp.data = c;
            uv_close((uv_handle_t *)&c->tcp, on_close);
            return;
        }
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->m.conns_total++;
    if (!c->tls)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}
