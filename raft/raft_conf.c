/*
 * Membership changes and leadership transfer.
 *
 * Membership changes one member at a time (thesis 4.1): any majority of
 * the old configuration overlaps any majority of the new one, so no joint
 * consensus is needed.  Each member uses the latest configuration in its
 * log, committed or not, and falls back to an earlier one when a conflict
 * truncates the entry away; this is what keeps single-member changes safe
 * when members are several changes apart.  The leader accepts a change only
 * when the previous one is committed and it has committed an entry of its
 * own term (the fix to the thesis' algorithm posted on raft-dev in 2015),
 * so at most one change is ever pending.
 *
 * Learners receive the log but neither vote in quorums nor campaign.  A
 * learner is promoted by adding it as a voter.  A leader that removes
 * itself keeps leading until the change commits (it does not count its own
 * vote in the new configuration), then hands over with TimeoutNow to a
 * voter whose log is complete and steps down.
 *
 * Leadership transfer (thesis 3.10): the leader stops taking proposals,
 * brings the target up to date, then sends TimeoutNow, on which the target
 * campaigns at once, skipping PreVote and overriding leader stickiness.
 * Only voters can be targets.  A transfer that has not finished within an
 * election timeout is abandoned (raft.c's tick).
 */
#include "raft_int.h"

#include <string.h>

static int apply_entry(raft_conf *c, const raft_entry *e)
{
    enum raft_conf_op op;
    raft_id node;
    int rc = raft_conf_change_decode(e->buf, e->len, &op, &node);
    if (rc)
        return rc;
    return raft_conf_apply(c, op, node);
}

int raft__conf_on_append(raft *r, const raft_entry *e)
{
    /* Entries that do not apply cleanly were validated by the leader that
     * proposed them against the same configuration; ignore them. */
    if (apply_entry(&r->conf, e) == 0) {
        r->conf_index = e->index;
        int rc = raft__prs_rebuild(r);
        if (rc)
            return rc;
    } else {
        r->conf_index = e->index;
    }
    if (r->role == RAFT_LEADER)
        r->bcast = true;
    return 0;
}

int raft__conf_at(const raft *r, uint64_t index, raft_conf *out)
{
    const raft__log *l = &r->log;
    *out = r->snap.conf;
    if (index > raft__log_last(l))
        index = raft__log_last(l);
    for (uint64_t i = l->snap_index + 1; i <= index; i++) {
        const raft_entry *e = raft__log_get(l, i);
        if (e->type == RAFT_ENTRY_CONF)
            apply_entry(out, e);
    }
    return 0;
}

int raft__conf_on_truncate(raft *r)
{
    const raft__log *l = &r->log;
    if (r->conf_index <= raft__log_last(l))
        return 0;
    raft__conf_at(r, raft__log_last(l), &r->conf);
    r->conf_index = 0;
    for (uint64_t i = raft__log_last(l); i > l->snap_index; i--)
        if (raft__log_get(l, i)->type == RAFT_ENTRY_CONF) {
            r->conf_index = i;
            break;
        }
    return raft__prs_rebuild(r);
}

int raft__conf_on_commit(raft *r)
{
    if (r->role != RAFT_LEADER || raft__is_voter(r, r->id) ||
        r->log.commit < r->conf_index)
        return 0;
    /* Our removal is committed: hand over to a voter whose log is
     * complete, so the cluster need not wait for an election timeout,
     * then step down (thesis 4.2.2). */
    raft__progress *best = NULL;
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft__progress *pr = raft__pr(r, r->conf.voters[k]);
        if (pr && pr->match == raft__log_last(&r->log) &&
            (!best || pr->id < best->id))
            best = pr;
    }
    int rc = 0;
    if (best) {
        raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = best->id};
        rc = raft__send(r, &m);
    }
    raft__become_follower(r, r->term, 0);
    return rc;
}

int raft_propose_conf(raft *r, enum raft_conf_op op, raft_id node,
                      uint64_t *index)
{
    return raft_propose_conf_ctx(r, op, node, NULL, 0, index);
}

int raft_propose_conf_ctx(raft *r, enum raft_conf_op op, raft_id node,
                          const void *ctx, size_t ctx_len, uint64_t *index)
{
    assert(!r->in_ready);
    if (r->failed)
        return RAFT_EFAILED;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee || r->conf_index > r->log.commit ||
        raft__log_term(&r->log, r->log.commit) != r->term)
        return RAFT_EBUSY;
    raft_conf c = r->conf;
    int rc = raft_conf_apply(&c, op, node);
    if (rc)
        return rc;
    if (ctx_len > UINT32_MAX - RAFT_CONF_CHANGE_LEN)
        return RAFT_EINVAL;
    raft_blob *b = raft_blob_create(RAFT_CONF_CHANGE_LEN + ctx_len);
    if (!b)
        return -ENOMEM;
    raft_conf_change_encode(raft_blob_bytes(b), op, node);
    if (ctx_len)
        memcpy(raft_blob_bytes(b) + RAFT_CONF_CHANGE_LEN, ctx, ctx_len);
    rc = raft__log_reserve(&r->log, 1);
    if (rc) {
        raft_blob_unref(b);
        return rc;
    }
    raft_entry e = {.type = RAFT_ENTRY_CONF,
                    .len = (uint32_t)(RAFT_CONF_CHANGE_LEN + ctx_len),
                    .buf = raft_blob_bytes(b),
                    .blob = b};
    rc = raft__leader_append(r, &e, 1);
    raft_blob_unref(b);
    if (rc)
        return raft__fail(r, rc, "propose_conf");
    if (index)
        *index = e.index;
    return 0;
}

int raft_transfer_leader(raft *r, raft_id to)
{
    assert(!r->in_ready);
    if (r->failed)
        return RAFT_EFAILED;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (to == r->id)
        return 0;
    if (!raft__is_voter(r, to))
        return RAFT_ENOTVOTER;
    if (r->transferee == to)
        return 0;
    if (r->transferee)
        return RAFT_EBUSY;
    raft__progress *pr = raft__pr(r, to);
    r->transferee = to;
    r->election_elapsed = 0;
    int rc;
    if (pr->match == raft__log_last(&r->log)) {
        raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
        rc = raft__send(r, &m);
    } else {
        rc = raft__send_append(r, pr, true);
    }
    return rc ? raft__fail(r, rc, "transfer_leader") : 0;
}
