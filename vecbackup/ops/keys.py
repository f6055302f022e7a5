"""Setting up an encrypted store and managing who can open it: ``init``, ``key add|list|remove``
(docs/SECURITY.md, "Encryption"). Key files change access only: the repository key, and so every object sealed with
it, stays the same, so adding or removing a passphrase re-encrypts and re-uploads nothing."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vecbackup.errors import AlreadyExists, AuthenticationFailed, NotFound, UsageError
from vecbackup.format import layout
from vecbackup.format.crypto import STORE_CONFIG, KeyFile, ObjectLock, RepositoryKey, StoreConfig, is_plain
from vecbackup.format.sealed import RECOVER_HINT
from vecbackup.format.shard import SHARDS
from vecbackup.format.tombstone import TOMBSTONES
from vecbackup.passphrase import Passphrase
from vecbackup.stores.base import BlobStore, ObjectExists, check_object_lock, lock_objects
from vecbackup.stores.encrypted import EncryptedStore, encryption_evidence, find_key, key_files, read_config
from vecbackup.words import either, param


@dataclass(frozen=True)
class KeyInfo:
    id: str
    created: str
    label: str
    host: str
    current: bool  # the key file that opened the store in this run

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "label": self.label, "host": self.host,
                "current": self.current}


@dataclass(frozen=True)
class InitResult:
    store: str
    encrypted: bool
    key: KeyInfo | None = None
    recovered: bool = False  # init --recover: the settings of an existing encrypted store, written again
    object_lock: ObjectLock | None = None  # the store's object lock (init --object-lock, or found there)

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "encrypted": self.encrypted, "recovered": self.recovered,
                "key": None if self.key is None else self.key.to_dict(),
                "object_lock": None if self.object_lock is None else self.object_lock.to_dict()}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _info(kf: KeyFile, current: str | None) -> KeyInfo:
    return KeyInfo(kf.id, kf.created, kf.label, kf.host, kf.id == current)


def _new_key_file(key: RepositoryKey, secret: bytes, label: str) -> KeyFile:
    try:
        return KeyFile.wrap(key, secret, created=_now(), label=label, host=socket.gethostname())
    except ValueError as e:
        raise UsageError(f"bad {param('label')}: {e}") from None


def init_store(raw: BlobStore, secret: bytes | None, *, label: str = "",
               object_lock: ObjectLock | None = None) -> InitResult:
    """Make ``raw`` an encrypted store (``secret`` given) and/or one whose objects are locked (``object_lock``:
    docs/STORES.md, "Object lock"), or check it can be used as it is (neither).

    Encryption starts in an empty store: one holding unencrypted backups is refused, as is one already encrypted.
    Object lock alone may be chosen for a store holding backups (the next backup extends the retention of every
    object it reuses). Either needs a store without settings: they are written once. The bucket must have Object Lock
    enabled, the Azure container version-level immutability support (Unsupported, exit 9, nothing written; also on
    a folder). The key file is written first and the
    settings file last, if absent: that is the commit point, so two racing inits cannot both win and an interrupted
    one leaves a store without settings."""
    config = read_config(raw)
    if config is not None and config.encrypted:
        n = len(key_files(raw, config.repository)[0])
        if object_lock is not None and object_lock != config.object_lock:
            raise AlreadyExists(f"store {raw.display} has its settings already (encrypted, object lock "
                                f"{config.object_lock or 'none'}): they are written once",
                                hint="object lock is chosen when a store is made: init a new prefix or bucket "
                                     "with --object-lock and back up into it")
        raise AlreadyExists(f"store {raw.display} is already encrypted ({n} key file{'s' if n != 1 else ''})",
                            hint="`vecbackup key add` gives another passphrase access")
    evidence = encryption_evidence(raw)
    if evidence is not None:
        settings = "no settings file (vecbackup.json)" if config is None else \
            "settings (vecbackup.json) that do not say it is encrypted"
        raise AuthenticationFailed(f"store {raw.display} holds an encrypted store's {evidence} but {settings}",
                                   hint=RECOVER_HINT)
    if config is not None:  # settings without encryption: object lock
        if secret is not None or (object_lock is not None and object_lock != config.object_lock):
            raise AlreadyExists(f"store {raw.display} has its settings already (object lock {config.object_lock}, "
                                "not encrypted): they are written once",
                                hint=f"{either('init(encrypt=True)', 'init --encrypt')} or another object lock in a "
                                     "new prefix or bucket, and back up into it")
        return InitResult(raw.display, encrypted=False, object_lock=config.object_lock)
    if object_lock is not None:
        check_object_lock(raw)  # Unsupported: nothing written
        lock_objects(raw, object_lock)  # the key file and the settings are kept objects: locked too
    if secret is None:
        if object_lock is None:
            return InitResult(raw.display, encrypted=False)
        _write_config(raw, StoreConfig(secrets.token_hex(16), encrypted=False, object_lock=object_lock))
        return InitResult(raw.display, encrypted=False, object_lock=object_lock)
    if any(True for _ in raw.list(layout.MANIFESTS)) or any(True for _ in raw.list(layout.DATA)):
        raise AlreadyExists(f"store {raw.display} holds unencrypted backups: encryption starts in an empty store",
                            hint=f"{either('init(encrypt=True)', 'init --encrypt')} a new folder or prefix and "
                                 "back up into it; keep or delete the old one")
    key = RepositoryKey.generate()
    kf = _new_key_file(key, secret, label)
    raw.put(kf.store_key, kf.to_json(), if_absent=True)
    try:
        _write_config(raw, StoreConfig(key.repository, object_lock=object_lock))
    except AlreadyExists:
        raw.delete(kf.store_key)
        raise
    return InitResult(raw.display, encrypted=True, key=_info(kf, kf.id), object_lock=object_lock)


def _write_config(raw: BlobStore, config: StoreConfig) -> None:
    try:
        raw.put(STORE_CONFIG, config.to_json(), if_absent=True)
    except ObjectExists:
        raise AlreadyExists(f"store {raw.display} got its settings from another init at the same time",
                            hint="use that one's settings (and passphrase)") from None


def recover_store(raw: BlobStore, passphrase: Passphrase, *, object_lock: ObjectLock | None = None) -> InitResult:
    """Write the settings file of an encrypted store that lost it (``init --encrypt --recover``), from the key file
    ``passphrase`` opens (the bounded search of every command, or ``--key-id``), once that key has opened one of the
    store's sealed objects (so a key file of another store, copied here, cannot make this store's settings). Nothing
    else is written. A store that had an object lock needs it given again (``object_lock``): nothing in the store
    records it but the lost file."""
    if read_config(raw) is not None:
        raise AlreadyExists(f"store {raw.display} has its settings (vecbackup.json): nothing to recover",
                            hint="`vecbackup key list` shows its keys")
    kf, key = find_key(raw, None, passphrase)
    sealed = next((info.key for prefix in (layout.MANIFESTS, SHARDS, TOMBSTONES, layout.DATA)
                   for info in raw.list(prefix) if not is_plain(info.key)), None)
    if sealed is not None:
        key.open(sealed, raw.get(sealed))  # AuthenticationFailed: this key did not seal the store's objects
    if object_lock is not None:
        check_object_lock(raw)
        lock_objects(raw, object_lock)
    try:
        raw.put(STORE_CONFIG, StoreConfig(kf.repository, object_lock=object_lock).to_json(), if_absent=True)
    except ObjectExists:
        raise AlreadyExists(f"store {raw.display} got its settings from another run meanwhile") from None
    return InitResult(raw.display, encrypted=True, key=_info(kf, kf.id), recovered=True, object_lock=object_lock)


def _encrypted(store: BlobStore) -> EncryptedStore:
    if not isinstance(store, EncryptedStore):
        raise UsageError(f"store {store.display} is not encrypted: it has no keys",
                         hint=f"{either('init(url, encrypt=True)', '`vecbackup init --encrypt`')} makes a new, "
                         "encrypted store")
    return store


def list_keys(store: BlobStore) -> list[KeyInfo]:
    """The key files of an (unlocked) encrypted store, oldest first."""
    s = _encrypted(store)
    files, _ = key_files(s.inner, s.repository_key.repository)
    return [_info(kf, s.key_id) for kf in files]


def add_key(store: BlobStore, secret: bytes, *, label: str = "") -> KeyInfo:
    """A new key file that opens the store with ``secret``; nothing else changes."""
    s = _encrypted(store)
    kf = _new_key_file(s.repository_key, secret, label)
    s.inner.put(kf.store_key, kf.to_json(), if_absent=True)
    return _info(kf, s.key_id)


def remove_key(store: BlobStore, key_id: str) -> KeyInfo:
    """Delete a key file (by id or unique prefix): its passphrase no longer opens the store. Never the one in use,
    so the last one cannot go (without a key file the backups cannot be read)."""
    s = _encrypted(store)
    files, _ = key_files(s.inner, s.repository_key.repository)
    matches = [kf for kf in files if kf.id.startswith(key_id.lower())] if key_id else []
    if not matches:
        raise NotFound(f"no key {key_id!r} in {s.display}",
                       hint=f"{either('keys()', '`vecbackup key list`')} shows them")
    if len(matches) > 1:
        raise UsageError(f"key id prefix {key_id!r} matches {len(matches)} keys", hint="give more of the id")
    kf = matches[0]
    if kf.id == s.key_id:
        raise UsageError(f"key {kf.id} is the one this run opened the store with, and is not removed",
                         hint="open the store with another key's passphrase to remove this one" if len(files) > 1
                         else f"it is the store's only key: add another first with "
                         f"{either('add_key()', '`vecbackup key add`')}")
    s.inner.delete(kf.store_key)
    return _info(kf, s.key_id)


__all__ = ["InitResult", "KeyInfo", "add_key", "init_store", "list_keys", "recover_store", "remove_key"]
