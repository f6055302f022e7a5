"""Client-side encryption as bytes in, bytes out (docs/FORMAT.md, "Encryption").

An encrypted store has one *repository key*: 32 bytes for AES-256-GCM and 32 bytes for HMAC-SHA256, made once by
``vecbackup init --encrypt``. Backups share it, so an unchanged chunk has one name and is stored once.

    vecbackup.json          the store's settings, in the clear: its repository id, whether it is encrypted, and
                            its object lock (:class:`StoreConfig`); either member may be absent
    keys/<id>.json          a key file: the repository key wrapped (AES-256-GCM) by a key derived from one
                            passphrase with scrypt; several key files may open one store
    everything else         sealed: "VBE1" | nonce (12) | AES-256-GCM ciphertext and tag (16), the object's store
                            key bound as associated data, so a swapped or renamed object fails like a changed one

Data objects are named by the HMAC-SHA256 of their plaintext under the repository's MAC key instead of its SHA-256,
so the store does not reveal content hashes. Nothing here prints or raises a key, a passphrase or a derived secret:
:class:`RepositoryKey` and :class:`KeyFile` leave them out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vecbackup.errors import AuthenticationFailed, CorruptData, Unsupported
from vecbackup.format.sealed import SEALED_MAGIC

STORE_CONFIG = "vecbackup.json"  # the store's settings; its member ``encryption`` makes the store encrypted
KEYS = "keys/"
KEY_SUFFIX = ".json"

NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = len(SEALED_MAGIC) + NONCE_SIZE + TAG_SIZE  # a sealed object is this much longer than its plaintext
MAX_PLAINTEXT = 2**31 - 1 - TAG_SIZE  # what one AES-GCM call of the library takes
_OBJECT_AAD = b"vecbackup object\0"
_KEY_AAD = b"vecbackup key\0"
_REPORT_AAD = b"vecbackup report value\0"
REPORT_HASH = "hmac-sha256:"  # the prefix of a value hashed for a report

CIPHER = "AES-256-GCM"
NAMES = "HMAC-SHA256"
KDF = "scrypt"
#: the work factor of new key files: 2^15 x 8 x 128 bytes = 32 MiB of memory, about 0.1 s on one core
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_WORK = SCRYPT_N * SCRYPT_R * SCRYPT_P
#: what a key file read from the store may ask for (a hostile one must not make us allocate gigabytes)
_SCRYPT_N_RANGE = (2**10, 2**20)
_SCRYPT_R_RANGE = (1, 32)
_SCRYPT_P_RANGE = (1, 16)
_SCRYPT_MEMORY_MAX = 1 << 30
_ID = re.compile(r"^[0-9a-f]{16}$")
_REPOSITORY = re.compile(r"^[0-9a-f]{32}$")
_WRAPPED_SIZE = NONCE_SIZE + 64 + TAG_SIZE
_LABEL_MAX = 200


class RepositoryKey:
    """The key that seals and names every object of one encrypted store. Never printed."""

    __slots__ = ("_enc", "_mac", "repository")

    def __init__(self, repository: str, enc: bytes, mac: bytes) -> None:
        if not _REPOSITORY.fullmatch(repository) or len(enc) != 32 or len(mac) != 32:
            raise ValueError("a repository key is a 32-hex repository id and two 32-byte keys")
        self.repository = repository
        self._enc = enc
        self._mac = mac

    @classmethod
    def generate(cls) -> RepositoryKey:
        return cls(secrets.token_hex(16), secrets.token_bytes(32), secrets.token_bytes(32))

    def __repr__(self) -> str:
        return f"RepositoryKey(repository={self.repository!r})"

    def name(self, data: bytes) -> str:
        """The content name of ``data``: HMAC-SHA256 under the MAC key, 64 hex digits (where an unencrypted store
        uses its SHA-256)."""
        return hmac.new(self._mac, data, hashlib.sha256).hexdigest()

    def report_hash(self, data: bytes) -> str:
        """What a drill report shows for a value whose canonical bytes are ``data``: ``hmac-sha256:`` and the first
        16 hex digits of HMAC-SHA256 under the MAC key of "vecbackup report value" NUL ``data`` (no data object's
        name: a chunk starts "VBCK"). Keyed, so a low-entropy value (a row number, a category) cannot be found by
        hashing guesses without the store's key."""
        return REPORT_HASH + hmac.new(self._mac, _REPORT_AAD + data, hashlib.sha256).hexdigest()[:16]

    def seal(self, key: str, data: bytes) -> bytes:
        """``data`` encrypted and authenticated for the store key ``key``."""
        if len(data) > MAX_PLAINTEXT:
            raise ValueError(f"{key}: {len(data)} bytes is more than one sealed object holds")
        nonce = os.urandom(NONCE_SIZE)
        return SEALED_MAGIC + nonce + AESGCM(self._enc).encrypt(nonce, data, _OBJECT_AAD + key.encode())

    def open(self, key: str, blob: bytes) -> bytes:
        """The plaintext of the sealed object stored under ``key``; AuthenticationFailed if it was changed, damaged,
        swapped with another object, never sealed, or sealed with another key."""
        if not blob.startswith(SEALED_MAGIC):
            raise AuthenticationFailed(f"{key} is not encrypted: an object written without the store's key, or "
                                       "damaged", hint="only vecbackup with the store's key writes to an "
                                       "encrypted store")
        if len(blob) < OVERHEAD:
            raise AuthenticationFailed(f"{key} is truncated ({len(blob)} bytes)")
        nonce = blob[len(SEALED_MAGIC):len(SEALED_MAGIC) + NONCE_SIZE]
        try:
            return AESGCM(self._enc).decrypt(nonce, blob[len(SEALED_MAGIC) + NONCE_SIZE:], _OBJECT_AAD + key.encode())
        except InvalidTag:
            raise AuthenticationFailed(f"{key} fails authentication: it was changed, damaged or swapped with "
                                       "another object") from None

    def to_bytes(self) -> bytes:
        return self._enc + self._mac

    @classmethod
    def from_bytes(cls, repository: str, raw: bytes) -> RepositoryKey:
        return cls(repository, raw[:32], raw[32:])


# -- the store's settings -----------------------------------------------------------------------------------


#: object lock modes (S3's COMPLIANCE and GOVERNANCE), as written in ``init --object-lock`` and ``vecbackup.json``
LOCK_MODES = ("compliance", "governance")
#: the longest retention ``init --object-lock`` takes (S3 allows 100 years; a typo of a few zeros would lock a
#: bucket's bytes, and their bill, for that long in compliance mode)
MAX_LOCK_DAYS = 3660
_LOCK = re.compile(r"^(compliance|governance):([0-9]{1,5})d$")


@dataclass(frozen=True)
class ObjectLock:
    """The retention every object a store keeps is written with (docs/STORES.md, "Object lock"): ``mode`` (S3 Object
    Lock's compliance or governance) until ``days`` days after it is written, and extended by each backup that reuses
    it (docs/FORMAT.md, "Object lock")."""

    mode: str
    days: int

    def __post_init__(self) -> None:
        if self.mode not in LOCK_MODES or type(self.days) is not int or not 1 <= self.days <= MAX_LOCK_DAYS:
            raise ValueError(f"an object lock is compliance or governance for 1 to {MAX_LOCK_DAYS} days, not "
                             f"{self.mode!r} for {self.days!r} days")

    @classmethod
    def parse(cls, text: str) -> ObjectLock:
        """``compliance:35d`` or ``governance:35d``; ValueError naming what is wrong."""
        m = _LOCK.fullmatch(text.strip().lower())
        if m is None:
            raise ValueError(f"{text!r} is not MODE:DAYSd (compliance:35d or governance:35d)")
        return cls(m.group(1), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.mode}:{self.days}d"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "days": self.days}


@dataclass(frozen=True)
class StoreConfig:
    """``vecbackup.json``: the store's settings, written once by ``init`` (if absent: two racing inits cannot both
    win) when it encrypts (``init --encrypt``: the member ``encryption``) or locks objects (``init --object-lock``:
    the member ``object_lock``) or both. ``version`` stays 1: a vecbackup that predates object lock refuses a store
    with object lock and no encryption ("encryption None is not one this vecbackup knows", exit 9) rather than write
    unlocked objects into it; with encryption it would ignore ``object_lock`` (docs/FORMAT.md, "Store settings")."""

    repository: str
    cipher: str = CIPHER
    names: str = NAMES
    version: int = 1
    encrypted: bool = True
    object_lock: ObjectLock | None = None

    def to_json(self) -> bytes:
        d: dict[str, Any] = {"format": "vecbackup-store", "version": self.version, "repository": self.repository}
        if self.encrypted:
            d["encryption"] = {"cipher": self.cipher, "names": self.names, "kdf": KDF}
        if self.object_lock is not None:
            d["object_lock"] = self.object_lock.to_dict()
        return orjson.dumps(d, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str = STORE_CONFIG) -> StoreConfig:
        d = _json_object(data, where)
        if d.get("format") != "vecbackup-store":
            raise CorruptData(f"{where} is not a vecbackup store settings file")
        version = d.get("version")
        if version != 1:
            raise Unsupported(f"{where} has version {version!r}; this vecbackup reads version 1",
                              hint="upgrade vecbackup")
        enc = d.get("encryption")
        if enc is not None and (not isinstance(enc, dict) or enc.get("cipher") != CIPHER or enc.get("names") != NAMES):
            raise Unsupported(f"{where}: encryption {enc!r} is not one this vecbackup knows ({CIPHER} with "
                              f"{NAMES} names)", hint="upgrade vecbackup")
        lock = d.get("object_lock")
        if lock is not None:
            if not isinstance(lock, dict) or set(lock) != {"mode", "days"}:
                raise Unsupported(f"{where}: object_lock {_one_line(lock)} is not one this vecbackup knows",
                                  hint="upgrade vecbackup")
            try:
                lock = ObjectLock(lock["mode"], lock["days"])
            except ValueError as e:
                raise CorruptData(f"{where}: {e}") from None
        if enc is None and lock is None:
            raise CorruptData(f"{where} holds no settings (neither encryption nor object_lock)")
        repository = d.get("repository")
        if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
            raise CorruptData(f"{where}: repository must be 32 hex digits")
        return cls(repository, encrypted=enc is not None, object_lock=lock)


def _one_line(value: Any, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- key files ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrypt1:
    """scrypt parameters of one key file."""

    salt: bytes = field(repr=False)
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def derive(self, secret: bytes) -> bytes:
        return Scrypt(salt=self.salt, length=32, n=self.n, r=self.r, p=self.p).derive(secret)

    @property
    def work(self) -> int:
        """What deriving costs, n x r x p (scrypt's time is proportional to it): SCRYPT_WORK for a key file this
        vecbackup writes, at most 2^23 (32 times that) for one read from a store."""
        return self.n * self.r * self.p

    def to_dict(self) -> dict[str, Any]:
        return {"name": KDF, "n": self.n, "r": self.r, "p": self.p, "salt": _b64(self.salt)}


@dataclass(frozen=True)
class KeyFile:
    """One way into an encrypted store: the repository key wrapped by a passphrase (``keys/<id>.json``)."""

    id: str
    repository: str
    created: str
    kdf: Scrypt1
    wrapped: bytes = field(repr=False)
    label: str = ""
    host: str = ""

    @property
    def store_key(self) -> str:
        return key_file_key(self.id)

    def unwrap(self, secret: bytes) -> RepositoryKey | None:
        """The repository key, or None when ``secret`` is not this key file's passphrase."""
        nonce, body = self.wrapped[:NONCE_SIZE], self.wrapped[NONCE_SIZE:]
        try:
            raw = AESGCM(self.kdf.derive(secret)).decrypt(nonce, body, self._aad())
        except InvalidTag:
            return None
        return RepositoryKey.from_bytes(self.repository, raw)

    def _aad(self) -> bytes:
        return _KEY_AAD + f"{self.id}\0{self.repository}".encode()

    @classmethod
    def wrap(cls, key: RepositoryKey, secret: bytes, *, created: str, label: str = "", host: str = "",
             kdf: Scrypt1 | None = None) -> KeyFile:
        """A new key file that opens ``key`` with ``secret`` (a fresh id, salt and nonce)."""
        kdf = kdf or Scrypt1(secrets.token_bytes(16))
        kf = cls(secrets.token_hex(8), key.repository, created, kdf, b"", _check_label(label), host[:_LABEL_MAX])
        nonce = os.urandom(NONCE_SIZE)
        wrapped = nonce + AESGCM(kdf.derive(secret)).encrypt(nonce, key.to_bytes(), kf._aad())
        return cls(kf.id, kf.repository, created, kdf, wrapped, kf.label, kf.host)

    def to_dict(self) -> dict[str, Any]:
        """What ``key list`` shows: no salt, no wrapped key."""
        return {"id": self.id, "created": self.created, "label": self.label, "host": self.host}

    def to_json(self) -> bytes:
        return orjson.dumps({"format": "vecbackup-key", "version": 1, "id": self.id, "repository": self.repository,
                             "created": self.created, "label": self.label, "host": self.host,
                             "kdf": self.kdf.to_dict(), "wrapped": _b64(self.wrapped)},
                            option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> KeyFile:
        """A key file read from the store, every field checked (it may be hostile: no scrypt cost beyond bounds)."""
        d = _json_object(data, where)
        if d.get("format") != "vecbackup-key":
            raise CorruptData(f"{where} is not a vecbackup key file")
        if d.get("version") != 1:
            raise Unsupported(f"{where} has version {d.get('version')!r}; this vecbackup reads version 1",
                              hint="upgrade vecbackup")
        kid, repository = d.get("id"), d.get("repository")
        if not isinstance(kid, str) or not _ID.fullmatch(kid) or (
                where.startswith(KEYS) and where != key_file_key(kid)):
            raise CorruptData(f"{where}: id must be the 16 hex digits of its name")
        if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
            raise CorruptData(f"{where}: repository must be 32 hex digits")
        texts = {k: d.get(k, "") for k in ("created", "label", "host")}
        if not all(isinstance(v, str) and len(v) <= _LABEL_MAX for v in texts.values()):
            raise CorruptData(f"{where}: created, label and host must be text of at most {_LABEL_MAX} characters")
        kdf = d.get("kdf")
        if not isinstance(kdf, dict) or kdf.get("name") != KDF:
            raise Unsupported(f"{where}: key derivation {kdf!r} is not scrypt", hint="upgrade vecbackup")
        n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
        if not all(type(v) is int for v in (n, r, p)) or not (
                _SCRYPT_N_RANGE[0] <= n <= _SCRYPT_N_RANGE[1] and n & (n - 1) == 0  # type: ignore[operator]
                and _SCRYPT_R_RANGE[0] <= r <= _SCRYPT_R_RANGE[1]  # type: ignore[operator]
                and _SCRYPT_P_RANGE[0] <= p <= _SCRYPT_P_RANGE[1]  # type: ignore[operator]
                and 128 * n * r * p <= _SCRYPT_MEMORY_MAX):  # type: ignore[operator]
            raise CorruptData(f"{where}: scrypt parameters n={n!r} r={r!r} p={p!r} are out of range")
        salt = _unb64(kdf.get("salt"), where, "kdf.salt")
        wrapped = _unb64(d.get("wrapped"), where, "wrapped")
        if not 16 <= len(salt) <= 64 or len(wrapped) != _WRAPPED_SIZE:
            raise CorruptData(f"{where}: salt or wrapped key has the wrong length")
        return cls(kid, repository, texts["created"], Scrypt1(salt, n, r, p), wrapped,  # type: ignore[arg-type]
                   texts["label"], texts["host"])


def key_file_key(key_id: str) -> str:
    if not _ID.fullmatch(key_id):
        raise ValueError(f"not a key id: {key_id!r}")
    return f"{KEYS}{key_id}{KEY_SUFFIX}"


def parse_key_file_key(key: str) -> str | None:
    """The key id a store key names, or None."""
    if not key.startswith(KEYS) or not key.endswith(KEY_SUFFIX):
        return None
    kid = key[len(KEYS):-len(KEY_SUFFIX)]
    return kid if _ID.fullmatch(kid) else None


def is_plain(key: str) -> bool:
    """Whether the object under ``key`` is stored in the clear in an encrypted store (settings and key files)."""
    return key == STORE_CONFIG or key.startswith(KEYS)


def _check_label(label: str) -> str:
    if len(label) > _LABEL_MAX or any(ord(c) < 32 for c in label):
        raise ValueError(f"a key label is at most {_LABEL_MAX} printable characters")
    return label


def _json_object(data: bytes, where: str) -> dict[str, Any]:
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise CorruptData(f"{where} is not valid JSON") from None
    if not isinstance(d, dict):
        raise CorruptData(f"{where} is not a JSON object")
    return d


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: Any, where: str, name: str) -> bytes:
    if not isinstance(text, str) or len(text) > 256:
        raise CorruptData(f"{where}: {name} must be base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CorruptData(f"{where}: {name} is not valid base64") from None
