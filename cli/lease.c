/*
 * `skiffctl lease grant|revoke|timetolive|list|keep-alive`.
 *
 * Lease IDs are printed and read in hex (%016x), like etcdctl.  Output
 * lines match etcdctl's ("lease 694d... granted with TTL(10s)", "found 2
 * leases", ...); -w json prints the response with the header's fields
 * promoted to the top level, which is what etcdctl's JSON printer gives
 * for its lease responses.  keep-alive without --once keeps renewing
 * every TTL/3 until the lease is gone or the process is interrupted.
 */
#include "cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parses a hex lease ID.  0 or the usage exit code (message printed). */
static int parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (!*s || *end || errno)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "bad lease ID arg (%s), expecting ID in Hex", s);
    *id = (int64_t)v;
    return 0;
}

/* Opens a JSON object with the header's fields at the top level, as
 * etcdctl's JSON for lease responses has them. */
static void json_flat_header(const skiff_header *h)
{
    printf("{\"cluster_id\":%" PRIu64 ",\"member_id\":%" PRIu64
           ",\"revision\":%" PRId64 ",\"raft_term\":%" PRIu64,
           h->cluster_id, h->member_id, h->revision, h->raft_term);
}

/* Runs one lease op on the blocking client.  0 or the exit code. */
static int do_op(ctl *x, skiff_op *op, skiff_result *res)
{
    skiff_client *c = ctl_client(x);
    int rc = skiff_do_sync(c, op, res);
    if (rc)
        return ctl_fail(x, c, rc, res);
    return 0;
}

/* lease grant TTL */
static int lease_grant(ctl *x, int npos, char **pos)
{
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "lease grant command needs TTL argument");
    char *end;
    errno = 0;
    long long ttl = strtoll(pos[0], &end, 10);
    if (!*pos[0] || *end || errno)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "bad TTL (strconv.ParseInt: "
                          "parsing \"%s\": invalid syntax)",
                          pos[0]);
    skiff_op op = {.type = SKIFF_OP_LEASE_GRANT, .ttl = ttl};
    skiff_result res = {0};
    int rc = do_op(x, &op, &res);
    if (!rc) {
        if (x->out == CTL_OUT_JSON) {
            json_flat_header(&res.header);
            printf(",\"ID\":%" PRId64 ",\"TTL\":%" PRId64 "}\n", res.lease_id,
                   res.ttl);
        } else {
            printf("lease %016" PRIx64 " granted with TTL(%" PRId64 "s)\n",
                   (uint64_t)res.lease_id, res.ttl);
        }
    }
    skiff_result_free(&res);
    return rc;
}

/* lease revoke ID */
static int lease_revoke(ctl *x, int npos, char **pos)
{
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "lease revoke command needs 1 argument");
    skiff_op op = {.type = SKIFF_OP_LEASE_REVOKE};
    int rc = parse_id(pos[0], &op.lease);
    if (rc)
        return rc;
    skiff_result res = {0};
    if (!(rc = do_op(x, &op, &res))) {
        if (x->out == CTL_OUT_JSON) {
            json_flat_header(&res.header);
            puts("}");
        } else {
            printf("lease %016" PRIx64 " revoked\n", (uint64_t)op.lease);
        }
    }
    skiff_result_free(&res);
    return rc;
}

/* lease timetolive ID [--keys] */
static int lease_ttl(ctl *x, int npos, char **pos, int keys)
{
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "lease timetolive command needs lease ID as "
                          "argument");
    skiff_op op = {.type = SKIFF_OP_LEASE_TTL};
    int rc = parse_id(pos[0], &op.lease);
    if (rc)
        return rc;
    if (keys)
        op.flags |= SKIFF_LEASE_KEYS;
    skiff_result res = {0};
    if ((rc = do_op(x, &op, &res))) {
        skiff_result_free(&res);
        return rc;
    }
    if (x->out == CTL_OUT_JSON) {
        json_flat_header(&res.header);
        printf(",\"id\":%" PRId64 ",\"ttl\":%" PRId64
               ",\"granted-ttl\":%" PRId64,
               op.lease, res.ttl, res.granted_ttl);
        if (res.n_lease_keys) {
            printf(",\"keys\":[");
            for (size_t i = 0; i < res.n_lease_keys; i++) {
                if (i)
                    putchar(',');
                out_json_bytes(stdout, res.lease_keys[i].key,
                               res.lease_keys[i].key_len);
            }
            putchar(']');
        }
        puts("}");
    } else if (res.ttl == -1) {
        printf("lease %016" PRIx64 " already expired\n", (uint64_t)op.lease);
    } else {
        printf("lease %016" PRIx64 " granted with TTL(%" PRId64
               "s), remaining(%" PRId64 "s)",
               (uint64_t)op.lease, res.granted_ttl, res.ttl);
        if (keys) {
            printf(", attached keys([");
            for (size_t i = 0; i < res.n_lease_keys; i++)
                printf("%s%.*s", i ? " " : "", (int)res.lease_keys[i].key_len,
                       (const char *)res.lease_keys[i].key);
            printf("])");
        }
        putchar('\n');
    }
    skiff_result_free(&res);
    return 0;
}

/* lease list */
static int lease_list(ctl *x, int npos)
{
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "lease list command does not accept arguments");
    skiff_op op = {.type = SKIFF_OP_LEASE_LEASES};
    skiff_result res = {0};
    int rc = do_op(x, &op, &res);
    if (!rc) {
        if (x->out == CTL_OUT_JSON) {
            json_flat_header(&res.header);
            printf(",\"leases\":[");
            for (size_t i = 0; i < res.n_leases; i++)
                printf("%s{\"ID\":%" PRId64 "}", i ? "," : "", res.leases[i]);
            puts("]}");
        } else {
            printf("found %zu leases\n", res.n_leases);
            for (size_t i = 0; i < res.n_leases; i++)
                printf("%016" PRIx64 "\n", (uint64_t)res.leases[i]);
        }
    }
    skiff_result_free(&res);
    return rc;
}

/* Prints one renewal. */
static void print_keepalive(ctl *x, int64_t id, int64_t ttl,
                            const skiff_header *h)
{
    if (x->out == CTL_OUT_JSON) {
        json_flat_header(h);
        printf(",\"ID\":%" PRId64 ",\"TTL\":%" PRId64 "}\n", id, ttl);
    } else {
        printf("lease %016" PRIx64 " keepalived with TTL(%" PRId64 ")\n",
               (uint64_t)id, ttl);
    }
    fflush(stdout);
}

/* lease keep-alive ID [--once]: renews every TTL/3 until the lease is
 * gone (exit 0), or once. */
static int lease_keepalive(ctl *x, int npos, char **pos, int once)
{
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "lease keep-alive command needs lease ID as "
                          "argument");
    int64_t id = 0;
    int rc = parse_id(pos[0], &id);
    if (rc)
        return rc;
    skiff_client *c = ctl_client(x);
    for (;;) {
        skiff_op op = {.type = SKIFF_OP_LEASE_KEEPALIVE, .lease = id};
        skiff_result res = {0};
        rc = skiff_do_sync(c, &op, &res);
        if (rc == SKIFF_ELEASE_NOT_FOUND || (!rc && res.ttl <= 0)) {
            skiff_result_free(&res);
            printf("lease %016" PRIx64 " expired or revoked.\n", (uint64_t)id);
            return once ? ctl_errorf(CTL_EXIT_ERROR,
                                     "skiffd: requested lease not found")
                        : 0;
        }
        if (rc) {
            rc = ctl_fail(x, c, rc, &res);
            skiff_result_free(&res);
            return rc;
        }
        int64_t ttl = res.ttl;
        print_keepalive(x, id, ttl, &res.header);
        skiff_result_free(&res);
        if (once)
            return 0;
        /* Renew at a third of the TTL, like the library's keep-alive. */
        int64_t wait_ms = ttl * 1000 / 3;
        if (wait_ms < 500)
            wait_ms = 500;
        skiff_client_poll(c, (int)wait_ms);
    }
}

int cmd_lease(ctl *x, const char *sub, int argc, char **argv)
{
    int keys = 0, once = 0;
    ctl_flag flags[] = {
        {"keys", 0, CTL_BOOL, &keys},
        {"once", 0, CTL_BOOL, &once},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (!strcmp(sub, "grant"))
        return lease_grant(x, npos, pos);
    if (!strcmp(sub, "revoke"))
        return lease_revoke(x, npos, pos);
    if (!strcmp(sub, "timetolive"))
        return lease_ttl(x, npos, pos, keys);
    if (!strcmp(sub, "list"))
        return lease_list(x, npos);
    if (!strcmp(sub, "keep-alive"))
        return lease_keepalive(x, npos, pos, once);
    return ctl_errorf(CTL_EXIT_ERROR,
                      "unknown command \"%s\" for \"skiffctl lease\"", sub);
}
