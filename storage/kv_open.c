/*
 * Opening and closing the store, meta values, status and the quota's size
 * measure.
 *
 * The environment is sized at the quota plus headroom: the quota is what
 * the NOSPACE alarm enforces, the headroom is what lets deletes, lease
 * revokes and compactions keep working once the alarm is on (each writes a
 * little: tombstones, index entries).  The size the quota is compared with
 * is the pages in use (high-water mark minus LMDB's free list), so space
 * freed by compaction counts as free without a defragmentation.
 *
 * Every meta value carries a CRC32C over its name and payload.  Meta
 * "format" names the on-disk format; a store without it that holds data
 * is of format 1 (before checksums) and, like any format this build does
 * not write, is refused with KV_EFORMAT rather than misread.
 */
#include "kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define HEADROOM_MIN (64ull << 20)

int kv__lmdb_err(kv_store *s, int rc, const char *what)
{
    if (rc == 0)
        return 0;
    if (rc < 0 && rc > MDB_LAST_ERRCODE)
        return rc; /* already ours, with its own message */
    snprintf(s->errmsg, sizeof s->errmsg, "%s: %s", what, mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return KV_EMAP_FULL;
    if (rc == ENOMEM)
        return -ENOMEM;
    if (rc > 0 && rc < 1000)
        return -rc;
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
        rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        return KV_ECORRUPT;
    return KV_ELMDB;
}

int kv__corrupt(kv_store *s, const char *fmt, ...)
{
    if (s) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
        va_end(ap);
    }
    return KV_ECORRUPT;
}

uint32_t kv__meta_sum(const MDB_val *k, const uint8_t *payload, size_t n)
{
    return cm_crc32c(cm_crc32c(0, k->mv_data, k->mv_size), payload, n);
}

int kv__meta_check(kv_store *s, const MDB_val *k, const MDB_val *v,
                   size_t *len)
{
    char ks[200];
    if (v->mv_size < KV__SUM)
        return kv__corrupt(s, "meta %s: %zu-byte value has no checksum",
                           kv__keystr(ks, sizeof ks, k->mv_data, k->mv_size),
                           v->mv_size);
    size_t n = v->mv_size - KV__SUM;
    const uint8_t *p = v->mv_data;
    uint32_t stored = cm_be32_get(p + n), computed = kv__meta_sum(k, p, n);
    if (stored != computed)
        return kv__corrupt(s, "meta %s: checksum mismatch (stored 0x%08" PRIx32
                              ", computed 0x%08" PRIx32 ")",
                           kv__keystr(ks, sizeof ks, k->mv_data, k->mv_size),
                           stored, computed);
    *len = n;
    return 0;
}

int kv__meta_get(kv_store *s, MDB_txn *txn, const char *name, int64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc)
        return kv__lmdb_err(s, rc, "read meta");
    size_t n;
    if ((rc = kv__meta_check(s, &k, &v, &n)))
        return rc;
    if (n != 8)
        return kv__corrupt(s, "meta \"%s\": %zu-byte value, expected 8",
                           name, n);
    *out = (int64_t)cm_be64_get(v.mv_data);
    return 0;
}

int kv__meta_put(kv_store *s, MDB_txn *txn, const char *name, int64_t val)
{
    uint8_t b[KV__META_SZ];
    MDB_val k = {strlen(name), (void *)name}, v = {KV__META_SZ, b};
    cm_be64_put(b, (uint64_t)val);
    cm_be32_put(b + 8, kv__meta_sum(&k, b, 8));
    return kv__lmdb_err(s, mdb_put(txn, s->meta, &k, &v, 0), "write meta");
}

/* Checks the format marker; a new, empty store gets one.  0, KV_EFORMAT,
 * KV_ECORRUPT or an LMDB error. */
static int check_format(kv_store *s, MDB_txn *txn)
{
    MDB_val k = {6, "format"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        MDB_stat meta, rev;
        if ((rc = mdb_stat(txn, s->meta, &meta)) ||
            (rc = mdb_stat(txn, s->rev, &rev)))
            return kv__lmdb_err(s, rc, "stat");
        if (meta.ms_entries == 0 && rev.ms_entries == 0)
            return kv__meta_put(s, txn, "format", KV__FORMAT);
        snprintf(s->errmsg, sizeof s->errmsg,
                 "store is of format 1 (no format marker: records without "
                 "checksums); this build reads format %d only: rebuild "
                 "this member from a peer's snapshot",
                 KV__FORMAT);
        return KV_EFORMAT;
    }
    if (rc)
        return kv__lmdb_err(s, rc, "read meta");
    /* A bare 8-byte marker is how a format without checksums would
     * write it: name the number it holds rather than a checksum failure. */
    size_t n;
    int64_t f;
    if (v.mv_size == 8) {
        f = (int64_t)cm_be64_get(v.mv_data);
        if (f == KV__FORMAT)
            return kv__corrupt(s, "meta \"format\": value without checksum");
    } else {
        if ((rc = kv__meta_check(s, &k, &v, &n)))
            return rc;
        if (n != 8)
            return kv__corrupt(s, "meta \"format\": %zu-byte value", n);
        f = (int64_t)cm_be64_get(v.mv_data);
    }
    if (f != KV__FORMAT) {
        snprintf(s->errmsg, sizeof s->errmsg,
                 "store is of format %" PRId64 "; this build reads format %d "
                 "only: rebuild this member from a peer's snapshot",
                 f, KV__FORMAT);
        return KV_EFORMAT;
    }
    return 0;
}

static int open_dbs(kv_store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin");
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } dbs[] = {
        {"meta", 0, &s->meta},
        {"rev", 0, &s->rev},
        {"idx", MDB_DUPSORT | MDB_DUPFIXED, &s->idx},
        {"lease", 0, &s->lease},
        {"lease_keys", MDB_DUPSORT, &s->lease_keys},
        {"lease_exp", 0, &s->lease_exp},
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE,
                          dbs[i].dbi);
        if (rc) {
            mdb_txn_abort(txn);
            return kv__lmdb_err(s, rc, "open database");
        }
    }
    int64_t applied = 0, alarm = 0, aterm = 0;
    if ((rc = check_format(s, txn)) ||
        (rc = kv__meta_get(s, txn, "applied", &applied)) ||
        (rc = kv__meta_get(s, txn, "applied_term", &aterm)) ||
        (rc = kv__meta_get(s, txn, "rev", &s->cur_rev)) ||
        (rc = kv__meta_get(s, txn, "compact", &s->compact_rev)) ||
        (rc = kv__meta_get(s, txn, "alarm", &alarm)) ||
        (rc = kv__meta_get(s, txn, "lease_seq", &s->lease_seq)) ||
        (rc = kv__meta_get(s, txn, "keys", &s->keys))) {
        mdb_txn_abort(txn);
        return rc;
    }
    s->applied = (uint64_t)applied;
    s->applied_term = (uint64_t)aterm;
    s->alarm = (int)alarm;
    rc = mdb_txn_commit(txn);
    return kv__lmdb_err(s, rc, "commit");
}

int kv_open(kv_store **out, const char *dir, const kv_options *opts)
{
    kv__err_register();
    kv_store *s = cm_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    if (opts)
        s->opts = *opts;
    if (!s->opts.quota_bytes)
        s->opts.quota_bytes = KV_DEFAULT_QUOTA;
    if (!s->opts.max_value)
        s->opts.max_value = KV_DEFAULT_MAX_VALUE;
    if (!s->opts.max_readers)
        s->opts.max_readers = 126;
    if (!s->opts.max_txn_ops)
        s->opts.max_txn_ops = KV_MAX_TXN_OPS;
    uint64_t headroom = s->opts.quota_bytes / 4;
    if (headroom < HEADROOM_MIN)
        headroom = HEADROOM_MIN;
    s->map_size = s->opts.quota_bytes + headroom;

    struct stat st;
    int rc;
    if (stat(dir, &st) != 0) {
        rc = -errno;
        goto err_free;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = -ENOTDIR;
        goto err_free;
    }
    if ((rc = mdb_env_create(&s->env))) {
        rc = kv__lmdb_err(s, rc, "create env");
        goto err_free;
    }
    mdb_env_set_maxdbs(s->env, 8);
    mdb_env_set_maxreaders(s->env, s->opts.max_readers);
    if ((rc = mdb_env_set_mapsize(s->env, s->map_size))) {
        rc = kv__lmdb_err(s, rc, "set map size");
        goto err_env;
    }
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (s->opts.sync == KV_SYNC_DATA)
        flags |= MDB_NOMETASYNC;
    else if (s->opts.sync == KV_SYNC_NONE)
        flags |= MDB_NOSYNC;
    rc = mdb_env_open(s->env, dir, flags, 0600);
    if (rc) {
        rc = kv__lmdb_err(s, rc, "open env");
        goto err_env;
    }
    MDB_stat ms;
    mdb_env_stat(s->env, &ms);
    s->page_size = ms.ms_psize;
    if ((rc = open_dbs(s)))
        goto err_env;
    *out = s;
    return 0;
err_env:
    mdb_env_close(s->env);
err_free:
    if (opts && opts->errmsg && opts->errmsg_size) {
        if (s->errmsg[0])
            snprintf(opts->errmsg, opts->errmsg_size, "%s", s->errmsg);
        else
            snprintf(opts->errmsg, opts->errmsg_size, "%s", kv_strerror(rc));
    }
    cm_free(s);
    return rc;
}

void kv_close(kv_store *s)
{
    if (!s)
        return;
    mdb_env_close(s->env);
    cm_free(s);
}

int kv_sync(kv_store *s)
{
    return kv__lmdb_err(s, mdb_env_sync(s->env, 1), "sync");
}

const char *kv_errmsg(const kv_store *s)
{
    return s->errmsg;
}

/* Pages on LMDB's free list, summed over its records (each an IDL whose
 * first word is its length). */
static uint64_t free_pages(MDB_txn *txn)
{
    MDB_cursor *c;
    uint64_t n = 0;
    if (mdb_cursor_open(txn, 0, &c))
        return 0;
    MDB_val k, v;
    int op = MDB_FIRST;
    while (mdb_cursor_get(c, &k, &v, op) == 0) {
        if (v.mv_size >= sizeof(size_t))
            n += *(const size_t *)v.mv_data;
        op = MDB_NEXT;
    }
    mdb_cursor_close(c);
    return n;
}

/* Bytes of pages holding data as of `txn`, and the file's high-water. */
void kv__sizes(kv_store *s, MDB_txn *txn, uint64_t *in_use,
               uint64_t *high)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t pages = (uint64_t)info.me_last_pgno + 1;
    *high = pages * s->page_size;
    uint64_t fp = free_pages(txn);
    *in_use = (fp < pages ? pages - fp : 0) * s->page_size;
}

static int status(kv_store *s, kv_status *out, bool sizes)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return kv__lmdb_err(s, rc, "begin read");
    memset(out, 0, sizeof *out);
    int64_t applied, alarm, aterm;
    if ((rc = kv__meta_get(s, txn, "applied", &applied)) ||
        (rc = kv__meta_get(s, txn, "applied_term", &aterm)) ||
        (rc = kv__meta_get(s, txn, "rev", &out->revision)) ||
        (rc = kv__meta_get(s, txn, "compact", &out->compact_revision)) ||
        (rc = kv__meta_get(s, txn, "alarm", &alarm)) ||
        (rc = kv__meta_get(s, txn, "keys", &out->keys)))
        goto done;
    out->applied_index = (uint64_t)applied;
    out->applied_term = (uint64_t)aterm;
    out->nospace_alarm = (int)(alarm & KV__ALARM_NOSPACE);
    out->corrupt_alarm = (alarm & KV__ALARM_CORRUPT) != 0;
    out->quota_bytes = s->opts.quota_bytes;
    if (sizes)
        kv__sizes(s, txn, &out->db_size_in_use, &out->db_size);
done:
    mdb_txn_abort(txn);
    return rc;
}

int kv_status_get(kv_store *s, kv_status *out)
{
    return status(s, out, true);
}

int kv_status_meta(kv_store *s, kv_status *out)
{
    return status(s, out, false);
}
