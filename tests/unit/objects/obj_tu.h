/*
 * Helpers shared by the objects suites: the counting-allocator fixture,
 * reading the example manifests, and decoding a YAML string in one call.
 * Header-only because skiff_test builds each suite from one source.
 */
#ifndef SKIFF_OBJ_TU_H
#define SKIFF_OBJ_TU_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objects.h"
#include "tu.h"

/* The seed manifests, in examples/manifests/, and how many objects each
 * holds. */
static const struct otu_seed {
    const char *file;
    size_t n;
} otu_seeds[] = {
    {"01-deployment.yaml", 1},         {"02-daemonset.yaml", 1},
    {"03-statefulset.yaml", 1},        {"04-pod-nodeselector.yaml", 1},
    {"05-pod-affinity.yaml", 1},       {"06-pod-toleration.yaml", 1},
    {"07-qos-pods.yaml", 3},           {"08-pod-probes.yaml", 1},
    {"09-pod-probe-kinds.yaml", 1},    {"10-hpa.yaml", 1},
    {"11-deployment-for-hpa.yaml", 1},
};
#define OTU_N_SEEDS (sizeof otu_seeds / sizeof *otu_seeds)

static inline int otu_setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static inline int otu_teardown(void **state)
{
    (void)state;
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

/* A whole example manifest, malloc'd (libc, not counted); free() it. */
static inline char *otu_read(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", OBJ_MANIFEST_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Decodes yaml, which must hold exactly one object. */
static inline obj_object *otu_one(cm_arena *a, const char *yaml)
{
    obj_object **objs;
    size_t n;
    obj_error err;
    char msg[600];
    int rc = obj_yaml_decode(yaml, strlen(yaml), a, &objs, &n, &err);
    if (rc)
        fail_msg("decode: %s",
                 obj_error_format(&err, "t.yaml", msg, sizeof msg));
    assert_int_equal(n, 1);
    return objs[0];
}

/* Decodes yaml expecting failure; the formatted error, as "t.yaml:..". */
static inline const char *otu_decode_err(const char *yaml)
{
    static char msg[600];
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    obj_error err;
    int rc = obj_yaml_decode(yaml, strlen(yaml), &a, &objs, &n, &err);
    cm_arena_free(&a);
    if (rc != OBJ_EDECODE)
        fail_msg("decode of <<%s>> gave %d, not OBJ_EDECODE", yaml, rc);
    return obj_error_format(&err, "t.yaml", msg, sizeof msg);
}

static inline void otu_uid(void *data, char *buf, size_t cap)
{
    (void)data;
    snprintf(buf, cap, "0b7c1f0e-0000-4000-8000-000000000001");
}

static inline void otu_now(void *data, char *buf, size_t cap)
{
    (void)data;
    snprintf(buf, cap, "2026-01-02T03:04:05Z");
}

static const obj_defaults_env otu_env = {NULL, otu_uid, otu_now};

#endif
