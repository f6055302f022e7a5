"""The CLI and the operations over every store (local, S3 on SeaweedFS, Azure on Azurite), with faults:
damaged and missing objects, a store going down mid-backup, a killed backup resumed, racing backups."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tests.datasets import build_in_own_process, build_vector_only, read_rows
from vecbackup.engines.milvus import MilvusEngine
from vecbackup.errors import Unreachable
from vecbackup.format import layout
from vecbackup.ops.backup import backup_collection
from vecbackup.ops.progress import NullProgress
from vecbackup.stores import open_store
from vecbackup.urls import parse_milvus_url, parse_store_url


def test_round_trip_and_damage_on_every_store(cli, lite, any_store):
    name = lite.new_name("e2e")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=400)
    r = cli("backup", lite.url, any_store.url, "-c", name, "--batch-size", "90", "--json")
    assert r.code == 0, r.stderr
    backup = r.json()["backups"][0]
    assert backup["objects"] == 5
    listed = cli("list", any_store.url, "--json")
    assert [b["backup_id"] for b in listed.json()["backups"]] == [backup["backup_id"]]
    assert cli("verify", any_store.url, "--json").json()["ok"] is True
    r = cli("restore", any_store.url, lite.url, "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)
    for secret in any_store.env.values():
        assert "AccountKey" not in r.stdout and secret not in listed.stdout + r.stdout + r.stderr

    store = any_store.open()
    keys = [o.key for o in store.list(layout.DATA)]
    good = store.get(keys[2])
    store.put(keys[2], good[:-1] + bytes([good[-1] ^ 0xFF]))  # one flipped byte
    assert cli("verify", any_store.url).code == 7
    r = cli("restore", any_store.url, lite.url, "--as", f"{name}_bad")
    assert r.code == 7 and "SHA-256" in r.error_line()
    store.put(keys[2], good[: len(good) // 2])  # truncated
    assert cli("verify", any_store.url).code == 7
    store.delete(keys[2])  # missing
    assert cli("verify", any_store.url).code == 8
    assert cli("restore", any_store.url, lite.url, "--as", f"{name}_bad").code == 8
    assert f"{name}_bad" not in lite.client.list_collections()


def test_concurrent_backups_of_one_collection(lite, any_store):
    """Two backups of the same collection started at once both commit, as separate backups."""
    name = lite.new_name("race")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run() -> None:
        engine = MilvusEngine(parse_milvus_url(lite.url))
        try:
            barrier.wait()
            results.append(backup_collection(engine, open_store(any_store.url, create=True), name, batch_size=50))
        except Exception as e:
            errors.append(e)
        finally:
            engine.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.backup_id for r in results}) == 2
    store = open_store(any_store.url)
    assert len([o for o in store.list(layout.MANIFESTS)]) == 2
    for r in results:
        assert r.rows == 300


class StopServerAfter(NullProgress):
    def __init__(self, server, after_rows: int) -> None:
        super().__init__()
        self.server, self.after_rows, self.stopped = server, after_rows, False

    def advance(self, rows: int, nbytes: int = 0) -> None:
        super().advance(rows, nbytes)
        if not self.stopped and self.rows >= self.after_rows:
            self.stopped = True
            self.server.stop()


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_store_down_mid_backup(cli, lite, kind, request, tmp_path, monkeypatch):
    from tests.conftest import make_store

    sut = make_store(kind, request, tmp_path, monkeypatch)
    monkeypatch.setenv("VECBACKUP_STORE_RETRY_SECONDS", "3")
    name = lite.new_name("down")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    engine = MilvusEngine(parse_milvus_url(lite.url))
    try:
        with pytest.raises(Unreachable) as ei:
            backup_collection(engine, open_store(parse_store_url(sut.url)), name, batch_size=20,
                              progress=StopServerAfter(sut.server, 60))
        assert ei.value.exit_code == 6
        assert "attempts" in str(ei.value)
    finally:
        engine.close()
        sut.server.restart()
    r = cli("list", sut.url, "--json")
    assert r.code == 0 and r.json()["backups"] == []  # no visible backup


@pytest.mark.parametrize("kind", ["s3", "azure"])  # the local store: test_cli_errors
def test_killed_backup_resumes_uploading_only_what_is_missing(kind, request, tmp_path, monkeypatch):
    from tests.conftest import make_store

    any_store = make_store(kind, request, tmp_path, monkeypatch)
    db = tmp_path / "own.db"  # Milvus Lite allows one process per file: build it in another one
    build_in_own_process(db, "big", n=3000)
    url = f"milvus-lite://{db}"
    args = [sys.executable, "-m", "vecbackup", "backup", url, any_store.url, "-c", "big", "--batch-size", "25"]
    store = any_store.open()
    err = tmp_path / "killed.err"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(store.list(layout.DATA))) < 20:
        time.sleep(0.05)
    assert proc.poll() is None, f"the backup ended before it could be killed: {err.read_text()[-2000:]}"
    proc.kill()
    proc.wait()
    time.sleep(1.0)  # a request whose body was fully sent may still complete server-side after the kill
    present = {o.key: o.size for o in store.list(layout.DATA)}
    present_digests = {o.key for o in store.list(layout.DIGESTS)}
    assert 20 <= len(present) < 120, err.read_text()[-2000:]  # (a run that wrote nothing in 120 s says why)
    assert list(store.list(layout.MANIFESTS)) == []
    r = subprocess.run([*args, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import orjson

    b = orjson.loads(r.stdout)["backups"][0]
    shown = orjson.loads(subprocess.run([sys.executable, "-m", "vecbackup", "show", any_store.url, "--json"],
                                        capture_output=True, text=True, check=True).stdout)
    missing_bytes = sum(o["size"] for o in shown["objects"] if o["key"] not in present)
    digests = {o.key: o.size for o in store.list(layout.DIGESTS)}
    missing_bytes += sum(size for key, size in digests.items() if key not in present_digests)  # and their digests
    assert len(digests) == len(shown["objects"])
    assert b["bytes_uploaded"] == missing_bytes < b["bytes_stored"]
    assert subprocess.run([sys.executable, "-m", "vecbackup", "verify", any_store.url]).returncode == 0


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_wrong_credentials_and_missing_bucket(cli, lite, kind, request, tmp_path, monkeypatch):
    from tests.conftest import make_store

    sut = make_store(kind, request, tmp_path, monkeypatch)
    name = lite.new_name("cred")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=10)
    if kind == "s3":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "WrongSecretValue123")
        secret = "WrongSecretValue123"
    else:
        bad = sut.env["AZURE_STORAGE_CONNECTION_STRING"].replace("AccountKey=", "AccountKey=AAAA")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", bad)
        secret = bad.split("AccountKey=")[1].split(";")[0]
    r = cli("backup", lite.url, sut.url, "-c", name)
    assert r.code == 6, r.stderr
    line = r.error_line()
    assert secret not in r.stderr + r.stdout
    assert "credential" in line.lower() or "denied" in line.lower() or "auth" in line.lower()
    for k, v in sut.env.items():
        monkeypatch.setenv(k, v)
    missing = sut.url.replace("://vb", "://nobucket", 1)
    r = cli("backup", lite.url, missing, "-c", name)
    assert r.code == 4, r.stderr
    assert "nobucket" in r.error_line()
