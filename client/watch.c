/*
 * Watches that survive broken connections.
 *
 * A skiff_watch is the caller's long-lived handle; the library maps it to
 * one stream of one connection at a time.  It remembers `next_rev`, the
 * first revision the caller has not seen: the start revision at first,
 * then the created response's revision + 1 (a watch from "now"), then
 * every delivered event revision + 1 and every progress revision + 1.
 * When the connection breaks, or the server answers the create with a
 * retryable error, the watch is created again on any live connection with
 * start_revision = next_rev, and anything below next_rev that still
 * arrives is dropped -- so across reconnects the caller sees each revision
 * once, in order, with no gap (docs/protocol.md, "Watches").
 *
 * A watch ends exactly once, through its callback with a negative status:
 * -ECANCELED after skiff_watch_stop or client close, SKIFF_ECOMPACTED with
 * the compact revision when the history it needs is gone, or
 * SKIFF_ECANCELED_BY_SERVER / the server's error.  Stopping an active
 * watch sends watch_cancel and ends on the server's answer (or on the
 * connection's loss); stopping one that is between connections ends it
 * from the retry timer, never inside the stop call.
 *
 * Responses are decoded into the client's scratch arena, reset after each
 * frame.  The blocking skiff_watcher copies deliveries into arenas of
 * their own and queues them until skiff_watcher_next takes them.
 */
#include "skiff_int.h"

#include <errno.h>
#include <string.h>

static void watch_end(skiff_watch *w, int status, int64_t compact_rev);

/* ---- sending ------------------------------------------------------------- */

static int send_simple(skiff_watch *w, int which)
{
    skiff_client *c = w->client;
    const uint8_t *p;
    size_t len;
    int rc = skiff__encode_simple(&c->scratch, which, w->watch_id, &p, &len);
    if (rc == 0)
        rc = skiff__conn_send(w->conn, w->stream, p, len);
    cm_arena_reset(&c->scratch);
    return rc;
}

static void schedule(skiff_watch *w, int64_t delay)
{
    skiff_client *c = w->client;
    w->conn = NULL;
    w->stream = 0;
    w->state = w->state == W_STOPPING ? W_STOPPING : W_WAIT;
    w->retry_at_ms = skiff__now(c) + delay;
    skiff__retry_arm(c);
}

void skiff__watch_dispatch(skiff_watch *w)
{
    skiff_client *c = w->client;
    skiff_conn *cn = skiff__conn_pick(c);
    if (!cn) {
        w->state = W_WAIT;
        w->retry_at_ms = 0;
        return;
    }
    uint64_t stream = skiff__slot_alloc(cn, 2, w);
    if (!stream) {
        schedule(w, c->backoff_min_ms);
        return;
    }
    const uint8_t *p;
    size_t len;
    int rc = skiff__encode_watch(&c->scratch, w, &p, &len);
    if (rc == 0)
        rc = skiff__conn_send(cn, stream, p, len);
    cm_arena_reset(&c->scratch);
    if (rc) {
        skiff__slot_free(cn, stream);
        schedule(w, c->backoff_min_ms);
        return;
    }
    w->conn = cn;
    w->stream = stream;
    w->state = W_CREATING;
    w->attempts++;
}

void skiff__watches_on_ready(skiff_client *c)
{
    int64_t now = skiff__now(c);
    for (skiff_watch *w = c->watches; w; w = w->next)
        if (w->state == W_WAIT && w->retry_at_ms <= now)
            skiff__watch_dispatch(w);
}

void skiff__watches_retry(skiff_client *c, int64_t now, int64_t *next)
{
    for (skiff_watch *w = c->watches; w; w = w->next) {
        if (w->conn)
            continue;
        if ((w->state == W_WAIT && w->retry_at_ms > now) ||
            w->state == W_STOPPING) {
            if (w->retry_at_ms < *next)
                *next = w->retry_at_ms;
        }
    }
}

void skiff__watches_due(skiff_client *c, int64_t now)
{
    skiff_watch *w = c->watches;
    while (w) {
        skiff_watch *next = w->next;
        if (!w->conn && w->state == W_STOPPING) {
            watch_end(w, -ECANCELED, 0);
            next = c->watches; /* the callback may have changed the list */
        } else if (!w->conn && w->state == W_WAIT && w->retry_at_ms <= now) {
            skiff__watch_dispatch(w);
        }
        w = next;
    }
}

void skiff__watch_on_conn_lost(skiff_watch *w)
{
    w->conn = NULL;
    w->stream = 0;
    if (w->state == W_STOPPING) {
        watch_end(w, -ECANCELED, 0);
        return;
    }
    w->state = W_WAIT;
    w->retry_at_ms = 0;
    skiff__watch_dispatch(w);
}

/* ---- receiving ----------------------------------------------------------- */

static int fill_events(cm_arena *a, const Skiffpb__WatchResponse *m,
                       skiff_watch_resp *resp)
{
    resp->events = cm_arena_alloc(a, sizeof(skiff_event) *
                                         (m->n_events ? m->n_events : 1));
    if (!resp->events)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_events; i++) {
        const Skiffpb__Event *e = m->events[i];
        skiff_event *o = &resp->events[i];
        memset(o, 0, sizeof *o);
        o->type = e->type == SKIFFPB__EVENT__EVENT_TYPE__DELETE
                      ? SKIFF_EVENT_DELETE
                      : SKIFF_EVENT_PUT;
        skiff__kv_fill(&o->kv, e->kv);
        if (e->prev_kv) {
            skiff__kv_fill(&o->prev_kv, e->prev_kv);
            o->has_prev_kv = 1;
        }
    }
    resp->n_events = m->n_events;
    return 0;
}

static int retryable(int code)
{
    return code == SKIFFPB__ERROR_CODE__NO_LEADER ||
           code == SKIFFPB__ERROR_CODE__NOT_LEADER ||
           code == SKIFFPB__ERROR_CODE__UNAVAILABLE ||
           code == SKIFFPB__ERROR_CODE__TOO_MANY_STREAMS ||
           code == SKIFFPB__ERROR_CODE__TIMEOUT;
}

void skiff__watch_on_response(skiff_conn *cn, skiff_watch *w, const uint8_t *p,
                              size_t len)
{
    skiff_client *c = w->client;
    cm_arena *a = &c->scratch;
    ProtobufCAllocator al = skiff__pb_alloc(a);
    Skiffpb__Response *r = skiffpb__response__unpack(&al, len, p);
    if (!r || (!r->error &&
               (r->body_case != SKIFFPB__RESPONSE__BODY_WATCH || !r->watch))) {
        cm_arena_reset(a);
        skiff__conn_fail_over(cn, "malformed watch response", SKIFF_EPROTO);
        return;
    }
    if (r->error && r->error->code != SKIFFPB__ERROR_CODE__OK) {
        int code = r->error->code;
        skiff__slot_free(cn, w->stream);
        skiff__errmsg(c, "watch: %s: %s", cn->addr,
                      r->error->message ? r->error->message : "");
        int64_t crev = r->error->compact_revision;
        cm_arena_reset(a);
        if (w->state == W_STOPPING) {
            w->conn = NULL;
            watch_end(w, -ECANCELED, 0);
        } else if (retryable(code)) {
            int64_t d = c->backoff_min_ms;
            for (int i = 1; i < w->attempts && d < c->backoff_max_ms; i++)
                d *= 2;
            schedule(w, d < c->backoff_max_ms ? d : c->backoff_max_ms);
        } else {
            w->conn = NULL;
            watch_end(w, skiff__err_from_wire(code), crev);
        }
        return;
    }
    const Skiffpb__WatchResponse *m = r->watch;
    skiff_watch_resp resp;
    memset(&resp, 0, sizeof resp);
    skiff__header_fill(&resp.header, m->header);
    int64_t rev = resp.header.revision;
    if (m->canceled || !r->more) {
        skiff__slot_free(cn, w->stream);
        w->conn = NULL;
        int64_t crev = m->compact_revision;
        cm_arena_reset(a);
        if (crev > 0) {
            skiff__errmsg(c,
                          "watch: %s: required revision %lld compacted "
                          "(compact revision %lld)",
                          cn->addr, (long long)w->next_rev, (long long)crev);
            watch_end(w, SKIFF_ECOMPACTED, crev);
        } else if (w->state == W_STOPPING) {
            watch_end(w, -ECANCELED, 0);
        } else {
            skiff__errmsg(c, "watch: %s: canceled by server", cn->addr);
            watch_end(w, SKIFF_ECANCELED_BY_SERVER, 0);
        }
        return;
    }
    if (m->created) {
        w->watch_id = m->watch_id;
        w->attempts = 0;
        if (w->state == W_STOPPING) {
            send_simple(w, SKIFFPB__REQUEST__BODY_WATCH_CANCEL);
            cm_arena_reset(a);
            return;
        }
        w->state = W_ACTIVE;
        int announce = !w->announced;
        w->announced = 1;
        if (w->next_rev == 0)
            w->next_rev = rev + 1;
        if (w->pending_progress) {
            w->pending_progress = 0;
            send_simple(w, SKIFFPB__REQUEST__BODY_WATCH_PROGRESS);
        }
        if (announce) {
            resp.created = 1;
            resp.revision = rev;
            w->cb(w, 0, &resp);
        }
        cm_arena_reset(a);
        return;
    }
    if (w->state != W_ACTIVE) {
        cm_arena_reset(a);
        return;
    }
    if (m->n_events > 0) {
        int64_t erev = m->events[0]->kv ? m->events[0]->kv->mod_revision : 0;
        if (erev > 0)
            rev = erev;
        if (rev < w->next_rev) { /* already delivered before a resume */
            cm_arena_reset(a);
            return;
        }
        if (fill_events(a, m, &resp)) {
            cm_arena_reset(a);
            skiff__conn_fail_over(cn, "out of memory", -ENOMEM);
            return;
        }
        resp.revision = rev;
        w->next_rev = rev + 1;
        w->cb(w, 0, &resp);
        cm_arena_reset(a);
        return;
    }
    /* Progress: everything at or below rev has been sent. */
    if (rev + 1 > w->next_rev)
        w->next_rev = rev + 1;
    resp.revision = rev;
    w->cb(w, 0, &resp);
    cm_arena_reset(a);
}

/* ---- life cycle ---------------------------------------------------------- */

static void watch_end(skiff_watch *w, int status, int64_t compact_rev)
{
    skiff_client *c = w->client;
    if (w->state == W_DONE)
        return;
    if (w->conn && w->stream)
        skiff__slot_free(w->conn, w->stream);
    w->conn = NULL;
    if (w->prev)
        w->prev->next = w->next;
    else
        c->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    cm_free(w->key);
    cm_free(w->range_end);
    w->key = w->range_end = NULL;
    w->state = W_DONE;
    skiff_watch_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.compact_revision = compact_rev;
    resp.revision = w->next_rev - 1;
    w->cb(w, status, &resp);
}

int skiff_watch_start(skiff_client *c, skiff_watch *w,
                      const skiff_watch_opts *o, skiff_watch_cb cb)
{
    if (!c || !w || !o || !cb || (o->key_len && !o->key) ||
        (o->range_end_len && !o->range_end) || o->start_revision < 0)
        return -EINVAL;
    if (c->closing)
        return SKIFF_EFAILED;
    void *data = w->data;
    memset(w, 0, sizeof *w);
    w->data = data;
    if (o->key_len && !(w->key = cm_memdup(o->key, o->key_len)))
        return -ENOMEM;
    if (o->range_end_len &&
        !(w->range_end = cm_memdup(o->range_end, o->range_end_len))) {
        cm_free(w->key);
        w->key = NULL;
        return -ENOMEM;
    }
    w->key_len = o->key_len;
    w->range_end_len = o->range_end_len;
    w->flags = o->flags;
    w->next_rev = o->start_revision;
    w->cb = cb;
    w->client = c;
    w->next = c->watches;
    if (c->watches)
        c->watches->prev = w;
    c->watches = w;
    if (c->blocking)
        uv_update_time(c->loop);
    skiff__watch_dispatch(w);
    return 0;
}

int skiff_watch_progress(skiff_watch *w)
{
    if (!w || w->state == W_DONE || w->state == W_STOPPING)
        return SKIFF_EFAILED;
    if (w->state == W_ACTIVE)
        return send_simple(w, SKIFFPB__REQUEST__BODY_WATCH_PROGRESS);
    w->pending_progress = 1;
    return 0;
}

void skiff_watch_stop(skiff_watch *w)
{
    if (!w || w->state == W_DONE || w->state == W_STOPPING ||
        w->state == W_IDLE)
        return;
    int was = w->state;
    w->state = W_STOPPING;
    if (was == W_ACTIVE && w->conn) {
        if (send_simple(w, SKIFFPB__REQUEST__BODY_WATCH_CANCEL) == 0)
            return;
    }
    if (was == W_CREATING && w->conn)
        return; /* the cancel goes out when the create is confirmed */
    /* Not on a connection: end it from the retry timer. */
    if (w->conn && w->stream)
        skiff__slot_free(w->conn, w->stream);
    w->conn = NULL;
    w->stream = 0;
    w->retry_at_ms = skiff__now(w->client);
    skiff__retry_arm(w->client);
}

void skiff__cancel_all_watches(skiff_client *c)
{
    while (c->watches)
        watch_end(c->watches, -ECANCELED, 0);
}

/* ---- blocking watcher ---------------------------------------------------- */

typedef struct witem {
    struct witem *next;
    skiff_watch_resp resp;
} witem;

struct skiff_watcher {
    skiff_client *c;
    skiff_watch w;
    witem *head, *tail;
    int created;
    int ended;
    int end_status;
    int64_t end_compact;
};

static int copy_kv(cm_arena *a, skiff_kv *kv)
{
    if (kv->key_len && !(kv->key = cm_arena_memdup(a, kv->key, kv->key_len)))
        return -ENOMEM;
    if (kv->value_len &&
        !(kv->value = cm_arena_memdup(a, kv->value, kv->value_len)))
        return -ENOMEM;
    return 0;
}

static witem *copy_resp(const skiff_watch_resp *src)
{
    cm_arena *a = cm_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    witem *it = cm_arena_alloc(a, sizeof *it);
    if (!it)
        goto err;
    it->next = NULL;
    it->resp = *src;
    it->resp.priv_arena = a;
    if (src->n_events) {
        it->resp.events = cm_arena_memdup(a, src->events,
                                          sizeof(skiff_event) * src->n_events);
        if (!it->resp.events)
            goto err;
        for (size_t i = 0; i < src->n_events; i++)
            if (copy_kv(a, &it->resp.events[i].kv) ||
                copy_kv(a, &it->resp.events[i].prev_kv))
                goto err;
    }
    return it;
err:
    cm_arena_free(a);
    cm_free(a);
    return NULL;
}

static void watcher_cb(skiff_watch *w, int status, const skiff_watch_resp *r)
{
    skiff_watcher *wr = w->data;
    if (status < 0) {
        wr->ended = 1;
        if (wr->end_status == 0)
            wr->end_status = status;
        wr->end_compact = r ? r->compact_revision : 0;
        return;
    }
    if (r->created) {
        wr->created = 1;
        return;
    }
    witem *it = copy_resp(r);
    if (!it) {
        /* Cannot queue: end the watch rather than lose an event. */
        skiff_watch_stop(w);
        wr->end_status = -ENOMEM;
        return;
    }
    if (wr->tail)
        wr->tail->next = it;
    else
        wr->head = it;
    wr->tail = it;
}

/* Runs the private loop until `cond(wr)` holds or timeout_ms passes
 * (-1: no timeout).  0 or -ETIMEDOUT. */
static int run_until(skiff_watcher *wr, int (*cond)(const skiff_watcher *),
                     int timeout_ms)
{
    skiff_client *c = wr->c;
    if (timeout_ms == 0) {
        /* A poll: a zero timer would fire before the I/O phase, and
         * UV_RUN_ONCE would then block in it. */
        uv_run(c->loop, UV_RUN_NOWAIT);
        return cond(wr) ? 0 : -ETIMEDOUT;
    }
    uv_update_time(c->loop);
    c->poll_expired = 0;
    if (timeout_ms >= 0)
        uv_timer_start(&c->poll_timer, skiff__poll_timer_cb,
                       (uint64_t)timeout_ms, 0);
    while (!cond(wr) && !c->poll_expired)
        uv_run(c->loop, UV_RUN_ONCE);
    uv_timer_stop(&c->poll_timer);
    return cond(wr) ? 0 : -ETIMEDOUT;
}

static int is_created(const skiff_watcher *wr)
{
    return wr->created || wr->ended;
}

static int is_ended(const skiff_watcher *wr)
{
    return wr->ended;
}

static int has_item(const skiff_watcher *wr)
{
    return wr->head != NULL || wr->ended;
}

static void watcher_free(skiff_watcher *wr)
{
    while (wr->head) {
        witem *it = wr->head;
        wr->head = it->next;
        skiff_watch_resp_free(&it->resp);
    }
    cm_free(wr);
}

int skiff_watcher_open(skiff_client *c, skiff_watcher **out,
                       const skiff_watch_opts *opts)
{
    if (!c || !out)
        return -EINVAL;
    *out = NULL;
    if (!c->blocking)
        return SKIFF_EWRONG_MODE;
    skiff_watcher *wr = cm_calloc(1, sizeof *wr);
    if (!wr)
        return -ENOMEM;
    wr->c = c;
    wr->w.data = wr;
    int rc = skiff_watch_start(c, &wr->w, opts, watcher_cb);
    if (rc) {
        cm_free(wr);
        return rc;
    }
    if (run_until(wr, is_created, c->request_timeout_ms)) {
        skiff_watch_stop(&wr->w);
        if (run_until(wr, is_ended, c->request_timeout_ms))
            watch_end(&wr->w, -ECANCELED, 0);
        watcher_free(wr);
        skiff__errmsg(c, "watch: no confirmation from the server in time");
        return SKIFF_EDEADLINE;
    }
    if (wr->ended) {
        rc = wr->end_status;
        watcher_free(wr);
        return rc;
    }
    *out = wr;
    return 0;
}

int skiff_watcher_next(skiff_watcher *wr, int timeout_ms,
                       skiff_watch_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!wr->head && !wr->ended)
        run_until(wr, has_item, timeout_ms);
    if (wr->head) {
        witem *it = wr->head;
        wr->head = it->next;
        if (!wr->head)
            wr->tail = NULL;
        *resp = it->resp;
        return 0;
    }
    if (wr->ended) {
        resp->compact_revision = wr->end_compact;
        return wr->end_status;
    }
    return -ETIMEDOUT;
}

int skiff_watcher_progress(skiff_watcher *wr)
{
    return wr ? skiff_watch_progress(&wr->w) : -EINVAL;
}

void skiff_watcher_close(skiff_watcher *wr)
{
    if (!wr)
        return;
    if (!wr->ended) {
        skiff_watch_stop(&wr->w);
        if (run_until(wr, is_ended, wr->c->request_timeout_ms))
            watch_end(&wr->w, -ECANCELED, 0);
    }
    watcher_free(wr);
}

void skiff_watch_resp_free(skiff_watch_resp *resp)
{
    if (!resp)
        return;
    cm_arena *a = resp->priv_arena;
    memset(resp, 0, sizeof *resp);
    if (a) {
        cm_arena_free(a);
        cm_free(a);
    }
}
