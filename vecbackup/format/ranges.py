"""Row ranges of a data object (docs/FORMAT.md, "``select`` (version 2)"): which of its rows a backup holds, as
``(start, count)`` pairs, and how a manifest writes them. Pure; format/manifest.py and format/segments.py build on
it."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

Ranges = tuple[tuple[int, int], ...]


def count(value: Any) -> int:
    """A count or size read from a manifest: a non-negative integer that JSON can hold again (64 bits)."""
    n = int(value)
    if not 0 <= n < 2**63:
        raise ValueError(f"{value!r} is not a count from 0 to 2**63 - 1")
    return n


_SELECT = re.compile(r"[0-9]{1,19}\+[0-9]{1,19}(?:,[0-9]{1,19}\+[0-9]{1,19})*")


def format_select(select: Ranges) -> str:
    """``select`` as written in a manifest: ``skip+take`` pairs, comma-separated; from row 0, skip ``skip`` rows
    then hold the next ``take`` ones (``((0, 57), (58, 4))`` is ``"0+57,1+4"``): about 7 bytes a range, where the
    holes of a long-lived object number in the thousands."""
    out, end = [], 0
    for start, n in select:
        out.append(f"{start - end}+{n}")
        end = start + n
    return ",".join(out)


def parse_select(text: Any) -> Ranges:
    """The ranges a manifest's ``select`` string holds; ValueError if it is not one."""
    if not isinstance(text, str) or not _SELECT.fullmatch(text):
        raise ValueError("select must be skip+take pairs separated by commas, e.g. '0+57,1+4'")
    ranges, end = [], 0
    for pair in text.split(","):
        skip, take = pair.split("+")
        start = end + int(skip)
        end = start + int(take)
        ranges.append((count(start), count(int(take))))
    count(end)
    return tuple(ranges)


def check_ranges(select: Ranges, rows: int, where: str) -> None:
    """ValueError unless ``select`` is ascending, non-overlapping, non-empty ranges holding ``rows`` rows."""
    end = 0
    for start, n in select:
        if start < end or n < 1:
            raise ValueError(f"{where}: select ranges must be ascending, apart and non-empty")
        end = start + n
    if sum(n for _, n in select) != rows:
        raise ValueError(f"{where}: select holds {sum(n for _, n in select)} rows, 'rows' says {rows}")


def select_positions(select: Ranges | None, rows: int) -> np.ndarray:
    """The positions (int64, ascending) of the rows ``select`` holds in an object; ``range(rows)`` without one."""
    if select is None:
        return np.arange(rows, dtype=np.int64)
    starts = np.fromiter((start for start, _ in select), dtype=np.int64, count=len(select))
    counts = np.fromiter((n for _, n in select), dtype=np.int64, count=len(select))
    before = np.cumsum(counts) - counts  # rows held before each range
    return np.repeat(starts - before, counts) + np.arange(int(counts.sum()), dtype=np.int64)


def ranges_of(positions: Any) -> Ranges:
    """Ascending distinct positions (any int sequence or array) as ``(start, count)`` ranges."""
    out: list[tuple[int, int]] = []
    for p in map(int, positions):
        if out and p == out[-1][0] + out[-1][1]:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            if out and p < out[-1][0] + out[-1][1]:
                raise ValueError("positions must be ascending and distinct")
            out.append((p, 1))
    return tuple(out)


__all__ = ["Ranges", "check_ranges", "count", "format_select", "parse_select", "ranges_of", "select_positions"]
