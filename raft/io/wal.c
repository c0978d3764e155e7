/*
 * raft/io/wal.c -- the Raft write-ahead log: segments, records, recovery.
 *
 * The log is a sequence of segment files named SEQ-FIRST.wal (16 hex digits
 * each: a sequence number that orders the files without doubt, and the
 * first index the segment was created for).  Every segment is preallocated
 * with posix_fallocate, so its unused tail reads as zeros, and holds
 * records laid out back to back:
 *
 *     len u32 BE | crc u32 BE | type u8 | payload[len]
 *
 * where crc is the CRC32C of len, type and payload.  An all-zero header is
 * the clean end of the log.  Record types are a hard state, a snapshot
 * marker, a truncation (the conflicting suffix from an index on is gone)
 * and one entry.  The log is strictly append-only: a conflicting suffix is
 * not overwritten but cancelled by a truncation record, so a torn write can
 * only damage the unsynced end.
 *
 * Each new segment starts with the current hard state and snapshot marker,
 * so a segment and everything after it describe the whole state; that is
 * what lets wal_release delete old segments from the front.  Recovery and
 * the writer apply records through the same rules (apply_* below), keeping
 * one array of entry terms (the writer) or whole entries (recovery).
 *
 * Durability: appends only buffer and pwrite; wal_sync issues the one
 * fdatasync that covers the batch.  A rollover syncs the old segment before
 * the new one is used, so every segment but the last is fully durable and
 * any damage there is real corruption, refused rather than repaired; a
 * repaired last segment is left behind and appends go to a new one.  New
 * segments are built under a .tmp name, synced, renamed, and the directory
 * synced; deletions sync the directory too.
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 9 /* len, crc, type */
#define NAME_LEN 48
#define ENTRY_FIXED 20 /* index, term, type */

enum rec_type {
    REC_HS = 1,    /* term u64, vote u64, commit u64 */
    REC_SNAP = 2,  /* index u64, term u64 */
    REC_TRUNC = 3, /* index u64: entries from index on are gone */
    REC_ENTRY = 4  /* index u64, term u64, type u32, data */
};

struct seg {
    uint64_t seq;
    uint64_t first; /* index the segment was created for (from the name) */
    uint64_t max;   /* highest entry index written into it; 0 = none */
};

/* The log as records describe it.  `ents` is used by recovery (whole
 * entries), `terms` by the writer; each keeps its length in n. */
struct logstate {
    raft_hard_state hs;
    uint64_t snap_index, snap_term;
    uint64_t first; /* index of element 0 */
    size_t n, cap;
    raft_entry *ents;
    uint64_t *terms;
};

struct wal {
    char *dir;
    int dirfd;
    int lockfd;
    int fd; /* the last segment, where appends go */
    uint64_t seg_size;
    uint64_t cur_size; /* size of the last segment's file */
    uint64_t off;      /* append offset in it */
    struct seg *segs;
    size_t nsegs, capsegs;
    struct logstate st;
    bool failed;
    bool dirty;    /* appended since the last sync */
    bool repaired; /* recovery zeroed a damaged tail */
    cm_buf buf;
    char errmsg[WAL_ERRMSG_LEN];
};

/* ---- errors */

const char *wal_strerror(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return m;
        WAL_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

const char *wal_err_name(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return #n;
        WAL_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

void wal_err_init(void)
{
    cm_err_register(-4599, -4500, wal_strerror, wal_err_name);
}

/* ---- small helpers */

static void seg_name(char *out, const struct seg *s)
{
    snprintf(out, NAME_LEN, "%016" PRIx64 "-%016" PRIx64 ".wal", s->seq,
             s->first);
}

static int parse_name(const char *name, struct seg *s)
{
    char hex1[17], hex2[17];
    if (strlen(name) != 37 || name[16] != '-' || strcmp(name + 33, ".wal"))
        return -1;
    memcpy(hex1, name, 16);
    memcpy(hex2, name + 17, 16);
    hex1[16] = hex2[16] = 0;
    for (int i = 0; i < 16; i++)
        if (!strchr("0123456789abcdef", hex1[i]) ||
            !strchr("0123456789abcdef", hex2[i]))
            return -1;
    s->seq = strtoull(hex1, NULL, 16);
    s->first = strtoull(hex2, NULL, 16);
    s->max = 0;
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = pwrite(fd, b, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    while (n) {
        ssize_t k = pread(fd, b, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EIO; /* the file shrank under us */
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int zero_range(int fd, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[65536];
    while (from < to) {
        size_t k =
            to - from < sizeof zeros ? (size_t)(to - from) : sizeof zeros;
        int rc = pwrite_all(fd, zeros, k, from);
        if (rc)
            return rc;
        from += k;
    }
    return 0;
}

static int sync_dir(wal *w)
{
    return fsync(w->dirfd) ? -errno : 0;
}

/* Appends one record to `b`, which the caller reserved room in. */
static void put_record(cm_buf *b, uint8_t type, const uint8_t *p1, size_t n1,
                       const uint8_t *p2, size_t n2)
{
    uint8_t *h = b->base + b->len;
    uint32_t len = (uint32_t)(n1 + n2);
    cm_be32_put(h, len);
    h[8] = type;
    memcpy(h + HDR, p1, n1);
    if (n2)
        memcpy(h + HDR + n1, p2, n2);
    uint32_t crc = cm_crc32c(0, h, 4);
    crc = cm_crc32c(crc, h + 8, 1 + n1 + n2);
    cm_be32_put(h + 4, crc);
    b->len += HDR + len;
}

static size_t encode_hs(uint8_t out[24], const raft_hard_state *hs)
{
    cm_be64_put(out, hs->term);
    cm_be64_put(out + 8, hs->vote);
    cm_be64_put(out + 16, hs->commit);
    return 24;
}

/* ---- log rules, shared by recovery and the writer */

static uint64_t log_last(const struct logstate *s)
{
    return s->n ? s->first + s->n - 1 : s->snap_index;
}

static uint64_t term_of(const struct logstate *s, size_t i)
{
    return s->ents ? s->ents[i].term : s->terms[i];
}

/* Drops elements [from, n). */
static void drop_tail(struct logstate *s, size_t from)
{
    if (s->ents)
        for (size_t i = from; i < s->n; i++)
            raft_blob_unref(s->ents[i].blob);
    s->n = from;
}

/* Drops elements [0, k). */
static void drop_head(struct logstate *s, size_t k)
{
    if (s->ents) {
        for (size_t i = 0; i < k; i++)
            raft_blob_unref(s->ents[i].blob);
        memmove(s->ents, s->ents + k, (s->n - k) * sizeof *s->ents);
    } else {
        memmove(s->terms, s->terms + k, (s->n - k) * sizeof *s->terms);
    }
    s->n -= k;
    s->first += k;
}

/* A snapshot marker.  Raft §7: keep the entries after it when the log
 * holds the snapshot's last entry with its term, else drop the log.  A
 * marker behind the log's known entries (recovery starting at a segment
 * created before the snapshot) keeps them. */
static void apply_snap(struct logstate *s, uint64_t index, uint64_t term)
{
    if (index <= s->snap_index)
        return;
    s->snap_index = index;
    s->snap_term = term;
    if (s->n == 0) {
        s->first = index + 1;
    } else if (index < s->first) {
        return;
    } else if (index < s->first + s->n &&
               term_of(s, (size_t)(index - s->first)) == term) {
        drop_head(s, (size_t)(index - s->first + 1));
    } else {
        drop_tail(s, 0);
        s->first = index + 1;
    }
}

static void apply_trunc(struct logstate *s, uint64_t index)
{
    if (s->n == 0 || index >= s->first + s->n)
        return;
    drop_tail(s, index <= s->first ? 0 : (size_t)(index - s->first));
    if (s->n == 0)
        s->first = s->snap_index + 1;
}

/* Checks that an entry may come next: 0 (the caller then stores it) or
 * -1 when it breaks the rules.  The first entry after an empty log may
 * start anywhere after the marker; wal_open checks the join at the end. */
static int check_entry(struct logstate *s, uint64_t index)
{
    if (index <= s->snap_index)
        return -1;
    if (s->n == 0) {
        s->first = index; /* may be after a gap; checked at the end */
        return 0;
    }
    return index == s->first + s->n ? 0 : -1;
}

/* ---- recovery */

/* Why a segment scan stopped. */
enum scan_end { SCAN_CLEAN, SCAN_DAMAGED };

static int grow_ents(struct logstate *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 64;
    raft_entry *p = cm_realloc(s->ents, cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    s->ents = p;
    s->cap = cap;
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Scans one segment image.  Returns 0 with *end_off and *how, WAL_ECORRUPT
 * for a valid record that breaks the rules, or -ENOMEM. */
static int scan_segment(wal *w, struct seg *sg, const char *name,
                        const uint8_t *img, size_t size, struct logstate *s,
                        uint64_t *end_off, enum scan_end *how, const char **why)
{
    size_t off = 0;
    *how = SCAN_DAMAGED;
    for (;;) {
        if (size - off < HDR) {
            if (all_zero(img + off, size - off)) {
                *how = SCAN_CLEAN;
            } else {
                *why = "torn header";
            }
            break;
        }
        const uint8_t *h = img + off;
        if (all_zero(h, HDR)) {
            if (all_zero(h, size - off))
                *how = SCAN_CLEAN;
            else
                *why = "data after the end of the log";
            break;
        }
        uint32_t len = cm_be32_get(h);
        if (len > size - off - HDR) {
            *why = "record length beyond the file";
            break;
        }
        uint32_t crc = cm_crc32c(0, h, 4);
        crc = cm_crc32c(crc, h + 8, 1 + (size_t)len);
        if (crc != cm_be32_get(h + 4)) {
            *why = "checksum mismatch";
            break;
        }
        const uint8_t *p = h + HDR;
        uint8_t type = h[8];
        bool ok = true;
        switch (type) {
        case REC_HS:
            ok = len == 24;
            if (ok) {
                s->hs.term = cm_be64_get(p);
                s->hs.vote = cm_be64_get(p + 8);
                s->hs.commit = cm_be64_get(p + 16);
            }
            break;
        case REC_SNAP:
            ok = len == 16;
            if (ok)
                apply_snap(s, cm_be64_get(p), cm_be64_get(p + 8));
            break;
        case REC_TRUNC:
            ok = len == 8;
            if (ok)
                apply_trunc(s, cm_be64_get(p));
            break;
        case REC_ENTRY: {
            ok = len >= ENTRY_FIXED;
            if (!ok)
                break;
            uint64_t index = cm_be64_get(p);
            if (check_entry(s, index)) {
                snprintf(w->errmsg, sizeof w->errmsg,
                         "%s offset %zu: entry %" PRIu64
                         " does not follow the log (last %" PRIu64 ")",
                         name, off, index, log_last(s));
                return WAL_ECORRUPT;
            }
            if (grow_ents(s))
                return -ENOMEM;
            raft_entry *e = &s->ents[s->n];
            *e = (raft_entry){.index = index,
                              .term = cm_be64_get(p + 8),
                              .type = cm_be32_get(p + 16),
                              .len = len - ENTRY_FIXED};
            if (e->len) {
                e->blob = raft_blob_create(e->len);
                if (!e->blob)
                    return -ENOMEM;
                memcpy(raft_blob_bytes(e->blob), p + ENTRY_FIXED, e->len);
                e->buf = raft_blob_bytes(e->blob);
            }
            s->n++;
            if (index > sg->max)
                sg->max = index;
            break;
        }
        default:
            ok = false;
        }
        if (!ok) {
            snprintf(w->errmsg, sizeof w->errmsg,
                     "%s offset %zu: valid checksum but bad record "
                     "(type %u, length %u)",
                     name, off, type, len);
            return WAL_ECORRUPT;
        }
        off += HDR + len;
    }
    *end_off = off;
    return 0;
}

/* Whether a checksummed record of a known type starts anywhere in
 * [from, size).  A torn write damages only the end of what was written
 * (the rest of a preallocated segment is zeros), so a valid record after
 * the damage means the damage is not a torn write: bits flipped in the
 * middle of the log, over records that may have been acknowledged.
 * All-zero stretches are skipped cheaply; a candidate costs one CRC. */
static bool valid_record_after(const uint8_t *img, size_t size, size_t from)
{
    for (size_t off = from; off + HDR <= size; off++) {
        const uint8_t *h = img + off;
        if (h[8] < REC_HS || h[8] > REC_ENTRY || !(h[0] | h[1] | h[2] | h[3]))
            continue;
        uint32_t len = cm_be32_get(h);
        if (len > size - off - HDR)
            continue;
        uint32_t crc = cm_crc32c(0, h, 4);
        crc = cm_crc32c(crc, h + 8, 1 + (size_t)len);
        if (crc == cm_be32_get(h + 4))
            return true;
    }
    return false;
}

/* Reads and scans segment i.  The last segment is repaired (its damaged
 * tail zeroed) and left open as w->fd; others are closed. */
static int recover_segment(wal *w, size_t i, struct logstate *s)
{
    char name[NAME_LEN];
    seg_name(name, &w->segs[i]);
    bool last = i + 1 == w->nsegs;
    int fd = openat(w->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        snprintf(w->errmsg, sizeof w->errmsg, "open %s: %s", name,
                 strerror(-rc));
        return rc;
    }
    uint8_t *img = NULL;
    int rc;
    struct stat stt;
    if (fstat(fd, &stt)) {
        rc = -errno;
        goto err;
    }
    size_t size = (size_t)stt.st_size;
    img = cm_malloc(size ? size : 1);
    if (!img) {
        rc = -ENOMEM;
        goto err;
    }
    rc = pread_all(fd, img, size, 0);
    if (rc)
        goto err;
    uint64_t end;
    enum scan_end how;
    const char *why = "";
    rc = scan_segment(w, &w->segs[i], name, img, size, s, &end, &how, &why);
    if (rc)
        goto err;
    if (how == SCAN_DAMAGED && !last) {
        snprintf(w->errmsg, sizeof w->errmsg,
                 "%s offset %" PRIu64 ": %s before the last segment", name, end,
                 why);
        rc = WAL_ECORRUPT;
        goto err;
    }
    if (how == SCAN_DAMAGED && valid_record_after(img, size, (size_t)end + 1)) {
        snprintf(w->errmsg, sizeof w->errmsg,
                 "%s offset %" PRIu64 ": %s, and valid records follow: "
                 "damage inside the log, not a torn write",
                 name, end, why);
        rc = WAL_ECORRUPT;
        goto err;
    }
    cm_free(img);
    img = NULL;
    if (!last) {
        close(fd);
        return 0;
    }
    if (how == SCAN_DAMAGED) {
        CM_WARN("wal: torn or corrupt record, log truncated",
                "file=%s offset=%" PRIu64 " reason=\"%s\" dropped=%zu", name,
                end, why, size - (size_t)end);
        w->repaired = true;
        rc = zero_range(fd, end, size);
        if (rc)
            goto err;
    }
    uint64_t want = size > w->seg_size ? size : w->seg_size;
    if (size < want) {
        rc = -posix_fallocate(fd, 0, (off_t)want);
        if (rc)
            goto err;
    }
    if ((how == SCAN_DAMAGED || size < want) && fdatasync(fd)) {
        rc = -errno;
        goto err;
    }
    w->fd = fd;
    w->off = end;
    w->cur_size = want;
    return 0;
err:
    if (!w->errmsg[0])
        snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", name, cm_strerror(rc));
    cm_free(img);
    close(fd);
    return rc;
}

static int list_segments(wal *w)
{
    int dfd = dup(w->dirfd);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int rc = -errno;
        close(dfd);
        return rc;
    }
    rewinddir(d);
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 8 && !strcmp(de->d_name + l - 8, ".wal.tmp")) {
            /* A segment whose creation did not finish: never used. */
            if (unlinkat(w->dirfd, de->d_name, 0) && errno != ENOENT) {
                rc = -errno;
                break;
            }
            continue;
        }
        struct seg sg;
        if (parse_name(de->d_name, &sg))
            continue;
        if (w->nsegs == w->capsegs) {
            size_t cap = w->capsegs ? w->capsegs * 2 : 8;
            struct seg *p = cm_realloc(w->segs, cap * sizeof *p);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            w->segs = p;
            w->capsegs = cap;
        }
        w->segs[w->nsegs++] = sg;
    }
    closedir(d);
    if (rc)
        return rc;
    if (w->nsegs)
        qsort(w->segs, w->nsegs, sizeof *w->segs, cmp_seg);
    for (size_t i = 1; i < w->nsegs; i++) {
        if (w->segs[i].seq != w->segs[i - 1].seq + 1) {
            char a[NAME_LEN], b[NAME_LEN];
            seg_name(a, &w->segs[i - 1]);
            seg_name(b, &w->segs[i]);
            snprintf(w->errmsg, sizeof w->errmsg,
                     "segment %016" PRIx64 " missing between %s and %s",
                     w->segs[i - 1].seq + 1, a, b);
            return WAL_EMISSING;
        }
    }
    return sync_dir(w);
}

/* ---- writing */

static int fail(wal *w, int rc, const char *what)
{
    w->failed = true;
    snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", what, cm_strerror(rc));
    CM_ERROR("wal: failed", "dir=%s op=%s err=%s", w->dir, what,
             cm_err_name(rc));
    return rc;
}

/* Creates segment seq (the next one) for index `first`, at least `size`
 * bytes, starting with the current hard state and snapshot marker, and
 * makes it the last segment.  The caller reserved room in w->segs. */
static int new_segment(wal *w, uint64_t first, uint64_t size)
{
    struct seg sg = {w->nsegs ? w->segs[w->nsegs - 1].seq + 1 : 1, first, 0};
    char name[NAME_LEN], tmp[NAME_LEN + 4];
    seg_name(name, &sg);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    uint8_t head[2 * HDR + 24 + 16 + 8];
    uint8_t p[24];
    cm_buf hb = {head, 0, sizeof head};
    put_record(&hb, REC_HS, p, encode_hs(p, &w->st.hs), NULL, 0);
    if (w->st.snap_index) {
        cm_be64_put(p, w->st.snap_index);
        cm_be64_put(p + 8, w->st.snap_term);
        put_record(&hb, REC_SNAP, p, 16, NULL, 0);
    }
    if (size < w->seg_size)
        size = w->seg_size;
    int fd =
        openat(w->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = -posix_fallocate(fd, 0, (off_t)size);
    if (!rc)
        rc = pwrite_all(fd, head, hb.len, 0);
    if (!rc && fdatasync(fd))
        rc = -errno;
    if (!rc && renameat(w->dirfd, tmp, w->dirfd, name))
        rc = -errno;
    if (!rc)
        rc = sync_dir(w);
    if (rc) {
        close(fd);
        unlinkat(w->dirfd, tmp, 0);
        return rc;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->off = hb.len;
    w->cur_size = size;
    w->segs[w->nsegs++] = sg;
    return 0;
}

/* Writes the buffered bytes at the append offset. */
static int flush(wal *w)
{
    if (!w->buf.len)
        return 0;
    int rc = pwrite_all(w->fd, w->buf.base, w->buf.len, w->off);
    if (rc)
        return rc;
    w->off += w->buf.len;
    w->buf.len = 0;
    w->dirty = true;
    return 0;
}

/* Makes room for a record of `rlen` bytes: flushes and rolls over to a new
 * segment when the current one cannot take it. */
static int room_for(wal *w, size_t rlen, uint64_t next_index)
{
    if (w->off + w->buf.len + rlen <= w->cur_size)
        return 0;
    int rc = flush(w);
    if (rc)
        return rc;
    /* Every segment but the last is durable (see the design note). */
    if (w->dirty && fdatasync(w->fd))
        return -errno;
    w->dirty = false;
    uint64_t head = 2 * HDR + 24 + 16;
    return new_segment(w, next_index, head + rlen);
}

static int grow_terms(struct logstate *s, size_t extra)
{
    if (s->n + extra <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->n + extra)
        cap *= 2;
    uint64_t *p = cm_realloc(s->terms, cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    s->terms = p;
    s->cap = cap;
    return 0;
}

static int reserve_segs(wal *w, size_t extra)
{
    if (w->nsegs + extra <= w->capsegs)
        return 0;
    size_t cap = w->capsegs ? w->capsegs : 8;
    while (cap < w->nsegs + extra)
        cap *= 2;
    struct seg *p = cm_realloc(w->segs, cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    w->segs = p;
    w->capsegs = cap;
    return 0;
}

/* ---- public */

static void state_free(struct logstate *s)
{
    if (s->ents)
        drop_tail(s, 0);
    cm_free(s->ents);
    cm_free(s->terms);
    memset(s, 0, sizeof *s);
}

static void wal_free(wal *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->lockfd >= 0)
        close(w->lockfd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    state_free(&w->st);
    cm_buf_free(&w->buf);
    cm_free(w->segs);
    cm_free(w->dir);
    cm_free(w);
}

void wal_recovered_free(wal_recovered *rec)
{
    if (!rec)
        return;
    for (size_t i = 0; i < rec->n_entries; i++)
        raft_blob_unref(rec->entries[i].blob);
    cm_free(rec->entries);
    memset(rec, 0, sizeof *rec);
}

int wal_open(const char *dir, const wal_options *opt, wal **out,
             wal_recovered *rec)
{
    wal_err_init();
    memset(rec, 0, sizeof *rec);
    *out = NULL;
    uint64_t seg_size =
        opt && opt->segment_size ? opt->segment_size : WAL_SEGMENT_SIZE_DEFAULT;
    if (seg_size < WAL_SEGMENT_SIZE_MIN || seg_size > (1ull << 32)) {
        snprintf(rec->errmsg, sizeof rec->errmsg, "bad segment size %" PRIu64,
                 seg_size);
        return WAL_EINVAL;
    }
    struct logstate s = {0};
    int rc = -ENOMEM;
    wal *w = cm_calloc(1, sizeof *w);
    if (!w)
        goto fail;
    w->fd = w->lockfd = w->dirfd = -1;
    w->seg_size = seg_size;
    w->dir = cm_strdup(dir);
    if (!w->dir)
        goto fail;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        rc = -errno;
        snprintf(w->errmsg, sizeof w->errmsg, "mkdir %s: %s", dir,
                 strerror(-rc));
        goto fail;
    }
    w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0) {
        rc = -errno;
        snprintf(w->errmsg, sizeof w->errmsg, "open %s: %s", dir,
                 strerror(-rc));
        goto fail;
    }
    w->lockfd = openat(w->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->lockfd < 0 || flock(w->lockfd, LOCK_EX | LOCK_NB)) {
        rc = errno == EWOULDBLOCK ? WAL_ELOCKED : -errno;
        snprintf(w->errmsg, sizeof w->errmsg, "lock %s/LOCK: %s", dir,
                 cm_strerror(rc));
        goto fail;
    }
    rc = list_segments(w);
    if (rc)
        goto fail;
    s.ents = NULL;
    s.first = 1;
    /* Recovery keeps whole entries: make ents non-NULL from the start so
     * the shared rules know which array they work on. */
    s.ents = cm_malloc(64 * sizeof *s.ents);
    if (!s.ents) {
        rc = -ENOMEM;
        goto fail;
    }
    s.cap = 64;
    for (size_t i = 0; i < w->nsegs; i++) {
        rc = recover_segment(w, i, &s);
        if (rc)
            goto fail;
    }
    if (s.n && s.first != s.snap_index + 1) {
        snprintf(w->errmsg, sizeof w->errmsg,
                 "entries start at %" PRIu64 " but the snapshot is at %" PRIu64
                 ": a segment before %016" PRIx64 "-%016" PRIx64
                 ".wal is missing",
                 s.first, s.snap_index, w->segs[0].seq, w->segs[0].first);
        rc = WAL_EMISSING;
        goto fail;
    }
    /* The writer keeps only terms. */
    w->st.hs = s.hs;
    w->st.snap_index = s.snap_index;
    w->st.snap_term = s.snap_term;
    w->st.first = s.n ? s.first : s.snap_index + 1;
    rc = grow_terms(&w->st, s.n + 1);
    if (rc)
        goto fail;
    for (size_t i = 0; i < s.n; i++)
        w->st.terms[i] = s.ents[i].term;
    w->st.n = s.n;
    /* After a repair, appends go to a fresh segment: the damage may have
     * reached the hard state and marker the damaged one started with, and
     * every segment must start with them for releases to be safe. */
    if (w->nsegs == 0 || w->repaired) {
        rc = reserve_segs(w, 1);
        if (!rc)
            rc = new_segment(w, log_last(&w->st) + 1, w->seg_size);
        if (rc) {
            snprintf(w->errmsg, sizeof w->errmsg, "create segment: %s",
                     cm_strerror(rc));
            goto fail;
        }
    }
    rec->hs = s.hs;
    rec->snap_index = s.snap_index;
    rec->snap_term = s.snap_term;
    rec->entries = s.ents;
    rec->n_entries = s.n;
    CM_INFO("wal: opened",
            "dir=%s segments=%zu snapshot=%" PRIu64
            " entries=%zu last=%" PRIu64,
            dir, w->nsegs, s.snap_index, s.n, log_last(&w->st));
    *out = w;
    return 0;
fail:
    if (w && w->errmsg[0])
        memcpy(rec->errmsg, w->errmsg, sizeof rec->errmsg);
    else
        snprintf(rec->errmsg, sizeof rec->errmsg, "open %s: %s", dir,
                 cm_strerror(rc));
    if (rc != -ENOMEM)
        CM_ERROR("wal: open refused", "dir=%s err=%s detail=\"%s\"", dir,
                 cm_err_name(rc), rec->errmsg);
    state_free(&s);
    if (w)
        wal_free(w);
    return rc;
}

int wal_append(wal *w, const raft_hard_state *hs, const raft_entry *entries,
               size_t n)
{
    if (w->failed)
        return WAL_EFAILED;
    struct logstate *s = &w->st;
    uint64_t last = log_last(s);
    bool trunc = false;
    size_t bytes = 0;
    if (n) {
        uint64_t e0 = entries[0].index;
        if (e0 <= s->snap_index || e0 > last + 1) {
            snprintf(w->errmsg, sizeof w->errmsg,
                     "entry %" PRIu64 " cannot follow snapshot %" PRIu64
                     " and last %" PRIu64,
                     e0, s->snap_index, last);
            return WAL_EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if (entries[i].index != e0 + i ||
                (entries[i].len && !entries[i].buf) ||
                entries[i].len > WAL_ENTRY_MAX) {
                snprintf(w->errmsg, sizeof w->errmsg,
                         "entry %zu of the batch: index not contiguous, "
                         "no bytes or over %u bytes",
                         i, WAL_ENTRY_MAX);
                return WAL_EINVAL;
            }
            bytes += HDR + ENTRY_FIXED + entries[i].len;
        }
        trunc = e0 <= last;
    }
    bytes += trunc ? HDR + 8 : 0;
    bytes += hs ? HDR + 24 : 0;
    /* Allocate everything up front so that -ENOMEM changes nothing. */
    w->buf.len = 0;
    int rc = cm_buf_reserve(&w->buf, bytes);
    if (!rc)
        rc = grow_terms(s, n);
    if (!rc)
        rc = reserve_segs(w, n + 2);
    if (rc)
        return rc;
    uint8_t p[ENTRY_FIXED + 4];
    const char *what = "write";
    if (trunc) {
        cm_be64_put(p, entries[0].index);
        if ((rc = room_for(w, HDR + 8, entries[0].index)))
            goto err;
        put_record(&w->buf, REC_TRUNC, p, 8, NULL, 0);
        apply_trunc(s, entries[0].index);
    }
    if (hs) {
        if ((rc = room_for(w, HDR + 24, log_last(s) + 1)))
            goto err;
        put_record(&w->buf, REC_HS, p, encode_hs(p, hs), NULL, 0);
        s->hs = *hs;
    }
    for (size_t i = 0; i < n; i++) {
        const raft_entry *e = &entries[i];
        cm_be64_put(p, e->index);
        cm_be64_put(p + 8, e->term);
        cm_be32_put(p + 16, e->type);
        if ((rc = room_for(w, HDR + ENTRY_FIXED + (size_t)e->len, e->index)))
            goto err;
        put_record(&w->buf, REC_ENTRY, p, ENTRY_FIXED, e->buf, e->len);
        check_entry(s, e->index);
        s->terms[s->n++] = e->term;
        struct seg *cur = &w->segs[w->nsegs - 1];
        if (e->index > cur->max)
            cur->max = e->index;
    }
    if ((rc = flush(w)))
        goto err;
    return 0;
err:
    return fail(w, rc, what);
}

int wal_sync(wal *w)
{
    if (w->failed)
        return WAL_EFAILED;
    if (!w->dirty)
        return 0;
    if (fdatasync(w->fd))
        return fail(w, -errno, "fdatasync");
    w->dirty = false;
    return 0;
}

int wal_release(wal *w, uint64_t index, uint64_t term)
{
    if (w->failed)
        return WAL_EFAILED;
    int rc;
    if (index > w->st.snap_index) {
        uint8_t p[16];
        cm_be64_put(p, index);
        cm_be64_put(p + 8, term);
        w->buf.len = 0;
        if ((rc = cm_buf_reserve(&w->buf, HDR + 16)))
            return rc;
        if ((rc = reserve_segs(w, 1)))
            return rc;
        if ((rc = room_for(w, HDR + 16, log_last(&w->st) + 1)))
            return fail(w, rc, "write");
        put_record(&w->buf, REC_SNAP, p, 16, NULL, 0);
        apply_snap(&w->st, index, term);
        if ((rc = flush(w)))
            return fail(w, rc, "write");
        /* The marker must be durable before anything it replaces goes. */
        if ((rc = wal_sync(w)))
            return rc;
    }
    size_t k = 0;
    while (k + 1 < w->nsegs && w->segs[k].max <= w->st.snap_index) {
        char name[NAME_LEN];
        seg_name(name, &w->segs[k]);
        if (unlinkat(w->dirfd, name, 0) && errno != ENOENT)
            return fail(w, -errno, "unlink");
        /* One at a time, oldest first: a crash leaves a contiguous run. */
        if ((rc = sync_dir(w)))
            return fail(w, rc, "fsync directory");
        CM_DEBUG("wal: segment released", "file=%s snapshot=%" PRIu64, name,
                 w->st.snap_index);
        k++;
    }
    if (k) {
        memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof *w->segs);
        w->nsegs -= k;
    }
    return 0;
}

void wal_last(const wal *w, uint64_t *index, uint64_t *term)
{
    const struct logstate *s = &w->st;
    *index = log_last(s);
    *term = s->n ? s->terms[s->n - 1] : s->snap_term;
}

size_t wal_segment_count(const wal *w)
{
    return w->nsegs;
}

const char *wal_errmsg(const wal *w)
{
    return w->errmsg;
}

int wal_close(wal *w)
{
    if (!w)
        return 0;
    int rc = 0;
    if (!w->failed && w->dirty && fdatasync(w->fd))
        rc = -errno;
    wal_free(w);
    return rc;
}
