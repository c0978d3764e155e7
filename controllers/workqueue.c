/*
 * The work queue: client-go's workqueue.RateLimitingInterface on one libuv
 * loop, with no locks because only the loop thread touches it.
 *
 * Every key the queue knows has one item, found through a hash map.  An
 * item's flags say where it is:
 *   dirty       it must be processed (again): it sits in the ready FIFO,
 *               or, when it is also processing, it will be put there by
 *               ctl_wq_done.  Adding a dirty key is a no-op: that is the
 *               deduplication, and because a processing key is never in
 *               the FIFO, no two workers ever hold the same key.
 *   processing  between ctl_wq_get and ctl_wq_done.
 *   hidx        its place in the delay heap (a min-heap on due time, ties
 *               broken by insertion order), or NO_HEAP.
 *   failures    rate-limited adds since the last forget.
 * An item is freed as soon as none of these holds, so the queue's memory
 * is bounded by the keys in flight plus those with a backoff to remember
 * (client-go remembers those until Forget too).
 *
 * Two uv timers: `delay` fires at the earliest due time and moves due
 * items to the FIFO; `kick` (timeout 0) calls ready_cb from the loop when
 * the FIFO becomes non-empty, so the callback never runs inside the call
 * that made a key ready.
 */
#include "workqueue.h"

#include <errno.h>
#include <string.h>

#include "cm.h"
#include "ctl_int.h"

#define NO_HEAP ((size_t)-1)

typedef struct item {
    struct item *next; /* FIFO */
    int dirty, processing;
    int failures;
    size_t hidx;
    int64_t due;
    uint64_t seq;
    char key[];
} item;

struct ctl_wq {
    uv_loop_t *loop;
    ctl_wq_config cfg;
    ctl__map items;
    item *head, *tail; /* ready FIFO */
    size_t n_ready;
    item **heap;
    size_t n_heap, cap_heap;
    uint64_t seq;
    uv_timer_t delay, kick;
    int kick_pending, shutdown, closing, open_handles;
    void (*close_cb)(void *data);
};

/* ---- items --------------------------------------------------------------- */

static void maybe_drop(ctl_wq *q, item *it)
{
    if (it->dirty || it->processing || it->hidx != NO_HEAP || it->failures)
        return;
    ctl__map_del(&q->items, it->key);
    cm_free(it);
}

static item *item_get_or_new(ctl_wq *q, const char *key)
{
    item *it = ctl__map_get(&q->items, key);
    if (it)
        return it;
    size_t len = strlen(key);
    it = cm_calloc(1, sizeof *it + len + 1);
    if (!it)
        return NULL;
    memcpy(it->key, key, len + 1);
    it->hidx = NO_HEAP;
    if (ctl__map_put(&q->items, it->key, it, NULL)) {
        cm_free(it);
        return NULL;
    }
    return it;
}

/* ---- the ready FIFO ------------------------------------------------------ */

static void on_kick(uv_timer_t *t)
{
    ctl_wq *q = t->data;
    q->kick_pending = 0;
    if (q->n_ready && q->cfg.ready_cb && !q->closing)
        q->cfg.ready_cb(q, q->cfg.data);
}

static void push_ready(ctl_wq *q, item *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n_ready++;
    if (q->cfg.ready_cb && !q->kick_pending && !q->closing) {
        q->kick_pending = 1;
        uv_timer_start(&q->kick, on_kick, 0, 0);
    }
}

/* client-go's Add: mark dirty; queue unless it is being processed. */
static void add_now(ctl_wq *q, item *it)
{
    if (it->dirty)
        return;
    it->dirty = 1;
    if (!it->processing)
        push_ready(q, it);
}

/* ---- the delay heap ------------------------------------------------------ */

static int before(const item *a, const item *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(ctl_wq *q, size_t i, item *it)
{
    q->heap[i] = it;
    it->hidx = i;
}

static void sift_up(ctl_wq *q, size_t i)
{
    item *it = q->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(it, q->heap[p]))
            break;
        heap_set(q, i, q->heap[p]);
        i = p;
    }
    heap_set(q, i, it);
}

static void sift_down(ctl_wq *q, size_t i)
{
    item *it = q->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const item *best = it;
        if (l < q->n_heap && before(q->heap[l], best))
            m = l, best = q->heap[l];
        if (l + 1 < q->n_heap && before(q->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(q, i, q->heap[m]);
        i = m;
    }
    heap_set(q, i, it);
}

static item *heap_pop(ctl_wq *q)
{
    item *top = q->heap[0];
    top->hidx = NO_HEAP;
    if (--q->n_heap) {
        heap_set(q, 0, q->heap[q->n_heap]);
        sift_down(q, 0);
    }
    return top;
}

static void on_delay(uv_timer_t *t);

/* Due times use the real clock, not uv_now(): a key added after a long
 * stretch of work outside the loop would otherwise be due early. */
static int64_t now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static void arm_delay(ctl_wq *q)
{
    if (q->closing)
        return;
    if (!q->n_heap) {
        uv_timer_stop(&q->delay);
        return;
    }
    int64_t wait = q->heap[0]->due - now_ms();
    uv_timer_start(&q->delay, on_delay, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void on_delay(uv_timer_t *t)
{
    ctl_wq *q = t->data;
    int64_t now = now_ms();
    while (q->n_heap && q->heap[0]->due <= now) {
        item *it = heap_pop(q);
        add_now(q, it);
        maybe_drop(q, it);
    }
    arm_delay(q);
}

/* ---- public -------------------------------------------------------------- */

int ctl_wq_create(uv_loop_t *loop, const ctl_wq_config *cfg, ctl_wq **out)
{
    if (!loop || !out ||
        (cfg && (cfg->base_delay_ms < 0 || cfg->max_delay_ms < 0)))
        return -EINVAL;
    ctl_wq *q = cm_calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->loop = loop;
    if (cfg)
        q->cfg = *cfg;
    if (!q->cfg.base_delay_ms)
        q->cfg.base_delay_ms = 5;
    if (!q->cfg.max_delay_ms)
        q->cfg.max_delay_ms = 1000 * 1000;
    uv_timer_init(loop, &q->delay);
    uv_timer_init(loop, &q->kick);
    q->delay.data = q->kick.data = q;
    q->open_handles = 2;
    *out = q;
    return 0;
}

int ctl_wq_add(ctl_wq *q, const char *key)
{
    if (!q || !key)
        return -EINVAL;
    if (q->shutdown)
        return -ESHUTDOWN;
    item *it = item_get_or_new(q, key);
    if (!it)
        return -ENOMEM;
    add_now(q, it);
    return 0;
}

int ctl_wq_add_after(ctl_wq *q, const char *key, int64_t ms)
{
    if (!q || !key)
        return -EINVAL;
    if (q->shutdown)
        return -ESHUTDOWN;
    if (ms <= 0)
        return ctl_wq_add(q, key);
    item *it = item_get_or_new(q, key);
    if (!it)
        return -ENOMEM;
    int64_t due = now_ms() + ms;
    if (it->hidx != NO_HEAP) {
        /* client-go keeps the earlier time for a key already waiting. */
        if (due < it->due) {
            it->due = due;
            sift_up(q, it->hidx);
            arm_delay(q);
        }
        return 0;
    }
    if (q->n_heap == q->cap_heap) {
        size_t ncap = q->cap_heap ? 2 * q->cap_heap : 16;
        item **nh = cm_realloc(q->heap, ncap * sizeof *nh);
        if (!nh) {
            maybe_drop(q, it);
            return -ENOMEM;
        }
        q->heap = nh;
        q->cap_heap = ncap;
    }
    it->due = due;
    it->seq = q->seq++;
    heap_set(q, q->n_heap++, it);
    sift_up(q, it->hidx);
    arm_delay(q);
    return 0;
}

int ctl_wq_add_rate_limited(ctl_wq *q, const char *key, int64_t *delay_ms)
{
    if (!q || !key)
        return -EINVAL;
    if (q->shutdown)
        return -ESHUTDOWN;
    item *it = item_get_or_new(q, key);
    if (!it)
        return -ENOMEM;
    /* base * 2^failures without overflow: stop doubling at the cap. */
    int64_t d = q->cfg.base_delay_ms;
    for (int i = 0; i < it->failures && d < q->cfg.max_delay_ms; i++)
        d *= 2;
    if (d > q->cfg.max_delay_ms)
        d = q->cfg.max_delay_ms;
    it->failures++;
    if (delay_ms)
        *delay_ms = d;
    int rc = ctl_wq_add_after(q, key, d);
    if (rc) {
        it->failures--; /* nothing was queued: the backoff stays */
        maybe_drop(q, it);
    }
    return rc;
}

void ctl_wq_forget(ctl_wq *q, const char *key)
{
    item *it = q && key ? ctl__map_get(&q->items, key) : NULL;
    if (!it)
        return;
    it->failures = 0;
    maybe_drop(q, it);
}

int ctl_wq_num_requeues(const ctl_wq *q, const char *key)
{
    const item *it = ctl__map_get(&q->items, key);
    return it ? it->failures : 0;
}

int ctl_wq_get(ctl_wq *q, const char **key)
{
    if (!q || !key)
        return -EINVAL;
    if (!q->head)
        return q->shutdown ? -ESHUTDOWN : -EAGAIN;
    item *it = q->head;
    q->head = it->next;
    if (!q->head)
        q->tail = NULL;
    q->n_ready--;
    it->next = NULL;
    it->dirty = 0;
    it->processing = 1;
    *key = it->key;
    return 0;
}

int ctl_wq_done(ctl_wq *q, const char *key)
{
    item *it = q && key ? ctl__map_get(&q->items, key) : NULL;
    if (!it || !it->processing)
        return -EINVAL;
    it->processing = 0;
    if (it->dirty)
        push_ready(q, it);
    else
        maybe_drop(q, it);
    return 0;
}

size_t ctl_wq_len(const ctl_wq *q)
{
    return q->n_ready;
}

void ctl_wq_shutdown(ctl_wq *q)
{
    if (!q || q->shutdown)
        return;
    q->shutdown = 1;
    while (q->n_heap) {
        item *it = heap_pop(q);
        maybe_drop(q, it);
    }
    uv_timer_stop(&q->delay);
}

int ctl_wq_shutting_down(const ctl_wq *q)
{
    return q->shutdown;
}

static void free_item(void *val, void *arg)
{
    (void)arg;
    cm_free(val);
}

static void on_closed(uv_handle_t *h)
{
    ctl_wq *q = h->data;
    if (--q->open_handles)
        return;
    void (*cb)(void *) = q->close_cb;
    void *data = q->cfg.data;
    ctl__map_foreach(&q->items, free_item, NULL);
    ctl__map_free(&q->items);
    cm_free(q->heap);
    cm_free(q);
    if (cb)
        cb(data);
}

void ctl_wq_close(ctl_wq *q, void (*close_cb)(void *data))
{
    if (!q || q->closing)
        return;
    ctl_wq_shutdown(q);
    q->closing = 1;
    q->close_cb = close_cb;
    uv_close((uv_handle_t *)&q->delay, on_closed);
    uv_close((uv_handle_t *)&q->kick, on_closed);
}
