/*
 * jepsen-run: one fault-injection run against a real skiffd cluster.
 *
 *   jepsen/run --workload register|append|watch|lease
 *              --nemesis kill,pause,partition,netem,clock,member,admin,disk
 *              --nodes 3|5 --time-limit S --concurrency C --rate R
 *              [--seed N] [--unsafe SWITCH] [--skiffd PATH] [--kill-all]
 *   jepsen/run --cleanup [--all]
 *
 * The run: set up namespaces and the bridge (net.c), start the members
 * (node.c), run C workload threads, each with its own blocking libskiff
 * client on every member, at about R operations per second in total while
 * the nemesis thread injects faults (nemesis.c); then heal, run the
 * end-of-run checks (final.c), run the checker (jepsen-check) on the
 * history, draw the plots and write results.json into
 * jepsen/store/<workload>-<time>/.  Exit status: 0 valid, 1 invalid,
 * 2 unknown, 3 the run itself failed (setup, usage).
 *
 * Teardown (members, namespaces, bridge; iptables rules and the netem
 * nemesis's jepsen-netq processes live in the namespaces) runs at the
 * end, from atexit, and from a signal thread on SIGINT/SIGTERM/SIGHUP; a
 * run killed harder leaves names with its pid in them, which the next run
 * (or --cleanup) removes once that pid is gone.
 */
#include "jepsen_int.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef JEPSEN_SKIFFD
#define JEPSEN_SKIFFD "skiffd"
#endif
#ifndef JEPSEN_CHECK
#define JEPSEN_CHECK ""
#endif
#ifndef JEPSEN_SHIM
#define JEPSEN_SHIM ""
#endif
#ifndef JEPSEN_NETQ
#define JEPSEN_NETQ "jepsen-netq"
#endif
#ifndef JEPSEN_STORE
#define JEPSEN_STORE "jepsen/store"
#endif
#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

jr_run *jr_the_run;
static pthread_mutex_t teardown_mu = PTHREAD_MUTEX_INITIALIZER;
static int torn_down;

static void teardown(void)
{
    jr_run *r = jr_the_run;
    pthread_mutex_lock(&teardown_mu);
    if (!r || torn_down) {
        pthread_mutex_unlock(&teardown_mu);
        return;
    }
    torn_down = 1;
    for (int i = 0; i < r->n; i++) {
        pid_t p = r->nodes[i].pid;
        if (p > 0) {
            kill(p, SIGCONT);
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            r->nodes[i].pid = 0;
        }
    }
    jr_net_teardown(r);
    pthread_mutex_unlock(&teardown_mu);
}

static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig;
    if (sigwait(set, &sig) == 0) {
        fprintf(stderr, "jepsen: signal %d: tearing down\n", sig);
        teardown();
        _exit(128 + sig);
    }
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: jepsen/run --workload register|append|watch|lease\n"
            "  --nemesis kill,pause,partition,netem,clock,member,admin,disk"
            "|none|all\n"
            "  [--nodes 3|5] [--time-limit S] [--concurrency C] [--rate R]\n"
            "  [--seed N] [--unsafe local-reads|no-fsync|drop-watch-event]\n"
            "  [--skiffd PATH] [--checker PATH] [--store DIR] [--kill-all]\n"
            "  [--interval S] [--snapshot-count N]\n"
            "       jepsen/run --cleanup [--all]\n");
}

void jr_worker_retire(jr_worker *w)
{
    /* Jepsen's rule: a process with an operation of unknown outcome may
     * still be running it, so the worker continues as a new process. */
    w->process += w->run->concurrency;
}

static const jr_workload *workload_of(const char *name)
{
    static const jr_workload *const all[] = {&jr_wl_register, &jr_wl_append,
                                             &jr_wl_watch, &jr_wl_lease};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}

static const jr_workload *wl;

static void *worker_thread(void *arg)
{
    jr_worker *w = arg;
    jr_run *r = w->run;
    double per_ms = r->rate > 0 ? 1000.0 * r->concurrency / r->rate : 0;
    while (!atomic_load(&r->stop)) {
        wl->op(w);
        if (per_ms > 0) {
            int ms = (int)(per_ms *
                           (0.5 + (double)jr_randn(&w->rng, 1000) / 1000.0));
            jr_sleep_ms(ms);
        }
    }
    return NULL;
}

static int run_checker(jr_run *r, char *verdict, size_t cap)
{
    snprintf(verdict, cap, "unknown");
    if (!r->checker || !r->checker[0] || access(r->checker, X_OK)) {
        snprintf(verdict, cap, "unknown (no jepsen-check)");
        return 2;
    }
    int rc = jr_sh(r,
                   "'%s' --workload %s --budget-ms 120000 --out "
                   "'%s/checker.json' '%s/history.jsonl' 2>'%s/checker.txt'",
                   r->checker, r->workload, r->dir, r->dir, r->dir);
    char p[PATH_MAX + 32], line[512] = "";
    snprintf(p, sizeof p, "%s/checker.txt", r->dir);
    FILE *f = fopen(p, "r");
    if (f) {
        if (fgets(line, sizeof line, f))
            line[strcspn(line, "\n")] = 0;
        fclose(f);
    }
    snprintf(verdict, cap, "%s", line[0] ? line : "no output");
    return rc;
}

static int setup_run(jr_run *r)
{
    snprintf(r->prefix, sizeof r->prefix, "sj%d", (int)getpid());
    jr_fmt(r->bridge, sizeof r->bridge, "%sb", r->prefix);
    jr_fmt(r->token, sizeof r->token, "jepsen-%s", r->prefix);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    jr_fmt(r->dir, sizeof r->dir, "%s/%s-%s-%d", r->store_root, r->workload, ts,
           (int)getpid());
    if (jr_mkdirs(r->dir)) {
        fprintf(stderr, "jepsen: cannot create %s\n", r->dir);
        return -1;
    }
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/nemesis.log", r->dir);
    r->nemlog = fopen(p, "w");
    snprintf(p, sizeof p, "%s/nemesis.dat", r->dir);
    r->nemdat = fopen(p, "w");
    char hp[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/history.jsonl", r->dir);
    snprintf(hp, sizeof hp, "%s/ops.dat", r->dir);
    if (!r->nemlog || !r->nemdat || jr_hist_open(r, p, hp))
        return -1;
    for (int i = 0; i < r->n; i++) {
        jr_node *nd = &r->nodes[i];
        nd->idx = i;
        nd->netq_out = -1;
        jr_fmt(nd->name, sizeof nd->name, "n%d", i + 1);
        jr_fmt(nd->ns, sizeof nd->ns, "%sn%d", r->prefix, i + 1);
        jr_fmt(nd->veth, sizeof nd->veth, "%sv%d", r->prefix, i + 1);
        /* ip, endpoint and peer URL: jr_net_setup, once the subnet is
         * chosen */
        jr_fmt(nd->data_dir, sizeof nd->data_dir, "%s/%s.data", r->dir,
               nd->name);
        jr_fmt(nd->log_path, sizeof nd->log_path, "%s/%s.log", r->dir,
               nd->name);
        jr_fmt(nd->undo_dir, sizeof nd->undo_dir, "%s/%s.undo", r->dir,
               nd->name);
        jr_fmt(nd->fake_file, sizeof nd->fake_file, "%s/%s.faketime", r->dir,
               nd->name);
        if (jr_mkdirs(nd->undo_dir))
            return -1;
        FILE *ff = fopen(nd->fake_file, "w");
        if (!ff)
            return -1;
        /* A fixed skew per member from the start (clock nemesis only
         * uses the file; others never preload libfaketime). */
        fprintf(ff, "%+ds\n", r->use_faketime ? (i * 7) % 11 - 5 : 0);
        fclose(ff);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static jr_run run;
    jr_run *r = &run;
    const char *nemesis = "none";
    int cleanup = 0, cleanup_all = 0;
    r->workload = "register";
    r->n = 3;
    r->time_limit_s = 30;
    r->concurrency = 5;
    r->rate = 50;
    r->seed = (uint64_t)time(NULL);
    r->skiffd =
        getenv("JEPSEN_SKIFFD") ? getenv("JEPSEN_SKIFFD") : JEPSEN_SKIFFD;
    r->checker = JEPSEN_CHECK;
    r->shim = JEPSEN_SHIM;
    r->netq = getenv("JEPSEN_NETQ") ? getenv("JEPSEN_NETQ") : JEPSEN_NETQ;
    r->faketime_lib = FAKETIME_LIB;
    r->store_root =
        getenv("JEPSEN_STORE") ? getenv("JEPSEN_STORE") : JEPSEN_STORE;
    r->nemesis_interval_s = 3;
    static const struct option lo[] = {{"workload", 1, 0, 'w'},
                                       {"nemesis", 1, 0, 'N'},
                                       {"nodes", 1, 0, 'n'},
                                       {"time-limit", 1, 0, 't'},
                                       {"concurrency", 1, 0, 'c'},
                                       {"rate", 1, 0, 'r'},
                                       {"seed", 1, 0, 's'},
                                       {"unsafe", 1, 0, 'u'},
                                       {"skiffd", 1, 0, 'S'},
                                       {"checker", 1, 0, 'C'},
                                       {"store", 1, 0, 'o'},
                                       {"cleanup", 0, 0, 'x'},
                                       {"all", 0, 0, 'a'},
                                       {"kill-all", 0, 0, 'K'},
                                       {"interval", 1, 0, 'i'},
                                       {"help", 0, 0, 'h'},
                                       {"snapshot-count", 1, 0, 'P'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'w':
            r->workload = optarg;
            break;
        case 'N':
            nemesis = optarg;
            break;
        case 'n':
            r->n = atoi(optarg);
            break;
        case 't':
            r->time_limit_s = atoi(optarg);
            break;
        case 'c':
            r->concurrency = atoi(optarg);
            break;
        case 'r':
            r->rate = atof(optarg);
            break;
        case 's':
            r->seed = strtoull(optarg, NULL, 0);
            break;
        case 'u':
            r->unsafe = optarg;
            break;
        case 'S':
            r->skiffd = optarg;
            break;
        case 'C':
            r->checker = optarg;
            break;
        case 'o':
            r->store_root = optarg;
            break;
        case 'x':
            cleanup = 1;
            break;
        case 'a':
            cleanup_all = 1;
            break;
        case 'K':
            r->kill_all = 1;
            break;
        case 'i':
            r->nemesis_interval_s = atoi(optarg);
            break;
        case 'P':
            r->snapshot_count = atoi(optarg);
            break;
        default:
            usage();
            return 3;
        }
    }
    if (cleanup) {
        int k = jr_net_cleanup_stale(cleanup_all);
        fprintf(stderr, "jepsen: removed %d stale namespaces\n", k);
        return 0;
    }
    wl = workload_of(r->workload);
    if (!wl || (r->n != 3 && r->n != 5) || r->concurrency < 1 ||
        r->concurrency > 64 || r->time_limit_s < 1 ||
        jr_nemesis_parse(nemesis, &r->nemeses)) {
        usage();
        return 3;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "jepsen: needs root (network namespaces)\n");
        return 3;
    }
    if (access(r->skiffd, X_OK)) {
        fprintf(stderr, "jepsen: skiffd %s: %s\n", r->skiffd, strerror(errno));
        return 3;
    }
    r->use_shim = (r->nemeses & JR_NEM_DISK) ||
                  (r->unsafe && !strcmp(r->unsafe, "no-fsync"));
    r->use_faketime = (r->nemeses & JR_NEM_CLOCK) != 0;
    if (r->use_shim && access(r->shim, R_OK)) {
        fprintf(stderr, "jepsen: disk shim %s missing\n", r->shim);
        return 3;
    }
    if ((r->nemeses & JR_NEM_NETEM) && access(r->netq, X_OK)) {
        fprintf(stderr, "jepsen: jepsen-netq %s: %s\n", r->netq,
                strerror(errno));
        return 3;
    }
    if (r->use_faketime && access(r->faketime_lib, R_OK)) {
        fprintf(stderr, "jepsen: %s missing (apt-get install faketime)\n",
                r->faketime_lib);
        return 3;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->replay_lock, NULL);
    r->t0 = jr_now_ns();
    jr_the_run = r;

    /* Signals go to one thread that tears down; workers never see them. */
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t sigth;
    pthread_create(&sigth, NULL, signal_thread, &set);
    pthread_detach(sigth);
    atexit(teardown);

    jr_net_cleanup_stale(0);
    if (setup_run(r)) {
        fprintf(stderr, "jepsen: cannot set up the run directory\n");
        return 3;
    }
    if (jr_net_setup(r)) {
        fprintf(stderr, "jepsen: FAILED to set up the cluster network; "
                        "this run tests nothing\n");
        return 3;
    }
    jr_log(r,
           "run %s: workload %s nemesis %s nodes %d seed %llu%s%s "
           "subnet 10.231.%d.0/24%s",
           r->prefix, r->workload, nemesis, r->n, (unsigned long long)r->seed,
           r->unsafe ? " unsafe " : "", r->unsafe ? r->unsafe : "", r->subnet,
           r->netem_fallback ? " (NETEM FALLBACK: iptables loss only)" : "");
    for (int i = 0; i < r->n; i++)
        if (jr_node_start(r, i, "new")) {
            fprintf(stderr, "jepsen: cannot start %s\n", r->nodes[i].name);
            return 3;
        }
    for (int i = 0; i < r->n; i++)
        if (jr_node_wait_ready(r, i, 20000)) {
            fprintf(stderr, "jepsen: %s did not start (see %s)\n",
                    r->nodes[i].name, r->nodes[i].log_path);
            return 3;
        }
    if (jr_leader(r, 20000) < 0) {
        fprintf(stderr, "jepsen: no leader elected\n");
        return 3;
    }
    if (wl->setup(r))
        return 3;

    jr_worker *ws = calloc((size_t)r->concurrency, sizeof *ws);
    pthread_t *th = calloc((size_t)r->concurrency, sizeof *th);
    if (!ws || !th)
        return 3;
    for (int i = 0; i < r->concurrency; i++) {
        ws[i] = (jr_worker){.run = r,
                            .id = i,
                            .process = i,
                            .rng = {r->seed * 1000003ULL + (uint64_t)i}};
        ws[i].c = jr_client(r, i, -1, 3000);
        if (!ws[i].c)
            return 3;
        pthread_create(&th[i], NULL, worker_thread, &ws[i]);
    }
    pthread_t extra, nem;
    if (wl->extra_thread)
        pthread_create(&extra, NULL, wl->extra_thread, r);
    pthread_create(&nem, NULL, jr_nemesis_thread, r);

    /* The time limit is the run's schedule, not a synchronisation. */
    jr_sleep_ms(r->time_limit_s * 1000);
    atomic_store(&r->nem_stop, 1);
    pthread_join(nem, NULL);
    jr_nemesis_heal_all(r);
    jr_log(r, "healed; stopping the workload");
    atomic_store(&r->stop, 1);
    for (int i = 0; i < r->concurrency; i++) {
        pthread_join(th[i], NULL);
        skiff_client_destroy(ws[i].c);
        free(ws[i].state);
    }
    if (wl->extra_thread)
        pthread_join(extra, NULL);
    free(ws);
    free(th);

    jr_final_checks(r, wl);
    jr_hist_close(r->hist);
    r->hist = NULL;
    fclose(r->nemdat);
    r->nemdat = NULL;

    char verdict[512];
    int crc = run_checker(r, verdict, sizeof verdict);
    jr_plot(r);

    /* results.json: the checker's result plus the end-of-run checks. */
    char p[PATH_MAX + 32];
    if (snprintf(p, sizeof p, "%s/checker.json", r->dir) >= (int)sizeof p)
        p[0] = 0; /* a run dir that long cannot exist (PATH_MAX) */
    static char cj[1 << 20];
    size_t cl = 0;
    FILE *f = p[0] ? fopen(p, "r") : NULL;
    if (f) {
        cl = fread(cj, 1, sizeof cj - 1, f);
        fclose(f);
    }
    cj[cl] = 0;
    while (cl && (cj[cl - 1] == '\n' || cj[cl - 1] == ' '))
        cj[--cl] = 0;
    int invalid = crc == 1 || !r->final_ok;
    const char *valid = invalid ? "false" : crc == 0 ? "true" : "\"unknown\"";
    if (snprintf(p, sizeof p, "%s/results.json", r->dir) >= (int)sizeof p)
        p[0] = 0;
    f = p[0] ? fopen(p, "w") : NULL;
    if (f) {
        fprintf(f,
                "{\"valid\":%s,\"workload\":\"%s\",\"nemesis\":\"%s\","
                "\"nodes\":%d,\"seed\":%llu,\"unsafe\":%s%s%s,"
                "\"netem_fallback\":%s,\"checker\":%s,\"end_of_run\":{%s,"
                "\"valid\":%s}}\n",
                valid, r->workload, nemesis, r->n, (unsigned long long)r->seed,
                r->unsafe ? "\"" : "", r->unsafe ? r->unsafe : "null",
                r->unsafe ? "\"" : "", r->netem_fallback ? "true" : "false",
                cl ? cj : "null", r->final_json,
                r->final_ok ? "true" : "false");
        fclose(f);
    }
    printf("jepsen: %s checker: %s\n", r->workload, verdict);
    printf("jepsen: %s end-of-run: %s (%s)\n", r->workload,
           r->final_ok ? "valid" : "INVALID", r->final_json);
    printf("jepsen: results in %s\n", r->dir);
    fflush(stdout);
    teardown();
    /* A valid run's stores are of no further use and are large; so are
     * those of an unsafe-switch run, which is meant to be invalid. */
    if (!invalid || r->unsafe)
        for (int i = 0; i < r->n; i++)
            jr_sh(r, "rm -rf '%s' '%s'", r->nodes[i].data_dir,
                  r->nodes[i].undo_dir);
    if (r->nemlog)
        fclose(r->nemlog);
    return invalid ? 1 : crc == 0 ? 0 : 2;
}
