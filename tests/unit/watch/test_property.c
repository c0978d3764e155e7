/*
 * Property test for the watch hub.  A seeded random run interleaves puts,
 * deletes, range deletes, transactions (with compares that hold or not),
 * lease grants and revokes, and compactions with watchers that start at
 * random revisions (past, compacted, current, future) on keys, ranges,
 * prefixes and from-key ranges, with random filters and prev_kv, and
 * consume at random speeds through sinks with small bounded buffers (so
 * they park and resume all the time).  Progress is requested and sent
 * periodically, watchers are stopped at random, and catch-up runs with
 * random budgets.
 *
 * The truth is an in-memory model of the key space fed the same
 * operations: it computes each revision's events (with prev_kv) without
 * looking at the store or the hub, so a bug in either shows up.  Every
 * delivery is checked as it happens against that history: revisions
 * strictly increase, nothing matching was skipped before a delivered
 * revision, and a revision's events are exactly the matching ones, in
 * order, filtered, with prev_kv iff asked.  A progress notification must
 * cover everything matching at or below its revision.  A cancel must name
 * the model's compact revision and come only when the watcher's next
 * revision is compacted.  At the end every live watcher is drained and
 * must have received its whole slice of history.
 *
 * SKIFF_SEED replays a run; the seed is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tu.h"
#include "wt.h"

#define NKEYS 24 /* "a0".."c7" */
#define MAXW 48  /* live watchers at a time */
#define NLEASE 64

/* ---- the model ---------------------------------------------------------- */

typedef struct mkv {
    bool live;
    char val[16];
    int64_t create, mod, version, lease;
} mkv;

typedef struct mev {
    bool del;
    int key;
    mkv kv;   /* after (for a delete: mod only) */
    mkv prev; /* before; prev.live says whether there was one */
} mev;

typedef struct mrev {
    size_t n;
    mev *ev;
} mrev;

typedef struct model {
    mkv keys[NKEYS];
    int64_t rev, compact;
    mrev *hist; /* hist[r], 1 <= r <= rev */
    size_t hcap;
    int64_t leases[NLEASE];
    int nleases;
    int64_t next_lease;
    unsigned vctr;
    /* events of the revision being built */
    mev pend[2 * NKEYS + 8];
    size_t npend;
} model;

static void key_name(int k, char out[3])
{
    out[0] = (char)('a' + k / 8);
    out[1] = (char)('0' + k % 8);
    out[2] = 0;
}

static void m_put(model *m, int k, const char *val, int64_t lease)
{
    mkv *kv = &m->keys[k];
    mev *e = &m->pend[m->npend++];
    memset(e, 0, sizeof *e);
    e->key = k;
    e->prev = *kv;
    int64_t rev = m->rev + 1;
    if (!kv->live) {
        kv->create = rev;
        kv->version = 0;
    }
    kv->live = true;
    kv->version++;
    kv->mod = rev;
    kv->lease = lease;
    snprintf(kv->val, sizeof kv->val, "%s", val);
    e->kv = *kv;
}

static void m_del(model *m, int k)
{
    mkv *kv = &m->keys[k];
    if (!kv->live)
        return;
    mev *e = &m->pend[m->npend++];
    memset(e, 0, sizeof *e);
    e->del = true;
    e->key = k;
    e->prev = *kv;
    e->kv.mod = m->rev + 1;
    memset(kv, 0, sizeof *kv);
}

/* Closes the pending revision: a revision exists only if it wrote. */
static void m_commit(model *m)
{
    if (!m->npend)
        return;
    m->rev++;
    if ((size_t)m->rev >= m->hcap) {
        m->hcap = m->hcap ? m->hcap * 2 : 1024;
        m->hist = realloc(m->hist, m->hcap * sizeof *m->hist);
        assert_non_null(m->hist);
    }
    mrev *r = &m->hist[m->rev];
    r->n = m->npend;
    r->ev = malloc(m->npend * sizeof *r->ev);
    assert_non_null(r->ev);
    memcpy(r->ev, m->pend, m->npend * sizeof *r->ev);
    m->npend = 0;
}

static void m_free(model *m)
{
    for (int64_t r = 1; r <= m->rev; r++)
        free(m->hist[r].ev);
    free(m->hist);
}

/* ---- watchers as the test sees them ----------------------------------- */

typedef struct twatch {
    watch_sink sink;
    watch_watcher *w;
    struct prop *p;
    bool used, canceled;
    char key[4], end[4];
    bool single, from_key;
    unsigned flags;
    int64_t cursor; /* next revision it may be given */
    size_t buffered, cap;
    bool sleepy; /* consumes rarely: long parks, long catch-ups */
    uint64_t got_events, got_progress;
} twatch;

typedef struct prop {
    wt_store t;
    model m;
    cm_rand r;
    twatch tw[MAXW];
    uint64_t sends, events, progresses, cancels, parks, started;
} prop;

static bool tw_match(const twatch *w, int k)
{
    char name[3];
    key_name(k, name);
    if (w->single)
        return strcmp(name, w->key) == 0;
    if (strcmp(name, w->key) < 0)
        return false;
    return w->from_key || strcmp(name, w->end) < 0;
}

static bool tw_wants(const twatch *w, const mev *e)
{
    if (!tw_match(w, e->key))
        return false;
    if (e->del ? (w->flags & WATCH_NO_DELETE) : (w->flags & WATCH_NO_PUT))
        return false;
    return true;
}

/* Number of events the watcher should get at revision r. */
static size_t wanted_at(const prop *p, const twatch *w, int64_t r)
{
    size_t n = 0;
    const mrev *h = &p->m.hist[r];
    for (size_t i = 0; i < h->n; i++)
        n += tw_wants(w, &h->ev[i]);
    return n;
}

/* First revision in [from, to] with something for w, or 0. */
static int64_t first_wanted(const prop *p, const twatch *w, int64_t from,
                            int64_t to)
{
    for (int64_t r = from; r <= to; r++)
        if (wanted_at(p, w, r))
            return r;
    return 0;
}

static bool bin_is(ProtobufCBinaryData d, const char *s)
{
    return d.len == strlen(s) && memcmp(d.data, s, d.len) == 0;
}

static void check_kv(const Skiffpb__KeyValue *kv, int key, const mkv *m)
{
    char name[3];
    key_name(key, name);
    assert_true(bin_is(kv->key, name));
    assert_int_equal(kv->mod_revision, m->mod);
    assert_int_equal(kv->create_revision, m->create);
    assert_int_equal(kv->version, m->version);
    assert_int_equal(kv->lease, m->lease);
    assert_true(bin_is(kv->value, m->val));
}

static int tw_send(watch_sink *sk, watch_watcher *w, const kv_events *evs)
{
    twatch *t = sk->data;
    prop *p = t->p;
    assert_ptr_equal(t->w, w);
    assert_false(t->canceled);
    if (t->buffered && t->buffered + evs->n > t->cap) {
        p->parks++;
        return WATCH_EFULL;
    }
    int64_t r = evs->revision;
    /* Ordered, unique, reliable. */
    assert_true(r >= t->cursor);
    assert_true(r <= p->m.rev);
    int64_t skipped = first_wanted(p, t, t->cursor, r - 1);
    if (skipped)
        fail_msg("watcher %lld skipped revision %lld (got %lld)",
                 (long long)watch_id(w), (long long)skipped, (long long)r);
    /* Atomic and exact: all matching events of r, in order. */
    const mrev *h = &p->m.hist[r];
    size_t j = 0;
    for (size_t i = 0; i < h->n; i++) {
        const mev *e = &h->ev[i];
        if (!tw_wants(t, e))
            continue;
        assert_true(j < evs->n);
        const Skiffpb__Event *g = evs->ev[j++];
        char name[3];
        key_name(e->key, name);
        assert_true(bin_is(g->kv->key, name));
        assert_int_equal(g->kv->mod_revision, r);
        if (e->del) {
            assert_int_equal(g->type, SKIFFPB__EVENT__EVENT_TYPE__DELETE);
        } else {
            assert_int_equal(g->type, SKIFFPB__EVENT__EVENT_TYPE__PUT);
            check_kv(g->kv, e->key, &e->kv);
        }
        if (!(t->flags & WATCH_PREV_KV)) {
            assert_null(g->prev_kv);
        } else if (e->prev.live) {
            assert_non_null(g->prev_kv);
            check_kv(g->prev_kv, e->key, &e->prev);
        } else {
            assert_null(g->prev_kv);
        }
    }
    assert_int_equal(j, evs->n);
    t->cursor = r + 1;
    t->buffered += evs->n;
    t->got_events += evs->n;
    p->sends++;
    p->events += evs->n;
    return 0;
}

static int tw_progress(watch_sink *sk, watch_watcher *w, int64_t rev)
{
    twatch *t = sk->data;
    prop *p = t->p;
    assert_ptr_equal(t->w, w);
    if (t->buffered >= t->cap) {
        p->parks++;
        return WATCH_EFULL;
    }
    /* Bookmarkable: everything at or below rev has been given. */
    assert_true(rev <= p->m.rev);
    int64_t missing = first_wanted(p, t, t->cursor, rev);
    if (missing)
        fail_msg("progress %lld but revision %lld not given", (long long)rev,
                 (long long)missing);
    if (rev + 1 > t->cursor)
        t->cursor = rev + 1;
    t->buffered++;
    t->got_progress++;
    p->progresses++;
    return 0;
}

static void tw_cancel(watch_sink *sk, watch_watcher *w, int reason,
                      int64_t compact_rev)
{
    twatch *t = sk->data;
    prop *p = t->p;
    assert_ptr_equal(t->w, w);
    assert_int_equal(reason, WATCH_ECOMPACTED);
    assert_int_equal(compact_rev, p->m.compact);
    /* It really needed compacted history, and lost nothing before. */
    int64_t next = watch_next_revision(w);
    assert_true(t->cursor <= next);
    assert_true(next <= compact_rev);
    assert_int_equal(first_wanted(p, t, t->cursor, next - 1), 0);
    t->canceled = true;
    p->cancels++;
    if (cm_rand_below(&p->r, 2)) {
        /* Half the time the sink lets go from inside the callback. */
        watch_stop(w);
        t->used = false;
    }
}

/* ---- driving ------------------------------------------------------------ */

static const char *bounds[] = {"a",  "a0", "a3", "a7", "b",  "b1",
                               "b5", "c",  "c2", "c6", "c7", "d"};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

static void start_watcher(prop *p)
{
    twatch *t = NULL;
    for (int i = 0; i < MAXW; i++)
        if (!p->tw[i].used) {
            t = &p->tw[i];
            break;
        }
    if (!t)
        return;
    memset(t, 0, sizeof *t);
    t->p = p;
    t->sink.data = t;
    t->sink.send = tw_send;
    t->sink.progress = tw_progress;
    t->sink.cancel = tw_cancel;
    cm_rand *r = &p->r;
    watch_options o = {0};
    static const uint8_t zero = 0;
    switch (cm_rand_below(r, 4)) {
    case 0: /* one key */
        key_name((int)cm_rand_below(r, NKEYS), t->key);
        t->single = true;
        break;
    case 1: { /* a range between two boundaries */
        size_t a = cm_rand_below(r, NBOUNDS - 1);
        size_t b = a + 1 + cm_rand_below(r, NBOUNDS - 1 - a);
        snprintf(t->key, sizeof t->key, "%s", bounds[a]);
        snprintf(t->end, sizeof t->end, "%s", bounds[b]);
        break;
    }
    case 2: /* a prefix */
        t->key[0] = (char)('a' + cm_rand_below(r, 3));
        t->end[0] = (char)(t->key[0] + 1);
        break;
    default: /* from a key on */
        snprintf(t->key, sizeof t->key, "%s",
                 bounds[cm_rand_below(r, NBOUNDS)]);
        t->from_key = true;
        break;
    }
    o.key = (const uint8_t *)t->key;
    o.key_len = strlen(t->key);
    if (t->from_key) {
        o.range_end = &zero;
        o.end_len = 1;
    } else if (!t->single) {
        o.range_end = (const uint8_t *)t->end;
        o.end_len = strlen(t->end);
    }
    if (cm_rand_below(r, 2))
        t->flags |= WATCH_PREV_KV;
    if (cm_rand_below(r, 8) == 0)
        t->flags |= WATCH_NO_PUT;
    else if (cm_rand_below(r, 8) == 0)
        t->flags |= WATCH_NO_DELETE;
    if (cm_rand_below(r, 4) == 0)
        t->flags |= WATCH_PROGRESS_NOTIFY;
    o.flags = t->flags;
    int64_t cur = p->m.rev, lo = p->m.compact > 1 ? p->m.compact - 1 : 1;
    switch (cm_rand_below(r, 8)) {
    case 0:
        o.start_revision = 0;
        break;
    case 1:
        o.start_revision = 1 + (int64_t)cm_rand_below(r, (uint64_t)cur + 3);
        break;
    default:
        o.start_revision =
            lo + (int64_t)cm_rand_below(r, (uint64_t)(cur - lo + 4));
        break;
    }
    t->cursor = o.start_revision ? o.start_revision : cur + 1;
    /* Consumers from very slow to unbounded. */
    static const size_t caps[] = {1, 2, 3, 5, 8, 40, 1000000};
    t->cap = caps[cm_rand_below(r, sizeof caps / sizeof caps[0])];
    t->sleepy = cm_rand_below(r, 4) == 0;
    o.sink = &t->sink;
    int rc = watch_start(p->t.hub, &o, &t->w);
    assert_int_equal(rc, 0);
    t->used = true;
    p->started++;
}

static void consume(prop *p, twatch *t, bool all)
{
    if (all)
        t->buffered = 0;
    else if (t->sleepy && cm_rand_below(&p->r, 16))
        return;
    else if (t->buffered)
        t->buffered -= cm_rand_below(&p->r, t->buffered + 1);
    if (!t->canceled && t->buffered < t->cap &&
        watch_state_get(t->w) == WATCH_PARKED)
        assert_int_equal(watch_resume(t->w), 0);
}

static int live_lease(prop *p)
{
    return p->m.nleases ? (int)cm_rand_below(&p->r, (uint64_t)p->m.nleases)
                        : -1;
}

static void write_op(prop *p)
{
    model *m = &p->m;
    cm_rand *r = &p->r;
    char name[3], val[16];
    int k = (int)cm_rand_below(r, NKEYS);
    key_name(k, name);
    snprintf(val, sizeof val, "v%u", ++m->vctr);
    memset(&p->t.last, 0, sizeof p->t.last);
    p->t.last.revision = m->rev; /* for an op that applies nothing */
    unsigned op = (unsigned)cm_rand_below(r, 100);
    if (op < 45) {
        int64_t lease = 0;
        int li = live_lease(p);
        if (li >= 0 && cm_rand_below(r, 3) == 0)
            lease = m->leases[li];
        wt_put_lease(&p->t, name, val, lease);
        m_put(m, k, val, lease);
    } else if (op < 57) {
        wt_del(&p->t, name, NULL);
        m_del(m, k);
    } else if (op < 62) {
        size_t a = cm_rand_below(r, NBOUNDS - 1);
        size_t b = a + 1 + cm_rand_below(r, NBOUNDS - 1 - a);
        wt_del(&p->t, bounds[a], bounds[b]);
        for (int i = 0; i < NKEYS; i++) {
            char n2[3];
            key_name(i, n2);
            if (strcmp(n2, bounds[a]) >= 0 && strcmp(n2, bounds[b]) < 0)
                m_del(m, i);
        }
    } else if (op < 80) {
        /* Txn: compare k's version (true or not), then a few puts and
         * deletes on distinct keys, in a random order. */
        bool truth = cm_rand_below(r, 3) != 0;
        int64_t want = m->keys[k].version + (truth ? 0 : 1);
        Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
        Skiffpb__TxnRequest txn = SKIFFPB__TXN_REQUEST__INIT;
        Skiffpb__Compare cmp = SKIFFPB__COMPARE__INIT, *cmps[1] = {&cmp};
        cmp.result = SKIFFPB__COMPARE__COMPARE_RESULT__EQUAL;
        cmp.target = SKIFFPB__COMPARE__COMPARE_TARGET__VERSION;
        cmp.key.data = (uint8_t *)name;
        cmp.key.len = 2;
        cmp.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VERSION;
        cmp.version = want;
        Skiffpb__RequestOp ops[8], *opp[8];
        Skiffpb__PutRequest pr[8];
        Skiffpb__DeleteRangeRequest dr[8];
        char names[8][3], vals[8][16];
        bool is_del[8];
        int used[NKEYS] = {0};
        size_t n = 1 + cm_rand_below(r, 6);
        int64_t lease = 0;
        int li = live_lease(p);
        if (li >= 0 && cm_rand_below(r, 4) == 0)
            lease = m->leases[li];
        for (size_t i = 0; i < n; i++) {
            int kk;
            do
                kk = (int)cm_rand_below(r, NKEYS);
            while (used[kk]);
            used[kk] = 1;
            key_name(kk, names[i]);
            skiffpb__request_op__init(&ops[i]);
            is_del[i] = cm_rand_below(r, 3) == 0;
            if (is_del[i]) {
                skiffpb__delete_range_request__init(&dr[i]);
                dr[i].key.data = (uint8_t *)names[i];
                dr[i].key.len = 2;
                ops[i].request_case =
                    SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
                ops[i].request_delete_range = &dr[i];
            } else {
                snprintf(vals[i], sizeof vals[i], "t%u", ++m->vctr);
                skiffpb__put_request__init(&pr[i]);
                pr[i].key.data = (uint8_t *)names[i];
                pr[i].key.len = 2;
                pr[i].value.data = (uint8_t *)vals[i];
                pr[i].value.len = strlen(vals[i]);
                pr[i].lease = lease;
                ops[i].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
                ops[i].request_put = &pr[i];
            }
            opp[i] = &ops[i];
        }
        txn.n_compare = 1;
        txn.compare = cmps;
        if (truth) {
            txn.n_success = n;
            txn.success = opp;
        } else {
            txn.n_failure = n;
            txn.failure = opp;
        }
        c.op_case = SKIFFPB__COMMAND__OP_TXN;
        c.txn = &txn;
        assert_int_equal(wt_apply(&p->t, &c), 0);
        assert_int_equal(p->t.last.reply.txn->succeeded, truth);
        for (size_t i = 0; i < n; i++) {
            int kk = (names[i][0] - 'a') * 8 + (names[i][1] - '0');
            if (is_del[i])
                m_del(m, kk);
            else
                m_put(m, kk, vals[i], lease);
        }
    } else if (op < 87) {
        if (m->nleases < NLEASE) {
            int64_t id = ++m->next_lease;
            assert_int_equal(wt_lease_grant(&p->t, id, 3600), id);
            m->leases[m->nleases++] = id;
        }
    } else if (op < 93) {
        int li = live_lease(p);
        if (li >= 0) {
            int64_t id = m->leases[li];
            wt_lease_revoke(&p->t, id);
            for (int i = 0; i < NKEYS; i++) /* key order */
                if (m->keys[i].live && m->keys[i].lease == id)
                    m_del(m, i);
            m->leases[li] = m->leases[--m->nleases];
        }
    } else if (op < 95) {
        /* Compaction lags the head so that catch-up has history to read
         * and some watchers still fall below it. */
        if (m->rev - m->compact > 300) {
            int64_t c = m->compact + 1 +
                        (int64_t)cm_rand_below(
                            r, (uint64_t)(m->rev - m->compact - 100));
            assert_int_equal(wt_compact(&p->t, c), 0);
            m->compact = c;
        }
    }
    m_commit(m);
    assert_int_equal(p->t.last.revision, m->rev);
    /* The writer's order: apply, then notify (the model is updated in
     * between so the sinks can check against it). */
    assert_int_equal(watch_hub_notify(p->t.hub, &p->t.last.events), 0);
}

static void check_final(prop *p)
{
    /* Unbounded consumers, everything resumed, catch-up to idle. */
    for (int i = 0; i < MAXW; i++) {
        twatch *t = &p->tw[i];
        if (!t->used)
            continue;
        t->cap = (size_t)-1 / 2;
        consume(p, t, true);
    }
    int steps = 0;
    while (watch_hub_step(p->t.hub, 0) == 1)
        assert_true(++steps < 1000000);
    for (int i = 0; i < MAXW; i++) {
        twatch *t = &p->tw[i];
        if (!t->used)
            continue;
        if (t->canceled) {
            assert_int_equal(watch_state_get(t->w), WATCH_CANCELED);
        } else {
            assert_int_equal(watch_state_get(t->w), WATCH_SYNCED);
            int64_t missing = first_wanted(p, t, t->cursor, p->m.rev);
            if (missing)
                fail_msg("watcher %lld never got revision %lld",
                         (long long)watch_id(t->w), (long long)missing);
        }
        watch_stop(t->w);
        t->used = false;
    }
}

static void run(uint64_t seed, size_t ops, const watch_hub_options *ho)
{
    prop *p = calloc(1, sizeof *p);
    assert_non_null(p);
    cm_rand_seed(&p->r, seed);
    wt_open(&p->t, ho);
    p->t.notify = false;
    cm_rand *r = &p->r;
    for (size_t i = 0; i < ops; i++) {
        write_op(p);
        unsigned x = (unsigned)cm_rand_below(r, 100);
        if (x < 12) {
            start_watcher(p);
        } else if (x < 15) {
            twatch *t = &p->tw[cm_rand_below(r, MAXW)];
            if (t->used) {
                watch_stop(t->w);
                t->used = false;
            }
        } else if (x < 20) {
            twatch *t = &p->tw[cm_rand_below(r, MAXW)];
            if (t->used && !t->canceled)
                assert_int_equal(watch_progress_request(t->w), 0);
        } else if (x < 22) {
            assert_int_equal(watch_hub_progress(p->t.hub), 0);
        }
        /* Consumers drain at their own pace. */
        for (int j = 0; j < 4; j++) {
            twatch *t = &p->tw[cm_rand_below(r, MAXW)];
            if (t->used)
                consume(p, t, false);
        }
        if (cm_rand_below(r, 3) == 0) {
            size_t budget = 1 + cm_rand_below(r, 64);
            int rc = watch_hub_step(p->t.hub, budget);
            assert_true(rc == 0 || rc == 1);
        }
    }
    check_final(p);
    watch_hub_stats st;
    watch_hub_stats_get(p->t.hub, &st);
    printf("  ops=%zu revs=%lld compact=%lld watchers=%llu sends=%llu "
           "events=%llu progress=%llu cancels=%llu refused=%llu "
           "read=%llu\n",
           ops, (long long)p->m.rev, (long long)p->m.compact,
           (unsigned long long)p->started, (unsigned long long)p->sends,
           (unsigned long long)p->events, (unsigned long long)p->progresses,
           (unsigned long long)p->cancels, (unsigned long long)p->parks,
           (unsigned long long)st.events_read);
    /* The run must have exercised what it claims to. */
    assert_true(p->cancels > 0);
    assert_true(p->parks > 0);
    assert_true(p->progresses > 0);
    assert_true(st.events_read > 0);
    assert_int_equal(st.watchers, 0);
    wt_close(&p->t);
    m_free(&p->m);
    free(p);
}

static int setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

static uint64_t base_seed;

static void test_small_steps(void **state)
{
    (void)state;
    watch_hub_options o = {.step_events = 3};
    run(base_seed, 30000, &o);
}

static void test_default_steps(void **state)
{
    (void)state;
    run(base_seed + 1, 30000, NULL);
}

static void test_one_event_steps(void **state)
{
    (void)state;
    watch_hub_options o = {.step_events = 1};
    run(base_seed + 2, 30000, &o);
}

int main(void)
{
    base_seed = tu_seed(20261127);
    printf("watch_property seed=%llu (replay: SKIFF_SEED=%llu)\n",
           (unsigned long long)base_seed, (unsigned long long)base_seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_event_steps, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
