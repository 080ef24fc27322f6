/* tests/unit/proxy/proto/resp_reply.c - the RESP scanner's replies,
 * table-driven; part of test_resp, with resp.c (requests).
 *
 * Every case is scanned whole and split at every byte, each prefix in a fresh
 * exact-size heap copy, and the valid ones back to back in one buffer.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/resp.h"
#include "resp_util.h"

/* No count limit: only the counter's own overflow guard is left. */
static const struct resp_limits HUGE = {
    .max_bulk_len = INT64_MAX,
    .max_multibulk_len = INT64_MAX,
    .max_inline_len = 64 * 1024,
};

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
