"""Read a backup's data objects back: fetch, check SHA-256 and size, decode."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from vecbackup.errors import CorruptData, MissingData
from vecbackup.format.codec import Chunk, decode_chunk
from vecbackup.format.manifest import DataObject
from vecbackup.stores.base import BlobStore, ObjectNotFound


def fetch_object(store: BlobStore, obj: DataObject) -> bytes:
    """The object's bytes, after checking they are exactly what the manifest recorded."""
    try:
        data = store.get(obj.key)
    except ObjectNotFound:
        raise MissingData(f"data object {obj.key} is missing from {store.display}") from None
    if len(data) != obj.size:
        raise CorruptData(f"data object {obj.key} has {len(data)} bytes, the manifest says {obj.size}")
    if hashlib.sha256(data).hexdigest() != obj.sha256:
        raise CorruptData(f"data object {obj.key} fails its SHA-256 check")
    return data


def fetch_chunk(store: BlobStore, obj: DataObject) -> Chunk:
    chunk = decode_chunk(fetch_object(store, obj))
    if chunk.num_rows != obj.rows:
        raise CorruptData(f"data object {obj.key} holds {chunk.num_rows} rows, the manifest says {obj.rows}")
    return chunk


def iter_chunks(store: BlobStore, objects: Sequence[DataObject], *, read_ahead: int = 2) -> Iterator[
        tuple[DataObject, Chunk]]:
    """Chunks in manifest order, fetched and decoded ``read_ahead`` objects ahead of the consumer."""
    with ThreadPoolExecutor(max_workers=max(1, read_ahead), thread_name_prefix="vecbackup-fetch") as pool:
        pending: deque[tuple[DataObject, Future[Chunk]]] = deque()
        it = iter(objects)
        try:
            for obj in it:
                pending.append((obj, pool.submit(fetch_chunk, store, obj)))
                if len(pending) > read_ahead:
                    done_obj, fut = pending.popleft()
                    yield done_obj, fut.result()
            while pending:
                done_obj, fut = pending.popleft()
                yield done_obj, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()
