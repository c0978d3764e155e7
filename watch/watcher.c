/*
 * Watchers: creation, lookup, state moves and the indexes that make
 * matching cheap.
 *
 * Two hash tables with separate chaining and power-of-two sizes back the
 * hub.  The group table maps (key, range_end) to the group of watchers on
 * that exact range, so ten thousand watchers on one prefix are one group
 * and the events of a revision are matched once per group, not once per
 * watcher.  Single-key groups are found per event by one hash lookup;
 * range and from-key groups are on a list that notify scans (one key
 * comparison or two per group).  The id table maps watch ids to watchers.
 * Tables grow before anything else is allocated in watch_start, so a
 * failed start changes nothing.
 *
 * A group outlives moves between states: it is referenced by every
 * watcher on its range and freed with the last one.  Parking, joining and
 * cancelling are therefore pure list operations that cannot fail, which
 * is what lets notify fall back to catch-up under memory pressure.
 *
 * Sink callbacks may stop watchers, including the one being served or the
 * next one on a list the hub is walking.  watch_stop called inside a
 * callback only marks the watcher dead and unlinks it from everything
 * except its group's synced list; the hub skips dead watchers while
 * walking and frees them (watch__reap) once the outermost call returns.
 */
#include "watch_int.h"

#include <errno.h>
#include <string.h>

#define MIN_TABLE 16

static const char *watch_msg(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return m;
        WATCH_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

static const char *watch_name(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return #n;
        WATCH_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

void watch__err_register(void)
{
    cm_err_register(-3999, -3000, watch_msg, watch_name);
}

const char *watch_strerror(int code)
{
    const char *s = watch_msg(code);
    return s ? s : cm_strerror(code);
}

const char *watch_err_name(int code)
{
    const char *s = watch_name(code);
    return s ? s : cm_err_name(code);
}

int watch__key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

bool watch__group_match(const watch__group *g, const uint8_t *k, size_t kl)
{
    if (!g->end_len)
        return kl == g->key_len && memcmp(k, g->key, kl) == 0;
    if (watch__key_cmp(k, kl, g->key, g->key_len) < 0)
        return false;
    return g->from_key || watch__key_cmp(k, kl, g->end, g->end_len) < 0;
}

/* FNV-1a over key, a separator that cannot be confused with key bytes
 * (the lengths), then range_end. */
uint64_t watch__hash(const uint8_t *k, size_t kl, const uint8_t *e, size_t el)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < kl; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    h = (h ^ (uint64_t)kl) * 0x100000001b3ull;
    for (size_t i = 0; i < el; i++)
        h = (h ^ e[i]) * 0x100000001b3ull;
    h = (h ^ (uint64_t)el) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t id_hash(int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 31);
}

watch__group *watch__group_find(watch_hub *hub, uint64_t h, const uint8_t *k,
                                size_t kl, const uint8_t *e, size_t el)
{
    if (!hub->gcap)
        return NULL;
    watch__group *g = hub->gtab[h & (hub->gcap - 1)];
    for (; g; g = g->hnext)
        if (g->hash == h && g->key_len == kl && g->end_len == el &&
            memcmp(g->key, k, kl) == 0 && (!el || memcmp(g->end, e, el) == 0))
            return g;
    return NULL;
}

/* Makes room for one more group: 0 or -ENOMEM (table unchanged). */
static int gtab_reserve(watch_hub *hub)
{
    if (hub->ngroups + 1 <= hub->gcap)
        return 0;
    size_t cap = hub->gcap ? hub->gcap * 2 : MIN_TABLE;
    watch__group **t = cm_calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < hub->gcap; i++) {
        watch__group *g = hub->gtab[i];
        while (g) {
            watch__group *nx = g->hnext;
            g->hnext = t[g->hash & (cap - 1)];
            t[g->hash & (cap - 1)] = g;
            g = nx;
        }
    }
    cm_free(hub->gtab);
    hub->gtab = t;
    hub->gcap = cap;
    return 0;
}

static int itab_reserve(watch_hub *hub)
{
    if (hub->st.watchers + 1 <= hub->icap)
        return 0;
    size_t cap = hub->icap ? hub->icap * 2 : MIN_TABLE;
    watch_watcher **t = cm_calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < hub->icap; i++) {
        watch_watcher *w = hub->itab[i];
        while (w) {
            watch_watcher *nx = w->inext;
            size_t b = id_hash(w->id) & (cap - 1);
            w->inext = t[b];
            t[b] = w;
            w = nx;
        }
    }
    cm_free(hub->itab);
    hub->itab = t;
    hub->icap = cap;
    return 0;
}

static void itab_del(watch_hub *hub, watch_watcher *w)
{
    watch_watcher **pp = &hub->itab[id_hash(w->id) & (hub->icap - 1)];
    while (*pp && *pp != w)
        pp = &(*pp)->inext;
    if (*pp)
        *pp = w->inext;
    w->inext = NULL;
}

watch_watcher *watch_find(watch_hub *hub, int64_t id)
{
    if (!hub->icap)
        return NULL;
    watch_watcher *w = hub->itab[id_hash(id) & (hub->icap - 1)];
    while (w && w->id != id)
        w = w->inext;
    return w;
}

static watch__group *group_new(watch_hub *hub, uint64_t h, const uint8_t *k,
                               size_t kl, const uint8_t *e, size_t el)
{
    watch__group *g = cm_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->key = cm_malloc(kl + el);
    if (!g->key) {
        cm_free(g);
        return NULL;
    }
    memcpy(g->key, k, kl);
    if (el)
        memcpy(g->key + kl, e, el);
    g->key_len = kl;
    g->end = el ? g->key + kl : NULL;
    g->end_len = el;
    g->from_key = el == 1 && e[0] == 0;
    g->hash = h;
    watch__list_init(&g->synced);
    size_t b = h & (hub->gcap - 1);
    g->hnext = hub->gtab[b];
    hub->gtab[b] = g;
    watch__list_push(&hub->groups, &g->gnode);
    if (el)
        watch__list_push(&hub->ranges, &g->rnode);
    else
        hub->nsingle++;
    hub->ngroups++;
    return g;
}

static void group_unref(watch_hub *hub, watch__group *g)
{
    if (--g->refs)
        return;
    watch__group **pp = &hub->gtab[g->hash & (hub->gcap - 1)];
    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    watch__list_del(&g->gnode);
    if (g->end_len)
        watch__list_del(&g->rnode);
    else
        hub->nsingle--;
    hub->ngroups--;
    cm_free(g->key);
    cm_free(g);
}

static size_t *state_counter(watch_hub *hub, enum watch_state s)
{
    switch (s) {
    case WATCH_SYNCED:
        return &hub->st.synced;
    case WATCH_CATCHING:
        return &hub->st.catching;
    case WATCH_PARKED:
        return &hub->st.parked;
    case WATCH_CANCELED:
        return &hub->st.canceled;
    }
    return NULL;
}

void watch__state_set(watch_watcher *w, enum watch_state s)
{
    size_t *c = state_counter(w->hub, w->state);
    if (c)
        (*c)--;
    w->state = s;
    if ((c = state_counter(w->hub, s)))
        (*c)++;
}

void watch__join(watch_watcher *w)
{
    watch_hub *hub = w->hub;
    if (watch__linked(&w->link))
        watch__list_del(&w->link);
    watch__state_set(w, WATCH_SYNCED);
    w->min_rev = w->next_rev;
    watch__list_push(&w->group->synced, &w->link);
    w->group->nsynced++;
    if (w->progress_pending && !watch__linked(&w->plink))
        watch__list_push(&hub->progq, &w->plink);
}

/* Takes a watcher off whatever list holds it. */
static void unlink_state(watch_watcher *w)
{
    if (watch__linked(&w->link)) {
        watch__list_del(&w->link);
        if (w->state == WATCH_SYNCED)
            w->group->nsynced--;
    }
    if (watch__linked(&w->plink))
        watch__list_del(&w->plink);
}

void watch__park(watch_watcher *w, int64_t rev)
{
    unlink_state(w);
    w->next_rev = rev;
    watch__state_set(w, WATCH_PARKED);
    w->hub->st.parks++;
}

void watch__cancel(watch_watcher *w, int reason, int64_t compact_rev)
{
    watch_hub *hub = w->hub;
    unlink_state(w);
    watch__state_set(w, WATCH_CANCELED);
    w->progress_pending = false;
    hub->depth++;
    w->sink->cancel(w->sink, w, reason, compact_rev);
    hub->depth--;
}

static void watcher_free(watch_watcher *w)
{
    watch_hub *hub = w->hub;
    group_unref(hub, w->group);
    cm_free(w);
}

void watch__reap(watch_hub *hub)
{
    while (hub->dead) {
        watch_watcher *w = hub->dead;
        hub->dead = w->dnext;
        if (watch__linked(&w->link)) {
            watch__list_del(&w->link);
            w->group->nsynced--;
        }
        watcher_free(w);
    }
}

void watch__free_all(watch_hub *hub)
{
    watch__reap(hub);
    while (!watch__list_empty(&hub->all)) {
        watch_watcher *w = WATCH__CONTAINER(hub->all.next, watch_watcher, all);
        watch__list_del(&w->all);
        unlink_state(w);
        watcher_free(w);
    }
}

static int check_range(const watch_options *o)
{
    if (!o->key || o->key_len == 0 || o->key_len > KV_MAX_KEY)
        return WATCH_EBADRANGE;
    if (!o->end_len)
        return 0;
    if (!o->range_end || o->end_len > KV_MAX_KEY + 1)
        return WATCH_EBADRANGE;
    if (o->end_len == 1 && o->range_end[0] == 0)
        return 0;
    if (watch__key_cmp(o->range_end, o->end_len, o->key, o->key_len) <= 0)
        return WATCH_EBADRANGE;
    return 0;
}

int watch_start(watch_hub *hub, const watch_options *o, watch_watcher **out)
{
    if (!o)
        return CM_EINVAL;
    int rc = check_range(o);
    if (rc)
        return rc;
    if (o->start_revision < 0)
        return WATCH_EBADREV;
    if (o->id < 0)
        return CM_EINVAL;
    if (!o->sink || !o->sink->send || !o->sink->progress || !o->sink->cancel)
        return WATCH_EBADSINK;
    if (hub->opts.max_watchers && hub->st.watchers >= hub->opts.max_watchers)
        return WATCH_ELIMIT;
    int64_t id = o->id;
    if (id && watch_find(hub, id))
        return WATCH_EEXIST;
    if (!id) {
        while (watch_find(hub, hub->next_id))
            hub->next_id++;
        id = hub->next_id++;
    }

    /* Everything that can fail comes before anything is linked. */
    const uint8_t *end = o->end_len ? o->range_end : NULL;
    uint64_t h = watch__hash(o->key, o->key_len, end, o->end_len);
    watch__group *g =
        watch__group_find(hub, h, o->key, o->key_len, end, o->end_len);
    if ((rc = itab_reserve(hub)))
        return rc;
    if (!g && (rc = gtab_reserve(hub)))
        return rc;
    watch_watcher *w = cm_calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    if (!g) {
        g = group_new(hub, h, o->key, o->key_len, end, o->end_len);
        if (!g) {
            cm_free(w);
            return -ENOMEM;
        }
    }
    g->refs++;

    w->hub = hub;
    w->group = g;
    w->id = id;
    w->flags = o->flags;
    w->sink = o->sink;
    w->data = o->data;
    size_t b = id_hash(id) & (hub->icap - 1);
    w->inext = hub->itab[b];
    hub->itab[b] = w;
    watch__list_push(&hub->all, &w->all);
    hub->st.watchers++;

    if (o->start_revision == 0 || o->start_revision > hub->rev) {
        /* Nothing to read from storage: straight into the synced set,
         * waiting for its start revision if that is in the future. */
        w->next_rev = o->start_revision ? o->start_revision : hub->rev + 1;
        watch__join(w);
    } else {
        w->next_rev = o->start_revision;
        watch__state_set(w, WATCH_CATCHING);
        watch__list_push(&hub->catching, &w->link);
    }
    *out = w;
    return 0;
}

void watch_stop(watch_watcher *w)
{
    if (!w || w->dead)
        return;
    watch_hub *hub = w->hub;
    itab_del(hub, w);
    watch__list_del(&w->all);
    if (watch__linked(&w->plink))
        watch__list_del(&w->plink);
    size_t *c = state_counter(hub, w->state);
    if (c)
        (*c)--;
    hub->st.watchers--;
    if (hub->depth) {
        /* A walk over the synced list may be holding the next pointer:
         * stay linked there until the hub call returns. */
        if (w->state != WATCH_SYNCED && watch__linked(&w->link))
            watch__list_del(&w->link);
        w->dead = true;
        w->dnext = hub->dead;
        hub->dead = w;
        return;
    }
    unlink_state(w);
    watcher_free(w);
}

int watch_resume(watch_watcher *w)
{
    if (w->state == WATCH_CANCELED)
        return WATCH_ECANCELED;
    if (w->state != WATCH_PARKED)
        return 0;
    watch__state_set(w, WATCH_CATCHING);
    watch__list_push(&w->hub->catching, &w->link);
    return 0;
}

int watch_progress_request(watch_watcher *w)
{
    if (w->state == WATCH_CANCELED)
        return WATCH_ECANCELED;
    w->progress_pending = true;
    if (w->state == WATCH_SYNCED && !watch__linked(&w->plink))
        watch__list_push(&w->hub->progq, &w->plink);
    return 0;
}

int64_t watch_id(const watch_watcher *w)
{
    return w->id;
}

void *watch_data(const watch_watcher *w)
{
    return w->data;
}

enum watch_state watch_state_get(const watch_watcher *w)
{
    return w->state;
}

int64_t watch_next_revision(const watch_watcher *w)
{
    if (w->state != WATCH_SYNCED)
        return w->next_rev;
    int64_t next = w->hub->rev + 1;
    return w->min_rev > next ? w->min_rev : next;
}
