/*
 * controllers/gc.h -- the garbage collector: Kubernetes' ownerReference
 * and finalizer-driven deletion (docs/controllers.md), as a controller
 * over the store.
 *
 * It keeps informers on every kind that can own or be owned (all but
 * Event), indexed by uid and by owner uid, and a rate-limited work queue
 * of object keys.  For each key it applies Kubernetes' rules:
 *   - a dependent whose owners (ownerReferences, matched by uid) are all
 *     gone is deleted (background); when some owners remain, the
 *     references to the missing ones are removed instead.  An owner that
 *     is absent from the cache is confirmed absent by a fresh read of the
 *     store before anything is deleted;
 *   - an owner marked for deletion with finalizer "foregroundDeletion" has
 *     its dependents deleted (foreground again when they have dependents
 *     themselves, so the cascade recurses), and loses the finalizer once
 *     no dependent with blockOwnerDeletion remains;
 *   - an owner marked with "orphan" is removed from its dependents'
 *     ownerReferences, then loses the finalizer;
 *   - an object marked for deletion whose finalizers are all gone is
 *     deleted.
 * Every write is a compare-and-swap on mod_revision; failures go back to
 * the queue with per-key exponential backoff.  It holds no state the store
 * does not have: restarted, it lists everything again and converges.
 *
 * Threads and clients: it needs a blocking client (its writes are
 * skiff_do_sync calls).  Its informers and queue run on that client's
 * loop: the caller runs it (skiff_client_poll) and calls
 * ctl_gc_process between runs, never from inside a callback.
 */
#ifndef SKIFF_CTL_GC_H
#define SKIFF_CTL_GC_H

#include <stdint.h>

#include "skiff.h"

typedef struct ctl_gc ctl_gc;

typedef struct ctl_gc_config {
    skiff_client *client; /* blocking; borrowed, outlives the collector */
    int64_t resync_ms;    /* re-check every object this often; 0: never */
} ctl_gc_config;

typedef struct ctl_gc_stats {
    uint64_t deleted;  /* objects deleted or marked for deletion */
    uint64_t updated;  /* ownerReferences or finalizers removed */
    uint64_t failures; /* work items that failed and were requeued */
} ctl_gc_stats;

/* Makes a collector (not started).  0, -EINVAL, -ENOMEM. */
int ctl_gc_create(const ctl_gc_config *cfg, ctl_gc **out);
/* Starts its informers.  0 or ctl_informer_start's errors. */
int ctl_gc_start(ctl_gc *gc);
/* Whether every informer has listed once (before that nothing is
 * processed: a missing cache entry would mean nothing). */
int ctl_gc_synced(const ctl_gc *gc);
/* Processes up to max ready work items (0: 100) with blocking writes.
 * Returns how many were processed (>= 0).  Loop thread, outside any
 * callback of the client. */
int ctl_gc_process(ctl_gc *gc, int max);
ctl_gc_stats ctl_gc_get_stats(const ctl_gc *gc);
/* Stops the informers and the queue, runs the client's loop until they
 * have ended, and frees the collector.  NULL is a no-op. */
void ctl_gc_destroy(ctl_gc *gc);

#endif
