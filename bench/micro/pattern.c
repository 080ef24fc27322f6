/* bench/micro/pattern.c - cost of pattern_set_first (policy/pattern.c) for one key
 * against sets of 10 and 1,000 rules with realistic prefixes, in ns/op, and
 * the ratio of the two. Prints; asserts nothing.
 *
 * usage: pattern_bench [ITERATIONS]   (default 2000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/pattern.h"

static const char KEY[] = "user:12345:profile";

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Rule i: a few shared rules, then tenant rules that never fit KEY, with the
 * rule that matches KEY last so every earlier candidate must be passed. */
static void rule_text(size_t i, size_t n, char *out, size_t len)
{
    static const char *const shared[] = {"session:*", "cart:{id}", "feed:*:items", "*:lock"};

    if (i + 1 == n)
        snprintf(out, len, "user:{id}:*");
    else if (i < 4)
        snprintf(out, len, "%s", shared[i]);
    else
        snprintf(out, len, "tenant%zu:{id}:%s", i, i % 2 ? "*" : "meta");
}

static double bench_set(size_t n, long iters)
{
    struct pattern **pats = calloc(n, sizeof(*pats));
    struct pattern_set *set = pattern_set_create();
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    char err[128], text[64];
    volatile size_t sink = 0;
    double t0, t1;

    for (size_t i = 0; i < n; i++) {
        rule_text(i, n, text, sizeof(text));
        pats[i] = pattern_compile(text, strlen(text), err, sizeof(err));
        if (pats[i] == NULL || pattern_set_add(set, pats[i], pats[i]) < 0) {
            fprintf(stderr, "%s: %s\n", text, err);
            exit(1);
        }
    }
    pattern_set_build(set);
    t0 = now_ns();
    for (long k = 0; k < iters; k++)
        sink += pattern_set_first(set, KEY, sizeof(KEY) - 1, caps) != NULL;
    t1 = now_ns();
    if (sink != (size_t)iters)
        fprintf(stderr, "unexpected miss\n");
    pattern_set_destroy(&set);
    for (size_t i = 0; i < n; i++)
        pattern_destroy(&pats[i]);
    free(pats);
    return (t1 - t0) / (double)iters;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    double small = bench_set(10, iters), large = bench_set(1000, iters);

    printf("pattern_set_first \"%s\": 10 rules %.1f ns/op, 1000 rules %.1f ns/op, ratio %.2f\n",
           KEY, small, large, large / small);
    return 0;
}
