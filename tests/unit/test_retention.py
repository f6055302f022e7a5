"""Retention policy: hand-derived expected-output cases (tests/golden/retention/*.json) and properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecbackup.errors import UsageError
from vecbackup.retention import GUARD, Candidate, Decision, Policy, apply_policy, format_duration
from vecbackup.times import parse_duration
from vecbackup.words import cli_words

CASES = Path(__file__).parents[1] / "golden" / "retention"
CASE_FILES = sorted(p for p in CASES.glob("*.json") if p.name != "backups.json")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _policy(d: dict[str, Any]) -> Policy:
    kw = dict(d)
    if "keep_within" in kw:
        kw["keep_within"] = parse_duration(kw["keep_within"])
    return Policy(**kw)


def _load_case(path: Path) -> tuple[list[Candidate], Policy, datetime, dict[str, dict[str, list[str]]]]:
    case = orjson.loads(path.read_bytes())
    backups = case["backups"]
    if isinstance(backups, str):
        backups = orjson.loads((CASES / backups).read_bytes())
    candidates = [Candidate(f"{coll}@{t}", coll, _time(t))
                  for coll, times in backups.items() if coll != "comment" for t in times]
    return candidates, _policy(case["policy"]), _time(case["now"]), case["kept"]


def test_there_are_enough_cases():
    assert len(CASE_FILES) >= 8


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_expected_output(path: Path):
    candidates, policy, now, expected = _load_case(path)
    decisions = apply_policy(candidates, policy, now)
    assert len(decisions) == len(candidates)
    got: dict[str, dict[str, list[str]]] = {}
    for d in decisions:
        assert d.keep == bool(d.reasons)
        if d.keep:
            got.setdefault(d.candidate.collection, {})[d.candidate.backup_id.split("@", 1)[1]] = list(d.reasons)
    assert got == expected


def test_decisions_are_grouped_by_collection_newest_first():
    candidates, policy, now, _ = _load_case(CASES / "01-keep-last.json")
    decisions = apply_policy(reversed(candidates), policy, now)
    keys = [(d.candidate.collection, d.candidate.time) for d in decisions]
    assert keys == sorted(keys, key=lambda k: (k[0], -k[1].timestamp()))


# -- the policy itself -----------------------------------------------------------------------------------

def test_empty_policy_is_refused():
    c = [Candidate("x", "a", datetime(2026, 1, 1, tzinfo=UTC))]
    with pytest.raises(UsageError) as e:
        apply_policy(c, Policy(), datetime(2026, 1, 2, tzinfo=UTC))
    assert "no keep rule" in str(e.value) and "keep_last" in str(e.value)
    with cli_words(), pytest.raises(UsageError) as e:
        apply_policy(c, Policy(), datetime(2026, 1, 2, tzinfo=UTC))
    assert "no keep rule" in str(e.value) and "--keep-last" in str(e.value)
    assert Policy().is_empty and not Policy(keep_within=60).is_empty


def test_negative_counts_are_refused():
    with pytest.raises(UsageError, match=r"Policy\(keep_daily=-1\)"):
        Policy(keep_daily=-1)
    with cli_words(), pytest.raises(UsageError, match="--keep-daily"):
        Policy(keep_daily=-1)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        apply_policy([Candidate("x", "a", datetime(2026, 1, 1))], Policy(keep_last=1), datetime.now(UTC))


def test_buckets_are_utc():
    # 2026-01-01T23:30-05:00 is 2026-01-02T04:30Z: on its own clock a day earlier than b, in UTC the same day
    est = timezone(timedelta(hours=-5))
    a = Candidate("a", "c", datetime(2026, 1, 1, 23, 30, tzinfo=est))
    b = Candidate("b", "c", datetime(2026, 1, 2, 1, 0, tzinfo=UTC))
    kept = {d.candidate.backup_id for d in apply_policy([a, b], Policy(keep_daily=5), datetime(2026, 2, 1, tzinfo=UTC))
            if d.keep}
    assert kept == {"a"}  # both on 2026-01-02 UTC; a (04:30Z) is the newer


def test_equal_times_are_ordered_by_id():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    c = [Candidate("b", "x", t), Candidate("a", "x", t), Candidate("c", "x", t)]
    d = apply_policy(c, Policy(keep_last=1), t)
    assert [(x.candidate.backup_id, x.keep) for x in d] == [("c", True), ("b", False), ("a", False)]


def test_policy_descriptions():
    p = Policy(keep_last=3, keep_daily=7, keep_within=30 * 86400)
    assert p.describe() == "last 3, daily 7, within 30d"
    assert p.to_dict() == {"keep_last": 3, "keep_daily": 7, "keep_within": "30d"}
    assert [format_duration(s) for s in (86400 * 30, 3600 * 36, 5400, 45, 0.5)] == ["30d", "36h", "90m", "45s",
                                                                                        "0.5s"]


def test_no_candidates():
    assert apply_policy([], Policy(keep_last=1), datetime.now(UTC)) == []


# -- properties --------------------------------------------------------------------------------------------

START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = 3 * 365 * 86400  # seconds
NOW = START + timedelta(seconds=SPAN)

candidates_st = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, SPAN)),
    max_size=60,
).map(lambda pairs: [Candidate(f"{coll}-{i}", coll, START + timedelta(seconds=s))
                     for i, (coll, s) in enumerate(pairs)])
count_st = st.integers(0, 6)
within_st = st.sampled_from([0, 1800, 3600, 86400, 7 * 86400, 30 * 86400, 400 * 86400]) | st.integers(0, SPAN)
policy_st = st.builds(Policy, keep_last=count_st, keep_hourly=count_st, keep_daily=count_st, keep_weekly=count_st,
                      keep_monthly=count_st, keep_yearly=count_st, keep_within=within_st
                      ).filter(lambda p: not p.is_empty)
# sometimes before some backups (they are then in the future), mostly after all of them
now_st = st.one_of(st.just(NOW), st.integers(0, SPAN + 86400).map(lambda s: START + timedelta(seconds=s)))


def _kept(decisions: list[Decision]) -> set[str]:
    return {d.candidate.backup_id for d in decisions if d.keep}


@settings(max_examples=300, deadline=None)
@given(candidates_st, policy_st, now_st)
def test_newest_of_each_collection_is_kept(candidates, policy, now):
    decisions = apply_policy(candidates, policy, now)
    for coll in {c.collection for c in candidates}:
        mine = [d for d in decisions if d.candidate.collection == coll]
        newest = mine[0]  # newest first
        assert newest.candidate.time == max(c.time for c in candidates if c.collection == coll)
        assert newest.keep
        # the guard only ever steps in where no rule keeps anything, and then keeps only the newest
        guarded = [d for d in mine if GUARD in d.reasons]
        if guarded:
            assert guarded == [newest] and newest.reasons == (GUARD,)
            assert sum(d.keep for d in mine) == 1
            assert policy == Policy(keep_within=policy.keep_within)  # only keep-within can keep nothing
        # every count rule keeps the newest backup that is not in the future
        present = [d for d in mine if d.candidate.time <= now]
        if present and policy != Policy(keep_within=policy.keep_within):
            assert present[0].keep and GUARD not in present[0].reasons


@settings(max_examples=300, deadline=None)
@given(candidates_st, policy_st, now_st)
def test_applying_again_removes_nothing(candidates, policy, now):
    first = apply_policy(candidates, policy, now)
    kept = [d.candidate for d in first if d.keep]
    second = apply_policy(kept, policy, now)
    assert all(d.keep for d in second)
    # and for the same reasons
    assert {d.candidate.backup_id: d.reasons for d in second} == {d.candidate.backup_id: d.reasons
                                                                  for d in first if d.keep}


@settings(max_examples=200, deadline=None)
@given(candidates_st, st.integers(1, 70))
def test_keep_last_alone_keeps_exactly_n(candidates, n):
    decisions = apply_policy(candidates, Policy(keep_last=n), NOW)  # NOW is after every backup
    for coll in {c.collection for c in candidates}:
        mine = [d for d in decisions if d.candidate.collection == coll]
        assert sum(d.keep for d in mine) == min(n, len(mine))
        assert all(d.keep for d in mine[:n]) and not any(d.keep for d in mine[n:])


@settings(max_examples=300, deadline=None)
@given(candidates_st, policy_st, now_st)
def test_kept_and_removed_partition_the_input(candidates, policy, now):
    decisions = apply_policy(candidates, policy, now)
    kept = [d.candidate for d in decisions if d.keep]
    removed = [d.candidate for d in decisions if not d.keep]
    assert sorted(kept + removed, key=id) == sorted(candidates, key=id)
    assert not {id(c) for c in kept} & {id(c) for c in removed}
    assert all(d.keep == bool(d.reasons) for d in decisions)
    for d in decisions:
        assert (d.candidate.time > now) == ("in the future" in d.reasons)


RULES = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within"]


@settings(max_examples=300, deadline=None)
@given(candidates_st, policy_st, now_st, st.sampled_from(RULES), st.integers(1, 8), within_st)
def test_adding_a_rule_never_removes_more(candidates, policy, now, rule, extra, within):
    bigger = dataclasses.replace(policy, **{rule: within if rule == "keep_within" else getattr(policy, rule) + extra})
    if rule == "keep_within" and within < policy.keep_within:
        policy, bigger = bigger, policy
    if policy.is_empty:
        return
    assert _kept(apply_policy(candidates, policy, now)) <= _kept(apply_policy(candidates, bigger, now))
