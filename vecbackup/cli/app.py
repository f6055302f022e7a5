"""The typer application and its root callback (the config file and the environment); the commands are
registered on it by vecbackup.cli."""

from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import config

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
