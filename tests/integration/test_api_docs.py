"""docs/API.md's examples, run as written against Milvus Lite and a local folder (only the two URLs of the first
example are replaced), and `help(vecbackup)` showing the API."""

from __future__ import annotations

import contextlib
import io
import pydoc
import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).parents[2] / "docs" / "API.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_examples_run(lite: Any, tmp_path: Path) -> None:
    import numpy as np
    from pymilvus import DataType, MilvusClient

    # the collection the examples back up: 500 rows, an HNSW index on "embedding"
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=16)
    s.add_field("title", DataType.VARCHAR, max_length=32)
    ip = lite.client.prepare_index_params()
    ip.add_index("embedding", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
    lite.client.create_collection("articles", schema=s, index_params=ip, consistency_level="Strong")
    vecs = np.random.default_rng(2).normal(size=(500, 16)).astype(np.float32)
    lite.client.insert("articles", [{"id": i, "embedding": vecs[i].tolist(), "title": f"t{i}"} for i in range(500)])
    lite.client.flush("articles")

    blocks = _blocks()
    assert len(blocks) >= 6
    first = blocks[0]
    first = re.sub(r'^SOURCE = "[^"]*"', f'SOURCE = "{lite.url}"', first, count=1, flags=re.MULTILINE)
    first = re.sub(r'^STORE = "[^"]*"', f'STORE = "file://{tmp_path / "store"}"', first, count=1,
                   flags=re.MULTILINE)
    assert first != blocks[0]
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, code in enumerate([first, *blocks[1:]]):
            exec(compile(code, f"docs/API.md block {i + 1}", "exec"), namespace)
    assert namespace["restored"].rows == 500
    assert namespace["report"].ok
    assert lite.client.has_collection("articles_copy")
    assert not [c for c in lite.client.list_collections() if "_drill_" in c or "_vbrestore_" in c or "_vbrun_" in c]
    assert lite.client.has_collection("articles_dr")
    import vecbackup  # the encrypted store's first passphrase was removed: it must not open the store

    with pytest.raises(vecbackup.errors.WrongKey):
        vecbackup.open_store(namespace["ENC_STORE"], passphrase=namespace["secret"])
    assert "no longer opens the store, exit 13" in out.getvalue()


def test_help_shows_the_api() -> None:
    import vecbackup

    text = pydoc.render_doc(vecbackup, renderer=pydoc.plaintext)
    for name in ("backup", "restore", "plan", "list_backups", "show", "verify", "delete", "gc", "prune", "drill",
                 "connect", "open_store", "RestoreOptions", "BackupOptions", "DrillOptions", "Policy",
                 "Credentials"):
        assert re.search(rf"\b{name}\b", text), name
    assert "docs/API.md" in (vecbackup.__doc__ or "")


@pytest.mark.parametrize("name", ["backup", "restore", "plan", "list_backups", "show", "verify", "delete", "gc",
                                  "prune", "drill", "connect", "open_store", "init", "keys", "add_key",
                                  "remove_key", "restore_shard", "commit_restore", "abandon_restore"])
def test_every_api_function_is_documented(name: str) -> None:
    import vecbackup

    fn = getattr(vecbackup, name)
    assert fn.__doc__ and len(fn.__doc__) > 40, name
    assert f"vecbackup.{name}(" in DOC.read_text() or name in ("connect", "open_store"), name
