/*
 * Wire encoding of raft messages, for the peer transport.
 *
 * A message becomes one self-contained byte string: a version byte, the
 * fixed header fields as big-endian integers, the entries (each with its
 * payload inline) and the snapshot metadata.  Decoding validates every
 * length against the input before using it and puts all payloads of a
 * message into one blob, so a decoded message costs two allocations
 * however many entries it carries.  `after_persist` is a local matter of
 * the sender and is not encoded.
 */
#include "raft_int.h"

#define CODEC_VERSION 1

typedef struct reader {
    const uint8_t *p;
    size_t left;
    int bad;
} reader;

static uint64_t get64(reader *r)
{
    if (r->left < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = cm_be64_get(r->p);
    r->p += 8;
    r->left -= 8;
    return v;
}

static uint32_t get32(reader *r)
{
    if (r->left < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = cm_be32_get(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint8_t get8(reader *r)
{
    if (r->left < 1) {
        r->bad = 1;
        return 0;
    }
    r->left--;
    return *r->p++;
}

static int put_ids(cm_buf *b, const raft_id *ids, uint32_t n)
{
    int rc = cm_buf_put_u8(b, (uint8_t)n);
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = cm_buf_put_be64(b, ids[i]);
    return rc;
}

static void get_ids(reader *r, raft_id *ids, uint32_t *n)
{
    *n = get8(r);
    if (*n > RAFT_MAX_MEMBERS) {
        r->bad = 1;
        *n = 0;
        return;
    }
    for (uint32_t i = 0; i < *n; i++)
        ids[i] = get64(r);
}

int raft_msg_encode(const raft_msg *m, cm_buf *out)
{
    size_t start = out->len;
    int rc = cm_buf_put_u8(out, CODEC_VERSION);
    if (!rc)
        rc = cm_buf_put_u8(out, (uint8_t)m->type);
    if (!rc)
        rc = cm_buf_put_u8(out, m->reject);
    if (!rc)
        rc = cm_buf_put_u8(out, m->force);
    const uint64_t fixed[] = {m->from,  m->to,     m->term, m->log_term,
                              m->index, m->commit, m->hint, m->ctx};
    for (size_t i = 0; !rc && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        rc = cm_buf_put_be64(out, fixed[i]);
    if (!rc)
        rc = cm_buf_put_be32(out, (uint32_t)m->n_entries);
    for (size_t i = 0; !rc && i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        rc = cm_buf_put_be64(out, e->term);
        if (!rc)
            rc = cm_buf_put_be64(out, e->index);
        if (!rc)
            rc = cm_buf_put_u8(out, (uint8_t)e->type);
        if (!rc)
            rc = cm_buf_put_be32(out, e->len);
        if (!rc && e->len)
            rc = cm_buf_append(out, e->buf, e->len);
    }
    if (!rc)
        rc = cm_buf_put_be64(out, m->snap.index);
    if (!rc)
        rc = cm_buf_put_be64(out, m->snap.term);
    if (!rc)
        rc = put_ids(out, m->snap.conf.voters, m->snap.conf.n_voters);
    if (!rc)
        rc = put_ids(out, m->snap.conf.learners, m->snap.conf.n_learners);
    if (rc)
        out->len = start;
    return rc;
}

int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg *m)
{
    reader r = {buf, len, 0};
    memset(m, 0, sizeof(*m));
    if (get8(&r) != CODEC_VERSION)
        return CM_ECORRUPT;
    m->type = get8(&r);
    m->reject = get8(&r);
    m->force = get8(&r);
    m->from = get64(&r);
    m->to = get64(&r);
    m->term = get64(&r);
    m->log_term = get64(&r);
    m->index = get64(&r);
    m->commit = get64(&r);
    m->hint = get64(&r);
    m->ctx = get64(&r);
    uint32_t n = get32(&r);
    if (r.bad || m->type == 0 ||
        (m->type >= RAFT_MSG_TYPE_MAX && m->type != RAFT_MSG_APP) ||
        n > r.left / 21)
        return CM_ECORRUPT;
    /* First pass: validate the entries and size the payload blob. */
    reader scan = r;
    size_t total = 0;
    for (uint32_t i = 0; i < n && !scan.bad; i++) {
        get64(&scan);
        get64(&scan);
        if (get8(&scan) > RAFT_ENTRY_NOOP)
            scan.bad = 1;
        uint32_t l = get32(&scan);
        if (l > scan.left) {
            scan.bad = 1;
            break;
        }
        scan.p += l;
        scan.left -= l;
        total += l;
    }
    if (scan.bad)
        return CM_ECORRUPT;
    raft_entry *ents = NULL;
    raft_blob *blob = NULL;
    if (n) {
        ents = cm_calloc(n, sizeof(*ents));
        blob = total ? raft_blob_create(total) : NULL;
        if (!ents || (total && !blob)) {
            cm_free(ents);
            raft_blob_unref(blob);
            return -ENOMEM;
        }
    }
    uint8_t *dst = blob ? raft_blob_bytes(blob) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        raft_entry *e = &ents[i];
        e->term = get64(&r);
        e->index = get64(&r);
        e->type = get8(&r);
        e->len = get32(&r);
        if (e->len) {
            memcpy(dst, r.p, e->len);
            r.p += e->len;
            r.left -= e->len;
            e->buf = dst;
            e->blob = blob;
            raft_blob_ref(blob);
            dst += e->len;
        }
    }
    raft_blob_unref(blob); /* the entries hold their own references */
    m->entries = ents;
    m->n_entries = n;
    m->snap.index = get64(&r);
    m->snap.term = get64(&r);
    get_ids(&r, m->snap.conf.voters, &m->snap.conf.n_voters);
    get_ids(&r, m->snap.conf.learners, &m->snap.conf.n_learners);
    if (r.bad || r.left) {
        raft_msg_free(m);
        return CM_ECORRUPT;
    }
    return 0;
}
