/* Unit tests for proxy/cmd.c: which commands hold connection state. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/cmd.h"

struct cmd_case {
    const char *line; /* inline form, encoded to multibulk for the test */
    cmd_kind_e kind;
};

static const struct cmd_case CASES[] = {
    {"GET k", CMD_SHARED},
    {"set k v", CMD_SHARED},
    {"UNKNOWNCOMMAND x", CMD_SHARED},
    {"averyveryveryverylongcommandname x", CMD_SHARED},
    {"SELECT 3", CMD_STICKY},
    {"select 0", CMD_STICKY},
    {"AUTH secret", CMD_STICKY},
    {"READONLY", CMD_STICKY},
    {"HELLO", CMD_SHARED},
    {"HELLO 2", CMD_SHARED},
    {"HELLO 3", CMD_STICKY},
    {"HELLO 2 SETNAME app", CMD_STICKY},
    {"CLIENT SETNAME app", CMD_STICKY},
    {"client setname app", CMD_STICKY},
    {"CLIENT ID", CMD_STICKY},
    {"CLIENT TRACKING on", CMD_STICKY},
    {"CLIENT REPLY OFF", CMD_STREAM},
    {"CLIENT GETNAME", CMD_SHARED},
    {"CLIENT LIST", CMD_SHARED},
    {"CLIENT", CMD_SHARED},
    {"SUBSCRIBE a b", CMD_STREAM},
    {"PSUBSCRIBE a*", CMD_STREAM},
    {"SSUBSCRIBE a", CMD_STREAM},
    {"UNSUBSCRIBE", CMD_STREAM},
    {"MONITOR", CMD_STREAM},
    {"BLPOP q 0", CMD_BLOCKING},
    {"BZPOPMIN z 1", CMD_BLOCKING},
    {"BLMOVE a b LEFT RIGHT 0", CMD_BLOCKING},
    {"WAIT 1 0", CMD_BLOCKING},
    {"XREAD COUNT 1 BLOCK 0 STREAMS s $", CMD_BLOCKING},
    {"XREAD COUNT 1 STREAMS s 0", CMD_SHARED},
    {"XREAD STREAMS block 0", CMD_SHARED},
    {"XREADGROUP GROUP g c COUNT 1 BLOCK 10 STREAMS s >", CMD_BLOCKING},
    {"XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s >", CMD_SHARED},
    {"MULTI", CMD_MULTI},
    {"EXEC", CMD_EXEC},
    {"DISCARD", CMD_EXEC},
    {"WATCH a b", CMD_WATCH},
    {"UNWATCH", CMD_UNWATCH},
    {"QUIT", CMD_QUIT},
    {"RESET", CMD_RESET},
};

Test(cmd, classify_table)
{
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        size_t len;
        int64_t argc;
        const char *err;
        char *mb = resp_inline_encode(CASES[i].line, strlen(CASES[i].line), &len, &argc, &err);
        cr_assert_not_null(mb, "encode %s", CASES[i].line);
        struct resp_scanner s;
        struct resp_request req;
        resp_scanner_reset(&s);
        cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, mb, len, &req), RESP_OK);
        cr_expect_eq(cmd_classify(mb, &req), CASES[i].kind, "%s: got %d, want %d", CASES[i].line,
                     cmd_classify(mb, &req), CASES[i].kind);
        free(mb);
    }
}

Test(cmd, xread_block_beyond_kept_views)
{
    /* BLOCK as the 10th argument: found by walking the frame, not only the kept views. */
    const char *line = "XREADGROUP GROUP g c COUNT 1 NOACK NOACK NOACK BLOCK 5 STREAMS s >";
    size_t len;
    int64_t argc;
    const char *err;
    char *mb = resp_inline_encode(line, strlen(line), &len, &argc, &err);
    struct resp_scanner s;
    struct resp_request req;
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, mb, len, &req), RESP_OK);
    cr_expect_eq(cmd_classify(mb, &req), CMD_BLOCKING);
    free(mb);
}
