"""Option values from a config file and the environment (docs/CONFIG.md).

Precedence, highest first: command-line flags > environment variables > the config file > built-in defaults.
The CLI feeds what this module builds into click's own machinery (typer's vendored click): the config file
becomes the context's ``default_map`` (one table per command), environment variables are click's
``auto_envvar_prefix`` names (``VECBACKUP_<COMMAND>_<OPTION>``) plus the explicit ones some options name
(``VECBACKUP_MILVUS_TOKEN``).

The config file (TOML)::

    [defaults]            # every command that has the option
    lock_wait = 30
    [backup]              # one table per command; beats [defaults]
    batch_size = 2000
    token_file = "/var/run/secrets/milvus-token"   # secrets only by reference

Secrets (tokens, passwords, API keys, cloud keys) are never read from the file: a file holding one is refused.
A secret option ``X`` takes ``X_file = "/path"`` instead, read only when a command uses it, and the environment
variable of a secret option also has a ``_FILE`` twin (``VECBACKUP_MILVUS_TOKEN_FILE``) for mounted secrets.

No I/O at import; no printing. Errors are UsageError (exit 2), one line, naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecbackup.errors import UsageError

ENV_PREFIX = "VECBACKUP"
ENV_CONFIG = "VECBACKUP_CONFIG"
DEFAULT_FILE = "vecbackup.toml"
DEFAULTS_TABLE = "defaults"
#: top-level keys that belong to ``vecbackup schedule`` (one file may hold both); the option loader skips them
SCHEDULE_KEYS = frozenset({"jobs", "heartbeat", "metrics_textfile", "metrics_pushgateway"})
#: options that are secrets: ``<option>_file`` in the config file, ``<ENVVAR>_FILE`` in the environment
SECRET_OPTIONS = frozenset({"token", "password", "api_key"})
#: a config key naming one of these is a secret (words of the key, split at ``_``) ...
_SECRET_WORDS = frozenset({"token", "password", "passwd", "passphrase", "secret", "secrets", "credential",
                           "credentials", "sas", "apikey"})
#: ... or containing one of these
_SECRET_PARTS = ("api_key", "access_key", "account_key", "connection_string", "private_key")


@dataclass(frozen=True)
class OptionInfo:
    """One option of one command, as the config file and the environment name it."""

    key: str  # config key: the long flag without dashes, ``-`` -> ``_`` (``--batch-size`` -> ``batch_size``)
    param: str  # click's parameter name (``all_`` for ``--all``): the key of the default_map
    multiple: bool = False
    flag: bool = False
    envvar: str | None = None  # an explicit environment variable the option names (VECBACKUP_MILVUS_TOKEN)

    def auto_envvar(self, command: str) -> str:
        return f"{ENV_PREFIX}_{command.upper()}_{self.key.upper()}".replace("-", "_")


#: command name -> config key -> option
CommandOptions = Mapping[str, Mapping[str, OptionInfo]]


def command_options(group: Any) -> dict[str, dict[str, OptionInfo]]:
    """The options of every command of a click/typer group (``typer.main.get_command(app)``)."""
    out: dict[str, dict[str, OptionInfo]] = {}
    for name, cmd in sorted(group.commands.items()):
        opts: dict[str, OptionInfo] = {}
        for p in cmd.params:
            if p.param_type_name != "option" or not p.name:
                continue
            longs = [o for o in p.opts if o.startswith("--")]
            if not longs:
                continue
            key = longs[0][2:].replace("-", "_")
            envvar = p.envvar if isinstance(p.envvar, str) else None
            opts[key] = OptionInfo(key, p.name, bool(getattr(p, "multiple", False)),
                                   bool(getattr(p, "is_flag", False)), envvar)
        out[name] = opts
    return out


def is_secret_key(key: str) -> bool:
    """``token``, ``password``, ``api_key``, ``aws_secret_access_key``, ``azure_storage_connection_string``...;
    never a ``*_file`` key (which names where a secret is, not the secret)."""
    k = key.lower().replace("-", "_")
    if k.endswith("_file"):
        return False
    return bool(_SECRET_WORDS & set(k.split("_"))) or any(p in k for p in _SECRET_PARTS)


def find_config(explicit: str | os.PathLike[str] | None, cwd: Path | None = None) -> Path | None:
    """The config file: ``--config`` / VECBACKUP_CONFIG (``explicit``; must exist), else ./vecbackup.toml if
    present, else none."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise UsageError(f"config file {str(p)!r} not found",
                             hint="check --config / VECBACKUP_CONFIG, or unset it")
        return p
    p = (cwd or Path.cwd()) / DEFAULT_FILE
    return p if p.is_file() else None


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {str(path)!r} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:  # tomllib decodes the bytes itself
        raise UsageError(f"config file {str(path)!r} is not valid TOML: not UTF-8 at byte {e.start}") from None
    except RecursionError:
        raise UsageError(f"config file {str(path)!r} is not valid TOML: arrays or tables nested too deep") from None
    except OSError as e:
        raise UsageError(f"cannot read config file {str(path)!r}: {e.strerror or e}") from None


def refuse_secrets(table: Mapping[str, Any], where: str) -> None:
    """UsageError if any key of ``table`` is a secret."""
    for key in table:
        if is_secret_key(key):
            raise UsageError(f"{where}: {key!r} is a secret and is never read from a config file",
                             hint=f"set it in the environment, or use {key}_file = \"/path/to/file\" "
                                  "holding it" if key.replace("-", "_") in SECRET_OPTIONS
                             else "set it in the environment")


def refuse_url_passwords(table: Mapping[str, Any], where: str) -> None:
    """UsageError if a value of ``table`` is a URL with a password in it (``milvus://user:pw@host``)."""
    from urllib.parse import urlsplit

    for key, value in table.items():
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, str) or "://" not in v or "@" not in v:
                continue
            try:
                has_password = urlsplit(v).password is not None
            except ValueError:
                has_password = True
            if has_password:
                raise UsageError(f"{where}: {key!r} holds a URL with a password, and secrets are never read from a "
                                 "config file", hint="leave the password out of the URL and set it in the environment")


def secret_from_file(path: str, what: str) -> str:
    """The secret in ``path`` (a mounted secret: the whole file, without its trailing newline)."""
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as e:
        raise UsageError(f"cannot read {what} {path!r}: {e.strerror or e}") from None


def _lazy_secret(path: str, what: str) -> Callable[[], str]:
    # read only when the command uses it; click shows a callable default as "(dynamic)" in --help
    def read() -> str:
        return secret_from_file(path, what)

    return read


def _check_value(value: Any, opt: OptionInfo, where: str) -> Any:
    if opt.multiple:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            raise UsageError(f"{where}: {opt.key} must be a list (or one value)")
        return list(value)
    if opt.flag:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {opt.key} must be true or false (got {value!r})")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"{where}: {opt.key} must be a string or a number (got {value!r})")
    return value


def _table(name: str, values: Any, known: Mapping[str, OptionInfo], source: str) -> dict[str, Any]:
    """``param -> value`` for one table, checked against the options ``known`` takes."""
    where = f"{source} [{name}]"
    if not isinstance(values, dict):
        raise UsageError(f"{where} must be a table of options")
    refuse_secrets(values, where)
    refuse_url_passwords(values, where)
    out: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key.endswith("_file") and key[: -len("_file")] in SECRET_OPTIONS:
            opt = known.get(key[: -len("_file")])
            if opt is None:
                raise UsageError(f"{where}: unknown option {raw_key!r}",
                                 hint="known: " + ", ".join(_known_keys(known)))
            if not isinstance(value, str) or not value:
                raise UsageError(f"{where}: {raw_key} must be a file path")
            out[opt.param] = _lazy_secret(value, f"{raw_key} of {where}")
            continue
        opt = known.get(key)
        if opt is None:
            raise UsageError(f"{where}: unknown option {raw_key!r}", hint="known: " + ", ".join(_known_keys(known)))
        out[opt.param] = _check_value(value, opt, where)
    return out


def _known_keys(known: Mapping[str, OptionInfo]) -> list[str]:
    keys = []
    for k in sorted(known):
        keys.append(f"{k}_file" if k in SECRET_OPTIONS else k)
    return keys


def file_defaults(data: Mapping[str, Any], commands: CommandOptions, *, source: str = "config file",
                  ignore: Iterable[str] = SCHEDULE_KEYS) -> dict[str, dict[str, Any]]:
    """The default_map of a parsed config file: ``{command: {param: value}}``. ``[defaults]`` applies to every
    command that has the option (an option no command has is an error); a command's own table beats it."""
    skip = set(ignore)
    everything: dict[str, OptionInfo] = {}
    for opts in commands.values():
        everything.update(opts)
    for key in data:
        if key in skip or key == DEFAULTS_TABLE or key in commands:
            continue
        tables = ", ".join([f"[{DEFAULTS_TABLE}]"] + [f"[{c}]" for c in sorted(commands)])
        if isinstance(data[key], dict):
            shown = key if key.isprintable() else repr(key)  # a quoted TOML key may hold a newline
            raise UsageError(f"{source}: unknown table [{shown}]", hint=f"known: {tables}")
        refuse_secrets({key: None}, source)
        raise UsageError(f"{source}: {key!r} is outside any table", hint=f"put options in one of {tables}")
    defaults = _table(DEFAULTS_TABLE, data.get(DEFAULTS_TABLE, {}), everything, source)
    out: dict[str, dict[str, Any]] = {}
    for name, opts in commands.items():
        params = {o.param for o in opts.values()}
        merged = {p: v for p, v in defaults.items() if p in params}
        if name in data:
            merged.update(_table(name, data[name], opts, source))
        if merged:
            out[name] = merged
    return out


def env_secret_files(commands: CommandOptions, environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``VECBACKUP_MILVUS_TOKEN_FILE=/path`` (and the like, for every secret option's environment variable):
    the secret read from that file, unless the variable itself is set."""
    out: dict[str, dict[str, Any]] = {}
    for name, opts in commands.items():
        for key in SECRET_OPTIONS:
            opt = opts.get(key)
            if opt is None:
                continue
            for var in [v for v in (opt.envvar, opt.auto_envvar(name)) if v]:
                if environ.get(var):
                    break  # the variable itself wins; click reads it
                path = environ.get(f"{var}_FILE")
                if path:
                    out.setdefault(name, {})[opt.param] = _lazy_secret(path, f"{var}_FILE")
                    break
    return out


def build_default_map(config: Path | None, commands: CommandOptions,
                      environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Everything below the flags and the plain environment variables (which click reads itself): the
    config file, overridden by ``*_FILE`` environment variables of secrets."""
    env = os.environ if environ is None else environ
    out = file_defaults(load_toml(config), commands, source=f"config file {str(config)!r}") if config else {}
    for name, values in env_secret_files(commands, env).items():
        out.setdefault(name, {}).update(values)
    return out


def env_names(commands: CommandOptions) -> dict[str, dict[str, str]]:
    """``{command: {param: VECBACKUP_<COMMAND>_<KEY>}}`` for options whose click name differs from their flag
    (``all_`` for ``--all``), so the variable is named after the flag; click's own ``auto_envvar_prefix``
    names the others the same way."""
    out: dict[str, dict[str, str]] = {}
    for name, opts in commands.items():
        for opt in opts.values():
            if opt.envvar is None and opt.param != opt.key:
                out.setdefault(name, {})[opt.param] = opt.auto_envvar(name)
    return out
