/* tests/unit/keys.c - the key spec interpreter and the built-in table.
 *
 * Requests are written as text (space-separated words, \xHH escapes via
 * resp_inline_encode), encoded as multibulk, scanned, and their keys compared
 * with the expected list: "a b" for keys a and b, "" for none, "ERR" when
 * keys_each must give up (-1). Expected keys of the built-in cases were
 * checked with COMMAND GETKEYS on redis-server 7.0.15.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/command.h"
#include "proxy/proto/request.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

struct collected {
    const char *frame;
    char text[1024]; /* keys, space-separated, escaped */
    unsigned flags[64];
    int n;
};

static void collect(void *arg, struct resp_view key, unsigned flags)
{
    struct collected *c = arg;
    size_t len = strlen(c->text);

    if (c->n > 0 && len + 1 < sizeof(c->text))
        c->text[len++] = ' ';
    for (size_t i = 0; i < key.len && len + 5 < sizeof(c->text); i++) {
        unsigned char ch = (unsigned char)c->frame[key.off + i];
        if (ch > ' ' && ch < 127)
            c->text[len++] = (char)ch;
        else
            len += (size_t)snprintf(c->text + len, 5, "\\x%02x", ch);
    }
    c->text[len] = '\0';
    if (c->n < (int)LEN(c->flags))
        c->flags[c->n] = flags;
    c->n++;
}

/* The request of an inline line, as a heap multibulk frame (caller frees). */
static char *encode(const char *line, struct resp_request *req)
{
    size_t len;
    int64_t argc;
    const char *err = NULL;
    struct resp_scanner s = {0};
    char *frame = resp_inline_encode(line, strlen(line), &len, &argc, &err);

    cr_assert_not_null(frame, "cannot encode %s", line);
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, frame, len, req), RESP_OK);
    return frame;
}

/* Runs keys_each on line with cmd (or the table's entry) and checks want. */
static void check_keys(const struct command_table *t, const struct command *cmd, const char *line,
                       const char *want, struct collected *c)
{
    struct resp_request req;
    char *frame = encode(line, &req);
    int n;

    if (cmd == NULL)
        cmd = command_lookup_request(t, frame, &req);
    cr_assert_not_null(cmd, "no entry for %s", line);
    memset(c, 0, sizeof(*c));
    c->frame = frame;
    n = keys_each(cmd, frame, &req, collect, c);
    if (strcmp(want, "ERR") == 0) {
        cr_expect_eq(n, -1, "%s: want -1, got %d (%s)", line, n, c->text);
        cr_expect_eq(c->n, 0, "%s: fn called on failure", line);
    } else {
        cr_expect_eq(n, c->n, "%s: returned %d, reported %d", line, n, c->n);
        cr_expect_str_eq(c->text, want, "%s: want [%s], got [%s] (%d)", line, want, c->text, n);
    }
    free(frame);
}

/* ------------------------------------------------------------------------ */
/* The interpreter on hand-written specs                                    */
/* ------------------------------------------------------------------------ */

#define RANGE(last, step, lim)                                                                     \
    .fk = KEYS_FK_RANGE, .lastkey = (last), .keystep = (step), .limit = (lim)
#define KEYNUM(idx, first, step)                                                                   \
    .fk = KEYS_FK_KEYNUM, .keynumidx = (idx), .firstkey = (first), .keystep = (step)
#define INDEX(i)      .bs = KEYS_BS_INDEX, .index = (i)
#define KEYWORD(w, s) .bs = KEYS_BS_KEYWORD, .keyword = w, .startfrom = (s)
#define CMD(n, a, f, ns, ...)                                                                      \
    {                                                                                              \
        .name = n, .arity = (a), .flags = (f), .nspecs = (ns), .specs = { __VA_ARGS__ }            \
    }
#define SPEC(f, ...)                                                                               \
    {                                                                                              \
        .flags = (f), __VA_ARGS__                                                                  \
    }

static const struct command SPEC_CMDS[] = {
    CMD("one", -2, 0, 1, SPEC(KEYS_KEY_RW, INDEX(1), RANGE(0, 1, 0))),
    CMD("pairs", -3, 0, 1, SPEC(KEYS_KEY_OW, INDEX(1), RANGE(-1, 2, 0))),
    CMD("two", 3, 0, 1, SPEC(KEYS_KEY_RO, INDEX(1), RANGE(1, 1, 0))),
    CMD("fwd", -2, 0, 2, SPEC(KEYS_KEY_RO, INDEX(1), RANGE(0, 1, 0)),
        SPEC(KEYS_KEY_OW, KEYWORD("STORE", 2), RANGE(0, 1, 0))),
    CMD("back", -2, 0, 1, SPEC(KEYS_KEY_RW, KEYWORD("KEYS", -2), RANGE(-1, 1, 0))),
    CMD("num", -2, 0, 1, SPEC(KEYS_KEY_RO, INDEX(1), KEYNUM(0, 1, 1))),
    CMD("numstep", -2, 0, 1, SPEC(KEYS_KEY_RO, INDEX(1), KEYNUM(0, 1, 2))),
    CMD("streams", -2, 0, 1, SPEC(KEYS_KEY_RO, KEYWORD("STREAMS", 1), RANGE(-1, 1, 2))),
    CMD("far", -2, 0, 1, SPEC(KEYS_KEY_RW, INDEX(3), RANGE(0, 1, 0))),
    CMD("notkey", -2, 0, 2, SPEC(KEYS_KEY_NOT_KEY, INDEX(1), RANGE(0, 1, 0)),
        SPEC(0, INDEX(2), RANGE(0, 1, 0))),
    CMD("incomplete", -2, 0, 1, SPEC(KEYS_KEY_INCOMPLETE, INDEX(1), RANGE(0, 1, 0))),
    CMD("unknown", -2, 0, 2, SPEC(KEYS_KEY_RO, INDEX(1), RANGE(0, 1, 0)),
        SPEC(KEYS_KEY_RO, .bs = KEYS_BS_UNKNOWN)),
    {.name = "nospecs", .arity = -1, .flags = COMMAND_FLAG_WRITE},
};

static const struct {
    const char *line;
    const char *want;
} SPEC_CASES[] = {
    {"one a b c", "a"},
    {"ONE a", "a"},
    {"one", "ERR"}, /* arity */
    {"pairs a 1 b 2", "a b"},
    {"pairs a 1 b", "a b"}, /* last = argc - 1: b is in range, its value missing */
    {"two a b", "a b"},
    {"two a", "ERR"},
    {"two a b c", "ERR"},
    {"fwd k", "k"},
    {"fwd k x store d", "k d"},
    {"fwd k STORE d STORE e", "k d"},      /* forward: the first match */
    {"fwd k x y store", "k"},              /* the last argument is never searched */
    {"fwd store d", "store"},              /* startfrom 2: argument 1 is not searched */
    {"fwd k \"store\\x00junk\" d", "k d"}, /* strcasecmp stops at the NUL, as in Redis */
    {"fwd k storex d", "k"},
    {"back a keys x y", "x y"},
    {"back a keys x keys y", "y"}, /* backward: the last match */
    {"back keys a", ""},           /* argument 1 is never searched */
    {"back a keys", ""},
    {"back a b keys", ""},
    {"num 2 a b c", "a b"},
    {"num 3 a b", "ERR"}, /* numkeys past the end */
    {"num 0 a", "ERR"},   /* last < first */
    {"num -1 a", "ERR"},  /* negative */
    {"num x a", "ERR"},   /* not a number */
    {"num 01 a", "ERR"},  /* string2ll: no leading zero */
    {"num +1 a", "ERR"},  /* nor plus sign */
    {"num \" 1\" a", "ERR"},
    {"num 99999999999999999999 a", "ERR"},
    {"numstep 2 a x b y", "a"}, /* Redis: last = first + numkeys - 1 */
    {"numstep 4 a x b y", "a b"},
    {"streams a b 0 0", ""}, /* no STREAMS: the spec finds no keys */
    {"streams count 1 streams a b 0 0", "a b"},
    {"streams streams a 0", "a"},
    {"streams streams a b 0", "a"}, /* odd: (argc - first) / 2 - 1 */
    {"far a", "ERR"},               /* first >= argc */
    {"far a b c", "c"},
    {"notkey a b", "b"},
    {"incomplete a", "ERR"},
    {"unknown a", "ERR"},
    {"nospecs", ""},
};

Test(keys, spec_interpreter)
{
    struct command_table *t = command_table_create();
    struct collected c;

    cr_assert_not_null(t);
    for (size_t i = 0; i < LEN(SPEC_CMDS); i++)
        cr_assert_eq(command_table_add(t, &SPEC_CMDS[i]), 0, "%s", SPEC_CMDS[i].name);
    for (size_t i = 0; i < LEN(SPEC_CASES); i++)
        check_keys(t, NULL, SPEC_CASES[i].line, SPEC_CASES[i].want, &c);
    command_table_destroy(&t);
    cr_assert_null(t);
}

Test(keys, flags_follow_specs)
{
    struct command_table *t = command_table_create();
    struct collected c;

    command_table_add(t, &SPEC_CMDS[3]);
    check_keys(t, NULL, "fwd k store d", "k d", &c);
    cr_expect_eq(c.flags[0], KEYS_KEY_RO);
    cr_expect_eq(c.flags[1], KEYS_KEY_OW);
    command_table_destroy(&t);
}

Test(keys, binary_keys)
{
    struct command_table *t = command_table_create();
    struct collected c;

    command_table_add(t, &SPEC_CMDS[1]);
    check_keys(t, NULL, "pairs \"a\\r\\nb\\x00c\" v \"\" w", "a\\x0d\\x0ab\\x00c ", &c);
    cr_expect_eq(c.n, 2);
    command_table_destroy(&t);
}

Test(keys, invalid_commands_are_refused)
{
    struct command_table *t = command_table_create();
    struct command bad[] = {
        {.name = "", .arity = 1},
        {.name = "x", .arity = 1, .nspecs = KEYS_SPECS_MAX + 1},
        {.name = "x", .arity = 1, .nspecs = -1},
        CMD("x", 1, 0, 1, SPEC(0, INDEX(1), RANGE(0, 0, 0))),  /* keystep 0 */
        CMD("x", 1, 0, 1, SPEC(0, INDEX(1), RANGE(-2, 1, 2))), /* limit needs lastkey -1 */
        CMD("x", 1, 0, 1, SPEC(0, INDEX(1), RANGE(-1, 1, -1))),
        CMD("x", 1, 0, 1, SPEC(0, INDEX(-1), RANGE(0, 1, 0))),
        CMD("x", 1, 0, 1, SPEC(0, KEYWORD("", 1), RANGE(0, 1, 0))),
        CMD("x", 1, 0, 1, SPEC(0, INDEX(1), KEYNUM(0, 1, 0))),
    };

    for (size_t i = 0; i < LEN(bad); i++)
        cr_expect_eq(command_table_add(t, &bad[i]), -1, "case %zu", i);
    cr_expect_eq(command_table_count(t), 0);
    command_table_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* The built-in table                                                       */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *line;
    const char *want;
} BUILTIN_CASES[] = {
    {"SET k v", "k"},
    {"set k v GET", "k"},
    {"GET k", "k"},
    {"GET", "ERR"},
    {"GET a b", "ERR"},
    {"MSET a 1 b 2", "a b"},
    {"MSETNX a 1 b 2 c 3", "a b c"},
    {"MGET a b c", "a b c"},
    {"DEL a b c", "a b c"},
    {"UNLINK a", "a"},
    {"EXISTS a b", "a b"},
    {"HGET h f", "h"},
    {"HMGET h f g", "h"},
    {"HSET h f v g w", "h"},
    {"HGETALL h", "h"},
    {"LRANGE l 0 -1", "l"},
    {"SMEMBERS s", "s"},
    {"ZRANGE z 0 -1", "z"},
    {"ZRANGESTORE d z 0 -1", "d z"},
    {"ZSCORE z m", "z"},
    {"TYPE k", "k"},
    {"STRLEN k", "k"},
    {"GETRANGE k 0 1", "k"},
    {"INCR k", "k"},
    {"EXPIRE k 10", "k"},
    {"EVAL s 2 a b x y", "a b"},
    {"EVAL s 0", ""},
    {"EVAL s 0 x", ""},
    {"EVAL s 3 a", ""}, /* too many: genericGetKeys says none, EVAL fails */
    {"EVAL s x a", ""}, /* atoi("x") == 0 */
    {"EVAL s 01 a", "ERR"},
    {"EVALSHA sha 1 a", "a"},
    {"EVAL_RO s 1 a", "a"},
    {"EVALSHA_RO sha 1 a b", "a"},
    {"FCALL f 2 a b x", "a b"},
    {"FCALL_RO f 1 a", "a"},
    {"ZUNIONSTORE d 2 a b WEIGHTS 1 2", "d a b"},
    {"ZINTERSTORE d 1 a", "d a"},
    {"ZDIFFSTORE d 2 a b", "d a b"},
    {"ZUNION 2 a b", "a b"},
    {"SINTERCARD 2 a b LIMIT 1", "a b"},
    {"SUNIONSTORE d a b", "d a b"},
    {"BITOP AND d a b", "d a b"},
    {"LMPOP 2 a b LEFT", "a b"},
    {"BLMPOP 0 2 a b LEFT", "a b"},
    {"BZMPOP 0 1 a MIN", "a"},
    {"BLPOP a b 0", "a b"},
    {"XREAD COUNT 2 STREAMS a b 0 0", "a b"},
    {"XREAD BLOCK 0 STREAMS a $", "a"},
    {"XREADGROUP GROUP g c COUNT 1 STREAMS a b > >", "a b"},
    {"XADD s * f v", "s"},
    {"XGROUP CREATE s g $", "s"},
    {"xgroup destroy s g", "s"},
    {"XINFO STREAM s", "s"},
    {"OBJECT ENCODING k", "k"},
    {"SORT k", "k"},
    {"SORT k STORE d", "k d"},
    {"SORT k BY w_* GET # LIMIT 0 10 STORE d", "k d"},
    {"SORT k STORE d STORE e", "k e"},
    {"SORT k LIMIT store 1 ALPHA", "k"},
    {"SORT_RO k BY w_*", "k"},
    {"LMOVE a b LEFT RIGHT", "a b"},
    {"BLMOVE a b LEFT RIGHT 0", "a b"},
    {"RPOPLPUSH a b", "a b"},
    {"SMOVE a b m", "a b"},
    {"RENAME a b", "a b"},
    {"RENAMENX a b", "a b"},
    {"COPY a b REPLACE", "a b"},
    {"GEORADIUS k 0 0 1 km STORE d", "k d"},
    {"GEORADIUS k 0 0 1 km STOREDIST d", "k d"},
    {"GEORADIUS k 0 0 1 km", "k"},
    {"GEORADIUSBYMEMBER k m 1 km STORE d", "k d"},
    {"GEOSEARCHSTORE d k FROMMEMBER m BYRADIUS 1 km", "d k"},
    {"MIGRATE h 6379 k 0 5000", "k"},
    {"MIGRATE h 6379 k 0 5000 COPY REPLACE", "k"},
    {"MIGRATE h 6379 \"\" 0 5000 KEYS a b", "a b"},
    {"MIGRATE h 6379 \"\" 0 5000 AUTH keys KEYS a", "a"},
    {"MIGRATE h 6379 k 0 5000 KEYS a b", ""},
    {"RESTORE k 0 payload", "k"},
    {"PFMERGE d a b", "d a b"},
    {"WATCH a b", "a b"},
    {"FLUSHDB", ""},
    {"FLUSHALL ASYNC", ""},
    {"SWAPDB 0 1", ""},
    {"PUBLISH ch m", ""},
    {"SPUBLISH ch m", ""},
    {"PING", ""},
};

Test(keys, builtin_requests)
{
    struct command_table *t = command_table_create();
    struct collected c;

    cr_assert_eq(command_table_add_builtin(t), (int)command_table_count(t));
    for (size_t i = 0; i < LEN(BUILTIN_CASES); i++)
        check_keys(t, NULL, BUILTIN_CASES[i].line, BUILTIN_CASES[i].want, &c);
    command_table_destroy(&t);
}

/* request_one_key, which finds a fixed key inline without the scratch,
 * agrees with request_keys on every case above and on wrong arities. */
Test(keys, one_key_agrees_with_request_keys)
{
    static const char *const MORE[] = {"GET",      "GET a b", "HGET h",        "GETRANGE k 0",
                                       "NOSUCH k", "MGET a",  "SET k v EX 10", "GETEX k PERSIST"};
    struct command_table *t = command_table_create();
    struct request_keys scratch = {0}, scratch2 = {0};
    int ones = 0;

    cr_assert_eq(command_table_add_builtin(t), (int)command_table_count(t));
    for (size_t i = 0; i < LEN(BUILTIN_CASES) + LEN(MORE); i++) {
        const char *line =
            i < LEN(BUILTIN_CASES) ? BUILTIN_CASES[i].line : MORE[i - LEN(BUILTIN_CASES)];
        struct resp_request req;
        char *frame = encode(line, &req);
        struct request r, r2;
        struct resp_view key = {0, 0};
        request_init(&r, t, frame, &req, &scratch);
        request_init(&r2, t, frame, &req, &scratch2);
        bool one = request_one_key(&r, &key);
        int n = request_keys(&r2);
        cr_expect_eq(one, n == 1, "%s: one key %d, request_keys %d", line, one, n);
        if (one && n == 1)
            cr_expect(key.off == scratch2.views[0].off && key.len == scratch2.views[0].len,
                      "%s: another key", line);
        cr_expect_eq(request_keys(&r), n, "%s: request_keys after it", line);
        ones += one;
        free(frame);
    }
    cr_expect_gt(ones, 20);
    request_keys_free(&scratch);
    request_keys_free(&scratch2);
    command_table_destroy(&t);
}

static const struct {
    const char *name;
    unsigned has;
    unsigned lacks;
} BUILTIN_FLAGS[] = {
    {"set", COMMAND_FLAG_WRITE, COMMAND_FLAG_READONLY},
    {"get", COMMAND_FLAG_READONLY, COMMAND_FLAG_WRITE},
    {"flushdb", COMMAND_FLAG_WRITE, COMMAND_FLAG_READONLY},
    {"swapdb", COMMAND_FLAG_WRITE, COMMAND_FLAG_READONLY},
    {"sort", COMMAND_FLAG_WRITE | COMMAND_FLAG_MOVABLEKEYS, COMMAND_FLAG_READONLY},
    {"sort_ro", COMMAND_FLAG_READONLY, COMMAND_FLAG_WRITE},
    {"eval", COMMAND_FLAG_NO_MANDATORY_KEYS | COMMAND_FLAG_MOVABLEKEYS, COMMAND_FLAG_READONLY},
    {"xread", COMMAND_FLAG_READONLY | COMMAND_FLAG_BLOCKING, COMMAND_FLAG_WRITE},
    {"xgroup", COMMAND_FLAG_CONTAINER, COMMAND_FLAG_WRITE},
    {"xgroup|create", COMMAND_FLAG_WRITE, COMMAND_FLAG_CONTAINER},
    {"ping", 0, COMMAND_FLAG_WRITE | COMMAND_FLAG_READONLY},
};

Test(keys, builtin_lookup_and_flags)
{
    struct command_table *t = command_table_create();
    const struct command *cmd;

    cr_assert_gt(command_table_add_builtin(t), 300);
    for (size_t i = 0; i < LEN(BUILTIN_FLAGS); i++) {
        cmd = command_lookup(t, BUILTIN_FLAGS[i].name, strlen(BUILTIN_FLAGS[i].name));
        cr_assert_not_null(cmd, "%s", BUILTIN_FLAGS[i].name);
        cr_expect_eq(cmd->flags & BUILTIN_FLAGS[i].has, BUILTIN_FLAGS[i].has, "%s", cmd->name);
        cr_expect_eq(cmd->flags & BUILTIN_FLAGS[i].lacks, 0, "%s", cmd->name);
    }
    cr_expect_not_null(command_lookup(t, "GeTrAnGe", 8));
    cr_expect_not_null(command_lookup(t, "getx", 3));
    cr_expect_null(command_lookup(t, "getx", 4));
    cr_expect_null(command_lookup(t, "ge", 2));
    cr_expect_null(command_lookup(t, "get\0", 4));
    cr_expect_null(command_lookup(t, "", 0));
    command_table_destroy(&t);
}

Test(keys, replace_and_grow)
{
    struct command_table *t = command_table_create();
    struct command cmd = {.arity = 2};

    for (int i = 0; i < 1000; i++) {
        snprintf(cmd.name, sizeof(cmd.name), "CMD%d", i);
        cr_assert_eq(command_table_add(t, &cmd), 0);
    }
    cmd.arity = 5;
    cr_assert_eq(command_table_add(t, &cmd), 0); /* CMD999 again */
    cr_expect_eq(command_table_count(t), 1000);
    cr_expect_eq(command_lookup(t, "cmd999", 6)->arity, 5);
    cr_expect_eq(command_lookup(t, "cmd0", 4)->arity, 2);
    cr_expect_str_eq(command_lookup(t, "CMD500", 6)->name, "cmd500");
    command_table_destroy(&t);
}

/* Thousands of keys: each one reached once by walking the frame. */
Test(keys, many_keys)
{
    struct command_table *t = command_table_create();
    struct resp_request req;
    struct resp_scanner s = {0};
    struct collected c = {0};
    char *frame = malloc(200000), *p = frame;
    const int n = 5000;
    const struct command *cmd;

    command_table_add_builtin(t);
    p += sprintf(p, "*%d\r\n$4\r\nMSET\r\n", 2 * n + 1);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "$%d\r\nk%d\r\n$1\r\nv\r\n",
                     i < 10     ? 2
                     : i < 100  ? 3
                     : i < 1000 ? 4
                                : 5,
                     i);
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, frame, (size_t)(p - frame), &req),
                 RESP_OK);
    cmd = command_lookup_request(t, frame, &req);
    c.frame = frame;
    cr_assert_eq(keys_each(cmd, frame, &req, collect, &c), n);
    cr_expect_eq(strncmp(c.text, "k0 k1 k2 k3", 11), 0);
    cr_expect_eq(c.n, n);
    free(frame);
    command_table_destroy(&t);
}
