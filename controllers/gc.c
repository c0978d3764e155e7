/*
 * The garbage collector's plumbing: one informer per kind that can own or
 * be owned, two extra indexes on each cache (the object's uid and the uids
 * it names as owners), and the handlers that turn store changes into work
 * items.
 *
 * Kubernetes' collector keeps a separate graph of owners and dependents;
 * here the informers' indexes are that graph, so there is one copy of
 * every object and no second structure to keep consistent.  "Who owns x"
 * is a uid lookup, "who depends on x" an owner-index lookup, each a hash
 * probe per kind.
 *
 * What is queued: an object whenever it changes and has ownerReferences
 * or a deletion mark (its own rules may apply), and, when an object is
 * deleted, its dependents (their owner may now be gone) and its owners (a
 * foreground deletion may have been waiting for it).  The rules themselves
 * are in gc_rules.c; they read the caches but confirm an owner's absence
 * in the store before acting on it.
 */
#include "gc_int.h"

#include <errno.h>
#include <string.h>

/* Every kind but Event: events expire through their lease and own
 * nothing. */
static const char *const kinds[] = {
    "Namespace",
    "Node",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "PersistentVolumeClaim",
    "HorizontalPodAutoscaler",
    "Lease",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
};
#define N_KINDS (sizeof kinds / sizeof *kinds)

/* ---- object lists -------------------------------------------------------- */

void ctl__objs_free(ctl__objs *l)
{
    for (size_t i = 0; i < l->n; i++)
        ctl_obj_unref(l->v[i]);
    cm_free(l->v);
    memset(l, 0, sizeof *l);
}

typedef struct collect {
    ctl__objs *out;
    int rc;
} collect;

static void collect_fn(const ctl_obj *o, void *arg)
{
    collect *cl = arg;
    ctl__objs *l = cl->out;
    if (cl->rc)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        const ctl_obj **v = cm_realloc(l->v, cap * sizeof *v);
        if (!v) {
            cl->rc = -ENOMEM;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ctl_obj_ref(o);
}

/* ---- indexes ------------------------------------------------------------- */

static int index_uid(const ctl_obj *o, ctl_index_vals *out, void *data)
{
    (void)data;
    if (!o->meta->uid || !o->meta->uid[0])
        return 0;
    return ctl_index_vals_add(out, o->meta->uid, strlen(o->meta->uid));
}

static int index_owner(const ctl_obj *o, ctl_index_vals *out, void *data)
{
    (void)data;
    for (size_t i = 0; i < o->meta->n_owner_references; i++) {
        const char *u = o->meta->owner_references[i]->uid;
        if (u && u[0]) {
            int rc = ctl_index_vals_add(out, u, strlen(u));
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- lookups ------------------------------------------------------------- */

int ctl__gc_dependents(const ctl_gc *gc, const char *uid, ctl__objs *out)
{
    collect cl = {.out = out};
    for (size_t i = 0; i < gc->n_inf && !cl.rc; i++)
        ctl_indexer_by_index(ctl_informer_cache(gc->inf[i]),
                             CTL__GC_INDEX_OWNER, uid, collect_fn, &cl);
    return cl.rc;
}

static void first_fn(const ctl_obj *o, void *arg)
{
    const ctl_obj **found = arg;
    if (!*found)
        *found = o;
}

const ctl_obj *ctl__gc_by_uid(const ctl_gc *gc, const char *uid)
{
    const ctl_obj *found = NULL;
    for (size_t i = 0; i < gc->n_inf && !found; i++)
        ctl_indexer_by_index(ctl_informer_cache(gc->inf[i]), CTL__GC_INDEX_UID,
                             uid, first_fn, &found);
    return found;
}

const ctl_obj *ctl__gc_get(const ctl_gc *gc, const char *key)
{
    /* "/registry/<resource>/...": the informer of that resource. */
    const char *res = key + strlen("/registry/");
    const char *slash = strchr(res, '/');
    if (strncmp(key, "/registry/", 10) || !slash)
        return NULL;
    size_t n = (size_t)(slash - res);
    for (size_t i = 0; i < gc->n_inf; i++)
        if (strlen(gc->kind[i]->resource) == n &&
            !strncmp(gc->kind[i]->resource, res, n))
            return ctl_indexer_get(ctl_informer_cache(gc->inf[i]), key);
    return NULL;
}

/* ---- handlers ------------------------------------------------------------ */

static void enqueue(ctl_gc *gc, const char *key)
{
    int rc = ctl_wq_add(gc->q, key);
    if (rc && rc != -ESHUTDOWN)
        CM_WARN("garbage collector cannot queue", "key=%s err=\"%s\"", key,
                cm_strerror(rc));
}

static void enqueue_fn(const ctl_obj *o, void *arg)
{
    enqueue(arg, o->key);
}

static int interesting(const ctl_obj *o)
{
    return o->meta->n_owner_references || o->meta->deletion_timestamp;
}

static void on_add(ctl_informer *inf, const ctl_obj *o, void *data)
{
    (void)inf;
    if (interesting(o))
        enqueue(data, o->key);
}

static void on_update(ctl_informer *inf, const ctl_obj *old, const ctl_obj *o,
                      void *data)
{
    (void)inf;
    ctl_gc *gc = data;
    if (interesting(o))
        enqueue(gc, o->key);
    /* Owners it no longer names may be waiting for it (a foreground
     * deletion ends when no blocking dependent is left). */
    for (size_t i = 0; i < old->meta->n_owner_references; i++) {
        const char *u = old->meta->owner_references[i]->uid;
        int kept = 0;
        for (size_t j = 0; u && j < o->meta->n_owner_references; j++)
            kept |= o->meta->owner_references[j]->uid &&
                    !strcmp(o->meta->owner_references[j]->uid, u);
        const ctl_obj *owner = u && !kept ? ctl__gc_by_uid(gc, u) : NULL;
        if (owner && owner->meta->deletion_timestamp)
            enqueue(gc, owner->key);
    }
}

static void on_delete(ctl_informer *inf, const ctl_obj *old, void *data)
{
    (void)inf;
    ctl_gc *gc = data;
    /* Its dependents may have lost their last owner. */
    if (old->meta->uid && old->meta->uid[0])
        for (size_t i = 0; i < gc->n_inf; i++)
            ctl_indexer_by_index(ctl_informer_cache(gc->inf[i]),
                                 CTL__GC_INDEX_OWNER, old->meta->uid,
                                 enqueue_fn, gc);
    /* Its owners may be waiting for it (foreground deletion). */
    for (size_t i = 0; i < old->meta->n_owner_references; i++) {
        const char *u = old->meta->owner_references[i]->uid;
        const ctl_obj *owner = u ? ctl__gc_by_uid(gc, u) : NULL;
        if (owner && owner->meta->deletion_timestamp)
            enqueue(gc, owner->key);
    }
}

static void on_ended(ctl_informer *inf, int status, void *data)
{
    (void)inf;
    ctl_gc *gc = data;
    gc->n_ended++;
    if (status != -ECANCELED)
        CM_ERROR("garbage collector informer ended", "err=\"%s\"",
                 cm_strerror(status));
}

static void on_wq_closed(void *data)
{
    ((ctl_gc *)data)->q_closed = 1;
}

/* ---- public -------------------------------------------------------------- */

int ctl_gc_create(const ctl_gc_config *cfg, ctl_gc **out)
{
    if (!cfg || !cfg->client || !out)
        return -EINVAL;
    ctl_gc *gc = cm_calloc(1, sizeof *gc);
    if (!gc)
        return -ENOMEM;
    gc->c = cfg->client;
    gc->resync_ms = cfg->resync_ms;
    ctl_wq_config qc = {.data = gc};
    int rc = ctl_wq_create(skiff_client_loop(gc->c), &qc, &gc->q);
    if (rc) {
        cm_free(gc);
        return rc;
    }
    ctl_handlers h = {.data = gc,
                      .on_add = on_add,
                      .on_update = on_update,
                      .on_delete = on_delete,
                      .on_ended = on_ended};
    for (size_t i = 0; i < N_KINDS; i++) {
        const obj_kind *k = obj_kind_find(kinds[i]);
        if (!k)
            continue;
        ctl_informer_config ic = {
            .resource = k->resource, .kind = k, .resync_ms = cfg->resync_ms};
        ctl_informer *inf;
        if ((rc = ctl_informer_create(gc->c, &ic, &inf)))
            goto err;
        gc->inf[gc->n_inf] = inf;
        gc->kind[gc->n_inf++] = k;
        if ((rc = ctl_informer_add_index(inf, CTL__GC_INDEX_UID, index_uid,
                                         NULL)) ||
            (rc = ctl_informer_add_index(inf, CTL__GC_INDEX_OWNER, index_owner,
                                         NULL)) ||
            (rc = ctl_informer_add_handlers(inf, &h)))
            goto err;
    }
    *out = gc;
    return 0;
err:
    for (size_t i = 0; i < gc->n_inf; i++)
        ctl_informer_close(gc->inf[i]); /* never started: freed at once */
    ctl_wq_close(gc->q, on_wq_closed);
    while (!gc->q_closed)
        skiff_client_poll(gc->c, 1);
    cm_free(gc);
    return rc;
}

int ctl_gc_start(ctl_gc *gc)
{
    for (size_t i = 0; i < gc->n_inf; i++) {
        int rc = ctl_informer_start(gc->inf[i]);
        if (rc)
            return rc;
        gc->n_started++;
    }
    return 0;
}

int ctl_gc_synced(const ctl_gc *gc)
{
    for (size_t i = 0; i < gc->n_inf; i++)
        if (!ctl_informer_has_synced(gc->inf[i]))
            return 0;
    return 1;
}

int ctl_gc_process(ctl_gc *gc, int max)
{
    if (!ctl_gc_synced(gc))
        return 0;
    if (max <= 0)
        max = 100;
    int done = 0;
    const char *key;
    while (done < max && ctl_wq_get(gc->q, &key) == 0) {
        int rc = ctl__gc_sync(gc, key);
        if (rc) {
            int64_t delay = 0;
            gc->stats.failures++;
            ctl_wq_add_rate_limited(gc->q, key, &delay);
            CM_WARN("garbage collector will retry",
                    "key=%s err=\"%s\" delay_ms=%lld", key, cm_strerror(rc),
                    (long long)delay);
        } else {
            ctl_wq_forget(gc->q, key);
        }
        ctl_wq_done(gc->q, key);
        done++;
    }
    return done;
}

ctl_gc_stats ctl_gc_get_stats(const ctl_gc *gc)
{
    return gc->stats;
}

void ctl_gc_destroy(ctl_gc *gc)
{
    if (!gc)
        return;
    for (size_t i = 0; i < gc->n_inf; i++)
        ctl_informer_close(gc->inf[i]);
    ctl_wq_close(gc->q, on_wq_closed);
    while (!gc->q_closed || gc->n_ended < gc->n_started)
        skiff_client_poll(gc->c, 1);
    cm_free(gc);
}
