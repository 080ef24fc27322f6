/* text.h - text built a piece at a time, with a user's bytes (keys,
 * values, arguments) written escaped: as one word (text_escaped), for the
 * "name:value" lines of the proxy's own replies (NEARCACHE INSPECT,
 * EXPLAIN), which must still frame and split on spaces; or as redis-cli
 * shows them between double quotes (text_quote), for what the tools and
 * the admin endpoint print. Pure: no I/O.
 */
#ifndef NEARCACHE_TEXT_H
#define NEARCACHE_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct text {
    char *data; /* malloc'd and owned; NUL-terminated once anything was added */
    size_t len;
    size_t cap;
    bool oom; /* an append ran out of memory: the text is incomplete (sticky) */
};

/* Appends the formatted text; nothing once t->oom is set. */
void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends bytes[0..n) with every byte outside '!'..'~' (spaces, control
 * bytes, bytes of 0x7f and above) and the backslash written as \xHH: a
 * user's bytes as one printable word without spaces, read back unambiguously. */
void text_escaped(struct text *t, const char *bytes, size_t n);

/* bytes[0..n) as redis-cli shows them between double quotes, as a new
 * NUL-terminated string (the caller frees it): printable ASCII as it is,
 * except \\ and \" for a backslash and a quote; \n \r \t \a \b for those
 * control bytes; any other byte as \xhh. NULL when out of memory. */
char *text_quote(const char *bytes, size_t n);

/* Bytes as a JSON string: as they are when valid UTF-8, else their
 * text_quote form. NULL when out of memory. */
json_t *text_json(const char *bytes, size_t n);

/* The "name:value" lines of s[0..len) (the proxy's NEARCACHE STATS,
 * INSPECT, EXPLAIN) as an object: integers and finite numbers as numbers,
 * the rest as text_json; a name seen again makes an array of its values.
 * NULL when out of memory. */
json_t *text_lines_json(const char *s, size_t len);

/* Frees what t holds and empties it. */
void text_free(struct text *t);

#endif
