/* window.c - a count-min sketch over two tumbling windows (see window.h).
 *
 * One 64-bit hash per key; row r uses bits [16r, 16r + 10) of it as the
 * column. The two windows are two counter arrays that swap roles when a
 * window ends: the older one is cleared and becomes the current one.
 */
#include "policy/window.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/hash.h"

#define COUNTER_MAX UINT16_MAX

struct window {
    uint64_t length; /* window_ms */
    uint64_t start;  /* when the current window began */
    bool started;    /* an event has been counted */
    unsigned cur;    /* index of the current window in counts */
    uint16_t counts[2][WINDOW_ROWS][WINDOW_WIDTH];
};

struct window *window_create(uint64_t window_ms)
{
    struct window *w;

    if (window_ms == 0)
        return NULL;
    w = calloc(1, sizeof(*w));
    if (w != NULL)
        w->length = window_ms;
    return w;
}

void window_destroy(struct window **w)
{
    free(*w);
    *w = NULL;
}

uint64_t window_length(const struct window *w)
{
    return w->length;
}

/* FNV-1a, then a 64-bit finalizer so that every bit depends on every byte. */
static uint64_t key_hash(const char *key, size_t klen)
{
    uint64_t h = hash_fnv1a64(key, klen);

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static size_t column(uint64_t h, unsigned row)
{
    return (size_t)(h >> (16 * row)) & (WINDOW_WIDTH - 1);
}

/* The smallest of key's counters in window win. */
static unsigned row_min(const struct window *w, unsigned win, uint64_t h)
{
    unsigned least = COUNTER_MAX;

    for (unsigned r = 0; r < WINDOW_ROWS; r++) {
        unsigned c = w->counts[win][r][column(h, r)];
        if (c < least)
            least = c;
    }
    return least;
}

/* Moves the windows forward so that the current one holds now. */
static void advance(struct window *w, uint64_t now)
{
    uint64_t passed;

    if (!w->started) {
        w->started = true;
        w->start = now;
        return;
    }
    if (now < w->start || now - w->start < w->length)
        return; /* also when the clock went back: stay in this window */
    passed = (now - w->start) / w->length;
    w->cur ^= 1;
    memset(w->counts[w->cur], 0, sizeof(w->counts[w->cur]));
    if (passed > 1) /* the window just ended is older than one window too */
        memset(w->counts[w->cur ^ 1], 0, sizeof(w->counts[w->cur ^ 1]));
    w->start += passed * w->length;
}

void window_add(struct window *w, const char *key, size_t klen, uint64_t now_ms)
{
    uint64_t h = key_hash(key, klen);
    unsigned least;

    advance(w, now_ms);
    least = row_min(w, w->cur, h);
    if (least == COUNTER_MAX)
        return;
    /* Conservative update: only the counters at the minimum grow. */
    for (unsigned r = 0; r < WINDOW_ROWS; r++) {
        uint16_t *c = &w->counts[w->cur][r][column(h, r)];
        if (*c == least)
            *c = (uint16_t)(least + 1);
    }
}

double window_estimate(const struct window *w, const char *key, size_t klen, uint64_t now_ms)
{
    uint64_t h, elapsed;
    double cur, prev;

    if (!w->started)
        return 0;
    h = key_hash(key, klen);
    cur = row_min(w, w->cur, h);
    prev = row_min(w, w->cur ^ 1, h);
    elapsed = now_ms > w->start ? now_ms - w->start : 0;
    if (elapsed / w->length >= 2)
        return 0; /* both windows are over */
    if (elapsed >= w->length) {
        /* The current window has ended unseen: it is the previous one now. */
        prev = cur;
        cur = 0;
        elapsed -= w->length;
    }
    return cur + prev * (1.0 - (double)elapsed / (double)w->length);
}
