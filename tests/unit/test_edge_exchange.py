"""The one-step swap a Qdrant Edge restore with --drop-existing puts its shard in place with (engines/qdrant/edge.py):
both names exist at every instant, so a restore killed around it never leaves the target missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecbackup.engines.qdrant.edge import _exchange


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "edge_config.json").write_text(text)
    return path


def test_two_folders_swap_names(tmp_path: Path) -> None:
    staging, target = _folder(tmp_path / "pts_vbrestore_ab12", "new"), _folder(tmp_path / "pts", "old")
    assert _exchange(str(staging), str(target)) is True  # Linux: renameat2 with RENAME_EXCHANGE
    assert (target / "edge_config.json").read_text() == "new"
    assert (staging / "edge_config.json").read_text() == "old"


def test_a_missing_side_changes_nothing(tmp_path: Path) -> None:
    staging = _folder(tmp_path / "pts_vbrestore_ab12", "new")
    with pytest.raises(FileNotFoundError):
        _exchange(str(staging), str(tmp_path / "pts"))
    assert (staging / "edge_config.json").read_text() == "new" and not (tmp_path / "pts").exists()
