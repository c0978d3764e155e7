/*
 * Frame reader for skiff's wire protocol.  Bytes are appended as they
 * arrive; whole frames are handed out in place (no copy) and the consumed
 * prefix is dropped lazily, when it is more than half the buffer, so a
 * stream of small frames costs one memmove now and then.  A frame over the
 * limit is never buffered: its header is reported and its payload counted
 * down as it arrives.
 */
#include "cm.h"

#include <string.h>

static void compact(cm_frame_reader *r)
{
    if (r->off == 0)
        return;
    if (r->off == r->buf.len) {
        r->buf.len = r->off = 0;
        return;
    }
    if (r->off > r->buf.len / 2) {
        memmove(r->buf.base, r->buf.base + r->off, r->buf.len - r->off);
        r->buf.len -= r->off;
        r->off = 0;
    }
}

int cm_frame_feed(cm_frame_reader *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (r->skip_left) {
        size_t drop = n < r->skip_left ? n : (size_t)r->skip_left;
        r->skip_left -= drop;
        b += drop;
        n -= drop;
    }
    if (!n)
        return 0;
    compact(r);
    return cm_buf_append(&r->buf, b, n);
}

int cm_frame_next(cm_frame_reader *r, uint64_t *stream,
                  const uint8_t **payload, size_t *len)
{
    if (r->skip_left)
        return 0;
    size_t avail = r->buf.len - r->off;
    if (avail < CM_FRAME_HDR)
        return 0;
    const uint8_t *h = r->buf.base + r->off;
    uint32_t n = cm_be32_get(h);
    *stream = cm_be64_get(h + 4);
    *len = n;
    if (n > r->max) {
        r->off += CM_FRAME_HDR;
        size_t have = r->buf.len - r->off;
        size_t drop = have < n ? have : n;
        r->off += drop;
        r->skip_left = n - drop;
        compact(r);
        return CM_ETOOBIG;
    }
    if (avail < CM_FRAME_HDR + (size_t)n)
        return 0;
    *payload = h + CM_FRAME_HDR;
    r->off += CM_FRAME_HDR + n;
    return 1;
}

void cm_frame_reader_free(cm_frame_reader *r)
{
    cm_buf_free(&r->buf);
    r->off = 0;
    r->skip_left = 0;
}
