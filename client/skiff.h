/*
 * client/skiff.h -- libskiff, the C client library of the skiff store.
 *
 * skiff speaks etcd v3's data model over its own wire protocol
 * (docs/protocol.md).  This header is self-sufficient: it exposes plain C
 * structs of its own and includes nothing but <stddef.h> and <stdint.h>
 * (asynchronous users include libuv's <uv.h> themselves for the loop); the
 * generated protobuf code stays inside the library.
 *
 * Two ways to use a client:
 *   - blocking: skiff_client_create() makes a client that runs a private
 *     libuv loop on the calling thread; skiff_put(), skiff_get(), ... block
 *     until the answer, an error or the deadline.
 *   - asynchronous: skiff_client_create_async() puts the client on the
 *     caller's loop; skiff_do() starts any request and calls back
 *     (req, status) later, libuv style.
 *
 * Every operation is described by one skiff_op (a range, put, delete, txn,
 * compaction, lease or maintenance call) and answered in one skiff_result.
 * Results point into memory the result owns; free them with
 * skiff_result_free() (blocking calls) or use them inside the callback
 * (asynchronous calls; skiff_req_take_result() keeps them longer).
 *
 * Errors are 0 or negative: -errno for system errors, SKIFF_E* below for
 * the store's typed errors (one per wire ErrorCode) and the library's own.
 *
 * Threads: a client and everything started on it belong to one thread (the
 * one running its loop).  Different clients may be used from different
 * threads.  The allocator hooks (skiff_allocator_set) are process-wide and
 * must be set before any client exists.
 *
 * Retries (docs/client.md, "Failover"): a request that is safe to repeat
 * (reads, read-only txns, lease keep-alive/ttl/list, status, hashkv,
 * member list, alarm GET) is sent again, with backoff and on another
 * endpoint when one is configured, when its connection breaks or its
 * member answers NO_LEADER, NOT_LEADER or UNAVAILABLE, until the call's
 * deadline; watches resume from the last delivered revision + 1.  Any
 * other request (put, delete, a txn that writes, compaction, lease grant
 * and revoke, member add/remove/promote, move leader) is never re-sent once
 * it may have reached a member: a broken connection fails it with
 * SKIFF_EUNKNOWN (it may or may not have been applied) and NO_LEADER or
 * UNAVAILABLE come back as SKIFF_ENO_LEADER or SKIFF_EUNAVAILABLE.  Only
 * answers that prove the request was not applied (NOT_LEADER,
 * TOO_MANY_STREAMS) are retried for every kind.
 */
#ifndef SKIFF_H
#define SKIFF_H

#include <stddef.h>
#include <stdint.h>

/* libuv's loop type, declared here so this header stands alone (C11 allows
 * the identical typedef again when <uv.h> is included too). */
typedef struct uv_loop_s uv_loop_t;

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SKIFF_EXPORT __attribute__((visibility("default")))
#else
#define SKIFF_EXPORT
#endif

#define SKIFF_VERSION_MAJOR 0
#define SKIFF_VERSION_MINOR 1
#define SKIFF_VERSION_PATCH 0

/* ---- errors ---------------------------------------------------------------
 * Wire ErrorCode N maps to -6000 - N.  The library's own codes start at
 * -6100.  skiff_strerror() also knows -errno values. */
#define SKIFF_ERRNO_MAP(XX)                                                    \
    XX(SKIFF_EINVALID_ARGUMENT, -6001, "invalid argument (server)")            \
    XX(SKIFF_ECOMPACTED, -6002, "revision has been compacted")                 \
    XX(SKIFF_EFUTURE_REV, -6003, "revision is a future revision")              \
    XX(SKIFF_EKEY_TOO_LARGE, -6004, "key is too large")                        \
    XX(SKIFF_EVALUE_TOO_LARGE, -6005, "value is too large")                    \
    XX(SKIFF_EEMPTY_KEY, -6006, "key is not provided")                         \
    XX(SKIFF_EREQUEST_TOO_LARGE, -6007, "request is too large")                \
    XX(SKIFF_ETOO_MANY_OPS, -6008, "too many operations in txn request")       \
    XX(SKIFF_EDUPLICATE_KEY, -6009, "duplicate key given in txn request")      \
    XX(SKIFF_ELEASE_NOT_FOUND, -6010, "requested lease not found")             \
    XX(SKIFF_ELEASE_EXISTS, -6011, "lease already exists")                     \
    XX(SKIFF_ELEASE_TTL_INVALID, -6012, "lease TTL is invalid")                \
    XX(SKIFF_EKEY_NOT_FOUND, -6013, "key not found")                           \
    XX(SKIFF_EVALUE_PROVIDED, -6014, "value is provided")                      \
    XX(SKIFF_ELEASE_PROVIDED, -6015, "lease is provided")                      \
    XX(SKIFF_ENO_SPACE, -6016, "database space exceeded")                      \
    XX(SKIFF_ENO_LEADER, -6017, "no leader")                                   \
    XX(SKIFF_ENOT_LEADER, -6018, "not leader")                                 \
    XX(SKIFF_ETIMEOUT, -6019, "request timed out (server)")                    \
    XX(SKIFF_EUNAVAILABLE, -6020, "member unavailable")                        \
    XX(SKIFF_EPERMISSION_DENIED, -6021, "permission denied")                   \
    XX(SKIFF_EUNAUTHENTICATED, -6022, "unauthenticated")                       \
    XX(SKIFF_ETOO_MANY_STREAMS, -6023, "too many streams on connection")       \
    XX(SKIFF_ETOO_MANY_WATCHES, -6024, "too many watches on connection")       \
    XX(SKIFF_EWATCH_ID_EXISTS, -6025, "watch id exists")                       \
    XX(SKIFF_EWATCH_NOT_FOUND, -6026, "watch not found")                       \
    XX(SKIFF_EDATA_CORRUPT, -6027, "data is corrupt")                          \
    XX(SKIFF_EUNIMPLEMENTED, -6028, "not implemented by the server")           \
    XX(SKIFF_EINTERNAL, -6029, "internal server error")                        \
    XX(SKIFF_EMEMBER_EXISTS, -6030, "member ID or peer URL already exists")    \
    XX(SKIFF_EMEMBER_NOT_FOUND, -6031, "member not found")                     \
    XX(SKIFF_EMEMBER_NOT_LEARNER, -6032, "can only promote a learner member")  \
    XX(SKIFF_ELEARNER_NOT_READY, -6033,                                        \
       "can only promote a learner member which is in sync with leader")       \
    XX(SKIFF_EUNHEALTHY_CLUSTER, -6034, "unhealthy cluster")                   \
    XX(SKIFF_ECONFLICT, -6035, "the object has been modified")                 \
    XX(SKIFF_ENOT_FOUND, -6036, "object not found")                            \
    XX(SKIFF_EUNKNOWN, -6100,                                                  \
       "outcome unknown: connection lost after the write was sent")            \
    XX(SKIFF_EDEADLINE, -6101, "deadline exceeded")                            \
    XX(SKIFF_ENOENDPOINT, -6102, "no endpoint reachable")                      \
    XX(SKIFF_EPROTO, -6103, "malformed response from server")                  \
    XX(SKIFF_ETLS, -6104, "TLS error")                                         \
    XX(SKIFF_ECANCELED_BY_SERVER, -6105, "watch canceled by the server")       \
    XX(SKIFF_EWRONG_MODE, -6106, "call not allowed on this kind of client")    \
    XX(SKIFF_EFAILED, -6107, "client is closed or failed")

enum skiff_errno {
#define XX(name, val, msg) name = (val),
    SKIFF_ERRNO_MAP(XX)
#undef XX
};

/* Message for any code: skiff's, -errno, or the common module's.  Static
 * string, never NULL.  Any thread. */
SKIFF_EXPORT const char *skiff_strerror(int code);
/* Symbolic name: "SKIFF_ECOMPACTED", "ECONNREFUSED", ...  Static, never
 * NULL.  Any thread. */
SKIFF_EXPORT const char *skiff_err_name(int code);
/* The wire ErrorCode's name ("COMPACTED") for a SKIFF_E* code in the
 * -6001..-6099 block, else NULL.  Any thread. */
SKIFF_EXPORT const char *skiff_err_wire_name(int code);

/* ---- memory ---------------------------------------------------------------
 * Replaceable heap hooks for everything the library allocates (like
 * uv_replace_allocator).  NULL restores libc's.  Call before creating any
 * client.  In a program that also links skiff's internal common/ module
 * the hooks are shared with it. */
typedef struct skiff_allocator {
    void *data;
    void *(*malloc)(void *data, size_t size);
    void *(*realloc)(void *data, void *ptr, size_t size);
    void (*free)(void *data, void *ptr);
} skiff_allocator;
SKIFF_EXPORT void skiff_allocator_set(const skiff_allocator *a);

/* ---- configuration ------------------------------------------------------- */
typedef struct skiff_config {
    /* Endpoints "host:port", optionally with "http://" or "https://" in
     * front (https implies TLS).  At least one.  Borrowed during create. */
    const char *const *endpoints;
    size_t n_endpoints;
    /* TLS: set ca_file to use TLS; cert_file and key_file (both or
     * neither) for a client certificate.  server_name overrides the name
     * checked against the server's certificate (default: the endpoint's
     * host).  insecure_skip_verify turns verification off (tests only). */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *server_name;
    int insecure_skip_verify;
    int dial_timeout_ms;    /* 0: 5000 */
    int request_timeout_ms; /* default deadline per call; 0: 10000 */
    int conns;              /* connections kept open; 0: 1 */
    int max_streams;        /* in flight per connection, more wait in the
                             * client; 0: 1024 (the server's default) */
    int backoff_min_ms;     /* reconnect/retry backoff; 0: 50 */
    int backoff_max_ms;     /* 0: 2000 */
    size_t max_response;    /* largest frame accepted; 0: 64 MiB */
    /* A bearer token (the server's --token-auth-file): presented on every
     * connection before anything else.  NULL: none (the client
     * certificate, if any, says who this is).  Borrowed during create. */
    const char *token;
} skiff_config;

typedef struct skiff_client skiff_client;

/* Creates a blocking client with a private loop on the calling thread.
 * Connections are made lazily by the first call.  0, -ENOMEM,
 * -EINVAL (no endpoint, bad endpoint syntax, cert without key),
 * SKIFF_ETLS (CA/cert/key files unreadable or invalid).  *out is owned by
 * the caller: skiff_client_destroy(). */
SKIFF_EXPORT int skiff_client_create(skiff_client **out,
                                     const skiff_config *cfg);

/* Creates an asynchronous client on `loop` (borrowed; must outlive the
 * client).  Errors as skiff_client_create.  Close it with
 * skiff_client_close().  Loop thread only. */
SKIFF_EXPORT int skiff_client_create_async(skiff_client **out,
                                           const skiff_config *cfg,
                                           uv_loop_t *loop);

typedef void (*skiff_close_cb)(skiff_client *c);
/* Starts closing an asynchronous client: every outstanding request, watch
 * and keep-alive completes with -ECANCELED (from the loop, never inside
 * this call), connections close, then close_cb runs (may be NULL) and the
 * client's memory is gone.  No call on `c` after this.  Loop thread. */
SKIFF_EXPORT void skiff_client_close(skiff_client *c, skiff_close_cb close_cb);

/* Closes and frees a blocking client (runs its private loop until every
 * handle is closed).  Outstanding watches and keep-alives are cancelled;
 * close skiff_watchers first.  On an asynchronous client it is
 * skiff_client_close(c, NULL).  NULL is a no-op.  Never from inside one
 * of the client's callbacks. */
SKIFF_EXPORT void skiff_client_destroy(skiff_client *c);

/* Runs a blocking client's private loop for up to timeout_ms (0: one
 * non-blocking pass) so background work (lease keep-alives, buffering
 * watch events, reconnects) progresses between calls.  0, or
 * SKIFF_EWRONG_MODE on an asynchronous client. */
SKIFF_EXPORT int skiff_client_poll(skiff_client *c, int timeout_ms);

/* The message of the last failed call on this client, with context
 * ("put: 127.0.0.1:2379: no leader").  Borrowed until the next call.
 * Never NULL. */
SKIFF_EXPORT const char *skiff_client_errmsg(const skiff_client *c);

/* The loop a client runs on (the private one for blocking clients). */
SKIFF_EXPORT uv_loop_t *skiff_client_loop(const skiff_client *c);

/* ---- data ---------------------------------------------------------------- */
typedef struct skiff_kv {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} skiff_kv;

typedef struct skiff_header {
    uint64_t cluster_id;
    uint64_t member_id;
    int64_t revision;
    uint64_t raft_term;
} skiff_header;

/* ---- operations ----------------------------------------------------------
 * One skiff_op describes any request.  Zero it, set `type` and the fields
 * that type uses; the rest must stay zero.  Everything it points to is
 * borrowed only until the call that takes it returns (the library encodes
 * the request at once). */
typedef enum skiff_op_type {
    SKIFF_OP_RANGE = 1,
    SKIFF_OP_PUT,
    SKIFF_OP_DELETE,
    SKIFF_OP_TXN,
    SKIFF_OP_COMPACT,
    SKIFF_OP_LEASE_GRANT,
    SKIFF_OP_LEASE_REVOKE,
    SKIFF_OP_LEASE_KEEPALIVE,
    SKIFF_OP_LEASE_TTL,
    SKIFF_OP_LEASE_LEASES,
    SKIFF_OP_STATUS,
    SKIFF_OP_HASHKV,
    SKIFF_OP_ALARM,
    SKIFF_OP_DEFRAGMENT,
    SKIFF_OP_MEMBER_LIST,
    SKIFF_OP_SNAPSHOT,
    SKIFF_OP_MEMBER_ADD,     /* peer_urls, SKIFF_LEARNER */
    SKIFF_OP_MEMBER_REMOVE,  /* member_id */
    SKIFF_OP_MEMBER_PROMOTE, /* member_id */
    SKIFF_OP_MOVE_LEADER,    /* member_id: the target; to the leader only */
    SKIFF_OP_WHOAMI,         /* who the server takes this client for */
    SKIFF_OP_ACCESS_REVIEW,  /* may I (or as_user) do verb on resource? */
} skiff_op_type;

/* Option flags (skiff_op.flags), each for the ops named. */
#define SKIFF_SERIALIZABLE (1u << 0) /* range: read the local member */
#define SKIFF_KEYS_ONLY (1u << 1)    /* range */
#define SKIFF_COUNT_ONLY (1u << 2)   /* range */
#define SKIFF_PREV_KV (1u << 3)      /* put, delete */
#define SKIFF_IGNORE_VALUE (1u << 4) /* put */
#define SKIFF_IGNORE_LEASE (1u << 5) /* put */
#define SKIFF_PHYSICAL (1u << 6)     /* compact: wait until done */
#define SKIFF_LEASE_KEYS (1u << 7)   /* lease ttl: list attached keys */
#define SKIFF_LINEARIZABLE (1u << 8) /* member list */
#define SKIFF_LEARNER (1u << 9)      /* member add: as a learner */

enum skiff_sort_order {
    SKIFF_SORT_NONE,
    SKIFF_SORT_ASCEND,
    SKIFF_SORT_DESCEND
};
enum skiff_sort_target {
    SKIFF_SORT_KEY,
    SKIFF_SORT_VERSION,
    SKIFF_SORT_CREATE,
    SKIFF_SORT_MOD,
    SKIFF_SORT_VALUE
};

/* Txn compares: etcd's Compare. */
enum skiff_cmp_result {
    SKIFF_CMP_EQUAL,
    SKIFF_CMP_GREATER,
    SKIFF_CMP_LESS,
    SKIFF_CMP_NOT_EQUAL
};
enum skiff_cmp_target {
    SKIFF_CMP_VERSION,
    SKIFF_CMP_CREATE,
    SKIFF_CMP_MOD,
    SKIFF_CMP_VALUE,
    SKIFF_CMP_LEASE
};
typedef struct skiff_cmp {
    enum skiff_cmp_result result;
    enum skiff_cmp_target target;
    const void *key;
    size_t key_len;
    const void *range_end; /* compare every key in [key, range_end) */
    size_t range_end_len;
    int64_t number;    /* version, create/mod revision or lease */
    const void *value; /* SKIFF_CMP_VALUE */
    size_t value_len;
} skiff_cmp;

enum skiff_alarm_action {
    SKIFF_ALARM_GET,
    SKIFF_ALARM_ACTIVATE,
    SKIFF_ALARM_DEACTIVATE
};
enum skiff_alarm_type {
    SKIFF_ALARM_NONE,
    SKIFF_ALARM_NOSPACE,
    SKIFF_ALARM_CORRUPT
};

typedef struct skiff_op skiff_op;
struct skiff_op {
    skiff_op_type type;
    unsigned flags; /* SKIFF_* option flags */
    /* range, put, delete: the key; range and delete: range_end with
     * etcd's conventions (empty: key alone; "\0" of length 1: every key
     * >= key; else [key, range_end)).  skiff_op_prefix() and
     * skiff_op_from_key() fill range_end. */
    const void *key;
    size_t key_len;
    const void *range_end;
    size_t range_end_len;
    const void *value; /* put */
    size_t value_len;
    int64_t lease;                    /* put: lease to attach; lease ops: ID */
    int64_t ttl;                      /* lease grant: seconds */
    int64_t revision;                 /* range, compact, hashkv */
    int64_t limit;                    /* range: 0 = no limit */
    enum skiff_sort_order sort_order; /* range */
    enum skiff_sort_target sort_target;               /* range */
    int64_t min_mod_revision, max_mod_revision;       /* range filters */
    int64_t min_create_revision, max_create_revision; /* range filters */
    /* txn: compares, then success or failure ops (RANGE, PUT, DELETE or
     * nested TXN). */
    const skiff_cmp *cmps;
    size_t n_cmps;
    const skiff_op *success;
    size_t n_success;
    const skiff_op *failure;
    size_t n_failure;
    /* alarm */
    enum skiff_alarm_action alarm_action;
    enum skiff_alarm_type alarm_type;
    /* alarm; member remove and promote: the member (not 0); move leader:
     * the member to hand leadership to (not 0) */
    uint64_t member_id;
    /* member add: the new member's peer URLs (at least one) */
    const char *const *peer_urls;
    size_t n_peer_urls;
    int snapshot_fd; /* snapshot: bytes are written here */
    int timeout_ms;  /* this call's deadline; 0: config's */
    /* put under /registry/: the subresource written, "status" (only the
     * status changes) or "binding" (a pod's spec.nodeName, once); NULL or
     * "": the object itself */
    const char *subresource;
    /* access review: verb ("get", "update" ...), resource ("pods",
     * "pods/status"), namespace and name (NULL: any); as_user and
     * as_groups ask for another user (administrators only) */
    const char *verb, *resource, *ns, *name, *as_user;
    const char *const *as_groups;
    size_t n_as_groups;
};

/* Sets op->range_end so the op covers every key starting with op->key
 * (etcd's --prefix; an empty key means all keys).  `buf` (≥ key_len + 1
 * bytes, or 1 byte for an empty key) holds the computed end and must live
 * as long as op is used.  0 or -EINVAL (buffer too small). */
SKIFF_EXPORT int skiff_op_prefix(skiff_op *op, uint8_t *buf, size_t cap);
/* Sets op->range_end to "\0": every key >= op->key (etcd's --from-key). */
SKIFF_EXPORT void skiff_op_from_key(skiff_op *op);

/* ---- results ------------------------------------------------------------- */
typedef struct skiff_member {
    uint64_t id;
    const char *name;
    const char *const *peer_urls;
    size_t n_peer_urls;
    const char *const *client_urls;
    size_t n_client_urls;
    int is_learner;
} skiff_member;

typedef struct skiff_alarm_member {
    uint64_t member_id;
    enum skiff_alarm_type alarm;
} skiff_alarm_member;

typedef struct skiff_status_info {
    const char *version;
    int64_t db_size;
    int64_t db_size_in_use;
    uint64_t leader;
    uint64_t raft_index;
    uint64_t raft_term;
    uint64_t raft_applied_index;
    const char *const *errors;
    size_t n_errors;
    int is_learner;
} skiff_status_info;

typedef struct skiff_result skiff_result;
struct skiff_result {
    skiff_op_type type;
    skiff_header header;
    /* range: kvs; put: prev_kv in kvs[0] when asked for and present;
     * delete: prev_kvs in kvs when asked for */
    skiff_kv *kvs;
    size_t n_kvs;
    int more;      /* range: more keys than returned */
    int64_t count; /* range: keys in range; delete: keys deleted */
    /* txn */
    int succeeded;
    skiff_result *responses; /* one per executed op, same order */
    size_t n_responses;
    /* lease: grant, keepalive, ttl (ttl -1 when not found) */
    int64_t lease_id;
    int64_t ttl;
    int64_t granted_ttl;
    const skiff_kv *lease_keys; /* ttl with SKIFF_LEASE_KEYS: key only */
    size_t n_lease_keys;
    int64_t *leases; /* lease leases: IDs */
    size_t n_leases;
    /* status, hashkv, alarm, member list, snapshot */
    skiff_status_info status;
    uint32_t hash;
    int64_t compact_revision; /* hashkv; also set with SKIFF_ECOMPACTED */
    int64_t hash_revision;
    skiff_alarm_member *alarms;
    size_t n_alarms;
    skiff_member *members; /* member list; member add, remove and promote:
                            * every member after the change */
    size_t n_members;
    skiff_member member;     /* member add: the new member (its ID) */
    uint64_t snapshot_bytes; /* snapshot: bytes written to the fd */
    /* whoami: the user and groups; access review: allowed and why */
    const char *user;
    const char *const *groups;
    size_t n_groups;
    int allowed;
    const char *reason;
    /* error details for a failed call (status < 0) */
    uint64_t leader_hint;      /* with SKIFF_ENOT_LEADER */
    const char *error_message; /* server's message, or NULL */
    /* private */
    void *priv_arena;
};

/* Frees what a result owns (not the struct itself) and zeroes it.  A
 * zeroed result is a no-op.  Any thread. */
SKIFF_EXPORT void skiff_result_free(skiff_result *res);

/* ---- asynchronous requests ----------------------------------------------
 * The caller owns a skiff_req and keeps it alive until its callback has
 * run.  Fields after "private" belong to the library. */
typedef struct skiff_req skiff_req;
typedef void (*skiff_req_cb)(skiff_req *req, int status);

struct skiff_req {
    void *data;          /* the caller's */
    skiff_result result; /* valid inside the callback */
    int64_t start_ns;    /* uv_hrtime() when started */
    int64_t end_ns;      /* uv_hrtime() before the callback */
    int attempts;        /* times sent */
    /* private */
    skiff_req_cb cb;
    skiff_client *client;
    void *conn;
    skiff_req *next, *prev; /* deadline list */
    skiff_req *qnext;       /* wait queue */
    uint64_t stream;
    int64_t deadline_ms;
    int64_t retry_at_ms;
    int64_t wait_since_ms;
    uint64_t send_gen;
    const uint8_t *payload; /* encoded Request (in the arena) */
    size_t payload_len;
    void *arena;
    skiff_op_type type;
    unsigned flags;
    int snapshot_fd;
    int state;
};

/* Starts `op` on an asynchronous client; `cb` runs exactly once, later,
 * from the loop: status 0 with req->result filled, or a negative code (a
 * SKIFF_E* from the server with req->result's error details, SKIFF_EDEADLINE,
 * SKIFF_EUNKNOWN for a write whose fate is unknown, -ECANCELED when the
 * client closed first).  req->result is valid until the callback returns
 * and then freed, unless skiff_req_take_result() took it.  Returns 0 when
 * started; -EINVAL (bad op: nothing is started, cb never runs), -ENOMEM,
 * SKIFF_EFAILED (client closing).  Thousands of requests may be in flight;
 * steady state costs no heap allocation per request.  Loop thread. */
SKIFF_EXPORT int skiff_do(skiff_client *c, skiff_req *req, const skiff_op *op,
                          skiff_req_cb cb);

/* Inside the callback: moves req->result to *out (caller frees it with
 * skiff_result_free). */
SKIFF_EXPORT void skiff_req_take_result(skiff_req *req, skiff_result *out);

/* ---- blocking calls ------------------------------------------------------
 * On a blocking client only (else SKIFF_EWRONG_MODE).  On 0 *res is filled
 * and owned by the caller (skiff_result_free); on error it holds the error
 * details (also to be freed).  Errors as skiff_do plus SKIFF_EWRONG_MODE.
 * res may be NULL when the result is not needed. */
SKIFF_EXPORT int skiff_do_sync(skiff_client *c, const skiff_op *op,
                               skiff_result *res);

/* Convenience wrappers over skiff_do_sync. */
SKIFF_EXPORT int skiff_put(skiff_client *c, const void *key, size_t key_len,
                           const void *val, size_t val_len, int64_t lease,
                           skiff_result *res);
/* A single key, linearizable, latest revision. */
SKIFF_EXPORT int skiff_get(skiff_client *c, const void *key, size_t key_len,
                           skiff_result *res);
/* Every key with this prefix. */
SKIFF_EXPORT int skiff_get_prefix(skiff_client *c, const void *prefix,
                                  size_t prefix_len, skiff_result *res);
/* Deletes [key, range_end) (range_end NULL: key alone). */
SKIFF_EXPORT int skiff_delete(skiff_client *c, const void *key, size_t key_len,
                              const void *range_end, size_t range_end_len,
                              skiff_result *res);
SKIFF_EXPORT int skiff_compact(skiff_client *c, int64_t revision, int physical);
SKIFF_EXPORT int skiff_lease_grant(skiff_client *c, int64_t ttl, int64_t id,
                                   int64_t *id_out, int64_t *ttl_out);
SKIFF_EXPORT int skiff_lease_revoke(skiff_client *c, int64_t id);
/* One keep-alive; *ttl_out gets the renewed TTL. */
SKIFF_EXPORT int skiff_lease_keepalive_once(skiff_client *c, int64_t id,
                                            int64_t *ttl_out);
SKIFF_EXPORT int skiff_status(skiff_client *c, skiff_result *res);
/* Streams a snapshot of the member's database into fd; *bytes_out gets
 * its size.  The request timeout bounds the wait for each chunk, not the
 * whole transfer.  On error fd may hold a partial snapshot. */
SKIFF_EXPORT int skiff_snapshot(skiff_client *c, int fd, uint64_t *bytes_out);

/* ---- cluster membership --------------------------------------------------
 * Blocking calls like the ones above (SKIFF_EWRONG_MODE on an asynchronous
 * client, which uses skiff_do with the SKIFF_OP_MEMBER_* ops).  On 0 *res
 * (may be NULL) holds the header and the members; on error the server's
 * details.  None of the changes is re-sent after a broken connection:
 * SKIFF_EUNKNOWN means it may have been applied (look with member list).
 * Loop thread (the caller's). */

/* Every member, including learners and members that have not started yet
 * (name "" and no client URLs).  Errors as skiff_do_sync. */
SKIFF_EXPORT int skiff_member_list(skiff_client *c, skiff_result *res);
/* Adds a member with these peer URLs (n >= 1, borrowed during the call),
 * as a non-voting learner when is_learner.  res->member has its ID.  Also
 * -EINVAL (no URL), SKIFF_EMEMBER_EXISTS (a URL or the derived ID is
 * taken), SKIFF_EUNHEALTHY_CLUSTER (a voter would leave too few members
 * started for a quorum). */
SKIFF_EXPORT int skiff_member_add(skiff_client *c, const char *const *peer_urls,
                                  size_t n, int is_learner, skiff_result *res);
/* Removes member `id`.  Also -EINVAL (id 0), SKIFF_EMEMBER_NOT_FOUND,
 * SKIFF_EUNHEALTHY_CLUSTER. */
SKIFF_EXPORT int skiff_member_remove(skiff_client *c, uint64_t id,
                                     skiff_result *res);
/* Promotes learner `id` to a voter.  Also -EINVAL (id 0),
 * SKIFF_EMEMBER_NOT_FOUND, SKIFF_EMEMBER_NOT_LEARNER (a voter already),
 * SKIFF_ELEARNER_NOT_READY (still behind the leader: try again later). */
SKIFF_EXPORT int skiff_member_promote(skiff_client *c, uint64_t id,
                                      skiff_result *res);
/* Hands leadership to member `target`.  The request must reach the
 * leader, so this finds it first: Status of each configured endpoint (on
 * a short-lived connection to that endpoint alone), and when none of them
 * is the leader, the leader's client URLs from member list.  If the
 * leadership moves before the request arrives (NOT_LEADER) the search is
 * repeated, twice at most.  *from_out (may be NULL) gets the leader the
 * request was sent to.  The whole call is bounded by the request
 * timeout.  0; -EINVAL (target 0); SKIFF_ENO_LEADER (no endpoint knows a
 * leader, or the leader cannot be reached); SKIFF_ENOT_LEADER (leadership
 * kept moving); SKIFF_EMEMBER_NOT_FOUND (target is not a member); or any
 * error of skiff_do_sync. */
SKIFF_EXPORT int skiff_move_leader(skiff_client *c, uint64_t target,
                                   uint64_t *from_out, skiff_result *res);

/* ---- watches --------------------------------------------------------------
 * A watch survives broken connections: the library re-creates it from the
 * last delivered revision + 1 (or the last progress revision + 1), so the
 * caller sees every event once, in order, with no gap.  It ends only when
 * the caller stops it, the client closes, or the server cancels it (a
 * compacted start revision: SKIFF_ECOMPACTED with compact_revision). */
#define SKIFF_WATCH_NOPUT (1u << 0)    /* filter out puts */
#define SKIFF_WATCH_NODELETE (1u << 1) /* filter out deletes */
#define SKIFF_WATCH_PREV_KV (1u << 2)
#define SKIFF_WATCH_PROGRESS_NOTIFY (1u << 3)

typedef struct skiff_watch_opts {
    const void *key;
    size_t key_len;
    const void *range_end; /* skiff_op conventions */
    size_t range_end_len;
    int64_t start_revision; /* 0: from the next revision */
    unsigned flags;         /* SKIFF_WATCH_* */
} skiff_watch_opts;

typedef enum skiff_event_type {
    SKIFF_EVENT_PUT,
    SKIFF_EVENT_DELETE
} skiff_event_type;

typedef struct skiff_event {
    skiff_event_type type;
    skiff_kv kv;      /* for DELETE: key and mod_revision */
    skiff_kv prev_kv; /* with SKIFF_WATCH_PREV_KV and when known */
    int has_prev_kv;
} skiff_event;

/* One delivery: the events of exactly one revision (n_events > 0,
 * revision = that revision), or a progress notification (n_events == 0:
 * every event at or below `revision` has been delivered), or, once at the
 * start of an asynchronous watch, `created` (n_events == 0; revision = the
 * store's revision when the watch was created). */
typedef struct skiff_watch_resp {
    int64_t revision;
    int created;
    skiff_event *events;
    size_t n_events;
    int64_t compact_revision; /* with status SKIFF_ECOMPACTED */
    skiff_header header;
    void *priv_arena;
} skiff_watch_resp;

typedef struct skiff_watch skiff_watch;
/* status 0: `resp` is a delivery, borrowed until the callback returns.
 * status < 0: the watch has ended (resp may carry compact_revision), this
 * is its last callback and the caller may free `w`: -ECANCELED after
 * skiff_watch_stop() or client close, SKIFF_ECOMPACTED, or another error
 * the library could not recover from. */
typedef void (*skiff_watch_cb)(skiff_watch *w, int status,
                               const skiff_watch_resp *resp);

struct skiff_watch {
    void *data;
    /* private */
    skiff_watch_cb cb;
    skiff_client *client;
    void *conn;
    skiff_watch *next, *prev; /* client's watch list */
    uint64_t stream;
    int64_t watch_id;         /* server's id on the current stream */
    int64_t next_rev;         /* resume point: last delivered + 1 */
    uint8_t *key, *range_end; /* copies (library heap) */
    size_t key_len, range_end_len;
    unsigned flags;
    int state;
    int attempts;
    int announced; /* created was delivered */
    int64_t retry_at_ms;
    int pending_progress;
};

/* Starts a watch on any client (a blocking client delivers while its
 * private loop runs).  cb runs for every delivery and once more, last,
 * with status < 0.  Returns 0, -EINVAL, -ENOMEM,
 * SKIFF_EFAILED.  opts is borrowed during the call; `w` is the caller's
 * until the last callback.  Loop thread. */
SKIFF_EXPORT int skiff_watch_start(skiff_client *c, skiff_watch *w,
                                   const skiff_watch_opts *opts,
                                   skiff_watch_cb cb);
/* Asks the server for one progress notification.  0 or SKIFF_EFAILED
 * (the watch has ended). */
SKIFF_EXPORT int skiff_watch_progress(skiff_watch *w);
/* Ends the watch: its last callback runs later with -ECANCELED.  Calling
 * it on an ended or stopping watch is a no-op. */
SKIFF_EXPORT void skiff_watch_stop(skiff_watch *w);

/* Blocking watches (blocking clients): deliveries are queued inside the
 * handle while the private loop runs. */
typedef struct skiff_watcher skiff_watcher;
/* Opens a watch; it is created on the server before this returns (so a
 * write made after it is seen).  0, -EINVAL, -ENOMEM, SKIFF_EWRONG_MODE,
 * SKIFF_EDEADLINE, or the server's error.  A start revision that is
 * already compacted ends the watch with SKIFF_ECOMPACTED, returned here or
 * by the first skiff_watcher_next (the server may confirm the watch
 * before canceling it). */
SKIFF_EXPORT int skiff_watcher_open(skiff_client *c, skiff_watcher **out,
                                    const skiff_watch_opts *opts);
/* Waits up to timeout_ms (-1: forever) for the next delivery.  0 and *resp
 * filled (caller frees with skiff_watch_resp_free); -ETIMEDOUT when none
 * came; the watch's ending status (SKIFF_ECOMPACTED with
 * resp->compact_revision, ...) once it has ended. */
SKIFF_EXPORT int skiff_watcher_next(skiff_watcher *wr, int timeout_ms,
                                    skiff_watch_resp *resp);
SKIFF_EXPORT int skiff_watcher_progress(skiff_watcher *wr);
/* Stops the watch and frees the handle.  NULL is a no-op. */
SKIFF_EXPORT void skiff_watcher_close(skiff_watcher *wr);
SKIFF_EXPORT void skiff_watch_resp_free(skiff_watch_resp *resp);

/* ---- lease keep-alive ------------------------------------------------------
 * Keeps a lease alive by sending lease_keepalive every TTL/3 (at least
 * every 500 ms), on any live connection. */
typedef struct skiff_keepalive skiff_keepalive;
/* status 0: a renewal, ttl = the granted TTL.  status < 0: the keep-alive
 * ended and will not call again (SKIFF_ELEASE_NOT_FOUND when the lease is
 * gone, -ECANCELED after skiff_keepalive_stop or client close). */
typedef void (*skiff_keepalive_cb)(skiff_keepalive *ka, int status,
                                   int64_t ttl);
struct skiff_keepalive {
    void *data;
    /* private */
    skiff_keepalive_cb cb;
    skiff_client *client;
    skiff_keepalive *next, *prev;
    int64_t id;
    int64_t ttl;
    int64_t next_at_ms;
    int state;
    skiff_req req;
};
/* Starts keeping lease `id` (granted with `ttl` seconds) alive; the first
 * keep-alive goes out at once (from the loop, not inside this call).
 * Works on both kinds of client (on a blocking one it runs while a call
 * or skiff_client_poll runs).  0, -EINVAL, SKIFF_EFAILED.  `ka` must stay
 * valid until its last callback; with cb NULL, until the client is
 * destroyed or closed.  Loop thread. */
SKIFF_EXPORT int skiff_keepalive_start(skiff_client *c, skiff_keepalive *ka,
                                       int64_t id, int64_t ttl,
                                       skiff_keepalive_cb cb);
/* Stops it; the last callback runs later with -ECANCELED. */
SKIFF_EXPORT void skiff_keepalive_stop(skiff_keepalive *ka);

/* ---- informers -------------------------------------------------------------
 * An informer keeps a local copy of every key under a prefix: it lists
 * the prefix, then watches it from the list's revision + 1 and applies
 * each event to its cache before telling the caller.  When the watch
 * cannot continue (its history was compacted, or the server ended it) the
 * informer lists again and reports the difference as ordinary events, so
 * the caller's view converges to the store's without gaps.  The callback
 * sees the informer's state already updated. */
typedef struct skiff_informer skiff_informer;

typedef enum skiff_informer_event {
    SKIFF_INFORMER_ADD = 1, /* kv new in the cache */
    SKIFF_INFORMER_UPDATE,  /* kv replaced old */
    SKIFF_INFORMER_DELETE,  /* old removed (kv NULL) */
    SKIFF_INFORMER_SYNCED,  /* a (re)list has been applied: the cache
                             * matches the store at skiff_informer_revision */
    SKIFF_INFORMER_ENDED    /* last call; status says why (< 0) */
} skiff_informer_event;

/* kv and old are borrowed for the call.  status is 0 except with ENDED:
 * -ECANCELED after skiff_informer_close or client close, or the error that
 * stopped it (a server error on list, e.g. SKIFF_EPERMISSION_DENIED). */
typedef void (*skiff_informer_cb)(skiff_informer *inf, int status,
                                  skiff_informer_event ev, const skiff_kv *kv,
                                  const skiff_kv *old, void *data);

/* Starts an informer on every key with `prefix` (copied).  Works on both
 * kinds of client (a blocking one progresses while its loop runs).  0,
 * -EINVAL, -ENOMEM, SKIFF_EFAILED.  The informer is freed after its ENDED
 * callback.  Loop thread. */
SKIFF_EXPORT int skiff_informer_start(skiff_client *c, skiff_informer **out,
                                      const void *prefix, size_t prefix_len,
                                      skiff_informer_cb cb, void *data);
/* The cached kv of `key`, or NULL; borrowed until the loop runs again. */
SKIFF_EXPORT const skiff_kv *skiff_informer_get(const skiff_informer *inf,
                                                const void *key,
                                                size_t key_len);
/* Number of cached keys, and the revision the cache reflects. */
SKIFF_EXPORT size_t skiff_informer_len(const skiff_informer *inf);
SKIFF_EXPORT int64_t skiff_informer_revision(const skiff_informer *inf);
/* Calls fn for every cached kv (unordered); fn must not change the
 * informer. */
SKIFF_EXPORT void skiff_informer_foreach(const skiff_informer *inf,
                                         void (*fn)(const skiff_kv *kv,
                                                    void *arg),
                                         void *arg);
/* Stops it: the ENDED callback runs later with -ECANCELED, then the
 * informer is freed.  No-op once closing. */
SKIFF_EXPORT void skiff_informer_close(skiff_informer *inf);

#ifdef __cplusplus
}
#endif
#endif /* SKIFF_H */
