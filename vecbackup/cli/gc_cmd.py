from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    ApiKey,
    CaCert,
    ClientCert,
    ClientKey,
    Insecure,
    Json,
    KeyCommand,
    KeyId,
    LockWait,
    LogFormat,
    LogFormatName,
    PassphraseFile,
    Password,
    Quiet,
    Token,
    User,
    credentials,
    setup,
    store,
)
from vecbackup.errors import UsageError
from vecbackup.times import parse_duration
from vecbackup.words import plural

DEFAULT_MIN_AGE = "24h"


def gc(ctx: typer.Context,
       url: Annotated[str, typer.Argument(
           metavar="STORE_URL|ENGINE_URL", help="A store (file:///path, s3://bucket/prefix, azure://container/prefix) "
           "or a database (milvus://host:19530, milvus-lite:///file.db, qdrant://host:6333, qdrant-local:///folder, "
           "qdrant-edge:///folder).")],
       min_age: Annotated[str | None, typer.Option(
           "--min-age", metavar="DURATION", help="Stores: only delete unreferenced objects older than this (e.g. 24h, "
           "7d): younger ones may belong to a backup still running.  [default: 24h]")] = None,
       dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")]
       = False,
       lock_wait: LockWait = 0.0, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
       key_id: KeyId = None,
       allow_unencrypted: AllowUnencrypted = False,
       token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
       client_cert: ClientCert = None, client_key: ClientKey = None, insecure: Insecure = False,
       api_key: ApiKey = None,
       json: Json = False, quiet: Quiet = False, log_format: LogFormat = LogFormatName.text) -> None:
    """Delete data objects that no backup references (leftovers of failed or interrupted backups); pointed at a
    database, drop the collections that restores and drills which died left there."""
    setup(json, quiet, log_format)
    if api.is_engine_url(url):
        source = ctx.get_parameter_source("min_age")
        given = source is not None and source.name == "COMMANDLINE"
        if min_age is not None and given:  # one from the config file or the environment is for stores
            raise UsageError("--min-age applies to stores: a database's leftovers are told by their leases")
        _gc_engine(url, dry_run, credentials(token, user, password, ca_cert, api_key, client_cert, client_key,
                                             insecure))
        return
    s = store(url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted)
    age = min_age or DEFAULT_MIN_AGE
    r = api.gc(s, min_age=parse_duration(age), dry_run=dry_run, lock_wait=lock_wait)
    verb = "would delete" if dry_run else "deleted"

    def human() -> None:
        ui.say(f"{verb} {plural(len(r.keys), 'unreferenced object')} ({ui.human_bytes(r.bytes_freed)}"
               + (f"; {r.dead_manifests} of them manifests of deleted backups" if r.dead_manifests else "")
               + f"); {r.kept_young} younger than {age} kept; {r.referenced} in use")
        if r.object_lock is not None:
            ui.say(f"object lock {r.object_lock}: a delete only adds a delete marker; the "
                   f"{ui.human_bytes(r.bytes_freed)} stay stored, and billed, as noncurrent versions until each "
                   "one's lock ends and a lifecycle rule expires them")

    ui.emit({"ok": True, **r.to_dict()}, human)


def _gc_engine(url: str, dry_run: bool, creds: api.Credentials) -> None:
    r = api.gc_engine(url, dry_run=dry_run, credentials=creds)

    def human() -> None:
        for line in r.notes():
            ui.say(line)
        would = "would be " if dry_run else ""
        ui.say(f"{r.engine}: {plural(len(r.dropped), 'collection')} {would}dropped, "
               f"{plural(len(r.cleared), 'lease')} {would}cleared, {len(r.kept)} kept")

    ui.emit({"ok": True, **r.to_dict()}, human)
