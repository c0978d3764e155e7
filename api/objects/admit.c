/*
 * Admission: the API server's write path for one object, as a pure
 * function from (key, new bytes, old bytes) to the bytes to store.
 *
 * Kubernetes splits this over the REST strategies (PrepareForCreate,
 * PrepareForUpdate, ValidateUpdate), rest.BeforeCreate/BeforeUpdate and
 * the defaulting and validation functions.  Here the kind-independent
 * parts are done by reflection: every kind message has `metadata`, most
 * have `spec` and `status`, and "what the user owns" is every top-level
 * field but metadata and status.  So the status rule (a plain update never
 * changes status, a status update changes nothing else) and the
 * generation rule (bump when the user-owned part changed) are one field
 * copy and one comparison of protobuf encodings, for every kind alike.
 * The few kind-specific immutability rules follow Kubernetes' update
 * validation for apps/v1.
 *
 * Deletion follows Kubernetes' two phases: an object without finalizers
 * is deleted outright; one with finalizers is first marked by setting
 * metadata.deletionTimestamp (an ordinary update, stamped with the
 * request's time) and deleted by the garbage collector once every
 * finalizer is gone.  So once the mark is set it is never changed or
 * cleared, and finalizers may only be removed; the GC's own finalizers
 * (foregroundDeletion, orphan) may be added by the update that sets it.
 *
 * Decoded objects, defaults and the packed result all live in the caller's
 * arena, so nothing is freed here.
 */
#include "admit.h"

#include "objects_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct actx {
    const obj_admit_req *rq;
    cm_arena *a;
    obj_admit_res *out;
    const obj_kind *kind;
    char kg[96]; /* "Deployment.apps" */
    char name[OBJ_PATH_MAX];
} actx;

/* ---- helpers ------------------------------------------------------------- */

/* Refuses the write with code and a printf message.  Returns OBJ_EINVALID
 * so callers can `return refuse(...)`. */
static int refuse(actx *c, obj_admit_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(actx *c, obj_admit_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->out->code = code;
    vsnprintf(c->out->message, sizeof c->out->message, fmt, ap);
    va_end(ap);
    return OBJ_EINVALID;
}

/* Kubernetes' "field is immutable" and "is invalid" message shape. */
static int invalid(actx *c, const char *path, const char *detail)
{
    return refuse(c, OBJ_ADMIT_INVALID, "%s \"%s\" is invalid: %s: %s", c->kg,
                  c->name, path, detail);
}

static int unpack(actx *c, const void *p, size_t n, obj_object **out)
{
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, c->a};
    *out = (obj_object *)protobuf_c_message_unpack(
        &skiffpb__v1__object__descriptor, &al, n, p);
    /* protobuf-c cannot tell ENOMEM from malformed input; a malformed
     * value is the likelier and the safer answer (nothing is stored). */
    if (!*out || !obj_kind_get(*out) || !obj_object_meta(*out))
        return refuse(c, OBJ_ADMIT_BAD_REQUEST,
                      "the value at %s is not a skiff object with metadata",
                      c->rq->key);
    return 0;
}

/* Packs m into arena memory. */
static int pack(cm_arena *a, const ProtobufCMessage *m, uint8_t **p, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    *p = cm_arena_alloc(a, *n ? *n : 1);
    if (!*p)
        return -ENOMEM;
    protobuf_c_message_pack(m, *p);
    return 0;
}

/* Whether two messages (either may be NULL) encode the same. */
static int same_msg(cm_arena *a, const ProtobufCMessage *x,
                    const ProtobufCMessage *y, bool *same)
{
    if (!x || !y) {
        *same = x == y;
        return 0;
    }
    uint8_t *px, *py;
    size_t nx, ny;
    OBJ__TRY(pack(a, x, &px, &nx));
    OBJ__TRY(pack(a, y, &py, &ny));
    *same = nx == ny && !memcmp(px, py, nx);
    return 0;
}

/* Copies field f's storage (value, presence or count) from src to dst:
 * both are messages of f's type, so this is a shallow move of arena
 * pointers. */
static void copy_field(ProtobufCMessage *dst, const ProtobufCMessage *src,
                       const ProtobufCFieldDescriptor *f)
{
    size_t sz;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        *obj__field_count(dst, f) = *obj__field_count(src, f);
        sz = sizeof(void *);
    } else {
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE:
            sz = 8;
            break;
        case PROTOBUF_C_TYPE_BOOL:
            sz = sizeof(protobuf_c_boolean);
            break;
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_MESSAGE:
            sz = sizeof(void *);
            break;
        case PROTOBUF_C_TYPE_BYTES:
            sz = sizeof(ProtobufCBinaryData);
            break;
        default:
            sz = 4;
            break;
        }
        if (f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE && f->quantifier_offset)
            *(protobuf_c_boolean *)((char *)dst + f->quantifier_offset) =
                *(protobuf_c_boolean *)((char *)src + f->quantifier_offset);
    }
    memcpy(obj__field_ptr(dst, f), obj__field_ptr(src, f), sz);
}

/* Field `name` of the kind message m, or NULL when the kind has none. */
static const ProtobufCFieldDescriptor *kfield(const ProtobufCMessage *m,
                                              const char *name)
{
    return obj__field_by_name(m->descriptor, name);
}

/* Whether the user-owned part (every field but apiVersion, kind, metadata
 * and status) differs between two messages of one kind. */
static int user_part_changed(actx *c, const ProtobufCMessage *x,
                             const ProtobufCMessage *y, bool *changed)
{
    const ProtobufCMessageDescriptor *d = x->descriptor;
    ProtobufCMessage *cx = cm_arena_alloc(c->a, d->sizeof_message);
    ProtobufCMessage *cy = cm_arena_alloc(c->a, d->sizeof_message);
    if (!cx || !cy)
        return -ENOMEM;
    d->message_init(cx);
    d->message_init(cy);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!strcmp(f->name, "api_version") || !strcmp(f->name, "kind") ||
            !strcmp(f->name, "metadata") || !strcmp(f->name, "status"))
            continue;
        copy_field(cx, x, f);
        copy_field(cy, y, f);
    }
    bool same;
    OBJ__TRY(same_msg(c->a, cx, cy, &same));
    *changed = !same;
    return 0;
}

static void format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A selector as kubectl prints one ("app=a,tier in (x,y)"), for the
 * immutable-selector message. */
static void selector_str(const Skiffpb__V1__LabelSelector *s, char *buf,
                         size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
#define CAT(...)                                                               \
    do {                                                                       \
        int w_ = snprintf(buf + o, cap - o, __VA_ARGS__);                      \
        if (w_ < 0 || (size_t)w_ >= cap - o)                                   \
            return;                                                            \
        o += (size_t)w_;                                                       \
    } while (0)
    for (size_t i = 0; s && i < s->n_match_labels; i++)
        CAT("%s%s=%s", o ? "," : "", s->match_labels[i]->key,
            s->match_labels[i]->value);
    for (size_t i = 0; s && i < s->n_match_expressions; i++) {
        const Skiffpb__V1__LabelSelectorRequirement *r =
            s->match_expressions[i];
        CAT("%s%s %s (", o ? "," : "", r->key ? r->key : "",
            r->operator_ ? r->operator_ : "");
        for (size_t j = 0; j < r->n_values; j++)
            CAT("%s%s", j ? "," : "", r->values[j]);
        CAT(")");
    }
#undef CAT
}

/* ---- rules --------------------------------------------------------------- */

/* The key must be where this object lives (after namespace defaulting). */
static int check_key(actx *c, obj_object *o)
{
    char want[OBJ_PATH_MAX * 2];
    int rc = obj_object_key(o, want, sizeof want);
    if (rc == CM_EINVAL)
        return refuse(c, OBJ_ADMIT_INVALID,
                      "%s \"%s\" is invalid: metadata.name: Required value: "
                      "name or generateName is required",
                      c->kg, c->name);
    if (rc || strcmp(want, c->rq->key))
        return refuse(c, OBJ_ADMIT_BAD_REQUEST,
                      "the object (%s \"%s\") does not belong at key %s "
                      "(its key is %s)",
                      c->kg, c->name, c->rq->key, want);
    return 0;
}

/* Selector immutability of apps/v1 workloads, and the StatefulSet rule
 * that only replicas, template, updateStrategy and minReadySeconds may
 * change. */
static int check_immutable(actx *c, obj_object *n, obj_object *o)
{
    const Skiffpb__V1__LabelSelector *ns = NULL, *os = NULL;
    switch (n->object_case) {
    case SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT:
        ns = n->deployment->spec ? n->deployment->spec->selector : NULL;
        os = o->deployment->spec ? o->deployment->spec->selector : NULL;
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_REPLICA_SET:
        ns = n->replica_set->spec ? n->replica_set->spec->selector : NULL;
        os = o->replica_set->spec ? o->replica_set->spec->selector : NULL;
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_DAEMON_SET:
        ns = n->daemon_set->spec ? n->daemon_set->spec->selector : NULL;
        os = o->daemon_set->spec ? o->daemon_set->spec->selector : NULL;
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_STATEFUL_SET: {
        Skiffpb__V1__StatefulSetSpec *x = n->stateful_set->spec;
        Skiffpb__V1__StatefulSetSpec *y = o->stateful_set->spec;
        if (!x || !y)
            break;
        /* Compare the spec with the mutable fields blanked out. */
        Skiffpb__V1__StatefulSetSpec cx = *x, cy = *y;
        cx.has_replicas = cy.has_replicas = 0;
        cx.replicas = cy.replicas = 0;
        cx.template_ = cy.template_ = NULL;
        cx.update_strategy = cy.update_strategy = NULL;
        cx.has_min_ready_seconds = cy.has_min_ready_seconds = 0;
        cx.min_ready_seconds = cy.min_ready_seconds = 0;
        /* revisionHistoryLimit is mutable too in Kubernetes. */
        cx.has_revision_history_limit = cy.has_revision_history_limit = 0;
        cx.revision_history_limit = cy.revision_history_limit = 0;
        bool same;
        OBJ__TRY(same_msg(c->a, &cx.base, &cy.base, &same));
        if (!same)
            return invalid(c, "spec",
                           "Forbidden: updates to statefulset spec for "
                           "fields other than 'replicas', 'ordinals', "
                           "'template', 'updateStrategy', "
                           "'persistentVolumeClaimRetentionPolicy' and "
                           "'minReadySeconds' are forbidden");
        return 0;
    }
    default:
        return 0;
    }
    bool same;
    OBJ__TRY(same_msg(c->a, (const ProtobufCMessage *)ns,
                      (const ProtobufCMessage *)os, &same));
    if (!same) {
        char sel[200], msg[300];
        selector_str(ns, sel, sizeof sel);
        snprintf(msg, sizeof msg, "Invalid value: \"%s\": field is immutable",
                 sel);
        return invalid(c, "spec.selector", msg);
    }
    return 0;
}

static bool has_string(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && !strcmp(v[i], s))
            return true;
    return false;
}

static bool gc_finalizer(const char *f)
{
    return !strcmp(f, OBJ_FINALIZER_FOREGROUND) ||
           !strcmp(f, OBJ_FINALIZER_ORPHAN);
}

/* The deletion rules of an update (see the top comment).  Leaves nmd's
 * deletionTimestamp and grace period as they must be stored. */
static int check_deletion(actx *c, Skiffpb__V1__ObjectMeta *nmd,
                          const Skiffpb__V1__ObjectMeta *omd)
{
    bool marking = !omd->deletion_timestamp && nmd->deletion_timestamp;
    if (omd->deletion_timestamp) {
        if (nmd->deletion_timestamp &&
            strcmp(nmd->deletion_timestamp, omd->deletion_timestamp)) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "Invalid value: \"%.64s\": field is immutable; it is "
                     "set once, when deletion starts",
                     nmd->deletion_timestamp);
            return invalid(c, "metadata.deletionTimestamp", msg);
        }
        /* Left out by the writer: kept, never cleared (an update must not
         * bring a terminating object back). */
        nmd->deletion_timestamp = omd->deletion_timestamp;
        nmd->has_deletion_grace_period_seconds =
            omd->has_deletion_grace_period_seconds;
        nmd->deletion_grace_period_seconds = omd->deletion_grace_period_seconds;
    } else if (marking) {
        char now[32];
        format_time(c->rq->now_ms, now, sizeof now);
        if (!(nmd->deletion_timestamp = obj__strdup(c->a, now)))
            return -ENOMEM;
        if (!nmd->has_deletion_grace_period_seconds) {
            nmd->has_deletion_grace_period_seconds = 1;
            nmd->deletion_grace_period_seconds = 0;
        }
    } else {
        nmd->has_deletion_grace_period_seconds = 0;
        nmd->deletion_grace_period_seconds = 0;
        return 0;
    }
    char added[200] = "";
    size_t o = 0;
    for (size_t i = 0; i < nmd->n_finalizers; i++) {
        const char *f = nmd->finalizers[i];
        if (!f || has_string(omd->finalizers, omd->n_finalizers, f) ||
            (marking && gc_finalizer(f)))
            continue;
        int w = snprintf(added + o, sizeof added - o, "%s\"%.64s\"",
                         o ? ", " : "", f);
        if (w > 0 && (size_t)w < sizeof added - o)
            o += (size_t)w;
    }
    if (o) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "Forbidden: no new finalizers can be added if the object is "
                 "being deleted, found new finalizers []string{%s}",
                 added);
        return invalid(c, "metadata.finalizers", msg);
    }
    if (has_string(nmd->finalizers, nmd->n_finalizers,
                   OBJ_FINALIZER_FOREGROUND) &&
        has_string(nmd->finalizers, nmd->n_finalizers, OBJ_FINALIZER_ORPHAN))
        return invalid(c, "metadata.finalizers",
                       "Invalid value: \"orphan\": cannot be both set with "
                       "\"foregroundDeletion\"");
    return 0;
}

static int validate(actx *c, obj_object *o)
{
    obj_error err;
    int rc = obj_validate(o, &err);
    if (rc == OBJ_EINVALID)
        return invalid(c, err.path[0] ? err.path : "metadata", err.msg);
    return rc;
}

static int admit_create(actx *c, obj_object *n)
{
    ProtobufCMessage *m = obj_object_msg(n);
    Skiffpb__V1__ObjectMeta *md = obj_object_meta(n);
    /* A copy of a stored object that was being deleted (uid, version and
     * deletion mark all read back) whose original is gone: its writer
     * meant an update, and turning it into a create would resurrect it. */
    if (md->deletion_timestamp && md->uid && md->uid[0] &&
        md->resource_version && md->resource_version[0]) {
        const char *g = strchr(c->kg, '.');
        return refuse(c, OBJ_ADMIT_NOT_FOUND, "%s%s \"%s\" not found",
                      c->kind->resource, g ? g : "", c->name);
    }
    /* Server-set fields are the server's: a client's values are dropped,
     * as rest.BeforeCreate does. */
    md->uid = NULL;
    md->creation_timestamp = NULL;
    md->resource_version = NULL;
    md->deletion_timestamp = NULL;
    md->has_deletion_grace_period_seconds = 0;
    md->has_generation = 1;
    md->generation = 1;
    /* PrepareForCreate resets status, except for Nodes, whose agent
     * registers them with their status. */
    const ProtobufCFieldDescriptor *sf = kfield(m, "status");
    if (sf && n->object_case != SKIFFPB__V1__OBJECT__OBJECT_NODE)
        *(void **)obj__field_ptr(m, sf) = NULL;
    char uid[64] = "", now[32];
    if (!c->rq->uid)
        return refuse(c, OBJ_ADMIT_BAD_REQUEST, "no uid generator");
    c->rq->uid(c->rq->data, uid, sizeof uid);
    format_time(c->rq->now_ms, now, sizeof now);
    if (!(md->uid = obj__strdup(c->a, uid)) ||
        !(md->creation_timestamp = obj__strdup(c->a, now)))
        return -ENOMEM;
    int rc = obj_defaults(n, NULL, c->a);
    if (rc)
        return rc;
    OBJ__TRY(check_key(c, n));
    return validate(c, n);
}

static int admit_update(actx *c, obj_object *n, obj_object *o)
{
    if (o->object_case != n->object_case)
        return refuse(c, OBJ_ADMIT_BAD_REQUEST,
                      "the object (%s \"%s\") does not match the kind stored "
                      "at %s",
                      c->kg, c->name, c->rq->key);
    ProtobufCMessage *nm = obj_object_msg(n), *om = obj_object_msg(o);
    Skiffpb__V1__ObjectMeta *nmd = obj_object_meta(n);
    Skiffpb__V1__ObjectMeta *omd = obj_object_meta(o);
    char rv[32];
    snprintf(rv, sizeof rv, "%" PRId64, c->rq->old_mod_revision);
    if (nmd->resource_version && nmd->resource_version[0] &&
        strcmp(nmd->resource_version, rv)) {
        const char *g = strchr(c->kg, '.');
        return refuse(c, OBJ_ADMIT_CONFLICT,
                      "Operation cannot be fulfilled on %s%s \"%s\": the "
                      "object has been modified; please apply your changes "
                      "to the latest version and try again",
                      c->kind->resource, g ? g : "", c->name);
    }
    if (nmd->uid && nmd->uid[0] && omd->uid && strcmp(nmd->uid, omd->uid)) {
        char msg[200];
        snprintf(msg, sizeof msg, "Invalid value: \"%s\": field is immutable",
                 nmd->uid);
        return invalid(c, "metadata.uid", msg);
    }
    if (c->rq->status_update) {
        /* Everything but status comes from the stored object. */
        const ProtobufCFieldDescriptor *sf = kfield(nm, "status");
        if (!sf)
            return refuse(c, OBJ_ADMIT_NOT_FOUND,
                          "the server could not find the requested resource "
                          "(%s has no status)",
                          c->kind->resource);
        copy_field(om, nm, sf);
        n = o;
        nm = om;
        nmd = omd;
    } else {
        const ProtobufCFieldDescriptor *sf = kfield(nm, "status");
        if (sf)
            copy_field(nm, om, sf);
    }
    /* Server-set metadata stays as stored; the deletion mark may be set
     * once. */
    nmd->uid = omd->uid;
    nmd->creation_timestamp = omd->creation_timestamp;
    if (nmd != omd)
        OBJ__TRY(check_deletion(c, nmd, omd));
    nmd->resource_version = NULL;
    int rc = obj_defaults(n, NULL, c->a);
    if (rc)
        return rc;
    OBJ__TRY(check_key(c, n));
    OBJ__TRY(check_immutable(c, n, o));
    bool changed = false;
    if (!c->rq->status_update)
        OBJ__TRY(user_part_changed(c, nm, om, &changed));
    nmd->has_generation = 1;
    nmd->generation =
        (omd->has_generation ? omd->generation : 1) + (changed ? 1 : 0);
    return validate(c, n);
}

/* ---- public -------------------------------------------------------------- */

const char *obj_admit_kind_group(const obj_kind *k, char *buf, size_t cap)
{
    const char *slash = strchr(k->api_version, '/');
    if (slash)
        snprintf(buf, cap, "%s.%.*s", k->kind, (int)(slash - k->api_version),
                 k->api_version);
    else
        snprintf(buf, cap, "%s", k->kind);
    return buf;
}

int obj_admit_delete(const obj_admit_req *rq, cm_arena *a, obj_admit_res *out)
{
    memset(out, 0, sizeof *out);
    out->code = OBJ_ADMIT_OK;
    if (!rq->old_value)
        return 0;
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, a};
    obj_object *o = (obj_object *)protobuf_c_message_unpack(
        &skiffpb__v1__object__descriptor, &al, rq->old_value_len,
        rq->old_value);
    const Skiffpb__V1__ObjectMeta *md =
        o && obj_kind_get(o) ? obj_object_meta(o) : NULL;
    /* What is not an object (a raw value under /registry/) can always be
     * removed: it has no finalizers to honour. */
    if (!md || !md->n_finalizers)
        return 0;
    actx c = {.rq = rq, .a = a, .out = out, .kind = obj_kind_get(o)};
    obj_admit_kind_group(c.kind, c.kg, sizeof c.kg);
    char fins[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < md->n_finalizers; i++) {
        int w = snprintf(fins + n, sizeof fins - n, "%s%.64s", i ? " " : "",
                         md->finalizers[i] ? md->finalizers[i] : "");
        if (w < 0 || (size_t)w >= sizeof fins - n)
            break;
        n += (size_t)w;
    }
    const char *g = strchr(c.kg, '.');
    return refuse(&c, OBJ_ADMIT_CONFLICT,
                  "Operation cannot be fulfilled on %s%s \"%.128s\": the "
                  "object has finalizers [%s]; it is deleted by setting "
                  "metadata.deletionTimestamp and removed once they are gone",
                  c.kind->resource, g ? g : "", md->name ? md->name : "", fins);
}

int obj_admit(const obj_admit_req *rq, cm_arena *a, obj_admit_res *out)
{
    memset(out, 0, sizeof *out);
    actx c = {.rq = rq, .a = a, .out = out};
    snprintf(c.kg, sizeof c.kg, "object");
    obj_object *n = NULL, *o = NULL;
    int rc = unpack(&c, rq->value, rq->value_len, &n);
    if (rc)
        return rc;
    c.kind = obj_kind_get(n);
    obj_admit_kind_group(c.kind, c.kg, sizeof c.kg);
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(n);
    snprintf(c.name, sizeof c.name, "%s", md->name ? md->name : "");
    if (rq->old_value) {
        if ((rc = unpack(&c, rq->old_value, rq->old_value_len, &o)))
            return rc;
        rc = admit_update(&c, n, o);
        if (rc == 0 && rq->status_update)
            n = o; /* admit_update stored the result in the old object */
    } else if (rq->status_update) {
        return refuse(&c, OBJ_ADMIT_NOT_FOUND, "%s%s \"%s\" not found",
                      c.kind->resource,
                      strchr(c.kg, '.') ? strchr(c.kg, '.') : "", c.name);
    } else {
        rc = admit_create(&c, n);
    }
    if (rc == -ENOMEM || rc == CM_EINVAL) {
        out->code = OBJ_ADMIT_BAD_REQUEST;
        snprintf(out->message, sizeof out->message, "%s",
                 rc == -ENOMEM ? "out of memory" : "object holds no kind");
        return rc == -ENOMEM ? rc : OBJ_EINVALID;
    }
    if (rc)
        return rc;
    uint8_t *p;
    size_t len;
    if ((rc = pack(a, &n->base, &p, &len)))
        return rc;
    out->code = OBJ_ADMIT_OK;
    out->value = p;
    out->value_len = len;
    out->object = n;
    out->unchanged = rq->old_value && len == rq->old_value_len &&
                     !memcmp(p, rq->old_value, len);
    return 0;
}
