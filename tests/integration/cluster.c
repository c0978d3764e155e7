/*
 * N-member skiffd clusters for integration tests; see cluster.h.
 *
 * The harness keeps one global table of member slots.  A slot owns its
 * ports and data dir for the whole test, so a killed member restarts with
 * the same identity, and a removed member's slot is never reused (its
 * peer URL must not come back under another name).  Health questions
 * (who leads, what is applied) go through libskiff's Status and HashKV,
 * one cached blocking client per member so a poll costs no reconnect;
 * membership changes, which libskiff does not offer, go over the raw wire
 * protocol with srv.h's helpers.
 *
 * Waiting is always "poll a condition until a deadline": an election or a
 * process binding its port raises no event the test could wait on.
 */
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"
#include "tu.h"

#define ACCEPT_TIMEOUT_MS 30000 /* ASan start-up on a busy 2-core box */

typedef struct member {
    pid_t pid;
    int client_port, peer_port, metrics_port;
    int removed;
    uint64_t id;
    char name[16];
    char dir[320];
    char log[320];
    char endpoint[32];
    skiff_client *status_client; /* cached, for Status/HashKV polls */
} member;

static struct {
    char bin[512];
    char root[256];
    char token[64];
    cl_opts opts;
    int n;
    member m[CL_MAX];
    char endpoints[CL_MAX * 24];
    char initial[CL_MAX * 48];
} G;

int64_t cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cl_poll_sleep(void)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
}

/* First port of the kernel's ephemeral range (outgoing connections take
 * their local port from it). */
static int ephemeral_low(void)
{
    int lo = 32768, hi;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    return lo;
}

static int port_taken_here(int port)
{
    for (int i = 0; i < G.n + 1 && i < CL_MAX; i++)
        if (G.m[i].client_port == port || G.m[i].peer_port == port)
            return 1;
    return 0;
}

/* A port for a member to listen on, below the ephemeral range: a member
 * restarted after SIGKILL binds its ports again, and in the meantime the
 * hundreds of reconnecting clients and peers must not be able to take one
 * as the local port of an outgoing connection.  Random (seeded per
 * process) so parallel test processes rarely pick the same one, checked
 * free by binding it, and then kept bound for the life of this process:
 * a reservation.  The socket gets SO_REUSEADDR only after its bind and
 * never listens, so skiffd (libuv binds with SO_REUSEADDR) can listen on
 * the port, while another test process probing it (a plain bind) is
 * refused, also while a member of ours is down between a kill and its
 * restart.  -1 if none found. */
int cl_reserve_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)cl_now_ms();
    int hi = ephemeral_low(), lo = hi > 12000 ? hi - 10000 : 1024;
    for (int tries = 0; tries < 1000; tries++) {
        int port = lo + (int)(rand_r(&seed) % (unsigned)(hi - lo));
        if (port_taken_here(port))
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) {
            close(fd);
            continue;
        }
        return port; /* fd stays open: the reservation */
    }
    return -1;
}

static void rebuild_lists(void)
{
    size_t eo = 0, io = 0;
    G.endpoints[0] = G.initial[0] = 0;
    for (int i = 0; i < G.n; i++) {
        member *m = &G.m[i];
        if (m->removed)
            continue;
        eo += (size_t)snprintf(G.endpoints + eo, sizeof G.endpoints - eo,
                               "%s127.0.0.1:%d", eo ? "," : "", m->client_port);
        io += (size_t)snprintf(G.initial + io, sizeof G.initial - io,
                               "%s%s=http://127.0.0.1:%d", io ? "," : "",
                               m->name, m->peer_port);
    }
}

static void drop_client(member *m)
{
    skiff_client_destroy(m->status_client);
    m->status_client = NULL;
}

/* Prints the last ~3 KiB of a member's log: the reason it died. */
static void dump_log(const member *m)
{
    FILE *f = fopen(m->log, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, sz > 3072 ? sz - 3072 : 0, SEEK_SET);
    char buf[3100];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    fprintf(stderr, "---- tail of %s's log ----\n%s\n----\n", m->name, buf);
}

/* Reaps member i if it has exited; returns 1 when it is running. */
static int reap(int i)
{
    member *m = &G.m[i];
    if (m->pid <= 0)
        return 0;
    int st;
    if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
        fprintf(stderr, "cluster: %s (pid %d) exited: %s %d\n", m->name,
                (int)m->pid, WIFSIGNALED(st) ? "signal" : "status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            dump_log(m); /* not a kill the test sent: say why */
        m->pid = 0;
        drop_client(m);
        return 0;
    }
    return 1;
}

static int spawn(int i, const char *state)
{
    member *m = &G.m[i];
    char client[64], adv_client[64], peer[64], metrics[64], hb[16], el[16],
        sc[16];
    snprintf(client, sizeof client, "127.0.0.1:%d", m->client_port);
    snprintf(adv_client, sizeof adv_client, "http://127.0.0.1:%d",
             m->client_port);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", m->peer_port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", m->metrics_port);
    snprintf(hb, sizeof hb, "%d", G.opts.heartbeat_ms);
    snprintf(el, sizeof el, "%d", G.opts.election_ms);
    const char *lvl =
        G.opts.log_level ? G.opts.log_level : getenv("CL_LOG_LEVEL");
    /* Flag/value pairs, one per line. */
    // clang-format off
    const char *argv[64] = {G.bin,
                            "--name", m->name,
                            "--data-dir", m->dir,
                            "--listen-client-urls", client,
                            "--advertise-client-urls", adv_client,
                            "--listen-peer-urls", peer,
                            "--initial-advertise-peer-urls", peer,
                            "--initial-cluster", G.initial,
                            "--initial-cluster-state", state,
                            "--initial-cluster-token", G.token,
                            "--heartbeat-interval", hb,
                            "--election-timeout", el,
                            "--log-level", lvl ? lvl : "warn",
                            "--listen-metrics-urls", metrics};
    // clang-format on
    int n = 27;
    if (G.opts.snapshot_count > 0) {
        snprintf(sc, sizeof sc, "%d", G.opts.snapshot_count);
        argv[n++] = "--snapshot-count";
        argv[n++] = sc;
    }
    for (int k = 0; G.opts.extra && G.opts.extra[k] && n < 63; k++)
        argv[n++] = G.opts.extra[k];
    argv[n] = NULL;
    int logfd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        return -1;
    }
    if (pid == 0) {
        /* Never outlive the test, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execv(G.bin, (char *const *)argv);
        _exit(127);
    }
    close(logfd);
    m->pid = pid;
    return 0;
}

/* Polls until member i accepts a TCP connection on its client port. */
static int wait_accept(int i, int timeout_ms)
{
    member *m = &G.m[i];
    int64_t end = cl_now_ms() + timeout_ms;
    while (cl_now_ms() < end) {
        int fd = cli_connect(m->client_port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (!reap(i)) {
            dump_log(m);
            return -1;
        }
        cl_poll_sleep();
    }
    fprintf(stderr, "cluster: %s does not accept connections after %d ms\n",
            m->name, timeout_ms);
    dump_log(m);
    return -1;
}

static void init_slot(int i)
{
    member *m = &G.m[i];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "n%d", i + 1);
    /* Built from i, not m->name: GCC's -Wrestrict cannot tell that
     * m->name and m->dir are disjoint parts of G. */
    snprintf(m->dir, sizeof m->dir, "%s/n%d", G.root, i + 1);
    snprintf(m->log, sizeof m->log, "%s/n%d.log", G.root, i + 1);
    m->client_port = cl_reserve_port();
    m->peer_port = cl_reserve_port();
    m->metrics_port = cl_reserve_port();
    snprintf(m->endpoint, sizeof m->endpoint, "127.0.0.1:%d", m->client_port);
}

/* The cached Status client of member i (made on first use). */
static skiff_client *status_client(int i)
{
    member *m = &G.m[i];
    if (!m->status_client) {
        const char *ep[1] = {m->endpoint};
        skiff_config cfg = {.endpoints = ep,
                            .n_endpoints = 1,
                            .dial_timeout_ms = 500,
                            .request_timeout_ms = 1000,
                            .backoff_max_ms = 200};
        if (skiff_client_create(&m->status_client, &cfg))
            m->status_client = NULL;
    }
    return m->status_client;
}

/* Status of member i; 0 with *out filled (caller frees) or an error. */
static int member_status(int i, skiff_result *out)
{
    skiff_client *c = status_client(i);
    if (!c)
        return -ENOMEM;
    int rc = skiff_status(c, out);
    if (rc == 0 && out->header.member_id)
        G.m[i].id = out->header.member_id;
    return rc;
}

/* Members that count for agreement: running and not removed. */
static int counts(int i)
{
    return !G.m[i].removed && reap(i);
}

/* ---- raw membership calls ---- */

/* Sends r to member i over a fresh connection; returns the response or
 * NULL (connect failure or no answer). */
static Skiffpb__Response *raw_call(int i, const Skiffpb__Request *r)
{
    int fd = cli_connect(G.m[i].client_port);
    if (fd < 0)
        return NULL;
    Skiffpb__Response *resp = cli_call(fd, r);
    close(fd);
    return resp;
}

/* 0 when resp is a success of the expected body; else prints why. */
static int raw_ok(const char *what, Skiffpb__Response *resp,
                  Skiffpb__Response__BodyCase want)
{
    if (!resp) {
        fprintf(stderr, "cluster: %s: no response\n", what);
        return -1;
    }
    if (resp->error) {
        fprintf(stderr, "cluster: %s: %s: %s\n", what,
                api_code_name(resp->error->code),
                resp->error->message ? resp->error->message : "");
        return -1;
    }
    if (resp->body_case != want) {
        fprintf(stderr, "cluster: %s: unexpected body %d\n", what,
                (int)resp->body_case);
        return -1;
    }
    return 0;
}

/* The id of member i, asking it when the harness has not seen it yet. */
static uint64_t ensure_id(int i)
{
    if (!G.m[i].id && reap(i)) {
        skiff_result res = {0};
        member_status(i, &res);
        skiff_result_free(&res);
    }
    return G.m[i].id;
}

/* ---- public ---- */

void cl_set_binary(const char *skiffd)
{
    snprintf(G.bin, sizeof G.bin, "%s", skiffd);
}

int cl_start(int n)
{
    return cl_start_opts(n, NULL);
}

int cl_start_opts(int n, const cl_opts *o)
{
    if (n < 1 || n > CL_MAX || !G.bin[0])
        return -1;
    G.opts = o ? *o : (cl_opts){0};
    if (!G.opts.heartbeat_ms)
        G.opts.heartbeat_ms = 50;
    if (!G.opts.election_ms)
        G.opts.election_ms = 500;
    if (tu_tmpdir(G.root, sizeof G.root))
        return -1;
    /* A token per cluster, so members of two test clusters never join. */
    snprintf(G.token, sizeof G.token, "cl-%d-%" PRId64, (int)getpid(),
             cl_now_ms());
    G.n = n;
    for (int i = 0; i < n; i++)
        init_slot(i);
    rebuild_lists();
    for (int i = 0; i < n; i++)
        if (spawn(i, "new"))
            return -1;
    for (int i = 0; i < n; i++)
        if (wait_accept(i, ACCEPT_TIMEOUT_MS))
            return -1;
    return 0;
}

/* Lines of a log that a sanitizer wrote; returns how many. */
static int sanitizer_lines(const member *m)
{
    FILE *f = fopen(m->log, "r");
    if (!f)
        return 0;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "AddressSanitizer") || strstr(line, "LeakSanitizer") ||
            strstr(line, "runtime error:")) {
            if (found++ < 20)
                fprintf(stderr, "cluster: %s: %s", m->name, line);
        }
    fclose(f);
    return found;
}

int cl_stop(void)
{
    int bad = 0;
    for (int i = 0; i < G.n; i++) {
        member *m = &G.m[i];
        drop_client(m);
        if (m->pid > 0) {
            kill(m->pid, SIGKILL);
            waitpid(m->pid, NULL, 0);
            m->pid = 0;
        }
        if (sanitizer_lines(m))
            bad = 1;
    }
    /* CL_KEEP=1 keeps data dirs and logs for a post-mortem. */
    if (G.root[0] && getenv("CL_KEEP"))
        fprintf(stderr, "cluster: kept %s\n", G.root);
    else if (G.root[0])
        tu_rmrf(G.root);
    G.root[0] = 0;
    G.n = 0;
    return bad ? -1 : 0;
}

int cl_size(void)
{
    return G.n;
}
int cl_alive(int i)
{
    return i >= 0 && i < G.n && reap(i);
}
int cl_removed(int i)
{
    return G.m[i].removed;
}
pid_t cl_pid(int i)
{
    return G.m[i].pid;
}
const char *cl_name(int i)
{
    return G.m[i].name;
}
const char *cl_data_dir(int i)
{
    return G.m[i].dir;
}
const char *cl_log_path(int i)
{
    return G.m[i].log;
}
int cl_member_client_port(int i)
{
    return G.m[i].client_port;
}
int cl_metric(int i, const char *name, double *out)
{
    int fd = cli_connect(G.m[i].metrics_port);
    if (fd < 0)
        return -1;
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = strlen(req);
    if (write(fd, req, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    static char buf[65536];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof buf - 1 && (got = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = 0;
    close(fd);
    size_t nl = strlen(name);
    for (char *p = buf; (p = strstr(p, name)); p += nl)
        if ((p == buf || p[-1] == '\n') && p[nl] == ' ') {
            *out = strtod(p + nl + 1, NULL);
            return 0;
        }
    return -1;
}

int cl_member_peer_port(int i)
{
    return G.m[i].peer_port;
}
const char *cl_member_endpoint(int i)
{
    return G.m[i].endpoint;
}
uint64_t cl_member_id(int i)
{
    return ensure_id(i);
}
const char *cl_endpoints(void)
{
    return G.endpoints;
}
const char *cl_initial_cluster(void)
{
    return G.initial;
}
const char *cl_cluster_token(void)
{
    return G.token;
}

int cl_index_of(uint64_t id)
{
    for (int i = 0; id && i < G.n; i++)
        if (G.m[i].id == id)
            return i;
    return -1;
}

int cl_wait_leader(int timeout_ms)
{
    int64_t end = cl_now_ms() + timeout_ms;
    uint64_t seen[CL_MAX];
    int rcs[CL_MAX];
    for (;;) {
        uint64_t leader = 0;
        int agreed = 1, live = 0;
        for (int i = 0; i < G.n; i++) {
            seen[i] = 0;
            rcs[i] = 0;
            if (!counts(i))
                continue;
            live++;
            skiff_result res = {0};
            rcs[i] = member_status(i, &res);
            seen[i] = rcs[i] ? 0 : res.status.leader;
            skiff_result_free(&res);
            if (!seen[i] || (leader && seen[i] != leader))
                agreed = 0;
            leader = seen[i] ? seen[i] : leader;
        }
        int li = cl_index_of(leader);
        if (live && agreed && li >= 0 && counts(li))
            return li;
        if (cl_now_ms() >= end)
            break;
        cl_poll_sleep();
    }
    fprintf(stderr, "cluster: no agreed leader after %d ms:\n", timeout_ms);
    for (int i = 0; i < G.n; i++)
        fprintf(stderr, "  %s id=%" PRIx64 " %s leader=%" PRIx64 " (%s)\n",
                G.m[i].name, G.m[i].id,
                G.m[i].removed ? "removed"
                : G.m[i].pid   ? "running"
                               : "down",
                seen[i], rcs[i] ? skiff_err_name(rcs[i]) : "ok");
    return -1;
}

int64_t cl_wait_applied(int timeout_ms)
{
    int64_t end = cl_now_ms() + timeout_ms;
    do {
        int64_t applied = -1;
        uint64_t leader = 0;
        int ok = 1;
        for (int i = 0; i < G.n && ok; i++) {
            if (!counts(i))
                continue;
            skiff_result res = {0};
            if (member_status(i, &res) || !res.status.leader ||
                (applied >= 0 &&
                 (applied != (int64_t)res.status.raft_applied_index ||
                  leader != res.status.leader)))
                ok = 0;
            applied = (int64_t)res.status.raft_applied_index;
            leader = res.status.leader;
            skiff_result_free(&res);
        }
        if (ok && applied > 0)
            return applied;
        cl_poll_sleep();
    } while (cl_now_ms() < end);
    fprintf(stderr, "cluster: applied indexes differ after %d ms\n",
            timeout_ms);
    for (int i = 0; i < G.n; i++) {
        if (!counts(i))
            continue;
        skiff_result res = {0};
        int rc = member_status(i, &res);
        fprintf(stderr,
                "  %s: %s applied=%" PRIu64 " index=%" PRIu64 " leader=%" PRIx64
                "\n",
                G.m[i].name, rc ? skiff_err_name(rc) : "ok",
                res.status.raft_applied_index, res.status.raft_index,
                res.status.leader);
        skiff_result_free(&res);
    }
    return -1;
}

int cl_kill(int i, int sig)
{
    member *m = &G.m[i];
    if (!reap(i))
        return -1;
    kill(m->pid, sig);
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT) {
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
        drop_client(m);
    }
    return 0;
}

int cl_restart(int i)
{
    if (reap(i) || G.m[i].removed)
        return -1;
    if (spawn(i, "existing"))
        return -1;
    return wait_accept(i, ACCEPT_TIMEOUT_MS);
}

/* HashKV of member i at rev, retried until end. */
static int hashkv_one(int i, int64_t rev, int64_t end, skiff_result *res)
{
    skiff_op op = {.type = SKIFF_OP_HASHKV, .revision = rev};
    int rc;
    for (;;) {
        skiff_client *c = status_client(i);
        rc = c ? skiff_do_sync(c, &op, res) : -ENOMEM;
        if (rc == 0 || cl_now_ms() >= end || !counts(i))
            return rc;
        skiff_result_free(res);
        cl_poll_sleep();
    }
}

int cl_hashkv_all(int64_t rev, uint32_t *hash_out, int64_t *rev_out)
{
    if (rev == 0) {
        int li = cl_wait_leader(30000);
        skiff_result st = {0};
        if (li < 0 || member_status(li, &st)) {
            skiff_result_free(&st);
            return -1;
        }
        rev = st.header.revision;
        skiff_result_free(&st);
    }
    int64_t end = cl_now_ms() + 30000;
    uint32_t hash[CL_MAX] = {0};
    int rc[CL_MAX] = {0}, first = -1, agree = 1;
    for (int i = 0; i < G.n; i++) {
        if (!counts(i))
            continue;
        skiff_result res = {0};
        rc[i] = hashkv_one(i, rev, end, &res);
        hash[i] = res.hash;
        skiff_result_free(&res);
        if (rc[i] || (first >= 0 && hash[i] != hash[first]))
            agree = 0;
        if (first < 0)
            first = i;
    }
    if (first < 0)
        agree = 0;
    if (!agree) {
        fprintf(stderr, "cluster: HashKV at revision %" PRId64 " differs:\n",
                rev);
        for (int i = 0; i < G.n; i++)
            if (counts(i))
                fprintf(stderr, "  %s: %s hash=%08x\n", G.m[i].name,
                        rc[i] ? skiff_err_name(rc[i]) : "ok", hash[i]);
        return -1;
    }
    if (hash_out)
        *hash_out = hash[first];
    if (rev_out)
        *rev_out = rev;
    return 0;
}

/* Sends a membership request to the leader (found by polling). */
static Skiffpb__Response *to_leader(const Skiffpb__Request *r)
{
    int li = cl_wait_leader(30000);
    return li < 0 ? NULL : raw_call(li, r);
}

int cl_add_member(int is_learner)
{
    if (G.n >= CL_MAX)
        return -1;
    int i = G.n;
    init_slot(i);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", G.m[i].peer_port);
    char *urls[1] = {url};
    Skiffpb__MemberAddRequest ma = SKIFFPB__MEMBER_ADD_REQUEST__INIT;
    ma.n_peerurls = 1;
    ma.peerurls = urls;
    ma.islearner = is_learner;
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_MEMBER_ADD;
    r.member_add = &ma;
    Skiffpb__Response *resp = to_leader(&r);
    int rc = raw_ok("MemberAdd", resp, SKIFFPB__RESPONSE__BODY_MEMBER_ADD);
    if (!rc && resp->member_add->member)
        G.m[i].id = resp->member_add->member->id;
    if (resp)
        skiffpb__response__free_unpacked(resp, NULL);
    if (rc)
        return -1;
    G.n++;
    rebuild_lists();
    if (spawn(i, "existing") || wait_accept(i, ACCEPT_TIMEOUT_MS))
        return -1;
    return i;
}

/* One member-change request, retried until it succeeds or timeout_ms. */
static int member_change(const char *what, Skiffpb__Request *r,
                         Skiffpb__Response__BodyCase want, int timeout_ms)
{
    int64_t end = cl_now_ms() + timeout_ms;
    for (;;) {
        Skiffpb__Response *resp = to_leader(r);
        int rc = raw_ok(what, resp, want);
        if (resp)
            skiffpb__response__free_unpacked(resp, NULL);
        if (rc == 0)
            return 0;
        if (cl_now_ms() >= end)
            return -1;
        cl_poll_sleep();
    }
}

int cl_promote(int i, int timeout_ms)
{
    Skiffpb__MemberPromoteRequest mp = SKIFFPB__MEMBER_PROMOTE_REQUEST__INIT;
    mp.id = ensure_id(i);
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_MEMBER_PROMOTE;
    r.member_promote = &mp;
    return member_change("MemberPromote", &r,
                         SKIFFPB__RESPONSE__BODY_MEMBER_PROMOTE, timeout_ms);
}

/* Polls MemberList on live members other than i until one no longer
 * lists `id` (0).  The others learn that a leader's self-removal was
 * committed only once they elect a new leader, so "still listed" is not
 * final before the deadline: then 1 if it was still listed, -1 if nobody
 * answered. */
static int listed_by_others(int i, uint64_t id, int timeout_ms)
{
    int64_t end = cl_now_ms() + timeout_ms;
    skiff_op op = {.type = SKIFF_OP_MEMBER_LIST, .flags = SKIFF_LINEARIZABLE};
    int last = -1;
    do {
        for (int j = 0; j < G.n; j++) {
            if (j == i || !counts(j) || !status_client(j))
                continue;
            skiff_result res = {0};
            if (skiff_do_sync(status_client(j), &op, &res) == 0) {
                last = 0;
                for (size_t k = 0; k < res.n_members; k++)
                    last |= res.members[k].id == id;
                if (!last)
                    fprintf(stderr,
                            "cluster: %s no longer lists %016" PRIx64 "\n",
                            G.m[j].name, id);
            }
            skiff_result_free(&res);
            if (last == 0)
                return 0;
        }
        cl_poll_sleep();
    } while (cl_now_ms() < end);
    return last;
}

int cl_remove_member(int i)
{
    Skiffpb__MemberRemoveRequest mr = SKIFFPB__MEMBER_REMOVE_REQUEST__INIT;
    mr.id = ensure_id(i);
    if (!mr.id)
        return -1;
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_MEMBER_REMOVE;
    r.member_remove = &mr;
    /* Not retried: a remove that timed out may have been applied, and a
     * second one would then fail.  Whether it was is asked of the others
     * instead (a leader removing itself may go before it answers). */
    if (member_change("MemberRemove", &r, SKIFFPB__RESPONSE__BODY_MEMBER_REMOVE,
                      0) &&
        listed_by_others(i, mr.id, 30000) != 0)
        return -1;
    G.m[i].removed = 1;
    drop_client(&G.m[i]);
    rebuild_lists();
    return 0;
}

int cl_move_leader(int i)
{
    Skiffpb__MoveLeaderRequest ml = SKIFFPB__MOVE_LEADER_REQUEST__INIT;
    ml.targetid = ensure_id(i);
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_MOVE_LEADER;
    r.move_leader = &ml;
    return member_change("MoveLeader", &r, SKIFFPB__RESPONSE__BODY_MOVE_LEADER,
                         0);
}

static skiff_client *make_client(const char *const *eps, size_t n, int tmo)
{
    skiff_config cfg = {.endpoints = eps,
                        .n_endpoints = n,
                        .dial_timeout_ms = 1000,
                        .request_timeout_ms = tmo ? tmo : 5000,
                        .backoff_max_ms = 250};
    skiff_client *c;
    return skiff_client_create(&c, &cfg) ? NULL : c;
}

skiff_client *cl_client(int i, int timeout_ms)
{
    const char *ep[1] = {G.m[i].endpoint};
    return make_client(ep, 1, timeout_ms);
}

skiff_client *cl_client_all(int timeout_ms)
{
    const char *eps[CL_MAX];
    size_t n = 0;
    for (int i = 0; i < G.n; i++)
        if (!G.m[i].removed)
            eps[n++] = G.m[i].endpoint;
    return make_client(eps, n, timeout_ms);
}

int cl_run_skiffd(const char *const *args, int timeout_ms, char *err,
                  size_t cap)
{
    const char *argv[64] = {G.bin};
    int n = 1;
    for (int k = 0; args[k] && n < 63; k++)
        argv[n++] = args[k];
    argv[n] = NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 2);
        dup2(p[1], 1);
        execv(G.bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    int64_t end = cl_now_ms() + timeout_ms;
    /* Read until EOF (the child exited and closed stderr) or deadline. */
    for (;;) {
        int64_t left = end - cl_now_ms();
        struct pollfd pfd = {p[0], POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        char buf[512];
        ssize_t r = read(p[0], buf, sizeof buf);
        if (r <= 0)
            break;
        size_t take = (size_t)r < cap - 1 - len ? (size_t)r : cap - 1 - len;
        memcpy(err + len, buf, take);
        len += take;
    }
    err[len] = 0;
    close(p[0]);
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (cl_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        cl_poll_sleep();
    }
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}
