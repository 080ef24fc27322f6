/* tls.h - TLS with OpenSSL: the contexts of both sides and non-blocking I/O.
 *
 * Two contexts come from the settings: the upstream one (upstream.tls_*),
 * which verifies Redis's certificate and may present a client certificate,
 * and the listener's (tls.*), which presents the proxy's certificate and may
 * ask clients for theirs. Both require TLS 1.2 or later and refuse
 * renegotiation. A reload builds new contexts; connections made before keep
 * the one they were made with (OpenSSL counts the references).
 *
 * The I/O functions work on a connection's buffers (buf.h) like rbuf_read and
 * obuf_write, and take ssl NULL to mean a plain socket, so that a connection
 * makes the same call either way. They never block: a TLS record that cannot
 * be completed now returns as EAGAIN, and the caller waits for its socket as
 * usual. A read takes everything OpenSSL has buffered (it reads ahead), so
 * what is left is in the socket and wakes the loop again.
 */
#ifndef NEARCACHE_TLS_H
#define NEARCACHE_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proxy/lib/buf.h"

struct config;

/* The upstream context, or NULL with err set ("" when upstream.tls is off). */
SSL_CTX *tls_upstream_ctx(const struct config *cfg, char *err, size_t errlen);

/* The listener's context, or NULL with err set ("" when tls.listen is off). */
SSL_CTX *tls_listen_ctx(const struct config *cfg, char *err, size_t errlen);

/* A client session on fd for Redis at server_name (a host name or an IP
 * address: sent as SNI when a name, and verified either way when the context
 * verifies). NULL when out of memory. */
SSL *tls_connect_new(SSL_CTX *ctx, int fd, const char *server_name);

/* A server session on fd for an accepted client. NULL when out of memory. */
SSL *tls_accept_new(SSL_CTX *ctx, int fd);

typedef enum {
    TLS_DONE = 0,   /* the handshake is over */
    TLS_WANT_READ,  /* call again when the socket is readable */
    TLS_WANT_WRITE, /* call again when the socket is writable */
    TLS_FAILED,     /* the reason is in tls_reason() */
} tls_step_e;

/* Advances the handshake of ssl. */
tls_step_e tls_handshake(SSL *ssl);

/* Why the last call on this thread failed: OpenSSL's reason ("certificate
 * verify failed: certificate has expired"), or the system error. */
const char *tls_reason(void);

ssize_t tls_read_ssl(SSL *ssl, struct rbuf *b);
ssize_t tls_write_ssl(SSL *ssl, struct obuf *b, size_t limit);

/* Reads what fd (ssl NULL) or ssl holds into b, as rbuf_read: the number of
 * bytes, 0 at the end of the stream, or -1 with errno (EAGAIN included).
 * Inline: a plain connection pays one branch for TLS being possible. */
static inline ssize_t tls_read(SSL *ssl, int fd, struct rbuf *b)
{
    return ssl == NULL ? rbuf_read(b, fd) : tls_read_ssl(ssl, b);
}

/* Writes at most limit queued bytes of b, as obuf_write: the number written
 * (0 when the socket is full), or -1 on an error. Small chunks are gathered
 * into records of up to 16 KB, so a batch of replies is one record and one
 * system call, as writev makes it for a plain socket. */
static inline ssize_t tls_write(SSL *ssl, int fd, struct obuf *b, size_t limit)
{
    return ssl == NULL ? obuf_write(b, fd, limit) : tls_write_ssl(ssl, b, limit);
}

/* Frees ssl after telling the peer (close_notify, not waited for). */
void tls_free(SSL *ssl);

#endif
