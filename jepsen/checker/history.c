/*
 * Histories: JSON lines to paired operations.
 *
 * Jepsen's rule pairs an invoke with the next ok/fail/info event of the
 * same process.  Events that complete nothing (watch deliveries, replays,
 * anything without a pending invoke) become operations of their own whose
 * invoke and completion are the same line, so every checker sees one flat
 * array of operations in invoke order.  Positions in the file (not the
 * "time" field) order events in real time: the runner writes a line when
 * the event happens, and positions are unique where clocks can tie.
 */
#include "json_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct jc_history {
    cm_arena arena;
    jc_op *ops;
    size_t n, cap;
};

/* Pending invokes by process: open addressing on the process number. */
typedef struct pending {
    int64_t *procs;
    int64_t *opi; /* op index + 1; 0 = empty slot */
    size_t nslots, used;
} pending;

static int64_t *pending_slot(pending *p, int64_t proc)
{
    size_t mask = p->nslots - 1;
    size_t i = (size_t)jc__hash(&proc, sizeof proc) & mask;
    while (p->opi[i] && p->procs[i] != proc)
        i = (i + 1) & mask;
    p->procs[i] = proc;
    return &p->opi[i];
}

static int pending_grow(pending *p)
{
    if (p->nslots && p->used * 2 < p->nslots)
        return 0;
    pending np = {0};
    np.nslots = p->nslots ? p->nslots * 2 : 64;
    np.procs = cm_calloc(np.nslots, sizeof(int64_t));
    np.opi = cm_calloc(np.nslots, sizeof(int64_t));
    if (!np.procs || !np.opi) {
        cm_free(np.procs);
        cm_free(np.opi);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->nslots; i++)
        if (p->opi[i])
            *pending_slot(&np, p->procs[i]) = p->opi[i];
    np.used = p->used;
    cm_free(p->procs);
    cm_free(p->opi);
    *p = np;
    return 0;
}

static jc_type parse_type(const char *t)
{
    if (!t)
        return JC_INFO;
    if (!strcmp(t, "invoke"))
        return JC_INVOKE;
    if (!strcmp(t, "ok"))
        return JC_OK;
    if (!strcmp(t, "fail"))
        return JC_FAIL;
    return JC_INFO;
}

static jc_op *new_op(jc_history *h)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 256;
        jc_op *n = cm_realloc(h->ops, ncap * sizeof *n);
        if (!n)
            return NULL;
        h->ops = n;
        h->cap = ncap;
    }
    jc_op *op = &h->ops[h->n++];
    memset(op, 0, sizeof *op);
    return op;
}

static void seterr(char *errmsg, size_t cap, size_t line, const char *why)
{
    if (errmsg && cap)
        snprintf(errmsg, cap, "line %zu: %s", line, why);
}

int jc_history_parse(const char *text, size_t len, jc_history **out,
                     char *errmsg, size_t errcap)
{
    jc_history *h = cm_calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->arena.chunk_sz = 1 << 20;
    jc_parser p = {.arena = &h->arena};
    pending pend = {0};
    int rc = 0;
    size_t line = 0, pos = 0;
    int64_t evno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *s = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        line++;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
            k++;
        if (k == n)
            continue;
        jc_json *ev = cm_arena_alloc(&h->arena, sizeof *ev);
        if (!ev) {
            rc = -ENOMEM;
            goto err;
        }
        if ((rc = jc__json_parse(&p, s, n, ev))) {
            if (rc == JC_EPARSE)
                seterr(errmsg, errcap, line, p.err);
            goto err;
        }
        if (ev->type != JC_JSON_OBJ) {
            rc = JC_EPARSE;
            seterr(errmsg, errcap, line, "event is not an object");
            goto err;
        }
        int64_t index = jc__int(ev, "index", evno);
        int64_t at = evno++;
        jc_type t = parse_type(jc__str(ev, "type"));
        const jc_json *pj = jc_json_get(ev, "process");
        int has_proc = pj && pj->type == JC_JSON_INT;
        if ((rc = pending_grow(&pend)))
            goto err;
        if (t != JC_INVOKE && has_proc) {
            int64_t *slot = pending_slot(&pend, pj->i);
            if (*slot) {
                /* Completes the process's pending invoke; the slot stays
                 * occupied (as a tombstone with op index 0 it would break
                 * probing), so mark it "nothing pending" with -1. */
                if (*slot > 0) {
                    jc_op *op = &h->ops[*slot - 1];
                    op->type = t;
                    op->cmp = ev;
                    op->cmp_index = index;
                    op->cmp_pos = at;
                    op->cmp_time = jc__int(ev, "time", -1);
                    *slot = -1;
                    continue;
                }
            } else {
                *slot = -1;
                pend.used++;
            }
        }
        jc_op *op = new_op(h);
        if (!op) {
            rc = -ENOMEM;
            goto err;
        }
        const char *f = jc__str(ev, "f");
        op->index = index;
        op->process = has_proc ? pj->i : -1;
        op->f = f ? f : "";
        op->inv = ev;
        op->inv_pos = at;
        op->inv_time = jc__int(ev, "time", -1);
        if (t == JC_INVOKE) {
            op->type = JC_INFO; /* until a completion says otherwise */
            op->cmp = NULL;
            op->cmp_index = -1;
            op->cmp_pos = INT64_MAX;
            op->cmp_time = -1;
            if (has_proc) {
                int64_t *slot = pending_slot(&pend, pj->i);
                if (!*slot)
                    pend.used++;
                *slot = (int64_t)h->n;
            }
        } else {
            op->type = t;
            op->cmp = ev;
            op->cmp_index = index;
            op->cmp_pos = at;
            op->cmp_time = op->inv_time;
        }
    }
    jc__parser_free(&p);
    cm_free(pend.procs);
    cm_free(pend.opi);
    *out = h;
    return 0;
err:
    jc__parser_free(&p);
    cm_free(pend.procs);
    cm_free(pend.opi);
    jc_history_destroy(h);
    return rc;
}

int jc_history_load(const char *path, jc_history **out, char *errmsg,
                    size_t errcap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        if (errmsg && errcap)
            snprintf(errmsg, errcap, "%s: %s", path, strerror(e));
        return -e;
    }
    cm_buf b = {0};
    int rc = 0;
    for (;;) {
        if ((rc = cm_buf_reserve(&b, 1 << 16)))
            break;
        ssize_t r = read(fd, b.base + b.len, b.cap - b.len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            if (errmsg && errcap)
                snprintf(errmsg, errcap, "%s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
    }
    close(fd);
    if (!rc)
        rc = jc_history_parse((const char *)b.base, b.len, out, errmsg, errcap);
    cm_buf_free(&b);
    return rc;
}

void jc_history_destroy(jc_history *h)
{
    if (!h)
        return;
    cm_arena_free(&h->arena);
    cm_free(h->ops);
    cm_free(h);
}

size_t jc_history_count(const jc_history *h)
{
    return h->n;
}

const jc_op *jc_history_ops(const jc_history *h)
{
    return h->ops;
}
