/* tests/unit/proxy/proto/resp.c - the RESP scanner's requests, table-driven.
 *
 * Every case is scanned whole and split at every byte (one scanner fed a
 * growing prefix, each prefix in a fresh exact-size heap copy so that ASan
 * sees any read past the bytes given and the buffer "moves" between calls),
 * and the valid ones back to back in one buffer. Request behaviour was
 * checked against a real redis-server 7.0.15 by sending it the same bytes.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/resp.h"
#include "resp_util.h"

#define ERR_EXPECTED_X "Protocol error: expected '$', got 'X'"
#define ERR_MBULK_BIG  "Protocol error: too big mbulk count string"
#define ERR_MBULK_LEN  "Protocol error: invalid multibulk length"
#define ERR_BULK_BIG   "Protocol error: too big bulk count string"
#define ERR_BULK_LEN   "Protocol error: invalid bulk length"
#define ERR_INLINE_BIG "Protocol error: too big inline request"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static resp_status_e scan_req_copy(struct resp_scanner *s, const struct resp_limits *lim,
                                   const char *in, size_t n, struct resp_request *req)
{
    char *copy = malloc(n ? n : 1);
    resp_status_e st;

    cr_assert_not_null(copy);
    memcpy(copy, in, n);
    st = resp_scan_request(s, lim, copy, n, req);
    free(copy);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

struct req_case {
    const char *name;
    const char *in;
    size_t in_len;
    const struct resp_limits *lim; /* NULL: RESP_LIMITS_DEFAULT */
    resp_status_e status;
    resp_req_kind_e kind;
    size_t len;
    int64_t argc;
    const char *arg[3]; /* multibulk: the first arguments; inline: arg[0] is the line */
    const char *err;
};

#define OK_REQ(name, in, lim, kind, len, argc, a0, a1, a2)                                         \
    {                                                                                              \
        name, BYTES(in), lim, RESP_OK, kind, len, argc, {a0, a1, a2}, NULL                         \
    }
#define INC_REQ(name, in, lim)                                                                     \
    {                                                                                              \
        name, BYTES(in), lim, RESP_INCOMPLETE, 0, 0, 0, {NULL, NULL, NULL}, NULL                   \
    }
#define BAD_REQ(name, in, lim, err)                                                                \
    {                                                                                              \
        name, BYTES(in), lim, RESP_ERROR, 0, 0, 0, {NULL, NULL, NULL}, err                         \
    }

static const struct req_case REQ_CASES[] = {
    /* Valid multibulk. */
    OK_REQ("ping", "*1\r\n$4\r\nPING\r\n", NULL, RESP_REQ_MULTIBULK, 14, 1, "PING", NULL, NULL),
    OK_REQ("set", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", NULL, RESP_REQ_MULTIBULK, 31, 3,
           "SET", "k", "hello"),
    OK_REQ("empty argument", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", NULL, RESP_REQ_MULTIBULK, 19, 2,
           "GET", "", NULL),
    OK_REQ("binary payload with CRLF and NUL", "*1\r\n$5\r\n\r\n\0\r\n\r\n", NULL,
           RESP_REQ_MULTIBULK, 15, 1, NULL, NULL, NULL),
    OK_REQ("byte after count CR is not checked", "*1\rx$4\rxPINGxx", NULL, RESP_REQ_MULTIBULK, 14,
           1, "PING", NULL, NULL),
    OK_REQ("bytes after payload are not checked", "*1\r\n$1\r\naXY", NULL, RESP_REQ_MULTIBULK, 11,
           1, "a", NULL, NULL),
    OK_REQ("two-digit length", "*1\r\n$10\r\n0123456789\r\n", NULL, RESP_REQ_MULTIBULK, 21, 1,
           "0123456789", NULL, NULL),
    OK_REQ("byte after a two-digit CR is not checked", "*1\r\n$10\rx0123456789xx", NULL,
           RESP_REQ_MULTIBULK, 21, 1, "0123456789", NULL, NULL),
    OK_REQ("zero count is empty", "*0\r\n", NULL, RESP_REQ_EMPTY, 4, 0, NULL, NULL, NULL),
    OK_REQ("minus one count is empty", "*-1\r\n", NULL, RESP_REQ_EMPTY, 5, 0, NULL, NULL, NULL),
    OK_REQ("any negative count is empty", "*-5\r\n", NULL, RESP_REQ_EMPTY, 5, 0, NULL, NULL, NULL),
    OK_REQ("int64 min count is empty", "*-9223372036854775808\r\n", NULL, RESP_REQ_EMPTY, 23, 0,
           NULL, NULL, NULL),
    OK_REQ("count at the limit", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", &SMALL,
           RESP_REQ_MULTIBULK, 25, 3, "a", "b", "c"),
    OK_REQ("bulk at the limit", "*1\r\n$4\r\nabcd\r\n", &SMALL, RESP_REQ_MULTIBULK, 14, 1, "abcd",
           NULL, NULL),
    /* Valid inline. */
    OK_REQ("inline crlf", "PING\r\n", NULL, RESP_REQ_INLINE, 6, 0, "PING", NULL, NULL),
    OK_REQ("inline lf", "GET k\n", NULL, RESP_REQ_INLINE, 6, 0, "GET k", NULL, NULL),
    OK_REQ("inline inner cr kept", "a\rb\r\n", NULL, RESP_REQ_INLINE, 5, 0, "a\rb", NULL, NULL),
    OK_REQ("inline only spaces", "   \r\n", NULL, RESP_REQ_INLINE, 5, 0, "   ", NULL, NULL),
    OK_REQ("inline quoted", "SET k \"a b\"\n", NULL, RESP_REQ_INLINE, 12, 0, "SET k \"a b\"", NULL,
           NULL),
    OK_REQ("empty line crlf", "\r\n", NULL, RESP_REQ_EMPTY, 2, 0, NULL, NULL, NULL),
    OK_REQ("empty line lf", "\n", NULL, RESP_REQ_EMPTY, 1, 0, NULL, NULL, NULL),
    OK_REQ("inline line at the limit", "abcdefg\n", &SMALL, RESP_REQ_INLINE, 8, 0, "abcdefg", NULL,
           NULL),
    /* Incomplete, whole and at every prefix. */
    INC_REQ("count cr without next byte", "*1\r", NULL),
    INC_REQ("payload missing its 2 bytes", "*1\r\n$4\r\nPING", NULL),
    INC_REQ("bulk at the default limit", "*1\r\n$536870912\r\n", NULL),
    INC_REQ("count at the default limit", "*2147483647\r\n", NULL),
    INC_REQ("NUL hides the count CR", "*1\0\r\n$1\r\na\r\n", NULL),
    INC_REQ("NUL hides the bulk CR", "*1\r\n$1\0\r\na\r\n", NULL),
    INC_REQ("NUL hides the inline LF", "PING\0\r\nPING\r\n", NULL),
    INC_REQ("inline at the size limit", "abcdefgh", &SMALL),
    INC_REQ("count line at the size limit", "*1234567", &SMALL),
    INC_REQ("bulk line at the size limit", "*1\r\n$1234567", &SMALL),
    INC_REQ("expected dollar waits for the line", "*1\r\nX", NULL),
    /* Errors. */
    BAD_REQ("expected dollar", "*1\r\nX\r\n", NULL, ERR_EXPECTED_X),
    BAD_REQ("expected dollar got CR shown as space", "*1\r\n\r\n", NULL,
            "Protocol error: expected '$', got ' '"),
    BAD_REQ("expected dollar got LF shown as space", "*1\r\n\nxx\r\n", NULL,
            "Protocol error: expected '$', got ' '"),
    BAD_REQ("expected dollar got high byte", "*1\r\n\xff\r\n", NULL,
            "Protocol error: expected '$', got '\xff'"),
    BAD_REQ("expected dollar on second arg", "*2\r\n$1\r\na\r\n:1\r\n", NULL,
            "Protocol error: expected '$', got ':'"),
    BAD_REQ("count empty", "*\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count minus zero", "*-0\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count leading zero", "*01\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count plus sign", "*+1\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count leading space", "* 1\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count trailing space", "*1 \r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count lone minus", "*-\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count ends at first CR only", "*1x\nPING\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count over the default limit", "*2147483648\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count over int64", "*9223372036854775808\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count under int64", "*-9223372036854775809\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("count over a small limit", "*4\r\n", &SMALL, ERR_MBULK_LEN),
    BAD_REQ("bulk minus one", "*1\r\n$-1\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("bulk leading zero", "*1\r\n$01\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("two-digit bulk with a leading zero", "*1\r\n$05\r\nhello\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("two-digit count with a leading zero", "*01\r\n$1\r\na\r\n", NULL, ERR_MBULK_LEN),
    BAD_REQ("ten-digit bulk", "*1\r\n$1000000000\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("bulk garbage", "*1\r\n$1x\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("bulk empty", "*1\r\n$\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("bulk plus sign", "*1\r\n$+1\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("bulk over the default limit", "*1\r\n$536870913\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("bulk over a small limit", "*1\r\n$5\r\n", &SMALL, ERR_BULK_LEN),
    BAD_REQ("bulk huge", "*1\r\n$99999999999999999999\r\n", NULL, ERR_BULK_LEN),
    BAD_REQ("count line too big", "*12345678", &SMALL, ERR_MBULK_BIG),
    BAD_REQ("count line too big behind a NUL", "*1\0\r\n$1\r\na\r\n", &SMALL, ERR_MBULK_BIG),
    BAD_REQ("bulk line too big", "*1\r\n$12345678", &SMALL, ERR_BULK_BIG),
    BAD_REQ("bulk line too big before the dollar check", "*1\r\nX12345678", &SMALL, ERR_BULK_BIG),
    BAD_REQ("inline too big", "abcdefghi", &SMALL, ERR_INLINE_BIG),
    BAD_REQ("inline too big behind a NUL", "PI\0NG\r\nxyz", &SMALL, ERR_INLINE_BIG),
};

static void check_req_result(const struct req_case *c, resp_status_e st,
                             const struct resp_scanner *s, const struct resp_request *req,
                             const char *how)
{
    cr_expect_eq(st, c->status, "%s (%s): status %s, want %s", c->name, how, status_name(st),
                 status_name(c->status));
    if (st != c->status)
        return;
    if (st == RESP_ERROR) {
        cr_expect_str_eq(s->err, c->err, "%s (%s)", c->name, how);
        return;
    }
    if (st != RESP_OK)
        return;
    cr_expect_eq(req->kind, c->kind, "%s (%s): kind", c->name, how);
    cr_expect_eq(req->len, c->len, "%s (%s): len %zu", c->name, how, req->len);
    cr_expect_eq(req->argc, c->argc, "%s (%s): argc", c->name, how);
    for (int i = 0; i < 3; i++)
        if (c->arg[i])
            cr_expect(view_is(c->in, req->argv[i], c->arg[i]), "%s (%s): arg %d", c->name, how, i);
}

/* Scans a case whole, in a fresh scanner. */
static resp_status_e req_whole(const struct req_case *c, struct resp_scanner *s,
                               struct resp_request *req)
{
    const struct resp_limits *lim = c->lim ? c->lim : &RESP_LIMITS_DEFAULT;

    resp_scanner_reset(s);
    return scan_req_copy(s, lim, c->in, c->in_len, req);
}

/* Feeds prefixes 1..n to one scanner; every proper prefix must be incomplete
 * unless the case is an error, which may be seen early and then sticks. */
static resp_status_e req_split(const struct req_case *c, struct resp_scanner *s,
                               struct resp_request *req)
{
    const struct resp_limits *lim = c->lim ? c->lim : &RESP_LIMITS_DEFAULT;
    resp_status_e st = RESP_INCOMPLETE;

    resp_scanner_reset(s);
    for (size_t k = 1; k <= c->in_len; k++) {
        st = scan_req_copy(s, lim, c->in, k, req);
        if (k < c->in_len && c->status != RESP_ERROR)
            cr_expect_eq(st, RESP_INCOMPLETE, "%s: prefix %zu of %zu is %s", c->name, k, c->in_len,
                         status_name(st));
        if (st != RESP_INCOMPLETE && k < c->in_len)
            break;
    }
    return st;
}

Test(resp_request, table_whole_and_split_at_every_byte)
{
    for (size_t i = 0; i < sizeof(REQ_CASES) / sizeof(REQ_CASES[0]); i++) {
        const struct req_case *c = &REQ_CASES[i];
        struct resp_scanner s;
        struct resp_request req;
        resp_status_e st = req_whole(c, &s, &req);

        check_req_result(c, st, &s, &req, "whole");
        st = req_split(c, &s, &req);
        check_req_result(c, st, &s, &req, "split");
    }
}

Test(resp_request, pipeline_back_to_back)
{
    char buf[4096];
    size_t n = 0, at = 0;
    struct resp_scanner s;
    struct resp_request req;
    size_t count = 0;

    for (size_t i = 0; i < sizeof(REQ_CASES) / sizeof(REQ_CASES[0]); i++)
        if (REQ_CASES[i].status == RESP_OK && !REQ_CASES[i].lim) {
            memcpy(buf + n, REQ_CASES[i].in, REQ_CASES[i].in_len);
            n += REQ_CASES[i].in_len;
        }
    resp_scanner_reset(&s);
    for (size_t i = 0; i < sizeof(REQ_CASES) / sizeof(REQ_CASES[0]); i++) {
        const struct req_case *c = &REQ_CASES[i];
        if (c->status != RESP_OK || c->lim)
            continue;
        resp_status_e st = resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf + at, n - at, &req);
        check_req_result(c, st, &s, &req, "pipelined");
        at += req.len;
        count++;
    }
    cr_expect_eq(at, n);
    cr_expect_gt(count, 10);
}

Test(resp_request, error_is_sticky_until_reset)
{
    struct resp_scanner s;
    struct resp_request req;

    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, BYTES("*x\r\n"), &req), RESP_ERROR);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, BYTES("PING\r\n"), &req), RESP_ERROR);
    cr_assert_str_eq(s.err, ERR_MBULK_LEN);
    resp_scanner_reset(&s);
    cr_assert_null(s.err);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, BYTES("PING\r\n"), &req), RESP_OK);
}

/* Builds "*<n>\r\n" followed by n arguments "a0", "a1", ..., "a<n-1>" padded
 * to different lengths. */
static size_t build_args(char *buf, int n)
{
    size_t w = (size_t)sprintf(buf, "*%d\r\n", n);

    for (int i = 0; i < n; i++) {
        char arg[32];
        int len = sprintf(arg, "a%d%.*s", i, i % 4, "xxxx");
        w += (size_t)sprintf(buf + w, "$%d\r\n%s\r\n", len, arg);
    }
    return w;
}

static void check_args(const char *buf, const struct resp_request *req, int n)
{
    cr_assert_eq(req->argc, n);
    for (int i = 0; i < n; i++) {
        char arg[32];
        sprintf(arg, "a%d%.*s", i, i % 4, "xxxx");
        struct resp_view v = resp_request_arg(req, buf, i);
        cr_expect(view_is(buf, v, arg), "arg %d", i);
        if (i < RESP_REQ_ARGS)
            cr_expect(view_is(buf, req->argv[i], arg), "kept view %d", i);
    }
    struct resp_view none = resp_request_arg(req, buf, n);
    cr_expect_eq(none.len, 0, "arg past argc");
    cr_expect_eq(none.off, 0, "arg past argc");
}

Test(resp_request, arg_beyond_kept_views_walks_the_frame)
{
    char buf[1024];
    size_t n = build_args(buf, 13);
    struct resp_scanner s;
    struct resp_request req;

    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, n, &req), RESP_OK);
    cr_assert_eq(req.len, n);
    check_args(buf, &req, 13);
}

Test(resp_request, kept_views_are_right_after_a_split_scan)
{
    char buf[1024];
    size_t n = build_args(buf, 13);
    struct resp_scanner s;
    struct resp_request req;

    /* Every split point: views of arguments finished by earlier calls too. */
    for (size_t cut = 1; cut < n; cut++) {
        resp_scanner_reset(&s);
        cr_assert_eq(scan_req_copy(&s, &RESP_LIMITS_DEFAULT, buf, cut, &req), RESP_INCOMPLETE);
        memset(&req, 0xab, sizeof(req)); /* the request need not persist between calls */
        cr_assert_eq(scan_req_copy(&s, &RESP_LIMITS_DEFAULT, buf, n, &req), RESP_OK);
        cr_assert_eq(req.len, n);
        check_args(buf, &req, 13);
    }
}

struct big_case {
    const char *name;
    const char *prefix;
    char fill;
    size_t count;
    const char *suffix;
    resp_status_e status;
    const char *err;
};

/* The default 64 KB header limit: an error only once more than 64 KB are
 * buffered with no terminator, as Redis counts it. */
static const struct big_case BIG_CASES[] = {
    {"inline at 64KB", "", 'a', 64 * 1024, "", RESP_INCOMPLETE, NULL},
    {"inline over 64KB", "", 'a', 64 * 1024 + 1, "", RESP_ERROR, ERR_INLINE_BIG},
    {"inline over 64KB with its LF is accepted", "", 'a', 70000, "\n", RESP_OK, NULL},
    {"count line at 64KB", "*", '1', 64 * 1024 - 1, "", RESP_INCOMPLETE, NULL},
    {"count line over 64KB", "*", '1', 64 * 1024, "", RESP_ERROR, ERR_MBULK_BIG},
    {"count line over 64KB with its CR", "*", '1', 70000, "\r\n", RESP_ERROR, ERR_MBULK_LEN},
    {"bulk line over 64KB", "*1\r\n$", '1', 64 * 1024, "", RESP_ERROR, ERR_BULK_BIG},
    {"bulk line limit counts from its own start", "*1\r\n$", '1', 64 * 1024 - 1, "",
     RESP_INCOMPLETE, NULL},
    {"LF behind NULs at 64KB", "GET a", 0, 64 * 1024 - 6, "\n", RESP_INCOMPLETE, NULL},
    {"LF behind NULs over 64KB", "GET a", 0, 64 * 1024 - 5, "\n", RESP_ERROR, ERR_INLINE_BIG},
};

Test(resp_request, default_header_limits)
{
    for (size_t i = 0; i < sizeof(BIG_CASES) / sizeof(BIG_CASES[0]); i++) {
        const struct big_case *c = &BIG_CASES[i];
        size_t n;
        char *buf = build_fill(c->prefix, c->fill, c->count, c->suffix, &n);
        struct resp_scanner s;
        struct resp_request req;

        resp_scanner_reset(&s);
        resp_status_e st = resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, n, &req);
        cr_expect_eq(st, c->status, "%s: %s", c->name, status_name(st));
        if (st == RESP_ERROR && c->err)
            cr_expect_str_eq(s.err, c->err, "%s", c->name);
        free(buf);
    }
}

Test(resp_request, nul_hides_the_line_end_until_the_size_limit)
{
    /* Redis finds line ends with strchr(), which stops at a NUL: it waits, then
     * fails with "too big" once more than 64 KB are buffered. */
    size_t n;
    char *buf = build_fill("GET a?b\n", 'x', 64 * 1024, "", &n);
    struct resp_scanner s;
    struct resp_request req;

    buf[5] = '\0';
    resp_scanner_reset(&s);
    cr_expect_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, 8, &req), RESP_INCOMPLETE);
    cr_expect_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, 64 * 1024, &req),
                 RESP_INCOMPLETE);
    cr_expect_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, n, &req), RESP_ERROR);
    cr_expect_str_eq(s.err, ERR_INLINE_BIG);
    /* Without the NUL the same bytes are one inline request. */
    buf[5] = 'x';
    resp_scanner_reset(&s);
    cr_expect_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, n, &req), RESP_OK);
    cr_expect_eq(req.len, 8);
    free(buf);
}

Test(resp_request, every_expected_dollar_message)
{
    for (int c = 1; c < 256; c++) {
        char in[] = "*1\r\n?\r\n";
        char want[64];
        struct resp_scanner s;
        struct resp_request req;

        if (c == '$')
            continue;
        in[4] = (char)c;
        snprintf(want, sizeof(want), "Protocol error: expected '$', got '%c'",
                 c == '\r' || c == '\n' ? ' ' : c);
        resp_scanner_reset(&s);
        cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, in, 7, &req), RESP_ERROR);
        cr_expect_str_eq(s.err, want, "byte %d", c);
    }
}
