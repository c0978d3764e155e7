/*
 * Scenario runner: replays the scripts in tests/raft/scenarios/ against a
 * simulated cluster (tests/sim/cluster.c) and compares the output of each
 * command with the expected lines that follow it.
 *
 * A script is a list of commands, one per line.  Lines starting with '#'
 * are comments.  Lines starting with "> " right after a command are the
 * output that command must print, exactly; a command without them is not
 * compared.  After every command the cluster's safety checker runs, so a
 * scenario also fails on any invariant violation.  Members are named by
 * id.  Commands:
 *
 *   cluster N [prevote] [checkquorum] [lease] [election=E] [heartbeat=H]
 *             [inflight=K] [msgbytes=B]      start N voters (ids 1..N)
 *   add-node                                 a fresh member; prints its id
 *   campaign ID | tick ID [n] | tick-all [n]
 *   run [n]                                  n rounds of tick-all + stabilize
 *   propose ID [n] | read ID | compact ID
 *   conf ID add-voter|add-learner|remove TARGET
 *   transfer ID TARGET
 *   deliver [from=ID] [to=ID] [type=T] [count=N] [nth=K]
 *                                            deliver matching messages in
 *                                            send order (from the K-th
 *                                            match on); prints them
 *   drop [from=ID] [to=ID] [type=T] [count=N]
 *   dup [from=ID] [to=ID] [type=T]           deliver one, keep it queued
 *   msgs                                     list messages in flight
 *   reads                                    reads answered since last time
 *   stabilize                                deliver and persist until idle
 *   partition A B | C D   block A B <-> C D;  block FROM TO (one way); heal
 *   crash ID | restart ID
 *   hold ID | persist ID [n] | release ID    control a member's disk
 *   truncate-log ID INDEX                    lose durable entries >= INDEX
 *   set-prevote ID on|off                    PreVote from the next restart
 *   status ID | log ID | conf-of ID | progress ID PEER
 *
 * Usage: raft_scenarios DIR [FILE...]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cluster.h"
#include "tu.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct out {
    char buf[16384];
    size_t len;
} out;

static void outf(out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void outf(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
    if (o->len >= sizeof(o->buf) - 1)
        o->len = sizeof(o->buf) - 2;
    o->buf[o->len++] = '\n';
    o->buf[o->len] = 0;
}

typedef struct script {
    const char *path;
    sim_cluster *c;
    int lineno;
} script;

static int slot_of(script *s, const char *tok)
{
    if (!tok || !s->c)
        return -1;
    return sim_slot(s->c, strtoull(tok, NULL, 10));
}

static const char *kv(char **argv, int argc, const char *key)
{
    size_t n = strlen(key);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=')
            return argv[i] + n + 1;
    return NULL;
}

static uint32_t type_of(const char *name)
{
    for (uint32_t t = 1; t < RAFT_MSG_TYPE_MAX; t++)
        if (!strcasecmp(name, raft_msg_type_name(t)))
            return t;
    return 0;
}

static bool matches(const raft_msg *m, char **argv, int argc)
{
    const char *f = kv(argv, argc, "from"), *t = kv(argv, argc, "to"),
               *ty = kv(argv, argc, "type");
    if (f && m->from != strtoull(f, NULL, 10))
        return false;
    if (t && m->to != strtoull(t, NULL, 10))
        return false;
    if (ty && m->type != type_of(ty))
        return false;
    return true;
}

static void print_status(script *s, out *o, int slot)
{
    raft_status st;
    raft_status_get(s->c->nodes[slot].r, &st);
    outf(o,
         "%llu %s term=%llu vote=%llu lead=%llu commit=%llu applied=%llu "
         "last=%llu",
         (unsigned long long)st.id, raft_role_name(st.role),
         (unsigned long long)st.term, (unsigned long long)st.vote,
         (unsigned long long)st.lead, (unsigned long long)st.commit,
         (unsigned long long)st.applied, (unsigned long long)st.last_index);
}

static void print_log(script *s, out *o, int slot)
{
    raft *r = s->c->nodes[slot].r;
    raft_status st;
    raft_status_get(r, &st);
    char line[4096];
    size_t n = 0;
    line[0] = 0;
    for (uint64_t i = st.first_index; i <= st.last_index; i++) {
        const raft_entry *e;
        if (raft_entry_at(r, i, &e))
            break;
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%llu/%llu%s",
                              n ? " " : "", (unsigned long long)e->index,
                              (unsigned long long)e->term,
                              e->type == RAFT_ENTRY_CONF   ? "c"
                              : e->type == RAFT_ENTRY_NOOP ? "n"
                                                           : "");
        if (n >= sizeof(line) - 32)
            break;
    }
    outf(o, "%s", n ? line : "(empty)");
}

static void print_conf(out *o, const raft_conf *c)
{
    char line[512];
    size_t n = (size_t)snprintf(line, sizeof(line), "voters=");
    for (uint32_t i = 0; i < c->n_voters; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%llu",
                              i ? "," : "", (unsigned long long)c->voters[i]);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " learners=");
    for (uint32_t i = 0; i < c->n_learners; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%llu",
                              i ? "," : "", (unsigned long long)c->learners[i]);
    outf(o, "%s", line);
}

static void print_rc(script *s, out *o, int slot, int rc, const char *what,
                     uint64_t v)
{
    if (rc == 0)
        outf(o, "ok %s=%llu", what, (unsigned long long)v);
    else if (rc == RAFT_ENOTLEADER && s->c->nodes[slot].r)
        outf(o, "error %s lead=%llu", cm_err_name(rc),
             (unsigned long long)raft_leader(s->c->nodes[slot].r));
    else
        outf(o, "error %s", cm_err_name(rc));
}

static int cmd_cluster(script *s, char **argv, int argc)
{
    sim_destroy(s->c); /* a script may start over with a new cluster */
    s->c = NULL;
    sim_opts o = {.n = atoi(argv[1]), .seed = 1};
    o.cfg.election_ticks = 10;
    o.cfg.heartbeat_ticks = 1;
    o.cfg.async_storage = true;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "prevote"))
            o.cfg.pre_vote = true;
        else if (!strcmp(argv[i], "checkquorum"))
            o.cfg.check_quorum = true;
        else if (!strcmp(argv[i], "lease"))
            o.cfg.lease_read = true;
    }
    const char *v;
    if ((v = kv(argv, argc, "election")))
        o.cfg.election_ticks = atoi(v);
    if ((v = kv(argv, argc, "heartbeat")))
        o.cfg.heartbeat_ticks = atoi(v);
    if ((v = kv(argv, argc, "inflight")))
        o.cfg.max_inflight = (size_t)atoi(v);
    if ((v = kv(argv, argc, "msgbytes")))
        o.cfg.max_msg_bytes = (size_t)atoi(v);
    if ((v = kv(argv, argc, "seed")))
        o.seed = strtoull(v, NULL, 10);
    return sim_create(&o, &s->c);
}

static int deliver_matching(script *s, out *o, char **argv, int argc, int mode)
{
    sim_cluster *c = s->c;
    const char *cs = kv(argv, argc, "count");
    long count = cs ? atol(cs) : (mode == 2 ? 1 : -1);
    uint64_t limit = c->net_seq;
    const char *nth = kv(argv, argc, "nth");
    long skip = nth ? atol(nth) - 1 : 0;
    for (long done = 0; count < 0 || done < count; done++) {
        size_t k = 0;
        long skipped = 0;
        while (k < c->n_net &&
               (c->net[k]->seq >= limit ||
                !matches(&c->net[k]->m, argv, argc) || skipped++ < skip))
            k++;
        if (k == c->n_net)
            break;
        char buf[256];
        sim_msg_str(&c->net[k]->m, buf, sizeof(buf));
        outf(o, "%s", buf);
        if (mode == 1)
            sim_drop(c, k);
        else if (sim_deliver(c, k, mode == 2))
            return -1;
        if (mode == 2)
            break;
    }
    return 0;
}

static void set_partition(script *s, char **argv, int argc)
{
    int side[SIM_MAX_NODES];
    for (int i = 0; i < SIM_MAX_NODES; i++)
        side[i] = -1;
    int cur = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "|")) {
            cur++;
            continue;
        }
        int sl = slot_of(s, argv[i]);
        if (sl >= 0)
            side[sl] = cur;
    }
    for (int a = 0; a < SIM_MAX_NODES; a++)
        for (int b = 0; b < SIM_MAX_NODES; b++)
            if (side[a] >= 0 && side[b] >= 0 && side[a] != side[b])
                sim_block(s->c, a, b, true);
}

/* Runs one command; -1 on a harness failure or unknown command. */
static int run(script *s, char **argv, int argc, out *o)
{
    const char *cmd = argv[0];
    if (!strcmp(cmd, "cluster"))
        return cmd_cluster(s, argv, argc);
    sim_cluster *c = s->c;
    if (!c)
        return -1;
    c->step++;
    int sl = slot_of(s, argc > 1 ? argv[1] : NULL);
    int n = argc > 2 ? atoi(argv[2]) : 1;
    raft *r = sl >= 0 ? c->nodes[sl].r : NULL;
    bool need_node =
        strcmp(cmd, "add-node") && strcmp(cmd, "tick-all") &&
        strcmp(cmd, "deliver") && strcmp(cmd, "drop") && strcmp(cmd, "dup") &&
        strcmp(cmd, "msgs") && strcmp(cmd, "reads") && strcmp(cmd, "run") &&
        strcmp(cmd, "stabilize") && strcmp(cmd, "partition") &&
        strcmp(cmd, "heal") && strcmp(cmd, "block") && strcmp(cmd, "restart") &&
        strcmp(cmd, "truncate-log") && strcmp(cmd, "set-prevote");
    if (need_node && !r) {
        outf(o, "error: no running member %s", argc > 1 ? argv[1] : "?");
        return 0;
    }
    int rc = 0;
    uint64_t v = 0;
    if (!strcmp(cmd, "add-node")) {
        int ns = sim_add_node(c);
        outf(o, "added %llu",
             ns < 0 ? 0ull : (unsigned long long)c->nodes[ns].id);
    } else if (!strcmp(cmd, "campaign")) {
        rc = raft_campaign(r);
        sim_process(c, sl);
    } else if (!strcmp(cmd, "tick")) {
        for (int i = 0; i < n && c->nodes[sl].r; i++) {
            rc = raft_tick(c->nodes[sl].r);
            sim_process(c, sl);
        }
    } else if (!strcmp(cmd, "tick-all")) {
        n = argc > 1 ? atoi(argv[1]) : 1;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < SIM_MAX_NODES; k++)
                if (c->nodes[k].r) {
                    raft_tick(c->nodes[k].r);
                    sim_process(c, k);
                }
    } else if (!strcmp(cmd, "run")) {
        /* n rounds of: every running member ticks, then the network and
         * disks settle. */
        n = argc > 1 ? atoi(argv[1]) : 1;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < SIM_MAX_NODES; k++)
                if (c->nodes[k].r) {
                    raft_tick(c->nodes[k].r);
                    sim_process(c, k);
                }
            if (sim_settle(c) || sim_check(c))
                return -1;
        }
    } else if (!strcmp(cmd, "propose")) {
        /* Proposals made together share append messages. */
        for (int i = 0; i < n; i++) {
            rc = sim_propose_nowait(c, sl, &v);
            print_rc(s, o, sl, rc, "index", v);
        }
        sim_process(c, sl);
    } else if (!strcmp(cmd, "read")) {
        rc = sim_read(c, sl, &v);
        print_rc(s, o, sl, rc, "ctx", v);
    } else if (!strcmp(cmd, "compact")) {
        rc = sim_compact(c, sl);
        raft_snapshot_meta m;
        raft_snapshot_get(r, &m);
        print_rc(s, o, sl, rc, "snapshot", m.index);
    } else if (!strcmp(cmd, "conf")) {
        if (argc < 4)
            return -1;
        enum raft_conf_op op =
            !strcmp(argv[2], "add-voter")     ? RAFT_CONF_ADD_VOTER
            : !strcmp(argv[2], "add-learner") ? RAFT_CONF_ADD_LEARNER
                                              : RAFT_CONF_REMOVE;
        rc = raft_propose_conf(r, op, strtoull(argv[3], NULL, 10), &v);
        print_rc(s, o, sl, rc, "index", v);
        sim_process(c, sl);
    } else if (!strcmp(cmd, "transfer")) {
        if (argc < 3)
            return -1;
        rc = raft_transfer_leader(r, strtoull(argv[2], NULL, 10));
        print_rc(s, o, sl, rc, "to", strtoull(argv[2], NULL, 10));
        sim_process(c, sl);
    } else if (!strcmp(cmd, "deliver")) {
        return deliver_matching(s, o, argv, argc, 0);
    } else if (!strcmp(cmd, "drop")) {
        return deliver_matching(s, o, argv, argc, 1);
    } else if (!strcmp(cmd, "dup")) {
        return deliver_matching(s, o, argv, argc, 2);
    } else if (!strcmp(cmd, "msgs")) {
        for (size_t k = 0; k < c->n_net; k++) {
            char buf[256];
            sim_msg_str(&c->net[k]->m, buf, sizeof(buf));
            outf(o, "%s", buf);
        }
        if (!c->n_net)
            outf(o, "(none)");
    } else if (!strcmp(cmd, "reads")) {
        for (size_t k = 0; k < c->n_answers; k++)
            outf(o, "%llu: read %llu at index %llu",
                 (unsigned long long)c->answers[k].node,
                 (unsigned long long)c->answers[k].ctx,
                 (unsigned long long)c->answers[k].index);
        if (!c->n_answers)
            outf(o, "(none)");
        c->n_answers = 0;
    } else if (!strcmp(cmd, "stabilize")) {
        return sim_settle(c);
    } else if (!strcmp(cmd, "partition")) {
        set_partition(s, argv, argc);
    } else if (!strcmp(cmd, "block")) {
        int b = slot_of(s, argc > 2 ? argv[2] : NULL);
        if (sl < 0 || b < 0)
            return -1;
        sim_block(c, sl, b, true);
    } else if (!strcmp(cmd, "heal")) {
        sim_heal(c);
    } else if (!strcmp(cmd, "crash")) {
        sim_crash(c, sl);
    } else if (!strcmp(cmd, "restart")) {
        if (sl < 0)
            return -1;
        if (sim_restart(c, sl))
            outf(o, "error: %s", c->err);
        else
            sim_process(c, sl);
        c->failed = 0;
    } else if (!strcmp(cmd, "truncate-log")) {
        /* A torn write lost the durable log from index n on. */
        sim_node *nd = &c->nodes[sl];
        uint64_t from = strtoull(argv[2], NULL, 10);
        while (nd->n_log && nd->log[nd->n_log - 1].index >= from) {
            raft_blob_unref(nd->log[nd->n_log - 1].blob);
            nd->n_log--;
        }
    } else if (!strcmp(cmd, "set-prevote")) {
        /* Takes effect at the member's next restart (an upgrade). */
        c->nodes[sl].pre_vote = argc > 2 && !strcmp(argv[2], "on");
    } else if (!strcmp(cmd, "hold")) {
        c->nodes[sl].hold = true;
    } else if (!strcmp(cmd, "persist")) {
        if (argc < 3)
            n = (int)c->nodes[sl].n_wq;
        rc = sim_persist(c, sl, (size_t)n);
        sim_process(c, sl);
    } else if (!strcmp(cmd, "release")) {
        c->nodes[sl].hold = false;
        rc = sim_persist(c, sl, SIZE_MAX);
        sim_process(c, sl);
    } else if (!strcmp(cmd, "status")) {
        print_status(s, o, sl);
    } else if (!strcmp(cmd, "log")) {
        print_log(s, o, sl);
    } else if (!strcmp(cmd, "conf-of")) {
        raft_status st;
        raft_status_get(r, &st);
        print_conf(o, &st.conf);
    } else if (!strcmp(cmd, "progress")) {
        uint64_t match, next;
        int state;
        if (argc < 3 || raft_progress_get(r, strtoull(argv[2], NULL, 10),
                                          &match, &next, &state))
            outf(o, "error: no progress");
        else
            outf(o, "match=%llu next=%llu state=%s", (unsigned long long)match,
                 (unsigned long long)next,
                 state == 0   ? "probe"
                 : state == 1 ? "replicate"
                              : "snapshot");
    } else {
        return -1;
    }
    (void)rc;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    return b;
}

static void run_script(void **state)
{
    const char *path = *state;
    char *text = read_file(path);
    assert_non_null(text);
    script s = {.path = path};
    char *save = NULL;
    char *lines[4096];
    int nl = 0;
    for (char *l = strtok_r(text, "\n", &save); l && nl < 4096;
         l = strtok_r(NULL, "\n", &save))
        lines[nl++] = l;
    /* strtok_r skips empty lines, which is what we want. */
    int fails = 0;
    for (int i = 0; i < nl && !fails; i++) {
        char *l = lines[i];
        while (isspace((unsigned char)*l))
            l++;
        if (*l == '#' || *l == '>' || *l == 0)
            continue;
        char copy[512];
        snprintf(copy, sizeof(copy), "%s", l);
        char *argv[32];
        int argc = 0;
        char *sv = NULL;
        for (char *t = strtok_r(copy, " \t", &sv); t && argc < 32;
             t = strtok_r(NULL, " \t", &sv))
            argv[argc++] = t;
        out o = {.len = 0};
        o.buf[0] = 0;
        s.lineno = i + 1;
        if (run(&s, argv, argc, &o) != 0) {
            print_error("%s: command '%s' failed: %s\n", path, l,
                        s.c ? s.c->err : "no cluster");
            fails++;
            break;
        }
        if (s.c && sim_check(s.c)) {
            print_error("%s: after '%s': invariant violated: %s\n", path, l,
                        s.c->err);
            sim_dump_trace(s.c, stderr);
            fails++;
            break;
        }
        if (getenv("RAFT_SCENARIO_PRINT")) {
            printf("%s\n", l);
            for (char *p = o.buf; *p;) {
                char *e = strchr(p, '\n');
                printf("> %.*s\n", (int)(e ? e - p : (long)strlen(p)), p);
                p = e ? e + 1 : p + strlen(p);
            }
        }
        /* Compare with the expected block, if any. */
        char expect[16384];
        size_t el = 0;
        bool has = false;
        int j = i + 1;
        while (j < nl && lines[j][0] == '>') {
            const char *e = lines[j][1] == ' ' ? lines[j] + 2 : lines[j] + 1;
            el += (size_t)snprintf(expect + el, sizeof(expect) - el, "%s\n", e);
            has = true;
            j++;
        }
        if (has && strcmp(expect, o.buf) != 0) {
            print_error("%s: '%s'\n--- expected ---\n%s--- got ---\n%s", path,
                        l, expect, o.buf);
            fails++;
        }
    }
    sim_destroy(s.c);
    free(text);
    if (fails)
        fail_msg("scenario %s failed", path);
}

static int setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: raft_scenarios DIR [FILE...]\n");
        return 2;
    }
    char *files[512];
    int n = 0;
    if (argc > 2) {
        for (int i = 2; i < argc && n < 512; i++) {
            files[n] = malloc(strlen(argv[1]) + strlen(argv[i]) + 2);
            sprintf(files[n++], "%s/%s", argv[1], argv[i]);
        }
    } else {
        DIR *d = opendir(argv[1]);
        if (!d) {
            perror(argv[1]);
            return 2;
        }
        struct dirent *de;
        while ((de = readdir(d)) && n < 512) {
            size_t len = strlen(de->d_name);
            if (len < 5 || strcmp(de->d_name + len - 4, ".txt"))
                continue;
            files[n] = malloc(strlen(argv[1]) + len + 2);
            sprintf(files[n++], "%s/%s", argv[1], de->d_name);
        }
        closedir(d);
    }
    qsort(files, (size_t)n, sizeof(files[0]), by_name);
    struct CMUnitTest *tests = calloc((size_t)n, sizeof(*tests));
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(files[i], '/');
        tests[i].name = base ? base + 1 : files[i];
        tests[i].test_func = run_script;
        tests[i].setup_func = setup;
        tests[i].teardown_func = teardown;
        tests[i].initial_state = files[i];
    }
    int rc =
        _cmocka_run_group_tests("raft_scenarios", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(tests);
    return rc;
}
