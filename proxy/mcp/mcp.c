/* mcp.c - JSON-RPC 2.0 and the MCP methods, for every supported revision. */
#include "proxy/mcp/mcp.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mcp/schema.h"

#define MCP_MODERN        "2026-07-28" /* stateless: the version rides on every request */
#define MCP_LEGACY_LATEST "2025-11-25"
#define MCP_BATCHES       "2025-03-26" /* the one revision with JSON-RPC batches */
#define MCP_META_VERSION  "io.modelcontextprotocol/protocolVersion"

/* JSON-RPC and MCP error codes. */
#define MCP_PARSE_ERROR      -32700
#define MCP_INVALID_REQUEST  -32600
#define MCP_METHOD_NOT_FOUND -32601
#define MCP_INVALID_PARAMS   -32602
#define MCP_INTERNAL_ERROR   -32603
#define MCP_HEADER_MISMATCH  -32020
#define MCP_UNSUPPORTED      -32022

/* The revisions with an initialize handshake, newest first. */
static const char *const LEGACY[] = {MCP_LEGACY_LATEST, "2025-06-18", "2025-03-26", "2024-11-05"};

struct mcp {
    const struct mcp_tool *tools;
    size_t ntools;
    json_t **schemas; /* each tool's input schema, parsed */
    json_t **outputs; /* each tool's output schema, parsed, or NULL */
    char *name;
    char *version;
    char negotiated[16]; /* the version the last initialize agreed (stdio's batches) */
};

/* One message being answered: its revision and the answer's HTTP status. */
struct mcp_call {
    struct mcp *m;
    const struct mcp_request *req;
    const void *env;
    const char *version; /* the revision it is served under */
    bool modern;         /* 2026-07-28: resultType, server/discover, 404 */
    unsigned status;
};

static bool mcp_legacy(const char *v)
{
    for (size_t i = 0; v != NULL && i < sizeof(LEGACY) / sizeof(*LEGACY); i++)
        if (strcmp(v, LEGACY[i]) == 0)
            return true;
    return false;
}

/* Whether revision v (legacy) has what came in with since (a date string). */
static bool mcp_since(const char *v, const char *since)
{
    return strcmp(v, since) >= 0;
}

static json_t *mcp_error(json_t *id, int code, const char *message, json_t *data)
{
    json_t *err = json_pack("{s:i,s:s}", "code", code, "message", message);
    if (data != NULL)
        json_object_set_new(err, "data", data);
    return json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null(),
                     "error", err);
}

static json_t *mcp_result(const struct mcp_call *call, json_t *id, json_t *result)
{
    if (call->modern)
        json_object_set_new(result, "resultType", json_string("complete"));
    return json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

static json_t *mcp_supported(void)
{
    json_t *list = json_array();
    json_array_append_new(list, json_string(MCP_MODERN));
    for (size_t i = 0; i < sizeof(LEGACY) / sizeof(*LEGACY); i++)
        json_array_append_new(list, json_string(LEGACY[i]));
    return list;
}

/* ---- methods ------------------------------------------------------------- */

static json_t *mcp_capabilities(void)
{
    return json_pack("{s:{s:b}}", "tools", "listChanged", 0);
}

static json_t *mcp_initialize(struct mcp_call *call, json_t *id, json_t *params)
{
    const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
    if (asked == NULL)
        return mcp_error(id, MCP_INVALID_PARAMS, "initialize needs params.protocolVersion", NULL);
    const char *v = mcp_legacy(asked) ? asked : MCP_LEGACY_LATEST;
    snprintf(call->m->negotiated, sizeof(call->m->negotiated), "%s", v);
    call->modern = false;
    return mcp_result(call, id,
                      json_pack("{s:s,s:o,s:{s:s,s:s}}", "protocolVersion", v, "capabilities",
                                mcp_capabilities(), "serverInfo", "name", call->m->name, "version",
                                call->m->version));
}

static json_t *mcp_discover(struct mcp_call *call, json_t *id)
{
    json_t *versions = json_pack("[s]", MCP_MODERN);
    return mcp_result(call, id,
                      json_pack("{s:o,s:o,s:{s:s,s:s}}", "supportedVersions", versions,
                                "capabilities", mcp_capabilities(), "serverInfo", "name",
                                call->m->name, "version", call->m->version));
}

/* Whether the caller may see tool i: tools that change anything (not
 * read-only) need a token set. */
static bool mcp_visible(const struct mcp_call *call, size_t i)
{
    return call->m->tools[i].read_only || call->req->token_set;
}

static json_t *mcp_tool_json(const struct mcp_call *call, size_t i)
{
    const struct mcp_tool *t = &call->m->tools[i];
    bool titles = call->modern || mcp_since(call->version, "2025-06-18");
    json_t *tool = json_pack("{s:s,s:s,s:O}", "name", t->name, "description", t->description,
                             "inputSchema", call->m->schemas[i]);
    if (titles)
        json_object_set_new(tool, "title", json_string(t->title));
    if (titles && call->m->outputs[i] != NULL)
        json_object_set(tool, "outputSchema", call->m->outputs[i]);
    if (call->modern || mcp_since(call->version, "2025-03-26"))
        json_object_set_new(tool, "annotations",
                            json_pack("{s:s,s:b,s:b,s:b,s:b}", "title", t->title, "readOnlyHint",
                                      t->read_only, "destructiveHint", t->destructive,
                                      "idempotentHint", t->idempotent, "openWorldHint",
                                      t->open_world));
    return tool;
}

static json_t *mcp_tools_list(struct mcp_call *call, json_t *id)
{
    json_t *tools = json_array();
    for (size_t i = 0; i < call->m->ntools; i++)
        if (mcp_visible(call, i))
            json_array_append_new(tools, mcp_tool_json(call, i));
    return mcp_result(call, id, json_pack("{s:o}", "tools", tools));
}

/* A tool's answer: its text, and structured content where the revision has it. */
static json_t *mcp_tool_result(const struct mcp_call *call, json_t *value, const char *failure)
{
    if (value == NULL)
        return json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", failure,
                         "isError", 1);
    char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_t *result = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text",
                               text != NULL ? text : "{}", "isError", 0);
    free(text);
    if (call->modern || mcp_since(call->version, "2025-06-18"))
        json_object_set(result, "structuredContent", value);
    json_decref(value);
    return result;
}

static json_t *mcp_tools_call(struct mcp_call *call, json_t *id, json_t *params)
{
    char why[512] = "";
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments");
    if (name == NULL)
        return mcp_error(id, MCP_INVALID_PARAMS, "tools/call needs params.name", NULL);
    size_t i = 0;
    while (i < call->m->ntools && strcmp(call->m->tools[i].name, name) != 0)
        i++;
    if (i == call->m->ntools || !mcp_visible(call, i)) {
        snprintf(why, sizeof(why), "Unknown tool: %s", name);
        return mcp_error(id, MCP_INVALID_PARAMS, why, NULL);
    }
    if (args != NULL && !json_is_object(args))
        return mcp_error(id, MCP_INVALID_PARAMS, "params.arguments must be an object", NULL);
    char mismatch[256];
    if (schema_check(call->m->schemas[i], args, mismatch, sizeof(mismatch)) < 0) {
        snprintf(why, sizeof(why), "Invalid arguments for tool %s: %s", name, mismatch);
        return mcp_error(id, MCP_INVALID_PARAMS, why, NULL);
    }
    const struct mcp_tool *t = &call->m->tools[i];
    json_t *value = NULL;
    if (!t->read_only && !call->req->authorized)
        snprintf(why, sizeof(why),
                 "refused: %s changes the proxy's state and needs the admin token "
                 "(HTTP: Authorization: Bearer <admin.token>)",
                 name);
    else if (args != NULL)
        value = t->fn(call->env, args, why, sizeof(why));
    else {
        json_t *none = json_object();
        value = t->fn(call->env, none, why, sizeof(why));
        json_decref(none);
    }
    return mcp_result(call, id, mcp_tool_result(call, value, why));
}

/* ---- one request ----------------------------------------------------------- */

/* Whether a Mcp-Name header value names want: as it is, or in the
 * "=?base64?...?=" form a client must use for a value that is not plain
 * ASCII. */
static bool mcp_name_matches(const char *header, const char *want)
{
    static const char OPEN[] = "=?base64?", CLOSE[] = "?=";
    size_t len = strlen(header);
    if (len < sizeof(OPEN) + sizeof(CLOSE) - 2 || strncmp(header, OPEN, sizeof(OPEN) - 1) != 0 ||
        strcmp(header + len - 2, CLOSE) != 0)
        return strcmp(header, want) == 0;
    const char *b64 = header + sizeof(OPEN) - 1;
    size_t n = len - (sizeof(OPEN) - 1) - 2;
    unsigned char out[512];
    if (n % 4 != 0 || n / 4 * 3 > sizeof(out))
        return false;
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (got < 0)
        return false;
    got -= (n > 0 && b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '='); /* padding decoded */
    return (size_t)got == strlen(want) && memcmp(out, want, (size_t)got) == 0;
}

/* 2026-07-28 over HTTP: the Mcp-Method header, and Mcp-Name for a
 * tools/call, must be there and match the body. Returns the HeaderMismatch
 * answer, or NULL. */
static json_t *mcp_metadata(struct mcp_call *call, json_t *id, const char *method, json_t *params)
{
    const char *name = strcmp(method, "tools/call") == 0
                           ? json_string_value(json_object_get(params, "name"))
                           : NULL;
    const char *why = call->req->method_header == NULL ? "Mcp-Method header missing"
                      : strcmp(call->req->method_header, method) != 0
                          ? "Mcp-Method header does not match the method"
                      : name == NULL                   ? NULL
                      : call->req->name_header == NULL ? "Mcp-Name header missing"
                      : !mcp_name_matches(call->req->name_header, name)
                          ? "Mcp-Name header does not match params.name"
                          : NULL;
    if (why == NULL)
        return NULL;
    char text[96];
    snprintf(text, sizeof(text), "Header mismatch: %s", why);
    call->status = MCP_HTTP_BAD_REQUEST;
    return mcp_error(id, MCP_HEADER_MISMATCH, text, NULL);
}

/* Settles the revision of a request: the _meta version (stateless), else the
 * legacy one its header or initialize names. Returns an error answer, or
 * NULL when it may go on. */
static json_t *mcp_revision(struct mcp_call *call, json_t *id, const char *method, json_t *params)
{
    json_t *meta = json_object_get(params, "_meta");
    const char *v = json_string_value(json_object_get(meta, MCP_META_VERSION));
    const char *header = call->req->version_header;
    if (v == NULL && strcmp(method, "initialize") != 0 && header != NULL && !mcp_legacy(header))
        v = header; /* a modern or unknown version announced by its header only */
    if (v == NULL) {
        call->version = header != NULL                ? header
                        : call->req->http             ? MCP_BATCHES /* older than the header */
                        : call->m->negotiated[0] != 0 ? call->m->negotiated
                                                      : MCP_LEGACY_LATEST;
        return NULL;
    }
    call->modern = true;
    call->version = v;
    if (call->req->http && (header == NULL || strcmp(header, v) != 0)) {
        call->status = MCP_HTTP_BAD_REQUEST;
        return mcp_error(id, MCP_HEADER_MISMATCH,
                         header == NULL ? "Header mismatch: MCP-Protocol-Version header missing"
                                        : "Header mismatch: MCP-Protocol-Version header does "
                                          "not match _meta protocolVersion",
                         NULL);
    }
    if (strcmp(v, MCP_MODERN) != 0) {
        call->status = MCP_HTTP_BAD_REQUEST;
        return mcp_error(id, MCP_UNSUPPORTED, "Unsupported protocol version",
                         json_pack("{s:o,s:s}", "supported", mcp_supported(), "requested", v));
    }
    return call->req->http ? mcp_metadata(call, id, method, params) : NULL;
}

static json_t *mcp_dispatch(struct mcp_call *call, json_t *id, const char *method, json_t *params)
{
    if (strcmp(method, "initialize") == 0)
        return mcp_initialize(call, id, params);
    if (strcmp(method, "ping") == 0)
        return mcp_result(call, id, json_object());
    if (strcmp(method, "server/discover") == 0)
        return mcp_discover(call, id);
    if (strcmp(method, "tools/list") == 0)
        return mcp_tools_list(call, id);
    if (strcmp(method, "tools/call") == 0)
        return mcp_tools_call(call, id, params);
    if (call->modern && call->req->http)
        call->status = MCP_HTTP_NOT_FOUND;
    char why[160];
    snprintf(why, sizeof(why), "Method not found: %.100s", method);
    return mcp_error(id, MCP_METHOD_NOT_FOUND, why, NULL);
}

/* Answers one message (an element of a batch, or the whole body): NULL for
 * a notification or a response. */
static json_t *mcp_one(struct mcp_call *call, json_t *msg)
{
    json_t *id = json_object_get(msg, "id");
    bool id_ok = id == NULL || json_is_string(id) || json_is_integer(id);
    json_t *reply_id = id_ok ? id : NULL;
    if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0 || !id_ok) {
        call->status = MCP_HTTP_BAD_REQUEST;
        return mcp_error(reply_id, MCP_INVALID_REQUEST,
                         "Invalid Request: not a JSON-RPC 2.0 message", NULL);
    }
    const char *method = json_string_value(json_object_get(msg, "method"));
    if (method == NULL) {
        if (id != NULL && (json_object_get(msg, "result") || json_object_get(msg, "error")))
            return NULL; /* a response: the server sends no requests, nothing to match */
        call->status = MCP_HTTP_BAD_REQUEST;
        return mcp_error(reply_id, MCP_INVALID_REQUEST, "Invalid Request: no method", NULL);
    }
    if (id == NULL)
        return NULL; /* a notification: accepted */
    json_t *params = json_object_get(msg, "params");
    if (params != NULL && !json_is_object(params))
        return mcp_error(id, MCP_INVALID_PARAMS, "params must be an object", NULL);
    json_t *refused = mcp_revision(call, id, method, params);
    return refused != NULL ? refused : mcp_dispatch(call, id, method, params);
}

/* A batch, where the revision has them: the answers of its requests. */
static json_t *mcp_batch(struct mcp_call *call, json_t *msgs)
{
    const char *v = call->req->http ? call->req->version_header : call->m->negotiated;
    bool allowed = (call->req->http && v == NULL) || (v != NULL && strcmp(v, MCP_BATCHES) == 0);
    if (!allowed || json_array_size(msgs) == 0) {
        call->status = MCP_HTTP_BAD_REQUEST;
        return mcp_error(NULL, MCP_INVALID_REQUEST,
                         allowed ? "Invalid Request: empty batch"
                                 : "Invalid Request: batches exist only in revision 2025-03-26",
                         NULL);
    }
    json_t *answers = json_array(), *msg;
    size_t i;
    json_array_foreach(msgs, i, msg)
    {
        struct mcp_call one = {call->m, call->req, call->env, NULL, false, MCP_HTTP_OK};
        json_t *answer = mcp_one(&one, msg);
        if (answer != NULL)
            json_array_append_new(answers, answer);
    }
    if (json_array_size(answers) > 0)
        return answers;
    json_decref(answers);
    return NULL;
}

char *mcp_handle(struct mcp *m, const char *body, size_t len, const struct mcp_request *req,
                 const void *env, unsigned *status)
{
    struct mcp_call call = {m, req, env, NULL, false, MCP_HTTP_OK};
    json_error_t jerr;
    json_t *msg = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr), *answer;
    if (msg == NULL) {
        char why[256];
        snprintf(why, sizeof(why), "Parse error: %s", jerr.text);
        call.status = MCP_HTTP_BAD_REQUEST;
        answer = mcp_error(NULL, MCP_PARSE_ERROR, why, NULL);
    } else {
        answer = json_is_array(msg) ? mcp_batch(&call, msg) : mcp_one(&call, msg);
    }
    json_decref(msg);
    *status = answer == NULL && call.status == MCP_HTTP_OK ? MCP_HTTP_ACCEPTED : call.status;
    if (answer == NULL)
        return NULL;
    char *text = json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(answer);
    return text;
}

struct mcp *mcp_create(const struct mcp_tool *tools, size_t n, const char *name,
                       const char *version)
{
    struct mcp *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->tools = tools;
    m->ntools = n;
    m->schemas = calloc(n + 1, sizeof(*m->schemas));
    m->outputs = calloc(n + 1, sizeof(*m->outputs));
    m->name = strdup(name);
    m->version = strdup(version);
    bool ok = m->schemas != NULL && m->outputs != NULL && m->name != NULL && m->version != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        m->schemas[i] = json_loads(tools[i].input_schema, 0, NULL);
        if (tools[i].output_schema != NULL)
            m->outputs[i] = json_loads(tools[i].output_schema, 0, NULL);
        ok = json_is_object(m->schemas[i]) &&
             (tools[i].output_schema == NULL || json_is_object(m->outputs[i]));
    }
    if (!ok)
        mcp_destroy(&m);
    return m;
}

void mcp_destroy(struct mcp **mp)
{
    struct mcp *m = mp != NULL ? *mp : NULL;
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->ntools; i++) {
        json_decref(m->schemas != NULL ? m->schemas[i] : NULL);
        json_decref(m->outputs != NULL ? m->outputs[i] : NULL);
    }
    free(m->schemas);
    free(m->outputs);
    free(m->name);
    free(m->version);
    free(m);
    *mp = NULL;
}
