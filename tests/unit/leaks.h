/* leaks.h - a leak check at the end of each test in sanitizer builds.
 *
 * Criterion ends its workers before LeakSanitizer's exit-time check would
 * run, so a unit test suite uses check_leaks as its .fini: a leak aborts the
 * worker, which fails the test (an assertion in .fini would not). */
#ifndef NEARCACHE_TESTS_LEAKS_H
#define NEARCACHE_TESTS_LEAKS_H

#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define TEST_LSAN 1
#endif
#endif

static inline void check_leaks(void)
{
#ifdef TEST_LSAN
    if (__lsan_do_recoverable_leak_check() != 0)
        abort();
#endif
}

#endif
