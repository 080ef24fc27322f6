/* log.c - leveled, structured logging to stderr.
 *
 * A message is rendered once into a record: its text, each printf conversion
 * formatted on its own (its arguments taken from the va_list by their types),
 * and for each {name=%conv} the field's name, type and place in the text.
 * The text format writes the record's text; the JSON format builds an object
 * of it with jansson, which does the escaping.
 */
#include "proxy/lib/log.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#define LOG_MSG_MAX    1024 /* bytes of a message, NUL included; longer ones are cut */
#define LOG_FIELDS_MAX 16   /* fields of a message; more are rendered but not named */
#define LOG_NAME_MAX   64   /* bytes of a field name, NUL included */
#define LOG_SPEC_MAX   48   /* a conversion rebuilt for snprintf */
#define LOG_RUN_MAX    9    /* flags, digits of a width or of a precision */
#define LOG_STAMP_MAX  32   /* "2026-12-06T17:15:29.669Z" */
#define LOG_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15)) /* 15: 2.3 prints as 2.3 */

log_level_e log_level = LOG_NOTICE;
log_format_e log_format = LOG_TEXT;
bool log_checks;

static const char *const LOG_NAMES[] = {"crit", "error", "warn", "notice", "info", "debug"};
static const char *const LOG_FORMATS[] = {"text", "json"};
static const char *const LOG_RESERVED[] = {"time", "level", "event", "msg", NULL};

typedef enum { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T } log_len_e;

/* One printf conversion, as parsed from the format. */
struct log_conv {
    const char *flags; /* run of "-+ #0" */
    size_t nflags;
    const char *width; /* digits; none when star_width */
    size_t nwidth;
    const char *prec; /* digits after the '.'; none when star_prec */
    size_t nprec;
    bool has_prec;
    bool star_width;
    bool star_prec;
    log_len_e len;
    char conv;       /* d i u o x X c s p f F e E g G a A, or % */
    const char *end; /* past the conversion character */
};

typedef enum { FIELD_INT, FIELD_UINT, FIELD_REAL, FIELD_TEXT } log_field_e;

struct log_field {
    char name[LOG_NAME_MAX];
    log_field_e kind;
    long long i;          /* FIELD_INT */
    unsigned long long u; /* FIELD_UINT */
    size_t at, len;       /* the field as rendered in the message */
};

struct log_record {
    char msg[LOG_MSG_MAX]; /* NUL-terminated; a %c of 0 puts a NUL before len */
    size_t len;
    struct log_field fields[LOG_FIELDS_MAX];
    int nfields;
};

static int log_name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcasecmp(name, names[i]) == 0)
            return i;
    }
    return -1;
}

int log_level_parse(const char *name, log_level_e *out)
{
    int i = log_name_index(LOG_NAMES, LOG_DEBUG + 1, name);
    if (i < 0)
        return -1;
    *out = (log_level_e)i;
    return 0;
}

const char *log_level_name(log_level_e level)
{
    return LOG_NAMES[level];
}

int log_format_parse(const char *name, log_format_e *out)
{
    int i = log_name_index(LOG_FORMATS, LOG_JSON + 1, name);
    if (i < 0)
        return -1;
    *out = (log_format_e)i;
    return 0;
}

const char *log_format_name(log_format_e format)
{
    return LOG_FORMATS[format];
}

int log_debug_setup(const char *value)
{
    bool on = value != NULL && strcmp(value, "1") == 0;
    if (!on && value != NULL && value[0] != '\0' && strcmp(value, "0") != 0)
        return -1;
    log_checks = on;
    return 0;
}

void log_configure(log_level_e level, log_format_e format)
{
    log_level = log_checks ? LOG_DEBUG : level;
    log_format = format;
}

/* ---- parsing a format ------------------------------------------------------ */

/* Length of the run at p of bytes of set; clears *ok when over LOG_RUN_MAX. */
static size_t log_run(const char *p, const char *set, bool *ok)
{
    size_t n = strspn(p, set);
    if (n > LOG_RUN_MAX)
        *ok = false;
    return n;
}

/* Parses the length modifier at *p, if any, and moves *p past it. */
static log_len_e log_length(const char **p)
{
    static const struct {
        const char *text;
        log_len_e len;
    } LENGTHS[] = {{"hh", LEN_HH}, {"h", LEN_H}, {"ll", LEN_LL}, {"l", LEN_L},
                   {"z", LEN_Z},   {"j", LEN_J}, {"t", LEN_T}};
    for (size_t i = 0; i < sizeof(LENGTHS) / sizeof(LENGTHS[0]); i++) {
        size_t n = strlen(LENGTHS[i].text);
        if (strncmp(*p, LENGTHS[i].text, n) == 0) {
            *p += n;
            return LENGTHS[i].len;
        }
    }
    return LEN_NONE;
}

/* Parses the conversion at p (a '%'). Returns false for one this file does
 * not take (%n, %Lf, %ls, %1$d, %m...). */
static bool log_conv_parse(const char *p, struct log_conv *cv)
{
    bool ok = true;
    memset(cv, 0, sizeof(*cv));
    cv->flags = ++p;
    cv->nflags = log_run(p, "-+ #0", &ok);
    p += cv->nflags;
    cv->star_width = *p == '*';
    p += cv->star_width;
    cv->width = p;
    cv->nwidth = cv->star_width ? 0 : log_run(p, "0123456789", &ok);
    p += cv->nwidth;
    cv->has_prec = *p == '.';
    p += cv->has_prec;
    cv->star_prec = cv->has_prec && *p == '*';
    p += cv->star_prec;
    cv->prec = p;
    cv->nprec = cv->has_prec && !cv->star_prec ? log_run(p, "0123456789", &ok) : 0;
    p += cv->nprec;
    cv->len = log_length(&p);
    cv->conv = *p;
    cv->end = p + 1;
    if (!ok || cv->conv == '\0' || strchr("diouxXcspfFeEgGaA%", cv->conv) == NULL)
        return false;
    if (strchr("csp%", cv->conv) != NULL)
        return cv->len == LEN_NONE;
    return strchr("diouxX", cv->conv) != NULL || cv->len == LEN_NONE || cv->len == LEN_L;
}

static bool log_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether p (a '{') opens a field "{name=%conv}": if so, copies its name to
 * name (LOG_NAME_MAX bytes) and parses its conversion into cv. */
static bool log_field_parse(const char *p, char *name, struct log_conv *cv)
{
    size_t n = 0;
    while (log_name_char(p[1 + n]))
        n++;
    if (n == 0 || n >= LOG_NAME_MAX || p[1 + n] != '=' || p[2 + n] != '%' ||
        !log_conv_parse(p + 2 + n, cv) || cv->conv == '%' || *cv->end != '}')
        return false;
    memcpy(name, p + 1, n);
    name[n] = '\0';
    return true;
}

/* ---- rendering ------------------------------------------------------------- */

static void log_append(struct log_record *rec, const char *s, size_t n)
{
    size_t room = sizeof(rec->msg) - 1 - rec->len;
    n = n < room ? n : room;
    memcpy(rec->msg + rec->len, s, n);
    rec->len += n;
    rec->msg[rec->len] = '\0';
}

static void log_printf(struct log_record *rec, const char *spec, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one conversion, spec, formatted with its argument. */
static void log_printf(struct log_record *rec, const char *spec, ...)
{
    size_t room = sizeof(rec->msg) - rec->len;
    va_list ap;
    va_start(ap, spec);
    int n = vsnprintf(rec->msg + rec->len, room, spec, ap);
    va_end(ap);
    if (n > 0)
        rec->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Rebuilds cv as a format of one argument: the stars replaced by width and
 * prec, an integer conversion widened to long long. */
static void log_spec(char *spec, size_t len, const struct log_conv *cv, int width, int prec)
{
    int n = snprintf(spec, len, "%%%.*s", (int)cv->nflags, cv->flags);
    if (cv->star_width)
        n += snprintf(spec + n, len - (size_t)n, "%d", width);
    else
        n += snprintf(spec + n, len - (size_t)n, "%.*s", (int)cv->nwidth, cv->width);
    if (cv->has_prec && cv->star_prec && prec >= 0) /* a negative one is no precision */
        n += snprintf(spec + n, len - (size_t)n, ".%d", prec);
    else if (cv->has_prec && !cv->star_prec)
        n += snprintf(spec + n, len - (size_t)n, ".%.*s", (int)cv->nprec, cv->prec);
    snprintf(spec + n, len - (size_t)n, "%s%c", strchr("diouxX", cv->conv) ? "ll" : "", cv->conv);
}

static long long log_arg_signed(log_len_e len, va_list *ap)
{
    switch (len) {
    case LEN_HH:
        return (signed char)va_arg(*ap, int);
    case LEN_H:
        return (short)va_arg(*ap, int);
    case LEN_L:
        return va_arg(*ap, long);
    case LEN_LL:
        return va_arg(*ap, long long);
    case LEN_Z:
        return va_arg(*ap, ssize_t);
    case LEN_J:
        return va_arg(*ap, intmax_t);
    case LEN_T:
        return va_arg(*ap, ptrdiff_t);
    default:
        return va_arg(*ap, int);
    }
}

static unsigned long long log_arg_unsigned(log_len_e len, va_list *ap)
{
    switch (len) {
    case LEN_HH:
        return (unsigned char)va_arg(*ap, unsigned);
    case LEN_H:
        return (unsigned short)va_arg(*ap, unsigned);
    case LEN_L:
        return va_arg(*ap, unsigned long);
    case LEN_LL:
        return va_arg(*ap, unsigned long long);
    case LEN_Z:
        return va_arg(*ap, size_t);
    case LEN_J:
        return va_arg(*ap, uintmax_t);
    case LEN_T:
        return (size_t)va_arg(*ap, ptrdiff_t);
    default:
        return va_arg(*ap, unsigned);
    }
}

/* Appends conversion cv, taking its arguments from ap, and describes it in f. */
static void log_render_conv(struct log_record *rec, const struct log_conv *cv, va_list *ap,
                            struct log_field *f)
{
    char spec[LOG_SPEC_MAX];
    int width = cv->star_width ? va_arg(*ap, int) : 0;
    int prec = cv->star_prec ? va_arg(*ap, int) : 0;
    log_spec(spec, sizeof(spec), cv, width, prec);
    f->at = rec->len;
    f->kind = FIELD_TEXT;
    if (cv->conv == 'd' || cv->conv == 'i') {
        f->kind = FIELD_INT;
        f->i = log_arg_signed(cv->len, ap);
        log_printf(rec, spec, f->i);
    } else if (strchr("ouxX", cv->conv) != NULL) {
        f->kind = FIELD_UINT;
        f->u = log_arg_unsigned(cv->len, ap);
        log_printf(rec, spec, f->u);
    } else if (cv->conv == 'c') {
        log_printf(rec, spec, va_arg(*ap, int));
    } else if (cv->conv == 's') {
        const char *s = va_arg(*ap, const char *);
        log_printf(rec, spec, s != NULL ? s : "(null)");
    } else if (cv->conv == 'p') {
        log_printf(rec, spec, va_arg(*ap, void *));
    } else {
        f->kind = FIELD_REAL;
        log_printf(rec, spec, va_arg(*ap, double));
    }
    f->len = rec->len - f->at;
}

/* Renders fmt and its arguments into rec. A conversion this file does not
 * take ends the arguments: the rest of fmt is copied as it is. */
static void log_render(struct log_record *rec, const char *fmt, va_list *ap)
{
    rec->len = 0;
    rec->msg[0] = '\0';
    rec->nfields = 0;
    for (const char *p = fmt; *p != '\0';) {
        struct log_field spare, *f = &spare;
        struct log_conv cv;
        if (rec->nfields < LOG_FIELDS_MAX)
            f = &rec->fields[rec->nfields];
        if (*p == '{' && log_field_parse(p, f->name, &cv)) {
            log_render_conv(rec, &cv, ap, f);
            rec->nfields += f != &spare;
            p = cv.end + 1;
        } else if (*p == '%' && log_conv_parse(p, &cv)) {
            if (cv.conv == '%')
                log_append(rec, "%", 1);
            else
                log_render_conv(rec, &cv, ap, &spare);
            p = cv.end;
        } else if (*p == '%') {
            log_append(rec, p, strlen(p));
            return;
        } else {
            size_t n = 1 + strcspn(p + 1, "{%");
            log_append(rec, p, n);
            p += n;
        }
    }
}

/* ---- JSON ------------------------------------------------------------------ */

/* Length of the UTF-8 sequence at s (n bytes left), or 0 when it is not one
 * (a stray byte, overlong, a surrogate, over U+10FFFF or cut short). */
static size_t log_utf8_len(const unsigned char *s, size_t n)
{
    static const uint32_t MIN[] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    if (len == 1)
        return 1;
    uint32_t cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < MIN[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string of s[0..n) (n < LOG_MSG_MAX: at most 3 bytes out for each
 * byte in), each byte that is not UTF-8 replaced by U+FFFD; NULL when out of
 * memory. */
static json_t *log_json_text(const char *s, size_t n)
{
    char clean[3 * LOG_MSG_MAX];
    size_t at = 0;
    for (size_t i = 0; i < n;) {
        size_t len = log_utf8_len((const unsigned char *)s + i, n - i);
        if (len == 0) {
            memcpy(clean + at, "\xef\xbf\xbd", 3);
            at += 3;
            i++;
        } else {
            memcpy(clean + at, s + i, len);
            at += len;
            i += len;
        }
    }
    return json_stringn(clean, at);
}

/* The number printed as s[0..n), or NULL for inf and nan. */
static json_t *log_json_real(const char *s, size_t n)
{
    char num[LOG_MSG_MAX];
    snprintf(num, sizeof(num), "%.*s", (int)n, s);
    return json_real(strtod(num, NULL));
}

static json_t *log_json_field(const struct log_record *rec, const struct log_field *f)
{
    json_t *v = NULL;
    if (f->kind == FIELD_INT)
        v = json_integer(f->i);
    else if (f->kind == FIELD_UINT && f->u <= LLONG_MAX)
        v = json_integer((json_int_t)f->u);
    else if (f->kind == FIELD_REAL)
        v = log_json_real(rec->msg + f->at, f->len);
    return v != NULL ? v : log_json_text(rec->msg + f->at, f->len);
}

static bool log_reserved(const char *name)
{
    for (int i = 0; LOG_RESERVED[i] != NULL; i++) {
        if (strcmp(name, LOG_RESERVED[i]) == 0)
            return true;
    }
    return false;
}

/* The JSON line of rec, malloc'd, or NULL when out of memory. */
static char *log_json_line(const char *stamp, log_level_e level, const char *event,
                           const struct log_record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(stamp));
    json_object_set_new(o, "level", json_string(log_level_name(level)));
    json_object_set_new(o, "event", log_json_text(event, strnlen(event, LOG_MSG_MAX - 1)));
    json_object_set_new(o, "msg", log_json_text(rec->msg, rec->len));
    for (int i = 0; i < rec->nfields; i++) {
        const struct log_field *f = &rec->fields[i];
        if (!log_reserved(f->name) && json_object_get(o, f->name) == NULL)
            json_object_set_new(o, f->name, log_json_field(rec, f));
    }
    char *line = json_dumps(o, LOG_JSON_FLAGS);
    json_decref(o);
    return line;
}

/* ---- output ---------------------------------------------------------------- */

static void log_stamp(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", (long)tv.tv_usec / 1000);
}

void log_vwrite(FILE *out, log_level_e level, const char *event, const char *fmt, va_list ap)
{
    struct log_record rec;
    char stamp[LOG_STAMP_MAX];
    va_list args;
    va_copy(args, ap);
    log_render(&rec, fmt, &args);
    va_end(args);
    log_stamp(stamp, sizeof(stamp));
    char *line = log_format == LOG_JSON ? log_json_line(stamp, level, event, &rec) : NULL;
    if (line != NULL)
        fprintf(out, "%s\n", line);
    else /* text, or JSON out of memory */
        fprintf(out, "%s %s %s\n", stamp, log_level_name(level), rec.msg);
    free(line);
}

void log_write(log_level_e level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(stderr, level, event, fmt, ap);
    va_end(ap);
}

size_t log_redis_error_len(const char *err, size_t len)
{
    static const char ARGS[] = ", with args beginning with";
    const char *at = memmem(err, len, ARGS, sizeof(ARGS) - 1);
    return at != NULL ? (size_t)(at - err) : len;
}

bool log_limit_pass(struct log_limit *lim, log_level_e level)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (lim->second == (long)now.tv_sec && lim->second != 0) {
        lim->suppressed++;
        return false;
    }
    lim->second = (long)now.tv_sec;
    if (lim->suppressed > 0)
        log_write(level, "log_suppressed", "({count=%u} similar messages suppressed)",
                  lim->suppressed);
    lim->suppressed = 0;
    return true;
}
