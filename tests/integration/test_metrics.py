"""Prometheus metrics of real runs against Milvus Lite: a node-exporter textfile and a Pushgateway (a real HTTP
server on 127.0.0.1 receiving the PUT)."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import build_vector_only
from tests.unit.test_metrics import strict_parse, value


@pytest.fixture
def source(lite):
    name = lite.new_name("m")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=120)
    return name


class _Gateway:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def gateway() -> Iterator[tuple[_Gateway, str]]:
    """A minimal Pushgateway stand-in: records every request, answers with ``gw.status``."""
    gw = _Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            gw.requests.append({"method": "PUT", "path": self.path, "body": body,
                                "content_type": self.headers.get("Content-Type"),
                                "authorization": self.headers.get("Authorization")})
            self.send_response(gw.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield gw, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_textfile_after_success_and_failure(cli, lite, store_dir, source, tmp_path):
    prom = tmp_path / "textfile" / "vecbackup.prom"
    prom.parent.mkdir()
    r = cli("backup", lite.url, store_dir, "-c", source, "--metrics-textfile", prom, "--json")
    assert r.code == 0, r.stderr
    stored = r.json()["backups"][0]["bytes_stored"]
    text = prom.read_text()
    strict_parse(text)
    labels = {"job": "vecbackup", "collection": source, "operation": "backup"}
    assert value(text, "vecbackup_last_run_success", **labels) == 1
    assert value(text, "vecbackup_rows", **labels) == 120
    assert value(text, "vecbackup_bytes", **labels) == stored
    assert value(text, "vecbackup_uploaded_bytes", **labels) == r.json()["backups"][0]["bytes_uploaded"] > 0
    assert value(text, "vecbackup_failures_total", **labels) == 0
    first_success = value(text, "vecbackup_last_success_timestamp_seconds", **labels)
    assert first_success is not None and first_success > 1.7e9
    assert not Path(f"{prom}.tmp").exists()

    # an unknown collection: the run fails (exit 4) and the file says so, keeping the other series
    r = cli("backup", lite.url, store_dir, "-c", "nope", "--metrics-textfile", prom)
    assert r.code == 4
    text = prom.read_text()
    strict_parse(text)
    bad = {"job": "vecbackup", "collection": "nope", "operation": "backup"}
    assert value(text, "vecbackup_last_run_success", **bad) == 0
    assert value(text, "vecbackup_failures_total", **bad) == 1
    assert value(text, "vecbackup_last_success_timestamp_seconds", **bad) is None
    assert value(text, "vecbackup_last_run_success", **labels) == 1
    assert value(text, "vecbackup_last_success_timestamp_seconds", **labels) == first_success

    r = cli("backup", lite.url, store_dir, "-c", "nope", "--metrics-textfile", prom)
    assert value(prom.read_text(), "vecbackup_failures_total", **bad) == 2  # counts on across runs


def test_verify_prune_and_restore_record_their_operation(cli, lite, store_dir, source, tmp_path):
    prom = tmp_path / "vecbackup.prom"
    assert cli("backup", lite.url, store_dir, "-c", source, "--metrics-textfile", prom).code == 0
    r = cli("verify", store_dir, "--metrics-textfile", prom, "--metrics-job", "nightly", "--json")
    assert r.code == 0, r.stderr
    read = r.json()["backups"][0]["bytes_read"]
    r = cli("restore", store_dir, lite.url, "--as", lite.new_name("r"), "--metrics-textfile", prom)
    assert r.code == 0, r.stderr
    r = cli("prune", store_dir, "--keep-last", "1", "--metrics-textfile", prom)
    assert r.code == 0, r.stderr
    text = prom.read_text()
    strict_parse(text)
    assert value(text, "vecbackup_rows", job="nightly", operation="verify", collection=source) == 120
    assert value(text, "vecbackup_bytes", job="nightly", operation="verify", collection=source) == read
    assert value(text, "vecbackup_rows", operation="restore", collection=source) == 120
    assert value(text, "vecbackup_last_run_success", operation="prune", collection="_all") == 1
    assert value(text, "vecbackup_last_run_success", operation="backup", collection=source) == 1
    # a failing verify (an object gone) is recorded as a failure of that collection
    next((store_dir / "data").rglob("*.vbc")).unlink()
    r = cli("verify", store_dir, "--quick", "--metrics-textfile", prom)
    assert r.code == 8
    text = prom.read_text()
    assert value(text, "vecbackup_failures_total", job="vecbackup", operation="verify", collection=source) == 1
    assert value(text, "vecbackup_last_run_success", job="nightly", operation="verify", collection=source) == 1


def test_dry_run_prune_records_nothing(cli, lite, store_dir, source, tmp_path):
    prom = tmp_path / "vecbackup.prom"
    assert cli("backup", lite.url, store_dir, "-c", source).code == 0
    assert cli("prune", store_dir, "--keep-last", "1", "--dry-run", "--metrics-textfile", prom).code == 0
    assert not prom.exists()


def test_textfile_from_environment(cli, lite, store_dir, source, tmp_path, monkeypatch):
    prom = tmp_path / "env.prom"
    monkeypatch.setenv("VECBACKUP_METRICS_TEXTFILE", str(prom))
    assert cli("backup", lite.url, store_dir, "-c", source).code == 0
    assert value(prom.read_text(), "vecbackup_rows", collection=source) == 120


def _grouping_key(path: str) -> dict[str, str]:
    """The grouping key a Pushgateway reads from a push path: /metrics/<label>/<value>/..., a label ending in
    @base64 has its value in URL-safe base64 (how spaces and slashes are sent), else the value is URL-escaped."""
    from urllib.parse import unquote

    parts = path.removeprefix("/metrics/").split("/")
    out = {}
    for label, raw in zip(parts[::2], parts[1::2], strict=True):
        if label.endswith("@base64"):
            out[label.removesuffix("@base64")] = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        else:
            out[label] = unquote(raw)
    return out


def test_pushgateway_receives_the_put(cli, lite, store_dir, source, tmp_path, gateway):
    gw, url = gateway
    prom = tmp_path / "vecbackup.prom"
    r = cli("backup", lite.url, store_dir, "-c", source, "--metrics-pushgateway", url,
            "--metrics-textfile", prom)
    assert r.code == 0, r.stderr
    (req,) = gw.requests
    assert req["method"] == "PUT"
    assert req["path"] == f"/metrics/job/vecbackup/instance/{socket.gethostname()}"
    assert _grouping_key(req["path"]) == {"job": "vecbackup", "instance": socket.gethostname()}
    assert req["content_type"].startswith("text/plain; version=0.0.4")
    assert req["authorization"] is None
    strict_parse(req["body"])
    assert value(req["body"], "vecbackup_rows", job="vecbackup", collection=source, operation="backup") == 120
    assert req["body"] == prom.read_text()  # with a textfile, the merged series are pushed
    # a failing run is pushed too
    r = cli("backup", lite.url, store_dir, "-c", "nope", "--metrics-pushgateway", url)
    assert r.code == 4
    assert value(gw.requests[-1]["body"], "vecbackup_last_run_success", collection="nope") == 0
    assert value(gw.requests[-1]["body"], "vecbackup_failures_total", collection="nope") == 1


def test_pushgateway_failure_is_only_a_warning(cli, lite, store_dir, source, gateway):
    gw, url = gateway
    gw.status = 500
    r = cli("backup", lite.url, store_dir, "-c", source, "--metrics-pushgateway", url, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["ok"] is True
    assert "could not push metrics" in r.stderr and "500" in r.stderr
    # nothing listening at all
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://user:pa55word@127.0.0.1:{s.getsockname()[1]}"
    r = cli("backup", lite.url, store_dir, "-c", source, "--metrics-pushgateway", dead, "--log-format", "json")
    assert r.code == 0, r.stderr
    assert "could not push metrics" in r.stderr and "pa55word" not in r.stderr


def test_pushgateway_basic_auth_from_url(cli, lite, store_dir, source, gateway, monkeypatch):
    gw, url = gateway
    monkeypatch.setenv("VECBACKUP_PUSHGATEWAY_URL", url.replace("http://", "http://pusher:s3cret%21@"))
    r = cli("backup", lite.url, store_dir, "-c", source, "--metrics-job", "vb nightly")
    assert r.code == 0, r.stderr
    (req,) = gw.requests
    assert req["authorization"] == "Basic " + base64.b64encode(b"pusher:s3cret!").decode()
    assert _grouping_key(req["path"]) == {"job": "vb nightly", "instance": socket.gethostname()}
    assert "s3cret" not in req["body"]
    assert value(req["body"], "vecbackup_rows", job="vb nightly") == 120
