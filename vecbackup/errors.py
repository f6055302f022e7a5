"""One error hierarchy; every class carries the process exit code it maps to.

    VecbackupError ............................ 1  anything else that went wrong
    ├── RowCountMismatch ...................... 1  a restored copy does not hold the backup's rows (the target is
    │                                              left as it was)
    ├── UsageError ............................ 2  bad URL, bad option value, bad config
    ├── PartialFailure ........................ 3  some collections done, others failed
    ├── NotFound .............................. 4  unknown collection, backup or store path
    ├── AlreadyExists ......................... 5  target collection exists (see --drop-existing)
    ├── Unreachable ........................... 6  server or store cannot be reached / refused us
    ├── CorruptData ........................... 7  a data object or manifest fails its checksum or decoding
    ├── MissingData ........................... 8  a data object the manifest lists is not in the store
    ├── Unsupported ........................... 9  format version, index or type the target cannot take
    ├── TargetRejected ........................ 10 the target refused the schema or rows (a parameter it needs is
    │                                              missing, a value breaks a limit, a name breaks its rules)
    ├── Locked ................................ 11 another run holds a conflicting lock on the store
    ├── DrillFailed ........................... 12 a recovery drill ran and at least one of its checks failed
    ├── WrongKey .............................. 13 an encrypted store: no passphrase given, the one given opens
    │                                              none of its key files, or the key command failed
    ├── (CorruptData) AuthenticationFailed .... 14 an encrypted object or manifest was changed, damaged or
    │                                              swapped: it fails authentication (nothing of it is used)
    └── (130 is "interrupted": Ctrl-C or SIGTERM)

The CLI prints ``error: <message>`` on one line and exits with ``exit_code``.
Messages name what is wrong and how to fix it, and never carry a secret.
docs/EXIT_CODES.md is the user-facing copy of this table.
"""

from __future__ import annotations

from vecbackup.words import param

EXIT_OK = 0
EXIT_INTERRUPTED = 130


class VecbackupError(Exception):
    """Something went wrong."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class RowCountMismatch(VecbackupError):
    """A restored copy does not hold the backup's number of rows (found before it took the target's place)."""

    def __init__(self, message: str, *, rows: int, expected: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.rows, self.expected = rows, expected


class UsageError(VecbackupError):
    """An argument, URL or option value is not valid."""

    exit_code = 2


class PartialFailure(VecbackupError):
    """Some of the requested collections failed; the others succeeded."""

    exit_code = 3


class NotFound(VecbackupError):
    """A collection, backup or store location does not exist."""

    exit_code = 4


class AlreadyExists(VecbackupError):
    """The target already exists and we were not asked to replace it."""

    exit_code = 5


class Unreachable(VecbackupError):
    """A server or store could not be reached, or refused the credentials."""

    exit_code = 6


class CorruptData(VecbackupError):
    """Stored bytes fail their checksum or cannot be decoded."""

    exit_code = 7


class MissingData(VecbackupError):
    """An object the manifest lists is not in the store."""

    exit_code = 8


class Unsupported(VecbackupError):
    """The format version, index type or field type is not supported here."""

    exit_code = 9


class TargetRejected(VecbackupError):
    """The target server refused (or would refuse) the collection's schema, name or rows: a parameter it requires
    is missing or a value breaks one of its limits. The message names the field and the option that fixes it."""

    exit_code = 10


class Locked(VecbackupError):
    """Another vecbackup run holds a conflicting lock on the store."""

    exit_code = 11


class DrillFailed(VecbackupError):
    """A disaster-recovery drill ran to the end and at least one of its checks failed."""

    exit_code = 12


class WrongKey(VecbackupError):
    """The store is encrypted and no passphrase was given, the passphrase opens none of its key files (or not the
    one --key-id names, or none the bounded search tried), or the command that supplies it failed."""

    exit_code = 13


class AuthenticationFailed(CorruptData):
    """An object or manifest of an encrypted store fails authentication: changed, damaged, or swapped with
    another. A CorruptData with its own exit code: tampering is told apart from a wrong key and plain damage."""

    exit_code = 14


EXIT_LOCKED = Locked.exit_code


def check_whole(name: str, value: object, low: int, high: int | None = None, *, of: str | None = None,
                flag: str | None = None, optional: bool = False) -> None:
    """UsageError naming option ``name`` of class ``of`` (``flag`` on the command line: vecbackup.words.param)
    unless ``value`` is a whole number from ``low`` to ``high`` (``optional``: or None): what an option class checks
    when it is made."""
    _check_range(name, value, low, high, whole=True, of=of, flag=flag, optional=optional)


def check_number(name: str, value: object, low: float, high: float | None = None, *, of: str | None = None,
                 flag: str | None = None, optional: bool = False, hint: str | None = None) -> None:
    """As :func:`check_whole`, for a number that may have a fraction (``hint``: instead of the range's)."""
    _check_range(name, value, low, high, whole=False, of=of, flag=flag, optional=optional, hint=hint)


def _check_range(name: str, value: object, low: float, high: float | None, *, whole: bool, of: str | None,
                 flag: str | None, optional: bool, hint: str | None = None) -> None:
    if optional and value is None:
        return
    kinds = (int,) if whole else (int, float)
    if (not isinstance(value, kinds) or isinstance(value, bool) or not low <= value
            or (high is not None and value > high)):
        noun, fmt = ("a whole number", "") if whole else ("a number", "g")
        raise UsageError(f"{param(name, value, of=of, flag=flag)} is out of range",
                         hint=hint or (f"use {noun} from {low:{fmt}} to {high:{fmt}}" if high is not None else
                                       f"use {noun}, {low:{fmt}} or more"))


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "AlreadyExists",
    "AuthenticationFailed",
    "CorruptData",
    "DrillFailed",
    "Locked",
    "MissingData",
    "NotFound",
    "PartialFailure",
    "TargetRejected",
    "Unreachable",
    "Unsupported",
    "UsageError",
    "VecbackupError",
    "WrongKey",
    "check_number",
    "check_whole",
]
