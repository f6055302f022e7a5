"""Encryption as a wrapper around any BlobStore (docs/FORMAT.md, "Encryption"), like retries.

Above the wrapper, the store looks like any other: ``get`` returns the plaintext, ``stat`` and ``list`` the
plaintext's size, and :func:`content_hash` names an object by the keyed MAC of its plaintext instead of its SHA-256.
Below it, every object but the store's settings and key files is sealed with AES-256-GCM, bound to its key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from vecbackup.errors import AuthenticationFailed, CorruptData, UsageError, WrongKey
from vecbackup.format import layout
from vecbackup.format.crypto import (
    KEYS,
    OVERHEAD,
    SCRYPT_WORK,
    STORE_CONFIG,
    KeyFile,
    ObjectLock,
    RepositoryKey,
    StoreConfig,
    is_plain,
    parse_key_file_key,
)
from vecbackup.format.sealed import RECOVER_HINT, SEALED_MAGIC, is_sealed
from vecbackup.format.shard import SHARDS
from vecbackup.format.tombstone import TOMBSTONES
from vecbackup.passphrase import Passphrase, how
from vecbackup.stores.base import (
    BlobStore,
    ObjectInfo,
    ObjectNotFound,
    Retention,
    check_object_lock,
    lock_objects,
    object_lock,
    retain,
    retention,
)
from vecbackup.stores.objectlock import with_object_lock
from vecbackup.words import either, param, plural


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

    def over(self, inner: BlobStore) -> EncryptedStore:
        """The same repository key over another store under it (``undelete``: the store as it is now, opened with
        the key it had at a past time)."""
        return EncryptedStore(inner, self._key, self.key_id)

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

    # object lock (stores.base.Retaining): objects keep their keys here, so it passes through

    @property
    def object_lock(self) -> ObjectLock | None:
        return object_lock(self.inner)

    def lock_objects(self, lock: ObjectLock) -> None:
        lock_objects(self.inner, lock)

    def check_object_lock(self) -> None:
        check_object_lock(self.inner)

    def retention(self, key: str) -> Retention | None:
        return retention(self.inner, key)

    def retain(self, key: str, until: Retention) -> None:
        retain(self.inner, key, until)

    @staticmethod
    def _plain_size(info: ObjectInfo) -> ObjectInfo:
        return info if is_plain(info.key) else replace(info, size=max(0, info.size - OVERHEAD))


def read_config(raw: BlobStore) -> StoreConfig | None:
    """The store's settings (encryption, object lock), or None for a store without any (no vecbackup.json)."""
    try:
        data = raw.get(STORE_CONFIG)
    except ObjectNotFound:
        return None
    return StoreConfig.from_json(data, where=f"{STORE_CONFIG} of {raw.display}")


#: without --key-id, at most this many key files are read and tried (a store needs a handful): anyone who can write
#: the store can add key files, and each is an scrypt run
MAX_KEY_FILES = 20
#: ... and at most this much scrypt work in all: 16 key files of the cost vecbackup writes (about 1.6 s on one core);
#: a key file that would take the total beyond it is not tried (one read from a store may ask for 32 times that)
SCRYPT_BUDGET = 16 * SCRYPT_WORK
_HINT = re.compile(r"^[0-9a-f]{1,16}$")


def _by_key_id() -> str:
    return (f"give {either('Passphrase(..., key_id=ID)', '--key-id ID')} (VECBACKUP_KEY_ID; job key key_id) to try "
            "only your key file: ID is its name under keys/, as `init`, `key add` and `key list` print it")


def _read_key_files(raw: BlobStore, infos: list[ObjectInfo], repository: str | None,
                    ) -> tuple[list[tuple[KeyFile, ObjectInfo]], list[str]]:
    found: list[tuple[KeyFile, ObjectInfo]] = []
    problems: list[str] = []
    for info in infos:
        try:
            kf = KeyFile.from_json(raw.get(info.key), where=info.key)
        except ObjectNotFound:
            continue  # removed while we listed
        except CorruptData as e:
            problems.append(str(e))
            continue
        if repository is None or kf.repository == repository:
            found.append((kf, info))
        else:
            problems.append(f"{info.key} belongs to another store (repository {kf.repository})")
    return found, problems


def _listed(raw: BlobStore) -> list[ObjectInfo]:
    return [info for info in raw.list(KEYS) if parse_key_file_key(info.key) is not None]


def key_files(raw: BlobStore, repository: str | None = None) -> tuple[list[KeyFile], list[str]]:
    """The key files of a store (of ``repository`` only, if given), every one of them, oldest ``created`` first (to
    show them; :func:`unlock` does not go by that field, which anyone who can write the store chooses), and one
    message per key file that could not be read."""
    found, problems = _read_key_files(raw, _listed(raw), repository)
    return sorted((kf for kf, _ in found), key=lambda k: (k.created, k.id)), problems


def unlock(raw: BlobStore, config: StoreConfig, passphrase: Passphrase) -> EncryptedStore:
    """The store opened with the key file ``passphrase`` opens; WrongKey if none does (:func:`find_key`)."""
    kf, key = find_key(raw, config.repository, passphrase)
    return EncryptedStore(raw, key, kf.id)


def find_key(raw: BlobStore, repository: str | None, passphrase: Passphrase) -> tuple[KeyFile, RepositoryKey]:
    """The key file of ``repository`` (None: of any; ``init --recover``) that ``passphrase`` opens, and the
    repository key it wraps; WrongKey if none does.

    With ``passphrase.key_id`` only that key file is tried. Without, key files are read and tried in an order no one
    who can write the store sets to their advantage beyond a bound (docs/SECURITY.md, "Key files"): at most
    MAX_KEY_FILES of them, the first the store lists by its own modification time (set by the server on S3 and
    Azure), tried cheapest scrypt cost first (a planted key file that asks for more work than ours is tried after
    ours), ties oldest first, until SCRYPT_BUDGET is spent. A search stopped by a bound says so and names --key-id
    (WrongKey)."""
    if not passphrase.given:
        raise WrongKey(f"store {raw.display} is encrypted: give its passphrase", hint=how())
    if passphrase.key_id is not None:
        kf = _hinted(raw, repository, passphrase.key_id)
        key = kf.unwrap(passphrase.secret())
        if key is None:
            raise WrongKey(f"{passphrase.describe()} does not open key file {kf.id} of {raw.display}, the one "
                           f"{param('key_id')} names: give that key file's passphrase, or the id of the key file "
                           "yours opens")
        return kf, key
    secret = passphrase.secret()
    listed = sorted(_listed(raw), key=lambda i: (i.mtime, i.key))
    found, problems = _read_key_files(raw, listed[:MAX_KEY_FILES], repository)
    found.sort(key=lambda f: (f[0].kdf.work, f[1].mtime, f[0].id))
    tried = work = 0
    for kf, _ in found:
        if work + kf.kdf.work > SCRYPT_BUDGET:
            break
        tried, work = tried + 1, work + kf.kdf.work
        key = kf.unwrap(secret)
        if key is not None:
            return kf, key
    if not found and len(listed) <= MAX_KEY_FILES:
        raise WrongKey(f"encrypted store {raw.display} has no usable key file"
                       + (f" ({'; '.join(problems)})" if problems else ""),
                       hint="restore keys/ from a copy; without a key file the backups cannot be read")
    damaged = f" ({len(problems)} more could not be read)" if problems else ""
    if tried == len(found) and len(listed) <= MAX_KEY_FILES:
        whose = "key file takes" if len(found) == 1 else f"{len(found)} key files all take"
        raise WrongKey(f"{passphrase.describe()} does not open encrypted store {raw.display}, whose {whose} another"
                       f"{damaged}: give the passphrase the store was created with, or one added with "
                       f"{either('add_key()', '`vecbackup key add`')}")
    raise WrongKey(f"{passphrase.describe()} opens none of the {plural(tried, 'key file')} tried of the "
                   f"{len(listed)} in {raw.display}{damaged}: without {param('key_id')} the search stops after "
                   f"{MAX_KEY_FILES} key files or {SCRYPT_BUDGET // SCRYPT_WORK} key files' worth of scrypt work, as "
                   "someone who can write the store may have added key files to slow every command down",
                   hint=_by_key_id())


def _hinted(raw: BlobStore, repository: str | None, hint: str) -> KeyFile:
    """The one key file of ``repository`` whose id starts with ``hint`` (UsageError for a hint that is no key id or
    matches several, WrongKey for one that matches none)."""
    prefix = hint.strip().lower()
    if not _HINT.fullmatch(prefix):
        raise UsageError(f"{param('key_id', hint)} is not a key id", hint="a key id is 16 hex digits; give it, or a "
                         "unique prefix of it")
    matches = [info for info in _listed(raw) if (parse_key_file_key(info.key) or "").startswith(prefix)]
    if len(matches) > 1:
        raise UsageError(f"{param('key_id', prefix)} matches {len(matches)} key files of {raw.display}",
                         hint="give more of the id (all 16 hex digits are unique)")
    found, problems = _read_key_files(raw, matches, repository)
    if not found:
        raise WrongKey(f"no key file of {raw.display} matches {param('key_id', prefix)}"
                       + (f" ({'; '.join(problems)})" if problems else ""),
                       hint=f"check {param('key_id')} / VECBACKUP_KEY_ID: key ids are the names under keys/")
    return found[0][0]


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
    """``raw`` as it should be used: with its object lock (stores/objectlock.py), unlocked if encrypted (WrongKey
    without a working passphrase), as it is if not.

    A store is encrypted if its settings (``vecbackup.json``) have the member ``encryption``, or it holds key files or
    sealed objects: one with key files or sealed objects but no settings, or settings without ``encryption``, is
    refused (AuthenticationFailed, with or without a passphrase and ``allow_unencrypted``): its settings were removed
    or rewritten, and nothing may be read or written there in the clear (``init --encrypt --recover`` writes them
    again where the file is gone). An unencrypted store opened with a passphrase is refused (UsageError) unless
    ``allow_unencrypted``: whoever gave one meant an encrypted store, and one whose settings and key files were
    removed (to plant a plaintext backup, or to have new backups written in the clear) must not be read or written as
    if nothing happened."""
    config = read_config(raw)
    raw = with_object_lock(raw, None if config is None else config.object_lock)
    if config is not None and config.encrypted:
        return unlock(raw, config, passphrase)
    evidence = encryption_evidence(raw)
    if evidence is not None:
        if config is None:
            raise AuthenticationFailed(f"store {raw.display} holds an encrypted store's {evidence} but no settings "
                                       "file (vecbackup.json); nothing is read or written there in the clear",
                                       hint=RECOVER_HINT)
        raise AuthenticationFailed(f"store {raw.display} holds an encrypted store's {evidence} but its settings "
                                   "(vecbackup.json) do not say it is encrypted; nothing is read or written there in "
                                   "the clear", hint="vecbackup.json was rewritten: put back the one `init` wrote "
                                   "(from a copy, or its earlier version in a versioned bucket)")
    if passphrase.given and not allow_unencrypted:
        raise UsageError(f"store {raw.display} is not encrypted, but a passphrase was given",
                         hint="if it should be encrypted, its vecbackup.json and keys/ are gone: do not trust what it "
                              "holds; else unset the passphrase, or pass --allow-unencrypted")
    return raw


def is_encrypted(store: BlobStore) -> bool:
    return bool(getattr(store, "encrypted", False))


__all__ = ["MAX_KEY_FILES", "SCRYPT_BUDGET", "EncryptedStore", "encryption_evidence", "find_key", "is_encrypted",
           "key_files", "open_encrypted", "read_config", "unlock"]
