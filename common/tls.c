/*
 * TLS over libuv streams with OpenSSL memory BIOs.
 *
 * OpenSSL never touches the socket here.  Ciphertext read by libuv is
 * written into the SSL object's read BIO; whatever OpenSSL wants to send
 * (handshake records, alerts, encrypted application data) accumulates in
 * its write BIO and is drained after every SSL call into a uv_write whose
 * request and bytes are one allocation, freed by the write callback.  The
 * write callback does not look at the cm_tls, so a connection may be torn
 * down with writes still in flight; a failed write shows up as a read
 * error soon after, which is where callers handle connection loss.
 *
 * Plaintext written before the handshake completes is kept and sent right
 * after it.  Callbacks may destroy the cm_tls (a typical reaction to a
 * read error): while a callback runs the object is pinned and freed when
 * the read handler unwinds.
 *
 * Both sides: a client verifies the server against the CA file (or the
 * system store when none is given) and checks the host name or IP address
 * it dialled; a server presents its certificate and may require and
 * verify client certificates, whose subject CN callers can read for
 * authorization.  TLS 1.2 is the minimum.
 */
#include "tls.h"

#include "cm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_READ_CHUNK 16384

struct cm_tls_ctx {
    SSL_CTX *ctx;
    int server;
    int verify;
};

struct cm_tls {
    SSL *ssl;
    BIO *rbio; /* network -> OpenSSL */
    BIO *wbio; /* OpenSSL -> network */
    uv_stream_t *stream;
    void *data;
    cm_tls_handshake_cb hcb;
    cm_tls_read_cb rcb;
    cm_buf early; /* plaintext written before the handshake finished */
    int handshaken;
    int failed;
    int busy;      /* callbacks running */
    int dead;      /* destroyed while busy */
    char err[256]; /* why the handshake failed */
};

typedef struct tls_write {
    uv_write_t req;
    size_t len;
    char data[];
} tls_write;

static void set_err(char *buf, size_t cap, const char *what, const char *f)
{
    if (!buf || !cap)
        return;
    unsigned long e = ERR_get_error();
    char reason[256] = "";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    snprintf(buf, cap, "%s %s: %s", what, f ? f : "", reason);
    ERR_clear_error();
}

int cm_tls_ctx_create(cm_tls_ctx **out, const cm_tls_config *cfg, char *errbuf,
                      size_t errcap)
{
    *out = NULL;
    if (!cfg || (!cfg->cert_file != !cfg->key_file) ||
        (cfg->server && !cfg->cert_file))
        return -EINVAL;
    cm_tls_ctx *t = cm_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->server = cfg->server;
    t->ctx =
        SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
    if (!t->ctx) {
        cm_free(t);
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    int rc = -EIO;
    if (cfg->cert_file &&
        SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
        set_err(errbuf, errcap, "cannot load certificate", cfg->cert_file);
        goto err;
    }
    if (cfg->key_file && (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file,
                                                      SSL_FILETYPE_PEM) != 1 ||
                          SSL_CTX_check_private_key(t->ctx) != 1)) {
        set_err(errbuf, errcap, "cannot load key", cfg->key_file);
        goto err;
    }
    if (cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1) {
            set_err(errbuf, errcap, "cannot load CA", cfg->ca_file);
            goto err;
        }
    } else if (!cfg->server) {
        SSL_CTX_set_default_verify_paths(t->ctx);
    }
    if (cfg->server) {
        int mode = SSL_VERIFY_NONE;
        if (cfg->require_client_cert)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        else if (cfg->ca_file)
            mode = SSL_VERIFY_PEER;
        if (cfg->ca_file) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(t->ctx, names);
        }
        SSL_CTX_set_verify(t->ctx, mode, NULL);
    } else {
        t->verify = !cfg->insecure_skip_verify;
        SSL_CTX_set_verify(t->ctx,
                           t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    }
    *out = t;
    return 0;
err:
    SSL_CTX_free(t->ctx);
    cm_free(t);
    return rc;
}

void cm_tls_ctx_destroy(cm_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ctx);
    cm_free(ctx);
}

/* ---- per connection ------------------------------------------------------ */

static void tls_free(cm_tls *t)
{
    SSL_free(t->ssl); /* frees both BIOs */
    cm_buf_free(&t->early);
    cm_free(t);
}

static void on_write_done(uv_write_t *req, int status)
{
    (void)status;
    cm_free(req->data);
}

/* Sends whatever OpenSSL queued in the write BIO.  0 or a negative code. */
static int drain(cm_tls *t)
{
    size_t n;
    while ((n = BIO_ctrl_pending(t->wbio)) > 0) {
        tls_write *w = cm_malloc(sizeof *w + n);
        if (!w)
            return -ENOMEM;
        int got = BIO_read(t->wbio, w->data, (int)n);
        if (got <= 0) {
            cm_free(w);
            return -EPROTO;
        }
        w->len = (size_t)got;
        w->req.data = w;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
        int rc = uv_write(&w->req, t->stream, &b, 1, on_write_done);
        if (rc < 0) {
            cm_free(w);
            return rc;
        }
    }
    return 0;
}

static int ssl_write_all(cm_tls *t, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = SSL_write(t->ssl, s, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return -EPROTO;
        }
        s += w;
        n -= (size_t)w;
    }
    return drain(t);
}

static void fail(cm_tls *t, int err)
{
    if (!t->handshaken && !t->err[0])
        snprintf(t->err, sizeof t->err, "%s", uv_strerror(err));
    t->failed = 1;
    uv_read_stop(t->stream);
    drain(t); /* the alert, if any */
    if (!t->handshaken)
        t->hcb(t, err);
    else
        t->rcb(t, err, NULL);
}

static void handshake_step(cm_tls *t)
{
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshaken = 1;
        int d = drain(t);
        if (d == 0 && t->early.len) {
            d = ssl_write_all(t, t->early.base, t->early.len);
            cm_buf_free(&t->early);
        }
        if (d < 0) {
            fail(t, d);
            return;
        }
        t->hcb(t, 0);
        return;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int d = drain(t);
        if (d < 0)
            fail(t, d);
        return;
    }
    char why[160] = "";
    unsigned long code = ERR_peek_error();
    if (code)
        snprintf(why, sizeof why, "%s", ERR_reason_error_string(code));
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK)
        snprintf(t->err, sizeof t->err, "%s (%s)", why[0] ? why : "failed",
                 X509_verify_cert_error_string(vr));
    else
        snprintf(t->err, sizeof t->err, "%s",
                 why[0] ? why : "connection closed during handshake");
    CM_DEBUG("tls handshake failed", "reason=\"%s\"", t->err);
    ERR_clear_error();
    fail(t, -EPROTO);
}

static void read_plain(cm_tls *t)
{
    static _Thread_local char buf[TLS_READ_CHUNK];
    while (!t->dead && !t->failed) {
        int n = SSL_read(t->ssl, buf, sizeof buf);
        if (n > 0) {
            t->rcb(t, n, buf);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        ERR_clear_error();
        t->failed = 1;
        uv_read_stop(t->stream);
        t->rcb(t, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : -EPROTO, NULL);
        return;
    }
    if (!t->dead && !t->failed) {
        int d = drain(t); /* key updates, session tickets */
        if (d < 0)
            fail(t, d);
    }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static _Thread_local char chunk[65536];
    (void)h;
    (void)hint;
    buf->base = chunk;
    buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cm_tls *t = s->data;
    if (!t || t->dead || t->failed || nread == 0)
        return;
    t->busy++;
    if (nread < 0) {
        fail(t, (int)nread);
    } else if (BIO_write(t->rbio, buf->base, (int)nread) != (int)nread) {
        fail(t, -ENOMEM);
    } else {
        if (!t->handshaken)
            handshake_step(t);
        if (t->handshaken && !t->dead && !t->failed)
            read_plain(t);
    }
    if (--t->busy == 0 && t->dead)
        tls_free(t);
}

int cm_tls_create(cm_tls **out, cm_tls_ctx *ctx, uv_stream_t *stream,
                  const char *server_name, void *data)
{
    *out = NULL;
    cm_tls *t = cm_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->stream = stream;
    t->data = data;
    t->ssl = SSL_new(ctx->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        cm_free(t);
        return -ENOMEM;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (server_name && *server_name) {
            unsigned char ip[16];
            int is_ip = inet_pton(AF_INET, server_name, ip) == 1 ||
                        inet_pton(AF_INET6, server_name, ip) == 1;
            if (!is_ip)
                SSL_set_tlsext_host_name(t->ssl, server_name);
            if (ctx->verify) {
                X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
                int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, server_name)
                               : SSL_set1_host(t->ssl, server_name);
                if (ok != 1) {
                    tls_free(t);
                    return -EIO;
                }
            }
        }
    }
    *out = t;
    return 0;
}

void *cm_tls_data(const cm_tls *t)
{
    return t->data;
}

const char *cm_tls_errmsg(const cm_tls *t)
{
    return t->err;
}

int cm_tls_start(cm_tls *t, cm_tls_handshake_cb hcb, cm_tls_read_cb rcb)
{
    t->hcb = hcb;
    t->rcb = rcb;
    t->stream->data = t;
    int rc = uv_read_start(t->stream, alloc_cb, on_read);
    if (rc < 0)
        return rc;
    if (!SSL_is_server(t->ssl)) {
        /* The client speaks first: send ClientHello now. */
        int r = SSL_do_handshake(t->ssl);
        int e = SSL_get_error(t->ssl, r);
        if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            uv_read_stop(t->stream);
            return -EPROTO;
        }
        rc = drain(t);
        if (rc < 0) {
            uv_read_stop(t->stream);
            return rc;
        }
    }
    return 0;
}

int cm_tls_write(cm_tls *t, const void *p, size_t n)
{
    if (t->failed || t->dead)
        return -EPROTO;
    if (!t->handshaken)
        return cm_buf_append(&t->early, p, n);
    return ssl_write_all(t, p, n);
}

void cm_tls_shutdown(cm_tls *t)
{
    if (!t || t->failed || t->dead || !t->handshaken)
        return;
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    drain(t);
}

size_t cm_tls_pending(const cm_tls *t)
{
    return t->early.len + t->stream->write_queue_size;
}

int cm_tls_peer_cn(const cm_tls *t, char *buf, size_t cap)
{
    X509 *cert = SSL_get_peer_certificate(t->ssl);
    if (!cert)
        return -ENOENT;
    int rc = -ENOENT;
    X509_NAME *name = X509_get_subject_name(cert);
    int len =
        name ? X509_NAME_get_text_by_NID(name, NID_commonName, NULL, 0) : -1;
    if (len >= 0) {
        if ((size_t)len + 1 > cap) {
            rc = -ENOSPC;
        } else {
            X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int)cap);
            rc = 0;
        }
    }
    X509_free(cert);
    return rc;
}

X509 *cm_tls_peer_cert(const cm_tls *t)
{
    return SSL_get_peer_certificate(t->ssl);
}

void cm_tls_destroy(cm_tls *t)
{
    if (!t || t->dead)
        return;
    if (!t->failed)
        uv_read_stop(t->stream);
    if (t->stream->data == t)
        t->stream->data = NULL;
    t->dead = 1;
    if (t->busy == 0)
        tls_free(t);
}
