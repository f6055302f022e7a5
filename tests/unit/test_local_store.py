"""The local folder store (vecbackup.stores.local.LocalStore) against a real folder."""

from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vecbackup.errors import AlreadyExists, NotFound
from vecbackup.stores import BlobStore, ObjectExists, ObjectInfo, ObjectNotFound, open_raw_store, open_store
from vecbackup.stores.local import DROP_FROM, LocalStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    p = tmp_path / "store"
    p.mkdir()
    return p


@pytest.fixture
def store(root: Path) -> LocalStore:
    return LocalStore(root)


def keys(store: LocalStore, prefix: str = "") -> list[str]:
    return [o.key for o in store.list(prefix)]


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# --------------------------------------------------------------------------- opening


def test_open_missing_folder_without_create(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "deeper"
    with pytest.raises(NotFound) as ei:
        LocalStore(missing)
    assert ei.value.exit_code == 4
    assert str(missing) in str(ei.value)
    assert not missing.exists()


def test_open_with_create_makes_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    s = LocalStore(target, create=True)
    assert target.is_dir()
    assert s.display == f"file://{target}"
    LocalStore(target, create=True)  # idempotent
    LocalStore(target)  # and now exists without create


def test_open_a_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_bytes(b"x")
    from vecbackup.errors import UsageError

    with pytest.raises(UsageError):
        LocalStore(f)


def test_open_store_from_url(tmp_path: Path) -> None:
    s = open_store(f"file://{tmp_path}/x", create=True)
    assert isinstance(s, LocalStore)
    assert isinstance(s, BlobStore)
    assert s.display == f"file://{tmp_path}/x"
    with pytest.raises(NotFound):
        open_store(str(tmp_path / "missing"))


# --------------------------------------------------------------------------- file modes


def _modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix() or ".": stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277], ids=["022", "000", "277"])
def test_what_the_store_creates_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """Files 0600 and folders 0700 (restic's modes), the store's folder and the parents it made included; a folder
    that was there before keeps its mode."""
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    os.chmod(outside, 0o755)
    old = os.umask(umask)
    try:
        s = LocalStore(outside / "a" / "store", create=True)
        s.put("data/ab/abcd.vbc", b"rows")
        s.put("manifests/c/b1.json", b"{}", if_absent=True)
        s.put("keys/0123456789abcdef.json", b"{}", if_absent=True)
        s.put("vecbackup.json", b"{}")
        s.put("vecbackup.json", b"{ }")  # replaced: still private
    finally:
        os.umask(old)
    modes = _modes(outside)
    assert modes.pop(".") == 0o755
    assert modes == {"a": 0o700, "a/store": 0o700, "a/store/data": 0o700, "a/store/data/ab": 0o700,
                     "a/store/data/ab/abcd.vbc": 0o600, "a/store/manifests": 0o700, "a/store/manifests/c": 0o700,
                     "a/store/manifests/c/b1.json": 0o600, "a/store/keys": 0o700,
                     "a/store/keys/0123456789abcdef.json": 0o600, "a/store/vecbackup.json": 0o600}


def test_a_temporary_file_is_private_before_anything_is_written(tmp_path: Path) -> None:
    from vecbackup.stores.local import create_private

    old = os.umask(0)
    try:
        fd = create_private(tmp_path / "x.tmp-1")
    finally:
        os.umask(old)
    try:
        st = os.fstat(fd)
        assert st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0o600
    finally:
        os.close(fd)
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "x.tmp-1")


# --------------------------------------------------------------------------- the page cache


def cached_pages(path: Path) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages it has), asked of the kernel with mincore(2) on a mapping that
    reads nothing."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vec = ctypes.create_string_buffer(pages)
            assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
            return sum(b & 1 for b in vec.raw), pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


@pytest.fixture
def disk_root() -> Iterator[Path]:
    """A folder on the checkout's disk: a tmpfs (where /tmp may be) keeps every page it holds in memory."""
    p = Path(__file__).resolve().parents[2] / f".test-page-cache-{os.getpid()}"
    p.mkdir()
    yield p
    shutil.rmtree(p, ignore_errors=True)


def test_a_store_leaves_what_it_writes_and_reads_out_of_the_page_cache(disk_root: Path) -> None:
    big, small = os.urandom(DROP_FROM + 12345), b"manifest"
    store = LocalStore(disk_root / "store", create=True)
    store.put("data/big", big)
    store.put("small", small)
    assert cached_pages(disk_root / "store/data/big")[0] == 0
    assert cached_pages(disk_root / "store/small") == (1, 1)  # small objects are left as they are
    (disk_root / "store/data/big").read_bytes()  # another reader brings it into the cache
    assert cached_pages(disk_root / "store/data/big")[0] > 0
    assert store.get("data/big") == big
    assert cached_pages(disk_root / "store/data/big")[0] == 0
    assert store.get("data/big", offset=DROP_FROM - 10, length=20) == big[DROP_FROM - 10:DROP_FROM + 10]  # not whole


def test_a_store_opened_to_keep_the_cache_keeps_it(disk_root: Path) -> None:
    big = os.urandom(DROP_FROM * 2)
    kept = open_raw_store(f"file://{disk_root / 'staging'}", create=True, keep_cached=True)
    kept.put("file", big)
    assert kept.get("file") == big
    cached, pages = cached_pages(disk_root / "staging/file")
    assert cached == pages
    dropping = open_raw_store(f"file://{disk_root / 'staging'}")
    assert dropping.get("file") == big
    assert cached_pages(disk_root / "staging/file")[0] == 0


# --------------------------------------------------------------------------- put / get / stat


def test_put_get(store: LocalStore, root: Path) -> None:
    store.put("a/b/c.bin", b"hello world")
    assert store.get("a/b/c.bin") == b"hello world"
    assert (root / "a" / "b" / "c.bin").read_bytes() == b"hello world"


def test_put_empty_and_binary(store: LocalStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    blob = bytes(range(256)) * 100
    store.put("blob", blob)
    assert store.get("blob") == blob


def test_put_overwrites_without_if_absent(store: LocalStore) -> None:
    store.put("k", b"one")
    store.put("k", b"two, longer")
    assert store.get("k") == b"two, longer"
    store.put("k", b"3")
    assert store.get("k") == b"3"


def test_put_leaves_no_temporary_files(store: LocalStore, root: Path) -> None:
    store.put("x/y", b"1")
    store.put("x/y", b"2")
    store.put("x/z", b"3", if_absent=True)
    with pytest.raises(ObjectExists):
        store.put("x/z", b"4", if_absent=True)
    assert files_under(root) == ["x", "x/y", "x/z"]


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, b"0123456789"),
        (0, 3, b"012"),
        (4, None, b"456789"),
        (4, 2, b"45"),
        (9, 1, b"9"),
        (9, 100, b"9"),  # past the end: what is there
        (10, None, b""),
        (50, 5, b""),
        (3, 0, b""),
    ],
)
def test_get_ranges(store: LocalStore, offset: int, length: int | None, expected: bytes) -> None:
    store.put("digits", b"0123456789")
    assert store.get("digits", offset=offset, length=length) == expected


def test_stat(store: LocalStore) -> None:
    before = time.time()
    store.put("d/obj", b"x" * 1234)
    info = store.stat("d/obj")
    assert info == ObjectInfo("d/obj", 1234, info.mtime)
    assert before - 5 <= info.mtime <= time.time() + 5
    store.put("d/empty", b"")
    assert store.stat("d/empty").size == 0


@pytest.mark.parametrize("key", ["missing", "no/such/key", "d/missing"])
def test_missing_key(store: LocalStore, key: str) -> None:
    store.put("d/present", b"1")
    for call in (lambda: store.get(key), lambda: store.get(key, offset=1, length=1), lambda: store.stat(key)):
        with pytest.raises(ObjectNotFound) as ei:
            call()
        assert isinstance(ei.value, NotFound)
        assert ei.value.exit_code == 4
        assert key in str(ei.value)


# --------------------------------------------------------------------------- if_absent


def test_put_if_absent_creates(store: LocalStore) -> None:
    store.put("m/1.json", b"first", if_absent=True)
    assert store.get("m/1.json") == b"first"


def test_put_if_absent_refuses_existing(store: LocalStore) -> None:
    store.put("m/1.json", b"original")
    with pytest.raises(ObjectExists) as ei:
        store.put("m/1.json", b"replacement", if_absent=True)
    assert isinstance(ei.value, AlreadyExists)
    assert ei.value.exit_code == 5
    assert "m/1.json" in str(ei.value)
    assert store.get("m/1.json") == b"original"
    assert keys(store) == ["m/1.json"]


def test_concurrent_if_absent_puts_exactly_one_wins(store: LocalStore, root: Path) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            store.put("manifests/c/commit.json", f"writer {i}".encode() * 1000, if_absent=True)
            outcome = "won"
        except ObjectExists:
            outcome = "exists"
        except Exception as e:
            outcome = f"error: {e!r}"
        with lock:
            results.append((i, outcome))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == n
    winners = [i for i, outcome in results if outcome == "won"]
    assert sorted(outcome for _, outcome in results) == ["exists"] * (n - 1) + ["won"]
    # the stored object is the winner's, whole
    assert store.get("manifests/c/commit.json") == f"writer {winners[0]}".encode() * 1000
    assert files_under(root) == ["manifests", "manifests/c", "manifests/c/commit.json"]


def test_concurrent_distinct_puts(store: LocalStore) -> None:
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            for j in range(20):
                store.put(f"data/{j % 3:02x}/{i}-{j}", bytes([i, j]), if_absent=True)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(keys(store, "data/")) == n * 20
    assert store.get("data/02/7-5") == bytes([7, 5])


# --------------------------------------------------------------------------- list


@pytest.fixture
def filled(store: LocalStore) -> LocalStore:
    for key in [
        "manifests/b/2.json",
        "manifests/a/1.json",
        "manifests/ab/3.json",
        "data/00/x.vbc",
        "data/ff/y.vbc",
        "data/0f/z.vbc",
        "top",
        "manifests/a/sub/deep.json",
    ]:
        store.put(key, key.encode())
    return store


def test_list_all_sorted(filled: LocalStore) -> None:
    all_keys = keys(filled)
    assert all_keys == sorted(all_keys)
    assert all_keys == [
        "data/00/x.vbc",
        "data/0f/z.vbc",
        "data/ff/y.vbc",
        "manifests/a/1.json",
        "manifests/a/sub/deep.json",
        "manifests/ab/3.json",
        "manifests/b/2.json",
        "top",
    ]


def test_list_sizes(filled: LocalStore) -> None:
    for info in filled.list():
        assert info.size == len(info.key.encode())
        assert info.mtime > 0


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("manifests/a/", ["manifests/a/1.json", "manifests/a/sub/deep.json"]),
        ("manifests/a", ["manifests/a/1.json", "manifests/a/sub/deep.json", "manifests/ab/3.json"]),
        (
            "manifests/",
            ["manifests/a/1.json", "manifests/a/sub/deep.json", "manifests/ab/3.json", "manifests/b/2.json"],
        ),
        ("data/0", ["data/00/x.vbc", "data/0f/z.vbc"]),
        ("data/0f/", ["data/0f/z.vbc"]),
        ("data/0f/z", ["data/0f/z.vbc"]),
        ("t", ["top"]),
        ("top", ["top"]),
        ("manifests/a/sub/", ["manifests/a/sub/deep.json"]),
        ("manifests/zz/", []),
        ("nothing", []),
        ("no/such/folder/", []),
        ("top/", []),  # a file, not a folder
    ],
)
def test_list_prefix(filled: LocalStore, prefix: str, expected: list[str]) -> None:
    assert keys(filled, prefix) == expected


def test_list_empty_store(store: LocalStore) -> None:
    assert keys(store) == []


def test_list_skips_crashed_write_temporaries(store: LocalStore, root: Path) -> None:
    store.put("data/aa/real.vbc", b"ok")
    # what a crashed put leaves behind
    (root / "data" / "aa" / "real.vbc.tmp-0123456789ab").write_bytes(b"partial")
    (root / "data" / "bb").mkdir(parents=True)
    (root / "data" / "bb" / "other.vbc.tmp-deadbeef0000").write_bytes(b"partial")
    (root / "top.json.tmp-abcdefabcdef").write_bytes(b"partial")
    assert keys(store) == ["data/aa/real.vbc"]
    assert keys(store, "data/") == ["data/aa/real.vbc"]
    assert keys(store, "data/bb/") == []
    assert keys(store, "top") == []


def test_list_is_a_snapshot(filled: LocalStore) -> None:
    # deleting while iterating does not break the listing
    seen = []
    for info in filled.list("data/"):
        filled.delete(info.key)
        seen.append(info.key)
    assert seen == ["data/00/x.vbc", "data/0f/z.vbc", "data/ff/y.vbc"]
    assert keys(filled, "data/") == []


# --------------------------------------------------------------------------- delete


def test_delete(filled: LocalStore, root: Path) -> None:
    filled.delete("manifests/b/2.json")
    with pytest.raises(ObjectNotFound):
        filled.get("manifests/b/2.json")
    assert "manifests/b/2.json" not in keys(filled)
    assert not (root / "manifests" / "b").exists()  # empty folder tidied
    assert (root / "manifests").is_dir()  # still holds other objects


def test_delete_is_idempotent(filled: LocalStore) -> None:
    filled.delete("top")
    filled.delete("top")
    filled.delete("never/existed/at/all")
    assert "top" not in keys(filled)


def test_delete_tidies_nested_empty_folders_but_not_root(store: LocalStore, root: Path) -> None:
    store.put("a/b/c/d/e", b"1")
    store.put("a/keep", b"2")
    store.delete("a/b/c/d/e")
    assert files_under(root) == ["a", "a/keep"]
    store.delete("a/keep")
    assert files_under(root) == []
    assert root.is_dir()  # the store folder itself stays
    store.put("x", b"1")
    store.delete("x")
    assert root.is_dir()


def test_delete_does_not_remove_sibling_objects(filled: LocalStore) -> None:
    filled.delete("manifests/a/1.json")
    assert keys(filled, "manifests/a/") == ["manifests/a/sub/deep.json"]


# --------------------------------------------------------------------------- key validation


BAD_KEYS = ["", "/abs", "/", "../escape", "a/../../escape", "a/..", "..", "a\\b", "a/b/../c"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected(store: LocalStore, tmp_path: Path, key: str) -> None:
    before = files_under(tmp_path)
    for call in (
        lambda: store.put(key, b"x"),
        lambda: store.put(key, b"x", if_absent=True),
        lambda: store.get(key),
        lambda: store.stat(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError):
            call()
    assert files_under(tmp_path) == before


def test_dotdot_inside_a_name_is_fine(store: LocalStore) -> None:
    store.put("a/..b/c..", b"1")
    assert store.get("a/..b/c..") == b"1"
    assert keys(store) == ["a/..b/c.."]


def test_keys_are_relative_posix(filled: LocalStore) -> None:
    for info in filled.list():
        assert not info.key.startswith("/")
        assert os.sep not in info.key or os.sep == "/"


def test_list_never_escapes_the_store(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "private").write_bytes(b"not a store object")
    (tmp_path / "store").mkdir()
    s = LocalStore(tmp_path / "store")
    s.put("a", b"1")
    try:
        listed = keys(s, "../")
    except ValueError:
        listed = []
    assert listed == []


def test_folder_is_not_an_object(filled: LocalStore) -> None:
    for call in (lambda: filled.stat("data"), lambda: filled.get("manifests/a")):
        try:
            call()
        except ObjectNotFound:
            continue
        except Exception as e:
            raise AssertionError(f"expected ObjectNotFound, got {e!r}") from None
        raise AssertionError("expected ObjectNotFound, got a result")
