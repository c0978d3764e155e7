/*
 * Shared helpers for the checker suites: a leak-checking fixture and a
 * table-driven case runner.  Each case names a history file under
 * histories/ (JT_HISTORIES, set by CMake), the verdict the checker must
 * reach and, for invalid histories, an anomaly type it must report.
 */
#ifndef SKIFF_JT_H
#define SKIFF_JT_H

/* cmocka.h needs these first; clang-format off keeps the order. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "checker.h"
#include "cm.h"
#include "tu.h"

typedef int (*jt_checker)(const jc_history *, const jc_opts *, jc_result *);

typedef struct jt_case {
    const char *file; /* relative to JT_HISTORIES */
    jc_valid want;
    const char *anomaly; /* must be reported (invalid cases), or NULL */
} jt_case;

static int jt_setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static int jt_teardown(void **state)
{
    (void)state;
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

/* Runs a checker on a parsed history and prints the result JSON so a
 * failing case shows what the checker said. */
static inline jc_valid jt_run(jt_checker check, const jc_history *h,
                              const jc_opts *o, jc_result *res,
                              const char *name)
{
    assert_int_equal(check(h, o, res), 0);
    char *json = NULL;
    assert_int_equal(jc_result_json(res, &json), 0);
    printf("  %s: %s\n", name, json);
    cm_free(json);
    return res->valid;
}

static inline void jt_case_run(jt_checker check, const jt_case *c)
{
    char path[1024], err[256] = "";
    snprintf(path, sizeof path, "%s/%s", JT_HISTORIES, c->file);
    jc_history *h = NULL;
    int rc = jc_history_load(path, &h, err, sizeof err);
    if (rc)
        fail_msg("%s: %d %s", path, rc, err);
    jc_result res = {0};
    jc_valid v = jt_run(check, h, NULL, &res, c->file);
    if (v != c->want)
        fail_msg("%s: verdict %d, wanted %d", c->file, v, c->want);
    if (c->anomaly && jc_result_count(&res, c->anomaly) == 0)
        fail_msg("%s: no %s anomaly reported", c->file, c->anomaly);
    jc_result_free(&res);
    jc_history_destroy(h);
}

/* Parses an in-memory history (for generated ones). */
static inline jc_history *jt_parse(const char *text)
{
    jc_history *h = NULL;
    char err[256] = "";
    int rc = jc_history_parse(text, strlen(text), &h, err, sizeof err);
    if (rc)
        fail_msg("parse: %d %s", rc, err);
    return h;
}

static inline int64_t jt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One cmocka test per table row: the row travels as the initial state. */
#define JT_CASE_TEST(fn, row)                                                  \
    cmocka_unit_test_prestate_setup_teardown(fn, jt_setup, jt_teardown,        \
                                             (void *)(row))

#endif
