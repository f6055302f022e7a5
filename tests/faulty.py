"""FaultyStore: wraps a real store and injects failures on chosen calls (kopia's faulty.go, in Python).

A fault is (method, key predicate, exception, times): the next `times` matching calls raise the
exception, before the inner store is called (``when="before"``) or after it succeeded, losing the
answer (``when="after"``, e.g. a write that landed but whose response was lost).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vecbackup.stores.base import BlobStore, ObjectInfo


@dataclass
class Fault:
    method: str
    match: Callable[[str], bool]
    error: Callable[[], Exception]
    times: int = 1
    when: str = "before"


class FaultyStore:
    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.display = inner.display
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def inject(self, method: str, error: Callable[[], Exception], *, times: int = 1,
               match: Callable[[str], bool] = lambda key: True, when: str = "before") -> None:
        self.faults.append(Fault(method, match, error, times, when))

    def _fault(self, method: str, key: str, when: str) -> None:
        with self._lock:
            if when == "before":
                self.calls.append((method, key))
            for f in self.faults:
                if f.method == method and f.when == when and f.times > 0 and f.match(key):
                    f.times -= 1
                    raise f.error()

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        self._fault("put", key, "before")
        self.inner.put(key, data, if_absent=if_absent)
        self._fault("put", key, "after")

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        self._fault("get", key, "before")
        data = self.inner.get(key, offset=offset, length=length)
        self._fault("get", key, "after")
        return data

    def stat(self, key: str) -> ObjectInfo:
        self._fault("stat", key, "before")
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._fault("list", prefix, "before")
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._fault("delete", key, "before")
        self.inner.delete(key)
