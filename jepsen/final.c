/*
 * End-of-run checks, after the nemesis has healed everything: wait for a
 * leader and for every member to apply the same index, compare HashKV of
 * every member at one revision (they must be equal: the same entries
 * applied in the same order), then the workload's own final reads (which
 * go into the history, so the checkers see them) and its check that no
 * acknowledged write is missing.
 */
#include "jepsen_int.h"

#include <string.h>

int (*jr_before_compact)(jr_run *r, int64_t rev);

int jr_compact(jr_run *r, skiff_client *c, int64_t rev)
{
    if (jr_before_compact && jr_before_compact(r, rev))
        return -1; /* no compaction without the history it destroys */
    char body[64];
    snprintf(body, sizeof body, "\"revision\":%lld", (long long)rev);
    jr_hist_event(r, -1, "info", "compact", body);
    return skiff_compact(c, rev, 0);
}

int jr_final_checks(jr_run *r, const jr_workload *wl)
{
    size_t o = 0, cap = sizeof r->final_json;
    char *j = r->final_json;
    int ok = 1;
    int conv = jr_wait_converged(r, 60000);
    o += (size_t)snprintf(j + o, cap - o, "\"converged\":%s",
                          conv ? "false" : "true");
    if (conv) {
        ok = 0;
        jr_log(r, "final: members did not converge within 60 s");
    }
    /* HashKV at the smallest revision every member has. */
    int64_t rev = INT64_MAX;
    for (int i = 0; i < r->n; i++) {
        if (r->nodes[i].removed)
            continue;
        skiff_result st = {0};
        if (!jr_node_status(r, i, &st, 2000) && st.header.revision < rev)
            rev = st.header.revision;
        skiff_result_free(&st);
    }
    int agree = rev != INT64_MAX;
    uint32_t first = 0;
    int have = 0;
    o += (size_t)snprintf(j + o, cap - o, ",\"hashkv\":{\"revision\":%lld",
                          (long long)(rev == INT64_MAX ? -1 : rev));
    for (int i = 0; i < r->n && rev != INT64_MAX; i++) {
        if (r->nodes[i].removed)
            continue;
        skiff_client *c = jr_client(r, 0, i, 5000);
        skiff_op op = {.type = SKIFF_OP_HASHKV, .revision = rev};
        skiff_result res = {0};
        int rc = c ? skiff_do_sync(c, &op, &res) : -1;
        if (rc) {
            agree = 0;
            o += (size_t)snprintf(j + o, cap - o, ",\"%s\":\"%s\"",
                                  r->nodes[i].name, skiff_err_name(rc));
        } else {
            o += (size_t)snprintf(j + o, cap - o, ",\"%s\":%u",
                                  r->nodes[i].name, res.hash);
            if (have && res.hash != first)
                agree = 0;
            first = res.hash;
            have = 1;
        }
        skiff_result_free(&res);
        skiff_client_destroy(c);
    }
    o += (size_t)snprintf(j + o, cap - o, ",\"agree\":%s}",
                          agree ? "true" : "false");
    if (!agree)
        ok = 0;
    o += (size_t)snprintf(j + o, cap - o, ",\"refused_to_start\":[");
    for (int i = 0, k = 0; i < r->n; i++)
        if (r->nodes[i].refused)
            o += (size_t)snprintf(j + o, cap - o, "%s\"%s\"", k++ ? "," : "",
                                  r->nodes[i].name);
    o += (size_t)snprintf(j + o, cap - o, "],\"unexpected_exits\":[%s]",
                          r->exits);
    /* A sanitizer build of skiffd reports memory errors in its log; one
     * is a bug whatever the histories say. */
    int san = 0;
    for (int i = 0; i < r->n; i++)
        if (!jr_sh(r,
                   "grep -q -E 'ERROR: AddressSanitizer|runtime error:' "
                   "'%s'",
                   r->nodes[i].log_path)) {
            san = 1;
            jr_log(r, "%s: sanitizer report in its log", r->nodes[i].name);
        }
    o += (size_t)snprintf(j + o, cap - o, ",\"sanitizer_reports\":%s",
                          san ? "true" : "false");
    if (san)
        ok = 0;
    char wj[4096] = "";
    int wrc = wl->final ? wl->final(r, wj, sizeof wj) : 0;
    if (wj[0])
        o += (size_t)snprintf(j + o, cap - o, ",%s", wj);
    if (wrc)
        ok = 0;
    r->final_ok = ok;
    jr_log(r, "final checks: %s", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
