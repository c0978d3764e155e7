/*
 * Test of deploy/make-certs.sh: runs it into a fresh directory and checks
 * every certificate with OpenSSL: it chains to the CA, carries the subject
 * that authn_from_cert turns into the intended user and groups, the right
 * extended key usage and (members) SANs; keys are private; a second run
 * keeps everything.  Skipped when the openssl command is missing.
 */
#include "obj_tu.h"

#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authn.h"

static X509 *load(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.crt", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("missing %s", path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void check_chain(X509_STORE *st, X509 *x)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, x, NULL), 1);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
}

static void check_user(X509 *x, const char *name, const char *group)
{
    authn_user u;
    assert_int_equal(authn_from_cert(x, &u), 0);
    assert_string_equal(u.name, name);
    size_t n = 0;
    if (group)
        assert_string_equal(u.groups[n++], group);
    assert_string_equal(u.groups[n++], "system:authenticated");
    assert_int_equal(u.n_groups, n);
}

static void check_key_private(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
}

static int run(const char *dir, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sh '%s' -d '%s' --ip 127.0.0.1 --ip 10.1.2.3 --member m1 "
             "--member m2 --node w1 w2 2>&1",
             MAKE_CERTS, dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static void test_make_certs(void **state)
{
    (void)state;
    if (system("openssl version >/dev/null 2>&1") != 0)
        skip();
    char dir[256], out[8192];
    assert_int_equal(tu_tmpdir(dir, sizeof dir), 0);
    int rc = run(dir, out, sizeof out);
    if (rc)
        fail_msg("make-certs.sh failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "made"));
    assert_null(strstr(out, "kept"));

    X509 *ca = load(dir, "ca");
    X509_STORE *st = X509_STORE_new();
    assert_non_null(st);
    assert_int_equal(X509_STORE_add_cert(st, ca), 1);

    static const struct {
        const char *file, *user, *group;
        bool server;
    } certs[] = {
        {"m1", "m1", "system:members", true},
        {"m2", "m2", "system:members", true},
        {"admin", "admin", "system:masters", false},
        {"kube-scheduler", "system:kube-scheduler", NULL, false},
        {"kube-controller-manager", "system:kube-controller-manager", NULL,
         false},
        {"node-w1", "system:node:w1", "system:nodes", false},
        {"node-w2", "system:node:w2", "system:nodes", false},
    };
    for (size_t i = 0; i < sizeof certs / sizeof *certs; i++) {
        X509 *x = load(dir, certs[i].file);
        check_chain(st, x);
        check_user(x, certs[i].user, certs[i].group);
        check_key_private(dir, certs[i].file);
        assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
        if (certs[i].server) {
            assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
            assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
            assert_int_equal(X509_check_ip_asc(x, "10.1.2.3", 0), 1);
            assert_int_equal(X509_check_ip_asc(x, "10.9.9.9", 0), 0);
            assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
            assert_int_equal(X509_check_host(x, certs[i].file, 0, 0, NULL), 1);
        } else {
            /* Client certificates cannot serve. */
            assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
        }
        X509_free(x);
    }
    check_key_private(dir, "ca");

    /* The openssl command agrees. */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "openssl verify -CAfile '%s/ca.crt' '%s/admin.crt' "
             "'%s/node-w1.crt' '%s/m1.crt' >/dev/null 2>&1",
             dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);

    /* A second run keeps every file. */
    size_t len;
    char path[512];
    snprintf(path, sizeof path, "%s/admin.crt", dir);
    char *before = NULL;
    {
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        before = calloc(1, 8192);
        len = fread(before, 1, 8191, f);
        fclose(f);
    }
    rc = run(dir, out, sizeof out);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "made"));
    assert_non_null(strstr(out, "kept"));
    FILE *f = fopen(path, "rb");
    char after[8192] = {0};
    assert_int_equal(fread(after, 1, sizeof after - 1, f), len);
    fclose(f);
    assert_memory_equal(before, after, len);
    free(before);

    X509_STORE_free(st);
    X509_free(ca);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_make_certs, otu_setup,
                                        otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
