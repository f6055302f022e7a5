"""Which backups a retention policy keeps: grandfather-father-son rules as in restic's ``forget``.

Pure: candidates and a policy in, one decision per candidate out; no store, no clock (``now`` is given).

The policy is applied to each collection on its own. Its backups are sorted newest first, then:

* ``keep_last N`` keeps the N newest;
* ``keep_hourly/daily/weekly/monthly/yearly N`` keep the newest backup of each of the N most recent
  hours / days / ISO weeks / months / years *that have a backup* (calendar buckets in UTC), so a gap in
  the backups does not use up the count;
* ``keep_within D`` keeps every backup newer than ``now - D`` (strictly newer);
* a backup newer than ``now`` (a clock that was ahead) is always kept, "in the future", and takes
  no part in the other rules, so it never uses up a slot that a real backup needs;
* a policy never removes every backup of a collection: when no rule keeps any (only possible with
  ``keep_within`` alone, for a collection with no backup in the window, e.g. one no longer backed up),
  its newest backup is kept anyway, with the reason ``newest, as no rule keeps any``.

A backup is kept if any rule keeps it, and its reasons name every rule that does (``last #2``,
``daily #1``, ``within 30d``). The rules do not influence each other, so adding a rule never removes
more, and applying a policy again to what it kept removes nothing. The newest backup of a collection
is always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from vecbackup.errors import UsageError
from vecbackup.words import param

FUTURE = "in the future"
GUARD = "newest, as no rule keeps any"


@dataclass(frozen=True)
class Policy:
    """How many backups each rule keeps; 0 turns a rule off. ``keep_within`` is in seconds."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise UsageError(f"{param(f.name, value, of='Policy')} must not be negative")

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}
        if self.keep_within:
            d["keep_within"] = format_duration(self.keep_within)
        return d

    def describe(self) -> str:
        """``last 3, daily 7, within 30d``"""
        parts = [f"{f.name[len('keep_'):]} {getattr(self, f.name)}" for f in fields(self)
                 if f.name != "keep_within" and getattr(self, f.name)]
        if self.keep_within:
            parts.append(f"within {format_duration(self.keep_within)}")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Candidate:
    """One backup as retention sees it: when it was taken, and of which collection."""

    backup_id: str
    collection: str
    time: datetime  # timezone-aware; buckets are taken in UTC


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    keep: bool
    reasons: tuple[str, ...]  # every rule that keeps it; empty when removed


#: the longest a calendar rule's unit lasts, in seconds (a month of 31 days, a year of 366)
_LONGEST = {"keep_hourly": 3600, "keep_daily": 86400, "keep_weekly": 7 * 86400, "keep_monthly": 31 * 86400,
            "keep_yearly": 366 * 86400}


def longest_kept(policy: Policy) -> tuple[float, str] | None:
    """How old a backup the policy may keep, at most, in seconds, and the rule that keeps it (``monthly 6``): N units
    of its longest calendar rule (N hours, days, weeks, 31-day months, 366-day years) or ``keep_within``, where a
    backup is taken at least once a unit. None for ``keep_last`` alone (its reach depends on how often backups are
    taken). What an object lock shorter than this leaves unprotected (docs/STORES.md, "Object lock")."""
    spans = [(getattr(policy, name) * unit, f"{name[len('keep_'):]} {getattr(policy, name)}")
             for name, unit in _LONGEST.items() if getattr(policy, name)]
    if policy.keep_within:
        spans.append((policy.keep_within, f"within {format_duration(policy.keep_within)}"))
    return max(spans) if spans else None


def format_duration(seconds: float) -> str:
    """The largest whole unit: 30d, 36h, 90m, 45s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"backup time {t.isoformat()} has no timezone")
    return t.astimezone(UTC)


# bucket functions: equal values = same bucket; values only ever grow with time, so each bucket is
# one contiguous run in a time-sorted list
def _hour(t: datetime) -> tuple[int, ...]:
    return (t.year, t.month, t.day, t.hour)


def _day(t: datetime) -> tuple[int, ...]:
    return (t.year, t.month, t.day)


def _week(t: datetime) -> tuple[int, ...]:
    iso = t.isocalendar()
    return (iso.year, iso.week)


def _month(t: datetime) -> tuple[int, ...]:
    return (t.year, t.month)


def _year(t: datetime) -> tuple[int, ...]:
    return (t.year,)


_BUCKET_RULES: tuple[tuple[str, str, Callable[[datetime], tuple[int, ...]]], ...] = (
    ("keep_hourly", "hourly", _hour),
    ("keep_daily", "daily", _day),
    ("keep_weekly", "weekly", _week),
    ("keep_monthly", "monthly", _month),
    ("keep_yearly", "yearly", _year),
)


def require_rules(policy: Policy) -> None:
    if policy.is_empty:
        raise UsageError("refusing to prune with no keep rule: it would remove every backup",
                         hint="give at least one of " + ", ".join(param(f.name) for f in fields(Policy)[:-1])
                         + f" or {param('keep_within')}")


def _apply_one(backups: list[Candidate], policy: Policy, now: datetime) -> list[Decision]:
    """One collection's backups, newest first."""
    reasons: dict[int, list[str]] = {i: [] for i in range(len(backups))}
    present: list[int] = []  # indexes of the backups the rules see, newest first
    for i, c in enumerate(backups):
        if _utc(c.time) > now:
            reasons[i].append(FUTURE)
        else:
            present.append(i)

    for rank, i in enumerate(present[: policy.keep_last], start=1):
        reasons[i].append(f"last #{rank}")
    for attr, name, bucket in _BUCKET_RULES:
        count: int = getattr(policy, attr)
        if not count:
            continue
        last: tuple[int, ...] | None = None
        rank = 0
        for i in present:
            value = bucket(_utc(backups[i].time))
            if value == last:
                continue  # an older backup of a bucket already kept
            last = value
            rank += 1
            if rank > count:
                break
            reasons[i].append(f"{name} #{rank}")
    if policy.keep_within:
        cutoff = now - timedelta(seconds=policy.keep_within)
        label = f"within {format_duration(policy.keep_within)}"
        for i in present:
            if _utc(backups[i].time) > cutoff:
                reasons[i].append(label)
    if backups and not any(reasons.values()):
        reasons[0].append(GUARD)  # never remove a collection's last backups: keep its newest
    return [Decision(c, bool(reasons[i]), tuple(reasons[i])) for i, c in enumerate(backups)]


def apply_policy(candidates: Iterable[Candidate], policy: Policy, now: datetime) -> list[Decision]:
    """A decision for every candidate: collections in name order, each newest first.

    Raises UsageError for an empty policy (it would remove everything)."""
    require_rules(policy)
    now = _utc(now)
    by_collection: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_collection.setdefault(c.collection, []).append(c)
    decisions: list[Decision] = []
    for collection in sorted(by_collection):
        backups = sorted(by_collection[collection], key=lambda c: (_utc(c.time), c.backup_id), reverse=True)
        decisions += _apply_one(backups, policy, now)
    return decisions
