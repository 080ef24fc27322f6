/* http.c - the admin endpoint on libmicrohttpd, driven by the loop. */
#include "proxy/http.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <unistd.h>

#include "config/config.h"
#include "policy/policy.h"
#include "policy/users.h"
#include "proxy/admin.h"
#include "proxy/cache/cache.h"
#include "proxy/exchange.h"
#include "proxy/lib/buf.h"
#include "proxy/lib/log.h"
#include "proxy/mcp/mcp.h"
#include "proxy/mcp/runner.h"
#include "proxy/metrics.h"
#include "proxy/net.h"
#include "proxy/observe.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

#define HTTP_CONNECTIONS_MAX 32         /* admin connections at once */
#define HTTP_TIMEOUT_S       5          /* a connection idle this long is closed */
#define HTTP_MEMORY_MAX      (16 << 10) /* per connection: headers beyond this get 431 */
#define HTTP_BODY_MAX        1024       /* bytes of request body accepted (and ignored) */
#define HTTP_MCP_BODY_MAX    (64 << 10) /* bytes of an /mcp message */
#define HTTP_REQUEST_S       5   /* a request unfinished this long after it began is cut off */
#define HTTP_TICK_S          1.0 /* the longest libmicrohttpd is left without a run */

static const char JSON[] = "application/json";
static const char TEXT[] = "text/plain; charset=utf-8";
static const char PROMETHEUS[] = "text/plain; version=0.0.4; charset=utf-8";

/* One admin connection: libmicrohttpd's timeout counts only idle time, so
 * a client trickling a request would never be cut off; the sweep in
 * http_run cuts off a request not done HTTP_REQUEST_S after it began. */
struct http_conn {
    struct MHD_Connection *conn; /* NULL: a free slot */
    int fd;
    ev_tstamp since; /* when its current request began: accepted, or the last one done */
    bool waiting;    /* suspended until a reload is answered: exempt */
};

struct http {
    struct worker *w;
    struct MHD_Daemon *mhd;
    int listen_fd;
    ev_io io;           /* libmicrohttpd's epoll descriptor */
    ev_timer timer;     /* its next timeout, or the next sweep */
    struct runner *mcp; /* the thread answering /mcp */
    struct http_conn conns[HTTP_CONNECTIONS_MAX];
};

/* One request's state, from its first call to its completion. */
struct http_request {
    struct http *h;
    struct MHD_Connection *conn;
    struct http_conn *slot;
    size_t body;     /* bytes of body seen */
    bool answered;   /* the reload or MCP message it waited for is over */
    char *answer;    /* its answer, malloc'd (NULL: out of memory) */
    unsigned status; /* an MCP answer's */
    char *data;      /* /mcp: the body, malloc'd */
    size_t cap;
};

/* A reply: status, type and body (copied). */
static enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                                  const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* As http_reply, taking a malloc'd body; 500 when it is NULL. */
static enum MHD_Result http_reply_owned(struct MHD_Connection *conn, const char *type, char *body,
                                        size_t len)
{
    if (body == NULL)
        return http_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, "out of memory\n", 14);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result http_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return http_reply(conn, status, TEXT, text, strlen(text));
}

/* ---- routes --------------------------------------------------------------- */

typedef enum MHD_Result (*http_route_fn)(struct http_request *req);

static enum MHD_Result route_metrics(struct http_request *req)
{
    size_t len = 0;
    char *text = metrics_prometheus(req->h->w, &len);
    return http_reply_owned(req->conn, PROMETHEUS, text, len);
}

static enum MHD_Result route_stats(struct http_request *req)
{
    size_t len = 0;
    char *text = metrics_json(req->h->w, &len);
    return http_reply_owned(req->conn, JSON, text, len);
}

static unsigned http_authorize(const struct http *h, struct MHD_Connection *conn);

/* With client authentication on, what the admin endpoint shows of the data
 * (key names, values) needs the token too: true after queuing the refusal
 * in *refused. */
static bool http_data_refused(const struct http *h, struct MHD_Connection *conn,
                              enum MHD_Result *refused)
{
    unsigned status = config_client_auth(h->w->cfg) ? http_authorize(h, conn) : 0;
    if (status != 0)
        *refused = http_text(conn, status,
                             "client authentication is on: this needs Authorization: Bearer "
                             "<admin.token>\n");
    return status != 0;
}

static enum MHD_Result route_hotkeys(struct http_request *req)
{
    enum MHD_Result refused;
    if (http_data_refused(req->h, req->conn, &refused))
        return refused;
    const char *arg = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "n");
    char *end = NULL;
    unsigned long long n = arg != NULL ? strtoull(arg, &end, 10) : 10;
    if (arg != NULL && (*arg < '0' || *arg > '9' || *end != '\0'))
        return http_text(req->conn, MHD_HTTP_BAD_REQUEST, "n: expected a count\n");
    if (req->h->w->cfg->hotkeys_sample == 0)
        return http_text(req->conn, MHD_HTTP_CONFLICT,
                         "hot keys are not sampled: set hotkeys.sample\n");
    char *text = observe_hotkeys_json(req->h->w, (size_t)n);
    return http_reply_owned(req->conn, JSON, text, text != NULL ? strlen(text) : 0);
}

static enum MHD_Result route_healthz(struct http_request *req)
{
    return http_text(req->conn, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result route_readyz(struct http_request *req)
{
    const char *why;
    char text[128];
    if (admin_ready(req->h->w, &why))
        return http_text(req->conn, MHD_HTTP_OK, "ready\n");
    snprintf(text, sizeof(text), "not ready: %s\n", why);
    return http_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE, text);
}

static void config_one(void *arg, const char *name, const char *value)
{
    json_object_set_new(arg, name, value != NULL ? json_string(value) : json_null());
}

/* The settings in force (secrets redacted) and the policy's rules. */
static enum MHD_Result route_config(struct http_request *req)
{
    static const char *const KINDS[] = {"validate", "cache", "invalidate", "module"};
    const struct worker *w = req->h->w;
    json_t *root = json_object(), *settings = json_object(), *rules = json_array();
    config_describe(w->cfg, config_one, settings);
    for (size_t i = 0; i < policy_rule_count(w->policy); i++) {
        const char *name;
        policy_kind_e kind;
        policy_rule(w->policy, i, &name, &kind);
        json_array_append_new(rules, json_pack("{s:s,s:s}", "kind", KINDS[kind], "name", name));
    }
    json_object_set_new(root, "settings", settings);
    json_object_set_new(root, "policy", rules);
    json_object_set_new(root, "client_users", json_integer((json_int_t)users_count(w->cfg->users)));
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return http_reply_owned(req->conn, JSON, text, text != NULL ? strlen(text) : 0);
}

/* Resumes a request whose answer has come: it replies with it. */
static void http_resume(struct http_request *req)
{
    req->answered = true;
    req->slot->waiting = false;
    req->slot->since = ev_now(req->h->w->loop);
    MHD_resume_connection(req->conn);
    ev_feed_event(req->h->w->loop, &req->h->io, EV_READ); /* http_run, outside this call */
}

/* exchange_done_fn of a reload's waiter: keeps the answer and resumes the
 * request, which then replies with it. */
static void reload_answered(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)now_ms;
    struct http_request *req = x->arg;
    exchange_destroy(&x);
    req->answer = strndup(data, len);
    http_resume(req);
}

static enum MHD_Result route_reload(struct http_request *req)
{
    if (req->answered && req->answer == NULL)
        return http_text(req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    if (req->answered) { /* "+OK\r\n" or "-ERR reload failed: ...\r\n" */
        bool ok = req->answer[0] == '+';
        char text[512];
        snprintf(text, sizeof(text), "%.*s\n", (int)strcspn(req->answer + 1, "\r\n"),
                 req->answer + 1);
        return http_text(req->conn, ok ? MHD_HTTP_OK : MHD_HTTP_UNPROCESSABLE_CONTENT, text);
    }
    struct exchange *x = exchange_create(reload_answered, req);
    if (x == NULL || reload_request(req->h->w->reload, x) < 0) {
        exchange_destroy(&x);
        return http_text(req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    req->slot->waiting = true;
    MHD_suspend_connection(req->conn);
    return MHD_YES;
}

static enum MHD_Result route_flush(struct http_request *req)
{
    struct cache_figures f;
    char text[64];
    cache_figures(req->h->w->cache, &f);
    cache_flush(req->h->w->cache);
    log_notice("admin_flush", "admin: tier flushed ({entries=%zu} entries)", f.entries);
    snprintf(text, sizeof(text), "{\"flushed\": %zu}\n", f.entries);
    return http_reply(req->conn, MHD_HTTP_OK, JSON, text, strlen(text));
}

static const struct {
    const char *path;
    bool action; /* POST, with the token; else GET or HEAD */
    http_route_fn fn;
} ROUTES[] = {
    {"/metrics", false, route_metrics}, {"/stats", false, route_stats},
    {"/healthz", false, route_healthz}, {"/readyz", false, route_readyz},
    {"/config", false, route_config},   {"/hotkeys", false, route_hotkeys},
    {"/reload", true, route_reload},    {"/flush", true, route_flush},
};

/* 0 when the request carries admin.token, else the status to refuse it with. */
static unsigned http_authorize(const struct http *h, struct MHD_Connection *conn)
{
    static const char BEARER[] = "Bearer ";
    const char *token = h->w->cfg->admin_token;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth == NULL)
        return MHD_HTTP_UNAUTHORIZED;
    if (token == NULL || strncasecmp(auth, BEARER, sizeof(BEARER) - 1) != 0)
        return MHD_HTTP_FORBIDDEN;
    unsigned char digest[USERS_DIGEST_LEN];
    users_digest(token, strlen(token), digest);
    const char *given = auth + sizeof(BEARER) - 1;
    return users_digest_matches(digest, given, strlen(given)) ? 0 : MHD_HTTP_FORBIDDEN;
}

/* ---- /mcp: the MCP endpoint (proxy/mcp/) ----------------------------------------- */

/* Whether an Origin header names a loopback host. A page served from
 * elsewhere may not drive the MCP server, not even under a name that
 * resolves here (DNS rebinding, where its Origin and Host agree); an agent
 * that is not a browser sends no Origin. */
static bool mcp_origin_ok(const char *origin)
{
    const char *p = strstr(origin, "://");
    if (p == NULL)
        return false;
    p += 3;
    size_t name = p[0] == '[' ? strcspn(p, "]") + 1 : strcspn(p, ":/");
    return (name == 9 && strncasecmp(p, "localhost", 9) == 0) ||
           (name == 9 && strncmp(p, "127.0.0.1", 9) == 0) ||
           (name == 5 && strncmp(p, "[::1]", 5) == 0);
}

/* The refusal of an /mcp POST by its headers: 0, or the status after
 * writing why. */
static unsigned mcp_headers_check(struct MHD_Connection *conn, const char **why)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (origin != NULL && !mcp_origin_ok(origin)) {
        *why = "Origin not allowed\n";
        return MHD_HTTP_FORBIDDEN;
    }
    if (accept == NULL ||
        (strstr(accept, "*/*") == NULL &&
         (strstr(accept, JSON) == NULL || strstr(accept, "text/event-stream") == NULL))) {
        *why = "Accept must list application/json and text/event-stream\n";
        return MHD_HTTP_NOT_ACCEPTABLE;
    }
    if (type == NULL || strncasecmp(type, JSON, sizeof(JSON) - 1) != 0) {
        *why = "Content-Type must be application/json\n";
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    return 0;
}

/* runner_done_fn: keeps the answer and resumes the request. */
static void mcp_answered(void *arg, char *answer, unsigned status)
{
    struct http_request *req = arg;
    req->answer = answer;
    req->status = status;
    http_resume(req);
}

static enum MHD_Result mcp_reply(struct http_request *req)
{
    if (req->status == MCP_HTTP_ACCEPTED)
        return http_reply(req->conn, MHD_HTTP_ACCEPTED, TEXT, "", 0);
    if (req->answer == NULL) /* not run (503 from the runner), or out of memory */
        return req->status == MHD_HTTP_SERVICE_UNAVAILABLE
                   ? http_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "the MCP server is stopping\n")
                   : http_text(req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    enum MHD_Result ok = http_reply(req->conn, req->status, JSON, req->answer, strlen(req->answer));
    return ok;
}

/* POST /mcp: the message goes to the MCP thread, the request waits for it.
 * Reading tools need no token (unless client authentication is on: the tools
 * read keys and values); those that change state are listed with
 * admin.token set and run with it presented. */
static enum MHD_Result route_mcp(struct http *h, struct http_request *req, const char *method)
{
    if (req->answered)
        return mcp_reply(req);
    const char *why = NULL;
    if (strcmp(method, "POST") != 0)
        return http_text(
            req->conn, MHD_HTTP_METHOD_NOT_ALLOWED,
            "use POST: this MCP endpoint is stateless, without sessions or SSE streams\n");
    unsigned refused = mcp_headers_check(req->conn, &why);
    if (refused != 0)
        return http_text(req->conn, refused, why);
    enum MHD_Result gated;
    if (http_data_refused(h, req->conn, &gated))
        return gated;
    const char *token = h->w->cfg->admin_token;
    struct mcp_request mr = {
        true,
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "MCP-Protocol-Version"),
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Mcp-Method"),
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Mcp-Name"),
        token != NULL,
        token != NULL && http_authorize(h, req->conn) == 0};
    if (h->mcp == NULL || runner_submit(h->mcp, req->data != NULL ? req->data : "", req->body, &mr,
                                        mcp_answered, req) < 0)
        return http_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "the MCP server is busy: retry\n");
    req->slot->waiting = true;
    MHD_suspend_connection(req->conn);
    return MHD_YES;
}

/* Finds the route of url and checks the method and, for actions, the token;
 * NULL after queuing the refusal in *refused. */
static http_route_fn http_route(const struct http *h, struct MHD_Connection *conn, const char *url,
                                const char *method, enum MHD_Result *refused)
{
    bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(*ROUTES); i++) {
        if (strcmp(url, ROUTES[i].path) != 0)
            continue;
        if (ROUTES[i].action ? strcmp(method, "POST") != 0 : !read) {
            *refused = http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                 ROUTES[i].action ? "use POST\n" : "use GET\n");
            return NULL;
        }
        unsigned status = ROUTES[i].action ? http_authorize(h, conn) : 0;
        if (status != 0) {
            *refused = http_text(
                conn, status,
                h->w->cfg->admin_token == NULL    ? "admin actions are off: set admin.token\n"
                : status == MHD_HTTP_UNAUTHORIZED ? "needs Authorization: Bearer <admin.token>\n"
                                                  : "wrong token\n");
            return NULL;
        }
        return ROUTES[i].fn;
    }
    *refused = http_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    return NULL;
}

/* MHD_AccessHandlerCallback: called once with the headers, once per piece
 * of body and once at its end; the route answers at the end. */
static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version, const char *upload,
                                       size_t *upload_size, void **state)
{
    (void)version;
    struct http_request *req = *state;
    bool mcp = strcmp(url, "/mcp") == 0;
    size_t limit = mcp ? HTTP_MCP_BODY_MAX : HTTP_BODY_MAX;
    if (req == NULL) {
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length != NULL && strtoull(length, NULL, 10) > limit)
            return http_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if ((req = calloc(1, sizeof(*req))) == NULL)
            return MHD_NO;
        *req = (struct http_request){cls, conn, info->socket_context, 0, false, NULL, 0, NULL, 0};
        *state = req;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a body of no announced length can only be cut off */
        size_t n = *upload_size;
        *upload_size = 0;
        if (req->body + n > limit ||
            (mcp && buf_grow(&req->data, &req->cap, req->body + n, 4096) < 0))
            return MHD_NO;
        if (mcp)
            memcpy(req->data + req->body, upload, n);
        req->body += n;
        return MHD_YES;
    }
    if (mcp)
        return route_mcp(cls, req, method);
    enum MHD_Result refused = MHD_NO;
    http_route_fn fn = http_route(cls, conn, url, method, &refused);
    return fn != NULL ? fn(req) : refused;
}

static void http_on_completed(void *cls, struct MHD_Connection *conn, void **state,
                              enum MHD_RequestTerminationCode why)
{
    (void)conn;
    (void)why;
    struct http *h = cls;
    struct http_request *req = *state;
    if (req != NULL) {
        req->slot->since = ev_now(h->w->loop); /* a next request on it starts now */
        free(req->answer);
        free(req->data);
        free(req);
    }
    *state = NULL;
}

/* MHD_NotifyConnectionCallback: a connection takes a slot, or gives it back. */
static void http_on_connection(void *cls, struct MHD_Connection *conn, void **context,
                               enum MHD_ConnectionNotificationCode what)
{
    struct http *h = cls;
    struct http_conn *slot = *context;
    if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (slot != NULL)
            slot->conn = NULL;
        return;
    }
    for (slot = h->conns; slot < h->conns + HTTP_CONNECTIONS_MAX && slot->conn != NULL; slot++)
        ;
    if (slot == h->conns + HTTP_CONNECTIONS_MAX) /* cannot be: libmicrohttpd keeps the limit */
        abort();
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *slot = (struct http_conn){conn, info->connect_fd, ev_now(h->w->loop), false};
    *context = slot;
}

/* Cuts off the requests that have taken too long: libmicrohttpd sees the
 * connection end and closes it. */
static void http_sweep(struct http *h)
{
    ev_tstamp now = ev_now(h->w->loop);
    for (struct http_conn *slot = h->conns; slot < h->conns + HTTP_CONNECTIONS_MAX; slot++) {
        if (slot->conn == NULL || slot->waiting || now - slot->since < HTTP_REQUEST_S)
            continue;
        log_limited(LOG_INFO, "admin_slow_client",
                    "admin: a request unfinished after {seconds=%d} s: connection cut off",
                    HTTP_REQUEST_S);
        shutdown(slot->fd, SHUT_RDWR);
        slot->since = now; /* once */
    }
}

static void http_on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_limited(LOG_INFO, "admin_http", "admin: {reason=%s}", line);
}

/* ---- on the loop ------------------------------------------------------------ */

/* Lets libmicrohttpd do what is ready, then waits for its next timeout, at
 * most HTTP_TICK_S: it does not always say when it needs to run again (after
 * its connection limit it takes the listener back only in its next run). */
static void http_run(struct http *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    MHD_run(h->mhd);
    http_sweep(h);
    double wait = MHD_get_timeout(h->mhd, &ms) == MHD_YES ? (double)ms / 1000.0 : HTTP_TICK_S;
    ev_timer_stop(h->w->loop, &h->timer);
    ev_timer_set(&h->timer, wait < HTTP_TICK_S ? wait : HTTP_TICK_S, 0.0);
    ev_timer_start(h->w->loop, &h->timer);
}

static void http_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    http_run((struct http *)((char *)io - offsetof(struct http, io)));
}

static void http_on_timer(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    http_run((struct http *)((char *)timer - offsetof(struct http, timer)));
}

static struct MHD_Daemon *http_start(struct http *h)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, http_on_request, h, MHD_OPTION_EXTERNAL_LOGGER, http_on_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_MAX, MHD_OPTION_NOTIFY_COMPLETED,
        http_on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, http_on_connection, h, MHD_OPTION_END);
}

struct http *http_create(struct worker *w)
{
    const char *addr = w->cfg->admin_listen, *why;
    struct net_addr a;
    struct http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        log_crit("out_of_memory", "admin: out of memory");
        return NULL;
    }
    h->w = w;
    if (net_addr_parse(addr, &a, &why) < 0) /* config_validate checked it: unlikely */
        h->listen_fd = -1;
    else if ((h->listen_fd = net_listen(&a, false)) < 0)
        why = strerror(errno);
    if (h->listen_fd < 0) {
        log_crit("admin_listen_failed", "admin.listen {address=%s}: {reason=%s}", addr, why);
        free(h);
        return NULL;
    }
    if ((h->mhd = http_start(h)) == NULL) {
        log_crit("admin_listen_failed", "admin.listen {address=%s}: the HTTP server did not start",
                 addr);
        close(h->listen_fd);
        free(h);
        return NULL;
    }
    if ((h->mcp = runner_create(w)) == NULL) {
        MHD_stop_daemon(h->mhd);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    ev_io_init(&h->io, http_on_io, info->epoll_fd, EV_READ);
    ev_timer_init(&h->timer, http_on_timer, 0.0, 0.0);
    ev_io_start(w->loop, &h->io);
    log_notice("admin_listening", "admin endpoint on http://{address=%s}", addr);
    return h;
}

void http_destroy(struct http **hp)
{
    struct http *h = hp != NULL ? *hp : NULL;
    if (h == NULL)
        return;
    runner_destroy(&h->mcp); /* answers what it held: no connection stays suspended */
    http_run(h);
    ev_io_stop(h->w->loop, &h->io);
    ev_timer_stop(h->w->loop, &h->timer);
    MHD_stop_daemon(h->mhd); /* closes its connections and the listening socket */
    if (h->w->cfg->admin_listen[0] == '/')
        unlink(h->w->cfg->admin_listen);
    free(h);
    *hp = NULL;
}
