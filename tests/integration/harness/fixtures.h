/* fixtures.h - the criterion fixtures of the end-to-end tests: the current
 * test's Redis and proxy, started by a suite's .init and stopped by its .fini.
 *
 * A failed .init cleans up what it started (criterion runs no .fini after it)
 * and fails the test.
 */
#ifndef NEARCACHE_TESTS_HARNESS_FIXTURES_H
#define NEARCACHE_TESTS_HARNESS_FIXTURES_H

#include "harness/proxy.h"
#include "harness/redis.h"

/* The current test's Redis and proxy, for criterion .init/.fini. */
extern struct redis fx_redis;
extern struct proxy fx_proxy;

/* .init: starts Redis; the test starts the proxy with its own settings. */
void fixture_redis(void);
/* .init: starts Redis and a proxy with the default settings. */
void fixture_both(void);
/* .fini: stops the proxy (warning unless it exits 0) and Redis. */
void fixture_stop(void);
/* Skips the current test in direct mode (NC_IT_DIRECT): it needs the real
 * binary. Stops the fixtures first, since criterion runs no .fini after a skip. */
void harness_require_proxy(void);

#endif
