/* text.c - text built a piece at a time, with user bytes escaped. */
#include "proxy/lib/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/buf.h"

#define TEXT_MIN 256 /* first allocation */

/* Makes room for n more bytes and the NUL; false (oom set) when out of memory. */
static bool text_room(struct text *t, size_t n)
{
    if (!t->oom && buf_grow(&t->data, &t->cap, t->len + n + 1, TEXT_MIN) < 0)
        t->oom = true;
    return !t->oom;
}

void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !text_room(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void text_escaped(struct text *t, const char *bytes, size_t n)
{
    static const char HEX[] = "0123456789abcdef";
    if (!text_room(t, 4 * n))
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c > ' ' && c < 0x7f) {
            t->data[t->len++] = (char)c;
            continue;
        }
        t->data[t->len++] = '\\';
        t->data[t->len++] = 'x';
        t->data[t->len++] = HEX[c >> 4];
        t->data[t->len++] = HEX[c & 15];
    }
    t->data[t->len] = '\0';
}

void text_quoted(struct text *t, const char *bytes, size_t n)
{
    static const char FROM[] = "\\\"\n\r\t\a\b", TO[] = "\\\"nrtab";
    if (!text_room(t, 4 * n))
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)bytes[i];
        const char *f = c != 0 ? strchr(FROM, c) : NULL;
        if (f != NULL) {
            t->data[t->len++] = '\\';
            t->data[t->len++] = TO[f - FROM];
        } else if (c >= ' ' && c < 0x7f) {
            t->data[t->len++] = (char)c;
        } else {
            t->len += (size_t)snprintf(t->data + t->len, 5, "\\x%02x", c);
        }
    }
    t->data[t->len] = '\0';
}

char *text_quote(const char *bytes, size_t n)
{
    struct text t = {0};
    text_quoted(&t, bytes, n);
    if (t.oom)
        text_free(&t);
    return t.data;
}

void text_free(struct text *t)
{
    free(t->data);
    *t = (struct text){0};
}
