"""Prometheus metrics of backup, restore, verify and prune runs, for alerting on stale or failing backups.

Two outputs, both optional:

* a node-exporter textfile (``--metrics-textfile``): the file is read, this run's series are merged
  into it (series of other collections and operations are kept, ``vecbackup_failures_total`` keeps
  counting across runs) and it is replaced atomically (written beside it, then renamed);
* a Pushgateway (``--metrics-pushgateway``): HTTP PUT of the text exposition format to
  ``URL/metrics/job/<job>/instance/<host>``. A PUT replaces the whole group, so when a textfile is
  also given the merged series are pushed; otherwise only this run's (and failures_total restarts).

The exposition format (writing, parsing), the atomic textfile and the push are prometheus-client's; this module
keeps what is vecbackup's: the families, their labels, and how a run's outcomes merge into earlier series.

Every series has the labels ``job``, ``collection`` and ``operation``; nothing else (never a URL, a
token or a path). Writing metrics never fails the run: problems come back as warnings.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import urllib.error
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from vecbackup.api import BackupRun

#: (name, type, help), in output order
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("vecbackup_last_success_timestamp_seconds", "gauge",
     "Unix time the last successful run of this operation on this collection finished."),
    ("vecbackup_last_run_timestamp_seconds", "gauge",
     "Unix time the last run of this operation on this collection finished, successful or not."),
    ("vecbackup_last_run_success", "gauge",
     "1 if the last run of this operation on this collection succeeded, else 0."),
    ("vecbackup_duration_seconds", "gauge", "Duration of the last run of this operation on this collection."),
    ("vecbackup_rows", "gauge",
     "Rows handled by the last successful run: backed up, restored or verified."),
    ("vecbackup_bytes", "gauge",
     "Bytes of the last successful run: stored by a backup, read by verify, restored, freed by prune."),
    ("vecbackup_uploaded_bytes", "gauge",
     "Bytes the last successful backup uploaded (new data and its row digests); the rest it reused."),
    ("vecbackup_failures_total", "counter", "Failed runs of this operation on this collection."),
)
NAMES = frozenset(name for name, _, _ in FAMILIES)
LABELS = ("job", "collection", "operation")
DEFAULT_JOB = "vecbackup"
#: the collection label of a run that is not about one collection (prune of a whole store, a failure
#: before the collections were known)
ALL_COLLECTIONS = "_all"

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


# --------------------------------------------------------------------------- exposition format (prometheus-client)


class _Series:
    """A prometheus-client collector over a {(name, labels): value} map, families in FAMILIES order."""

    def __init__(self, series: dict[SeriesKey, float]) -> None:
        self.series = series

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for name, mtype, help_text in FAMILIES:
            rows = sorted((labels, v) for (n, labels), v in self.series.items() if n == name)
            if not rows:
                continue
            family: Any = (CounterMetricFamily(name.removesuffix("_total"), help_text, labels=LABELS)
                           if mtype == "counter" else GaugeMetricFamily(name, help_text, labels=LABELS))
            for labels, v in rows:
                values = dict(labels)
                family.add_metric([values.get(k, "") for k in LABELS], v)
            yield family


def _registry(series: dict[SeriesKey, float]) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Series(series))
    return registry


def render(series: dict[SeriesKey, float]) -> str:
    """Text exposition format (prometheus-client's): HELP and TYPE for each family with series, then its
    series, sorted."""
    from prometheus_client import generate_latest

    return generate_latest(_registry(series)).decode()


def parse(text: str) -> dict[SeriesKey, float]:
    """Samples of a text exposition (prometheus-client's parser). ValueError on a malformed one."""
    from prometheus_client.parser import text_string_to_metric_families

    series: dict[SeriesKey, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    except (ValueError, TypeError, IndexError) as e:
        raise ValueError(f"not a metrics exposition: {e}") from None
    return series


# --------------------------------------------------------------------------- a run's results


@dataclass
class Outcome:
    """What one run did to one collection."""

    collection: str
    success: bool
    seconds: float
    rows: int | None = None
    bytes: int | None = None
    uploaded: int | None = None


def _labels(job: str, collection: str, operation: str) -> Labels:
    return tuple(sorted({"job": job, "collection": collection, "operation": operation}.items()))


def merge(previous: dict[SeriesKey, float], outcomes: Iterable[Outcome], *, job: str, operation: str,
          now: float) -> dict[SeriesKey, float]:
    """``previous`` (an earlier textfile, other collections and operations included) updated with
    this run's outcomes: failures_total counts on, a failure keeps the last success time and the last
    successful run's rows and bytes."""
    series = {k: v for k, v in previous.items() if k[0] in NAMES}
    for o in outcomes:
        labels = _labels(job, o.collection, operation)
        failures_key = ("vecbackup_failures_total", labels)
        series[failures_key] = series.get(failures_key, 0.0) + (0 if o.success else 1)
        series[("vecbackup_last_run_timestamp_seconds", labels)] = now
        series[("vecbackup_last_run_success", labels)] = 1.0 if o.success else 0.0
        series[("vecbackup_duration_seconds", labels)] = o.seconds
        if o.success:
            series[("vecbackup_last_success_timestamp_seconds", labels)] = now
            if o.rows is not None:
                series[("vecbackup_rows", labels)] = float(o.rows)
            if o.bytes is not None:
                series[("vecbackup_bytes", labels)] = float(o.bytes)
            if o.uploaded is not None:
                series[("vecbackup_uploaded_bytes", labels)] = float(o.uploaded)
    return series


# --------------------------------------------------------------------------- outputs


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise read-merge-write of one textfile between concurrent runs (cron jobs overlapping)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(f"{path}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_textfile(path: Path) -> dict[SeriesKey, float]:
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        return {}


def update_textfile(path: Path, outcomes: list[Outcome], *, job: str, operation: str, now: float) -> str:
    """Merge this run into the textfile at ``path`` (written beside it and renamed over it by prometheus-client's
    write_to_textfile, so node-exporter never reads half a file); returns the text written."""
    from prometheus_client import write_to_textfile

    with _file_lock(path):
        try:
            previous = read_textfile(path)
        except ValueError:  # a damaged file: start over rather than never write again
            previous = {}
        registry = _registry(merge(previous, outcomes, job=job, operation=operation, now=now))
        write_to_textfile(str(path), registry)
    return path.read_text()


def push(base: str, text_series: dict[SeriesKey, float], *, job: str, instance: str | None = None,
         timeout: float = 10.0) -> None:
    """PUT the series to a Pushgateway under ``job`` and ``instance`` (this host) with prometheus-client;
    user:password in the URL becomes HTTP basic auth. OSError (urllib.error.URLError included) on failure."""
    from prometheus_client.exposition import default_handler, push_to_gateway

    p = urlsplit(base)
    auth: str | None = None
    if p.username is not None:  # http://user:password@gateway: basic auth, kept out of the request line
        creds = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
        auth = "Basic " + base64.b64encode(creds).decode()
        netloc = p.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        base = urlunsplit((p.scheme, netloc + (f":{p.port}" if p.port else ""), p.path, "", ""))

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes,
                ) -> Callable[[], None]:
        if auth is not None:
            headers = [*headers, ("Authorization", auth)]
        return default_handler(url, method, timeout, headers, data)

    push_to_gateway(base, job=job, registry=_registry(text_series),
                    grouping_key={"instance": instance or socket.gethostname()}, timeout=timeout, handler=handler)


def _safe_url(url: str) -> str:
    """The URL without user info or query, for warnings."""
    p = urlsplit(url)
    host = p.hostname or ""
    return f"{p.scheme}://{host}{f':{p.port}' if p.port else ''}{p.path}"


# --------------------------------------------------------------------------- the CLI side


@dataclass
class Recorder:
    """Collects a command's per-collection outcomes, then writes them to the configured outputs."""

    operation: str
    textfile: str | None = None
    pushgateway: str | None = None
    job: str = DEFAULT_JOB
    warn: Callable[[str], None] = lambda _msg: None
    started: float = field(default_factory=time.monotonic)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    #: the collections a failure before any ``record`` is recorded under (none: ``_all``)
    failure_names: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.textfile or self.pushgateway)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def record(self, collection: str, success: bool, *, seconds: float | None = None, rows: int | None = None,
               nbytes: int | None = None, uploaded: int | None = None) -> None:
        """One collection's outcome; several for the same collection (verify --all) add up, and any
        failure makes it a failure."""
        secs = self.elapsed() if seconds is None else seconds
        o = self.outcomes.get(collection)
        if o is None:
            self.outcomes[collection] = Outcome(collection, success, secs, rows, nbytes, uploaded)
            return
        o.success = o.success and success
        o.seconds = max(o.seconds, secs)
        if rows is not None:
            o.rows = (o.rows or 0) + rows
        if nbytes is not None:
            o.bytes = (o.bytes or 0) + nbytes
        if uploaded is not None:
            o.uploaded = (o.uploaded or 0) + uploaded

    def backup_run(self, run: BackupRun) -> None:
        """Every collection of a backup run (the CLI's and the scheduler's): each success with its rows, stored and
        uploaded bytes and time, each failure as a failure."""
        for r in run.results:
            self.record(r.collection, True, seconds=r.seconds, rows=r.rows, nbytes=r.bytes_stored,
                        uploaded=r.bytes_uploaded)
        for f in run.failures:
            self.record(f.collection, False)

    def flush(self, *, now: float | None = None) -> str | None:
        """Write the outputs; the text pushed/written, or None when nothing is configured."""
        if not self.enabled or not self.outcomes:
            return None
        now = time.time() if now is None else now
        outcomes = list(self.outcomes.values())
        text: str | None = None
        if self.textfile:
            try:
                text = update_textfile(Path(self.textfile), outcomes, job=self.job, operation=self.operation,
                                       now=now)
            except OSError as e:
                self.warn(f"could not write metrics to {self.textfile}: {e.strerror or e}")
        series = parse(text) if text is not None else merge({}, outcomes, job=self.job, operation=self.operation,
                                                            now=now)
        if text is None:
            text = render(series)
        if self.pushgateway:
            if not self.pushgateway.startswith(("http://", "https://")):
                self.warn(f"metrics not pushed: {_safe_url(self.pushgateway)} is not an http(s) URL")
            else:
                try:
                    push(self.pushgateway, series, job=self.job)
                except urllib.error.HTTPError as e:
                    self.warn(f"could not push metrics to {_safe_url(self.pushgateway)}: HTTP {e.code} {e.reason}")
                except (OSError, ValueError) as e:
                    reason = getattr(e, "reason", None) or e
                    self.warn(f"could not push metrics to {_safe_url(self.pushgateway)}: {reason}")
        return text


@contextmanager
def recording(operation: str, *, textfile: str | None, pushgateway: str | None, job: str | None,
              on_failure: Iterable[str] = (), warn: Callable[[str], None] = lambda _msg: None,
              ) -> Iterator[Recorder]:
    """Record a command's run: the body calls ``record`` per collection; if it raises before recording
    anything, every name in ``on_failure`` (or ``rec.failure_names`` set since; else ``_all``) is recorded
    as failed. Metrics are written on the
    way out either way, and the exception goes on."""
    rec = Recorder(operation, textfile=textfile or None, pushgateway=pushgateway or None,
                   job=job or DEFAULT_JOB, warn=warn, failure_names=list(on_failure))
    try:
        yield rec
    except BaseException:
        if not rec.outcomes:
            for name in rec.failure_names or [ALL_COLLECTIONS]:
                rec.record(name, False)
        rec.flush()
        raise
    rec.flush()


def record_schedule_run(*, job: str, status: str, seconds: float, runs: int = 0, failures: int = 0,
                        error: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """Hook the scheduler (vecbackup.scheduler) calls after each job run: the series
    ``{job=<schedule job>, collection="_all", operation="schedule"}`` go to the outputs the environment
    names (VECBACKUP_METRICS_TEXTFILE, VECBACKUP_PUSHGATEWAY_URL). ``runs``, ``failures`` and ``error`` are
    accepted for the hook's signature; failures_total counts in the textfile as for any run, and an error
    message never becomes a label."""
    environ = os.environ if env is None else env
    rec = Recorder("schedule", textfile=environ.get("VECBACKUP_METRICS_TEXTFILE") or None,
                   pushgateway=environ.get("VECBACKUP_PUSHGATEWAY_URL") or None, job=job or DEFAULT_JOB)
    rec.record(ALL_COLLECTIONS, status == "ok", seconds=seconds)
    return rec.flush()


__all__ = ["ALL_COLLECTIONS", "DEFAULT_JOB", "FAMILIES", "Outcome", "Recorder", "merge", "parse", "push",
           "record_schedule_run", "recording", "render", "update_textfile"]
