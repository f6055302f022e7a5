from __future__ import annotations

from typing import Annotated, Any

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    CollectionOpt,
    Json,
    KeyCommand,
    KeyId,
    LockWait,
    LogFormat,
    LogFormatName,
    MetricsJob,
    MetricsPushgateway,
    MetricsTextfile,
    PassphraseFile,
    Quiet,
    StoreArg,
    recording,
    setup,
    store,
)
from vecbackup.metrics import ALL_COLLECTIONS
from vecbackup.retention import Policy, require_rules
from vecbackup.times import parse_duration
from vecbackup.words import plural

_COUNT = "Keep the newest backup of each of the last N {what} that have a backup (UTC)."


def _count(flag: str, text: str) -> Any:
    return typer.Option(flag, min=0, metavar="N", show_default=False, help=text)


def prune_cmd(
    store_url: StoreArg,
    collection: CollectionOpt = None,
    keep_last: Annotated[int, _count("--keep-last", "Keep the N newest backups.")] = 0,
    keep_hourly: Annotated[int, _count("--keep-hourly", _COUNT.format(what="hours"))] = 0,
    keep_daily: Annotated[int, _count("--keep-daily", _COUNT.format(what="days"))] = 0,
    keep_weekly: Annotated[int, _count("--keep-weekly", _COUNT.format(what="ISO weeks"))] = 0,
    keep_monthly: Annotated[int, _count("--keep-monthly", _COUNT.format(what="months"))] = 0,
    keep_yearly: Annotated[int, _count("--keep-yearly", _COUNT.format(what="years"))] = 0,
    keep_within: Annotated[str | None, typer.Option(
        "--keep-within", metavar="DURATION", show_default=False,
        help="Keep every backup completed within this long before now (e.g. 30d, 2w, 36h).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be kept and removed; delete "
                                          "nothing.")] = False,
    gc_min_age: Annotated[str, typer.Option(
        "--gc-min-age", metavar="DURATION", help="Afterwards also delete unreferenced leftovers of failed backups "
        "older than this (as `gc --min-age`).")] = "24h",
    lock_wait: LockWait = 0.0, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
    key_id: KeyId = None,
    allow_unencrypted: AllowUnencrypted = False,
    json: Json = False, quiet: Quiet = False,
    log_format: LogFormat = LogFormatName.text, metrics_textfile: MetricsTextfile = None,
    metrics_pushgateway: MetricsPushgateway = None, metrics_job: MetricsJob = "vecbackup",
) -> None:
    """Apply a retention policy: keep the backups any --keep rule selects, per collection, delete the rest
    and the data only they used."""
    setup(json, quiet, log_format)
    # a dry run changes nothing, so it records no metrics
    with recording("prune", None if dry_run else metrics_textfile, None if dry_run else metrics_pushgateway,
                   metrics_job, [collection or ALL_COLLECTIONS]) as rec:
        policy = Policy(keep_last=keep_last, keep_hourly=keep_hourly, keep_daily=keep_daily,
                        keep_weekly=keep_weekly, keep_monthly=keep_monthly, keep_yearly=keep_yearly,
                        keep_within=parse_duration(keep_within) if keep_within else 0.0)
        require_rules(policy)  # before the store is even opened
        s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                  allow_unencrypted=allow_unencrypted)
        r = api.prune(s, policy, collection=collection, dry_run=dry_run,
                      gc_min_age=parse_duration(gc_min_age), lock_wait=lock_wait)
        rec.record(collection or ALL_COLLECTIONS, True,
                   nbytes=r.bytes_freed + (r.gc.bytes_freed if r.gc is not None else 0))
    for note in r.notes:
        ui.warn(note)
    ui.emit({"ok": True, **r.to_dict()}, None if quiet else lambda: _show(r, gc_min_age))


def _show(r: api.PruneResult, gc_min_age: str) -> None:
    rows = [(b["collection"], b["backup_id"], b["completed_at"], "keep" if b["keep"] else "remove",
             ", ".join(b["reasons"])) for b in r.backups()]
    ui.table(["collection", "backup id", "completed", "action", "reasons"], rows,
             title=f"policy: {r.policy.describe()}")
    would = "would " if r.dry_run else ""
    ui.say(f"{would}remove {plural(len(r.removed), 'backup')}, keep {len(r.kept)}; {would}delete "
           f"{plural(r.objects_deleted, 'data object')} ({ui.human_bytes(r.bytes_freed)}), {r.objects_kept} still "
           "used by kept backups")
    if r.gc is not None:
        ui.say(f"leftovers of failed backups: {would}delete {len(r.gc.keys)} ({ui.human_bytes(r.gc.bytes_freed)}); "
               f"{r.gc.kept_young} younger than {gc_min_age} kept")
