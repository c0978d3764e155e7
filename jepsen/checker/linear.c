/*
 * Linearizability of read/write/cas registers, one key at a time.
 *
 * Linearizability is compositional (Herlihy & Wing's locality, Knossos'
 * "P-compositionality"), so each key is checked alone; that keeps the
 * search space per key small.  The search is Wing & Gong's, with Lowe's
 * memoisation, as Porcupine does it: the key's call and return events are
 * kept in one doubly linked list in history order.  Walking from the head,
 * any call before the first return is a "minimal" operation that may take
 * effect next; we try it against the register model, and on success lift
 * its call and return out of the list and restart from the head.  Meeting a
 * return means its operation should already have taken effect, so we undo
 * the last choice.  Because the set of linearized operations plus the
 * register value fully determine the future of the search, each such
 * configuration is visited once.
 *
 * The set is remembered as a 128-bit Zobrist fingerprint (XOR of random
 * words per operation) instead of a bitset: updating it is O(1) and a
 * cache entry is 24 bytes, which is what makes 100,000-operation histories
 * fast.  A fingerprint collision could only prune a path and so wrongly
 * report "invalid", with probability about states^2 / 2^128.
 *
 * Indeterminate (info) operations get no return event: nothing forces them
 * to take effect, so the search may linearize them anywhere after their
 * invoke or never; it succeeds once every ok operation is linearized.
 * Failed operations did not happen and are dropped, as are info reads,
 * which cannot change the state.
 */
#include "checker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_READ, OP_WRITE, OP_CAS };

typedef struct rop {
    int kind;
    int32_t a, b;    /* read: value; write: value; cas: expected, new */
    int ok;          /* 1: must be linearized; 0: info */
    uint64_t h1, h2; /* Zobrist words */
    const jc_op *src;
} rop;

typedef struct entry {
    int64_t pos;
    int32_t op;
    int32_t match; /* call: its return entry or -1; return: -1 */
    int is_ret;
} entry;

typedef struct cache_slot {
    uint64_t h1, h2;
    int32_t state;
    int32_t used;
} cache_slot;

typedef struct cache {
    cache_slot *slots;
    size_t nslots, n;
} cache;

typedef struct frame {
    int32_t e;
    int32_t state;
} frame;

typedef struct keyrun {
    const char *key;
    rop *ops;
    size_t nops, nok;
    entry *ents;
    int32_t *next, *prev; /* over ents plus the head sentinel at index n */
    size_t nents;
} keyrun;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cache_add(cache *c, uint64_t h1, uint64_t h2, int32_t st)
{
    /* 1 when added, 0 when already present, -ENOMEM. */
    if ((c->n + 1) * 2 > c->nslots) {
        size_t ns = c->nslots ? c->nslots * 2 : 1024;
        cache_slot *s = cm_calloc(ns, sizeof *s);
        if (!s)
            return -ENOMEM;
        for (size_t i = 0; i < c->nslots; i++) {
            cache_slot *o = &c->slots[i];
            if (!o->used)
                continue;
            size_t j =
                (size_t)(o->h1 ^ (uint64_t)o->state * 0x9e37ULL) & (ns - 1);
            while (s[j].used)
                j = (j + 1) & (ns - 1);
            s[j] = *o;
        }
        cm_free(c->slots);
        c->slots = s;
        c->nslots = ns;
    }
    size_t j = (size_t)(h1 ^ (uint64_t)st * 0x9e37ULL) & (c->nslots - 1);
    for (; c->slots[j].used; j = (j + 1) & (c->nslots - 1)) {
        cache_slot *o = &c->slots[j];
        if (o->h1 == h1 && o->h2 == h2 && o->state == st)
            return 0;
    }
    c->slots[j] = (cache_slot){h1, h2, st, 1};
    c->n++;
    return 1;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int step(const rop *o, int32_t st, int32_t *out)
{
    switch (o->kind) {
    case OP_READ:
        *out = st;
        return o->a == st;
    case OP_WRITE:
        *out = o->a;
        return 1;
    default:
        *out = o->b;
        return o->a == st;
    }
}

static void describe(jc_sb *b, const rop *o, const jc_intern *vals)
{
    const jc_op *s = o->src;
    jc__sb_printf(b, "#%lld p%lld %s %s", (long long)s->index,
                  (long long)s->process, o->ok ? "ok" : "info", s->f);
    if (o->kind == OP_CAS)
        jc__sb_printf(b, " %s->%s", vals->strs[o->a], vals->strs[o->b]);
    else
        jc__sb_printf(b, " %s", vals->strs[o->a]);
}

static void unlink_e(keyrun *k, int32_t e)
{
    k->next[k->prev[e]] = k->next[e];
    k->prev[k->next[e]] = k->prev[e];
}

static void relink_e(keyrun *k, int32_t e)
{
    k->next[k->prev[e]] = e;
    k->prev[k->next[e]] = e;
}

/* Searches one key.  Returns JC_VALID/JC_INVALID/JC_UNKNOWN or -ENOMEM. */
static int search(keyrun *k, const jc_intern *vals, int64_t deadline,
                  int64_t max_states, jc_result *res)
{
    int32_t n = (int32_t)k->nents, head = n;
    cache c = {0};
    frame *stack = cm_malloc((k->nops + 1) * sizeof *stack);
    int32_t *stuck_near = cm_malloc(16 * sizeof *stuck_near);
    int32_t last_lin[4];
    int nlast = 0;
    int rc = JC_VALID;
    if (!stack || !stuck_near) {
        rc = -ENOMEM;
        goto out;
    }
    /* A circular list through the head sentinel: next[head] is the first
     * event and reaching head again means the end. */
    for (int32_t i = 0; i <= n; i++) {
        k->next[i] = i == n ? 0 : i + 1;
        k->prev[i] = i == 0 ? head : i - 1;
    }
    k->prev[head] = n ? n - 1 : head;
    if (!n)
        k->next[head] = head;
    size_t depth = 0, nok = 0, best = 0;
    int32_t stuck = -1, best_state = 0, nnear = 0;
    uint64_t h1 = 0, h2 = 0;
    int32_t state = 0; /* the interned null: the register starts absent */
    int32_t e = k->next[head];
    uint64_t iter = 0;
    while (nok < k->nok) {
        if ((++iter & 4095) == 0 &&
            (jc__now_ms() > deadline || (int64_t)c.n > max_states)) {
            rc = JC_UNKNOWN;
            break;
        }
        if (e != head && !k->ents[e].is_ret) {
            const rop *o = &k->ops[k->ents[e].op];
            int32_t ns;
            if (step(o, state, &ns)) {
                int added = cache_add(&c, h1 ^ o->h1, h2 ^ o->h2, ns);
                if (added < 0) {
                    rc = -ENOMEM;
                    goto out;
                }
                if (added) {
                    stack[depth++] = (frame){e, state};
                    state = ns;
                    h1 ^= o->h1;
                    h2 ^= o->h2;
                    nok += (size_t)o->ok;
                    unlink_e(k, e);
                    if (k->ents[e].match >= 0)
                        unlink_e(k, k->ents[e].match);
                    e = k->next[head];
                    continue;
                }
            }
            e = k->next[e];
            continue;
        }
        /* A return (or the end): its operation had to be linearized by
         * now.  Remember the deepest such dead end for the report. */
        if (e != head && (depth >= best || stuck < 0)) {
            best = depth;
            best_state = state;
            stuck = k->ents[e].op;
            nlast = 0;
            for (size_t d = depth; d > 0 && nlast < 4; d--)
                last_lin[nlast++] = k->ents[stack[d - 1].e].op;
            nnear = 0;
            for (int32_t x = k->next[head]; x != head && x != e && nnear < 16;
                 x = k->next[x])
                if (k->ents[x].op != stuck)
                    stuck_near[nnear++] = k->ents[x].op;
        }
        if (depth == 0) {
            rc = JC_INVALID;
            break;
        }
        frame f = stack[--depth];
        const rop *o = &k->ops[k->ents[f.e].op];
        if (k->ents[f.e].match >= 0)
            relink_e(k, k->ents[f.e].match);
        relink_e(k, f.e);
        state = f.state;
        h1 ^= o->h1;
        h2 ^= o->h2;
        nok -= (size_t)o->ok;
        e = k->next[f.e];
    }
    if (rc == JC_INVALID && stuck >= 0) {
        jc_sb b = {0};
        int64_t ids[21];
        size_t nids = 0;
        ids[nids++] = k->ops[stuck].src->index;
        jc__sb_printf(&b,
                      "key %s: no linearization. Deepest search "
                      "linearized %zu ops leaving the register at %s; then ",
                      k->key, best, vals->strs[best_state]);
        if (nlast) {
            jc__sb_printf(&b, "(last:");
            for (int i = nlast - 1; i >= 0; i--) {
                jc__sb_printf(&b, i == nlast - 1 ? " " : ", ");
                describe(&b, &k->ops[last_lin[i]], vals);
            }
            jc__sb_printf(&b, "); ");
        }
        describe(&b, &k->ops[stuck], vals);
        jc__sb_printf(&b, " could not take effect before it returned");
        if (nnear) {
            jc__sb_printf(&b, "; ops that could still go first:");
            for (int32_t i = 0; i < nnear; i++) {
                jc__sb_printf(&b, i ? ", " : " ");
                describe(&b, &k->ops[stuck_near[i]], vals);
                ids[nids++] = k->ops[stuck_near[i]].src->index;
            }
        }
        for (int i = 0; i < nlast; i++)
            ids[nids++] = k->ops[last_lin[i]].src->index;
        char *msg = jc__sb_take(&b);
        int r2 = jc__anomaly(res, "nonlinearizable", ids, nids, "%s",
                             msg ? msg : "key not linearizable");
        cm_free(msg);
        if (r2)
            rc = r2;
    }
out:
    cm_free(c.slots);
    cm_free(stack);
    cm_free(stuck_near);
    return rc;
}

/* Interns the canonical text of a JSON value (null is id 0). */
static int32_t value_id(jc_intern *vals, const jc_json *v)
{
    jc_sb b = {0};
    jc__sb_json(&b, v);
    if (b.oom) {
        jc__sb_free(&b);
        return -ENOMEM;
    }
    int32_t id = jc__intern(vals, b.s, b.len);
    jc__sb_free(&b);
    return id;
}

/* Builds the key's operations and events; returns 0/-ENOMEM; ops whose
 * shape is wrong are reported as "malformed" and left out. */
static int build(keyrun *k, const jc_op *all, const int32_t *idx, size_t n,
                 jc_intern *vals, jc_result *res)
{
    k->ops = cm_calloc(n ? n : 1, sizeof *k->ops);
    k->ents = cm_calloc(2 * n + 1, sizeof *k->ents);
    /* next/prev hold one more slot: the head sentinel. */
    k->next = cm_calloc(2 * n + 1, sizeof *k->next);
    k->prev = cm_calloc(2 * n + 1, sizeof *k->prev);
    if (!k->ops || !k->ents || !k->next || !k->prev)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const jc_op *s = &all[idx[i]];
        rop o = {.src = s, .ok = s->type == JC_OK};
        const jc_json *v;
        int rc = 0;
        if (!strcmp(s->f, "read")) {
            if (!o.ok)
                continue;
            o.kind = OP_READ;
            o.a = value_id(vals, jc_json_get(s->cmp, "value"));
        } else if (!strcmp(s->f, "write")) {
            o.kind = OP_WRITE;
            o.a = value_id(vals, jc_json_get(s->inv, "value"));
        } else {
            o.kind = OP_CAS;
            v = jc_json_get(s->inv, "value");
            if (!v || v->type != JC_JSON_ARR || v->len != 2) {
                rc = jc__anomaly(res, "malformed", &s->index, 1,
                                 "cas value must be [expected, new]");
                if (rc)
                    return rc;
                continue;
            }
            o.a = value_id(vals, &v->items[0]);
            o.b = value_id(vals, &v->items[1]);
        }
        if (o.a < 0 || o.b < 0)
            return -ENOMEM;
        /* Seeded by the op's unique position: user-supplied indices may
         * repeat, and equal words would cancel out in the XOR. */
        uint64_t seed = (uint64_t)idx[i] * 0x2545f4914f6cdd1dULL + 17;
        o.h1 = splitmix(&seed);
        o.h2 = splitmix(&seed);
        int32_t oi = (int32_t)k->nops++;
        k->ops[oi] = o;
        k->nok += (size_t)o.ok;
        int32_t ce = (int32_t)k->nents++;
        k->ents[ce] = (entry){s->inv_pos, oi, -1, 0};
        if (o.ok) {
            int32_t re = (int32_t)k->nents++;
            k->ents[re] = (entry){s->cmp_pos, oi, -1, 1};
        }
    }
    /* Sort by position, then reconnect calls to their returns. */
    qsort(k->ents, k->nents, sizeof *k->ents, cmp_entry);
    int32_t *callof = cm_malloc((k->nops ? k->nops : 1) * sizeof *callof);
    if (!callof)
        return -ENOMEM;
    for (size_t i = 0; i < k->nents; i++) {
        if (!k->ents[i].is_ret)
            callof[k->ents[i].op] = (int32_t)i;
        else
            k->ents[callof[k->ents[i].op]].match = (int32_t)i;
    }
    cm_free(callof);
    return 0;
}

static void keyrun_free(keyrun *k)
{
    cm_free(k->ops);
    cm_free(k->ents);
    cm_free(k->next);
    cm_free(k->prev);
    memset(k, 0, sizeof *k);
}

int jc_check_register(const jc_history *h, const jc_opts *o, jc_result *res)
{
    const jc_op *ops = jc_history_ops(h);
    size_t n = jc_history_count(h);
    int64_t deadline = jc__deadline(o);
    int64_t max_states = o && o->max_states > 0 ? o->max_states : 64 << 20;
    jc_intern keys = {0}, vals = {0};
    int32_t *keyof = cm_malloc((n ? n : 1) * sizeof *keyof);
    size_t *count = NULL, *start = NULL;
    int32_t *byk = NULL;
    int rc = 0;
    res->valid = JC_VALID;
    if (!keyof || value_id(&vals, NULL) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    /* Group operation indices by key (counting sort keeps invoke order). */
    for (size_t i = 0; i < n; i++) {
        keyof[i] = -1;
        const char *f = ops[i].f, *key = jc__str(ops[i].inv, "key");
        if (ops[i].type == JC_FAIL || !key ||
            (strcmp(f, "read") && strcmp(f, "write") && strcmp(f, "cas")))
            continue;
        if ((keyof[i] = jc__intern(&keys, key, strlen(key))) < 0) {
            rc = -ENOMEM;
            goto out;
        }
        res->checked++;
    }
    count = cm_calloc(keys.n + 1, sizeof *count);
    start = cm_calloc(keys.n + 1, sizeof *start);
    byk = cm_malloc((n ? n : 1) * sizeof *byk);
    if (!count || !start || !byk) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (keyof[i] >= 0)
            count[keyof[i]]++;
    for (size_t k = 1; k <= keys.n; k++)
        start[k] = start[k - 1] + count[k - 1];
    memset(count, 0, (keys.n + 1) * sizeof *count);
    for (size_t i = 0; i < n; i++)
        if (keyof[i] >= 0)
            byk[start[keyof[i]] + count[keyof[i]]++] = (int32_t)i;
    for (size_t k = 0; k < keys.n; k++) {
        keyrun kr = {.key = keys.strs[k]};
        rc = build(&kr, ops, byk + start[k], count[k], &vals, res);
        int v = rc ? rc : search(&kr, &vals, deadline, max_states, res);
        keyrun_free(&kr);
        if (v < 0) {
            rc = v;
            goto out;
        }
        rc = 0;
        if (v == JC_UNKNOWN) {
            char note[600];
            snprintf(note, sizeof note, "search budget exhausted on key %s",
                     keys.strs[k]);
            if ((rc = jc__set_unknown(res, note)))
                goto out;
        }
    }
out:
    cm_free(keyof);
    cm_free(count);
    cm_free(start);
    cm_free(byk);
    jc__intern_free(&keys);
    jc__intern_free(&vals);
    return rc;
}
