/* sentinel.h - the primary as Redis Sentinel names it (upstream.sentinels).
 *
 * At start the Sentinels are asked in turn, waiting at most
 * upstream.connect_timeout for each, for the address of upstream.master_name
 * (SENTINEL GET-MASTER-ADDR-BY-NAME); the first answer sets the endpoint.
 * From then on, on the loop: every Sentinel is subscribed to +switch-master,
 * and one of them is asked again every second (the next one when it does not
 * answer). A new address moves the endpoint, which moves the connections
 * (endpoint.h). When every Sentinel is down the last known primary stays.
 * Sentinels are reached with AUTH upstream.sentinel_username/_password and,
 * with upstream.tls, over TLS through tunnels (tunnel.h); they must announce
 * IP addresses (Sentinel's default, resolve-hostnames no).
 */
#ifndef NEARCACHE_SENTINEL_H
#define NEARCACHE_SENTINEL_H

#include <ev.h>
#include <openssl/ssl.h>

struct config;
struct endpoint;
struct sentinel;

/* Resolves the Sentinels' addresses, asks them for the primary (blocking,
 * as above) and starts following it on loop. cfg, primary and *tls (NULL:
 * plain) are borrowed. NULL with err when a Sentinel's address is invalid
 * or memory runs out; no Sentinel answering is not an error (the primary
 * stays unknown until one does). */
struct sentinel *sentinel_create(struct ev_loop *loop, const struct config *cfg,
                                 struct endpoint *primary, SSL_CTX *const *tls, char *err,
                                 size_t errlen);

/* Closes the connections and frees *s; NULL and *s == NULL are accepted. */
void sentinel_destroy(struct sentinel **s);

#endif
