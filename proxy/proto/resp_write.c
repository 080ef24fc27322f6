/* resp_write.c - the RESP encoder.
 *
 * The only file of proxy/proto that includes proxy/lib: the resp_append_*
 * forms queue onto an obuf, so no caller needs its own glue for that.
 */
#include "proxy/proto/resp_write.h"

#include <string.h>

#include "proxy/lib/buf.h"

/* Formats "<type><n>\r\n" into h (RESP_HEADER_MAX bytes); returns its length. */
static size_t format_header(char *h, char type, int64_t n)
{
    uint64_t v = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    char digits[20];
    size_t nd = 0, k = 0;

    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    h[k++] = type;
    if (n < 0)
        h[k++] = '-';
    while (nd > 0)
        h[k++] = digits[--nd];
    h[k++] = '\r';
    h[k++] = '\n';
    return k;
}

/* Copies text to out, each '\r' and '\n' as a space. */
static void copy_line(char *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
}

static size_t arg_len(const char *const *argv, const size_t *lens, int i)
{
    return lens != NULL ? lens[i] : strlen(argv[i]);
}

size_t resp_write_header(char *out, size_t cap, char type, int64_t n)
{
    char h[RESP_HEADER_MAX];
    size_t k = format_header(h, type, n);

    if (k <= cap)
        memcpy(out, h, k);
    return k;
}

size_t resp_write_bulk(char *out, size_t cap, const void *data, size_t len)
{
    char h[RESP_HEADER_MAX];
    size_t k = format_header(h, '$', (int64_t)len), total = k + len + 2;

    if (total > cap)
        return total;
    memcpy(out, h, k);
    if (len > 0)
        memcpy(out + k, data, len);
    out[k + len] = '\r';
    out[k + len + 1] = '\n';
    return total;
}

size_t resp_write_line(char *out, size_t cap, char type, const char *text, size_t len)
{
    size_t total = 1 + len + 2;

    if (total > cap)
        return total;
    out[0] = type;
    copy_line(out + 1, text, len);
    out[1 + len] = '\r';
    out[2 + len] = '\n';
    return total;
}

size_t resp_write_command(char *out, size_t cap, int argc, const char *const *argv,
                          const size_t *lens)
{
    char h[RESP_HEADER_MAX];
    size_t total = format_header(h, '*', argc), k;

    for (int i = 0; i < argc; i++) {
        size_t n = arg_len(argv, lens, i);
        total += format_header(h, '$', (int64_t)n) + n + 2;
    }
    if (total > cap)
        return total;
    k = resp_write_header(out, cap, '*', argc);
    for (int i = 0; i < argc; i++)
        k += resp_write_bulk(out + k, cap - k, argv[i], arg_len(argv, lens, i));
    return k;
}

int resp_append_header(struct obuf *b, char type, int64_t n)
{
    char h[RESP_HEADER_MAX];

    return obuf_append(b, h, format_header(h, type, n));
}

int resp_append_bulk(struct obuf *b, const void *data, size_t len)
{
    if (resp_append_header(b, '$', (int64_t)len) < 0 || (len > 0 && obuf_append(b, data, len) < 0))
        return -1;
    return obuf_append(b, "\r\n", 2);
}

int resp_append_line(struct obuf *b, char type, const char *text, size_t len)
{
    char chunk[256];

    if (obuf_append(b, &type, 1) < 0)
        return -1;
    for (size_t at = 0; at < len;) {
        size_t n = len - at < sizeof(chunk) ? len - at : sizeof(chunk);
        copy_line(chunk, text + at, n);
        if (obuf_append(b, chunk, n) < 0)
            return -1;
        at += n;
    }
    return obuf_append(b, "\r\n", 2);
}

int resp_append_command(struct obuf *b, int argc, const char *const *argv, const size_t *lens)
{
    if (resp_append_header(b, '*', argc) < 0)
        return -1;
    for (int i = 0; i < argc; i++)
        if (resp_append_bulk(b, argv[i], arg_len(argv, lens, i)) < 0)
            return -1;
    return 0;
}
