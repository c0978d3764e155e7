/*
 * client_example.c -- a tour of libskiff's blocking API (docs/client.md).
 *
 * Usage: client_example [endpoint ...]     (default 127.0.0.1:2379)
 *
 * Connects to a skiff store, writes and reads keys, runs a compare-and-swap
 * transaction, attaches a key to a lease kept alive in the background,
 * watches a prefix, and prints what happens.  Exits 0 when every step
 * behaved as documented, 1 otherwise.
 *
 * Build against an installed libskiff:
 *   cc client_example.c $(pkg-config --cflags --libs skiff) -o client_example
 */
#include <skiff.h>

#include <stdio.h>
#include <string.h>

static int fail(skiff_client *c, const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s): %s\n", what, skiff_strerror(rc),
            skiff_err_name(rc), c ? skiff_client_errmsg(c) : "");
    return 1;
}

static void print_kv(const skiff_kv *kv)
{
    printf("  %.*s = %.*s (mod_revision %lld, version %lld)\n",
           (int)kv->key_len, (const char *)kv->key, (int)kv->value_len,
           (const char *)kv->value, (long long)kv->mod_revision,
           (long long)kv->version);
}

int main(int argc, char **argv)
{
    const char *dflt[] = {"127.0.0.1:2379"};
    skiff_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.endpoints = argc > 1 ? (const char *const *)argv + 1 : dflt;
    cfg.n_endpoints = argc > 1 ? (size_t)(argc - 1) : 1;
    cfg.dial_timeout_ms = 3000;
    cfg.request_timeout_ms = 5000;

    skiff_client *c;
    int rc = skiff_client_create(&c, &cfg);
    if (rc)
        return fail(NULL, "create", rc);

    /* 1. Put two keys, read them back by prefix. */
    skiff_result res;
    if ((rc = skiff_put(c, "/example/a", 10, "1", 1, 0, &res)))
        return fail(c, "put", rc);
    printf("put /example/a at revision %lld\n", (long long)res.header.revision);
    skiff_result_free(&res);
    if ((rc = skiff_put(c, "/example/b", 10, "2", 1, 0, NULL)))
        return fail(c, "put", rc);
    if ((rc = skiff_get_prefix(c, "/example/", 9, &res)))
        return fail(c, "get", rc);
    printf("%zu keys under /example/:\n", res.n_kvs);
    for (size_t i = 0; i < res.n_kvs; i++)
        print_kv(&res.kvs[i]);
    int64_t a_mod = res.n_kvs ? res.kvs[0].mod_revision : 0;
    int ok = res.n_kvs == 2;
    skiff_result_free(&res);

    /* 2. Start watching the prefix from the next revision. */
    uint8_t end[16];
    skiff_op range = {.type = SKIFF_OP_RANGE, .key = "/example/", .key_len = 9};
    skiff_op_prefix(&range, end, sizeof end);
    skiff_watch_opts wo = {.key = "/example/",
                           .key_len = 9,
                           .range_end = range.range_end,
                           .range_end_len = range.range_end_len,
                           .flags = SKIFF_WATCH_PREV_KV};
    skiff_watcher *w;
    if ((rc = skiff_watcher_open(c, &w, &wo)))
        return fail(c, "watch", rc);

    /* 3. Compare-and-swap: set a to 10 only if nobody changed it since. */
    skiff_cmp cmp = {.result = SKIFF_CMP_EQUAL,
                     .target = SKIFF_CMP_MOD,
                     .key = "/example/a",
                     .key_len = 10,
                     .number = a_mod};
    skiff_op then = {.type = SKIFF_OP_PUT,
                     .key = "/example/a",
                     .key_len = 10,
                     .value = "10",
                     .value_len = 2};
    skiff_op otherwise = {
        .type = SKIFF_OP_RANGE, .key = "/example/a", .key_len = 10};
    skiff_op txn = {.type = SKIFF_OP_TXN,
                    .cmps = &cmp,
                    .n_cmps = 1,
                    .success = &then,
                    .n_success = 1,
                    .failure = &otherwise,
                    .n_failure = 1};
    if ((rc = skiff_do_sync(c, &txn, &res)))
        return fail(c, "txn", rc);
    printf("txn succeeded: %s\n", res.succeeded ? "yes" : "no");
    ok = ok && res.succeeded;
    skiff_result_free(&res);

    /* 4. A lease kept alive in the background, with a key attached. */
    int64_t lease, ttl;
    if ((rc = skiff_lease_grant(c, 5, 0, &lease, &ttl)))
        return fail(c, "lease grant", rc);
    printf("lease %lld granted, TTL %lld s\n", (long long)lease,
           (long long)ttl);
    skiff_keepalive ka;
    ka.data = NULL;
    if ((rc = skiff_keepalive_start(c, &ka, lease, ttl, NULL)))
        return fail(c, "keepalive", rc);
    if ((rc = skiff_put(c, "/example/session", 16, "me", 2, lease, NULL)))
        return fail(c, "put with lease", rc);

    /* 5. The watch saw the txn's put and the leased put, in order. */
    for (int i = 0; i < 2; i++) {
        skiff_watch_resp ev;
        if ((rc = skiff_watcher_next(w, 5000, &ev)))
            return fail(c, "watch next", rc);
        for (size_t j = 0; j < ev.n_events; j++) {
            const skiff_event *e = &ev.events[j];
            printf("event at revision %lld: %s %.*s\n", (long long)ev.revision,
                   e->type == SKIFF_EVENT_PUT ? "PUT" : "DELETE",
                   (int)e->kv.key_len, (const char *)e->kv.key);
        }
        ok = ok && ev.n_events == 1;
        skiff_watch_resp_free(&ev);
    }

    /* 6. Keep the lease alive across a few of its TTLs' worth of polling
     * would go here; revoke it now, which deletes the attached key. */
    skiff_client_poll(c, 100);
    skiff_keepalive_stop(&ka);
    if ((rc = skiff_lease_revoke(c, lease)))
        return fail(c, "lease revoke", rc);
    if ((rc = skiff_get(c, "/example/session", 16, &res)))
        return fail(c, "get", rc);
    printf("after revoke, /example/session %s\n",
           res.n_kvs ? "still exists" : "is gone");
    ok = ok && res.n_kvs == 0;
    skiff_result_free(&res);

    /* 7. Clean up. */
    if ((rc = skiff_delete(c, "/example/", 9, range.range_end,
                           range.range_end_len, &res)))
        return fail(c, "delete", rc);
    printf("deleted %lld keys\n", (long long)res.count);
    skiff_result_free(&res);
    skiff_watcher_close(w);
    skiff_client_destroy(c);
    printf(ok ? "example: ok\n" : "example: unexpected results\n");
    return ok ? 0 : 1;
}
