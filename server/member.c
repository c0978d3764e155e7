/*
 * Membership and the driver's own messages.
 *
 * A membership change is a Raft configuration entry whose context is a
 * packed Command (a MemberChange with the member's details).  The core
 * acts on the first 9 bytes (who joins, leaves or is promoted); every
 * member applies the context to the membership kept in the store, in log
 * order, so the store and Raft agree at every index.  Changes may be
 * asked of any member: a follower forwards them to the leader
 * (APP_CONF_FORWARD), which proposes them or answers APP_CONF_REJECT.
 *
 * The transport's peer list follows the applied membership.  A member
 * that sees itself removed stops.  Each member publishes its name and
 * client URLs through the log once a leader is known (PUBLISH), like
 * etcd's member attributes.
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void removed_stop(server *s, const char *why);

#define LEARNER_READY_PERCENT 90
#define MOVE_LEADER_TIMEOUT_MS 5000

static int peer_addr(const char *url, char *out, size_t cap)
{
    char host[128];
    int port;
    if (srv_parse_addr(url, host, sizeof host, &port))
        return -1;
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return 0;
}

static void publish(server *s)
{
    Skiffpb__ClusterMember cm = SKIFFPB__CLUSTER_MEMBER__INIT;
    char *curl = s->cfg.advertise_client;
    cm.id = s->member_id;
    cm.name = s->cfg.name;
    cm.n_client_urls = 1;
    cm.client_urls = &curl;
    Skiffpb__MemberChange mc = SKIFFPB__MEMBER_CHANGE__INIT;
    mc.op = SKIFFPB__MEMBER_CHANGE__OP__PUBLISH;
    mc.member = &cm;
    Skiffpb__Command cmd = SKIFFPB__COMMAND__INIT;
    cmd.op_case = SKIFFPB__COMMAND__OP_MEMBER_CHANGE;
    cmd.member_change = &mc;
    srv_propose(s, NULL, 0, 0, &cmd, 0);
}

void srv_membership_changed(server *s, const Skiffpb__Membership *m)
{
    if (!m || !s->t)
        return;
    if (m->cluster_id && !s->cluster_id)
        s->cluster_id = m->cluster_id;
    bool self = false;
    raft_id now[RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (size_t i = 0; i < m->n_members && n < RAFT_MAX_MEMBERS; i++) {
        const Skiffpb__ClusterMember *x = m->members[i];
        if (x->id == s->member_id) {
            self = true;
            s->published = !strcmp(x->name, s->cfg.name) &&
                           x->n_client_urls == 1 &&
                           !strcmp(x->client_urls[0], s->cfg.advertise_client);
            continue;
        }
        char addr[200];
        if (!x->n_peer_urls || peer_addr(x->peer_urls[0], addr, sizeof addr))
            continue;
        rt_peer_set(s->t, x->id, addr);
        now[n++] = x->id;
    }
    for (size_t i = 0; i < s->npeers; i++) {
        bool kept = false;
        for (size_t k = 0; k < n; k++)
            kept |= now[k] == s->peers[i];
        if (kept)
            continue;
        /* The removed member may never learn of its removal from the log
         * (the leader stops replicating to it at once): tell it, and
         * forget its address only after the message had time to go. */
        raft_msg note = {0};
        note.index = s->applied_now; /* the removal's index */
        srv_app_send(s, s->peers[i], APP_REMOVED, &note);
        if (s->ngone < sizeof s->gone / sizeof s->gone[0]) {
            s->gone[s->ngone].id = s->peers[i];
            s->gone[s->ngone++].until = cm_mono_ms() + 5000;
        } else {
            rt_peer_remove(s->t, s->peers[i]);
        }
    }
    memcpy(s->peers, now, n * sizeof *now);
    s->npeers = n;
    if (self) {
        s->was_member = true;
    } else if (s->was_member) {
        removed_stop(s, "applied its own removal");
    }
}

static void on_removed_timer(uv_timer_t *t)
{
    srv_stop(t->data);
}

/* Stops this member a moment later, so the replies already queued (the
 * answer to its own removal among them) still go out. */
static void removed_stop(server *s, const char *why)
{
    if (s->removed || s->stopping)
        return;
    s->removed = true;
    CM_WARN("this member was removed from the cluster; stopping",
            "member-id=%016llx how=\"%s\"", (unsigned long long)s->member_id,
            why);
    uv_timer_init(s->loop, &s->removed_timer);
    s->removed_timer.data = s;
    uv_timer_start(&s->removed_timer, on_removed_timer, 500, 0);
}

/* Drops the addresses of removed members once their notice had time to
 * go out (called by the sweep). */
void srv_gone_sweep(server *s)
{
    int64_t now = cm_mono_ms();
    for (size_t i = 0; i < s->ngone;) {
        bool back = false;
        for (size_t k = 0; k < s->npeers; k++)
            back |= s->peers[k] == s->gone[i].id;
        if (now < s->gone[i].until) {
            i++;
            continue;
        }
        if (!back)
            rt_peer_remove(s->t, s->gone[i].id);
        s->gone[i] = s->gone[--s->ngone];
    }
}

void srv_membership_seed(server *s)
{
    char spec[sizeof s->cfg.initial_cluster];
    snprintf(spec, sizeof spec, "%s", s->cfg.initial_cluster);
    char *save = NULL;
    for (char *tok = strtok_r(spec, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), addr[200];
        if (!eq || s->npeers == RAFT_MAX_MEMBERS)
            continue;
        uint64_t id = srv_member_id_of(s->cfg.initial_cluster_token, eq + 1);
        if (id == s->member_id || peer_addr(eq + 1, addr, sizeof addr) ||
            rt_peer_set(s->t, id, addr))
            continue;
        s->peers[s->npeers++] = id;
    }
}

void srv_leader_changed(server *s)
{
    if (s->lead && !s->published)
        publish(s);
    if (s->ml_conn && s->lead == s->ml_target) {
        if (conn_alive(s->ml_conn, s->ml_gen)) {
            Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
            Skiffpb__MoveLeaderResponse ml = SKIFFPB__MOVE_LEADER_RESPONSE__INIT;
            Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
            conn_fill_header(s, &h, watch_hub_revision(s->hub));
            ml.header = &h;
            r.body_case = SKIFFPB__RESPONSE__BODY_MOVE_LEADER;
            r.move_leader = &ml;
            conn_send(s->ml_conn, s->ml_stream, &r);
        }
        conn_unref(s->ml_conn);
        s->ml_conn = NULL;
    }
}

/* Fails a pending move-leader past its deadline (called by the sweep). */
void srv_move_leader_sweep(server *s)
{
    if (!s->ml_conn || cm_mono_ms() < s->ml_deadline)
        return;
    if (conn_alive(s->ml_conn, s->ml_gen))
        conn_send_code(s->ml_conn, s->ml_stream, SKIFFPB__ERROR_CODE__TIMEOUT,
                       "leadership transfer timed out", 0);
    conn_unref(s->ml_conn);
    s->ml_conn = NULL;
}

/* ---- proposing changes (leader) ------------------------------------------- */

/* Local refusals, carried in APP_CONF_REJECT like the others. */
#define E_NOT_READY (-9001)
#define E_NOT_LEARNER (-9002)

static Skiffpb__ErrorCode code_of(int rc)
{
    switch (rc) {
    case RAFT_ENOTLEADER:
        return SKIFFPB__ERROR_CODE__NO_LEADER;
    case RAFT_EBUSY:
        return SKIFFPB__ERROR_CODE__UNAVAILABLE;
    case RAFT_EINVAL:
    case RAFT_ETOOMANY:
        return SKIFFPB__ERROR_CODE__INVALID_ARGUMENT;
    case KV_EMEMBER_EXISTS:
        return SKIFFPB__ERROR_CODE__MEMBER_EXISTS;
    case KV_EMEMBER_NOT_FOUND:
        return SKIFFPB__ERROR_CODE__MEMBER_NOT_FOUND;
    case E_NOT_READY:
        return SKIFFPB__ERROR_CODE__LEARNER_NOT_READY;
    case E_NOT_LEARNER:
        return SKIFFPB__ERROR_CODE__MEMBER_NOT_LEARNER;
    default:
        return SKIFFPB__ERROR_CODE__UNAVAILABLE;
    }
}

static const char *msg_of(int rc)
{
    switch (rc) {
    case RAFT_EBUSY:
        return "another membership change or a leadership transfer is in "
               "progress; retry";
    case E_NOT_READY:
        return "can only promote a learner member which is in sync with "
               "leader";
    case E_NOT_LEARNER:
        return "can only promote a learner member";
    case KV_EMEMBER_EXISTS:
        return "member ID already exists";
    case KV_EMEMBER_NOT_FOUND:
        return "member not found";
    default:
        return cm_strerror(rc);
    }
}

int srv_propose_conf(server *s, const uint8_t *buf, size_t len)
{
    if (s->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    Skiffpb__Command *cmd = skiffpb__command__unpack(NULL, len, buf);
    if (!cmd)
        return CM_EINVAL;
    int rc = RAFT_EINVAL;
    const Skiffpb__MemberChange *mc = cmd->member_change;
    if (cmd->op_case != SKIFFPB__COMMAND__OP_MEMBER_CHANGE || !mc->member)
        goto out;
    raft_id id = mc->member->id;
    raft_status st;
    raft_status_get(s->r, &st);
    enum raft_conf_op op;
    switch (mc->op) {
    case SKIFFPB__MEMBER_CHANGE__OP__ADD:
        if (raft_conf_is_voter(&st.conf, id) ||
            raft_conf_is_learner(&st.conf, id)) {
            rc = KV_EMEMBER_EXISTS;
            goto out;
        }
        op = mc->member->learner ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER;
        break;
    case SKIFFPB__MEMBER_CHANGE__OP__PROMOTE: {
        if (!raft_conf_is_learner(&st.conf, id)) {
            rc = raft_conf_is_voter(&st.conf, id) ? E_NOT_LEARNER
                                                  : KV_EMEMBER_NOT_FOUND;
            goto out;
        }
        uint64_t match = 0, next = 0;
        int state = 0;
        raft_progress_get(s->r, id, &match, &next, &state);
        if (match * 100 < st.last_index * LEARNER_READY_PERCENT) {
            rc = E_NOT_READY;
            goto out;
        }
        op = RAFT_CONF_ADD_VOTER;
        break;
    }
    case SKIFFPB__MEMBER_CHANGE__OP__REMOVE:
        if (!raft_conf_is_voter(&st.conf, id) &&
            !raft_conf_is_learner(&st.conf, id)) {
            rc = KV_EMEMBER_NOT_FOUND;
            goto out;
        }
        op = RAFT_CONF_REMOVE;
        break;
    default:
        goto out;
    }
    rc = raft_propose_conf_ctx(s->r, op, id, buf, len, NULL);
    if (!rc)
        srv_node_kick(s);
out:
    skiffpb__command__free_unpacked(cmd, NULL);
    return rc;
}

/* ---- driver messages -------------------------------------------------------- */

/* Puts the leader's clock into a forwarded command, in place.  Lease
 * expiry compares the times carried in the log with the leader's clock,
 * so a follower with a skewed clock must not stamp them.  A packed
 * Command starts with id (field 1) and time_ms (field 2) as varints; the
 * new time is written in exactly the old varint's length (protobuf
 * accepts padded varints), so nothing moves.  A command of another shape
 * is left alone. */
static void restamp(uint8_t *b, size_t len, int64_t now)
{
    size_t i = 0;
    if (i < len && b[i] == 0x08) {
        for (i++; i < len && (b[i] & 0x80); i++)
            ;
        i++;
    }
    if (i >= len || b[i] != 0x10)
        return;
    size_t start = ++i;
    while (i < len && (b[i] & 0x80))
        i++;
    if (i >= len)
        return;
    size_t n = i - start + 1;
    uint64_t v = (uint64_t)now;
    if (n < 10 && v >> (7 * n))
        return; /* does not fit: keep the follower's time */
    for (size_t k = 0; k < n; k++) {
        b[start + k] = (uint8_t)((v & 0x7f) | (k + 1 < n ? 0x80 : 0));
        v >>= 7;
    }
}

static void conf_forwarded(server *s, const raft_msg *m)
{
    if (m->n_entries != 1)
        return;
    int rc = srv_propose_conf(s, m->entries[0].buf, m->entries[0].len);
    if (!rc)
        return;
    Skiffpb__Command *cmd =
        skiffpb__command__unpack(NULL, m->entries[0].len, m->entries[0].buf);
    if (!cmd)
        return;
    raft_msg r = {0};
    r.hint = cmd->id;
    r.index = (uint64_t)(int64_t)rc;
    skiffpb__command__free_unpacked(cmd, NULL);
    srv_app_send(s, m->from, APP_CONF_REJECT, &r);
}

void srv_app_msg(server *s, const raft_msg *m)
{
    switch (m->ctx) {
    case APP_FORWARD:
        /* Only in the term the follower sent them in (see fail_stale in
         * apply.c): a stale forward is dropped, and its sender learns
         * that from the first entry of the newer term. */
        if (s->role == RAFT_LEADER && m->n_entries && m->term == s->term) {
            const void *data[256];
            size_t len[256];
            for (size_t i = 0; i < m->n_entries; i += 256) {
                size_t k = m->n_entries - i < 256 ? m->n_entries - i : 256;
                int64_t now = srv_clock_ms(s);
                for (size_t j = 0; j < k; j++) {
                    /* The payload blob is this message's own copy. */
                    restamp((uint8_t *)m->entries[i + j].buf,
                            m->entries[i + j].len, now);
                    data[j] = m->entries[i + j].buf;
                    len[j] = m->entries[i + j].len;
                }
                if (raft_propose_batch(s->r, data, len, k, NULL))
                    break; /* lost like a dropped message: they time out */
            }
        }
        break;
    case APP_READ_INDEX:
    case APP_READ_INDEX_RESP:
        srv_reads_on_app(s, m);
        break;
    case APP_SNAP_CHUNK:
        srv_snap_on_chunk(s, m);
        break;
    case APP_SNAP_ACK:
        srv_snap_on_ack(s, m);
        break;
    case APP_CONF_FORWARD:
        conf_forwarded(s, m);
        break;
    case APP_HASH_REQ:
    case APP_HASH_RESP:
        srv_corrupt_on_app(s, m);
        break;
    case APP_REMOVED: {
        /* Believe it only from a member of the cluster as we know it, and
         * only about a removal this member has not applied past: a member
         * removed and added again under the same id (same peer URL) must
         * not stop on a notice meant for its previous life, which also
         * covers a fresh member that has not seen the cluster yet. */
        bool known = false;
        for (size_t i = 0; i < s->npeers; i++)
            known |= s->peers[i] == m->from;
        if (known && s->was_member && m->index > s->applied)
            removed_stop(s, "told by a member");
        break;
    }
    case APP_CONF_REJECT: {
        waiter *w = srv_waiter_take(s, m->hint);
        if (w) {
            int rc = (int)(int64_t)m->index;
            srv_waiter_fail(s, w, code_of(rc), msg_of(rc));
        }
        break;
    }
    default:
        break;
    }
}

/* ---- client requests -------------------------------------------------------- */

static int members_pb(server *s, cm_arena *a, Skiffpb__Membership *mb,
                      Skiffpb__Member ***out, size_t *n)
{
    Skiffpb__Member **v = cm_arena_alloc(a, (mb->n_members + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < mb->n_members; i++) {
        const Skiffpb__ClusterMember *x = mb->members[i];
        Skiffpb__Member *m = cm_arena_alloc(a, sizeof *m);
        if (!m)
            return -ENOMEM;
        skiffpb__member__init(m);
        m->id = x->id;
        m->name = x->name;
        m->n_peerurls = x->n_peer_urls;
        m->peerurls = x->peer_urls;
        m->n_clienturls = x->n_client_urls;
        m->clienturls = x->client_urls;
        m->islearner = x->learner;
        v[i] = m;
    }
    (void)s;
    *out = v;
    *n = mb->n_members;
    return 0;
}

void srv_member_list(conn *c, uint64_t stream)
{
    server *s = c->s;
    cm_arena a = {.chunk_sz = 16384};
    Skiffpb__Membership *mb;
    Skiffpb__MemberListResponse ml = SKIFFPB__MEMBER_LIST_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    int rc = kv_membership_get(s->kv, &a, &mb);
    if (!rc)
        rc = members_pb(s, &a, mb, &ml.members, &ml.n_members);
    if (rc) {
        conn_send_error(c, stream, rc, NULL, 0);
    } else {
        conn_fill_header(s, &h, watch_hub_revision(s->hub));
        ml.header = &h;
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        r.body_case = SKIFFPB__RESPONSE__BODY_MEMBER_LIST;
        r.member_list = &ml;
        conn_send(c, stream, &r);
    }
    cm_arena_free(&a);
}

void srv_member_reply(server *s, const waiter *w, const kv_result *res)
{
    cm_arena a = {.chunk_sz = 16384};
    Skiffpb__Member **v = NULL;
    size_t n = 0;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(s, &h, res->revision);
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__MemberAddResponse add = SKIFFPB__MEMBER_ADD_RESPONSE__INIT;
    Skiffpb__MemberRemoveResponse rm = SKIFFPB__MEMBER_REMOVE_RESPONSE__INIT;
    Skiffpb__MemberPromoteResponse pr = SKIFFPB__MEMBER_PROMOTE_RESPONSE__INIT;
    if (members_pb(s, &a, res->reply.membership, &v, &n)) {
        conn_send_code(w->c, w->stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                       "out of memory", 0);
        cm_arena_free(&a);
        return;
    }
    r.body_case = (Skiffpb__Response__BodyCase)w->op;
    switch (w->op) {
    case SKIFFPB__REQUEST__BODY_MEMBER_ADD:
        add.header = &h;
        add.members = v;
        add.n_members = n;
        /* The added member is the last one. */
        add.member = n ? v[n - 1] : NULL;
        r.member_add = &add;
        break;
    case SKIFFPB__REQUEST__BODY_MEMBER_REMOVE:
        rm.header = &h;
        rm.members = v;
        rm.n_members = n;
        r.member_remove = &rm;
        break;
    default:
        pr.header = &h;
        pr.members = v;
        pr.n_members = n;
        r.member_promote = &pr;
        break;
    }
    conn_send(w->c, w->stream, &r);
    cm_arena_free(&a);
}

static int move_leader(conn *c, uint64_t stream, uint64_t target)
{
    server *s = c->s;
    if (s->role != RAFT_LEADER) {
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__Error e = SKIFFPB__ERROR__INIT;
        e.code = SKIFFPB__ERROR_CODE__NOT_LEADER;
        e.message = "move-leader must be sent to the leader";
        e.leader_hint = s->lead;
        r.error = &e;
        conn_send(c, stream, &r);
        return 0;
    }
    if (s->ml_conn)
        return conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                              "a leadership transfer is in progress", 0);
    int rc = raft_transfer_leader(s->r, target);
    if (rc)
        return conn_send_code(c, stream,
                              rc == RAFT_ENOTVOTER
                                  ? SKIFFPB__ERROR_CODE__MEMBER_NOT_FOUND
                                  : code_of(rc),
                              rc == RAFT_ENOTVOTER
                                  ? "the target is not a voting member"
                                  : msg_of(rc),
                              0);
    conn_ref(c);
    s->ml_conn = c;
    s->ml_gen = c->gen;
    s->ml_stream = stream;
    s->ml_target = target;
    s->ml_deadline = cm_mono_ms() + MOVE_LEADER_TIMEOUT_MS;
    if (target == s->member_id)
        srv_leader_changed(s); /* already there: answer now */
    srv_node_kick(s);
    return 0;
}

int srv_member_request(conn *c, uint64_t stream, Skiffpb__Request *req)
{
    server *s = c->s;
    Skiffpb__ClusterMember cm = SKIFFPB__CLUSTER_MEMBER__INIT;
    Skiffpb__MemberChange mc = SKIFFPB__MEMBER_CHANGE__INIT;
    Skiffpb__Command cmd = SKIFFPB__COMMAND__INIT;
    cmd.op_case = SKIFFPB__COMMAND__OP_MEMBER_CHANGE;
    cmd.member_change = &mc;
    mc.member = &cm;
    switch (req->body_case) {
    case SKIFFPB__REQUEST__BODY_MOVE_LEADER:
        return move_leader(c, stream, req->move_leader->targetid);
    case SKIFFPB__REQUEST__BODY_MEMBER_ADD: {
        Skiffpb__MemberAddRequest *a = req->member_add;
        char addr[200];
        if (a->n_peerurls != 1 || peer_addr(a->peerurls[0], addr, sizeof addr))
            return conn_send_code(c, stream,
                                  SKIFFPB__ERROR_CODE__INVALID_ARGUMENT,
                                  "member add needs exactly one peer URL "
                                  "(host:port)",
                                  0);
        mc.op = SKIFFPB__MEMBER_CHANGE__OP__ADD;
        cm.id = srv_member_id_of(s->cfg.initial_cluster_token, a->peerurls[0]);
        cm.n_peer_urls = 1;
        cm.peer_urls = a->peerurls;
        cm.learner = a->islearner;
        cm.name = "";
        break;
    }
    case SKIFFPB__REQUEST__BODY_MEMBER_REMOVE:
        mc.op = SKIFFPB__MEMBER_CHANGE__OP__REMOVE;
        cm.id = req->member_remove->id;
        break;
    case SKIFFPB__REQUEST__BODY_MEMBER_PROMOTE:
        mc.op = SKIFFPB__MEMBER_CHANGE__OP__PROMOTE;
        cm.id = req->member_promote->id;
        break;
    default:
        return CM_EINVAL;
    }
    if (!s->lead)
        return conn_send_code(c, stream, SKIFFPB__ERROR_CODE__NO_LEADER,
                              "no leader", 0);
    waiter *w = srv_waiter_add(s, c, stream, (int)req->body_case, &cmd, 0);
    if (!w)
        return conn_send_code(c, stream, SKIFFPB__ERROR_CODE__UNAVAILABLE,
                              "out of memory", 0);
    cm_buf b = {0};
    int rc = kv_command_pack(&cmd, &b);
    if (!rc && s->role == RAFT_LEADER) {
        rc = srv_propose_conf(s, b.base, b.len);
    } else if (!rc) {
        raft_blob *bl = raft_blob_create(b.len);
        if (!bl) {
            rc = -ENOMEM;
        } else {
            memcpy(raft_blob_bytes(bl), b.base, b.len);
            raft_entry e = {0, 0, RAFT_ENTRY_NORMAL, (uint32_t)b.len,
                            raft_blob_bytes(bl), bl};
            raft_msg m = {0};
            m.entries = &e;
            m.n_entries = 1;
            srv_app_send(s, s->lead, APP_CONF_FORWARD, &m);
            raft_blob_unref(bl);
        }
    }
    cm_buf_free(&b);
    w->sent = true;
    if (rc) {
        waiter *t = srv_waiter_take(s, cmd.id);
        if (t)
            srv_waiter_fail(s, t, code_of(rc), msg_of(rc));
    }
    return 0;
}
