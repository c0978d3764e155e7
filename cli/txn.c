/*
 * `skiffctl txn`: etcdctl's transaction input format, read from stdin.
 *
 *     compares            one per line: target("key") op "value"
 *     <blank line>
 *     success requests    one per line: put/get/del with their flags
 *     <blank line>
 *     failure requests
 *     <blank line or end of input>
 *
 * Targets are ver/version, c/create, m/mod, val/value and lease; ops are
 * =, ==, !=, < and >.  Keys and values in compares are Go-quoted strings
 * ("..." with backslash escapes, or `...`).  Request lines are split into
 * words like a shell does (double and single quotes), then parsed with
 * the same flags as the put/get/del commands.  With -i the sections are
 * prompted for, as etcdctl's interactive mode does.
 *
 * Every string the parsed ops point to is kept in one list of heap blocks
 * freed when the command ends.
 */
#include "cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TXN_MAX_OPS 256

typedef struct txn_state {
    void **owned; /* heap blocks freed at the end */
    size_t n_owned, cap_owned;
    skiff_cmp cmps[TXN_MAX_OPS];
    skiff_op succ[TXN_MAX_OPS], fail[TXN_MAX_OPS];
    size_t n_cmps, n_succ, n_fail;
} txn_state;

/* Records a heap block to free at the end; returns it (NULL on
 * failure, when p is freed). */
static void *own(txn_state *t, void *p)
{
    if (!p)
        return NULL;
    if (t->n_owned == t->cap_owned) {
        size_t nc = t->cap_owned ? t->cap_owned * 2 : 32;
        void **n = realloc(t->owned, nc * sizeof *n);
        if (!n) {
            free(p);
            return NULL;
        }
        t->owned = n;
        t->cap_owned = nc;
    }
    t->owned[t->n_owned++] = p;
    return p;
}

/* Reads a Go-quoted string at *pp into a new owned buffer.  NULL when
 * malformed. */
static char *unquote(txn_state *t, const char **pp, size_t *len)
{
    const char *p = *pp;
    char q = *p;
    if (q != '"' && q != '`')
        return NULL;
    char *out = own(t, malloc(strlen(p) + 1));
    if (!out)
        return NULL;
    size_t n = 0;
    for (p++; *p && *p != q; p++) {
        if (q == '"' && *p == '\\') {
            p++;
            switch (*p) {
            case 'n':
                out[n++] = '\n';
                break;
            case 't':
                out[n++] = '\t';
                break;
            case 'r':
                out[n++] = '\r';
                break;
            case '0':
                out[n++] = '\0';
                break;
            case 'x': {
                char hex[3] = {p[1], p[1] ? p[2] : 0, 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (end != hex + 2)
                    return NULL;
                out[n++] = (char)v;
                p += 2;
                break;
            }
            case 0:
                return NULL;
            default:
                out[n++] = *p;
                break;
            }
        } else {
            out[n++] = *p;
        }
    }
    if (*p != q)
        return NULL;
    out[n] = 0;
    *len = n;
    *pp = p + 1;
    return out;
}

/* Parses one compare line.  0 or -1. */
static int parse_compare(txn_state *t, const char *line, skiff_cmp *c)
{
    memset(c, 0, sizeof *c);
    const char *lp = strchr(line, '(');
    if (!lp)
        return -1;
    size_t tl = (size_t)(lp - line);
    char target[16];
    if (tl == 0 || tl >= sizeof target)
        return -1;
    memcpy(target, line, tl);
    target[tl] = 0;
    const char *p = lp + 1;
    size_t klen, vlen;
    char *key = unquote(t, &p, &klen);
    if (!key || *p != ')')
        return -1;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    char op[3] = {0};
    size_t ol = 0;
    while (*p && *p != ' ' && *p != '\t' && ol < 2)
        op[ol++] = *p++;
    while (*p == ' ' || *p == '\t')
        p++;
    char *val = unquote(t, &p, &vlen);
    if (!val)
        return -1;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (*p)
        return -1;
    c->key = key;
    c->key_len = klen;
    if (!strcmp(op, "=") || !strcmp(op, "=="))
        c->result = SKIFF_CMP_EQUAL;
    else if (!strcmp(op, "!="))
        c->result = SKIFF_CMP_NOT_EQUAL;
    else if (!strcmp(op, "<"))
        c->result = SKIFF_CMP_LESS;
    else if (!strcmp(op, ">"))
        c->result = SKIFF_CMP_GREATER;
    else
        return -1;
    int numeric = 1;
    if (!strcmp(target, "ver") || !strcmp(target, "version"))
        c->target = SKIFF_CMP_VERSION;
    else if (!strcmp(target, "c") || !strcmp(target, "create"))
        c->target = SKIFF_CMP_CREATE;
    else if (!strcmp(target, "m") || !strcmp(target, "mod"))
        c->target = SKIFF_CMP_MOD;
    else if (!strcmp(target, "lease"))
        c->target = SKIFF_CMP_LEASE;
    else if (!strcmp(target, "val") || !strcmp(target, "value"))
        c->target = SKIFF_CMP_VALUE, numeric = 0;
    else
        return -1;
    if (numeric) {
        char *end;
        errno = 0;
        long long v = c->target == SKIFF_CMP_LEASE
                          ? (long long)strtoull(val, &end, 16)
                          : strtoll(val, &end, 10);
        if (!*val || *end || errno)
            return -1;
        c->number = v;
    } else {
        c->value = val;
        c->value_len = vlen;
    }
    return 0;
}

/* Splits a request line into words (shell-like quoting).  Words are owned
 * by t.  Returns the count, or -1 on an unterminated quote. */
static int split_words(txn_state *t, const char *line, char **w, int max)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p)
            break;
        if (n == max)
            return -1;
        char *out = own(t, malloc(strlen(p) + 1));
        if (!out)
            return -1;
        size_t k = 0;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r') {
            if (*p == '"' || *p == '\'') {
                char q = *p++;
                while (*p && *p != q) {
                    if (q == '"' && *p == '\\' && p[1])
                        p++;
                    out[k++] = *p++;
                }
                if (*p != q)
                    return -1;
                p++;
            } else {
                out[k++] = *p++;
            }
        }
        out[k] = 0;
        w[n++] = out;
    }
    return n;
}

/* Parses one request line into *op.  0 or -1 (message printed). */
static int parse_request(ctl *x, txn_state *t, const char *line, skiff_op *op)
{
    char *w[64];
    int n = split_words(t, line, w, 64);
    if (n <= 0) {
        fprintf(stderr, "Error: invalid txn request: %s\n", line);
        return -1;
    }
    memset(op, 0, sizeof *op);
    int prefix = 0, from_key = 0, prev_kv = 0, keys_only = 0;
    int count_only = 0, ignore_value = 0, ignore_lease = 0;
    int64_t rev = 0, limit = 0;
    const char *lease = NULL;
    ctl_flag put_flags[] = {
        {"lease", 0, CTL_STR, &lease},
        {"prev-kv", 0, CTL_BOOL, &prev_kv},
        {"ignore-value", 0, CTL_BOOL, &ignore_value},
        {"ignore-lease", 0, CTL_BOOL, &ignore_lease},
        {NULL, 0, 0, NULL},
    };
    ctl_flag get_flags[] = {
        {"prefix", 0, CTL_BOOL, &prefix},
        {"from-key", 0, CTL_BOOL, &from_key},
        {"rev", 0, CTL_INT, &rev},
        {"limit", 0, CTL_INT, &limit},
        {"keys-only", 0, CTL_BOOL, &keys_only},
        {"count-only", 0, CTL_BOOL, &count_only},
        {NULL, 0, 0, NULL},
    };
    ctl_flag del_flags[] = {
        {"prefix", 0, CTL_BOOL, &prefix},
        {"from-key", 0, CTL_BOOL, &from_key},
        {"prev-kv", 0, CTL_BOOL, &prev_kv},
        {NULL, 0, 0, NULL},
    };
    const ctl_flag *fl;
    if (!strcmp(w[0], "put")) {
        op->type = SKIFF_OP_PUT;
        fl = put_flags;
    } else if (!strcmp(w[0], "get")) {
        op->type = SKIFF_OP_RANGE;
        fl = get_flags;
    } else if (!strcmp(w[0], "del")) {
        op->type = SKIFF_OP_DELETE;
        fl = del_flags;
    } else {
        fprintf(stderr, "Error: invalid txn request: %s\n", line);
        return -1;
    }
    char *pos[64];
    int npos;
    if (ctl_flags_parse(x, n - 1, w + 1, fl, pos, &npos))
        return -1;
    if (npos < 1) {
        fprintf(stderr, "Error: invalid txn request: %s\n", line);
        return -1;
    }
    op->key = pos[0];
    op->key_len = strlen(pos[0]);
    if (op->type == SKIFF_OP_PUT) {
        if (npos != 2 && !(npos == 1 && ignore_value)) {
            fprintf(stderr, "Error: invalid txn request: %s\n", line);
            return -1;
        }
        if (npos == 2) {
            op->value = pos[1];
            op->value_len = strlen(pos[1]);
        }
        if (lease) {
            char *end;
            op->lease = (int64_t)strtoull(lease, &end, 16);
            if (!*lease || *end) {
                fprintf(stderr,
                        "Error: bad lease ID (%s), expecting ID in "
                        "Hex\n",
                        lease);
                return -1;
            }
        }
        op->flags |= (prev_kv ? SKIFF_PREV_KV : 0) |
                     (ignore_value ? SKIFF_IGNORE_VALUE : 0) |
                     (ignore_lease ? SKIFF_IGNORE_LEASE : 0);
        return 0;
    }
    if (npos > 2 || (npos == 2 && (prefix || from_key))) {
        fprintf(stderr, "Error: invalid txn request: %s\n", line);
        return -1;
    }
    if (npos == 2) {
        op->range_end = pos[1];
        op->range_end_len = strlen(pos[1]);
    }
    if (prefix) {
        uint8_t *b = own(t, malloc(op->key_len + 1));
        if (!b || skiff_op_prefix(op, b, op->key_len + 1))
            return -1;
    } else if (from_key) {
        skiff_op_from_key(op);
    }
    if ((prefix || from_key) && op->key_len == 0) {
        op->key = "";
        op->key_len = 1; /* "\0": every key, as etcd does */
    }
    if (op->type == SKIFF_OP_RANGE) {
        op->revision = rev;
        op->limit = limit;
        op->flags |= (keys_only ? SKIFF_KEYS_ONLY : 0) |
                     (count_only ? SKIFF_COUNT_ONLY : 0);
    } else if (prev_kv) {
        op->flags |= SKIFF_PREV_KV;
    }
    return 0;
}

/* Reads one line from stdin into an owned buffer (without the newline).
 * NULL at end of input. */
static char *read_line(txn_state *t)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    return own(t, line);
}

/* txn [-i]: reads the three sections and runs the transaction. */
int cmd_txn(ctl *x, int argc, char **argv)
{
    int interactive = 0;
    ctl_flag flags[] = {
        {"interactive", 'i', CTL_BOOL, &interactive},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "txn command does not accept argument");
    txn_state *t = calloc(1, sizeof *t);
    if (!t)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    rc = 0;
    static const char *prompts[3] = {
        "compares:", "success requests (get, put, del):",
        "failure requests (get, put, del):"};
    int eof = 0;
    for (int section = 0; section < 3 && !eof && !rc; section++) {
        if (interactive)
            printf("%s\n", prompts[section]), fflush(stdout);
        for (;;) {
            char *line = read_line(t);
            if (!line) {
                eof = 1;
                break;
            }
            if (!line[0])
                break;
            if (section == 0) {
                if (t->n_cmps == TXN_MAX_OPS ||
                    parse_compare(t, line, &t->cmps[t->n_cmps])) {
                    rc = ctl_errorf(CTL_EXIT_INVALID_INPUT,
                                    "malformed comparison: %s", line);
                    break;
                }
                t->n_cmps++;
            } else {
                skiff_op *ops = section == 1 ? t->succ : t->fail;
                size_t *n = section == 1 ? &t->n_succ : &t->n_fail;
                if (*n == TXN_MAX_OPS || parse_request(x, t, line, &ops[*n])) {
                    rc = CTL_EXIT_INVALID_INPUT;
                    break;
                }
                (*n)++;
            }
        }
    }
    if (!rc) {
        skiff_op op = {.type = SKIFF_OP_TXN};
        op.cmps = t->cmps;
        op.n_cmps = t->n_cmps;
        op.success = t->succ;
        op.n_success = t->n_succ;
        op.failure = t->fail;
        op.n_failure = t->n_fail;
        skiff_client *c = ctl_client(x);
        skiff_result res = {0};
        rc = skiff_do_sync(c, &op, &res);
        if (rc)
            rc = ctl_fail(x, c, rc, &res);
        else
            out_txn(x, &res);
        skiff_result_free(&res);
    }
    for (size_t i = 0; i < t->n_owned; i++)
        free(t->owned[i]);
    free(t->owned);
    free(t);
    return rc;
}
