/* bytes.c - the growable byte buffer, RESP requests and reply scanning of the
 * end-to-end tests. See bytes.h for the contracts. */
#include "harness/bytes.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- bytes ------------------------------------------------------------------- */

void bytes_reserve(struct bytes *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = realloc(b->data, cap);
    cr_assert(b->data != NULL, "out of memory");
    b->cap = cap;
}

void bytes_append(struct bytes *b, const void *p, size_t n)
{
    bytes_reserve(b, n + 1);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0'; /* convenient for strstr on text replies */
}

void bytes_puts(struct bytes *b, const char *s)
{
    bytes_append(b, s, strlen(s));
}

void bytes_printf(struct bytes *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    bytes_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bytes_free(struct bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

bool bytes_ends_with(const struct bytes *b, const void *s, size_t n)
{
    return b->len >= n && memcmp(b->data + b->len - n, s, n) == 0;
}

bool bytes_equal_str(const struct bytes *b, const char *s)
{
    size_t n = strlen(s);
    return b->len == n && (n == 0 || memcmp(b->data, s, n) == 0);
}

void bytes_escape(struct bytes *out, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == '\r')
            bytes_puts(out, "\\r");
        else if (c[i] == '\n')
            bytes_puts(out, "\\n");
        else if (c[i] == '\\')
            bytes_puts(out, "\\\\");
        else if (c[i] < 0x20 || c[i] >= 0x7f)
            bytes_printf(out, "\\x%02x", c[i]);
        else
            bytes_append(out, &c[i], 1);
    }
}

const char *bytes_show(const struct bytes *b)
{
    static char ring[4][1400];
    static unsigned next;
    char *dst = ring[next++ % 4];
    struct bytes e = {0};
    size_t n = b->len > 300 ? 300 : b->len;
    bytes_escape(&e, b->data, n);
    if (n < b->len)
        bytes_printf(&e, "... (%zu bytes)", b->len);
    snprintf(dst, sizeof(ring[0]), "\"%s\"", e.data ? e.data : "");
    bytes_free(&e);
    return dst;
}

void bytes_append_bulk(struct bytes *b, const void *p, size_t n)
{
    bytes_printf(b, "$%zu\r\n", n);
    bytes_append(b, p, n);
    bytes_puts(b, "\r\n");
}

bool bytes_append_file(struct bytes *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        bytes_append(b, chunk, n);
    fclose(f);
    return true;
}

/* ---- requests ---------------------------------------------------------------- */

void req_addv(struct bytes *out, int argc, const char *const *argv, const size_t *lens)
{
    bytes_printf(out, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        bytes_append_bulk(out, argv[i], lens[i]);
}

void req_add(struct bytes *out, const char *arg, ...)
{
    const char *argv[64];
    size_t lens[64];
    int argc = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a != NULL && argc < 64; a = va_arg(ap, const char *)) {
        argv[argc] = a;
        lens[argc++] = strlen(a);
    }
    va_end(ap);
    req_addv(out, argc, argv, lens);
}

/* Splits one line into arguments; returns how many. */
static int split_line(const char *p, const char *end, const char **argv, size_t *lens, int max)
{
    int argc = 0;
    while (p < end && argc < max) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        const char *start = p;
        if (*p == '"') {
            start = ++p;
            while (p < end && *p != '"')
                p++;
            argv[argc] = start;
            lens[argc++] = (size_t)(p - start);
            p += p < end;
            continue;
        }
        while (p < end && *p != ' ')
            p++;
        argv[argc] = start;
        lens[argc++] = (size_t)(p - start);
    }
    return argc;
}

void req_lines(struct bytes *out, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *argv[64];
        size_t lens[64];
        int argc = split_line(p, end, argv, lens, 64);
        if (argc > 0)
            req_addv(out, argc, argv, lens);
        p = eol ? eol + 1 : end;
    }
}

/* ---- replies ----------------------------------------------------------------- */

static bool parse_len(const char *p, const char *end, long long *out)
{
    char tmp[32];
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *stop;
    errno = 0;
    *out = strtoll(tmp, &stop, 10);
    return errno == 0 && *stop == '\0';
}

size_t reply_end(const char *p, size_t len, size_t off)
{
    if (off >= len)
        return 0;
    const char *nl = memmem(p + off, len - off, "\r\n", 2);
    if (nl == NULL)
        return 0;
    size_t line_end = (size_t)(nl - p) + 2;
    long long n = 0;
    char type = p[off];
    if (strchr("+-:_,#(", type))
        return line_end;
    if (!strchr("$=!*~>%|", type) || !parse_len(p + off + 1, nl, &n))
        return REPLY_BAD;
    if (n < 0)
        return line_end; /* null bulk or null array */
    if (strchr("$=!", type)) {
        if (len - line_end < (unsigned long long)n + 2)
            return 0;
        return line_end + (size_t)n + 2;
    }
    if (type == '%' || type == '|')
        n *= 2;
    size_t at = line_end;
    for (long long i = 0; i < n; i++) {
        at = reply_end(p, len, at);
        if (at == 0 || at == REPLY_BAD)
            return at;
    }
    return type == '|' ? reply_end(p, len, at) : at; /* an attribute precedes a value */
}
