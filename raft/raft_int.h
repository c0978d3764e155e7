/*
 * raft/raft_int.h -- internal declarations shared by the core's files:
 * the in-memory log, per-peer progress, and `struct raft` itself.
 */
#ifndef SKIFF_RAFT_INT_H
#define SKIFF_RAFT_INT_H

#include "raft.h"

#include "cm.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct raft_blob {
    uint32_t refs;
    uint32_t pad;
    size_t len;
    /* bytes follow */
};

/* ---- log ------------------------------------------------------------------
 * Entries after the snapshot, contiguous in one array: ents[head + k] has
 * index snap_index + 1 + k.  `offered` is the last index handed out for
 * persisting, `stable` the last one reported durable, `applied` the last
 * one handed out for applying. */
typedef struct raft__log {
    raft_entry *ents;
    size_t head, n, cap;
    uint64_t snap_index, snap_term;
    uint64_t offered;
    uint64_t stable;
    uint64_t commit;
    uint64_t applied;
} raft__log;

int raft__log_init(raft__log *l, uint64_t snap_index, uint64_t snap_term);
void raft__log_close(raft__log *l);
static inline uint64_t raft__log_last(const raft__log *l)
{
    return l->snap_index + l->n;
}
static inline uint64_t raft__log_first(const raft__log *l)
{
    return l->snap_index + 1;
}
static inline raft_entry *raft__log_get(const raft__log *l, uint64_t i)
{
    return &l->ents[l->head + (i - l->snap_index - 1)];
}
/* Term at `i`, 0 when unknown (compacted or beyond the end). */
uint64_t raft__log_term(const raft__log *l, uint64_t i);
uint64_t raft__log_last_term(const raft__log *l);
/* 0, RAFT_ECOMPACTED or RAFT_EUNAVAILABLE. */
int raft__log_term_at(const raft__log *l, uint64_t i, uint64_t *t);
/* Appends a copy of `e` (taking a blob reference).  The index must be
 * last + 1.  0 or -ENOMEM. */
int raft__log_append(raft__log *l, const raft_entry *e);
/* Makes room for `n` more entries.  0 or -ENOMEM. */
int raft__log_reserve(raft__log *l, size_t n);
/* Drops entries with index >= i (i > commit).  Adjusts offered/stable. */
void raft__log_truncate(raft__log *l, uint64_t i);
/* Drops entries up to and including i (i <= last); snap_term becomes the
 * term at i. */
void raft__log_compact(raft__log *l, uint64_t i);
/* Drops every entry and restarts the log after a snapshot. */
void raft__log_reset(raft__log *l, uint64_t snap_index, uint64_t snap_term);
/* Largest index <= i whose term is <= t (Raft's fast backtracking). */
uint64_t raft__log_find_conflict_by_term(const raft__log *l, uint64_t i,
                                         uint64_t t);
/* Candidate's log at least as up to date as ours (Raft 5.4.1). */
bool raft__log_up_to_date(const raft__log *l, uint64_t index, uint64_t term);

/* ---- progress ------------------------------------------------------------ */
enum raft__pr_state { PR_PROBE = 0, PR_REPLICATE, PR_SNAPSHOT };

typedef struct raft__inflights {
    uint64_t *idx;
    uint64_t *bytes;
    size_t start, count, cap;
    uint64_t total_bytes;
} raft__inflights;

typedef struct raft__progress {
    raft_id id;
    uint8_t state;
    uint8_t learner;
    uint8_t probe_sent;
    uint8_t recent_active;
    uint8_t vote; /* 0 none, 1 granted, 2 rejected */
    uint64_t match, next;
    uint64_t pending_snapshot;
    uint64_t sent_commit; /* last commit index told to this peer */
    uint64_t read_ack;    /* highest read round acknowledged */
    raft__inflights ins;
} raft__progress;

#define RAFT__MAX_PRS (2 * RAFT_MAX_MEMBERS)

/* ---- reads --------------------------------------------------------------- */
typedef struct raft__read {
    uint64_t ctx;
    uint64_t index;
    uint64_t seq; /* read round; 0 until the leader commits in its term */
} raft__read;

/* ---- the core ------------------------------------------------------------ */
struct raft {
    raft_config cfg;
    raft_id id;
    int failed;
    int in_ready;
    char errmsg[160];
    cm_rand rng;

    uint64_t term;
    raft_id vote;
    raft_id lead;
    int role;
    int election_elapsed;
    int heartbeat_elapsed;
    int randomized_timeout;
    raft_id transferee;

    raft__log log;

    raft_conf conf;          /* effective: the latest in the log */
    uint64_t conf_index;     /* index of that conf entry, 0 if the snapshot's */
    raft_snapshot_meta snap; /* last snapshot (index 0: none) */

    raft__progress prs[RAFT__MAX_PRS];
    size_t n_prs;
    uint64_t *ins_mem; /* inflight rings of all slots */

    /* ready bookkeeping */
    raft_msg *msgs;
    size_t n_msgs, cap_msgs;
    raft_hard_state prev_hs;
    int prev_role;
    raft_id prev_lead;
    bool bcast;        /* leader: send appends at the next ready */
    bool install_snap; /* a received snapshot awaits install */
    raft_snapshot_meta install;
    /* what the outstanding ready handed out */
    uint64_t rd_offered, rd_offered_term, rd_applied;
    size_t rd_n_msgs, rd_n_reads;
    bool rd_snap;

    /* ReadIndex */
    raft__read *reads;
    size_t n_reads, cap_reads;
    raft_read_state *read_states;
    size_t n_read_states, cap_read_states;
    uint64_t read_seq;         /* last read round started */
    uint64_t read_seq_flushed; /* last round whose heartbeats went out */
};

/* raft.c */
void raft__become_follower(raft *r, uint64_t term, raft_id lead);
int raft__fail(raft *r, int rc, const char *what);
bool raft__is_voter(const raft *r, raft_id id);
uint64_t raft__quorum(const raft *r);

/* raft_progress.c */
raft__progress *raft__pr(raft *r, raft_id id);
int raft__prs_rebuild(raft *r);
void raft__prs_reset(raft *r);
void raft__pr_become_probe(raft__progress *pr);
void raft__pr_become_replicate(raft__progress *pr);
void raft__pr_become_snapshot(raft__progress *pr, uint64_t snap_index);
bool raft__pr_maybe_update(raft__progress *pr, uint64_t n);
bool raft__pr_maybe_decr(raft__progress *pr, uint64_t rejected,
                         uint64_t match_hint);
bool raft__pr_paused(const raft *r, const raft__progress *pr);
void raft__ins_add(raft__progress *pr, uint64_t idx, uint64_t bytes);
void raft__ins_free_le(raft__progress *pr, uint64_t idx);
void raft__ins_free_first(raft__progress *pr);
void raft__ins_reset(raft__progress *pr);
/* Highest index matched by a quorum of voters. */
uint64_t raft__quorum_match(raft *r);
/* 1 won, -1 lost, 0 pending. */
int raft__tally_votes(raft *r);
bool raft__quorum_active(raft *r);
/* Largest read round acknowledged by a quorum of voters. */
uint64_t raft__quorum_read_ack(raft *r);

/* raft_repl.c */
int raft__send(raft *r, raft_msg *m);
int raft__send_append(raft *r, raft__progress *pr, bool allow_empty);
int raft__bcast_append(raft *r);
int raft__bcast_heartbeat(raft *r);
int raft__maybe_commit(raft *r);
int raft__leader_append(raft *r, raft_entry *ents, size_t n);
int raft__handle_append(raft *r, const raft_msg *m);
int raft__handle_heartbeat(raft *r, const raft_msg *m);
int raft__handle_snapshot(raft *r, const raft_msg *m);
int raft__leader_step(raft *r, const raft_msg *m);
int raft__commit_to(raft *r, uint64_t commit);

/* raft_read.c */
int raft__read_on_commit(raft *r);
int raft__read_on_ack(raft *r);
void raft__reads_clear(raft *r);

/* raft_conf.c */
int raft__conf_on_append(raft *r, const raft_entry *e);
int raft__conf_on_truncate(raft *r);
int raft__conf_at(const raft *r, uint64_t index, raft_conf *out);
int raft__conf_on_commit(raft *r);

#endif /* SKIFF_RAFT_INT_H */
