/*
 * Integration test of skiffctl: a real skiffd on loopback and the real
 * skiffctl binary, run as a child process with its stdin, stdout and
 * stderr on pipes.  Every command and flag is exercised and its output
 * and exit code checked against etcdctl's shapes: simple, JSON and table
 * output, usage errors (exit 128), store errors ("Error: skiffd: ..."),
 * a dead endpoint, the watch stream (read until the expected lines show
 * up, never by sleeping), snapshots restored into a new data dir that a
 * second skiffd then serves, and a short `check perf`.
 *
 * Usage: cli_skiffctl <skiffctl> <skiffd>.  Children die with the test
 * (PR_SET_PDEATHSIG) and are SIGKILLed in teardown.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv.h"
#include "tu.h"

#define OUT_CAP (256 * 1024)
#define RUN_TIMEOUT_MS 60000

static const char *ctl_bin, *srv_bin;
static srv server;
static char endpoint[64];

typedef struct run_res {
    int code;
    char out[OUT_CAP];
    char err[OUT_CAP];
} run_res;

static run_res R; /* the last run's result (large: kept off the stack) */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts skiffctl with `args` (NULL-terminated), prefixed by the test
 * endpoint unless `no_ep`.  Pipes to its stdin/stdout/stderr come back in
 * fds[0..2].  Returns the pid. */
static pid_t spawn_ctl(const char *const *args, int no_ep, int fds[3])
{
    const char *argv[64];
    int n = 0;
    argv[n++] = ctl_bin;
    if (!no_ep) {
        argv[n++] = "--endpoints";
        argv[n++] = endpoint;
    }
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int in[2], out[2], err[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(ctl_bin, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    fds[0] = in[1];
    fds[1] = out[0];
    fds[2] = err[0];
    return pid;
}

/* Runs skiffctl to completion with `input` on stdin; fills R. */
static void run_v(const char *input, int no_ep, const char *const *args)
{
    int fds[3];
    pid_t pid = spawn_ctl(args, no_ep, fds);
    if (input) {
        size_t len = strlen(input), off = 0;
        while (off < len) {
            ssize_t w = write(fds[0], input + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    close(fds[0]);
    size_t no = 0, ne = 0;
    int open_out = 1, open_err = 1;
    int64_t deadline = now_ms() + RUN_TIMEOUT_MS;
    while ((open_out || open_err) && now_ms() < deadline) {
        struct pollfd p[2] = {{fds[1], POLLIN, 0}, {fds[2], POLLIN, 0}};
        if (poll(p, 2, 1000) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *buf = i ? R.err : R.out;
            size_t *len = i ? &ne : &no;
            ssize_t r = read(p[i].fd, buf + *len, OUT_CAP - 1 - *len);
            if (r <= 0) {
                if (i)
                    open_err = 0;
                else
                    open_out = 0;
            } else {
                *len += (size_t)r;
            }
        }
    }
    R.out[no] = 0;
    R.err[ne] = 0;
    if (open_out || open_err)
        kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    close(fds[1]);
    close(fds[2]);
}

/* run(input, args...): skiffctl --endpoints <server> args... */
#define run(input, ...)                                                        \
    do {                                                                       \
        const char *a_[] = {__VA_ARGS__, NULL};                                \
        run_v(input, 0, a_);                                                   \
    } while (0)
#define run_noep(input, ...)                                                   \
    do {                                                                       \
        const char *a_[] = {__VA_ARGS__, NULL};                                \
        run_v(input, 1, a_);                                                   \
    } while (0)

static void expect(int code, const char *out)
{
    if (R.code != code || (out && strcmp(R.out, out)))
        fprintf(stderr, "exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", R.code,
                code, R.out, R.err);
    assert_int_equal(R.code, code);
    if (out)
        assert_string_equal(R.out, out);
}

static void expect_has(const char *where, const char *needle)
{
    if (!strstr(where, needle))
        fprintf(stderr, "missing \"%s\" in:\n%s\n", needle, where);
    assert_non_null(strstr(where, needle));
}

/* The store's current revision, from `get -w json`. */
static long long current_rev(void)
{
    run(NULL, "get", "no-such-key", "-w", "json");
    expect(0, NULL);
    const char *p = strstr(R.out, "\"revision\":");
    assert_non_null(p);
    return atoll(p + 11);
}

typedef struct child {
    pid_t pid;
    int fds[3];
    char out[OUT_CAP];
    size_t len;
} child;

static child W; /* the watch child of the running test */
static void child_kill(child *c);

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    memset(&server, 0, sizeof server);
    if (srv_spawn(&server, srv_bin, 0, NULL))
        return -1;
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", server.port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    child_kill(&W);
    srv_cleanup(&server);
    return 0;
}

/* ---- KV ------------------------------------------------------------------ */

static void test_put_get(void **state)
{
    (void)state;
    run(NULL, "put", "pg/a", "1");
    expect(0, "OK\n");
    run(NULL, "put", "pg/b", "2");
    expect(0, "OK\n");
    run("from stdin\n", "put", "pg/c");
    expect(0, "OK\n");
    run(NULL, "get", "pg/c");
    expect(0, "pg/c\nfrom stdin\n\n");
    run(NULL, "put", "pg/a", "11", "--prev-kv");
    expect(0, "OK\npg/a\n1\n");
    run(NULL, "get", "pg/a");
    expect(0, "pg/a\n11\n");
    run(NULL, "get", "pg/", "--prefix", "--print-value-only");
    expect(0, "11\n2\nfrom stdin\n\n");
    run(NULL, "get", "pg/", "--prefix", "--keys-only");
    expect(0, "pg/a\n\npg/b\n\npg/c\n\n");
    run(NULL, "get", "pg/", "--prefix", "--count-only");
    expect(0, "3\n");
    run(NULL, "get", "pg/a", "pg/c");
    expect(0, "pg/a\n11\npg/b\n2\n");
    run(NULL, "get", "pg/b", "--from-key", "--limit", "1");
    expect(0, "pg/b\n2\n");
    run(NULL, "get", "pg/", "--prefix", "--limit=1", "--consistency=s");
    expect(0, "pg/a\n11\n");
    run(NULL, "get", "pg/", "--prefix", "--sort-by=KEY", "--order=DESCEND",
        "--keys-only");
    expect(0, "pg/c\n\npg/b\n\npg/a\n\n");
    run(NULL, "get", "pg/", "--prefix", "--sort-by", "MODIFY", "--order",
        "ASCEND", "--print-value-only");
    expect(0, "2\nfrom stdin\n\n11\n");

    /* A past revision still sees the old value. */
    run(NULL, "put", "pg/a", "111", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"header\":{\"cluster_id\":");
    expect_has(R.out, "\"raft_term\":");
    const char *p = strstr(R.out, "\"revision\":");
    assert_non_null(p);
    long long rev = atoll(p + 11);
    char revs[32];
    snprintf(revs, sizeof revs, "%lld", rev - 1);
    run(NULL, "get", "pg/a", "--rev", revs);
    expect(0, "pg/a\n11\n");

    /* JSON: base64 key and value, the kv's revisions, the count. */
    run(NULL, "get", "pg/b", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"kvs\":[{\"key\":\"cGcvYg==\",\"create_revision\":");
    expect_has(R.out, "\"version\":1,\"value\":\"Mg==\"}]");
    expect_has(R.out, "\"count\":1}");
    expect_has(R.out, "\"member_id\":");
    /* -w table falls back to simple output for get, like etcdctl. */
    run(NULL, "get", "pg/b", "-w", "table");
    expect(0, "pg/b\n2\n");
    /* --hex */
    run(NULL, "get", "pg/b", "--hex");
    expect(0, "\\x70\\x67\\x2f\\x62\n\\x32\n");

    /* --ignore-value keeps the value, --ignore-lease the lease. */
    run(NULL, "put", "pg/b", "--ignore-value");
    expect(0, "OK\n");
    run(NULL, "get", "pg/b", "--print-value-only");
    expect(0, "2\n");
    run(NULL, "put", "pg/b", "22", "--ignore-lease");
    expect(0, "OK\n");
    run(NULL, "get", "pg/b", "--print-value-only");
    expect(0, "22\n");
    run(NULL, "put", "pg/none", "--ignore-value");
    expect(1, "");
    expect_has(R.err, "Error: skiffd: ");
}

static void test_del(void **state)
{
    (void)state;
    run(NULL, "put", "dl/a", "1");
    run(NULL, "put", "dl/b", "2");
    run(NULL, "put", "dl/c", "3");
    run(NULL, "put", "dm", "4");
    run(NULL, "del", "dl/a", "--prev-kv");
    expect(0, "1\ndl/a\n1\n");
    run(NULL, "del", "dl/a");
    expect(0, "0\n");
    run(NULL, "del", "dl/", "--prefix", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"deleted\":2");
    run(NULL, "get", "d", "--prefix");
    expect(0, "dm\n4\n");
    /* "~" sorts after every other key this test suite writes. */
    run(NULL, "put", "~dl/x", "1");
    run(NULL, "put", "~dm", "1");
    run(NULL, "del", "~dl/x", "--from-key");
    expect(0, "2\n");
    run(NULL, "get", "~", "--prefix");
    expect(0, "");
    run(NULL, "put", "dr/1", "1");
    run(NULL, "put", "dr/2", "2");
    run(NULL, "del", "dr/1", "dr/2");
    expect(0, "1\n");
}

static void test_txn(void **state)
{
    (void)state;
    run(NULL, "put", "tx/k", "v1");
    const char *in = "value(\"tx/k\") = \"v1\"\n"
                     "version(\"tx/k\") > \"0\"\n"
                     "\n"
                     "put tx/k \"v 2\"\n"
                     "get tx/k\n"
                     "\n"
                     "put tx/other x\n"
                     "\n";
    run(in, "txn");
    /* Ops run in order: the get sees the put before it. */
    expect(0, "SUCCESS\n\nOK\n\ntx/k\nv 2\n");
    run(NULL, "get", "tx/k", "--print-value-only");
    expect(0, "v 2\n");
    /* The compare now fails: the failure branch runs. */
    run(in, "txn", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"responses\":[{\"Response\":{\"response_put\":");
    assert_null(strstr(R.out, "\"succeeded\":true"));
    run(NULL, "get", "tx/other");
    expect(0, "tx/other\nx\n");
    /* Interactive mode prompts for each section. */
    run("mod(\"tx/k\") > \"1\"\n\ndel --prev-kv tx/other\n\nget tx/k\n\n",
        "txn", "-i");
    expect(0, "compares:\nsuccess requests (get, put, del):\n"
              "failure requests (get, put, del):\n"
              "SUCCESS\n\n1\ntx/other\nx\n");
    run("create(\"tx/none\") = \"0\"\n\nget --prefix tx/\n\n", "txn");
    expect(0, "SUCCESS\n\ntx/k\nv 2\n");
    run("bogus compare\n\n", "txn");
    expect(3, "");
    expect_has(R.err, "Error: malformed comparison: bogus compare");
    run("\nfrobnicate x\n\n", "txn");
    expect(3, "");
    expect_has(R.err, "invalid txn request");
}

static void test_compaction_and_errors(void **state)
{
    (void)state;
    run(NULL, "put", "cp/k", "1");
    run(NULL, "put", "cp/k", "2");
    long long rev = current_rev();
    char revs[32], old[32], future[32];
    snprintf(revs, sizeof revs, "%lld", rev);
    snprintf(old, sizeof old, "%lld", rev - 1);
    snprintf(future, sizeof future, "%lld", rev + 100);
    run(NULL, "compaction", revs, "--physical");
    char want[64];
    snprintf(want, sizeof want, "compacted revision %lld\n", rev);
    expect(0, want);
    run(NULL, "get", "cp/k", "--rev", old);
    expect(1, "");
    expect_has(R.err, "Error: skiffd: ");
    expect_has(R.err, "compacted");
    run(NULL, "get", "cp/k", "--rev", future);
    expect(1, "");
    expect_has(R.err, "Error: skiffd: ");
    expect_has(R.err, "future revision");
    run(NULL, "put", "", "v");
    expect(1, "");
    expect_has(R.err, "Error: skiffd: key is not provided");
    run(NULL, "compaction", "abc");
    expect(1, "");

    /* Usage errors: etcdctl's messages and exit code 128. */
    run("", "put");
    expect(128, "");
    expect_has(R.err, "Error: put command needs 1 argument and input from "
                      "stdin or 2 arguments");
    run(NULL, "get");
    expect(128, "");
    run(NULL, "get", "a", "b", "--prefix");
    expect(128, "");
    run(NULL, "get", "a", "--prefix", "--from-key");
    expect(128, "");
    run(NULL, "get", "a", "--keys-only", "--count-only");
    expect(128, "");
    run(NULL, "del");
    expect(128, "");
    run(NULL, "compaction");
    expect(128, "");
    run(NULL, "get", "a", "--consistency=x");
    expect(128, "");
    run(NULL, "get", "a", "--bogus");
    expect(1, "");
    expect_has(R.err, "Error: unknown flag: --bogus");
    run(NULL, "frob");
    expect(1, "");
    expect_has(R.err, "Error: unknown command \"frob\"");
    run(NULL, "get", "a", "-w", "yaml");
    expect(128, "");
    run(NULL, "get", "a", "--rev", "x");
    expect(1, "");
    run(NULL, "--help");
    expect(0, NULL);
    expect_has(R.out, "skiffctl");
    run(NULL, "version");
    expect(0, NULL);
    expect_has(R.out, "skiffctl version: ");

    /* A dead endpoint: connection refused, exit 1. */
    run_noep(NULL, "--endpoints", "127.0.0.1:1", "--dial-timeout", "1s", "get",
             "a");
    expect(1, "");
    expect_has(R.err, "Error: ");
    expect_has(R.err, "127.0.0.1:1");
    expect_has(R.err, "refused");
}

static void test_env(void **state)
{
    (void)state;
    setenv("SKIFFCTL_ENDPOINTS", endpoint, 1);
    setenv("SKIFFCTL_WRITE_OUT", "json", 1);
    setenv("SKIFFCTL_COMMAND_TIMEOUT", "3s", 1);
    run_noep(NULL, "put", "env/k", "v");
    expect(0, NULL);
    expect_has(R.out, "{\"header\":{\"cluster_id\":");
    /* A flag beats the environment. */
    run_noep(NULL, "get", "env/k", "-w", "simple");
    expect(0, "env/k\nv\n");
    setenv("SKIFFCTL_ENDPOINTS", "127.0.0.1:1", 1);
    run_noep(NULL, "--endpoints", endpoint, "get", "env/k",
             "--write-out=simple");
    expect(0, "env/k\nv\n");
    setenv("SKIFFCTL_DIAL_TIMEOUT", "nonsense", 1);
    run_noep(NULL, "get", "env/k");
    expect(1, "");
    unsetenv("SKIFFCTL_DIAL_TIMEOUT");
    unsetenv("SKIFFCTL_ENDPOINTS");
    unsetenv("SKIFFCTL_WRITE_OUT");
    unsetenv("SKIFFCTL_COMMAND_TIMEOUT");
}

/* ---- watch --------------------------------------------------------------- */

/* Reads the child's stdout until it contains `want` (or times out). */
static int wait_for(child *c, const char *want, int ms)
{
    int64_t deadline = now_ms() + ms;
    while (!strstr(c->out, want)) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {c->fds[1], POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(c->fds[1], c->out + c->len, OUT_CAP - 1 - c->len);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
        c->out[c->len] = 0;
    }
    return 0;
}

static void child_kill(child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
        for (int i = 0; i < 3; i++)
            if (c->fds[i] >= 0)
                close(c->fds[i]);
    }
}

static void start_child(child *c, const char *const *args)
{
    memset(c, 0, sizeof *c);
    c->pid = spawn_ctl(args, 0, c->fds);
}

static void test_watch(void **state)
{
    (void)state;
    long long rev = current_rev();
    char from[32];
    snprintf(from, sizeof from, "%lld", rev + 1);
    /* Starting at the next revision makes the test independent of when
     * the watch reaches the server. */
    const char *args[] = {"watch", "wt/", "--prefix", "--prev-kv",
                          "--rev", from,  NULL};
    start_child(&W, args);
    run(NULL, "put", "wt/a", "1");
    run(NULL, "put", "wt/a", "2");
    run(NULL, "del", "wt/a");
    run(NULL, "put", "other", "x");
    int rc = wait_for(&W, "DELETE\n", 20000);
    if (rc == 0)
        rc = wait_for(&W, "DELETE\nwt/a\n2\nwt/a\n\n", 20000);
    if (rc)
        fprintf(stderr, "watch output:\n%s\n", W.out);
    assert_int_equal(rc, 0);
    assert_string_equal(W.out, "PUT\nwt/a\n1\n"
                               "PUT\nwt/a\n1\nwt/a\n2\n"
                               "DELETE\nwt/a\n2\nwt/a\n\n");
    child_kill(&W);

    /* JSON deliveries and a single key. */
    rev = current_rev();
    snprintf(from, sizeof from, "%lld", rev + 1);
    const char *jargs[] = {
        "watch", "wt/j", "--rev", from, "-w", "json", "--progress-notify",
        NULL};
    start_child(&W, jargs);
    run(NULL, "put", "wt/j", "v");
    assert_int_equal(wait_for(&W, "}\n", 20000), 0);
    expect_has(W.out, "\"Events\":[{\"kv\":{\"key\":\"d3Qvag==\"");
    expect_has(W.out, "\"value\":\"dg==\"");
    child_kill(&W);

    /* Interactive: two watches from stdin, then a progress request. */
    rev = current_rev();
    char line[256];
    snprintf(line, sizeof line,
             "watch wt/i1 --rev %lld\nwatch --prefix "
             "wt/i2 --rev %lld\n",
             rev + 1, rev + 1);
    const char *iargs[] = {"watch", "-i", NULL};
    start_child(&W, iargs);
    assert_true(write(W.fds[0], line, strlen(line)) > 0);
    run(NULL, "put", "wt/i1", "a");
    run(NULL, "put", "wt/i2/x", "b");
    assert_int_equal(wait_for(&W, "PUT\nwt/i1\na\n", 20000), 0);
    assert_int_equal(wait_for(&W, "PUT\nwt/i2/x\nb\n", 20000), 0);
    child_kill(&W);

    /* A compacted start revision: etcdctl's message, exit 5. */
    run(NULL, "watch", "wt/", "--prefix", "--rev", "1");
    expect(5, "");
    expect_has(R.err, "watch was canceled (");
    expect_has(R.err, "compacted");
    expect_has(R.err, "Error: watch is canceled by the server");
    run(NULL, "watch");
    expect(128, "");
    run(NULL, "watch", "a", "b", "--prefix");
    expect(128, "");
}

/* `progress` in interactive mode asks every watch for a progress
 * notification, printed as "progress notify: REV". */
static void test_watch_progress(void **state)
{
    (void)state;
    const char *iargs[] = {"watch", "-i", NULL};
    char line[128];
    snprintf(line, sizeof line, "watch wt/p --rev %lld\n", current_rev() + 1);
    start_child(&W, iargs);
    assert_true(write(W.fds[0], line, strlen(line)) > 0);
    run(NULL, "put", "wt/p", "a");
    assert_int_equal(wait_for(&W, "PUT\nwt/p\na\n", 20000), 0);
    assert_true(write(W.fds[0], "progress\n", 9) > 0);
    int rc = wait_for(&W, "progress notify: ", 10000);
    if (rc)
        fprintf(stderr, "no progress notification; output:\n%s\n", W.out);
    child_kill(&W);
    assert_int_equal(rc, 0);
}

/* ---- lease --------------------------------------------------------------- */

static void test_lease(void **state)
{
    (void)state;
    run(NULL, "lease", "grant", "100");
    expect(0, NULL);
    char id[32];
    assert_int_equal(sscanf(R.out, "lease %31s granted with TTL(100s)", id), 1);
    assert_int_equal(strlen(id), 16);
    run(NULL, "put", "ls/k", "v", "--lease", id);
    expect(0, "OK\n");
    run(NULL, "put", "ls/k2", "v", "--lease", id);
    expect(0, "OK\n");
    run(NULL, "lease", "timetolive", id);
    expect(0, NULL);
    char want[256];
    snprintf(want, sizeof want, "lease %s granted with TTL(100s), remaining(",
             id);
    expect_has(R.out, want);
    run(NULL, "lease", "timetolive", id, "--keys");
    expect(0, NULL);
    expect_has(R.out, "attached keys([ls/k ls/k2])");
    run(NULL, "lease", "list");
    expect(0, NULL);
    expect_has(R.out, "found ");
    expect_has(R.out, id);
    run(NULL, "lease", "keep-alive", "--once", id);
    snprintf(want, sizeof want, "lease %s keepalived with TTL(100)\n", id);
    expect(0, want);
    run(NULL, "lease", "grant", "60", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"TTL\":60");
    expect_has(R.out, "\"ID\":");
    /* --ignore-lease keeps the key's lease. */
    run(NULL, "put", "ls/k", "v2", "--ignore-lease");
    expect(0, "OK\n");
    run(NULL, "get", "ls/k", "-w", "json");
    expect_has(R.out, "\"lease\":");
    run(NULL, "lease", "revoke", id);
    snprintf(want, sizeof want, "lease %s revoked\n", id);
    expect(0, want);
    run(NULL, "get", "ls/", "--prefix");
    expect(0, "");
    run(NULL, "lease", "timetolive", id);
    snprintf(want, sizeof want, "lease %s already expired\n", id);
    expect(0, want);
    run(NULL, "lease", "revoke", id);
    expect(1, "");
    expect_has(R.err, "Error: skiffd: requested lease not found");
    run(NULL, "lease", "keep-alive", "--once", id);
    expect(1, NULL);
    run(NULL, "put", "ls/x", "v", "--lease", "abcdef");
    expect(1, "");
    expect_has(R.err, "Error: skiffd: requested lease not found");
    run(NULL, "put", "ls/x", "v", "--lease", "zz");
    expect(128, "");
    run(NULL, "lease", "grant");
    expect(128, "");
}

/* ---- maintenance --------------------------------------------------------- */

static void test_maintenance(void **state)
{
    (void)state;
    run(NULL, "member", "list");
    expect(0, NULL);
    expect_has(R.out, ", started, t1, ");
    expect_has(R.out, ", false\n");
    run(NULL, "member", "list", "-w", "table");
    expect(0, NULL);
    /* The ID column is as wide as the hex ID, which has no leading zeros. */
    expect_has(R.out, " ID ");
    expect_has(R.out, " | STATUS  | NAME |");
    expect_has(R.out, "| IS LEARNER |");
    run(NULL, "member", "list", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"members\":[{\"ID\":");
    expect_has(R.out, "\"name\":\"t1\"");

    run(NULL, "endpoint", "status");
    expect(0, NULL);
    char want[128];
    snprintf(want, sizeof want, "%s, ", endpoint);
    expect_has(R.out, want);
    expect_has(R.out, ", true, false, "); /* leader, not learner */
    run(NULL, "endpoint", "status", "-w", "table");
    expect(0, NULL);
    expect_has(R.out, "| RAFT APPLIED INDEX | ERRORS |");
    run(NULL, "endpoint", "status", "--cluster", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "[{\"Endpoint\":");
    expect_has(R.out, "\"dbSize\":");
    run(NULL, "endpoint", "health");
    snprintf(
        want, sizeof want,
        "%s is healthy: successfully committed proposal: took = ", endpoint);
    expect(0, NULL);
    expect_has(R.out, want);
    run(NULL, "endpoint", "health", "--cluster", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"health\":true");
    char two[128];
    snprintf(two, sizeof two, "%s,127.0.0.1:1", endpoint);
    run_noep(NULL, "--endpoints", two, "--dial-timeout=1s", "endpoint",
             "health");
    expect(1, NULL);
    expect_has(R.out, want);
    expect_has(R.err, "127.0.0.1:1 is unhealthy: failed to commit proposal: ");
    expect_has(R.err, "Error: unhealthy cluster");
    run_noep(NULL, "--endpoints", two, "--dial-timeout=1s", "endpoint",
             "status");
    expect(1, NULL);
    expect_has(R.err, "Failed to get the status of endpoint 127.0.0.1:1");

    run(NULL, "endpoint", "hashkv");
    expect(0, NULL);
    expect_has(R.out, endpoint);
    run(NULL, "endpoint", "hashkv", "-w", "table");
    expect(0, NULL);
    expect_has(R.out, "| HASH REVISION |");
    run(NULL, "endpoint", "hashkv", "--cluster", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"HashKV\":{\"header\"");

    run(NULL, "alarm", "list");
    expect(0, "");
    run(NULL, "alarm", "disarm");
    expect(0, "");
    run(NULL, "defrag");
    snprintf(want, sizeof want, "Finished defragmenting skiff member[%s]\n",
             endpoint);
    expect(0, want);
    run(NULL, "defrag", "--cluster");
    expect(0, want);
    run(NULL, "member", "frob");
    expect(1, "");
}

/* NOSPACE: a member with a tiny quota raises the alarm; list shows it,
 * disarm clears it. */
static void test_alarm(void **state)
{
    (void)state;
    srv small;
    memset(&small, 0, sizeof small);
    const char *extra[] = {"--quota-backend-bytes", "262144", NULL};
    assert_int_equal(srv_spawn(&small, srv_bin, 0, extra), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", small.port);
    char big[16384];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    int hit = 0;
    for (int i = 0; i < 200 && !hit; i++) {
        char key[32];
        snprintf(key, sizeof key, "fill/%d", i);
        run_noep(NULL, "--endpoints", ep, "put", key, big);
        if (R.code) {
            expect_has(R.err, "Error: skiffd: ");
            hit = 1;
        }
    }
    assert_true(hit);
    run_noep(NULL, "--endpoints", ep, "alarm", "list");
    expect(0, NULL);
    expect_has(R.out, "alarm:NOSPACE");
    assert_non_null(strstr(R.out, "memberID:"));
    run_noep(NULL, "--endpoints", ep, "alarm", "list", "-w", "json");
    expect(0, NULL);
    expect_has(R.out, "\"alarms\":[{\"memberID\":");
    run_noep(NULL, "--endpoints", ep, "del", "fill/", "--prefix");
    expect(0, NULL);
    run_noep(NULL, "--endpoints", ep, "alarm", "disarm");
    expect(0, NULL);
    expect_has(R.out, "alarm:NOSPACE");
    run_noep(NULL, "--endpoints", ep, "alarm", "list");
    expect(0, "");
    srv_cleanup(&small);
}

/* ---- snapshot ------------------------------------------------------------ */

static void test_snapshot(void **state)
{
    (void)state;
    run(NULL, "put", "sn/a", "alpha");
    run(NULL, "put", "sn/b", "beta");
    long long rev = current_rev();
    char dir[256], file[512], bad[512];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    snprintf(file, sizeof file, "%s/snap.db", dir);
    run(NULL, "snapshot", "save", file);
    char want[600];
    snprintf(want, sizeof want, "Snapshot saved at %s\n", file);
    expect(0, want);
    struct stat sb;
    assert_int_equal(stat(file, &sb), 0);
    assert_true(snprintf(bad, sizeof bad, "%s.part", file) < (int)sizeof bad);
    assert_int_not_equal(stat(bad, &sb), 0);

    run(NULL, "snapshot", "status", file);
    expect(0, NULL);
    char revs[64];
    snprintf(revs, sizeof revs, ", %lld, ", rev);
    expect_has(R.out, revs);
    run(NULL, "snapshot", "status", file, "-w", "table");
    expect(0, NULL);
    expect_has(R.out, "| REVISION | TOTAL KEYS | TOTAL SIZE |");
    run(NULL, "snapshot", "status", file, "-w", "json");
    expect(0, NULL);
    snprintf(revs, sizeof revs, "\"revision\":%lld,", rev);
    expect_has(R.out, revs);

    /* Restore into a new data dir and serve it from a second member. */
    srv restored;
    memset(&restored, 0, sizeof restored);
    assert_true(snprintf(restored.dir, sizeof restored.dir, "%s/r", dir) <
                (int)sizeof restored.dir);
    assert_int_equal(mkdir(restored.dir, 0700), 0);
    char data[512];
    snprintf(data, sizeof data, "%s/data", restored.dir);
    run_noep(NULL, "snapshot", "restore", file, "--data-dir", data);
    expect(0, NULL);
    run_noep(NULL, "snapshot", "restore", file, "--data-dir", data);
    expect(1, "");
    expect_has(R.err, "exists");
    assert_int_equal(srv_spawn(&restored, srv_bin, 1, NULL), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", restored.port);
    run_noep(NULL, "--endpoints", ep, "get", "sn/", "--prefix");
    expect(0, "sn/a\nalpha\nsn/b\nbeta\n");
    run_noep(NULL, "--endpoints", ep, "get", "x", "-w", "json");
    snprintf(revs, sizeof revs, "\"revision\":%lld,", rev);
    expect_has(R.out, revs);
    srv_kill(&restored, SIGKILL);

    /* A damaged snapshot is refused. */
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("not a snapshot", f);
    fclose(f);
    run(NULL, "snapshot", "status", bad);
    expect(1, "");
    snprintf(data, sizeof data, "%s/data2", dir);
    run_noep(NULL, "snapshot", "restore", bad, "--data-dir", data);
    expect(1, "");
    assert_int_not_equal(stat(data, &sb), 0);
    char two[128];
    snprintf(two, sizeof two, "%s,%s", endpoint, endpoint);
    run_noep(NULL, "--endpoints", two, "snapshot", "save", file);
    expect(128, "");
    tu_rmrf(dir);
}

/* ---- TLS ----------------------------------------------------------------- */

/* --cacert, --cert and --key against a member that requires client
 * certificates; certificates are made by the openssl command. */
static void test_tls(void **state)
{
    (void)state;
    char dir[256], cmd[4096];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec >log 2>&1 && "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca "
             "-keyout ca.key -out ca.crt && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=skiffd "
             "-keyout srv.key -out srv.csr && "
             "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -days 2 -extfile san.ext -out srv.crt && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=cli "
             "-keyout cli.key -out cli.csr && "
             "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -days 2 -out cli.crt",
             dir);
    if (system(cmd))
        fail_msg("openssl could not make certificates (see %s/log)", dir);
    char ca[300], scrt[300], skey[300], ccrt[300], ckey[300];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(scrt, sizeof scrt, "%s/srv.crt", dir);
    snprintf(skey, sizeof skey, "%s/srv.key", dir);
    snprintf(ccrt, sizeof ccrt, "%s/cli.crt", dir);
    snprintf(ckey, sizeof ckey, "%s/cli.key", dir);
    srv t;
    memset(&t, 0, sizeof t);
    const char *extra[] = {"--cert-file", scrt, "--key-file", skey,
                           "--trusted-ca-file", ca, "--client-cert-auth",
                           NULL};
    assert_int_equal(srv_spawn(&t, srv_bin, 0, extra), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", t.port);
    run_noep(NULL, "--endpoints", ep, "--cacert", ca, "--cert", ccrt,
             "--key", ckey, "put", "tls/k", "v");
    expect(0, "OK\n");
    run_noep(NULL, "--endpoints", ep, "--cacert", ca, "--cert", ccrt,
             "--key", ckey, "get", "tls/k");
    expect(0, "tls/k\nv\n");
    /* Without a client certificate the member refuses us. */
    run_noep(NULL, "--endpoints", ep, "--cacert", ca, "--dial-timeout=1s",
             "--command-timeout=2s", "get", "tls/k");
    expect(1, "");
    expect_has(R.err, "Error: ");
    /* Plain TCP to a TLS member fails too. */
    run_noep(NULL, "--endpoints", ep, "--dial-timeout=1s",
             "--command-timeout=2s", "get", "tls/k");
    expect(1, "");
    /* A CA file that does not exist is a usage error. */
    run_noep(NULL, "--endpoints", ep, "--cacert", "/nonexistent/ca.crt",
             "get", "tls/k");
    assert_int_not_equal(R.code, 0);
    expect_has(R.err, "Error: ");
    srv_cleanup(&t);
    tu_rmrf(dir);
}

/* ---- check perf ---------------------------------------------------------- */

static void test_check_perf(void **state)
{
    (void)state;
    run(NULL, "check", "perf", "--load", "s", "--duration", "2s",
        "--auto-compact", "--auto-defrag");
    if (R.code)
        fprintf(stderr, "check perf:\n%s\n%s\n", R.out, R.err);
    /* Under sanitizers on a shared machine the latency criteria can
     * fail; the shape of the report is what is checked. */
    assert_true(R.code == 0 || R.code == 1);
    expect_has(R.out, "Throughput");
    expect_has(R.out, "Slowest request took");
    expect_has(R.out, "Stddev");
    /* The prefix is cleaned up afterwards. */
    run(NULL, "get", "/skiffctl-check-perf/", "--prefix", "--count-only");
    expect(0, "0\n");
    run(NULL, "put", "/skiffctl-check-perf/x", "v");
    run(NULL, "check", "perf");
    expect(3, "");
    expect_has(R.err, "has keys");
    run(NULL, "check", "perf", "--load", "xxl");
    expect(4, "");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <skiffctl> <skiffd>\n", argv[0]);
        return 2;
    }
    ctl_bin = argv[1];
    srv_bin = argv[2];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_del),
        cmocka_unit_test(test_txn),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_maintenance),
        cmocka_unit_test(test_compaction_and_errors),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_watch_progress),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_alarm),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_check_perf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
