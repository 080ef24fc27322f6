/* session.h - scripted client sessions whose received bytes are recorded, and
 * a byte-for-byte comparison of the same scenario run against Redis directly
 * and through the proxy (see redis.h and proxy.h for the processes, sock.h for
 * the sockets).
 *
 * Like the harness, every function fails the current criterion test
 * (cr_assert) when a reply does not arrive within HARNESS_TIMEOUT_MS, naming
 * the run ("direct", "proxy" or "test") and the session.
 */
#ifndef NEARCACHE_TESTS_HARNESS_SESSION_H
#define NEARCACHE_TESTS_HARNESS_SESSION_H

#include <stddef.h>

#include "harness/bytes.h"
#include "harness/fixtures.h"
#include "harness/proxy.h"
#include "harness/redis.h"

/* ---- sessions ------------------------------------------------------------ */

/* A scripted client connection. Every step sends a request followed by a
 * sentinel (PING nc-sync-N, valid in every protocol mode) and reads until the
 * sentinel's reply; the step's bytes are appended to the shared transcript
 * under a label naming the session and the request. */
struct sess {
    int fd;
    const char *name;
    unsigned seq;
    struct bytes *transcript; /* borrowed; NULL: record nothing */
    struct bytes in;          /* everything received by the last step */
    struct bytes reply;       /* the last step's reply, sentinel reply removed */
};

/* Connects to 127.0.0.1:port (fails the test if it cannot). name is borrowed
 * and must outlive the session. */
void sess_open(struct sess *s, int port, const char *name, struct bytes *transcript);
/* Closes the connection and frees the buffers. Idempotent. */
void sess_close(struct sess *s);
/* One step: request text per req_lines (NULL: only the sentinel). Returns the
 * reply bytes (owned by s, valid until the next step). */
const struct bytes *sess_do(struct sess *s, const char *lines);
/* The same with a raw request of n bytes. */
const struct bytes *sess_do_raw(struct sess *s, const void *req, size_t n);
/* A step whose reply is not recorded (it legitimately differs, like HELLO's id). */
const struct bytes *sess_do_quiet(struct sess *s, const char *lines);
/* Sends without waiting for anything (e.g. a BLPOP that blocks). */
void sess_send(struct sess *s, const char *lines);
/* Fails unless the last step's reply is exactly expected. */
void sess_expect(const struct sess *s, const char *expected);
void sess_expect_bytes(const struct sess *s, const void *expected, size_t n);

/* ---- comparison ---------------------------------------------------------- */

/* What a scenario gets: where to connect, and the transcript to fill. */
struct run {
    int port;                  /* the proxy's, or Redis's for the direct run */
    const struct redis *redis; /* for direct-only checks (INFO) */
    const void *arg;           /* borrowed from compare_scenario */
    struct bytes transcript;
};

typedef void (*scenario_fn)(struct run *run);

/* Runs fn (with run->arg = arg) against Redis directly and through the proxy,
 * each after redis_reset, and fails with a readable diff unless the
 * transcripts match. */
void compare_scenario(const struct redis *r, const struct proxy *p, scenario_fn fn,
                      const void *arg);
/* Runs sess_do for each of the n request lines on one connection. */
void sess_do_all(struct sess *s, const char *const *lines, size_t n);
/* Runs the n request lines on one connection against Redis directly and
 * through the proxy, fails unless the transcripts match, then proxy_finish. */
void compare_steps(const struct redis *r, struct proxy *p, const char *const *lines, size_t n);
#define COMPARE_STEPS(table) compare_steps(&fx_redis, &fx_proxy, table, ARRAY_LEN(table))

/* Compare one request stream (sent in one write) and its replies. */
void compare_stream(const struct redis *r, const struct proxy *p, const void *req, size_t n);
/* Fails with the first difference shown in context. */
void compare_bytes(const char *what, const struct bytes *direct, const struct bytes *proxied);
/* The same for an expected value. */
void bytes_assert_equal(const char *what, const struct bytes *want, const struct bytes *got);

#endif
