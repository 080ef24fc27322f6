/* tier.c - the local tier: a chained hash table of entries keyed by
 * (db, key), W-TinyLFU eviction over three LRU lists, a count-min sketch for
 * admission and a per-bucket invalidation sequence for the fill race.
 * See tier.h for the contract.
 */
#include "proxy/cache/tier.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/hash.h"

#define TIER_BUCKETS_MIN  64         /* initial hash table size */
#define TIER_DB_MAX       UINT16_MAX /* entries store db in 16 bits */
#define TIER_LEN_MAX      UINT32_MAX /* entries store lengths in 32 bits */
#define TIER_SKETCH_ROWS  4          /* count-min rows */
#define TIER_SKETCH_RESET 10         /* halve after width x this many increments */
#define TIER_NIBBLE_LOW   0x7777777777777777ULL

typedef enum {
    TIER_SEG_WINDOW,    /* admission window: plain LRU, 1% of the budget */
    TIER_SEG_PROBATION, /* main space, seen once since admission: 20% of main */
    TIER_SEG_PROTECTED, /* main space, hit again while in probation: 80% of main */
    TIER_SEG_COUNT,
    TIER_SEG_NONE = TIER_SEG_COUNT, /* in no list: being moved between segments */
} tier_seg_e;

typedef enum {
    TIER_DROP_EVICT,
    TIER_DROP_EXPIRE,
    TIER_DROP_INVALIDATE,
    TIER_DROP_REPLACE
} tier_drop_e;

/* One cached variant; data holds the key, the variant, then the reply. */
struct tier_entry {
    struct tier_entry *hnext; /* hash chain */
    struct tier_entry *prev;  /* towards the head (most recent) of its segment */
    struct tier_entry *next;  /* towards the tail (least recent) */
    uint64_t expire_at_ms;    /* 0 = never */
    uint32_t klen;
    uint32_t vlen;
    uint32_t rlen;
    uint16_t db;
    uint8_t seg; /* tier_seg_e */
    char data[];
};

struct tier_list {
    struct tier_entry *head;
    struct tier_entry *tail;
    size_t bytes;
};

/* The identity of a request, as passed in. */
struct tier_id {
    int db;
    const char *key;
    size_t klen;
    const char *variant;
    size_t vlen;
};

struct tier {
    struct tier_stats stats;
    struct tier_entry **buckets;
    size_t nbuckets; /* power of two */
    struct tier_list seg[TIER_SEG_COUNT];
    uint64_t *sketch;     /* TIER_SKETCH_ROWS rows of sketch_width 4-bit counters */
    size_t sketch_width;  /* counters per row, power of two */
    int sketch_shift;     /* 64 - log2(sketch_width) */
    uint64_t sketch_adds; /* increments since the last halving */
    uint64_t *inv_seq;    /* per hash bucket: seq of the last invalidation */
    uint32_t *pending;    /* per key hash bucket (any db): writes in flight */
    uint32_t pending_all; /* writes in flight whose keys are not known */
    size_t inv_mask;
    uint64_t seq;       /* bumped by every invalidation and flush */
    uint64_t flush_seq; /* seq of the last flush_db or flush_all */
    size_t max_entry_bytes;
    size_t expire_cursor;              /* next bucket tier_expire_some() examines */
    const struct tier_entry *incoming; /* the entry tier_put() is storing */
    bool incoming_dropped;             /* set when eviction chose it */
};

/* Odd multipliers that give each sketch row its own index for one hash. */
static const uint64_t TIER_ROW_SEEDS[TIER_SKETCH_ROWS] = {
    0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL, 0x94d049bb133111ebULL, 0xd6e8feb86659fd93ULL};

/* ---- hashing --------------------------------------------------------------- */

/* MurmurHash64A of the key alone: the writes in flight are counted by it,
 * whatever the database. */
static uint64_t tier_key_hash(const char *key, size_t klen)
{
    return hash_murmur64a(key, klen, 0);
}

/* The hash of (db, key) from the key's: the entries' and invalidations'. */
static uint64_t tier_db_hash(uint64_t hk, int db)
{
    return hk ^ (uint64_t)db * 0x9e3779b97f4a7c15ULL;
}

static uint64_t tier_hash(int db, const char *key, size_t klen)
{
    return tier_db_hash(tier_key_hash(key, klen), db);
}

/* Whether a write of the key whose hash is hk may be in flight. */
static bool tier_pending(const struct tier *t, uint64_t hk)
{
    return t->pending_all > 0 || t->pending[hk & t->inv_mask] > 0;
}

static uint64_t tier_entry_hash(const struct tier_entry *e)
{
    return tier_hash(e->db, e->data, e->klen);
}

/* ---- frequency sketch ------------------------------------------------------ */

static size_t tier_sketch_index(const struct tier *t, uint64_t h, int row)
{
    return (size_t)((h * TIER_ROW_SEEDS[row]) >> t->sketch_shift);
}

static unsigned tier_sketch_get(const struct tier *t, int row, size_t idx)
{
    uint64_t word = t->sketch[(size_t)row * (t->sketch_width / 16) + idx / 16];
    return (unsigned)(word >> (4 * (idx % 16))) & 15;
}

/* Halves every counter: popularity ages out. */
static void tier_sketch_halve(struct tier *t)
{
    size_t words = TIER_SKETCH_ROWS * t->sketch_width / 16;
    for (size_t i = 0; i < words; i++)
        t->sketch[i] = (t->sketch[i] >> 1) & TIER_NIBBLE_LOW;
    t->sketch_adds /= 2;
}

static void tier_sketch_increment(struct tier *t, uint64_t h)
{
    bool added = false;
    for (int row = 0; row < TIER_SKETCH_ROWS; row++) {
        size_t idx = tier_sketch_index(t, h, row);
        if (tier_sketch_get(t, row, idx) < 15) {
            t->sketch[(size_t)row * (t->sketch_width / 16) + idx / 16] += 1ULL << (4 * (idx % 16));
            added = true;
        }
    }
    if (added && ++t->sketch_adds >= TIER_SKETCH_RESET * t->sketch_width)
        tier_sketch_halve(t);
}

static unsigned tier_sketch_frequency(const struct tier *t, uint64_t h)
{
    unsigned f = 15;
    for (int row = 0; row < TIER_SKETCH_ROWS; row++) {
        unsigned c = tier_sketch_get(t, row, tier_sketch_index(t, h, row));
        f = c < f ? c : f;
    }
    return f;
}

/* ---- entries, lists, chains ------------------------------------------------ */

size_t tier_entry_cost(size_t klen, size_t vlen, size_t rlen)
{
    return sizeof(struct tier_entry) + klen + vlen + rlen;
}

size_t tier_overhead_per_entry(void)
{
    return sizeof(struct tier_entry) + 2 * sizeof(struct tier_entry *);
}

static size_t tier_cost(const struct tier_entry *e)
{
    return tier_entry_cost(e->klen, e->vlen, e->rlen);
}

static bool tier_expired(const struct tier_entry *e, uint64_t now_ms)
{
    return e->expire_at_ms != 0 && e->expire_at_ms <= now_ms;
}

static bool tier_same_key(const struct tier_entry *e, int db, const char *key, size_t klen)
{
    return e->db == db && e->klen == klen && memcmp(e->data, key, klen) == 0;
}

static void tier_list_push(struct tier *t, tier_seg_e seg, struct tier_entry *e)
{
    struct tier_list *l = &t->seg[seg];
    e->prev = NULL;
    e->next = l->head;
    if (l->head != NULL)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
    l->bytes += tier_cost(e);
    e->seg = (uint8_t)seg;
}

static void tier_list_unlink(struct tier *t, struct tier_entry *e)
{
    struct tier_list *l = &t->seg[e->seg];
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    l->bytes -= tier_cost(e);
    e->seg = TIER_SEG_NONE;
}

static struct tier_entry **tier_bucket(const struct tier *t, uint64_t h)
{
    return &t->buckets[h & (t->nbuckets - 1)];
}

static bool tier_key_resident(const struct tier *t, uint64_t h, int db, const char *key,
                              size_t klen)
{
    for (const struct tier_entry *e = *tier_bucket(t, h); e != NULL; e = e->hnext)
        if (tier_same_key(e, db, key, klen))
            return true;
    return false;
}

/* Returns the chain link that points to the entry of id, or NULL. */
static struct tier_entry **tier_find(const struct tier *t, uint64_t h, const struct tier_id *id)
{
    for (struct tier_entry **pp = tier_bucket(t, h); *pp != NULL; pp = &(*pp)->hnext) {
        const struct tier_entry *e = *pp;
        if (e->vlen == id->vlen && tier_same_key(e, id->db, id->key, id->klen) &&
            memcmp(e->data + e->klen, id->variant, id->vlen) == 0)
            return pp;
    }
    return NULL;
}

/* Drops the entry *pp points to: unlinks it from its chain and segment,
 * updates the counters for the reason given and frees it. */
static void tier_drop_at(struct tier *t, struct tier_entry **pp, tier_drop_e why)
{
    struct tier_entry *e = *pp;
    *pp = e->hnext;
    if (e->seg != TIER_SEG_NONE)
        tier_list_unlink(t, e);
    if (!tier_key_resident(t, tier_entry_hash(e), e->db, e->data, e->klen))
        t->stats.keys--;
    t->stats.entries--;
    t->stats.bytes -= tier_cost(e);
    if (why == TIER_DROP_EVICT)
        t->stats.evictions++;
    else if (why == TIER_DROP_EXPIRE)
        t->stats.expirations++;
    else if (why == TIER_DROP_INVALIDATE)
        t->stats.invalidated_entries++;
    if (e == t->incoming)
        t->incoming_dropped = true;
    free(e);
}

static void tier_drop(struct tier *t, struct tier_entry *e, tier_drop_e why)
{
    struct tier_entry **pp = tier_bucket(t, tier_entry_hash(e));
    while (*pp != e)
        pp = &(*pp)->hnext;
    tier_drop_at(t, pp, why);
}

/* Doubles the hash table once entries outnumber buckets; on ENOMEM keeps the
 * current one (longer chains, still correct). */
static void tier_table_grow(struct tier *t)
{
    size_t n = t->nbuckets * 2;
    struct tier_entry **nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct tier_entry *e = t->buckets[i];
        while (e != NULL) {
            struct tier_entry *next = e->hnext;
            struct tier_entry **b = &nb[tier_entry_hash(e) & (n - 1)];
            e->hnext = *b;
            *b = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->stats.table_bytes += (n - t->nbuckets) * sizeof(*nb);
    t->stats.bytes += (n - t->nbuckets) * sizeof(*nb);
    t->nbuckets = n;
}

/* ---- W-TinyLFU --------------------------------------------------------------- */

/* Byte capacities of the segments, from what the tables leave of max_bytes. */
struct tier_caps {
    size_t entries; /* all entries together */
    size_t window;
    size_t main; /* probation + protected */
    size_t protected;
};

static struct tier_caps tier_caps(const struct tier *t)
{
    struct tier_caps c;
    size_t max = t->stats.max_bytes, table = t->stats.table_bytes;
    c.entries = max > table ? max - table : 0;
    c.window = c.entries / 100;
    c.main = c.entries - c.window;
    c.protected = c.main / 5 * 4;
    return c;
}

static size_t tier_main_bytes(const struct tier *t)
{
    return t->seg[TIER_SEG_PROBATION].bytes + t->seg[TIER_SEG_PROTECTED].bytes;
}

/* The main space's least valuable entry: probation's LRU, else protected's. */
static struct tier_entry *tier_main_victim(const struct tier *t)
{
    struct tier_entry *v = t->seg[TIER_SEG_PROBATION].tail;
    return v != NULL ? v : t->seg[TIER_SEG_PROTECTED].tail;
}

/* Moves candidate c (just out of the window, in no list) into probation if
 * it fits, evicting main's victims while c's key is more frequent than
 * theirs; otherwise evicts c. Expired victims go first, whatever their rank. */
static void tier_main_admit(struct tier *t, struct tier_entry *c, size_t cap, uint64_t now_ms)
{
    size_t cost = tier_cost(c);
    unsigned freq = tier_sketch_frequency(t, tier_entry_hash(c));
    while (tier_main_bytes(t) + cost > cap) {
        struct tier_entry *v = tier_main_victim(t);
        if (v == NULL || cost > cap) {
            tier_drop(t, c, TIER_DROP_EVICT);
            return;
        }
        if (tier_expired(v, now_ms)) {
            tier_drop(t, v, TIER_DROP_EXPIRE);
        } else if (freq > tier_sketch_frequency(t, tier_entry_hash(v))) {
            tier_drop(t, v, TIER_DROP_EVICT);
        } else {
            tier_drop(t, c, TIER_DROP_EVICT);
            return;
        }
    }
    tier_list_push(t, TIER_SEG_PROBATION, c);
}

static void tier_demote_protected(struct tier *t, size_t cap)
{
    while (t->seg[TIER_SEG_PROTECTED].bytes > cap) {
        struct tier_entry *d = t->seg[TIER_SEG_PROTECTED].tail;
        tier_list_unlink(t, d);
        tier_list_push(t, TIER_SEG_PROBATION, d);
    }
}

/* Restores every segment's bound after a put: the window's overflow goes to
 * admission, protected's to probation, and whatever still exceeds the budget
 * (after the table grew) is evicted from the least valuable end. */
static void tier_enforce(struct tier *t, uint64_t now_ms)
{
    struct tier_caps caps = tier_caps(t);
    while (t->seg[TIER_SEG_WINDOW].bytes > caps.window) {
        struct tier_entry *c = t->seg[TIER_SEG_WINDOW].tail;
        tier_list_unlink(t, c);
        tier_main_admit(t, c, caps.main, now_ms);
    }
    tier_demote_protected(t, caps.protected);
    while (t->stats.bytes - t->stats.table_bytes > caps.entries) {
        struct tier_entry *v = tier_main_victim(t);
        tier_drop(t, v != NULL ? v : t->seg[TIER_SEG_WINDOW].tail, TIER_DROP_EVICT);
    }
}

/* Records a hit: most recent in its segment; a probation hit is promoted. */
static void tier_touch(struct tier *t, struct tier_entry *e)
{
    tier_seg_e seg = (tier_seg_e)e->seg;
    tier_list_unlink(t, e);
    if (seg == TIER_SEG_PROBATION) {
        tier_list_push(t, TIER_SEG_PROTECTED, e);
        tier_demote_protected(t, tier_caps(t).protected);
    } else {
        tier_list_push(t, seg, e);
    }
}

/* ---- lifecycle --------------------------------------------------------------- */

static size_t tier_pow2_floor(size_t n)
{
    size_t p = 1;
    while (p <= n / 2)
        p *= 2;
    return p;
}

static size_t tier_clamp(size_t n, size_t lo, size_t hi)
{
    return n < lo ? lo : n > hi ? hi : n;
}

struct tier *tier_create(size_t max_bytes, size_t max_entry_bytes)
{
    struct tier *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->sketch_width = tier_clamp(tier_pow2_floor(max_bytes / 128), 64, (size_t)1 << 26);
    t->sketch_shift = 64;
    for (size_t w = t->sketch_width; w > 1; w /= 2)
        t->sketch_shift--;
    size_t ninv = tier_clamp(tier_pow2_floor(max_bytes / 1024), 256, 65536);
    t->inv_mask = ninv - 1;
    t->nbuckets = TIER_BUCKETS_MIN;
    t->sketch = calloc(TIER_SKETCH_ROWS * t->sketch_width / 16, sizeof(uint64_t));
    t->inv_seq = calloc(ninv, sizeof(uint64_t));
    t->pending = calloc(ninv, sizeof(uint32_t));
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    t->stats.table_bytes = sizeof(*t) + TIER_SKETCH_ROWS * t->sketch_width / 2 +
                           ninv * (sizeof(uint64_t) + sizeof(uint32_t)) +
                           t->nbuckets * sizeof(*t->buckets);
    t->stats.bytes = t->stats.table_bytes;
    t->stats.max_bytes = max_bytes;
    t->max_entry_bytes = max_entry_bytes;
    if (t->sketch == NULL || t->inv_seq == NULL || t->pending == NULL || t->buckets == NULL ||
        max_bytes <= t->stats.table_bytes)
        tier_destroy(&t);
    return t;
}

/* Frees every entry and empties the segments and the table. */
static void tier_free_entries(struct tier *t)
{
    for (int s = 0; s < TIER_SEG_COUNT; s++) {
        struct tier_entry *e = t->seg[s].head;
        while (e != NULL) {
            struct tier_entry *next = e->next;
            free(e);
            e = next;
        }
        t->seg[s].head = t->seg[s].tail = NULL;
        t->seg[s].bytes = 0;
    }
    memset(t->buckets, 0, t->nbuckets * sizeof(*t->buckets));
}

void tier_destroy(struct tier **t)
{
    if (t == NULL || *t == NULL)
        return;
    if ((*t)->buckets != NULL)
        tier_free_entries(*t);
    free((*t)->buckets);
    free((*t)->sketch);
    free((*t)->inv_seq);
    free((*t)->pending);
    free(*t);
    *t = NULL;
}

/* ---- lookups and fills --------------------------------------------------------- */

static bool tier_id_valid(const struct tier_id *id)
{
    return id->db >= 0 && id->db <= TIER_DB_MAX && id->klen <= TIER_LEN_MAX &&
           id->vlen <= TIER_LEN_MAX;
}

bool tier_get(struct tier *t, int db, const char *key, size_t klen, const char *variant,
              size_t vlen, uint64_t now_ms, struct tier_view *out)
{
    struct tier_id id = {db, key, klen, variant, vlen};
    uint64_t hk = tier_key_hash(key, klen), h = tier_db_hash(hk, db);
    tier_sketch_increment(t, h);
    struct tier_entry **pp = tier_id_valid(&id) ? tier_find(t, h, &id) : NULL;
    if (pp != NULL && tier_expired(*pp, now_ms)) {
        tier_drop_at(t, pp, TIER_DROP_EXPIRE);
        pp = NULL;
    }
    if (pp == NULL || tier_pending(t, hk)) {
        t->stats.misses++;
        return false;
    }
    struct tier_entry *e = *pp;
    tier_touch(t, e);
    t->stats.hits++;
    out->reply = e->data + e->klen + e->vlen;
    out->len = e->rlen;
    return true;
}

size_t tier_variants(const struct tier *t, int db, const char *key, size_t klen, uint64_t now_ms,
                     tier_variant_fn fn, void *arg)
{
    size_t n = 0;
    for (const struct tier_entry *e = *tier_bucket(t, tier_hash(db, key, klen)); e != NULL;
         e = e->hnext) {
        if (!tier_same_key(e, db, key, klen) || tier_expired(e, now_ms))
            continue;
        const char *v = e->data + e->klen;
        fn(arg, &(struct tier_variant){v, e->vlen, {v + e->vlen, e->rlen}, e->expire_at_ms});
        n++;
    }
    return n;
}

/* Copies id and the reply into a new entry, in no list and no chain. */
static struct tier_entry *tier_entry_create(const struct tier_id *id, const char *reply,
                                            size_t rlen, uint64_t expire_at_ms)
{
    struct tier_entry *e = malloc(tier_entry_cost(id->klen, id->vlen, rlen));
    if (e == NULL)
        return NULL;
    e->hnext = e->prev = e->next = NULL;
    e->expire_at_ms = expire_at_ms;
    e->klen = (uint32_t)id->klen;
    e->vlen = (uint32_t)id->vlen;
    e->rlen = (uint32_t)rlen;
    e->db = (uint16_t)id->db;
    e->seg = TIER_SEG_NONE;
    memcpy(e->data, id->key, id->klen);
    memcpy(e->data + id->klen, id->variant, id->vlen);
    memcpy(e->data + id->klen + id->vlen, reply, rlen);
    return e;
}

/* Whether the key of hashes hk (alone) and h (with its db) was invalidated
 * since since_seq, or has a write in flight. */
static bool tier_changed(const struct tier *t, uint64_t hk, uint64_t h, uint64_t since_seq)
{
    return since_seq < t->flush_seq || since_seq < t->inv_seq[h & t->inv_mask] ||
           tier_pending(t, hk);
}

/* Why a fill of id must not be stored, or 0. */
static int tier_put_check(const struct tier *t, const struct tier_id *id, uint64_t hk, uint64_t h,
                          size_t rlen, uint64_t expire_at_ms, uint64_t since_seq, uint64_t now_ms)
{
    if (!tier_id_valid(id) || rlen > TIER_LEN_MAX)
        return TIER_PUT_INVALID;
    if (tier_changed(t, hk, h, since_seq))
        return TIER_PUT_STALE;
    if (rlen > t->max_entry_bytes ||
        tier_entry_cost(id->klen, id->vlen, rlen) > tier_caps(t).entries)
        return TIER_PUT_TOO_BIG;
    if (expire_at_ms != 0 && expire_at_ms <= now_ms)
        return TIER_PUT_REJECTED;
    return 0;
}

bool tier_changed_since(const struct tier *t, int db, const char *key, size_t klen,
                        uint64_t since_seq)
{
    uint64_t hk = tier_key_hash(key, klen);
    return tier_changed(t, hk, tier_db_hash(hk, db), since_seq);
}

void tier_write_begin(struct tier *t, const char *key, size_t klen)
{
    t->pending[tier_key_hash(key, klen) & t->inv_mask]++;
}

void tier_write_end(struct tier *t, const char *key, size_t klen)
{
    t->pending[tier_key_hash(key, klen) & t->inv_mask]--;
}

void tier_write_all_begin(struct tier *t)
{
    t->pending_all++;
}

void tier_write_all_end(struct tier *t)
{
    t->pending_all--;
}

int tier_put(struct tier *t, int db, const char *key, size_t klen, const char *variant, size_t vlen,
             const char *reply, size_t rlen, uint64_t expire_at_ms, uint64_t since_seq,
             uint64_t now_ms)
{
    struct tier_id id = {db, key, klen, variant, vlen};
    uint64_t hk = tier_key_hash(key, klen), h = tier_db_hash(hk, db);
    int why = tier_put_check(t, &id, hk, h, rlen, expire_at_ms, since_seq, now_ms);
    if (why == TIER_PUT_STALE || why == TIER_PUT_INVALID) {
        t->stats.fills_refused += why == TIER_PUT_STALE;
        t->stats.fills_rejected += why == TIER_PUT_INVALID;
        return why;
    }
    struct tier_entry **old = tier_find(t, h, &id);
    tier_seg_e seg = old != NULL ? (tier_seg_e)(*old)->seg : TIER_SEG_WINDOW;
    if (old != NULL)
        tier_drop_at(t, old, TIER_DROP_REPLACE); /* superseded even when not stored */
    if (why != 0) {
        t->stats.fills_rejected++;
        return why;
    }
    struct tier_entry *e = tier_entry_create(&id, reply, rlen, expire_at_ms);
    if (e == NULL)
        return -1;
    struct tier_entry **b = tier_bucket(t, h);
    t->stats.keys += !tier_key_resident(t, h, db, key, klen);
    e->hnext = *b;
    *b = e;
    tier_list_push(t, seg, e);
    t->stats.entries++;
    t->stats.bytes += tier_cost(e);
    if (t->stats.entries > t->nbuckets)
        tier_table_grow(t);
    t->incoming = e;
    t->incoming_dropped = false;
    tier_enforce(t, now_ms);
    t->incoming = NULL;
    if (t->incoming_dropped) {
        t->stats.fills_rejected++;
        return TIER_PUT_REJECTED;
    }
    t->stats.fills++;
    return 0;
}

/* ---- invalidation and expiry ------------------------------------------------------ */

uint64_t tier_seq(const struct tier *t)
{
    return t->seq;
}

size_t tier_invalidate_key(struct tier *t, int db, const char *key, size_t klen)
{
    uint64_t h = tier_hash(db, key, klen);
    size_t n = 0;
    struct tier_entry **pp = tier_bucket(t, h);
    while (*pp != NULL) {
        if (tier_same_key(*pp, db, key, klen)) {
            tier_drop_at(t, pp, TIER_DROP_INVALIDATE);
            n++;
        } else {
            pp = &(*pp)->hnext;
        }
    }
    t->inv_seq[h & t->inv_mask] = ++t->seq;
    t->stats.invalidated_keys += n > 0;
    return n;
}

void tier_flush_db(struct tier *t, int db)
{
    for (int s = 0; s < TIER_SEG_COUNT; s++) {
        struct tier_entry *e = t->seg[s].head;
        while (e != NULL) {
            struct tier_entry *next = e->next;
            if (e->db == db)
                tier_drop(t, e, TIER_DROP_INVALIDATE);
            e = next;
        }
    }
    t->flush_seq = ++t->seq;
}

void tier_flush_all(struct tier *t)
{
    tier_free_entries(t);
    t->stats.invalidated_entries += t->stats.entries;
    t->stats.entries = 0;
    t->stats.keys = 0;
    t->stats.bytes = t->stats.table_bytes;
    t->flush_seq = ++t->seq;
}

size_t tier_expire_some(struct tier *t, uint64_t now_ms, size_t budget)
{
    size_t n = 0;
    size_t work = 0;
    while (work < budget && t->stats.entries > 0) {
        size_t b = t->expire_cursor++ & (t->nbuckets - 1);
        struct tier_entry **pp = &t->buckets[b];
        work++;
        while (*pp != NULL) {
            work++;
            if (tier_expired(*pp, now_ms)) {
                tier_drop_at(t, pp, TIER_DROP_EXPIRE);
                n++;
            } else {
                pp = &(*pp)->hnext;
            }
        }
    }
    return n;
}

const struct tier_stats *tier_stats(const struct tier *t)
{
    return &t->stats;
}

/* ---- self-check ------------------------------------------------------------------- */

static int tier_fail(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason to why. Returns -1. */
static int tier_fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Walks segment s: its links both ways, its entries' marks and its bytes.
 * Adds its entries to *n, stopping past the count (a cycle). */
static int tier_check_list(const struct tier *t, int s, size_t *n, char *why, size_t len)
{
    const struct tier_list *l = &t->seg[s];
    const struct tier_entry *prev = NULL;
    size_t bytes = 0;
    for (const struct tier_entry *e = l->head; e != NULL; prev = e, e = e->next) {
        if (e->prev != prev || e->seg != s)
            return tier_fail(why, len, "segment %d: an entry is linked or marked wrong", s);
        if (++*n > t->stats.entries)
            return tier_fail(why, len, "segments hold more than the %zu entries counted",
                             t->stats.entries);
        bytes += tier_cost(e);
    }
    if (l->tail != prev)
        return tier_fail(why, len, "segment %d: its tail is not its last entry", s);
    if (bytes != l->bytes)
        return tier_fail(why, len, "segment %d: %zu bytes counted, %zu held", s, l->bytes, bytes);
    return 0;
}

/* Whether no entry before e in its chain has e's (db, key). */
static bool tier_first_of_key(const struct tier_entry *chain, const struct tier_entry *e)
{
    for (; chain != e; chain = chain->hnext) {
        if (tier_same_key(chain, e->db, e->data, e->klen))
            return false;
    }
    return true;
}

/* Walks the hash chains: every entry in the bucket of its hash and in a
 * segment, as many entries and keys as counted. */
static int tier_check_chains(const struct tier *t, char *why, size_t len)
{
    size_t n = 0, keys = 0;
    for (size_t b = 0; b < t->nbuckets; b++) {
        for (const struct tier_entry *e = t->buckets[b]; e != NULL; e = e->hnext) {
            if (++n > t->stats.entries)
                return tier_fail(why, len, "hash chains hold more than the %zu entries counted",
                                 t->stats.entries);
            if ((tier_entry_hash(e) & (t->nbuckets - 1)) != b || e->seg >= TIER_SEG_COUNT)
                return tier_fail(why, len, "bucket %zu: an entry of another bucket or no segment",
                                 b);
            keys += tier_first_of_key(t->buckets[b], e);
        }
    }
    if (n != t->stats.entries)
        return tier_fail(why, len, "%zu entries counted, %zu in the hash chains", t->stats.entries,
                         n);
    if (keys != t->stats.keys)
        return tier_fail(why, len, "%zu keys counted, %zu in the hash chains", t->stats.keys, keys);
    return 0;
}

int tier_check(const struct tier *t, char *why, size_t len)
{
    size_t n = 0, bytes = t->stats.table_bytes;
    for (int s = 0; s < TIER_SEG_COUNT; s++) {
        if (tier_check_list(t, s, &n, why, len) < 0)
            return -1;
        bytes += t->seg[s].bytes;
    }
    if (n != t->stats.entries)
        return tier_fail(why, len, "%zu entries counted, %zu in the segments", t->stats.entries, n);
    if (bytes != t->stats.bytes)
        return tier_fail(why, len, "%zu bytes counted, %zu held", t->stats.bytes, bytes);
    if (bytes > t->stats.max_bytes)
        return tier_fail(why, len, "%zu bytes held, over the budget of %zu", bytes,
                         t->stats.max_bytes);
    return tier_check_chains(t, why, len);
}
