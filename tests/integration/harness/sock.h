/* sock.h - client sockets of the end-to-end tests: loopback connections, an
 * exchange that sends while it reads, and reading whole RESP replies, all with
 * deadlines.
 *
 * The sock_* functions return a status and never fail the test by themselves;
 * the *_or_fail, *_expect and sock_read_until helpers fail the current
 * criterion test (cr_assert) when a reply does not arrive within
 * HARNESS_TIMEOUT_MS or differs from the one wanted.
 */
#ifndef NEARCACHE_TESTS_HARNESS_SOCK_H
#define NEARCACHE_TESTS_HARNESS_SOCK_H

#include <stddef.h>

#include "harness/bytes.h"

typedef enum {
    SOCK_DONE = 0,     /* everything sent, and the suffix (if any) received */
    SOCK_EOF = 1,      /* the peer closed (or reset) the connection */
    SOCK_TIMEOUT = -1, /* the deadline passed first */
} sock_status_e;

/* Connects to 127.0.0.1:port. Returns a non-blocking TCP_NODELAY fd (close-on-exec),
 * or -1 with errno. The caller closes it. */
int sock_connect(int port);

/* A loopback TCP port that was free a moment ago (bound to port 0 and closed);
 * another process may take it before the caller does. Fails the test if no
 * socket can be bound. */
int sock_free_port(void);

/* Sends out[0..n) while appending whatever arrives to in, until everything is
 * sent and in ends with suffix[0..slen) (slen 0: until everything is sent).
 * Reading while sending, it never deadlocks on a peer that stops reading until
 * its replies are read. */
sock_status_e sock_exchange(int fd, const void *out, size_t n, struct bytes *in, const void *suffix,
                            size_t slen, int timeout_ms);

/* Appends bytes to in until the peer closes. */
sock_status_e sock_read_until_eof(int fd, struct bytes *in, int timeout_ms);

/* Appends bytes to in until it holds `count` whole replies from offset `from`. */
sock_status_e sock_read_replies(int fd, struct bytes *in, size_t from, size_t count,
                                int timeout_ms);

/* Clears in, sends the requests of lines (per req_lines) and reads `replies`
 * whole replies into in. For steps where a sentinel cannot work (Redis paused
 * or gone, the proxy shutting down). */
sock_status_e sock_call(int fd, const char *lines, size_t replies, struct bytes *in,
                        int timeout_ms);

/* sock_connect that fails the test when it cannot connect. */
int sock_connect_or_fail(int port);
/* sock_call within HARNESS_TIMEOUT_MS that fails the test unless all `replies`
 * arrived; in holds them. */
void sock_call_or_fail(int fd, const char *lines, size_t replies, struct bytes *in);
/* sock_call_or_fail that also fails unless the replies are exactly want. */
void sock_call_expect(int fd, const char *lines, size_t replies, const char *want);
/* Sends line (one request) through fd until its reply is exactly want, every
 * 10 ms; fails after HARNESS_TIMEOUT_MS. For changes that take effect
 * eventually (an invalidation, an expiry). */
void sock_read_until(int fd, const char *line, const char *want);

#endif
