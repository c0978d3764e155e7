/*
 * skiff-fsync-floor: the disk's floor for durable writes.  It appends 256
 * bytes and calls fdatasync, N times, on a file in the given directory, and
 * prints the count, p50/p99 latency and ops/s.  One acknowledged write to a
 * cluster costs at least one such fdatasync on the leader and one on a
 * follower, so this number bounds what a 1-client put benchmark can reach
 * on the same disk.  It prints and never fails a build.
 *
 *   skiff-fsync-floor DIR [COUNT]   (COUNT defaults to 1000)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DIR [COUNT]\n", argv[0]);
        return 2;
    }
    long n = argc == 3 ? atol(argv[2]) : 1000;
    if (n < 1) {
        fprintf(stderr, "COUNT must be positive\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-floor.%d", argv[1], (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    double *lat = malloc((size_t)n * sizeof *lat);
    char buf[256];
    memset(buf, 'x', sizeof buf);
    int rc = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        double s = now_s();
        /* Appending grows the file, so each fdatasync also writes the
         * size change: what a WAL without preallocation pays, and an
         * upper bound for one with it. */
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf ||
            fdatasync(fd)) {
            perror("write/fdatasync");
            rc = 1;
            n = i;
            break;
        }
        lat[i] = now_s() - s;
    }
    double total = now_s() - t0;
    close(fd);
    unlink(path);
    if (n > 0) {
        qsort(lat, (size_t)n, sizeof *lat, cmp_double);
        printf("fsync floor in %s: %ld x (256 B write + fdatasync)\n", argv[1],
               n);
        printf("  p50 %.3f ms  p99 %.3f ms  max %.3f ms  %.0f ops/s\n",
               lat[n / 2] * 1e3, lat[(n * 99) / 100] * 1e3, lat[n - 1] * 1e3,
               (double)n / total);
    }
    free(lat);
    return rc;
}
