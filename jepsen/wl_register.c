/*
 * register: reads, writes and compare-and-sets on a few keys, checked for
 * linearizability per key.  Values are small integers so that the same
 * value is written many times, which is what makes a stale read visible
 * (docs/jepsen-checkers.md, "register").  A cas is a txn comparing the
 * value and putting the new one; a txn whose compare failed is a "fail"
 * (it definitely did not write).  Reads are linearizable ranges.
 */
#include "jepsen_int.h"

#include <stdlib.h>
#include <string.h>

#define NKEYS 5

static int setup(jr_run *r)
{
    (void)r;
    return 0;
}

static void read_value(const skiff_result *res, char *out, size_t cap)
{
    if (res->n_kvs == 0)
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "%.*s", (int)res->kvs[0].value_len,
                 (const char *)res->kvs[0].value);
}

static void op(jr_worker *w)
{
    jr_run *r = w->run;
    int k = jr_randn(&w->rng, NKEYS), dice = jr_randn(&w->rng, 4);
    char key[16], body[256], val[32], exp[32];
    snprintf(key, sizeof key, "r/%d", k);
    skiff_result res = {0};
    if (dice < 2) {
        snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":null", key);
        uint64_t t = jr_hist_invoke(r, w->process, "read", body);
        int rc = skiff_get(w->c, key, strlen(key), &res);
        if (rc == 0) {
            read_value(&res, val, sizeof val);
            snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":%s", key,
                     val);
            jr_hist_complete(r, w->process, "ok", "read", body, t);
        } else {
            /* A read changes nothing: a failed one may as well not have
             * happened. */
            snprintf(body, sizeof body,
                     "\"key\":\"%s\",\"value\":null,\"error\":\"%s\"", key,
                     skiff_err_name(rc));
            jr_hist_complete(r, w->process, "fail", "read", body, t);
        }
    } else if (dice == 2) {
        snprintf(val, sizeof val, "%d", jr_randn(&w->rng, 5));
        snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":%s", key, val);
        uint64_t t = jr_hist_invoke(r, w->process, "write", body);
        int rc = skiff_put(w->c, key, strlen(key), val, strlen(val), 0, &res);
        const char *o = jr_write_outcome(rc);
        snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":%s%s%s%s", key,
                 val, rc ? ",\"error\":\"" : "", rc ? skiff_err_name(rc) : "",
                 rc ? "\"" : "");
        jr_hist_complete(r, w->process, o, "write", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
    } else {
        snprintf(exp, sizeof exp, "%d", jr_randn(&w->rng, 5));
        snprintf(val, sizeof val, "%d", jr_randn(&w->rng, 5));
        snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":[%s,%s]", key,
                 exp, val);
        uint64_t t = jr_hist_invoke(r, w->process, "cas", body);
        skiff_cmp cmp = {.result = SKIFF_CMP_EQUAL,
                         .target = SKIFF_CMP_VALUE,
                         .key = key,
                         .key_len = strlen(key),
                         .value = exp,
                         .value_len = strlen(exp)};
        skiff_op put = {.type = SKIFF_OP_PUT,
                        .key = key,
                        .key_len = strlen(key),
                        .value = val,
                        .value_len = strlen(val)};
        skiff_op txn = {.type = SKIFF_OP_TXN,
                        .cmps = &cmp,
                        .n_cmps = 1,
                        .success = &put,
                        .n_success = 1};
        int rc = skiff_do_sync(w->c, &txn, &res);
        const char *o = rc              ? jr_write_outcome(rc)
                        : res.succeeded ? "ok"
                                        : "fail";
        snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":[%s,%s]%s%s%s",
                 key, exp, val, rc ? ",\"error\":\"" : "",
                 rc ? skiff_err_name(rc) : "", rc ? "\"" : "");
        jr_hist_complete(r, w->process, o, "cas", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
    }
    skiff_result_free(&res);
}

/* Final reads: every key on every member, recorded as ordinary reads so
 * the linearizability check covers them; the members must also agree. */
static int final(jr_run *r, char *json, size_t cap)
{
    int agree = 1;
    size_t o = 0;
    o += (size_t)snprintf(json + o, cap - o, "\"final_reads\":{");
    for (int k = 0; k < NKEYS; k++) {
        char key[16], first[32] = "", body[128];
        snprintf(key, sizeof key, "r/%d", k);
        for (int i = 0; i < r->n; i++) {
            if (r->nodes[i].removed)
                continue;
            skiff_client *c = jr_client(r, 0, i, 5000);
            skiff_result res = {0};
            char val[32] = "unavailable";
            snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":null", key);
            int64_t proc = 1000000 + i;
            uint64_t t = jr_hist_invoke(r, proc, "read", body);
            int rc = c ? skiff_get(c, key, strlen(key), &res) : -1;
            if (!rc) {
                read_value(&res, val, sizeof val);
                snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":%s", key,
                         val);
                jr_hist_complete(r, proc, "ok", "read", body, t);
            } else {
                snprintf(body, sizeof body,
                         "\"key\":\"%s\",\"value\":null,\"error\":\"%s\"", key,
                         c ? skiff_err_name(rc) : "no client");
                jr_hist_complete(r, proc, "fail", "read", body, t);
                agree = 0;
            }
            if (!first[0])
                snprintf(first, sizeof first, "%s", val);
            else if (strcmp(first, val))
                agree = 0;
            skiff_result_free(&res);
            skiff_client_destroy(c);
        }
        o += (size_t)snprintf(json + o, cap - o, "%s\"%s\":\"%s\"",
                              k ? "," : "", key, first);
    }
    snprintf(json + o, cap - o, "},\"final_reads_agree\":%s",
             agree ? "true" : "false");
    return agree ? 0 : 1;
}

const jr_workload jr_wl_register = {"register", setup, op, NULL, final};
