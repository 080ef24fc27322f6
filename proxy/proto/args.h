/* args.h - the arguments of a scanned multibulk request, one after another.
 *
 * Works on a frame that resp_scan_request() returned as RESP_REQ_MULTIBULK,
 * so nothing is checked again: each argument is a "$<len>" line (len in
 * canonical decimal, then '\r' and one byte Redis skips unchecked), the
 * payload and two more skipped bytes. The first RESP_REQ_ARGS arguments come
 * from the views the scanner kept; later ones are reached by walking forward,
 * O(1) per step. Pure: no allocation, no I/O.
 */
#ifndef NEARCACHE_ARGS_H
#define NEARCACHE_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/resp.h"

/* A position among a request's arguments. Fields are read-only for callers. */
struct resp_args {
    const char *buf;                /* borrowed: the frame, buf[0] is its '*' */
    const struct resp_request *req; /* borrowed: the scanner's report of it */
    int64_t idx;                    /* argument `view` is; -1 before the first */
    struct resp_view view;          /* payload of argument idx */
};

/* Starts before argument 0 of req, a complete request whose frame starts at
 * buf[0]. Both are borrowed and must stay in place while a is used. A request
 * that is not RESP_REQ_MULTIBULK has no arguments here. */
static inline void resp_args_init(struct resp_args *a, const char *buf,
                                  const struct resp_request *req)
{
    a->buf = buf;
    a->req = req;
    a->idx = -1;
    a->view = (struct resp_view){0, 0};
}

/* The argument whose "$<len>" line starts at buf[*off] in a validated frame;
 * moves *off to the line after it. The step under every other function here
 * (and the scanner's, which has no kept views yet). */
static inline struct resp_view resp_args_walk(const char *buf, size_t *off)
{
    size_t i = *off + 1, n = 0;
    struct resp_view v;

    while (buf[i] != '\r')
        n = n * 10 + (size_t)(buf[i++] - '0');
    v.off = i + 2;
    v.len = n;
    *off = v.off + n + 2;
    return v;
}

/* Moves to the next argument and stores its payload view in *arg. Returns
 * false (a and *arg unchanged) after the last one. O(1). */
static inline bool resp_args_next(struct resp_args *a, struct resp_view *arg)
{
    int64_t i = a->idx + 1;

    if (a->req->kind != RESP_REQ_MULTIBULK || i >= a->req->argc)
        return false;
    if (i < RESP_REQ_ARGS) {
        a->view = a->req->argv[i];
    } else {
        size_t off = a->view.off + a->view.len + 2;
        a->view = resp_args_walk(a->buf, &off);
    }
    a->idx = i;
    *arg = a->view;
    return true;
}

/* Argument i (0 <= i < argc) by index; moves a there, so resp_args_next()
 * goes on with i + 1. O(1) for i < RESP_REQ_ARGS or i == idx + 1; walks
 * forward from idx, or from argument RESP_REQ_ARGS - 1 when i is behind idx.
 * Stepping i upwards is O(argc) in all. Out of range or not a multibulk
 * request: returns {0, 0} and leaves a as it was. */
struct resp_view resp_args_get(struct resp_args *a, int64_t i);

/* The whole encoding of the argument whose payload is arg: from its "$<len>"
 * line to the two bytes after the payload ("$3\r\nkey\r\n" for "key"). */
struct resp_view resp_args_encoding(struct resp_view arg);

/* Parses p[0, n) with Redis's string2ll rules: an optional '-', then digits
 * with no leading zero (except "0" itself), nothing else, within int64.
 * Returns false and leaves *out alone otherwise. Inline: the scanner calls it
 * for every header line. */
static inline bool resp_parse_ll(const char *p, size_t n, int64_t *out)
{
    uint64_t v = 0, max = INT64_MAX;
    size_t i = 0;

    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    if (n > 0 && p[0] == '-') {
        i = 1;
        max = (uint64_t)INT64_MAX + 1;
    }
    if (i >= n || n - i > 19 || p[i] < '1' || p[i] > '9')
        return false;
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)p[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d; /* 19 digits cannot overflow uint64 */
    }
    if (v > max)
        return false;
    *out = max == (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(v - 1) - 1;
    return true;
}

#endif
