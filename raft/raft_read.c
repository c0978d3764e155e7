/*
 * ReadIndex: linearizable reads without writing the log (thesis 6.4).
 *
 * The leader records its commit index when a read arrives, then confirms
 * it is still the leader by a round of heartbeats acknowledged by a
 * quorum; after that the read may be served once the state machine has
 * applied the recorded index.  Rounds are numbered (`read_seq`) and the
 * number rides in every heartbeat's `ctx`; a follower echoes it.  All
 * reads that arrive before a round's heartbeats leave (before the next
 * ready) join that round, so many reads share one round trip.  Periodic
 * heartbeats carry the latest round number too and confirm it as well.
 *
 * A new leader does not know the true commit index until it commits an
 * entry of its own term (its no-op), so reads arriving before that wait
 * and get the commit index of that moment (thesis 6.4 step 1).
 *
 * Lease reads (config.lease_read, only with CheckQuorum) skip the round:
 * followers refuse to vote while they hear from a leader, so the leader
 * may answer at once.  This assumes every member's ticks advance at about
 * the same rate and the leader is not paused longer than an election
 * timeout without noticing; a paused leader would serve stale reads.
 */
#include "raft_int.h"

static int push_state(raft *r, uint64_t ctx, uint64_t index)
{
    if (r->n_read_states == r->cap_read_states) {
        size_t cap = r->cap_read_states ? 2 * r->cap_read_states : 16;
        raft_read_state *v = cm_realloc(r->read_states, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        r->read_states = v;
        r->cap_read_states = cap;
    }
    r->read_states[r->n_read_states++] = (raft_read_state){ctx, index};
    return 0;
}

/* The round a read arriving now joins: the current one if its heartbeats
 * have not left yet, else a new one whose heartbeats are queued now. */
static int join_round(raft *r, uint64_t *seq)
{
    if (r->read_seq > r->read_seq_flushed) {
        *seq = r->read_seq;
        return 0;
    }
    r->read_seq++;
    *seq = r->read_seq;
    return raft__bcast_heartbeat(r);
}

static bool committed_in_term(const raft *r)
{
    return raft__log_term(&r->log, r->log.commit) == r->term;
}

void raft__reads_clear(raft *r)
{
    r->n_reads = 0;
}

int raft__read_on_ack(raft *r)
{
    uint64_t acked = raft__quorum_read_ack(r);
    size_t k = 0;
    while (k < r->n_reads && r->reads[k].seq && r->reads[k].seq <= acked) {
        int rc = push_state(r, r->reads[k].ctx, r->reads[k].index);
        if (rc) {
            memmove(r->reads, r->reads + k,
                    (r->n_reads - k) * sizeof(*r->reads));
            r->n_reads -= k;
            return rc;
        }
        k++;
    }
    if (k) {
        memmove(r->reads, r->reads + k, (r->n_reads - k) * sizeof(*r->reads));
        r->n_reads -= k;
    }
    return 0;
}

int raft__read_on_commit(raft *r)
{
    if (r->n_reads == 0 || r->reads[0].seq != 0 || !committed_in_term(r))
        return 0;
    uint64_t seq;
    int rc = join_round(r, &seq);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->n_reads && r->reads[i].seq == 0; i++) {
        r->reads[i].seq = seq;
        r->reads[i].index = r->log.commit;
    }
    return raft__read_on_ack(r);
}

int raft_read_index(raft *r, uint64_t ctx)
{
    assert(!r->in_ready);
    if (r->failed)
        return RAFT_EFAILED;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    bool ready = committed_in_term(r);
    int rc;
    if (ready && r->cfg.lease_read) {
        rc = push_state(r, ctx, r->log.commit);
        return rc ? raft__fail(r, rc, "read_index") : 0;
    }
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads ? 2 * r->cap_reads : 16;
        raft__read *v = cm_realloc(r->reads, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        r->reads = v;
        r->cap_reads = cap;
    }
    raft__read rd = {.ctx = ctx};
    if (ready) {
        rc = join_round(r, &rd.seq);
        if (rc)
            return raft__fail(r, rc, "read_index");
        rd.index = r->log.commit;
    }
    r->reads[r->n_reads++] = rd;
    rc = raft__read_on_ack(r);
    return rc ? raft__fail(r, rc, "read_index") : 0;
}
