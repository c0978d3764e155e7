/*
 * api/objects/objects.h -- skiff's control-plane objects: the Kubernetes
 * kinds of proto/objects.proto, read from and written as Kubernetes YAML
 * and JSON, validated and defaulted as the Kubernetes API server does, and
 * placed in the store at /registry/<resource>/[<namespace>/]<name>.
 *
 * Messages are the protobuf-c structs of objects.pb-c.h (Skiffpb__V1__*).
 * Every message built here (decoding, defaulting) is allocated from a
 * caller's cm_arena and lives until that arena is reset or freed; nothing
 * needs freeing one by one.  Messages built by the caller may mix arena and
 * other memory: the functions here never free what they did not allocate.
 *
 * All functions are pure (no clock, no randomness, no I/O: time and uids
 * come from the caller, see obj_defaults) and may be called from any
 * thread, on different objects and arenas.  Errors are the OBJ_* codes of
 * quantity.h plus -ENOMEM; the human context is written to an obj_error.
 */
#ifndef SKIFF_OBJ_OBJECTS_H
#define SKIFF_OBJ_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>

#include "cm.h"
#include "objects.pb-c.h"
#include "quantity.h"

typedef Skiffpb__V1__Object obj_object;

/* ---- errors -------------------------------------------------------------- */

#define OBJ_PATH_MAX 256
#define OBJ_MSG_MAX 256

/* Where and why an object was rejected.  path is Kubernetes' field path
 * ("spec.template.spec.containers[0].resources.limits[cpu]"), empty for
 * errors about a whole document (YAML syntax); line is 1-based in the
 * manifest, 0 when the object did not come from one (validation). */
typedef struct obj_error {
    int line;
    char path[OBJ_PATH_MAX];
    char msg[OBJ_MSG_MAX];
} obj_error;

/* Writes "file:line: path: msg" (file and line left out when file is NULL
 * or line is 0, path when empty) into buf, truncating to cap.  Returns buf,
 * so it can be passed straight to printf. */
const char *obj_error_format(const obj_error *e, const char *file, char *buf,
                             size_t cap);

/* ---- kinds and registry keys --------------------------------------------- */

typedef struct obj_kind {
    const char *kind;        /* "Deployment" */
    const char *api_version; /* "apps/v1" */
    const char *resource;    /* "deployments": the registry's plural */
    bool namespaced;
    const ProtobufCMessageDescriptor *desc; /* the kind's message */
    unsigned oneof_id;                      /* its field in Object */
} obj_kind;

/* The kind named `kind` (case-sensitive, "Pod"), or NULL.  Static data. */
const obj_kind *obj_kind_find(const char *kind);
/* The kind held by o, or NULL when o holds none. */
const obj_kind *obj_kind_get(const obj_object *o);
/* The kind message held by o (a Skiffpb__V1__Pod, ...), or NULL. */
ProtobufCMessage *obj_object_msg(const obj_object *o);
/* o's metadata, or NULL when o holds no kind or the kind has none. */
Skiffpb__V1__ObjectMeta *obj_object_meta(const obj_object *o);
/* Wraps the kind message m (borrowed: o points at it) into o.  Returns 0 or
 * CM_EINVAL when m is not one of the kinds. */
int obj_object_wrap(obj_object *o, ProtobufCMessage *m);

/* The object's store key: /registry/<resource>/<namespace>/<name>, or
 * /registry/<resource>/<name> for cluster-scoped kinds.  Returns 0,
 * CM_EINVAL (no kind, no name, or a namespaced object without namespace:
 * default it first) or CM_ETOOBIG (buf holds "" when cap > 0). */
int obj_object_key(const obj_object *o, char *buf, size_t cap);

/* True when a and b hold the same fields with the same values (compares
 * their protobuf encodings; present-but-zero differs from absent).
 * -ENOMEM cannot be told apart from "different": false. */
bool obj_object_equal(const obj_object *a, const obj_object *b);

/* ---- YAML and JSON ------------------------------------------------------- */

/* Decodes every document of a Kubernetes manifest (documents separated by
 * "---"; empty documents are skipped).  Each must be a mapping with an
 * apiVersion/kind pair skiff serves and only known fields of the right
 * types; quantities must parse.  Decoding stops at the first error: the
 * caller writes nothing from a file that fails (apply's rule).
 *   buf/len: the manifest, borrowed for the call (need not end in NUL).
 *   a:       every message and string is allocated from it.
 *   out/n:   on success, an arena array of n objects (n may be 0).
 *   err:     on OBJ_EDECODE, the line, field path and reason.
 * Returns 0, OBJ_EDECODE or -ENOMEM (err says "out of memory"). */
int obj_yaml_decode(const void *buf, size_t len, cm_arena *a, obj_object ***out,
                    size_t *n, obj_error *err);

/* Appends o as one YAML document (no "---") in kubectl -o yaml's shape:
 * camelCase keys in .proto order, absent fields left out, present empty
 * messages as {}; strings that would read back as another type are
 * quoted, so obj_yaml_decode gives back an equal object.
 * Returns 0, CM_EINVAL (o holds no kind) or -ENOMEM (out may hold part). */
int obj_yaml_encode(const obj_object *o, cm_buf *out);

/* Appends o as JSON (kubectl -o json: 4-space indent, trailing newline).
 * Same fields and errors as obj_yaml_encode. */
int obj_json_encode(const obj_object *o, cm_buf *out);

/* ---- validation and defaulting ------------------------------------------- */

/* Checks o as the API server's validation does on create: names (DNS-1123
 * subdomains or labels by kind), label keys and values, selectors that
 * match the template's labels, requests <= limits, probe, toleration,
 * affinity, strategy and HPA fields in range.  Call it after obj_defaults,
 * as Kubernetes does.  Stops at the first error.
 * Duplicate and lookup checks sort temporary arrays (cm_malloc, freed
 * before returning), so long lists cost O(n log n), not O(n^2).
 * Returns 0, OBJ_EINVALID with err->path and err->msg set (line 0), or
 * -ENOMEM. */
int obj_validate(const obj_object *o, obj_error *err);

/* Where defaulting gets what is not a pure function of the object. */
typedef struct obj_defaults_env {
    void *data;
    /* Writes a fresh uid, NUL-terminated, into buf (cap >= 64). */
    void (*uid)(void *data, char *buf, size_t cap);
    /* Writes the current time, RFC 3339 in UTC ("2026-01-02T03:04:05Z"). */
    void (*now)(void *data, char *buf, size_t cap);
} obj_defaults_env;

/* Fills in what the API server fills in on create: namespace "default"
 * for namespaced kinds (and none for cluster-scoped ones, as the API
 * server clears it), uid and creationTimestamp (from env; left alone
 * when already set or env/hook is NULL), and the kind's defaults
 * (restartPolicy Always, imagePullPolicy, terminationGracePeriodSeconds 30,
 * probe timings 10/1/1/3, requests from limits, the not-ready/unreachable
 * NoExecute tolerations for 300 s, status.qosClass, Deployment strategy
 * RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds
 * 600, replicas 1, HPA minReplicas 1 and behavior, ...).  Fields already
 * set are kept; quantities are rewritten in canonical form.  Idempotent.
 *   a: new fields are allocated from it; o may point into it afterwards.
 * Returns 0, CM_EINVAL (o holds no kind) or -ENOMEM (o then has some
 * defaults and not others). */
int obj_defaults(obj_object *o, const obj_defaults_env *env, cm_arena *a);

/* QoS class of a pod spec after defaulting: "Guaranteed", "Burstable" or
 * "BestEffort" (static strings). */
const char *obj_pod_qos_class(const Skiffpb__V1__PodSpec *spec);

#endif
