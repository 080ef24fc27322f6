/* logs.c - the logs of the processes a test starts, and the criterion report
 * hooks that print them when it fails. See logs.h for the contracts. */
#include "harness/logs.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/proc.h"
#include "harness/tls.h"

#define LOGDIR_ENV "NC_IT_LOGDIR"

/* Where the log of a process of one test goes. */
static void log_file(char *dst, size_t len, const char *dir, const char *suite, const char *test,
                     const char *kind)
{
    snprintf(dst, len, "%s/%s.%s.%s.log", dir, suite, test, kind);
}

void harness_log_path(char *dst, size_t len, const char *kind)
{
    const char *dir = getenv(LOGDIR_ENV);
    log_file(dst, len, dir ? dir : "/tmp", criterion_current_suite->name,
             criterion_current_test->name, kind);
}

void harness_print_tail(const char *path, const char *title, int lines)
{
    struct bytes all = {0};
    if (!bytes_append_file(&all, path))
        return;
    size_t start = all.len;
    for (int seen = 0; start > 0; start--)
        if (all.data[start - 1] == '\n' && ++seen > lines)
            break;
    fprintf(stderr, "----- %s (%s, last %d lines) -----\n%.*s----- end -----\n", title, path, lines,
            (int)(all.len - start), all.data ? all.data + start : "");
    bytes_free(&all);
}

void harness_print_file(const char *path, const char *title)
{
    harness_print_tail(path, title, 200);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    harness_tls_setup();
    static char dir[] = "/tmp/nearcache-it-logs.XXXXXX";
    if (getenv(LOGDIR_ENV) == NULL && mkdtemp(dir) != NULL)
        setenv(LOGDIR_ENV, dir, 1);
    signal(SIGPIPE, SIG_IGN);
}

ReportHook(POST_TEST)(struct criterion_test_stats *stats)
{
    const char *dir = getenv(LOGDIR_ENV);
    if (dir == NULL)
        return;
    static const char *const kinds[] = {"proxy", "redis"};
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        log_file(path, sizeof(path), dir, stats->test->category, stats->test->name, kinds[i]);
        if (stats->test_status == CR_STATUS_FAILED)
            harness_print_tail(path, kinds[i], i == 0 ? 150 : 20);
        unlink(path);
    }
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    harness_tls_teardown();
    const char *dir = getenv(LOGDIR_ENV);
    if (dir != NULL && strstr(dir, "/nearcache-it-logs.") != NULL)
        harness_rmdir(dir);
}
