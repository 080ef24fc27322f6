/* resp.c - incremental, zero-copy scanner for the Redis protocol.
 *
 * Requests follow Redis 7.0's processMultibulkBuffer/processInlineBuffer
 * byte for byte, quirks included (each is named where it is handled);
 * replies follow the RESP3 specification. Progress is kept in the scanner as
 * offsets from the frame start, so a frame is scanned once in total however
 * many reads it takes to arrive, and the buffer may move between calls.
 * Inline lines are split and re-encoded in resp_inline.c; the arguments of a
 * scanned request are walked with args.h.
 */
#include "proxy/proto/resp.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "proxy/proto/args.h"

const struct resp_limits RESP_LIMITS_DEFAULT = {
    .max_bulk_len = 512LL * 1024 * 1024,
    .max_multibulk_len = INT32_MAX,
    .max_inline_len = 64 * 1024,
};

/* Request errors: Redis's own messages, without "-ERR " and CRLF. */
static const char ERR_MBULK_BIG[] = "Protocol error: too big mbulk count string";
static const char ERR_MBULK_LEN[] = "Protocol error: invalid multibulk length";
static const char ERR_BULK_BIG[] = "Protocol error: too big bulk count string";
static const char ERR_BULK_LEN[] = "Protocol error: invalid bulk length";
static const char ERR_INLINE_BIG[] = "Protocol error: too big inline request";

/* Reply errors: ours, in the same style. */
static const char ERR_R_TYPE[] = "Protocol error: invalid reply type byte";
static const char ERR_R_CRLF[] = "Protocol error: reply line not terminated by CRLF";
static const char ERR_R_LONG[] = "Protocol error: reply header line too long";
static const char ERR_R_PAYLOAD[] = "Protocol error: bulk reply not terminated by CRLF";
static const char ERR_R_BULK[] = "Protocol error: invalid bulk reply length";
static const char ERR_R_AGG[] = "Protocol error: invalid aggregate reply length";
static const char ERR_R_INT[] = "Protocol error: invalid integer reply";
static const char ERR_R_NULL[] = "Protocol error: invalid null reply";
static const char ERR_R_DOUBLE[] = "Protocol error: invalid double reply";
static const char ERR_R_BOOL[] = "Protocol error: invalid boolean reply";
static const char ERR_R_VERBATIM[] = "Protocol error: invalid verbatim string reply";
static const char ERR_R_CHUNK[] = "Protocol error: invalid streamed string chunk";
static const char ERR_R_END[] = "Protocol error: unexpected end of streamed aggregate";
static const char ERR_R_DEEP[] = "Protocol error: streamed aggregates nested too deep";
static const char ERR_R_MANY[] = "Protocol error: too many elements pending in reply";

/* "Protocol error: expected '$', got 'X'" for every byte X, built at compile
 * time so that err stays a static string. Redis formats it with %c and then
 * maps '\r' and '\n' to spaces (addReplyErrorFormat); X is never NUL, since
 * Redis cannot see past a NUL in a header line. */
#define GOT_SHOWN(c) ((c) == '\r' || (c) == '\n' ? ' ' : (c))
#define GOT(c)                                                                                     \
    {                                                                                              \
        'P', 'r', 'o', 't', 'o', 'c', 'o', 'l', ' ', 'e', 'r', 'r', 'o', 'r', ':', ' ', 'e', 'x',  \
            'p', 'e', 'c', 't', 'e', 'd', ' ', '\'', '$', '\'', ',', ' ', 'g', 'o', 't', ' ',      \
            '\'', GOT_SHOWN(c), '\'', 0                                                            \
    }
#define GOT4(c)  GOT(c), GOT((c) + 1), GOT((c) + 2), GOT((c) + 3)
#define GOT16(c) GOT4(c), GOT4((c) + 4), GOT4((c) + 8), GOT4((c) + 12)
#define GOT64(c) GOT16(c), GOT16((c) + 16), GOT16((c) + 32), GOT16((c) + 48)

static const unsigned char ERR_EXPECTED[256][38] = {GOT64(0), GOT64(64), GOT64(128), GOT64(192)};

enum {
    PH_START = 0,  /* nothing of the frame scanned yet */
    PH_LINE,       /* at a header line: "$<len>" (request) or a value's type byte (reply) */
    PH_DATA,       /* at a bulk payload: s->bulk bytes and its terminator */
    PH_VERBATIM,   /* reply: at a verbatim string payload */
    PH_CHUNK,      /* reply: at a ";<len>" line of a streamed string */
    PH_CHUNK_DATA, /* reply: at the payload of a chunk */
};

void resp_scanner_reset(struct resp_scanner *s)
{
    s->pos = 0;
    s->scan = 0;
    s->pending = 0;
    s->bulk = 0;
    s->count = 0;
    s->value_off = 0;
    s->phase = PH_START;
    s->stream_depth = 0;
    s->stream_map = 0;
    s->type = 0;
    s->err = NULL;
}

static resp_status_e scan_fail(struct resp_scanner *s, const char *err)
{
    s->err = err;
    return RESP_ERROR;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* Where Redis's strchr(buf + from, c) stops: the first c or NUL in
 * buf[from, len), or len when neither has arrived. Valid header lines are
 * short, so a byte loop goes first; memchr takes over for long ones. */
static size_t find_stop(const char *buf, size_t from, size_t len, char c)
{
    size_t i = from, end = len - from > 32 ? from + 32 : len;
    const char *p, *z;

    for (; i < end; i++)
        if (buf[i] == c || buf[i] == '\0')
            return i;
    if (i == len)
        return len;
    p = memchr(buf + i, c, len - i);
    end = p ? (size_t)(p - buf) : len;
    z = memchr(buf + i, '\0', end - i);
    return z ? (size_t)(z - buf) : end;
}

/* Finds the end of the request header line starting at buf[start] as Redis
 * does: the first '\r' (a NUL before it hides it for good), complete once one
 * more byte, which Redis skips unchecked, has arrived. Returns 1 and *cr when
 * complete, 0 when the '\r' is the last byte so far, -1 when there is no '\r'.
 * Remembers how far it looked so that no byte is searched twice. */
static int req_line_end(struct resp_scanner *s, const char *buf, size_t start, size_t len,
                        size_t *cr)
{
    size_t from = s->scan > start ? s->scan : start;
    size_t stop = find_stop(buf, from, len, '\r');

    s->scan = stop;
    if (stop == len || buf[stop] != '\r')
        return -1;
    if (stop + 1 == len)
        return 0;
    *cr = stop;
    return 1;
}

/* Scans the "*<count>" line at the frame start. */
static resp_status_e req_count(struct resp_scanner *s, const struct resp_limits *lim,
                               const char *buf, size_t len)
{
    size_t cr = 0;
    int64_t n;
    int found = req_line_end(s, buf, 0, len, &cr);

    if (found < 0 && len > lim->max_inline_len)
        return scan_fail(s, ERR_MBULK_BIG);
    if (found <= 0)
        return RESP_INCOMPLETE;
    if (!resp_parse_ll(buf + 1, cr - 1, &n) || n > lim->max_multibulk_len)
        return scan_fail(s, ERR_MBULK_LEN);
    s->pos = cr + 2;
    s->count = n > 0 ? n : 0;
    s->pending = s->count;
    s->phase = PH_LINE;
    return RESP_OK;
}

/* Scans the "$<len>" line of the next argument, at s->pos. */
static resp_status_e req_bulk_line(struct resp_scanner *s, const struct resp_limits *lim,
                                   const char *buf, size_t len)
{
    size_t cr = 0;
    int64_t n;
    int found = req_line_end(s, buf, s->pos, len, &cr);

    if (found < 0 && len - s->pos > lim->max_inline_len)
        return scan_fail(s, ERR_BULK_BIG);
    if (found <= 0)
        return RESP_INCOMPLETE;
    if (buf[s->pos] != '$')
        return scan_fail(s, (const char *)ERR_EXPECTED[(unsigned char)buf[s->pos]]);
    if (!resp_parse_ll(buf + s->pos + 1, cr - s->pos - 1, &n) || n < 0 || n > lim->max_bulk_len)
        return scan_fail(s, ERR_BULK_LEN);
    s->bulk = n;
    s->pos = cr + 2;
    s->phase = PH_DATA;
    return RESP_OK;
}

/* Fills the kept views of the first `done` arguments, which an earlier call
 * scanned, by walking their (at most RESP_REQ_ARGS) header lines again. */
static void req_fill_views(struct resp_request *req, const char *buf, int64_t done)
{
    size_t off = (size_t)((const char *)memchr(buf, '\r', req->len) - buf) + 2;

    for (int64_t i = 0; i < done && i < RESP_REQ_ARGS; i++)
        req->argv[i] = resp_args_walk(buf, &off);
}

static resp_status_e req_done(struct resp_scanner *s, struct resp_request *req,
                              resp_req_kind_e kind, size_t len)
{
    int64_t i = kind == RESP_REQ_MULTIBULK ? s->count : kind == RESP_REQ_INLINE;

    req->kind = kind;
    req->len = len;
    req->argc = kind == RESP_REQ_MULTIBULK ? s->count : 0;
    for (; i < RESP_REQ_ARGS; i++)
        req->argv[i] = (struct resp_view){0, 0};
    resp_scanner_reset(s);
    return RESP_OK;
}

/* The number of a plain header line at buf[*at]: 1 to 9 digits without a
 * leading zero (or "0" alone), then '\r' and one more byte. Moves *at past
 * them. Returns -1 for anything else (a sign, a long or unterminated line, a
 * NUL), which the general path then judges. One and two digits, nearly every
 * count and most lengths, are read without the loop. */
static inline int64_t fast_number(const char *buf, size_t len, size_t *at)
{
    const unsigned char *p = (const unsigned char *)buf + *at;
    size_t room = len - *at, i = 0;
    int64_t n = 0;

    if (room >= 4 && (unsigned)(p[0] - '0') < 10) {
        unsigned d0 = p[0] - '0', d1 = p[1] - '0';
        if (p[1] == '\r')
            return *at += 3, d0;
        if (d0 != 0 && d1 < 10 && p[2] == '\r')
            return *at += 4, d0 * 10 + d1;
    }
    for (size_t stop = room > 9 ? 9 : room; i < stop && (unsigned)(p[i] - '0') < 10; i++)
        n = n * 10 + (p[i] - '0');
    if (i == 0 || (p[0] == '0' && i > 1) || i + 1 >= room || p[i] != '\r')
        return -1;
    *at += i + 2;
    return n;
}

/* The common case in one pass over the bytes: a whole multibulk frame whose
 * header lines are all plain (fast_number). Returns RESP_OK with req filled
 * and the scanner left fresh, or RESP_INCOMPLETE when it cannot tell, with the
 * scanner untouched for the general path, which decides as Redis does (an
 * error, or a frame still arriving). tests/fuzz/resp.c checks that the two
 * agree: a whole input takes this path, the same input split takes the other. */
static resp_status_e req_fast(const struct resp_limits *lim, const char *buf, size_t len,
                              struct resp_request *req)
{
    size_t at = 1;
    int64_t count = fast_number(buf, len, &at);

    if (count <= 0 || count > lim->max_multibulk_len)
        return RESP_INCOMPLETE;
        /* No views past argc. Unrolled into 8 vector stores: memset's rep stos
         * costs 26 instructions, a plain loop 32 (this function on a GET: 176 with
         * memset, 160 unrolled). */
#pragma GCC unroll 8
    for (int i = 0; i < RESP_REQ_ARGS; i++)
        req->argv[i] = (struct resp_view){0, 0};
    for (int64_t i = 0; i < count; i++) {
        if (at >= len || buf[at] != '$')
            return RESP_INCOMPLETE;
        at++;
        int64_t n = fast_number(buf, len, &at);
        if (n < 0 || n > lim->max_bulk_len || (uint64_t)(len - at) < (uint64_t)n + 2)
            return RESP_INCOMPLETE;
        if (i < RESP_REQ_ARGS)
            req->argv[i] = (struct resp_view){at, (size_t)n};
        at += (size_t)n + 2;
    }
    req->kind = RESP_REQ_MULTIBULK;
    req->len = at;
    req->argc = count;
    return RESP_OK;
}

/* Scans the arguments of a multibulk request, from where the last call stopped. */
static resp_status_e req_args(struct resp_scanner *s, const struct resp_limits *lim,
                              const char *buf, size_t len, struct resp_request *req)
{
    int64_t done = s->count - s->pending;

    while (s->pending > 0) {
        int64_t i = s->count - s->pending;
        if (s->phase == PH_LINE) {
            resp_status_e st = req_bulk_line(s, lim, buf, len);
            if (st != RESP_OK)
                return st;
        }
        /* Redis skips the 2 bytes after the payload without looking at them. */
        if ((uint64_t)(len - s->pos) < (uint64_t)s->bulk + 2)
            return RESP_INCOMPLETE;
        if (i < RESP_REQ_ARGS)
            req->argv[i] = (struct resp_view){s->pos, (size_t)s->bulk};
        s->pos += (size_t)s->bulk + 2;
        s->pending--;
        s->phase = PH_LINE;
    }
    if (s->count == 0)
        return req_done(s, req, RESP_REQ_EMPTY, s->pos);
    req->len = s->pos;
    if (done > 0)
        req_fill_views(req, buf, done);
    return req_done(s, req, RESP_REQ_MULTIBULK, s->pos);
}

/* Scans an inline request: one line ending in '\n' (Redis's strchr: a NUL
 * before it hides it, and only the size limit ends the wait). */
static resp_status_e req_inline(struct resp_scanner *s, const struct resp_limits *lim,
                                const char *buf, size_t len, struct resp_request *req)
{
    size_t nl = find_stop(buf, s->scan, len, '\n');
    size_t line = nl;

    if (nl == len || buf[nl] != '\n') {
        s->scan = nl;
        if (len > lim->max_inline_len)
            return scan_fail(s, ERR_INLINE_BIG);
        return RESP_INCOMPLETE;
    }
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    req->argv[0] = (struct resp_view){0, line};
    return req_done(s, req, line > 0 ? RESP_REQ_INLINE : RESP_REQ_EMPTY, nl + 1);
}

resp_status_e resp_scan_request(struct resp_scanner *s, const struct resp_limits *lim,
                                const char *buf, size_t len, struct resp_request *req)
{
    if (s->err)
        return RESP_ERROR;
    if (len == 0 || len < s->pos || len < s->scan) /* nothing new (or fewer bytes: misuse) */
        return RESP_INCOMPLETE;
    if (s->phase == PH_START) {
        resp_status_e st;
        if (buf[0] != '*')
            return req_inline(s, lim, buf, len, req);
        if (s->scan == 0 && req_fast(lim, buf, len, req) == RESP_OK)
            return RESP_OK;
        st = req_count(s, lim, buf, len);
        if (st != RESP_OK)
            return st;
    }
    return req_args(s, lim, buf, len, req);
}

struct resp_view resp_request_arg(const struct resp_request *req, const char *buf, int64_t i)
{
    struct resp_args a;

    resp_args_init(&a, buf, req);
    return resp_args_get(&a, i);
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/*                                                                          */
/* s->pending counts the values the frame still needs: 1 at the start, each */
/* value takes one, each counted aggregate adds its elements, an attribute  */
/* adds its elements without taking one. Counted nesting therefore costs no */
/* memory. A streamed aggregate saves pending on a small stack and restarts */
/* it at 0: at 0 inside a stream the next value is one of its elements (or  */
/* a key-value pair of a streamed map), or "." ends it.                     */
/* ------------------------------------------------------------------------ */

enum {
    RF_NULL = 1,     /* "-1" is the RESP2 null */
    RF_STREAM = 2,   /* "?" opens the streamed form */
    RF_ATTR = 4,     /* attribute: precedes a value, is not one */
    RF_VERBATIM = 8, /* payload starts with "xxx:" */
    RF_LONG = 16,    /* free text of any length (max_inline_len does not apply) */
};

struct reply_type;
typedef resp_status_e (*reply_scan_fn)(struct resp_scanner *s, const struct resp_limits *lim,
                                       const struct reply_type *t, char c, const char *p, size_t n);
typedef bool (*line_check_fn)(const char *p, size_t n);

struct reply_type {
    reply_scan_fn scan;  /* handles the header line's content p[0, n) */
    line_check_fn check; /* simple types: validates the content */
    const char *err;     /* simple types: the error when check fails */
    uint8_t width;       /* elements per counted unit: 2 for maps and attributes */
    uint8_t flags;       /* RF_* */
};

static bool check_text(const char *p, size_t n)
{
    (void)p;
    (void)n;
    return true;
}

static bool check_empty(const char *p, size_t n)
{
    (void)p;
    return n == 0;
}

static bool check_integer(const char *p, size_t n)
{
    int64_t v;
    return resp_parse_ll(p, n, &v);
}

static bool check_bool(const char *p, size_t n)
{
    return n == 1 && (p[0] == 't' || p[0] == 'f');
}

static size_t skip_digits(const char *p, size_t n, size_t i)
{
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

/* inf, infinity, nan, nan(chars), any case: what libc's "%.17g" may print
 * (Redis before 7.2 passes it through, "-nan" included). */
static bool check_double_word(const char *p, size_t n)
{
    static const char *const words[] = {"inf", "infinity", "nan"};
    size_t i = 0;

    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
        if (strlen(words[w]) == n && strncasecmp(p, words[w], n) == 0)
            return true;
    if (n < 5 || strncasecmp(p, "nan(", 4) != 0 || p[n - 1] != ')')
        return false;
    for (i = 4; i < n - 1; i++)
        if (!(p[i] == '_' || (p[i] >= '0' && p[i] <= '9') ||
              ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z')))
            return false;
    return true;
}

/* [+-] digits [. digits] [(e|E) [+-] digits], or a check_double_word(). */
static bool check_double(const char *p, size_t n)
{
    size_t i = 0, j;

    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    if (i < n && (p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z')
        return check_double_word(p + i, n - i);
    j = skip_digits(p, n, i);
    if (j == i)
        return false;
    if (j < n && p[j] == '.') {
        i = j + 1;
        j = skip_digits(p, n, i);
        if (j == i)
            return false;
    }
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        i = j + 1;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        j = skip_digits(p, n, i);
        if (j == i)
            return false;
    }
    return j == n;
}

/* Values per element of the innermost streamed aggregate: 2 in a map. */
static int64_t stream_width(const struct resp_scanner *s)
{
    return (s->stream_map >> (s->stream_depth - 1)) & 1 ? 2 : 1;
}

/* Takes one value (not an attribute) whose header is at s->pos; remembers it
 * when it is the top-level value. */
static void take_value(struct resp_scanner *s, char c, int64_t count)
{
    if (s->pending == 0) /* an element of the innermost streamed aggregate */
        s->pending = stream_width(s);
    if (s->type == 0 && s->pending == 1 && s->stream_depth == 0) {
        s->type = c;
        s->value_off = s->pos;
        s->count = count;
    }
    s->pending--;
}

/* Adds count * width values to pending, refusing to overflow the counter. */
static resp_status_e add_pending(struct resp_scanner *s, int64_t count, int64_t width)
{
    if (count > (INT64_MAX - s->pending) / width)
        return scan_fail(s, ERR_R_MANY);
    s->pending += count * width;
    return RESP_OK;
}

static resp_status_e reply_simple(struct resp_scanner *s, const struct resp_limits *lim,
                                  const struct reply_type *t, char c, const char *p, size_t n)
{
    (void)lim;
    if (!t->check(p, n))
        return scan_fail(s, t->err);
    take_value(s, c, 0);
    return RESP_OK;
}

static resp_status_e reply_bulk(struct resp_scanner *s, const struct resp_limits *lim,
                                const struct reply_type *t, char c, const char *p, size_t n)
{
    int64_t len;

    if (n == 1 && p[0] == '?' && (t->flags & RF_STREAM)) {
        take_value(s, c, -1);
        s->phase = PH_CHUNK;
        return RESP_OK;
    }
    if (!resp_parse_ll(p, n, &len))
        return scan_fail(s, ERR_R_BULK);
    if (len == -1 && (t->flags & RF_NULL)) {
        take_value(s, c, -1);
        return RESP_OK;
    }
    if (len < 0 || len > lim->max_bulk_len)
        return scan_fail(s, ERR_R_BULK);
    take_value(s, c, len);
    s->bulk = len;
    s->phase = (t->flags & RF_VERBATIM) ? PH_VERBATIM : PH_DATA;
    return RESP_OK;
}

/* Opens a streamed aggregate: its elements run until ".". */
static resp_status_e reply_stream_open(struct resp_scanner *s, const struct reply_type *t, char c)
{
    if (s->stream_depth == RESP_MAX_STREAM_DEPTH)
        return scan_fail(s, ERR_R_DEEP);
    take_value(s, c, -1);
    s->stream_pending[s->stream_depth] = s->pending;
    if (t->width == 2)
        s->stream_map |= 1u << s->stream_depth;
    else
        s->stream_map &= ~(1u << s->stream_depth);
    s->stream_depth++;
    s->pending = 0;
    return RESP_OK;
}

static resp_status_e reply_aggregate(struct resp_scanner *s, const struct resp_limits *lim,
                                     const struct reply_type *t, char c, const char *p, size_t n)
{
    int64_t count;

    if (n == 1 && p[0] == '?' && (t->flags & RF_STREAM))
        return reply_stream_open(s, t, c);
    if (!resp_parse_ll(p, n, &count))
        return scan_fail(s, ERR_R_AGG);
    if (count == -1 && (t->flags & RF_NULL)) {
        take_value(s, c, -1);
        return RESP_OK;
    }
    if (count < 0 || count > lim->max_multibulk_len)
        return scan_fail(s, ERR_R_AGG);
    if (!(t->flags & RF_ATTR))
        take_value(s, c, count);
    else if (s->pending == 0) /* it precedes an element of a stream */
        s->pending = stream_width(s);
    return add_pending(s, count, t->width);
}

static resp_status_e reply_end(struct resp_scanner *s, const struct resp_limits *lim,
                               const struct reply_type *t, char c, const char *p, size_t n)
{
    (void)lim;
    (void)t;
    (void)c;
    (void)p;
    if (n != 0 || s->pending != 0 || s->stream_depth == 0)
        return scan_fail(s, ERR_R_END);
    s->stream_depth--;
    s->pending = s->stream_pending[s->stream_depth];
    return RESP_OK;
}

static resp_status_e reply_chunk(struct resp_scanner *s, const struct resp_limits *lim,
                                 const struct reply_type *t, char c, const char *p, size_t n)
{
    int64_t len;

    (void)t;
    (void)c;
    if (!resp_parse_ll(p, n, &len) || len < 0 || len > lim->max_bulk_len)
        return scan_fail(s, ERR_R_CHUNK);
    s->bulk = len;
    s->phase = len == 0 ? PH_LINE : PH_CHUNK_DATA;
    return RESP_OK;
}

/* Indexed by the type byte; a zero entry is not a type. Big numbers are free
 * text: Redis 7.0 passes a Lua script's or a module's big number through
 * unchecked, and a strict check would let a script break the connection. */
static const struct reply_type REPLY_TYPES[256] = {
    ['+'] = {reply_simple, check_text, NULL, 1, RF_LONG},
    ['-'] = {reply_simple, check_text, NULL, 1, RF_LONG},
    ['('] = {reply_simple, check_text, NULL, 1, RF_LONG},
    [':'] = {reply_simple, check_integer, ERR_R_INT, 1, 0},
    ['_'] = {reply_simple, check_empty, ERR_R_NULL, 1, 0},
    [','] = {reply_simple, check_double, ERR_R_DOUBLE, 1, 0},
    ['#'] = {reply_simple, check_bool, ERR_R_BOOL, 1, 0},
    ['$'] = {reply_bulk, NULL, NULL, 1, RF_NULL | RF_STREAM},
    ['!'] = {reply_bulk, NULL, NULL, 1, 0},
    ['='] = {reply_bulk, NULL, NULL, 1, RF_VERBATIM},
    ['*'] = {reply_aggregate, NULL, NULL, 1, RF_NULL | RF_STREAM},
    ['~'] = {reply_aggregate, NULL, NULL, 1, RF_STREAM},
    ['%'] = {reply_aggregate, NULL, NULL, 2, RF_STREAM},
    ['>'] = {reply_aggregate, NULL, NULL, 1, 0},
    ['|'] = {reply_aggregate, NULL, NULL, 2, RF_ATTR},
    ['.'] = {reply_end, NULL, NULL, 1, 0},
};

/* The only header allowed between the chunks of a streamed string. */
static const struct reply_type CHUNK_TYPE = {reply_chunk, NULL, NULL, 1, 0};

/* The first '\r' in buf[from, len), or len: a byte loop for short lines first. */
static size_t find_cr(const char *buf, size_t from, size_t len)
{
    size_t i = from, end = len - from > 32 ? from + 32 : len;
    const char *p;

    for (; i < end; i++)
        if (buf[i] == '\r')
            return i;
    if (i == len)
        return len;
    p = memchr(buf + i, '\r', len - i);
    return p ? (size_t)(p - buf) : len;
}

/* Finds the "\r\n" ending the header line at s->pos. Returns RESP_OK and *cr,
 * RESP_INCOMPLETE, or an error for a bare '\r' or a line over the limit. */
static resp_status_e reply_line_end(struct resp_scanner *s, const struct resp_limits *lim,
                                    const struct reply_type *t, const char *buf, size_t len,
                                    size_t *cr)
{
    size_t end = find_cr(buf, s->scan > s->pos ? s->scan : s->pos + 1, len);

    if (!(t->flags & RF_LONG) && end - s->pos - 1 > lim->max_inline_len)
        return scan_fail(s, ERR_R_LONG);
    s->scan = end;
    if (end + 1 >= len)
        return RESP_INCOMPLETE;
    if (buf[end + 1] != '\n')
        return scan_fail(s, ERR_R_CRLF);
    *cr = end;
    return RESP_OK;
}

/* Scans the header line at s->pos: a value, an attribute, "." or a chunk. */
static resp_status_e reply_line(struct resp_scanner *s, const struct resp_limits *lim,
                                const char *buf, size_t len)
{
    const struct reply_type *t;
    unsigned char c;
    size_t cr = 0;
    resp_status_e st;

    if (s->pos >= len)
        return RESP_INCOMPLETE;
    c = (unsigned char)buf[s->pos];
    t = s->phase == PH_CHUNK ? (c == ';' ? &CHUNK_TYPE : NULL) : &REPLY_TYPES[c];
    if (!t || !t->scan)
        return scan_fail(s, s->phase == PH_CHUNK ? ERR_R_CHUNK : ERR_R_TYPE);
    st = reply_line_end(s, lim, t, buf, len, &cr);
    if (st != RESP_OK)
        return st;
    st = t->scan(s, lim, t, (char)c, buf + s->pos + 1, cr - s->pos - 1);
    if (st == RESP_OK)
        s->pos = cr + 2;
    return st;
}

/* Checks a payload of s->bulk bytes at s->pos and the "\r\n" after it. */
static resp_status_e reply_payload(struct resp_scanner *s, const char *buf, size_t len)
{
    size_t end;

    if ((uint64_t)(len - s->pos) < (uint64_t)s->bulk + 2)
        return RESP_INCOMPLETE;
    end = s->pos + (size_t)s->bulk;
    if (buf[end] != '\r' || buf[end + 1] != '\n')
        return scan_fail(s, ERR_R_PAYLOAD);
    if (s->phase == PH_VERBATIM && (s->bulk < 4 || buf[s->pos + 3] != ':'))
        return scan_fail(s, ERR_R_VERBATIM);
    s->pos = end + 2;
    s->phase = s->phase == PH_CHUNK_DATA ? PH_CHUNK : PH_LINE;
    return RESP_OK;
}

resp_status_e resp_scan_reply(struct resp_scanner *s, const struct resp_limits *lim,
                              const char *buf, size_t len, struct resp_reply *rep)
{
    if (s->err)
        return RESP_ERROR;
    if (len == 0 || len < s->pos || len < s->scan) /* nothing new (or fewer bytes: misuse) */
        return RESP_INCOMPLETE;
    if (s->phase == PH_START) {
        s->pending = 1;
        s->phase = PH_LINE;
    }
    while (s->pending > 0 || s->stream_depth > 0 || s->phase != PH_LINE) {
        resp_status_e st = s->phase == PH_LINE || s->phase == PH_CHUNK
                               ? reply_line(s, lim, buf, len)
                               : reply_payload(s, buf, len);
        if (st != RESP_OK)
            return st;
    }
    rep->len = s->pos;
    rep->value_off = s->value_off;
    rep->type = s->type;
    rep->count = s->count;
    resp_scanner_reset(s);
    return RESP_OK;
}
