"""docs/API.md runs as written: every ```python block of the page, in order, as one program in a new, empty folder
(a subprocess whose working directory it is), with nothing set up beforehand; and `help(vecbackup)` shows the API."""

from __future__ import annotations

import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vecbackup

DOC = Path(__file__).parents[2] / "docs" / "API.md"
ROOT = Path(vecbackup.__file__).parents[1]


def _blocks() -> list[tuple[int, str]]:
    """Each ```python block of the page and the line it starts on."""
    text = DOC.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text,
                                                                                    re.DOTALL)]


def test_every_block_runs_as_written_in_an_empty_folder(tmp_path: Path) -> None:
    blocks = _blocks()
    assert len(blocks) >= 8
    program, where = [], []  # the program, and for each of its lines the line of docs/API.md it came from
    for start, code in blocks:
        program.append(f"# docs/API.md, line {start}")
        where.append(start - 1)
        for i, line in enumerate(code.splitlines()):
            program.append(line)
            where.append(start + i)
    script = tmp_path / "api_md.py"
    script.write_text("\n".join(program) + "\n")
    folder = tmp_path / "empty"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECBACKUP_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])  # this vecbackup
    r = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        lines = [int(n) for n in re.findall(rf'File "{re.escape(str(script))}", line (\d+)', r.stderr)]
        raise AssertionError(f"docs/API.md fails at line {where[lines[-1] - 1] if lines else '?'}:\n{r.stderr}")
    assert "the first passphrase no longer opens the store, exit 13" in r.stdout
    # what the page made, where it said: in the folder it ran in, and nothing left behind by the drill
    assert {p.name for p in folder.iterdir()} >= {"demo.db", "backups", "backups-encrypted", "drill.json", "drill.xml"}
    from pymilvus import MilvusClient

    client = MilvusClient(str(folder / "demo.db"))
    try:
        names = client.list_collections()
        assert {"articles", "articles_copy", "articles_dr"} <= set(names)
        assert not [n for n in names if "_drill_" in n or "_vbrestore_" in n or "_vbrun_" in n], names
        assert client.query("articles_dr", output_fields=["count(*)"])[0]["count(*)"] == 500
    finally:
        client.close()


def test_help_shows_the_api() -> None:
    text = pydoc.render_doc(vecbackup, renderer=pydoc.plaintext)
    for name in ("backup", "restore", "plan", "list_backups", "show", "verify", "delete", "gc", "prune", "drill",
                 "connect", "open_store", "RestoreOptions", "BackupOptions", "DrillOptions", "Policy",
                 "Credentials"):
        assert re.search(rf"\b{name}\b", text), name
    assert "docs/API.md" in (vecbackup.__doc__ or "")


@pytest.mark.parametrize("name", ["backup", "restore", "plan", "list_backups", "show", "verify", "delete", "gc",
                                  "prune", "drill", "connect", "open_store", "init", "keys", "add_key",
                                  "remove_key", "restore_shard", "commit_restore", "abandon_restore", "locks",
                                  "unlock", "write_report", "raise_for_worst", "prune_backed_up"])
def test_every_api_function_is_documented(name: str) -> None:
    fn = getattr(vecbackup, name)
    assert fn.__doc__ and len(fn.__doc__) > 40, name
    assert f"vecbackup.{name}(" in DOC.read_text() or name in ("connect", "open_store"), name
