"""One run of one scheduled job: back up its collections through the API, then apply its retention to those that
succeeded; each outcome recorded in the schedule's metrics outputs (operations ``backup`` and ``prune``, the ``job``
label is the job's name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecbackup import api, metrics
from vecbackup.api import NullProgress, Progress
from vecbackup.scheduler.jobs import Job
from vecbackup.times import parse_duration
from vecbackup.words import api_words


def run_job(job: Job, progress: Callable[[], Progress] = NullProgress, *, metrics_textfile: str | None = None,
            metrics_pushgateway: str | None = None, warn: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Back up the job's collections, then (if it has retention) prune the ones that succeeded. Returns a
    summary; raises the collection's error if one collection failed, PartialFailure if some of several did. Its
    messages name options as the schedule file does: by the API's parameters."""
    with api_words():
        return _run(job, progress, metrics_textfile, metrics_pushgateway, warn)


def _run(job: Job, progress: Callable[[], Progress], metrics_textfile: str | None, metrics_pushgateway: str | None,
         warn: Callable[[str], None]) -> dict[str, Any]:
    with metrics.recording("backup", textfile=metrics_textfile, pushgateway=metrics_pushgateway, job=job.name,
                           on_failure=job.collections, warn=warn) as rec:
        store = api.open_store(job.store, create=True, passphrase=job.passphrase(),
                               allow_unencrypted=job.allow_unencrypted)
        run = api.backup(job.source, store, list(job.collections), all=job.all, options=job.options,
                         credentials=job.credentials(), progress=progress)
        rec.backup_run(run)
    summary: dict[str, Any] = {
        "backups": [{"collection": r.collection, "backup_id": r.backup_id, "rows": r.rows,
                     "bytes_uploaded": r.bytes_uploaded, "seconds": round(r.seconds, 3), "notes": r.notes}
                    for r in run.results],
        "failures": [f.to_dict() for f in run.failures]}
    if job.policy is not None and run.results:  # retention only after a successful backup, of what was backed up
        with metrics.recording("prune", textfile=metrics_textfile, pushgateway=metrics_pushgateway, job=job.name,
                               on_failure=[r.collection for r in run.results], warn=warn) as prec:
            pruned = api.prune_backed_up(
                store, run, job.policy, gc_min_age=parse_duration(job.gc_min_age), lock_wait=job.lock_wait,
                on_pruned=lambda p: prec.record(p.collection, True, seconds=p.seconds, nbytes=p.bytes_freed))
        summary["pruned"] = [p.to_dict() for p in pruned]
    run.raise_for_failures()
    return summary


__all__ = ["run_job"]
