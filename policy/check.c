/* check.c - validation: command filters and policy_check.
 *
 * For each key of the request the first validation rule that applies (the
 * vset of policy_build, a pattern_set in which a rule without `keys` stands
 * as "*") is judged; a request without keys goes to the first rule without
 * keys whose filter names it. The keys are collected into a scratch kept in
 * the policy between requests (trimmed after a very large one), and the
 * value size a limit needs is measured once per request, in one pass.
 */
#include "policy/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCRATCH_KEEP 4096u /* key scratch kept between requests, in keys */
#define REASON_MAX   160

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *name;
    unsigned bit;
} CLASSES[] = {{"read", CLASS_READ}, {"write", CLASS_WRITE}, {"admin", CLASS_ADMIN}};

/* The class each command flag puts a command in. */
static const struct {
    unsigned flag;
    unsigned bit;
} FLAG_CLASSES[] = {
    {KEYS_CMD_READONLY, CLASS_READ},
    {KEYS_CMD_WRITE, CLASS_WRITE},
    {KEYS_CMD_ADMIN, CLASS_ADMIN},
};

/* Commands that write though neither their flags nor their key specs say so
 * (scripts may write anything; flushes and swaps touch every key). */
static const char *const ALWAYS_WRITE[] = {"eval",     "evalsha", "fcall",
                                           "flushall", "flushdb", "swapdb"};

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
        bool ok = len > 0 && len <= KEYS_NAME_MAX && c[0] != '|' && c[len - 1] != '|';
        for (size_t b = 0; ok && b < len; b++) {
            ok = c[b] > ' ' && c[b] < 0x7f;
            f->names[f->n].name[b] = c[b] >= 'A' && c[b] <= 'Z' ? (char)(c[b] + 32) : c[b];
        }
        if (!ok) {
            rules_set_err(err, errlen, "commands: bad command name '%.*s'", KEYS_NAME_MAX, c);
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

/* The classes of cmd: read, write, admin (none for an unknown command). */
static unsigned cmd_classes(const struct keys_cmd *cmd)
{
    unsigned c = 0;

    if (cmd == NULL)
        return 0;
    for (size_t i = 0; i < LEN(FLAG_CLASSES); i++)
        c |= (cmd->flags & FLAG_CLASSES[i].flag) ? FLAG_CLASSES[i].bit : 0;
    for (int i = 0; i < cmd->nspecs; i++)
        c |= (cmd->specs[i].flags & KEYS_KEY_WRITES) ? CLASS_WRITE : 0;
    for (size_t i = 0; i < LEN(ALWAYS_WRITE) && !(c & CLASS_WRITE); i++)
        c |= strcmp(cmd->name, ALWAYS_WRITE[i]) == 0 ? CLASS_WRITE : 0;
    return c;
}

void check_query_write(struct cmd_query *q, const char *command)
{
    size_t len = strlen(command);

    *q = (struct cmd_query){command, len, container_len(command, len), CLASS_WRITE};
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
    static const unsigned every = CLASS_READ | CLASS_WRITE | CLASS_ADMIN;

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
    const struct keys_cmd *cmd;
    const char *buf;
    const struct resp_request *req;
    struct cmd_query q;
    char name[KEYS_NAME_MAX + 1]; /* printable, truncated */
    int64_t value_size;           /* -1 until measured */
};

/* A rejection: the rule reported, its custom reason or the generated one,
 * and where it is counted (NULL: a module's). */
struct verdict {
    const char *rule;
    const char *custom;
    struct policy_rule_stats *stats;
    char reason[REASON_MAX];
};

static void check_init(struct check *ck, struct policy *p, const struct keys_cmd *cmd,
                       const char *buf, const struct resp_request *req)
{
    size_t len = cmd != NULL ? strlen(cmd->name) : req->argv[0].len;
    size_t n = len < KEYS_NAME_MAX ? len : KEYS_NAME_MAX;

    *ck = (struct check){p, cmd, buf, req, {ck->name, len, 0, cmd_classes(cmd)}, "", -1};
    for (size_t i = 0; i < n; i++) {
        unsigned char c =
            cmd != NULL ? (unsigned char)cmd->name[i] : (unsigned char)buf[req->argv[0].off + i];
        c = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
        ck->name[i] = c > ' ' && c < 0x7f ? (char)c : '?';
    }
    ck->name[n] = '\0';
    ck->q.container = container_len(ck->name, n);
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

/* Argument i of req for i = 0, 1, 2...: O(1) each, resp_request_arg walking
 * on from the previous one (kept in walk, a copy of req). */
static struct resp_view arg_next(struct resp_request *walk, const struct resp_request *req,
                                 const char *buf, int64_t i)
{
    struct resp_view v =
        i < RESP_REQ_ARGS ? req->argv[i] : resp_request_arg(walk, buf, RESP_REQ_ARGS);

    walk->argv[RESP_REQ_ARGS - 1] = v;
    return v;
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
    struct resp_request walk = *ck->req;
    int64_t first = ck->cmd != NULL && strchr(ck->cmd->name, '|') != NULL ? 2 : 1, largest = 0;
    size_t k = 0, n = p->nkeys;
    bool sorted = true;

    if (ck->value_size >= 0)
        return ck->value_size;
    for (size_t i = 0; i < n; i++) {
        p->koffs[i] = p->keys[i].off;
        sorted = sorted && (i == 0 || p->koffs[i - 1] <= p->koffs[i]);
    }
    if (!sorted)
        qsort(p->koffs, n, sizeof(*p->koffs), off_cmp);
    for (int64_t i = 0; i < ck->req->argc; i++) {
        struct resp_view a = arg_next(&walk, ck->req, ck->buf, i);
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
    if (vmax > 0 && (ck->q.classes & CLASS_WRITE) && value_size(ck) > vmax)
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

/* Whether a key found with spec flags is modified by a command of classes. */
static bool key_written(unsigned flags, unsigned classes)
{
    if (flags & KEYS_KEY_WRITES)
        return true;
    return (classes & CLASS_WRITE) && !(flags & (KEYS_KEY_RO | KEYS_KEY_ACCESS));
}

static bool check_keys(struct check *ck, struct verdict *v)
{
    struct policy *p = ck->p;

    for (size_t i = 0; i < p->nkeys; i++) {
        struct find f = {&ck->q, NULL};
        struct resp_view k = p->keys[i];
        pattern_set_each(p->vset, ck->buf + k.off, k.len, first_applicable, &f);
        if (judge(ck, f.rule, true, k.len, key_written(p->kflags[i], ck->q.classes), v))
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
    return judge(ck, r, false, 0, (ck->q.classes & CLASS_WRITE) != 0, v);
}

static bool check_modules(struct check *ck, struct verdict *v)
{
    struct policy *p = ck->p;
    struct policy_request r = {ck->name, ck->cmd, ck->buf, ck->req, p->keys, p->nkeys};

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

/* keys_each callback: appends the key to the scratch, growing it. */
static void collect_key(void *arg, struct resp_view key, unsigned flags)
{
    struct policy *p = arg;

    if (p->nkeys == p->cap_keys) {
        size_t cap = p->cap_keys ? p->cap_keys * 2 : 64;
        struct resp_view *k = realloc(p->keys, cap * sizeof(*k));
        unsigned *f = k != NULL ? realloc(p->kflags, cap * sizeof(*f)) : NULL;
        size_t *o = f != NULL ? realloc(p->koffs, cap * sizeof(*o)) : NULL;
        p->keys = k != NULL ? k : p->keys;
        p->kflags = f != NULL ? f : p->kflags;
        p->koffs = o != NULL ? o : p->koffs;
        if (o == NULL) {
            p->keys_lost = true;
            return;
        }
        p->cap_keys = cap;
    }
    p->keys[p->nkeys] = key;
    p->kflags[p->nkeys++] = flags;
}

/* Frees a scratch grown by a very large request. */
static void scratch_trim(struct policy *p)
{
    if (p->cap_keys <= SCRATCH_KEEP)
        return;
    free(p->keys);
    free(p->kflags);
    free(p->koffs);
    p->keys = NULL;
    p->kflags = NULL;
    p->koffs = NULL;
    p->cap_keys = 0;
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

size_t policy_check(struct policy *p, const struct keys_cmd *cmd, const char *buf,
                    const struct resp_request *req, char *reply)
{
    struct check ck;
    struct verdict v;
    bool rejected;
    size_t len;
    int n;

    if (!p->built || !p->validates || req->kind != RESP_REQ_MULTIBULK || req->argc < 1)
        return 0;
    check_init(&ck, p, cmd, buf, req);
    p->nkeys = 0;
    p->keys_lost = false;
    n = cmd != NULL ? keys_each(cmd, buf, req, collect_key, p) : -1;
    if (p->keys_lost)
        rejected = reject(&v, p, NULL, "out of memory");
    else if (n > 0)
        rejected = check_keys(&ck, &v);
    else
        rejected = check_keyless(&ck, &v);
    if (!rejected)
        rejected = check_modules(&ck, &v);
    scratch_trim(p);
    if (!rejected)
        return 0;
    len = reply_format(reply, &v);
    if (v.stats != NULL)
        v.stats->rejections++;
    policy_on_error(p, reply, len);
    return len;
}
