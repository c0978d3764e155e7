/*
 * Linearizable reads by ReadIndex, batched.
 *
 * Reads that arrive in one loop turn form one round.  On the leader the
 * round is one raft_read_index call (one heartbeat round confirms the
 * leadership for all of them); on a follower it is one APP_READ_INDEX
 * message to the leader, which runs the read index for it and answers
 * with APP_READ_INDEX_RESP.  Once the round's index is known and this
 * member has applied up to it, the reads run against the local store like
 * any other read: they see every write acknowledged before they arrived.
 *
 * A new leader serves no round until its first entries (the no-op and the
 * lease refresh) are applied, so a read index is never below them: lease
 * TTLs read right after a failover already count from the refresh.
 *
 * A round unanswered after ROUND_RETRY_MS is asked again (the leader may
 * have changed and dropped it, which Raft allows); after ROUND_TIMEOUT_MS
 * its reads fail with TIMEOUT, which a client may safely retry.
 */
#include "server_int.h"

#include <errno.h>
#include <string.h>

#define ROUND_RETRY_MS 1000
#define ROUND_TIMEOUT_MS 5000
#define FWD_BIT (1ull << 63)

struct read_round {
    read_round *next;
    uint64_t id;
    uint64_t index;
    bool have_index, sent;
    int64_t born, asked;
    struct read_job *head;
};

void srv_read_linearizable(server *s, struct read_job *j)
{
    *srv_read_job_link(j) = NULL;
    if (s->lin_tail)
        *srv_read_job_link(s->lin_tail) = j;
    else
        s->lin_head = j;
    s->lin_tail = j;
    srv_node_kick(s);
}

static bool leader_ready(const server *s)
{
    return s->role == RAFT_LEADER && s->lease_ready;
}

static void ask(server *s, read_round *r)
{
    r->asked = cm_mono_ms();
    if (s->role == RAFT_LEADER && !s->lease_ready) {
        r->sent = false; /* asked once the leader is ready */
    } else if (s->role == RAFT_LEADER) {
        r->sent = raft_read_index(s->r, r->id) == 0;
    } else if (s->lead) {
        raft_msg m = {0};
        m.index = r->id;
        r->sent = srv_app_send(s, s->lead, APP_READ_INDEX, &m) == 0;
    } else {
        r->sent = false;
    }
}

void srv_reads_flush(server *s)
{
    if (s->lin_head) {
        read_round *r = cm_calloc(1, sizeof *r);
        if (r) {
            r->id = ++s->round_seq;
            r->head = s->lin_head;
            r->born = cm_mono_ms();
            s->lin_head = s->lin_tail = NULL;
            r->next = s->rounds;
            s->rounds = r;
            ask(s, r);
        }
    }
    /* Rounds that could not be asked (no leader then) go now. */
    for (read_round *r = s->rounds; r; r = r->next)
        if (!r->sent && !r->have_index && (s->lead || s->role == RAFT_LEADER))
            ask(s, r);
    /* Followers' rounds held while this leader was not ready. */
    if (leader_ready(s))
        for (size_t i = 0; i < s->fwd_cap; i++)
            if (s->fwd[i].from && !s->fwd[i].asked) {
                s->fwd[i].asked = true;
                if (raft_read_index(s->r, FWD_BIT | s->fwd[i].seq))
                    s->fwd[i].from = 0;
            }
}

static void finish(server *s, read_round *r, bool ok, const char *why)
{
    for (struct read_job *j = r->head, *n; j; j = n) {
        n = *srv_read_job_link(j);
        if (ok)
            srv_read_job_start(s, j);
        else
            srv_read_job_fail(j, SKIFFPB__ERROR_CODE__TIMEOUT, why);
    }
    cm_free(r);
}

void srv_reads_applied(server *s)
{
    for (read_round **p = &s->rounds; *p;) {
        read_round *r = *p;
        if (r->have_index && r->index <= s->applied) {
            *p = r->next;
            finish(s, r, true, NULL);
        } else {
            p = &r->next;
        }
    }
}

static void round_index(server *s, uint64_t id, uint64_t index)
{
    for (read_round *r = s->rounds; r; r = r->next)
        if (r->id == id && !r->have_index) {
            r->have_index = true;
            r->index = index;
            break;
        }
    srv_reads_applied(s);
}

void srv_read_state(server *s, const raft_read_state *rs)
{
    if (!(rs->ctx & FWD_BIT)) {
        round_index(s, rs->ctx, rs->index);
        return;
    }
    /* A follower's round: answer it. */
    if (!s->fwd_cap)
        return;
    size_t slot = (rs->ctx & ~FWD_BIT) % s->fwd_cap;
    if (!s->fwd[slot].from || s->fwd[slot].seq != (rs->ctx & ~FWD_BIT))
        return;
    raft_msg m = {0};
    m.index = s->fwd[slot].round;
    m.commit = rs->index;
    srv_app_send(s, s->fwd[slot].from, APP_READ_INDEX_RESP, &m);
    s->fwd[slot].from = 0;
}

/* The leader's side of a follower's round.  Forwarded rounds live in a
 * small ring: a slot reused before its answer only loses that answer,
 * and the follower asks again. */
static void forwarded(server *s, const raft_msg *m)
{
    if (s->role != RAFT_LEADER)
        return;
    if (!s->fwd_cap) {
        s->fwd = cm_calloc(256, sizeof *s->fwd);
        if (!s->fwd)
            return;
        s->fwd_cap = s->nfwd = 256;
    }
    uint64_t seq = ++s->round_seq;
    size_t slot = seq % s->fwd_cap;
    s->fwd[slot].from = m->from;
    s->fwd[slot].round = m->index;
    s->fwd[slot].seq = seq;
    s->fwd[slot].asked = leader_ready(s);
    if (s->fwd[slot].asked && raft_read_index(s->r, FWD_BIT | seq))
        s->fwd[slot].from = 0;
}

void srv_reads_on_app(server *s, const raft_msg *m)
{
    if (m->ctx == APP_READ_INDEX)
        forwarded(s, m);
    else if (m->ctx == APP_READ_INDEX_RESP)
        round_index(s, m->index, m->commit);
}

void srv_reads_sweep(server *s)
{
    int64_t now = cm_mono_ms();
    for (read_round **p = &s->rounds; *p;) {
        read_round *r = *p;
        if (now - r->born >= ROUND_TIMEOUT_MS) {
            *p = r->next;
            finish(s, r, false,
                   "linearizable read timed out waiting for the leader");
            continue;
        }
        if (!r->have_index && now - r->asked >= ROUND_RETRY_MS)
            r->sent = false; /* asked again on the next flush */
        p = &r->next;
    }
    if (s->rounds)
        srv_node_kick(s);
}

void srv_reads_free(server *s)
{
    while (s->rounds) {
        read_round *r = s->rounds;
        s->rounds = r->next;
        finish(s, r, false, "server is shutting down");
    }
    for (struct read_job *j = s->lin_head, *n; j; j = n) {
        n = *srv_read_job_link(j);
        srv_read_job_fail(j, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                          "server is shutting down");
    }
    s->lin_head = s->lin_tail = NULL;
    /* Reads held for a commit that ended the member, or still queued. */
    struct read_job *lists[2] = {s->held_head, s->rq_head};
    s->held_head = s->held_tail = s->rq_head = s->rq_tail = NULL;
    for (int k = 0; k < 2; k++)
        for (struct read_job *j = lists[k], *n; j; j = n) {
            n = *srv_read_job_link(j);
            srv_read_job_fail(j, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                              "server is shutting down");
        }
    cm_free(s->fwd);
    s->fwd = NULL;
}
