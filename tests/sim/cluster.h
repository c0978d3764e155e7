/*
 * tests/sim/cluster.h -- a simulated cluster of raft cores: a fake network
 * (in-flight messages that can be delivered in any order, dropped,
 * duplicated or blocked by partitions), a fake disk per member (a FIFO of
 * pending writes that a crash loses), a register state machine, and a
 * checker of Raft's safety properties.  The random simulator (sim.c), the
 * scenario runner and the unit tests all drive cores through it.
 */
#ifndef SKIFF_SIM_CLUSTER_H
#define SKIFF_SIM_CLUSTER_H

#include "raft.h"

#include "cm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_MAX_NODES 10

/* One pending disk write: the durable parts of one ready batch and the
 * messages that wait for it. */
typedef struct sim_write {
    bool has_hs;
    raft_hard_state hs;
    bool has_snap;
    raft_snapshot_meta snap;
    uint64_t snap_value;
    raft_entry *ents;
    size_t n_ents;
    raft_msg *msgs;
    size_t n_msgs;
} sim_write;

typedef struct sim_node {
    raft_id id;    /* 0: empty slot */
    raft *r;       /* NULL while crashed */
    int tick_rate; /* out of 4: clock skew */
    bool hold;     /* disk writes wait for sim_persist */
    bool joined;   /* seen in a committed configuration */
    int pre_vote;  /* -1: cluster default; 0/1: override at restart */
    /* durable state */
    raft_hard_state hs;
    raft_snapshot_meta snap;
    uint64_t snap_value;
    raft_entry *log; /* entries after snap.index */
    size_t n_log, cap_log;
    /* the state machine (durable at apply, like LMDB + applied index) */
    uint64_t applied;
    uint64_t value;
    /* snapshot bytes received and waiting for the core to install */
    uint64_t recv_snap_index, recv_snap_value;
    /* pending writes */
    sim_write *wq;
    size_t n_wq, cap_wq;
    /* checker state */
    uint64_t max_commit; /* in-memory commit seen in this life */
    uint64_t la_term, la_last, la_last_term; /* leader append-only */
    int last_role;
} sim_node;

typedef struct sim_net_msg {
    raft_msg m;
    uint64_t snap_value;
    uint64_t seq; /* order of sending */
} sim_net_msg;

typedef struct sim_opts {
    int n; /* initial voters, ids 1..n */
    uint64_t seed;
    raft_config cfg;   /* template; id and seed are filled per node */
    bool trace_stdout; /* print every trace line */
} sim_opts;

typedef struct sim_cluster {
    sim_opts o;
    cm_rand rng;
    sim_node nodes[SIM_MAX_NODES];
    raft_id next_id;
    sim_net_msg **net; /* in send order */
    size_t n_net, cap_net;
    uint64_t net_seq;
    cm_buf wire; /* scratch for encoding messages */
    bool blocked[SIM_MAX_NODES][SIM_MAX_NODES]; /* by slot */
    uint64_t step;
    uint64_t next_value; /* unique register writes */
    uint64_t next_read;
    /* checker tables */
    raft_id *term_leader;
    size_t cap_term_leader;
    struct sim_ent_slot {
        uint8_t n;
        struct {
            uint64_t term, hash, prev;
        } v[4];
    } * ents; /* per index: every (term, payload, previous term) seen */
    size_t cap_ents;
    struct sim_commit {
        uint64_t term; /* term of the committed entry */
        uint64_t obs;  /* lowest term in which its commit was seen */
    } * commits;
    size_t cap_commit;
    uint64_t max_commit;  /* highest index known committed anywhere */
    uint64_t *read_floor; /* per read ctx: max_commit at request */
    size_t cap_reads;
    struct sim_answer {
        raft_id node;
        uint64_t ctx, index;
    } answers[64]; /* reads answered since sim_take_answers (scenarios) */
    size_t n_answers;
    int stat_live_rounds; /* rounds the liveness phase needed */
    uint64_t stat_commits, stat_reads, stat_elections, stat_snapshots;
    /* failure */
    int failed;
    char err[512];
    char (*trace)[200];
    size_t trace_n;
} sim_cluster;

/* Creates a cluster of o->n voters.  0 or a negative code. */
int sim_create(const sim_opts *o, sim_cluster **out);
void sim_destroy(sim_cluster *c);

/* Slot of member `id`, or -1. */
int sim_slot(const sim_cluster *c, raft_id id);
/* Adds a fresh member (empty log, empty configuration) with a new id;
 * returns its slot or -1. */
int sim_add_node(sim_cluster *c);
/* Removes a member's process and state for good. */
void sim_remove_node(sim_cluster *c, int slot);
/* Crash: the core and every pending write are lost. */
void sim_crash(sim_cluster *c, int slot);
/* Restart from durable state.  0 or an error. */
int sim_restart(sim_cluster *c, int slot);

/* Drains the ready batches of a member: writes are queued (and completed
 * at once unless the member holds its disk), early messages go on the
 * network, committed entries are applied, reads are checked. */
int sim_process(sim_cluster *c, int slot);
int sim_process_all(sim_cluster *c);
/* Completes up to `n` pending writes of a member. */
int sim_persist(sim_cluster *c, int slot, size_t n);

/* Delivers network message k (removed from the network unless `dup`). */
int sim_deliver(sim_cluster *c, size_t k, bool dup);
/* Drops network message k (reporting a failed snapshot to its sender). */
void sim_drop(sim_cluster *c, size_t k);
/* Blocks or unblocks the link a -> b (slots). */
void sim_block(sim_cluster *c, int a, int b, bool blocked);
void sim_heal(sim_cluster *c);

/* Client operations on a member.  Return the core's code. */
int sim_propose(sim_cluster *c, int slot, uint64_t *index);
/* Proposes without draining the ready batch (proposals then share
 * messages); call sim_process afterwards. */
int sim_propose_nowait(sim_cluster *c, int slot, uint64_t *index);
int sim_read(sim_cluster *c, int slot, uint64_t *ctx);
int sim_compact(sim_cluster *c, int slot);

/* Checks every invariant; nonzero (and c->err set) on violation. */
int sim_check(sim_cluster *c);
/* Slot of the leader with the highest term, or -1. */
int sim_leader(const sim_cluster *c);

/* Stops members that a committed configuration no longer lists. */
void sim_gc_removed(sim_cluster *c);
/* Runs with everything connected and no faults until a leader is elected
 * and a fresh proposal is committed by a quorum; 0 or -1 after
 * `max_rounds` rounds of (deliver everything, tick everyone). */
int sim_stabilize_liveness(sim_cluster *c, int max_rounds);
/* Delivers messages and completes writes until nothing is left (bounded). */
int sim_settle(sim_cluster *c);

void sim_trace(sim_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_dump_trace(const sim_cluster *c, FILE *f);
/* Formats a message for traces and scenario output. */
void sim_msg_str(const raft_msg *m, char *buf, size_t cap);
int sim_fail(sim_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* SKIFF_SIM_CLUSTER_H */
