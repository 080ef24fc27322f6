/* command_builtin.c - the built-in command table: every Redis 7.0 command and
 * subcommand with its arity, flags and key specs, for when COMMAND cannot be
 * asked. tests/redis/introspect.c checks it against a live Redis's COMMAND. */
#include "proxy/proto/command.h"

#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_LINE_MAX 512

/* Flag words separated by sep ("-" for none) into bits; -1 on an unknown one. */
static int parse_words(char *s, const char *sep, unsigned (*find)(const char *, size_t),
                       unsigned *out)
{
    char *save = NULL;

    *out = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (char *w = strtok_r(s, sep, &save); w != NULL; w = strtok_r(NULL, sep, &save)) {
        unsigned bit = find(w, strlen(w));
        if (bit == 0)
            return -1;
        *out |= bit;
    }
    return 0;
}

/* "i<index>", "k<KEYWORD>,<startfrom>" or "?". */
static int parse_begin(const char *s, struct keys_spec *sp)
{
    const char *comma = strrchr(s, ',');
    int n = -1;

    if (s[0] == '?' && s[1] == '\0')
        return 0;
    if (s[0] == 'i') {
        sp->bs = KEYS_BS_INDEX;
        return sscanf(s + 1, "%d%n", &sp->index, &n) == 1 && s[1 + n] == '\0' ? 0 : -1;
    }
    if (s[0] != 'k' || comma == NULL || comma - s - 1 > KEYS_KEYWORD_MAX)
        return -1;
    sp->bs = KEYS_BS_KEYWORD;
    memcpy(sp->keyword, s + 1, (size_t)(comma - s - 1));
    sp->keyword[comma - s - 1] = '\0';
    return sscanf(comma + 1, "%d%n", &sp->startfrom, &n) == 1 && comma[1 + n] == '\0' ? 0 : -1;
}

/* "r<lastkey>,<keystep>,<limit>", "n<keynumidx>,<firstkey>,<keystep>" or "?". */
static int parse_find(const char *s, struct keys_spec *sp)
{
    int a, b, c, n = -1;

    if (s[0] == '?' && s[1] == '\0')
        return 0;
    if ((s[0] != 'r' && s[0] != 'n') || sscanf(s + 1, "%d,%d,%d%n", &a, &b, &c, &n) != 3 ||
        s[1 + n] != '\0')
        return -1;
    if (s[0] == 'r') {
        sp->fk = KEYS_FK_RANGE;
        sp->lastkey = a;
        sp->limit = c;
        sp->keystep = b;
    } else {
        sp->fk = KEYS_FK_KEYNUM;
        sp->keynumidx = a;
        sp->firstkey = b;
        sp->keystep = c;
    }
    return 0;
}

/* "<flags>/<begin>/<find>", flags as "RW|access|update" or "-". */
static int parse_spec(char *s, struct keys_spec *sp)
{
    char *save = NULL;
    char *flags = strtok_r(s, "/", &save);
    char *begin = strtok_r(NULL, "/", &save);
    char *find = strtok_r(NULL, "/", &save);

    *sp = (struct keys_spec){0};
    if (find == NULL || strtok_r(NULL, "/", &save) != NULL)
        return -1;
    if (parse_words(flags, "|", keys_key_flag, &sp->flags) < 0)
        return -1;
    return parse_begin(begin, sp) < 0 ? -1 : parse_find(find, sp);
}

/* "<name> <arity> <flags> <spec>..." with flags as "write,denyoom" or "-". */
static int parse_line(const char *line, struct command *cmd)
{
    char copy[KEYS_LINE_MAX], *save = NULL, *name, *arity, *flags, *end;

    if (strlen(line) >= sizeof(copy))
        return -1;
    strcpy(copy, line);
    *cmd = (struct command){0};
    name = strtok_r(copy, " ", &save);
    arity = strtok_r(NULL, " ", &save);
    flags = strtok_r(NULL, " ", &save);
    if (flags == NULL || strlen(name) > COMMAND_NAME_MAX)
        return -1;
    strcpy(cmd->name, name);
    cmd->arity = (int)strtol(arity, &end, 10);
    if (*end != '\0' || parse_words(flags, ",", command_flag, &cmd->flags) < 0)
        return -1;
    for (char *s = strtok_r(NULL, " ", &save); s != NULL; s = strtok_r(NULL, " ", &save)) {
        if (cmd->nspecs == KEYS_SPECS_MAX || parse_spec(s, &cmd->specs[cmd->nspecs++]) < 0)
            return -1;
    }
    return 0;
}

/* Redis 7.0.15's COMMAND reply, one command or subcommand per line:
 *   name arity flags spec...
 * flags: the COMMAND_* ones, comma-separated, "-" for none; "container"
 * marks a command with subcommands. spec: flags/begin_search/find_keys, with
 * the key flags "|"-separated; begin_search "i<index>" or
 * "k<KEYWORD>,<startfrom>"; find_keys "r<lastkey>,<keystep>,<limit>" or
 * "n<keynumidx>,<firstkey>,<keystep>"; "?" for "unknown". */
static const char *const BUILTIN[] = {
    "acl -2 container",
    "acl|cat -2 noscript",
    "acl|deluser -3 admin,noscript",
    "acl|dryrun -4 admin,noscript",
    "acl|genpass -2 noscript",
    "acl|getuser 3 admin,noscript",
    "acl|help 2 -",
    "acl|list 2 admin,noscript",
    "acl|load 2 admin,noscript",
    "acl|log -2 admin,noscript",
    "acl|save 2 admin,noscript",
    "acl|setuser -3 admin,noscript",
    "acl|users 2 admin,noscript",
    "acl|whoami 2 noscript",
    "append 3 write,denyoom RW|insert/i1/r0,1,0",
    "asking 1 -",
    "auth -2 noscript",
    "bgrewriteaof 1 admin,noscript",
    "bgsave -1 admin,noscript",
    "bitcount -2 readonly RO|access/i1/r0,1,0",
    "bitfield -2 write,denyoom RW|access|update|variable_flags/i1/r0,1,0",
    "bitfield_ro -2 readonly RO|access/i1/r0,1,0",
    "bitop -4 write,denyoom OW|update/i2/r0,1,0 RO|access/i3/r-1,1,0",
    "bitpos -3 readonly RO|access/i1/r0,1,0",
    "blmove 6 write,denyoom,blocking,noscript RW|access|delete/i1/r0,1,0 RW|insert/i2/r0,1,0",
    "blmpop -5 write,blocking,movablekeys RW|access|delete/i2/n0,1,1",
    "blpop -3 write,blocking,noscript RW|access|delete/i1/r-2,1,0",
    "brpop -3 write,blocking,noscript RW|access|delete/i1/r-2,1,0",
    "brpoplpush 4 write,denyoom,blocking,noscript RW|access|delete/i1/r0,1,0 RW|insert/i2/r0,1,0",
    "bzmpop -5 write,blocking,movablekeys RW|access|delete/i2/n0,1,1",
    "bzpopmax -3 write,blocking,noscript RW|access|delete/i1/r-2,1,0",
    "bzpopmin -3 write,blocking,noscript RW|access|delete/i1/r-2,1,0",
    "client -2 container",
    "client|caching 3 noscript",
    "client|getname 2 noscript",
    "client|getredir 2 noscript",
    "client|help 2 -",
    "client|id 2 noscript",
    "client|info 2 noscript",
    "client|kill -3 admin,noscript",
    "client|list -2 admin,noscript",
    "client|no-evict 3 admin,noscript",
    "client|pause -3 admin,noscript",
    "client|reply 3 noscript",
    "client|setname 3 noscript",
    "client|tracking -3 noscript",
    "client|trackinginfo 2 noscript",
    "client|unblock -3 admin,noscript",
    "client|unpause 2 admin,noscript",
    "cluster -2 container",
    "cluster|addslots -3 admin",
    "cluster|addslotsrange -4 admin",
    "cluster|bumpepoch 2 admin",
    "cluster|count-failure-reports 3 admin",
    "cluster|countkeysinslot 3 -",
    "cluster|delslots -3 admin",
    "cluster|delslotsrange -4 admin",
    "cluster|failover -2 admin",
    "cluster|flushslots 2 admin",
    "cluster|forget 3 admin",
    "cluster|getkeysinslot 4 -",
    "cluster|help 2 -",
    "cluster|info 2 -",
    "cluster|keyslot 3 -",
    "cluster|links 2 -",
    "cluster|meet -4 admin",
    "cluster|myid 2 -",
    "cluster|nodes 2 -",
    "cluster|replicas 3 admin",
    "cluster|replicate 3 admin",
    "cluster|reset -2 admin,noscript",
    "cluster|saveconfig 2 admin",
    "cluster|set-config-epoch 3 admin",
    "cluster|setslot -4 admin",
    "cluster|shards 2 -",
    "cluster|slaves 3 admin",
    "cluster|slots 2 -",
    "command -1 container",
    "command|count 2 -",
    "command|docs -2 -",
    "command|getkeys -4 -",
    "command|getkeysandflags -4 -",
    "command|help 2 -",
    "command|info -2 -",
    "command|list -2 -",
    "config -2 container",
    "config|get -3 admin,noscript",
    "config|help 2 -",
    "config|resetstat 2 admin,noscript",
    "config|rewrite 2 admin,noscript",
    "config|set -4 admin,noscript",
    "copy -3 write,denyoom RO|access/i1/r0,1,0 OW|update/i2/r0,1,0",
    "dbsize 1 readonly",
    "debug -2 admin,noscript",
    "decr 2 write,denyoom RW|access|update/i1/r0,1,0",
    "decrby 3 write,denyoom RW|access|update/i1/r0,1,0",
    "del -2 write RM|delete/i1/r-1,1,0",
    "discard 1 noscript",
    "dump 2 readonly RO|access/i1/r0,1,0",
    "echo 2 -",
    "eval -3 movablekeys,no_mandatory_keys,noscript RW|access|update/i2/n0,1,1",
    "eval_ro -3 readonly,movablekeys,no_mandatory_keys,noscript RO|access/i2/n0,1,1",
    "evalsha -3 movablekeys,no_mandatory_keys,noscript RW|access|update/i2/n0,1,1",
    "evalsha_ro -3 readonly,movablekeys,no_mandatory_keys,noscript RO|access/i2/n0,1,1",
    "exec 1 noscript",
    "exists -2 readonly RO/i1/r-1,1,0",
    "expire -3 write RW|update/i1/r0,1,0",
    "expireat -3 write RW|update/i1/r0,1,0",
    "expiretime 2 readonly RO|access/i1/r0,1,0",
    "failover -1 admin,noscript",
    "fcall -3 movablekeys,no_mandatory_keys,noscript RW|access|update/i2/n0,1,1",
    "fcall_ro -3 readonly,movablekeys,no_mandatory_keys,noscript RO|access/i2/n0,1,1",
    "flushall -1 write",
    "flushdb -1 write",
    "function -2 container",
    "function|delete 3 write,noscript",
    "function|dump 2 noscript",
    "function|flush -2 write,noscript",
    "function|help 2 -",
    "function|kill 2 noscript",
    "function|list -2 noscript",
    "function|load -3 write,denyoom,noscript",
    "function|restore -3 write,denyoom,noscript",
    "function|stats 2 noscript",
    "geoadd -5 write,denyoom RW|update/i1/r0,1,0",
    "geodist -4 readonly RO|access/i1/r0,1,0",
    "geohash -2 readonly RO|access/i1/r0,1,0",
    "geopos -2 readonly RO|access/i1/r0,1,0",
    "georadius -6 write,denyoom,movablekeys RO|access/i1/r0,1,0 OW|update/kSTORE,6/r0,1,0 "
    "OW|update/kSTOREDIST,6/r0,1,0",
    "georadius_ro -6 readonly RO|access/i1/r0,1,0",
    "georadiusbymember -5 write,denyoom,movablekeys RO|access/i1/r0,1,0 OW|update/kSTORE,5/r0,1,0 "
    "OW|update/kSTOREDIST,5/r0,1,0",
    "georadiusbymember_ro -5 readonly RO|access/i1/r0,1,0",
    "geosearch -7 readonly RO|access/i1/r0,1,0",
    "geosearchstore -8 write,denyoom OW|update/i1/r0,1,0 RO|access/i2/r0,1,0",
    "get 2 readonly RO|access/i1/r0,1,0",
    "getbit 3 readonly RO|access/i1/r0,1,0",
    "getdel 2 write RW|access|delete/i1/r0,1,0",
    "getex -2 write RW|access|update/i1/r0,1,0",
    "getrange 4 readonly RO|access/i1/r0,1,0",
    "getset 3 write,denyoom RW|access|update/i1/r0,1,0",
    "hdel -3 write RW|delete/i1/r0,1,0",
    "hello -1 noscript",
    "hexists 3 readonly RO/i1/r0,1,0",
    "hget 3 readonly RO|access/i1/r0,1,0",
    "hgetall 2 readonly RO|access/i1/r0,1,0",
    "hincrby 4 write,denyoom RW|access|update/i1/r0,1,0",
    "hincrbyfloat 4 write,denyoom RW|access|update/i1/r0,1,0",
    "hkeys 2 readonly RO|access/i1/r0,1,0",
    "hlen 2 readonly RO/i1/r0,1,0",
    "hmget -3 readonly RO|access/i1/r0,1,0",
    "hmset -4 write,denyoom RW|update/i1/r0,1,0",
    "hrandfield -2 readonly RO|access/i1/r0,1,0",
    "hscan -3 readonly RO|access/i1/r0,1,0",
    "hset -4 write,denyoom RW|update/i1/r0,1,0",
    "hsetnx 4 write,denyoom RW|insert/i1/r0,1,0",
    "hstrlen 3 readonly RO/i1/r0,1,0",
    "hvals 2 readonly RO|access/i1/r0,1,0",
    "incr 2 write,denyoom RW|access|update/i1/r0,1,0",
    "incrby 3 write,denyoom RW|access|update/i1/r0,1,0",
    "incrbyfloat 3 write,denyoom RW|access|update/i1/r0,1,0",
    "info -1 -",
    "keys 2 readonly",
    "lastsave 1 -",
    "latency -2 container",
    "latency|doctor 2 admin,noscript",
    "latency|graph 3 admin,noscript",
    "latency|help 2 -",
    "latency|histogram -2 admin,noscript",
    "latency|history 3 admin,noscript",
    "latency|latest 2 admin,noscript",
    "latency|reset -2 admin,noscript",
    "lcs -3 readonly RO|access/i1/r1,1,0",
    "lindex 3 readonly RO|access/i1/r0,1,0",
    "linsert 5 write,denyoom RW|insert/i1/r0,1,0",
    "llen 2 readonly RO/i1/r0,1,0",
    "lmove 5 write,denyoom RW|access|delete/i1/r0,1,0 RW|insert/i2/r0,1,0",
    "lmpop -4 write,movablekeys RW|access|delete/i1/n0,1,1",
    "lolwut -1 readonly",
    "lpop -2 write RW|access|delete/i1/r0,1,0",
    "lpos -3 readonly RO|access/i1/r0,1,0",
    "lpush -3 write,denyoom RW|insert/i1/r0,1,0",
    "lpushx -3 write,denyoom RW|insert/i1/r0,1,0",
    "lrange 4 readonly RO|access/i1/r0,1,0",
    "lrem 4 write RW|delete/i1/r0,1,0",
    "lset 4 write,denyoom RW|update/i1/r0,1,0",
    "ltrim 4 write RW|delete/i1/r0,1,0",
    "memory -2 container",
    "memory|doctor 2 -",
    "memory|help 2 -",
    "memory|malloc-stats 2 -",
    "memory|purge 2 -",
    "memory|stats 2 -",
    "memory|usage -3 readonly RO/i2/r0,1,0",
    "mget -2 readonly RO|access/i1/r-1,1,0",
    "migrate -6 write,movablekeys RW|access|delete/i3/r0,1,0 "
    "RW|access|delete|incomplete/kKEYS,-2/r-1,1,0",
    "module -2 container",
    "module|help 2 -",
    "module|list 2 admin,noscript",
    "module|load -3 admin,noscript",
    "module|loadex -3 admin,noscript",
    "module|unload 3 admin,noscript",
    "monitor 1 admin,noscript",
    "move 3 write RW|access|update/i1/r0,1,0",
    "mset -3 write,denyoom OW|update/i1/r-1,2,0",
    "msetnx -3 write,denyoom OW|insert/i1/r-1,2,0",
    "multi 1 noscript",
    "object -2 container",
    "object|encoding 3 readonly RO/i2/r0,1,0",
    "object|freq 3 readonly RO/i2/r0,1,0",
    "object|help 2 -",
    "object|idletime 3 readonly RO/i2/r0,1,0",
    "object|refcount 3 readonly RO/i2/r0,1,0",
    "persist 2 write RW|update/i1/r0,1,0",
    "pexpire -3 write RW|update/i1/r0,1,0",
    "pexpireat -3 write RW|update/i1/r0,1,0",
    "pexpiretime 2 readonly RO|access/i1/r0,1,0",
    "pfadd -2 write,denyoom RW|insert/i1/r0,1,0",
    "pfcount -2 readonly RW|access/i1/r-1,1,0",
    "pfdebug 3 write,denyoom,admin RW|access/i2/r0,1,0",
    "pfmerge -2 write,denyoom RW|access|insert/i1/r0,1,0 RO|access/i2/r-1,1,0",
    "pfselftest 1 admin",
    "ping -1 -",
    "psetex 4 write,denyoom OW|update/i1/r0,1,0",
    "psubscribe -2 pubsub,noscript",
    "psync -3 admin,noscript",
    "pttl 2 readonly RO|access/i1/r0,1,0",
    "publish 3 pubsub",
    "pubsub -2 container",
    "pubsub|channels -2 pubsub",
    "pubsub|help 2 -",
    "pubsub|numpat 2 pubsub",
    "pubsub|numsub -2 pubsub",
    "pubsub|shardchannels -2 pubsub",
    "pubsub|shardnumsub -2 pubsub",
    "punsubscribe -1 pubsub,noscript",
    "quit -1 noscript",
    "randomkey 1 readonly",
    "readonly 1 -",
    "readwrite 1 -",
    "rename 3 write RW|access|delete/i1/r0,1,0 OW|update/i2/r0,1,0",
    "renamenx 3 write RW|access|delete/i1/r0,1,0 OW|insert/i2/r0,1,0",
    "replconf -1 admin,noscript",
    "replicaof 3 admin,noscript",
    "reset 1 noscript",
    "restore -4 write,denyoom OW|update/i1/r0,1,0",
    "restore-asking -4 write,denyoom OW|update/i1/r0,1,0",
    "role 1 noscript",
    "rpop -2 write RW|access|delete/i1/r0,1,0",
    "rpoplpush 3 write,denyoom RW|access|delete/i1/r0,1,0 RW|insert/i2/r0,1,0",
    "rpush -3 write,denyoom RW|insert/i1/r0,1,0",
    "rpushx -3 write,denyoom RW|insert/i1/r0,1,0",
    "sadd -3 write,denyoom RW|insert/i1/r0,1,0",
    "save 1 admin,noscript",
    "scan -2 readonly",
    "scard 2 readonly RO/i1/r0,1,0",
    "script -2 container",
    "script|debug 3 noscript",
    "script|exists -3 noscript",
    "script|flush -2 noscript",
    "script|help 2 -",
    "script|kill 2 noscript",
    "script|load 3 noscript",
    "sdiff -2 readonly RO|access/i1/r-1,1,0",
    "sdiffstore -3 write,denyoom OW|update/i1/r0,1,0 RO|access/i2/r-1,1,0",
    "select 2 -",
    "set -3 write,denyoom RW|access|update|variable_flags/i1/r0,1,0",
    "setbit 4 write,denyoom RW|access|update/i1/r0,1,0",
    "setex 4 write,denyoom OW|update/i1/r0,1,0",
    "setnx 3 write,denyoom OW|insert/i1/r0,1,0",
    "setrange 4 write,denyoom RW|update/i1/r0,1,0",
    "shutdown -1 admin,noscript",
    "sinter -2 readonly RO|access/i1/r-1,1,0",
    "sintercard -3 readonly,movablekeys RO|access/i1/n0,1,1",
    "sinterstore -3 write,denyoom RW|update/i1/r0,1,0 RO|access/i2/r-1,1,0",
    "sismember 3 readonly RO/i1/r0,1,0",
    "slaveof 3 admin,noscript",
    "slowlog -2 container",
    "slowlog|get -2 admin",
    "slowlog|help 2 -",
    "slowlog|len 2 admin",
    "slowlog|reset 2 admin",
    "smembers 2 readonly RO|access/i1/r0,1,0",
    "smismember -3 readonly RO|access/i1/r0,1,0",
    "smove 4 write RW|access|delete/i1/r0,1,0 RW|insert/i2/r0,1,0",
    "sort -2 write,denyoom,movablekeys RO|access/i1/r0,1,0 RO|access/?/? OW|update/?/?",
    "sort_ro -2 readonly,movablekeys RO|access/i1/r0,1,0 RO|access/?/?",
    "spop -2 write RW|access|delete/i1/r0,1,0",
    "spublish 3 pubsub not_key/i1/r0,1,0",
    "srandmember -2 readonly RO|access/i1/r0,1,0",
    "srem -3 write RW|delete/i1/r0,1,0",
    "sscan -3 readonly RO|access/i1/r0,1,0",
    "ssubscribe -2 pubsub,noscript not_key/i1/r-1,1,0",
    "strlen 2 readonly RO/i1/r0,1,0",
    "subscribe -2 pubsub,noscript",
    "substr 4 readonly RO|access/i1/r0,1,0",
    "sunion -2 readonly RO|access/i1/r-1,1,0",
    "sunionstore -3 write,denyoom OW|update/i1/r0,1,0 RO|access/i2/r-1,1,0",
    "sunsubscribe -1 pubsub,noscript not_key/i1/r-1,1,0",
    "swapdb 3 write",
    "sync 1 admin,noscript",
    "time 1 -",
    "touch -2 readonly RO/i1/r-1,1,0",
    "ttl 2 readonly RO|access/i1/r0,1,0",
    "type 2 readonly RO/i1/r0,1,0",
    "unlink -2 write RM|delete/i1/r-1,1,0",
    "unsubscribe -1 pubsub,noscript",
    "unwatch 1 noscript",
    "wait 3 noscript",
    "watch -2 noscript RO/i1/r-1,1,0",
    "xack -4 write RW|update/i1/r0,1,0",
    "xadd -5 write,denyoom RW|update/i1/r0,1,0",
    "xautoclaim -6 write RW|delete/i1/r0,1,0",
    "xclaim -6 write RW|update/i1/r0,1,0",
    "xdel -3 write RW|delete/i1/r0,1,0",
    "xgroup -2 container",
    "xgroup|create -5 write,denyoom RW|insert/i2/r0,1,0",
    "xgroup|createconsumer 5 write,denyoom RW|insert/i2/r0,1,0",
    "xgroup|delconsumer 5 write RW|delete/i2/r0,1,0",
    "xgroup|destroy 4 write RW|delete/i2/r0,1,0",
    "xgroup|help 2 -",
    "xgroup|setid -5 write RW|update/i2/r0,1,0",
    "xinfo -2 container",
    "xinfo|consumers 4 readonly RO|access/i2/r0,1,0",
    "xinfo|groups 3 readonly RO|access/i2/r0,1,0",
    "xinfo|help 2 -",
    "xinfo|stream -3 readonly RO|access/i2/r0,1,0",
    "xlen 2 readonly RO/i1/r0,1,0",
    "xpending -3 readonly RO|access/i1/r0,1,0",
    "xrange -4 readonly RO|access/i1/r0,1,0",
    "xread -4 readonly,blocking,movablekeys RO|access/kSTREAMS,1/r-1,1,2",
    "xreadgroup -7 write,blocking,movablekeys RO|access/kSTREAMS,4/r-1,1,2",
    "xrevrange -4 readonly RO|access/i1/r0,1,0",
    "xsetid -3 write,denyoom RW|update/i1/r0,1,0",
    "xtrim -4 write RW|delete/i1/r0,1,0",
    "zadd -4 write,denyoom RW|update/i1/r0,1,0",
    "zcard 2 readonly RO/i1/r0,1,0",
    "zcount 4 readonly RO|access/i1/r0,1,0",
    "zdiff -3 readonly,movablekeys RO|access/i1/n0,1,1",
    "zdiffstore -4 write,denyoom,movablekeys OW|update/i1/r0,1,0 RO|access/i2/n0,1,1",
    "zincrby 4 write,denyoom RW|access|update/i1/r0,1,0",
    "zinter -3 readonly,movablekeys RO|access/i1/n0,1,1",
    "zintercard -3 readonly,movablekeys RO|access/i1/n0,1,1",
    "zinterstore -4 write,denyoom,movablekeys OW|update/i1/r0,1,0 RO|access/i2/n0,1,1",
    "zlexcount 4 readonly RO|access/i1/r0,1,0",
    "zmpop -4 write,movablekeys RW|access|delete/i1/n0,1,1",
    "zmscore -3 readonly RO|access/i1/r0,1,0",
    "zpopmax -2 write RW|access|delete/i1/r0,1,0",
    "zpopmin -2 write RW|access|delete/i1/r0,1,0",
    "zrandmember -2 readonly RO|access/i1/r0,1,0",
    "zrange -4 readonly RO|access/i1/r0,1,0",
    "zrangebylex -4 readonly RO|access/i1/r0,1,0",
    "zrangebyscore -4 readonly RO|access/i1/r0,1,0",
    "zrangestore -5 write,denyoom OW|update/i1/r0,1,0 RO|access/i2/r0,1,0",
    "zrank 3 readonly RO|access/i1/r0,1,0",
    "zrem -3 write RW|delete/i1/r0,1,0",
    "zremrangebylex 4 write RW|delete/i1/r0,1,0",
    "zremrangebyrank 4 write RW|delete/i1/r0,1,0",
    "zremrangebyscore 4 write RW|delete/i1/r0,1,0",
    "zrevrange -4 readonly RO|access/i1/r0,1,0",
    "zrevrangebylex -4 readonly RO|access/i1/r0,1,0",
    "zrevrangebyscore -4 readonly RO|access/i1/r0,1,0",
    "zrevrank 3 readonly RO|access/i1/r0,1,0",
    "zscan -3 readonly RO|access/i1/r0,1,0",
    "zscore 3 readonly RO|access/i1/r0,1,0",
    "zunion -3 readonly,movablekeys RO|access/i1/n0,1,1",
    "zunionstore -4 write,denyoom,movablekeys OW|update/i1/r0,1,0 RO|access/i2/n0,1,1",
};

int command_table_add_builtin(struct command_table *t)
{
    struct command cmd;
    size_t n = sizeof(BUILTIN) / sizeof(BUILTIN[0]);

    for (size_t i = 0; i < n; i++) {
        if (parse_line(BUILTIN[i], &cmd) < 0 || command_table_add(t, &cmd) < 0)
            return -1;
    }
    return (int)n;
}
