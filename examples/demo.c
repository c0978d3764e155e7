/*
 * skiff-demo: the storage layer and the watch hub at work in one process,
 * as `make demo` shows them until the server exists.
 *
 * It opens a store in a fresh data directory, starts a watcher on a
 * prefix, applies commands the way a server applies committed entries
 * (serialized Command + log index), feeds each applied revision to the
 * watch hub, and prints what the watcher receives.  Then it starts a
 * watcher in the past (caught up from history) and one below the compact
 * revision (cancelled with the compact revision).
 *
 *   skiff-demo [data-dir]     (default .skiff-demo; emptied first)
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "watch.h"

typedef struct demo {
    kv_store *s;
    watch_hub *hub;
    uint64_t index;
    cm_arena arena;
    kv_result res;
} demo;

static ProtobufCBinaryData b(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

static void print_kv(const char *what, const Skiffpb__KeyValue *kv)
{
    printf("    %s %.*s = \"%.*s\" (create %lld, mod %lld, version %lld%s)\n",
           what, (int)kv->key.len, kv->key.data, (int)kv->value.len,
           kv->value.data, (long long)kv->create_revision,
           (long long)kv->mod_revision, (long long)kv->version,
           kv->lease ? ", leased" : "");
}

static int on_events(watch_sink *sink, watch_watcher *w, const kv_events *e)
{
    printf("  watch %lld [%s] revision %lld:\n", (long long)watch_id(w),
           (const char *)sink->data, (long long)e->revision);
    for (size_t i = 0; i < e->n; i++) {
        const Skiffpb__Event *ev = e->ev[i];
        if (ev->type == SKIFFPB__EVENT__EVENT_TYPE__PUT)
            print_kv("PUT   ", ev->kv);
        else
            printf("    DELETE %.*s%s\n", (int)ev->kv->key.len,
                   ev->kv->key.data,
                   ev->prev_kv ? " (had a previous value)" : "");
    }
    return 0;
}

static int on_progress(watch_sink *sink, watch_watcher *w, int64_t rev)
{
    printf("  watch %lld [%s] progress: up to date at revision %lld\n",
           (long long)watch_id(w), (const char *)sink->data, (long long)rev);
    return 0;
}

static void on_cancel(watch_sink *sink, watch_watcher *w, int reason,
                      int64_t compact)
{
    printf("  watch %lld [%s] cancelled: %s (compact revision %lld)\n",
           (long long)watch_id(w), (const char *)sink->data,
           watch_strerror(reason), (long long)compact);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "skiff-demo: %s: %s\n", what, kv_strerror(rc));
    exit(1);
}

/* Applies one command as the server will: next log index, then the
 * revision's events go to the hub. */
static void apply(demo *d, Skiffpb__Command *c, const char *say)
{
    cm_buf buf = {0};
    c->time_ms = cm_now_ms();
    if (kv_command_pack(c, &buf))
        die("pack", -ENOMEM);
    kv_entry e = {++d->index, buf.base, buf.len, 0};
    int rc = kv_apply(d->s, &e, &d->arena, &d->res);
    cm_buf_free(&buf);
    if (rc)
        die("apply", rc);
    printf("\n> %s\n", say);
    if (d->res.code)
        printf("  refused: %s\n", kv_strerror(d->res.code));
    else
        printf("  ok, revision %lld\n", (long long)d->res.revision);
    if (d->res.events.n && (rc = watch_hub_notify(d->hub, &d->res.events)))
        die("notify", rc);
}

static void put(demo *d, const char *k, const char *v, int64_t lease)
{
    char say[256];
    snprintf(say, sizeof say, "put %s \"%s\"%s", k, v,
             lease ? " with the lease" : "");
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = b(k);
    p.value = b(v);
    p.lease = lease;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_PUT;
    c.put = &p;
    apply(d, &c, say);
}

static void get_prefix(demo *d, const char *prefix, const char *end)
{
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = b(prefix);
    q.range_end = b(end);
    Skiffpb__RangeResponse *r;
    int rc = kv_range(d->s, &q, &d->arena, &r, NULL);
    if (rc)
        die("range", rc);
    printf("\n> get --prefix %s\n  %lld keys at revision %lld\n", prefix,
           (long long)r->count, (long long)r->header->revision);
    for (size_t i = 0; i < r->n_kvs; i++)
        print_kv("", r->kvs[i]);
}

static void drain(demo *d)
{
    int rc;
    while ((rc = watch_hub_step(d->hub, 0)) == 1)
        ;
    if (rc < 0)
        die("watch step", rc);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".skiff-demo";
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    if (mkdir(dir, 0700) && errno != EEXIST)
        die(dir, -errno);
    demo d = {0};
    int rc = kv_open(&d.s, dir, NULL);
    if (rc)
        die("open", rc);
    if ((rc = watch_hub_create(&d.hub, d.s, NULL)))
        die("watch hub", rc);
    printf("skiff-demo: store opened in %s/ (LMDB, every apply "
           "fdatasync'ed)\n", dir);

    watch_sink live = {"live", on_events, on_progress, on_cancel};
    watch_sink past = {"from revision 1", on_events, on_progress, on_cancel};
    watch_options wo = {0};
    wo.key = (const uint8_t *)"/demo/";
    wo.key_len = 6;
    wo.range_end = (const uint8_t *)"/demo0";
    wo.end_len = 6;
    wo.flags = WATCH_PREV_KV | WATCH_PROGRESS_NOTIFY;
    wo.sink = &live;
    watch_watcher *w1, *w2, *w3;
    if ((rc = watch_start(d.hub, &wo, &w1)))
        die("watch", rc);
    printf("watching prefix /demo/ from the next revision\n");

    put(&d, "/demo/greeting", "hello", 0);
    put(&d, "/demo/target", "world", 0);
    get_prefix(&d, "/demo/", "/demo0");

    /* Compare-and-swap: succeeds only while greeting is at version 1. */
    Skiffpb__Compare cmp = SKIFFPB__COMPARE__INIT, *cmps[1] = {&cmp};
    cmp.key = b("/demo/greeting");
    cmp.target = SKIFFPB__COMPARE__COMPARE_TARGET__VERSION;
    cmp.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VERSION;
    cmp.version = 1;
    Skiffpb__PutRequest p1 = SKIFFPB__PUT_REQUEST__INIT,
                        p2 = SKIFFPB__PUT_REQUEST__INIT;
    p1.key = b("/demo/greeting");
    p1.value = b("hello again");
    p2.key = b("/demo/audit");
    p2.value = b("greeting changed by txn");
    Skiffpb__RequestOp o1 = SKIFFPB__REQUEST_OP__INIT,
                       o2 = SKIFFPB__REQUEST_OP__INIT, *ops[2] = {&o1, &o2};
    o1.request_case = o2.request_case =
        SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    o1.request_put = &p1;
    o2.request_put = &p2;
    Skiffpb__TxnRequest txn = SKIFFPB__TXN_REQUEST__INIT;
    txn.n_compare = 1;
    txn.compare = cmps;
    txn.n_success = 2;
    txn.success = ops;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_TXN;
    c.txn = &txn;
    apply(&d, &c, "txn: if version(/demo/greeting) = 1 then put greeting, "
                  "put audit (one revision)");
    apply(&d, &c, "the same txn again (version is now 2: compare fails, "
                  "nothing written)");
    printf("  txn succeeded: %s\n",
           d.res.reply.txn->succeeded ? "yes" : "no");

    Skiffpb__LeaseGrantRequest g = SKIFFPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = 30;
    c = (Skiffpb__Command)SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    apply(&d, &c, "lease grant 30");
    int64_t lease = d.res.reply.lease_grant->id;
    printf("  lease %lld granted with TTL %llds\n", (long long)lease,
           (long long)d.res.reply.lease_grant->ttl);
    put(&d, "/demo/session", "alive", lease);

    Skiffpb__DeleteRangeRequest del = SKIFFPB__DELETE_RANGE_REQUEST__INIT;
    del.key = b("/demo/target");
    c = (Skiffpb__Command)SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_DELETE_RANGE;
    c.delete_range = &del;
    apply(&d, &c, "del /demo/target");

    Skiffpb__LeaseRevokeRequest rv = SKIFFPB__LEASE_REVOKE_REQUEST__INIT;
    rv.id = lease;
    c = (Skiffpb__Command)SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_LEASE_REVOKE;
    c.lease_revoke = &rv;
    apply(&d, &c, "lease revoke (deletes the keys attached to it)");

    printf("\n> progress notification\n");
    if ((rc = watch_hub_progress(d.hub)))
        die("progress", rc);

    printf("\n> a new watcher on /demo/ starting at revision 1: "
           "caught up from history\n");
    wo.sink = &past;
    wo.start_revision = 1;
    wo.flags = 0;
    if ((rc = watch_start(d.hub, &wo, &w2)))
        die("watch", rc);
    drain(&d);

    c = (Skiffpb__Command)SKIFFPB__COMMAND__INIT;
    Skiffpb__CompactionRequest cr = SKIFFPB__COMPACTION_REQUEST__INIT;
    cr.revision = watch_hub_revision(d.hub) - 1;
    c.op_case = SKIFFPB__COMMAND__OP_COMPACTION;
    c.compaction = &cr;
    char say[64];
    snprintf(say, sizeof say, "compact %lld", (long long)cr.revision);
    apply(&d, &c, say);
    printf("\n> a watcher starting at revision 1 after the compaction\n");
    if ((rc = watch_start(d.hub, &wo, &w3)))
        die("watch", rc);
    drain(&d);

    get_prefix(&d, "/demo/", "/demo0");
    kv_status st;
    kv_status_get(d.s, &st);
    kv_hash h;
    kv_hash_get(d.s, 0, &h);
    printf("\nstatus: applied index %llu, revision %lld, compact revision "
           "%lld, %lld keys, db %.1f KiB in use, hash %08x\n",
           (unsigned long long)st.applied_index, (long long)st.revision,
           (long long)st.compact_revision, (long long)st.keys,
           st.db_size_in_use / 1024.0, h.hash);
    watch_stop(w1);
    watch_stop(w2);
    watch_stop(w3);
    watch_hub_destroy(d.hub);
    kv_close(d.s);
    cm_arena_free(&d.arena);
    return 0;
}
