/*
 * The garbage collector's rules for one work item, after Kubernetes'
 * attemptToDeleteItem / processDeletingDependentsItem / orphanDependents.
 *
 * An object marked for deletion is handled as an owner: no finalizers
 * left -> delete it; "orphan" -> strip its uid from every dependent's
 * ownerReferences, then drop the finalizer; "foregroundDeletion" -> queue
 * every dependent (blocking ones first) and drop the finalizer once no
 * dependent with blockOwnerDeletion is left.  Any other finalizer belongs
 * to someone else: wait for its removal (an update queues the object).
 *
 * An unmarked object with ownerReferences is handled as a dependent.
 * Each reference is classified: solid (the owner exists), waiting (the
 * owner is being deleted in the foreground) or dangling (the owner is
 * gone).  A dangling verdict is never taken from the cache alone: an owner
 * missing from the cache is read from the store (a linearizable Get), and
 * only when the store has no object with that uid is the reference
 * dangling, because a cache that lags behind would otherwise delete
 * objects whose owner was just created.  With a solid owner the other
 * references are removed; with none, the object is deleted (foreground
 * when it has dependents itself and an owner is waiting, so the cascade
 * recurses).
 *
 * Each item is decided on the object as read live from the store (the
 * cache only says which keys to look at).  Deletions compare on the
 * version decided on and updates name its uid, so an object changed or
 * recreated in between is left alone; every write is a compare-and-swap,
 * and a lost race returns -EAGAIN and the key comes back through the
 * queue's backoff.
 */
#include "gc_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"

enum ref_state { SOLID, WAITING, DANGLING };

static const char *prop_name(ctl_propagation p)
{
    return p == CTL_PROPAGATION_FOREGROUND ? "Foreground"
           : p == CTL_PROPAGATION_ORPHAN   ? "Orphan"
                                           : "Background";
}

static int has_dependents(const ctl_gc *gc, const ctl_obj *o)
{
    if (!o->meta->uid)
        return 0;
    for (size_t i = 0; i < gc->n_inf; i++)
        if (ctl_indexer_by_index(ctl_informer_cache(gc->inf[i]),
                                 CTL__GC_INDEX_OWNER, o->meta->uid, NULL,
                                 NULL) > 0)
            return 1;
    return 0;
}

static int delete_obj(ctl_gc *gc, const ctl_obj *o, ctl_propagation p,
                      const char *why)
{
    char msg[OBJ_ADMIT_MSG_MAX + 128] = "";
    ctl_delete_opts opts = {.propagation = p,
                            .uid = o->meta->uid,
                            .mod_revision = o->mod_revision,
                            .retries = 1};
    ctl_delete_outcome out;
    int rc = ctl_delete_object(gc->c, o->key, &opts, &out, msg, sizeof msg);
    if (rc) {
        if (rc != -EAGAIN)
            CM_WARN("garbage collector cannot delete", "key=%s err=\"%s\"",
                    o->key, msg);
        return rc;
    }
    if (out == CTL_DELETE_ABSENT)
        return 0;
    gc->stats.deleted++;
    CM_INFO(out == CTL_DELETE_GONE ? "garbage collector deleted object"
                                   : "garbage collector marked object",
            "key=%s uid=%s propagation=%s reason=\"%s\"", o->key,
            o->meta->uid ? o->meta->uid : "", prop_name(p), why);
    return 0;
}

/* ---- updates ------------------------------------------------------------- */

typedef struct uids {
    const char *const *v;
    size_t n;
} uids;

static int in_uids(const uids *u, const char *uid)
{
    for (size_t i = 0; uid && i < u->n; i++)
        if (!strcmp(u->v[i], uid))
            return 1;
    return 0;
}

static int drop_refs(obj_object *o, cm_arena *a, void *arg)
{
    (void)a;
    Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    size_t j = 0;
    for (size_t i = 0; i < md->n_owner_references; i++)
        if (!in_uids(arg, md->owner_references[i]->uid))
            md->owner_references[j++] = md->owner_references[i];
    if (j == md->n_owner_references)
        return 1;
    md->n_owner_references = j;
    return 0;
}

static int drop_finalizer(obj_object *o, cm_arena *a, void *arg)
{
    (void)a;
    return ctl_meta_remove_finalizer(obj_object_meta(o), arg);
}

static int update(ctl_gc *gc, const ctl_obj *o, ctl_mutate_fn fn, void *arg,
                  const char *what)
{
    char msg[OBJ_ADMIT_MSG_MAX + 128] = "";
    int written = 0;
    int rc = ctl_update_object(gc->c, o->key, o->meta->uid, fn, arg, &written,
                               msg, sizeof msg);
    if (rc) {
        if (rc != -EAGAIN)
            CM_WARN("garbage collector cannot update", "key=%s err=\"%s\"",
                    o->key, msg);
        return rc;
    }
    if (written) {
        gc->stats.updated++;
        CM_INFO("garbage collector updated object",
                "key=%s uid=%s change=\"%s\"", o->key,
                o->meta->uid ? o->meta->uid : "", what);
    }
    return 0;
}

/* ---- owners being deleted ------------------------------------------------ */

static const Skiffpb__V1__OwnerReference *ref_to(const ctl_obj *d,
                                                 const char *uid)
{
    for (size_t i = 0; i < d->meta->n_owner_references; i++) {
        const Skiffpb__V1__OwnerReference *r = d->meta->owner_references[i];
        if (r->uid && !strcmp(r->uid, uid))
            return r;
    }
    return NULL;
}

static int orphan_dependents(ctl_gc *gc, const ctl_obj *o)
{
    ctl__objs deps = {0};
    const char *uid = o->meta->uid;
    int rc = ctl__gc_dependents(gc, uid, &deps);
    uids u = {.v = &uid, .n = 1};
    for (size_t i = 0; !rc && i < deps.n; i++)
        rc = update(gc, deps.v[i], drop_refs, &u, "orphaned: owner removed");
    ctl__objs_free(&deps);
    if (rc)
        return rc;
    return update(gc, o, drop_finalizer, OBJ_FINALIZER_ORPHAN,
                  "dependents orphaned: finalizer orphan removed");
}

static int foreground(ctl_gc *gc, const ctl_obj *o)
{
    ctl__objs deps = {0};
    int rc = ctl__gc_dependents(gc, o->meta->uid, &deps);
    if (rc)
        return rc;
    size_t blocking = 0;
    /* The dependents decide for themselves (one may have another owner
     * and only lose its reference); blocking ones go first. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < deps.n; i++) {
            const Skiffpb__V1__OwnerReference *r =
                ref_to(deps.v[i], o->meta->uid);
            int blocks =
                r && r->has_block_owner_deletion && r->block_owner_deletion;
            if (blocks != (pass == 0))
                continue;
            blocking += (size_t)blocks;
            if (!deps.v[i]->meta->deletion_timestamp)
                ctl_wq_add(gc->q, deps.v[i]->key);
        }
    ctl__objs_free(&deps);
    if (blocking)
        return 0; /* their deletion queues this owner again */
    return update(gc, o, drop_finalizer, OBJ_FINALIZER_FOREGROUND,
                  "no blocking dependents: finalizer foregroundDeletion "
                  "removed");
}

static int sync_deleting(ctl_gc *gc, const ctl_obj *o)
{
    const Skiffpb__V1__ObjectMeta *md = o->meta;
    if (!md->n_finalizers)
        return delete_obj(gc, o, CTL_PROPAGATION_BACKGROUND,
                          "marked for deletion, no finalizers left");
    if (!md->uid)
        return 0;
    if (ctl_meta_has_finalizer(md, OBJ_FINALIZER_ORPHAN))
        return orphan_dependents(gc, o);
    if (ctl_meta_has_finalizer(md, OBJ_FINALIZER_FOREGROUND))
        return foreground(gc, o);
    return 0;
}

/* ---- dependents ---------------------------------------------------------- */

/* Whether the owner r names is gone, asking the store.  0 with *absent
 * set, or a client error. */
static int owner_absent(ctl_gc *gc, const ctl_obj *d,
                        const Skiffpb__V1__OwnerReference *r, int *absent)
{
    const obj_kind *k = r->kind ? obj_kind_find(r->kind) : NULL;
    *absent = 0;
    if (!k) {
        /* A kind skiff does not serve cannot be looked up: never delete
         * on a guess. */
        CM_WARN("garbage collector ignores owner of unknown kind",
                "key=%s kind=%s", d->key, r->kind ? r->kind : "");
        return 0;
    }
    if (!r->name || !r->name[0] || (k->namespaced && !d->ns[0])) {
        /* Unresolvable (a cluster-scoped object cannot have a namespaced
         * owner): Kubernetes treats the owner as absent. */
        *absent = 1;
        return 0;
    }
    char key[600];
    if (k->namespaced)
        snprintf(key, sizeof key, "/registry/%s/%s/%s", k->resource, d->ns,
                 r->name);
    else
        snprintf(key, sizeof key, "/registry/%s/%s", k->resource, r->name);
    skiff_result res = {0};
    int rc = skiff_get(gc->c, key, strlen(key), &res);
    if (rc) {
        CM_WARN("garbage collector cannot read owner", "key=%s err=\"%s\"", key,
                skiff_client_errmsg(gc->c));
        skiff_result_free(&res);
        return rc;
    }
    *absent = 1;
    if (res.n_kvs) {
        cm_arena a = {0};
        ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, &a};
        obj_object *o = (obj_object *)protobuf_c_message_unpack(
            &skiffpb__v1__object__descriptor, &al, res.kvs[0].value_len,
            res.kvs[0].value);
        const Skiffpb__V1__ObjectMeta *md =
            o && obj_kind_get(o) ? obj_object_meta(o) : NULL;
        if (md && md->uid && !strcmp(md->uid, r->uid))
            *absent = 0;
        cm_arena_free(&a);
    }
    skiff_result_free(&res);
    return 0;
}

static int sync_owned(ctl_gc *gc, const ctl_obj *d)
{
    size_t n = d->meta->n_owner_references;
    const char **drop = cm_malloc((n ? n : 1) * sizeof *drop);
    if (!drop)
        return -ENOMEM;
    size_t n_solid = 0, n_drop = 0, n_waiting = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const Skiffpb__V1__OwnerReference *r = d->meta->owner_references[i];
        if (!r->uid || !r->uid[0]) {
            n_solid++;
            continue;
        }
        enum ref_state st = SOLID;
        const ctl_obj *owner = ctl__gc_by_uid(gc, r->uid);
        if (owner) {
            if (owner->meta->deletion_timestamp &&
                ctl_meta_has_finalizer(owner->meta, OBJ_FINALIZER_FOREGROUND))
                st = WAITING;
        } else {
            int absent;
            if ((rc = owner_absent(gc, d, r, &absent)))
                goto out;
            st = absent ? DANGLING : SOLID;
        }
        if (st == SOLID)
            n_solid++;
        else
            drop[n_drop++] = r->uid;
        n_waiting += st == WAITING;
    }
    if (!n_drop)
        goto out;
    if (n_solid) {
        uids u = {.v = drop, .n = n_drop};
        rc = update(gc, d, drop_refs, &u,
                    "references to deleted owners removed");
    } else if (n_waiting) {
        rc = delete_obj(gc, d,
                        has_dependents(gc, d) ? CTL_PROPAGATION_FOREGROUND
                                              : CTL_PROPAGATION_BACKGROUND,
                        "owner is being deleted in the foreground");
    } else {
        rc = delete_obj(gc, d, CTL_PROPAGATION_BACKGROUND,
                        "all owners are gone");
    }
out:
    cm_free(drop);
    return rc;
}

int ctl__gc_sync(ctl_gc *gc, const char *key)
{
    if (!ctl__gc_get(gc, key))
        return 0; /* deleted: its delete event has queued what it affects */
    /* Decide on the latest version, read live as Kubernetes' collector
     * does: the cache may lag, and a stale copy could delete an object
     * that was just adopted.  Deletions then compare on this version. */
    skiff_result res = {0};
    int rc = skiff_get(gc->c, key, strlen(key), &res);
    if (rc || !res.n_kvs) {
        skiff_result_free(&res);
        return rc;
    }
    ctl_obj *o;
    rc = ctl_obj_decode(&res.kvs[0], NULL, &o);
    skiff_result_free(&res);
    if (rc)
        return rc == -EINVAL ? 0 : rc; /* not an object: nothing to do */
    rc = o->meta->deletion_timestamp   ? sync_deleting(gc, o)
         : o->meta->n_owner_references ? sync_owned(gc, o)
                                       : 0;
    ctl_obj_unref(o);
    return rc;
}
