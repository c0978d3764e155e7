/*
 * The fake skiffd behind libskiff's unit tests (see fs.h).  One libuv loop
 * on its own thread accepts connections, parses frames by hand, decodes
 * each skiffpb.Request with protobuf-c's default allocator and answers from
 * a tiny store: an array of keys, a history of every put and delete (one
 * revision each) for watches to replay, and a handful of leases.  Knobs in
 * fs_knobs, read atomically on every request, inject the failures the
 * client must survive.  Nothing here aims at speed or completeness; it
 * only has to be a faithful peer for the protocol features under test.
 */
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rpc.pb-c.h"

typedef struct fkv {
    uint8_t *key, *val;
    size_t klen, vlen;
    int64_t create, mod, ver, lease;
} fkv;

typedef struct fev {
    int del;
    fkv kv;
} fev;

typedef struct fconn fconn;

typedef struct fwatch {
    fconn *cn;
    uint64_t stream;
    int64_t id;
    uint8_t *key, *end;
    size_t klen, elen;
} fwatch;

struct fconn {
    uv_tcp_t tcp;
    fs *s;
    uint8_t *buf;
    size_t len, cap;
    fconn *next;
};

struct fs {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_thread_t thr;
    int port;
    fs_knobs k;
    fkv *kvs;
    size_t nkv;
    fev *hist;
    size_t nhist;
    int64_t rev;
    fconn *conns;
    fwatch *watches;
    size_t nw;
    int64_t next_watch_id;
    int64_t lease_id[64];
    int64_t lease_ttl[64];
    int nleases;
    int64_t next_lease;
};

typedef struct fs_wr {
    uv_write_t req;
    uint8_t data[];
} fs_wr;

static void on_wdone(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
}

static void send_resp(fconn *cn, uint64_t stream, const Skiffpb__Response *r)
{
    size_t n = skiffpb__response__get_packed_size(r);
    fs_wr *w = malloc(sizeof *w + 12 + n);
    uint8_t *p = w->data;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    for (int i = 0; i < 8; i++)
        p[4 + i] = (uint8_t)(stream >> (56 - 8 * i));
    skiffpb__response__pack(r, p + 12);
    w->req.data = w;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)(12 + n));
    if (uv_write(&w->req, (uv_stream_t *)&cn->tcp, &b, 1, on_wdone) < 0)
        free(w);
}

static void hdr_init(fs *s, Skiffpb__ResponseHeader *h, int64_t rev)
{
    skiffpb__response_header__init(h);
    h->cluster_id = 7;
    h->member_id =
        atomic_load(&s->k.member_id) ? atomic_load(&s->k.member_id) : 1;
    h->revision = rev ? rev : s->rev;
    h->raft_term = 2;
}

static void send_error(fconn *cn, uint64_t stream, int code, int64_t crev)
{
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__Error e = SKIFFPB__ERROR__INIT;
    e.code = (Skiffpb__ErrorCode)code;
    e.message = (char *)"injected by the fake server";
    e.compact_revision = crev;
    r.error = &e;
    send_resp(cn, stream, &r);
}

static int match(const uint8_t *k, size_t kl, const uint8_t *key, size_t klen,
                 const uint8_t *end, size_t elen)
{
    if (elen == 0)
        return kl == klen && memcmp(k, key, kl) == 0;
    size_t m = kl < klen ? kl : klen;
    int c = memcmp(k, key, m);
    if (c < 0 || (c == 0 && kl < klen))
        return 0;
    if (elen == 1 && end[0] == 0)
        return 1;
    m = kl < elen ? kl : elen;
    c = memcmp(k, end, m);
    return c < 0 || (c == 0 && kl < elen);
}

static void to_pb_kv(const fkv *f, Skiffpb__KeyValue *kv)
{
    skiffpb__key_value__init(kv);
    kv->key.data = f->key;
    kv->key.len = f->klen;
    kv->value.data = f->val;
    kv->value.len = f->vlen;
    kv->create_revision = f->create;
    kv->mod_revision = f->mod;
    kv->version = f->ver;
    kv->lease = f->lease;
}

static void send_event(fs *s, fwatch *w, const fev *e)
{
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
    Skiffpb__ResponseHeader h;
    Skiffpb__Event ev = SKIFFPB__EVENT__INIT, *evp = &ev;
    Skiffpb__KeyValue kv;
    hdr_init(s, &h, e->kv.mod);
    to_pb_kv(&e->kv, &kv);
    ev.type = e->del ? SKIFFPB__EVENT__EVENT_TYPE__DELETE
                     : SKIFFPB__EVENT__EVENT_TYPE__PUT;
    ev.kv = &kv;
    wr.header = &h;
    wr.watch_id = w->id;
    wr.n_events = 1;
    wr.events = &evp;
    r.more = 1;
    r.body_case = SKIFFPB__RESPONSE__BODY_WATCH;
    r.watch = &wr;
    send_resp(w->cn, w->stream, &r);
}

static void record(fs *s, int del, const fkv *kv)
{
    if ((s->nhist & (s->nhist - 1)) == 0) /* grow at powers of two */
        s->hist = realloc(s->hist, sizeof *s->hist * (s->nhist * 2 + 1));
    fev *e = &s->hist[s->nhist++];
    e->del = del;
    e->kv = *kv;
    e->kv.key = malloc(kv->klen + 1);
    memcpy(e->kv.key, kv->key, kv->klen);
    e->kv.val = malloc(kv->vlen + 1);
    if (kv->vlen)
        memcpy(e->kv.val, kv->val, kv->vlen);
    for (size_t i = 0; i < s->nw; i++)
        if (match(kv->key, kv->klen, s->watches[i].key, s->watches[i].klen,
                  s->watches[i].end, s->watches[i].elen))
            send_event(s, &s->watches[i], e);
}

static void conn_closed(uv_handle_t *h)
{
    fconn *cn = h->data;
    free(cn->buf);
    free(cn);
}

static void drop_conn(fs *s, fconn *cn)
{
    for (size_t i = 0; i < s->nw;) {
        if (s->watches[i].cn == cn) {
            free(s->watches[i].key);
            free(s->watches[i].end);
            s->watches[i] = s->watches[--s->nw];
        } else {
            i++;
        }
    }
    fconn **pp = &s->conns;
    while (*pp && *pp != cn)
        pp = &(*pp)->next;
    if (*pp)
        *pp = cn->next;
    uv_close((uv_handle_t *)&cn->tcp, conn_closed);
}

static void drop_all(fs *s)
{
    while (s->conns)
        drop_conn(s, s->conns);
}

static uint8_t *bin_dup(const ProtobufCBinaryData *b)
{
    uint8_t *p = malloc(b->len + 1);
    if (b->len)
        memcpy(p, b->data, b->len);
    return p;
}

static void do_put(fs *s, fconn *cn, uint64_t stream,
                   const Skiffpb__PutRequest *p, int reply)
{
    fkv *f = NULL;
    for (size_t i = 0; i < s->nkv; i++)
        if (s->kvs[i].klen == p->key.len &&
            memcmp(s->kvs[i].key, p->key.data, p->key.len) == 0)
            f = &s->kvs[i];
    fkv prev;
    memset(&prev, 0, sizeof prev);
    int had = f != NULL;
    if (f)
        prev = *f;
    s->rev++;
    if (!f) {
        if ((s->nkv & (s->nkv - 1)) == 0)
            s->kvs = realloc(s->kvs, sizeof *s->kvs * (s->nkv * 2 + 1));
        f = &s->kvs[s->nkv++];
        memset(f, 0, sizeof *f);
        f->key = bin_dup(&p->key);
        f->klen = p->key.len;
        f->create = s->rev;
    } else {
        prev.val = f->val;
    }
    uint8_t *oldval = had ? f->val : NULL;
    f->val = bin_dup(&p->value);
    f->vlen = p->value.len;
    f->mod = s->rev;
    f->ver++;
    f->lease = p->lease;
    atomic_fetch_add(&s->k.puts, 1);
    record(s, 0, f);
    if (reply) {
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__PutResponse pr = SKIFFPB__PUT_RESPONSE__INIT;
        Skiffpb__ResponseHeader h;
        Skiffpb__KeyValue pkv;
        hdr_init(s, &h, 0);
        pr.header = &h;
        if (had && p->prev_kv) {
            to_pb_kv(&prev, &pkv);
            pr.prev_kv = &pkv;
        }
        r.body_case = SKIFFPB__RESPONSE__BODY_PUT;
        r.put = &pr;
        send_resp(cn, stream, &r);
    }
    free(oldval);
}

static void do_delete(fs *s, fconn *cn, uint64_t stream,
                      const Skiffpb__DeleteRangeRequest *q)
{
    int64_t deleted = 0;
    for (size_t i = 0; i < s->nkv;) {
        fkv *f = &s->kvs[i];
        if (!match(f->key, f->klen, q->key.data, q->key.len, q->range_end.data,
                   q->range_end.len)) {
            i++;
            continue;
        }
        if (!deleted)
            s->rev++;
        deleted++;
        fkv gone = *f;
        gone.mod = s->rev;
        gone.vlen = 0;
        record(s, 1, &gone);
        free(f->key);
        free(f->val);
        s->kvs[i] = s->kvs[--s->nkv];
    }
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__DeleteRangeResponse dr = SKIFFPB__DELETE_RANGE_RESPONSE__INIT;
    Skiffpb__ResponseHeader h;
    hdr_init(s, &h, 0);
    dr.header = &h;
    dr.deleted = deleted;
    r.body_case = SKIFFPB__RESPONSE__BODY_DELETE_RANGE;
    r.delete_range = &dr;
    send_resp(cn, stream, &r);
}

static void do_range(fs *s, fconn *cn, uint64_t stream,
                     const Skiffpb__RangeRequest *q)
{
    Skiffpb__KeyValue *kvs = calloc(s->nkv + 1, sizeof *kvs);
    Skiffpb__KeyValue **pk = calloc(s->nkv + 1, sizeof *pk);
    size_t n = 0, count = 0;
    for (size_t i = 0; i < s->nkv; i++) {
        if (!match(s->kvs[i].key, s->kvs[i].klen, q->key.data, q->key.len,
                   q->range_end.data, q->range_end.len))
            continue;
        count++;
        if (q->count_only || (q->limit && (int64_t)n >= q->limit))
            continue;
        to_pb_kv(&s->kvs[i], &kvs[n]);
        if (q->keys_only)
            kvs[n].value.len = 0;
        pk[n] = &kvs[n];
        n++;
    }
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__RangeResponse rr = SKIFFPB__RANGE_RESPONSE__INIT;
    Skiffpb__ResponseHeader h;
    hdr_init(s, &h, 0);
    rr.header = &h;
    rr.kvs = pk;
    rr.n_kvs = n;
    rr.count = (int64_t)count;
    rr.more = n < count && !q->count_only;
    r.body_case = SKIFFPB__RESPONSE__BODY_RANGE;
    r.range = &rr;
    send_resp(cn, stream, &r);
    free(kvs);
    free(pk);
}

static void do_watch(fs *s, fconn *cn, uint64_t stream,
                     const Skiffpb__WatchCreateRequest *q)
{
    atomic_fetch_add(&s->k.watch_creates, 1);
    atomic_store(&s->k.last_watch_start, q->start_revision);
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
    Skiffpb__ResponseHeader h;
    hdr_init(s, &h, 0);
    wr.header = &h;
    r.body_case = SKIFFPB__RESPONSE__BODY_WATCH;
    r.watch = &wr;
    int64_t crev = atomic_load(&s->k.compact_rev);
    if (atomic_load(&s->k.compact_next_watch) > 0) {
        atomic_fetch_sub(&s->k.compact_next_watch, 1);
        wr.canceled = 1;
        wr.compact_revision = s->rev;
        wr.cancel_reason = (char *)"compacted";
        send_resp(cn, stream, &r);
        return;
    }
    if (q->start_revision > 0 && crev > 0 && q->start_revision <= crev) {
        wr.canceled = 1;
        wr.compact_revision = crev;
        wr.cancel_reason = (char *)"compacted";
        send_resp(cn, stream, &r);
        return;
    }
    s->watches = realloc(s->watches, sizeof *s->watches * (s->nw + 1));
    fwatch *w = &s->watches[s->nw++];
    w->cn = cn;
    w->stream = stream;
    w->id = ++s->next_watch_id;
    w->key = bin_dup(&q->key);
    w->klen = q->key.len;
    w->end = bin_dup(&q->range_end);
    w->elen = q->range_end.len;
    wr.watch_id = w->id;
    wr.created = 1;
    r.more = 1;
    send_resp(cn, stream, &r);
    if (q->start_revision > 0) {
        int64_t from = q->start_revision;
        if (atomic_load(&s->k.sloppy_resume) && from > 1)
            from--;
        for (size_t i = 0; i < s->nhist; i++)
            if (s->hist[i].kv.mod >= from &&
                match(s->hist[i].kv.key, s->hist[i].kv.klen, w->key, w->klen,
                      w->end, w->elen))
                send_event(s, w, &s->hist[i]);
    }
}

static fwatch *watch_on(fs *s, fconn *cn, uint64_t stream)
{
    for (size_t i = 0; i < s->nw; i++)
        if (s->watches[i].cn == cn && s->watches[i].stream == stream)
            return &s->watches[i];
    return NULL;
}

static void do_lease(fs *s, fconn *cn, uint64_t stream,
                     const Skiffpb__Request *q)
{
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    Skiffpb__ResponseHeader h;
    hdr_init(s, &h, 0);
    if (q->body_case == SKIFFPB__REQUEST__BODY_LEASE_GRANT) {
        Skiffpb__LeaseGrantResponse g = SKIFFPB__LEASE_GRANT_RESPONSE__INIT;
        int64_t id =
            q->lease_grant->id ? q->lease_grant->id : 1000 + ++s->next_lease;
        if (s->nleases < 64) {
            s->lease_id[s->nleases] = id;
            s->lease_ttl[s->nleases++] = q->lease_grant->ttl;
        }
        g.header = &h;
        g.id = id;
        g.ttl = q->lease_grant->ttl;
        r.body_case = SKIFFPB__RESPONSE__BODY_LEASE_GRANT;
        r.lease_grant = &g;
        send_resp(cn, stream, &r);
        return;
    }
    int64_t id = q->body_case == SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE
                     ? q->lease_keepalive->id
                     : q->lease_revoke->id;
    int idx = -1;
    for (int i = 0; i < s->nleases; i++)
        if (s->lease_id[i] == id)
            idx = i;
    if (idx < 0) {
        send_error(cn, stream, SKIFFPB__ERROR_CODE__LEASE_NOT_FOUND, 0);
        return;
    }
    if (q->body_case == SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE) {
        atomic_fetch_add(&s->k.keepalives, 1);
        Skiffpb__LeaseKeepAliveResponse k =
            SKIFFPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
        k.header = &h;
        k.id = id;
        k.ttl = s->lease_ttl[idx];
        r.body_case = SKIFFPB__RESPONSE__BODY_LEASE_KEEPALIVE;
        r.lease_keepalive = &k;
        send_resp(cn, stream, &r);
        return;
    }
    s->lease_id[idx] = s->lease_id[--s->nleases];
    s->lease_ttl[idx] = s->lease_ttl[s->nleases];
    Skiffpb__LeaseRevokeResponse v = SKIFFPB__LEASE_REVOKE_RESPONSE__INIT;
    v.header = &h;
    r.body_case = SKIFFPB__RESPONSE__BODY_LEASE_REVOKE;
    r.lease_revoke = &v;
    send_resp(cn, stream, &r);
}

static void do_snapshot(fs *s, fconn *cn, uint64_t stream)
{
    static const char *parts[] = {"abc", "def", "gh"};
    for (int i = 0; i < 3; i++) {
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__SnapshotResponse sr = SKIFFPB__SNAPSHOT_RESPONSE__INIT;
        Skiffpb__ResponseHeader h;
        hdr_init(s, &h, 0);
        sr.header = &h;
        sr.blob.data = (uint8_t *)parts[i];
        sr.blob.len = strlen(parts[i]);
        sr.remaining_bytes = (uint64_t)(2 - i) * 3;
        r.more = i < 2;
        r.body_case = SKIFFPB__RESPONSE__BODY_SNAPSHOT;
        r.snapshot = &sr;
        send_resp(cn, stream, &r);
    }
}

/* Returns 0, or 1 when the connection was dropped. */
static int handle(fs *s, fconn *cn, uint64_t stream, const uint8_t *p, size_t n)
{
    Skiffpb__Request *q = skiffpb__request__unpack(NULL, n, p);
    if (!q) {
        drop_conn(s, cn);
        return 1;
    }
    atomic_fetch_add(&s->k.requests, 1);
    int rc = 0;
    int watchctl = q->body_case == SKIFFPB__REQUEST__BODY_WATCH_CANCEL ||
                   q->body_case == SKIFFPB__REQUEST__BODY_WATCH_PROGRESS;
    if (!watchctl && atomic_load(&s->k.drop_before) > 0) {
        atomic_fetch_sub(&s->k.drop_before, 1);
        drop_all(s);
        rc = 1;
        goto out;
    }
    if (!watchctl && atomic_load(&s->k.unavailable) > 0) {
        atomic_fetch_sub(&s->k.unavailable, 1);
        send_error(cn, stream, SKIFFPB__ERROR_CODE__UNAVAILABLE, 0);
        goto out;
    }
    if (!watchctl && atomic_load(&s->k.no_leader) > 0) {
        atomic_fetch_sub(&s->k.no_leader, 1);
        send_error(cn, stream, SKIFFPB__ERROR_CODE__NO_LEADER, 0);
        goto out;
    }
    if (!watchctl && q->body_case != SKIFFPB__REQUEST__BODY_WATCH_CREATE &&
        atomic_load(&s->k.silent))
        goto out;
    switch (q->body_case) {
    case SKIFFPB__REQUEST__BODY_PUT:
        if (atomic_load(&s->k.drop_after_put)) {
            atomic_store(&s->k.drop_after_put, 0);
            do_put(s, cn, stream, q->put, 0);
            drop_all(s);
            rc = 1;
            break;
        }
        do_put(s, cn, stream, q->put, 1);
        break;
    case SKIFFPB__REQUEST__BODY_RANGE:
        do_range(s, cn, stream, q->range);
        break;
    case SKIFFPB__REQUEST__BODY_DELETE_RANGE:
        do_delete(s, cn, stream, q->delete_range);
        break;
    case SKIFFPB__REQUEST__BODY_WATCH_CREATE:
        do_watch(s, cn, stream, q->watch_create);
        break;
    case SKIFFPB__REQUEST__BODY_WATCH_CANCEL:
    case SKIFFPB__REQUEST__BODY_WATCH_PROGRESS: {
        fwatch *w = watch_on(s, cn, stream);
        if (!w)
            break;
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
        Skiffpb__ResponseHeader h;
        hdr_init(s, &h, 0);
        wr.header = &h;
        wr.watch_id = w->id;
        r.body_case = SKIFFPB__RESPONSE__BODY_WATCH;
        r.watch = &wr;
        if (q->body_case == SKIFFPB__REQUEST__BODY_WATCH_CANCEL) {
            wr.canceled = 1;
            free(w->key);
            free(w->end);
            *w = s->watches[--s->nw];
        } else {
            r.more = 1;
        }
        send_resp(cn, stream, &r);
        break;
    }
    case SKIFFPB__REQUEST__BODY_LEASE_GRANT:
    case SKIFFPB__REQUEST__BODY_LEASE_KEEPALIVE:
    case SKIFFPB__REQUEST__BODY_LEASE_REVOKE:
        do_lease(s, cn, stream, q);
        break;
    case SKIFFPB__REQUEST__BODY_SNAPSHOT:
        do_snapshot(s, cn, stream);
        break;
    case SKIFFPB__REQUEST__BODY_STATUS: {
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__StatusResponse st = SKIFFPB__STATUS_RESPONSE__INIT;
        Skiffpb__ResponseHeader h;
        hdr_init(s, &h, 0);
        st.header = &h;
        st.version = (char *)"fake-1";
        st.leader = atomic_load(&s->k.leader) ? atomic_load(&s->k.leader) : 1;
        st.dbsize = 4096;
        r.body_case = SKIFFPB__RESPONSE__BODY_STATUS;
        r.status = &st;
        send_resp(cn, stream, &r);
        break;
    }
    case SKIFFPB__REQUEST__BODY_MEMBER_ADD: {
        /* Member 1 (this one) plus the new member 42. */
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__MemberAddResponse ma = SKIFFPB__MEMBER_ADD_RESPONSE__INIT;
        Skiffpb__ResponseHeader h;
        hdr_init(s, &h, 0);
        Skiffpb__Member self = SKIFFPB__MEMBER__INIT,
                        nw = SKIFFPB__MEMBER__INIT;
        Skiffpb__Member *all[2] = {&self, &nw};
        self.id = h.member_id;
        self.name = (char *)"fake";
        nw.id = 42;
        nw.peerurls = q->member_add->peerurls;
        nw.n_peerurls = q->member_add->n_peerurls;
        nw.islearner = q->member_add->islearner;
        ma.header = &h;
        ma.member = &nw;
        ma.members = all;
        ma.n_members = 2;
        r.body_case = SKIFFPB__RESPONSE__BODY_MEMBER_ADD;
        r.member_add = &ma;
        send_resp(cn, stream, &r);
        break;
    }
    case SKIFFPB__REQUEST__BODY_MEMBER_REMOVE:
        send_error(cn, stream, SKIFFPB__ERROR_CODE__MEMBER_NOT_FOUND, 0);
        break;
    case SKIFFPB__REQUEST__BODY_MOVE_LEADER: {
        /* Like skiffd: only the leader takes it; others name the leader. */
        Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
        Skiffpb__ResponseHeader h;
        hdr_init(s, &h, 0);
        uint64_t lead = atomic_load(&s->k.leader);
        lead = lead ? lead : 1;
        if (lead != h.member_id) {
            Skiffpb__Error e = SKIFFPB__ERROR__INIT;
            e.code = SKIFFPB__ERROR_CODE__NOT_LEADER;
            e.message = (char *)"not leader";
            e.leader_hint = lead;
            r.error = &e;
            send_resp(cn, stream, &r);
            break;
        }
        Skiffpb__MoveLeaderResponse ml = SKIFFPB__MOVE_LEADER_RESPONSE__INIT;
        ml.header = &h;
        atomic_fetch_add(&s->k.move_leaders, 1);
        r.body_case = SKIFFPB__RESPONSE__BODY_MOVE_LEADER;
        r.move_leader = &ml;
        send_resp(cn, stream, &r);
        break;
    }
    default:
        send_error(cn, stream, SKIFFPB__ERROR_CODE__UNIMPLEMENTED, 0);
    }
out:
    skiffpb__request__free_unpacked(q, NULL);
    return rc;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    fconn *cn = h->data;
    (void)hint;
    if (cn->cap - cn->len < 65536) {
        cn->cap = cn->cap * 2 + 65536;
        cn->buf = realloc(cn->buf, cn->cap);
    }
    b->base = (char *)cn->buf + cn->len;
    b->len = cn->cap - cn->len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    fconn *cn = st->data;
    fs *s = cn->s;
    (void)b;
    if (nread < 0) {
        drop_conn(s, cn);
        return;
    }
    cn->len += (size_t)nread;
    size_t off = 0;
    while (cn->len - off >= 12) {
        const uint8_t *h = cn->buf + off;
        uint32_t n = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) |
                     ((uint32_t)h[2] << 8) | h[3];
        uint64_t stream = 0;
        for (int i = 0; i < 8; i++)
            stream = (stream << 8) | h[4 + i];
        if (cn->len - off < 12 + (size_t)n)
            break;
        off += 12 + n;
        if (handle(s, cn, stream, h + 12, n))
            return; /* dropped: cn is closing, its buffer is dead */
    }
    memmove(cn->buf, cn->buf + off, cn->len - off);
    cn->len -= off;
}

static void on_conn(uv_stream_t *l, int status)
{
    fs *s = l->data;
    if (status < 0)
        return;
    fconn *cn = calloc(1, sizeof *cn);
    cn->s = s;
    uv_tcp_init(&s->loop, &cn->tcp);
    cn->tcp.data = cn;
    if (uv_accept(l, (uv_stream_t *)&cn->tcp) < 0) {
        uv_close((uv_handle_t *)&cn->tcp, conn_closed);
        return;
    }
    atomic_fetch_add(&s->k.accepts, 1);
    cn->next = s->conns;
    s->conns = cn;
    uv_read_start((uv_stream_t *)&cn->tcp, alloc_cb, on_read);
}

static void on_stop(uv_async_t *a)
{
    fs *s = a->data;
    drop_all(s);
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->stop_async, NULL);
}

static void thread_main(void *arg)
{
    fs *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

fs *fs_start(void)
{
    fs *s = calloc(1, sizeof *s);
    uv_loop_init(&s->loop);
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0) ||
        uv_listen((uv_stream_t *)&s->listener, 128, on_conn)) {
        fprintf(stderr, "fake server: cannot listen\n");
        abort();
    }
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.sin_port);
    uv_async_init(&s->loop, &s->stop_async, on_stop);
    s->stop_async.data = s;
    atomic_store(&s->k.last_watch_start, -1);
    uv_thread_create(&s->thr, thread_main, s);
    return s;
}

int fs_port(const fs *s)
{
    return s->port;
}

fs_knobs *fs_knobs_of(fs *s)
{
    return &s->k;
}

void fs_stop(fs *s)
{
    uv_async_send(&s->stop_async);
    uv_thread_join(&s->thr);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    for (size_t i = 0; i < s->nkv; i++) {
        free(s->kvs[i].key);
        free(s->kvs[i].val);
    }
    for (size_t i = 0; i < s->nhist; i++) {
        free(s->hist[i].kv.key);
        free(s->hist[i].kv.val);
    }
    free(s->kvs);
    free(s->hist);
    free(s->watches);
    free(s);
}
