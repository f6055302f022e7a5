from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    AsOf,
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
from vecbackup.errors import UsageError
from vecbackup.words import plural

#: what each depth of verify checked, as the summary line says it
LEVEL_WORDS = {"stat": "present with the recorded size", "checksum": "read back with a matching SHA-256",
               "decode": "fully decoded"}


def checked_text(checked: dict[str, int]) -> str:
    """``{"checksum": 2}`` -> ``2 objects read back with a matching SHA-256`` (one part per depth, deepest first)."""
    parts = [f"{plural(n, 'object')} {LEVEL_WORDS[level]}"
             for level, n in reversed(checked.items()) if n]
    return "; ".join(parts) or "no objects"


def verify(store_url: StoreArg,
           backup_id: Annotated[str | None, typer.Argument(
               metavar="BACKUP_ID", help="Backup id, unique prefix, or 'latest'.")] = None,
           collection: CollectionOpt = None,
           all_: Annotated[bool, typer.Option("--all", help="Verify every backup in the store.")] = False,
           quick: Annotated[bool, typer.Option(
               "--quick", help="Only check that every data object exists with the recorded size (no download; "
               "cheap enough to run often).")] = False,
           read_data: Annotated[bool, typer.Option(
               "--read-data", help="Also decode every chunk completely and check its rows and every column of "
               "the schema (catches damage a rewritten checksum would hide).")] = False,
           read_data_subset: Annotated[str | None, typer.Option(
               "--read-data-subset", metavar="N%|n/N", show_default=False,
               help="As --read-data for a sample only: a random N% of the objects, or slice n of N by key hash "
               "(run 1/7 .. 7/7 on successive days to cover everything in a week); the other objects are "
               "checked for existence and size.")] = None,
           repair: Annotated[bool, typer.Option(
               "--repair", help="Remove the objects found damaged (a data object only if, read again, its bytes "
               "do not match its name), under an exclusive store lock, so that the next backup stores their rows "
               "again instead of building on them. The backups that used them stay incomplete (exit as without "
               "--repair); `backup --full` writes again each object whose rows are unchanged.")] = False,
           lock_wait: LockWait = 0.0,
           passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
           allow_unencrypted: AllowUnencrypted = False, as_of: AsOf = None,
           json: Json = False, quiet: Quiet = False,
           log_format: LogFormat = LogFormatName.text,
           metrics_textfile: MetricsTextfile = None, metrics_pushgateway: MetricsPushgateway = None,
           metrics_job: MetricsJob = "vecbackup") -> None:
    """Check a backup's data objects: by default read each back and check size, SHA-256 and chunk header;
    --quick only checks existence and size, --read-data also decodes every chunk.

    Exit 8 if an object is missing, 14 if one of an encrypted store fails authentication, 7 if one is damaged."""
    setup(json, quiet, log_format)
    with recording("verify", metrics_textfile, metrics_pushgateway, metrics_job,
                   [collection] if collection else None) as rec:
        if all_ and backup_id:
            raise UsageError("give a backup id or --all, not both")
        if sum([quick, read_data, read_data_subset is not None]) > 1:
            raise UsageError("give at most one of --quick, --read-data and --read-data-subset")
        if repair and as_of is not None:
            raise UsageError("--repair removes objects from the store as it is now, not as of a past time",
                             hint="verify with --as-of, or repair without it")
        subset = None if read_data_subset is None else api.Subset.parse(read_data_subset)  # before the store opens
        s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                  allow_unencrypted=allow_unencrypted, as_of=as_of)

        def report(r: api.VerifyResult) -> None:
            rec.record(r.collection, r.ok, rows=r.rows, nbytes=r.bytes_read)
            if r.ok:
                found, recorded = r.duplicate_keys["found"], r.duplicate_keys["recorded"]
                held = "" if not found else f"; {plural(found, 'key')} held by more than one partition" + (
                    " (as recorded)" if recorded == found else " (not recorded by the vecbackup that wrote it)")
                ui.say(f"backup {r.backup_id} of {r.collection}: ok ({r.mode}): {checked_text(r.checked)}; "
                       f"{plural(r.rows, 'row')}, {ui.human_bytes(r.bytes_read)} read{held}")
            else:
                for p in r.problems:
                    ui.warn(f"{p.kind}: {p.message}")

        results = api.verify(s, None if all_ else backup_id or "latest", collection,
                             depth="quick" if quick else "read-data" if read_data else "checksum", subset=subset,
                             progress=ui.TerminalProgress, on_result=report)
        doc: dict[str, object] = {"ok": all(r.ok for r in results), "store": s.display,
                                  "backups": [r.to_dict() for r in results]}
        if repair:
            fixed = api.repair(s, results, lock_wait=lock_wait)
            doc["repair"] = fixed.to_dict()
            if fixed.removed:
                ui.warn(f"removed {plural(len(fixed.removed), 'damaged object')} ({', '.join(fixed.removed[:3])}"
                        f"{', ...' if len(fixed.removed) > 3 else ''}): the next backup stores their rows again")
            if fixed.backups:
                ui.warn(f"{'backup' if len(fixed.backups) == 1 else 'backups'} {', '.join(fixed.backups)} used "
                        f"{'it' if len(fixed.removed) == 1 else 'them'} and stay incomplete; `vecbackup backup "
                        "--full` writes again each object whose rows are unchanged")
            for key in fixed.kept:
                ui.warn(f"kept {key}: its bytes match its name (the manifest that lists it is what is wrong)")
        ui.emit(doc)
        api.raise_for_worst(results)  # a missing object (exit 8) outranks a tampered one (14), a damaged one (7)
