/*
 * The watch hub: fan-out of applied revisions to synced watchers, and
 * progress notifications.
 *
 * watch_hub_notify takes one revision's events.  It first finds the groups
 * (watchers sharing one key range, see watcher.c) that the revision
 * touches: one hash lookup per event for single-key groups, a scan of the
 * range groups per event.  Each touched group is marked with the pass's
 * epoch and chained, so a group hit by several events of a transaction is
 * visited once.  Then, per touched group, the events it matches are
 * gathered in order, and every synced watcher of the group gets them in
 * one sink call after its own filters (no-put, no-delete) and with prev_kv
 * removed unless it asked for it.  Stripping prev_kv needs a copy of the
 * event struct (not of its data): the copies are made once per group
 * pass, in scratch memory the hub keeps between calls.
 *
 * A sink that answers "full" gets its watcher parked at that revision;
 * the revision is offered again from storage after watch_resume, so the
 * sink never sees a gap and the hub never holds events for it.  notify
 * never reads storage and never loops over history: catch-up is
 * watch_hub_step's job (catchup.c), in budgeted slices.
 *
 * If the scratch memory cannot grow (-ENOMEM), notify cannot deliver this
 * revision; it moves every synced watcher to catch-up at the revision
 * instead (a list move per watcher, no allocation), so no event is lost
 * and the watchers come back through storage.
 */
#include "watch_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_STEP_EVENTS 1000

int watch_hub_create(watch_hub **out, kv_store *kv,
                     const watch_hub_options *opts)
{
    watch__err_register();
    if (!out || !kv)
        return CM_EINVAL;
    kv_status st;
    int rc = kv_status_get(kv, &st);
    if (rc)
        return rc;
    watch_hub *hub = cm_calloc(1, sizeof *hub);
    if (!hub)
        return -ENOMEM;
    hub->kv = kv;
    if (opts)
        hub->opts = *opts;
    if (!hub->opts.step_events)
        hub->opts.step_events = DEFAULT_STEP_EVENTS;
    hub->rev = st.revision;
    hub->next_id = 1;
    watch__list_init(&hub->groups);
    watch__list_init(&hub->ranges);
    watch__list_init(&hub->all);
    watch__list_init(&hub->catching);
    watch__list_init(&hub->progq);
    *out = hub;
    return 0;
}

void watch_hub_destroy(watch_hub *hub)
{
    if (!hub)
        return;
    /* Destroying the hub from a sink callback would free the list the
     * caller is walking. */
    if (hub->depth)
        abort();
    watch__free_all(hub);
    cm_free(hub->gtab);
    cm_free(hub->itab);
    cm_free(hub->strip);
    cm_free(hub->mev);
    cm_free(hub->out);
    cm_arena_free(&hub->arena);
    cm_free(hub);
}

int watch__scratch(watch_hub *hub, size_t n)
{
    if (n <= hub->scap)
        return 0;
    size_t cap = hub->scap ? hub->scap : 16;
    while (cap < n)
        cap *= 2;
    Skiffpb__Event *s = cm_realloc(hub->strip, cap * sizeof *s);
    if (!s)
        return -ENOMEM;
    hub->strip = s;
    Skiffpb__Event **m = cm_realloc(hub->mev, cap * sizeof *m);
    if (!m)
        return -ENOMEM;
    hub->mev = m;
    Skiffpb__Event **o = cm_realloc(hub->out, cap * sizeof *o);
    if (!o)
        return -ENOMEM;
    hub->out = o;
    hub->scap = cap;
    return 0;
}

int watch__deliver(watch_hub *hub, watch_watcher *w, watch__batch *b)
{
    bool want_prev = w->flags & WATCH_PREV_KV;
    bool no_put = w->flags & WATCH_NO_PUT;
    bool no_del = w->flags & WATCH_NO_DELETE;
    size_t m = 0;
    for (size_t i = 0; i < b->n; i++) {
        Skiffpb__Event *e = b->ev[i];
        if (e->type == SKIFFPB__EVENT__EVENT_TYPE__PUT ? no_put : no_del)
            continue;
        if (!want_prev && e->prev_kv) {
            if (!b->stripped) {
                for (size_t j = 0; j < b->n; j++) {
                    hub->strip[j] = *b->ev[j];
                    hub->strip[j].prev_kv = NULL;
                }
                b->stripped = true;
            }
            e = &hub->strip[i];
        }
        hub->out[m++] = e;
    }
    if (!m)
        return 0;
    kv_events evs = {b->rev, m, hub->out};
    hub->depth++;
    int rc = w->sink->send(w->sink, w, &evs);
    hub->depth--;
    if (!rc)
        hub->st.events_sent += m;
    return rc;
}

void watch__progress_send(watch_watcher *w, bool requested)
{
    watch_hub *hub = w->hub;
    hub->depth++;
    int rc = w->sink->progress(w->sink, w, hub->rev);
    hub->depth--;
    if (w->dead)
        return;
    if (!rc) {
        if (requested)
            w->progress_pending = false;
        return;
    }
    int64_t next = hub->rev + 1;
    watch__park(w, w->min_rev > next ? w->min_rev : next);
}

/* Out of scratch memory: every synced watcher goes to catch-up at `rev`
 * (or its later start), so this revision reaches it from storage. */
static void demote_all(watch_hub *hub, int64_t rev)
{
    for (watch__link *gn = hub->groups.next; gn != &hub->groups;
         gn = gn->next) {
        watch__group *g = WATCH__CONTAINER(gn, watch__group, gnode);
        while (!watch__list_empty(&g->synced)) {
            watch_watcher *w =
                WATCH__CONTAINER(g->synced.next, watch_watcher, link);
            watch__list_del(&w->link);
            g->nsynced--;
            if (watch__linked(&w->plink))
                watch__list_del(&w->plink);
            w->next_rev = w->min_rev > rev ? w->min_rev : rev;
            watch__state_set(w, WATCH_CATCHING);
            watch__list_push(&hub->catching, &w->link);
            hub->st.demotions++;
        }
    }
}

static void touch(watch_hub *hub, watch__group *g, watch__group **head)
{
    if (g->epoch == hub->epoch)
        return;
    g->epoch = hub->epoch;
    g->touched_next = *head;
    *head = g;
}

/* Offers one group's matching events to each of its synced watchers. */
static void deliver_group(watch_hub *hub, watch__group *g, int64_t rev,
                          const kv_events *evs)
{
    watch__batch b = {rev, evs->ev, evs->n, false};
    if (evs->n > 1) {
        size_t m = 0;
        for (size_t i = 0; i < evs->n; i++) {
            const Skiffpb__KeyValue *kv = evs->ev[i]->kv;
            if (watch__group_match(g, kv->key.data, kv->key.len))
                hub->mev[m++] = evs->ev[i];
        }
        b.ev = hub->mev;
        b.n = m;
    }
    watch__link *n = g->synced.next;
    while (n != &g->synced) {
        watch__link *next = n->next;
        watch_watcher *w = WATCH__CONTAINER(n, watch_watcher, link);
        /* The sink may park or stop this watcher, or stop others (they
         * stay linked until the reap), so `next` stays valid. */
        if (!w->dead && rev >= w->min_rev && watch__deliver(hub, w, &b) &&
            !w->dead)
            watch__park(w, rev);
        n = next;
    }
}

int watch_hub_notify(watch_hub *hub, const kv_events *evs)
{
    if (hub->depth)
        return WATCH_EBUSY;
    if (!evs || !evs->n)
        return 0;
    if (evs->revision <= hub->rev)
        return WATCH_EORDER;
    int64_t rev = evs->revision;
    hub->rev = rev;
    if (!hub->st.synced)
        return 0;
    if (watch__scratch(hub, evs->n)) {
        demote_all(hub, rev);
        return 0;
    }

    hub->epoch++;
    watch__group *touched = NULL;
    for (size_t i = 0; i < evs->n; i++) {
        const Skiffpb__KeyValue *kv = evs->ev[i]->kv;
        if (hub->nsingle) {
            uint64_t h = watch__hash(kv->key.data, kv->key.len, NULL, 0);
            watch__group *g =
                watch__group_find(hub, h, kv->key.data, kv->key.len, NULL, 0);
            if (g && g->nsynced)
                touch(hub, g, &touched);
        }
        for (watch__link *rn = hub->ranges.next; rn != &hub->ranges;
             rn = rn->next) {
            watch__group *g = WATCH__CONTAINER(rn, watch__group, rnode);
            if (g->nsynced && g->epoch != hub->epoch &&
                watch__group_match(g, kv->key.data, kv->key.len))
                touch(hub, g, &touched);
        }
    }
    for (watch__group *g = touched; g; g = g->touched_next)
        deliver_group(hub, g, rev, evs);
    watch__reap(hub);
    return 0;
}

int watch_hub_jump(watch_hub *hub, int64_t rev)
{
    if (hub->depth)
        return WATCH_EBUSY;
    if (rev < hub->rev)
        return WATCH_EORDER;
    if (rev == hub->rev)
        return 0;
    /* Everything after the old revision comes from storage now. */
    demote_all(hub, hub->rev + 1);
    hub->rev = rev;
    return 0;
}

int watch_hub_progress(watch_hub *hub)
{
    if (hub->depth)
        return WATCH_EBUSY;
    for (watch__link *gn = hub->groups.next; gn != &hub->groups;
         gn = gn->next) {
        watch__group *g = WATCH__CONTAINER(gn, watch__group, gnode);
        watch__link *n = g->synced.next;
        while (n != &g->synced) {
            watch__link *next = n->next;
            watch_watcher *w = WATCH__CONTAINER(n, watch_watcher, link);
            if (!w->dead && (w->flags & WATCH_PROGRESS_NOTIFY))
                watch__progress_send(w, false);
            n = next;
        }
    }
    watch__reap(hub);
    return 0;
}

int watch_hub_pending(const watch_hub *hub)
{
    return !watch__list_empty(&hub->catching) ||
           !watch__list_empty(&hub->progq);
}

int64_t watch_hub_revision(const watch_hub *hub)
{
    return hub->rev;
}

void watch_hub_stats_get(const watch_hub *hub, watch_hub_stats *out)
{
    *out = hub->st;
    out->groups = hub->ngroups;
}
