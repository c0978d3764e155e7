/*
 * Register linearizability: for every situation the checker must get
 * right, a valid and an invalid history (histories/register/), plus a
 * history built to explode the search so the budget yields "unknown".
 */
#include "jt.h"

static const jt_case cases[] = {
    {"register/simple-valid.jsonl", JC_VALID, NULL},
    {"register/stale-read-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/initial-null-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/reordered-valid.jsonl", JC_VALID, NULL},
    {"register/concurrent-valid.jsonl", JC_VALID, NULL},
    {"register/concurrent-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/info-happened-valid.jsonl", JC_VALID, NULL},
    {"register/info-omitted-valid.jsonl", JC_VALID, NULL},
    {"register/info-undone-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/fail-ignored-valid.jsonl", JC_VALID, NULL},
    {"register/fail-seen-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/cas-chain-valid.jsonl", JC_VALID, NULL},
    {"register/cas-double-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/two-keys-invalid.jsonl", JC_INVALID, "nonlinearizable"},
    {"register/malformed-invalid.jsonl", JC_INVALID, "malformed"},
};

static void test_case(void **state)
{
    jt_case_run(jc_check_register, *state);
}

/* The invalid two-key history must blame key y only, and name the read
 * that could not be placed. */
static void test_report_names_key(void **state)
{
    (void)state;
    jc_history *h = NULL;
    char err[256];
    char path[1024];
    snprintf(path, sizeof path, "%s/register/two-keys-invalid.jsonl",
             JT_HISTORIES);
    assert_int_equal(jc_history_load(path, &h, err, sizeof err), 0);
    jc_result res = {0};
    assert_int_equal(jt_run(jc_check_register, h, NULL, &res, "two-keys"),
                     JC_INVALID);
    assert_int_equal(res.nanomalies, 1);
    assert_non_null(strstr(res.anomalies[0].explanation, "key y"));
    assert_int_equal(res.anomalies[0].ops[0], 6); /* the read of "1" */
    jc_result_free(&res);
    jc_history_destroy(h);
}

/* n concurrent writes of distinct values and a concurrent read of a value
 * nobody wrote: the search must try every subset of writes before giving
 * up, which a budget cuts short. */
static char *explosive(int n)
{
    size_t cap = (size_t)n * 200 + 400, len = 0;
    char *s = cm_malloc(cap);
    assert_non_null(s);
    for (int p = 0; p < n; p++)
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"process\":%d,\"type\":\"invoke\",\"f\":"
                                "\"write\",\"key\":\"x\",\"value\":%d}\n",
                                p, p);
    len += (size_t)snprintf(s + len, cap - len,
                            "{\"process\":%d,\"type\":\"invoke\",\"f\":"
                            "\"read\",\"key\":\"x\"}\n"
                            "{\"process\":%d,\"type\":\"ok\",\"f\":\"read\","
                            "\"key\":\"x\",\"value\":-1}\n",
                            n, n);
    for (int p = 0; p < n; p++)
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"process\":%d,\"type\":\"ok\",\"f\":"
                                "\"write\",\"key\":\"x\",\"value\":%d}\n",
                                p, p);
    return s;
}

static void test_budget_unknown(void **state)
{
    (void)state;
    char *text = explosive(40);
    jc_history *h = jt_parse(text);
    jc_result res = {0};
    jc_opts o = {.budget_ms = 200};
    int64_t t0 = jt_now_ms();
    assert_int_equal(jt_run(jc_check_register, h, &o, &res, "budget"),
                     JC_UNKNOWN);
    int64_t dt = jt_now_ms() - t0;
    printf("  budget 200 ms: gave up after %lld ms\n", (long long)dt);
    assert_true(dt < 5000);
    assert_non_null(res.note);
    jc_result_free(&res);
    /* The state limit gives up the same way. */
    jc_opts o2 = {.max_states = 10000};
    assert_int_equal(jt_run(jc_check_register, h, &o2, &res, "states"),
                     JC_UNKNOWN);
    jc_result_free(&res);
    jc_history_destroy(h);
    cm_free(text);
}

/* A small explosive history is still decided: the memo keeps 2^n small. */
static void test_small_search_decides(void **state)
{
    (void)state;
    char *text = explosive(8);
    jc_history *h = jt_parse(text);
    jc_result res = {0};
    assert_int_equal(jt_run(jc_check_register, h, NULL, &res, "small"),
                     JC_INVALID);
    jc_result_free(&res);
    jc_history_destroy(h);
    cm_free(text);
}

int main(void)
{
    struct CMUnitTest tests[sizeof cases / sizeof cases[0] + 3];
    size_t n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tests[n] = (struct CMUnitTest)JT_CASE_TEST(test_case, &cases[i]);
        tests[n++].name = cases[i].file;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_report_names_key, jt_setup, jt_teardown);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_budget_unknown, jt_setup, jt_teardown);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_small_search_decides, jt_setup, jt_teardown);
    return _cmocka_run_group_tests("jepsen_checker_register", tests, n, NULL,
                                   NULL);
}
