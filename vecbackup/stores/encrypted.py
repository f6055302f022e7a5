"""Encryption as a wrapper around any BlobStore (docs/FORMAT.md, "Encryption"), like retries.

Above the wrapper, the store looks like any other: ``get`` returns the plaintext, ``stat`` and ``list`` the
plaintext's size, and :func:`content_hash` names an object by the keyed MAC of its plaintext instead of its SHA-256.
Below it, every object but the store's settings and key files is sealed with AES-256-GCM, bound to its key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from vecbackup.errors import AuthenticationFailed, CorruptData, UsageError, WrongKey
from vecbackup.format import layout
from vecbackup.format.crypto import (
    KEYS,
    OVERHEAD,
    STORE_CONFIG,
    KeyFile,
    RepositoryKey,
    StoreConfig,
    is_plain,
    parse_key_file_key,
)
from vecbackup.format.sealed import RECOVER_HINT, SEALED_MAGIC, is_sealed
from vecbackup.format.shard import SHARDS
from vecbackup.format.tombstone import TOMBSTONES
from vecbackup.passphrase import HOW, Passphrase
from vecbackup.stores.base import BlobStore, ObjectInfo, ObjectNotFound


class EncryptedStore:
    """Seals what it writes and opens what it reads with one repository key."""

    encrypted = True

    def __init__(self, inner: BlobStore, key: RepositoryKey, key_id: str) -> None:
        self.inner = inner
        self.display = inner.display
        self.key_id = key_id  # the key file that opened the store
        self._key = key

    def __repr__(self) -> str:
        return f"EncryptedStore({self.display!r})"

    @property
    def repository_key(self) -> RepositoryKey:
        """For ``key add`` (which wraps it again); never printed."""
        return self._key

    @property
    def concurrency(self) -> int:
        return int(getattr(self.inner, "concurrency", 2))

    def content_hash(self, data: bytes) -> str:
        return self._key.name(data)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        self.inner.put(key, data if is_plain(key) else self._key.seal(key, data), if_absent=if_absent)

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        if is_plain(key):
            return self.inner.get(key, offset=offset, length=length)
        data = self._key.open(key, self.inner.get(key))  # authenticated as a whole, then sliced
        if offset or length is not None:
            return data[offset:] if length is None else data[offset:offset + length]
        return data

    def stat(self, key: str) -> ObjectInfo:
        return self._plain_size(self.inner.stat(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return (self._plain_size(info) for info in self.inner.list(prefix))

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    @staticmethod
    def _plain_size(info: ObjectInfo) -> ObjectInfo:
        return info if is_plain(info.key) else replace(info, size=max(0, info.size - OVERHEAD))


def read_config(raw: BlobStore) -> StoreConfig | None:
    """The store's settings, or None for an unencrypted store."""
    try:
        data = raw.get(STORE_CONFIG)
    except ObjectNotFound:
        return None
    return StoreConfig.from_json(data, where=f"{STORE_CONFIG} of {raw.display}")


def key_files(raw: BlobStore, repository: str | None = None) -> tuple[list[KeyFile], list[str]]:
    """The key files of a store (of ``repository`` only, if given), oldest first, and one message per key file
    that could not be read."""
    found: list[KeyFile] = []
    problems: list[str] = []
    for info in raw.list(KEYS):
        if parse_key_file_key(info.key) is None:
            continue
        try:
            kf = KeyFile.from_json(raw.get(info.key), where=info.key)
        except ObjectNotFound:
            continue  # removed while we listed
        except CorruptData as e:
            problems.append(str(e))
            continue
        if repository is None or kf.repository == repository:
            found.append(kf)
        else:
            problems.append(f"{info.key} belongs to another store (repository {kf.repository})")
    found.sort(key=lambda k: (k.created, k.id))
    return found, problems


def unlock(raw: BlobStore, config: StoreConfig, passphrase: Passphrase) -> EncryptedStore:
    """The store opened with the key file ``passphrase`` opens; WrongKey if none does."""
    if not passphrase.given:
        raise WrongKey(f"store {raw.display} is encrypted: give its passphrase", hint=HOW)
    secret = passphrase.secret()
    files, problems = key_files(raw, config.repository)
    for kf in reversed(files):  # the newest first: after a rotation, that is the one in use
        key = kf.unwrap(secret)
        if key is not None:
            return EncryptedStore(raw, key, kf.id)
    if not files:
        raise WrongKey(f"encrypted store {raw.display} has no usable key file"
                       + (f" ({'; '.join(problems)})" if problems else ""),
                       hint="restore keys/ from a copy; without a key file the backups cannot be read")
    damaged = f"; {len(problems)} more could not be read" if problems else ""
    raise WrongKey(f"{passphrase.describe()} opens none of the {len(files)} key files of "
                   f"{raw.display}{damaged}", hint="check the passphrase; `vecbackup key list` needs one that works")


def encryption_evidence(raw: BlobStore) -> str | None:
    """What shows that ``raw``, which has no settings file, is (was) an encrypted store: a key file, or a sealed
    manifest, shard record, tombstone or lock (the first and the last of each kind: data objects, of which a store
    holds millions, are not listed here; readers refuse any sealed object they meet, format/sealed.py). None if
    nothing does."""
    for info in raw.list(KEYS):
        if parse_key_file_key(info.key) is not None:
            return f"key file {info.key}"
    for prefix in (layout.MANIFESTS, SHARDS, TOMBSTONES, layout.LOCKS):
        found = list(raw.list(prefix))
        for info in dict.fromkeys([*found[:1], *found[-1:]]):
            try:
                if is_sealed(raw.get(info.key, offset=0, length=len(SEALED_MAGIC))):
                    return f"sealed object {info.key}"
            except ObjectNotFound:
                continue  # removed while we looked (a lock released)
    return None


def open_encrypted(raw: BlobStore, passphrase: Passphrase, *, allow_unencrypted: bool = False) -> BlobStore:
    """``raw`` as it should be used: unlocked if encrypted (WrongKey without a working passphrase), as it is if not.

    A store is encrypted if it has settings (``vecbackup.json``), or key files, or sealed objects: one with key files
    or sealed objects but no settings is refused (AuthenticationFailed, with or without a passphrase and
    ``allow_unencrypted``): its settings were removed, and nothing may be read or written there in the clear
    (``init --encrypt --recover`` writes them again). An unencrypted store opened with a passphrase is refused
    (UsageError) unless ``allow_unencrypted``: whoever gave one meant an encrypted store, and one whose settings and
    key files were removed (to plant a plaintext backup, or to have new backups written in the clear) must not be
    read or written as if nothing happened."""
    config = read_config(raw)
    if config is not None:
        return unlock(raw, config, passphrase)
    evidence = encryption_evidence(raw)
    if evidence is not None:
        raise AuthenticationFailed(f"store {raw.display} holds an encrypted store's {evidence} but no settings file "
                                   "(vecbackup.json); nothing is read or written there in the clear",
                                   hint=RECOVER_HINT)
    if passphrase.given and not allow_unencrypted:
        raise UsageError(f"store {raw.display} is not encrypted, but a passphrase was given",
                         hint="if it should be encrypted, its vecbackup.json and keys/ are gone: do not trust what it "
                              "holds; else unset the passphrase, or pass --allow-unencrypted")
    return raw


def is_encrypted(store: BlobStore) -> bool:
    return bool(getattr(store, "encrypted", False))


__all__ = ["EncryptedStore", "encryption_evidence", "is_encrypted", "key_files", "open_encrypted", "read_config",
           "unlock"]
