/*
 * skiffd with TLS: certificates made by the openssl command for each run
 * (a CA, a server certificate for 127.0.0.1, a client certificate, and a
 * client certificate from another CA), and a blocking OpenSSL client that
 * speaks the raw protocol.  Checks: server-only TLS serves requests;
 * mutual TLS serves a client with a good certificate and refuses one
 * without a certificate or with a certificate from the wrong CA; a plain
 * TCP client gets nothing from a TLS port; the server survives all of it.
 *
 *   server_tls SKIFFD_BINARY
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"
#include "tu.h"

static const char *skiffd;
static char certs[256];

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void make_certs(void)
{
    assert_int_equal(tu_tmpdir(certs, sizeof certs), 0);
    const char *d = certs;
    int rc = sh(
        "cd %s && exec >log 2>&1 && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca "
        "-keyout ca.key -out ca.crt && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other "
        "-keyout other.key -out other.crt && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=skiffd "
        "-keyout server.key -out server.csr && "
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile san.ext -out server.crt && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=alice "
        "-keyout client.key -out client.csr && "
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
        "-CAcreateserial -days 2 -out client.crt && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=mallory "
        "-keyout bad.key -out bad.csr && "
        "openssl x509 -req -in bad.csr -CA other.crt -CAkey other.key "
        "-CAcreateserial -days 2 -out bad.crt",
        d);
    if (rc)
        fail_msg("openssl could not make test certificates (see %s/log)", d);
}

/* A TLS client: 0 and *out on a completed handshake. */
static SSL *tls_connect(int port, const char *cert, const char *key)
{
    char path[512];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    snprintf(path, sizeof path, "%s/ca.crt", certs);
    SSL_CTX_load_verify_locations(ctx, path, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert) {
        char kp[512];
        snprintf(path, sizeof path, "%s/%s", certs, cert);
        snprintf(kp, sizeof kp, "%s/%s", certs, key);
        assert_int_equal(SSL_CTX_use_certificate_file(ctx, path,
                                                      SSL_FILETYPE_PEM),
                         1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, kp,
                                                     SSL_FILETYPE_PEM),
                         1);
    }
    int fd = cli_connect(port);
    assert_true(fd >= 0);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "127.0.0.1");
    if (SSL_connect(ssl) != 1) {
        close(fd);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void tls_close(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_free(ssl);
    close(fd);
}

static int tls_write_all(SSL *ssl, const uint8_t *p, size_t n)
{
    while (n) {
        int w = SSL_write(ssl, p, (int)n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int tls_read_all(SSL *ssl, uint8_t *p, size_t n)
{
    while (n) {
        int r = SSL_read(ssl, p, (int)n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends a put and reads its reply: 0 on success, -1 if the connection
 * failed anywhere. */
static int tls_put(SSL *ssl, const char *k, const char *v)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = bin_of(k);
    p.value = bin_of(v);
    r.body_case = SKIFFPB__REQUEST__BODY_PUT;
    r.put = &p;
    size_t n = skiffpb__request__get_packed_size(&r);
    uint8_t buf[256];
    cm_frame_header(buf, 1, (uint32_t)n);
    skiffpb__request__pack(&r, buf + CM_FRAME_HDR);
    if (tls_write_all(ssl, buf, CM_FRAME_HDR + n))
        return -1;
    uint8_t h[CM_FRAME_HDR];
    if (tls_read_all(ssl, h, CM_FRAME_HDR))
        return -1;
    uint32_t len = cm_be32_get(h);
    uint8_t *b = malloc(len ? len : 1);
    if (tls_read_all(ssl, b, len)) {
        free(b);
        return -1;
    }
    Skiffpb__Response *resp = skiffpb__response__unpack(NULL, len, b);
    free(b);
    int ok = resp && !resp->error && resp->put;
    if (resp)
        skiffpb__response__free_unpacked(resp, NULL);
    return ok ? 0 : -1;
}

static void spawn_tls(srv *s, int mutual)
{
    static char cert[512], key[512], ca[512];
    snprintf(cert, sizeof cert, "%s/server.crt", certs);
    snprintf(key, sizeof key, "%s/server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    const char *extra[] = {"--cert-file", cert, "--key-file", key,
                           "--trusted-ca-file", ca,
                           mutual ? "--client-cert-auth" : NULL, NULL};
    assert_int_equal(srv_spawn(s, skiffd, 0, extra), 0);
}

static void test_server_tls(void **state)
{
    (void)state;
    srv s = {0};
    spawn_tls(&s, 0);
    SSL *ssl = tls_connect(s.port, NULL, NULL);
    assert_non_null(ssl);
    assert_int_equal(tls_put(ssl, "secret", "1"), 0);
    assert_int_equal(tls_put(ssl, "secret", "2"), 0);
    tls_close(ssl);
    /* Plain TCP to a TLS port: no valid response ever comes back. */
    int fd = cli_connect(s.port);
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__StatusRequest st = SKIFFPB__STATUS_REQUEST__INIT;
    r.body_case = SKIFFPB__REQUEST__BODY_STATUS;
    r.status = &st;
    cli_send(fd, 1, &r);
    uint64_t sid;
    Skiffpb__Response *resp;
    assert_true(cli_recv(fd, &sid, &resp, 5000) != 0);
    close(fd);
    /* Still serving TLS clients. */
    ssl = tls_connect(s.port, NULL, NULL);
    assert_non_null(ssl);
    assert_int_equal(tls_put(ssl, "after", "plain"), 0);
    tls_close(ssl);
    srv_cleanup(&s);
}

static void test_mutual_tls(void **state)
{
    (void)state;
    srv s = {0};
    spawn_tls(&s, 1);
    SSL *ssl = tls_connect(s.port, "client.crt", "client.key");
    assert_non_null(ssl);
    assert_int_equal(tls_put(ssl, "k", "v"), 0);
    tls_close(ssl);
    /* No client certificate: refused (at the handshake or the first
     * read, depending on the TLS version). */
    ssl = tls_connect(s.port, NULL, NULL);
    if (ssl) {
        assert_int_equal(tls_put(ssl, "k", "v"), -1);
        tls_close(ssl);
    }
    /* A certificate from another CA: refused. */
    ssl = tls_connect(s.port, "bad.crt", "bad.key");
    if (ssl) {
        assert_int_equal(tls_put(ssl, "k", "v"), -1);
        tls_close(ssl);
    }
    /* The good client still works. */
    ssl = tls_connect(s.port, "client.crt", "client.key");
    assert_non_null(ssl);
    assert_int_equal(tls_put(ssl, "k", "v2"), 0);
    tls_close(ssl);
    srv_cleanup(&s);
}

static void test_bad_tls_config(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--cert-file", "/nonexistent.crt", "--key-file",
                           "/nonexistent.key", NULL};
    /* The server must refuse to start, not serve plain text. */
    assert_int_equal(srv_spawn(&s, skiffd, 0, extra), -1);
    srv_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    skiffd = argv[1];
    signal(SIGPIPE, SIG_IGN);
    make_certs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_tls),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_bad_tls_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmrf(certs);
    return rc;
}
