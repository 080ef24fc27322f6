/* tests/fuzz/mcp.c - libFuzzer target for the MCP server's protocol.
 *
 * Input: one flags byte, then a message body. The flags choose what the
 * transport says of the message (HTTP or stdio, the MCP-Protocol-Version
 * header among the revisions and a bad one, the Mcp-Method and Mcp-Name
 * headers, a token set and presented); the body goes through mcp_handle
 * twice on one server (so a negotiated revision carries over), against
 * tools whose schemas use every type the checker knows. Every answer must be
 * JSON with "jsonrpc": "2.0", and a notification none; leaks and sanitizer
 * reports are the other checks.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mcp/mcp.h"
#include "tests/fuzz/fuzz.h"

/* mcp_tool_fn: answers its arguments, or fails when asked to. */
static json_t *echo(const void *env, const json_t *args, char *why, size_t len)
{
    (void)env;
    if (json_is_true(json_object_get(args, "fail"))) {
        snprintf(why, len, "asked to fail");
        return NULL;
    }
    return json_deep_copy(args);
}

static const struct mcp_tool TOOLS[] = {
    {"echo", "Echo", "Answers its arguments.",
     "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"minLength\":1,"
     "\"maxLength\":8},\"n\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":5},"
     "\"x\":{\"type\":\"number\",\"minimum\":0.5,\"maximum\":2.5},\"fail\":{\"type\":\"boolean\"},"
     "\"ops\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"items\":{\"type\":\"object\"}}},"
     "\"required\":[\"s\"],\"additionalProperties\":false}",
     NULL, true, false, true, false, echo},
    {"wipe", "Wipe", "Changes state.", "{\"type\":\"object\",\"properties\":{}}", NULL, false, true,
     false, false, echo},
};

static const char *const VERSIONS[] = {NULL,         "2026-07-28", "2025-11-25", "2025-06-18",
                                       "2025-03-26", "2024-11-05", "1999-01-01", ""};
static const char *const NAMES[] = {NULL, "echo", "=?base64?ZWNobw==?=", "=?base64?!?="};

/* The answer is JSON-RPC, or there is none. */
static void check_answer(const char *answer, unsigned status)
{
    if (answer == NULL)
        return;
    json_error_t e;
    json_t *a = json_loads(answer, JSON_DECODE_ANY, &e);
    CHECK(a != NULL);
    const json_t *one = json_is_array(a) ? json_array_get(a, 0) : a;
    CHECK(json_is_array(a) ||
          strcmp(json_string_value(json_object_get(one, "jsonrpc")), "2.0") == 0);
    CHECK(status >= 200 && status < 600);
    json_decref(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t f = data[0];
    struct mcp_request req = {
        .http = f & 1,
        .version_header = VERSIONS[(f >> 1) & 7],
        .method_header = (f & 16) ? "tools/call" : NULL,
        .name_header = NAMES[(f >> 5) & 3],
        .token_set = f & 128,
        .authorized = (f & 192) == 192,
    };
    struct mcp *m = mcp_create(TOOLS, sizeof(TOOLS) / sizeof(*TOOLS), "fuzz", "1");
    CHECK(m != NULL);
    for (int round = 0; round < 2; round++) {
        unsigned status = 0;
        char *answer = mcp_handle(m, (const char *)data + 1, size - 1, &req, NULL, &status);
        check_answer(answer, status);
        free(answer);
    }
    mcp_destroy(&m);
    return 0;
}
