/* redis.c - the redis-server fixture of the end-to-end tests. See redis.h
 * for the contracts. */
#include "harness/redis.h"

#include "harness/proxy.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/clock.h"
#include "harness/logs.h"
#include "harness/proc.h"
#include "harness/proxy.h"
#include "harness/sock.h"
#include "harness/tls.h"

#define START_RETRIES 5

/* The ports of the Redis this test process started, for redis_tls_port. */
static int started_port, started_tls_port;

/* True when a fresh connection to port answers PING with +PONG within 500 ms. */
static bool answers_ping(int port)
{
    int fd = sock_connect(port);
    if (fd < 0)
        return false;
    struct bytes in = {0};
    sock_status_e st = sock_exchange(fd, "PING\r\n", 6, &in, "\r\n", 2, 500);
    bool ok = st == SOCK_DONE && bytes_equal_str(&in, "+PONG\r\n");
    bytes_free(&in);
    close(fd);
    return ok;
}

static pid_t redis_spawn(struct redis *r)
{
    char port[16], tls_port[16], cert[320], key[320], ca[320];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(tls_port, sizeof(tls_port), "%d", r->tls_port);
    harness_tls_path(cert, sizeof(cert), "server.crt");
    harness_tls_path(key, sizeof(key), "server.key");
    harness_tls_path(ca, sizeof(ca), "ca.crt");
    const char *server = getenv("NC_IT_REDIS_SERVER");
    /* the TLS port and files come last: unless in TLS mode, NULL ends the list before them */
    const char *argv[] = {server ? server : "redis-server",
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          r->dir,
                          "--logfile",
                          "",
                          "--enable-debug-command",
                          "local",
                          r->tls_port != 0 ? "--tls-port" : NULL,
                          tls_port,
                          "--tls-cert-file",
                          cert,
                          "--tls-key-file",
                          key,
                          "--tls-ca-cert-file",
                          ca,
                          "--tls-auth-clients",
                          "no",
                          NULL};
    return harness_spawn_append(argv, r->log);
}

/* Spawns on r->port and waits for PING. */
static bool redis_launch(struct redis *r)
{
    r->pid = redis_spawn(r);
    return harness_wait_ready(&r->pid, r->port, answers_ping, "redis-server");
}

void redis_start(struct redis *r)
{
    memset(r, 0, sizeof(*r));
    harness_mkdtemp(r->dir, sizeof(r->dir));
    harness_log_path(r->log, sizeof(r->log), "redis");
    for (int attempt = 0; attempt < START_RETRIES; attempt++) {
        r->port = sock_free_port();
        do
            r->tls_port = harness_tls() ? sock_free_port() : 0;
        while (r->tls_port == r->port);
        if (redis_launch(r)) {
            started_port = r->port;
            started_tls_port = r->tls_port;
            return;
        }
    }
    harness_print_tail(r->log, "redis", 30);
    harness_rmdir(r->dir); /* no .fini runs after a failed .init */
    cr_assert_fail("redis-server would not start (is it installed?)");
}

int redis_tls_port(int port)
{
    return port == started_port ? started_tls_port : 0;
}

void redis_restart(struct redis *r)
{
    cr_assert(r->pid == 0, "redis_restart: still running");
    for (int attempt = 0; attempt < START_RETRIES; attempt++) {
        if (redis_launch(r))
            return;
        harness_sleep_ms(100);
    }
    cr_assert_fail("redis-server would not restart on port %d", r->port);
}

void redis_stop(struct redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        harness_terminate(r->pid);
    }
    r->pid = 0;
    harness_rmdir(r->dir);
    r->dir[0] = '\0';
}

void redis_kill(struct redis *r)
{
    cr_assert(r->pid > 0, "redis_kill: not running");
    kill(r->pid, SIGKILL);
    cr_assert(harness_wait_exit(r->pid, HARNESS_TIMEOUT_MS) != -1, "redis did not die");
    r->pid = 0;
}

void redis_pause(struct redis *r)
{
    cr_assert(r->pid > 0 && kill(r->pid, SIGSTOP) == 0, "redis_pause");
}

void redis_resume(struct redis *r)
{
    cr_assert(r->pid > 0 && kill(r->pid, SIGCONT) == 0, "redis_resume");
}

struct bytes redis_call(const struct redis *r, const char *line)
{
    struct bytes in = {0};
    int fd = sock_connect_or_fail(r->port);
    if (r->password[0] != '\0') {
        char auth[96];
        snprintf(auth, sizeof(auth), "AUTH %s", r->password);
        sock_call_expect(fd, auth, 1, "+OK\r\n");
    }
    sock_status_e st = sock_call(fd, line, 1, &in, HARNESS_TIMEOUT_MS);
    close(fd);
    cr_assert(st == SOCK_DONE, "redis did not answer %s", line);
    return in;
}

void redis_call_expect(const struct redis *r, const char *line, const char *want)
{
    struct bytes got = redis_call(r, line);
    cr_assert(bytes_equal_str(&got, want), "direct %s: got %s", line, bytes_show(&got));
    bytes_free(&got);
}

void redis_kill_subscribers(const struct redis *r)
{
    char want[32];
    snprintf(want, sizeof(want), ":%d\r\n", proxy_workers());
    redis_call_expect(r, "CLIENT KILL TYPE pubsub", want);
}

void redis_require_password(struct redis *r, const char *password)
{
    char line[96];
    snprintf(line, sizeof(line), "CONFIG SET requirepass %s", password);
    redis_call_expect(r, line, "+OK\r\n");
    snprintf(r->password, sizeof(r->password), "%s", password);
}

void redis_reset(const struct redis *r)
{
    static const char *const cmds[] = {"FLUSHALL", "SCRIPT FLUSH", "FUNCTION FLUSH"};
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
        redis_call_expect(r, cmds[i], "+OK\r\n");
}

void redis_wait_info(const struct redis *r, const char *field_value)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\r\n%s\r\n", field_value);
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        struct bytes in = redis_call(r, "INFO");
        bool found = in.data && strstr(in.data, needle) != NULL;
        bytes_free(&in);
        if (found)
            return;
        cr_assert(harness_now_ms() < deadline, "redis INFO never showed %s", field_value);
        harness_sleep_ms(10);
    }
}

/* Bytes received and not yet read on r's established connections. */
static unsigned long redis_unread(const struct redis *r)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert(f != NULL, "/proc/net/tcp: %s", strerror(errno));
    char line[512];
    unsigned long total = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned port, state;
        unsigned long rx;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%lx", &port, &state, &rx) == 3 &&
            (port == (unsigned)r->port || port == (unsigned)r->tls_port) &&
            state == 1 /* TCP_ESTABLISHED */)
            total += rx;
    }
    fclose(f);
    return total;
}

void redis_wait_unread(const struct redis *r, unsigned long min_bytes)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    unsigned long unread;
    while ((unread = redis_unread(r)) < min_bytes) {
        cr_assert(harness_now_ms() < deadline,
                  "Redis received %lu of the %lu bytes sent through the proxy", unread, min_bytes);
        harness_sleep_ms(5);
    }
}
