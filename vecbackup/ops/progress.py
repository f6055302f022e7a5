"""The progress callback operations report through (the terminal side lives in vecbackup.ui)."""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None:
        """A new phase with ``total`` rows to go (None if unknown)."""

    def advance(self, rows: int, nbytes: int = 0) -> None: ...

    def phase(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None:
        """What the operation waits on now that its rows are written (``flushing``, ``building index v``,
        ``loading``, ``counting rows``, ``renaming``), with ``done`` of ``total`` (``unit``: ``rows``, or ``%``) where
        the server reports it; called again with the same name as that moves (engines.base.PhaseReport). A call
        ends the count start() began, and any phase of another name; finish() ends the last one."""

    def finish(self) -> None:
        """End the count start() began, or the phase phase() began (nothing when neither is open)."""

    def warn(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing; what tests and the Python API use by default. Keeps the rows counted, the warnings, and the
    name of each phase in order (a phase reported again in a row counted once)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.rows = 0
        self.phases: list[str] = []

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, rows: int, nbytes: int = 0) -> None:
        self.rows += rows

    def phase(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None:
        if not self.phases or self.phases[-1] != name:
            self.phases.append(name)

    def finish(self) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class _WithoutPhases:
    """A Progress written before phase() existed, whose phases are not shown (ops call phase() on every one)."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._progress, name)

    def phase(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None:
        pass


def with_phases(progress: Progress | None) -> Progress:
    """``progress`` (a NullProgress when None) as ops use it: one without a phase() method, as the Python API's
    callers wrote them before restores reported their phases, is given one that shows nothing."""
    if progress is None:
        return NullProgress()
    if callable(getattr(progress, "phase", None)):
        return progress
    return _WithoutPhases(progress)
