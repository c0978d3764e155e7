/*
 * Unit tests for api/objects/authn.c: identities from printed subjects and
 * from certificates built in memory, and the static token file, including
 * every malformed-record error with its file:line.
 */
#include <errno.h>

#include "obj_tu.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "authn.h"

static void assert_groups(const authn_user *u, const char *const *want,
                          size_t n)
{
    assert_int_equal(u->n_groups, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(u->groups[i], want[i]);
}

/* ---- users and subjects -------------------------------------------------- */

static void test_user_init(void **state)
{
    (void)state;
    authn_user u;
    const char *g[] = {"a", "b", "a"};
    assert_int_equal(authn_user_init(&u, "alice", g, 3), 0);
    assert_string_equal(u.name, "alice");
    assert_string_equal(u.uid, "");
    const char *want[] = {"a", "b", "system:authenticated"};
    assert_groups(&u, want, 3);
    assert_true(authn_user_in_group(&u, "b"));
    assert_false(authn_user_in_group(&u, "c"));
    assert_int_equal(authn_user_init(&u, "", NULL, 0), AUTHN_ENOIDENTITY);
    assert_int_equal(authn_user_init(&u, NULL, NULL, 0), AUTHN_ENOIDENTITY);
    char long_name[AUTHN_NAME_MAX + 1];
    memset(long_name, 'x', AUTHN_NAME_MAX);
    long_name[AUTHN_NAME_MAX] = '\0';
    assert_int_equal(authn_user_init(&u, long_name, NULL, 0), CM_ETOOBIG);
    assert_int_equal(authn_user_init(&u, "bad\xff", NULL, 0),
                     AUTHN_ENOIDENTITY);
    assert_int_equal(authn_user_init(&u, "caf\xc3\xa9", NULL, 0), 0);
    const char *many[AUTHN_GROUPS_MAX];
    char names[AUTHN_GROUPS_MAX][8];
    for (int i = 0; i < AUTHN_GROUPS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "g%d", i);
        many[i] = names[i];
    }
    /* system:authenticated needs one slot. */
    assert_int_equal(authn_user_init(&u, "x", many, AUTHN_GROUPS_MAX),
                     CM_ETOOBIG);
    assert_int_equal(authn_user_init(&u, "x", many, AUTHN_GROUPS_MAX - 1), 0);
    assert_string_equal(authn_strerror(AUTHN_EFORMAT), "malformed token file");
    assert_string_equal(authn_err_name(RBAC_EDENIED), "RBAC_EDENIED");
    assert_string_equal(authn_err_name(-1), "EUNKNOWN");
    authn_err_register();
    assert_string_equal(cm_err_name(AUTHN_EUNKNOWN_TOKEN),
                        "AUTHN_EUNKNOWN_TOKEN");
}

static void test_from_subject(void **state)
{
    (void)state;
    static const struct {
        const char *line, *name, *g1, *g2;
    } ok[] = {
        {"subject=CN = admin, O = system:masters", "admin", "system:masters",
         NULL},
        {"CN=admin,O=system:masters", "admin", "system:masters", NULL},
        {"/O=system:masters/CN=admin", "admin", "system:masters", NULL},
        {"subject=O = system:nodes, CN = system:node:w1", "system:node:w1",
         "system:nodes", NULL},
        {"CN=system:kube-scheduler", "system:kube-scheduler", NULL, NULL},
        {"C=US,O=a,O=b,OU=x,CN=u", "u", "a", "b"},
        {"O=a+O=b,CN=u", "u", "a", "b"},
        {"CN=Smith\\, John,O=x", "Smith, John", "x", NULL},
        {"CN = \"Smith, John\", O = x", "Smith, John", "x", NULL},
        {"CN=caf\\C3\\A9", "caf\xc3\xa9", NULL, NULL},
        {"CN=trail\\ ", "trail ", NULL, NULL},
        {"  subject: CN=u", "u", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        authn_user u;
        int rc = authn_from_subject(ok[i].line, &u);
        if (rc)
            fail_msg("%s: %s", ok[i].line, cm_err_name(rc));
        assert_string_equal(u.name, ok[i].name);
        size_t n = 0;
        if (ok[i].g1)
            assert_string_equal(u.groups[n++], ok[i].g1);
        if (ok[i].g2)
            assert_string_equal(u.groups[n++], ok[i].g2);
        assert_string_equal(u.groups[n++], "system:authenticated");
        assert_int_equal(u.n_groups, n);
    }
    static const char *const bad[] = {
        "O=system:masters",  /* no CN */
        "CN=a,CN=b",         /* two CNs */
        "CN=,O=x",           /* empty CN */
        "CN=a\\00b",         /* escaped NUL */
        "CN=\xff",           /* not UTF-8 */
        "garbage",           /* no '=' */
        "CN=\"unterminated", /* open quote */
        "=x,CN=a",           /* no attribute name */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        authn_user u;
        strcpy(u.name, "untouched");
        if (authn_from_subject(bad[i], &u) != AUTHN_ENOIDENTITY)
            fail_msg("accepted <<%s>>", bad[i]);
        assert_string_equal(u.name, "untouched");
    }
    authn_user u;
    assert_int_equal(authn_from_subject(NULL, &u), AUTHN_ENOIDENTITY);
    char line[AUTHN_NAME_MAX + 16];
    memset(line, 'x', sizeof line);
    memcpy(line, "CN=", 3);
    line[sizeof line - 1] = '\0';
    assert_int_equal(authn_from_subject(line, &u), CM_ETOOBIG);
}

/* A self-signed certificate with the given subject entries, built with
 * OpenSSL's API (no files). */
static X509 *mkcert(const char *const *fields, const char *const *values,
                    size_t n)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *nm = X509_get_subject_name(x);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(X509_NAME_add_entry_by_txt(
                             nm, fields[i], MBSTRING_UTF8,
                             (const unsigned char *)values[i], -1, -1, 0),
                         1);
    X509_set_issuer_name(x, nm);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    EVP_PKEY_free(k);
    return x;
}

static void test_from_cert(void **state)
{
    (void)state;
    const char *f1[] = {"C", "O", "O", "CN"};
    const char *v1[] = {"DE", "system:nodes", "ops", "system:node:w1"};
    X509 *x = mkcert(f1, v1, 4);
    authn_user u;
    assert_int_equal(authn_from_cert(x, &u), 0);
    assert_string_equal(u.name, "system:node:w1");
    const char *want[] = {"system:nodes", "ops", "system:authenticated"};
    assert_groups(&u, want, 3);
    X509_free(x);

    const char *f2[] = {"O"};
    const char *v2[] = {"system:masters"};
    x = mkcert(f2, v2, 1);
    assert_int_equal(authn_from_cert(x, &u), AUTHN_ENOIDENTITY);
    X509_free(x);

    const char *f3[] = {"CN", "CN"};
    const char *v3[] = {"a", "admin"};
    x = mkcert(f3, v3, 2);
    assert_int_equal(authn_from_cert(x, &u), AUTHN_ENOIDENTITY);
    X509_free(x);

    const char *f4[] = {"CN"};
    const char *v4[] = {"caf\xc3\xa9"};
    x = mkcert(f4, v4, 1);
    assert_int_equal(authn_from_cert(x, &u), 0);
    assert_string_equal(u.name, "caf\xc3\xa9");
    X509_free(x);
    assert_int_equal(authn_from_cert(NULL, &u), AUTHN_ENOIDENTITY);
}

/* ---- token file ---------------------------------------------------------- */

static authn_tokens *parse_ok(const char *text)
{
    authn_tokens *t;
    char msg[256];
    int rc = authn_tokens_parse(text, strlen(text), "tokens.csv", &t, msg,
                                sizeof msg);
    if (rc)
        fail_msg("%s", msg);
    return t;
}

static void test_tokens(void **state)
{
    (void)state;
    authn_tokens *t = parse_ok(
        "# token,user,uid,groups\n"
        "31ada4fd-adec-460c-809a-9e56ceb75269,admin,1,\"system:masters\"\n"
        "\n"
        "   \t\n"
        "s3cr3t,system:kube-scheduler,2\r\n"
        "n0de,system:node:w1,3,\"system:nodes, ops ,,extra\"\n"
        "q,\"we,ird\",4,\"a\"\"b\"\n"
        "x,y,5,g,ignored,fields\n"
        "nonl,z,6");
    assert_int_equal(authn_tokens_count(t), 6);
    authn_user u;
    assert_int_equal(
        authn_token_lookup(t, "31ada4fd-adec-460c-809a-9e56ceb75269", &u), 0);
    assert_string_equal(u.name, "admin");
    assert_string_equal(u.uid, "1");
    const char *g_admin[] = {"system:masters", "system:authenticated"};
    assert_groups(&u, g_admin, 2);
    assert_int_equal(authn_token_lookup(t, "s3cr3t", &u), 0);
    assert_string_equal(u.name, "system:kube-scheduler");
    const char *g_none[] = {"system:authenticated"};
    assert_groups(&u, g_none, 1);
    assert_int_equal(authn_token_lookup(t, "n0de", &u), 0);
    const char *g_node[] = {"system:nodes", "ops", "extra",
                            "system:authenticated"};
    assert_groups(&u, g_node, 4);
    assert_int_equal(authn_token_lookup(t, "q", &u), 0);
    assert_string_equal(u.name, "we,ird");
    assert_string_equal(u.groups[0], "a\"b");
    assert_int_equal(authn_token_lookup(t, "x", &u), 0);
    assert_string_equal(u.groups[0], "g");
    assert_int_equal(authn_token_lookup(t, "nonl", &u), 0);
    /* Unknown, prefix, longer, empty. */
    assert_int_equal(authn_token_lookup(t, "s3cr3", &u), AUTHN_EUNKNOWN_TOKEN);
    assert_int_equal(authn_token_lookup(t, "s3cr3t!", &u),
                     AUTHN_EUNKNOWN_TOKEN);
    assert_int_equal(authn_token_lookup(t, "", &u), AUTHN_EUNKNOWN_TOKEN);
    assert_int_equal(authn_token_lookup(t, NULL, &u), AUTHN_EUNKNOWN_TOKEN);
    assert_int_equal(authn_token_lookup(NULL, "q", &u), AUTHN_EUNKNOWN_TOKEN);
    authn_tokens_destroy(t);
    authn_tokens_destroy(NULL);
}

static void test_tokens_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a,b\n", "t.csv:1: want token,user,uid[,\"groups\"]"},
        {"ok,u,1\n\n# c\nonly-token\n",
         "t.csv:4: want token,user,uid[,\"groups\"]"},
        {",u,1\n", "t.csv:1: empty token"},
        {"t,,1\n", "t.csv:1: empty user name"},
        {"t,u,1,\"g1,g2\n", "t.csv:1: unterminated quoted field"},
        {"t,u\"x,1\n", "t.csv:1: bare \" in an unquoted field"},
        {"t,\"u\"x,1\n", "t.csv:1: extraneous text after a quoted field"},
        {"t,u,1\nt,v,2\n", "t.csv:2: duplicate token"},
        {"t,\xff,1\n", "t.csv:1: user or uid too long or not UTF-8"},
        {"t,u,1,\"g\xff\"\n", "t.csv:1: group name not UTF-8"},
        {"a,b,c,d,e,f,g,h,i\n", "t.csv:1: too many fields"},
        {"t,u,1,\"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p\"\n", /* 16 + 1 */
         "t.csv:1: too many groups"},
        {"t,u,1,\"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\"\n",
         "t.csv:1: too many groups, or a group name too long"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        authn_tokens *t = NULL;
        char msg[256];
        assert_int_equal(authn_tokens_parse(cases[i].text,
                                            strlen(cases[i].text), "t.csv", &t,
                                            msg, sizeof msg),
                         AUTHN_EFORMAT);
        assert_string_equal(msg, cases[i].want);
        assert_null(t);
    }
    /* A NUL byte inside a line. */
    const char nul[] = "t,u,1\nx,\0y,2\n";
    authn_tokens *t = NULL;
    char msg[256];
    assert_int_equal(
        authn_tokens_parse(nul, sizeof nul - 1, "t.csv", &t, msg, sizeof msg),
        AUTHN_EFORMAT);
    assert_string_equal(msg, "t.csv:2: NUL byte");
    /* Too long a user. */
    char line[AUTHN_NAME_MAX + 32];
    snprintf(line, sizeof line, "t,%0*d,1\n", AUTHN_NAME_MAX, 7);
    assert_int_equal(
        authn_tokens_parse(line, strlen(line), "t.csv", &t, msg, sizeof msg),
        AUTHN_EFORMAT);
    assert_string_equal(msg, "t.csv:1: user or uid too long or not UTF-8");
    /* No errmsg buffer is fine. */
    assert_int_equal(authn_tokens_parse("x\n", 2, NULL, &t, NULL, 0),
                     AUTHN_EFORMAT);
}

static void test_tokens_file_and_enomem(void **state)
{
    (void)state;
    char dir[256], path[300], msg[512];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/tokens.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("abc,alice,10,\"devs\"\nbad\n", f);
    fclose(f);
    authn_tokens *t;
    assert_int_equal(authn_tokens_load(path, &t, msg, sizeof msg),
                     AUTHN_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s:2: want token,user,uid[,\"groups\"]", path);
    assert_string_equal(msg, want);
    f = fopen(path, "w");
    fputs("abc,alice,10,\"devs\"\n", f);
    fclose(f);
    assert_int_equal(authn_tokens_load(path, &t, msg, sizeof msg), 0);
    authn_user u;
    assert_int_equal(authn_token_lookup(t, "abc", &u), 0);
    assert_string_equal(u.name, "alice");
    authn_tokens_destroy(t);
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    assert_int_equal(authn_tokens_load(path, &t, msg, sizeof msg), -ENOENT);
    tu_rmrf(dir);

    const char *text = "a,u1,1,\"g1,g2\"\nb,u2,2\nc,u3,3\n";
    long n = 0;
    int rc;
    do {
        tu_alloc_fail_after(n++);
        rc = authn_tokens_parse(text, strlen(text), "t", &t, msg, sizeof msg);
        tu_alloc_fail_after(-1);
        if (rc) {
            assert_int_equal(rc, -ENOMEM);
            assert_non_null(strstr(msg, ": out of memory"));
        }
    } while (rc);
    assert_int_equal(authn_tokens_count(t), 3);
    authn_tokens_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, otu_setup, otu_teardown)
        T(test_user_init),        T(test_from_subject),
        T(test_from_cert),        T(test_tokens),
        T(test_tokens_malformed), T(test_tokens_file_and_enomem),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
