/*
 * History records and the per-key version index.
 *
 * Revisions are stored big-endian so LMDB's bytewise order is revision
 * order: the rev database is the history in apply order, and a key's dups
 * in idx are its versions oldest first.  Finding a key's newest version at
 * or below a revision is one GET_BOTH_RANGE (first version above it) and a
 * step back, so ranges at past revisions cost the same as current ones.
 *
 * LMDB checksums nothing, so both carry their own CRC32C: a rev record's
 * covers its revision and every byte after the checksum, an idx dup's
 * covers the user key and the version.  Decoding verifies it, and every
 * read goes through the decoders here, so a damaged record or index entry
 * is reported as KV_ECORRUPT, naming where it is, and never served.
 * Loading a version also checks that the record belongs to the key and
 * agrees on the tombstone flag, which catches an index entry that points
 * at the wrong record.  A CRC32C over a few hundred bytes costs far less
 * than the B-tree descent that found them.
 */
#include "kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void kv__revkey(uint8_t out[16], int64_t main, int64_t sub)
{
    cm_be64_put(out, (uint64_t)main);
    cm_be64_put(out + 8, (uint64_t)sub);
}

static uint32_t rec_sum(const uint8_t *revkey, const uint8_t *v, size_t n)
{
    return cm_crc32c(cm_crc32c(0, revkey, 16), v + KV__SUM, n - KV__SUM);
}

void kv__rec_seal(const uint8_t revkey[16], uint8_t *v, size_t n)
{
    cm_be32_put(v, rec_sum(revkey, v, n));
}

int kv__rec_parse(kv_store *s, const MDB_val *k, const MDB_val *v,
                  kv__rec *r)
{
    if (k->mv_size != 16)
        return kv__corrupt(s, "rev: record with a %zu-byte revision",
                           k->mv_size);
    const uint8_t *p = v->mv_data;
    r->main = (int64_t)cm_be64_get(k->mv_data);
    r->sub = (int64_t)cm_be64_get((const uint8_t *)k->mv_data + 8);
    if (v->mv_size < KV__REC_HDR)
        return kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                              ": %zu-byte record is shorter than its header",
                           r->main, r->sub, v->mv_size);
    r->tombstone = p[4] & KV__TOMBSTONE;
    r->create = (int64_t)cm_be64_get(p + 5);
    r->version = (int64_t)cm_be64_get(p + 13);
    r->lease = (int64_t)cm_be64_get(p + 21);
    r->key_len = cm_be16_get(p + 29);
    if (KV__REC_HDR + r->key_len > v->mv_size)
        return kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                              ": key length %zu overruns the record",
                           r->main, r->sub, r->key_len);
    r->key = p + KV__REC_HDR;
    r->value = r->key + r->key_len;
    r->value_len = v->mv_size - KV__REC_HDR - r->key_len;
    return 0;
}

int kv__rec_decode(kv_store *s, const MDB_val *k, const MDB_val *v,
                   kv__rec *r)
{
    int rc = kv__rec_parse(s, k, v, r);
    if (rc)
        return rc;
    uint32_t stored = cm_be32_get(v->mv_data);
    uint32_t computed = rec_sum(k->mv_data, v->mv_data, v->mv_size);
    if (stored != computed)
        return kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                              ": checksum mismatch (stored 0x%08" PRIx32
                              ", computed 0x%08" PRIx32 ")",
                           r->main, r->sub, stored, computed);
    return 0;
}

static uint32_t idx_sum(const uint8_t *key, size_t klen, const uint8_t *d)
{
    return cm_crc32c(cm_crc32c(0, key, klen), d, KV__IDX_SZ - KV__SUM);
}

void kv__idx_make(uint8_t out[KV__IDX_SZ], const uint8_t *key, size_t klen,
                  int64_t main, int64_t sub, bool tombstone)
{
    kv__revkey(out, main, sub);
    out[16] = tombstone ? KV__TOMBSTONE : 0;
    cm_be32_put(out + 17, idx_sum(key, klen, out));
}

int kv__ver_decode(kv_store *s, const uint8_t *key, size_t klen,
                   const MDB_val *d, kv__ver *out)
{
    char ks[200];
    if (d->mv_size != KV__IDX_SZ)
        return kv__corrupt(s, "idx key %s: %zu-byte version entry",
                           kv__keystr(ks, sizeof ks, key, klen), d->mv_size);
    const uint8_t *p = d->mv_data;
    out->main = (int64_t)cm_be64_get(p);
    out->sub = (int64_t)cm_be64_get(p + 8);
    out->tombstone = p[16] & KV__TOMBSTONE;
    uint32_t stored = cm_be32_get(p + 17), computed = idx_sum(key, klen, p);
    if (stored != computed)
        return kv__corrupt(s, "idx key %s version %" PRId64 "/%" PRId64
                              ": checksum mismatch (stored 0x%08" PRIx32
                              ", computed 0x%08" PRIx32 ")",
                           kv__keystr(ks, sizeof ks, key, klen), out->main,
                           out->sub, stored, computed);
    return 0;
}

int kv__latest(kv_store *s, MDB_cursor *c, const uint8_t *key, size_t klen,
               int64_t at, kv__ver *out)
{
    MDB_val k = {klen, (void *)key}, d;
    int rc;
    if (at == KV__LATEST) {
        rc = mdb_cursor_get(c, &k, &d, MDB_SET);
        if (rc)
            return rc;
        rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
        if (rc)
            return rc;
        return kv__ver_decode(s, key, klen, &d, out);
    }
    uint8_t probe[KV__IDX_SZ] = {0};
    cm_be64_put(probe, (uint64_t)at + 1);
    d.mv_size = KV__IDX_SZ;
    d.mv_data = probe;
    rc = mdb_cursor_get(c, &k, &d, MDB_GET_BOTH_RANGE);
    if (rc == 0) {
        /* Positioned on the first version above `at`; step back. */
        rc = mdb_cursor_get(c, &k, &d, MDB_PREV_DUP);
    } else if (rc == MDB_NOTFOUND) {
        /* Every version is at or below `at` (or the key is absent). */
        k.mv_size = klen;
        k.mv_data = (void *)key;
        rc = mdb_cursor_get(c, &k, &d, MDB_SET);
        if (rc == 0)
            rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
    }
    if (rc)
        return rc;
    return kv__ver_decode(s, key, klen, &d, out);
}

int kv__load(kv_store *s, MDB_txn *txn, const uint8_t *key, size_t klen,
             const kv__ver *ver, kv__rec *out)
{
    uint8_t kb[16];
    char ks[200];
    kv__revkey(kb, ver->main, ver->sub);
    MDB_val k = {16, kb}, v;
    int rc = mdb_get(txn, s->rev, &k, &v);
    if (rc == MDB_NOTFOUND)
        return kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                              ": missing from history, but idx key %s "
                              "has it",
                           ver->main, ver->sub,
                           kv__keystr(ks, sizeof ks, key, klen));
    if (rc)
        return kv__lmdb_err(s, rc, "read history");
    if ((rc = kv__rec_decode(s, &k, &v, out)))
        return rc;
    if (out->key_len != klen || memcmp(out->key, key, klen) != 0 ||
        out->tombstone != ver->tombstone)
        return kv__corrupt(s, "rev %" PRId64 "/%" PRId64
                              ": record does not match idx key %s "
                              "(tombstone %d, idx says %d)",
                           ver->main, ver->sub,
                           kv__keystr(ks, sizeof ks, key, klen),
                           out->tombstone, ver->tombstone);
    return 0;
}

const char *kv__keystr(char *buf, size_t n, const uint8_t *k, size_t kl)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (n < 8) {
        if (n)
            buf[0] = 0;
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < kl; i++) {
        if (i == 48 || o + 8 > n) {
            buf[o++] = '.';
            buf[o++] = '.';
            buf[o++] = '.';
            break;
        }
        uint8_t c = k[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}

Skiffpb__KeyValue *kv__kv_new(cm_arena *a, const kv__rec *r, bool keys_only)
{
    Skiffpb__KeyValue *kv = cm_arena_alloc(a, sizeof *kv);
    if (!kv)
        return NULL;
    skiffpb__key_value__init(kv);
    kv->key.data = cm_arena_memdup(a, r->key, r->key_len);
    if (!kv->key.data)
        return NULL;
    kv->key.len = r->key_len;
    kv->create_revision = r->create;
    kv->mod_revision = r->main;
    kv->version = r->version;
    kv->lease = r->lease;
    if (!keys_only && r->value_len) {
        kv->value.data = cm_arena_memdup(a, r->value, r->value_len);
        if (!kv->value.data)
            return NULL;
        kv->value.len = r->value_len;
    }
    return kv;
}

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

bool kv__in_range(const uint8_t *k, size_t kl, const uint8_t *key0,
                  size_t k0l, const uint8_t *end, size_t endl)
{
    if (endl == 0)
        return keycmp(k, kl, key0, k0l) == 0;
    if (keycmp(k, kl, key0, k0l) < 0)
        return false;
    if (endl == 1 && end[0] == 0)
        return true; /* from-key */
    return keycmp(k, kl, end, endl) < 0;
}

int kv__check_key(const uint8_t *k, size_t kl)
{
    (void)k;
    if (kl == 0)
        return KV_EEMPTY_KEY;
    if (kl > KV_MAX_KEY)
        return KV_EKEY_TOO_LARGE;
    return 0;
}

void *kv__arena_grow(cm_arena *a, void *old, size_t oldn, size_t newn,
                     size_t elem)
{
    void *p = cm_arena_alloc(a, newn * elem);
    if (p && oldn)
        memcpy(p, old, oldn * elem);
    return p;
}
