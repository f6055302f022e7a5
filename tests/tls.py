"""A real TLS terminator for the tests: nginx (Debian's package; .ci/run installs it) in front of a gRPC server on
127.0.0.1, and the certificates it needs, made here with ``cryptography``: a test CA, a server certificate for
``localhost`` / 127.0.0.1 signed by it, a client certificate signed by it, and a second CA (with a client
certificate of its own) that nobody here trusts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.procs import log_tail, stop_group
from tests.seaweedfs import HOST, free_ports


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA that signed the server and client certificates
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here
    other_client_cert: Path  # a client certificate of the other CA
    other_client_key: Path


def make_certs(folder: Path) -> Certs:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
        c, k = folder / f"{stem}.pem", folder / f"{stem}.key"
        c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        k.chmod(0o600)
        return c, k

    def ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def leaf(cn: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], server: bool,
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer[0].subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
             .not_valid_after(now + dt.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                   else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                             x509.IPAddress(ipaddress.ip_address(HOST))]),
                                critical=False)
        return b.sign(issuer[1], hashes.SHA256()), key

    test_ca, other = ca("vecbackup test CA"), ca("some other CA")
    ca_path, _ = write("ca", *test_ca)
    other_path, _ = write("other-ca", *other)
    server_cert, server_key = write("server", *leaf("localhost", test_ca, server=True))
    client_cert, client_key = write("client", *leaf("vecbackup client", test_ca, server=False))
    other_cert, other_key = write("other-client", *leaf("intruder", other, server=False))
    return Certs(ca_path, server_cert, server_key, client_cert, client_key, other_path, other_cert, other_key)


def nginx_binary() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not exe:
        raise RuntimeError("nginx is not installed: apt-get install nginx (.ci/run does)")
    return exe


class TLSProxy:
    """nginx terminating TLS for a gRPC server on ``HOST:target_port``, as deployments put it in front of Milvus:
    ``mtls_port`` demands a client certificate signed by the test CA, ``tls_port`` is one-way TLS. HTTP/2 with
    ALPN, which gRPC clients require (stunnel, without ALPN, is refused by them)."""

    def __init__(self, folder: Path, certs: Certs, target_port: int) -> None:
        self.folder = folder
        self.certs = certs
        self.target_port = target_port
        self.mtls_port, self.tls_port = free_ports(2)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "error.log"

    def start(self, timeout: float = 30.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        c, f = self.certs, self.folder
        temps = "\n".join(f"  {k}_temp_path {f / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        server = """
  server {{
    listen {host}:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    {verify}
    location / {{ grpc_pass grpc://{host}:{target}; }}
  }}"""
        verify = {self.mtls_port: f"ssl_client_certificate {c.ca}; ssl_verify_client on;", self.tls_port: ""}
        servers = "".join(server.format(host=HOST, port=port, cert=c.server_cert, key=c.server_key,
                                        target=self.target_port, verify=v) for port, v in verify.items())
        conf = f / "nginx.conf"
        conf.write_text(f"""daemon off;
worker_processes 1;
error_log {self.log} info;
pid {f / "nginx.pid"};
events {{ worker_connections 256; }}
http {{
  log_format tls '$server_port "$ssl_client_s_dn" $ssl_client_verify $status';
  access_log {f / "access.log"} tls;
{temps}
  grpc_read_timeout 300s;
  grpc_send_timeout 300s;
  client_max_body_size 0;
{servers}
}}
""")
        self.proc = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(f)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{log_tail(self.log)}")
            if self._handshakes():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not accept TLS within {timeout:.0f}s:\n{log_tail(self.log)}")

    def _handshakes(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.certs.ca))
        try:
            with socket.create_connection((HOST, self.tls_port), timeout=2) as raw, \
                    ctx.wrap_socket(raw, server_hostname="localhost"):
                return True
        except OSError:
            return False

    def access_log(self) -> str:
        """One line per request: port, the client certificate's subject, nginx's verdict on it, the status."""
        path = self.folder / "access.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None
