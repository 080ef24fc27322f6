/* tls.h - the TLS mode of the end-to-end tests: with NC_IT_TLS=1 the proxy
 * talks TLS to the test's Redis. Redis then listens on a --tls-port beside its
 * plain port (the tests' direct connections keep the plain one) and the proxy
 * is pointed at the TLS port with upstream.tls=on (see redis.h, proxy.h).
 *
 * The certificates are made with the openssl CLI once per test binary, before
 * the first test, in a temp dir ($NC_IT_TLS_DIR) removed after the last: a CA
 * and a certificate for 127.0.0.1 that it signed. None is committed.
 */
#ifndef NEARCACHE_TESTS_HARNESS_TLS_H
#define NEARCACHE_TESTS_HARNESS_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* True when NC_IT_TLS is set (and not "0"). */
bool harness_tls(void);
/* The criterion PRE_ALL hook's part: in TLS mode, makes the certificates and
 * sets $NC_IT_TLS_DIR. When openssl fails, prints its output and exits 1: no
 * test can run. */
void harness_tls_setup(void);
/* The POST_ALL hook's part: removes the dir harness_tls_setup made. */
void harness_tls_teardown(void);
/* Writes to dst the path of one of the files made: "ca.crt", "server.crt"
 * or "server.key". Only in TLS mode. */
void harness_tls_path(char *dst, size_t len, const char *name);

#endif
