"""vecbackup.ops.streams.merged: several chunk streams read at once, merged, bounded, and stopped together."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from vecbackup.format.codec import Chunk, Column
from vecbackup.ops.streams import merged


def _chunk(tag: int) -> Chunk:
    return Chunk("_default", 1, {"pk": Column(np.array([tag]))})


class Produced:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.closed: list[int] = []

    def stream(self, i: int, n: int, fail_at: int | None = None, delay: float = 0.0) -> Iterator[Chunk]:
        try:
            for j in range(n):
                if j == fail_at:
                    raise RuntimeError(f"stream {i} broke")
                time.sleep(delay)
                with self.lock:
                    self.count += 1
                yield _chunk(i * 1000 + j)
        finally:
            self.closed.append(i)


def test_every_chunk_of_every_stream_arrives_tagged():
    p = Produced()
    got = list(merged([p.stream(i, 50) for i in range(3)], depth=2))
    assert sorted((i, int(c.columns["pk"].values[0])) for i, c in got) == \
        [(i, i * 1000 + j) for i in range(3) for j in range(50)]
    for i in range(3):  # each stream's own order is kept
        mine = [int(c.columns["pk"].values[0]) for s, c in got if s == i]
        assert mine == sorted(mine)


def test_memory_is_bounded_by_depth_and_streams():
    p = Produced()
    it = merged([p.stream(i, 100) for i in range(4)], depth=2)
    for consumed, _ in enumerate(it, start=1):
        time.sleep(0.002)
        assert p.count - consumed <= 2 + 4  # queued + one held by each thread
        if consumed == 40:
            break
    it.close()
    time.sleep(0.3)
    assert p.count < 400 and sorted(p.closed) == [0, 1, 2, 3]  # stopped, not read to the end


def test_the_first_error_stops_every_stream():
    p = Produced()
    with pytest.raises(RuntimeError, match="stream 1 broke"):
        for _ in merged([p.stream(0, 10_000, delay=0.001), p.stream(1, 100, fail_at=5)], depth=2):
            pass
    time.sleep(0.3)
    assert sorted(p.closed) == [0, 1] and p.count < 10_000
    assert not [t for t in threading.enumerate() if t.name.startswith("vecbackup-read-")]


def test_one_stream_is_read_in_this_thread():
    seen = []

    def stream() -> Iterator[Chunk]:
        seen.append(threading.current_thread().name)
        yield _chunk(1)

    assert [i for i, _ in merged([stream()])] == [0]
    assert seen == [threading.current_thread().name]
