/*
 * controllers/events.h -- an Event recorder for components (scheduler,
 * controllers, node agents): client-go's EventRecorder and
 * EventCorrelator, writing core/v1 Event objects to
 * /registry/events/<namespace>/<name>.
 *
 * Each event names its involvedObject (kind, namespace, name, uid,
 * apiVersion, resourceVersion), a type (Normal or Warning), a reason and
 * a message, and its source (component, host).  Repeats are folded as
 * Kubernetes folds them: the same involved object, type, reason, message
 * and source increment count and lastTimestamp of the Event already
 * written (compare-and-swap, retried) instead of creating another.  New
 * events are named "<involved name>.<16 hex digits>" (the time in
 * nanoseconds, as client-go does).  The recorder remembers the last 256
 * distinct events; an older or restarted recorder starts a new Event.
 *
 * Expiry: events live about an hour after their last update, through a
 * lease rather than a sweeper.  The recorder grants a lease of
 * lease_ttl_s (3600) and a fresh one every lease_renew_s (300), and every
 * write attaches the current one, so an event expires 55 to 60 minutes
 * after it was last written; old leases are never kept alive.
 *
 * Threads and clients: writes block (skiff_do_sync): a blocking client,
 * used from its own thread and never from inside one of its callbacks.
 *
 * Errors: 0 or negative: -EINVAL, -ENOMEM, -EAGAIN (the Event kept
 * changing under the compare), or libskiff's codes.
 */
#ifndef SKIFF_CTL_EVENTS_H
#define SKIFF_CTL_EVENTS_H

#include <stdint.h>

#include "objects.h"
#include "skiff.h"

#define CTL_EVENT_NORMAL "Normal"
#define CTL_EVENT_WARNING "Warning"

typedef struct ctl_recorder ctl_recorder;

typedef struct ctl_recorder_config {
    skiff_client *client;  /* blocking; borrowed, outlives the recorder */
    const char *component; /* source.component ("default-scheduler") */
    const char *host;      /* source.host; NULL or "": none */
    int64_t lease_ttl_s;   /* 0: 3600 */
    int64_t lease_renew_s; /* 0: 300 */
} ctl_recorder_config;

/* A recorder (strings copied).  0, -EINVAL (no client or component),
 * -ENOMEM.  No I/O until the first event. */
int ctl_recorder_create(const ctl_recorder_config *cfg, ctl_recorder **out);
/* Frees it; leases are left to expire.  NULL is a no-op. */
void ctl_recorder_destroy(ctl_recorder *r);

/* Records an event about `involved` (borrowed for the call: an object as
 * read from the store, with metadata.name and, when it has one, uid and
 * resourceVersion).  type is CTL_EVENT_NORMAL or CTL_EVENT_WARNING;
 * reason is a CamelCase word ("FailedScheduling"); the message is
 * printf-formatted (cut at 1024 bytes).  Events of cluster-scoped objects
 * go to namespace "default", as in Kubernetes.  Errors as above. */
int ctl_event_record(ctl_recorder *r, const obj_object *involved,
                     const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The key of the Event the last successful call wrote (borrowed until the
 * next call), or "". */
const char *ctl_recorder_last_key(const ctl_recorder *r);
/* The lease the recorder attaches now (0 before the first event). */
int64_t ctl_recorder_lease(const ctl_recorder *r);

#endif
