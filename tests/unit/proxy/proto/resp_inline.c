/* tests/unit/proxy/proto/resp_inline.c - the inline-command encoder
 * (resp_inline_encode, sdssplitargs), table-driven.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/resp.h"
#include "resp_util.h"

#define ERR_QUOTES "Protocol error: unbalanced quotes in request"

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
