/*
 * skiff-wal-bench: append throughput of the Raft WAL (raft/io/wal) with one
 * fdatasync per batch, for batches of 1, 16 and 256 entries of 256 bytes
 * (sizes and duration settable).  It only measures and prints; the numbers
 * quoted in docs/wal.md come from it.
 *
 *   skiff-wal-bench [-d DIR] [-t SECONDS] [-s ENTRY_BYTES] [BATCH...]
 *
 * DIR defaults to a fresh directory under $TMPDIR (or /tmp), removed at the
 * end.  Each batch size runs in its own WAL with 16 MiB segments, so
 * segment rollovers (preallocation, rename, directory sync) are included.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Removes a WAL directory (it holds only files). */
static void rm_wal_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(dir);
}

static int run(const char *dir, size_t batch, size_t size, double secs)
{
    wal *w;
    wal_recovered rec = {0};
    int rc = wal_open(dir, NULL, &w, &rec);
    if (rc) {
        fprintf(stderr, "wal_open %s: %s: %s\n", dir, cm_err_name(rc),
                rec.errmsg);
        wal_recovered_free(&rec);
        return 1;
    }
    wal_recovered_free(&rec);
    raft_entry *e = calloc(batch, sizeof *e);
    uint8_t *data = malloc(size ? size : 1);
    if (!e || !data)
        return 1;
    memset(data, 0xab, size);
    uint64_t next = 1, syncs = 0;
    double t0 = now_s(), t = 0;
    do {
        for (size_t i = 0; i < batch; i++)
            e[i] = (raft_entry){.index = next + i,
                                .term = 1,
                                .len = (uint32_t)size,
                                .buf = data};
        raft_hard_state hs = {1, 1, next - 1};
        rc = wal_append(w, &hs, e, batch);
        if (!rc)
            rc = wal_sync(w);
        if (rc) {
            fprintf(stderr, "append: %s: %s\n", cm_err_name(rc), wal_errmsg(w));
            break;
        }
        next += batch;
        syncs++;
        t = now_s() - t0;
    } while (t < secs);
    uint64_t n = next - 1;
    printf("batch %4zu x %zu B: %9.0f entries/s  %7.0f syncs/s  "
           "%6.3f ms/sync  (%llu entries, %zu segments)\n",
           batch, size, (double)n / t, (double)syncs / t, 1000.0 * t / syncs,
           (unsigned long long)n, wal_segment_count(w));
    wal_close(w);
    free(e);
    free(data);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *base = NULL;
    double secs = 2.0;
    size_t size = 256;
    int opt;
    while ((opt = getopt(argc, argv, "d:t:s:")) != -1) {
        switch (opt) {
        case 'd':
            base = optarg;
            break;
        case 't':
            secs = atof(optarg);
            break;
        case 's':
            size = (size_t)strtoul(optarg, NULL, 0);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-d DIR] [-t SECONDS] "
                    "[-s ENTRY_BYTES] [BATCH...]\n",
                    argv[0]);
            return 2;
        }
    }
    char tmp[512];
    if (!base) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/skiff-wal-bench-XXXXXX",
                 t && t[0] ? t : "/tmp");
        if (!mkdtemp(tmp)) {
            perror("mkdtemp");
            return 1;
        }
        base = tmp;
    }
    size_t batches[16] = {1, 16, 256};
    int nb = 3;
    if (optind < argc) {
        nb = 0;
        for (int i = optind; i < argc && nb < 16; i++)
            batches[nb++] = (size_t)strtoul(argv[i], NULL, 0);
    }
    cm_log_set_level(CM_LOG_WARN);
    int failed = 0;
    for (int i = 0; i < nb && !failed; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/wal-%zu", base, batches[i]);
        failed = run(dir, batches[i], size, secs);
        rm_wal_dir(dir);
    }
    if (base == tmp)
        rmdir(tmp);
    return failed;
}
