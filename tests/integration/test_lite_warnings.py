"""What a backup of Milvus Lite says about what Lite does not report: one warning per collection for its indexes'
build parameters (however many indexes and batches it has), naming the option and the config key that supply them
on restore and drill, and one for its settings; the same again on the next run, once per collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.datasets import index_summary
from tests.integration.common import STANDALONE_URL

INDEXES = "Milvus Lite does not report index parameters"
SETTINGS = "Milvus Lite does not report the consistency level"


def _build(client: Any, name: str, n: int = 300) -> None:
    """A vector field with HNSW and a VARCHAR with INVERTED: two indexes whose parameters Lite does not report."""
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("t", DataType.VARCHAR, max_length=16)
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 12, "efConstruction": 64})
    ip.add_index("t", index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip)
    rng = np.random.default_rng(1)
    client.insert(name, [{"pk": i, "v": rng.normal(size=8).astype(np.float32).tolist(), "t": f"t{i % 7}"}
                         for i in range(n)])


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_each_lite_warning_once_per_collection_on_every_run(cli: Any, lite: Any, store_dir: Path) -> None:
    names = sorted(lite.new_name(p) for p in ("a", "b"))
    for name in names:
        _build(lite.client, name)
    runs = []
    for _ in range(2):  # the second run reuses the first's rows: it says the same, once per collection
        r = cli("backup", lite.url, store_dir, "-c", names[0], "-c", names[1], "--batch-size", "50")
        assert r.code == 0, r.stderr
        runs.append(_warnings(r.stderr))
    for warnings in runs:
        for name in names:
            mine = [w for w in warnings if w.startswith(f"warning: {name}: ")]
            assert len([w for w in mine if INDEXES in w]) == 1, warnings
            assert len([w for w in mine if SETTINGS in w]) == 1, warnings
        assert len(warnings) == 4, warnings  # nothing else, nothing per batch or per index
    (a_indexes,) = [w for w in runs[0] if w.startswith(f"warning: {names[0]}: {INDEXES}")]
    assert a_indexes == (
        f"warning: {names[0]}: {INDEXES} (index 't' on 't', index 'v' on 'v'): recorded as unknown, and a restore "
        "or drill builds them with the target's defaults; to build them as they were, give restore and drill "
        "--index-params FIELD:PARAM=VALUE,... (e.g. --index-params v:M=16,efConstruction=200), or record them once "
        "in the config file: index_params = [\"v:M=16,efConstruction=200\"] in its [restore] and [drill] tables "
        "(docs/CONFIG.md)")
    shown = cli("show", store_dir, "latest", "-c", names[1], "--json").json()
    assert len([n for n in shown["notes"] if INDEXES in n]) == 1, shown["notes"]  # the backup's notes too


def test_the_config_key_the_warning_names_builds_the_index_as_it_was(cli: Any, lite: Any, standalone: Any,
                                                                      store_dir: Path, tmp_path: Path) -> None:
    """index_params in the config file's [restore] table, as the warning says, reaches the server: a Milvus Lite
    backup restored into the 2.3 server gets HNSW M=12, efConstruction=64 (not knowhere's defaults, 16 and 200)."""
    from pymilvus import MilvusClient

    name = lite.new_name("cfg")
    _build(lite.client, name)
    assert cli("backup", lite.url, store_dir, "-c", name).code == 0
    config = tmp_path / "vecbackup.toml"
    config.write_text('[restore]\nindex_params = ["v:M=12,efConstruction=64"]\n')
    r = cli("--config", config, "restore", store_dir, STANDALONE_URL, "-c", name, "--index-fallback")
    assert r.code == 0, r.stderr
    server = MilvusClient(uri=standalone.uri)
    try:
        v = index_summary(server, name)["v"]
        assert (v["index_type"], v["M"], v["efConstruction"]) == ("HNSW", "12", "64"), v
    finally:
        server.drop_collection(name)
        server.close()
