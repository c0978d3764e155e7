/*
 * Internal declarations shared by controllers/ sources: a string-keyed
 * hash map used by the indexer (objects by key, index buckets) and by the
 * work queue (items by key).
 */
#ifndef SKIFF_CTL_INT_H
#define SKIFF_CTL_INT_H

#include <stddef.h>
#include <stdint.h>

/* Open addressing, linear probing, tombstones.  Keys are borrowed: each
 * must stay valid (and unchanged) while its entry is in the map, so
 * callers point them into the value they store.  A zeroed map is empty. */
typedef struct ctl__slot {
    const char *key; /* NULL: free; CTL__TOMB: deleted */
    void *val;
    uint64_t hash;
} ctl__slot;

typedef struct ctl__map {
    ctl__slot *tab;
    size_t cap, n, used; /* used: entries + tombstones */
} ctl__map;

void *ctl__map_get(const ctl__map *m, const char *key);
/* Inserts or replaces (the stored key pointer becomes `key`); *old gets
 * the replaced value or NULL.  0 or -ENOMEM (map unchanged). */
int ctl__map_put(ctl__map *m, const char *key, void *val, void **old);
/* Makes room so the next put of a new key cannot fail.  0 or -ENOMEM. */
int ctl__map_reserve(ctl__map *m);
/* Removes key; returns its value or NULL. */
void *ctl__map_del(ctl__map *m, const char *key);
/* Calls fn for each entry; fn must not change the map. */
void ctl__map_foreach(const ctl__map *m, void (*fn)(void *val, void *arg),
                      void *arg);
void ctl__map_free(ctl__map *m); /* the table only, not the values */

#endif
