/*
 * Connections of a libskiff client.  A client keeps `conns` connections;
 * each one walks the endpoints round-robin: resolve, TCP connect, TLS
 * handshake when the endpoint wants it, then READY.  Any failure (dial
 * timeout, refused, reset, EOF, garbage from the server) takes the
 * connection down as a whole: every stream on it is handed back to its
 * owner (requests decide between retry and SKIFF_EUNKNOWN, watches resume
 * elsewhere), the socket closes, and after a backoff that doubles per
 * consecutive failure the next endpoint is tried.
 *
 * Streams: a slot table indexed by the low 32 bits of the stream id, the
 * high bits a per-connection sequence number, so finding the owner of a
 * response is an array index and a late answer to a timed-out request is
 * recognised and dropped.
 *
 * Writes: frames are appended to one of two buffers; while the other is
 * being written the next batch collects, so thousands of small requests
 * leave in a few large writes and cost no allocation once the buffers have
 * grown.  Every flush bumps `gen`; a request remembers the generation its
 * frame went into, which tells whether it may have reached the server.
 */
#include "skiff_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK 65536

static void conn_attempt(skiff_conn *cn);
static void defer_down(skiff_conn *cn, int err);
static void conn_down(skiff_conn *cn, int err, const char *why);
static void on_handle_closed(uv_handle_t *h);
static void read_frames(skiff_conn *cn);

/* ---- stream slots -------------------------------------------------------- */

uint64_t skiff__slot_alloc(skiff_conn *cn, int kind, void *p)
{
    uint32_t idx;
    if (cn->nfree) {
        idx = cn->free_idx[--cn->nfree];
    } else {
        if (cn->nslots == cn->cap) {
            uint32_t ncap = cn->cap ? cn->cap * 2 : 64;
            skiff_slot *s = cm_realloc(cn->slots, sizeof *s * ncap);
            if (!s)
                return 0;
            cn->slots = s;
            uint32_t *f = cm_realloc(cn->free_idx, sizeof *f * ncap);
            if (!f)
                return 0;
            cn->free_idx = f;
            cn->cap = ncap;
        }
        idx = cn->nslots++;
    }
    cn->seq++;
    if (cn->seq == 0)
        cn->seq = 1;
    uint64_t stream = ((uint64_t)cn->seq << 32) | (uint64_t)(idx + 1);
    cn->slots[idx].stream = stream;
    cn->slots[idx].kind = kind;
    cn->slots[idx].p = p;
    cn->active++;
    if (kind == 1)
        cn->nreqs++;
    return stream;
}

static skiff_slot *slot_find(skiff_conn *cn, uint64_t stream)
{
    uint64_t low = stream & 0xffffffffu;
    if (low == 0 || low > cn->nslots)
        return NULL;
    skiff_slot *s = &cn->slots[low - 1];
    return s->stream == stream ? s : NULL;
}

void skiff__slot_free(skiff_conn *cn, uint64_t stream)
{
    skiff_slot *s = slot_find(cn, stream);
    if (!s)
        return;
    if (s->kind == 1)
        cn->nreqs--;
    s->stream = 0;
    s->p = NULL;
    cn->free_idx[cn->nfree++] = (uint32_t)(s - cn->slots);
    cn->active--;
    if (cn->draining && cn->nreqs == 0 && cn->state == C_READY)
        defer_down(cn, SKIFF_EUNAVAILABLE);
}

/* ---- writing ------------------------------------------------------------- */

static void flush(skiff_conn *cn);
static void on_timer(uv_timer_t *t);

/* A write can fail inside the call that queued it (skiff_do); taking the
 * connection down then would complete requests from inside that call, so
 * it is done from the connection's timer instead. */
static void defer_down(skiff_conn *cn, int err)
{
    cn->pending_err = err;
    uv_timer_start(&cn->timer, on_timer, 0, 0);
}

static void on_write(uv_write_t *wr, int status)
{
    skiff_conn *cn = wr->data;
    cn->writing = 0;
    cm_buf_reset(&cn->out[cn->cur ^ 1]);
    if (status < 0) {
        if (status != UV_ECANCELED && cn->state == C_READY)
            conn_down(cn, status, "write failed");
        return;
    }
    if (cn->state == C_READY)
        flush(cn);
}

static void flush(skiff_conn *cn)
{
    cm_buf *b = &cn->out[cn->cur];
    if (cn->writing || b->len == 0 || cn->state != C_READY)
        return;
    cn->gen++;
    if (cn->tls) {
        int rc = cm_tls_write(cn->tls, b->base, b->len);
        cm_buf_reset(b);
        if (rc < 0)
            defer_down(cn, rc);
        return;
    }
    uv_buf_t ub = uv_buf_init((char *)b->base, (unsigned)b->len);
    cn->wreq.data = cn;
    int rc = uv_write(&cn->wreq, (uv_stream_t *)&cn->tcp, &ub, 1, on_write);
    if (rc < 0) {
        cm_buf_reset(b);
        defer_down(cn, rc);
        return;
    }
    cn->writing = 1;
    cn->cur ^= 1;
}

int skiff__conn_send(skiff_conn *cn, uint64_t stream, const uint8_t *p,
                     size_t len)
{
    cm_buf *b = &cn->out[cn->cur];
    uint8_t hdr[CM_FRAME_HDR];
    cm_frame_header(hdr, stream, (uint32_t)len);
    int rc = cm_buf_reserve(b, sizeof hdr + len);
    if (rc)
        return rc;
    cm_buf_append(b, hdr, sizeof hdr);
    cm_buf_append(b, p, len);
    flush(cn);
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

static void on_bytes(skiff_conn *cn, ssize_t nread, const char *buf)
{
    if (nread < 0) {
        conn_down(cn, (int)nread,
                  nread == UV_EOF ? "closed by server" : "read failed");
        return;
    }
    if (nread == 0)
        return;
    if (cm_frame_feed(&cn->rd, buf, (size_t)nread)) {
        conn_down(cn, -ENOMEM, "out of memory");
        return;
    }
    read_frames(cn);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    /* Bytes are copied into the frame reader at once and a loop runs on
     * one thread, so one buffer per thread serves every connection. */
    static _Thread_local char tl_chunk[READ_CHUNK];
    (void)h;
    (void)hint;
    buf->base = tl_chunk;
    buf->len = sizeof tl_chunk;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    on_bytes(s->data, nread, buf->base);
}

static void on_tls_read(cm_tls *t, ssize_t nread, const char *buf)
{
    on_bytes(cm_tls_data(t), nread, buf);
}

static void read_frames(skiff_conn *cn)
{
    skiff_client *c = cn->c;
    /* A callback may take this connection down; stop then. */
    while (cn->state == C_READY) {
        uint64_t stream;
        const uint8_t *p;
        size_t len;
        int rc = cm_frame_next(&cn->rd, &stream, &p, &len);
        if (rc == 0)
            return;
        skiff_slot *s = slot_find(cn, stream);
        if (rc == CM_ETOOBIG) {
            skiff__errmsg(c, "%s: response frame of %zu bytes over limit",
                          cn->addr, len);
            if (s && s->kind == 1) {
                skiff_req *req = s->p;
                skiff__req_on_response(cn, req, NULL, 0);
            }
            continue;
        }
        if (!s)
            continue; /* late answer to a request that gave up */
        if (s->kind == 1)
            skiff__req_on_response(cn, s->p, p, len);
        else
            skiff__watch_on_response(cn, s->p, p, len);
    }
}

/* ---- connecting ---------------------------------------------------------- */

/* The stream of the bearer token's Authenticate: below 2^32, so never a
 * slot's (their ids carry a sequence number >= 1 in the high bits); its
 * answer finds no slot and is dropped.  A refused token shows in every
 * later answer (UNAUTHENTICATED). */
#define AUTH_STREAM 1

static int send_token(skiff_conn *cn)
{
    Skiffpb__AuthenticateRequest ar = SKIFFPB__AUTHENTICATE_REQUEST__INIT;
    Skiffpb__Request rq = SKIFFPB__REQUEST__INIT;
    ar.token = cn->c->token;
    rq.body_case = SKIFFPB__REQUEST__BODY_AUTHENTICATE;
    rq.authenticate = &ar;
    uint8_t buf[1024];
    size_t n = skiffpb__request__get_packed_size(&rq);
    if (n > sizeof buf)
        return -E2BIG;
    skiffpb__request__pack(&rq, buf);
    return skiff__conn_send(cn, AUTH_STREAM, buf, n);
}

static void conn_ready(skiff_conn *cn)
{
    uv_timer_stop(&cn->timer);
    if (cn->c->token) {
        int rc = send_token(cn);
        if (rc) {
            conn_down(cn, rc, "sending the bearer token failed");
            return;
        }
    }
    cn->state = C_READY;
    cn->fails = 0;
    CM_DEBUG("client connected", "endpoint=%s", cn->addr);
    skiff__reqs_on_ready(cn->c);
    skiff__watches_on_ready(cn->c);
}

static void on_handshake(cm_tls *t, int status)
{
    skiff_conn *cn = cm_tls_data(t);
    if (status < 0) {
        char why[300];
        snprintf(why, sizeof why, "TLS handshake failed: %s", cm_tls_errmsg(t));
        conn_down(cn, SKIFF_ETLS, why);
        return;
    }
    conn_ready(cn);
}

static void on_connect(uv_connect_t *req, int status)
{
    skiff_conn *cn = req->data;
    if (status == UV_ECANCELED || cn->state != C_CONNECTING)
        return;
    if (status < 0) {
        conn_down(cn, status, "connect failed");
        return;
    }
    skiff_client *c = cn->c;
    skiff_endpoint *ep = &c->eps[cn->ep];
    int rc;
    if (ep->tls) {
        const char *sni = c->server_name ? c->server_name : ep->host;
        rc = cm_tls_create(&cn->tls, c->tls, (uv_stream_t *)&cn->tcp, sni, cn);
        if (rc == 0)
            rc = cm_tls_start(cn->tls, on_handshake, on_tls_read);
        if (rc < 0) {
            conn_down(cn, SKIFF_ETLS, "TLS setup failed");
            return;
        }
        cn->state = C_HANDSHAKE;
        return;
    }
    cn->tcp.data = cn;
    rc = uv_read_start((uv_stream_t *)&cn->tcp, alloc_cb, on_read);
    if (rc < 0) {
        conn_down(cn, rc, "read start failed");
        return;
    }
    conn_ready(cn);
}

static void connect_addr(skiff_conn *cn, const struct sockaddr *sa)
{
    skiff_client *c = cn->c;
    int rc = uv_tcp_init(c->loop, &cn->tcp);
    if (rc < 0) {
        conn_down(cn, rc, "socket failed");
        return;
    }
    cn->tcp_open = 1;
    cn->tcp.data = cn;
    uv_tcp_nodelay(&cn->tcp, 1);
    cn->connect_req.data = cn;
    cn->state = C_CONNECTING;
    rc = uv_tcp_connect(&cn->connect_req, &cn->tcp, sa, on_connect);
    if (rc < 0)
        conn_down(cn, rc, "connect failed");
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    skiff_conn *cn = gai->data;
    cn->gai_busy = 0;
    if (cn->state != C_RESOLVING) {
        if (res)
            uv_freeaddrinfo(res);
        if (cn->state == C_CLOSED)
            skiff__maybe_finish_close(cn->c);
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        conn_down(cn, status < 0 ? status : UV_EAI_NONAME, "resolve failed");
        return;
    }
    /* Prefer IPv4: "localhost" often lists ::1 first while servers
     * commonly listen on 127.0.0.1 only. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    connect_addr(cn, pick->ai_addr);
    uv_freeaddrinfo(res);
}

static void on_timer(uv_timer_t *t)
{
    skiff_conn *cn = t->data;
    if (cn->pending_err) {
        int err = cn->pending_err;
        cn->pending_err = 0;
        if (cn->state == C_READY) {
            conn_down(cn, err,
                      err == SKIFF_EUNAVAILABLE
                          ? "member unavailable, switching"
                          : "write failed");
            return;
        }
    }
    switch (cn->state) {
    case C_BACKOFF:
    case C_IDLE:
        conn_attempt(cn);
        break;
    case C_RESOLVING:
    case C_CONNECTING:
    case C_HANDSHAKE:
        conn_down(cn, -ETIMEDOUT, "dial timeout");
        break;
    default:
        break;
    }
}

static void conn_attempt(skiff_conn *cn)
{
    skiff_client *c = cn->c;
    if (c->closing)
        return;
    /* The previous socket or lookup must be fully gone before reuse. */
    if (cn->tcp_open || cn->gai_busy) {
        cn->state = C_BACKOFF;
        uv_timer_start(&cn->timer, on_timer, 5, 0);
        return;
    }
    skiff_endpoint *ep = &c->eps[cn->ep];
    snprintf(cn->addr, sizeof cn->addr, "%s:%s", ep->host, ep->port);
    uv_timer_start(&cn->timer, on_timer, (uint64_t)c->dial_timeout_ms, 0);
    struct sockaddr_storage ss;
    int port = atoi(ep->port);
    if (uv_ip4_addr(ep->host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(ep->host, port, (struct sockaddr_in6 *)&ss) == 0) {
        connect_addr(cn, (struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    cn->gai.data = cn;
    cn->state = C_RESOLVING;
    int rc = uv_getaddrinfo(c->loop, &cn->gai, on_resolved, ep->host, ep->port,
                            &hints);
    if (rc < 0) {
        conn_down(cn, rc, "resolve failed");
        return;
    }
    cn->gai_busy = 1;
}

static void on_tcp_closed(uv_handle_t *h)
{
    skiff_conn *cn = h->data;
    cn->tcp_open = 0;
    if (cn->state == C_CLOSED)
        on_handle_closed(h);
}

static void conn_down(skiff_conn *cn, int err, const char *why)
{
    skiff_client *c = cn->c;
    int was = cn->state;
    if (was == C_CLOSED || was == C_IDLE || was == C_BACKOFF)
        return;
    skiff__errmsg(c, "%s: %s: %s", cn->addr, why, skiff_strerror(err));
    CM_DEBUG("client connection down", "endpoint=%s err=%s", cn->addr,
             skiff_err_name(err));
    uv_timer_stop(&cn->timer);
    if (cn->gai_busy)
        uv_cancel((uv_req_t *)&cn->gai);
    if (cn->tls) {
        cm_tls_destroy(cn->tls);
        cn->tls = NULL;
    }
    if (cn->tcp_open && !uv_is_closing((uv_handle_t *)&cn->tcp)) {
        cn->tcp.data = cn;
        uv_close((uv_handle_t *)&cn->tcp, on_tcp_closed);
    }
    cn->state = C_BACKOFF;
    cn->pending_err = 0;
    cn->draining = 0;
    cm_frame_reader_free(&cn->rd);
    cn->rd.max = c->max_response;
    cm_buf_reset(&cn->out[cn->cur]);
    /* Hand every stream back.  Owners may start new work from their
     * callbacks, which never lands here: this connection is not READY. */
    for (uint32_t i = 0; i < cn->nslots; i++) {
        skiff_slot *s = &cn->slots[i];
        if (!s->stream)
            continue;
        void *p = s->p;
        int kind = s->kind;
        skiff__slot_free(cn, s->stream);
        if (kind == 1) {
            skiff_req *req = p;
            skiff__req_on_conn_lost(req, req->send_gen <= cn->gen);
        } else {
            skiff__watch_on_conn_lost(p);
        }
    }
    cn->fails++;
    cn->ep = (cn->ep + 1) % c->n_eps;
    int64_t delay = c->backoff_min_ms;
    for (int i = 1; i < cn->fails && delay < c->backoff_max_ms; i++)
        delay *= 2;
    if (delay > c->backoff_max_ms)
        delay = c->backoff_max_ms;
    /* With several endpoints, go straight to the next one the first time
     * around: only a full circle of failures means back off. */
    if (cn->fails < c->n_eps)
        delay = 0;
    if (!c->closing)
        uv_timer_start(&cn->timer, on_timer, (uint64_t)delay, 0);
}

/* The member asked us to go elsewhere (UNAVAILABLE, NOT_LEADER): stop
 * giving this connection new requests and move it to the next endpoint
 * once its requests are answered, so no write is cut off mid-flight.
 * Watches on it are resumed elsewhere by the reconnect. */
void skiff__conn_drain(skiff_conn *cn)
{
    if (cn->c->n_eps < 2 || cn->state != C_READY || cn->draining)
        return;
    cn->draining = 1;
    if (cn->nreqs == 0)
        defer_down(cn, SKIFF_EUNAVAILABLE);
}

void skiff__conn_fail_over(skiff_conn *cn, const char *why, int err)
{
    if (cn->state == C_READY)
        conn_down(cn, err, why);
}

/* ---- the client's view --------------------------------------------------- */

int skiff__conns_init(skiff_client *c)
{
    c->conns = cm_calloc((size_t)c->n_conns, sizeof *c->conns);
    if (!c->conns)
        return -ENOMEM;
    for (int i = 0; i < c->n_conns; i++) {
        skiff_conn *cn = &c->conns[i];
        cn->c = c;
        cn->idx = i;
        cn->ep = (c->next_ep + i) % c->n_eps;
        cn->rd.max = c->max_response;
        uv_timer_init(c->loop, &cn->timer);
        cn->timer.data = cn;
    }
    return 0;
}

void skiff__conn_kick(skiff_client *c)
{
    for (int i = 0; i < c->n_conns; i++) {
        skiff_conn *cn = &c->conns[i];
        if (cn->state == C_IDLE)
            conn_attempt(cn);
    }
}

skiff_conn *skiff__conn_pick(skiff_client *c)
{
    for (int k = 0; k < c->n_conns; k++) {
        skiff_conn *cn = &c->conns[(c->rr + k) % c->n_conns];
        if (cn->state == C_READY && !cn->draining &&
            cn->active < (size_t)c->max_streams) {
            c->rr = (c->rr + k + 1) % c->n_conns;
            return cn;
        }
    }
    skiff__conn_kick(c);
    return NULL;
}

static void on_handle_closed(uv_handle_t *h)
{
    skiff_conn *cn = h->data;
    skiff_client *c = cn->c;
    c->closed_handles_pending--;
    skiff__maybe_finish_close(c);
}

void skiff__conns_close(skiff_client *c)
{
    for (int i = 0; i < c->n_conns; i++) {
        skiff_conn *cn = &c->conns[i];
        if (cn->state == C_READY || cn->state == C_CONNECTING ||
            cn->state == C_HANDSHAKE || cn->state == C_RESOLVING)
            conn_down(cn, -ECANCELED, "client closed");
        cn->state = C_CLOSED;
        uv_timer_stop(&cn->timer);
        if (cn->gai_busy)
            uv_cancel((uv_req_t *)&cn->gai);
        c->closed_handles_pending++;
        uv_close((uv_handle_t *)&cn->timer, on_handle_closed);
        if (cn->tcp_open) {
            /* Already closing from conn_down; count it when it ends. */
            c->closed_handles_pending++;
            if (!uv_is_closing((uv_handle_t *)&cn->tcp)) {
                cn->tcp.data = cn;
                uv_close((uv_handle_t *)&cn->tcp, on_tcp_closed);
            }
        }
    }
}

void skiff__conns_free(skiff_client *c)
{
    if (!c->conns)
        return;
    for (int i = 0; i < c->n_conns; i++) {
        skiff_conn *cn = &c->conns[i];
        cm_frame_reader_free(&cn->rd);
        cm_buf_free(&cn->out[0]);
        cm_buf_free(&cn->out[1]);
        cm_free(cn->slots);
        cm_free(cn->free_idx);
    }
    cm_free(c->conns);
    c->conns = NULL;
}
