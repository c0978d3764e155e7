/*
 * The write pipeline: proposals in, committed entries applied, replies out.
 *
 * A write is packed as a Command with a member-unique id and a waiter is
 * filed under that id.  Once per loop turn every queued command goes to
 * Raft in one raft_propose_batch on the leader, or in one APP_FORWARD
 * message to the leader on a follower.  Whichever member proposes, every
 * member applies the entry; the one holding the waiter answers.  A waiter
 * whose command was never handed over fails with NO_LEADER; one that was
 * handed over and not applied by its deadline fails with TIMEOUT, which
 * says the outcome is unknown (the entry may still commit).
 *
 * Committed entries are applied in the thread pool, at most max_batch per
 * LMDB transaction and one transaction at a time (LMDB's single writer);
 * while one runs, new committed entries gather, so the batch grows with
 * the load.  Watchers get each revision's events before the writers get
 * their replies.  The applied index is recorded in the same transaction,
 * so a restart re-applies exactly what is missing.
 */
#include "server_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define REQUEST_TIMEOUT_MS 7000

/* ---- waiters -------------------------------------------------------------- */

static waiter **bucket(server *s, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return &s->waiters[h >> 52 & (WAITER_BUCKETS - 1)];
}

waiter *srv_waiter_take(server *s, uint64_t cmd_id)
{
    if (!cmd_id || !s->nwaiters)
        return NULL;
    for (waiter **p = bucket(s, cmd_id); *p; p = &(*p)->next)
        if ((*p)->cmd_id == cmd_id) {
            waiter *w = *p;
            *p = w->next;
            s->nwaiters--;
            return w;
        }
    return NULL;
}

void srv_waiter_free(server *s, waiter *w)
{
    if (w->c)
        conn_unref(w->c);
    w->next = s->waiter_free;
    s->waiter_free = w;
}

static void forget_revoking(server *s, int64_t lease)
{
    for (size_t i = 0; i < s->nrevoking; i++)
        if (s->revoking[i] == lease) {
            s->revoking[i] = s->revoking[--s->nrevoking];
            return;
        }
}

void srv_waiter_fail(server *s, waiter *w, Skiffpb__ErrorCode code,
                     const char *msg)
{
    if (w->c && conn_alive(w->c, w->conn_gen)) {
        if (code == SKIFFPB__ERROR_CODE__NOT_LEADER)
            code = SKIFFPB__ERROR_CODE__NO_LEADER;
        conn_send_code(w->c, w->stream, code, msg, 0);
    }
    if (!w->c && w->lease_id)
        forget_revoking(s, w->lease_id);
    s->m.proposals_failed++;
    srv_waiter_free(s, w);
}

/* An entry of term T was applied: every command sent in an earlier term
 * that is still waiting can never be applied.  A leader takes forwarded
 * commands only in the term they were sent in, so a command sent in term
 * t < T sits in the log at a term-t index, and all term-t entries that
 * will ever commit come before the first entry of term T.  Their writers
 * learn at once, and for certain, that nothing was written. */
static void fail_stale(server *s, uint64_t term)
{
    for (size_t b = 0; b < WAITER_BUCKETS && s->nwaiters; b++)
        for (waiter **p = &s->waiters[b]; *p;) {
            waiter *w = *p;
            if (!w->sent || w->sent_term >= term) {
                p = &w->next;
                continue;
            }
            *p = w->next;
            s->nwaiters--;
            srv_waiter_fail(s, w, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                            "leader changed; the request was not applied");
        }
}

/* Fails every waiter whose deadline passed; runs every 250 ms. */
static void on_sweep(uv_timer_t *t)
{
    server *s = t->data;
    int64_t now = cm_mono_ms();
    for (size_t b = 0; b < WAITER_BUCKETS && s->nwaiters; b++)
        for (waiter **p = &s->waiters[b]; *p;) {
            waiter *w = *p;
            if (w->deadline > now) {
                p = &w->next;
                continue;
            }
            *p = w->next;
            s->nwaiters--;
            if (w->sent)
                srv_waiter_fail(s, w, SKIFFPB__ERROR_CODE__TIMEOUT,
                                "request timed out; it may or may not have "
                                "been applied");
            else
                srv_waiter_fail(s, w, SKIFFPB__ERROR_CODE__NO_LEADER,
                                "no leader; the request was not applied");
        }
    srv_reads_sweep(s);
    srv_snap_sweep(s);
    srv_move_leader_sweep(s);
    srv_gone_sweep(s);
}

static void on_early(uv_async_t *h);

int srv_queue_read_job(server *s, srv_held_job *h, uv_work_t *w,
                       uv_work_cb work, uv_after_work_cb after)
{
    if (!s->hold_reads)
        return uv_queue_work(s->loop, w, work, after);
    *h = (srv_held_job){NULL, w, work, after};
    if (!s->held_jobs_tail)
        s->held_jobs_tail = &s->held_jobs;
    *s->held_jobs_tail = h;
    s->held_jobs_tail = &h->next;
    return 0;
}

void srv_held_jobs_release(server *s)
{
    while (s->held_jobs && !s->hold_reads) {
        srv_held_job *h = s->held_jobs;
        s->held_jobs = h->next;
        if (!s->held_jobs)
            s->held_jobs_tail = &s->held_jobs;
        if (uv_queue_work(s->loop, h->w, h->work, h->after))
            h->after(h->w, UV_ECANCELED);
    }
}

void srv_sweep_start(server *s)
{
    uv_async_init(s->loop, &s->early_async, on_early);
    s->early_async.data = s;
    uv_timer_init(s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_start(&s->sweep_timer, on_sweep, 250, 250);
}

/* ---- proposals ------------------------------------------------------------ */

waiter *srv_waiter_add(server *s, conn *c, uint64_t stream, int op,
                       Skiffpb__Command *cmd, int64_t lease_id)
{
    waiter *w = s->waiter_free;
    if (w)
        s->waiter_free = w->next;
    else if (!(w = cm_malloc(sizeof *w)))
        return NULL;
    cmd->id = ++s->next_cmd_id;
    cmd->time_ms = srv_clock_ms(s);
    *w = (waiter){cmd->id, c, stream, c ? c->gen : 0, op, lease_id,
                  cm_mono_ms() + REQUEST_TIMEOUT_MS, false, s->term, NULL};
    waiter **b = bucket(s, cmd->id);
    w->next = *b;
    *b = w;
    s->nwaiters++;
    if (c)
        conn_ref(c);
    return w;
}

int srv_propose(server *s, conn *c, uint64_t stream, int op,
                Skiffpb__Command *cmd, int64_t lease_id)
{
    if (s->stopping || s->fatal)
        return -ESHUTDOWN;
    if (s->nprops == s->props_cap) {
        size_t cap = s->props_cap ? s->props_cap * 2 : 256;
        size_t *ne = cm_realloc(s->prop_end, cap * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        s->prop_end = ne;
        uint64_t *ni = cm_realloc(s->prop_ids, cap * sizeof *ni);
        if (!ni)
            return -ENOMEM;
        s->prop_ids = ni;
        s->props_cap = cap;
    }
    waiter *w = srv_waiter_add(s, c, stream, op, cmd, lease_id);
    if (!w)
        return -ENOMEM;
    size_t off = s->props.len;
    int rc = kv_command_pack(cmd, &s->props);
    if (rc) {
        s->props.len = off;
        srv_waiter_free(s, srv_waiter_take(s, cmd->id));
        return rc;
    }
    s->prop_end[s->nprops] = s->props.len;
    s->prop_ids[s->nprops++] = cmd->id;
    srv_node_kick(s);
    return 0;
}

static void mark_sent(server *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (waiter *w = *bucket(s, s->prop_ids[i]); w; w = w->next)
            if (w->cmd_id == s->prop_ids[i]) {
                w->sent = true;
                w->sent_term = s->term;
                break;
            }
}

void srv_flush_proposals(server *s)
{
    if (!s->nprops)
        return;
    size_t n = s->nprops;
    if (s->role == RAFT_LEADER) {
        const void *data[256];
        size_t len[256];
        size_t done = 0;
        while (done < n) {
            size_t k = n - done < 256 ? n - done : 256;
            for (size_t i = 0; i < k; i++) {
                size_t start = done + i ? s->prop_end[done + i - 1] : 0;
                data[i] = s->props.base + start;
                len[i] = s->prop_end[done + i] - start;
            }
            int rc = raft_propose_batch(s->r, data, len, k, NULL);
            if (rc) {
                /* Not proposed: leave them queued (a transfer in progress
                 * or a lost leadership); the sweep fails them in time. */
                if (rc != RAFT_ENOTLEADER && rc != RAFT_EBUSY)
                    CM_WARN("propose failed", "error=%s", cm_err_name(rc));
                break;
            }
            done += k;
        }
        mark_sent(s, done);
        if (done < n) {
            size_t cut = done ? s->prop_end[done - 1] : 0;
            memmove(s->props.base, s->props.base + cut, s->props.len - cut);
            s->props.len -= cut;
            for (size_t i = done; i < n; i++) {
                s->prop_end[i - done] = s->prop_end[i] - cut;
                s->prop_ids[i - done] = s->prop_ids[i];
            }
            s->nprops = n - done;
            return;
        }
    } else if (s->lead) {
        raft_blob *b = raft_blob_create(s->props.len);
        raft_entry *e = cm_malloc(n * sizeof *e);
        if (!b || !e) {
            raft_blob_unref(b);
            cm_free(e);
            return; /* stay queued; retried next turn */
        }
        memcpy(raft_blob_bytes(b), s->props.base, s->props.len);
        for (size_t i = 0; i < n; i++) {
            size_t start = i ? s->prop_end[i - 1] : 0;
            e[i] = (raft_entry){0, 0, RAFT_ENTRY_NORMAL,
                                (uint32_t)(s->prop_end[i] - start),
                                raft_blob_bytes(b) + start, b};
        }
        raft_msg m = {0};
        m.entries = e;
        m.n_entries = n;
        /* A forward that could not even be queued counts as sent and
         * lost, like any message lost on the way: the waiters time out
         * with an unknown outcome, which is the truth for the ones that
         * did reach the leader. */
        srv_app_send(s, s->lead, APP_FORWARD, &m);
        mark_sent(s, n);
        cm_free(e);
        raft_blob_unref(b);
    } else {
        return; /* no leader yet: keep them until one is known */
    }
    s->nprops = 0;
    s->props.len = 0;
}

/* ---- apply ---------------------------------------------------------------- */

int srv_apply_enqueue(server *s, const raft_entry *e, size_t n)
{
    if (s->naq + n > s->aq_cap) {
        size_t cap = s->aq_cap ? s->aq_cap : 256;
        while (cap < s->naq + n)
            cap *= 2;
        aent *na = cm_realloc(s->aq, cap * sizeof *na);
        if (!na)
            return -ENOMEM;
        s->aq = na;
        s->aq_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        s->aq[s->naq++] = (aent){e[i].index, e[i].term, e[i].type, e[i].len,
                                 e[i].buf, e[i].blob};
        raft_blob_ref(e[i].blob);
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The packed Command of a NOOP entry (and of a change without context). */
static const uint8_t NOOP_CMD[] = {0xa2, 0x01, 0x00}; /* field 20, empty */

/* Pool thread: the job's results are final, only its commit is left. */
static void on_results_final(void *arg)
{
    server *s = arg;
    atomic_store_explicit(&s->early_seq, s->apply_seq, memory_order_release);
    uv_async_send(&s->early_async);
}

static void apply_work(uv_work_t *w)
{
    server *s = w->data;
    for (size_t i = 0; i < s->najob; i++) {
        const aent *a = &s->ajob[i];
        kv_entry *k = &s->kents[i];
        *k = (kv_entry){a->index, a->buf, a->len, a->term};
        if (a->type == RAFT_ENTRY_NOOP) {
            k->data = NOOP_CMD;
            k->len = sizeof NOOP_CMD;
        } else if (a->type == RAFT_ENTRY_CONF) {
            /* The context after the 9-byte change is the packed Command
             * carrying the member's details. */
            if (a->len > RAFT_CONF_CHANGE_LEN) {
                k->data = a->buf + RAFT_CONF_CHANGE_LEN;
                k->len = a->len - RAFT_CONF_CHANGE_LEN;
            } else {
                k->data = NOOP_CMD;
                k->len = sizeof NOOP_CMD;
            }
        }
    }
    uint64_t t0 = now_ns();
    s->apply_rc = kv_apply_batch_early(s->kv, s->kents, s->najob,
                                       &s->apply_arena, s->results,
                                       on_results_final, s);
    s->apply_ns = now_ns() - t0;
}

static void reply(server *s, const kv_result *r)
{
    waiter *w = srv_waiter_take(s, r->cmd_id);
    if (!w)
        return;
    if (!w->c) {
        if (w->lease_id)
            forget_revoking(s, w->lease_id);
        srv_waiter_free(s, w);
        return;
    }
    if (conn_alive(w->c, w->conn_gen))
        srv_applied(s, w, r);
    srv_waiter_free(s, w);
}

/* Loop: answers the running job's clients before its commit ends.  The
 * entries are committed in the log (durable on a majority), so the
 * answers are already true; what is not there yet is the store's view of
 * them, so reads wait (hold_reads) until apply_after.  Internal
 * proposals, compactions and membership changes are answered after the
 * commit, where the state they go on with is in place. */
static void on_early(uv_async_t *h)
{
    server *s = h->data;
    uint64_t seq = atomic_load_explicit(&s->early_seq, memory_order_acquire);
    if (!s->applying || seq != s->apply_seq || s->early_done || s->stopping)
        return;
    s->early_done = true;
    s->hold_reads = true;
    for (size_t i = 0; i < s->najob; i++) {
        const kv_result *r = &s->results[i];
        /* A compaction is answered after the commit: the hub learns of it
         * only then, and a watch opened below it must be refused. */
        if (r->skipped || r->op == SKIFFPB__COMMAND__OP_MEMBER_CHANGE ||
            r->op == SKIFFPB__COMMAND__OP_COMPACTION)
            continue;
        if (r->revision > s->early_rev)
            s->early_rev = r->revision;
        waiter *w = *bucket(s, r->cmd_id);
        while (w && w->cmd_id != r->cmd_id)
            w = w->next;
        if (!w || !w->c || !r->cmd_id)
            continue;
        w = srv_waiter_take(s, r->cmd_id);
        if (conn_alive(w->c, w->conn_gen))
            srv_applied(s, w, r);
        srv_waiter_free(s, w);
    }
}

static void apply_after(uv_work_t *w, int status)
{
    server *s = w->data;
    int rc = status < 0 ? status : s->apply_rc;
    s->applying = false;
    s->early_done = false;
    s->hold_reads = false;
    s->m.apply_batches++;
    s->m.apply_ns_total += s->apply_ns;
    unsigned k = 0;
    for (uint64_t q = s->apply_ns / 250000; q && k < 15; q >>= 1)
        k++;
    s->m.apply_hist[k]++;
    if (rc) {
        /* The store failed: this member cannot follow the log any more.
         * Stop rather than serve a state that diverges. */
        CM_ERROR("apply failed; stopping this member",
                 "entries=%zu error=%s detail=\"%s\"", s->najob,
                 kv_err_name(rc), kv_errmsg(s->kv));
        s->fatal = true;
        s->exit_code = 1;
        srv_reads_release(s); /* they fail on the failed store */
        srv_held_jobs_release(s);
        srv_http_release(s);
        srv_stop(s);
        return;
    }
    for (size_t i = 0; i < s->najob; i++)
        if (s->results[i].events.n &&
            watch_hub_notify(s->hub, &s->results[i].events))
            CM_ERROR("watch notify out of order", "revision=%lld",
                     (long long)s->results[i].events.revision);
    for (size_t i = 0; i < s->najob; i++) {
        const kv_result *r = &s->results[i];
        if (r->skipped)
            continue;
        if (s->refresh_pending && r->cmd_id == s->refresh_pending) {
            s->lease_ready = true;
            s->refresh_pending = 0;
        }
        reply(s, r); /* before a change that may stop this member */
        s->applied_now = r->index;
        if (r->op == SKIFFPB__COMMAND__OP_MEMBER_CHANGE && !r->code)
            srv_membership_changed(s, r->reply.membership);
    }
    s->m.proposals_committed += s->najob;
    if (s->najob && s->ajob[s->najob - 1].index > s->applied) {
        s->applied = s->ajob[s->najob - 1].index;
        uint64_t t = s->ajob[s->najob - 1].term;
        if (t > s->applied_term) {
            s->applied_term = t;
            fail_stale(s, t);
        }
    }
    for (size_t i = 0; i < s->najob; i++)
        raft_blob_unref(s->ajob[i].blob);
    s->najob = 0;
    cm_arena_reset(&s->apply_arena);
    srv_watch_kick(s);
    srv_reads_release(s);
    srv_held_jobs_release(s);
    srv_http_release(s);
    srv_reads_applied(s);
    srv_node_kick(s); /* compaction, more entries */
    srv_snap_install_kick(s);
    srv_apply_kick(s);
    if (s->stopping)
        srv_stop(s);
}

void srv_apply_kick(server *s)
{
    if (s->applying || s->restoring || s->fatal || !s->naq)
        return;
    size_t n = s->naq < s->cfg.max_batch ? s->naq : s->cfg.max_batch;
    if (s->ajob_cap < n) {
        aent *a = cm_realloc(s->ajob, n * sizeof *a);
        kv_entry *k = a ? cm_realloc(s->kents, n * sizeof *k) : NULL;
        kv_result *r = k ? cm_realloc(s->results, n * sizeof *r) : NULL;
        if (a)
            s->ajob = a;
        if (k)
            s->kents = k;
        if (r)
            s->results = r;
        if (!a || !k || !r)
            return; /* retried on the next kick */
        s->ajob_cap = n;
    }
    memcpy(s->ajob, s->aq, n * sizeof *s->aq);
    memmove(s->aq, s->aq + n, (s->naq - n) * sizeof *s->aq);
    s->naq -= n;
    s->najob = n;
    s->applying = true;
    s->apply_seq++;
    s->apply_req.data = s;
    uv_queue_work(s->loop, &s->apply_req, apply_work, apply_after);
}

void srv_waiters_fail_all(server *s, const char *why)
{
    for (size_t b = 0; b < WAITER_BUCKETS; b++)
        while (s->waiters[b]) {
            waiter *w = s->waiters[b];
            s->waiters[b] = w->next;
            s->nwaiters--;
            srv_waiter_fail(s, w, SKIFFPB__ERROR_CODE__UNAVAILABLE, why);
        }
    s->nprops = 0;
    s->props.len = 0;
}

void srv_apply_free(server *s)
{
    for (size_t i = 0; i < s->naq; i++)
        raft_blob_unref(s->aq[i].blob);
    s->naq = 0;
    cm_free(s->aq);
    cm_free(s->ajob);
    cm_free(s->kents);
    cm_buf_free(&s->props);
    cm_free(s->prop_end);
    cm_free(s->prop_ids);
    while (s->waiter_free) {
        waiter *w = s->waiter_free;
        s->waiter_free = w->next;
        cm_free(w);
    }
}
