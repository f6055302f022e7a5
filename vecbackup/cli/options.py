"""Options shared by several commands (typer Annotated aliases) and the helpers that open things."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer

from vecbackup import api, ui
from vecbackup.api import BlobStore, Credentials, Passphrase
from vecbackup.errors import UsageError

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of text.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Token = Annotated[str | None, typer.Option("--token", metavar="TOKEN", envvar="VECBACKUP_MILVUS_TOKEN",
                                           show_envvar=True, help="Milvus token (prefer the environment variable).")]
User = Annotated[str | None, typer.Option("--user", metavar="NAME", envvar="VECBACKUP_MILVUS_USER", show_envvar=True,
                                           help="Milvus user name.")]
Password = Annotated[str | None, typer.Option("--password", metavar="PASSWORD", envvar="VECBACKUP_MILVUS_PASSWORD",
                                               show_envvar=True, show_default=False,
                                               help="Milvus password (prefer the environment variable).")]
ApiKey = Annotated[str | None, typer.Option("--api-key", metavar="KEY", envvar="VECBACKUP_QDRANT_API_KEY",
                                            show_envvar=True, show_default=False,
                                            help="Qdrant API key (prefer the environment variable; "
                                                 "QDRANT_API_KEY is read too).")]
CaCert = Annotated[str | None, typer.Option("--ca-cert", metavar="FILE", envvar="VECBACKUP_CA_CERT", show_envvar=True,
                                            help="PEM file of the CA(s) to verify the server's TLS certificate with "
                                                 "(milvus+https://, qdrant+https://).")]
ClientCert = Annotated[str | None, typer.Option(
    "--client-cert", metavar="FILE", envvar="VECBACKUP_CLIENT_CERT", show_envvar=True,
    help="PEM file of our certificate, for mutual TLS with a server or proxy that demands one (with --client-key; "
         "Milvus also needs --ca-cert).")]
ClientKey = Annotated[str | None, typer.Option(
    "--client-key", metavar="FILE", envvar="VECBACKUP_CLIENT_KEY", show_envvar=True,
    help="PEM file of the client certificate's private key (unencrypted).")]
Insecure = Annotated[bool, typer.Option(
    "--insecure", help="Do not verify the server's TLS certificate (Qdrant over HTTPS only; gRPC cannot skip it). "
    "Anyone on the network path could then impersonate the server: for tests only.")]
StoreArg = Annotated[str, typer.Argument(
    metavar="STORE_URL", help="Where backups are: file:///path, s3://bucket/prefix or azure://container/prefix.")]
BackupOpt = Annotated[str, typer.Option("--backup", "-b", metavar="ID", help="Backup id, unique prefix, or 'latest'.")]
IndexFallback = Annotated[bool, typer.Option(
    "--index-fallback", help="If the target cannot build a recorded index type, build the engine's default index "
    "instead (and say so).")]
DropFunctions = Annotated[bool, typer.Option(
    "--drop-functions", help="Restore without the collection's functions (e.g. BM25) and the fields they fill, onto "
    "a target that has none (a Milvus before 2.5, Qdrant); their input fields are restored as recorded.")]
CollectionOpt = Annotated[str | None, typer.Option("--collection", "-c", metavar="NAME",
                                                   help="Only backups of this collection.")]
PassphraseFile = Annotated[str | None, typer.Option(
    "--passphrase-file", metavar="FILE", envvar="VECBACKUP_PASSPHRASE_FILE", show_envvar=True,
    help="Encrypted store: a file holding its passphrase (or set VECBACKUP_PASSPHRASE; at a terminal it is asked "
         "for).")]
KeyCommand = Annotated[str | None, typer.Option(
    "--key-command", metavar="CMD", envvar="VECBACKUP_KEY_COMMAND", show_envvar=True,
    help="Encrypted store: a command that prints its passphrase (a secrets manager or KMS client; run without a "
         "shell, its output never shown).")]
KeyId = Annotated[str | None, typer.Option(
    "--key-id", metavar="ID", envvar="VECBACKUP_KEY_ID", show_envvar=True,
    help="Encrypted store: try only this key file (its id, or a unique prefix: `init`, `key add` and `key list` show "
         "it), instead of searching at most 20 key files cheapest first (a store others can write may hold planted "
         "ones).")]
AllowUnencrypted = Annotated[bool, typer.Option(
    "--allow-unencrypted", envvar="VECBACKUP_ALLOW_UNENCRYPTED", show_envvar=True,
    help="Use an unencrypted store although a passphrase was given (by default that is refused: a store that should "
         "be encrypted and is not may have been tampered with, and nothing meant to be encrypted is written in the "
         "clear).")]
AsOf = Annotated[str | None, typer.Option(
    "--as-of", metavar="TIME", show_default=False,
    help="Read the store as it was at TIME (ISO 8601 with Z or an offset, e.g. 2026-12-07T05:00:00Z, or a duration "
         "ago such as 3h), from its objects' versions: backups deleted or overwritten since, by mistake or by an "
         "attacker, are read as they were. S3 buckets and Azure containers with versioning (or object lock) only; "
         "nothing is written.")]
LockWait = Annotated[float, typer.Option("--lock-wait", metavar="SECONDS",
                                         help="Wait this long for a conflicting lock on the store to go (exit 11 "
                                              "if it does not).")]



# -- observability: structured logs and Prometheus metrics (vecbackup.metrics) --------------------------
class LogFormatName(StrEnum):
    text = "text"
    json = "json"


LogFormat = Annotated[LogFormatName, typer.Option(
    "--log-format", metavar="text|json", envvar="VECBACKUP_LOG_FORMAT", show_envvar=True, case_sensitive=False,
    help="Warnings, errors and progress on stderr as text, or as one JSON object per line "
         "({\"ts\", \"level\", \"msg\", ...}).")]
MetricsTextfile = Annotated[str | None, typer.Option(
    "--metrics-textfile", metavar="PATH", envvar="VECBACKUP_METRICS_TEXTFILE", show_envvar=True,
    help="Write Prometheus metrics of this run into this node-exporter textfile (merged with the series "
         "already there, replaced atomically).")]
MetricsPushgateway = Annotated[str | None, typer.Option(
    "--metrics-pushgateway", metavar="URL", envvar="VECBACKUP_PUSHGATEWAY_URL", show_envvar=True,
    help="Push Prometheus metrics of this run to this Pushgateway (a failed push is only a warning).")]
MetricsJob = Annotated[str, typer.Option(
    "--metrics-job", metavar="NAME", envvar="VECBACKUP_METRICS_JOB", show_envvar=True,
    help="The job label of the metrics (and the Pushgateway job).")]


def setup(json: bool, quiet: bool, log_format: str = "text") -> None:
    ui.configure(json=json, quiet=quiet, log_format=str(log_format))


def recording(operation: str, textfile: str | None, pushgateway: str | None, job: str | None,
              on_failure: list[str] | None = None) -> Any:
    """vecbackup.metrics.recording with warnings going to the terminal."""
    from vecbackup.metrics import recording as _recording

    return _recording(operation, textfile=textfile, pushgateway=pushgateway, job=job,
                      on_failure=on_failure or (), warn=ui.warn)


def credentials(token: str | None, user: str | None, password: str | None, ca_cert: str | None,
                api_key: str | None, client_cert: str | None = None, client_key: str | None = None,
                insecure: bool = False) -> Credentials:
    """The engine credentials and TLS settings of a command; --insecure is said out loud."""
    if insecure:
        ui.warn("--insecure: the server's TLS certificate is not verified; anyone on the network path could "
                "impersonate it and read or change what is backed up or restored")
    return Credentials(token, user, password, ca_cert, api_key, client_cert, client_key, insecure)


def store(url: str, *, create: bool = False, passphrase_file: str | None = None, key_command: str | None = None,
          key_id: str | None = None, allow_unencrypted: bool = False, as_of: str | datetime | None = None,
          ) -> BlobStore:
    """The store, unlocked if encrypted: the passphrase from VECBACKUP_PASSPHRASE, --passphrase-file or
    --key-command, else (at a terminal) asked for; with ``key_id`` (--key-id) only that key file is tried; with
    ``as_of`` (--as-of) as it was then, read-only."""
    when = api.parse_as_of(as_of) if isinstance(as_of, str) else as_of
    return api.open_store(url, create=create, allow_unencrypted=allow_unencrypted, as_of=when,
                          passphrase=Passphrase.from_env(file=passphrase_file, command=key_command, key_id=key_id),
                          ask=(lambda: _ask(f"passphrase of {url}")) if sys.stdin.isatty() else None)


def _ask(prompt: str, *, confirm: bool = False) -> str:
    """A passphrase typed at the terminal (not echoed; on stderr, so --json output stays clean)."""
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))


def passphrase(passphrase_file: str | None, key_command: str | None, *, what: str = "passphrase",
               confirm: bool = False, new: bool = False) -> Passphrase:
    """The passphrase from VECBACKUP_PASSPHRASE (``new``: VECBACKUP_NEW_PASSPHRASE), the file or the command,
    else asked at a terminal."""
    if new:
        pw = Passphrase.for_new_key(file=passphrase_file, command=key_command)
    else:
        pw = Passphrase.from_env(file=passphrase_file, command=key_command)
    if pw.given or not sys.stdin.isatty():
        return pw
    return Passphrase(_ask(what, confirm=confirm))


def _parse_pairs(rest: str) -> dict[str, Any]:
    """``{"k": v, ...}`` (JSON) or ``k=v,k=v`` (numbers become numbers, anything else stays text)."""
    rest = rest.strip()
    if rest.startswith("{"):
        params = orjson.loads(rest)
        if not isinstance(params, dict):
            raise ValueError(rest)
        return params
    params = {}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise ValueError(item)
        params[k.strip()] = orjson.loads(v) if v.strip().lstrip("-").replace(".", "", 1).isdigit() else v.strip()
    return params


def _parse_field_params(values: list[str], option: str, example: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        field, sep, rest = value.partition(":")
        if not sep or not field:
            raise UsageError(f"bad {option} {value!r}", hint=f"use {example}")
        try:
            out.setdefault(field, {}).update(_parse_pairs(rest))
        except (ValueError, orjson.JSONDecodeError):
            raise UsageError(f"bad {option} {value!r}", hint=f"use {example}") from None
    return out


def parse_percent(option: str, text: str) -> float:
    """``2%`` / ``0.5%`` / ``0`` -> a fraction from 0 to 1; UsageError naming ``option`` otherwise."""
    m = re.fullmatch(r"\s*([0-9]{1,3}(?:\.[0-9]{1,6})?)\s*%?\s*", text)
    if not m or float(m.group(1)) > 100:
        raise UsageError(f"{option} {text!r} is not a percentage", hint="use 0% to 100%, e.g. 2%")
    return float(m.group(1)) / 100


def parse_index_params(values: list[str]) -> dict[str, dict[str, Any]]:
    """``FIELD:{"M":16,"efConstruction":200}`` or ``FIELD:M=16,efConstruction=200`` (repeatable)."""
    return _parse_field_params(values, "--index-params", "FIELD:M=16,efConstruction=200")


def parse_index_types(values: list[str]) -> dict[str, str]:
    """``FIELD:TYPE`` (repeatable) -> {field: type}; the types are checked against the fields when the restore is
    planned (index_types.choose_type)."""
    out: dict[str, str] = {}
    for value in values:
        field, sep, kind = (part.strip() for part in value.partition(":"))
        if not sep or not field or not kind or "=" in kind or "," in kind:
            raise UsageError(f"bad --index-type {value!r}", hint="use FIELD:TYPE, e.g. v:IVF_FLAT (its parameters: "
                             "--index-params v:nlist=1024)")
        if out.get(field, kind) != kind:
            raise UsageError(f"--index-type gives field {field!r} two index types, {out[field]} and {kind}")
        out[field] = kind
    return out


def parse_field_params(values: list[str]) -> dict[str, dict[str, Any]]:
    """``FIELD:max_length=64`` or ``FIELD:{"description": "a, b"}`` (repeatable)."""
    return _parse_field_params(values, "--field-params", "FIELD:max_length=64")


def parse_collection_params(values: list[str]) -> dict[str, Any]:
    """``consistency_level=Bounded,num_partitions=16`` or JSON (repeatable)."""
    out: dict[str, Any] = {}
    for value in values:
        try:
            out.update(_parse_pairs(value))
        except (ValueError, orjson.JSONDecodeError):
            raise UsageError(f"bad --collection-params {value!r}",
                             hint="use KEY=VALUE,..., e.g. consistency_level=Bounded") from None
    return out


IndexParams = Annotated[list[str] | None, typer.Option(
    "--index-params", metavar="FIELD:K=V,...", help="Index build parameters for a field, "
    "FIELD:M=16,efConstruction=200 (repeatable), laid over what the backup recorded; keys the index type does not "
    "take are refused.")]
IndexType = Annotated[list[str] | None, typer.Option(
    "--index-type", metavar="FIELD:TYPE", help="Build another index type on a field than the backup recorded, e.g. "
    "v:IVF_FLAT (repeatable), with its parameters from --index-params (else the engine's defaults). Into Qdrant only "
    "HNSW applies (FLAT: no graph).")]
FieldParams = Annotated[list[str] | None, typer.Option(
    "--field-params", metavar="FIELD:K=V,...", help="Schema parameters of a field the backup does not record or "
    "that should differ: max_length, max_capacity, description, e.g. words:max_length=64 (repeatable; JSON "
    "FIELD:{...} for values with commas).")]
CollectionParams = Annotated[list[str] | None, typer.Option(
    "--collection-params", metavar="K=V,...", help="Collection settings the backup does not record or that should "
    "differ: consistency_level (Strong, Session, Bounded, Eventually), num_partitions (partition-key collections), "
    "description; properties.KEY=VALUE sets a collection property, properties.KEY= leaves it out.")]
Shards = Annotated[int | None, typer.Option(
    "--shards", min=1, metavar="N", help="Shards of the restored collection instead of the recorded number (Milvus "
    "num_shards; Qdrant shard_number, per shard key with custom sharding).")]
