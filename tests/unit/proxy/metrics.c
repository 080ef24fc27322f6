/* Unit tests for proxy/metrics.h: the latency and reply-size histograms'
 * buckets. */
#include <criterion/criterion.h>

#include <stdint.h>

#include "proxy/metrics.h"

Test(metrics, observe_puts_each_duration_in_the_first_bucket_that_holds_it)
{
    static const struct {
        double seconds;
        int bucket;
    } CASES[] = {
        {-1.0, 0},  {0.0, 0},     {16e-6, 0},    {17e-6, 1},    {32e-6, 1},
        {33e-6, 2}, {1e-3, 6},    {1.024e-3, 6}, {1.025e-3, 7}, {8.388608, 19},
        {8.4, 20},  {3600.0, 20}, {1e12, 20},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        struct metrics_hist h = {0};
        metrics_observe(&h, CASES[i].seconds, 3);
        cr_expect_eq(h.count, 3, "%g", CASES[i].seconds);
        for (int b = 0; b < METRICS_BUCKETS; b++)
            cr_expect_eq(h.counts[b], b == CASES[i].bucket ? 3u : 0u, "%g s: bucket %d",
                         CASES[i].seconds, b);
        if (CASES[i].bucket < METRICS_BUCKETS - 1)
            cr_expect_leq(CASES[i].seconds,
                          metrics_bucket_le(METRICS_DURATION_BASE, CASES[i].bucket) + 1e-12);
        if (CASES[i].bucket > 0)
            cr_expect_gt(CASES[i].seconds,
                         metrics_bucket_le(METRICS_DURATION_BASE, CASES[i].bucket - 1));
    }
}

Test(metrics, sum_adds_each_observation)
{
    struct metrics_hist h = {0};
    metrics_observe(&h, 0.5, 2);
    metrics_observe(&h, 0.25, 1);
    cr_expect_float_eq(h.sum, 1.25, 1e-12);
    cr_expect_eq(h.count, 3);
}

Test(metrics, bucket_bounds_double_from_16_microseconds)
{
    cr_expect_float_eq(metrics_bucket_le(METRICS_DURATION_BASE, 0), 16e-6, 1e-15);
    for (int i = 1; i < METRICS_BUCKETS - 1; i++)
        cr_expect_float_eq(metrics_bucket_le(METRICS_DURATION_BASE, i),
                           2 * metrics_bucket_le(METRICS_DURATION_BASE, i - 1), 1e-12);
}

Test(metrics, size_puts_each_reply_in_the_first_bucket_that_holds_it)
{
    static const struct {
        size_t bytes;
        int bucket;
    } CASES[] = {
        {0, 0},
        {5, 0},
        {64, 0},
        {65, 1},
        {128, 1},
        {129, 2},
        {1024, 4},
        {1025, 5},
        {64 << 20, 20},
        {(64 << 20) + 1, 20},
        {SIZE_MAX / 2, 20},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        struct metrics_hist h = {0};
        metrics_size(&h, CASES[i].bytes);
        cr_expect_eq(h.count, 1);
        cr_expect_float_eq(h.sum, (double)CASES[i].bytes, 1.0);
        for (int b = 0; b < METRICS_BUCKETS; b++)
            cr_expect_eq(h.counts[b], b == CASES[i].bucket ? 1u : 0u, "%zu bytes: bucket %d",
                         CASES[i].bytes, b);
        if (CASES[i].bucket < METRICS_BUCKETS - 1)
            cr_expect_leq((double)CASES[i].bytes,
                          metrics_bucket_le(METRICS_SIZE_BASE, CASES[i].bucket));
        if (CASES[i].bucket > 0 && CASES[i].bucket < METRICS_BUCKETS - 1)
            cr_expect_gt((double)CASES[i].bytes,
                         metrics_bucket_le(METRICS_SIZE_BASE, CASES[i].bucket - 1));
    }
}
