"""The schedule file of ``vecbackup schedule`` (docs/CONFIG.md, "Schedule"): jobs parsed into frozen dataclasses.

    heartbeat = "/tmp/vecbackup.heartbeat"

    [[jobs]]
    name = "articles"
    source = "milvus://db:19530"
    collections = ["articles"]          # or all = true
    store = "s3://bucket/milvus"
    every = "6h"                        # or at = "02:15" (daily, UTC)
    keep_daily = 7                      # optional retention: prune after a successful backup
    token_file = "/var/run/secrets/milvus-token"
    passphrase_file = "/var/run/secrets/backup-passphrase"   # an encrypted store (vecbackup init --encrypt)

No I/O but reading the file; errors are UsageError naming the job and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from vecbackup import config
from vecbackup.api import DEFAULT_COMPRESSION_LEVEL, BackupOptions, Credentials, Passphrase
from vecbackup.errors import UsageError
from vecbackup.retention import Policy
from vecbackup.times import parse_duration
from vecbackup.words import api_words

#: the retention keys a job takes: Policy's own fields (keep_within as a duration)
POLICY_KEYS = tuple(f.name for f in fields(Policy))


@dataclass(frozen=True)
class Job:
    name: str
    source: str
    store: str
    collections: tuple[str, ...] = ()
    all: bool = False
    every: str | None = None  # "6h"
    at: str | None = None  # "02:15", daily, UTC
    batch_size: int = 5000
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    user: str | None = None
    token_file: str | None = None
    password_file: str | None = None
    api_key_file: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None  # mutual TLS: our certificate and its key (paths)
    client_key: str | None = None
    lock_wait: float = 0.0
    passphrase_file: str | None = None  # an encrypted store's passphrase (else VECBACKUP_PASSPHRASE / _FILE)
    key_command: str | None = None  # or a command that prints it
    key_id: str | None = None  # the key file that passphrase opens (else VECBACKUP_KEY_ID, else a bounded search)
    allow_unencrypted: bool = False
    policy: Policy | None = None  # retention after a successful backup (keep_* keys in the file)
    gc_min_age: str = "24h"
    segments_from: str | None = None  # a segment backup (backup --segments-from)

    @property
    def interval(self) -> float:
        """Seconds between runs."""
        return parse_duration(self.every) if self.every else 86400.0

    @property
    def options(self) -> BackupOptions:
        return BackupOptions(self.batch_size, self.compression_level, self.lock_wait,
                             segments_from=self.segments_from)

    def credentials(self) -> Credentials:
        """Secrets read from their files now (never kept in the Job, never in the schedule file)."""
        secret = {k: config.secret_from_file(path, f"{k}_file of job {self.name!r}") if path else None
                  for k, path in (("token", self.token_file), ("password", self.password_file),
                                  ("api_key", self.api_key_file))}
        return Credentials(token=secret["token"], user=self.user, password=secret["password"], ca_cert=self.ca_cert,
                           api_key=secret["api_key"], client_cert=self.client_cert, client_key=self.client_key)

    def passphrase(self) -> Passphrase:
        """Where the store's passphrase is (read when the store is opened, each run: a rotated one is picked up)."""
        return Passphrase.from_env(file=self.passphrase_file, command=self.key_command, key_id=self.key_id)

    def describe(self) -> str:
        return f"every {self.every}" if self.every else f"daily at {self.at} UTC"


#: the keys a [[jobs]] table takes: the Job's fields, with the Policy's in place of ``policy``
JOB_KEYS = tuple(f.name for f in fields(Job) if f.name != "policy") + POLICY_KEYS
_REQUIRED = ("name", "source", "store")
_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "source": (str,), "store": (str,), "all": (bool,), "every": (str,), "at": (str,),
    "batch_size": (int,), "compression_level": (int,), "user": (str,), "token_file": (str,),
    "password_file": (str,), "api_key_file": (str,), "ca_cert": (str,), "client_cert": (str,), "client_key": (str,),
    "lock_wait": (int, float),
    "gc_min_age": (str,), "passphrase_file": (str,), "key_command": (str,), "key_id": (str,),
    "allow_unencrypted": (bool,), "segments_from": (str,),
    **{k: (int,) for k in POLICY_KEYS}, "keep_within": (str,),
}


@dataclass(frozen=True)
class Schedule:
    jobs: tuple[Job, ...]
    heartbeat: Path | None = None
    source: str = ""
    metrics_textfile: str | None = None  # vecbackup.metrics outputs, per job run; the job label is the job name
    metrics_pushgateway: str | None = None


def _job(raw: Any, index: int, source: str) -> Job:
    where = f"{source} [[jobs]] #{index + 1}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table")
    if isinstance(raw.get("name"), str):
        where = f"{source} job {raw['name']!r}"
    config.refuse_secrets(raw, where)
    config.refuse_url_passwords(raw, where)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        k = key.replace("-", "_")
        if k not in JOB_KEYS:
            raise UsageError(f"{where}: unknown key {key!r}", hint="known: " + ", ".join(JOB_KEYS))
        if k == "collections":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise UsageError(f"{where}: collections must be a list of collection names")
            value = tuple(dict.fromkeys(value))
        elif isinstance(value, bool) != (bool in _TYPES[k]) or not isinstance(value, _TYPES[k]):
            raise UsageError(f"{where}: {key} must be {' or '.join(t.__name__ for t in _TYPES[k])} "
                             f"(got {value!r})")
        values[k] = value
    for k in _REQUIRED:
        if not values.get(k):
            raise UsageError(f"{where}: {k} is required")
    keep = {k: values.pop(k) for k in POLICY_KEYS if k in values}
    if "keep_within" in keep:
        keep["keep_within"] = _duration(where, "keep_within", keep["keep_within"])
    try:
        policy = Policy(**keep)
    except UsageError as e:
        raise UsageError(f"{where}: {e.message}", hint=e.hint) from None
    job = Job(**values, policy=None if policy.is_empty else policy)
    if bool(job.collections) == job.all:
        raise UsageError(f"{where}: say which collections to back up",
                         hint='give collections = ["name", ...] or all = true')
    if (job.every is None) == (job.at is None):
        raise UsageError(f"{where}: give one of every = \"6h\" or at = \"02:15\" (daily, UTC)")
    if job.every is not None and _duration(where, "every", job.every) < 1:
        raise UsageError(f"{where}: every = {job.every!r} is shorter than a second")
    if job.at is not None:
        _utc_time(job.at, where)
    try:
        job.options.check_source(job.source)
    except UsageError as e:  # named as the file names it: the job's keys are the API's parameters
        raise UsageError(f"{where}: {e.message}", hint=e.hint) from None
    _duration(where, "gc_min_age", job.gc_min_age)
    return job


_CRON = re.compile(r"(\S+\s+){4}\S+")
_DAILY_CRON = re.compile(r"(\d{1,2})\s+(\d{1,2})\s+\*\s+\*\s+\*")


def _duration(where: str, key: str, text: str) -> float:
    """The seconds of duration ``text`` of ``key``; UsageError naming the file, the job and the key (and, for a
    cron expression, that it is not supported and what to write instead)."""
    if key == "every" and _CRON.fullmatch(text.strip()):
        daily = _DAILY_CRON.fullmatch(text.strip())
        at = (f"{int(daily[2]):02d}:{int(daily[1]):02d}" if daily and int(daily[2]) < 24 and int(daily[1]) < 60
              else None)
        raise UsageError(f"{where}: every = {text!r}: cron syntax is not supported",
                         hint='give a duration, e.g. every = "6h", or '
                              + (f'at = "{at}" for a run every day at {at} UTC' if at else
                                 'at = "HH:MM" for a run every day at that time, UTC'))
    try:
        return parse_duration(text)
    except UsageError as e:
        raise UsageError(f"{where}: {key}: {e.message}", hint=e.hint) from None


def _utc_time(text: str, where: str = "") -> tuple[int, int]:
    try:
        t = datetime.strptime(text, "%H:%M")
    except ValueError:
        raise UsageError(f"{where}: at = {text!r} is not a time of day", hint='use "HH:MM" (UTC)') from None
    return t.hour, t.minute


def parse_schedule(data: Mapping[str, Any], *, source: str = "schedule file", ignore: frozenset[str] = frozenset(),
                   ) -> Schedule:
    """A schedule from a parsed TOML document; ``ignore`` are top-level keys that belong to others (the option
    tables of a config file, which may be the same file). Its errors name the file's keys, which are the API's
    parameters, also inside the command line."""
    with api_words():
        return _schedule(data, source, ignore)


def _schedule(data: Mapping[str, Any], source: str, ignore: frozenset[str]) -> Schedule:
    for key in data:
        if key not in config.SCHEDULE_KEYS and key not in ignore:
            raise UsageError(f"{source}: unknown key {key!r}",
                             hint="known: " + ", ".join(sorted(config.SCHEDULE_KEYS)))
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list) or not raw_jobs:
        raise UsageError(f"{source} has no jobs", hint='add [[jobs]] tables with name, source, store, collections '
                                                        'and every or at')
    jobs = tuple(_job(raw, i, source) for i, raw in enumerate(raw_jobs))
    names = [j.name for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{source}: job names must be unique; repeated: {', '.join(dupes)}")
    config.refuse_url_passwords({k: v for k, v in data.items() if k != "jobs"}, source)
    for key in config.SCHEDULE_KEYS - {"jobs"}:
        if key in data and (not isinstance(data[key], str) or not data[key]):
            raise UsageError(f"{source}: {key} must be a {'URL' if 'pushgateway' in key else 'file path'}")
    heartbeat = data.get("heartbeat")
    return Schedule(jobs, Path(heartbeat) if heartbeat else None, source,
                    metrics_textfile=data.get("metrics_textfile"), metrics_pushgateway=data.get("metrics_pushgateway"))


def load_schedule(path: Path, *, ignore: frozenset[str] = frozenset()) -> Schedule:
    return parse_schedule(config.load_toml(path), source=f"schedule file {str(path)!r}", ignore=ignore)


__all__ = ["JOB_KEYS", "Job", "Schedule", "load_schedule", "parse_schedule"]
