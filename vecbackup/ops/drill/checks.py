"""The drill's checks, each filling in its Check: the row count, rows sampled from the backup compared field by field,
search recall against exact search over the backup (judged by :func:`judge_recall`, pure), the backup's age."""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vecbackup.engines.base import Inspector
from vecbackup.errors import Unsupported, VecbackupError
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.ops.drill.exact import ExactTopK, QueryTruth, canonical_metric, query_value
from vecbackup.ops.drill.options import DEFAULT_MIN_RECALL, DrillOptions
from vecbackup.ops.drill.report import FAILED, PASSED, SKIPPED, Check, DrillReport, Values
from vecbackup.ops.fetch import iter_chunks
from vecbackup.schema import CollectionSpec, Field, Index
from vecbackup.stores.base import BlobStore, in_flight
from vecbackup.times import parse_z
from vecbackup.words import plural

_MAX_LISTED = 10  # differences / misses listed per check


def same_value(a: Any, b: Any) -> bool:
    """Exact equality, except that NaN equals NaN (a float that survived a backup unchanged)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def row_differences(backup: dict[str, Any], restored: dict[str, Any]) -> list[str]:
    """Names of the fields whose values differ (a field on one side only counts too)."""
    return sorted(k for k in backup.keys() | restored.keys()
                  if k not in backup or k not in restored or not same_value(backup[k], restored[k]))


# -- sampling the backup ---------------------------------------------------------------------------


@dataclass
class SampledRow:
    key: Any
    partition: str
    row: dict[str, Any]
    query: Any = None  # the row's value of the searched vector field as exact search takes it (None: no value)


def sample_backup(store: BlobStore, manifest: Manifest, engine: Inspector, n: int, rng: random.Random,
                  vector_field: Field | None = None) -> list[SampledRow]:
    """``n`` rows drawn uniformly from the whole backup (fewer if it holds fewer), read from the data objects
    that hold them (only those are fetched; each is checked against its SHA-256), with their value of
    ``vector_field`` kept for exact search."""
    total = manifest.rows
    picks = sorted(rng.sample(range(total), min(n, total)))
    if not picks:
        return []
    starts: list[int] = []
    pos = 0
    for obj in manifest.objects:
        starts.append(pos)
        pos += obj.rows
    wanted: dict[int, list[int]] = {}
    for p in picks:
        i = bisect.bisect_right(starts, p) - 1
        wanted.setdefault(i, []).append(p - starts[i])
    objects: list[DataObject] = [manifest.objects[i] for i in sorted(wanted)]
    order = sorted(wanted)
    out: list[SampledRow] = []
    spec = manifest.collection
    for i, (_, chunk) in zip(order, iter_chunks(store, objects, read_ahead=in_flight(store)), strict=True):
        rows = engine.rows_of_chunk(spec, chunk)
        column = chunk.columns.get(vector_field.name) if vector_field is not None else None
        for offset in wanted[i]:
            key, row = rows[offset]
            query = None
            if vector_field is not None and column is not None and (column.valid is None or column.valid[offset]):
                query = query_value(vector_field.type, column.values, offset)
            out.append(SampledRow(key, chunk.partition, row, query))
    rng.shuffle(out)
    return out


def search_field(spec: CollectionSpec) -> tuple[Field, Index | None] | None:
    """The vector field the search check uses: the first with an index, else the first vector field (never a
    function's output: the backup does not hold its values; the text search check covers BM25's)."""
    vectors = [f for f in spec.stored_fields if f.type.is_vector]
    for f in vectors:
        for index in spec.indexes:
            if index.field_name == f.name:
                return f, index
    return (vectors[0], None) if vectors else None


def exact_truth(store: BlobStore, manifest: Manifest, engine: Inspector, f: Field, metric: str,
                queries: list[Any], k: int, watch: list[set[Any]]) -> list[QueryTruth]:
    """The exact top ``k`` of each query over every row of the backup (one streaming pass over its data objects,
    each checked against its SHA-256; memory: one chunk plus k rows per query), and the exact score of each
    watched key (the keys the searches returned)."""
    truth = ExactTopK(f.type, metric, queries, k, watch=watch)
    spec = manifest.collection
    for _, chunk in iter_chunks(store, manifest.objects, read_ahead=in_flight(store)):
        column = chunk.columns[f.name]
        truth.add(engine.keys_of_chunk(spec, chunk), column.values, column.valid)
    return truth.results()


# -- the checks ------------------------------------------------------------------------------------


def timed(check: Check, fn: Callable[[Check], None]) -> None:
    t0 = time.monotonic()
    try:
        fn(check)
    except VecbackupError as e:
        check.status, check.message = FAILED, str(e)
    except Exception as e:  # a drill always ends with a report: an unexpected error fails the check it hit
        check.status, check.message = FAILED, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    finally:
        check.seconds = time.monotonic() - t0


def check_row_count(check: Check, manifest: Manifest, restored: int, source: Inspector | None, opts: DrillOptions,
                    expected: int | None = None) -> None:
    """The restored copy's rows (``restored``, counted on the target or by the restore that stopped on them)
    against the backup's (``expected``: as the target counts them, where keys held by more than one partition count
    once), and against the live source's with ``source``."""
    expected = manifest.rows if expected is None else expected
    check.details.update({"backup_rows": manifest.rows, "restored_rows": restored})
    if expected != manifest.rows:
        check.details["expected_rows"] = expected
    if manifest.duplicate_keys is not None and manifest.duplicate_keys.keys:
        check.details["duplicate_keys"] = manifest.duplicate_keys.keys
    problems = []
    if restored != expected:
        lost = expected - restored
        problems.append(f"restored copy holds {plural(restored, 'row')}, the backup {expected} "
                        + (f"({lost} lost)" if lost > 0 else f"({-lost} extra)"))
    if source is not None:
        live = source.count(opts.source_collection or manifest.collection.name)
        drift = live - restored
        check.details.update({"source_rows": live, "source_drift": drift})
        if opts.max_source_drift is not None:
            check.details["max_source_drift"] = opts.max_source_drift
            if abs(drift) > opts.max_source_drift:
                what = f"{plural(drift, 'row')} fewer" if drift > 0 else f"{plural(-drift, 'row')} more"
                problems.append(f"restored copy has {what} than the live source ({plural(live, 'row')}), more than "
                                f"--max-source-drift {opts.max_source_drift}")
    if problems:
        check.status, check.message = FAILED, "; ".join(problems)
    else:
        check.status = PASSED
        check.message = plural(restored, "row") + (f"; live source {check.details['source_rows']}"
                                              if source is not None else "")
        if expected != manifest.rows:
            check.message += (f" (the backup's {manifest.rows} less {manifest.rows - expected} copies of keys held by "
                              "more than one partition, which the target counts once)")


def check_sample(check: Check, sample: list[SampledRow], manifest: Manifest, target: Inspector, scratch: str,
                 values: Values | None = None) -> None:
    """The sampled rows against the rows with their keys in the restored copy; keys and values reported as
    ``values`` shows them (hashed on an encrypted store)."""
    show = (values or Values()).show
    spec = manifest.collection
    by_partition: dict[str, list[SampledRow]] = {}
    for s in sample:
        by_partition.setdefault(s.partition, []).append(s)
    missing: list[str] = []
    differ: list[dict[str, Any]] = []
    for partition, rows in by_partition.items():
        got = target.fetch_rows(spec, scratch, [s.key for s in rows], partition)
        for s in rows:
            restored = got.get(s.key)
            if restored is None:
                missing.append(show(s.key) + (f" (partition {partition!r})" if partition else ""))
                continue
            fields = row_differences(s.row, restored)
            if fields:
                differ.append({"key": show(s.key), "fields": fields,
                               "backup": {f: show(s.row.get(f)) for f in fields[:3]},
                               "restored": {f: show(restored.get(f)) for f in fields[:3]}})
    check.details.update({"sampled": len(sample), "missing": len(missing), "different": len(differ),
                          "missing_keys": missing[:_MAX_LISTED], "differences": differ[:_MAX_LISTED]})
    if missing or differ:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {plural(len(sample), 'sampled row')} missing from the restored copy "
                         f"(first: {missing[0]})")
        if differ:
            parts.append(f"{len(differ)} of {plural(len(sample), 'sampled row')} differ (first: key "
                         f"{differ[0]['key']}, "
                         f"fields {', '.join(differ[0]['fields'])})")
        check.status, check.message = FAILED, "; ".join(parts)
    else:
        check.status, check.message = PASSED, f"{plural(len(sample), 'sampled row')} identical in every field"


def check_search(check: Check, queries: list[SampledRow], store: BlobStore, manifest: Manifest,
                 target: Inspector, scratch: str, source: Inspector | None, opts: DrillOptions,
                 values: Values | None = None) -> None:
    show = (values or Values()).show
    spec = manifest.collection
    chosen = search_field(spec)
    if chosen is None:
        outputs = [f.name for f in spec.fields if f.type.is_vector and f.name in spec.function_outputs]
        check.status, check.message = SKIPPED, (
            f"the collection's vector fields ({', '.join(map(repr, outputs))}) are function outputs, which the "
            "backup does not hold" if outputs else "the collection has no vector field")
        return
    f, index = chosen
    k = opts.top_k
    try:
        metric = canonical_metric(index.metric_type if index else None, f.type)
    except Unsupported as e:
        check.status, check.message = SKIPPED, str(e)
        return
    asked = [q for q in queries if q.query is not None and not (isinstance(q.query, dict) and not q.query)]
    engine_vectors = [target.vector_of(spec, q.row, f.name) for q in asked]
    check.details.update({"field": f.name, "metric": metric, "top_k": k, "queries": len(asked),
                          "search_params": {"ef": opts.search.ef, "nprobe": opts.search.nprobe},
                          "recall_tolerance": opts.recall_tolerance})
    if not asked:
        check.status, check.message = SKIPPED, f"no sampled row has a value in {f.name!r}"
        return
    try:
        restored = target.search_keys(spec, scratch, f.name, engine_vectors, k, opts.search)
        live = None if source is None else source.search_keys(
            spec, opts.source_collection or spec.name, f.name, engine_vectors, k, opts.search)
    except Unsupported as e:
        check.status, check.message = SKIPPED, str(e)
        return
    watch = [set(restored[i]) | (set(live[i]) if live is not None else set()) for i in range(len(asked))]
    truths = exact_truth(store, manifest, target, f, metric, [q.query for q in asked], k, watch)
    per_query = [t.recall(restored[i], k) for i, t in enumerate(truths)]
    restored_recall = sum(per_query) / len(per_query)
    check.details["exact_rows"] = truths[0].rows
    check.details["restored_recall"] = round(restored_recall, 4)
    worst = sorted(range(len(asked)), key=lambda i: per_query[i])[:_MAX_LISTED]
    check.details["worst_queries"] = [{"key": show(asked[i].key), "recall": round(per_query[i], 4)}
                                      for i in worst if per_query[i] < 1.0]
    text = (f"recall@{k} {restored_recall:.3f} against exact search ({plural(len(asked), 'query', 'queries')} on "
            f"{f.name!r}, {metric})")
    source_recall = agreement = None
    unindexed: int | None = None
    if live is not None and source is not None:
        source_recall = sum(t.recall(live[i], k) for i, t in enumerate(truths)) / len(truths)
        agreement = sum(len(set(restored[i][:k]) & set(live[i][:k])) / k for i in range(len(asked))) / len(asked)
        unindexed = source.unindexed_rows(opts.source_collection or spec.name, f.name)
        check.details.update({"source_recall": round(source_recall, 4), "restored_vs_source": round(agreement, 4),
                              "source_unindexed_rows": unindexed})
        text += f"; live source {source_recall:.3f}, overlap of the two {agreement:.3f}"
    verdict = judge_recall(restored_recall, source_recall, unindexed, k, opts)
    check.details["min_recall"] = verdict.floor
    if source_recall is not None:
        check.details["compared_with_source"] = verdict.compared
        if not verdict.compared:
            text += (" (not held against the restored copy: " + (
                f"{plural(unindexed, 'row')} of the source "
                + ("is not indexed yet and answers" if unindexed == 1 else "are not indexed yet and answer")
                + " by exact search)" if unindexed
                else "the source does not say whether its index covers every row)"))
    if verdict.problems:
        check.status, check.message = FAILED, "; ".join(verdict.problems)
    else:
        check.status, check.message = PASSED, text


@dataclass(frozen=True)
class RecallVerdict:
    problems: tuple[str, ...]  # empty: passed
    compared: bool  # the restored copy was held to the source's recall
    floor: float | None  # the --min-recall applied, if any


def judge_recall(restored: float, source: float | None, source_unindexed: int | None, k: int,
                 opts: DrillOptions) -> RecallVerdict:
    """The search check's rule (pure): with a source whose index is known to cover all its rows, the restored copy's
    recall must be at most ``recall_tolerance`` below the source's; otherwise (no source, or one that answers some
    rows by exact search, or cannot say) it must reach the floor (``min_recall``, or DEFAULT_MIN_RECALL when not
    given). A floor given explicitly applies in both cases."""
    problems = []
    compared = source is not None and source_unindexed == 0
    if compared and source is not None and restored < source - opts.recall_tolerance:
        problems.append(f"recall@{k} of the restored copy {restored:.3f} is more than --recall-tolerance "
                        f"{opts.recall_tolerance} below the live source's {source:.3f} (exact search over the backup "
                        "is the truth for both)")
    floor = opts.min_recall if opts.min_recall is not None else None if compared else DEFAULT_MIN_RECALL
    if floor is not None and restored < floor:
        why = "" if opts.min_recall is not None else (
            " (the default without a live source to compare with: give --source, or a lower --min-recall for an "
            "index that is approximate by design, e.g. PQ)")
        problems.append(f"recall@{k} of the restored copy {restored:.3f} against exact search is below "
                        f"--min-recall {floor}{why}")
    return RecallVerdict(tuple(problems), compared, floor)


def check_age(check: Check, report: DrillReport, manifest: Manifest, opts: DrillOptions) -> None:
    try:
        completed = parse_z(manifest.completed_at)
    except ValueError:
        check.status, check.message = FAILED, f"the backup's completed_at {manifest.completed_at!r} is not a time"
        return
    age = (datetime.now(UTC) - completed).total_seconds()
    report.rpo_seconds = age
    check.details.update({"completed_at": manifest.completed_at, "age_seconds": round(age, 3),
                          "max_age_seconds": opts.max_age})
    text = f"backup completed {age / 3600:.2f}h ago"
    if opts.max_age is not None and age > opts.max_age:
        check.status, check.message = FAILED, f"{text}, more than --max-age {opts.max_age / 3600:g}h"
    else:
        check.status, check.message = PASSED, text
