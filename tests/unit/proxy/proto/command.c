/* Unit tests for proxy/proto/command.c: what the table works out per command. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/command.h"

static struct command_table *table;

/* The table a proxy in front of Redis 7.0 would have. */
static void setup(void)
{
    table = command_table_create();
    cr_assert(table != NULL && command_table_add_builtin(table) > 0);
    cr_assert_eq(command_table_add_proxy(table), 0);
}

static void teardown(void)
{
    command_table_destroy(&table);
}

TestSuite(command, .init = setup, .fini = teardown);

/* A request given in inline form, encoded to multibulk (the caller frees
 * it) and scanned into *req. */
static char *scan_line(const char *line, struct resp_request *req)
{
    size_t len;
    int64_t argc;
    const char *err;
    char *mb = resp_inline_encode(line, strlen(line), &len, &argc, &err);
    cr_assert_not_null(mb, "encode %s", line);
    struct resp_scanner s;
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, mb, len, req), RESP_OK);
    return mb;
}

/* The kind of a request given in inline form. */
static command_kind_e kind_of(const char *line)
{
    struct resp_request req;
    char *mb = scan_line(line, &req);
    command_kind_e kind = command_kind(command_lookup_request(table, mb, &req), mb, &req);
    free(mb);
    return kind;
}

struct cmd_case {
    const char *line; /* inline form, encoded to multibulk for the test */
    command_kind_e kind;
};

static const struct cmd_case CASES[] = {
    {"GET k", COMMAND_SHARED},
    {"set k v", COMMAND_SHARED},
    {"UNKNOWNCOMMAND x", COMMAND_SHARED},
    {"averyveryveryverylongcommandname x", COMMAND_SHARED},
    {"SELECT 3", COMMAND_STICKY},
    {"select 0", COMMAND_STICKY},
    {"AUTH secret", COMMAND_STICKY},
    {"READONLY", COMMAND_STICKY},
    {"HELLO", COMMAND_SHARED},
    {"HELLO 2", COMMAND_STICKY},
    {"HELLO 3", COMMAND_STICKY},
    {"HELLO 2 SETNAME app", COMMAND_STICKY},
    {"CLIENT SETNAME app", COMMAND_STICKY},
    {"client setname app", COMMAND_STICKY},
    {"CLIENT ID", COMMAND_STICKY},
    {"CLIENT TRACKING on", COMMAND_STICKY},
    {"CLIENT REPLY OFF", COMMAND_STREAM},
    {"CLIENT GETNAME", COMMAND_SHARED},
    {"CLIENT LIST", COMMAND_SHARED},
    {"CLIENT", COMMAND_SHARED},
    {"SUBSCRIBE a b", COMMAND_STREAM},
    {"PSUBSCRIBE a*", COMMAND_STREAM},
    {"SSUBSCRIBE a", COMMAND_STREAM},
    {"UNSUBSCRIBE", COMMAND_STREAM},
    {"MONITOR", COMMAND_STREAM},
    {"BLPOP q 0", COMMAND_BLOCKING},
    {"BZPOPMIN z 1", COMMAND_BLOCKING},
    {"BLMOVE a b LEFT RIGHT 0", COMMAND_BLOCKING},
    {"WAIT 1 0", COMMAND_BLOCKING},
    {"XREAD COUNT 1 BLOCK 0 STREAMS s $", COMMAND_BLOCKING},
    {"XREAD COUNT 1 STREAMS s 0", COMMAND_SHARED},
    {"XREAD STREAMS block 0", COMMAND_SHARED},
    {"XREADGROUP GROUP g c COUNT 1 BLOCK 10 STREAMS s >", COMMAND_BLOCKING},
    {"XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s >", COMMAND_SHARED},
    {"MULTI", COMMAND_MULTI},
    {"EXEC", COMMAND_EXEC},
    {"DISCARD", COMMAND_EXEC},
    {"WATCH a b", COMMAND_WATCH},
    {"UNWATCH", COMMAND_UNWATCH},
    {"QUIT", COMMAND_QUIT},
    {"RESET", COMMAND_RESET},
};

Test(command, kind_table)
{
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++)
        cr_expect_eq(kind_of(CASES[i].line), CASES[i].kind, "%s: got %d, want %d", CASES[i].line,
                     kind_of(CASES[i].line), CASES[i].kind);
}

/* Names of every length are found in any case, and only then: the bytes next
 * to the letters ('@' '[' '`' '{' '_' DEL and bytes over 0x7f) are not folded,
 * in the first 8 bytes (compared as one word) and past them. */
Test(command, lookup_folds_letters_only)
{
    static const char *const names[] = {"a@b",
                                        "a`b",
                                        "a[b",
                                        "a{b",
                                        "my_cmd",
                                        "my\x7f"
                                        "cmd",
                                        "x\xc1y",
                                        "x\xe1y",
                                        "q",
                                        "zz",
                                        "abcde",
                                        "abcdefg",
                                        "abcdefgh",
                                        "long_name@with[more]"};
    size_t n = sizeof(names) / sizeof(names[0]);
    for (size_t i = 0; i < n; i++) {
        struct command cmd = {.arity = -1};
        strcpy(cmd.name, names[i]);
        cr_assert_eq(command_table_add(table, &cmd), 0);
    }
    for (size_t i = 0; i < n; i++) {
        const struct command *c = command_lookup(table, names[i], strlen(names[i]));
        cr_expect(c != NULL && strcmp(c->name, names[i]) == 0, "%s", names[i]);
    }
    static const char *const upper[] = {"GET", "gEt", "My_Cmd", "A@B",     "LONG_NAME@WITH[MORE]",
                                        "Q",   "zZ",  "ABCDE",  "ABCDEFG", "ABCDEFGH"};
    for (size_t i = 0; i < sizeof(upper) / sizeof(upper[0]); i++)
        cr_expect_not_null(command_lookup(table, upper[i], strlen(upper[i])), "%s", upper[i]);
    static const char *const absent[] = {
        "ge",    "gett",    "GET\x80",  "my cmd", "long_name@with[more", "long_name@with{more]",
        "abcdf", "abcdefh", "abcdefgi", "z"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        cr_expect_null(command_lookup(table, absent[i], strlen(absent[i])), "%s", absent[i]);
    char huge[COMMAND_NAME_MAX + 8];
    memset(huge, 'a', sizeof(huge));
    cr_expect_null(command_lookup(table, huge, sizeof(huge)));
}

Test(command, xread_block_beyond_kept_views)
{
    /* BLOCK as the 10th argument: found by walking the frame, not only the kept views. */
    cr_expect_eq(kind_of("XREADGROUP GROUP g c COUNT 1 NOACK NOACK NOACK BLOCK 5 STREAMS s >"),
                 COMMAND_BLOCKING);
}

/* Commands newer than the table are routed by what the proxy knows of them. */
Test(command, proxy_entries_fill_what_the_table_lacks)
{
    cr_expect_eq(kind_of("WAITAOF 1 1 0"), COMMAND_BLOCKING);
    cr_expect_eq(kind_of("CLIENT NO-TOUCH on"), COMMAND_STICKY);
    cr_expect_eq(kind_of("NEARCACHE STATS"), COMMAND_NEARCACHE);
    const struct command *get = command_lookup(table, "get", 3);
    cr_expect_gt(get->nspecs, 0, "an entry Redis gave is not replaced");
}

Test(command, traits_and_classes)
{
    static const struct {
        const char *name;
        unsigned classes;
        unsigned traits;
    } WANT[] = {
        {"get", COMMAND_CLASS_READ, COMMAND_CACHEABLE},
        {"mget", COMMAND_CLASS_READ, COMMAND_CACHEABLE | COMMAND_SPLIT},
        {"hgetall", COMMAND_CLASS_READ, COMMAND_CACHEABLE},
        {"ttl", COMMAND_CLASS_READ, 0},
        {"randomkey", COMMAND_CLASS_READ, 0},
        {"set", COMMAND_CLASS_WRITE, 0},
        {"eval", COMMAND_CLASS_WRITE, COMMAND_FLUSHES},
        {"flushall", COMMAND_CLASS_WRITE, COMMAND_FLUSHES},
        {"swapdb", COMMAND_CLASS_WRITE, COMMAND_FLUSHES},
        {"config|set", COMMAND_CLASS_ADMIN, 0},
    };
    for (size_t i = 0; i < sizeof(WANT) / sizeof(WANT[0]); i++) {
        const struct command *c = command_lookup(table, WANT[i].name, strlen(WANT[i].name));
        cr_assert_not_null(c, "%s", WANT[i].name);
        cr_expect_eq(c->classes, WANT[i].classes, "%s: classes %u", WANT[i].name, c->classes);
        cr_expect_eq(c->traits, WANT[i].traits, "%s: traits %u", WANT[i].name, c->traits);
    }
}

/* A cacheable name on a command that writes, or one not flagged read-only,
 * is not cached: the flags Redis gives win over the name. */
Test(command, cacheable_needs_a_read_only_command)
{
    struct command get = {.name = "GET", .arity = 2, .flags = COMMAND_FLAG_WRITE};
    cr_assert_eq(command_table_add(table, &get), 0);
    const struct command *c = command_lookup(table, "get", 3);
    cr_expect_eq(c->traits & COMMAND_CACHEABLE, 0);
    cr_expect_eq(c->classes, COMMAND_CLASS_WRITE);
}

/* A Redis whose COMMAND lists no subcommands (6.x) still has CLIENT REPLY,
 * SETNAME and TRACKING routed by what they do. */
Test(command, client_subcommands_known_without_subcommands_from_redis)
{
    command_table_destroy(&table);
    table = command_table_create();
    cr_assert_not_null(table);
    struct command client = {.name = "client", .arity = -2, .flags = COMMAND_FLAG_ADMIN};
    cr_assert_eq(command_table_add(table, &client), 0);
    cr_assert_eq(command_table_add_proxy(table), 0);
    cr_expect_eq(kind_of("CLIENT REPLY OFF"), COMMAND_STREAM);
    cr_expect_eq(kind_of("CLIENT TRACKING on"), COMMAND_STICKY);
    cr_expect_eq(kind_of("CLIENT LIST"), COMMAND_SHARED);
}

/* The entry command_lookup_memo finds for line (inline form) with memo. */
static const struct command *memo_lookup(const struct command_table *t, struct command_memo *memo,
                                         const char *line)
{
    struct resp_request req;
    char *mb = scan_line(line, &req);
    const struct command *cmd = command_lookup_memo(t, memo, mb, &req);
    cr_assert_eq(cmd, command_lookup_request(t, mb, &req), "%s: the memo's entry differs", line);
    free(mb);
    return cmd;
}

Test(command, memo_answers_as_the_table)
{
    static const char *const LINES[] = {"GET k",
                                        "GET k",
                                        "get k",
                                        "SET k v",
                                        "GET k",
                                        "G k",
                                        "GE k",
                                        "GETS k",
                                        "GETSET k v",
                                        "nosuchcmd",
                                        "nosuchcmd",
                                        "CLIENT ID",
                                        "CLIENT INFO",
                                        "CLIENT ID",
                                        "OBJECT FREQ k",
                                        "OBJECT ENCODING k",
                                        "averyveryverylongname",
                                        "SETRANGE k 0 v",
                                        "SETRANGX k",
                                        "GET k"};
    struct command_memo memo = {0};
    for (size_t i = 0; i < sizeof(LINES) / sizeof(LINES[0]); i++)
        memo_lookup(table, &memo, LINES[i]);
    cr_assert_str_eq(memo_lookup(table, &memo, "GET k")->name, "get");
    /* another table: not answered from the first one's memo */
    struct command_table *other = command_table_create();
    cr_assert_not_null(other);
    cr_assert_null(memo_lookup(other, &memo, "GET k"));
    cr_assert_str_eq(memo_lookup(table, &memo, "GET k")->name, "get");
    command_table_destroy(&other);
}
