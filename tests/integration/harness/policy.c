/* policy.c - the fixture of the policy tests. See policy.h for the
 * contracts. */
#include "harness/policy.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/proc.h"
#include "harness/session.h"
#include "harness/sock.h"

static char cfg_dir[256];
char cfg_path[320];

void fixture_policy_stop(void)
{
    fixture_stop();
    if (cfg_dir[0] != '\0')
        harness_rmdir(cfg_dir);
    cfg_dir[0] = '\0';
}

const char *const NO_TRACKING[] = {"cache.tracking=false", NULL};

/* A path in the test's temp dir (created on first use, removed by .fini). */
const char *temp_path(char *dst, size_t len, const char *name)
{
    if (cfg_dir[0] == '\0')
        harness_mkdtemp(cfg_dir, sizeof(cfg_dir));
    int n = snprintf(dst, len, "%s/%s", cfg_dir, name);
    cr_assert(n > 0 && (size_t)n < len, "temp path too long: %s/%s", cfg_dir, name);
    return dst;
}

/* (Re)writes the test's config file with yaml; returns its path. */
const char *write_config(const char *yaml)
{
    temp_path(cfg_path, sizeof(cfg_path), "nearcache.yaml");
    harness_write_file(cfg_path, yaml);
    return cfg_path;
}

/* Starts fx_proxy with yaml as its config file and the settings in sets. */
void start_with_policy(const char *yaml, const char *const *sets)
{
    harness_require_proxy();
    proxy_start_config(&fx_proxy, fx_redis.port, write_config(yaml), sets);
}

/* "-ERR policy <rule>: <reason>\r\n" appended to b. */
void add_rejection(struct bytes *b, const char *rule, const char *reason)
{
    bytes_printf(b, "-ERR policy %s: %s\r\n", rule, reason);
}

/* printf into one of 8 static buffers used in turn: enough for the
 * arguments of one call. */
static const char *ring_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *ring_printf(const char *fmt, ...)
{
    static char ring[8][320];
    static unsigned next;
    char *dst = ring[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, sizeof(ring[0]), fmt, ap);
    va_end(ap);
    return dst;
}

/* "-ERR policy <rule>: <reason>\r\n". */
const char *rejection(const char *rule, const char *reason)
{
    return ring_printf("-ERR policy %s: %s\r\n", rule, reason);
}

const char *value_reason(size_t size, size_t limit)
{
    return ring_printf("value of %zu bytes is over the %zu byte limit", size, limit);
}

const char *key_reason(size_t size, size_t limit)
{
    return ring_printf("key of %zu bytes is over the %zu byte limit", size, limit);
}

/* Sends the whole requests in req in one write, reads n replies and fails
 * unless they are exactly want. */
void exchange_expect(int fd, const struct bytes *req, size_t n, const struct bytes *want,
                     const char *what)
{
    struct bytes in = {0};
    sock_status_e st = sock_exchange(fd, req->data, req->len, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    if (st == SOCK_DONE)
        st = sock_read_replies(fd, &in, 0, n, HARNESS_TIMEOUT_MS);
    cr_assert(st == SOCK_DONE, "%s: %s after %s", what,
              st == SOCK_EOF ? "connection closed" : "no reply", bytes_show(&in));
    bytes_assert_equal(what, want, &in);
    bytes_free(&in);
}

/* exchange_expect with a one-reply request and a NUL-terminated want. */
void request_expect(int fd, const struct bytes *req, const char *want, const char *what)
{
    struct bytes w = {0};
    bytes_puts(&w, want);
    exchange_expect(fd, req, 1, &w, what);
    bytes_free(&w);
}

/* n bytes of filler (caller frees): a pattern with CR, LF and NUL in it. */
char *filler(size_t n, char seed)
{
    char *p = malloc(n ? n : 1);
    cr_assert(p != NULL);
    static const char PATTERN[] = "nearcache policy test value\r\n\0";
    for (size_t i = 0; i < n; i++)
        p[i] = i % 61 == 0 ? seed : PATTERN[i % (sizeof(PATTERN) - 1)];
    return p;
}

/* SET key value directly on Redis, binary safe. */
void redis_set_raw(const char *key, const char *value, size_t n)
{
    int fd = sock_connect_or_fail(fx_redis.port);
    struct bytes req = {0};
    const char *argv[] = {"SET", key, value};
    const size_t lens[] = {3, strlen(key), n};
    req_addv(&req, 3, argv, lens);
    request_expect(fd, &req, "+OK\r\n", "direct SET");
    bytes_free(&req);
    close(fd);
}

/* The body of NEARCACHE POLICY (a bulk string) into out, NUL-terminated. */
static void policy_text(int fd, struct bytes *out)
{
    struct bytes in = {0};
    sock_call_or_fail(fd, "NEARCACHE POLICY", 1, &in);
    bytes_puts(&in, "");
    cr_assert(in.data[0] == '$', "NEARCACHE POLICY is not a bulk string: %s", bytes_show(&in));
    const char *nl = strstr(in.data, "\r\n");
    long long n = atoll(in.data + 1);
    size_t head = (size_t)(nl - in.data) + 2;
    cr_assert(n >= 0 && head + (size_t)n + 2 == in.len, "NEARCACHE POLICY framing: %s",
              bytes_show(&in));
    out->len = 0;
    bytes_append(out, in.data + head, (size_t)n);
    bytes_free(&in);
}

/* The line of NEARCACHE POLICY starting with prefix, or NULL. */
static const char *find_line(const struct bytes *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (const char *at = text->data; at != NULL && *at != '\0';) {
        if (strncmp(at, prefix, plen) == 0)
            return at;
        at = strstr(at, "\r\n");
        if (at != NULL)
            at += 2;
    }
    return NULL;
}

/* The counters of one rule from NEARCACHE POLICY ("validate", "cache",
 * "invalidate" or "module" for kind). */
struct counts rule_counts(int fd, const char *kind, const char *name)
{
    struct bytes text = {0};
    policy_text(fd, &text);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "rule:%s:%s:", kind, name);
    const char *line = find_line(&text, prefix);
    cr_assert_not_null(line, "NEARCACHE POLICY has no %s line:\n%s", prefix,
                       text.data ? text.data : "");
    struct counts c;
    int got =
        sscanf(line + strlen(prefix), "hits=%lld,misses=%lld,rejections=%lld,invalidations=%lld",
               &c.hits, &c.misses, &c.rejections, &c.invalidations);
    cr_assert_eq(got, 4, "malformed NEARCACHE POLICY line: %.*s", (int)strcspn(line, "\r\n"), line);
    bytes_free(&text);
    return c;
}

/* Fails unless NEARCACHE POLICY holds exactly these counters for the rule
 * (its writes, an estimate from the hot-key sample, are not compared). */
void rule_expect(int fd, const char *kind, const char *name, long long hits, long long misses,
                 long long rejections, long long invalidations)
{
    struct bytes text = {0};
    policy_text(fd, &text);
    char line[256];
    snprintf(line, sizeof(line),
             "rule:%s:%s:hits=%lld,misses=%lld,rejections=%lld,invalidations=%lld,writes=", kind,
             name, hits, misses, rejections, invalidations);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "rule:%s:%s:", kind, name);
    const char *at = find_line(&text, prefix);
    cr_assert(at != NULL && strncmp(at, line, strlen(line)) == 0,
              "want %s...; NEARCACHE POLICY:\n%s", line, text.data ? text.data : "");
    bytes_free(&text);
}

/* Reads line through fd until the global hits counter grows (a fill, then a
 * hit); every reply must be want. */
void cache_key(int fd, const char *line, const char *want)
{
    long long hits = proxy_stat(fd, "hits");
    for (int i = 0; proxy_stat(fd, "hits") == hits; i++) {
        cr_assert(i < 100, "%s was never served from the tier", line);
        sock_call_expect(fd, line, 1, want);
    }
}
