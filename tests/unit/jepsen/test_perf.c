/*
 * Speed: a random but linearizable 100,000-operation register history
 * (8 keys, 10 client processes, some cas, failures and indeterminate ops)
 * must check in seconds.  The time is printed; the assertion is only a
 * generous bound so sanitizer builds on slow machines pass.
 *
 * The generator simulates real clients: each process invokes, later takes
 * effect on the true register (its linearization point), later completes,
 * and the three steps of different processes interleave at random.  A few
 * operations crash after invoking (info), half of them before taking
 * effect; their process retires and a fresh one takes its place, as in
 * Jepsen.
 */
#include "jt.h"

#define NOPS 100000
#define NKEYS 8
#define NPROC 10

typedef struct proc {
    int id;
    int stage; /* 0 idle, 1 invoked, 2 applied */
    int f, key, a, b, result, ok;
    int crash; /* 1 crash before applying, 2 after */
} proc;

static void emit(cm_buf *b, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_int_equal(cm_buf_append(b, line, (size_t)n), 0);
}

static void val(char *out, size_t cap, int v)
{
    if (v < 0)
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "%d", v);
}

static void op_line(cm_buf *b, const proc *p, const char *type, int64_t t)
{
    static const char *const fs[] = {"read", "write", "cas"};
    char v1[32], v2[32];
    if (p->f == 0) {
        val(v1, sizeof v1, !strcmp(type, "ok") ? p->result : -1);
        emit(b,
             "{\"process\":%d,\"type\":\"%s\",\"f\":\"read\",\"key\":"
             "\"k%d\",\"value\":%s,\"time\":%lld}\n",
             p->id, type, p->key, v1, (long long)t);
    } else if (p->f == 1) {
        emit(b,
             "{\"process\":%d,\"type\":\"%s\",\"f\":\"write\",\"key\":"
             "\"k%d\",\"value\":%d,\"time\":%lld}\n",
             p->id, type, p->key, p->a, (long long)t);
    } else {
        val(v1, sizeof v1, p->a);
        val(v2, sizeof v2, p->b);
        emit(b,
             "{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\",\"key\":"
             "\"k%d\",\"value\":[%s,%s],\"time\":%lld}\n",
             p->id, type, fs[p->f], p->key, v1, v2, (long long)t);
    }
}

/* bug: the read completing as operation NOPS/2 returns a value nobody
 * wrote, so the search must exhaust the whole prefix before failing. */
static void generate(cm_buf *b, uint64_t seed, int bug)
{
    cm_rand r;
    cm_rand_seed(&r, seed);
    int reg[NKEYS], next_val = 0, next_proc = NPROC;
    proc ps[NPROC];
    for (int k = 0; k < NKEYS; k++)
        reg[k] = -1;
    for (int i = 0; i < NPROC; i++)
        ps[i] = (proc){.id = i};
    int64_t t = 0;
    for (int done = 0; done < NOPS;) {
        proc *p = &ps[cm_rand_below(&r, NPROC)];
        t += 1000;
        if (p->stage == 0) {
            p->key = (int)cm_rand_below(&r, NKEYS);
            p->f = (int)cm_rand_below(&r, 3);
            p->a = p->f == 2
                       ? (int)cm_rand_below(&r, 2) ? reg[p->key] : next_val - 1
                       : next_val++;
            if (p->f == 2)
                p->b = next_val++;
            p->crash =
                cm_rand_below(&r, 200) == 0 ? 1 + (int)cm_rand_below(&r, 2) : 0;
            op_line(b, p, "invoke", t);
            p->stage = 1;
        } else if (p->stage == 1) {
            if (p->crash == 1) {
                p->stage = 2; /* never takes effect */
                continue;
            }
            p->ok = 1;
            if (p->f == 0) {
                p->result = reg[p->key];
                if (bug && done >= NOPS / 2) {
                    p->result = 999999999;
                    bug = 0;
                }
            } else if (p->f == 1) {
                reg[p->key] = p->a;
            } else if (reg[p->key] == p->a) {
                reg[p->key] = p->b;
            } else {
                p->ok = 0;
            }
            p->stage = 2;
        } else {
            if (p->crash) {
                op_line(b, p, "info", t);
                *p = (proc){.id = next_proc++};
            } else {
                op_line(b, p, p->ok ? "ok" : "fail", t);
                p->stage = 0;
            }
            done++;
        }
    }
}

static void run(int bug)
{
    uint64_t seed = tu_seed(42);
    printf("  seed %llu\n", (unsigned long long)seed);
    cm_buf b = {0};
    generate(&b, seed, bug);
    assert_int_equal(cm_buf_append(&b, "", 1), 0);
    int64_t t0 = jt_now_ms();
    jc_history *h = jt_parse((const char *)b.base);
    int64_t t1 = jt_now_ms();
    jc_result res = {0};
    assert_int_equal(jc_check_register(h, NULL, &res), 0);
    int64_t t2 = jt_now_ms();
    printf("  %zu ops (%zu bytes): parse %lld ms, check %lld ms\n",
           jc_history_count(h), b.len, (long long)(t1 - t0),
           (long long)(t2 - t1));
    if (res.valid != (bug ? JC_INVALID : JC_VALID)) {
        char *json = NULL;
        jc_result_json(&res, &json);
        fail_msg("verdict %d: %s", res.valid, json ? json : "?");
    }
    if (bug)
        printf("  %s\n", res.anomalies[0].explanation);
    assert_true(t2 - t1 < 60000);
    jc_result_free(&res);
    jc_history_destroy(h);
    cm_buf_free(&b);
}

static void test_register_100k(void **state)
{
    (void)state;
    run(0);
}

static void test_register_100k_bug(void **state)
{
    (void)state;
    run(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_100k, jt_setup,
                                        jt_teardown),
        cmocka_unit_test_setup_teardown(test_register_100k_bug, jt_setup,
                                        jt_teardown),
    };
    return cmocka_run_group_tests_name("jepsen_checker_perf", tests, NULL,
                                       NULL);
}
