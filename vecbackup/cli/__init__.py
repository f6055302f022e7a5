"""The ``vecbackup`` command line: one module per command, each a thin layer over the Python API (vecbackup.api);
this module registers them on the typer app (cli/app.py) and runs it."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import typer
from typer.exceptions import TyperException

from vecbackup import ui
from vecbackup.cli import (
    backup_cmd,
    collections_cmd,
    commit_cmd,
    delete_cmd,
    drill_cmd,
    gc_cmd,
    init_cmd,
    list_cmd,
    prune_cmd,
    restore_cmd,
    schedule_cmd,
    show_cmd,
    stats_cmd,
    undelete_cmd,
    unlock_cmd,
    verify_cmd,
    version_cmd,
)
from vecbackup.cli.app import Command, app
from vecbackup.cli.key_cmd import key_app as _key_app
from vecbackup.errors import EXIT_INTERRUPTED, VecbackupError
from vecbackup.words import cli_words

#: every command, under the heading and in the order `vecbackup --help` lists them; each module only defines its
#: function
PANELS: dict[str, dict[str, Callable[..., Any]]] = {
    "Back up": {"backup": backup_cmd.backup, "commit": commit_cmd.commit, "schedule": schedule_cmd.schedule_cmd},
    "Restore and check": {"restore": restore_cmd.restore, "drill": drill_cmd.drill, "verify": verify_cmd.verify},
    "Inspect": {"list": list_cmd.list_backups, "show": show_cmd.show, "stats": stats_cmd.stats,
                "collections": collections_cmd.collections},
    "Clean up": {"prune": prune_cmd.prune_cmd, "delete": delete_cmd.delete, "gc": gc_cmd.gc,
                 "unlock": unlock_cmd.unlock, "undelete": undelete_cmd.undelete},
    "Set up a store": {"init": init_cmd.init},  # and `key` (below)
    "Other": {"version": version_cmd.version},
}
COMMANDS: dict[str, Callable[..., Any]] = {name: fn for commands in PANELS.values() for name, fn in commands.items()}
for _panel, _commands in PANELS.items():
    for _name, _command in _commands.items():
        app.command(_name, cls=Command, rich_help_panel=_panel)(_command)
app.add_typer(_key_app, rich_help_panel="Set up a store")  # key add|list|remove


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (used by main and tests). Its messages name options
    as flags (``--batch-size``), where the API's name its parameters (vecbackup.words.param)."""
    with cli_words():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    ui.configure()
    try:
        rv = app(args=argv, prog_name="vecbackup", standalone_mode=False)
        if rv == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a returned 130; no command returns it
            ui.error("interrupted; nothing was committed by the interrupted step", EXIT_INTERRUPTED)
        return rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except TyperException as e:  # usage errors (bad option, missing argument): exit 2
        show = getattr(e, "show", None)
        if _asks_json(argv if argv is not None else sys.argv[1:]):  # one JSON document and one error line
            ui.configure(json=True)
            ctx = getattr(e, "ctx", None)
            where = f" (`{ctx.command_path} --help` lists the options)" if ctx is not None else ""
            ui.error(" ".join(e.format_message().split()) + where, e.exit_code)
        elif show is not None:
            show()
        else:
            ui.error(e.message, e.exit_code)
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        ui.error("interrupted; nothing was committed by the interrupted step", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except VecbackupError as e:
        ui.error(str(e), e.exit_code)
        return e.exit_code


def _asks_json(argv: list[str]) -> bool:
    """Whether the command line asks for --json (before a ``--``), for errors click raises before the command runs."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (cron timeouts, Kubernetes) unwinds like Ctrl-C: a backup commits nothing, a restore
    # drops its staging collection
    raise KeyboardInterrupt


#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
#: buffers up to this size come from the heap and are used again once freed (glibc's own ceiling for it)
MMAP_THRESHOLD = 32 << 20
#: free memory a heap keeps before it is given back to the system
TRIM_THRESHOLD = 256 << 20
#: Python's collector runs after this many allocations not yet freed (700 by default)
GC_THRESHOLD = 100_000


def _tune_memory(arenas: int = 2) -> None:
    """For the command line only (a program that imports vecbackup keeps its own settings):

    * glibc gives each thread that allocates its own malloc arena, and freed batch buffers stay in them: with the
      reading, encoding and gRPC threads, a backup's peak RSS crept up with the collection size (+26 MiB from 50,000
      to 400,000 rows of 768-d vectors; +11 MiB with 2 arenas): MALLOC_ARENA_MAX=2.
    * A batch's buffers (a vector column of 5,000 × 768 floats is 15 MB, its shuffled copy and its compressed frame
      as much again) are above glibc's starting mmap threshold, so each was mapped, zeroed page by page by the
      kernel and unmapped again, batch after batch: a third of a segment backup's CPU time was the kernel's. Served
      from the heap and kept there for the next batch (MALLOC_MMAP_THRESHOLD_ 32 MiB, MALLOC_TRIM_THRESHOLD_
      256 MiB), a segment backup of 1,000,000 × 768-d took 8.5-8.9 s of system time instead of 11.7-13.5 and
      18.3-18.6 s of wall time instead of 23.0-25.8 (runs alternated on one server; docs/SCALING.md). Memory stays
      bounded by the batch, since what is freed is used again: 606-608 MiB at its peak instead of 567-572.
    * Python's cyclic collector ran every 700 allocations over a batch's objects (about 7% of the CPU time): every
      100,000 (cycles are rare here; they are still collected).

    Each one only where the environment does not set it; nothing where there is no glibc."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    for env, param, value in (("MALLOC_ARENA_MAX", M_ARENA_MAX, arenas),
                              ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                              ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        if env not in os.environ:
            mallopt(param, value)


def main() -> None:
    _tune_memory()
    signal.signal(signal.SIGTERM, _terminate)
    code = run(sys.argv[1:])
    # The interpreter's exit runs the cyclic collector over every object still alive, the modules' own included:
    # with pymilvus imported (pandas, pyarrow's compute functions) that was 0.5-0.6 s of CPU time at the end of every
    # command (`python -c "import pymilvus, vecbackup.cli"` exits in 0.77-0.85 s frozen, 1.53-1.78 s not). Nothing
    # waits on that collection: atexit handlers (temporary folders, worker pools) still run, and every file a
    # command writes is closed by its owner before run() returns.
    gc.freeze()
    sys.exit(code)
