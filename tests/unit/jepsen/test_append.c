/*
 * List-append (Elle-style) strict serializability: for every anomaly the
 * checker names, an invalid history, and valid near-misses that a naive
 * checker would flag (concurrent reads, a txn reading its own
 * intermediate state, info txns whose appends surface).
 */
#include "jt.h"

#include <stdlib.h>

static const jt_case cases[] = {
    {"append/serial-valid.jsonl", JC_VALID, NULL},
    {"append/g0-invalid.jsonl", JC_INVALID, "G0"},
    {"append/g1c-invalid.jsonl", JC_INVALID, "G1c"},
    {"append/g-single-invalid.jsonl", JC_INVALID, "G-single"},
    {"append/g2-invalid.jsonl", JC_INVALID, "G2"},
    {"append/concurrent-valid.jsonl", JC_VALID, NULL},
    {"append/g1a-invalid.jsonl", JC_INVALID, "G1a"},
    {"append/g1b-invalid.jsonl", JC_INVALID, "G1b"},
    {"append/own-intermediate-valid.jsonl", JC_VALID, NULL},
    {"append/internal-invalid.jsonl", JC_INVALID, "internal"},
    {"append/duplicate-invalid.jsonl", JC_INVALID, "duplicate-elements"},
    {"append/incompatible-invalid.jsonl", JC_INVALID, "incompatible-order"},
    {"append/garbage-invalid.jsonl", JC_INVALID, "garbage-read"},
    {"append/lost-update-invalid.jsonl", JC_INVALID, "lost-update"},
    {"append/read-modify-valid.jsonl", JC_VALID, NULL},
    {"append/stale-read-invalid.jsonl", JC_INVALID, "G-single-realtime"},
    {"append/concurrent-read-valid.jsonl", JC_VALID, NULL},
    {"append/info-valid.jsonl", JC_VALID, NULL},
    {"append/g0-realtime-invalid.jsonl", JC_INVALID, "G0-realtime"},
    {"append/g1c-realtime-invalid.jsonl", JC_INVALID, "G1c-realtime"},
    {"append/duplicate-append-invalid.jsonl", JC_INVALID, "duplicate-append"},
    {"append/malformed-invalid.jsonl", JC_INVALID, "malformed"},
};

static void test_case(void **state)
{
    jt_case_run(jc_check_append, *state);
}

/* A serial 20,000-txn history over 50 keys: checks fast and stays valid,
 * exercising the realtime reduction and SCC search at scale. */
static void test_large_serial(void **state)
{
    (void)state;
    enum { N = 20000, K = 50 };
    cm_buf b = {0};
    int len[K] = {0};
    cm_rand r;
    cm_rand_seed(&r, tu_seed(7));
    for (int i = 0; i < N; i++) {
        int k1 = (int)cm_rand_below(&r, K), k2 = (int)cm_rand_below(&r, K);
        char line[512];
        /* Each txn reads k2 (its full list is 0..len-1), appends to k1. */
        char big[8192];
        size_t bl = 0;
        big[bl++] = '[';
        for (int e = 0; e < len[k2] && bl < sizeof big - 16; e++)
            bl += (size_t)snprintf(big + bl, sizeof big - bl, "%s%d",
                                   e ? "," : "", e);
        big[bl++] = ']';
        big[bl] = '\0';
        if (bl >= sizeof big - 16)
            continue;
        int m = snprintf(line, sizeof line,
                         "{\"process\":%d,\"type\":\"invoke\",\"f\":\"txn\","
                         "\"value\":[[\"r\",\"k%d\",null],[\"append\",\"k%d\","
                         "%d]]}\n",
                         i % 5, k2, k1, len[k1]);
        assert_int_equal(cm_buf_append(&b, line, (size_t)m), 0);
        m = snprintf(line, sizeof line,
                     "{\"process\":%d,\"type\":\"ok\",\"f\":\"txn\","
                     "\"value\":[[\"r\",\"k%d\",",
                     i % 5, k2);
        assert_int_equal(cm_buf_append(&b, line, (size_t)m), 0);
        assert_int_equal(cm_buf_append(&b, big, bl), 0);
        m = snprintf(line, sizeof line, "],[\"append\",\"k%d\",%d]]}\n", k1,
                     len[k1]);
        assert_int_equal(cm_buf_append(&b, line, (size_t)m), 0);
        len[k1]++;
    }
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    int64_t t0 = jt_now_ms();
    jc_history *h = jt_parse((const char *)b.base);
    int64_t t1 = jt_now_ms();
    jc_result res = {0};
    assert_int_equal(jc_check_append(h, NULL, &res), 0);
    int64_t t2 = jt_now_ms();
    printf("  %zu txns: parse %lld ms, check %lld ms, verdict %d\n",
           jc_history_count(h), (long long)(t1 - t0), (long long)(t2 - t1),
           res.valid);
    assert_int_equal(res.valid, JC_VALID);
    assert_true(t2 - t1 < 60000);
    jc_result_free(&res);
    jc_history_destroy(h);
    cm_buf_free(&b);
}

/* Random concurrent histories that are strictly serializable by
 * construction: each txn takes effect atomically at a moment between its
 * invoke and its completion (interleaved at random over 6 processes), some
 * fail without effect, some crash (info) before or after taking effect.
 * A checker that invents anomalies (from the realtime reduction, info
 * handling or the cycle search) fails here. */
enum { RK = 40, RP = 6, RMOPS = 4 };

typedef struct rtxn {
    int stage, n, id, crash, failed;
    int f[RMOPS], key[RMOPS], val[RMOPS];
    char reads[RMOPS][2048];
} rtxn;

static void txn_line(cm_buf *b, const rtxn *t, const char *type, int full)
{
    char line[16384];
    size_t n = (size_t)snprintf(line, sizeof line,
                                "{\"process\":%d,\"type\":\"%s\",\"f\":"
                                "\"txn\",\"value\":[",
                                t->id, type);
    for (int i = 0; i < t->n; i++) {
        if (t->f[i])
            n += (size_t)snprintf(line + n, sizeof line - n,
                                  "%s[\"append\",\"k%d\",%d]", i ? "," : "",
                                  t->key[i], t->val[i]);
        else
            n += (size_t)snprintf(line + n, sizeof line - n,
                                  "%s[\"r\",\"k%d\",%s]", i ? "," : "",
                                  t->key[i], full ? t->reads[i] : "null");
    }
    n += (size_t)snprintf(line + n, sizeof line - n, "]}\n");
    assert_int_equal(cm_buf_append(b, line, n), 0);
}

/* split = 1 breaks atomicity the way a stale snapshot does: reads are
 * taken at invoke time, appends applied later. */
static void random_history(int split, jc_valid want)
{
    cm_buf b = {0};
    static char lists[RK][2048];
    int len[RK] = {0}, next = 0, next_proc = RP, done = 0;
    rtxn ts[RP];
    memset(ts, 0, sizeof ts);
    for (int k = 0; k < RK; k++)
        strcpy(lists[k], "[]");
    for (int p = 0; p < RP; p++)
        ts[p].id = p;
    cm_rand r;
    uint64_t seed = tu_seed(11);
    printf("  seed %llu\n", (unsigned long long)seed);
    cm_rand_seed(&r, seed);
    /* JT_TXNS=N runs a bigger history by hand to measure speed. */
    const char *env = getenv("JT_TXNS");
    int total = env ? atoi(env) : 5000;
    while (done < total) {
        rtxn *t = &ts[cm_rand_below(&r, RP)];
        if (t->stage == 0) {
            t->n = 1 + (int)cm_rand_below(&r, RMOPS);
            for (int i = 0; i < t->n; i++) {
                t->f[i] = (int)cm_rand_below(&r, 2);
                t->key[i] = (int)cm_rand_below(&r, RK);
                t->val[i] = next++;
            }
            t->crash =
                cm_rand_below(&r, 50) == 0 ? 1 + (int)cm_rand_below(&r, 2) : 0;
            t->failed = cm_rand_below(&r, 20) == 0;
            txn_line(&b, t, "invoke", 0);
            t->stage = 1;
            for (int i = 0; split && i < t->n; i++)
                if (!t->f[i])
                    strcpy(t->reads[i], lists[t->key[i]]);
        } else if (t->stage == 1) {
            t->stage = 2;
            if (t->crash == 1 || t->failed)
                continue; /* never takes effect */
            for (int i = 0; i < t->n; i++) {
                int k = t->key[i];
                if (!t->f[i]) {
                    if (!split)
                        strcpy(t->reads[i], lists[k]);
                    continue;
                }
                if (len[k] >= 300) { /* keep reads short: stop growing */
                    t->f[i] = 0;
                    strcpy(t->reads[i], lists[k]);
                    continue;
                }
                size_t l = strlen(lists[k]);
                snprintf(lists[k] + l - 1, sizeof lists[k] - l + 1, "%s%d]",
                         len[k] ? "," : "", t->val[i]);
                len[k]++;
            }
        } else {
            if (t->crash) {
                txn_line(&b, t, "info", 0);
                memset(t, 0, sizeof *t);
                t->id = next_proc++;
            } else {
                txn_line(&b, t, t->failed ? "fail" : "ok", !t->failed);
                t->stage = 0;
            }
            done++;
        }
    }
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    jc_history *h = jt_parse((const char *)b.base);
    jc_result res = {0};
    int64_t t0 = jt_now_ms();
    assert_int_equal(jc_check_append(h, NULL, &res), 0);
    printf("  %zu txns checked in %lld ms\n", jc_history_count(h),
           (long long)(jt_now_ms() - t0));
    if (res.valid != want) {
        char *json = NULL;
        jc_result_json(&res, &json);
        fail_msg("verdict %d: %.2000s", res.valid, json ? json : "?");
    }
    static const char *const kinds[] = {"G0",
                                        "G1c",
                                        "G-single",
                                        "G2",
                                        "G0-realtime",
                                        "G1c-realtime",
                                        "G-single-realtime",
                                        "G2-realtime",
                                        "G1a",
                                        "G1b",
                                        "internal",
                                        "lost-update",
                                        "incompatible-order"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (jc_result_count(&res, kinds[i]))
            printf("  found %zu %s\n", jc_result_count(&res, kinds[i]),
                   kinds[i]);
    jc_result_free(&res);
    jc_history_destroy(h);
    cm_buf_free(&b);
}

static void test_random_concurrent(void **state)
{
    (void)state;
    random_history(0, JC_VALID);
}

static void test_random_split_detected(void **state)
{
    (void)state;
    random_history(1, JC_INVALID);
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
        test_large_serial, jt_setup, jt_teardown);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_random_concurrent, jt_setup, jt_teardown);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_random_split_detected, jt_setup, jt_teardown);
    return _cmocka_run_group_tests("jepsen_checker_append", tests, n, NULL,
                                   NULL);
}
