"""The search check's rule, pure: the restored copy against the live source's recall, or against a floor."""

from __future__ import annotations

import pytest

from vecbackup.ops.drill import DEFAULT_MIN_RECALL, DrillOptions, judge_recall


def test_with_a_fully_indexed_source_only_the_tolerance_counts():
    opts = DrillOptions()
    ok = judge_recall(0.60, 0.62, 0, 10, opts)  # a weak index, faithfully restored: no floor by default
    assert ok.problems == () and ok.compared and ok.floor is None
    bad = judge_recall(0.52, 1.0, 0, 10, opts)
    assert bad.compared and len(bad.problems) == 1
    assert bad.problems[0] == ("recall@10 of the restored copy 0.520 is more than --recall-tolerance 0.05 below the "
                               "live source's 1.000 (exact search over the backup is the truth for both)")
    assert judge_recall(0.95, 1.0, 0, 10, opts).problems == ()  # exactly at the tolerance


@pytest.mark.parametrize("unindexed", [2000, None])
def test_a_source_with_unindexed_rows_or_unknown_coverage_is_not_held_against(unindexed):
    v = judge_recall(0.85, 1.0, unindexed, 10, DrillOptions())
    assert v.problems == () and not v.compared and v.floor == DEFAULT_MIN_RECALL == 0.8
    v = judge_recall(0.5, 1.0, unindexed, 10, DrillOptions())
    assert not v.compared and "below --min-recall 0.8 (the default without a live source" in v.problems[0]


def test_without_a_source_the_floor_decides():
    assert judge_recall(0.8, None, None, 10, DrillOptions()).problems == ()
    v = judge_recall(0.79, None, None, 5, DrillOptions())
    assert v.floor == 0.8 and v.problems[0].startswith("recall@5 of the restored copy 0.790 against exact search")


def test_an_explicit_floor_applies_with_a_source_too():
    opts = DrillOptions(min_recall=0.9)
    v = judge_recall(0.88, 0.89, 0, 10, opts)
    assert v.compared and v.floor == 0.9 and len(v.problems) == 1 and "--min-recall 0.9" in v.problems[0]
    assert "default" not in v.problems[0]
    both = judge_recall(0.5, 0.99, 0, 10, opts)
    assert len(both.problems) == 2
    assert judge_recall(0.3, None, None, 10, DrillOptions(min_recall=0.0)).problems == ()
