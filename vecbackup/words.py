"""How messages are worded: options in the words of the front end that was called, and counts with their nouns.

An option is named as the caller spelled it: :func:`param` reads ``batch_size=0`` to the Python API (and to the
schedule file, whose keys are the API's parameters) and ``--batch-size 0`` on the command line, which runs every
command inside :func:`cli_words`. A count agrees with its noun: ``plural(1, "object")`` is ``1 object``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: the process's, not a thread's: a message made in a worker thread speaks as its caller does
_words = {"cli": False}
_NO_VALUE = object()


@contextmanager
def cli_words() -> Iterator[None]:
    """Messages made meanwhile name options as the command line spells them (``--batch-size``), not as the API
    does (``batch_size``)."""
    before, _words["cli"] = _words["cli"], True
    try:
        yield
    finally:
        _words["cli"] = before


@contextmanager
def api_words() -> Iterator[None]:
    """Messages made meanwhile name options as the API spells them, also inside the command line (the schedule
    file's keys are the API's parameters)."""
    before, _words["cli"] = _words["cli"], False
    try:
        yield
    finally:
        _words["cli"] = before


def either(api: str, cli: str) -> str:
    """``api`` in a message made for the Python API, ``cli`` in one made for the command line."""
    return cli if _words["cli"] else api


def param(name: str, value: object = _NO_VALUE, *, flag: str | None = None, quoted: bool = False,
          of: str | None = None) -> str:
    """An option named in a message: ``batch_size`` / ``batch_size=0`` for the API (the value as a Python literal;
    ``of`` the class it is a parameter of: ``BackupOptions(batch_size=0)``), ``--batch-size`` / ``--batch-size 0``
    on the command line (``flag`` where its option is not ``--`` and the name with dashes; ``quoted``: the value in
    quotes, for one that may hold spaces; ``True``: the flag alone)."""
    if not _words["cli"]:
        said = name if value is _NO_VALUE else f"{name}={value!r}"
        return f"{of}({said})" if of else said
    flag = flag or "--" + name.replace("_", "-")
    if value is _NO_VALUE or value is True:
        return flag
    return f"{flag} {value!r}" if quoted else f"{flag} {value}"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and its noun: ``1 object``, ``0 objects``, ``2 objects``; ``nouns`` where the plural is not the noun
    and an ``s`` (``plural(n, "query", "queries")``, ``plural(n, "key is", "keys are")``)."""
    return f"{n} {number(n, noun, nouns)}"


def number(n: int, noun: str, nouns: str | None = None) -> str:
    """The noun alone, in the number ``n`` takes: ``segment`` or ``segments`` (for a list that follows it)."""
    return noun if n == 1 else nouns or noun + "s"


__all__ = ["api_words", "cli_words", "either", "number", "param", "plural"]
