"""Where the passphrase of an encrypted store comes from (docs/SECURITY.md, "Encryption").

One of, never several at once:

    VECBACKUP_PASSPHRASE          the passphrase itself (environment only: never a flag, which ``ps`` would show)
    --passphrase-file FILE        a file holding it (VECBACKUP_PASSPHRASE_FILE), e.g. a mounted Kubernetes Secret
    --key-command CMD             a command that prints it (VECBACKUP_KEY_COMMAND): a secrets manager or KMS client,
                                  run without a shell, its output never shown

The secret is read only when a store needs it, and never kept, printed, logged or put into an error.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from vecbackup.errors import UsageError, WrongKey

ENV_PASSPHRASE = "VECBACKUP_PASSPHRASE"
ENV_PASSPHRASE_FILE = "VECBACKUP_PASSPHRASE_FILE"
ENV_KEY_COMMAND = "VECBACKUP_KEY_COMMAND"
ENV_NEW_PASSPHRASE = "VECBACKUP_NEW_PASSPHRASE"  # `key add`: the passphrase of the new key file
HOW = "set VECBACKUP_PASSPHRASE, or give --passphrase-file FILE or --key-command CMD"
_COMMAND_SECONDS = 120
_MAX_SECRET = 64 * 1024


@dataclass(frozen=True)
class Passphrase:
    """A passphrase, or where to find one. ``Passphrase()`` is none (an unencrypted store)."""

    value: str | None = field(default=None, repr=False)
    file: str | None = None
    command: str | None = None

    @classmethod
    def from_env(cls, *, file: str | None = None, command: str | None = None,
                 environ: Mapping[str, str] | None = None) -> Passphrase:
        """VECBACKUP_PASSPHRASE, with ``file`` and ``command`` (the CLI's options) or else their variables."""
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_PASSPHRASE) or None, file or env.get(ENV_PASSPHRASE_FILE) or None,
                   command or env.get(ENV_KEY_COMMAND) or None)

    @property
    def given(self) -> bool:
        return bool(self.value or self.file or self.command)

    def describe(self) -> str:
        """Where the passphrase came from, for messages (never the passphrase)."""
        if self.value:
            return "the passphrase"
        if self.file:
            return f"the passphrase in {self.file!r}"
        if self.command:
            return "the passphrase from the key command"
        return "no passphrase"

    def secret(self) -> bytes:
        """The passphrase's bytes: UsageError for a bad source, WrongKey when the key command fails."""
        given = [n for n, v in (("VECBACKUP_PASSPHRASE", self.value), ("--passphrase-file", self.file),
                                ("--key-command", self.command)) if v]
        if len(given) > 1:
            raise UsageError(f"the passphrase is given {len(given)} ways ({', '.join(given)})",
                             hint="give exactly one (unset the environment variable or drop the option)")
        if not given:
            raise WrongKey("no passphrase given", hint=HOW)
        if self.value:
            secret = self.value.encode("utf-8", "surrogateescape")
        elif self.file:
            secret = _strip_newline(_read_file(self.file))
        else:
            secret = _strip_newline(_run(self.command or ""))
        if not secret:
            raise UsageError(f"the passphrase from {self.describe()} is empty")
        return secret


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_SECRET + 1)
    except OSError as e:
        raise UsageError(f"cannot read passphrase file {path!r}: {e.strerror or type(e).__name__}",
                         hint="check --passphrase-file / VECBACKUP_PASSPHRASE_FILE") from None
    if len(data) > _MAX_SECRET:
        raise UsageError(f"passphrase file {path!r} is larger than {_MAX_SECRET // 1024} KiB: not a passphrase")
    return data


def _run(command: str) -> bytes:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise UsageError(f"cannot parse --key-command: {e}") from None
    if not argv:
        raise UsageError("--key-command is empty")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=_COMMAND_SECONDS, check=False)
    except FileNotFoundError:
        raise UsageError(f"key command {argv[0]!r} not found", hint="check --key-command / VECBACKUP_KEY_COMMAND") \
            from None
    except PermissionError:
        raise UsageError(f"key command {argv[0]!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise WrongKey(f"key command {argv[0]!r} did not finish within {_COMMAND_SECONDS}s") from None
    if done.returncode != 0:  # its output is not shown: it may hold half a secret
        raise WrongKey(f"key command {argv[0]!r} failed with exit status {done.returncode}",
                       hint="run it by hand to see why")
    if len(done.stdout) > _MAX_SECRET:
        raise UsageError(f"key command {argv[0]!r} printed more than {_MAX_SECRET // 1024} KiB: not a passphrase")
    return done.stdout


def _strip_newline(data: bytes) -> bytes:
    """One trailing newline goes (``echo`` and editors add it); everything else is the passphrase."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


__all__ = ["ENV_KEY_COMMAND", "ENV_NEW_PASSPHRASE", "ENV_PASSPHRASE", "ENV_PASSPHRASE_FILE", "Passphrase"]
