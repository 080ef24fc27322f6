/* log.h - leveled logging to stderr (one line per message, timestamped). */
#ifndef NEARCACHE_LOG_H
#define NEARCACHE_LOG_H

#include <stdbool.h>

typedef enum {
    LOG_CRIT = 0,
    LOG_ERROR,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG,
} log_level_e;

/* The level in force; messages above it are dropped before formatting. */
extern log_level_e log_level;

/* Parses "crit", "error", "warn", "notice", "info" or "debug" (any case).
 * Returns 0 and stores the level, or -1 when the name is unknown. */
int log_level_parse(const char *name, log_level_e *out);

/* The name of level ("notice"). */
const char *log_level_name(log_level_e level);

/* Writes one line "<time> <level> <message>" to stderr. Use the macros. */
void log_write(log_level_e level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* State of one rate-limited call site (see log_limited). */
struct log_limit {
    long second;         /* when the last message was written */
    unsigned suppressed; /* messages dropped since */
};

/* Returns true at most once per second for a call site; when it does after
 * dropping messages, it first logs how many were dropped. */
bool log_limit_pass(struct log_limit *lim, log_level_e level);

#define log_at(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) <= log_level)                                                                    \
            log_write((lvl), __VA_ARGS__);                                                         \
    } while (0)
/* Like log_at, but at most one line per second from this call site: for
 * messages that a client or a flapping upstream can trigger at will. */
#define log_limited(lvl, ...)                                                                      \
    do {                                                                                           \
        static struct log_limit lim_;                                                              \
        if ((lvl) <= log_level && log_limit_pass(&lim_, (lvl)))                                    \
            log_write((lvl), __VA_ARGS__);                                                         \
    } while (0)
#define log_crit(...)   log_at(LOG_CRIT, __VA_ARGS__)
#define log_error(...)  log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)   log_at(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_at(LOG_INFO, __VA_ARGS__)
#ifdef NDEBUG
#define log_debug(...) ((void)0)
#else
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#endif

#endif
