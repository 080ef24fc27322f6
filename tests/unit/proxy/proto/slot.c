/* tests/unit/proxy/proto/slot.c - CRC16, hash tags and the slot of a request.
 *
 * The slots of the table were given by CLUSTER KEYSLOT on redis-server 7.0.15
 * (cluster mode); the first ones are also the examples of Redis's cluster
 * specification.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/command.h"
#include "proxy/proto/request.h"
#include "proxy/proto/slot.h"
#include "tests/unit/frame.h"
#include "tests/unit/leaks.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

TestSuite(slot, .fini = check_leaks);

struct slot_case {
    const char *key;
    size_t len; /* 0: strlen(key) */
    unsigned slot;
};

static const struct slot_case CASES[] = {
    {"foo", 0, 12182},
    {"bar", 0, 5061},
    {"{user1000}.following", 0, 3443},
    {"{user1000}.followers", 0, 3443},
    {"foo{}{bar}", 0, 8363},    /* empty tag: the whole key */
    {"foo{{bar}}zap", 0, 4015}, /* the tag is "{bar" */
    {"{bar", 0, 4015},
    {"foo{bar}{zap}", 0, 5061}, /* the first tag: "bar" */
    {"", 0, 0},
    {"bar}", 0, 6624},
    {"{}", 0, 15257},
    {"}{", 0, 12793},
    {"{a}", 0, 15495},
    {"a", 0, 15495},
    {"a{b}c", 0, 3300},
    {"user:1000", 0, 1649},
    {"key:000000000000", 0, 13053},
    {"{", 0, 4092},
    {"}", 0, 12090},
    {"{{}}", 0, 4092}, /* the tag is "{" */
    {"{}x", 0, 10595},
    {"x{y", 0, 2740},
    {"abc{def}ghi{jkl}", 0, 16148},
    {"hello world", 0, 15332},
    {"123456789", 0, 12739},
    {"Z", 0, 15295},
    {"\xc3\xa9"
     "clair",
     0, 9615},
    {"\\xff\\xfe", 0, 7568},
    {"\xff\xfe", 0, 3374},
    {"a\0b", 3, 8383},
    {"{\0}x", 4, 0}, /* the tag is one NUL byte */
    {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80", 0, 6012},
};

/* CRC16/XMODEM one bit at a time: what the table must agree with. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

Test(slot, crc16_check_value)
{
    cr_expect_eq(slot_crc16("123456789", 9), 0x31c3);
    cr_expect_eq(slot_crc16(NULL, 0), 0);
}

Test(slot, crc16_matches_bitwise)
{
    unsigned char buf[512];

    for (unsigned b = 0; b < 256; b++) {
        buf[0] = (unsigned char)b;
        cr_expect_eq(slot_crc16(buf, 1), crc16_bitwise(buf, 1), "byte %u", b);
    }
    srand(7);
    for (int round = 0; round < 200; round++) {
        size_t len = (size_t)rand() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rand();
        cr_expect_eq(slot_crc16(buf, len), crc16_bitwise(buf, len), "round %d", round);
    }
}

Test(slot, keys_as_redis_hashes_them)
{
    for (size_t i = 0; i < LEN(CASES); i++) {
        const struct slot_case *c = &CASES[i];
        size_t len = c->len ? c->len : strlen(c->key);
        cr_expect_eq(slot_of(c->key, len), c->slot, "case %zu (%s): want %u, got %u", i, c->key,
                     c->slot, slot_of(c->key, len));
    }
    cr_expect_eq(slot_of(NULL, 0), 0);
}

Test(slot, slots_stay_in_range)
{
    char key[32];

    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof(key), "key:%d", i);
        cr_assert_lt(slot_of(key, (size_t)n), SLOT_COUNT);
    }
}

/* Only the bytes in [0, len) count: a '}' after them closes no tag. */
Test(slot, length_bounds_the_key)
{
    cr_expect_eq(slot_of("{bar}", 4), slot_of("{bar", 4));
    cr_expect_eq(slot_of("foo{bar}", 3), 12182);
}

struct request_case {
    const char *line;
    int slot;
};

static const struct request_case REQUESTS[] = {
    {"GET foo", 12182},
    {"SET foo{bar}{zap} v", 5061},
    {"MGET {user1000}.following {user1000}.followers", 3443},
    {"MGET bar bar", 5061},
    {"MSET {bar}a 1 {bar}b 2", 5061},
    {"MGET foo bar", SLOT_CROSS},
    {"MSET {a}x 1 {b}y 2", SLOT_CROSS},
    {"DEL foo foo{}", SLOT_CROSS},
    {"PING", SLOT_NONE},
    {"EVAL return 0", SLOT_NONE},
    {"NOSUCHCOMMAND foo", SLOT_NONE},
    {"GET", SLOT_NONE},         /* wrong arity */
    {"GET foo bar", SLOT_NONE}, /* wrong arity */
    /* more keys than the scan keeps views of */
    {"MGET {t}0 {t}1 {t}2 {t}3 {t}4 {t}5 {t}6 {t}7 {t}8 {t}9 {t}10 {t}11", 15891},
    {"MGET {t}0 {t}1 {t}2 {t}3 {t}4 {t}5 {t}6 {t}7 {t}8 {t}9 {t}10 x", SLOT_CROSS},
};

Test(slot, requests)
{
    struct command_table *t = command_table_create();
    struct request_keys scratch = {0};

    cr_assert_not_null(t);
    cr_assert_gt(command_table_add_builtin(t), 0);
    for (size_t i = 0; i < LEN(REQUESTS); i++) {
        const struct request_case *c = &REQUESTS[i];
        struct frame f = frame_of(c->line);
        struct request r;
        request_init(&r, t, f.buf, &f.req, &scratch);
        int got = slot_of_request(&r);
        cr_expect_eq(got, c->slot, "%s: want %d, got %d", c->line, c->slot, got);
        cr_expect_eq(slot_of_request(&r), got, "%s: a second call differs", c->line);
        free(f.buf);
    }
    request_keys_free(&scratch);
    command_table_destroy(&t);
}
