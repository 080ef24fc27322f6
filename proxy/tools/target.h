/* target.h - what the tools share: the blocking hiredis connection a tool
 * opens to the proxy or to Redis (address parsing, timeouts, AUTH and
 * SELECT in one call), and the clock they time their runs with. */
#ifndef NEARCACHE_TOOLS_TARGET_H
#define NEARCACHE_TOOLS_TARGET_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Connects to addr ("host:port", "[v6]:port" or a unix socket path) with
 * timeout_ms for the connect and for every later reply, then sends AUTH
 * [user] password (when password is not NULL; user may be NULL) and SELECT
 * db (when db is not 0). Returns the
 * context (the caller owns it: redisFree), or NULL with a one-line reason in
 * err. */
redisContext *target_connect(const char *addr, const char *user, const char *password, int db,
                             int timeout_ms, char *err, size_t errlen);

/* Sends argv[0..argc) (NUL-terminated strings) and waits for the reply.
 * Returns the reply (the caller frees it), or NULL with a reason in err when
 * the connection failed or the reply is an error. */
redisReply *target_call(redisContext *c, int argc, const char *const *argv, char *err,
                        size_t errlen);

/* The monotonic clock, in seconds. */
double target_now(void);

#endif
