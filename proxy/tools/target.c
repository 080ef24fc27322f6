/* target.c - a tool's blocking connection to the proxy or Redis; see target.h. */
#include "proxy/tools/target.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "proxy/net.h"

redisReply *target_call(redisContext *c, int argc, const char *const *argv, char *err,
                        size_t errlen)
{
    redisReply *r = redisCommandArgv(c, argc, (const char **)argv, NULL);
    if (r == NULL) {
        snprintf(err, errlen, "%s: %s", argv[0], c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* AUTH and SELECT, as asked. Returns 0, or -1 with err set. */
static int target_prepare(redisContext *c, const char *user, const char *password, int db,
                          char *err, size_t errlen)
{
    redisReply *r;
    if (password != NULL) {
        const char *const argv[] = {"AUTH", user != NULL ? user : password, password};
        if (!(r = target_call(c, user != NULL ? 3 : 2, argv, err, errlen)))
            return -1;
        freeReplyObject(r);
    }
    if (db != 0) {
        char num[16];
        snprintf(num, sizeof(num), "%d", db);
        if (!(r = target_call(c, 2, (const char *const[]){"SELECT", num}, err, errlen)))
            return -1;
        freeReplyObject(r);
    }
    return 0;
}

redisContext *target_connect(const char *addr, const char *user, const char *password, int db,
                             int timeout_ms, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (net_addr_split(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "%s: expected host:port or a unix socket path", addr);
        return NULL;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c =
        port ? redisConnectWithTimeout(host, port, tv) : redisConnectUnixWithTimeout(addr, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "%s: %s", addr, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK ||
        target_prepare(c, user, password, db, err, errlen) < 0) {
        if (c->err)
            snprintf(err, errlen, "%s: %s", addr, c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

double target_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
