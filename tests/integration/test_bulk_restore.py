"""Restore through the server's own import (`restore --bulk-import-via`) against the real Milvus 2.3 server, which
runs with local storage and so imports files staged in a folder by absolute path. Each restore gives back a
collection identical to the one backed up (every row and field, every partition's keys, the indexes with their
parameters) through numpy files and through row JSON, and leaves no staged file. A task the server cannot run fails
the restore with the server's reason, drops the staging copy, leaves the existing target as it was and deletes the
staged files (staged in SeaweedFS there, whose objects this server cannot open). What the import cannot carry is
refused before anything is created."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from tests.datasets import build_rich, build_vector_only, index_summary, read_keys, read_rows
from tests.integration.common import SESSION_URI, STANDALONE_URL, cli_json, run_cli
from vecbackup.stores import open_raw_store

URL = STANDALONE_URL


def _build_flat(client: MilvusClient, name: str, n: int = 3000) -> None:
    """Every type the numpy files carry: VARCHAR key, float vector (HNSW with parameters), VARCHAR with unicode and
    quotes, JSON, every number type, BOOL, dynamic fields on some rows; two partitions."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=20)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=16)
    s.add_field("t", DataType.VARCHAR, max_length=200)
    s.add_field("j", DataType.JSON)
    for fname, dtype in (("i8", DataType.INT8), ("i16", DataType.INT16), ("i32", DataType.INT32),
                         ("i64", DataType.INT64), ("f", DataType.FLOAT), ("d", DataType.DOUBLE), ("b", DataType.BOOL)):
        s.add_field(fname, dtype)
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="HNSW", metric_type="IP", params={"M": 12, "efConstruction": 48})
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
    client.create_partition(name, "p1")
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(n, 16)).astype(np.float32)
    rows = [{"id": f"k{i:05d}", "v": vecs[i].tolist(), "t": "é\"ü" * (i % 40), "j": {"i": i, "l": [i, "x", None]},
             "i8": i % 256 - 128, "i16": i - 2**15, "i32": 2**31 - 1 - i, "i64": i * 2**40, "f": float(vecs[i][0]),
             "d": i / 7, "b": i % 3 == 0, **({"dyn": {"n": i}} if i % 4 == 0 else {})} for i in range(n)]
    client.insert(name, rows[: n // 2])
    client.insert(name, rows[n // 2:], partition_name="p1")
    client.flush(name)


def _build_arrays(client: MilvusClient, name: str, n: int = 900) -> None:
    """What goes as row JSON: ARRAY fields (of VARCHAR and INT64), with a binary vector, JSON and dynamic fields."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("bv", DataType.BINARY_VECTOR, dim=64)
    s.add_field("words", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=16)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    s.add_field("meta", DataType.JSON)
    ip = client.prepare_index_params()
    ip.add_index("bv", index_type="BIN_IVF_FLAT", metric_type="HAMMING", params={"nlist": 16})
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
    for p in ("p1", "p2"):
        client.create_partition(name, p)
    rng = np.random.default_rng(9)
    rows = [{"pk": i * 11 - 5000, "bv": rng.integers(0, 256, 8).astype(np.uint8).tobytes(),
             "words": ["ünï", "quote\"", "x"][: i % 4], "tags": [2**50 + i, -i][: i % 3], "meta": {"i": i},
             **({"extra": [i, "y"]} if i % 5 == 0 else {})} for i in range(n)]
    for k, p in enumerate(("_default", "p1", "p2")):
        client.insert(name, rows[k::3], partition_name=p)
    client.flush(name)


@pytest.fixture(scope="module")
def sources(standalone: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MilvusClient, Path]]:
    """The collections of this module on the server, each backed up in small objects into one store."""
    client = MilvusClient(standalone.uri)
    store = tmp_path_factory.mktemp("bulk") / "store"
    for name, build in (("bulk_flat", _build_flat), ("bulk_arrays", _build_arrays)):
        if client.has_collection(name):
            client.drop_collection(name)
        build(client, name)
    build_rich(client, "bulk_rich", "standalone", n=120)  # has ARRAY<DOUBLE>
    build_vector_only(client, "bulk_f16", "FLOAT16_VECTOR", n=50)
    build_vector_only(client, "bulk_auto", "FLOAT_VECTOR", n=300, auto_id=True)
    for name in ("bulk_flat", "bulk_arrays", "bulk_rich", "bulk_f16", "bulk_auto"):
        cli_json("backup", URL, store, "-c", name, "--batch-size", "128")
    yield client, store
    client.close()


def _staged(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("name,fmt", [("bulk_flat", "files"), ("bulk_arrays", "files"), ("bulk_flat", "binlog"),
                                      ("bulk_arrays", "binlog"), ("bulk_rich", "binlog")])
def test_import_restores_identical(name: str, fmt: str, sources: tuple[MilvusClient, Path], tmp_path: Path):
    """Over an existing collection (--drop-existing), in several tasks (--bulk-import-mb 1 and many partitions'
    groups): identical rows, partitions and indexes, the staging folder empty, no staging collection left. As
    files, and as the server's own binlogs: there also every type of build_rich (ARRAY<DOUBLE> to the last digit,
    ARRAY of every element type, JSON with nesting and unicode)."""
    client, store = sources
    target, stage = f"{name}_copy", tmp_path / "stage"
    if client.has_collection(target):
        client.drop_collection(target)
    build_vector_only(client, target, "FLOAT_VECTOR", n=10)  # to be replaced
    doc = cli_json("restore", store, URL, "-c", name, "--as", target, "--drop-existing", "--bulk-import-via",
                   stage, "--bulk-import-mb", "1", "--bulk-import-format", fmt)
    try:
        want_rows = read_rows(client, name)
        tasks = 1 if name == "bulk_rich" else 3 if fmt == "files" else len(client.list_partitions(name))
        assert doc["rows"] == len(want_rows) and doc["import_tasks"] >= tasks, doc
        assert read_rows(client, target) == want_rows
        for p in client.list_partitions(name):
            assert read_keys(client, target, p) == read_keys(client, name, p), p
        assert sorted(client.list_partitions(target)) == sorted(client.list_partitions(name))
        assert index_summary(client, target) == index_summary(client, name)
        assert _staged(stage) == []
        assert not [c for c in client.list_collections() if "_vbrestore_" in c]
    finally:
        client.drop_collection(target)


def test_import_into_another_database(sources: tuple[MilvusClient, Path], tmp_path: Path):
    """The import tasks go to the target URL's database, as every other call (pymilvus 3 sends the database per call:
    without it the server looked for the staging collection in the default database)."""
    client, store = sources
    if "bulkdb" not in client.list_databases():
        client.create_database("bulkdb")
    other = MilvusClient(uri=SESSION_URI, db_name="bulkdb")
    try:
        doc = cli_json("restore", store, f"{URL}/bulkdb", "-c", "bulk_flat", "--bulk-import-via", tmp_path / "stage")
        assert doc["rows"] == 3000 and doc["import_tasks"] >= 1
        assert doc["import_format"] == "binlog"  # auto, the default: the server takes the collection's binlogs
        assert "the server imports the rows from its own binlogs (binlog)" in doc["notes"]
        assert read_rows(other, "bulk_flat") == read_rows(client, "bulk_flat")
        assert not client.has_collection("bulk_flat_copy")
    finally:
        if other.has_collection("bulk_flat"):
            other.drop_collection("bulk_flat")
        other.close()


def test_auto_id_with_new_ids(sources: tuple[MilvusClient, Path], tmp_path: Path):
    """Through the files' import an auto-id key goes with --new-ids only (the import assigns keys); every other field
    comes back. With --new-ids and no format, the default (auto) takes the files' import for it."""
    client, store = sources
    code, _, err = run_cli("restore", store, URL, "-c", "bulk_auto", "--as", "bulk_auto_copy", "--bulk-import-via",
                           tmp_path / "stage", "--bulk-import-format", "files")
    assert code == 9 and "--new-ids" in err and not client.has_collection("bulk_auto_copy"), err
    assert "--bulk-import-format binlog" in err  # which would take it
    for extra, chosen in (((), "its own binlogs (binlog)"), (("--new-ids",), "numpy or row-JSON files (files)")):
        plan = cli_json("restore", store, URL, "-c", "bulk_auto", "--as", "bulk_auto_copy", "--bulk-import-via",
                        tmp_path / "stage", "--dry-run", *extra)  # what the default (auto) would stage
        assert f"the server imports the rows from {chosen}" in plan["notes"], plan
    doc = cli_json("restore", store, URL, "-c", "bulk_auto", "--as", "bulk_auto_copy", "--bulk-import-via",
                   tmp_path / "stage", "--new-ids")
    assert doc["import_format"] == "files"
    try:
        def values(name: str) -> list[tuple[Any, ...]]:
            return sorted((r["label"], tuple(r["v"])) for r in read_rows(client, name).values())

        assert values("bulk_auto_copy") == values("bulk_auto")
        assert read_keys(client, "bulk_auto_copy").isdisjoint(read_keys(client, "bulk_auto"))
    finally:
        client.drop_collection("bulk_auto_copy")


def test_binlog_import_keeps_auto_id_keys(sources: tuple[MilvusClient, Path], tmp_path: Path):
    """The binlog import keeps an auto-id collection's recorded keys (the files' import assigns new ones); with
    --new-ids it is refused before anything is created, naming the files' import."""
    client, store = sources
    code, _, err = run_cli("restore", store, URL, "-c", "bulk_auto", "--as", "bulk_auto_copy", "--bulk-import-via",
                           tmp_path / "stage", "--bulk-import-format", "binlog", "--new-ids")
    assert code == 9 and "new ids" in err and "--bulk-import-format files" in err, err
    assert not client.has_collection("bulk_auto_copy")
    doc = cli_json("restore", store, URL, "-c", "bulk_auto", "--as", "bulk_auto_copy", "--bulk-import-via",
                   tmp_path / "stage", "--bulk-import-format", "binlog")
    try:
        assert doc["rows"] == 300
        assert read_rows(client, "bulk_auto_copy") == read_rows(client, "bulk_auto")
        assert _staged(tmp_path / "stage") == []
    finally:
        client.drop_collection("bulk_auto_copy")


@pytest.mark.parametrize("fmt", ["files", "binlog"])
def test_a_failed_import_leaves_the_target_and_no_files(fmt: str, sources: tuple[MilvusClient, Path], seaweedfs: Any,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Staged where this server cannot read (a bucket, while it stores locally): the task fails with the server's
    reason (exit 10), the existing target is as it was, no staging collection or staged object is left. The binlog
    import does not fail there: it finds no segment folder, and completes with no rows (measured on 2.3.5)."""
    client, store = sources
    bucket = seaweedfs.create_bucket(f"bulk-stage-{fmt}")
    for k, v in seaweedfs.env().items():
        monkeypatch.setenv(k, v)
    if client.has_collection("bulk_kept"):
        client.drop_collection("bulk_kept")
    build_vector_only(client, "bulk_kept", "FLOAT_VECTOR", n=25)
    before = read_rows(client, "bulk_kept")
    via = f"s3://{bucket}/restores?endpoint={seaweedfs.endpoint}&path_style=1"
    code, _, err = run_cli("restore", store, URL, "-c", "bulk_flat", "--as", "bulk_kept", "--drop-existing",
                           "--bulk-import-via", via, "--bulk-import-format", fmt)
    try:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        said = "failed" if fmt == "files" else "imported no rows of 1500: the server found none of its files"
        assert code == 10 and len(errors) == 1 and "import task" in errors[0] and said in errors[0], err
        assert "--bulk-import-via must be the bucket" in errors[0] and "Traceback" not in err
        assert read_rows(client, "bulk_kept") == before
        assert not [c for c in client.list_collections() if "_vbrestore_" in c]
        assert list(open_raw_store(via).list("")) == []
    finally:
        client.drop_collection("bulk_kept")


def test_a_killed_binlog_import_leaves_the_target_and_the_rerun_removes_what_it_left(
        sources: tuple[MilvusClient, Path], tmp_path: Path):
    """SIGKILL once the first task's binlogs are staged: the existing target is as it was; the staging collection and
    the staged files stay (nothing can remove them then). The re-run drops the one and deletes the other, saying so
    for each, and restores rows identical to the source, leaving nothing staged."""
    client, store = sources
    target, stage = "bulk_killed", tmp_path / "stage"
    if client.has_collection(target):
        client.drop_collection(target)
    build_vector_only(client, target, "FLOAT_VECTOR", n=25)
    before = read_rows(client, target)
    args = ["restore", str(store), URL, "-c", "bulk_flat", "--as", target, "--drop-existing", "--bulk-import-via",
            str(stage), "--bulk-import-mb", "1", "--bulk-import-format", "binlog"]
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not [
                p for p in _staged(stage) if ".tmp-" not in p.name]:
            time.sleep(0.01)
        assert proc.poll() is None, "the restore ended before it could be killed"
        proc.kill()
        proc.wait()
        staged = [p for p in _staged(stage) if ".tmp-" not in p.name]
        [dead] = [c for c in client.list_collections() if c.startswith(f"{target}_vbrestore_")]
        assert staged and all(f"/vecbackup-import/{dead}/" in p.as_posix() for p in staged)
        assert read_rows(client, target) == before

        doc = cli_json(*args)
        assert doc["dropped"] == [dead] and doc["rows"] == 3000, doc
        assert any(n.startswith(f"dropped {dead!r}: left by a restore into {target!r} that died") for n in doc["notes"])
        assert any(n.startswith("deleted ") and f"the restore that left {dead!r} had staged" in n
                   for n in doc["notes"]), doc["notes"]
        assert read_rows(client, target) == read_rows(client, "bulk_flat")
        assert [p for p in _staged(stage) if ".tmp-" not in p.name] == []
        assert not [c for c in client.list_collections() if "_vbrestore_" in c]
    finally:
        if proc.poll() is None:
            proc.kill()
        client.drop_collection(target)


def test_two_binlog_imports_at_once_through_one_staging_place(sources: tuple[MilvusClient, Path], tmp_path: Path):
    """Two restores through the server's binlog import at the same time, into two targets, staged in the same folder:
    each stages under its own staging collection, neither takes the other's staging collection or staged files for
    a dead run's (their leases name live owners), both give back every row of their source, and nothing is left
    staged or behind."""
    client, store = sources
    stage = tmp_path / "stage"
    jobs = {"bulk_conc_flat": "bulk_flat", "bulk_conc_arrays": "bulk_arrays"}
    for target in jobs:
        if client.has_collection(target):
            client.drop_collection(target)
    procs = {target: subprocess.Popen(
        [sys.executable, "-m", "vecbackup", "restore", str(store), URL, "-c", source, "--as", target,
         "--bulk-import-via", str(stage), "--bulk-import-mb", "1", "--bulk-import-format", "binlog", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for target, source in jobs.items()}
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
            seen |= {c for c in client.list_collections() if "_vbrestore_" in c}
            time.sleep(0.2)
        outs = {target: p.communicate(timeout=60) for target, p in procs.items()}
        for target, (out, err) in outs.items():
            assert procs[target].returncode == 0, err
            doc = json.loads(out)
            assert doc["dropped"] == [] and not any("died" in n for n in doc["notes"]), doc
            assert read_rows(client, target) == read_rows(client, jobs[target])
        assert {c.split("_vbrestore_")[0] for c in seen} == set(jobs)  # both staged at some point
        assert [p for p in _staged(stage) if ".tmp-" not in p.name] == []
        assert not [c for c in client.list_collections() if "_vbrestore_" in c]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        for target in jobs:
            if client.has_collection(target):
                client.drop_collection(target)


@pytest.mark.parametrize("name,fmt,why,other", [
    ("bulk_f16", "files", "'v' is a FLOAT16_VECTOR", None),
    ("bulk_f16", "binlog", "'v' is a FLOAT16_VECTOR", None),
    ("bulk_rich", "files", "'scores' is an ARRAY<DOUBLE>", "--bulk-import-format binlog"),
    ("bulk_f16", "auto", "'v' is a FLOAT16_VECTOR", None),
])
def test_refused_before_anything_is_created(name: str, fmt: str, why: str, other: str | None,
                                            sources: tuple[MilvusClient, Path], tmp_path: Path):
    """Refused with and without --dry-run, exit 9, nothing created; the hint names the other format only where
    it would take the collection."""
    client, store = sources
    for dry in ((), ("--dry-run",)):
        code, _, err = run_cli("restore", store, URL, "-c", name, "--as", f"{name}_copy", "--bulk-import-via",
                               tmp_path / "stage", "--bulk-import-format", fmt, *dry)
        assert code == 9 and why in err and "without --bulk-import-via" in err, err
        assert (other in err) if other else ("--bulk-import-format" not in err), err
    assert not client.has_collection(f"{name}_copy") and _staged(tmp_path / "stage") == []


def test_engines_without_an_import_refuse(tmp_path: Path):
    """Milvus Lite and Qdrant have no import of files: exit 9 before a collection is created."""
    lite = tmp_path / "lite.db"
    client = MilvusClient(str(lite))
    build_vector_only(client, "small", "FLOAT_VECTOR", n=20)
    store = tmp_path / "store"
    cli_json("backup", f"milvus-lite://{lite}", store, "-c", "small")
    for target, why in ((f"milvus-lite://{lite}", "Milvus Lite has no import of files"),
                        (f"qdrant-local://{tmp_path / 'qdrant'}", "has no import of files")):
        code, _, err = run_cli("restore", store, target, "-c", "small", "--as", "small_copy", "--bulk-import-via",
                               tmp_path / "stage")
        assert code == 9 and why in err, err
    assert client.list_collections() == ["small"] and _staged(tmp_path / "stage") == []
    client.close()


def test_binlog_rows_are_visible_whatever_the_clients_clock(sources: tuple[MilvusClient, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    """The binlogs carry the client's time as the rows' insert timestamps. Were the server to keep them, a client
    clock running ahead would hide the rows from its reads (the restore's own count) until the server's clock
    caught up; measured on 2.3.5: with this process's clock an hour ahead the rows are there at once (the import
    writes its own)."""
    import time

    import vecbackup

    client, store = sources
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    r = vecbackup.restore(f"file://{store}", URL, collection="bulk_flat",
                          options=vecbackup.RestoreOptions(target="bulk_flat_clock"),
                          bulk_import=vecbackup.BulkImport(f"file://{tmp_path / 'stage'}", format="binlog"))
    monkeypatch.undo()
    try:
        assert r.rows == 3000 and r.import_format == "binlog"
        assert read_rows(client, "bulk_flat_clock") == read_rows(client, "bulk_flat")
    finally:
        client.drop_collection("bulk_flat_clock")
