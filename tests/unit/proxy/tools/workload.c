/* tests/unit/proxy/tools/workload.c - the load generator's pure parts: the histogram
 * (proxy/tools/hist.h) against exact percentiles of known distributions, its merge
 * and bounds; and the workload (proxy/tools/workload.h): distributions, mix parsing,
 * value round trips and reply verdicts, table-driven. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/tools/hist.h"
#include "proxy/tools/workload.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The exact value of rank ceil(p/100 * n) in sorted v. */
static uint64_t exact(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    return v[(rank ? rank : 1) - 1];
}

static struct hist *hist_new(void)
{
    struct hist *h = malloc(sizeof(*h));
    cr_assert(h);
    hist_init(h);
    return h;
}

/* Records v[0..n) and checks every reported percentile is in [exact, exact * (1 + 1/64)]. */
static void check_percentiles(const char *name, uint64_t *v, size_t n)
{
    struct hist *h = hist_new();
    for (size_t i = 0; i < n; i++)
        hist_record(h, v[i]);
    qsort(v, n, sizeof(*v), cmp_u64);
    static const double P[] = {1, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof(P) / sizeof(P[0]); i++) {
        uint64_t want = exact(v, n, P[i]), got = hist_percentile(h, P[i]);
        cr_expect(got >= want && (double)got <= (double)want * (1 + 1.0 / HIST_SUB),
                  "%s p%g: got %lu, exact %lu", name, P[i], (unsigned long)got,
                  (unsigned long)want);
    }
    cr_expect_eq(hist_percentile(h, 100), v[n - 1], "%s: p100 is the exact max", name);
    cr_expect_eq(h->count, n);
    free(h);
}

Test(hist, known_distributions)
{
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof(*v));
    struct wl_rng r;
    wl_rng_seed(&r, 42);
    for (size_t i = 0; i < N; i++) /* uniform 1 us .. 10 ms in ns */
        v[i] = 1000 + wl_rng_below(&r, 10000000);
    check_percentiles("uniform", v, N);
    for (size_t i = 0; i < N; i++) /* exponential, mean 200 us */
        v[i] = (uint64_t)(-log(1 - wl_rng_double(&r)) * 200000) + 1;
    check_percentiles("exponential", v, N);
    for (size_t i = 0; i < N; i++) /* log-uniform 1 us .. 100 s: every magnitude */
        v[i] = (uint64_t)exp(log(1e3) + wl_rng_double(&r) * (log(1e11) - log(1e3)));
    check_percentiles("log-uniform", v, N);
    for (size_t i = 0; i < N; i++) /* two modes: 99% fast, 1% a 50 ms stall */
        v[i] = i % 100 ? 80000 + i % 1000 : 50000000;
    check_percentiles("bimodal", v, N);
    free(v);
}

Test(hist, buckets_are_contiguous_and_tight)
{
    for (uint64_t v = 0; v < (1u << 20); v++) {
        size_t i = hist_index(v);
        cr_assert(hist_upper(i) >= v && (i == 0 || hist_upper(i - 1) < v), "v %lu",
                  (unsigned long)v);
    }
    for (int b = 7; b <= HIST_MAX_BITS; b++) {
        uint64_t v = (UINT64_C(1) << b) - 1, lo = hist_upper(hist_index(v) - 1) + 1;
        cr_assert((double)(hist_upper(hist_index(v)) - lo + 1) <= (double)lo / HIST_SUB + 1);
    }
    cr_assert_eq(hist_index(HIST_MAX), HIST_BUCKETS - 1);
    cr_assert_eq(hist_upper(HIST_BUCKETS - 1), HIST_MAX);
}

Test(hist, bounds_and_empty)
{
    struct hist *h = hist_new();
    cr_assert_eq(hist_percentile(h, 50), 0);
    cr_assert_eq(hist_mean(h), 0);
    hist_record(h, 0);
    hist_record(h, UINT64_C(500) * 1000000000); /* 500 s: above HIST_MAX */
    cr_assert_eq(h->clamped, 1);
    cr_assert_eq(h->max, UINT64_C(500) * 1000000000);
    cr_assert_eq(hist_percentile(h, 50), 0);
    cr_assert_eq(hist_percentile(h, 100), HIST_MAX, "a clamped value reports the top bucket");
    cr_assert_float_eq(hist_mean(h), 250e9, 1);
    free(h);
}

Test(hist, merge_equals_recording_into_one)
{
    struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
    struct wl_rng r;
    wl_rng_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = wl_rng_below(&r, 1u << 30);
        hist_record(i % 3 ? a : b, v);
        hist_record(all, v);
    }
    hist_merge(a, b);
    cr_assert_eq(memcmp(a, all, sizeof(*a)), 0);
    free(a), free(b), free(all);
}

/* ---- workload -------------------------------------------------------------------- */

Test(workload, zipf_follows_the_law)
{
    enum { KEYS = 1000000, DRAWS = 2000000 };
    struct wl_dist d;
    struct wl_rng r;
    cr_assert_eq(wl_dist_parse(&d, "zipf:0.99", KEYS, 1), 0);
    wl_rng_seed(&r, 3);
    uint64_t top[4] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = wl_dist_rank(&d, &r);
        cr_assert_lt(k, KEYS);
        if (k < 4)
            top[k]++;
    }
    double hsum = 0;
    for (int k = 1; k <= KEYS; k++)
        hsum += pow(k, -0.99);
    for (int k = 0; k < 4; k++) {
        double want = DRAWS * pow(k + 1, -0.99) / hsum;
        cr_expect(fabs((double)top[k] - want) < 5 * sqrt(want), "rank %d: %lu, want %.0f", k,
                  (unsigned long)top[k], want);
    }
}

Test(workload, hot_and_permutation)
{
    struct wl_dist d;
    struct wl_rng r;
    cr_assert_eq(wl_dist_parse(&d, "hot:0.01:0.9", 10000, 5), 0);
    wl_rng_seed(&r, 9);
    int hot = 0;
    for (int i = 0; i < 100000; i++)
        hot += wl_dist_rank(&d, &r) < 100;
    cr_expect(hot > 89000 && hot < 91000, "hot draws %d", hot);
    static char seen[10000];
    for (uint64_t k = 0; k < 10000; k++) {
        uint64_t key = wl_dist_key(&d, k);
        cr_assert(key < 10000 && !seen[key], "not a permutation at %lu", (unsigned long)k);
        seen[key] = 1;
    }
    cr_expect_gt(llabs((long long)wl_dist_key(&d, 0) - (long long)wl_dist_key(&d, 1)), 100);
    static const char *const BAD[] = {"zipf", "zipf:0", "zipf:x", "hot:0.1", "hot:2:0.5", "foo"};
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        cr_expect_eq(wl_dist_parse(&d, BAD[i], 100, 1), -1, "%s", BAD[i]);
}

Test(workload, mix_parse)
{
    struct wl_mix m;
    const char *err;
    cr_assert_eq(wl_mix_parse(&m, "get:70,set:20,del:10,mget:8:5,any:PING,lrange", &err), 0);
    cr_assert_eq(m.n, 6);
    cr_assert_eq(m.total, 107);
    cr_assert_eq(m.op[3].nkeys, 8);
    cr_assert_eq(m.max_keys, 8);
    cr_assert_str_eq(m.op[4].cmd, "PING");
    static const char *const BAD[] = {"", "gett", "mget", "mget:0", "get:x", "any", "get:0"};
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        cr_expect_eq(wl_mix_parse(&m, BAD[i], &err), -1, "%s", BAD[i]);
}

/* A frame framed by the real scanner, then judged. */
static wl_verdict_e judge(const struct wl_ctx *ctx, const struct wl_req *req, const char *frame)
{
    struct resp_scanner sc;
    struct resp_reply rep;
    resp_scanner_reset(&sc);
    cr_assert_eq(resp_scan_reply(&sc, &RESP_LIMITS_DEFAULT, frame, strlen(frame), &rep), RESP_OK,
                 "%s", frame);
    return wl_check(ctx, req, frame, &rep);
}

Test(workload, verdicts)
{
    struct wl_ctx ctx = {.prefix = "lg:", .prefix_len = 3, .conn = 4, .size = {20, 30}};
    static const struct wl_op GET = {WL_GET, 1, "GET", 1}, MGET = {WL_MGET, 2, "MGET", 1},
                              DEL = {WL_DEL, 1, "DEL", 1}, INCR = {WL_INCR, 1, "INCR", 1};
    uint32_t keys[2] = {7, 8};
    struct wl_req get = {.op = &GET, .key = keys}, mget = {.op = &MGET, .key = keys},
                  del = {.op = &DEL, .key = keys}, incr = {.op = &INCR, .key = keys},
                  own = {.op = &WL_OWN_GET_OP, .seq = 12, .vlen = 25};
    char v7[64], v8[64], frame[256];
    size_t n7 = wl_value_write(v7, "lg:7", 4, 1, 99, 25),
           n8 = wl_value_write(v8, "lg:8", 4, 2, 3, 20);
    cr_assert_eq(n7, 25);
    snprintf(frame, sizeof(frame), "$%zu\r\n%.*s\r\n", n7, (int)n7, v7);
    cr_expect_eq(judge(&ctx, &get, frame), WL_REPLY_OK);
    cr_expect_eq(judge(&ctx, &get, "$-1\r\n"), WL_REPLY_OK);
    cr_expect_eq(judge(&ctx, &get, "_\r\n"), WL_REPLY_OK);
    snprintf(frame, sizeof(frame), "*2\r\n$%zu\r\n%.*s\r\n$%zu\r\n%.*s\r\n", n7, (int)n7, v7, n8,
             (int)n8, v8);
    cr_expect_eq(judge(&ctx, &mget, frame), WL_REPLY_OK);
    snprintf(frame, sizeof(frame), "*2\r\n$%zu\r\n%.*s\r\n$-1\r\n", n7, (int)n7, v7);
    cr_expect_eq(judge(&ctx, &mget, frame), WL_REPLY_OK);
    snprintf(frame, sizeof(frame), "*2\r\n$%zu\r\n%.*s\r\n$%zu\r\n%.*s\r\n", n8, (int)n8, v8, n7,
             (int)n7, v7);
    cr_expect_eq(judge(&ctx, &mget, frame), WL_REPLY_WRONG, "values swapped");
    snprintf(frame, sizeof(frame), "$%zu\r\n%.*s\r\n", n8, (int)n8, v8);
    cr_expect_eq(judge(&ctx, &get, frame), WL_REPLY_WRONG, "another key's value");
    v7[n7 - 1] ^= 1;
    snprintf(frame, sizeof(frame), "$%zu\r\n%.*s\r\n", n7, (int)n7, v7);
    cr_expect_eq(judge(&ctx, &get, frame), WL_REPLY_WRONG, "corrupt filler");
    snprintf(frame, sizeof(frame), "$%zu\r\n%.*s\r\n", n7 - 10, (int)n7 - 10, v7);
    cr_expect_eq(judge(&ctx, &get, frame), WL_REPLY_WRONG, "truncated");
    cr_expect_eq(judge(&ctx, &get, "$7\r\ngarbage\r\n"), WL_REPLY_WRONG);
    cr_expect_eq(judge(&ctx, &get, ":1\r\n"), WL_REPLY_WRONG, "wrong type");
    cr_expect_eq(judge(&ctx, &get, "-WRONGTYPE Operation\r\n"), WL_REPLY_ERROR);
    cr_expect_eq(judge(&ctx, &del, ":1\r\n"), WL_REPLY_OK);
    cr_expect_eq(judge(&ctx, &del, ":2\r\n"), WL_REPLY_WRONG);
    cr_expect_eq(judge(&ctx, &incr, ":-5\r\n"), WL_REPLY_OK);
    cr_expect_eq(judge(&ctx, &incr, "+OK\r\n"), WL_REPLY_WRONG);
    char ov[64];
    size_t on = wl_value_write(ov, "lg:own:4", 8, 4, 12, 25);
    snprintf(frame, sizeof(frame), "$%zu\r\n%.*s\r\n", on, (int)on, ov);
    cr_expect_eq(judge(&ctx, &own, frame), WL_REPLY_OK);
    own.seq = 11;
    cr_expect_eq(judge(&ctx, &own, frame), WL_REPLY_WRONG, "a stale own value");
    cr_expect_eq(judge(&ctx, &own, "$-1\r\n"), WL_REPLY_WRONG, "own key lost");
}

Test(workload, error_kind)
{
    static const struct {
        const char *frame, *kind;
    } CASES[] = {{"-ERR unknown\r\n", "ERR"},
                 {"-WRONGTYPE Operation\r\n", "WRONGTYPE"},
                 {"-\r\n", "?"},
                 {"!9\r\nMOVED 1 x\r\n", "MOVED"}};
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        struct resp_scanner sc;
        struct resp_reply rep;
        char kind[32];
        resp_scanner_reset(&sc);
        cr_assert_eq(resp_scan_reply(&sc, &RESP_LIMITS_DEFAULT, CASES[i].frame,
                                     strlen(CASES[i].frame), &rep),
                     RESP_OK);
        wl_error_kind(CASES[i].frame, &rep, kind, sizeof(kind));
        cr_expect_str_eq(kind, CASES[i].kind);
    }
}
