/*
 * Member processes of the cluster under test.  A member is forked from
 * the runner, joins its network namespace with setns(2) (so its pid is
 * skiffd's own and signals reach it directly), sends its output to its
 * log file and execs skiffd with etcd's flags.  Optional LD_PRELOADs: the
 * disk shim (shim/dropsync.c) and libfaketime, whose offset is read from
 * a per-member control file so the clock nemesis can jump it later.
 *
 * Readiness and leadership are awaited by asking Status, never by
 * sleeping a fixed time: a member is ready when it answers.
 */
#include "jepsen_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void jr_initial_cluster(jr_run *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->nodes[i].removed)
            continue;
        o += (size_t)snprintf(buf + o, cap - o, "%s%s=%s", o ? "," : "",
                              r->nodes[i].name, r->nodes[i].peer_url);
    }
}

int jr_node_start(jr_run *r, int i, const char *state)
{
    jr_node *nd = &r->nodes[i];
    char initial[1024], client[64], adv[80], peer[64], sc[16], sce[16];
    jr_initial_cluster(r, initial, sizeof initial);
    snprintf(client, sizeof client, "%s:%d", nd->ip, JR_CLIENT_PORT);
    snprintf(adv, sizeof adv, "http://%s:%d", nd->ip, JR_CLIENT_PORT);
    snprintf(peer, sizeof peer, "%s:%d", nd->ip, JR_PEER_PORT + nd->generation);
    /* admin: log compaction often, so a member that was away catches up
     * by snapshot instead of by entries. */
    int small = (r->nemeses & (JR_NEM_ADMIN | JR_NEM_MEMBER)) != 0;
    int count = r->snapshot_count ? r->snapshot_count : small ? 100 : 10000;
    snprintf(sc, sizeof sc, "%d", count);
    snprintf(sce, sizeof sce, "%d", count / 5 > 0 ? count / 5 : 1);
    char unsafe[64] = "";
    if (r->unsafe)
        snprintf(unsafe, sizeof unsafe, "--unsafe-%s", r->unsafe);
    const char *argv[40];
    int a = 0;
    argv[a++] = r->skiffd;
    argv[a++] = "--name";
    argv[a++] = nd->name;
    argv[a++] = "--data-dir";
    argv[a++] = nd->data_dir;
    argv[a++] = "--listen-client-urls";
    argv[a++] = client;
    argv[a++] = "--advertise-client-urls";
    argv[a++] = adv;
    argv[a++] = "--listen-peer-urls";
    argv[a++] = peer;
    argv[a++] = "--initial-advertise-peer-urls";
    argv[a++] = nd->peer_url;
    argv[a++] = "--initial-cluster";
    argv[a++] = initial;
    argv[a++] = "--initial-cluster-state";
    argv[a++] = state;
    argv[a++] = "--initial-cluster-token";
    argv[a++] = r->token;
    argv[a++] = "--heartbeat-interval";
    argv[a++] = "50";
    argv[a++] = "--election-timeout";
    argv[a++] = "500";
    argv[a++] = "--snapshot-count";
    argv[a++] = sc;
    argv[a++] = "--snapshot-catchup-entries";
    argv[a++] = sce;
    argv[a++] = "--log-level";
    argv[a++] = "info";
    if (unsafe[0])
        argv[a++] = unsafe;
    argv[a] = NULL;

    char nspath[PATH_MAX];
    snprintf(nspath, sizeof nspath, "/var/run/netns/%s", nd->ns);
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
        fprintf(stderr, "jepsen: %s: %s\n", nspath, strerror(errno));
        return -1;
    }
    int logfd =
        open(nd->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        close(nsfd);
        return -1;
    }
    if (r->use_shim) /* a new process: what is on disk now is durable */
        jr_sh(r, "rm -f '%s'/*.undo", nd->undo_dir);
    char preload[2 * PATH_MAX + 2] = "";
    if (r->use_shim)
        snprintf(preload, sizeof preload, "%s", r->shim);
    if (r->use_faketime) {
        size_t o = strlen(preload);
        snprintf(preload + o, sizeof preload - o, "%s%s", o ? " " : "",
                 r->faketime_lib);
    }
    {
        char hdr[2048];
        int k = snprintf(hdr, sizeof hdr, "==== jepsen: start %s (%s)%s%s\n",
                         nd->name, state, preload[0] ? " LD_PRELOAD=" : "",
                         preload);
        if (write(logfd, hdr, (size_t)k) < 0)
            (void)0;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(nsfd);
        close(logfd);
        return -1;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe-ish calls until exec. */
        if (setns(nsfd, CLONE_NEWNET))
            _exit(120);
        dup2(logfd, 1);
        dup2(logfd, 2);
        setpgid(0, 0); /* a ^C to the runner must not hit members first */
        if (preload[0]) {
            /* A sanitizer build of skiffd insists on its runtime coming
             * first; the shim and libfaketime are plain C and harmless. */
            char asan[1024];
            const char *old = getenv("ASAN_OPTIONS");
            snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0",
                     old ? old : "", old && old[0] ? ":" : "");
            setenv("ASAN_OPTIONS", asan, 1);
            setenv("LD_PRELOAD", preload, 1);
            if (r->use_shim) {
                setenv("JEPSEN_SHIM_ROOT", nd->data_dir, 1);
                setenv("JEPSEN_SHIM_UNDO", nd->undo_dir, 1);
            }
            if (r->use_faketime) {
                setenv("FAKETIME_TIMESTAMP_FILE", nd->fake_file, 1);
                setenv("FAKETIME_CACHE_DURATION", "1", 1);
                /* Raft timers and leases run on CLOCK_MONOTONIC; the
                 * clock nemesis skews and jumps wall clocks, which must
                 * not matter for safety. */
                setenv("DONT_FAKE_MONOTONIC", "1", 1);
                setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
            }
        }
        execv(r->skiffd, (char *const *)argv);
        _exit(127);
    }
    close(nsfd);
    close(logfd);
    pthread_mutex_lock(&r->lock);
    nd->pid = pid;
    nd->paused = 0;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int jr_node_alive(jr_run *r, int i)
{
    jr_node *nd = &r->nodes[i];
    pthread_mutex_lock(&r->lock);
    int alive = 0;
    if (nd->pid > 0) {
        int st;
        pid_t p = waitpid(nd->pid, &st, WNOHANG);
        if (p == nd->pid) {
            /* Not one of ours: a crash, a refusal to start, or a kill
             * from outside the run; results.json lists them. */
            jr_log(r, "%s exited on its own (%s %d)", nd->name,
                   WIFSIGNALED(st) ? "signal" : "status",
                   WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            size_t o = strlen(r->exits);
            snprintf(r->exits + o, sizeof r->exits - o,
                     "%s\"%s %s %d at %.1fs\"", o ? "," : "", nd->name,
                     WIFSIGNALED(st) ? "signal" : "status",
                     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                     (double)jr_rel_ns(r) / 1e9);
            nd->pid = 0;
        } else {
            alive = 1;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return alive;
}

int jr_node_kill(jr_run *r, int i, int sig, int lose_unsynced)
{
    jr_node *nd = &r->nodes[i];
    if (!jr_node_alive(r, i))
        return -1;
    pthread_mutex_lock(&r->lock);
    pid_t pid = nd->pid;
    kill(pid, sig);
    if (sig == SIGKILL) {
        waitpid(pid, NULL, 0);
        nd->pid = 0;
        nd->paused = 0;
    } else if (sig == SIGSTOP) {
        nd->paused = 1;
    } else if (sig == SIGCONT) {
        nd->paused = 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (sig == SIGKILL && lose_unsynced && r->use_shim) {
        char sum[256];
        jr_undo_apply(r, i, sum, sizeof sum);
        jr_log(r, "%s lost unsynced data: %s", nd->name, sum);
    }
    return 0;
}

skiff_client *jr_client(jr_run *r, int first, int only, int timeout_ms)
{
    const char *eps[JR_MAX_NODES];
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    for (int k = 0; k < r->n; k++) {
        int i = (first + k) % r->n;
        if (only >= 0 && i != only)
            continue;
        eps[n++] = r->nodes[i].endpoint;
    }
    pthread_mutex_unlock(&r->lock);
    skiff_config cfg = {.endpoints = eps,
                        .n_endpoints = n,
                        .dial_timeout_ms = 1000,
                        .request_timeout_ms = timeout_ms,
                        .backoff_min_ms = 20,
                        .backoff_max_ms = 500};
    skiff_client *c = NULL;
    if (skiff_client_create(&c, &cfg))
        return NULL;
    return c;
}

int jr_node_status(jr_run *r, int i, skiff_result *res, int timeout_ms)
{
    skiff_client *c = jr_client(r, 0, i, timeout_ms);
    if (!c)
        return -ENOMEM;
    int rc = skiff_status(c, res);
    if (!rc && res->header.member_id)
        r->nodes[i].id = res->header.member_id;
    skiff_client_destroy(c);
    return rc;
}

int jr_node_wait_ready(jr_run *r, int i, int timeout_ms)
{
    uint64_t end = jr_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    while (jr_now_ns() < end) {
        if (!jr_node_alive(r, i))
            return -1;
        skiff_result res = {0};
        int rc = jr_node_status(r, i, &res, 1000);
        skiff_result_free(&res);
        if (!rc)
            return 0;
        jr_sleep_ms(50); /* poll interval while awaiting an answer */
    }
    return -1;
}

int jr_leader(jr_run *r, int timeout_ms)
{
    uint64_t end = jr_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    do {
        uint64_t best_term = 0;
        int best = -1;
        for (int i = 0; i < r->n; i++) {
            if (r->nodes[i].removed || !jr_node_alive(r, i) ||
                r->nodes[i].paused)
                continue;
            skiff_result res = {0};
            if (!jr_node_status(r, i, &res, 500) &&
                res.status.leader == res.header.member_id &&
                res.header.raft_term >= best_term) {
                best_term = res.header.raft_term;
                best = i;
            }
            skiff_result_free(&res);
        }
        if (best >= 0)
            return best;
        jr_sleep_ms(100);
    } while (jr_now_ns() < end);
    return -1;
}

int jr_wait_converged(jr_run *r, int timeout_ms)
{
    uint64_t end = jr_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    do {
        uint64_t applied = 0;
        int same = 1, seen = 0;
        uint64_t leader = 0;
        for (int i = 0; i < r->n && same; i++) {
            if (r->nodes[i].removed)
                continue;
            skiff_result res = {0};
            int rc = jr_node_status(r, i, &res, 1000);
            if (rc || !res.status.leader ||
                (leader && res.status.leader != leader) ||
                (seen && res.status.raft_applied_index != applied))
                same = 0;
            leader = res.status.leader;
            applied = res.status.raft_applied_index;
            seen = 1;
            skiff_result_free(&res);
        }
        if (same && seen)
            return 0;
        jr_sleep_ms(200);
    } while (jr_now_ns() < end);
    return -1;
}

/* ---- the disk shim's undo logs --------------------------------------------
 */

typedef struct undo_rec {
    uint64_t off;
    uint32_t len;
    long pos; /* of the bytes in the undo file */
} undo_rec;

static int apply_one(const char *upath, uint64_t *undone, char *fname,
                     size_t fcap)
{
    FILE *u = fopen(upath, "rb");
    if (!u)
        return -1;
    char path[PATH_MAX] = "";
    uint64_t size = UINT64_MAX;
    undo_rec *recs = NULL;
    size_t n = 0, cap = 0;
    int c;
    while ((c = fgetc(u)) != EOF) {
        if (c == 'P') {
            uint32_t l;
            if (fread(&l, 4, 1, u) != 1 || l >= sizeof path ||
                fread(path, 1, l, u) != l)
                break;
            path[l] = 0;
        } else if (c == 'S') {
            if (fread(&size, 8, 1, u) != 1)
                break;
        } else if (c == 'D') {
            undo_rec d;
            if (fread(&d.off, 8, 1, u) != 1 || fread(&d.len, 4, 1, u) != 1)
                break;
            d.pos = ftell(u);
            if (fseek(u, d.len, SEEK_CUR))
                break;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                undo_rec *nr = realloc(recs, cap * sizeof *recs);
                if (!nr)
                    break;
                recs = nr;
            }
            recs[n++] = d;
        } else {
            break; /* torn record at the end: the write never returned */
        }
    }
    int rc = 0;
    int fd = path[0] ? open(path, O_RDWR | O_CLOEXEC) : -1;
    if (fd >= 0) {
        /* Newest first, so each region ends with its oldest content. */
        for (size_t k = n; k-- > 0;) {
            char *buf = malloc(recs[k].len);
            if (!buf)
                break;
            if (fseek(u, recs[k].pos, SEEK_SET) == 0 &&
                fread(buf, 1, recs[k].len, u) == recs[k].len &&
                pwrite(fd, buf, recs[k].len, (off_t)recs[k].off) ==
                    (ssize_t)recs[k].len)
                *undone += recs[k].len;
            free(buf);
        }
        struct stat st;
        if (size != UINT64_MAX && !fstat(fd, &st) &&
            (uint64_t)st.st_size > size) {
            *undone += (uint64_t)st.st_size - size;
            if (ftruncate(fd, (off_t)size))
                rc = -1;
        }
        fsync(fd);
        close(fd);
        snprintf(fname, fcap, "%s", strrchr(path, '/') + 1);
    }
    free(recs);
    fclose(u);
    return rc;
}

int jr_undo_apply(jr_run *r, int i, char *summary, size_t cap)
{
    jr_node *nd = &r->nodes[i];
    DIR *d = opendir(nd->undo_dir);
    summary[0] = 0;
    if (!d)
        return -1;
    size_t o = 0;
    struct dirent *e;
    uint64_t total = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".undo"))
            continue;
        char p[PATH_MAX + 300], fname[256] = "";
        snprintf(p, sizeof p, "%s/%s", nd->undo_dir, e->d_name);
        uint64_t undone = 0;
        apply_one(p, &undone, fname, sizeof fname);
        unlink(p);
        if (undone) {
            total += undone;
            if (o + 64 < cap)
                o += (size_t)snprintf(summary + o, cap - o, "%s%s:%llu",
                                      o ? " " : "", fname,
                                      (unsigned long long)undone);
        }
    }
    closedir(d);
    if (!total)
        snprintf(summary, cap, "nothing unsynced");
    return 0;
}
