/* window.h - approximate per-key event counts over a sliding window.
 *
 * A count-min sketch for each of two tumbling windows of window_ms, the
 * current one and the one before it. The estimate for a key is
 *     cur + prev * (1 - elapsed / window_ms)
 * with elapsed the time since the current window began: the previous
 * window's events are assumed spread evenly over it. Windows start at the
 * first event and then follow each other; an idle gap longer than a window
 * forgets everything.
 *
 * Memory is fixed whatever the number of keys: WINDOW_ROWS x WINDOW_WIDTH
 * 16-bit counters per window, two windows: 4 x 1024 x 2 B x 2 = 16 KB. A key
 * is never undercounted (conservative update; a counter saturates at 65535);
 * keys colliding in every row overcount.
 *
 * Pure and single-threaded: no I/O and no clock; time is passed in.
 */
#ifndef NEARCACHE_WINDOW_H
#define NEARCACHE_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#define WINDOW_ROWS  4
#define WINDOW_WIDTH 1024 /* a power of two */

struct window;

/* A sketch over windows of window_ms (> 0), owned by the caller; NULL when
 * out of memory. */
struct window *window_create(uint64_t window_ms);

/* Frees *w (NULL allowed) and sets *w to NULL. */
void window_destroy(struct window **w);

/* Counts one event of key at now_ms. */
void window_add(struct window *w, const char *key, size_t klen, uint64_t now_ms);

/* The sliding estimate of key's events in the window_ms before now_ms (0 for
 * a key never counted, barring collisions). Does not change w. */
double window_estimate(const struct window *w, const char *key, size_t klen, uint64_t now_ms);

/* The window length given to window_create. */
uint64_t window_length(const struct window *w);

#endif
