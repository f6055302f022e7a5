"""The terminal: the only module that imports rich. Progress, tables, --json documents, errors.

Machine output (``--json``) is one JSON document on stdout; everything for people
(progress, warnings, errors) goes to stderr, so pipes stay clean. With ``--log-format json`` those
stderr lines are JSON objects instead, one per line: ``{"ts", "level", "msg", ...}``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from vecbackup.words import plural

_state = {"json": False, "quiet": False, "emitted": False, "json_log": False}

LOG_FORMATS = ("text", "json")


def configure(*, json: bool = False, quiet: bool = False, log_format: str = "text") -> None:
    _state["json"] = json
    _state["quiet"] = quiet
    _state["emitted"] = False
    _state["json_log"] = log_format == "json"


def log_json() -> bool:
    """True with ``--log-format json``: stderr carries one JSON object per line."""
    return _state["json_log"]


def log(level: str, msg: str, **fields: Any) -> None:
    """One structured log line on stderr: {"ts", "level", "msg", ...fields}."""
    from vecbackup.times import now_z

    ts = now_z("milliseconds")
    line = orjson.dumps({"ts": ts, "level": level, "msg": msg, **fields}, default=str).decode()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def json_mode() -> bool:
    return _state["json"]


def _console(stderr: bool = True) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # not a terminal (cron, CI, pipes): wide enough that ids and timestamps are never cut
    width = None if stream.isatty() else 200
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


def emit(document: Any, human: Callable[[], None] | None = None) -> None:
    """The command's result: a JSON document with --json, else the human rendering."""
    _stop_live()
    if _state["json"]:
        _state["emitted"] = True
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
        sys.stdout.flush()
    elif human is not None:
        human()


def say(message: str) -> None:
    """A line for people on stdout (suppressed by --quiet and --json)."""
    if not _state["quiet"] and not _state["json"]:
        _console(stderr=False).print(message, markup=False)


def warn(message: str) -> None:
    if _state["quiet"]:
        return
    if _state["json_log"]:
        log("warning", message)
    else:
        sys.stderr.write(f"warning: {message}\n")


def error(message: str, exit_code: int) -> None:
    """One line on stderr; with --json also a document on stdout, unless the result document (which
    says ``"ok": false``) is already there: stdout always holds exactly one JSON document."""
    _stop_live()
    if _state["json_log"]:
        log("error", message, exit_code=exit_code)
    else:
        sys.stderr.write(f"error: {message}\n")
    if _state["json"] and not _state["emitted"]:
        sys.stdout.write(orjson.dumps({"ok": False, "error": message, "exit_code": exit_code}).decode() + "\n")


#: columns right-aligned in tables
_NUMERIC = frozenset({"rows", "size", "objects", "row count", "uploaded", "unique"})


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, justify="right" if c in _NUMERIC else "left")
    for r in rows:
        t.add_row(*[str(x) for x in r])
    _console(stderr=False).print(t)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


#: the progress displays drawing on the terminal now: stopped (as they stand) before the result or an error is printed
_live: list[Any] = []


def _stop_live() -> None:
    while _live:
        _live.pop().stop()


def _start_live(display: Any) -> Any:
    display.start()
    _live.append(display)
    return display


def _end_live(display: Any) -> None:
    display.stop()
    if display in _live:
        _live.remove(display)


def _rows(n: int | None) -> str:
    """``3 rows``, ``1 row``, ``? rows`` (a count not known)."""
    return "? rows" if n is None else plural(n, "row")


class TerminalProgress:
    """Rich progress bar (rows, rows/s, ETA) on a terminal; a plain line every few seconds otherwise.

    After the rows, the phases an operation waits on (Progress.phase: flushing, building an index, loading, ...)
    are shown on a terminal one line each, with a spinner, the server's count where it reports one (rows indexed,
    percent loaded) and the time the phase has taken, redrawn several times a second while it lasts; elsewhere
    (not a terminal, --json, --log-format json, --quiet) they print nothing, the row count's lines as before."""

    def __init__(self, *, interval: float = 10.0) -> None:
        # structured logs (--log-format json) carry progress even with --json: both are for machines
        self.enabled = not _state["quiet"] and (not _state["json"] or _state["json_log"])
        self.json_log = _state["json_log"]
        self.tty = sys.stderr.isatty() and not self.json_log
        self.interval = interval
        self._bar: Any = None
        self._task: Any = None
        self._label = ""
        self._total: int | None = None
        self._done = 0
        self._bytes = 0
        self._t0 = 0.0
        self._last = 0.0
        self._counting = False  # between start() and the finish() (or first phase()) that ends the count
        self._phases: Any = None  # the display of the phases (a terminal only)
        self._phase: tuple[str, Any, int | None, str] | None = None  # (name, task, total, unit) of the phase shown

    def start(self, label: str, total: int | None) -> None:
        self._end_phases()
        self._label, self._total, self._done, self._bytes = label, total, 0, 0
        self._t0 = self._last = time.monotonic()
        self._counting = True
        if not self.enabled:
            return
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = _start_live(Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} rows/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=_console(), transient=False,
            ))
            self._task = self._bar.add_task(label, total=total, rate="-")
        elif self.json_log:
            log("info", f"{label}: {_rows(total)}", event="start", phase=label, total=total)
        else:
            sys.stderr.write(f"{label}: {_rows(total)}\n")

    def advance(self, rows: int, nbytes: int = 0) -> None:
        self._done += rows
        self._bytes += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        rate = self._done / max(now - self._t0, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, advance=rows, rate=f"{rate:,.0f}")
        elif now - self._last >= self.interval:
            self._last = now
            total = f"/{self._total}" if self._total is not None else ""
            if self.json_log:
                log("info", f"{self._label}: {self._done}{total} rows, {rate:,.0f} rows/s", event="progress",
                    phase=self._label, rows=self._done, total=self._total, bytes=self._bytes,
                    rows_per_second=round(rate, 1))
            else:
                sys.stderr.write(f"{self._label}: {self._done}{total} rows, {rate:,.0f} rows/s\n")

    def phase(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None:
        if self._counting:
            self.finish()
        if not self.enabled or not self.tty:
            return
        if self._phases is None:
            self._phases = _start_live(_phase_display())
        if self._phase is not None and self._phase[0] == name:
            task = self._phase[1]
        else:
            self._end_phase()
            task = self._phases.add_task(name, total=None, detail="")
        if done is not None and total:  # shown short of complete until the phase ends (the server may say 100%
            # a moment before the call waiting on it returns)
            self._phases.update(task, total=total, completed=min(done, total - 1), detail=_count(done, total, unit))
        self._phase = (name, task, total, unit)
        self._phases.refresh()  # drawn now: a phase shorter than the redraw interval (0.1 s) is seen too

    def _end_phase(self) -> None:
        """Show the phase shown last as done: its count complete, its spinner a check mark, its time frozen."""
        if self._phase is None:
            return
        _, task, total, unit = self._phase
        self._phases.update(task, total=total or 1, completed=total or 1,
                            detail=_count(total, total, unit) if total else "")
        self._phases.stop_task(task)
        self._phase = None

    def _end_phases(self) -> None:
        if self._phases is None:
            return
        self._end_phase()
        _end_live(self._phases)
        self._phases = None

    def finish(self) -> None:
        if not self._counting:
            self._end_phases()
            return
        self._counting = False
        if not self.enabled:
            return
        if self._bar is not None:
            _end_live(self._bar)
            self._bar = None
        else:
            secs = time.monotonic() - self._t0
            if self.json_log:
                log("info", f"{self._label}: done, {_rows(self._done)} in {secs:.1f}s", event="finish",
                    phase=self._label, rows=self._done, bytes=self._bytes, seconds=round(secs, 3))
            else:
                sys.stderr.write(f"{self._label}: done, {_rows(self._done)} in {secs:.1f}s\n")

    def warn(self, message: str) -> None:
        warn(message)


def _count(done: int, total: int, unit: str) -> str:
    """A phase's count as shown: ``40%`` (``unit`` ``%``: ``done`` of 100), ``3000/5000 rows``."""
    return f"{done}%" if unit == "%" else f"{done}/{total} {unit}"


def _phase_display() -> Any:
    """A rich display of phases: spinner (a check mark once done), name, bar (moving while the server reports no
    count), the count, the time taken."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=_console(), transient=False)
