/*
 * Unit tests for api/objects/quantity.c: a table of valid quantities with
 * their millis, values and canonical forms (every quantity the seed
 * manifests use is in it), malformed and out-of-range input, ordering, and
 * format/parse round trips.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cm.h"
#include "quantity.h"
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

static const struct valid_case {
    const char *in;
    int64_t milli;
    int64_t value;
    const char *canon;
} valid[] = {
    /* The seed manifests' quantities. */
    {"100m", 100, 1, "100m"},
    {"500m", 500, 1, "500m"},
    {"128Mi", 134217728000LL, 134217728, "128Mi"},
    {"256Mi", 268435456000LL, 268435456, "256Mi"},
    {"512Mi", 536870912000LL, 536870912, "512Mi"},
    {"1Gi", 1073741824000LL, 1073741824, "1Gi"},
    /* Plain numbers and fractions. */
    {"0", 0, 0, "0"},
    {"-0", 0, 0, "0"},
    {"+0.0", 0, 0, "0"},
    {"1", 1000, 1, "1"},
    {"+2", 2000, 2, "2"},
    {"0.5", 500, 1, "500m"},
    {".5", 500, 1, "500m"},
    {"1.", 1000, 1, "1"},
    {"1.25", 1250, 2, "1250m"},
    {"000123", 123000, 123, "123"},
    {"-1.5", -1500, -2, "-1500m"},
    {"1000m", 1000, 1, "1"},
    {"1500m", 1500, 2, "1500m"},
    {"2500000u", 2500, 3, "2500m"},
    {"1n", 1, 1, "1n"},
    {"1u", 1, 1, "1u"},
    {"0.1n", 1, 1, "1n"},
    {"1.0000000001", 1001, 2, "1000000001n"},
    {"-0.1m", -1, -1, "-100u"},
    {"12k", 12000000, 12000, "12k"},
    {"1000k", 1000000000, 1000000, "1M"},
    {"1.5M", 1500000000, 1500000, "1500k"},
    {"2G", 2000000000000LL, 2000000000, "2G"},
    {"3T", 3000000000000000LL, 3000000000000LL, "3T"},
    {"1P", 1000000000000000000LL, 1000000000000000LL, "1P"},
    {"9E", INT64_MAX, 9000000000000000000LL, "9E"},
    {"9223372036854775807", INT64_MAX, INT64_MAX, "9223372036854775807"},
    /* Binary SI. */
    {"1Ki", 1024000, 1024, "1Ki"},
    {"1.5Gi", 1610612736000LL, 1610612736, "1536Mi"},
    {"1536Mi", 1610612736000LL, 1610612736, "1536Mi"},
    {"2048Ki", 2097152000, 2097152, "2Mi"},
    {"1.5Ki", 1536000, 1536, "1536"},
    {"0.5Ki", 512000, 512, "512"},
    {"0.1Ki", 102400, 103, "102400m"},
    {"1Ti", 1099511627776000LL, 1099511627776LL, "1Ti"},
    {"1Pi", 1125899906842624000LL, 1125899906842624LL, "1Pi"},
    {"7Ei", INT64_MAX, 8070450532247928832LL, "7Ei"},
    {"0.000000001Ei", 1152921504607LL, 1152921505, "1152921504606846976n"},
    {"-1Mi", -1048576000, -1048576, "-1Mi"},
    /* Decimal exponents. */
    {"1e3", 1000000, 1000, "1e3"},
    {"1E3", 1000000, 1000, "1e3"},
    {"12e6", 12000000000LL, 12000000, "12e6"},
    {"1500e0", 1500000, 1500, "1500"},
    {"1e-3", 1, 1, "1e-3"},
    {"5E-2", 50, 1, "50e-3"},
    {"1e+3", 1000000, 1000, "1e3"},
    {"1e-999", 1, 1, "1e-9"},
    {"0e999", 0, 0, "0"},
    {"100000000000000000000m", INT64_MAX, 100000000000000000LL, "100P"},
};

static const struct invalid_case {
    const char *in;
    int err;
} invalid[] = {
    {"", OBJ_EQUANTITY_FORMAT},
    {"1.2.3", OBJ_EQUANTITY_FORMAT},
    {"12Qi", OBJ_EQUANTITY_FORMAT},
    {"--1", OBJ_EQUANTITY_FORMAT},
    {"+-1", OBJ_EQUANTITY_FORMAT},
    {"Mi", OBJ_EQUANTITY_FORMAT},
    {".", OBJ_EQUANTITY_FORMAT},
    {"-", OBJ_EQUANTITY_FORMAT},
    {"1 ", OBJ_EQUANTITY_FORMAT},
    {" 1", OBJ_EQUANTITY_FORMAT},
    {"1 Mi", OBJ_EQUANTITY_FORMAT},
    {"1mi", OBJ_EQUANTITY_FORMAT},
    {"1KI", OBJ_EQUANTITY_FORMAT},
    {"1K", OBJ_EQUANTITY_FORMAT},
    {"1Mii", OBJ_EQUANTITY_FORMAT},
    {"1e", OBJ_EQUANTITY_FORMAT},
    {"1e-", OBJ_EQUANTITY_FORMAT},
    {"1e3.5", OBJ_EQUANTITY_FORMAT},
    {"1ee3", OBJ_EQUANTITY_FORMAT},
    {"1i", OBJ_EQUANTITY_FORMAT},
    {"0x10", OBJ_EQUANTITY_FORMAT},
    {"1e999", OBJ_EQUANTITY_RANGE},
    {"1e99999999999999999999999", OBJ_EQUANTITY_RANGE},
    {"9223372036854775808", OBJ_EQUANTITY_RANGE},
    {"-9223372036854775808", OBJ_EQUANTITY_RANGE},
    {"9223372036854775807.1", OBJ_EQUANTITY_RANGE},
    {"99999999999999999999999", OBJ_EQUANTITY_RANGE},
    {"8Ei", OBJ_EQUANTITY_RANGE},
    {"100000000000000000000000m", OBJ_EQUANTITY_RANGE},
    {"10E", OBJ_EQUANTITY_RANGE},
    {"9223372036854775807Ki", OBJ_EQUANTITY_RANGE},
};

#define N(a) (sizeof(a) / sizeof *(a))

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(valid); i++) {
        const struct valid_case *c = &valid[i];
        obj_quantity q;
        char buf[OBJ_QUANTITY_STRMAX];
        int rc = obj_quantity_parse(c->in, &q);
        if (rc != 0)
            fail_msg("%s: %s", c->in, obj_err_name(rc));
        if (obj_quantity_milli(&q) != c->milli)
            fail_msg("%s: milli %lld want %lld", c->in,
                     (long long)obj_quantity_milli(&q), (long long)c->milli);
        if (obj_quantity_value(&q) != c->value)
            fail_msg("%s: value %lld want %lld", c->in,
                     (long long)obj_quantity_value(&q), (long long)c->value);
        assert_int_equal(obj_quantity_format(&q, buf, sizeof buf), 0);
        if (strcmp(buf, c->canon) != 0)
            fail_msg("%s: canonical %s want %s", c->in, buf, c->canon);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(invalid); i++) {
        obj_quantity q = {7, 7, OBJ_QF_BINARY_SI};
        int rc = obj_quantity_parse(invalid[i].in, &q);
        if (rc != invalid[i].err)
            fail_msg("\"%s\": got %d (%s) want %s", invalid[i].in, rc,
                     obj_err_name(rc), obj_err_name(invalid[i].err));
        /* out is untouched on failure. */
        assert_int_equal(q.whole, 7);
        assert_int_equal(q.nano, 7);
    }
    obj_quantity q;
    assert_int_equal(obj_quantity_parse(NULL, &q), OBJ_EQUANTITY_FORMAT);
}

static void test_long_inputs(void **state)
{
    (void)state;
    /* Many leading zeros and a long fraction cost nothing and stay exact. */
    char s[5000];
    memset(s, '0', sizeof s);
    s[sizeof s - 3] = '7';
    s[sizeof s - 2] = 'k';
    s[sizeof s - 1] = '\0';
    obj_quantity q;
    assert_int_equal(obj_quantity_parse(s, &q), 0);
    assert_int_equal(obj_quantity_value(&q), 7000);

    strcpy(s, "1.");
    memset(s + 2, '0', 4000);
    strcpy(s + 4002, "1Ei");
    assert_int_equal(obj_quantity_parse(s, &q), 0);
    assert_int_equal(q.whole, 1152921504606846976LL);
    assert_int_equal(q.nano, 1); /* the far digit rounds up */
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(obj_err_name(OBJ_EQUANTITY_FORMAT),
                        "OBJ_EQUANTITY_FORMAT");
    assert_string_equal(obj_err_name(OBJ_EQUANTITY_RANGE),
                        "OBJ_EQUANTITY_RANGE");
    assert_string_equal(obj_err_name(-5599), "EUNKNOWN");
    assert_string_equal(obj_strerror(-5599), "unknown error");
    obj_err_register();
    obj_err_register();
    assert_string_equal(cm_err_name(OBJ_EQUANTITY_RANGE),
                        "OBJ_EQUANTITY_RANGE");
    assert_string_equal(cm_strerror(OBJ_EQUANTITY_FORMAT),
                        obj_strerror(OBJ_EQUANTITY_FORMAT));
}

static int cmp_str(const char *a, const char *b)
{
    obj_quantity qa, qb;
    assert_int_equal(obj_quantity_parse(a, &qa), 0);
    assert_int_equal(obj_quantity_parse(b, &qb), 0);
    return obj_quantity_cmp(&qa, &qb);
}

static void test_cmp(void **state)
{
    (void)state;
    assert_int_equal(cmp_str("1", "1000m"), 0);
    assert_int_equal(cmp_str("1Ki", "1024"), 0);
    assert_int_equal(cmp_str("1k", "1e3"), 0);
    assert_int_equal(cmp_str("0.5", "500m"), 0);
    assert_int_equal(cmp_str("1.5Gi", "1536Mi"), 0);
    assert_int_equal(cmp_str("1Gi", "1G"), 1);
    assert_int_equal(cmp_str("100m", "500m"), -1);
    assert_int_equal(cmp_str("128Mi", "512Mi"), -1);
    assert_int_equal(cmp_str("-1", "0"), -1);
    assert_int_equal(cmp_str("-1.5", "-1.2"), -1);
    assert_int_equal(cmp_str("-0.5", "0.3"), -1);
    assert_int_equal(cmp_str("1n", "0"), 1);
    assert_int_equal(cmp_str("-0", "0"), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(valid); i++) {
        obj_quantity q, back;
        char buf[OBJ_QUANTITY_STRMAX];
        assert_int_equal(obj_quantity_parse(valid[i].in, &q), 0);
        assert_int_equal(obj_quantity_format(&q, buf, sizeof buf), 0);
        assert_int_equal(obj_quantity_parse(buf, &back), 0);
        if (obj_quantity_cmp(&q, &back) != 0)
            fail_msg("%s -> %s does not round-trip", valid[i].in, buf);
    }
    /* Seeded random values, including fractions and both signs. */
    cm_rand r;
    uint64_t seed = tu_seed(42);
    print_message("seed %llu\n", (unsigned long long)seed);
    cm_rand_seed(&r, seed);
    static const obj_qformat fmts[] = {OBJ_QF_DECIMAL_SI, OBJ_QF_BINARY_SI,
                                       OBJ_QF_DECIMAL_EXP};
    for (int i = 0; i < 10000; i++) {
        obj_quantity q, back;
        char buf[OBJ_QUANTITY_STRMAX];
        int shift = (int)cm_rand_below(&r, 63);
        q.whole = (int64_t)(cm_rand_next(&r) >> (1 + shift));
        q.nano = (int32_t)cm_rand_below(&r, 4) == 0
                     ? (int32_t)cm_rand_below(&r, 1000000000)
                     : 0;
        if (q.whole == INT64_MAX)
            q.nano = 0;
        if (cm_rand_below(&r, 2)) {
            q.whole = -q.whole;
            q.nano = -q.nano;
        }
        q.format = fmts[cm_rand_below(&r, 3)];
        assert_int_equal(obj_quantity_format(&q, buf, sizeof buf), 0);
        int rc = obj_quantity_parse(buf, &back);
        if (rc != 0)
            fail_msg("%s: %s", buf, obj_err_name(rc));
        if (obj_quantity_cmp(&q, &back) != 0)
            fail_msg("%lld/%d -> %s does not round-trip", (long long)q.whole,
                     q.nano, buf);
    }
}

/* Random strings over the grammar's alphabet: every one parses or fails
 * with a quantity code, and every success round-trips. */
static void test_random_strings(void **state)
{
    (void)state;
    static const char alpha[] = "0123456789.+-eEKMGTPimnuk ";
    cm_rand r;
    uint64_t seed = tu_seed(7);
    print_message("seed %llu\n", (unsigned long long)seed);
    cm_rand_seed(&r, seed);
    for (int i = 0; i < 200000; i++) {
        char s[32], buf[OBJ_QUANTITY_STRMAX];
        size_t len = (size_t)cm_rand_below(&r, 24);
        for (size_t j = 0; j < len; j++)
            s[j] = alpha[cm_rand_below(&r, sizeof alpha - 1)];
        s[len] = '\0';
        obj_quantity q, back;
        int rc = obj_quantity_parse(s, &q);
        if (rc == OBJ_EQUANTITY_FORMAT || rc == OBJ_EQUANTITY_RANGE)
            continue;
        if (rc != 0)
            fail_msg("\"%s\": unexpected %d", s, rc);
        assert_int_equal(obj_quantity_format(&q, buf, sizeof buf), 0);
        assert_int_equal(obj_quantity_parse(buf, &back), 0);
        if (obj_quantity_cmp(&q, &back) != 0)
            fail_msg("\"%s\" -> %s does not round-trip", s, buf);
    }
}

static void test_format_space(void **state)
{
    (void)state;
    obj_quantity q;
    char buf[8];
    assert_int_equal(obj_quantity_parse("1536Mi", &q), 0);
    assert_int_equal(obj_quantity_format(&q, buf, 6), CM_ETOOBIG);
    assert_string_equal(buf, "");
    assert_int_equal(obj_quantity_format(&q, buf, 7), 0);
    assert_string_equal(buf, "1536Mi");
    assert_int_equal(obj_quantity_format(&q, NULL, 0), CM_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_space, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
