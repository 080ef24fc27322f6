/* client_own.c - names, databases, protocols and authentication. */
#include "proxy/client_own.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/users.h"
#include "proxy/admin.h"
#include "proxy/admin_inspect.h"
#include "proxy/exchange.h"
#include "proxy/identity.h"
#include "proxy/lib/log.h"
#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"
#include "proxy/req.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

static const char ERR_NAME[] =
    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n";

void client_moved(struct client *c, struct lane lane)
{
    int i = pool_lane(&c->w->pool, lane);
    if (i >= 0) {
        session_move(&c->session, &c->w->pool, i);
        return;
    }
    log_limited(
        LOG_WARN, "client_no_lane",
        "client: database {db=%d}, RESP{resp=%d}: no lane left ({lanes=%d} in use), closing",
        lane.db, lane.resp, POOL_LANES_MAX);
    c->last_write = true;
}

bool client_gated(struct client *c, struct request *rq)
{
    static const char NOAUTH[] = "-NOAUTH Authentication required.\r\n";
    const struct command *cmd = rq->cmd;
    struct identity *id = &c->id;
    char reply[USERS_REPLY_MAX];
    identity_refresh(id, c->w->cfg, c->w->generation);
    id->authed |= !config_client_auth(c->w->cfg); /* a reload turned authentication off */
    /* Redis runs these before and whatever the user's permissions. A command
     * unknown to the table is unknown to Redis (the table is Redis's): its
     * error comes first. */
    struct resp_view name = rq->frame->argv[0];
    if (rq->kind == COMMAND_QUIT || rq->kind == COMMAND_RESET ||
        (cmd != NULL && (cmd->own == COMMAND_OWN_AUTH || cmd->own == COMMAND_OWN_HELLO)) ||
        (cmd == NULL && command_lookup(c->w->commands, rq->buf + name.off, name.len) == NULL))
        return false;
    if (!id->authed) {
        int64_t argc = rq->frame->argc;
        if (cmd != NULL && (cmd->arity > 0 ? argc != cmd->arity : argc < -cmd->arity))
            return false; /* Redis's arity error comes first */
        client_local(c, NOAUTH, sizeof(NOAUTH) - 1);
        return true;
    }
    size_t n = id->user != NULL ? user_check(id->user, rq, reply) : 0;
    if (n == 0)
        return false;
    c->session.multi_dirty |= (c->session.held & SESSION_MULTI) != 0;
    client_local(c, reply, n);
    return true;
}

/* AUTH or HELLO's AUTH with client authentication on: +OK (given by the
 * caller) or Redis's WRONGPASS. False when answered with the error. */
static bool client_login(struct client *c, const char *buf, const struct resp_view *user,
                         struct resp_view pass)
{
    static const char WRONGPASS[] =
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    int rc = identity_login(&c->id, c->w->cfg, c->w->generation, buf, user, pass);
    if (rc < 0)
        client_close(c);
    else if (rc == 0)
        client_local(c, WRONGPASS, sizeof(WRONGPASS) - 1);
    return rc > 0;
}

/* The lane a client on its shared connection is in. */
static const struct lane *client_lane(const struct client *c)
{
    return &c->w->pool.lanes[c->session.lane];
}

/* Sends bytes of the proxy's making on up as the client's request, whose
 * reply goes to the client in order. move (may be NULL): it is a SELECT or a
 * HELLO, and a reply other than an error moves the client to that lane. */
static void client_send_own(struct client *c, struct upstream *up, const char *data, size_t len,
                            const struct lane *move)
{
    struct req *r = req_create(c);
    struct exchange *x = r != NULL ? client_exchange(r) : NULL;
    if (x == NULL) {
        client_close(c);
        return;
    }
    if (move != NULL)
        r->move = *move;
    c->session.cur = up;
    upstream_send(up, data, len, x);
}

/* SELECT db of a client on its shared connection: of its own database,
 * answered here; of another, sent to Redis on the shared connection right
 * before a SELECT back (so that no other request runs in between), and on
 * +OK the client moves to that database's lane (client_on_reply). Redis
 * answers an invalid db exactly as it would. */
static client_own_e client_select(struct client *c, const struct request *rq)
{
    struct session *s = &c->session;
    struct resp_view v = rq->frame->argv[1];
    int64_t db = 0;
    bool valid = resp_parse_ll(rq->buf + v.off, v.len, &db) && db >= 0 && db <= INT32_MAX;
    if (s->barrier && s->inflight > 0)
        return CLIENT_OWN_STALL; /* where the client is depends on the answer in flight */
    if (valid && db == client_lane(c)->db) {
        client_local(c, "+OK\r\n", 5);
        return CLIENT_OWN_DONE;
    }
    bool oom;
    struct upstream *up = session_route(s, COMMAND_SHARED, &c->w->pool, s->lane, &c->owner, &oom);
    if (up == NULL)
        return CLIENT_OWN_STALL;
    if (!upstream_usable(up)) {
        client_unavailable(c);
        return CLIENT_OWN_DONE;
    }
    char back[64];
    int n = snprintf(back, sizeof(back), "*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n",
                     snprintf(NULL, 0, "%d", up->lane.db), up->lane.db);
    struct lane to = {(int)db, client_lane(c)->resp};
    client_send_own(c, up, rq->buf, rq->frame->len, valid ? &to : NULL);
    if (c->closing)
        return CLIENT_OWN_DONE;
    struct exchange *x = exchange_create(exchange_discard, NULL);
    if (x == NULL) {
        client_close(c);
        return CLIENT_OWN_DONE;
    }
    upstream_send(up, back, (size_t)n, x);
    s->barrier = true;
    return CLIENT_OWN_DONE;
}

/* HELLO protover [AUTH user pass] [SETNAME name] of a client on its shared
 * connection, when the proxy can answer for the credentials: the name is
 * kept, the client moves to the lane of its database in that protocol, and
 * a plain HELLO protover goes to Redis there for the reply (a no-op on a
 * connection that speaks it already). */
static client_own_e client_hello(struct client *c, const struct request *rq)
{
    static const char NOAUTH[] =
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
        "the RESP protocol version at the same time\r\n";
    static const char *const HELLO[] = {"", "", "*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n",
                                        "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"};
    struct hello h;
    struct session *s = &c->session;
    bool ours = config_client_auth(c->w->cfg);
    if (rq->frame->argc == 1 && !c->id.authed) {
        client_local(c, NOAUTH, sizeof(NOAUTH) - 1);
        return CLIENT_OWN_DONE;
    }
    if (!hello_parse(rq->buf, rq->frame, &h) ||
        (h.auth && !ours && !identity_upstream_creds(c->w->cfg, rq->buf, &h.user, h.pass)))
        return CLIENT_OWN_FORWARD;
    if (s->inflight > 0)
        return CLIENT_OWN_STALL; /* its reply comes on the new lane's connection */
    if (ours && h.auth && !client_login(c, rq->buf, &h.user, h.pass))
        return CLIENT_OWN_DONE;
    if (!c->id.authed) {
        client_local(c, NOAUTH, sizeof(NOAUTH) - 1);
        return CLIENT_OWN_DONE;
    }
    struct lane to = {client_lane(c)->db, h.resp};
    int lane = pool_lane(&c->w->pool, to);
    if (lane < 0)
        return CLIENT_OWN_FORWARD;
    if (h.setname && identity_set_name(&c->id, rq->buf + h.name.off, h.name.len) < 0) {
        client_close(c);
        return CLIENT_OWN_DONE;
    }
    /* Redis answers on a connection of the lane (a no-op HELLO there); the
     * client moves once it has (a Redis without HELLO 3 says so instead). */
    client_send_own(c, pool_home(&c->w->pool, lane), HELLO[h.resp], strlen(HELLO[h.resp]), &to);
    s->barrier = true;
    return CLIENT_OWN_DONE;
}

client_own_e client_own(struct client *c, const struct request *rq)
{
    const struct resp_request *f = rq->frame;
    const struct session *s = &c->session;
    bool shared = s->state == SESSION_SHARED;
    char reply[256];
    switch (rq->cmd->own) {
    case COMMAND_OWN_SELECT:
        return shared && f->argc == 2 ? client_select(c, rq) : CLIENT_OWN_FORWARD;
    case COMMAND_OWN_HELLO:
        return shared ? client_hello(c, rq) : CLIENT_OWN_FORWARD;
    case COMMAND_OWN_AUTH:
        if (config_client_auth(c->w->cfg) && s->state != SESSION_STREAM &&
            !(s->held & SESSION_MULTI)) {
            static const char ARITY[] = "-ERR wrong number of arguments for 'auth' command\r\n";
            static const char SYNTAX[] = "-ERR syntax error\r\n";
            if (f->argc < 2)
                client_local(c, ARITY, sizeof(ARITY) - 1);
            else if (f->argc > 3)
                client_local(c, SYNTAX, sizeof(SYNTAX) - 1);
            else if (client_login(c, rq->buf, f->argc == 3 ? &f->argv[1] : NULL,
                                  f->argv[f->argc - 1]))
                client_local(c, "+OK\r\n", 5);
            return CLIENT_OWN_DONE;
        }
        if (!shared || f->argc < 2 || f->argc > 3 ||
            !identity_upstream_creds(c->w->cfg, rq->buf, f->argc == 3 ? &f->argv[1] : NULL,
                                     f->argv[f->argc - 1]))
            return CLIENT_OWN_FORWARD;
        client_local(c, "+OK\r\n", 5);
        return CLIENT_OWN_DONE;
    case COMMAND_OWN_SETNAME:
        /* Kept on a dedicated connection too, and sent on there as well. */
        if (f->argc != 3 || s->state == SESSION_STREAM || (s->held & SESSION_MULTI))
            return CLIENT_OWN_FORWARD;
        if (!identity_valid_name(rq->buf + f->argv[2].off, f->argv[2].len)) {
            if (!shared)
                return CLIENT_OWN_FORWARD;
            client_local(c, ERR_NAME, sizeof(ERR_NAME) - 1);
            return CLIENT_OWN_DONE;
        }
        if (identity_set_name(&c->id, rq->buf + f->argv[2].off, f->argv[2].len) < 0) {
            client_close(c);
            return CLIENT_OWN_DONE;
        }
        if (!shared)
            return CLIENT_OWN_FORWARD;
        client_local(c, "+OK\r\n", 5);
        return CLIENT_OWN_DONE;
    case COMMAND_OWN_GETNAME:
        if (!shared || f->argc != 2)
            return CLIENT_OWN_FORWARD;
        if (c->id.name == NULL) {
            client_local(c, client_lane(c)->resp == 3 ? "_\r\n" : "$-1\r\n",
                         client_lane(c)->resp == 3 ? 3 : 5);
            return CLIENT_OWN_DONE;
        }
        client_local(c, reply,
                     resp_write_header(reply, sizeof(reply), '$', (int64_t)c->id.name_len));
        client_local(c, c->id.name, c->id.name_len);
        client_local(c, "\r\n", 2);
        return CLIENT_OWN_DONE;
    case COMMAND_OWN_SETINFO: {
        /* Never on a shared connection: it would name every client's library. */
        if (!shared || f->argc != 4)
            return CLIENT_OWN_FORWARD;
        size_t n = identity_setinfo(&c->id, rq->buf, f, reply);
        if (n == 0)
            client_close(c);
        else
            client_local(c, reply, n);
        return CLIENT_OWN_DONE;
    }
    case COMMAND_OWN_NONE:
        break;
    }
    return CLIENT_OWN_FORWARD;
}

void client_name_carry(struct client *c, struct upstream *up)
{
    const char *argv[] = {"CLIENT", "SETNAME", c->id.name};
    const size_t lens[] = {6, 7, c->id.name_len};
    size_t len = resp_write_command(NULL, 0, 3, argv, lens);
    char *cmd = malloc(len);
    struct exchange *x = cmd != NULL ? exchange_create(exchange_discard, NULL) : NULL;
    if (x != NULL) {
        resp_write_command(cmd, len, 3, argv, lens);
        upstream_send(up, cmd, len, x);
    }
    free(cmd);
    c->session.named = true;
}

void client_nearcache(struct client *c, const char *buf, const struct resp_request *req)
{
    static const char ERR_OOM[] = "-ERR reload failed: out of memory\r\n";
    admin_command_e cmd = admin_parse(buf, req);
    if (cmd == ADMIN_RELOAD) { /* answered once the reload is applied or has failed */
        struct req *r = req_create(c);
        struct exchange *x = r != NULL ? client_exchange(r) : NULL;
        if (x == NULL)
            client_close(c);
        else if (worker_reload(c->w, x) < 0)
            x->done(x, ERR_OOM, sizeof(ERR_OOM) - 1, 0);
        return;
    }
    size_t len;
    char *reply = cmd == ADMIN_INSPECT || cmd == ADMIN_EXPLAIN
                      ? admin_inspect(c->w, cmd, client_lane(c), buf, req, &len)
                      : admin_reply(c->w, cmd, buf, req, &len);
    if (reply == NULL) {
        client_close(c);
        return;
    }
    client_local(c, reply, len);
    free(reply);
}
