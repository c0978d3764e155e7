/*
 * Watch guarantees, checked against the store's own history.
 *
 * After a run the runner replays every event of the store from revision 1
 * (the "replay" lines) — the ground truth the watchers should have seen.
 * The replay is checked first: revisions in order, no (revision, key)
 * twice, create_revision/version consistent with the key's previous
 * version, prev_kv equal to that version.  Then the writers: every
 * acknowledged put/delete must be in the replay at the revision its
 * response named, and no put that definitely failed may appear.
 *
 * Then each watcher alone, in delivery order: every event must match the
 * filter, revisions never go down (ordered), no (revision, key) twice
 * (unique), a revision never spans two responses (atomic), no event at or
 * below a progress notification already received and progress revisions
 * never go down (bookmarkable), and every event must equal the replay's
 * event, including create flags and prev_kv when the watcher asked for it.
 * Finally reliability: between the first revision the watcher should see
 * (its start revision, or its first event when it started at "now") and
 * the last revision it has evidence for (its last event or progress
 * notification, which promises everything up to it was sent), the watcher
 * must have received exactly the replay's matching events.  A gap right at
 * the start is reported as a failed resume rather than a plain gap,
 * because that is what a client resuming from last revision + 1 sees.
 */
#include "checker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXAMPLES 8

typedef struct rev_ev {
    const jc_json *ev;
    int64_t rev;
    const char *key;
    int32_t prev; /* replay index of the key's previous PUT, or -1 */
    int64_t op;   /* history index of the replay line */
} rev_ev;

typedef struct wctx {
    const jc_op *ops;
    size_t nops;
    jc_result *res;
    rev_ev *rp;
    size_t nrp;
    int32_t *sorted; /* replay indices by (rev, key) */
    int32_t *stamp;  /* per replay event: watcher number + 1 that got it */
} wctx;

static const char *evkey(const jc_json *e)
{
    const char *k = jc__str(e, "key");
    return k ? k : "";
}

static int is_put(const jc_json *e)
{
    const char *t = jc__str(e, "type");
    return !t || !strcmp(t, "PUT");
}

static const wctx *sort_ctx;
static int cmp_rk(const void *a, const void *b)
{
    const rev_ev *x = &sort_ctx->rp[*(const int32_t *)a];
    const rev_ev *y = &sort_ctx->rp[*(const int32_t *)b];
    if (x->rev != y->rev)
        return x->rev < y->rev ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int32_t find_rp(const wctx *c, int64_t rev, const char *key)
{
    size_t lo = 0, hi = c->nrp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const rev_ev *m = &c->rp[c->sorted[mid]];
        int d = m->rev != rev ? (m->rev < rev ? -1 : 1) : strcmp(m->key, key);
        if (d == 0)
            return c->sorted[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* The fields of a kv that must agree between an event and the replay. */
static int same_kv(const jc_json *a, const jc_json *b)
{
    static const char *const f[] = {"value", "mod_revision", "create_revision",
                                    "version"};
    for (size_t i = 0; i < 4; i++)
        if (!jc_json_equal(jc_json_get(a, f[i]), jc_json_get(b, f[i])))
            return 0;
    return 1;
}

static int load_replay(wctx *c)
{
    size_t cap = 0;
    jc_intern keys = {0};
    int32_t *last = NULL; /* per key: replay index of its live version */
    size_t nlast = 0;
    int rc = 0;
    for (size_t i = 0; i < c->nops; i++) {
        const jc_op *op = &c->ops[i];
        if (strcmp(op->f, "replay"))
            continue;
        const jc_json *evs = jc_json_get(op->cmp ? op->cmp : op->inv, "events");
        for (size_t k = 0; evs && evs->type == JC_JSON_ARR && k < evs->len;
             k++) {
            if (c->nrp == cap) {
                cap = cap ? cap * 2 : 1024;
                rev_ev *n = cm_realloc(c->rp, cap * sizeof *n);
                if (!n)
                    return -ENOMEM;
                c->rp = n;
            }
            const jc_json *e = &evs->items[k];
            c->rp[c->nrp++] = (rev_ev){e, jc__int(e, "mod_revision", -1),
                                       evkey(e), -1, op->index};
        }
    }
    c->sorted = cm_malloc((c->nrp + 1) * sizeof *c->sorted);
    c->stamp = cm_calloc(c->nrp + 1, sizeof *c->stamp);
    if (!c->sorted || !c->stamp)
        return -ENOMEM;
    for (size_t i = 0; i < c->nrp && !rc; i++) {
        rev_ev *r = &c->rp[i];
        c->sorted[i] = (int32_t)i;
        if (i && r->rev < c->rp[i - 1].rev)
            rc = jc__anomaly(c->res, "replay-order", &r->op, 1,
                             "replay goes from revision %lld back to %lld",
                             (long long)c->rp[i - 1].rev, (long long)r->rev);
        int32_t kid = jc__intern(&keys, r->key, strlen(r->key));
        if (kid < 0 || rc) {
            rc = rc ? rc : kid;
            break;
        }
        if ((size_t)kid >= nlast) { /* a key not seen before */
            int32_t *nl = cm_realloc(last, keys.n * sizeof *nl);
            if (!nl) {
                rc = -ENOMEM;
                break;
            }
            last = nl;
            while (nlast < keys.n)
                last[nlast++] = -1;
        }
        r->prev = last[kid];
        const jc_json *prev = r->prev >= 0 ? c->rp[r->prev].ev : NULL;
        if (is_put(r->ev)) {
            int64_t cr = jc__int(r->ev, "create_revision", -1);
            int64_t ver = jc__int(r->ev, "version", -1);
            int64_t want_cr =
                prev ? jc__int(prev, "create_revision", -1) : r->rev;
            int64_t want_ver = prev ? jc__int(prev, "version", 0) + 1 : 1;
            if (cr != want_cr || ver != want_ver)
                rc = jc__anomaly(c->res, "bad-create-flag", &r->op, 1,
                                 "replay: put of %s at %lld has "
                                 "create_revision %lld version %lld, "
                                 "expected %lld and %lld",
                                 r->key, (long long)r->rev, (long long)cr,
                                 (long long)ver, (long long)want_cr,
                                 (long long)want_ver);
        }
        const jc_json *pkv = jc_json_get(r->ev, "prev_kv");
        if (!rc && pkv && pkv->type != JC_JSON_NULL &&
            (!prev || !same_kv(pkv, prev)))
            rc = jc__anomaly(c->res, "bad-prev-kv", &r->op, 1,
                             "replay: prev_kv of %s at %lld is not its "
                             "previous version",
                             r->key, (long long)r->rev);
        last[kid] = is_put(r->ev) ? (int32_t)i : -1;
    }
    cm_free(last);
    jc__intern_free(&keys);
    if (rc)
        return rc;
    sort_ctx = c;
    qsort(c->sorted, c->nrp, sizeof *c->sorted, cmp_rk);
    for (size_t i = 1; i < c->nrp; i++) {
        const rev_ev *a = &c->rp[c->sorted[i - 1]], *b = &c->rp[c->sorted[i]];
        if (a->rev == b->rev && !strcmp(a->key, b->key) &&
            (rc = jc__anomaly(c->res, "duplicate-event", &b->op, 1,
                              "replay holds two events for %s at %lld", b->key,
                              (long long)b->rev)))
            return rc;
    }
    return 0;
}

static int check_writes(wctx *c)
{
    jc_intern puts = {0}; /* "key\x1fvalue" of every replayed put */
    int rc = 0;
    for (size_t i = 0; i < c->nrp && !rc; i++) {
        if (!is_put(c->rp[i].ev))
            continue;
        jc_sb b = {0};
        jc__sb_printf(&b, "%s\x1f", c->rp[i].key);
        jc__sb_json(&b, jc_json_get(c->rp[i].ev, "value"));
        if (b.oom || jc__intern(&puts, b.s, b.len) < 0)
            rc = -ENOMEM;
        jc__sb_free(&b);
    }
    for (size_t i = 0; i < c->nops && !rc; i++) {
        const jc_op *op = &c->ops[i];
        int put = !strcmp(op->f, "put");
        if (!put && strcmp(op->f, "delete"))
            continue;
        const char *key = jc__str(op->inv, "key");
        const jc_json *val = jc_json_get(op->inv, "value");
        if (!key)
            continue;
        if (op->type == JC_OK) {
            int64_t rev = jc__int(op->cmp, "revision", -1);
            if (rev < 0 || jc__int(op->cmp, "deleted", 1) == 0)
                continue; /* nothing written (delete of an absent key) */
            int32_t ri = find_rp(c, rev, key);
            const jc_json *e = ri >= 0 ? c->rp[ri].ev : NULL;
            if (!e || is_put(e) != put ||
                (put && !jc_json_equal(jc_json_get(e, "value"), val)))
                rc = jc__anomaly(c->res, "lost-write", &op->index, 1,
                                 "acknowledged %s of %s at revision %lld "
                                 "is not in the replay",
                                 op->f, key, (long long)rev);
        } else if (op->type == JC_FAIL && put) {
            jc_sb b = {0};
            jc__sb_printf(&b, "%s\x1f", key);
            jc__sb_json(&b, val);
            if (b.oom)
                rc = -ENOMEM;
            else if (jc__intern_find(&puts, b.s, b.len) >= 0)
                rc = jc__anomaly(c->res, "phantom-write", &op->index, 1,
                                 "put of %s failed but its value is in the "
                                 "replay",
                                 key);
            jc__sb_free(&b);
        }
    }
    jc__intern_free(&puts);
    return rc;
}

typedef struct filter {
    const char *kind, *key, *end;
    int prev_kv;
    int64_t start;
} filter;

static int matches(const filter *f, const char *k)
{
    if (!strcmp(f->kind, "prefix"))
        return strncmp(k, f->key, strlen(f->key)) == 0;
    if (!strcmp(f->kind, "range"))
        return strcmp(k, f->key) >= 0 &&
               (!f->end || !f->end[0] || strcmp(k, f->end) < 0);
    return strcmp(k, f->key) == 0;
}

/* Collects one anomaly kind's examples so a broken watcher yields one
 * line per kind, not thousands. */
typedef struct examples {
    const char *type;
    int64_t ops[MAX_EXAMPLES];
    size_t n, total;
    char first[256];
} examples;

static void note(examples *x, int64_t op, const char *first)
{
    if (x->total++ == 0)
        snprintf(x->first, sizeof x->first, "%s", first);
    if (x->n < MAX_EXAMPLES)
        x->ops[x->n++] = op;
}

enum {
    X_FILTER,
    X_ORDER,
    X_DUP,
    X_ATOMIC,
    X_PROGRESS,
    X_AFTERPROG,
    X_UNEXPECTED,
    X_WRONG,
    X_CREATE,
    X_PREVKV,
    X_MISSING,
    X_RESUME,
    X_N
};
static const char *const xnames[X_N] = {
    "filter-mismatch",  "revision-decreased", "duplicate-event",
    "non-atomic",       "progress-decreased", "event-after-progress",
    "unexpected-event", "wrong-event",        "bad-create-flag",
    "bad-prev-kv",      "missing-event",      "bad-resume"};

/* Compares one delivered event with the replay; 1 when it is a repeat
 * (so the ordering checks do not report the same fault again). */
static int check_event(wctx *c, const filter *f, const jc_json *e, int64_t opi,
                       int32_t wno, examples *x)
{
    char msg[256];
    const char *k = evkey(e);
    int64_t rev = jc__int(e, "mod_revision", -1);
    if (!matches(f, k)) {
        snprintf(msg, sizeof msg, "event for %s does not match the filter", k);
        note(&x[X_FILTER], opi, msg);
    }
    int32_t ri = find_rp(c, rev, k);
    if (ri < 0) {
        snprintf(msg, sizeof msg,
                 "event %s@%lld is not in the store's "
                 "history",
                 k, (long long)rev);
        note(&x[X_UNEXPECTED], opi, msg);
        return 0;
    }
    if (c->stamp[ri] == wno + 1) {
        snprintf(msg, sizeof msg, "event %s@%lld delivered twice", k,
                 (long long)rev);
        note(&x[X_DUP], opi, msg);
        return 1;
    }
    c->stamp[ri] = wno + 1;
    const jc_json *want = c->rp[ri].ev;
    int64_t cr = jc__int(e, "create_revision", -1);
    int64_t ver = jc__int(e, "version", -1);
    if (is_put(e) && (ver == 1) != (cr == rev)) {
        snprintf(msg, sizeof msg,
                 "event %s@%lld: version %lld with "
                 "create_revision %lld",
                 k, (long long)rev, (long long)ver, (long long)cr);
        note(&x[X_CREATE], opi, msg);
    } else if (is_put(e) != is_put(want) || !same_kv(e, want)) {
        snprintf(msg, sizeof msg, "event %s@%lld differs from the store's", k,
                 (long long)rev);
        note(&x[X_WRONG], opi, msg);
    }
    const jc_json *pkv = jc_json_get(e, "prev_kv");
    int has = pkv && pkv->type != JC_JSON_NULL;
    int32_t pi = c->rp[ri].prev;
    int ok =
        f->prev_kv ? (pi < 0 ? !has : has && same_kv(pkv, c->rp[pi].ev)) : !has;
    if (!ok) {
        snprintf(msg, sizeof msg,
                 "event %s@%lld: prev_kv is not the key's "
                 "previous version%s",
                 k, (long long)rev, f->prev_kv ? "" : " (none was asked for)");
        note(&x[X_PREVKV], opi, msg);
    }
    return 0;
}

static int check_watcher(wctx *c, const int32_t *idx, size_t n, int32_t wno,
                         const char *wname)
{
    filter f = {"key", "", NULL, 0, 0};
    examples x[X_N];
    memset(x, 0, sizeof x);
    int64_t last_rev = -1, last_batch_of_rev = -1, last_prog = -1;
    int64_t first_rev = -1, create_op = -1;
    for (size_t i = 0; i < n; i++) {
        const jc_op *op = &c->ops[idx[i]];
        const jc_json *o = op->cmp ? op->cmp : op->inv;
        char msg[256];
        if (!strcmp(op->f, "watch-create")) {
            const char *kind = jc__str(o, "filter");
            f.kind = kind ? kind : "key";
            f.key = jc__str(o, "key") ? jc__str(o, "key") : "";
            f.end = jc__str(o, "range_end");
            const jc_json *pk = jc_json_get(o, "prev_kv");
            f.prev_kv = pk && pk->type == JC_JSON_BOOL && pk->i;
            f.start = jc__int(o, "start_revision", 0);
            create_op = op->index;
        } else if (!strcmp(op->f, "watch-progress")) {
            int64_t r = jc__int(o, "revision", -1);
            if (r < last_prog) {
                snprintf(msg, sizeof msg, "progress went from %lld to %lld",
                         (long long)last_prog, (long long)r);
                note(&x[X_PROGRESS], op->index, msg);
            }
            if (r > last_prog)
                last_prog = r;
        } else if (!strcmp(op->f, "watch-events")) {
            const jc_json *evs = jc_json_get(o, "events");
            for (size_t k = 0; evs && evs->type == JC_JSON_ARR && k < evs->len;
                 k++) {
                const jc_json *e = &evs->items[k];
                int64_t rev = jc__int(e, "mod_revision", -1);
                if (first_rev < 0)
                    first_rev = rev;
                if (check_event(c, &f, e, op->index, wno, x))
                    continue;
                if (rev < last_rev) {
                    snprintf(msg, sizeof msg,
                             "revision went from %lld to "
                             "%lld",
                             (long long)last_rev, (long long)rev);
                    note(&x[X_ORDER], op->index, msg);
                } else if (rev == last_rev && last_batch_of_rev != (int64_t)i) {
                    snprintf(msg, sizeof msg,
                             "revision %lld split across "
                             "responses",
                             (long long)rev);
                    note(&x[X_ATOMIC], op->index, msg);
                }
                if (rev <= last_prog) {
                    snprintf(msg, sizeof msg,
                             "event at %lld after progress "
                             "notification %lld",
                             (long long)rev, (long long)last_prog);
                    note(&x[X_AFTERPROG], op->index, msg);
                }
                if (rev >= last_rev) {
                    last_rev = rev;
                    last_batch_of_rev = (int64_t)i;
                }
            }
        }
    }
    /* Reliability and resumption over [from, upto]. */
    int64_t from = f.start > 0 ? f.start : first_rev;
    int64_t upto = last_rev > last_prog ? last_rev : last_prog;
    int first_seen = 1;
    for (size_t i = 0; from >= 0 && i < c->nrp; i++) {
        const rev_ev *r = &c->rp[c->sorted[i]];
        if (r->rev < from || r->rev > upto || !matches(&f, r->key))
            continue;
        if (c->stamp[c->sorted[i]] != wno + 1) {
            char msg[256];
            snprintf(msg, sizeof msg, "event %s@%lld never delivered%s", r->key,
                     (long long)r->rev,
                     first_seen ? " (first event after the start)" : "");
            note(&x[first_seen ? X_RESUME : X_MISSING],
                 create_op >= 0 ? create_op : r->op, msg);
        }
        first_seen = 0;
    }
    /* Events before the start revision are unexpected too. */
    for (size_t i = 0; f.start > 0 && i < c->nrp; i++)
        if (c->stamp[i] == wno + 1 && c->rp[i].rev < f.start) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "event %s@%lld is before the start "
                     "revision %lld",
                     c->rp[i].key, (long long)c->rp[i].rev, (long long)f.start);
            note(&x[X_UNEXPECTED], create_op, msg);
        }
    for (int k = 0; k < X_N; k++) {
        if (!x[k].total)
            continue;
        int rc = jc__anomaly(c->res, xnames[k], x[k].ops, x[k].n,
                             "watcher %s: %s (%zu such)", wname, x[k].first,
                             x[k].total);
        if (rc)
            return rc;
    }
    return 0;
}

static int watcher_id(jc_intern *ids, const jc_op *op)
{
    const jc_json *w = jc_json_get(op->cmp ? op->cmp : op->inv, "watcher");
    if (!w)
        return -1;
    jc_sb b = {0};
    if (w->type == JC_JSON_STR)
        jc__sb_add(&b, w->s, w->len);
    else
        jc__sb_json(&b, w);
    int32_t id = b.oom ? -ENOMEM : jc__intern(ids, b.s, b.len);
    jc__sb_free(&b);
    return id == -1 ? -ENOMEM : id;
}

int jc_check_watch(const jc_history *h, const jc_opts *o, jc_result *res)
{
    wctx c = {
        .ops = jc_history_ops(h), .nops = jc_history_count(h), .res = res};
    jc_intern ids = {0};
    int32_t *wof = cm_malloc((c.nops + 1) * sizeof *wof);
    int32_t *byw = cm_malloc((c.nops + 1) * sizeof *byw);
    size_t *cnt = NULL;
    (void)o; /* no search here: nothing to budget */
    int rc = 0;
    res->valid = JC_VALID;
    if (!wof || !byw) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = load_replay(&c)) || (rc = check_writes(&c)))
        goto out;
    res->checked = (int64_t)c.nrp;
    for (size_t i = 0; i < c.nops; i++) {
        wof[i] = -1;
        if (strncmp(c.ops[i].f, "watch-", 6))
            continue;
        if ((wof[i] = watcher_id(&ids, &c.ops[i])) < -1) {
            rc = wof[i];
            goto out;
        }
    }
    cnt = cm_calloc(ids.n + 2, sizeof *cnt);
    if (!cnt) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c.nops; i++)
        if (wof[i] >= 0)
            cnt[wof[i] + 2]++;
    for (size_t k = 0; k < ids.n; k++)
        cnt[k + 2] += cnt[k + 1];
    for (size_t i = 0; i < c.nops; i++)
        if (wof[i] >= 0)
            byw[cnt[wof[i] + 1]++] = (int32_t)i;
    for (size_t k = 0; k < ids.n && !rc; k++)
        rc = check_watcher(&c, byw + cnt[k], cnt[k + 1] - cnt[k], (int32_t)k,
                           ids.strs[k]);
out:
    cm_free(wof);
    cm_free(byw);
    cm_free(cnt);
    cm_free(c.rp);
    cm_free(c.sorted);
    cm_free(c.stamp);
    jc__intern_free(&ids);
    return rc;
}
