/* resp_util.h - helpers shared by the RESP scanner's tests (test_resp:
 * unit/proxy/proto/resp.c for requests, resp_reply.c for replies) and the
 * inline encoder's (test_resp_inline).
 */
#ifndef NEARCACHE_TESTS_UNIT_RESP_UTIL_H
#define NEARCACHE_TESTS_UNIT_RESP_UTIL_H

#include <criterion/criterion.h>

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

static inline const char *status_name(resp_status_e st)
{
    return st == RESP_OK ? "OK" : st == RESP_INCOMPLETE ? "INCOMPLETE" : "ERROR";
}

/* A view's bytes equal a C string. */
static inline int view_is(const char *frame, struct resp_view v, const char *want)
{
    return v.len == strlen(want) && memcmp(frame + v.off, want, v.len) == 0;
}

/* prefix + fill * count + suffix (C strings: no NUL in them), in a heap buffer. */
static inline char *build_fill(const char *prefix, char fill, size_t count, const char *suffix,
                               size_t *n)
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

#endif
