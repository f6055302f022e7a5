"""A folder on a local or mounted file system (``file:///path``).

What vecbackup creates there is private to the user running it, whatever the umask: files 0600 (from the moment a
temporary file exists, before any byte is written) and folders 0700, the store's own folder and any missing parent
of it included, as restic does. Folders that already exist keep their mode.

A backup's bytes are not read again soon, so a store drops an object of DROP_FROM bytes or more from the operating
system's page cache once it has written it (after its fsync) or read it whole (``posix_fadvise(DONTNEED)``, where
the platform has it), as ``dd oflag=nocache`` does: a backup of a collection bigger than the host's memory would
otherwise push out of the cache what the host does read again (the database's own files), and the kernel hands the
pages just freed to the next object instead of taking fresh ones. On this project's 2-core VM that took a segment
backup's writes from 2.7 s to 0.35 s of CPU time per GB (docs/SCALING.md). A store that a server reads right after
(the staging place of a binlog import) or whose files are another program's (a Milvus server's storage, read by a
segment backup) is opened with ``keep_cached=True``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from vecbackup.errors import NotFound, Unreachable, UsageError
from vecbackup.stores.base import ObjectExists, ObjectInfo, ObjectNotFound, check_key, valid_key

_TMP_MARK = ".tmp-"
FILE_MODE = 0o600
FOLDER_MODE = 0o700
#: objects this big or bigger are dropped from the page cache once written or read (module doc)
DROP_FROM = 1 << 20


class LocalStore:
    """Objects are files under ``root``; writes go to a temporary file, are fsynced and renamed."""

    def __init__(self, root: str | os.PathLike[str], *, display: str | None = None, create: bool = False,
                 keep_cached: bool = False):
        self.root = Path(root)
        self.keep_cached = keep_cached
        self.display = display or f"file://{self.root}"
        if create:
            try:
                make_folders(self.root)
            except OSError as e:
                raise Unreachable(f"cannot create store folder {self.display}: {e.strerror}") from None
        if not self.root.exists():
            raise NotFound(f"no store at {self.display}: the folder does not exist",
                           hint="check the path, or run a backup to create it")
        if not self.root.is_dir():
            raise UsageError(f"store {self.display} is not a folder")

    def path(self, key: str) -> Path:
        """The file that holds (or would hold) ``key``; ValueError for a key no file of the store can hold."""
        path = self.root / check_key(key)
        # "." or "./." is the folder itself (a put would write beside it), and a lone surrogate no file name holds
        if path == self.root or (not key.isascii() and not _encodable(key)):
            raise ValueError(f"invalid store key {key!r}")
        return path

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        path = self.path(key)
        tmp = path.with_name(path.name + _TMP_MARK + secrets.token_hex(6))
        try:
            make_folders(path.parent)
            with os.fdopen(create_private(tmp), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                self._done_with(f.fileno(), len(data))
            if if_absent:
                try:
                    os.link(tmp, path)  # atomic create-if-absent
                except FileExistsError:
                    raise ObjectExists(f"{key} already exists in {self.display}") from None
                finally:
                    os.unlink(tmp)
            else:
                os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as e:
            with contextlib.suppress(OSError):  # (exists() itself raises when the name is too long)
                tmp.unlink(missing_ok=True)
            raise _translate(e, self.display, key) from None

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        try:
            with open(self.path(key), "rb") as f:
                if offset:
                    f.seek(offset)
                data = f.read() if length is None else f.read(length)
                self._done_with(f.fileno(), len(data))
                return data
        except OSError as e:
            raise _translate(e, self.display, key) from None

    def _done_with(self, fd: int, size: int) -> None:
        """An object of ``size`` bytes written (and fsynced) or read through ``fd``: dropped from the page cache if
        it is big enough and the store does not keep the cache (module doc)."""
        if size >= DROP_FROM and not self.keep_cached:
            _drop_cached(fd)

    def stat(self, key: str) -> ObjectInfo:
        path = self.path(key)
        try:
            st = path.stat()
        except OSError as e:
            raise _translate(e, self.display, key) from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"{key} not found in {self.display}")
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix and not valid_key(prefix):
            raise ValueError(f"invalid store key prefix {prefix!r}")
        # walk only the folder the prefix points into
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        try:
            if not start.is_dir():
                return
        except OSError as e:  # is_dir() raises for a name too long (no object has it)
            if e.errno == errno.ENAMETOOLONG:
                return
            raise _translate(e, self.display, prefix) from None
        found: list[ObjectInfo] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            for name in filenames:
                if _TMP_MARK in name:
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        st = full.stat()
                    except FileNotFoundError:
                        continue
                    found.append(ObjectInfo(key, st.st_size, st.st_mtime))
        found.sort(key=lambda o: o.key)
        yield from found

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise _translate(e, self.display, key) from None
        # tidy empty folders up to the root
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent



def create_private(path: Path) -> int:
    """A new, empty file open for writing, mode FILE_MODE whatever the umask (set before anything is written);
    FileExistsError if ``path`` exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have taken bits from the mode os.open asked for
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_folders(path: Path) -> None:
    """``path`` and its missing parents, each created with mode FOLDER_MODE whatever the umask; folders that exist
    keep their mode. (``Path.mkdir(parents=True)`` would give the parents the umask's default mode.)"""
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made meanwhile by another writer: theirs, and ours to use
        os.chmod(folder, FOLDER_MODE)


def _encodable(key: str) -> bool:
    try:
        os.fsencode(key)
    except UnicodeEncodeError:
        return False
    return True


def _drop_cached(fd: int) -> None:
    """Drop a file's clean pages from the page cache (module doc); nothing where the platform cannot."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _translate(e: OSError, display: str, key: str) -> Exception:
    if e.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):  # a folder is not an object
        return ObjectNotFound(f"{key} not found in {display}")
    if e.errno in (errno.EACCES, errno.EPERM):
        return Unreachable(f"permission denied writing or reading {key} in {display}")
    if e.errno == errno.ENOSPC:
        return Unreachable(f"no space left on the device holding {display}")
    return Unreachable(f"cannot access {key} in {display}: {e.strerror}")
