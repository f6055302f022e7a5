"""Retries as a wrapper around any BlobStore (not code inside each provider).

Only TransientError is retried — timeouts, connection resets, throttling, 5xx — with exponential
backoff and full jitter, bounded both in attempts and in total time. Everything else (not found,
permission denied, already exists) fails at once.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from vecbackup.format.crypto import ObjectLock
from vecbackup.stores.base import (
    BlobStore,
    ObjectExists,
    ObjectInfo,
    Retention,
    TransientError,
    check_object_lock,
    lock_objects,
    object_lock,
    retain,
    retention,
)
from vecbackup.stores.versions import ObjectVersion

T = TypeVar("T")

#: environment overrides, for tests and impatient operators
ENV_ATTEMPTS = "VECBACKUP_STORE_RETRY_ATTEMPTS"
ENV_SECONDS = "VECBACKUP_STORE_RETRY_SECONDS"


class RetryingStore:
    def __init__(
        self,
        inner: BlobStore,
        *,
        attempts: int | None = None,
        max_seconds: float | None = None,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.inner = inner
        self.display = inner.display
        self.attempts = attempts if attempts is not None else int(os.environ.get(ENV_ATTEMPTS, "8"))
        self.max_seconds = max_seconds if max_seconds is not None else float(os.environ.get(ENV_SECONDS, "120"))
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rand = rand
        self.retries = 0  # how many retries happened (for reports and tests)

    def _delay(self, attempt: int) -> float:
        # "full jitter": uniform in [0, min(cap, base * 2^attempt)]
        return self._rand() * min(self.max_delay, self.base_delay * (2 ** attempt))

    def _run(self, what: str, fn: Callable[[], T]) -> T:
        start = time.monotonic()
        attempt = 0
        waited = 0.0
        while True:
            try:
                return fn()
            except TransientError as e:
                attempt += 1
                elapsed = max(time.monotonic() - start, waited)
                delay = self._delay(attempt)
                if attempt >= self.attempts or elapsed + delay > self.max_seconds:
                    raise TransientError(f"{what} failed after {attempt} attempts in {elapsed:.0f}s: {e.message}",
                                         hint=e.hint) from None
                self.retries += 1
                waited += delay
                self._sleep(delay)

    @property
    def concurrency(self) -> int:
        """The wrapped store's preferred number of requests in flight."""
        return int(getattr(self.inner, "concurrency", 2))

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        failed_once = False

        def attempt() -> None:
            nonlocal failed_once
            try:
                self.inner.put(key, data, if_absent=if_absent)
            except ObjectExists:
                # an earlier attempt may have succeeded before its answer was lost: it is ours if equal
                if failed_once and self.inner.get(key) == data:
                    return
                raise
            except TransientError:
                failed_once = True
                raise

        self._run(f"writing {key} to {self.display}", attempt)

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self._run(f"reading {key} from {self.display}",
                         lambda: self.inner.get(key, offset=offset, length=length))

    def stat(self, key: str) -> ObjectInfo:
        return self._run(f"checking {key} in {self.display}", lambda: self.inner.stat(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # a listing is retried as a whole; it is materialised so a retry cannot yield duplicates
        return iter(self._run(f"listing {prefix or '/'} in {self.display}", lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        self._run(f"deleting {key} from {self.display}", lambda: self.inner.delete(key))

    # object lock (stores.base.Retaining), where the wrapped store has it

    @property
    def object_lock(self) -> ObjectLock | None:
        return object_lock(self.inner)

    def lock_objects(self, lock: ObjectLock) -> None:
        lock_objects(self.inner, lock)

    def check_object_lock(self) -> None:
        self._run(f"reading the object lock configuration of {self.display}", lambda: check_object_lock(self.inner))

    def retention(self, key: str) -> Retention | None:
        return self._run(f"reading the retention of {key} in {self.display}", lambda: retention(self.inner, key))

    def retain(self, key: str, until: Retention) -> None:
        self._run(f"extending the retention of {key} in {self.display}",
                  lambda: retain(self.inner, key, until))

    # -- versions, where the inner store keeps them (stores/versions.py) ------------------------------------------

    @property
    def _versioned(self) -> Any:  # an S3 or Azure store; stores/versions.versioned() checks that before calling
        return self.inner

    def versioning(self) -> str:
        return str(self._run(f"reading the versioning of {self.display}", self._versioned.versioning))

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return iter(self._run(f"listing the versions of {prefix or '/'} in {self.display}",
                              lambda: list(self._versioned.versions(prefix))))

    def get_version(self, key: str, version_id: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return bytes(self._run(f"reading {key} from {self.display}",
                               lambda: self._versioned.get_version(key, version_id, offset=offset,
                                                                      length=length)))

    def undelete(self, version: ObjectVersion, markers: Sequence[ObjectVersion]) -> None:
        self._run(f"bringing back {version.key} in {self.display}", lambda: self._versioned.undelete(version, markers))
