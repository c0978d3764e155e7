/*
 * Per-peer progress, flow control and quorum arithmetic.
 *
 * Each member of the configuration (voters and learners, this member
 * included) has one progress slot.  Slots are fixed: a slot keeps its
 * inflight ring for the life of the core, so a membership change never
 * allocates.  A leader tracks each follower in one of three states (Raft
 * thesis 3.5 and etcd's design):
 *
 *   probe      the leader does not know where the follower's log ends; it
 *              sends one append at a time and waits for the answer (or a
 *              heartbeat response) before the next;
 *   replicate  the follower is in sync; appends are pipelined and the
 *              leader moves `next` forward optimistically, limited by the
 *              inflight window (messages and bytes);
 *   snapshot   the entries the follower needs are compacted; a snapshot is
 *              being streamed and nothing else is sent until it is
 *              reported done or failed.
 *
 * Quorum functions count voters only.  A leader's own match index is its
 * durable (stable) index, so it never counts an entry it has not
 * persisted.
 */
#include "raft_int.h"

/* ---- slots --------------------------------------------------------------- */

raft__progress *raft__pr(raft *r, raft_id id)
{
    if (id == 0)
        return NULL;
    for (size_t i = 0; i < RAFT__MAX_PRS; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void pr_init(raft *r, raft__progress *pr, raft_id id)
{
    pr->id = id;
    pr->state = PR_PROBE;
    pr->probe_sent = 0;
    pr->recent_active = 1;
    pr->vote = 0;
    pr->match = 0;
    pr->next = raft__log_last(&r->log) + 1;
    pr->pending_snapshot = 0;
    pr->sent_commit = 0;
    pr->read_ack = 0;
    raft__ins_reset(pr);
}

int raft__prs_rebuild(raft *r)
{
    const raft_conf *c = &r->conf;
    /* Free slots of members that left. */
    for (size_t i = 0; i < RAFT__MAX_PRS; i++) {
        raft__progress *pr = &r->prs[i];
        if (pr->id && !raft_conf_is_voter(c, pr->id) &&
            !raft_conf_is_learner(c, pr->id))
            pr->id = 0;
    }
    /* Add newcomers; keep the state of members that stay. */
    for (uint32_t k = 0; k < c->n_voters + c->n_learners; k++) {
        bool learner = k >= c->n_voters;
        raft_id id = learner ? c->learners[k - c->n_voters] : c->voters[k];
        raft__progress *pr = raft__pr(r, id);
        if (!pr) {
            for (size_t i = 0; i < RAFT__MAX_PRS && !pr; i++)
                if (r->prs[i].id == 0)
                    pr = &r->prs[i];
            if (!pr)
                return RAFT_ETOOMANY;
            pr_init(r, pr, id);
            if (id == r->id && r->role == RAFT_LEADER)
                pr->match = r->log.stable;
        }
        pr->learner = learner;
    }
    size_t n = 0;
    for (size_t i = 0; i < RAFT__MAX_PRS; i++)
        n += r->prs[i].id != 0;
    r->n_prs = n;
    return 0;
}

void raft__prs_reset(raft *r)
{
    for (size_t i = 0; i < RAFT__MAX_PRS; i++) {
        raft__progress *pr = &r->prs[i];
        if (!pr->id)
            continue;
        uint8_t learner = pr->learner;
        pr_init(r, pr, pr->id);
        pr->learner = learner;
        if (pr->id == r->id) {
            pr->match = r->log.stable;
            pr->next = raft__log_last(&r->log) + 1;
        }
    }
}

/* ---- state transitions --------------------------------------------------- */

void raft__pr_become_probe(raft__progress *pr)
{
    if (pr->state == PR_SNAPSHOT) {
        uint64_t pending = pr->pending_snapshot;
        pr->next = (pr->match + 1 > pending + 1) ? pr->match + 1 : pending + 1;
    } else {
        pr->next = pr->match + 1;
    }
    pr->state = PR_PROBE;
    pr->pending_snapshot = 0;
    pr->probe_sent = 0;
    raft__ins_reset(pr);
}

void raft__pr_become_replicate(raft__progress *pr)
{
    pr->state = PR_REPLICATE;
    pr->next = pr->match + 1;
    pr->pending_snapshot = 0;
    pr->probe_sent = 0;
    raft__ins_reset(pr);
}

void raft__pr_become_snapshot(raft__progress *pr, uint64_t snap_index)
{
    pr->state = PR_SNAPSHOT;
    pr->pending_snapshot = snap_index;
    pr->probe_sent = 0;
    raft__ins_reset(pr);
}

bool raft__pr_maybe_update(raft__progress *pr, uint64_t n)
{
    bool updated = false;
    if (pr->match < n) {
        pr->match = n;
        pr->probe_sent = 0;
        updated = true;
    }
    if (pr->next < n + 1)
        pr->next = n + 1;
    return updated;
}

bool raft__pr_maybe_decr(raft__progress *pr, uint64_t rejected,
                         uint64_t match_hint)
{
    if (pr->state == PR_REPLICATE) {
        /* A rejection at or below match is stale -- the follower has
         * acknowledged more since -- unless the follower lost entries it
         * had acknowledged (a damaged WAL tail cut at its restart).  Its
         * last index below match says it may have: probe at match to
         * tell the two apart (a stale rejection costs one probe). */
        if (rejected <= pr->match)
            return match_hint < pr->match;
        pr->next = pr->match + 1;
        return true;
    }
    /* Outside replicate the leader probes one entry at a time, so any
     * rejection not for next - 1 is stale. */
    if (pr->next == 0 || pr->next - 1 != rejected)
        return false;
    uint64_t n = rejected < match_hint + 1 ? rejected : match_hint + 1;
    if (n < pr->match + 1) {
        /* The follower does not hold what it acknowledged: forget that
         * and send it again.  Commit never moves back, so this only
         * slows the count of this follower's acknowledgements. */
        pr->match = n - 1;
    }
    pr->next = n;
    pr->probe_sent = 0;
    return true;
}

bool raft__pr_paused(const raft *r, const raft__progress *pr)
{
    switch (pr->state) {
    case PR_PROBE:
        return pr->probe_sent;
    case PR_REPLICATE:
        if (pr->ins.count >= pr->ins.cap)
            return true;
        return r->cfg.max_inflight_bytes &&
               pr->ins.total_bytes >= r->cfg.max_inflight_bytes;
    default:
        return true;
    }
}

/* ---- inflights ----------------------------------------------------------- */

void raft__ins_add(raft__progress *pr, uint64_t idx, uint64_t bytes)
{
    raft__inflights *in = &pr->ins;
    assert(in->count < in->cap);
    size_t at = (in->start + in->count) % in->cap;
    in->idx[at] = idx;
    in->bytes[at] = bytes;
    in->count++;
    in->total_bytes += bytes;
}

void raft__ins_free_le(raft__progress *pr, uint64_t idx)
{
    raft__inflights *in = &pr->ins;
    while (in->count && in->idx[in->start] <= idx) {
        in->total_bytes -= in->bytes[in->start];
        in->start = (in->start + 1) % in->cap;
        in->count--;
    }
    if (in->count == 0)
        in->start = 0;
}

void raft__ins_free_first(raft__progress *pr)
{
    if (pr->ins.count)
        raft__ins_free_le(pr, pr->ins.idx[pr->ins.start]);
}

void raft__ins_reset(raft__progress *pr)
{
    pr->ins.start = pr->ins.count = 0;
    pr->ins.total_bytes = 0;
}

/* ---- quorum -------------------------------------------------------------- */

uint64_t raft__quorum(const raft *r)
{
    return r->conf.n_voters / 2 + 1;
}

/* k-th largest (k from 1) of the voters' values. */
static uint64_t kth_largest(uint64_t *v, size_t n, size_t k)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] < x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return k <= n ? v[k - 1] : 0;
}

uint64_t raft__quorum_match(raft *r)
{
    uint64_t v[RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft__progress *pr = raft__pr(r, r->conf.voters[k]);
        v[n++] = pr ? pr->match : 0;
    }
    if (n == 0)
        return 0;
    return kth_largest(v, n, raft__quorum(r));
}

uint64_t raft__quorum_read_ack(raft *r)
{
    uint64_t v[RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft_id id = r->conf.voters[k];
        raft__progress *pr = raft__pr(r, id);
        v[n++] = id == r->id ? r->read_seq : (pr ? pr->read_ack : 0);
    }
    if (n == 0)
        return 0;
    return kth_largest(v, n, raft__quorum(r));
}

int raft__tally_votes(raft *r)
{
    uint64_t granted = 0, rejected = 0;
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft__progress *pr = raft__pr(r, r->conf.voters[k]);
        if (pr && pr->vote == 1)
            granted++;
        else if (pr && pr->vote == 2)
            rejected++;
    }
    uint64_t q = raft__quorum(r);
    if (granted >= q)
        return 1;
    if (rejected >= q || r->conf.n_voters - rejected < q)
        return -1;
    return 0;
}

bool raft__quorum_active(raft *r)
{
    uint64_t n = 0;
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft_id id = r->conf.voters[k];
        raft__progress *pr = raft__pr(r, id);
        if (id == r->id || (pr && pr->recent_active))
            n++;
    }
    return n >= raft__quorum(r);
}

/* ---- configurations ------------------------------------------------------ */

static bool contains(const raft_id *v, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static void drop(raft_id *v, uint32_t *n, raft_id id)
{
    for (uint32_t i = 0; i < *n; i++)
        if (v[i] == id) {
            v[i] = v[--*n];
            return;
        }
}

bool raft_conf_is_voter(const raft_conf *c, raft_id id)
{
    return contains(c->voters, c->n_voters, id);
}

bool raft_conf_is_learner(const raft_conf *c, raft_id id)
{
    return contains(c->learners, c->n_learners, id);
}

int raft_conf_apply(raft_conf *c, enum raft_conf_op op, raft_id node)
{
    if (node == 0)
        return RAFT_EINVAL;
    bool voter = raft_conf_is_voter(c, node);
    bool learner = raft_conf_is_learner(c, node);
    switch (op) {
    case RAFT_CONF_ADD_VOTER:
        if (voter)
            return RAFT_EINVAL;
        if (!learner && c->n_voters + c->n_learners >= RAFT_MAX_MEMBERS)
            return RAFT_ETOOMANY;
        drop(c->learners, &c->n_learners, node);
        c->voters[c->n_voters++] = node;
        return 0;
    case RAFT_CONF_ADD_LEARNER:
        if (voter || learner)
            return RAFT_EINVAL;
        if (c->n_voters + c->n_learners >= RAFT_MAX_MEMBERS)
            return RAFT_ETOOMANY;
        c->learners[c->n_learners++] = node;
        return 0;
    case RAFT_CONF_REMOVE:
        if (!voter && !learner)
            return RAFT_EINVAL;
        if (voter && c->n_voters == 1)
            return RAFT_EINVAL;
        drop(c->voters, &c->n_voters, node);
        drop(c->learners, &c->n_learners, node);
        return 0;
    }
    return RAFT_EINVAL;
}

void raft_conf_change_encode(uint8_t out[RAFT_CONF_CHANGE_LEN],
                             enum raft_conf_op op, raft_id node)
{
    out[0] = (uint8_t)op;
    cm_be64_put(out + 1, node);
}

int raft_conf_change_decode(const uint8_t *buf, size_t len,
                            enum raft_conf_op *op, raft_id *node)
{
    if (len < RAFT_CONF_CHANGE_LEN || buf[0] < RAFT_CONF_ADD_VOTER ||
        buf[0] > RAFT_CONF_REMOVE)
        return RAFT_EINVAL;
    *op = (enum raft_conf_op)buf[0];
    *node = cm_be64_get(buf + 1);
    return 0;
}
