/*
 * raft/io/transport.h -- the peer transport: raft messages between cluster
 * members over plain TCP, driven by one libuv loop.
 *
 * Each member listens on one address and keeps at most one outbound
 * connection per peer, opened lazily on the first rt_send and re-opened
 * with exponential backoff after a failure.  Messages are encoded with
 * raft_msg_encode and framed with skiff's 12-byte frame header
 * (cm_frame_header: u32 BE payload length, u64 BE stream id); the stream id
 * of every frame is the sender's member id.  Each peer has a bounded send
 * queue (messages and bytes); when it is full new messages to that peer are
 * dropped and counted, which Raft tolerates like any network loss.
 *
 * Inbound connections are only read: each frame is decoded and handed to
 * the receive callback.  A malformed or oversized frame closes that one
 * connection (and is logged); other connections are unaffected.
 *
 * With rt_set_tls both directions run cm_tls (common/tls.h) with mutual
 * certificate checks: inbound connections must present a client
 * certificate signed by the CA, and outbound ones verify the peer's
 * certificate against the CA and the peer's IP address.  A refused
 * handshake is logged (CM_WARN, with the reason) and fails that one
 * connection.  Addresses are numeric ("127.0.0.1:7001", "[::1]:7001");
 * name resolution is not done.
 *
 * Threading: every function must be called on the thread running the loop
 * given to rt_create, and callbacks run on that thread.  No callback runs
 * inside the call that caused it.
 */
#ifndef SKIFF_RAFT_TRANSPORT_H
#define SKIFF_RAFT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cm.h"
#include "raft.h"
#include "tls.h"

typedef struct rt rt;

#define RT_QUEUE_MSGS_DEFAULT 4096u
#define RT_QUEUE_BYTES_DEFAULT (16u << 20) /* 16 MiB */
#define RT_FRAME_MAX (64u << 20)           /* largest accepted payload */
#define RT_BACKOFF_MIN_DEFAULT 50u         /* ms */
#define RT_BACKOFF_MAX_DEFAULT 2000u       /* ms */

/* A received message.  `m` is borrowed: it (and its entries' blobs) is
 * valid only until the callback returns, exactly like raft_step's
 * argument; keep it longer with raft_msg_copy or blob references.  The
 * callback may call any rt_ function, including rt_close. */
typedef void (*rt_recv_cb)(rt *t, const raft_msg *m, void *data);
/* The connection to peer `id` failed (connect refused or timed out, write
 * error, peer closed it).  Called once per failure, so a server can call
 * raft_report_unreachable.  Queued messages stay queued for the next
 * connection attempt; messages already handed to the socket are lost.
 * A connection attempt that takes over 5 s (TCP connect plus, with TLS,
 * the handshake) counts as failed. */
typedef void (*rt_unreachable_cb)(rt *t, raft_id id, void *data);
/* Called once when rt_close has finished; `t` is freed after it returns. */
typedef void (*rt_close_cb)(rt *t, void *data);

/* Counters of one peer (see rt_peer_stats). */
typedef struct rt_peer_stat {
    uint64_t queued;       /* messages waiting for the socket */
    uint64_t queued_bytes; /* their framed bytes */
    uint64_t dropped;      /* messages refused because the queue was full */
    uint64_t sent;         /* messages whose write completed */
    uint64_t failures;     /* connection failures reported */
    int connected;         /* 1 while a connection is established */
} rt_peer_stat;

/* Creates a transport for member `my_id` (non-zero) listening on
 * `listen_addr` ("ip:port"; port 0 picks a free port, see rt_port) on
 * `loop`.  recv_cb (required) receives decoded messages with `data`.
 * On 0, *out is owned by the caller and released only through rt_close.
 * Errors: CM_EINVAL (bad argument or address), -ENOMEM, or a libuv error
 * from bind/listen (e.g. UV_EADDRINUSE); nothing is left open on error. */
int rt_create(rt **out, uv_loop_t *loop, raft_id my_id, const char *listen_addr,
              rt_recv_cb recv_cb, void *data);

/* Turns on mutual TLS for every later connection; call it right after
 * rt_create, before rt_peer_set.  `server_side` (server = 1, with
 * cert_file, key_file, ca_file and normally require_client_cert = 1)
 * serves inbound connections; `client_side` (server = 0, with the
 * member's cert_file and key_file, which the other side checks, and
 * ca_file) opens outbound ones and checks the peer's certificate against
 * its IP address.  Both configs and their strings are borrowed for the
 * call only (the files are loaded right away).  Errors: CM_EINVAL (wrong
 * modes, TLS already set, peers already added or connections already
 * accepted, transport closing), -ENOMEM, or cm_tls_ctx_create's -EINVAL or
 * -EIO (logged with the OpenSSL reason); on error TLS stays off.
 *
 * With TLS a message counts as sent (rt_peer_stat.sent) once cm_tls has
 * taken a copy of it after the handshake; until then it waits in the
 * queue.  A handshake refused by either side is a connection failure
 * (counted, and reported to the unreachable callback on the sender). */
int rt_set_tls(rt *t, const cm_tls_config *server_side,
               const cm_tls_config *client_side);
/* Inbound connections refused so far: failed TLS handshakes and
 * connections that could not be set up (e.g. out of memory). */
uint64_t rt_refused(const rt *t);

/* Installs the optional unreachable callback (NULL removes it). */
void rt_set_unreachable_cb(rt *t, rt_unreachable_cb cb);
/* Per-peer queue bound, applied to later sends: at most `max_msgs`
 * messages and `max_bytes` framed bytes waiting.  0 keeps the current
 * value.  Defaults: RT_QUEUE_MSGS_DEFAULT, RT_QUEUE_BYTES_DEFAULT. */
void rt_set_limits(rt *t, size_t max_msgs, size_t max_bytes);
/* Reconnect backoff: first retry after `min_ms`, doubling up to `max_ms`
 * (0 keeps the current value).  Defaults 50 ms and 2 s. */
void rt_set_backoff(rt *t, unsigned min_ms, unsigned max_ms);

/* The port the listener is bound to (useful after port 0).  0 or a libuv
 * error. */
int rt_port(const rt *t, int *port);

/* Adds peer `id` at `addr` ("ip:port" or "[ipv6]:port"), or changes its
 * address (the current connection, if any, is dropped; queued messages are
 * kept).  The string is copied.  Errors: CM_EINVAL (id 0, id == own id,
 * unparsable address, transport closing), -ENOMEM. */
int rt_peer_set(rt *t, raft_id id, const char *addr);
/* Forgets peer `id`: its connection is closed and queued messages are
 * discarded.  -ENOENT if unknown. */
int rt_peer_remove(rt *t, raft_id id);
/* Counters of peer `id` into *st.  0 or -ENOENT. */
int rt_peer_stats(const rt *t, raft_id id, rt_peer_stat *st);

/* Queues `m` for peer m->to; never blocks.  `m` is borrowed for the call
 * only (it is encoded into the queue right away).  Opens the connection if
 * there is none.  Errors: -ENOENT (m->to is not a peer), CM_EINVAL
 * (transport closing), CM_ETOOBIG (encoded message over RT_FRAME_MAX),
 * -ENOBUFS (the peer's queue is full: the message was dropped and counted;
 * not an error of the transport), -ENOMEM.  A 0 return does not mean
 * delivery: the message may still be lost with its connection. */
int rt_send(rt *t, const raft_msg *m);

/* Closes every handle of the transport and discards queued messages.
 * close_cb (may be NULL) runs once, later, from the loop, with the
 * rt_create `data`; `t` is freed right after it returns.  No other callback
 * runs after rt_close returns.  Calling it twice is a programmer error. */
void rt_close(rt *t, rt_close_cb close_cb);

#endif /* SKIFF_RAFT_TRANSPORT_H */
