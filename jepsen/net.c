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
 * tc netem on eth0 for loss, delay, duplication and reordering.  Deleting
 * a namespace removes its rules, qdiscs and veth, which makes teardown
 * total.
 */
#include "jepsen_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define LOCK_PATH "/run/skiff-jepsen.lock"

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
    if (jr_sh(r,
              "ip netns exec %s tc qdisc add dev eth0 root netem "
              "delay 1ms && ip netns exec %s tc qdisc del dev eth0 root",
              r->nodes[0].ns, r->nodes[0].ns))
        r->netem_fallback = 1;
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

int jr_net_netem(jr_run *r, int i, const char *spec)
{
    if (r->netem_fallback) {
        /* This kernel has no sch_netem: the closest honest substitute is
         * random loss of peer traffic by iptables' statistic match
         * (clients on the bridge address are spared). */
        return jr_sh(r,
                     "ip netns exec %s sh -c 'iptables -A INPUT -s 10.231.%d.1 "
                     "-j ACCEPT && iptables -A INPUT -m statistic --mode "
                     "random --probability 0.2 -j DROP'",
                     r->nodes[i].ns, r->subnet)
                   ? -1
                   : 0;
    }
    return jr_sh(r, "ip netns exec %s tc qdisc replace dev eth0 root netem %s",
                 r->nodes[i].ns, spec)
               ? -1
               : 0;
}

int jr_net_netem_clear(jr_run *r)
{
    for (int i = 0; i < r->n; i++) {
        if (r->netem_fallback)
            jr_sh(r, "ip netns exec %s iptables -F INPUT", r->nodes[i].ns);
        else
            jr_sh(r,
                  "ip netns exec %s tc qdisc del dev eth0 root 2>/dev/null;"
                  " true",
                  r->nodes[i].ns);
    }
    return 0;
}
