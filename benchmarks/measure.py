"""Timing, per-process peak memory, and a description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson


@dataclass
class ProcResult:
    argv: list[str]
    returncode: int
    wall: float  # seconds, from fork to exit
    max_rss: int  # bytes: peak resident set size of the child (ru_maxrss from wait4)
    user: float
    sys: float
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)

    def check(self) -> ProcResult:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited with {self.returncode}:\n{self.stderr[-3000:]}\n"
                               f"{self.stdout[-2000:]}")
        return self


def run_measured(argv: Sequence[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 900.0) -> ProcResult:
    """Run one subprocess and reap it with wait4(2), which reports that child's own peak RSS.

    (One process per measurement: unlike getrusage(RUSAGE_CHILDREN), which keeps the maximum over
    every child ever waited for, wait4 gives the figure of exactly this run.)
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _pid, status, ru = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return ProcResult(list(argv), proc.returncode, wall, ru.ru_maxrss * 1024, ru.ru_utime, ru.ru_stime,
                      stdout, stderr)


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, and the last call's result."""
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def dir_size(path: str | Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    mem_total = 0
    cpu_model = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        meminfo = cpuinfo = []
    for line in meminfo:
        if line.startswith("MemTotal:"):
            mem_total = int(line.split()[1]) * 1024
    for line in cpuinfo:
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model or platform.processor(),
        "memory_bytes": mem_total,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {d: _version(d) for d in
                     ("vecbackup", "pymilvus", "milvus-lite", "milvus", "zstandard", "numpy", "orjson", "grpcio")},
    }


def mib(n: float) -> float:
    return n / (1024 * 1024)
