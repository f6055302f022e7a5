from __future__ import annotations

from typing import Annotated, Any

import typer

from vecbackup import ui
from vecbackup.cli import app
from vecbackup.cli.options import (
    ApiKey,
    BackupOpt,
    CaCert,
    CollectionOpt,
    IndexFallback,
    Json,
    LogFormat,
    LogFormatName,
    Password,
    Quiet,
    StoreArg,
    Token,
    User,
    connect,
    parse_index_params,
    setup,
    store,
)
from vecbackup.errors import DrillFailed, UsageError
from vecbackup.ops import catalog
from vecbackup.ops.drill import DrillOptions, DrillReport, run_drill, write_json
from vecbackup.ops.gc import parse_duration
from vecbackup.report_junit import write_junit


def _render(report: DrillReport) -> None:
    ui.say(f"drill of backup {report.backup_id} of {report.collection} on {report.target}")
    ui.table(["check", "result", "details"],
             [(c.name, c.status.upper(), c.message) for c in report.checks])
    rto = "-" if report.rto_seconds is None else f"{report.rto_seconds:.1f}s"
    rpo = "-" if report.rpo_seconds is None else f"{report.rpo_seconds / 3600:.2f}h"
    ui.say(f"RTO (restore time) {rto}, RPO (backup age) {rpo}; scratch collection {report.scratch_collection} "
           + ("dropped" if report.scratch_dropped else "kept"))
    ui.say("drill passed" if report.ok else f"drill FAILED: {', '.join(c.name for c in report.failures)}")


@app.command("drill")
def drill(
    store_url: StoreArg,
    target_url: Annotated[str, typer.Argument(metavar="TARGET_URL",
                                              help="Where to restore the scratch copy: milvus://host:19530, "
                                                   "milvus-lite:///file.db, qdrant://host:6333, ...")],
    backup_id: BackupOpt = "latest",
    collection: CollectionOpt = None,
    source_url: Annotated[str | None, typer.Option(
        "--source", metavar="SOURCE_URL", help="The live server the backup came from: report its current row count "
        "and measure search recall of the restored copy against it.")] = None,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Rows sampled from the backup and compared field "
                                                                "by field with the restored copy.")] = 100,
    queries: Annotated[int, typer.Option("--queries", min=0, help="Search queries (vectors of sampled rows).")] = 20,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Hits per search query (recall@k).")] = 10,
    min_recall: Annotated[float, typer.Option("--min-recall", min=0.0, max=1.0,
                                              help="Fail the search check below this recall@k.")] = 0.95,
    max_age: Annotated[str | None, typer.Option(
        "--max-age", metavar="DURATION", help="Fail when the backup is older than this (the RPO), e.g. 26h.")]
    = None,
    max_source_drift: Annotated[int | None, typer.Option(
        "--max-source-drift", metavar="ROWS", min=0, help="With --source: fail the row-count check when the "
        "restored copy and the live source differ by more than ROWS rows.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed for the sample (reported, to repeat a "
                                                            "drill exactly).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the scratch collection for inspection.")] = False,
    report_json: Annotated[str | None, typer.Option("--report-json", metavar="FILE",
                                                    help="Write the report as JSON to FILE.")] = None,
    junit: Annotated[str | None, typer.Option("--junit", metavar="FILE",
                                              help="Write the report as JUnit XML to FILE (one testcase per "
                                                   "check), for CI.")] = None,
    index_params: Annotated[list[str] | None, typer.Option(
        "--index-params", help="Index build parameters for a field, FIELD:M=16,efConstruction=200 (repeatable), "
        "as for restore.")] = None,
    index_fallback: IndexFallback = False,
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    api_key: ApiKey = None, json: Json = False, quiet: Quiet = False,
    log_format: LogFormat = LogFormatName.text,
) -> None:
    """Disaster-recovery drill: restore a backup into a scratch collection, check it, report, drop it.

    Exit 12 if any check fails."""
    setup(json, quiet, log_format)
    if max_source_drift is not None and source_url is None:
        raise UsageError("--max-source-drift needs --source")
    opts = DrillOptions(sample=sample, queries=queries, top_k=top_k, min_recall=min_recall,
                        max_age=parse_duration(max_age) if max_age else None, max_source_drift=max_source_drift,
                        keep=keep, seed=seed, index_params=parse_index_params(index_params or []),
                        index_fallback=index_fallback)
    backup_store = store(store_url)
    manifest = catalog.find(backup_store, backup_id, collection)
    target = connect(target_url, token, user, password, ca_cert, api_key)
    source: Any = None
    try:
        if source_url is not None:
            source = target if source_url == target_url else connect(source_url, token, user, password, ca_cert,
                                                                     api_key)
        report = run_drill(backup_store, manifest, target, source=source, opts=opts,
                           progress=ui.TerminalProgress())
    finally:
        if source is not None and source is not target:
            source.close()
        target.close()
    for note in report.notes:
        ui.warn(note)
    doc = report.to_dict()
    if report_json:
        write_json(report, report_json)
    if junit:
        write_junit(doc, junit)
    ui.emit(doc, lambda: _render(report))
    if not report.ok:
        raise DrillFailed("drill failed: " + "; ".join(doc["failures"]))
