/*
 * cli/cli_int.h -- skiffctl's internal declarations, shared by its files.
 *
 * skiffctl is split by concern: main.c (global flags, the flag parser,
 * dispatch, client creation, errors), output.c (simple, json and
 * table printers), kv.c (put, get, del, compaction), txn.c, watch.c,
 * lease.c, member.c (member, move-leader), maint.c (endpoint, alarm,
 * defrag), snapshot.c and
 * perf.c (check perf).  Every command is a function `int cmd(ctl *, argc,
 * argv)` that returns the process exit code.
 */
#ifndef SKIFF_CLI_INT_H
#define SKIFF_CLI_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "skiff.h"

/* etcdctl's exit codes. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_BAD_CONNECTION 2
#define CTL_EXIT_INVALID_INPUT 3
#define CTL_EXIT_IO 6
#define CTL_EXIT_BAD_ARGS 128

#define CTL_MAX_ENDPOINTS 32

enum ctl_out { CTL_OUT_SIMPLE, CTL_OUT_JSON, CTL_OUT_TABLE };

/* Global state: the global flags and the lazily created client. */
typedef struct ctl {
    char *endpoints_buf; /* heap copy of --endpoints, split */
    const char *endpoints[CTL_MAX_ENDPOINTS];
    size_t n_endpoints;
    const char *cacert, *cert, *key;
    const char *token; /* --token: a bearer token */
    int kube; /* an object command: errors read like kubectl's */
    int insecure_skip_verify;
    int dial_timeout_ms;
    int command_timeout_ms;
    enum ctl_out out;
    int hex;
    skiff_client *client;
} ctl;

/* ---- flags ---------------------------------------------------------------
 * Flags are pflag-style: `--name value`, `--name=value`, `-x value`, bool
 * flags alone or `--name=true|false`; `--` ends flags.  Flags and
 * positional arguments may be interleaved. */
enum ctl_flag_kind { CTL_BOOL, CTL_STR, CTL_INT, CTL_DURATION };

typedef struct ctl_flag {
    const char *name;
    char shorthand; /* 0: none */
    enum ctl_flag_kind kind;
    void *dst; /* int *, const char **, int64_t *, int * (ms) */
} ctl_flag;

/* Parses argv[0..argc) against `flags` (terminated by a zero name) and the
 * global flags; positional arguments go to pos (capacity argc) and *npos.
 * On error prints "Error: ..." and returns the exit code to use; 0 on
 * success. */
int ctl_flags_parse(ctl *x, int argc, char **argv, const ctl_flag *flags,
                    char **pos, int *npos);
/* The global flag table (zero-terminated). */
const ctl_flag *ctl_global_flags(ctl *x);
/* Parses a Go-style duration ("5s", "500ms", "1m30s", bare seconds) into
 * milliseconds.  0 or -1. */
int ctl_parse_duration(const char *s, int *ms);
/* Parses a Go-style bool ("true", "1", "false", ...).  0/1, or -1. */
int ctl_parse_bool(const char *s);

/* ---- main.c -------------------------------------------------------------- */
/* Returns the blocking client, creating it on first use (exits on
 * failure).  Endpoints may be overridden by passing a list. */
skiff_client *ctl_client(ctl *x);
/* Fills a client configuration from the global flags. */
void ctl_config(ctl *x, const char *const *eps, size_t n, skiff_config *cfg);
/* Creates a blocking client for exactly these endpoints.  0 or the error
 * code (message printed). */
int ctl_client_for(ctl *x, const char *const *eps, size_t n,
                   skiff_client **out);
/* Prints "Error: <message>" for a failed call and returns the exit code
 * (etcdctl's: 1 for errors, 2 when no endpoint could be reached). */
int ctl_fail(ctl *x, skiff_client *c, int rc, const skiff_result *res);
/* Prints "Error: <fmt...>" to stderr and returns `code`. */
int ctl_errorf(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reads all of stdin into a heap buffer (NUL-terminated); *len gets the
 * length without the NUL.  NULL on failure. */
char *ctl_read_stdin(size_t *len);

/* ---- output.c ------------------------------------------------------------ */
void out_kv_simple(ctl *x, const skiff_kv *kv, int value_only, int keys_only);
void out_json_header(FILE *f, const skiff_header *h);
void out_json_kv(FILE *f, const skiff_kv *kv);
void out_json_bytes(FILE *f, const void *p, size_t n); /* base64 string */
void out_json_string(FILE *f, const char *s);          /* escaped string */
/* Printers for one response each, in the format x->out selects. */
void out_get(ctl *x, const skiff_result *r, int value_only, int keys_only,
             int count_only);
void out_put(ctl *x, const skiff_result *r);
void out_del(ctl *x, const skiff_result *r);
void out_txn(ctl *x, const skiff_result *r);
/* Joins strings with commas into buf (truncated to cap). */
void out_join(char *buf, size_t cap, const char *const *v, size_t n);
/* A Member as etcd's JSON: {"ID":..,"name":..,"peerURLs":[..],
 * "clientURLs":[..],"isLearner":true (only when set)}; and an array. */
void out_json_member(FILE *f, const skiff_member *m);
void out_json_members(FILE *f, const skiff_member *m, size_t n);
/* Human-readable byte sizes like Go's humanize.Bytes ("20 kB"). */
void out_human_bytes(char *buf, size_t cap, uint64_t n);
/* Go-like duration ("2.345ms"). */
void out_duration(char *buf, size_t cap, double seconds);

/* An ASCII table like etcdctl's (tablewriter with borders). */
typedef struct out_table {
    size_t ncols, nrows, cap;
    const char *const *head;
    char **cells; /* nrows * ncols, heap */
} out_table;
void out_table_init(out_table *t, const char *const *head, size_t ncols);
void out_table_row(out_table *t, const char *const *cells);
void out_table_print(out_table *t, FILE *f);

/* ---- commands ------------------------------------------------------------
 * Each parses its own flags (with the global ones), runs, prints, and
 * returns the process exit code.  `sub` is the sub-command word. */
int cmd_put(ctl *x, int argc, char **argv);
int cmd_get(ctl *x, int argc, char **argv);
int cmd_del(ctl *x, int argc, char **argv);
int cmd_compaction(ctl *x, int argc, char **argv);
int cmd_txn(ctl *x, int argc, char **argv);
int cmd_watch(ctl *x, int argc, char **argv);
int cmd_lease(ctl *x, const char *sub, int argc, char **argv);
int cmd_auth(ctl *x, const char *sub, int argc, char **argv);
int cmd_member(ctl *x, const char *sub, int argc, char **argv);
int cmd_move_leader(ctl *x, int argc, char **argv);
int cmd_endpoint(ctl *x, const char *sub, int argc, char **argv);
int cmd_alarm(ctl *x, const char *sub, int argc, char **argv);
int cmd_defrag(ctl *x, int argc, char **argv);
int cmd_snapshot(ctl *x, const char *sub, int argc, char **argv);
int cmd_check(ctl *x, const char *sub, int argc, char **argv);

#endif
