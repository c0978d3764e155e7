/*
 * common/tls.h -- TLS over a libuv stream with OpenSSL memory BIOs
 * (cm_tls_ prefix, CMake target cm_tls).
 *
 * A cm_tls_ctx holds the certificates (one per process side: the server's
 * listener, or a client).  A cm_tls sits on one connected uv_stream_t: it
 * reads ciphertext from the stream, feeds it to OpenSSL through a memory
 * BIO and hands plaintext to the caller's read callback; plaintext given to
 * cm_tls_write comes out encrypted on the stream.  Both client and server
 * modes; the server may require client certificates and read the peer
 * certificate's common name.
 *
 * Ownership: while a cm_tls is attached it owns the stream's reading and
 * stream->data.  The caller owns the stream handle and closes it after
 * cm_tls_destroy().  Loop thread only.
 */
#ifndef SKIFF_CM_TLS_H
#define SKIFF_CM_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

typedef struct cm_tls_ctx cm_tls_ctx;
typedef struct cm_tls cm_tls;

typedef struct cm_tls_config {
    int server;               /* 1: accept side, 0: connect side */
    const char *ca_file;      /* peers are verified against it (NULL: none) */
    const char *cert_file;    /* own certificate chain (PEM); server: needed */
    const char *key_file;     /* its private key (PEM) */
    int require_client_cert;  /* server: refuse clients without a cert */
    int insecure_skip_verify; /* client: do not verify the server */
} cm_tls_config;

/* Creates a context.  0, -ENOMEM, -EINVAL (server without cert, cert
 * without key), -EIO (a file could not be loaded; the OpenSSL reason is in
 * errbuf when given).  Free with cm_tls_ctx_destroy. */
int cm_tls_ctx_create(cm_tls_ctx **out, const cm_tls_config *cfg, char *errbuf,
                      size_t errcap);
void cm_tls_ctx_destroy(cm_tls_ctx *ctx);

/* Handshake done (status 0) or failed (-EPROTO, or a stream error). */
typedef void (*cm_tls_handshake_cb)(cm_tls *t, int status);
/* Plaintext arrived (nread > 0, buf borrowed for the call), or the stream
 * ended/failed (nread < 0: UV_EOF or another libuv/-EPROTO error; no more
 * calls follow). */
typedef void (*cm_tls_read_cb)(cm_tls *t, ssize_t nread, const char *buf);

/* Attaches TLS to a connected stream.  server_name (client side; may be
 * NULL) is sent as SNI and checked against the server's certificate unless
 * verification is off.  `data` is the caller's (cm_tls_data).  0, -ENOMEM,
 * -EIO. */
int cm_tls_create(cm_tls **out, cm_tls_ctx *ctx, uv_stream_t *stream,
                  const char *server_name, void *data);
void *cm_tls_data(const cm_tls *t);
/* Why the handshake failed, for people ("certificate verify failed
 * (self-signed certificate in certificate chain)"); "" otherwise.  Valid
 * until cm_tls_destroy. */
const char *cm_tls_errmsg(const cm_tls *t);

/* Starts reading and the handshake; hcb runs once, later.  After a
 * successful handshake plaintext goes to rcb.  0 or a libuv error. */
int cm_tls_start(cm_tls *t, cm_tls_handshake_cb hcb, cm_tls_read_cb rcb);

/* Encrypts and queues `n` bytes (copied; may be called before the
 * handshake ends: they go out after it).  0, -ENOMEM, -EPROTO, or a libuv
 * write error.  Write failures later show up as a read error. */
int cm_tls_write(cm_tls *t, const void *p, size_t n);

/* Sends close_notify (best effort). */
void cm_tls_shutdown(cm_tls *t);

/* Bytes accepted by cm_tls_write and not yet written to the socket. */
size_t cm_tls_pending(const cm_tls *t);

/* The peer certificate's subject CN into buf (NUL-terminated).  0,
 * -ENOENT (no peer certificate or no CN), -ENOSPC. */
int cm_tls_peer_cn(const cm_tls *t, char *buf, size_t cap);

/* The verified peer certificate (a new reference: release it with
 * X509_free), or NULL when the peer sent none.  X509 is OpenSSL's type,
 * declared here so this header does not pull in OpenSSL's. */
typedef struct x509_st X509;
X509 *cm_tls_peer_cert(const cm_tls *t);

/* Stops reading and frees the TLS state; in-flight writes finish on
 * their own.  The stream stays open (the caller closes it).  NULL ok. */
void cm_tls_destroy(cm_tls *t);

#endif
