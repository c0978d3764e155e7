/*
 * ctl_obj: one decoded store value.  Each object has its own arena that
 * holds the copy of the key and value and every message protobuf-c
 * decodes, so an object is one unit of memory that lives exactly as long
 * as its references.  Objects are immutable after decoding: the cache,
 * handlers and work items share them, as client-go shares cache objects.
 */
#include "informer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Splits "/registry/<resource>/[<ns>/]<name>" (in the arena copy `k`,
 * which it cuts with NULs) into namespace and name. */
static int split_key(char *k, size_t len, const char **ns, const char **name)
{
    static const char reg[] = "/registry/";
    if (len <= sizeof reg - 1 || memcmp(k, reg, sizeof reg - 1) != 0)
        return -EINVAL;
    char *res = k + sizeof reg - 1;
    char *s1 = strchr(res, '/');
    if (!s1 || s1 == res || !s1[1])
        return -EINVAL;
    char *rest = s1 + 1;
    char *s2 = strchr(rest, '/');
    if (!s2) { /* cluster-scoped */
        *ns = "";
        *name = rest;
        return 0;
    }
    if (s2 == rest || !s2[1] || strchr(s2 + 1, '/'))
        return -EINVAL;
    *s2 = 0;
    *ns = rest;
    *name = s2 + 1;
    return 0;
}

int ctl_obj_decode(const skiff_kv *kv, const obj_kind *want, ctl_obj **out)
{
    int rc = -ENOMEM;
    *out = NULL;
    if (!kv || !kv->key_len)
        return -EINVAL;
    ctl_obj *o = cm_calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    /* Decoding expands a value several times over; sizing the chunk from
     * it keeps small objects in one small chunk. */
    o->arena.chunk_sz = 2 * kv->key_len + 4 * kv->value_len + 512;
    o->refs = 1;
    char *key = cm_arena_alloc(&o->arena, kv->key_len + 1);
    char *split = cm_arena_alloc(&o->arena, kv->key_len + 1);
    uint8_t *raw = cm_arena_alloc(&o->arena, kv->value_len + 1);
    if (!key || !split || !raw)
        goto err;
    memcpy(key, kv->key, kv->key_len);
    key[kv->key_len] = 0;
    memcpy(split, key, kv->key_len + 1);
    if (kv->value_len)
        memcpy(raw, kv->value, kv->value_len);
    rc = -EINVAL;
    if (strlen(key) != kv->key_len ||
        split_key(split, kv->key_len, &o->ns, &o->name))
        goto err;
    o->key = key;
    o->raw = raw;
    o->raw_len = kv->value_len;
    o->create_revision = kv->create_revision;
    o->mod_revision = kv->mod_revision;
    o->version = kv->version;
    ProtobufCAllocator pa = {.alloc = cm_arena_pb_alloc,
                             .free = cm_arena_pb_free,
                             .allocator_data = &o->arena};
    obj_object *ob = skiffpb__v1__object__unpack(&pa, o->raw_len, o->raw);
    if (!ob)
        goto err; /* protobuf-c cannot tell ENOMEM from bad input */
    o->obj = ob;
    o->kind = obj_kind_get(ob);
    Skiffpb__V1__ObjectMeta *meta = obj_object_meta(ob);
    if (!o->kind || !meta || (want && o->kind != want))
        goto err;
    /* resourceVersion is the key's mod_revision (the API server's rule):
     * whatever the writer stored there is stale by definition. */
    char rv[24];
    snprintf(rv, sizeof rv, "%" PRId64, kv->mod_revision);
    rc = -ENOMEM;
    meta->resource_version = cm_arena_memdup(&o->arena, rv, strlen(rv) + 1);
    if (!meta->resource_version)
        goto err;
    o->meta = meta;
    *out = o;
    return 0;
err:
    cm_arena_free(&o->arena);
    cm_free(o);
    return rc;
}

ctl_obj *ctl_obj_ref(const ctl_obj *o)
{
    ctl_obj *m = (ctl_obj *)o; /* the count is not part of the value */
    m->refs++;
    return m;
}

void ctl_obj_unref(const ctl_obj *o)
{
    if (!o)
        return;
    ctl_obj *m = (ctl_obj *)o;
    if (--m->refs > 0)
        return;
    cm_arena_free(&m->arena);
    cm_free(m);
}
