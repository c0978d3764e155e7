/*
 * client/skiff_int.h -- libskiff's internal declarations, shared by its
 * files and private to the library: the client and connection structs,
 * the stream table, and the encode/decode and dispatch entry points.
 */
#ifndef SKIFF_INT_H
#define SKIFF_INT_H

#include "skiff.h"

#include "cm.h"
#include "rpc.pb-c.h"
#include "tls.h"

#define SKIFF__ERRMSG 512
#define SKIFF__ARENA_CHUNK 2048
#define SKIFF__ARENA_POOL 4096
#define REQF_SAFE (1u << 31) /* may be resent after a broken connection */

/* Request states (skiff_req.state). */
enum {
    REQ_IDLE = 0,
    REQ_WAIT,     /* in the client's wait queue, no connection yet */
    REQ_RETRY,    /* in the retry list until retry_at_ms */
    REQ_INFLIGHT, /* holds a stream slot on a connection */
    REQ_DONE
};

/* Watch states (skiff_watch.state). */
enum {
    W_IDLE = 0,
    W_WAIT,     /* waiting for a connection (or retry time) */
    W_CREATING, /* create sent, not yet confirmed */
    W_ACTIVE,
    W_STOPPING, /* cancel sent or to be sent */
    W_DONE
};

/* Connection states. */
enum {
    C_IDLE = 0, /* not connected, not trying */
    C_BACKOFF,  /* waiting before the next attempt */
    C_RESOLVING,
    C_CONNECTING,
    C_HANDSHAKE, /* TLS */
    C_READY,
    C_CLOSED /* client closing */
};

typedef struct skiff_endpoint {
    char *host;
    char *port;
    int tls;
} skiff_endpoint;

/* One stream slot: stream ids are (seq << 32) | (index + 1), so a late
 * response on a freed and reused slot is recognised and dropped. */
typedef struct skiff_slot {
    uint64_t stream; /* 0: free */
    int kind;        /* 1 request, 2 watch */
    void *p;
} skiff_slot;

typedef struct skiff_conn {
    skiff_client *c;
    int idx;
    int state;
    int ep;          /* endpoint index in use or next to try */
    int fails;       /* consecutive failed attempts */
    int pending_err; /* write failure to act on from the timer */
    int draining;    /* move to another endpoint once idle */
    size_t nreqs;    /* request streams (watches excluded) */
    int tcp_open;    /* tcp handle initialised and not yet closed */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    int gai_busy;
    uv_timer_t timer; /* backoff and dial timeout */
    cm_tls *tls;
    cm_frame_reader rd;
    cm_buf out[2];
    int cur; /* out[cur] collects, out[!cur] may be in flight */
    int writing;
    uv_write_t wreq;
    uint64_t gen; /* flush generation */
    skiff_slot *slots;
    uint32_t nslots, cap;
    uint32_t *free_idx;
    uint32_t nfree;
    uint32_t seq;
    size_t active;  /* used slots */
    char addr[300]; /* "host:port" for messages */
} skiff_conn;

struct skiff_client {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    int blocking;
    int closing;
    int closed_handles_pending;
    int close_started; /* handles are being closed */
    int close_done;
    int poll_expired;
    skiff_close_cb close_cb;
    skiff_endpoint *eps;
    int n_eps;
    int next_ep;
    cm_tls_ctx *tls;
    char *server_name;
    char *token; /* bearer token sent first on every connection */
    char *ca_file, *cert_file, *key_file; /* copies, for create_like */
    int insecure_skip_verify;
    int dial_timeout_ms;
    int request_timeout_ms;
    int backoff_min_ms, backoff_max_ms;
    int max_streams;
    size_t max_response;
    cm_arena *cur_arena; /* arena of the result being delivered */
    skiff_conn *conns;
    int n_conns;
    int rr;                 /* round-robin cursor */
    uv_timer_t dl_timer;    /* deadlines and wait-queue expiry */
    uv_timer_t retry_timer; /* retries and watch re-creation */
    uv_timer_t ka_timer;    /* lease keep-alives */
    uv_timer_t close_timer; /* defers close work out of the caller */
    uv_timer_t poll_timer;  /* skiff_client_poll */
    /* requests: deadline-ordered list, wait queue, retry list */
    skiff_req *dl_head, *dl_tail;
    skiff_req *wait_head, *wait_tail;
    skiff_req *retry_head;
    skiff_watch *watches;
    skiff_keepalive *kas;
    cm_arena **pool;
    size_t npool;
    cm_arena scratch; /* per-frame decode memory for watches */
    char errmsg[SKIFF__ERRMSG];
};

/* errors */
void skiff__err_init(void);
int skiff__err_from_wire(int code);
void skiff__errmsg(skiff_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* arenas */
cm_arena *skiff__arena_get(skiff_client *c);
void skiff__arena_put(skiff_client *c, cm_arena *a);
void skiff__arena_destroy(cm_arena *a);
ProtobufCAllocator skiff__pb_alloc(cm_arena *a);

/* encode.c: op -> Request payload; Response -> result */
int skiff__op_check(const skiff_op *op);
int skiff__encode_op(cm_arena *a, const skiff_op *op, const uint8_t **out,
                     size_t *len);
int skiff__encode_watch(cm_arena *a, const skiff_watch *w, const uint8_t **out,
                        size_t *len);
int skiff__encode_simple(cm_arena *a, int which, int64_t watch_id,
                         const uint8_t **out, size_t *len);
int skiff__result_fill(cm_arena *a, skiff_op_type type,
                       const Skiffpb__Response *r, skiff_result *res);
void skiff__kv_fill(skiff_kv *out, const Skiffpb__KeyValue *kv);
void skiff__header_fill(skiff_header *h, const Skiffpb__ResponseHeader *p);

/* conn.c */
int skiff__conns_init(skiff_client *c);
void skiff__conn_kick(skiff_client *c);
skiff_conn *skiff__conn_pick(skiff_client *c);
int skiff__conn_send(skiff_conn *cn, uint64_t stream, const uint8_t *p,
                     size_t len);
uint64_t skiff__slot_alloc(skiff_conn *cn, int kind, void *p);
void skiff__slot_free(skiff_conn *cn, uint64_t stream);
void skiff__conn_fail_over(skiff_conn *cn, const char *why, int err);
void skiff__conn_drain(skiff_conn *cn);
void skiff__conns_close(skiff_client *c);
void skiff__conns_free(skiff_client *c);

/* req.c */
void skiff__req_dispatch(skiff_req *req);
void skiff__req_on_response(skiff_conn *cn, skiff_req *req, const uint8_t *p,
                            size_t len);
void skiff__req_on_conn_lost(skiff_req *req, int sent);
void skiff__reqs_on_ready(skiff_client *c);
void skiff__deadline_arm(skiff_client *c);
void skiff__cancel_all_reqs(skiff_client *c);
void skiff__retry_arm(skiff_client *c);
int64_t skiff__now(skiff_client *c);

/* watch.c */
void skiff__watch_dispatch(skiff_watch *w);
void skiff__watch_on_response(skiff_conn *cn, skiff_watch *w, const uint8_t *p,
                              size_t len);
void skiff__watch_on_conn_lost(skiff_watch *w);
void skiff__watches_on_ready(skiff_client *c);
void skiff__watches_retry(skiff_client *c, int64_t now, int64_t *next);
void skiff__watches_due(skiff_client *c, int64_t now);
void skiff__cancel_all_watches(skiff_client *c);

/* lease.c */
void skiff__cancel_all_kas(skiff_client *c);
void skiff__ka_timer_cb(uv_timer_t *t);

/* client.c */
void skiff__maybe_finish_close(skiff_client *c);
/* "host:port" (with https:// and [] as needed) of an endpoint. */
void skiff__endpoint_str(const skiff_endpoint *ep, char *buf, size_t cap);
/* A blocking client on `endpoint` alone with c's TLS settings and
 * backoffs and this request timeout.  Errors as skiff_client_create. */
int skiff__client_create_like(skiff_client *c, const char *endpoint,
                              int timeout_ms, skiff_client **out);
void skiff__poll_timer_cb(uv_timer_t *t);

#endif
