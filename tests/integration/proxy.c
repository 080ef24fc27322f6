/* proxy.c - end-to-end transparency tests of nearcache: the same requests
 * sent to a real redis-server directly and through the proxy produce
 * byte-identical replies, one scenario per feature (binary data, sizes,
 * pipelining, inline commands, connection state, transactions, scripting,
 * pub/sub, blocking commands, RESP3). Data types are in types.c.
 *
 * Every test starts its own redis-server and proxy on free ports (see
 * harness/) and ends with proxy_finish, so a crash or unclean exit is a failure.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/session.h"
#include "harness/sock.h"

TestSuite(compare, .init = fixture_both, .fini = fixture_stop, .timeout = 120);

/* ---- binary safety and size ------------------------------------------------------ */

static void binary_scenario(struct run *run)
{
    char all[256], value[1024];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    for (int i = 0; i < 1024; i++)
        value[i] = (char)(255 - i % 256);
    const struct {
        const char *p;
        size_t n;
    } keys[] = {{all, 256}, {"a\r\nb", 4}, {"\0", 1}, {"*1\r\n$4\r\nPING\r\n", 14}, {"", 0}};
    const struct {
        const char *p;
        size_t n;
    } values[] = {{value, 1024}, {"\r\n$3\r\nfoo\r\n", 11}, {"", 0}, {"\0\0\r\n", 4}, {all, 256}};
    struct sess s;
    sess_open(&s, run->port, "A", &run->transcript);
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        struct bytes req = {0}, want = {0};
        const char *set[] = {"SET", keys[i].p, values[i].p};
        const size_t set_lens[] = {3, keys[i].n, values[i].n};
        req_addv(&req, 3, set, set_lens);
        sess_do_raw(&s, req.data, req.len);
        sess_expect(&s, "+OK\r\n");
        req.len = 0;
        const char *get[] = {"GET", keys[i].p};
        const size_t get_lens[] = {3, keys[i].n};
        req_addv(&req, 2, get, get_lens);
        sess_do_raw(&s, req.data, req.len);
        bytes_append_bulk(&want, values[i].p, values[i].n);
        sess_expect_bytes(&s, want.data, want.len);
        bytes_free(&req);
        bytes_free(&want);
    }
    static const struct {
        int argc;
        const char *argv[4];
        size_t lens[4];
    } ops[] = {
        {3, {"APPEND", "\0\r\n", "\0\r\n"}, {6, 3, 3}},
        {4, {"HSET", "h", "\r\n", "\0"}, {4, 1, 2, 1}},
        {2, {"HGETALL", "h"}, {7, 1}},
        {4, {"RPUSH", "l", "\r\n", "\0"}, {5, 1, 2, 1}},
        {4, {"LRANGE", "l", "0", "-1"}, {6, 1, 1, 2}},
        {4, {"MGET", "a\r\nb", "\0", "\0\r\n"}, {4, 4, 1, 3}},
        {2, {"ECHO", "\xff\xfe\x00\x80"}, {4, 4}},
    };
    struct bytes req = {0};
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        req.len = 0;
        req_addv(&req, ops[i].argc, ops[i].argv, ops[i].lens);
        sess_do_raw(&s, req.data, req.len);
    }
    const char *all_ops[][2] = {{"ECHO", all}, {"STRLEN", all}, {"TYPE", all}};
    for (size_t i = 0; i < ARRAY_LEN(all_ops); i++) {
        const size_t lens[] = {strlen(all_ops[i][0]), 256};
        req.len = 0;
        req_addv(&req, 2, all_ops[i], lens);
        sess_do_raw(&s, req.data, req.len);
    }
    bytes_free(&req);
    sess_close(&s);
}

Test(compare, binary_keys_and_values)
{
    compare_scenario(&fx_redis, &fx_proxy, binary_scenario, NULL);
    proxy_finish(&fx_proxy);
}

#define BIG_VALUE_LEN (20 * 1024 * 1024)

static void big_value_scenario(struct run *run)
{
    char *value = malloc(BIG_VALUE_LEN);
    cr_assert(value != NULL);
    for (size_t i = 0; i < BIG_VALUE_LEN; i++)
        value[i] = (char)(i * 31 + 7);
    struct bytes req = {0}, want = {0};
    const char *set[] = {"SET", "big", value};
    const size_t set_lens[] = {3, 3, BIG_VALUE_LEN};
    req_addv(&req, 3, set, set_lens);
    struct sess s;
    sess_open(&s, run->port, "A", &run->transcript);
    sess_do_raw(&s, req.data, req.len);
    sess_expect(&s, "+OK\r\n");
    sess_do(&s, "GET big");
    bytes_append_bulk(&want, value, BIG_VALUE_LEN);
    sess_expect_bytes(&s, want.data, want.len);
    sess_do(&s, "STRLEN big\nGETRANGE big 10000000 10000015");
    sess_close(&s);
    bytes_free(&req);
    bytes_free(&want);
    free(value);
}

Test(compare, value_of_20mb)
{
    compare_scenario(&fx_redis, &fx_proxy, big_value_scenario, NULL);
    proxy_finish(&fx_proxy);
}

Test(compare, pipeline_of_10000_commands)
{
    struct bytes req = {0};
    for (int i = 0; i < 10000; i++) {
        char key[32], val[32], prev[32];
        snprintf(key, sizeof(key), "k:%d", i);
        snprintf(val, sizeof(val), "v:%d", i);
        snprintf(prev, sizeof(prev), "k:%d", i - 1);
        switch (i % 8) {
        case 0:
            req_add(&req, "SET", key, val, NULL);
            break;
        case 1:
            req_add(&req, "GET", prev, NULL);
            break;
        case 2:
            req_add(&req, "INCR", "counter", NULL);
            break;
        case 3:
            req_add(&req, "RPUSH", "list", val, NULL);
            break;
        case 4:
            req_add(&req, "LRANGE", "list", "-3", "-1", NULL);
            break;
        case 5:
            req_add(&req, "HSET", "hash", key, val, NULL);
            break;
        case 6:
            req_add(&req, i % 1000 == 6 ? "NOSUCHCMD" : "MGET", key, prev, "nokey", NULL);
            break;
        default:
            req_add(&req, "LPUSH", prev, "x", NULL); /* WRONGTYPE every other time */
            break;
        }
    }
    compare_stream(&fx_redis, &fx_proxy, req.data, req.len);
    bytes_free(&req);
    proxy_finish(&fx_proxy);
}

/* ---- inline commands ------------------------------------------------------------------ */

static const char *const INLINE[] = {
    "PING\r\n",
    "SET foo bar\r\n",
    "GET foo\n",
    "   GET    foo   \r\n",
    "get foo\r\n",
    "SET \"quoted key\" \"value with spaces\"\r\n",
    "GET \"quoted key\"\r\n",
    "SET hex \"\\x41\\x42\\x00\\x43\\r\\n\\t\\\\\"\r\n",
    "GET hex\r\n",
    "STRLEN hex\r\n",
    "SET single 'it\\'s \"here\"'\r\n",
    "GET single\r\n",
    "ECHO \"\\xzz\\q\"\r\n",
    "ECHO a\"b c\"\r\n",
    "ECHO \"\"\r\n",
    "ECHO ''\r\n",
    "MGET foo hex nokey\r\n",
    "NOSUCHCMD arg\r\n",
    "GET\r\n",
    "PING\r\nPING\nECHO x\r\n",
    "*1\r\n$4\r\nPING\r\nPING\r\n",
};

static void inline_scenario(struct run *run)
{
    struct sess s;
    sess_open(&s, run->port, "A", &run->transcript);
    for (size_t i = 0; i < ARRAY_LEN(INLINE); i++)
        sess_do_raw(&s, INLINE[i], strlen(INLINE[i]));
    static const char want[] = "$8\r\nAB\0C\r\n\t\\\r\n"; /* the \x escapes were decoded */
    sess_do(&s, "GET hex");
    sess_expect_bytes(&s, want, sizeof(want) - 1);
    sess_close(&s);
}

Test(compare, inline_commands)
{
    compare_scenario(&fx_redis, &fx_proxy, inline_scenario, NULL);
    proxy_finish(&fx_proxy);
}

/* ---- connection state ------------------------------------------------------------------- */

static void select_scenario(struct run *run)
{
    struct sess a, b, c;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_open(&b, run->port, "B", &run->transcript);
    sess_do(&a, "SELECT 3");
    sess_expect(&a, "+OK\r\n");
    sess_do(&a, "SET k in-db3");
    sess_do(&b, "GET k");
    sess_expect(&b, "$-1\r\n");
    sess_do(&b, "SET k in-db0");
    sess_do(&a, "GET k");
    sess_expect(&a, "$6\r\nin-db3\r\n");
    sess_do(&b, "GET k");
    sess_expect(&b, "$6\r\nin-db0\r\n");
    sess_open(&c, run->port, "C", &run->transcript);
    sess_do(&c, "GET k");
    sess_expect(&c, "$6\r\nin-db0\r\n");
    sess_do(&a, "DBSIZE\nSELECT 99\nMOVE k 0\nGET k");
    sess_do(&a, "SELECT 0\nGET k");
    sess_expect(&a, "+OK\r\n$6\r\nin-db0\r\n");
    sess_do(&b, "SELECT 3\nGET k");
    sess_expect(&b, "+OK\r\n$6\r\nin-db3\r\n");
    sess_do(&c, "GET k");
    sess_expect(&c, "$6\r\nin-db0\r\n");
    sess_close(&a);
    sess_close(&b);
    sess_close(&c);
    struct bytes in = redis_call(run->redis, "DBSIZE");
    cr_assert(bytes_equal_str(&in, ":1\r\n"), "db 0 should hold only k: %s", bytes_show(&in));
    bytes_free(&in);
}

Test(compare, select_db)
{
    compare_scenario(&fx_redis, &fx_proxy, select_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void client_name_scenario(struct run *run)
{
    struct sess a, b;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_open(&b, run->port, "B", &run->transcript);
    sess_do(&a, "CLIENT SETNAME myname");
    sess_expect(&a, "+OK\r\n");
    sess_do(&a, "CLIENT GETNAME");
    sess_expect(&a, "$6\r\nmyname\r\n");
    sess_do(&b, "CLIENT GETNAME");
    sess_expect(&b, "$-1\r\n");
    sess_do(&a, "CLIENT SETNAME \"bad name\"\nCLIENT GETNAME");
    sess_do(&b, "SET k v\nCLIENT GETNAME");
    sess_expect(&b, "+OK\r\n$-1\r\n");
    sess_do(&a, "CLIENT SETNAME \"\"\nCLIENT GETNAME");
    sess_expect(&a, "+OK\r\n$-1\r\n");
    sess_close(&a);
    sess_close(&b);
}

Test(compare, client_setname)
{
    compare_scenario(&fx_redis, &fx_proxy, client_name_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void reset_scenario(struct run *run)
{
    struct sess a;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_do(&a, "SET k in-db0\nSELECT 3\nSET k in-db3\nCLIENT SETNAME named");
    sess_do(&a, "RESET");
    sess_expect(&a, "+RESET\r\n");
    sess_do(&a, "GET k\nCLIENT GETNAME");
    sess_expect(&a, "$6\r\nin-db0\r\n$-1\r\n");
    sess_do(&a, "MULTI\nSET k x\nRESET\nGET k");
    sess_expect(&a, "+OK\r\n+QUEUED\r\n+RESET\r\n$6\r\nin-db0\r\n");
    sess_do_quiet(&a, "HELLO 3");
    sess_do(&a, "SUBSCRIBE ch\nRESET\nGET nokey");
    sess_expect(&a, ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n+RESET\r\n$-1\r\n");
    sess_close(&a);
}

Test(compare, reset_clears_connection_state)
{
    compare_scenario(&fx_redis, &fx_proxy, reset_scenario, NULL);
    proxy_finish(&fx_proxy);
}

/* Commands whose replies Redis suppresses: a proxy matching replies to
 * requests must not lose count. */
static const char *const CLIENT_REPLY[] = {
    "CLIENT REPLY SKIP\nSET a 1\nGET a",
    "CLIENT REPLY OFF\nSET b 2\nGET b\nCLIENT REPLY ON\nGET b",
    "CLIENT REPLY SKIP\nCLIENT REPLY SKIP\nGET a\nGET b",
    "CLIENT REPLY BAD",
};

Test(compare, client_reply_skip_and_off)
{
    COMPARE_STEPS(CLIENT_REPLY);
}

/* ---- transactions ------------------------------------------------------------------------ */

static const char *const MULTI_EXEC[] = {
    "MULTI\nSET a 1\nINCR a\nGET a\nEXEC",
    "SET s x",
    "MULTI\nINCR s\nSET t 1\nEXEC",
    "MULTI\nMULTI\nEXEC",
    "EXEC",
    "WATCH a\nMULTI\nINCR a\nEXEC",
    "WATCH a\nUNWATCH\nMULTI\nPING\nEXEC",
    "MULTI\nSELECT 2\nSET x in-db2\nEXEC",
    "GET x",
    "SELECT 0\nGET x",
    "MULTI\nWATCH x\nEXEC",
    "MULTI\nEXEC",
};

Test(compare, multi_exec)
{
    COMPARE_STEPS(MULTI_EXEC);
}

static void multi_discard_scenario(struct run *run)
{
    struct sess a;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_do(&a, "MULTI\nSET b 1\nINCR b\nDISCARD");
    sess_expect(&a, "+OK\r\n+QUEUED\r\n+QUEUED\r\n+OK\r\n");
    sess_do(&a, "GET b");
    sess_expect(&a, "$-1\r\n");
    sess_do(&a, "DISCARD\nWATCH b\nMULTI\nDISCARD\nSET b 2\nGET b");
    sess_close(&a);
}

Test(compare, multi_discard)
{
    compare_scenario(&fx_redis, &fx_proxy, multi_discard_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void exec_abort_scenario(struct run *run)
{
    struct sess a;
    sess_open(&a, run->port, "A", &run->transcript);
    const struct bytes *r = sess_do(&a, "MULTI\nSET c 1\nNOSUCHCMD x\nEXEC");
    cr_assert(r->data && strstr(r->data, "\r\n-EXECABORT Transaction discarded") != NULL,
              "EXEC after a queueing error: %s", bytes_show(r));
    sess_do(&a, "GET c");
    sess_expect(&a, "$-1\r\n");
    sess_do(&a, "MULTI\nSET c\nEXEC");
    sess_do(&a, "MULTI\nSET c 1\nGET c\nEXEC");
    sess_close(&a);
}

Test(compare, exec_abort)
{
    compare_scenario(&fx_redis, &fx_proxy, exec_abort_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void watch_scenario(struct run *run)
{
    struct sess a, b;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_open(&b, run->port, "B", &run->transcript);
    sess_do(&a, "SET w start\nWATCH w");
    sess_do(&b, "SET w other");
    sess_do(&a, "MULTI\nSET w mine\nEXEC");
    sess_expect(&a, "+OK\r\n+QUEUED\r\n*-1\r\n");
    sess_do(&a, "GET w");
    sess_expect(&a, "$5\r\nother\r\n");
    sess_do(&a, "WATCH w\nMULTI\nSET w mine\nEXEC");
    sess_expect(&a, "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
    sess_do(&b, "GET w");
    sess_expect(&b, "$4\r\nmine\r\n");
    sess_close(&a);
    sess_close(&b);
}

Test(compare, watch_conflict)
{
    compare_scenario(&fx_redis, &fx_proxy, watch_scenario, NULL);
    proxy_finish(&fx_proxy);
}

/* ---- scripting --------------------------------------------------------------------------- */

#define SHA_RETURN_ARGV1 "098e0f0d1448c0a81dafe820f66d460eb09263da"

static const char *const SCRIPTING[] = {
    "EVAL \"return 1\" 0",
    "EVAL \"return {1,2,{3,'four'},'five'}\" 0",
    "EVAL \"return redis.call('SET', KEYS[1], ARGV[1])\" 1 k v",
    "EVAL \"return redis.call('GET', KEYS[1])\" 1 k",
    "EVAL \"return redis.error_reply('boom')\" 0",
    "EVAL \"return redis.status_reply('FINE')\" 0",
    "EVAL \"return 3.99\" 0",
    "EVAL \"return nil\" 0",
    "EVAL \"return false\" 0",
    "EVAL \"return true\" 0",
    "EVAL \"this is not lua\" 0",
    "EVAL \"return redis.call('INCR', KEYS[1])\" 1 k",
    "EVAL \"return 1\" -1",
    "EVAL \"return 1\"",
    "SCRIPT LOAD \"return ARGV[1]\"",
    "EVALSHA " SHA_RETURN_ARGV1 " 0 hi",
    "EVALSHA_RO " SHA_RETURN_ARGV1 " 0 ro",
    "SCRIPT EXISTS " SHA_RETURN_ARGV1 " 0000000000000000000000000000000000000000",
    "EVALSHA 0000000000000000000000000000000000000000 0",
    "EVAL_RO \"return redis.call('GET', KEYS[1])\" 1 k",
    "EVAL_RO \"return redis.call('SET', KEYS[1], 'x')\" 1 k",
};

static void scripting_scenario(struct run *run)
{
    struct sess a;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_do_all(&a, SCRIPTING, ARRAY_LEN(SCRIPTING));
    struct bytes req = {0};
    req_add(&req, "FUNCTION", "LOAD",
            "#!lua name=mylib\n"
            "redis.register_function('myfunc', function(keys, args) return args[1] end)",
            NULL);
    sess_do_raw(&a, req.data, req.len);
    sess_expect(&a, "$5\r\nmylib\r\n");
    sess_do(&a, "FCALL myfunc 0 hello\nFCALL nosuch 0\nFUNCTION LIST");
    bytes_free(&req);
    sess_close(&a);
}

Test(compare, scripting)
{
    compare_scenario(&fx_redis, &fx_proxy, scripting_scenario, NULL);
    proxy_finish(&fx_proxy);
}

/* ---- pub/sub and blocking ------------------------------------------------------------- */

static void pubsub_scenario(struct run *run)
{
    struct sess a, b;
    sess_open(&a, run->port, "sub", &run->transcript);
    sess_open(&b, run->port, "pub", &run->transcript);
    sess_do(&a, "SUBSCRIBE ch1 ch2");
    sess_do(&a, "PSUBSCRIBE news.*");
    sess_do(&b, "PUBLISH ch1 hello");
    sess_expect(&b, ":1\r\n");
    sess_do(&b, "PUBLISH news.sport goal\nPUBLISH nobody x");
    sess_do(&a, NULL);
    sess_expect(&a, "*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n"
                    "*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$10\r\nnews.sport\r\n$4\r\ngoal\r\n");
    sess_do(&a, "GET k");
    sess_do(&a, "UNSUBSCRIBE ch1");
    sess_do(&b, "PUBLISH ch1 lost\nPUBLISH ch2 \"two words\"");
    sess_do(&a, NULL);
    sess_do(&a, "UNSUBSCRIBE\nPUNSUBSCRIBE");
    sess_do(&a, "GET k\nPUBSUB NUMSUB ch1 ch2");
    sess_expect(&a, "$-1\r\n*4\r\n$3\r\nch1\r\n:0\r\n$3\r\nch2\r\n:0\r\n");
    sess_close(&a);
    sess_close(&b);
}

Test(compare, pubsub)
{
    compare_scenario(&fx_redis, &fx_proxy, pubsub_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void blpop_scenario(struct run *run)
{
    struct sess a, b;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_open(&b, run->port, "B", &run->transcript);
    sess_send(&a, "BLPOP q 0");
    redis_wait_info(run->redis, "blocked_clients:1");
    sess_do(&b, "RPUSH q v1");
    sess_expect(&b, ":1\r\n");
    sess_do(&a, NULL);
    sess_expect(&a, "*2\r\n$1\r\nq\r\n$2\r\nv1\r\n");
    sess_send(&a, "BRPOP q1 q2 0");
    redis_wait_info(run->redis, "blocked_clients:1");
    sess_do(&b, "LPUSH q2 x");
    sess_do(&a, NULL);
    sess_expect(&a, "*2\r\n$2\r\nq2\r\n$1\r\nx\r\n");
    sess_send(&a, "BZPOPMIN zq 0");
    redis_wait_info(run->redis, "blocked_clients:1");
    sess_do(&b, "ZADD zq 1.5 m");
    sess_do(&a, NULL);
    sess_expect(&a, "*3\r\n$2\r\nzq\r\n$1\r\nm\r\n$3\r\n1.5\r\n");
    sess_do(&a, "BLPOP q 0.05\nSET after blocking");
    sess_expect(&a, "*-1\r\n+OK\r\n");
    sess_close(&a);
    sess_close(&b);
}

Test(compare, blpop_with_concurrent_push)
{
    compare_scenario(&fx_redis, &fx_proxy, blpop_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void resp3_scenario(struct run *run)
{
    struct sess a, b;
    sess_open(&a, run->port, "A", &run->transcript);
    sess_open(&b, run->port, "B", &run->transcript);
    const struct bytes *hello = sess_do_quiet(&a, "HELLO 3");
    cr_assert(hello->len > 4 && memcmp(hello->data, "%7\r\n", 4) == 0 &&
                  strstr(hello->data, "$5\r\nproto\r\n:3\r\n") != NULL,
              "HELLO 3: %s", bytes_show(hello));
    sess_do(&a, "HSET h f v g w");
    sess_do(&a, "HGETALL h");
    sess_expect(&a, "%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n");
    sess_do(&a, "GET nokey");
    sess_expect(&a, "_\r\n");
    sess_do(&a, "ZADD z 1.5 m\nZSCORE z m");
    sess_expect(&a, ":1\r\n,1.5\r\n");
    sess_do(&a, "ZRANGE z 0 -1 WITHSCORES\nZINCRBY z 1 m\nSADD s 1 2\nSMEMBERS s");
    sess_do(&a, "HMGET h f nofield\nBLPOP q 0.01\nINCRBYFLOAT x 1.5\nEXISTS h");
    sess_do(&a, "CLIENT TRACKING ON\nGET tracked");
    sess_do(&b, "SET tracked 1");
    sess_do(&a, NULL);
    sess_expect(&a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n");
    sess_do(&a, "CLIENT TRACKING OFF");
    sess_do(&a, "SUBSCRIBE ch");
    sess_expect(&a, ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    sess_do(&b, "PUBLISH ch hi");
    sess_expect(&b, ":1\r\n");
    sess_do(&a, NULL);
    sess_expect(&a, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    sess_do(&a, "GET nokey\nUNSUBSCRIBE ch");
    sess_do_quiet(&a, "HELLO 2");
    sess_do(&a, "GET nokey\nHGETALL h");
    sess_close(&a);
    sess_close(&b);
}

Test(compare, resp3_after_hello_3)
{
    compare_scenario(&fx_redis, &fx_proxy, resp3_scenario, NULL);
    proxy_finish(&fx_proxy);
}

/* Tests that start the proxy themselves, with their own settings. */
TestSuite(isolation, .init = fixture_redis, .fini = fixture_stop, .timeout = 120);

/* While clients are blocked, others are still served: with two pooled
 * connections and three blocked clients, a shared connection would be stuck. */
Test(isolation, blocked_clients_do_not_hold_up_others)
{
    static const char *const sets[] = {"upstream.pool_size=2", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct sess blocked[3], b;
    for (int i = 0; i < 3; i++) {
        sess_open(&blocked[i], fx_proxy.port, "blocked", NULL);
        sess_send(&blocked[i], "BLPOP q 0");
    }
    redis_wait_info(&fx_redis, "blocked_clients:3");
    sess_open(&b, fx_proxy.port, "B", NULL);
    for (int i = 0; i < 5; i++) {
        sess_do(&b, "SET k v\nGET k");
        sess_expect(&b, "+OK\r\n$1\r\nv\r\n");
    }
    sess_do(&b, "RPUSH q 1 2 3");
    sess_expect(&b, ":3\r\n");
    for (int i = 0; i < 3; i++) {
        const struct bytes *r = sess_do(&blocked[i], NULL);
        cr_assert(r->len == 18 && memcmp(r->data, "*2\r\n$1\r\nq\r\n$1\r\n", 15) == 0,
                  "blocked client %d got %s", i, bytes_show(r));
        sess_close(&blocked[i]);
    }
    sess_close(&b);
    proxy_finish(&fx_proxy);
}

/* Many clients pipelining at once over a small pool: each gets exactly its
 * own replies, in order, even when some replies are large. */
Test(isolation, concurrent_clients_get_their_own_replies)
{
    static const char *const sets[] = {"upstream.pool_size=2", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    enum { CLIENTS = 20, REQUESTS = 300 };
    int fds[CLIENTS];
    struct bytes in[CLIENTS] = {{0}}, want[CLIENTS] = {{0}}, req = {0}, arg = {0};
    for (int c = 0; c < CLIENTS; c++) {
        fds[c] = sock_connect_or_fail(fx_proxy.port);
        req.len = 0;
        for (int j = 0; j < REQUESTS; j++) {
            arg.len = 0;
            bytes_printf(&arg, "client-%d-request-%d-", c, j);
            while (j % 50 == 7 && arg.len < 100000) /* now and then a large reply */
                bytes_printf(&arg, "%d", c);
            const char *argv[] = {"ECHO", arg.data};
            const size_t lens[] = {4, arg.len};
            req_addv(&req, 2, argv, lens);
            bytes_append_bulk(&want[c], arg.data, arg.len);
        }
        cr_assert(sock_exchange(fds[c], req.data, req.len, &in[c], NULL, 0, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
    }
    for (int c = 0; c < CLIENTS; c++) {
        sock_status_e st = sock_read_replies(fds[c], &in[c], 0, REQUESTS, HARNESS_TIMEOUT_MS);
        cr_assert(st == SOCK_DONE, "client %d got %zu bytes", c, in[c].len);
        bytes_assert_equal("a client's replies", &want[c], &in[c]);
        close(fds[c]);
        bytes_free(&in[c]);
        bytes_free(&want[c]);
    }
    bytes_free(&req);
    bytes_free(&arg);
    proxy_finish(&fx_proxy);
}
