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

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "api.h"
#include "raft.h"
#include "transport.h"
#include "wal.h"
#include "tls.h"
#include "kv.h"
#include "watch.h"

typedef struct server server;
typedef struct conn conn;
typedef struct srv_auth srv_auth;
struct authn_user;

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
    unsigned heartbeat_ms, election_ms;
    size_t snapshot_count;   /* applied entries between log compactions */
    size_t snapshot_catchup; /* entries kept behind a compaction */
    bool initial_corrupt_check;
    /* Test builds only (SKIFF_UNSAFE_SWITCHES): break one guarantee on
     * purpose so the fault-injection suite can show it notices. */
    bool unsafe_local_reads, unsafe_no_fsync, unsafe_drop_watch_event;
    char corrupt_check_time[32]; /* "0": no periodic check */
    char authorization_mode[16]; /* AlwaysAllow | RBAC */
    char token_auth_file[512];
    char kv_permissions_file[512];
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

/* A request waiting for its command to be applied: found again by the
 * command id when the entry comes out of the log (on the member that
 * proposed it, whichever member the leader was). */
typedef struct waiter {
    uint64_t cmd_id;
    conn *c;           /* NULL: internal (lease expiry, compaction ...) */
    uint64_t stream;
    uint32_t conn_gen;
    int op;            /* Skiffpb__Request body case */
    int64_t lease_id;  /* for internal lease revokes */
    int64_t deadline;  /* monotonic ms */
    bool sent;         /* handed to Raft: the outcome is unknown until
                          applied */
    uint64_t sent_term; /* the term it was proposed or forwarded in */
    struct waiter *next; /* hash chain / free list */
} waiter;

/* A committed entry waiting to be applied (holds a blob reference). */
typedef struct aent {
    uint64_t index, term;
    uint32_t type;
    uint32_t len;
    const uint8_t *buf;
    raft_blob *blob;
} aent;

/* One ready batch's durable part, and the messages that wait for it. */
typedef struct pbatch {
    bool has_hs, has_snap;
    bool sync; /* entries, a snapshot or a new term or vote: fdatasync */
    raft_hard_state hs;
    raft_snapshot_meta snap;
    raft_entry *ents;
    size_t n;
    raft_msg *msgs;
    size_t nmsgs;
} pbatch;

typedef struct snap_out snap_out;
typedef struct snap_in snap_in;
typedef struct read_round read_round;

#define WAITER_BUCKETS 4096

typedef struct metrics {
    uint64_t proposals_committed, proposals_failed;
    uint64_t apply_batches, apply_ns_total;
    uint64_t reads, watch_events_sent;
    uint64_t bytes_in, bytes_out;
    uint64_t conns_total, conns_closed_slow;
    uint64_t corrupt_checks, corrupt_mismatches;
    uint64_t apply_hist[16]; /* apply batch duration, 2^k * 0.25 ms */
    uint64_t wal_writes, wal_fsyncs, wal_fsync_ns_total;
    uint64_t wal_fsync_hist[16]; /* WAL fdatasync duration, 2^k * 0.25 ms */
} metrics;

struct server {
    uv_loop_t *loop;
    srv_config cfg;
    int64_t wall0, mono0; /* srv_clock_ms's base */
    kv_store *kv;
    watch_hub *hub;
    uint64_t cluster_id, member_id;
    uv_tcp_t listener;
    cm_tls_ctx *tls;      /* client TLS, NULL when plain TCP */
    uv_check_t tls_check; /* resumes TLS connections whose output drained */
    bool tls_check_on;
    srv_auth *auth;       /* auth.c */
    uv_tcp_t metrics_listener;
    bool has_metrics;
    uv_timer_t lease_timer, compact_timer, progress_timer;
    uv_idle_t watch_idle;
    bool watch_idle_on;
    uv_signal_t sigint, sigterm;
    bool stopping;
    int exit_code;

    /* Proposals: commands packed back to back, flushed to Raft (or to
     * the leader) once per loop iteration. */
    cm_buf props;
    size_t *prop_end; /* end offset of each queued command */
    uint64_t *prop_ids;
    size_t nprops, props_cap;
    waiter *waiters[WAITER_BUCKETS];
    waiter *waiter_free;
    size_t nwaiters;
    uint64_t next_cmd_id;
    uv_timer_t sweep_timer;

    /* Raft. */
    raft *r;
    rt *t;
    wal *w;
    char wal_dir[600];
    uv_timer_t tick_timer;
    uv_idle_t ready_idle;
    bool ready_on;
    int role;
    raft_id lead;
    uint64_t term;
    bool fatal; /* the WAL or store failed: this member stopped */

    /* Persist pipeline: ready batches queued while a WAL job runs. */
    pbatch *pq;
    size_t npq, pq_cap;
    pbatch *pjob;
    uint64_t hs_term; /* the term and vote last handed to the WAL */
    uint64_t hs_vote;
    size_t npjob;
    bool persisting;
    uv_work_t persist_req;
    int persist_rc;
    uint64_t persist_sync_ns; /* the job's fdatasync; 0: it did none */
    uint64_t release_index, release_term; /* wal_release for the next job */
    uint64_t job_release_index, job_release_term;

    /* Apply pipeline: committed entries, applied in the pool in order. */
    aent *aq;
    size_t naq, aq_cap;
    aent *ajob;
    size_t najob, ajob_cap;
    kv_entry *kents;
    cm_buf conv; /* commands made up for NOOP entries */
    bool applying;
    bool restoring; /* a snapshot restore holds the writer */
    uv_work_t apply_req;
    cm_arena apply_arena;
    kv_result *results;
    size_t results_cap;
    int apply_rc;
    uint64_t apply_ns;
    /* Early replies (apply.c): the pool thread posts the job's number
     * when its results are final and only the commit is left. */
    uv_async_t early_async;
    uint64_t apply_seq;          /* number of the running apply job */
    _Atomic uint64_t early_seq;  /* set by the pool thread */
    bool early_done;             /* the running job's replies went out */
    bool hold_reads;             /* reads wait for the running commit */
    int64_t early_rev;           /* last revision answered early */
    struct read_job *held_head, *held_tail; /* long reads held */
    struct srv_held_job *held_jobs, **held_jobs_tail;
    struct hconn *http_held;
    uint64_t applied;        /* last index applied to the store */
    uint64_t applied_now;    /* index of the entry being handled */
    uint64_t applied_term;   /* term of that entry */
    uint64_t compacted;      /* last raft_compact index */
    bool compacting;
    uv_work_t compact_req;
    int compact_rc;
    uint64_t compact_target; /* applied index when the store sync began */
    uint64_t refresh_pending; /* cmd id of the leader's lease refresh */
    bool lease_ready;        /* leases may expire (refresh applied) */

    /* Linearizable reads (readindex.c). */
    read_round *rounds;
    uint64_t round_seq;
    struct read_job *lin_head, *lin_tail; /* reads waiting for a round */
    struct fwd_read {
        raft_id from;
        uint64_t round, seq;
        bool asked;
    } *fwd;
    size_t nfwd, fwd_cap;

    /* Snapshots to and from peers (snapship.c). */
    snap_out *souts;
    snap_in *sin;

    /* Membership as this member last applied it (member.c). */
    raft_id peers[RAFT_MAX_MEMBERS];
    size_t npeers;
    bool was_member, published, removed;
    uv_timer_t removed_timer;
    struct {
        raft_id id;
        int64_t until;
    } gone[RAFT_MAX_MEMBERS];
    size_t ngone;

    /* Corruption check (corrupt.c). */
    uv_timer_t ck_timer;
    uint64_t ck_period_ms;
    bool ck_running, ck_initial_done;
    bool damage_seen; /* a read met KV_ECORRUPT (srv_corrupt_found) */
    int64_t ck_rev, ck_compact;
    uint32_t ck_hash;

    /* Leadership transfer requested by a client (member.c). */
    conn *ml_conn;
    uint32_t ml_gen;
    uint64_t ml_stream;
    raft_id ml_target, ml_from;
    int64_t ml_deadline;

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

/* The clock of lease time: the wall clock read once at start, advanced by
 * the monotonic clock.  Lease expiry is decided by the leader against the
 * times its commands carry, so a wall-clock step (NTP, an operator, a
 * fault test) on the leader must not expire leases early or late; a new
 * leader refreshes every lease against its own clock first anyway. */
int64_t srv_clock_ms(const server *s);

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
    char user[128];     /* the user's name, for logs ("" anonymous) */
    struct authn_user *who; /* NULL: anonymous (auth.c) */
    bool bad_token;     /* presented an unknown bearer token */
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

/* ---- authentication and authorization (auth.c) ------------------------------ */

/* Reads --authorization-mode, the token and raw-permission files, and the
 * RBAC objects, and starts watching them.  After the hub exists, before
 * the node starts.  0, or -1 after printing why. */
int srv_auth_setup(server *s);
void srv_auth_close(server *s);
/* Whether --authorization-mode is RBAC. */
bool srv_auth_rbac(const server *s);
/* The TLS handshake finished: take the user from the client certificate
 * (with --client-cert-auth). */
void srv_auth_conn_cert(conn *c);
void srv_auth_conn_free(conn *c);
const struct authn_user *srv_auth_who(const conn *c);
/* May this request go on?  Answers Authenticate and AccessReview itself
 * and denies with PERMISSION_DENIED (logged): false then, the request
 * has been answered.  Writes of objects are only partly decided here:
 * admission asks srv_auth_object for each. */
bool srv_auth_check(conn *c, uint64_t stream, const Skiffpb__Request *req);

/* Revoking a lease deletes its keys, and a put with a lease ties its key
 * to them, so under RBAC a user other than an administrator needs write
 * access to every key of the lease, as in etcd (auth_lease.c).
 * srv_auth_lease_check says whether this connection needs that.
 * srv_lease_keys_start, for a raw revoke, put or txn: false when there is
 * nothing to check (go on as usual); true when it took `req` and its
 * arena, looks up the leases' keys in the pool and then proposes the
 * request or denies it. */
bool srv_auth_lease_check(conn *c);
bool srv_lease_keys_start(conn *c, uint64_t stream, Skiffpb__Request *req,
                          cm_arena *a);
/* May the user read `key` (raw or object key)?  On refusal *why says
 * why. */
bool srv_auth_raw_read(conn *c, const uint8_t *key, size_t len, char *why,
                       size_t cap);
/* May the user write `key` as a raw key (not an object)?  On refusal
 * *why says why. */
bool srv_auth_raw_write(conn *c, const uint8_t *key, size_t len, char *why,
                        size_t cap);
/* Denies the request (logged, PERMISSION_DENIED with Kubernetes' shape of
 * message); returns false. */
bool srv_auth_deny(conn *c, uint64_t stream, const char *what,
                   const char *why);

/* One object write as the API server authorizes it. */
typedef struct srv_obj_access {
    const char *verb;        /* create, update, delete */
    const char *resource;    /* "pods" */
    const char *subresource; /* "", "status", "binding" */
    const char *ns, *name;   /* "" for cluster-scoped */
    const char *node;        /* pods: the pod's spec.nodeName, else "" */
} srv_obj_access;
/* RBAC and NodeRestriction for one object write; on refusal msg holds
 * Kubernetes' Forbidden message (and the denial is logged). */
bool srv_auth_object(conn *c, const srv_obj_access *a, char *msg, size_t cap);
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
/* Queues a write command for Raft; the reply goes out when it is
 * applied (or fails).  0, -ENOMEM, -ESHUTDOWN. */
int srv_propose(server *s, conn *c, uint64_t stream, int op,
                Skiffpb__Command *cmd, int64_t lease_id);
/* Hands the queued proposals to Raft or the leader (once per loop turn). */
void srv_flush_proposals(server *s);
/* Answers and frees the waiter for `cmd_id` (NULL result: failed with
 * `code`/`msg`).  Returns the waiter's op (0 when none). */
waiter *srv_waiter_take(server *s, uint64_t cmd_id);
/* Files a waiter for `cmd` (setting its id and time).  NULL on ENOMEM. */
waiter *srv_waiter_add(server *s, conn *c, uint64_t stream, int op,
                       Skiffpb__Command *cmd, int64_t lease_id);
void srv_waiter_fail(server *s, waiter *w, Skiffpb__ErrorCode code,
                     const char *msg);
void srv_waiter_free(server *s, waiter *w);
/* A pool job that reads the store for a client (admission, the lease
 * look-up of a revoke): queued at once, or, while a commit of writes
 * already answered runs (hold_reads), held and queued after it
 * (apply.c).  `after` must accept UV_ECANCELED. */
typedef struct srv_held_job {
    struct srv_held_job *next;
    uv_work_t *w;
    uv_work_cb work;
    uv_after_work_cb after;
} srv_held_job;
int srv_queue_read_job(server *s, srv_held_job *h, uv_work_t *w,
                       uv_work_cb work, uv_after_work_cb after);
/* Starts what was held while a commit ran: reads (read.c), read jobs
 * (apply.c), /health and /metrics (http.c). */
void srv_reads_release(server *s);
void srv_held_jobs_release(server *s);
void srv_http_release(server *s);
/* Queues committed entries for applying. */
int srv_apply_enqueue(server *s, const raft_entry *e, size_t n);
void srv_apply_kick(server *s);

/* ---- Raft (node.c, boot.c, readindex.c, snapship.c, member.c) ------------ */

/* Opens the store, the WAL and Raft from the data dir (bootstrap, join or
 * restart); prints why and returns -1 when it must not start. */
int srv_boot(server *s);
/* Starts the transport and the tick; 0 or -1. */
int srv_node_start(server *s);
/* Processes Raft's ready batches (scheduled once per loop turn). */
void srv_node_kick(server *s);
void srv_node_close(server *s);
/* A message for the driver (RAFT_MSG_APP) from a peer. */
void srv_app_msg(server *s, const raft_msg *m);
enum srv_app_kind {
    APP_FORWARD = 1,       /* entries: commands for the leader to propose */
    APP_READ_INDEX,        /* index: round; follower asks the leader */
    APP_READ_INDEX_RESP,   /* index: round, commit: the read index */
    APP_SNAP_CHUNK,        /* log_term: session, index: offset, commit: total */
    APP_SNAP_ACK,          /* log_term: session, index: next offset wanted,
                              reject: failed, hint: 1 when installed */
    APP_CONF_FORWARD,      /* entries[0]: a packed Command (member_change) */
    APP_CONF_REJECT,       /* hint: cmd id, index: error code */
    APP_HASH_REQ,          /* index: revision */
    APP_HASH_RESP,         /* index: revision, commit: hash, hint: compact
                              revision, reject: cannot answer */
    APP_REMOVED,           /* you were removed from the cluster */
};
void srv_gone_sweep(server *s);
void srv_corrupt_start(server *s);
void srv_corrupt_check(server *s);
void srv_corrupt_on_app(server *s, const raft_msg *m);
/* A read met damaged data (KV_ECORRUPT): logged and the CORRUPT alarm
 * raised for this member, once. */
void srv_corrupt_found(server *s, const char *what);
int srv_app_send(server *s, raft_id to, uint32_t kind, raft_msg *m);
/* Linearizable reads: queue one; run the rounds.  */
void srv_read_linearizable(server *s, struct read_job *j);
void srv_reads_flush(server *s);
void srv_reads_applied(server *s);
void srv_read_state(server *s, const raft_read_state *rs);
void srv_read_job_start(server *s, struct read_job *j);
void srv_read_job_fail(struct read_job *j, Skiffpb__ErrorCode code,
                       const char *msg);
struct read_job **srv_read_job_link(struct read_job *j);
void srv_reads_sweep(server *s);
/* Snapshots. */
void srv_snap_send(server *s, const raft_msg *m);
void srv_snap_on_chunk(server *s, const raft_msg *m);
void srv_snap_on_ack(server *s, const raft_msg *m);
void srv_snap_sweep(server *s);
void srv_snap_install_kick(server *s);
/* Membership. */
void srv_membership_changed(server *s, const Skiffpb__Membership *m);
/* A joining member knows no membership until its first snapshot: it
 * reaches the members named by --initial-cluster meanwhile. */
void srv_membership_seed(server *s);
int srv_member_request(conn *c, uint64_t stream, Skiffpb__Request *req);
void srv_member_list(conn *c, uint64_t stream);
void srv_member_reply(server *s, const waiter *w, const kv_result *r);
void srv_leader_changed(server *s);
void srv_move_leader_sweep(server *s);
int srv_propose_conf(server *s, const uint8_t *cmd, size_t len);
uint64_t srv_member_id_of(const char *token, const char *peer_url);
/* Packs a write request as a Command and proposes it. */
int srv_propose_request(conn *c, uint64_t stream, Skiffpb__Request *req);
/* Admission of object writes (admit.c): whether `req` writes under
 * /registry/, and the pool job that admits and then proposes it (takes
 * req and its arena on 0). */
bool srv_admit_needed(const Skiffpb__Request *req);
int srv_admit_start(conn *c, uint64_t stream, Skiffpb__Request *req,
                    cm_arena *a);
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
void srv_applied(server *s, const waiter *w, const kv_result *r);
void srv_sweep_start(server *s);
void srv_waiters_fail_all(server *s, const char *why);
void srv_apply_free(server *s);
void srv_node_free(server *s);
void srv_reads_free(server *s);
void srv_reads_on_app(server *s, const raft_msg *m);
void srv_snap_free(server *s);
int srv_metrics_start(server *s);

#endif
