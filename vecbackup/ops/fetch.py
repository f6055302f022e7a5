"""Read a backup's data objects back: fetch, check SHA-256 and size, decode."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from vecbackup.errors import CorruptData, MissingData
from vecbackup.format.codec import Chunk, decode_chunk, take_rows
from vecbackup.format.manifest import DataObject
from vecbackup.format.sealed import refuse_sealed
from vecbackup.stores.base import BlobStore, ObjectNotFound, content_hash
from vecbackup.stores.encrypted import is_encrypted


def fetch_object(store: BlobStore, obj: DataObject) -> bytes:
    """The object's bytes, after checking they are exactly what the manifest recorded."""
    try:
        data = store.get(obj.key)
    except ObjectNotFound:
        raise MissingData(f"data object {obj.key} is missing from {store.display}") from None
    if not is_encrypted(store):
        refuse_sealed(data, f"data object {obj.key}")
    if len(data) != obj.size:
        raise CorruptData(f"data object {obj.key} has {len(data)} bytes, the manifest says {obj.size}")
    if content_hash(store, data) != obj.sha256:
        raise CorruptData(f"data object {obj.key} fails its {'MAC' if is_encrypted(store) else 'SHA-256'} check")
    return data


def check_rows(obj: DataObject, held: int) -> None:
    """CorruptData unless an object holding ``held`` rows has the rows the manifest says it uses."""
    if obj.select is None and held != obj.rows:
        raise CorruptData(f"data object {obj.key} holds {held} rows, the manifest says {obj.rows}")
    if obj.select is not None and obj.select and obj.select[-1][0] + obj.select[-1][1] > held:
        raise CorruptData(f"data object {obj.key} holds {held} rows, the manifest selects rows up to "
                          f"{obj.select[-1][0] + obj.select[-1][1]}")


def fetch_chunk(store: BlobStore, obj: DataObject) -> Chunk:
    """The rows of the object the backup holds (its ``select``), checked."""
    chunk = decode_chunk(fetch_object(store, obj))
    check_rows(obj, chunk.num_rows)
    return chunk if obj.select is None else take_rows(chunk, obj.positions())


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
