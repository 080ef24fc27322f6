/* proxy.h - the nearcache process of an end-to-end test: the binary on a free
 * loopback port in front of the test's Redis, its stderr in the test's "proxy"
 * log, and its exit checked.
 *
 * With NC_IT_DIRECT=1 set, every test runs with the "proxy" being Redis itself
 * (validates the harness and the scenarios): proxy_start only points at Redis.
 * With NC_IT_TLS=1 (tls.h), a proxy started in front of the test's Redis talks
 * TLS to its TLS port (upstream.tls=on, upstream.tls_ca_file=the test CA).
 * It runs one worker, or N with NC_IT_WORKERS=N (--set workers=N).
 * Every function but proxy_try_start fails the current criterion test
 * (cr_assert) when something does not happen within HARNESS_TIMEOUT_MS.
 */
#ifndef NEARCACHE_TESTS_HARNESS_PROXY_H
#define NEARCACHE_TESTS_HARNESS_PROXY_H

#include <stdbool.h>
#include <sys/types.h>

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

/* Starts NEARCACHE_BIN --listen 127.0.0.1:PORT --upstream 127.0.0.1:upstream_port
 * (in TLS mode, the TLS port of the Redis on upstream_port) with each
 * "key=value" of sets (NULL-terminated, may be NULL) as --set, and waits until
 * PORT accepts connections. Its stderr goes to a log printed when the test
 * fails. */
void proxy_start(struct proxy *p, int upstream_port, const char *const *sets);

/* The workers each proxy runs: NC_IT_WORKERS, or 1. Each has its own
 * invalidation subscriber. */
int proxy_workers(void);
/* proxy_start with --config FILE too (settings in sets still override it). */
void proxy_start_config(struct proxy *p, int upstream_port, const char *config,
                        const char *const *sets);
/* proxy_start_config (config may be NULL) that returns false instead of
 * failing the test, after printing the log; for a .init that must clean up
 * before it fails. */
bool proxy_try_start(struct proxy *p, int upstream_port, const char *config,
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
 * running, a fresh client gets +PONG within HARNESS_TIMEOUT_MS, once its
 * worker is connected to Redis again) and then exits 0 on SIGTERM, so that a
 * crash, or a sanitizer report at exit, anywhere is a failure. */
void proxy_finish(struct proxy *p);
/* The value of one NEARCACHE STATS field, asked through fd; fails if absent. */
long long proxy_stat(int fd, const char *name);
/* Sends line through fd (its reply must be want each time) until a read is
 * served from the tier (NEARCACHE STATS hits rises): the first fills it. */
void cache_read(int fd, const char *line, const char *want);

/* The proxy's answer to a NEARCACHE subcommand it does not know, or with
 * the wrong number of arguments. */
#define PROXY_NEARCACHE_USAGE                                                                      \
    "-ERR unknown subcommand or wrong number of arguments for 'nearcache'. Try NEARCACHE STATS, "  \
    "POLICY, RELOAD, HOTKEYS [count], INVALIDATE pattern, INSPECT key or EXPLAIN key [command "    \
    "[args...]].\r\n"

#endif
