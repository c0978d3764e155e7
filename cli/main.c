/*
 * skiffctl's entry point: global flags, the flag parser, dispatch and the
 * helpers every command shares (client creation, error reporting).
 *
 * The interface is etcdctl's, so an etcd user's habits carry over: the
 * same command words, the same flags (pflag style, flags and arguments in
 * any order), SKIFFCTL_* environment variables standing in for ETCDCTL_*
 * (a flag on the command line wins), the same output shapes and exit
 * codes.  Parsing happens in two steps: main() finds the command word (and
 * its sub-command word, for `lease grant`, `endpoint status`, ...)
 * skipping global flags, then hands the remaining words to the command,
 * which parses its own flags together with the global ones.
 *
 * Every command uses one blocking libskiff client created lazily from the
 * global flags; commands that address endpoints one by one (`endpoint
 * status`, `endpoint health`, ...) create one client per endpoint.
 */
#include "cli_int.h"
#include "obj_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *out_fmt = NULL;
static const char *endpoints_flag = NULL;

static const char usage_text[] =
    "NAME:\n"
    "\tskiffctl - a simple command line client for skiff.\n\n"
    "USAGE:\n"
    "\tskiffctl [flags] <command> [command flags] [arguments]\n\n"
    "COMMANDS:\n"
    "\tget\t\t\tGets the key or a range of keys\n"
    "\tput\t\t\tPuts the given key into the store\n"
    "\tdel\t\t\tRemoves the specified key or range of keys [key, "
    "range_end)\n"
    "\ttxn\t\t\tTxn processes all the requests in one transaction\n"
    "\tcompaction\t\tCompacts the event history in skiff\n"
    "\twatch\t\t\tWatches events stream on keys or prefixes\n"
    "\tlease grant\t\tCreates leases\n"
    "\tlease revoke\t\tRevokes leases\n"
    "\tlease timetolive\tGet lease information\n"
    "\tlease list\t\tList all active leases\n"
    "\tlease keep-alive\tKeeps leases alive (renew)\n"
    "\tmember add\t\tAdds a member into the cluster\n"
    "\tmember remove\t\tRemoves a member from the cluster\n"
    "\tmember promote\t\tPromotes a non-voting member in the cluster\n"
    "\tmember list\t\tLists all members in the cluster\n"
    "\tmove-leader\t\tTransfers leadership to another skiff cluster "
    "member\n"
    "\tendpoint health\t\tChecks the healthiness of endpoints\n"
    "\tendpoint status\t\tPrints out the status of endpoints\n"
    "\tendpoint hashkv\t\tPrints the KV history hash for each endpoint\n"
    "\talarm disarm\t\tDisarms all alarms\n"
    "\talarm list\t\tLists all alarms\n"
    "\tdefrag\t\t\tDefragments the storage of the members\n"
    "\tsnapshot save\t\tStores a snapshot to a file\n"
    "\tsnapshot restore\tRestores a snapshot into a new data dir\n"
    "\tsnapshot status\t\tGets backend snapshot status of a file\n"
    "\tcheck perf\t\tCheck the performance of the cluster\n"
    "\tversion\t\t\tPrints the version of skiffctl\n\n"
    "OBJECT COMMANDS (kubectl's):\n"
    "\tapply -f FILE|DIR|-\tCreates or updates objects from manifests\n"
    "\tcreate -f, replace -f\tCreates / replaces objects\n"
    "\tget KIND [NAME]\t\tLists objects (-n, -A, -l, -o wide|yaml|json|name)\n"
    "\tdescribe KIND NAME\tShows an object and its events\n"
    "\tdelete\t\t\tDeletes objects (-f, KIND NAME, KIND -l SELECTOR)\n"
    "\tlabel, annotate\t\tEdits labels / annotations (k=v, k-)\n"
    "\tscale\t\t\tSets --replicas of a workload\n"
    "\ttaint nodes NAME\tAdds (k=v:Effect) or removes (k-) taints\n"
    "\tcordon, uncordon\tMarks a node (un)schedulable\n"
    "\tapi-resources\t\tLists the kinds skiff serves\n"
    "\tauth can-i VERB RESOURCE [NAME]  Asks the server (--as USER, -n NS)\n"
    "\tauth whoami\t\tThe user and groups the server sees\n\n"
    "GLOBAL FLAGS:\n"
    "\t--endpoints=127.0.0.1:2379\tgRPC-style endpoints, comma separated\n"
    "\t--cacert, --cert, --key\t\tTLS files\n"
    "\t--token\t\t\t\ta bearer token (the server's --token-auth-file)\n"
    "\t--insecure-skip-tls-verify\tskip server certificate verification\n"
    "\t--dial-timeout=2s\t\tdial timeout for client connections\n"
    "\t--command-timeout=5s\t\ttimeout for short running command\n"
    "\t-w, --write-out=simple\t\tsimple, json or table\n"
    "\t--hex\t\t\t\tprint byte strings as hex encoded strings\n\n"
    "Every global flag can also be set with SKIFFCTL_<FLAG> (for example\n"
    "SKIFFCTL_ENDPOINTS, SKIFFCTL_DIAL_TIMEOUT, SKIFFCTL_WRITE_OUT).\n";

/* ---- flags --------------------------------------------------------------- */

const ctl_flag *ctl_global_flags(ctl *x)
{
    static ctl_flag g[11];
    ctl_flag t[] = {
        {"endpoints", 0, CTL_STR, &endpoints_flag},
        {"cacert", 0, CTL_STR, &x->cacert},
        {"cert", 0, CTL_STR, &x->cert},
        {"key", 0, CTL_STR, &x->key},
        {"token", 0, CTL_STR, &x->token},
        {"insecure-skip-tls-verify", 0, CTL_BOOL, &x->insecure_skip_verify},
        {"dial-timeout", 0, CTL_DURATION, &x->dial_timeout_ms},
        {"command-timeout", 0, CTL_DURATION, &x->command_timeout_ms},
        {"write-out", 'w', CTL_STR, &out_fmt},
        {"hex", 0, CTL_BOOL, &x->hex},
        {NULL, 0, 0, NULL},
    };
    memcpy(g, t, sizeof t);
    return g;
}

int ctl_parse_bool(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "t") ||
        !strcmp(s, "T") || !strcmp(s, "TRUE") || !strcmp(s, "True"))
        return 1;
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "f") ||
        !strcmp(s, "F") || !strcmp(s, "FALSE") || !strcmp(s, "False"))
        return 0;
    return -1;
}

int ctl_parse_duration(const char *s, int *ms)
{
    double total = 0;
    const char *p = s;
    if (!*p)
        return -1;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno)
            return -1;
        p = end;
        double mul;
        if (!strncmp(p, "ms", 2)) {
            mul = 1;
            p += 2;
        } else if (!strncmp(p, "us", 2)) {
            mul = 0.001;
            p += 2;
        } else if (!strncmp(p, "ns", 2)) {
            mul = 0.000001;
            p += 2;
        } else if (*p == 's') {
            mul = 1000;
            p++;
        } else if (*p == 'm') {
            mul = 60000;
            p++;
        } else if (*p == 'h') {
            mul = 3600000;
            p++;
        } else if (!*p && p == end && total == 0) {
            mul = 1000; /* a bare number: seconds */
        } else {
            return -1;
        }
        total += v * mul;
    }
    if (total < 0 || total > 1e9)
        return -1;
    *ms = (int)total;
    return 0;
}

/* Finds a flag by long name (name, len) or by shorthand. */
static const ctl_flag *find_flag(const ctl_flag *t, const char *name,
                                 size_t len, char shorthand)
{
    for (; t && t->name; t++) {
        if (shorthand) {
            if (t->shorthand == shorthand)
                return t;
        } else if (strlen(t->name) == len && !strncmp(t->name, name, len)) {
            return t;
        }
    }
    return NULL;
}

/* Stores `val` into the flag's destination.  0 or an exit code. */
static int set_flag(const ctl_flag *f, const char *val)
{
    switch (f->kind) {
    case CTL_BOOL: {
        int b = val ? ctl_parse_bool(val) : 1;
        if (b < 0)
            return ctl_errorf(CTL_EXIT_ERROR,
                              "invalid argument \"%s\" for \"--%s\" flag: "
                              "strconv.ParseBool: parsing \"%s\": invalid "
                              "syntax",
                              val, f->name, val);
        *(int *)f->dst = b;
        return 0;
    }
    case CTL_STR:
        *(const char **)f->dst = val;
        return 0;
    case CTL_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || errno)
            return ctl_errorf(CTL_EXIT_ERROR,
                              "invalid argument \"%s\" for \"--%s\" flag: "
                              "strconv.ParseInt: parsing \"%s\": invalid "
                              "syntax",
                              val, f->name, val);
        *(int64_t *)f->dst = v;
        return 0;
    }
    case CTL_DURATION:
        if (ctl_parse_duration(val, (int *)f->dst))
            return ctl_errorf(CTL_EXIT_ERROR,
                              "invalid argument \"%s\" for \"--%s\" flag: "
                              "time: invalid duration \"%s\"",
                              val, f->name, val);
        return 0;
    }
    return 0;
}

int ctl_flags_parse(ctl *x, int argc, char **argv, const ctl_flag *flags,
                    char **pos, int *npos)
{
    const ctl_flag *global = ctl_global_flags(x);
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (++i < argc)
                pos[(*npos)++] = argv[i];
            break;
        }
        if (a[0] != '-' || !a[1]) {
            pos[(*npos)++] = a;
            continue;
        }
        const ctl_flag *f;
        const char *val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            f = find_flag(flags, name, len, 0);
            if (!f)
                f = find_flag(global, name, len, 0);
            if (!f)
                return ctl_errorf(CTL_EXIT_ERROR, "unknown flag: --%.*s",
                                  (int)len, name);
            if (eq)
                val = eq + 1;
        } else {
            f = find_flag(flags, NULL, 0, a[1]);
            if (!f)
                f = find_flag(global, NULL, 0, a[1]);
            if (!f)
                return ctl_errorf(CTL_EXIT_ERROR,
                                  "unknown shorthand flag: '%c' in %s", a[1],
                                  a);
            if (a[2] == '=')
                val = a + 3;
            else if (a[2])
                val = a + 2;
        }
        if (!val && f->kind != CTL_BOOL) {
            if (i + 1 >= argc)
                return ctl_errorf(CTL_EXIT_ERROR,
                                  "flag needs an argument: --%s", f->name);
            val = argv[++i];
        }
        int rc = set_flag(f, val);
        if (rc)
            return rc;
    }
    return 0;
}

/* Applies SKIFFCTL_<FLAG> environment variables for the global flags. */
static int apply_env(ctl *x)
{
    for (const ctl_flag *f = ctl_global_flags(x); f->name; f++) {
        char name[64] = "SKIFFCTL_";
        size_t n = strlen(name);
        for (const char *p = f->name; *p && n < sizeof name - 1; p++)
            name[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        name[n] = 0;
        const char *v = getenv(name);
        if (v && *v) {
            int rc = set_flag(f, v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Splits --endpoints into x->endpoints. */
static int split_endpoints(ctl *x)
{
    const char *src = endpoints_flag ? endpoints_flag : "127.0.0.1:2379";
    free(x->endpoints_buf);
    x->endpoints_buf = strdup(src);
    if (!x->endpoints_buf)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    x->n_endpoints = 0;
    char *save = NULL;
    for (char *t = strtok_r(x->endpoints_buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t)
            continue;
        if (x->n_endpoints == CTL_MAX_ENDPOINTS)
            return ctl_errorf(CTL_EXIT_BAD_ARGS, "too many endpoints");
        x->endpoints[x->n_endpoints++] = t;
    }
    if (!x->n_endpoints)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "no endpoint given");
    return 0;
}

/* ---- shared helpers ------------------------------------------------------ */

int ctl_errorf(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("Error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* ctl_errorf without the "Error: " prefix. */
static int ctl_errorf_raw(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ctl_errorf_raw(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* kubectl's reason for a server error ("Forbidden"), or NULL. */
static const char *kube_reason(int rc)
{
    switch (rc) {
    case SKIFF_EPERMISSION_DENIED: return "Forbidden";
    case SKIFF_ECONFLICT: return "Conflict";
    case SKIFF_ENOT_FOUND: return "NotFound";
    case SKIFF_EINVALID_ARGUMENT: return "BadRequest";
    default: return NULL;
    }
}

int ctl_fail(ctl *x, skiff_client *c, int rc, const skiff_result *res)
{
    if (x->kube && rc == SKIFF_EUNAUTHENTICATED)
        return ctl_errorf_raw(CTL_EXIT_ERROR, "error: You must be logged in "
                                              "to the server (Unauthorized)");
    if (x->kube && kube_reason(rc)) {
        const char *m = res && res->error_message && res->error_message[0]
                            ? res->error_message
                            : skiff_strerror(rc);
        return ctl_errorf_raw(CTL_EXIT_ERROR, "Error from server (%s): %s",
                              kube_reason(rc), m);
    }
    if (skiff_err_wire_name(rc)) {
        /* The store's typed errors read like etcd's "etcdserver: ...". */
        const char *m = res && res->error_message && res->error_message[0]
                            ? res->error_message
                            : skiff_strerror(rc);
        return ctl_errorf(CTL_EXIT_ERROR, "skiffd: %s", m);
    }
    const char *m = c ? skiff_client_errmsg(c) : "";
    return ctl_errorf(CTL_EXIT_ERROR, "%s", m[0] ? m : skiff_strerror(rc));
}

void ctl_config(ctl *x, const char *const *eps, size_t n, skiff_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->endpoints = eps;
    cfg->n_endpoints = n;
    cfg->ca_file = x->cacert;
    cfg->cert_file = x->cert;
    cfg->key_file = x->key;
    cfg->token = x->token;
    cfg->insecure_skip_verify = x->insecure_skip_verify;
    cfg->dial_timeout_ms = x->dial_timeout_ms;
    cfg->request_timeout_ms = x->command_timeout_ms;
}

int ctl_client_for(ctl *x, const char *const *eps, size_t n, skiff_client **out)
{
    skiff_config cfg;
    ctl_config(x, eps, n, &cfg);
    int rc = skiff_client_create(out, &cfg);
    if (rc) {
        *out = NULL;
        if (rc == -EINVAL)
            return ctl_errorf(CTL_EXIT_BAD_ARGS,
                              "invalid endpoints or "
                              "TLS flags: %s",
                              skiff_strerror(rc));
        return ctl_errorf(CTL_EXIT_BAD_CONNECTION, "%s", skiff_strerror(rc));
    }
    return 0;
}

skiff_client *ctl_client(ctl *x)
{
    if (!x->client) {
        int rc = ctl_client_for(x, x->endpoints, x->n_endpoints, &x->client);
        if (rc)
            exit(rc);
    }
    return x->client;
}

char *ctl_read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(0, b + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Index of the next non-flag word at or after `from`, skipping global
 * flags and their values; -1 when none. */
static int next_word(ctl *x, int argc, char **argv, int from)
{
    const ctl_flag *g = ctl_global_flags(x);
    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            return -1;
        if (a[0] != '-' || !a[1])
            return i;
        const ctl_flag *f = NULL;
        if (a[1] == '-' && !strchr(a, '='))
            f = find_flag(g, a + 2, strlen(a + 2), 0);
        else if (a[1] != '-' && !a[2])
            f = find_flag(g, NULL, 0, a[1]);
        if (f && f->kind != CTL_BOOL)
            i++;
    }
    return -1;
}

typedef struct command {
    const char *name;
    int (*run)(ctl *, int, char **);
    int (*run_sub)(ctl *, const char *, int, char **);
} command;

/* version: prints skiffctl's version. */
static int cmd_version(ctl *x, int argc, char **argv)
{
    (void)x, (void)argc, (void)argv;
    printf("skiffctl version: %d.%d.%d\nAPI version: 3.4\n",
           SKIFF_VERSION_MAJOR, SKIFF_VERSION_MINOR, SKIFF_VERSION_PATCH);
    return 0;
}

static const command commands[] = {
    {"put", cmd_put, NULL},
    {"get", cmd_obj_get_or_kv, NULL}, /* objects when given a kind */
    {"del", cmd_del, NULL},
    {"txn", cmd_txn, NULL},
    {"compaction", cmd_compaction, NULL},
    {"watch", cmd_watch, NULL},
    {"lease", NULL, cmd_lease},
    {"member", NULL, cmd_member},
    {"move-leader", cmd_move_leader, NULL},
    {"endpoint", NULL, cmd_endpoint},
    {"alarm", NULL, cmd_alarm},
    {"auth", NULL, cmd_auth},
    {"defrag", cmd_defrag, NULL},
    {"snapshot", NULL, cmd_snapshot},
    {"check", NULL, cmd_check},
    {"version", cmd_version, NULL},
    /* kubectl's object commands (obj_*.c) */
    {"apply", cmd_obj_apply, NULL},
    {"create", cmd_obj_create, NULL},
    {"replace", cmd_obj_replace, NULL},
    {"delete", cmd_obj_delete, NULL},
    {"describe", cmd_obj_describe, NULL},
    {"label", cmd_obj_label, NULL},
    {"annotate", cmd_obj_annotate, NULL},
    {"scale", cmd_obj_scale, NULL},
    {"taint", cmd_obj_taint, NULL},
    {"cordon", cmd_obj_cordon, NULL},
    {"uncordon", cmd_obj_uncordon, NULL},
    {"api-resources", cmd_obj_api_resources, NULL},
};

/* Index of "apply", the first of kubectl's commands in the table. */
static size_t first_obj_command(void)
{
    size_t i = 0;
    while (strcmp(commands[i].name, "apply"))
        i++;
    return i;
}

/* 1 when -h or --help is among the arguments. */
static int help_requested(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return 0;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ctl x = {.dial_timeout_ms = 2000, .command_timeout_ms = 5000};
    int rc = apply_env(&x);
    if (rc)
        return rc;
    int ci = next_word(&x, argc, argv, 1);
    if (help_requested(argc, argv) || ci < 0 || !strcmp(argv[ci], "help")) {
        fputs(usage_text,
              ci < 0 && !help_requested(argc, argv) ? stderr : stdout);
        return ci < 0 && !help_requested(argc, argv) ? CTL_EXIT_BAD_ARGS : 0;
    }
    const command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, argv[ci]))
            cmd = &commands[i];
    if (!cmd)
        return ctl_errorf(CTL_EXIT_ERROR,
                          "unknown command \"%s\" for \"skiffctl\"", argv[ci]);
    /* kubectl's commands (get decides for itself). */
    x.kube = cmd >= &commands[first_obj_command()] &&
             cmd->run != cmd_obj_get_or_kv;
    int si = -1;
    if (cmd->run_sub) {
        si = next_word(&x, argc, argv, ci + 1);
        if (si < 0)
            return ctl_errorf(CTL_EXIT_BAD_ARGS,
                              "%s needs a sub-command; see skiffctl --help",
                              cmd->name);
    }
    /* The words left for the command: everything but argv[0] and the
     * command words. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    int nrest = 0;
    for (int i = 1; i < argc; i++)
        if (i != ci && i != si)
            rest[nrest++] = argv[i];
    /* Global flags may sit anywhere: parse them now so the command sees
     * the final endpoints and output format.  Unknown (command) flags are
     * the command's business, so only global ones are consumed here. */
    const ctl_flag *g = ctl_global_flags(&x);
    /* An object get's -w is kubectl's watch, a flag of its own. */
    int obj_get =
        cmd->run == cmd_obj_get_or_kv && octl_get_is_object(nrest, rest);
    for (int i = 0; i < nrest; i++) {
        const char *a = rest[i];
        if (!strcmp(a, "--"))
            break;
        if (a[0] != '-' || !a[1] || (obj_get && a[1] == 'w'))
            continue;
        const char *val = NULL;
        const ctl_flag *f;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            f = find_flag(g, a + 2, len, 0);
            val = eq ? eq + 1 : NULL;
        } else {
            f = find_flag(g, NULL, 0, a[1]);
            val = a[2] ? (a[2] == '=' ? a + 3 : a + 2) : NULL;
        }
        if (!f)
            continue;
        if (!val && f->kind != CTL_BOOL && i + 1 < nrest)
            val = rest[++i];
        if (!val && f->kind != CTL_BOOL) {
            free(rest);
            return ctl_errorf(CTL_EXIT_ERROR, "flag needs an argument: --%s",
                              f->name);
        }
        if ((rc = set_flag(f, val))) {
            free(rest);
            return rc;
        }
    }
    if (out_fmt) {
        if (!strcmp(out_fmt, "simple"))
            x.out = CTL_OUT_SIMPLE;
        else if (!strcmp(out_fmt, "json"))
            x.out = CTL_OUT_JSON;
        else if (!strcmp(out_fmt, "table"))
            x.out = CTL_OUT_TABLE;
        else {
            free(rest);
            return ctl_errorf(CTL_EXIT_BAD_ARGS, "unknown output format \"%s\"",
                              out_fmt);
        }
    }
    if ((rc = split_endpoints(&x))) {
        free(rest);
        return rc;
    }
    if (cmd->run)
        rc = cmd->run(&x, nrest, rest);
    else
        rc = cmd->run_sub(&x, argv[si], nrest, rest);
    fflush(stdout);
    skiff_client_destroy(x.client);
    free(x.endpoints_buf);
    free(rest);
    return rc;
}
