/*
 * The history writer: one JSON object per line, in the order the runner
 * saw the events, each with a process, a type (invoke, ok, fail, info),
 * an f, the workload's fields, a monotonic time in ns since the run
 * started and a running index (docs/jepsen-checkers.md).
 *
 * All threads write through one mutex so that index order equals line
 * order equals the order in which the events were observed; the time is
 * taken inside the lock for the same reason (a checker may rely on time
 * being non-decreasing down the file).  A side file ops.dat gets one line
 * per completion (time, latency, type, f) for the gnuplot plots.
 */
#include "jepsen_int.h"

#include <stdlib.h>
#include <string.h>

struct jr_hist {
    pthread_mutex_t mu;
    FILE *f;
    FILE *dat;
    int64_t index;
};

int jr_hist_open(jr_run *r, const char *path, const char *dat_path)
{
    jr_hist *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    pthread_mutex_init(&h->mu, NULL);
    h->f = fopen(path, "w");
    h->dat = fopen(dat_path, "w");
    if (!h->f || !h->dat) {
        if (h->f)
            fclose(h->f);
        if (h->dat)
            fclose(h->dat);
        free(h);
        return -1;
    }
    r->hist = h;
    return 0;
}

void jr_hist_close(jr_hist *h)
{
    if (!h)
        return;
    fclose(h->f);
    fclose(h->dat);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static uint64_t line(jr_run *r, int64_t process, const char *type,
                     const char *f, const char *body)
{
    jr_hist *h = r->hist;
    pthread_mutex_lock(&h->mu);
    uint64_t t = jr_rel_ns(r);
    fprintf(h->f,
            "{\"process\":%lld,\"type\":\"%s\",\"f\":\"%s\"%s%s,"
            "\"time\":%llu,\"index\":%lld}\n",
            (long long)process, type, f, body && body[0] ? "," : "",
            body ? body : "", (unsigned long long)t, (long long)h->index++);
    pthread_mutex_unlock(&h->mu);
    return t;
}

uint64_t jr_hist_invoke(jr_run *r, int64_t process, const char *f,
                        const char *body)
{
    return line(r, process, "invoke", f, body);
}

void jr_hist_complete(jr_run *r, int64_t process, const char *type,
                      const char *f, const char *body, uint64_t inv_time)
{
    uint64_t t = line(r, process, type, f, body);
    jr_hist *h = r->hist;
    int code = !strcmp(type, "ok") ? 0 : !strcmp(type, "fail") ? 1 : 2;
    pthread_mutex_lock(&h->mu);
    fprintf(h->dat, "%.6f %.3f %d %s\n", (double)inv_time / 1e9,
            (double)(t - inv_time) / 1e6, code, f);
    pthread_mutex_unlock(&h->mu);
}

void jr_hist_event(jr_run *r, int64_t process, const char *type, const char *f,
                   const char *body)
{
    line(r, process, type, f, body);
}

const char *jr_write_outcome(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    /* The member answered before handing the write to Raft, or a newer
     * leader's first entry proved it lost (docs/cluster.md), or it never
     * reached a member at all. */
    case SKIFF_ENO_LEADER:
    case SKIFF_EUNAVAILABLE:
    case SKIFF_ENOT_LEADER:
    case SKIFF_ETOO_MANY_STREAMS:
    case SKIFF_ENOENDPOINT:
    case SKIFF_ECOMPACTED:
    case SKIFF_EFUTURE_REV:
    case SKIFF_ELEASE_NOT_FOUND:
    case SKIFF_EINVALID_ARGUMENT:
    case SKIFF_EDUPLICATE_KEY:
        return "fail";
    default:
        /* TIMEOUT, a broken connection after sending (EUNKNOWN), our own
         * deadline: the write may still be applied later. */
        return "info";
    }
}
