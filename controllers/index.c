/*
 * The indexer: client-go's cache.Indexer.  A map from store key to the
 * current ctl_obj, plus named secondary indexes, each a map from index
 * value to a bucket, and each bucket a map from key to object.  Every
 * lookup is a hash probe, so updating an object in a namespace with many
 * thousands of others costs the same as in an empty one.
 *
 * An object's index values are computed once, when it enters the indexer,
 * and kept with it (ctl_obj.priv): removal uses the stored values, so it
 * needs neither memory nor a pure index function, and cannot fail.
 * Insertion allocates everything it may need (values, new buckets, room
 * in each map) before it changes anything, so a failure leaves the
 * indexer as it was -- the informer relies on that to stay consistent.
 */
#include "informer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl_int.h"

#define TOMB ((const char *)(uintptr_t)1)

struct ctl_index_vals {
    cm_buf buf; /* values, each NUL-terminated, back to back */
    size_t n;
};

typedef struct ixdef {
    char *name;
    ctl_index_fn fn;
    void *data;
    ctl__map buckets; /* value -> bucket */
} ixdef;

typedef struct bucket {
    ctl__map objs; /* key -> ctl_obj */
    char value[];
} bucket;

struct ctl_indexer {
    ctl__map objs;
    ixdef *ix;
    size_t n_ix;
};

/* ---- the map ------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t probe(const ctl__slot *tab, size_t cap, const char *key,
                    uint64_t h, int *found)
{
    size_t i = h & (cap - 1), first_free = (size_t)-1;
    *found = 0;
    for (size_t k = 0; k < cap; k++, i = (i + 1) & (cap - 1)) {
        const ctl__slot *s = &tab[i];
        if (!s->key)
            return first_free != (size_t)-1 ? first_free : i;
        if (s->key == TOMB) {
            if (first_free == (size_t)-1)
                first_free = i;
            continue;
        }
        if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = 1;
            return i;
        }
    }
    return first_free;
}

static int map_rehash(ctl__map *m, size_t want)
{
    size_t ncap = 16;
    while (ncap < (want + 1) * 2)
        ncap *= 2;
    ctl__slot *nt = cm_calloc(ncap, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        ctl__slot *s = &m->tab[i];
        if (!s->key || s->key == TOMB)
            continue;
        int found;
        nt[probe(nt, ncap, s->key, s->hash, &found)] = *s;
    }
    cm_free(m->tab);
    m->tab = nt;
    m->cap = ncap;
    m->used = m->n;
    return 0;
}

int ctl__map_reserve(ctl__map *m)
{
    if ((m->used + 1) * 4 > m->cap * 3)
        return map_rehash(m, m->n + 1);
    return 0;
}

void *ctl__map_get(const ctl__map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    int found;
    size_t i = probe(m->tab, m->cap, key, hash_str(key), &found);
    return found ? m->tab[i].val : NULL;
}

int ctl__map_put(ctl__map *m, const char *key, void *val, void **old)
{
    if (old)
        *old = NULL;
    if (ctl__map_reserve(m))
        return -ENOMEM;
    uint64_t h = hash_str(key);
    int found;
    size_t i = probe(m->tab, m->cap, key, h, &found);
    ctl__slot *s = &m->tab[i];
    if (found) {
        if (old)
            *old = s->val;
    } else {
        if (!s->key)
            m->used++;
        m->n++;
    }
    s->key = key;
    s->val = val;
    s->hash = h;
    return 0;
}

void *ctl__map_del(ctl__map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    int found;
    size_t i = probe(m->tab, m->cap, key, hash_str(key), &found);
    if (!found)
        return NULL;
    void *v = m->tab[i].val;
    m->tab[i].key = TOMB;
    m->tab[i].val = NULL;
    m->n--;
    return v;
}

void ctl__map_foreach(const ctl__map *m, void (*fn)(void *val, void *arg),
                      void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->tab[i].key && m->tab[i].key != TOMB)
            fn(m->tab[i].val, arg);
}

void ctl__map_free(ctl__map *m)
{
    cm_free(m->tab);
    memset(m, 0, sizeof *m);
}

/* ---- index values -------------------------------------------------------- */

int ctl_index_vals_add(ctl_index_vals *v, const char *val, size_t len)
{
    if (cm_buf_reserve(&v->buf, len + 1))
        return -ENOMEM;
    cm_buf_append(&v->buf, val, len);
    cm_buf_put_u8(&v->buf, 0);
    v->n++;
    return 0;
}

/* The i-th value's start is found by walking: value lists are short
 * (a few labels), so no offset table. */
#define VALS_EACH(v, p)                                                        \
    for (const char *p = (const char *)(v)->buf.base,                          \
                    *p##_end_ = p + (v)->buf.len;                              \
         p && p < p##_end_; p += strlen(p) + 1)

static void vals_free(ctl_index_vals *vals, size_t n)
{
    if (!vals)
        return;
    for (size_t i = 0; i < n; i++)
        cm_buf_free(&vals[i].buf);
    cm_free(vals);
}

static int index_namespace(const ctl_obj *o, ctl_index_vals *out, void *data)
{
    (void)data;
    return ctl_index_vals_add(out, o->ns, strlen(o->ns));
}

static int index_label(const ctl_obj *o, ctl_index_vals *out, void *data)
{
    (void)data;
    char tmp[512];
    for (size_t i = 0; i < o->meta->n_labels; i++) {
        const char *k = o->meta->labels[i]->key ? o->meta->labels[i]->key : "";
        const char *v =
            o->meta->labels[i]->value ? o->meta->labels[i]->value : "";
        /* Label keys are <= 317 bytes and values <= 63 once validated;
         * an unvalidated longer pair is filed truncated rather than lost. */
        int len = snprintf(tmp, sizeof tmp, "%s=%s", k, v);
        if (len < 0)
            continue;
        size_t n = (size_t)len < sizeof tmp ? (size_t)len : sizeof tmp - 1;
        if (ctl_index_vals_add(out, tmp, n))
            return -ENOMEM;
    }
    return 0;
}

int ctl_index_pod_node_name(const ctl_obj *o, ctl_index_vals *out, void *data)
{
    (void)data;
    if (!o->obj || o->obj->object_case != SKIFFPB__V1__OBJECT__OBJECT_POD)
        return 0;
    const Skiffpb__V1__Pod *p = o->obj->pod;
    const char *n = p->spec && p->spec->node_name ? p->spec->node_name : "";
    return ctl_index_vals_add(out, n, strlen(n));
}

/* ---- buckets ------------------------------------------------------------- */

static void bucket_free(void *val, void *arg)
{
    (void)arg;
    bucket *b = val;
    ctl__map_free(&b->objs);
    cm_free(b);
}

/* Removes o from the buckets of its stored values, where it is still the
 * entry (a newer version filed under the same value has replaced it
 * there); frees buckets left empty so the value maps do not grow without
 * bound. */
static void unfile(ctl_indexer *ix, const ctl_obj *o)
{
    ctl_index_vals *vals = o->priv;
    for (size_t i = 0; i < ix->n_ix; i++) {
        VALS_EACH(&vals[i], v)
        {
            bucket *b = ctl__map_get(&ix->ix[i].buckets, v);
            if (!b || ctl__map_get(&b->objs, o->key) != o)
                continue; /* replaced, or a duplicate value */
            ctl__map_del(&b->objs, o->key);
            if (b->objs.n == 0) {
                ctl__map_del(&ix->ix[i].buckets, b->value);
                bucket_free(b, NULL);
            }
        }
    }
}

/* Drops the empty buckets that a failed insertion may have created. */
static void drop_empty(ctl_indexer *ix, ctl_index_vals *vals)
{
    for (size_t i = 0; i < ix->n_ix; i++) {
        VALS_EACH(&vals[i], v)
        {
            bucket *b = ctl__map_get(&ix->ix[i].buckets, v);
            if (b && b->objs.n == 0) {
                ctl__map_del(&ix->ix[i].buckets, b->value);
                bucket_free(b, NULL);
            }
        }
    }
}

/* Creates the missing buckets and room in every bucket for one more
 * entry. */
static int prepare(ctl_indexer *ix, ctl_index_vals *vals)
{
    for (size_t i = 0; i < ix->n_ix; i++) {
        VALS_EACH(&vals[i], v)
        {
            bucket *b = ctl__map_get(&ix->ix[i].buckets, v);
            if (!b) {
                size_t len = strlen(v);
                b = cm_calloc(1, sizeof *b + len + 1);
                if (!b)
                    return -ENOMEM;
                memcpy(b->value, v, len + 1);
                if (ctl__map_put(&ix->ix[i].buckets, b->value, b, NULL)) {
                    cm_free(b);
                    return -ENOMEM;
                }
            }
            if (ctl__map_reserve(&b->objs))
                return -ENOMEM;
        }
    }
    return 0;
}

/* ---- public -------------------------------------------------------------- */

int ctl_indexer_create(ctl_indexer **out)
{
    ctl_indexer *ix = cm_calloc(1, sizeof *ix);
    if (!ix)
        return -ENOMEM;
    if (ctl_indexer_add_index(ix, CTL_INDEX_NAMESPACE, index_namespace, NULL) ||
        ctl_indexer_add_index(ix, CTL_INDEX_LABEL, index_label, NULL)) {
        ctl_indexer_destroy(ix);
        return -ENOMEM;
    }
    *out = ix;
    return 0;
}

static void drop_obj(void *val, void *arg)
{
    ctl_indexer *ix = arg;
    ctl_obj *o = val;
    vals_free(o->priv, ix->n_ix);
    o->priv = NULL;
    ctl_obj_unref(o);
}

void ctl_indexer_destroy(ctl_indexer *ix)
{
    if (!ix)
        return;
    ctl__map_foreach(&ix->objs, drop_obj, ix);
    ctl__map_free(&ix->objs);
    for (size_t i = 0; i < ix->n_ix; i++) {
        ctl__map_foreach(&ix->ix[i].buckets, bucket_free, NULL);
        ctl__map_free(&ix->ix[i].buckets);
        cm_free(ix->ix[i].name);
    }
    cm_free(ix->ix);
    cm_free(ix);
}

int ctl_indexer_add_index(ctl_indexer *ix, const char *name, ctl_index_fn fn,
                          void *data)
{
    if (!ix || !name || !fn)
        return -EINVAL;
    if (ix->objs.n)
        return -EBUSY;
    for (size_t i = 0; i < ix->n_ix; i++)
        if (strcmp(ix->ix[i].name, name) == 0)
            return -EINVAL;
    ixdef *nx = cm_realloc(ix->ix, (ix->n_ix + 1) * sizeof *nx);
    if (!nx)
        return -ENOMEM;
    ix->ix = nx;
    char *copy = cm_memdup(name, strlen(name) + 1);
    if (!copy)
        return -ENOMEM;
    nx[ix->n_ix++] = (ixdef){.name = copy, .fn = fn, .data = data};
    return 0;
}

int ctl_indexer_put(ctl_indexer *ix, ctl_obj *o, ctl_obj **old)
{
    int rc;
    if (old)
        *old = NULL;
    /* An object carries the values of one indexer only. */
    if (!ix || !o || o->priv)
        return -EINVAL;
    ctl_index_vals *vals = cm_calloc(ix->n_ix ? ix->n_ix : 1, sizeof *vals);
    if (!vals)
        return -ENOMEM;
    for (size_t i = 0; i < ix->n_ix; i++)
        if ((rc = ix->ix[i].fn(o, &vals[i], ix->ix[i].data)) != 0)
            goto err;
    rc = -ENOMEM;
    if (ctl__map_reserve(&ix->objs) || prepare(ix, vals))
        goto err;
    /* Nothing below can fail: every map has room.  The new version is
     * filed first so that buckets it shares with the old one are never
     * emptied and freed in between. */
    void *prev;
    ctl__map_put(&ix->objs, o->key, o, &prev);
    ctl_obj *po = prev;
    o->priv = vals;
    for (size_t i = 0; i < ix->n_ix; i++) {
        VALS_EACH(&vals[i], v)
        {
            bucket *b = ctl__map_get(&ix->ix[i].buckets, v);
            ctl__map_put(&b->objs, o->key, o, NULL);
        }
    }
    if (po) {
        unfile(ix, po);
        vals_free(po->priv, ix->n_ix);
        po->priv = NULL;
    }
    ctl_obj_ref(o);
    if (old)
        *old = po;
    else
        ctl_obj_unref(po);
    return 0;
err:
    drop_empty(ix, vals);
    vals_free(vals, ix->n_ix);
    return rc;
}

ctl_obj *ctl_indexer_del(ctl_indexer *ix, const char *key)
{
    ctl_obj *o = ctl__map_del(&ix->objs, key);
    if (!o)
        return NULL;
    unfile(ix, o);
    vals_free(o->priv, ix->n_ix);
    o->priv = NULL;
    return o;
}

const ctl_obj *ctl_indexer_get(const ctl_indexer *ix, const char *key)
{
    return ctl__map_get(&ix->objs, key);
}

size_t ctl_indexer_len(const ctl_indexer *ix)
{
    return ix->objs.n;
}

typedef struct each_ctx {
    ctl_obj_fn fn;
    void *arg;
} each_ctx;

static void each_obj(void *val, void *arg)
{
    each_ctx *x = arg;
    x->fn(val, x->arg);
}

void ctl_indexer_foreach(const ctl_indexer *ix, ctl_obj_fn fn, void *arg)
{
    each_ctx x = {fn, arg};
    ctl__map_foreach(&ix->objs, each_obj, &x);
}

long ctl_indexer_by_index(const ctl_indexer *ix, const char *name,
                          const char *value, ctl_obj_fn fn, void *arg)
{
    for (size_t i = 0; i < ix->n_ix; i++) {
        if (strcmp(ix->ix[i].name, name) != 0)
            continue;
        const bucket *b = ctl__map_get(&ix->ix[i].buckets, value);
        if (!b)
            return 0;
        if (fn) {
            each_ctx x = {fn, arg};
            ctl__map_foreach(&b->objs, each_obj, &x);
        }
        return (long)b->objs.n;
    }
    return -ENOENT;
}
