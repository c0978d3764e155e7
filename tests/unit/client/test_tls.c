/*
 * common/tls.c (cm_tls) on its own: a server-mode and a client-mode
 * cm_tls over a loopback TCP pair on one libuv loop.  Checks the
 * handshake, data both ways (including bytes written before the handshake
 * ends and a payload larger than one TLS record), the peer certificate's
 * CN on the server side, a required client certificate being enforced,
 * and a client refusing a server its CA did not sign.  Certificates are
 * made with the openssl command in a temporary directory.
 */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cm.h"
#include "tls.h"
#include "tu.h"

#define BIG (200 * 1024)

typedef struct side {
    uv_tcp_t tcp;
    cm_tls *tls;
    int hs_status;
    int hs_done;
    int read_err;
    cm_buf got;
} side;

typedef struct fx {
    char dir[256];
    char ca[300], srv_cert[300], srv_key[300], cli_cert[300], cli_key[300];
    uv_loop_t loop;
    uv_tcp_t listener;
    side srv, cli;
    uv_connect_t creq;
    cm_tls_ctx *sctx, *cctx;
    int connected;
} fx;

static int setup(void **state)
{
    tu_alloc_install();
    fx *f = calloc(1, sizeof *f);
    if (tu_tmpdir(f->dir, sizeof f->dir))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
             "-subj /CN=test-ca -keyout ca.key -out ca.pem >/dev/null 2>&1 "
             "&& openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
             "-subj /CN=other-ca -keyout other.key -out other.pem "
             ">/dev/null 2>&1 "
             "&& openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
             "-keyout srv.key -out srv.csr >/dev/null 2>&1 "
             "&& printf 'subjectAltName=IP:127.0.0.1\\n' > ext "
             "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 2 -extfile ext -out srv.pem "
             ">/dev/null 2>&1 "
             "&& openssl req -newkey rsa:2048 -nodes -subj /CN=alice "
             "-keyout cli.key -out cli.csr >/dev/null 2>&1 "
             "&& openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 2 -out cli.pem >/dev/null 2>&1",
             f->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl failed: %s\n", cmd);
        return -1;
    }
    snprintf(f->ca, sizeof f->ca, "%s/ca.pem", f->dir);
    snprintf(f->srv_cert, sizeof f->srv_cert, "%s/srv.pem", f->dir);
    snprintf(f->srv_key, sizeof f->srv_key, "%s/srv.key", f->dir);
    snprintf(f->cli_cert, sizeof f->cli_cert, "%s/cli.pem", f->dir);
    snprintf(f->cli_key, sizeof f->cli_key, "%s/cli.key", f->dir);
    uv_loop_init(&f->loop);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    cm_tls_ctx_destroy(f->sctx);
    cm_tls_ctx_destroy(f->cctx);
    int busy = uv_loop_close(&f->loop);
    cm_buf_free(&f->srv.got);
    cm_buf_free(&f->cli.got);
    tu_rmrf(f->dir);
    free(f);
    long left = tu_alloc_uninstall();
    if (left)
        fprintf(stderr, "leaked %ld blocks\n", left);
    return left || busy ? -1 : 0;
}

static side *side_of(cm_tls *t)
{
    return cm_tls_data(t);
}

static void on_hs(cm_tls *t, int status)
{
    side *s = side_of(t);
    s->hs_done = 1;
    s->hs_status = status;
}

static void on_rd(cm_tls *t, ssize_t n, const char *buf)
{
    side *s = side_of(t);
    if (n < 0) {
        s->read_err = (int)n;
        return;
    }
    assert_int_equal(cm_buf_append(&s->got, buf, (size_t)n), 0);
}

static void on_accept(uv_stream_t *l, int status)
{
    fx *f = l->data;
    assert_int_equal(status, 0);
    uv_tcp_init(&f->loop, &f->srv.tcp);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&f->srv.tcp), 0);
    assert_int_equal(cm_tls_create(&f->srv.tls, f->sctx,
                                   (uv_stream_t *)&f->srv.tcp, NULL, &f->srv),
                     0);
    assert_int_equal(cm_tls_start(f->srv.tls, on_hs, on_rd), 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    fx *f = req->data;
    assert_int_equal(status, 0);
    assert_int_equal(cm_tls_create(&f->cli.tls, f->cctx,
                                   (uv_stream_t *)&f->cli.tcp, "127.0.0.1",
                                   &f->cli),
                     0);
    assert_int_equal(cm_tls_start(f->cli.tls, on_hs, on_rd), 0);
    /* Written before the handshake completes: must still arrive. */
    assert_int_equal(cm_tls_write(f->cli.tls, "early", 5), 0);
    f->connected = 1;
}

/* Listens, connects, and runs the loop until both handshakes ended. */
static void pair(fx *f)
{
    uv_tcp_init(&f->loop, &f->listener);
    f->listener.data = f;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, on_accept), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&f->listener, (struct sockaddr *)&sa, &len);
    uv_tcp_init(&f->loop, &f->cli.tcp);
    f->creq.data = f;
    assert_int_equal(uv_tcp_connect(&f->creq, &f->cli.tcp,
                                    (struct sockaddr *)&sa, on_connect),
                     0);
    while (!(f->srv.hs_done && f->cli.hs_done) && f->srv.hs_status == 0 &&
           f->cli.hs_status == 0 && !f->srv.read_err && !f->cli.read_err)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void close_all(fx *f)
{
    cm_tls_destroy(f->srv.tls);
    cm_tls_destroy(f->cli.tls);
    f->srv.tls = f->cli.tls = NULL;
    uv_close((uv_handle_t *)&f->listener, NULL);
    if (f->srv.tcp.type == UV_TCP)
        uv_close((uv_handle_t *)&f->srv.tcp, NULL);
    uv_close((uv_handle_t *)&f->cli.tcp, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void test_mutual(void **state)
{
    fx *f = *state;
    char err[256];
    cm_tls_config sc = {.server = 1,
                        .ca_file = f->ca,
                        .cert_file = f->srv_cert,
                        .key_file = f->srv_key,
                        .require_client_cert = 1};
    cm_tls_config cc = {
        .ca_file = f->ca, .cert_file = f->cli_cert, .key_file = f->cli_key};
    assert_int_equal(cm_tls_ctx_create(&f->sctx, &sc, err, sizeof err), 0);
    assert_int_equal(cm_tls_ctx_create(&f->cctx, &cc, err, sizeof err), 0);
    pair(f);
    assert_int_equal(f->srv.hs_status, 0);
    assert_int_equal(f->cli.hs_status, 0);
    char cn[64];
    assert_int_equal(cm_tls_peer_cn(f->srv.tls, cn, sizeof cn), 0);
    assert_string_equal(cn, "alice");
    assert_int_equal(cm_tls_peer_cn(f->srv.tls, cn, 3), -ENOSPC);
    assert_int_equal(cm_tls_peer_cn(f->cli.tls, cn, sizeof cn), 0);
    assert_string_equal(cn, "localhost");

    /* Server to client: a payload spanning many records. */
    char *big = malloc(BIG);
    for (int i = 0; i < BIG; i++)
        big[i] = (char)(i * 7);
    assert_int_equal(cm_tls_write(f->srv.tls, big, BIG), 0);
    while (f->cli.got.len < BIG && !f->cli.read_err)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->cli.got.len, BIG);
    assert_memory_equal(f->cli.got.base, big, BIG);
    free(big);
    while (f->srv.got.len < 5 && !f->srv.read_err)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_memory_equal(f->srv.got.base, "early", 5);

    /* close_notify reaches the other side as EOF. */
    cm_tls_shutdown(f->cli.tls);
    while (!f->srv.read_err)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->srv.read_err, UV_EOF);
    close_all(f);
}

static void test_client_cert_required(void **state)
{
    fx *f = *state;
    char err[256];
    cm_tls_config sc = {.server = 1,
                        .ca_file = f->ca,
                        .cert_file = f->srv_cert,
                        .key_file = f->srv_key,
                        .require_client_cert = 1};
    cm_tls_config cc = {.ca_file = f->ca};
    assert_int_equal(cm_tls_ctx_create(&f->sctx, &sc, err, sizeof err), 0);
    assert_int_equal(cm_tls_ctx_create(&f->cctx, &cc, err, sizeof err), 0);
    pair(f);
    assert_int_equal(f->srv.hs_status, -EPROTO);
    assert_non_null(strstr(cm_tls_errmsg(f->srv.tls), "certificate"));
    close_all(f);
}

static void test_wrong_ca(void **state)
{
    fx *f = *state;
    char err[256], other[300];
    snprintf(other, sizeof other, "%s/other.pem", f->dir);
    cm_tls_config sc = {
        .server = 1, .cert_file = f->srv_cert, .key_file = f->srv_key};
    cm_tls_config cc = {.ca_file = other};
    assert_int_equal(cm_tls_ctx_create(&f->sctx, &sc, err, sizeof err), 0);
    assert_int_equal(cm_tls_ctx_create(&f->cctx, &cc, err, sizeof err), 0);
    pair(f);
    assert_int_equal(f->cli.hs_status, -EPROTO);
    assert_non_null(strstr(cm_tls_errmsg(f->cli.tls), "verify"));
    close_all(f);

    /* Bad files and bad combinations are refused up front. */
    cm_tls_ctx *x;
    cm_tls_config nokey = {.server = 1, .cert_file = f->srv_cert};
    assert_int_equal(cm_tls_ctx_create(&x, &nokey, err, sizeof err), -EINVAL);
    cm_tls_config missing = {.ca_file = "/nonexistent/ca.pem"};
    assert_int_equal(cm_tls_ctx_create(&x, &missing, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mutual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_required, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_ca, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
