/* inspect.c - NEARCACHE INSPECT's view of the tier: a key's variants, its
 * rule and whether it would be served. */
#include "proxy/cache/inspect.h"

#include <string.h>

#include "policy/policy.h"
#include "proxy/cache/internal.h"
#include "proxy/lib/text.h"

struct inspecting {
    struct cache *c;
    const char *key;
    size_t klen;
    uint64_t now_ms;
    struct text *out;
};

/* Appends the bulk strings of a stored request after its key ("$2\r\nf1\r\n"),
 * each as a word. Stops at anything that does not frame (it never should:
 * variants are copies of scanned requests). */
static void variant_args(struct text *out, const char *rest, size_t len)
{
    size_t off = 0;
    while (off < len && rest[off] == '$') {
        size_t n = 0, at = off + 1;
        while (at < len && rest[at] >= '0' && rest[at] <= '9' && n <= len)
            n = n * 10 + (size_t)(rest[at++] - '0');
        if (len - at < 4 || n > len - at - 4) /* "\r\n", the payload, "\r\n" */
            return;
        text_printf(out, " ");
        text_escaped(out, rest + at + 2, n);
        off = at + 2 + n + 2;
    }
}

/* tier_variant_fn: one "variant:" line. */
static void inspect_variant(void *arg, const struct tier_variant *v)
{
    struct inspecting *in = arg;
    struct entry_head h;
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    size_t name = 0;
    while (name < v->vlen && v->variant[name] != '\0' && v->variant[name] != '\3')
        name++;
    if (v->reply.len < sizeof(h) || name == v->vlen)
        return; /* not an entry of the cache's */
    memcpy(&h, v->reply.reply, sizeof(h));
    size_t head = sizeof(h) + h.nstamps * sizeof(*stamps);
    bool compressed = (h.flags & ENTRY_COMPRESSED) != 0;
    if (h.nstamps > POLICY_STAMPS_MAX || v->reply.len < head + (compressed ? sizeof(uint32_t) : 0))
        return;
    memcpy(stamps, v->reply.reply + sizeof(h), h.nstamps * sizeof(*stamps));
    const struct policy_cached *rule = policy_cache_rule_at(in->c->policy, h.rule);
    bool current = rule != NULL && rule->fingerprint == h.fingerprint &&
                   policy_stamps_current(in->c->policy, stamps, h.nstamps) &&
                   !cache_swept(in->c->store, h.sweep, in->key, in->klen);
    size_t stored = v->reply.len - head;
    uint32_t raw = (uint32_t)stored;
    if (compressed)
        memcpy(&raw, v->reply.reply + head, sizeof(raw));
    long long ttl = v->expire_at_ms == 0 ? -1 : (long long)(v->expire_at_ms - in->now_ms);
    text_printf(in->out, "variant:resp%d bytes=%u stored=%zu ttl_ms=%lld compressed=%d current=%d ",
                v->variant[name] == '\3' ? 3 : 2, raw, stored, ttl, compressed, current);
    text_escaped(in->out, v->variant, name);
    variant_args(in->out, v->variant + name + 1, v->vlen - name - 1);
    text_printf(in->out, "\r\n");
}

void cache_inspect(struct cache *c, int db, const char *key, size_t klen, uint64_t now_ms,
                   struct text *out)
{
    struct inspecting in = {c, key, klen, now_ms, out};
    size_t at = out->len, held = 0;
    bool writing = false;
    text_printf(out, "cached:0\r\n");
    if (c->tier != NULL) {
        cache_hold_key(c, key, klen);
        held = tier_variants(c->tier, db, key, klen, now_ms, inspect_variant, &in);
        /* Nothing was invalidated after "now": only a write in flight counts. */
        writing = tier_changed_since(c->tier, db, key, klen, tier_seq(c->tier));
        cache_release(c);
    }
    if (held > 0 && !out->oom) /* the variants are listed after it as they are found */
        out->data[at + strlen("cached:")] = '1';
    const struct policy_cached *rule = policy_cache_rule(c->policy, key, klen);
    text_printf(out, "rule:%s cache=%d", rule->name, rule->cache);
    if (rule->cache)
        text_printf(out, " ttl_ms=%llu",
                    (unsigned long long)policy_ttl(c->policy, rule, key, klen, c->ttl_ms, now_ms));
    text_printf(out, "\r\ntracked:%d\r\nwrites_in_flight:%d\r\n", cache_key_tracked(c, key, klen),
                writing);
}
