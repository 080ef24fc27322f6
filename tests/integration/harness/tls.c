/* tls.c - the certificates of the TLS mode of the end-to-end tests. See
 * tls.h for the contracts. */
#include "harness/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/logs.h"
#include "harness/proc.h"

#define TLS_DIR_ENV "NC_IT_TLS_DIR"
#define OPENSSL_MS  30000

bool harness_tls(void)
{
    const char *v = getenv("NC_IT_TLS");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

void harness_tls_path(char *dst, size_t len, const char *name)
{
    const char *dir = getenv(TLS_DIR_ENV);
    snprintf(dst, len, "%s/%s", dir ? dir : "", name);
}

/* Runs one openssl command, its output to log (printed when it fails). */
static bool run_openssl(const char *const *argv, const char *log)
{
    if (harness_exited_with(harness_run(argv, log, OPENSSL_MS), 0))
        return true;
    harness_print_file(log, "openssl");
    return false;
}

/* In dir: a CA, and a P-256 certificate for 127.0.0.1 (common name and IP
 * address) that it signed, valid for two days; both pass X.509 strict checks. */
static bool make_certificates(const char *dir)
{
    char ca_key[320], ca_crt[320], key[320], csr[320], crt[320], log[320];
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(csr, sizeof(csr), "%s/server.csr", dir);
    snprintf(crt, sizeof(crt), "%s/server.crt", dir);
    snprintf(log, sizeof(log), "%s/openssl.log", dir);
    /* clang-format off */
    const char *const ca[] = {"openssl", "req", "-x509", "-new", "-nodes",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-days", "2",
        "-subj", "/CN=nearcache-it-ca", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", ca_key, "-out", ca_crt, NULL};
    const char *const request[] = {"openssl", "req", "-new", "-nodes",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", key, "-out", csr, NULL};
    const char *const sign[] = {"openssl", "x509", "-req", "-in", csr,
        "-CA", ca_crt, "-CAkey", ca_key, "-set_serial", "1", "-days", "2",
        "-copy_extensions", "copy", "-out", crt, NULL};
    /* clang-format on */
    return run_openssl(ca, log) && run_openssl(request, log) && run_openssl(sign, log);
}

void harness_tls_setup(void)
{
    if (!harness_tls())
        return;
    static char dir[] = "/tmp/nearcache-it-tls.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("NC_IT_TLS: mkdtemp");
        exit(1);
    }
    if (!make_certificates(dir)) {
        fprintf(stderr, "NC_IT_TLS: openssl could not make the test certificates\n");
        harness_rmdir(dir);
        exit(1);
    }
    setenv(TLS_DIR_ENV, dir, 1);
}

void harness_tls_teardown(void)
{
    const char *dir = getenv(TLS_DIR_ENV);
    if (harness_tls() && dir != NULL && strstr(dir, "/nearcache-it-tls.") != NULL)
        harness_rmdir(dir);
}
