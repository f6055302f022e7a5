"""``vecbackup schedule``: back up on a timetable in one long-running process (containers without cron).

* :mod:`.jobs`: the schedule file (``[[jobs]]`` with ``every`` / ``at``, retention, secrets by file);
* :mod:`.run`: one run of one job, through the Python API (vecbackup.api), recorded in the metrics;
* :mod:`.loop`: the loop, one job at a time, signals, the heartbeat file.
"""

from __future__ import annotations

from vecbackup.scheduler.jobs import JOB_KEYS, Job, Schedule, load_schedule, parse_schedule
from vecbackup.scheduler.loop import JobState, Scheduler
from vecbackup.scheduler.run import run_job

__all__ = ["JOB_KEYS", "Job", "JobState", "Schedule", "Scheduler", "load_schedule", "parse_schedule", "run_job"]
