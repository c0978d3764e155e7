/*
 * common/cm.h -- the pieces every skiff module stands on: error codes,
 * replaceable heap hooks, growable byte buffers, CRC32C and structured logs.
 *
 * Nothing here does I/O except the logger (stderr), so the pure raft core
 * may link this module.  All functions may be called from any thread unless
 * stated; the allocator hooks must be installed before other threads start.
 */
#ifndef SKIFF_CM_H
#define SKIFF_CM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors --------------------------------------------------------------
 * A fallible function returns 0 or a negative code.  System errors are
 * passed on as -errno.  Each module owns a block of codes, defined once in
 * an X-macro table that generates its enum, strerror and err_name:
 *   common -1000..-1999, storage -2000..-2999, watch -3000..-3999,
 *   raft -4000..-4999, api -5000..-5999, client -6000..-6999.
 */
#define CM_ERRNO_MAP(XX)                                                    \
    XX(CM_EFAILED, -1000, "object is in a failed state")                    \
    XX(CM_EINVAL, -1001, "invalid argument")                                \
    XX(CM_ETOOBIG, -1002, "value too large")                                \
    XX(CM_ECORRUPT, -1003, "data is corrupt")

enum cm_errno {
#define XX(name, val, msg) name = (val),
    CM_ERRNO_MAP(XX)
#undef XX
};

/* Message for any code: module codes registered with cm_err_register,
 * common codes, or strerror(-code) for system errors.  Never NULL; the
 * string is static. */
const char *cm_strerror(int code);
/* Symbolic name ("CM_EINVAL", "ENOENT", "KV_ECOMPACTED"); static, never
 * NULL. */
const char *cm_err_name(int code);

/* A module's lookup: returns NULL when the code is not its own. */
typedef const char *(*cm_err_lookup_fn)(int code);
/* Registers a module's message and name lookups for codes in [lo, hi]
 * (both negative, lo <= hi).  Idempotent; at most 16 modules.  Call before
 * threads start (modules do it from their init/open functions). */
void cm_err_register(int lo, int hi, cm_err_lookup_fn msg,
                     cm_err_lookup_fn name);

/* ---- memory ---------------------------------------------------------------
 * All heap use in skiff goes through these hooks so tests can count leaks
 * and inject allocation failures (like uv_replace_allocator). */
typedef struct cm_allocator {
    void *data;
    void *(*malloc)(void *data, size_t size);
    void *(*realloc)(void *data, void *ptr, size_t size);
    void (*free)(void *data, void *ptr);
} cm_allocator;

/* Installs hooks; NULL restores the libc ones.  The struct is copied. */
void cm_allocator_set(const cm_allocator *a);
void *cm_malloc(size_t size);
void *cm_calloc(size_t n, size_t size);   /* overflow-checked */
void *cm_realloc(void *ptr, size_t size);
void cm_free(void *ptr);
void *cm_memdup(const void *p, size_t n); /* NULL on ENOMEM */
char *cm_strdup(const char *s);

/* ---- buffers ---------------------------------------------------------------
 * A growable byte buffer owned by the caller's struct.  `base` is owned by
 * the buffer and freed by cm_buf_free.  A zeroed cm_buf is a valid empty
 * one. */
typedef struct cm_buf {
    uint8_t *base;
    size_t len;
    size_t cap;
} cm_buf;

/* Makes room for `extra` more bytes.  0 or -ENOMEM (buffer unchanged). */
int cm_buf_reserve(cm_buf *b, size_t extra);
int cm_buf_append(cm_buf *b, const void *p, size_t n);
int cm_buf_put_u8(cm_buf *b, uint8_t v);
int cm_buf_put_be64(cm_buf *b, uint64_t v);
int cm_buf_put_be32(cm_buf *b, uint32_t v);
int cm_buf_put_be16(cm_buf *b, uint16_t v);
void cm_buf_reset(cm_buf *b); /* len = 0, keeps memory */
void cm_buf_free(cm_buf *b);

/* Big-endian helpers for fixed-width fields (revisions sort bytewise). */
static inline void cm_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t cm_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void cm_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t cm_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}
static inline void cm_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline uint16_t cm_be16_get(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* ---- arenas -----------------------------------------------------------------
 * Per-request memory: allocations are bumped out of chunks and freed all at
 * once by cm_arena_reset/cm_arena_free.  A zeroed cm_arena is empty and
 * ready.  cm_arena_pb_alloc/cm_arena_pb_free have the shape protobuf-c's
 * ProtobufCAllocator wants (allocator_data = the arena), so decoding and
 * building replies cost no individual frees. */
typedef struct cm_arena_chunk cm_arena_chunk;
typedef struct cm_arena {
    cm_arena_chunk *head;
    size_t used;     /* bytes used in head */
    size_t total;    /* bytes handed out since the last reset */
    size_t chunk_sz; /* 0: 16 KiB */
} cm_arena;

/* 8-byte aligned memory valid until reset/free; NULL on ENOMEM. */
void *cm_arena_alloc(cm_arena *a, size_t n);
void *cm_arena_memdup(cm_arena *a, const void *p, size_t n);
/* Frees all but one chunk so a reused arena does not churn the heap. */
void cm_arena_reset(cm_arena *a);
void cm_arena_free(cm_arena *a);
void *cm_arena_pb_alloc(void *arena, size_t n);
void cm_arena_pb_free(void *arena, void *p); /* no-op */

/* ---- frames ----------------------------------------------------------------
 * skiff's wire framing (docs/protocol.md): a 12-byte header, u32 BE payload
 * length then u64 BE stream id, then the payload.  The reader accumulates
 * bytes from a stream socket and hands out whole frames; a frame whose
 * payload is over the reader's limit is reported once (CM_ETOOBIG, with its
 * stream id) and its payload skipped without being buffered, so the
 * connection survives it. */
#define CM_FRAME_HDR 12

static inline void cm_frame_header(uint8_t out[CM_FRAME_HDR], uint64_t stream,
                                   uint32_t len)
{
    cm_be32_put(out, len);
    cm_be64_put(out + 4, stream);
}

typedef struct cm_frame_reader {
    cm_buf buf;
    size_t off;         /* consumed bytes at the front of buf */
    size_t max;         /* largest payload accepted */
    uint64_t skip_left; /* payload bytes of an oversized frame to drop */
} cm_frame_reader;

/* Appends received bytes.  0 or -ENOMEM. */
int cm_frame_feed(cm_frame_reader *r, const void *p, size_t n);
/* Next whole frame: 1 and *stream, *payload (borrowed until the next feed
 * or next call), *len; 0 when more bytes are needed; CM_ETOOBIG for a frame
 * over `max` (*stream and *len set; its payload is being skipped). */
int cm_frame_next(cm_frame_reader *r, uint64_t *stream,
                  const uint8_t **payload, size_t *len);
void cm_frame_reader_free(cm_frame_reader *r);

/* ---- checksums ------------------------------------------------------------ */
/* CRC-32C (Castagnoli) of `n` bytes, continuing from `crc` (0 to start). */
uint32_t cm_crc32c(uint32_t crc, const void *p, size_t n);
/* The table-driven version whatever the processor (for tests that compare
 * it with cm_crc32c). */
uint32_t cm_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* ---- deterministic PRNG ----------------------------------------------------
 * xoshiro256** seeded through splitmix64: a seed replays exactly. */
typedef struct cm_rand {
    uint64_t s[4];
} cm_rand;
void cm_rand_seed(cm_rand *r, uint64_t seed);
uint64_t cm_rand_next(cm_rand *r);
/* Uniform in [0, n); n > 0. */
uint64_t cm_rand_below(cm_rand *r, uint64_t n);

/* ---- logging --------------------------------------------------------------
 * One line per event on stderr:
 *   2026-11-27T21:00:00.123Z info member=m1 msg="applied" index=7
 * Fields are given pre-formatted by the caller in `fmt`. */
enum cm_log_level {
    CM_LOG_DEBUG = 0,
    CM_LOG_INFO,
    CM_LOG_WARN,
    CM_LOG_ERROR,
    CM_LOG_NONE
};
void cm_log_set_level(enum cm_log_level lvl);
/* Parses "debug", "info", "warn", "error"; -CM_EINVAL otherwise. */
int cm_log_level_parse(const char *s, enum cm_log_level *out);
void cm_log_set_member(const char *name); /* copied, ≤ 63 bytes kept */
void cm_log(enum cm_log_level lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CM_DEBUG(msg, ...) cm_log(CM_LOG_DEBUG, msg, __VA_ARGS__)
#define CM_INFO(msg, ...) cm_log(CM_LOG_INFO, msg, __VA_ARGS__)
#define CM_WARN(msg, ...) cm_log(CM_LOG_WARN, msg, __VA_ARGS__)
#define CM_ERROR(msg, ...) cm_log(CM_LOG_ERROR, msg, __VA_ARGS__)

/* Wall-clock milliseconds since the Unix epoch, and monotonic
 * milliseconds.  Not for the raft core. */
int64_t cm_now_ms(void);
int64_t cm_mono_ms(void);

#endif /* SKIFF_CM_H */
