/* resp_write.h - the RESP encoder: requests and replies, appended to a
 * caller's buffer.
 *
 * Every encoding comes in two forms:
 * - resp_write_*(out, cap, ...) writes into a char array. It returns the
 *   encoding's length and writes it only when that length fits in cap:
 *   (NULL, 0) measures, and a short array is left untouched (snprintf's
 *   contract without the truncation). Use it for fixed arrays and for blocks
 *   that are measured, allocated, then filled.
 * - resp_append_*(b, ...) appends the same bytes to an output queue
 *   (proxy/lib/buf.h) and returns 0, or -1 when out of memory, in which case
 *   part of the encoding may be queued: treat the queue as broken.
 * Nothing here allocates except through obuf_append().
 */
#ifndef NEARCACHE_RESP_WRITE_H
#define NEARCACHE_RESP_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* Room for any header or integer line: type byte, '-', 19 digits, "\r\n". */
#define RESP_HEADER_MAX 23

struct obuf;

/* "<type><n>\r\n": an aggregate header ('*' array, '%' map, '~' set,
 * '>' push, '|' attribute: n elements, pairs for '%' and '|'), a bulk header
 * ('$': n payload bytes follow), or an integer (':'). n = -1 with '*' or '$'
 * is the RESP2 null. At most RESP_HEADER_MAX bytes. */
size_t resp_write_header(char *out, size_t cap, char type, int64_t n);
int resp_append_header(struct obuf *b, char type, int64_t n);

/* A bulk string: "$<len>\r\n", the len bytes of data, "\r\n". */
size_t resp_write_bulk(char *out, size_t cap, const void *data, size_t len);
int resp_append_bulk(struct obuf *b, const void *data, size_t len);

/* A line of text: type '+' for a simple string, '-' for an error (text such
 * as "ERR unknown command"). Each '\r' or '\n' in text is written as a space,
 * as Redis does in its error replies, so the line always frames. */
size_t resp_write_line(char *out, size_t cap, char type, const char *text, size_t len);
int resp_append_line(struct obuf *b, char type, const char *text, size_t len);

/* A command as a multibulk request: "*<argc>\r\n" and argv[i] as a bulk
 * string each. lens[i] is argv[i]'s length; lens NULL means every argv[i] is
 * a NUL-terminated string (as hiredis's redisFormatCommandArgv). */
size_t resp_write_command(char *out, size_t cap, int argc, const char *const *argv,
                          const size_t *lens);
int resp_append_command(struct obuf *b, int argc, const char *const *argv, const size_t *lens);

#endif
