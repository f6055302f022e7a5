"""One contract, every store: the local folder, S3 (a real SeaweedFS) and Azure Blob (a real Azurite).

Whatever a store is, operations above it rely on exactly these behaviours."""

from __future__ import annotations

import os
import threading

import pytest

from vecbackup.errors import AlreadyExists, NotFound
from vecbackup.format import layout
from vecbackup.stores.base import BlobStore, ObjectExists, ObjectNotFound


@pytest.fixture
def store(any_store) -> BlobStore:
    return any_store.open()


def test_put_get_overwrite(store):
    store.put("a/b/c.bin", b"\x00\x01hello")
    assert store.get("a/b/c.bin") == b"\x00\x01hello"
    store.put("a/b/c.bin", b"second")
    assert store.get("a/b/c.bin") == b"second"
    assert store.stat("a/b/c.bin").size == 6


def test_empty_and_binary_objects(store):
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.stat("empty").size == 0
    blob = bytes(range(256)) * 64
    store.put("bin", blob)
    assert store.get("bin") == blob


def test_ranges(store):
    data = bytes(range(200))
    store.put("r", data)
    assert store.get("r", offset=10) == data[10:]
    assert store.get("r", offset=10, length=5) == data[10:15]
    assert store.get("r", offset=0, length=1) == data[:1]
    assert store.get("r", offset=195, length=50) == data[195:]
    assert store.get("r", offset=200) == b""
    assert store.get("r", offset=500, length=3) == b""


def test_missing_objects(store):
    with pytest.raises(ObjectNotFound) as ei:
        store.get("nope/x")
    assert isinstance(ei.value, NotFound)
    with pytest.raises(ObjectNotFound):
        store.stat("nope/x")
    store.delete("nope/x")  # deleting what is not there is fine


def test_stat_time_is_recent(store):
    import time

    store.put("t", b"x")
    assert abs(store.stat("t").mtime - time.time()) < 600


def test_list_prefix_order_and_nesting(store):
    keys = ["data/ab/1", "data/ab/2", "data/cd/3", "manifests/x/1.json", "dataX", "zeta"]
    for k in reversed(keys):
        store.put(k, k.encode())
    assert [o.key for o in store.list("data/")] == ["data/ab/1", "data/ab/2", "data/cd/3"]
    assert [o.key for o in store.list("data")] == ["data/ab/1", "data/ab/2", "data/cd/3", "dataX"]
    assert [o.key for o in store.list()] == sorted(keys)
    assert {o.key: o.size for o in store.list("manifests/")} == {"manifests/x/1.json": len("manifests/x/1.json")}
    assert list(store.list("nothing/")) == []


def test_list_paginates(any_store):
    store = any_store.open(page_size=7)
    keys = [f"p/{i:03d}" for i in range(25)]
    for k in keys:
        store.put(k, b"x")
    assert [o.key for o in store.list("p/")] == keys


def test_delete(store):
    store.put("d/1", b"1")
    store.put("d/2", b"2")
    store.delete("d/1")
    store.delete("d/1")
    assert [o.key for o in store.list("d/")] == ["d/2"]
    with pytest.raises(ObjectNotFound):
        store.get("d/1")


def test_conditional_create(store):
    store.put("m.json", b"first", if_absent=True)
    with pytest.raises(ObjectExists) as ei:
        store.put("m.json", b"second", if_absent=True)
    assert isinstance(ei.value, AlreadyExists)
    assert store.get("m.json") == b"first"


def test_conditional_create_race_has_one_winner(store):
    winners, losers = [], []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.put("race.json", f"writer {i}".encode(), if_absent=True)
            winners.append(i)
        except ObjectExists:
            losers.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 7
    assert store.get("race.json") == f"writer {winners[0]}".encode()


def test_large_object(store):
    data = os.urandom(9 * 1024 * 1024 + 17)
    store.put("big/object", data)
    assert store.stat("big/object").size == len(data)
    assert store.get("big/object") == data
    assert store.get("big/object", offset=5 * 1024 * 1024, length=100) == data[5 * 1024 * 1024 : 5 * 1024 * 1024 + 100]


def test_real_layout_keys(store):
    """Keys exactly as the format builds them, including escaped collection names."""
    keys = [layout.manifest_key("weird name/ü", layout.new_backup_id()), layout.data_key("ab" * 32)]
    for k in keys:
        store.put(k, b"{}")
    assert sorted(o.key for o in store.list(layout.MANIFESTS)) == [keys[0]]
    assert layout.parse_manifest_key(keys[0])[0] == "weird name/ü"
    assert [o.key for o in store.list(layout.DATA)] == [keys[1]]
