/*
 * Unit tests for common/: error naming, buffers (including allocation
 * failure), CRC32C against published check values, the PRNG's replay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cm.h"
#include "tu.h"

static int setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

static const char *fake_msg(int code)
{
    return code == -9001 ? "fake failure" : NULL;
}
static const char *fake_name(int code)
{
    return code == -9001 ? "FAKE_E1" : NULL;
}

static const char *nested_msg(int code)
{
    return code == -9002 ? "nested failure" : NULL;
}
static const char *nested_name(int code)
{
    return code == -9002 ? "NESTED_E2" : NULL;
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(cm_err_name(CM_EINVAL), "CM_EINVAL");
    assert_string_equal(cm_strerror(CM_EINVAL), "invalid argument");
    assert_string_equal(cm_err_name(-ENOENT), "ENOENT");
    assert_string_equal(cm_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(cm_strerror(-9001), "unknown error");
    cm_err_register(-9999, -9000, fake_msg, fake_name);
    assert_string_equal(cm_strerror(-9001), "fake failure");
    assert_string_equal(cm_err_name(-9001), "FAKE_E1");
    assert_string_equal(cm_err_name(-9002), "EUNKNOWN");
    /* A nested block registered later still gets its names. */
    cm_err_register(-9099, -9002, nested_msg, nested_name);
    assert_string_equal(cm_err_name(-9002), "NESTED_E2");
    assert_string_equal(cm_strerror(-9002), "nested failure");
    assert_string_equal(cm_err_name(-9001), "FAKE_E1");
}

static void test_buf(void **state)
{
    (void)state;
    cm_buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cm_buf_put_be32(&b, (uint32_t)i), 0);
    assert_int_equal(b.len, 4000);
    assert_int_equal(cm_be32_get(b.base + 4 * 999), 999);
    assert_int_equal(cm_buf_put_be64(&b, 0x0102030405060708ull), 0);
    assert_int_equal(cm_be64_get(b.base + 4000), 0x0102030405060708ull);
    /* A failed growth leaves the buffer intact. */
    size_t len = b.len, cap = b.cap;
    tu_alloc_fail_after(0);
    assert_int_equal(cm_buf_reserve(&b, cap), -ENOMEM);
    assert_int_equal(b.len, len);
    assert_int_equal(cm_be32_get(b.base + 4 * 10), 10);
    tu_alloc_fail_after(-1);
    cm_buf_free(&b);
    assert_null(b.base);
}

static void test_crc32c(void **state)
{
    (void)state;
    /* RFC 3720 check value for "123456789". */
    assert_int_equal(cm_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(cm_crc32c(0, zeros, 32), 0x8A9136AAu);
    /* Incremental equals one-shot. */
    uint32_t c = cm_crc32c(0, "12345", 5);
    assert_int_equal(cm_crc32c(c, "6789", 4), 0xE3069283u);
    assert_int_equal(cm_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    /* The hardware path (where there is one) and the tables agree on
     * every length and alignment. */
    uint8_t buf[300];
    cm_rand r;
    cm_rand_seed(&r, 7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)cm_rand_next(&r);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 7)
            assert_int_equal(cm_crc32c(5, buf + off, n),
                             cm_crc32c_sw(5, buf + off, n));
}

static void test_rand_replays(void **state)
{
    (void)state;
    cm_rand a, b;
    cm_rand_seed(&a, 42);
    cm_rand_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cm_rand_next(&a), cm_rand_next(&b));
    for (int i = 0; i < 1000; i++)
        assert_true(cm_rand_below(&a, 7) < 7);
}

static void test_log_level(void **state)
{
    (void)state;
    enum cm_log_level l;
    assert_int_equal(cm_log_level_parse("warn", &l), 0);
    assert_int_equal(l, CM_LOG_WARN);
    assert_int_equal(cm_log_level_parse("loud", &l), CM_EINVAL);
}

static void test_frames(void **state)
{
    (void)state;
    cm_frame_reader r = {.max = 16};
    uint8_t wire[256];
    size_t n = 0;
    /* frame 1: stream 7, "hello"; frame 2: stream 9, 40 bytes (too big);
     * frame 3: stream 11, empty payload. */
    cm_frame_header(wire + n, 7, 5);
    memcpy(wire + n + CM_FRAME_HDR, "hello", 5);
    n += CM_FRAME_HDR + 5;
    cm_frame_header(wire + n, 9, 40);
    memset(wire + n + CM_FRAME_HDR, 'x', 40);
    n += CM_FRAME_HDR + 40;
    cm_frame_header(wire + n, 11, 0);
    n += CM_FRAME_HDR;
    /* Feed one byte at a time: framing must not depend on read sizes. */
    uint64_t stream;
    const uint8_t *p;
    size_t len;
    int got = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cm_frame_feed(&r, wire + i, 1), 0);
        int rc;
        while ((rc = cm_frame_next(&r, &stream, &p, &len)) != 0) {
            if (rc == CM_ETOOBIG) {
                assert_int_equal(stream, 9);
                assert_int_equal(len, 40);
                big++;
                continue;
            }
            assert_int_equal(rc, 1);
            if (got == 0) {
                assert_int_equal(stream, 7);
                assert_int_equal(len, 5);
                assert_memory_equal(p, "hello", 5);
            } else {
                assert_int_equal(stream, 11);
                assert_int_equal(len, 0);
            }
            got++;
        }
    }
    assert_int_equal(got, 2);
    assert_int_equal(big, 1);
    /* All at once gives the same. */
    cm_frame_reader_free(&r);
    assert_int_equal(cm_frame_feed(&r, wire, n), 0);
    assert_int_equal(cm_frame_next(&r, &stream, &p, &len), 1);
    assert_int_equal(cm_frame_next(&r, &stream, &p, &len), CM_ETOOBIG);
    assert_int_equal(cm_frame_next(&r, &stream, &p, &len), 1);
    assert_int_equal(stream, 11);
    assert_int_equal(cm_frame_next(&r, &stream, &p, &len), 0);
    cm_frame_reader_free(&r);
}

static void test_arena(void **state)
{
    (void)state;
    cm_arena a = {.chunk_sz = 128};
    char *p = cm_arena_alloc(&a, 10);
    char *q = cm_arena_alloc(&a, 1000); /* bigger than a chunk */
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % 8, 0);
    memset(q, 1, 1000);
    cm_arena_reset(&a);
    assert_int_equal(tu_alloc_outstanding(), 1); /* one chunk kept */
    tu_alloc_fail_after(0);
    assert_null(cm_arena_alloc(&a, 4096));
    tu_alloc_fail_after(-1);
    cm_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc32c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rand_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arena, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
