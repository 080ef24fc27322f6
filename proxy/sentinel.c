/* sentinel.c - follows the primary through Redis Sentinel.
 *
 * Each Sentinel (a node) has up to two hiredis async contexts: sub,
 * subscribed to +switch-master, and cmd, which asks for the primary's
 * address; only the current node is asked. A context that fails or closes is
 * forgotten in its callbacks (hiredis frees it); one we give up on is freed
 * from the timer with its data cleared first, so that the callbacks hiredis
 * runs while freeing it are ignored.
 */
#include "proxy/sentinel.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/ctl.h"
#include "proxy/endpoint.h"
#include "proxy/hiredis_libev.h"
#include "proxy/lib/log.h"
#include "proxy/tunnel.h"

#define SENTINEL_CHECK_S 1.0 /* the primary is asked for this often */

struct sentinel;

struct node {
    struct sentinel *s;
    struct endpoint ep;
    struct tunnel *tunnel; /* with TLS: how hiredis reaches it */
    redisAsyncContext *sub;
    redisAsyncContext *cmd;
    bool sub_failed; /* refused: dropped at the next tick */
    bool asked;      /* cmd has a question unanswered */
};

struct sentinel {
    struct ev_loop *loop;
    const struct config *cfg;
    struct endpoint *primary;

    struct node *nodes;
    size_t n;
    size_t cur; /* the node asked */
    ev_timer tick;
};

/* Takes ip and port a Sentinel named as the primary's address. */
static void sentinel_learned(struct sentinel *s, const char *ip, const char *port,
                             const struct node *from)
{
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN + 16];
    struct net_addr addr;
    const char *why;
    bool v6 = strchr(ip, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, bin) != 1) {
        log_limited(LOG_ERROR, "sentinel_bad_answer",
                    "sentinel {sentinel=%s}: primary {address=%.64s} is not an IP address "
                    "(set resolve-hostnames no)",
                    from->ep.shown, ip);
        return;
    }
    snprintf(text, sizeof(text), v6 ? "[%s]:%s" : "%s:%s", ip, port);
    if (net_addr_parse(text, &addr, &why) < 0)
        return;
    endpoint_set(s->primary, &addr,
                 s->primary->addr.len > 0 ? "upstream_failover" : "upstream_primary",
                 from->ep.shown);
}

/* The reply to SENTINEL GET-MASTER-ADDR-BY-NAME: [ip, port], or nil. */
static bool sentinel_answer(struct sentinel *s, const redisReply *r, const struct node *from)
{
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        sentinel_learned(s, r->element[0]->str, r->element[1]->str, from);
        return true;
    }
    log_limited(LOG_WARN, "sentinel_no_primary",
                "sentinel {sentinel=%s}: no primary for {name=%s}: {reason=%.100s}", from->ep.shown,
                s->cfg->master_name,
                r == NULL                      ? "no reply"
                : r->type == REDIS_REPLY_ERROR ? r->str
                                               : "unknown master name");
    return false;
}

static struct node *node_of(const redisAsyncContext *ac)
{
    struct node *nd = ac->data;
    return nd != NULL && (nd->sub == ac || nd->cmd == ac) ? nd : NULL;
}

/* A context of the node is gone (hiredis frees it): forget it. */
static void node_forget(const redisAsyncContext *ac)
{
    struct node *nd = node_of(ac);
    if (nd == NULL)
        return;
    if (nd->sub == ac) {
        log_limited(LOG_WARN, "sentinel_lost",
                    "sentinel {sentinel=%s}: connection lost: {reason=%s}", nd->ep.shown,
                    ac->errstr[0] != '\0' ? ac->errstr : "closed");
        nd->sub = NULL;
    } else {
        nd->cmd = NULL;
        nd->asked = false;
        nd->s->cur = (nd->s->cur + 1) % nd->s->n; /* ask the next one */
    }
}

static void node_on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        node_forget(ac);
}

static void node_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    node_forget(ac);
}

static void node_drop(redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;
    if (ac == NULL)
        return;
    *slot = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void node_on_answer(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct node *nd = node_of(ac);
    if (nd == NULL || reply == NULL)
        return;
    nd->asked = false;
    if (!sentinel_answer(nd->s, reply, nd))
        nd->s->cur = (nd->s->cur + 1) % nd->s->n;
}

/* A message on +switch-master: "<name> <old ip> <old port> <new ip> <new port>". */
static void node_on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    const redisReply *r = reply;
    struct node *nd = node_of(ac);
    char name[256], old_ip[64], old_port[8], ip[64], port[8];
    if (nd == NULL || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        log_limited(LOG_WARN, "sentinel_refused", "sentinel {sentinel=%s}: {reason=%.100s}",
                    nd->ep.shown, r->str);
        nd->sub_failed = true;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str != NULL ? r->element[0]->str : "", "message") != 0 ||
        sscanf(r->element[2]->str, "%255s %63s %7s %63s %7s", name, old_ip, old_port, ip, port) !=
            5 ||
        strcmp(name, nd->s->cfg->master_name) != 0)
        return;
    sentinel_learned(nd->s, ip, port, nd);
}

static void node_on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    const redisReply *r = reply;
    struct node *nd = node_of(ac);
    if (nd != NULL && r != NULL && r->type == REDIS_REPLY_ERROR)
        log_limited(LOG_ERROR, "sentinel_unreachable",
                    "sentinel {sentinel=%s}: AUTH refused: {reason=%.100s} (check "
                    "upstream.sentinel_password)",
                    nd->ep.shown, r->str);
}

/* Opens a context to the node, AUTH queued; NULL when it cannot. */
static redisAsyncContext *node_connect(struct node *nd)
{
    const struct config *cfg = nd->s->cfg;
    redisAsyncContext *ac =
        ctl_async_connect(nd->tunnel != NULL ? tunnel_addr(nd->tunnel) : &nd->ep.addr);
    if (ac == NULL || ac->err != 0 || redisLibevAttach(nd->s->loop, ac) != REDIS_OK) {
        if (ac != NULL)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = nd;
    redisAsyncSetConnectCallback(ac, node_on_connect);
    redisAsyncSetDisconnectCallback(ac, node_on_disconnect);
    if (cfg->sentinel_password != NULL && cfg->sentinel_username != NULL)
        redisAsyncCommand(ac, node_on_auth, NULL, "AUTH %s %s", cfg->sentinel_username,
                          cfg->sentinel_password);
    else if (cfg->sentinel_password != NULL)
        redisAsyncCommand(ac, node_on_auth, NULL, "AUTH %s", cfg->sentinel_password);
    return ac;
}

/* Every second: subscriptions made again where lost, the primary asked. */
static void sentinel_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sentinel *s = w->data;
    for (size_t i = 0; i < s->n; i++) {
        struct node *nd = &s->nodes[i];
        if (nd->sub_failed)
            node_drop(&nd->sub);
        nd->sub_failed = false;
        if (nd->sub == NULL && (nd->sub = node_connect(nd)) != NULL)
            redisAsyncCommand(nd->sub, node_on_message, NULL, "SUBSCRIBE +switch-master");
    }
    struct node *nd = &s->nodes[s->cur];
    if (nd->asked) { /* no answer in a whole tick: ask the next one */
        node_drop(&nd->cmd);
        nd->asked = false;
        s->cur = (s->cur + 1) % s->n;
        nd = &s->nodes[s->cur];
    }
    if (nd->cmd == NULL)
        nd->cmd = node_connect(nd);
    if (nd->cmd != NULL)
        nd->asked =
            redisAsyncCommand(nd->cmd, node_on_answer, NULL, "SENTINEL GET-MASTER-ADDR-BY-NAME %s",
                              s->cfg->master_name) == REDIS_OK;
}

/* Asks the Sentinels in turn, waiting for each, until one names the primary. */
static void sentinel_discover(struct sentinel *s, SSL_CTX *tls)
{
    const struct config *cfg = s->cfg;
    const char *argv[] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg->master_name};
    for (size_t i = 0; i < s->n && s->primary->addr.len == 0; i++) {
        struct node *nd = &s->nodes[i];
        char err[256];
        const struct ctl_target to = {&nd->ep.addr,           tls,
                                      nd->ep.server_name,     cfg->sentinel_username,
                                      cfg->sentinel_password, cfg->connect_timeout_ms};
        redisReply *r = ctl_call(&to, 3, argv, err, sizeof(err));
        if (r == NULL)
            log_warn("sentinel_unreachable", "sentinel {sentinel=%s}: {reason=%s}", nd->ep.shown,
                     err);
        else if (sentinel_answer(s, r, nd))
            s->cur = i;
        freeReplyObject(r);
    }
}

/* The nodes of upstream.sentinels, each resolved now. */
static int sentinel_nodes(struct sentinel *s, SSL_CTX *const *tls, char *err, size_t errlen)
{
    char *items;
    if (config_list_split(s->cfg->sentinels, &items, &s->n) < 0 ||
        (s->nodes = calloc(s->n, sizeof(*s->nodes))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *item = items;
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++, item += strlen(item) + 1) {
        struct node *nd = &s->nodes[i];
        nd->s = s;
        rc = endpoint_init(&nd->ep, s->loop, item, s->cfg->upstream_tls_server_name, err, errlen);
        if (rc == 0 && *tls != NULL &&
            (nd->tunnel = tunnel_create(s->loop, &nd->ep, tls, err, errlen)) == NULL)
            rc = -1;
    }
    free(items);
    return rc;
}

struct sentinel *sentinel_create(struct ev_loop *loop, const struct config *cfg,
                                 struct endpoint *primary, SSL_CTX *const *tls, char *err,
                                 size_t errlen)
{
    struct sentinel *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *s = (struct sentinel){.loop = loop, .cfg = cfg, .primary = primary};
    if (sentinel_nodes(s, tls, err, errlen) < 0) {
        sentinel_destroy(&s);
        return NULL;
    }
    sentinel_discover(s, *tls);
    ev_timer_init(&s->tick, sentinel_on_tick, 0., SENTINEL_CHECK_S);
    s->tick.data = s;
    ev_timer_start(loop, &s->tick);
    return s;
}

void sentinel_destroy(struct sentinel **sp)
{
    struct sentinel *s = *sp;
    if (s == NULL)
        return;
    ev_timer_stop(s->loop, &s->tick);
    for (size_t i = 0; s->nodes != NULL && i < s->n; i++) {
        node_drop(&s->nodes[i].sub);
        node_drop(&s->nodes[i].cmd);
        tunnel_destroy(&s->nodes[i].tunnel);
        endpoint_deinit(&s->nodes[i].ep);
    }
    free(s->nodes);
    free(s);
    *sp = NULL;
}
