/* tests/unit/proxy/cluster/scan.c - one SCAN cursor over every primary. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/cluster/scan.h"
#include "tests/unit/frame.h"
#include "tests/unit/table.h"

TestSuite(scan, .init = table_setup, .fini = table_teardown);

/* The request for line's cursor over nnodes primaries: its bytes, or NULL. */
static char *request(const char *line, int nnodes, int *node, size_t *len)
{
    struct frame f = frame_of(line);
    struct request rq;
    request_init(&rq, table, f.buf, &f.req, &scratch);
    cr_assert(scan_is(&rq), "%s", line);
    char *out = scan_request(&rq, nnodes, node, len);
    free(f.buf);
    return out;
}

static void expect_request(const char *line, int nnodes, int want_node, const char *want)
{
    int node;
    size_t len;
    char *got = request(line, nnodes, &node, &len);
    cr_assert_not_null(got, "%s", line);
    cr_expect_eq(node, want_node, "%s", line);
    cr_expect_eq(len, strlen(want), "%s: %.*s", line, (int)len, got);
    cr_expect_eq(memcmp(got, want, len), 0, "%s: %.*s", line, (int)len, got);
    free(got);
}

Test(scan, cursor_to_node)
{
    expect_request("SCAN 0", 3, 0, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
    expect_request("SCAN 2", 3, 2, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
    /* node 1, its cursor 1234 (1234 << 8 | 1 = 315905) */
    expect_request("scan 315905 MATCH u:* COUNT 10", 3, 1,
                   "*6\r\n$4\r\nscan\r\n$4\r\n1234\r\n$5\r\nMATCH\r\n$3\r\nu:*\r\n$5\r\nCOUNT\r\n"
                   "$2\r\n10\r\n");
}

Test(scan, not_a_cursor_or_past_the_end)
{
    static const char *const BAD[] = {"SCAN abc", "SCAN -1", "SCAN 1x",
                                      "SCAN 99999999999999999999"};
    int node;
    size_t len;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        cr_expect_null(request(BAD[i], 3, &node, &len), "%s", BAD[i]);
        cr_expect_eq(node, -1, "%s", BAD[i]);
    }
    cr_expect_null(request("SCAN 3", 3, &node, &len));
    cr_expect_eq(node, -2, "node 3 of 3: the scan is over");
}

static void expect_reply(const char *data, int node, int nnodes, const char *want)
{
    size_t len;
    char *got = scan_reply(data, strlen(data), node, nnodes, &len);
    cr_assert_not_null(got, "%s", data);
    cr_expect_eq(len, strlen(want), "%.*s", (int)len, got);
    cr_expect_eq(memcmp(got, want, len), 0, "%.*s", (int)len, got);
    free(got);
}

Test(scan, reply_carries_the_node)
{
    /* more on node 1: its cursor 1234 */
    expect_reply("*2\r\n$4\r\n1234\r\n*1\r\n$1\r\nk\r\n", 1, 3,
                 "*2\r\n$6\r\n315905\r\n*1\r\n$1\r\nk\r\n");
    /* node 1 done: node 2 from its start */
    expect_reply("*2\r\n$1\r\n0\r\n*0\r\n", 1, 3, "*2\r\n$1\r\n2\r\n*0\r\n");
    /* the last node done: the scan is over */
    expect_reply("*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n", 2, 3,
                 "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
}

Test(scan, other_replies_passed_on)
{
    static const char *const OTHER[] = {"-ERR upstream unavailable\r\n", "*1\r\n$1\r\n0\r\n",
                                        "*2\r\n$1\r\nx\r\n*0\r\n", "*2\r\n$9\r\n0\r\n"};
    for (size_t i = 0; i < sizeof(OTHER) / sizeof(OTHER[0]); i++) {
        size_t len;
        cr_expect_null(scan_reply(OTHER[i], strlen(OTHER[i]), 0, 3, &len), "%s", OTHER[i]);
    }
}
