/*
 * Helpers shared by the watch hub's test suites: a store in a temporary
 * directory with a hub attached, commands built and applied the way the
 * server's writer would (apply, then notify the hub), and a recording
 * sink that renders what it receives as a compact text log.
 */
#ifndef SKIFF_WT_H
#define SKIFF_WT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "watch.h"

typedef struct wt_store {
    kv_store *kv;
    watch_hub *hub;
    char dir[256];
    cm_arena arena;
    uint64_t index;
    bool notify;    /* notify the hub after each apply (default true) */
    kv_result last; /* result of the last command (arena memory) */
} wt_store;

/* Opens a store and a hub (opts may be NULL).  Asserts on failure. */
void wt_open(wt_store *t, const watch_hub_options *opts);
void wt_close(wt_store *t);

/* Applies `cmd` (packed here), then notifies the hub when t->notify.
 * Returns res.code (0 or the refusal) and leaves the result in t->last. */
int wt_apply(wt_store *t, Skiffpb__Command *cmd);
/* Convenience commands; each returns the store revision afterwards. */
int64_t wt_put(wt_store *t, const char *key, const char *val);
int64_t wt_put_lease(wt_store *t, const char *key, const char *val,
                     int64_t lease);
/* Deletes key (end NULL), or [key, end) ("\0" for from-key: pass "" with
 * from_key set). */
int64_t wt_del(wt_store *t, const char *key, const char *end);
/* A txn without compares: puts of `puts` (key, value pairs, NULL ended)
 * then deletes of `dels` (keys, NULL ended). */
int64_t wt_txn(wt_store *t, const char *const *puts, const char *const *dels);
int64_t wt_lease_grant(wt_store *t, int64_t id, int64_t ttl);
int64_t wt_lease_revoke(wt_store *t, int64_t id);
int wt_compact(wt_store *t, int64_t rev);
int64_t wt_rev(wt_store *t);

/* Recording sink.  Log grammar, one item per callback:
 *   "<rev>:" events ";"   events "P key=val" / "D key", comma separated,
 *                         with "^prevval" appended when prev_kv is set
 *   "@<rev>;"             progress
 *   "X<rev>;"             cancel with WATCH_ECOMPACTED at compact rev
 *   "E<name>;"            cancel with another reason */
typedef struct wt_sink {
    watch_sink sink;
    char log[65536];
    size_t len;
    int sends, progresses, cancels;
    int64_t cancel_rev;
    int cancel_reason;
    int full;                  /* >0: refuse sends (and progress) */
    int accept;                /* >0: accept this many sends then turn full */
    bool stop_self;            /* watch_stop(w) inside the next send */
    watch_watcher *stop_other; /* stopped inside the next send */
    bool stop_on_cancel;       /* watch_stop(w) inside cancel */
    int busy_rc;               /* hub call result seen inside a callback */
    watch_hub *hub;            /* for busy_rc probing (NULL: no probe) */
} wt_sink;

void wt_sink_init(wt_sink *s);
void wt_sink_clear(wt_sink *s);

/* watch_start with the common fields; asserts success. */
watch_watcher *wt_watch(watch_hub *hub, wt_sink *s, const char *key,
                        const char *end, int64_t start, unsigned flags);
/* A from-key watcher (range_end "\0"). */
watch_watcher *wt_watch_from(watch_hub *hub, wt_sink *s, const char *key,
                             int64_t start, unsigned flags);
/* Steps until idle; returns the number of steps. */
int wt_drain(watch_hub *hub, size_t budget);

#endif
