from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from vecbackup import config, ui
from vecbackup.cli.options import (
    Json,
    LogFormat,
    LogFormatName,
    MetricsPushgateway,
    MetricsTextfile,
    Quiet,
    setup,
)
from vecbackup.errors import PartialFailure, UsageError
from vecbackup.scheduler import Scheduler, load_schedule
from vecbackup.times import now_z


def _stamp(message: str) -> str:
    return f"{now_z('seconds')} {message}"


def schedule_cmd(
    ctx: typer.Context,
    schedule_file: Annotated[Path, typer.Argument(
        metavar="SCHEDULE_FILE", help="TOML file of [[jobs]] (docs/CONFIG.md); may be the config file.")],
    once: Annotated[bool, typer.Option("--once", help="Run every job once now, in file order, and exit (3 if any "
                                       "failed): for CronJobs sharing the file.")] = False,
    max_runtime: Annotated[float | None, typer.Option(
        "--max-runtime", metavar="SECONDS", show_default=False,
        help="Stop (exit 0) after this long, once the running job is done.")] = None,
    heartbeat: Annotated[str | None, typer.Option(
        "--heartbeat", metavar="FILE", show_default=False,
        help="Heartbeat file (JSON status of every job), instead of the file's `heartbeat`.")] = None,
    metrics_textfile: MetricsTextfile = None, metrics_pushgateway: MetricsPushgateway = None,
    json: Json = False, quiet: Quiet = False, log_format: LogFormat = LogFormatName.text,
) -> None:
    """Run backup jobs on a timetable in this process (containers without cron): one job at a time; a failing
    job is logged and the others go on; SIGTERM/SIGINT interrupt the running job (nothing committed) and exit 0."""
    setup(json, quiet, log_format)
    if max_runtime is not None and max_runtime < 0:
        raise UsageError(f"--max-runtime {max_runtime} must not be negative")
    if not schedule_file.is_file():
        raise UsageError(f"schedule file {str(schedule_file)!r} not found")
    # the file may also be the config file: its option tables are not jobs
    commands = ctx.parent.command.commands if ctx.parent is not None else {}  # type: ignore[attr-defined]
    plan = load_schedule(schedule_file, ignore=frozenset({config.DEFAULTS_TABLE, *commands}))
    plan = dataclasses.replace(plan, heartbeat=Path(heartbeat) if heartbeat else plan.heartbeat,
                               metrics_textfile=metrics_textfile or plan.metrics_textfile,
                               metrics_pushgateway=metrics_pushgateway or plan.metrics_pushgateway)
    sched = Scheduler(plan, info=lambda m: ui.say(_stamp(m)), warn=lambda m: ui.warn(_stamp(m)),
                      progress=ui.TerminalProgress)
    if once:
        failed = sched.run_all_once()
        doc = sched.document()
        ui.emit({"ok": not failed, **doc})
        if sched.stopping:
            raise KeyboardInterrupt  # -> exit 130, "interrupted"
        if failed:
            raise PartialFailure(f"{len(failed)} of {len(plan.jobs)} jobs failed: {', '.join(failed)}")
        return
    sched.loop(max_runtime)
    doc = sched.document()
    ui.emit({"ok": True, **doc})
