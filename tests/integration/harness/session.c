/* session.c - scripted client sessions and the direct-vs-proxy transcript
 * comparison for the end-to-end tests. See session.h for the contracts. */
#include "harness/session.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/clock.h"
#include "harness/sock.h"

/* Which run a session belongs to, for messages: "direct", "proxy" or "test". */
static const char *run_name = "test";

/* ---- sessions ---------------------------------------------------------------- */

void sess_open(struct sess *s, int port, const char *name, struct bytes *transcript)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->transcript = transcript;
    s->fd = sock_connect(port);
    cr_assert(s->fd >= 0, "%s run: session %s: connect to %d: %s", run_name, name, port,
              strerror(errno));
}

void sess_close(struct sess *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    bytes_free(&s->in);
    bytes_free(&s->reply);
}

/* Sets s->reply to s->in without its last whole reply (the sentinel's). */
static void strip_sentinel(struct sess *s)
{
    size_t off = 0, last = s->in.len;
    while (off < s->in.len) {
        size_t end = reply_end(s->in.data, s->in.len, off);
        if (end == 0 || end == REPLY_BAD) {
            last = s->in.len;
            break;
        }
        last = off;
        off = end;
    }
    s->reply.len = 0;
    bytes_append(&s->reply, s->in.data, last);
}

static void record(struct sess *s, const char *label, bool closed)
{
    if (s->transcript == NULL)
        return;
    bytes_printf(s->transcript, "\n--- %s: %s\n", s->name, label);
    bytes_append(s->transcript, s->in.data, s->in.len);
    if (closed)
        bytes_puts(s->transcript, "[connection closed]");
}

static const struct bytes *step(struct sess *s, const void *req, size_t n, const char *label,
                                bool quiet)
{
    char token[32];
    int tlen = snprintf(token, sizeof(token), "nc-sync-%u", ++s->seq);
    struct bytes out = {0};
    bytes_append(&out, req, n);
    bytes_printf(&out, "*2\r\n$4\r\nPING\r\n$%d\r\n%s\r\n", tlen, token);
    char suffix[40];
    size_t slen = (size_t)snprintf(suffix, sizeof(suffix), "%s\r\n", token);
    s->in.len = 0;
    sock_status_e st = SOCK_EOF;
    if (s->fd >= 0)
        st = sock_exchange(s->fd, out.data, out.len, &s->in, suffix, slen, HARNESS_TIMEOUT_MS);
    bytes_free(&out);
    cr_assert(st != SOCK_TIMEOUT, "%s run: session %s: no reply to [%s] within %d ms; received %s",
              run_name, s->name, label, HARNESS_TIMEOUT_MS, bytes_show(&s->in));
    if (st == SOCK_EOF && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (!quiet)
        record(s, label, st == SOCK_EOF);
    if (st == SOCK_EOF) {
        s->reply.len = 0;
        bytes_append(&s->reply, s->in.data, s->in.len);
    } else {
        strip_sentinel(s);
    }
    return &s->reply;
}

/* A one-line label for a request written as lines. */
static void lines_label(char *dst, size_t len, const char *lines)
{
    snprintf(dst, len, "%s", lines ? lines : "(sync)");
    for (char *c = dst; *c; c++)
        if (*c == '\n')
            *c = ';';
}

static const struct bytes *step_lines(struct sess *s, const char *lines, bool quiet)
{
    struct bytes req = {0};
    char label[160];
    lines_label(label, sizeof(label), lines);
    if (lines)
        req_lines(&req, lines);
    const struct bytes *reply = step(s, req.data, req.len, label, quiet);
    bytes_free(&req);
    return reply;
}

const struct bytes *sess_do(struct sess *s, const char *lines)
{
    return step_lines(s, lines, false);
}

const struct bytes *sess_do_quiet(struct sess *s, const char *lines)
{
    return step_lines(s, lines, true);
}

const struct bytes *sess_do_raw(struct sess *s, const void *req, size_t n)
{
    struct bytes label = {0};
    bytes_escape(&label, req, n > 80 ? 80 : n);
    if (n > 80)
        bytes_printf(&label, "... (%zu bytes)", n);
    const struct bytes *reply = step(s, req, n, label.data ? label.data : "", false);
    bytes_free(&label);
    return reply;
}

void sess_send(struct sess *s, const char *lines)
{
    struct bytes req = {0}, in = {0};
    req_lines(&req, lines);
    sock_status_e st = sock_exchange(s->fd, req.data, req.len, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    cr_assert(st == SOCK_DONE && in.len == 0, "%s run: session %s: sending [%s]: %s", run_name,
              s->name, lines, st == SOCK_DONE ? bytes_show(&in) : "connection closed");
    if (s->transcript)
        bytes_printf(s->transcript, "\n--- %s: (sent) %s\n", s->name, lines);
    bytes_free(&req);
    bytes_free(&in);
}

void sess_expect_bytes(const struct sess *s, const void *expected, size_t n)
{
    if (s->reply.len == n && (n == 0 || memcmp(s->reply.data, expected, n) == 0))
        return;
    struct bytes want = {0};
    bytes_append(&want, expected, n);
    cr_assert_fail("%s run: session %s: expected %s, got %s", run_name, s->name, bytes_show(&want),
                   bytes_show(&s->reply));
    bytes_free(&want);
}

void sess_expect(const struct sess *s, const char *expected)
{
    sess_expect_bytes(s, expected, strlen(expected));
}

/* ---- comparison -------------------------------------------------------------- */

/* Prints b[from..at+200) escaped, marking `at`. A step label at `from` is
 * printed as it is (it is escaped text already). */
static void show_context(const char *who, const struct bytes *b, size_t at, size_t from)
{
    struct bytes e = {0};
    size_t end = at + 200 < b->len ? at + 200 : b->len;
    if (at - from > 4 && memcmp(b->data + from, "--- ", 4) == 0) {
        const char *eol = memchr(b->data + from, '\n', at - from);
        size_t label_end = eol ? (size_t)(eol - b->data) + 1 : at;
        bytes_append(&e, b->data + from, label_end - from);
        from = label_end;
    }
    bytes_escape(&e, b->data + from, at - from);
    bytes_puts(&e, " <<HERE>> ");
    if (at < b->len)
        bytes_escape(&e, b->data + at, end - at);
    if (end < b->len)
        bytes_puts(&e, "...");
    fprintf(stderr, "%-6s (%zu bytes): %s\n", who, b->len, e.data);
    bytes_free(&e);
}

/* Fails, showing where a and b part, unless they are identical. */
static void assert_same(const char *what, const char *a_name, const struct bytes *a,
                        const char *b_name, const struct bytes *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    size_t at = 0;
    while (at < n && a->data[at] == b->data[at])
        at++;
    if (at == a->len && at == b->len)
        return;
    /* Show from the label of the step where they part, or 200 bytes back. */
    size_t from = at > 200 ? at - 200 : 0;
    for (size_t i = at; i > from; i--) {
        if (i >= 5 && memcmp(a->data + i - 5, "\n--- ", 5) == 0) {
            from = i - 4;
            break;
        }
    }
    fprintf(stderr, "\n%s: %s and %s differ at byte %zu\n", what, a_name, b_name, at);
    show_context(a_name, a, at, from);
    show_context(b_name, b, at, from);
    cr_assert_fail("%s: %s (%zu bytes) and %s (%zu bytes) differ at byte %zu; context above", what,
                   a_name, a->len, b_name, b->len, at);
}

void compare_bytes(const char *what, const struct bytes *direct, const struct bytes *proxied)
{
    assert_same(what, "direct", direct, "proxy", proxied);
}

void bytes_assert_equal(const char *what, const struct bytes *want, const struct bytes *got)
{
    assert_same(what, "want", want, "got", got);
}

void compare_scenario(const struct redis *r, const struct proxy *p, scenario_fn fn, const void *arg)
{
    struct run direct = {.port = r->port, .redis = r, .arg = arg};
    struct run proxied = {.port = p->port, .redis = r, .arg = arg};
    run_name = "direct";
    redis_reset(r);
    fn(&direct);
    run_name = "proxy";
    redis_reset(r);
    fn(&proxied);
    run_name = "test";
    compare_bytes("transcript", &direct.transcript, &proxied.transcript);
    bytes_free(&direct.transcript);
    bytes_free(&proxied.transcript);
}

void compare_stream(const struct redis *r, const struct proxy *p, const void *req, size_t n)
{
    struct bytes got[2] = {{0}};
    const int ports[2] = {r->port, p->port};
    static const char *const names[2] = {"direct", "proxy"};
    for (int i = 0; i < 2; i++) {
        struct sess s;
        run_name = names[i];
        redis_reset(r);
        sess_open(&s, ports[i], "stream", &got[i]);
        sess_do_raw(&s, req, n);
        sess_close(&s);
    }
    run_name = "test";
    compare_bytes("reply stream", &got[0], &got[1]);
    bytes_free(&got[0]);
    bytes_free(&got[1]);
}

void sess_do_all(struct sess *s, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sess_do(s, lines[i]);
}

/* The lines of a compare_steps() call, for its scenario. */
struct steps {
    const char *const *lines;
    size_t n;
};

static void steps_scenario(struct run *run)
{
    const struct steps *steps = run->arg;
    struct sess s;
    sess_open(&s, run->port, "A", &run->transcript);
    sess_do_all(&s, steps->lines, steps->n);
    sess_close(&s);
}

void compare_steps(const struct redis *r, struct proxy *p, const char *const *lines, size_t n)
{
    const struct steps steps = {lines, n};
    compare_scenario(r, p, steps_scenario, &steps);
    proxy_finish(p);
}
