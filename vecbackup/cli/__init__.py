"""The ``vecbackup`` command line: one module per command, each a thin layer over vecbackup.ops."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Annotated

import typer
from typer.exceptions import TyperException

from vecbackup import config, ui
from vecbackup.errors import EXIT_INTERRUPTED, VecbackupError

app = typer.Typer(
    name="vecbackup",
    help="Back up and restore vector-database collections (Milvus, Qdrant) to a folder, S3 or Azure Blob Storage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # every option also from VECBACKUP_<COMMAND>_<OPTION> (click's own lookup); docs/CONFIG.md
    context_settings={"auto_envvar_prefix": config.ENV_PREFIX},
)


@app.callback()
def _root(
    ctx: typer.Context,
    config_file: Annotated[str | None, typer.Option(
        "--config", envvar=config.ENV_CONFIG, metavar="FILE", show_default=False,
        help="TOML file of option defaults ([defaults] and one table per command; docs/CONFIG.md). Default: "
             "./vecbackup.toml if present.")] = None,
) -> None:
    # precedence: flags > environment > config file > built-in defaults. The file becomes click's default_map
    # (below the environment, which click reads itself); secrets only from the environment or *_file keys
    group = ctx.command
    commands = config.command_options(group)
    for name, params in config.env_names(commands).items():  # VECBACKUP_BACKUP_ALL, not ..._ALL_
        for p in group.commands[name].params:  # type: ignore[attr-defined]
            if p.name in params:
                p.envvar = params[p.name]
    ctx.default_map = config.build_default_map(config.find_config(config_file), commands)

# register the commands (each module adds itself to `app`)
from vecbackup.cli import (  # noqa: E402,F401
    backup_cmd,
    collections_cmd,
    delete_cmd,
    drill_cmd,
    gc_cmd,
    list_cmd,
    prune_cmd,
    restore_cmd,
    schedule_cmd,
    show_cmd,
    unlock_cmd,
    verify_cmd,
    version_cmd,
)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (used by main and tests)."""
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
        if show is not None:
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


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (cron timeouts, Kubernetes) unwinds like Ctrl-C: a backup commits nothing, a restore
    # drops its staging collection
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run(sys.argv[1:]))
