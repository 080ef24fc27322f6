/* tls.c - OpenSSL contexts from the settings, handshakes and buffered I/O. */
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define TLS_RECORD 16384 /* the largest TLS record's payload */
#define TLS_IOV    64    /* chunks looked at per record */

static _Thread_local char tls_why[256];

const char *tls_reason(void)
{
    return tls_why;
}

/* Puts OpenSSL's last error (or errno's) into tls_why after what, and
 * empties the error queue. */
static void tls_note(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[200];
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "%s", errno != 0 ? strerror(errno) : "connection closed");
    snprintf(tls_why, sizeof(tls_why), "%s%s%s", what, what[0] != '\0' ? ": " : "", buf);
    ERR_clear_error();
}

/* Says why setting (naming file, NULL for none) could not be used: the file
 * cannot be read, or OpenSSL's reason ("key values mismatch"). */
static SSL_CTX *tls_ctx_fail(SSL_CTX *ctx, const char *setting, const char *file, char *err,
                             size_t errlen)
{
    const char *why = ERR_reason_error_string(ERR_peek_last_error());
    if (file != NULL && access(file, R_OK) != 0)
        why = strerror(errno);
    snprintf(err, errlen, "%s %s: %s", setting, file != NULL ? file : "",
             why != NULL ? why : "unusable");
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* What both sides share: TLS 1.2 or later, no renegotiation, partial writes
 * (tls_write consumes what each record took), a peer closing without
 * close_notify seen as an end of stream (RESP frames its own messages), and
 * read-ahead: one read() takes every record the socket holds instead of two
 * per record (header, then body); tls_read drains what it buffered. */
static SSL_CTX *tls_ctx_new(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

/* Loads a certificate chain and its key into ctx, from the settings named
 * prefix + cert_file and key_file; NULL (ctx freed) on failure. */
static SSL_CTX *tls_ctx_identity(SSL_CTX *ctx, const char *prefix, const char *cert,
                                 const char *key, char *err, size_t errlen)
{
    char setting[64];
    snprintf(setting, sizeof(setting), "%scert_file", prefix);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return tls_ctx_fail(ctx, setting, cert, err, errlen);
    snprintf(setting, sizeof(setting), "%skey_file", prefix);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        return tls_ctx_fail(ctx, setting, key, err, errlen);
    return ctx;
}

SSL_CTX *tls_upstream_ctx(const struct config *cfg, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!cfg->upstream_tls)
        return NULL;
    SSL_CTX *ctx = tls_ctx_new(TLS_client_method());
    if (ctx == NULL)
        return tls_ctx_fail(ctx, "upstream.tls", NULL, err, errlen);
    if (cfg->upstream_tls_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        const char *ca = cfg->upstream_tls_ca_file;
        if (ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(ctx) != 1)
            return tls_ctx_fail(ctx, ca != NULL ? "upstream.tls_ca_file" : "the system CA store",
                                ca, err, errlen);
    }
    if (cfg->upstream_tls_cert_file != NULL)
        return tls_ctx_identity(ctx, "upstream.tls_", cfg->upstream_tls_cert_file,
                                cfg->upstream_tls_key_file, err, errlen);
    return ctx;
}

SSL_CTX *tls_listen_ctx(const struct config *cfg, char *err, size_t errlen)
{
    static const unsigned char SESSION_CONTEXT[] = "nearcache";
    err[0] = '\0';
    if (!config_tls_on(cfg))
        return NULL;
    SSL_CTX *ctx = tls_ctx_new(TLS_server_method());
    if (ctx == NULL)
        return tls_ctx_fail(ctx, "tls.listen", NULL, err, errlen);
    if (tls_ctx_identity(ctx, "tls.", cfg->tls_cert_file, cfg->tls_key_file, err, errlen) == NULL)
        return NULL;
    SSL_CTX_set_session_id_context(ctx, SESSION_CONTEXT, sizeof(SESSION_CONTEXT) - 1);
    if (cfg->tls_ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return tls_ctx_fail(ctx, "tls.ca_file", cfg->tls_ca_file, err, errlen);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    int auth = config_tls_auth(cfg);
    SSL_CTX_set_verify(ctx,
                       auth == 0   ? SSL_VERIFY_NONE
                       : auth == 1 ? SSL_VERIFY_PEER
                                   : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    return ctx;
}

SSL *tls_connect_new(SSL_CTX *ctx, int fd, const char *server_name)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    if (server_name != NULL && server_name[0] != '\0') {
        unsigned char ip[16];
        bool numeric =
            inet_pton(AF_INET, server_name, ip) == 1 || inet_pton(AF_INET6, server_name, ip) == 1;
        int ok = numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name)
                         : SSL_set_tlsext_host_name(ssl, server_name) == 1 &&
                               SSL_set1_host(ssl, server_name) == 1;
        if (!ok) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

SSL *tls_accept_new(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

tls_step_e tls_handshake(SSL *ssl)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return TLS_DONE;
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    default:
        break;
    }
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        snprintf(tls_why, sizeof(tls_why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
    } else {
        tls_note("handshake");
    }
    return TLS_FAILED;
}

ssize_t tls_read_ssl(SSL *ssl, struct rbuf *b)
{
    ssize_t total = 0;
    for (;;) {
        /* Everything OpenSSL holds is taken now: the socket would not wake
         * the loop for it. Room is made at first and when full. */
        if ((b->end == b->cap || total == 0) && rbuf_make_room(b) < 0) {
            errno = ENOMEM;
            return -1;
        }
        size_t room = b->cap - b->end;
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(ssl, b->data + b->end, room > INT_MAX ? INT_MAX : (int)room);
        if (n > 0) {
            b->end += (size_t)n;
            total += n;
            if (!SSL_has_pending(ssl))
                return total;
            continue;
        }
        switch (SSL_get_error(ssl, n)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE: /* a key update's answer waits for room: the next read sends it
                                    */
            errno = EAGAIN;
            return total > 0 ? total : -1;
        case SSL_ERROR_ZERO_RETURN:
            return total;
        default:
            tls_note("read");
            errno = EIO;
            return total > 0 ? total : -1;
        }
    }
}

ssize_t tls_write_ssl(SSL *ssl, struct obuf *b, size_t limit)
{
    static _Thread_local char record[TLS_RECORD];
    ssize_t written = 0;
    while (b->len > 0 && (size_t)written < limit) {
        struct iovec iov[TLS_IOV];
        int cnt = obuf_peek(b, iov, TLS_IOV, limit - (size_t)written);
        const char *p = iov[0].iov_base;
        size_t len = iov[0].iov_len;
        if (cnt > 1 && len < TLS_RECORD) { /* gather small chunks into one record */
            len = 0;
            for (int i = 0; i < cnt && len < TLS_RECORD; i++) {
                size_t n = iov[i].iov_len < TLS_RECORD - len ? iov[i].iov_len : TLS_RECORD - len;
                memcpy(record + len, iov[i].iov_base, n);
                len += n;
            }
            p = record;
        }
        /* A write that must be retried is retried with the same first bytes
         * and no fewer of them, as OpenSSL requires: the queue only grows at
         * its end and this choice of len never shrinks as it does. */
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(ssl, p, len > INT_MAX ? INT_MAX : (int)len);
        if (n > 0) {
            obuf_consume(b, (size_t)n);
            written += n;
            continue;
        }
        int e = SSL_get_error(ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return written;
        tls_note("write");
        return -1;
    }
    return written;
}

void tls_free(SSL *ssl)
{
    if (ssl == NULL)
        return;
    ERR_clear_error();
    if (SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
}
