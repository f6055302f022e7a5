"""``vecbackup schedule``: back up on a timetable in one long-running process (containers without cron).

A TOML file of jobs (docs/CONFIG.md, "Schedule")::

    heartbeat = "/tmp/vecbackup.heartbeat"

    [[jobs]]
    name = "articles"
    source = "milvus://db:19530"
    collections = ["articles"]          # or all = true
    store = "s3://bucket/milvus"
    every = "6h"                        # or at = "02:15" (daily, UTC)
    keep_daily = 7                      # optional retention: prune after a successful backup
    token_file = "/var/run/secrets/milvus-token"

Jobs run in this process one after another, never two at once (the ``schedule`` library decides what is due);
a failing job (any exception) is logged and recorded and the others go on. SIGTERM/SIGINT interrupt the running
job the way Ctrl-C interrupts ``vecbackup backup`` (nothing committed: a backup without its manifest does not
exist, and its uploaded chunks are reused by the next run) and then the scheduler exits 0. The heartbeat file is
rewritten every loop iteration and after every job with JSON holding each job's last run and status, and touched
every few seconds while a job runs, for liveness probes.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import schedule as schedule_lib

from vecbackup import config, metrics
from vecbackup.errors import PartialFailure, UsageError, VecbackupError
from vecbackup.ops.backup import backup_collection
from vecbackup.ops.lock import locked
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.ops.prune import prune
from vecbackup.retention import Policy
from vecbackup.sources import open_engine
from vecbackup.sources.milvus import MAX_BATCH
from vecbackup.stores import open_store
from vecbackup.times import iso_z, parse_duration

#: the heartbeat file's mtime is refreshed this often while a job runs
TOUCH_INTERVAL = 5.0
#: the loop wakes at least this often (heartbeat, signals)
MAX_SLEEP = 1.0

_KEEP = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


@dataclass(frozen=True)
class Job:
    name: str
    source: str
    store: str
    collections: tuple[str, ...] = ()
    all: bool = False
    every: str | None = None  # "6h"
    at: str | None = None  # "02:15", daily, UTC
    batch_size: int = 5000
    compression_level: int = 3
    user: str | None = None
    token_file: str | None = None
    password_file: str | None = None
    api_key_file: str | None = None
    ca_cert: str | None = None
    lock_wait: float = 0.0
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: str | None = None
    gc_min_age: str = "24h"

    @property
    def interval(self) -> float:
        """Seconds between runs."""
        return parse_duration(self.every) if self.every else 86400.0

    @property
    def policy(self) -> Policy | None:
        p = Policy(**{k: getattr(self, k) for k in _KEEP},
                   keep_within=parse_duration(self.keep_within) if self.keep_within else 0.0)
        return None if p.is_empty else p

    def describe(self) -> str:
        return f"every {self.every}" if self.every else f"daily at {self.at} UTC"


JOB_KEYS = tuple(f.name for f in fields(Job))
_REQUIRED = ("name", "source", "store")
_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "source": (str,), "store": (str,), "all": (bool,), "every": (str,), "at": (str,),
    "batch_size": (int,), "compression_level": (int,), "user": (str,), "token_file": (str,),
    "password_file": (str,), "api_key_file": (str,), "ca_cert": (str,), "lock_wait": (int, float),
    "keep_within": (str,), "gc_min_age": (str,), **{k: (int,) for k in _KEEP},
}


@dataclass(frozen=True)
class Schedule:
    jobs: tuple[Job, ...]
    heartbeat: Path | None = None
    source: str = ""
    metrics_textfile: str | None = None  # vecbackup.metrics outputs, per job run; the job label is the job name
    metrics_pushgateway: str | None = None


def _job(raw: Any, index: int, source: str) -> Job:
    where = f"{source} [[jobs]] #{index + 1}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table")
    if isinstance(raw.get("name"), str):
        where = f"{source} job {raw['name']!r}"
    config.refuse_secrets(raw, where)
    config.refuse_url_passwords(raw, where)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        k = key.replace("-", "_")
        if k not in JOB_KEYS:
            raise UsageError(f"{where}: unknown key {key!r}", hint="known: " + ", ".join(JOB_KEYS))
        if k == "collections":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise UsageError(f"{where}: collections must be a list of collection names")
            value = tuple(dict.fromkeys(value))
        elif isinstance(value, bool) != (bool in _TYPES[k]) or not isinstance(value, _TYPES[k]):
            raise UsageError(f"{where}: {key} must be {' or '.join(t.__name__ for t in _TYPES[k])} "
                             f"(got {value!r})")
        values[k] = value
    for k in _REQUIRED:
        if not values.get(k):
            raise UsageError(f"{where}: {k} is required")
    job = Job(**values)
    if bool(job.collections) == job.all:
        raise UsageError(f"{where}: say which collections to back up",
                         hint='give collections = ["name", ...] or all = true')
    if (job.every is None) == (job.at is None):
        raise UsageError(f"{where}: give one of every = \"6h\" or at = \"02:15\" (daily, UTC)")
    if job.every is not None and job.interval < 1:
        raise UsageError(f"{where}: every = {job.every!r} is shorter than a second")
    if job.at is not None:
        _utc_time(job.at, where)
    if not 1 <= job.batch_size <= MAX_BATCH:
        raise UsageError(f"{where}: batch_size {job.batch_size} is out of range", hint=f"use 1 to {MAX_BATCH}")
    if not 1 <= job.compression_level <= 22:
        raise UsageError(f"{where}: compression_level {job.compression_level} is out of range", hint="use 1 to 22")
    job.policy  # noqa: B018 - checks keep_* and keep_within
    parse_duration(job.gc_min_age)
    return job


def _utc_time(text: str, where: str = "") -> tuple[int, int]:
    try:
        t = datetime.strptime(text, "%H:%M")
    except ValueError:
        raise UsageError(f"{where}: at = {text!r} is not a time of day", hint='use "HH:MM" (UTC)') from None
    return t.hour, t.minute


def parse_schedule(data: Mapping[str, Any], *, source: str = "schedule file", ignore: frozenset[str] = frozenset(),
                   ) -> Schedule:
    """A schedule from a parsed TOML document; ``ignore`` are top-level keys that belong to others (the option
    tables of a config file, which may be the same file)."""
    for key in data:
        if key not in config.SCHEDULE_KEYS and key not in ignore:
            raise UsageError(f"{source}: unknown key {key!r}",
                             hint="known: " + ", ".join(sorted(config.SCHEDULE_KEYS)))
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list) or not raw_jobs:
        raise UsageError(f"{source} has no jobs", hint='add [[jobs]] tables with name, source, store, collections '
                                                        'and every or at')
    jobs = tuple(_job(raw, i, source) for i, raw in enumerate(raw_jobs))
    names = [j.name for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{source}: job names must be unique; repeated: {', '.join(dupes)}")
    config.refuse_url_passwords({k: v for k, v in data.items() if k != "jobs"}, source)
    for key in config.SCHEDULE_KEYS - {"jobs"}:
        if key in data and (not isinstance(data[key], str) or not data[key]):
            raise UsageError(f"{source}: {key} must be a {'URL' if 'pushgateway' in key else 'file path'}")
    heartbeat = data.get("heartbeat")
    return Schedule(jobs, Path(heartbeat) if heartbeat else None, source,
                    metrics_textfile=data.get("metrics_textfile"), metrics_pushgateway=data.get("metrics_pushgateway"))


def load_schedule(path: Path, *, ignore: frozenset[str] = frozenset()) -> Schedule:
    return parse_schedule(config.load_toml(path), source=f"schedule file {str(path)!r}", ignore=ignore)


# -- one run of one job --------------------------------------------------------------------------------------


def run_job(job: Job, progress: Callable[[], Progress] = NullProgress, *, metrics_textfile: str | None = None,
            metrics_pushgateway: str | None = None, warn: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Back up the job's collections, then (if it has retention) prune the ones that succeeded. Returns a
    summary; raises the collection's error if one collection failed, PartialFailure if some of several did.
    With a metrics textfile or Pushgateway, each run's outcome per collection is written there (vecbackup.metrics;
    operations ``backup`` and ``prune``, the ``job`` label is the job's name)."""
    with metrics.recording("backup", textfile=metrics_textfile, pushgateway=metrics_pushgateway, job=job.name,
                           on_failure=job.collections, warn=warn) as rec:
        summary, target, failures, names = _backup_job(job, progress, rec)
    policy = job.policy
    if policy is not None and summary["backups"]:  # retention only after a successful backup, of what was backed up
        pruned = []
        done = [b["collection"] for b in summary["backups"]]
        with metrics.recording("prune", textfile=metrics_textfile, pushgateway=metrics_pushgateway, job=job.name,
                               on_failure=done, warn=warn) as prec, \
                locked(target, "prune", exclusive=True, wait=job.lock_wait):
            for name in done:
                t0 = time.monotonic()
                p = prune(target, policy, collection=name, gc_min_age=parse_duration(job.gc_min_age))
                freed = p.bytes_freed + (p.gc.bytes_freed if p.gc else 0)
                prec.record(name, True, seconds=time.monotonic() - t0, nbytes=freed)
                pruned.append({"collection": name, "kept": len(p.kept), "removed": len(p.removed),
                               "bytes_freed": freed})
        summary["pruned"] = pruned
    if failures:
        if len(names) == 1:
            raise failures[0][1]
        raise PartialFailure(f"{len(failures)} of {len(names)} collections failed: "
                             + "; ".join(f"{n}: {e}" for n, e in failures))
    return summary


def _backup_job(job: Job, progress: Callable[[], Progress], rec: metrics.Recorder,
                ) -> tuple[dict[str, Any], Any, list[tuple[str, VecbackupError]], list[str]]:
    secret: dict[str, str | None] = {
        k: config.secret_from_file(path, f"{k}_file of job {job.name!r}") if path else None
        for k, path in (("token", job.token_file), ("password", job.password_file), ("api_key", job.api_key_file))}
    engine = open_engine(job.source, token=secret["token"], user=job.user, password=secret["password"],
                         ca_cert=job.ca_cert, api_key=secret["api_key"])
    backups: list[dict[str, Any]] = []
    failures: list[tuple[str, VecbackupError]] = []
    try:
        names = engine.list_collections() if job.all else list(job.collections)
        target = open_store(job.store, create=True)
        with locked(target, "backup", exclusive=False, wait=job.lock_wait):
            for name in names:
                try:
                    r = backup_collection(engine, target, name, batch_size=job.batch_size,
                                          compression_level=job.compression_level, progress=progress())
                except VecbackupError as e:
                    failures.append((name, e))
                    rec.record(name, False)
                    continue
                rec.record(name, True, seconds=r.seconds, rows=r.rows, nbytes=r.bytes_stored)
                backups.append({"collection": name, "backup_id": r.backup_id, "rows": r.rows,
                                "bytes_uploaded": r.bytes_uploaded, "seconds": round(r.seconds, 3),
                                "notes": r.notes})
    finally:
        engine.close()
    summary: dict[str, Any] = {"backups": backups,
                               "failures": [{"collection": n, "error": str(e), "exit_code": e.exit_code}
                                            for n, e in failures]}
    return summary, target, failures, names


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
                          f"{missed} due run(s) skipped while it was running")
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
            lib_job = self._lib.every().day.at(_local_hhmm(job.at))
        self._lib_jobs[job.name] = lib_job.do(self._due, job)

    def _due(self, job: Job) -> None:
        self.run_one(job)
        if job.at is not None and self._lib_jobs[job.name].at_time != _local_time(job.at):
            self._lib.cancel_job(self._lib_jobs[job.name])  # the local offset of the UTC time changed (DST)
            self._schedule(job)

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


def _local_time(hhmm: str) -> Any:
    """The local wall-clock time (what ``schedule`` uses) of today's ``hhmm`` UTC."""
    h, m = _utc_time(hhmm)
    utc = datetime.now(UTC).replace(hour=h, minute=m, second=0, microsecond=0)
    return utc.astimezone().time().replace(tzinfo=None)


def _local_hhmm(hhmm: str) -> str:
    return _local_time(hhmm).strftime("%H:%M")


def _describe(result: dict[str, Any]) -> str:
    parts = [f"backup {b['backup_id']} of {b['collection']}: {b['rows']} rows in {b['seconds']:.1f}s"
             for b in result.get("backups", [])]
    for p in result.get("pruned", []):
        parts.append(f"prune {p['collection']}: kept {p['kept']}, removed {p['removed']}")
    return "; ".join(parts) or "nothing to back up"
