/* tests/unit/proxy/proto/resp_write.c - the RESP encoder, table-driven.
 *
 * Each case is encoded by both forms: into an exact-size array (checked byte
 * for byte), measured with (NULL, 0), refused by an array one byte short (left
 * untouched), and appended to an obuf (drained through a pipe and compared).
 * What it writes is then scanned back with resp.h's scanner.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/lib/buf.h"
#include "proxy/proto/resp.h"
#include "proxy/proto/resp_write.h"

#define BYTES(s) s, sizeof(s) - 1

typedef enum { W_HEADER, W_BULK, W_LINE, W_COMMAND } write_kind_e;

struct write_case {
    const char *name;
    write_kind_e kind;
    char type;               /* W_HEADER, W_LINE */
    int64_t n;               /* W_HEADER */
    const char *text;        /* W_BULK, W_LINE */
    size_t len;              /* W_BULK, W_LINE */
    int argc;                /* W_COMMAND */
    const char *const *argv; /* W_COMMAND */
    const size_t *lens;      /* W_COMMAND; NULL: strlen */
    const char *want;        /* the exact encoding */
    size_t want_len;         /* its length */
    resp_status_e scan;      /* what resp_scan_reply/request says of it alone */
    char scan_type;          /* reply: the type scanned back */
    int64_t scan_count;      /* reply: its count */
};

static const char *const GET_K[] = {"GET", "k"};
static const char *const PING[] = {"PING"};
static const char *const BINARY[] = {"SET", "a\r\nb", "\0x"};
static const size_t BINARY_LENS[] = {3, 4, 2};
static const char *const EMPTY_ARG[] = {"ECHO", ""};
static const char *const TRACKING[] = {"CLIENT", "TRACKING", "on",    "REDIRECT", "12",
                                       "BCAST",  "PREFIX",   "user:", "PREFIX",   "a"};

#define HEADER(nm, t, v, out, st, ct, cn)                                                          \
    {                                                                                              \
        nm, W_HEADER, t, v, NULL, 0, 0, NULL, NULL, BYTES(out), st, ct, cn                         \
    }
#define BULK(nm, s, out)                                                                           \
    {                                                                                              \
        nm, W_BULK, 0, 0, BYTES(s), 0, NULL, NULL, BYTES(out), RESP_OK, '$', sizeof(s) - 1         \
    }
#define LINE(nm, t, s, out)                                                                        \
    {                                                                                              \
        nm, W_LINE, t, 0, BYTES(s), 0, NULL, NULL, BYTES(out), RESP_OK, t, 0                       \
    }
#define COMMAND(nm, av, ln, out)                                                                   \
    {                                                                                              \
        nm, W_COMMAND, 0, 0, NULL, 0, sizeof(av) / sizeof(av[0]), av, ln, BYTES(out), RESP_OK, 0,  \
            0                                                                                      \
    }

static const struct write_case CASES[] = {
    HEADER("array", '*', 3, "*3\r\n", RESP_INCOMPLETE, 0, 0),
    HEADER("empty array", '*', 0, "*0\r\n", RESP_OK, '*', 0),
    HEADER("null array", '*', -1, "*-1\r\n", RESP_OK, '*', -1),
    HEADER("map", '%', 2, "%2\r\n", RESP_INCOMPLETE, 0, 0),
    HEADER("set", '~', 10, "~10\r\n", RESP_INCOMPLETE, 0, 0),
    HEADER("push", '>', 3, ">3\r\n", RESP_INCOMPLETE, 0, 0),
    HEADER("attribute", '|', 1, "|1\r\n", RESP_INCOMPLETE, 0, 0),
    HEADER("bulk header", '$', 5, "$5\r\n", RESP_INCOMPLETE, 0, 0),
    HEADER("null bulk", '$', -1, "$-1\r\n", RESP_OK, '$', -1),
    HEADER("integer 0", ':', 0, ":0\r\n", RESP_OK, ':', 0),
    HEADER("integer", ':', 1234567, ":1234567\r\n", RESP_OK, ':', 0),
    HEADER("negative integer", ':', -42, ":-42\r\n", RESP_OK, ':', 0),
    HEADER("largest integer", ':', INT64_MAX, ":9223372036854775807\r\n", RESP_OK, ':', 0),
    HEADER("smallest integer", ':', INT64_MIN, ":-9223372036854775808\r\n", RESP_OK, ':', 0),
    BULK("bulk", "hello", "$5\r\nhello\r\n"),
    BULK("empty bulk", "", "$0\r\n\r\n"),
    BULK("binary bulk", "a\r\n\0b", "$5\r\na\r\n\0b\r\n"),
    BULK("ten bytes", "0123456789", "$10\r\n0123456789\r\n"),
    LINE("simple string", '+', "OK", "+OK\r\n"),
    LINE("empty simple string", '+', "", "+\r\n"),
    LINE("error", '-', "ERR unknown command", "-ERR unknown command\r\n"),
    LINE("error with CR and LF", '-', "ERR a\r\nb\nc\r", "-ERR a  b c \r\n"),
    COMMAND("command", GET_K, NULL, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
    COMMAND("one word", PING, NULL, "*1\r\n$4\r\nPING\r\n"),
    COMMAND("binary arguments", BINARY, BINARY_LENS,
            "*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$2\r\n\0x\r\n"),
    COMMAND("empty argument", EMPTY_ARG, NULL, "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
    COMMAND("ten arguments", TRACKING, NULL,
            "*10\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\non\r\n$8\r\nREDIRECT\r\n$2\r\n12\r\n"
            "$5\r\nBCAST\r\n$6\r\nPREFIX\r\n$5\r\nuser:\r\n$6\r\nPREFIX\r\n$1\r\na\r\n"),
};

#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

static size_t write_case(const struct write_case *c, char *out, size_t cap)
{
    switch (c->kind) {
    case W_HEADER:
        return resp_write_header(out, cap, c->type, c->n);
    case W_BULK:
        return resp_write_bulk(out, cap, c->text, c->len);
    case W_LINE:
        return resp_write_line(out, cap, c->type, c->text, c->len);
    case W_COMMAND:
        return resp_write_command(out, cap, c->argc, c->argv, c->lens);
    }
    return 0;
}

static int append_case(const struct write_case *c, struct obuf *b)
{
    switch (c->kind) {
    case W_HEADER:
        return resp_append_header(b, c->type, c->n);
    case W_BULK:
        return resp_append_bulk(b, c->text, c->len);
    case W_LINE:
        return resp_append_line(b, c->type, c->text, c->len);
    case W_COMMAND:
        return resp_append_command(b, c->argc, c->argv, c->lens);
    }
    return -1;
}

/* Drains b through a pipe into out (cap bytes); returns how many came out. */
static size_t drain(struct obuf *b, char *out, size_t cap)
{
    int fds[2];
    size_t got = 0, queued = b->len;

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(obuf_write(b, fds[1], SIZE_MAX), (ssize_t)queued);
    close(fds[1]);
    for (ssize_t n; got < cap && (n = read(fds[0], out + got, cap - got)) > 0;)
        got += (size_t)n;
    close(fds[0]);
    return got;
}

Test(resp_write, array_form_table)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct write_case *c = &CASES[i];
        char out[256], want_untouched[256];

        cr_expect_eq(write_case(c, NULL, 0), c->want_len, "%s: measured", c->name);
        memset(out, 'z', sizeof(out));
        cr_expect_eq(write_case(c, out, c->want_len - 1), c->want_len, "%s: short", c->name);
        memset(want_untouched, 'z', sizeof(want_untouched));
        cr_expect(memcmp(out, want_untouched, sizeof(out)) == 0, "%s: short array written",
                  c->name);
        cr_assert_eq(write_case(c, out, c->want_len), c->want_len, "%s: exact", c->name);
        cr_expect(memcmp(out, c->want, c->want_len) == 0, "%s: got %.*s", c->name, (int)c->want_len,
                  out);
        cr_expect_eq(out[c->want_len], 'z', "%s: wrote past its length", c->name);
        cr_expect_eq(write_case(c, out, sizeof(out)), c->want_len, "%s: roomy", c->name);
    }
}

Test(resp_write, obuf_form_table)
{
    struct obuf b = {0};
    char all[4096];
    size_t total = 0;

    for (size_t i = 0; i < NCASES; i++) {
        const struct write_case *c = &CASES[i];
        char out[256];
        size_t got;

        cr_assert_eq(append_case(c, &b), 0, "%s", c->name);
        cr_expect_eq(b.len, c->want_len, "%s: queued %zu", c->name, b.len);
        got = drain(&b, out, sizeof(out));
        cr_expect(got == c->want_len && memcmp(out, c->want, got) == 0, "%s: got %.*s", c->name,
                  (int)got, out);
    }
    /* All cases into one queue: each append goes on from the last. */
    for (size_t i = 0; i < NCASES; i++) {
        cr_assert_eq(append_case(&CASES[i], &b), 0);
        memcpy(all + total, CASES[i].want, CASES[i].want_len);
        total += CASES[i].want_len;
    }
    char out[4096];
    cr_expect_eq(drain(&b, out, sizeof(out)), total);
    cr_expect(memcmp(out, all, total) == 0);
    obuf_deinit(&b);
}

/* A line and a bulk longer than the line form's copy chunk and the obuf's. */
Test(resp_write, obuf_form_long)
{
    size_t n = 40000;
    char *text = malloc(n), *want = malloc(n + 64), *out = malloc(2 * n + 128);
    struct obuf b = {0};
    size_t w;

    cr_assert(text && want && out);
    for (size_t i = 0; i < n; i++)
        text[i] = i % 97 == 0 ? '\n' : (char)('a' + i % 26);
    w = resp_write_line(want, n + 64, '-', text, n);
    cr_assert_eq(w, n + 3);
    for (size_t i = 1; i <= n; i++)
        cr_assert_neq(want[i], '\n');
    cr_assert_eq(resp_append_line(&b, '-', text, n), 0);
    cr_assert_eq(drain(&b, out, 2 * n + 128), w);
    cr_expect(memcmp(out, want, w) == 0);

    w = resp_write_bulk(want, n + 64, text, n);
    cr_assert_eq(w, n + 10); /* "$40000\r\n" */
    cr_assert_eq(resp_append_bulk(&b, text, n), 0);
    cr_assert_eq(drain(&b, out, 2 * n + 128), w);
    cr_expect(memcmp(out, want, w) == 0);
    obuf_deinit(&b);
    free(text);
    free(want);
    free(out);
}

/* Each case alone, scanned back: replies with the reply scanner, commands
 * with the request scanner (every argument as given). */
Test(resp_write, scans_back)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct write_case *c = &CASES[i];
        struct resp_scanner s;
        char out[256];
        size_t len = write_case(c, out, sizeof(out));

        resp_scanner_reset(&s);
        if (c->kind == W_COMMAND) {
            struct resp_request req;
            cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, out, len, &req), RESP_OK, "%s",
                         c->name);
            cr_expect_eq(req.kind, RESP_REQ_MULTIBULK, "%s", c->name);
            cr_expect_eq(req.len, len, "%s", c->name);
            cr_assert_eq(req.argc, c->argc, "%s", c->name);
            for (int a = 0; a < c->argc; a++) {
                struct resp_view v = resp_request_arg(&req, out, a);
                size_t alen = c->lens ? c->lens[a] : strlen(c->argv[a]);
                cr_expect(v.len == alen && memcmp(out + v.off, c->argv[a], alen) == 0,
                          "%s: argument %d", c->name, a);
            }
            continue;
        }
        struct resp_reply rep;
        resp_status_e st = resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, out, len, &rep);
        cr_expect_eq(st, c->scan, "%s: status %d", c->name, st);
        if (st != RESP_OK)
            continue;
        cr_expect_eq(rep.len, len, "%s", c->name);
        cr_expect_eq(rep.type, c->scan_type, "%s: type %c", c->name, rep.type);
        cr_expect_eq(rep.count, c->scan_count, "%s: count %lld", c->name, (long long)rep.count);
    }
}

/* Aggregates composed from the pieces frame as one reply. */
Test(resp_write, composed_replies_scan_back)
{
    static const struct {
        const char *name;
        char type;
        int64_t count;
        int elements; /* values written after the header */
    } AGG[] = {
        {"array of bulks", '*', 3, 3},
        {"map", '%', 2, 4},
        {"set", '~', 2, 2},
        {"push", '>', 3, 3},
    };

    for (size_t i = 0; i < sizeof(AGG) / sizeof(AGG[0]); i++) {
        char out[512];
        size_t w = resp_write_header(out, sizeof(out), AGG[i].type, AGG[i].count);
        struct resp_scanner s;
        struct resp_reply rep;

        for (int e = 0; e < AGG[i].elements; e++) {
            if (e % 3 == 0)
                w += resp_write_bulk(out + w, sizeof(out) - w, "value", 5);
            else if (e % 3 == 1)
                w += resp_write_header(out + w, sizeof(out) - w, ':', -e);
            else
                w += resp_write_line(out + w, sizeof(out) - w, '+', "OK", 2);
        }
        resp_scanner_reset(&s);
        cr_assert_eq(resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, out, w, &rep), RESP_OK, "%s",
                     AGG[i].name);
        cr_expect_eq(rep.len, w, "%s", AGG[i].name);
        cr_expect_eq(rep.type, AGG[i].type, "%s", AGG[i].name);
        cr_expect_eq(rep.count, AGG[i].count, "%s", AGG[i].name);
        resp_scanner_reset(&s);
        cr_expect_eq(resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, out, w - 1, &rep), RESP_INCOMPLETE,
                     "%s: one byte short", AGG[i].name);
    }
}
