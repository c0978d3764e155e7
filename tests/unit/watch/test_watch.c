/*
 * Unit tests for the watch hub: matching (key, range, prefix, from-key),
 * per-revision atomicity, filters, prev_kv, catch-up from storage in
 * bounded steps, future starts, compaction cancels, parking and resuming
 * slow sinks, progress notifications, ids, re-entrant sinks, every error
 * code, and allocation failures.  Each test runs on a fresh store in a
 * temporary directory; teardown fails on leaked cm_* blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tu.h"
#include "wt.h"

typedef struct fix {
    wt_store t;
    wt_sink a, b, c;
} fix;

static int setup_opts(void **state, const watch_hub_options *o)
{
    tu_alloc_install();
    fix *f = test_calloc(1, sizeof *f);
    wt_open(&f->t, o);
    wt_sink_init(&f->a);
    wt_sink_init(&f->b);
    wt_sink_init(&f->c);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_opts(state, NULL);
}

static int setup_small_steps(void **state)
{
    watch_hub_options o = {.step_events = 2};
    return setup_opts(state, &o);
}

static int teardown(void **state)
{
    fix *f = *state;
    wt_close(&f->t);
    test_free(f);
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

#define HUB (f->t.hub)

static void test_errors_named(void **state)
{
    (void)state;
    assert_string_equal(watch_err_name(WATCH_EFULL), "WATCH_EFULL");
    assert_string_equal(watch_strerror(WATCH_ECOMPACTED),
                        "required revision has been compacted");
    /* Registered with common/ by watch_hub_create (the fixture). */
    assert_string_equal(cm_err_name(WATCH_EORDER), "WATCH_EORDER");
    assert_string_equal(cm_strerror(WATCH_EBADRANGE),
                        "invalid watch key range");
    /* Foreign codes fall through to common/. */
    assert_string_equal(watch_err_name(CM_EINVAL), "CM_EINVAL");
    assert_string_equal(watch_err_name(-ENOMEM), "ENOMEM");
}

static void test_start_errors(void **state)
{
    fix *f = *state;
    watch_options o = {0};
    watch_watcher *w = NULL;
    uint8_t big[KV_MAX_KEY + 1];
    memset(big, 'k', sizeof big);

    assert_int_equal(watch_start(HUB, NULL, &w), CM_EINVAL);
    o.sink = &f->a.sink;
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADRANGE); /* no key */
    o.key = big;
    o.key_len = sizeof big;
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADRANGE); /* long */
    o.key = (const uint8_t *)"m";
    o.key_len = 1;
    o.range_end = (const uint8_t *)"a";
    o.end_len = 1;
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADRANGE); /* end<k */
    o.range_end = (const uint8_t *)"m";
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADRANGE); /* end=k */
    o.end_len = 0;
    o.start_revision = -1;
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADREV);
    o.start_revision = 0;
    o.id = -5;
    assert_int_equal(watch_start(HUB, &o, &w), CM_EINVAL);
    o.id = 0;
    watch_sink bad = f->a.sink;
    bad.cancel = NULL;
    o.sink = &bad;
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADSINK);
    o.sink = NULL;
    assert_int_equal(watch_start(HUB, &o, &w), WATCH_EBADSINK);
    o.sink = &f->a.sink;
    o.id = 7;
    assert_int_equal(watch_start(HUB, &o, &w), 0);
    watch_watcher *w2 = NULL;
    assert_int_equal(watch_start(HUB, &o, &w2), WATCH_EEXIST);
    assert_null(w2);
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.watchers, 1);
    assert_int_equal(st.groups, 1);
    watch_stop(w);
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.watchers, 0);
    assert_int_equal(st.groups, 0);
}

static void test_limit(void **state)
{
    (void)state;
    tu_alloc_install();
    wt_store t;
    watch_hub_options o = {.max_watchers = 2};
    wt_open(&t, &o);
    wt_sink s;
    wt_sink_init(&s);
    watch_watcher *a = wt_watch(t.hub, &s, "a", NULL, 0, 0);
    watch_watcher *b = wt_watch(t.hub, &s, "b", NULL, 0, 0);
    watch_options wo = {
        .key = (const uint8_t *)"c", .key_len = 1, .sink = &s.sink};
    watch_watcher *c = NULL;
    assert_int_equal(watch_start(t.hub, &wo, &c), WATCH_ELIMIT);
    watch_stop(a);
    assert_int_equal(watch_start(t.hub, &wo, &c), 0);
    watch_stop(b);
    watch_stop(c);
    wt_close(&t);
    assert_int_equal(tu_alloc_uninstall(), 0);
}

static void test_ids(void **state)
{
    fix *f = *state;
    watch_watcher *w[5];
    for (int i = 0; i < 5; i++)
        w[i] = wt_watch(HUB, &f->a, "k", NULL, 0, 0);
    for (int i = 0; i < 5; i++) {
        assert_true(watch_id(w[i]) > 0);
        assert_ptr_equal(watch_find(HUB, watch_id(w[i])), w[i]);
        assert_ptr_equal(watch_data(w[i]), &f->a);
        for (int j = 0; j < i; j++)
            assert_true(watch_id(w[i]) != watch_id(w[j]));
    }
    int64_t id2 = watch_id(w[2]);
    watch_stop(w[2]);
    assert_null(watch_find(HUB, id2));
    assert_null(watch_find(HUB, 12345));
    /* A freed id may be asked for again. */
    watch_options o = {.key = (const uint8_t *)"k",
                       .key_len = 1,
                       .id = id2,
                       .sink = &f->a.sink};
    assert_int_equal(watch_start(HUB, &o, &w[2]), 0);
    assert_int_equal(watch_id(w[2]), id2);
    /* Auto ids skip an id taken explicitly. */
    o.id = 1000;
    watch_watcher *x;
    assert_int_equal(watch_start(HUB, &o, &x), 0);
    for (int i = 0; i < 5; i++)
        watch_stop(w[i]);
    watch_stop(x);
}

static void test_key_watch(void **state)
{
    fix *f = *state;
    watch_watcher *w = wt_watch(HUB, &f->a, "foo", NULL, 0, 0);
    assert_int_equal(watch_state_get(w), WATCH_SYNCED);
    assert_int_equal(watch_next_revision(w), 1);
    wt_put(&f->t, "foo", "1");
    wt_put(&f->t, "fo", "x");
    wt_put(&f->t, "foo1", "x");
    wt_put(&f->t, "foo", "2");
    wt_del(&f->t, "foo", NULL);
    wt_del(&f->t, "nothing", NULL); /* no revision */
    assert_string_equal(f->a.log, "1:P foo=1;4:P foo=2;5:D foo;");
    assert_int_equal(f->a.sends, 3);
    assert_int_equal(watch_next_revision(w), 6);
    assert_int_equal(watch_hub_revision(HUB), 5);
    /* No deferred work for a synced watcher. */
    assert_int_equal(watch_hub_pending(HUB), 0);
    assert_int_equal(watch_hub_step(HUB, 0), 0);
    watch_stop(w);
}

static void test_range_prefix_fromkey(void **state)
{
    fix *f = *state;
    /* [b, d), prefix "c/" = ["c/", "c0"), from "x". */
    watch_watcher *r = wt_watch(HUB, &f->a, "b", "d", 0, 0);
    watch_watcher *p = wt_watch(HUB, &f->b, "c/", "c0", 0, 0);
    watch_watcher *x = wt_watch_from(HUB, &f->c, "x", 0, 0);
    wt_put(&f->t, "a", "1");
    wt_put(&f->t, "b", "2");
    wt_put(&f->t, "c/1", "3");
    wt_put(&f->t, "c0", "4");
    wt_put(&f->t, "d", "5");
    wt_put(&f->t, "x", "6");
    wt_put(&f->t, "zzz", "7");
    wt_put(&f->t, "w", "8");
    assert_string_equal(f->a.log, "2:P b=2;3:P c/1=3;4:P c0=4;");
    assert_string_equal(f->b.log, "3:P c/1=3;");
    assert_string_equal(f->c.log, "6:P x=6;7:P zzz=7;");
    watch_stop(r);
    watch_stop(p);
    watch_stop(x);
}

static void test_txn_atomic(void **state)
{
    fix *f = *state;
    wt_put(&f->t, "p/0", "old");
    watch_watcher *p = wt_watch(HUB, &f->a, "p/", "p0", 0, WATCH_PREV_KV);
    watch_watcher *k = wt_watch(HUB, &f->b, "p/2", NULL, 0, 0);
    watch_watcher *o = wt_watch(HUB, &f->c, "q", NULL, 0, 0);
    const char *puts[] = {"p/1", "a", "q", "b", "p/2", "c", NULL};
    const char *dels[] = {"p/0", NULL};
    wt_txn(&f->t, puts, dels);
    /* One call, in sub-revision order, only what matches. */
    assert_int_equal(f->a.sends, 1);
    assert_string_equal(f->a.log, "2:P p/1=a,P p/2=c,D p/0^old;");
    assert_string_equal(f->b.log, "2:P p/2=c;");
    assert_string_equal(f->c.log, "2:P q=b;");
    /* A lease revoke deletes its keys in one revision too. */
    int64_t l = wt_lease_grant(&f->t, 0, 60);
    wt_put_lease(&f->t, "p/3", "l", l);
    wt_put_lease(&f->t, "p/4", "l", l);
    wt_sink_clear(&f->a);
    wt_lease_revoke(&f->t, l);
    assert_string_equal(f->a.log, "5:D p/3^l,D p/4^l;");
    watch_stop(p);
    watch_stop(k);
    watch_stop(o);
}

static void test_filters(void **state)
{
    fix *f = *state;
    watch_watcher *np = wt_watch(HUB, &f->a, "k", "l", 0, WATCH_NO_PUT);
    watch_watcher *nd = wt_watch(HUB, &f->b, "k", "l", 0, WATCH_NO_DELETE);
    watch_watcher *nn =
        wt_watch(HUB, &f->c, "k", "l", 0, WATCH_NO_PUT | WATCH_NO_DELETE);
    wt_put(&f->t, "k1", "a");
    wt_put(&f->t, "k2", "b");
    const char *puts[] = {"k3", "c", NULL};
    const char *dels[] = {"k1", NULL};
    wt_txn(&f->t, puts, dels);
    wt_del(&f->t, "k2", NULL);
    assert_string_equal(f->a.log, "3:D k1;4:D k2;");
    assert_string_equal(f->b.log, "1:P k1=a;2:P k2=b;3:P k3=c;");
    assert_string_equal(f->c.log, "");
    assert_int_equal(f->c.sends, 0);
    /* Catch-up applies the same filters. */
    wt_sink_clear(&f->a);
    watch_watcher *np2 = wt_watch(HUB, &f->a, "k", "l", 1, WATCH_NO_PUT);
    wt_drain(HUB, 0);
    assert_string_equal(f->a.log, "3:D k1;4:D k2;");
    watch_stop(np);
    watch_stop(nd);
    watch_stop(nn);
    watch_stop(np2);
}

static void test_prev_kv(void **state)
{
    fix *f = *state;
    watch_watcher *with = wt_watch(HUB, &f->a, "k", NULL, 0, WATCH_PREV_KV);
    watch_watcher *without = wt_watch(HUB, &f->b, "k", NULL, 0, 0);
    wt_put(&f->t, "k", "1");
    wt_put(&f->t, "k", "2");
    wt_del(&f->t, "k", NULL);
    /* Same group, same revision: stripping for one must not affect the
     * other, in either order of delivery. */
    assert_string_equal(f->a.log, "1:P k=1;2:P k=2^1;3:D k^2;");
    assert_string_equal(f->b.log, "1:P k=1;2:P k=2;3:D k;");
    /* From storage as well. */
    wt_sink_clear(&f->a);
    wt_sink_clear(&f->b);
    watch_watcher *h1 = wt_watch(HUB, &f->a, "k", NULL, 1, WATCH_PREV_KV);
    watch_watcher *h2 = wt_watch(HUB, &f->b, "k", NULL, 1, 0);
    wt_drain(HUB, 0);
    assert_string_equal(f->a.log, "1:P k=1;2:P k=2^1;3:D k^2;");
    assert_string_equal(f->b.log, "1:P k=1;2:P k=2;3:D k;");
    watch_stop(with);
    watch_stop(without);
    watch_stop(h1);
    watch_stop(h2);
}

static void test_catch_up_bounded(void **state)
{
    fix *f = *state; /* step_events = 2 */
    for (int i = 0; i < 10; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i + 1);
        wt_put(&f->t, i % 2 ? "a" : "b", v);
    }
    /* Revisions 1..10; "a" changed at even revisions. */
    watch_watcher *w = wt_watch(HUB, &f->a, "a", NULL, 3, 0);
    assert_int_equal(watch_state_get(w), WATCH_CATCHING);
    assert_string_equal(f->a.log, ""); /* nothing inside watch_start */
    assert_int_equal(watch_hub_pending(HUB), 1);
    /* A step covers two revisions (step_events): one event here. */
    assert_int_equal(watch_hub_step(HUB, 0), 1);
    assert_string_equal(f->a.log, "4:P a=4;");
    /* A write between steps comes through notify only once synced. */
    wt_put(&f->t, "a", "11");
    assert_string_equal(f->a.log, "4:P a=4;");
    assert_int_equal(watch_hub_step(HUB, 0), 1);
    assert_string_equal(f->a.log, "4:P a=4;6:P a=6;");
    assert_int_equal(watch_hub_step(HUB, 4), 1);
    assert_string_equal(f->a.log, "4:P a=4;6:P a=6;8:P a=8;10:P a=10;");
    assert_int_equal(watch_hub_step(HUB, 0), 0);
    assert_string_equal(f->a.log,
                        "4:P a=4;6:P a=6;8:P a=8;10:P a=10;11:P a=11;");
    assert_int_equal(watch_state_get(w), WATCH_SYNCED);
    wt_put(&f->t, "a", "12");
    assert_string_equal(f->a.log, "4:P a=4;6:P a=6;8:P a=8;10:P a=10;"
                                  "11:P a=11;12:P a=12;");
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.events_read, 5);
    watch_stop(w);
}

static void test_catch_up_window(void **state)
{
    fix *f = *state; /* step_events = 2 */
    wt_put(&f->t, "a", "1");
    for (int i = 0; i < 9; i++)
        wt_put(&f->t, "b", "x");
    wt_put(&f->t, "a", "2");
    /* A rare key in a long backlog: each step covers a bounded window of
     * revisions (two here), matching or not. */
    watch_watcher *w = wt_watch(HUB, &f->a, "a", NULL, 2, 0);
    int steps = 1;
    while (watch_hub_step(HUB, 0) == 1)
        steps++;
    assert_int_equal(steps, 5); /* revisions 2..11, two per step */
    assert_string_equal(f->a.log, "11:P a=2;");
    watch_stop(w);
}

static void test_catch_up_fair(void **state)
{
    fix *f = *state; /* step_events = 2 */
    for (int i = 0; i < 6; i++)
        wt_put(&f->t, "k", "v");
    watch_watcher *w1 = wt_watch(HUB, &f->a, "k", NULL, 1, 0);
    watch_watcher *w2 = wt_watch(HUB, &f->b, "k", NULL, 1, 0);
    /* Round robin: each gets a batch before either gets a second. */
    assert_int_equal(watch_hub_step(HUB, 4), 1);
    assert_int_equal(f->a.sends, 2);
    assert_int_equal(f->b.sends, 2);
    /* Budget 1 still makes progress (one revision, never split). */
    assert_int_equal(watch_hub_step(HUB, 1), 1);
    assert_int_equal(f->a.sends, 3);
    assert_int_equal(f->b.sends, 2);
    wt_drain(HUB, 1);
    assert_int_equal(f->a.sends, 6);
    assert_int_equal(f->b.sends, 6);
    watch_stop(w1);
    watch_stop(w2);
}

static void test_future_start(void **state)
{
    fix *f = *state;
    wt_put(&f->t, "k", "1");
    watch_watcher *w = wt_watch(HUB, &f->a, "k", NULL, 4, 0);
    assert_int_equal(watch_state_get(w), WATCH_SYNCED);
    assert_int_equal(watch_next_revision(w), 4);
    wt_put(&f->t, "k", "2");
    wt_put(&f->t, "k", "3");
    assert_string_equal(f->a.log, "");
    wt_put(&f->t, "k", "4");
    wt_put(&f->t, "k", "5");
    assert_string_equal(f->a.log, "4:P k=4;5:P k=5;");
    /* Start exactly at the next revision: synced, no catch-up needed. */
    watch_watcher *w2 = wt_watch(HUB, &f->b, "k", NULL, 6, 0);
    assert_int_equal(watch_state_get(w2), WATCH_SYNCED);
    wt_put(&f->t, "k", "6");
    assert_string_equal(f->b.log, "6:P k=6;");
    watch_stop(w);
    watch_stop(w2);
}

static void test_compacted_start(void **state)
{
    fix *f = *state;
    for (int i = 0; i < 5; i++)
        wt_put(&f->t, "k", "v");
    assert_int_equal(wt_compact(&f->t, 3), 0);
    f->a.stop_on_cancel = true;
    watch_watcher *w = wt_watch(HUB, &f->a, "k", NULL, 3, 0);
    watch_watcher *ok = wt_watch(HUB, &f->b, "k", NULL, 4, 0);
    watch_watcher *w1 = wt_watch(HUB, &f->c, "k", NULL, 1, 0);
    assert_int_equal(watch_state_get(w), WATCH_CATCHING);
    assert_string_equal(f->a.log, "");
    wt_drain(HUB, 0);
    assert_string_equal(f->a.log, "X3;"); /* and it stopped itself */
    assert_string_equal(f->b.log, "4:P k=v;5:P k=v;");
    assert_string_equal(f->c.log, "X3;");
    assert_int_equal(f->c.cancel_reason, WATCH_ECOMPACTED);
    assert_int_equal(watch_state_get(w1), WATCH_CANCELED);
    /* A cancelled watcher is inert until stopped. */
    assert_int_equal(watch_resume(w1), WATCH_ECANCELED);
    assert_int_equal(watch_progress_request(w1), WATCH_ECANCELED);
    wt_put(&f->t, "k", "w");
    assert_string_equal(f->c.log, "X3;");
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.canceled, 1);
    assert_int_equal(st.watchers, 2);
    watch_stop(ok);
    watch_stop(w1);
}

static void test_slow_sink_parks(void **state)
{
    fix *f = *state; /* step_events = 2 */
    watch_watcher *fast = wt_watch(HUB, &f->a, "k", "l", 0, WATCH_PREV_KV);
    watch_watcher *slow = wt_watch(HUB, &f->b, "k", "l", 0, WATCH_PREV_KV);
    f->b.accept = 2; /* then full */
    for (int i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i % 3);
        wt_put(&f->t, k, "v");
    }
    assert_int_equal(f->b.sends, 2);
    assert_int_equal(watch_state_get(slow), WATCH_PARKED);
    assert_int_equal(watch_next_revision(slow), 3);
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.parked, 1);
    assert_int_equal(st.parks, 1);
    /* Parked: nothing offered, nothing buffered, no deferred work. */
    assert_int_equal(watch_hub_pending(HUB), 0);
    /* Resume with room for three more revisions; it parks again. */
    f->b.full = 0;
    f->b.accept = 3;
    assert_int_equal(watch_resume(slow), 0);
    assert_int_equal(watch_resume(slow), 0); /* idempotent */
    assert_int_equal(watch_state_get(slow), WATCH_CATCHING);
    wt_drain(HUB, 0);
    assert_int_equal(watch_state_get(slow), WATCH_PARKED);
    assert_int_equal(watch_next_revision(slow), 6);
    f->b.full = 0;
    assert_int_equal(watch_resume(slow), 0);
    wt_drain(HUB, 0);
    assert_int_equal(watch_state_get(slow), WATCH_SYNCED);
    wt_put(&f->t, "k9", "z");
    /* Same stream as the fast watcher: no gap, no duplicate. */
    assert_string_equal(f->a.log, f->b.log);
    assert_int_equal(f->b.sends, 9);
    /* resume on a synced watcher is a no-op */
    assert_int_equal(watch_resume(fast), 0);
    watch_stop(fast);
    watch_stop(slow);
}

static void test_parked_then_compacted(void **state)
{
    fix *f = *state;
    watch_watcher *w = wt_watch(HUB, &f->a, "k", NULL, 0, 0);
    f->a.accept = 1;
    wt_put(&f->t, "k", "1");
    wt_put(&f->t, "k", "2");
    wt_put(&f->t, "k", "3");
    assert_int_equal(watch_state_get(w), WATCH_PARKED);
    assert_int_equal(wt_compact(&f->t, 2), 0);
    f->a.full = 0;
    assert_int_equal(watch_resume(w), 0);
    wt_drain(HUB, 0);
    assert_string_equal(f->a.log, "1:P k=1;X2;");
    assert_int_equal(f->a.cancel_rev, 2);
    watch_stop(w);
    /* Parked above the compaction: resumes fine. */
    watch_watcher *v = wt_watch(HUB, &f->b, "k", NULL, 0, 0);
    f->b.full = 1;
    wt_put(&f->t, "k", "4");
    wt_put(&f->t, "k", "5");
    assert_int_equal(wt_compact(&f->t, 3), 0);
    f->b.full = 0;
    assert_int_equal(watch_resume(v), 0);
    wt_drain(HUB, 0);
    assert_string_equal(f->b.log, "4:P k=4;5:P k=5;");
    watch_stop(v);
}

static void test_progress(void **state)
{
    fix *f = *state;
    wt_put(&f->t, "k", "1");
    wt_put(&f->t, "other", "1");
    watch_watcher *p =
        wt_watch(HUB, &f->a, "k", NULL, 0, WATCH_PROGRESS_NOTIFY);
    watch_watcher *q = wt_watch(HUB, &f->b, "k", NULL, 0, 0);
    watch_watcher *old =
        wt_watch(HUB, &f->c, "k", NULL, 1, WATCH_PROGRESS_NOTIFY);
    /* Periodic: synced watchers with the flag only (old is catching). */
    assert_int_equal(watch_hub_progress(HUB), 0);
    assert_string_equal(f->a.log, "@2;");
    assert_string_equal(f->b.log, "");
    assert_string_equal(f->c.log, "");
    /* Requested: never inside the request; sent by the next step. */
    assert_int_equal(watch_progress_request(q), 0);
    assert_int_equal(watch_progress_request(q), 0); /* one owed */
    assert_string_equal(f->b.log, "");
    assert_int_equal(watch_hub_pending(HUB), 1);
    /* Requested while catching: only once caught up, so the revision
     * covers the history it was given. */
    assert_int_equal(watch_progress_request(old), 0);
    wt_put(&f->t, "other", "2");
    wt_drain(HUB, 0);
    assert_string_equal(f->b.log, "@3;");
    assert_string_equal(f->c.log, "1:P k=1;@3;");
    /* A full sink parks the watcher; a requested progress stays owed. */
    f->b.full = 1;
    assert_int_equal(watch_progress_request(q), 0);
    wt_drain(HUB, 0);
    assert_int_equal(watch_state_get(q), WATCH_PARKED);
    wt_put(&f->t, "k", "2");
    f->b.full = 0;
    assert_int_equal(watch_resume(q), 0);
    wt_drain(HUB, 0);
    assert_string_equal(f->b.log, "@3;4:P k=2;@4;");
    /* Periodic refused: parked, not owed. */
    f->a.full = 1;
    assert_int_equal(watch_hub_progress(HUB), 0);
    assert_int_equal(watch_state_get(p), WATCH_PARKED);
    f->a.full = 0;
    assert_int_equal(watch_resume(p), 0);
    wt_drain(HUB, 0);
    assert_string_equal(f->a.log, "@2;4:P k=2;");
    watch_stop(p);
    watch_stop(q);
    watch_stop(old);
}

static void test_future_progress(void **state)
{
    fix *f = *state;
    wt_put(&f->t, "k", "1");
    watch_watcher *w =
        wt_watch(HUB, &f->a, "k", NULL, 10, WATCH_PROGRESS_NOTIFY);
    assert_int_equal(watch_hub_progress(HUB), 0);
    assert_string_equal(f->a.log, "@1;");
    watch_stop(w);
}

static void test_reentrant_sinks(void **state)
{
    fix *f = *state;
    f->a.hub = HUB;
    watch_watcher *a = wt_watch(HUB, &f->a, "k", NULL, 0, 0);
    watch_watcher *b = wt_watch(HUB, &f->b, "k", NULL, 0, 0);
    wt_watch(HUB, &f->c, "k", NULL, 0, 0);
    /* a stops b (the next one on the group's list) during its send. */
    f->a.stop_other = b;
    wt_put(&f->t, "k", "1");
    assert_int_equal(f->a.busy_rc, WATCH_EBUSY);
    assert_string_equal(f->a.log, "1:P k=1;");
    assert_string_equal(f->b.log, "");
    assert_string_equal(f->c.log, "1:P k=1;");
    /* c stops itself during its send. */
    f->c.stop_self = true;
    wt_put(&f->t, "k", "2");
    assert_string_equal(f->c.log, "1:P k=1;2:P k=2;");
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.watchers, 1);
    wt_put(&f->t, "k", "3");
    assert_string_equal(f->c.log, "1:P k=1;2:P k=2;");
    /* Stopping itself during catch-up. */
    wt_sink_clear(&f->b);
    f->b.stop_self = true;
    f->b.hub = HUB;
    wt_watch(HUB, &f->b, "k", NULL, 1, 0);
    wt_drain(HUB, 0);
    assert_string_equal(f->b.log, "1:P k=1;");
    assert_int_equal(f->b.busy_rc, WATCH_EBUSY);
    /* Progress callbacks see the hub busy too. */
    f->a.busy_rc = 0;
    watch_progress_request(a);
    wt_drain(HUB, 0);
    assert_int_equal(f->a.busy_rc, WATCH_EBUSY);
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.watchers, 1);
    watch_stop(a);
}

static void test_notify_order(void **state)
{
    fix *f = *state;
    wt_put(&f->t, "k", "1");
    kv_events evs = f->t.last.events;
    assert_int_equal(watch_hub_notify(HUB, &evs), WATCH_EORDER);
    evs.revision = 0;
    assert_int_equal(watch_hub_notify(HUB, &evs), WATCH_EORDER);
    kv_events empty = {0, 0, NULL};
    assert_int_equal(watch_hub_notify(HUB, &empty), 0);
    assert_int_equal(watch_hub_notify(HUB, NULL), 0);
    assert_int_equal(watch_hub_revision(HUB), 1);
}

static void test_hub_starts_at_store_revision(void **state)
{
    fix *f = *state;
    wt_put(&f->t, "k", "1");
    wt_put(&f->t, "k", "2");
    watch_hub *h2;
    assert_int_equal(watch_hub_create(&h2, f->t.kv, NULL), 0);
    assert_int_equal(watch_hub_revision(h2), 2);
    wt_watch(h2, &f->a, "k", NULL, 1, 0);
    wt_watch(h2, &f->b, "k", NULL, 0, 0);
    wt_drain(h2, 0);
    assert_string_equal(f->a.log, "1:P k=1;2:P k=2;");
    /* Destroy frees live watchers without callbacks. */
    watch_hub_destroy(h2);
    assert_string_equal(f->b.log, "");
    assert_int_equal(watch_hub_create(NULL, f->t.kv, NULL), CM_EINVAL);
}

static void test_many_single_keys(void **state)
{
    fix *f = *state;
    enum { N = 500 };
    static wt_sink sinks[N];
    watch_watcher *w[N];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%03d", i);
        wt_sink_init(&sinks[i]);
        w[i] = wt_watch(HUB, &sinks[i], k, NULL, 0, 0);
    }
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.groups, N);
    for (int i = 0; i < N; i += 7) {
        char k[16];
        snprintf(k, sizeof k, "key%03d", i);
        wt_put(&f->t, k, "v");
    }
    for (int i = 0; i < N; i++) {
        char want[32] = "";
        if (i % 7 == 0)
            snprintf(want, sizeof want, "%d:P key%03d=v;", i / 7 + 1, i);
        assert_string_equal(sinks[i].log, want);
    }
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.events_sent, (N + 6) / 7);
    for (int i = 0; i < N; i++)
        watch_stop(w[i]);
}

static void test_shared_group(void **state)
{
    fix *f = *state;
    enum { N = 100 };
    static wt_sink sinks[N];
    watch_watcher *w[N];
    for (int i = 0; i < N; i++) {
        wt_sink_init(&sinks[i]);
        w[i] = wt_watch(HUB, &sinks[i], "p/", "p0", 0, 0);
    }
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.synced, N);
    sinks[10].full = 1;
    wt_put(&f->t, "p/a", "1");
    wt_put(&f->t, "p/b", "2");
    for (int i = 0; i < N; i++)
        if (i != 10)
            assert_string_equal(sinks[i].log, "1:P p/a=1;2:P p/b=2;");
    assert_string_equal(sinks[10].log, "");
    sinks[10].full = 0;
    watch_resume(w[10]);
    wt_drain(HUB, 0);
    assert_string_equal(sinks[10].log, "1:P p/a=1;2:P p/b=2;");
    for (int i = 0; i < N; i++)
        watch_stop(w[i]);
}

static void test_start_enomem(void **state)
{
    fix *f = *state;
    /* Fail each allocation of watch_start in turn: clean error, nothing
     * kept, until it succeeds.  A first watcher makes the hub's tables,
     * which are kept on purpose. */
    watch_watcher *first = wt_watch(HUB, &f->b, "z", NULL, 0, 0);
    int ok = 0;
    for (long n = 0; n < 50 && !ok; n++) {
        watch_hub_stats before, after;
        watch_hub_stats_get(HUB, &before);
        long out0 = tu_alloc_outstanding();
        tu_alloc_fail_after(n);
        watch_watcher *w = NULL;
        watch_options o = {.key = (const uint8_t *)"k",
                           .key_len = 1,
                           .range_end = (const uint8_t *)"m",
                           .end_len = 1,
                           .sink = &f->a.sink};
        int rc = watch_start(HUB, &o, &w);
        tu_alloc_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            watch_stop(w);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        watch_hub_stats_get(HUB, &after);
        assert_int_equal(after.watchers, before.watchers);
        assert_int_equal(after.groups, before.groups);
        assert_int_equal(tu_alloc_outstanding(), out0);
    }
    assert_true(ok);
    watch_stop(first);
}

static void test_notify_enomem_demotes(void **state)
{
    fix *f = *state;
    watch_watcher *w = wt_watch(HUB, &f->a, "k", "l", 0, 0);
    watch_watcher *v = wt_watch(HUB, &f->b, "k", "l", 0, 0);
    wt_put(&f->t, "k1", "1"); /* scratch grows to its initial size */
    /* A txn bigger than the scratch: notify must grow it, and fails. */
    const char *puts[80];
    char keys[40][8];
    for (int i = 0; i < 39; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", i + 10);
        puts[2 * i] = keys[i];
        puts[2 * i + 1] = "x";
    }
    puts[78] = NULL;
    f->t.notify = false;
    wt_txn(&f->t, puts, NULL);
    tu_alloc_fail_after(0);
    assert_int_equal(watch_hub_notify(HUB, &f->t.last.events), 0);
    tu_alloc_fail_after(-1);
    f->t.notify = true;
    assert_int_equal(watch_state_get(w), WATCH_CATCHING);
    assert_int_equal(watch_state_get(v), WATCH_CATCHING);
    watch_hub_stats st;
    watch_hub_stats_get(HUB, &st);
    assert_int_equal(st.demotions, 2);
    wt_drain(HUB, 0);
    assert_int_equal(watch_state_get(w), WATCH_SYNCED);
    assert_string_equal(f->a.log, f->b.log);
    assert_int_equal(f->a.sends, 2);
    wt_put(&f->t, "k2", "2");
    assert_int_equal(f->a.sends, 3);
    watch_stop(w);
    watch_stop(v);
}

static void test_step_enomem_retries(void **state)
{
    fix *f = *state;
    for (int i = 0; i < 20; i++)
        wt_put(&f->t, "k", "v");
    wt_sink ref;
    wt_sink_init(&ref);
    watch_watcher *r = wt_watch(HUB, &ref, "k", NULL, 1, 0);
    wt_drain(HUB, 0);
    watch_watcher *w = wt_watch(HUB, &f->a, "k", NULL, 1, 0);
    /* Fail allocations at many points of the catch-up; every failure is
     * a clean -ENOMEM and the stream stays exact. */
    long n = 0;
    int rc;
    do {
        tu_alloc_fail_after(n++ % 5);
        rc = watch_hub_step(HUB, 3);
        tu_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == 1 || rc == -ENOMEM);
    } while (rc != 0 && n < 1000);
    wt_drain(HUB, 0);
    assert_int_equal(watch_state_get(w), WATCH_SYNCED);
    assert_string_equal(f->a.log, ref.log);
    watch_stop(w);
    watch_stop(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, setup_small_steps, teardown)
    const struct CMUnitTest tests[] = {
        T(test_errors_named),
        T(test_start_errors),
        cmocka_unit_test(test_limit),
        T(test_ids),
        T(test_key_watch),
        T(test_range_prefix_fromkey),
        T(test_txn_atomic),
        T(test_filters),
        T(test_prev_kv),
        TS(test_catch_up_bounded),
        TS(test_catch_up_window),
        TS(test_catch_up_fair),
        T(test_future_start),
        T(test_compacted_start),
        TS(test_slow_sink_parks),
        T(test_parked_then_compacted),
        T(test_progress),
        T(test_future_progress),
        T(test_reentrant_sinks),
        T(test_notify_order),
        T(test_hub_starts_at_store_revision),
        T(test_many_single_keys),
        T(test_shared_group),
        T(test_start_enomem),
        T(test_notify_enomem_demotes),
        T(test_step_enomem_retries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
