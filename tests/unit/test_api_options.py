"""The API checks what the CLI checks, when an option object is made, and its errors name the API's parameters
(``batch_size``); the command line's name its flags (``--batch-size``), from the same checks (vecbackup.words)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import vecbackup
from vecbackup.errors import UsageError
from vecbackup.words import api_words, cli_words, either, param, plural

S = vecbackup.Shard(0, 2)

#: (what is made, what its error names for the API, what it names on the command line)
BAD: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: vecbackup.BackupOptions(batch_size=0), "BackupOptions(batch_size=0)", "--batch-size 0"),
    (lambda: vecbackup.BackupOptions(batch_size="10"), "BackupOptions(batch_size='10')",  # type: ignore[arg-type]
     "--batch-size 10"),
    (lambda: vecbackup.BackupOptions(compression_level=23), "BackupOptions(compression_level=23)",
     "--compression-level 23"),
    (lambda: vecbackup.BackupOptions(parallel=0), "BackupOptions(parallel=0)", "--parallel 0"),
    (lambda: vecbackup.BackupOptions(parallel=65), "BackupOptions(parallel=65)", "--parallel 65"),
    (lambda: vecbackup.BackupOptions(lock_wait=-1), "BackupOptions(lock_wait=-1)", "--lock-wait -1"),
    (lambda: vecbackup.BackupOptions(check_reused=1.5), "BackupOptions(check_reused=1.5)", "--check-reused 1.5"),
    (lambda: vecbackup.BackupOptions(shard=S), "shard needs run", "--shard needs --run"),
    (lambda: vecbackup.BackupOptions(run="r1"), "run needs shard", "--run needs --shard"),
    (lambda: vecbackup.BackupOptions(commit=True), "commit needs shard", "--commit needs --shard"),
    (lambda: vecbackup.BackupOptions(shard=S, run="r1", parallel=2), "parallel and shard do not combine",
     "--parallel and --shard do not combine"),
    (lambda: vecbackup.BackupOptions(shard=S, run="bad run"), "run='bad run' is not a valid run id",
     "--run 'bad run' is not a valid run id"),
    (lambda: vecbackup.BackupOptions(segments_from="file:///x", parallel=2),
     "segments_from reads whole segments in one process: it does not combine with parallel",
     "--segments-from reads whole segments in one process: it does not combine with --parallel"),
    (lambda: vecbackup.RestoreOptions(parallel=0), "RestoreOptions(parallel=0)", "--parallel 0"),
    (lambda: vecbackup.RestoreOptions(shards=0), "RestoreOptions(shards=0)", "--shards 0"),
    (lambda: vecbackup.RestoreOptions(replication_factor=0), "RestoreOptions(replication_factor=0)",
     "--replication-factor 0"),
    (lambda: vecbackup.RestoreOptions(target=""), "RestoreOptions(target='') is not a collection name",
     "--as '' is not a collection name"),
    (lambda: vecbackup.RestoreOptions(duplicate_keys="first"), "duplicate_keys='first' is not keep, shown or",
     "--duplicate-keys 'first' is not keep, shown or"),
    (lambda: vecbackup.RestoreOptions(index_params={"v": 16}),  # type: ignore[dict-item]
     "RestoreOptions(index_params={'v': 16}) is not a parameter dict per field",
     "--index-params {'v': 16} is not a parameter dict per field"),
    (lambda: vecbackup.DrillOptions(min_recall=2), "DrillOptions(min_recall=2)", "--min-recall 2"),
    (lambda: vecbackup.BulkImport("file:///tmp/staging", file_mb=0), "BulkImport(file_mb=0)",
     "--bulk-import-mb 0"),
    (lambda: vecbackup.BulkImport("file:///tmp/staging", format="npy"), "BulkImport(format='npy') is not an import",
     "--bulk-import-format 'npy' is not an import"),
    (lambda: vecbackup.RestoreOptions(import_format="npy"), "RestoreOptions(import_format='npy') is not an import",
     "--bulk-import-format 'npy' is not an import"),
    (lambda: vecbackup.Policy(keep_last=-1), "Policy(keep_last=-1) must not be negative",
     "--keep-last -1 must not be negative"),
    (lambda: vecbackup.Subset(fraction=0), "Subset(fraction=0) is out of range", "Subset(fraction=0)"),
    (lambda: vecbackup.Subset(n=3, of=2), "Subset(n=3, of=2) is out of range", "Subset(n=3, of=2)"),
    (lambda: vecbackup.Subset.parse("0%"), "subset='0%': the percentage must be above 0",
     "--read-data-subset '0%': the percentage must be above 0"),
    (lambda: vecbackup.Subset.parse("x"), "bad subset='x'", "bad --read-data-subset 'x'"),
    # restore's mode rules: the API's, named as each caller names them (the command line's are the same checks)
    (lambda: vecbackup.RestoreMode(shard=S), "shard needs run (the same for every worker",
     "--shard needs --run ID (the same for every worker"),
    (lambda: vecbackup.RestoreMode(commit=True), "commit needs run", "--commit needs --run ID"),
    (lambda: vecbackup.RestoreMode(abandon=True), "abandon needs run", "--abandon needs --run ID"),
    (lambda: vecbackup.RestoreMode(run="r"), "run needs shard (a worker), commit or abandon",
     "--run needs --shard I/N (a worker), --commit or --abandon"),
    (lambda: vecbackup.RestoreMode(run="r", abandon=True, commit=True),
     "abandon gives a run up: it takes neither shard nor commit",
     "--abandon gives a run up: it takes neither --shard nor --commit"),
    (lambda: vecbackup.RestoreMode(run="r", commit=True, dry_run=True), "dry_run writes nothing: it takes no commit",
     "--dry-run writes nothing: it takes no --commit"),
    (lambda: vecbackup.RestoreMode(shard=S, run="a b"), "run='a b' is not a valid run id",
     "--run 'a b' is not a valid run id"),
    (lambda: vecbackup.RestoreMode(shard="0/2", run="r"),  # type: ignore[arg-type]
     "shard='0/2' is not a Shard", "--shard 0/2 is not a Shard"),
    (lambda: vecbackup.RestoreMode(shard=S, run="r", bulk_import=vecbackup.BulkImport("file:///tmp/staging")),
     "bulk_import restores in one process: it takes no run, shard, commit or abandon",
     "--bulk-import-via restores in one process: it takes no --run, --shard, --commit or --abandon"),
    (lambda: vecbackup.RestoreMode(shard=S, run="r").check("latest", "milvus://db:19530", None),
     "a restore by several workers needs backup=ID, not latest",
     "a restore by several workers needs --backup ID, not latest"),
    (lambda: vecbackup.RestoreMode().check("latest", "milvus://db:19530",
                                           vecbackup.RestoreOptions(replication_factor=2)),
     "replication_factor applies to Qdrant targets only", "--replication-factor applies to Qdrant targets only"),
    (lambda: vecbackup.RestoreMode(bulk_import=vecbackup.BulkImport("file:///tmp/staging")).check(
        "latest", "milvus://db:19530", vecbackup.RestoreOptions(parallel=4)),
     "parallel sets inserts in flight; bulk_import imports files instead: drop one",
     "--parallel sets inserts in flight; --bulk-import-via imports files instead: drop one"),
]


@pytest.mark.parametrize("make, api, cli", BAD, ids=[b[1] for b in BAD])
def test_options_are_checked_when_made_and_name_the_parameter(make: Callable[[], Any], api: str, cli: str) -> None:
    with pytest.raises(UsageError) as e:
        make()
    assert api in e.value.message, e.value.message
    assert "--" not in str(e.value), str(e.value)  # neither the message nor the hint names a flag
    with cli_words(), pytest.raises(UsageError) as e:
        make()
    assert cli in e.value.message, e.value.message


def test_good_options_are_made() -> None:
    vecbackup.BackupOptions(batch_size=1, compression_level=22, parallel=64, lock_wait=0.5, check_reused=0)
    vecbackup.BackupOptions(shard=S, run="nightly-1", commit=True)
    vecbackup.RestoreOptions(target="copy", parallel=4, shards=2, replication_factor=1, duplicate_keys="partition:a",
                             index_params={"v": {"M": 16}}, field_params={"t": {"max_length": 9}},
                             collection_params={"consistency_level": "Strong"})
    vecbackup.BulkImport("s3://bucket/staging", file_mb=1)
    vecbackup.Subset(fraction=1.0)
    vecbackup.Subset(n=1, of=1)
    assert vecbackup.Subset.parse(" 2.5% ") == vecbackup.Subset(fraction=0.025)
    assert vecbackup.Subset.parse("3/7") == vecbackup.Subset(n=3, of=7)


@pytest.mark.parametrize("mode, step", [
    (vecbackup.RestoreMode(), "restore"),
    (vecbackup.RestoreMode(bulk_import=vecbackup.BulkImport("file:///tmp/staging")), "restore"),
    (vecbackup.RestoreMode(dry_run=True), "plan"),
    (vecbackup.RestoreMode(shard=S, run="r", dry_run=True), "plan"),
    (vecbackup.RestoreMode(shard=S, run="r"), "shard"),
    (vecbackup.RestoreMode(shard=S, run="r", commit=True), "shard"),
    (vecbackup.RestoreMode(run="r", commit=True), "commit"),
    (vecbackup.RestoreMode(run="r", abandon=True), "abandon"),
])
def test_a_restore_mode_names_the_function_that_runs_it(mode: vecbackup.RestoreMode, step: str) -> None:
    assert mode.step == step
    mode.check("20260101T000000.000000Z-00000000", "qdrant://db:6333", vecbackup.RestoreOptions(replication_factor=2))


def test_the_restoring_functions_check_their_mode_before_opening_anything(tmp_path: Path) -> None:
    """What the command line refused before the API had the rules, the API refuses too: nothing is opened (the
    store and the Milvus Lite file are not there)."""
    store, target = f"file://{tmp_path / 'none'}", f"milvus-lite://{tmp_path / 'x.db'}"
    with pytest.raises(UsageError) as e:
        vecbackup.restore(store, target, options=vecbackup.RestoreOptions(replication_factor=2))
    assert e.value.message == "replication_factor applies to Qdrant targets only"
    with pytest.raises(UsageError) as e:
        vecbackup.restore(store, target, options=vecbackup.RestoreOptions(parallel=2),
                          bulk_import=vecbackup.BulkImport(f"file://{tmp_path / 'staging'}"))
    assert e.value.message.startswith("parallel sets inserts in flight")
    for call in (lambda: vecbackup.restore_shard(store, target, backup="latest", shard=S, run="r"),
                 lambda: vecbackup.commit_restore(store, target, backup="latest", run="r"),
                 lambda: vecbackup.abandon_restore(store, target, backup="latest", run="r")):
        with pytest.raises(UsageError) as e:
            call()
        assert e.value.message == "a restore by several workers needs backup=ID, not latest"
    with pytest.raises(UsageError) as e:
        vecbackup.restore_shard(store, target, backup="B", shard=S, run="no spaces")
    assert e.value.message == "run='no spaces' is not a valid run id"
    assert not (tmp_path / "none").exists() and not (tmp_path / "x.db").exists()


def test_a_backups_options_are_checked_against_the_source_they_name() -> None:
    """What the schedule file's jobs are checked with when it is read, without connecting."""
    vecbackup.BackupOptions(batch_size=16384).check_source("qdrant://db:6333")
    for url in ("milvus://db:19530", "qdrant://db:6333"):
        with pytest.raises(UsageError) as e:
            vecbackup.BackupOptions(batch_size=16385).check_source(url)
    assert e.value.message == "BackupOptions(batch_size=16385) is out of range"


def test_a_batch_above_the_engines_limit_is_named_by_the_api(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    db.touch()
    with pytest.raises(UsageError) as e:  # before the engine is opened
        vecbackup.backup(f"milvus-lite://{db}", f"file://{tmp_path / 's'}", "c",
                         options=vecbackup.BackupOptions(batch_size=10**6))
    assert e.value.message == "BackupOptions(batch_size=1000000) is out of range"
    assert e.value.hint == "use 1 to 16384, the engine's limit"


def test_the_api_names_its_parameters_and_the_cli_its_flags_in_what_it_raises(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        vecbackup.backup("milvus-lite:///x.db", "file:///tmp/s")
    assert e.value.hint == "give collections=[NAME, ...] or all=True"
    with pytest.raises(UsageError) as e:
        vecbackup.init(f"file://{tmp_path / 'enc'}", passphrase=vecbackup.Passphrase("p"))
    assert str(e.value) == ("a passphrase was given but not encrypt=True (add encrypt=True to make an encrypted "
                            "store, or unset the passphrase)")


def test_cli_errors_name_the_flags(cli: Any, tmp_path: Path) -> None:
    """The same checks, from the command line: flags, and (as options are checked when made) before the store is
    opened."""
    r = cli("restore", tmp_path / "no-store", "milvus-lite:///x.db", "--duplicate-keys", "first")
    assert r.code == 2 and r.error_line() == ("error: --duplicate-keys 'first' is not keep, shown or "
                                              "partition:NAME[,NAME...] (docs/COMPATIBILITY.md, \"Keys held by more "
                                              "than one partition\")")
    r = cli("backup", "milvus-lite:///x.db", tmp_path / "s", "-c", "a", "--shard", "0/2")
    assert r.code == 2 and r.error_line() == ("error: --shard needs --run (give every worker of one sharded backup "
                                              "the same --run ID, e.g. the Kubernetes Job's name)")
    r = cli("init", tmp_path / "enc", "--passphrase-file", __file__)
    assert r.code == 2 and "a passphrase was given but not --encrypt" in r.error_line()


def test_words() -> None:
    assert (param("batch_size"), param("batch_size", 0), param("target", "a b", flag="--as", quoted=True),
            param("drop_existing", True), param("lock_wait", 1, of="BackupOptions")) == (
        "batch_size", "batch_size=0", "target='a b'", "drop_existing=True", "BackupOptions(lock_wait=1)")
    with cli_words():
        assert (param("batch_size"), param("batch_size", 0), param("target", "a b", flag="--as", quoted=True),
                param("drop_existing", True), param("lock_wait", 1, of="BackupOptions"),
                either("api", "cli")) == ("--batch-size", "--batch-size 0", "--as 'a b'", "--drop-existing",
                                          "--lock-wait 1", "cli")
        with api_words():
            assert param("batch_size") == "batch_size"
        assert param("batch_size") == "--batch-size"
    assert either("api", "cli") == "api"
    assert [plural(n, "object") for n in (0, 1, 2)] == ["0 objects", "1 object", "2 objects"]
    assert plural(1, "query", "queries") == "1 query" and plural(3, "query", "queries") == "3 queries"


def test_two_things_are_no_longer_both_called_bulk_import() -> None:
    """restore(bulk_import=BulkImport(...)) restores through the server's import; the plan's flag for it is
    RestoreOptions.server_import."""
    import dataclasses
    import inspect

    assert "bulk_import" in inspect.signature(vecbackup.restore).parameters
    fields = {f.name for f in dataclasses.fields(vecbackup.RestoreOptions)}
    assert "bulk_import" not in fields and "server_import" in fields
