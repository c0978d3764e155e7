/*
 * Deleting and updating one object by compare-and-swap: the client side
 * of Kubernetes' DELETE with a propagation policy, and the read-modify-
 * write loop every controller write uses.
 *
 * Each attempt reads the key (linearizable), decodes the value into a
 * fresh arena, decides, and sends one txn guarded by "mod_revision is
 * still the one read".  A lost compare means someone wrote in between, so
 * the next attempt starts from a new read; nothing is ever written from a
 * stale copy.  The deletion mark itself is stamped by the server's
 * admission (the time sent here is only a request to set it), and the
 * server refuses to delete outright an object that still has finalizers,
 * so a client that skips these rules cannot bypass them.
 */
#include "delete.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admit.h"

#define DEFAULT_RETRIES 5

typedef struct stored {
    obj_object *obj;
    Skiffpb__V1__ObjectMeta *md;
    int64_t mod_revision;
    int64_t lease;
} stored;

static void set_err(char *errmsg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errmsg, size_t cap, const char *fmt, ...)
{
    if (!errmsg || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, cap, fmt, ap);
    va_end(ap);
}

/* The client's failure as a message: the server's text when it sent
 * one. */
static int client_err(skiff_client *c, int rc, const skiff_result *res,
                      const char *what, const char *key, char *errmsg,
                      size_t cap)
{
    set_err(errmsg, cap, "%s %s: %s", what, key,
            res && res->error_message ? res->error_message
                                      : skiff_client_errmsg(c));
    return rc;
}

/* Reads key into s (arena a).  0 found, 1 absent, or an error. */
static int read_obj(skiff_client *c, const char *key, cm_arena *a, stored *s,
                    char *errmsg, size_t cap)
{
    skiff_result res = {0};
    int rc = skiff_get(c, key, strlen(key), &res);
    if (rc) {
        rc = client_err(c, rc, &res, "reading", key, errmsg, cap);
        skiff_result_free(&res);
        return rc;
    }
    if (!res.n_kvs) {
        skiff_result_free(&res);
        return 1;
    }
    const skiff_kv *kv = &res.kvs[0];
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, a};
    s->obj = (obj_object *)protobuf_c_message_unpack(
        &skiffpb__v1__object__descriptor, &al, kv->value_len, kv->value);
    s->md = s->obj && obj_kind_get(s->obj) ? obj_object_meta(s->obj) : NULL;
    s->mod_revision = kv->mod_revision;
    s->lease = kv->lease;
    skiff_result_free(&res);
    if (!s->md) {
        set_err(errmsg, cap, "%s does not hold an object", key);
        return -EINVAL;
    }
    return 0;
}

/* One txn guarded by mod_revision == rev: put (value non-NULL) or delete.
 * 0 when it applied, 1 when the compare failed, or an error. */
static int cas(skiff_client *c, const char *key, int64_t rev,
               const obj_object *value, int64_t lease, cm_arena *a,
               char *errmsg, size_t cap)
{
    size_t klen = strlen(key);
    skiff_cmp cmp = {.result = SKIFF_CMP_EQUAL,
                     .target = SKIFF_CMP_MOD,
                     .key = key,
                     .key_len = klen,
                     .number = rev};
    skiff_op op = {.type = SKIFF_OP_DELETE, .key = key, .key_len = klen};
    if (value) {
        size_t n = protobuf_c_message_get_packed_size(&value->base);
        uint8_t *buf = cm_arena_alloc(a, n ? n : 1);
        if (!buf)
            return -ENOMEM;
        protobuf_c_message_pack(&value->base, buf);
        op.type = SKIFF_OP_PUT;
        op.value = buf;
        op.value_len = n;
        op.lease = lease;
    }
    skiff_op txn = {.type = SKIFF_OP_TXN,
                    .cmps = &cmp,
                    .n_cmps = 1,
                    .success = &op,
                    .n_success = 1};
    skiff_result res = {0};
    int rc = skiff_do_sync(c, &txn, &res);
    if (rc == SKIFF_ECONFLICT) { /* admission saw the compare fail */
        skiff_result_free(&res);
        return 1;
    }
    if (rc) {
        rc = client_err(c, rc, &res, value ? "updating" : "deleting", key,
                        errmsg, cap);
        skiff_result_free(&res);
        return rc;
    }
    int ok = res.succeeded;
    skiff_result_free(&res);
    return ok ? 0 : 1;
}

static int add_finalizer(Skiffpb__V1__ObjectMeta *md, cm_arena *a,
                         const char *f)
{
    if (ctl_meta_has_finalizer(md, f))
        return 0;
    char **v = cm_arena_alloc(a, (md->n_finalizers + 1) * sizeof *v);
    char *s = cm_arena_memdup(a, f, strlen(f) + 1);
    if (!v || !s)
        return -ENOMEM;
    if (md->n_finalizers)
        memcpy(v, md->finalizers, md->n_finalizers * sizeof *v);
    v[md->n_finalizers++] = s;
    md->finalizers = v;
    return 0;
}

/* ---- public -------------------------------------------------------------- */

int ctl_propagation_parse(const char *s, ctl_propagation *out)
{
    if (!s)
        return -EINVAL;
    if (!strcmp(s, "background") || !strcmp(s, "true"))
        *out = CTL_PROPAGATION_BACKGROUND;
    else if (!strcmp(s, "foreground"))
        *out = CTL_PROPAGATION_FOREGROUND;
    else if (!strcmp(s, "orphan") || !strcmp(s, "false"))
        *out = CTL_PROPAGATION_ORPHAN;
    else
        return -EINVAL;
    return 0;
}

void ctl_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int ctl_meta_has_finalizer(const Skiffpb__V1__ObjectMeta *md, const char *f)
{
    for (size_t i = 0; i < md->n_finalizers; i++)
        if (md->finalizers[i] && !strcmp(md->finalizers[i], f))
            return 1;
    return 0;
}

int ctl_meta_remove_finalizer(Skiffpb__V1__ObjectMeta *md, const char *f)
{
    size_t j = 0;
    for (size_t i = 0; i < md->n_finalizers; i++)
        if (!md->finalizers[i] || strcmp(md->finalizers[i], f))
            md->finalizers[j++] = md->finalizers[i];
    int removed = j != md->n_finalizers;
    md->n_finalizers = j;
    return removed ? 0 : 1;
}

int ctl_delete_object(skiff_client *c, const char *key,
                      const ctl_delete_opts *opts, ctl_delete_outcome *out,
                      char *errmsg, size_t cap)
{
    static const ctl_delete_opts none = {0};
    if (!opts)
        opts = &none;
    if (!c || !key || strncmp(key, "/registry/", 10)) {
        set_err(errmsg, cap, "not a registry key");
        return -EINVAL;
    }
    int retries = opts->retries > 0 ? opts->retries : DEFAULT_RETRIES;
    for (int attempt = 0; attempt < retries; attempt++) {
        cm_arena a = {0};
        stored s;
        int rc = read_obj(c, key, &a, &s, errmsg, cap);
        if (rc == 1 || (rc == 0 && opts->uid &&
                        (!s.md->uid || strcmp(s.md->uid, opts->uid)))) {
            cm_arena_free(&a);
            *out = CTL_DELETE_ABSENT;
            return 0;
        }
        if (rc) {
            cm_arena_free(&a);
            return rc;
        }
        if (opts->mod_revision && s.mod_revision != opts->mod_revision) {
            cm_arena_free(&a);
            set_err(errmsg, cap, "%s changed since it was examined", key);
            return -EAGAIN;
        }
        const obj_object *put = NULL;
        if (s.md->deletion_timestamp && s.md->n_finalizers) {
            /* Being deleted already: the finalizers' owners finish it. */
            cm_arena_free(&a);
            *out = CTL_DELETE_MARKED;
            return 0;
        }
        if (!s.md->deletion_timestamp &&
            (s.md->n_finalizers ||
             opts->propagation != CTL_PROPAGATION_BACKGROUND)) {
            char now[32];
            ctl_format_time(cm_now_ms(), now, sizeof now);
            s.md->deletion_timestamp =
                cm_arena_memdup(&a, now, strlen(now) + 1);
            rc = s.md->deletion_timestamp ? 0 : -ENOMEM;
            if (!rc && opts->propagation == CTL_PROPAGATION_FOREGROUND)
                rc = add_finalizer(s.md, &a, OBJ_FINALIZER_FOREGROUND);
            else if (!rc && opts->propagation == CTL_PROPAGATION_ORPHAN)
                rc = add_finalizer(s.md, &a, OBJ_FINALIZER_ORPHAN);
            if (rc) {
                cm_arena_free(&a);
                set_err(errmsg, cap, "out of memory");
                return rc;
            }
            s.md->resource_version = NULL;
            put = s.obj;
        }
        rc = cas(c, key, s.mod_revision, put, s.lease, &a, errmsg, cap);
        cm_arena_free(&a);
        if (rc == 1)
            continue;
        if (rc)
            return rc;
        *out = put ? CTL_DELETE_MARKED : CTL_DELETE_GONE;
        return 0;
    }
    set_err(errmsg, cap, "%s: the object kept changing", key);
    return -EAGAIN;
}

int ctl_update_object(skiff_client *c, const char *key, const char *uid,
                      ctl_mutate_fn mutate, void *arg, int *written,
                      char *errmsg, size_t cap)
{
    if (written)
        *written = 0;
    if (!c || !key || !mutate || strncmp(key, "/registry/", 10)) {
        set_err(errmsg, cap, "not a registry key");
        return -EINVAL;
    }
    for (int attempt = 0; attempt < DEFAULT_RETRIES; attempt++) {
        cm_arena a = {0};
        stored s;
        int rc = read_obj(c, key, &a, &s, errmsg, cap);
        if (rc == 1 ||
            (rc == 0 && uid && (!s.md->uid || strcmp(s.md->uid, uid)))) {
            cm_arena_free(&a);
            return 0;
        }
        if (!rc) {
            rc = mutate(s.obj, &a, arg);
            s.md = obj_object_meta(s.obj);
        }
        if (rc == 1) {
            cm_arena_free(&a);
            return 0;
        }
        if (!rc) {
            s.md->resource_version = NULL;
            rc = cas(c, key, s.mod_revision, s.obj, s.lease, &a, errmsg, cap);
        }
        cm_arena_free(&a);
        if (rc == 1)
            continue;
        if (rc)
            return rc;
        if (written)
            *written = 1;
        return 0;
    }
    set_err(errmsg, cap, "%s: the object kept changing", key);
    return -EAGAIN;
}
