/* tests/unit/proxy/proto/args.c - the argument iterator and the integer
 * parser, table-driven.
 *
 * Each frame is scanned whole and fed one byte at a time (the scanner then
 * rebuilds its kept views with resp_args_walk), and its arguments are
 * reached in order, by index in every order, and as whole encodings.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/args.h"
#include "proxy/proto/resp.h"
#include "proxy/proto/resp_write.h"

#define BYTES(s) s, sizeof(s) - 1

#define MAX_ARGS 40

/* A request: its arguments, encoded with resp_write_command(). */
struct frame {
    char *buf;
    size_t len;
    int argc;
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    char storage[MAX_ARGS][160];
};

/* Argument i of a frame of n: lengths 0, 1, 9, 10, 99, 100, 150 in turn (one
 * to three length digits), bytes that vary with i, '\r' and NUL included. */
static void frame_build(struct frame *f, int n)
{
    static const size_t LENS[] = {3, 0, 1, 9, 10, 99, 100, 150};

    f->argc = n;
    for (int i = 0; i < n; i++) {
        size_t len = LENS[i % 8];
        for (size_t j = 0; j < len; j++)
            f->storage[i][j] = (char)((i * 31 + (int)j * 7) % 256);
        if (i == 0)
            memcpy(f->storage[i], "SET", 3);
        f->argv[i] = f->storage[i];
        f->lens[i] = len;
    }
    f->len = resp_write_command(NULL, 0, n, f->argv, f->lens);
    f->buf = malloc(f->len);
    cr_assert_not_null(f->buf);
    cr_assert_eq(resp_write_command(f->buf, f->len, n, f->argv, f->lens), f->len);
}

static void scan_whole(const struct frame *f, struct resp_request *req)
{
    struct resp_scanner s;

    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, f->buf, f->len, req), RESP_OK);
    cr_assert_eq(req->argc, f->argc);
}

/* Fed one more byte per call, each time in a fresh exact-size copy. */
static void scan_split(const struct frame *f, struct resp_request *req)
{
    struct resp_scanner s;
    resp_status_e st = RESP_INCOMPLETE;

    resp_scanner_reset(&s);
    for (size_t n = 1; n <= f->len && st == RESP_INCOMPLETE; n++) {
        char *copy = malloc(n);
        cr_assert_not_null(copy);
        memcpy(copy, f->buf, n);
        st = resp_scan_request(&s, &RESP_LIMITS_DEFAULT, copy, n, req);
        cr_assert(st == RESP_OK || n < f->len, "complete only at the end");
        free(copy);
    }
    cr_assert_eq(st, RESP_OK);
    cr_assert_eq(req->argc, f->argc);
}

static int view_eq(const struct frame *f, struct resp_view v, int i)
{
    return v.len == f->lens[i] && memcmp(f->buf + v.off, f->argv[i], v.len) == 0;
}

static const int ARGCS[] = {1, 2, 7, 8, 9, 10, 17, MAX_ARGS};
#define NARGCS (sizeof(ARGCS) / sizeof(ARGCS[0]))

static void check_next(const struct frame *f, const struct resp_request *req)
{
    struct resp_args a;
    struct resp_view v = {12345, 678};
    int i = 0;

    resp_args_init(&a, f->buf, req);
    for (; resp_args_next(&a, &v); i++) {
        cr_assert_lt(i, f->argc);
        cr_expect(view_eq(f, v, i), "argc %d: argument %d", f->argc, i);
        cr_expect_eq(a.idx, i);
    }
    cr_expect_eq(i, f->argc);
    cr_expect(resp_args_next(&a, &v) == false, "stays at the end");
    cr_expect(view_eq(f, v, f->argc - 1), "unchanged after the end");
}

Test(resp_args, next_visits_every_argument_in_order)
{
    for (size_t k = 0; k < NARGCS; k++) {
        struct frame f;
        struct resp_request req;

        frame_build(&f, ARGCS[k]);
        scan_whole(&f, &req);
        check_next(&f, &req);
        scan_split(&f, &req);
        check_next(&f, &req);
        free(f.buf);
    }
}

/* By index: forwards, backwards, strided, repeated, and then next(). */
Test(resp_args, get_in_every_order)
{
    for (size_t k = 0; k < NARGCS; k++) {
        struct frame f;
        struct resp_request req;
        struct resp_args a;
        struct resp_view v = {0, 0};
        int n = ARGCS[k];

        frame_build(&f, n);
        scan_split(&f, &req);
        resp_args_init(&a, f.buf, &req);
        for (int i = 0; i < n; i++)
            cr_expect(view_eq(&f, resp_args_get(&a, i), i), "argc %d: forward %d", n, i);
        for (int i = n - 1; i >= 0; i--)
            cr_expect(view_eq(&f, resp_args_get(&a, i), i), "argc %d: backward %d", n, i);
        for (int step = 2; step < 6; step++)
            for (int i = step % n; i < n; i += step) {
                cr_expect(view_eq(&f, resp_args_get(&a, i), i), "argc %d: stride %d", n, i);
                cr_expect(view_eq(&f, resp_args_get(&a, i), i), "argc %d: again %d", n, i);
                cr_expect(view_eq(&f, resp_args_get(&a, n - 1 - i), n - 1 - i));
            }
        for (int i = 0; i < n; i++) {
            resp_args_get(&a, i);
            cr_expect_eq(a.idx, i);
            if (i + 1 < n) {
                cr_assert(resp_args_next(&a, &v));
                cr_expect(view_eq(&f, v, i + 1), "argc %d: next after get %d", n, i);
            } else {
                cr_expect(!resp_args_next(&a, &v));
            }
        }
        /* resp_request_arg is the same walk. */
        for (int i = 0; i < n; i++)
            cr_expect(view_eq(&f, resp_request_arg(&req, f.buf, i), i), "request_arg %d", i);
        free(f.buf);
    }
}

Test(resp_args, get_out_of_range)
{
    struct frame f;
    struct resp_request req;
    struct resp_args a;
    static const int64_t BAD[] = {-1, INT64_MIN, 12, 13, INT64_MAX};

    frame_build(&f, 12);
    scan_whole(&f, &req);
    resp_args_init(&a, f.buf, &req);
    resp_args_get(&a, 9);
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        struct resp_view v = resp_args_get(&a, BAD[i]);
        cr_expect(v.off == 0 && v.len == 0, "index %lld", (long long)BAD[i]);
        cr_expect_eq(a.idx, 9, "index %lld moved the iterator", (long long)BAD[i]);
        cr_expect(view_eq(&f, a.view, 9));
        v = resp_request_arg(&req, f.buf, BAD[i]);
        cr_expect(v.off == 0 && v.len == 0, "request_arg %lld", (long long)BAD[i]);
    }
    free(f.buf);
}

/* Inline and empty requests have no arguments here. */
Test(resp_args, other_kinds_have_none)
{
    static const struct {
        const char *in;
        size_t len;
        resp_req_kind_e kind;
    } CASES[] = {
        {BYTES("GET k\r\n"), RESP_REQ_INLINE},
        {BYTES("\r\n"), RESP_REQ_EMPTY},
        {BYTES("*0\r\n"), RESP_REQ_EMPTY},
        {BYTES("*-1\r\n"), RESP_REQ_EMPTY},
    };

    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        struct resp_scanner s;
        struct resp_request req;
        struct resp_args a;
        struct resp_view v = {0, 0};

        resp_scanner_reset(&s);
        cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, CASES[i].in, CASES[i].len, &req),
                     RESP_OK);
        cr_assert_eq(req.kind, CASES[i].kind);
        resp_args_init(&a, CASES[i].in, &req);
        cr_expect(!resp_args_next(&a, &v), "case %zu", i);
        v = resp_args_get(&a, 0);
        cr_expect(v.off == 0 && v.len == 0, "case %zu", i);
    }
}

/* Redis skips the byte after each header's '\r' and the two after each
 * payload unchecked; the walk must not look at them either. */
Test(resp_args, skipped_bytes_are_not_read)
{
    static const char IN[] = "*10\rx$3\ryGETab$1\r\rkcd$2\rZk2\r\n"
                             "$2\r\nk3\r\n$2\r\nk4\r\n$2\r\nk5\r\n$2\r\nk6\r\n$2\r\nk7\r\n"
                             "$2\r.k8..$10\r.0123456789\0\0";
    static const char *const WANT[] = {"GET", "k",  "k2", "k3", "k4",
                                       "k5",  "k6", "k7", "k8", "0123456789"};
    struct resp_scanner s;
    struct resp_request req;
    struct resp_args a;
    struct resp_view v = {0, 0};
    int i = 0;

    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, IN, sizeof(IN) - 1, &req), RESP_OK);
    cr_assert_eq(req.argc, 10);
    resp_args_init(&a, IN, &req);
    for (; resp_args_next(&a, &v); i++)
        cr_expect(v.len == strlen(WANT[i]) && memcmp(IN + v.off, WANT[i], v.len) == 0,
                  "argument %d", i);
    cr_expect_eq(i, 10);
    v = resp_args_encoding(resp_args_get(&a, 9));
    cr_expect(v.len == 17 && memcmp(IN + v.off, "$10\r.0123456789\0\0", 17) == 0);
    v = resp_args_encoding(resp_args_get(&a, 1));
    cr_expect(v.len == 7 && memcmp(IN + v.off, "$1\r\rkcd", 7) == 0);
}

/* The whole encoding of each argument is the bytes that encode it. */
Test(resp_args, encoding_of_each_argument)
{
    for (size_t k = 0; k < NARGCS; k++) {
        struct frame f;
        struct resp_request req;
        struct resp_args a;
        struct resp_view v = {0, 0};
        size_t end;

        frame_build(&f, ARGCS[k]);
        scan_whole(&f, &req);
        resp_args_init(&a, f.buf, &req);
        end = resp_write_header(NULL, 0, '*', f.argc); /* the first argument's line */
        for (int i = 0; resp_args_next(&a, &v); i++) {
            char want[256];
            size_t n = resp_write_bulk(want, sizeof(want), f.argv[i], f.lens[i]);
            struct resp_view e = resp_args_encoding(v);
            cr_expect_eq(e.off, end, "argc %d: argument %d starts at %zu", f.argc, i, e.off);
            cr_expect(e.len == n && memcmp(f.buf + e.off, want, n) == 0, "argc %d: argument %d",
                      f.argc, i);
            end = e.off + e.len;
        }
        cr_expect_eq(end, f.len);
        free(f.buf);
    }
}

struct ll_case {
    const char *in;
    size_t len;
    bool ok;
    int64_t want;
};

static const struct ll_case LL_CASES[] = {
    {BYTES("0"), true, 0},
    {BYTES("1"), true, 1},
    {BYTES("-1"), true, -1},
    {BYTES("1234567890"), true, 1234567890},
    {BYTES("9223372036854775807"), true, INT64_MAX},
    {BYTES("-9223372036854775808"), true, INT64_MIN},
    {BYTES("9223372036854775808"), false, 0},
    {BYTES("-9223372036854775809"), false, 0},
    {BYTES("99999999999999999999"), false, 0},
    {BYTES("18446744073709551616"), false, 0},
    {BYTES(""), false, 0},
    {BYTES("-"), false, 0},
    {BYTES("-0"), false, 0},
    {BYTES("00"), false, 0},
    {BYTES("01"), false, 0},
    {BYTES("+1"), false, 0},
    {BYTES(" 1"), false, 0},
    {BYTES("1 "), false, 0},
    {BYTES("12a"), false, 0},
    {BYTES("1\0"), false, 0},
    {BYTES("--1"), false, 0},
    {BYTES("1.0"), false, 0},
};

Test(resp_args, parse_ll_table)
{
    for (size_t i = 0; i < sizeof(LL_CASES) / sizeof(LL_CASES[0]); i++) {
        const struct ll_case *c = &LL_CASES[i];
        int64_t out = 77;
        bool ok = resp_parse_ll(c->in, c->len, &out);

        cr_expect_eq(ok, c->ok, "'%.*s': %d", (int)c->len, c->in, ok);
        cr_expect_eq(out, c->ok ? c->want : 77, "'%.*s': %lld", (int)c->len, c->in, (long long)out);
    }
}

/* Every int64 that snprintf prints parses back, at each digit count. */
Test(resp_args, parse_ll_round_trip)
{
    int64_t v = 0;

    for (int d = 1; d <= 19; d++) {
        v = v * 10 + d % 10; /* 1, 12, 123, ... up to 19 digits */
        int64_t vals[] = {v, -v, d == 19 ? INT64_MAX : v, d == 19 ? INT64_MIN : -v};
        for (size_t i = 0; i < 4; i++) {
            char s[32];
            int64_t out;
            int n = snprintf(s, sizeof(s), "%lld", (long long)vals[i]);
            cr_expect(resp_parse_ll(s, (size_t)n, &out) && out == vals[i], "%s", s);
        }
    }
}
