"""Reading a versioned bucket as it was (``--as-of``) and bringing deleted objects back (``undelete``), on SeaweedFS
with versioning (issue 25, item 3). Someone who can delete in the bucket deletes every current object, rewrites a
manifest or runs ``vecbackup delete``; the store as of a time before still lists, verifies and restores the newest
backup identical to its source, and ``undelete`` makes it current again."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.datasets import build_rich, read_rows
from tests.integration.common import spawn_cli

PW = "as of, a passphrase"


def _versioned_store(seaweedfs: Any, monkeypatch: pytest.MonkeyPatch, *, lock: bool = False) -> tuple[str, Any]:
    """A new bucket with versioning (through Object Lock, which turns it on, or directly), its store URL and a
    boto3 client for the attacker's hand."""
    name = f"vb{uuid.uuid4().hex[:12]}"
    s3 = seaweedfs.client(attempts=3)
    if lock:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for k, v in seaweedfs.env().items():
        monkeypatch.setenv(k, v)
    return f"s3://{name}/backups?endpoint={seaweedfs.endpoint}&path_style=1", (s3, name)


def _moment() -> str:
    """A time strictly between what was written before and what is written after (S3 keeps whole seconds)."""
    time.sleep(1.2)
    t = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.2)
    return t.isoformat().replace("+00:00", "Z")


def _delete_everything(bucket: tuple[Any, str]) -> int:
    """What an attacker with delete rights does: every current object deleted (on a versioned bucket, a delete
    marker on each)."""
    s3, name = bucket
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name)
            for o in page.get("Contents", [])]
    for k in keys:
        s3.delete_object(Bucket=name, Key=k)
    assert not s3.list_objects_v2(Bucket=name).get("Contents")
    return len(keys)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted-and-locked"])
def test_every_object_deleted_then_restored_as_of_and_undeleted(cli, lite, seaweedfs, monkeypatch, tmp_path,
                                                               encrypted):
    url, bucket = _versioned_store(seaweedfs, monkeypatch, lock=encrypted)
    pw: list[str] = []
    if encrypted:
        (tmp_path / "pw").write_text(PW)
        pw = ["--passphrase-file", str(tmp_path / "pw")]
        r = cli("init", url, "--encrypt", "--object-lock", "governance:1d", *pw)  # and every object it keeps locked
        assert r.code == 0, r.stderr
    name = lite.new_name("asof")
    build_rich(lite.client, name, "lite", n=300)
    first = cli("backup", lite.url, url, "-c", name, "--batch-size", "70", "--json", *pw).json()["backups"][0]
    lite.client.delete(name, filter="id < 50")  # the newest backup differs from the first
    newest = cli("backup", lite.url, url, "-c", name, "--batch-size", "70", "--json", *pw).json()["backups"][0]
    source = read_rows(lite.client, name)
    before = _moment()

    if encrypted:  # the lock is on: each object a backup keeps carries it, a delete only hides it
        s3, bucket_name = bucket
        key = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name, Prefix="backups/data/")["Contents"])
        assert s3.head_object(Bucket=bucket_name, Key=key)["ObjectLockMode"] == "GOVERNANCE"
    assert _delete_everything(bucket) > 10
    assert cli("list", url, "--json", *pw).code != 0 if encrypted else cli("list", url, "--json").json()["backups"] \
        == []

    listed = cli("list", url, "--as-of", before, "--json", *pw)
    assert listed.code == 0, listed.stderr
    assert [b["backup_id"] for b in listed.json()["backups"]] == [first["backup_id"], newest["backup_id"]]
    shown = cli("show", url, "latest", "--as-of", before, "--json", *pw).json()
    assert shown["backup_id"] == newest["backup_id"] and shown["stats"]["rows"] == len(source)
    v = cli("verify", url, "--all", "--read-data", "--as-of", before, "--json", *pw)
    assert v.code == 0, v.stdout + v.stderr
    r = cli("restore", url, lite.url, "--as", f"{name}_then", "--as-of", before, "--json", *pw)
    assert r.code == 0, r.stderr
    assert r.json()["backup_id"] == newest["backup_id"]
    assert read_rows(lite.client, f"{name}_then") == source

    dry = cli("undelete", url, "--as-of", before, "--dry-run", "--json", *pw)
    assert dry.code == 0, dry.stderr
    assert dry.json()["dry_run"] is True and len(dry.json()["restored"]) > 10
    assert cli("list", url, "--json", *pw).code != 0 if encrypted else cli("list", url, "--json").json()["backups"] \
        == []  # a dry run changes nothing
    u = cli("undelete", url, "--as-of", before, "--json", *pw)
    assert u.code == 0, u.stderr
    assert sorted(u.json()["restored"]) == sorted(dry.json()["restored"])
    now = cli("list", url, "--json", *pw).json()["backups"]
    assert [b["backup_id"] for b in now] == [first["backup_id"], newest["backup_id"]]
    assert cli("verify", url, "--all", "--read-data", *pw).code == 0
    r = cli("restore", url, lite.url, "--as", f"{name}_now", "--json", *pw)
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_now") == source
    again = cli("undelete", url, "--as-of", before, "--json", *pw).json()
    assert again["restored"] == [] and again["markers_removed"] == 0  # nothing left to bring back


def test_a_rewritten_manifest_and_a_vecbackup_delete_are_undone(cli, lite, seaweedfs, monkeypatch):
    """An overwritten manifest is read as it was with --as-of (undelete leaves a rewrite as it is and says so); a
    backup removed with `vecbackup delete` (a tombstone, then the manifest deleted) comes back with undelete."""
    url, (s3, bucket) = _versioned_store(seaweedfs, monkeypatch)
    name = lite.new_name("asof2")
    build_rich(lite.client, name, "lite", n=200)
    one = cli("backup", lite.url, url, "-c", name, "--json").json()["backups"][0]
    lite.client.delete(name, filter="id < 30")
    two = cli("backup", lite.url, url, "-c", name, "--json").json()["backups"][0]
    source = read_rows(lite.client, name)
    before = _moment()

    manifests = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="backups/manifests/")["Contents"]]
    newest = next(k for k in manifests if two["backup_id"] in k)
    oldest = next(k for k in manifests if one["backup_id"] in k)
    s3.put_object(Bucket=bucket, Key=newest, Body=b"{}")  # the newest manifest rewritten: unreadable now
    r = cli("verify", url, two["backup_id"])
    assert r.code != 0
    assert cli("delete", url, one["backup_id"], "--json").code == 0  # a tombstone, and the manifest removed
    assert one["backup_id"] not in cli("list", url, "--json").stdout

    shown = cli("show", url, two["backup_id"], "--as-of", before, "--json")
    assert shown.code == 0 and shown.json()["stats"]["rows"] == len(source)
    r = cli("restore", url, lite.url, "-b", two["backup_id"], "--as", f"{name}_then", "--as-of", before)
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_then") == source
    assert one["backup_id"] in cli("list", url, "--as-of", before, "--json").stdout  # no tombstone then

    u = cli("undelete", url, "--as-of", before, "--json")
    assert u.code == 0, u.stderr
    doc = u.json()
    assert oldest.removeprefix("backups/") in doc["restored"]
    assert doc["overwritten"] == [newest.removeprefix("backups/")]
    assert len(doc["tombstones_deleted"]) == 1 and one["backup_id"] in doc["tombstones_deleted"][0]
    listed = [b["backup_id"] for b in cli("list", url, "--json").json()["backups"]]
    assert one["backup_id"] in listed
    assert cli("verify", url, one["backup_id"], "--read-data").code == 0


def test_refusals(cli, lite, seaweedfs, monkeypatch, tmp_path):
    name = lite.new_name("asof3")
    build_rich(lite.client, name, "lite", n=50)
    local = f"file://{tmp_path / 'store'}"
    assert cli("backup", lite.url, local, "-c", name).code == 0
    r = cli("list", local, "--as-of", "1h")
    assert r.code == 9 and "keeps no object versions" in r.error_line()
    r = cli("undelete", local, "--as-of", "1h")
    assert r.code == 9 and "keeps no object versions" in r.error_line()

    plain = f"vb{uuid.uuid4().hex[:12]}"
    seaweedfs.create_bucket(plain)
    for k, v in seaweedfs.env().items():
        monkeypatch.setenv(k, v)
    url = f"s3://{plain}/b?endpoint={seaweedfs.endpoint}&path_style=1"
    assert cli("backup", lite.url, url, "-c", name).code == 0
    r = cli("list", url, "--as-of", "1h")
    assert r.code == 9 and "versioning is off" in r.error_line()

    url, _ = _versioned_store(seaweedfs, monkeypatch)
    for bad, words in (("2026-12-07T05:00:00", "no time zone"), ("2999-01-01T00:00:00Z", "in the future"),
                       ("yesterday", "bad --as-of")):
        r = cli("list", url, "--as-of", bad)
        assert r.code == 2 and words in r.error_line(), r.stderr
    r = cli("verify", url, "--all", "--repair", "--as-of", "1h")
    assert r.code == 2 and "--repair" in r.error_line()
    r = cli("undelete", url, "--as-of", "1h", "--json")  # nothing deleted: nothing to do
    assert r.code == 0 and r.json()["restored"] == []


def test_an_azure_container_whose_blobs_have_no_versions_is_refused(cli, lite, azurite, monkeypatch):
    """On Azure, --as-of and undelete read blob versions (stores/azure.py; their requests are tested in
    tests/unit/test_azure_versions.py). Azurite implements no versioning: it lists every blob without a version id,
    as Azure does where versioning is off, so both are refused in one line saying so, and nothing is changed."""
    name = lite.new_name("asofaz")
    build_rich(lite.client, name, "lite", n=30)
    container = f"vba{uuid.uuid4().hex[:12]}"
    blobs = azurite.create_container(container)
    for k, v in azurite.env().items():
        monkeypatch.setenv(k, v)
    url = f"azure://{container}/backups"
    assert cli("backup", lite.url, url, "-c", name).code == 0
    before = sorted((b.name, b.etag) for b in blobs.list_blobs())
    for command in (("list", url, "--as-of", "1h"), ("restore", url, lite.url, "-c", name, "--as-of", "1h",
                                                     "--as", name + "_r"), ("undelete", url, "--as-of", "1h")):
        r = cli(*command)
        assert r.code == 9 and "versioning is off" in r.error_line(), r.stderr
        assert "Azure: blob versioning on the storage account" in r.stderr
    assert sorted((b.name, b.etag) for b in blobs.list_blobs()) == before
    assert not lite.client.has_collection(name + "_r")


def test_a_killed_undelete_brings_back_no_half_backup_and_its_rerun_completes(cli, lite, seaweedfs, monkeypatch):
    """undelete killed (SIGKILL) while it removes the delete markers: no backup is listed whose objects are not all
    back (data objects and row digests come back before manifests), the exclusive lock it leaves holds a backup off
    (exit 11, one line, nothing written), and once that lock is removed the rerun brings back the rest: the backup
    lists and verifies with --read-data."""
    url, bucket = _versioned_store(seaweedfs, monkeypatch)
    s3, bucket_name = bucket
    name = lite.new_name("asofk")
    build_rich(lite.client, name, "lite", n=1200)
    made = cli("backup", lite.url, url, "-c", name, "--batch-size", "4", "--json")
    assert made.code == 0, made.stderr
    backup_id = made.json()["backups"][0]["backup_id"]
    before = _moment()
    total = _delete_everything(bucket)
    assert total > 500

    def current() -> int:
        return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket_name, Prefix="backups/data/"))

    proc = spawn_cli("undelete", url, "--as-of", before)
    try:
        deadline = time.monotonic() + 120
        while current() < 20:
            assert proc.poll() is None, f"undelete ended before it could be killed: {proc.communicate()[1]}"
            assert time.monotonic() < deadline, "undelete brought nothing back in 120 s"
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -9
    assert 20 <= current() < total  # killed half way

    listed = cli("list", url, "--json")
    assert listed.code == 0, listed.stderr
    for b in listed.json()["backups"]:  # a manifest back only once its data is
        assert cli("verify", url, b["backup_id"], "--read-data").code == 0
    objects = current()
    blocked = cli("backup", lite.url, url, "-c", name)
    assert blocked.code == 11 and "undelete" in blocked.error_line(), blocked.stderr
    assert current() == objects  # nothing written
    assert cli("unlock", url, "--all").code == 0  # it is dead: we killed it

    again = cli("undelete", url, "--as-of", before, "--json")
    assert again.code == 0, again.stderr
    assert [b["backup_id"] for b in cli("list", url, "--json").json()["backups"]] == [backup_id]
    v = cli("verify", url, backup_id, "--read-data")
    assert v.code == 0, v.stdout + v.stderr
