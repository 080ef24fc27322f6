/* bulk.c - `nearcache bulk`: parse operations, run them pipelined, report;
 * see bulk.h. */
#include "proxy/tools/bulk.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config.h"
#include "proxy/lib/text.h"
#include "proxy/tools/target.h"

#define BULK_ARGS_MAX  5 /* set KEY VALUE ttl SECONDS */
#define BULK_BATCH_MAX 100000
#define BULK_TIMEOUT   10000 /* ms, for the connect and for each reply */

static const char *const KIND_NAME[] = {"get", "set", "del", "invalidate", "invalid"};

/* Words of one line, each a heap copy (NUL-terminated, may hold NULs). */
struct words {
    char *w[BULK_ARGS_MAX];
    size_t len[BULK_ARGS_MAX];
    int n;
};

static void words_free(struct words *ws)
{
    for (int i = 0; i < ws->n; i++)
        free(ws->w[i]);
    ws->n = 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The byte a backslash escape inside double quotes stands for, at p[0..]
 * (after the backslash); *used is how many bytes it took. */
static char unescape(const char *p, const char *end, size_t *used)
{
    static const char FROM[] = "nrtab", TO[] = "\n\r\t\a\b";
    if (p[0] == 'x' && end - p >= 3 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
        *used = 3;
        return (char)(hexval(p[1]) * 16 + hexval(p[2]));
    }
    *used = 1;
    const char *f = strchr(FROM, p[0]);
    return f && p[0] ? TO[f - FROM] : p[0];
}

/* Reads one word at *pp into out (room for end - *pp bytes), as redis-cli
 * does. Returns its length, or -1 with *why set for unbalanced quotes or a
 * closing quote followed by something else than a space. */
static long word_read(const char **pp, const char *end, char *out, const char **why)
{
    const char *p = *pp;
    size_t n = 0;
    char quote = 0;
    while (p < end && (quote || !isspace((unsigned char)*p))) {
        if (!quote && (*p == '"' || *p == '\'')) {
            quote = *p++;
        } else if (quote && *p == quote) {
            if (++p < end && !isspace((unsigned char)*p)) {
                *why = "closing quote must be followed by a space";
                return -1;
            }
            quote = 0;
            break;
        } else if (quote == '"' && *p == '\\' && p + 1 < end) {
            size_t used;
            out[n++] = unescape(p + 1, end, &used);
            p += 1 + used;
        } else if (quote == '\'' && *p == '\\' && p + 1 < end && p[1] == '\'') {
            out[n++] = '\'';
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    if (quote) {
        *why = "unbalanced quotes";
        return -1;
    }
    *pp = p;
    return (long)n;
}

/* Splits line[0..len) into ws. Returns 0, or -1 with *why set. */
static int words_split(struct words *ws, const char *line, size_t len, const char **why)
{
    const char *p = line, *end = line + len;
    ws->n = 0;
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p == end)
            return 0;
        if (ws->n == BULK_ARGS_MAX) {
            *why = "too many arguments";
            return -1;
        }
        char *out = malloc((size_t)(end - p) + 1);
        long n = out ? word_read(&p, end, out, why) : (*why = "out of memory", -1);
        if (n < 0) {
            free(out);
            return -1;
        }
        out[n] = '\0';
        ws->w[ws->n] = out;
        ws->len[ws->n++] = (size_t)n;
    }
}

static struct bulk_op *list_push(struct bulk_list *l, bulk_kind_e kind, unsigned long line)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct bulk_op *ops = realloc(l->ops, cap * sizeof(*ops));
        if (ops == NULL)
            return NULL;
        l->ops = ops;
        l->cap = cap;
    }
    struct bulk_op *op = &l->ops[l->n++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->line = line;
    return op;
}

/* Appends a BULK_INVALID op whose reason is why. Returns 0 or -1. */
static int list_push_invalid(struct bulk_list *l, unsigned long line, const char *why)
{
    struct bulk_op *op = list_push(l, BULK_INVALID, line);
    if (op == NULL || (op->error = strdup(why)) == NULL)
        return -1;
    return 0;
}

void bulk_list_deinit(struct bulk_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->ops[i].key);
        free(l->ops[i].value);
        free(l->ops[i].error);
    }
    free(l->ops);
    memset(l, 0, sizeof(*l));
}

/* Parses a TTL in seconds: a whole number from 1 to 10^12. */
static int ttl_parse(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 1 || v > 1000000000000LL)
        return -1;
    *out = v;
    return 0;
}

static bulk_kind_e kind_lookup(const char *name)
{
    for (int k = BULK_GET; k < BULK_INVALID; k++)
        if (strcasecmp(name, KIND_NAME[k]) == 0)
            return (bulk_kind_e)k;
    return BULK_INVALID;
}

/* Checks the shape of split words; NULL when they make an operation, else
 * why not (kind and ttl set when they do). */
static const char *words_check(const struct words *ws, bulk_kind_e *kind, long long *ttl)
{
    static const int ARGS[] = {2, 3, 2, 2}; /* words for get, set, del, invalidate */
    *kind = kind_lookup(ws->w[0]);
    *ttl = 0;
    if (*kind == BULK_INVALID)
        return "unknown operation (expected get, set, del or invalidate)";
    if (*kind == BULK_SET && ws->n == 5) {
        if (strcasecmp(ws->w[3], "ttl") != 0)
            return "expected: set KEY VALUE [ttl SECONDS]";
        if (ttl_parse(ws->w[4], ttl) < 0)
            return "ttl must be a whole number of seconds from 1 to 10^12";
        return NULL;
    }
    if (ws->n != ARGS[*kind])
        return *kind == BULK_SET          ? "expected: set KEY VALUE [ttl SECONDS]"
               : *kind == BULK_INVALIDATE ? "expected: invalidate PATTERN"
               : *kind == BULK_GET        ? "expected: get KEY"
                                          : "expected: del KEY";
    return NULL;
}

/* Parses one text line (len bytes, no newline) numbered lineno and appends
 * its operation to l; blank lines and comments append nothing, a malformed
 * line appends a BULK_INVALID op. Returns 0, or -1 when out of memory. */
static int bulk_parse_line(struct bulk_list *l, const char *line, size_t len, unsigned long lineno)
{
    struct words ws = {.n = 0};
    const char *why = NULL;
    size_t i = 0;
    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    bulk_kind_e kind;
    long long ttl;
    if (words_split(&ws, line, len, &why) < 0 || (why = words_check(&ws, &kind, &ttl))) {
        words_free(&ws);
        return list_push_invalid(l, lineno, why);
    }
    struct bulk_op *op = list_push(l, kind, lineno);
    if (op == NULL) {
        words_free(&ws);
        return -1;
    }
    op->key = ws.w[1], op->key_len = ws.len[1], ws.w[1] = NULL;
    if (kind == BULK_SET)
        op->value = ws.w[2], op->value_len = ws.len[2], ws.w[2] = NULL, op->ttl = ttl;
    words_free(&ws);
    return 0;
}

int bulk_parse_file(struct bulk_list *l, FILE *f, char *err, size_t errlen)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (bulk_parse_line(l, line, (size_t)n, lineno) < 0) {
            snprintf(err, errlen, "out of memory at line %lu", lineno);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "read error: %s", strerror(errno));
        rc = -1;
    }
    free(line);
    return rc;
}

/* The string member name of o, with its length; NULL when absent. */
static const char *json_bytes(const json_t *o, const char *name, size_t *len)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* Copies p[0..len) to a NUL-terminated heap string. */
static char *bytes_dup(const char *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* Builds the op of one JSON element at index i; NULL when it makes one, else
 * why not. */
static const char *json_op(struct bulk_list *l, const json_t *e, unsigned long i, int *oom)
{
    const char *name = json_string_value(json_object_get(e, "op"));
    bulk_kind_e kind = name ? kind_lookup(name) : BULK_INVALID;
    if (kind == BULK_INVALID)
        return "\"op\" must be \"get\", \"set\", \"del\" or \"invalidate\"";
    size_t klen = 0, vlen = 0;
    const char *key = json_bytes(e, kind == BULK_INVALIDATE ? "pattern" : "key", &klen);
    const char *value = json_bytes(e, "value", &vlen);
    const json_t *ttl = json_object_get(e, "ttl");
    if (key == NULL)
        return kind == BULK_INVALIDATE ? "\"pattern\" must be a string"
                                       : "\"key\" must be a string";
    if (kind == BULK_SET && value == NULL)
        return "\"value\" must be a string";
    if (kind == BULK_SET && ttl && !json_is_null(ttl) &&
        (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
         json_integer_value(ttl) > 1000000000000LL))
        return "\"ttl\" must be a whole number of seconds from 1 to 10^12";
    struct bulk_op *op = list_push(l, kind, i);
    if (op == NULL || !(op->key = bytes_dup(key, klen)) ||
        (kind == BULK_SET && !(op->value = bytes_dup(value, vlen)))) {
        *oom = 1;
        return NULL;
    }
    op->key_len = klen;
    op->value_len = vlen;
    op->ttl = kind == BULK_SET && json_is_integer(ttl) ? json_integer_value(ttl) : 0;
    return NULL;
}

int bulk_parse_json(struct bulk_list *l, const json_t *ops, char *err, size_t errlen)
{
    if (!json_is_array(ops)) {
        snprintf(err, errlen, "operations must be a JSON array");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *e = json_array_get(ops, i);
        int oom = 0;
        const char *why = json_is_object(e) ? json_op(l, e, i, &oom) : "not a JSON object";
        if (oom || (why && list_push_invalid(l, i, why) < 0)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---- running -------------------------------------------------------------- */

typedef enum { OUT_OK, OUT_NIL, OUT_ERROR, OUT_KINDS } outcome_e;
static const char *const OUTCOME_NAME[] = {"ok", "nil", "error"};

struct tally {
    size_t n[BULK_INVALID][OUT_KINDS];
    size_t invalid, batches, done;
};

/* Sets o[name] to the bytes as a string when they are UTF-8, else
 * o[name + "_escaped"] to their escaped form. Returns 0 or -1. */
static int json_put_bytes(json_t *o, const char *name, const char *p, size_t len)
{
    json_t *s = json_stringn(p, len);
    if (s)
        return json_object_set_new(o, name, s);
    char key[32], *esc = text_quote(p, len);
    snprintf(key, sizeof(key), "%s_escaped", name);
    int rc = esc ? json_object_set_new(o, key, json_string(esc)) : -1;
    free(esc);
    return rc;
}

/* Queues op's command on c. */
static int op_append(redisContext *c, const struct bulk_op *op)
{
    char ttl[24];
    const char *argv[5] = {NULL, op->key, op->value, "EX", ttl};
    size_t len[5] = {0, op->key_len, op->value_len, 2, 0};
    int argc = op->kind == BULK_SET ? (op->ttl ? 5 : 3) : 2;
    if (op->kind == BULK_INVALIDATE) {
        argv[0] = "NEARCACHE", argv[1] = "INVALIDATE", argv[2] = op->key;
        len[1] = 10, len[2] = op->key_len, argc = 3;
    } else {
        argv[0] = op->kind == BULK_GET ? "GET" : op->kind == BULK_SET ? "SET" : "DEL";
    }
    len[0] = strlen(argv[0]);
    len[4] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", op->ttl);
    return redisAppendCommandArgv(c, argc, argv, len);
}

/* Judges reply r to op, filling the result object res. */
static outcome_e op_judge(const struct bulk_op *op, const redisReply *r, json_t *res)
{
    if (r->type == REDIS_REPLY_ERROR) {
        json_put_bytes(res, "error", r->str, r->len);
        return OUT_ERROR;
    }
    if (op->kind == BULK_GET && r->type == REDIS_REPLY_NIL)
        return OUT_NIL;
    if (op->kind == BULK_GET && r->type == REDIS_REPLY_STRING)
        return json_put_bytes(res, "value", r->str, r->len) < 0 ? OUT_ERROR : OUT_OK;
    if (op->kind == BULK_DEL && r->type == REDIS_REPLY_INTEGER) {
        json_object_set_new(res, "deleted", json_integer(r->integer));
        return OUT_OK;
    }
    if ((op->kind == BULK_SET || op->kind == BULK_INVALIDATE) && r->type == REDIS_REPLY_STATUS)
        return OUT_OK;
    json_object_set_new(res, "error", json_string("unexpected reply type"));
    return OUT_ERROR;
}

/* A new result object for op, its line, name and key. */
static json_t *result_create(const struct bulk_op *op)
{
    json_t *res = json_pack("{sIss}", "line", (json_int_t)op->line, "op", KIND_NAME[op->kind]);
    if (res && op->kind == BULK_INVALID)
        json_object_set_new(res, "error", json_string(op->error));
    else if (res)
        json_put_bytes(res, op->kind == BULK_INVALIDATE ? "pattern" : "key", op->key, op->key_len);
    if (res && op->kind == BULK_SET && op->ttl)
        json_object_set_new(res, "ttl", json_integer(op->ttl));
    return res;
}

/* Runs ops[0..n) as one pipeline: appends every command, then reads the
 * replies in order, adding a result per op to results. Returns 0, or -1
 * when the connection failed (c->errstr says why). */
static int batch_run(redisContext *c, const struct bulk_op *ops, size_t n, json_t *results,
                     struct tally *t)
{
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == BULK_INVALID)
            continue;
        if (op_append(c, &ops[i]) != REDIS_OK)
            return -1;
        sent++;
    }
    if (c->err)
        return -1;
    t->batches += sent > 0;
    for (size_t i = 0; i < n; i++) {
        json_t *res = result_create(&ops[i]);
        if (ops[i].kind == BULK_INVALID) {
            json_object_set_new(res, "outcome", json_string("invalid"));
            t->invalid++;
        } else {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                json_decref(res);
                return -1;
            }
            outcome_e o = op_judge(&ops[i], r, res);
            freeReplyObject(r);
            json_object_set_new(res, "outcome", json_string(OUTCOME_NAME[o]));
            t->n[ops[i].kind][o]++;
        }
        json_array_append_new(results, res);
        t->done++;
    }
    return 0;
}

/* The summary object of a run. */
static json_t *summary_create(const struct tally *t, double elapsed)
{
    json_t *s = json_object(), *by = json_object();
    size_t total[OUT_KINDS] = {0};
    for (int k = BULK_GET; k < BULK_INVALID; k++) {
        json_t *o = json_object();
        for (int i = 0; i < OUT_KINDS; i++) {
            json_object_set_new(o, OUTCOME_NAME[i], json_integer((json_int_t)t->n[k][i]));
            total[i] += t->n[k][i];
        }
        json_object_set_new(by, KIND_NAME[k], o);
    }
    json_object_set_new(s, "operations", json_integer((json_int_t)t->done));
    for (int i = 0; i < OUT_KINDS; i++)
        json_object_set_new(s, OUTCOME_NAME[i], json_integer((json_int_t)total[i]));
    json_object_set_new(s, "invalid", json_integer((json_int_t)t->invalid));
    json_object_set_new(s, "by_op", by);
    json_object_set_new(s, "batches", json_integer((json_int_t)t->batches));
    json_object_set_new(s, "elapsed_s", json_real(elapsed));
    json_object_set_new(s, "ops_per_sec", json_real(elapsed > 0 ? (double)t->done / elapsed : 0));
    return s;
}

json_t *bulk_run(redisContext *c, const struct bulk_op *ops, size_t n, size_t batch, char *err,
                 size_t errlen)
{
    struct tally t;
    memset(&t, 0, sizeof(t));
    json_t *results = json_array(), *report = json_object();
    if (results == NULL || report == NULL || batch == 0) {
        json_decref(results);
        json_decref(report);
        snprintf(err, errlen, batch == 0 ? "the batch size must be at least 1" : "out of memory");
        return NULL;
    }
    const char *aborted = NULL;
    double t0 = target_now();
    for (size_t i = 0; i < n && !aborted; i += batch)
        if (batch_run(c, ops + i, n - i < batch ? n - i : batch, results, &t) < 0)
            aborted = c->errstr[0] ? c->errstr : "connection lost";
    json_t *summary = summary_create(&t, target_now() - t0);
    if (aborted)
        json_object_set_new(summary, "aborted", json_string(aborted));
    json_object_set_new(report, "results", results);
    json_object_set_new(report, "summary", summary);
    return report;
}

/* ---- output --------------------------------------------------------------- */

/* Prints o[name] (or o[name_escaped]) quoted when it must be, or always. */
static void print_bytes(FILE *out, const json_t *o, const char *name, bool always)
{
    char key[32];
    size_t len;
    const char *p = json_bytes(o, name, &len);
    snprintf(key, sizeof(key), "%s_escaped", name);
    if (p == NULL) {
        fprintf(out, "\"%s\"", json_string_value(json_object_get(o, key)));
        return;
    }
    char *esc = text_quote(p, len);
    bool plain = esc && len > 0 && strlen(esc) == len && strcspn(p, " '") == len;
    if (esc)
        fprintf(out, always || !plain ? "\"%s\"" : "%s", esc);
    free(esc);
}

/* Writes one line per result of a bulk_run() report to out
 * ("line 3: get user:1 -> \"Ada\""). */
static void bulk_print(FILE *out, const json_t *report)
{
    size_t i;
    const json_t *res;
    json_array_foreach(json_object_get(report, "results"), i, res)
    {
        const char *op = json_string_value(json_object_get(res, "op"));
        const char *outcome = json_string_value(json_object_get(res, "outcome"));
        fprintf(out, "line %lld: ", (long long)json_integer_value(json_object_get(res, "line")));
        if (strcmp(outcome, "invalid") == 0) {
            fprintf(out, "invalid: %s\n", json_string_value(json_object_get(res, "error")));
            continue;
        }
        fprintf(out, "%s ", op);
        print_bytes(out, res, strcmp(op, "invalidate") == 0 ? "pattern" : "key", false);
        fputs(" -> ", out);
        if (strcmp(outcome, "error") == 0) {
            const char *e = json_string_value(json_object_get(res, "error"));
            fprintf(out, "(error) %s",
                    e ? e : json_string_value(json_object_get(res, "error_escaped")));
        } else if (strcmp(outcome, "nil") == 0) {
            fputs("(nil)", out);
        } else if (strcmp(op, "get") == 0) {
            print_bytes(out, res, "value", true);
        } else if (strcmp(op, "del") == 0) {
            fprintf(out, "(integer) %lld",
                    (long long)json_integer_value(json_object_get(res, "deleted")));
        } else {
            fputs("OK", out);
        }
        fputc('\n', out);
    }
}

/* Prints the one-line summary of a report to stderr. */
static void summary_print(const json_t *report)
{
    const json_t *s = json_object_get(report, "summary");
    const char *aborted = json_string_value(json_object_get(s, "aborted"));
#define FIELD(name) ((long long)json_integer_value(json_object_get(s, name)))
    fprintf(stderr,
            "bulk: %lld operations in %lld batches, %.3f s (%.0f ops/s): %lld ok, %lld nil, "
            "%lld error, %lld invalid\n",
            FIELD("operations"), FIELD("batches"), json_real_value(json_object_get(s, "elapsed_s")),
            json_real_value(json_object_get(s, "ops_per_sec")), FIELD("ok"), FIELD("nil"),
            FIELD("error"), FIELD("invalid"));
#undef FIELD
    if (aborted)
        fprintf(stderr, "bulk: stopped early: %s\n", aborted);
}

static const char BULK_USAGE[] =
    "usage: nearcache bulk --target ADDR [options] [--file FILE]\n"
    "  -t, --target ADDR      the proxy or Redis (host:port or unix socket path)\n"
    "  -a, --password PASS    AUTH with this password\n"
    "  -n, --db N             SELECT this database first\n"
    "  -f, --file FILE        read operations from FILE (default: standard input)\n"
    "  -b, --batch N          operations per round trip (default 100)\n"
    "      --json             one JSON report on standard output\n"
    "operations, one per line: get KEY | set KEY VALUE [ttl SECONDS] | del KEY |\n"
    "  invalidate PATTERN; quoting as redis-cli; blank lines and # comments skipped\n";

struct bulk_args {
    const char *target, *password, *file;
    int64_t db, batch;
    bool json;
};

/* Parses the command line. Returns 0, 1 for --help, or -1 (usage printed). */
static int bulk_args_parse(int argc, char **argv, struct bulk_args *a)
{
    static const struct option LONG[] = {
        {"target", required_argument, NULL, 't'}, {"password", required_argument, NULL, 'a'},
        {"db", required_argument, NULL, 'n'},     {"file", required_argument, NULL, 'f'},
        {"batch", required_argument, NULL, 'b'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    *a = (struct bulk_args){.batch = 100};
    optind = 1;
    int opt;
    char why[128] = "";
    int64_t v = 0;
    while ((opt = getopt_long(argc, argv, "t:a:n:f:b:h", LONG, NULL)) != -1) {
        if ((opt == 'n' || opt == 'b') &&
            config_parse_amount(CONFIG_NUMBER, optarg, opt == 'n' ? 0 : 1,
                                opt == 'n' ? 65535 : BULK_BATCH_MAX, &v, why, sizeof(why)) < 0) {
            fprintf(stderr, "nearcache bulk: --%s %s: %s\n%s", opt == 'n' ? "db" : "batch", optarg,
                    why, BULK_USAGE);
            return -1;
        }
        switch (opt) {
        case 't':
            a->target = optarg;
            break;
        case 'a':
            a->password = optarg;
            break;
        case 'f':
            a->file = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'n':
            a->db = v;
            break;
        case 'b':
            a->batch = v;
            break;
        case 'h':
            fputs(BULK_USAGE, stdout);
            return 1;
        default:
            fputs(BULK_USAGE, stderr);
            return -1;
        }
    }
    const char *bad = optind < argc ? "unexpected argument"
                      : !a->target  ? "--target is required"
                                    : NULL;
    if (bad)
        fprintf(stderr, "nearcache bulk: %s\n%s", bad, BULK_USAGE);
    return bad ? -1 : 0;
}

/* Reads the operations of a->file (or stdin) into l. Returns 0, or -1. */
static int bulk_read(const struct bulk_args *a, struct bulk_list *l)
{
    char err[256];
    FILE *f = a->file ? fopen(a->file, "r") : stdin;
    if (f == NULL) {
        fprintf(stderr, "nearcache bulk: %s: %s\n", a->file, strerror(errno));
        return -1;
    }
    int rc = bulk_parse_file(l, f, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "nearcache bulk: %s: %s\n", a->file ? a->file : "stdin", err);
    if (a->file)
        fclose(f);
    return rc;
}

int bulk_main(int argc, char **argv)
{
    struct bulk_args a;
    struct bulk_list l = {0};
    char err[256];
    int rc = bulk_args_parse(argc, argv, &a);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (bulk_read(&a, &l) < 0) {
        bulk_list_deinit(&l);
        return 2;
    }
    redisContext *c =
        target_connect(a.target, NULL, a.password, (int)a.db, BULK_TIMEOUT, err, sizeof(err));
    json_t *report = c ? bulk_run(c, l.ops, l.n, (size_t)a.batch, err, sizeof(err)) : NULL;
    if (report == NULL) {
        fprintf(stderr, "nearcache bulk: %s\n", err);
        rc = 1;
    } else {
        if (a.json)
            json_dumpf(report, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        else
            bulk_print(stdout, report);
        if (a.json)
            fputc('\n', stdout);
        summary_print(report);
        const json_t *s = json_object_get(report, "summary");
        rc = json_integer_value(json_object_get(s, "error")) ||
                     json_integer_value(json_object_get(s, "invalid")) ||
                     json_object_get(s, "aborted")
                 ? 1
                 : 0;
    }
    json_decref(report);
    redisFree(c);
    bulk_list_deinit(&l);
    return rc;
}
