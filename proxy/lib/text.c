/* text.c - text built a piece at a time, with user bytes escaped. */
#include "proxy/lib/text.h"

#include <math.h>
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
        if (c > ' ' && c < 0x7f && c != '\\') {
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

/* Appends bytes[0..n) as text_quote shows them. */
static void text_quoted(struct text *t, const char *bytes, size_t n)
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

json_t *text_json(const char *bytes, size_t n)
{
    json_t *t = json_stringn(bytes, n);
    if (t != NULL)
        return t;
    char *quoted = text_quote(bytes, n);
    t = quoted != NULL ? json_string(quoted) : NULL;
    free(quoted);
    return t;
}

/* A value of a "name:value" line: an integer, a finite number, else text. */
static json_t *line_value(const char *s, size_t len)
{
    char buf[64], *end;
    if (len > 0 && len < sizeof(buf)) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        long long i = strtoll(buf, &end, 10);
        if (*end == '\0')
            return json_integer(i);
        double d = strtod(buf, &end);
        if (*end == '\0' && isfinite(d))
            return json_real(d);
    }
    return text_json(s, len);
}

json_t *text_lines_json(const char *s, size_t len)
{
    json_t *o = json_object();
    for (const char *p = s, *end = s + len; o != NULL && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl != NULL ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        size_t vlen = colon != NULL ? (size_t)(eol - colon - 1) : 0;
        if (colon != NULL && vlen > 0 && colon[vlen] == '\r')
            vlen--;
        if (colon != NULL && colon > p) {
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(colon - p), p);
            json_t *v = line_value(colon + 1, vlen), *seen = json_object_get(o, name);
            if (seen == NULL)
                json_object_set_new(o, name, v);
            else if (json_is_array(seen))
                json_array_append_new(seen, v);
            else
                json_object_set_new(o, name, json_pack("[O,o]", seen, v));
        }
        p = eol + 1;
    }
    return o;
}

void text_free(struct text *t)
{
    free(t->data);
    *t = (struct text){0};
}
