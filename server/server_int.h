/*
 * server/server_int.h -- skiffd's internals.
 *
 * One libuv loop owns every piece of mutable state: connections, pending
 * writes, the watch hub, timers.  Disk work goes to libuv's thread pool:
 * at most one apply job at a time (LMDB's single writer), any number of
 * read jobs (LMDB readers run concurrently with the writer).
 */
#ifndef SKIFF_SERVER_INT_H
#define SKIFF_SERVER_INT_H

#include <stdbool.h>
#include <uv.h>

#include "api.h"
#include "tls.h"
#include "kv.h"
#include "watch.h"

typedef struct server server;
typedef struct conn conn;

/* ---- configuration (config.c) ----------------------------------------- */

typedef struct srv_config {
    char name[64];
    char data_dir[512];
    char listen_client[256];    /* host:port */
    char advertise_client[256];
    char listen_peer[256];
    char advertise_peer[256];
    char initial_cluster[1024];
    char initial_cluster_state[16];
    char initial_cluster_token[128];
    char listen_metrics[256];   /* empty: none */
    char cert_file[512], key_file[512], trusted_ca_file[512];
    bool client_cert_auth;
    char peer_cert_file[512], peer_key_file[512], peer_trusted_ca_file[512];
    uint64_t quota_bytes;
    char auto_compaction_mode[16];      /* periodic | revision */
    char auto_compaction_retention[32]; /* "1h", "30m", "1000", "0" off */
    char progress_interval[32];         /* watch progress period, "10m" */
    char log_level[16];
    size_t max_request_bytes;
    unsigned max_streams, max_watches;
    size_t max_outbuf;
    unsigned max_batch; /* most entries in one apply transaction */
} srv_config;

/* Fills defaults, then the config file (if --config-file), then flags.
 * Returns 0, 1 when --help/--version printed (exit 0), or -1 after
 * printing an error (exit 2). */
int srv_config_parse(srv_config *c, int argc, char **argv);
/* Splits "tcp://host:port" or "host:port" into host and port. */
int srv_parse_addr(const char *url, char *host, size_t hcap, int *port);
/* "500ms", "30s", "10m", "1h" (a bare number: `bare_unit_ms` each) to
 * milliseconds; -1 when malformed. */
int64_t srv_parse_duration(const char *v, double bare_unit_ms);

/* ---- the server ----------------------------------------------------------- */

/* A write waiting for, or in, an apply batch. */
typedef struct pending {
    conn *c;           /* NULL: internal (lease expiry, auto-compaction) */
    uint64_t stream;
    uint32_t conn_gen;
    int op;            /* Skiffpb__Request body case */
    uint64_t index;
    size_t off, len;   /* packed Command in the batch buffer */
    int64_t lease_id;  /* for internal lease revokes */
} pending;

typedef struct batch {
    cm_buf cmds;    /* packed Commands back to back */
    pending *p;
    size_t n, cap;
} batch;

typedef struct metrics {
    uint64_t proposals_committed, proposals_failed;
    uint64_t apply_batches, apply_ns_total;
    uint64_t reads, watch_events_sent;
    uint64_t bytes_in, bytes_out;
    uint64_t conns_total, conns_closed_slow;
    uint64_t apply_hist[16]; /* apply batch duration, 2^k * 0.25 ms */
} metrics;

struct server {
    uv_loop_t *loop;
    srv_config cfg;
    kv_store *kv;
    watch_hub *hub;
    uint64_t cluster_id, member_id;
    uv_tcp_t listener;
    cm_tls_ctx *tls;      /* client TLS, NULL when plain TCP */
    uv_check_t tls_check; /* resumes TLS connections whose output drained */
    bool tls_check_on;
    uv_tcp_t metrics_listener;
    bool has_metrics;
    uv_timer_t lease_timer, compact_timer, progress_timer;
    uv_idle_t watch_idle;
    bool watch_idle_on;
    uv_signal_t sigint, sigterm;
    bool stopping;
    int exit_code;

    /* Write pipeline: `next` fills while `cur` is applied in the pool. */
    batch next, cur;
    bool applying;
    uv_work_t apply_req;
    cm_arena apply_arena;
    kv_result *results;
    size_t results_cap;
    int apply_rc;
    uint64_t apply_ns;
    uint64_t next_index;
    uint64_t next_cmd_id;

    /* Leases being revoked by expiry (avoid proposing twice). */
    int64_t revoking[64];
    size_t nrevoking;

    /* Auto-compaction samples: (time ms, revision) ring. */
    struct {
        int64_t t, rev;
    } samples[128];
    size_t nsamples;

    /* Small reads waiting for a batched pool job (read.c). */
    struct read_job *rq_head, *rq_tail;
    unsigned rq_workers;
    conn *flushq; /* connections with replies queued this iteration */
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    conn *conns; /* doubly linked */
    size_t nconns;
    metrics m;
};

int srv_start(server *s);
/* Starts a graceful stop: no new connections, in-flight applies finish,
 * connections close, then the loop runs dry. */
void srv_stop(server *s);

/* ---- connections (conn.c) -------------------------------------------------- */

typedef struct wstream wstream;

struct conn {
    uv_tcp_t tcp;
    server *s;
    conn *prev, *next;
    cm_tls *tls;        /* NULL: plain TCP */
    bool tls_ready;     /* handshake done */
    bool wait_drain;    /* TLS: something waits for output room */
    char user[128];     /* client certificate CN, when one was sent */
    uint32_t gen;       /* changes when the conn dies, for stale replies */
    unsigned refs;      /* the conn itself + outstanding requests */
    bool closing;
    char peer[64];
    cm_frame_reader rd;
    cm_buf out;         /* queued, not yet handed to uv_write */
    cm_buf wbuf;        /* being written */
    bool writing;
    bool in_flushq;
    conn *flush_next;
    uv_write_t wreq;
    unsigned open_streams;
    wstream *watches;   /* this connection's watch streams */
    unsigned nwatches;
    /* A snapshot being streamed. */
    int snap_fd;
    uint64_t snap_stream, snap_size, snap_sent;
};

void srv_on_connection(uv_stream_t *listener, int status);
/* Starts the handles that write each connection's replies once per loop
 * iteration (before and after the poll phase). */
void srv_flush_init(server *s);
/* Creates the client TLS context from the configuration when certificates
 * are set.  0 or -1 after printing why. */
int srv_tls_setup(server *s);
/* Queues one Response frame.  0, or -ENOMEM / -EPIPE (conn closing); when
 * the queue passes the limit the connection is closed as a slow reader. */
int conn_send(conn *c, uint64_t stream, const Skiffpb__Response *r);
int conn_send_error(conn *c, uint64_t stream, int err, const char *msg,
                    int64_t compact_rev);
int conn_send_code(conn *c, uint64_t stream, Skiffpb__ErrorCode code,
                   const char *msg, int64_t compact_rev);
bool conn_has_room(const conn *c);
void conn_ref(conn *c);
void conn_unref(conn *c);
bool conn_alive(const conn *c, uint32_t gen);
void conn_close(conn *c, const char *why);
void conn_stream_done(conn *c);
void conn_fill_header(server *s, Skiffpb__ResponseHeader *h, int64_t rev);

/* ---- requests (dispatch.c, apply.c, read.c) -------------------------------- */

/* Handles one decoded request (arena memory owned by `a`, which the
 * handler takes over).  Returns 0, or an error already sent. */
void srv_dispatch(conn *c, uint64_t stream, Skiffpb__Request *req,
                  cm_arena *a);
/* Queues a write command for the next apply batch. */
int srv_propose(server *s, conn *c, uint64_t stream, int op,
                Skiffpb__Command *cmd, int64_t lease_id);
/* Runs a read in the thread pool and replies. */
int srv_read(conn *c, uint64_t stream, Skiffpb__Request *req, cm_arena *a);
void srv_snapshot_pump(conn *c);

/* ---- watches (watch_sink.c) ------------------------------------------------ */

int srv_watch_create(conn *c, uint64_t stream,
                     const Skiffpb__WatchCreateRequest *r);
/* A frame on an open watch stream (cancel, progress).  1 if it was one. */
int srv_watch_stream_frame(conn *c, uint64_t stream,
                           const Skiffpb__Request *r);
void srv_watch_conn_closed(conn *c);
void srv_watch_conn_drained(conn *c);
void srv_watch_kick(server *s);

/* ---- leases, compaction, metrics (maint.c, http.c) ------------------------- */

void srv_lease_tick(uv_timer_t *t);
void srv_compact_tick(uv_timer_t *t);
void srv_applied(server *s, const pending *p, const kv_result *r);
int srv_metrics_start(server *s);

#endif
