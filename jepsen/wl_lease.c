/*
 * lease: each worker grants short leases (TTL 3 s), attaches a key to
 * each, keeps some alive with keep-alives, lets others expire, revokes
 * some, and reads its keys.  The history lets a checker decide that an
 * attached key disappeared only after a revoke or after its TTL ran out
 * without a successful keep-alive, and that a lease kept alive survived
 * leader changes (docs/jepsen.md, "lease" history shapes).
 */
#include "jepsen_int.h"

#include <stdlib.h>
#include <string.h>

#define TTL 3
#define PERW 3

typedef struct ls {
    int64_t id;
    int keep;  /* kept alive */
    int alive; /* not yet revoked or found expired */
    char key[32];
} ls;

typedef struct lw {
    ls l[PERW];
    int serial;
} lw;

static int setup(jr_run *r)
{
    (void)r;
    return 0;
}

static void op(jr_worker *w)
{
    jr_run *r = w->run;
    if (!w->state)
        w->state = calloc(1, sizeof(lw));
    lw *s = w->state;
    if (!s)
        return;
    char body[256];
    /* Keep-alives first: they are time-critical. */
    for (int i = 0; i < PERW; i++) {
        ls *l = &s->l[i];
        if (!l->alive || !l->keep)
            continue;
        snprintf(body, sizeof body, "\"lease\":%lld", (long long)l->id);
        uint64_t t = jr_hist_invoke(r, w->process, "keepalive", body);
        int64_t ttl = 0;
        int rc = skiff_lease_keepalive_once(w->c, l->id, &ttl);
        if (!rc) {
            /* ttl <= 0: the lease is gone (docs/jepsen-checkers.md). */
            snprintf(body, sizeof body, "\"lease\":%lld,\"ttl\":%lld",
                     (long long)l->id, (long long)ttl);
            jr_hist_complete(r, w->process, "ok", "keepalive", body, t);
            if (ttl <= 0)
                l->alive = 0;
        } else {
            snprintf(body, sizeof body, "\"lease\":%lld,\"error\":\"%s\"",
                     (long long)l->id,
                     rc == SKIFF_ELEASE_NOT_FOUND ? "not-found"
                                                  : skiff_err_name(rc));
            jr_hist_complete(r, w->process, "fail", "keepalive", body, t);
            if (rc == SKIFF_ELEASE_NOT_FOUND)
                l->alive = 0;
        }
    }
    int i = jr_randn(&w->rng, PERW);
    ls *l = &s->l[i];
    skiff_result res = {0};
    if (!l->alive) {
        snprintf(body, sizeof body, "\"ttl\":%d", TTL);
        uint64_t t = jr_hist_invoke(r, w->process, "grant", body);
        int64_t id = 0, ttl = 0;
        int rc = skiff_lease_grant(w->c, TTL, 0, &id, &ttl);
        const char *o = jr_write_outcome(rc);
        if (!rc)
            snprintf(body, sizeof body, "\"ttl\":%d,\"lease\":%lld", TTL,
                     (long long)id);
        jr_hist_complete(r, w->process, o, "grant", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
        if (rc)
            return;
        l->id = id;
        l->keep = jr_randn(&w->rng, 2);
        l->alive = 1;
        snprintf(l->key, sizeof l->key, "l/%d/%d", w->id, s->serial++);
        snprintf(body, sizeof body,
                 "\"key\":\"%s\",\"value\":\"x\",\"lease\":%lld,\"keep\":%s",
                 l->key, (long long)id, l->keep ? "true" : "false");
        t = jr_hist_invoke(r, w->process, "put", body);
        rc = skiff_put(w->c, l->key, strlen(l->key), "x", 1, id, &res);
        o = jr_write_outcome(rc);
        jr_hist_complete(r, w->process, o, "put", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
    } else if (!jr_randn(&w->rng, 6)) {
        snprintf(body, sizeof body, "\"lease\":%lld", (long long)l->id);
        uint64_t t = jr_hist_invoke(r, w->process, "revoke", body);
        int rc = skiff_lease_revoke(w->c, l->id);
        const char *o = jr_write_outcome(rc);
        jr_hist_complete(r, w->process, o, "revoke", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
        l->alive = 0;
    } else {
        snprintf(body, sizeof body, "\"key\":\"%s\",\"lease\":%lld", l->key,
                 (long long)l->id);
        uint64_t t = jr_hist_invoke(r, w->process, "read", body);
        int rc = skiff_get(w->c, l->key, strlen(l->key), &res);
        if (!rc)
            snprintf(body, sizeof body,
                     "\"key\":\"%s\",\"lease\":%lld,\"value\":%s%s%s,"
                     "\"attached\":%lld",
                     l->key, (long long)l->id, res.n_kvs ? "\"" : "null",
                     res.n_kvs ? "x" : "", res.n_kvs ? "\"" : "",
                     (long long)(res.n_kvs ? res.kvs[0].lease : 0));
        jr_hist_complete(r, w->process, rc ? "fail" : "ok", "read", body, t);
    }
    skiff_result_free(&res);
}

static int final(jr_run *r, char *json, size_t cap)
{
    skiff_client *c = jr_client(r, 0, -1, 5000);
    skiff_result res = {0};
    int rc =
        c ? skiff_do_sync(c, &(skiff_op){.type = SKIFF_OP_LEASE_LEASES}, &res)
          : -1;
    snprintf(json, cap, "\"leases_listed\":%s,\"leases_live\":%zu",
             rc ? "false" : "true", rc ? 0 : res.n_leases);
    skiff_result_free(&res);
    skiff_client_destroy(c);
    return rc ? 1 : 0;
}

const jr_workload jr_wl_lease = {"lease", setup, op, NULL, final};
