/*
 * controllers/delete.h -- deleting and updating one object the way the
 * Kubernetes API server's DELETE and a controller's update do, as
 * compare-and-swap writes from a client: shared by skiffctl delete, the
 * garbage collector and anything else that removes objects.
 *
 * Deletion (Kubernetes' propagation policies, docs/controllers.md):
 *   background  an object without finalizers is deleted at once; one with
 *               finalizers is marked (metadata.deletionTimestamp) and the
 *               garbage collector deletes it when they are gone, and then
 *               its dependents, whose owner no longer exists.
 *   foreground  marked, with finalizer "foregroundDeletion": the garbage
 *               collector deletes the dependents first, then the object.
 *   orphan      marked, with finalizer "orphan": the garbage collector
 *               removes the object from its dependents' ownerReferences,
 *               then deletes it.
 * An object already marked is left as it is (admission forbids adding
 * finalizers to it), except that one whose finalizers are all gone is
 * deleted.
 *
 * Every write compares the key's mod_revision with the one read; a lost
 * compare reads again and redoes the change, up to `retries` times.
 *
 * Threads and clients: these calls block (skiff_do_sync), so they need a
 * blocking client and must not be called from inside one of its
 * callbacks (informer handlers, watch callbacks): the loop would be run
 * again from inside itself.  Callers that use informers on the same
 * client run the loop themselves (skiff_client_poll) and call these
 * between iterations, as skiff-controller-manager does.
 *
 * Errors: 0 or negative: -EINVAL (not a registry key, or the value is not
 * an object), -EAGAIN (the compare kept failing: retry later), -ENOMEM,
 * or libskiff's codes (SKIFF_EINVALID_ARGUMENT when admission refused the
 * write; errmsg then holds the server's message).
 */
#ifndef SKIFF_CTL_DELETE_H
#define SKIFF_CTL_DELETE_H

#include <stddef.h>
#include <stdint.h>

#include "objects.h"
#include "skiff.h"

typedef enum ctl_propagation {
    CTL_PROPAGATION_BACKGROUND = 0,
    CTL_PROPAGATION_FOREGROUND,
    CTL_PROPAGATION_ORPHAN
} ctl_propagation;

/* Parses kubectl's --cascade value: "background", "foreground", "orphan",
 * and the deprecated "true" (background) and "false" (orphan).  0 or
 * -EINVAL. */
int ctl_propagation_parse(const char *s, ctl_propagation *out);

typedef enum ctl_delete_outcome {
    CTL_DELETE_GONE = 1, /* this call removed the key */
    CTL_DELETE_MARKED,   /* marked for deletion (now or before): the
                          * garbage collector finishes it */
    CTL_DELETE_ABSENT    /* nothing there (or another uid: see opts) */
} ctl_delete_outcome;

typedef struct ctl_delete_opts {
    ctl_propagation propagation;
    /* Only delete the object with this uid (Kubernetes' Preconditions):
     * another object under the same name is reported ABSENT.  NULL: any.
     * Borrowed for the call. */
    const char *uid;
    /* Only delete or mark the version the caller examined: a stored
     * mod_revision other than this one returns -EAGAIN at once (decide
     * again on the new version).  0: any. */
    int64_t mod_revision;
    int retries; /* compares lost before -EAGAIN; 0: 5 */
} ctl_delete_opts;

/* Deletes the object at key (NUL-terminated, borrowed) as the options
 * say (see the top comment).  *out gets what happened.  errmsg (cap
 * bytes, may be NULL) gets a message on failure.  Errors as above. */
int ctl_delete_object(skiff_client *c, const char *key,
                      const ctl_delete_opts *opts, ctl_delete_outcome *out,
                      char *errmsg, size_t cap);

/* A change to one object for ctl_update_object: edits o in place
 * (allocate from a), returns 0 to write it, 1 when nothing needs writing,
 * or a negative code to stop with. */
typedef int (*ctl_mutate_fn)(obj_object *o, cm_arena *a, void *arg);

/* Read-modify-write of the object at key with compare-and-swap retries.
 * uid (may be NULL) must match the stored object's, else *written = 0
 * and nothing happens (as for an absent key).  The key's lease is kept.
 * *written (may be NULL) tells whether a write happened.  Errors as
 * above, plus mutate's own codes. */
int ctl_update_object(skiff_client *c, const char *key, const char *uid,
                      ctl_mutate_fn mutate, void *arg, int *written,
                      char *errmsg, size_t cap);

/* Helpers for mutate functions: whether md has finalizer f, and removing
 * it (0 or 1 when it was not there).  Pure. */
int ctl_meta_has_finalizer(const Skiffpb__V1__ObjectMeta *md, const char *f);
int ctl_meta_remove_finalizer(Skiffpb__V1__ObjectMeta *md, const char *f);

/* RFC 3339 UTC time ("2026-01-02T03:04:05Z") of ms since the epoch. */
void ctl_format_time(int64_t ms, char *buf, size_t cap);

#endif
