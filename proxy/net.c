/* net.c - socket addresses and non-blocking sockets. */
#include "proxy/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define NET_BACKLOG 511

int net_addr_split(const char *text, char *host, size_t hostlen, int *port)
{
    host[0] = '\0';
    *port = 0;
    if (text[0] == '/')
        return 0;
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return -1;
    const char *h = text;
    size_t len = (size_t)(colon - text);
    if (h[0] == '[' && len >= 2 && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (len == 0 || len >= hostlen || *end != '\0' || p < 1 || p > 65535)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = (int)p;
    return 0;
}

int net_addr_parse(const char *text, struct net_addr *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (text[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        if (strlen(text) >= sizeof(un->sun_path)) {
            *why = "unix socket path too long";
            return -1;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, text);
        out->len = sizeof(*un);
        return 0;
    }
    char host[256], port[8];
    int p;
    if (net_addr_split(text, host, sizeof(host), &p) < 0) {
        *why = "expected host:port or a unix socket path";
        return -1;
    }
    snprintf(port, sizeof(port), "%d", p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        *why = "cannot resolve address";
        return -1;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void net_addr_format(const struct net_addr *addr, char *out, size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (addr->sa.ss_family == AF_UNIX)
        snprintf(out, len, "%s", ((const struct sockaddr_un *)&addr->sa)->sun_path);
    else if (addr->len == 0 ||
             getnameinfo((const struct sockaddr *)&addr->sa, addr->len, host, sizeof(host), serv,
                         sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(out, len, "-");
    else
        snprintf(out, len, addr->sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static int set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int net_tune(int fd)
{
    if (set_nonblock(fd) < 0)
        return -1;
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    }
    return 0;
}

int net_listen(const struct net_addr *addr, bool shared)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (addr->sa.ss_family == AF_UNIX)
        unlink(((const struct sockaddr_un *)&addr->sa)->sun_path);
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0 ||
        listen(fd, NET_BACKLOG) < 0 || set_nonblock(fd) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int net_connect(const struct net_addr *addr)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (net_tune(fd) < 0 ||
        (connect(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0 && errno != EINPROGRESS)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int net_connect_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}
