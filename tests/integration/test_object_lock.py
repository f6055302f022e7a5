"""Object lock (issue 25: retention on write, retention that follows reuse, refusals) end to end through the CLI,
against Milvus Lite and SeaweedFS buckets created with Object Lock enabled.

What SeaweedFS (4.x, as tests/seaweedfs.py starts it) does, found by a probe and relied on here: it creates buckets
with ``ObjectLockEnabledForBucket`` (and turns versioning on), answers GetObjectLockConfiguration (Enabled; on a
bucket without it ObjectLockConfigurationNotFoundError), stores the mode and retain-until date of a PUT and of a
multipart upload and returns them from HeadObject and GetObjectRetention, extends them with PutObjectRetention and
refuses to shorten them (AccessDenied; governance too, unless BypassGovernanceRetention), refuses to delete a locked
version (AccessDenied) and turns a DELETE without a version into a delete marker, and refuses lock headers on a
bucket without Object Lock (InvalidRequest). So the tests read back what the server stored, per object; where a test
needs an object whose lock ends sooner (an old object), it shortens a governance lock with BypassGovernanceRetention,
as an administrator could, or writes the object without a lock, as vecbackup did before the store had one. Every
date is checked against the test's own clock readings before and after the command, never a duration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.datasets import build_vector_only, read_rows
from vecbackup.errors import AlreadyExists, Unsupported
from vecbackup.format import layout
from vecbackup.ops.lock import acquire
from vecbackup.stores import open_store

DAY = timedelta(days=1)
SLACK = timedelta(seconds=2)  # S3 dates are whole seconds


class LockBucket:
    """A fresh SeaweedFS bucket (Object Lock enabled, or not) and the store URL of a prefix in it."""

    def __init__(self, server: Any, locked: bool = True) -> None:
        self.server = server
        self.bucket = f"vbl{uuid.uuid4().hex[:12]}"
        kwargs = {"ObjectLockEnabledForBucket": True} if locked else {}
        server.client(attempts=3).create_bucket(Bucket=self.bucket, **kwargs)
        self.url = f"s3://{self.bucket}/backups?endpoint={server.endpoint}&path_style=1"
        self.s3 = server.client(attempts=3)

    def listed(self) -> list[str]:
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="backups/"):
            out += [o["Key"][len("backups/"):] for o in page.get("Contents") or []]
        return sorted(out)

    def lock_of(self, key: str) -> tuple[str | None, datetime | None]:
        r = self.s3.head_object(Bucket=self.bucket, Key="backups/" + key)
        until = r.get("ObjectLockRetainUntilDate")
        return r.get("ObjectLockMode"), None if until is None else until.astimezone(UTC)


@pytest.fixture
def s3env(seaweedfs, monkeypatch) -> Any:
    for k, v in seaweedfs.env().items():
        monkeypatch.setenv(k, v)
    return seaweedfs


def _within(until: datetime | None, before: datetime, after: datetime, days: int) -> bool:
    return until is not None and before + days * DAY - SLACK <= until <= after + days * DAY + SLACK


def test_init_records_the_lock_and_every_object_a_backup_keeps_carries_it(cli, lite, s3env):
    """init --object-lock compliance:35d writes it in vecbackup.json (no encryption member), locked itself; every
    object of a backup (data, digests, manifest), read back one by one, has mode COMPLIANCE until now + 35 days; a
    store lock carries none."""
    b = LockBucket(s3env)
    t0 = datetime.now(UTC)
    r = cli("init", b.url, "--object-lock", "compliance:35d", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["object_lock"] == {"mode": "compliance", "days": 35} and r.json()["encrypted"] is False
    settings = orjson.loads(b.s3.get_object(Bucket=b.bucket, Key="backups/vecbackup.json")["Body"].read())
    assert settings["object_lock"] == {"mode": "compliance", "days": 35} and "encryption" not in settings
    assert settings["version"] == 1

    name = lite.new_name("lock")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    r = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--json")
    t1 = datetime.now(UTC)
    assert r.code == 0, r.stderr
    keys = b.listed()
    kinds = {k.split("/")[0] for k in keys}
    assert kinds == {"vecbackup.json", "data", "digests", "manifests"}, keys
    for key in keys:
        mode, until = b.lock_of(key)
        assert mode == "COMPLIANCE" and _within(until, t0, t1, 35), (key, mode, until)

    store = open_store(b.url)
    lock = acquire(store, "backup", exclusive=False)
    try:
        assert lock.info.key.startswith(layout.LOCKS)
        assert b.lock_of(lock.info.key) == (None, None)
    finally:
        lock.release()
    assert not [k for k in b.listed() if k.startswith(layout.LOCKS)]  # released: removable, as it was not locked

    r = cli("restore", b.url, lite.url, "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)


def test_a_reused_object_whose_lock_ends_sooner_is_extended_before_the_commit(cli, lite, s3env):
    """A 40-day-old object under a 35-day policy: its lock ends before the new backup's. The incremental backup that
    reuses it extends it (and every reused object, all written before it started) to at least its own end, now + 35
    days at its start, rounded up to the next UTC midnight, and says how many it extended and to when; its manifest
    is locked from its commit. A third backup on the same UTC day finds them long enough and extends none."""
    b = LockBucket(s3env)
    assert cli("init", b.url, "--object-lock", "governance:35d").code == 0
    name = lite.new_name("reuse")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    first = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--json")
    assert first.code == 0, first.stderr
    data = [k for k in b.listed() if k.startswith((layout.DATA, layout.DIGESTS))]
    old = data[0]
    soon = (datetime.now(UTC) + DAY).replace(microsecond=0)
    b.s3.put_object_retention(Bucket=b.bucket, Key="backups/" + old, BypassGovernanceRetention=True,
                              Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon})
    assert b.lock_of(old)[1] == soon

    t0 = datetime.now(UTC)
    second = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--json")
    t1 = datetime.now(UTC)
    assert second.code == 0, second.stderr
    result = second.json()["backups"][0]
    assert result["objects_new"] == 0 and result["objects_reused"] == 3
    assert result["objects_lock_checked"] == len(data) == 6 and result["objects_lock_extended"] == 6
    target = datetime.strptime(result["retain_until"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert target.time() == datetime.min.time() and t0 + 35 * DAY <= target <= t1 + 36 * DAY
    for key in data:
        assert b.lock_of(key) == ("GOVERNANCE", target), key
    assert _within(b.lock_of(layout.manifest_key(name, result["backup_id"]))[1], t0, t1, 35)

    t2 = datetime.now(UTC)
    third = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--json")
    assert third.code == 0, third.stderr
    same_day = (t2 + 35 * DAY).date() == (t0 + 35 * DAY).date() and (t2 + 35 * DAY).time() != datetime.min.time()
    assert third.json()["backups"][0]["objects_lock_extended"] == (0 if same_day else 6)
    assert all(b.lock_of(k)[1] >= target for k in data)


def test_object_lock_chosen_for_a_store_with_unlocked_backups_locks_them_as_they_are_reused(cli, lite, s3env):
    """A plain store backed up before it had a lock (its objects carry none), then init --object-lock: the next
    backup locks every object it reuses in compliance mode, to its own end rounded up to the next UTC midnight."""
    b = LockBucket(s3env)
    name = lite.new_name("late")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=200)
    assert cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100").code == 0
    data = [k for k in b.listed() if k.startswith((layout.DATA, layout.DIGESTS))]
    assert all(b.lock_of(k) == (None, None) for k in data)
    r = cli("init", b.url, "--object-lock", "compliance:10d", "--json")
    assert r.code == 0, r.stderr
    t0 = datetime.now(UTC)
    r = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--json")
    t1 = datetime.now(UTC)
    assert r.code == 0, r.stderr
    assert r.json()["backups"][0]["objects_lock_extended"] == len(data) == 4
    for k in data:
        mode, until = b.lock_of(k)
        assert mode == "COMPLIANCE" and until is not None and until.time() == datetime.min.time() \
            and t0 + 10 * DAY <= until <= t1 + 11 * DAY, (k, mode, until)


def test_refusals_write_nothing(cli, s3env, tmp_path: Path):
    """--object-lock on a bucket without Object Lock, and on a folder: exit 9, one line naming what to enable (or
    that the store cannot), nothing written; a bad MODE:DAYS is exit 2; settings are written once (exit 5)."""
    plain = LockBucket(s3env, locked=False)
    r = cli("init", plain.url, "--object-lock", "compliance:35d")
    assert r.code == Unsupported.exit_code == 9
    line = r.error_line()
    assert "Object Lock" in line and "--object-lock-enabled-for-bucket" in line
    assert plain.listed() == []

    folder = tmp_path / "folder"
    r = cli("init", f"file://{folder}", "--object-lock", "compliance:35d")
    assert r.code == 9 and "not supported on" in r.error_line() and not folder.exists()

    b = LockBucket(s3env)
    for bad in ("compliance", "forever:3d", "compliance:0d", "governance:35", "compliance:99999d"):
        r = cli("init", b.url, "--object-lock", bad)
        assert r.code == 2 and "--object-lock" in r.error_line(), (bad, r.stderr)
    assert b.listed() == []
    assert cli("init", b.url, "--object-lock", "compliance:35d").code == 0
    r = cli("init", b.url, "--object-lock", "governance:35d")
    assert r.code == AlreadyExists.exit_code and "written once" in r.error_line()
    assert cli("init", b.url, "--object-lock", "compliance:35d").code == 0  # the same: ready, as it is


def test_an_encrypted_store_with_object_lock_works_end_to_end(cli, lite, s3env, tmp_path: Path):
    """init --encrypt --object-lock: vecbackup.json has both members; the key file, the settings and every sealed
    object are locked; backup, verify --read-data and restore work; an older vecbackup would read it (encryption
    is there)."""
    pw = tmp_path / "pw"
    pw.write_text("object lock passphrase\n")
    b = LockBucket(s3env)
    t0 = datetime.now(UTC)
    r = cli("init", b.url, "--encrypt", "--object-lock", "compliance:7d", "--passphrase-file", pw, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["encrypted"] is True and r.json()["object_lock"] == {"mode": "compliance", "days": 7}
    settings = orjson.loads(b.s3.get_object(Bucket=b.bucket, Key="backups/vecbackup.json")["Body"].read())
    assert set(settings) == {"format", "version", "repository", "encryption", "object_lock"}
    name = lite.new_name("enclock")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=250)
    r = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--passphrase-file", pw, "--json")
    t1 = datetime.now(UTC)
    assert r.code == 0, r.stderr
    keys = b.listed()
    assert {k.split("/")[0] for k in keys} == {"vecbackup.json", "keys", "data", "digests", "manifests"}
    for key in keys:
        mode, until = b.lock_of(key)
        assert mode == "COMPLIANCE" and _within(until, t0, t1, 7), (key, mode, until)
    r = cli("verify", b.url, "--read-data", "--passphrase-file", pw, "--json")
    assert r.code == 0 and r.json()["ok"] is True, r.stdout + r.stderr
    r = cli("restore", b.url, lite.url, "--as", f"{name}_r", "--passphrase-file", pw)
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)


def test_a_store_without_object_lock_is_unchanged(cli, lite, s3env):
    """No --object-lock: no vecbackup.json is written (as before), objects carry no lock even in a bucket with Object
    Lock enabled (no default retention), and the result reports nothing extended."""
    b = LockBucket(s3env)
    r = cli("init", b.url, "--json")
    assert r.code == 0 and r.json()["object_lock"] is None
    name = lite.new_name("nolock")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=120)
    r = cli("backup", lite.url, b.url, "-c", name, "--json")
    assert r.code == 0, r.stderr
    result = r.json()["backups"][0]
    assert result["objects_lock_checked"] == 0 and result["retain_until"] is None
    assert "vecbackup.json" not in b.listed()
    assert all(b.lock_of(k) == (None, None) for k in b.listed())


def test_prune_gc_and_stats_say_what_a_lock_keeps(cli, lite, s3env):
    """On a store with object lock, prune's deletes leave the deleted manifest as a locked noncurrent version behind
    a delete marker (read back with ListObjectVersions), and prune and gc say so (bytes_still_billed, one note);
    a policy that keeps backups longer than the lock gets a warning with both numbers; stats shows the lock."""
    b = LockBucket(s3env)
    assert cli("init", b.url, "--object-lock", "governance:20d").code == 0
    name = lite.new_name("prune")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=150)
    first = cli("backup", lite.url, b.url, "-c", name, "--json").json()["backups"][0]
    lite.client.drop_collection(name)
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=150, seed=4)  # other rows: the first's objects go
    assert cli("backup", lite.url, b.url, "-c", name, "--json").code == 0

    r = cli("prune", b.url, "--keep-monthly", "2", "--dry-run", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["object_lock"] == {"mode": "governance", "days": 20}
    assert any("up to 62 days (monthly 2)" in n and "governance:62d" in n for n in out["notes"]), out["notes"]
    r = cli("prune", b.url, "--keep-last", "1", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["removed"] == [first["backup_id"]]
    assert out["bytes_still_billed"] == out["total_bytes_freed"] > 0
    assert any("only adds a delete marker" in n for n in out["notes"]) and not any("up to" in n for n in out["notes"])
    key = "backups/" + layout.manifest_key(name, first["backup_id"])
    versions = b.s3.list_object_versions(Bucket=b.bucket, Prefix=key)
    assert [m["IsLatest"] for m in versions.get("DeleteMarkers", [])] == [True]
    [kept] = versions["Versions"]
    locked = b.s3.head_object(Bucket=b.bucket, Key=key, VersionId=kept["VersionId"])
    assert locked["ObjectLockMode"] == "GOVERNANCE"

    r = cli("gc", b.url, "--min-age", "0s", "--json")
    assert r.code == 0 and r.json()["object_lock"] == {"mode": "governance", "days": 20}
    assert r.json()["bytes_still_billed"] == r.json()["bytes_freed"]
    r = cli("gc", b.url, "--min-age", "0s")
    assert "only adds a delete marker" in r.stdout
    r = cli("stats", b.url, "--json")
    assert r.code == 0 and r.json()["object_lock"] == {"mode": "governance", "days": 20}


def test_settings_rewritten_without_encryption_do_not_make_an_encrypted_store_plain(cli, tmp_path: Path):
    """vecbackup.json now decides encryption by its member, not its presence: an encrypted store whose settings are
    rewritten with an object lock and no encryption is refused by every command (exit 14), with or without a
    passphrase and --allow-unencrypted, as one whose settings are gone; nothing is written."""
    from vecbackup.format.crypto import ObjectLock, StoreConfig
    from vecbackup.stores.local import LocalStore

    pw = tmp_path / "pw"
    pw.write_text("a passphrase\n")
    url = f"file://{tmp_path / 'store'}"
    assert cli("init", url, "--encrypt", "--passphrase-file", pw).code == 0
    raw = LocalStore(str(tmp_path / "store"))
    repository = StoreConfig.from_json(raw.get("vecbackup.json")).repository
    raw.delete("vecbackup.json")
    raw.put("vecbackup.json", StoreConfig(repository, encrypted=False,
                                          object_lock=ObjectLock("compliance", 1)).to_json())
    before = sorted(i.key for i in raw.list())
    for args in ([], ["--passphrase-file", pw], ["--passphrase-file", pw, "--allow-unencrypted"]):
        r = cli("list", url, *args)
        assert r.code == 14 and "do not say it is encrypted" in r.error_line(), (args, r.stderr)
    r = cli("init", url)
    assert r.code == 14 and "key file" in r.error_line()
    assert sorted(i.key for i in raw.list()) == before


def test_a_multipart_upload_carries_the_lock(s3env):
    """An object of the multipart size (threshold lowered to 5 MiB here) is created with the lock in its
    CreateMultipartUpload: read back, its mode and date are the store's; a lock object stays unlocked."""
    from vecbackup.format.crypto import ObjectLock
    from vecbackup.stores.s3 import MIN_PART, S3Store

    b = LockBucket(s3env)
    store = S3Store(b.bucket, "backups", endpoint_url=s3env.endpoint, path_style=True, multipart_threshold=MIN_PART,
                    multipart_chunksize=MIN_PART)
    store.lock_objects(ObjectLock("compliance", 3))
    data = bytes(range(256)) * (MIN_PART // 256 + 4096)  # two parts
    key = layout.data_key("ab" * 32)
    t0 = datetime.now(UTC)
    store.put(key, data)
    t1 = datetime.now(UTC)
    head = b.s3.head_object(Bucket=b.bucket, Key="backups/" + key)
    assert head["ETag"].endswith('-2"')  # a multipart upload's
    assert head["ObjectLockMode"] == "COMPLIANCE" and _within(head["ObjectLockRetainUntilDate"].astimezone(UTC),
                                                              t0, t1, 3)
    assert store.get(key) == data
    store.put("locks/x.json", b"{}")
    assert b.lock_of("locks/x.json") == (None, None)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_settings_that_lose_the_lock_stop_the_next_backup(cli, lite, s3env, tmp_path: Path, encrypted: bool):
    """A downgrade by someone who may write the bucket: vecbackup.json deleted (a plain store then looks like one that
    never had settings) or rewritten without object_lock (an encrypted store keeps its key). The collection's newest
    backup records the lock it was written under, so the next backup refuses (exit 14) and writes nothing, instead of
    writing unlocked objects and extending no lock, however many newer unreadable manifests were planted to hide it;
    with the settings put back it runs."""
    b = LockBucket(s3env)
    pw: list[str] = []
    if encrypted:
        (tmp_path / "pw").write_text("locked and sealed")
        pw = ["--passphrase-file", str(tmp_path / "pw")]
    assert cli("init", b.url, "--object-lock", "governance:1d", *(["--encrypt"] if encrypted else []), *pw).code == 0
    name = lite.new_name("downgrade")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=200)
    first = cli("backup", lite.url, b.url, "-c", name, "--json", *pw)
    assert first.code == 0, first.stderr
    assert cli("show", b.url, "--json", *pw).json()["options"]["object_lock"] == "governance:1d"

    settings = b.s3.get_object(Bucket=b.bucket, Key="backups/vecbackup.json")["Body"].read()
    if encrypted:
        doc = orjson.loads(settings)
        del doc["object_lock"]
        b.s3.put_object(Bucket=b.bucket, Key="backups/vecbackup.json", Body=orjson.dumps(doc))
    else:
        b.s3.delete_object(Bucket=b.bucket, Key="backups/vecbackup.json")
    for i in range(5):  # newer manifests that cannot be read do not hide the locked one
        planted = layout.manifest_key(name, f"20991231T000000.00000{i}Z-0000000{i}")
        b.s3.put_object(Bucket=b.bucket, Key="backups/" + planted, Body=b"not a manifest")
    before = b.listed()
    r = cli("backup", lite.url, b.url, "-c", name, "--json", *pw)
    assert r.code == 14, r.stdout + r.stderr
    assert f"backup {first.json()['backups'][0]['backup_id']} of {name!r} was written under object lock " \
           "governance:1d" in r.error_line()
    assert b.listed() == before  # nothing written (the store lock it took is gone again)

    b.s3.put_object(Bucket=b.bucket, Key="backups/vecbackup.json", Body=settings)
    r = cli("backup", lite.url, b.url, "-c", name, "--json", *pw)
    assert r.code == 0, r.stderr


def test_a_sharded_backup_keeps_its_objects_from_its_commit(cli, lite, s3env):
    """A sharded backup exists from its commit, which may come hours after a shard wrote its objects: the commit
    extends the lock of every object the backup names to its own end (now + days, rounded up to a UTC midnight), as a
    backup does with what it reuses. Stood for here by a shard object whose governance lock is shortened to a day
    between the shards, as an administrator could."""
    b = LockBucket(s3env)
    assert cli("init", b.url, "--object-lock", "governance:35d").code == 0
    name = lite.new_name("sharded")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=400)
    first = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--shard", "0/2", "--run", "r1",
                "--json")
    assert first.code == 0, first.stderr
    shard_data = [k for k in b.listed() if k.startswith((layout.DATA, layout.DIGESTS))]
    assert shard_data
    soon = (datetime.now(UTC) + DAY).replace(microsecond=0)
    b.s3.put_object_retention(Bucket=b.bucket, Key="backups/" + shard_data[0], BypassGovernanceRetention=True,
                              Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon})

    t0 = datetime.now(UTC)
    last = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--shard", "1/2", "--run", "r1",
               "--commit", "--json")
    t1 = datetime.now(UTC)
    assert last.code == 0, last.stderr
    commit = last.json()["backups"][0]["commit"]
    assert commit["committed"] is True, commit
    data = [k for k in b.listed() if k.startswith((layout.DATA, layout.DIGESTS))]
    assert commit["objects_lock_checked"] == len(data) and commit["objects_lock_extended"] >= 1
    target = datetime.strptime(commit["retain_until"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert target.time() == datetime.min.time() and t0 + 35 * DAY <= target <= t1 + 36 * DAY
    for key in data:
        mode, until = b.lock_of(key)
        assert mode == "GOVERNANCE" and until is not None and until >= t0 + 35 * DAY - SLACK, (key, until)
    assert b.lock_of(shard_data[0])[1] == target


def test_settings_that_lose_the_lock_stop_the_first_backup_of_a_new_collection(cli, lite, s3env):
    """The store's newest backup, of any collection, witnesses its lock: with vecbackup.json deleted, a backup of a
    collection the store never held is refused too (exit 14, nothing written), not written unlocked."""
    b = LockBucket(s3env)
    assert cli("init", b.url, "--object-lock", "governance:1d").code == 0
    held, new = lite.new_name("held"), lite.new_name("new")
    build_vector_only(lite.client, held, "FLOAT_VECTOR", n=100)
    build_vector_only(lite.client, new, "FLOAT_VECTOR", n=100)
    first = cli("backup", lite.url, b.url, "-c", held, "--json")
    assert first.code == 0, first.stderr
    settings = b.s3.get_object(Bucket=b.bucket, Key="backups/vecbackup.json")["Body"].read()
    b.s3.delete_object(Bucket=b.bucket, Key="backups/vecbackup.json")
    before = b.listed()
    r = cli("backup", lite.url, b.url, "-c", new, "--json")
    assert r.code == 14, r.stdout + r.stderr
    assert f"backup {first.json()['backups'][0]['backup_id']} of {held!r} was written under object lock" \
        in r.error_line()
    assert b.listed() == before

    b.s3.put_object(Bucket=b.bucket, Key="backups/vecbackup.json", Body=settings)
    r = cli("backup", lite.url, b.url, "-c", new, "--json")
    assert r.code == 0, r.stderr
    assert all(b.lock_of(k)[0] == "GOVERNANCE" for k in b.listed() if k.startswith(layout.MANIFESTS))


def test_a_backup_of_several_collections_checks_the_settings_once(lite, tmp_path: Path):
    """The check of the store's settings against its newest backup lists every manifest in the store and reads the
    newest: a backup of several collections does it once, before the first is read, not once per collection (with
    50 collections of 100 backups each, 50 listings of 5,000 keys). Each collection still lists its own manifests to
    find the base of its incremental backup."""
    from tests.faulty import FaultyStore
    from vecbackup import api
    from vecbackup.stores.local import LocalStore

    names = [lite.new_name(f"once{i}") for i in range(3)]
    for name in names:
        build_vector_only(lite.client, name, "FLOAT_VECTOR", n=50)
    store = FaultyStore(LocalStore(tmp_path / "store", create=True))
    for _ in range(2):
        store.calls.clear()
        api.backup(lite.url, store, names).raise_for_failures()
        listed = [key for method, key in store.calls if method == "list" and key.startswith(layout.MANIFESTS)]
        assert listed.count(layout.manifests_prefix()) == 1, listed
        assert sorted(k for k in listed if k != layout.manifests_prefix()) == \
            sorted(layout.manifests_prefix(n) for n in names)


def test_stats_locks_counts_each_objects_lock(cli, lite, s3env, tmp_path: Path):
    """stats --locks reads every object's lock: before the store had one, nothing is locked; after a backup under
    compliance:10d, what it wrote and what it extended is locked, and the first backup's manifest (which no later
    backup names, so none extends it) is not; the bytes and the ends are those HeadObject gives per object. A folder
    cannot lock objects: exit 9."""
    b = LockBucket(s3env)
    name = lite.new_name("locks")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=200)
    first = cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100", "--json")
    assert first.code == 0, first.stderr

    def sizes() -> dict[str, int]:
        return {k: b.s3.head_object(Bucket=b.bucket, Key="backups/" + k)["ContentLength"] for k in b.listed()
                if k.startswith((layout.DATA, layout.DIGESTS, layout.MANIFESTS))}

    r = cli("stats", b.url, "--locks", "--json")
    assert r.code == 0, r.stderr
    before = sizes()
    assert r.json()["locks"] == {"locked_objects": 0, "locked_bytes": 0, "unlocked_objects": len(before),
                                 "unlocked_bytes": sum(before.values()), "earliest_end": None, "latest_end": None}

    assert cli("init", b.url, "--object-lock", "compliance:10d").code == 0
    assert cli("backup", lite.url, b.url, "-c", name, "--batch-size", "100").code == 0
    r = cli("stats", b.url, "--locks", "--json")
    assert r.code == 0, r.stderr
    now = sizes()
    ends = {k: until for k in now if (until := b.lock_of(k)[1]) is not None}
    old_manifest = layout.manifest_key(name, first.json()["backups"][0]["backup_id"])
    assert set(now) - set(ends) == {old_manifest}
    z = "%Y-%m-%dT%H:%M:%SZ"
    assert r.json()["locks"] == {
        "locked_objects": len(ends), "locked_bytes": sum(now[k] for k in ends),
        "unlocked_objects": 1, "unlocked_bytes": now[old_manifest],
        "earliest_end": min(ends.values()).strftime(z), "latest_end": max(ends.values()).strftime(z)}
    human = cli("stats", b.url, "--locks")
    assert "locked now: " in human.stdout and f"in {len(ends)} objects" in human.stdout, human.stdout

    assert cli("init", f"file://{tmp_path / 'plain'}").code == 0
    folder = cli("stats", f"file://{tmp_path / 'plain'}", "--locks")
    assert folder.code == 9 and "object lock is not supported on file://" in folder.error_line(), folder.stderr


def test_an_azure_container_without_version_level_immutability_is_refused(cli, azurite, monkeypatch):
    """Azure keeps object locks as version-level immutability policies (stores/azure.py; the requests are tested in
    tests/unit/test_azure_object_lock.py). Azurite implements no immutability: its containers report none, so init
    --object-lock there is refused in one line naming what to enable, and nothing is written."""
    name = f"vbl{uuid.uuid4().hex[:12]}"
    container = azurite.create_container(name)
    for k, v in azurite.env().items():
        monkeypatch.setenv(k, v)
    r = cli("init", f"azure://{name}/backups", "--object-lock", "compliance:35d")
    assert r.code == Unsupported.exit_code == 9, r.stdout + r.stderr
    assert "version-level immutability" in r.error_line() and "versioning" in r.error_line()
    assert list(container.list_blobs()) == []
