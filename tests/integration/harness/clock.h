/* clock.h - time limits and waiting for the end-to-end test harness.
 *
 * Nothing in the harness waits unbounded: whatever should "eventually" happen
 * must happen within HARNESS_TIMEOUT_MS, or the current criterion test fails.
 */
#ifndef NEARCACHE_TESTS_HARNESS_CLOCK_H
#define NEARCACHE_TESTS_HARNESS_CLOCK_H

#include <stdint.h>

/* Upper bound for anything that should "eventually" happen. */
#define HARNESS_TIMEOUT_MS 10000

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t harness_now_ms(void);
/* Sleeps ms milliseconds, resuming after signals. */
void harness_sleep_ms(int ms);

#endif
