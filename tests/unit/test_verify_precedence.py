"""Which failed verify result decides the exit code when several backups fail: a missing object (8) outranks a
tampered one (14), which outranks a damaged one (7), whatever the order of the backups."""

from __future__ import annotations

import itertools

import pytest

from vecbackup.errors import AuthenticationFailed, CorruptData, MissingData
from vecbackup.ops.verify import Problem, VerifyResult, raise_for_worst


def _result(backup_id: str, *kinds: str) -> VerifyResult:
    return VerifyResult(backup_id, "c", objects=3, rows=9, bytes_read=0,
                        problems=[Problem(f"data/{i}", k, f"{k} {i}") for i, k in enumerate(kinds)])


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_the_worst_problem_of_any_result_decides(order: tuple[int, ...]) -> None:
    results = [_result("ok"), _result("damaged", "corrupt"), _result("tampered", "corrupt", "tampered"),
               _result("gone", "corrupt", "missing")]
    with pytest.raises(MissingData, match="backup gone"):
        raise_for_worst([results[i] for i in order])
    without_missing = [results[i] for i in order if i != 3]
    with pytest.raises(AuthenticationFailed, match="backup tampered"):
        raise_for_worst(without_missing)
    with pytest.raises(CorruptData, match="backup damaged") as e:
        raise_for_worst([r for r in without_missing if r.backup_id != "tampered"])
    assert type(e.value) is CorruptData
    raise_for_worst([results[0]])  # nothing failed: nothing raised
