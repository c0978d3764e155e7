/*
 * raft/raft.h -- the Raft consensus core as a pure, deterministic state
 * machine.
 *
 * The core performs no I/O: no sockets, files, clocks, threads or ambient
 * randomness.  A driver feeds it inputs -- raft_step() for a message from a
 * peer, raft_tick() for one unit of logical time, raft_propose() and
 * raft_read_index() for client work, membership and transfer calls -- and
 * then collects a ready batch with raft_ready_get(): hard state and entries to
 * persist, messages to send, a snapshot to install, committed entries to
 * apply and reads that became safe.  The driver carries the batch out and
 * calls raft_advance().  With asynchronous storage it later reports
 * durability with raft_persisted().
 *
 * Threading: a core is single-threaded.  Every function taking a `raft *`
 * must be called from the one thread (the event loop) that owns it.  Blob
 * reference counts are not atomic: only that thread may take or drop
 * references, although other threads may read a blob's bytes while the
 * owning thread holds a reference for them.
 *
 * Persist-before-send: a message with `after_persist` set may only be
 * sent once everything handed out for persisting by this and every earlier
 * ready (hard state, entries, snapshot) is durable.  Messages without the
 * flag (a leader's appends, heartbeats, snapshots and TimeoutNow) may go
 * out at once.  docs/raft.md explains the rules in plain words.
 */
#ifndef SKIFF_RAFT_H
#define SKIFF_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm.h"

/* ---- errors ---------------------------------------------------------------
 * Codes in the -4000..-4999 block; cm_strerror/cm_err_name know them once
 * raft_create has run (or raft_err_init was called). */
#define RAFT_ERRNO_MAP(XX)                                                     \
    XX(RAFT_ENOTLEADER, -4000, "this member is not the leader")                \
    XX(RAFT_EBUSY, -4001, "a membership change or transfer is pending")        \
    XX(RAFT_ECOMPACTED, -4002, "log index is compacted")                       \
    XX(RAFT_EUNAVAILABLE, -4003, "log index is beyond the last entry")         \
    XX(RAFT_ECORRUPT, -4004, "restored state is inconsistent")                 \
    XX(RAFT_ENOTVOTER, -4005, "the target is not a voting member")             \
    XX(RAFT_EFAILED, -4006, "raft core failed earlier and must be rebuilt")    \
    XX(RAFT_ETOOMANY, -4007, "too many members")                               \
    XX(RAFT_EINVAL, -4008, "invalid argument")

enum raft_errno {
#define XX(name, val, msg) name = (val),
    RAFT_ERRNO_MAP(XX)
#undef XX
};

/* Registers the raft error block with cm_err_register.  Idempotent. */
void raft_err_init(void);
/* Message and name of a raft code; NULL when `code` is not one. */
const char *raft_strerror(int code);
const char *raft_err_name(int code);

/* ---- basic types --------------------------------------------------------- */
typedef uint64_t raft_id; /* member id; 0 means "none" */

#define RAFT_MAX_MEMBERS 16 /* voters + learners in one configuration */

/* A reference-counted byte block holding entry payloads.  Entries and
 * messages share blobs instead of copying bytes. */
typedef struct raft_blob raft_blob;

/* Allocates a blob of `len` bytes with one reference.  NULL on ENOMEM. */
raft_blob *raft_blob_create(size_t len);
/* Writable bytes of a blob (the creator fills them before sharing). */
uint8_t *raft_blob_bytes(raft_blob *b);
void raft_blob_ref(raft_blob *b);
/* Drops one reference; the block is freed with the last.  NULL is a no-op. */
void raft_blob_unref(raft_blob *b);

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* opaque application command */
    RAFT_ENTRY_CONF = 1,   /* membership change (raft_conf_change) */
    RAFT_ENTRY_NOOP = 2    /* a new leader's empty entry of its term */
};

/* One log entry.  `buf` points into `blob` (NULL/0 for an empty entry). */
typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint32_t type; /* enum raft_entry_type */
    uint32_t len;
    const uint8_t *buf;
    raft_blob *blob;
} raft_entry;

/* A configuration: who votes and who only follows the log. */
typedef struct raft_conf {
    uint32_t n_voters;
    uint32_t n_learners;
    raft_id voters[RAFT_MAX_MEMBERS];
    raft_id learners[RAFT_MAX_MEMBERS];
} raft_conf;

enum raft_conf_op {
    RAFT_CONF_ADD_VOTER = 1, /* add a voter, or promote a learner */
    RAFT_CONF_ADD_LEARNER = 2,
    RAFT_CONF_REMOVE = 3
};

/* Snapshot metadata: the state machine at `index` (entry term `term`)
 * with configuration `conf`.  The bytes never pass through the core. */
typedef struct raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    raft_conf conf;
} raft_snapshot_meta;

/* State that must be durable before dependent messages go out. */
typedef struct raft_hard_state {
    uint64_t term;
    raft_id vote;
    uint64_t commit;
} raft_hard_state;

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,  /* index/log_term: previous entry */
    RAFT_MSG_APPEND_RESP, /* index: matched (or rejected) index */
    RAFT_MSG_VOTE,        /* index/log_term: candidate's last entry */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_PREVOTE, /* term: the term the candidate would use */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_HEARTBEAT,      /* commit, ctx: read round */
    RAFT_MSG_HEARTBEAT_RESP, /* ctx echoed */
    RAFT_MSG_SNAPSHOT,       /* snap: the snapshot to install */
    RAFT_MSG_TIMEOUT_NOW,    /* leadership transfer: campaign now */
    RAFT_MSG_TYPE_MAX,
    /* Not Raft's: a message between drivers (forwarded proposals, snapshot
     * chunks ...), `ctx` saying which.  The codec and the transport carry
     * it like any other; raft_step ignores it. */
    RAFT_MSG_APP = 64
};

/* A message between cores: a plain struct the transport serialises.
 * Messages handed out by raft_ready_get are borrowed until raft_advance; keep
 * one longer with raft_msg_copy.  A message passed to raft_step is
 * borrowed for the call only (the core takes its own blob references). */
typedef struct raft_msg {
    void *data;    /* free for the driver; the core ignores it */
    uint32_t type; /* enum raft_msg_type */
    uint8_t reject;
    uint8_t after_persist; /* send only after this ready is durable */
    uint8_t force;         /* vote: leadership transfer, bypass lease */
    raft_id from;
    raft_id to;
    uint64_t term;
    uint64_t log_term; /* see enum; reject: hint term */
    uint64_t index;    /* see enum */
    uint64_t commit;
    uint64_t hint; /* append reject: follower's conflict hint index */
    uint64_t ctx;  /* heartbeat read round */
    raft_entry *entries;
    size_t n_entries;
    raft_snapshot_meta snap;
} raft_msg;

/* Deep-copies `src` into `dst` (entries array copied, blobs referenced).
 * 0 or -ENOMEM (dst untouched).  Free with raft_msg_free. */
int raft_msg_copy(raft_msg *dst, const raft_msg *src);
/* Releases what raft_msg_copy allocated; the struct itself is the
 * caller's. */
void raft_msg_free(raft_msg *m);
/* Appends the wire form of `m` to `out`.  0 or -ENOMEM (out unchanged).
 * `after_persist` and `data` are local and not encoded. */
int raft_msg_encode(const raft_msg *m, cm_buf *out);
/* Decodes one message from exactly `len` bytes into `m` (payloads in one
 * new blob; free with raft_msg_free).  0, CM_ECORRUPT (malformed input,
 * nothing allocated) or -ENOMEM. */
int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg *m);
/* Short names for traces ("APPEND", "VOTE_RESP", ...). */
const char *raft_msg_type_name(uint32_t type);
const char *raft_role_name(int role);

/* A read that is now safe: serve it once the state machine has applied
 * `index`.  `ctx` is the caller's value from raft_read_index. */
typedef struct raft_read_state {
    uint64_t ctx;
    uint64_t index;
} raft_read_state;

/* ---- configuration and restore ------------------------------------------ */
typedef struct raft_config {
    raft_id id;                /* this member, non-zero */
    uint64_t seed;             /* seeds election timeout randomisation */
    int election_ticks;        /* default 10; timeout is [e, 2e) ticks */
    int heartbeat_ticks;       /* default 1; must be < election_ticks */
    bool pre_vote;             /* PreVote (Raft thesis 9.6) */
    bool check_quorum;         /* leader steps down without a live quorum */
    bool lease_read;           /* ReadIndex without a round; needs
                                  check_quorum and bounded clock drift */
    bool async_storage;        /* durability reported by raft_persisted */
    size_t max_msg_bytes;      /* payload bytes per append; default 1 MiB */
    size_t max_inflight;       /* append messages in flight per follower;
                                  default 256 */
    size_t max_inflight_bytes; /* 0 = unlimited */
} raft_config;

/* Durable state to start from.  A founding member of a new cluster
 * starts from raft_restore_bootstrap(); a member that joins an existing
 * cluster starts zeroed (empty configuration) and waits for the leader,
 * which sends it a snapshot carrying the configuration. */
typedef struct raft_restore {
    raft_hard_state hs;
    raft_snapshot_meta snap;   /* last durable snapshot (index 0: none) */
    const raft_entry *entries; /* durable entries after snap.index */
    size_t n_entries;
    uint64_t applied; /* last index the state machine applied */
} raft_restore;

typedef struct raft raft;

/* Fills `st` for a founding member: an empty snapshot at index 1, term 1,
 * holding configuration `conf`, so that members joining later learn the
 * founding configuration from a snapshot instead of from the log. */
void raft_restore_bootstrap(raft_restore *st, const raft_conf *conf);

/* Creates a core.  `cfg` is copied; `st` is borrowed for the call (blob
 * references are taken).  Errors: RAFT_EINVAL (bad config), RAFT_ECORRUPT
 * (entries not contiguous, commit or applied beyond the log, applied
 * behind the snapshot), RAFT_ETOOMANY, -ENOMEM.  *out is set on success. */
int raft_create(const raft_config *cfg, const raft_restore *st, raft **out);
/* Frees the core and everything it still references.  NULL is a no-op. */
void raft_destroy(raft *r);

/* ---- inputs -------------------------------------------------------------
 * None of these may be called between raft_ready_get and raft_advance.
 * -ENOMEM either changed nothing (client calls that allocate up front) or
 * left the core failed: every later input returns RAFT_EFAILED and the
 * driver must rebuild the core from durable state. */

/* Handles a message from a peer.  0, RAFT_EFAILED or -ENOMEM. */
int raft_step(raft *r, const raft_msg *m);
/* Advances logical time by one tick.  0, RAFT_EFAILED or -ENOMEM. */
int raft_tick(raft *r);
/* Starts an election now (PreVote first when enabled).  Ignored by
 * leaders and non-voters.  0, RAFT_EFAILED or -ENOMEM. */
int raft_campaign(raft *r);
/* Appends an application command (copied) to the leader's log; the
 * entry's index is stored in *index (may be NULL).  Errors:
 * RAFT_ENOTLEADER (see raft_leader for the hint), RAFT_EBUSY (transfer in
 * progress), RAFT_EINVAL (len above 4 GiB), -ENOMEM, RAFT_EFAILED. */
int raft_propose(raft *r, const void *data, size_t len, uint64_t *index);
/* Proposes `n` commands at once sharing one blob (one allocation); the
 * first entry's index goes to *first_index (may be NULL).  Errors as
 * raft_propose, and RAFT_EINVAL when n is 0. */
int raft_propose_batch(raft *r, const void *const *data, const size_t *len,
                       size_t n, uint64_t *first_index);
/* Proposes a membership change.  Errors: RAFT_ENOTLEADER; RAFT_EBUSY when
 * a change is still uncommitted, a transfer runs, or the leader has not
 * committed an entry of its term yet; RAFT_EINVAL when the change makes
 * no sense (adding a member twice, removing a stranger, demoting a voter,
 * leaving no voter); RAFT_ETOOMANY; -ENOMEM. */
int raft_propose_conf(raft *r, enum raft_conf_op op, raft_id node,
                      uint64_t *index);
/* The same, with `ctx_len` bytes of context stored after the change in the
 * entry (the core ignores them; a server keeps the new member's addresses
 * there).  RAFT_EINVAL also when the context is too large. */
int raft_propose_conf_ctx(raft *r, enum raft_conf_op op, raft_id node,
                          const void *ctx, size_t ctx_len, uint64_t *index);
/* Requests a linearizable read.  `ctx` comes back in a raft_read_state
 * once the read is safe.  Errors: RAFT_ENOTLEADER, -ENOMEM, RAFT_EFAILED.
 * Reads pending when the leader steps down are dropped silently; the
 * driver times them out. */
int raft_read_index(raft *r, uint64_t ctx);
/* Hands leadership to `to`.  Errors: RAFT_ENOTLEADER, RAFT_ENOTVOTER
 * (`to` is a learner or a stranger), RAFT_EBUSY (another transfer runs).
 * The transfer aborts after an election timeout. */
int raft_transfer_leader(raft *r, raft_id to);
/* Reports the end of streaming a snapshot to `to`: ok or failed.  The
 * leader probes `to` again after its next heartbeat answer.  0 or
 * RAFT_EFAILED. */
int raft_report_snapshot(raft *r, raft_id to, bool ok);
/* Reports that `to` could not be reached (the transport gave up); the
 * leader goes back to probing it.  0 or RAFT_EFAILED. */
int raft_report_unreachable(raft *r, raft_id to);
/* Tells the core that the application took a snapshot at `index` (which
 * must be applied); the log up to `index` is dropped.  Errors:
 * RAFT_ECOMPACTED (already compacted), RAFT_EUNAVAILABLE (not applied or
 * not durable yet). */
int raft_compact(raft *r, uint64_t index);
/* Async storage: entries up to `index` with term `term`, and every hard
 * state and snapshot handed out before them, are durable.  A stale report
 * (the log moved on) is ignored.  0 or RAFT_EFAILED. */
int raft_persisted(raft *r, uint64_t index, uint64_t term);

/* ---- output -------------------------------------------------------------- */
typedef struct raft_ready {
    int role; /* current role and leader (soft state) */
    raft_id lead;
    bool has_hard_state;
    raft_hard_state hs;
    const raft_snapshot_meta *snapshot; /* to install first, or NULL */
    const raft_entry *entries; /* to persist; entries[0].index and later
                                  replace whatever the log held there */
    size_t n_entries;
    const raft_msg *msgs;
    size_t n_msgs;
    const raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    const raft_read_state *reads;
    size_t n_reads;
} raft_ready;

/* True when raft_ready_get would hand out something. */
bool raft_has_ready(const raft *r);
/* Fills `rd`.  Everything it points to is borrowed until raft_advance;
 * take blob references or raft_msg_copy to keep parts longer.
 * 0, RAFT_EFAILED or -ENOMEM. */
int raft_ready_get(raft *r, raft_ready *rd);
/* Releases the batch.  Without async storage this also declares it
 * durable.  0, RAFT_EFAILED or -ENOMEM. */
int raft_advance(raft *r, const raft_ready *rd);

/* ---- inspection ---------------------------------------------------------- */
typedef struct raft_status {
    raft_id id;
    int role;
    uint64_t term;
    raft_id vote;
    raft_id lead;
    uint64_t commit;
    uint64_t applied;     /* handed out for applying */
    uint64_t first_index; /* first entry still in memory */
    uint64_t last_index;
    uint64_t stable; /* durable up to */
    raft_id transferee;
    raft_conf conf;      /* effective configuration */
    uint64_t conf_index; /* its entry's index (0: from the snapshot) */
} raft_status;

void raft_status_get(const raft *r, raft_status *st);
/* Leader hint (0 if unknown). */
raft_id raft_leader(const raft *r);
/* Term of the entry at `index`: 0, RAFT_ECOMPACTED or RAFT_EUNAVAILABLE. */
int raft_term_at(const raft *r, uint64_t index, uint64_t *term);
/* Metadata of the last snapshot (raft_compact's or an installed one);
 * index 0 when there is none. */
void raft_snapshot_get(const raft *r, raft_snapshot_meta *out);
/* The entry at `index`, borrowed until the next input. */
int raft_entry_at(const raft *r, uint64_t index, const raft_entry **e);
/* Progress of `peer` as the leader sees it; 0 or RAFT_EINVAL. */
int raft_progress_get(const raft *r, raft_id peer, uint64_t *match,
                      uint64_t *next, int *state);
/* The last error message of the core ("" if none). */
const char *raft_errmsg(const raft *r);

/* Encodes a membership change payload (9 bytes) and decodes one (any
 * bytes after the first 9 are the proposer's context): 0 or RAFT_EINVAL. */
#define RAFT_CONF_CHANGE_LEN 9
void raft_conf_change_encode(uint8_t out[RAFT_CONF_CHANGE_LEN],
                             enum raft_conf_op op, raft_id node);
int raft_conf_change_decode(const uint8_t *buf, size_t len,
                            enum raft_conf_op *op, raft_id *node);
/* Applies a change to a configuration: 0, RAFT_EINVAL or RAFT_ETOOMANY. */
int raft_conf_apply(raft_conf *c, enum raft_conf_op op, raft_id node);
bool raft_conf_is_voter(const raft_conf *c, raft_id id);
bool raft_conf_is_learner(const raft_conf *c, raft_id id);

#endif /* SKIFF_RAFT_H */
