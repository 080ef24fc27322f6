/* Unit tests for proxy/log.c: level names and per-call-site rate limiting. */
#include <criterion/criterion.h>

#include "proxy/lib/log.h"

Test(log, level_names)
{
    static const struct {
        const char *name;
        int ok;
        log_level_e level;
    } CASES[] = {
        {"crit", 0, LOG_CRIT},     {"ERROR", 0, LOG_ERROR}, {"warn", 0, LOG_WARN},
        {"Notice", 0, LOG_NOTICE}, {"info", 0, LOG_INFO},   {"debug", 0, LOG_DEBUG},
        {"warning", -1, LOG_CRIT}, {"", -1, LOG_CRIT},      {"debug ", -1, LOG_CRIT},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        log_level_e got = LOG_CRIT;
        cr_expect_eq(log_level_parse(CASES[i].name, &got), CASES[i].ok, "%s", CASES[i].name);
        cr_expect_eq(got, CASES[i].level, "%s", CASES[i].name);
    }
}

Test(log, limit_passes_once_per_second_and_counts_the_rest)
{
    struct log_limit lim = {0};
    cr_assert(log_limit_pass(&lim, LOG_DEBUG), "the first message passes");
    cr_assert_not(log_limit_pass(&lim, LOG_DEBUG), "a second one within the second is dropped");
    cr_assert_not(log_limit_pass(&lim, LOG_DEBUG));
    cr_assert_eq(lim.suppressed, 2);
    lim.second -= 1; /* as if a second had passed */
    cr_assert(log_limit_pass(&lim, LOG_DEBUG), "passes again in a new second");
    cr_assert_eq(lim.suppressed, 0, "the dropped count is reported and reset");
}
