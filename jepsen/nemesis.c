/*
 * The nemesis: one thread that injects one fault at a time, on a seeded
 * schedule: a quiet period (interval .. 2*interval seconds), then a fault
 * chosen among the enabled kinds, held for 2-6 s, then healed.  Each start
 * and stop goes to nemesis.log with wall and run-relative times, to
 * nemesis.dat (for the plots' shading) and into the history as an "info"
 * line of process -1 with f "nemesis" (checkers ignore it; it lets a
 * reader line faults up with operations).
 *
 * Kinds and their variants (docs/jepsen.md):
 *   kill      SIGKILL one / the leader / a minority / a majority (/ all when
 *             the run allows it), restart later from the data dir;
 *   pause     SIGSTOP / SIGCONT, same targets;
 *   partition isolate one, isolate the leader, random halves, a majorities
 *             ring, a bridge; heal;
 *   netem     loss, delay with jitter, duplication, reordering of what one
 *             or all members send on eth0, by jepsen-netq (netq.c) behind
 *             an NFQUEUE rule (iptables random loss where NFQUEUE is
 *             missing);
 *   clock     jump one member's wall clock (libfaketime control file);
 *   member    remove and re-add a member with a fresh data dir, or move
 *             the leader;
 *   admin     compaction at a random recent revision;
 *   disk      kill a member and drop what it never synced, or flip bits in /
 *             truncate the tail of its newest WAL segment while it is down.
 * The thread heals everything before it exits.
 */
#include "jepsen_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const names[] = {"kill",  "pause",  "partition", "netem",
                                    "clock", "member", "admin",     "disk"};
#define NKINDS 8

int jr_nemesis_parse(const char *list, unsigned *out)
{
    *out = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
        int k;
        if (!strcmp(s, "none"))
            continue;
        if (!strcmp(s, "all")) {
            *out = (1u << NKINDS) - 1;
            continue;
        }
        for (k = 0; k < NKINDS && strcmp(s, names[k]); k++)
            ;
        if (k == NKINDS) {
            fprintf(stderr, "jepsen: unknown nemesis '%s'\n", s);
            return -1;
        }
        *out |= 1u << k;
    }
    return 0;
}

typedef struct fault {
    int kind;
    char what[512];
    int targets[JR_MAX_NODES];
    int nt;
    uint64_t start_ns;
} fault;

static void mark(jr_run *r, fault *f, const char *phase)
{
    jr_log(r, "%s %s %s", phase, names[f->kind], f->what);
    char body[512], s[300];
    snprintf(body, sizeof body,
             "\"value\":{\"phase\":\"%s\",\"kind\":\"%s\","
             "\"what\":%s}",
             phase, names[f->kind],
             jr_json_str(s, sizeof s, f->what, strlen(f->what)));
    jr_hist_event(r, -1, "info", "nemesis", body);
    if (!strcmp(phase, "stop") && r->nemdat) {
        fprintf(r->nemdat, "%.3f %.3f %s\n", (double)f->start_ns / 1e9,
                (double)jr_rel_ns(r) / 1e9, names[f->kind]);
        fflush(r->nemdat);
    }
}

/* Picks targets: 0 one, 1 leader, 2 minority, 3 majority, 4 all. */
static int pick(jr_run *r, jr_rng *g, int how, int *t, char *desc, size_t cap)
{
    int live[JR_MAX_NODES], nl = 0;
    for (int i = 0; i < r->n; i++)
        if (!r->nodes[i].removed && jr_node_alive(r, i) && !r->nodes[i].paused)
            live[nl++] = i;
    if (!nl)
        return 0;
    for (int i = nl - 1; i > 0; i--) { /* shuffle */
        int j = jr_randn(g, i + 1), x = live[i];
        live[i] = live[j];
        live[j] = x;
    }
    int n = 1;
    static const char *const hows[] = {"one", "leader", "minority", "majority",
                                       "all"};
    if (how == 1) {
        int li = jr_leader(r, 2000);
        if (li >= 0)
            live[0] = li;
    } else if (how == 2) {
        n = 1 + jr_randn(g, (r->n - 1) / 2);
    } else if (how == 3) {
        n = r->n / 2 + 1;
    } else if (how == 4) {
        n = nl;
    }
    if (n > nl)
        n = nl;
    size_t o = (size_t)snprintf(desc, cap, "%s:", hows[how]);
    for (int i = 0; i < n; i++) {
        t[i] = live[i];
        o += (size_t)snprintf(desc + o, cap - o, " %s", r->nodes[t[i]].name);
    }
    return n;
}

static int restart(jr_run *r, int i)
{
    if (r->nodes[i].removed || jr_node_alive(r, i))
        return 0;
    if (jr_node_start(r, i, "existing"))
        return -1;
    if (jr_node_wait_ready(r, i, 15000)) {
        /* Refusing to start after damage is allowed (docs/cluster.md):
         * the member stays down, out of the final checks, and the run
         * says so in results.json. */
        jr_log(r,
               "%s did not become ready after restart (see its log); "
               "left down as refused",
               r->nodes[i].name);
        pthread_mutex_lock(&r->lock);
        r->nodes[i].refused = 1;
        r->nodes[i].removed = 1;
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    return 0;
}

/* ---- partitions ------------------------------------------------------------
 */
static void partition(jr_run *r, jr_rng *g, fault *f)
{
    int grid[JR_MAX_NODES][JR_MAX_NODES];
    int n = r->n, mode = jr_randn(g, 5);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            grid[i][j] = 1;
    int perm[JR_MAX_NODES] = {0};
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = jr_randn(g, i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    int victim = perm[0];
    if (mode == 1) {
        int li = jr_leader(r, 2000);
        victim = li >= 0 ? li : victim;
    }
    if (mode <= 1) {
        for (int j = 0; j < n; j++)
            grid[victim][j] = grid[j][victim] = j == victim;
        snprintf(f->what, sizeof f->what, "isolate%s %s", mode ? "-leader" : "",
                 r->nodes[victim].name);
    } else if (mode == 2) {
        int half = n / 2;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++)
                grid[perm[a]][perm[b]] = (a < half) == (b < half);
        size_t o = (size_t)snprintf(f->what, sizeof f->what, "halves [");
        for (int a = 0; a < n; a++)
            o += (size_t)snprintf(f->what + o, sizeof f->what - o, "%s%s",
                                  a == half ? "] ["
                                  : a       ? " "
                                            : "",
                                  r->nodes[perm[a]].name);
        snprintf(f->what + o, sizeof f->what - o, "]");
    } else if (mode == 3) {
        /* Majorities ring: each member sees itself and its two ring
         * neighbours.  With 5 members that is a majority for everyone,
         * yet no two members see the same majority; with 3 it is no
         * partition at all (each sees both others), which is logged. */
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                int d = abs(a - b);
                if (d > n - d)
                    d = n - d;
                grid[perm[a]][perm[b]] = d <= 1;
            }
        snprintf(f->what, sizeof f->what, "majorities-ring from %s%s",
                 r->nodes[perm[0]].name, n == 3 ? " (3 members: no cut)" : "");
    } else {
        /* Bridge: two halves that both see one member in the middle. */
        int mid = perm[0], half = (n - 1) / 2;
        for (int a = 1; a < n; a++)
            for (int b = 1; b < n; b++)
                grid[perm[a]][perm[b]] = (a <= half) == (b <= half);
        snprintf(f->what, sizeof f->what, "bridge via %s", r->nodes[mid].name);
    }
    if (jr_net_partition(r, grid))
        jr_log(r, "partition: some iptables rule failed (cmd.log)");
}

/* ---- disk damage -------------------------------------------------------- */
/* A copy of a random live history record's bytes (malloc'ed; *len its
 * size), read through LMDB on the stopped member's store; NULL when there
 * is none. */
static unsigned char *live_record(const char *dir, jr_rng *g, size_t *len)
{
    MDB_env *env;
    if (mdb_env_create(&env))
        return NULL;
    unsigned char *copy = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_stat ms;
    MDB_val k, v;
    mdb_env_set_maxdbs(env, 8);
    if (mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0600) ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) ||
        mdb_dbi_open(txn, "rev", 0, &dbi) || mdb_stat(txn, dbi, &ms) ||
        ms.ms_entries == 0 || mdb_cursor_open(txn, dbi, &cur))
        goto out;
    size_t skip = (size_t)(jr_rand(g) % ms.ms_entries);
    if (skip > 200000)
        skip = 200000;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (!rc && skip--)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    if (!rc && v.mv_size >= 8 && (copy = malloc(v.mv_size))) {
        memcpy(copy, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return copy;
}

/* Flips bit `bit` of byte `off` in every copy of rec in the file (LMDB
 * copies pages on write, so freed older pages may hold it too).  Returns
 * the offset of the first copy flipped, or -1 when none was found. */
static off_t flip_record(int fd, off_t size, const unsigned char *rec,
                         size_t len, size_t off, int bit)
{
    unsigned char *buf = malloc((size_t)size);
    off_t first = -1;
    if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
        free(buf);
        return -1;
    }
    for (off_t i = 0; i + (off_t)len <= size; i++)
        if (buf[i] == rec[0] && !memcmp(buf + i, rec, len)) {
            unsigned char b = (unsigned char)(buf[i + (off_t)off] ^ (1u << bit));
            if (pwrite(fd, &b, 1, i + (off_t)off) == 1 && first < 0)
                first = i + (off_t)off;
        }
    free(buf);
    return first;
}

/* Flips one bit in the store file (the member's snapshot: docs/cluster.md,
 * "The store is the snapshot"): half of the time inside a live history
 * record (read through LMDB, then found in the file), otherwise at a
 * random offset among its first 1 MiB past LMDB's two meta pages (free
 * pages, LMDB's own structure, or data).  The member must notice (refuse
 * to start, or report and recover); serving the damaged value shows up as
 * a HashKV mismatch or a checker anomaly. */
static void damage_store(jr_run *r, jr_rng *g, int i, char *what, size_t cap)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/data.mdb", r->nodes[i].data_dir);
    size_t len = 0;
    unsigned char *rec =
        jr_randn(g, 2) ? live_record(r->nodes[i].data_dir, g, &len) : NULL;
    int fd = open(p, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || st.st_size <= 3 * 4096) {
        snprintf(what, cap, "data.mdb: %s", fd < 0 ? strerror(errno) : "small");
        if (fd >= 0)
            close(fd);
        free(rec);
        return;
    }
    off_t at = -1;
    if (rec)
        at = flip_record(fd, st.st_size, rec, len,
                         (size_t)(jr_rand(g) % len), jr_randn(g, 8));
    free(rec);
    if (at >= 0) {
        snprintf(what, cap, "flipped a bit of data.mdb at %lld (a live record)",
                 (long long)at);
    } else {
        off_t span = st.st_size - 2 * 4096;
        if (span > (1 << 20))
            span = 1 << 20;
        at = 2 * 4096 + (off_t)(jr_rand(g) % (uint64_t)span);
        unsigned char b;
        if (pread(fd, &b, 1, at) == 1) {
            b ^= (unsigned char)(1u << jr_randn(g, 8));
            if (pwrite(fd, &b, 1, at) == 1)
                snprintf(what, cap,
                         "flipped a bit of data.mdb at %lld (a random page)",
                         (long long)at);
        }
    }
    fsync(fd);
    close(fd);
}

static void damage_wal(jr_run *r, jr_rng *g, int i, char *what, size_t cap)
{
    char wal[PATH_MAX + 8], newest[512] = "";
    snprintf(wal, sizeof wal, "%s/wal", r->nodes[i].data_dir);
    DIR *d = opendir(wal);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".wal") && !strstr(e->d_name, ".tmp") &&
            strcmp(e->d_name, newest) > 0)
            snprintf(newest, sizeof newest, "%s", e->d_name);
    if (d)
        closedir(d);
    if (!newest[0]) {
        snprintf(what, cap, "no WAL segment in %s", wal);
        return;
    }
    char p[PATH_MAX + 600];
    snprintf(p, sizeof p, "%s/%s", wal, newest);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(what, cap, "%s: %s", p, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    /* Segments are preallocated with zeros: find the end of the data. */
    off_t end = st.st_size;
    unsigned char buf[4096];
    while (end > 0) {
        off_t from = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t k = pread(fd, buf, (size_t)(end - from), from);
        if (k <= 0)
            break;
        ssize_t j = k;
        while (j > 0 && !buf[j - 1])
            j--;
        if (j > 0) {
            end = from + j;
            break;
        }
        end = from;
    }
    off_t at = end - 1 - jr_randn(g, end > 4096 ? 4096 : (int)(end ? end : 1));
    if (at < 0)
        at = 0;
    if (jr_randn(g, 2)) {
        unsigned char b;
        if (pread(fd, &b, 1, at) == 1) {
            b ^= (unsigned char)(1u << jr_randn(g, 8));
            if (pwrite(fd, &b, 1, at) == 1)
                snprintf(what, cap, "flipped a bit of %s at %lld of %lld",
                         newest, (long long)at, (long long)end);
        }
    } else if (!ftruncate(fd, at)) {
        snprintf(what, cap, "truncated %s at %lld (data ended at %lld)", newest,
                 (long long)at, (long long)end);
    }
    fsync(fd);
    close(fd);
}

/* ---- one fault -------------------------------------------------------------
 */
static void start_fault(jr_run *r, jr_rng *g, fault *f)
{
    char desc[200] = "";
    f->nt = 0;
    f->what[0] = 0;
    switch (f->kind) {
    case 0:   /* kill */
    case 1: { /* pause */
        int how = jr_randn(g, r->kill_all && f->kind == 0 ? 5 : 4);
        f->nt = pick(r, g, how, f->targets, desc, sizeof desc);
        snprintf(f->what, sizeof f->what, "%s", desc);
        for (int k = 0; k < f->nt; k++)
            jr_node_kill(r, f->targets[k], f->kind ? SIGSTOP : SIGKILL,
                         f->kind == 0 && r->use_shim);
        break;
    }
    case 2:
        partition(r, g, f);
        break;
    case 3: {
        static const char *const specs[] = {
            "delay 50ms 40ms distribution normal", "loss 20%", "duplicate 30%",
            "delay 20ms reorder 30% 50%",
            "delay 30ms 20ms loss 5% duplicate 5% reorder 10%"};
        int s = jr_randn(g, 5);
        int all = jr_randn(g, 2);
        int one = jr_randn(g, r->n);
        for (int i = 0; i < r->n; i++)
            if ((all || i == one) && jr_net_netem(r, i, specs[s], jr_rand(g)))
                jr_log(r, "netem on %s FAILED (cmd.log, %s.netq.log)",
                       r->nodes[i].name, r->nodes[i].name);
        snprintf(f->what, sizeof f->what, "%s on %s",
                 r->netem_fallback ? "iptables loss 20% (NFQUEUE missing)"
                                   : specs[s],
                 all ? "all" : r->nodes[one].name);
        break;
    }
    case 4: {
        /* Half the time the leader's clock: it alone decides expiries. */
        int i = jr_randn(g, r->n);
        if (jr_randn(g, 2)) {
            int li = jr_leader(r, 2000);
            i = li >= 0 ? li : i;
        }
        int jump =
            jr_randn(g, 2) ? 1 + jr_randn(g, 300) : -1 - jr_randn(g, 300);
        FILE *ff = fopen(r->nodes[i].fake_file, "w");
        if (ff) {
            fprintf(ff, "%+ds\n", jump);
            fclose(ff);
        }
        f->targets[0] = i;
        f->nt = 1;
        snprintf(f->what, sizeof f->what, "%s wall clock %+d s",
                 r->nodes[i].name, jump);
        break;
    }
    case 5:
        if (jr_randn(g, 2)) {
            snprintf(f->what, sizeof f->what, "move-leader");
            break;
        }
        f->targets[0] = jr_randn(g, r->n);
        f->nt = 1;
        snprintf(f->what, sizeof f->what, "replace %s",
                 r->nodes[f->targets[0]].name);
        break;
    case 6: {
        snprintf(f->what, sizeof f->what, "compaction");
        break;
    }
    case 7: {
        int i = -1;
        f->nt = pick(r, g, jr_randn(g, 2), f->targets, desc, sizeof desc);
        if (f->nt)
            i = f->targets[0];
        f->nt = i >= 0;
        if (i < 0)
            break;
        int corrupt = jr_randn(g, 3);
        /* Damage at most a minority: a member that refuses its damaged
         * data is left down, and a majority left down loses the cluster
         * by design, not by a bug.  Past that, only unsynced writes go. */
        int refused = 0;
        for (int k = 0; k < r->n; k++)
            refused += r->nodes[k].refused;
        if (refused >= (r->n - 1) / 2)
            corrupt = 0;
        jr_node_kill(r, i, SIGKILL, 1);
        if (corrupt) {
            char w[300] = "";
            if (corrupt == 1)
                damage_wal(r, g, i, w, sizeof w);
            else
                damage_store(r, g, i, w, sizeof w);
            jr_fmt(f->what, sizeof f->what, "%s down: %s", r->nodes[i].name, w);
        } else {
            snprintf(f->what, sizeof f->what,
                     "%s killed, unsynced writes dropped", r->nodes[i].name);
        }
        break;
    }
    }
    mark(r, f, "start");
    /* Instant faults do their work after the start mark. */
    if (f->kind == 5) {
        if (f->nt)
            jr_member_replace(r, f->targets[0], g);
        else
            jr_member_move_leader(r, g);
    } else if (f->kind == 6) {
        skiff_client *c = jr_client(r, jr_randn(g, r->n), -1, 5000);
        skiff_result st = {0};
        if (c && !skiff_status(c, &st) && st.header.revision > 2) {
            int64_t rev = st.header.revision - jr_randn(g, 50);
            if (rev < 2)
                rev = 2;
            int rc = jr_compact(r, c, rev);
            jr_log(r, "compact at %lld: %s", (long long)rev,
                   rc ? skiff_err_name(rc) : "ok");
        }
        skiff_result_free(&st);
        skiff_client_destroy(c);
    }
}

static void stop_fault(jr_run *r, fault *f)
{
    switch (f->kind) {
    case 0:
    case 7:
        for (int k = 0; k < f->nt; k++)
            restart(r, f->targets[k]);
        break;
    case 1:
        for (int k = 0; k < f->nt; k++)
            jr_node_kill(r, f->targets[k], SIGCONT, 0);
        break;
    case 2:
        jr_net_heal(r);
        break;
    case 3:
        jr_net_netem_clear(r);
        break;
    case 4: {
        FILE *ff = fopen(r->nodes[f->targets[0]].fake_file, "w");
        if (ff) {
            fprintf(ff, "+0s\n");
            fclose(ff);
        }
        break;
    }
    default:
        break;
    }
    mark(r, f, "stop");
}

void jr_nemesis_heal_all(jr_run *r)
{
    for (int i = 0; i < r->n; i++) {
        if (r->nodes[i].paused)
            jr_node_kill(r, i, SIGCONT, 0);
        if (r->use_faketime) {
            FILE *ff = fopen(r->nodes[i].fake_file, "w");
            if (ff) {
                fprintf(ff, "+0s\n");
                fclose(ff);
            }
        }
    }
    if (r->net_ready) {
        jr_net_heal(r);
        jr_net_netem_clear(r);
    }
    for (int i = 0; i < r->n; i++)
        if (!r->nodes[i].removed && !jr_node_alive(r, i))
            restart(r, i);
}

/* Sleeps up to ms, waking early when the nemesis is told to stop. */
static int wait_or_stop(jr_run *r, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&r->nem_stop); t += 50) {
        jr_sleep_ms(50);
        /* Reap members that died without us, so nemesis.log says when. */
        if (t % 1000 == 0)
            for (int i = 0; i < r->n; i++)
                if (!r->nodes[i].removed)
                    jr_node_alive(r, i);
    }
    return atomic_load(&r->nem_stop);
}

void *jr_nemesis_thread(void *arg)
{
    jr_run *r = arg;
    jr_rng g = {r->seed ^ 0x6e656d65736973ULL};
    int kinds[NKINDS], nk = 0;
    for (int k = 0; k < NKINDS; k++)
        if (r->nemeses & (1u << k))
            kinds[nk++] = k;
    int round = 0;
    while (nk && !wait_or_stop(
                     r, r->nemesis_interval_s * 1000 +
                            jr_randn(&g, r->nemesis_interval_s * 1000 + 1))) {
        /* Round-robin first, so a short run sees every kind at least
         * once; random kinds after that. */
        fault f = {.kind = round < nk ? kinds[round] : kinds[jr_randn(&g, nk)]};
        round++;
        f.start_ns = jr_rel_ns(r);
        start_fault(r, &g, &f);
        wait_or_stop(r, 2000 + jr_randn(&g, 4000));
        stop_fault(r, &f);
    }
    return NULL;
}
