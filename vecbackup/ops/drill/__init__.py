"""The disaster-recovery drill: restore a backup into a scratch collection, check it, report, drop it.

Checks, in order (each one ``passed``, ``failed`` or ``skipped``, with a message and details):

* ``restore``       the backup restores (every object's SHA-256 checked) and its indexes cover every row; its
                    wall time is the RTO
* ``row_count``     the restored copy holds exactly the backup's rows; with a source, the live source's count
                    is reported, and ``max_source_drift`` fails the check when the two differ by more
* ``sample_rows``   a random sample of the backup's rows, read from its data objects, equals field by field
                    (floats and vectors exactly) the rows with the same primary keys in the restored copy
* ``search_recall`` top-k searches with query vectors taken from the backup, scored against the exact top k
                    computed from the backup's own vectors (a streaming brute-force pass over its data objects,
                    exact.py): the restored copy's recall@k, and with a source the live collection's recall
                    against the same truth. Passes when the restored copy reaches ``min_recall`` and, with a source
                    whose index covers all its rows, comes within ``recall_tolerance`` of the source's recall.
                    Two approximate searches are never compared with each other (their overlap is reported, not
                    judged): on hard data two correct HNSW graphs agree far less than either agrees with the truth.
* ``text_search``   (a collection with a BM25 function) full-text queries made of words of sampled rows, searched on
                    the function's output: the restored copy's top k against the live source's, ties at the k-th
                    score counted as agreeing (vecbackup.ops.drill.text); without a source, each sampled row found by a
                    query of its own words
* ``backup_age``    the backup's age (the RPO) against ``max_age``

The scratch collection is dropped at the end, also after a failure, unless ``keep``. On an encrypted store the
report shows primary keys and field values hashed (``Values``, ``report_hash``) unless ``report_values``.
"""

from __future__ import annotations

from vecbackup.ops.drill.checks import RecallVerdict, judge_recall, row_differences, same_value
from vecbackup.ops.drill.options import DEFAULT_MIN_RECALL, DrillOptions
from vecbackup.ops.drill.report import CHECKS, HASHED, SHOWN, SUITE, Check, DrillReport, Values, report_hash, write_json
from vecbackup.ops.drill.run import run_drill

__all__ = ["CHECKS", "DEFAULT_MIN_RECALL", "HASHED", "SHOWN", "SUITE", "Check", "DrillOptions", "DrillReport",
           "RecallVerdict", "Values", "judge_recall", "report_hash", "row_differences", "run_drill", "same_value",
           "write_json"]
