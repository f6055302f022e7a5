"""vecbackup.open_store(..., ask=...): the passphrase asked for where none was given, in the API (the command line
passes its terminal prompt; it no longer opens stores around the API)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vecbackup
from vecbackup.errors import WrongKey


def test_ask_is_called_once_only_where_no_passphrase_was_given(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    made = vecbackup.init(url, encrypt=True, passphrase=vecbackup.Passphrase("right"))
    asked: list[str] = []

    def ask() -> str:
        asked.append("?")
        return "right"

    vecbackup.open_store(url, passphrase=vecbackup.Passphrase(), ask=ask)
    assert asked == ["?"]
    key_id = made.key.id if made.key is not None else None
    vecbackup.open_store(url, passphrase=vecbackup.Passphrase(key_id=key_id), ask=ask)  # the key id is kept
    assert asked == ["?", "?"]
    with pytest.raises(WrongKey):  # a passphrase given that does not open it: not asked again
        vecbackup.open_store(url, passphrase=vecbackup.Passphrase("wrong"), ask=ask)
    assert asked == ["?", "?"]
    with pytest.raises(WrongKey):  # nothing given, nobody to ask
        vecbackup.open_store(url, passphrase=vecbackup.Passphrase())
    with pytest.raises(WrongKey):  # the answer is tried once
        vecbackup.open_store(url, passphrase=vecbackup.Passphrase(), ask=lambda: "wrong")
    vecbackup.open_store(f"file://{tmp_path / 'plain'}", create=True, passphrase=vecbackup.Passphrase(), ask=ask)
    assert asked == ["?", "?"]  # an unencrypted store needs none
