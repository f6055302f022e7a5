"""--index-type and --index-params on restore and drill (issue 23, item 8): keys the index type does not take are
refused while the restore is planned, before anything is created; a DR cluster that wants another index type says
so with --index-type, whose parameters --index-params then gives; the dry run shows the index that will be built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Engine
from tests.datasets import build_vector_only, index_summary, read_rows
from tests.integration.common import STANDALONE_URL

#: the issue's invocation: IVF_PQ's parameters (and its name as a key) given to an HNSW index
IVF_PQ = "v:index_type=IVF_PQ,nlist=64,m=8,nbits=8"
REFUSED = ("error: --index-params v: index type HNSW (recorded) takes M, efConstruction (and mmap.enabled), not "
           "index_type, nlist, m, nbits (--index-type v:TYPE builds another index type; --index-params then gives "
           "that type's parameters)")


def _backup(cli: Any, url: str, store: Path, name: str) -> str:
    r = cli("backup", url, store, "-c", name, "--json")
    assert r.code == 0, r.stderr
    return str(r.json()["backups"][0]["backup_id"])


@pytest.fixture
def hnsw_on_lite(cli: Any, lite: Engine, store_dir: Path) -> tuple[str, str]:
    """An HNSW collection on Milvus Lite, backed up: (its name, the backup id)."""
    name = lite.new_name("it")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=120, index=("HNSW", "COSINE", {"M": 8,
                                                                                          "efConstruction": 64}))
    return name, _backup(cli, lite.url, store_dir, name)


@pytest.mark.parametrize("command", ["restore", "drill"])
def test_keys_the_index_type_does_not_take_are_refused_before_anything_is_created(
        cli: Any, lite: Engine, store_dir: Path, hnsw_on_lite: tuple[str, str], command: str) -> None:
    name, backup = hnsw_on_lite
    before = sorted(lite.client.list_collections())
    args = [command, store_dir, lite.url, "--backup", backup, "--index-params", IVF_PQ]
    r = cli(*args, *(["--as", f"{name}_copy"] if command == "restore" else []))
    assert r.code == 2, r.stdout + r.stderr
    assert r.error_line() == REFUSED
    assert sorted(lite.client.list_collections()) == before
    # the dry run refuses it the same way
    if command == "restore":
        r = cli(*args, "--as", f"{name}_copy", "--dry-run")
        assert (r.code, r.error_line()) == (2, REFUSED)
    # --index-type checks the field can have the type, before anything is created too
    r = cli(*args[:-2], "--index-type", "v:BIN_FLAT", *(["--as", f"{name}_copy"] if command == "restore" else []))
    assert r.code == 2
    assert r.error_line().startswith("error: --index-type v:BIN_FLAT: BIN_FLAT is built on binary vector fields; "
                                     "'v' is FLOAT_VECTOR (index types of dense vector fields: FLAT, IVF_FLAT,")
    assert sorted(lite.client.list_collections()) == before


def test_the_dry_run_shows_the_index_that_will_be_built(cli: Any, lite: Engine, store_dir: Path,
                                                        hnsw_on_lite: tuple[str, str]) -> None:
    name, backup = hnsw_on_lite
    args = ("restore", store_dir, lite.url, "--backup", backup, "--as", f"{name}_c", "--dry-run",
            "--index-type", "v:IVF_FLAT", "--index-params", "v:nlist=64")
    doc = cli(*args, "--json").json()
    assert doc["ok"] and doc["indexes"] == [{"field_name": "v", "index_name": "v", "index_type": "IVF_FLAT",
                                             "metric_type": "COSINE", "params": {"nlist": 64}}]
    # Milvus Lite did not report the HNSW parameters: the note says so
    assert ("index on 'v': HNSW (COSINE) parameters not recorded (the engine's defaults) -> IVF_FLAT (COSINE) "
            "nlist=64 (--index-type, --index-params)") in doc["notes"]
    r = cli(*args)
    assert r.code == 0, r.stderr
    assert "  index on 'v': IVF_FLAT (COSINE) nlist=64\n" in r.stdout
    plain = cli("restore", store_dir, lite.url, "--backup", backup, "--as", f"{name}_c", "--dry-run")
    assert "  index on 'v': HNSW (COSINE) parameters not recorded (the engine's defaults)\n" in plain.stdout
    assert f"{name}_c" not in lite.client.list_collections()


def test_into_qdrant_only_hnsw_applies(cli: Any, store_dir: Path, tmp_path: Path,
                                       hnsw_on_lite: tuple[str, str]) -> None:
    _, backup = hnsw_on_lite
    target = tmp_path / "qdrant"
    target.mkdir()
    r = cli("restore", store_dir, f"qdrant-local://{target}", "--backup", backup, "--index-type", "v:IVF_FLAT")
    assert r.code == 2
    assert r.error_line() == ("error: --index-type v:IVF_FLAT: into Qdrant only HNSW applies (FLAT: HNSW with m=0, "
                              "exact search) (--index-type v:HNSW with --index-params v:M=16,efConstruction=100, or "
                              "a Milvus target)")
    r = cli("restore", store_dir, f"qdrant-local://{target}", "--backup", backup, "--index-params", "v:nlist=64")
    assert r.code == 2
    assert r.error_line().startswith("error: --index-params v: Qdrant's HNSW takes M, efConstruction, m, "
                                     "ef_construct, ")
    assert r.error_line().endswith(", not nlist (into Qdrant only HNSW applies to a dense vector)")
    doc = cli("restore", store_dir, f"qdrant-local://{target}", "--backup", backup, "--dry-run", "--json",
              "--index-params", "v:m=12,ef_construct=48").json()
    assert doc["ok"] and [(i["index_type"], i["params"]) for i in doc["indexes"]] == [
        ("HNSW", {"M": 12, "efConstruction": 48})]


def test_another_index_type_on_the_server(cli: Any, standalone: Any, store_dir: Path) -> None:
    """On the 2.3 server: the refusal creates nothing; --index-type v:IVF_FLAT --index-params v:nlist=64 restores
    with IVF_FLAT, as describe_index shows, and the same rows; --index-type alone builds knowhere's defaults where
    the server requires parameters."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=standalone.uri)
    name = f"it_{Path(store_dir).parent.name[-8:]}".replace("-", "_")
    try:
        build_vector_only(client, name, "FLOAT_VECTOR", n=300, index=("HNSW", "L2", {"M": 8, "efConstruction": 64}))
        backup = _backup(cli, STANDALONE_URL, store_dir, name)
        before = sorted(client.list_collections())
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup, "--as", f"{name}_bad", "--index-params",
                IVF_PQ)
        assert (r.code, r.error_line()) == (2, REFUSED)
        assert sorted(client.list_collections()) == before
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup, "--as", f"{name}_ivf", "--index-type",
                "v:IVF_FLAT", "--index-params", "v:nlist=64", "--json")
        assert r.code == 0, r.stderr
        assert ("index on 'v': HNSW (L2) M=8, efConstruction=64 -> IVF_FLAT (L2) nlist=64 (--index-type, "
                "--index-params)") in r.json()["notes"]
        assert index_summary(client, f"{name}_ivf")["v"] == {"field_name": "v", "index_type": "IVF_FLAT",
                                                              "metric_type": "L2", "nlist": "64"}
        assert read_rows(client, f"{name}_ivf") == read_rows(client, name)
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup, "--as", f"{name}_sq8", "--index-type",
                "v:IVF_SQ8", "--json")
        assert r.code == 0, r.stderr
        summary = index_summary(client, f"{name}_sq8")["v"]
        assert (summary["index_type"], summary["nlist"]) == ("IVF_SQ8", "128")
        assert any("--index-type v:IVF_SQ8 was given no --index-params" in n and "knowhere's defaults nlist=128" in n
                   for n in r.json()["notes"]), r.json()["notes"]
    finally:
        for c in client.list_collections():
            if c.startswith(name):
                client.drop_collection(c)
        client.close()
