/*
 * Watch guarantees: one valid history with three watchers (key with
 * prev_kv, prefix from a past revision, range from "now"), and for every
 * guarantee a copy with exactly one fault injected (histories/watch/).
 */
#include "jt.h"

static const jt_case cases[] = {
    {"watch/valid.jsonl", JC_VALID, NULL},
    {"watch/indeterminate-valid.jsonl", JC_VALID, NULL},
    {"watch/filter-invalid.jsonl", JC_INVALID, "filter-mismatch"},
    {"watch/order-invalid.jsonl", JC_INVALID, "revision-decreased"},
    {"watch/duplicate-invalid.jsonl", JC_INVALID, "duplicate-event"},
    {"watch/atomic-invalid.jsonl", JC_INVALID, "non-atomic"},
    {"watch/gap-invalid.jsonl", JC_INVALID, "missing-event"},
    {"watch/resume-invalid.jsonl", JC_INVALID, "bad-resume"},
    {"watch/bookmark-invalid.jsonl", JC_INVALID, "event-after-progress"},
    {"watch/progress-back-invalid.jsonl", JC_INVALID, "progress-decreased"},
    {"watch/create-flag-invalid.jsonl", JC_INVALID, "bad-create-flag"},
    {"watch/prev-kv-invalid.jsonl", JC_INVALID, "bad-prev-kv"},
    {"watch/wrong-event-invalid.jsonl", JC_INVALID, "wrong-event"},
    {"watch/unexpected-invalid.jsonl", JC_INVALID, "unexpected-event"},
    {"watch/lost-write-invalid.jsonl", JC_INVALID, "lost-write"},
    {"watch/phantom-write-invalid.jsonl", JC_INVALID, "phantom-write"},
    {"watch/replay-order-invalid.jsonl", JC_INVALID, "replay-order"},
    {"watch/replay-duplicate-invalid.jsonl", JC_INVALID, "duplicate-event"},
    {"watch/replay-version-invalid.jsonl", JC_INVALID, "bad-create-flag"},
};

static void test_case(void **state)
{
    jt_case_run(jc_check_watch, *state);
}

/* Each injected fault must be reported as exactly the anomaly it is, not
 * as a cascade of others. */
static void test_single_anomaly(void **state)
{
    (void)state;
    /* The last case corrupts the replay itself, which also makes the next
     * version of the key and a watcher's prev_kv look wrong. */
    for (size_t i = 2; i < sizeof cases / sizeof cases[0] - 1; i++) {
        char path[1024], err[256];
        snprintf(path, sizeof path, "%s/%s", JT_HISTORIES, cases[i].file);
        jc_history *h = NULL;
        assert_int_equal(jc_history_load(path, &h, err, sizeof err), 0);
        jc_result res = {0};
        assert_int_equal(jc_check_watch(h, NULL, &res), 0);
        if (res.nanomalies != 1)
            fail_msg("%s: %zu anomalies", cases[i].file, res.nanomalies);
        jc_result_free(&res);
        jc_history_destroy(h);
    }
}

int main(void)
{
    struct CMUnitTest tests[sizeof cases / sizeof cases[0] + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tests[n] = (struct CMUnitTest)JT_CASE_TEST(test_case, &cases[i]);
        tests[n++].name = cases[i].file;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_single_anomaly, jt_setup, jt_teardown);
    return _cmocka_run_group_tests("jepsen_checker_watch", tests, n, NULL,
                                   NULL);
}
