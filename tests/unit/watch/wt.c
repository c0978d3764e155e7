/*
 * Test helpers for the watch hub: see wt.h.  Commands are built as
 * protobuf-c structs on the stack, packed with kv_command_pack and applied
 * with kv_apply; every applied revision is then handed to the hub, which
 * is exactly what the server's writer does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wt.h"

#include <stdio.h>
#include <string.h>

#include "tu.h"

void wt_open(wt_store *t, const watch_hub_options *opts)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(tu_tmpdir(t->dir, sizeof t->dir), 0);
    /* Durability is storage's business; the hub's tests only need the
     * committed state, so skip fdatasync. */
    kv_options ko = {0};
    ko.sync = KV_SYNC_NONE;
    assert_int_equal(kv_open(&t->kv, t->dir, &ko), 0);
    assert_int_equal(watch_hub_create(&t->hub, t->kv, opts), 0);
    t->notify = true;
}

void wt_close(wt_store *t)
{
    watch_hub_destroy(t->hub);
    kv_close(t->kv);
    cm_arena_free(&t->arena);
    tu_rmrf(t->dir);
}

int wt_apply(wt_store *t, Skiffpb__Command *cmd)
{
    cm_buf b = {0};
    assert_int_equal(kv_command_pack(cmd, &b), 0);
    kv_entry e = {++t->index, b.base, b.len, 0};
    cm_arena_reset(&t->arena);
    assert_int_equal(kv_apply(t->kv, &e, &t->arena, &t->last), 0);
    cm_buf_free(&b);
    if (t->notify)
        assert_int_equal(watch_hub_notify(t->hub, &t->last.events), 0);
    return t->last.code;
}

static ProtobufCBinaryData bin(const char *s)
{
    ProtobufCBinaryData d = {strlen(s), (uint8_t *)s};
    return d;
}

int64_t wt_put_lease(wt_store *t, const char *key, const char *val,
                     int64_t lease)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = bin(key);
    p.value = bin(val);
    p.lease = lease;
    c.op_case = SKIFFPB__COMMAND__OP_PUT;
    c.put = &p;
    assert_int_equal(wt_apply(t, &c), 0);
    return t->last.revision;
}

int64_t wt_put(wt_store *t, const char *key, const char *val)
{
    return wt_put_lease(t, key, val, 0);
}

int64_t wt_del(wt_store *t, const char *key, const char *end)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    Skiffpb__DeleteRangeRequest d = SKIFFPB__DELETE_RANGE_REQUEST__INIT;
    d.key = bin(key);
    if (end)
        d.range_end = bin(end);
    c.op_case = SKIFFPB__COMMAND__OP_DELETE_RANGE;
    c.delete_range = &d;
    assert_int_equal(wt_apply(t, &c), 0);
    return t->last.revision;
}

int64_t wt_txn(wt_store *t, const char *const *puts, const char *const *dels)
{
    enum { MAXOPS = 64 };
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    Skiffpb__TxnRequest txn = SKIFFPB__TXN_REQUEST__INIT;
    Skiffpb__RequestOp ops[MAXOPS], *opp[MAXOPS];
    Skiffpb__PutRequest pr[MAXOPS];
    Skiffpb__DeleteRangeRequest dr[MAXOPS];
    size_t n = 0;
    for (size_t i = 0; puts && puts[i]; i += 2, n++) {
        skiffpb__request_op__init(&ops[n]);
        skiffpb__put_request__init(&pr[n]);
        pr[n].key = bin(puts[i]);
        pr[n].value = bin(puts[i + 1]);
        ops[n].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        ops[n].request_put = &pr[n];
        opp[n] = &ops[n];
    }
    for (size_t i = 0; dels && dels[i]; i++, n++) {
        skiffpb__request_op__init(&ops[n]);
        skiffpb__delete_range_request__init(&dr[n]);
        dr[n].key = bin(dels[i]);
        ops[n].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        ops[n].request_delete_range = &dr[n];
        opp[n] = &ops[n];
    }
    txn.n_success = n;
    txn.success = opp;
    c.op_case = SKIFFPB__COMMAND__OP_TXN;
    c.txn = &txn;
    assert_int_equal(wt_apply(t, &c), 0);
    return t->last.revision;
}

int64_t wt_lease_grant(wt_store *t, int64_t id, int64_t ttl)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    Skiffpb__LeaseGrantRequest g = SKIFFPB__LEASE_GRANT_REQUEST__INIT;
    g.id = id;
    g.ttl = ttl;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    assert_int_equal(wt_apply(t, &c), 0);
    return t->last.reply.lease_grant->id;
}

int64_t wt_lease_revoke(wt_store *t, int64_t id)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    Skiffpb__LeaseRevokeRequest r = SKIFFPB__LEASE_REVOKE_REQUEST__INIT;
    r.id = id;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_REVOKE;
    c.lease_revoke = &r;
    assert_int_equal(wt_apply(t, &c), 0);
    return t->last.revision;
}

int wt_compact(wt_store *t, int64_t rev)
{
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    Skiffpb__CompactionRequest r = SKIFFPB__COMPACTION_REQUEST__INIT;
    r.revision = rev;
    r.physical = 1;
    c.op_case = SKIFFPB__COMMAND__OP_COMPACTION;
    c.compaction = &r;
    return wt_apply(t, &c);
}

int64_t wt_rev(wt_store *t)
{
    kv_status st;
    assert_int_equal(kv_status_get(t->kv, &st), 0);
    return st.revision;
}

static void logf_(wt_sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->log + s->len, sizeof s->log - s->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof s->log - s->len);
    s->len += (size_t)n;
}

static void log_bin(wt_sink *s, ProtobufCBinaryData d)
{
    logf_(s, "%.*s", (int)d.len, (const char *)d.data);
}

static void probe_busy(wt_sink *s)
{
    if (!s->hub)
        return;
    kv_events none = {watch_hub_revision(s->hub) + 1, 0, NULL};
    int a = watch_hub_notify(s->hub, &none);
    int b = watch_hub_step(s->hub, 0);
    int c = watch_hub_progress(s->hub);
    s->busy_rc = (a == WATCH_EBUSY && b == WATCH_EBUSY && c == WATCH_EBUSY)
                     ? WATCH_EBUSY
                     : -1;
}

static int s_send(watch_sink *sk, watch_watcher *w, const kv_events *evs)
{
    wt_sink *s = sk->data;
    probe_busy(s);
    if (s->full > 0)
        return WATCH_EFULL;
    if (s->stop_other) {
        watch_stop(s->stop_other);
        s->stop_other = NULL;
    }
    assert_true(evs->n >= 1);
    s->sends++;
    logf_(s, "%lld:", (long long)evs->revision);
    for (size_t i = 0; i < evs->n; i++) {
        const Skiffpb__Event *e = evs->ev[i];
        assert_int_equal(e->kv->mod_revision, evs->revision);
        if (i)
            logf_(s, ",");
        if (e->type == SKIFFPB__EVENT__EVENT_TYPE__PUT) {
            logf_(s, "P ");
            log_bin(s, e->kv->key);
            logf_(s, "=");
            log_bin(s, e->kv->value);
        } else {
            logf_(s, "D ");
            log_bin(s, e->kv->key);
        }
        if (e->prev_kv) {
            logf_(s, "^");
            log_bin(s, e->prev_kv->value);
        }
    }
    logf_(s, ";");
    if (s->accept > 0 && --s->accept == 0)
        s->full = 1;
    if (s->stop_self) {
        s->stop_self = false;
        watch_stop(w);
    }
    return 0;
}

static int s_progress(watch_sink *sk, watch_watcher *w, int64_t rev)
{
    (void)w;
    wt_sink *s = sk->data;
    probe_busy(s);
    if (s->full > 0)
        return WATCH_EFULL;
    s->progresses++;
    logf_(s, "@%lld;", (long long)rev);
    return 0;
}

static void s_cancel(watch_sink *sk, watch_watcher *w, int reason,
                     int64_t compact_rev)
{
    wt_sink *s = sk->data;
    s->cancels++;
    s->cancel_reason = reason;
    s->cancel_rev = compact_rev;
    if (reason == WATCH_ECOMPACTED)
        logf_(s, "X%lld;", (long long)compact_rev);
    else
        logf_(s, "E%s;", watch_err_name(reason));
    if (s->stop_on_cancel)
        watch_stop(w);
}

void wt_sink_init(wt_sink *s)
{
    memset(s, 0, sizeof *s);
    s->sink.data = s;
    s->sink.send = s_send;
    s->sink.progress = s_progress;
    s->sink.cancel = s_cancel;
}

void wt_sink_clear(wt_sink *s)
{
    s->len = 0;
    s->log[0] = 0;
}

watch_watcher *wt_watch(watch_hub *hub, wt_sink *s, const char *key,
                        const char *end, int64_t start, unsigned flags)
{
    watch_options o = {0};
    o.key = (const uint8_t *)key;
    o.key_len = strlen(key);
    if (end) {
        o.range_end = (const uint8_t *)end;
        o.end_len = strlen(end);
    }
    o.start_revision = start;
    o.flags = flags;
    o.sink = &s->sink;
    o.data = s;
    watch_watcher *w = NULL;
    assert_int_equal(watch_start(hub, &o, &w), 0);
    assert_non_null(w);
    return w;
}

watch_watcher *wt_watch_from(watch_hub *hub, wt_sink *s, const char *key,
                             int64_t start, unsigned flags)
{
    static const uint8_t zero = 0;
    watch_options o = {0};
    o.key = (const uint8_t *)key;
    o.key_len = strlen(key);
    o.range_end = &zero;
    o.end_len = 1;
    o.start_revision = start;
    o.flags = flags;
    o.sink = &s->sink;
    o.data = s;
    watch_watcher *w = NULL;
    assert_int_equal(watch_start(hub, &o, &w), 0);
    return w;
}

int wt_drain(watch_hub *hub, size_t budget)
{
    int steps = 0, rc;
    while ((rc = watch_hub_step(hub, budget)) == 1)
        steps++;
    assert_int_equal(rc, 0);
    return steps + 1;
}
