/*
 * Unit tests for the deletion rules of api/objects/admit.c: the
 * deletionTimestamp mark (set once, stamped with the request's time,
 * never changed or cleared), finalizers while it is set (removed, never
 * added, except the GC's own in the marking update), no resurrection by a
 * create, and obj_admit_delete refusing objects that still have
 * finalizers.  Each rule is checked once accepted and once refused.
 */
#include "obj_tu.h"

#include <errno.h>

#include "admit.h"

#define KEY "/registry/deployments/default/web"
#define DEP(meta)                                                              \
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" meta     \
    "spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n"            \
    "  template:\n    metadata: {labels: {app: web}}\n    spec:\n"             \
    "      containers: [{name: a, image: nginx:1.25}]\n"
#define MARK "  deletionTimestamp: \"2000-01-01T00:00:00Z\"\n"
#define NOW_MS 1767323045000 /* 2026-01-02T03:04:05Z */
#define NOW "2026-01-02T03:04:05Z"

static void uid_a(void *data, char *buf, size_t cap)
{
    (void)data;
    snprintf(buf, cap, "11111111-2222-4333-8444-555555555555");
}

typedef struct fix {
    cm_arena a;
    obj_admit_req rq;
    obj_admit_res res;
    obj_admit_res stored; /* the object as stored now */
} fix;

static void req(fix *f, const char *yaml)
{
    memset(&f->rq, 0, sizeof f->rq);
    obj_object *o = otu_one(&f->a, yaml);
    f->rq.key = KEY;
    f->rq.value_len = protobuf_c_message_get_packed_size(&o->base);
    uint8_t *p = cm_arena_alloc(&f->a, f->rq.value_len + 1);
    assert_non_null(p);
    protobuf_c_message_pack(&o->base, p);
    f->rq.value = p;
    f->rq.now_ms = NOW_MS;
    f->rq.uid = uid_a;
    if (f->stored.value) {
        f->rq.old_value = f->stored.value;
        f->rq.old_value_len = f->stored.value_len;
        f->rq.old_mod_revision = 7;
    }
}

static int admit(fix *f, const char *yaml)
{
    req(f, yaml);
    return obj_admit(&f->rq, &f->a, &f->res);
}

/* Admits yaml, which must pass, and makes it the stored object. */
static void store(fix *f, const char *yaml)
{
    int rc = admit(f, yaml);
    if (rc)
        fail_msg("refused (%d): %s", f->res.code, f->res.message);
    f->stored = f->res;
}

static void refused(fix *f, const char *yaml, obj_admit_code code,
                    const char *msg)
{
    assert_int_equal(admit(f, yaml), OBJ_EINVALID);
    assert_int_equal(f->res.code, code);
    if (msg)
        assert_string_equal(f->res.message, msg);
}

static const Skiffpb__V1__ObjectMeta *meta(const fix *f)
{
    return obj_object_meta(f->stored.object);
}

static void test_mark_set_once(void **state)
{
    (void)state;
    fix f = {0};
    store(&f, DEP("  finalizers: [example.com/hold]\n"));
    assert_null(meta(&f)->deletion_timestamp);
    /* Setting it: the stored time is the request's, not the writer's. */
    store(&f, DEP("  finalizers: [example.com/hold]\n" MARK));
    assert_string_equal(meta(&f)->deletion_timestamp, NOW);
    assert_true(meta(&f)->has_deletion_grace_period_seconds);
    assert_int_equal(meta(&f)->deletion_grace_period_seconds, 0);
    /* The same value again: accepted. */
    store(&f, DEP("  finalizers: [example.com/hold]\n"
                  "  deletionTimestamp: \"" NOW "\"\n"));
    assert_string_equal(meta(&f)->deletion_timestamp, NOW);
    /* Another value: refused. */
    refused(&f, DEP("  finalizers: [example.com/hold]\n" MARK),
            OBJ_ADMIT_INVALID,
            "Deployment.apps \"web\" is invalid: metadata.deletionTimestamp: "
            "Invalid value: \"2000-01-01T00:00:00Z\": field is immutable; it "
            "is set once, when deletion starts");
    /* Left out: kept, never cleared (no resurrection by update). */
    store(&f, DEP("  finalizers: [example.com/hold]\n"
                  "  labels: {x: \"1\"}\n"));
    assert_string_equal(meta(&f)->deletion_timestamp, NOW);
    cm_arena_free(&f.a);
}

static void test_finalizers_while_deleting(void **state)
{
    (void)state;
    fix f = {0};
    store(&f, DEP("  finalizers: [a.io/x, b.io/y]\n"));
    store(&f, DEP("  finalizers: [a.io/x, b.io/y]\n" MARK));
    /* Removing one: accepted. */
    store(&f, DEP("  finalizers: [b.io/y]\n"));
    assert_int_equal(meta(&f)->n_finalizers, 1);
    /* Adding one: refused, even a GC finalizer after the marking update. */
    refused(&f, DEP("  finalizers: [b.io/y, c.io/z]\n"), OBJ_ADMIT_INVALID,
            "Deployment.apps \"web\" is invalid: metadata.finalizers: "
            "Forbidden: no new finalizers can be added if the object is "
            "being deleted, found new finalizers []string{\"c.io/z\"}");
    refused(&f, DEP("  finalizers: [b.io/y, foregroundDeletion]\n"),
            OBJ_ADMIT_INVALID, NULL);
    /* Removing the last: accepted; the mark stays. */
    store(&f, DEP(""));
    assert_int_equal(meta(&f)->n_finalizers, 0);
    assert_non_null(meta(&f)->deletion_timestamp);
    cm_arena_free(&f.a);
}

static void test_gc_finalizers_with_mark(void **state)
{
    (void)state;
    fix f = {0};
    store(&f, DEP(""));
    /* foregroundDeletion with the mark: accepted. */
    store(&f, DEP("  finalizers: [foregroundDeletion]\n" MARK));
    assert_string_equal(meta(&f)->finalizers[0], "foregroundDeletion");
    fix g = {0};
    store(&g, DEP(""));
    store(&g, DEP("  finalizers: [orphan]\n" MARK));
    /* Another finalizer with the mark: refused. */
    fix h = {0};
    store(&h, DEP(""));
    refused(&h, DEP("  finalizers: [orphan, example.com/hold]\n" MARK),
            OBJ_ADMIT_INVALID, NULL);
    /* Both GC finalizers: refused. */
    refused(&h, DEP("  finalizers: [orphan, foregroundDeletion]\n" MARK),
            OBJ_ADMIT_INVALID,
            "Deployment.apps \"web\" is invalid: metadata.finalizers: "
            "Invalid value: \"orphan\": cannot be both set with "
            "\"foregroundDeletion\"");
    /* Without the mark, finalizers are free to change. */
    store(&h, DEP("  finalizers: [example.com/hold]\n"));
    store(&h, DEP("  finalizers: [example.com/other]\n"));
    cm_arena_free(&f.a);
    cm_arena_free(&g.a);
    cm_arena_free(&h.a);
}

static void test_no_resurrection_by_create(void **state)
{
    (void)state;
    fix f = {0};
    /* A read-back copy of a terminating object whose original is gone. */
    refused(&f,
            DEP("  uid: 11111111-2222-4333-8444-555555555555\n"
                "  resourceVersion: \"12\"\n" MARK),
            OBJ_ADMIT_NOT_FOUND, "deployments.apps \"web\" not found");
    /* A manifest that merely carries a mark: created, mark dropped. */
    store(&f, DEP(MARK));
    assert_null(meta(&f)->deletion_timestamp);
    cm_arena_free(&f.a);
}

static void test_admit_delete(void **state)
{
    (void)state;
    fix f = {0};
    obj_admit_res res;
    obj_admit_req rq = {.key = KEY};
    /* Nothing stored: admitted. */
    assert_int_equal(obj_admit_delete(&rq, &f.a, &res), 0);
    assert_int_equal(res.code, OBJ_ADMIT_OK);
    /* No finalizers: admitted. */
    store(&f, DEP(""));
    rq.old_value = f.stored.value;
    rq.old_value_len = f.stored.value_len;
    assert_int_equal(obj_admit_delete(&rq, &f.a, &res), 0);
    /* Marked, finalizers gone: admitted (the GC's final delete). */
    store(&f, DEP("  finalizers: [foregroundDeletion]\n" MARK));
    store(&f, DEP(""));
    rq.old_value = f.stored.value;
    rq.old_value_len = f.stored.value_len;
    assert_int_equal(obj_admit_delete(&rq, &f.a, &res), 0);
    /* Finalizers: refused, marked or not. */
    fix g = {0};
    store(&g, DEP("  finalizers: [example.com/hold, b.io/y]\n"));
    rq.old_value = g.stored.value;
    rq.old_value_len = g.stored.value_len;
    assert_int_equal(obj_admit_delete(&rq, &g.a, &res), OBJ_EINVALID);
    assert_int_equal(res.code, OBJ_ADMIT_CONFLICT);
    assert_string_equal(res.message,
                        "Operation cannot be fulfilled on deployments.apps "
                        "\"web\": the object has finalizers [example.com/hold "
                        "b.io/y]; it is deleted by setting "
                        "metadata.deletionTimestamp and removed once they are "
                        "gone");
    store(&g, DEP("  finalizers: [example.com/hold]\n" MARK));
    rq.old_value = g.stored.value;
    rq.old_value_len = g.stored.value_len;
    assert_int_equal(obj_admit_delete(&rq, &g.a, &res), OBJ_EINVALID);
    /* A raw value that is no object: admitted. */
    rq.old_value = "raw";
    rq.old_value_len = 3;
    assert_int_equal(obj_admit_delete(&rq, &g.a, &res), 0);
    cm_arena_free(&f.a);
    cm_arena_free(&g.a);
}

/* Every allocation failure of a marking update is a clean error. */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        fix f = {0};
        store(&f, DEP("  finalizers: [example.com/hold]\n"));
        req(&f, DEP("  finalizers: [example.com/hold]\n" MARK));
        tu_alloc_fail_after(n);
        int rc = obj_admit(&f.rq, &f.a, &f.res);
        tu_alloc_fail_after(-1);
        cm_arena_free(&f.a);
        if (rc == 0)
            break;
        assert_true(rc == -ENOMEM || rc == OBJ_EINVALID);
        assert_true(n < 10000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mark_set_once, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_finalizers_while_deleting,
                                        otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_gc_finalizers_with_mark, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_no_resurrection_by_create,
                                        otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_admit_delete, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, otu_setup,
                                        otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
