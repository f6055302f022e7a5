"""TLS and mutual TLS to Milvus, through a real TLS terminator: nginx (HTTP/2 with ALPN, as deployments put in
front of Milvus's gRPC port) started by the tests in front of the real Milvus 2.3 server, with certificates made
for the run. A backup and a restore go through it with a client certificate; every way it can be wrong (no client
certificate, one from another CA, a CA that did not sign the server, TLS options on a plaintext URL, --insecure
over gRPC) fails with a one-line error and its exit code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Engine, _client
from tests.datasets import build_vector_only, read_rows
from tests.integration.common import STANDALONE_URL
from tests.servers import SESSION_PORT
from tests.tls import Certs, TLSProxy, make_certs


@pytest.fixture(scope="module")
def proxy(standalone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSProxy]:
    folder = tmp_path_factory.mktemp("tls")
    p = TLSProxy(folder / "nginx", make_certs(folder / "certs"), SESSION_PORT)
    p.start()  # nginx missing or failing fails the tests, with its log
    yield p
    p.stop()


@pytest.fixture
def server(standalone) -> Iterator[Engine]:
    e = Engine("standalone", STANDALONE_URL, _client(standalone.uri))
    yield e
    e.client.close()


def _mtls(certs: Certs, client: bool = True) -> list[str]:
    args = ["--ca-cert", str(certs.ca)]
    return args + (["--client-cert", str(certs.client_cert), "--client-key", str(certs.client_key)] if client else [])


def test_backup_and_restore_over_mutual_tls(cli, server, proxy, tmp_path: Path):
    name = server.new_name("mtls")
    build_vector_only(server.client, name, "FLOAT_VECTOR", n=300)
    mtls = f"milvus+https://127.0.0.1:{proxy.mtls_port}"
    store = tmp_path / "store"
    r = cli("backup", mtls, store, "-c", name, "--batch-size", "100", "--json", *_mtls(proxy.certs))
    assert r.code == 0, r.stderr
    assert r.json()["backups"][0]["rows"] == 300
    r = cli("restore", store, mtls, "--as", f"{name}_r", "--json", *_mtls(proxy.certs))
    assert r.code == 0, r.stderr
    assert read_rows(server.client, f"{name}_r") == read_rows(server.client, name)
    r = cli("collections", f"milvus+https://127.0.0.1:{proxy.tls_port}", "--ca-cert", proxy.certs.ca, "--json")
    assert r.code == 0 and f"{name}_r" in {c["name"] for c in r.json()["collections"]}, r.stderr
    # nginx saw our client certificate, verified it, and passed the calls on
    seen = [line for line in proxy.access_log().splitlines() if line.startswith(f"{proxy.mtls_port} ")]
    assert seen and all('"CN=vecbackup client" SUCCESS 200' in line for line in seen), seen[:3]
    server.client.drop_collection(f"{name}_r")


@pytest.mark.parametrize("case", ["no_client_cert", "client_cert_of_another_ca", "server_not_trusted"])
def test_wrong_tls_fails_with_one_line_and_exit_6(cli, server, proxy, tmp_path: Path, case: str):
    c = proxy.certs
    port = proxy.tls_port if case == "server_not_trusted" else proxy.mtls_port
    args = {"no_client_cert": ["--ca-cert", c.ca],
            "client_cert_of_another_ca": ["--ca-cert", c.ca, "--client-cert", c.other_client_cert,
                                          "--client-key", c.other_client_key],
            "server_not_trusted": ["--ca-cert", c.other_ca]}[case]
    before = proxy.access_log().count(" 200")
    r = cli("backup", f"milvus+https://127.0.0.1:{port}", tmp_path / "store", "-c", "anything", *args)
    assert r.code == 6, r.stderr
    assert "cannot connect to Milvus" in r.error_line()
    assert not (tmp_path / "store" / "manifests").exists()
    assert proxy.access_log().count(" 200") == before  # nothing reached the server


@pytest.mark.parametrize(("url", "args", "words"), [
    (STANDALONE_URL, ["--ca-cert", "{ca}"], "does not use TLS"),
    ("milvus+https://127.0.0.1:1", ["--ca-cert", "{ca}", "--client-cert", "{cert}"], "go together"),
    ("milvus+https://127.0.0.1:1", ["--client-cert", "{cert}", "--client-key", "{key}"], "needs --ca-cert"),
    ("milvus+https://127.0.0.1:1", ["--insecure"], "not possible over gRPC"),
    ("milvus+https://127.0.0.1:1", ["--ca-cert", "/nonexistent/ca.pem"], "not found"),
    ("qdrant+grpcs://127.0.0.1:1", ["--ca-cert", "{ca}"], "use qdrant+https://"),
    ("qdrant-local:///tmp/x", ["--insecure"], "does not use TLS"),
    ("qdrant+https://127.0.0.1:1", ["--ca-cert", "{key}"], "cannot load the TLS certificates"),  # a key, not a cert
])
def test_tls_options_that_cannot_work_are_usage_errors(cli, proxy, tmp_path: Path, url: str, args: list[str],
                                                         words: str):
    c = proxy.certs
    argv = [a.format(ca=c.ca, cert=c.client_cert, key=c.client_key) for a in args]
    r = cli("backup", url, tmp_path / "store", "-c", "x", *argv)
    assert r.code == 2 and words in r.error_line(), r.stderr


def _logged_after(proxy, lines: int, wait: float = 5.0) -> list[str]:
    """The access-log lines after the first ``lines``, once there are some: nginx logs a request after answering it,
    so the client can see the answer before the line is written (seen once: an empty list)."""
    deadline = time.monotonic() + wait
    while True:
        new = proxy.access_log().splitlines()[lines:]
        if new or time.monotonic() > deadline:
            return new
        time.sleep(0.05)


def test_qdrant_https_presents_the_client_certificate(proxy):
    """No Qdrant server runs here, but its client's TLS is still ours to get right: through nginx's mutual-TLS port
    (which forwards to Milvus, so the call itself fails), vecbackup's Qdrant connection verifies nginx with the CA
    and presents our certificate, and nginx verifies it; with another CA's certificate nginx refuses it."""
    from vecbackup.engines import open_engine
    from vecbackup.errors import VecbackupError

    c = proxy.certs
    url = f"qdrant+https://127.0.0.1:{proxy.mtls_port}"
    lines = len(proxy.access_log().splitlines())
    with pytest.raises(VecbackupError):  # TLS succeeds; the Milvus behind it does not speak Qdrant's REST
        open_engine(url, ca_cert=str(c.ca), client_cert=str(c.client_cert), client_key=str(c.client_key))
    new = _logged_after(proxy, lines)
    assert new and all(f'{proxy.mtls_port} "CN=vecbackup client" SUCCESS' in line for line in new), new
    with pytest.raises(VecbackupError):
        open_engine(url, ca_cert=str(c.ca), client_cert=str(c.other_client_cert), client_key=str(c.other_client_key))
    later = _logged_after(proxy, lines + len(new))
    assert later and not [line for line in later if "SUCCESS" in line], later
    seen = len(proxy.access_log().splitlines())
    with pytest.raises(VecbackupError, match=r"(?i)certificate|ssl"):  # the server is checked against the CA given
        open_engine(f"qdrant+https://127.0.0.1:{proxy.tls_port}", ca_cert=str(c.other_ca))
    assert len(proxy.access_log().splitlines()) == seen  # no request was sent
