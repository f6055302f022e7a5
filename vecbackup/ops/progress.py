"""The progress callback operations report through (the terminal side lives in vecbackup.ui)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None:
        """A new phase with ``total`` rows to go (None if unknown)."""

    def advance(self, rows: int, nbytes: int = 0) -> None: ...

    def finish(self) -> None: ...

    def warn(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing; what tests and the Python API use by default."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.rows = 0

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, rows: int, nbytes: int = 0) -> None:
        self.rows += rows

    def finish(self) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)
