/* frame.h - requests for the unit tests, built from inline lines as a client
 * would send them: encoded as multibulk (resp_inline_encode: quotes and \xHH
 * escapes allowed) and scanned. */
#ifndef NEARCACHE_TESTS_FRAME_H
#define NEARCACHE_TESTS_FRAME_H

#include <criterion/criterion.h>

#include <string.h>

#include "proxy/proto/resp.h"

/* A scanned request; buf is malloc'd (free it). */
struct frame {
    char *buf;
    size_t len;
    struct resp_request req;
};

static inline void frame_scan(struct frame *f)
{
    struct resp_scanner s;

    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, f->buf, f->len, &f->req), RESP_OK);
}

static inline struct frame frame_of(const char *line)
{
    struct frame f;
    int64_t argc;
    const char *err;

    f.buf = resp_inline_encode(line, strlen(line), &f.len, &argc, &err);
    cr_assert_not_null(f.buf, "%s", line);
    frame_scan(&f);
    return f;
}

#endif
