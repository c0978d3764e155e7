/*
 * Starting a member: bootstrap, join or restart, from the data dir.
 *
 * The data dir holds the store (LMDB, with the applied index, its term and
 * the membership), the WAL (wal/) and a small identity file ("member":
 * cluster id and member id).  Ids are derived like etcd's: a member's id
 * from its advertised peer URL and the cluster token, the cluster's id
 * from the token and the initial cluster, so every founding member
 * computes the same ids and a member added later gets the id the leader
 * computed for its peer URL.
 *
 * Restart: the store is the snapshot.  Raft starts from the store's
 * applied index (with its term and membership) and the WAL's hard state
 * and entries after it; the WAL only ever dropped entries the store
 * durably held, so nothing committed is missing.  Flags naming the
 * cluster are ignored then, as etcd ignores them, but a data dir that
 * belongs to another member or cluster is refused.
 */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fnv64(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = b; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    /* Mix, so ids of similar URLs do not look alike. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

uint64_t srv_member_id_of(const char *token, const char *peer_url)
{
    return fnv64(token, peer_url);
}

/* "n1=url1,n2=url2" into parallel arrays; the count or -1. */
static int parse_cluster(char *spec, char **names, char **urls, int cap)
{
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(spec, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1] || n == cap)
            return -1;
        *eq = 0;
        names[n] = tok;
        urls[n++] = eq + 1;
    }
    return n;
}

static int write_identity(const char *dir, uint64_t cid, uint64_t mid)
{
    char path[700], tmp[710];
    snprintf(path, sizeof path, "%s/member", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -errno;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%016llx %016llx\n",
                     (unsigned long long)cid, (unsigned long long)mid);
    int rc = write(fd, buf, (size_t)n) == n && fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (!rc) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return rc;
}

/* 1 and the ids when the file exists, 0 when it does not, -1 if bad. */
static int read_identity(const char *dir, uint64_t *cid, uint64_t *mid)
{
    char path[700];
    snprintf(path, sizeof path, "%s/member", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    unsigned long long a, b;
    int ok = fscanf(f, "%llx %llx", &a, &b) == 2;
    fclose(f);
    if (!ok)
        return -1;
    *cid = a;
    *mid = b;
    return 1;
}

static int conf_of(const Skiffpb__Membership *m, raft_conf *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < m->n_members; i++) {
        const Skiffpb__ClusterMember *x = m->members[i];
        if (c->n_voters + c->n_learners >= RAFT_MAX_MEMBERS)
            return -1;
        if (x->learner)
            c->learners[c->n_learners++] = x->id;
        else
            c->voters[c->n_voters++] = x->id;
    }
    return 0;
}

/* Applies the founding membership at `index` (1 for an empty store),
 * the same state on every founding member, matching the snapshot Raft
 * starts from. */
static int bootstrap_store(server *s, char **names, char **urls, int n,
                           raft_conf *conf, uint64_t index, uint64_t term)
{
    Skiffpb__ClusterMember *mv[RAFT_MAX_MEMBERS], ms[RAFT_MAX_MEMBERS];
    memset(conf, 0, sizeof *conf);
    for (int i = 0; i < n; i++) {
        skiffpb__cluster_member__init(&ms[i]);
        ms[i].id = srv_member_id_of(s->cfg.initial_cluster_token, urls[i]);
        ms[i].name = names[i];
        ms[i].n_peer_urls = 1;
        ms[i].peer_urls = &urls[i];
        mv[i] = &ms[i];
        conf->voters[conf->n_voters++] = ms[i].id;
    }
    Skiffpb__Membership mb = SKIFFPB__MEMBERSHIP__INIT;
    mb.cluster_id = s->cluster_id;
    mb.n_members = (size_t)n;
    mb.members = mv;
    Skiffpb__MemberChange mc = SKIFFPB__MEMBER_CHANGE__INIT;
    mc.op = SKIFFPB__MEMBER_CHANGE__OP__BOOTSTRAP;
    mc.bootstrap = &mb;
    Skiffpb__Command cmd = SKIFFPB__COMMAND__INIT;
    cmd.op_case = SKIFFPB__COMMAND__OP_MEMBER_CHANGE;
    cmd.member_change = &mc;
    cm_buf packed = {0};
    kv_result res;
    int rc = kv_command_pack(&cmd, &packed);
    if (!rc) {
        kv_entry e = {index, packed.base, packed.len, term};
        rc = kv_apply(s->kv, &e, &s->apply_arena, &res);
        if (!rc && res.code)
            rc = res.code;
        cm_arena_reset(&s->apply_arena);
    }
    cm_buf_free(&packed);
    return rc;
}

static raft_config raft_cfg(server *s)
{
    raft_config rc = {0};
    rc.id = s->member_id;
    rc.seed = s->member_id ^ (uint64_t)cm_now_ms();
    rc.heartbeat_ticks = 1;
    rc.election_ticks = (int)(s->cfg.election_ms / s->cfg.heartbeat_ms);
    rc.pre_vote = true;
    rc.check_quorum = true;
    rc.async_storage = true;
    rc.max_msg_bytes = 1 << 20;
    rc.max_inflight = 256;
    return rc;
}

int srv_boot(server *s)
{
    srv_config *c = &s->cfg;
    if (mkdir(c->data_dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "skiffd: --data-dir %s: %s\n", c->data_dir,
                strerror(errno));
        return -1;
    }
    char why[256] = "";
    kv_options ko = {.quota_bytes = c->quota_bytes,
                     .sync = c->unsafe_no_fsync ? KV_SYNC_NONE : KV_SYNC_DATA,
                     .errmsg = why,
                     .errmsg_size = sizeof why};
    int rc = kv_open(&s->kv, c->data_dir, &ko);
    if (rc) {
        CM_ERROR("store refused", "dir=%s error=%s detail=\"%s\"",
                 c->data_dir, kv_err_name(rc), why);
        fprintf(stderr, "skiffd: open store in %s: %s%s%s\n", c->data_dir,
                kv_strerror(rc), why[0] ? ": " : "", why);
        return -1;
    }
    /* Nothing damaged is ever served: every record, index entry, lease
     * and meta value is checked before this member does anything.  A
     * damaged store is refused; the member recovers by being removed and
     * added again (its peers send it a snapshot). */
    int64_t t0 = cm_mono_ms();
    kv_verify_report vr;
    rc = kv_verify(s->kv, &vr);
    if (rc) {
        CM_ERROR("store damaged: refusing to start",
                 "dir=%s error=%s detail=\"%s\"", c->data_dir,
                 kv_err_name(rc), vr.msg);
        fprintf(stderr,
                "skiffd: the store in %s is damaged (%s); refusing to "
                "serve it.  Remove this member (skiffctl member remove), "
                "delete its data dir and add it again: its peers send it a "
                "snapshot.\n",
                c->data_dir, vr.msg);
        return -1;
    }
    CM_INFO("store verified", "records=%llu versions=%llu keys=%llu "
            "leases=%llu ms=%lld",
            (unsigned long long)vr.revs, (unsigned long long)vr.versions,
            (unsigned long long)vr.keys, (unsigned long long)vr.leases,
            (long long)(cm_mono_ms() - t0));
    snprintf(s->wal_dir, sizeof s->wal_dir, "%s/wal", c->data_dir);
    wal_recovered rec = {0};
    rc = wal_open(s->wal_dir, NULL, &s->w, &rec);
    if (rc) {
        fprintf(stderr, "skiffd: open WAL in %s: %s (%s)\n", s->wal_dir,
                cm_strerror(rc), rec.errmsg);
        wal_recovered_free(&rec);
        return -1;
    }
    s->member_id = srv_member_id_of(c->initial_cluster_token,
                                    c->advertise_peer);
    uint64_t cid = 0, mid = 0;
    int have = read_identity(c->data_dir, &cid, &mid);
    if (have < 0) {
        fprintf(stderr, "skiffd: %s/member is unreadable or malformed\n",
                c->data_dir);
        goto bad;
    }
    kv_status st;
    kv_status_meta(s->kv, &st);
    Skiffpb__Membership *mb = NULL;
    if ((rc = kv_membership_get(s->kv, &s->apply_arena, &mb))) {
        fprintf(stderr, "skiffd: reading the membership: %s\n",
                kv_strerror(rc));
        goto bad;
    }
    raft_restore rs = {0};
    char spec[sizeof c->initial_cluster];
    char *names[RAFT_MAX_MEMBERS], *urls[RAFT_MAX_MEMBERS];
    if (have) {
        if (mid != s->member_id) {
            fprintf(stderr,
                    "skiffd: data dir %s belongs to member %016llx but "
                    "--initial-advertise-peer-urls %s and "
                    "--initial-cluster-token %s make this member %016llx; "
                    "refusing to start\n",
                    c->data_dir, (unsigned long long)mid, c->advertise_peer,
                    c->initial_cluster_token,
                    (unsigned long long)s->member_id);
            goto bad;
        }
        s->cluster_id = cid ? cid : mb->cluster_id;
        if (mb->cluster_id && cid && mb->cluster_id != cid) {
            fprintf(stderr,
                    "skiffd: the store in %s belongs to cluster %016llx, "
                    "this member to cluster %016llx; refusing to start\n",
                    c->data_dir, (unsigned long long)mb->cluster_id,
                    (unsigned long long)cid);
            goto bad;
        }
        for (size_t i = 0; i < mb->n_members; i++)
            if (mb->members[i]->id == s->member_id &&
                mb->members[i]->name[0] &&
                strcmp(mb->members[i]->name, c->name)) {
                fprintf(stderr,
                        "skiffd: --name %s does not match the name %s this "
                        "member has in its cluster; refusing to start\n",
                        c->name, mb->members[i]->name);
                goto bad;
            }
        rs.hs = rec.hs;
        if (st.applied_index) {
            rs.snap.index = st.applied_index;
            rs.snap.term = st.applied_term;
            if (conf_of(mb, &rs.snap.conf)) {
                fprintf(stderr, "skiffd: stored membership too large\n");
                goto bad;
            }
            size_t skip = 0;
            while (skip < rec.n_entries &&
                   rec.entries[skip].index <= st.applied_index)
                skip++;
            if (skip < rec.n_entries &&
                rec.entries[skip].index != st.applied_index + 1) {
                fprintf(stderr,
                        "skiffd: the WAL in %s starts at index %llu but the "
                        "store applied only up to %llu; entries are "
                        "missing\n",
                        s->wal_dir,
                        (unsigned long long)rec.entries[skip].index,
                        (unsigned long long)st.applied_index);
                goto bad;
            }
            rs.entries = rec.entries + skip;
            rs.n_entries = rec.n_entries - skip;
            rs.applied = st.applied_index;
            if (rs.hs.commit < st.applied_index)
                rs.hs.commit = st.applied_index;
            if (rs.hs.term < st.applied_term) {
                rs.hs.term = st.applied_term;
                rs.hs.vote = 0;
            }
        } else {
            rs.entries = rec.entries;
            rs.n_entries = rec.n_entries;
        }
        CM_INFO("restarting member", "member-id=%016llx applied-index=%llu "
                "wal-entries=%zu term=%llu",
                (unsigned long long)s->member_id,
                (unsigned long long)st.applied_index, rec.n_entries,
                (unsigned long long)rec.hs.term);
    } else {
        /* A store without identity or WAL comes from `skiffctl snapshot
         * restore`: it founds a new cluster on the restored data. */
        if (rec.n_entries || rec.hs.term ||
            (st.applied_index && strcmp(c->initial_cluster_state, "new"))) {
            fprintf(stderr, "skiffd: data dir %s holds data but no member "
                            "identity; refusing to start\n",
                    c->data_dir);
            goto bad;
        }
        snprintf(spec, sizeof spec, "%s", c->initial_cluster);
        int n = parse_cluster(spec, names, urls, RAFT_MAX_MEMBERS);
        int self = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(names[i], c->name)) {
                if (strcmp(urls[i], c->advertise_peer)) {
                    fprintf(stderr,
                            "skiffd: --initial-cluster gives %s the peer URL "
                            "%s but --initial-advertise-peer-urls is %s\n",
                            c->name, urls[i], c->advertise_peer);
                    goto bad;
                }
                self = i;
            }
        if (n <= 0 || self < 0) {
            fprintf(stderr,
                    "skiffd: --initial-cluster \"%s\" is malformed or does "
                    "not name this member (%s)\n",
                    c->initial_cluster, c->name);
            goto bad;
        }
        if (!strcmp(c->initial_cluster_state, "new")) {
            s->cluster_id = fnv64(c->initial_cluster_token,
                                  c->initial_cluster);
            raft_conf conf;
            uint64_t idx = st.applied_index + 1;
            uint64_t term = st.applied_term ? st.applied_term : 1;
            if ((rc = bootstrap_store(s, names, urls, n, &conf, idx, term))) {
                fprintf(stderr, "skiffd: bootstrapping the store: %s\n",
                        cm_strerror(rc));
                goto bad;
            }
            raft_restore_bootstrap(&rs, &conf);
            rs.snap.index = rs.hs.commit = rs.applied = idx;
            rs.snap.term = rs.hs.term = term;
        }
        /* Joining: an empty log and no configuration; the leader sends a
         * snapshot carrying both. */
        if ((rc = write_identity(c->data_dir, s->cluster_id,
                                 s->member_id))) {
            fprintf(stderr, "skiffd: writing %s/member: %s\n", c->data_dir,
                    strerror(-rc));
            goto bad;
        }
        CM_INFO("starting new member", "member-id=%016llx cluster-id=%016llx "
                "state=%s members=%d",
                (unsigned long long)s->member_id,
                (unsigned long long)s->cluster_id, c->initial_cluster_state,
                n);
    }
    /* The WAL must continue right after what the store holds: a store
     * ahead of the WAL (bootstrap, or a snapshot from the leader) moves
     * the WAL's snapshot marker up to it. */
    uint64_t wlast, wterm;
    wal_last(s->w, &wlast, &wterm);
    if (rs.snap.index > wlast &&
        (rc = wal_release(s->w, rs.snap.index, rs.snap.term))) {
        fprintf(stderr, "skiffd: WAL in %s: %s (%s)\n", s->wal_dir,
                cm_strerror(rc), wal_errmsg(s->w));
        goto bad;
    }
    raft_config rcfg = raft_cfg(s);
    rc = raft_create(&rcfg, &rs, &s->r);
    wal_recovered_free(&rec);
    if (rc) {
        fprintf(stderr, "skiffd: starting raft: %s\n", cm_strerror(rc));
        cm_arena_reset(&s->apply_arena);
        return -1;
    }
    kv_status_meta(s->kv, &st);
    s->applied = st.applied_index;
    s->applied_term = st.applied_term;
    raft_snapshot_meta sm;
    raft_snapshot_get(s->r, &sm);
    s->compacted = sm.index;
    s->term = rs.hs.term;
    s->next_cmd_id = (s->member_id << 24) ^ ((uint64_t)cm_now_ms() << 8);
    cm_arena_reset(&s->apply_arena);
    return 0;
bad:
    wal_recovered_free(&rec);
    cm_arena_reset(&s->apply_arena);
    return -1;
}
