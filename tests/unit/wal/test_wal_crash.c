/*
 * Crash test for raft/io/wal: a child process appends random batches (new
 * hard state, entries, sometimes a conflicting suffix with a new term,
 * sometimes a release behind a snapshot), syncs each one and reports it to
 * the parent over a pipe.  The parent SIGKILLs the child at a random moment,
 * reopens the WAL and checks that
 *   - every entry the child reported synced is there with its term and
 *     bytes (unless a later, reported-but-unsynced truncation replaced it),
 *   - recovery returned a contiguous run right after the snapshot marker,
 *     with bytes that match the entry's index and term,
 *   - the hard state and snapshot marker are at least the reported ones,
 * and then lets a new child continue appending from what was recovered.
 * Every fourth kill also leaves random bytes after the last record, as a
 * torn unsynced write would, which recovery must cut off.
 *
 *   raft_wal_crash [kills]      (default 150; SKIFF_SEED picks the run)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tu.h"
#include "wal.h"

#define SEG_SIZE (32 * 1024)
#define MAX_BATCH 32

enum { MSG_READY = 1, MSG_INTENT, MSG_SYNCED, MSG_RELEASED };

typedef struct msg {
    uint64_t kind, a, b, c;
} msg;

static uint32_t len_of(uint64_t index, uint64_t term)
{
    return (uint32_t)((index * 7 + term * 13) % 300);
}

static uint8_t byte_of(uint64_t index, uint64_t term, size_t j)
{
    return (uint8_t)(index * 131 + term * 17 + j * 5 + 1);
}

static void send_msg(int fd, uint64_t kind, uint64_t a, uint64_t b, uint64_t c)
{
    msg m = {kind, a, b, c};
    if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(2);
}

/* Runs until killed. */
static void child(const char *dir, uint64_t seed, int fd)
{
    wal_options opt = {.segment_size = SEG_SIZE};
    wal *w;
    wal_recovered rec = {0};
    int rc = wal_open(dir, &opt, &w, &rec);
    if (rc) {
        fprintf(stderr, "child: open: %s: %s\n", cm_err_name(rc), rec.errmsg);
        _exit(3);
    }
    uint64_t last, term;
    wal_last(w, &last, &term);
    uint64_t snap = rec.snap_index;
    if (rec.hs.term > term)
        term = rec.hs.term;
    wal_recovered_free(&rec);
    cm_rand r;
    cm_rand_seed(&r, seed);
    static raft_entry e[MAX_BATCH];
    static uint8_t data[MAX_BATCH][300];
    send_msg(fd, MSG_READY, last, 0, 0);
    for (;;) {
        uint64_t from = last + 1;
        if (last > snap && cm_rand_below(&r, 10) == 0) {
            uint64_t back = cm_rand_below(&r, 8);
            from = back < last - snap ? last - back : snap + 1;
            term++;
            send_msg(fd, MSG_INTENT, from, 0, 0);
        }
        size_t n = 1 + (size_t)cm_rand_below(&r, MAX_BATCH);
        for (size_t i = 0; i < n; i++) {
            uint64_t idx = from + i;
            e[i] = (raft_entry){
                .index = idx, .term = term, .len = len_of(idx, term)};
            for (size_t j = 0; j < e[i].len; j++)
                data[i][j] = byte_of(idx, term, j);
            e[i].buf = data[i];
        }
        raft_hard_state hs = {term, term % 5, from - 1};
        rc = wal_append(w, &hs, e, n);
        if (!rc)
            rc = wal_sync(w);
        if (rc) {
            fprintf(stderr, "child: append: %s: %s\n", cm_err_name(rc),
                    wal_errmsg(w));
            _exit(4);
        }
        last = from + n - 1;
        send_msg(fd, MSG_SYNCED, from, last, term);
        if (n > 4 && cm_rand_below(&r, 8) == 0) {
            uint64_t at = from + cm_rand_below(&r, n);
            if (wal_release(w, at, term)) {
                fprintf(stderr, "child: release: %s\n", wal_errmsg(w));
                _exit(5);
            }
            snap = at;
            send_msg(fd, MSG_RELEASED, at, term, 0);
        }
    }
}

/* The parent's model: term of every index it knows to be durable. */
typedef struct model {
    uint64_t *terms;
    size_t cap;
    uint64_t snap, last, hs_term;
    uint64_t pending; /* a truncation from here may have landed */
} model;

static void model_set(model *m, uint64_t idx, uint64_t term)
{
    if (idx >= m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        while (cap <= idx)
            cap *= 2;
        m->terms = realloc(m->terms, cap * sizeof *m->terms);
        if (!m->terms)
            abort();
        memset(m->terms + m->cap, 0, (cap - m->cap) * sizeof *m->terms);
        m->cap = cap;
    }
    m->terms[idx] = term;
}

/* Applies a child's report; -1 when a batch left a gap. */
static int model_apply(model *m, const msg *x)
{
    if (x->kind == MSG_SYNCED && x->a > m->last + 1) {
        fprintf(stderr, "batch at %llu after %llu\n", (unsigned long long)x->a,
                (unsigned long long)m->last);
        return -1;
    }
    switch (x->kind) {
    case MSG_INTENT:
        m->pending = x->a;
        break;
    case MSG_SYNCED:
        for (uint64_t i = x->a; i <= x->b; i++)
            model_set(m, i, x->c);
        m->last = x->b;
        m->hs_term = x->c;
        m->pending = 0;
        break;
    case MSG_RELEASED:
        m->snap = x->a;
        break;
    }
    return 0;
}

static int verify(int k, model *m, const wal_recovered *rec, wal *w)
{
    if (rec->snap_index < m->snap) {
        fprintf(stderr, "kill %d: snapshot marker %llu behind synced %llu\n", k,
                (unsigned long long)rec->snap_index,
                (unsigned long long)m->snap);
        return -1;
    }
    if (rec->hs.term < m->hs_term) {
        fprintf(stderr, "kill %d: hard state term %llu behind synced %llu\n", k,
                (unsigned long long)rec->hs.term,
                (unsigned long long)m->hs_term);
        return -1;
    }
    uint64_t rlast = rec->snap_index + rec->n_entries;
    for (size_t i = 0; i < rec->n_entries; i++) {
        const raft_entry *e = &rec->entries[i];
        if (e->index != rec->snap_index + 1 + i) {
            fprintf(stderr,
                    "kill %d: entry %zu has index %llu: not a "
                    "contiguous run after the snapshot %llu\n",
                    k, i, (unsigned long long)e->index,
                    (unsigned long long)rec->snap_index);
            return -1;
        }
        if (e->len != len_of(e->index, e->term)) {
            fprintf(stderr, "kill %d: entry %llu has length %u\n", k,
                    (unsigned long long)e->index, e->len);
            return -1;
        }
        for (size_t j = 0; j < e->len; j++)
            if (e->buf[j] != byte_of(e->index, e->term, j)) {
                fprintf(stderr, "kill %d: entry %llu byte %zu differs\n", k,
                        (unsigned long long)e->index, j);
                return -1;
            }
    }
    /* Every synced entry after the marker is there with its term, except
     * where an announced truncation may have replaced the suffix. */
    uint64_t need = m->last;
    if (m->pending && m->pending <= need)
        need = m->pending - 1;
    for (uint64_t i = rec->snap_index + 1; i <= m->last; i++) {
        if (i > rlast) {
            if (i <= need) {
                fprintf(stderr,
                        "kill %d: synced entry %llu lost (log ends "
                        "at %llu)\n",
                        k, (unsigned long long)i, (unsigned long long)rlast);
                return -1;
            }
            break;
        }
        uint64_t t = rec->entries[i - rec->snap_index - 1].term;
        if (i <= need ? t != m->terms[i] : t < m->terms[i]) {
            fprintf(stderr,
                    "kill %d: entry %llu has term %llu, synced "
                    "%llu\n",
                    k, (unsigned long long)i, (unsigned long long)t,
                    (unsigned long long)m->terms[i]);
            return -1;
        }
    }
    uint64_t li, lt;
    wal_last(w, &li, &lt);
    if (li != rlast) {
        fprintf(stderr, "kill %d: wal_last %llu, recovered up to %llu\n", k,
                (unsigned long long)li, (unsigned long long)rlast);
        return -1;
    }
    /* From now on the model is what recovery found. */
    for (size_t i = 0; i < rec->n_entries; i++)
        model_set(m, rec->entries[i].index, rec->entries[i].term);
    m->snap = rec->snap_index;
    m->last = rlast;
    m->hs_term = rec->hs.term;
    m->pending = 0;
    return 0;
}

/* Simulates a torn, never-synced write: random bytes right after the last
 * record of the last segment.  Recovery must drop them and keep the rest.
 * Returns 1 when it wrote something. */
static int tear_tail(const char *dir, cm_rand *r)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char last[64] = "";
    struct dirent *de;
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 37 && strcmp(de->d_name, last) > 0)
            memcpy(last, de->d_name, 38);
    closedir(d);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, last);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return 0;
    struct stat st;
    uint8_t h[9];
    off_t off = 0;
    fstat(fd, &st);
    while (off + 9 <= st.st_size && pread(fd, h, 9, off) == 9) {
        uint32_t len = cm_be32_get(h);
        if (len == 0 && h[8] == 0)
            break;
        off += 9 + (off_t)len;
    }
    uint8_t junk[64];
    size_t n = 1 + (size_t)cm_rand_below(r, sizeof junk);
    for (size_t i = 0; i < n; i++)
        junk[i] = (uint8_t)(1 + cm_rand_below(r, 255));
    int done =
        off + (off_t)n <= st.st_size && pwrite(fd, junk, n, off) == (ssize_t)n;
    close(fd);
    return done;
}

int main(int argc, char **argv)
{
    int kills = argc > 1 ? atoi(argv[1]) : 150;
    uint64_t seed = tu_seed((uint64_t)time(NULL));
    printf("raft_wal_crash: seed %llu (replay with SKIFF_SEED), %d kills\n",
           (unsigned long long)seed, kills);
    fflush(stdout);
    cm_log_set_level(CM_LOG_ERROR);
    char base[256], dir[300];
    if (tu_tmpdir(base, sizeof base))
        return 1;
    snprintf(dir, sizeof dir, "%s/wal", base);
    cm_rand r;
    cm_rand_seed(&r, seed);
    model m = {0};
    int failed = 0, progressed = 0, torn = 0;
    uint64_t resumed = 0;
    for (int k = 0; k < kills && !failed; k++) {
        int p[2];
        if (pipe(p))
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(dir, seed + (uint64_t)k, p[1]);
            _exit(0);
        }
        close(p[1]);
        msg x;
        if (pid < 0 || read(p[0], &x, sizeof x) != (ssize_t)sizeof x ||
            x.kind != MSG_READY) {
            fprintf(stderr, "kill %d: child did not start\n", k);
            failed = 1;
            break;
        }
        if (x.a != m.last) {
            fprintf(stderr, "kill %d: child resumed at %llu, not %llu\n", k,
                    (unsigned long long)x.a, (unsigned long long)m.last);
            failed = 1;
        }
        uint64_t before = m.last;
        /* Odd kills wait for a first synced batch, so at least half of
         * them land after progress however slow the machine is. */
        while (k % 2 && read(p[0], &x, sizeof x) == (ssize_t)sizeof x) {
            failed |= model_apply(&m, &x) != 0;
            resumed += x.kind == MSG_SYNCED;
            if (x.kind == MSG_SYNCED)
                break;
        }
        /* The moment of death: anywhere in the first ~12 ms of work. */
        struct timespec ts = {0, (long)cm_rand_below(&r, 12000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        ssize_t got;
        while ((got = read(p[0], &x, sizeof x)) == (ssize_t)sizeof x) {
            failed |= model_apply(&m, &x) != 0;
            resumed += x.kind == MSG_SYNCED;
        }
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "kill %d: child exited with %d before the kill\n",
                    k, WEXITSTATUS(status));
            failed = 1;
            break;
        }
        progressed += m.last > before;
        if (k % 4 == 3)
            torn += tear_tail(dir, &r);
        wal_options opt = {.segment_size = SEG_SIZE};
        wal *w;
        wal_recovered rec = {0};
        int rc = wal_open(dir, &opt, &w, &rec);
        if (rc) {
            fprintf(stderr, "kill %d: reopen: %s: %s\n", k, cm_err_name(rc),
                    rec.errmsg);
            failed = 1;
        } else {
            if (verify(k, &m, &rec, w))
                failed = 1;
            wal_close(w);
        }
        wal_recovered_free(&rec);
    }
    printf("raft_wal_crash: log at %llu, snapshot %llu, %llu synced batches, "
           "%d kills made progress, %d torn tails added\n",
           (unsigned long long)m.last, (unsigned long long)m.snap,
           (unsigned long long)resumed, progressed, torn);
    if (!failed && progressed < kills / 2) {
        fprintf(stderr, "too few kills landed after progress (%d)\n",
                progressed);
        failed = 1;
    }
    free(m.terms);
    tu_rmrf(base);
    printf("%d passed, %d failed\n", failed ? 0 : 1, failed);
    return failed;
}
