/*
 * append: Elle-style list-append transactions over a few keys, checked for
 * strict serializability (docs/jepsen-checkers.md, "append").  A list is
 * stored as a comma-separated value.  Each transaction first reads every
 * key it touches in one read-only txn, then commits one txn that compares
 * each key's mod_revision with what it read and puts the appended lists;
 * so the reads it reports are exactly the state its writes replaced.  A
 * failed compare means a concurrent writer won: the txn did nothing and
 * is recorded as "fail" (the client does not retry it).
 *
 * Appended elements are unique across the run (one atomic counter), which
 * lets the final read name every acknowledged append that is missing.
 */
#include "jepsen_int.h"

#include <stdlib.h>
#include <string.h>

#define NKEYS 8
/* Longest list value handled, in bytes.  A txn whose lists would not fit
 * fails before writing anything (a truncated list must never be written:
 * it would lose acknowledged appends and blame the store for it). */
#define LIST_CAP 65536
#define BODY_CAP (NKEYS * (LIST_CAP + 64) + 1024)
#define MAXMOPS 4

static atomic_llong next_elem = 1;

typedef struct mop {
    int append; /* else read */
    int key;
    long long elem;
} mop;

static int setup(jr_run *r)
{
    (void)r;
    return 0;
}

static size_t body_of(char *b, size_t cap, const mop *m, int n,
                      char lists[][LIST_CAP], int with_reads)
{
    size_t o = (size_t)snprintf(b, cap, "\"value\":[");
    for (int i = 0; i < n; i++) {
        if (m[i].append)
            o +=
                (size_t)snprintf(b + o, cap - o, "%s[\"append\",\"a/%d\",%lld]",
                                 i ? "," : "", m[i].key, m[i].elem);
        else
            o += (size_t)snprintf(
                b + o, cap - o, "%s[\"r\",\"a/%d\",%s%s%s]", i ? "," : "",
                m[i].key, with_reads ? "[" : "null", with_reads ? lists[i] : "",
                with_reads ? "]" : "");
    }
    o += (size_t)snprintf(b + o, cap - o, "]");
    return o;
}

static void op(jr_worker *w)
{
    jr_run *r = w->run;
    mop m[MAXMOPS] = {0};
    int n = 1 + jr_randn(&w->rng, MAXMOPS);
    for (int i = 0; i < n; i++) {
        m[i].append = jr_randn(&w->rng, 2);
        m[i].key = jr_randn(&w->rng, NKEYS);
        m[i].elem = m[i].append ? atomic_fetch_add(&next_elem, 1) : 0;
    }
    static _Thread_local char lists[MAXMOPS][LIST_CAP];
    static _Thread_local char body[MAXMOPS * (LIST_CAP + 64) + 1024];
    body_of(body, sizeof body, m, n, lists, 0);
    uint64_t t = jr_hist_invoke(r, w->process, "txn", body);

    /* Distinct keys and their state. */
    int keys[MAXMOPS], nk = 0, any_append = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < nk; j++)
            seen |= keys[j] == m[i].key;
        if (!seen)
            keys[nk++] = m[i].key;
        any_append |= m[i].append;
    }
    char kname[MAXMOPS][16];
    skiff_op rd[MAXMOPS];
    memset(rd, 0, sizeof rd);
    for (int j = 0; j < nk; j++) {
        snprintf(kname[j], sizeof kname[j], "a/%d", keys[j]);
        rd[j].type = SKIFF_OP_RANGE;
        rd[j].key = kname[j];
        rd[j].key_len = strlen(kname[j]);
    }
    skiff_op rtxn = {
        .type = SKIFF_OP_TXN, .success = rd, .n_success = (size_t)nk};
    skiff_result res = {0};
    int rc = skiff_do_sync(w->c, &rtxn, &res);
    if (rc) {
        /* Nothing was written yet. */
        jr_hist_complete(r, w->process, "fail", "txn", body, t);
        skiff_result_free(&res);
        return;
    }
    static _Thread_local char cur[MAXMOPS][LIST_CAP];
    int64_t mod[MAXMOPS];
    int too_long = 0;
    for (int j = 0; j < nk; j++) {
        const skiff_result *sr =
            j < (int)res.n_responses ? &res.responses[j] : NULL;
        cur[j][0] = 0;
        mod[j] = 0;
        if (sr && sr->n_kvs) {
            too_long |= sr->kvs[0].value_len >= LIST_CAP;
            snprintf(cur[j], sizeof cur[j], "%.*s", (int)sr->kvs[0].value_len,
                     (const char *)sr->kvs[0].value);
            mod[j] = sr->kvs[0].mod_revision;
        }
    }
    skiff_result_free(&res);
    /* Micro-ops in order on the local copy: a read after an append of the
     * same txn sees it. */
    int dirty[MAXMOPS] = {0};
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (keys[j] != m[i].key)
            j++;
        if (m[i].append) {
            size_t l = strlen(cur[j]);
            int nw = snprintf(cur[j] + l, sizeof cur[j] - l, "%s%lld",
                             l ? "," : "", m[i].elem);
            too_long |= nw < 0 || (size_t)nw >= sizeof cur[j] - l;
            dirty[j] = 1;
        } else {
            snprintf(lists[i], sizeof lists[i], "%s", cur[j]);
        }
    }
    const char *outcome = "ok";
    if (too_long) {
        /* Past the runner's limit: nothing is written, the txn failed. */
        jr_hist_complete(r, w->process, "fail", "txn", body, t);
        return;
    }
    if (any_append) {
        skiff_cmp cmps[MAXMOPS];
        skiff_op puts[MAXMOPS];
        int np = 0;
        memset(cmps, 0, sizeof cmps);
        memset(puts, 0, sizeof puts);
        for (int j = 0; j < nk; j++) {
            cmps[j] = (skiff_cmp){.result = SKIFF_CMP_EQUAL,
                                  .target = SKIFF_CMP_MOD,
                                  .key = kname[j],
                                  .key_len = strlen(kname[j]),
                                  .number = mod[j]};
            if (dirty[j])
                puts[np++] = (skiff_op){.type = SKIFF_OP_PUT,
                                        .key = kname[j],
                                        .key_len = strlen(kname[j]),
                                        .value = cur[j],
                                        .value_len = strlen(cur[j])};
        }
        skiff_op wtxn = {.type = SKIFF_OP_TXN,
                         .cmps = cmps,
                         .n_cmps = (size_t)nk,
                         .success = puts,
                         .n_success = (size_t)np};
        rc = skiff_do_sync(w->c, &wtxn, &res);
        outcome = rc ? jr_write_outcome(rc) : res.succeeded ? "ok" : "fail";
        skiff_result_free(&res);
    }
    /* Reads are reported only for a committed txn; an info txn may or may
     * not have happened, so its reads say nothing. */
    body_of(body, sizeof body, m, n, lists, !strcmp(outcome, "ok"));
    jr_hist_complete(r, w->process, outcome, "txn", body, t);
    if (!strcmp(outcome, "info"))
        jr_worker_retire(w);
}

/* The final read on every member (recorded as read-only txns), and the
 * count of acknowledged appends missing from it. */
static int final(jr_run *r, char *json, size_t cap)
{
    static char finals[NKEYS][LIST_CAP];
    int agree = 1, have = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->nodes[i].removed)
            continue;
        skiff_client *c = jr_client(r, 0, i, 5000);
        static char body[BODY_CAP];
        size_t o = (size_t)snprintf(body, sizeof body, "\"value\":[");
        for (int k = 0; k < NKEYS; k++)
            o += (size_t)snprintf(body + o, sizeof body - o,
                                  "%s[\"r\",\"a/%d\",null]", k ? "," : "", k);
        snprintf(body + o, sizeof body - o, "]");
        int64_t proc = 1000000 + i;
        uint64_t t = jr_hist_invoke(r, proc, "txn", body);
        skiff_op rd[NKEYS];
        char kname[NKEYS][16];
        memset(rd, 0, sizeof rd);
        for (int k = 0; k < NKEYS; k++) {
            snprintf(kname[k], sizeof kname[k], "a/%d", k);
            rd[k] = (skiff_op){.type = SKIFF_OP_RANGE,
                               .key = kname[k],
                               .key_len = strlen(kname[k])};
        }
        skiff_op txn = {
            .type = SKIFF_OP_TXN, .success = rd, .n_success = NKEYS};
        skiff_result res = {0};
        int rc = c ? skiff_do_sync(c, &txn, &res) : -1;
        if (rc) {
            jr_hist_complete(r, proc, "fail", "txn", body, t);
            agree = 0;
        } else {
            o = (size_t)snprintf(body, sizeof body, "\"value\":[");
            for (int k = 0; k < NKEYS; k++) {
                static char l[LIST_CAP];
                l[0] = 0;
                if (k < (int)res.n_responses && res.responses[k].n_kvs)
                    snprintf(l, sizeof l, "%.*s",
                             (int)res.responses[k].kvs[0].value_len,
                             (const char *)res.responses[k].kvs[0].value);
                o += (size_t)snprintf(body + o, sizeof body - o,
                                      "%s[\"r\",\"a/%d\",[%s]]", k ? "," : "",
                                      k, l);
                if (!have)
                    snprintf(finals[k], sizeof finals[k], "%s", l);
                else if (strcmp(finals[k], l))
                    agree = 0;
            }
            snprintf(body + o, sizeof body - o, "]");
            jr_hist_complete(r, proc, "ok", "txn", body, t);
            have = 1;
        }
        skiff_result_free(&res);
        skiff_client_destroy(c);
    }
    /* Every element an ok txn appended must be in the final list. */
    long long lost = 0, lost_example = -1;
    char hp[PATH_MAX + 32];
    snprintf(hp, sizeof hp, "%s/history.jsonl", r->dir);
    FILE *h = fopen(hp, "r");
    static char line[70000];
    while (have && h && fgets(line, sizeof line, h)) {
        if (!strstr(line, "\"type\":\"ok\"") || !strstr(line, "\"f\":\"txn\""))
            continue;
        for (char *p = strstr(line, "[\"append\",\"a/"); p;
             p = strstr(p + 1, "[\"append\",\"a/")) {
            int k;
            long long e;
            if (sscanf(p, "[\"append\",\"a/%d\",%lld]", &k, &e) != 2 || k < 0 ||
                k >= NKEYS)
                continue;
            char needle[32];
            snprintf(needle, sizeof needle, "%lld", e);
            int found = 0;
            size_t nl = strlen(needle);
            for (char *q = strstr(finals[k], needle); q && !found;
                 q = strstr(q + 1, needle))
                found = (q == finals[k] || q[-1] == ',') &&
                        (q[nl] == ',' || q[nl] == 0);
            if (!found) {
                lost++;
                if (lost_example < 0)
                    lost_example = e;
            }
        }
    }
    if (h)
        fclose(h);
    snprintf(json, cap,
             "\"final_reads_agree\":%s,\"final_read_ok\":%s,"
             "\"acknowledged_appends_lost\":%lld,\"lost_example\":%lld",
             agree ? "true" : "false", have ? "true" : "false", lost,
             lost_example);
    return agree && have && !lost ? 0 : 1;
}

const jr_workload jr_wl_append = {"append", setup, op, NULL, final};
