"""Every command has help text, and docs/CLI.md documents every command and option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vecbackup.cli import app

DOC = (Path(__file__).parents[2] / "docs" / "CLI.md").read_text()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


@pytest.mark.parametrize("sub", ["add", "list", "remove"])
def test_key_subcommands_have_help_and_are_documented(cli, sub):
    r = cli("key", sub, "--help")
    assert r.code == 0 and len(r.stdout) > 100
    assert f"## vecbackup key {sub}" in DOC
    options = set(re.findall(r"(--[a-z][a-z-]+)", r.stdout)) - {"--help"}
    assert not [o for o in options if o not in DOC] and "--json" in options


def test_all_commands_registered():
    assert set(COMMANDS) >= {"backup", "restore", "list", "show", "verify", "delete"}


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_and_is_documented(cli, name):
    r = cli(name, "--help")
    assert r.code == 0
    assert len(r.stdout) > 100
    assert f"## vecbackup {name}" in DOC
    options = set(re.findall(r"(--[a-z][a-z-]+)", r.stdout)) - {"--help"}
    missing = [o for o in options if o not in DOC]
    assert not missing, f"docs/CLI.md lacks {missing} of `{name}`"
    if name not in ("version",):
        assert "--json" in options
