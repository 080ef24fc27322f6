/* endpoint.c - the upstream address, resolved again off the loop. */
#include "proxy/endpoint.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/log.h"

/* One thread resolves the name whenever asked; the loop hears of the result
 * through an ev_async. The fields under mu are the thread's and the loop's. */
struct endpoint_resolver {
    struct endpoint *ep;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool want;             /* under mu: resolve ep->name */
    bool quit;             /* under mu */
    bool busy;             /* the loop's: a resolution was asked and not heard of */
    int rc;                /* under mu: of the last resolution */
    const char *why;       /* under mu: its reason when rc < 0 */
    struct net_addr found; /* under mu */
    ev_async done;
};

static void *resolver_main(void *arg)
{
    struct endpoint_resolver *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->want && !r->quit)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->quit)
            break;
        r->want = false;
        pthread_mutex_unlock(&r->mu);
        struct net_addr found;
        const char *why = NULL;
        int rc = net_addr_parse(r->ep->name, &found, &why); /* name is fixed after init */
        pthread_mutex_lock(&r->mu);
        r->rc = rc;
        r->why = why;
        r->found = found;
        ev_async_send(r->ep->loop, &r->done);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void resolver_on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    struct endpoint_resolver *r = w->data;
    pthread_mutex_lock(&r->mu);
    int rc = r->rc;
    const char *why = r->why;
    struct net_addr found = r->found;
    pthread_mutex_unlock(&r->mu);
    r->busy = false;
    r->ep->resolved = ev_now(loop);
    if (rc == 0)
        endpoint_set(r->ep, &found, "upstream_address_changed", r->ep->name);
    else
        log_limited(LOG_WARN, "upstream_resolve_failed",
                    "upstream: {address=%s}: {reason=%s}; keeping {upstream=%s}", r->ep->name, why,
                    r->ep->shown);
}

static int resolver_start(struct endpoint *ep)
{
    struct endpoint_resolver *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -1;
    r->ep = ep;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    ev_async_init(&r->done, resolver_on_done);
    r->done.data = r;
    if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return -1;
    }
    ev_async_start(ep->loop, &r->done);
    ev_unref(ep->loop); /* an idle resolver does not keep the loop running */
    ep->res = r;
    return 0;
}

/* True when the host part of address is a name, not an IP address or a path. */
static bool endpoint_named(const char *address, char *host, size_t len)
{
    int port;
    unsigned char ip[16];
    if (net_addr_split(address, host, len, &port) < 0 || host[0] == '\0')
        return false;
    return inet_pton(AF_INET, host, ip) != 1 && inet_pton(AF_INET6, host, ip) != 1;
}

int endpoint_init(struct endpoint *ep, struct ev_loop *loop, const char *address,
                  const char *server_name, char *err, size_t errlen)
{
    memset(ep, 0, sizeof(*ep));
    ep->loop = loop;
    snprintf(ep->shown, sizeof(ep->shown), "-");
    if (server_name != NULL)
        snprintf(ep->server_name, sizeof(ep->server_name), "%s", server_name);
    if (address == NULL)
        return 0;
    char host[256];
    if (endpoint_named(address, host, sizeof(host)))
        snprintf(ep->name, sizeof(ep->name), "%s", address);
    if (server_name == NULL && address[0] != '/')
        snprintf(ep->server_name, sizeof(ep->server_name), "%s", host);
    const char *why;
    if (net_addr_parse(address, &ep->addr, &why) < 0) {
        snprintf(err, errlen, "upstream.address %s: %s", address, why);
        return -1;
    }
    net_addr_format(&ep->addr, ep->shown, sizeof(ep->shown));
    ep->resolved = ev_now(loop);
    return 0;
}

void endpoint_deinit(struct endpoint *ep)
{
    struct endpoint_resolver *r = ep->res;
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->quit = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    ev_ref(ep->loop);
    ev_async_stop(ep->loop, &r->done);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    ep->res = NULL;
}

bool endpoint_ready(struct endpoint *ep, ev_tstamp since)
{
    if (ep->name[0] == '\0' || ep->resolved > since)
        return ep->addr.len > 0;
    if (ep->res == NULL && resolver_start(ep) < 0)
        return ep->addr.len > 0; /* no thread: the address of the last resolution */
    struct endpoint_resolver *r = ep->res;
    if (!r->busy) {
        r->busy = true;
        pthread_mutex_lock(&r->mu);
        r->want = true;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return false;
}

void endpoint_set(struct endpoint *ep, const struct net_addr *addr, const char *event,
                  const char *why)
{
    if (addr->len == ep->addr.len && memcmp(&addr->sa, &ep->addr.sa, addr->len) == 0)
        return;
    char shown[sizeof(ep->shown)];
    net_addr_format(addr, shown, sizeof(shown));
    log_notice(event, "upstream: {from=%s} -> {to=%s} ({why=%s})", ep->shown, shown, why);
    bool known = ep->addr.len > 0;
    ep->addr = *addr;
    memcpy(ep->shown, shown, sizeof(shown));
    ep->moves += known;
    if (ep->moved != NULL)
        ep->moved(ep->moved_arg, known);
}
