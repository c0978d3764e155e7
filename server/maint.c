/*
 * Background duties of the member: revoking expired leases, automatic
 * compaction, periodic watch progress.
 *
 * Lease expiry is decided here, by the leader only, against its own clock,
 * and carried out as an expire command through the log, so it is
 * replicated like any write.  The command revokes the lease only if it is
 * still past its expiry when applied: the tick reads the store, which may
 * not show yet a keepalive that is committed (and answered) ahead of it.  A new leader first proposes a refresh of every lease
 * (node.c) and expires nothing until that refresh is applied: time without
 * a leader, or a follower's stale view, never expires a live lease.
 *
 * Auto-compaction follows etcd: "periodic" keeps the history of the last
 * retention period (sampled revisions, compacting to the newest one older
 * than the retention), "revision" keeps the last N revisions.
 */
#include "server_int.h"

#include <stdlib.h>
#include <string.h>

void srv_lease_tick(uv_timer_t *t)
{
    server *s = t->data;
    /* Only the leader decides expiry, and only once its refresh of every
     * lease is applied. */
    if (s->stopping || s->role != RAFT_LEADER || !s->lease_ready)
        return;
    int64_t ids[32];
    size_t n = 0;
    if (kv_lease_expired(s->kv, srv_clock_ms(s), ids, 32, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        bool busy = false;
        for (size_t j = 0; j < s->nrevoking; j++)
            busy |= s->revoking[j] == ids[i];
        if (busy || s->nrevoking == sizeof s->revoking / sizeof s->revoking[0])
            continue;
        Skiffpb__LeaseRevokeRequest r = SKIFFPB__LEASE_REVOKE_REQUEST__INIT;
        r.id = ids[i];
        Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
        c.op_case = SKIFFPB__COMMAND__OP_LEASE_EXPIRE;
        c.lease_expire = &r;
        if (srv_propose(s, NULL, 0, SKIFFPB__REQUEST__BODY_LEASE_REVOKE, &c,
                        ids[i]) == 0) {
            s->revoking[s->nrevoking++] = ids[i];
            CM_INFO("lease expired", "lease=%lld", (long long)ids[i]);
        }
    }
}

/* Retention as milliseconds (periodic) or a revision count (revision);
 * 0 when off or unparsable. */
static int64_t retention(const server *s)
{
    const char *v = s->cfg.auto_compaction_retention;
    char *end;
    double x = strtod(v, &end);
    if (end == v || x <= 0)
        return 0;
    if (!strcmp(s->cfg.auto_compaction_mode, "revision"))
        return (int64_t)x;
    /* A bare number means hours, like etcd. */
    int64_t ms = srv_parse_duration(v, 3600e3);
    return ms > 0 ? ms : 0;
}

static void propose_compact(server *s, int64_t rev)
{
    if (s->role != RAFT_LEADER) /* every member samples; the leader acts */
        return;
    kv_status st;
    if (kv_status_meta(s->kv, &st) || rev <= st.compact_revision ||
        rev > st.revision)
        return;
    Skiffpb__CompactionRequest r = SKIFFPB__COMPACTION_REQUEST__INIT;
    r.revision = rev;
    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.op_case = SKIFFPB__COMMAND__OP_COMPACTION;
    c.compaction = &r;
    if (srv_propose(s, NULL, 0, SKIFFPB__REQUEST__BODY_COMPACT, &c, 0) == 0)
        CM_INFO("auto compaction", "revision=%lld", (long long)rev);
}

void srv_compact_tick(uv_timer_t *t)
{
    server *s = t->data;
    int64_t keep = retention(s);
    if (!keep || s->stopping)
        return;
    int64_t rev = watch_hub_revision(s->hub);
    if (!strcmp(s->cfg.auto_compaction_mode, "revision")) {
        if (rev - keep > 0)
            propose_compact(s, rev - keep);
        return;
    }
    int64_t now = cm_now_ms();
    size_t cap = sizeof s->samples / sizeof s->samples[0];
    if (s->nsamples == cap) {
        memmove(s->samples, s->samples + 1, (cap - 1) * sizeof s->samples[0]);
        s->nsamples--;
    }
    s->samples[s->nsamples].t = now;
    s->samples[s->nsamples].rev = rev;
    s->nsamples++;
    /* The newest sample older than the retention marks what may go. */
    int64_t target = 0;
    size_t drop = 0;
    for (size_t i = 0; i < s->nsamples; i++)
        if (s->samples[i].t <= now - keep) {
            target = s->samples[i].rev;
            drop = i;
        }
    if (target > 0) {
        propose_compact(s, target);
        memmove(s->samples, s->samples + drop,
                (s->nsamples - drop) * sizeof s->samples[0]);
        s->nsamples -= drop;
    }
}

/* Interval of the compaction timer: a tenth of the period (at least a
 * second, at most an hour), or five minutes in revision mode. */
uint64_t srv_compact_interval(const server *s)
{
    int64_t keep = retention(s);
    if (!keep)
        return 0;
    if (!strcmp(s->cfg.auto_compaction_mode, "revision"))
        return 5 * 60 * 1000;
    int64_t iv = keep / 10;
    if (iv < 1000)
        iv = 1000;
    if (iv > 3600 * 1000)
        iv = 3600 * 1000;
    return (uint64_t)iv;
}
