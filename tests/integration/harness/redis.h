/* redis.h - the redis-server of an end-to-end test: a child on a free
 * loopback port in its own temp dir (--save "" --appendonly no), its output in
 * the test's "redis" log, and direct requests to it. In TLS mode (NC_IT_TLS,
 * tls.h) it also listens on a free --tls-port, for the proxy only: the direct
 * requests keep the plain port.
 *
 * Every function fails the current criterion test (cr_assert) when Redis does
 * not start, answer or change state within HARNESS_TIMEOUT_MS.
 */
#ifndef NEARCACHE_TESTS_HARNESS_REDIS_H
#define NEARCACHE_TESTS_HARNESS_REDIS_H

#include <sys/types.h>

#include "harness/bytes.h"

/* A redis-server child in its own temp dir. */
struct redis {
    pid_t pid; /* 0 once stopped or killed */
    int port;
    int tls_port; /* 0 unless in TLS mode */
    char dir[256];
    char log[320];
    char password[64]; /* requirepass, sent by the direct requests below; "" none */
};

/* Starts redis-server ($NC_IT_REDIS_SERVER if set) on a free port (--save ""
 * --appendonly no --dir TMP) and waits until PING answers. Fails the test if
 * it cannot (the temp dir is removed first). */
void redis_start(struct redis *r);
/* SIGTERM, waitpid (SIGKILL after the timeout), removes the temp dir. Idempotent. */
void redis_stop(struct redis *r);
/* SIGKILL and waitpid: the port stops answering at once. */
void redis_kill(struct redis *r);
/* Starts it again on the same ports and dir after redis_kill. */
void redis_restart(struct redis *r);
/* SIGSTOP: connections stay open, nothing is answered. */
void redis_pause(struct redis *r);
/* SIGCONT after redis_pause. */
void redis_resume(struct redis *r);
/* FLUSHALL, SCRIPT FLUSH and FUNCTION FLUSH on a direct connection. */
void redis_reset(const struct redis *r);
/* The TLS port of the Redis this test process started on plain port `port`
 * (a test starts one), 0 if none or not in TLS mode. */
int redis_tls_port(int port);
/* Sets requirepass to password: the direct requests below authenticate with
 * it from now on. */
void redis_require_password(struct redis *r, const char *password);
/* Sends one request on a fresh direct connection (authenticated first when
 * a password is required) and returns its whole reply (caller frees). */
struct bytes redis_call(const struct redis *r, const char *line);
/* Kills the proxy's invalidation subscribers (CLIENT KILL TYPE pubsub):
 * fails unless there were proxy_workers() of them. */
void redis_kill_subscribers(const struct redis *r);

/* redis_call that fails the test unless the reply is exactly want. */
void redis_call_expect(const struct redis *r, const char *line, const char *want);
/* Polls INFO until `field:value` (e.g. "blocked_clients:3") appears. */
void redis_wait_info(const struct redis *r, const char *field_value);
/* For a paused Redis: waits until its connections hold at least min_bytes
 * unread (from /proc/net/tcp), i.e. the proxy has forwarded the requests. In
 * TLS mode they are the bytes of TLS records: more than the requests'. */
void redis_wait_unread(const struct redis *r, unsigned long min_bytes);

#endif
