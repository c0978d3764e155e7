/*
 * skiffd's configuration: etcd's flag names, so an operator's habits carry
 * over, and a YAML config file with the same keys (without the dashes).
 * Defaults come first, then the config file, then flags on the command
 * line, so a flag always wins.  Anything unknown or malformed is an error
 * that names the flag or key; the server never starts on a guess.
 */
#include "server_int.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum kind { STR, BOOL, BYTES, UINT, UINT32 };

typedef struct opt {
    const char *name;
    enum kind kind;
    size_t off, cap;
    const char *help;
} opt;

#define S(f) offsetof(srv_config, f), sizeof(((srv_config *)0)->f)

static const opt opts[] = {
    {"name", STR, S(name), "human-readable name of this member"},
    {"data-dir", STR, S(data_dir), "path to the data directory"},
    {"listen-client-urls", STR, S(listen_client),
     "address to serve clients on (host:port, tcp:// or tls://)"},
    {"advertise-client-urls", STR, S(advertise_client),
     "client address advertised to the cluster"},
    {"listen-peer-urls", STR, S(listen_peer), "address for peer traffic"},
    {"initial-advertise-peer-urls", STR, S(advertise_peer),
     "peer address advertised to the cluster"},
    {"initial-cluster", STR, S(initial_cluster),
     "initial cluster configuration (name=peer-url,...)"},
    {"initial-cluster-state", STR, S(initial_cluster_state),
     "new or existing"},
    {"initial-cluster-token", STR, S(initial_cluster_token),
     "initial cluster token"},
    {"listen-metrics-urls", STR, S(listen_metrics),
     "address for plain-HTTP /metrics and /health (empty: none)"},
    {"cert-file", STR, S(cert_file), "client TLS certificate"},
    {"key-file", STR, S(key_file), "client TLS key"},
    {"trusted-ca-file", STR, S(trusted_ca_file),
     "CA for client certificates"},
    {"client-cert-auth", BOOL, S(client_cert_auth),
     "require client certificates signed by the trusted CA"},
    {"authorization-mode", STR, S(authorization_mode),
     "AlwaysAllow (default) or RBAC (docs/security.md)"},
    {"token-auth-file", STR, S(token_auth_file),
     "static bearer tokens: token,user,uid,\"group1,group2\" lines"},
    {"kv-permissions-file", STR, S(kv_permissions_file),
     "raw key-value grants for users outside /registry/"},
    {"peer-cert-file", STR, S(peer_cert_file), "peer TLS certificate"},
    {"peer-key-file", STR, S(peer_key_file), "peer TLS key"},
    {"peer-trusted-ca-file", STR, S(peer_trusted_ca_file), "peer CA"},
    {"quota-backend-bytes", BYTES, S(quota_bytes),
     "raise the NOSPACE alarm past this size (0: 2 GiB)"},
    {"auto-compaction-mode", STR, S(auto_compaction_mode),
     "periodic or revision"},
    {"auto-compaction-retention", STR, S(auto_compaction_retention),
     "periodic: a duration (1h, 30m, 90s, or hours); revision: a count; "
     "0 disables"},
    {"log-level", STR, S(log_level), "debug, info, warn or error"},
    {"experimental-watch-progress-notify-interval", STR,
     S(progress_interval),
     "period of progress notifications to watches that asked for them"},
    {"max-request-bytes", UINT, S(max_request_bytes),
     "largest request frame accepted (bytes)"},
    {"max-concurrent-streams", UINT32, S(max_streams),
     "most open streams (requests in flight and watches) per connection"},
    {"max-watches-per-connection", UINT32, S(max_watches),
     "most watches per connection"},
    {"heartbeat-interval", UINT32, S(heartbeat_ms),
     "time (in milliseconds) of a heartbeat interval"},
    {"election-timeout", UINT32, S(election_ms),
     "time (in milliseconds) for an election to timeout"},
    {"snapshot-count", UINT, S(snapshot_count),
     "applied entries between log compactions (a follower further behind "
     "catches up by snapshot)"},
    {"snapshot-catchup-entries", UINT, S(snapshot_catchup),
     "entries kept after a log compaction for slow followers"},
    {"experimental-initial-corrupt-check", BOOL, S(initial_corrupt_check),
     "compare this member's HashKV with its peers' after it starts"},
    {"experimental-corrupt-check-time", STR, S(corrupt_check_time),
     "period of the leader's HashKV comparison across members (0: off)"},
#ifdef SKIFF_UNSAFE_SWITCHES
    {"unsafe-local-reads", BOOL, S(unsafe_local_reads),
     "TEST BUILD ONLY: serve linearizable reads locally, without ReadIndex"},
    {"unsafe-no-fsync", BOOL, S(unsafe_no_fsync),
     "TEST BUILD ONLY: acknowledge writes without fdatasync (WAL, store)"},
    {"unsafe-drop-watch-event", BOOL, S(unsafe_drop_watch_event),
     "TEST BUILD ONLY: every watcher silently misses its 20th revision"},
#endif
    {"max-outbound-bytes", UINT, S(max_outbuf),
     "bytes queued for one connection before it is closed as a slow "
     "reader"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static void defaults(srv_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->name, "default");
    strcpy(c->listen_client, "127.0.0.1:2379");
    strcpy(c->listen_peer, "127.0.0.1:2380");
    strcpy(c->initial_cluster_state, "new");
    strcpy(c->initial_cluster_token, "skiff-cluster");
    strcpy(c->auto_compaction_mode, "periodic");
    strcpy(c->authorization_mode, "AlwaysAllow");
    strcpy(c->auto_compaction_retention, "0");
    strcpy(c->log_level, "info");
    strcpy(c->progress_interval, "10m");
    c->max_request_bytes = API_DEFAULT_MAX_REQUEST;
    c->max_streams = API_DEFAULT_MAX_STREAMS;
    c->max_watches = API_DEFAULT_MAX_WATCHES;
    c->max_outbuf = API_DEFAULT_OUTBUF;
    c->max_batch = 1024;
    c->heartbeat_ms = 100;
    c->election_ms = 1000;
    c->snapshot_count = 10000;
    c->snapshot_catchup = 5000;
    c->initial_corrupt_check = true;
    strcpy(c->corrupt_check_time, "5m");
}

static int set(srv_config *c, const opt *o, const char *v, const char *from)
{
    char *p = (char *)c + o->off;
    char *end;
    switch (o->kind) {
    case STR:
        if (strlen(v) >= o->cap) {
            fprintf(stderr, "skiffd: %s %s: value too long\n", from, o->name);
            return -1;
        }
        strcpy(p, v);
        return 0;
    case BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !v[0])
            *(bool *)p = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0"))
            *(bool *)p = false;
        else
            goto bad;
        return 0;
    case BYTES:
    case UINT32:
    case UINT: {
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            goto bad;
        if (o->kind == BYTES)
            *(uint64_t *)p = n;
        else if (o->kind == UINT32)
            *(unsigned *)p = (unsigned)n;
        else
            *(size_t *)p = (size_t)n;
        return 0;
    }
    }
bad:
    fprintf(stderr, "skiffd: %s %s: invalid value \"%s\"\n", from, o->name,
            v);
    return -1;
}

static const opt *find(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (!strcmp(opts[i].name, name))
            return &opts[i];
    return NULL;
}

/* Reads a flat YAML mapping of option names to scalars. */
static int load_file(srv_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "skiffd: config file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = 0, depth = 0;
    char key[128] = "";
    bool want_key = true;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            fprintf(stderr, "skiffd: config file %s: line %zu: %s\n", path,
                    p.problem_mark.line + 1,
                    p.problem ? p.problem : "parse error");
            rc = -1;
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_MAPPING_START_EVENT) {
            if (++depth > 1) {
                fprintf(stderr,
                        "skiffd: config file %s: line %zu: %s: nested "
                        "values are not supported\n",
                        path, ev.start_mark.line + 1, key);
                rc = -1;
            }
        } else if (t == YAML_SEQUENCE_START_EVENT) {
            fprintf(stderr, "skiffd: config file %s: line %zu: %s: lists "
                            "are not supported; use a comma-separated "
                            "string\n",
                    path, ev.start_mark.line + 1, key);
            rc = -1;
        } else if (t == YAML_SCALAR_EVENT) {
            const char *v = (const char *)ev.data.scalar.value;
            if (want_key) {
                snprintf(key, sizeof key, "%s", v);
                if (!find(key)) {
                    fprintf(stderr,
                            "skiffd: config file %s: line %zu: unknown key "
                            "\"%s\"\n",
                            path, ev.start_mark.line + 1, key);
                    rc = -1;
                }
            } else if (set(c, find(key), v, "config file") != 0) {
                rc = -1;
            }
            want_key = !want_key;
        }
        yaml_event_delete(&ev);
        if (rc || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

static void usage(void)
{
    printf("Usage: skiffd [flags]\n\nA skiff store member.\n\nFlags:\n");
    for (size_t i = 0; i < NOPTS; i++)
        printf("  --%-30s %s\n", opts[i].name, opts[i].help);
    printf("  --%-30s %s\n", "config-file",
           "YAML file with the same keys (flags override it)");
    printf("  --%-30s %s\n", "help", "show this help");
    printf("  --%-30s %s\n", "version", "print the version");
}

int srv_config_parse(srv_config *c, int argc, char **argv)
{
    defaults(c);
    struct option lo[NOPTS + 4];
    for (size_t i = 0; i < NOPTS; i++)
        lo[i] = (struct option){opts[i].name,
                                opts[i].kind == BOOL ? optional_argument
                                                     : required_argument,
                                NULL, (int)(1000 + i)};
    lo[NOPTS] = (struct option){"config-file", required_argument, NULL, 'c'};
    lo[NOPTS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    lo[NOPTS + 2] = (struct option){"version", no_argument, NULL, 'v'};
    lo[NOPTS + 3] = (struct option){NULL, 0, NULL, 0};
    /* First pass: only the config file, so flags can override it. */
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'c' && load_file(c, optarg))
            return -1;
        if (ch == 'h') {
            usage();
            return 1;
        }
        if (ch == 'v') {
            printf("skiffd version 0.1.0\n");
            return 1;
        }
    }
    opterr = 1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == '?' || ch == ':') {
            fprintf(stderr, "skiffd: see --help for the flags\n");
            return -1;
        }
        if (ch >= 1000 &&
            set(c, &opts[ch - 1000], optarg ? optarg : "", "flag --") != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "skiffd: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (!c->data_dir[0])
        snprintf(c->data_dir, sizeof c->data_dir, "%s.skiff", c->name);
    if (!c->advertise_client[0])
        strcpy(c->advertise_client, c->listen_client);
    if (!c->advertise_peer[0])
        strcpy(c->advertise_peer, c->listen_peer);
    if (!c->initial_cluster[0])
        snprintf(c->initial_cluster, sizeof c->initial_cluster, "%s=%s",
                 c->name, c->advertise_peer);
    enum cm_log_level lvl;
    if (cm_log_level_parse(c->log_level, &lvl)) {
        fprintf(stderr, "skiffd: --log-level: unknown level \"%s\"\n",
                c->log_level);
        return -1;
    }
    if (strcmp(c->auto_compaction_mode, "periodic") &&
        strcmp(c->auto_compaction_mode, "revision")) {
        fprintf(stderr,
                "skiffd: --auto-compaction-mode: \"%s\" is neither periodic "
                "nor revision\n",
                c->auto_compaction_mode);
        return -1;
    }
    if (srv_parse_duration(c->progress_interval, 1) <= 0) {
        fprintf(stderr,
                "skiffd: --experimental-watch-progress-notify-interval: "
                "\"%s\" is not a positive duration\n",
                c->progress_interval);
        return -1;
    }
    if (strcmp(c->initial_cluster_state, "new") &&
        strcmp(c->initial_cluster_state, "existing")) {
        fprintf(stderr,
                "skiffd: --initial-cluster-state: \"%s\" is neither new nor "
                "existing\n",
                c->initial_cluster_state);
        return -1;
    }
    if (!c->max_streams || !c->max_watches || c->max_outbuf < 65536 ||
        c->max_request_bytes < 1024) {
        fprintf(stderr, "skiffd: limits must be positive (max-outbound-bytes "
                        ">= 65536, max-request-bytes >= 1024)\n");
        return -1;
    }
    if (!c->heartbeat_ms || c->election_ms < 5 * c->heartbeat_ms ||
        c->election_ms > 50000) {
        fprintf(stderr, "skiffd: --election-timeout (%u ms) must be at least "
                        "5 times --heartbeat-interval (%u ms) and at most "
                        "50000 ms\n",
                c->election_ms, c->heartbeat_ms);
        return -1;
    }
    if (!c->snapshot_count) {
        fprintf(stderr, "skiffd: --snapshot-count must be positive\n");
        return -1;
    }
    return 0;
}

int srv_parse_addr(const char *url, char *host, size_t hcap, int *port)
{
    const char *p = url;
    const char *schemes[] = {"tcp://", "tls://", "http://", "https://",
                             "unix://"};
    for (size_t i = 0; i < 5; i++)
        if (!strncmp(p, schemes[i], strlen(schemes[i]))) {
            p += strlen(schemes[i]);
            break;
        }
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *colon = memrchr(p, ':', len);
    if (!colon || colon == p)
        return -1;
    size_t hl = (size_t)(colon - p);
    if (hl >= hcap)
        return -1;
    memcpy(host, p, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (end != p + len || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int64_t srv_parse_duration(const char *v, double bare_unit_ms)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || x < 0)
        return -1;
    double unit;
    if (!strcmp(end, "ms"))
        unit = 1;
    else if (!strcmp(end, "s"))
        unit = 1e3;
    else if (!strcmp(end, "m"))
        unit = 60e3;
    else if (!strcmp(end, "h"))
        unit = 3600e3;
    else if (!*end)
        unit = bare_unit_ms;
    else
        return -1;
    return (int64_t)(x * unit);
}
