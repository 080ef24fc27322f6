/* lines.h - the "name:value" lines of the proxy's own replies (NEARCACHE
 * INSPECT, EXPLAIN), as the unit and integration tests look into them. */
#ifndef NEARCACHE_TESTS_LINES_H
#define NEARCACHE_TESTS_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Whether text holds line as one whole CRLF-terminated line. */
static inline bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *at = text; (at = strstr(at, line)) != NULL; at++)
        if ((at == text || at[-1] == '\n') && strncmp(at + n, "\r\n", 2) == 0)
            return true;
    return false;
}

/* The number of lines of text that start with prefix (an unterminated last
 * line counts too). */
static inline size_t lines_with(const char *text, const char *prefix)
{
    size_t n = 0;
    for (const char *at = text, *end; *at != '\0'; at = end + 2) {
        n += strncmp(at, prefix, strlen(prefix)) == 0;
        if ((end = strstr(at, "\r\n")) == NULL)
            break;
    }
    return n;
}

#endif
