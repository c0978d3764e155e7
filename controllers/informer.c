/*
 * Object informers: client-go's SharedIndexInformer over libskiff's raw
 * informer (skiff_informer, client/informer.c).
 *
 * The raw informer already does the hard protocol part: list at a
 * revision, watch from the next one, resume across broken connections
 * without gap or duplicate (the watch layer), and relist when the watch
 * cannot continue (compacted history), reporting the difference as
 * ADD/UPDATE/DELETE.  This layer turns its byte-level kvs into decoded,
 * indexed, shared objects, and it makes the handler sequence consistent
 * by construction: every raw event is applied to *this* cache first and
 * the handler call is derived from what the cache held before --
 *   - a value for a key the cache lacks is an add, for a key it has an
 *     update (and nothing when the mod_revision is the same: a duplicate);
 *   - a delete of a key the cache lacks is dropped;
 *   - a value that does not decode (or holds another kind) leaves the
 *     cache, reported as a delete if it was there, and is counted.
 * So replaying the handler calls on an empty map always gives the cache,
 * whatever the raw layer reports.
 *
 * The raw informer gives up only on errors it cannot retry (a server
 * error on list, out of memory).  Like client-go's reflector, this layer
 * then starts a new one after restart_ms.  The new one begins with an
 * empty cache and reports every key as ADD; the objects cached before it
 * started are remembered in `unseen` and those its list did not report are
 * deleted at its SYNCED (client-go's Replace).
 *
 * Periodic resync re-delivers every cached object as update(o, o) on a
 * uv timer, only once the first list has been applied.
 *
 * Closing is asynchronous: the raw informer ends from the loop and the two
 * uv timers close through uv_close; when all three are done on_ended runs
 * and the informer is freed.
 */
#include "informer.h"

#include <errno.h>
#include <string.h>
#include <uv.h>

#include "ctl_int.h"

struct ctl_informer {
    skiff_client *c;
    char *prefix;
    size_t plen;
    const obj_kind *kind;
    int64_t resync_ms;
    int restart_ms;
    ctl_indexer *cache;
    ctl_handlers *h;
    size_t n_h;
    skiff_informer *raw;
    ctl__map unseen; /* key -> ctl_obj (referenced) during a restart */
    int sweep;       /* delete what is left in unseen at the next SYNCED */
    uv_timer_t resync, restart;
    int open_handles;
    int started, closing, synced, end_status;
    int64_t rev;
    ctl_informer_stats st;
};

static void start_raw(ctl_informer *inf);
static void on_restart(uv_timer_t *t);

/* ---- dispatch ------------------------------------------------------------ */

#define EACH_HANDLER(inf, h)                                                   \
    for (const ctl_handlers *h = (inf)->h; h < (inf)->h + (inf)->n_h; h++)     \
        if (!(inf)->closing)

static void emit_add(ctl_informer *inf, const ctl_obj *o)
{
    EACH_HANDLER(inf, h) if (h->on_add) h->on_add(inf, o, h->data);
}

static void emit_update(ctl_informer *inf, const ctl_obj *old, const ctl_obj *o)
{
    EACH_HANDLER(inf, h) if (h->on_update) h->on_update(inf, old, o, h->data);
}

static void emit_delete(ctl_informer *inf, const ctl_obj *old)
{
    EACH_HANDLER(inf, h) if (h->on_delete) h->on_delete(inf, old, h->data);
}

/* ---- ending -------------------------------------------------------------- */

static void unseen_drop(void *val, void *arg)
{
    (void)arg;
    ctl_obj_unref(val);
}

static void unseen_clear(ctl_informer *inf)
{
    ctl__map_foreach(&inf->unseen, unseen_drop, NULL);
    ctl__map_free(&inf->unseen);
    inf->sweep = 0;
}

static void inf_free(ctl_informer *inf)
{
    unseen_clear(inf);
    ctl_indexer_destroy(inf->cache);
    cm_free(inf->h);
    cm_free(inf->prefix);
    cm_free(inf);
}

static void maybe_end(ctl_informer *inf)
{
    if (inf->raw || inf->open_handles)
        return;
    int status = inf->end_status ? inf->end_status : -ECANCELED;
    for (size_t i = 0; i < inf->n_h; i++)
        if (inf->h[i].on_ended)
            inf->h[i].on_ended(inf, status, inf->h[i].data);
    inf_free(inf);
}

static void on_timer_closed(uv_handle_t *t)
{
    ctl_informer *inf = t->data;
    inf->open_handles--;
    maybe_end(inf);
}

/* Stops everything; on_ended(status) follows from the loop. */
static void fail(ctl_informer *inf, int status)
{
    if (inf->closing)
        return;
    inf->closing = 1;
    inf->end_status = status;
    if (inf->raw)
        skiff_informer_close(inf->raw);
    uv_close((uv_handle_t *)&inf->resync, on_timer_closed);
    uv_close((uv_handle_t *)&inf->restart, on_timer_closed);
}

/* ---- applying raw events ------------------------------------------------- */

/* A NUL-terminated copy of a kv key: the cache's keys are C strings. */
static char *key_of(const skiff_kv *kv, char *stack, size_t cap)
{
    char *k = kv->key_len < cap ? stack : cm_malloc(kv->key_len + 1);
    if (!k)
        return NULL;
    memcpy(k, kv->key, kv->key_len);
    k[kv->key_len] = 0;
    return k;
}

static void remove_key(ctl_informer *inf, const char *key)
{
    ctl_obj_unref(ctl__map_del(&inf->unseen, key));
    ctl_obj *old = ctl_indexer_del(inf->cache, key);
    if (old) {
        emit_delete(inf, old);
        ctl_obj_unref(old);
    }
}

static void apply_value(ctl_informer *inf, const skiff_kv *kv)
{
    ctl_obj *o;
    int rc = ctl_obj_decode(kv, inf->kind, &o);
    if (rc == -ENOMEM) {
        fail(inf, rc);
        return;
    }
    if (rc) {
        /* Not an object of this informer's kind: it cannot be in the
         * cache, and what was there under this key is gone. */
        inf->st.decode_errors++;
        char stack[256];
        char *key = key_of(kv, stack, sizeof stack);
        if (!key) {
            fail(inf, -ENOMEM);
            return;
        }
        if (strlen(key) == kv->key_len)
            remove_key(inf, key);
        if (key != stack)
            cm_free(key);
        return;
    }
    ctl_obj_unref(ctl__map_del(&inf->unseen, o->key));
    ctl_obj *old;
    rc = ctl_indexer_put(inf->cache, o, &old);
    if (rc) {
        /* The cache no longer matches the store and cannot be repaired
         * without memory: stop rather than serve a wrong view. */
        ctl_obj_unref(o);
        fail(inf, rc);
        return;
    }
    if (!old)
        emit_add(inf, o);
    else if (old->mod_revision != o->mod_revision)
        emit_update(inf, old, o);
    ctl_obj_unref(old);
    ctl_obj_unref(o);
}

static void apply_delete(ctl_informer *inf, const skiff_kv *kv)
{
    char stack[256];
    char *key = key_of(kv, stack, sizeof stack);
    if (!key) {
        fail(inf, -ENOMEM);
        return;
    }
    remove_key(inf, key);
    if (key != stack)
        cm_free(key);
}

typedef struct sweep_ctx {
    const ctl_obj **v;
    size_t n;
} sweep_ctx;

static void collect(void *val, void *arg)
{
    sweep_ctx *x = arg;
    x->v[x->n++] = val;
}

static void collect_obj(const ctl_obj *o, void *arg)
{
    sweep_ctx *x = arg;
    x->v[x->n++] = o;
}

/* After a restarted raw informer's list: what it did not report is gone
 * from the store. */
static void sweep_unseen(ctl_informer *inf)
{
    sweep_ctx x = {cm_calloc(inf->unseen.n + 1, sizeof *x.v), 0};
    if (!x.v) {
        fail(inf, -ENOMEM);
        return;
    }
    ctl__map_foreach(&inf->unseen, collect, &x);
    for (size_t i = 0; i < x.n; i++)
        if (ctl_indexer_get(inf->cache, x.v[i]->key) == x.v[i])
            remove_key(inf, x.v[i]->key);
    cm_free(x.v);
    unseen_clear(inf);
}

static void on_resync(uv_timer_t *t)
{
    ctl_informer *inf = t->data;
    if (!inf->synced || inf->closing)
        return;
    inf->st.resyncs++;
    sweep_ctx x = {cm_calloc(ctl_indexer_len(inf->cache) + 1, sizeof *x.v), 0};
    if (!x.v)
        return; /* a resync is best effort: the next tick tries again */
    /* A snapshot, so that handlers may close the informer mid-way. */
    ctl_indexer_foreach(inf->cache, collect_obj, &x);
    for (size_t i = 0; i < x.n; i++)
        emit_update(inf, x.v[i], x.v[i]);
    cm_free(x.v);
}

static void on_raw(skiff_informer *raw, int status, skiff_informer_event ev,
                   const skiff_kv *kv, const skiff_kv *old, void *data)
{
    ctl_informer *inf = data;
    switch (ev) {
    case SKIFF_INFORMER_ADD:
    case SKIFF_INFORMER_UPDATE:
        if (!inf->closing)
            apply_value(inf, kv);
        break;
    case SKIFF_INFORMER_DELETE:
        if (!inf->closing)
            apply_delete(inf, old);
        break;
    case SKIFF_INFORMER_SYNCED:
        if (inf->closing)
            break;
        if (inf->sweep)
            sweep_unseen(inf);
        inf->rev = skiff_informer_revision(raw);
        inf->st.lists++;
        if (!inf->synced && inf->resync_ms > 0)
            uv_timer_start(&inf->resync, on_resync, (uint64_t)inf->resync_ms,
                           (uint64_t)inf->resync_ms);
        inf->synced = 1;
        EACH_HANDLER(inf, h) if (h->on_synced) h->on_synced(inf, h->data);
        break;
    case SKIFF_INFORMER_ENDED:
        if (!inf->sweep && skiff_informer_revision(raw) > inf->rev)
            inf->rev = skiff_informer_revision(raw);
        inf->raw = NULL;
        if (inf->closing) {
            maybe_end(inf);
        } else if (status == -ECANCELED) {
            fail(inf, status); /* the client is closing */
        } else {
            uv_timer_start(&inf->restart, on_restart, (uint64_t)inf->restart_ms,
                           0);
        }
        break;
    }
}

typedef struct remember_ctx {
    ctl_informer *inf;
    int rc;
} remember_ctx;

static void remember(const ctl_obj *o, void *arg)
{
    remember_ctx *x = arg;
    if (x->rc == 0 &&
        (x->rc = ctl__map_put(&x->inf->unseen, o->key, (void *)o, NULL)) == 0)
        ctl_obj_ref(o);
}

static void start_raw(ctl_informer *inf)
{
    if (inf->closing)
        return;
    if (inf->started) {
        /* A restart: whatever the cache holds now must be reported by the
         * new list or be deleted at its SYNCED. */
        inf->st.restarts++;
        unseen_clear(inf);
        remember_ctx x = {inf, 0};
        ctl_indexer_foreach(inf->cache, remember, &x);
        if (x.rc) {
            fail(inf, x.rc);
            return;
        }
        inf->sweep = 1;
    }
    inf->started = 1;
    int rc = skiff_informer_start(inf->c, &inf->raw, inf->prefix, inf->plen,
                                  on_raw, inf);
    if (rc == -ENOMEM || rc == SKIFF_EFAILED) {
        fail(inf, rc == SKIFF_EFAILED ? -ECANCELED : rc);
        return;
    }
    if (rc)
        uv_timer_start(&inf->restart, on_restart, (uint64_t)inf->restart_ms, 0);
}

static void on_restart(uv_timer_t *t)
{
    start_raw(t->data);
}

/* ---- public -------------------------------------------------------------- */

int ctl_informer_create(skiff_client *c, const ctl_informer_config *cfg,
                        ctl_informer **out)
{
    if (!c || !cfg || !out || !cfg->resource || !cfg->resource[0] ||
        strchr(cfg->resource, '/') || cfg->resync_ms < 0 || cfg->restart_ms < 0)
        return -EINVAL;
    *out = NULL;
    ctl_informer *inf = cm_calloc(1, sizeof *inf);
    if (!inf)
        return -ENOMEM;
    size_t rlen = strlen(cfg->resource);
    inf->plen = sizeof "/registry/" - 1 + rlen + 1;
    inf->prefix = cm_malloc(inf->plen + 1);
    if (!inf->prefix || ctl_indexer_create(&inf->cache)) {
        cm_free(inf->prefix);
        cm_free(inf);
        return -ENOMEM;
    }
    memcpy(inf->prefix, "/registry/", 10);
    memcpy(inf->prefix + 10, cfg->resource, rlen);
    inf->prefix[10 + rlen] = '/';
    inf->prefix[inf->plen] = 0;
    inf->c = c;
    inf->kind = cfg->kind;
    inf->resync_ms = cfg->resync_ms;
    inf->restart_ms = cfg->restart_ms ? cfg->restart_ms : 1000;
    *out = inf;
    return 0;
}

int ctl_informer_add_index(ctl_informer *inf, const char *name, ctl_index_fn fn,
                           void *data)
{
    if (!inf)
        return -EINVAL;
    if (inf->started || inf->closing)
        return -EBUSY;
    return ctl_indexer_add_index(inf->cache, name, fn, data);
}

int ctl_informer_add_handlers(ctl_informer *inf, const ctl_handlers *h)
{
    if (!inf || !h)
        return -EINVAL;
    if (inf->started || inf->closing)
        return -EBUSY;
    ctl_handlers *nh = cm_realloc(inf->h, (inf->n_h + 1) * sizeof *nh);
    if (!nh)
        return -ENOMEM;
    inf->h = nh;
    nh[inf->n_h++] = *h;
    return 0;
}

int ctl_informer_start(ctl_informer *inf)
{
    if (!inf)
        return -EINVAL;
    if (inf->started || inf->closing)
        return -EBUSY;
    int rc = skiff_informer_start(inf->c, &inf->raw, inf->prefix, inf->plen,
                                  on_raw, inf);
    if (rc)
        return rc;
    inf->started = 1;
    uv_loop_t *loop = skiff_client_loop(inf->c);
    uv_timer_init(loop, &inf->resync);
    uv_timer_init(loop, &inf->restart);
    inf->resync.data = inf->restart.data = inf;
    inf->open_handles = 2;
    return 0;
}

void ctl_informer_close(ctl_informer *inf)
{
    if (!inf || inf->closing)
        return;
    if (!inf->started) {
        inf_free(inf);
        return;
    }
    fail(inf, -ECANCELED);
}

const ctl_indexer *ctl_informer_cache(const ctl_informer *inf)
{
    return inf->cache;
}

int64_t ctl_informer_revision(const ctl_informer *inf)
{
    /* Between lists the raw informer's revision moves with every watch
     * event; after it ended, the last one seen stands. */
    if (inf->raw && !inf->sweep) {
        int64_t r = skiff_informer_revision(inf->raw);
        return r > inf->rev ? r : inf->rev;
    }
    /* A restarted raw informer that has not listed yet: the cache still
     * reflects the old one. */
    return inf->rev;
}

int ctl_informer_has_synced(const ctl_informer *inf)
{
    return inf->synced;
}

ctl_informer_stats ctl_informer_get_stats(const ctl_informer *inf)
{
    return inf->st;
}
