/* policy_util.h - helpers shared by the rule engine's unit tests
 * (tests/unit/policy.c, check.c and invalidate.c): requests checked as the
 * proxy does, and rules written as compact tables.
 *
 * Requests are built from inline lines (resp_inline_encode) or, for binary
 * and very large ones, as multibulk frames, and looked up in the built-in
 * command table. A suite using check or check_frame has
 * policy_test_setup/policy_test_teardown as its .init/.fini.
 */
#ifndef NEARCACHE_TESTS_POLICY_UTIL_H
#define NEARCACHE_TESTS_POLICY_UTIL_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/unit/frame.h"
#include "tests/unit/leaks.h"

#define LEN(a)  (sizeof(a) / sizeof((a)[0]))
#define INHERIT (-1) /* a rule limit taken from the defaults */

static struct command_table *keys;

static inline void policy_test_setup(void)
{
    keys = command_table_create();
    cr_assert(keys != NULL && command_table_add_builtin(keys) > 0);
}

static inline void policy_test_teardown(void)
{
    command_table_destroy(&keys);
    check_leaks();
}

/* ---- requests -------------------------------------------------------------- */

/* Checks a request; returns the reply ("" when forwarded) in a static buffer. */
static inline const char *check_frame(struct policy *p, struct frame *f)
{
    static char out[POLICY_REPLY_MAX + 1];
    char reply[POLICY_REPLY_MAX];
    struct request_keys scratch = {0};
    struct request r;
    request_init(&r, keys, f->buf, &f->req, &scratch);
    size_t n = policy_check(p, &r, reply);
    request_keys_free(&scratch);

    cr_assert_leq(n, POLICY_REPLY_MAX);
    memcpy(out, reply, n);
    out[n] = '\0';
    return out;
}

static inline const char *check(struct policy *p, const char *line)
{
    struct frame f = frame_of(line);
    const char *out = check_frame(p, &f);

    free(f.buf);
    return out;
}

struct check_case {
    const char *line;
    const char *reply; /* "" when forwarded */
};

static inline void run_cases(struct policy *p, const struct check_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(check(p, cases[i].line), cases[i].reply, "%s", cases[i].line);
}

/* ---- rules ----------------------------------------------------------------- */

/* A validation rule in a table: commands space-separated, NULL for all. */
struct vspec {
    const char *name;
    const char *keys;
    const char *commands;
    policy_action_e action;
    int64_t max_key_length;
    int64_t max_value_size;
    const char *reason;
};

/* Splits a space-separated list into words (in buf) pointed to by out. */
static inline size_t split(const char *list, char *buf, size_t len, const char **out, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    if (list == NULL)
        return 0;
    snprintf(buf, len, "%s", list);
    for (char *w = strtok_r(buf, " ", &save); w != NULL && n < max; w = strtok_r(NULL, " ", &save))
        out[n++] = w;
    return n;
}

static inline int add_validate(struct policy *p, const struct vspec *v, char *err, size_t errlen)
{
    char buf[256];
    const char *cmds[16];
    struct policy_validate_rule r = {v->name,           v->keys,           cmds,     0, v->action,
                                     v->max_key_length, v->max_value_size, v->reason};

    r.ncommands = split(v->commands, buf, sizeof(buf), cmds, LEN(cmds));
    return policy_add_validate(p, &r, err, errlen);
}

static inline struct policy *validate_policy(const struct vspec *rules, size_t n,
                                             const struct policy_defaults *d)
{
    struct policy *p = policy_create();
    char err[256] = "";

    cr_assert_not_null(p);
    if (d != NULL)
        cr_assert_eq(policy_set_defaults(p, d, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(add_validate(p, &rules[i], err, sizeof(err)), 0, "%s: %s", rules[i].name, err);
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);
    return p;
}
/* An invalidation rule in a table. */
struct ispec {
    const char *name;
    const char *when;
    const char *commands; /* space-separated, NULL: every write */
    const char *drops;    /* space-separated */
};

static inline int add_invalidate(struct policy *p, const struct ispec *v, char *err, size_t errlen)
{
    char cbuf[256], dbuf[256];
    const char *cmds[16], *drops[16];
    struct policy_invalidate_rule r = {v->name, v->when, cmds, 0, drops, 0};

    r.ncommands = split(v->commands, cbuf, sizeof(cbuf), cmds, LEN(cmds));
    r.ndrop = split(v->drops, dbuf, sizeof(dbuf), drops, LEN(drops));
    return policy_add_invalidate(p, &r, err, errlen);
}

static inline struct policy *inval_policy(const struct ispec *rules, size_t n, struct policy *prev)
{
    struct policy *p = policy_create();
    char err[256] = "";

    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(add_invalidate(p, &rules[i], err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_build(p, prev, err, sizeof(err)), 0, "%s", err);
    policy_take_over(p, prev);
    return p;
}

static inline const struct policy_rule_stats *stats_of(const struct policy *p, policy_kind_e kind,
                                                       const char *name)
{
    for (size_t i = 0; i < policy_rule_count(p); i++) {
        const char *n;
        policy_kind_e k;
        const struct policy_rule_stats *s = policy_rule(p, i, &n, &k);
        if (k == kind && strcmp(n, name) == 0)
            return s;
    }
    cr_assert_fail("no rule %s", name);
    return NULL;
}

/* ---- entries --------------------------------------------------------------- */

struct entry {
    struct policy_stamp s[POLICY_STAMPS_MAX];
    size_t n;
};

static inline struct entry stamp_key(const struct policy *p, const char *key, size_t klen)
{
    struct entry e;

    e.n = policy_stamp(p, key, klen, e.s, LEN(e.s));
    cr_assert_leq(e.n, POLICY_STAMPS_MAX, "%.*s", (int)klen, key);
    return e;
}

static inline struct entry stamp(const struct policy *p, const char *key)
{
    return stamp_key(p, key, strlen(key));
}

static inline bool current(const struct policy *p, const struct entry *e)
{
    return policy_stamps_current(p, e->s, e->n);
}

static inline size_t write_key(struct policy *p, const char *key, const char *command)
{
    return policy_on_write(p, key, strlen(key), command, 0);
}

#endif
