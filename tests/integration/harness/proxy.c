/* proxy.c - the nearcache fixture of the end-to-end tests. See proxy.h for
 * the contracts. */
#include "harness/proxy.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/logs.h"
#include "harness/proc.h"
#include "harness/redis.h"
#include "harness/sock.h"
#include "harness/tls.h"

#ifndef NEARCACHE_BIN
#define NEARCACHE_BIN "nearcache"
#endif

const char *harness_bin(void)
{
    const char *bin = getenv("NC_IT_BIN");
    return bin != NULL && bin[0] != '\0' ? bin : NEARCACHE_BIN;
}

bool harness_direct(void)
{
    const char *v = getenv("NC_IT_DIRECT");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* True when port accepts a connection. */
static bool accepts(int port)
{
    int fd = sock_connect(port);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

int proxy_workers(void)
{
    const char *v = getenv("NC_IT_WORKERS");
    int n = v != NULL ? atoi(v) : 1;
    return n > 0 ? n : 1;
}

/* Starts the proxy in front of upstream_port, or over TLS in front of
 * tls_port when it is not 0. */
static bool proxy_launch(struct proxy *p, int upstream_port, int tls_port, const char *config,
                         const char *const *sets)
{
    char listen[32], upstream[32], ca[320], ca_file[352], nworkers[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", tls_port != 0 ? tls_port : upstream_port);
    /* no admin endpoint unless a test sets one: proxies run side by side */
    const char *argv[64] = {harness_bin(), "--listen",         listen, "--upstream", upstream,
                            "--set",       "admin.listen=none"};
    int argc = 7;
    if (tls_port != 0) {
        harness_tls_path(ca, sizeof(ca), "ca.crt");
        snprintf(ca_file, sizeof(ca_file), "upstream.tls_ca_file=%s", ca);
        argv[argc++] = "--set";
        argv[argc++] = "upstream.tls=on";
        argv[argc++] = "--set";
        argv[argc++] = ca_file;
    }
    snprintf(nworkers, sizeof(nworkers), "workers=%d", proxy_workers());
    argv[argc++] = "--set";
    argv[argc++] = nworkers;
    if (config != NULL) {
        argv[argc++] = "--config";
        argv[argc++] = config;
    }
    for (int i = 0; sets && sets[i] && argc < 62; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    p->pid = harness_spawn_append(argv, p->log);
    return harness_wait_ready(&p->pid, p->port, accepts, "nearcache");
}

bool proxy_try_start(struct proxy *p, int upstream_port, const char *config,
                     const char *const *sets)
{
    memset(p, 0, sizeof(*p));
    if (harness_direct()) {
        p->port = upstream_port;
        return true;
    }
    harness_log_path(p->log, sizeof(p->log), "proxy");
    int tls_port = redis_tls_port(upstream_port); /* 0 unless in TLS mode */
    for (int attempt = 0; attempt < 3; attempt++) {
        do /* a stopped Redis's ports are free too, but must stay its own */
            p->port = sock_free_port();
        while (p->port == upstream_port || p->port == tls_port);
        if (proxy_launch(p, upstream_port, tls_port, config, sets))
            return true;
    }
    harness_print_tail(p->log, "proxy", 50);
    return false;
}

void proxy_start(struct proxy *p, int upstream_port, const char *const *sets)
{
    cr_assert(proxy_try_start(p, upstream_port, NULL, sets), "nearcache would not start (%s)",
              harness_bin());
}

void proxy_start_config(struct proxy *p, int upstream_port, const char *config,
                        const char *const *sets)
{
    cr_assert(proxy_try_start(p, upstream_port, config, sets),
              "nearcache would not start with --config %s (%s)", config, harness_bin());
}

bool proxy_log_contains(const struct proxy *p, const char *needle)
{
    struct bytes log = {0};
    bool found = bytes_append_file(&log, p->log) && log.data != NULL &&
                 memmem(log.data, log.len, needle, strlen(needle)) != NULL;
    bytes_free(&log);
    return found;
}

void proxy_wait_log(const struct proxy *p, const char *needle)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (!proxy_log_contains(p, needle)) {
        cr_assert(harness_now_ms() < deadline, "the proxy log never showed \"%s\" within %d ms",
                  needle, HARNESS_TIMEOUT_MS);
        harness_sleep_ms(10);
    }
}

void proxy_signal(const struct proxy *p, int sig)
{
    cr_assert(p->pid > 0, "proxy_signal: the proxy is not running");
    kill(p->pid, sig);
}

int proxy_wait(struct proxy *p, int timeout_ms)
{
    if (p->pid <= 0)
        return 0;
    int status = harness_wait_exit(p->pid, timeout_ms);
    if (status != -1)
        p->pid = 0;
    return status;
}

int proxy_stop(struct proxy *p)
{
    if (p->pid <= 0)
        return 0;
    int status = harness_terminate(p->pid);
    p->pid = 0;
    return status;
}

static const char *describe_status(int status)
{
    static char text[64];
    if (status == -1)
        snprintf(text, sizeof(text), "still running after %d ms", HARNESS_TIMEOUT_MS);
    else if (WIFSIGNALED(status))
        snprintf(text, sizeof(text), "killed by signal %d", WTERMSIG(status));
    else
        snprintf(text, sizeof(text), "exit status %d", WEXITSTATUS(status));
    return text;
}

void proxy_stop_clean(struct proxy *p)
{
    int status = proxy_stop(p);
    cr_assert(harness_exited_with(status, 0), "the proxy did not exit 0 on SIGTERM: %s",
              describe_status(status));
}

void proxy_finish(struct proxy *p)
{
    int status;
    if (p->pid > 0 && harness_reaped(p->pid, &status)) {
        p->pid = 0;
        cr_assert_fail("the proxy died during the test: %s", describe_status(status));
    }
    int fd = sock_connect_or_fail(p->port);
    /* its worker may still be reconnecting to Redis after a fault the test
     * made (with several workers, not the one the test's clients were on) */
    sock_read_until(fd, "PING", "+PONG\r\n");
    close(fd);
    proxy_stop_clean(p);
}

long long proxy_stat(int fd, const char *name)
{
    struct bytes in = {0};
    sock_call_or_fail(fd, "NEARCACHE STATS", 1, &in);
    bytes_puts(&in, "");
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\n%s:", name);
    const char *at = strstr(in.data, pattern);
    cr_assert_not_null(at, "no %s in %s", name, bytes_show(&in));
    long long v = atoll(at + strlen(pattern));
    bytes_free(&in);
    return v;
}

void cache_read(int fd, const char *line, const char *want)
{
    long long hits = proxy_stat(fd, "hits");
    for (int i = 0; proxy_stat(fd, "hits") == hits; i++) {
        cr_assert(i < 100, "%s was never served from the tier", line);
        sock_call_expect(fd, line, 1, want);
    }
}
