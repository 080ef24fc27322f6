/* workload.h - what the load generator sends and what it accepts back:
 * random numbers, key distributions, the operation mix, value sizes, request
 * encoding and reply verification. Pure: no I/O, no clock, no allocation
 * after parsing; everything is reproducible from a seed.
 *
 * Keys: prefix + index for strings ("lg:42"), prefix + "n:" for INCR
 * counters, "h:" for hashes (field "f"), "l:" for lists and "own:<conn>" for
 * each connection's private read-your-writes key, so that no op meets a key of
 * the wrong type.
 *
 * Values describe themselves: "<key>|<conn>|<seq>|" followed by filler byte i
 * = 'a' + i % 26 up to the drawn size, the last byte a '.' (never shorter than
 * that header), so a reply can be checked to be a whole value (not truncated,
 * not shifted) written to the very key asked for, whatever size it was.
 */
#ifndef NEARCACHE_BENCH_WORKLOAD_H
#define NEARCACHE_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/resp.h"

/* ---- random numbers: xoshiro256** ---------------------------------------- */

struct wl_rng {
    uint64_t s[4];
};

/* Seeds r from seed (any value) with splitmix64. */
void wl_rng_seed(struct wl_rng *r, uint64_t seed);
uint64_t wl_rng_next(struct wl_rng *r);
/* Uniform in [0, 1). */
double wl_rng_double(struct wl_rng *r);
/* Uniform in [0, n), n in [1, 2^32]. */
uint64_t wl_rng_below(struct wl_rng *r, uint64_t n);

/* ---- key distributions ------------------------------------------------------ */

typedef enum {
    WL_DIST_UNIFORM,
    WL_DIST_ZIPF, /* rank k drawn with probability proportional to 1 / k^s */
    WL_DIST_HOT,  /* the hottest hot_n keys get hot_prob of the draws */
} wl_dist_kind_e;

/* Fields private to workload.c. */
struct wl_dist {
    wl_dist_kind_e kind;
    uint64_t n;
    double s, hot_frac, hot_prob;
    uint64_t hot_n;
    double h_x1, h_n, zs; /* rejection-inversion constants */
    uint64_t perm_a, perm_b;
};

/* Parses "uniform", "zipf:S" (S > 0) or "hot:F:P" (0 < F, P <= 1) over n keys
 * (1 <= n <= 2^32). seed picks the permutation that scatters ranks over key
 * indices. Returns 0, or -1 when spec is malformed. */
int wl_dist_parse(struct wl_dist *d, const char *spec, uint64_t n, uint64_t seed);
/* Draws a popularity rank in [0, n): 0 is the hottest. O(1), no tables. */
uint64_t wl_dist_rank(const struct wl_dist *d, struct wl_rng *r);
/* The key index of a rank: a bijection of [0, n), so hot keys are scattered. */
uint64_t wl_dist_key(const struct wl_dist *d, uint64_t rank);

/* ---- operations -------------------------------------------------------------- */

typedef enum {
    WL_GET,
    WL_SET,
    WL_DEL,
    WL_INCR,
    WL_MGET,
    WL_HGET,
    WL_HSET,
    WL_LPUSH,
    WL_LRANGE,
    WL_ANY,
    WL_OWN_SET, /* not in a mix: the read-your-writes pair */
    WL_OWN_GET,
} wl_op_e;

#define WL_MIX_MAX  16
#define WL_MGET_MAX 128
#define WL_CMD_MAX  32

struct wl_op {
    wl_op_e op;
    unsigned nkeys;       /* keys drawn per request: 1, MGET: its N, own ops: 0 */
    char cmd[WL_CMD_MAX]; /* the command name sent */
    uint32_t weight;
};

struct wl_mix {
    struct wl_op op[WL_MIX_MAX];
    int n;
    uint32_t total;    /* sum of weights */
    unsigned max_keys; /* largest nkeys */
};

/* Parses comma-separated NAME[:ARG][:WEIGHT] entries: get set del incr hget
 * hset lpush lrange, mget:N (N keys, 1..WL_MGET_MAX), any:CMD (CMD sent with
 * one string key); WEIGHT defaults to 1. Returns 0, or -1 with *err set. */
int wl_mix_parse(struct wl_mix *m, const char *spec, const char **err);
/* Draws one op by weight. */
const struct wl_op *wl_mix_pick(const struct wl_mix *m, struct wl_rng *r);
/* The static entries of the read-your-writes pair. */
extern const struct wl_op WL_OWN_SET_OP, WL_OWN_GET_OP;

/* ---- values ---------------------------------------------------------------- */

#define WL_VALUE_MAX (1u << 20)

struct wl_size {
    uint32_t min, max;
};

/* Parses "N" or "MIN-MAX" (1 <= MIN <= MAX <= WL_VALUE_MAX). Returns 0 or -1. */
int wl_size_parse(struct wl_size *sz, const char *spec);
uint32_t wl_size_pick(const struct wl_size *sz, struct wl_rng *r);

/* ---- requests and replies ---------------------------------------------------- */

/* Longest key prefix, and room for any key name. */
#define WL_PREFIX_MAX   200
#define WL_PREFIX_BOUND (WL_PREFIX_MAX + 32)

/* What a connection's requests share. prefix (at most WL_PREFIX_MAX bytes) is
 * borrowed. */
struct wl_ctx {
    const char *prefix;
    size_t prefix_len;
    uint32_t conn; /* written into values; also names the own key */
    struct wl_size size;
};

/* One request: the op and its keys (key[0..op->nkeys)). For WL_OWN_* the
 * expected value is the one written with seq and vlen. */
struct wl_req {
    const struct wl_op *op;
    const uint32_t *key;
    uint64_t seq;
    uint32_t vlen;
};

/* Most bytes wl_encode() writes for an op of the mix (or own op) in ctx. */
size_t wl_encode_bound(const struct wl_ctx *ctx, const struct wl_mix *m);

/* Writes req as a multibulk request at dst (room for wl_encode_bound bytes);
 * returns its length. */
size_t wl_encode(const struct wl_ctx *ctx, const struct wl_req *req, char *dst);

/* Writes the value for key[0..klen) at dst; returns its length
 * (max(vlen, header length)). dst needs vlen + klen + 48 bytes. */
size_t wl_value_write(char *dst, const char *key, size_t klen, uint32_t conn, uint64_t seq,
                      uint32_t vlen);

/* True when p[0..len) is a whole value written to key[0..klen) by anyone, of
 * any size (sz is not used: values left by runs with other sizes are right). */
bool wl_value_check(const char *p, size_t len, const char *key, size_t klen,
                    const struct wl_size *sz);

/* Writes the name of key index k of op's key space at dst (room for
 * prefix_len + 32); returns its length. */
size_t wl_key_write(const struct wl_ctx *ctx, wl_op_e op, uint32_t k, char *dst);

typedef enum {
    WL_REPLY_OK,
    WL_REPLY_ERROR, /* an error reply ('-' or '!'): see wl_error_kind() */
    WL_REPLY_WRONG, /* a reply that cannot be right for the request */
} wl_verdict_e;

/* Judges the complete reply frame (as framed by resp_scan_reply into rep) to
 * req. Never reads outside frame[0..rep->len). */
wl_verdict_e wl_check(const struct wl_ctx *ctx, const struct wl_req *req, const char *frame,
                      const struct resp_reply *rep);

/* Copies the first word of an error reply (at most cap - 1 bytes, letters,
 * digits and '_' only) to out, NUL-terminated; "?" when there is none. */
void wl_error_kind(const char *frame, const struct resp_reply *rep, char *out, size_t cap);

#endif
