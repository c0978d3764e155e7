/*
 * The in-memory Raft log, payload blobs and message copies.
 *
 * The core keeps every entry after the last snapshot in one contiguous
 * array so that the slices a ready hands out (entries to persist, entries
 * to apply, entries inside an append message) are plain pointer ranges.
 * Appending at the tail is amortised O(1); compaction moves a head offset
 * and slides the array down only when the dead prefix outgrows the live
 * part.  Payload bytes live in reference-counted blobs, so an entry can be
 * in the log, in several outgoing messages and in a pending disk write at
 * once without being copied: each holder owns one reference.
 *
 * The log tracks three cursors besides the commit index: `offered` (handed
 * out for persisting), `stable` (reported durable) and `applied` (handed
 * out for applying).  Truncating a suffix pulls `offered` and `stable`
 * back, since what was durable there is about to be overwritten.
 */
#include "raft_int.h"

/* ---- errors -------------------------------------------------------------- */

const char *raft_strerror(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return m;
        RAFT_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

const char *raft_err_name(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return #n;
        RAFT_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

void raft_err_init(void)
{
    cm_err_register(-4999, -4000, raft_strerror, raft_err_name);
}

/* ---- blobs --------------------------------------------------------------- */

raft_blob *raft_blob_create(size_t len)
{
    raft_blob *b = cm_malloc(sizeof(*b) + (len ? len : 1));
    if (!b)
        return NULL;
    b->refs = 1;
    b->pad = 0;
    b->len = len;
    return b;
}

uint8_t *raft_blob_bytes(raft_blob *b)
{
    return (uint8_t *)(b + 1);
}

void raft_blob_ref(raft_blob *b)
{
    if (b)
        b->refs++;
}

void raft_blob_unref(raft_blob *b)
{
    if (b && --b->refs == 0)
        cm_free(b);
}

/* ---- messages ------------------------------------------------------------ */

int raft_msg_copy(raft_msg *dst, const raft_msg *src)
{
    raft_entry *ents = NULL;
    if (src->n_entries) {
        ents = cm_malloc(src->n_entries * sizeof(*ents));
        if (!ents)
            return -ENOMEM;
        memcpy(ents, src->entries, src->n_entries * sizeof(*ents));
        for (size_t i = 0; i < src->n_entries; i++)
            raft_blob_ref(ents[i].blob);
    }
    *dst = *src;
    dst->entries = ents;
    return 0;
}

void raft_msg_free(raft_msg *m)
{
    for (size_t i = 0; i < m->n_entries; i++)
        raft_blob_unref(m->entries[i].blob);
    cm_free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

const char *raft_msg_type_name(uint32_t type)
{
    static const char *names[] = {"?",
                                  "APPEND",
                                  "APPEND_RESP",
                                  "VOTE",
                                  "VOTE_RESP",
                                  "PREVOTE",
                                  "PREVOTE_RESP",
                                  "HEARTBEAT",
                                  "HEARTBEAT_RESP",
                                  "SNAPSHOT",
                                  "TIMEOUT_NOW"};
    if (type == RAFT_MSG_APP)
        return "APP";
    return type < RAFT_MSG_TYPE_MAX ? names[type] : "?";
}

const char *raft_role_name(int role)
{
    static const char *names[] = {"follower", "pre-candidate", "candidate",
                                  "leader"};
    return role >= 0 && role <= RAFT_LEADER ? names[role] : "?";
}

/* ---- log ----------------------------------------------------------------- */

int raft__log_init(raft__log *l, uint64_t snap_index, uint64_t snap_term)
{
    memset(l, 0, sizeof(*l));
    l->snap_index = snap_index;
    l->snap_term = snap_term;
    l->offered = l->stable = l->commit = l->applied = snap_index;
    return 0;
}

void raft__log_close(raft__log *l)
{
    for (size_t k = 0; k < l->n; k++)
        raft_blob_unref(l->ents[l->head + k].blob);
    cm_free(l->ents);
    memset(l, 0, sizeof(*l));
}

uint64_t raft__log_term(const raft__log *l, uint64_t i)
{
    if (i == l->snap_index)
        return l->snap_term;
    if (i < l->snap_index || i > raft__log_last(l))
        return 0;
    return raft__log_get(l, i)->term;
}

uint64_t raft__log_last_term(const raft__log *l)
{
    return raft__log_term(l, raft__log_last(l));
}

int raft__log_term_at(const raft__log *l, uint64_t i, uint64_t *t)
{
    if (i < l->snap_index)
        return RAFT_ECOMPACTED;
    if (i > raft__log_last(l))
        return RAFT_EUNAVAILABLE;
    *t = raft__log_term(l, i);
    return 0;
}

int raft__log_reserve(raft__log *l, size_t n)
{
    if (l->head + l->n + n <= l->cap)
        return 0;
    /* Slide the live part down first when the dead prefix is large. */
    if (l->head > 0 && l->head >= l->n) {
        memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
        l->head = 0;
        if (l->n + n <= l->cap)
            return 0;
    }
    size_t cap = l->cap ? l->cap : 64;
    while (cap < l->head + l->n + n)
        cap *= 2;
    raft_entry *e = cm_realloc(l->ents, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    l->ents = e;
    l->cap = cap;
    return 0;
}

int raft__log_append(raft__log *l, const raft_entry *e)
{
    assert(e->index == raft__log_last(l) + 1);
    int rc = raft__log_reserve(l, 1);
    if (rc)
        return rc;
    l->ents[l->head + l->n] = *e;
    raft_blob_ref(e->blob);
    l->n++;
    return 0;
}

void raft__log_truncate(raft__log *l, uint64_t i)
{
    assert(i > l->commit && i > l->snap_index);
    while (raft__log_last(l) >= i) {
        raft_blob_unref(l->ents[l->head + l->n - 1].blob);
        l->n--;
    }
    if (l->offered >= i)
        l->offered = i - 1;
    if (l->stable >= i)
        l->stable = i - 1;
}

void raft__log_compact(raft__log *l, uint64_t i)
{
    assert(i <= raft__log_last(l));
    if (i <= l->snap_index)
        return;
    uint64_t t = raft__log_term(l, i);
    size_t k = (size_t)(i - l->snap_index);
    for (size_t j = 0; j < k; j++)
        raft_blob_unref(l->ents[l->head + j].blob);
    l->head += k;
    l->n -= k;
    l->snap_index = i;
    l->snap_term = t;
    if (l->n == 0)
        l->head = 0;
}

void raft__log_reset(raft__log *l, uint64_t snap_index, uint64_t snap_term)
{
    for (size_t k = 0; k < l->n; k++)
        raft_blob_unref(l->ents[l->head + k].blob);
    l->head = l->n = 0;
    l->snap_index = snap_index;
    l->snap_term = snap_term;
    l->offered = snap_index;
    if (l->stable > snap_index)
        l->stable = snap_index;
    l->commit = snap_index;
    l->applied = snap_index;
}

uint64_t raft__log_find_conflict_by_term(const raft__log *l, uint64_t i,
                                         uint64_t t)
{
    if (i > raft__log_last(l))
        i = raft__log_last(l);
    while (i > l->snap_index) {
        if (raft__log_get(l, i)->term <= t)
            return i;
        i--;
    }
    return i;
}

bool raft__log_up_to_date(const raft__log *l, uint64_t index, uint64_t term)
{
    uint64_t lt = raft__log_last_term(l);
    return term > lt || (term == lt && index >= raft__log_last(l));
}
