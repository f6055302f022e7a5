"""The CLI's output on the committed golden backup, byte for byte, against tests/golden/cli/transcript.txt.

A refactor of the upper floors must not change what people and scripts read. Values that change from run to run
(temporary paths, durations, clock times, random names, the backup's age) are masked before the comparison; all
else is compared exactly, stdout and stderr of every command, and its exit code.

After an intended change of the output: UPDATE_GOLDEN=1 pytest tests/golden/test_cli_transcript.py, and review
the diff of transcript.txt.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent
TRANSCRIPT = GOLDEN / "cli" / "transcript.txt"

_MASKS = [
    (re.compile(r"\b\d+(\.\d+)?s\b"), "<s>"),  # durations: "in 1.2s", "0.4s"
    (re.compile(r'"(seconds|rto_seconds|rpo_seconds|age_seconds|completed_at|started_at|finished_at|ts)": '
                r'("[^"]*"|[0-9.e+-]+)'), r'"\1": <v>'),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"_(vbrestore|drill)_[0-9a-f]{8}"), r"_\1_<hex>"),
    (re.compile(r"\b\d+\.\d\dh ago"), "<h> ago"),
    (re.compile(r"\d+(\.\d+)?h\b"), "<h>"),
]

COMMANDS: list[tuple[str, ...]] = [
    ("list", "{store}"),
    ("list", "{store}", "--json"),
    ("show", "{store}", "latest"),
    ("show", "{store}", "latest", "--json"),
    ("verify", "{store}", "latest"),
    ("verify", "{store}", "--quick", "--json"),
    ("verify", "{store}", "--read-data"),
    ("restore", "{store}", "{lite}", "--dry-run"),
    ("restore", "{store}", "{lite}", "--dry-run", "--json"),
    ("restore", "{store}", "{lite}", "--as", "bad name!"),
    ("restore", "{store}", "{lite}", "--json"),
    ("restore", "{store}", "{lite}"),
    ("collections", "{lite}"),
    ("drill", "{store}", "{lite}", "-c", "golden", "--seed", "1", "--source", "{lite}", "--json"),
    ("drill", "{store}", "{lite}", "-c", "golden", "--seed", "1", "--max-age", "1h"),
    ("prune", "{store}", "--keep-last", "1", "--dry-run"),
    ("gc", "{store}", "--dry-run", "--json"),
    ("show", "{store}", "nosuch"),
    ("backup", "{lite}", "{store}", "-c", "nosuch"),
]


def _mask(text: str, paths: dict[str, str]) -> str:
    for name, path in paths.items():
        text = text.replace(path, f"<{name}>")
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def _transcript(cli: Any, store: Path, lite: Any) -> str:
    paths = {"store": str(store), "lite": lite.url, "lite_file": lite.url.removeprefix("milvus-lite://")}
    out = []
    for args in COMMANDS:
        argv = [a.format(store=store, lite=lite.url) for a in args]
        r = cli(*argv)
        out.append(f"$ vecbackup {' '.join(args)}\n[exit {r.code}]\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}")
    return _mask("\n".join(out), paths)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cli_output_on_the_golden_backup_is_unchanged(cli: Any, lite: Any, tmp_path: Path) -> None:
    store = tmp_path / "golden-store"
    shutil.copytree(GOLDEN / "v1" / "store", store)
    got = _transcript(cli, store, lite)
    if os.environ.get("UPDATE_GOLDEN"):
        TRANSCRIPT.parent.mkdir(exist_ok=True)
        TRANSCRIPT.write_text(got)
    assert got == TRANSCRIPT.read_text()
