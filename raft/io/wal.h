/*
 * raft/io/wal.h -- the write-ahead log that makes Raft entries and hard
 * state durable.
 *
 * The log lives in one directory of preallocated segment files holding
 * CRC32C-checked records (docs/wal.md has the format).  wal_open recovers
 * what is durable: the hard state, the snapshot marker and the entries after
 * it.  wal_append writes a ready batch (new hard state and entries, with
 * Raft's conflicting suffix truncated first); one wal_sync makes everything
 * appended since the previous sync durable with a single fdatasync.
 * wal_release records that a snapshot is durable and deletes whole segments
 * behind it.
 *
 * Threading: every call blocks on disk I/O, so a server runs them in its
 * thread pool.  A wal may be used by one thread at a time (calls need no
 * lock if the caller serialises them).  Blob references handed out by
 * wal_open follow raft.h's rule: take and drop them on one thread.
 */
#ifndef SKIFF_RAFT_WAL_H
#define SKIFF_RAFT_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "cm.h"
#include "raft.h"

/* ---- errors ---------------------------------------------------------------
 * Codes in the -4500..-4599 block of raft's range.  wal_err_init registers
 * them with cm_err_register (wal_open calls it). */
#define WAL_ERRNO_MAP(XX)                                                      \
    XX(WAL_ECORRUPT, -4500, "WAL is damaged (not a torn write)")          \
    XX(WAL_EMISSING, -4501, "a WAL segment is missing")                        \
    XX(WAL_EINVAL, -4502, "invalid WAL argument")                              \
    XX(WAL_EFAILED, -4503, "WAL failed earlier and must be reopened")          \
    XX(WAL_ELOCKED, -4504, "WAL directory is used by another process")

enum wal_errno {
#define XX(name, val, msg) name = (val),
    WAL_ERRNO_MAP(XX)
#undef XX
};

/* Registers the WAL error block with cm_err_register.  Idempotent; call
 * before threads start (wal_open does). */
void wal_err_init(void);
/* Message and name of a WAL code; NULL when `code` is not one. */
const char *wal_strerror(int code);
const char *wal_err_name(int code);

/* ---- types */
typedef struct wal wal;

#define WAL_SEGMENT_SIZE_DEFAULT (16u << 20) /* 16 MiB */
#define WAL_SEGMENT_SIZE_MIN 4096u
#define WAL_ERRMSG_LEN 256
#define WAL_ENTRY_MAX (1u << 30) /* bytes of one entry's data */

typedef struct wal_options {
    /* Bytes preallocated per segment; 0 = WAL_SEGMENT_SIZE_DEFAULT, at
     * least WAL_SEGMENT_SIZE_MIN.  A record larger than a segment gets a
     * segment of its own, sized to fit. */
    uint64_t segment_size;
} wal_options;

/* What wal_open recovered.  wal_open overwrites it (free an earlier one
 * first); free it with wal_recovered_free, also after a failed open. */
typedef struct wal_recovered {
    raft_hard_state hs;  /* zero when never written */
    uint64_t snap_index; /* snapshot marker; 0 = none */
    uint64_t snap_term;
    /* Entries snap_index+1 .. in order, contiguous.  The array and one
     * blob reference per non-empty entry are owned by this struct. */
    raft_entry *entries;
    size_t n_entries;
    /* After a failed open: what went wrong and where (file, offset). */
    char errmsg[WAL_ERRMSG_LEN];
} wal_recovered;

/* ---- calls */

/* Opens (creating if needed) the WAL in directory `dir` and recovers it.
 * Recovery reads segments in sequence order and stops at the first torn or
 * corrupt record of the last segment: it logs a warning, zeroes the rest of
 * that segment and appends continue in a new segment.  Damage before the last
 * segment is not a torn write and is refused.
 *
 * `opt` may be NULL (defaults).  On success *out is the open WAL and `rec`
 * is filled; the caller owns `rec`'s contents.
 * Errors: WAL_ECORRUPT (a corrupt record before the last segment, or a
 * valid record that breaks the log's rules; rec->errmsg names the file and
 * offset), WAL_EMISSING (a segment missing between two others, or entries
 * not joining the snapshot; rec->errmsg names the files), WAL_ELOCKED,
 * WAL_EINVAL (bad options), -ENOMEM, -errno from the file system.
 * Thread: any, one call at a time per directory. */
int wal_open(const char *dir, const wal_options *opt, wal **out,
             wal_recovered *rec);

/* Frees what wal_open put into `rec` (blob references, entries array) and
 * zeroes it.  Safe on a zeroed struct. */
void wal_recovered_free(wal_recovered *rec);

/* Appends one batch: the hard state `hs` (NULL: unchanged) and `n` entries
 * (`entries` may be NULL when n is 0).  The entries must be contiguous;
 * entries[0].index must be after the snapshot marker and at most the last
 * index + 1; an entry holds at most WAL_ENTRY_MAX bytes.  When it is at or
 * below the last index, the stored suffix from there is truncated first (Raft's
 * conflicting suffix, §5.3).  Nothing is durable until wal_sync returns 0.
 * Entries are borrowed for the call. Errors: WAL_EINVAL (indexes as above;
 * nothing written), -ENOMEM before anything was written (nothing changed),
 * WAL_EFAILED (failed earlier), -errno from a write (the WAL is then failed).
 * Thread: see top. */
int wal_append(wal *w, const raft_hard_state *hs, const raft_entry *entries,
               size_t n);

/* Makes everything appended so far durable with one fdatasync (none when
 * nothing was appended since the last sync).  Errors: WAL_EFAILED,
 * -errno from fdatasync (the WAL is then failed: the page cache may have
 * dropped the data, so only a reopen knows what is on disk). */
int wal_sync(wal *w);

/* Records that a snapshot at `index` with term `term` is durable in the
 * state machine, syncs that marker (with everything appended before it),
 * then deletes every segment whose entries all lie at or behind `index`
 * (never the current one).  Entries up to `index` are dropped; the ones
 * after it stay if the log holds `index` with `term`, otherwise the whole
 * log is dropped (Raft §7) and appends continue at index + 1.  A marker at
 * or behind the current one changes nothing on disk.
 * Errors: WAL_EFAILED, -errno (the WAL is then failed). */
int wal_release(wal *w, uint64_t index, uint64_t term);

/* The last stored index and its term (the snapshot marker's when the log
 * holds no entry after it). */
void wal_last(const wal *w, uint64_t *index, uint64_t *term);

/* Number of segment files currently in use. */
size_t wal_segment_count(const wal *w);

/* The last error message ("" if none). */
const char *wal_errmsg(const wal *w);

/* Syncs what was appended (unless the WAL failed) and frees everything.
 * Returns 0 or the sync's error; the WAL is closed either way.  NULL is a
 * no-op. */
int wal_close(wal *w);

#endif /* SKIFF_RAFT_WAL_H */
