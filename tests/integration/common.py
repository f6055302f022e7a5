"""What the cross-server matrix and the drill-recall tests share: a 20,000-row collection of every common type on
Milvus Lite and on the standalone 2.3 server, each backed up once per session (see conftest.py here)."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import orjson

from tests.servers import SESSION_URI, SESSION_URL

N = 20_000
STANDALONE_URL = SESSION_URL  # the session's 2.3 server (tests/servers.py), as the CLI names it
__all__ = ["SESSION_URI", "STANDALONE_URL"]


def run_cli(*args: Any) -> tuple[int, str, str]:
    """`vecbackup ARGS...` in this process (for session fixtures, which cannot use the function-scoped `cli`)."""
    from vecbackup.cli import run

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def spawn_cli(*args: Any) -> subprocess.Popen[str]:
    """`vecbackup ARGS...` as a process of its own (several at once: the workers of a sharded run)."""
    return subprocess.Popen([sys.executable, "-m", "vecbackup", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON document a spawn_cli process printed, once it exited 0."""
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    doc: dict[str, Any] = orjson.loads(out)
    return doc


def cli_json(*args: Any) -> dict[str, Any]:
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    doc: dict[str, Any] = orjson.loads(out)
    return doc


@dataclass
class Side:
    """One Milvus engine of the matrix: its URL for the CLI and a pymilvus client."""

    kind: str  # "lite" | "standalone"
    url: str
    client: Any


@dataclass
class Source:
    """The common collection on one engine, and its backup in the session's matrix store."""

    side: Side
    name: str
    backup_id: str
    rows: dict[Any, dict[str, Any]]  # every row, normalised (tests.datasets.read_rows)
    fields: list[dict[str, Any]]  # describe_collection's fields
    index: dict[str, Any]  # index_summary of the vector field
    partition_keys: dict[str, set[Any]]  # the primary keys in each partition (tests.datasets.read_keys)
