/*
 * Informers: a local cache of every key under a prefix, kept current by
 * list + watch (the pattern controllers are built on).
 *
 * An informer is always in one of two phases.  Listing: one range request
 * for the whole prefix; its answer replaces the cache and the difference
 * to the previous cache is reported as ADD/UPDATE/DELETE, then SYNCED.
 * Watching: a watch from the list's revision + 1; each event is applied
 * to the cache and then reported.  The watch layer already resumes across
 * broken connections without gap or duplicate, so the informer lists
 * again only when the watch itself ends (compacted history, or canceled
 * by the server).  A list that fails for a transient reason (deadline, no
 * endpoint) is simply sent again; the request layer's own backoff and
 * dial timeout pace it.
 *
 * The cache is an open-addressing hash table (linear probing, tombstones)
 * of entries that each hold a copy of one kv, key and value in the same
 * allocation.  Callbacks run after the cache changed, so the informer's
 * getters already show the new state.  The informer is freed after its
 * ENDED callback, which runs once the list request and the watch, if any,
 * have completed -- never inside skiff_informer_close.
 */
#include "skiff_int.h"

#include <errno.h>
#include <string.h>

typedef struct ient {
    skiff_kv kv;
    uint64_t hash;
    uint8_t data[]; /* key then value */
} ient;

#define TOMB ((ient *)(uintptr_t)1)

struct skiff_informer {
    skiff_client *c;
    skiff_informer_cb cb;
    void *data;
    uint8_t *prefix, *end;
    size_t plen, elen;
    ient **tab;
    size_t cap, n, used; /* used: entries + tombstones */
    int64_t rev;
    skiff_req list;
    skiff_watch w;
    int listing, watching, closing, ended;
    int relist; /* list again once the watch has ended */
};

static void start_list(skiff_informer *inf);

/* ---- the table ----------------------------------------------------------- */

static uint64_t hash_of(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static ient *ient_new(const skiff_kv *kv)
{
    ient *e = cm_malloc(sizeof *e + kv->key_len + kv->value_len + 1);
    if (!e)
        return NULL;
    e->kv = *kv;
    memcpy(e->data, kv->key, kv->key_len);
    if (kv->value_len)
        memcpy(e->data + kv->key_len, kv->value, kv->value_len);
    e->kv.key = e->data;
    e->kv.value = e->data + kv->key_len;
    e->hash = hash_of(kv->key, kv->key_len);
    return e;
}

/* Index of key's entry, or of the first free slot (-1 if table empty). */
static size_t probe(ient **tab, size_t cap, const void *key, size_t len,
                    uint64_t h, int *found)
{
    size_t i = h & (cap - 1), first_free = (size_t)-1;
    *found = 0;
    for (size_t k = 0; k < cap; k++, i = (i + 1) & (cap - 1)) {
        ient *e = tab[i];
        if (!e)
            return first_free != (size_t)-1 ? first_free : i;
        if (e == TOMB) {
            if (first_free == (size_t)-1)
                first_free = i;
            continue;
        }
        if (e->hash == h && e->kv.key_len == len &&
            memcmp(e->kv.key, key, len) == 0) {
            *found = 1;
            return i;
        }
    }
    return first_free;
}

static int tab_grow(ient ***tabp, size_t *capp, size_t *usedp, size_t n)
{
    size_t ncap = 16;
    while (ncap < (n + 1) * 2)
        ncap *= 2;
    ient **nt = cm_calloc(ncap, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < *capp; i++) {
        ient *e = (*tabp)[i];
        if (!e || e == TOMB)
            continue;
        int found;
        nt[probe(nt, ncap, e->kv.key, e->kv.key_len, e->hash, &found)] = e;
    }
    cm_free(*tabp);
    *tabp = nt;
    *capp = ncap;
    *usedp = n;
    return 0;
}

/* Puts e in the table; *old gets the entry it replaced (or NULL). */
static int tab_put(ient ***tab, size_t *cap, size_t *n, size_t *used, ient *e,
                   ient **old)
{
    *old = NULL;
    if ((*used + 1) * 4 > *cap * 3 && tab_grow(tab, cap, used, *n))
        return -ENOMEM;
    int found;
    size_t i = probe(*tab, *cap, e->kv.key, e->kv.key_len, e->hash, &found);
    if (found) {
        *old = (*tab)[i];
    } else {
        if (!(*tab)[i])
            (*used)++;
        (*n)++;
    }
    (*tab)[i] = e;
    return 0;
}

static ient *tab_get(ient *const *tab, size_t cap, const void *key, size_t len)
{
    if (!cap)
        return NULL;
    int found;
    size_t i = probe((ient **)tab, cap, key, len, hash_of(key, len), &found);
    return found ? tab[i] : NULL;
}

static ient *tab_del(ient **tab, size_t cap, size_t *n, const void *key,
                     size_t len)
{
    if (!cap)
        return NULL;
    int found;
    size_t i = probe(tab, cap, key, len, hash_of(key, len), &found);
    if (!found)
        return NULL;
    ient *e = tab[i];
    tab[i] = TOMB;
    (*n)--;
    return e;
}

static void tab_free(ient **tab, size_t cap)
{
    for (size_t i = 0; i < cap; i++)
        if (tab[i] && tab[i] != TOMB)
            cm_free(tab[i]);
    cm_free(tab);
}

/* ---- ending -------------------------------------------------------------- */

static void inf_free(skiff_informer *inf)
{
    tab_free(inf->tab, inf->cap);
    cm_free(inf->prefix);
    cm_free(inf->end);
    cm_free(inf);
}

static void maybe_end(skiff_informer *inf, int status)
{
    if (inf->listing || inf->watching || inf->ended)
        return;
    inf->ended = 1;
    inf->cb(inf, status, SKIFF_INFORMER_ENDED, NULL, NULL, inf->data);
    inf_free(inf);
}

static void emit(skiff_informer *inf, skiff_informer_event ev,
                 const skiff_kv *kv, const skiff_kv *old)
{
    if (!inf->closing)
        inf->cb(inf, 0, ev, kv, old, inf->data);
}

/* ---- watching ------------------------------------------------------------ */

static void on_watch(skiff_watch *w, int status, const skiff_watch_resp *r)
{
    skiff_informer *inf = w->data;
    if (status < 0) {
        inf->watching = 0;
        if (inf->relist && !inf->closing) {
            inf->relist = 0;
            start_list(inf);
            return;
        }
        if (inf->closing || status == -ECANCELED) {
            inf->closing = 1;
            maybe_end(inf, -ECANCELED);
            return;
        }
        start_list(inf); /* compacted or ended by the server: relist */
        return;
    }
    if (r->created)
        return;
    for (size_t i = 0; i < r->n_events; i++) {
        const skiff_event *e = &r->events[i];
        const skiff_kv *kv = &e->kv;
        if (e->type == SKIFF_EVENT_DELETE) {
            ient *old =
                tab_del(inf->tab, inf->cap, &inf->n, kv->key, kv->key_len);
            inf->rev = r->revision;
            if (old) {
                emit(inf, SKIFF_INFORMER_DELETE, NULL, &old->kv);
                cm_free(old);
            }
            continue;
        }
        ient *ne = ient_new(kv), *old = NULL;
        if (!ne ||
            tab_put(&inf->tab, &inf->cap, &inf->n, &inf->used, ne, &old)) {
            /* Out of memory: the cache can no longer be trusted; list
             * again once the watch is down. */
            cm_free(ne);
            inf->relist = 1;
            skiff_watch_stop(w);
            return;
        }
        inf->rev = r->revision;
        emit(inf, old ? SKIFF_INFORMER_UPDATE : SKIFF_INFORMER_ADD, &ne->kv,
             old ? &old->kv : NULL);
        cm_free(old);
    }
    if (r->n_events == 0 && r->revision > inf->rev)
        inf->rev = r->revision;
}

/* ---- listing ------------------------------------------------------------- */

static int apply_list(skiff_informer *inf, const skiff_result *res)
{
    ient **nt = NULL;
    size_t ncap = 0, nn = 0, nused = 0;
    if (tab_grow(&nt, &ncap, &nused, res->n_kvs))
        goto oom;
    for (size_t i = 0; i < res->n_kvs; i++) {
        ient *e = ient_new(&res->kvs[i]), *dup;
        if (!e || tab_put(&nt, &ncap, &nn, &nused, e, &dup)) {
            cm_free(e);
            goto oom;
        }
        cm_free(dup);
    }
    ient **ot = inf->tab;
    size_t ocap = inf->cap;
    inf->tab = nt;
    inf->cap = ncap;
    inf->n = nn;
    inf->used = nused;
    inf->rev = res->header.revision;
    for (size_t i = 0; i < ncap; i++) {
        ient *e = nt[i];
        if (!e || e == TOMB)
            continue;
        ient *o = tab_get(ot, ocap, e->kv.key, e->kv.key_len);
        if (!o)
            emit(inf, SKIFF_INFORMER_ADD, &e->kv, NULL);
        else if (o->kv.mod_revision != e->kv.mod_revision)
            emit(inf, SKIFF_INFORMER_UPDATE, &e->kv, &o->kv);
    }
    for (size_t i = 0; i < ocap; i++) {
        ient *o = ot[i];
        if (o && o != TOMB &&
            !tab_get(inf->tab, inf->cap, o->kv.key, o->kv.key_len))
            emit(inf, SKIFF_INFORMER_DELETE, NULL, &o->kv);
    }
    tab_free(ot, ocap);
    emit(inf, SKIFF_INFORMER_SYNCED, NULL, NULL);
    return 0;
oom:
    if (nt)
        tab_free(nt, ncap);
    return -ENOMEM;
}

static int start_watch(skiff_informer *inf)
{
    skiff_watch_opts o = {.key = inf->prefix,
                          .key_len = inf->plen,
                          .range_end = inf->end,
                          .range_end_len = inf->elen,
                          .start_revision = inf->rev + 1};
    inf->w.data = inf;
    int rc = skiff_watch_start(inf->c, &inf->w, &o, on_watch);
    if (rc == 0)
        inf->watching = 1;
    return rc;
}

static void on_list(skiff_req *req, int status)
{
    skiff_informer *inf = req->data;
    inf->listing = 0;
    if (inf->closing || status == -ECANCELED) {
        inf->closing = 1;
        maybe_end(inf, -ECANCELED);
        return;
    }
    if (status == SKIFF_EDEADLINE || status == SKIFF_ENOENDPOINT ||
        status == -ECONNRESET) {
        start_list(inf);
        return;
    }
    if (status < 0) {
        inf->closing = 1;
        maybe_end(inf, status);
        return;
    }
    int rc = apply_list(inf, &req->result);
    if (rc || inf->closing) { /* out of memory, or closed by a callback */
        inf->closing = 1;
        maybe_end(inf, rc ? rc : -ECANCELED);
        return;
    }
    rc = start_watch(inf);
    if (rc) {
        inf->closing = 1;
        maybe_end(inf, rc);
    }
}

static void start_list(skiff_informer *inf)
{
    skiff_op op = {.type = SKIFF_OP_RANGE,
                   .key = inf->prefix,
                   .key_len = inf->plen,
                   .range_end = inf->end,
                   .range_end_len = inf->elen};
    inf->list.data = inf;
    int rc = skiff_do(inf->c, &inf->list, &op, on_list);
    if (rc) {
        inf->closing = 1;
        maybe_end(inf, rc == SKIFF_EFAILED ? -ECANCELED : rc);
        return;
    }
    inf->listing = 1;
}

/* ---- public -------------------------------------------------------------- */

int skiff_informer_start(skiff_client *c, skiff_informer **out,
                         const void *prefix, size_t prefix_len,
                         skiff_informer_cb cb, void *data)
{
    if (!c || !out || !cb || (prefix_len && !prefix))
        return -EINVAL;
    *out = NULL;
    if (c->closing)
        return SKIFF_EFAILED;
    skiff_informer *inf = cm_calloc(1, sizeof *inf);
    if (!inf)
        return -ENOMEM;
    inf->c = c;
    inf->cb = cb;
    inf->data = data;
    inf->plen = prefix_len;
    inf->prefix = cm_malloc(prefix_len + 1);
    inf->end = cm_malloc(prefix_len + 1);
    if (!inf->prefix || !inf->end)
        goto oom;
    if (prefix_len)
        memcpy(inf->prefix, prefix, prefix_len);
    skiff_op tmp = {.key = inf->prefix, .key_len = prefix_len};
    skiff_op_prefix(&tmp, inf->end, prefix_len + 1);
    inf->elen = tmp.range_end_len;
    skiff_op op = {.type = SKIFF_OP_RANGE,
                   .key = inf->prefix,
                   .key_len = inf->plen,
                   .range_end = inf->end,
                   .range_end_len = inf->elen};
    inf->list.data = inf;
    int rc = skiff_do(c, &inf->list, &op, on_list);
    if (rc) {
        inf_free(inf);
        return rc;
    }
    inf->listing = 1;
    *out = inf;
    return 0;
oom:
    inf_free(inf);
    return -ENOMEM;
}

const skiff_kv *skiff_informer_get(const skiff_informer *inf, const void *key,
                                   size_t key_len)
{
    ient *e = tab_get(inf->tab, inf->cap, key, key_len);
    return e ? &e->kv : NULL;
}

size_t skiff_informer_len(const skiff_informer *inf)
{
    return inf->n;
}

int64_t skiff_informer_revision(const skiff_informer *inf)
{
    return inf->rev;
}

void skiff_informer_foreach(const skiff_informer *inf,
                            void (*fn)(const skiff_kv *kv, void *arg),
                            void *arg)
{
    for (size_t i = 0; i < inf->cap; i++)
        if (inf->tab[i] && inf->tab[i] != TOMB)
            fn(&inf->tab[i]->kv, arg);
}

void skiff_informer_close(skiff_informer *inf)
{
    if (!inf || inf->closing || inf->ended)
        return;
    inf->closing = 1;
    if (inf->watching)
        skiff_watch_stop(&inf->w);
    /* A list in flight ends it when it completes. */
}
