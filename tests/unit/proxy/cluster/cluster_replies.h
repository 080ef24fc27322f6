/* cluster_replies.h - CLUSTER SHARDS and CLUSTER SLOTS replies for test_map.
 *
 * Captured from a redis-server 7.0.15 cluster of three primaries on
 * 127.0.0.1:31001-31003 and a replica of the first on 31004, with a raw
 * socket (RESP2, then RESP3 after HELLO 3), and written as their RESP lines
 * joined by spaces: "$N" is followed by its N bytes, so "$0  " is an empty
 * string. Only the node ids are macros.
 * A: after `redis-cli --cluster create`. B: slots 6000-6009 moved from 31002
 * to 31003 (CLUSTER SETSLOT ... NODE). C: B with
 * cluster-preferred-endpoint-type hostname, and cluster-announce-hostname
 * cache-a.example on 31001. D: C with unknown-endpoint. T: a single node with
 * tls-cluster yes, port 31010 and tls-port 31011, owning 0-99 and
 * 200-16383, before any other node told it its ip.
 */
#ifndef NEARCACHE_TESTS_UNIT_CLUSTER_REPLIES_H
#define NEARCACHE_TESTS_UNIT_CLUSTER_REPLIES_H

#define ID1   "c1c1c026e61938d4183fef1ff17ed04bf362e704" /* 31001 */
#define ID2   "81d2cd3f254471491bae159ccc431e4c017350a1" /* 31002 */
#define ID3   "94f348df160fd4c86a8cd715d5d826bb77013a46" /* 31003 */
#define ID4   "1c30c1d464e3b1d538062cb7b6b452015a95c5b0" /* 31004, replica of 31001 */
#define IDT   "0d66d7fde1abe8e4d01d38c8338d6a3527a428dd"
#define LOCAL "$9 127.0.0.1"

static const char A_SHARDS2[] =
    "*3 *4 $5 slots *2 :10923 :16383 $5 nodes *1 *14 $2 id $40 " ID3 " $4 port :31003 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :0 $6 health $6 online "
    "*4 $5 slots *2 :0 :5460 $5 nodes *2 *14 $2 id $40 " ID1 " $4 port :31001 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :14 $6 health $6 online "
    "*14 $2 id $40 " ID4 " $4 port :31004 $2 ip " LOCAL " $8 endpoint " LOCAL
    " $4 role $7 replica $18 replication-offset :14 $6 health $6 online "
    "*4 $5 slots *2 :5461 :10922 $5 nodes *1 *14 $2 id $40 " ID2 " $4 port :31002 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :0 $6 health $6 online";

/* RESP3 (after HELLO 3): the same with %N maps. */
static const char A_SHARDS3[] =
    "*3 %2 $5 slots *2 :10923 :16383 $5 nodes *1 %7 $2 id $40 " ID3 " $4 port :31003 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :0 $6 health $6 online "
    "%2 $5 slots *2 :0 :5460 $5 nodes *2 %7 $2 id $40 " ID1 " $4 port :31001 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :14 $6 health $6 online "
    "%7 $2 id $40 " ID4 " $4 port :31004 $2 ip " LOCAL " $8 endpoint " LOCAL
    " $4 role $7 replica $18 replication-offset :14 $6 health $6 online "
    "%2 $5 slots *2 :5461 :10922 $5 nodes *1 %7 $2 id $40 " ID2 " $4 port :31002 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :0 $6 health $6 online";

static const char A_SLOTS2[] = "*3 *4 :0 :5460 *4 " LOCAL " :31001 $40 " ID1 " *0 *4 " LOCAL
                               " :31004 $40 " ID4 " *0 *3 :5461 :10922 *4 " LOCAL " :31002 $40 " ID2
                               " *0 *3 :10923 :16383 *4 " LOCAL " :31003 $40 " ID3 " *0";

static const char A_SLOTS3[] = "*3 *4 :0 :5460 *4 " LOCAL " :31001 $40 " ID1 " %0 *4 " LOCAL
                               " :31004 $40 " ID4 " %0 *3 :5461 :10922 *4 " LOCAL " :31002 $40 " ID2
                               " %0 *3 :10923 :16383 *4 " LOCAL " :31003 $40 " ID3 " %0";

static const char B_SHARDS2[] =
    "*3 *4 $5 slots *4 :6000 :6009 :10923 :16383 $5 nodes *1 *14 $2 id $40 " ID3
    " $4 port :31003 $2 ip " LOCAL " $8 endpoint " LOCAL
    " $4 role $6 master $18 replication-offset :0 $6 health $6 online "
    "*4 $5 slots *2 :0 :5460 $5 nodes *2 *14 $2 id $40 " ID1 " $4 port :31001 $2 ip " LOCAL
    " $8 endpoint " LOCAL " $4 role $6 master $18 replication-offset :28 $6 health $6 online "
    "*14 $2 id $40 " ID4 " $4 port :31004 $2 ip " LOCAL " $8 endpoint " LOCAL
    " $4 role $7 replica $18 replication-offset :28 $6 health $6 online "
    "*4 $5 slots *4 :5461 :5999 :6010 :10922 $5 nodes *1 *14 $2 id $40 " ID2
    " $4 port :31002 $2 ip " LOCAL " $8 endpoint " LOCAL
    " $4 role $6 master $18 replication-offset :0 $6 health $6 online";

static const char B_SLOTS2[] =
    "*5 *4 :0 :5460 *4 " LOCAL " :31001 $40 " ID1 " *0 *4 " LOCAL " :31004 $40 " ID4 " *0 "
    "*3 :5461 :5999 *4 " LOCAL " :31002 $40 " ID2 " *0 *3 :6000 :6009 *4 " LOCAL " :31003 $40 " ID3
    " *0 *3 :6010 :10922 *4 " LOCAL " :31002 $40 " ID2 " *0 *3 :10923 :16383 *4 " LOCAL
    " :31003 $40 " ID3 " *0";

static const char C_SHARDS2[] =
    "*3 *4 $5 slots *4 :6000 :6009 :10923 :16383 $5 nodes *1 *14 $2 id $40 " ID3
    " $4 port :31003 $2 ip " LOCAL " $8 endpoint $1 ? $4 role $6 master "
    "$18 replication-offset :0 $6 health $6 online "
    "*4 $5 slots *2 :0 :5460 $5 nodes *2 *16 $2 id $40 " ID1 " $4 port :31001 $2 ip " LOCAL
    " $8 endpoint $15 cache-a.example $8 hostname $15 cache-a.example $4 role $6 master "
    "$18 replication-offset :28 $6 health $6 online "
    "*14 $2 id $40 " ID4 " $4 port :31004 $2 ip " LOCAL " $8 endpoint $1 ? $4 role $7 replica "
    "$18 replication-offset :28 $6 health $6 online "
    "*4 $5 slots *4 :5461 :5999 :6010 :10922 $5 nodes *1 *14 $2 id $40 " ID2
    " $4 port :31002 $2 ip " LOCAL " $8 endpoint $1 ? $4 role $6 master "
    "$18 replication-offset :0 $6 health $6 online";

static const char C_SLOTS2[] =
    "*5 *4 :0 :5460 *4 $15 cache-a.example :31001 $40 " ID1 " *2 $2 ip " LOCAL
    " *4 $1 ? :31004 $40 " ID4 " *2 $2 ip " LOCAL " *3 :5461 :5999 *4 $1 ? :31002 $40 " ID2
    " *2 $2 ip " LOCAL " *3 :6000 :6009 *4 $1 ? :31003 $40 " ID3 " *2 $2 ip " LOCAL
    " *3 :6010 :10922 *4 $1 ? :31002 $40 " ID2 " *2 $2 ip " LOCAL
    " *3 :10923 :16383 *4 $1 ? :31003 $40 " ID3 " *2 $2 ip " LOCAL;

static const char D_SHARDS2[] =
    "*3 *4 $5 slots *4 :6000 :6009 :10923 :16383 $5 nodes *1 *14 $2 id $40 " ID3
    " $4 port :31003 $2 ip " LOCAL " $8 endpoint $0  $4 role $6 master "
    "$18 replication-offset :0 $6 health $6 online "
    "*4 $5 slots *2 :0 :5460 $5 nodes *2 *16 $2 id $40 " ID1 " $4 port :31001 $2 ip " LOCAL
    " $8 endpoint $0  $8 hostname $15 cache-a.example $4 role $6 master "
    "$18 replication-offset :42 $6 health $6 online "
    "*14 $2 id $40 " ID4 " $4 port :31004 $2 ip " LOCAL " $8 endpoint $0  $4 role $7 replica "
    "$18 replication-offset :42 $6 health $6 online "
    "*4 $5 slots *4 :5461 :5999 :6010 :10922 $5 nodes *1 *14 $2 id $40 " ID2
    " $4 port :31002 $2 ip " LOCAL " $8 endpoint $0  $4 role $6 master "
    "$18 replication-offset :0 $6 health $6 online";

static const char D_SLOTS2[] =
    "*5 *4 :0 :5460 *4 $-1 :31001 $40 " ID1 " *4 $2 ip " LOCAL " $8 hostname $15 cache-a.example "
    "*4 $-1 :31004 $40 " ID4 " *2 $2 ip " LOCAL " *3 :5461 :5999 *4 $-1 :31002 $40 " ID2
    " *2 $2 ip " LOCAL " *3 :6000 :6009 *4 $-1 :31003 $40 " ID3 " *2 $2 ip " LOCAL
    " *3 :6010 :10922 *4 $-1 :31002 $40 " ID2 " *2 $2 ip " LOCAL
    " *3 :10923 :16383 *4 $-1 :31003 $40 " ID3 " *2 $2 ip " LOCAL;

static const char D_SLOTS3[] =
    "*5 *4 :0 :5460 *4 _ :31001 $40 " ID1 " %2 $2 ip " LOCAL " $8 hostname $15 cache-a.example "
    "*4 _ :31004 $40 " ID4 " %1 $2 ip " LOCAL " *3 :5461 :5999 *4 _ :31002 $40 " ID2
    " %1 $2 ip " LOCAL " *3 :6000 :6009 *4 _ :31003 $40 " ID3 " %1 $2 ip " LOCAL
    " *3 :6010 :10922 *4 _ :31002 $40 " ID2 " %1 $2 ip " LOCAL
    " *3 :10923 :16383 *4 _ :31003 $40 " ID3 " %1 $2 ip " LOCAL;

static const char T_SHARDS2[] =
    "*1 *4 $5 slots *4 :0 :99 :200 :16383 $5 nodes *1 *16 $2 id $40 " IDT
    " $4 port :31010 $8 tls-port :31011 $2 ip $0  $8 endpoint $0  "
    "$4 role $6 master $18 replication-offset :0 $6 health $6 online";

/* Asked on the plain port: the plain port (asked over TLS it gives 31011). */
static const char T_SLOTS2[] = "*2 *3 :0 :99 *4 $0  :31010 $40 " IDT " *0 *3 :200 :16383 "
                               "*4 $0  :31010 $40 " IDT " *0";

#endif
