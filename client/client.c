/*
 * The libskiff client object: configuration, endpoints, the loop it runs
 * on, and its life cycle.
 *
 * A blocking client owns a private uv_loop_t embedded in the struct and
 * runs it only inside its calls (and skiff_client_poll); an asynchronous
 * client borrows the caller's loop.  Everything else -- connections,
 * requests, watches, keep-alives -- is identical for both, so the blocking
 * API is a thin layer and both kinds get the same retry and resume logic.
 *
 * Closing follows libuv: skiff_client_close only marks the client and
 * starts a zero timer; from that timer every outstanding request, watch and
 * keep-alive completes with -ECANCELED (so no callback runs inside the
 * close call), then every handle is closed and the memory is freed when
 * the last close callback has run.  A blocking client's destroy drives its
 * loop through the same steps and frees after the loop has stopped.
 *
 * Errors: SKIFF_ERRNO_MAP in skiff.h is the one table; it generates the
 * messages and names here, and wire ErrorCode N maps to -6000 - N, so the
 * mapping needs no table of its own.  The block is registered with
 * common's cm_strerror so a skiff code that reaches common code still
 * prints.  Per-client context (which call, which endpoint, the server's
 * message) goes into the client's errmsg, replaced by every failure.
 */
#include "skiff_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void client_free(skiff_client *c);

/* ---- errors -------------------------------------------------------------- */

#define WIRE_MIN 1
#define WIRE_MAX 36

static const char *lookup_msg(int code)
{
    switch (code) {
#define XX(name, val, msg)                                                     \
    case val:                                                                  \
        return msg;
        SKIFF_ERRNO_MAP(XX)
#undef XX
    default:
        return NULL;
    }
}

static const char *lookup_name(int code)
{
    switch (code) {
#define XX(name, val, msg)                                                     \
    case val:                                                                  \
        return #name;
        SKIFF_ERRNO_MAP(XX)
#undef XX
    default:
        return NULL;
    }
}

void skiff__err_init(void)
{
    cm_err_register(-6999, -6000, lookup_msg, lookup_name);
}

int skiff__err_from_wire(int code)
{
    if (code >= WIRE_MIN && code <= WIRE_MAX)
        return -6000 - code;
    return SKIFF_EINTERNAL;
}

void skiff__errmsg(skiff_client *c, const char *fmt, ...)
{
    if (!c)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

const char *skiff_strerror(int code)
{
    const char *m = lookup_msg(code);
    return m ? m : cm_strerror(code);
}

const char *skiff_err_name(int code)
{
    const char *m = lookup_name(code);
    return m ? m : cm_err_name(code);
}

const char *skiff_err_wire_name(int code)
{
    if (code > -6000 - WIRE_MIN || code < -6000 - WIRE_MAX)
        return NULL;
    const char *n = lookup_name(code);
    return n ? n + strlen("SKIFF_E") : NULL;
}

void skiff_allocator_set(const skiff_allocator *a)
{
    if (!a) {
        cm_allocator_set(NULL);
        return;
    }
    cm_allocator a2 = {a->data, a->malloc, a->realloc, a->free};
    cm_allocator_set(&a2);
}

/* ---- endpoints ----------------------------------------------------------- */

static int parse_endpoint(const char *s, skiff_endpoint *ep, int default_tls)
{
    int tls = default_tls;
    if (strncmp(s, "http://", 7) == 0) {
        s += 7;
        tls = 0;
    } else if (strncmp(s, "https://", 8) == 0) {
        s += 8;
        tls = 1;
    }
    const char *host = s, *host_end, *port;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return -EINVAL;
        port = host_end + 2;
    } else {
        host_end = strrchr(s, ':');
        if (!host_end)
            return -EINVAL;
        port = host_end + 1;
    }
    size_t plen = strcspn(port, "/");
    if (host_end == host || plen == 0 || plen > 5)
        return -EINVAL;
    for (size_t i = 0; i < plen; i++)
        if (port[i] < '0' || port[i] > '9')
            return -EINVAL;
    ep->host = cm_memdup(host, (size_t)(host_end - host) + 1);
    ep->port = cm_memdup(port, plen + 1);
    if (!ep->host || !ep->port) {
        cm_free(ep->host);
        cm_free(ep->port);
        ep->host = ep->port = NULL;
        return -ENOMEM;
    }
    ep->host[host_end - host] = 0;
    ep->port[plen] = 0;
    ep->tls = tls;
    return 0;
}

/* ---- create -------------------------------------------------------------- */

static int client_init(skiff_client **out, const skiff_config *cfg,
                       uv_loop_t *loop)
{
    *out = NULL;
    if (!cfg || !cfg->endpoints || cfg->n_endpoints == 0 ||
        cfg->n_endpoints > 1024 || (!cfg->cert_file != !cfg->key_file))
        return -EINVAL;
    skiff__err_init();
    int rc = -ENOMEM;
    skiff_client *c = cm_calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->dial_timeout_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : 5000;
    c->request_timeout_ms =
        cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 10000;
    c->backoff_min_ms = cfg->backoff_min_ms > 0 ? cfg->backoff_min_ms : 50;
    c->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 2000;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    c->max_streams = cfg->max_streams > 0 ? cfg->max_streams : 1024;
    c->max_response = cfg->max_response ? cfg->max_response : (64u << 20);
    c->n_conns = cfg->conns > 0 ? cfg->conns : 1;
    c->scratch.chunk_sz = 65536;
    c->eps = cm_calloc(cfg->n_endpoints, sizeof *c->eps);
    if (!c->eps)
        goto err;
    int want_tls = cfg->ca_file != NULL || cfg->cert_file != NULL;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        if (!cfg->endpoints[i]) {
            rc = -EINVAL;
            goto err;
        }
        rc = parse_endpoint(cfg->endpoints[i], &c->eps[i], want_tls);
        if (rc)
            goto err;
        c->n_eps++;
        if (c->eps[i].tls)
            want_tls = 1;
    }
    if (want_tls) {
        for (int i = 0; i < c->n_eps; i++)
            c->eps[i].tls = 1;
        cm_tls_config tc = {.server = 0,
                            .ca_file = cfg->ca_file,
                            .cert_file = cfg->cert_file,
                            .key_file = cfg->key_file,
                            .insecure_skip_verify = cfg->insecure_skip_verify};
        rc = cm_tls_ctx_create(&c->tls, &tc, c->errmsg, sizeof c->errmsg);
        if (rc) {
            rc = rc == -ENOMEM ? rc : SKIFF_ETLS;
            goto err;
        }
    }
    if (cfg->token && !(c->token = cm_strdup(cfg->token))) {
        rc = -ENOMEM;
        goto err;
    }
    if (cfg->server_name) {
        c->server_name = cm_strdup(cfg->server_name);
        if (!c->server_name) {
            rc = -ENOMEM;
            goto err;
        }
    }
    /* Kept so skiff__client_create_like can open a connection to one
     * chosen member with the same settings (move leader). */
    if ((cfg->ca_file && !(c->ca_file = cm_strdup(cfg->ca_file))) ||
        (cfg->cert_file && !(c->cert_file = cm_strdup(cfg->cert_file))) ||
        (cfg->key_file && !(c->key_file = cm_strdup(cfg->key_file)))) {
        rc = -ENOMEM;
        goto err;
    }
    c->insecure_skip_verify = cfg->insecure_skip_verify;
    if (loop) {
        c->loop = loop;
    } else {
        rc = uv_loop_init(&c->own_loop);
        if (rc)
            goto err;
        c->loop = &c->own_loop;
        c->blocking = 1;
    }
    /* Connection i starts at endpoint i: the first endpoint is preferred,
     * like a list of members in order of preference. */
    c->next_ep = 0;
    rc = skiff__conns_init(c);
    if (rc)
        goto err_loop;
    uv_timer_init(c->loop, &c->dl_timer);
    uv_timer_init(c->loop, &c->retry_timer);
    uv_timer_init(c->loop, &c->ka_timer);
    uv_timer_init(c->loop, &c->close_timer);
    uv_timer_init(c->loop, &c->poll_timer);
    c->dl_timer.data = c->retry_timer.data = c->ka_timer.data = c;
    c->close_timer.data = c->poll_timer.data = c;
    *out = c;
    return 0;

err_loop:
    if (!loop)
        uv_loop_close(&c->own_loop);
err:
    client_free(c);
    return rc;
}

int skiff_client_create(skiff_client **out, const skiff_config *cfg)
{
    if (!out)
        return -EINVAL;
    return client_init(out, cfg, NULL);
}

int skiff_client_create_async(skiff_client **out, const skiff_config *cfg,
                              uv_loop_t *loop)
{
    if (!out || !loop)
        return -EINVAL;
    return client_init(out, cfg, loop);
}

void skiff__endpoint_str(const skiff_endpoint *ep, char *buf, size_t cap)
{
    int v6 = strchr(ep->host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s%s:%s", ep->tls ? "https://" : "", v6 ? "[" : "",
             ep->host, v6 ? "]" : "", ep->port);
}

int skiff__client_create_like(skiff_client *c, const char *endpoint,
                              int timeout_ms, skiff_client **out)
{
    const char *eps[1] = {endpoint};
    skiff_config cfg = {.endpoints = eps,
                        .n_endpoints = 1,
                        .ca_file = c->ca_file,
                        .cert_file = c->cert_file,
                        .key_file = c->key_file,
                        .server_name = c->server_name,
                        .token = c->token,
                        .insecure_skip_verify = c->insecure_skip_verify,
                        .dial_timeout_ms = c->dial_timeout_ms < timeout_ms
                                               ? c->dial_timeout_ms
                                               : timeout_ms,
                        .request_timeout_ms = timeout_ms,
                        .backoff_min_ms = c->backoff_min_ms,
                        .backoff_max_ms = c->backoff_max_ms,
                        .max_response = c->max_response};
    return client_init(out, &cfg, NULL);
}

/* ---- close --------------------------------------------------------------- */

static void client_free(skiff_client *c)
{
    for (int i = 0; i < c->n_eps; i++) {
        cm_free(c->eps[i].host);
        cm_free(c->eps[i].port);
    }
    cm_free(c->eps);
    cm_tls_ctx_destroy(c->tls);
    cm_free(c->server_name);
    cm_free(c->token);
    cm_free(c->ca_file);
    cm_free(c->cert_file);
    cm_free(c->key_file);
    skiff__conns_free(c);
    for (size_t i = 0; i < c->npool; i++)
        skiff__arena_destroy(c->pool[i]);
    cm_free(c->pool);
    cm_arena_free(&c->scratch);
    cm_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    skiff_client *c = h->data;
    c->closed_handles_pending--;
    skiff__maybe_finish_close(c);
}

void skiff__maybe_finish_close(skiff_client *c)
{
    if (!c->close_started || c->closed_handles_pending > 0)
        return;
    for (int i = 0; i < c->n_conns; i++)
        if (c->conns[i].gai_busy)
            return;
    if (c->close_done)
        return;
    c->close_done = 1;
    if (c->blocking)
        return; /* skiff_client_destroy frees after its loop stops */
    skiff_close_cb cb = c->close_cb;
    if (cb)
        cb(c);
    client_free(c);
}

static void close_timer_handle(skiff_client *c, uv_timer_t *t)
{
    uv_timer_stop(t);
    c->closed_handles_pending++;
    uv_close((uv_handle_t *)t, on_timer_closed);
}

static void on_close_timer(uv_timer_t *t)
{
    skiff_client *c = t->data;
    /* Completions first, while every handle still works; then handles. */
    skiff__cancel_all_kas(c);
    skiff__cancel_all_watches(c);
    skiff__cancel_all_reqs(c);
    c->close_started = 1;
    close_timer_handle(c, &c->dl_timer);
    close_timer_handle(c, &c->retry_timer);
    close_timer_handle(c, &c->ka_timer);
    close_timer_handle(c, &c->poll_timer);
    close_timer_handle(c, &c->close_timer);
    skiff__conns_close(c);
    skiff__maybe_finish_close(c);
}

void skiff_client_close(skiff_client *c, skiff_close_cb close_cb)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->close_cb = close_cb;
    uv_timer_start(&c->close_timer, on_close_timer, 0, 0);
}

void skiff_client_destroy(skiff_client *c)
{
    if (!c)
        return;
    if (!c->blocking) {
        skiff_client_close(c, NULL);
        return;
    }
    skiff_client_close(c, NULL);
    while (!c->close_done)
        uv_run(c->loop, UV_RUN_ONCE);
    uv_run(c->loop, UV_RUN_NOWAIT);
    uv_loop_close(c->loop);
    client_free(c);
}

/* ---- misc ---------------------------------------------------------------- */

void skiff__poll_timer_cb(uv_timer_t *t)
{
    skiff_client *c = t->data;
    c->poll_expired = 1;
}

int skiff_client_poll(skiff_client *c, int timeout_ms)
{
    if (!c)
        return -EINVAL;
    if (!c->blocking)
        return SKIFF_EWRONG_MODE;
    if (c->closing)
        return SKIFF_EFAILED;
    uv_update_time(c->loop);
    if (timeout_ms <= 0) {
        uv_run(c->loop, UV_RUN_NOWAIT);
        return 0;
    }
    c->poll_expired = 0;
    uv_timer_start(&c->poll_timer, skiff__poll_timer_cb, (uint64_t)timeout_ms,
                   0);
    while (!c->poll_expired)
        uv_run(c->loop, UV_RUN_ONCE);
    return 0;
}

const char *skiff_client_errmsg(const skiff_client *c)
{
    return c ? c->errmsg : "";
}

uv_loop_t *skiff_client_loop(const skiff_client *c)
{
    return c ? c->loop : NULL;
}
