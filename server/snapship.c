/*
 * Snapshots between members: a follower too far behind the leader's
 * compacted log gets the store itself.
 *
 * Sender (the leader).  When the core asks to send a snapshot to a peer,
 * the store is written (in the pool) to an unlinked temporary file: the
 * store at its current applied index, which is at or past the core's
 * snapshot index, so it holds everything the snapshot must.  The file goes
 * out in CHUNK-byte APP_SNAP_CHUNK messages through the ordinary peer
 * queue, at most WINDOW chunks ahead of the receiver's acknowledgements:
 * normal Raft traffic interleaves with it and is never stuck behind a
 * whole snapshot.  Chunks are read from the file with libuv's fs calls,
 * off the loop.
 *
 * Receiver.  Chunks are written in order to a temporary file; each
 * written chunk is acknowledged with the next offset wanted.  A chunk at
 * an unexpected offset (a lost message, a reconnect) is answered with
 * the offset wanted, and the sender resumes from there: a broken stream
 * resumes instead of restarting.  When the file is complete, the store is
 * replaced from it in one LMDB transaction (kv_restore checks every
 * record's checksum) once no apply is running, the watch hub catches its
 * watchers up from the restored history, and only then is the snapshot
 * message stepped into the core.  The final acknowledgement tells the
 * leader, which reports the outcome to its core.
 *
 * A store already at or past the snapshot is never rolled back: the
 * transfer is skipped and the core alone decides.
 */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (512u * 1024)
#define WINDOW 4
#define STALL_MS 10000

struct snap_out {
    snap_out *next;
    server *s;
    raft_id to;
    uint64_t session;
    raft_snapshot_meta meta;
    uint64_t term;
    int fd;
    uint64_t size, acked, sent, rd_off, rewind_to;
    bool ready, reading, dead, want_rewind;
    int64_t progress;
    uv_work_t w;
    int rc;
    uv_fs_t rd;
    raft_blob *buf;
};

struct snap_in {
    server *s;
    raft_id from;
    uint64_t session, size, written;
    raft_snapshot_meta meta;
    uint64_t term;
    int fd;
    bool writing, installing, dead;
    int64_t progress;
    /* Chunks received but not written yet (in order). */
    raft_blob *q[WINDOW * 2];
    uint32_t qlen[WINDOW * 2];
    const uint8_t *qbuf[WINDOW * 2];
    size_t nq;
    uv_fs_t wr;
    uv_work_t w;
    int rc;
};

static int temp_file(server *s, const char *what)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.XXXXXX", s->cfg.data_dir, what);
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* ---- sender ------------------------------------------------------------------- */

static void out_free(snap_out *o)
{
    server *s = o->s;
    for (snap_out **p = &s->souts; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    if (o->fd >= 0)
        close(o->fd);
    raft_blob_unref(o->buf);
    cm_free(o);
}

/* Ends a transfer; the object lives on until its I/O returns. */
static void out_end(snap_out *o, bool ok)
{
    server *s = o->s;
    if (o->dead)
        return;
    o->dead = true;
    if (s->r && !s->fatal) {
        raft_report_snapshot(s->r, o->to, ok);
        srv_node_kick(s);
    }
    CM_INFO(ok ? "snapshot sent" : "snapshot transfer failed",
            "to=%016llx index=%llu bytes=%llu sent=%llu acked=%llu",
            (unsigned long long)o->to, (unsigned long long)o->meta.index,
            (unsigned long long)o->size, (unsigned long long)o->sent,
            (unsigned long long)o->acked);
    if (!o->reading && o->ready)
        out_free(o);
}

static void pump(snap_out *o);

static void on_read(uv_fs_t *r)
{
    snap_out *o = r->data;
    server *s = o->s;
    ssize_t n = r->result;
    uv_fs_req_cleanup(r);
    o->reading = false;
    if (o->dead) {
        out_free(o);
        return;
    }
    if (n <= 0) {
        out_end(o, false);
        return;
    }
    raft_entry e = {0, 0, RAFT_ENTRY_NORMAL, (uint32_t)n,
                    raft_blob_bytes(o->buf), o->buf};
    raft_msg m = {0};
    m.log_term = o->session;
    m.index = o->rd_off;
    m.commit = o->size;
    m.snap = o->meta;
    m.hint = o->term;
    m.entries = &e;
    m.n_entries = 1;
    srv_app_send(s, o->to, APP_SNAP_CHUNK, &m);
    o->sent = o->rd_off + (uint64_t)n;
    pump(o);
}

static void pump(snap_out *o)
{
    if (!o->reading && o->want_rewind) {
        o->sent = o->rewind_to;
        o->want_rewind = false;
    }
    /* An acknowledgement can overtake a rewind: the receiver already holds
     * bytes the sender went back to resend.  Go on from what it holds. */
    if (!o->reading && o->sent < o->acked)
        o->sent = o->acked;
    if (o->dead || !o->ready || o->reading || o->sent >= o->size ||
        o->sent - o->acked >= (uint64_t)WINDOW * CHUNK)
        return;
    /* A blob still referenced by a queued message cannot be refilled:
     * each chunk gets its own (the stall timer ends a transfer that cannot
     * get memory). */
    raft_blob_unref(o->buf);
    if (!(o->buf = raft_blob_create(CHUNK)))
        return;
    uint64_t left = o->size - o->sent;
    uv_buf_t b = uv_buf_init((char *)raft_blob_bytes(o->buf),
                             (unsigned)(left < CHUNK ? left : CHUNK));
    o->rd.data = o;
    o->rd_off = o->sent;
    if (uv_fs_read(o->s->loop, &o->rd, o->fd, &b, 1, (int64_t)o->sent,
                   on_read) == 0)
        o->reading = true;
}

static void out_work(uv_work_t *w)
{
    snap_out *o = w->data;
    uint64_t idx;
    o->rc = kv_snapshot_write(o->s->kv, o->fd, &idx);
    if (!o->rc) {
        off_t end = lseek(o->fd, 0, SEEK_END);
        o->size = end > 0 ? (uint64_t)end : 0;
    }
}

static void out_after(uv_work_t *w, int status)
{
    snap_out *o = w->data;
    o->ready = true;
    if (status < 0 || o->rc || o->dead) {
        if (!o->dead)
            out_end(o, false);
        out_free(o);
        return;
    }
    o->progress = cm_mono_ms();
    pump(o);
}

void srv_snap_send(server *s, const raft_msg *m)
{
    for (snap_out *o = s->souts; o; o = o->next)
        if (o->to == m->to && !o->dead)
            return; /* one transfer per peer at a time */
    snap_out *o = cm_calloc(1, sizeof *o);
    if (!o) {
        raft_report_snapshot(s->r, m->to, false);
        return;
    }
    o->s = s;
    o->to = m->to;
    o->session = ((uint64_t)cm_now_ms() << 16) ^ m->to;
    o->meta = m->snap;
    o->term = m->term;
    o->progress = cm_mono_ms();
    o->fd = temp_file(s, "snap-out");
    o->next = s->souts;
    s->souts = o;
    CM_INFO("sending snapshot", "to=%016llx index=%llu",
            (unsigned long long)o->to, (unsigned long long)o->meta.index);
    o->w.data = o;
    if (o->fd < 0 || uv_queue_work(s->loop, &o->w, out_work, out_after)) {
        o->ready = true;
        out_end(o, false);
    }
}

void srv_snap_on_ack(server *s, const raft_msg *m)
{
    for (snap_out *o = s->souts; o; o = o->next) {
        if (o->session != m->log_term || o->to != m->from || o->dead)
            continue;
        o->progress = cm_mono_ms();
        if (m->reject) {
            out_end(o, false);
        } else if (m->hint) {
            out_end(o, true);
        } else if (m->index <= o->size) {
            /* The receiver holds m->index bytes; with commit set it lost
             * what followed and wants us to resume there. */
            if (m->index > o->acked)
                o->acked = m->index;
            if (m->commit == 1) {
                o->acked = m->index;
                o->rewind_to = m->index;
                o->want_rewind = true;
            }
            pump(o);
        }
        return;
    }
}

/* ---- receiver ----------------------------------------------------------------- */

static void ack(server *s, snap_in *in, bool rewind, bool done, bool failed)
{
    raft_msg m = {0};
    m.log_term = in->session;
    m.index = in->written;
    for (size_t i = 0; i < in->nq; i++)
        m.index += in->qlen[i];
    m.commit = rewind;
    m.hint = done;
    m.reject = failed;
    srv_app_send(s, in->from, APP_SNAP_ACK, &m);
}

static void in_free(server *s)
{
    snap_in *in = s->sin;
    bool held = s->restoring && !in->installing;
    for (size_t i = 0; i < in->nq; i++)
        raft_blob_unref(in->q[i]);
    if (in->fd >= 0)
        close(in->fd);
    cm_free(in);
    s->sin = NULL;
    if (held) {
        /* A complete transfer that waited for an apply to end and was
         * then dropped (a newer one came): applies may go on. */
        s->restoring = false;
        srv_apply_kick(s);
    }
}

static void install_try(server *s);

static void write_next(snap_in *in);

static void on_write(uv_fs_t *r)
{
    snap_in *in = r->data;
    server *s = in->s;
    ssize_t n = r->result;
    uv_fs_req_cleanup(r);
    in->writing = false;
    if (in->dead) {
        in_free(s);
        return;
    }
    if (n != (ssize_t)in->qlen[0]) {
        CM_WARN("writing a received snapshot failed", "error=%s",
                n < 0 ? uv_strerror((int)n) : "short write");
        ack(s, in, false, false, true);
        in->dead = true;
        in_free(s);
        return;
    }
    in->written += (uint64_t)n;
    raft_blob_unref(in->q[0]);
    memmove(in->q, in->q + 1, (in->nq - 1) * sizeof in->q[0]);
    memmove(in->qlen, in->qlen + 1, (in->nq - 1) * sizeof in->qlen[0]);
    memmove(in->qbuf, in->qbuf + 1, (in->nq - 1) * sizeof in->qbuf[0]);
    in->nq--;
    ack(s, in, false, false, false);
    if (in->written == in->size)
        install_try(s);
    else
        write_next(in);
}

static void write_next(snap_in *in)
{
    if (in->writing || !in->nq)
        return;
    uv_buf_t b = uv_buf_init((char *)in->qbuf[0], in->qlen[0]);
    in->wr.data = in;
    if (uv_fs_write(in->s->loop, &in->wr, in->fd, &b, 1, (int64_t)in->written,
                    on_write) == 0)
        in->writing = true;
}

static void install_work(uv_work_t *w)
{
    snap_in *in = w->data;
    server *s = in->s;
    uint8_t hdr[16];
    /* Never roll the store back: compare the snapshot's applied index. */
    if (pread(in->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        in->rc = KV_EBAD_SNAPSHOT;
        return;
    }
    kv_status st;
    if ((in->rc = kv_status_meta(s->kv, &st)))
        return;
    if (cm_be64_get(hdr + 8) <= st.applied_index) {
        in->rc = 1; /* nothing to do */
        return;
    }
    if (lseek(in->fd, 0, SEEK_SET) < 0) {
        in->rc = -errno;
        return;
    }
    in->rc = kv_restore(s->kv, in->fd);
}

static void step_snapshot(server *s, snap_in *in)
{
    raft_msg m = {0};
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = in->from;
    m.to = s->member_id;
    m.term = in->term;
    m.snap = in->meta;
    int rc = raft_step(s->r, &m);
    if (rc)
        CM_ERROR("stepping a snapshot failed", "error=%s", cm_err_name(rc));
    srv_node_kick(s);
}

static void install_after(uv_work_t *w, int status)
{
    snap_in *in = w->data;
    server *s = in->s;
    s->restoring = false;
    int rc = status < 0 ? status : in->rc;
    if (rc < 0) {
        CM_ERROR("installing a snapshot failed", "from=%016llx error=%s",
                 (unsigned long long)in->from, cm_err_name(rc));
        ack(s, in, false, false, true);
    } else {
        kv_status st;
        kv_status_meta(s->kv, &st);
        if (rc == 0) {
            CM_INFO("installed snapshot", "from=%016llx applied-index=%llu "
                    "revision=%lld",
                    (unsigned long long)in->from,
                    (unsigned long long)st.applied_index,
                    (long long)st.revision);
            s->applied = st.applied_index;
            s->applied_now = st.applied_index;
            watch_hub_jump(s->hub, st.revision);
            srv_watch_kick(s);
            cm_arena a = {.chunk_sz = 16384};
            Skiffpb__Membership *mb;
            if (kv_membership_get(s->kv, &a, &mb) == 0)
                srv_membership_changed(s, mb);
            cm_arena_free(&a);
        }
        if (s->r && !s->fatal)
            step_snapshot(s, in);
        ack(s, in, false, true, false);
    }
    in_free(s);
    srv_apply_kick(s);
    srv_reads_applied(s);
    if (s->stopping)
        srv_stop(s);
}

static void install_try(server *s)
{
    snap_in *in = s->sin;
    if (!in || in->installing || in->written != in->size)
        return;
    s->restoring = true; /* no new apply starts */
    if (s->applying)
        return; /* apply_after kicks again */
    in->installing = true;
    in->w.data = in;
    if (uv_queue_work(s->loop, &in->w, install_work, install_after)) {
        s->restoring = false;
        ack(s, in, false, false, true);
        in_free(s);
    }
}

void srv_snap_on_chunk(server *s, const raft_msg *m)
{
    snap_in *in = s->sin;
    if (in && in->session != m->log_term) {
        if (in->installing || in->writing) {
            return; /* busy; the sender retries */
        }
        in_free(s);
        in = NULL;
    }
    if (!in) {
        if (m->index != 0 || m->n_entries != 1)
            return;
        if (s->applied >= m->snap.index) {
            /* Already there: let the core answer with its progress. */
            snap_in tmp = {.s = s, .from = m->from, .session = m->log_term,
                           .meta = m->snap, .term = m->hint};
            step_snapshot(s, &tmp);
            ack(s, &tmp, false, true, false);
            return;
        }
        if (!(in = cm_calloc(1, sizeof *in)))
            return;
        in->s = s;
        in->from = m->from;
        in->session = m->log_term;
        in->size = m->commit;
        in->meta = m->snap;
        in->term = m->hint;
        in->fd = temp_file(s, "snap-in");
        s->sin = in;
        if (in->fd < 0) {
            ack(s, in, false, false, true);
            in_free(s);
            return;
        }
        CM_INFO("receiving snapshot", "from=%016llx index=%llu bytes=%llu",
                (unsigned long long)in->from,
                (unsigned long long)in->meta.index,
                (unsigned long long)in->size);
    }
    in->progress = cm_mono_ms();
    uint64_t expect = in->written;
    for (size_t i = 0; i < in->nq; i++)
        expect += in->qlen[i];
    if (m->n_entries != 1 || m->index != expect ||
        in->nq == sizeof in->q / sizeof in->q[0] ||
        expect + m->entries[0].len > in->size) {
        if (m->index > expect)
            ack(s, in, true, false, false); /* resume from what we hold */
        else if (m->index < expect)
            ack(s, in, false, false, false); /* a resend: say what we hold */
        return;
    }
    raft_blob_ref(m->entries[0].blob);
    in->q[in->nq] = m->entries[0].blob;
    in->qbuf[in->nq] = m->entries[0].buf;
    in->qlen[in->nq++] = m->entries[0].len;
    write_next(in);
}

/* Called after every apply: a complete snapshot may be waiting for it. */
void srv_snap_install_kick(server *s)
{
    if (s->sin && s->restoring && !s->applying)
        install_try(s);
}

void srv_snap_sweep(server *s)
{
    int64_t now = cm_mono_ms();
    for (snap_out *o = s->souts, *n; o; o = n) {
        n = o->next;
        if (!o->dead && o->ready && now - o->progress > STALL_MS)
            out_end(o, false);
        else if (!o->dead && o->ready && o->sent > o->acked &&
                 now - o->progress > STALL_MS / 4) {
            /* Resend from the last acknowledged byte. */
            o->rewind_to = o->acked;
            o->want_rewind = true;
            o->progress = now;
            pump(o);
        }
    }
    snap_in *in = s->sin;
    if (in && !in->installing && !in->writing &&
        now - in->progress > 3 * STALL_MS)
        in_free(s);
}

void srv_snap_free(server *s)
{
    while (s->souts) {
        snap_out *o = s->souts;
        s->souts = o->next;
        if (o->fd >= 0)
            close(o->fd);
        raft_blob_unref(o->buf);
        cm_free(o);
    }
    s->restoring = false; /* no apply to let go on: the loop has ended */
    if (s->sin)
        in_free(s);
}
