/* tests/unit/proxy/cluster/own.c - CLUSTER commands answered as a cluster of one node. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster/own.h"
#include "tests/unit/frame.h"
#include "tests/unit/table.h"

TestSuite(own, .init = table_setup, .fini = table_teardown);

static const struct own_view RESP2 = {"10.0.0.5", 6380, 2, true, "0.0.0.0:6380"};
static const struct own_view RESP3 = {"10.0.0.5", 6380, 3, true, "0.0.0.0:6380"};

/* What line is to the proxy; the answer in *reply (freed by the caller). */
static own_e own(const char *line, const struct own_view *v, char **reply, size_t *len, int *slot)
{
    struct frame f = frame_of(line);
    struct request rq;
    request_init(&rq, table, f.buf, &f.req, &scratch);
    *reply = NULL;
    own_e e = cluster_own(&rq, v, reply, len, slot);
    free(f.buf);
    return e;
}

/* The answer to line, which must be one complete reply. */
static char *answer(const char *line, const struct own_view *v, size_t *len)
{
    char *reply;
    int slot;
    cr_assert_eq(own(line, v, &reply, len, &slot), OWN_ANSWERED, "%s", line);
    cr_assert_not_null(reply);
    struct resp_scanner s;
    struct resp_reply rep;
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, reply, *len, &rep), RESP_OK, "%s: %.*s",
                 line, (int)*len, reply);
    cr_expect_eq(rep.len, *len, "%s: one reply", line);
    return reply;
}

static void expect_answer(const char *line, const struct own_view *v, const char *want)
{
    size_t len;
    char *got = answer(line, v, &len);
    cr_expect_eq(len, strlen(want), "%s: %.*s", line, (int)len, got);
    cr_expect_eq(memcmp(got, want, len), 0, "%s: %.*s", line, (int)len, got);
    free(got);
}

Test(own, slots)
{
    size_t len;
    char *id = answer("CLUSTER MYID", &RESP2, &len);
    cr_assert_eq(len, 5 + 40 + 2, "$40, the id");
    char want[256];
    snprintf(want, sizeof(want),
             "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$8\r\n10.0.0.5\r\n:6380\r\n%.47s*0\r\n", id);
    expect_answer("CLUSTER SLOTS", &RESP2, want);
    snprintf(want, sizeof(want),
             "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$8\r\n10.0.0.5\r\n:6380\r\n%.47s%%0\r\n", id);
    expect_answer("cluster slots", &RESP3, want);
    free(id);
}

Test(own, id_is_the_listen_address)
{
    size_t len;
    struct own_view other = RESP2;
    other.name = "0.0.0.0:6381";
    char *a = answer("CLUSTER MYID", &RESP2, &len), *b = answer("CLUSTER MYID", &RESP3, &len);
    char *c = answer("CLUSTER MYID", &other, &len);
    cr_expect_eq(memcmp(a, b, len), 0, "the same proxy, another protocol");
    cr_expect_neq(memcmp(a, c, len), 0, "another listen address");
    free(a);
    free(b);
    free(c);
}

Test(own, shapes)
{
    static const char *const LINES[] = {"CLUSTER INFO", "CLUSTER SHARDS", "CLUSTER NODES"};
    for (size_t i = 0; i < sizeof(LINES) / sizeof(LINES[0]); i++) {
        size_t len;
        free(answer(LINES[i], &RESP2, &len));
        free(answer(LINES[i], &RESP3, &len));
    }
    size_t len;
    char *info = answer("CLUSTER INFO", &RESP3, &len);
    cr_expect_eq(memcmp(info, "=", 1), 0, "INFO is verbatim text in RESP3");
    cr_expect_not_null(strstr(info, "cluster_state:ok\r\n"));
    free(info);
    struct own_view down = RESP2;
    down.ok = false;
    info = answer("CLUSTER INFO", &down, &len);
    cr_expect_not_null(strstr(info, "cluster_state:fail\r\ncluster_slots_assigned:16384\r\n"));
    free(info);
    char *shards = answer("CLUSTER SHARDS", &RESP3, &len);
    cr_expect_eq(memcmp(shards, "*1\r\n%2\r\n$5\r\nslots\r\n", 19), 0, "%.*s", (int)len, shards);
    free(shards);
}

Test(own, small_answers)
{
    expect_answer("CLUSTER KEYSLOT foo", &RESP2, ":12182\r\n");
    expect_answer("CLUSTER KEYSLOT {user1000}.following", &RESP2, ":3443\r\n");
    expect_answer("CLUSTER REPLICAS abc", &RESP2, "*0\r\n");
    expect_answer("CLUSTER LINKS", &RESP2, "*0\r\n");
    expect_answer("READONLY", &RESP2, "+OK\r\n");
    expect_answer("readwrite", &RESP2, "+OK\r\n");
    expect_answer("ASKING", &RESP2, "+OK\r\n");
    expect_answer("CLUSTER SETSLOT 1 STABLE", &RESP2,
                  "-ERR nearcache answers for the cluster as one node: send this CLUSTER command "
                  "to the cluster's nodes\r\n");
    expect_answer("CLUSTER FAILOVER", &RESP2,
                  "-ERR nearcache answers for the cluster as one node: send this CLUSTER command "
                  "to the cluster's nodes\r\n");
}

Test(own, forwarded)
{
    static const char *const LINES[] = {"GET foo", "CLUSTER HELP", "CLUSTER KEYSLOT",
                                        "CLUSTER", "NOSUCH 1",     "READONLY extra"};
    for (size_t i = 0; i < sizeof(LINES) / sizeof(LINES[0]); i++) {
        char *reply;
        size_t len;
        int slot;
        cr_expect_eq(own(LINES[i], &RESP2, &reply, &len, &slot), OWN_FORWARD, "%s", LINES[i]);
        cr_expect_null(reply);
    }
}

Test(own, by_slot)
{
    static const struct {
        const char *line;
        int slot;
    } CASES[] = {
        {"CLUSTER COUNTKEYSINSLOT 12182", 12182}, {"CLUSTER GETKEYSINSLOT 5 10", 5},
        {"CLUSTER COUNTKEYSINSLOT 16384", -1},    {"CLUSTER COUNTKEYSINSLOT x", -1},
        {"CLUSTER COUNTKEYSINSLOT -1", -1},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        char *reply;
        size_t len;
        int slot = 0;
        cr_expect_eq(own(CASES[i].line, &RESP2, &reply, &len, &slot), OWN_SLOT, "%s",
                     CASES[i].line);
        cr_expect_eq(slot, CASES[i].slot, "%s", CASES[i].line);
    }
}
