/* observe.c - sampling requests into each worker's hot-key summary. */
#include "proxy/observe.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/lib/text.h"
#include "proxy/proto/request.h"
#include "proxy/proto/resp_write.h"
#include "proxy/worker.h"

#define OBSERVE_KEYS_MAX 16 /* keys of one sampled request counted */

int observe_setup(struct worker *w)
{
    struct observe *o = &w->observe;
    o->rate = (uint32_t)w->cfg->hotkeys_sample;
    o->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(w->id + 1);
    if ((o->keys = hotkeys_create(HOTKEYS_SIZE)) == NULL)
        return -1;
    o->skip = observe_gap(&o->rng, o->rate);
    return 0;
}

void observe_teardown(struct worker *w)
{
    hotkeys_destroy(&w->observe.keys);
}

void observe_reload(struct worker *w)
{
    struct observe *o = &w->observe;
    if (o->rate == (uint32_t)w->cfg->hotkeys_sample)
        return;
    o->rate = (uint32_t)w->cfg->hotkeys_sample;
    hotkeys_clear(o->keys);
    o->sampled = 0;
    o->skip = observe_gap(&o->rng, o->rate);
}

void observe_sample(struct worker *w, struct request *rq, bool hit)
{
    struct observe *o = &w->observe;
    o->skip = observe_gap(&o->rng, o->rate);
    int n = o->rate > 0 ? request_keys(rq) : 0; /* rate 0: off, the gap only ran out */
    if (n <= 0)
        return;
    o->sampled++;
    for (int i = 0; i < n && i < OBSERVE_KEYS_MAX; i++) {
        struct resp_view k = rq->keys->views[i];
        bool write = request_key_written(rq->keys->flags[i], rq->cmd->classes);
        hotkeys_count(o->keys, rq->buf + k.off, k.len, !write, write, !write && hit);
        if (write)
            policy_note_writes(w->policy, rq->buf + k.off, k.len, o->rate);
    }
}

/* The *n (at most) hottest keys of every worker, counts scaled to requests,
 * into out[0..*n); *rate is hotkeys.sample. Stops the other workers while it
 * reads. False when out of memory. */
static bool observe_top(struct worker *w, struct hotkeys_entry *out, size_t *np, uint32_t *rate)
{
    *rate = (uint32_t)w->cfg->hotkeys_sample;
    struct hotkeys *sum = hotkeys_create((size_t)w->nall * HOTKEYS_SIZE);
    if (sum == NULL)
        return false;
    worker_stop_others(w);
    for (int i = 0; i < w->nall; i++)
        if (!worker_gone(w, i) && w->all[i]->observe.keys != NULL)
            hotkeys_merge(sum, w->all[i]->observe.keys);
    worker_resume(w);
    size_t n = hotkeys_top(sum, out, *np);
    hotkeys_destroy(&sum);
    *np = n;
    for (size_t i = 0; i < n; i++) {
        out[i].count *= *rate;
        out[i].reads *= *rate;
        out[i].writes *= *rate;
        out[i].hits *= *rate;
        out[i].error *= *rate;
    }
    return true;
}

/* The shown bytes of e's key. */
static size_t shown_len(const struct hotkeys_entry *e)
{
    return e->klen < HOTKEYS_KEY_MAX ? e->klen : HOTKEYS_KEY_MAX;
}

char *observe_hotkeys_reply(struct worker *w, size_t n, size_t *len)
{
    uint32_t rate;
    n = n < OBSERVE_TOP_MAX ? n : OBSERVE_TOP_MAX;
    struct hotkeys_entry *top = malloc((n > 0 ? n : 1) * sizeof(*top));
    if (top == NULL)
        return NULL;
    if (!observe_top(w, top, &n, &rate)) {
        free(top);
        return NULL;
    }
    size_t cap = RESP_HEADER_MAX + n * (6 * RESP_HEADER_MAX + HOTKEYS_KEY_MAX + 2);
    char *out = malloc(cap);
    if (out != NULL) {
        size_t at = resp_write_header(out, cap, '*', (int64_t)n);
        for (size_t i = 0; i < n; i++) {
            const struct hotkeys_entry *e = &top[i];
            at += resp_write_header(out + at, cap - at, '*', 5);
            at += resp_write_bulk(out + at, cap - at, e->key, shown_len(e));
            const uint64_t v[] = {e->reads, e->writes, e->hits, e->error};
            for (size_t j = 0; j < sizeof(v) / sizeof(*v); j++)
                at += resp_write_header(out + at, cap - at, ':', (int64_t)v[j]);
        }
        *len = at;
    }
    free(top);
    return out;
}

/* key's bytes as text (text.h). */
static json_t *key_text(const char *key, size_t len)
{
    char *s = text_quote(key, len);
    json_t *j = s != NULL ? json_string(s) : NULL;
    free(s);
    return j;
}

char *observe_hotkeys_json(struct worker *w, size_t n)
{
    uint32_t rate;
    n = n < OBSERVE_TOP_MAX ? n : OBSERVE_TOP_MAX;
    struct hotkeys_entry *top = malloc((n > 0 ? n : 1) * sizeof(*top));
    json_t *keys = json_array(), *root = NULL;
    char *text = NULL;
    if (top == NULL || keys == NULL || !observe_top(w, top, &n, &rate))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct hotkeys_entry *e = &top[i];
        json_t *o = json_pack("{s:o?,s:I,s:I,s:I,s:I}", "key", key_text(e->key, shown_len(e)),
                              "reads", (json_int_t)e->reads, "writes", (json_int_t)e->writes,
                              "hits", (json_int_t)e->hits, "error", (json_int_t)e->error);
        if (o == NULL || json_array_append_new(keys, o) < 0)
            goto out;
    }
    root = json_pack("{s:I,s:O}", "sample", (json_int_t)rate, "keys", keys);
    if (root != NULL)
        text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
out:
    json_decref(root);
    json_decref(keys);
    free(top);
    return text;
}
