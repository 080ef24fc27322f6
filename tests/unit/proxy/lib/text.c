/* tests/unit/proxy/lib/text.c - text built a piece at a time (proxy/lib/text.h):
 * formatted appends and the escaping of a user's bytes into one word. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/text.h"

#include "tests/unit/leaks.h"

TestSuite(text, .fini = check_leaks);

Test(text, printf_appends_and_keeps_a_nul)
{
    struct text t = {0};
    text_printf(&t, "a:%d\r\n", 1);
    text_printf(&t, "%s", "");
    text_printf(&t, "b:%s\r\n", "two");
    cr_assert_str_eq(t.data, "a:1\r\nb:two\r\n");
    cr_assert_eq(t.len, strlen(t.data));
    cr_assert_not(t.oom);
    text_free(&t);
    cr_assert_null(t.data);
    cr_assert_eq(t.len, 0);
}

Test(text, escaped_bytes_are_one_printable_word)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"user:1", 6, "user:1"},
        {"", 0, ""},
        {"a b", 3, "a\\x20b"},
        {"\r\n\t", 3, "\\x0d\\x0a\\x09"},
        {"\0\x7f\x80\xff", 4, "\\x00\\x7f\\x80\\xff"},
        {"!~\\{*}", 6, "!~\\x5c{*}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct text t = {0};
        text_printf(&t, "[");
        text_escaped(&t, cases[i].in, cases[i].len);
        text_printf(&t, "]");
        char want[64];
        snprintf(want, sizeof(want), "[%s]", cases[i].out);
        cr_expect_str_eq(t.data, want, "case %zu", i);
        cr_expect_eq(t.len, strlen(want));
        text_free(&t);
    }
}

Test(text, quoted_bytes_read_as_redis_cli_shows_them)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"user:1", 6, "user:1"}, {"", 0, ""},
        {"a b", 3, "a b"},       {"\r\n\t\a\b", 5, "\\r\\n\\t\\a\\b"},
        {"\"\\", 2, "\\\"\\\\"}, {"\0\x7f\x80\xff", 4, "\\x00\\x7f\\x80\\xff"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *q = text_quote(cases[i].in, cases[i].len);
        cr_expect_str_eq(q, cases[i].out, "case %zu", i);
        free(q);
    }
}

Test(text, grows_past_its_first_block)
{
    struct text t = {0};
    char big[1000];
    memset(big, 0x01, sizeof(big));
    text_escaped(&t, big, sizeof(big));
    text_printf(&t, "%0500d", 7);
    cr_assert_eq(t.len, 4 * sizeof(big) + 500);
    cr_assert_eq(strncmp(t.data, "\\x01\\x01", 8), 0);
    cr_assert_eq(t.data[t.len - 1], '7');
    cr_assert_eq(t.data[t.len], '\0');
    text_free(&t);
}
