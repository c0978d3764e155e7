/*
 * watch/watch_int.h -- internals shared by the watch hub's files.
 *
 * Watchers with the same key range share a group.  A group is found by a
 * hash of (key, range_end); single-key groups are also what notify looks
 * up per event, while range groups sit on a list notify scans.  A group
 * holds the synced watchers of its range on an intrusive list, and lives
 * as long as any watcher (in any state) refers to it, so moving a watcher
 * between states never allocates.
 */
#ifndef SKIFF_WATCH_INT_H
#define SKIFF_WATCH_INT_H

#include <stdbool.h>

#include "watch.h"

/* Intrusive doubly linked list; a head is a node whose links point to
 * itself when empty. */
typedef struct watch__link {
    struct watch__link *prev, *next;
} watch__link;

static inline void watch__list_init(watch__link *h)
{
    h->prev = h->next = h;
}
static inline bool watch__list_empty(const watch__link *h)
{
    return h->next == h;
}
static inline bool watch__linked(const watch__link *n)
{
    return n->next != NULL;
}
static inline void watch__list_push(watch__link *h, watch__link *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void watch__list_del(watch__link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

#define WATCH__CONTAINER(p, type, field)                                       \
    ((type *)(void *)((char *)(p)-offsetof(type, field)))

typedef struct watch__group {
    struct watch__group *hnext; /* hash chain */
    watch__link gnode;          /* hub->groups: every group */
    watch__link rnode;          /* hub->ranges: range groups only */
    watch__link synced;         /* synced watchers, by w->link */
    uint64_t hash;
    size_t refs; /* watchers of any state using this group */
    size_t nsynced;
    uint64_t epoch; /* notify pass that last touched it */
    struct watch__group *touched_next;
    uint8_t *key; /* key, then range_end, in one allocation */
    size_t key_len;
    uint8_t *end;
    size_t end_len;
    bool from_key; /* range_end == "\0" */
} watch__group;

struct watch_watcher {
    watch_hub *hub;
    watch__group *group;
    watch__link link;     /* group->synced or hub->catching */
    watch__link plink;    /* hub->progq: requested progress, synced */
    watch__link all;      /* hub->all */
    watch_watcher *inext; /* id hash chain */
    watch_watcher *dnext; /* hub->dead */
    int64_t id;
    int64_t next_rev; /* first revision not given (not synced) */
    int64_t min_rev;  /* synced: first revision it may get */
    enum watch_state state;
    unsigned flags;
    bool progress_pending;
    bool dead; /* stopped inside a callback; reaped later */
    watch_sink *sink;
    void *data;
};

struct watch_hub {
    kv_store *kv;
    watch_hub_options opts;
    int64_t rev; /* last notified revision */
    int depth;   /* >0 while a sink callback runs */
    /* Groups by hash of (key, end). */
    watch__group **gtab;
    size_t gcap, ngroups;
    watch__link groups; /* every group */
    watch__link ranges; /* range groups */
    size_t nsingle;     /* single-key groups */
    /* Watchers by id. */
    watch_watcher **itab;
    size_t icap;
    int64_t next_id;
    watch__link all;      /* every live watcher */
    watch__link catching; /* catch-up queue, by w->link */
    watch__link progq;    /* synced watchers owed a progress */
    watch_watcher *dead;  /* stopped inside callbacks */
    /* Notify scratch: stripped copies and a pointer array per revision. */
    Skiffpb__Event *strip;
    Skiffpb__Event **mev; /* events of the revision one group matches */
    Skiffpb__Event **out;
    size_t scap;
    uint64_t epoch;
    cm_arena arena; /* catch-up reads */
    watch_hub_stats st;
};

/* watcher.c: groups, id index, state moves. */
void watch__err_register(void);
int watch__key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
bool watch__group_match(const watch__group *g, const uint8_t *k, size_t kl);
uint64_t watch__hash(const uint8_t *k, size_t kl, const uint8_t *e, size_t el);
watch__group *watch__group_find(watch_hub *hub, uint64_t h, const uint8_t *k,
                                size_t kl, const uint8_t *e, size_t el);
/* Moves a watcher into the synced set of its group at revision
 * w->next_rev (which must be > hub->rev or its start revision). */
void watch__join(watch_watcher *w);
/* Takes a synced watcher out of its group as parked at `rev`. */
void watch__park(watch_watcher *w, int64_t rev);
/* Cancels: tells the sink, leaves the watcher inert. */
void watch__cancel(watch_watcher *w, int reason, int64_t compact_rev);
/* Frees watchers stopped inside callbacks (depth must be 0). */
void watch__reap(watch_hub *hub);
void watch__free_all(watch_hub *hub);

/* One revision's events as offered to watchers.  `strip` (hub scratch)
 * receives copies of ev[] without prev_kv the first time a watcher that
 * did not ask for prev_kv needs them. */
typedef struct watch__batch {
    int64_t rev;
    Skiffpb__Event *const *ev;
    size_t n;
    bool stripped;
} watch__batch;

/* hub.c: delivery of one revision to one watcher, shared by notify and
 * catch-up (filters, prev_kv stripping, the sink call).  Returns 0, or
 * nonzero when the sink refused it.  Scratch must hold b->n. */
int watch__deliver(watch_hub *hub, watch_watcher *w, watch__batch *b);
/* Grows the hub's scratch to hold n events: 0 or -ENOMEM. */
int watch__scratch(watch_hub *hub, size_t n);
/* Sends a progress notification with the hub's revision; on refusal the
 * watcher is parked (a requested one stays owed). */
void watch__progress_send(watch_watcher *w, bool requested);
/* Counter bookkeeping for a state change (old state may be 0: new). */
void watch__state_set(watch_watcher *w, enum watch_state s);

#endif /* SKIFF_WATCH_INT_H */
