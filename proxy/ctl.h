/* ctl.h - one control-plane command, waited for, before the loop runs.
 *
 * At start the proxy asks Redis for its command table (introspect.c) and the
 * Sentinels for the primary (sentinel.c) before it serves. These calls use
 * the data path's transport (net.h, and tls.h when the server speaks TLS,
 * which Debian's hiredis cannot), wait on poll() with one deadline for the
 * whole exchange, and read the reply with hiredis's reader.
 */
#ifndef NEARCACHE_CTL_H
#define NEARCACHE_CTL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <stddef.h>

#include "proxy/net.h"

/* Where and how to reach a server. */
struct ctl_target {
    const struct net_addr *addr;
    SSL_CTX *tls;            /* NULL: plain */
    const char *server_name; /* TLS: the name verified */
    const char *user;        /* AUTH: NULL for the default user */
    const char *password;    /* NULL: no AUTH */
    int timeout_ms;          /* for connect, AUTH and the command together */
};

/* Connects, authenticates and runs argv[0..argc). Returns the reply (free it
 * with freeReplyObject; it may be an error reply), or NULL with a one-line
 * reason in err when the server could not be reached, refused AUTH or did
 * not answer in time. */
redisReply *ctl_call(const struct ctl_target *to, int argc, const char *const *argv, char *err,
                     size_t errlen);

/* Starts a hiredis async connection to addr, numeric so that connecting never
 * waits on DNS (a unix socket: a tunnel's, or Redis's). NULL when addr is not
 * known yet (len 0) or memory runs out; else check ac->err. */
redisAsyncContext *ctl_async_connect(const struct net_addr *addr);

#endif
