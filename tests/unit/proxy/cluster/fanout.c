/* tests/unit/proxy/cluster/fanout.c - multi-key commands split by slot, merged in order.
 *
 * Keys "a", "b", "c" and "d" hash to four different slots; "{a}x" shares "a"'s.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/cluster/fanout.h"
#include "proxy/proto/slot.h"
#include "tests/unit/frame.h"
#include "tests/unit/table.h"

static struct frame frame;
static struct request rq;
static char merged[512]; /* the owner's reply */
static size_t merged_len;
static int merged_calls;

static void setup(void)
{
    table_setup();
    merged_calls = 0;
}

static void teardown(void)
{
    free(frame.buf);
    table_teardown();
}

TestSuite(fanout, .init = setup, .fini = teardown);

static void owner_done(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)now_ms;
    cr_assert_lt(len, sizeof(merged));
    memcpy(merged, data, len);
    merged_len = len;
    merged_calls++;
    exchange_destroy(&x);
}

static struct fanout *split(const char *line, fanout_kind_e want)
{
    frame = frame_of(line);
    request_init(&rq, table, frame.buf, &frame.req, &scratch);
    cr_assert_eq(fanout_kind(&rq), want, "%s", line);
    struct fanout *f = fanout_create(&rq, want, exchange_create(owner_done, NULL));
    cr_assert_not_null(f);
    return f;
}

static void expect_part(const struct fanout *f, size_t i, const char *key, const char *bytes)
{
    const char *data;
    size_t len;
    fanout_request(f, i, &data, &len);
    cr_expect_eq(fanout_slot(f, i), (int)slot_of(key, strlen(key)), "part %zu", i);
    cr_expect_eq(len, strlen(bytes), "part %zu: %.*s", i, (int)len, data);
    cr_expect_eq(memcmp(data, bytes, len), 0, "part %zu: %.*s", i, (int)len, data);
}

static void reply(struct fanout *f, size_t i, const char *bytes)
{
    fanout_reply(f, i, bytes, strlen(bytes), 0);
}

static void expect_merged(const char *bytes)
{
    cr_assert_eq(merged_calls, 1);
    cr_expect_eq(merged_len, strlen(bytes), "%.*s", (int)merged_len, merged);
    cr_expect_eq(memcmp(merged, bytes, merged_len), 0, "%.*s", (int)merged_len, merged);
}

Test(fanout, kinds)
{
    static const struct {
        const char *line;
        fanout_kind_e kind;
    } CASES[] = {
        {"MGET a b", FANOUT_VALUES}, {"mset a 1 b 2", FANOUT_OK}, {"MSET a 1 b", FANOUT_NONE},
        {"DEL a b", FANOUT_SUM},     {"UNLINK a", FANOUT_SUM},    {"EXISTS a a", FANOUT_SUM},
        {"TOUCH a b", FANOUT_SUM},   {"GET a", FANOUT_NONE},      {"RENAME a b", FANOUT_NONE},
        {"NOSUCH a b", FANOUT_NONE},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        struct frame f = frame_of(CASES[i].line);
        request_init(&rq, table, f.buf, &f.req, &scratch);
        cr_expect_eq(fanout_kind(&rq), CASES[i].kind, "%s", CASES[i].line);
        free(f.buf);
    }
}

Test(fanout, mget_values_in_key_order)
{
    struct fanout *f = split("MGET a b {a}x c", FANOUT_VALUES);
    cr_assert_eq(fanout_parts(f), 3);
    expect_part(f, 0, "a", "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$4\r\n{a}x\r\n");
    expect_part(f, 1, "b", "*2\r\n$4\r\nMGET\r\n$1\r\nb\r\n");
    expect_part(f, 2, "c", "*2\r\n$4\r\nMGET\r\n$1\r\nc\r\n");
    reply(f, 2, "*1\r\n_\r\n"); /* RESP3's null: passed as it is */
    reply(f, 0, "*2\r\n$2\r\nva\r\n$-1\r\n");
    reply(f, 1, "*1\r\n$2\r\nvb\r\n");
    cr_expect_eq(merged_calls, 0, "merged before fanout_sent");
    fanout_sent(f, 0);
    expect_merged("*4\r\n$2\r\nva\r\n$2\r\nvb\r\n$-1\r\n_\r\n");
}

Test(fanout, mset_pairs_and_ok)
{
    struct fanout *f = split("MSET a 1 b 2 {a}x 3", FANOUT_OK);
    cr_assert_eq(fanout_parts(f), 2);
    expect_part(f, 0, "a", "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$4\r\n{a}x\r\n$1\r\n3\r\n");
    expect_part(f, 1, "b", "*3\r\n$4\r\nMSET\r\n$1\r\nb\r\n$1\r\n2\r\n");
    fanout_sent(f, 0);
    reply(f, 0, "+OK\r\n");
    reply(f, 1, "+OK\r\n");
    expect_merged("+OK\r\n");
}

Test(fanout, counts_summed)
{
    struct fanout *f = split("EXISTS a b a d", FANOUT_SUM);
    cr_assert_eq(fanout_parts(f), 3);
    expect_part(f, 0, "a", "*3\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\na\r\n");
    fanout_sent(f, 0);
    reply(f, 0, ":2\r\n");
    reply(f, 1, ":0\r\n");
    reply(f, 2, ":1\r\n");
    expect_merged(":3\r\n");
}

Test(fanout, first_error_in_key_order)
{
    struct fanout *f = split("DEL a b c", FANOUT_SUM);
    fanout_sent(f, 0);
    reply(f, 2, "-ERR upstream unavailable\r\n");
    reply(f, 1, "-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
    reply(f, 0, ":1\r\n");
    expect_merged("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
}

Test(fanout, unexpected_reply_passed_on)
{
    struct fanout *f = split("MGET a b", FANOUT_VALUES);
    fanout_sent(f, 0);
    reply(f, 0, "*1\r\n$1\r\nx\r\n");
    reply(f, 1, ":5\r\n");
    expect_merged(":5\r\n");
}

Test(fanout, redirects_bounded)
{
    struct fanout *f = split("TOUCH a b", FANOUT_SUM);
    cr_expect(fanout_redirect(f, 0, 2));
    cr_expect(fanout_redirect(f, 0, 2));
    cr_expect_not(fanout_redirect(f, 0, 2));
    cr_expect(fanout_redirect(f, 1, 2));
    reply(f, 0, ":1\r\n");
    reply(f, 1, ":1\r\n");
    fanout_sent(f, 0);
    expect_merged(":2\r\n");
}

Test(fanout, broadcast_kinds)
{
    static const struct {
        const char *line;
        fanout_kind_e kind;
    } CASES[] = {
        {"DBSIZE", FANOUT_SUM}, {"KEYS user:*", FANOUT_CONCAT}, {"FLUSHALL ASYNC", FANOUT_OK},
        {"flushdb", FANOUT_OK}, {"GET a", FANOUT_NONE},         {"SCAN 0", FANOUT_NONE},
        {"PING", FANOUT_NONE},  {"NOSUCH", FANOUT_NONE},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        struct frame f = frame_of(CASES[i].line);
        request_init(&rq, table, f.buf, &f.req, &scratch);
        cr_expect_eq(fanout_broadcast_kind(&rq), CASES[i].kind, "%s", CASES[i].line);
        free(f.buf);
    }
}

Test(fanout, broadcast_keys_concatenated)
{
    static const int SLOTS[] = {0, 5461, 10923};
    frame = frame_of("KEYS k*");
    request_init(&rq, table, frame.buf, &frame.req, &scratch);
    struct fanout *f =
        fanout_broadcast(&rq, FANOUT_CONCAT, SLOTS, 3, exchange_create(owner_done, NULL));
    cr_assert_not_null(f);
    cr_assert_eq(fanout_parts(f), 3);
    for (size_t i = 0; i < 3; i++) {
        const char *data;
        size_t len;
        fanout_request(f, i, &data, &len);
        cr_expect_eq(fanout_slot(f, i), SLOTS[i]);
        cr_expect_eq(len, frame.len);
        cr_expect_eq(memcmp(data, frame.buf, len), 0, "the request as it is");
    }
    reply(f, 0, "*2\r\n$2\r\nk1\r\n$2\r\nk2\r\n");
    reply(f, 1, "*0\r\n");
    reply(f, 2, "*1\r\n$2\r\nk3\r\n");
    fanout_sent(f, 0);
    expect_merged("*3\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\nk3\r\n");
}

Test(fanout, broadcast_error_of_a_node)
{
    static const int SLOTS[] = {0, 5461};
    frame = frame_of("FLUSHALL");
    request_init(&rq, table, frame.buf, &frame.req, &scratch);
    struct fanout *f =
        fanout_broadcast(&rq, FANOUT_OK, SLOTS, 2, exchange_create(owner_done, NULL));
    cr_assert_not_null(f);
    fanout_sent(f, 0);
    reply(f, 0, "+OK\r\n");
    reply(f, 1, "-ERR upstream unavailable\r\n");
    expect_merged("-ERR upstream unavailable\r\n");
}
