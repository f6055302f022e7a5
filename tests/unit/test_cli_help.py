"""`--help` reads as a man page does (issue 23): every option shows a metavar, not typer's `<list[str]>` or `<int>`;
the usage line names required arguments as NAME, not `{NAME}`; `vecbackup --help` lists the commands under
headings, in the order of a backup's life."""

from __future__ import annotations

import re
from typing import Any

import pytest

from vecbackup.cli import COMMANDS, PANELS

HELPS = [*([name] for name in COMMANDS), ["key", "add"], ["key", "list"], ["key", "remove"]]
#: an option or argument followed by typer's type display: `--batch-size <int>`, `SOURCE_URL <str>`
TYPE_SHOWN = re.compile(r"(?:--[a-z][a-z-]*|^\s+[A-Z_]+)\s<[^>]+>", re.MULTILINE)


@pytest.mark.parametrize("args", HELPS, ids=[" ".join(a) for a in HELPS])
def test_help_shows_metavars_and_plain_usage(cli: Any, args: list[str]) -> None:
    r = cli(*args, "--help")
    assert r.code == 0, r.stderr
    assert not TYPE_SHOWN.findall(r.stdout), TYPE_SHOWN.findall(r.stdout)
    usage = r.stdout.splitlines()[0]
    assert usage.startswith(f"Usage: vecbackup {' '.join(args)} [OPTIONS]") and "{" not in usage, usage


def test_usage_lines_name_the_arguments() -> None:
    from typer.testing import CliRunner

    from vecbackup.cli import app

    out = CliRunner().invoke(app, ["show", "--help"], prog_name="vecbackup").stdout
    assert out.splitlines()[0] == "Usage: vecbackup show [OPTIONS] STORE_URL [BACKUP_ID]"
    out = CliRunner().invoke(app, ["backup", "--help"], prog_name="vecbackup").stdout
    assert out.splitlines()[0] == "Usage: vecbackup backup [OPTIONS] SOURCE_URL STORE_URL"
    assert "-c, --collection NAME " in out and "--batch-size ROWS " in out and "  SOURCE_URL  milvus://" in out


def test_commands_are_listed_under_headings(cli: Any) -> None:
    r = cli("--help")
    headings = [line[:-1] for line in r.stdout.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["Options", "Back up", "Restore and check", "Inspect", "Clean up", "Set up a store", "Other"]
    listed = [line.split()[0] for line in r.stdout.split("Back up:")[1].splitlines()
              if line.startswith("  ") and line.split()[0].isalpha()]
    assert listed == [*[name for panel in PANELS.values() for name in panel][:-1], "key", "version"]


def test_no_message_guesses_a_plural() -> None:
    """Counts agree with their nouns (vecbackup.words.plural): no string of vecbackup says `object(s)`."""
    import tokenize
    from pathlib import Path

    import vecbackup

    found = []
    for path in sorted(Path(vecbackup.__file__).parent.rglob("*.py")):
        with path.open("rb") as f:
            for tok in tokenize.tokenize(f.readline):
                guesses = set(re.findall(r"(\w+)\(s\)", tok.string)) - {"http", "CA"}  # http(s)://, the CA(s)
                if tok.type == tokenize.STRING and guesses:
                    found.append(f"{path.name}:{tok.start[0]}: {tok.string}")
    assert not found, found
