/* mcp.h - the Model Context Protocol server: JSON-RPC 2.0 in, answers out.
 *
 * Pure protocol on jansson: a transport (stdio.c, the admin endpoint's /mcp
 * through runner.h) hands over one message body and sends back what
 * mcp_handle returns. The server is dual-era: the stateless revision
 * 2026-07-28 (each request names its version in
 * params._meta["io.modelcontextprotocol/protocolVersion"], server/discover
 * describes the server, results carry resultType) and the revisions with an
 * initialize handshake (2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05),
 * whose version initialize negotiates: the client's if supported, else
 * 2025-11-25. Batches (JSON arrays) are served only under 2025-03-26, the one
 * revision that has them.
 *
 * Methods: initialize, ping, server/discover, tools/list, tools/call; client
 * notifications are accepted and not answered. Errors: -32700 parse error,
 * -32600 invalid request, -32601 method not found, -32602 invalid params (an
 * unknown tool, arguments not matching its schema), -32603 internal error,
 * and under 2026-07-28 -32020 header mismatch and -32022 unsupported
 * protocol version. A tool's own failure is a result with isError true.
 */
#ifndef NEARCACHE_MCP_H
#define NEARCACHE_MCP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct mcp;

/* A tool's work: args matches its input schema. Returns the result (an
 * object, owned by the caller), or NULL after writing why it failed into
 * why[0, whylen). env: what the transport gives the tools (catalog.h). */
typedef json_t *(*mcp_tool_fn)(const void *env, const json_t *args, char *why, size_t whylen);

/* One row of a tool table. The input schema is JSON text of the subset
 * mcp.c validates: an object of properties of type string (minLength,
 * maxLength), integer or number (minimum, maximum) or boolean, "required",
 * and no other arguments accepted. */
struct mcp_tool {
    const char *name;
    const char *title;
    const char *description;
    const char *input_schema;  /* JSON text */
    const char *output_schema; /* JSON text, or NULL */
    bool read_only;            /* readOnlyHint; false: listed and run only with the token */
    bool destructive;          /* annotations: destructiveHint */
    bool idempotent;           /* idempotentHint */
    bool open_world;           /* openWorldHint */
    mcp_tool_fn fn;
};

/* What the transport knows of one message. */
struct mcp_request {
    bool http;                  /* Streamable HTTP: the header rules apply */
    const char *version_header; /* its MCP-Protocol-Version header; NULL: none */
    const char *method_header;  /* its Mcp-Method header (2026-07-28); NULL: none */
    const char *name_header;    /* its Mcp-Name header (2026-07-28); NULL: none */
    bool token_set;             /* an admin token is configured: tools that change state listed */
    bool authorized;            /* the message carries it: tools that change state run */
};

/* The HTTP status of an answer (transports other than HTTP ignore it). */
#define MCP_HTTP_OK          200
#define MCP_HTTP_ACCEPTED    202 /* notifications only: no body */
#define MCP_HTTP_BAD_REQUEST 400
#define MCP_HTTP_NOT_FOUND   404 /* an unknown method under 2026-07-28 */

/* A server for tools[0, n) (borrowed, static) under name and version (its
 * serverInfo). NULL when out of memory or when a schema is not valid JSON. */
struct mcp *mcp_create(const struct mcp_tool *tools, size_t n, const char *name,
                       const char *version);

/* Frees the server; *m is set to NULL. Accepts NULL and *m == NULL. */
void mcp_destroy(struct mcp **m);

/* Handles one message body[0, len) (a request, a notification, or under
 * 2025-03-26 a batch), running the tools it calls with env. Returns the
 * answer (malloc'd JSON text, the caller frees it), or NULL when there is
 * nothing to answer (notifications) or out of memory; *status gets the HTTP
 * status. Not thread-safe: one thread per server. */
char *mcp_handle(struct mcp *m, const char *body, size_t len, const struct mcp_request *req,
                 const void *env, unsigned *status);

#endif
