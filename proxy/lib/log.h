/* log.h - leveled, structured logging to stderr: one line per message, as
 * text or as a JSON object.
 *
 * Every call names an event, a short stable snake_case identifier
 * ("upstream_lost"), then gives a printf format in which a conversion
 * written {name=%conv} is a named field:
 *
 *     log_notice("drain_start", "draining {clients=%d} clients", n);
 *
 * Text (log_format text, the default): "<time> <level> <message>", the
 * message without the braces and names of its fields:
 *     2026-12-06T17:15:29.669Z notice draining 3 clients
 * JSON (log_format json): one object per line, the fields after msg:
 *     {"time":"2026-12-06T17:15:29.669Z","level":"notice","event":"drain_start",
 *      "msg":"draining 3 clients","clients":3}
 * Integer and floating conversions are JSON numbers (a floating one as it was
 * printed: {ms=%.0f} of 2.6 is 3.0), the others strings; bytes that are not
 * UTF-8 become U+FFFD. A field name is letters, digits and '_' (at most 63),
 * other than time, level, event and msg; the first of two fields of one name
 * wins. A brace that does not open a field ("{abc}", "{x=}") is printed as
 * it is. Messages are cut at 1 KB.
 *
 * Never log values or passwords; keys only at debug level.
 */
#ifndef NEARCACHE_LOG_H
#define NEARCACHE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    LOG_CRIT = 0,
    LOG_ERROR,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG,
} log_level_e;

typedef enum {
    LOG_TEXT = 0, /* "<time> <level> <message>" */
    LOG_JSON,     /* one JSON object per line */
} log_format_e;

/* The level in force; messages above it are dropped before formatting. */
extern log_level_e log_level;

/* The format of the lines written. */
extern log_format_e log_format;

/* Extra internal checks (NEARCACHE_DEBUG=1): code may test it to verify
 * invariants too costly to verify in production, and abort on a violation. */
extern bool log_checks;

/* Parses "crit", "error", "warn", "notice", "info" or "debug" (any case).
 * Returns 0 and stores the level, or -1 when the name is unknown. */
int log_level_parse(const char *name, log_level_e *out);

/* The name of level ("notice"). */
const char *log_level_name(log_level_e level);

/* Parses "text" or "json" (any case). Returns 0 and stores the format, or -1
 * when the name is unknown. */
int log_format_parse(const char *name, log_format_e *out);

/* The name of format ("text" or "json"). */
const char *log_format_name(log_format_e format);

/* Applies the value of NEARCACHE_DEBUG (NULL when unset): NULL, "" and "0"
 * turn log_checks off, "1" turns it on. Returns 0, or -1 for any other value
 * (log_checks unchanged). */
int log_debug_setup(const char *value);

/* Puts the settings in force: level (LOG_DEBUG instead while log_checks is
 * on) and format. */
void log_configure(log_level_e level, log_format_e format);

/* Writes one line of event to stderr in log_format (see above), whatever
 * log_level. Use the macros. event and fmt are borrowed. */
void log_write(log_level_e level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As log_write, to out, with the arguments of ap (which it leaves as it
 * found it: the caller still va_end()s it). */
void log_vwrite(FILE *out, log_level_e level, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The length of the start of err, an error reply of Redis (len bytes), that
 * may be logged: what precedes its ", with args beginning with", since an
 * error about an unknown command repeats its arguments (an AUTH's password). */
size_t log_redis_error_len(const char *err, size_t len);

/* State of one rate-limited call site (see log_limited). */
struct log_limit {
    long second;         /* when the last message was written */
    unsigned suppressed; /* messages dropped since */
};

/* Returns true at most once per second for a call site; when it does after
 * dropping messages, it first logs how many were dropped (event
 * log_suppressed, field count). */
bool log_limit_pass(struct log_limit *lim, log_level_e level);

/* A dropped message costs one predictable branch on the level, log_debug's
 * included: it is not compiled out, so NEARCACHE_DEBUG=1 turns it on in any
 * build. */
#define log_at(lvl, event, ...)                                                                    \
    do {                                                                                           \
        if ((lvl) <= log_level)                                                                    \
            log_write((lvl), (event), __VA_ARGS__);                                                \
    } while (0)
/* Like log_at, but at most one line per second from this call site: for
 * messages that a client or a flapping upstream can trigger at will. */
#define log_limited(lvl, event, ...)                                                               \
    do {                                                                                           \
        static _Thread_local struct log_limit lim_;                                                \
        if ((lvl) <= log_level && log_limit_pass(&lim_, (lvl)))                                    \
            log_write((lvl), (event), __VA_ARGS__);                                                \
    } while (0)
#define log_crit(...)   log_at(LOG_CRIT, __VA_ARGS__)
#define log_error(...)  log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)   log_at(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_at(LOG_DEBUG, __VA_ARGS__)

#endif
