/*
 * Admission inside skiffd: a write under /registry/ is decoded, defaulted
 * and validated before it is proposed.  A refused object gets
 * INVALID_ARGUMENT with Kubernetes' message and nothing is written; an
 * admitted one is stored with the server-set metadata (uid,
 * creationTimestamp, generation) and its defaults; other keys are left
 * alone.  A create guarded by a compare that already fails is a
 * conflict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "objects.h"
#include "srv.h"

static const char *skiffd;

static const char *DEPLOY =
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata:\n"
    "  name: web\n"
    "spec:\n"
    "  replicas: %d\n"
    "  selector:\n"
    "    matchLabels: {app: web}\n"
    "  template:\n"
    "    metadata:\n"
    "      labels: {app: web}\n"
    "    spec:\n"
    "      containers:\n"
    "      - name: web\n"
    "        image: nginx:1.25\n";

/* The packed Object of DEPLOY with `replicas`, in *out (malloc'ed). */
static size_t packed_deploy(int replicas, uint8_t **out)
{
    char y[1024];
    snprintf(y, sizeof y, DEPLOY, replicas);
    cm_arena a = {.chunk_sz = 65536};
    obj_object **objs;
    size_t n;
    obj_error err;
    assert_int_equal(obj_yaml_decode(y, strlen(y), &a, &objs, &n, &err), 0);
    assert_int_equal(n, 1);
    size_t len = skiffpb__v1__object__get_packed_size(objs[0]);
    *out = malloc(len);
    skiffpb__v1__object__pack(objs[0], *out);
    cm_arena_free(&a);
    return len;
}

static Skiffpb__Response *put_raw(int fd, const char *key, const uint8_t *v,
                                  size_t len)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = bin_of(key);
    p.value.data = (uint8_t *)v;
    p.value.len = len;
    r.body_case = SKIFFPB__REQUEST__BODY_PUT;
    r.put = &p;
    return cli_call(fd, &r);
}

static Skiffpb__Response *get_raw(int fd, const char *key)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__RangeRequest g = SKIFFPB__RANGE_REQUEST__INIT;
    g.key = bin_of(key);
    r.body_case = SKIFFPB__REQUEST__BODY_RANGE;
    r.range = &g;
    return cli_call(fd, &r);
}

static void test_admission(void **state)
{
    (void)state;
    srv s;
    memset(&s, 0, sizeof s);
    assert_int_equal(srv_spawn(&s, skiffd, 0, NULL), 0);
    int fd = cli_connect(s.port);
    assert_true(fd >= 0);
    const char *key = "/registry/deployments/default/web";

    /* Refused: negative replicas; nothing written. */
    uint8_t *bad;
    size_t blen = packed_deploy(-1, &bad);
    Skiffpb__Response *r = put_raw(fd, key, bad, blen);
    assert_non_null(r);
    assert_non_null(r->error);
    assert_int_equal(r->error->code, SKIFFPB__ERROR_CODE__INVALID_ARGUMENT);
    assert_non_null(strstr(r->error->message, "spec.replicas"));
    skiffpb__response__free_unpacked(r, NULL);
    r = get_raw(fd, key);
    assert_int_equal(r->range->n_kvs, 0);
    skiffpb__response__free_unpacked(r, NULL);
    free(bad);

    /* A key that does not match the object is refused too. */
    uint8_t *good;
    size_t glen = packed_deploy(2, &good);
    r = put_raw(fd, "/registry/deployments/default/other", good, glen);
    assert_non_null(r->error);
    assert_int_equal(r->error->code, SKIFFPB__ERROR_CODE__INVALID_ARGUMENT);
    skiffpb__response__free_unpacked(r, NULL);

    /* Admitted: stored with uid, creationTimestamp, generation 1 and the
     * Deployment defaults. */
    r = put_raw(fd, key, good, glen);
    assert_null(r->error);
    skiffpb__response__free_unpacked(r, NULL);
    r = get_raw(fd, key);
    assert_int_equal(r->range->n_kvs, 1);
    Skiffpb__V1__Object *o = skiffpb__v1__object__unpack(
        NULL, r->range->kvs[0]->value.len, r->range->kvs[0]->value.data);
    assert_non_null(o);
    const Skiffpb__V1__ObjectMeta *m = obj_object_meta(o);
    assert_non_null(m);
    assert_true(m->uid && strlen(m->uid) == 36);
    assert_true(m->creation_timestamp && m->creation_timestamp[0]);
    assert_true(m->has_generation && m->generation == 1);
    skiffpb__v1__object__free_unpacked(o, NULL);
    skiffpb__response__free_unpacked(r, NULL);

    /* A create racing an object that exists (a txn guarded by
     * create_revision == 0, no failure branch, another uid): a conflict to
     * retry, not an admission error about the uid it never saw. */
    {
        Skiffpb__V1__Object *mine =
            skiffpb__v1__object__unpack(NULL, glen, good);
        Skiffpb__V1__ObjectMeta *mm = (Skiffpb__V1__ObjectMeta *)
            obj_object_meta(mine);
        mm->uid = "00000000-0000-4000-8000-000000000000";
        size_t ml = skiffpb__v1__object__get_packed_size(mine);
        uint8_t *mb = malloc(ml);
        skiffpb__v1__object__pack(mine, mb);
        mm->uid = NULL; /* not the unpacker's memory */
        skiffpb__v1__object__free_unpacked(mine, NULL);
        Skiffpb__Compare cmp = SKIFFPB__COMPARE__INIT;
        cmp.key = bin_of(key);
        cmp.target = SKIFFPB__COMPARE__COMPARE_TARGET__CREATE;
        cmp.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_CREATE_REVISION;
        cmp.create_revision = 0;
        Skiffpb__Compare *cmps[1] = {&cmp};
        Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
        p.key = bin_of(key);
        p.value.data = mb;
        p.value.len = ml;
        Skiffpb__RequestOp op = SKIFFPB__REQUEST_OP__INIT;
        op.request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op.request_put = &p;
        Skiffpb__RequestOp *ops[1] = {&op};
        Skiffpb__TxnRequest t = SKIFFPB__TXN_REQUEST__INIT;
        t.n_compare = 1;
        t.compare = cmps;
        t.n_success = 1;
        t.success = ops;
        Skiffpb__Request q = SKIFFPB__REQUEST__INIT;
        q.body_case = SKIFFPB__REQUEST__BODY_TXN;
        q.txn = &t;
        r = cli_call(fd, &q);
        assert_non_null(r);
        assert_non_null(r->error);
        assert_int_equal(r->error->code, SKIFFPB__ERROR_CODE__CONFLICT);
        assert_non_null(strstr(r->error->message, "already exists"));
        skiffpb__response__free_unpacked(r, NULL);
        free(mb);
    }
    free(good);

    /* Keys outside /registry/ are not objects. */
    r = put_raw(fd, "plain", (const uint8_t *)"x", 1);
    assert_null(r->error);
    skiffpb__response__free_unpacked(r, NULL);
    close(fd);
    srv_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SKIFFD\n", argv[0]);
        return 2;
    }
    skiffd = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_admission)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
