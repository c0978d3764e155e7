/*
 * jepsen/jepsen_int.h -- internal declarations of jepsen-run, the fault
 * injection runner (docs/jepsen.md).
 *
 * One run owns one jr_run: the cluster under test (members in network
 * namespaces on a private bridge), the history writer, the nemesis and the
 * workload threads.  Member state (pid, paused, removed, peer URL) is
 * shared between the nemesis thread and the final checks and is guarded by
 * run->lock; the history writer has its own lock.  Everything else belongs
 * to the thread that created it.
 */
#ifndef SKIFF_JEPSEN_INT_H
#define SKIFF_JEPSEN_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "skiff.h"

#define JR_MAX_NODES 5
#define JR_CLIENT_PORT 2379
#define JR_PEER_PORT 2380 /* + generation: a re-added member gets a new URL */

/* ---- small PRNG (splitmix64): seeded, one per thread ------------------- */
typedef struct jr_rng {
    uint64_t s;
} jr_rng;
uint64_t jr_rand(jr_rng *r);
/* Uniform in [0, n) (n > 0). */
int jr_randn(jr_rng *r, int n);

/* ---- the run ------------------------------------------------------------- */
typedef struct jr_node {
    int idx;           /* 0-based slot */
    char name[16];     /* n1.. */
    char ns[32];       /* network namespace */
    char veth[16];     /* root-side veth */
    char ip[32];       /* inside the private subnet */
    char endpoint[48]; /* ip:2379 */
    char peer_url[64]; /* http://ip:port of the current generation */
    char data_dir[PATH_MAX];
    char log_path[PATH_MAX];
    char undo_dir[PATH_MAX];  /* disk shim's undo logs */
    char fake_file[PATH_MAX]; /* libfaketime control file */
    pid_t pid;                /* 0 when not running */
    int paused;
    int removed;    /* not a member right now */
    int refused;    /* refused to start after damage: left down */
    int generation; /* bumped by each re-add */
    uint64_t id;    /* raft member id (Status header) */
    pid_t netq_pid; /* jepsen-netq in the namespace, 0 when none */
    int netq_out;   /* its standard output (ready and stats lines) */
} jr_node;

typedef struct jr_hist jr_hist;

enum {
    JR_NEM_KILL = 1 << 0,
    JR_NEM_PAUSE = 1 << 1,
    JR_NEM_PARTITION = 1 << 2,
    JR_NEM_NETEM = 1 << 3,
    JR_NEM_CLOCK = 1 << 4,
    JR_NEM_MEMBER = 1 << 5,
    JR_NEM_ADMIN = 1 << 6,
    JR_NEM_DISK = 1 << 7,
};

typedef struct jr_run {
    /* options */
    const char *workload;
    unsigned nemeses;
    int n;
    int time_limit_s;
    int concurrency;
    double rate;
    uint64_t seed;
    const char *unsafe; /* skiffd --unsafe-<this>, or NULL */
    const char *skiffd;
    const char *checker; /* jepsen-check, or NULL */
    const char *shim;    /* libjepsen-dropsync.so */
    const char *netq;    /* jepsen-netq, the netem nemesis's queue */
    const char *faketime_lib;
    const char *store_root;
    int nemesis_interval_s; /* mean quiet time between faults */
    int kill_all;           /* kill nemesis may take every member down */
    int snapshot_count;     /* --snapshot-count for members, 0: by nemesis */
    /* derived */
    char prefix[16]; /* "sj<pid>": every namespace, link and file name */
    char bridge[16];
    int subnet; /* 10.231.<subnet>.0/24 */
    char dir[PATH_MAX];
    int use_shim;
    int use_faketime;
    int netem_fallback; /* NFQUEUE unusable: iptables loss instead */
    jr_node nodes[JR_MAX_NODES];
    char token[32];
    pthread_mutex_t lock; /* nodes[] */
    FILE *nemlog;
    FILE *nemdat; /* start end name, for the plots */
    jr_hist *hist;
    atomic_int stop;     /* workers: finish */
    atomic_int nem_stop; /* nemesis: heal and finish */
    uint64_t t0;         /* monotonic ns at the start */
    int net_ready;
    /* end-of-run checks, filled by final.c */
    char final_json[8192];
    int final_ok;
    char exits[2048]; /* JSON strings: members that exited on their own */
    /* the watch workload's replay cursor (see wl_watch.c) */
    pthread_mutex_t replay_lock;
    int64_t replayed_rev;
} jr_run;

extern jr_run *jr_the_run; /* for the signal thread and atexit */

/* ---- util.c ----------------------------------------------------------------
 */
uint64_t jr_now_ns(void);      /* CLOCK_MONOTONIC */
uint64_t jr_rel_ns(jr_run *r); /* since the run started */
void jr_sleep_ms(int ms);
/* Runs a shell command (sh -c), output appended to the run's cmd.log.
 * Returns the exit status (0 ok), -1 when it could not run. */
int jr_sh(jr_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same but output captured into buf (NUL-terminated, truncated). */
int jr_sh_out(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends "time name what" to nemesis.log (and stderr when verbose). */
void jr_log(jr_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int jr_mkdirs(const char *path);
/* snprintf that reports truncation (returns -1) instead of hiding it. */
int jr_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* JSON string escaping into buf; returns buf. */
const char *jr_json_str(char *buf, size_t cap, const void *s, size_t n);

/* ---- net.c: namespaces, bridge, partitions, netem -------------------------
 */
int jr_net_setup(jr_run *r);
void jr_net_teardown(jr_run *r);
/* Removes namespaces, links and processes left by runs whose pid is gone
 * (all of them when `all`).  Returns how many namespaces were removed. */
int jr_net_cleanup_stale(int all);
/* Drops traffic between members that `grid[i][j]` says may not talk. */
int jr_net_partition(jr_run *r, int grid[JR_MAX_NODES][JR_MAX_NODES]);
int jr_net_heal(jr_run *r);
/* Starts jepsen-netq with the tc-netem style `spec` (netq.h) in member i's
 * namespace, seeded with `seed`, and queues the member's outgoing packets
 * to it.  0, or -1 (logged) when it did not start. */
int jr_net_netem(jr_run *r, int i, const char *spec, uint64_t seed);
/* Removes the queueing rules and stops every jepsen-netq (held packets go
 * out first); logs each one's counters in nemesis.log. */
int jr_net_netem_clear(jr_run *r);

/* ---- node.c: member processes ---------------------------------------------
 */
/* Starts member i (state "new" or "existing"); does not wait. */
int jr_node_start(jr_run *r, int i, const char *state);
/* Waits until member i answers Status (or timeout).  0 / -1. */
int jr_node_wait_ready(jr_run *r, int i, int timeout_ms);
/* Sends sig; SIGKILL also reaps.  lose_unsynced: undo what the disk shim
 * says was never synced (crash simulation). */
int jr_node_kill(jr_run *r, int i, int sig, int lose_unsynced);
/* 1 when member i's process runs (reaps it when it has exited). */
int jr_node_alive(jr_run *r, int i);
/* Status of member i on a short-lived client.  0 or a skiff code. */
int jr_node_status(jr_run *r, int i, skiff_result *res, int timeout_ms);
/* Index of the leader that a live member reports, or -1. */
int jr_leader(jr_run *r, int timeout_ms);
/* Waits for a leader and every running member applied to the same index. */
int jr_wait_converged(jr_run *r, int timeout_ms);
/* A blocking client on every current member (endpoint order rotated by
 * `first`), or on member `only` when >= 0. */
skiff_client *jr_client(jr_run *r, int first, int only, int timeout_ms);
/* The --initial-cluster string of the current membership. */
void jr_initial_cluster(jr_run *r, char *buf, size_t cap);
/* Applies the disk shim's undo logs of member i (process must be dead). */
int jr_undo_apply(jr_run *r, int i, char *summary, size_t cap);

/* ---- history.c -------------------------------------------------------------
 */
int jr_hist_open(jr_run *r, const char *path, const char *dat_path);
void jr_hist_close(jr_hist *h);
/* Writes an invoke line; `body` is extra JSON members without braces
 * ("\"key\":\"r1\",\"value\":3"), may be "".  Returns the invoke time. */
uint64_t jr_hist_invoke(jr_run *r, int64_t process, const char *f,
                        const char *body);
/* Writes a completion line (type "ok", "fail" or "info") and a latency
 * sample for the plots. */
void jr_hist_complete(jr_run *r, int64_t process, const char *type,
                      const char *f, const char *body, uint64_t inv_time);
/* A line that is not part of an invoke/complete pair (nemesis, watch
 * deliveries, replay). */
void jr_hist_event(jr_run *r, int64_t process, const char *type, const char *f,
                   const char *body);
/* Classifies a write's error: "fail" when it provably did not apply,
 * "info" when its outcome is unknown. */
const char *jr_write_outcome(int rc);

/* ---- nemesis.c -------------------------------------------------------------
 */
int jr_nemesis_parse(const char *list, unsigned *out);
void *jr_nemesis_thread(void *arg);
/* Undoes every fault (used after the nemesis thread and on teardown). */
void jr_nemesis_heal_all(jr_run *r);
/* Removes member i and adds it back with a fresh data dir (member.c). */
int jr_member_replace(jr_run *r, int i, jr_rng *rng);
int jr_member_move_leader(jr_run *r, jr_rng *rng);

/* ---- workloads -------------------------------------------------------------
 */
typedef struct jr_worker {
    jr_run *run;
    int id;          /* 0..concurrency-1 */
    int64_t process; /* current process id; += concurrency after info */
    jr_rng rng;
    skiff_client *c;
    void *state; /* the workload's */
} jr_worker;

typedef struct jr_workload {
    const char *name;
    int (*setup)(jr_run *r);                         /* before the workers */
    void (*op)(jr_worker *w);                        /* one operation */
    void *(*extra_thread)(void *run);                /* watchers etc, or NULL */
    int (*final)(jr_run *r, char *json, size_t cap); /* end checks */
} jr_workload;

extern const jr_workload jr_wl_register, jr_wl_append, jr_wl_watch, jr_wl_lease;
/* Invoke/complete helpers shared by workloads. */
void jr_worker_retire(jr_worker *w); /* after an info op */

/* ---- final.c, plot.c -------------------------------------------------------
 */
int jr_final_checks(jr_run *r, const jr_workload *wl);
int jr_plot(jr_run *r);
/* Compacts at `rev` on behalf of the admin nemesis or a workload; the
 * watch workload replays history up to rev first (wl_watch.c). */
int jr_compact(jr_run *r, skiff_client *c, int64_t rev);
extern int (*jr_before_compact)(jr_run *r, int64_t rev);

#endif
