/* fixtures.c - the criterion fixtures of the end-to-end tests. See
 * fixtures.h for the contracts. */
#include "harness/fixtures.h"

#include <criterion/criterion.h>

#include <stdio.h>

struct redis fx_redis;
struct proxy fx_proxy;

void fixture_redis(void)
{
    redis_start(&fx_redis);
}

void fixture_both(void)
{
    redis_start(&fx_redis);
    if (!proxy_try_start(&fx_proxy, fx_redis.port, NULL, NULL)) {
        redis_stop(&fx_redis); /* no .fini runs after a failed .init */
        cr_assert_fail("nearcache would not start (%s)", harness_bin());
    }
}

void fixture_stop(void)
{
    int status = proxy_stop(&fx_proxy);
    if (status != 0)
        fprintf(stderr, "warning: %s::%s: the proxy did not exit 0 on SIGTERM (status %#x)\n",
                criterion_current_suite->name, criterion_current_test->name, status);
    redis_stop(&fx_redis);
}

void harness_require_proxy(void)
{
    if (!harness_direct())
        return;
    fixture_stop(); /* a skipped test does not run its .fini */
    cr_skip_test("needs the nearcache binary (NC_IT_DIRECT is set)");
}
