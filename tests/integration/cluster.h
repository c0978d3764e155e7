/*
 * Harness for integration tests against an N-member skiffd cluster: real
 * processes on loopback, each with its own client and peer port and its own
 * data dir under one tu_tmpdir.  Members never outlive the test process
 * (PR_SET_PDEATHSIG), and faults are real: cl_kill sends SIGKILL (or any
 * signal) and reaps the process.
 *
 * One cluster per process at a time (the state is global, so a test reads
 * like a script: cl_start(3); i = cl_wait_leader(5000); cl_kill(i, ...)).
 * Members are numbered 0..cl_size()-1 in the order they were started or
 * added; an index stays valid after its member is killed or removed.
 *
 * Threads: every cl_* function belongs to the thread that called cl_start.
 * Other threads may use their own libskiff clients on cl_endpoints().
 *
 * Each member's stderr goes to cl_log_path(i) (appended across restarts);
 * cl_stop() reports any AddressSanitizer/UBSan report found there, so a
 * member that crashed or leaked fails the test that ran it.
 */
#ifndef SKIFF_CLUSTER_H
#define SKIFF_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "skiff.h"

#define CL_MAX 9 /* members, including ones added later */

typedef struct cl_opts {
    int heartbeat_ms;   /* --heartbeat-interval; 0: 50 */
    int election_ms;    /* --election-timeout; 0: 500 */
    int snapshot_count; /* --snapshot-count; 0: the server's default */
    /* More flags for every member (NULL-terminated, borrowed until
     * cl_stop), e.g. {"--quota-backend-bytes", "1000000", NULL}. */
    const char *const *extra;
    /* --log-level; NULL: $CL_LOG_LEVEL, else warn.  "info" shows
     * elections and snapshots in the logs. */
    const char *log_level;
} cl_opts;

/* Path of the skiffd binary to run (borrowed; usually argv[1]).  Call
 * before cl_start. */
void cl_set_binary(const char *skiffd);

/* Starts an n-member cluster (--initial-cluster-state new) with fast test
 * timings and waits until every member accepts client connections (not
 * for a leader: see cl_wait_leader).  0, or -1 with the reason on stderr
 * (a member exited early: its log is printed).  cl_start_opts with o NULL
 * is cl_start. */
int cl_start(int n);
int cl_start_opts(int n, const cl_opts *o);

/* SIGKILLs every member still running, checks the logs for sanitizer
 * reports and removes the data dirs.  0, or -1 when some log holds a
 * sanitizer report (printed).  Safe to call when nothing runs. */
int cl_stop(void);

/* Member slots used so far (started + added), alive or not. */
int cl_size(void);
/* 1 when member i's process is running (as far as the harness knows: it
 * reaps exited members on every call that looks at them). */
int cl_alive(int i);
/* 1 once member i was removed from the cluster (cl_remove_member). */
int cl_removed(int i);
pid_t cl_pid(int i);
const char *cl_name(int i);     /* "n1", "n2", ... */
const char *cl_data_dir(int i); /* --data-dir */
const char *cl_log_path(int i); /* its stderr */
int cl_member_client_port(int i);
int cl_member_peer_port(int i);
/* The value of the Prometheus sample NAME (no labels) that member i serves
 * on its metrics port; -1 when it cannot be had. */
int cl_metric(int i, const char *name, double *out);
/* "127.0.0.1:P" of member i (static buffer per member). */
const char *cl_member_endpoint(int i);
/* Member i's raft id as it reported it (Status header), 0 before the
 * harness has seen it answer. */
uint64_t cl_member_id(int i);
/* Index of the member with raft id `id`, or -1. */
int cl_index_of(uint64_t id);

/* Client endpoints of every member not removed, dead or alive:
 * "127.0.0.1:P1,127.0.0.1:P2,...".  Static buffer, valid until the next
 * membership change. */
const char *cl_endpoints(void);
/* The --initial-cluster value for the members not removed:
 * "n1=http://127.0.0.1:Q1,...".  Static buffer like cl_endpoints. */
const char *cl_initial_cluster(void);
/* The --initial-cluster-token every member was started with (unique per
 * cl_start, so two test clusters can never merge). */
const char *cl_cluster_token(void);

/* Polls Status on every live member until all of them name the same
 * leader and that leader is one of them, or timeout_ms passes.  Returns
 * the leader's index, or -1 (what each member said is printed). */
int cl_wait_leader(int timeout_ms);
/* Polls until every live member reports the same applied index and the
 * same leader (writes must have stopped).  Returns that index (> 0) or -1
 * on timeout. */
int64_t cl_wait_applied(int timeout_ms);

/* A loopback port below the kernel's ephemeral range, free now and
 * reserved for this process from now on (skiffd can still listen on it;
 * other test processes' probes are refused).  -1 if none found. */
int cl_reserve_port(void);

/* Sends sig to member i and, for SIGKILL/SIGTERM/SIGINT, waits for it to
 * exit.  0, or -1 when it was not running. */
int cl_kill(int i, int sig);
/* Starts member i again on its data dir (--initial-cluster-state
 * existing) and waits until it accepts connections.  0 or -1. */
int cl_restart(int i);

/* HashKV at revision rev on every live member (retried while a member
 * answers FUTURE_REV or is unreachable, up to 30 s) and compares them.
 * rev 0: the leader's current revision.  0 when all agree (*hash_out and
 * *rev_out, each may be NULL, get the hash and the revision used), -1
 * otherwise (every member's answer is printed). */
int cl_hashkv_all(int64_t rev, uint32_t *hash_out, int64_t *rev_out);

/* Membership, over the raw wire protocol (sent to the current leader).
 * cl_add_member: MemberAdd (learner or voter) for a new slot, then starts
 * its process with --initial-cluster-state existing and an
 * --initial-cluster that includes it; returns the new index, or -1. */
int cl_add_member(int is_learner);
/* MemberPromote of member i (retried while the server says the learner is
 * not caught up, up to timeout_ms).  0 or -1. */
int cl_promote(int i, int timeout_ms);
/* MemberRemove of member i, sent to a live member other than i when one
 * is the leader or can forward.  Marks the slot removed (its process is
 * left alone: the test decides whether it must exit by itself).  0 or
 * -1. */
int cl_remove_member(int i);
/* MoveLeader to member i (sent to the current leader).  0 or -1. */
int cl_move_leader(int i);

/* A blocking libskiff client on member i alone (cl_client) or on every
 * member (cl_client_all), request timeout timeout_ms (0: 5000).  NULL on
 * failure.  The caller destroys it (skiff_client_destroy). */
skiff_client *cl_client(int i, int timeout_ms);
skiff_client *cl_client_all(int timeout_ms);

/* Runs the skiffd binary with `args` (NULL-terminated, without argv[0])
 * in the foreground and waits up to timeout_ms for it to exit; its
 * stderr goes into err (NUL-terminated, truncated to cap).  Returns the
 * exit status (0..255), 128+signal when it died of a signal, or -1 when
 * it was still running at the deadline (it is then SIGKILLed) or could
 * not be started.  For tests of refused starts. */
int cl_run_skiffd(const char *const *args, int timeout_ms, char *err,
                  size_t cap);

/* Milliseconds on the monotonic clock; and a short sleep for polling
 * loops (never as synchronisation by itself). */
int64_t cl_now_ms(void);
void cl_poll_sleep(void);

#endif
