"""The config file and the schedule file (config.py, scheduler/jobs.py): any file content gives a UsageError with a
one-line message, or option defaults and jobs whose durations the scheduler can add to the clock."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fuzz._common import CONFIG, Bug, allow
from vecbackup import config
from vecbackup.errors import UsageError
from vecbackup.scheduler import parse_schedule

MAX_LEN = 4096
_STATE: dict[str, Any] = {}


def seeds() -> list[bytes]:
    return [CONFIG, b"[defaults]\nlock_wait = 1\n", b'[[jobs]]\nname = "x"\nevery = "1h"\n', b"a = [[[1]]]\n",
            b'["quoted table"]\n"quoted key" = "\\u0041"\n']


def _setup() -> tuple[Path, Any]:
    if not _STATE:
        import typer.main

        from vecbackup.cli import app

        folder = os.environ.get("VECBACKUP_FUZZ_WORKDIR") or tempfile.mkdtemp(prefix="vecbackup-fuzz-")
        _STATE["path"] = Path(folder) / "vecbackup.toml"
        _STATE["commands"] = config.command_options(typer.main.get_command(app))
    return _STATE["path"], _STATE["commands"]


def one_input(data: bytes) -> None:
    path, commands = _setup()
    path.write_bytes(data)
    allow((UsageError,), config.build_default_map, path, commands, {})
    doc = allow((UsageError,), config.load_toml, path)
    if doc is None:
        return
    schedule = allow((UsageError,), parse_schedule, doc, ignore=frozenset({config.DEFAULTS_TABLE, *commands}))
    for job in schedule.jobs if schedule is not None else ():
        now = datetime.now(UTC)
        if not (job.interval >= 1 and now + timedelta(seconds=job.interval) > now):
            raise Bug(f"job {job.name!r} runs every {job.interval} s")
        if job.policy is not None:
            job.policy.describe()


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("config")
