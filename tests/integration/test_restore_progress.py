"""What a restore shows in a terminal once its rows are in: each phase it waits on (flushing, building the index,
loading, counting, renaming; the server's last import tasks before them on the bulk-import path; the checks after
them in a drill), drawn as it begins and redrawn while it lasts, each marked done at the end, with the server's own
count where it reports one. The CLI runs as a process of its own whose stderr is a pseudo-terminal, against Milvus
Lite and the 2.3 server. With --json, stdout is one JSON document and the terminal shows no progress; on a pipe the
row count's two lines are all there is, as before."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.datasets import build_in_own_process, build_vector_only
from tests.integration.common import STANDALONE_URL

N = 3000
#: the phases of a Milvus restore after its rows, in order (engines/milvus/sink.py, ops/restore.py)
PHASES = ["flushing", "building index v", "loading", "counting rows", "renaming"]


@dataclass
class Drawn:
    """A CLI run in a pseudo-terminal: its exit code, stdout, and the lines it drew on the terminal."""

    code: int
    stdout: str
    lines: list[str]

    def first(self, text: str) -> int:
        """The index of the first line drawn that begins (after a spinner or a check mark) with ``text``."""
        found = [i for i, line in enumerate(self.lines) if re.match(rf"^(\S+ )?{re.escape(text)}\b", line)]
        assert found, f"{text!r} was never drawn:\n" + "\n".join(self.lines)
        return found[0]

    def drawn_running(self, phase: str) -> bool:
        """Whether ``phase`` was drawn while it ran (a spinner, not the check mark of a phase done)."""
        return any(re.match(rf"^[^✓\s] {re.escape(phase)}\b", line) for line in self.lines)


def _lines(raw: bytes) -> list[str]:
    """The lines drawn, escape sequences removed, in order; a line drawn again unchanged counted once."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode(errors="replace"))
    out: list[str] = []
    for line in re.split(r"[\r\n]+", plain):
        if line.strip() and (not out or out[-1] != line.rstrip()):
            out.append(line.rstrip())
    return out


def _in_terminal(*args: Any, timeout: float = 600.0) -> Drawn:
    """`vecbackup ARGS...` as a process of its own whose stderr is a pseudo-terminal (120 columns)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    raw = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other side has closed it
                break
            if not chunk:
                break
            raw += chunk
        else:
            proc.kill()
            pytest.fail(f"vecbackup {' '.join(map(str, args))} did not finish in {timeout:.0f}s")
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
    return Drawn(code, out, _lines(bytes(raw)))


def _quiet(*args: Any) -> None:
    subprocess.run([sys.executable, "-m", "vecbackup", *map(str, args), "-q"], check=True, capture_output=True,
                   timeout=600)


@dataclass
class Backed:
    """A collection of N rows with an index on its vector field 'v', backed up."""

    url: str
    name: str
    store: Path


@pytest.fixture
def backed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backed]:
    """On Milvus Lite (built by another process: one process at a time may open the file, and the CLI runs in its
    own) or the 2.3 server (HNSW); the collections a test made there are dropped after it."""
    store = tmp_path / "store"
    if request.param == "lite":
        db = tmp_path / "lite.db"
        build_in_own_process(db, "src", n=N)  # a FLAT index
        url, name = f"milvus-lite://{db}", "src"
        _quiet("backup", url, store, "-c", name)
        yield Backed(url, name, store)
        return
    from pymilvus import MilvusClient

    client = MilvusClient(uri=request.getfixturevalue("standalone").uri)
    name = f"progress_{uuid.uuid4().hex[:8]}"
    try:
        build_vector_only(client, name, "FLOAT_VECTOR", n=N, index=("HNSW", "L2", {"M": 8, "efConstruction": 64}))
        _quiet("backup", STANDALONE_URL, store, "-c", name)
        yield Backed(STANDALONE_URL, name, store)
    finally:
        for c in client.list_collections():
            if c.startswith(name):
                client.drop_collection(c)
        client.close()


def _assert_phases(drawn: Drawn, first_line: str, phases: list[str]) -> None:
    """The row count first, then each phase in order, each drawn while it ran, and all of them done at the end."""
    assert drawn.lines[0].startswith(first_line), drawn.lines[:3]
    order = [drawn.first(p) for p in phases]
    assert order == sorted(order), "\n".join(drawn.lines)
    assert all(drawn.drawn_running(p) for p in phases), "\n".join(drawn.lines)
    final = [line for line in drawn.lines if not line.startswith("warning: ")][-len(phases):]  # (notes follow)
    assert [re.sub(r"\s+", " ", line).split(" ━")[0] for line in final] == [f"✓ {p}" for p in phases], final


@pytest.mark.parametrize("backed", ["lite", "standalone"], indirect=True)
def test_restore_in_a_terminal_shows_each_phase(backed: Backed) -> None:
    target = f"{backed.name}_r"
    drawn = _in_terminal("restore", backed.store, backed.url, "--as", target)
    assert drawn.code == 0, "\n".join(drawn.lines)
    assert re.fullmatch(rf"restored backup \S+ of {backed.name} into {target}: {N} rows, loaded after \S+s\n",
                        drawn.stdout)
    _assert_phases(drawn, f"restore {target}", PHASES)
    if backed.url == STANDALONE_URL:  # the server's own count, read where the phases read it
        _assert_server_counts(target)


def _assert_server_counts(name: str) -> None:
    """What the looks at a build and a load (the counts shown while they last) read from the 2.3 server, on the
    restored collection: every row indexed, all of it loaded."""
    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.schema import Index
    from vecbackup.urls import parse_milvus_url

    engine = MilvusEngine(parse_milvus_url(STANDALONE_URL))
    try:
        assert engine._index_progress(name, Index("v", "HNSW", "v", "L2", None)) == (N, N, "rows")
        assert engine._load_progress(name) == (100, 100, "%")
    finally:
        engine.close()


@pytest.mark.parametrize("backed", ["standalone"], indirect=True)
def test_bulk_import_in_a_terminal_shows_the_import_and_each_phase(backed: Backed, tmp_path: Path) -> None:
    """The import's last tasks are waited on with the rows the server has imported, then the phases as above."""
    target = f"{backed.name}_b"
    drawn = _in_terminal("restore", backed.store, backed.url, "--as", target, "--bulk-import-via", tmp_path / "stage")
    assert drawn.code == 0, "\n".join(drawn.lines)
    assert re.fullmatch(rf"restored backup \S+ of {backed.name} into {target}: {N} rows in \d+ import tasks?, "
                        r"loaded after \S+s\n", drawn.stdout)
    _assert_phases(drawn, f"restore {target} (import)", ["importing rows", *PHASES])
    assert any(re.match(rf"^✓ importing rows .* {N}/{N} rows", line) for line in drawn.lines)


@pytest.mark.parametrize("backed", ["lite"], indirect=True)
def test_drill_in_a_terminal_shows_the_restore_phases_and_its_checks(backed: Backed) -> None:
    drawn = _in_terminal("drill", backed.store, backed.url, "-c", backed.name, "--sample", "20", "--queries", "5")
    assert drawn.code == 0, "\n".join(drawn.lines)
    assert re.search(r"^ restore +│ PASSED +│ 3000 rows restored", drawn.stdout, re.M), drawn.stdout
    checks = ["checking sampled rows", "checking search recall", "dropping the scratch collection"]
    order = [drawn.first(p) for p in [*PHASES, *checks]]
    assert order == sorted(order), "\n".join(drawn.lines)
    assert re.match(rf"^restore {backed.name}_drill_[0-9a-f]{{8}} ", drawn.lines[0]), drawn.lines[0]
    assert not any("checking text search" in line for line in drawn.lines)  # no BM25 function: no such check
    assert [line for line in drawn.lines if not line.startswith("warning: ")][-1].startswith(
        "✓ dropping the scratch collection")


@pytest.mark.parametrize("backed", ["lite"], indirect=True)
def test_json_and_a_pipe_show_no_phases(backed: Backed) -> None:
    """--json in a terminal: one JSON document on stdout, no progress drawn; stderr a pipe: the row count's two
    lines and the notes, no phase."""
    drawn = _in_terminal("restore", backed.store, backed.url, "--as", "by_json", "--json")
    assert drawn.code == 0, "\n".join(drawn.lines)
    doc = orjson.loads(drawn.stdout)  # the whole of stdout is one document
    assert doc["ok"] is True and doc["rows"] == N and doc["collection"] == "by_json"
    assert all(line.startswith("warning: ") for line in drawn.lines), drawn.lines
    piped = subprocess.run([sys.executable, "-m", "vecbackup", "restore", str(backed.store), backed.url, "--as",
                            "by_pipe"], capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0, piped.stderr
    lines = [line for line in piped.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 2 and lines[0] == f"restore by_pipe: {N} rows", piped.stderr
    assert re.fullmatch(rf"restore by_pipe: done, {N} rows in \d+\.\ds", lines[1]), piped.stderr
