/*
 * watch: writers put, delete, write in txns and attach short leases to
 * keys under "w/"; watcher threads watch keys, ranges and prefixes on one
 * member each, from past, current or future revisions, some with prev_kv,
 * asking for progress now and then, and every few seconds they stop and
 * resume from their last revision + 1 (a new watcher id whose
 * start_revision is that revision), possibly on another member.
 *
 * The ground truth is the store's history, replayed by ranging over
 * "w/" at every revision in turn (a revision's puts are the keys whose
 * mod_revision is that revision, its deletes the keys that vanished).
 * Replay does not use a watch on purpose: with --unsafe-drop-watch-event
 * a replaying watch would miss a revision too.  Compaction would destroy
 * that history, so every compaction (this workload's and the admin
 * nemesis's, through jr_compact) first replays up to its revision.
 */
#include "jepsen_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 10
#define MAXSTATE 64

static atomic_llong next_val = 1;

/* ---- replay ------------------------------------------------------------- */
typedef struct skv {
    char key[32];
    char value[64];
    int64_t cr, mod, ver;
} skv;

static skv state[MAXSTATE];
static int nstate;

static size_t kv_json(char *b, size_t cap, const char *type, const skv *k)
{
    char v[160];
    if (!strcmp(type, "DELETE"))
        return (size_t)snprintf(
            b, cap,
            "{\"type\":\"DELETE\",\"key\":\"%s\","
            "\"mod_revision\":%lld,\"create_revision\":%lld,"
            "\"version\":%lld}",
            k->key, (long long)k->mod, (long long)k->cr, (long long)k->ver);
    return (size_t)snprintf(
        b, cap,
        "{\"type\":\"PUT\",\"key\":\"%s\",\"value\":%s,\"mod_revision\":%lld,"
        "\"create_revision\":%lld,\"version\":%lld}",
        k->key, jr_json_str(v, sizeof v, k->value, strlen(k->value)),
        (long long)k->mod, (long long)k->cr, (long long)k->ver);
}

static int replay_to(jr_run *r, int64_t upto)
{
    skiff_client *c = jr_client(r, 0, -1, 5000);
    if (!c)
        return -1;
    int rc = 0;
    static char body[65536];
    while (r->replayed_rev < upto) {
        int64_t rev = r->replayed_rev + 1;
        uint8_t end[8];
        skiff_op op = {
            .type = SKIFF_OP_RANGE, .key = "w/", .key_len = 2, .revision = rev};
        skiff_op_prefix(&op, end, sizeof end);
        skiff_result res = {0};
        rc = skiff_do_sync(c, &op, &res);
        if (rc) {
            skiff_result_free(&res);
            break;
        }
        skv next[MAXSTATE];
        int nn = 0;
        size_t o =
            (size_t)snprintf(body, sizeof body,
                             "\"revision\":%lld,\"events\":[", (long long)rev);
        int nev = 0;
        for (size_t i = 0; i < res.n_kvs && nn < MAXSTATE; i++) {
            skv *k = &next[nn++];
            snprintf(k->key, sizeof k->key, "%.*s", (int)res.kvs[i].key_len,
                     (const char *)res.kvs[i].key);
            snprintf(k->value, sizeof k->value, "%.*s",
                     (int)res.kvs[i].value_len, (const char *)res.kvs[i].value);
            k->cr = res.kvs[i].create_revision;
            k->mod = res.kvs[i].mod_revision;
            k->ver = res.kvs[i].version;
            if (k->mod == rev) {
                o += (size_t)(nev++ ? snprintf(body + o, sizeof body - o, ",")
                                    : 0);
                o += kv_json(body + o, sizeof body - o, "PUT", k);
            }
        }
        for (int i = 0; i < nstate; i++) {
            int found = 0;
            for (int j = 0; j < nn && !found; j++)
                found = !strcmp(state[i].key, next[j].key);
            if (!found) {
                /* etcd's tombstone: no value, create_revision and
                 * version 0. */
                skv d = {0};
                snprintf(d.key, sizeof d.key, "%s", state[i].key);
                d.mod = rev;
                o += (size_t)(nev++ ? snprintf(body + o, sizeof body - o, ",")
                                    : 0);
                o += kv_json(body + o, sizeof body - o, "DELETE", &d);
            }
        }
        snprintf(body + o, sizeof body - o, "]");
        if (nev)
            jr_hist_event(r, -2, "ok", "replay", body);
        memcpy(state, next, sizeof(skv) * (size_t)nn);
        nstate = nn;
        r->replayed_rev = rev;
        skiff_result_free(&res);
    }
    skiff_client_destroy(c);
    return rc;
}

static int before_compact(jr_run *r, int64_t rev)
{
    pthread_mutex_lock(&r->replay_lock);
    int rc = replay_to(r, rev);
    pthread_mutex_unlock(&r->replay_lock);
    return rc;
}

static int setup(jr_run *r)
{
    jr_before_compact = before_compact;
    return 0;
}

/* ---- writers ------------------------------------------------------------- */
static void op(jr_worker *w)
{
    jr_run *r = w->run;
    int k = jr_randn(&w->rng, NKEYS), dice = jr_randn(&w->rng, 20);
    char key[16], val[32], body[256];
    snprintf(key, sizeof key, "w/%d", k);
    snprintf(val, sizeof val, "v%lld", atomic_fetch_add(&next_val, 1));
    skiff_result res = {0};
    if (dice == 0) {
        /* Compaction keeps a recent window so watchers mostly resume. */
        skiff_result st = {0};
        if (!skiff_status(w->c, &st) && st.header.revision > 40)
            jr_compact(r, w->c, st.header.revision - 30);
        skiff_result_free(&st);
        return;
    }
    if (dice < 4) {
        snprintf(body, sizeof body, "\"key\":\"%s\"", key);
        uint64_t t = jr_hist_invoke(r, w->process, "delete", body);
        int rc = skiff_delete(w->c, key, strlen(key), NULL, 0, &res);
        const char *o = jr_write_outcome(rc);
        if (!rc)
            snprintf(body, sizeof body,
                     "\"key\":\"%s\",\"revision\":%lld,\"deleted\":%lld", key,
                     (long long)res.header.revision, (long long)res.count);
        jr_hist_complete(r, w->process, o, "delete", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
    } else if (dice < 6) {
        /* Two keys in one txn: one revision, two events, never split. */
        char key2[16], v2[32];
        snprintf(key2, sizeof key2, "w/%d", (k + 1) % NKEYS);
        snprintf(v2, sizeof v2, "v%lld", atomic_fetch_add(&next_val, 1));
        snprintf(body, sizeof body,
                 "\"value\":[[\"%s\",\"%s\"],[\"%s\",\"%s\"]]", key, val, key2,
                 v2);
        uint64_t t = jr_hist_invoke(r, w->process, "put-txn", body);
        skiff_op puts[2] = {{.type = SKIFF_OP_PUT,
                             .key = key,
                             .key_len = strlen(key),
                             .value = val,
                             .value_len = strlen(val)},
                            {.type = SKIFF_OP_PUT,
                             .key = key2,
                             .key_len = strlen(key2),
                             .value = v2,
                             .value_len = strlen(v2)}};
        skiff_op txn = {.type = SKIFF_OP_TXN, .success = puts, .n_success = 2};
        int rc = skiff_do_sync(w->c, &txn, &res);
        const char *o = jr_write_outcome(rc);
        jr_hist_complete(r, w->process, o, "put-txn", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
    } else {
        int64_t lease = 0;
        /* A 2 s lease: the key vanishes by expiry, a delete event. */
        if (dice == 6 && skiff_lease_grant(w->c, 2, 0, &lease, NULL))
            lease = 0;
        snprintf(body, sizeof body, "\"key\":\"%s\",\"value\":\"%s\"", key,
                 val);
        uint64_t t = jr_hist_invoke(r, w->process, "put", body);
        int rc =
            skiff_put(w->c, key, strlen(key), val, strlen(val), lease, &res);
        const char *o = jr_write_outcome(rc);
        if (!rc)
            snprintf(body, sizeof body,
                     "\"key\":\"%s\",\"value\":\"%s\",\"revision\":%lld", key,
                     val, (long long)res.header.revision);
        jr_hist_complete(r, w->process, o, "put", body, t);
        if (!strcmp(o, "info"))
            jr_worker_retire(w);
    }
    skiff_result_free(&res);
}

/* ---- watchers -------------------------------------------------------------
 */
typedef struct wstate {
    jr_run *run;
    int no;
    jr_rng rng;
} wstate;

static void events_json(char *b, size_t cap, const skiff_watch_resp *resp)
{
    size_t o = (size_t)snprintf(b, cap, "[");
    for (size_t i = 0; i < resp->n_events && o + 512 < cap; i++) {
        const skiff_event *e = &resp->events[i];
        skv k = {0};
        snprintf(k.key, sizeof k.key, "%.*s", (int)e->kv.key_len,
                 (const char *)e->kv.key);
        snprintf(k.value, sizeof k.value, "%.*s", (int)e->kv.value_len,
                 (const char *)e->kv.value);
        k.cr = e->kv.create_revision;
        k.mod = e->kv.mod_revision;
        k.ver = e->kv.version;
        if (i)
            o += (size_t)snprintf(b + o, cap - o, ",");
        o += kv_json(b + o, cap - o,
                     e->type == SKIFF_EVENT_DELETE ? "DELETE" : "PUT", &k);
        if (e->has_prev_kv) {
            skv p = {0};
            snprintf(p.key, sizeof p.key, "%.*s", (int)e->prev_kv.key_len,
                     (const char *)e->prev_kv.key);
            snprintf(p.value, sizeof p.value, "%.*s", (int)e->prev_kv.value_len,
                     (const char *)e->prev_kv.value);
            p.cr = e->prev_kv.create_revision;
            p.mod = e->prev_kv.mod_revision;
            p.ver = e->prev_kv.version;
            o--; /* reopen the object for prev_kv */
            o += (size_t)snprintf(b + o, cap - o, ",\"prev_kv\":");
            o += kv_json(b + o, cap - o, "PUT", &p);
            o += (size_t)snprintf(b + o, cap - o, "}");
        }
    }
    snprintf(b + o, cap - o, "]");
}

static void *watcher_thread(void *arg)
{
    wstate *ws = arg;
    jr_run *r = ws->run;
    int64_t resume = -1; /* next start revision, -1: choose afresh */
    int session = 0;
    static _Thread_local char body[1 << 17];
    static _Thread_local char evs[1 << 17];
    while (!atomic_load(&r->stop)) {
        int member = jr_randn(&ws->rng, r->n);
        skiff_client *c = jr_client(r, 0, member, 3000);
        if (!c)
            break;
        int kind = jr_randn(&ws->rng, 3), k = jr_randn(&ws->rng, NKEYS);
        int prev = jr_randn(&ws->rng, 2);
        char key[16], endk[16] = "";
        uint8_t pend[8];
        skiff_watch_opts o = {.flags = prev ? SKIFF_WATCH_PREV_KV : 0};
        const char *kname = kind == 0 ? "key" : kind == 1 ? "range" : "prefix";
        if (kind == 0) {
            snprintf(key, sizeof key, "w/%d", k);
        } else if (kind == 1) {
            snprintf(key, sizeof key, "w/%d", k / 2);
            snprintf(endk, sizeof endk, "w/%d", k / 2 + 4);
            o.range_end = endk;
            o.range_end_len = strlen(endk);
        } else {
            snprintf(key, sizeof key, "w/");
            skiff_op tmp = {.key = key, .key_len = 2};
            skiff_op_prefix(&tmp, pend, sizeof pend);
            o.range_end = tmp.range_end;
            o.range_end_len = tmp.range_end_len;
        }
        o.key = key;
        o.key_len = strlen(key);
        if (resume > 0) {
            o.start_revision = resume;
        } else {
            skiff_result st = {0};
            int64_t cur = 0;
            if (!skiff_status(c, &st))
                cur = st.header.revision;
            skiff_result_free(&st);
            int when = jr_randn(&ws->rng, 3);
            o.start_revision = when == 0   ? (cur > 20 ? cur - 20 : 1)
                               : when == 1 ? 0
                                           : cur + 5;
        }
        char wid[32];
        snprintf(wid, sizeof wid, "w%d.%d", ws->no, session++);
        skiff_watcher *wr = NULL;
        int rc = skiff_watcher_open(c, &wr, &o);
        snprintf(body, sizeof body,
                 "\"watcher\":\"%s\",\"member\":\"%s\",\"filter\":\"%s\","
                 "\"key\":\"%s\"%s%s%s,\"prev_kv\":%s,\"start_revision\":%lld",
                 wid, r->nodes[member].name, kname, key,
                 kind == 1 ? ",\"range_end\":\"" : "", kind == 1 ? endk : "",
                 kind == 1 ? "\"" : "", prev ? "true" : "false",
                 (long long)o.start_revision);
        if (rc) {
            skiff_client_destroy(c);
            resume = rc == SKIFF_ECOMPACTED ? -1 : resume;
            jr_sleep_ms(200); /* the member may be down: try another */
            continue;
        }
        jr_hist_event(r, 2000 + ws->no, "ok", "watch-create", body);
        int64_t last = o.start_revision > 0 ? o.start_revision - 1 : -1;
        uint64_t until =
            jr_now_ns() +
            (uint64_t)(2000 + jr_randn(&ws->rng, 5000)) * 1000000ULL;
        while (!atomic_load(&r->stop) && jr_now_ns() < until) {
            if (!jr_randn(&ws->rng, 8))
                skiff_watcher_progress(wr);
            skiff_watch_resp resp = {0};
            rc = skiff_watcher_next(wr, 500, &resp);
            if (rc == -ETIMEDOUT)
                continue;
            if (rc) {
                snprintf(body, sizeof body,
                         "\"watcher\":\"%s\",\"error\":\"%s\","
                         "\"compact_revision\":%lld",
                         wid, skiff_err_name(rc),
                         (long long)resp.compact_revision);
                jr_hist_event(r, 2000 + ws->no, "info", "watch-end", body);
                skiff_watch_resp_free(&resp);
                last = -1;
                break;
            }
            if (resp.n_events) {
                events_json(evs, sizeof evs, &resp);
                jr_fmt(body, sizeof body,
                       "\"watcher\":\"%s\",\"revision\":%lld,\"events\":%s",
                       wid, (long long)resp.revision, evs);
                jr_hist_event(r, 2000 + ws->no, "ok", "watch-events", body);
                last = resp.revision;
            } else if (!resp.created) {
                snprintf(body, sizeof body,
                         "\"watcher\":\"%s\",\"revision\":%lld", wid,
                         (long long)resp.revision);
                jr_hist_event(r, 2000 + ws->no, "ok", "watch-progress", body);
                if (resp.revision > last)
                    last = resp.revision;
            }
            skiff_watch_resp_free(&resp);
        }
        skiff_watcher_close(wr);
        skiff_client_destroy(c);
        /* Resume where this one stopped, unless it ended (compacted). */
        resume = last >= 0 && jr_randn(&ws->rng, 4) ? last + 1 : -1;
    }
    return NULL;
}

static void *extra(void *arg)
{
    jr_run *r = arg;
    int nw = r->n + 1;
    pthread_t th[JR_MAX_NODES + 1];
    wstate ws[JR_MAX_NODES + 1];
    for (int i = 0; i < nw; i++) {
        ws[i] = (wstate){r, i, {r->seed * 31 + (uint64_t)i + 7}};
        pthread_create(&th[i], NULL, watcher_thread, &ws[i]);
    }
    for (int i = 0; i < nw; i++)
        pthread_join(th[i], NULL);
    return NULL;
}

static int final(jr_run *r, char *json, size_t cap)
{
    skiff_client *c = jr_client(r, 0, -1, 5000);
    skiff_result st = {0};
    int rc = c ? skiff_status(c, &st) : -1;
    int64_t cur = rc ? 0 : st.header.revision;
    skiff_result_free(&st);
    skiff_client_destroy(c);
    if (!rc)
        rc = before_compact(r, cur);
    snprintf(json, cap, "\"replayed_to\":%lld,\"replay_ok\":%s",
             (long long)r->replayed_rev, rc ? "false" : "true");
    return rc ? 1 : 0;
}

const jr_workload jr_wl_watch = {"watch", setup, op, extra, final};
