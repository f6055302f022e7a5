"""Timing, per-process peak memory, and a description of the machine."""

from __future__ import annotations

import gc
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from vecbackup.version import __version__


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


GNU_TIME = "/usr/bin/time"

# Fallback when GNU time is missing: a tiny process that forks the command and reports its rusage.
_SHIM = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{ru.ru_maxrss} {ru.ru_utime} {ru.ru_stime}\\n")
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_measured(argv: Sequence[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 900.0) -> ProcResult:
    """Run one command as its own process and measure its wall time, CPU time and peak RSS.

    The peak RSS comes from the rusage of a process forked by a *small* parent (GNU time, or a tiny
    Python shim): Linux carries the parent's RSS high-water mark over fork/vfork + exec into the child's
    ru_maxrss, so wait4() or RUSAGE_CHILDREN straight from this (large) benchmark process would report
    max(this process's peak, the command's peak).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rusage") as usage:
        if os.path.exists(GNU_TIME):
            wrapped = [GNU_TIME, "-q", "-o", usage.name, "-f", "%M %U %S", *argv]
        else:
            wrapped = [sys.executable, "-S", "-c", _SHIM, usage.name, *argv]
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        lines = [line for line in usage.read().splitlines() if line.strip()]
    try:
        maxrss_kb, utime, stime = lines[-1].split()
        max_rss, user, sys_s = int(maxrss_kb) * 1024, float(utime), float(stime)
    except (IndexError, ValueError):
        max_rss, user, sys_s = 0, 0.0, 0.0
        returncode = returncode or -1
    return ProcResult(list(argv), returncode, wall, max_rss, user, sys_s, stdout, stderr)


def timed(fn: Callable[[], Any], repeat: int = 3, *, keep: bool = False) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls (the result of the last one if ``keep``).

    Each call starts from a collected heap with no earlier result alive, so the cyclic GC (left on:
    it is part of the real cost of building many Python objects) does the same work every time.
    """
    times = []
    result = None
    for i in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if keep and i == repeat - 1:
            result = out
        del out
    gc.collect()
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
        # vecbackup's own version from the code measured (an editable install's metadata keeps the version it was
        # installed at)
        "versions": {"vecbackup": __version__} | {d: _version(d) for d in
                                                  ("pymilvus", "milvus-lite", "milvus", "zstandard", "numpy",
                                                   "orjson", "grpcio")},
    }


def mib(n: float) -> float:
    return n / (1024 * 1024)
