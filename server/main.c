/*
 * skiffd: one store member.  This file wires the pieces: configuration,
 * the store, the watch hub, the client listener, the metrics port, timers
 * and signals, all on one libuv loop.
 *
 * Shutdown: SIGTERM or SIGINT stops accepting, lets the apply in flight
 * finish and be answered, closes every connection and the store, and
 * exits 0.  Nothing depends on a clean shutdown for safety: every
 * acknowledged write was committed with fdatasync before its reply, so a
 * SIGKILL at any moment loses nothing that was acknowledged.
 */
#include "server_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t srv_compact_interval(const server *s);

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void srv_stop(server *s)
{
    if (!s->stopping) {
        s->stopping = true;
        CM_INFO("shutting down", "connections=%zu", s->nconns);
        uv_close((uv_handle_t *)&s->listener, NULL);
        if (s->has_metrics)
            uv_close((uv_handle_t *)&s->metrics_listener, NULL);
        uv_timer_stop(&s->lease_timer);
        uv_timer_stop(&s->compact_timer);
        uv_timer_stop(&s->progress_timer);
        uv_timer_stop(&s->tick_timer);
        uv_timer_stop(&s->sweep_timer);
        uv_timer_stop(&s->ck_timer);
    }
    /* Let the jobs in the pool finish (their callbacks call back here). */
    if (s->applying || s->persisting || s->compacting || s->restoring)
        return;
    srv_waiters_fail_all(s, "server is shutting down");
    srv_reads_free(s);
    srv_node_close(s);
    while (s->conns)
        conn_close(s->conns, NULL);
    uv_walk(s->loop, close_walk, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
    server *s = h->data;
    CM_INFO("received signal", "signal=%s", sig == SIGINT ? "SIGINT"
                                                          : "SIGTERM");
    srv_stop(s);
}

static void on_progress_timer(uv_timer_t *t)
{
    server *s = t->data;
    watch_hub_progress(s->hub);
}

static int listen_clients(server *s)
{
    char host[128];
    int port;
    if (srv_parse_addr(s->cfg.listen_client, host, sizeof host, &port)) {
        fprintf(stderr, "skiffd: --listen-client-urls: cannot parse \"%s\"\n",
                s->cfg.listen_client);
        return -1;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)) {
        fprintf(stderr, "skiffd: --listen-client-urls: \"%s\" is not an IP "
                        "address\n",
                host);
        return -1;
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, srv_on_connection);
    if (rc) {
        fprintf(stderr, "skiffd: listen on %s: %s\n", s->cfg.listen_client,
                uv_strerror(rc));
        return -1;
    }
    return 0;
}

int64_t srv_clock_ms(const server *s)
{
    return s->wall0 + (cm_mono_ms() - s->mono0);
}

int srv_start(server *s)
{
    s->wall0 = cm_now_ms();
    s->mono0 = cm_mono_ms();
    srv_config *c = &s->cfg;
    s->apply_arena.chunk_sz = 1 << 20;
    if (srv_boot(s))
        return -1;
    int rc;
    if ((rc = watch_hub_create(&s->hub, s->kv, NULL))) {
        fprintf(stderr, "skiffd: watch hub: %s\n", watch_strerror(rc));
        return -1;
    }
    if (srv_auth_setup(s))
        return -1;
    kv_status st;
    kv_status_meta(s->kv, &st);
    if (srv_node_start(s))
        return -1;
    Skiffpb__Membership *mb = NULL;
    if (kv_membership_get(s->kv, &s->apply_arena, &mb) == 0) {
        if (mb->n_members)
            srv_membership_changed(s, mb);
        else
            srv_membership_seed(s); /* joining: no membership yet */
    }
    cm_arena_reset(&s->apply_arena);
    if (srv_tls_setup(s))
        return -1;
    if (listen_clients(s))
        return -1;
    if (c->listen_metrics[0] && (rc = srv_metrics_start(s))) {
        fprintf(stderr, "skiffd: --listen-metrics-urls %s: %s\n",
                c->listen_metrics, cm_strerror(rc));
        return -1;
    }
    uv_timer_init(s->loop, &s->lease_timer);
    s->lease_timer.data = s;
    uv_timer_start(&s->lease_timer, srv_lease_tick, 500, 500);
    uv_timer_init(s->loop, &s->compact_timer);
    s->compact_timer.data = s;
    uint64_t iv = srv_compact_interval(s);
    if (iv)
        uv_timer_start(&s->compact_timer, srv_compact_tick, iv, iv);
    uv_timer_init(s->loop, &s->progress_timer);
    s->progress_timer.data = s;
    uint64_t piv = (uint64_t)srv_parse_duration(c->progress_interval, 1);
    uv_timer_start(&s->progress_timer, on_progress_timer, piv, piv);
    uv_idle_init(s->loop, &s->watch_idle);
    srv_flush_init(s);
    uv_signal_init(s->loop, &s->sigint);
    uv_signal_init(s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    CM_INFO("ready to serve client requests",
            "address=%s tls=%s data-dir=%s revision=%lld applied-index=%llu "
            "member-id=%016llx",
            c->listen_client,
            s->tls ? (c->client_cert_auth ? "mutual" : "server") : "off",
            c->data_dir, (long long)st.revision,
            (unsigned long long)st.applied_index,
            (unsigned long long)s->member_id);
    return 0;
}

/* LMDB reads the store through a memory map.  A damaged page can send it
 * past the end of the file, which the kernel answers with SIGBUS: say
 * what that means and stop, instead of a bare crash.  Async-signal-safe
 * (write and _exit only). */
static void on_sigbus(int sig)
{
    static const char msg[] =
        "skiffd: SIGBUS reading the store's memory map: data.mdb is damaged "
        "or truncated; refusing to go on.  Remove this member, delete its "
        "data dir and add it again: its peers send it a snapshot.\n";
    (void)sig;
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

int main(int argc, char **argv)
{
    static server s;
    int rc = srv_config_parse(&s.cfg, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    enum cm_log_level lvl;
    cm_log_level_parse(s.cfg.log_level, &lvl);
    cm_log_set_level(lvl);
    cm_log_set_member(s.cfg.name);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
    /* WAL syncs, applies, reads, snapshots and hashes share libuv's pool;
     * with its default of 4 threads two busy read workers and a snapshot
     * could hold up the WAL.  Set before the pool starts (first job). */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    s.loop = uv_default_loop();
    if (srv_start(&s)) {
        srv_node_free(&s);
        watch_hub_destroy(s.hub);
        srv_auth_close(&s);
        kv_close(s.kv);
        cm_tls_ctx_destroy(s.tls);
        return 1;
    }
    uv_run(s.loop, UV_RUN_DEFAULT);
    srv_node_free(&s);
    watch_hub_destroy(s.hub);
    srv_auth_close(&s);
    kv_close(s.kv);
    cm_free(s.results);
    cm_arena_free(&s.apply_arena);
    cm_tls_ctx_destroy(s.tls);
    uv_loop_close(s.loop);
    CM_INFO("stopped", "%s", "");
    return s.exit_code;
}
