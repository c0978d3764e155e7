/*
 * controllers/workqueue.h -- client-go's rate-limiting work queue, for one
 * libuv loop.
 *
 * Keys (strings, copied) wait in FIFO order and are deduplicated: adding
 * a key that is already waiting does nothing.  ctl_wq_get hands a key to a
 * worker and marks it processing until ctl_wq_done; a key added again
 * while it is processing waits until done and is then queued once, so no
 * key is ever processed by two workers at once.  Delayed adds wait on a
 * timer; rate-limited adds wait base * 2^failures (5 ms, doubling, capped
 * at 1000 s: Kubernetes' per-item exponential failure rate limiter) until
 * ctl_wq_forget resets the count.
 *
 * Threads: single-threaded.  Everything, including the timers, runs on the
 * loop passed to ctl_wq_create, and every call must come from the thread
 * running it.  A "worker" is any code between ctl_wq_get and ctl_wq_done;
 * it may span loop iterations (e.g. wait for a skiff_do callback), so
 * several keys can be in processing at once.  ready_cb tells the consumer
 * that ctl_wq_get will return a key; get never blocks.
 *
 * Errors: 0 or negative -errno: -EINVAL, -ENOMEM, -ESHUTDOWN (after
 * ctl_wq_shutdown), -EAGAIN (nothing ready).
 */
#ifndef SKIFF_CTL_WORKQUEUE_H
#define SKIFF_CTL_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ctl_wq ctl_wq;

typedef struct ctl_wq_config {
    void *data;
    /* Called from the loop (never inside a ctl_wq_* call) when keys are
     * ready and no ready_cb is pending; call ctl_wq_get until -EAGAIN.
     * May be NULL (then poll ctl_wq_get). */
    void (*ready_cb)(ctl_wq *q, void *data);
    int64_t base_delay_ms; /* 0: 5 */
    int64_t max_delay_ms;  /* 0: 1000000 (1000 s) */
} ctl_wq_config;

/* Creates a queue on `loop` (borrowed; must outlive the queue).  cfg is
 * copied.  0, -EINVAL, -ENOMEM.  Loop thread. */
int ctl_wq_create(uv_loop_t *loop, const ctl_wq_config *cfg, ctl_wq **out);
/* Queues key (copied) unless it is already waiting; a key in processing
 * is queued when it is done.  0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
int ctl_wq_add(ctl_wq *q, const char *key);
/* Queues key after ms (<= 0: now).  A key already waiting for a delay
 * keeps the earlier of the two times.  0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
int ctl_wq_add_after(ctl_wq *q, const char *key, int64_t ms);
/* Queues key after its backoff, base * 2^n where n is the number of
 * rate-limited adds since the last forget, capped at max; *delay_ms (may
 * be NULL) gets the delay used.  Errors as ctl_wq_add_after. */
int ctl_wq_add_rate_limited(ctl_wq *q, const char *key, int64_t *delay_ms);
/* Resets key's backoff (call after it was processed successfully). */
void ctl_wq_forget(ctl_wq *q, const char *key);
/* Rate-limited adds since the last forget (client-go's NumRequeues). */
int ctl_wq_num_requeues(const ctl_wq *q, const char *key);
/* Takes the next ready key and marks it processing.  *key is borrowed
 * until ctl_wq_done(q, *key).  0, -EAGAIN (nothing ready), -ESHUTDOWN
 * (shut down and nothing ready: the worker should exit). */
int ctl_wq_get(ctl_wq *q, const char **key);
/* Ends processing of key (as returned by get); queues it again if it was
 * added meanwhile.  -EINVAL when key is not in processing, else 0. */
int ctl_wq_done(ctl_wq *q, const char *key);
/* Keys ready to be got (client-go's Len: not the delayed ones). */
size_t ctl_wq_len(const ctl_wq *q);
/* Rejects further adds; keys already ready can still be got, delayed ones
 * are dropped.  Idempotent. */
void ctl_wq_shutdown(ctl_wq *q);
int ctl_wq_shutting_down(const ctl_wq *q);
/* Shuts down and frees the queue after its timers have closed: close_cb
 * (may be NULL) runs from the loop, then the memory is gone.  Keys still
 * borrowed from get become invalid then. */
void ctl_wq_close(ctl_wq *q, void (*close_cb)(void *data));

#endif
