/* resp_inline.c - inline requests: a line of words, split with Redis's
 * sdssplitargs rules and re-encoded as the multibulk frame it stands for, so
 * that everything after the scanner sees one kind of request.
 */
#include "proxy/proto/resp.h"

#include <stdbool.h>
#include <stdlib.h>

#include "proxy/proto/resp_write.h"

static const char ERR_QUOTES[] = "Protocol error: unbalanced quotes in request";
static const char ERR_NOMEM[] = "out of memory";

enum { SPLIT_PLAIN, SPLIT_DQUOTE, SPLIT_SQUOTE };

/* The byte at i, or NUL past the end: sdssplitargs reads a C string. */
static unsigned char byte_at(const char *s, size_t n, size_t i)
{
    return i < n ? (unsigned char)s[i] : 0;
}

/* isspace() in the C locale, which is what Redis runs with for this. */
static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

static void emit(char *out, size_t *k, unsigned char c)
{
    if (out)
        out[*k] = (char)c;
    (*k)++;
}

/* One step inside double quotes at s[*i]. Returns 1 at the closing quote,
 * 0 to go on, -1 when the quotes are unbalanced. */
static int split_dquote(const char *s, size_t n, size_t *i, char *out, size_t *k)
{
    unsigned char c = byte_at(s, n, *i), c1 = byte_at(s, n, *i + 1);
    int hi = hex_value(byte_at(s, n, *i + 2)), lo = hex_value(byte_at(s, n, *i + 3));

    if (c == '\\' && c1 == 'x' && hi >= 0 && lo >= 0) {
        emit(out, k, (unsigned char)(hi * 16 + lo));
        *i += 3;
    } else if (c == '\\' && c1) {
        static const unsigned char esc[256] = {
            ['n'] = '\n', ['r'] = '\r', ['t'] = '\t', ['b'] = '\b', ['a'] = '\a'};
        emit(out, k, esc[c1] ? esc[c1] : c1);
        *i += 1;
    } else if (c == '"') {
        /* The closing quote must be followed by a space or nothing at all. */
        return c1 && !is_space(c1) ? -1 : 1;
    } else if (!c) {
        return -1;
    } else {
        emit(out, k, c);
    }
    return 0;
}

/* One step inside single quotes: only \' is an escape. */
static int split_squote(const char *s, size_t n, size_t *i, char *out, size_t *k)
{
    unsigned char c = byte_at(s, n, *i), c1 = byte_at(s, n, *i + 1);

    if (c == '\\' && c1 == '\'') {
        emit(out, k, '\'');
        *i += 1;
    } else if (c == '\'') {
        return c1 && !is_space(c1) ? -1 : 1;
    } else if (!c) {
        return -1;
    } else {
        emit(out, k, c);
    }
    return 0;
}

/* One step outside quotes: only these five end a word (not \v or \f, which
 * isspace() skips between words). A quote opens mid-word. */
static int split_plain(unsigned char c, int *mode, char *out, size_t *k)
{
    switch (c) {
    case ' ':
    case '\n':
    case '\r':
    case '\t':
    case '\0':
        return 1;
    case '"':
        *mode = SPLIT_DQUOTE;
        return 0;
    case '\'':
        *mode = SPLIT_SQUOTE;
        return 0;
    default:
        emit(out, k, c);
        return 0;
    }
}

/* Reads the word at s[*at] into out (when not NULL) and *wlen. Returns 1 for
 * a word, 0 at the end of the line, -1 for unbalanced quotes. */
static int split_word(const char *s, size_t n, size_t *at, char *out, size_t *wlen)
{
    size_t i = *at, k = 0;
    int mode = SPLIT_PLAIN, r = 0;

    while (is_space(byte_at(s, n, i)))
        i++;
    if (!byte_at(s, n, i)) {
        *at = i;
        return 0;
    }
    while (r == 0) {
        if (mode == SPLIT_DQUOTE)
            r = split_dquote(s, n, &i, out, &k);
        else if (mode == SPLIT_SQUOTE)
            r = split_squote(s, n, &i, out, &k);
        else
            r = split_plain(byte_at(s, n, i), &mode, out, &k);
        if (r < 0)
            return -1;
        if (byte_at(s, n, i))
            i++;
    }
    *at = i;
    *wlen = k;
    return 1;
}

/* Counts the words of a line and the size of their multibulk encoding. */
static int split_measure(const char *line, size_t len, int64_t *words, size_t *bytes)
{
    size_t at = 0, wlen = 0;
    int r;

    *words = 0;
    *bytes = 0;
    while ((r = split_word(line, len, &at, NULL, &wlen)) > 0) {
        (*words)++;
        *bytes += resp_write_header(NULL, 0, '$', (int64_t)wlen) + wlen + 2;
    }
    *bytes += resp_write_header(NULL, 0, '*', *words);
    return r;
}

char *resp_inline_encode(const char *line, size_t len, size_t *outlen, int64_t *argc,
                         const char **err)
{
    size_t at = 0, w, wlen = 0, bytes;
    int64_t words;
    char *out;

    *argc = 0;
    *outlen = 0;
    *err = NULL;
    if (split_measure(line, len, &words, &bytes) < 0) {
        *err = ERR_QUOTES;
        return NULL;
    }
    if (words == 0)
        return NULL;
    out = malloc(bytes);
    if (!out) {
        *err = ERR_NOMEM;
        return NULL;
    }
    w = resp_write_header(out, bytes, '*', words);
    for (int64_t j = 0; j < words; j++) {
        size_t start = at;
        split_word(line, len, &at, NULL, &wlen);
        w += resp_write_header(out + w, bytes - w, '$', (int64_t)wlen);
        split_word(line, len, &start, out + w, &wlen);
        w += wlen;
        out[w++] = '\r';
        out[w++] = '\n';
    }
    *argc = words;
    *outlen = w;
    return out;
}
