/* tools.c - the table of subcommands and its dispatcher. */
#include "proxy/tools/tools.h"

#include <stdio.h>
#include <string.h>

#include "proxy/mcp/stdio.h"
#include "proxy/tools/analyze.h"
#include "proxy/tools/bulk.h"
#include "proxy/tools/tune.h"

struct tool {
    const char *name;
    tools_main_fn fn;
    const char *summary;
};

static const struct tool TOOLS[] = {
    {"analyze", analyze_main, "walk a Redis keyspace, group keys into patterns, advise a policy"},
    {"bulk", bulk_main, "run get/set/del/invalidate operations from a file, pipelined"},
    {"tune", tune_main, "a short load on a scratch prefix through the proxy, and advice"},
    {"mcp", mcp_main, "the MCP server over stdio, for a local agent (JSON-RPC lines)"},
};

#define NTOOLS (sizeof(TOOLS) / sizeof(TOOLS[0]))

/* Writes the tools' names and summaries, one per line, each after indent. */
static void tools_list(FILE *out, const char *indent)
{
    for (size_t i = 0; i < NTOOLS; i++)
        fprintf(out, "%s%-10s %s\n", indent, TOOLS[i].name, TOOLS[i].summary);
}

int tools_main(int argc, char **argv)
{
    if (strcmp(argv[0], "help") == 0) {
        if (argc > 1) {
            for (size_t i = 0; i < NTOOLS; i++) {
                if (strcmp(argv[1], TOOLS[i].name) == 0)
                    return TOOLS[i].fn(2, (char *[]){argv[1], "--help", NULL});
            }
        }
        fputs("usage: nearcache <tool> [options]   (nearcache <tool> --help)\ntools:\n", stdout);
        tools_list(stdout, "  ");
        return argc > 1 ? 2 : 0;
    }
    for (size_t i = 0; i < NTOOLS; i++) {
        if (strcmp(argv[0], TOOLS[i].name) == 0)
            return TOOLS[i].fn(argc, argv);
    }
    fprintf(stderr, "nearcache: unknown tool '%s'; tools:\n", argv[0]);
    tools_list(stderr, "  ");
    return 2;
}
