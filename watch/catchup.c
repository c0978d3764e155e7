/*
 * Catch-up: bringing watchers that start in the past, or were parked by a
 * full sink, up to the hub's revision from storage, then back into the
 * synced set.
 *
 * Watchers needing history wait on one FIFO queue.  watch_hub_step takes
 * the head, reads its range's history with kv_events_read from the
 * watcher's next revision up to the hub's revision at most (never further:
 * later revisions will come through notify, so the two paths neither
 * overlap nor leave a gap), and offers each revision to the sink exactly
 * as notify would.  One read covers at most step_events revisions and
 * step_events events (a revision is never split): storage scans every
 * record in the window, so a watcher on a rarely written key in a long
 * backlog costs a window of revisions per read, not the whole backlog.
 * If the watcher reached the hub's revision it joins the synced set;
 * otherwise it goes to the back of the queue, so one deep backlog cannot
 * starve the others.  Each step spends a caller-given budget (a read
 * costs the larger of the events it returned and the revisions it
 * covered), so the loop that drives the hub is never monopolised.
 *
 * Failure handling:
 *   - the sink refuses a revision: the watcher is parked at it;
 *   - the history it needs is compacted (KV_ECOMPACTED): the watcher is
 *     cancelled with WATCH_ECOMPACTED and the compact revision;
 *   - -ENOMEM (storage or hub scratch): the watcher keeps its place at
 *     the head and its next revision; the step returns -ENOMEM;
 *   - any other storage error: that watcher is cancelled with the code,
 *     since retrying a broken read forever would hide the failure.
 * The read arena is reset after every read, so memory is bounded by one
 * batch whatever the backlog.
 *
 * Requested progress notifications are also sent here (never from the
 * call that requested them), and only to synced watchers.
 */
#include "watch_int.h"

#include <errno.h>

typedef struct catch_ctx {
    watch_hub *hub;
    watch_watcher *w;
    size_t nread;     /* events read from storage */
    int64_t last;     /* last revision fully offered */
    int64_t stop_rev; /* revision not offered when stopped early */
    bool full;        /* the sink refused stop_rev */
    bool nomem;       /* no scratch for stop_rev */
} catch_ctx;

static int catch_cb(void *arg, const kv_events *evs)
{
    catch_ctx *c = arg;
    watch_hub *hub = c->hub;
    if (c->w->dead)
        return 1;
    c->nread += evs->n;
    hub->st.events_read += evs->n;
    if (!evs->n || evs->revision < c->w->next_rev)
        return 0;
    if (watch__scratch(hub, evs->n)) {
        c->nomem = true;
        c->stop_rev = evs->revision;
        return 1;
    }
    watch__batch b = {evs->revision, evs->ev, evs->n, false};
    if (watch__deliver(hub, c->w, &b)) {
        c->full = true;
        c->stop_rev = evs->revision;
        return 1;
    }
    c->last = evs->revision;
    return 0;
}

/* Reads and offers one batch of history to `w`, which is off every list.
 * Returns 0, or -ENOMEM when it should be retried as it is. */
static int catch_up(watch_hub *hub, watch_watcher *w, size_t max, size_t *spent)
{
    watch__group *g = w->group;
    catch_ctx c = {hub, w, 0, 0, 0, false, false};
    int64_t from = w->next_rev, next = 0, compact = 0;
    /* Storage walks every record of the window, matching or not, so the
     * window is bounded in revisions as well as in events. */
    int64_t to = hub->rev;
    if (to - from >= (int64_t)max)
        to = from + (int64_t)max - 1;
    int rc = kv_events_read(hub->kv, g->key, g->key_len, g->end, g->end_len,
                            from, to, (w->flags & WATCH_PREV_KV) != 0, max,
                            &hub->arena, catch_cb, &c, &next, &compact);
    cm_arena_reset(&hub->arena);
    int64_t covered = (c.full || c.nomem ? c.stop_rev : next) - from;
    size_t cost = c.nread > (size_t)covered ? c.nread : (size_t)covered;
    *spent += cost ? cost : 1;
    if (w->dead)
        return 0;
    if (c.full) {
        watch__park(w, c.stop_rev);
        return 0;
    }
    if (c.nomem) {
        w->next_rev = c.stop_rev;
        return -ENOMEM;
    }
    if (rc == KV_ECOMPACTED) {
        watch__cancel(w, WATCH_ECOMPACTED, compact);
        return 0;
    }
    if (rc == -ENOMEM) {
        /* Revisions already accepted by the sink stay accepted. */
        if (c.last >= w->next_rev)
            w->next_rev = c.last + 1;
        return -ENOMEM;
    }
    if (rc < 0) {
        watch__cancel(w, rc, 0);
        return 0;
    }
    /* `next` is the first revision the read did not cover; never move
     * backwards over what the sink already accepted. */
    if (next <= c.last)
        next = c.last + 1;
    if (next > w->next_rev)
        w->next_rev = next;
    if (w->next_rev > hub->rev)
        watch__join(w);
    else
        watch__list_push(&hub->catching, &w->link);
    return 0;
}

int watch_hub_step(watch_hub *hub, size_t budget)
{
    if (hub->depth)
        return WATCH_EBUSY;
    if (!budget)
        budget = hub->opts.step_events;
    size_t spent = 0;
    int rc = 0;
    while (spent < budget && !watch__list_empty(&hub->catching)) {
        watch_watcher *w =
            WATCH__CONTAINER(hub->catching.next, watch_watcher, link);
        watch__list_del(&w->link);
        if (w->next_rev > hub->rev) {
            watch__join(w);
            spent++;
            continue;
        }
        size_t max = budget - spent;
        if (max > hub->opts.step_events)
            max = hub->opts.step_events;
        if ((rc = catch_up(hub, w, max, &spent))) {
            /* Keep its place: first in line for the next step. */
            w->link.next = hub->catching.next;
            w->link.prev = &hub->catching;
            hub->catching.next->prev = &w->link;
            hub->catching.next = &w->link;
            break;
        }
    }
    while (!rc && spent < budget && !watch__list_empty(&hub->progq)) {
        watch_watcher *w =
            WATCH__CONTAINER(hub->progq.next, watch_watcher, plink);
        watch__list_del(&w->plink);
        spent++;
        if (w->state == WATCH_SYNCED && w->progress_pending)
            watch__progress_send(w, true);
    }
    watch__reap(hub);
    if (rc)
        return rc;
    return watch_hub_pending(hub);
}
