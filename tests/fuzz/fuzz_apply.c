/*
 * libFuzzer target: the store's apply path.  Each input is split into
 * commands (a length byte before each), applied at increasing indexes to a
 * real LMDB store (KV_SYNC_NONE, the same code as durable mode minus the
 * fsync).  Whatever the bytes, apply must refuse cleanly or apply, never
 * crash or fail the store, and the store must stay readable.
 */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"

static kv_store *store;
static uint64_t next_index = 1;
static char dir[64];

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

static void cleanup(void)
{
    kv_close(store);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void open_store(void)
{
    snprintf(dir, sizeof dir, "/tmp/skiff-fuzz-apply-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    kv_options o = {.sync = KV_SYNC_NONE, .quota_bytes = 64u << 20};
    if (kv_open(&store, dir, &o))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        open_store();
    cm_arena a = {0};
    size_t pos = 0;
    while (pos < size) {
        size_t n = data[pos++];
        if (n > size - pos)
            n = size - pos;
        kv_entry e = {next_index++, data + pos, n, 0};
        kv_result res;
        int rc = kv_apply(store, &e, &a, &res);
        if (rc)
            __builtin_trap(); /* bad input must never fail the store */
        pos += n;
        cm_arena_reset(&a);
    }
    Skiffpb__RangeRequest q = SKIFFPB__RANGE_REQUEST__INIT;
    q.key = (ProtobufCBinaryData){1, (uint8_t *)"\0"};
    q.range_end = (ProtobufCBinaryData){1, (uint8_t *)"\0"};
    q.limit = 10;
    Skiffpb__RangeResponse *r;
    if (kv_range(store, &q, &a, &r, NULL))
        __builtin_trap();
    cm_arena_free(&a);
    return 0;
}
