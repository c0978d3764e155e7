/*
 * The storage module's error table: messages and names generated from
 * KV_ERRNO_MAP, registered with common/ so cm_strerror can name them.
 * Messages follow etcd's wording where etcd has the same error.
 */
#include "kv.h"

static const char *kv_msg(int code)
{
    switch (code) {
#define XX(n, v, m)                                                         \
    case n:                                                                 \
        return m;
        KV_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

static const char *kv_name(int code)
{
    switch (code) {
#define XX(n, v, m)                                                         \
    case n:                                                                 \
        return #n;
        KV_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

void kv__err_register(void)
{
    cm_err_register(-2999, -2000, kv_msg, kv_name);
}

const char *kv_strerror(int code)
{
    const char *s = kv_msg(code);
    return s ? s : cm_strerror(code);
}

const char *kv_err_name(int code)
{
    const char *s = kv_name(code);
    return s ? s : cm_err_name(code);
}
