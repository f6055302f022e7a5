"""The local folder store (stores/local.py): no key reaches a path outside the store folder. Every call on any key
either works inside the folder or raises a clean error (a VecbackupError, or the ValueError "invalid store key"
of a key no layout function builds); an audit hook (and os.stat) fail the run on any path the process opens,
creates, renames, removes or lists outside it, and the folder beside the store must stay as it was.

First byte: the call (put, put if absent, get, stat, delete, list); the rest: the key (fuzz._common.text).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fuzz._common import Bug, as_text, text
from vecbackup.errors import VecbackupError
from vecbackup.stores.base import valid_key
from vecbackup.stores.local import LocalStore

MAX_LEN = 1024
OPS = ("put", "put_if_absent", "get", "stat", "delete", "list")
KEYS = ["data/ab/x.vbc", "../x", "a/../../x", "/etc/passwd", "a\\..\\b", "a\x00b", "..", "../outside/victim", ".",
        "./.", "a/.", "x" * 300, "\ud800", "\udcff", "é/ü", "manifests/%2E%2E/x.json"]


class Sandbox:
    """A store folder beside a folder it must never touch, and the hook that watches every path used."""

    WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def __init__(self) -> None:
        work = os.environ.get("VECBACKUP_FUZZ_WORKDIR")  # the harness's folder for this target: reused each run
        if work:
            self.base = Path(os.path.realpath(work)) / "sandbox"
            shutil.rmtree(self.base, ignore_errors=True)
            self.base.mkdir(parents=True)
        else:
            self.base = Path(os.path.realpath(tempfile.mkdtemp(prefix="vecbackup-fuzz-")))
        self.root = self.base / "store"
        self.root.mkdir()
        (self.base / "outside").mkdir()
        (self.base / "outside" / "victim").write_bytes(b"do not touch")
        self.before = self.outside()
        self.store = LocalStore(self.root)
        self.watching = False
        self.calls = 0
        sys.addaudithook(self._audit)

    def outside(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.base):
            if Path(dirpath) == self.base and self.root.name in dirnames:
                dirnames.remove(self.root.name)
            out += [os.path.join(dirpath, n) for n in dirnames + filenames]
        return sorted(out)

    def check(self, event: str, path: Any, *, strict: bool) -> None:
        if isinstance(path, int) or path is None:
            return
        p = os.path.normpath(os.path.join(os.getcwd(), os.fsdecode(path)))
        root = str(self.root)
        if not (p.startswith(root + os.sep) or (p == root and not strict)):
            raise Bug(f"{event} {p!r}: outside the store {root!r}")

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.watching:
            return
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & self.WRITES)
            self.check(event, path, strict=writes)
        elif event in ("os.rename", "os.link", "os.symlink"):
            self.check(event, args[0], strict=True)
            self.check(event, args[1], strict=True)
        elif event in ("os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.utime"):
            self.check(event, args[0], strict=True)
        elif event in ("os.mkdir", "os.scandir", "os.listdir"):
            self.check(event, args[0], strict=False)

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        real_stat, real_lstat = os.stat, os.lstat

        def stat(path: Any, *a: Any, **kw: Any) -> os.stat_result:
            self.check("stat", path, strict=False)
            return real_stat(path, *a, **kw)

        def lstat(path: Any, *a: Any, **kw: Any) -> os.stat_result:
            self.check("lstat", path, strict=False)
            return real_lstat(path, *a, **kw)

        os.stat, os.lstat = stat, lstat
        self.watching = True
        try:
            yield
        finally:
            self.watching = False
            os.stat, os.lstat = real_stat, real_lstat

    def call(self, op: str, key: str) -> None:
        self.calls += 1
        if self.calls % 2000 == 0:  # keep the folder small: start again from an empty store
            shutil.rmtree(self.root)
            self.root.mkdir()
        try:
            with self.watch():
                if op == "put":
                    self.store.put(key, b"x")
                    if self.store.get(key) != b"x":
                        raise Bug(f"put {key!r} then get gave other bytes")
                elif op == "put_if_absent":
                    self.store.put(key, b"y", if_absent=True)
                elif op == "get":
                    self.store.get(key)
                elif op == "stat":
                    self.store.stat(key)
                elif op == "delete":
                    self.store.delete(key)
                else:
                    for info in self.store.list(key):
                        if not valid_key(info.key) or not info.key.startswith(key):
                            raise Bug(f"list({key!r}) gave {info.key!r}")
        except VecbackupError:
            pass
        except ValueError as e:
            if not str(e).startswith("invalid store key"):
                raise
        if self.outside() != self.before:
            raise Bug(f"{op} {key!r} changed files outside the store")


_SANDBOX: list[Sandbox] = []


def seeds() -> list[bytes]:
    return [bytes([i << 2]) + as_text(k, mode=2) for i in range(len(OPS)) for k in KEYS]


def one_input(data: bytes) -> None:
    if not data:
        return
    if not _SANDBOX:
        os.fsync = lambda fd: None  # durability is not what this target checks; fsync would make it 100x slower
        _SANDBOX.append(Sandbox())
    _SANDBOX[0].call(OPS[(data[0] >> 2) % len(OPS)], text(data[1:]))


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("local_store")
