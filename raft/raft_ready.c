/*
 * The ready batch: what the driver must persist, send and apply after an
 * input, and the acknowledgements that come back.
 *
 * raft_ready_get hands out pointers into the core (the message queue, slices
 * of the log, the read states) instead of copies; they stay valid because
 * no input may run until raft_advance.  Before filling the batch the leader
 * flushes its pending broadcast, so every proposal made since the last
 * batch travels in one append per follower.
 *
 * Entries handed out for persisting are `offered`; they become `stable`
 * only when the driver says so -- at raft_advance with synchronous storage
 * or through raft_persisted with asynchronous storage.  Committed entries
 * are handed out for applying only up to the stable index, so a member
 * never applies an entry it could lose in a crash, and the hard state's
 * commit index persisted with them never runs ahead of the durable log.
 */
#include "raft_int.h"

static uint64_t apply_limit(const raft *r)
{
    const raft__log *l = &r->log;
    return l->commit < l->stable ? l->commit : l->stable;
}

bool raft_has_ready(const raft *r)
{
    if (r->failed || r->in_ready)
        return false;
    const raft__log *l = &r->log;
    return r->role != r->prev_role || r->lead != r->prev_lead ||
           r->term != r->prev_hs.term || r->vote != r->prev_hs.vote ||
           l->commit != r->prev_hs.commit || r->install_snap ||
           raft__log_last(l) > l->offered || r->n_msgs ||
           apply_limit(r) > l->applied || r->n_read_states ||
           (r->bcast && r->role == RAFT_LEADER);
}

int raft_ready_get(raft *r, raft_ready *rd)
{
    assert(!r->in_ready);
    if (r->failed)
        return RAFT_EFAILED;
    raft__log *l = &r->log;
    memset(rd, 0, sizeof(*rd));
    if (r->bcast && r->role == RAFT_LEADER) {
        int rc = raft__bcast_append(r);
        if (rc)
            return raft__fail(r, rc, "ready");
    }
    r->bcast = false;
    r->read_seq_flushed = r->read_seq;

    rd->role = r->prev_role = r->role;
    rd->lead = r->prev_lead = r->lead;
    raft_hard_state hs = {r->term, r->vote, l->commit};
    if (hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote ||
        hs.commit != r->prev_hs.commit) {
        rd->has_hard_state = true;
        rd->hs = hs;
        r->prev_hs = hs;
    }
    r->rd_snap = r->install_snap;
    if (r->install_snap)
        rd->snapshot = &r->install;
    uint64_t last = raft__log_last(l);
    if (last > l->offered) {
        rd->entries = raft__log_get(l, l->offered + 1);
        rd->n_entries = (size_t)(last - l->offered);
    }
    r->rd_offered = last;
    r->rd_offered_term = raft__log_term(l, last);
    uint64_t hi = apply_limit(r);
    r->rd_applied = l->applied;
    if (hi > l->applied) {
        rd->committed = raft__log_get(l, l->applied + 1);
        rd->n_committed = (size_t)(hi - l->applied);
        r->rd_applied = hi;
    }
    rd->msgs = r->msgs;
    rd->n_msgs = r->rd_n_msgs = r->n_msgs;
    rd->reads = r->read_states;
    rd->n_reads = r->rd_n_reads = r->n_read_states;
    r->in_ready = 1;
    return 0;
}

int raft_advance(raft *r, const raft_ready *rd)
{
    (void)rd;
    assert(r->in_ready);
    r->in_ready = 0;
    for (size_t i = 0; i < r->rd_n_msgs; i++)
        raft_msg_free(&r->msgs[i]);
    r->n_msgs = 0;
    r->n_read_states = 0;
    r->log.offered = r->rd_offered;
    r->log.applied = r->rd_applied;
    if (r->rd_snap)
        r->install_snap = false;
    if (r->failed)
        return RAFT_EFAILED;
    if (!r->cfg.async_storage)
        return raft_persisted(r, r->rd_offered, r->rd_offered_term);
    return 0;
}
