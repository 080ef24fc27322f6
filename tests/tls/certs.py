"""certs.py - the certificates of tests/tls, made at run time with the openssl CLI.

EC prime256v1 keys in a directory of the test's: a CA, a server certificate
for 127.0.0.1 and localhost, a client certificate, an unrelated CA with its
own server and client certificates, an expired server certificate and one
for wrong.example only; and the client contexts that trust or present them.
"""
import os
import secrets
import ssl
import subprocess

OPENSSL = "openssl"
SERVER_SAN = "IP:127.0.0.1,DNS:localhost"

OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ca]
default_ca = test_ca
[test_ca]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = anything
[anything]
commonName = supplied
"""

LEAF_EXT = """\
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class Pair:
    """A certificate and its key (paths), with the certificate's serial."""

    def __init__(self, cert, key, serial=None):
        self.cert, self.key, self.serial = cert, key, serial

    def der(self):
        with open(self.cert) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())


class Certs:
    """Every certificate the checks use, made with the openssl CLI in dir."""

    def __init__(self, dir):
        self.dir = dir
        self.cnf = os.path.join(dir, "openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(OPENSSL_CNF.format(dir=dir))
        open(os.path.join(dir, "index.txt"), "w").close()
        self.ca = self.authority("ca", "nearcache test CA")
        self.server = self.leaf("server", self.ca, SERVER_SAN)
        self.client = self.leaf("client", self.ca, None)
        self.reloaded = self.leaf("reloaded", self.ca, SERVER_SAN)  # cert_reload's new one
        self.wrong_name = self.leaf("wrong-name", self.ca, "DNS:wrong.example")
        self.expired = self.leaf("expired", self.ca, SERVER_SAN,
                                 dates=("20200101000000Z", "20200102000000Z"))
        self.wrong_ca = self.authority("wrong-ca", "unrelated CA")
        self.wrong_ca_server = self.leaf("wrong-ca-server", self.wrong_ca, SERVER_SAN)
        self.wrong_ca_client = self.leaf("wrong-ca-client", self.wrong_ca, None)

    def run(self, *args):
        r = subprocess.run([OPENSSL, *args], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        if r.returncode:
            raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")

    def key_and_request(self, name, cn):
        key, csr = self.path(name, "key"), self.path(name, "csr")
        self.run("req", "-new", "-config", self.cnf, "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        return key, csr

    def authority(self, name, cn):
        key, cert = self.path(name, "key"), self.path(name, "crt")
        self.run("req", "-x509", "-config", self.cnf, "-extensions", "ca_ext",
                 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}")
        return Pair(cert, key)

    def leaf(self, name, ca, san, dates=None):
        """A certificate for name signed by ca, with subjectAltName san (none
        for a client's); valid from now for two days, or for dates (start,
        end) by `openssl ca`, which openssl 3.0's `x509 -req` cannot set."""
        key, csr = self.key_and_request(name, san.split(",")[-1].split(":")[1] if san else name)
        cert, ext = self.path(name, "crt"), self.path(name, "ext")
        with open(ext, "w") as f:
            f.write("[leaf]\n" + LEAF_EXT + (f"subjectAltName = {san}\n" if san else ""))
        serial = secrets.randbits(62) | 1 << 62
        if dates:
            with open(os.path.join(self.dir, "serial"), "w") as f:
                f.write(f"{serial:X}\n")
            self.run("ca", "-batch", "-config", self.cnf, "-cert", ca.cert, "-keyfile", ca.key,
                     "-in", csr, "-out", cert, "-startdate", dates[0], "-enddate", dates[1],
                     "-extfile", ext, "-extensions", "leaf", "-notext")
        else:
            self.run("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
                     "-set_serial", str(serial), "-days", "2", "-extfile", ext,
                     "-extensions", "leaf", "-out", cert)
        return Pair(cert, key, serial)

    def path(self, name, ext):
        return os.path.join(self.dir, f"{name}.{ext}")


def tls_context(ca=None, cert=None, verify=True):
    """A client context trusting ca (hostnames checked), presenting cert (a Pair)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx
