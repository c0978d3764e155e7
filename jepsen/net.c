/*
 * The network of the cluster under test.  Each member lives in its own
 * network namespace "<prefix>n<i>" with one interface eth0, the far end of
 * a veth pair whose root end "<prefix>v<i>" is enslaved to the bridge
 * "<prefix>b".  The bridge holds 10.231.<subnet>.1 in the root namespace,
 * so clients of the runner reach every member, and members reach each
 * other only through the bridge: nothing leaves the machine.
 *
 * The prefix is "sj<pid>", so parallel runs never share a name; the
 * subnet is chosen under a lock file among the /24s nobody uses yet.
 * Faults are applied inside the members' namespaces: iptables INPUT DROP
 * rules for partitions (so a client in the root namespace can still talk
 * to an isolated member, which is what makes stale reads observable), and
 * for loss, delay, duplication and reordering an iptables OUTPUT rule that
 * hands eth0's outgoing packets to NFQUEUE, where jepsen-netq (netq.c), a
 * userspace netem started in that namespace, holds, drops or duplicates
 * them.  The rule has --queue-bypass, so traffic flows whenever no
 * jepsen-netq is bound.  Setup probes that this works; where it does not
 * (no NFQUEUE), the run says so loudly, marks results.json
 * ("netem_fallback") and the nemesis can only drop 20 % of incoming peer
 * traffic with iptables' statistic match.  Deleting a namespace removes
 * its rules, veth and any process left in it, which makes teardown total.
 */
#include "jepsen_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netq.h"

#define LOCK_PATH "/run/skiff-jepsen.lock"

static int probe_netem(jr_run *r);

static int pick_subnet(jr_run *r)
{
    char out[65536];
    if (jr_sh_out(out, sizeof out, "ip -o -4 addr show 2>/dev/null") != 0)
        return -1;
    for (int k = 0; k < 200; k++) {
        int s = 20 + (int)((getpid() + k) % 200);
        char pat[32];
        snprintf(pat, sizeof pat, " 10.231.%d.", s);
        if (!strstr(out, pat)) {
            r->subnet = s;
            return 0;
        }
    }
    return -1;
}

int jr_net_setup(jr_run *r)
{
    int lk = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk < 0 || flock(lk, LOCK_EX)) {
        fprintf(stderr, "jepsen: lock %s: %s\n", LOCK_PATH, strerror(errno));
        return -1;
    }
    int rc = -1;
    if (pick_subnet(r)) {
        fprintf(stderr, "jepsen: no free 10.231.x.0/24 subnet\n");
        goto out;
    }
    for (int i = 0; i < r->n; i++) {
        jr_node *nd = &r->nodes[i];
        jr_fmt(nd->ip, sizeof nd->ip, "10.231.%d.%d", r->subnet, i + 2);
        jr_fmt(nd->endpoint, sizeof nd->endpoint, "%s:%d", nd->ip,
               JR_CLIENT_PORT);
        jr_fmt(nd->peer_url, sizeof nd->peer_url, "http://%s:%d", nd->ip,
               JR_PEER_PORT);
    }
    r->net_ready = 1; /* from here teardown has something to undo */
    if (jr_sh(r,
              "ip link add %s type bridge && ip link set %s up && "
              "ip addr add 10.231.%d.1/24 dev %s",
              r->bridge, r->bridge, r->subnet, r->bridge)) {
        fprintf(stderr, "jepsen: cannot create bridge %s (see %s/cmd.log)\n",
                r->bridge, r->dir);
        goto out;
    }
    for (int i = 0; i < r->n; i++) {
        jr_node *nd = &r->nodes[i];
        if (jr_sh(r,
                  "ip netns add %s && ip link add %s type veth peer name "
                  "%sp%d && ip link set %s master %s up && "
                  "ip link set %sp%d netns %s && "
                  "ip -n %s link set %sp%d name eth0 && "
                  "ip -n %s addr add %s/24 dev eth0 && "
                  "ip -n %s link set eth0 up && ip -n %s link set lo up",
                  nd->ns, nd->veth, r->prefix, i + 1, nd->veth, r->bridge,
                  r->prefix, i + 1, nd->ns, nd->ns, r->prefix, i + 1, nd->ns,
                  nd->ip, nd->ns, nd->ns)) {
            fprintf(stderr,
                    "jepsen: cannot set up namespace %s (see %s/cmd.log)\n",
                    nd->ns, r->dir);
            goto out;
        }
    }
    /* A probe of the fault tools now, so a run never believes it injected
     * a fault it could not: iptables must work inside a namespace. */
    if (jr_sh(r, "ip netns exec %s iptables -S INPUT", r->nodes[0].ns)) {
        fprintf(stderr, "jepsen: iptables does not work in namespaces\n");
        goto out;
    }
    if ((r->nemeses & JR_NEM_NETEM) && probe_netem(r)) {
        r->netem_fallback = 1;
        fprintf(stderr,
                "jepsen: WARNING: jepsen-netq cannot queue packets in a "
                "namespace (NFQUEUE; see %s/cmd.log and %s.netq.log); the "
                "netem nemesis falls back to 20%% iptables loss, without "
                "delay, duplication or reordering\n",
                r->dir, r->nodes[0].name);
        jr_log(r, "NETEM FALLBACK: jepsen-netq unusable, iptables loss only");
    }
    rc = 0;
out:
    flock(lk, LOCK_UN);
    close(lk);
    return rc;
}

static void kill_ns_pids(const char *ns)
{
    char cmd[128], out[4096];
    snprintf(cmd, sizeof cmd, "ip netns pids %s 2>/dev/null", ns);
    if (jr_sh_out(out, sizeof out, "%s", cmd) < 0)
        return;
    for (char *s = strtok(out, "\n"); s; s = strtok(NULL, "\n")) {
        pid_t p = (pid_t)atoi(s);
        if (p > 1) {
            kill(p, SIGCONT);
            kill(p, SIGKILL);
        }
    }
}

void jr_net_teardown(jr_run *r)
{
    if (!r->net_ready)
        return;
    for (int i = 0; i < r->n; i++) {
        /* A jepsen-netq still running lives in the namespace too. */
        kill_ns_pids(r->nodes[i].ns);
        jr_sh(r, "ip netns del %s", r->nodes[i].ns);
        jr_sh(r, "ip link del %s 2>/dev/null; true", r->nodes[i].veth);
    }
    jr_sh(r, "ip link del %s", r->bridge);
    r->net_ready = 0;
}

/* A runner that died but was not reaped yet is a zombie: dead for us. */
static int runner_alive(int pid)
{
    if (kill(pid, 0))
        return 0;
    char p[64], st[256];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = 0;
    const char *e = strrchr(st, ')');
    return !(e && e[1] == ' ' && e[2] == 'Z');
}

int jr_net_cleanup_stale(int all)
{
    char out[65536];
    int removed = 0;
    if (jr_sh_out(out, sizeof out, "ip netns list 2>/dev/null") < 0)
        return 0;
    char *save = NULL;
    for (char *s = strtok_r(out, "\n", &save); s;
         s = strtok_r(NULL, "\n", &save)) {
        int pid = 0, idx = 0;
        char name[64];
        if (sscanf(s, "%63s", name) != 1 ||
            sscanf(name, "sj%dn%d", &pid, &idx) != 2)
            continue;
        /* A live runner owns its namespaces; leave them alone. */
        if (!all && runner_alive(pid))
            continue;
        kill_ns_pids(name);
        jr_sh(NULL, "ip netns del %s", name);
        removed++;
    }
    if (jr_sh_out(out, sizeof out, "ip -o link show 2>/dev/null") < 0)
        return removed;
    save = NULL;
    for (char *s = strtok_r(out, "\n", &save); s;
         s = strtok_r(NULL, "\n", &save)) {
        int num, pid;
        char name[64], kind;
        if (sscanf(s, "%d: %63[^:@]", &num, name) != 2 ||
            sscanf(name, "sj%d%c", &pid, &kind) != 2 ||
            (kind != 'b' && kind != 'v'))
            continue;
        if (!all && runner_alive(pid))
            continue;
        jr_sh(NULL, "ip link del %s", name);
    }
    return removed;
}

int jr_net_partition(jr_run *r, int grid[JR_MAX_NODES][JR_MAX_NODES])
{
    int rc = 0;
    for (int i = 0; i < r->n; i++) {
        char cmd[1024] = "";
        size_t o = 0;
        for (int j = 0; j < r->n; j++) {
            if (i == j || grid[i][j])
                continue;
            o += (size_t)snprintf(cmd + o, sizeof cmd - o,
                                  "%siptables -A INPUT -s %s -j DROP",
                                  o ? " && " : "", r->nodes[j].ip);
        }
        if (o && jr_sh(r, "ip netns exec %s sh -c '%s'", r->nodes[i].ns, cmd))
            rc = -1;
    }
    return rc;
}

int jr_net_heal(jr_run *r)
{
    int rc = 0;
    for (int i = 0; i < r->n; i++)
        if (jr_sh(r, "ip netns exec %s iptables -F INPUT", r->nodes[i].ns))
            rc = -1;
    return rc;
}

/* ---- netem: jepsen-netq -------------------------------------------------- */
/* One line of a jepsen-netq's output within timeout_ms; 0, or -1 on end of
 * file or timeout. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t o = 0;
    uint64_t end = jr_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    while (o + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = jr_now_ns();
        if (now >= end || poll(&p, 1, (int)((end - now) / 1000000ULL) + 1) <= 0)
            return -1;
        if (read(fd, buf + o, 1) != 1)
            return -1;
        if (buf[o] == '\n')
            break;
        o++;
    }
    buf[o] = 0;
    return 0;
}

/* Stops member i's jepsen-netq with sig (SIGTERM: it lets its packets go
 * and prints its counters, which go to nemesis.log).  0, or -1 when it
 * had died or did not end properly. */
static int netq_stop(jr_run *r, int i, int sig, long *packets)
{
    jr_node *nd = &r->nodes[i];
    if (!nd->netq_pid)
        return 0;
    char line[256] = "";
    kill(nd->netq_pid, sig);
    int got = sig == SIGTERM &&
              !read_line(nd->netq_out, line, sizeof line, 5000) &&
              !strncmp(line, JR_NETQ_STATS " ", strlen(JR_NETQ_STATS) + 1);
    if (!got)
        kill(nd->netq_pid, SIGKILL);
    int st = 0;
    waitpid(nd->netq_pid, &st, 0);
    close(nd->netq_out);
    nd->netq_pid = 0;
    nd->netq_out = -1;
    if (got && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        const char *c = line + strlen(JR_NETQ_STATS) + 1;
        if (packets && !strncmp(c, "packets=", 8))
            *packets = atol(c + 8);
        jr_log(r, "netq %s: %s%s", nd->name, c,
               !strncmp(c, "packets=0 ", 10) ? " (NO PACKET QUEUED)" : "");
        return 0;
    }
    if (sig == SIGTERM)
        jr_log(r, "netq %s FAILED: %s %d (see %s.netq.log)", nd->name,
               WIFSIGNALED(st) ? "signal" : "status",
               WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), nd->name);
    return -1;
}

/* Starts jepsen-netq in member i's namespace (forked and exec'd like a
 * member) and waits for it to bind its queue. */
static int netq_start(jr_run *r, int i, const char *spec, uint64_t seed)
{
    jr_node *nd = &r->nodes[i];
    char words[256], seeds[32], queue[16], nspath[PATH_MAX],
        logp[PATH_MAX + 32], line[128];
    const char *argv[32];
    int a = 0;
    snprintf(words, sizeof words, "%s", spec);
    snprintf(seeds, sizeof seeds, "%llu", (unsigned long long)seed);
    snprintf(queue, sizeof queue, "%d", JR_NETQ_QUEUE);
    argv[a++] = r->netq;
    argv[a++] = "--queue";
    argv[a++] = queue;
    argv[a++] = "--seed";
    argv[a++] = seeds;
    char *save = NULL;
    for (char *w = strtok_r(words, " ", &save); w && a < 31;
         w = strtok_r(NULL, " ", &save))
        argv[a++] = w;
    argv[a] = NULL;
    snprintf(nspath, sizeof nspath, "/var/run/netns/%s", nd->ns);
    snprintf(logp, sizeof logp, "%s/%s.netq.log", r->dir, nd->name);
    int pfd[2] = {-1, -1};
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (nsfd < 0 || logfd < 0 || pipe2(pfd, O_CLOEXEC))
        goto err;
    {
        char hdr[512];
        int k = snprintf(hdr, sizeof hdr,
                         "==== jepsen: netq %s (seed %s) at %.3f s\n", spec,
                         seeds, (double)jr_rel_ns(r) / 1e9);
        if (write(logfd, hdr, (size_t)k) < 0)
            (void)0;
    }
    pid_t pid = fork();
    if (pid < 0)
        goto err;
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        if (setns(nsfd, CLONE_NEWNET))
            _exit(120);
        dup2(pfd[1], 1);
        dup2(logfd, 2);
        setpgid(0, 0); /* a ^C to the runner must not hit it first */
        execv(r->netq, (char *const *)argv);
        _exit(127);
    }
    close(nsfd);
    close(logfd);
    close(pfd[1]);
    nd->netq_pid = pid;
    nd->netq_out = pfd[0];
    if (read_line(pfd[0], line, sizeof line, 5000) ||
        strncmp(line, JR_NETQ_READY, strlen(JR_NETQ_READY))) {
        netq_stop(r, i, SIGKILL, NULL);
        jr_log(r, "netq %s did not start (see %s.netq.log)", nd->name,
               nd->name);
        return -1;
    }
    return 0;
err:
    jr_log(r, "netq %s: %s", nd->name, strerror(errno));
    if (nsfd >= 0)
        close(nsfd);
    if (logfd >= 0)
        close(logfd);
    if (pfd[0] >= 0) {
        close(pfd[0]);
        close(pfd[1]);
    }
    return -1;
}

int jr_net_netem(jr_run *r, int i, const char *spec, uint64_t seed)
{
    if (r->netem_fallback) {
        /* No NFQUEUE: the closest honest substitute is random loss of
         * peer traffic by iptables' statistic match (clients on the
         * bridge address are spared). */
        return jr_sh(r,
                     "ip netns exec %s sh -c 'iptables -A INPUT -s 10.231.%d.1 "
                     "-j ACCEPT && iptables -A INPUT -m statistic --mode "
                     "random --probability 0.2 -j DROP'",
                     r->nodes[i].ns, r->subnet)
                   ? -1
                   : 0;
    }
    if (r->nodes[i].netq_pid || netq_start(r, i, spec, seed))
        return -1;
    /* The queue is bound before the rule exists, so no packet meets a
     * rule without its program (it would pass unharmed anyway). */
    if (jr_sh(r,
              "ip netns exec %s iptables -I OUTPUT -o eth0 -m mark ! --mark "
              "%#x -j NFQUEUE --queue-num %d --queue-bypass",
              r->nodes[i].ns, JR_NETQ_MARK, JR_NETQ_QUEUE)) {
        netq_stop(r, i, SIGTERM, NULL);
        return -1;
    }
    return 0;
}

int jr_net_netem_clear(jr_run *r)
{
    int rc = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->netem_fallback) {
            jr_sh(r, "ip netns exec %s iptables -F INPUT", r->nodes[i].ns);
            continue;
        }
        if (!r->nodes[i].netq_pid)
            continue;
        /* Rule first, so new packets pass directly; then the program
         * lets what it holds go. */
        if (jr_sh(r, "ip netns exec %s iptables -F OUTPUT", r->nodes[i].ns))
            rc = -1;
        if (netq_stop(r, i, SIGTERM, NULL))
            rc = -1;
    }
    return rc;
}

/* Proves the netem path before the run relies on it: jepsen-netq binds
 * its queue in the first member's namespace, the rule goes in, and a
 * datagram sent from there to the bridge must pass through the program. */
static int probe_netem(jr_run *r)
{
    jr_node *nd = &r->nodes[0];
    long packets = 0;
    if (jr_net_netem(r, 0, "delay 1ms", r->seed))
        return -1;
    char nspath[PATH_MAX];
    snprintf(nspath, sizeof nspath, "/var/run/netns/%s", nd->ns);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(nspath, O_RDONLY | O_CLOEXEC);
    int s = -1;
    /* Only this thread enters the namespace, and only for socket(). */
    if (self >= 0 && there >= 0 && !setns(there, CLONE_NEWNET)) {
        s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (setns(self, CLONE_NEWNET)) {
            fprintf(stderr, "jepsen: cannot return to the root namespace\n");
            abort();
        }
    }
    if (s >= 0) {
        struct sockaddr_in to = {.sin_family = AF_INET,
                                 .sin_port = htons(9)}; /* discard */
        char ip[32];
        snprintf(ip, sizeof ip, "10.231.%d.1", r->subnet);
        inet_pton(AF_INET, ip, &to.sin_addr);
        if (sendto(s, "netem probe", 11, 0, (struct sockaddr *)&to,
                   sizeof to) != 11)
            jr_log(r, "netem probe: send: %s", strerror(errno));
        close(s);
    }
    if (self >= 0)
        close(self);
    if (there >= 0)
        close(there);
    /* The queue took the datagram inside sendto(): the count is final. */
    int rc = jr_sh(r, "ip netns exec %s iptables -F OUTPUT", nd->ns);
    rc |= netq_stop(r, 0, SIGTERM, &packets);
    jr_log(r, "netem probe: %ld packet(s) went through jepsen-netq in %s",
           packets, nd->name);
    return rc || packets < 1 ? -1 : 0;
}
