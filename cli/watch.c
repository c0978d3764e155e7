/*
 * `skiffctl watch`: prints events as they happen, like etcdctl watch.
 *
 * One watch from the command line (key, key + range_end, or --prefix), or
 * with -i any number of watches read from stdin ("watch [flags] key
 * [range_end]" lines, and "progress" to ask every watch for a progress
 * notification).  Simple output is etcdctl's: per event its type, then
 * prev_kv's key and value when asked for and known, then the key and the
 * value; "progress notify: REV" for progress notifications.  stdout is
 * flushed after every delivery so a pipe reader sees events at once.
 *
 * A single watch runs on the blocking client and blocks in
 * skiff_watcher_next().  Interactive mode runs on the asynchronous client
 * instead, with stdin as one more handle on its loop, so input lines and
 * deliveries are handled as they come.  A watch the server cancels (a compacted
 * start revision) ends the command with etcdctl's message and exit code.
 */
#include "cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#define EXIT_INTERRUPTED 5
#define MAX_WATCHES 64

typedef struct wopts {
    int prefix, prev_kv, progress_notify;
    int64_t rev;
} wopts;

/* One event as etcd's JSON. */
static void print_event_json(const skiff_event *e)
{
    fputc('{', stdout);
    int comma = 0;
    if (e->type == SKIFF_EVENT_DELETE) {
        fputs("\"type\":1", stdout);
        comma = 1;
    }
    if (comma)
        fputc(',', stdout);
    fputs("\"kv\":", stdout);
    out_json_kv(stdout, &e->kv);
    if (e->has_prev_kv) {
        fputs(",\"prev_kv\":", stdout);
        out_json_kv(stdout, &e->prev_kv);
    }
    fputc('}', stdout);
}

/* Prints one delivery. */
static void print_resp(ctl *x, const skiff_watch_resp *r)
{
    if (x->out == CTL_OUT_JSON) {
        skiff_header h = r->header;
        if (!h.revision)
            h.revision = r->revision;
        fputs("{\"Header\":{", stdout);
        printf("\"cluster_id\":%" PRIu64 ",\"member_id\":%" PRIu64
               ",\"revision\":%" PRId64 ",\"raft_term\":%" PRIu64 "}",
               h.cluster_id, h.member_id, h.revision, h.raft_term);
        fputs(",\"Events\":[", stdout);
        for (size_t i = 0; i < r->n_events; i++) {
            if (i)
                fputc(',', stdout);
            print_event_json(&r->events[i]);
        }
        printf("],\"CompactRevision\":%" PRId64 ",\"Canceled\":false,"
               "\"Created\":%s,\"Fragment\":false}\n",
               r->compact_revision, r->created ? "true" : "false");
        fflush(stdout);
        return;
    }
    if (r->n_events == 0 && !r->created)
        printf("progress notify: %" PRId64 "\n", r->revision);
    for (size_t i = 0; i < r->n_events; i++) {
        const skiff_event *e = &r->events[i];
        printf("%s\n", e->type == SKIFF_EVENT_PUT ? "PUT" : "DELETE");
        if (e->has_prev_kv)
            out_kv_simple(x, &e->prev_kv, 0, 0);
        out_kv_simple(x, &e->kv, 0, 0);
    }
    fflush(stdout);
}

/* Prints etcdctl's message for a watch the server ended; returns the
 * exit code. */
static int canceled(int rc, const skiff_watch_resp *r)
{
    fflush(stdout);
    if (rc == SKIFF_ECOMPACTED && r && r->compact_revision)
        fprintf(stderr,
                "watch was canceled (skiffd: mvcc: required revision "
                "has been compacted; compact revision %" PRId64 ")\n",
                r->compact_revision);
    else if (rc == SKIFF_ECOMPACTED)
        fprintf(stderr, "watch was canceled (skiffd: mvcc: required revision "
                        "has been compacted)\n");
    else
        fprintf(stderr, "watch was canceled (%s)\n", skiff_strerror(rc));
    return ctl_errorf(EXIT_INTERRUPTED, "watch is canceled by the server");
}

/* Opens one watch described by positional words and options. */
static int open_watch(ctl *x, skiff_client *c, int npos, char **pos,
                      const wopts *o, skiff_watcher **out)
{
    skiff_watch_opts wo = {0};
    uint8_t *pbuf = NULL;
    wo.key = pos[0];
    wo.key_len = strlen(pos[0]);
    if (npos > 1) {
        wo.range_end = pos[1];
        wo.range_end_len = strlen(pos[1]);
    }
    if (o->prefix) {
        skiff_op tmp = {
            .type = SKIFF_OP_RANGE, .key = wo.key, .key_len = wo.key_len};
        pbuf = malloc(wo.key_len + 1);
        if (!pbuf || skiff_op_prefix(&tmp, pbuf, wo.key_len + 1)) {
            free(pbuf);
            return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
        }
        wo.range_end = tmp.range_end;
        wo.range_end_len = tmp.range_end_len;
        if (!wo.key_len) {
            wo.key = "";
            wo.key_len = 1; /* "\0": every key, as etcd does */
        }
    }
    wo.start_revision = o->rev;
    if (o->prev_kv)
        wo.flags |= SKIFF_WATCH_PREV_KV;
    if (o->progress_notify)
        wo.flags |= SKIFF_WATCH_PROGRESS_NOTIFY;
    int rc = skiff_watcher_open(c, out, &wo);
    free(pbuf);
    if (rc == SKIFF_ECOMPACTED)
        return canceled(rc, NULL);
    if (rc)
        return ctl_fail(x, c, rc, NULL);
    return 0;
}

/* Checks a watch command's positional arguments. */
static int check_args(int npos, const wopts *o)
{
    if (npos < 1 || npos > 2)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "watch in non-interactive mode requires one or two "
                          "arguments as key or prefix, with range end");
    if (npos == 2 && o->prefix)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "unexpected range_end with --prefix");
    return 0;
}

/* Blocks on one watcher until it ends. */
static int run_single(ctl *x, skiff_watcher *wr)
{
    for (;;) {
        skiff_watch_resp r = {0};
        int rc = skiff_watcher_next(wr, -1, &r);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc) {
            int code = canceled(rc, &r);
            skiff_watch_resp_free(&r);
            return code;
        }
        if (!r.created)
            print_resp(x, &r);
        skiff_watch_resp_free(&r);
    }
    (void)x;
}

/* ---- interactive mode -------------------------------------------------
 * Runs on the asynchronous client: stdin is one more handle on the same
 * libuv loop as the watches, so lines are acted on as soon as they arrive
 * and deliveries are printed as soon as they come in. */

typedef struct iwatch {
    skiff_watch w;
    struct iloop *il;
    int used;
} iwatch;

typedef struct iloop {
    ctl *x;
    uv_loop_t loop;
    uv_poll_t in;
    int in_open;
    skiff_client *c;
    iwatch ws[MAX_WATCHES];
    int nactive;
    char *line;
    size_t used, cap;
} iloop;

/* A delivery (or the end) of an interactive watch. */
static void on_iwatch(skiff_watch *w, int status, const skiff_watch_resp *r)
{
    iwatch *iw = w->data;
    if (status < 0) {
        if (status != -ECANCELED)
            canceled(status, r);
        iw->used = 0;
        iw->il->nactive--;
        return;
    }
    if (!r->created)
        print_resp(iw->il->x, r);
}

/* Acts on one line of input. */
static void do_line(iloop *il, char *line)
{
    char *words[64];
    int nword = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t && nword < 64;
         t = strtok_r(NULL, " \t\r", &save))
        words[nword++] = t;
    if (!nword)
        return;
    if (!strcmp(words[0], "progress")) {
        for (int i = 0; i < MAX_WATCHES; i++)
            if (il->ws[i].used)
                skiff_watch_progress(&il->ws[i].w);
        return;
    }
    if (strcmp(words[0], "watch")) {
        fprintf(stderr, "Invalid command %s (only support watch)\n", words[0]);
        return;
    }
    wopts o = {0};
    ctl_flag fl[] = {
        {"prefix", 0, CTL_BOOL, &o.prefix},
        {"rev", 0, CTL_INT, &o.rev},
        {"prev-kv", 0, CTL_BOOL, &o.prev_kv},
        {"progress-notify", 0, CTL_BOOL, &o.progress_notify},
        {NULL, 0, 0, NULL},
    };
    char *pos[64];
    int npos;
    if (ctl_flags_parse(il->x, nword - 1, words + 1, fl, pos, &npos) ||
        check_args(npos, &o))
        return;
    iwatch *iw = NULL;
    for (int i = 0; i < MAX_WATCHES && !iw; i++)
        if (!il->ws[i].used)
            iw = &il->ws[i];
    if (!iw) {
        ctl_errorf(CTL_EXIT_ERROR, "too many watches");
        return;
    }
    skiff_watch_opts wo = {0};
    uint8_t pbuf[1024];
    wo.key = pos[0];
    wo.key_len = strlen(pos[0]);
    if (npos > 1) {
        wo.range_end = pos[1];
        wo.range_end_len = strlen(pos[1]);
    }
    if (o.prefix) {
        skiff_op tmp = {
            .type = SKIFF_OP_RANGE, .key = wo.key, .key_len = wo.key_len};
        if (skiff_op_prefix(&tmp, pbuf, sizeof pbuf)) {
            ctl_errorf(CTL_EXIT_BAD_ARGS, "key too long");
            return;
        }
        wo.range_end = tmp.range_end;
        wo.range_end_len = tmp.range_end_len;
        if (!wo.key_len) {
            wo.key = "";
            wo.key_len = 1; /* "\0": every key, as etcd does */
        }
    }
    wo.start_revision = o.rev;
    wo.flags = (o.prev_kv ? SKIFF_WATCH_PREV_KV : 0) |
               (o.progress_notify ? SKIFF_WATCH_PROGRESS_NOTIFY : 0);
    memset(iw, 0, sizeof *iw);
    iw->il = il;
    iw->w.data = iw;
    int rc = skiff_watch_start(il->c, &iw->w, &wo, on_iwatch);
    if (rc) {
        ctl_fail(il->x, il->c, rc, NULL);
        return;
    }
    iw->used = 1;
    il->nactive++;
}

/* Reads what stdin has and acts on every complete line.  0, or -1 at
 * the end of input. */
static int feed(iloop *il)
{
    char buf[4096];
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    if (il->used + (size_t)n + 1 > il->cap) {
        size_t nc = (il->used + (size_t)n + 1) * 2;
        char *nl = realloc(il->line, nc);
        if (!nl)
            return -1;
        il->line = nl;
        il->cap = nc;
    }
    memcpy(il->line + il->used, buf, (size_t)n);
    il->used += (size_t)n;
    char *nlp;
    while ((nlp = memchr(il->line, '\n', il->used))) {
        *nlp = 0;
        do_line(il, il->line);
        size_t consumed = (size_t)(nlp - il->line) + 1;
        memmove(il->line, nlp + 1, il->used - consumed);
        il->used -= consumed;
    }
    return 0;
}

/* stdin is readable: act on its lines; at its end stop reading. */
static void on_stdin(uv_poll_t *h, int status, int events)
{
    iloop *il = h->data;
    (void)events;
    if (status < 0 || feed(il)) {
        /* End of input: the watches keep running, as etcdctl's do. */
        uv_poll_stop(h);
        uv_close((uv_handle_t *)h, NULL);
        il->in_open = 0;
    }
}

/* The async client is gone; nothing to free. */
static void on_iclosed(skiff_client *c)
{
    (void)c;
}

/* watch -i: runs until stdin has ended and every watch has ended. */
static int run_interactive(ctl *x)
{
    iloop *il = calloc(1, sizeof *il);
    if (!il)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    il->x = x;
    uv_loop_init(&il->loop);
    skiff_config cfg;
    ctl_config(x, x->endpoints, x->n_endpoints, &cfg);
    int rc = skiff_client_create_async(&il->c, &cfg, &il->loop);
    if (rc) {
        uv_loop_close(&il->loop);
        free(il);
        return ctl_errorf(CTL_EXIT_BAD_CONNECTION, "%s", skiff_strerror(rc));
    }
    il->in.data = il;
    if (uv_poll_init(&il->loop, &il->in, 0) == 0) {
        il->in_open = 1;
        uv_poll_start(&il->in, UV_READABLE, on_stdin);
    } else {
        /* A regular file cannot be polled: read it all now. */
        while (!feed(il))
            ;
    }
    while (il->in_open || il->nactive)
        uv_run(&il->loop, UV_RUN_ONCE);
    skiff_client_close(il->c, on_iclosed);
    uv_run(&il->loop, UV_RUN_DEFAULT);
    uv_loop_close(&il->loop);
    free(il->line);
    free(il);
    return 0;
}

/* watch [flags] KEY [RANGE_END], or watch -i */
int cmd_watch(ctl *x, int argc, char **argv)
{
    wopts o = {0};
    int interactive = 0;
    ctl_flag flags[] = {
        {"interactive", 'i', CTL_BOOL, &interactive},
        {"prefix", 0, CTL_BOOL, &o.prefix},
        {"rev", 0, CTL_INT, &o.rev},
        {"prev-kv", 0, CTL_BOOL, &o.prev_kv},
        {"progress-notify", 0, CTL_BOOL, &o.progress_notify},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    skiff_client *c;
    if (interactive) {
        if (npos)
            return ctl_errorf(CTL_EXIT_BAD_ARGS,
                              "watch in interactive mode does not accept "
                              "arguments");
        return run_interactive(x);
    }
    if ((rc = check_args(npos, &o)))
        return rc;
    c = ctl_client(x);
    skiff_watcher *wr = NULL;
    if ((rc = open_watch(x, c, npos, pos, &o, &wr)))
        return rc;
    rc = run_single(x, wr);
    skiff_watcher_close(wr);
    return rc;
}
