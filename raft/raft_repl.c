/*
 * Log replication: the leader's side (appends, heartbeats, snapshots,
 * commit) and the follower's side (accepting appends and snapshots).
 *
 * The leader appends proposals to its own log at once but sends nothing
 * until the driver asks for a ready batch; then one append per follower
 * carries everything new, so proposals made between two readies share
 * messages (batching).  Followers in the replicate state get pipelined
 * appends up to the inflight window; followers in probe get one append at
 * a time.  A rejection carries the follower's hint (the last index at or
 * below the rejected one whose term is not newer than the leader's
 * previous term), so the leader skips a whole conflicting term per round
 * trip instead of one entry (paper 5.3, "fast backtracking").
 *
 * Commit (paper 5.4.2, Figure 8): the leader commits the highest index
 * stored on a quorum of voters, counting itself only up to what it has
 * persisted, and only when that entry is of its own term; older entries
 * commit with it by the log matching property.
 *
 * A follower never lets its commit index pass the last entry the current
 * message proved to match (paper Figure 2: min(leaderCommit, index of last
 * new entry)); entries beyond may be stale leftovers.  Heartbeats carry
 * min(commit, match) for the same reason.
 */
#include "raft_int.h"

/* ---- sending ------------------------------------------------------------- */

static bool leader_may_send_early(const raft *r, uint32_t type)
{
    /* The leader's own entries and term are already safe to announce:
     * its term was durable before any vote for it, and it counts its own
     * entries only once persisted (thesis 10.2.1). */
    return r->role == RAFT_LEADER &&
           (type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
            type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW);
}

int raft__send(raft *r, raft_msg *m)
{
    if (r->n_msgs == r->cap_msgs) {
        size_t cap = r->cap_msgs ? 2 * r->cap_msgs : 16;
        raft_msg *v = cm_realloc(r->msgs, cap * sizeof(*v));
        if (!v) {
            raft_msg_free(m);
            return -ENOMEM;
        }
        r->msgs = v;
        r->cap_msgs = cap;
    }
    m->from = r->id;
    if (m->term == 0)
        m->term = r->term;
    m->after_persist = !leader_may_send_early(r, m->type);
    r->msgs[r->n_msgs++] = *m;
    return 0;
}

static int send_snapshot(raft *r, raft__progress *pr)
{
    raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .to = pr->id, .snap = r->snap};
    raft__pr_become_snapshot(pr, r->snap.index);
    return raft__send(r, &m);
}

int raft__send_append(raft *r, raft__progress *pr, bool allow_empty)
{
    raft__log *l = &r->log;
    if (pr->id == r->id || raft__pr_paused(r, pr))
        return 0;
    uint64_t prev = pr->next - 1;
    if (prev < l->snap_index)
        return send_snapshot(r, pr);
    uint64_t last = raft__log_last(l);
    size_t n = 0;
    uint64_t bytes = 0;
    while (prev + n < last) {
        const raft_entry *e = raft__log_get(l, prev + n + 1);
        if (n > 0 && bytes + e->len > r->cfg.max_msg_bytes)
            break;
        bytes += e->len;
        n++;
    }
    if (n == 0 && !allow_empty)
        return 0;
    raft_msg m = {.type = RAFT_MSG_APPEND,
                  .to = pr->id,
                  .index = prev,
                  .log_term = raft__log_term(l, prev),
                  .commit = l->commit};
    if (n) {
        m.entries = cm_malloc(n * sizeof(raft_entry));
        if (!m.entries)
            return -ENOMEM;
        memcpy(m.entries, raft__log_get(l, prev + 1), n * sizeof(raft_entry));
        for (size_t i = 0; i < n; i++)
            raft_blob_ref(m.entries[i].blob);
        m.n_entries = n;
    }
    if (pr->state == PR_REPLICATE) {
        if (n) {
            pr->next = prev + n + 1;
            raft__ins_add(pr, prev + n, bytes);
        }
    } else {
        pr->probe_sent = 1;
    }
    pr->sent_commit = l->commit;
    return raft__send(r, &m);
}

int raft__bcast_append(raft *r)
{
    uint64_t last = raft__log_last(&r->log);
    for (size_t i = 0; i < RAFT__MAX_PRS; i++) {
        raft__progress *pr = &r->prs[i];
        if (!pr->id || pr->id == r->id)
            continue;
        int rc = raft__send_append(r, pr, pr->sent_commit < r->log.commit);
        while (!rc && pr->state == PR_REPLICATE && pr->next <= last &&
               !raft__pr_paused(r, pr))
            rc = raft__send_append(r, pr, false);
        if (rc)
            return rc;
    }
    return 0;
}

int raft__bcast_heartbeat(raft *r)
{
    for (size_t i = 0; i < RAFT__MAX_PRS; i++) {
        raft__progress *pr = &r->prs[i];
        if (!pr->id || pr->id == r->id)
            continue;
        uint64_t c = pr->match < r->log.commit ? pr->match : r->log.commit;
        raft_msg m = {.type = RAFT_MSG_HEARTBEAT,
                      .to = pr->id,
                      .commit = c,
                      .ctx = r->read_seq};
        int rc = raft__send(r, &m);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- commit -------------------------------------------------------------- */

int raft__commit_to(raft *r, uint64_t commit)
{
    if (commit <= r->log.commit)
        return 0;
    r->log.commit = commit;
    return raft__conf_on_commit(r);
}

int raft__maybe_commit(raft *r)
{
    uint64_t mci = raft__quorum_match(r);
    if (mci <= r->log.commit || raft__log_term(&r->log, mci) != r->term)
        return 0;
    int rc = raft__commit_to(r, mci);
    if (rc || r->role != RAFT_LEADER)
        return rc;
    r->bcast = true;
    return raft__read_on_commit(r);
}

int raft__leader_append(raft *r, raft_entry *ents, size_t n)
{
    raft__log *l = &r->log;
    int rc = raft__log_reserve(l, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        ents[i].term = r->term;
        ents[i].index = raft__log_last(l) + 1;
        raft__log_append(l, &ents[i]);
        if (ents[i].type == RAFT_ENTRY_CONF) {
            rc = raft__conf_on_append(r, &ents[i]);
            if (rc)
                return rc;
        }
    }
    raft__progress *self = raft__pr(r, r->id);
    if (self)
        self->next = raft__log_last(l) + 1;
    r->bcast = true;
    /* A single voter commits as soon as its own write is durable. */
    return raft__maybe_commit(r);
}

/* ---- leader: responses --------------------------------------------------- */

static int handle_append_resp(raft *r, raft__progress *pr, const raft_msg *m)
{
    raft__log *l = &r->log;
    pr->recent_active = 1;
    if (m->reject) {
        uint64_t next_probe = m->hint;
        if (m->log_term > 0)
            next_probe =
                raft__log_find_conflict_by_term(l, m->hint, m->log_term);
        if (raft__pr_maybe_decr(pr, m->index, next_probe)) {
            if (pr->state == PR_REPLICATE)
                raft__pr_become_probe(pr);
            return raft__send_append(r, pr, true);
        }
        return 0;
    }
    if (!raft__pr_maybe_update(pr, m->index)) {
        if (pr->state == PR_REPLICATE)
            raft__ins_free_le(pr, m->index);
        return 0;
    }
    if (pr->state == PR_PROBE) {
        raft__pr_become_replicate(pr);
    } else if (pr->state == PR_SNAPSHOT && pr->match >= pr->pending_snapshot) {
        raft__pr_become_probe(pr);
        raft__pr_become_replicate(pr);
    } else if (pr->state == PR_REPLICATE) {
        raft__ins_free_le(pr, m->index);
    }
    int rc = raft__maybe_commit(r);
    if (rc || r->role != RAFT_LEADER)
        return rc;
    r->bcast = true;
    if (pr->id == r->transferee && pr->match == raft__log_last(l)) {
        raft_msg tm = {.type = RAFT_MSG_TIMEOUT_NOW, .to = pr->id};
        return raft__send(r, &tm);
    }
    return 0;
}

static int handle_heartbeat_resp(raft *r, raft__progress *pr, const raft_msg *m)
{
    pr->recent_active = 1;
    pr->probe_sent = 0;
    /* Appends may have been lost: free one slot so the window reopens. */
    if (pr->state == PR_REPLICATE && raft__pr_paused(r, pr))
        raft__ins_free_first(pr);
    int rc = 0;
    if (pr->match < raft__log_last(&r->log))
        rc = raft__send_append(r, pr, false);
    if (rc)
        return rc;
    if (m->ctx > pr->read_ack) {
        pr->read_ack = m->ctx;
        return raft__read_on_ack(r);
    }
    return 0;
}

int raft__leader_step(raft *r, const raft_msg *m)
{
    raft__progress *pr = raft__pr(r, m->from);
    if (!pr || pr->id == r->id)
        return 0;
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        return handle_append_resp(r, pr, m);
    case RAFT_MSG_HEARTBEAT_RESP:
        return handle_heartbeat_resp(r, pr, m);
    default:
        return 0;
    }
}

/* ---- follower ------------------------------------------------------------ */

static int respond(raft *r, const raft_msg *m, uint64_t index)
{
    raft_msg out = {
        .type = RAFT_MSG_APPEND_RESP, .to = m->from, .index = index};
    return raft__send(r, &out);
}

int raft__handle_append(raft *r, const raft_msg *m)
{
    raft__log *l = &r->log;
    if (m->index < l->commit)
        return respond(r, m, l->commit);
    uint64_t last = raft__log_last(l);
    if (m->index > last || raft__log_term(l, m->index) != m->log_term) {
        uint64_t hint = m->index < last ? m->index : last;
        hint = raft__log_find_conflict_by_term(l, hint, m->log_term);
        raft_msg out = {.type = RAFT_MSG_APPEND_RESP,
                        .to = m->from,
                        .index = m->index,
                        .reject = 1,
                        .hint = hint,
                        .log_term = raft__log_term(l, hint)};
        return raft__send(r, &out);
    }
    /* Skip the entries we already hold; truncate at the first conflict
     * (paper 5.3).  Everything here is above the commit index. */
    size_t k = 0;
    for (; k < m->n_entries; k++) {
        const raft_entry *e = &m->entries[k];
        if (e->index > raft__log_last(l))
            break;
        if (raft__log_term(l, e->index) != e->term) {
            if (e->index <= l->commit)
                return RAFT_ECORRUPT;
            raft__log_truncate(l, e->index);
            int rc = raft__conf_on_truncate(r);
            if (rc)
                return rc;
            break;
        }
    }
    if (k < m->n_entries) {
        int rc = raft__log_reserve(l, m->n_entries - k);
        if (rc)
            return rc;
        for (; k < m->n_entries; k++) {
            raft__log_append(l, &m->entries[k]);
            if (m->entries[k].type == RAFT_ENTRY_CONF) {
                rc = raft__conf_on_append(r, &m->entries[k]);
                if (rc)
                    return rc;
            }
        }
    }
    uint64_t last_new = m->index + m->n_entries;
    int rc = raft__commit_to(r, m->commit < last_new ? m->commit : last_new);
    if (rc)
        return rc;
    return respond(r, m, last_new);
}

int raft__handle_heartbeat(raft *r, const raft_msg *m)
{
    uint64_t last = raft__log_last(&r->log);
    int rc = raft__commit_to(r, m->commit < last ? m->commit : last);
    if (rc)
        return rc;
    raft_msg out = {
        .type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .ctx = m->ctx};
    return raft__send(r, &out);
}

int raft__handle_snapshot(raft *r, const raft_msg *m)
{
    raft__log *l = &r->log;
    const raft_snapshot_meta *s = &m->snap;
    if (s->index <= l->commit)
        return respond(r, m, l->commit);
    if (s->index <= raft__log_last(l) &&
        raft__log_term(l, s->index) == s->term) {
        /* We hold the snapshot's last entry: just learn it is committed. */
        int rc = raft__commit_to(r, s->index);
        return rc ? rc : respond(r, m, s->index);
    }
    raft__log_reset(l, s->index, s->term);
    r->snap = *s;
    r->conf = s->conf;
    r->conf_index = 0;
    r->install_snap = true;
    r->install = *s;
    int rc = raft__prs_rebuild(r);
    if (rc)
        return rc;
    return respond(r, m, s->index);
}
