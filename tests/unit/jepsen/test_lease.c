/*
 * Lease checker: keys vanish only after revoke or expiry, kept-alive
 * leases survive, revoked leases stay dead.  Times are seconds in ns; all
 * leases have a 5 s TTL (histories/lease/).
 */
#include "jt.h"

static const jt_case cases[] = {
    {"lease/valid.jsonl", JC_VALID, NULL},
    {"lease/expired-valid.jsonl", JC_VALID, NULL},
    {"lease/deleted-valid.jsonl", JC_VALID, NULL},
    {"lease/key-lost-invalid.jsonl", JC_INVALID, "lease-key-lost"},
    {"lease/outlived-invalid.jsonl", JC_INVALID, "key-outlived-lease"},
    {"lease/lease-lost-invalid.jsonl", JC_INVALID, "lease-lost"},
    {"lease/keepalive-after-revoke-invalid.jsonl", JC_INVALID,
     "keepalive-after-revoke"},
};

static void test_case(void **state)
{
    jt_case_run(jc_check_lease, *state);
}

int main(void)
{
    struct CMUnitTest tests[sizeof cases / sizeof cases[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tests[n] = (struct CMUnitTest)JT_CASE_TEST(test_case, &cases[i]);
        tests[n++].name = cases[i].file;
    }
    return _cmocka_run_group_tests("jepsen_checker_lease", tests, n, NULL,
                                   NULL);
}
