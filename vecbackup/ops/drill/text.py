"""The drill's full-text check (``text_search``): queries made of words of sampled rows, searched on the output of a
BM25 function of the restored copy.

BM25 ranks by statistics of all rows (each term's document frequency, the average length), so the backup alone
cannot say what the top k must be: the truth is the live source's answer to the same query (``--source``), which
over identical rows, analyzer and parameters is the same ranking. Two rankings are compared with
:func:`ranked_agreement` (pure), which counts a hit tied with the k-th score as agreeing: which of several rows of
equal score make the cut depends on the order the engine met them in. Without a source the check asks of each
sampled row that a query of its own words finds it (searched in that row alone), which a row without its BM25 output,
or an analyzer that tokenizes the text differently from the query, fails."""

from __future__ import annotations

import math
import random
from typing import Any

from vecbackup.engines.base import Inspector
from vecbackup.errors import Unsupported
from vecbackup.ops.drill.checks import SampledRow
from vecbackup.ops.drill.options import DrillOptions
from vecbackup.ops.drill.report import FAILED, PASSED, SKIPPED, Check, Values
from vecbackup.schema import CollectionSpec, Function
from vecbackup.words import plural

_MAX_LISTED = 10
#: the most words a query takes from a row
MAX_QUERY_WORDS = 4
#: scores this close (relative) are the same score: one engine computes both from the same statistics, but may sum
#: the terms of a query in another order
SCORE_TOLERANCE = 1e-5

Hits = list[tuple[Any, float]]


def text_function(spec: CollectionSpec) -> Function | None:
    """The BM25 function the check searches: the first whose output field has an index."""
    indexed = {i.field_name for i in spec.indexes}
    return next((fn for fn in spec.functions if fn.type == "BM25" and len(fn.output_field_names) == 1
                 and len(fn.input_field_names) == 1 and fn.output_field_names[0] in indexed), None)


def query_of(text: Any, rng: random.Random) -> str | None:
    """1 to MAX_QUERY_WORDS consecutive words of ``text`` (None for no words)."""
    if not isinstance(text, str):
        return None
    words = text.split()
    if not words:
        return None
    n = rng.randint(1, min(MAX_QUERY_WORDS, len(words)))
    start = rng.randrange(len(words) - n + 1)
    return " ".join(words[start:start + n])


def same_score(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SCORE_TOLERANCE, abs_tol=1e-9)


def ranked_agreement(truth: Hits, got: Hits, k: int) -> float:
    """How much of ``truth``'s top ``k`` the ranking ``got`` holds (0 to 1; both empty: 1). A hit of ``got`` that
    ``truth`` lacks counts as agreeing when its score equals the score of ``truth``'s k-th hit (a tie at the cut);
    the denominator is the longer list, so hits only one side found count against it."""
    truth, got = truth[:k], got[:k]
    size = max(len(truth), len(got))
    if size == 0:
        return 1.0
    keys = {key for key, _ in truth}
    cut = truth[-1][1] if len(truth) == k else None
    matched = sum(1 for key, score in got if key in keys or (cut is not None and same_score(score, cut)))
    return min(matched, len(truth)) / size


def identical(truth: Hits, got: Hits, k: int) -> bool:
    """The same keys with the same scores in the same order."""
    truth, got = truth[:k], got[:k]
    return len(truth) == len(got) and all(a == c and same_score(b, d) for (a, b), (c, d) in zip(truth, got,
                                                                                                 strict=True))


def check_text_search(check: Check, sample: list[SampledRow], spec: CollectionSpec, restored_spec: CollectionSpec,
                      target: Inspector, scratch: str, source: Inspector | None, opts: DrillOptions, rng: random.Random,
                      values: Values | None = None) -> None:
    """The check: ``spec`` is the backup's collection, ``restored_spec`` what the restore created."""
    show = (values or Values()).show
    fn = text_function(spec)
    if fn is None:
        check.status, check.message = SKIPPED, "the collection has no indexed BM25 function"
        return
    if text_function(restored_spec) is None:
        check.status, check.message = SKIPPED, f"the restored copy has no {fn.label} (--drop-functions)"
        return
    text_field, field = fn.input_field_names[0], fn.output_field_names[0]
    k = opts.top_k
    asked = [(s, q) for s in sample if (q := query_of(s.row.get(text_field), rng)) is not None]
    check.details.update({"function": fn.name, "field": field, "text_field": text_field, "top_k": k,
                          "queries": len(asked)})
    if not asked:
        check.status, check.message = SKIPPED, f"no sampled row has text in {text_field!r}"
        return
    queries = [q for _, q in asked]
    what = f"{plural(len(asked), 'full-text query', 'full-text queries')} on {field!r} (BM25 over {text_field!r})"
    try:
        restored = target.text_search(spec, scratch, field, queries, k)
        if source is not None:
            live = source.text_search(spec, opts.source_collection or spec.name, field, queries, k)
        else:
            own = target.text_search(spec, scratch, field, queries, 1, keys=[s.key for s, _ in asked])
    except Unsupported as e:
        check.status, check.message = SKIPPED, str(e)
        return
    if source is not None:
        per_query = [ranked_agreement(live[i], restored[i], k) for i in range(len(asked))]
        agreement = sum(per_query) / len(per_query)
        same = sum(identical(live[i], restored[i], k) for i in range(len(asked)))
        worst = sorted(range(len(asked)), key=lambda i: per_query[i])[:_MAX_LISTED]
        check.details.update({"agreement": round(agreement, 4), "identical_queries": same,
                              "recall_tolerance": opts.recall_tolerance,
                              "worst_queries": [{"query": show(queries[i]), "agreement": round(per_query[i], 4)}
                                                for i in worst if per_query[i] < 1.0]})
        text = (f"top-{k} agreement {agreement:.3f} with the live source over {what}; {same} identical, ties at the "
                f"{k}th score counted as agreeing")
        if agreement < 1.0 - opts.recall_tolerance:
            check.status = FAILED
            check.message = (f"{text}: below 1 - --recall-tolerance {opts.recall_tolerance} (BM25 ranks by "
                             "statistics of every row: a source changed since the backup, index parameters the "
                             f"backup does not record (e.g. from Milvus Lite: --index-params {field}:bm25_k1=..,"
                             "bm25_b=..) or Milvus Lite's per-segment statistics give other scores)")
        else:
            check.status, check.message = PASSED, text
        return
    answered = [i for i in range(len(asked)) if restored[i]]
    missing = [i for i in answered if not own[i]]
    check.details.update({"answered": len(answered), "own_row_missing": len(missing),
                          "missing": [{"key": show(asked[i][0].key), "query": show(queries[i])}
                                      for i in missing[:_MAX_LISTED]]})
    if not answered:
        check.status = FAILED
        check.message = (f"none of {what} found a row in the restored copy (its BM25 output was not computed?)")
    elif missing:
        check.status = FAILED
        check.message = (f"{len(missing)} of {plural(len(answered), 'sampled row')} not found by a full-text query of "
                         f"their own words on {field!r} (first: key {show(asked[missing[0]][0].key)})")
    else:
        check.status = PASSED
        unasked = len(asked) - len(answered)
        check.message = (f"each of {plural(len(answered), 'sampled row')} is found by a full-text query of its own "
                         f"words on {field!r} (BM25 over {text_field!r})"
                         + (f"; {plural(unasked, 'query', 'queries')} had no term the analyzer keeps" if unasked
                            else "")
                         + "; --source compares the top-k ranking with the live collection's")


__all__ = ["MAX_QUERY_WORDS", "SCORE_TOLERANCE", "check_text_search", "identical", "query_of", "ranked_agreement",
           "same_score", "text_function"]
