"""Object stores behind one small protocol (:class:`BlobStore`)."""

from __future__ import annotations

from datetime import datetime

from vecbackup.passphrase import Passphrase
from vecbackup.stores.base import BlobStore, ObjectExists, ObjectInfo, ObjectNotFound
from vecbackup.urls import StoreURL, parse_store_url


def open_store(url: str | StoreURL, *, create: bool = False, passphrase: Passphrase | None = None,
               allow_unencrypted: bool = False, as_of: datetime | None = None) -> BlobStore:
    """Open the store a URL names; ``create`` makes a missing local folder (buckets and containers
    are never created: a missing one is an error that names it). Remote stores are wrapped in
    RetryingStore. An encrypted store is unlocked with ``passphrase`` (None: from the environment,
    vecbackup.passphrase) and wrapped in EncryptedStore; WrongKey (exit 13) if it opens no key file. An
    unencrypted store opened with a passphrase is refused (UsageError) unless ``allow_unencrypted``. With
    ``as_of`` the store is read as it was then (stores/versions.py; read-only; Unsupported where it keeps no
    versions): its settings and key files too."""
    from vecbackup.stores.encrypted import open_encrypted

    raw = open_raw_store(url, create=create)
    if as_of is not None:
        from vecbackup.stores.versions import as_of as point_in_time

        raw = point_in_time(raw, as_of)
    return open_encrypted(raw, Passphrase.from_env() if passphrase is None else passphrase,
                          allow_unencrypted=allow_unencrypted)


def open_raw_store(url: str | StoreURL, *, create: bool = False, keep_cached: bool = False) -> BlobStore:
    """The store as it is, without unlocking it (``init`` and ``key`` manage key files through it). A local folder
    drops what it writes and reads from the page cache unless ``keep_cached`` (stores/local.py)."""
    parsed = parse_store_url(url) if isinstance(url, str) else url
    if parsed.scheme == "file":
        from vecbackup.stores.local import LocalStore

        return LocalStore(parsed.location, display=parsed.display, create=create, keep_cached=keep_cached)
    from vecbackup.stores.retry import RetryingStore

    if parsed.scheme == "s3":
        from vecbackup.stores.s3 import S3Store

        return RetryingStore(S3Store.from_url(parsed))
    if parsed.scheme == "azure":
        from vecbackup.stores.azure import AzureStore

        return RetryingStore(AzureStore.from_url(parsed))
    raise AssertionError(f"unhandled store scheme {parsed.scheme}")  # parse_store_url rejects others


__all__ = ["BlobStore", "ObjectExists", "ObjectInfo", "ObjectNotFound", "Passphrase", "open_raw_store", "open_store"]
