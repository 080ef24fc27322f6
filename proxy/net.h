/* net.h - socket addresses and non-blocking sockets. */
#ifndef NEARCACHE_NET_H
#define NEARCACHE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct net_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

/* Resolves "host:port", "[v6]:port" or an absolute unix socket path. Returns 0,
 * or -1 with a static reason in *why. */
int net_addr_parse(const char *text, struct net_addr *out, const char **why);

/* Writes addr as "ip:port", "[v6]:port" or the unix socket path. */
void net_addr_format(const struct net_addr *addr, char *out, size_t len);

/* Splits "host:port" or "[v6]:port" into host and port; a unix socket path
 * (starting with '/') gives an empty host and port 0. Returns 0, or -1 when
 * the text is neither. */
int net_addr_split(const char *text, char *host, size_t hostlen, int *port);

/* Opens a non-blocking listening socket (a stale unix socket file is replaced);
 * shared: a TCP port that other sockets of this process listen on too
 * (SO_REUSEPORT: the kernel spreads connections over them). Returns the fd,
 * or -1 with errno. */
int net_listen(const struct net_addr *addr, bool shared);

/* Starts a non-blocking connect. Returns the fd (connected or in progress), or
 * -1 with errno. TCP sockets get TCP_NODELAY and keepalive. */
int net_connect(const struct net_addr *addr);

/* Prepares an accepted socket: TCP_NODELAY for TCP. Returns 0 or -1. */
int net_tune(int fd);

/* Returns the pending error of a socket whose connect completed (0 = connected). */
int net_connect_error(int fd);

#endif
