/*
 * libFuzzer target: the server's input path up to dispatch.  Arbitrary
 * bytes are cut into reads at fuzzer-chosen points, fed to the frame
 * reader, and every whole frame's payload is decoded as a Request into an
 * arena, as skiffd does.  Nothing may crash, leak or read out of bounds,
 * and oversized frames must be skipped exactly.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_frame_reader r = {.max = 4096};
    cm_arena a = {.chunk_sz = 4096};
    ProtobufCAllocator pa = {cm_arena_pb_alloc, cm_arena_pb_free, &a};
    size_t pos = 0;
    /* The first byte picks the read size pattern. */
    size_t step = size ? (size_t)(data[0] % 64) + 1 : 1;
    while (pos < size) {
        size_t n = size - pos < step ? size - pos : step;
        if (cm_frame_feed(&r, data + pos, n))
            break;
        pos += n;
        uint64_t stream;
        const uint8_t *p;
        size_t len;
        int rc;
        while ((rc = cm_frame_next(&r, &stream, &p, &len)) != 0) {
            if (rc != 1)
                continue;
            Skiffpb__Request *q = skiffpb__request__unpack(&pa, len, p);
            if (q) {
                /* Re-encoding what was decoded must work and round-trip
                 * to the same size. */
                size_t m = skiffpb__request__get_packed_size(q);
                uint8_t *b = cm_arena_alloc(&a, m ? m : 1);
                if (b && skiffpb__request__pack(q, b) != m)
                    __builtin_trap();
            }
            cm_arena_reset(&a);
        }
    }
    cm_frame_reader_free(&r);
    cm_arena_free(&a);
    return 0;
}
