"""Durations and UTC timestamps as vecbackup reads and writes them. Pure.

Every time vecbackup prints or stores is UTC in ISO 8601 with a ``Z`` (``2026-11-22T02:15:00.123456Z``); every
duration a user gives is ``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or plain seconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
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


#: the zero of an instant held as microseconds (a TIMESTAMPTZ value in a data chunk)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FRACTION = re.compile(r"\.(\d+)")


def instant_micros(text: str) -> int:
    """An ISO 8601 time with a ``Z`` or an offset (as Milvus returns a TIMESTAMPTZ: ``2024-03-03T23:36:07.123456Z``)
    -> microseconds since 1970-01-01T00:00:00Z, exactly; ValueError for text without an offset or with a part of a
    microsecond that is not zero."""
    m = _FRACTION.search(text)
    if m is not None and len(m.group(1)) > 6:
        if m.group(1)[6:].strip("0"):
            raise ValueError(f"{text!r} is finer than a microsecond")
        text = text[:m.start(1) + 6] + text[m.end(1):]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{text!r} has no time zone offset")
    return (dt - EPOCH) // _MICROSECOND


def instant_text(micros: int) -> str:
    """Microseconds since 1970-01-01T00:00:00Z -> ISO 8601 UTC with a ``Z``, the fraction only when it is not zero
    (``2024-03-03T23:36:07.123456Z``, ``2024-12-31T16:00:00Z``: as Milvus Lite returns them); ValueError outside
    the years 1 to 9999."""
    try:
        return iso_z(EPOCH + timedelta(microseconds=int(micros)))
    except OverflowError:
        raise ValueError(f"{micros} microseconds from 1970 is outside the years 1 to 9999") from None


__all__ = ["EPOCH", "instant_micros", "instant_text", "iso_z", "now_z", "parse_duration", "parse_z", "utc_now"]
