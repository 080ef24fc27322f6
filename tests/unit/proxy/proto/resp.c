/* tests/unit/resp.c - the RESP scanner, table-driven.
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

#define BYTES(s) s, sizeof(s) - 1

/* Small limits, to reach every limit with short inputs. */
static const struct resp_limits SMALL = {
    .max_bulk_len = 4,
    .max_multibulk_len = 3,
    .max_inline_len = 8,
};

/* No count limit: only the counter's own overflow guard is left. */
static const struct resp_limits HUGE = {
    .max_bulk_len = INT64_MAX,
    .max_multibulk_len = INT64_MAX,
    .max_inline_len = 64 * 1024,
};

#define ERR_EXPECTED_X "Protocol error: expected '$', got 'X'"
#define ERR_MBULK_BIG  "Protocol error: too big mbulk count string"
#define ERR_MBULK_LEN  "Protocol error: invalid multibulk length"
#define ERR_BULK_BIG   "Protocol error: too big bulk count string"
#define ERR_BULK_LEN   "Protocol error: invalid bulk length"
#define ERR_INLINE_BIG "Protocol error: too big inline request"
#define ERR_QUOTES     "Protocol error: unbalanced quotes in request"

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

static resp_status_e scan_rep_copy(struct resp_scanner *s, const struct resp_limits *lim,
                                   const char *in, size_t n, struct resp_reply *rep)
{
    char *copy = malloc(n ? n : 1);
    resp_status_e st;

    cr_assert_not_null(copy);
    memcpy(copy, in, n);
    st = resp_scan_reply(s, lim, copy, n, rep);
    free(copy);
    return st;
}

static const char *status_name(resp_status_e st)
{
    return st == RESP_OK ? "OK" : st == RESP_INCOMPLETE ? "INCOMPLETE" : "ERROR";
}

/* A view's bytes equal a C string. */
static int view_is(const char *frame, struct resp_view v, const char *want)
{
    return v.len == strlen(want) && memcmp(frame + v.off, want, v.len) == 0;
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

/* prefix + fill * count + suffix (C strings: no NUL in them), in a heap buffer. */
static char *build_fill(const char *prefix, char fill, size_t count, const char *suffix, size_t *n)
{
    size_t p = strlen(prefix), q = strlen(suffix);
    char *buf = malloc(p + count + q);

    cr_assert_not_null(buf);
    memcpy(buf, prefix, p);
    memset(buf + p, fill, count);
    memcpy(buf + p + count, suffix, q);
    *n = p + count + q;
    return buf;
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

/* ------------------------------------------------------------------------ */
/* Inline encoding (sdssplitargs)                                           */
/* ------------------------------------------------------------------------ */

struct inline_case {
    const char *name;
    const char *line;
    size_t line_len;
    const char *out; /* NULL: no buffer */
    size_t out_len;
    int64_t argc;
    const char *err;
};

#define OUT(s) s, sizeof(s) - 1

static const struct inline_case INLINE_CASES[] = {
    {"words", BYTES("set k v"), OUT("*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n"), 3, NULL},
    {"extra blanks", BYTES("  get \t k  "), OUT("*2\r\n$3\r\nget\r\n$1\r\nk\r\n"), 2, NULL},
    {"hex escapes", BYTES("\"\\x41\\x4a\\x4A\""), OUT("*1\r\n$3\r\nAJJ\r\n"), 1, NULL},
    {"bad hex is a plain escape", BYTES("\"\\x4g\""), OUT("*1\r\n$3\r\nx4g\r\n"), 1, NULL},
    {"short hex", BYTES("\"\\x4\""), OUT("*1\r\n$2\r\nx4\r\n"), 1, NULL},
    {"capital X is not hex", BYTES("\"\\X41\""), OUT("*1\r\n$3\r\nX41\r\n"), 1, NULL},
    {"hex zero and ff", BYTES("\"\\x00\\xff\""), OUT("*1\r\n$2\r\n\0\xff\r\n"), 1, NULL},
    {"c escapes", BYTES("\"\\n\\r\\t\\b\\a\\\\\\\"\\z\""), OUT("*1\r\n$8\r\n\n\r\t\b\a\\\"z\r\n"),
     1, NULL},
    {"single quotes", BYTES("'a\\'b\\n'"), OUT("*1\r\n$5\r\na'b\\n\r\n"), 1, NULL},
    {"single quote keeps double quote", BYTES("'a\"b'"), OUT("*1\r\n$3\r\na\"b\r\n"), 1, NULL},
    {"empty double quotes", BYTES("\"\""), OUT("*1\r\n$0\r\n\r\n"), 1, NULL},
    {"empty single quotes", BYTES("set k ''"), OUT("*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n"), 3,
     NULL},
    {"quote opens mid word", BYTES("a\"b c\" d"), OUT("*2\r\n$4\r\nab c\r\n$1\r\nd\r\n"), 2, NULL},
    {"vertical tab inside a word", BYTES("a\vb"), OUT("*1\r\n$3\r\na\vb\r\n"), 1, NULL},
    {"vertical tab between words", BYTES("\v\fa"), OUT("*1\r\n$1\r\na\r\n"), 1, NULL},
    {"vertical tab after a closing quote", BYTES("\"a\"\vb"), OUT("*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
     2, NULL},
    {"NUL ends the line", BYTES("ab\0cd"), OUT("*1\r\n$2\r\nab\r\n"), 1, NULL},
    {"empty", BYTES(""), NULL, 0, 0, NULL},
    {"only spaces", BYTES("  \t "), NULL, 0, 0, NULL},
    {"closing quote then letter", BYTES("\"a\"b"), NULL, 0, 0, ERR_QUOTES},
    {"closing single quote then letter", BYTES("'a'b"), NULL, 0, 0, ERR_QUOTES},
    {"unterminated double", BYTES("get \"abc"), NULL, 0, 0, ERR_QUOTES},
    {"unterminated single", BYTES("get 'abc"), NULL, 0, 0, ERR_QUOTES},
    {"backslash at the end", BYTES("\"abc\\"), NULL, 0, 0, ERR_QUOTES},
    {"escaped closing quote", BYTES("\"abc\\\""), NULL, 0, 0, ERR_QUOTES},
};

Test(resp_inline, encode_table)
{
    for (size_t i = 0; i < sizeof(INLINE_CASES) / sizeof(INLINE_CASES[0]); i++) {
        const struct inline_case *c = &INLINE_CASES[i];
        size_t outlen = 99;
        int64_t argc = 99;
        const char *err = "unset";
        char *out = resp_inline_encode(c->line, c->line_len, &outlen, &argc, &err);

        cr_expect_eq(argc, c->argc, "%s: argc %lld", c->name, (long long)argc);
        if (c->err)
            cr_expect(err && strcmp(err, c->err) == 0, "%s: err %s", c->name, err ? err : "NULL");
        else
            cr_expect_null(err, "%s: err %s", c->name, err);
        if (!c->out) {
            cr_expect_null(out, "%s", c->name);
            continue;
        }
        cr_assert_not_null(out, "%s", c->name);
        cr_expect(outlen == c->out_len && memcmp(out, c->out, outlen) == 0, "%s: got %.*s", c->name,
                  (int)outlen, out);
        free(out);
    }
}

Test(resp_inline, encoding_scans_as_multibulk)
{
    size_t outlen;
    int64_t argc;
    const char *err;
    char *out = resp_inline_encode(BYTES("a b c d e f g h i j"), &outlen, &argc, &err);
    struct resp_scanner s;
    struct resp_request req;

    cr_assert_not_null(out);
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, out, outlen, &req), RESP_OK);
    cr_expect_eq(req.len, outlen);
    cr_expect_eq(req.argc, 10);
    cr_expect(view_is(out, resp_request_arg(&req, out, 9), "j"));
    free(out);
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/* ------------------------------------------------------------------------ */

#define ERR_R_TYPE     "Protocol error: invalid reply type byte"
#define ERR_R_CRLF     "Protocol error: reply line not terminated by CRLF"
#define ERR_R_LONG     "Protocol error: reply header line too long"
#define ERR_R_PAYLOAD  "Protocol error: bulk reply not terminated by CRLF"
#define ERR_R_BULK     "Protocol error: invalid bulk reply length"
#define ERR_R_AGG      "Protocol error: invalid aggregate reply length"
#define ERR_R_INT      "Protocol error: invalid integer reply"
#define ERR_R_NULL     "Protocol error: invalid null reply"
#define ERR_R_DOUBLE   "Protocol error: invalid double reply"
#define ERR_R_BOOL     "Protocol error: invalid boolean reply"
#define ERR_R_VERBATIM "Protocol error: invalid verbatim string reply"
#define ERR_R_CHUNK    "Protocol error: invalid streamed string chunk"
#define ERR_R_END      "Protocol error: unexpected end of streamed aggregate"
#define ERR_R_DEEP     "Protocol error: streamed aggregates nested too deep"
#define ERR_R_MANY     "Protocol error: too many elements pending in reply"

struct rep_case {
    const char *name;
    const char *in;
    size_t in_len;
    const struct resp_limits *lim;
    resp_status_e status;
    size_t len;
    size_t value_off;
    char type;
    int64_t count;
    const char *err;
};

#define OK_REP(name, in, len, off, type, count)                                                    \
    {                                                                                              \
        name, BYTES(in), NULL, RESP_OK, len, off, type, count, NULL                                \
    }
#define INC_REP(name, in, lim)                                                                     \
    {                                                                                              \
        name, BYTES(in), lim, RESP_INCOMPLETE, 0, 0, 0, 0, NULL                                    \
    }
#define BAD_REP(name, in, err)                                                                     \
    {                                                                                              \
        name, BYTES(in), NULL, RESP_ERROR, 0, 0, 0, 0, err                                         \
    }

static const struct rep_case REP_CASES[] = {
    /* RESP2. */
    OK_REP("simple string", "+OK\r\n", 5, 0, '+', 0),
    OK_REP("simple string with LF inside", "+a\nb\r\n", 6, 0, '+', 0),
    OK_REP("error", "-ERR wrong\r\n", 12, 0, '-', 0),
    OK_REP("integer", ":1234\r\n", 7, 0, ':', 0),
    OK_REP("integer zero", ":0\r\n", 4, 0, ':', 0),
    OK_REP("integer max", ":9223372036854775807\r\n", 22, 0, ':', 0),
    OK_REP("integer min", ":-9223372036854775808\r\n", 23, 0, ':', 0),
    OK_REP("bulk", "$5\r\nhello\r\n", 11, 0, '$', 5),
    OK_REP("bulk empty", "$0\r\n\r\n", 6, 0, '$', 0),
    OK_REP("bulk binary", "$4\r\n\r\n\0\n\r\n", 10, 0, '$', 4),
    OK_REP("null bulk", "$-1\r\n", 5, 0, '$', -1),
    OK_REP("array", "*2\r\n$1\r\na\r\n:1\r\n", 15, 0, '*', 2),
    OK_REP("array empty", "*0\r\n", 4, 0, '*', 0),
    OK_REP("null array", "*-1\r\n", 5, 0, '*', -1),
    OK_REP("array of nulls", "*2\r\n$-1\r\n*-1\r\n", 14, 0, '*', 2),
    OK_REP("nested arrays", "*2\r\n*2\r\n:1\r\n:2\r\n*0\r\n", 20, 0, '*', 2),
    /* RESP3 simple types. */
    OK_REP("null", "_\r\n", 3, 0, '_', 0),
    OK_REP("double", ",1.23\r\n", 7, 0, ',', 0),
    OK_REP("double integral", ",10\r\n", 5, 0, ',', 0),
    OK_REP("double exponent", ",-1.5e+300\r\n", 12, 0, ',', 0),
    OK_REP("double exponent no fraction", ",1E-5\r\n", 7, 0, ',', 0),
    OK_REP("double inf", ",inf\r\n", 6, 0, ',', 0),
    OK_REP("double minus inf", ",-inf\r\n", 7, 0, ',', 0),
    OK_REP("double nan", ",nan\r\n", 6, 0, ',', 0),
    OK_REP("double minus nan from libc", ",-nan\r\n", 7, 0, ',', 0),
    OK_REP("double NAN with payload", ",NAN(0x1)\r\n", 11, 0, ',', 0),
    OK_REP("boolean true", "#t\r\n", 4, 0, '#', 0),
    OK_REP("boolean false", "#f\r\n", 4, 0, '#', 0),
    OK_REP("big number", "(3492890328409238509324850943850943825024385\r\n", 46, 0, '(', 0),
    OK_REP("big number is free text", "(12 ab  x\r\n", 11, 0, '(', 0),
    OK_REP("blob error", "!21\r\nSYNTAX invalid syntax\r\n", 28, 0, '!', 21),
    OK_REP("verbatim", "=15\r\ntxt:Some string\r\n", 22, 0, '=', 15),
    OK_REP("verbatim just the format", "=4\r\nmkd:\r\n", 10, 0, '=', 4),
    /* RESP3 aggregates. */
    OK_REP("map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", 29, 0, '%', 2),
    OK_REP("map empty", "%0\r\n", 4, 0, '%', 0),
    OK_REP("set", "~2\r\n+a\r\n#t\r\n", 12, 0, '~', 2),
    OK_REP("push", ">3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n", 27, 0, '>', 3),
    OK_REP("map of arrays", "%1\r\n*1\r\n:1\r\n~1\r\n_\r\n", 19, 0, '%', 1),
    /* Attributes. */
    OK_REP("attribute before simple", "|1\r\n+ttl\r\n:3600\r\n+OK\r\n", 22, 17, '+', 0),
    OK_REP("attribute before array", "|1\r\n+a\r\n*1\r\n:1\r\n*2\r\n:1\r\n:2\r\n", 28, 16, '*', 2),
    OK_REP("empty attribute", "|0\r\n:1\r\n", 8, 4, ':', 0),
    OK_REP("two attributes", "|0\r\n|1\r\n+k\r\n+v\r\n$1\r\nx\r\n", 23, 16, '$', 1),
    OK_REP("attribute inside attribute", "|1\r\n|1\r\n+a\r\n+b\r\n+k\r\n+v\r\n:7\r\n", 28, 24, ':',
           0),
    OK_REP("nested attribute is not an element", "*2\r\n:1\r\n|1\r\n+a\r\n:1\r\n:2\r\n", 24, 0, '*',
           2),
    OK_REP("streamed key in a top-level attribute", "|1\r\n*?\r\n:1\r\n.\r\n+v\r\n+OK\r\n", 24, 19,
           '+', 0),
    OK_REP("attribute on a map value", "%1\r\n+k\r\n|1\r\n+a\r\n+b\r\n:2\r\n", 24, 0, '%', 1),
    /* Streamed forms. */
    OK_REP("streamed string", "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", 36, 0, '$',
           -1),
    OK_REP("streamed string empty", "$?\r\n;0\r\n", 8, 0, '$', -1),
    OK_REP("streamed array", "*?\r\n:1\r\n:2\r\n.\r\n", 15, 0, '*', -1),
    OK_REP("streamed set empty", "~?\r\n.\r\n", 7, 0, '~', -1),
    OK_REP("streamed map", "%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n", 23, 0, '%', -1),
    OK_REP("nested streams", "*?\r\n*?\r\n.\r\n*2\r\n:1\r\n*?\r\n.\r\n.\r\n", 29, 0, '*', -1),
    OK_REP("stream inside counted", "*2\r\n*?\r\n:1\r\n.\r\n:2\r\n", 19, 0, '*', 2),
    OK_REP("streamed string in array", "*2\r\n$?\r\n;1\r\na\r\n;0\r\n:1\r\n", 23, 0, '*', 2),
    OK_REP("attribute in a stream", "*?\r\n|1\r\n+a\r\n:1\r\n:2\r\n.\r\n", 23, 0, '*', -1),
    OK_REP("attribute before a streamed map key", "%?\r\n|0\r\n+k\r\n+v\r\n.\r\n", 19, 0, '%', -1),
    OK_REP("streamed map in streamed array", "*?\r\n%?\r\n+k\r\n*?\r\n.\r\n.\r\n:1\r\n.\r\n", 29, 0,
           '*', -1),
    /* Limits. */
    {"bulk at a small limit", BYTES("$4\r\nabcd\r\n"), &SMALL, RESP_OK, 10, 0, '$', 4, NULL},
    {"array at a small limit", BYTES("*3\r\n:1\r\n:2\r\n:3\r\n"), &SMALL, RESP_OK, 16, 0, '*', 3,
     NULL},
    {"long simple string ignores the line limit", BYTES("+0123456789\r\n"), &SMALL, RESP_OK, 13, 0,
     '+', 0, NULL},
    {"long error ignores the line limit", BYTES("-0123456789\r\n"), &SMALL, RESP_OK, 13, 0, '-', 0,
     NULL},
    {"header line at the limit", BYTES(",1.234567\r\n"), &SMALL, RESP_OK, 11, 0, ',', 0, NULL},
    INC_REP("huge counts are fine below the counter limit", "*9223372036854775806\r\n", &HUGE),
    /* Incomplete. */
    INC_REP("cr without lf yet", "+OK\r", NULL),
    INC_REP("bulk payload short", "$5\r\nhel", NULL),
    INC_REP("bulk missing terminator", "$5\r\nhello", NULL),
    INC_REP("array short", "*3\r\n:1\r\n:2\r\n", NULL),
    INC_REP("attribute without its value", "|1\r\n+a\r\n+b\r\n", NULL),
    INC_REP("stream without its end", "*?\r\n:1\r\n", NULL),
    INC_REP("streamed string without last chunk", "$?\r\n;1\r\na\r\n", NULL),
    INC_REP("sixteen open streams",
            "*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n"
            "*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n",
            NULL),
    /* Errors. */
    BAD_REP("bad type byte", "x\r\n", ERR_R_TYPE),
    BAD_REP("bad type byte alone", "x", ERR_R_TYPE),
    BAD_REP("CR as type", "\r\n", ERR_R_TYPE),
    BAD_REP("inline reply", "OK\r\n", ERR_R_TYPE),
    BAD_REP("chunk outside streamed string", ";1\r\na\r\n", ERR_R_TYPE),
    BAD_REP("bad element type", "*2\r\n:1\r\n?\r\n", ERR_R_TYPE),
    BAD_REP("bare CR", "+a\rb\r\n", ERR_R_CRLF),
    BAD_REP("bare CR in header", "$1\rX", ERR_R_CRLF),
    BAD_REP("bare CR in null", "_\rx", ERR_R_CRLF),
    BAD_REP("integer garbage", ":abc\r\n", ERR_R_INT),
    BAD_REP("integer empty", ":\r\n", ERR_R_INT),
    BAD_REP("integer leading zero", ":01\r\n", ERR_R_INT),
    BAD_REP("integer minus zero", ":-0\r\n", ERR_R_INT),
    BAD_REP("integer plus", ":+1\r\n", ERR_R_INT),
    BAD_REP("integer space", ":1 \r\n", ERR_R_INT),
    BAD_REP("integer overflow", ":9223372036854775808\r\n", ERR_R_INT),
    BAD_REP("null with content", "_x\r\n", ERR_R_NULL),
    BAD_REP("boolean other", "#x\r\n", ERR_R_BOOL),
    BAD_REP("boolean long", "#tt\r\n", ERR_R_BOOL),
    BAD_REP("boolean empty", "#\r\n", ERR_R_BOOL),
    BAD_REP("double empty", ",\r\n", ERR_R_DOUBLE),
    BAD_REP("double leading dot", ",.5\r\n", ERR_R_DOUBLE),
    BAD_REP("double trailing dot", ",1.\r\n", ERR_R_DOUBLE),
    BAD_REP("double bare exponent", ",1e\r\n", ERR_R_DOUBLE),
    BAD_REP("double word", ",abc\r\n", ERR_R_DOUBLE),
    BAD_REP("double trailing garbage", ",1.5x\r\n", ERR_R_DOUBLE),
    BAD_REP("bulk minus two", "$-2\r\n", ERR_R_BULK),
    BAD_REP("bulk garbage", "$x\r\n", ERR_R_BULK),
    BAD_REP("bulk leading zero", "$01\r\n", ERR_R_BULK),
    BAD_REP("bulk over the default limit", "$536870913\r\n", ERR_R_BULK),
    BAD_REP("bulk bad terminator", "$5\r\nhelloXY", ERR_R_PAYLOAD),
    BAD_REP("bulk CR without LF", "$5\r\nhello\rX", ERR_R_PAYLOAD),
    BAD_REP("blob error null", "!-1\r\n", ERR_R_BULK),
    BAD_REP("blob error streamed", "!?\r\n", ERR_R_BULK),
    BAD_REP("verbatim null", "=-1\r\n", ERR_R_BULK),
    BAD_REP("verbatim too short", "=3\r\nabc\r\n", ERR_R_VERBATIM),
    BAD_REP("verbatim without colon", "=5\r\nabcde\r\n", ERR_R_VERBATIM),
    BAD_REP("array minus two", "*-2\r\n", ERR_R_AGG),
    BAD_REP("array garbage", "*1x\r\n", ERR_R_AGG),
    BAD_REP("array over the default limit", "*2147483648\r\n", ERR_R_AGG),
    BAD_REP("map null", "%-1\r\n", ERR_R_AGG),
    BAD_REP("set null", "~-1\r\n", ERR_R_AGG),
    BAD_REP("push null", ">-1\r\n", ERR_R_AGG),
    BAD_REP("push streamed", ">?\r\n", ERR_R_AGG),
    BAD_REP("attribute streamed", "|?\r\n", ERR_R_AGG),
    BAD_REP("attribute null", "|-1\r\n", ERR_R_AGG),
    BAD_REP("end at top level", ".\r\n", ERR_R_END),
    BAD_REP("end in counted array", "*1\r\n.\r\n", ERR_R_END),
    BAD_REP("end with content", "*?\r\n.x\r\n", ERR_R_END),
    BAD_REP("end after a map key", "%?\r\n+a\r\n.\r\n", ERR_R_END),
    BAD_REP("end after an attribute", "*?\r\n|1\r\n+a\r\n:1\r\n.\r\n", ERR_R_END),
    BAD_REP("end inside counted inside stream", "*?\r\n*2\r\n:1\r\n.\r\n", ERR_R_END),
    BAD_REP("value in streamed string", "$?\r\n:1\r\n", ERR_R_CHUNK),
    BAD_REP("negative chunk", "$?\r\n;-1\r\n", ERR_R_CHUNK),
    BAD_REP("chunk garbage", "$?\r\n;x\r\n", ERR_R_CHUNK),
    BAD_REP("chunk over the limit", "$?\r\n;536870913\r\n", ERR_R_CHUNK),
    BAD_REP("chunk bad terminator", "$?\r\n;2\r\nabXX", ERR_R_PAYLOAD),
    BAD_REP("seventeen open streams",
            "*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n"
            "*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n*?\r\n",
            ERR_R_DEEP),
    {"bulk over a small limit", BYTES("$5\r\n"), &SMALL, RESP_ERROR, 0, 0, 0, 0, ERR_R_BULK},
    {"array over a small limit", BYTES("*4\r\n"), &SMALL, RESP_ERROR, 0, 0, 0, 0, ERR_R_AGG},
    {"map over a small limit", BYTES("%4\r\n"), &SMALL, RESP_ERROR, 0, 0, 0, 0, ERR_R_AGG},
    {"header line over the limit", BYTES(",1.2345678\r\n"), &SMALL, RESP_ERROR, 0, 0, 0, 0,
     ERR_R_LONG},
    {"header line over the limit without CR", BYTES("$123456789"), &SMALL, RESP_ERROR, 0, 0, 0, 0,
     ERR_R_LONG},
    {"counter overflow", BYTES("*9223372036854775807\r\n*9223372036854775807\r\n"), &HUGE,
     RESP_ERROR, 0, 0, 0, 0, ERR_R_MANY},
    {"counter overflow on map pairs", BYTES("%4611686018427387904\r\n"), &HUGE, RESP_ERROR, 0, 0, 0,
     0, ERR_R_MANY},
    {"counter overflow on attribute pairs", BYTES("|4611686018427387904\r\n"), &HUGE, RESP_ERROR, 0,
     0, 0, 0, ERR_R_MANY},
};

static void check_rep_result(const struct rep_case *c, resp_status_e st,
                             const struct resp_scanner *s, const struct resp_reply *rep,
                             const char *how)
{
    cr_expect_eq(st, c->status, "%s (%s): status %s, want %s (%s)", c->name, how, status_name(st),
                 status_name(c->status), s->err ? s->err : "");
    if (st != c->status)
        return;
    if (st == RESP_ERROR) {
        cr_expect_str_eq(s->err, c->err, "%s (%s)", c->name, how);
        return;
    }
    if (st != RESP_OK)
        return;
    cr_expect_eq(rep->len, c->len, "%s (%s): len %zu", c->name, how, rep->len);
    cr_expect_eq(rep->value_off, c->value_off, "%s (%s): value_off %zu", c->name, how,
                 rep->value_off);
    cr_expect_eq(rep->type, c->type, "%s (%s): type %c", c->name, how, rep->type);
    cr_expect_eq(rep->count, c->count, "%s (%s): count %lld", c->name, how, (long long)rep->count);
}

Test(resp_reply, table_whole_and_split_at_every_byte)
{
    for (size_t i = 0; i < sizeof(REP_CASES) / sizeof(REP_CASES[0]); i++) {
        const struct rep_case *c = &REP_CASES[i];
        const struct resp_limits *lim = c->lim ? c->lim : &RESP_LIMITS_DEFAULT;
        struct resp_scanner s;
        struct resp_reply rep;
        resp_status_e st;

        resp_scanner_reset(&s);
        st = scan_rep_copy(&s, lim, c->in, c->in_len, &rep);
        check_rep_result(c, st, &s, &rep, "whole");

        resp_scanner_reset(&s);
        for (size_t k = 1; k <= c->in_len; k++) {
            st = scan_rep_copy(&s, lim, c->in, k, &rep);
            if (k < c->in_len && c->status != RESP_ERROR)
                cr_expect_eq(st, RESP_INCOMPLETE, "%s: prefix %zu is %s", c->name, k,
                             status_name(st));
            if (st != RESP_INCOMPLETE && k < c->in_len)
                break;
        }
        check_rep_result(c, st, &s, &rep, "split");
    }
}

Test(resp_reply, pipeline_back_to_back)
{
    char buf[8192];
    size_t n = 0, at = 0, count = 0;
    struct resp_scanner s;
    struct resp_reply rep;

    for (size_t i = 0; i < sizeof(REP_CASES) / sizeof(REP_CASES[0]); i++)
        if (REP_CASES[i].status == RESP_OK && !REP_CASES[i].lim) {
            memcpy(buf + n, REP_CASES[i].in, REP_CASES[i].in_len);
            n += REP_CASES[i].in_len;
        }
    resp_scanner_reset(&s);
    for (size_t i = 0; i < sizeof(REP_CASES) / sizeof(REP_CASES[0]); i++) {
        const struct rep_case *c = &REP_CASES[i];
        if (c->status != RESP_OK || c->lim)
            continue;
        resp_status_e st = resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, buf + at, n - at, &rep);
        check_rep_result(c, st, &s, &rep, "pipelined");
        at += rep.len;
        count++;
    }
    cr_expect_eq(at, n);
    cr_expect_gt(count, 40);
}

/* Feeds buf[0, n) to one scanner in steps of `step` bytes. */
static resp_status_e rep_feed(struct resp_scanner *s, const char *buf, size_t n, size_t step,
                              struct resp_reply *rep)
{
    resp_status_e st = RESP_INCOMPLETE;

    resp_scanner_reset(s);
    for (size_t k = step < n ? step : n;; k = k + step < n ? k + step : n) {
        st = resp_scan_reply(s, &RESP_LIMITS_DEFAULT, buf, k, rep);
        if (st != RESP_INCOMPLETE || k == n)
            return st;
    }
}

Test(resp_reply, deep_counted_nesting_in_constant_memory)
{
    const size_t depth = 100000;
    size_t n;
    char *buf = build_fill("", 0, depth * 4, ":1\r\n", &n);
    struct resp_scanner s;
    struct resp_reply rep;

    for (size_t i = 0; i < depth; i++)
        memcpy(buf + i * 4, "*1\r\n", 4);
    cr_assert_eq(rep_feed(&s, buf, n, n, &rep), RESP_OK, "%s", s.err ? s.err : "");
    cr_expect_eq(rep.len, n);
    cr_expect_eq(rep.type, '*');
    cr_expect_eq(rep.count, 1);
    cr_assert_eq(rep_feed(&s, buf, n, 997, &rep), RESP_OK);
    cr_expect_eq(rep.len, n);
    /* One element short stays incomplete. */
    cr_expect_eq(rep_feed(&s, buf, n - 4, 997, &rep), RESP_INCOMPLETE);
    free(buf);
}

Test(resp_reply, sixteen_nested_streams_close)
{
    char buf[256];
    size_t n = 0;
    struct resp_scanner s;
    struct resp_reply rep;

    /* Arrays and maps alternate; each map's key is followed by the next stream as its value. */
    for (int i = 0; i < RESP_MAX_STREAM_DEPTH; i++)
        n += (size_t)sprintf(buf + n, "%s",
                             i % 2 && i < RESP_MAX_STREAM_DEPTH - 1 ? "%?\r\n+k\r\n" : "*?\r\n");
    for (int i = 0; i < RESP_MAX_STREAM_DEPTH; i++)
        n += (size_t)sprintf(buf + n, ".\r\n");
    cr_assert_eq(rep_feed(&s, buf, n, 1, &rep), RESP_OK, "%s", s.err ? s.err : "");
    cr_expect_eq(rep.len, n);
    cr_expect_eq(rep.count, -1);
}

/* A reply arriving in many reads is scanned once: the scanner resumes where it
 * stopped. Proven by destroying every byte it has already passed: rescanning
 * them would fail. */
Test(resp_reply, resumes_without_rescanning)
{
    const size_t elems = 1000, head = 7;
    size_t n;
    char *whole = build_fill("*1000\r\n", 0, elems * 4, "", &n);
    char *buf = malloc(n);
    struct resp_scanner s;
    struct resp_reply rep;
    resp_status_e st = RESP_INCOMPLETE;

    cr_assert_not_null(buf);
    for (size_t i = 0; i < elems; i++)
        memcpy(whole + head + i * 4, ":1\r\n", 4);
    resp_scanner_reset(&s);
    for (size_t k = 50, kept = 0;; k = k + 50 < n ? k + 50 : n) {
        memcpy(buf + kept, whole + kept, k - kept); /* only bytes not yet passed are intact */
        st = resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, buf, k, &rep);
        if (st != RESP_INCOMPLETE)
            break;
        kept = k < head ? 0 : head + (k - head) / 4 * 4; /* complete elements: passed */
        memset(buf, 'X', kept);
    }
    cr_assert_eq(st, RESP_OK, "%s", s.err ? s.err : "");
    cr_expect_eq(rep.len, n);
    cr_expect_eq(rep.type, '*');
    cr_expect_eq(rep.count, 1000);
    free(buf);
    free(whole);
}

Test(resp_reply, big_bulk_arrives_in_pieces)
{
    size_t n;
    char *buf = build_fill("$100000\r\n", 'v', 100000, "\r\n", &n);
    struct resp_scanner s;
    struct resp_reply rep;

    cr_assert_eq(rep_feed(&s, buf, n, 1000, &rep), RESP_OK);
    cr_expect_eq(rep.len, n);
    cr_expect_eq(rep.count, 100000);
    free(buf);
}

Test(resp_reply, long_free_text_lines)
{
    /* Lua's redis.status_reply() and error_reply() can be any length. */
    size_t n;
    char *buf = build_fill("-", 'e', 200000, "\r\n", &n);
    struct resp_scanner s;
    struct resp_reply rep;

    cr_assert_eq(rep_feed(&s, buf, n, 4096, &rep), RESP_OK);
    cr_expect_eq(rep.len, n);
    cr_expect_eq(rep.type, '-');
    free(buf);
}

Test(resp_reply, error_is_sticky_until_reset)
{
    struct resp_scanner s;
    struct resp_reply rep;

    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, BYTES("x"), &rep), RESP_ERROR);
    cr_assert_eq(resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, BYTES("+OK\r\n"), &rep), RESP_ERROR);
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, BYTES("+OK\r\n"), &rep), RESP_OK);
}
