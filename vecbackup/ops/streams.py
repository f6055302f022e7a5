"""Read several streams of chunks at once (``backup --parallel K``): one thread per stream, merged into one
sequence as chunks arrive, each tagged with its stream's number.

Memory stays bounded: at most ``depth`` chunks wait in the queue and each thread holds the one it is handing over,
so about ``depth + K`` chunks. The first error of any stream stops the others and is raised to the consumer; a
consumer that stops early (an error of its own, Ctrl-C) stops them too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from vecbackup.format.codec import Chunk

_DONE = object()


def merged(streams: list[Iterator[Chunk]], depth: int = 2) -> Iterator[tuple[int, Chunk]]:
    """``(stream number, chunk)`` from every stream, in the order they arrive."""
    if len(streams) == 1:
        for chunk in streams[0]:
            yield 0, chunk
        return
    handoff: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(item: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump(i: int, stream: Iterator[Chunk]) -> None:
        try:
            for chunk in stream:
                if not put((i, chunk)):
                    return
            put((i, _DONE))
        except BaseException as e:
            put((i, e))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass

    threads = [threading.Thread(target=pump, args=(i, s), name=f"vecbackup-read-{i}", daemon=True)
               for i, s in enumerate(streams)]
    for t in threads:
        t.start()
    try:
        running = len(threads)
        while running:
            i, item = handoff.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield i, item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


__all__ = ["merged"]
