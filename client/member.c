/*
 * Cluster membership calls of libskiff: the blocking wrappers for member
 * list/add/remove/promote and move leader.
 *
 * The member changes are ordinary requests (SKIFF_OP_MEMBER_*): any member
 * takes them and the cluster decides, so they go through skiff_do_sync
 * like a put, and like a put they are never re-sent once they may have
 * reached a member (req.c).
 *
 * MoveLeader is different: only the leader can hand leadership over, and a
 * client's connections go to whichever endpoint they reached first.  So
 * skiff_move_leader looks for the leader itself, as etcdctl's move-leader
 * does: it asks Status of each configured endpoint on a short-lived
 * client bound to that endpoint alone, and the member that names itself
 * leader gets the request.  When no endpoint is the leader but one of them
 * knows who is, the leader's client URLs come from member list, so a
 * client configured with a single follower still works.  If leadership
 * moves between the search and the request (the member answers
 * NOT_LEADER), the search runs again; the whole call shares one deadline.
 */
#include "skiff_int.h"

#include <errno.h>
#include <string.h>

#define MOVE_ATTEMPTS 3

static int sync_op(skiff_client *c, const skiff_op *op, skiff_result *res)
{
    skiff_result tmp;
    int rc = skiff_do_sync(c, op, res ? res : &tmp);
    if (!res)
        skiff_result_free(&tmp);
    return rc;
}

int skiff_member_list(skiff_client *c, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_MEMBER_LIST};
    return sync_op(c, &op, res);
}

int skiff_member_add(skiff_client *c, const char *const *peer_urls, size_t n,
                     int is_learner, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_MEMBER_ADD,
                   .peer_urls = peer_urls,
                   .n_peer_urls = n,
                   .flags = is_learner ? SKIFF_LEARNER : 0};
    return sync_op(c, &op, res);
}

int skiff_member_remove(skiff_client *c, uint64_t id, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_MEMBER_REMOVE, .member_id = id};
    return sync_op(c, &op, res);
}

int skiff_member_promote(skiff_client *c, uint64_t id, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_MEMBER_PROMOTE, .member_id = id};
    return sync_op(c, &op, res);
}

/* ---- move leader --------------------------------------------------------- */

/* Milliseconds left before `deadline`, at least 1 so a call still fails
 * cleanly with SKIFF_EDEADLINE rather than taking the default timeout. */
static int left_ms(skiff_client *c, int64_t deadline)
{
    uv_update_time(c->loop);
    int64_t d = deadline - skiff__now(c);
    return d > 0 ? (int)d : 1;
}

/* Asks `ep` for its status.  When it is the leader, *out is a client
 * bound to it and *leader its ID; otherwise *out is NULL and *hint gets
 * the leader it names (left alone when it names none or fails).  0 or an
 * error of the Status call (the message is kept in c's errmsg). */
static int probe(skiff_client *c, const char *ep, int64_t deadline,
                 skiff_client **out, uint64_t *leader, uint64_t *hint)
{
    skiff_client *s;
    *out = NULL;
    int rc = skiff__client_create_like(c, ep, left_ms(c, deadline), &s);
    if (rc) {
        skiff__errmsg(c, "move leader: %s: %s", ep, skiff_strerror(rc));
        return rc;
    }
    skiff_result st;
    rc = skiff_status(s, &st);
    if (rc) {
        skiff__errmsg(c, "move leader: status: %s", skiff_client_errmsg(s));
    } else if (st.status.leader && st.status.leader == st.header.member_id) {
        *out = s;
        *leader = st.status.leader;
        s = NULL;
    } else if (st.status.leader) {
        *hint = st.status.leader;
    }
    skiff_result_free(&st);
    skiff_client_destroy(s);
    return rc;
}

/* Finds the leader: a client bound to it in *out and its ID in *leader.
 * `hint` is a leader ID learned earlier (NOT_LEADER's hint), 0 if none. */
static int find_leader(skiff_client *c, int64_t deadline, uint64_t hint,
                       skiff_client **out, uint64_t *leader)
{
    int last = 0, failed = 0;
    char ep[300];
    for (int i = 0; i < c->n_eps; i++) {
        skiff__endpoint_str(&c->eps[i], ep, sizeof ep);
        int rc = probe(c, ep, deadline, out, leader, &hint);
        if (*out)
            return 0;
        if (rc) {
            last = rc;
            failed++;
        }
    }
    if (!hint) {
        /* Nobody answered: say why (unreachable, say) rather than guess. */
        if (failed == c->n_eps)
            return last;
        skiff__errmsg(c, "move leader: no endpoint knows a leader");
        return SKIFF_ENO_LEADER;
    }
    /* The leader is not among the endpoints: reach it by its own URLs. */
    skiff_op op = {.type = SKIFF_OP_MEMBER_LIST,
                   .timeout_ms = left_ms(c, deadline)};
    skiff_result ml;
    int rc = skiff_do_sync(c, &op, &ml);
    if (rc) {
        skiff_result_free(&ml);
        return rc;
    }
    rc = SKIFF_ENO_LEADER;
    skiff__errmsg(c, "move leader: leader %llx has no reachable client URL",
                  (unsigned long long)hint);
    for (size_t i = 0; i < ml.n_members && !*out; i++) {
        const skiff_member *m = &ml.members[i];
        if (m->id != hint)
            continue;
        for (size_t j = 0; j < m->n_client_urls && !*out; j++) {
            uint64_t again = 0;
            probe(c, m->client_urls[j], deadline, out, leader, &again);
        }
    }
    skiff_result_free(&ml);
    return *out ? 0 : rc;
}

int skiff_move_leader(skiff_client *c, uint64_t target, uint64_t *from_out,
                      skiff_result *res)
{
    skiff_result tmp;
    if (!res)
        res = &tmp;
    memset(res, 0, sizeof *res);
    if (!c || !target)
        return -EINVAL;
    if (!c->blocking) {
        skiff__errmsg(c, "blocking call on an asynchronous client");
        return SKIFF_EWRONG_MODE;
    }
    uv_update_time(c->loop);
    int64_t deadline = skiff__now(c) + c->request_timeout_ms;
    uint64_t hint = 0;
    int rc = SKIFF_ENOT_LEADER;
    for (int attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
        skiff_client *lc;
        uint64_t leader = 0;
        rc = find_leader(c, deadline, hint, &lc, &leader);
        if (rc)
            break;
        if (from_out)
            *from_out = leader;
        skiff_op op = {.type = SKIFF_OP_MOVE_LEADER,
                       .member_id = target,
                       .timeout_ms = left_ms(c, deadline)};
        skiff_result_free(res);
        rc = skiff_do_sync(lc, &op, res);
        if (rc)
            skiff__errmsg(c, "%s", skiff_client_errmsg(lc));
        skiff_client_destroy(lc);
        if (rc != SKIFF_ENOT_LEADER)
            break;
        /* Leadership moved since the search: search again, starting from
         * the member the old leader named. */
        hint = res->leader_hint;
    }
    if (res == &tmp)
        skiff_result_free(&tmp);
    return rc;
}
