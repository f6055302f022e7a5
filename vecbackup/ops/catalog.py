"""Finding backups in a store: list manifests, load one, resolve ``latest`` or an id prefix.

A manifest with a tombstone (format/tombstone.py) is a deleted backup: nothing here lists or resolves it (newest()
reads it: it is still what the store held)."""

from __future__ import annotations

from dataclasses import dataclass

from vecbackup.errors import CorruptData, NotFound, UsageError, VecbackupError
from vecbackup.format import layout
from vecbackup.format.manifest import Manifest
from vecbackup.format.tombstone import Tombstone, parse_tombstone_key, tombstones_prefix
from vecbackup.stores.base import BlobStore, ObjectNotFound
from vecbackup.words import param


@dataclass(frozen=True)
class BackupRef:
    collection: str
    backup_id: str
    key: str


def list_refs(store: BlobStore, collection: str | None = None) -> list[BackupRef]:
    """Every committed backup (one with a manifest) that was not deleted (no tombstone), oldest first."""
    dead = deleted(store, collection)
    return [r for r in _manifest_refs(store, collection) if (r.collection, r.backup_id) not in dead]


def deleted_refs(store: BlobStore, collection: str | None = None) -> list[BackupRef]:
    """Manifests still in the store of backups that were deleted (a delete that stopped between its tombstone and
    the manifest, or a manifest put back): gc removes them."""
    dead = deleted(store, collection)
    return [r for r in _manifest_refs(store, collection) if (r.collection, r.backup_id) in dead]


def _manifest_refs(store: BlobStore, collection: str | None) -> list[BackupRef]:
    refs = []
    for info in store.list(layout.manifests_prefix(collection)):
        parsed = layout.parse_manifest_key(info.key)
        if parsed is not None:
            refs.append(BackupRef(parsed[0], parsed[1], info.key))
    refs.sort(key=lambda r: (r.backup_id, r.collection))
    return refs


def newest(store: BlobStore) -> Manifest | None:
    """The newest readable manifest in the store, of any collection and deleted backups' included (a tombstone does
    not hide it), or None: what the store's settings are checked against before a backup writes
    (stores/objectlock.check_lock_kept), one listing and a read. Manifests that cannot be read are passed over, as
    many as there are: a bound would let whoever may write the bucket plant that many newer unreadable ones and so
    make the store look as if it had never held a locked backup."""
    for ref in reversed(_manifest_refs(store, None)):
        try:
            return load(store, ref)
        except VecbackupError:
            continue
    return None


def deleted(store: BlobStore, collection: str | None = None) -> set[tuple[str, str]]:
    """(collection, backup id) of every backup with a tombstone. Its presence is what counts (nothing is read): a
    tombstone someone planted deletes a backup, which whoever can write the store can do anyway."""
    return {parsed for info in store.list(tombstones_prefix(collection))
            if (parsed := parse_tombstone_key(info.key)) is not None}


def read_tombstone(store: BlobStore, key: str) -> Tombstone:
    """The tombstone stored under ``key``, checked against its key."""
    tomb = Tombstone.from_json(store.get(key), where=key)
    if tomb.key != key:
        raise CorruptData(f"tombstone {key} names backup {tomb.backup_id} of {tomb.collection!r}")
    return tomb


def load(store: BlobStore, ref: BackupRef) -> Manifest:
    try:
        data = store.get(ref.key)
    except ObjectNotFound:
        raise NotFound(f"backup {ref.backup_id} not found in {store.display}") from None
    manifest = Manifest.from_json(data, where=f"manifest of backup {ref.backup_id}")
    if manifest.backup_id != ref.backup_id or manifest.collection.name != ref.collection:
        raise CorruptData(f"manifest {ref.key} names backup {manifest.backup_id} of {manifest.collection.name!r}")
    return manifest


def list_manifests(store: BlobStore, collection: str | None = None) -> tuple[list[Manifest], list[str]]:
    """Manifests of every backup, and a message for each one that could not be read."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    for ref in list_refs(store, collection):
        try:
            manifests.append(load(store, ref))
        except VecbackupError as e:
            problems.append(f"{ref.key}: {e}")
    return manifests, problems


def find(store: BlobStore, selector: str, collection: str | None = None) -> Manifest:
    """The manifest of the backup ``selector`` names (see :func:`resolve`)."""
    return load(store, resolve(store, selector, collection))


def resolve(store: BlobStore, selector: str, collection: str | None = None) -> BackupRef:
    """A backup by full id, unique id prefix, or ``latest`` (newest, optionally of one collection)."""
    refs = list_refs(store, collection)
    if selector == "latest":
        if not refs:
            where = f" of collection {collection!r}" if collection else ""
            raise NotFound(f"no backups{where} in {store.display}")
        return refs[-1]
    matches = [r for r in refs if r.backup_id == selector] or [r for r in refs if r.backup_id.startswith(selector)]
    if not matches:
        raise NotFound(f"no backup {selector!r} in {store.display}", hint="`vecbackup list` shows the backups")
    if len({r.backup_id for r in matches}) > 1:
        raise UsageError(f"backup id prefix {selector!r} matches {len(matches)} backups", hint="give more of the id")
    if len(matches) > 1:
        raise UsageError(f"backup {selector!r} exists for several collections", hint=f"add {param('collection')}")
    return matches[0]
