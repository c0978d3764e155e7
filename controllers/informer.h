/*
 * controllers/informer.h -- object informers for controllers: client-go's
 * SharedIndexInformer and Indexer, in C, over libskiff's raw informer.
 *
 * Three layers, each usable alone:
 *   ctl_obj       one decoded object (an immutable, reference-counted copy
 *                 of a store value at one mod_revision).
 *   ctl_indexer   a keyed cache of ctl_objs with secondary indexes: by
 *                 namespace, by label ("key=value") and by any field a
 *                 caller's ctl_index_fn extracts (spec.nodeName, ...).
 *   ctl_informer  keeps a ctl_indexer equal to one resource's part of the
 *                 store (/registry/<resource>/) by list + watch, and tells
 *                 handlers about every change: add(new), update(old, new),
 *                 delete(old), in an order that replays to the cache.
 *
 * Threads: like libskiff, everything here belongs to the thread running
 * the client's loop.  Nothing is locked.
 *
 * Ownership: objects handed to handlers and returned by getters are
 * borrowed: valid until the loop runs again (the cache may drop them on
 * the next event).  ctl_obj_ref() keeps one longer; ctl_obj_unref()
 * releases it.  Objects are shared between the cache and every holder, so
 * they must never be modified (client-go's rule for informer caches).
 *
 * Errors: 0 or negative: -errno (-ENOMEM, -EINVAL, -EBUSY, -ENOENT) or the
 * SKIFF_E* / OBJ_* codes passed on from libskiff and the objects API.
 */
#ifndef SKIFF_CTL_INFORMER_H
#define SKIFF_CTL_INFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "objects.h"
#include "skiff.h"

/* ---- objects --------------------------------------------------------------
 * A decoded store value.  Every pointer points into memory the ctl_obj
 * owns (one arena per object).  meta->resource_version is set to
 * mod_revision, as the Kubernetes API server does on read. */
typedef struct ctl_obj {
    const char *key;  /* "/registry/pods/default/web-0" */
    const char *ns;   /* "default"; "" for cluster-scoped kinds */
    const char *name; /* "web-0" */
    const obj_object *obj;
    const obj_kind *kind;
    const Skiffpb__V1__ObjectMeta *meta; /* never NULL */
    int64_t create_revision, mod_revision, version;
    const uint8_t *raw; /* the packed value as stored */
    size_t raw_len;
    /* private */
    int refs;
    void *priv; /* per-index values (index.c) */
    cm_arena arena;
} ctl_obj;

/* Decodes a packed Object stored at `kv->key` into a new ctl_obj with one
 * reference (*out; release with ctl_obj_unref).  `want` (may be NULL)
 * is the kind the value must hold.  The key must be
 * /registry/<resource>/[<ns>/]<name>.  kv is borrowed for the call.
 * Returns 0, -EINVAL (bad key, undecodable value, no metadata, other
 * kind than `want`) or -ENOMEM. */
int ctl_obj_decode(const skiff_kv *kv, const obj_kind *want, ctl_obj **out);
/* Takes another reference; returns o. */
ctl_obj *ctl_obj_ref(const ctl_obj *o);
/* Drops a reference; the last one frees the object.  NULL is a no-op. */
void ctl_obj_unref(const ctl_obj *o);

/* ---- indexer --------------------------------------------------------------
 * Index functions say under which values an object is filed.  They are
 * called once per object version (when it enters the cache); the values
 * are copied, so they may be built on the stack. */
typedef struct ctl_index_vals ctl_index_vals;
/* Adds one value (len bytes, need not be NUL-terminated).  0 or -ENOMEM. */
int ctl_index_vals_add(ctl_index_vals *v, const char *val, size_t len);
/* Files o under zero or more values.  0 or a negative code (-ENOMEM),
 * which fails the insertion. */
typedef int (*ctl_index_fn)(const ctl_obj *o, ctl_index_vals *out, void *data);

/* Built-in index names, registered by every indexer. */
#define CTL_INDEX_NAMESPACE "namespace" /* meta namespace ("" if none) */
#define CTL_INDEX_LABEL "label"         /* "key=value", one per label */
/* A ready-made field index for pods: spec.nodeName ("" when unbound, as
 * client-go's "spec.nodeName" field selector sees it). */
int ctl_index_pod_node_name(const ctl_obj *o, ctl_index_vals *out, void *data);

typedef struct ctl_indexer ctl_indexer;
typedef void (*ctl_obj_fn)(const ctl_obj *o, void *arg);

/* An empty indexer with the built-in indexes.  0 or -ENOMEM. */
int ctl_indexer_create(ctl_indexer **out);
/* Frees it and drops its references.  NULL is a no-op. */
void ctl_indexer_destroy(ctl_indexer *ix);
/* Registers index `name` (copied); only while the indexer is empty.
 * 0, -EINVAL (NULL, or name taken), -EBUSY (not empty), -ENOMEM. */
int ctl_indexer_add_index(ctl_indexer *ix, const char *name, ctl_index_fn fn,
                          void *data);
/* Puts o (the indexer takes its own reference) in place of the object with
 * the same key; *old (may be NULL) gets the replaced object, or NULL, with
 * the indexer's reference handed to the caller.  An object is in at most
 * one indexer at a time (its index values live in it): -EINVAL otherwise.
 * On error nothing changed: -EINVAL, -ENOMEM or an index function's
 * code. */
int ctl_indexer_put(ctl_indexer *ix, ctl_obj *o, ctl_obj **old);
/* Removes key; returns the removed object with the indexer's reference
 * handed to the caller, or NULL. */
ctl_obj *ctl_indexer_del(ctl_indexer *ix, const char *key);
/* The object at key, or NULL.  Borrowed (see the ownership rule above). */
const ctl_obj *ctl_indexer_get(const ctl_indexer *ix, const char *key);
size_t ctl_indexer_len(const ctl_indexer *ix);
/* Calls fn for every object (unordered).  fn must not change the
 * indexer. */
void ctl_indexer_foreach(const ctl_indexer *ix, ctl_obj_fn fn, void *arg);
/* Calls fn (may be NULL: just count) for every object filed under `value`
 * in index `name`; returns how many, or -ENOENT when there is no such
 * index.  fn must not change the indexer. */
long ctl_indexer_by_index(const ctl_indexer *ix, const char *name,
                          const char *value, ctl_obj_fn fn, void *arg);

/* ---- informer ------------------------------------------------------------ */
typedef struct ctl_informer ctl_informer;

/* Event handlers (client-go's ResourceEventHandlerFuncs).  Any may be
 * NULL.  Objects are borrowed for the call.  They run after the cache
 * changed, so getters already show `o` / no longer show a deleted one. */
typedef struct ctl_handlers {
    void *data;
    void (*on_add)(ctl_informer *inf, const ctl_obj *o, void *data);
    /* old == o for a periodic resync */
    void (*on_update)(ctl_informer *inf, const ctl_obj *old, const ctl_obj *o,
                      void *data);
    void (*on_delete)(ctl_informer *inf, const ctl_obj *old, void *data);
    /* The cache equals the store at ctl_informer_revision (after the
     * first list and after every relist). */
    void (*on_synced)(ctl_informer *inf, void *data);
    /* Last call, after ctl_informer_close (-ECANCELED) or a fatal error
     * (-ENOMEM); the informer is freed when it returns. */
    void (*on_ended)(ctl_informer *inf, int status, void *data);
} ctl_handlers;

typedef struct ctl_informer_config {
    const char *resource; /* "pods": watches /registry/pods/ */
    const obj_kind *kind; /* values must hold it; NULL: any kind */
    int64_t resync_ms;    /* re-deliver every object as update; 0: never */
    /* After the raw informer ends with an error other than -ECANCELED,
     * start a new one after this long (client-go's reflector backoff);
     * 0: 1000 ms. */
    int restart_ms;
} ctl_informer_config;

typedef struct ctl_informer_stats {
    uint64_t lists;         /* (re)lists applied: SYNCED from the store */
    uint64_t restarts;      /* raw informers started after an error */
    uint64_t decode_errors; /* values left out of the cache */
    uint64_t resyncs;
} ctl_informer_stats;

/* Makes an informer for cfg->resource (copied) on client c (borrowed,
 * must outlive it), not started: add indexes and handlers, then start.
 * 0, -EINVAL, -ENOMEM.  Loop thread. */
int ctl_informer_create(skiff_client *c, const ctl_informer_config *cfg,
                        ctl_informer **out);
/* Before start: like ctl_indexer_add_index on its cache.  -EBUSY after. */
int ctl_informer_add_index(ctl_informer *inf, const char *name, ctl_index_fn fn,
                           void *data);
/* Before start: adds a handler set (copied).  0, -EBUSY, -ENOMEM. */
int ctl_informer_add_handlers(ctl_informer *inf, const ctl_handlers *h);
/* Lists and watches.  Handlers run from the loop, never inside this
 * call.  0, -EBUSY (started), or skiff_informer_start's errors. */
int ctl_informer_start(ctl_informer *inf);
/* Stops it.  Started: on_ended(-ECANCELED) runs later from the loop, then
 * the informer is freed.  Never started: freed at once, no callback.
 * No-op once closing. */
void ctl_informer_close(ctl_informer *inf);

/* The cache (borrowed: for reading; never put or delete through it). */
const ctl_indexer *ctl_informer_cache(const ctl_informer *inf);
/* The store revision the cache reflects, and whether the first list has
 * been applied (client-go's HasSynced). */
int64_t ctl_informer_revision(const ctl_informer *inf);
int ctl_informer_has_synced(const ctl_informer *inf);
ctl_informer_stats ctl_informer_get_stats(const ctl_informer *inf);

#endif
