/*
 * History parsing: JSON details (escapes, numbers, nesting), pairing of
 * invokes with completions, parse errors naming the line, the result JSON,
 * and allocation failure at every step of a parse and a check.
 */
#include "jt.h"

#include <errno.h>

static void test_pairing(void **state)
{
    (void)state;
    const char *text =
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n"
        "\n"
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"index\":40}\n"
        "  {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\r\n"
        "{\"type\":\"ok\",\"f\":\"replay\",\"events\":[]}\n"
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"time\":77}\n"
        "{\"process\":0,\"type\":\"fail\",\"f\":\"cas\"}";
    jc_history *h = jt_parse(text);
    const jc_op *ops = jc_history_ops(h);
    assert_int_equal(jc_history_count(h), 4);
    assert_string_equal(ops[0].f, "write");
    assert_int_equal(ops[0].type, JC_OK);
    assert_int_equal(ops[0].index, 0);
    assert_int_equal(ops[0].cmp_index, 2);
    assert_int_equal(ops[1].index, 40);     /* "index" wins */
    assert_int_equal(ops[1].type, JC_INFO); /* never completed */
    assert_null(ops[1].cmp);
    assert_string_equal(ops[2].f, "replay"); /* standalone event */
    assert_ptr_equal(ops[2].inv, ops[2].cmp);
    assert_int_equal(ops[3].type, JC_FAIL);
    assert_int_equal(ops[3].inv_time, 77);
    jc_history_destroy(h);
}

static void test_json_values(void **state)
{
    (void)state;
    const char *text =
        "{\"s\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\",\"n\":-12,"
        "\"r\":1.5e3,\"big\":123456789012345678901,\"t\":true,\"z\":null,"
        "\"a\":[[],{},[1,[2,[3]]]],\"o\":{\"k\":{\"x\":[\"y\"]}}}\n";
    jc_history *h = jt_parse(text);
    const jc_json *o = jc_history_ops(h)[0].inv;
    const jc_json *s = jc_json_get(o, "s");
    assert_string_equal(s->s, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(jc_json_get(o, "n")->i, -12);
    assert_true(jc_json_get(o, "r")->d == 1500.0);
    assert_int_equal(jc_json_get(o, "big")->type, JC_JSON_REAL);
    assert_int_equal(jc_json_get(o, "t")->i, 1);
    assert_int_equal(jc_json_get(o, "z")->type, JC_JSON_NULL);
    const jc_json *a = jc_json_get(o, "a");
    assert_int_equal(a->len, 3);
    assert_int_equal(jc_json_at(jc_json_at(jc_json_at(a, 2), 1), 0)->i, 2);
    assert_string_equal(
        jc_json_get(jc_json_get(jc_json_get(o, "o"), "k"), "x")->items[0].s,
        "y");
    assert_null(jc_json_get(o, "missing"));
    assert_true(jc_json_equal(jc_json_at(a, 0), jc_json_at(a, 0)));
    assert_false(jc_json_equal(jc_json_at(a, 0), jc_json_at(a, 1)));
    jc_history_destroy(h);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"a\":1}\n{\"a\":}\n", "{\"a\":1}\n[1,2]\n",  "{\"a\":\"x}\n",
        "{\"a\":1} x\n",         "{\"a\":tru}\n",       "{\"a\":\"\\q\"}\n",
        "{\"a\":[1,2}\n",        "{\"a\":\"\\u12\"}\n",
    };
    static const char *const line[] = {"line 2", "line 2", "line 1", "line 1",
                                       "line 1", "line 1", "line 1", "line 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jc_history *h = NULL;
        char err[256] = "";
        int rc = jc_history_parse(bad[i], strlen(bad[i]), &h, err, sizeof err);
        assert_int_equal(rc, JC_EPARSE);
        assert_null(h);
        printf("  %s", bad[i]);
        printf("    -> %s\n", err);
        assert_non_null(strstr(err, line[i]));
    }
    /* Deep nesting is refused, not recursed into. */
    char deep[400];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"a\":");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    jc_history *h = NULL;
    assert_int_equal(jc_history_parse(deep, n, &h, NULL, 0), JC_EPARSE);
    assert_int_equal(jc_history_load("/nonexistent/h.jsonl", &h, NULL, 0),
                     -ENOENT);
    assert_string_equal(jc_err_name(JC_EPARSE), "JC_EPARSE");
    assert_string_equal(jc_strerror(JC_EPARSE), "malformed history line");
    assert_string_equal(jc_err_name(-ENOENT), "ENOENT");
}

static void test_result_json(void **state)
{
    (void)state;
    jc_result res = {0};
    /* Built by hand as a checker would, through the public struct. */
    res.valid = JC_INVALID;
    res.anomalies = cm_calloc(1, sizeof *res.anomalies);
    assert_non_null(res.anomalies);
    res.nanomalies = 1;
    res.anomalies[0].type = cm_strdup("G0");
    res.anomalies[0].explanation = cm_strdup("say \"hi\"\n");
    res.anomalies[0].ops = cm_calloc(2, sizeof(int64_t));
    res.anomalies[0].ops[0] = 3;
    res.anomalies[0].ops[1] = 9;
    res.anomalies[0].nops = 2;
    assert_int_equal(jc_result_count(&res, "G0"), 1);
    char *json = NULL;
    assert_int_equal(jc_result_json(&res, &json), 0);
    assert_string_equal(json, "{\"valid\":false,\"checked\":0,\"anomalies\":"
                              "[{\"type\":\"G0\",\"ops\":[3,9],"
                              "\"explanation\":\"say \\\"hi\\\"\\u000a\"}]}");
    cm_free(json);
    jc_result_free(&res);
}

/* Every allocation of a parse and a check fails in turn: each must come
 * back as -ENOMEM (or succeed) and leak nothing (teardown checks). */
static void test_alloc_failures(void **state)
{
    (void)state;
    static const char *const files[] = {
        "register/cas-chain-valid.jsonl", "append/lost-update-invalid.jsonl",
        "watch/valid.jsonl", "lease/valid.jsonl"};
    static const jt_checker checks[] = {jc_check_register, jc_check_append,
                                        jc_check_watch, jc_check_lease};
    for (size_t f = 0; f < 4; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", JT_HISTORIES, files[f]);
        for (long n = 0;; n++) {
            jc_history *h = NULL;
            jc_result res = {0};
            tu_alloc_fail_after(n);
            long before = tu_alloc_failures();
            int rc = jc_history_load(path, &h, NULL, 0);
            if (!rc)
                rc = checks[f](h, NULL, &res);
            tu_alloc_fail_after(-1);
            jc_result_free(&res);
            jc_history_destroy(h);
            assert_true(rc == 0 || rc == -ENOMEM);
            assert_int_equal(tu_alloc_outstanding(), 0);
            if (rc == 0 && tu_alloc_failures() == before)
                break;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pairing, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_json_values, jt_setup,
                                        jt_teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, jt_setup,
                                        jt_teardown),
        cmocka_unit_test_setup_teardown(test_result_json, jt_setup,
                                        jt_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, jt_setup,
                                        jt_teardown),
    };
    return cmocka_run_group_tests_name("jepsen_checker_history", tests, NULL,
                                       NULL);
}
