"""RetryingStore over a real local store with injected faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faulty import FaultyStore
from vecbackup.errors import Unreachable
from vecbackup.stores.base import ObjectExists, ObjectNotFound, PermissionDenied, TransientError
from vecbackup.stores.local import LocalStore
from vecbackup.stores.retry import RetryingStore


def transient() -> Exception:
    return TransientError("connection reset by peer")


@pytest.fixture
def faulty(tmp_path: Path) -> FaultyStore:
    return FaultyStore(LocalStore(tmp_path / "s", create=True))


def _retrying(inner, **kw):
    sleeps: list[float] = []
    store = RetryingStore(inner, sleep=sleeps.append, rand=lambda: 1.0, **kw)
    return store, sleeps


def test_transient_failures_are_retried_with_exponential_backoff(faulty):
    faulty.inject("put", transient, times=3)
    store, sleeps = _retrying(faulty, attempts=5, max_seconds=100, base_delay=0.5, max_delay=3)
    store.put("a", b"x")
    assert store.get("a") == b"x"
    assert sleeps == [1.0, 2.0, 3.0]  # 0.5*2^1, 0.5*2^2, capped at 3
    assert store.retries == 3


def test_full_jitter_stays_within_the_cap(faulty):
    faulty.inject("get", transient, times=4)
    faulty.inner.put("k", b"v")
    vals = iter([0.0, 0.25, 0.5, 0.99])
    sleeps: list[float] = []
    store = RetryingStore(faulty, attempts=9, max_seconds=100, base_delay=1, max_delay=4, sleep=sleeps.append,
                          rand=lambda: next(vals))
    assert store.get("k") == b"v"
    assert sleeps == [0.0, 0.25 * 4, 0.5 * 4, 0.99 * 4]


def test_attempts_are_bounded(faulty):
    faulty.inject("stat", transient, times=100)
    store, sleeps = _retrying(faulty, attempts=4, max_seconds=100)
    with pytest.raises(TransientError, match="after 4 attempts") as ei:
        store.stat("x")
    assert len(sleeps) == 3
    assert ei.value.exit_code == Unreachable.exit_code


def test_time_is_bounded(faulty):
    faulty.inject("get", transient, times=100)
    store, sleeps = _retrying(faulty, attempts=100, max_seconds=5, base_delay=1, max_delay=10)
    with pytest.raises(TransientError):
        store.get("x")
    # delays 2, 4 would exceed 5s of planned waiting after the first: it stops early
    assert sum(sleeps) <= 5


@pytest.mark.parametrize("error", [lambda: PermissionDenied("403 forbidden"), lambda: ObjectNotFound("gone")])
def test_permanent_errors_fail_fast(faulty, error):
    faulty.inject("get", error, times=1)
    store, sleeps = _retrying(faulty, attempts=5, max_seconds=100)
    with pytest.raises((PermissionDenied, ObjectNotFound)):
        store.get("x")
    assert sleeps == []
    assert faulty.calls == [("get", "x")]


def test_conditional_put_whose_answer_was_lost_is_not_a_conflict(faulty):
    """The write landed but the response was lost: the retry finds our own bytes and succeeds."""
    faulty.inject("put", transient, times=1, when="after")
    store, _ = _retrying(faulty, attempts=3, max_seconds=100)
    store.put("manifest", b"ours", if_absent=True)
    assert store.get("manifest") == b"ours"


def test_conditional_put_conflict_with_someone_else_is_reported(faulty):
    faulty.inner.put("manifest", b"theirs")
    faulty.inject("put", transient, times=1)
    store, _ = _retrying(faulty, attempts=3, max_seconds=100)
    with pytest.raises(ObjectExists):
        store.put("manifest", b"ours", if_absent=True)
    assert faulty.inner.get("manifest") == b"theirs"


def test_conditional_put_without_earlier_failure_never_compares(faulty):
    faulty.inner.put("m", b"same")
    store, _ = _retrying(faulty)
    with pytest.raises(ObjectExists):
        store.put("m", b"same", if_absent=True)


def test_list_is_retried_as_a_whole(faulty):
    for k in ("a/1", "a/2", "b/1"):
        faulty.inner.put(k, b"")
    faulty.inject("list", transient, times=2)
    store, sleeps = _retrying(faulty, attempts=3, max_seconds=100)
    assert [o.key for o in store.list("a/")] == ["a/1", "a/2"]
    assert len(sleeps) == 2


def test_env_overrides(monkeypatch, faulty):
    monkeypatch.setenv("VECBACKUP_STORE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("VECBACKUP_STORE_RETRY_SECONDS", "7")
    store = RetryingStore(faulty)
    assert (store.attempts, store.max_seconds) == (2, 7.0)


def test_objects_in_flight_follow_the_store_concurrency(faulty):
    from vecbackup.stores.base import in_flight

    assert in_flight(faulty.inner) == 2  # a local folder has no setting: the default
    faulty.inner.concurrency = 6  # type: ignore[attr-defined]
    assert in_flight(RetryingStore(faulty.inner)) == 6
    faulty.inner.concurrency = 64  # type: ignore[attr-defined]
    assert in_flight(RetryingStore(faulty.inner)) == 8  # capped: each slot holds a batch in memory
