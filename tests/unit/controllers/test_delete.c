/*
 * Unit tests for the pure parts of controllers/delete.h and events.h:
 * kubectl's --cascade values, the finalizer helpers, time formatting, and
 * the argument checks of the blocking calls (which need no server to
 * refuse bad input).  The store-facing behaviour is covered by the
 * controllers_gc integration test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delete.h"
#include "events.h"
#include "tu.h"

static int setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(tu_alloc_uninstall(), 0);
    return 0;
}

static void test_propagation_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        ctl_propagation p;
    } ok[] = {
        {"background", CTL_PROPAGATION_BACKGROUND},
        {"true", CTL_PROPAGATION_BACKGROUND},
        {"foreground", CTL_PROPAGATION_FOREGROUND},
        {"orphan", CTL_PROPAGATION_ORPHAN},
        {"false", CTL_PROPAGATION_ORPHAN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ctl_propagation p = (ctl_propagation)-1;
        assert_int_equal(ctl_propagation_parse(ok[i].s, &p), 0);
        assert_int_equal(p, ok[i].p);
    }
    ctl_propagation p;
    assert_int_equal(ctl_propagation_parse("Foreground", &p), -EINVAL);
    assert_int_equal(ctl_propagation_parse("", &p), -EINVAL);
    assert_int_equal(ctl_propagation_parse(NULL, &p), -EINVAL);
}

static void test_finalizers(void **state)
{
    (void)state;
    char *f[] = {"a.io/x", "foregroundDeletion", "a.io/x", "b.io/y"};
    Skiffpb__V1__ObjectMeta md = SKIFFPB__V1__OBJECT_META__INIT;
    md.finalizers = f;
    md.n_finalizers = 4;
    assert_true(ctl_meta_has_finalizer(&md, "foregroundDeletion"));
    assert_false(ctl_meta_has_finalizer(&md, "orphan"));
    /* Every copy goes; the order of the rest is kept. */
    assert_int_equal(ctl_meta_remove_finalizer(&md, "a.io/x"), 0);
    assert_int_equal(md.n_finalizers, 2);
    assert_string_equal(md.finalizers[0], "foregroundDeletion");
    assert_string_equal(md.finalizers[1], "b.io/y");
    assert_int_equal(ctl_meta_remove_finalizer(&md, "a.io/x"), 1);
    assert_int_equal(ctl_meta_remove_finalizer(&md, "foregroundDeletion"), 0);
    assert_int_equal(ctl_meta_remove_finalizer(&md, "b.io/y"), 0);
    assert_int_equal(md.n_finalizers, 0);
    assert_int_equal(ctl_meta_remove_finalizer(&md, "b.io/y"), 1);
}

static void test_format_time(void **state)
{
    (void)state;
    char buf[32];
    ctl_format_time(1767323045123, buf, sizeof buf);
    assert_string_equal(buf, "2026-01-02T03:04:05Z");
    ctl_format_time(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char msg[64];
    ctl_delete_outcome out;
    assert_int_equal(ctl_delete_object(NULL, "/registry/pods/default/a", NULL,
                                       &out, msg, sizeof msg),
                     -EINVAL);
    ctl_recorder *r = NULL;
    ctl_recorder_config cfg = {.component = "x"};
    assert_int_equal(ctl_recorder_create(&cfg, &r), -EINVAL);
    assert_int_equal(ctl_recorder_create(NULL, &r), -EINVAL);
    assert_null(r);
    ctl_recorder_destroy(NULL);
}

/* A recorder is created without I/O; every allocation failure is clean. */
static void test_recorder_alloc(void **state)
{
    (void)state;
    /* Any non-NULL client will do: creation does no I/O. */
    static char dummy;
    skiff_client *fake = (skiff_client *)&dummy;
    for (long n = 0;; n++) {
        ctl_recorder_config cfg = {
            .client = fake, .component = "sched", .host = "h1"};
        ctl_recorder *r = NULL;
        tu_alloc_fail_after(n);
        int rc = ctl_recorder_create(&cfg, &r);
        tu_alloc_fail_after(-1);
        if (rc == 0) {
            assert_string_equal(ctl_recorder_last_key(r), "");
            assert_int_equal(ctl_recorder_lease(r), 0);
            ctl_recorder_destroy(r);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_true(n < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_propagation_parse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_finalizers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorder_alloc, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
