"""Bad input and damaged backups: one-line errors, documented exit codes, nothing lost or left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from pymilvus import MilvusClient

from tests.datasets import build_in_own_process, build_vector_only, read_rows
from vecbackup.engines.milvus import MilvusEngine
from vecbackup.engines.milvus.connection import _LITE_GRPC_OPTIONS, _lite_file_locked
from vecbackup.errors import VecbackupError
from vecbackup.ops.backup import backup_collection
from vecbackup.stores.local import LocalStore
from vecbackup.urls import parse_milvus_url


@pytest.fixture
def backed_up(cli, lite, store_dir):
    """A Milvus Lite collection of 300 rows and a backup of it in 4 chunks."""
    name = lite.new_name("src")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    r = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "80", "--json")
    assert r.code == 0, r.stderr
    return name, r.json()["backups"][0]


def _data_files(store_dir: Path) -> list[Path]:
    return sorted((store_dir / "data").rglob("*.vbc"))


def _stored_files(store_dir: Path) -> list[Path]:
    """Data objects and row digests."""
    return [*_data_files(store_dir), *sorted((store_dir / "digests").rglob("*.vbd"))]


@pytest.mark.parametrize("args,code,needle", [
    (["backup", "postgres://x", "file:///tmp/x", "-c", "a"], 2, "unsupported server URL scheme"),
    (["backup", "milvus://:19530", "file:///tmp/x", "-c", "a"], 2, "no host"),
    (["backup", "milvus://h:port", "file:///tmp/x", "-c", "a"], 2, "port"),
    (["backup", "milvus-lite:///tmp/x.db", "ftp://x/y", "-c", "a"], 2, "store URL scheme"),
    (["backup", "milvus-lite:///tmp/x.db", "file:///tmp/x"], 2, "--collection"),
    (["backup", "milvus-lite:///tmp/x.db", "file:///tmp/x", "-c", "a", "--batch-size", "0"], 2, "--batch-size"),
    (["restore", "file:///nonexistent/store", "milvus-lite:///tmp/x.db"], 4, "does not exist"),
    (["restore", "file:///tmp", "milvus-lite:///tmp/x.db", "--index-params", "vec"], 2, "--index-params"),
])
def test_bad_input_is_one_line_with_exit_code(cli, args, code, needle):
    r = cli(*args)
    assert r.code == code, (r.code, r.stderr)
    assert needle in r.error_line()


def test_unknown_collection(cli, lite, store_dir):
    r = cli("backup", lite.url, store_dir, "-c", "nope")
    assert r.code == 4
    assert "'nope' not found" in r.error_line()
    assert not (store_dir / "manifests").exists()


def test_unreachable_server_and_no_secret_in_output(cli, store_dir):
    secret = "s3cr3t-T0KEN-value"
    r = cli("backup", "milvus://127.0.0.1:1", store_dir, "-c", "x", "--token", secret, "--json")
    assert r.code == 6
    assert "cannot connect to Milvus at milvus://127.0.0.1:1" in r.error_line()
    assert secret not in r.stdout + r.stderr
    assert r.json()["exit_code"] == 6


def test_password_in_url_never_printed(cli, store_dir):
    r = cli("backup", "milvus://root:hunter2pass@127.0.0.1:1", store_dir, "-c", "x")
    assert r.code == 6
    assert "hunter2pass" not in r.stdout + r.stderr


def test_existing_target_is_refused_and_untouched(cli, lite, store_dir, backed_up):
    _, backup = backed_up
    other = lite.new_name("other")
    build_vector_only(lite.client, other, "FLOAT_VECTOR", n=10, seed=9)
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", other)
    assert r.code == 5
    assert "already exists" in r.error_line() and "--drop-existing" in r.stderr
    assert len(read_rows(lite.client, other)) == 10


def test_drop_existing_replaces_only_when_complete(cli, lite, store_dir, backed_up):
    name, backup = backed_up
    assert name in lite.client.list_collections()
    other = lite.new_name("other")
    build_vector_only(lite.client, other, "FLOAT_VECTOR", n=10, seed=9)
    lite.client.create_alias(other, f"{other}_al")
    # a damaged backup: the restore fails and the existing collection is untouched
    victim = _data_files(store_dir)[-1]
    good = victim.read_bytes()
    victim.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", other, "--drop-existing")
    assert r.code == 7, r.stderr
    assert len(read_rows(lite.client, other)) == 10
    assert not [c for c in lite.client.list_collections() if "vbrestore" in c]
    # repaired: --drop-existing replaces it and keeps its alias pointing at the new data
    victim.write_bytes(good)
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", other, "--drop-existing",
            "--json")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, other) == read_rows(lite.client, name)
    assert lite.client.describe_alias(f"{other}_al")["collection_name"] == other


def test_verify_detects_flipped_byte_in_any_object(cli, store_dir, backed_up):
    _, backup = backed_up
    files = _data_files(store_dir)
    assert len(files) == 4
    for f in files:
        good = f.read_bytes()
        for pos in (0, len(good) // 2, len(good) - 1):
            f.write_bytes(good[:pos] + bytes([good[pos] ^ 0x40]) + good[pos + 1 :])
            r = cli("verify", store_dir, backup["backup_id"], "--json")
            assert r.code == 7, (f, pos, r.stderr)
            problems = r.json()["backups"][0]["problems"]
            assert [p["kind"] for p in problems] == ["corrupt"]
            assert problems[0]["key"].endswith(f.name)
        f.write_bytes(good)
    assert cli("verify", store_dir, backup["backup_id"]).code == 0


def test_verify_and_restore_detect_missing_object(cli, lite, store_dir, backed_up):
    _, backup = backed_up
    missing = _data_files(store_dir)[1]
    missing.unlink()
    r = cli("verify", store_dir, backup["backup_id"], "--json")
    assert r.code == 8
    assert r.json()["backups"][0]["problems"][0]["kind"] == "missing"
    target = lite.new_name("t")
    r = cli("restore", store_dir, lite.url, "--as", target)
    assert r.code == 8
    assert "missing" in r.error_line()
    assert target not in lite.client.list_collections()
    assert not [c for c in lite.client.list_collections() if "vbrestore" in c]


def test_truncated_object(cli, store_dir, backed_up):
    _, backup = backed_up
    assert cli("verify", store_dir, backup["backup_id"]).code == 0
    f = _data_files(store_dir)[0]
    f.write_bytes(f.read_bytes()[:100])
    assert cli("verify", store_dir).code == 7


def test_unsupported_format_version(cli, lite, store_dir, backed_up):
    _, backup = backed_up
    assert cli("show", store_dir, backup["backup_id"]).code == 0
    manifest = next((store_dir / "manifests").rglob("*.json"))
    doc = orjson.loads(manifest.read_bytes())
    doc["format_version"] = 99
    manifest.write_bytes(orjson.dumps(doc))
    for args in (["show", store_dir, backup["backup_id"]], ["restore", store_dir, lite.url, "--as", "x"]):
        r = cli(*args)
        assert r.code == 9, r.stderr
        assert "format version 99" in r.error_line() and "upgrade" in r.stderr


def test_corrupt_manifest(cli, store_dir, backed_up):
    manifest = next((store_dir / "manifests").rglob("*.json"))
    manifest.write_bytes(b"{not json")
    r = cli("show", store_dir)
    assert r.code == 7
    assert "not valid JSON" in r.error_line()


class FailingStore(LocalStore):
    """A real local store that fails its Nth data write (a fault injected around a real store)."""

    def __init__(self, root: Path, fail_at: int):
        super().__init__(root, create=True)
        self.puts = 0
        self.fail_at = fail_at

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        if key.startswith("data/"):
            self.puts += 1
            if self.puts == self.fail_at:
                raise VecbackupError("injected failure: disk went away")
        super().put(key, data, if_absent=if_absent)


def test_failed_backup_leaves_no_backup(cli, lite, store_dir):
    name = lite.new_name("src")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    engine = MilvusEngine(parse_milvus_url(lite.url))
    try:
        with pytest.raises(VecbackupError, match="injected"):
            backup_collection(engine, FailingStore(store_dir, fail_at=3), name, batch_size=50)
    finally:
        engine.close()
    assert _data_files(store_dir)  # some chunks were written ...
    r = cli("list", store_dir, "--json")
    assert r.code == 0 and r.json()["backups"] == []  # ... but there is no backup
    assert cli("restore", store_dir, lite.url, "--as", "x").code == 4
    # a re-run reuses the chunks already stored (content-addressed) and commits
    r = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "50", "--json")
    assert r.code == 0, r.stderr
    b = r.json()["backups"][0]
    assert b["bytes_uploaded"] < b["bytes_stored"]


def test_interrupted_process_leaves_no_backup(store_dir, tmp_path):
    """SIGKILL a real backup process mid-way: no manifest, nothing listed."""
    name = "big"
    db = tmp_path / "own.db"  # Milvus Lite lets one process at a time open a file: build it in another
    build_in_own_process(db, "big", n=3000)
    url = f"milvus-lite://{db}"
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", "backup", url, str(store_dir), "-c", name,
                             "--batch-size", "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_data_files(store_dir)) < 3:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert _data_files(store_dir)
    assert not list(store_dir.rglob("manifests/**/*.json"))


def test_delete_keeps_shared_objects(cli, store_dir, backed_up):
    name, first = backed_up
    n_files = len(_data_files(store_dir))
    r = cli("list", store_dir, "--json")  # (lite client keeps the db; a second backup of unchanged data)
    assert len(r.json()["backups"]) == 1
    r2 = cli("backup", r.json()["backups"][0] and f"milvus-lite://{_lite_path(store_dir)}", store_dir, "-c", name,
             "--batch-size", "80", "--json")
    assert r2.code == 0, r2.stderr
    second = r2.json()["backups"][0]
    assert second["bytes_uploaded"] == 0  # same data, same chunks: nothing new stored
    assert len(_data_files(store_dir)) == n_files
    d = cli("delete", store_dir, first["backup_id"], "--json")
    assert d.code == 0 and d.json()["objects_deleted"] == 0 and d.json()["objects_kept"] == n_files
    assert cli("verify", store_dir, second["backup_id"]).code == 0
    d = cli("delete", store_dir, second["backup_id"], "--json")
    assert d.code == 0 and d.json()["objects_deleted"] == n_files
    assert _data_files(store_dir) == []
    assert cli("list", store_dir, "--json").json()["backups"] == []


def _lite_path(store_dir: Path) -> Path:
    return store_dir.parent / "lite.db"


def test_no_traceback_from_the_real_command():
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "vecbackup", "restore", "file:///does/not/exist",
                        "milvus-lite:///tmp/x.db"], capture_output=True, text=True, env=env)
    assert r.returncode == 4
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error:")


def test_sigterm_during_restore_drops_staging(store_dir, tmp_path):
    """A restore stopped by SIGTERM (e.g. a Kubernetes Job deadline) leaves no staging collection."""
    import signal

    db = tmp_path / "own.db"
    build_in_own_process(db, "src", n=4000)
    url = f"milvus-lite://{db}"
    subprocess.run([sys.executable, "-m", "vecbackup", "backup", url, str(store_dir), "-c", "src", "--batch-size",
                    "20", "-q"], check=True)
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", "restore", str(store_dir), url, "--as", "dst"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "restore dst: 4000 rows": the staging collection exists, inserts begin
    assert first.startswith("restore dst"), first
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.fail("restore finished before SIGTERM; make the collection bigger")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    check = subprocess.run([sys.executable, "-c", "from pymilvus import MilvusClient; "
                            f"print(MilvusClient({str(db)!r}).list_collections())"], capture_output=True, text=True)
    assert check.stdout.strip() == "['src']", check.stdout


def test_empty_collection(cli, lite, store_dir):
    from pymilvus import DataType, MilvusClient

    name = lite.new_name("empty")
    s = MilvusClient.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    ip = lite.client.prepare_index_params()
    ip.add_index("v", index_type="HNSW", metric_type="IP")
    lite.client.create_collection(name, schema=s, index_params=ip)
    r = cli("backup", lite.url, store_dir, "-c", name, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["backups"][0]["rows"] == 0 and r.json()["backups"][0]["objects"] == 0
    assert cli("verify", store_dir).code == 0
    r = cli("restore", store_dir, lite.url, "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert lite.client.describe_index(f"{name}_r", "v")["index_type"] == "HNSW"


def test_gc_collects_leftovers_of_a_failed_backup(cli, lite, store_dir):
    name = lite.new_name("src")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    ok = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "100", "--json")
    assert ok.code == 0
    kept = set(_stored_files(store_dir))
    lite.client.insert(name, [{"pk": 10_000 + i, "v": [0.5] * 16, "label": "new"} for i in range(50)])
    engine = MilvusEngine(parse_milvus_url(lite.url))
    try:
        with pytest.raises(VecbackupError):
            backup_collection(engine, FailingStore(store_dir, fail_at=4), name, batch_size=70, full=True)
    finally:
        engine.close()
    leftovers = set(_stored_files(store_dir)) - kept  # data objects and their row digests
    assert leftovers
    young = cli("gc", store_dir, "--json")  # default safety age: everything is too young to delete
    assert young.code == 0 and young.json()["deleted"] == 0 and young.json()["kept_young"] == len(leftovers)
    dry = cli("gc", store_dir, "--min-age", "0s", "--dry-run", "--json")
    assert dry.json()["deleted"] == 0 and len(dry.json()["keys"]) == len(leftovers)
    assert set(_stored_files(store_dir)) == kept | leftovers
    r = cli("gc", store_dir, "--min-age", "0", "--json")
    assert r.code == 0 and r.json()["deleted"] == len(leftovers)
    assert set(_stored_files(store_dir)) == kept
    assert cli("verify", store_dir, ok.json()["backups"][0]["backup_id"]).code == 0
    assert cli("gc", store_dir, "--min-age", "soon").code == 2


def test_a_lite_file_held_by_another_process_is_named_so(cli, tmp_path):
    """Milvus Lite allows one process per file: the error says so (exit 6), and only when another process holds it
    (this process serving the file itself, through a client of its own, is no reason to fail)."""
    held = tmp_path / "held.db"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
                               f"MilvusClient({str(held)!r}).list_collections(); print('open', flush=True); "
                               "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        r = cli("collections", f"milvus-lite://{held}")
        assert r.code == 6 and "is in use by another process" in r.error_line(), r.stderr
    finally:
        holder.kill()
        holder.wait()

    mine = tmp_path / "mine.db"
    client = MilvusClient(str(mine))  # this process serves the file now, and holds its lock
    try:
        assert not _lite_file_locked(str(mine))
        r = cli("collections", f"milvus-lite://{mine}", "--json")
        assert r.code == 0, r.stderr
        engine = MilvusEngine(parse_milvus_url(f"milvus-lite://{mine}"))
        try:  # a channel of its own, without the keepalive pings Milvus Lite's server answers with GOAWAY
            handler = engine.client._get_connection()
            assert handler is not client._get_connection()
            assert handler._grpc_options == _LITE_GRPC_OPTIONS
        finally:
            engine.close()
        assert client.list_collections() == []  # the test's own client is unharmed by the close
    finally:
        client.close()
