/* harness.h - end-to-end test harness: a real redis-server and the nearcache
 * binary on free loopback ports, raw sockets with deadlines, byte buffers and
 * the criterion fixtures. Scripted sessions and the direct-vs-proxy comparison
 * are in session.h.
 *
 * Functions that start processes or talk to sockets fail the current criterion
 * test (cr_assert) when something does not happen within HARNESS_TIMEOUT_MS;
 * nothing waits unbounded. Set NC_IT_DIRECT=1 to run every test with
 * the "proxy" being Redis itself (validates the harness and the scenarios).
 */
#ifndef NEARCACHE_TESTS_HARNESS_H
#define NEARCACHE_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Upper bound for anything that should "eventually" happen. */
#define HARNESS_TIMEOUT_MS 10000

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- growable byte buffer ---------------------------------------------- */

/* Owns data; a zeroed struct is an empty buffer. */
struct bytes {
    char *data;
    size_t len;
    size_t cap;
};

void bytes_append(struct bytes *b, const void *p, size_t n);
void bytes_puts(struct bytes *b, const char *s);
void bytes_printf(struct bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bytes_free(struct bytes *b);
bool bytes_ends_with(const struct bytes *b, const void *s, size_t n);
/* True when b holds exactly the NUL-terminated s. */
bool bytes_equal_str(const struct bytes *b, const char *s);
/* Appends p[0..n) with \r, \n, \\ and non-printables escaped (\xHH). */
void bytes_escape(struct bytes *out, const void *p, size_t n);
/* A static, escaped copy of at most 300 bytes of b, for assertion messages. */
const char *bytes_show(const struct bytes *b);
/* Appends p[0..n) as one RESP bulk string: $n\r\n, the bytes, \r\n. */
void bytes_append_bulk(struct bytes *b, const void *p, size_t n);
/* Appends the whole content of the file at path. Returns false (b unchanged)
 * when it cannot be opened. */
bool bytes_append_file(struct bytes *b, const char *path);

/* ---- building requests -------------------------------------------------- */

/* Appends one multibulk request with the NULL-terminated string arguments. */
void req_add(struct bytes *out, const char *arg, ...) __attribute__((sentinel));
/* Appends one multibulk request with binary arguments argv[i] of lens[i] bytes. */
void req_addv(struct bytes *out, int argc, const char *const *argv, const size_t *lens);
/* Appends one multibulk request per line of text ('\n'-separated). Arguments
 * are separated by spaces; "double quoted" arguments may hold spaces. */
void req_lines(struct bytes *out, const char *text);

/* ---- replies ------------------------------------------------------------- */

#define REPLY_BAD ((size_t)-1)

/* Scans one whole RESP2/RESP3 reply starting at p[off]. Returns the offset just
 * past it, 0 when the bytes end first, or REPLY_BAD when they are not RESP. */
size_t reply_end(const char *p, size_t len, size_t off);

/* ---- raw sockets ---------------------------------------------------------- */

typedef enum {
    SOCK_DONE = 0,     /* everything sent, and the suffix (if any) received */
    SOCK_EOF = 1,      /* the peer closed (or reset) the connection */
    SOCK_TIMEOUT = -1, /* the deadline passed first */
} sock_status_e;

/* Connects to 127.0.0.1:port. Returns a non-blocking TCP_NODELAY fd (close-on-exec),
 * or -1 with errno. */
int sock_connect(int port);

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
/* The value of one NEARCACHE STATS field, asked through fd; fails if absent. */
long long proxy_stat(int fd, const char *name);

/* ---- processes ------------------------------------------------------------- */

/* A redis-server child in its own temp dir. */
struct redis {
    pid_t pid; /* 0 once stopped or killed */
    int port;
    char dir[256];
    char log[320];
};

/* Starts redis-server on a free port (--save "" --appendonly no --dir TMP) and
 * waits until PING answers. Fails the test if it cannot. */
void redis_start(struct redis *r);
/* SIGTERM, waitpid (SIGKILL after the timeout), removes the temp dir. Idempotent. */
void redis_stop(struct redis *r);
/* SIGKILL and waitpid: the port stops answering at once. */
void redis_kill(struct redis *r);
/* Starts it again on the same port and dir after redis_kill. */
void redis_restart(struct redis *r);
void redis_pause(struct redis *r);
void redis_resume(struct redis *r);
/* FLUSHALL, SCRIPT FLUSH and FUNCTION FLUSH on a direct connection. */
void redis_reset(const struct redis *r);
/* Sends one request on a fresh direct connection and returns its whole reply
 * (caller frees). */
struct bytes redis_call(const struct redis *r, const char *line);
/* redis_call that fails the test unless the reply is exactly want. */
void redis_call_expect(const struct redis *r, const char *line, const char *want);
/* Polls INFO until `field:value` (e.g. "blocked_clients:3") appears. */
void redis_wait_info(const struct redis *r, const char *field_value);
/* For a paused Redis: waits until its connections hold at least min_bytes
 * unread (from /proc/net/tcp), i.e. the proxy has forwarded the requests. */
void redis_wait_unread(const struct redis *r, unsigned long min_bytes);

/* The nearcache binary (or, in direct mode, Redis standing in for it). */
struct proxy {
    pid_t pid; /* 0 when not running (or in direct mode) */
    int port;
    char log[512];
};

/* The nearcache binary: $NC_IT_BIN if set, else the one CMake built. */
const char *harness_bin(void);
/* True when NC_IT_DIRECT is set: proxy_start only points at Redis. */
bool harness_direct(void);
/* Skips the current test in direct mode: it needs the real binary. Stops the
 * fixtures first, since criterion runs no .fini after a skip. */
void harness_require_proxy(void);

/* Starts NEARCACHE_BIN --listen 127.0.0.1:PORT --upstream 127.0.0.1:upstream_port
 * with each "key=value" of sets (NULL-terminated, may be NULL) as --set, and
 * waits until PORT accepts connections. Its stderr goes to a log printed when
 * the test fails. */
void proxy_start(struct proxy *p, int upstream_port, const char *const *sets);
/* proxy_start with --config FILE too (settings in sets still override it). */
void proxy_start_config(struct proxy *p, int upstream_port, const char *config,
                        const char *const *sets);
/* True when the proxy's captured stderr (p->log) holds needle. */
bool proxy_log_contains(const struct proxy *p, const char *needle);
/* Polls the proxy's stderr until it holds needle; fails the test after
 * HARNESS_TIMEOUT_MS. For asynchronous events like a SIGHUP reload. */
void proxy_wait_log(const struct proxy *p, const char *needle);
/* Sends sig to the running proxy. */
void proxy_signal(const struct proxy *p, int sig);
/* Waits for the proxy to exit; returns its waitpid status, or -1 on timeout. */
int proxy_wait(struct proxy *p, int timeout_ms);
/* SIGTERM and waits (SIGKILL after the timeout). Returns the waitpid status,
 * -1 when it had to be killed, 0 when not running. */
int proxy_stop(struct proxy *p);
/* proxy_stop that fails the test unless the proxy exited 0. For tests where a
 * PING through it cannot succeed; proxy_finish ends with it. */
void proxy_stop_clean(struct proxy *p);
/* Every test ends with it: fails unless the proxy survived the test (still
 * running, a fresh client gets +PONG) and then exits 0 on SIGTERM, so that a
 * crash, or a sanitizer report at exit, anywhere is a failure. */
void proxy_finish(struct proxy *p);

/* True when a waitpid status (not -1) says the process exited with code. */
bool harness_exited_with(int status, int code);
/* Starts argv (argv[0] looked up in PATH) with stdout and stderr to out_path
 * and returns its pid; it dies with the test. */
pid_t harness_spawn(const char *const *argv, const char *out_path);
/* Waits for a harness_spawn child. Returns the waitpid status, or -1 when it
 * had to be killed at the deadline. */
int harness_wait(pid_t pid, int timeout_ms);
/* harness_spawn, then harness_wait. */
int harness_run(const char *const *argv, const char *out_path, int timeout_ms);
/* Prints a file to stderr (for subprocess output on failure). */
void harness_print_file(const char *path, const char *title);
/* A fresh temp dir for files a test writes (removed by harness_rmdir). */
void harness_mkdtemp(char *dir, size_t len);
void harness_rmdir(const char *dir);
/* Replaces the file at path with text atomically (a temp file renamed over it),
 * so that a process re-reading it sees the old or the new content, never a mix.
 * Fails the test if it cannot. */
void harness_write_file(const char *path, const char *text);
void harness_sleep_ms(int ms);

/* ---- fixtures ------------------------------------------------------------ */

/* The current test's Redis and proxy, for criterion .init/.fini. */
extern struct redis fx_redis;
extern struct proxy fx_proxy;

/* .init: starts Redis; the test starts the proxy with its own settings. */
void fixture_redis(void);
/* .init: starts Redis and a proxy with the default settings. */
void fixture_both(void);
/* .fini: stops the proxy (warning unless it exits 0) and Redis. */
void fixture_stop(void);

#endif
