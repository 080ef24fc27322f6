/* bench/micro/tier.c - figures for the local tier (proxy/cache/tier.c): hit ratio of its
 * W-TinyLFU against a plain LRU with the same byte accounting on a Zipf
 * workload and on Zipf mixed with one-hit scans, beside the top-k limit (the
 * hit ratio of the k most probable keys, k the entries the cache size is
 * for: fraction x universe), the cost of its operations in ns/op, and its
 * memory per entry. Prints; asserts nothing.
 *
 * usage: tier_bench [UNIVERSE] [REQUESTS]   (default 1000000 keys, 10000000 requests)
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/cache/tier.h"

#define KEY_LEN      10 /* "k:" and 8 digits */
#define VALUE_LEN    100
#define ZIPF_S       0.99
#define SCAN_EVERY   50000 /* Zipf requests between two scans */
#define SCAN_LEN     25000 /* keys of one scan, each requested once */
#define MAX_ENTRY    4096
#define SLOT_BYTES   177 /* budget per entry: 113 bytes of data and the 64-byte metadata budget */
#define EXPIRE_NEVER 0

static const char VARIANT[] = "GET";
static char value[VALUE_LEN];

/* ---- workload ---------------------------------------------------------------- */

static uint64_t rng_state = 0x853c49e6748fea9bULL;

/* splitmix64 */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

/* Zipf(s) over ranks 0..n-1 by inversion of the precomputed CDF. */
struct zipf {
    double *cdf;
    uint32_t n;
};

static bool zipf_init(struct zipf *z, uint32_t n, double s)
{
    z->n = n;
    z->cdf = malloc(n * sizeof(double));
    if (z->cdf == NULL)
        return false;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        z->cdf[i] = sum += 1.0 / pow((double)i + 1, s);
    for (uint32_t i = 0; i < n; i++)
        z->cdf[i] /= sum;
    return true;
}

static uint32_t zipf_next(const struct zipf *z)
{
    double u = rng_unit();
    uint32_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void key_format(char *buf, uint32_t id)
{
    buf[0] = 'k';
    buf[1] = ':';
    for (int i = KEY_LEN - 1; i >= 2; i--) {
        buf[i] = (char)('0' + id % 10);
        id /= 10;
    }
}

/* ---- the LRU baseline ---------------------------------------------------------- */

/* A plain LRU charged like the tier: tier_entry_cost() per entry plus 8 bytes
 * per hash slot, the table doubling when entries outnumber slots. */
struct lru_node {
    struct lru_node *hnext, *prev, *next;
    uint32_t id;
};

struct lru {
    struct lru_node **slots;
    size_t nslots, entries, bytes, max_bytes;
    struct lru_node *head, *tail;
};

static size_t lru_cost(void)
{
    return tier_entry_cost(KEY_LEN, sizeof(VARIANT) - 1, VALUE_LEN);
}

static void lru_unlink(struct lru *l, struct lru_node *n)
{
    *(n->prev ? &n->prev->next : &l->head) = n->next;
    *(n->next ? &n->next->prev : &l->tail) = n->prev;
}

static void lru_push(struct lru *l, struct lru_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    *(l->head ? &l->head->prev : &l->tail) = n;
    l->head = n;
}

static size_t lru_slot(const struct lru *l, uint32_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 20) & (l->nslots - 1);
}

static void lru_grow(struct lru *l)
{
    size_t n = l->nslots * 2;
    struct lru_node **s = calloc(n, sizeof(*s));
    struct lru_node **old = l->slots;
    size_t oldn = l->nslots;
    l->slots = s;
    l->nslots = n;
    for (size_t i = 0; i < oldn; i++) {
        for (struct lru_node *e = old[i], *next; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = s[lru_slot(l, e->id)];
            s[lru_slot(l, e->id)] = e;
        }
    }
    free(old);
    l->bytes += (n - oldn) * sizeof(*s);
}

static void lru_evict(struct lru *l)
{
    struct lru_node *v = l->tail;
    lru_unlink(l, v);
    struct lru_node **pp = &l->slots[lru_slot(l, v->id)];
    while (*pp != v)
        pp = &(*pp)->hnext;
    *pp = v->hnext;
    free(v);
    l->entries--;
    l->bytes -= lru_cost();
}

/* Returns true on a hit; on a miss inserts id, evicting from the tail. */
static bool lru_request(struct lru *l, uint32_t id)
{
    for (struct lru_node *e = l->slots[lru_slot(l, id)]; e != NULL; e = e->hnext) {
        if (e->id == id) {
            lru_unlink(l, e);
            lru_push(l, e);
            return true;
        }
    }
    struct lru_node *n = malloc(sizeof(*n));
    n->id = id;
    n->hnext = l->slots[lru_slot(l, id)];
    l->slots[lru_slot(l, id)] = n;
    lru_push(l, n);
    l->entries++;
    l->bytes += lru_cost();
    if (l->entries > l->nslots)
        lru_grow(l);
    while (l->bytes > l->max_bytes)
        lru_evict(l);
    return false;
}

static void lru_free(struct lru *l)
{
    while (l->entries > 0)
        lru_evict(l);
    free(l->slots);
}

/* ---- hit ratio ------------------------------------------------------------------- */

static bool tier_request(struct tier *t, uint32_t id)
{
    char key[KEY_LEN];
    struct tier_view v;
    key_format(key, id);
    if (tier_get(t, 0, key, KEY_LEN, VARIANT, sizeof(VARIANT) - 1, 0, &v))
        return true;
    tier_put(t, 0, key, KEY_LEN, VARIANT, sizeof(VARIANT) - 1, value, VALUE_LEN, EXPIRE_NEVER,
             tier_seq(t), 0);
    return false;
}

/* Next key of the stream: Zipf ranks, or with scans every SCAN_EVERY
 * requests SCAN_LEN fresh keys above the universe, each seen once. */
static uint32_t stream_next(const struct zipf *z, bool scans, uint64_t i, uint32_t *fresh)
{
    if (scans && i % (SCAN_EVERY + SCAN_LEN) >= SCAN_EVERY)
        return z->n + (*fresh)++;
    return zipf_next(z);
}

/* The best hit ratio a cache of k entries can have on the Zipf requests:
 * that of the k most probable keys, always resident. */
static double topk_limit(const struct zipf *z, size_t k)
{
    return k == 0 ? 0 : z->cdf[(k < z->n ? k : z->n) - 1];
}

/* Runs the same stream through the tier and the LRU; prints one table row. */
static void ratio_row(const struct zipf *z, double fraction, uint64_t requests, bool scans)
{
    size_t entries = (size_t)(fraction * z->n);
    size_t max_bytes = entries * SLOT_BYTES + 4096;
    struct tier *t = tier_create(max_bytes, MAX_ENTRY);
    struct lru l = {.nslots = 64, .max_bytes = max_bytes};
    l.slots = calloc(l.nslots, sizeof(*l.slots));
    if (t == NULL || l.slots == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    uint64_t tier_hits = 0, lru_hits = 0, counted = 0, seed = rng_state;
    uint32_t fresh = 0;
    /* Counted over the second half: the top-k limit is a steady state, which
     * the first half's cold misses of every key are not. */
    for (uint64_t i = 0; i < requests; i++) {
        uint32_t id = stream_next(z, scans, i, &fresh);
        bool counts = id < z->n && i >= requests / 2;
        tier_hits += tier_request(t, id) && counts;
        counted += counts;
    }
    rng_state = seed;
    fresh = 0;
    for (uint64_t i = 0; i < requests; i++) {
        uint32_t id = stream_next(z, scans, i, &fresh);
        lru_hits += lru_request(&l, id) && id < z->n && i >= requests / 2;
    }
    double ratio = (double)tier_hits / (double)counted, limit = topk_limit(z, entries);
    printf("| %-13s | %6.2f%% | %9zu | %8zu | %8zu | %7.2f%% | %7.2f%% | %+6.2f | %6.2f%% | %+6.2f "
           "|\n",
           scans ? "zipf + scans" : "zipf", fraction * 100, max_bytes, tier_stats(t)->entries,
           l.entries, 100.0 * ratio, 100.0 * (double)lru_hits / (double)counted,
           100.0 * (double)(tier_hits - lru_hits) / (double)counted, 100.0 * limit,
           100.0 * (ratio - limit));
    tier_destroy(&t);
    lru_free(&l);
}

/* ---- costs ----------------------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint32_t *shuffled(uint32_t n)
{
    uint32_t *ids = malloc(n * sizeof(*ids));
    if (ids == NULL)
        exit(1);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rng_next() % (i + 1)), x = ids[i];
        ids[i] = ids[j];
        ids[j] = x;
    }
    return ids;
}

static double fill(struct tier *t, const uint32_t *ids, uint32_t n)
{
    char key[KEY_LEN];
    double start = now_ns();
    for (uint32_t i = 0; i < n; i++) {
        key_format(key, ids[i]);
        tier_put(t, 0, key, KEY_LEN, VARIANT, sizeof(VARIANT) - 1, value, VALUE_LEN, EXPIRE_NEVER,
                 tier_seq(t), 0);
    }
    return (now_ns() - start) / n;
}

/* ns per random load that depends on the one before, over bytes of memory
 * (a pointer chase through a random cycle of 64-byte lines): the least each
 * of a hit's two dependent steps, the bucket and then the entry, costs once
 * the tier is larger than the caches. */
static double chase_ns(size_t bytes, uint32_t steps)
{
    uint32_t n = (uint32_t)(bytes / 64);
    uint32_t *order = shuffled(n);
    char *mem = malloc((size_t)n * 64);
    if (mem == NULL)
        exit(1);
    for (uint32_t i = 0; i < n; i++)
        *(char **)(mem + (size_t)order[i] * 64) = mem + (size_t)order[(i + 1) % n] * 64;
    char *p = mem + (size_t)order[0] * 64;
    double start = now_ns();
    for (uint32_t i = 0; i < steps; i++)
        p = *(char **)p;
    double ns = (now_ns() - start) / steps;
    if (p == NULL) /* keeps the chase */
        puts("");
    free(order);
    free(mem);
    return ns;
}

static void costs(uint32_t n)
{
    size_t max_bytes = (size_t)n * SLOT_BYTES * 2 + 8 * 1024 * 1024;
    struct tier *t = tier_create(max_bytes, MAX_ENTRY);
    uint32_t *ids = shuffled(n);
    char key[KEY_LEN];
    struct tier_view v;
    double put_ns = fill(t, ids, n);
    const struct tier_stats *s = tier_stats(t);
    size_t raw = (size_t)KEY_LEN + sizeof(VARIANT) - 1 + VALUE_LEN;
    size_t hits = 0;
    double start = now_ns();
    for (uint32_t i = 0; i < n; i++) {
        key_format(key, ids[(i * 7919u) % n]);
        hits += tier_get(t, 0, key, KEY_LEN, VARIANT, sizeof(VARIANT) - 1, 0, &v);
    }
    double get_ns = (now_ns() - start) / n;
    printf("entries %zu (%zu hits of %u gets), bytes %zu, of which tables %zu\n", s->entries, hits,
           n, s->bytes, s->table_bytes);
    printf("bytes per entry: %.1f total (key+variant+reply %zu), %.1f metadata incl. hash table "
           "and fixed tables; tier_overhead_per_entry() = %zu\n",
           (double)s->bytes / (double)s->entries, raw,
           (double)(s->bytes - raw * s->entries) / (double)s->entries, tier_overhead_per_entry());
    printf("tier_put (new key, cold) %8.1f ns/op\n", put_ns);
    printf("tier_get (hit)           %8.1f ns/op\n", get_ns);
    printf("a dependent random load  %8.1f ns over %zu MB (a hit makes two: bucket, entry)\n",
           chase_ns(s->bytes, n), s->bytes >> 20);
    start = now_ns();
    for (uint32_t i = 0; i < n; i++) {
        key_format(key, ids[i]);
        tier_invalidate_key(t, 0, key, KEY_LEN);
    }
    printf("tier_invalidate_key      %8.1f ns/op (%u keys, resident)\n", (now_ns() - start) / n, n);
    printf("tier_put (refill, warm)  %8.1f ns/op\n", fill(t, ids, n));
    printf("tier_put (replace)       %8.1f ns/op\n", fill(t, ids, n));
    size_t entries = s->entries;
    start = now_ns();
    tier_flush_all(t);
    printf("tier_flush_all           %8.1f ms at %zu entries\n", (now_ns() - start) / 1e6, entries);
    printf("tier_put (after flush)   %8.1f ns/op\n", fill(t, ids, n));
    tier_destroy(&t);
    /* a quarter of the keys fit: three puts in four evict */
    t = tier_create((size_t)n * SLOT_BYTES / 4 + 8 * 1024 * 1024, MAX_ENTRY);
    printf("tier_put (evicting)      %8.1f ns/op\n", fill(t, ids, n));
    free(ids);
    tier_destroy(&t);
}

int main(int argc, char **argv)
{
    uint32_t universe = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    uint64_t requests = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
    struct zipf z;
    memset(value, 'v', sizeof(value));
    if (universe < 1000 || !zipf_init(&z, universe, ZIPF_S)) {
        fprintf(stderr, "usage: tier_bench [UNIVERSE >= 1000] [REQUESTS]\n");
        return 2;
    }
    printf("hit ratio, Zipf s=%.2f over %u keys, %llu requests, %d-byte values "
           "(scans: %d fresh keys after every %d Zipf requests; ratio over the Zipf requests "
           "of the second half, once warm)\n\n",
           ZIPF_S, universe, (unsigned long long)requests, VALUE_LEN, SCAN_LEN, SCAN_EVERY);
    printf("| workload      | cache   | max_bytes | entries  | lru ent. | w-tinylfu | lru      | "
           "diff   | top-k   | gap    |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    static const double fractions[] = {0.001, 0.01, 0.05, 0.10};
    for (size_t i = 0; i < sizeof(fractions) / sizeof(fractions[0]); i++)
        ratio_row(&z, fractions[i], requests, false);
    ratio_row(&z, 0.01, requests, true);
    ratio_row(&z, 0.10, requests, true);
    printf("\ncosts at %u entries\n", universe);
    costs(universe);
    free(z.cdf);
    return 0;
}
