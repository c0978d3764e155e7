/*
 * A simulated cluster: raft cores over a fake network and fake disks, and
 * the checker of Raft's safety properties.
 *
 * Each member's durable state (hard state, snapshot, log, state machine)
 * lives here.  A ready batch becomes one pending write; messages that must
 * wait for persistence ride with the write and reach the network only when
 * it completes, and a crash throws pending writes away -- so a core that
 * counted something as durable before it was reported so would be caught.
 * The state machine is a single register: every normal entry carries a
 * unique 8-byte value.  Applying is durable at once (LMDB stores the
 * applied index in the same transaction).
 *
 * The checker runs after every step and keeps compact tables instead of
 * comparing whole logs: every (index, term) ever appended maps to one
 * payload hash and one previous term (this is log matching by induction);
 * every committed index maps to one term (state machine safety); every term
 * to one leader (election safety); each leader's last entry never moves
 * back within its term (append-only); a new leader holds every entry
 * committed in an earlier term (completeness); commit indexes never go
 * back; and every read is answered at an index at least as high as
 * anything committed anywhere when the read arrived (linearizability for
 * the register).
 */
#include "cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_LINES 400

static int process(sim_cluster *c, int slot);

/* ---- trace and failure --------------------------------------------------- */

void sim_trace(sim_cluster *c, const char *fmt, ...)
{
    char *line = c->trace[c->trace_n % TRACE_LINES];
    int n = snprintf(line, 200, "%6llu ", (unsigned long long)c->step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, 200 - (size_t)n, fmt, ap);
    va_end(ap);
    c->trace_n++;
    if (c->o.trace_stdout)
        printf("%s\n", line);
}

void sim_dump_trace(const sim_cluster *c, FILE *f)
{
    size_t start = c->trace_n > TRACE_LINES ? c->trace_n - TRACE_LINES : 0;
    for (size_t i = start; i < c->trace_n; i++)
        fprintf(f, "%s\n", c->trace[i % TRACE_LINES]);
}

int sim_fail(sim_cluster *c, const char *fmt, ...)
{
    if (c->failed)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->failed = 1;
    sim_trace(c, "FAIL %s", c->err);
    return -1;
}

void sim_msg_str(const raft_msg *m, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%llu->%llu %s t%llu",
                     (unsigned long long)m->from, (unsigned long long)m->to,
                     raft_msg_type_name(m->type), (unsigned long long)m->term);
    if (n < 0 || (size_t)n >= cap)
        return;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        n += snprintf(buf + n, cap - (size_t)n, " prev=%llu/%llu c%llu [",
                      (unsigned long long)m->index,
                      (unsigned long long)m->log_term,
                      (unsigned long long)m->commit);
        for (size_t i = 0; i < m->n_entries && (size_t)n < cap; i++)
            n += snprintf(buf + n, cap - (size_t)n, "%s%llu/%llu%s",
                          i ? " " : "", (unsigned long long)m->entries[i].index,
                          (unsigned long long)m->entries[i].term,
                          m->entries[i].type == RAFT_ENTRY_CONF   ? "c"
                          : m->entries[i].type == RAFT_ENTRY_NOOP ? "n"
                                                                  : "");
        if ((size_t)n < cap)
            snprintf(buf + n, cap - (size_t)n, "]");
        break;
    case RAFT_MSG_APPEND_RESP:
        if (m->reject)
            snprintf(buf + n, cap - (size_t)n, " reject=%llu hint=%llu/%llu",
                     (unsigned long long)m->index, (unsigned long long)m->hint,
                     (unsigned long long)m->log_term);
        else
            snprintf(buf + n, cap - (size_t)n, " index=%llu",
                     (unsigned long long)m->index);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        snprintf(buf + n, cap - (size_t)n, " last=%llu/%llu%s",
                 (unsigned long long)m->index, (unsigned long long)m->log_term,
                 m->force ? " force" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        snprintf(buf + n, cap - (size_t)n, "%s", m->reject ? " reject" : "");
        break;
    case RAFT_MSG_HEARTBEAT:
        snprintf(buf + n, cap - (size_t)n, " c%llu ctx=%llu",
                 (unsigned long long)m->commit, (unsigned long long)m->ctx);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        snprintf(buf + n, cap - (size_t)n, " ctx=%llu",
                 (unsigned long long)m->ctx);
        break;
    case RAFT_MSG_SNAPSHOT:
        snprintf(buf + n, cap - (size_t)n, " snap=%llu/%llu",
                 (unsigned long long)m->snap.index,
                 (unsigned long long)m->snap.term);
        break;
    default:
        break;
    }
}

/* ---- growable tables ----------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need < *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n <= need)
        n *= 2;
    void *q = cm_realloc(*p, n * elem);
    if (!q)
        return -ENOMEM;
    memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
    *p = q;
    *cap = n;
    return 0;
}

static uint64_t payload_hash(const raft_entry *e)
{
    uint64_t h = 1469598103934665603ull ^ e->type;
    for (uint32_t i = 0; i < e->len; i++)
        h = (h ^ e->buf[i]) * 1099511628211ull;
    return h;
}

static uint64_t entry_value(const raft_entry *e)
{
    return e->type == RAFT_ENTRY_NORMAL && e->len == 8 ? cm_be64_get(e->buf)
                                                       : 0;
}

/* ---- members ------------------------------------------------------------- */

int sim_slot(const sim_cluster *c, raft_id id)
{
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (id && c->nodes[i].id == id)
            return i;
    return -1;
}

static void write_free(sim_write *w)
{
    for (size_t i = 0; i < w->n_ents; i++)
        raft_blob_unref(w->ents[i].blob);
    cm_free(w->ents);
    for (size_t i = 0; i < w->n_msgs; i++)
        raft_msg_free(&w->msgs[i]);
    cm_free(w->msgs);
}

static void log_drop_from(sim_node *n, size_t k)
{
    for (size_t i = k; i < n->n_log; i++)
        raft_blob_unref(n->log[i].blob);
    if (k < n->n_log)
        n->n_log = k;
}

void sim_crash(sim_cluster *c, int slot)
{
    sim_node *n = &c->nodes[slot];
    if (!n->r)
        return;
    sim_trace(c, "crash n%llu (%zu writes lost)", (unsigned long long)n->id,
              n->n_wq);
    raft_destroy(n->r);
    n->r = NULL;
    for (size_t i = 0; i < n->n_wq; i++)
        write_free(&n->wq[i]);
    n->n_wq = 0;
    n->recv_snap_index = 0;
}

int sim_restart(sim_cluster *c, int slot)
{
    sim_node *n = &c->nodes[slot];
    if (n->r || !n->id)
        return 0;
    raft_config cfg = c->o.cfg;
    cfg.id = n->id;
    cfg.seed = c->o.seed + c->step;
    if (n->pre_vote >= 0)
        cfg.pre_vote = n->pre_vote;
    raft_restore st = {.hs = n->hs,
                       .snap = n->snap,
                       .entries = n->log,
                       .n_entries = n->n_log,
                       .applied = n->applied};
    int rc = raft_create(&cfg, &st, &n->r);
    if (rc)
        return sim_fail(c, "restart n%llu: %s", (unsigned long long)n->id,
                        cm_err_name(rc));
    raft_status s;
    raft_status_get(n->r, &s);
    if (s.commit < n->hs.commit || s.commit < n->applied)
        return sim_fail(c, "n%llu commit %llu regressed on restart",
                        (unsigned long long)n->id,
                        (unsigned long long)s.commit);
    n->max_commit = s.commit;
    n->la_term = 0;
    n->last_role = RAFT_FOLLOWER;
    sim_trace(c, "restart n%llu term=%llu commit=%llu last=%llu",
              (unsigned long long)n->id, (unsigned long long)s.term,
              (unsigned long long)s.commit, (unsigned long long)s.last_index);
    return 0;
}

static int node_init(sim_cluster *c, int slot, raft_id id,
                     const raft_conf *conf)
{
    sim_node *n = &c->nodes[slot];
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->tick_rate = 4;
    n->pre_vote = -1;
    n->joined = conf->n_voters > 0;
    if (conf->n_voters) {
        raft_restore st;
        raft_restore_bootstrap(&st, conf);
        n->hs = st.hs;
        n->snap = st.snap;
        n->applied = st.applied;
    }
    return sim_restart(c, slot);
}

int sim_add_node(sim_cluster *c)
{
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (!c->nodes[i].id) {
            raft_conf empty = {0};
            if (node_init(c, i, c->next_id++, &empty))
                return -1;
            for (int j = 0; j < SIM_MAX_NODES; j++)
                c->blocked[i][j] = c->blocked[j][i] = false;
            sim_trace(c, "add n%llu", (unsigned long long)c->nodes[i].id);
            return i;
        }
    return -1;
}

void sim_remove_node(sim_cluster *c, int slot)
{
    sim_node *n = &c->nodes[slot];
    sim_crash(c, slot);
    sim_trace(c, "remove n%llu", (unsigned long long)n->id);
    log_drop_from(n, 0);
    cm_free(n->log);
    cm_free(n->wq);
    memset(n, 0, sizeof(*n));
}

int sim_create(const sim_opts *o, sim_cluster **out)
{
    sim_cluster *c = cm_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->o = *o;
    c->trace = cm_calloc(TRACE_LINES, sizeof(*c->trace));
    if (!c->trace) {
        cm_free(c);
        return -ENOMEM;
    }
    cm_rand_seed(&c->rng, o->seed);
    raft_conf conf = {0};
    for (int i = 0; i < o->n; i++)
        conf.voters[conf.n_voters++] = (raft_id)(i + 1);
    c->next_id = (raft_id)o->n + 1;
    for (int i = 0; i < o->n; i++)
        if (node_init(c, i, (raft_id)(i + 1), &conf)) {
            fprintf(stderr, "sim_create: %s\n", c->err);
            sim_destroy(c);
            return -1;
        }
    *out = c;
    return 0;
}

void sim_destroy(sim_cluster *c)
{
    if (!c)
        return;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (c->nodes[i].id)
            sim_remove_node(c, i);
    for (size_t i = 0; i < c->n_net; i++) {
        raft_msg_free(&c->net[i]->m);
        cm_free(c->net[i]);
    }
    cm_free(c->net);
    cm_buf_free(&c->wire);
    cm_free(c->term_leader);
    cm_free(c->ents);
    cm_free(c->commits);
    cm_free(c->read_floor);
    cm_free(c->trace);
    cm_free(c);
}

/* ---- network ------------------------------------------------------------- */

static int net_send(sim_cluster *c, const raft_msg *m, bool copy)
{
    if (grow((void **)&c->net, &c->cap_net, c->n_net + 1, sizeof(*c->net)))
        return sim_fail(c, "out of memory");
    sim_net_msg *nm = cm_calloc(1, sizeof(*nm));
    if (!nm)
        return sim_fail(c, "out of memory");
    /* Every message crosses the wire codec, as it will in the server. */
    cm_buf_reset(&c->wire);
    if (raft_msg_encode(m, &c->wire) ||
        raft_msg_decode(c->wire.base, c->wire.len, &nm->m)) {
        cm_free(nm);
        return sim_fail(c, "message codec failed");
    }
    c->net[c->n_net] = nm;
    if (!copy)
        raft_msg_free((raft_msg *)m);
    if (m->type == RAFT_MSG_SNAPSHOT) {
        int s = sim_slot(c, m->from);
        if (s < 0 || c->nodes[s].snap.index != m->snap.index)
            return sim_fail(c, "n%llu sends snapshot %llu it does not hold",
                            (unsigned long long)m->from,
                            (unsigned long long)m->snap.index);
        nm->snap_value = c->nodes[s].snap_value;
    }
    nm->seq = c->net_seq++;
    c->n_net++;
    return 0;
}

/* Takes message k off the network (keeping the others in send order). */
static sim_net_msg net_remove(sim_cluster *c, size_t k)
{
    sim_net_msg *p = c->net[k];
    sim_net_msg nm = *p;
    cm_free(p);
    memmove(c->net + k, c->net + k + 1, (c->n_net - k - 1) * sizeof(*c->net));
    c->n_net--;
    return nm;
}

static void report_snapshot(sim_cluster *c, const raft_msg *m, bool ok)
{
    int s = sim_slot(c, m->from);
    if (s >= 0 && c->nodes[s].r) {
        raft_report_snapshot(c->nodes[s].r, m->to, ok);
        process(c, s);
    }
}

void sim_drop(sim_cluster *c, size_t k)
{
    raft_msg m = net_remove(c, k).m;
    char buf[160];
    sim_msg_str(&m, buf, sizeof(buf));
    sim_trace(c, "drop %s", buf);
    if (m.type == RAFT_MSG_SNAPSHOT)
        report_snapshot(c, &m, false);
    raft_msg_free(&m);
}

int sim_deliver(sim_cluster *c, size_t k, bool dup)
{
    sim_net_msg nm;
    if (dup) {
        nm = *c->net[k];
        if (raft_msg_copy(&nm.m, &c->net[k]->m))
            return sim_fail(c, "out of memory");
    } else {
        nm = net_remove(c, k);
    }
    raft_msg *m = &nm.m;
    int to = sim_slot(c, m->to), from = sim_slot(c, m->from);
    char buf[160];
    sim_msg_str(m, buf, sizeof(buf));
    if (to < 0 || !c->nodes[to].r || (from >= 0 && c->blocked[from][to])) {
        sim_trace(c, "lost %s", buf);
        if (m->type == RAFT_MSG_SNAPSHOT)
            report_snapshot(c, m, false);
        raft_msg_free(m);
        return 0;
    }
    sim_trace(c, "deliver %s%s", buf, dup ? " (dup)" : "");
    sim_node *n = &c->nodes[to];
    if (m->type == RAFT_MSG_SNAPSHOT) {
        n->recv_snap_index = m->snap.index;
        n->recv_snap_value = nm.snap_value;
    }
    int rc = raft_step(n->r, m);
    if (rc)
        sim_fail(c, "n%llu step: %s (%s)", (unsigned long long)n->id,
                 cm_err_name(rc), raft_errmsg(n->r));
    if (!rc)
        rc = process(c, to);
    if (!rc && m->type == RAFT_MSG_SNAPSHOT)
        report_snapshot(c, m, true);
    raft_msg_free(m);
    return rc;
}

void sim_block(sim_cluster *c, int a, int b, bool blocked)
{
    c->blocked[a][b] = blocked;
}

void sim_heal(sim_cluster *c)
{
    memset(c->blocked, 0, sizeof(c->blocked));
}

/* ---- disk ---------------------------------------------------------------- */

int sim_persist(sim_cluster *c, int slot, size_t count)
{
    sim_node *n = &c->nodes[slot];
    while (count-- && n->n_wq) {
        sim_write w = n->wq[0];
        memmove(n->wq, n->wq + 1, (n->n_wq - 1) * sizeof(*n->wq));
        n->n_wq--;
        uint64_t last = 0, last_term = 0;
        bool report = false;
        if (w.has_snap) {
            n->snap = w.snap;
            n->snap_value = w.snap_value;
            log_drop_from(n, 0);
            n->applied = w.snap.index;
            n->value = w.snap_value;
            last = w.snap.index;
            last_term = w.snap.term;
            report = true;
        }
        if (w.n_ents) {
            uint64_t first = w.ents[0].index;
            if (first <= n->snap.index)
                return sim_fail(c, "n%llu writes compacted index %llu",
                                (unsigned long long)n->id,
                                (unsigned long long)first);
            log_drop_from(n, (size_t)(first - n->snap.index - 1));
            if (n->n_log != first - n->snap.index - 1)
                return sim_fail(c, "n%llu log gap at %llu",
                                (unsigned long long)n->id,
                                (unsigned long long)first);
            if (grow((void **)&n->log, &n->cap_log, n->n_log + w.n_ents,
                     sizeof(*n->log)))
                return sim_fail(c, "out of memory");
            memcpy(n->log + n->n_log, w.ents, w.n_ents * sizeof(*w.ents));
            n->n_log += w.n_ents;
            last = w.ents[w.n_ents - 1].index;
            last_term = w.ents[w.n_ents - 1].term;
            report = true;
            w.n_ents = 0;
        }
        if (w.has_hs) {
            if (w.hs.commit < n->hs.commit)
                return sim_fail(c, "n%llu durable commit %llu -> %llu",
                                (unsigned long long)n->id,
                                (unsigned long long)n->hs.commit,
                                (unsigned long long)w.hs.commit);
            if (w.hs.term < n->hs.term)
                return sim_fail(c, "n%llu durable term went back",
                                (unsigned long long)n->id);
            n->hs = w.hs;
        }
        for (size_t i = 0; i < w.n_msgs; i++)
            if (net_send(c, &w.msgs[i], false))
                return -1;
        w.n_msgs = 0;
        write_free(&w);
        if (report && n->r) {
            int rc = raft_persisted(n->r, last, last_term);
            if (rc)
                return sim_fail(c, "persisted: %s", cm_err_name(rc));
        }
    }
    return 0;
}

/* ---- checks on ready batches --------------------------------------------- */

static int check_entry(sim_cluster *c, sim_node *n, const raft_entry *e)
{
    uint64_t prev = 0;
    if (raft_term_at(n->r, e->index - 1, &prev))
        return sim_fail(c, "n%llu: no term before %llu",
                        (unsigned long long)n->id,
                        (unsigned long long)e->index);
    if (grow((void **)&c->ents, &c->cap_ents, e->index, sizeof(*c->ents)))
        return sim_fail(c, "out of memory");
    struct sim_ent_slot *sl = &c->ents[e->index];
    uint64_t h = payload_hash(e);
    for (uint8_t i = 0; i < sl->n; i++)
        if (sl->v[i].term == e->term) {
            if (sl->v[i].hash != h || sl->v[i].prev != prev)
                return sim_fail(c,
                                "log matching: n%llu entry %llu/%llu "
                                "differs from another member's",
                                (unsigned long long)n->id,
                                (unsigned long long)e->index,
                                (unsigned long long)e->term);
            return 0;
        }
    if (sl->n < 4) {
        sl->v[sl->n].term = e->term;
        sl->v[sl->n].hash = h;
        sl->v[sl->n].prev = prev;
        sl->n++;
    }
    return 0;
}

static int record_commit(sim_cluster *c, uint64_t index, uint64_t term,
                         uint64_t obs_term)
{
    if (grow((void **)&c->commits, &c->cap_commit, index, sizeof(*c->commits)))
        return sim_fail(c, "out of memory");
    struct sim_commit *cm = &c->commits[index];
    if (cm->term && cm->term != term)
        return sim_fail(c,
                        "state machine safety: index %llu committed "
                        "with terms %llu and %llu",
                        (unsigned long long)index, (unsigned long long)cm->term,
                        (unsigned long long)term);
    cm->term = term;
    if (!cm->obs || obs_term < cm->obs)
        cm->obs = obs_term;
    if (index > c->max_commit)
        c->max_commit = index;
    return 0;
}

/* A new leader of term T must hold every entry committed before T. */
static int check_completeness(sim_cluster *c, sim_node *n)
{
    raft_status s;
    raft_status_get(n->r, &s);
    for (uint64_t i = c->max_commit; i >= s.first_index && i > 0; i--) {
        const struct sim_commit *cm = &c->commits[i];
        if (!cm->obs || cm->obs >= s.term)
            continue;
        uint64_t t = 0;
        if (raft_term_at(n->r, i, &t) || t != cm->term)
            return sim_fail(c,
                            "leader completeness: n%llu leader of term "
                            "%llu lacks committed entry %llu/%llu",
                            (unsigned long long)n->id,
                            (unsigned long long)s.term, (unsigned long long)i,
                            (unsigned long long)cm->term);
        return 0;
    }
    return 0;
}

static int apply(sim_cluster *c, sim_node *n, const raft_entry *e)
{
    if (e->index != n->applied + 1)
        return sim_fail(c, "n%llu applies %llu after %llu",
                        (unsigned long long)n->id, (unsigned long long)e->index,
                        (unsigned long long)n->applied);
    if (record_commit(c, e->index, e->term, UINT64_MAX))
        return -1;
    n->applied = e->index;
    if (e->type == RAFT_ENTRY_NORMAL)
        n->value = entry_value(e);
    if (e->type == RAFT_ENTRY_CONF)
        sim_trace(c, "n%llu applies conf entry %llu", (unsigned long long)n->id,
                  (unsigned long long)e->index);
    return 0;
}

static int process(sim_cluster *c, int slot)
{
    sim_node *n = &c->nodes[slot];
    int guard = 0;
    while (n->r && raft_has_ready(n->r) && !c->failed) {
        if (++guard > 10000)
            return sim_fail(c, "n%llu: ready loop does not settle",
                            (unsigned long long)n->id);
        raft_ready rd;
        int rc = raft_ready_get(n->r, &rd);
        if (rc)
            return sim_fail(c, "ready: %s", cm_err_name(rc));
        if (rd.role != n->last_role) {
            sim_trace(c, "n%llu becomes %s", (unsigned long long)n->id,
                      raft_role_name(rd.role));
            if (rd.role == RAFT_LEADER) {
                c->stat_elections++;
                if (check_completeness(c, n))
                    return -1;
            }
            n->last_role = rd.role;
        }
        sim_write w = {.has_hs = rd.has_hard_state, .hs = rd.hs};
        if (rd.snapshot) {
            if (n->recv_snap_index != rd.snapshot->index)
                return sim_fail(c, "n%llu installs snapshot it never got",
                                (unsigned long long)n->id);
            w.has_snap = true;
            w.snap = *rd.snapshot;
            w.snap_value = n->recv_snap_value;
            c->stat_snapshots++;
            sim_trace(c, "n%llu installs snapshot %llu/%llu",
                      (unsigned long long)n->id,
                      (unsigned long long)rd.snapshot->index,
                      (unsigned long long)rd.snapshot->term);
        }
        if (rd.n_entries) {
            w.ents = cm_malloc(rd.n_entries * sizeof(raft_entry));
            if (!w.ents)
                return sim_fail(c, "out of memory");
            for (size_t i = 0; i < rd.n_entries; i++) {
                if (check_entry(c, n, &rd.entries[i]))
                    return -1;
                w.ents[i] = rd.entries[i];
                raft_blob_ref(w.ents[i].blob);
            }
            w.n_ents = rd.n_entries;
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            const raft_msg *m = &rd.msgs[i];
            if (!m->after_persist) {
                if (net_send(c, m, true))
                    return -1;
                continue;
            }
            if (!w.msgs)
                w.msgs = cm_malloc(rd.n_msgs * sizeof(raft_msg));
            if (!w.msgs)
                return sim_fail(c, "out of memory");
            if (raft_msg_copy(&w.msgs[w.n_msgs], m))
                return sim_fail(c, "out of memory");
            w.n_msgs++;
        }
        for (size_t i = 0; i < rd.n_committed; i++)
            if (apply(c, n, &rd.committed[i]))
                return -1;
        for (size_t i = 0; i < rd.n_reads; i++) {
            const raft_read_state *rs = &rd.reads[i];
            uint64_t floor =
                rs->ctx < c->cap_reads ? c->read_floor[rs->ctx] : 0;
            if (rs->index < floor)
                return sim_fail(
                    c,
                    "stale read: n%llu answered read %llu at "
                    "index %llu but %llu was committed first",
                    (unsigned long long)n->id, (unsigned long long)rs->ctx,
                    (unsigned long long)rs->index, (unsigned long long)floor);
            c->stat_reads++;
            if (c->n_answers < 64)
                c->answers[c->n_answers++] =
                    (struct sim_answer){n->id, rs->ctx, rs->index};
            else
                c->n_answers = 0; /* nobody is collecting them */
            sim_trace(c, "n%llu read %llu safe at %llu",
                      (unsigned long long)n->id, (unsigned long long)rs->ctx,
                      (unsigned long long)rs->index);
        }
        if (grow((void **)&n->wq, &n->cap_wq, n->n_wq + 1, sizeof(*n->wq)))
            return sim_fail(c, "out of memory");
        n->wq[n->n_wq++] = w;
        rc = raft_advance(n->r, &rd);
        if (rc)
            return sim_fail(c, "advance: %s", cm_err_name(rc));
        if (!n->hold && sim_persist(c, slot, SIZE_MAX))
            return -1;
    }
    return c->failed ? -1 : 0;
}

int sim_process(sim_cluster *c, int slot)
{
    return process(c, slot);
}

int sim_process_all(sim_cluster *c)
{
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (c->nodes[i].r && process(c, i))
            return -1;
    return 0;
}

/* ---- client operations --------------------------------------------------- */

int sim_propose(sim_cluster *c, int slot, uint64_t *index)
{
    int rc = sim_propose_nowait(c, slot, index);
    if (rc == 0 || rc == -ENOMEM || rc == RAFT_EFAILED)
        process(c, slot);
    return rc;
}

int sim_propose_nowait(sim_cluster *c, int slot, uint64_t *index)
{
    sim_node *n = &c->nodes[slot];
    if (!n->r)
        return RAFT_ENOTLEADER;
    uint8_t buf[8];
    cm_be64_put(buf, ++c->next_value);
    uint64_t idx = 0;
    int rc = raft_propose(n->r, buf, sizeof(buf), &idx);
    if (rc == 0)
        sim_trace(c, "n%llu propose v%llu at %llu", (unsigned long long)n->id,
                  (unsigned long long)c->next_value, (unsigned long long)idx);
    if (index)
        *index = idx;
    return rc;
}

int sim_read(sim_cluster *c, int slot, uint64_t *ctx)
{
    sim_node *n = &c->nodes[slot];
    if (!n->r)
        return RAFT_ENOTLEADER;
    /* Everything committed anywhere right now must be visible. */
    uint64_t floor = c->max_commit;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (c->nodes[i].r) {
            raft_status s;
            raft_status_get(c->nodes[i].r, &s);
            if (s.commit > floor)
                floor = s.commit;
        }
    uint64_t id = ++c->next_read;
    if (grow((void **)&c->read_floor, &c->cap_reads, id, sizeof(uint64_t)))
        return sim_fail(c, "out of memory");
    c->read_floor[id] = floor;
    int rc = raft_read_index(n->r, id);
    if (rc == 0)
        sim_trace(c, "n%llu read %llu (floor %llu)", (unsigned long long)n->id,
                  (unsigned long long)id, (unsigned long long)floor);
    if (ctx)
        *ctx = id;
    process(c, slot);
    return rc;
}

int sim_compact(sim_cluster *c, int slot)
{
    sim_node *n = &c->nodes[slot];
    if (!n->r || n->applied <= n->snap.index)
        return 0;
    uint64_t index = n->applied;
    int rc = raft_compact(n->r, index);
    if (rc)
        return rc;
    raft_snapshot_get(n->r, &n->snap);
    n->snap_value = n->value;
    /* Drop durable entries up to the snapshot. */
    uint64_t first = n->n_log ? n->log[0].index : index + 1;
    size_t k = index >= first ? (size_t)(index - first + 1) : 0;
    if (k > n->n_log)
        k = n->n_log;
    for (size_t i = 0; i < k; i++)
        raft_blob_unref(n->log[i].blob);
    memmove(n->log, n->log + k, (n->n_log - k) * sizeof(*n->log));
    n->n_log -= k;
    sim_trace(c, "n%llu compacts to %llu", (unsigned long long)n->id,
              (unsigned long long)index);
    return 0;
}

/* ---- invariants ---------------------------------------------------------- */

int sim_leader(const sim_cluster *c)
{
    int best = -1;
    uint64_t term = 0;
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        if (!c->nodes[i].r)
            continue;
        raft_status s;
        raft_status_get(c->nodes[i].r, &s);
        if (s.role == RAFT_LEADER && s.term >= term) {
            best = i;
            term = s.term;
        }
    }
    return best;
}

int sim_check(sim_cluster *c)
{
    if (c->failed)
        return -1;
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        sim_node *n = &c->nodes[i];
        if (!n->r)
            continue;
        raft_status s;
        raft_status_get(n->r, &s);
        if (s.commit < n->max_commit)
            return sim_fail(c, "n%llu commit went back %llu -> %llu",
                            (unsigned long long)n->id,
                            (unsigned long long)n->max_commit,
                            (unsigned long long)s.commit);
        for (uint64_t k = n->max_commit + 1; k <= s.commit; k++) {
            uint64_t t;
            if (raft_term_at(n->r, k, &t) == 0 &&
                record_commit(c, k, t, s.term))
                return -1;
        }
        if (s.commit > n->max_commit)
            c->stat_commits += s.commit - n->max_commit;
        n->max_commit = s.commit;
        if (s.role != RAFT_LEADER) {
            n->la_term = 0;
            continue;
        }
        if (grow((void **)&c->term_leader, &c->cap_term_leader, s.term,
                 sizeof(raft_id)))
            return sim_fail(c, "out of memory");
        if (c->term_leader[s.term] && c->term_leader[s.term] != s.id)
            return sim_fail(c,
                            "election safety: n%llu and n%llu both "
                            "lead term %llu",
                            (unsigned long long)c->term_leader[s.term],
                            (unsigned long long)s.id,
                            (unsigned long long)s.term);
        c->term_leader[s.term] = s.id;
        uint64_t lt = 0;
        if (n->la_term == s.term) {
            if (s.last_index < n->la_last ||
                (raft_term_at(n->r, n->la_last, &lt) == 0 &&
                 lt != n->la_last_term))
                return sim_fail(c,
                                "leader append-only: n%llu rewrote its "
                                "log at %llu",
                                (unsigned long long)s.id,
                                (unsigned long long)n->la_last);
        }
        n->la_term = s.term;
        n->la_last = s.last_index;
        raft_term_at(n->r, s.last_index, &n->la_last_term);
    }
    return 0;
}

void sim_gc_removed(sim_cluster *c)
{
    int l = sim_leader(c);
    if (l < 0)
        return;
    raft_status s;
    raft_status_get(c->nodes[l].r, &s);
    if (s.commit < s.conf_index)
        return;
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        sim_node *n = &c->nodes[i];
        if (!n->id)
            continue;
        if (raft_conf_is_voter(&s.conf, n->id) ||
            raft_conf_is_learner(&s.conf, n->id))
            n->joined = true;
        else if (n->joined)
            sim_remove_node(c, i);
    }
}

/* ---- driving ------------------------------------------------------------- */

int sim_settle(sim_cluster *c)
{
    for (int guard = 0; guard < 200000; guard++) {
        bool did = false;
        for (int i = 0; i < SIM_MAX_NODES; i++) {
            sim_node *n = &c->nodes[i];
            if (n->r && n->n_wq && !n->hold) {
                if (sim_persist(c, i, SIZE_MAX) || process(c, i))
                    return -1;
                did = true;
            }
        }
        if (c->n_net) {
            if (sim_deliver(c, 0, false) || sim_check(c))
                return -1;
            did = true;
        }
        if (!did)
            return 0;
    }
    return sim_fail(c, "network does not settle");
}

int sim_stabilize_liveness(sim_cluster *c, int max_rounds)
{
    sim_heal(c);
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        sim_node *n = &c->nodes[i];
        n->hold = false;
        if (n->id && !n->r && sim_restart(c, i))
            return -1;
        if (n->r && (sim_persist(c, i, SIZE_MAX) || process(c, i)))
            return -1;
    }
    sim_gc_removed(c);
    sim_trace(c, "faults stop: liveness phase");
    uint64_t want = 0, want_term = 0;
    int leader = -1;
    for (int round = 0; round < max_rounds; round++) {
        if (sim_settle(c) || sim_check(c))
            return -1;
        int l = sim_leader(c);
        if (l >= 0) {
            raft_status s;
            raft_status_get(c->nodes[l].r, &s);
            if (l != leader || s.term != want_term || !want) {
                leader = l;
                want_term = s.term;
                if (sim_propose(c, l, &want) != 0)
                    want = 0; /* e.g. a transfer runs: retry next round */
            } else if (want && s.commit >= want) {
                sim_trace(c, "liveness ok after %d rounds", round);
                c->stat_live_rounds = round;
                return 0;
            }
        }
        for (int i = 0; i < SIM_MAX_NODES; i++) {
            if (!c->nodes[i].r)
                continue;
            c->step++;
            if (raft_tick(c->nodes[i].r) || process(c, i))
                return sim_fail(c, "tick failed");
        }
    }
    char diag[256] = "";
    int l = sim_leader(c);
    if (l >= 0) {
        size_t dn = 0;
        for (int i = 0; i < SIM_MAX_NODES; i++) {
            uint64_t match, next;
            int state;
            if (c->nodes[i].id &&
                raft_progress_get(c->nodes[l].r, c->nodes[i].id, &match, &next,
                                  &state) == 0)
                dn += (size_t)snprintf(
                    diag + dn, sizeof(diag) - dn, " n%llu:%llu/%llu/%d",
                    (unsigned long long)c->nodes[i].id,
                    (unsigned long long)match, (unsigned long long)next, state);
            if (dn >= sizeof(diag))
                break;
        }
    }
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        if (!c->nodes[i].r)
            continue;
        raft_status s;
        raft_status_get(c->nodes[i].r, &s);
        uint64_t lt = 0;
        raft_term_at(c->nodes[i].r, s.last_index, &lt);
        char vs[64] = "";
        size_t vn = 0;
        for (uint32_t k = 0; k < s.conf.n_voters && vn < sizeof(vs); k++)
            vn += (size_t)snprintf(vs + vn, sizeof(vs) - vn, "%s%llu",
                                   k ? "," : "",
                                   (unsigned long long)s.conf.voters[k]);
        sim_trace(c,
                  "n%llu %s t%llu last=%llu/%llu commit=%llu voters=%s "
                  "conf_index=%llu",
                  (unsigned long long)s.id, raft_role_name(s.role),
                  (unsigned long long)s.term, (unsigned long long)s.last_index,
                  (unsigned long long)lt, (unsigned long long)s.commit, vs,
                  (unsigned long long)s.conf_index);
    }
    return sim_fail(c,
                    "liveness: no commit within %d rounds after faults "
                    "stopped;%s",
                    max_rounds, diag);
}
