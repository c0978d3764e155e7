/*
 * The Raft driver: feeds the core (ticks, peer messages, proposals) and
 * carries out its ready batches on the one loop thread.
 *
 * Durability: a batch's hard state and entries go to the WAL in the
 * thread pool; batches that arrive while a WAL job runs queue up and the
 * next job writes them all with one fdatasync.  A batch whose only change
 * is the commit index is written without one, as etcd does: Raft does not
 * need the commit index durable (a restart takes the larger of it and the
 * store's applied index), and syncing it would put a second fdatasync
 * between every proposal and the next.  Messages the core marked
 * after_persist (votes, append answers) are held until their batch is
 * synced; the leader's appends to followers go out at once, so its own
 * fsync and the followers' overlap.  raft_persisted() then tells the core.
 *
 * Committed entries go to the apply pipeline (apply.c), read states to
 * the read rounds (readindex.c), snapshots to snapship.c.
 *
 * Log compaction: every snapshot-count applied entries the store is
 * synced (so it durably holds the applied index) and the log is cut
 * snapshot-catchup-entries behind it, in the core and in the WAL.  A
 * follower further behind than that gets the store itself (snapship.c).
 *
 * A WAL that fails cannot be trusted to hold what the core believes is
 * durable, so the member stops (exit 1) instead of acknowledging more.
 */
#include "server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void pbatch_free(pbatch *b)
{
    for (size_t i = 0; i < b->n; i++)
        raft_blob_unref(b->ents[i].blob);
    cm_free(b->ents);
    for (size_t i = 0; i < b->nmsgs; i++)
        raft_msg_free(&b->msgs[i]);
    cm_free(b->msgs);
    memset(b, 0, sizeof *b);
}

static void die(server *s, const char *what, int rc, const char *detail)
{
    CM_ERROR("fatal: this member stops", "what=\"%s\" error=%s detail=\"%s\"",
             what, cm_err_name(rc), detail ? detail : "");
    s->fatal = true;
    s->exit_code = 1;
    srv_stop(s);
}

/* ---- persisting ------------------------------------------------------------ */

static void persist_work(uv_work_t *w)
{
    server *s = w->data;
    int rc = 0;
    bool sync = s->job_release_index != 0;
    for (size_t i = 0; i < s->npjob && !rc; i++) {
        pbatch *b = &s->pjob[i];
        sync = sync || b->sync;
        if (b->has_snap)
            rc = wal_release(s->w, b->snap.index, b->snap.term);
        if (!rc && (b->has_hs || b->n))
            rc = wal_append(s->w, b->has_hs ? &b->hs : NULL, b->ents, b->n);
    }
    s->persist_sync_ns = 0;
    if (!rc && sync && !s->cfg.unsafe_no_fsync) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        rc = wal_sync(s->w);
        clock_gettime(CLOCK_MONOTONIC, &b);
        uint64_t ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u +
                      (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
        s->persist_sync_ns = ns ? ns : 1;
    }
    if (!rc && s->job_release_index)
        rc = wal_release(s->w, s->job_release_index, s->job_release_term);
    s->persist_rc = rc;
}

static void persist_start(server *s);

static void persist_after(uv_work_t *w, int status)
{
    server *s = w->data;
    s->persisting = false;
    int rc = status < 0 ? status : s->persist_rc;
    if (rc) {
        die(s, "WAL write", rc, wal_errmsg(s->w));
        for (size_t i = 0; i < s->npjob; i++)
            pbatch_free(&s->pjob[i]);
        s->npjob = 0;
        return;
    }
    s->job_release_index = 0;
    s->m.wal_writes++;
    if (s->persist_sync_ns) {
        s->m.wal_fsyncs++;
        s->m.wal_fsync_ns_total += s->persist_sync_ns;
        unsigned k = 0;
        for (uint64_t q = s->persist_sync_ns / 250000; q && k < 15; q >>= 1)
            k++;
        s->m.wal_fsync_hist[k]++;
    }
    for (size_t i = 0; i < s->npjob; i++) {
        pbatch *b = &s->pjob[i];
        for (size_t k = 0; k < b->nmsgs; k++)
            if (s->t) /* gone once a shutdown closed the transport */
                rt_send(s->t, &b->msgs[k]);
        uint64_t last = 0, term = 0;
        if (b->has_snap) {
            last = b->snap.index;
            term = b->snap.term;
        }
        if (b->n) {
            last = b->ents[b->n - 1].index;
            term = b->ents[b->n - 1].term;
        }
        if (last && s->r && !s->fatal) {
            int prc = raft_persisted(s->r, last, term);
            if (prc)
                die(s, "raft_persisted", prc, raft_errmsg(s->r));
        }
        pbatch_free(b);
    }
    s->npjob = 0;
    if (s->stopping) {
        srv_stop(s);
        return;
    }
    srv_node_kick(s);
    persist_start(s);
}

static void persist_start(server *s)
{
    if (s->persisting || s->fatal || (!s->npq && !s->release_index))
        return;
    /* Swap the queue into the job. */
    pbatch *t = s->pjob;
    s->pjob = s->pq;
    s->npjob = s->npq;
    s->pq = t;
    s->npq = 0;
    s->job_release_index = s->release_index;
    s->job_release_term = s->release_term;
    s->release_index = 0;
    s->persisting = true;
    s->persist_req.data = s;
    uv_queue_work(s->loop, &s->persist_req, persist_work, persist_after);
}

static int pq_push(server *s, pbatch *b)
{
    if (s->npq == s->pq_cap) {
        /* pq and pjob swap, so both keep the same capacity. */
        size_t cap = s->pq_cap ? s->pq_cap * 2 : 16;
        pbatch *a = cm_realloc(s->pq, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        s->pq = a;
        pbatch *j = cm_realloc(s->pjob, cap * sizeof *j);
        if (!j)
            return -ENOMEM;
        s->pjob = j;
        s->pq_cap = cap;
    }
    s->pq[s->npq++] = *b;
    return 0;
}

/* ---- compaction ------------------------------------------------------------ */

static void compact_work(uv_work_t *w)
{
    server *s = w->data;
    s->compact_rc = kv_sync(s->kv);
}

static void compact_after(uv_work_t *w, int status)
{
    server *s = w->data;
    s->compacting = false;
    if (s->stopping) {
        srv_stop(s); /* it waited for this job */
        return;
    }
    int rc = status < 0 ? status : s->compact_rc;
    if (rc || s->fatal || !s->r) {
        if (rc)
            CM_WARN("store sync before log compaction failed", "error=%s",
                    cm_err_name(rc));
        return;
    }
    /* The store durably holds everything applied before the sync began;
     * cut the log snapshot-catchup-entries behind that. */
    uint64_t durable = s->compact_target;
    if (durable <= s->cfg.snapshot_catchup)
        return;
    uint64_t idx = durable - s->cfg.snapshot_catchup;
    if (idx <= s->compacted)
        return;
    uint64_t term;
    if (raft_term_at(s->r, idx, &term))
        return;
    rc = raft_compact(s->r, idx);
    if (rc && rc != RAFT_ECOMPACTED) {
        CM_WARN("log compaction refused", "index=%llu error=%s",
                (unsigned long long)idx, cm_err_name(rc));
        return;
    }
    s->compacted = idx;
    s->release_index = idx;
    s->release_term = term;
    CM_INFO("compacted raft log", "index=%llu term=%llu",
            (unsigned long long)idx, (unsigned long long)term);
    persist_start(s);
}

static void maybe_compact(server *s)
{
    if (s->compacting || s->fatal ||
        s->applied < s->compacted + s->cfg.snapshot_count +
                         s->cfg.snapshot_catchup)
        return;
    s->compacting = true;
    s->compact_target = s->applied;
    s->compact_req.data = s;
    uv_queue_work(s->loop, &s->compact_req, compact_work, compact_after);
}

/* ---- ready ----------------------------------------------------------------- */

static void soft_state(server *s, const raft_ready *rd)
{
    bool was_leader = s->role == RAFT_LEADER;
    raft_id old = s->lead;
    s->role = rd->role;
    s->lead = rd->lead;
    raft_status st;
    raft_status_get(s->r, &st);
    s->term = st.term;
    if (old != s->lead) {
        CM_INFO("leader changed", "leader=%016llx term=%llu role=%s",
                (unsigned long long)s->lead, (unsigned long long)s->term,
                raft_role_name(s->role));
        srv_leader_changed(s);
    }
    if (s->role == RAFT_LEADER && !was_leader) {
        /* A new leader gives every lease its full TTL again, through the
         * log, so time without a leader never expires a live lease; it
         * expires nothing until that refresh is applied. */
        s->lease_ready = false;
        Skiffpb__LeaseRefreshAllRequest ra =
            SKIFFPB__LEASE_REFRESH_ALL_REQUEST__INIT;
        Skiffpb__Command cmd = SKIFFPB__COMMAND__INIT;
        cmd.op_case = SKIFFPB__COMMAND__OP_LEASE_REFRESH_ALL;
        cmd.lease_refresh_all = &ra;
        if (srv_propose(s, NULL, 0, 0, &cmd, 0) == 0)
            s->refresh_pending = cmd.id;
    } else if (s->role != RAFT_LEADER) {
        s->lease_ready = false;
        s->refresh_pending = 0;
    }
}

static int handle_ready(server *s)
{
    raft_ready rd;
    int rc = raft_ready_get(s->r, &rd);
    if (rc)
        return rc;
    if (rd.role != s->role || rd.lead != s->lead)
        soft_state(s, &rd);
    /* The term can change without the leader changing (a leader
     * re-elected while this member was cut off): forwards and waiters are
     * tagged with the current term, so track every change. */
    if (rd.has_hard_state)
        s->term = rd.hs.term;
    pbatch b = {0};
    b.has_hs = rd.has_hard_state;
    b.hs = rd.hs;
    if (rd.has_hard_state &&
        (rd.hs.term != s->hs_term || rd.hs.vote != s->hs_vote)) {
        b.sync = true;
        s->hs_term = rd.hs.term;
        s->hs_vote = rd.hs.vote;
    }
    if (rd.snapshot) {
        b.has_snap = true;
        b.sync = true;
        b.snap = *rd.snapshot;
        /* The store already holds the snapshot (restored before the core
         * saw it); its applied index is at or past the snapshot's. */
        if (s->applied < rd.snapshot->index)
            s->applied = rd.snapshot->index;
        s->compacted = rd.snapshot->index;
    }
    if (rd.n_entries) {
        b.ents = cm_malloc(rd.n_entries * sizeof *b.ents);
        if (!b.ents) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < rd.n_entries; i++) {
            b.ents[i] = rd.entries[i];
            raft_blob_ref(b.ents[i].blob);
        }
        b.n = rd.n_entries;
        b.sync = true;
    }
    for (size_t i = 0; i < rd.n_msgs; i++) {
        const raft_msg *m = &rd.msgs[i];
        if (m->type == RAFT_MSG_SNAPSHOT) {
            srv_snap_send(s, m);
            continue;
        }
        if (!m->after_persist) {
            rt_send(s->t, m);
            continue;
        }
        if (!b.msgs && !(b.msgs = cm_malloc(rd.n_msgs * sizeof *b.msgs))) {
            rc = -ENOMEM;
            goto out;
        }
        if ((rc = raft_msg_copy(&b.msgs[b.nmsgs], m)))
            goto out;
        b.nmsgs++;
    }
    if (rd.n_committed &&
        (rc = srv_apply_enqueue(s, rd.committed, rd.n_committed)))
        goto out;
    for (size_t i = 0; i < rd.n_reads; i++)
        srv_read_state(s, &rd.reads[i]);
    if (b.has_hs || b.has_snap || b.n || b.nmsgs) {
        if ((rc = pq_push(s, &b)))
            goto out;
        memset(&b, 0, sizeof b);
    }
out:
    pbatch_free(&b);
    if (rc)
        return rc;
    return raft_advance(s->r, &rd);
}

static void on_ready_idle(uv_idle_t *h)
{
    server *s = h->data;
    uv_idle_stop(h);
    s->ready_on = false;
    if (!s->r || s->fatal)
        return;
    srv_flush_proposals(s);
    srv_reads_flush(s);
    int guard = 0;
    while (raft_has_ready(s->r) && ++guard < 64) {
        int rc = handle_ready(s);
        if (rc) {
            die(s, "raft ready", rc, raft_errmsg(s->r));
            return;
        }
    }
    if (raft_has_ready(s->r))
        srv_node_kick(s);
    persist_start(s);
    srv_apply_kick(s);
    maybe_compact(s);
}

void srv_node_kick(server *s)
{
    if (s->ready_on || !s->r || s->stopping)
        return;
    s->ready_on = true;
    uv_idle_start(&s->ready_idle, on_ready_idle);
}

/* ---- inputs ---------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    server *s = t->data;
    if (!s->r || s->fatal)
        return;
    int rc = raft_tick(s->r);
    if (rc) {
        die(s, "raft tick", rc, raft_errmsg(s->r));
        return;
    }
    srv_node_kick(s);
}

static void on_recv(rt *t, const raft_msg *m, void *data)
{
    (void)t;
    server *s = data;
    if (!s->r || s->fatal || s->stopping)
        return;
    if (m->type == RAFT_MSG_APP) {
        srv_app_msg(s, m);
    } else if (m->type != RAFT_MSG_SNAPSHOT) {
        /* Snapshots arrive as chunks (APP_SNAP_CHUNK); a bare snapshot
         * message would claim state this member does not hold. */
        int rc = raft_step(s->r, m);
        if (rc) {
            die(s, "raft step", rc, raft_errmsg(s->r));
            return;
        }
    }
    srv_node_kick(s);
}

static void on_unreachable(rt *t, raft_id id, void *data)
{
    (void)t;
    server *s = data;
    if (s->r && !s->fatal && s->role == RAFT_LEADER) {
        raft_report_unreachable(s->r, id);
        srv_node_kick(s);
    }
}

int srv_app_send(server *s, raft_id to, uint32_t kind, raft_msg *m)
{
    m->type = RAFT_MSG_APP;
    m->ctx = kind;
    m->from = s->member_id;
    m->to = to;
    m->term = s->term;
    /* Pool jobs can finish after a shutdown closed the transport. */
    return s->t ? rt_send(s->t, m) : CM_EINVAL;
}

static int tls_configs(server *s)
{
    srv_config *c = &s->cfg;
    if (!c->peer_cert_file[0])
        return 0;
    cm_tls_config sv = {0}, cl = {0};
    sv.server = 1;
    sv.cert_file = c->peer_cert_file;
    sv.key_file = c->peer_key_file;
    sv.ca_file = c->peer_trusted_ca_file[0] ? c->peer_trusted_ca_file : NULL;
    sv.require_client_cert = sv.ca_file != NULL;
    cl.server = 0;
    cl.cert_file = c->peer_cert_file;
    cl.key_file = c->peer_key_file;
    cl.ca_file = sv.ca_file;
    int rc = rt_set_tls(s->t, &sv, &cl);
    if (rc)
        fprintf(stderr, "skiffd: peer TLS: %s\n", cm_strerror(rc));
    return rc ? -1 : 0;
}

int srv_node_start(server *s)
{
    char host[128];
    int port;
    if (srv_parse_addr(s->cfg.listen_peer, host, sizeof host, &port)) {
        fprintf(stderr, "skiffd: --listen-peer-urls: cannot parse \"%s\"\n",
                s->cfg.listen_peer);
        return -1;
    }
    char addr[160];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d",
             host, port);
    int rc = rt_create(&s->t, s->loop, s->member_id, addr, on_recv, s);
    if (rc) {
        fprintf(stderr, "skiffd: listen for peers on %s: %s\n", addr,
                cm_strerror(rc));
        return -1;
    }
    if (tls_configs(s))
        return -1;
    rt_set_unreachable_cb(s->t, on_unreachable);
    /* Enough room for a window of snapshot chunks next to the traffic. */
    rt_set_limits(s->t, 0, 64u << 20);
    uv_idle_init(s->loop, &s->ready_idle);
    s->ready_idle.data = s;
    uv_timer_init(s->loop, &s->tick_timer);
    s->tick_timer.data = s;
    uv_timer_start(&s->tick_timer, on_tick, s->cfg.heartbeat_ms,
                   s->cfg.heartbeat_ms);
    srv_sweep_start(s);
    srv_corrupt_start(s);
    /* A lone voter need not wait an election timeout to lead. */
    raft_status st;
    raft_status_get(s->r, &st);
    if (st.conf.n_voters == 1 && st.conf.voters[0] == s->member_id)
        raft_campaign(s->r);
    srv_node_kick(s);
    return 0;
}

void srv_node_close(server *s)
{
    if (s->t) {
        rt_close(s->t, NULL);
        s->t = NULL;
    }
}

void srv_node_free(server *s)
{
    for (size_t i = 0; i < s->npq; i++)
        pbatch_free(&s->pq[i]);
    for (size_t i = 0; i < s->npjob; i++)
        pbatch_free(&s->pjob[i]);
    cm_free(s->pq);
    cm_free(s->pjob);
    srv_apply_free(s);
    srv_snap_free(s);
    raft_destroy(s->r);
    s->r = NULL;
    if (s->w) {
        wal_close(s->w);
        s->w = NULL;
    }
}
