"""Certificates for the TLS tests, made with the openssl command line tool:
a CA, and certificates it signs for servers and clients (EC keys: quick to
make).  The files are readable by the server's system user.

    ca = CertificateAuthority(directory, "ca")
    cert, key = ca.issue("server", "/CN=localhost",
                         san="DNS:localhost,IP:127.0.0.1")
    cert, key = ca.issue("alice", "/O=Example/CN=alice", client=True)
"""

import os
import subprocess

import pgserver


def _openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=cwd)


def _own(*paths):
    for p in paths:
        pgserver._chown_to_server_user(p)
        os.chmod(p, 0o600 if p.endswith(".key") else 0o644)


class CertificateAuthority:
    def __init__(self, directory, name):
        self.directory = str(directory)
        self.name = name
        self.key = os.path.join(self.directory, f"{name}.key")
        self.cert = os.path.join(self.directory, f"{name}.crt")
        _openssl("req", "-x509", "-new", "-nodes",
                 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-keyout", self.key, "-out", self.cert, "-days", "2",
                 "-subj", f"/CN=streamlog test {name}")
        _own(self.key, self.cert)

    def issue(self, name, subject, san=None, client=False):
        """(certificate file, key file) for subject, signed by this CA"""
        key = os.path.join(self.directory, f"{name}.key")
        csr = os.path.join(self.directory, f"{name}.csr")
        cert = os.path.join(self.directory, f"{name}.crt")
        ext = os.path.join(self.directory, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        _openssl("req", "-new", "-nodes",
                 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-keyout", key, "-out", csr, "-subj", subject)
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                 "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        _own(key, cert)
        return cert, key
