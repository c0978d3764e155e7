/*
 * Internal declarations of the garbage collector, shared by gc.c (the
 * informers, the dependency lookups and the work queue) and gc_rules.c
 * (what is done with one work item).
 */
#ifndef SKIFF_CTL_GC_INT_H
#define SKIFF_CTL_GC_INT_H

#include "delete.h"
#include "gc.h"
#include "informer.h"
#include "workqueue.h"

#define CTL__GC_INDEX_UID "metadata.uid"
#define CTL__GC_INDEX_OWNER "ownerReferences.uid"
#define CTL__GC_MAX_KINDS 16

struct ctl_gc {
    skiff_client *c;
    ctl_informer *inf[CTL__GC_MAX_KINDS];
    const obj_kind *kind[CTL__GC_MAX_KINDS];
    size_t n_inf;
    size_t n_started; /* informers started (each ends with on_ended) */
    size_t n_ended;   /* informers whose on_ended ran */
    ctl_wq *q;
    int q_closed;
    int64_t resync_ms;
    ctl_gc_stats stats;
};

/* A list of referenced objects (each ctl_obj_ref'd): what a lookup in
 * the caches found, kept valid across the blocking writes that follow
 * (the loop runs during them and may drop the cached copies). */
typedef struct ctl__objs {
    const ctl_obj **v;
    size_t n, cap;
} ctl__objs;
void ctl__objs_free(ctl__objs *l);

/* Every cached object with an ownerReference to uid, appended to out.
 * 0 or -ENOMEM. */
int ctl__gc_dependents(const ctl_gc *gc, const char *uid, ctl__objs *out);
/* The cached object whose uid is uid, or NULL (borrowed). */
const ctl_obj *ctl__gc_by_uid(const ctl_gc *gc, const char *uid);
/* The cached object at key, or NULL (borrowed). */
const ctl_obj *ctl__gc_get(const ctl_gc *gc, const char *key);

/* Applies the collector's rules to the object at key (gc_rules.c).  0
 * (done: forget the key) or a negative code (requeue with backoff). */
int ctl__gc_sync(ctl_gc *gc, const char *key);

#endif
