"""Segment backups (``backup --segments-from``) against the real Milvus 2.3 server: its sealed segments read from its
own local storage, restored identical onto the server, Milvus Lite and Qdrant local mode; incremental by segment
(only new segments read; unchanged ones by their keys and timestamps alone); encrypted stores; a base whose segment
record lies; what cannot be read from segments (Milvus Lite, Qdrant) refused in one line."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from qdrant_client import QdrantClient

from tests.conftest import Engine
from tests.datasets import DIM, build_rich, read_keys, read_rows
from tests.integration.common import STANDALONE_URL

pytestmark = pytest.mark.standalone


def storage_url(standalone: Any) -> str:
    """The 2.3 server's local storage (``milvus-server --data DIR`` keeps it in DIR/data)."""
    return f"file://{standalone.data_dir / 'data'}"


def _more(client: Any, name: str, start: int, n: int, partition: str, seed: int) -> list[dict[str, Any]]:
    """``n`` rows like build_rich's (2.3 kind) from key ``start``, inserted into ``partition`` and flushed: one more
    sealed segment."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(start, start + n):
        rows.append({"id": i, "vec": rng.normal(size=DIM).astype(np.float32).tolist(), "title": f"t{i}",
                     "meta": {"i": i}, "tags": [i, -i], "words": ["w", str(i)], "scores": [i / 3],
                     "i8": i % 100, "i16": i % 1000, "i32": i, "f": float(np.float32(i / 7)), "d": i * 1.5,
                     "b": bool(i % 2), **({"color": "blue"} if i % 3 == 0 else {})})
    client.insert(name, rows, partition_name=partition)
    client.flush(name)
    return rows


def build(client: Any, name: str) -> None:
    """build_rich's collection (every type the 2.3 server holds, three partitions, dynamic fields) with more sealed
    segments, deleted rows and upserted ones."""
    build_rich(client, name, "standalone", n=600)
    _more(client, name, 100_000, 300, "p1", 1)
    _more(client, name, 200_000, 200, "_default", 2)
    client.delete(name, filter="id in [-1000, -993, 100000, 100001, 200199]")
    upserted = _more(client, name, 300_000, 5, "p2", 3)  # then rewritten: delete + insert in one segment
    client.upsert(name, [{**r, "title": "upserted"} for r in upserted], partition_name="p2")
    client.flush(name)


@contextmanager
def on_server(standalone: Any, prefix: str) -> Iterator[tuple[Any, str]]:
    """A client of the 2.3 server and a new collection name; after, the collection and the copies restored from it
    (``<name>_...``) dropped and the client closed."""
    from pymilvus import MilvusClient

    server = MilvusClient(uri=standalone.uri)
    name = f"{prefix}_{random.randrange(1 << 30)}"
    try:
        yield server, name
    finally:
        for c in server.list_collections():
            if c == name or c.startswith(f"{name}_"):
                server.drop_collection(c)
        server.close()


@contextmanager
def built_on_server(standalone: Any, prefix: str) -> Iterator[tuple[Any, str, Any]]:
    """build()'s collection on the 2.3 server under a new name: (an engine connected to the server, the name, the
    reader of its segment files), the engine closed and the collection dropped after."""
    from vecbackup import api
    from vecbackup.engines.milvus.segment_reader import segment_reader

    with on_server(standalone, prefix) as (server, name):
        engine = api.connect(STANDALONE_URL, existing=True)
        try:
            build(server, name)
            yield engine, name, segment_reader(engine, storage_url(standalone))
        finally:
            engine.close()


def vectors_only(server: Any, name: str, n: int, seed: int) -> None:
    """A collection of ``n`` rows of 4-d vectors, keys 0 to n - 1, in one partition: one sealed segment, which
    nothing merges."""
    server.create_collection(name, dimension=4)
    rng = np.random.default_rng(seed)
    server.insert(name, [{"id": i, "vector": rng.normal(size=4).tolist()} for i in range(n)])
    server.flush(name)


def _backup(cli: Any, store: Any, name: str, storage: str, *extra: Any) -> dict[str, Any]:
    r = cli("backup", STANDALONE_URL, store, "-c", name, "--segments-from", storage, "--json", *extra)
    assert r.code == 0, r.stdout + r.stderr
    doc: dict[str, Any] = r.json()["backups"][0]
    return doc


def _flip_a_byte(root: Path, objects: list[dict[str, Any]]) -> str:
    """Change a byte in the middle of the first of a backup's data objects (as ``show --json`` lists them) in a
    local store: its key."""
    key: str = objects[0]["key"]
    path = root / key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    return key


def _same_as_source(source: Any, name: str, target: Any, copy: str) -> None:
    assert read_rows(target, copy) == read_rows(source, name)
    for p in ("_default", "p1", "p2"):
        assert read_keys(target, copy, p) == read_keys(source, name, p)


def test_segment_backup_restores_identical_on_the_server_and_lite(cli, standalone, lite: Engine, store_dir: Path):
    """A segment backup on top of a logical one (the rows the logical backup holds are named in its objects, the
    others stored), restored onto the server (rows, and through the server's binlog import) and onto Lite, and
    drilled."""

    with on_server(standalone, "seg") as (server, name):
        build(server, name)
        built = time.time()
        expected = server.query(name, filter="", output_fields=["count(*)"],
                                consistency_level="Strong")[0]["count(*)"]
        r = cli("backup", STANDALONE_URL, store_dir, "-c", name, "--json")
        assert r.code == 0, r.stderr
        logical = r.json()["backups"][0]
        b = _backup(cli, store_dir, name, storage_url(standalone), "--batch-size", "100")
        assert b["rows"] == expected == 600 + 300 + 200 + 5 - 5
        assert b["bytes_read"] > 0
        # every batch of 100 rows of a segment is found in the logical backup's objects: its live rows there, and
        # only its rows deleted since (the segments hold them, the logical backup does not) stored
        assert b["base"] == logical["backup_id"] and b["rows_reused"] == b["rows"]
        assert 0 < b["objects_new"] <= 10  # one per batch holding some of the 10 deleted (5 upserted) rows
        assert b["bytes_uploaded"] < logical["bytes_uploaded"] * 0.15  # 8.6% seen
        assert any(f"found in the objects of backup {logical['backup_id']}" in n for n in b["notes"])
        shown = cli("show", store_dir, b["backup_id"], "--json").json()
        assert len(shown["segments"]) >= 4 and shown["options"]["mode"] == "segments"
        assert built - 1 < (shown["options"]["flush_ts"] >> 18) / 1000 < time.time()  # the backup's own flush
        assert sum(s["rows"] for s in shown["segments"]) > b["rows"]  # the deleted rows are in the objects
        assert cli("verify", store_dir, b["backup_id"], "--read-data").code == 0

        r = cli("restore", store_dir, STANDALONE_URL, "-b", b["backup_id"], "--as", f"{name}_r")
        assert r.code == 0, r.stderr
        _same_as_source(server, name, server, f"{name}_r")
        assert read_rows(server, f"{name}_r")[300_000]["title"] == "upserted"

        # through the server's binlog import (the default of --bulk-import-via on 2.3): the chunks written as binlogs
        stage = store_dir.parent / f"{name}_stage"
        r = cli("restore", store_dir, STANDALONE_URL, "-b", b["backup_id"], "--as", f"{name}_b", "--bulk-import-via",
                stage, "--json")
        assert r.code == 0, r.stderr
        assert r.json()["import_format"] == "binlog" and r.json()["rows"] == expected
        _same_as_source(server, name, server, f"{name}_b")
        assert not [p for p in stage.rglob("*") if p.is_file()]

        r = cli("restore", store_dir, lite.url, "-b", b["backup_id"], "--as", name, "--index-fallback")
        assert r.code == 0, r.stderr
        _same_as_source(server, name, lite.client, name)

        report = cli("drill", store_dir, STANDALONE_URL, "-b", b["backup_id"], "--json").json()
        assert report["ok"], report["failures"]

        key = _flip_a_byte(store_dir, shown["objects"])  # damaged in the bucket: verify names it
        r = cli("verify", store_dir, b["backup_id"], "--read-data")
        assert r.code == 7 and key in r.stdout + r.stderr, r.stdout + r.stderr


def test_segment_backup_into_qdrant(cli, standalone, store_dir: Path, memory_tmp_path: Path):
    """Qdrant point ids are unsigned: a collection of non-negative keys, several segments, deletes and upserts."""
    from tests.datasets import build_rich

    with on_server(standalone, "segq") as (server, name):
        build_rich(server, name, "standalone", n=3)  # the schema (and 3 rows with negative keys, deleted next)
        server.delete(name, filter="id < 0")
        _more(server, name, 0, 150, "p1", 7)
        _more(server, name, 1000, 120, "_default", 8)
        server.delete(name, filter="id in [3, 1005]")
        upserted = _more(server, name, 2000, 4, "p2", 9)
        server.upsert(name, [{**r, "title": "upserted"} for r in upserted], partition_name="p2")
        server.flush(name)
        b = _backup(cli, store_dir, name, storage_url(standalone))
        qpath = memory_tmp_path / "q"
        r = cli("restore", store_dir, f"qdrant-local://{qpath}", "-b", b["backup_id"])
        assert r.code == 0, r.stderr
        q = QdrantClient(path=str(qpath))
        try:
            points, _ = q.scroll(name, limit=5000, with_payload=True, with_vectors=True)
            source = read_rows(server, name)
            partition_of = {k: part for part in ("_default", "p1", "p2") for k in read_keys(server, name, part)}
            assert len(source) == 150 + 120 + 4 - 2 and {int(p.id) for p in points} == set(source)
            for p in points:  # every field: the vector bit for bit, the others (dynamic ones too) as the payload
                row = dict(source[int(p.id)])
                vec = row.pop("vec")
                assert row.pop("id") == int(p.id)
                assert np.array_equal(np.asarray(p.vector["vec"], dtype=np.float32), np.asarray(vec, dtype=np.float32))
                assert p.payload == {**row, "_partition": partition_of[int(p.id)]}, p.id
            assert {p.payload["title"] for p in points if int(p.id) >= 2000} == {"upserted"}
        finally:
            q.close()


def test_incremental_segment_backups_read_only_what_changed(cli, standalone, tmp_path: Path):

    pw = tmp_path / "pw"
    pw.write_text("segments, encrypted\n")
    store = tmp_path / "enc"
    assert cli("init", store, "--encrypt", "--passphrase-file", pw).code == 0
    with on_server(standalone, "seginc") as (server, name):
        build(server, name)
        first = _backup(cli, store, name, storage_url(standalone), "--passphrase-file", pw)
        assert first["base"] is None and first["rows_reused"] == 0

        unchanged = _backup(cli, store, name, storage_url(standalone), "--passphrase-file", pw)
        assert unchanged["rows"] == first["rows"]
        listed = [{(seg["id"], seg["fingerprint"]) for seg in
                   cli("show", store, b["backup_id"], "--json", "--passphrase-file", pw).json()["segments"]}
                  for b in (first, unchanged)]
        if listed[0] == listed[1]:  # the server compacted nothing in between (2.3 may, on its own timer)
            assert unchanged["bytes_uploaded"] == 0 and unchanged["rows_reused"] == first["rows"]
            assert unchanged["bytes_read"] < first["bytes_read"] / 10  # keys and timestamps only

        server.delete(name, filter="id in [-979, -972, 100010]")
        _more(server, name, 400_000, 10, "p1", 4)
        changed = server.query(name, filter="id in [100020, 200030]", output_fields=["*"])
        server.upsert(name, [{**r, "title": "upserted after the first backup"} for r in changed if r["id"] == 100020],
                      partition_name="p1")
        server.upsert(name, [{**r, "title": "upserted after the first backup"} for r in changed if r["id"] == 200030])
        server.flush(name)
        third = _backup(cli, store, name, storage_url(standalone), "--passphrase-file", pw)
        assert third["rows"] == first["rows"] - 3 + 10
        # the server may compact segments at any time (2.3 merges small ones on its own): whatever it did, a
        # segment read from the same files is reused piece for piece, only the others are read and uploaded
        shown = [cli("show", store, b["backup_id"], "--json", "--passphrase-file", pw).json()
                 for b in (first, third)]
        before = {(seg["id"], seg["fingerprint"]): seg["pieces"] for seg in shown[0]["segments"]}
        kept = [seg for seg in shown[1]["segments"] if (seg["id"], seg["fingerprint"]) in before]
        assert kept and all(seg["pieces"] == before[(seg["id"], seg["fingerprint"])] for seg in kept)
        new_keys = {p[0] for seg in shown[1]["segments"] if seg not in kept for p in seg["pieces"]}
        old_keys = {p[0] for pieces in before.values() for p in pieces}
        assert third["objects_new"] == len(new_keys - old_keys)
        read_rows_ = sum(seg["rows"] for seg in shown[1]["segments"] if seg not in kept)
        deleted = sum(seg["rows"] for seg in shown[1]["segments"]) - third["rows"]  # held in objects, not selected
        assert third["rows_reused"] >= sum(seg["rows"] for seg in kept) - deleted
        if len(kept) == len(before):  # no compaction: only the 10 new rows and the 2 upserted were read and uploaded
            assert read_rows_ == 10 + 2 and third["rows_reused"] == first["rows"] - 3 - 2
            assert third["bytes_uploaded"] < first["bytes_uploaded"] / 5
        r = cli("restore", store, STANDALONE_URL, "--as", f"{name}_r", "--passphrase-file", pw)
        assert r.code == 0, r.stderr
        _same_as_source(server, name, server, f"{name}_r")
        restored = read_rows(server, f"{name}_r")
        assert restored[100020]["title"] == restored[200030]["title"] == "upserted after the first backup"
        assert cli("verify", store, "--passphrase-file", pw, "--read-data").code == 0
        key = _flip_a_byte(store, shown[1]["objects"])
        r = cli("verify", store, third["backup_id"], "--passphrase-file", pw, "--read-data")
        assert r.code == 14 and key in r.stdout + r.stderr, r.stdout + r.stderr  # sealed: tampering, named


def test_a_base_whose_segment_record_names_other_objects_is_caught(cli, standalone, store_dir: Path):
    """Someone who can write the bucket swaps two pieces of a segment record in the newest manifest: the next backup
    reads the pieces back against the keys in the server's files and refuses to build on it."""

    with on_server(standalone, "seglie") as (server, name):
        build_rich(server, name, "standalone", n=3)  # the schema; then two sealed segments of 250 rows
        _more(server, name, 100_000, 250, "p1", 1)
        _more(server, name, 200_000, 250, "_default", 2)
        b = _backup(cli, store_dir, name, storage_url(standalone), "--batch-size", "100")
        path = store_dir / b["manifest"]
        doc = orjson.loads(path.read_bytes())
        seg = next(s for s in doc["segments"] if len(s["pieces"]) >= 2 and
                   s["pieces"][0][3] == s["pieces"][1][3])
        seg["pieces"][0], seg["pieces"][1] = seg["pieces"][1], seg["pieces"][0]
        path.write_bytes(orjson.dumps(doc))
        r = cli("backup", STANDALONE_URL, store_dir, "-c", name, "--segments-from", storage_url(standalone),
                "--check-reused", "100%")
        assert r.code == 7, r.stdout + r.stderr
        assert "does not hold the rows the base backup's segment record says" in r.error_line()
        assert len(list((store_dir / "manifests").rglob("*.json"))) == 1  # nothing committed
        full = _backup(cli, store_dir, name, storage_url(standalone), "--full")
        assert full["rows"] == b["rows"]


def test_a_piece_whose_rows_are_all_deleted_is_not_read_back_once_its_object_is_gone(cli, standalone,
                                                                                    store_dir: Path):
    """Every row of a piece deleted: the manifest stops listing its object, so deleting the backups that listed it
    removes it (as gc would); the segment's record still names it, and the next backup, which reuses the segment,
    neither reads it back (every piece sampled) nor misses it."""

    with on_server(standalone, "segdead") as (server, name):
        vectors_only(server, name, 250, 5)
        first = _backup(cli, store_dir, name, storage_url(standalone), "--batch-size", "25")
        server.delete(name, filter="id < 25")  # the segment's first 25 rows (10%: no compaction)
        server.flush(name)
        second = _backup(cli, store_dir, name, storage_url(standalone), "--batch-size", "25")
        shown = [cli("show", store_dir, b["backup_id"], "--json").json() for b in (first, second)]
        assert [(g["id"], g["fingerprint"]) for g in shown[0]["segments"]] == \
            [(g["id"], g["fingerprint"]) for g in shown[1]["segments"]]  # the same files: the record reused
        listed = {o["key"] for o in shown[1]["objects"]}
        [dead] = [p[0] for g in shown[1]["segments"] for p in g["pieces"] if p[0] not in listed]
        assert second["rows"] == 225 and second["rows_reused"] == 225
        assert cli("delete", store_dir, first["backup_id"]).code == 0
        assert not (store_dir / dead).exists()
        third = _backup(cli, store_dir, name, storage_url(standalone), "--batch-size", "25", "--check-reused", "100%")
        assert third["rows"] == third["rows_reused"] == 225 and third["objects_checked"] >= 9
        assert cli("verify", store_dir, "--read-data").code == 0
        r = cli("restore", store_dir, STANDALONE_URL, "--as", f"{name}_r")
        assert r.code == 0, r.stderr
        assert read_keys(server, f"{name}_r", "_default") == set(range(25, 250))


def test_row_digests_of_a_logical_base_changed_in_the_bucket_are_not_trusted(cli, standalone, tmp_path: Path):
    """Someone who can write an encrypted store swaps the row digests of two objects of the logical backup a segment
    backup builds on, and changes a byte of a third's: sealed and bound to their names, none of them is believed.
    The segment backup says so, stores those rows anew, and restores identical."""

    pw = tmp_path / "pw"
    pw.write_text("digests, encrypted\n")
    store = tmp_path / "enc"
    assert cli("init", store, "--encrypt", "--passphrase-file", pw).code == 0
    with on_server(standalone, "segvbd") as (server, name):
        vectors_only(server, name, 300, 7)
        r = cli("backup", STANDALONE_URL, store, "-c", name, "--batch-size", "100", "--json", "--passphrase-file", pw)
        assert r.code == 0, r.stderr
        logical = r.json()["backups"][0]
        vbd = sorted((store / "digests").rglob("*.vbd"))
        assert len(vbd) == 3  # one per object of 100 rows
        first, second = vbd[0].read_bytes(), vbd[1].read_bytes()
        vbd[0].write_bytes(second)
        vbd[1].write_bytes(first)
        third = bytearray(vbd[2].read_bytes())
        third[len(third) // 2] ^= 1
        vbd[2].write_bytes(bytes(third))
        b = _backup(cli, store, name, storage_url(standalone), "--batch-size", "100", "--passphrase-file", pw)
        assert b["base"] == logical["backup_id"] and b["rows"] == 300 and b["rows_reused"] == 0
        assert any("row digests of 3 objects" in n and "damaged" in n for n in b["notes"]), b["notes"]
        r = cli("restore", store, STANDALONE_URL, "--as", f"{name}_r", "--passphrase-file", pw)
        assert r.code == 0, r.stderr
        assert read_rows(server, f"{name}_r") == read_rows(server, name)
        verified = cli("verify", store, "--all", "--read-data", "--passphrase-file", pw, "--json")
        assert verified.code == 14  # the logical backup's changed digests, named


def test_a_killed_worker_process_fails_the_backup_in_one_line_and_the_rerun_completes(standalone, tmp_path: Path):
    """A worker process killed outright (SIGKILL: what the kernel's OOM killer does) while the segments are decoded:
    the backup fails with one line naming the segment and what to do, commits nothing, and leaves no worker behind;
    the next run, with workers again, completes and reuses what the failed one stored."""
    import multiprocessing
    import os
    import signal
    import threading

    from vecbackup import api
    from vecbackup.errors import VecbackupError
    from vecbackup.ops.segment_backup import backup_segments

    with built_on_server(standalone, "segworkkill") as (engine, name, reader):
        store = api.open_store(f"file://{tmp_path / 'store'}", create=True)
        outcome: list[BaseException | Any] = []

        def run() -> None:
            try:
                outcome.append(backup_segments(engine, reader, store, name, batch_size=16, workers=2))
            except BaseException as e:
                outcome.append(e)

        before = {p.pid for p in multiprocessing.active_children()}
        backup = threading.Thread(target=run)
        backup.start()
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and backup.is_alive() and time.monotonic() < deadline:
            workers = [p for p in multiprocessing.active_children() if p.pid not in before and p.pid is not None]
            if workers:
                killed = workers[0].pid
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.005)
        backup.join(180)
        assert killed is not None, "the backup ended before a worker could be killed"
        [error] = outcome
        assert isinstance(error, VecbackupError), repr(error)
        assert "a worker process decoding segment" in str(error) and "ended unexpectedly" in str(error), str(error)
        assert "\n" not in str(error) and error.hint == "back up again; the objects stored so far are reused"
        assert not list((tmp_path / "store").rglob("manifests/**/*.json"))
        assert not [p for p in multiprocessing.active_children() if p.pid not in before]  # none left running

        r = backup_segments(engine, reader, store, name, batch_size=16, workers=2)
        assert r.rows == 1100 and r.manifest_key
        [checked] = api.verify(store, depth="read-data")
        assert checked.ok, checked


def test_a_killed_segment_backup_leaves_no_backup_and_the_rerun_uploads_only_what_is_missing(standalone,
                                                                                              store_dir: Path):
    """SIGKILL in the middle of the copy: objects but no manifest (nothing that looks like a backup); the next run
    reads the segments again and uploads only the pieces (and their row digests) the killed one did not. On top of
    a logical backup, with rows deleted since in its segment: the killed run stored the deleted rows' chunks of the
    batches it found there, the rerun names them (and the base's rows) again, and the result reads back whole."""

    def files() -> dict[str, int]:  # a write the kill cut short stays a temporary file
        return {f.relative_to(store_dir).as_posix(): f.stat().st_size
                for d in ("data", "digests") for f in (store_dir / d).rglob("*")
                if f.is_file() and ".tmp-" not in f.name}

    with on_server(standalone, "segkill") as (server, name):
        cmd = [sys.executable, "-m", "vecbackup", "backup", STANDALONE_URL, str(store_dir), "-c", name]
        args = [*cmd, "--segments-from", storage_url(standalone), "--batch-size", "2"]
        build_rich(server, name, "standalone", n=3)
        _more(server, name, 100_000, 250, "_default", 1)  # (a backup reads "_default" first)
        r = subprocess.run([*cmd, "--json"], capture_output=True, text=True)  # the logical base
        assert r.returncode == 0, r.stderr
        logical = orjson.loads(r.stdout)["backups"][0]
        base_keys = {o["key"] for o in orjson.loads(next(store_dir.rglob("manifests/**/*.json")).read_bytes())[
            "objects"]}
        dead = list(range(100_000, 100_250, 7))  # every seventh: in 36 of the 125 batches of 2
        server.delete(name, ids=dead)
        _more(server, name, 200_000, 250, "p1", 2)
        manifests = set(store_dir.rglob("manifests/**/*.json"))
        data = store_dir / "data"
        before = sum(1 for f in data.rglob("*") if f.is_file())
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and \
                sum(1 for f in data.rglob("*") if f.is_file() and ".tmp-" not in f.name) < before + 10:
            time.sleep(0.01)
        assert proc.poll() is None, "the backup ended before it could be killed"
        proc.kill()
        proc.wait()
        present = files()
        assert set(store_dir.rglob("manifests/**/*.json")) == manifests  # nothing that looks like a backup
        r = subprocess.run([*args, "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        b = orjson.loads(r.stdout)["backups"][0]
        assert b["rows"] == logical["rows"] - len(dead) + 250
        assert b["base"] == logical["backup_id"]
        assert b["rows_reused"] == logical["rows"] - len(dead)  # every live row of the base found, by the rerun too
        after = files()
        assert before + 10 <= sum(1 for k in present if k.startswith("data/")) < sum(1 for k in after
                                                                                     if k.startswith("data/"))
        assert {k: after[k] for k in present} == present  # what the killed run wrote is kept, not written again
        shown = orjson.loads((store_dir / b["manifest"]).read_bytes())
        deleted_rows = {piece[0] for seg in shown["segments"] for piece in seg["pieces"]
                        if len(piece) == 5 and piece[0] not in base_keys}  # the found batches' deleted rows
        assert deleted_rows & set(present), "the killed run stored none of them"
        assert b["bytes_uploaded"] == sum(size for k, size in after.items() if k not in present) > 0
        assert subprocess.run([sys.executable, "-m", "vecbackup", "verify", str(store_dir), "--read-data"],
                              capture_output=True).returncode == 0


def comparable(store: Any, manifest_key: str) -> dict[str, Any]:
    """A backup's manifest as written, but for what differs between two backups of the same files: its id, its
    times (the flush's among them), and the note that the server changed segments meanwhile."""
    from vecbackup.format.manifest import Manifest

    doc: dict[str, Any] = orjson.loads(Manifest.from_json(store.get(manifest_key)).to_json())
    for key in ("backup_id", "started_at", "completed_at"):
        assert doc.pop(key)
    assert doc["options"].pop("flush_ts")
    doc["notes"] = [n for n in doc["notes"] if not n.startswith("the segments changed while")]
    return doc


def _tree(root: Path) -> dict[str, bytes]:
    return {f.relative_to(root).as_posix(): f.read_bytes() for d in ("data", "digests") for f in (root / d).rglob("*")
            if f.is_file()}


def test_worker_processes_store_what_one_process_stores(standalone, tmp_path: Path):
    """The segments decoded and encoded by worker processes or in this process: the same objects, byte for byte,
    and the same manifest but for the backup's id and times. A binlog that does not decode fails either way with
    the same one-line CorruptData (exit 7), and nothing is committed."""
    import shutil

    from vecbackup import api
    from vecbackup.engines.milvus.segment_reader import segment_reader
    from vecbackup.errors import CorruptData
    from vecbackup.ops.segment_backup import backup_segments

    with built_on_server(standalone, "segwork") as (engine, name, reader):
        for attempt in range(3):  # the server may compact segments between the two backups (2.3 does, on its timer)
            docs = {}
            for workers in (1, 2):
                folder = tmp_path / f"w{workers}_{attempt}"
                store = api.open_store(f"file://{folder}", create=True)
                r = backup_segments(engine, reader, store, name, batch_size=64, workers=workers)
                assert r.rows == 1100 and r.objects_new > 10  # several pieces of several segments
                docs[workers] = comparable(store, r.manifest_key)
            if [s["id"] for s in docs[1]["segments"]] == [s["id"] for s in docs[2]["segments"]]:
                break
        assert docs[1] == docs[2]
        assert _tree(tmp_path / f"w1_{attempt}") == _tree(tmp_path / f"w2_{attempt}") != {}

        # on top of a logical backup (one, copied into both stores): every batch found in its objects, and only the
        # rows deleted since stored, taken from the batch as read, or decoded from a worker's chunk: the same again
        from vecbackup.ops.backup import backup_collection

        logical = tmp_path / "logical"
        backup_collection(engine, api.open_store(f"file://{logical}", create=True), name)
        for attempt in range(3):
            docs = {}
            for workers in (1, 2):
                folder = tmp_path / f"l{workers}_{attempt}"
                shutil.copytree(logical, folder)
                store = api.open_store(f"file://{folder}")
                r = backup_segments(engine, reader, store, name, batch_size=64, workers=workers)
                assert r.rows == r.rows_reused == 1100 and 0 < r.objects_new <= 10
                docs[workers] = comparable(store, r.manifest_key)
            if [s["id"] for s in docs[1]["segments"]] == [s["id"] for s in docs[2]["segments"]]:
                break
        assert docs[1] == docs[2]
        assert _tree(tmp_path / f"l1_{attempt}") == _tree(tmp_path / f"l2_{attempt}")

        copy = tmp_path / "storage"  # the server's files with one binlog of the vectors damaged
        shutil.copytree(standalone.data_dir / "data" / "insert_log", copy / "insert_log")
        shutil.copytree(standalone.data_dir / "data" / "delta_log", copy / "delta_log", dirs_exist_ok=True)
        last = reader.segments(engine.describe(name).spec)[-1].files[-1]  # (field id, path, size)
        damaged = copy / last[1]
        damaged.write_bytes(damaged.read_bytes()[:-200])
        bad = segment_reader(engine, f"file://{copy}")
        errors = []
        for workers in (1, 2):
            store = api.open_store(f"file://{tmp_path / f'bad{workers}'}", create=True)
            with pytest.raises(CorruptData) as e:
                backup_segments(engine, bad, store, name, batch_size=64, workers=workers, full=True)
            assert e.value.__cause__ is None and e.value.__traceback__ is not None
            errors.append(str(e.value))
            assert not list((tmp_path / f"bad{workers}").rglob("manifests/**/*.json"))
        assert errors[0] == errors[1] and "binlog" in errors[0] and "\n" not in errors[0]


def test_sources_without_segment_files_are_refused_in_one_line(cli, lite: Engine, store_dir: Path,
                                                               tmp_path: Path):
    name = lite.new_name("seg")
    lite.client.create_collection(name, dimension=4)
    r = cli("backup", lite.url, store_dir, "-c", name, "--segments-from", f"file://{tmp_path}")
    assert r.code == 9 and "Milvus Lite" in r.error_line() and "keeps no segment files" in r.error_line()
    (tmp_path / "q").mkdir()
    r = cli("backup", f"qdrant-local://{tmp_path / 'q'}", store_dir, "--all", "--segments-from", f"file://{tmp_path}")
    assert r.code == 9 and "keeps no Milvus segment files" in r.error_line()
    r = cli("backup", lite.url, store_dir, "-c", name, "--segments-from", f"file://{tmp_path}", "--parallel", "2")
    assert r.code == 2 and "--parallel" in r.error_line()
    assert not list(store_dir.rglob("*.json")) or not (store_dir / "manifests").exists()


def test_a_partition_key_collection(cli, standalone, store_dir: Path):
    """Its segments are in the server's own partitions (one per key bucket); the backup's rows are routed by the
    engine again on restore, as every backup of such a collection."""
    from pymilvus import DataType

    with on_server(standalone, "segpk") as (server, name):
        s = server.create_schema(auto_id=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
        ip = server.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        server.create_collection(name, schema=s, index_params=ip, num_partitions=4)
        rng = np.random.default_rng(3)
        for start in (0, 300):
            server.insert(name, [{"id": i, "tenant": f"t{i % 7}", "v": rng.random(4).tolist()}
                                 for i in range(start, start + 300)])
            server.flush(name)
        server.delete(name, filter="id in [1, 2, 301]")
        server.flush(name)
        b = _backup(cli, store_dir, name, storage_url(standalone))
        assert b["rows"] == 597
        shown = cli("show", store_dir, b["backup_id"], "--json").json()
        assert {o["partition"] for o in shown["objects"]} == {""}
        assert len({seg["partition"] for seg in shown["segments"]}) > 1  # the server's key buckets
        r = cli("restore", store_dir, STANDALONE_URL, "-b", b["backup_id"], "--as", f"{name}_r")
        assert r.code == 0, r.stderr
        assert read_rows(server, f"{name}_r") == read_rows(server, name)


def test_a_segment_backup_into_a_locked_bucket_extends_the_lock_of_what_it_reuses(cli, standalone, seaweedfs,
                                                                                   monkeypatch):
    """Object lock follows reuse in a segment backup as in a backup by rows (issue 25): every object the first writes
    carries the store's lock; the next, which reuses the unchanged segments' pieces, reads the lock of each object it
    names but did not write and extends the one that ends too soon (an old object: its lock shortened here, as an
    administrator could in governance mode), so that every object its manifest names is locked past its own end."""
    from datetime import UTC, datetime, timedelta

    from tests.integration.test_object_lock import LockBucket
    from vecbackup.format import layout

    for k, v in seaweedfs.env().items():
        monkeypatch.setenv(k, v)
    b = LockBucket(seaweedfs)
    assert cli("init", b.url, "--object-lock", "governance:2d").code == 0
    with on_server(standalone, "seglock") as (server, name):
        build(server, name)
        _backup(cli, b.url, name, storage_url(standalone))
        data = [k for k in b.listed() if k.startswith((layout.DATA, layout.DIGESTS))]
        assert data and all(b.lock_of(k)[0] == "GOVERNANCE" for k in data)
        soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        b.s3.put_object_retention(Bucket=b.bucket, Key="backups/" + data[0], BypassGovernanceRetention=True,
                                  Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon})

        t0 = datetime.now(UTC)
        second = _backup(cli, b.url, name, storage_url(standalone))
        assert second["rows_reused"] > 0 and second["objects_lock_checked"] > 0
        assert second["objects_lock_extended"] >= 1
        until = datetime.strptime(second["retain_until"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert until >= t0 + timedelta(days=2)
        named = cli("show", b.url, second["backup_id"], "--json").json()["objects"]
        for key in [o["key"] for o in named] + [layout.digests_key(o["sha256"]) for o in named]:
            assert b.lock_of(key)[1] >= t0 + timedelta(days=2), key  # the shortened one extended
