"""Every key vecbackup reads or writes in a store is built here (docs/FORMAT.md, "Key layout").

    manifests/<collection>/<backup-id>.json     one per complete backup: the commit point
    data/<aa>/<sha256>.vbc                       content-addressed data chunks, shared by backups
    digests/<aa>/<sha256>.vbd                    the row digests of data/<aa>/<sha256>.vbc (same name)

(the shard records of sharded backups, ``shards/...``, are built in format/shard.py, tombstones of deleted backups,
``tombstones/...``, in format/tombstone.py, and the settings and key files of encrypted stores in format/crypto.py)
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from vecbackup.errors import UsageError

MANIFESTS = "manifests/"
DATA = "data/"
DATA_SUFFIX = ".vbc"
DIGESTS = "digests/"
DIGESTS_SUFFIX = ".vbd"
MANIFEST_SUFFIX = ".json"
LOCKS = "locks/"  # store locks (ops/lock.py)
#: the kinds of objects vecbackup removes as part of its normal work, so never written with an object lock (a lock's
#: version would stay, and be billed, for the whole retention after every release): store locks only. Every other
#: object (data, digests, manifests, shard records and closed marks, tombstones, settings, key files) is kept
TRANSIENT = (LOCKS,)

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[0-9a-f]{8}$")  # ASCII digits only (\d takes any script's)
_SUFFIX = re.compile(r"^[0-9a-f]{8}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def is_transient(key: str) -> bool:
    """Whether ``key`` is an object vecbackup removes as part of its normal work (:data:`TRANSIENT`): written without
    an object lock in a store that has one (docs/FORMAT.md, "Object lock")."""
    return key.startswith(TRANSIENT)


def escape_name(name: str) -> str:
    """A collection name as one key segment: bytes outside [A-Za-z0-9_.-] become %XX."""
    if name in (".", ".."):
        return name.replace(".", "%2E")
    if not name.isascii():
        try:
            name.encode()
        except UnicodeEncodeError:  # a lone surrogate, e.g. from a command-line argument that is not UTF-8
            raise UsageError(f"collection name {name!r} is not valid Unicode") from None
    return _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)


def canonical_name(segment: str) -> str | None:
    """The collection a key segment names, or None when it is not how escape_name writes that name (``abc%41``
    reads as ``abcA``, whose key is another one: delete or prune would act on that one)."""
    name = unescape_name(segment)
    try:
        return name if escape_name(name) == segment else None
    except UsageError:
        return None


def unescape_name(segment: str) -> str:
    from urllib.parse import unquote

    return unquote(segment)


def make_backup_id(at: datetime, suffix: str) -> str:
    """``YYYYMMDDTHHMMSS.ffffffZ-<suffix>``: the time ``at`` in UTC to the microsecond, a ``-`` and ``suffix`` (8
    lower-case hex digits), so that ids sort by time (docs/FORMAT.md, "Key layout"). Every backup id is made here:
    a random one (:func:`new_backup_id`) and a sharded backup's, derived from its run (ops/commit.py)."""
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"a backup id ends in 8 lower-case hex digits, not {suffix!r}")
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + suffix


def new_backup_id(now: datetime | None = None) -> str:
    """The id of a backup started ``now`` (default: now) with a random suffix: sorts by start time, unique within a
    microsecond."""
    return make_backup_id(now or datetime.now(UTC), secrets.token_hex(4))


def is_backup_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def manifest_key(collection: str, backup_id: str) -> str:
    return f"{MANIFESTS}{escape_name(collection)}/{backup_id}{MANIFEST_SUFFIX}"


def manifests_prefix(collection: str | None = None) -> str:
    return MANIFESTS if collection is None else f"{MANIFESTS}{escape_name(collection)}/"


def parse_manifest_key(key: str) -> tuple[str, str] | None:
    """(collection, backup id) of a manifest key, or None for anything else."""
    if not key.startswith(MANIFESTS) or not key.endswith(MANIFEST_SUFFIX):
        return None
    rest = key[len(MANIFESTS) : -len(MANIFEST_SUFFIX)]
    if rest.count("/") != 1:
        return None
    coll, backup_id = rest.split("/")
    name = canonical_name(coll)
    if name is None or not is_backup_id(backup_id):
        return None
    return name, backup_id


def _sha_key(prefix: str, sha256_hex: str, suffix: str) -> str:
    if not _SHA.fullmatch(sha256_hex):
        raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
    return f"{prefix}{sha256_hex[:2]}/{sha256_hex}{suffix}"


def _parse_sha_key(prefix: str, key: str, suffix: str) -> str | None:
    if not key.startswith(prefix) or not key.endswith(suffix):
        return None
    sha = key.rsplit("/", 1)[-1][: -len(suffix)]
    return sha if _SHA.fullmatch(sha) and key == _sha_key(prefix, sha, suffix) else None


def data_key(sha256_hex: str) -> str:
    return _sha_key(DATA, sha256_hex, DATA_SUFFIX)


def parse_data_key(key: str) -> str | None:
    """The sha256 a data key names, or None."""
    return _parse_sha_key(DATA, key, DATA_SUFFIX)


def digests_key(sha256_hex: str) -> str:
    """The row digests of the data object named by ``sha256_hex`` (docs/FORMAT.md, "Incremental uploads")."""
    return _sha_key(DIGESTS, sha256_hex, DIGESTS_SUFFIX)


def parse_digests_key(key: str) -> str | None:
    """The sha256 of the data object whose row digests ``key`` names, or None."""
    return _parse_sha_key(DIGESTS, key, DIGESTS_SUFFIX)
