/* Unit tests for proxy/lib/log.c: level and format names, NEARCACHE_DEBUG,
 * rendering of formats with {name=%conv} fields as text (the conversions as
 * printf does them) and as JSON (parsed back with jansson: typed fields,
 * escaping, invalid UTF-8), the cut of Redis errors and per-call-site rate
 * limiting.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "proxy/lib/log.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STAMP_LEN    24 /* "2026-12-06T17:15:29.669Z" */

/* ---- names ----------------------------------------------------------------- */

Test(log, level_names)
{
    static const struct {
        const char *name;
        int ok;
        log_level_e level;
    } CASES[] = {
        {"crit", 0, LOG_CRIT},     {"ERROR", 0, LOG_ERROR}, {"warn", 0, LOG_WARN},
        {"Notice", 0, LOG_NOTICE}, {"info", 0, LOG_INFO},   {"debug", 0, LOG_DEBUG},
        {"warning", -1, LOG_CRIT}, {"", -1, LOG_CRIT},      {"debug ", -1, LOG_CRIT},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        log_level_e got = LOG_CRIT;
        cr_expect_eq(log_level_parse(CASES[i].name, &got), CASES[i].ok, "%s", CASES[i].name);
        cr_expect_eq(got, CASES[i].level, "%s", CASES[i].name);
    }
    cr_expect_str_eq(log_level_name(LOG_NOTICE), "notice");
    cr_expect_str_eq(log_level_name(LOG_DEBUG), "debug");
}

Test(log, format_names)
{
    static const struct {
        const char *name;
        int ok;
        log_format_e format;
    } CASES[] = {
        {"text", 0, LOG_TEXT},   {"json", 0, LOG_JSON},   {"JSON", 0, LOG_JSON},
        {"Text", 0, LOG_TEXT},   {"", -1, LOG_TEXT},      {"yaml", -1, LOG_TEXT},
        {"json ", -1, LOG_TEXT}, {"jsonl", -1, LOG_TEXT},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        log_format_e got = LOG_TEXT;
        cr_expect_eq(log_format_parse(CASES[i].name, &got), CASES[i].ok, "%s", CASES[i].name);
        cr_expect_eq(got, CASES[i].format, "%s", CASES[i].name);
    }
    cr_expect_str_eq(log_format_name(LOG_TEXT), "text");
    cr_expect_str_eq(log_format_name(LOG_JSON), "json");
}

/* NEARCACHE_DEBUG: unset, "" and "0" are off, "1" is on, anything else an
 * error that changes nothing; on forces the debug level through reloads. */
Test(log, debug_switch)
{
    static const struct {
        const char *value;
        int rc;
        bool checks;
    } CASES[] = {
        {NULL, 0, false}, {"", 0, false},     {"0", 0, false},   {"1", 0, true},
        {"2", -1, true},  {"01", -1, true},   {" 1", -1, true},  {"true", -1, true},
        {"0", 0, false},  {"yes", -1, false}, {"-1", -1, false}, {"1 ", -1, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        const char *v = CASES[i].value != NULL ? CASES[i].value : "(unset)";
        cr_expect_eq(log_debug_setup(CASES[i].value), CASES[i].rc, "%s", v);
        cr_expect_eq(log_checks, CASES[i].checks, "%s", v);
    }
    cr_assert_eq(log_debug_setup("1"), 0);
    log_configure(LOG_WARN, LOG_JSON);
    cr_expect_eq(log_level, LOG_DEBUG, "the switch overrides log_level");
    cr_expect_eq(log_format, LOG_JSON);
    cr_assert_eq(log_debug_setup("0"), 0);
    log_configure(LOG_WARN, LOG_TEXT);
    cr_expect_eq(log_level, LOG_WARN);
    cr_expect_eq(log_format, LOG_TEXT);
}

/* ---- capture ---------------------------------------------------------------- */

/* The line log_vwrite writes in format, malloc'd. */
static char *vline(log_format_e format, log_level_e level, const char *event, const char *fmt,
                   va_list ap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    log_format = format;
    log_vwrite(f, level, event, fmt, ap);
    cr_assert_eq(fclose(f), 0);
    cr_assert(len > 0 && buf[len - 1] == '\n' && memchr(buf, '\n', len - 1) == NULL,
              "not one line: %s", buf);
    return buf;
}

static bool stamp_ok(const char *s)
{
    static const char SHAPE[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < STAMP_LEN; i++) {
        if (SHAPE[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != SHAPE[i])
            return false;
    }
    return true;
}

static char *text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The message of a text line "<time> notice <message>", malloc'd. */
static char *text(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = vline(LOG_TEXT, LOG_NOTICE, "test_event", fmt, ap);
    va_end(ap);
    cr_assert(stamp_ok(line) && strncmp(line + STAMP_LEN, " notice ", 8) == 0, "line %s", line);
    size_t n = strlen(line + STAMP_LEN + 8);
    memmove(line, line + STAMP_LEN + 8, n + 1);
    line[n - 1] = '\0';
    return line;
}

static char *printed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What vsnprintf makes of fmt, malloc'd. */
static char *printed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    cr_assert_geq(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    return s;
}

static json_t *json(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A JSON line of event, parsed. Checks that it is one valid JSON object
 * whose first members are time, level, event and msg. */
static json_t *json(const char *event, const char *fmt, ...)
{
    static const char *const FIRST[] = {"time", "level", "event", "msg"};
    va_list ap;
    va_start(ap, fmt);
    char *line = vline(LOG_JSON, LOG_WARN, event, fmt, ap);
    va_end(ap);
    json_error_t err;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    cr_assert(json_is_object(o), "not JSON (%s): %s", err.text, line);
    void *it = json_object_iter(o);
    for (size_t i = 0; i < ARRAY_LEN(FIRST); i++, it = json_object_iter_next(o, it))
        cr_assert(it != NULL && strcmp(json_object_iter_key(it), FIRST[i]) == 0,
                  "member %zu is not %s: %s", i, FIRST[i], line);
    cr_expect(stamp_ok(json_string_value(json_object_get(o, "time"))), "%s", line);
    cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(o, "event")), event);
    free(line);
    return o;
}

/* ---- text -------------------------------------------------------------------- */

struct text_case {
    const char *what;
    char *got;  /* malloc'd */
    char *want; /* malloc'd, or NULL: same as what */
};

/* A format without fields comes out as printf prints it. */
#define SAME(...)                                                                                  \
    {                                                                                              \
#__VA_ARGS__, text(__VA_ARGS__), printed(__VA_ARGS__)                                      \
    }

static void check_texts(struct text_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *want = cases[i].want != NULL ? cases[i].want : cases[i].what;
        cr_expect_str_eq(cases[i].got, want, "%s", cases[i].what);
        free(cases[i].got);
        free(cases[i].want);
    }
}

Test(log, text_strips_the_field_names)
{
    const char *volatile none = NULL; /* out of sight of -Wformat */
    struct text_case cases[] = {
        {"draining 3 clients (at most 5000 ms)",
         text("draining {clients=%d} clients (at most {timeout_ms=%d} ms)", 3, 5000), NULL},
        {"5 items at start", text("{n=%d} items at start", 5), NULL},
        {"at the end: 3", text("at the end: {ms=%.0f}", 2.6), NULL},
        {"{7}", text("{{n=%d}}", 7), NULL},
        {"a plain message", text("a plain message"), NULL},
        {"", text("%s", ""), NULL},
        {"100% of 7%", text("100%% of {share=%d}%%", 7), NULL},
        {"key abc!", text("key {key=%.*s}!", 3, "abcdef"), NULL},
        {"n=42 m=-9000000000", text("n={n=%zu} m={m=%lld}", (size_t)42, -9000000000LL), NULL},
        {"[  ab|0x1f]", text("[{w=%4s}|{h=%#x}]", "ab", 31u), NULL},
        {"(null)", text("{s=%s}", none), NULL},
    };
    check_texts(cases, ARRAY_LEN(cases));
}

Test(log, text_prints_a_brace_that_opens_no_field)
{
    struct text_case cases[] = {
        {"{abc} {x=} {=1} {y=2 3} 4", text("{abc} {x=} {=%d} {y=%d %d} {z=%d}", 1, 2, 3, 4), NULL},
        {"{x=%} {-=5} {a b=6}", text("{x=%%} {-=%d} {a b=%d}", 5, 6), NULL},
        {"{a=1}", text("{a={b=%d}}", 1), NULL},
        {"{n=7", text("{n=%d", 7), NULL},
        {"{", text("{"), NULL},
        {"x}", text("x}"), NULL},
    };
    check_texts(cases, ARRAY_LEN(cases));
}

Test(log, text_conversions_are_printfs)
{
    struct text_case cases[] = {
        SAME("%d %i %u %o %x %X", -1, INT_MIN, 4000000000u, 8u, 255u, 0xabcu),
        SAME("%hhd %hhu %hd %hu %hhx", (signed char)-5, (unsigned char)200, (short)-30000,
             (unsigned short)60000, (unsigned char)255),
        SAME("%ld %lu %lld %llu", LONG_MIN, ULONG_MAX, LLONG_MIN, ULLONG_MAX),
        SAME("%zd %zu %jd %ju %td", (ssize_t)-8, SIZE_MAX, INTMAX_MIN, UINTMAX_MAX, (ptrdiff_t)-9),
        SAME("%x %x", -1, 0),
        SAME("[%5d|%-5d|%05d|%+d|% d|%.3d|%.0d]", 42, 42, 42, 42, 42, 7, 0),
        SAME("[%#o|%#x|%#X|%-#8x]", 8u, 255u, 255u, 1u),
        SAME("[%*d|%-*d|%*d]", 5, 1, 3, 2, -4, 3),
        SAME("[%.*f|%.*s|%*.*s]", 2, 3.14159, -1, "abc", 6, 2, "abc"),
        SAME("[%c|%-3c|%3c]", 'z', 'a', 'b'),
        SAME("[%s|%10s|%-10s|%.2s]", "x", "right", "left", "cut"),
        SAME("%p %p", (void *)0x1234, (void *)0),
        SAME("%f %.0f %e %E %g %G %a %A %lf", 1.5, 2.5, 12345.678, 1e-30, 0.0001, 1e30, 1.0, 0.5,
             -0.25),
        SAME("%F %f %f %10.3f %-10.1e|", INFINITY, NAN, -INFINITY, 3.14159, 2.0),
        SAME("100%%"),
    };
    check_texts(cases, ARRAY_LEN(cases));
}

/* A conversion log.c does not take (%n, %Lf, %ls) ends the arguments: the
 * rest of the format is printed as it is, and nothing crashes. */
Test(log, text_stops_at_a_conversion_it_does_not_take)
{
    const char *volatile trailing = "a %"; /* out of sight of -Wformat */
    int n = 0;
    struct text_case cases[] = {
        {"1 %n %d %d", text("%d %n %d %d", 1, &n, 2, 3), NULL},
        {"x %Lf {y=%d}", text("x %Lf {y=%d}", 1.0L, 2), NULL},
        {"%ls", text("%ls", L"wide"), NULL},
        {"a %", text(trailing, 0), NULL},
    };
    check_texts(cases, ARRAY_LEN(cases));
    cr_expect_eq(n, 0, "%%n wrote");
}

Test(log, a_long_message_is_cut)
{
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *got = text("{a=%s}{b=%s}%s", big, big, big);
    cr_expect_eq(strlen(got), 1023);
    free(got);
    json_t *o = json("cut", "%s {s=%s}", big, "after the cut");
    cr_expect_eq(json_string_length(json_object_get(o, "msg")), 1023);
    cr_expect_str_eq(json_string_value(json_object_get(o, "s")), "");
    json_decref(o);
}

/* ---- JSON -------------------------------------------------------------------- */

struct json_case {
    const char *what;
    json_t *got;        /* owned */
    const char *msg;    /* want */
    const char *fields; /* want: the members after msg, as JSON */
};

static void check_jsons(const struct json_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct json_case *c = &cases[i];
        json_t *want = json_loads(c->fields, 0, NULL);
        json_t *got = json_deep_copy(c->got);
        cr_assert(want != NULL && got != NULL, "%s: bad test", c->what);
        cr_expect_str_eq(json_string_value(json_object_get(got, "msg")), c->msg, "%s", c->what);
        json_object_del(got, "time");
        json_object_del(got, "level");
        json_object_del(got, "event");
        json_object_del(got, "msg");
        char *shown = json_dumps(got, JSON_COMPACT);
        cr_expect(json_equal(got, want), "%s: fields %s, want %s", c->what, shown, c->fields);
        free(shown);
        json_decref(want);
        json_decref(got);
        json_decref(c->got);
    }
}

Test(log, json_fields_are_typed)
{
    const struct json_case cases[] = {
        {"example",
         json("drain_start", "draining {clients=%d} clients (at most {timeout_ms=%d} ms)", 3, 5000),
         "draining 3 clients (at most 5000 ms)", "{\"clients\":3,\"timeout_ms\":5000}"},
        {"no fields", json("drain_done", "drained, exiting"), "drained, exiting", "{}"},
        {"integers",
         json("ints", "{a=%d}{b=%lld}{c=%zu}{d=%x}{e=%hhd}{f=%u}", -7, -9000000000LL, (size_t)42,
              255u, (signed char)-5, 4000000000u),
         "-7-900000000042ff-54000000000",
         "{\"a\":-7,\"b\":-9000000000,\"c\":42,\"d\":255,\"e\":-5,\"f\":4000000000}"},
        {"over a JSON integer", json("big", "{u=%llu}", ULLONG_MAX), "18446744073709551615",
         "{\"u\":\"18446744073709551615\"}"},
        {"reals as printed", json("reals", "{a=%.0f} {b=%.2f} {c=%g}", 2.6, 0.25, 1e-5),
         "3 0.25 1e-05", "{\"a\":3.0,\"b\":0.25,\"c\":1e-05}"},
        {"not a number", json("nan", "{a=%f} {b=%f}", NAN, -INFINITY), "nan -inf",
         "{\"a\":\"nan\",\"b\":\"-inf\"}"},
        {"strings", json("str", "{s=%s}/{k=%.*s}/{c=%c}/{w=%3s}", "abc", 2, "xyz", 'q', "r"),
         "abc/xy/q/  r", "{\"s\":\"abc\",\"k\":\"xy\",\"c\":\"q\",\"w\":\"  r\"}"},
        {"at start and end", json("ends", "{first=%d} middle {last=%s}", 1, "z"), "1 middle z",
         "{\"first\":1,\"last\":\"z\"}"},
        {"percent", json("pct", "{p=%d}%%", 50), "50%", "{\"p\":50}"},
        {"a brace that is no field", json("brace", "{abc} {x=} {n=%d}", 1), "{abc} {x=} 1",
         "{\"n\":1}"},
        {"reserved names", json("reserved", "{msg=%d} {level=%s} {time=%d}", 1, "x", 2), "1 x 2",
         "{}"},
        {"first of a name wins", json("dup", "{a=%d} {a=%d}", 1, 2), "1 2", "{\"a\":1}"},
    };
    check_jsons(cases, ARRAY_LEN(cases));
}

Test(log, json_escapes_what_it_must)
{
    const struct json_case cases[] = {
        {"quotes, backslashes, controls", json("esc", "say {what=%s}", "a\"b\\c\n\r\t\x01\x7f/"),
         "say a\"b\\c\n\r\t\x01\x7f/", "{\"what\":\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f/\"}"},
        {"in the format too", json("esc", "\"quoted\"\n\\{n=%d}", 1), "\"quoted\"\n\\1",
         "{\"n\":1}"},
        {"UTF-8 kept", json("utf8", "{s=%s}", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
         "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "{\"s\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}"},
        {"stray and bad lead bytes", json("bad", "{s=%s}", "a\xff\xc3(b"),
         "a\xef\xbf\xbd\xef\xbf\xbd(b", "{\"s\":\"a\\ufffd\\ufffd(b\"}"},
        {"overlong, surrogate, over U+10FFFF",
         json("bad", "%s", "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80"),
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef"
         "\xbf\xbd\xef\xbf\xbd",
         "{}"},
        {"cut short", json("bad", "{s=%s}", "x\xe2\x82"), "x\xef\xbf\xbd\xef\xbf\xbd",
         "{\"s\":\"x\\ufffd\\ufffd\"}"},
        {"cut by %.*s inside a character", json("bad", "{k=%.*s}", 2, "\xe2\x82\xac"),
         "\xef\xbf\xbd\xef\xbf\xbd", "{\"k\":\"\\ufffd\\ufffd\"}"},
    };
    check_jsons(cases, ARRAY_LEN(cases));
}

/* A %c of 0 puts a NUL in the message: text stops there, JSON escapes it. */
Test(log, json_keeps_a_nul_byte)
{
    json_t *o = json("nul", "a{c=%c}b", 0);
    json_t *msg = json_object_get(o, "msg");
    cr_assert_eq(json_string_length(msg), 3);
    cr_expect_eq(memcmp(json_string_value(msg), "a\0b", 3), 0);
    cr_expect_eq(json_string_length(json_object_get(o, "c")), 1);
    json_decref(o);
    char *got = text("a{c=%c}b", 0);
    cr_expect_str_eq(got, "a");
    free(got);
}

Test(log, json_names_at_most_16_fields)
{
    json_t *o = json("many",
                     "{a=%d}{b=%d}{c=%d}{d=%d}{e=%d}{f=%d}{g=%d}{h=%d}{i=%d}{j=%d}{k=%d}{l=%d}"
                     "{m=%d}{n=%d}{o=%d}{p=%d}{q=%d}",
                     1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8);
    cr_expect_str_eq(json_string_value(json_object_get(o, "msg")), "12345678912345678");
    cr_expect_eq(json_object_size(o), 4 + 16);
    cr_expect_eq(json_integer_value(json_object_get(o, "p")), 7);
    cr_expect_null(json_object_get(o, "q"));
    json_decref(o);
}

/* ---- Redis errors ----------------------------------------------------------- */

Test(log, redis_errors_lose_the_arguments_they_repeat)
{
    static const struct {
        const char *err;
        const char *want;
    } CASES[] = {
        {"ERR unknown command 'AUTH', with args beginning with: 'default' 'secret' ",
         "ERR unknown command 'AUTH'"},
        {"-ERR unknown command `AUTH`, with args beginning with: `pw`, ",
         "-ERR unknown command `AUTH`"},
        {"WRONGPASS invalid username-password pair or user is disabled.",
         "WRONGPASS invalid username-password pair or user is disabled."},
        {"", ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        size_t n = log_redis_error_len(CASES[i].err, strlen(CASES[i].err));
        cr_expect_eq(n, strlen(CASES[i].want), "%s", CASES[i].err);
        cr_expect_eq(strncmp(CASES[i].err, CASES[i].want, n), 0, "%s", CASES[i].err);
    }
}

/* ---- rate limiting ------------------------------------------------------------ */

Test(log, limit_passes_once_per_second_and_counts_the_rest)
{
    struct log_limit lim = {0};
    cr_assert(log_limit_pass(&lim, LOG_DEBUG), "the first message passes");
    cr_assert_not(log_limit_pass(&lim, LOG_DEBUG), "a second one within the second is dropped");
    cr_assert_not(log_limit_pass(&lim, LOG_DEBUG));
    cr_assert_eq(lim.suppressed, 2);
    lim.second -= 1; /* as if a second had passed */
    cr_assert(log_limit_pass(&lim, LOG_DEBUG), "passes again in a new second");
    cr_assert_eq(lim.suppressed, 0, "the dropped count is reported and reset");
}

/* The count of dropped messages is an event of its own, on stderr. */
Test(log, suppressed_messages_are_an_event_with_their_count)
{
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    cr_assert(saved >= 0 && dup2(fileno(tmp), 2) == 2);
    log_format = LOG_JSON;
    struct log_limit lim = {1, 3}; /* 3 dropped in second 1 of the monotonic clock */
    cr_assert(log_limit_pass(&lim, LOG_WARN));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char line[512] = "";
    rewind(tmp);
    cr_assert_not_null(fgets(line, sizeof(line), tmp));
    fclose(tmp);
    json_t *o = json_loads(line, 0, NULL);
    cr_assert_not_null(o, "not JSON: %s", line);
    cr_expect_str_eq(json_string_value(json_object_get(o, "event")), "log_suppressed");
    cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(o, "msg")),
                     "(3 similar messages suppressed)");
    cr_expect_eq(json_integer_value(json_object_get(o, "count")), 3);
    json_decref(o);
}
