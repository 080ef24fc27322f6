/* explain.c - policy_explain: which rules apply to a key and why, for
 * NEARCACHE EXPLAIN.
 *
 * Walks the same pattern sets as the request path, in the same order, so
 * that the rule it says decides is the rule that does; judges validation
 * through check.c's own judge. Counts nothing, fires nothing and touches no
 * window: an explanation changes no state but the validation scratch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/check.h"
#include "policy/rules.h"
#include "proxy/lib/text.h"

#define WHY_MAX 192 /* a rejection's reason: the rule's own, or generated */

static const char *const ACTIONS[] = {
    [POLICY_ALLOW] = "allow", [POLICY_DENY] = "deny", [POLICY_READ_ONLY] = "read-only"};

struct explaining {
    struct policy *p;
    struct request *r;
    const char *key;
    size_t klen;
    int ki;                          /* the key's place among r's keys; -1: not one of them */
    struct cmd_query q;              /* r's command */
    char name[COMMAND_NAME_MAX + 1]; /* its name, as q has it */
    const char *first;               /* the rule that decides, once found */
    uint64_t default_ttl;            /* cache.ttl, for rules without a ttl of their own */
    struct text *out;
};

/* " commands=a,b" for a command filter, "*" for an empty one. */
static void filter_text(struct text *out, const struct cmd_filter *f)
{
    static const char *const CLASSES[] = {"read", "write", "admin"}; /* COMMAND_CLASS_* bits */
    const char *sep = "";
    text_printf(out, " commands=%s", f->n == 0 && f->classes == 0 ? "*" : "");
    for (unsigned i = 0; i < 3; i++)
        if (f->classes & (1u << i)) {
            text_printf(out, "%s%s", sep, CLASSES[i]);
            sep = ",";
        }
    for (size_t i = 0; i < f->n; i++, sep = ",")
        text_printf(out, "%s%s", sep, f->names[i].name);
}

/* "field=text" for a pattern, as a word. */
static void pattern_text(struct text *out, const char *field, const char *text)
{
    text_printf(out, "%s=", field);
    text_escaped(out, text, strlen(text));
}

/* ---- validation ------------------------------------------------------------- */

/* One validation rule's line (NULL: the defaults, when no rule applies). */
static void validate_line(struct explaining *e, struct vrule *v)
{
    const struct policy_defaults *d = &e->p->defaults;
    const char *name = v != NULL ? v->name : "default";
    char why[WHY_MAX];
    bool skip = v != NULL && !check_filter_match(&v->filter, &e->q);
    bool rejected = !skip && check_judge(e->p, e->r, e->ki, v, why, sizeof(why));
    text_printf(e->out, "validate:%s:%s: ", name, skip ? "skip" : rejected ? "reject" : "allow");
    if (skip)
        text_printf(e->out, "its commands do not name '%s'", e->name);
    else if (e->first == NULL)
        text_printf(e->out, "decides%s", v == NULL ? ", no rule applies" : "");
    else
        text_printf(e->out, "shadowed by %s", e->first);
    if (!skip && e->first == NULL)
        e->first = name;
    text_printf(e->out, " [");
    if (v != NULL) {
        pattern_text(e->out, "keys", v->keys_text != NULL ? v->keys_text : "*");
        filter_text(e->out, &v->filter);
        text_printf(e->out, " ");
    }
    int64_t kmax = v != NULL && v->max_key_length >= 0 ? v->max_key_length : d->max_key_length;
    int64_t vmax = v != NULL && v->max_value_size >= 0 ? v->max_value_size : d->max_value_size;
    text_printf(e->out, "action=%s", ACTIONS[v != NULL ? v->action : d->action]);
    if (kmax > 0)
        text_printf(e->out, " max_key_length=%lld", (long long)kmax);
    if (vmax > 0)
        text_printf(e->out, " max_value_size=%lld", (long long)vmax);
    text_printf(e->out, "]%s%s\r\n", rejected ? ": " : "", rejected ? why : "");
}

/* pattern_set_each callback over the validation rules whose keys match. */
static bool validate_each(void *arg, void *value, const struct pattern_capture *caps)
{
    (void)caps;
    validate_line(arg, value);
    return false;
}

/* The validation rules that match the key: as for one of the request's keys,
 * or, when the command takes no keys, the rules without keys. */
static void explain_validate(struct explaining *e)
{
    struct policy *p = e->p;
    int n = request_keys(e->r);
    if (e->ki < 0 && n > 0) {
        text_printf(e->out, "validate:*:none: '%s' does not take the key as a key\r\n", e->name);
        return;
    }
    policy_hold(p); /* the scratch check_judge uses */
    if (e->ki >= 0)
        pattern_set_each(p->vset, e->key, e->klen, validate_each, e);
    for (size_t i = 0; e->ki < 0 && i < p->nkeyless; i++)
        validate_line(e, p->keyless[i]);
    if (e->first == NULL)
        validate_line(e, NULL);
    policy_release(p);
    e->first = NULL;
}

/* ---- cache rules ------------------------------------------------------------- */

/* One cache rule's line (the default rule's when no rule matches). */
static void cache_line(struct explaining *e, const struct crule *c)
{
    const struct policy_cache_rule *r = &c->cfg;
    text_printf(e->out, "cache:%s:%s: ", c->name, r->cache ? "cache" : "bypass");
    if (e->first == NULL)
        text_printf(e->out, "decides%s [", c->keys_text == NULL ? ", no rule matches" : "");
    else
        text_printf(e->out, "shadowed by %s [", e->first);
    if (e->first == NULL)
        e->first = c->name;
    if (c->keys_text != NULL) {
        pattern_text(e->out, "keys", c->keys_text);
        text_printf(e->out, " ");
    }
    if (!r->cache) {
        text_printf(e->out, "cache=false]\r\n");
        return;
    }
    if (r->ttl_max_ms == 0)
        text_printf(e->out, "ttl_ms=%llu",
                    (unsigned long long)(r->ttl_ms != 0 ? r->ttl_ms : e->default_ttl));
    else
        text_printf(e->out, "ttl_min_ms=%llu ttl_max_ms=%llu ttl_window_ms=%llu",
                    (unsigned long long)r->ttl_min_ms, (unsigned long long)r->ttl_max_ms,
                    (unsigned long long)r->ttl_window_ms);
    if (r->admit_reads > 1)
        text_printf(e->out, " admit_reads=%u admit_window_ms=%llu", (unsigned)r->admit_reads,
                    (unsigned long long)r->admit_window_ms);
    text_printf(e->out, " max_entry=%lld compress_over=%lld]\r\n", (long long)r->max_entry,
                (long long)r->compress_over);
}

/* pattern_set_each callback over the cache rules whose keys match. */
static bool cache_each(void *arg, void *value, const struct pattern_capture *caps)
{
    (void)caps;
    cache_line(arg, value);
    return false;
}

static void explain_cache(struct explaining *e)
{
    const struct policy *p = e->p;
    const struct command *cmd = e->r->cmd;
    text_printf(e->out, "cacheable:%d\r\n", cmd != NULL && (cmd->traits & COMMAND_CACHEABLE));
    pattern_set_each(p->cset, e->key, e->klen, cache_each, e);
    if (e->first == NULL)
        cache_line(e, &p->cache_default);
    e->first = NULL;
    size_t n = policy_stamp(p, e->key, e->klen, NULL, 0);
    text_printf(e->out, "stamps:%zu%s\r\n", n,
                n > POLICY_STAMPS_MAX ? " (too many invalidation targets: never cached)" : "");
}

/* ---- invalidation rules ------------------------------------------------------- */

/* t expanded with the captures caps of key, as a word; t's own text when
 * it names a capture caps lacks or memory runs out. */
static void expanded_text(struct explaining *e, const struct pattern *t, const char *text,
                          const struct pattern_capture *caps)
{
    size_t cap = strlen(text) + 2 * PATTERN_MAX_CAPTURES * e->klen + 1;
    char *buf = malloc(cap);
    int n = buf != NULL ? pattern_expand(t, caps, e->key, buf, cap) : PATTERN_ENOSPACE;
    if (n >= 0)
        text_escaped(e->out, buf, (size_t)n);
    else
        text_escaped(e->out, text, strlen(text));
    free(buf);
}

/* pattern_set_each callback over the rules whose `when` matches the key. */
static bool fires_each(void *arg, void *value, const struct pattern_capture *caps)
{
    struct explaining *e = arg;
    const struct irule *r = value;
    if ((e->q.classes & COMMAND_CLASS_WRITE) && !check_filter_match(&r->filter, &e->q)) {
        text_printf(e->out, "invalidate:%s:ignores: its commands do not name '%s' [", r->name,
                    e->name);
    } else {
        text_printf(e->out, "invalidate:%s:fires: drops", r->name);
        for (size_t i = 0; i < r->ndrops; i++) {
            text_printf(e->out, " ");
            expanded_text(e, r->drops[i].pat, r->drops[i].text, caps);
        }
        text_printf(e->out, " [");
    }
    pattern_text(e->out, "when", r->when_text);
    filter_text(e->out, &r->filter);
    text_printf(e->out, "]\r\n");
    return false;
}

/* The rules with a drop that may match the key: a write matching their
 * `when` (with the drop's captures, when it binds them all) drops it. */
static void explain_dropped_by(struct explaining *e)
{
    const struct policy *p = e->p;
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    for (size_t i = 0; i < p->ninval; i++) {
        const struct irule *r = p->inval[i];
        for (size_t k = 0; k < r->ndrops; k++) {
            const struct drop *d = &r->drops[k];
            if (!pattern_match(d->wide, e->key, e->klen, NULL))
                continue;
            text_printf(e->out, "invalidate:%s:dropped_by: a write ", r->name);
            if (pattern_match(d->pat, e->key, e->klen, caps)) {
                text_printf(e->out, "of ");
                expanded_text(e, r->when, r->when_text, caps);
            } else {
                text_printf(e->out, "matching ");
                text_escaped(e->out, r->when_text, strlen(r->when_text));
            }
            text_printf(e->out, " [");
            pattern_text(e->out, "drop", d->text);
            filter_text(e->out, &r->filter);
            text_printf(e->out, "]\r\n");
        }
    }
}

/* One line per enabled module: the hooks it has, which run after the rules
 * and may change what they decide (they are not run here). */
static void explain_modules(struct explaining *e)
{
    for (size_t i = 0; i < e->p->nmods; i++) {
        const struct policy_module *m = e->p->mods[i].mod;
        text_printf(e->out, "module:%s: hooks%s%s%s%s%s\r\n", m->name,
                    m->validate != NULL ? " validate" : "",
                    m->should_cache != NULL ? " should_cache" : "", m->ttl != NULL ? " ttl" : "",
                    m->on_write != NULL ? " on_write" : "", m->on_error != NULL ? " on_error" : "");
    }
}

/* ---- the explanation ----------------------------------------------------------- */

/* The key's place among r's keys, or -1. */
static int key_index(struct request *r, const char *key, size_t klen)
{
    int n = request_keys(r);
    for (int i = 0; i < n; i++) {
        struct resp_view v = r->keys->views[i];
        if (v.len == klen && memcmp(r->buf + v.off, key, klen) == 0)
            return i;
    }
    return -1;
}

void policy_explain(struct policy *p, struct request *r, const char *key, size_t klen,
                    uint64_t default_ttl_ms, struct text *out)
{
    struct explaining e = {p,   r,  key,  klen,           key_index(r, key, klen),
                           {0}, "", NULL, default_ttl_ms, out};
    check_query_request(&e.q, e.name, r);
    text_printf(out, "command:%s\r\nwrites_key:%d\r\n", r->cmd != NULL ? e.name : "unknown",
                check_written(r, e.ki));
    if (!p->built)
        return;
    explain_validate(&e);
    explain_cache(&e);
    if (p->ninval > 0)
        pattern_set_each(p->wset, key, klen, fires_each, &e);
    explain_dropped_by(&e);
    explain_modules(&e);
}
