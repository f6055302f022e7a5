"""Worker processes of a segment backup (ops/segment_backup.py): each decodes one log group of a segment (the
bytes of log i of every field, format/binlog.py LogGroup) and encodes its rows as data chunks with their row
digests, and returns the bytes; the parent names, checks and stores them.

Decoding and encoding hold the interpreter for about 40% of their time (Parquet to arrays, checking JSON values
once for a whole batch, the row digests' loop: VARCHAR, JSON and ARRAY values are handed to the encoder as the bytes
it stores, format/codec.py Packed); zstd, SHA-256 and the writes run on threads outside it. So one
process keeps about two cores busy, and worker processes pay off on more (ops/segment_backup.py WORKERS_CORES,
where the backup chooses). The workers are started with
``spawn`` (the parent runs threads and gRPC channels, which do not survive a fork); they import no database client
and open no connection: bytes in, bytes out. Memory: each worker holds one log group (its files and its encoded
chunks) at a time, and the parent at most one more group per worker in flight.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from vecbackup.format.binlog import LogGroup
from vecbackup.format.codec import Chunk
from vecbackup.format.digests import encode_digests, encode_with_digests
from vecbackup.schema import Field

T = TypeVar("T")


@dataclass(frozen=True)
class Encoded:
    """One chunk of a log group's rows, encoded: what the parent stores, and the rows' keys and insert timestamps
    (which rows are live is the parent's to say: it holds the collection's deletes)."""

    data: bytes  # the .vbc chunk
    digests: bytes  # its .vbd row-digest object
    rows: int
    keys: Any  # the rows' primary keys: an int64 array, or a list of VARCHAR keys
    timestamps: np.ndarray  # uint64


def encode_group(group: LogGroup, columns: tuple[Field, ...], pk: str, batch_size: int, level: int) -> list[Encoded]:
    """Decode ``group`` ``batch_size`` rows at a time and encode each batch as a chunk of ``columns`` (in a worker,
    or in the parent when there are none). Its errors are the decoder's (CorruptData, one line)."""
    return [encode_batch(columns, chunk, ts, pk, level) for chunk, ts in group.batches(batch_size, packed=True)
            if chunk.num_rows]


def encode_batch(columns: tuple[Field, ...], chunk: Chunk, timestamps: np.ndarray, pk: str, level: int) -> Encoded:
    """One batch of a segment's rows (with their insert timestamps) encoded as a chunk with its row digests."""
    data, digests = encode_with_digests(columns, chunk, level=level)
    return Encoded(data, encode_digests(digests), chunk.num_rows, chunk.columns[pk].values, timestamps)


def default_workers() -> int:
    """Worker processes a segment backup starts by default: one per core it may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _start_worker() -> None:
    """A worker leaves Ctrl-C to the parent (which stops the backup and shuts the workers down): the terminal sends
    SIGINT to the whole process group, and a worker would otherwise print a traceback of its own. And it ends when
    the parent does, however the parent ended (killed: nobody would shut it down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), name="vecbackup-parent", daemon=True).start()


def _end_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


class WorkerPool:
    """``workers`` processes (``spawn``) that decode and encode log groups. They start with the first groups handed
    to them, and without running the program's main module again: ``spawn`` would import it in each worker (a
    script that calls vecbackup.backup at its top level, without ``if __name__ == "__main__"``, would start a
    backup in every worker), so the main module is out of sight while a worker may start."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")  # no file, no spec: nothing for spawn to import
        try:
            return self._pool.submit(fn, *args)
        finally:
            if main is not None:
                sys.modules["__main__"] = main

    def result(self, future: Future[T], *, poll: float = 0.5) -> T:
        """``future.result()``, or BrokenProcessPool as soon as a worker has died. The executor says so itself when
        a worker dies while it decodes, but not when one is killed while it sends its result back (the OOM killer
        does not choose its moment): the executor then waits for the rest of the message, which never comes, and
        the backup would hang (seen in tests/integration/test_segment_backup.py). So the workers are looked at while
        the result is awaited."""
        while True:
            try:
                return future.result(timeout=poll)
            except TimeoutError:
                if self._died():
                    raise BrokenProcessPool("a worker process ended unexpectedly") from None

    def _processes(self) -> list[multiprocessing.Process]:
        # the executor's own table of its processes (a private attribute, in every CPython since 3.2)
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def _died(self) -> bool:
        return any(p.exitcode is not None for p in self._processes())  # a worker ends only with the pool

    def shutdown(self, *, kill: bool = False) -> None:
        """Cancel what has not started, wait for what has (at most a log group a worker), end the workers. With
        ``kill`` (the backup failed) the workers are killed instead of waited for: after one died, the executor may
        be waiting for a message from it that will never come, and waiting for it would never end."""
        if not kill:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        processes = self._processes()
        for p in processes:
            p.kill()
        for p in processes:
            p.join(5)
        # the executor's thread may be blocked reading the rest of a dead worker's message: with every worker gone,
        # closing this process's own copy of the pipe's writing end gives it the end of file it needs to stop (it
        # would otherwise block forever, and the interpreter's exit with it, which waits for that thread)
        writer = getattr(getattr(self._pool, "_result_queue", None), "_writer", None)
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        self._pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["Encoded", "WorkerPool", "default_workers", "encode_batch", "encode_group"]
