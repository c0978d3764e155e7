/*
 * Snapshots: the whole store as one checksummed stream, written from a
 * single read transaction (so it is consistent and carries the applied
 * index of exactly the state it holds) and restored in a single write
 * transaction (so a failed or torn restore leaves the store untouched).
 *
 * Stream:  "SKIFSNP2" | be64 applied index
 *          records: u8 db | be32 key len | be32 value len | key | value
 *          end:     u8 0xFF | be64 record count | be32 CRC32C of all
 *                   bytes before the CRC
 * Records come in each database's order, so restore appends.
 *
 * The stream's CRC guards the copy in transit; the records keep their own
 * checksums (store format 2), and both ends check every record on its
 * own: a member never ships damaged history to a peer, and a restore
 * takes nothing it could not read back.  "SKIFSNP1" streams carried
 * format-1 records and are refused.
 */
#include "kv_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "SKIFSNP2"
#define END_MARK 0xFF
#define NDBS KV__NDBS

static MDB_dbi *dbs(kv_store *s, int i)
{
    MDB_dbi *v[NDBS] = {&s->meta, &s->rev,        &s->idx,
                        &s->lease, &s->lease_keys, &s->lease_exp};
    return v[i];
}

static bool is_dup(int i)
{
    return i == KV__DB_IDX || i == KV__DB_LEASE_KEYS;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct wstate {
    int fd;
    cm_buf buf;
    uint32_t crc;
} wstate;

static int wflush(wstate *w)
{
    w->crc = cm_crc32c(w->crc, w->buf.base, w->buf.len);
    int rc = write_all(w->fd, w->buf.base, w->buf.len);
    cm_buf_reset(&w->buf);
    return rc;
}

int kv_snapshot_write(kv_store *s, int fd, uint64_t *applied_index)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    wstate w = {fd, {0}, 0};
    int64_t applied;
    uint64_t count = 0;
    if ((rc = kv__meta_get(s, txn, "applied", &applied)))
        goto done;
    if ((rc = cm_buf_append(&w.buf, MAGIC, 8)) ||
        (rc = cm_buf_put_be64(&w.buf, (uint64_t)applied)))
        goto done;
    for (int i = 0; i < NDBS && !rc; i++) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, *dbs(s, i), &c))) {
            rc = kv__lmdb_err(s, rc, "cursor");
            break;
        }
        MDB_val k, v;
        MDB_cursor_op op = MDB_FIRST;
        while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
            op = MDB_NEXT;
            if ((rc = kv__entry_check(s, i, &k, &v)))
                break;
            if ((rc = cm_buf_put_u8(&w.buf, (uint8_t)(i + 1))) ||
                (rc = cm_buf_put_be32(&w.buf, (uint32_t)k.mv_size)) ||
                (rc = cm_buf_put_be32(&w.buf, (uint32_t)v.mv_size)) ||
                (rc = cm_buf_append(&w.buf, k.mv_data, k.mv_size)) ||
                (rc = cm_buf_append(&w.buf, v.mv_data, v.mv_size)))
                break;
            count++;
            if (w.buf.len >= (1u << 20) && (rc = wflush(&w)))
                break;
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        else if (rc > 0)
            rc = kv__lmdb_err(s, rc, "scan");
    }
    if (rc)
        goto done;
    if ((rc = cm_buf_put_u8(&w.buf, END_MARK)) ||
        (rc = cm_buf_put_be64(&w.buf, count)) || (rc = wflush(&w)))
        goto done;
    uint8_t crc[4];
    cm_be32_put(crc, w.crc);
    rc = write_all(fd, crc, 4);
    if (!rc)
        *applied_index = (uint64_t)applied;
done:
    cm_buf_free(&w.buf);
    mdb_txn_abort(txn);
    return rc;
}

/* Buffered reader that checksums what it hands out. */
typedef struct rstate {
    int fd;
    uint8_t buf[65536];
    size_t pos, len;
    uint32_t crc;
} rstate;

static int rread(rstate *r, void *out, size_t n, bool sum)
{
    uint8_t *p = out;
    while (n) {
        if (r->pos == r->len) {
            ssize_t got = read(r->fd, r->buf, sizeof r->buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return -errno;
            if (got == 0)
                return KV_EBAD_SNAPSHOT;
            r->pos = 0;
            r->len = (size_t)got;
        }
        size_t take = r->len - r->pos < n ? r->len - r->pos : n;
        if (sum)
            r->crc = cm_crc32c(r->crc, r->buf + r->pos, take);
        memcpy(p, r->buf + r->pos, take);
        r->pos += take;
        p += take;
        n -= take;
    }
    return 0;
}

int kv_restore(kv_store *s, int fd)
{
    if (s->failed)
        return KV_EFAILED;
    rstate *r = cm_malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fd = fd;
    r->pos = r->len = 0;
    r->crc = 0;
    cm_buf kv = {0};
    MDB_txn *txn = NULL;
    uint8_t hdr[16];
    int rc = rread(r, hdr, 16, true);
    if (rc)
        goto err;
    if (memcmp(hdr, MAGIC, 8) != 0) {
        snprintf(s->errmsg, sizeof s->errmsg,
                 "snapshot stream is not a format-%d snapshot", KV__FORMAT);
        rc = KV_EBAD_SNAPSHOT;
        goto err;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn))) {
        rc = kv__lmdb_err(s, rc, "begin write");
        goto err;
    }
    for (int i = 0; i < NDBS; i++)
        if ((rc = mdb_drop(txn, *dbs(s, i), 0))) {
            rc = kv__lmdb_err(s, rc, "drop");
            goto err;
        }
    uint64_t count = 0;
    for (;;) {
        uint8_t tag;
        if ((rc = rread(r, &tag, 1, true)))
            goto err;
        if (tag == END_MARK)
            break;
        uint8_t lens[8];
        if (tag < 1 || tag > NDBS) {
            rc = KV_EBAD_SNAPSHOT;
            goto err;
        }
        if ((rc = rread(r, lens, 8, true)))
            goto err;
        uint32_t kl = cm_be32_get(lens), vl = cm_be32_get(lens + 4);
        if (kl == 0 || kl > KV_MAX_KEY || vl > (64u << 20)) {
            rc = KV_EBAD_SNAPSHOT;
            goto err;
        }
        cm_buf_reset(&kv);
        if ((rc = cm_buf_reserve(&kv, kl + vl)))
            goto err;
        if ((rc = rread(r, kv.base, kl + vl, true)))
            goto err;
        int i = tag - 1;
        MDB_val k = {kl, kv.base}, v = {vl, kv.base + kl};
        if (kv__entry_check(s, i, &k, &v)) {
            rc = KV_EBAD_SNAPSHOT;
            goto err;
        }
        rc = mdb_put(txn, *dbs(s, i), &k, &v,
                     is_dup(i) ? MDB_APPENDDUP : MDB_APPEND);
        if (rc) {
            rc = rc == MDB_KEYEXIST || rc == MDB_BAD_VALSIZE
                     ? KV_EBAD_SNAPSHOT
                     : kv__lmdb_err(s, rc, "restore put");
            goto err;
        }
        count++;
    }
    uint8_t tail[12];
    if ((rc = rread(r, tail, 8, true)) || (rc = rread(r, tail + 8, 4, false)))
        goto err;
    if (cm_be64_get(tail) != count || cm_be32_get(tail + 8) != r->crc) {
        rc = KV_EBAD_SNAPSHOT;
        goto err;
    }
    /* Reload the cached meta from what the snapshot holds. */
    int64_t applied, alarm, aterm, format;
    if ((rc = kv__meta_get(s, txn, "format", &format)))
        goto err;
    if (format != KV__FORMAT) {
        rc = KV_EBAD_SNAPSHOT;
        goto err;
    }
    if ((rc = kv__meta_get(s, txn, "applied", &applied)) ||
        (rc = kv__meta_get(s, txn, "applied_term", &aterm)) ||
        (rc = kv__meta_get(s, txn, "rev", &s->cur_rev)) ||
        (rc = kv__meta_get(s, txn, "compact", &s->compact_rev)) ||
        (rc = kv__meta_get(s, txn, "alarm", &alarm)) ||
        (rc = kv__meta_get(s, txn, "lease_seq", &s->lease_seq)) ||
        (rc = kv__meta_get(s, txn, "keys", &s->keys)))
        goto err;
    if ((uint64_t)applied != cm_be64_get(hdr + 8)) {
        rc = KV_EBAD_SNAPSHOT;
        goto err;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = kv__lmdb_err(s, rc, "commit restore");
        s->failed = 1;
        goto err;
    }
    s->applied = (uint64_t)applied;
    s->applied_term = (uint64_t)aterm;
    s->alarm = (int)alarm;
    cm_buf_free(&kv);
    cm_free(r);
    return 0;
err:
    if (txn) {
        mdb_txn_abort(txn);
        /* The cached meta may have been overwritten from the aborted
         * snapshot; read it back from the store. */
        MDB_txn *rt;
        if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &rt) == 0) {
            kv__meta_get(s, rt, "rev", &s->cur_rev);
            kv__meta_get(s, rt, "compact", &s->compact_rev);
            kv__meta_get(s, rt, "lease_seq", &s->lease_seq);
            kv__meta_get(s, rt, "keys", &s->keys);
            mdb_txn_abort(rt);
        }
    }
    cm_buf_free(&kv);
    cm_free(r);
    return rc;
}
