/* tier_util.h - helpers shared by the local tier's tests (test_tier:
 * unit/proxy/cache/tier.c and tier_flush.c).
 */
#ifndef NEARCACHE_TESTS_UNIT_TIER_UTIL_H
#define NEARCACHE_TESTS_UNIT_TIER_UTIL_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cache/tier.h"

#define MB         ((size_t)1 << 20)
#define KEYBUF     64
#define REPLY_SIZE 100

static inline int put_at(struct tier *t, int db, const char *key, const char *variant,
                         const char *reply, uint64_t expire_at_ms, uint64_t now_ms)
{
    return tier_put(t, db, key, strlen(key), variant, strlen(variant), reply, strlen(reply),
                    expire_at_ms, tier_seq(t), now_ms);
}

static inline int put(struct tier *t, int db, const char *key, const char *variant,
                      const char *reply)
{
    return put_at(t, db, key, variant, reply, 0, 0);
}

/* Returns the cached reply as a NUL-terminated static copy, or NULL. */
static inline const char *get_at(struct tier *t, int db, const char *key, const char *variant,
                                 uint64_t now_ms)
{
    static char buf[4096];
    struct tier_view v;
    if (!tier_get(t, db, key, strlen(key), variant, strlen(variant), now_ms, &v))
        return NULL;
    cr_assert_lt(v.len, sizeof(buf));
    memcpy(buf, v.reply, v.len);
    buf[v.len] = '\0';
    return buf;
}

static inline const char *get(struct tier *t, int db, const char *key, const char *variant)
{
    return get_at(t, db, key, variant, 0);
}

/* A miss then a fill of a fixed-size reply, as the proxy does for a read. */
static inline int request(struct tier *t, const char *key)
{
    char reply[REPLY_SIZE + 1];
    memset(reply, 'x', REPLY_SIZE);
    reply[REPLY_SIZE] = '\0';
    if (get(t, 0, key, "GET") != NULL)
        return 0;
    return put(t, 0, key, "GET", reply);
}

static inline const char *key_of(char *buf, const char *prefix, int i)
{
    snprintf(buf, KEYBUF, "%s:%d", prefix, i);
    return buf;
}

static inline size_t entry_bytes(const struct tier *t)
{
    return tier_stats(t)->bytes - tier_stats(t)->table_bytes;
}

/* tier_variant_fn that counts the calls. */
static inline void count_variant(void *arg, const struct tier_variant *v)
{
    (void)v;
    ++*(int *)arg;
}

/* What tier_variants reported: each variant with its reply and expiry. */
struct listed {
    int n;
    char text[8][64];
};

/* tier_variant_fn: "<variant, NULs as '|'>=<reply>@<expiry>" per call. */
static inline void list_variant(void *arg, const struct tier_variant *v)
{
    struct listed *l = arg;
    cr_assert_lt(l->n, 8);
    char *p = l->text[l->n++];
    for (size_t i = 0; i < v->vlen; i++)
        *p++ = v->variant[i] == '\0' ? '|' : v->variant[i];
    snprintf(p, 32, "=%.*s@%llu", (int)v->reply.len, v->reply.reply,
             (unsigned long long)v->expire_at_ms);
}

static inline bool listed_has(const struct listed *l, const char *text)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->text[i], text) == 0)
            return true;
    return false;
}

#endif
