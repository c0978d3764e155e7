/*
 * Micro-benchmark of the raft core alone: three cores in one process,
 * messages handed from one core's ready batch straight to the other's
 * raft_step, storage synchronous and free (raft_advance declares the
 * batch durable).  What remains is the core's own work: appending,
 * building and handling messages, counting quorums, handing out entries.
 *
 * Each round the leader takes `batch` proposals of `size` bytes (one
 * raft_propose call each), then every core's ready batches are drained
 * until the cluster is quiet.  Reports committed entries per second
 * (wall clock) and CPU nanoseconds per committed entry, summed over all
 * three cores.  The benchmark prints and never fails.
 *
 * Usage: raft_bench [entries] [batch] [size] [one|batch] [compact_every]
 *        (default 2000000 256 64 one 64).  "one" makes one raft_propose call
 *        per entry (one payload allocation each); "batch" hands the whole
 *        batch to raft_propose_batch (one allocation per batch);
 *        every `compact_every` rounds each core compacts its log up to
 *        what it applied, freeing the payloads.
 */
#include "raft.h"

#include "cm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 3

static raft *nodes[N];

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drains one core; returns committed entries it handed out. */
static size_t pump(int i, size_t *msgs)
{
    size_t applied = 0;
    while (raft_has_ready(nodes[i])) {
        raft_ready rd;
        if (raft_ready_get(nodes[i], &rd))
            abort();
        for (size_t k = 0; k < rd.n_msgs; k++) {
            const raft_msg *m = &rd.msgs[k];
            if (raft_step(nodes[m->to - 1], m))
                abort();
        }
        *msgs += rd.n_msgs;
        applied += rd.n_committed;
        if (raft_advance(nodes[i], &rd))
            abort();
    }
    return applied;
}

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    size_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 256;
    size_t size = argc > 3 ? strtoull(argv[3], NULL, 10) : 64;
    int use_batch = argc > 4 && !strcmp(argv[4], "batch");
    size_t every = argc > 5 ? strtoull(argv[5], NULL, 10) : 64;
    if (every == 0)
        every = 1;
    raft_conf conf = {.n_voters = N, .voters = {1, 2, 3}};
    for (int i = 0; i < N; i++) {
        raft_config cfg = {.id = (raft_id)(i + 1),
                           .seed = 1,
                           .max_inflight = 4096,
                           .max_msg_bytes = 4 << 20};
        raft_restore st;
        raft_restore_bootstrap(&st, &conf);
        if (raft_create(&cfg, &st, &nodes[i]))
            return 1;
    }
    size_t msgs = 0, committed = 0;
    raft_campaign(nodes[0]);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < N; i++)
            pump(i, &msgs);
    char *payload = calloc(batch, size ? size : 1);
    char **ptrs = calloc(batch, sizeof(*ptrs));
    size_t *lens = calloc(batch, sizeof(*lens));
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    size_t proposed = 0, rounds = 0;
    while (committed < total) {
        if (use_batch) {
            for (size_t b = 0; b < batch; b++, proposed++) {
                size_t n = sizeof(proposed) < size ? sizeof(proposed) : size;
                memcpy(payload + b * size, &proposed, n);
                ptrs[b] = payload + b * size;
                lens[b] = size;
            }
            if (raft_propose_batch(nodes[0], (const void *const *)ptrs, lens,
                                   batch, NULL))
                return 1;
        } else {
            for (size_t b = 0; b < batch; b++, proposed++) {
                size_t n = sizeof(proposed) < size ? sizeof(proposed) : size;
                memcpy(payload, &proposed, n);
                if (raft_propose(nodes[0], payload, size, NULL))
                    return 1;
            }
        }
        /* Leader sends, followers answer, leader commits and tells them. */
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < N; i++) {
                size_t a = pump(i, &msgs);
                if (i == 0)
                    committed += a;
            }
        rounds++;
        /* Keep memory flat: compact behind what was applied. */
        if (rounds % every == 0)
            for (int i = 0; i < N; i++) {
                raft_status s;
                raft_status_get(nodes[i], &s);
                if (s.applied > s.first_index)
                    raft_compact(nodes[i], s.applied);
            }
    }
    double w = now(CLOCK_MONOTONIC) - w0;
    double c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("raft core, %d members in one process, batch %zu x %zu bytes, "
           "%s, compaction every %zu rounds\n",
           N, batch, size,
           use_batch ? "raft_propose_batch" : "one raft_propose each", every);
    printf("  committed entries: %zu in %.3f s\n", committed, w);
    printf("  throughput:        %.0f entries/s\n", (double)committed / w);
    printf("  cpu per entry:     %.0f ns (all three cores together)\n",
           c * 1e9 / (double)committed);
    printf("  messages:          %zu in %zu rounds\n", msgs, rounds);
    free(payload);
    free(ptrs);
    free(lens);
    for (int i = 0; i < N; i++)
        raft_destroy(nodes[i]);
    return 0;
}
