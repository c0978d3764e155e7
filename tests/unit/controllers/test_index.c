/*
 * The indexer (controllers/index.c) and object decoding (obj.c): lookups
 * by key, namespace, label and a field index through updates that move
 * objects between buckets; decode rules; out-of-memory at every
 * allocation of an insertion leaves the indexer unchanged.
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

#include "informer.h"
#include "pods.h"
#include "tu.h"

#define NODE_INDEX "spec.nodeName"

typedef struct fx {
    ctl_indexer *ix;
} fx;

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    if (ctl_indexer_create(&f->ix))
        return -1;
    if (ctl_indexer_add_index(f->ix, NODE_INDEX, ctl_index_pod_node_name, NULL))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ctl_indexer_destroy(f->ix);
    free(f);
    assert_int_equal(tu_alloc_uninstall(), 0);
    return 0;
}

static ctl_obj *mk(const char *ns, const char *name, const char *l1,
                   const char *l2, const char *node, int64_t rev)
{
    size_t len;
    uint8_t *v = pod_pack(ns, name, l1, l2, node, NULL, &len);
    char key[256];
    snprintf(key, sizeof key, "/registry/pods/%s/%s", ns, name);
    skiff_kv kv = {.key = (const uint8_t *)key,
                   .key_len = strlen(key),
                   .value = v,
                   .value_len = len,
                   .create_revision = rev,
                   .mod_revision = rev,
                   .version = 1};
    ctl_obj *o = NULL;
    int rc = ctl_obj_decode(&kv, obj_kind_find("Pod"), &o);
    free(v);
    assert_int_equal(rc, 0);
    return o;
}

static void put(fx *f, ctl_obj *o)
{
    assert_int_equal(ctl_indexer_put(f->ix, o, NULL), 0);
    ctl_obj_unref(o);
}

static long count(fx *f, const char *index, const char *value)
{
    return ctl_indexer_by_index(f->ix, index, value, NULL, NULL);
}

static void collect_names(const ctl_obj *o, void *arg)
{
    char *buf = arg;
    strcat(buf, o->name);
    strcat(buf, ",");
}

static void test_decode(void **state)
{
    (void)state;
    ctl_obj *o = mk("default", "web-0", "app=web", "tier=fe", "n1", 42);
    assert_string_equal(o->key, "/registry/pods/default/web-0");
    assert_string_equal(o->ns, "default");
    assert_string_equal(o->name, "web-0");
    assert_ptr_equal(o->kind, obj_kind_find("Pod"));
    assert_string_equal(o->meta->name, "web-0");
    /* resourceVersion is the mod_revision, as the API server says it. */
    assert_string_equal(o->meta->resource_version, "42");
    assert_string_equal(o->obj->pod->spec->node_name, "n1");
    assert_ptr_equal(ctl_obj_ref(o), o);
    ctl_obj_unref(o);
    ctl_obj_unref(o);

    size_t len;
    uint8_t *v = pod_pack("default", "x", NULL, NULL, NULL, NULL, &len);
    ctl_obj *bad;
    skiff_kv kv = {.key = (const uint8_t *)"/registry/pods/default/x",
                   .key_len = 24,
                   .value = v,
                   .value_len = len};
    /* Another kind than asked for. */
    assert_int_equal(ctl_obj_decode(&kv, obj_kind_find("Node"), &bad), -EINVAL);
    /* Keys outside the registry layout. */
    const char *keys[] = {"/registry/pods/a/b/c", "/other/pods/a/b",
                          "/registry/pods/", "/registry/pods/a/", "x"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        kv.key = (const uint8_t *)keys[i];
        kv.key_len = strlen(keys[i]);
        assert_int_equal(ctl_obj_decode(&kv, NULL, &bad), -EINVAL);
    }
    /* A cluster-scoped key has no namespace. */
    kv.key = (const uint8_t *)"/registry/pods/x";
    kv.key_len = 16;
    assert_int_equal(ctl_obj_decode(&kv, NULL, &bad), 0);
    assert_string_equal(bad->ns, "");
    ctl_obj_unref(bad);
    /* Not an Object, and an empty one. */
    kv.key = (const uint8_t *)"/registry/pods/default/x";
    kv.key_len = 24;
    kv.value = (const uint8_t *)"\xff\xff\xff";
    kv.value_len = 3;
    assert_int_equal(ctl_obj_decode(&kv, NULL, &bad), -EINVAL);
    kv.value_len = 0;
    assert_int_equal(ctl_obj_decode(&kv, NULL, &bad), -EINVAL);
    free(v);
}

static void test_indexes(void **state)
{
    fx *f = *state;
    put(f, mk("default", "a", "app=web", "tier=fe", "n1", 2));
    put(f, mk("default", "b", "app=web", NULL, "n2", 3));
    put(f, mk("kube-system", "c", "app=dns", NULL, "n1", 4));
    put(f, mk("default", "d", NULL, NULL, NULL, 5));
    assert_int_equal(ctl_indexer_len(f->ix), 4);
    assert_int_equal(count(f, CTL_INDEX_NAMESPACE, "default"), 3);
    assert_int_equal(count(f, CTL_INDEX_NAMESPACE, "kube-system"), 1);
    assert_int_equal(count(f, CTL_INDEX_NAMESPACE, "other"), 0);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "app=web"), 2);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "tier=fe"), 1);
    assert_int_equal(count(f, NODE_INDEX, "n1"), 2);
    assert_int_equal(count(f, NODE_INDEX, ""), 1); /* unscheduled */
    assert_int_equal(count(f, "nope", "x"), -ENOENT);
    char names[64] = "";
    assert_int_equal(
        ctl_indexer_by_index(f->ix, NODE_INDEX, "n2", collect_names, names), 1);
    assert_string_equal(names, "b,");

    /* An update moves the object between buckets. */
    put(f, mk("default", "a", "app=api", NULL, "n2", 6));
    assert_int_equal(ctl_indexer_len(f->ix), 4);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "app=web"), 1);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "app=api"), 1);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "tier=fe"), 0);
    assert_int_equal(count(f, NODE_INDEX, "n1"), 1);
    assert_int_equal(count(f, NODE_INDEX, "n2"), 2);
    assert_int_equal(count(f, CTL_INDEX_NAMESPACE, "default"), 3);
    const ctl_obj *a = ctl_indexer_get(f->ix, "/registry/pods/default/a");
    assert_non_null(a);
    assert_int_equal(a->mod_revision, 6);

    /* put hands back the replaced version. */
    ctl_obj *old;
    ctl_obj *nb = mk("default", "b", "app=web", NULL, "n2", 7);
    assert_int_equal(ctl_indexer_put(f->ix, nb, &old), 0);
    assert_non_null(old);
    assert_int_equal(old->mod_revision, 3);
    ctl_obj_unref(old);
    ctl_obj_unref(nb);

    /* An object is in one indexer at a time. */
    assert_int_equal(ctl_indexer_put(f->ix, (ctl_obj *)a, NULL), -EINVAL);

    ctl_obj *gone = ctl_indexer_del(f->ix, "/registry/pods/kube-system/c");
    assert_non_null(gone);
    ctl_obj_unref(gone);
    assert_null(ctl_indexer_del(f->ix, "/registry/pods/kube-system/c"));
    assert_int_equal(count(f, CTL_INDEX_NAMESPACE, "kube-system"), 0);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "app=dns"), 0);
    assert_int_equal(ctl_indexer_len(f->ix), 3);
    /* Indexes are fixed once objects are in. */
    assert_int_equal(
        ctl_indexer_add_index(f->ix, "late", ctl_index_pod_node_name, NULL),
        -EBUSY);
    assert_int_equal(
        ctl_indexer_add_index(f->ix, NODE_INDEX, ctl_index_pod_node_name, NULL),
        -EBUSY);
}

/* A caller's reference outlives the object's removal from the cache. */
static void test_refs(void **state)
{
    fx *f = *state;
    put(f, mk("default", "a", NULL, NULL, NULL, 2));
    const ctl_obj *a = ctl_indexer_get(f->ix, "/registry/pods/default/a");
    ctl_obj *kept = ctl_obj_ref(a);
    put(f, mk("default", "a", NULL, NULL, NULL, 3));
    assert_int_equal(kept->mod_revision, 2);
    assert_string_equal(kept->meta->name, "a");
    ctl_obj_unref(kept);
}

/* Out of memory at each allocation of an insertion (new buckets, map
 * growth, index values): -ENOMEM and the indexer as it was. */
static void test_oom(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        put(f, mk("default", name, "app=web", NULL, "n1", i + 2));
    }
    for (long n = 0;; n++) {
        long before = tu_alloc_outstanding();
        ctl_obj *o =
            mk(n % 2 ? "default" : "ns2", "p3", "app=new", "x=y", "n9", 100);
        tu_alloc_fail_after(n);
        int rc = ctl_indexer_put(f->ix, o, NULL);
        tu_alloc_fail_after(-1);
        ctl_obj_unref(o);
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(tu_alloc_outstanding(), before);
        assert_int_equal(ctl_indexer_len(f->ix), 20);
        assert_int_equal(count(f, CTL_INDEX_LABEL, "app=web"), 20);
        assert_int_equal(count(f, CTL_INDEX_LABEL, "app=new"), 0);
        assert_int_equal(count(f, NODE_INDEX, "n9"), 0);
        assert_int_equal(count(f, CTL_INDEX_NAMESPACE, "ns2"), 0);
        assert_true(n < 200);
    }
    assert_int_equal(count(f, CTL_INDEX_LABEL, "app=web"), 19);
    assert_int_equal(count(f, CTL_INDEX_LABEL, "app=new"), 1);
    assert_int_equal(count(f, NODE_INDEX, "n9"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
