"""Someone who can write the bucket, against real stores (a folder and S3 on SeaweedFS) and Milvus Lite, through
the CLI (issue 20): a shard record replayed from an earlier run or put back beside the current one, an encrypted
store stripped of its settings (a downgrade to plaintext), damaged objects that backups would build on, row digests
that fail authentication, and a deleted backup's manifest put back. Each is refused or repaired; a restore gives
exactly one backup's rows or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_store
from tests.datasets import build_vector_only, read_rows
from vecbackup.errors import AlreadyExists, AuthenticationFailed, CorruptData, MissingData, NotFound
from vecbackup.format import layout
from vecbackup.format.tombstone import TOMBSTONES, tombstone_key
from vecbackup.ops import catalog
from vecbackup.stores import open_raw_store, open_store

PASSPHRASE = "correct horse battery staple, but longer"
TAMPERED = AuthenticationFailed.exit_code  # 14
N = 300


@dataclass
class Setup:
    url: str
    name: str
    lite: Any
    cli: Any

    def raw(self) -> Any:
        return open_raw_store(self.url)

    def store(self) -> Any:
        return open_store(self.url)

    def ok(self, *args: Any) -> dict[str, Any]:
        r = self.cli(*args, "--json")
        assert r.code == 0, r.stdout + r.stderr
        doc: dict[str, Any] = r.json()
        return doc

    def change(self, label: str, seed: int) -> dict[Any, dict[str, Any]]:
        """Give every row a new vector and label (a day passes); the rows as the collection now holds them."""
        rng = np.random.default_rng(seed)
        self.lite.client.upsert(self.name, [{"pk": i, "v": rng.normal(size=16).astype(np.float32).tolist(),
                                             "label": f"{label}-{i}"} for i in range(N)])
        return read_rows(self.lite.client, self.name)

    def restored(self, backup: str, as_: str) -> dict[Any, dict[str, Any]]:
        r = self.cli("restore", self.url, self.lite.url, "--backup", backup, "--as", as_)
        assert r.code == 0, r.stderr
        return read_rows(self.lite.client, as_)


@pytest.fixture(params=["local", "s3"])
def hostile(request: pytest.FixtureRequest, cli: Any, lite: Any, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """An encrypted store (a folder, or an S3 bucket on SeaweedFS) and a Milvus Lite collection of N rows."""
    sut = make_store(request.param, request, tmp_path, monkeypatch)
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    assert cli("init", sut.url, "--encrypt").code == 0
    name = lite.new_name("hostile")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=N)
    yield Setup(sut.url, name, lite, cli)


def _records(raw: Any, name: str, run: str) -> dict[str, bytes]:
    return {i.key: raw.get(i.key) for i in raw.list(f"shards/{name}/{run}/") if not i.key.endswith("/closed.json")}


def _shard(s: Setup, index: int, run: str) -> dict[str, Any]:
    return s.ok("backup", s.lite.url, s.url, "-c", s.name, "--shard", f"{index}/2", "--run", run, "--batch-size",
                "64")


# -- 1. shard records: a run id is used once, and a record is never rewritten -------------------------------------


def test_a_replayed_shard_record_never_restores_a_mix(hostile: Setup) -> None:
    s = hostile
    raw = s.raw()
    day1 = read_rows(s.lite.client, s.name)
    _shard(s, 0, "nightly")
    _shard(s, 1, "nightly")
    kept = {k: v for k, v in _records(raw, s.name, "nightly").items() if "/0001-of-0002." in k}
    assert len(kept) == 1  # the sealed record of shard 1/2, as someone who can read the bucket keeps it
    first = s.ok("commit", s.url, "-c", s.name, "--run", "nightly")
    assert first["committed"] and first["rows"] == N

    day2 = s.change("day2", seed=2)
    # the same run id on day 2 is refused before anything is read or written
    r = s.cli("backup", s.lite.url, s.url, "-c", s.name, "--shard", "0/2", "--run", "nightly")
    assert r.code == AlreadyExists.exit_code and "a run id is used once" in r.error_line(), r.stderr
    assert _records(raw, s.name, "nightly") == {}
    # day 1's record put back: commit finds the run committed; the record is that backup's, so it is cleaned up
    for k, v in kept.items():
        raw.put(k, v)
    again = s.ok("commit", s.url, "-c", s.name, "--run", "nightly")
    assert again["already"] and again["backup_id"] == first["backup_id"]
    assert _records(raw, s.name, "nightly") == {}
    assert [b["backup_id"] for b in s.ok("list", s.url)["backups"]] == [first["backup_id"]]

    # day 2 under a new run id, with day 1's record copied into its folder: it fails authentication (its name is
    # bound to its run and attempt), and nothing is committed
    _shard(s, 0, "nightly-2")
    (old_key, old_bytes), = kept.items()
    planted = old_key.replace("/nightly/", "/nightly-2/")
    raw.put(planted, old_bytes)
    r = s.cli("commit", s.url, "-c", s.name, "--run", "nightly-2")
    assert r.code == TAMPERED and planted in r.error_line(), r.stderr
    raw.delete(planted)
    _shard(s, 1, "nightly-2")
    second = s.ok("commit", s.url, "-c", s.name, "--run", "nightly-2")
    assert s.restored(first["backup_id"], f"{s.name}_d1") == day1
    assert s.restored(second["backup_id"], f"{s.name}_d2") == day2


def test_a_record_put_back_beside_the_current_attempt_is_not_joined(hostile: Setup) -> None:
    """Within one open run: shard 1 backed up, then (the rows changed) backed up again; its first record put back
    beside the second. Commit takes the attempt that replaces the other, so the backup holds the newer rows."""
    s = hostile
    raw = s.raw()
    _shard(s, 1, "open-run")
    early = _records(raw, s.name, "open-run")
    assert len(early) == 1
    now = s.change("later", seed=5)
    _shard(s, 1, "open-run")  # a re-run: a new attempt naming the early one, which it removes
    current = _records(raw, s.name, "open-run")
    assert len(current) == 1 and current.keys() != early.keys()
    _shard(s, 0, "open-run")
    for k, v in early.items():
        raw.put(k, v)
    assert len(_records(raw, s.name, "open-run")) == 3
    c = s.ok("commit", s.url, "-c", s.name, "--run", "open-run")
    assert c["committed"] and c["rows"] == N
    assert _records(raw, s.name, "open-run") == {}  # the superseded record is removed with the others
    assert s.restored(c["backup_id"], f"{s.name}_r") == now


def test_two_records_of_one_shard_that_do_not_know_each_other_are_refused(hostile: Setup) -> None:
    """Two workers of one shard at once (or a record put back that no attempt replaced): commit cannot tell which is
    current and refuses; a re-run of that shard replaces both and the commit goes through."""
    s = hostile
    raw = s.raw()
    _shard(s, 1, "twice")
    first = _records(raw, s.name, "twice")
    for k in first:
        raw.delete(k)
    _shard(s, 1, "twice")  # it did not see the first (as a worker running at the same time would not)
    for k, v in first.items():
        raw.put(k, v)
    _shard(s, 0, "twice")
    r = s.cli("commit", s.url, "-c", s.name, "--run", "twice")
    assert r.code == CorruptData.exit_code and "none replaces the others" in r.error_line(), r.stderr
    assert s.ok("list", s.url)["backups"] == []
    _shard(s, 1, "twice")
    assert s.ok("commit", s.url, "-c", s.name, "--run", "twice")["rows"] == N


def test_an_abandoned_run_is_closed(hostile: Setup) -> None:
    s = hostile
    raw = s.raw()
    _shard(s, 0, "dropped")
    kept = _records(raw, s.name, "dropped")
    s.ok("commit", s.url, "-c", s.name, "--run", "dropped", "--abandon")
    for k, v in kept.items():  # put back
        raw.put(k, v)
    r = s.cli("backup", s.lite.url, s.url, "-c", s.name, "--shard", "1/2", "--run", "dropped")
    assert r.code == AlreadyExists.exit_code and "abandoned" in r.error_line()
    r = s.cli("commit", s.url, "-c", s.name, "--run", "dropped")
    assert r.code == AlreadyExists.exit_code and "abandoned" in r.error_line()


# -- 2. a store whose settings were removed is not written in the clear ---------------------------------------------


def test_a_store_without_its_settings_is_refused_with_or_without_a_passphrase(hostile: Setup, monkeypatch) -> None:
    s = hostile
    backup_id = s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")["backups"][0]["backup_id"]
    raw = s.raw()
    settings = raw.get("vecbackup.json")
    keys = {i.key: raw.get(i.key) for i in raw.list("keys/")}
    raw.delete("vecbackup.json")
    before = sorted(i.key for i in raw.list())

    def refused(*args: Any) -> None:
        r = s.cli(*args)
        assert r.code == TAMPERED, (args, r.stderr)
        assert "no settings file" in r.error_line() and "--recover" in r.error_line()

    monkeypatch.delenv("VECBACKUP_PASSPHRASE")
    refused("backup", s.lite.url, s.url, "-c", s.name)  # the downgrade: no passphrase, so no encryption
    refused("backup", s.lite.url, s.url, "-c", s.name, "--allow-unencrypted")
    refused("list", s.url)
    refused("init", s.url)
    refused("restore", s.url, s.lite.url, "--as", f"{s.name}_r")
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    refused("backup", s.lite.url, s.url, "-c", s.name)
    refused("init", s.url, "--encrypt")
    for k in keys:  # key files gone too: the sealed manifest still says what the store is
        raw.delete(k)
    refused("backup", s.lite.url, s.url, "-c", s.name, "--allow-unencrypted")
    assert sorted(i.key for i in raw.list()) == [k for k in before if not k.startswith("keys/")]  # nothing written
    assert f"{s.name}_r" not in s.lite.client.list_collections()

    # recovery: the key files from the operator's copy, then the settings written again from them
    r = s.cli("init", s.url, "--encrypt", "--recover")
    assert r.code == 13, r.stderr  # no key file: nothing the passphrase opens
    for k, v in keys.items():
        raw.put(k, v)
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", "not the passphrase")
    assert s.cli("init", s.url, "--encrypt", "--recover").code == 13
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    done = s.ok("init", s.url, "--encrypt", "--recover")
    assert done["recovered"] and done["encrypted"]
    assert raw.get("vecbackup.json") == settings
    assert s.cli("verify", s.url, "--read-data").code == 0
    assert [b["backup_id"] for b in s.ok("list", s.url)["backups"]] == [backup_id]


def test_recover_refuses_a_key_file_of_another_store(hostile: Setup, tmp_path: Path) -> None:
    s = hostile
    s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")
    other = f"file://{tmp_path / 'other'}"
    assert s.cli("init", other, "--encrypt").code == 0  # the same passphrase, another repository key
    raw = s.raw()
    raw.delete("vecbackup.json")
    for i in list(raw.list("keys/")):
        raw.delete(i.key)
    for i in open_raw_store(other).list("keys/"):
        raw.put(i.key, open_raw_store(other).get(i.key))
    r = s.cli("init", s.url, "--encrypt", "--recover")
    assert r.code == TAMPERED and "fails authentication" in r.error_line(), r.stderr
    assert not any(i.key == "vecbackup.json" for i in raw.list())


# -- 3 and 5. damaged objects are never built on; --full and verify --repair mend them -------------------------------


def _flip(raw: Any, key: str) -> None:
    data = bytearray(raw.get(key))
    data[len(data) // 2] ^= 0x10
    raw.put(key, bytes(data))


def test_damaged_objects_fail_the_next_backup_and_backup_full_repairs_them(hostile: Setup) -> None:
    s = hostile
    b1 = s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")["backups"][0]
    store, raw = s.store(), s.raw()
    keys = [o.key for o in catalog.find(store, b1["backup_id"]).objects]
    plain = {k: store.get(k) for k in keys}
    assert len(keys) == 4
    for k in keys:
        _flip(raw, k)
    r = s.cli("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")
    assert r.code == TAMPERED, r.stderr
    assert "would reuse" in r.error_line() and "verify --all --repair" in r.error_line()
    assert len(s.ok("list", s.url)["backups"]) == 1  # nothing committed on top of the damage
    r = s.cli("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90", "--check-reused", "0%")
    assert r.code == 0  # (told not to check, it builds on what it reuses: the sample is the guard)

    full = s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90", "--full")["backups"][0]
    assert sorted(full["objects_repaired"]) == sorted(keys) and full["objects_new"] == 0
    assert {k: store.get(k) for k in keys} == plain  # exactly what the clean run wrote
    assert s.cli("verify", s.url, "--all", "--read-data").code == 0  # every backup, the first one included
    assert s.restored(b1["backup_id"], f"{s.name}_r") == read_rows(s.lite.client, s.name)


def test_verify_checks_row_digests_and_repair_removes_what_is_damaged(hostile: Setup) -> None:
    s = hostile
    b1 = s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")["backups"][0]["backup_id"]
    store, raw = s.store(), s.raw()
    objects = catalog.find(store, b1).objects
    digests = layout.digests_key(objects[0].sha256)
    _flip(raw, digests)
    for args in (("verify", s.url, b1), ("verify", s.url, b1, "--read-data")):  # plain verify reads them too
        r = s.cli(*args, "--json")
        assert r.code == TAMPERED, r.stderr
        (problem,) = r.json()["backups"][0]["problems"]
        assert problem["kind"] == "tampered" and problem["key"] == digests
    _flip(raw, objects[1].key)
    r = s.cli("verify", s.url, "--all", "--repair", "--json")
    assert r.code == TAMPERED, r.stderr
    repair = r.json()["repair"]
    assert sorted(repair["removed"]) == sorted([digests, objects[1].key]) and repair["backups"] == [b1]
    left = {i.key for i in raw.list()}
    assert digests not in left and objects[1].key not in left
    assert layout.digests_key(objects[1].sha256) not in left and objects[0].key in left
    assert s.cli("verify", s.url, b1).code == MissingData.exit_code  # the backup that used it is now incomplete
    # the next backup builds on nothing damaged: it uploads those rows again (same rows, same cut: same objects)
    b2 = s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90", "--full")["backups"][0]
    assert b2["objects_new"] == 1
    assert s.cli("verify", s.url, "--all", "--read-data").code == 0  # the first backup is whole again


# -- 4. a deleted backup stays deleted -----------------------------------------------------------------------------


def test_a_deleted_backup_put_back_stays_deleted(hostile: Setup) -> None:
    s = hostile
    ids = []
    for i in range(3):
        s.lite.client.insert(s.name, [{"pk": N + i, "v": [float(i)] * 16, "label": f"x{i}"}])
        ids.append(s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")["backups"][0]["backup_id"])
    raw = s.raw()
    saved = {b: raw.get(layout.manifest_key(s.name, b)) for b in ids}
    s.ok("delete", s.url, ids[2])
    assert any(i.key == tombstone_key(s.name, ids[2]) for i in raw.list(TOMBSTONES))
    raw.put(layout.manifest_key(s.name, ids[2]), saved[ids[2]])  # put back
    assert [b["backup_id"] for b in s.ok("list", s.url)["backups"]] == ids[:2]
    for args in (("restore", s.url, s.lite.url, "--backup", ids[2], "--as", f"{s.name}_r"),
                 ("verify", s.url, ids[2]), ("show", s.url, ids[2])):
        assert s.cli(*args).code == NotFound.exit_code, args
    # nor is it the base of the next backup: that is the newest backup that exists
    nxt = s.ok("backup", s.lite.url, s.url, "-c", s.name, "--batch-size", "90")["backups"][0]
    assert nxt["base"] == ids[1]
    assert s.ok("gc", s.url, "--min-age", "0")["dead_manifests"] == 1  # the manifest put back is removed
    assert not any(i.key == layout.manifest_key(s.name, ids[2]) for i in raw.list(layout.MANIFESTS))

    s.ok("prune", s.url, "--keep-last", "1")
    for b in ids[:2]:
        raw.put(layout.manifest_key(s.name, b), saved[b])
    assert [b["backup_id"] for b in s.ok("list", s.url)["backups"]] == [nxt["backup_id"]]
    assert s.cli("verify", s.url, "--all", "--read-data").code == 0
