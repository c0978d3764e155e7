/*
 * skiffctl against a real 3-member cluster (cluster.h): the commands that
 * only mean something with several members.
 *
 *   test_view        member list shows every member started; endpoint
 *                    status --cluster finds one leader and one term;
 *                    endpoint hashkv --cluster agrees; health; and the
 *                    error paths (unknown member, promoting a voter,
 *                    move-leader to a non-member, usage errors) with their
 *                    exit codes, leaving the membership untouched.
 *   test_move_leader move-leader to a follower and back, the way back
 *                    given only a follower's endpoint.
 *   test_membership  member add --learner, then a skiffd started with
 *                    exactly the flags `member add` printed joins as a
 *                    learner; promote; move-leader to it and back (the way
 *                    back through a follower's endpoint alone, so skiffctl
 *                    must find the leader itself); member remove.
 *
 * skiffctl runs as a child with stdout and stderr on pipes.  Every wait is
 * a poll of a condition with a deadline, never a bare sleep.
 *
 * Usage: cli_cluster <skiffctl> <skiffd>.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"
#include "tu.h"

#define OUT_CAP (64 * 1024)
#define RUN_TIMEOUT_MS 60000
#define WAIT_MS 30000

static const char *ctl_bin;

/* The last skiffctl run. */
static struct {
    int code;
    char out[OUT_CAP];
    char err[OUT_CAP];
} R;

/* The member test_membership starts itself (not a harness slot). */
static struct {
    pid_t pid;
    char dir[256];
    char endpoint[64];
} X;

/* ---- running skiffctl ---------------------------------------------------- */

/* Runs skiffctl --endpoints eps args... to completion; fills R. */
static void run_v(const char *eps, const char *const *args)
{
    char epflag[512];
    snprintf(epflag, sizeof epflag, "--endpoints=%s", eps);
    const char *argv[32] = {ctl_bin, epflag};
    int n = 2;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int out[2], err[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(ctl_bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    size_t len[2] = {0, 0};
    char *buf[2] = {R.out, R.err};
    struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int64_t end = cl_now_ms() + RUN_TIMEOUT_MS;
    while ((p[0].fd >= 0 || p[1].fd >= 0) && cl_now_ms() < end) {
        if (poll(p, 2, 1000) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t r = read(p[i].fd, buf[i] + len[i], OUT_CAP - 1 - len[i]);
            if (r > 0)
                len[i] += (size_t)r;
            else
                p[i].fd = -1; /* poll ignores negative fds */
        }
    }
    R.out[len[0]] = 0;
    R.err[len[1]] = 0;
    if (p[0].fd >= 0 || p[1].fd >= 0)
        kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    close(out[0]);
    close(err[0]);
}

#define run(eps, ...)                                                          \
    do {                                                                       \
        const char *a_[] = {__VA_ARGS__, NULL};                                \
        run_v(eps, a_);                                                        \
    } while (0)

static void expect_code(int code)
{
    if (R.code != code)
        fprintf(stderr, "exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", R.code,
                code, R.out, R.err);
    assert_int_equal(R.code, code);
}

static void expect_has(const char *where, const char *needle)
{
    if (!strcasestr(where, needle))
        fprintf(stderr, "missing \"%s\" in:\n%s\n", needle, where);
    assert_non_null(strcasestr(where, needle));
}

/* ---- parsing output ------------------------------------------------------ */

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Splits line `idx` of R.out at ", " into f (up to max fields, each
 * copied into its own 256-byte slot).  Returns the field count. */
static int fields(int idx, char f[][256], int max)
{
    const char *l = R.out;
    for (int i = 0; i < idx && l; i++) {
        l = strchr(l, '\n');
        l = l ? l + 1 : NULL;
    }
    assert_non_null(l);
    const char *eol = strchr(l, '\n');
    assert_non_null(eol);
    int n = 0;
    while (n < max) {
        const char *sep = strstr(l, ", ");
        if (!sep || sep > eol)
            sep = eol;
        snprintf(f[n++], 256, "%.*s", (int)(sep - l), l);
        if (sep == eol)
            break;
        l = sep + 2;
    }
    return n;
}

/* The `member list` line (simple output in R.out) of the member with this
 * ID, or -1. */
static int member_line(uint64_t id)
{
    char f[6][256];
    for (int i = 0; i < count_lines(R.out); i++) {
        fields(i, f, 6);
        if (strtoull(f[0], NULL, 16) == id)
            return i;
    }
    return -1;
}

/* The cluster ID in hex, from `member list -w json`'s header. */
static void cluster_id_hex(const char *eps, char *out, size_t cap)
{
    run(eps, "member", "list", "-w", "json");
    expect_code(0);
    const char *p = strstr(R.out, "\"cluster_id\":");
    assert_non_null(p);
    snprintf(out, cap, "%" PRIx64,
             (uint64_t)strtoull(p + strlen("\"cluster_id\":"), NULL, 10));
}

/* `endpoint status --cluster` until exactly one member says it leads and
 * that member's ID is `want` (0: any); returns the leader's ID. */
static uint64_t wait_status_leader(const char *eps, uint64_t want)
{
    int64_t end = cl_now_ms() + WAIT_MS;
    for (;;) {
        run(eps, "endpoint", "status", "--cluster");
        uint64_t leader = 0;
        int leaders = 0, n = count_lines(R.out);
        char f[10][256], term[256] = "";
        int same_term = 1;
        for (int i = 0; R.code == 0 && i < n; i++) {
            assert_int_equal(fields(i, f, 10), 10);
            if (!strcmp(f[4], "true")) {
                leaders++;
                leader = strtoull(f[1], NULL, 16);
            }
            if (i && strcmp(term, f[6]))
                same_term = 0;
            snprintf(term, sizeof term, "%s", f[6]);
        }
        if (R.code == 0 && leaders == 1 && same_term &&
            (!want || leader == want))
            return leader;
        if (cl_now_ms() >= end) {
            fprintf(stderr, "no single leader %" PRIx64 ":\n%s\n%s\n", want,
                    R.out, R.err);
            fail();
        }
        cl_poll_sleep();
    }
}

/* ---- a member started by hand -------------------------------------------- */


/* The cluster's --initial-cluster-token, read from member 0's command
 * line: skiffd derives a member's ID from the token and its peer URL, so
 * a member joining the cluster must use the same one, and the harness
 * does not export it. */
static void cluster_token(char *out, size_t cap)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)cl_pid(0));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    out[0] = 0;
    for (size_t off = 0; off < n; off += strlen(buf + off) + 1)
        if (!strcmp(buf + off, "--initial-cluster-token") &&
            off + strlen(buf + off) + 1 < n)
            snprintf(out, cap, "%s", buf + off + strlen(buf + off) + 1);
    assert_true(out[0] != 0);
}

/* Starts skiffd with the flags `member add` printed (the "--" lines of
 * R.out) plus what is this machine's business: data dir, client URLs,
 * the peer listener, test timings and the cluster token. */
static void start_added(const char *skiffd, int client_port, int peer_port)
{
    static char lines[OUT_CAP];
    snprintf(lines, sizeof lines, "%s", R.out);
    const char *argv[32] = {skiffd};
    int n = 1;
    char *save = NULL;
    for (char *t = strtok_r(lines, "\n", &save); t && n < 16;
         t = strtok_r(NULL, "\n", &save))
        if (!strncmp(t, "--", 2))
            argv[n++] = t;
    assert_int_equal(n, 5); /* name, cluster, peer URLs, state */
    static char dd[300], lc[64], ac[64], lp[64], tok[160], log[300];
    char token[128];
    cluster_token(token, sizeof token);
    assert_int_equal(tu_tmpdir(X.dir, sizeof X.dir), 0);
    snprintf(dd, sizeof dd, "--data-dir=%s/data", X.dir);
    snprintf(lc, sizeof lc, "--listen-client-urls=127.0.0.1:%d", client_port);
    snprintf(ac, sizeof ac, "--advertise-client-urls=http://127.0.0.1:%d",
             client_port);
    snprintf(lp, sizeof lp, "--listen-peer-urls=http://127.0.0.1:%d",
             peer_port);
    snprintf(tok, sizeof tok, "--initial-cluster-token=%s", token);
    snprintf(log, sizeof log, "%s/log", X.dir);
    snprintf(X.endpoint, sizeof X.endpoint, "127.0.0.1:%d", client_port);
    const char *more[] = {dd,
                          lc,
                          ac,
                          lp,
                          tok,
                          "--heartbeat-interval=50",
                          "--election-timeout=500",
                          "--log-level=warn",
                          NULL};
    for (int i = 0; more[i]; i++)
        argv[n++] = more[i];
    argv[n] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    X.pid = fork();
    assert_true(X.pid >= 0);
    if (X.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(skiffd, (char *const *)argv);
        _exit(127);
    }
    close(fd);
}

/* Prints the hand-started member's log. */
static void dump_added_log(void)
{
    char path[300], buf[8192];
    snprintf(path, sizeof path, "%s/log", X.dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    fprintf(stderr, "the added member's log:\n%s\n", buf);
}

/* Fails the test when the hand-started member has exited. */
static void assert_added_running(void)
{
    if (waitpid(X.pid, NULL, WNOHANG) == 0)
        return;
    X.pid = 0;
    fprintf(stderr, "the added member exited\n");
    dump_added_log();
    fail();
}

static void stop_added(void)
{
    if (X.pid > 0) {
        kill(X.pid, SIGKILL);
        waitpid(X.pid, NULL, 0);
        X.pid = 0;
    }
    if (X.dir[0]) {
        tu_rmrf(X.dir);
        X.dir[0] = 0;
    }
}

/* ---- fixture ------------------------------------------------------------- */

static const char *skiffd_bin;

static int setup(void **state)
{
    (void)state;
    memset(&X, 0, sizeof X);
    cl_set_binary(skiffd_bin);
    if (cl_start(3) || cl_wait_leader(WAIT_MS) < 0) {
        cl_stop();
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_added();
    return cl_stop();
}

/* ---- tests --------------------------------------------------------------- */

static void test_view(void **state)
{
    (void)state;
    int li = cl_wait_leader(WAIT_MS);
    assert_true(li >= 0);
    const char *all = cl_endpoints();
    const char *one = cl_member_endpoint(0);
    char want[256], f[10][256];

    run(all, "member", "list");
    expect_code(0);
    assert_int_equal(count_lines(R.out), 3);
    for (int i = 0; i < 3; i++) {
        int l = member_line(cl_member_id(i));
        assert_true(l >= 0);
        assert_int_equal(fields(l, f, 6), 6);
        assert_string_equal(f[1], "started");
        assert_string_equal(f[2], cl_name(i));
        snprintf(want, sizeof want, "http://127.0.0.1:%d",
                 cl_member_peer_port(i));
        assert_string_equal(f[3], want);
        snprintf(want, sizeof want, "http://127.0.0.1:%d",
                 cl_member_client_port(i));
        assert_string_equal(f[4], want);
        assert_string_equal(f[5], "false");
    }
    run(one, "member", "list", "-w", "json");
    expect_code(0);
    assert_int_equal(count_of(R.out, "\"ID\":"), 3);
    assert_int_equal(count_of(R.out, "\"isLearner\""), 0);
    run(one, "member", "list", "-w", "table");
    expect_code(0);
    expect_has(R.out, "| IS LEARNER |");
    assert_int_equal(count_of(R.out, "| started |"), 3);

    /* Status of every member, from one endpoint: one leader, one term. */
    uint64_t leader = wait_status_leader(one, 0);
    assert_int_equal(leader, cl_member_id(li));
    assert_int_equal(count_lines(R.out), 3);
    run(one, "endpoint", "status", "--cluster", "-w", "json");
    expect_code(0);
    assert_int_equal(count_of(R.out, "{\"Endpoint\":"), 3);
    run(one, "endpoint", "status", "--cluster", "-w", "table");
    expect_code(0);
    expect_has(R.out, "| RAFT APPLIED INDEX | ERRORS |");

    /* Writes, then the same history hash everywhere. */
    for (int i = 0; i < 5; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        run(all, "put", k, "v");
        expect_code(0);
    }
    assert_true(cl_wait_applied(WAIT_MS) > 0);
    run(one, "endpoint", "hashkv", "--cluster");
    expect_code(0);
    assert_int_equal(count_lines(R.out), 3);
    char hash[256], rev[256];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fields(i, f, 3), 3);
        if (i) {
            assert_string_equal(f[1], hash);
            assert_string_equal(f[2], rev);
        }
        snprintf(hash, sizeof hash, "%s", f[1]);
        snprintf(rev, sizeof rev, "%s", f[2]);
    }
    assert_true(atoll(rev) >= 5); /* skiff's first write is revision 1 */
    run(one, "endpoint", "hashkv", "--cluster", "--rev", "3");
    expect_code(0);
    assert_int_equal(count_lines(R.out), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fields(i, f, 3), 3);
        assert_string_equal(f[2], "3");
    }
    run(one, "endpoint", "hashkv", "--cluster", "-w", "table");
    expect_code(0);
    expect_has(R.out, "| HASH REVISION |");
    run(one, "endpoint", "health", "--cluster");
    expect_code(0);
    assert_int_equal(count_of(R.out, " is healthy: "), 3);

    /* Errors from the store: exit 1 and a message naming the problem. */
    run(all, "member", "remove", "123456789abcdef");
    expect_code(1);
    expect_has(R.err, "Error: ");
    expect_has(R.err, "not found");
    snprintf(want, sizeof want, "%" PRIx64, cl_member_id((li + 1) % 3));
    run(all, "member", "promote", want);
    expect_code(1);
    expect_has(R.err, "learner");
    run(all, "move-leader", "123456789abcdef");
    expect_code(1);
    expect_has(R.err, "Error: ");
    snprintf(want, sizeof want, "--peer-urls=http://127.0.0.1:%d",
             cl_member_peer_port(1));
    run(all, "member", "add", "again", want);
    expect_code(1);
    expect_has(R.err, "Error: ");

    /* Usage errors: exit 128 before anything is sent. */
    run(all, "member", "add", "n9");
    expect_code(128);
    expect_has(R.err, "member peer urls not provided");
    run(all, "member", "add", "n9", "http://127.0.0.1:1");
    expect_code(128);
    expect_has(R.err, "did you mean --peer-urls=http://127.0.0.1:1");
    run(all, "member", "add");
    expect_code(128);
    run(all, "member", "remove", "zz");
    expect_code(128);
    expect_has(R.err, "expecting ID in Hex");
    run(all, "member", "promote");
    expect_code(128);
    expect_has(R.err, "member ID is not provided");
    run(all, "move-leader");
    expect_code(128);
    run(all, "move-leader", "zz");
    expect_code(128);

    /* Nothing of that changed the membership. */
    run(all, "member", "list");
    expect_code(0);
    assert_int_equal(count_lines(R.out), 3);
    assert_int_equal(count_of(R.out, ", started, "), 3);
}

static void test_move_leader(void **state)
{
    (void)state;
    int li = cl_wait_leader(WAIT_MS);
    assert_true(li >= 0);
    const char *all = cl_endpoints();
    char want[256], idhex[32];
    uint64_t old = cl_member_id(li), to = cl_member_id((li + 1) % 3);
    snprintf(idhex, sizeof idhex, "%" PRIx64, to);
    run(all, "move-leader", idhex);
    expect_code(0);
    snprintf(want, sizeof want,
             "Leadership transferred from %" PRIx64 " to %s\n", old, idhex);
    assert_string_equal(R.out, want);
    assert_int_equal(wait_status_leader(all, to), to);
    /* Back, given only the third member's endpoint, which is not the
     * leader: skiffctl finds the leader's URL in the member list. */
    snprintf(idhex, sizeof idhex, "%" PRIx64, old);
    run(cl_member_endpoint((li + 2) % 3), "move-leader", idhex, "-w", "json");
    expect_code(0);
    snprintf(want, sizeof want, "\"member_id\":%" PRIu64 ",", to);
    expect_has(R.out, want); /* answered by the leader it left */
    assert_int_equal(wait_status_leader(all, old), old);
    /* To the leader itself: nothing to transfer, still the leader. */
    run(all, "move-leader", idhex);
    assert_int_equal(wait_status_leader(all, old), old);
}

static void test_membership(void **state)
{
    (void)state;
    int li = cl_wait_leader(WAIT_MS);
    assert_true(li >= 0);
    const char *all = cl_endpoints();
    char cid[32], want[512], idhex[32], f[10][256];
    cluster_id_hex(all, cid, sizeof cid);

    /* Add a learner. */
    int cport = cl_reserve_port(), pport = cl_reserve_port();
    char peer[64], flag[96];
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pport);
    snprintf(flag, sizeof flag, "--peer-urls=%s", peer);
    run(all, "member", "add", "n9", flag, "--learner");
    expect_code(0);
    uint64_t id = 0;
    assert_int_equal(sscanf(R.out, "Member %" SCNx64, &id), 1);
    assert_true(id != 0);
    snprintf(idhex, sizeof idhex, "%" PRIx64, id);
    snprintf(want, sizeof want,
             "Member %s added as learner to cluster %s\n\n--name=n9\n", idhex,
             cid);
    assert_true(!strncmp(R.out, want, strlen(want)));
    snprintf(want, sizeof want, "n9=%s", peer);
    expect_has(R.out, want);
    snprintf(want, sizeof want, "%s=http://127.0.0.1:%d", cl_name(0),
             cl_member_peer_port(0));
    expect_has(R.out, want);
    snprintf(want, sizeof want, "\n--initial-advertise-peer-urls=%s\n", peer);
    expect_has(R.out, want);
    expect_has(R.out, "\n--initial-cluster-state=existing\n");
    static char added[OUT_CAP];
    memcpy(added, R.out, sizeof added);

    /* Known to the cluster, not started yet. */
    run(all, "member", "list");
    expect_code(0);
    assert_int_equal(count_lines(R.out), 4);
    int l = member_line(id);
    assert_true(l >= 0);
    fields(l, f, 6);
    assert_string_equal(f[1], "unstarted");
    assert_string_equal(f[2], "");
    assert_string_equal(f[3], peer);
    assert_string_equal(f[5], "true");

    /* Start it with the printed flags; it publishes its name. */
    memcpy(R.out, added, sizeof added);
    start_added(skiffd_bin ? skiffd_bin : "skiffd", cport, pport);
    int64_t end = cl_now_ms() + WAIT_MS;
    for (;;) {
        run(all, "member", "list");
        l = R.code == 0 ? member_line(id) : -1;
        if (l >= 0 && fields(l, f, 6) == 6 && !strcmp(f[1], "started"))
            break;
        if (cl_now_ms() >= end) {
            fprintf(stderr, "never started:\n%s%s\n", R.out, R.err);
            dump_added_log();
            fail();
        }
        assert_added_running();
        cl_poll_sleep();
    }
    assert_string_equal(f[2], "n9");
    assert_string_equal(f[5], "true");
    snprintf(want, sizeof want, "http://127.0.0.1:%d", cport);
    assert_string_equal(f[4], want);
    run(X.endpoint, "endpoint", "status");
    expect_code(0);
    fields(0, f, 10);
    assert_string_equal(f[1], idhex);
    assert_string_equal(f[5], "true"); /* IS LEARNER */

    /* Promote, once it has caught up. */
    end = cl_now_ms() + WAIT_MS;
    for (;;) {
        run(all, "member", "promote", idhex);
        if (R.code == 0)
            break;
        expect_code(1);
        expect_has(R.err, "in sync with leader");
        assert_true(cl_now_ms() < end);
        cl_poll_sleep();
    }
    snprintf(want, sizeof want, "Member %s promoted in cluster %s\n", idhex,
             cid);
    assert_string_equal(R.out, want);
    run(all, "member", "list");
    expect_code(0);
    l = member_line(id);
    assert_true(l >= 0);
    fields(l, f, 6);
    assert_string_equal(f[5], "false");
    run(all, "member", "promote", idhex);
    expect_code(1);
    expect_has(R.err, "learner");

    /* Leadership to the new member, then back through a follower alone:
     * skiffctl must look the leader up from that one endpoint. */
    uint64_t old = cl_member_id(li);
    run(all, "move-leader", idhex);
    expect_code(0);
    snprintf(want, sizeof want,
             "Leadership transferred from %" PRIx64 " to %s\n", old, idhex);
    assert_string_equal(R.out, want);
    assert_int_equal(wait_status_leader(all, id), id);
    assert_int_equal(count_lines(R.out), 4);
    const char *follower = cl_member_endpoint((li + 1) % 3);
    snprintf(want, sizeof want, "%" PRIx64, old);
    run(follower, "move-leader", want);
    expect_code(0);
    snprintf(want, sizeof want,
             "Leadership transferred from %s to %" PRIx64 "\n", idhex, old);
    assert_string_equal(R.out, want);
    assert_int_equal(wait_status_leader(all, old), old);

    /* Remove it again. */
    run(all, "member", "remove", idhex);
    expect_code(0);
    snprintf(want, sizeof want, "Member %s removed from cluster %s\n", idhex,
             cid);
    assert_string_equal(R.out, want);
    run(all, "member", "list");
    expect_code(0);
    assert_int_equal(count_lines(R.out), 3);
    assert_int_equal(member_line(id), -1);
    run(all, "member", "remove", idhex);
    expect_code(1);
    expect_has(R.err, "not found");
    stop_added();
    assert_true(cl_wait_leader(WAIT_MS) >= 0);
    run(all, "endpoint", "health", "--cluster");
    expect_code(0);
    assert_int_equal(count_of(R.out, " is healthy: "), 3);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <skiffctl> <skiffd>\n", argv[0]);
        return 2;
    }
    ctl_bin = argv[1];
    skiffd_bin = argv[2];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
