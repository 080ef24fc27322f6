/* bytes.h - a growable byte buffer for the end-to-end tests, the RESP requests
 * built into it and the scanning of the replies read into it.
 *
 * Pure: no sockets, no processes. Out of memory fails the current criterion
 * test (cr_assert).
 */
#ifndef NEARCACHE_TESTS_HARNESS_BYTES_H
#define NEARCACHE_TESTS_HARNESS_BYTES_H

#include <stdbool.h>
#include <stddef.h>

/* The number of elements of an array (tables of requests, replies, steps). */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- growable byte buffer ---------------------------------------------- */

/* Owns data; a zeroed struct is an empty buffer. After any append, data[len]
 * is '\0' (convenient for strstr on text replies); bytes_printf keeps it too. */
struct bytes {
    char *data;
    size_t len;
    size_t cap;
};

/* Makes room for at least extra more bytes after len (data may move). */
void bytes_reserve(struct bytes *b, size_t extra);
void bytes_append(struct bytes *b, const void *p, size_t n);
void bytes_puts(struct bytes *b, const char *s);
void bytes_printf(struct bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees data and zeroes b: it is an empty buffer again. */
void bytes_free(struct bytes *b);
bool bytes_ends_with(const struct bytes *b, const void *s, size_t n);
/* True when b holds exactly the NUL-terminated s. */
bool bytes_equal_str(const struct bytes *b, const char *s);
/* Appends p[0..n) with \r, \n, \\ and non-printables escaped (\xHH). */
void bytes_escape(struct bytes *out, const void *p, size_t n);
/* A static, escaped copy of at most 300 bytes of b, for assertion messages.
 * Four calls may be used in one message; the fifth reuses the first's. */
const char *bytes_show(const struct bytes *b);
/* Appends p[0..n) as one RESP bulk string: $n\r\n, the bytes, \r\n. */
void bytes_append_bulk(struct bytes *b, const void *p, size_t n);
/* Appends the whole content of the file at path. Returns false (b unchanged)
 * when it cannot be opened. */
bool bytes_append_file(struct bytes *b, const char *path);

/* ---- building requests -------------------------------------------------- */

/* Appends one multibulk request with the NULL-terminated string arguments
 * (at most 64). */
void req_add(struct bytes *out, const char *arg, ...) __attribute__((sentinel));
/* Appends one multibulk request with binary arguments argv[i] of lens[i] bytes. */
void req_addv(struct bytes *out, int argc, const char *const *argv, const size_t *lens);
/* Appends one multibulk request per line of text ('\n'-separated). Arguments
 * are separated by spaces; "double quoted" arguments may hold spaces. Empty
 * lines are skipped; at most 64 arguments per line. */
void req_lines(struct bytes *out, const char *text);

/* ---- replies ------------------------------------------------------------- */

#define REPLY_BAD ((size_t)-1)

/* Scans one whole RESP2/RESP3 reply starting at p[off]. Returns the offset just
 * past it, 0 when the bytes end first, or REPLY_BAD when they are not RESP. */
size_t reply_end(const char *p, size_t len, size_t off);

#endif
