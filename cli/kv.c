/*
 * The key-value commands: put, get, del and compaction.
 *
 * Each builds one skiff_op from its flags, runs it on the blocking client
 * and prints the result with output.c's printers.  Argument checks and
 * their messages follow etcdctl (usage errors exit 128; errors from the
 * store exit 1 with "Error: skiffd: <message>").  `put` without a value
 * argument reads the value from stdin, all of it, as etcdctl does, so
 * `skiffctl put key < file` stores the file.
 */
#include "cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parses a lease ID given in hex, as etcdctl prints them.  0 or -1. */
static int parse_lease(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (!*s || *end || errno)
        return -1;
    *id = (int64_t)v;
    return 0;
}

/* Sets a range/delete op's end from the positional range_end or the
 * --prefix/--from-key flags.  0 or an exit code. */
static int set_range(skiff_op *op, int npos, char **pos, int prefix,
                     int from_key, uint8_t **prefix_buf)
{
    if (prefix && from_key)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "`--prefix` and `--from-key` cannot be set at the "
                          "same time, choose one");
    if (npos > 1) {
        if (prefix)
            return ctl_errorf(CTL_EXIT_BAD_ARGS,
                              "too many arguments, only accept one argument "
                              "when `--prefix` is set.");
        if (from_key)
            return ctl_errorf(CTL_EXIT_BAD_ARGS,
                              "too many arguments, only accept one argument "
                              "when `--from-key` is set.");
        op->range_end = pos[1];
        op->range_end_len = strlen(pos[1]);
    }
    if (prefix) {
        size_t cap = op->key_len + 1;
        *prefix_buf = malloc(cap);
        if (!*prefix_buf || skiff_op_prefix(op, *prefix_buf, cap))
            return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    }
    if (from_key)
        skiff_op_from_key(op);
    if ((prefix || from_key) && op->key_len == 0) {
        /* etcd: an empty key with --prefix or --from-key means every key,
         * i.e. ["\0", "\0"); the server refuses an empty key. */
        static const char zero[1] = {0};
        op->key = zero;
        op->key_len = 1;
    }
    return 0;
}

/* put KEY [VALUE]: stores a key (the value from stdin when omitted). */
int cmd_put(ctl *x, int argc, char **argv)
{
    const char *lease = NULL;
    int prev_kv = 0, ignore_value = 0, ignore_lease = 0;
    ctl_flag flags[] = {
        {"lease", 0, CTL_STR, &lease},
        {"prev-kv", 0, CTL_BOOL, &prev_kv},
        {"ignore-value", 0, CTL_BOOL, &ignore_value},
        {"ignore-lease", 0, CTL_BOOL, &ignore_lease},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    const char *usage = "put command needs 1 argument and input from stdin "
                        "or 2 arguments";
    if (npos == 0)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "%s", usage);
    skiff_op op = {.type = SKIFF_OP_PUT};
    op.key = pos[0];
    op.key_len = strlen(pos[0]);
    char *stdin_buf = NULL;
    if (npos > 1) {
        if (ignore_value)
            return ctl_errorf(CTL_EXIT_BAD_ARGS,
                              "value is provided with --ignore-value");
        op.value = pos[1];
        op.value_len = strlen(pos[1]);
    } else if (!ignore_value) {
        size_t n = 0;
        stdin_buf = ctl_read_stdin(&n);
        if (!stdin_buf || n == 0) {
            free(stdin_buf);
            return ctl_errorf(CTL_EXIT_BAD_ARGS, "%s", usage);
        }
        op.value = stdin_buf;
        op.value_len = n;
    }
    if (npos > 2) {
        free(stdin_buf);
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "%s", usage);
    }
    if (lease && strcmp(lease, "0") && parse_lease(lease, &op.lease)) {
        free(stdin_buf);
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "bad lease ID (%s), expecting ID in Hex", lease);
    }
    if (prev_kv)
        op.flags |= SKIFF_PREV_KV;
    if (ignore_value)
        op.flags |= SKIFF_IGNORE_VALUE;
    if (ignore_lease)
        op.flags |= SKIFF_IGNORE_LEASE;
    skiff_client *c = ctl_client(x);
    skiff_result res = {0};
    rc = skiff_do_sync(c, &op, &res);
    if (rc)
        rc = ctl_fail(x, c, rc, &res);
    else
        out_put(x, &res);
    skiff_result_free(&res);
    free(stdin_buf);
    return rc;
}

/* Sets the op's sort from --sort-by and --order.  0 or an exit code. */
static int parse_sort(skiff_op *op, const char *by, const char *order)
{
    op->sort_order = SKIFF_SORT_NONE;
    if (order) {
        if (!strcasecmp(order, "ASCEND"))
            op->sort_order = SKIFF_SORT_ASCEND;
        else if (!strcasecmp(order, "DESCEND"))
            op->sort_order = SKIFF_SORT_DESCEND;
        else if (*order)
            return ctl_errorf(4, "bad sort order %s", order);
    }
    op->sort_target = SKIFF_SORT_KEY;
    if (by) {
        if (!strcasecmp(by, "CREATE"))
            op->sort_target = SKIFF_SORT_CREATE;
        else if (!strcasecmp(by, "KEY"))
            op->sort_target = SKIFF_SORT_KEY;
        else if (!strcasecmp(by, "MODIFY"))
            op->sort_target = SKIFF_SORT_MOD;
        else if (!strcasecmp(by, "VALUE"))
            op->sort_target = SKIFF_SORT_VALUE;
        else if (!strcasecmp(by, "VERSION"))
            op->sort_target = SKIFF_SORT_VERSION;
        else if (*by)
            return ctl_errorf(4, "bad sort target %s", by);
    }
    /* Keys come back in ascending key order anyway. */
    if (op->sort_target == SKIFF_SORT_KEY &&
        op->sort_order == SKIFF_SORT_ASCEND)
        op->sort_order = SKIFF_SORT_NONE;
    return 0;
}

/* get KEY [RANGE_END]: reads a key or a range. */
int cmd_get(ctl *x, int argc, char **argv)
{
    int prefix = 0, from_key = 0, keys_only = 0, count_only = 0;
    int value_only = 0;
    int64_t rev = 0, limit = 0;
    const char *consistency = "l", *sort_by = NULL, *order = NULL;
    ctl_flag flags[] = {
        {"prefix", 0, CTL_BOOL, &prefix},
        {"from-key", 0, CTL_BOOL, &from_key},
        {"rev", 0, CTL_INT, &rev},
        {"limit", 0, CTL_INT, &limit},
        {"keys-only", 0, CTL_BOOL, &keys_only},
        {"count-only", 0, CTL_BOOL, &count_only},
        {"print-value-only", 0, CTL_BOOL, &value_only},
        {"consistency", 0, CTL_STR, &consistency},
        {"sort-by", 0, CTL_STR, &sort_by},
        {"order", 0, CTL_STR, &order},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos == 0 || npos > 2)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "get command needs one argument as key and an "
                          "optional argument as range_end");
    if (keys_only && count_only)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "`--keys-only` and `--count-only` cannot be set at "
                          "the same time, choose one");
    skiff_op op = {.type = SKIFF_OP_RANGE};
    op.key = pos[0];
    op.key_len = strlen(pos[0]);
    op.revision = rev;
    op.limit = limit;
    if (!strcmp(consistency, "s"))
        op.flags |= SKIFF_SERIALIZABLE;
    else if (strcmp(consistency, "l"))
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "unknown consistency flag \"%s\"",
                          consistency);
    if (keys_only)
        op.flags |= SKIFF_KEYS_ONLY;
    if (count_only)
        op.flags |= SKIFF_COUNT_ONLY;
    if ((rc = parse_sort(&op, sort_by, order)))
        return rc;
    uint8_t *pbuf = NULL;
    if ((rc = set_range(&op, npos, pos, prefix, from_key, &pbuf))) {
        free(pbuf);
        return rc;
    }
    skiff_client *c = ctl_client(x);
    skiff_result res = {0};
    rc = skiff_do_sync(c, &op, &res);
    if (rc)
        rc = ctl_fail(x, c, rc, &res);
    else
        out_get(x, &res, value_only, keys_only, count_only);
    skiff_result_free(&res);
    free(pbuf);
    return rc;
}

/* del KEY [RANGE_END]: deletes a key or a range. */
int cmd_del(ctl *x, int argc, char **argv)
{
    int prefix = 0, from_key = 0, prev_kv = 0;
    ctl_flag flags[] = {
        {"prefix", 0, CTL_BOOL, &prefix},
        {"from-key", 0, CTL_BOOL, &from_key},
        {"prev-kv", 0, CTL_BOOL, &prev_kv},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos == 0 || npos > 2)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "del command needs one argument as key and an "
                          "optional argument as range_end");
    skiff_op op = {.type = SKIFF_OP_DELETE};
    op.key = pos[0];
    op.key_len = strlen(pos[0]);
    if (prev_kv)
        op.flags |= SKIFF_PREV_KV;
    uint8_t *pbuf = NULL;
    if ((rc = set_range(&op, npos, pos, prefix, from_key, &pbuf))) {
        free(pbuf);
        return rc;
    }
    skiff_client *c = ctl_client(x);
    skiff_result res = {0};
    rc = skiff_do_sync(c, &op, &res);
    if (rc)
        rc = ctl_fail(x, c, rc, &res);
    else
        out_del(x, &res);
    skiff_result_free(&res);
    free(pbuf);
    return rc;
}

/* compaction REV: compacts the history up to REV. */
int cmd_compaction(ctl *x, int argc, char **argv)
{
    int physical = 0;
    ctl_flag flags[] = {
        {"physical", 0, CTL_BOOL, &physical},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "compaction command needs 1 argument");
    char *end;
    errno = 0;
    long long rev = strtoll(pos[0], &end, 10);
    if (!*pos[0] || *end || errno)
        return ctl_errorf(CTL_EXIT_ERROR,
                          "strconv.ParseInt: parsing \"%s\": invalid syntax",
                          pos[0]);
    skiff_op op = {.type = SKIFF_OP_COMPACT, .revision = rev};
    if (physical)
        op.flags |= SKIFF_PHYSICAL;
    skiff_client *c = ctl_client(x);
    skiff_result res = {0};
    rc = skiff_do_sync(c, &op, &res);
    if (rc) {
        rc = ctl_fail(x, c, rc, &res);
    } else if (x->out == CTL_OUT_JSON) {
        putchar('{');
        out_json_header(stdout, &res.header);
        puts("}");
    } else {
        printf("compacted revision %lld\n", rev);
    }
    skiff_result_free(&res);
    return rc;
}
