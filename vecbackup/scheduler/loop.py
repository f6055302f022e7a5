"""The ``vecbackup schedule`` loop: runs a Schedule's jobs in this process, one at a time, when the ``schedule``
library says they are due; a failing job is logged and recorded and the others go on; SIGTERM/SIGINT interrupt the
running job the way Ctrl-C interrupts ``vecbackup backup`` (nothing committed) and then the loop ends. The
heartbeat file is rewritten every loop iteration and after every job with JSON holding each job's last run and
status, and touched every few seconds while a job runs, for liveness probes."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import schedule as schedule_lib

from vecbackup.api import NullProgress, Progress
from vecbackup.errors import VecbackupError
from vecbackup.scheduler.jobs import Job, Schedule
from vecbackup.scheduler.run import run_job
from vecbackup.times import iso_z
from vecbackup.words import plural

#: the heartbeat file's mtime is refreshed this often while a job runs
TOUCH_INTERVAL = 5.0
#: the loop wakes at least this often (heartbeat, signals)
MAX_SLEEP = 1.0

# -- the loop ------------------------------------------------------------------------------------------------


def _iso(t: datetime | None) -> str | None:
    return iso_z(t, "seconds") if t else None


@dataclass
class JobState:
    runs: int = 0
    failures: int = 0
    skipped: int = 0  # due runs that passed while the job was still running
    status: str = "never"  # never | running | ok | failed | interrupted
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_seconds: float | None = None
    last_error: str | None = None
    last_exit_code: int | None = None
    last_success: datetime | None = None
    last_result: dict[str, Any] | None = None
    next_run: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "runs": self.runs, "failures": self.failures, "skipped": self.skipped,
                "last_started": _iso(self.last_started), "last_finished": _iso(self.last_finished),
                "last_seconds": self.last_seconds, "last_error": self.last_error,
                "last_exit_code": self.last_exit_code, "last_success": _iso(self.last_success),
                "last_result": self.last_result, "next_run": _iso(self.next_run)}


Log = Callable[[str], None]


@dataclass
class Scheduler:
    """Runs a Schedule's jobs in this thread, one at a time. ``info``/``warn`` are where it logs."""

    plan: Schedule
    info: Log = print
    warn: Log = print
    progress: Callable[[], Progress] = NullProgress
    run: Callable[[Job], dict[str, Any]] | None = None  # default: run_job with this schedule's metrics outputs
    states: dict[str, JobState] = field(default_factory=dict)
    stopping: bool = False
    running: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _interruptible: bool = False
    _last_beat: float = 0.0

    def __post_init__(self) -> None:
        self.states = {j.name: JobState() for j in self.plan.jobs}
        if self.run is None:
            self.run = functools.partial(run_job, progress=self.progress, metrics_textfile=self.plan.metrics_textfile,
                                         metrics_pushgateway=self.plan.metrics_pushgateway, warn=self.warn)
        self._lib = schedule_lib.Scheduler()
        self._lib_jobs: dict[str, schedule_lib.Job] = {}

    # -- signals
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = not self.stopping
        self.stopping = True
        if first:
            self.warn(f"{signal.Signals(signum).name}: stopping" + (f" (interrupting job {self.running})"
                                                                     if self.running else ""))
        if self._interruptible:
            self._interruptible = False
            raise KeyboardInterrupt  # unwinds the job as Ctrl-C unwinds a backup: nothing committed

    @contextmanager
    def signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # -- running jobs
    def run_one(self, job: Job) -> bool:
        """Run ``job`` now; False if it failed or was interrupted."""
        st = self.states[job.name]
        if self.running is not None:  # cannot happen with one thread; kept as the rule
            st.skipped += 1
            self.warn(f"job {job.name}: still running; this run is skipped")
            return False
        if self.stopping:
            return False
        self.running = job.name
        st.status, st.last_started = "running", datetime.now(UTC)
        self.info(f"job {job.name}: started")
        self.beat(force=True)
        t0 = time.monotonic()
        ok = False
        toucher = _Toucher(self.plan.heartbeat)
        try:
            self._interruptible = True
            try:
                assert self.run is not None
                result = self.run(job)
            finally:
                self._interruptible = False
        except KeyboardInterrupt:
            st.status, st.last_error, st.last_exit_code = "interrupted", "interrupted by a signal", 130
            self.stopping = True
            self.warn(f"job {job.name}: interrupted; nothing was committed by the interrupted step")
        except VecbackupError as e:
            st.status, st.last_error, st.last_exit_code = "failed", str(e), e.exit_code
            self.warn(f"job {job.name} failed (exit {e.exit_code}): {e}")
        except Exception as e:  # one job's bug or outage must not stop the others
            st.status, st.last_error, st.last_exit_code = "failed", f"{type(e).__name__}: {e}", 1
            self.warn(f"job {job.name} failed: {type(e).__name__}: {e}")
        else:
            ok = True
            st.status, st.last_error, st.last_exit_code, st.last_result = "ok", None, 0, result
            st.last_success = datetime.now(UTC)
            self.info(f"job {job.name}: ok: " + _describe(result))
        finally:
            toucher.stop()
            seconds = time.monotonic() - t0
            st.runs += 1
            st.failures += 0 if ok else 1
            st.last_finished, st.last_seconds = datetime.now(UTC), round(seconds, 3)
            self.running = None
            if seconds > job.interval and not self.stopping:
                missed = int(seconds // job.interval)
                st.skipped += missed
                self.warn(f"job {job.name} ran {seconds:.0f}s, longer than its schedule ({job.describe()}); "
                          f"{plural(missed, 'due run')} skipped while it was running")
            self._next_runs()
            self.beat(force=True)
        return ok

    def run_all_once(self) -> list[str]:
        """Every job once, in file order; the names of those that failed (or were interrupted)."""
        failed = []
        with self.signals():
            for job in self.plan.jobs:
                if self.stopping:
                    failed.append(job.name)
                    continue
                if not self.run_one(job):
                    failed.append(job.name)
        self.beat(force=True)
        return failed

    def _schedule(self, job: Job) -> None:
        if job.every is not None:
            lib_job = self._lib.every(max(1, round(job.interval))).seconds
        else:
            assert job.at is not None
            lib_job = self._lib.every().day.at(job.at, "UTC")  # the library keeps it UTC across DST changes
        self._lib_jobs[job.name] = lib_job.do(self.run_one, job)

    def _next_runs(self) -> None:
        for name, lib_job in self._lib_jobs.items():
            nxt = lib_job.next_run  # naive local time
            self.states[name].next_run = nxt.astimezone(UTC) if nxt else None

    def loop(self, max_runtime: float | None = None) -> None:
        """Run due jobs until a signal (or ``max_runtime`` seconds, for tests and bounded runs)."""
        for job in self.plan.jobs:
            self._schedule(job)
        self._next_runs()
        self.info("scheduler: " + "; ".join(f"{j.name} {j.describe()}" for j in self.plan.jobs))
        deadline = None if max_runtime is None else time.monotonic() + max_runtime
        with self.signals():
            try:
                while not self.stopping:
                    self._lib.run_pending()
                    self.beat()
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        break
                    idle = self._lib.idle_seconds
                    pause = MAX_SLEEP if idle is None else min(MAX_SLEEP, max(0.05, idle))
                    if deadline is not None:
                        pause = min(pause, max(0.0, deadline - now))
                    time.sleep(pause)
            except KeyboardInterrupt:  # a signal between jobs, in an unlucky spot: stop all the same
                self.stopping = True
        self.beat(force=True)
        self.info("scheduler: stopped")

    # -- heartbeat
    def document(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "started_at": _iso(self.started_at), "updated_at": _iso(datetime.now(UTC)),
                "running": self.running, "stopping": self.stopping,
                "jobs": {j.name: {"schedule": j.describe(), **self.states[j.name].to_dict()}
                         for j in self.plan.jobs}}

    def beat(self, *, force: bool = False) -> None:
        """Rewrite the heartbeat file (at most once a second unless ``force``)."""
        path = self.plan.heartbeat
        now = time.monotonic()
        if path is None or (not force and now - self._last_beat < 1.0):
            return
        self._last_beat = now
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(self.document(), option=orjson.OPT_INDENT_2) + b"\n")
            os.replace(tmp, path)
        except OSError as e:
            self.warn(f"cannot write heartbeat {str(path)!r}: {e.strerror or e}")


class _Toucher:
    """Refreshes the heartbeat's mtime while a job runs (the JSON says which job, since when)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if path is not None:
            self._thread = threading.Thread(target=self._run, name="vecbackup-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TOUCH_INTERVAL):
            try:
                os.utime(self.path)  # type: ignore[arg-type]
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()


def _describe(result: dict[str, Any]) -> str:
    parts = [f"backup {b['backup_id']} of {b['collection']}: {plural(b['rows'], 'row')} in {b['seconds']:.1f}s"
             for b in result.get("backups", [])]
    for p in result.get("pruned", []):
        parts.append(f"prune {p['collection']}: kept {p['kept']}, removed {p['removed']}")
    return "; ".join(parts) or "nothing to back up"


__all__ = ["JobState", "Scheduler"]
