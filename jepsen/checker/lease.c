/*
 * Lease safety and liveness from client-observed times.
 *
 * A lease granted or kept alive with TTL t at a request invoked at time s
 * cannot expire before s + t: the leader sets the expiry to its own "now"
 * (which is after s) plus t, and a new leader only ever extends it.  So
 * from the ok grants and keep-alives that completed before some moment we
 * get a lower bound on the lease's life, the "guaranteed until" time.  All
 * times are the runner's one monotonic clock, so the bound holds as long
 * as the servers' clocks do not run faster than the runner's.
 *
 * Anomalies:
 *   lease-key-lost      a read completed before the lease's guaranteed
 *                       time, with no revoke invoked yet, and found the
 *                       key absent although the last write to it was a put
 *                       attached to the lease and nothing else touched it;
 *   key-outlived-lease  a read invoked after a revoke of the key's lease
 *                       had completed still saw the value put with it;
 *   lease-lost          a keep-alive that completed before the guaranteed
 *                       time (and before any revoke) said the lease is gone;
 *   keepalive-after-revoke  a keep-alive invoked after the revoke completed
 *                       was answered with a positive TTL.
 * Lease expiry is not forced to happen on time (only revocation is
 * definite), so a key that lingers after its TTL is not an anomaly.
 */
#include "checker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

typedef struct life {
    int64_t done;  /* completion time of the grant/keep-alive */
    int64_t until; /* its invoke time + TTL */
} life;

typedef struct lease {
    int64_t id;
    life *lives;
    size_t n, cap;
    int64_t revoke_inv; /* earliest invoke of a revoke that may apply */
    int64_t revoked;    /* earliest completion of an ok revoke */
} lease;

typedef struct lctx {
    const jc_op *ops;
    size_t nops;
    jc_result *res;
    lease *ls; /* indexed by lease id's interned number */
    size_t nls, cap;
    jc_intern ids; /* lease id (decimal) -> index into ls */
    jc_intern keys;
    int32_t **writes; /* per key: its put/delete op indices, -1 ended */
} lctx;

static int64_t tcmp(const jc_op *op)
{
    return op->type == JC_INFO || op->cmp_time < 0 ? INT64_MAX : op->cmp_time;
}

static int64_t lease_of(const jc_op *op)
{
    int64_t id = jc__int(op->inv, "lease", 0);
    return id ? id : (op->cmp ? jc__int(op->cmp, "lease", 0) : 0);
}

static lease *get_lease(lctx *c, int64_t id, int create)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)id);
    int32_t i = create ? jc__intern(&c->ids, buf, (size_t)n)
                       : jc__intern_find(&c->ids, buf, (size_t)n);
    if (i < 0)
        return NULL;
    if ((size_t)i < c->nls)
        return &c->ls[i];
    if (c->nls == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        lease *nl = cm_realloc(c->ls, nc * sizeof *nl);
        if (!nl)
            return NULL;
        c->ls = nl;
        c->cap = nc;
    }
    lease *l = &c->ls[c->nls++];
    memset(l, 0, sizeof *l);
    l->id = id;
    l->revoke_inv = l->revoked = INT64_MAX;
    return l;
}

static int is_write(const jc_op *op)
{
    return !strcmp(op->f, "put") || !strcmp(op->f, "delete");
}

/* Groups put/delete ops by key so each read only looks at its key's. */
static int index_writes(lctx *c)
{
    size_t *cnt = NULL;
    int32_t *kof = cm_malloc((c->nops + 1) * sizeof *kof);
    if (!kof)
        return -ENOMEM;
    for (size_t i = 0; i < c->nops; i++) {
        const char *k = jc__str(c->ops[i].inv, "key");
        kof[i] = -1;
        if (k && is_write(&c->ops[i]) &&
            (kof[i] = jc__intern(&c->keys, k, strlen(k))) < 0)
            goto oom;
    }
    cnt = cm_calloc(c->keys.n + 1, sizeof *cnt);
    c->writes = cm_calloc(c->keys.n + 1, sizeof *c->writes);
    if (!cnt || !c->writes)
        goto oom;
    for (size_t i = 0; i < c->nops; i++)
        if (kof[i] >= 0)
            cnt[kof[i]]++;
    for (size_t k = 0; k < c->keys.n; k++) {
        if (!(c->writes[k] = cm_malloc((cnt[k] + 1) * sizeof(int32_t))))
            goto oom;
        cnt[k] = 0;
    }
    for (size_t i = 0; i < c->nops; i++)
        if (kof[i] >= 0)
            c->writes[kof[i]][cnt[kof[i]]++] = (int32_t)i;
    for (size_t k = 0; k < c->keys.n; k++)
        c->writes[k][cnt[k]] = -1;
    cm_free(kof);
    cm_free(cnt);
    return 0;
oom:
    cm_free(kof);
    cm_free(cnt);
    return -ENOMEM;
}

/* The latest moment the lease surely lives, from renewals done before t. */
static int64_t guaranteed(const lease *l, int64_t t)
{
    int64_t g = INT64_MIN;
    for (size_t i = 0; l && i < l->n; i++)
        if (l->lives[i].done < t && l->lives[i].until > g)
            g = l->lives[i].until;
    return g;
}

static int collect(lctx *c)
{
    for (size_t i = 0; i < c->nops; i++) {
        const jc_op *op = &c->ops[i];
        int grant = !strcmp(op->f, "grant"), ka = !strcmp(op->f, "keepalive");
        int rev = !strcmp(op->f, "revoke");
        if (!grant && !ka && !rev)
            continue;
        int64_t id = lease_of(op);
        if (!id)
            continue;
        lease *l = get_lease(c, id, 1);
        if (!l)
            return -ENOMEM;
        if (rev) {
            if (op->type != JC_FAIL && op->inv_time < l->revoke_inv)
                l->revoke_inv = op->inv_time;
            if (op->type == JC_OK && op->cmp_time < l->revoked)
                l->revoked = op->cmp_time;
            continue;
        }
        int64_t ttl = op->cmp ? jc__int(op->cmp, "ttl", -1) : -1;
        if (op->type != JC_OK || ttl <= 0 || op->inv_time < 0)
            continue;
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 8;
            life *n = cm_realloc(l->lives, nc * sizeof *n);
            if (!n)
                return -ENOMEM;
            l->lives = n;
            l->cap = nc;
        }
        l->lives[l->n++] = (life){op->cmp_time, op->inv_time + ttl * NS_PER_S};
    }
    return 0;
}

static int check_read(lctx *c, const jc_op *r)
{
    const char *key = jc__str(r->inv, "key");
    const jc_json *v = jc_json_get(r->cmp, "value");
    int absent = !v || v->type == JC_JSON_NULL;
    const jc_op *p = NULL;
    int32_t kid = key ? jc__intern_find(&c->keys, key, strlen(key)) : -1;
    if (kid < 0)
        return 0; /* never written: nothing to say */
    const int32_t *ws = c->writes[kid];
    if (!absent) {
        /* Which put wrote what we saw (values are unique per key)? */
        for (size_t i = 0; ws[i] >= 0; i++) {
            const jc_op *w = &c->ops[ws[i]];
            if (!strcmp(w->f, "put") &&
                jc_json_equal(jc_json_get(w->inv, "value"), v))
                p = w;
        }
        lease *l = p ? get_lease(c, lease_of(p), 0) : NULL;
        if (l && l->revoked < r->inv_time) {
            int64_t two[2] = {p->index, r->index};
            return jc__anomaly(c->res, "key-outlived-lease", two, 2,
                               "read of %s saw the value put with lease "
                               "%lld after that lease was revoked",
                               key, (long long)l->id);
        }
        return 0;
    }
    /* The last put completed before the read began, and no other write to
     * the key that could land between it and the read's end. */
    for (size_t i = 0; ws[i] >= 0; i++) {
        const jc_op *w = &c->ops[ws[i]];
        if (w->type == JC_OK && w->cmp_time < r->inv_time &&
            (!p || w->cmp_time > p->cmp_time))
            p = w;
    }
    if (!p || strcmp(p->f, "put"))
        return 0;
    for (size_t i = 0; ws[i] >= 0; i++) {
        const jc_op *w = &c->ops[ws[i]];
        if (w != p && w->type != JC_FAIL && w->inv_time < tcmp(r) &&
            tcmp(w) > p->inv_time)
            return 0;
    }
    lease *l = get_lease(c, lease_of(p), 0);
    if (!l || l->revoke_inv < tcmp(r))
        return 0;
    int64_t g = guaranteed(l, r->inv_time);
    if (tcmp(r) < g) {
        int64_t two[2] = {p->index, r->index};
        return jc__anomaly(c->res, "lease-key-lost", two, 2,
                           "read of %s found it absent %.3f s before its "
                           "lease %lld could expire, with no revoke",
                           key, (double)(g - tcmp(r)) / 1e9, (long long)l->id);
    }
    return 0;
}

static int check_keepalive(lctx *c, const jc_op *k)
{
    lease *l = get_lease(c, lease_of(k), 0);
    if (!l || k->type == JC_INFO)
        return 0;
    int64_t ttl = k->cmp ? jc__int(k->cmp, "ttl", -1) : -1;
    const char *err = k->cmp ? jc__str(k->cmp, "error") : NULL;
    int gone = (k->type == JC_OK && ttl <= 0) ||
               (k->type == JC_FAIL && err && !strcmp(err, "not-found"));
    if (k->type == JC_OK && ttl > 0 && l->revoked < k->inv_time)
        return jc__anomaly(c->res, "keepalive-after-revoke", &k->index, 1,
                           "lease %lld was kept alive after its revoke "
                           "completed",
                           (long long)l->id);
    if (gone && l->revoke_inv >= k->cmp_time &&
        k->cmp_time < guaranteed(l, k->inv_time))
        return jc__anomaly(c->res, "lease-lost", &k->index, 1,
                           "lease %lld was gone while kept alive within its "
                           "TTL and never revoked",
                           (long long)l->id);
    return 0;
}

int jc_check_lease(const jc_history *h, const jc_opts *o, jc_result *res)
{
    lctx c = {
        .ops = jc_history_ops(h), .nops = jc_history_count(h), .res = res};
    (void)o; /* no search here: nothing to budget */
    int rc;
    res->valid = JC_VALID;
    rc = collect(&c);
    if (!rc)
        rc = index_writes(&c);
    for (size_t i = 0; i < c.nops && !rc; i++) {
        const jc_op *op = &c.ops[i];
        if (op->type != JC_OK && strcmp(op->f, "keepalive"))
            continue;
        if (!strcmp(op->f, "read") && op->type == JC_OK) {
            res->checked++;
            rc = check_read(&c, op);
        } else if (!strcmp(op->f, "keepalive")) {
            res->checked++;
            rc = check_keepalive(&c, op);
        }
    }
    for (size_t i = 0; i < c.nls; i++)
        cm_free(c.ls[i].lives);
    cm_free(c.ls);
    for (size_t k = 0; c.writes && k < c.keys.n; k++)
        cm_free(c.writes[k]);
    cm_free(c.writes);
    jc__intern_free(&c.ids);
    jc__intern_free(&c.keys);
    return rc;
}
