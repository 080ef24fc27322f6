/* tests/fuzz/resp.c - libFuzzer target for the RESP scanner.
 *
 * Input: the first byte picks the split step, the rest is the stream. The
 * stream is scanned as pipelined requests and as pipelined replies, once
 * whole and once fed `step` bytes at a time (each call on a fresh exact-size
 * copy of the bytes given, so ASan sees any read past them and the buffer
 * moves between calls); both runs must agree frame for frame. Every frame is
 * checked against the invariants below, and each inline line, and the whole
 * input, go through resp_inline_encode and back through the scanner.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/resp.h"
#include "tests/fuzz/fuzz.h"

#define MAX_FRAMES 512

/* Small limits reach every limit path; only safety is checked with them (a
 * header line that ends past the limit is accepted whole but refused split,
 * as in Redis, so whole and split may differ). */
static const struct resp_limits TINY = {
    .max_bulk_len = 16,
    .max_multibulk_len = 4,
    .max_inline_len = 12,
};

/* One scan result; requests and replies share it. */
struct frame {
    resp_status_e st;
    const char *err;
    struct resp_request req;
    struct resp_reply rep;
};

typedef resp_status_e (*scan_fn)(struct resp_scanner *s, const struct resp_limits *lim,
                                 const char *buf, size_t len, struct frame *f);

static void view_inside(struct resp_view v, size_t len)
{
    CHECK(v.off <= len && v.len <= len - v.off);
}

/* The encoding of an inline line must scan back as one multibulk request. */
static void check_encode(const char *line, size_t len)
{
    size_t outlen;
    int64_t argc;
    const char *err;
    char *out = resp_inline_encode(line, len, &outlen, &argc, &err);
    struct resp_scanner s;
    struct resp_request req;

    if (!out) {
        CHECK(argc == 0);
        return;
    }
    CHECK(err == NULL && argc > 0);
    resp_scanner_reset(&s);
    CHECK(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, out, outlen, &req) == RESP_OK);
    CHECK(req.kind == RESP_REQ_MULTIBULK && req.len == outlen && req.argc == argc);
    for (int64_t i = 0; i < argc; i++)
        view_inside(resp_request_arg(&req, out, i), outlen);
    free(out);
}

static void check_request(const char *buf, size_t avail, const struct resp_request *req)
{
    CHECK(req->len > 0 && req->len <= avail);
    if (req->kind == RESP_REQ_MULTIBULK) {
        size_t end = 0;
        CHECK(req->argc > 0);
        for (int64_t i = 0; i < req->argc && i < 64; i++) {
            struct resp_view v = resp_request_arg(req, buf, i);
            view_inside(v, req->len);
            CHECK(v.off >= end); /* in order, not overlapping */
            end = v.off + v.len;
            if (i < RESP_REQ_ARGS)
                CHECK(v.off == req->argv[i].off && v.len == req->argv[i].len);
        }
        return;
    }
    CHECK(req->argc == 0);
    if (req->kind == RESP_REQ_INLINE) {
        CHECK(req->argv[0].off == 0 && req->argv[0].len > 0 && req->argv[0].len < req->len);
        CHECK(memchr(buf, '\0', req->argv[0].len) == NULL); /* Redis cannot see past a NUL */
        check_encode(buf, req->argv[0].len);
    } else {
        CHECK(req->kind == RESP_REQ_EMPTY);
    }
}

static void check_reply(const char *buf, size_t avail, const struct resp_reply *rep)
{
    CHECK(rep->len > 0 && rep->len <= avail);
    CHECK(rep->value_off < rep->len);
    CHECK(buf[rep->value_off] == rep->type);
    CHECK(rep->type != 0 && strchr("+-:$*_,#(!=%~>", rep->type) != NULL);
    CHECK(rep->count >= -1);
    if (rep->type == '$' && rep->count >= 0)
        CHECK((uint64_t)rep->count <= rep->len);
}

/* Scans a fresh exact-size copy of buf[0, len). */
static resp_status_e scan_copy(scan_fn scan, struct resp_scanner *s, const struct resp_limits *lim,
                               const char *buf, size_t len, struct frame *f)
{
    char *copy = malloc(len ? len : 1);
    resp_status_e st;

    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    memset(f, 0, sizeof(*f));
    st = scan(s, lim, copy, len, f);
    f->st = st;
    f->err = st == RESP_ERROR ? s->err : NULL;
    if (st == RESP_ERROR)
        CHECK(s->err != NULL);
    free(copy);
    return st;
}

static resp_status_e scan_request(struct resp_scanner *s, const struct resp_limits *lim,
                                  const char *buf, size_t len, struct frame *f)
{
    resp_status_e st = resp_scan_request(s, lim, buf, len, &f->req);
    if (st == RESP_OK)
        check_request(buf, len, &f->req);
    return st;
}

static resp_status_e scan_reply(struct resp_scanner *s, const struct resp_limits *lim,
                                const char *buf, size_t len, struct frame *f)
{
    resp_status_e st = resp_scan_reply(s, lim, buf, len, &f->rep);
    if (st == RESP_OK)
        check_reply(buf, len, &f->rep);
    return st;
}

static size_t frame_len(const struct frame *f, scan_fn scan)
{
    return scan == scan_request ? f->req.len : f->rep.len;
}

/* Scans buf as back-to-back frames, offered `step` more bytes whenever the
 * scanner needs more (step >= n: all at once). Returns the frames seen. */
static size_t run(scan_fn scan, const struct resp_limits *lim, const char *buf, size_t n,
                  size_t step, struct frame *out)
{
    struct resp_scanner s;
    size_t start = 0, avail = step < n ? step : n, count = 0;

    resp_scanner_reset(&s);
    while (start < n && count < MAX_FRAMES) {
        struct frame *f = &out[count];
        resp_status_e st = scan_copy(scan, &s, lim, buf + start, avail - start, f);
        if (st == RESP_INCOMPLETE && avail < n) {
            avail = avail + step < n ? avail + step : n;
            continue;
        }
        count++;
        if (st != RESP_OK)
            break;
        start += frame_len(f, scan);
        if (avail < start)
            avail = start;
    }
    return count;
}

static int same_frame(const struct frame *a, const struct frame *b)
{
    if (a->st != b->st)
        return 0;
    if (a->st == RESP_ERROR)
        return strcmp(a->err, b->err) == 0;
    if (a->st == RESP_INCOMPLETE)
        return 1;
    return memcmp(&a->req, &b->req, sizeof(a->req)) == 0 &&
           memcmp(&a->rep, &b->rep, sizeof(a->rep)) == 0;
}

static void compare(scan_fn scan, const char *buf, size_t n, size_t step)
{
    static struct frame whole[MAX_FRAMES], split[MAX_FRAMES];
    size_t nw = run(scan, &RESP_LIMITS_DEFAULT, buf, n, n, whole);
    size_t ns = run(scan, &RESP_LIMITS_DEFAULT, buf, n, step, split);

    CHECK(nw == ns);
    for (size_t i = 0; i < nw; i++)
        CHECK(same_frame(&whole[i], &split[i]));
    run(scan, &TINY, buf, n, n, whole);
    run(scan, &TINY, buf, n, step, split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data + 1;
    size_t n, step;

    if (size < 1)
        return 0;
    n = size - 1;
    step = data[0] % 64 + 1;
    compare(scan_request, buf, n, step);
    compare(scan_reply, buf, n, step);
    check_encode(buf, n);
    return 0;
}
