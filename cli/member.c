/*
 * Cluster membership commands: member list / add / remove / promote and
 * move-leader.
 *
 * They follow etcdctl 3.5: the same arguments and flags, the same output
 * lines ("Member <id> added to cluster <cid>", hex IDs as %x prints them),
 * usage errors exit 128 and store errors 1.  The one deliberate change is
 * what `member add` prints after its first line: etcd prints ETCD_NAME=...
 * environment variables for the new member, skiffd takes flags, so the
 * same settings come as the skiffd flags the new member must start with:
 *
 *   --name=<name>
 *   --initial-cluster=<name=peer URL,...>
 *   --initial-advertise-peer-urls=<peer URLs>
 *   --initial-cluster-state=existing
 *
 * Membership changes go to any endpoint (members forward them); move-leader
 * needs the leader, which skiff_move_leader finds by itself.
 */
#include "cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Opens a JSON object holding the header. */
static void json_header_obj(const skiff_header *h)
{
    putchar('{');
    out_json_header(stdout, h);
}

/* Parses a hex member ID as etcdctl does (strconv.ParseUint(s, 16, 64)).
 * 0 or -1. */
static int parse_id(const char *s, uint64_t *id)
{
    char *end;
    if (!*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    /* strtoull takes a 0x prefix and spaces, ParseUint does not. */
    if (*end || errno || strchr(s, 'x') || strchr(s, 'X') || strchr(s, ' '))
        return -1;
    *id = v;
    return 0;
}

/* The member ID argument of remove/promote, or an exit code. */
static int id_arg(char **pos, int npos, uint64_t *id)
{
    if (npos < 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "member ID is not provided");
    if (parse_id(pos[0], id))
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "bad member ID arg (strconv.ParseUint: parsing "
                          "\"%s\": invalid syntax), expecting ID in Hex",
                          pos[0]);
    return 0;
}

/* A membership reply as JSON: header, the new member (add) and members. */
static void json_reply(const skiff_result *r, int with_member)
{
    json_header_obj(&r->header);
    if (with_member) {
        printf(",\"member\":");
        out_json_member(stdout, &r->member);
    }
    printf(",\"members\":");
    out_json_members(stdout, r->members, r->n_members);
    puts("}");
}

/* Runs one membership call's error path: prints and returns the code. */
static int failed(ctl *x, skiff_client *c, int rc, skiff_result *res)
{
    rc = ctl_fail(x, c, rc, res);
    skiff_result_free(res);
    return rc;
}

/* ---- member list --------------------------------------------------------- */

static int member_list(ctl *x, int npos)
{
    if (npos)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "member list command does not accept arguments");
    skiff_client *c = ctl_client(x);
    skiff_result res;
    int rc = skiff_member_list(c, &res);
    if (rc)
        return failed(x, c, rc, &res);
    if (x->out == CTL_OUT_JSON) {
        json_header_obj(&res.header);
        printf(",\"members\":");
        out_json_members(stdout, res.members, res.n_members);
        puts("}");
        skiff_result_free(&res);
        return 0;
    }
    static const char *head[] = {"ID",         "STATUS",       "NAME",
                                 "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"};
    out_table t;
    out_table_init(&t, head, 6);
    for (size_t i = 0; i < res.n_members; i++) {
        const skiff_member *m = &res.members[i];
        char id[32], peers[1024], clients[1024];
        snprintf(id, sizeof id, "%" PRIx64, m->id);
        out_join(peers, sizeof peers, m->peer_urls, m->n_peer_urls);
        out_join(clients, sizeof clients, m->client_urls, m->n_client_urls);
        /* A member publishes its name when it starts (etcd's rule). */
        const char *status = m->name && m->name[0] ? "started" : "unstarted";
        const char *row[] = {id,    status,  m->name ? m->name : "",
                             peers, clients, m->is_learner ? "true" : "false"};
        if (x->out == CTL_OUT_TABLE)
            out_table_row(&t, row);
        else
            printf("%s, %s, %s, %s, %s, %s\n", row[0], row[1], row[2], row[3],
                   row[4], row[5]);
    }
    if (x->out == CTL_OUT_TABLE)
        out_table_print(&t, stdout);
    skiff_result_free(&res);
    return 0;
}

/* ---- member add ---------------------------------------------------------- */

/* Prints the skiffd flags the new member needs (etcd's ETCD_* lines). */
static void print_start_flags(const char *name, const skiff_result *r,
                              const char *peer_urls)
{
    printf("\n--name=%s\n--initial-cluster=", name);
    int first = 1;
    for (size_t i = 0; i < r->n_members; i++) {
        const skiff_member *m = &r->members[i];
        /* The new member has no name yet: it gets the one given here. */
        const char *n = m->id == r->member.id ? name : m->name ? m->name : "";
        for (size_t j = 0; j < m->n_peer_urls; j++) {
            printf("%s%s=%s", first ? "" : ",", n, m->peer_urls[j]);
            first = 0;
        }
    }
    printf("\n--initial-advertise-peer-urls=%s\n"
           "--initial-cluster-state=existing\n",
           peer_urls);
}

static int member_add(ctl *x, char **pos, int npos, const char *peer_urls,
                      int learner)
{
    if (npos < 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "member name not provided");
    if (npos > 1) {
        char ev[512] = "too many arguments";
        for (int i = 0; i < npos; i++)
            if (!strncasecmp(pos[i], "http", 4)) {
                size_t l = strlen(ev);
                snprintf(ev + l, sizeof ev - l, ", did you mean --peer-urls=%s",
                         pos[i]);
            }
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "%s", ev);
    }
    if (!peer_urls || !*peer_urls)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "member peer urls not provided");
    char *buf = strdup(peer_urls);
    const char *urls[CTL_MAX_ENDPOINTS];
    size_t n = 0;
    if (!buf)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (n < CTL_MAX_ENDPOINTS)
            urls[n++] = t;
    int rc;
    if (n == 0) {
        rc = ctl_errorf(CTL_EXIT_BAD_ARGS, "member peer urls not provided");
        goto out;
    }
    skiff_client *c = ctl_client(x);
    skiff_result res;
    rc = skiff_member_add(c, urls, n, learner, &res);
    if (rc) {
        rc = failed(x, c, rc, &res);
        goto out;
    }
    if (x->out == CTL_OUT_JSON) {
        json_reply(&res, 1);
    } else {
        printf("Member %" PRIx64 " added%sto cluster %" PRIx64 "\n",
               res.member.id, res.member.is_learner ? " as learner " : " ",
               res.header.cluster_id);
        /* etcdctl prints the settings with its simple output only. */
        if (x->out == CTL_OUT_SIMPLE)
            print_start_flags(pos[0], &res, peer_urls);
    }
    skiff_result_free(&res);
out:
    free(buf);
    return rc;
}

/* ---- member remove / promote --------------------------------------------- */

static int member_change(ctl *x, const char *sub, char **pos, int npos)
{
    uint64_t id;
    int rc = id_arg(pos, npos, &id);
    if (rc)
        return rc;
    skiff_client *c = ctl_client(x);
    skiff_result res;
    int promote = !strcmp(sub, "promote");
    rc = promote ? skiff_member_promote(c, id, &res)
                 : skiff_member_remove(c, id, &res);
    if (rc)
        return failed(x, c, rc, &res);
    if (x->out == CTL_OUT_JSON)
        json_reply(&res, 0);
    else
        printf("Member %" PRIx64 " %s cluster %" PRIx64 "\n", id,
               promote ? "promoted in" : "removed from", res.header.cluster_id);
    skiff_result_free(&res);
    return 0;
}

/* member list|add|remove|promote */
int cmd_member(ctl *x, const char *sub, int argc, char **argv)
{
    const char *peer_urls = NULL;
    int learner = 0;
    ctl_flag add_flags[] = {
        {"peer-urls", 0, CTL_STR, &peer_urls},
        {"learner", 0, CTL_BOOL, &learner},
        {NULL, 0, 0, NULL},
    };
    int add = !strcmp(sub, "add");
    char *pos[argc + 1];
    int npos,
        rc = ctl_flags_parse(x, argc, argv, add ? add_flags : NULL, pos, &npos);
    if (rc)
        return rc;
    if (!strcmp(sub, "list"))
        return member_list(x, npos);
    if (add)
        return member_add(x, pos, npos, peer_urls, learner);
    if (!strcmp(sub, "remove") || !strcmp(sub, "promote"))
        return member_change(x, sub, pos, npos);
    return ctl_errorf(CTL_EXIT_ERROR,
                      "unknown command \"%s\" for \"skiffctl member\"", sub);
}

/* ---- move-leader --------------------------------------------------------- */

/* move-leader <hex id> */
int cmd_move_leader(ctl *x, int argc, char **argv)
{
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, NULL, pos, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "move-leader command needs 1 argument but got %d",
                          npos);
    uint64_t target;
    if (parse_id(pos[0], &target))
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "strconv.ParseUint: parsing \"%s\": invalid syntax",
                          pos[0]);
    if (target == 0)
        return ctl_errorf(CTL_EXIT_BAD_ARGS, "member ID 0 is not a member");
    skiff_client *c = ctl_client(x);
    skiff_result res;
    uint64_t from = 0;
    rc = skiff_move_leader(c, target, &from, &res);
    if (rc)
        return failed(x, c, rc, &res);
    if (x->out == CTL_OUT_JSON) {
        json_header_obj(&res.header);
        puts("}");
    } else {
        printf("Leadership transferred from %" PRIx64 " to %" PRIx64 "\n", from,
               target);
    }
    skiff_result_free(&res);
    return 0;
}
