"""The phases a restore waits on after its rows (flushing, building an index, loading, ...): how a server call is
waited on while its progress is looked at (engines/milvus/connection.waiting), and how the terminal shows them
(ui.TerminalProgress.phase): one line each with a spinner, the server's count and the time taken on a terminal,
nothing anywhere else (not a terminal, --json, --log-format json, --quiet), the row count's lines as before."""

from __future__ import annotations

import io
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from vecbackup import ui
from vecbackup.engines.milvus import connection
from vecbackup.engines.milvus.connection import waiting
from vecbackup.errors import TargetRejected
from vecbackup.ops.progress import NullProgress


class _Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None:
        self.calls.append((name,) if done is None else (name, done, total, unit))


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "POLL_SECONDS", 0.01)


def test_waiting_reports_what_each_look_finds_while_the_call_runs(fast_polls: None) -> None:
    """The call runs on its own thread until the third look releases it; the phase is reported when it begins and
    with each look's count; the call's result is returned."""
    released = threading.Event()
    looks = []
    threads = []

    def call() -> str:
        threads.append(threading.current_thread())
        assert released.wait(30)
        return "built"

    def look() -> tuple[int, int, str] | None:
        looks.append(1)
        if len(looks) == 3:
            released.set()
            return None  # (the call may end before this look's report: nothing is reported for it)
        return len(looks) * 100, 300, "rows"

    report = _Reports()
    assert waiting(report, "building index v", call, look) == "built"
    assert threads[0] is not threading.current_thread()
    assert report.calls == [("building index v",), ("building index v", 100, 300, "rows"),
                            ("building index v", 200, 300, "rows")]


def test_waiting_raises_the_calls_error_and_ignores_a_failing_look(fast_polls: None) -> None:
    refused = TargetRejected("Milvus at x: create index failed")
    looked = threading.Event()

    def call() -> None:
        assert looked.wait(30)
        raise refused

    def look() -> tuple[int, int, str] | None:
        looked.set()
        raise RuntimeError("the server does not answer this one")

    report = _Reports()
    with pytest.raises(TargetRejected) as caught:
        waiting(report, "loading", call, look)
    assert caught.value is refused
    assert report.calls == [("loading",)]


def test_without_a_look_or_a_report_the_call_runs_in_the_calling_thread() -> None:
    """Milvus Lite (no look): the phase is said once and the call made here; no report: just the call."""
    seen: list[threading.Thread] = []

    def call() -> int:
        seen.append(threading.current_thread())
        return 7

    report = _Reports()
    assert waiting(report, "flushing", call) == 7
    assert waiting(None, "flushing", call, lambda: (1, 2, "rows")) == 7
    assert seen == [threading.current_thread()] * 2
    assert report.calls == [("flushing",)]


def test_null_progress_keeps_each_phase_once_in_order() -> None:
    p = NullProgress()
    for name, done in (("flushing", None), ("building index v", 0), ("building index v", 10), ("loading", 50),
                       ("counting rows", None), ("renaming", None)):
        p.phase(name, done, None if done is None else 100)
    assert p.phases == ["flushing", "building index v", "loading", "counting rows", "renaming"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A function that makes sys.stderr a terminal (or, given False, a pipe) for the rest of the test and returns it
    (called in the test: pytest sets its own sys.stderr between a fixture and the test); the ui's settings back to
    their defaults after."""

    def make(tty: bool = True) -> io.StringIO:
        stream = _Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        ui.configure()
        return stream

    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TERM", "xterm-256color")
    yield make
    ui._stop_live()
    ui.configure()


def _restore(p: ui.TerminalProgress) -> None:
    """What a restore reports: its rows, then the phases the sink and the restore wait on."""
    p.start("restore docs", 3000)
    p.advance(3000)
    p.phase("flushing")
    p.phase("building index v")
    p.phase("building index v", 0, 3000)
    p.phase("building index v", 1500, 3000)
    p.phase("loading", 40, 100, "%")
    p.phase("counting rows")
    p.phase("renaming")
    p.finish()


def _lines(text: str) -> list[str]:
    """The lines drawn, escape sequences removed, in order; a line drawn again unchanged counted once."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    out: list[str] = []
    for line in re.split(r"[\r\n]+", plain):
        if line.strip() and (not out or out[-1] != line):
            out.append(line.rstrip())
    return out


def test_a_terminal_shows_each_phase_as_it_goes_and_then_done(terminal: Any) -> None:
    out = terminal()
    p = ui.TerminalProgress()
    _restore(p)
    lines = _lines(out.getvalue())
    phases = ["flushing", "building index v", "loading", "counting rows", "renaming"]
    # drawn as each began (a spinner, then its count where the server gave one), in order
    firsts = [next(i for i, line in enumerate(lines) if re.search(rf"^\S+ {name}\b", line)) for name in phases]
    assert firsts == sorted(firsts) and lines[0].startswith("restore docs")
    assert any(re.search(r"^[^✓] building index v .* 1500/3000 rows", line) for line in lines)
    assert any(re.search(r"^[^✓] loading .* 40%", line) for line in lines)
    # and, at the end, every one done: a check mark, the full count, the time taken
    final = lines[-len(phases):]
    assert [re.sub(r"\s+", " ", line) for line in final] == [
        "✓ flushing " + "━" * 40 + " 0:00:00", "✓ building index v " + "━" * 40 + " 3000/3000 rows 0:00:00",
        "✓ loading " + "━" * 40 + " 100% 0:00:00", "✓ counting rows " + "━" * 40 + " 0:00:00",
        "✓ renaming " + "━" * 40 + " 0:00:00"]
    assert ui._live == []


def test_an_error_stops_the_display_where_it_stood(terminal: Any) -> None:
    """A failed phase is left as it stood (no check mark), and the error line comes after it."""
    out = terminal()
    p = ui.TerminalProgress()
    p.start("restore docs", 10)
    p.advance(10)
    p.phase("building index v")
    display = p._phases
    ui.error("Milvus at x: cannot build index HNSW on field 'v'", 9)
    assert ui._live == [] and not display.live.is_started
    lines = _lines(out.getvalue())
    assert lines[-1] == "error: Milvus at x: cannot build index HNSW on field 'v'"
    assert not any(line.startswith("✓ building index v") for line in lines)


def test_not_a_terminal_prints_the_row_count_lines_only(terminal: Any) -> None:
    out = terminal(tty=False)
    _restore(ui.TerminalProgress())
    text = re.sub(r"in \d+\.\ds", "in <s>", out.getvalue())
    assert text == "restore docs: 3000 rows\nrestore docs: done, 3000 rows in <s>\n"
    out.truncate(0)
    out.seek(0)
    one = ui.TerminalProgress()
    one.start("backup c", 1)
    one.advance(1)
    one.finish()
    assert re.sub(r"in \d+\.\ds", "in <s>", out.getvalue()) == "backup c: 1 row\nbackup c: done, 1 row in <s>\n"


@pytest.mark.parametrize("mode", [{"json": True}, {"quiet": True}])
def test_json_and_quiet_print_nothing(terminal: Any, mode: dict[str, bool]) -> None:
    out = terminal()
    ui.configure(**mode)
    _restore(ui.TerminalProgress())
    assert out.getvalue() == ""


def test_structured_logs_carry_the_row_count_only(terminal: Any) -> None:
    out = terminal()
    ui.configure(json=True, log_format="json")
    _restore(ui.TerminalProgress())
    events = [re.search(r'"event":"(\w+)"', line).group(1)  # type: ignore[union-attr]
              for line in out.getvalue().splitlines()]
    assert events == ["start", "finish"]


def test_a_progress_written_before_phases_is_given_one_that_shows_nothing():
    """A Python API caller's own Progress without phase() (the protocol had none before) still works: ops call
    phase() on every progress, and such a one is wrapped instead of failing after the rows are in."""
    from vecbackup.ops.progress import NullProgress, with_phases

    class Older:
        def __init__(self) -> None:
            self.calls: list[tuple[object, ...]] = []

        def start(self, label: str, total: int | None) -> None:
            self.calls.append(("start", label, total))

        def advance(self, rows: int, nbytes: int = 0) -> None:
            self.calls.append(("advance", rows))

        def finish(self) -> None:
            self.calls.append(("finish",))

        def warn(self, message: str) -> None:
            self.calls.append(("warn", message))

    older = Older()
    p = with_phases(older)  # type: ignore[arg-type]
    p.start("restore c", 3)
    p.advance(3)
    p.phase("loading", 50, 100, "%")
    p.warn("w")
    p.finish()
    assert older.calls == [("start", "restore c", 3), ("advance", 3), ("warn", "w"), ("finish",)]
    null = NullProgress()
    assert with_phases(null) is null and isinstance(with_phases(None), NullProgress)
