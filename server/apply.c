/*
 * The write pipeline: group commit.
 *
 * Writes are packed as Commands into the `next` batch as they arrive.
 * When no apply is running, `next` becomes `cur` and goes to the thread
 * pool as one kv_apply_batch: one LMDB transaction, one commit.  While it
 * runs, new writes gather in `next`, so under load the batch grows by
 * itself and the fsyncs per write shrink; with one client, a write waits
 * for exactly one commit.  The loop never waits: it only packs, swaps and
 * replies.  Replies go out only after the commit returned, so an
 * acknowledged write is on disk; watchers get each revision's events in
 * order, before the replies of the same batch.
 */
#include "server_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void start_apply(server *s);

static int batch_add(batch *b, const pending *p)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        pending *np = cm_realloc(b->p, cap * sizeof *np);
        if (!np)
            return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    b->p[b->n++] = *p;
    return 0;
}

int srv_propose(server *s, conn *c, uint64_t stream, int op,
                Skiffpb__Command *cmd, int64_t lease_id)
{
    if (s->stopping)
        return -ESHUTDOWN;
    cmd->id = ++s->next_cmd_id;
    cmd->time_ms = cm_now_ms();
    pending p = {c, stream, c ? c->gen : 0, op, 0, s->next.cmds.len, 0,
                 lease_id};
    int rc = kv_command_pack(cmd, &s->next.cmds);
    if (rc)
        return rc;
    p.len = s->next.cmds.len - p.off;
    if ((rc = batch_add(&s->next, &p))) {
        s->next.cmds.len = p.off;
        return rc;
    }
    if (c)
        conn_ref(c);
    if (!s->applying)
        start_apply(s);
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void apply_work(uv_work_t *w)
{
    server *s = w->data;
    batch *b = &s->cur;
    kv_entry *e = cm_malloc(b->n * sizeof *e);
    if (!e) {
        s->apply_rc = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        e[i] = (kv_entry){b->p[i].index, b->cmds.base + b->p[i].off,
                          b->p[i].len};
    uint64_t t0 = now_ns();
    s->apply_rc = kv_apply_batch(s->kv, e, b->n, &s->apply_arena, s->results);
    s->apply_ns = now_ns() - t0;
    cm_free(e);
}

static void reply_failed(server *s, const pending *p, int rc)
{
    if (p->c && conn_alive(p->c, p->conn_gen))
        conn_send_code(p->c, p->stream,
                       rc == -ENOMEM ? SKIFFPB__ERROR_CODE__UNAVAILABLE
                                     : api_code_from_err(rc),
                       rc == KV_EFAILED || rc == KV_ELMDB || rc == KV_ECORRUPT
                           ? "store failed; this member refuses writes"
                           : kv_strerror(rc),
                       0);
    s->m.proposals_failed++;
}

static void apply_after(uv_work_t *w, int status)
{
    server *s = w->data;
    batch *b = &s->cur;
    int rc = status < 0 ? status : s->apply_rc;
    s->m.apply_batches++;
    s->m.apply_ns_total += s->apply_ns;
    unsigned k = 0;
    for (uint64_t q = s->apply_ns / 250000; q && k < 15; q >>= 1)
        k++;
    s->m.apply_hist[k]++;
    if (rc) {
        CM_ERROR("apply failed", "entries=%zu error=%s detail=\"%s\"", b->n,
                 kv_err_name(rc), kv_errmsg(s->kv));
        for (size_t i = 0; i < b->n; i++)
            reply_failed(s, &b->p[i], rc);
        kv_status st;
        if (kv_status_meta(s->kv, &st) == 0)
            s->next_index = st.applied_index + 1;
    } else {
        /* Watchers first, then the writers, revision by revision. */
        for (size_t i = 0; i < b->n; i++)
            if (s->results[i].events.n &&
                watch_hub_notify(s->hub, &s->results[i].events))
                CM_ERROR("watch notify out of order", "revision=%lld",
                         (long long)s->results[i].events.revision);
        for (size_t i = 0; i < b->n; i++)
            srv_applied(s, &b->p[i], &s->results[i]);
        s->m.proposals_committed += b->n;
        srv_watch_kick(s);
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i].c)
            conn_unref(b->p[i].c);
    b->n = 0;
    b->cmds.len = 0;
    cm_arena_reset(&s->apply_arena);
    s->applying = false;
    if (s->next.n)
        start_apply(s);
    else if (s->stopping)
        srv_stop(s);
}

static void start_apply(server *s)
{
    /* Take at most max_batch entries; the rest wait for the next round. */
    batch t = s->cur;
    s->cur = s->next;
    s->next = t;
    s->next.n = 0;
    s->next.cmds.len = 0;
    if (s->cur.n > s->cfg.max_batch) {
        batch *c = &s->cur;
        size_t keep = s->cfg.max_batch;
        size_t cut = c->p[keep].off;
        bool oom = cm_buf_append(&s->next.cmds, c->cmds.base + cut,
                                 c->cmds.len - cut) != 0;
        for (size_t i = keep; i < c->n; i++) {
            pending p = c->p[i];
            p.off -= cut;
            if (oom || batch_add(&s->next, &p)) {
                /* Out of memory: refuse the rest rather than lose them. */
                oom = true;
                reply_failed(s, &c->p[i], -ENOMEM);
                if (c->p[i].c)
                    conn_unref(c->p[i].c);
            }
        }
        if (oom) {
            /* Refuse what of the tail did get queued too: the queue no
             * longer matches its packed commands. */
            for (size_t i = 0; i < s->next.n; i++) {
                reply_failed(s, &s->next.p[i], -ENOMEM);
                if (s->next.p[i].c)
                    conn_unref(s->next.p[i].c);
            }
            s->next.n = 0;
            s->next.cmds.len = 0;
        }
        c->n = keep;
        c->cmds.len = cut;
    }
    if (s->results_cap < s->cur.n) {
        kv_result *r = cm_realloc(s->results, s->cur.n * sizeof *r);
        if (!r) {
            for (size_t i = 0; i < s->cur.n; i++) {
                reply_failed(s, &s->cur.p[i], -ENOMEM);
                if (s->cur.p[i].c)
                    conn_unref(s->cur.p[i].c);
            }
            s->cur.n = 0;
            s->cur.cmds.len = 0;
            return;
        }
        s->results = r;
        s->results_cap = s->cur.n;
    }
    for (size_t i = 0; i < s->cur.n; i++)
        s->cur.p[i].index = s->next_index++;
    s->applying = true;
    s->apply_req.data = s;
    uv_queue_work(s->loop, &s->apply_req, apply_work, apply_after);
}
