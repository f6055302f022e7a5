"""Prometheus metrics of backup, restore, verify and prune runs, for alerting on stale or failing backups.

Two outputs, both optional:

* a node-exporter textfile (``--metrics-textfile``): the file is read, this run's series are merged
  into it (series of other collections and operations are kept, ``vecbackup_failures_total`` keeps
  counting across runs) and it is replaced atomically (written to ``PATH.tmp``, then renamed);
* a Pushgateway (``--metrics-pushgateway``): HTTP PUT of the text exposition format to
  ``URL/metrics/job/<job>/instance/<host>``. A PUT replaces the whole group, so when a textfile is
  also given the merged series are pushed; otherwise only this run's (and failures_total restarts).

Every series has the labels ``job``, ``collection`` and ``operation``; nothing else (never a URL, a
token or a path). Writing metrics never fails the run: problems come back as warnings.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

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

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# --------------------------------------------------------------------------- exposition format


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer() and abs(v) < 2**63:
        return str(int(v))
    return repr(float(v))


def render(series: dict[SeriesKey, float]) -> str:
    """Text exposition format: HELP and TYPE for each family with series, then its series, sorted."""
    out: list[str] = []
    for name, mtype, help_text in FAMILIES:
        rows = sorted((labels, v) for (n, labels), v in series.items() if n == name)
        if not rows:
            continue
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} {mtype}")
        for labels, v in rows:
            body = ",".join(f'{k}="{escape_label_value(val)}"' for k, val in labels)
            out.append(f"{name}{{{body}}} {format_value(v)}")
    return "\n".join(out) + "\n" if out else ""


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _parse_labels(text: str) -> Labels:
    labels: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _LABEL_PAIR.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad label set {{{text}}}")
        labels.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return tuple(labels)


def parse(text: str) -> dict[SeriesKey, float]:
    """Samples of a text exposition (comments skipped). ValueError on a malformed line."""
    series: dict[SeriesKey, float] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"line {n}: not a sample: {line!r}")
        name, labels, value = m.group(1), _parse_labels(m.group(2) or ""), m.group(3)
        series[(name, tuple(sorted(labels)))] = float(value)
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


def write_atomic(path: Path, text: str) -> None:
    """Write ``PATH.tmp``, fsync, rename over PATH: node-exporter never sees half a file."""
    tmp = Path(f"{path}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def update_textfile(path: Path, outcomes: list[Outcome], *, job: str, operation: str, now: float) -> str:
    """Merge this run into the textfile at ``path``; returns the text written."""
    with _file_lock(path):
        try:
            previous = read_textfile(path)
        except ValueError:  # a damaged file: start over rather than never write again
            previous = {}
        text = render(merge(previous, outcomes, job=job, operation=operation, now=now))
        write_atomic(path, text)
    return text


def push_url(base: str, job: str, instance: str) -> str:
    return f"{base.rstrip('/')}/metrics/job/{quote(job, safe='')}/instance/{quote(instance, safe='')}"


def push(base: str, text: str, *, job: str, instance: str | None = None, timeout: float = 10.0) -> None:
    """PUT the exposition to a Pushgateway (user:password in the URL: basic auth). OSError (urllib.error.URLError
    included) on failure."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    p = urlsplit(base)
    if p.username is not None:  # http://user:password@gateway: HTTP basic auth, kept out of the request line
        creds = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
        netloc = p.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        base = urlunsplit((p.scheme, netloc + (f":{p.port}" if p.port else ""), p.path, "", ""))
    url = push_url(base, job, instance or socket.gethostname())
    req = urllib.request.Request(url, data=text.encode(), method="PUT", headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        resp.read()


def _safe_url(url: str) -> str:
    """The URL without user info or query, for warnings."""
    from urllib.parse import urlsplit

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
               nbytes: int | None = None) -> None:
        """One collection's outcome; several for the same collection (verify --all) add up, and any
        failure makes it a failure."""
        secs = self.elapsed() if seconds is None else seconds
        o = self.outcomes.get(collection)
        if o is None:
            self.outcomes[collection] = Outcome(collection, success, secs, rows, nbytes)
            return
        o.success = o.success and success
        o.seconds = max(o.seconds, secs)
        if rows is not None:
            o.rows = (o.rows or 0) + rows
        if nbytes is not None:
            o.bytes = (o.bytes or 0) + nbytes

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
        if text is None:
            text = render(merge({}, outcomes, job=self.job, operation=self.operation, now=now))
        if self.pushgateway:
            if not self.pushgateway.startswith(("http://", "https://")):
                self.warn(f"metrics not pushed: {_safe_url(self.pushgateway)} is not an http(s) URL")
            else:
                try:
                    push(self.pushgateway, text, job=self.job)
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


__all__ = ["ALL_COLLECTIONS", "DEFAULT_JOB", "FAMILIES", "Outcome", "Recorder", "escape_label_value", "merge",
           "parse", "push", "push_url", "record_schedule_run", "recording", "render", "update_textfile", "write_atomic"]
