/* Unit tests for proxy/mcp/mcp.c (and schema.c): the protocol alone, with a
 * fake tool table, table-driven. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mcp/mcp.h"

static int echo_calls;

static json_t *fake_echo(const void *env, const json_t *args, char *why, size_t len)
{
    (void)env;
    (void)why;
    (void)len;
    echo_calls++;
    return json_pack("{s:O}", "args", args);
}

static json_t *fake_fail(const void *env, const json_t *args, char *why, size_t len)
{
    (void)env;
    (void)args;
    snprintf(why, len, "it broke");
    return NULL;
}

static const struct mcp_tool TOOLS[] = {
    {"echo", "Echo", "Answers its arguments.",
     "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"minLength\":1,"
     "\"maxLength\":3},\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
     "\"b\":{\"type\":\"boolean\"}},\"required\":[\"s\"],\"additionalProperties\":false}",
     NULL, true, false, true, false, fake_echo},
    {"fail", "Fail", "Always fails.", "{\"type\":\"object\",\"properties\":{}}", NULL, true, false,
     true, false, fake_fail},
    {"wipe", "Wipe", "Destructive.", "{\"type\":\"object\",\"properties\":{}}", NULL, false, true,
     false, false, fake_echo},
};

/* One message through a fresh server; the answer parsed (NULL: none). */
static json_t *ask(const char *body, const struct mcp_request *req, unsigned *status)
{
    struct mcp *m = mcp_create(TOOLS, 3, "test", "1.0");
    cr_assert_not_null(m);
    char *text = mcp_handle(m, body, strlen(body), req, NULL, status);
    json_t *answer = text != NULL ? json_loads(text, 0, NULL) : NULL;
    cr_assert(text == NULL || answer != NULL, "not JSON: %s", text);
    free(text);
    mcp_destroy(&m);
    cr_assert_null(m);
    return answer;
}

static const struct mcp_request STDIO = {.http = false};

/* The error code of an answer, 0 for a result. */
static int code_of(const json_t *a)
{
    return (int)json_integer_value(json_object_get(json_object_get(a, "error"), "code"));
}

Test(mcp, error_codes)
{
    static const struct {
        const char *body;
        int code;
    } CASES[] = {
        {"{not json", -32700},
        {"", -32700},
        {"42", -32600},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", -32600},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", -32600},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", -32600},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", -32600},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}", -32601},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[]}", -32602},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}", -32602},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/list\"}", 0},
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
         -32600}, /* no batches by default */
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"id\":2}", -32700},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        unsigned status;
        json_t *a = ask(CASES[i].body, &STDIO, &status);
        cr_assert_not_null(a, "%s", CASES[i].body);
        cr_expect_eq(code_of(a), CASES[i].code, "%s: %d", CASES[i].body, code_of(a));
        json_decref(a);
    }
}

Test(mcp, tool_arguments)
{
    static const struct {
        const char *call;
        int code;        /* -32602, or 0 for a result */
        bool is_error;   /* the result's isError */
        const char *why; /* in the error message or the result's text */
    } CASES[] = {
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"ab\"}", 0, false, "ab"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"ab\",\"n\":10,\"b\":true}", 0, false, "10"},
        {"\"name\":\"echo\",\"arguments\":{}", -32602, false, "missing argument 's'"},
        {"\"name\":\"echo\"", -32602, false, "missing argument 's'"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":1}", -32602, false, "type string"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"\"}", -32602, false, "at least 1"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", 0, false, "s"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"abcd\"}", -32602, false, "at most 3"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"a\",\"n\":0}", -32602, false, "at least 1"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"a\",\"n\":11}", -32602, false, "at most 10"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"a\",\"n\":2.5}", -32602, false, "integer"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"a\",\"b\":1}", -32602, false, "boolean"},
        {"\"name\":\"echo\",\"arguments\":{\"s\":\"a\",\"x\":1}", -32602, false,
         "unknown argument"},
        {"\"name\":\"echo\",\"arguments\":[1]", -32602, false, "object"},
        {"\"arguments\":{}", -32602, false, "params.name"},
        {"\"name\":\"nope\"", -32602, false, "Unknown tool: nope"},
        {"\"name\":\"wipe\"", -32602, false, "Unknown tool: wipe"}, /* no token: absent */
        {"\"name\":\"fail\"", 0, true, "it broke"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{%s}}",
                 CASES[i].call);
        unsigned status;
        json_t *a = ask(body, &STDIO, &status);
        cr_assert_not_null(a);
        cr_expect_eq(code_of(a), CASES[i].code, "%s", body);
        const json_t *result = json_object_get(a, "result");
        const char *text =
            CASES[i].code != 0
                ? json_string_value(json_object_get(json_object_get(a, "error"), "message"))
                : json_string_value(json_object_get(
                      json_array_get(json_object_get(result, "content"), 0), "text"));
        cr_expect(text != NULL && strstr(text, CASES[i].why) != NULL, "%s: %s", body, text);
        if (CASES[i].code == 0)
            cr_expect_eq(json_is_true(json_object_get(result, "isError")), CASES[i].is_error, "%s",
                         body);
        json_decref(a);
    }
}

Test(mcp, tools_that_change_state_need_the_token)
{
    static const char LIST[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
    static const char WIPE[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"wipe\"}}";
    static const struct {
        bool token_set, authorized, listed;
        int code;
        bool ran;
    } CASES[] = {{false, false, false, -32602, false},
                 {true, false, true, 0, false},
                 {true, true, true, 0, true}};
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        struct mcp_request req = {.token_set = CASES[i].token_set,
                                  .authorized = CASES[i].authorized};
        unsigned status;
        json_t *a = ask(LIST, &req, &status);
        const json_t *tools = json_object_get(json_object_get(a, "result"), "tools");
        bool listed = false;
        size_t j;
        const json_t *t;
        json_array_foreach(tools, j, t) listed |=
            strcmp(json_string_value(json_object_get(t, "name")), "wipe") == 0;
        cr_expect_eq(listed, CASES[i].listed, "case %zu", i);
        json_decref(a);
        echo_calls = 0;
        a = ask(WIPE, &req, &status);
        cr_expect_eq(code_of(a), CASES[i].code, "case %zu", i);
        cr_expect_eq(echo_calls, CASES[i].ran ? 1 : 0, "case %zu", i);
        json_decref(a);
    }
}

Test(mcp, initialize_negotiates)
{
    static const struct {
        const char *asked, *answered;
    } CASES[] = {{"2025-11-25", "2025-11-25"}, {"2025-06-18", "2025-06-18"},
                 {"2025-03-26", "2025-03-26"}, {"2024-11-05", "2024-11-05"},
                 {"1999-01-01", "2025-11-25"}, {"2026-07-28", "2025-11-25"}};
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                 "{\"protocolVersion\":\"%s\",\"capabilities\":{}}}",
                 CASES[i].asked);
        unsigned status;
        json_t *a = ask(body, &STDIO, &status);
        const char *v =
            json_string_value(json_object_get(json_object_get(a, "result"), "protocolVersion"));
        cr_expect_str_eq(v, CASES[i].answered);
        json_decref(a);
    }
}

/* The stateless revision over HTTP: the headers and the body must agree
 * (MCP-Protocol-Version and _meta; Mcp-Method and the method; Mcp-Name and a
 * tools/call's name, as it is or in the base64 form). */
Test(mcp, modern_over_http)
{
    static const char BODY[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                               "\"name\":\"echo\",\"arguments\":{\"s\":\"x\"},"
                               "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"%s\"}}}";
    static const struct {
        const char *method, *version, *header, *method_header, *name_header;
        int code;
        unsigned status;
    } CASES[] = {
        {"server/discover", "2026-07-28", "2026-07-28", "server/discover", NULL, 0, 200},
        {"tools/list", "2026-07-28", "2026-07-28", "tools/list", NULL, 0, 200},
        {"tools/list", "2026-07-28", NULL, "tools/list", NULL, -32020, 400},
        {"tools/list", "2026-07-28", "2025-11-25", "tools/list", NULL, -32020, 400},
        {"tools/list", "2099-01-01", "2099-01-01", "tools/list", NULL, -32022, 400},
        {"nope", "2026-07-28", "2026-07-28", "nope", NULL, -32601, 404},
        {"tools/list", "2026-07-28", "2026-07-28", NULL, NULL, -32020, 400},
        {"tools/list", "2026-07-28", "2026-07-28", "tools/call", NULL, -32020, 400},
        {"tools/call", "2026-07-28", "2026-07-28", "tools/call", "echo", 0, 200},
        {"tools/call", "2026-07-28", "2026-07-28", "tools/call", "=?base64?ZWNobw==?=", 0, 200},
        {"tools/call", "2026-07-28", "2026-07-28", "tools/call", NULL, -32020, 400},
        {"tools/call", "2026-07-28", "2026-07-28", "tools/call", "fail", -32020, 400},
        {"tools/call", "2026-07-28", "2026-07-28", "tools/call", "=?base64?ZmFpbA==?=", -32020,
         400},
        {"tools/call", "2026-07-28", "2026-07-28", "tools/call", "=?base64?!!!?=", -32020, 400},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        char body[512];
        snprintf(body, sizeof(body), BODY, CASES[i].method, CASES[i].version);
        struct mcp_request req = {.http = true,
                                  .version_header = CASES[i].header,
                                  .method_header = CASES[i].method_header,
                                  .name_header = CASES[i].name_header};
        unsigned status;
        json_t *a = ask(body, &req, &status);
        cr_expect_eq(code_of(a), CASES[i].code, "case %zu", i);
        cr_expect_eq(status, CASES[i].status, "case %zu: %u", i, status);
        if (CASES[i].code == 0)
            cr_expect_str_eq(
                json_string_value(json_object_get(json_object_get(a, "result"), "resultType")),
                "complete");
        json_decref(a);
    }
}

Test(mcp, notifications_and_batches)
{
    static const char NOTE[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    static const char BATCH[] = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"},{}]";
    unsigned status;
    cr_expect_null(ask(NOTE, &STDIO, &status));
    cr_expect_eq(status, MCP_HTTP_ACCEPTED);
    struct mcp_request old = {.http = true, .version_header = "2025-03-26"};
    json_t *a = ask(BATCH, &old, &status);
    cr_assert(json_is_array(a));
    cr_expect_eq(json_array_size(a), 2); /* ping's result, the empty object's error */
    cr_expect_eq(code_of(json_array_get(a, 1)), -32600);
    json_decref(a);
    struct mcp_request newer = {.http = true, .version_header = "2025-06-18"};
    a = ask(BATCH, &newer, &status);
    cr_expect_eq(code_of(a), -32600);
    cr_expect_eq(status, MCP_HTTP_BAD_REQUEST);
    json_decref(a);
}

Test(mcp, bad_schema_refused)
{
    static const struct mcp_tool BAD[] = {
        {"x", "X", "x", "{not json", NULL, true, false, true, false, fake_echo}};
    cr_expect_null(mcp_create(BAD, 1, "test", "1.0"));
}
