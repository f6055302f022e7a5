"""Where the passphrase of an encrypted store comes from (docs/SECURITY.md, "Encryption").

One of, never several at once:

    VECBACKUP_PASSPHRASE          the passphrase itself (environment only: never a flag, which ``ps`` would show)
    --passphrase-file FILE        a file holding it (VECBACKUP_PASSPHRASE_FILE), e.g. a mounted Kubernetes Secret
    --key-command CMD             a command that prints it (VECBACKUP_KEY_COMMAND): a secrets manager or KMS client,
                                  run without a shell, its output never shown

The secret is read only when a store needs it, and never kept, printed, logged or put into an error.

A key command runs in a minimal environment (:func:`key_command_environment`, docs/SECURITY.md "Key commands"):
what any program needs, the variables of common secrets-manager clients, and the names VECBACKUP_KEY_COMMAND_ENV
adds; never a passphrase or another secret vecbackup reads itself.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from vecbackup.errors import UsageError, WrongKey
from vecbackup.words import either, param

ENV_PASSPHRASE = "VECBACKUP_PASSPHRASE"
ENV_PASSPHRASE_FILE = "VECBACKUP_PASSPHRASE_FILE"
ENV_KEY_COMMAND = "VECBACKUP_KEY_COMMAND"
ENV_KEY_ID = "VECBACKUP_KEY_ID"  # the key file to try (id or unique prefix), instead of searching them
ENV_NEW_PASSPHRASE = "VECBACKUP_NEW_PASSPHRASE"  # `key add`: the passphrase of the new key file
ENV_KEY_COMMAND_ENV = "VECBACKUP_KEY_COMMAND_ENV"  # more variables for key commands: NAME,PREFIX*,-NAME


def how() -> str:
    """How to give a passphrase, in the caller's words (vecbackup.words)."""
    return either("pass passphrase=Passphrase(...) or set VECBACKUP_PASSPHRASE",
                  "set VECBACKUP_PASSPHRASE, or give --passphrase-file FILE or --key-command CMD")

_COMMAND_SECONDS = 120
_MAX_SECRET = 64 * 1024


@dataclass(frozen=True)
class Passphrase:
    """A passphrase, or where to find one. ``Passphrase()`` is none (an unencrypted store). ``key_id``: the key file
    it opens (its id or a unique prefix), the only one then tried (docs/SECURITY.md, "Key files")."""

    value: str | None = field(default=None, repr=False)
    file: str | None = None
    command: str | None = None
    key_id: str | None = None

    @classmethod
    def from_env(cls, *, file: str | None = None, command: str | None = None, key_id: str | None = None,
                 environ: Mapping[str, str] | None = None) -> Passphrase:
        """VECBACKUP_PASSPHRASE, with ``file``, ``command`` and ``key_id`` (the CLI's options) or else their
        variables."""
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_PASSPHRASE) or None, file or env.get(ENV_PASSPHRASE_FILE) or None,
                   command or env.get(ENV_KEY_COMMAND) or None, key_id or env.get(ENV_KEY_ID) or None)

    @classmethod
    def for_new_key(cls, *, file: str | None = None, command: str | None = None,
                    environ: Mapping[str, str] | None = None) -> Passphrase:
        """The passphrase of a new key file (``key add``): VECBACKUP_NEW_PASSPHRASE, ``file`` or ``command``; never
        the variables of the passphrase that opens the store."""
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_NEW_PASSPHRASE) or None, file, command)

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
        given = [n for n, v in (("VECBACKUP_PASSPHRASE", self.value), (param("file", flag="--passphrase-file"),
                                                                       self.file),
                                (param("command", flag="--key-command"), self.command)) if v]
        if len(given) > 1:
            raise UsageError(f"the passphrase is given {len(given)} ways: {' and '.join(given)}",
                             hint="give exactly one: unset the environment variable or drop the option")
        if not given:
            raise WrongKey("no passphrase given", hint=how())
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
                         hint=f"check {param('file', flag='--passphrase-file')} / VECBACKUP_PASSPHRASE_FILE") from None
    if len(data) > _MAX_SECRET:
        raise UsageError(f"passphrase file {path!r} is larger than {_MAX_SECRET // 1024} KiB: not a passphrase")
    return data


# -- the environment of a key command --------------------------------------------------------------------------

#: variables every key command gets (when set): where programs are, who runs them, locale, time zone, temporary
#: files, the session bus and GnuPG (secret-tool, pass), kubectl's config, proxies and CA bundles, and the managed
#: identity endpoints of Azure
KEY_COMMAND_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "DBUS_SESSION_BUS_ADDRESS",
    "GNUPGHOME", "GPG_AGENT_INFO", "KUBECONFIG",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
})
#: prefixes of variables every key command gets: the locale's LC_*, and the settings and credentials of common
#: secrets-manager and cloud clients (HashiCorp Vault and OpenBao, AWS, Azure, Google Cloud, 1Password, Bitwarden,
#: Doppler, Infisical, SOPS, pass, Akeyless, CyberArk Conjur)
KEY_COMMAND_PREFIXES = ("LC_", "VAULT_", "BAO_", "AWS_", "AZURE_", "GOOGLE_", "CLOUDSDK_", "OP_", "BWS_", "BW_",
                        "DOPPLER_", "INFISICAL_", "SOPS_", "PASSWORD_STORE_", "AKEYLESS_", "CONJUR_")
#: never given to a key command, whatever VECBACKUP_KEY_COMMAND_ENV says: vecbackup's own variables (the
#: passphrases, database tokens and passwords, API keys) and the secrets it reads under other names (Milvus and
#: Qdrant credentials, the Azure storage account's key, SAS token and connection string)
KEY_COMMAND_NEVER_PREFIXES = ("VECBACKUP_",)
KEY_COMMAND_NEVER = frozenset({"MILVUS_TOKEN", "MILVUS_USER", "MILVUS_PASSWORD", "QDRANT_API_KEY",
                               "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING"})
_ENV_ENTRY = re.compile(r"^(-?)([A-Za-z_][A-Za-z0-9_]*)?(\*?)$")


def _never(name: str) -> bool:
    return name in KEY_COMMAND_NEVER or name.startswith(KEY_COMMAND_NEVER_PREFIXES)


def key_command_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a key command runs in: the variables of ``environ`` (default: ours) that KEY_COMMAND_NAMES
    or KEY_COMMAND_PREFIXES name, changed by VECBACKUP_KEY_COMMAND_ENV (comma-separated ``NAME`` or ``PREFIX*`` to
    add, ``-NAME`` or ``-PREFIX*`` to withhold), never one of KEY_COMMAND_NEVER(_PREFIXES), even when a prefix
    covers it. UsageError for an entry that is no variable name, or that names only variables never given."""
    env = os.environ if environ is None else environ
    names, prefixes = set(KEY_COMMAND_NAMES), list(KEY_COMMAND_PREFIXES)
    drop_names: set[str] = set()
    drop_prefixes: list[str] = []
    for entry in filter(None, (e.strip() for e in env.get(ENV_KEY_COMMAND_ENV, "").split(","))):
        m = _ENV_ENTRY.fullmatch(entry)
        if m is None or not (m.group(2) or m.group(3)):
            raise UsageError(f"{ENV_KEY_COMMAND_ENV}: {entry!r} is not a variable name (NAME, PREFIX*, -NAME)")
        minus, name, star = m.group(1), m.group(2) or "", m.group(3)
        if minus:
            if star:
                drop_prefixes.append(name)
            else:
                drop_names.add(name)
            continue
        if name.startswith(KEY_COMMAND_NEVER_PREFIXES) if star else _never(name):
            raise UsageError(f"{ENV_KEY_COMMAND_ENV} names {entry}, which is never given to a key command",
                             hint="vecbackup's own variables and the database and storage secrets it reads stay "
                                  "with vecbackup (docs/SECURITY.md, \"Key commands\")")
        if star:
            prefixes.append(name)
        else:
            names.add(name)
    return {k: v for k, v in env.items()
            if (k in names or k.startswith(tuple(prefixes))) and k not in drop_names
            and not k.startswith(tuple(drop_prefixes)) and not _never(k)}


def _run(command: str) -> bytes:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise UsageError(f"cannot parse {param('command', flag='--key-command')}: {e}") from None
    if not argv:
        raise UsageError(f"{param('command', flag='--key-command')} is empty")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=key_command_environment(), timeout=_COMMAND_SECONDS, check=False)
    except FileNotFoundError:
        raise UsageError(f"key command {argv[0]!r} not found",
                         hint=f"check {param('command', flag='--key-command')} / VECBACKUP_KEY_COMMAND") from None
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


__all__ = ["ENV_KEY_COMMAND", "ENV_KEY_COMMAND_ENV", "ENV_KEY_ID", "ENV_NEW_PASSPHRASE", "ENV_PASSPHRASE",
           "ENV_PASSPHRASE_FILE",
           "KEY_COMMAND_NAMES", "KEY_COMMAND_NEVER", "KEY_COMMAND_NEVER_PREFIXES", "KEY_COMMAND_PREFIXES", "Passphrase",
           "key_command_environment"]
