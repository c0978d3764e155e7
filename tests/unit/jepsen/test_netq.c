/*
 * jepsen-netq (jepsen/netq.c), the netem nemesis's packet queue, measured
 * from outside.  Two network namespaces "nqt<pid>a" and "nqt<pid>b" are
 * joined by a veth pair; jepsen-netq runs in a with one setting at a time
 * behind the iptables NFQUEUE rule the runner uses, and the test sends UDP
 * from a to b.  Each setting must show at the receiver: a delay in the
 * one-way time and the echo's round trip, jitter and reordering as
 * sequence numbers out of order, duplication as repeated sequence
 * numbers, loss as missing ones, each within a band that a queue doing
 * nothing could not reach.  Counts use statistical bands of about six
 * standard deviations, so a correct queue fails about never.
 *
 * Both ends live in this process: sockets are opened inside a namespace
 * by entering it with setns() and coming back, and every wait is a poll()
 * with a timeout.  The group teardown deletes both namespaces (their veth
 * and iptables rules go with them); each test's teardown stops the queue
 * program and flushes the rule, also after a failed assertion; SIGINT,
 * SIGTERM and SIGHUP delete the namespaces too.  A test killed harder
 * leaves names with its pid, which the next run removes, and the queue
 * program ends with its parent.
 * Needs root (namespaces, iptables, NFQUEUE).
 */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netq.h"
#include "tu.h"

#ifndef JT_NETQ
#define JT_NETQ "jepsen-netq"
#endif

#define ADDR_A "10.231.250.1" /* outside the runner's 10.231.20-219 */
#define ADDR_B "10.231.250.2"
#define PORT 7000
#define MAXN 400
#define SLACK_MS 40.0 /* scheduling and sanitizers on a busy machine */

typedef struct fx {
    char a[32], b[32];
    int tx, rx; /* UDP: tx in a, rx in b (port PORT) */
    pid_t netq;
    int out; /* netq's standard output */
    char stats[256];
    uint64_t seed;
} fx;

static fx the_fx;

/* What a stream of datagrams a -> b looked like at b. */
typedef struct stream {
    int n;          /* sent */
    int distinct;   /* sequence numbers that arrived */
    int dups;       /* arrivals beyond the first of a number */
    int inversions; /* arrivals below the highest number seen before */
    int counts[MAXN];
    double owd_ms[MAXN]; /* one-way time of the first arrival */
} stream;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512], full[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
    int st = system(full);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int open_ns(const char *ns)
{
    char p[64];
    snprintf(p, sizeof p, "/var/run/netns/%s", ns);
    return open(p, O_RDONLY | O_CLOEXEC);
}

/* A socket created inside namespace ns; this thread stays where it was. */
static int socket_in(const char *ns, int type, int proto)
{
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open_ns(ns);
    int s = -1;
    if (self >= 0 && there >= 0 && !setns(there, CLONE_NEWNET)) {
        s = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
        if (setns(self, CLONE_NEWNET)) {
            fprintf(stderr, "test_netq: cannot return to own netns\n");
            abort();
        }
    }
    if (self >= 0)
        close(self);
    if (there >= 0)
        close(there);
    return s;
}

static struct sockaddr_in addr(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

/* Removes namespaces of earlier runs of this test that died hard. */
static void remove_stale(void)
{
    FILE *p = popen("ip netns list 2>/dev/null", "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        int pid;
        char side;
        if (sscanf(line, "nqt%d%c", &pid, &side) == 2 &&
            (side == 'a' || side == 'b') && kill(pid, 0) && errno == ESRCH)
            sh("ip netns del nqt%d%c", pid, side);
    }
    if (p)
        pclose(p);
}

/* ---- the queue program -------------------------------------------------- */
/* Reads one line of netq's output within timeout_ms.  0, or -1 on EOF or
 * timeout. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t o = 0;
    double end = now_ms() + timeout_ms;
    while (o + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(end - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t k = read(fd, buf + o, 1);
        if (k <= 0)
            return -1;
        if (buf[o] == '\n')
            break;
        o++;
    }
    buf[o] = 0;
    return 0;
}

/* Starts jepsen-netq in namespace a with `spec` (space-separated) and
 * waits for it to bind its queue.  Returns its pid, or -1; `out` gets its
 * standard output. */
static pid_t spawn_netq(fx *f, const char *spec, int *out)
{
    char words[256], seed[32];
    const char *argv[24];
    int a = 0;
    snprintf(words, sizeof words, "%s", spec);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)f->seed++);
    argv[a++] = JT_NETQ;
    argv[a++] = "--seed";
    argv[a++] = seed;
    for (char *s = strtok(words, " "); s && a < 23; s = strtok(NULL, " "))
        argv[a++] = s;
    argv[a] = NULL;
    int pfd[2];
    int nsfd = open_ns(f->a);
    if (nsfd < 0 || pipe2(pfd, O_CLOEXEC)) {
        if (nsfd >= 0)
            close(nsfd);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (setns(nsfd, CLONE_NEWNET))
            _exit(120);
        dup2(pfd[1], 1);
        execv(JT_NETQ, (char *const *)argv);
        _exit(127);
    }
    close(nsfd);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return -1;
    }
    *out = pfd[0];
    return pid;
}

/* Stops a netq: SIGTERM, its stats line into `stats`, reaped.  Returns
 * its exit status, or -1 when it had to be killed. */
static int reap_netq(pid_t pid, int out, char *stats, size_t cap, int sig)
{
    int st = 0, forced = 0;
    if (sig)
        kill(pid, sig);
    if (stats) {
        stats[0] = 0;
        if (read_line(out, stats, cap, 5000)) {
            kill(pid, SIGKILL);
            forced = 1;
        }
    }
    waitpid(pid, &st, 0);
    close(out);
    if (forced)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void netq_start(fx *f, const char *spec)
{
    char line[128];
    assert_int_equal(f->netq, 0);
    f->netq = spawn_netq(f, spec, &f->out);
    assert_true(f->netq > 0);
    if (read_line(f->out, line, sizeof line, 5000) ||
        strncmp(line, JR_NETQ_READY, strlen(JR_NETQ_READY)))
        fail_msg("jepsen-netq '%s' did not become ready", spec);
    assert_int_equal(sh("ip netns exec %s iptables -I OUTPUT -o eth0 -m mark "
                        "! --mark %#x -j NFQUEUE --queue-num %d "
                        "--queue-bypass",
                        f->a, JR_NETQ_MARK, JR_NETQ_QUEUE),
                     0);
}

/* Stops the queue program, leaving the rule in place (unless the
 * teardown flushes it). */
static void netq_stop(fx *f)
{
    pid_t pid = f->netq;
    f->netq = 0;
    int st = reap_netq(pid, f->out, f->stats, sizeof f->stats, SIGTERM);
    if (st)
        fail_msg("jepsen-netq ended with status %d, not 0 (-1: killed)", st);
    assert_true(!strncmp(f->stats, JR_NETQ_STATS, strlen(JR_NETQ_STATS)));
}

static long stat_of(const fx *f, const char *key)
{
    char pat[48];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *s = strstr(f->stats, pat);
    if (!s)
        fail_msg("no %s in '%s'", key, f->stats);
    return strtol(s + strlen(pat), NULL, 10);
}

/* ---- traffic ------------------------------------------------------------ */
/* Datagrams of 16 to 22 bytes: odd packet lengths, as TCP's are. */
typedef struct dgram {
    uint32_t seq;
    double sent_ms;
    char pad[8];
} dgram;
#define DGRAM_MIN 16

static void drain(int fd)
{
    char b[64];
    while (recv(fd, b, sizeof b, 0) > 0)
        ;
}

/* Sends n datagrams a -> b as fast as the socket takes them and collects
 * arrivals until every number came and then `quiet_ms` passed without
 * one, or `quiet_ms` passed without one (losses), or 20 s. */
static void send_stream(fx *f, int n, double quiet_ms, stream *r)
{
    struct sockaddr_in to = addr(ADDR_B, PORT);
    memset(r, 0, sizeof *r);
    r->n = n;
    int sent = 0;
    uint32_t top = 0;
    double last = now_ms(), end = last + 20000;
    for (;;) {
        double now = now_ms();
        if (now > end || (sent == n && now - last > quiet_ms))
            break;
        struct pollfd p[2] = {{.fd = f->rx, .events = POLLIN},
                              {.fd = f->tx, .events = POLLOUT}};
        int wait = (int)(quiet_ms - (now - last)) + 1;
        if (poll(p, sent < n ? 2 : 1, wait < 1 ? 1 : wait) < 0)
            assert_int_equal(errno, EINTR);
        if (sent < n && (p[1].revents & POLLOUT)) {
            dgram d = {.seq = (uint32_t)sent, .sent_ms = now_ms()};
            size_t len = DGRAM_MIN + (size_t)sent % 7;
            if (sendto(f->tx, &d, len, 0, (struct sockaddr *)&to, sizeof to) ==
                (ssize_t)len)
                sent++;
            last = now_ms();
        }
        dgram d;
        ssize_t k;
        while ((k = recv(f->rx, &d, sizeof d, 0)) >= DGRAM_MIN) {
            last = now_ms();
            assert_true(d.seq < (uint32_t)n);
            assert_int_equal(k, DGRAM_MIN + d.seq % 7);
            if (r->counts[d.seq]++) {
                r->dups++;
                continue;
            }
            r->distinct++;
            r->owd_ms[d.seq] = last - d.sent_ms;
            if (r->distinct > 1 && d.seq < top)
                r->inversions++;
            if (d.seq > top)
                top = d.seq;
        }
        if (sent == n && r->distinct == n && quiet_ms > 300)
            quiet_ms = 300; /* all here: only late duplicates remain */
    }
    assert_int_equal(sent, n);
}

/* One UDP echo a -> b -> a; its round trip in ms, or -1 when lost. */
static double echo(fx *f)
{
    struct sockaddr_in to = addr(ADDR_B, PORT), from;
    socklen_t fl = sizeof from;
    char b[16] = "echo";
    double t0 = now_ms();
    assert_int_equal(sendto(f->tx, b, 4, 0, (struct sockaddr *)&to, sizeof to),
                     4);
    struct pollfd p = {.fd = f->rx, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1)
        return -1;
    ssize_t k = recvfrom(f->rx, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    assert_int_equal(k, 4);
    assert_int_equal(
        sendto(f->rx, b, 4, 0, (struct sockaddr *)&from, sizeof from), 4);
    p.fd = f->tx;
    if (poll(&p, 1, 2000) != 1)
        return -1;
    assert_int_equal(recv(f->tx, b, sizeof b, 0), 4);
    return now_ms() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Round trips of k echoes, sorted. */
static void echoes(fx *f, int k, double *rtt)
{
    for (int i = 0; i < k; i++) {
        rtt[i] = echo(f);
        assert_true(rtt[i] >= 0);
    }
    qsort(rtt, (size_t)k, sizeof *rtt, cmp_double);
}

/* ---- fixtures ----------------------------------------------------------- */
/* Interrupted (^C, a timeout's SIGTERM): delete both namespaces, which
 * takes the rule and the veth with them, after killing the queue
 * program.  Only async-signal-safe calls. */
static void on_signal(int sig)
{
    char *const ns[] = {the_fx.a, the_fx.b};
    if (the_fx.netq > 0)
        kill(the_fx.netq, SIGKILL);
    for (int i = 0; i < 2; i++) {
        pid_t p = fork();
        if (p == 0) {
            execl("/usr/sbin/ip", "ip", "netns", "del", ns[i], (char *)NULL);
            execl("/sbin/ip", "ip", "netns", "del", ns[i], (char *)NULL);
            _exit(127);
        }
        if (p > 0)
            waitpid(p, NULL, 0);
    }
    _exit(128 + sig);
}

static int group_setup(void **state)
{
    fx *f = &the_fx;
    if (geteuid() != 0) {
        fprintf(stderr, "test_netq: needs root (network namespaces, "
                        "iptables, NFQUEUE)\n");
        return -1;
    }
    remove_stale();
    f->seed = tu_seed(0x6e6574710001ULL);
    printf("test_netq: seed %llu\n", (unsigned long long)f->seed);
    snprintf(f->a, sizeof f->a, "nqt%da", (int)getpid());
    snprintf(f->b, sizeof f->b, "nqt%db", (int)getpid());
    f->tx = f->rx = -1;
    if (sh("ip netns add %s && ip netns add %s && "
           "ip -n %s link add eth0 type veth peer name eth0 netns %s && "
           "ip -n %s addr add %s/24 dev eth0 && "
           "ip -n %s addr add %s/24 dev eth0 && "
           "ip -n %s link set eth0 up && ip -n %s link set eth0 up && "
           "ip -n %s link set lo up && ip -n %s link set lo up",
           f->a, f->b, f->a, f->b, f->a, ADDR_A, f->b, ADDR_B, f->a, f->b, f->a,
           f->b)) {
        fprintf(stderr, "test_netq: cannot set up namespaces\n");
        goto err;
    }
    f->tx = socket_in(f->a, SOCK_DGRAM, 0);
    f->rx = socket_in(f->b, SOCK_DGRAM, 0);
    struct sockaddr_in me = addr("0.0.0.0", PORT);
    int big = 4 << 20;
    if (f->tx < 0 || f->rx < 0 ||
        bind(f->rx, (struct sockaddr *)&me, sizeof me) ||
        setsockopt(f->tx, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) ||
        setsockopt(f->rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big)) {
        fprintf(stderr, "test_netq: sockets: %s\n", strerror(errno));
        goto err;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    *state = f;
    return 0;
err:
    if (f->tx >= 0)
        close(f->tx);
    if (f->rx >= 0)
        close(f->rx);
    sh("ip netns del %s", f->a);
    sh("ip netns del %s", f->b);
    return -1;
}

static int group_teardown(void **state)
{
    fx *f = *state;
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    close(f->tx);
    close(f->rx);
    int rc = sh("ip netns del %s", f->a) | sh("ip netns del %s", f->b);
    /* Nothing may be left: not even a name. */
    if (!sh("ip netns list | grep -q '^nqt%d'", (int)getpid()))
        rc = -1;
    return rc ? -1 : 0;
}

static int setup(void **state)
{
    fx *f = *state;
    f->netq = 0;
    f->stats[0] = 0;
    return 0;
}

/* Stops a queue program a failed test left running, and removes the
 * rule; fails when either was left behind by a test that passed. */
static int teardown(void **state)
{
    fx *f = *state;
    int rc = 0;
    if (f->netq) {
        reap_netq(f->netq, f->out, NULL, 0, SIGKILL);
        f->netq = 0;
        rc = -1;
    }
    if (sh("ip netns exec %s iptables -F OUTPUT", f->a))
        rc = -1;
    drain(f->tx);
    drain(f->rx);
    return rc;
}

/* ---- tests -------------------------------------------------------------- */
/* A bad spec is refused before anything is set up (exit status 2). */
static void test_bad_spec(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {
        "delay",       "delay 50",          "delay 50ms foo",
        "loss 120%",   "reorder 10%",       "duplicate",
        "jitter 10ms", "distribution wavy", "delay -1ms"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int out;
        pid_t pid = spawn_netq(f, bad[i], &out);
        assert_true(pid > 0);
        int st = reap_netq(pid, out, NULL, 0, 0);
        if (st != 2)
            fail_msg("spec '%s': exit status %d, want 2", bad[i], st);
    }
}

/* The nemesis's settings are accepted, and a queue with nothing queued
 * starts and stops cleanly. */
static void test_nemesis_specs(void **state)
{
    fx *f = *state;
    static const char *const specs[] = {
        "delay 50ms 40ms distribution normal", "loss 20%", "duplicate 30%",
        "delay 20ms reorder 30% 50%",
        "delay 30ms 20ms loss 5% duplicate 5% reorder 10%"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        netq_start(f, specs[i]);
        netq_stop(f);
        assert_int_equal(sh("ip netns exec %s iptables -F OUTPUT", f->a), 0);
    }
}

/* delay 50ms 0ms: every round trip at least 50 ms (only a -> b is
 * delayed), and not much more; none before, and none once the program is
 * gone although the rule stays (--queue-bypass). */
static void test_delay(void **state)
{
    fx *f = *state;
    double rtt[20];
    echoes(f, 20, rtt); /* also resolves the neighbours first */
    printf("no queue: rtt median %.2f ms\n", rtt[10]);
    assert_true(rtt[10] < 10);
    netq_start(f, "delay 50ms 0ms");
    echoes(f, 20, rtt);
    printf("delay 50ms: rtt min %.2f median %.2f max %.2f ms\n", rtt[0],
           rtt[10], rtt[19]);
    assert_true(rtt[0] >= 50);
    assert_true(rtt[10] < 50 + SLACK_MS);
    netq_stop(f);
    assert_true(stat_of(f, "delayed") >= 20);
    assert_int_equal(stat_of(f, "dropped"), 0);
    echoes(f, 10, rtt);
    printf("rule without program: rtt median %.2f ms\n", rtt[5]);
    assert_true(rtt[5] < 10);
}

/* delay 50ms 40ms (uniform): one-way times spread over 10..90 ms (a
 * stall of either process on a busy machine shifts them all, so the lower
 * end is checked for what netq guarantees and the rest as a spread), and
 * the stream arrives out of order; nothing is lost. */
static void test_jitter_uniform(void **state)
{
    fx *f = *state;
    stream s;
    netq_start(f, "delay 50ms 40ms");
    send_stream(f, 300, 1000, &s);
    netq_stop(f);
    double lo = 1e9, hi = 0;
    for (int i = 0; i < s.n; i++) {
        lo = fmin(lo, s.owd_ms[i]);
        hi = fmax(hi, s.owd_ms[i]);
    }
    printf("jitter uniform: %d of %d, one-way %.1f..%.1f ms, %d inversions\n",
           s.distinct, s.n, lo, hi, s.inversions);
    assert_int_equal(s.distinct, s.n);
    assert_int_equal(s.dups, 0);
    assert_true(lo >= 10);
    assert_true(hi - lo >= 50 && hi - lo < 80 + SLACK_MS);
    assert_true(s.inversions >= s.n / 10);
}

/* delay 50ms 10ms distribution normal: mean near 50 ms, deviation near
 * 10 ms, out of order. */
static void test_jitter_normal(void **state)
{
    fx *f = *state;
    stream s;
    netq_start(f, "delay 50ms 10ms distribution normal");
    send_stream(f, 300, 1000, &s);
    netq_stop(f);
    double sum = 0, sq = 0;
    for (int i = 0; i < s.n; i++) {
        sum += s.owd_ms[i];
        sq += s.owd_ms[i] * s.owd_ms[i];
    }
    double mean = sum / s.n, sd = sqrt(sq / s.n - mean * mean);
    printf("jitter normal: %d of %d, one-way mean %.1f sd %.1f ms, "
           "%d inversions\n",
           s.distinct, s.n, mean, sd, s.inversions);
    assert_int_equal(s.distinct, s.n);
    assert_true(mean >= 45 && mean < 50 + SLACK_MS);
    assert_true(sd >= 6 && sd < 20);
    assert_true(s.inversions >= s.n / 10);
}

/* delay 50ms reorder 50%: about half go at once and overtake the others,
 * which take at least 50 ms.  Every packet netq held took 50 ms or more,
 * and (but for a few that a stall made late) no other did. */
static void test_reorder(void **state)
{
    fx *f = *state;
    stream s;
    netq_start(f, "delay 50ms reorder 50%");
    send_stream(f, 300, 1000, &s);
    netq_stop(f);
    int late = 0;
    for (int i = 0; i < s.n; i++)
        late += s.owd_ms[i] >= 50;
    long held = stat_of(f, "delayed");
    printf("reorder 50%%: %d of %d took 50 ms or more, %d inversions; %s\n",
           late, s.n, s.inversions, f->stats);
    assert_int_equal(s.distinct, s.n);
    assert_int_equal(held + stat_of(f, "early"), s.n);
    assert_true(late >= held && late <= held + s.n / 10);
    assert_true(s.n - late >= 90 && s.n - late <= 210);
    assert_true(s.inversions >= 30);
}

/* duplicate 50%: every number arrives, about half of them twice. */
static void test_duplicate(void **state)
{
    fx *f = *state;
    stream s;
    netq_start(f, "duplicate 50%");
    send_stream(f, 400, 1000, &s);
    netq_stop(f);
    printf("duplicate 50%%: %d of %d, %d duplicates; %s\n", s.distinct, s.n,
           s.dups, f->stats);
    assert_int_equal(s.distinct, s.n);
    assert_true(s.dups >= 140 && s.dups <= 260);
    assert_int_equal(s.dups, stat_of(f, "duplicated"));
    for (int i = 0; i < s.n; i++)
        assert_true(s.counts[i] <= 2);
}

/* loss 50%: about half arrive, and netq's count of drops agrees. */
static void test_loss(void **state)
{
    fx *f = *state;
    stream s;
    netq_start(f, "loss 50%");
    send_stream(f, 400, 1000, &s);
    netq_stop(f);
    printf("loss 50%%: %d of %d arrived; %s\n", s.distinct, s.n, f->stats);
    assert_true(s.distinct >= 140 && s.distinct <= 260);
    assert_int_equal(s.dups, 0);
    assert_int_equal(stat_of(f, "packets"), s.n);
    assert_int_equal(stat_of(f, "dropped"), s.n - s.distinct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nemesis_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jitter_uniform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jitter_normal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
