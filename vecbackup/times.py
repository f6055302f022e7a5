"""Durations and UTC timestamps as vecbackup reads and writes them. Pure.

Every time vecbackup prints or stores is UTC in ISO 8601 with a ``Z`` (``2026-11-22T02:15:00.123456Z``); every
duration a user gives is ``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or plain seconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Literal

from vecbackup.errors import UsageError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: the longest duration taken: 1000 years (now minus it, or plus it, is still a date)
MAX_DURATION = 1000 * 365.25 * 86400

Timespec = Literal["auto", "seconds", "milliseconds", "microseconds"]


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or plain seconds -> seconds; UsageError otherwise."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise UsageError(f"bad duration {text!r}", hint="use e.g. 30m, 24h, 7d")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise UsageError(f"duration {text!r} is too long", hint="at most 1000 years, e.g. 36500d")
    return seconds


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_z(t: datetime | float, timespec: Timespec = "auto") -> str:
    """A time (aware datetime, or Unix seconds) as ISO 8601 UTC with a ``Z``."""
    dt = datetime.fromtimestamp(t, UTC) if isinstance(t, int | float) else t.astimezone(UTC)
    return dt.isoformat(timespec=timespec).replace("+00:00", "Z")


def now_z(timespec: Timespec = "microseconds") -> str:
    """The current time as :func:`iso_z` writes it."""
    return iso_z(utc_now(), timespec)


def parse_z(text: str) -> datetime:
    """An ISO 8601 time as written by :func:`iso_z` (``Z`` or an offset) -> aware datetime; ValueError if not."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


__all__ = ["iso_z", "now_z", "parse_duration", "parse_z", "utc_now"]
