/* workload.c - keys, ops, values, requests and reply checks; see workload.h. */
#include "proxy/tools/workload.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void wl_rng_seed(struct wl_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t wl_rng_next(struct wl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double wl_rng_double(struct wl_rng *r)
{
    return (double)(wl_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t wl_rng_below(struct wl_rng *r, uint64_t n)
{
    return ((wl_rng_next(r) >> 32) * n) >> 32; /* Lemire's multiply-shift */
}

/* ---- key distributions ----------------------------------------------------------- */

/* Zipf by rejection-inversion (Hörmann and Derflinger 1996, as in Apache
 * Commons' RejectionInversionZipfSampler): constant time and memory per draw. */
static double helper1(double x) /* log1p(x) / x */
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x) /* expm1(x) / x */
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

static double zipf_h(double s, double x)
{
    return exp(-s * log(x));
}

static double zipf_hint(double s, double x)
{
    double lx = log(x);
    return helper2((1 - s) * lx) * lx;
}

static double zipf_hint_inv(double s, double x)
{
    double t = x * (1 - s);
    if (t < -1)
        t = -1;
    return exp(helper1(t) * x);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int parse_double(const char *s, char **end, double *out)
{
    errno = 0;
    *out = strtod(s, end);
    return (*end == s || errno || !isfinite(*out)) ? -1 : 0;
}

int wl_dist_parse(struct wl_dist *d, const char *spec, uint64_t n, uint64_t seed)
{
    char *end;
    memset(d, 0, sizeof(*d));
    if (n < 1 || n > (UINT64_C(1) << 32))
        return -1;
    d->n = n;
    if (strcmp(spec, "uniform") == 0) {
        d->kind = WL_DIST_UNIFORM;
    } else if (strncmp(spec, "zipf:", 5) == 0) {
        d->kind = WL_DIST_ZIPF;
        if (parse_double(spec + 5, &end, &d->s) || *end || d->s <= 0 || d->s > 10)
            return -1;
        d->h_x1 = zipf_hint(d->s, 1.5) - 1;
        d->h_n = zipf_hint(d->s, (double)n + 0.5);
        d->zs = 2 - zipf_hint_inv(d->s, zipf_hint(d->s, 2.5) - zipf_h(d->s, 2));
    } else if (strncmp(spec, "hot:", 4) == 0) {
        d->kind = WL_DIST_HOT;
        if (parse_double(spec + 4, &end, &d->hot_frac) || *end != ':' ||
            parse_double(end + 1, &end, &d->hot_prob) || *end)
            return -1;
        if (!(d->hot_frac > 0 && d->hot_frac <= 1 && d->hot_prob >= 0 && d->hot_prob <= 1))
            return -1;
        d->hot_n = (uint64_t)llround(d->hot_frac * (double)n);
        d->hot_n = d->hot_n < 1 ? 1 : d->hot_n > n ? n : d->hot_n;
    } else {
        return -1;
    }
    /* rank -> (rank * a + b) mod n, a coprime to n: a bijection that puts
     * consecutive ranks about 0.618 n apart */
    uint64_t x = seed;
    d->perm_b = splitmix64(&x) % n;
    d->perm_a = ((uint64_t)(0.6180339887498949 * (double)n) + splitmix64(&x) % 1024) % n;
    while (n > 1 && gcd(d->perm_a, n) != 1)
        d->perm_a = (d->perm_a + 1) % n;
    return 0;
}

static uint64_t zipf_rank(const struct wl_dist *d, struct wl_rng *r)
{
    double n = (double)d->n;
    for (;;) {
        double u = d->h_n + wl_rng_double(r) * (d->h_x1 - d->h_n);
        double x = zipf_hint_inv(d->s, u);
        double k = floor(x + 0.5);
        if (k < 1)
            k = 1;
        else if (k > n)
            k = n;
        if (k - x <= d->zs || u >= zipf_hint(d->s, k + 0.5) - zipf_h(d->s, k))
            return (uint64_t)k - 1;
    }
}

uint64_t wl_dist_rank(const struct wl_dist *d, struct wl_rng *r)
{
    switch (d->kind) {
    case WL_DIST_ZIPF:
        return zipf_rank(d, r);
    case WL_DIST_HOT:
        if (d->hot_n == d->n || wl_rng_double(r) < d->hot_prob)
            return wl_rng_below(r, d->hot_n);
        return d->hot_n + wl_rng_below(r, d->n - d->hot_n);
    default:
        return wl_rng_below(r, d->n);
    }
}

uint64_t wl_dist_key(const struct wl_dist *d, uint64_t rank)
{
    return (rank * d->perm_a + d->perm_b) % d->n;
}

/* ---- operations ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    wl_op_e op;
    const char *cmd;
} OPS[] = {
    {"get", WL_GET, "GET"},    {"set", WL_SET, "SET"},       {"del", WL_DEL, "DEL"},
    {"incr", WL_INCR, "INCR"}, {"mget", WL_MGET, "MGET"},    {"hget", WL_HGET, "HGET"},
    {"hset", WL_HSET, "HSET"}, {"lpush", WL_LPUSH, "LPUSH"}, {"lrange", WL_LRANGE, "LRANGE"},
    {"any", WL_ANY, NULL},
};

const struct wl_op WL_OWN_SET_OP = {WL_OWN_SET, 0, "SET", 0};
const struct wl_op WL_OWN_GET_OP = {WL_OWN_GET, 0, "GET", 0};

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return (*end || errno || *out > max) ? -1 : 0;
}

/* One NAME[:ARG][:WEIGHT] entry, modified in place. */
static int mix_entry(struct wl_op *op, char *text, const char **err)
{
    char *arg = strchr(text, ':'), *weight = NULL;
    unsigned long v;
    if (arg)
        *arg++ = '\0';
    size_t i = 0;
    while (i < sizeof(OPS) / sizeof(OPS[0]) && strcmp(OPS[i].name, text) != 0)
        i++;
    if (i == sizeof(OPS) / sizeof(OPS[0]))
        return *err = "unknown op", -1;
    memset(op, 0, sizeof(*op));
    op->op = OPS[i].op;
    op->nkeys = 1;
    op->weight = 1;
    if (OPS[i].cmd)
        strcpy(op->cmd, OPS[i].cmd);
    if (op->op == WL_MGET || op->op == WL_ANY) {
        if (!arg || !*arg)
            return *err = "mget and any need an argument (mget:N, any:CMD)", -1;
        weight = strchr(arg, ':');
        if (weight)
            *weight++ = '\0';
        if (op->op == WL_MGET && parse_uint(arg, WL_MGET_MAX, &v) == 0 && v >= 1)
            op->nkeys = (unsigned)v;
        else if (op->op == WL_MGET)
            return *err = "mget:N needs 1 <= N <= 128", -1;
        else if (strlen(arg) >= WL_CMD_MAX || strpbrk(arg, " \r\n"))
            return *err = "any:CMD: bad command name", -1;
        else
            strcpy(op->cmd, arg);
    } else {
        weight = arg;
    }
    if (weight) {
        if (parse_uint(weight, 1000000, &v) != 0)
            return *err = "weight must be an integer 0..1000000", -1;
        op->weight = (uint32_t)v;
    }
    return 0;
}

int wl_mix_parse(struct wl_mix *m, const char *spec, const char **err)
{
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;
    memset(m, 0, sizeof(*m));
    *err = NULL;
    if (!copy)
        return *err = "out of memory", -1;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        if (m->n == WL_MIX_MAX) {
            *err = "too many ops";
            rc = -1;
        } else if ((rc = mix_entry(&m->op[m->n], tok, err)) == 0) {
            m->total += m->op[m->n].weight;
            if (m->op[m->n].nkeys > m->max_keys)
                m->max_keys = m->op[m->n].nkeys;
            m->n++;
        }
    }
    free(copy);
    if (rc == 0 && m->total == 0)
        *err = "no op has a weight", rc = -1;
    return rc;
}

const struct wl_op *wl_mix_pick(const struct wl_mix *m, struct wl_rng *r)
{
    uint32_t x = (uint32_t)wl_rng_below(r, m->total);
    int i = 0;
    while (x >= m->op[i].weight)
        x -= m->op[i++].weight;
    return &m->op[i];
}

/* ---- values ----------------------------------------------------------------------------- */

int wl_size_parse(struct wl_size *sz, const char *spec)
{
    char buf[64];
    unsigned long lo, hi;
    if (strlen(spec) >= sizeof(buf))
        return -1;
    strcpy(buf, spec);
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = '\0';
    if (parse_uint(buf, WL_VALUE_MAX, &lo) != 0)
        return -1;
    hi = lo;
    if (dash && parse_uint(dash + 1, WL_VALUE_MAX, &hi) != 0)
        return -1;
    if (lo < 1 || hi < lo)
        return -1;
    sz->min = (uint32_t)lo;
    sz->max = (uint32_t)hi;
    return 0;
}

uint32_t wl_size_pick(const struct wl_size *sz, struct wl_rng *r)
{
    return sz->min + (uint32_t)wl_rng_below(r, (uint64_t)(sz->max - sz->min) + 1);
}

/* The filler: byte i of a value is 'a' + i % 26. FILL holds it from i = 0 for
 * FILL_CHUNK + 25 bytes, FILL_CHUNK a multiple of 26. */
#define FILL_CHUNK (26 * 157)
static char FILL[FILL_CHUNK + 26];

static const char *fill_table(void)
{
    if (FILL[0] == 0)
        for (size_t i = 0; i < sizeof(FILL); i++)
            FILL[i] = (char)('a' + i % 26);
    return FILL;
}

/* Writes (check 0) or compares (check 1) the filler of p[from..to). */
static bool fill(char *w, const char *p, size_t from, size_t to)
{
    const char *f = fill_table();
    for (size_t i = from; i < to;) {
        size_t n = to - i < FILL_CHUNK ? to - i : FILL_CHUNK;
        if (w)
            memcpy(w + i, f + i % 26, n);
        else if (memcmp(p + i, f + i % 26, n) != 0)
            return false;
        i += n;
    }
    return true;
}

static char *put_uint(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static size_t uint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static size_t value_len(size_t klen, uint32_t conn, uint64_t seq, uint32_t vlen)
{
    size_t hdr = klen + 3 + uint_len(conn) + uint_len(seq);
    return hdr > vlen ? hdr : vlen;
}

size_t wl_value_write(char *dst, const char *key, size_t klen, uint32_t conn, uint64_t seq,
                      uint32_t vlen)
{
    char *p = dst;
    memcpy(p, key, klen);
    p += klen;
    *p++ = '|';
    p = put_uint(p, conn);
    *p++ = '|';
    p = put_uint(p, seq);
    *p++ = '|';
    size_t hdr = (size_t)(p - dst), len = hdr > vlen ? hdr : vlen;
    if (len > hdr) {
        fill(dst, NULL, hdr, len - 1);
        dst[len - 1] = '.';
    }
    return len;
}

/* Skips "digits|" at p[*i]; false unless at least one digit. */
static bool skip_field(const char *p, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && p[*i] >= '0' && p[*i] <= '9')
        (*i)++;
    if (*i == start || *i >= len || p[*i] != '|')
        return false;
    (*i)++;
    return true;
}

bool wl_value_check(const char *p, size_t len, const char *key, size_t klen,
                    const struct wl_size *sz)
{
    size_t i = klen + 1;
    if (len < i || memcmp(p, key, klen) != 0 || p[klen] != '|')
        return false;
    if (!skip_field(p, len, &i) || !skip_field(p, len, &i))
        return false;
    (void)sz; /* values of earlier runs with other sizes are right too */
    return len == i || (p[len - 1] == '.' && fill(NULL, p, i, len - 1));
}

/* ---- requests ----------------------------------------------------------------------------- */

static const char *const KEY_TAG[] = {
    [WL_GET] = "",      [WL_SET] = "",    [WL_DEL] = "",         [WL_INCR] = "n:",
    [WL_MGET] = "",     [WL_HGET] = "h:", [WL_HSET] = "h:",      [WL_LPUSH] = "l:",
    [WL_LRANGE] = "l:", [WL_ANY] = "",    [WL_OWN_SET] = "own:", [WL_OWN_GET] = "own:",
};

size_t wl_key_write(const struct wl_ctx *ctx, wl_op_e op, uint32_t k, char *dst)
{
    char *p = dst;
    size_t tl = strlen(KEY_TAG[op]);
    memcpy(p, ctx->prefix, ctx->prefix_len);
    p += ctx->prefix_len;
    memcpy(p, KEY_TAG[op], tl);
    p += tl;
    p = put_uint(p, (op == WL_OWN_SET || op == WL_OWN_GET) ? ctx->conn : k);
    return (size_t)(p - dst);
}

size_t wl_encode_bound(const struct wl_ctx *ctx, const struct wl_mix *m)
{
    size_t key = ctx->prefix_len + 48, keys = (m->max_keys + 1) * key;
    return 64 + WL_CMD_MAX + keys + (ctx->size.max + key + 48);
}

static char *put_bulk(char *p, const char *s, size_t n)
{
    *p++ = '$';
    p = put_uint(p, n);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, s, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static char *put_value(char *p, const struct wl_ctx *ctx, const char *key, size_t klen,
                       const struct wl_req *req)
{
    size_t n = value_len(klen, ctx->conn, req->seq, req->vlen);
    *p++ = '$';
    p = put_uint(p, n);
    *p++ = '\r';
    *p++ = '\n';
    p += wl_value_write(p, key, klen, ctx->conn, req->seq, req->vlen);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t wl_encode(const struct wl_ctx *ctx, const struct wl_req *req, char *dst)
{
    wl_op_e op = req->op->op;
    char key[WL_PREFIX_BOUND];
    size_t klen = wl_key_write(ctx, op, req->key ? req->key[0] : 0, key);
    static const unsigned ARGC[] = {
        [WL_GET] = 2,    [WL_SET] = 3,  [WL_DEL] = 2,     [WL_INCR] = 2,
        [WL_MGET] = 1,   [WL_HGET] = 3, [WL_HSET] = 4,    [WL_LPUSH] = 3,
        [WL_LRANGE] = 4, [WL_ANY] = 2,  [WL_OWN_SET] = 3, [WL_OWN_GET] = 2,
    };
    char *p = dst;
    *p++ = '*';
    p = put_uint(p, ARGC[op] + (op == WL_MGET ? req->op->nkeys : 0));
    *p++ = '\r';
    *p++ = '\n';
    p = put_bulk(p, req->op->cmd, strlen(req->op->cmd));
    p = put_bulk(p, key, klen);
    for (unsigned i = 1; op == WL_MGET && i < req->op->nkeys; i++)
        p = put_bulk(p, key, wl_key_write(ctx, op, req->key[i], key));
    if (op == WL_HGET || op == WL_HSET)
        p = put_bulk(p, "f", 1);
    if (op == WL_SET || op == WL_HSET || op == WL_LPUSH || op == WL_OWN_SET)
        p = put_value(p, ctx, key, klen, req);
    if (op == WL_LRANGE)
        p = put_bulk(put_bulk(p, "0", 1), "9", 1);
    return (size_t)(p - dst);
}

/* ---- replies ----------------------------------------------------------------------------------
 */

/* Parses the integer of the header line at f[i] (after its type byte) into *v
 * and returns the offset past the line's "\r\n", or 0 when malformed. */
static size_t header(const char *f, size_t len, size_t i, int64_t *v)
{
    bool neg = false;
    int64_t x = 0;
    if (++i < len && f[i] == '-')
        neg = true, i++;
    size_t start = i;
    while (i < len && f[i] >= '0' && f[i] <= '9' && x < INT64_MAX / 10)
        x = x * 10 + (f[i++] - '0');
    if (i == start || i + 1 >= len || f[i] != '\r')
        return 0;
    *v = neg ? -x : x;
    return i + 2;
}

/* Checks the string element at f[*i] (a bulk string or a null when null_ok)
 * against key index k of op and moves *i past it. */
static bool element(const struct wl_ctx *ctx, wl_op_e op, uint32_t k, const char *f, size_t len,
                    size_t *i, bool null_ok)
{
    int64_t n;
    if (*i < len && f[*i] == '_') {
        *i += 3;
        return null_ok;
    }
    size_t at = *i < len && f[*i] == '$' ? header(f, len, *i, &n) : 0;
    if (at == 0)
        return false;
    if (n < 0) {
        *i = at;
        return null_ok;
    }
    if ((uint64_t)n > len - at)
        return false;
    *i = at + (size_t)n + 2;
    char key[WL_PREFIX_BOUND];
    size_t klen = wl_key_write(ctx, op, k, key);
    return wl_value_check(f + at, (size_t)n, key, klen, &ctx->size);
}

/* The read-your-writes GET: exactly the value written with req->seq. */
static bool own_value(const struct wl_ctx *ctx, const struct wl_req *req, const char *f, size_t len,
                      size_t i)
{
    char key[WL_PREFIX_BOUND], hdr[WL_PREFIX_BOUND + 48];
    int64_t n;
    size_t klen = wl_key_write(ctx, WL_OWN_GET, 0, key);
    size_t at = header(f, len, i, &n);
    size_t want = value_len(klen, ctx->conn, req->seq, req->vlen);
    if (at == 0 || n < 0 || (uint64_t)n != want || want > len - at)
        return false;
    char *p = hdr;
    memcpy(p, key, klen);
    p += klen;
    *p++ = '|';
    p = put_uint(p, ctx->conn);
    *p++ = '|';
    p = put_uint(p, req->seq);
    *p++ = '|';
    size_t hl = (size_t)(p - hdr);
    return memcmp(f + at, hdr, hl) == 0 &&
           (want == hl || (f[at + want - 1] == '.' && fill(NULL, f + at, hl, want - 1)));
}

static bool array_of_values(const struct wl_ctx *ctx, const struct wl_req *req, const char *f,
                            size_t len, size_t i, int64_t count, bool null_ok)
{
    wl_op_e op = req->op->op;
    int64_t n;
    size_t at = header(f, len, i, &n);
    if (at == 0)
        return false;
    for (int64_t e = 0; e < count; e++)
        if (!element(ctx, op, op == WL_MGET ? req->key[e] : req->key[0], f, len, &at, null_ok))
            return false;
    return true;
}

wl_verdict_e wl_check(const struct wl_ctx *ctx, const struct wl_req *req, const char *f,
                      const struct resp_reply *rep)
{
    size_t i = rep->value_off, len = rep->len;
    char t = rep->type;
    int64_t n = 0;
    bool ok;
    if (t == '-' || t == '!')
        return WL_REPLY_ERROR;
    switch (req->op->op) {
    case WL_GET:
    case WL_HGET:
        ok = element(ctx, req->op->op, req->key[0], f, len, &i, true);
        break;
    case WL_OWN_GET:
        ok = t == '$' && own_value(ctx, req, f, len, i);
        break;
    case WL_SET:
    case WL_OWN_SET:
        ok = t == '+' && len - i == 5 && memcmp(f + i, "+OK\r\n", 5) == 0;
        break;
    case WL_DEL:
    case WL_HSET:
        ok = t == ':' && header(f, len, i, &n) && (n == 0 || n == 1);
        break;
    case WL_LPUSH:
        ok = t == ':' && header(f, len, i, &n) && n >= 1;
        break;
    case WL_INCR:
        ok = t == ':' && header(f, len, i, &n);
        break;
    case WL_MGET:
        ok = t == '*' && rep->count == (int64_t)req->op->nkeys &&
             array_of_values(ctx, req, f, len, i, rep->count, true);
        break;
    case WL_LRANGE:
        ok = t == '*' && rep->count >= 0 && rep->count <= 10 &&
             array_of_values(ctx, req, f, len, i, rep->count, false);
        break;
    default: /* WL_ANY: any reply that is not an error */
        ok = t != '>';
        break;
    }
    return ok ? WL_REPLY_OK : WL_REPLY_WRONG;
}

void wl_error_kind(const char *f, const struct resp_reply *rep, char *out, size_t cap)
{
    size_t i = rep->value_off + 1, n = 0;
    int64_t blob;
    if (rep->type == '!')
        i = header(f, rep->len, rep->value_off, &blob);
    while (i && i < rep->len && n + 1 < cap) {
        char c = f[i++];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            break;
        out[n++] = c;
    }
    if (n == 0)
        out[n++] = '?';
    out[n] = '\0';
}
