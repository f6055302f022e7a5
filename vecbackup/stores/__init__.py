"""Object stores behind one small protocol (:class:`BlobStore`)."""

from __future__ import annotations

from vecbackup.stores.base import BlobStore, ObjectExists, ObjectInfo, ObjectNotFound
from vecbackup.urls import StoreURL, parse_store_url


def open_store(url: str | StoreURL, *, create: bool = False) -> BlobStore:
    """Open the store a URL names; ``create`` makes a missing local folder (buckets and containers
    are never created: a missing one is an error that names it). Remote stores are wrapped in
    RetryingStore."""
    parsed = parse_store_url(url) if isinstance(url, str) else url
    if parsed.scheme == "file":
        from vecbackup.stores.local import LocalStore

        return LocalStore(parsed.location, display=parsed.display, create=create)
    from vecbackup.stores.retry import RetryingStore

    if parsed.scheme == "s3":
        from vecbackup.stores.s3 import S3Store

        return RetryingStore(S3Store.from_url(parsed))
    if parsed.scheme == "azure":
        from vecbackup.stores.azure import AzureStore

        return RetryingStore(AzureStore.from_url(parsed))
    raise AssertionError(f"unhandled store scheme {parsed.scheme}")  # parse_store_url rejects others


__all__ = ["BlobStore", "ObjectExists", "ObjectInfo", "ObjectNotFound", "open_store"]
