"""The typer application and its root callback (the config file and the environment); the commands are
registered on it by vecbackup.cli."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from vecbackup import config


class Command(TyperCommand):
    """A command whose help reads as man pages do: ``STORE_URL`` in the usage line (typer writes ``{STORE_URL}`` for
    a required argument) and no ``<str>`` after an argument's name (its metavar says what it is); every option has
    a metavar (tests/unit/test_cli_help.py)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [re.sub(r"^\{(.*)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((record[0].split(" <", 1)[0], record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class Group(TyperGroup):
    """``vecbackup --help`` lists the commands under headings (each command's ``rich_help_panel``), in the order
    they were registered (vecbackup.cli.COMMANDS), as typer does only when it renders with rich."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        limit = formatter.width - 6 - max((len(name) for name, _ in commands), default=0)
        for name, command in commands:
            if command is None or command.hidden:
                continue
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            panels.setdefault(panel, []).append((name, command.get_short_help_str(limit)))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)


app = typer.Typer(
    name="vecbackup",
    cls=Group,
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
