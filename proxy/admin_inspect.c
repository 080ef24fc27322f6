/* admin_inspect.c - NEARCACHE INSPECT and EXPLAIN: one key's entries in the
 * tier, and the rules that apply to it. */
#include "proxy/admin_inspect.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/coherence.h"
#include "proxy/cache/inspect.h"
#include "proxy/invalidation.h"
#include "proxy/lib/text.h"
#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"
#include "proxy/worker.h"

#define EXPLAIN_PADS_MAX 16 /* empty arguments added to reach a command's arity */

/* The request EXPLAIN describes, as argument views into buf. */
struct explained {
    const char **argv;
    size_t *lens;
    int argc;
};

/* The entry of the command name[0..len) (with sub, its subcommand, when it
 * is a container), or NULL. */
static const struct command *explained_command(const struct worker *w, const char *name, size_t len,
                                               const char *sub, size_t sublen)
{
    const struct command *cmd = command_lookup(w->commands, name, len);
    char full[COMMAND_NAME_MAX + 1];
    if (cmd == NULL || !(cmd->flags & COMMAND_FLAG_CONTAINER) || sub == NULL ||
        len + 1 + sublen > COMMAND_NAME_MAX)
        return cmd;
    memcpy(full, name, len);
    full[len] = '|';
    memcpy(full + len + 1, sub, sublen);
    return command_lookup(w->commands, full, len + 1 + sublen);
}

/* Fills e from EXPLAIN key [command [sub] [args...]] in buf: command (GET
 * when none), a container's subcommand, the key, the other arguments, then
 * empty ones up to the command's arity. -1 when out of memory. */
static int explained_fill(const struct worker *w, const char *buf, const struct resp_request *req,
                          struct explained *e)
{
    struct resp_args a;
    struct resp_view v, key = req->argv[2];
    int64_t given = req->argc - 3; /* command and arguments */
    const char *name = given > 0 ? buf + req->argv[3].off : "get";
    size_t nlen = given > 0 ? req->argv[3].len : 3;
    const struct command *cmd = command_lookup(w->commands, name, nlen);
    bool container = cmd != NULL && (cmd->flags & COMMAND_FLAG_CONTAINER) && given > 1;
    if (container)
        cmd = explained_command(w, name, nlen, buf + req->argv[4].off, req->argv[4].len);
    int64_t least = cmd == NULL ? 0 : cmd->arity > 0 ? cmd->arity : -cmd->arity;
    int64_t argc = (given > 0 ? given : 1) + 1;
    int64_t pads = least > argc ? least - argc : 0;
    pads = pads < EXPLAIN_PADS_MAX ? pads : EXPLAIN_PADS_MAX;
    e->argv = malloc((size_t)(argc + pads) * sizeof(*e->argv));
    e->lens = malloc((size_t)(argc + pads) * sizeof(*e->lens));
    if (e->argv == NULL || e->lens == NULL)
        return -1;
    e->argc = 0;
    resp_args_init(&a, buf, req);
    resp_args_get(&a, container ? 4 : 3);
    e->argv[e->argc] = name;
    e->lens[e->argc++] = nlen;
    if (container) {
        e->argv[e->argc] = buf + a.view.off;
        e->lens[e->argc++] = a.view.len;
    }
    e->argv[e->argc] = buf + key.off;
    e->lens[e->argc++] = key.len;
    while (given > 0 && resp_args_next(&a, &v)) {
        e->argv[e->argc] = buf + v.off;
        e->lens[e->argc++] = v.len;
    }
    for (; pads > 0; pads--) {
        e->argv[e->argc] = "";
        e->lens[e->argc++] = 0;
    }
    return 0;
}

/* EXPLAIN's lines: the request explained, then policy_explain's on it. */
static void explain_lines(struct worker *w, const char *buf, const struct resp_request *req,
                          struct text *out)
{
    struct explained e = {0};
    struct resp_request frame;
    struct resp_scanner scan;
    struct request_keys scratch = {0};
    struct request r;
    char *f = NULL;
    if (explained_fill(w, buf, req, &e) == 0) {
        size_t len = resp_write_command(NULL, 0, e.argc, e.argv, e.lens);
        if ((f = malloc(len)) != NULL)
            resp_write_command(f, len, e.argc, e.argv, e.lens);
        resp_scanner_reset(&scan);
        if (f == NULL || resp_scan_request(&scan, &RESP_LIMITS_DEFAULT, f, len, &frame) != RESP_OK)
            out->oom = true; /* the frame is one EXPLAIN's arguments: only memory can fail */
    } else {
        out->oom = true;
    }
    text_printf(out, "request:");
    for (int i = 0; i < e.argc && !out->oom; i++) {
        if (i > 0)
            text_printf(out, " ");
        text_escaped(out, e.argv[i], e.lens[i]);
        if (e.lens[i] == 0)
            text_printf(out, "\"\"");
    }
    text_printf(out, "\r\n");
    if (!out->oom) {
        struct resp_view key = req->argv[2];
        request_init(&r, w->commands, f, &frame, &scratch);
        policy_explain(w->policy, &r, buf + key.off, key.len, (uint64_t)w->cfg->cache_ttl_ms, out);
        request_keys_free(&scratch);
    }
    free(f);
    free(e.argv);
    free(e.lens);
}

char *admin_inspect(struct worker *w, admin_command_e cmd, const struct lane *lane, const char *buf,
                    const struct resp_request *req, size_t *len)
{
    struct text out = {0};
    if (cmd == ADMIN_INSPECT) {
        struct resp_view key = req->argv[2];
        text_printf(&out, "db:%d\r\n", lane->db);
        cache_inspect(w->cache, lane->db, buf + key.off, key.len, worker_now_ms(w), &out);
        text_printf(&out, "tracking:%s\r\n",
                    coherence_state_name(invalidation_state(w->inv)->state));
    } else {
        explain_lines(w, buf, req, &out);
    }
    char *reply = out.oom ? NULL : malloc(RESP_HEADER_MAX + out.len + 2);
    if (reply != NULL)
        *len = resp_write_bulk(reply, RESP_HEADER_MAX + out.len + 2, out.data, out.len);
    text_free(&out);
    return reply;
}
