/*
 * Automatic lease keep-alive.  The wire's lease_keepalive is unary, so the
 * library renews each registered lease itself: one keep-alive request in
 * flight per lease at most, the next one TTL/3 after the last answer (at
 * least 500 ms apart), a failed attempt retried after 500 ms.  One client
 * timer serves every lease: it fires at the earliest due time and sends
 * what is due.  Keep-alives are safe to repeat, so the request layer
 * retries them across reconnects on its own.  A keep-alive ends for good
 * only when the lease is gone (TTL <= 0 or LEASE_NOT_FOUND), when it is
 * stopped, or when the client closes -- always through its callback, never
 * inside the call that caused it.
 */
#include "skiff_int.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define KA_MIN_INTERVAL_MS 500
#define KA_RETRY_MS 500

enum { KA_ACTIVE = 1, KA_STOPPING, KA_DONE };

static void ka_arm(skiff_client *c);

static int inflight(const skiff_keepalive *ka)
{
    return ka->req.state == REQ_WAIT || ka->req.state == REQ_RETRY ||
           ka->req.state == REQ_INFLIGHT;
}

static void ka_end(skiff_keepalive *ka, int status)
{
    skiff_client *c = ka->client;
    if (ka->state == KA_DONE)
        return;
    if (ka->prev)
        ka->prev->next = ka->next;
    else
        c->kas = ka->next;
    if (ka->next)
        ka->next->prev = ka->prev;
    ka->next = ka->prev = NULL;
    ka->state = KA_DONE;
    if (ka->cb)
        ka->cb(ka, status, 0);
}

static int64_t interval_ms(int64_t ttl)
{
    int64_t ms = ttl * 1000 / 3;
    return ms < KA_MIN_INTERVAL_MS ? KA_MIN_INTERVAL_MS : ms;
}

static void ka_req_cb(skiff_req *req, int status)
{
    skiff_keepalive *ka =
        (skiff_keepalive *)((char *)req - offsetof(skiff_keepalive, req));
    skiff_client *c = ka->client;
    int64_t now = skiff__now(c);
    if (ka->state == KA_STOPPING || status == -ECANCELED) {
        ka_end(ka, -ECANCELED);
        return;
    }
    if (status == 0 && req->result.ttl <= 0)
        status = SKIFF_ELEASE_NOT_FOUND;
    if (status == SKIFF_ELEASE_NOT_FOUND) {
        ka_end(ka, status);
        return;
    }
    if (status == 0) {
        ka->ttl = req->result.ttl;
        ka->next_at_ms = now + interval_ms(ka->ttl);
        if (ka->cb)
            ka->cb(ka, 0, ka->ttl);
    } else {
        ka->next_at_ms = now + KA_RETRY_MS;
    }
    ka_arm(c);
}

void skiff__ka_timer_cb(uv_timer_t *t)
{
    skiff_client *c = t->data;
    int64_t now = skiff__now(c);
    skiff_keepalive *ka = c->kas;
    while (ka) {
        skiff_keepalive *next = ka->next;
        if (ka->state == KA_STOPPING && !inflight(ka)) {
            ka_end(ka, -ECANCELED);
            next = c->kas; /* the callback may have changed the list */
        } else if (ka->state == KA_ACTIVE && !inflight(ka) &&
                   ka->next_at_ms <= now) {
            skiff_op op = {.type = SKIFF_OP_LEASE_KEEPALIVE, .lease = ka->id};
            if (skiff_do(c, &ka->req, &op, ka_req_cb) != 0)
                ka->next_at_ms = now + KA_RETRY_MS;
        }
        ka = next;
    }
    ka_arm(c);
}

static void ka_arm(skiff_client *c)
{
    if (c->closing)
        return;
    int64_t next = INT64_MAX, now = skiff__now(c);
    for (skiff_keepalive *ka = c->kas; ka; ka = ka->next) {
        if (inflight(ka))
            continue;
        int64_t at = ka->state == KA_STOPPING ? now : ka->next_at_ms;
        if (at < next)
            next = at;
    }
    if (next == INT64_MAX) {
        uv_timer_stop(&c->ka_timer);
        return;
    }
    uv_timer_start(&c->ka_timer, skiff__ka_timer_cb,
                   next > now ? (uint64_t)(next - now) : 0, 0);
}

int skiff_keepalive_start(skiff_client *c, skiff_keepalive *ka, int64_t id,
                          int64_t ttl, skiff_keepalive_cb cb)
{
    if (!c || !ka || id <= 0)
        return -EINVAL;
    if (c->closing)
        return SKIFF_EFAILED;
    void *data = ka->data;
    memset(ka, 0, sizeof *ka);
    ka->data = data;
    ka->cb = cb;
    ka->client = c;
    ka->id = id;
    ka->ttl = ttl;
    ka->state = KA_ACTIVE;
    if (c->blocking)
        uv_update_time(c->loop);
    ka->next_at_ms = skiff__now(c);
    ka->next = c->kas;
    if (c->kas)
        c->kas->prev = ka;
    c->kas = ka;
    ka_arm(c);
    return 0;
}

void skiff_keepalive_stop(skiff_keepalive *ka)
{
    if (!ka || ka->state != KA_ACTIVE)
        return;
    ka->state = KA_STOPPING;
    ka_arm(ka->client);
}

void skiff__cancel_all_kas(skiff_client *c)
{
    skiff_keepalive *ka = c->kas;
    while (ka) {
        skiff_keepalive *next = ka->next;
        if (inflight(ka)) {
            /* Its request is cancelled next; the callback ends it. */
            ka->state = KA_STOPPING;
        } else {
            ka_end(ka, -ECANCELED);
            next = c->kas;
        }
        ka = next;
    }
}
