/*
 * Growable byte buffers.  Growth doubles so appends are amortised O(1); a
 * failed growth leaves the buffer as it was, so callers can report -ENOMEM
 * and carry on.
 */
#include "cm.h"

#include <errno.h>
#include <string.h>

int cm_buf_reserve(cm_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = cm_realloc(b->base, cap);
    if (!p)
        return -ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

int cm_buf_append(cm_buf *b, const void *p, size_t n)
{
    int rc = cm_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    return 0;
}

int cm_buf_put_u8(cm_buf *b, uint8_t v)
{
    return cm_buf_append(b, &v, 1);
}

int cm_buf_put_be64(cm_buf *b, uint64_t v)
{
    uint8_t x[8];
    cm_be64_put(x, v);
    return cm_buf_append(b, x, 8);
}

int cm_buf_put_be32(cm_buf *b, uint32_t v)
{
    uint8_t x[4];
    cm_be32_put(x, v);
    return cm_buf_append(b, x, 4);
}

int cm_buf_put_be16(cm_buf *b, uint16_t v)
{
    uint8_t x[2];
    cm_be16_put(x, v);
    return cm_buf_append(b, x, 2);
}

void cm_buf_reset(cm_buf *b)
{
    b->len = 0;
}

void cm_buf_free(cm_buf *b)
{
    cm_free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
