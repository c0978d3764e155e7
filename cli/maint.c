/*
 * Cluster maintenance commands: endpoint status / health / hashkv, alarm
 * list / disarm and defrag (membership is in member.c).
 *
 * Commands that report per endpoint open one client per endpoint (from
 * --endpoints, or with --cluster from the client URLs of `member list`),
 * so each answer really comes from the member named, and one dead
 * endpoint does not hide the others: its failure is printed and the
 * command exits 1 after reporting the rest, as etcdctl does.  Output
 * shapes (simple lines, tables, JSON) follow etcdctl's printers.
 */
#include "cli_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct eplist {
    char *urls[CTL_MAX_ENDPOINTS * 4];
    const char *eps[CTL_MAX_ENDPOINTS * 4];
    size_t n;
} eplist;

/* Frees the endpoint copies. */
static void eplist_free(eplist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->urls[i]);
    l->n = 0;
}

/* The endpoints a per-endpoint command addresses.  0 or an exit code. */
static int endpoints(ctl *x, int cluster, eplist *l)
{
    memset(l, 0, sizeof *l);
    if (!cluster) {
        for (size_t i = 0; i < x->n_endpoints; i++) {
            l->urls[i] = strdup(x->endpoints[i]);
            l->eps[i] = l->urls[i];
        }
        l->n = x->n_endpoints;
        return 0;
    }
    skiff_client *c = ctl_client(x);
    skiff_result res;
    int rc = skiff_member_list(c, &res);
    if (rc) {
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    /* Every client URL of every member, learners included; a member that
     * has not started yet has none and is left out (as with etcdctl). */
    for (size_t i = 0; i < res.n_members; i++)
        for (size_t j = 0; j < res.members[i].n_client_urls &&
                           l->n < sizeof l->urls / sizeof l->urls[0];
             j++) {
            l->urls[l->n] = strdup(res.members[i].client_urls[j]);
            l->eps[l->n] = l->urls[l->n];
            l->n++;
        }
    skiff_result_free(&res);
    return 0;
}

/* Opens a JSON object holding the header. */
static void json_header_obj(const skiff_header *h)
{
    putchar('{');
    out_json_header(stdout, h);
}

/* ---- endpoint ------------------------------------------------------------ */

/* Runs `op` on endpoint `ep` alone.  0 or the error code; *c is the
 * client (for its error message), destroyed by the caller. */
static int on_endpoint(ctl *x, const char *ep, skiff_op *op, skiff_result *res,
                       skiff_client **c)
{
    const char *eps[1] = {ep};
    *c = NULL;
    int rc = ctl_client_for(x, eps, 1, c);
    if (rc)
        return SKIFF_EFAILED;
    return skiff_do_sync(*c, op, res);
}

/* The best message for a failed per-endpoint call. */
static const char *errtext(skiff_client *c, int rc, const skiff_result *res)
{
    if (res && res->error_message && res->error_message[0])
        return res->error_message;
    if (c && skiff_client_errmsg(c)[0])
        return skiff_client_errmsg(c);
    return skiff_strerror(rc);
}

/* endpoint status: one line (or row, or object) per endpoint. */
static int endpoint_status(ctl *x, const eplist *l)
{
    static const char *head[] = {
        "ENDPOINT",           "ID",         "VERSION",   "DB SIZE",
        "IS LEADER",          "IS LEARNER", "RAFT TERM", "RAFT INDEX",
        "RAFT APPLIED INDEX", "ERRORS"};
    out_table t;
    out_table_init(&t, head, 10);
    int failed = 0, first = 1;
    if (x->out == CTL_OUT_JSON)
        putchar('[');
    for (size_t i = 0; i < l->n; i++) {
        skiff_op op = {.type = SKIFF_OP_STATUS};
        skiff_result res = {0};
        skiff_client *c;
        int rc = on_endpoint(x, l->eps[i], &op, &res, &c);
        if (rc) {
            fprintf(stderr, "Failed to get the status of endpoint %s (%s)\n",
                    l->eps[i], errtext(c, rc, &res));
            failed = 1;
            skiff_result_free(&res);
            skiff_client_destroy(c);
            continue;
        }
        const skiff_status_info *s = &res.status;
        char id[32], size[32], term[32], idx[32], applied[32], errs[512];
        snprintf(id, sizeof id, "%" PRIx64, res.header.member_id);
        out_human_bytes(size, sizeof size, (uint64_t)s->db_size);
        snprintf(term, sizeof term, "%" PRIu64, s->raft_term);
        snprintf(idx, sizeof idx, "%" PRIu64, s->raft_index);
        snprintf(applied, sizeof applied, "%" PRIu64, s->raft_applied_index);
        out_join(errs, sizeof errs, s->errors, s->n_errors);
        const char *leader =
            s->leader == res.header.member_id ? "true" : "false";
        const char *learner = s->is_learner ? "true" : "false";
        if (x->out == CTL_OUT_JSON) {
            printf("%s{\"Endpoint\":", first ? "" : ",");
            out_json_string(stdout, l->eps[i]);
            printf(",\"Status\":");
            json_header_obj(&res.header);
            printf(",\"version\":");
            out_json_string(stdout, s->version ? s->version : "");
            printf(",\"dbSize\":%" PRId64 ",\"leader\":%" PRIu64
                   ",\"raftIndex\":%" PRIu64 ",\"raftTerm\":%" PRIu64
                   ",\"raftAppliedIndex\":%" PRIu64 ",\"dbSizeInUse\":%" PRId64,
                   s->db_size, s->leader, s->raft_index, s->raft_term,
                   s->raft_applied_index, s->db_size_in_use);
            /* Go's omitempty: only a learner says so, only errors listed. */
            if (s->is_learner)
                printf(",\"isLearner\":true");
            if (s->n_errors) {
                printf(",\"errors\":[");
                for (size_t j = 0; j < s->n_errors; j++) {
                    if (j)
                        putchar(',');
                    out_json_string(stdout, s->errors[j]);
                }
                putchar(']');
            }
            printf("}}");
        } else if (x->out == CTL_OUT_TABLE) {
            const char *row[] = {
                l->eps[i], id,     s->version ? s->version : "",
                size,      leader, learner,
                term,      idx,    applied,
                errs};
            out_table_row(&t, row);
        } else {
            printf("%s, %s, %s, %s, %s, %s, %s, %s, %s, %s\n", l->eps[i], id,
                   s->version ? s->version : "", size, leader, learner, term,
                   idx, applied, errs);
        }
        first = 0;
        skiff_result_free(&res);
        skiff_client_destroy(c);
    }
    if (x->out == CTL_OUT_JSON)
        puts("]");
    else if (x->out == CTL_OUT_TABLE)
        out_table_print(&t, stdout);
    return failed ? CTL_EXIT_ERROR : 0;
}

/* endpoint health: a linearizable read per endpoint, timed. */
static int endpoint_health(ctl *x, const eplist *l)
{
    int unhealthy = 0;
    if (x->out == CTL_OUT_JSON)
        putchar('[');
    static const char *head[] = {"ENDPOINT", "HEALTH", "TOOK", "ERROR"};
    out_table t;
    out_table_init(&t, head, 4);
    for (size_t i = 0; i < l->n; i++) {
        /* A linearizable read proves a leader and a quorum, which is what
         * etcdctl's health check asks for too. */
        skiff_op op = {.type = SKIFF_OP_RANGE, .key = "health", .key_len = 6};
        skiff_result res = {0};
        skiff_client *c;
        uint64_t t0 = uv_hrtime();
        int rc = on_endpoint(x, l->eps[i], &op, &res, &c);
        double took = (double)(uv_hrtime() - t0) / 1e9;
        if (rc == SKIFF_EPERMISSION_DENIED)
            rc = 0;
        char d[64];
        out_duration(d, sizeof d, took);
        const char *why = rc ? errtext(c, rc, &res) : "";
        if (x->out == CTL_OUT_JSON) {
            printf("%s{\"endpoint\":", i ? "," : "");
            out_json_string(stdout, l->eps[i]);
            printf(",\"health\":%s,\"took\":\"%s\"", rc ? "false" : "true", d);
            if (rc) {
                printf(",\"error\":");
                out_json_string(stdout, why);
            }
            putchar('}');
        } else if (x->out == CTL_OUT_TABLE) {
            const char *row[] = {l->eps[i], rc ? "false" : "true", d, why};
            out_table_row(&t, row);
        } else if (rc) {
            fprintf(stderr, "%s is unhealthy: failed to commit proposal: %s\n",
                    l->eps[i], why);
        } else {
            printf("%s is healthy: successfully committed proposal: took = "
                   "%s\n",
                   l->eps[i], d);
        }
        if (rc)
            unhealthy = 1;
        skiff_result_free(&res);
        skiff_client_destroy(c);
    }
    if (x->out == CTL_OUT_JSON)
        puts("]");
    else if (x->out == CTL_OUT_TABLE)
        out_table_print(&t, stdout);
    if (unhealthy)
        return ctl_errorf(CTL_EXIT_ERROR, "unhealthy cluster");
    return 0;
}

/* endpoint hashkv [--rev]: each endpoint's history hash. */
static int endpoint_hashkv(ctl *x, const eplist *l, int64_t rev)
{
    static const char *head[] = {"ENDPOINT", "HASH", "HASH REVISION"};
    out_table t;
    out_table_init(&t, head, 3);
    int failed = 0, first = 1;
    if (x->out == CTL_OUT_JSON)
        putchar('[');
    for (size_t i = 0; i < l->n; i++) {
        skiff_op op = {.type = SKIFF_OP_HASHKV, .revision = rev};
        skiff_result res = {0};
        skiff_client *c;
        int rc = on_endpoint(x, l->eps[i], &op, &res, &c);
        if (rc) {
            fprintf(stderr, "Failed to get the hash of endpoint %s (%s)\n",
                    l->eps[i], errtext(c, rc, &res));
            failed = 1;
        } else if (x->out == CTL_OUT_JSON) {
            printf("%s{\"Endpoint\":", first ? "" : ",");
            out_json_string(stdout, l->eps[i]);
            printf(",\"HashKV\":");
            json_header_obj(&res.header);
            printf(",\"hash\":%u,\"compact_revision\":%" PRId64
                   ",\"hash_revision\":%" PRId64 "}}",
                   res.hash, res.compact_revision, res.hash_revision);
            first = 0;
        } else if (x->out == CTL_OUT_TABLE) {
            char h[32], hr[32];
            snprintf(h, sizeof h, "%u", res.hash);
            snprintf(hr, sizeof hr, "%" PRId64, res.hash_revision);
            const char *row[] = {l->eps[i], h, hr};
            out_table_row(&t, row);
        } else {
            printf("%s, %u, %" PRId64 "\n", l->eps[i], res.hash,
                   res.hash_revision);
        }
        skiff_result_free(&res);
        skiff_client_destroy(c);
    }
    if (x->out == CTL_OUT_JSON)
        puts("]");
    else if (x->out == CTL_OUT_TABLE)
        out_table_print(&t, stdout);
    return failed ? CTL_EXIT_ERROR : 0;
}

/* endpoint status|health|hashkv [--cluster] */
int cmd_endpoint(ctl *x, const char *sub, int argc, char **argv)
{
    int cluster = 0;
    int64_t rev = 0;
    ctl_flag flags[] = {
        {"cluster", 0, CTL_BOOL, &cluster},
        {"rev", 0, CTL_INT, &rev},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "endpoint %s command does not accept arguments", sub);
    int (*fn)(ctl *, const eplist *) = NULL;
    if (!strcmp(sub, "status"))
        fn = endpoint_status;
    else if (!strcmp(sub, "health"))
        fn = endpoint_health;
    else if (strcmp(sub, "hashkv"))
        return ctl_errorf(CTL_EXIT_ERROR,
                          "unknown command \"%s\" for \"skiffctl endpoint\"",
                          sub);
    eplist l;
    if ((rc = endpoints(x, cluster, &l)))
        return rc;
    rc = fn ? fn(x, &l) : endpoint_hashkv(x, &l, rev);
    eplist_free(&l);
    return rc;
}

/* ---- alarm --------------------------------------------------------------- */

/* The wire name of an alarm type. */
static const char *alarm_name(enum skiff_alarm_type a)
{
    switch (a) {
    case SKIFF_ALARM_NOSPACE:
        return "NOSPACE";
    case SKIFF_ALARM_CORRUPT:
        return "CORRUPT";
    default:
        return "NONE";
    }
}

/* Prints alarms as etcdctl does ("memberID:N alarm:NOSPACE"). */
static void print_alarms(ctl *x, const skiff_result *res)
{
    if (x->out == CTL_OUT_JSON) {
        json_header_obj(&res->header);
        if (res->n_alarms) {
            printf(",\"alarms\":[");
            for (size_t i = 0; i < res->n_alarms; i++)
                printf("%s{\"memberID\":%" PRIu64 ",\"alarm\":%d}",
                       i ? "," : "", res->alarms[i].member_id,
                       (int)res->alarms[i].alarm);
            putchar(']');
        }
        puts("}");
        return;
    }
    for (size_t i = 0; i < res->n_alarms; i++)
        printf("memberID:%" PRIu64 " alarm:%s \n", res->alarms[i].member_id,
               alarm_name(res->alarms[i].alarm));
}

/* alarm list|disarm */
int cmd_alarm(ctl *x, const char *sub, int argc, char **argv)
{
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, NULL, pos, &npos);
    if (rc)
        return rc;
    int disarm = !strcmp(sub, "disarm");
    if (!disarm && strcmp(sub, "list"))
        return ctl_errorf(CTL_EXIT_ERROR,
                          "unknown command \"%s\" for \"skiffctl alarm\"", sub);
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "alarm %s command accepts no arguments", sub);
    skiff_client *c = ctl_client(x);
    skiff_op op = {.type = SKIFF_OP_ALARM, .alarm_action = SKIFF_ALARM_GET};
    skiff_result res = {0};
    if ((rc = skiff_do_sync(c, &op, &res))) {
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    if (!disarm) {
        print_alarms(x, &res);
        skiff_result_free(&res);
        return 0;
    }
    /* Disarm each active alarm, then print what was disarmed. */
    skiff_result all = res;
    for (size_t i = 0; i < all.n_alarms && !rc; i++) {
        skiff_op d = {.type = SKIFF_OP_ALARM,
                      .alarm_action = SKIFF_ALARM_DEACTIVATE,
                      .alarm_type = all.alarms[i].alarm,
                      .member_id = all.alarms[i].member_id};
        skiff_result r2 = {0};
        if ((rc = skiff_do_sync(c, &d, &r2)))
            rc = ctl_fail(x, c, rc, &r2);
        skiff_result_free(&r2);
    }
    if (!rc)
        print_alarms(x, &all);
    skiff_result_free(&all);
    return rc;
}

/* ---- defrag -------------------------------------------------------------- */

/* defrag [--cluster]: defragments each endpoint in turn. */
int cmd_defrag(ctl *x, int argc, char **argv)
{
    int cluster = 0;
    ctl_flag flags[] = {
        {"cluster", 0, CTL_BOOL, &cluster},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "defrag command does not accept arguments");
    eplist l;
    if ((rc = endpoints(x, cluster, &l)))
        return rc;
    int failed = 0;
    for (size_t i = 0; i < l.n; i++) {
        skiff_op op = {.type = SKIFF_OP_DEFRAGMENT};
        skiff_result res = {0};
        skiff_client *c;
        rc = on_endpoint(x, l.eps[i], &op, &res, &c);
        if (rc) {
            fprintf(stderr, "Failed to defragment skiff member[%s] (%s)\n",
                    l.eps[i], errtext(c, rc, &res));
            failed = 1;
        } else {
            printf("Finished defragmenting skiff member[%s]\n", l.eps[i]);
        }
        skiff_result_free(&res);
        skiff_client_destroy(c);
    }
    eplist_free(&l);
    return failed ? CTL_EXIT_ERROR : 0;
}
