/* stdio.c - `nearcache mcp`: newline-delimited JSON-RPC on stdin and stdout. */
#include "proxy/mcp/stdio.h"

#include <getopt.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mcp/catalog.h"
#include "proxy/tools/target.h"
#include "proxy/mcp/mcp.h"
#include "proxy/net.h"

#define STDIO_LINE_MAX  (1 << 20) /* bytes of one message */
#define STDIO_TIMEOUT_S 30        /* the longest one round trip to the proxy may take */

static const char USAGE[] =
    "usage: nearcache mcp [--proxy ADDR] [--password P] [--admin-token T]\n"
    "  MCP server on stdin/stdout (newline-delimited JSON-RPC) for local agents\n"
    "  --proxy ADDR        the proxy: host:port or unix socket path (default 127.0.0.1:6380)\n"
    "  --password P        authenticate with the proxy (or NEARCACHE_PASSWORD)\n"
    "  --admin-token T     offer the tools that change state: invalidate, reload,\n"
    "                      performance_tuning, bulk_operations (or NEARCACHE_ADMIN_TOKEN)\n"
    "  pattern_analysis authenticates at Redis with NEARCACHE_UPSTREAM_USERNAME and\n"
    "  NEARCACHE_UPSTREAM_PASSWORD when set\n";

struct stdio_options {
    const char *proxy;
    const char *password;
    const char *token;
};

static int stdio_parse(int argc, char **argv, struct stdio_options *o)
{
    static const struct option LONG[] = {
        {"proxy", required_argument, NULL, 'p'},
        {"password", required_argument, NULL, 'a'},
        {"admin-token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct stdio_options){"127.0.0.1:6380", getenv("NEARCACHE_PASSWORD"),
                                getenv("NEARCACHE_ADMIN_TOKEN")};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
        if (opt == 'p')
            o->proxy = optarg;
        else if (opt == 'a')
            o->password = optarg;
        else if (opt == 't')
            o->token = optarg;
        else if (opt == 'h') {
            fputs(USAGE, stdout);
            exit(0);
        } else
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "nearcache mcp: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    char host[256];
    int port;
    if (net_addr_split(o->proxy, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "nearcache mcp: --proxy %s: not host:port nor a unix socket path\n",
                o->proxy);
        return -1;
    }
    if (o->token != NULL && o->token[0] == '\0')
        o->token = NULL;
    return 0;
}

/* Connects (and authenticates) to the proxy; NULL after saying why on stderr. */
static redisContext *stdio_connect(const struct stdio_options *o)
{
    char why[256];
    redisContext *rc =
        target_connect(o->proxy, NULL, o->password, 0, STDIO_TIMEOUT_S * 1000, why, sizeof(why));
    if (rc == NULL)
        fprintf(stderr, "nearcache mcp: the proxy at %s: %s\n", o->proxy, why);
    return rc;
}

/* Answers one line; -1 when stdout failed. */
static int stdio_answer(struct mcp *m, const struct stdio_options *o, struct catalog_env *env,
                        const char *line, size_t len)
{
    static const char TOO_LONG[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                                   "\"message\":\"Parse error: message longer than 1 MB\"}}";
    struct mcp_request req = {.token_set = o->token != NULL, .authorized = o->token != NULL};
    unsigned status;
    if (env->rc != NULL && env->rc->err != 0) { /* broken: made again */
        redisFree(env->rc);
        env->rc = NULL;
    }
    if (env->rc == NULL)
        env->rc = stdio_connect(o);
    char *answer =
        len > STDIO_LINE_MAX ? strdup(TOO_LONG) : mcp_handle(m, line, len, &req, env, &status);
    int ok = answer == NULL || printf("%s\n", answer) >= 0;
    free(answer);
    return ok && fflush(stdout) == 0 ? 0 : -1;
}

int mcp_main(int argc, char **argv)
{
    struct stdio_options o;
    if (stdio_parse(argc, argv, &o) < 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    size_t n;
    const struct mcp_tool *tools = catalog_tools(&n);
    struct mcp *m = mcp_create(tools, n, "nearcache", CATALOG_VERSION);
    if (m == NULL) {
        fputs("nearcache mcp: out of memory\n", stderr);
        return 1;
    }
    struct catalog_env env = {NULL,
                              o.proxy,
                              o.password,
                              getenv("NEARCACHE_UPSTREAM_USERNAME"),
                              getenv("NEARCACHE_UPSTREAM_PASSWORD"),
                              NULL};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;
    while (status == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len > 0)
            status = stdio_answer(m, &o, &env, line, (size_t)len);
    }
    free(line);
    redisFree(env.rc);
    mcp_destroy(&m);
    return status == 0 ? 0 : 1;
}
