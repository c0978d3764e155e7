/*
 * Helpers for storage tests: a store in a fresh directory, and one-line
 * builders that pack a Command, apply it at the next index and return the
 * command's outcome.
 */
#ifndef SKIFF_KVT_H
#define SKIFF_KVT_H

#include "kv.h"

typedef struct kvt {
    kv_store *s;
    char dir[256];
    uint64_t index;
    int64_t now_ms;
    cm_arena arena;
    kv_result res; /* of the last apply; arena memory */
} kvt;

int kvt_open(kvt *t, const kv_options *o);
/* cmocka fixtures: a fresh store in *state with the leak-counting
 * allocator installed; teardown closes it and fails on leaked blocks. */
int kvt_setup(void **state);
int kvt_teardown(void **state);
/* Closes the store; keeps the directory (for reopen) if keep_dir. */
void kvt_close(kvt *t, int keep_dir);
int kvt_reopen(kvt *t, const kv_options *o);

/* Applies `c` at the next index: returns res.code, or the fatal code. */
int kvt_apply(kvt *t, Skiffpb__Command *c);
int kvt_put(kvt *t, const char *k, const char *v, int64_t lease);
int kvt_put_opts(kvt *t, Skiffpb__PutRequest *p);
int kvt_del(kvt *t, const char *k, const char *end);
int kvt_compact(kvt *t, int64_t rev);
int kvt_grant(kvt *t, int64_t id, int64_t ttl, int64_t *got);
int kvt_revoke(kvt *t, int64_t id);
int kvt_txn(kvt *t, Skiffpb__TxnRequest *txn);

/* Range [k, end) at rev; end NULL = single key, "\x00" via kvt_range_raw. */
int kvt_range(kvt *t, const char *k, const char *end, int64_t rev,
              Skiffpb__RangeResponse **out);
int64_t kvt_rev(kvt *t);

ProtobufCBinaryData kvt_bytes(const char *s);
/* Value of key as a NUL-terminated arena string, or NULL if absent. */
const char *kvt_get(kvt *t, const char *k);

#endif
