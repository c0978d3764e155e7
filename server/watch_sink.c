/*
 * Watch streams: the hub's sink over a client connection.
 *
 * Each watch lives on the stream of the request that created it.  The sink
 * encodes a revision's events into the connection's output buffer when
 * there is room and otherwise answers WATCH_EFULL: the hub parks the
 * watcher (remembering only the revision) and, once the connection has
 * drained, we resume it and the hub catches it up from storage.  So a slow
 * client costs a bounded buffer, never an unbounded queue, and loses
 * nothing.  Catch-up work runs from an idle handle in bounded steps, so
 * the loop keeps serving other connections meanwhile.
 */
#include "server_int.h"

#include <errno.h>
#include <string.h>

struct wstream {
    wstream *next;
    conn *c;
    uint64_t stream;
    watch_watcher *w;
    bool parked;
    unsigned sent; /* revisions sent (for the unsafe drop switch) */
};

static int send_watch(wstream *ws, Skiffpb__WatchResponse *wr, bool more)
{
    Skiffpb__Response r = SKIFFPB__RESPONSE__INIT;
    r.body_case = SKIFFPB__RESPONSE__BODY_WATCH;
    r.watch = wr;
    r.more = more;
    return conn_send(ws->c, ws->stream, &r);
}

static int on_send(watch_sink *sink, watch_watcher *w, const kv_events *evs)
{
    server *s = sink->data;
    wstream *ws = watch_data(w);
    if (!conn_has_room(ws->c)) {
        ws->parked = true;
        return WATCH_EFULL;
    }
    if (++ws->sent == 20 && s->cfg.unsafe_drop_watch_event)
        return 0; /* test builds only: lose this revision on purpose */
    Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(s, &h, evs->revision);
    wr.header = &h;
    wr.watch_id = watch_id(w);
    wr.n_events = evs->n;
    wr.events = evs->ev;
    if (send_watch(ws, &wr, true))
        return WATCH_EFULL;
    s->m.watch_events_sent += evs->n;
    return 0;
}

static int on_progress(watch_sink *sink, watch_watcher *w, int64_t rev)
{
    server *s = sink->data;
    wstream *ws = watch_data(w);
    if (!conn_has_room(ws->c)) {
        ws->parked = true;
        return WATCH_EFULL;
    }
    Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(s, &h, rev);
    wr.header = &h;
    wr.watch_id = watch_id(w);
    return send_watch(ws, &wr, true) ? WATCH_EFULL : 0;
}

static void unlink_ws(wstream *ws)
{
    conn *c = ws->c;
    for (wstream **p = &c->watches; *p; p = &(*p)->next)
        if (*p == ws) {
            *p = ws->next;
            break;
        }
    c->nwatches--;
}

static void finish(wstream *ws, const char *reason, int64_t compact)
{
    Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(ws->c->s, &h, watch_hub_revision(ws->c->s->hub));
    wr.header = &h;
    wr.watch_id = watch_id(ws->w);
    wr.canceled = 1;
    wr.compact_revision = compact;
    wr.cancel_reason = (char *)(reason ? reason : "");
    /* The cancel must get out even to a full connection: it is small and
     * it ends the stream. */
    send_watch(ws, &wr, false);
    watch_stop(ws->w);
    unlink_ws(ws);
    cm_free(ws);
}

static void on_cancel(watch_sink *sink, watch_watcher *w, int reason,
                      int64_t compact)
{
    (void)sink;
    wstream *ws = watch_data(w);
    finish(ws,
           reason == WATCH_ECOMPACTED
               ? "mvcc: required revision has been compacted"
               : watch_strerror(reason),
           compact);
}

static watch_sink *sink_of(server *s)
{
    static watch_sink sink;
    sink.data = s;
    sink.send = on_send;
    sink.progress = on_progress;
    sink.cancel = on_cancel;
    return &sink;
}

static void on_idle(uv_idle_t *h)
{
    server *s = h->data;
    int rc = watch_hub_step(s->hub, 0);
    if (rc <= 0 && rc != -ENOMEM) {
        uv_idle_stop(h);
        s->watch_idle_on = false;
    }
}

void srv_watch_kick(server *s)
{
    if (!s->watch_idle_on && watch_hub_pending(s->hub)) {
        s->watch_idle.data = s;
        uv_idle_start(&s->watch_idle, on_idle);
        s->watch_idle_on = true;
    }
}

int srv_watch_create(conn *c, uint64_t stream,
                     const Skiffpb__WatchCreateRequest *r)
{
    server *s = c->s;
    if (c->nwatches >= s->cfg.max_watches)
        return conn_send_code(c, stream, SKIFFPB__ERROR_CODE__TOO_MANY_WATCHES,
                              "too many watches on this connection", 0);
    wstream *ws = cm_calloc(1, sizeof *ws);
    if (!ws)
        return conn_send_error(c, stream, -ENOMEM, NULL, 0);
    ws->c = c;
    ws->stream = stream;
    watch_options o = {0};
    o.key = r->key.data;
    o.key_len = r->key.len;
    o.range_end = r->range_end.data;
    o.end_len = r->range_end.len;
    o.start_revision = r->start_revision;
    /* "From now" starts after every write already answered, also one
     * whose commit is still running (apply.c answers early). */
    int64_t now = watch_hub_revision(s->hub);
    if (s->hold_reads && s->early_rev > now)
        now = s->early_rev;
    if (!o.start_revision)
        o.start_revision = now + 1;
    o.id = r->watch_id;
    o.flags = (r->prev_kv ? WATCH_PREV_KV : 0) |
              (r->progress_notify ? WATCH_PROGRESS_NOTIFY : 0);
    for (size_t i = 0; i < r->n_filters; i++)
        o.flags |= r->filters[i] ==
                           SKIFFPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT
                       ? WATCH_NO_PUT
                       : WATCH_NO_DELETE;
    o.sink = sink_of(s);
    o.data = ws;
    int rc = watch_start(s->hub, &o, &ws->w);
    if (rc) {
        cm_free(ws);
        Skiffpb__ErrorCode code =
            rc == WATCH_EEXIST ? SKIFFPB__ERROR_CODE__WATCH_ID_EXISTS
            : rc == WATCH_ELIMIT ? SKIFFPB__ERROR_CODE__TOO_MANY_WATCHES
            : rc == -ENOMEM      ? SKIFFPB__ERROR_CODE__UNAVAILABLE
                                 : SKIFFPB__ERROR_CODE__INVALID_ARGUMENT;
        return conn_send_code(c, stream, code, watch_strerror(rc), 0);
    }
    ws->next = c->watches;
    c->watches = ws;
    c->nwatches++;
    Skiffpb__WatchResponse wr = SKIFFPB__WATCH_RESPONSE__INIT;
    Skiffpb__ResponseHeader h = SKIFFPB__RESPONSE_HEADER__INIT;
    conn_fill_header(s, &h, now);
    wr.header = &h;
    wr.watch_id = watch_id(ws->w);
    wr.created = 1;
    send_watch(ws, &wr, true);
    srv_watch_kick(s);
    return 0;
}

int srv_watch_stream_frame(conn *c, uint64_t stream,
                           const Skiffpb__Request *r)
{
    wstream *ws = c->watches;
    while (ws && ws->stream != stream)
        ws = ws->next;
    if (!ws)
        return 0;
    if (r->body_case == SKIFFPB__REQUEST__BODY_WATCH_CANCEL) {
        finish(ws, "canceled by the client", 0);
    } else if (r->body_case == SKIFFPB__REQUEST__BODY_WATCH_PROGRESS) {
        watch_progress_request(ws->w);
        srv_watch_kick(c->s);
    } else {
        conn_send_code(c, stream, SKIFFPB__ERROR_CODE__INVALID_ARGUMENT,
                       "stream is in use by a watch", 0);
    }
    return 1;
}

void srv_watch_conn_closed(conn *c)
{
    while (c->watches) {
        wstream *ws = c->watches;
        c->watches = ws->next;
        watch_stop(ws->w);
        cm_free(ws);
    }
    c->nwatches = 0;
}

void srv_watch_conn_drained(conn *c)
{
    bool any = false;
    for (wstream *ws = c->watches; ws; ws = ws->next)
        if (ws->parked) {
            ws->parked = false;
            watch_resume(ws->w);
            any = true;
        }
    if (any)
        srv_watch_kick(c->s);
}
