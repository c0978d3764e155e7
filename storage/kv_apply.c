/*
 * Applying committed log entries.
 *
 * Each call runs one LMDB write transaction over one entry or a batch, and
 * writes the last applied index into the same transaction, so the state
 * and the applied index can never disagree after a crash; entries at or
 * below the applied index are skipped, which makes replay after a crash
 * exactly-once.  The commit is LMDB's durable commit (fdatasync).
 *
 * A command is either applied or refused.  Refusals (bad key, missing
 * lease, NOSPACE, compacted revision ...) are decided before the command
 * writes anything and depend only on the replicated state, so every
 * replica refuses the same commands; a refused command still consumes its
 * index.  Anything else that goes wrong (I/O, LMDB, memory) aborts the
 * whole transaction and is returned to the caller; after an I/O or LMDB
 * failure the store refuses further writes (KV_EFAILED) rather than guess.
 *
 * The quota is checked against the pages in use when a transaction begins;
 * a command that would grow the store past it raises the NOSPACE alarm,
 * which is replicated state from then on: writes that add data are refused
 * until the alarm is deactivated, reads, deletes, revokes and compactions
 * keep working.  If LMDB's map fills anyway, the batch is retried entry by
 * entry and the entry that does not fit is refused with NOSPACE.
 */
#include "kv_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool is_refusal(int rc)
{
    switch (rc) {
    case KV_ECOMPACTED:
    case KV_EFUTURE_REV:
    case KV_EKEY_TOO_LARGE:
    case KV_EVALUE_TOO_LARGE:
    case KV_EEMPTY_KEY:
    case KV_ENOSPACE:
    case KV_ELEASE_NOT_FOUND:
    case KV_ELEASE_EXISTS:
    case KV_ETOO_MANY_OPS:
    case KV_EDUPLICATE_KEY:
    case KV_EKEY_NOT_FOUND:
    case KV_EVALUE_PROVIDED:
    case KV_ELEASE_PROVIDED:
    case KV_EBAD_COMMAND:
    case KV_EBAD_TTL:
    case KV_EMEMBER_EXISTS:
    case KV_EMEMBER_NOT_FOUND:
        return true;
    default:
        return false;
    }
}

static bool over_quota(kv_store *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (((uint64_t)info.me_last_pgno + 1) * s->page_size < s->opts.quota_bytes)
        return false;
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return true;
    uint64_t in_use, high;
    kv__sizes(s, txn, &in_use, &high);
    mdb_txn_abort(txn);
    return in_use >= s->opts.quota_bytes;
}

static int begin(kv_store *s, cm_arena *a, kv__wctx *w)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->arena = a;
    w->rev = s->cur_rev;
    w->compact_rev = s->compact_rev;
    w->alarm = s->alarm;
    w->lease_seq = s->lease_seq;
    w->keys = s->keys;
    int rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
    return kv__lmdb_err(s, rc, "begin write");
}

static int commit(kv__wctx *w, uint64_t applied, uint64_t term)
{
    kv_store *s = w->s;
    int rc;
    if ((rc = kv__meta_put(s, w->txn, "applied", (int64_t)applied)) ||
        (rc = kv__meta_put(s, w->txn, "applied_term", (int64_t)term)) ||
        (rc = kv__meta_put(s, w->txn, "rev", w->rev)) ||
        (rc = kv__meta_put(s, w->txn, "compact", w->compact_rev)) ||
        (rc = kv__meta_put(s, w->txn, "alarm", w->alarm)) ||
        (rc = kv__meta_put(s, w->txn, "lease_seq", w->lease_seq)) ||
        (rc = kv__meta_put(s, w->txn, "keys", w->keys))) {
        mdb_txn_abort(w->txn);
        return rc;
    }
    if (w->early) {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        uint64_t pages = (uint64_t)info.me_mapsize / s->page_size;
        uint64_t used = (uint64_t)info.me_last_pgno + 1;
        if (pages > used && pages - used > 2 * w->early_pages + 256)
            w->early(w->early_arg);
    }
    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (rc)
        return kv__lmdb_err(s, rc, "commit");
    s->applied = applied;
    s->applied_term = term;
    s->cur_rev = w->rev;
    s->compact_rev = w->compact_rev;
    s->alarm = w->alarm;
    s->lease_seq = w->lease_seq;
    s->keys = w->keys;
    return 0;
}

static void *reply_new(kv__wctx *w, size_t size)
{
    void *p = cm_arena_alloc(w->arena, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static bool grows(const Skiffpb__Command *c)
{
    return c->op_case == SKIFFPB__COMMAND__OP_PUT ||
           c->op_case == SKIFFPB__COMMAND__OP_LEASE_GRANT;
}

/* Executes one decoded command; returns 0, a refusal, or a fatal code. */
static int run(kv__wctx *w, const Skiffpb__Command *c, kv_result *res,
               bool quota_hit)
{
    int rc;
    if (grows(c) && (w->alarm & KV__ALARM_NOSPACE))
        return KV_ENOSPACE;
    if (grows(c) && quota_hit) {
        w->alarm |= KV__ALARM_NOSPACE;
        return KV_ENOSPACE;
    }
    switch (c->op_case) {
    case SKIFFPB__COMMAND__OP_PUT: {
        Skiffpb__PutResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__put_response__init(r);
        r->header = w->hdr;
        res->reply.put = r;
        if ((rc = kv__validate_put(w, c->put)))
            return rc;
        return kv__put(w, c->put, r);
    }
    case SKIFFPB__COMMAND__OP_DELETE_RANGE: {
        const Skiffpb__DeleteRangeRequest *d = c->delete_range;
        Skiffpb__DeleteRangeResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__delete_range_response__init(r);
        r->header = w->hdr;
        res->reply.delete_range = r;
        if ((rc = kv__check_key(d->key.data, d->key.len)))
            return rc;
        return kv__delete_range(w, d->key.data, d->key.len,
                                d->range_end.data, d->range_end.len,
                                d->prev_kv, r);
    }
    case SKIFFPB__COMMAND__OP_TXN:
        if (quota_hit) /* a txn that writes may grow the store */
            w->alarm |= KV__ALARM_NOSPACE;
        return kv__txn(w, c->txn, &res->reply.txn);
    case SKIFFPB__COMMAND__OP_COMPACTION: {
        Skiffpb__CompactionResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__compaction_response__init(r);
        r->header = w->hdr;
        res->reply.compaction = r;
        int64_t rev = c->compaction->revision;
        if (rev > w->rev)
            return KV_EFUTURE_REV;
        if (rev <= w->compact_rev)
            return KV_ECOMPACTED;
        return kv__compact(w, rev);
    }
    case SKIFFPB__COMMAND__OP_LEASE_GRANT: {
        Skiffpb__LeaseGrantResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__lease_grant_response__init(r);
        r->header = w->hdr;
        res->reply.lease_grant = r;
        return kv__lease_grant(w, c->lease_grant, r);
    }
    case SKIFFPB__COMMAND__OP_LEASE_REVOKE:
    case SKIFFPB__COMMAND__OP_LEASE_EXPIRE: {
        Skiffpb__LeaseRevokeResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__lease_revoke_response__init(r);
        r->header = w->hdr;
        res->reply.lease_revoke = r;
        bool expire = c->op_case == SKIFFPB__COMMAND__OP_LEASE_EXPIRE;
        return kv__lease_revoke(
            w, expire ? c->lease_expire->id : c->lease_revoke->id, expire);
    }
    case SKIFFPB__COMMAND__OP_LEASE_KEEPALIVE: {
        Skiffpb__LeaseKeepAliveResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__lease_keep_alive_response__init(r);
        r->header = w->hdr;
        res->reply.lease_keepalive = r;
        return kv__lease_keepalive(w, c->lease_keepalive->id, r);
    }
    case SKIFFPB__COMMAND__OP_LEASE_REFRESH_ALL:
        return kv__lease_refresh_all(w);
    case SKIFFPB__COMMAND__OP_ALARM: {
        Skiffpb__AlarmResponse *r = reply_new(w, sizeof *r);
        if (!r)
            return -ENOMEM;
        skiffpb__alarm_response__init(r);
        r->header = w->hdr;
        res->reply.alarm = r;
        const Skiffpb__AlarmRequest *a = c->alarm;
        int bit = a->alarm == SKIFFPB__ALARM_TYPE__NOSPACE   ? KV__ALARM_NOSPACE
                  : a->alarm == SKIFFPB__ALARM_TYPE__CORRUPT ? KV__ALARM_CORRUPT
                                                             : 0;
        if (a->action == SKIFFPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE)
            w->alarm |= bit;
        else if (a->action == SKIFFPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE)
            w->alarm &= ~bit;
        static const int bits[] = {KV__ALARM_NOSPACE, KV__ALARM_CORRUPT};
        static const Skiffpb__AlarmType types[] = {
            SKIFFPB__ALARM_TYPE__NOSPACE, SKIFFPB__ALARM_TYPE__CORRUPT};
        r->alarms = cm_arena_alloc(w->arena, 2 * sizeof *r->alarms);
        if (!r->alarms)
            return -ENOMEM;
        for (int i = 0; i < 2; i++) {
            if (!(w->alarm & bits[i]))
                continue;
            Skiffpb__AlarmMember *m = reply_new(w, sizeof *m);
            if (!m)
                return -ENOMEM;
            skiffpb__alarm_member__init(m);
            m->memberid = a->memberid;
            m->alarm = types[i];
            r->alarms[r->n_alarms++] = m;
        }
        return 0;
    }
    case SKIFFPB__COMMAND__OP_MEMBER_CHANGE:
        return kv__member_change(w, c->member_change, &res->reply.membership);
    case SKIFFPB__COMMAND__OP_NOOP:
        return 0;
    default:
        return KV_EBAD_COMMAND;
    }
}

/* protobuf-c reports a failed allocation and a malformed message alike;
 * this allocator remembers which it was. */
typedef struct pb_alloc {
    cm_arena *arena;
    bool oom;
} pb_alloc;

static void *pb_alloc_fn(void *d, size_t n)
{
    pb_alloc *p = d;
    void *r = cm_arena_alloc(p->arena, n);
    if (!r)
        p->oom = true;
    return r;
}

static int apply_one(kv__wctx *w, const kv_entry *e, kv_result *res,
                     bool quota_hit)
{
    memset(res, 0, sizeof *res);
    res->index = e->index;
    pb_alloc pd = {w->arena, false};
    ProtobufCAllocator pa = {pb_alloc_fn, cm_arena_pb_free, &pd};
    Skiffpb__Command *c = skiffpb__command__unpack(&pa, e->len, e->data);
    if (!c && pd.oom)
        return -ENOMEM;
    w->hdr = reply_new(w, sizeof *w->hdr);
    if (!w->hdr)
        return -ENOMEM;
    skiffpb__response_header__init(w->hdr);
    w->sub = 0;
    w->changed = false;
    w->ev = NULL;
    w->nev = w->capev = 0;
    int rc;
    if (!c) {
        rc = KV_EBAD_COMMAND;
    } else {
        res->cmd_id = c->id;
        res->op = c->op_case;
        w->now_ms = c->time_ms;
        rc = run(w, c, res, quota_hit);
    }
    if (rc && !(is_refusal(rc) && !w->changed))
        return rc > 0 ? KV_ELMDB : rc;
    res->code = rc;
    if (w->changed) {
        w->rev++;
        res->events.revision = w->rev;
        res->events.n = w->nev;
        res->events.ev = w->ev;
    }
    res->revision = w->rev;
    w->hdr->revision = w->rev;
    return 0;
}

/* Records `e` as refused with NOSPACE and raises the alarm, in a txn of
 * its own: what a map-full entry becomes. */
static int refuse_nospace(kv_store *s, const kv_entry *e, cm_arena *a,
                          kv_result *res)
{
    kv__wctx w;
    int rc = begin(s, a, &w);
    if (rc)
        return rc;
    w.alarm |= KV__ALARM_NOSPACE;
    memset(res, 0, sizeof *res);
    res->index = e->index;
    res->code = KV_ENOSPACE;
    res->revision = w.rev;
    return commit(&w, e->index, e->term);
}

static int fail(kv_store *s, int rc)
{
    if (rc != -ENOMEM && rc != KV_EMAP_FULL)
        s->failed = 1;
    return rc;
}

int kv_apply_batch(kv_store *s, const kv_entry *e, size_t n, cm_arena *arena,
                   kv_result *res)
{
    return kv_apply_batch_early(s, e, n, arena, res, NULL, NULL);
}

int kv_apply_batch_early(kv_store *s, const kv_entry *e, size_t n,
                         cm_arena *arena, kv_result *res, kv_applied_fn fn,
                         void *arg)
{
    if (s->failed)
        return KV_EFAILED;
    if (n == 0)
        return 0;
    bool quota_hit = over_quota(s);
    kv__wctx w;
    int rc = begin(s, arena, &w);
    if (rc)
        return fail(s, rc);
    if (fn) {
        /* A bound on the pages the batch can dirty: its bytes, and a
         * path of B-tree pages per entry in each table it touches. */
        w.early = fn;
        w.early_arg = arg;
        w.early_pages = 64;
        for (size_t i = 0; i < n; i++)
            w.early_pages += 16 + 2 * (e[i].len / s->page_size + 1);
    }
    uint64_t applied = s->applied, term = s->applied_term;
    for (size_t i = 0; i < n; i++) {
        if (e[i].index <= applied) {
            memset(&res[i], 0, sizeof res[i]);
            res[i].index = e[i].index;
            res[i].skipped = 1;
            res[i].revision = w.rev;
            continue;
        }
        if ((rc = apply_one(&w, &e[i], &res[i], quota_hit)))
            break;
        applied = e[i].index;
        term = e[i].term;
    }
    if (!rc) {
        if (applied == s->applied) {
            mdb_txn_abort(w.txn); /* everything was skipped */
            return 0;
        }
        rc = commit(&w, applied, term);
    } else if (w.txn) {
        mdb_txn_abort(w.txn);
    }
    if (rc == KV_EMAP_FULL) {
        if (n == 1) {
            rc = refuse_nospace(s, e, arena, res);
        } else {
            /* Retry entry by entry so only the one that does not fit is
             * refused. */
            for (size_t i = 0; i < n; i++)
                if ((rc = kv_apply_batch(s, &e[i], 1, arena, &res[i])))
                    break;
        }
    }
    return rc ? fail(s, rc) : 0;
}

int kv_apply(kv_store *s, const kv_entry *e, cm_arena *arena, kv_result *res)
{
    return kv_apply_batch(s, e, 1, arena, res);
}

int kv_command_pack(const Skiffpb__Command *cmd, cm_buf *out)
{
    size_t n = skiffpb__command__get_packed_size(cmd);
    int rc = cm_buf_reserve(out, n);
    if (rc)
        return rc;
    out->len += skiffpb__command__pack(cmd, out->base + out->len);
    return 0;
}
