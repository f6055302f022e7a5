"""Object lock's pure parts and its refusals without a server: ``MODE:DAYSd`` parsed, the store settings
(``vecbackup.json``) with and without each member, the shape a vecbackup from before object lock refuses, which keys
are transient, the day a reused object's lock is extended to, and a store whose settings ask for a lock it cannot
apply (a folder): read as usual, written never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from vecbackup.errors import CorruptData, Unsupported
from vecbackup.format import layout
from vecbackup.format.crypto import CIPHER, NAMES, ObjectLock, StoreConfig
from vecbackup.ops.prune import lock_notes
from vecbackup.passphrase import Passphrase
from vecbackup.retention import Policy, longest_kept
from vecbackup.stores import open_store
from vecbackup.stores.base import object_lock, retention
from vecbackup.stores.local import LocalStore
from vecbackup.stores.objectlock import Unlockable, extended_until

REPO = "ab" * 16

#: vecbackup.json exactly as `init --encrypt` wrote it before object lock (0.4.0, commit 1bc151e)
ENCRYPTED_BEFORE = (b'{\n  "format": "vecbackup-store",\n  "version": 1,\n  "repository": "' + REPO.encode()
                    + b'",\n  "encryption": {\n    "cipher": "AES-256-GCM",\n    "names": "HMAC-SHA256",\n'
                    b'    "kdf": "scrypt"\n  }\n}\n')


def old_reader(data: bytes) -> str:
    """The checks StoreConfig.from_json made before object lock (0.4.0), in order: what it returns is the repository
    it accepted, what it raises the refusal an old vecbackup prints. Kept here verbatim so that the downgrade
    behaviour of the settings written now is checked against the reader that is already installed out there."""
    d: dict[str, Any] = orjson.loads(data)
    if d.get("format") != "vecbackup-store":
        raise CorruptData("not a vecbackup store settings file")
    version = d.get("version")
    if version != 1:
        raise Unsupported(f"has version {version!r}; this vecbackup reads version 1")
    enc = d.get("encryption")
    if not isinstance(enc, dict) or enc.get("cipher") != CIPHER or enc.get("names") != NAMES:
        raise Unsupported(f"encryption {enc!r} is not one this vecbackup knows ({CIPHER} with {NAMES} names)")
    return str(d["repository"])


def test_object_lock_is_parsed_from_mode_and_days():
    assert ObjectLock.parse("compliance:35d") == ObjectLock("compliance", 35)
    assert ObjectLock.parse(" Governance:1D ") == ObjectLock("governance", 1)
    assert str(ObjectLock("compliance", 3660)) == "compliance:3660d"
    for bad in ("compliance", "compliance:35", "compliance:d", "legal:3d", "compliance:0d", "compliance:3661d",
                "compliance:-1d", "compliance:35h", "compliance: 35d", ""):
        with pytest.raises(ValueError):
            ObjectLock.parse(bad)
    with pytest.raises(ValueError):
        ObjectLock("compliance", True)  # type: ignore[arg-type]


@pytest.mark.parametrize("config", [
    StoreConfig(REPO),
    StoreConfig(REPO, object_lock=ObjectLock("compliance", 35)),
    StoreConfig(REPO, encrypted=False, object_lock=ObjectLock("governance", 7)),
])
def test_store_settings_round_trip_with_and_without_each_member(config):
    data = config.to_json()
    assert StoreConfig.from_json(data) == config
    d = orjson.loads(data)
    assert ("encryption" in d) == config.encrypted
    assert d.get("object_lock") == (None if config.object_lock is None else config.object_lock.to_dict())


def test_an_encrypted_store_without_object_lock_writes_the_same_bytes_as_before():
    assert StoreConfig(REPO).to_json() == ENCRYPTED_BEFORE


def test_what_a_vecbackup_from_before_object_lock_does_with_each_shape():
    """It reads an encrypted store as before, with or without object_lock (an encrypted store with a lock is read
    and written by it without the lock: docs/FORMAT.md says so), and refuses a store with object lock and no
    encryption, exit 9, "upgrade vecbackup", rather than write unlocked objects into it."""
    assert old_reader(StoreConfig(REPO).to_json()) == REPO
    assert old_reader(StoreConfig(REPO, object_lock=ObjectLock("compliance", 35)).to_json()) == REPO
    with pytest.raises(Unsupported) as e:
        old_reader(StoreConfig(REPO, encrypted=False, object_lock=ObjectLock("compliance", 35)).to_json())
    assert e.value.exit_code == 9 and str(e.value).startswith("encryption None is not one this vecbackup knows")


def test_settings_a_reader_refuses():
    base = orjson.loads(StoreConfig(REPO, object_lock=ObjectLock("compliance", 35)).to_json())
    for member, value, error in [
        ("object_lock", {"mode": "compliance", "days": 35, "legal_hold": True}, Unsupported),  # newer than us
        ("object_lock", "compliance:35d", Unsupported),
        ("object_lock", {"mode": "forever", "days": 35}, CorruptData),
        ("object_lock", {"mode": "compliance", "days": 0}, CorruptData),
        ("object_lock", {"mode": "compliance", "days": "35"}, CorruptData),
        ("encryption", {"cipher": "ChaCha20", "names": NAMES}, Unsupported),
    ]:
        with pytest.raises(error):
            StoreConfig.from_json(orjson.dumps({**base, member: value}))
    nothing = {k: v for k, v in base.items() if k not in ("encryption", "object_lock")}
    with pytest.raises(CorruptData, match="no settings"):
        StoreConfig.from_json(orjson.dumps(nothing))


def test_only_store_locks_are_transient():
    assert layout.is_transient("locks/20260101T000000.000000Z-0123abcd-ab12.json")
    for key in ("data/ab/" + "ab" * 32 + ".vbc", "digests/ab/" + "ab" * 32 + ".vbd", "manifests/c/x.json",
                "shards/c/run/x.json", "tombstones/c/x.json", "vecbackup.json", "keys/0123456789abcdef.json"):
        assert not layout.is_transient(key), key


def test_a_reused_objects_lock_is_extended_to_the_next_utc_midnight():
    at = datetime(2026, 3, 1, 13, 5, 7, 123, tzinfo=UTC)
    assert extended_until(at) == datetime(2026, 3, 2, tzinfo=UTC)
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    assert extended_until(midnight) == midnight
    assert extended_until(midnight + timedelta(microseconds=1)) == datetime(2026, 3, 3, tzinfo=UTC)


def test_a_folder_whose_settings_ask_for_object_lock_is_read_but_never_written(tmp_path: Path):
    """A copy of an S3 store with object lock in a folder: opened, it is read as usual and store locks work, but
    every object it would keep is refused (exit 9), so nothing is written there without the lock it asks for."""
    raw = LocalStore(str(tmp_path / "copy"), create=True)
    raw.put("vecbackup.json", StoreConfig(REPO, encrypted=False, object_lock=ObjectLock("compliance", 35)).to_json())
    raw.put("manifests/c/old.json", b"{}")
    store = open_store(f"file://{tmp_path / 'copy'}", passphrase=Passphrase())
    assert isinstance(store, Unlockable)
    assert store.get("manifests/c/old.json") == b"{}"
    assert object_lock(store) is None and retention(store, "manifests/c/old.json") is None
    with pytest.raises(Unsupported, match="object lock compliance:35d"):
        store.put("data/ab/" + "ab" * 32 + ".vbc", b"x")
    store.put("locks/x.json", b"{}")
    store.delete("locks/x.json")
    assert sorted(i.key for i in raw.list()) == ["manifests/c/old.json", "vecbackup.json"]


def test_how_old_a_backup_a_policy_may_keep():
    assert longest_kept(Policy(keep_last=30)) is None
    assert longest_kept(Policy(keep_daily=7, keep_monthly=6)) == (6 * 31 * 86400, "monthly 6")
    assert longest_kept(Policy(keep_hourly=48, keep_within=3 * 86400)) == (3 * 86400, "within 3d")
    assert longest_kept(Policy(keep_weekly=5, keep_yearly=1)) == (366 * 86400, "yearly 1")


def test_prune_warns_with_the_numbers_where_the_lock_is_shorter_than_the_policy_keeps():
    lock = ObjectLock("compliance", 35)
    [warning, marker] = lock_notes(lock, Policy(keep_daily=7, keep_monthly=6))
    assert "keeps a backup's manifest 35 days" in warning and "up to 186 days (monthly 6)" in warning
    assert "--object-lock compliance:186d" in warning
    assert "delete marker" in marker
    assert lock_notes(lock, Policy(keep_daily=30)) == [marker]  # 30 days: within the lock
    assert lock_notes(lock, None) == [marker]


def test_lock_summary_counts_what_is_locked_at_that_moment() -> None:
    from vecbackup.ops.stats import Locks, lock_summary
    from vecbackup.stores.base import ObjectInfo, Retention

    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    objects = [(ObjectInfo("a", 10, 0.0), Retention("compliance", now + timedelta(days=3))),
               (ObjectInfo("b", 20, 0.0), Retention("governance", now + timedelta(days=1))),
               (ObjectInfo("c", 40, 0.0), Retention("governance", now)),  # ends now: deletable now
               (ObjectInfo("d", 80, 0.0), None)]
    assert lock_summary(objects, now) == Locks(2, 30, 2, 120, now + timedelta(days=1), now + timedelta(days=3))
    assert lock_summary([], now) == Locks()
    assert lock_summary(objects, now + timedelta(days=5)) == Locks(0, 0, 4, 150, None, None)
