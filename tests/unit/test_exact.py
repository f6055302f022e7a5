"""Exact top-k ground truth (vecbackup.ops.drill.exact): brute-force agreement, chunking, ties, recall, metric names."""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbackup.errors import Unsupported
from vecbackup.ops.drill.exact import ExactTopK, QueryTruth, canonical_metric, query_value
from vecbackup.schema import VECTOR_DTYPES, FieldType

T = FieldType
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CASES: list[tuple[FieldType, str]] = [
    (t, m)
    for t in (T.FLOAT_VECTOR, T.FLOAT16_VECTOR, T.BFLOAT16_VECTOR, T.INT8_VECTOR)
    for m in ("L2", "IP", "COSINE", "MANHATTAN")
]
CASES += [(T.BINARY_VECTOR, "HAMMING"), (T.BINARY_VECTOR, "JACCARD"), (T.SPARSE_FLOAT_VECTOR, "IP")]

# --------------------------------------------------------------------------- naive reference


def decode_row(ftype: FieldType, row: Any) -> Any:
    """One stored row as plain Python numbers (bits for binary, the dict for sparse)."""
    if ftype is T.SPARSE_FLOAT_VECTOR:
        return {int(i): float(v) for i, v in row.items()}
    items = [int(x) if ftype is not T.FLOAT_VECTOR else float(x) for x in row]
    if ftype is T.FLOAT16_VECTOR:
        return [struct.unpack("<e", struct.pack("<H", b))[0] for b in items]
    if ftype is T.BFLOAT16_VECTOR:
        return [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in items]
    if ftype is T.BINARY_VECTOR:
        return [(byte >> j) & 1 for byte in items for j in range(8)]
    return [float(x) for x in items]


def naive_score(ftype: FieldType, metric: str, q: Any, x: Any) -> float:
    a, b = decode_row(ftype, q), decode_row(ftype, x)
    if ftype is T.SPARSE_FLOAT_VECTOR:
        return -sum(v * a[i] for i, v in b.items() if i in a)
    if metric == "L2":
        return sum((u - v) ** 2 for u, v in zip(a, b, strict=True))
    if metric == "IP":
        return -sum(u * v for u, v in zip(a, b, strict=True))
    if metric == "MANHATTAN":
        return sum(abs(u - v) for u, v in zip(a, b, strict=True))
    if metric == "COSINE":
        na, nb = math.sqrt(sum(u * u for u in a)), math.sqrt(sum(v * v for v in b))
        if na == 0 or nb == 0:
            return 0.0
        return -sum(u * v for u, v in zip(a, b, strict=True)) / (na * nb)
    if metric == "HAMMING":
        return float(sum(u != v for u, v in zip(a, b, strict=True)))
    if metric == "JACCARD":
        inter = sum(u & v for u, v in zip(a, b, strict=True))
        union = sum(u | v for u, v in zip(a, b, strict=True))
        return 0.0 if union == 0 else 1.0 - inter / union
    raise AssertionError(metric)


def naive_scores(ftype: FieldType, metric: str, q: Any, keys: list[Any], values: Any, valid: Any) -> dict[Any, float]:
    """Score of every row that has a vector, one Python loop over the rows."""
    out = {}
    for i, key in enumerate(keys):
        if (valid is not None and not valid[i]) or values[i] is None:
            continue
        out[key] = naive_score(ftype, metric, q, values[i])
    return out


# --------------------------------------------------------------------------- data


def make_rows(ftype: FieldType, n: int, rng: np.random.Generator, dim: int = 12) -> Any:
    """n stored rows of ``ftype``; row 0 is a zero vector (empty dict and None for sparse)."""
    if ftype is T.SPARSE_FLOAT_VECTOR:
        rows: list[Any] = []
        for _ in range(n):
            idx = rng.choice(40, size=int(rng.integers(0, 8)), replace=False)
            rows.append({int(j): float(np.float32(rng.normal())) for j in idx})
        rows[0] = {}
        if n > 1:
            rows[1] = None
        return rows
    if ftype is T.FLOAT_VECTOR:
        arr = rng.normal(size=(n, dim)).astype("<f4")
    elif ftype is T.FLOAT16_VECTOR:
        arr = rng.normal(size=(n, dim)).astype("<f2").view("<u2")
    elif ftype is T.BFLOAT16_VECTOR:
        arr = (rng.normal(size=(n, dim)).astype("<f4").view("<u4") >> 16).astype("<u2")
    elif ftype is T.INT8_VECTOR:
        arr = rng.integers(-128, 128, size=(n, dim)).astype("|i1")
    else:
        arr = rng.integers(0, 256, size=(n, dim // 8)).astype("|u1")
    assert arr.dtype == np.dtype(VECTOR_DTYPES[ftype])
    arr[0] = 0
    return arr


def chunks_of(values: Any, keys: list[Any], valid: Any, cuts: list[int]) -> list[tuple[list[Any], Any, Any]]:
    bounds = [0, *sorted(cuts), len(keys)]
    return [
        (keys[a:b], values[a:b], None if valid is None else valid[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def run(ftype: FieldType, metric: str, queries: list[Any], k: int, chunks: list[Any], watch: Any = None,
        ) -> list[QueryTruth]:
    exact = ExactTopK(ftype, metric, queries, k, watch=watch)
    for keys, values, valid in chunks:
        exact.add(keys, values, valid)
    return exact.results()


def top_scores(truth: QueryTruth) -> list[float]:
    return [s for _, s in truth.top]


# --------------------------------------------------------------------------- brute-force agreement


@pytest.mark.parametrize(("ftype", "metric"), CASES, ids=[f"{t.value}-{m}" for t, m in CASES])
def test_matches_brute_force(ftype: FieldType, metric: str) -> None:
    rng = np.random.default_rng(7)
    n, k = 157, 10
    values = make_rows(ftype, n, rng)
    keys = [f"id{i}" for i in range(n)]
    valid = rng.random(n) > 0.1
    queries = [query_value(ftype, values, i) for i in (0, 5, 9)]
    queries = [q if q is not None else {3: 1.0} for q in queries]
    chunks = chunks_of(values, keys, valid, [50, 51, 51, 111])
    results = run(ftype, metric, queries, k, chunks)
    assert len(results) == len(queries)
    for q, truth in zip(queries, results, strict=True):
        expected = naive_scores(ftype, metric, q, keys, values, valid)
        assert truth.rows == len(expected)
        want = sorted(expected.values())[:k]
        assert len(truth.top) == k
        np.testing.assert_allclose(top_scores(truth), want, rtol=1e-9, atol=1e-9)
        for key, score in truth.top:  # each reported key really has the reported score
            assert score == pytest.approx(expected[key], rel=1e-9, abs=1e-9)
        assert truth.kth() == pytest.approx(want[-1], rel=1e-9, abs=1e-9)
        assert truth.recall([key for key, _ in truth.top], k) == 1.0


@FAST
@given(
    data=st.lists(st.lists(st.integers(-2, 2), min_size=3, max_size=3), min_size=0, max_size=30),
    query=st.lists(st.integers(-2, 2), min_size=3, max_size=3),
    k=st.integers(1, 8),
    metric=st.sampled_from(["L2", "IP", "COSINE", "MANHATTAN"]),
)
def test_small_integer_data_with_many_ties_matches_brute_force(
    data: list[list[int]], query: list[int], k: int, metric: str
) -> None:
    values = np.array(data, dtype="<f4").reshape(len(data), 3)
    keys = list(range(len(data)))
    q = np.array(query, dtype="<f4")
    (truth,) = run(T.FLOAT_VECTOR, metric, [q], k, [(keys, values, None)], watch=[keys])
    expected = naive_scores(T.FLOAT_VECTOR, metric, q, keys, values, None)
    np.testing.assert_allclose(top_scores(truth), sorted(expected.values())[:k], rtol=1e-12, atol=1e-12)
    assert truth.watched == pytest.approx(expected)
    # any k keys whose exact scores are all within the k-th best are a perfect answer, whatever the tie-break
    kth = truth.kth()
    ties_first = sorted(keys, key=lambda key: (expected[key], -key))
    if kth is not None:
        assert all(expected[key] <= kth + 1e-9 for key in ties_first[:k])
    assert truth.recall(ties_first[:k], k) == 1.0


# --------------------------------------------------------------------------- chunking


@FAST
@given(
    case=st.sampled_from([(T.FLOAT_VECTOR, "L2"), (T.INT8_VECTOR, "COSINE"), (T.BINARY_VECTOR, "JACCARD"),
                          (T.BFLOAT16_VECTOR, "IP"), (T.SPARSE_FLOAT_VECTOR, "IP")]),
    n=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_chunking_does_not_change_the_answer(case: tuple[FieldType, str], n: int, cuts: list[int], k: int,
                                             seed: int) -> None:
    ftype, metric = case
    rng = np.random.default_rng(seed)
    values = make_rows(ftype, max(n, 1), rng)[:n]
    keys = list(range(n))
    valid = rng.random(n) > 0.2
    queries = [{1: 1.0, 7: -2.0}, {}] if ftype is T.SPARSE_FLOAT_VECTOR else [make_rows(ftype, 2, rng)[1]]
    whole = run(ftype, metric, queries, k, [(keys, values, valid)])
    split = run(ftype, metric, queries, k, chunks_of(values, keys, valid, [min(c, n) for c in cuts]))
    for a, b in zip(whole, split, strict=True):
        assert a.rows == b.rows == int(sum(1 for i in range(n) if valid[i] and values[i] is not None))
        assert len(b.top) == min(k, b.rows)
        np.testing.assert_allclose(top_scores(a), top_scores(b), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- ties and recall


def test_tied_duplicates_all_count_as_hits_when_watched() -> None:
    v = np.array([1.0, 2.0, 3.0], dtype="<f4")
    far = np.full(3, 100.0, dtype="<f4")
    values = np.stack([v] * 5 + [far] * 5)
    keys = list(range(10))
    returned = [4, 3, 1]
    (truth,) = run(T.FLOAT_VECTOR, "L2", [v], 3, [(keys, values, None)], watch=[[*returned, 9]])
    assert {key for key, _ in truth.top} <= {0, 1, 2, 3, 4}
    assert truth.kth() == 0.0
    assert truth.recall(returned, 3) == 1.0
    assert truth.watched[9] == 99.0**2 + 98.0**2 + 97.0**2
    assert truth.recall([4, 9, 3], 3) == pytest.approx(2 / 3)  # 9 is known, and far worse than the k-th best


def test_unknown_tied_key_is_a_miss_without_watch() -> None:
    v = np.array([1.0, 0.0], dtype="<f4")
    values = np.stack([v] * 4)
    (truth,) = run(T.FLOAT_VECTOR, "L2", [v], 2, [([0, 1, 2, 3], values, None)])
    outside = [key for key in range(4) if key not in {k for k, _ in truth.top}]
    assert len(outside) == 2
    assert truth.recall(outside, 2) == 0.0  # exact score not known: pass the returned keys as watch
    (watched,) = run(T.FLOAT_VECTOR, "L2", [v], 2, [([0, 1, 2, 3], values, None)], watch=[outside])
    assert watched.recall(outside, 2) == 1.0


def test_key_not_in_data_is_a_miss() -> None:
    values = np.arange(20, dtype="<f4").reshape(10, 2)
    q = np.zeros(2, dtype="<f4")
    (truth,) = run(T.FLOAT_VECTOR, "L2", [q], 3, [(list(range(10)), values, None)], watch=[["nope", 0, 1]])
    assert [key for key, _ in truth.top] == [0, 1, 2]
    assert "nope" not in truth.watched
    assert truth.recall(["nope", 0, 1], 3) == pytest.approx(2 / 3)
    assert truth.recall(["nope"], 3) == 0.0


def test_fewer_rows_than_k_divides_by_rows() -> None:
    values = np.array([[0.0], [1.0], [5.0]], dtype="<f4")
    (truth,) = run(T.FLOAT_VECTOR, "L2", [np.zeros(1, dtype="<f4")], 10, [(["a", "b", "c"], values, None)])
    assert truth.rows == 3
    assert truth.top == (("a", 0.0), ("b", 1.0), ("c", 25.0))
    assert truth.kth() == 25.0
    assert truth.recall(["c", "a", "b"], 10) == 1.0
    assert truth.recall(["a", "b"], 10) == pytest.approx(2 / 3)


def test_duplicates_in_returned_count_once() -> None:
    values = np.arange(10, dtype="<f4").reshape(10, 1)
    keys = list(range(10))
    (truth,) = run(T.FLOAT_VECTOR, "L2", [np.zeros(1, dtype="<f4")], 2, [(keys, values, None)], watch=[[9]])
    assert truth.recall([0, 0, 0, 1], 2) == 1.0
    assert truth.recall([0, 0, 9, 1], 2) == 0.5  # the first 2 distinct keys are 0 and 9
    assert truth.recall([1, 1, 1, 1], 2) == 0.5


def test_recall_of_exact_top_is_one_and_of_worst_is_zero() -> None:
    rng = np.random.default_rng(3)
    n, k = 40, 5
    values = rng.normal(size=(n, 4)).astype("<f4")
    keys = list(range(100, 100 + n))
    q = rng.normal(size=4).astype("<f4")
    expected = naive_scores(T.FLOAT_VECTOR, "L2", q, keys, values, None)
    assert len(set(expected.values())) == n
    worst = sorted(keys, key=expected.__getitem__)[-k:]
    (truth,) = run(T.FLOAT_VECTOR, "L2", [q], k, chunks_of(values, keys, None, [13, 27]), watch=[worst])
    assert truth.recall([key for key, _ in truth.top], k) == 1.0
    assert truth.recall(worst, k) == 0.0
    assert truth.watched == pytest.approx({key: expected[key] for key in worst})


def test_rounding_within_tolerance_is_a_hit_but_a_clearly_worse_row_is_not() -> None:
    truth = QueryTruth(top=(("a", 1.0), ("b", 2.0)), watched={"c": 2.0001, "d": 2.01}, rows=50)
    assert truth.recall(["a", "c"], 2) == 1.0
    assert truth.recall(["a", "d"], 2) == 0.5
    assert truth.recall(["a", "c"], 2, rel_tol=0.0) == 0.5


def test_recall_needs_the_truth_k() -> None:
    truth = QueryTruth(top=(("a", 1.0), ("b", 2.0)), watched={}, rows=50)
    assert truth.kth(1) == 1.0
    with pytest.raises(ValueError, match="only the best 2"):
        truth.recall(["a"], 3)
    with pytest.raises(ValueError, match="positive"):
        truth.recall(["a"], 0)


def test_no_rows() -> None:
    exact = ExactTopK(T.FLOAT_VECTOR, "L2", [np.zeros(2, dtype="<f4")], 5)
    exact.add([], np.zeros((0, 2), dtype="<f4"))
    exact.add([1, 2], np.ones((2, 2), dtype="<f4"), np.array([False, False]))
    (truth,) = exact.results()
    assert truth.rows == 0
    assert truth.top == ()
    assert truth.kth() is None
    assert truth.recall([1, 2], 5) == 1.0


# --------------------------------------------------------------------------- missing vectors, zero vectors


def test_invalid_rows_are_skipped_even_when_they_would_be_best() -> None:
    q = np.array([1.0, 1.0], dtype="<f4")
    values = np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 1.0], [5.0, 5.0]], dtype="<f4")
    valid = np.array([False, True, False, True])
    (truth,) = run(T.FLOAT_VECTOR, "L2", [q], 2, [(np.array([10, 11, 12, 13]), values, valid)], watch=[[10, 11]])
    assert truth.rows == 2
    assert truth.top == ((11, 8.0), (13, 32.0))
    assert all(type(key) is int for key, _ in truth.top)  # ndarray keys become plain Python ints
    assert truth.watched == {11: 8.0}


def test_none_and_invalid_sparse_rows_are_skipped() -> None:
    q = {2: 1.0, 5: 2.0}
    values = [{2: 100.0}, None, {5: 1.0}, {}, {7: 3.0}]
    valid = np.array([False, True, True, True, True])
    (truth,) = run(T.SPARSE_FLOAT_VECTOR, "IP", [q], 3, [(["a", "b", "c", "d", "e"], values, valid)])
    assert truth.rows == 3
    assert truth.top[0] == ("c", -2.0)
    assert sorted(top_scores(truth)) == [-2.0, 0.0, 0.0]
    assert {key for key, _ in truth.top} == {"c", "d", "e"}


def test_zero_vectors_under_cosine_do_not_give_nan() -> None:
    values = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, -2.0]], dtype="<f4")
    for q, want in ((np.zeros(2, dtype="<f4"), [0.0, 0.0, 0.0]), (np.array([3.0, 0.0], dtype="<f4"), [-1.0, 0.0, 0.0])):
        (truth,) = run(T.FLOAT_VECTOR, "COSINE", [q], 3, [([0, 1, 2], values, None)])
        assert not any(math.isnan(s) for s in top_scores(truth))
        np.testing.assert_allclose(top_scores(truth), want)


def test_zero_vectors_under_jaccard_do_not_give_nan() -> None:
    values = np.array([[0, 0], [0b1111, 0], [0b0011, 0]], dtype="|u1")
    (truth,) = run(T.BINARY_VECTOR, "JACCARD", [np.zeros(2, dtype="|u1")], 3, [([0, 1, 2], values, None)])
    assert truth.top == ((0, 0.0), (1, 1.0), (2, 1.0)) or truth.top == ((0, 0.0), (2, 1.0), (1, 1.0))
    (truth,) = run(T.BINARY_VECTOR, "JACCARD", [np.array([0b0011, 0], dtype="|u1")], 3, [([0, 1, 2], values, None)])
    assert truth.top == ((2, 0.0), (1, 0.5), (0, 1.0))


def test_nan_rows_rank_last() -> None:
    values = np.array([[np.nan], [2.0], [1.0]], dtype="<f4")
    (truth,) = run(T.FLOAT_VECTOR, "L2", [np.zeros(1, dtype="<f4")], 2, [([0, 1, 2], values, None)])
    assert truth.top == ((2, 1.0), (1, 4.0))
    (truth,) = run(T.FLOAT_VECTOR, "L2", [np.zeros(1, dtype="<f4")], 5, [([0, 1, 2], values, None)])
    assert truth.top == ((2, 1.0), (1, 4.0), (0, math.inf))
    assert truth.recall([0, 1, 2], 5) == 1.0  # with fewer rows than k, the undefined row is tied for last


# --------------------------------------------------------------------------- metric names, inputs


@pytest.mark.parametrize(
    ("metric", "ftype", "want"),
    [
        ("euclid", T.FLOAT_VECTOR, "L2"),
        ("Dot", T.FLOAT16_VECTOR, "IP"),
        ("cosine", T.INT8_VECTOR, "COSINE"),
        ("Manhattan", T.BFLOAT16_VECTOR, "MANHATTAN"),
        ("dot", T.SPARSE_FLOAT_VECTOR, "IP"),
        ("jaccard", T.BINARY_VECTOR, "JACCARD"),
        (None, T.FLOAT_VECTOR, "L2"),
        (None, T.INT8_VECTOR, "L2"),
        (None, T.BINARY_VECTOR, "HAMMING"),
        (None, T.SPARSE_FLOAT_VECTOR, "IP"),
        ("", T.FLOAT16_VECTOR, "L2"),
    ],
)
def test_canonical_metric(metric: str | None, ftype: FieldType, want: str) -> None:
    assert canonical_metric(metric, ftype) == want


@pytest.mark.parametrize(
    ("metric", "ftype"),
    [
        ("HAMMING", T.FLOAT_VECTOR),
        ("JACCARD", T.INT8_VECTOR),
        ("L2", T.SPARSE_FLOAT_VECTOR),
        ("BM25", T.SPARSE_FLOAT_VECTOR),
        ("L2", T.BINARY_VECTOR),
        ("nonsense", T.FLOAT_VECTOR),
        ("L2", T.VARCHAR),
    ],
)
def test_canonical_metric_rejects(metric: str, ftype: FieldType) -> None:
    with pytest.raises(Unsupported) as info:
        canonical_metric(metric, ftype)
    message = str(info.value)
    assert ftype.value in message
    assert "\n" not in message
    if ftype.is_vector:
        assert metric in message
    with pytest.raises(Unsupported):
        ExactTopK(ftype, metric, [], 1)


def test_bad_inputs_are_value_errors() -> None:
    f4 = np.zeros(3, dtype="<f4")
    with pytest.raises(ValueError, match="positive"):
        ExactTopK(T.FLOAT_VECTOR, "L2", [f4], 0)
    with pytest.raises(ValueError, match="watch"):
        ExactTopK(T.FLOAT_VECTOR, "L2", [f4], 1, watch=[[1], [2]])
    with pytest.raises(ValueError, match="one width"):
        ExactTopK(T.FLOAT_VECTOR, "L2", [f4, np.zeros(4, dtype="<f4")], 1)
    with pytest.raises(ValueError, match="uint16"):
        ExactTopK(T.FLOAT16_VECTOR, "L2", [np.zeros(3, dtype=np.float16)], 1)
    exact = ExactTopK(T.FLOAT_VECTOR, "L2", [f4], 1)
    with pytest.raises(ValueError, match="shape"):
        exact.add([1], np.zeros((1, 4), dtype="<f4"))
    with pytest.raises(ValueError, match="2 vector values"):
        exact.add([1], np.zeros((2, 3), dtype="<f4"))
    with pytest.raises(ValueError, match="bool"):
        exact.add([1], np.zeros((1, 3), dtype="<f4"), np.array([1]))
    with pytest.raises(ValueError, match="dict"):
        ExactTopK(T.SPARSE_FLOAT_VECTOR, "IP", [[1.0]], 1)


def test_query_value() -> None:
    values = np.arange(6, dtype="<u2").reshape(3, 2)
    values.flags.writeable = False
    q = query_value(T.FLOAT16_VECTOR, values, 1)
    assert q.dtype == np.dtype("<u2")
    assert q.tolist() == [2, 3]
    q[0] = 99
    assert values[1, 0] == 2
    sparse = [{1: 0.5}, None]
    got = query_value(T.SPARSE_FLOAT_VECTOR, sparse, 0)
    assert got == {1: 0.5}
    assert got is not sparse[0]
    assert query_value(T.SPARSE_FLOAT_VECTOR, sparse, 1) is None
