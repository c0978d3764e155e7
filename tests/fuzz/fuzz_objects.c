/*
 * libFuzzer target: apply's path through api/objects.  Arbitrary bytes are
 * decoded as a YAML manifest; every object that decodes is encoded back to
 * YAML, which must decode to an equal object, then defaulted, validated and
 * encoded (YAML and JSON) again.  Nothing may crash, leak or read out of
 * bounds, and the round trip must hold for every input the decoder takes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "objects.h"

static void uid(void *data, char *buf, size_t cap)
{
    (void)data;
    snprintf(buf, cap, "00000000-0000-4000-8000-000000000000");
}

static void now(void *data, char *buf, size_t cap)
{
    (void)data;
    snprintf(buf, cap, "2026-01-01T00:00:00Z");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const obj_defaults_env env = {NULL, uid, now};
    cm_arena a = {.chunk_sz = 4096};
    obj_object **objs;
    size_t n;
    obj_error err;
    char msg[OBJ_PATH_MAX + OBJ_MSG_MAX + 64];
    if (obj_yaml_decode(data, size, &a, &objs, &n, &err)) {
        obj_error_format(&err, "fuzz.yaml", msg, sizeof msg);
        cm_arena_free(&a);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        cm_buf b = {0};
        obj_object **back;
        size_t m;
        if (obj_yaml_encode(objs[i], &b))
            abort();
        if (obj_yaml_decode(b.base, b.len, &a, &back, &m, &err) || m != 1 ||
            !obj_object_equal(objs[i], back[0]))
            abort();
        if (obj_defaults(objs[i], &env, &a))
            abort();
        if (obj_validate(objs[i], &err))
            obj_error_format(&err, NULL, msg, sizeof msg);
        cm_buf_reset(&b);
        if (obj_yaml_encode(objs[i], &b) || obj_json_encode(objs[i], &b))
            abort();
        char key[600];
        obj_object_key(objs[i], key, sizeof key);
        cm_buf_free(&b);
    }
    cm_arena_free(&a);
    return 0;
}
