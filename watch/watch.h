/*
 * watch/watch.h -- skiff's watch hub: watchers on a key, a range or a
 * prefix, fed the events of each applied revision, with catch-up from
 * storage for watchers that start in the past or fall behind.
 *
 * Model.  The writer calls watch_hub_notify() once per applied revision
 * with that revision's events (kv_result.events from kv_apply).  Every
 * watcher is in one of four states:
 *
 *   synced     it has been given every matching event up to the hub's
 *              revision; notify delivers new revisions to it directly;
 *   catching   it needs history from storage; watch_hub_step() reads that
 *              history in bounded batches and delivers it, then moves the
 *              watcher back to synced;
 *   parked     its sink refused a revision (WATCH_EFULL); nothing is lost,
 *              the hub only remembers the revision to resume from.  The
 *              sink calls watch_resume() when it has room again;
 *   canceled   the hub cancelled it (compacted history or a storage
 *              error) and told the sink; it waits for watch_stop().
 *
 * Guarantees (DESIGN.md): per watcher, revisions arrive in increasing
 * order, each at most once, with no gap while the watcher lives, and all
 * matching events of one revision in one sink call.  A watcher that needs
 * a revision at or below the compact revision is cancelled with
 * WATCH_ECOMPACTED and the compact revision.  Progress notifications carry
 * a revision R such that the watcher has been given every event <= R.
 *
 * Memory.  The hub keeps no per-watcher event buffer: a watcher costs a
 * fixed-size record plus its key range.  Catch-up reads are bounded by
 * watch_hub_options.step_events (plus the events of one revision, which is
 * never split).  Output memory belongs to the sink, which bounds it by
 * answering WATCH_EFULL.
 *
 * Threads.  A hub and its watchers belong to one thread (the server's
 * loop).  The hub does no I/O besides kv reads (kv_events_read,
 * kv_status_get), which are safe next to the writer.
 */
#ifndef SKIFF_WATCH_H
#define SKIFF_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cm.h"
#include "kv.h"

/* ---- errors (-3000..-3999) ----------------------------------------------- */
#define WATCH_ERRNO_MAP(XX)                                                    \
    XX(WATCH_EFULL, -3001, "watch sink is full")                               \
    XX(WATCH_EEXIST, -3002, "watch id is already in use")                      \
    XX(WATCH_EBADRANGE, -3003, "invalid watch key range")                      \
    XX(WATCH_EBADREV, -3004, "invalid watch start revision")                   \
    XX(WATCH_EORDER, -3005, "revision notified out of order")                  \
    XX(WATCH_ELIMIT, -3006, "too many watchers")                               \
    XX(WATCH_EBUSY, -3007, "hub called from inside a sink callback")           \
    XX(WATCH_ECANCELED, -3008, "watch has been cancelled")                     \
    XX(WATCH_ECOMPACTED, -3009, "required revision has been compacted")        \
    XX(WATCH_EBADSINK, -3010, "watch sink is missing a callback")

enum watch_errno {
#define XX(name, val, msg) name = (val),
    WATCH_ERRNO_MAP(XX)
#undef XX
};
/* Message and symbolic name of any code (falls back to cm_strerror and
 * cm_err_name for codes that are not the hub's).  Static strings. */
const char *watch_strerror(int code);
const char *watch_err_name(int code);

typedef struct watch_hub watch_hub;
typedef struct watch_watcher watch_watcher;
typedef struct watch_sink watch_sink;

/* ---- sink -------------------------------------------------------------------
 * The consumer side of watchers, implemented by the API layer over one
 * connection.  The hub calls it only from inside watch_hub_notify,
 * watch_hub_step and watch_hub_progress, never from the call that created
 * or resumed a watcher.
 *
 * Inside a callback the sink may call watch_stop (on any watcher),
 * watch_resume, watch_progress_request and watch_start; it must not call
 * watch_hub_notify, watch_hub_step, watch_hub_progress or
 * watch_hub_destroy (they return WATCH_EBUSY or abort). */
struct watch_sink {
    void *data; /* the user's */
    /* All matching events of one revision (evs->n >= 1, filtered, prev_kv
     * present only when the watcher asked for it).  `evs` and everything
     * it points to are borrowed for the call: copy what you keep.  Return
     * 0 when accepted, WATCH_EFULL (or any nonzero) when there is no room:
     * the watcher is parked at evs->revision and that revision will be
     * offered again after watch_resume. */
    int (*send)(watch_sink *sink, watch_watcher *w, const kv_events *evs);
    /* Progress notification: the watcher has been given every matching
     * event at or below `revision`.  Return 0, or WATCH_EFULL to park the
     * watcher (a requested notification is then offered again after the
     * watcher is resumed and synced; a periodic one is simply skipped). */
    int (*progress)(watch_sink *sink, watch_watcher *w, int64_t revision);
    /* The hub cancelled the watcher: `reason` is WATCH_ECOMPACTED (the
     * next revision it needed is at or below `compact_revision`) or a
     * storage error code (compact_revision 0).  The watcher is inert
     * afterwards; its owner still frees it with watch_stop (which may be
     * called from here).  Must not fail: reserve room for it. */
    void (*cancel)(watch_sink *sink, watch_watcher *w, int reason,
                   int64_t compact_revision);
};

/* ---- hub ----------------------------------------------------------------- */

typedef struct watch_hub_options {
    /* Most events, and most revisions, read from storage for one watcher
     * in one catch-up read, and the default step budget.  A revision is
     * never split, so one read may exceed it by the size of one revision.
     * 0: 1000. */
    size_t step_events;
    /* Most live watchers (watch_start answers WATCH_ELIMIT past it).
     * 0: no limit. */
    size_t max_watchers;
} watch_hub_options;

/* Creates a hub over store `kv` (borrowed; must outlive the hub).  The
 * hub's revision starts at the store's current revision: the writer must
 * notify every revision applied after this call.  `opts` may be NULL.
 * Errors: -ENOMEM, or kv_status_get's errors.  Loop thread. */
int watch_hub_create(watch_hub **out, kv_store *kv,
                     const watch_hub_options *opts);
/* Frees the hub and every watcher still in it (no callbacks run; watcher
 * pointers become invalid).  Not from inside a sink callback. */
void watch_hub_destroy(watch_hub *hub);

/* Feeds the events of one applied revision, already committed.  `evs` is
 * borrowed for the call; events must carry prev_kv as kv_apply fills it.
 * An empty `evs` (n == 0: the command wrote nothing) is ignored.  Synced
 * watchers whose range matches get their events now, one sink call per
 * watcher; a watcher whose sink is full is parked.  If scratch memory
 * cannot be had, every synced watcher is moved to catch-up instead, so
 * nothing is lost (and 0 is still returned).
 * Errors: WATCH_EORDER when evs->revision is not above the last notified
 * revision (nothing is delivered), WATCH_EBUSY from inside a callback. */
int watch_hub_notify(watch_hub *hub, const kv_events *evs);

/* The store jumped to revision `rev` without the revisions in between
 * being notified (a member restored a snapshot from its leader): every
 * synced watcher moves to catch-up from the old revision + 1, so it gets
 * the skipped revisions from storage (or a compaction cancel when they are
 * gone).  0, WATCH_EORDER (rev below the hub's), WATCH_EBUSY. */
int watch_hub_jump(watch_hub *hub, int64_t rev);

/* Does up to `budget` units of deferred work (0: step_events): catch-up
 * reads for watchers in catch-up, round robin (a read costs the larger of
 * the events it returned and the revisions it covered, at least 1), and
 * requested progress notifications (one unit each).  A read never splits
 * a revision, so a step may overrun its budget by one revision.  Returns 1 when
 * work remains (call again soon), 0 when idle, or an error: -ENOMEM (the
 * watcher being served keeps its place; call again later), WATCH_EBUSY.
 * Storage errors other than -ENOMEM cancel the watcher concerned. */
int watch_hub_step(watch_hub *hub, size_t budget);

/* Whether watch_hub_step has work: 1 or 0.  Poll it after watch_start,
 * watch_resume and watch_progress_request to schedule a step. */
int watch_hub_pending(const watch_hub *hub);

/* Periodic progress: sends the hub's revision to every synced watcher
 * started with WATCH_PROGRESS_NOTIFY.  0 or WATCH_EBUSY. */
int watch_hub_progress(watch_hub *hub);

/* Last revision notified (or the store's revision at creation). */
int64_t watch_hub_revision(const watch_hub *hub);

typedef struct watch_hub_stats {
    size_t watchers; /* live (not yet stopped) */
    size_t synced;
    size_t catching;
    size_t parked;
    size_t canceled;
    size_t groups;        /* distinct key ranges */
    uint64_t events_sent; /* events handed to sinks, total */
    uint64_t events_read; /* events read from storage by catch-up */
    uint64_t parks;       /* times a sink answered full */
    uint64_t demotions;   /* synced watchers moved to catch-up on ENOMEM */
} watch_hub_stats;
void watch_hub_stats_get(const watch_hub *hub, watch_hub_stats *out);

/* ---- watchers ---------------------------------------------------------- */

#define WATCH_PREV_KV 0x01         /* fill prev_kv in events */
#define WATCH_NO_PUT 0x02          /* filter out PUT events */
#define WATCH_NO_DELETE 0x04       /* filter out DELETE events */
#define WATCH_PROGRESS_NOTIFY 0x08 /* receive watch_hub_progress */

typedef struct watch_options {
    /* Key range, kv_range's conventions: range_end empty: `key` alone;
     * "\0" (one zero byte): every key >= key; otherwise [key, range_end)
     * (a prefix P is [P, P with its last byte below 0xff incremented)).
     * key is 1..KV_MAX_KEY bytes.  Both are copied. */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t end_len;
    /* First revision wanted; 0: the revision after the hub's current one.
     * A future revision is fine: the watcher waits for it. */
    int64_t start_revision;
    /* Watch id, unique in the hub; 0: the hub picks an unused one. */
    int64_t id;
    unsigned flags;   /* WATCH_PREV_KV | WATCH_NO_PUT | ... */
    watch_sink *sink; /* borrowed; must outlive the watcher */
    void *data;       /* the user's, see watch_data */
} watch_options;

/* Starts a watcher.  It receives nothing during this call: a watcher from
 * the past is caught up by watch_hub_step (which also cancels it with
 * WATCH_ECOMPACTED when its start revision is compacted).
 * Errors: WATCH_EBADRANGE (empty or too long key, range_end <= key),
 * WATCH_EBADREV (negative start), WATCH_EEXIST (id in use), CM_EINVAL
 * (opts NULL or negative id), WATCH_EBADSINK (sink or one of its
 * callbacks missing), WATCH_ELIMIT, -ENOMEM.  On error nothing is kept.
 * Loop thread, or a sink callback. */
int watch_start(watch_hub *hub, const watch_options *opts, watch_watcher **out);

/* Stops and frees a watcher in any state; nothing is sent to its sink.
 * From inside a callback the memory is reclaimed when the hub call
 * returns; the pointer is invalid for the caller at once. */
void watch_stop(watch_watcher *w);

/* The sink has room again: a parked watcher goes to catch-up from the
 * revision it was parked at.  No-op (0) for a watcher that is not parked.
 * Errors: WATCH_ECANCELED. */
int watch_resume(watch_watcher *w);

/* Asks for one progress notification for this watcher.  It is sent by the
 * next watch_hub_step if the watcher is synced, else as soon as it is
 * synced again (so its revision is always meaningful).
 * Errors: WATCH_ECANCELED. */
int watch_progress_request(watch_watcher *w);

/* Looks a watcher up by id; NULL when none (or already stopped). */
watch_watcher *watch_find(watch_hub *hub, int64_t id);

enum watch_state {
    WATCH_SYNCED = 1,
    WATCH_CATCHING,
    WATCH_PARKED,
    WATCH_CANCELED
};

int64_t watch_id(const watch_watcher *w);
void *watch_data(const watch_watcher *w);
enum watch_state watch_state_get(const watch_watcher *w);
/* The first revision the watcher has not been given yet (events or not):
 * resuming a new watcher from here loses and repeats nothing. */
int64_t watch_next_revision(const watch_watcher *w);

#endif /* SKIFF_WATCH_H */
