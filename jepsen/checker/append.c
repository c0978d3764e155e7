/*
 * Strict serializability of list-append transactions, after Elle
 * (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from
 * Experimental Observations").
 *
 * Appends make versions recoverable: a read of a key returns the whole
 * list, so every read reveals the order of all appends before it, and
 * since elements are unique per key, each element names the transaction
 * that appended it.  The longest read of a key is taken as its version
 * order; every other read must be a prefix of it, or no single order
 * exists ("incompatible-order", and the key gives no edges).
 *
 * From the orders we build a dependency graph over committed (ok) and
 * possibly committed (info) transactions:
 *   ww  T1 appended the element just before T2's in the order;
 *   wr  T2 read a list ending in T1's element;
 *   rw  T1 read a list that the next element (T2's) is missing from;
 *   rt  T1 completed before T2 was invoked (strict serializability).
 * A cycle means no serial order agrees with the observations.  Each
 * strongly connected component is classified by the weakest edge set that
 * still closes a cycle in it, as Adya's hierarchy ranks them: ww only G0,
 * plus wr G1c, exactly one rw G-single, more G2; needing rt edges appends
 * "-realtime" (a G-single-realtime is a stale read).
 *
 * Non-cycle anomalies come straight from the reads: G1a (read an element
 * of a failed transaction), G1b (read a state a transaction later
 * overwrote itself), duplicate elements, garbage reads (elements nobody
 * appended) and lost updates (two committed transactions read the same
 * version of a key and both appended to it).
 *
 * Realtime edges are added as a transitive reduction: a completed txn
 * stays in a "frontier" until some txn invoked after its completion
 * completes (that txn then stands for it), so the edge count stays near
 * n times the concurrency instead of n^2.
 */
#include "graph_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CYCLE_REPORTS 64

typedef struct rd {
    int32_t node, key;
    int32_t *el; /* element ids */
    int32_t len;
    int32_t before_append; /* 1 if the txn had not appended to key yet */
    int32_t appends_after; /* 1 if the txn appends to key after the read */
} rd;

typedef struct elem {
    const jc_json *val; /* first occurrence, for explanations */
    int32_t key;
    int32_t writer; /* node, or -1 */
    int32_t wop;    /* history op index of the writer, or -1 */
    int8_t failed;  /* writer's txn failed */
    int8_t final;   /* writer's last append to this key */
} elem;

/* Integer elements are the common case and reads repeat every one of
 * them, so they get a string-free table keyed by (key id, value). */
typedef struct islot {
    int64_t v;
    int32_t key;
    int32_t id; /* element id + 1; 0 = empty */
} islot;

/* Most reads of a key are prefixes of one another, so each key keeps its
 * longest all-integer read seen so far; a read is matched against it
 * element by element (sequential int compares) and only elements past it
 * or differing from it are looked up in the table. */
typedef struct refl {
    int64_t *v;
    int32_t *id;
    size_t len, cap;
} refl;

typedef struct ctx {
    const jc_op *ops;
    jc_result *res;
    jc_intern keys, elems; /* elems: non-integer elements' text */
    int32_t *str2el;       /* elems id -> element id */
    size_t nstr2el;
    islot *itab; /* integer elements: (key, value) -> id */
    size_t nislots, nel;
    refl *ref; /* per key: the longest integer read so far */
    size_t nref;
    int32_t *nodeop; /* node -> op index */
    size_t nnodes;
    elem *el;
    size_t elcap;
    rd *reads;
    size_t nreads, rcap;
    cm_arena arena;
    int32_t *order_rd; /* key -> index of its longest read, or -1 */
    int8_t *broken;    /* key has incompatible reads */
    jc_graph g;
    int64_t deadline;
} ctx;

static int64_t opidx(const ctx *c, int32_t node)
{
    return c->ops[c->nodeop[node]].index;
}

static int key_text(jc_sb *b, const jc_json *k)
{
    if (k && k->type == JC_JSON_STR)
        jc__sb_add(b, k->s, k->len);
    else
        jc__sb_json(b, k);
    return b->oom ? -ENOMEM : 0;
}

static int32_t intern_key(ctx *c, const jc_json *k)
{
    if (k->type == JC_JSON_STR)
        return jc__intern(&c->keys, k->s, k->len);
    jc_sb b = {0};
    int32_t id =
        key_text(&b, k) ? -ENOMEM : jc__intern(&c->keys, b.s ? b.s : "", b.len);
    jc__sb_free(&b);
    return id;
}

static size_t islot_of(const islot *t, size_t ns, int32_t key, int64_t v)
{
    uint64_t h = (uint64_t)v * 0x9e3779b97f4a7c15ULL ^
                 (uint64_t)key * 0xc2b2ae3d27d4eb4fULL;
    size_t i = (size_t)(h ^ (h >> 29)) & (ns - 1);
    while (t[i].id && (t[i].v != v || t[i].key != key))
        i = (i + 1) & (ns - 1);
    return i;
}

/* Id of the element slot for (key, v), or -1 for a new one (the caller
 * then stores the new id).  Grows the table; -ENOMEM. */
static int32_t *int_elem(ctx *c, int32_t key, int64_t v)
{
    if ((c->nel + 1) * 2 > c->nislots) {
        size_t ns = c->nislots ? c->nislots * 2 : 4096;
        islot *t = cm_calloc(ns, sizeof *t);
        if (!t)
            return NULL;
        for (size_t i = 0; i < c->nislots; i++)
            if (c->itab[i].id)
                t[islot_of(t, ns, c->itab[i].key, c->itab[i].v)] = c->itab[i];
        cm_free(c->itab);
        c->itab = t;
        c->nislots = ns;
    }
    islot *s = &c->itab[islot_of(c->itab, c->nislots, key, v)];
    if (!s->id) {
        s->v = v;
        s->key = key;
    }
    return &s->id;
}

/* Element ids name (key, element) pairs, dense from 0. */
static int32_t intern_elem(ctx *c, int32_t key, const jc_json *v)
{
    int32_t id;
    if (v->type == JC_JSON_INT) {
        int32_t *slot = int_elem(c, key, v->i);
        if (!slot)
            return -ENOMEM;
        if (*slot)
            return *slot - 1;
        id = (int32_t)c->nel;
        *slot = id + 1;
    } else {
        jc_sb b = {0};
        jc__sb_printf(&b, "%d:", key);
        jc__sb_json(&b, v);
        int32_t sid = b.oom ? -ENOMEM : jc__intern(&c->elems, b.s, b.len);
        jc__sb_free(&b);
        if (sid < 0)
            return sid;
        if ((size_t)sid < c->nstr2el)
            return c->str2el[sid];
        int32_t *n = cm_realloc(c->str2el, (sid + 1) * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->str2el = n;
        c->nstr2el = (size_t)sid + 1;
        id = (int32_t)c->nel;
        c->str2el[sid] = id;
    }
    if ((size_t)id >= c->elcap) {
        size_t nc = c->elcap ? c->elcap * 2 : 1024;
        elem *ne = cm_realloc(c->el, nc * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        c->el = ne;
        c->elcap = nc;
    }
    c->el[id] = (elem){v, key, -1, -1, 0, 0};
    c->nel++;
    return id;
}

/* The element's JSON text, for explanations (truncated). */
static const char *etext(const ctx *c, int32_t e, char *out, size_t cap)
{
    jc_sb b = {0};
    jc__sb_json(&b, c->el[e].val);
    snprintf(out, cap, "%s", b.s ? b.s : "?");
    jc__sb_free(&b);
    return out;
}

static int is_append_to(const jc_json *m, const jc_json *key)
{
    return m->type == JC_JSON_ARR && m->len == 3 &&
           m->items[0].type == JC_JSON_STR &&
           !strcmp(m->items[0].s, "append") && jc_json_equal(&m->items[1], key);
}

/* A read must end with the txn's own earlier appends to the key, in order:
 * a txn always sees its own writes. */
static int check_internal(ctx *c, const jc_op *op, const jc_json *mops,
                          size_t at, const rd *r)
{
    const jc_json *key = &mops->items[at].items[1];
    int32_t m = 0;
    for (size_t j = 0; j < at; j++)
        m += is_append_to(&mops->items[j], key);
    if (!m)
        return 0;
    int32_t k = r->len - m;
    int ok = k >= 0;
    for (size_t j = 0; j < at && ok; j++) {
        if (!is_append_to(&mops->items[j], key))
            continue;
        int32_t e = intern_elem(c, r->key, &mops->items[j].items[2]);
        if (e < 0)
            return e;
        ok = r->el[k++] == e;
    }
    if (ok)
        return 0;
    return jc__anomaly(c->res, "internal", &op->index, 1,
                       "txn #%lld read %s without its own %d earlier "
                       "append(s) at the end",
                       (long long)op->index, c->keys.strs[r->key], m);
}

/* Element ids of a read list, through the key's reference list. */
static int read_elems(ctx *c, int32_t key, const jc_json *l, int32_t *out)
{
    if ((size_t)key >= c->nref) {
        size_t nn = c->keys.n;
        refl *nr = cm_realloc(c->ref, nn * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        memset(nr + c->nref, 0, (nn - c->nref) * sizeof *nr);
        c->ref = nr;
        c->nref = nn;
    }
    refl *f = &c->ref[key];
    int same = 1; /* l[0, k) equals the reference so far */
    for (size_t k = 0; k < l->len; k++) {
        const jc_json *v = &l->items[k];
        int isint = v->type == JC_JSON_INT;
        if (same && isint && k < f->len && f->v[k] == v->i) {
            out[k] = f->id[k];
            continue;
        }
        int32_t e = intern_elem(c, key, v);
        if (e < 0)
            return e;
        out[k] = e;
        if (!same || !isint || k < f->len) {
            same = 0;
            continue;
        }
        if (f->len == f->cap) { /* extend the reference */
            size_t nc = f->cap ? f->cap * 2 : 16;
            int64_t *nv = cm_realloc(f->v, nc * sizeof *nv);
            if (!nv)
                return -ENOMEM;
            f->v = nv;
            int32_t *ni = cm_realloc(f->id, nc * sizeof *ni);
            if (!ni)
                return -ENOMEM;
            f->id = ni;
            f->cap = nc;
        }
        f->v[f->len] = v->i;
        f->id[f->len++] = e;
    }
    return 0;
}

/* Records the appends (pass 0) or the reads (pass 1) of one txn. */
static int scan_txn(ctx *c, int32_t node, int32_t oi, int pass)
{
    const jc_op *op = &c->ops[oi];
    const jc_json *mops = jc__value(op);
    /* Shapes are reported once, by the first pass. */
    if (!mops || mops->type != JC_JSON_ARR)
        return pass ? 0
                    : jc__anomaly(c->res, "malformed", &op->index, 1,
                                  "txn value must be a list of micro-ops");
    int rc;
    for (size_t i = 0; i < mops->len; i++) {
        const jc_json *m = &mops->items[i];
        const char *f = m->type == JC_JSON_ARR && m->len == 3 &&
                                m->items[0].type == JC_JSON_STR
                            ? m->items[0].s
                            : NULL;
        if (!f || (strcmp(f, "append") && strcmp(f, "r")))
            return pass ? 0
                        : jc__anomaly(
                              c->res, "malformed", &op->index, 1,
                              "micro-op %zu is not [\"append\"|\"r\", key, "
                              "value]",
                              i);
        int32_t key = intern_key(c, &m->items[1]);
        if (key < 0)
            return key;
        if (pass == 0 && !strcmp(f, "append")) {
            int32_t e = intern_elem(c, key, &m->items[2]);
            if (e < 0)
                return e;
            elem *x = &c->el[e];
            if (x->wop >= 0 && x->wop != oi) {
                int64_t two[2] = {c->ops[x->wop].index, op->index};
                if ((rc = jc__anomaly(c->res, "duplicate-append", two, 2,
                                      "two txns appended the same element "
                                      "to key %s",
                                      c->keys.strs[key])))
                    return rc;
                continue;
            }
            x->wop = oi;
            x->writer = node;
            x->failed = op->type == JC_FAIL;
            /* Final unless a later micro-op appends to the same key. */
            x->final = 1;
            for (size_t j = i + 1; j < mops->len; j++) {
                const jc_json *m2 = &mops->items[j];
                if (m2->type == JC_JSON_ARR && m2->len == 3 &&
                    m2->items[0].type == JC_JSON_STR &&
                    !strcmp(m2->items[0].s, "append") &&
                    jc_json_equal(&m2->items[1], &m->items[1]))
                    x->final = 0;
            }
        } else if (pass == 1 && !strcmp(f, "r")) {
            const jc_json *l = &m->items[2];
            if (l->type == JC_JSON_NULL)
                continue; /* read not performed / unknown */
            if (l->type != JC_JSON_ARR)
                return jc__anomaly(c->res, "malformed", &op->index, 1,
                                   "read of %s is not a list",
                                   c->keys.strs[key]);
            if (c->nreads == c->rcap) {
                size_t nc = c->rcap ? c->rcap * 2 : 1024;
                rd *nr = cm_realloc(c->reads, nc * sizeof *nr);
                if (!nr)
                    return -ENOMEM;
                c->reads = nr;
                c->rcap = nc;
            }
            rd *r = &c->reads[c->nreads];
            memset(r, 0, sizeof *r);
            r->node = node;
            r->key = key;
            r->len = (int32_t)l->len;
            r->el = cm_arena_alloc(&c->arena, (l->len + 1) * sizeof(int32_t));
            if (!r->el)
                return -ENOMEM;
            if ((rc = read_elems(c, key, l, r->el)))
                return rc;
            if ((rc = check_internal(c, op, mops, i, r)))
                return rc;
            r->before_append = 1;
            for (size_t j = 0; j < mops->len; j++) {
                const jc_json *m2 = &mops->items[j];
                if (m2->type == JC_JSON_ARR && m2->len == 3 &&
                    m2->items[0].type == JC_JSON_STR &&
                    !strcmp(m2->items[0].s, "append") &&
                    jc_json_equal(&m2->items[1], &m->items[1])) {
                    if (j < i)
                        r->before_append = 0;
                    else
                        r->appends_after = 1;
                }
            }
            c->nreads++;
        }
    }
    return 0;
}

/* G1a, G1b, garbage and duplicate elements, one read at a time. */
static int check_reads(ctx *c)
{
    int32_t *seen = cm_calloc(c->nel + 1, sizeof *seen);
    if (!seen)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < c->nreads && !rc; i++) {
        rd *r = &c->reads[i];
        const char *kname = c->keys.strs[r->key];
        int64_t me = opidx(c, r->node);
        for (int32_t k = 0; k < r->len && !rc; k++) {
            elem *x = &c->el[r->el[k]];
            char txt[64];
            if (seen[r->el[k]] == (int32_t)i + 1)
                rc = jc__anomaly(c->res, "duplicate-elements", &me, 1,
                                 "read of %s holds an element twice", kname);
            seen[r->el[k]] = (int32_t)i + 1;
            if (rc)
                break;
            if (x->wop < 0) {
                rc = jc__anomaly(c->res, "garbage-read", &me, 1,
                                 "read of %s holds element %s that no txn "
                                 "appended",
                                 kname, etext(c, r->el[k], txt, sizeof txt));
            } else if (x->failed) {
                int64_t two[2] = {c->ops[x->wop].index, me};
                rc = jc__anomaly(c->res, "G1a", two, 2,
                                 "aborted read: txn #%lld read element %s of "
                                 "%s appended by failed txn #%lld",
                                 (long long)me,
                                 etext(c, r->el[k], txt, sizeof txt), kname,
                                 (long long)two[0]);
            } else if (k == r->len - 1 && !x->final && x->writer != r->node) {
                int64_t two[2] = {c->ops[x->wop].index, me};
                rc = jc__anomaly(c->res, "G1b", two, 2,
                                 "intermediate read: txn #%lld saw %s end "
                                 "in %s, which txn #%lld appended to again",
                                 (long long)me, kname,
                                 etext(c, r->el[k], txt, sizeof txt),
                                 (long long)two[0]);
            }
        }
    }
    cm_free(seen);
    return rc;
}

/* Version orders: the longest read per key; all reads must be prefixes. */
static int infer_orders(ctx *c)
{
    size_t nk = c->keys.n;
    c->order_rd = cm_malloc((nk ? nk : 1) * sizeof *c->order_rd);
    c->broken = cm_calloc(nk ? nk : 1, 1);
    if (!c->order_rd || !c->broken)
        return -ENOMEM;
    for (size_t k = 0; k < nk; k++)
        c->order_rd[k] = -1;
    for (size_t i = 0; i < c->nreads; i++) {
        int32_t *o = &c->order_rd[c->reads[i].key];
        if (*o < 0 || c->reads[*o].len < c->reads[i].len)
            *o = (int32_t)i;
    }
    for (size_t i = 0; i < c->nreads; i++) {
        rd *r = &c->reads[i], *l = &c->reads[c->order_rd[r->key]];
        if (c->broken[r->key])
            continue;
        for (int32_t k = 0; k < r->len; k++) {
            if (r->el[k] == l->el[k])
                continue;
            c->broken[r->key] = 1;
            int64_t two[2] = {opidx(c, l->node), opidx(c, r->node)};
            int rc = jc__anomaly(c->res, "incompatible-order", two, 2,
                                 "reads of %s disagree at position %d: "
                                 "neither is a prefix of the other",
                                 c->keys.strs[r->key], k);
            if (rc)
                return rc;
            break;
        }
    }
    return 0;
}

static int cmp_lost(const void *a, const void *b)
{
    const int32_t *x = a, *y = b;
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* Two committed txns that read the same version of a key and then both
 * appended to it: one of the appends was made blind to the other. */
static int lost_updates(ctx *c)
{
    int32_t(*t)[3] = cm_malloc((c->nreads + 1) * sizeof *t);
    if (!t)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < c->nreads; i++) {
        rd *r = &c->reads[i];
        if (r->before_append && r->appends_after &&
            c->ops[c->nodeop[r->node]].type == JC_OK) {
            t[n][0] = r->key;
            t[n][1] = r->len;
            t[n][2] = r->node;
            n++;
        }
    }
    qsort(t, n, sizeof *t, cmp_lost);
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i;
        while (j < n && t[j][0] == t[i][0] && t[j][1] == t[i][1])
            j++;
        /* A txn may read the key twice before appending: count txns. */
        int64_t ids[8];
        size_t m = 0, distinct = 0;
        for (size_t k = i; k < j; k++) {
            if (k > i && t[k][2] == t[k - 1][2])
                continue;
            distinct++;
            if (m < 8)
                ids[m++] = opidx(c, t[k][2]);
        }
        if (distinct > 1)
            rc = jc__anomaly(c->res, "lost-update", ids, m,
                             "%zu committed txns read the same version (%d "
                             "elements) of %s and all appended to it",
                             distinct, t[i][1], c->keys.strs[t[i][0]]);
        i = j;
    }
    cm_free(t);
    return rc;
}

static int build_edges(ctx *c)
{
    int rc;
    for (size_t k = 0; k < c->keys.n; k++) {
        if (c->order_rd[k] < 0 || c->broken[k])
            continue;
        rd *l = &c->reads[c->order_rd[k]];
        for (int32_t i = 1; i < l->len; i++) {
            elem *a = &c->el[l->el[i - 1]], *b = &c->el[l->el[i]];
            if (a->writer >= 0 && b->writer >= 0 && a->writer != b->writer &&
                !a->failed && !b->failed &&
                (rc = jc__graph_add(&c->g, a->writer, b->writer, JC_WW,
                                    (int32_t)k)))
                return rc;
        }
    }
    for (size_t i = 0; i < c->nreads; i++) {
        rd *r = &c->reads[i];
        if (r->len > 0) {
            elem *x = &c->el[r->el[r->len - 1]];
            if (x->writer >= 0 && !x->failed && x->writer != r->node &&
                (rc = jc__graph_add(&c->g, x->writer, r->node, JC_WR, r->key)))
                return rc;
        }
        if (c->broken[r->key])
            continue;
        rd *l = &c->reads[c->order_rd[r->key]];
        if (r->len < l->len) {
            elem *x = &c->el[l->el[r->len]];
            if (x->writer >= 0 && !x->failed && x->writer != r->node &&
                (rc = jc__graph_add(&c->g, r->node, x->writer, JC_RW, r->key)))
                return rc;
        }
    }
    return 0;
}

typedef struct rtev {
    int64_t pos;
    int32_t node;
    int32_t done; /* 0 invoke, 1 completion */
} rtev;

static int cmp_rtev(const void *a, const void *b)
{
    const rtev *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int realtime_edges(ctx *c)
{
    rtev *ev = cm_malloc((2 * c->nnodes + 1) * sizeof *ev);
    int32_t *front = cm_malloc((c->nnodes + 1) * sizeof *front);
    int64_t *inv_at = cm_malloc((c->nnodes + 1) * sizeof *inv_at);
    int64_t *cmp_at = cm_malloc((c->nnodes + 1) * sizeof *cmp_at);
    int rc = 0;
    if (!ev || !front || !inv_at || !cmp_at) {
        rc = -ENOMEM;
        goto out;
    }
    size_t ne = 0, nf = 0;
    for (size_t v = 0; v < c->nnodes; v++) {
        const jc_op *op = &c->ops[c->nodeop[v]];
        ev[ne++] = (rtev){op->inv_pos, (int32_t)v, 0};
        /* Info txns never complete: nothing is known to follow them. */
        if (op->type == JC_OK)
            ev[ne++] = (rtev){op->cmp_pos, (int32_t)v, 1};
    }
    qsort(ev, ne, sizeof *ev, cmp_rtev);
    for (size_t i = 0; i < ne; i++) {
        int32_t v = ev[i].node;
        if (!ev[i].done) {
            inv_at[v] = ev[i].pos;
            for (size_t k = 0; k < nf; k++)
                if ((rc = jc__graph_add(&c->g, front[k], v, JC_RT, -1)))
                    goto out;
            continue;
        }
        /* Every frontier txn that completed before v's invoke now reaches
         * later txns through v. */
        size_t w = 0;
        for (size_t k = 0; k < nf; k++)
            if (cmp_at[front[k]] > inv_at[v])
                front[w++] = front[k];
        nf = w;
        cmp_at[v] = ev[i].pos;
        front[nf++] = v;
    }
out:
    cm_free(ev);
    cm_free(front);
    cm_free(inv_at);
    cm_free(cmp_at);
    return rc;
}

static const char *kind_name(unsigned k)
{
    return k == JC_WW ? "ww" : k == JC_WR ? "wr" : k == JC_RW ? "rw" : "rt";
}

static int report_cycle(ctx *c, const char *type, const int32_t *path,
                        size_t len)
{
    int64_t *ids = cm_malloc((len + 1) * sizeof *ids);
    jc_sb b = {0};
    if (!ids)
        return -ENOMEM;
    if (!strcmp(type, "G-single-realtime"))
        jc__sb_printf(&b, "stale read: ");
    for (size_t i = 0; i < len; i++) {
        const jc_edge *e = &c->g.edges[path[i]];
        ids[i] = opidx(c, e->from);
        jc__sb_printf(&b, "#%lld -%s", (long long)ids[i], kind_name(e->kind));
        if (e->key >= 0)
            jc__sb_printf(&b, "(%s)", c->keys.strs[e->key]);
        jc__sb_printf(&b, "-> ");
    }
    jc__sb_printf(&b, "#%lld", (long long)ids[0]);
    char *msg = jc__sb_take(&b);
    int rc = jc__anomaly(c->res, type, ids, len, "cycle %s", msg ? msg : "");
    cm_free(msg);
    cm_free(ids);
    return rc;
}

/* A cycle inside the component using only `mask` edges: 1 found, 0 none. */
static int cycle_with(ctx *c, unsigned mask, const int32_t *nodes, size_t nn,
                      const int32_t *comp, int32_t tag, int32_t *sub,
                      int32_t *path, size_t *len)
{
    int32_t ncomp = jc__graph_scc(&c->g, mask, nodes, nn, comp, tag, sub);
    if (ncomp == (int32_t)nn)
        return 0; /* every node alone: acyclic under this mask */
    /* Component sizes via a counting pass over the listed nodes. */
    int32_t *size = cm_calloc((size_t)ncomp, sizeof *size);
    if (!size)
        return -ENOMEM;
    int32_t pick = -1;
    for (size_t i = 0; i < nn; i++)
        if (++size[sub[nodes[i]]] > 1 && pick < 0)
            pick = nodes[i];
    cm_free(size);
    if (pick < 0)
        return 0;
    return jc__graph_path(&c->g, mask, nodes, nn, comp, tag, pick, pick, path,
                          len);
}

/* A cycle with exactly one rw edge: rw u->v plus a path v->u without rw. */
static int single_rw(ctx *c, unsigned base, const int32_t *nodes, size_t nn,
                     const int32_t *comp, int32_t tag, int32_t *path,
                     size_t *len)
{
    int tries = 0;
    for (size_t i = 0; i < nn && tries < 256; i++) {
        int32_t u = nodes[i];
        for (size_t k = c->g.off[u]; k < c->g.off[u + 1]; k++) {
            int32_t ei = c->g.adj[k];
            const jc_edge *e = &c->g.edges[ei];
            if (e->kind != JC_RW || comp[e->to] != tag)
                continue;
            if (++tries > 256 || jc__now_ms() > c->deadline)
                return 0;
            if (jc__graph_path(&c->g, base, nodes, nn, comp, tag, e->to, u,
                               path + 1, len)) {
                path[0] = ei;
                (*len)++;
                return 1;
            }
        }
    }
    return 0;
}

static int classify(ctx *c, const int32_t *nodes, size_t nn,
                    const int32_t *comp, int32_t tag, int32_t *sub,
                    int32_t *path)
{
    static const struct {
        unsigned mask;
        int single;
        const char *name;
    } steps[] = {
        {JC_WW, 0, "G0"},
        {JC_WW | JC_WR, 0, "G1c"},
        {JC_WW | JC_WR, 1, "G-single"},
        {JC_WW | JC_WR | JC_RW, 0, "G2"},
        {JC_WW | JC_RT, 0, "G0-realtime"},
        {JC_WW | JC_WR | JC_RT, 0, "G1c-realtime"},
        {JC_WW | JC_WR | JC_RT, 1, "G-single-realtime"},
        {JC_WW | JC_WR | JC_RW | JC_RT, 0, "G2-realtime"},
    };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        size_t len = 0;
        int r = steps[s].single ? single_rw(c, steps[s].mask, nodes, nn, comp,
                                            tag, path, &len)
                                : cycle_with(c, steps[s].mask, nodes, nn, comp,
                                             tag, sub, path, &len);
        if (r < 0)
            return r;
        if (r)
            return report_cycle(c, steps[s].name, path, len);
    }
    return 0;
}

static int find_cycles(ctx *c)
{
    size_t n = c->nnodes;
    int32_t *all = cm_malloc((n + 1) * sizeof *all);
    int32_t *comp = cm_malloc((n + 1) * sizeof *comp);
    int32_t *sub = cm_malloc((n + 1) * sizeof *sub);
    int32_t *path = cm_malloc((n + 2) * sizeof *path);
    int32_t *bycomp = cm_malloc((n + 1) * sizeof *bycomp);
    size_t *start = NULL;
    int rc = 0;
    if (!all || !comp || !sub || !path || !bycomp) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t v = 0; v < n; v++)
        all[v] = (int32_t)v;
    int32_t ncomp = jc__graph_scc(&c->g, ~0u, all, n, NULL, 0, comp);
    start = cm_calloc((size_t)ncomp + 2, sizeof *start);
    if (!start) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t v = 0; v < n; v++)
        start[comp[v] + 2]++;
    for (int32_t k = 0; k < ncomp; k++)
        start[k + 2] += start[k + 1];
    for (size_t v = 0; v < n; v++)
        bycomp[start[comp[v] + 1]++] = (int32_t)v;
    int reported = 0;
    for (int32_t k = 0; k < ncomp && !rc; k++) {
        size_t nn = start[k + 1] - start[k];
        if (nn < 2)
            continue;
        if (reported++ >= MAX_CYCLE_REPORTS || jc__now_ms() > c->deadline) {
            rc = jc__set_unknown(c->res, "cycle classification stopped "
                                         "early (budget or report limit)");
            break;
        }
        rc = classify(c, bycomp + start[k], nn, comp, k, sub, path);
    }
out:
    cm_free(all);
    cm_free(comp);
    cm_free(sub);
    cm_free(path);
    cm_free(bycomp);
    cm_free(start);
    return rc;
}

int jc_check_append(const jc_history *h, const jc_opts *o, jc_result *res)
{
    ctx c = {.ops = jc_history_ops(h), .res = res, .deadline = jc__deadline(o)};
    size_t n = jc_history_count(h);
    int rc = 0;
    res->valid = JC_VALID;
    c.nodeop = cm_malloc((n ? n : 1) * sizeof *c.nodeop);
    int32_t *nodeof = cm_malloc((n ? n : 1) * sizeof *nodeof);
    if (!c.nodeop || !nodeof) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        nodeof[i] = -1;
        if (strcmp(c.ops[i].f, "txn") || c.ops[i].type == JC_FAIL)
            continue;
        nodeof[i] = (int32_t)c.nnodes;
        c.nodeop[c.nnodes++] = (int32_t)i;
        res->checked++;
    }
    /* Appends first (including failed txns', for G1a), then the reads of
     * committed txns: an info txn's reads were never returned. */
    for (size_t i = 0; i < n && !rc; i++)
        if (!strcmp(c.ops[i].f, "txn"))
            rc = scan_txn(&c, nodeof[i], (int32_t)i, 0);
    for (size_t i = 0; i < n && !rc; i++)
        if (!strcmp(c.ops[i].f, "txn") && c.ops[i].type == JC_OK)
            rc = scan_txn(&c, nodeof[i], (int32_t)i, 1);
    if (!rc)
        rc = check_reads(&c);
    if (!rc)
        rc = infer_orders(&c);
    if (!rc)
        rc = lost_updates(&c);
    c.g.n = c.nnodes;
    if (!rc)
        rc = build_edges(&c);
    if (!rc)
        rc = realtime_edges(&c);
    if (!rc)
        rc = jc__graph_freeze(&c.g);
    if (!rc)
        rc = find_cycles(&c);
out:
    cm_free(nodeof);
    cm_free(c.nodeop);
    cm_free(c.el);
    cm_free(c.itab);
    for (size_t k = 0; k < c.nref; k++) {
        cm_free(c.ref[k].v);
        cm_free(c.ref[k].id);
    }
    cm_free(c.ref);
    cm_free(c.str2el);
    cm_free(c.reads);
    cm_free(c.order_rd);
    cm_free(c.broken);
    cm_arena_free(&c.arena);
    jc__graph_free(&c.g);
    jc__intern_free(&c.keys);
    jc__intern_free(&c.elems);
    return rc;
}
