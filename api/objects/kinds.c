/*
 * Kinds, registry keys and the reflective helpers under the codec.
 *
 * The YAML and JSON codecs are driven by protobuf-c's descriptors instead
 * of a hand-written table per message: a field's Kubernetes name is derived
 * from its .proto name (one rule, plus the acronyms Kubernetes spells in
 * capitals), its type comes from the descriptor, and two leaf messages
 * (IntOrString, Quantity) and protoc's map entries are recognised by
 * descriptor.  Adding a field to objects.proto is then all it takes to make
 * it readable and writable.  The kind table below is the one place that
 * knows which kinds exist, their apiVersion, their registry resource and
 * whether they are namespaced.
 */
#include "objects_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Name segments Kubernetes spells as acronyms (podIP, podCIDRs). */
static const struct {
    const char *seg, *spelled;
} acronyms[] = {{"ip", "IP"},     {"ips", "IPs"},   {"id", "ID"},
                {"uuid", "UUID"}, {"cidr", "CIDR"}, {"cidrs", "CIDRs"},
                {"urls", "URLs"}};

static const obj_kind kinds[] = {
    {"Namespace", "v1", "namespaces", false,
     &skiffpb__v1__namespace__descriptor, 1},
    {"Node", "v1", "nodes", false, &skiffpb__v1__node__descriptor, 2},
    {"Pod", "v1", "pods", true, &skiffpb__v1__pod__descriptor, 3},
    {"ReplicaSet", "apps/v1", "replicasets", true,
     &skiffpb__v1__replica_set__descriptor, 4},
    {"Deployment", "apps/v1", "deployments", true,
     &skiffpb__v1__deployment__descriptor, 5},
    {"DaemonSet", "apps/v1", "daemonsets", true,
     &skiffpb__v1__daemon_set__descriptor, 6},
    {"StatefulSet", "apps/v1", "statefulsets", true,
     &skiffpb__v1__stateful_set__descriptor, 7},
    {"PersistentVolumeClaim", "v1", "persistentvolumeclaims", true,
     &skiffpb__v1__persistent_volume_claim__descriptor, 8},
    {"HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers",
     true, &skiffpb__v1__horizontal_pod_autoscaler__descriptor, 9},
    {"Event", "v1", "events", true, &skiffpb__v1__event__descriptor, 10},
    {"Lease", "coordination.k8s.io/v1", "leases", true,
     &skiffpb__v1__lease__descriptor, 11},
    {"Role", "rbac.authorization.k8s.io/v1", "roles", true,
     &skiffpb__v1__role__descriptor, 12},
    {"RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings", true,
     &skiffpb__v1__role_binding__descriptor, 13},
    {"ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", false,
     &skiffpb__v1__cluster_role__descriptor, 14},
    {"ClusterRoleBinding", "rbac.authorization.k8s.io/v1",
     "clusterrolebindings", false,
     &skiffpb__v1__cluster_role_binding__descriptor, 15},
};

#define N_KINDS (sizeof kinds / sizeof *kinds)

/* ---- reflection ---------------------------------------------------------- */

void obj__camel(const char *snake, char out[OBJ__NAME_MAX])
{
    size_t o = 0;
    bool first = true;
    const char *p = snake;
    while (*p) {
        const char *end = strchr(p, '_');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *seg = p;
        for (size_t i = 0; !first && i < sizeof acronyms / sizeof *acronyms;
             i++)
            if (strlen(acronyms[i].seg) == n && !strncmp(acronyms[i].seg, p, n))
                seg = acronyms[i].spelled;
        for (size_t i = 0; i < n && o + 1 < OBJ__NAME_MAX; i++) {
            char c = seg[i];
            if (!first && i == 0 && c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            out[o++] = c;
        }
        first = false;
        p += n;
        if (*p == '_')
            p++;
    }
    out[o] = '\0';
}

const ProtobufCFieldDescriptor *
obj__field_by_json(const ProtobufCMessageDescriptor *d, const char *key)
{
    char name[OBJ__NAME_MAX];
    for (unsigned i = 0; i < d->n_fields; i++) {
        obj__camel(d->fields[i].name, name);
        if (!strcmp(name, key))
            return &d->fields[i];
    }
    return NULL;
}

const ProtobufCFieldDescriptor *
obj__field_by_name(const ProtobufCMessageDescriptor *d, const char *name)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (!strcmp(d->fields[i].name, name))
            return &d->fields[i];
    return NULL;
}

bool obj__is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->short_name);
    return n > 5 && !strcmp(d->short_name + n - 5, "Entry") &&
           d->n_fields == 2 && !strcmp(d->fields[0].name, "key") &&
           !strcmp(d->fields[1].name, "value");
}

bool obj__is_int_or_string(const ProtobufCMessageDescriptor *d)
{
    return d == &skiffpb__v1__int_or_string__descriptor;
}

bool obj__is_quantity(const ProtobufCMessageDescriptor *d)
{
    return d == &skiffpb__v1__quantity__descriptor;
}

bool obj__field_present(const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f)
{
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void **)obj__field_ptr(m, f) != NULL;
    return *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) != 0;
}

ProtobufCMessage *obj__msg_new(cm_arena *a, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = cm_arena_alloc(a, d->sizeof_message);
    if (m)
        d->message_init(m);
    return m;
}

char *obj__strndup(cm_arena *a, const char *s, size_t n)
{
    char *p = cm_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *obj__strdup(cm_arena *a, const char *s)
{
    return obj__strndup(a, s, strlen(s));
}

void obj__error_vset(obj_error *e, const char *path, const char *fmt,
                     va_list ap)
{
    if (!e)
        return;
    e->line = 0;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

void obj__error_set(obj_error *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    obj__error_vset(e, path, fmt, ap);
    va_end(ap);
}

/* ---- public -------------------------------------------------------------- */

const char *obj_error_format(const obj_error *e, const char *file, char *buf,
                             size_t cap)
{
    if (!cap)
        return buf;
    buf[0] = '\0';
    size_t o = 0;
    int w;
#define PUT(...)                                                               \
    do {                                                                       \
        w = snprintf(buf + o, cap - o, __VA_ARGS__);                           \
        if (w < 0 || (size_t)w >= cap - o)                                     \
            return buf;                                                        \
        o += (size_t)w;                                                        \
    } while (0)
    if (file && e->line > 0)
        PUT("%s:%d: ", file, e->line);
    else if (file)
        PUT("%s: ", file);
    if (e->path[0])
        PUT("%s: ", e->path);
    PUT("%s", e->msg);
#undef PUT
    return buf;
}

const obj_kind *obj_kind_find(const char *kind)
{
    for (size_t i = 0; kind && i < N_KINDS; i++)
        if (!strcmp(kinds[i].kind, kind))
            return &kinds[i];
    return NULL;
}

const obj_kind *obj_kind_get(const obj_object *o)
{
    for (size_t i = 0; o && i < N_KINDS; i++)
        if ((unsigned)o->object_case == kinds[i].oneof_id)
            return o->pod ? &kinds[i] : NULL;
    return NULL;
}

ProtobufCMessage *obj_object_msg(const obj_object *o)
{
    /* Every member of the oneof shares the union's storage. */
    return obj_kind_get(o) ? (ProtobufCMessage *)o->pod : NULL;
}

Skiffpb__V1__ObjectMeta *obj_object_meta(const obj_object *o)
{
    ProtobufCMessage *m = obj_object_msg(o);
    if (!m)
        return NULL;
    const ProtobufCFieldDescriptor *f =
        obj__field_by_name(m->descriptor, "metadata");
    return f ? *(Skiffpb__V1__ObjectMeta **)obj__field_ptr(m, f) : NULL;
}

int obj_object_wrap(obj_object *o, ProtobufCMessage *m)
{
    for (size_t i = 0; m && i < N_KINDS; i++)
        if (m->descriptor == kinds[i].desc) {
            skiffpb__v1__object__init(o);
            o->object_case = (Skiffpb__V1__Object__ObjectCase)kinds[i].oneof_id;
            o->pod = (Skiffpb__V1__Pod *)m;
            return 0;
        }
    return CM_EINVAL;
}

int obj_object_key(const obj_object *o, char *buf, size_t cap)
{
    if (cap)
        buf[0] = '\0';
    const obj_kind *k = obj_kind_get(o);
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    if (!k || !md || !md->name || !md->name[0])
        return CM_EINVAL;
    int w;
    if (k->namespaced) {
        if (!md->namespace_ || !md->namespace_[0])
            return CM_EINVAL;
        w = snprintf(buf, cap, "/registry/%s/%s/%s", k->resource,
                     md->namespace_, md->name);
    } else {
        w = snprintf(buf, cap, "/registry/%s/%s", k->resource, md->name);
    }
    if (w < 0 || (size_t)w >= cap) {
        if (cap)
            buf[0] = '\0';
        return CM_ETOOBIG;
    }
    return 0;
}

bool obj_object_equal(const obj_object *a, const obj_object *b)
{
    size_t na = protobuf_c_message_get_packed_size(&a->base);
    size_t nb = protobuf_c_message_get_packed_size(&b->base);
    if (na != nb)
        return false;
    uint8_t *pa = cm_malloc(na ? na : 1), *pb = cm_malloc(nb ? nb : 1);
    bool eq = false;
    if (pa && pb) {
        protobuf_c_message_pack(&a->base, pa);
        protobuf_c_message_pack(&b->base, pb);
        eq = memcmp(pa, pb, na) == 0;
    }
    cm_free(pa);
    cm_free(pb);
    return eq;
}
