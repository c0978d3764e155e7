/*
 * The corruption check: members compare HashKV at the same revision.
 *
 * Every member applies the same entries, so at any revision R that all of
 * them hold with the same compaction, their HashKV must be equal.  A member
 * checks its own store against its peers shortly after it starts (the
 * initial check) and the leader checks everyone every
 * --experimental-corrupt-check-time.  The checker hashes its store at its
 * current revision R in the pool and asks each peer (APP_HASH_REQ) for the
 * hash at R; a peer that does not hold R yet, or compacted past it, says so
 * and is skipped.  A mismatch is logged as an error naming both members and
 * raises the CORRUPT alarm through the log, which `skiffctl alarm list`
 * shows on every member.
 */
#include "server_int.h"

#include <errno.h>
#include <string.h>

typedef struct hash_job {
    uv_work_t w;
    server *s;
    raft_id reply_to; /* 0: our own check */
    int64_t rev;
    kv_hash h;
    int rc;
} hash_job;

static void hash_work(uv_work_t *w)
{
    hash_job *j = w->data;
    j->rc = kv_hash_get(j->s->kv, j->rev, &j->h);
}

static void ask_peers(server *s)
{
    for (size_t i = 0; i < s->npeers; i++) {
        raft_msg m = {0};
        m.index = (uint64_t)s->ck_rev;
        srv_app_send(s, s->peers[i], APP_HASH_REQ, &m);
    }
}

static void hash_after(uv_work_t *w, int status)
{
    hash_job *j = w->data;
    server *s = j->s;
    if (status < 0)
        j->rc = status;
    if (!j->reply_to) {
        s->ck_running = false;
        if (!j->rc && !s->stopping) {
            s->ck_rev = j->rev;
            s->ck_hash = j->h.hash;
            s->ck_compact = j->h.compact_revision;
            ask_peers(s);
        }
    } else if (s->t && !s->stopping) {
        raft_msg m = {0};
        m.index = (uint64_t)j->rev;
        m.commit = j->h.hash;
        m.hint = (uint64_t)j->h.compact_revision;
        m.reject = j->rc != 0;
        srv_app_send(s, j->reply_to, APP_HASH_RESP, &m);
    }
    cm_free(j);
}

static int start_hash(server *s, raft_id reply_to, int64_t rev)
{
    hash_job *j = cm_calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->s = s;
    j->reply_to = reply_to;
    j->rev = rev;
    j->w.data = j;
    int rc = uv_queue_work(s->loop, &j->w, hash_work, hash_after);
    if (rc)
        cm_free(j);
    return rc;
}

/* Starts one round: hash our store at its revision, then ask the peers. */
void srv_corrupt_check(server *s)
{
    if (s->ck_running || s->stopping || s->fatal || !s->npeers)
        return;
    int64_t rev = watch_hub_revision(s->hub);
    if (rev <= 0)
        return;
    if (start_hash(s, 0, rev) == 0)
        s->ck_running = true;
}

static void raise_alarm(server *s, raft_id bad)
{
    kv_status st;
    if (kv_status_meta(s->kv, &st) == 0 && st.corrupt_alarm)
        return; /* raised already */
    Skiffpb__AlarmRequest a = SKIFFPB__ALARM_REQUEST__INIT;
    a.action = SKIFFPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    a.alarm = SKIFFPB__ALARM_TYPE__CORRUPT;
    a.memberid = bad;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_ALARM;
    c.alarm = &a;
    srv_propose(s, NULL, 0, 0, &c, 0);
}

void srv_corrupt_found(server *s, const char *what)
{
    if (s->damage_seen)
        return;
    s->damage_seen = true;
    CM_ERROR("stored data failed its check: raising the CORRUPT alarm",
             "detail=\"%s\"", what ? what : "");
    raise_alarm(s, s->member_id);
}

void srv_corrupt_on_app(server *s, const raft_msg *m)
{
    if (m->ctx == APP_HASH_REQ) {
        int64_t rev = (int64_t)m->index;
        if (rev > watch_hub_revision(s->hub)) {
            raft_msg r = {0};
            r.index = m->index;
            r.reject = 1; /* not there yet */
            srv_app_send(s, m->from, APP_HASH_RESP, &r);
            return;
        }
        start_hash(s, m->from, rev);
        return;
    }
    /* APP_HASH_RESP to our round. */
    if (m->reject || (int64_t)m->index != s->ck_rev || !s->ck_rev)
        return;
    s->m.corrupt_checks++;
    if ((int64_t)m->hint != s->ck_compact)
        return; /* different compaction points: not comparable */
    if ((uint32_t)m->commit == s->ck_hash)
        return;
    CM_ERROR("corruption detected: HashKV differs between members",
             "revision=%lld local-member=%016llx local-hash=%u "
             "peer=%016llx peer-hash=%u compact-revision=%lld",
             (long long)s->ck_rev, (unsigned long long)s->member_id,
             (unsigned)s->ck_hash, (unsigned long long)m->from,
             (unsigned)m->commit, (long long)s->ck_compact);
    s->m.corrupt_mismatches++;
    /* Which side is wrong is not known here; the alarm names the member
     * that disagrees with the checker. */
    raise_alarm(s, m->from);
}

static void on_check_timer(uv_timer_t *t)
{
    server *s = t->data;
    if (!s->ck_initial_done) {
        /* The initial check waits until this member has a leader and has
         * applied what it knew at start. */
        if (!s->lead)
            return;
        s->ck_initial_done = true;
        srv_corrupt_check(s);
        if (s->ck_period_ms)
            uv_timer_start(t, on_check_timer, s->ck_period_ms,
                           s->ck_period_ms);
        else
            uv_timer_stop(t);
        return;
    }
    if (s->role == RAFT_LEADER)
        srv_corrupt_check(s);
}

void srv_corrupt_start(server *s)
{
    int64_t period = srv_parse_duration(s->cfg.corrupt_check_time, 60e3);
    s->ck_period_ms = period > 0 ? (uint64_t)period : 0;
    uv_timer_init(s->loop, &s->ck_timer);
    s->ck_timer.data = s;
    s->ck_initial_done = !s->cfg.initial_corrupt_check;
    if (!s->ck_initial_done)
        uv_timer_start(&s->ck_timer, on_check_timer, 1000, 1000);
    else if (s->ck_period_ms)
        uv_timer_start(&s->ck_timer, on_check_timer, s->ck_period_ms,
                       s->ck_period_ms);
}
