/*
 * Random command generator for crash and property tests.  Every command is
 * a pure function of (seed, i): keys from a small space so writes collide,
 * values of varying size, deletes of keys and ranges, transactions with
 * compares, leases granted, attached, kept alive and revoked, and
 * occasional compactions (some of which land on compacted or future
 * revisions and are refused, which is part of what is tested).
 */
#include "gen.h"

#include <stdio.h>
#include <string.h>

#define NKEYS 64

static void key_of(cm_rand *r, char *out, size_t cap)
{
    snprintf(out, cap, "k/%02u", (unsigned)cm_rand_below(r, NKEYS));
}

int gen_command(uint64_t seed, uint64_t i, cm_buf *out)
{
    cm_rand r;
    cm_rand_seed(&r, seed * 1000003u + i);
    char k1[16], k2[16], k3[16];
    static char val[2048];
    key_of(&r, k1, sizeof k1);
    key_of(&r, k2, sizeof k2);
    key_of(&r, k3, sizeof k3);
    size_t vlen = (size_t)cm_rand_below(&r, 300);
    if (cm_rand_below(&r, 20) == 0)
        vlen = 1000 + (size_t)cm_rand_below(&r, 1000);
    for (size_t j = 0; j < vlen; j++)
        val[j] = (char)('a' + (i + j) % 26);
    int64_t lease = (int64_t)cm_rand_below(&r, 8) + 1;

    Skiffpb__Command c = SKIFFPB__COMMAND__INIT;
    c.id = i;
    c.time_ms = 1000000 + (int64_t)i * 10;
    Skiffpb__PutRequest put = SKIFFPB__PUT_REQUEST__INIT;
    Skiffpb__DeleteRangeRequest del = SKIFFPB__DELETE_RANGE_REQUEST__INIT;
    Skiffpb__TxnRequest txn = SKIFFPB__TXN_REQUEST__INIT;
    Skiffpb__Compare cmp = SKIFFPB__COMPARE__INIT, *cmps[1] = {&cmp};
    Skiffpb__RequestOp ops[3], *sp[2], *fp[1];
    Skiffpb__PutRequest p2 = SKIFFPB__PUT_REQUEST__INIT,
                        p3 = SKIFFPB__PUT_REQUEST__INIT;
    Skiffpb__DeleteRangeRequest d2 = SKIFFPB__DELETE_RANGE_REQUEST__INIT;
    Skiffpb__CompactionRequest comp = SKIFFPB__COMPACTION_REQUEST__INIT;
    Skiffpb__LeaseGrantRequest grant = SKIFFPB__LEASE_GRANT_REQUEST__INIT;
    Skiffpb__LeaseRevokeRequest revoke = SKIFFPB__LEASE_REVOKE_REQUEST__INIT;
    Skiffpb__LeaseKeepAliveRequest ka = SKIFFPB__LEASE_KEEP_ALIVE_REQUEST__INIT;

    unsigned kind = (unsigned)cm_rand_below(&r, 100);
    if (kind < 50) {
        put.key = (ProtobufCBinaryData){strlen(k1), (uint8_t *)k1};
        put.value = (ProtobufCBinaryData){vlen, (uint8_t *)val};
        if (kind < 8)
            put.lease = lease;
        c.op_case = SKIFFPB__COMMAND__OP_PUT;
        c.put = &put;
    } else if (kind < 62) {
        del.key = (ProtobufCBinaryData){strlen(k1), (uint8_t *)k1};
        if (kind < 56 && strcmp(k1, k2) < 0)
            del.range_end = (ProtobufCBinaryData){strlen(k2), (uint8_t *)k2};
        c.op_case = SKIFFPB__COMMAND__OP_DELETE_RANGE;
        c.delete_range = &del;
    } else if (kind < 85) {
        cmp.key = (ProtobufCBinaryData){strlen(k1), (uint8_t *)k1};
        cmp.target = SKIFFPB__COMPARE__COMPARE_TARGET__VERSION;
        cmp.result = (Skiffpb__Compare__CompareResult)cm_rand_below(&r, 4);
        cmp.target_union_case = SKIFFPB__COMPARE__TARGET_UNION_VERSION;
        cmp.version = (int64_t)cm_rand_below(&r, 3);
        for (int j = 0; j < 3; j++)
            skiffpb__request_op__init(&ops[j]);
        p2.key = (ProtobufCBinaryData){strlen(k2), (uint8_t *)k2};
        p2.value = (ProtobufCBinaryData){vlen / 2, (uint8_t *)val};
        ops[0].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        ops[0].request_put = &p2;
        d2.key = (ProtobufCBinaryData){strlen(k3), (uint8_t *)k3};
        ops[1].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        ops[1].request_delete_range = &d2;
        p3.key = (ProtobufCBinaryData){strlen(k1), (uint8_t *)k1};
        p3.value = (ProtobufCBinaryData){3, (uint8_t *)"alt"};
        ops[2].request_case = SKIFFPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        ops[2].request_put = &p3;
        sp[0] = &ops[0];
        sp[1] = &ops[1];
        fp[0] = &ops[2];
        txn.n_compare = 1;
        txn.compare = cmps;
        txn.n_success = strcmp(k2, k3) == 0 ? 1 : 2;
        txn.success = sp;
        txn.n_failure = 1;
        txn.failure = fp;
        c.op_case = SKIFFPB__COMMAND__OP_TXN;
        c.txn = &txn;
    } else if (kind < 90) {
        grant.id = lease;
        grant.ttl = 5 + (int64_t)cm_rand_below(&r, 20);
        c.op_case = SKIFFPB__COMMAND__OP_LEASE_GRANT;
        c.lease_grant = &grant;
    } else if (kind < 94) {
        /* A client's revoke, or the leader's expiry (a no-op on a lease
         * not yet past its expiry at the command's time). */
        revoke.id = lease;
        if (kind < 92) {
            c.op_case = SKIFFPB__COMMAND__OP_LEASE_REVOKE;
            c.lease_revoke = &revoke;
        } else {
            c.op_case = SKIFFPB__COMMAND__OP_LEASE_EXPIRE;
            c.lease_expire = &revoke;
        }
    } else if (kind < 98) {
        ka.id = lease;
        c.op_case = SKIFFPB__COMMAND__OP_LEASE_KEEPALIVE;
        c.lease_keepalive = &ka;
    } else {
        /* Revisions grow a little slower than indexes; some of these are
         * future or already compacted, and are refused. */
        comp.revision = (int64_t)(i / 2 + cm_rand_below(&r, i / 2 + 1));
        c.op_case = SKIFFPB__COMMAND__OP_COMPACTION;
        c.compaction = &comp;
    }
    return kv_command_pack(&c, out);
}
