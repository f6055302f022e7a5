"""`vecbackup drill` against Milvus Lite: a good backup passes every check; a damaged object, a restore that
loses rows and a live source that drifted away fail it with exit 12, the reason in both reports; the scratch
collection never stays behind."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.datasets import build_rich, build_vector_only, read_rows
from vecbackup.errors import DrillFailed
from vecbackup.ops.drill import CHECKS


def _backup(cli: Any, lite: Any, store_dir: Path, name: str, batch: int = 80) -> str:
    r = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", batch, "--json")
    assert r.code == 0, r.stderr
    return str(r.json()["backups"][0]["backup_id"])


def _drill(cli: Any, lite: Any, store_dir: Path, tmp_path: Path, name: str, *extra: Any) -> tuple[Any, dict[str, Any],
                                                                                                   ET.Element]:
    report, junit = tmp_path / "drill.json", tmp_path / "drill.xml"
    r = cli("drill", store_dir, lite.url, "-c", name, "--report-json", report, "--junit", junit, "--json",
            "--seed", "7", *extra)
    doc = orjson.loads(report.read_bytes())
    assert r.json() == doc  # --json on stdout is the same document as --report-json
    return r, doc, ET.parse(junit).getroot()


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1 and suites[0].get("name") == "vecbackup-drill"
    cases = {str(c.get("name")): c for c in suites[0].findall("testcase")}
    assert list(cases) == list(CHECKS)
    return cases


def _checks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def _no_scratch_left(lite: Any, name: str) -> None:
    left = [c for c in lite.client.list_collections() if c.startswith(f"{name}_drill_") or "_vbrestore_" in c]
    assert not left, left


def test_drill_passes_on_good_backup(cli, lite, store_dir, tmp_path):
    name = lite.new_name("rich")
    build_rich(lite.client, name, "lite", n=300)
    backup_id = _backup(cli, lite, store_dir, name)
    r, doc, root = _drill(cli, lite, store_dir, tmp_path, name, "--source", lite.url, "--sample", "120",
                          "--max-age", "26h")
    assert r.code == 0, r.stderr
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["failures"] == []
    assert doc["backup_id"] == backup_id and doc["collection"] == name and doc["seed"] == 7
    checks = _checks(doc)
    assert {c["status"] for n, c in checks.items() if n != "text_search"} == {"passed"}, checks
    assert checks["text_search"]["message"] == "the collection has no indexed BM25 function"  # skipped
    assert checks["row_count"]["details"] == {"backup_rows": 300, "restored_rows": 300, "source_rows": 300,
                                              "source_drift": 0}
    assert checks["sample_rows"]["details"]["sampled"] == 120
    assert checks["sample_rows"]["details"]["different"] == 0
    search = checks["search_recall"]["details"]
    assert search["field"] == "vec" and search["metric"] == "L2" and search["queries"] == 100
    assert search["exact_rows"] == 300 and search["compared_with_source"] is True
    assert search["restored_recall"] >= 0.95 and search["source_recall"] >= 0.95
    assert 0 <= search["restored_vs_source"] <= 1 and search["min_recall"] is None  # the source decides
    assert doc["rto_seconds"] > 0 and checks["restore"]["details"]["rto_seconds"] == doc["rto_seconds"]
    assert 0 <= doc["rpo_seconds"] < 3600
    assert doc["scratch_dropped"] is True
    _no_scratch_left(lite, name)
    cases = _cases(root)
    assert root.find("testsuite").get("tests") == "6"  # type: ignore[union-attr]
    assert root.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    assert all(c.find("failure") is None and (c.find("skipped") is None) == (n != "text_search")
               for n, c in cases.items())
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["backup_id"] == backup_id and float(props["rto_seconds"] or 0) > 0
    for key in ("restored_recall", "source_recall", "restored_vs_source"):  # the three numbers, in JUnit too
        assert float(props[f"search_recall.{key}"] or -1) == search[key]


def test_drill_without_source_holds_recall_to_the_floor_and_keep(cli, lite, store_dir, tmp_path):
    name = lite.new_name("vec")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    _backup(cli, lite, store_dir, name)
    r, doc, _ = _drill(cli, lite, store_dir, tmp_path, name, "--keep", "--queries", "30")
    assert r.code == 0, r.stderr
    checks = _checks(doc)
    assert checks["search_recall"]["status"] == "passed"
    search = checks["search_recall"]["details"]
    assert "source_recall" not in search and search["min_recall"] == 0.8 and search["queries"] == 30
    assert search["restored_recall"] >= 0.8
    assert "source_rows" not in checks["row_count"]["details"]
    scratch = doc["scratch_collection"]
    assert scratch.startswith(f"{name}_drill_") and doc["scratch_dropped"] is False
    assert lite.client.has_collection(scratch)  # --keep: left for inspection
    lite.client.drop_collection(scratch)


def test_drill_fails_on_corrupted_object(cli, lite, store_dir, tmp_path):
    name = lite.new_name("vec")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    _backup(cli, lite, store_dir, name)
    victim = sorted((store_dir / "data").rglob("*.vbc"))[1]
    good = victim.read_bytes()
    victim.write_bytes(good[:200] + bytes([good[200] ^ 0x40]) + good[201:])
    r, doc, root = _drill(cli, lite, store_dir, tmp_path, name, "--max-age", "26h")
    assert r.code == DrillFailed.exit_code == 12
    assert "error: drill failed: restore:" in r.stderr
    checks = _checks(doc)
    assert doc["ok"] is False and doc["exit_code"] == 12
    assert checks["restore"]["status"] == "failed"
    assert victim.stem in checks["restore"]["message"] and "SHA-256" in checks["restore"]["message"]
    assert [checks[n]["status"] for n in ("row_count", "sample_rows", "search_recall")] == ["skipped"] * 3
    assert checks["backup_age"]["status"] == "passed"
    assert doc["rto_seconds"] is not None
    _no_scratch_left(lite, name)
    cases = _cases(root)
    failure = cases["restore"].find("failure")
    assert failure is not None and "SHA-256" in failure.get("message", "")
    assert all(cases[n].find("skipped") is not None for n in ("row_count", "sample_rows", "search_recall"))
    assert root.find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def _list_every_object_twice(store_dir: Path) -> None:
    """The store's one manifest lists each of its data objects twice (checksums still valid): the backup promises
    every row twice, under the same primary keys."""
    manifest = next((store_dir / "manifests").rglob("*.json"))
    doc = orjson.loads(manifest.read_bytes())
    doc["objects"] = doc["objects"] * 2
    manifest.write_bytes(orjson.dumps(doc))


def test_drill_fails_when_restore_loses_rows(cli, lite, store_dir, tmp_path):
    """A backup that holds every row twice (same primary keys: a manifest listing each data object twice, all
    checksums valid) restores into a copy with half its rows: the target keeps one row per key."""
    name = lite.new_name("vec")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    _backup(cli, lite, store_dir, name)
    _list_every_object_twice(store_dir)
    r, doc, root = _drill(cli, lite, store_dir, tmp_path, name)
    assert r.code == 12, r.stderr
    checks = _checks(doc)
    assert checks["row_count"]["status"] == "failed"
    assert checks["row_count"]["message"] == "restored copy holds 300 rows, the backup 600 (300 lost)"
    assert checks["restore"]["status"] == "failed" and "300 rows" in checks["restore"]["message"]
    assert "row_count: restored copy holds 300 rows" in r.stderr
    failure = _cases(root)["row_count"].find("failure")
    assert failure is not None and "(300 lost)" in failure.get("message", "")
    _no_scratch_left(lite, name)


def test_drill_source_drift(cli, lite, store_dir, tmp_path):
    """Rows the live source gained since the backup are rows a failover to the restored copy would lose:
    reported always, a failure beyond --max-source-drift."""
    name = lite.new_name("vec")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    _backup(cli, lite, store_dir, name)
    # far from every backed-up vector, so the live source's top-k for the backup's rows stays the same
    lite.client.insert(name, [{"pk": 10_000 + i, "v": [1000.0 + i] * 16, "label": "new"} for i in range(40)])
    lite.client.flush(name)
    r, doc, _ = _drill(cli, lite, store_dir, tmp_path, name, "--source", lite.url)
    assert r.code == 0, r.stderr  # informational without --max-source-drift
    assert _checks(doc)["row_count"]["details"]["source_drift"] == 40
    r, doc, root = _drill(cli, lite, store_dir, tmp_path, name, "--source", lite.url, "--max-source-drift", "10",
                          "--max-age", "0s")
    assert r.code == 12
    checks = _checks(doc)
    assert checks["row_count"]["status"] == "failed"
    assert "restored copy has 40 rows fewer than the live source (340 rows)" in checks["row_count"]["message"]
    assert checks["backup_age"]["status"] == "failed" and "--max-age 0h" in checks["backup_age"]["message"]
    assert checks["sample_rows"]["status"] == "passed"
    cases = _cases(root)
    assert cases["row_count"].find("failure") is not None and cases["backup_age"].find("failure") is not None
    _no_scratch_left(lite, name)


@pytest.mark.parametrize("args,needle", [
    (["--max-source-drift", "3"], "--max-source-drift needs --source"),
    (["--max-age", "soon"], "bad duration"),
])
def test_drill_usage_errors(cli, tmp_path, args, needle):
    r = cli("drill", tmp_path / "store", "milvus-lite:///tmp/x.db", *args)
    assert r.code == 2 and needle in r.stderr


def test_drill_qdrant_local(cli, store_dir, tmp_path, memory_tmp_path):
    """The same drill against Qdrant (local mode): points compared by id, search recall by self-hits."""
    import numpy as np
    from qdrant_client import QdrantClient, models

    folder = memory_tmp_path / "qdrant"
    url = f"qdrant-local://{folder}"
    client = QdrantClient(path=str(folder))
    client.create_collection("pts", vectors_config={"emb": models.VectorParams(size=8,
                                                                               distance=models.Distance.EUCLID)})
    rng = np.random.default_rng(5)
    client.upsert("pts", [models.PointStruct(id=i, vector={"emb": rng.normal(size=8).tolist()},
                                             payload={"i": i, "tag": f"t{i % 3}", "f": float(i) / 3})
                          for i in range(200)])
    client.close()  # local mode: one client per folder
    r = cli("backup", url, store_dir, "-c", "pts", "--json")
    assert r.code == 0, r.stderr
    report = tmp_path / "q.json"
    r = cli("drill", store_dir, url, "-c", "pts", "--source", url, "--report-json", report, "--json")
    assert r.code == 0, r.stderr
    checks = _checks(orjson.loads(report.read_bytes()))
    assert {c["status"] for n, c in checks.items() if n != "text_search"} == {"passed"}, checks
    assert checks["text_search"]["message"] == "the collection has no indexed BM25 function"  # skipped
    assert checks["sample_rows"]["details"]["sampled"] == 100
    assert checks["search_recall"]["details"]["source_recall"] == 1.0  # local mode searches exactly
    client = QdrantClient(path=str(folder))
    assert [c.name for c in client.get_collections().collections] == ["pts"]
    client.close()


def test_a_restore_with_the_wrong_row_count_never_replaces_the_target(cli, lite, store_dir):
    """The same backup with every object listed twice restores into a copy with half the rows it promises: with
    --drop-existing, that copy is counted before it would take the target's name, so the existing collection stays
    as it was and no staging collection is left."""
    name = lite.new_name("vec")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    _backup(cli, lite, store_dir, name)
    _list_every_object_twice(store_dir)
    target = lite.new_name("old")
    build_vector_only(lite.client, target, "FLOAT_VECTOR", n=40, seed=9)
    before, collections = read_rows(lite.client, target), set(lite.client.list_collections())
    r = cli("restore", store_dir, lite.url, "-c", name, "--as", target, "--drop-existing")
    assert r.code == 1, r.stderr
    assert "holds 300 rows, the backup 600" in r.error_line()
    assert read_rows(lite.client, target) == before and len(before) == 40
    assert set(lite.client.list_collections()) == collections


CHANGED = "changed-in-restore"


class _ChangeOneRow:
    """The progress of a drill's restore that, once every row is in the staging collection, changes one row's label
    there: the restored copy then differs from the backup in that row, as after a faulty restore."""

    def __init__(self, client: Any, source: str, key: str) -> None:
        self.client, self.source, self.key = client, source, key
        self.changed = False

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, rows: int, nbytes: int = 0) -> None:
        pass

    def phase(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def finish(self) -> None:  # the first: the rows are in (later ones end the phases that follow)
        if self.changed:
            return
        self.changed = True
        (staging,) = [c for c in self.client.list_collections() if "_drill_" in c and "_vbrestore_" in c]
        (row,) = self.client.query(self.source, filter=f'pk == "{self.key}"', output_fields=["pk", "v", "label"])
        self.client.upsert(staging, [{**row, "label": CHANGED}])


@pytest.mark.parametrize("encrypted,extra,values", [(True, [], "hashed"), (True, ["--report-values"], "shown"),
                                                    (False, [], "shown")], ids=["encrypted", "asked", "plain"])
def test_a_differing_row_is_reported_hashed_on_an_encrypted_store(cli, lite, tmp_path, monkeypatch, encrypted, extra,
                                                                  values):
    """A restored row that differs from the backup: on an encrypted store the JSON and JUnit reports, the message and
    stdout carry its key and values only as keyed hashes (hmac-sha256:..., which api.report_hash gives an operator
    who can open the store, for a row they hold); --report-values, or an unencrypted store, shows them."""
    name = lite.new_name("vals")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=120, pk_varchar=True)
    store = tmp_path / "store"
    if encrypted:
        monkeypatch.setenv("VECBACKUP_PASSPHRASE", "a passphrase for the drill report test")
        assert cli("init", store, "--encrypt").code == 0
    _backup(cli, lite, store, name)
    key, was = "key-00007", "l7"  # build_vector_only's label of row 7
    monkeypatch.setattr("vecbackup.ui.TerminalProgress", lambda: _ChangeOneRow(lite.client, name, key))
    r, doc, root = _drill(cli, lite, store, tmp_path, name, "--sample", "120", "--queries", "0", *extra)
    assert r.code == 12, r.stderr
    sample = _checks(doc)["sample_rows"]
    assert sample["status"] == "failed" and sample["details"]["different"] == 1
    (diff,) = sample["details"]["differences"]
    texts = [orjson.dumps(doc).decode(), (tmp_path / "drill.xml").read_text(), r.stdout, r.stderr]
    _no_scratch_left(lite, name)
    if values == "shown":
        assert diff == {"key": repr(key), "fields": ["label"], "backup": {"label": repr(was)},
                        "restored": {"label": repr(CHANGED)}}
        assert all(key in t for t in texts) and doc.get("values", "shown") == "shown"
        return
    for t in texts:
        assert "key-0" not in t and CHANGED not in t and repr(was) not in t
    import hashlib

    import vecbackup
    from vecbackup.ops.drill.report import canonical

    opened = vecbackup.open_store(f"file://{store}")
    hashed = {v: vecbackup.report_hash(opened, v) for v in (key, was, CHANGED)}
    assert diff == {"key": hashed[key], "fields": ["label"], "backup": {"label": hashed[was]},
                    "restored": {"label": hashed[CHANGED]}}
    assert all(h.startswith("hmac-sha256:") and len(h) == 12 + 16 for h in hashed.values())
    assert len(set(hashed.values())) == 3
    plain = hashlib.sha256(canonical(key)).hexdigest()[:16]  # keyed: not the plain hash a guess would give
    assert not [t for t in texts if plain in t]
    assert hashed[key] in r.error_line() and "fields label" in r.error_line()
    assert doc["values"] == "hashed" and {p.get("name"): p.get("value") for p in root.iter("property")}[
        "values"] == "hashed"
