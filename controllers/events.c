/*
 * The Event recorder: one Event object per distinct (involved object,
 * type, reason, message, source), counted on repeat, expiring through a
 * lease an hour after its last write.
 *
 * client-go aggregates in memory (the EventCorrelator's LRU of event keys)
 * and patches the existing Event with a new count and lastTimestamp; this
 * is the same with a small array as the LRU (256 entries, least recently
 * used evicted) and a compare-and-swap update instead of a patch: read
 * the Event, add one to count, put it back guarded by its mod_revision.
 * A lost compare (another writer of the same Event) reads again.  An
 * Event that expired meanwhile is simply created again with count 1.
 *
 * Expiry is the store's lease machinery.  A lease can only be kept alive
 * or left to run out, never shortened, so the recorder rotates: a new
 * lease every lease_renew_s, each attached to the Events written while it
 * is current.  An Event therefore dies between ttl - renew and ttl after
 * its last write, and nothing needs sweeping.
 */
#include "events.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delete.h"

#define CACHE_N 256
#define MSG_MAX 1024
#define KEY_MAX 600
#define RETRIES 5

typedef struct centry {
    char *id;          /* the dedup key (cm_malloc), NULL: free slot */
    char key[KEY_MAX]; /* the Event's registry key */
    uint64_t used;     /* LRU clock */
} centry;

struct ctl_recorder {
    skiff_client *c;
    char *component, *host;
    int64_t ttl_s, renew_s;
    int64_t lease;
    int64_t lease_at_ms; /* monotonic time of the grant */
    uint64_t clock;
    char last_key[KEY_MAX];
    centry cache[CACHE_N];
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = cm_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* The current lease, granting a fresh one when it is due. */
static int ensure_lease(ctl_recorder *r)
{
    int64_t now = cm_mono_ms();
    if (r->lease && now - r->lease_at_ms < r->renew_s * 1000)
        return 0;
    int64_t id = 0, ttl = 0;
    int rc = skiff_lease_grant(r->c, r->ttl_s, 0, &id, &ttl);
    if (rc)
        return rc;
    r->lease = id;
    r->lease_at_ms = now;
    return 0;
}

static centry *cache_find(ctl_recorder *r, const char *id)
{
    for (size_t i = 0; i < CACHE_N; i++)
        if (r->cache[i].id && !strcmp(r->cache[i].id, id)) {
            r->cache[i].used = ++r->clock;
            return &r->cache[i];
        }
    return NULL;
}

static int cache_put(ctl_recorder *r, const char *id, const char *key)
{
    centry *e = &r->cache[0];
    for (size_t i = 0; i < CACHE_N; i++) {
        if (!r->cache[i].id) {
            e = &r->cache[i];
            break;
        }
        if (r->cache[i].used < e->used)
            e = &r->cache[i];
    }
    char *copy = dup_str(id);
    if (!copy)
        return -ENOMEM;
    cm_free(e->id);
    e->id = copy;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->used = ++r->clock;
    return 0;
}

/* One txn: compare (mod_revision == rev, or create_revision == 0 when rev
 * is 0) then put o with the current lease.  0 applied, 1 compare failed,
 * or an error. */
static int cas_put(ctl_recorder *r, const char *key, int64_t rev,
                   const obj_object *o, cm_arena *a)
{
    size_t n = protobuf_c_message_get_packed_size(&o->base);
    uint8_t *buf = cm_arena_alloc(a, n ? n : 1);
    if (!buf)
        return -ENOMEM;
    protobuf_c_message_pack(&o->base, buf);
    skiff_cmp cmp = {.result = SKIFF_CMP_EQUAL,
                     .target = rev ? SKIFF_CMP_MOD : SKIFF_CMP_CREATE,
                     .key = key,
                     .key_len = strlen(key),
                     .number = rev};
    skiff_op put = {.type = SKIFF_OP_PUT,
                    .key = key,
                    .key_len = strlen(key),
                    .value = buf,
                    .value_len = n,
                    .lease = r->lease};
    skiff_op txn = {.type = SKIFF_OP_TXN,
                    .cmps = &cmp,
                    .n_cmps = 1,
                    .success = &put,
                    .n_success = 1};
    skiff_result res = {0};
    int rc = skiff_do_sync(r->c, &txn, &res);
    int ok = res.succeeded;
    skiff_result_free(&res);
    if (rc == SKIFF_ECONFLICT) /* admission saw the compare fail */
        return 1;
    if (rc)
        return rc;
    return ok ? 0 : 1;
}

/* Adds one to the stored Event at key.  0 done, 1 when it is gone, or an
 * error. */
static int bump(ctl_recorder *r, const char *key, const char *now)
{
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        skiff_result res = {0};
        int rc = skiff_get(r->c, key, strlen(key), &res);
        if (rc || !res.n_kvs) {
            skiff_result_free(&res);
            return rc ? rc : 1;
        }
        cm_arena a = {0};
        ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, &a};
        obj_object *o = (obj_object *)protobuf_c_message_unpack(
            &skiffpb__v1__object__descriptor, &al, res.kvs[0].value_len,
            res.kvs[0].value);
        int64_t rev = res.kvs[0].mod_revision;
        skiff_result_free(&res);
        if (!o || !o->event) {
            cm_arena_free(&a);
            return 1; /* not an Event any more: write a new one */
        }
        Skiffpb__V1__Event *e = o->event;
        e->has_count = 1;
        e->count = (e->count > 0 ? e->count : 1) + 1;
        e->last_timestamp = (char *)now;
        rc = cas_put(r, key, rev, o, &a);
        cm_arena_free(&a);
        if (rc != 1)
            return rc;
    }
    return -EAGAIN;
}

/* Writes a new Event; *key gets its registry key. */
static int create(ctl_recorder *r, const obj_object *inv, const char *ns,
                  const char *type, const char *reason, const char *msg,
                  const char *now, char *key, size_t cap)
{
    const obj_kind *k = obj_kind_get(inv);
    const Skiffpb__V1__ObjectMeta *im = obj_object_meta(inv);
    Skiffpb__V1__ObjectReference ref = SKIFFPB__V1__OBJECT_REFERENCE__INIT;
    ref.kind = (char *)k->kind;
    ref.namespace_ = k->namespaced ? (char *)ns : NULL;
    ref.name = im->name;
    ref.uid = im->uid;
    ref.api_version = (char *)k->api_version;
    ref.resource_version = im->resource_version;
    Skiffpb__V1__EventSource src = SKIFFPB__V1__EVENT_SOURCE__INIT;
    src.component = r->component;
    src.host = r->host;
    Skiffpb__V1__ObjectMeta md = SKIFFPB__V1__OBJECT_META__INIT;
    md.namespace_ = (char *)ns;
    Skiffpb__V1__Event e = SKIFFPB__V1__EVENT__INIT;
    e.api_version = "v1";
    e.kind = "Event";
    e.metadata = &md;
    e.involved_object = &ref;
    e.reason = (char *)reason;
    e.message = (char *)msg;
    e.source = &src;
    e.first_timestamp = e.last_timestamp = (char *)now;
    e.has_count = 1;
    e.count = 1;
    e.type = (char *)type;
    e.reporting_component = r->component;
    e.reporting_instance = r->host;
    obj_object o = SKIFFPB__V1__OBJECT__INIT;
    if (obj_object_wrap(&o, &e.base))
        return -EINVAL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t nanos = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        char name[320];
        snprintf(name, sizeof name, "%.250s.%016" PRIx64, im->name,
                 nanos + (uint64_t)attempt);
        md.name = name;
        snprintf(key, cap, "/registry/events/%s/%s", ns, name);
        cm_arena a = {0};
        int rc = cas_put(r, key, 0, &o, &a);
        cm_arena_free(&a);
        if (rc != 1)
            return rc;
    }
    return -EAGAIN;
}

/* ---- public -------------------------------------------------------------- */

int ctl_recorder_create(const ctl_recorder_config *cfg, ctl_recorder **out)
{
    if (!cfg || !cfg->client || !cfg->component || !cfg->component[0])
        return -EINVAL;
    ctl_recorder *r = cm_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->c = cfg->client;
    r->ttl_s = cfg->lease_ttl_s > 0 ? cfg->lease_ttl_s : 3600;
    r->renew_s = cfg->lease_renew_s > 0 ? cfg->lease_renew_s : 300;
    r->component = dup_str(cfg->component);
    r->host = cfg->host && cfg->host[0] ? dup_str(cfg->host) : NULL;
    if (!r->component || (cfg->host && cfg->host[0] && !r->host)) {
        ctl_recorder_destroy(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

void ctl_recorder_destroy(ctl_recorder *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < CACHE_N; i++)
        cm_free(r->cache[i].id);
    cm_free(r->component);
    cm_free(r->host);
    cm_free(r);
}

const char *ctl_recorder_last_key(const ctl_recorder *r)
{
    return r->last_key;
}

int64_t ctl_recorder_lease(const ctl_recorder *r)
{
    return r->lease;
}

int ctl_event_record(ctl_recorder *r, const obj_object *involved,
                     const char *type, const char *reason, const char *fmt, ...)
{
    const obj_kind *k = involved ? obj_kind_get(involved) : NULL;
    const Skiffpb__V1__ObjectMeta *im =
        involved ? obj_object_meta(involved) : NULL;
    if (!r || !k || !im || !im->name || !type || !reason || !fmt)
        return -EINVAL;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *ns = k->namespaced && im->namespace_ && im->namespace_[0]
                         ? im->namespace_
                         : "default";
    /* What makes two events the same (client-go's aggregate key plus the
     * message); fields joined by a byte no field holds. */
    size_t idcap = strlen(msg) + strlen(r->component) + 1024;
    char *id = cm_malloc(idcap);
    if (!id)
        return -ENOMEM;
    snprintf(id, idcap,
             "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s",
             r->component, r->host ? r->host : "", k->kind, ns, im->name,
             im->uid ? im->uid : "", k->api_version, type, reason, msg);
    char now[32];
    ctl_format_time(cm_now_ms(), now, sizeof now);
    int rc = ensure_lease(r);
    centry *e = rc ? NULL : cache_find(r, id);
    if (e) {
        rc = bump(r, e->key, now);
        if (rc == 0)
            snprintf(r->last_key, sizeof r->last_key, "%s", e->key);
        if (rc == 1) { /* expired or removed: start over */
            cm_free(e->id);
            e->id = NULL;
            e = NULL;
            rc = 0;
        }
    }
    if (!rc && !e) {
        char key[KEY_MAX];
        rc = create(r, involved, ns, type, reason, msg, now, key, sizeof key);
        if (!rc) {
            snprintf(r->last_key, sizeof r->last_key, "%s", key);
            rc = cache_put(r, id, key);
        }
    }
    cm_free(id);
    return rc;
}
