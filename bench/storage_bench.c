/*
 * skiff-storage-bench: measures the storage layer alone, in process.
 *
 *   apply, one put per LMDB transaction (each commit is an fdatasync)
 *   apply, batched puts per transaction (one fdatasync per batch)
 *   range: point reads of random keys, and 100-key ranges
 *   peak resident memory
 *
 * It prints; it never judges.  Options: -n puts (default 200000),
 * -b batch size (100), -s value size (256), -d directory (a fresh one
 * under $TMPDIR), -k keys in the key space (100000), -q sequential keys
 * (key i mod k, etcd benchmark's pattern) instead of uniformly random,
 * -y sync mode: 0 full (default), 1 data only (KV_SYNC_DATA), 2 none.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

static void key_of(char *out, uint64_t i)
{
    snprintf(out, 32, "bench/key/%08llu", (unsigned long long)i);
}

/* Packs `n` put commands for keys chosen by `rand`, into one buffer. */
static int sequential;
static enum kv_sync sync_mode = KV_SYNC_FULL;
static uint64_t seq_next;

static int make_puts(cm_buf *all, size_t *offs, size_t n, size_t vsize,
                     uint64_t nkeys, cm_rand *r)
{
    char *val = malloc(vsize);
    memset(val, 'v', vsize);
    char key[32];
    for (size_t i = 0; i < n; i++) {
        key_of(key, sequential ? seq_next++ % nkeys : cm_rand_below(r, nkeys));
        Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
        p.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
        p.value = (ProtobufCBinaryData){vsize, (uint8_t *)val};
        Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
        c.op_case = SKIFFPB__COMMAND__OP_PUT;
        c.put = &p;
        c.id = i;
        offs[i] = all->len;
        if (kv_command_pack(&c, all))
            return -1;
    }
    offs[n] = all->len;
    free(val);
    return 0;
}

static double run_apply(kv_store *s, const cm_buf *all, const size_t *offs,
                        size_t n, size_t batch, uint64_t *index)
{
    kv_entry *e = malloc(batch * sizeof *e);
    kv_result *res = malloc(batch * sizeof *res);
    cm_arena arena = {.chunk_sz = 1 << 20};
    double t0 = now_s();
    for (size_t i = 0; i < n; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        for (size_t j = 0; j < m; j++)
            e[j] = (kv_entry){++*index, all->base + offs[i + j],
                              offs[i + j + 1] - offs[i + j], 0};
        int rc = kv_apply_batch(s, e, m, &arena, res);
        if (rc) {
            fprintf(stderr, "apply: %s\n", kv_strerror(rc));
            exit(1);
        }
        cm_arena_reset(&arena);
    }
    double dt = now_s() - t0;
    cm_arena_free(&arena);
    free(e);
    free(res);
    return dt;
}

int main(int argc, char **argv)
{
    size_t n = 200000, batch = 100, vsize = 256;
    uint64_t nkeys = 100000;
    char dir[256] = "";
    int opt;
    while ((opt = getopt(argc, argv, "n:b:s:d:k:qy:")) != -1) {
        switch (opt) {
        case 'n': n = strtoul(optarg, NULL, 0); break;
        case 'b': batch = strtoul(optarg, NULL, 0); break;
        case 's': vsize = strtoul(optarg, NULL, 0); break;
        case 'q': sequential = 1; break;
        case 'y': sync_mode = (enum kv_sync)atoi(optarg); break;
        case 'k': nkeys = strtoull(optarg, NULL, 0); break;
        case 'd': snprintf(dir, sizeof dir, "%s", optarg); break;
        default:
            fprintf(stderr, "usage: %s [-n puts] [-b batch] [-s value size] "
                            "[-k keys] [-q: sequential keys] [-y sync 0|1|2] [-d dir]\n", argv[0]);
            return 2;
        }
    }
    int own_dir = !dir[0];
    if (own_dir) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/skiff-bench-XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    kv_store *s;
    kv_options o = {.sync = sync_mode};
    int rc = kv_open(&s, dir, &o);
    if (rc) {
        fprintf(stderr, "open %s: %s\n", dir, kv_strerror(rc));
        return 1;
    }
    cm_rand r;
    cm_rand_seed(&r, 1);
    uint64_t index = 0;
    static const char *modes[] = {"full", "data", "none"};
    printf("skiff-storage-bench: %zu-byte values, %llu %s keys, sync %s\n",
           vsize, (unsigned long long)nkeys,
           sequential ? "sequential" : "random", modes[sync_mode % 3]);

    /* One put per transaction: bounded by fdatasync latency. */
    size_t n1 = n / 100 < 2000 ? n / 100 : 2000;
    if (n1 < 100)
        n1 = 100;
    cm_buf all = {0};
    size_t *offs = malloc((n + 1) * sizeof *offs);
    make_puts(&all, offs, n1, vsize, nkeys, &r);
    double dt = run_apply(s, &all, offs, n1, 1, &index);
    printf("apply  1 put/txn     %8zu puts  %8.0f puts/s  %7.1f us/put\n",
           n1, n1 / dt, dt / n1 * 1e6);

    cm_buf_reset(&all);
    make_puts(&all, offs, n, vsize, nkeys, &r);
    dt = run_apply(s, &all, offs, n, batch, &index);
    printf("apply  %zu puts/txn  %8zu puts  %8.0f puts/s  %7.1f us/put\n",
           batch, n, n / dt, dt / n * 1e6);
    cm_buf_free(&all);
    free(offs);

    /* Point reads of random keys. */
    cm_arena arena = {.chunk_sz = 1 << 16};
    size_t reads = n;
    char key[32];
    double t0 = now_s();
    for (size_t i = 0; i < reads; i++) {
        key_of(key, cm_rand_below(&r, nkeys));
        Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
        q.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
        Skiffpb__RangeResponse *resp;
        if ((rc = kv_range(s, &q, &arena, &resp, NULL))) {
            fprintf(stderr, "range: %s\n", kv_strerror(rc));
            return 1;
        }
        cm_arena_reset(&arena);
    }
    dt = now_s() - t0;
    printf("range  point get     %8zu gets  %8.0f gets/s  %7.1f us/get\n",
           reads, reads / dt, dt / reads * 1e6);

    size_t ranges = n / 20;
    char end[32];
    uint64_t kvs = 0;
    t0 = now_s();
    for (size_t i = 0; i < ranges; i++) {
        uint64_t k0 = cm_rand_below(&r, nkeys > 100 ? nkeys - 100 : 1);
        key_of(key, k0);
        key_of(end, k0 + 100);
        Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
        q.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
        q.range_end = (ProtobufCBinaryData){strlen(end), (uint8_t *)end};
        Skiffpb__RangeResponse *resp;
        if ((rc = kv_range(s, &q, &arena, &resp, NULL))) {
            fprintf(stderr, "range: %s\n", kv_strerror(rc));
            return 1;
        }
        kvs += resp->n_kvs;
        cm_arena_reset(&arena);
    }
    dt = now_s() - t0;
    printf("range  100 keys      %8zu ranges %6.0f ranges/s %6.0f kvs/s\n",
           ranges, ranges / dt, kvs / dt);
    cm_arena_free(&arena);

    kv_status st;
    kv_status_get(s, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("store  revision %lld, db in use %.1f MiB, peak RSS %.1f MiB\n",
           (long long)st.revision, st.db_size_in_use / 1048576.0,
           ru.ru_maxrss / 1024.0);
    kv_close(s);
    if (own_dir)
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}
