/*
 * The Raft core: roles, elections, message dispatch and logical time.
 *
 * A member is a follower, a pre-candidate, a candidate or the leader
 * (Raft paper 5.2; PreVote from the thesis 9.6).  Every input funnels
 * through one of the public entry points below, which check that the core
 * has not failed and is not between raft_ready_get and raft_advance, and then
 * mutate `struct raft` and queue outgoing messages.  Nothing is sent or
 * written here: raft_ready.c hands the queue and the log's unpersisted
 * tail to the driver.
 *
 * Term handling follows the paper (5.1): a message with a higher term
 * turns us into a follower of that term, except for PreVote traffic, which
 * never changes terms, and vote requests that arrive while we still hear
 * from a live leader (the thesis' leader stickiness, 4.2.3), which are
 * ignored when CheckQuorum is on unless the candidate was told to run by a
 * leadership transfer.  Messages with a lower term are dropped, but a
 * stale leader's appends get an answer carrying our term, so a leader that
 * was cut off learns it is stale, and stale vote and PreVote requests get
 * a rejection carrying our term, so a candidate behind in term cannot be
 * shut out for ever.
 *
 * Votes are answered even by learners and by members that do not yet see
 * themselves in the configuration: a learner whose promotion is committed
 * elsewhere may be needed for a quorum before it learns of it.  Only
 * members that see themselves as voters start elections.
 */
#include "raft_int.h"

/* ---- helpers ------------------------------------------------------------- */

int raft__fail(raft *r, int rc, const char *what)
{
    snprintf(r->errmsg, sizeof(r->errmsg), "%s: %s", what, cm_strerror(rc));
    if (rc == -ENOMEM || rc == RAFT_ECORRUPT)
        r->failed = 1;
    return rc;
}

bool raft__is_voter(const raft *r, raft_id id)
{
    return raft_conf_is_voter(&r->conf, id);
}

static void randomize_timeout(raft *r)
{
    int e = r->cfg.election_ticks;
    r->randomized_timeout = e + (int)cm_rand_below(&r->rng, (uint64_t)e);
}

static int check_input(const raft *r)
{
    assert(!r->in_ready);
    return r->failed ? RAFT_EFAILED : 0;
}

/* ---- roles --------------------------------------------------------------- */

static void reset(raft *r, uint64_t term)
{
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->lead = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    randomize_timeout(r);
    r->transferee = 0;
    r->bcast = false;
    raft__prs_reset(r);
    raft__reads_clear(r);
}

void raft__become_follower(raft *r, uint64_t term, raft_id lead)
{
    reset(r, term);
    r->role = RAFT_FOLLOWER;
    r->lead = lead;
}

static void become_pre_candidate(raft *r)
{
    /* PreVote changes neither term nor vote (thesis 9.6). */
    r->role = RAFT_PRE_CANDIDATE;
    r->lead = 0;
    for (size_t i = 0; i < RAFT__MAX_PRS; i++)
        r->prs[i].vote = 0;
}

static void become_candidate(raft *r)
{
    reset(r, r->term + 1);
    r->vote = r->id;
    r->role = RAFT_CANDIDATE;
}

static int become_leader(raft *r)
{
    reset(r, r->term);
    r->role = RAFT_LEADER;
    r->lead = r->id;
    raft__progress *self = raft__pr(r, r->id);
    if (self) {
        self->match = r->log.stable;
        raft__pr_become_replicate(self);
        self->next = raft__log_last(&r->log) + 1;
    }
    /* A no-op of the new term lets the leader commit everything before it
     * (Raft paper 5.4.2 and 8: never commit older terms by counting). */
    raft_entry e = {.type = RAFT_ENTRY_NOOP};
    return raft__leader_append(r, &e, 1);
}

/* How an election starts: a normal timeout (PreVote first when enabled),
 * the real vote after a won PreVote, or a leadership transfer (no PreVote,
 * and the requests override leader stickiness). */
enum { CAMP_NORMAL, CAMP_AFTER_PREVOTE, CAMP_TRANSFER };

static int campaign(raft *r, int kind)
{
    if (r->role == RAFT_LEADER || !raft__is_voter(r, r->id))
        return 0;
    bool transfer = kind == CAMP_TRANSFER;
    uint32_t type;
    uint64_t term;
    if (r->cfg.pre_vote && kind == CAMP_NORMAL) {
        become_pre_candidate(r);
        type = RAFT_MSG_PREVOTE;
        term = r->term + 1;
    } else {
        become_candidate(r);
        type = RAFT_MSG_VOTE;
        term = r->term;
    }
    raft__pr(r, r->id)->vote = 1;
    int won = raft__tally_votes(r);
    if (won == 1) {
        if (type == RAFT_MSG_PREVOTE)
            return campaign(r, CAMP_AFTER_PREVOTE);
        return become_leader(r);
    }
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft_id to = r->conf.voters[k];
        if (to == r->id)
            continue;
        raft_msg m = {.type = type,
                      .to = to,
                      .term = term,
                      .index = raft__log_last(&r->log),
                      .log_term = raft__log_last_term(&r->log),
                      .force = transfer};
        int rc = raft__send(r, &m);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- step ---------------------------------------------------------------- */

static int reply(raft *r, const raft_msg *m, uint32_t type, uint64_t term,
                 bool reject)
{
    raft_msg out = {
        .type = type, .to = m->from, .term = term, .reject = reject};
    return raft__send(r, &out);
}

static int handle_vote(raft *r, const raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    uint32_t rt = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    /* One vote per term (5.2); a PreVote for a later term commits to
     * nothing, so it may be granted while we still hold a vote. */
    bool can_vote = r->vote == m->from || (r->vote == 0 && r->lead == 0) ||
                    (pre && m->term > r->term);
    if (can_vote && raft__log_up_to_date(&r->log, m->index, m->log_term)) {
        if (!pre) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
        return reply(r, m, rt, m->term, false);
    }
    return reply(r, m, rt, r->term, true);
}

static int candidate_step(raft *r, const raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        /* Someone won this term (5.2). */
        raft__become_follower(r, m->term, m->from);
        if (m->type == RAFT_MSG_APPEND)
            return raft__handle_append(r, m);
        if (m->type == RAFT_MSG_HEARTBEAT)
            return raft__handle_heartbeat(r, m);
        return raft__handle_snapshot(r, m);
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP: {
        bool pre = r->role == RAFT_PRE_CANDIDATE;
        if (pre != (m->type == RAFT_MSG_PREVOTE_RESP))
            return 0;
        raft__progress *pr = raft__pr(r, m->from);
        if (!pr || pr->vote)
            return 0;
        pr->vote = m->reject ? 2 : 1;
        int res = raft__tally_votes(r);
        if (res == 1)
            return pre ? campaign(r, CAMP_AFTER_PREVOTE) : become_leader(r);
        if (res == -1)
            raft__become_follower(r, r->term, 0);
        return 0;
    }
    default:
        return 0;
    }
}

static int follower_step(raft *r, const raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        r->lead = m->from;
        return raft__handle_append(r, m);
    case RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->lead = m->from;
        return raft__handle_heartbeat(r, m);
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        r->lead = m->from;
        return raft__handle_snapshot(r, m);
    case RAFT_MSG_TIMEOUT_NOW:
        /* Learners and strangers never campaign, even when told to. */
        return campaign(r, CAMP_TRANSFER);
    default:
        return 0;
    }
}

static int step(raft *r, const raft_msg *m)
{
    uint32_t t = m->type;
    bool vote_req = t == RAFT_MSG_VOTE || t == RAFT_MSG_PREVOTE;
    if (m->term > r->term) {
        if (vote_req && !m->force && r->cfg.check_quorum && r->lead != 0 &&
            r->election_elapsed < r->cfg.election_ticks)
            return 0; /* leader stickiness (thesis 4.2.3) */
        if (t == RAFT_MSG_PREVOTE ||
            (t == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* PreVote never moves terms. */
        } else if (t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT ||
                   t == RAFT_MSG_SNAPSHOT) {
            raft__become_follower(r, m->term, m->from);
        } else {
            raft__become_follower(r, m->term, 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT)) {
            /* Tell a stale leader about the newer term; otherwise a member
             * that moved ahead (e.g. restarted after a lost election) is
             * shut out for good under PreVote + CheckQuorum. */
            return reply(r, m, RAFT_MSG_APPEND_RESP, r->term, false);
        }
        if (t == RAFT_MSG_PREVOTE)
            return reply(r, m, RAFT_MSG_PREVOTE_RESP, r->term, true);
        /* A stale candidate learns our term from the rejection (paper
         * Figure 2).  Members whose logs hold different configurations
         * may not write to each other otherwise: a candidate that never
         * hears of the newer term can never win our vote. */
        if (t == RAFT_MSG_VOTE)
            return reply(r, m, RAFT_MSG_VOTE_RESP, r->term, true);
        return 0;
    }
    if (vote_req)
        return handle_vote(r, m);
    switch (r->role) {
    case RAFT_LEADER:
        return raft__leader_step(r, m);
    case RAFT_FOLLOWER:
        return follower_step(r, m);
    default:
        return candidate_step(r, m);
    }
}

/* ---- create / destroy ---------------------------------------------------- */

static int validate(raft_config *c)
{
    if (c->id == 0)
        return RAFT_EINVAL;
    if (c->election_ticks <= 0)
        c->election_ticks = 10;
    if (c->heartbeat_ticks <= 0)
        c->heartbeat_ticks = 1;
    if (c->heartbeat_ticks >= c->election_ticks)
        return RAFT_EINVAL;
    if (c->max_msg_bytes == 0)
        c->max_msg_bytes = 1 << 20;
    if (c->max_inflight == 0)
        c->max_inflight = 256;
    if (c->lease_read && !c->check_quorum)
        return RAFT_EINVAL;
    return 0;
}

static int restore(raft *r, const raft_restore *st)
{
    const raft_snapshot_meta *s = &st->snap;
    uint64_t prev_term = s->term;
    for (size_t i = 0; i < st->n_entries; i++) {
        const raft_entry *e = &st->entries[i];
        if (e->index != s->index + 1 + i || e->term < prev_term)
            return RAFT_ECORRUPT;
        prev_term = e->term;
    }
    uint64_t last = s->index + st->n_entries;
    if (st->hs.term < prev_term || st->applied > last ||
        st->applied < s->index || st->hs.commit > last)
        return RAFT_ECORRUPT;
    raft__log_init(&r->log, s->index, s->term);
    int rc = raft__log_reserve(&r->log, st->n_entries);
    if (rc)
        return rc;
    r->snap = *s;
    r->conf = s->conf;
    for (size_t i = 0; i < st->n_entries; i++) {
        raft__log_append(&r->log, &st->entries[i]);
        if (st->entries[i].type == RAFT_ENTRY_CONF)
            raft__conf_on_append(r, &st->entries[i]);
    }
    r->log.offered = r->log.stable = last;
    /* The state machine may be ahead of the durable commit index (it
     * applied entries whose commit was not yet synced): never go back. */
    r->log.commit = st->hs.commit > st->applied ? st->hs.commit : st->applied;
    if (r->log.commit < s->index)
        r->log.commit = s->index;
    r->log.applied = st->applied;
    r->term = st->hs.term;
    r->vote = st->hs.vote;
    r->prev_hs = st->hs;
    return 0;
}

void raft_restore_bootstrap(raft_restore *st, const raft_conf *conf)
{
    memset(st, 0, sizeof(*st));
    st->hs.term = 1;
    st->hs.commit = 1;
    st->snap.index = 1;
    st->snap.term = 1;
    st->snap.conf = *conf;
    st->applied = 1;
}

int raft_create(const raft_config *cfg, const raft_restore *st, raft **out)
{
    raft_err_init();
    raft_config c = *cfg;
    int rc = validate(&c);
    if (rc)
        return rc;
    raft *r = cm_calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cfg = c;
    r->id = c.id;
    cm_rand_seed(&r->rng, c.seed ^ (c.id * 0x9E3779B97F4A7C15ull));
    size_t slot = c.max_inflight;
    r->ins_mem = cm_calloc(RAFT__MAX_PRS * slot * 2, sizeof(uint64_t));
    if (!r->ins_mem) {
        rc = -ENOMEM;
        goto err;
    }
    for (size_t i = 0; i < RAFT__MAX_PRS; i++) {
        r->prs[i].ins.idx = r->ins_mem + 2 * i * slot;
        r->prs[i].ins.bytes = r->ins_mem + (2 * i + 1) * slot;
        r->prs[i].ins.cap = slot;
    }
    rc = restore(r, st);
    if (rc)
        goto err;
    if (r->conf.n_voters + r->conf.n_learners > RAFT_MAX_MEMBERS) {
        rc = RAFT_ETOOMANY;
        goto err;
    }
    rc = raft__prs_rebuild(r);
    if (rc)
        goto err;
    raft__become_follower(r, r->term, 0);
    r->prev_role = r->role;
    *out = r;
    return 0;
err:
    raft_destroy(r);
    return rc;
}

void raft_destroy(raft *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_msgs; i++)
        raft_msg_free(&r->msgs[i]);
    cm_free(r->msgs);
    cm_free(r->reads);
    cm_free(r->read_states);
    raft__log_close(&r->log);
    cm_free(r->ins_mem);
    cm_free(r);
}

/* ---- inputs -------------------------------------------------------------- */

int raft_step(raft *r, const raft_msg *m)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    if (m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX || m->from == 0)
        return 0;
    rc = step(r, m);
    return rc ? raft__fail(r, rc, "step") : 0;
}

int raft_tick(raft *r)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    if (r->role != RAFT_LEADER) {
        r->election_elapsed++;
        if (raft__is_voter(r, r->id) &&
            r->election_elapsed >= r->randomized_timeout) {
            r->election_elapsed = 0;
            rc = campaign(r, CAMP_NORMAL);
        }
        return rc ? raft__fail(r, rc, "tick") : 0;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            /* A leader that has not heard from a quorum within an election
             * timeout steps down (thesis 6.2). */
            if (!raft__quorum_active(r)) {
                raft__become_follower(r, r->term, 0);
                return 0;
            }
            for (size_t i = 0; i < RAFT__MAX_PRS; i++)
                if (r->prs[i].id != r->id)
                    r->prs[i].recent_active = 0;
        }
        r->transferee = 0; /* a transfer that took this long failed */
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        rc = raft__bcast_heartbeat(r);
    }
    return rc ? raft__fail(r, rc, "tick") : 0;
}

int raft_campaign(raft *r)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    rc = campaign(r, CAMP_NORMAL);
    return rc ? raft__fail(r, rc, "campaign") : 0;
}

int raft_propose_batch(raft *r, const void *const *data, const size_t *len,
                       size_t n, uint64_t *first_index)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_EBUSY;
    if (n == 0)
        return RAFT_EINVAL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (len[i] > UINT32_MAX)
            return RAFT_EINVAL;
        total += len[i];
    }
    raft_entry one, *ents = n == 1 ? &one : cm_malloc(n * sizeof(*ents));
    if (!ents)
        return -ENOMEM;
    raft_blob *b = total ? raft_blob_create(total) : NULL;
    if (total && !b) {
        if (ents != &one)
            cm_free(ents);
        return -ENOMEM;
    }
    rc = raft__log_reserve(&r->log, n);
    if (rc)
        goto out;
    uint8_t *p = b ? raft_blob_bytes(b) : NULL;
    for (size_t i = 0; i < n; i++) {
        ents[i] = (raft_entry){.type = RAFT_ENTRY_NORMAL,
                               .len = (uint32_t)len[i],
                               .buf = len[i] ? p : NULL,
                               .blob = len[i] ? b : NULL};
        if (len[i]) {
            memcpy(p, data[i], len[i]);
            p += len[i];
        }
    }
    if (first_index)
        *first_index = raft__log_last(&r->log) + 1;
    rc = raft__leader_append(r, ents, n);
out:
    raft_blob_unref(b);
    if (ents != &one)
        cm_free(ents);
    return rc ? raft__fail(r, rc, "propose") : 0;
}

int raft_propose(raft *r, const void *data, size_t len, uint64_t *index)
{
    return raft_propose_batch(r, &data, &len, 1, index);
}

int raft_report_snapshot(raft *r, raft_id to, bool ok)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    raft__progress *pr = raft__pr(r, to);
    if (r->role != RAFT_LEADER || !pr || pr->state != PR_SNAPSHOT)
        return 0;
    if (!ok)
        pr->pending_snapshot = 0;
    raft__pr_become_probe(pr);
    /* Wait for a heartbeat answer before probing again. */
    pr->probe_sent = 1;
    return 0;
}

int raft_report_unreachable(raft *r, raft_id to)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    raft__progress *pr = raft__pr(r, to);
    if (r->role == RAFT_LEADER && pr && pr->state == PR_REPLICATE)
        raft__pr_become_probe(pr);
    return 0;
}

int raft_compact(raft *r, uint64_t index)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    if (index <= r->log.snap_index)
        return RAFT_ECOMPACTED;
    if (index > r->log.applied || index > r->log.stable)
        return RAFT_EUNAVAILABLE;
    raft_snapshot_meta s = {.index = index,
                            .term = raft__log_term(&r->log, index)};
    rc = raft__conf_at(r, index, &s.conf);
    if (rc)
        return rc;
    r->snap = s;
    raft__log_compact(&r->log, index);
    return 0;
}

int raft_persisted(raft *r, uint64_t index, uint64_t term)
{
    int rc = check_input(r);
    if (rc)
        return rc;
    raft__log *l = &r->log;
    /* Stale: the log was truncated or replaced since that write. */
    if (index > l->offered || index < l->snap_index ||
        raft__log_term(l, index) != term)
        return 0;
    if (index <= l->stable)
        return 0;
    l->stable = index;
    if (r->role == RAFT_LEADER) {
        raft__progress *self = raft__pr(r, r->id);
        if (self)
            raft__pr_maybe_update(self, index);
        rc = raft__maybe_commit(r);
    }
    return rc ? raft__fail(r, rc, "persisted") : 0;
}

/* ---- inspection ---------------------------------------------------------- */

void raft_status_get(const raft *r, raft_status *st)
{
    st->id = r->id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->lead = r->lead;
    st->commit = r->log.commit;
    st->applied = r->log.applied;
    st->first_index = raft__log_first(&r->log);
    st->last_index = raft__log_last(&r->log);
    st->stable = r->log.stable;
    st->transferee = r->transferee;
    st->conf = r->conf;
    st->conf_index = r->conf_index;
}

void raft_snapshot_get(const raft *r, raft_snapshot_meta *out)
{
    *out = r->snap;
}

raft_id raft_leader(const raft *r)
{
    return r->lead;
}

int raft_term_at(const raft *r, uint64_t index, uint64_t *term)
{
    return raft__log_term_at(&r->log, index, term);
}

int raft_entry_at(const raft *r, uint64_t index, const raft_entry **e)
{
    if (index <= r->log.snap_index)
        return RAFT_ECOMPACTED;
    if (index > raft__log_last(&r->log))
        return RAFT_EUNAVAILABLE;
    *e = raft__log_get(&r->log, index);
    return 0;
}

int raft_progress_get(const raft *r, raft_id peer, uint64_t *match,
                      uint64_t *next, int *state)
{
    raft__progress *pr = raft__pr((raft *)r, peer);
    if (!pr)
        return RAFT_EINVAL;
    *match = pr->match;
    *next = pr->next;
    *state = pr->state;
    return 0;
}

const char *raft_errmsg(const raft *r)
{
    return r->errmsg;
}
