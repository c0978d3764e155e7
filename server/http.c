/*
 * The plain-HTTP side port (--listen-metrics-urls): GET /health and GET
 * /metrics in Prometheus' text format, like etcd's.  Each request is read
 * up to the end of its headers (at most 4 KiB), answered, and the
 * connection closed; anything else gets 404 or 400.  /health reads only
 * the store's meta values; /metrics also reports the sizes, whose free-list
 * walk is the one piece of store work done on the loop, once per scrape.
 */
#include "server_int.h"

#include <stdio.h>
#include <string.h>

typedef struct hconn {
    uv_tcp_t tcp;
    server *s;
    char buf[4096];
    size_t len;
    uv_write_t wreq;
    char *out;
    struct hconn *held_next; /* waiting for a commit (srv_http_release) */
    bool held;
} hconn;

static void h_closed(uv_handle_t *h)
{
    hconn *c = h->data;
    if (c->held) /* closed by a shutdown while waiting */
        for (struct hconn **p = &c->s->http_held; *p; p = &(*p)->held_next)
            if (*p == c) {
                *p = c->held_next;
                break;
            }
    cm_free(c->out);
    cm_free(c);
}

static void h_written(uv_write_t *w, int status)
{
    (void)status;
    hconn *c = w->data;
    uv_close((uv_handle_t *)&c->tcp, h_closed);
}

static size_t metrics_text(server *s, char *out, size_t cap)
{
    kv_status st;
    memset(&st, 0, sizeof st);
    kv_status_get(s->kv, &st);
    watch_hub_stats ws;
    watch_hub_stats_get(s->hub, &ws);
    const metrics *m = &s->m;
    size_t n = 0;
#define P(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
    P("# HELP skiff_server_has_leader Whether a leader exists (1) or not.\n"
      "# TYPE skiff_server_has_leader gauge\nskiff_server_has_leader %d\n"
      "# TYPE skiff_server_is_leader gauge\nskiff_server_is_leader %d\n"
      "# TYPE skiff_server_term gauge\nskiff_server_term %llu\n"
      "# TYPE skiff_server_corruption_checks_total counter\n"
      "skiff_server_corruption_checks_total %llu\n"
      "# TYPE skiff_server_corruption_mismatches_total counter\n"
      "skiff_server_corruption_mismatches_total %llu\n",
      s->lead != 0, s->role == RAFT_LEADER, (unsigned long long)s->term,
      (unsigned long long)m->corrupt_checks,
      (unsigned long long)m->corrupt_mismatches);
    P("# TYPE skiff_server_proposals_committed_total counter\n"
      "skiff_server_proposals_committed_total %llu\n",
      (unsigned long long)m->proposals_committed);
    P("# TYPE skiff_server_proposals_failed_total counter\n"
      "skiff_server_proposals_failed_total %llu\n",
      (unsigned long long)m->proposals_failed);
    P("# TYPE skiff_server_apply_batches_total counter\n"
      "skiff_server_apply_batches_total %llu\n",
      (unsigned long long)m->apply_batches);
    P("# HELP skiff_disk_backend_commit_duration_seconds Apply batch "
      "(LMDB transaction + fsync) latency.\n"
      "# TYPE skiff_disk_backend_commit_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int k = 0; k < 16; k++) {
        cum += m->apply_hist[k];
        P("skiff_disk_backend_commit_duration_seconds_bucket{le=\"%g\"} "
          "%llu\n",
          0.00025 * (double)(1u << k), (unsigned long long)cum);
    }
    P("skiff_disk_backend_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
      "skiff_disk_backend_commit_duration_seconds_sum %.6f\n"
      "skiff_disk_backend_commit_duration_seconds_count %llu\n",
      (unsigned long long)cum, m->apply_ns_total / 1e9,
      (unsigned long long)m->apply_batches);
    P("# HELP skiff_disk_wal_fsync_duration_seconds WAL fdatasync latency; "
      "a batch that only moves the commit index is written without one.\n"
      "# TYPE skiff_disk_wal_fsync_duration_seconds histogram\n");
    cum = 0;
    for (int k = 0; k < 16; k++) {
        cum += m->wal_fsync_hist[k];
        P("skiff_disk_wal_fsync_duration_seconds_bucket{le=\"%g\"} %llu\n",
          0.00025 * (double)(1u << k), (unsigned long long)cum);
    }
    P("skiff_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
      "skiff_disk_wal_fsync_duration_seconds_sum %.6f\n"
      "skiff_disk_wal_fsync_duration_seconds_count %llu\n"
      "# TYPE skiff_disk_wal_writes_total counter\n"
      "skiff_disk_wal_writes_total %llu\n",
      (unsigned long long)cum, m->wal_fsync_ns_total / 1e9,
      (unsigned long long)m->wal_fsyncs, (unsigned long long)m->wal_writes);
    P("# TYPE skiff_mvcc_db_total_size_in_bytes gauge\n"
      "skiff_mvcc_db_total_size_in_bytes %llu\n"
      "# TYPE skiff_mvcc_db_total_size_in_use_in_bytes gauge\n"
      "skiff_mvcc_db_total_size_in_use_in_bytes %llu\n"
      "# TYPE skiff_mvcc_keys_total gauge\nskiff_mvcc_keys_total %lld\n"
      "# TYPE skiff_mvcc_current_revision gauge\n"
      "skiff_mvcc_current_revision %lld\n"
      "# TYPE skiff_mvcc_compact_revision gauge\n"
      "skiff_mvcc_compact_revision %lld\n"
      "# TYPE skiff_server_quota_backend_bytes gauge\n"
      "skiff_server_quota_backend_bytes %llu\n"
      "# TYPE skiff_server_nospace_alarm gauge\n"
      "skiff_server_nospace_alarm %d\n",
      (unsigned long long)st.db_size, (unsigned long long)st.db_size_in_use,
      (long long)st.keys, (long long)st.revision,
      (long long)st.compact_revision, (unsigned long long)st.quota_bytes,
      st.nospace_alarm);
    P("# TYPE skiff_watch_watchers gauge\nskiff_watch_watchers %zu\n"
      "# TYPE skiff_watch_events_sent_total counter\n"
      "skiff_watch_events_sent_total %llu\n"
      "# TYPE skiff_watch_slow_watchers gauge\n"
      "skiff_watch_slow_watchers %zu\n",
      ws.watchers, (unsigned long long)m->watch_events_sent,
      ws.parked + ws.catching);
    P("# TYPE skiff_network_client_received_bytes_total counter\n"
      "skiff_network_client_received_bytes_total %llu\n"
      "# TYPE skiff_network_client_sent_bytes_total counter\n"
      "skiff_network_client_sent_bytes_total %llu\n"
      "# TYPE skiff_server_client_connections gauge\n"
      "skiff_server_client_connections %zu\n"
      "# TYPE skiff_server_slow_reader_disconnects_total counter\n"
      "skiff_server_slow_reader_disconnects_total %llu\n"
      "# TYPE skiff_server_reads_total counter\n"
      "skiff_server_reads_total %llu\n",
      (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_out,
      s->nconns, (unsigned long long)m->conns_closed_slow,
      (unsigned long long)m->reads);
#undef P
    return n < cap ? n : cap - 1;
}

static void respond(hconn *c, const char *status, const char *type,
                    const char *body, size_t blen)
{
    size_t cap = blen + 256;
    c->out = cm_malloc(cap);
    if (!c->out) {
        uv_close((uv_handle_t *)&c->tcp, h_closed);
        return;
    }
    int n = snprintf(c->out, cap,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     status, type, blen);
    memcpy(c->out + n, body, blen);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)(n + blen));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, h_written))
        uv_close((uv_handle_t *)&c->tcp, h_closed);
}

static void handle(hconn *c)
{
    if (c->s->hold_reads) {
        /* Like every read, /health and /metrics wait for the commit of
         * writes already answered, so they never show less than that. */
        c->held = true;
        c->held_next = c->s->http_held;
        c->s->http_held = c;
        return;
    }
    char method[8], path[256];
    if (sscanf(c->buf, "%7s %255s", method, path) != 2) {
        respond(c, "400 Bad Request", "text/plain", "bad request\n", 12);
        return;
    }
    if (strcmp(method, "GET")) {
        respond(c, "405 Method Not Allowed", "text/plain",
                "method not allowed\n", 19);
    } else if (!strcmp(path, "/health")) {
        kv_status st;
        int ok = kv_status_meta(c->s->kv, &st) == 0 && !st.nospace_alarm;
        bool leader = c->s->lead != 0;
        /* etcd's shape: unhealthy without a leader or with an alarm. */
        const char *body =
            !leader ? "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n"
            : ok    ? "{\"health\":\"true\",\"reason\":\"\"}\n"
                    : "{\"health\":\"false\",\"reason\":\"ALARM "
                      "NOSPACE\"}\n";
        ok = ok && leader;
        respond(c, ok ? "200 OK" : "503 Service Unavailable",
                "application/json", body, strlen(body));
    } else if (!strcmp(path, "/metrics")) {
        char *body = cm_malloc(16384);
        if (!body) {
            uv_close((uv_handle_t *)&c->tcp, h_closed);
            return;
        }
        size_t n = metrics_text(c->s, body, 16384);
        respond(c, "200 OK", "text/plain; version=0.0.4", body, n);
        cm_free(body);
    } else {
        respond(c, "404 Not Found", "text/plain", "not found\n", 10);
    }
}

void srv_http_release(server *s)
{
    while (s->http_held && !s->hold_reads) {
        hconn *c = s->http_held;
        s->http_held = c->held_next;
        c->held = false;
        handle(c);
    }
}

static void h_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    hconn *c = h->data;
    b->base = c->buf + c->len;
    b->len = sizeof c->buf - 1 - c->len;
}

static void h_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    hconn *c = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)&c->tcp, h_closed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n")) {
        uv_read_stop(st);
        handle(c);
    } else if (c->len >= sizeof c->buf - 1) {
        uv_read_stop(st);
        respond(c, "431 Request Header Fields Too Large", "text/plain",
                "too large\n", 10);
    }
}

static void h_conn(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0)
        return;
    hconn *c = cm_calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, h_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, h_alloc, h_read);
}

int srv_metrics_start(server *s)
{
    char host[128];
    int port;
    if (srv_parse_addr(s->cfg.listen_metrics, host, sizeof host, &port))
        return CM_EINVAL;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss))
        return CM_EINVAL;
    uv_tcp_init(s->loop, &s->metrics_listener);
    s->metrics_listener.data = s;
    int rc = uv_tcp_bind(&s->metrics_listener, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->metrics_listener, 64, h_conn);
    if (rc)
        return rc;
    s->has_metrics = true;
    return 0;
}
