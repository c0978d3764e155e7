/*
 * Membership faults: remove a member and add it back with a fresh data
 * dir, and hand leadership to another member, while the load runs.
 *
 * A member's id is derived from its advertised peer URL, so the re-added
 * member gets a new peer port (JR_PEER_PORT + generation) and with it a
 * new id: a store must never confuse it with the member it removed.  It
 * joins as a learner, and is promoted once it has caught up (the store
 * answers LEARNER_NOT_READY until then; we retry, which is the point of
 * that error).
 */
#include "jepsen_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int jr_member_move_leader(jr_run *r, jr_rng *rng)
{
    int li = jr_leader(r, 3000);
    if (li < 0)
        return -1;
    int k = jr_randn(rng, r->n), target = -1;
    for (int t = 0; t < r->n; t++) {
        int i = (k + t) % r->n;
        if (i != li && !r->nodes[i].removed && r->nodes[i].id &&
            jr_node_alive(r, i)) {
            target = i;
            break;
        }
    }
    if (target < 0)
        return -1;
    skiff_client *c = jr_client(r, 0, -1, 5000);
    if (!c)
        return -1;
    skiff_result res = {0};
    uint64_t from = 0;
    int rc = skiff_move_leader(c, r->nodes[target].id, &from, &res);
    jr_log(r, "move-leader %s -> %s: %s", r->nodes[li].name,
           r->nodes[target].name, rc ? skiff_err_name(rc) : "ok");
    skiff_result_free(&res);
    skiff_client_destroy(c);
    return rc;
}

/* 1 when id is in the leader's member list, 0 when it is not, -1 when no
 * leader answered.  The leader has applied every change it committed. */
static int still_member(jr_run *r, uint64_t id)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        int li = jr_leader(r, 3000);
        skiff_client *c = li >= 0 ? jr_client(r, 0, li, 3000) : NULL;
        skiff_result res = {0};
        int rc = c ? skiff_member_list(c, &res) : -1;
        int found = 0;
        for (size_t k = 0; !rc && k < res.n_members; k++)
            found |= res.members[k].id == id;
        skiff_result_free(&res);
        if (c)
            skiff_client_destroy(c);
        if (!rc)
            return found;
        jr_sleep_ms(300);
    }
    return -1;
}

int jr_member_replace(jr_run *r, int i, jr_rng *rng)
{
    (void)rng;
    jr_node *nd = &r->nodes[i];
    if (!nd->id) {
        skiff_result st = {0};
        jr_node_status(r, i, &st, 1000);
        skiff_result_free(&st);
    }
    if (!nd->id)
        return -1;
    skiff_client *c = jr_client(r, i + 1, -1, 5000);
    if (!c)
        return -1;
    skiff_result res = {0};
    int rc = skiff_member_remove(c, nd->id, &res);
    jr_log(r, "member remove %s (%016llx): %s%s%s", nd->name,
           (unsigned long long)nd->id, rc ? skiff_err_name(rc) : "ok",
           res.error_message ? " " : "",
           res.error_message ? res.error_message : "");
    skiff_result_free(&res);
    if (rc && still_member(r, nd->id) == 0) {
        /* An unknown outcome (a timeout, a lost connection) that was in
         * fact applied: the member list says so.  A forwarding member that
         * catches up by snapshot never sees the entry applied on its own,
         * so its caller times out although the change went through. */
        jr_log(r, "member remove %s: outcome was unknown; the member list "
                  "no longer has it", nd->name);
        rc = 0;
    }
    if (rc) {
        skiff_client_destroy(c);
        return rc;
    }
    /* It stops by itself once it applies its removal; if it is cut off it
     * never learns, so make sure. */
    jr_node_kill(r, i, SIGKILL, 0);
    pthread_mutex_lock(&r->lock);
    nd->removed = 1;
    nd->generation++;
    nd->id = 0;
    jr_fmt(nd->peer_url, sizeof nd->peer_url, "http://%s:%d", nd->ip,
           JR_PEER_PORT + nd->generation);
    pthread_mutex_unlock(&r->lock);
    jr_sh(r, "rm -rf '%s'", nd->data_dir);

    const char *urls[1] = {nd->peer_url};
    uint64_t end = jr_now_ns() + 20000000000ULL;
    do {
        rc = skiff_member_add(c, urls, 1, 1, &res);
        if (!rc && res.member.id)
            nd->id = res.member.id;
        jr_log(r, "member add %s as learner (%s): %s", nd->name, nd->peer_url,
               rc ? skiff_err_name(rc) : "ok");
        skiff_result_free(&res);
        if (rc == SKIFF_EMEMBER_EXISTS)
            rc = 0; /* an earlier attempt with an unknown outcome won */
        if (rc)
            jr_sleep_ms(500);
    } while (rc && jr_now_ns() < end);
    if (rc) {
        skiff_client_destroy(c);
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    nd->removed = 0;
    pthread_mutex_unlock(&r->lock);
    if (jr_node_start(r, i, "existing") || jr_node_wait_ready(r, i, 20000)) {
        jr_log(r, "%s did not come back after re-add", nd->name);
        skiff_client_destroy(c);
        return -1;
    }
    end = jr_now_ns() + 30000000000ULL;
    do {
        if (!nd->id) {
            skiff_result st = {0};
            jr_node_status(r, i, &st, 1000);
            skiff_result_free(&st);
        }
        rc = nd->id ? skiff_member_promote(c, nd->id, &res) : -1;
        skiff_result_free(&res);
        if (rc)
            jr_sleep_ms(300); /* LEARNER_NOT_READY: it is catching up */
    } while (rc && rc != SKIFF_EMEMBER_NOT_LEARNER && jr_now_ns() < end);
    jr_log(r, "member promote %s: %s", nd->name,
           rc ? skiff_err_name(rc) : "ok");
    skiff_client_destroy(c);
    return rc == SKIFF_EMEMBER_NOT_LEARNER ? 0 : rc;
}
