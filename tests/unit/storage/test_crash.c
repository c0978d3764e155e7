/*
 * Crash test: a child process applies a long random command stream in
 * batches of random size and is SIGKILLed at random moments, hundreds of
 * times.  After every kill the store is reopened and must equal a
 * reference store that applied exactly the first `applied index` commands
 * of the same stream one at a time: same applied index, same revision,
 * same HashKV, and kv_verify finds every checksum and cross-reference in
 * order.  Then the child resumes from where the store says it is.
 *
 *   storage_crash [kills]        (default 200; SKIFF_SEED picks the stream)
 *   storage_crash child DIR SEED LATE (internal)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "tu.h"

#define MAX_BATCH 24

/* `late`: tell the parent only after the first batch is committed, so the
 * kill lands after progress; otherwise right after opening, so it may land
 * anywhere, even before the first commit. */
static int child(const char *dir, uint64_t seed, int late)
{
    kv_store *s;
    int rc = kv_open(&s, dir, NULL);
    if (rc) {
        fprintf(stderr, "child: open: %s\n", kv_strerror(rc));
        return 2;
    }
    kv_status st;
    kv_status_get(s, &st);
    uint64_t next = st.applied_index + 1;
    cm_rand r;
    cm_rand_seed(&r, seed ^ next);
    cm_buf bufs[MAX_BATCH] = {{0}};
    kv_entry e[MAX_BATCH];
    kv_result res[MAX_BATCH];
    cm_arena arena = {0};
    /* Tell the parent we are running; it then picks its moment. */
    if (!late && write(STDOUT_FILENO, "r", 1) != 1)
        return 2;
    for (;;) {
        size_t n = 1 + (size_t)cm_rand_below(&r, MAX_BATCH);
        for (size_t i = 0; i < n; i++) {
            cm_buf_reset(&bufs[i]);
            if (gen_command(seed, next + i, &bufs[i]))
                return 2;
            e[i] = (kv_entry){next + i, bufs[i].base, bufs[i].len, 0};
        }
        rc = kv_apply_batch(s, e, n, &arena, res);
        if (rc) {
            fprintf(stderr, "child: apply: %s: %s\n", kv_strerror(rc),
                    kv_errmsg(s));
            return 3;
        }
        next += n;
        cm_arena_reset(&arena);
        if (late && write(STDOUT_FILENO, "r", 1) != 1)
            return 2;
        late = 0;
    }
}

static int reference_catch_up(kv_store *ref, uint64_t seed, uint64_t *at,
                              uint64_t target, cm_arena *arena)
{
    cm_buf b = {0};
    while (*at < target) {
        cm_buf_reset(&b);
        uint64_t i = *at + 1;
        if (gen_command(seed, i, &b))
            return -1;
        kv_entry e = {i, b.base, b.len, 0};
        kv_result res;
        int rc = kv_apply(ref, &e, arena, &res);
        if (rc) {
            fprintf(stderr, "reference apply %llu: %s\n",
                    (unsigned long long)i, kv_strerror(rc));
            cm_buf_free(&b);
            return rc;
        }
        cm_arena_reset(arena);
        *at = i;
    }
    cm_buf_free(&b);
    return 0;
}

static pid_t spawn(const char *dir, uint64_t seed, int late, int *ready_fd)
{
    int p[2];
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        char sb[32];
        snprintf(sb, sizeof sb, "%llu", (unsigned long long)seed);
        execl("/proc/self/exe", "storage_crash", "child", dir, sb,
              late ? "1" : "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *ready_fd = p[0];
    return pid;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "child") == 0)
        return child(argv[2], strtoull(argv[3], NULL, 0), atoi(argv[4]));
    int kills = argc > 1 ? atoi(argv[1]) : 200;
    uint64_t seed = tu_seed((uint64_t)time(NULL));
    printf("storage_crash: seed %llu (replay with SKIFF_SEED), %d kills\n",
           (unsigned long long)seed, kills);
    fflush(stdout);
    char dir[256], refdir[256];
    if (tu_tmpdir(dir, sizeof dir) || tu_tmpdir(refdir, sizeof refdir))
        return 1;
    kv_store *ref;
    if (kv_open(&ref, refdir, NULL))
        return 1;
    cm_arena arena = {0};
    cm_rand r;
    cm_rand_seed(&r, seed);
    uint64_t ref_at = 0, last = 0;
    int failed = 0, progressed = 0;
    for (int k = 0; k < kills && !failed; k++) {
        int fd;
        /* Odd kills wait for a first commit, so at least half the kills
         * land after progress however slow the machine is. */
        pid_t pid = spawn(dir, seed, k % 2, &fd);
        char c;
        if (pid < 0 || read(fd, &c, 1) != 1) {
            fprintf(stderr, "kill %d: child did not start\n", k);
            failed = 1;
            break;
        }
        close(fd);
        /* The moment of death: anywhere in the first ~20 ms of work. */
        struct timespec ts = {0, (long)cm_rand_below(&r, 20000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "kill %d: child exited with %d before the kill\n",
                    k, WEXITSTATUS(status));
            failed = 1;
            break;
        }
        kv_store *s;
        int rc = kv_open(&s, dir, NULL);
        if (rc) {
            fprintf(stderr, "kill %d: reopen failed: %s\n", k,
                    kv_strerror(rc));
            failed = 1;
            break;
        }
        kv_verify_report vr;
        if ((rc = kv_verify(s, &vr))) {
            fprintf(stderr, "kill %d: verify: %s: %s\n", k, kv_strerror(rc),
                    vr.msg);
            failed = 1;
        }
        kv_status st, rst;
        kv_status_get(s, &st);
        if (st.applied_index < last) {
            fprintf(stderr, "kill %d: applied index went back %llu -> %llu\n",
                    k, (unsigned long long)last,
                    (unsigned long long)st.applied_index);
            failed = 1;
        }
        progressed += st.applied_index > last;
        last = st.applied_index;
        if (!failed &&
            reference_catch_up(ref, seed, &ref_at, st.applied_index, &arena))
            failed = 1;
        kv_hash h, rh;
        kv_status_get(ref, &rst);
        if (!failed && (kv_hash_get(s, 0, &h) || kv_hash_get(ref, 0, &rh))) {
            fprintf(stderr, "kill %d: hash failed\n", k);
            failed = 1;
        }
        if (!failed && (st.revision != rst.revision || h.hash != rh.hash ||
                        h.compact_revision != rh.compact_revision ||
                        st.keys != rst.keys)) {
            fprintf(stderr,
                    "kill %d at index %llu: state differs from replay: "
                    "rev %lld/%lld hash %08x/%08x compact %lld/%lld keys "
                    "%lld/%lld\n",
                    k, (unsigned long long)st.applied_index,
                    (long long)st.revision, (long long)rst.revision, h.hash,
                    rh.hash, (long long)h.compact_revision,
                    (long long)rh.compact_revision, (long long)st.keys,
                    (long long)rst.keys);
            failed = 1;
        }
        kv_close(s);
    }
    printf("storage_crash: %llu commands applied across kills, %d kills "
           "made progress\n",
           (unsigned long long)last, progressed);
    if (!failed && progressed < kills / 2) {
        fprintf(stderr, "too few kills landed after progress (%d)\n",
                progressed);
        failed = 1;
    }
    kv_close(ref);
    cm_arena_free(&arena);
    tu_rmrf(dir);
    tu_rmrf(refdir);
    printf("%d passed, %d failed\n", failed ? 0 : 1, failed);
    return failed;
}
