from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.api import DrillOptions, DrillReport, SearchParams
from vecbackup.cli.options import (
    AllowUnencrypted,
    ApiKey,
    AsOf,
    BackupOpt,
    CaCert,
    ClientCert,
    ClientKey,
    CollectionOpt,
    CollectionParams,
    DropFunctions,
    FieldParams,
    IndexFallback,
    IndexParams,
    IndexType,
    Insecure,
    Json,
    KeyCommand,
    KeyId,
    LogFormat,
    LogFormatName,
    PassphraseFile,
    Password,
    Quiet,
    StoreArg,
    Token,
    User,
    credentials,
    parse_collection_params,
    parse_field_params,
    parse_index_params,
    parse_index_types,
    setup,
    store,
)
from vecbackup.errors import DrillFailed, UsageError
from vecbackup.times import parse_duration


def _render(report: DrillReport) -> None:
    ui.say(f"drill of backup {report.backup_id} of {report.collection} on {report.target}")
    ui.table(["check", "result", "details"],
             [(c.name, c.status.upper(), c.message) for c in report.checks])
    rto = "-" if report.rto_seconds is None else f"{report.rto_seconds:.1f}s"
    rpo = "-" if report.rpo_seconds is None else f"{report.rpo_seconds / 3600:.2f}h"
    ui.say(f"RTO (restore time) {rto}, RPO (backup age) {rpo}; scratch collection {report.scratch_collection} "
           + ("dropped" if report.scratch_dropped else "kept"))
    ui.say("drill passed" if report.ok else f"drill FAILED: {', '.join(c.name for c in report.failures)}")


def drill(
    store_url: StoreArg,
    target_url: Annotated[str, typer.Argument(metavar="TARGET_URL",
                                              help="Where to restore the scratch copy: milvus://host:19530, "
                                                   "milvus-lite:///file.db, qdrant://host:6333, ...")],
    backup_id: BackupOpt = "latest",
    collection: CollectionOpt = None,
    source_url: Annotated[str | None, typer.Option(
        "--source", metavar="SOURCE_URL", help="The live server the backup came from: report its current row count, "
        "and hold the restored copy's search recall to the live collection's (both measured against exact "
        "search over the backup).")] = None,
    source_collection: Annotated[str | None, typer.Option(
        "--source-collection", metavar="NAME", help="With --source: the live collection to compare with, when it "
        "is not the backup's collection name.")] = None,
    sample: Annotated[int, typer.Option(
        "--sample", min=0, metavar="ROWS", help="Rows sampled from the backup and compared field by field with the "
        "restored copy.")] = 100,
    queries: Annotated[int, typer.Option(
        "--queries", min=0, metavar="N", help="Search queries (vectors of sampled rows); 0 skips the search "
        "check.")] = 100,
    top_k: Annotated[int, typer.Option("--top-k", min=1, metavar="K", help="Hits per search query (recall@k).")] = 10,
    min_recall: Annotated[float | None, typer.Option(
        "--min-recall", min=0.0, max=1.0, metavar="FRACTION", show_default=False,
        help="Fail the search check when the restored copy's recall@k against exact search is below this. Default: "
        "0.8 when there is no --source to compare with, no floor when there is.")] = None,
    recall_tolerance: Annotated[float, typer.Option(
        "--recall-tolerance", min=0.0, max=1.0, metavar="FRACTION",
        help="With --source: fail the search check when the restored copy's recall@k is more than this below the "
        "live collection's (not applied while the source has rows its index does not cover yet).")] = 0.05,
    ef: Annotated[int, typer.Option(
        "--ef", min=1, metavar="N", help="Search effort of graph indexes: HNSW ef, DISKANN search_list, Qdrant "
        "hnsw_ef (at least --top-k).")] = 512,
    nprobe: Annotated[int, typer.Option(
        "--nprobe", min=1, metavar="N", help="Clusters searched by IVF indexes (at most the index's nlist).")] = 64,
    max_age: Annotated[str | None, typer.Option(
        "--max-age", metavar="DURATION", help="Fail when the backup is older than this (the RPO), e.g. 26h.")]
    = None,
    max_source_drift: Annotated[int | None, typer.Option(
        "--max-source-drift", metavar="ROWS", min=0, help="With --source: fail the row-count check when the "
        "restored copy and the live source differ by more than ROWS rows.")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="N", help="Random seed for the sample (reported, to repeat a drill exactly).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the scratch collection for inspection.")] = False,
    report_json: Annotated[str | None, typer.Option("--report-json", metavar="FILE",
                                                    help="Write the report as JSON to FILE.")] = None,
    junit: Annotated[str | None, typer.Option("--junit", metavar="FILE",
                                              help="Write the report as JUnit XML to FILE (one testcase per "
                                                   "check), for CI.")] = None,
    report_values: Annotated[bool, typer.Option(
        "--report-values", help="Encrypted store: show primary keys and field values of differing rows in the "
        "reports and messages as they are. By default they are hashed there (hmac-sha256:..., keyed by the store; "
        "docs/SECURITY.md), since reports leave the store's protection, e.g. as CI artifacts. An unencrypted store's "
        "reports always show them.")] = False,
    index_params: IndexParams = None,
    index_type: IndexType = None,
    index_fallback: IndexFallback = False,
    drop_functions: DropFunctions = False,
    field_params: FieldParams = None,
    collection_params: CollectionParams = None,
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    client_cert: ClientCert = None, client_key: ClientKey = None, insecure: Insecure = False,
    api_key: ApiKey = None, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
    key_id: KeyId = None,
    allow_unencrypted: AllowUnencrypted = False, as_of: AsOf = None,
    json: Json = False, quiet: Quiet = False, log_format: LogFormat = LogFormatName.text,
) -> None:
    """Disaster-recovery drill: restore a backup into a scratch collection, check it, report, drop it.

    Exit 12 if any check fails."""
    setup(json, quiet, log_format)
    if max_source_drift is not None and source_url is None:
        raise UsageError("--max-source-drift needs --source")
    if source_collection is not None and source_url is None:
        raise UsageError("--source-collection needs --source")
    opts = DrillOptions(sample=sample, queries=queries, top_k=top_k, min_recall=min_recall,
                        recall_tolerance=recall_tolerance, search=SearchParams(ef=ef, nprobe=nprobe),
                        max_age=parse_duration(max_age) if max_age else None, max_source_drift=max_source_drift,
                        source_collection=source_collection, keep=keep, seed=seed,
                        index_params=parse_index_params(index_params or []),
                        index_types=parse_index_types(index_type or []),
                        index_fallback=index_fallback, field_params=parse_field_params(field_params or []),
                        collection_params=parse_collection_params(collection_params or []),
                        report_values=report_values, drop_functions=drop_functions)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted, as_of=as_of)
    creds = credentials(token, user, password, ca_cert, api_key, client_cert, client_key, insecure)
    report = api.drill(s, target_url, backup=backup_id, collection=collection, source=source_url,
                       options=opts, credentials=creds,
                       progress=ui.TerminalProgress())
    for note in report.notes:
        ui.warn(note)
    doc = report.to_dict()
    api.write_report(report, json_path=report_json, junit_path=junit)
    ui.emit(doc, lambda: _render(report))
    if not report.ok:
        raise DrillFailed("drill failed: " + "; ".join(doc["failures"]))
