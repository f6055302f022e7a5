"""What a newcomer meets first (issue 23): a mistyped source path, a collection name given as a string to the API,
``--json`` on errors click finds before the command runs, and options the API checks when they are built."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

import vecbackup
from tests.conftest import Engine
from vecbackup.errors import UsageError


@pytest.mark.parametrize("command", ["backup", "collections"])
def test_a_mistyped_lite_path_is_not_found_and_nothing_is_created(cli, tmp_path: Path, command: str):
    db = tmp_path / "nonexistent.db"
    args = [command, f"milvus-lite://{db}"] + ([tmp_path / "store", "-c", "docs"] if command == "backup" else [])
    r = cli(*args)
    assert r.code == 4, r.stdout + r.stderr
    assert r.error_line() == f"error: no Milvus Lite database at {db} (check the path: a restore into Milvus Lite " \
                             "creates the file, a backup reads one that exists)"
    assert not db.exists() and not list(tmp_path.glob("*.db"))


def test_a_mistyped_qdrant_local_folder_is_not_found_and_not_created(cli, tmp_path: Path):
    folder = tmp_path / "qdrant"
    r = cli("backup", f"qdrant-local://{folder}", tmp_path / "store", "--all", "--json")
    assert r.code == 4 and f"no Qdrant local-mode folder at {folder}" in r.error_line()
    assert r.json() == {"ok": False, "error": r.error_line().removeprefix("error: "), "exit_code": 4}
    assert not folder.exists()


def test_a_restore_target_may_be_created(cli, lite: Engine, tmp_path: Path):
    name = lite.new_name("fc")
    lite.client.create_collection(name, dimension=4)
    lite.client.insert(name, [{"id": i, "vector": [0.1 * i] * 4} for i in range(5)])
    assert cli("backup", lite.url, tmp_path / "store", "-c", name).code == 0
    target = tmp_path / "new.db"
    r = cli("restore", tmp_path / "store", f"milvus-lite://{target}", "-c", name)
    assert r.code == 0, r.stderr
    assert target.exists()


def test_a_collection_name_given_as_a_string_is_one_name(lite: Engine, tmp_path: Path):
    name = lite.new_name("docs")
    lite.client.create_collection(name, dimension=4)
    lite.client.insert(name, [{"id": i, "vector": [0.1 * i] * 4} for i in range(5)])
    run = vecbackup.backup(lite.url, f"file://{tmp_path / 'store'}", name)
    run.raise_for_failures()
    assert [r.collection for r in run.results] == [name] and run.results[0].rows == 5


@pytest.mark.parametrize("args,message", [
    (["backup", "milvus-lite:///x.db", "/tmp/s", "-c", "a", "--batch-size", "abc"], "Invalid value for '--batch-size'"),
    (["drill", "/tmp/s", "milvus-lite:///x.db", "--min-recall", "2"], "Invalid value for '--min-recall'"),
    (["backup", "--no-such-option"], "No such option: --no-such-option"),
    (["restore", "/tmp/s"], "Missing argument"),
])
def test_json_errors_click_finds_are_one_document_and_one_line(cli, args: list[str], message: str):
    r = cli(*args, "--json")
    assert r.code == 2
    doc = orjson.loads(r.stdout)  # exactly one JSON document
    assert doc["ok"] is False and doc["exit_code"] == 2 and message in doc["error"]
    assert "--help` lists the options" in doc["error"]
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "Usage:" not in r.stderr
    plain = cli(*args)  # without --json: click's usage box, as before
    assert plain.code == 2 and plain.stdout == ""


@pytest.mark.parametrize("kwargs,name", [
    ({"min_recall": 2}, "min_recall"), ({"min_recall": -0.1}, "min_recall"), ({"recall_tolerance": 1.5},
                                                                                "recall_tolerance"),
    ({"top_k": 0}, "top_k"), ({"sample": -1}, "sample"), ({"queries": -3}, "queries"), ({"max_age": -1}, "max_age"),
    ({"max_source_drift": -1}, "max_source_drift"),
])
def test_drill_options_are_checked_when_built_and_name_the_parameter(kwargs: dict[str, object], name: str):
    with pytest.raises(UsageError) as e:
        vecbackup.DrillOptions(**kwargs)  # type: ignore[arg-type]
    assert f"DrillOptions({name}=" in e.value.message and "--" not in e.value.message
    vecbackup.DrillOptions(min_recall=1.0, recall_tolerance=0, top_k=1, sample=0, queries=0, max_age=0)


# -- results say one thing, in Python and in JSON, and the numbers are told apart (item 7); plurals (item 10) -----


def _one_row(lite: Engine, name: str) -> None:
    lite.client.create_collection(name, dimension=4, consistency_level="Strong")
    lite.client.insert(name, [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])


def test_prune_result_and_its_json_list_the_same_backup_ids(cli, lite: Engine, tmp_path: Path):
    name = lite.new_name("pr")
    _one_row(lite, name)
    store = f"file://{tmp_path / 'store'}"
    first = vecbackup.backup(lite.url, store, name).results[0].backup_id
    second = vecbackup.backup(lite.url, store, name).results[0].backup_id
    pruned = vecbackup.prune(store, vecbackup.Policy(keep_last=1), dry_run=True)
    assert pruned.removed == [first] and pruned.kept == [second]
    assert pruned.to_dict()["removed"] == pruned.removed and pruned.to_dict()["kept"] == pruned.kept
    doc = cli("prune", store, "--keep-last", "1", "--json").json()
    assert doc["removed"] == [first] and doc["kept"] == [second]
    r = cli("prune", store, "--keep-last", "1", "--dry-run")
    assert "would remove 0 backups, keep 1; would delete 0 data objects" in r.stdout


def test_one_row_one_object_and_what_the_times_and_bytes_are(cli, lite: Engine, tmp_path: Path):
    """A backup's summary says 1 row, 1 object, that its upload holds the row digests (so it is more than the data)
    and that its time runs to the commit; a restore's that its time runs until the copy is loaded (the progress
    lines on stderr time each step)."""
    name = lite.new_name("one")
    _one_row(lite, name)
    store = tmp_path / "store"
    r = cli("backup", lite.url, store, "-c", name)
    assert r.code == 0, r.stderr
    m = re.fullmatch(rf"backup (\S+) of {name}: 1 row, 1 object, (\d+) B of data \((\d+) B uploaded: 1 new object "
                     r"with its row digests\), committed after \d+\.\ds\n", r.stdout)
    assert m is not None, r.stdout
    result = cli("show", store, "latest", "--json").json()
    assert int(m[2]) == result["stats"]["bytes"] < int(m[3])  # the digests are uploaded beside the data
    assert f"collection {name}  (1 row, 1 object, " in cli("show", store, "latest").stdout
    r = cli("restore", store, lite.url, "--as", f"{name}_copy")
    assert r.code == 0, r.stderr
    assert re.fullmatch(rf"restored backup {m[1]} of {name} into {name}_copy: 1 row, loaded after \d+\.\ds\n",
                        r.stdout), r.stdout
    r = cli("prune", store, "--keep-last", "1", "--dry-run")
    assert "would remove 0 backups, keep 1; would delete 0 data objects (0 B), 0 still used" in r.stdout
