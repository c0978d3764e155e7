/*
 * Reads in the thread pool.  Every read opens its own LMDB read
 * transaction, so reads run next to each other and next to the apply job;
 * the loop only decodes, queues and sends.  On one member a read started
 * after a write was acknowledged sees it (acknowledgement follows the
 * commit), so linearizable and serializable reads are the same here.
 *
 * Small reads (ranges, lease lookups, alarms) are batched: they queue on
 * the loop and a pool job takes up to READ_BATCH of them at a time, with
 * at most READ_WORKERS such jobs running.  One hand-off to the pool and
 * back then serves many requests; under load that triples throughput
 * against a job per read, and a lone read still goes out at once.  Long
 * reads (snapshots, HashKV, status with its free-list scan) get a job of
 * their own so they never hold up the short ones.
 *
 * Writes are answered as soon as their results are final, while the
 * store's commit still runs (apply.c).  Until that commit ends
 * (hold_reads), reads are held here, so a read that starts after a write
 * was acknowledged on this member still sees it: linearizable and
 * serializable reads on one member are both read-your-writes.
 *
 * A snapshot is written by the pool into an unlinked temporary file in the
 * data directory, then streamed from the loop in chunks as the
 * connection's output drains (srv_snapshot_pump), so a large snapshot
 * never sits in memory and never starves other streams.
 */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SNAP_CHUNK (256 * 1024)
#define READ_BATCH 64
#define READ_WORKERS 2

typedef struct read_job read_job;

/* A pool job serving several small reads. */
typedef struct read_batch {
    uv_work_t w;
    server *s;
    size_t n;
    read_job *jobs[READ_BATCH];
} read_batch;

struct read_job {
    uv_work_t w;
    read_job *next; /* in the server's queue of small reads */
    conn *c;
    uint32_t gen;
    uint64_t stream;
    Skiffpb__Request *req;
    cm_arena *a;
    Skiffpb__Response resp;
    Skiffpb__ResponseHeader hdr;
    int rc;
    int64_t compact;
    int snap_fd;
    uint64_t snap_size;
    union {
        Skiffpb__StatusResponse status;
        Skiffpb__HashKVResponse hash;
        Skiffpb__AlarmResponse alarm;
    } u;
    Skiffpb__AlarmMember alarm_members[2], *alarm_ptrs[2];
    /* Raft's view when the request arrived (status). */
    raft_id lead;
    uint64_t term, raft_index;
    bool learner;
};

read_job **srv_read_job_link(read_job *j)
{
    return &j->next;
}


static void status_of(server *s, read_job *j)
{
    kv_status st;
    if ((j->rc = kv_status_get(s->kv, &st)))
        return;
    Skiffpb__StatusResponse *r = &j->u.status;
    skiffpb__status_response__init(r);
    conn_fill_header(s, &j->hdr, st.revision);
    r->header = &j->hdr;
    r->version = "0.1.0";
    r->dbsize = (int64_t)st.db_size;
    r->dbsizeinuse = (int64_t)st.db_size_in_use;
    r->leader = j->lead;
    r->raftindex = j->raft_index;
    r->raftterm = j->term;
    r->raftappliedindex = st.applied_index;
    r->islearner = j->learner;
    j->hdr.raft_term = j->term;
    if (st.nospace_alarm) {
        static char *nospace = "memberID:0 alarm:NOSPACE";
        r->n_errors = 1;
        r->errors = &nospace;
    }
    j->resp.body_case = SKIFFPB__RESPONSE__BODY_STATUS;
    j->resp.status = r;
}

static void snapshot_of(server *s, read_job *j)
{
    char path[600];
    snprintf(path, sizeof path, "%s/snapshot.tmp.XXXXXX", s->cfg.data_dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        j->rc = -errno;
        return;
    }
    unlink(path);
    uint64_t idx;
    if ((j->rc = kv_snapshot_write(s->kv, fd, &idx))) {
        close(fd);
        return;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    j->snap_fd = fd;
    j->snap_size = (uint64_t)size;
}

static void read_work(uv_work_t *w)
{
    read_job *j = w->data;
    server *s = j->c->s;
    Skiffpb__Request *q = j->req;
    skiffpb__response_header__init(&j->hdr);
    switch (q->body_case) {
    case SKIFFPB__REQUEST__BODY_RANGE:
        j->rc = kv_range(s->kv, q->range, j->a, &j->resp.range, &j->compact);
        if (!j->rc) {
            j->resp.body_case = SKIFFPB__RESPONSE__BODY_RANGE;
            conn_fill_header(s, j->resp.range->header, 0);
        }
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_TTL:
        j->rc = kv_lease_ttl(s->kv, q->lease_ttl->id, q->lease_ttl->keys,
                             srv_clock_ms(s), j->a, &j->resp.lease_ttl);
        if (!j->rc) {
            j->resp.body_case = SKIFFPB__RESPONSE__BODY_LEASE_TTL;
            conn_fill_header(s, j->resp.lease_ttl->header, 0);
        }
        break;
    case SKIFFPB__REQUEST__BODY_LEASE_LEASES:
        j->rc = kv_lease_list(s->kv, j->a, &j->resp.lease_leases);
        if (!j->rc) {
            j->resp.body_case = SKIFFPB__RESPONSE__BODY_LEASE_LEASES;
            conn_fill_header(s, j->resp.lease_leases->header, 0);
        }
        break;
    case SKIFFPB__REQUEST__BODY_STATUS:
        status_of(s, j);
        break;
    case SKIFFPB__REQUEST__BODY_HASH_KV: {
        kv_hash h;
        j->rc = kv_hash_get(s->kv, q->hash_kv->revision, &h);
        if (j->rc == KV_ECOMPACTED) {
            kv_status st;
            if (kv_status_get(s->kv, &st) == 0)
                j->compact = st.compact_revision;
        }
        if (j->rc)
            break;
        Skiffpb__HashKVResponse *r = &j->u.hash;
        skiffpb__hash_kvresponse__init(r);
        conn_fill_header(s, &j->hdr, h.hash_revision);
        r->header = &j->hdr;
        r->hash = h.hash;
        r->compact_revision = h.compact_revision;
        r->hash_revision = h.hash_revision;
        j->resp.body_case = SKIFFPB__RESPONSE__BODY_HASH_KV;
        j->resp.hash_kv = r;
        break;
    }
    case SKIFFPB__REQUEST__BODY_ALARM: {
        kv_status st;
        if ((j->rc = kv_status_get(s->kv, &st)))
            break;
        Skiffpb__AlarmResponse *r = &j->u.alarm;
        skiffpb__alarm_response__init(r);
        conn_fill_header(s, &j->hdr, st.revision);
        r->header = &j->hdr;
        /* Alarms are replicated state: every member reports them. */
        if (st.nospace_alarm) {
            Skiffpb__AlarmMember *m = &j->alarm_members[r->n_alarms];
            skiffpb__alarm_member__init(m);
            m->memberid = s->member_id;
            m->alarm = SKIFFPB__ALARM_TYPE__NOSPACE;
            j->alarm_ptrs[r->n_alarms++] = m;
        }
        if (st.corrupt_alarm) {
            Skiffpb__AlarmMember *m = &j->alarm_members[r->n_alarms];
            skiffpb__alarm_member__init(m);
            m->memberid = s->member_id;
            m->alarm = SKIFFPB__ALARM_TYPE__CORRUPT;
            j->alarm_ptrs[r->n_alarms++] = m;
        }
        r->alarms = j->alarm_ptrs;
        j->resp.body_case = SKIFFPB__RESPONSE__BODY_ALARM;
        j->resp.alarm = r;
        break;
    }
    case SKIFFPB__REQUEST__BODY_SNAPSHOT:
        snapshot_of(s, j);
        break;
    default:
        j->rc = CM_EINVAL;
    }
}

/* TimeToLive with keys shows the lease's keys: under RBAC a user other
 * than an administrator must be able to read each, as in etcd.  False
 * when denied (answered). */
static bool ttl_keys_readable(conn *c, const read_job *j)
{
    if (j->resp.body_case != SKIFFPB__RESPONSE__BODY_LEASE_TTL ||
        !srv_auth_lease_check(c))
        return true;
    const Skiffpb__LeaseTimeToLiveResponse *t = j->resp.lease_ttl;
    for (size_t i = 0; i < t->n_keys; i++) {
        char why[512];
        if (srv_auth_raw_read(c, t->keys[i].data, t->keys[i].len, why,
                              sizeof why))
            continue;
        char what[96], full[768];
        snprintf(what, sizeof what, "read the keys of lease %llx",
                 (unsigned long long)t->id);
        snprintf(full, sizeof full, "a key of the lease (%.*s): %s",
                 (int)(t->keys[i].len < 200 ? t->keys[i].len : 200),
                 (const char *)t->keys[i].data, why);
        srv_auth_deny(c, j->stream, what, full);
        return false;
    }
    return true;
}

static void read_after(uv_work_t *w, int status)
{
    read_job *j = w->data;
    conn *c = j->c;
    server *s = c->s;
    s->m.reads++;
    if (status < 0)
        j->rc = status;
    if (!conn_alive(c, j->gen)) {
        if (j->snap_fd >= 0)
            close(j->snap_fd);
    } else if (j->rc) {
        conn_send_error(c, j->stream, j->rc, kv_strerror(j->rc), j->compact);
    } else if (!ttl_keys_readable(c, j)) {
        /* denied and answered */
    } else if (j->snap_fd >= 0) {
        c->snap_fd = j->snap_fd;
        c->snap_stream = j->stream;
        c->snap_size = j->snap_size;
        c->snap_sent = 0;
        srv_snapshot_pump(c);
    } else {
        conn_send(c, j->stream, &j->resp);
    }
    conn_unref(c);
    cm_arena_free(j->a);
    cm_free(j->a);
    cm_free(j);
}

static void batch_start(server *s);

static void batch_work(uv_work_t *w)
{
    read_batch *b = w->data;
    for (size_t i = 0; i < b->n; i++)
        read_work(&b->jobs[i]->w);
}

static void batch_after(uv_work_t *w, int status)
{
    read_batch *b = w->data;
    server *s = b->s;
    for (size_t i = 0; i < b->n; i++)
        read_after(&b->jobs[i]->w, status);
    cm_free(b);
    s->rq_workers--;
    batch_start(s);
}

static void batch_start(server *s)
{
    if (s->hold_reads)
        return; /* srv_reads_release starts them */
    while (s->rq_head && s->rq_workers < READ_WORKERS) {
        read_batch *b = cm_malloc(sizeof *b);
        if (!b)
            return; /* the next completion tries again */
        b->s = s;
        b->n = 0;
        while (s->rq_head && b->n < READ_BATCH) {
            b->jobs[b->n++] = s->rq_head;
            s->rq_head = s->rq_head->next;
        }
        if (!s->rq_head)
            s->rq_tail = NULL;
        b->w.data = b;
        if (uv_queue_work(s->loop, &b->w, batch_work, batch_after)) {
            for (size_t i = 0; i < b->n; i++)
                read_after(&b->jobs[i]->w, UV_ECANCELED);
            cm_free(b);
            continue;
        }
        s->rq_workers++;
    }
}

static bool is_small(const Skiffpb__Request *req)
{
    switch (req->body_case) {
    case SKIFFPB__REQUEST__BODY_RANGE:
    case SKIFFPB__REQUEST__BODY_LEASE_TTL:
    case SKIFFPB__REQUEST__BODY_LEASE_LEASES:
    case SKIFFPB__REQUEST__BODY_ALARM:
        return true;
    default:
        return false;
    }
}

int srv_read(conn *c, uint64_t stream, Skiffpb__Request *req, cm_arena *a)
{
    if (req->body_case == SKIFFPB__REQUEST__BODY_SNAPSHOT && c->snap_fd >= 0)
        return CM_EINVAL;
    read_job *j = cm_calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    skiffpb__response__init(&j->resp);
    j->c = c;
    j->gen = c->gen;
    j->stream = stream;
    j->req = req;
    j->a = a;
    j->snap_fd = -1;
    j->w.data = j;
    server *s = c->s;
    if (req->body_case == SKIFFPB__REQUEST__BODY_STATUS && s->r) {
        raft_status rs;
        raft_status_get(s->r, &rs);
        j->lead = rs.lead;
        j->term = rs.term;
        j->raft_index = rs.last_index;
        j->learner = raft_conf_is_learner(&rs.conf, s->member_id);
    }
    if ((req->body_case == SKIFFPB__REQUEST__BODY_RANGE &&
         !req->range->serializable) ||
        req->body_case == SKIFFPB__REQUEST__BODY_LEASE_TTL ||
        req->body_case == SKIFFPB__REQUEST__BODY_LEASE_LEASES) {
        if (s->cfg.unsafe_local_reads) {
            conn_ref(c);
            srv_read_job_start(s, j);
            return 0;
        }
        /* Linearizable: wait for a read index first (readindex.c). */
        conn_ref(c);
        srv_read_linearizable(s, j);
        return 0;
    }
    if (is_small(req)) {
        conn_ref(c);
        srv_read_job_start(s, j);
        return 0;
    }
    if (s->hold_reads) {
        j->next = NULL;
        if (s->held_tail)
            s->held_tail->next = j;
        else
            s->held_head = j;
        s->held_tail = j;
        conn_ref(c);
        return 0;
    }
    int rc = uv_queue_work(c->s->loop, &j->w, read_work, read_after);
    if (rc) {
        cm_free(j);
        return rc;
    }
    conn_ref(c);
    return 0;
}

void srv_reads_release(server *s)
{
    while (s->held_head && !s->hold_reads) {
        read_job *j = s->held_head;
        s->held_head = j->next;
        if (!s->held_head)
            s->held_tail = NULL;
        if (uv_queue_work(s->loop, &j->w, read_work, read_after))
            read_after(&j->w, UV_ECANCELED);
    }
    batch_start(s);
}

void srv_read_job_start(server *s, read_job *j)
{
    j->next = NULL;
    if (s->rq_tail)
        s->rq_tail->next = j;
    else
        s->rq_head = j;
    s->rq_tail = j;
    batch_start(s);
}

void srv_read_job_fail(read_job *j, Skiffpb__ErrorCode code, const char *msg)
{
    if (conn_alive(j->c, j->gen))
        conn_send_code(j->c, j->stream, code, msg, 0);
    conn_unref(j->c);
    cm_arena_free(j->a);
    cm_free(j->a);
    cm_free(j);
}

void srv_snapshot_pump(conn *c)
{
    static uint8_t chunk[SNAP_CHUNK];
    while (c->snap_fd >= 0 && !c->closing && conn_has_room(c)) {
        uint64_t left = c->snap_size - c->snap_sent;
        size_t n = left < SNAP_CHUNK ? (size_t)left : SNAP_CHUNK;
        ssize_t got = n ? pread(c->snap_fd, chunk, n, (off_t)c->snap_sent)
                        : 0;
        if (got < 0 || (size_t)got != n) {
            conn_send_code(c, c->snap_stream, SKIFFPB__ERROR_CODE__INTERNAL,
                           "snapshot read failed", 0);
            close(c->snap_fd);
            c->snap_fd = -1;
            return;
        }
        c->snap_sent += n;
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__SnapshotResponse sr = SKIFFPB__SNAPSHOT_RESPONSE__INIT;
        Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
        conn_fill_header(c->s, &h, watch_hub_revision(c->s->hub));
        sr.header = &h;
        sr.remaining_bytes = c->snap_size - c->snap_sent;
        sr.blob.data = chunk;
        sr.blob.len = n;
        r.body_case = SKIFFPB__RESPONSE__BODY_SNAPSHOT;
        r.snapshot = &sr;
        r.more = sr.remaining_bytes > 0;
        int fd = c->snap_fd;
        if (!r.more)
            c->snap_fd = -1;
        conn_send(c, c->snap_stream, &r);
        if (!r.more) {
            close(fd);
            return;
        }
    }
}
