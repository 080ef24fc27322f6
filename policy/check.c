/* check.c - validation: command filters and policy_check.
 *
 * For each key of the request the first validation rule that applies (the
 * vset of policy_build, a pattern_set in which a rule without `keys` stands
 * as "*") is judged; a request without keys goes to the first rule without
 * keys whose filter names it. The request's keys are found once (request.h)
 * and shared with the cache plan; the value size a limit needs is measured
 * once per request, in one pass.
 */
#include "policy/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/proto/args.h"

#define REASON_MAX 160
#define KOFFS_KEEP 4096u /* key offsets kept between requests */

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *name;
    unsigned bit;
} CLASSES[] = {
    {"read", COMMAND_CLASS_READ}, {"write", COMMAND_CLASS_WRITE}, {"admin", COMMAND_CLASS_ADMIN}};

/* ---- command filters ------------------------------------------------------- */

int check_filter_init(struct cmd_filter *f, const char *const *cmds, size_t n, unsigned allowed,
                      char *err, size_t errlen)
{
    f->names = n ? calloc(n, sizeof(*f->names)) : NULL;
    if (n && f->names == NULL) {
        rules_set_err(err, errlen, "commands: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *c = cmds[i];
        size_t len = strlen(c), k;
        for (k = 0; k < LEN(CLASSES) && strcasecmp(c, CLASSES[k].name) != 0; k++)
            ;
        if (k < LEN(CLASSES) && !(CLASSES[k].bit & allowed)) {
            rules_set_err(err, errlen, "commands: class '%s' does not apply here", CLASSES[k].name);
            return -1;
        }
        if (k < LEN(CLASSES)) {
            f->classes |= CLASSES[k].bit;
            continue;
        }
        bool ok = len > 0 && len <= COMMAND_NAME_MAX && c[0] != '|' && c[len - 1] != '|';
        for (size_t b = 0; ok && b < len; b++) {
            ok = c[b] > ' ' && c[b] < 0x7f;
            f->names[f->n].name[b] = c[b] >= 'A' && c[b] <= 'Z' ? (char)(c[b] + 32) : c[b];
        }
        if (!ok) {
            rules_set_err(err, errlen, "commands: bad command name '%.*s'", COMMAND_NAME_MAX, c);
            return -1;
        }
        f->names[f->n++].len = len;
    }
    return 0;
}

bool check_filter_match(const struct cmd_filter *f, const struct cmd_query *q)
{
    if (f->n == 0 && f->classes == 0)
        return true;
    if (f->classes & q->classes)
        return true;
    for (size_t i = 0; i < f->n; i++) {
        const struct filter_name *fn = &f->names[i];
        if ((fn->len == q->len || (q->container && fn->len == q->container)) &&
            memcmp(fn->name, q->name, fn->len) == 0)
            return true;
    }
    return false;
}

static size_t container_len(const char *name, size_t len)
{
    const char *bar = memchr(name, '|', len);

    return bar != NULL ? (size_t)(bar - name) : 0;
}

void check_query_command(struct cmd_query *q, const struct command *cmd)
{
    size_t len = strlen(cmd->name);

    *q = (struct cmd_query){cmd->name, len, container_len(cmd->name, len), cmd->classes};
}

void check_query_write(struct cmd_query *q, const char *command)
{
    size_t len = strlen(command);

    *q = (struct cmd_query){command, len, container_len(command, len), COMMAND_CLASS_WRITE};
}

/* ---- validation rules ---------------------------------------------------- */

static int reason_check(const char *reason, char *err, size_t errlen)
{
    for (const char *c = reason; c != NULL && *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            rules_set_err(err, errlen, "reason: must be one line without control bytes");
            return -1;
        }
    return 0;
}

int check_rule_fill(struct vrule *v, const struct policy_validate_rule *r, char *err, size_t errlen)
{
    static const unsigned every = COMMAND_CLASS_READ | COMMAND_CLASS_WRITE | COMMAND_CLASS_ADMIN;

    strcpy(v->name, r->name);
    v->action = r->action;
    v->max_key_length = r->max_key_length;
    v->max_value_size = r->max_value_size;
    if ((unsigned)r->action > POLICY_READ_ONLY) {
        rules_set_err(err, errlen, "action: unknown action");
        return -1;
    }
    if (rules_limit_check("max_key_length", r->max_key_length, -1, err, errlen) < 0 ||
        rules_limit_check("max_value_size", r->max_value_size, -1, err, errlen) < 0 ||
        reason_check(r->reason, err, errlen) < 0 ||
        rules_compile("keys", r->keys != NULL ? r->keys : "*", &v->keys, err, errlen) < 0 ||
        check_filter_init(&v->filter, r->commands, r->commands ? r->ncommands : 0, every, err,
                          errlen) < 0)
        return -1;
    v->keys_text = r->keys != NULL ? rules_strdup(r->keys) : NULL;
    v->reason = r->reason != NULL ? rules_strdup(r->reason) : NULL;
    if ((r->keys != NULL && v->keys_text == NULL) || (r->reason != NULL && v->reason == NULL)) {
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    return 0;
}

void check_rule_free(struct vrule *r)
{
    free(r->keys_text);
    pattern_destroy(&r->keys);
    free(r->filter.names);
    free(r->reason);
    free(r);
}

/* ---- policy_check ---------------------------------------------------------- */

struct check {
    struct policy *p;
    struct request *r;
    const struct resp_view *keys; /* r's */
    size_t nkeys;
    struct cmd_query q;
    char name[COMMAND_NAME_MAX + 1]; /* printable, truncated */
    int64_t value_size;              /* -1 until measured */
};

/* A rejection: the rule reported, its custom reason or the generated one,
 * and where it is counted (NULL: a module's). */
struct verdict {
    const char *rule;
    const char *custom;
    struct policy_rule_stats *stats;
    char reason[REASON_MAX];
};

void check_query_request(struct cmd_query *q, char *name, const struct request *r)
{
    const struct command *cmd = r->cmd;
    size_t len = cmd != NULL ? strlen(cmd->name) : r->frame->argv[0].len;
    size_t n = len < COMMAND_NAME_MAX ? len : COMMAND_NAME_MAX;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = cmd != NULL ? (unsigned char)cmd->name[i]
                                      : (unsigned char)r->buf[r->frame->argv[0].off + i];
        c = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
        name[i] = c > ' ' && c < 0x7f ? (char)c : '?';
    }
    name[n] = '\0';
    *q = (struct cmd_query){name, len, container_len(name, n), cmd != NULL ? cmd->classes : 0};
}

static void check_init(struct check *ck, struct policy *p, struct request *r)
{
    *ck = (struct check){p, r, NULL, 0, {0}, "", -1};
    check_query_request(&ck->q, ck->name, r);
}

/* Always true, for `return reject(...)`. */
static bool reject(struct verdict *v, struct policy *p, struct vrule *r, const char *fmt, ...)
{
    va_list ap;

    v->rule = r != NULL ? r->name : "default";
    v->custom = r != NULL ? r->reason : NULL;
    v->stats = r != NULL ? r->stats : p->validate_default;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
    return true;
}

static int off_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return (x > y) - (x < y);
}

/* The largest argument that is neither a key nor argv[0] (nor a container's
 * subcommand): one pass over the arguments against the sorted key offsets. */
static int64_t value_size(struct check *ck)
{
    struct policy *p = ck->p;
    const struct command *cmd = ck->r->cmd;
    struct resp_args args;
    struct resp_view a;
    int64_t first = cmd != NULL && strchr(cmd->name, '|') != NULL ? 2 : 1, largest = 0;
    size_t k = 0, n = ck->nkeys;
    bool sorted = true;

    if (ck->value_size >= 0)
        return ck->value_size;
    for (size_t i = 0; i < n; i++) {
        p->koffs[i] = ck->keys[i].off;
        sorted = sorted && (i == 0 || p->koffs[i - 1] <= p->koffs[i]);
    }
    if (!sorted)
        qsort(p->koffs, n, sizeof(*p->koffs), off_cmp);
    resp_args_init(&args, ck->r->buf, ck->r->frame);
    for (int64_t i = 0; resp_args_next(&args, &a); i++) {
        while (k < n && p->koffs[k] < a.off)
            k++;
        if (i >= first && (k == n || p->koffs[k] != a.off) && (int64_t)a.len > largest)
            largest = (int64_t)a.len;
    }
    return ck->value_size = largest;
}

/* Applies rule r (NULL: the defaults) to one key of klen bytes (keyed) or to
 * a request without keys. Returns true when it rejects, with v filled. */
static bool judge(struct check *ck, struct vrule *r, bool keyed, size_t klen, bool written,
                  struct verdict *v)
{
    const struct policy_defaults *d = &ck->p->defaults;
    policy_action_e action = r != NULL ? r->action : d->action;
    struct vrule *ksrc = r != NULL && r->max_key_length >= 0 ? r : NULL;
    struct vrule *vsrc = r != NULL && r->max_value_size >= 0 ? r : NULL;
    int64_t kmax = ksrc != NULL ? r->max_key_length : d->max_key_length;
    int64_t vmax = vsrc != NULL ? r->max_value_size : d->max_value_size;

    if (action == POLICY_DENY)
        return reject(v, ck->p, r, "command '%s' is denied%s", ck->name,
                      keyed && (r == NULL || r->keys_text != NULL) ? " on these keys" : "");
    if (action == POLICY_READ_ONLY && written)
        return reject(v, ck->p, r, "keys matching this rule are read-only");
    if (r == NULL && !keyed)
        return false; /* the defaults' limits are for keys */
    if (keyed && kmax > 0 && klen > (uint64_t)kmax)
        return reject(v, ck->p, ksrc, "key of %zu bytes is over the %lld byte limit", klen,
                      (long long)kmax);
    if (vmax > 0 && (ck->q.classes & COMMAND_CLASS_WRITE) && value_size(ck) > vmax)
        return reject(v, ck->p, vsrc, "value of %lld bytes is over the %lld byte limit",
                      (long long)value_size(ck), (long long)vmax);
    return false;
}

struct find {
    const struct cmd_query *q;
    struct vrule *rule;
};

/* pattern_set_each callback: stops at the first rule whose filter applies. */
static bool first_applicable(void *arg, void *value, const struct pattern_capture *caps)
{
    struct find *f = arg;
    struct vrule *r = value;

    (void)caps;
    if (!check_filter_match(&r->filter, f->q))
        return false;
    f->rule = r;
    return true;
}

static bool check_keys(struct check *ck, struct verdict *v)
{
    struct policy *p = ck->p;

    for (size_t i = 0; i < ck->nkeys; i++) {
        struct find f = {&ck->q, NULL};
        struct resp_view k = ck->keys[i];
        pattern_set_each(p->vset, ck->r->buf + k.off, k.len, first_applicable, &f);
        if (judge(ck, f.rule, true, k.len,
                  request_key_written(ck->r->keys->flags[i], ck->q.classes), v))
            return true;
    }
    return false;
}

static bool check_keyless(struct check *ck, struct verdict *v)
{
    struct policy *p = ck->p;
    struct vrule *r = NULL;

    for (size_t i = 0; i < p->nkeyless && r == NULL; i++)
        if (check_filter_match(&p->keyless[i]->filter, &ck->q))
            r = p->keyless[i];
    return judge(ck, r, false, 0, (ck->q.classes & COMMAND_CLASS_WRITE) != 0, v);
}

static bool check_modules(struct check *ck, struct verdict *v)
{
    struct policy *p = ck->p;
    struct policy_request r = {ck->name, ck->r->cmd, ck->r->buf, ck->r->frame, ck->keys, ck->nkeys};

    for (size_t i = 0; i < p->nmods; i++) {
        const struct policy_module *m = p->mods[i].mod;
        const char *why = m->validate != NULL ? m->validate(p->mods[i].state, &r) : NULL;
        if (why != NULL) {
            *v = (struct verdict){m->name, why, p->mods[i].stats, ""};
            return true;
        }
    }
    return false;
}

/* "-ERR policy <rule>: <reason>\r\n" in at most POLICY_REPLY_MAX bytes: the
 * reason is cut at a UTF-8 character boundary, control bytes become spaces. */
static size_t reply_format(char *reply, const struct verdict *v)
{
    const char *reason = v->custom != NULL ? v->custom : v->reason;
    size_t at = (size_t)snprintf(reply, POLICY_REPLY_MAX, "-ERR policy %s: ", v->rule);
    size_t room = POLICY_REPLY_MAX - 2 - at, n = strlen(reason);

    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)reason[i];
        reply[at++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    reply[at++] = '\r';
    reply[at++] = '\n';
    return at;
}

/* Room in p's scratch for the offsets of n keys (value_size sorts them). A
 * scratch grown by a very large request is given back at the next one. */
static int koffs_reserve(struct policy *p, size_t n)
{
    if (n <= p->cap_koffs && p->cap_koffs <= KOFFS_KEEP)
        return 0;
    size_t cap = n > 64 ? n : 64;
    size_t *o = realloc(p->koffs, cap * sizeof(*o));
    if (o == NULL)
        return -1;
    p->koffs = o;
    p->cap_koffs = cap;
    return 0;
}

/* Sets ck up for r, its keys found; returns their number (request_keys). */
static int check_start(struct check *ck, struct policy *p, struct request *r)
{
    check_init(ck, p, r);
    int n = request_keys(r);
    if (n > 0) {
        ck->keys = r->keys->views;
        ck->nkeys = (size_t)n;
    }
    return n;
}

size_t policy_check(struct policy *p, struct request *r, char *reply)
{
    if (!p->built || !p->validates || r->frame->kind != RESP_REQ_MULTIBULK || r->frame->argc < 1)
        return 0;
    struct check ck;
    struct verdict v;
    int n = check_start(&ck, p, r);
    bool rejected;
    policy_hold(p); /* the scratch, the modules' state */
    if (r->keys->lost || koffs_reserve(p, ck.nkeys) < 0)
        rejected = reject(&v, p, NULL, "out of memory");
    else if (n > 0)
        rejected = check_keys(&ck, &v);
    else
        rejected = check_keyless(&ck, &v);
    if (!rejected)
        rejected = check_modules(&ck, &v);
    size_t len = 0;
    if (rejected) {
        len = reply_format(reply, &v);
        if (v.stats != NULL)
            v.stats->rejections++;
        policy_on_error_held(p, reply, len);
    }
    policy_release(p);
    return len;
}

bool check_written(struct request *r, int i)
{
    unsigned classes = r->cmd != NULL ? r->cmd->classes : 0;
    if (i >= 0 && i < request_keys(r))
        return request_key_written(r->keys->flags[i], classes);
    return (classes & COMMAND_CLASS_WRITE) != 0;
}

bool check_judge(struct policy *p, struct request *r, int i, struct vrule *rule, char *why,
                 size_t len)
{
    struct check ck;
    struct verdict v;
    int n = check_start(&ck, p, r);
    bool keyed = i >= 0 && i < n, rejected = true;
    if (r->keys->lost || koffs_reserve(p, ck.nkeys) < 0)
        reject(&v, p, NULL, "out of memory");
    else
        rejected = judge(&ck, rule, keyed, keyed ? ck.keys[i].len : 0, check_written(r, i), &v);
    if (rejected)
        snprintf(why, len, "%s", v.custom != NULL ? v.custom : v.reason);
    return rejected;
}
