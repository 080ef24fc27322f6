/* log.c - leveled logging to stderr. */
#include "proxy/lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

log_level_e log_level = LOG_NOTICE;

static const char *const LOG_NAMES[] = {"crit", "error", "warn", "notice", "info", "debug"};

int log_level_parse(const char *name, log_level_e *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcasecmp(name, LOG_NAMES[i]) == 0) {
            *out = (log_level_e)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level_e level)
{
    return LOG_NAMES[level];
}

void log_write(log_level_e level, const char *fmt, ...)
{
    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s ", (long)tv.tv_usec / 1000,
                  LOG_NAMES[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

bool log_limit_pass(struct log_limit *lim, log_level_e level)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (lim->second == (long)now.tv_sec && lim->second != 0) {
        lim->suppressed++;
        return false;
    }
    lim->second = (long)now.tv_sec;
    if (lim->suppressed > 0)
        log_write(level, "(%u similar messages suppressed)", lim->suppressed);
    lim->suppressed = 0;
    return true;
}
