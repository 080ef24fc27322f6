/* types.c - end-to-end transparency tests of nearcache for every data type:
 * the same commands sent to a real redis-server directly and through the
 * proxy produce byte-identical replies, errors included.
 *
 * Every test starts its own redis-server and proxy on free ports (see
 * harness/) and ends with proxy_finish, so a crash or unclean exit is a failure.
 */
#include <criterion/criterion.h>

#include "harness/fixtures.h"
#include "harness/session.h"

TestSuite(types, .init = fixture_both, .fini = fixture_stop, .timeout = 120);

/* ---- data types ---------------------------------------------------------------- */

static const char *const STRINGS[] = {
    "SET s hello",
    "GET s",
    "APPEND s -world",
    "STRLEN s",
    "GETRANGE s 0 3",
    "SETRANGE s 2 XY",
    "GET s",
    "SUBSTR s 0 2",
    "SET n 10",
    "INCR n",
    "INCRBY n 5",
    "DECR n",
    "DECRBY n 3",
    "INCRBYFLOAT f 1.5",
    "INCRBYFLOAT f 0.1",
    "MSET a 1 b 2",
    "MGET a b nokey",
    "MSETNX a 1 c 3",
    "SETNX a 9",
    "GETSET a 3",
    "GETDEL b",
    "GET b",
    "SET e v EX 100",
    "PERSIST e",
    "TTL e",
    "SETEX se 100 v",
    "PSETEX pe 100000 v",
    "SET x v NX",
    "SET x w NX",
    "SET x w XX GET",
    "GETEX x PERSIST",
    "SET l1 ohmytext",
    "SET l2 mynewtext",
    "LCS l1 l2",
    "LCS l1 l2 LEN",
    "LCS l1 l2 IDX MINMATCHLEN 2 WITHMATCHLEN",
    "SET empty \"\"",
    "GET empty",
    "SET sp \"with space\"",
    "GET sp",
    "EXISTS s nokey a",
    "TYPE s",
    "OBJECT ENCODING n",
    "RENAME s s2",
    "GET s",
    "GET s2",
    "DEL a nokey",
    "STRLEN nokey",
    "get s2",
    "INCR s2",
    "INCRBYFLOAT s2 1",
    "GET",
    "SET k",
    "SET k v EX -1",
    "SET k v EX abc",
    "SET k v BADOPT",
    "RENAME nokey x",
    "LPUSH s2 x",
    "NOSUCHCMD a b",
};

Test(types, strings)
{
    COMPARE_STEPS(STRINGS);
}

static const char *const LISTS[] = {
    "RPUSH l a b c d",
    "LPUSH l z",
    "LRANGE l 0 -1",
    "LLEN l",
    "LINDEX l 1",
    "LINDEX l 100",
    "LSET l 0 Z",
    "LSET l 100 x",
    "LINSERT l BEFORE b bb",
    "LINSERT l AFTER nosuch x",
    "LREM l 1 bb",
    "LPOS l c",
    "LPOS l nosuch",
    "LPOS l c RANK -1 COUNT 0",
    "LPOP l",
    "RPOP l 2",
    "LPOP l 0",
    "LPOP nokey",
    "LRANGE l 0 -1",
    "RPUSH l2 x y",
    "LMOVE l l2 LEFT RIGHT",
    "RPOPLPUSH l2 l",
    "LMPOP 2 nokey l2 LEFT COUNT 5",
    "LPUSHX nokey a",
    "RPUSHX l q",
    "LTRIM l 0 0",
    "LRANGE l 0 -1",
    "BLPOP empty 0.01",
    "BRPOP l 0.01",
    "BLMOVE empty l LEFT LEFT 0.01",
    "BLMPOP 0.01 1 empty LEFT",
    "EXISTS l",
    "LPUSH",
    "LRANGE l a b",
    "LPOP l -1",
    "SET str x",
    "LPUSH str a",
    "RPUSH l2 1 2",
    "GET l2",
    "NOSUCHCMD",
};

Test(types, lists)
{
    COMPARE_STEPS(LISTS);
}

static const char *const HASHES[] = {
    "HSET h f1 v1 f2 v2 n 5",
    "HGET h f1",
    "HGET h nofield",
    "HMGET h f1 nofield f2",
    "HGETALL h",
    "HKEYS h",
    "HVALS h",
    "HLEN h",
    "HEXISTS h f1",
    "HEXISTS h zz",
    "HDEL h f2 zz",
    "HINCRBY h n 5",
    "HINCRBYFLOAT h fl 2.5",
    "HSETNX h f1 x",
    "HSETNX h f3 x",
    "HSTRLEN h f1",
    "HMSET h a 1 b 2",
    "HSCAN h 0",
    "HSCAN h 0 MATCH f* COUNT 100",
    "HGETALL h",
    "HGETALL nokey",
    "HSET h f",
    "HINCRBY h f1 1",
    "HINCRBYFLOAT h f1 x",
    "SET str x",
    "HGET str f",
    "HSET str f v",
    "HGET",
};

Test(types, hashes)
{
    COMPARE_STEPS(HASHES);
}

static const char *const SETS[] = {
    "SADD s 3 1 2",
    "SADD s 2",
    "SMEMBERS s",
    "SISMEMBER s 1",
    "SISMEMBER s 9",
    "SMISMEMBER s 1 9",
    "SCARD s",
    "SADD t 3 4 5",
    "SINTER s t",
    "SUNION s t",
    "SDIFF s t",
    "SINTERCARD 2 s t",
    "SINTERSTORE d s t",
    "SMEMBERS d",
    "SUNIONSTORE u s t",
    "SCARD u",
    "SDIFFSTORE df s t",
    "SMEMBERS df",
    "SMOVE s t 1",
    "SREM s 2 99",
    "SMEMBERS s",
    "SMEMBERS t",
    "SSCAN t 0",
    "SADD w pear apple fig",
    "SORT w ALPHA",
    "SORT s",
    "SRANDMEMBER s",
    "SPOP s",
    "SPOP s",
    "SMEMBERS nokey",
    "SADD s",
    "SINTERCARD 0 s",
    "SET str x",
    "SADD str a",
    "SINTER str t",
};

Test(types, sets)
{
    COMPARE_STEPS(SETS);
}

static const char *const ZSETS[] = {
    "ZADD z 1 a 2 b 3 c",
    "ZADD z 2.5 d",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZRANGE z 0 -1 REV",
    "ZRANGE z (1 +inf BYSCORE LIMIT 0 2",
    "ZRANGEBYSCORE z -inf 2 WITHSCORES",
    "ZREVRANGEBYSCORE z +inf (2",
    "ZSCORE z b",
    "ZSCORE z nosuch",
    "ZMSCORE z a nosuch",
    "ZINCRBY z 1.5 a",
    "ZINCRBY z 0.1 a",
    "ZRANK z c",
    "ZREVRANK z c",
    "ZRANK z nosuch",
    "ZCOUNT z -inf +inf",
    "ZCARD z",
    "ZREM z d nosuch",
    "ZADD lex 0 a 0 b 0 c 0 d",
    "ZRANGEBYLEX lex [b (d",
    "ZLEXCOUNT lex - +",
    "ZADD z2 10 a 20 x",
    "ZUNIONSTORE zu 2 z z2 WEIGHTS 1 2",
    "ZRANGE zu 0 -1 WITHSCORES",
    "ZINTER 2 z z2 WITHSCORES",
    "ZDIFF 2 z z2",
    "ZPOPMIN z",
    "ZPOPMAX z 2",
    "ZADD z NX 9 b",
    "ZADD z XX CH 9 b",
    "ZADD z INCR 1 b",
    "ZADD z GT 1 b",
    "ZRANGESTORE dst z 0 -1",
    "ZMPOP 1 z MIN",
    "BZPOPMIN nokey 0.01",
    "ZADD z abc a",
    "ZADD z 1",
    "ZADD z NX XX 1 a",
    "ZADD inf +inf a -inf b",
    "ZRANGE inf 0 -1 WITHSCORES",
    "SET str x",
    "ZADD str 1 a",
};

Test(types, zsets)
{
    COMPARE_STEPS(ZSETS);
}

static const char *const STREAMS[] = {
    "XADD st 1-1 f v",
    "XADD st 2-1 f2 v2 a b",
    "XADD st 1-1 x y",
    "XADD st 3-0 k v",
    "XLEN st",
    "XRANGE st - +",
    "XRANGE st - + COUNT 1",
    "XREVRANGE st + - COUNT 2",
    "XREAD COUNT 2 STREAMS st 0",
    "XREAD STREAMS st 3-0",
    "XGROUP CREATE st g 0",
    "XGROUP CREATE st g 0",
    "XREADGROUP GROUP g c1 COUNT 1 STREAMS st >",
    "XREADGROUP GROUP g c1 STREAMS st 0",
    "XPENDING st g",
    "XACK st g 1-1",
    "XREADGROUP GROUP g c1 COUNT 2 STREAMS st >",
    "XPENDING st g",
    "XCLAIM st g c2 0 2-1 JUSTID",
    "XINFO STREAM st",
    "XINFO GROUPS st",
    "XDEL st 3-0",
    "XTRIM st MAXLEN 1",
    "XRANGE st - +",
    "XSETID st 10-0",
    "XADD st 5-0 a b",
    "XADD nost NOMKSTREAM * a b",
    "EXISTS nost",
    "XADD st",
    "XREAD STREAMS st",
    "XINFO STREAM nokey",
    "SET str x",
    "XRANGE str - +",
};

Test(types, streams)
{
    COMPARE_STEPS(STREAMS);
}

static const char *const HYPERLOGLOG[] = {
    "PFADD hll a b c d",     "PFADD hll a",  "PFCOUNT hll", "PFADD hll2 c d e", "PFCOUNT hll hll2",
    "PFMERGE hll3 hll hll2", "PFCOUNT hll3", "GET hll",     "GET hll3",         "PFADD empty",
    "PFCOUNT nokey",         "PFCOUNT",      "SET str x",   "PFADD str a",      "PFCOUNT str",
    "LPUSH lst a",           "PFADD lst a",
};

Test(types, hyperloglog)
{
    COMPARE_STEPS(HYPERLOGLOG);
}

static const char *const BITMAPS[] = {
    "SETBIT b 7 1",
    "SETBIT b 7 0",
    "SETBIT b 100 1",
    "GETBIT b 100",
    "GETBIT b 1000",
    "BITCOUNT b",
    "BITPOS b 1",
    "BITPOS b 0",
    "SET bs foobar",
    "BITCOUNT bs",
    "BITCOUNT bs 1 1",
    "BITCOUNT bs 5 30 BIT",
    "BITPOS bs 1 2 -1 BYTE",
    "BITOP AND dest b bs",
    "BITOP NOT dn bs",
    "GET dn",
    "GET b",
    "BITFIELD bf SET u8 0 255 GET u8 0 INCRBY u4 0 1 OVERFLOW SAT INCRBY u4 4 100",
    "BITFIELD_RO bf GET i8 0",
    "GET bf",
    "BITFIELD bf GET u99 0",
    "SETBIT b -1 1",
    "SETBIT b 1 2",
    "BITOP BAD d b",
    "BITCOUNT",
    "LPUSH lst a",
    "SETBIT lst 1 1",
};

Test(types, bitmaps)
{
    COMPARE_STEPS(BITMAPS);
}

static const char *const GEO[] = {
    "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEOADD g NX 13.361389 38.115556 Palermo",
    "GEODIST g Palermo Catania",
    "GEODIST g Palermo Catania km",
    "GEODIST g Palermo nosuch",
    "GEOPOS g Palermo nosuch",
    "GEOHASH g Palermo Catania",
    "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHDIST WITHCOORD WITHHASH",
    "GEOSEARCH g FROMMEMBER Palermo BYBOX 400 400 km DESC COUNT 1",
    "GEORADIUS g 15 37 200 km WITHDIST",
    "GEORADIUSBYMEMBER g Palermo 100 km",
    "GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
    "ZRANGE gs 0 -1 WITHSCORES",
    "ZRANGE g 0 -1 WITHSCORES",
    "GEOADD g 200 100 bad",
    "GEOADD g 1 2",
    "GEOSEARCH g FROMLONLAT 15 37",
    "SET str x",
    "GEOADD str 1 1 a",
};

Test(types, geo)
{
    COMPARE_STEPS(GEO);
}

static const char *const ERRORS[] = {
    "NOSUCHCMD",
    "NOSUCHCMD a b c",
    "nosuchcmd \"with space\"",
    "\"\"",
    "GET",
    "GET a b",
    "SET a",
    "PING a b",
    "HSET h f",
    "SET str x",
    "LPUSH str a",
    "HGET str f",
    "SADD str a",
    "ZADD str 1 a",
    "XADD str * a b",
    "INCR str",
    "gEt str",
    "OBJECT NOSUCH",
    "CLIENT NOSUCH",
};

Test(types, errors)
{
    COMPARE_STEPS(ERRORS);
}
