/*
 * api/objects/admit.h -- admission of a write under /registry/: what the
 * Kubernetes API server does to an object between receiving it and
 * storing it (decode, key check, defaulting, validation, server-set
 * metadata, immutable fields, generation, status subresource).
 *
 * obj_admit is pure: no clock, no randomness, no I/O (time and uids come
 * from the request), so skiffd runs it before proposing a write and
 * skiffctl runs the same function before sending one, which gives early
 * errors and the exact bytes the server will store.  Any thread.
 */
#ifndef SKIFF_OBJ_ADMIT_H
#define SKIFF_OBJ_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.h"

/* Why a write was refused; each maps to one wire error and HTTP status of
 * Kubernetes. */
typedef enum obj_admit_code {
    OBJ_ADMIT_OK = 0,
    OBJ_ADMIT_INVALID,     /* 422 Invalid: validation, immutable fields
                            * (wire INVALID_ARGUMENT) */
    OBJ_ADMIT_BAD_REQUEST, /* 400: undecodable value, key and object
                            * disagree (wire INVALID_ARGUMENT) */
    OBJ_ADMIT_CONFLICT,    /* 409: resourceVersion is not the stored one
                            * (wire FAILED_PRECONDITION-like) */
    OBJ_ADMIT_NOT_FOUND,   /* 404: status update of a missing object */
    OBJ_ADMIT_FORBIDDEN    /* 403: reserved for authorization (user and
                            * groups); not produced yet */
} obj_admit_code;

#define OBJ_ADMIT_MSG_MAX 640

typedef struct obj_admit_req {
    void *data; /* the caller's; passed to uid() */
    /* The registry key the write goes to (borrowed, NUL-terminated). */
    const char *key;
    /* The new value: a packed skiffpb.v1.Object (borrowed). */
    const void *value;
    size_t value_len;
    /* The value stored at key now, or NULL on create (borrowed), and its
     * mod_revision (the object's resourceVersion). */
    const void *old_value;
    size_t old_value_len;
    int64_t old_mod_revision;
    /* Milliseconds since the epoch (creationTimestamp on create). */
    int64_t now_ms;
    /* Writes a fresh uid, NUL-terminated, into buf (cap >= 64).  Called
     * once per create.  Required for creates. */
    void (*uid)(void *data, char *buf, size_t cap);
    /* The pods/status (any kind's status) subresource: only status
     * changes, everything else is kept from old_value (which must be
     * given). */
    bool status_update;
    /* Who writes, for authorization later (borrowed; may be NULL). */
    const char *user;
    const char *const *groups;
    size_t n_groups;
} obj_admit_req;

typedef struct obj_admit_res {
    obj_admit_code code;
    /* Kubernetes' message, e.g. `Deployment.apps "web" is invalid:
     * spec.replicas: Invalid value: -1: must be greater than or equal to
     * 0`; "" when admitted. */
    char message[OBJ_ADMIT_MSG_MAX];
    /* When admitted: the packed Object to store (arena memory) and the
     * decoded object it was packed from (arena; resourceVersion unset).
     * unchanged is true on update when the bytes equal old_value, so the
     * caller may skip the write (kubectl's "unchanged"). */
    const uint8_t *value;
    size_t value_len;
    obj_object *object;
    bool unchanged;
} obj_admit_res;

/* Admits one write.
 *   On create (old_value NULL): decodes the value, drops any status
 *   (except a Node's, which Kubernetes keeps), defaults the namespace and
 *   checks the key is obj_object_key of the object, sets a fresh uid
 *   (rq->uid) and creationTimestamp (rq->now_ms), generation 1, clears
 *   resourceVersion and deletionTimestamp, then defaults and validates.
 *   A create whose value carries a uid, a resourceVersion and a
 *   deletionTimestamp (a copy of a terminating object whose original is
 *   gone) is refused with NOT_FOUND: it must not come back.
 *   On update: also refuses a resourceVersion other than old_mod_revision
 *   (CONFLICT), keeps uid, creationTimestamp and status from the old
 *   object, applies the deletion rules (below), refuses changes
 *   Kubernetes refuses (uid; the
 *   selector of Deployments, ReplicaSets, StatefulSets and DaemonSets;
 *   StatefulSet fields other than replicas, template, updateStrategy and
 *   minReadySeconds), and bumps metadata.generation when anything outside
 *   metadata and status changed.  With status_update only status is taken
 *   from the new object.
 *   a: every allocation (decoding, defaulting, packing) comes from it.
 *   Deletion rules on update (Kubernetes' graceful deletion with
 *   finalizers; the mark is written by an update instead of DELETE):
 *   - deletionTimestamp may be set once; the stored value is the
 *     request's time (now_ms), whatever the writer put there, and
 *     deletionGracePeriodSeconds defaults to 0.  Once set, a different
 *     value is refused (INVALID, metadata.deletionTimestamp) and a value
 *     left out is kept: the mark is never cleared.
 *   - While it is set, finalizers may be removed but not added (INVALID,
 *     metadata.finalizers "no new finalizers can be added if the object
 *     is being deleted"), except OBJ_FINALIZER_FOREGROUND or
 *     OBJ_FINALIZER_ORPHAN in the update that sets the mark; the two
 *     together are refused.
 * Returns 0 (out->code OBJ_ADMIT_OK, out->value set), OBJ_EINVALID when
 * refused (out->code and out->message say why; nothing to store), or
 * -ENOMEM. */
int obj_admit(const obj_admit_req *rq, cm_arena *a, obj_admit_res *out);

/* The garbage collector's finalizers (Kubernetes' names). */
#define OBJ_FINALIZER_FOREGROUND "foregroundDeletion"
#define OBJ_FINALIZER_ORPHAN "orphan"

/* Admits the outright deletion (DeleteRange) of one registry key.
 *   rq->key:       the key (borrowed); only it, old_value and
 *                  old_value_len are read.
 *   rq->old_value: the value stored there now (borrowed), or NULL when
 *                  nothing is (admitted: there is nothing to delete).
 * An object whose metadata.finalizers is non-empty is refused with
 * OBJ_ADMIT_CONFLICT: it is deleted by setting deletionTimestamp (an
 * update, see obj_admit) and removed by the garbage collector once its
 * finalizers are gone.  Values that are not objects are admitted.
 *   a: decoding allocates from it.
 * Returns 0 (out->code OBJ_ADMIT_OK), OBJ_EINVALID (out->code
 * OBJ_ADMIT_CONFLICT and out->message: `Operation cannot be fulfilled on
 * deployments.apps "web": the object has finalizers [example.com/hold];
 * ...`).  Never -ENOMEM: protobuf-c cannot tell it from a malformed
 * value, and both are admitted.  out->value is unset.  Pure; any
 * thread. */
int obj_admit_delete(const obj_admit_req *rq, cm_arena *a, obj_admit_res *out);

/* Kubernetes' qualified kind for messages: "Deployment.apps", "Pod",
 * "HorizontalPodAutoscaler.autoscaling" (group = apiVersion before '/').
 * Writes into buf (truncated to cap); returns buf. */
const char *obj_admit_kind_group(const obj_kind *k, char *buf, size_t cap);

#endif
