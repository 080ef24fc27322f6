/* hist.h - latency histogram with bounded relative error, fixed memory,
 * mergeable. Pure: no I/O, no clock.
 *
 * Log-linear buckets as in HdrHistogram: values below 2 * HIST_SUB are exact,
 * above that each power of two is split into HIST_SUB equal buckets, so a
 * bucket is at most 1/HIST_SUB (1/64, about 1.6%) of its values wide. Values
 * are unsigned integers in any unit (the load generator records ns) up to
 * HIST_MAX (2^37 - 1, about 137 s in ns); larger values are counted in the top
 * bucket and in `clamped`. Count, sum, min and max are exact.
 */
#ifndef NEARCACHE_BENCH_HIST_H
#define NEARCACHE_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS) /* buckets per power of two */
#define HIST_MAX_BITS 37
#define HIST_MAX      ((UINT64_C(1) << HIST_MAX_BITS) - 1)
/* hist_index(HIST_MAX) + 1 */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

/* Plain data: a zeroed struct is not valid, call hist_init(). About 17 KB. */
struct hist {
    uint64_t count;
    uint64_t sum;     /* exact sum of the recorded values (before clamping) */
    uint64_t min;     /* UINT64_MAX while empty */
    uint64_t max;     /* exact, before clamping */
    uint64_t clamped; /* values above HIST_MAX */
    uint64_t bucket[HIST_BUCKETS];
};

/* Empties h. */
void hist_init(struct hist *h);

/* Index of the bucket that holds v (v <= HIST_MAX). */
size_t hist_index(uint64_t v);

/* Largest value that falls into bucket i (i < HIST_BUCKETS). */
uint64_t hist_upper(size_t i);

/* Records one value. */
void hist_record(struct hist *h, uint64_t v);

/* Adds every value recorded in src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at percentile p (0 < p <= 100): the upper bound of the bucket
 * holding the ceil(p/100 * count)-th smallest value, but never more than the
 * exact max. At most 1/HIST_SUB above the true value. 0 when h is empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Exact mean of the recorded values; 0 when h is empty. */
double hist_mean(const struct hist *h);

#endif
