"""verify --quick / default / --read-data / --read-data-subset over real backups of Milvus Lite collections,
intact and damaged; --log-format json."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import orjson
import pytest

from tests.datasets import build_rich, build_vector_only
from vecbackup.errors import UsageError
from vecbackup.ops.verify import Subset, _key_slot


@pytest.fixture
def backed_up(cli, lite, store_dir):
    """300 rows of a Milvus Lite collection backed up in 4 chunks: (backup id, manifest path)."""
    name = lite.new_name("src")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    r = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "80", "--json")
    assert r.code == 0, r.stderr
    backup_id = r.json()["backups"][0]["backup_id"]
    (manifest,) = (store_dir / "manifests").rglob("*.json")
    return backup_id, manifest


def _objects(manifest: Path) -> list[dict]:
    return orjson.loads(manifest.read_bytes())["objects"]


def _path(store_dir: Path, key: str) -> Path:
    return store_dir / key


def _forge(manifest: Path, key: str, data: bytes) -> None:
    """Rewrite the manifest's size and SHA-256 of ``key`` to match ``data`` (what an attacker or a buggy
    tool repairing checksums would do): only decoding the chunk can then tell."""
    doc = orjson.loads(manifest.read_bytes())
    for o in doc["objects"]:
        if o["key"] == key:
            o["size"], o["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    manifest.write_bytes(orjson.dumps(doc))


def _verify(cli, store_dir, backup_id, *args):
    r = cli("verify", store_dir, backup_id, "--json", *args)
    doc = r.json()
    assert doc["backups"], r.stderr
    return r, doc["backups"][0]


def test_parse_subset():
    assert Subset.parse("10%") == Subset(fraction=0.1)
    assert Subset.parse(" 2.5% ") == Subset(fraction=0.025)
    assert Subset.parse("3/10") == Subset(n=3, of=10)
    for bad in ("0%", "101%", "0/3", "4/3", "x", "10", "1/0", "-5%"):
        with pytest.raises(UsageError):
            Subset.parse(bad)


def test_slices_partition_every_key_set_and_fractions_sample():
    keys = [f"data/{i:02x}/{hashlib.sha256(str(i).encode()).hexdigest()}.vbc" for i in range(200)]
    slices = [Subset(n=i, of=7).select(keys) for i in range(1, 8)]
    assert set().union(*slices) == set(keys)
    assert sum(len(s) for s in slices) == len(keys)  # disjoint: a week of 1/7..7/7 reads each key once
    assert Subset(n=2, of=7).select(keys) == Subset(n=2, of=7).select(list(reversed(keys)))  # deterministic
    assert all(_key_slot(k, 7) == 1 for k in slices[1])
    sample = Subset(fraction=0.1).select(keys, random.Random(1))
    assert len(sample) == 20 and sample <= set(keys)
    assert len(Subset(fraction=0.001).select(keys)) == 1  # never zero objects for a positive share
    assert Subset(fraction=0.5).select([]) == set()


def test_every_mode_passes_an_intact_backup_and_reports_its_counts(cli, store_dir, backed_up):
    backup_id, _ = backed_up
    expect = {
        (): ("checksum", {"stat": 0, "checksum": 4, "decode": 0}),
        ("--quick",): ("quick", {"stat": 4, "checksum": 0, "decode": 0}),
        ("--read-data",): ("read-data", {"stat": 0, "checksum": 0, "decode": 4}),
        ("--read-data-subset", "100%"): ("read-data-subset 100%", {"stat": 0, "checksum": 0, "decode": 4}),
        ("--read-data-subset", "50%"): ("read-data-subset 50%", {"stat": 2, "checksum": 0, "decode": 2}),
    }
    for args, (mode, checked) in expect.items():
        r, b = _verify(cli, store_dir, backup_id, *args)
        assert r.code == 0, (args, r.stderr)
        assert (b["ok"], b["mode"], b["checked"], b["rows"]) == (True, mode, checked, 300), args
    r, b = _verify(cli, store_dir, backup_id, "--quick")
    assert b["bytes_read"] == 0  # stat only, nothing downloaded
    decoded = 0
    for i in (1, 2, 3):
        r, b = _verify(cli, store_dir, backup_id, "--read-data-subset", f"{i}/3")
        assert r.code == 0 and b["mode"] == f"read-data-subset {i}/3"
        assert b["checked"]["decode"] + b["checked"]["stat"] == 4
        decoded += b["checked"]["decode"]
    assert decoded == 4  # the three slices together decode every object once
    human = cli("verify", store_dir, backup_id, "--read-data")
    assert human.code == 0 and ": ok (read-data): 4 objects fully decoded; 300 rows," in human.stdout
    human = cli("verify", store_dir, backup_id)  # said "ok (checksum: 4 checksum)" before
    assert ": ok (checksum): 4 objects read back with a matching SHA-256; 300 rows," in human.stdout


def test_read_data_checks_every_column_type(cli, lite, store_dir):
    name = lite.new_name("rich")
    build_rich(lite.client, name, "lite", n=250)
    r = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "100", "--json")
    assert r.code == 0, r.stderr
    r, b = _verify(cli, store_dir, "latest", "--read-data")
    assert r.code == 0, r.stderr
    assert b["checked"]["decode"] == b["objects"] >= 3 and b["rows"] == 250


def test_flipped_byte(cli, store_dir, backed_up):
    """Same size, different bytes: --quick cannot see it (by design), every reading mode can."""
    backup_id, manifest = backed_up
    obj = _objects(manifest)[2]
    f = _path(store_dir, obj["key"])
    good = f.read_bytes()
    f.write_bytes(good[:100] + bytes([good[100] ^ 0x01]) + good[101:])
    r, b = _verify(cli, store_dir, backup_id, "--quick")
    assert r.code == 0 and b["ok"]
    for args in ((), ("--read-data",), ("--read-data-subset", "100%")):
        r, b = _verify(cli, store_dir, backup_id, *args)
        assert r.code == 7, (args, r.stderr)
        assert [(p["kind"], p["key"]) for p in b["problems"]] == [("corrupt", obj["key"])]
        assert b["rows"] == 300 - obj["rows"]


def test_forged_checksum_is_caught_only_by_decoding(cli, store_dir, backed_up):
    backup_id, manifest = backed_up
    obj = _objects(manifest)[1]
    f = _path(store_dir, obj["key"])
    good = f.read_bytes()
    bad = good[:-1] + bytes([good[-1] ^ 0x10])  # the last byte: inside the last column's zstd frame
    f.write_bytes(bad)
    _forge(manifest, obj["key"], bad)
    for args in ((), ("--quick",)):  # the header still parses and the (forged) checksum matches
        r, b = _verify(cli, store_dir, backup_id, *args)
        assert r.code == 0, (args, r.stderr)
    r, b = _verify(cli, store_dir, backup_id, "--read-data")
    assert r.code == 7, r.stderr
    (problem,) = b["problems"]
    assert problem["kind"] == "corrupt" and problem["key"] == obj["key"]
    assert "corrupt data chunk" in problem["message"]
    assert b["checked"] == {"stat": 0, "checksum": 0, "decode": 4}
    # a subset finds it exactly when its slice holds the object
    slot = _key_slot(obj["key"], 4) + 1
    r, b = _verify(cli, store_dir, backup_id, "--read-data-subset", f"{slot}/4")
    assert r.code == 7 and b["problems"][0]["key"] == obj["key"]
    other = slot % 4 + 1
    r, b = _verify(cli, store_dir, backup_id, "--read-data-subset", f"{other}/4")
    assert r.code == 0 and b["ok"]


def test_forged_row_count_is_caught_by_decoding(cli, store_dir, backed_up):
    """A manifest that claims a different row count (and a chunk it matches byte for byte) fails --read-data
    with a row-count message, and the default mode sees it in the header too."""
    backup_id, manifest = backed_up
    doc = orjson.loads(manifest.read_bytes())
    doc["objects"][0]["rows"] += 1
    manifest.write_bytes(orjson.dumps(doc))
    for args in ((), ("--read-data",)):
        r, b = _verify(cli, store_dir, backup_id, *args)
        assert r.code == 7, (args, r.stderr)
        assert "rows" in b["problems"][0]["message"]


def test_missing_and_truncated_objects(cli, store_dir, backed_up):
    backup_id, manifest = backed_up
    objs = _objects(manifest)
    _path(store_dir, objs[0]["key"]).unlink()
    truncated = _path(store_dir, objs[3]["key"])
    truncated.write_bytes(truncated.read_bytes()[:-7])
    # a slice that samples neither damaged object: still found by the existence + size check
    slot = next(i for i in range(1, 6) if _key_slot(objs[0]["key"], 5) != i - 1
                and _key_slot(objs[3]["key"], 5) != i - 1)
    for args in ((), ("--quick",), ("--read-data",), ("--read-data-subset", f"{slot}/5")):
        r, b = _verify(cli, store_dir, backup_id, *args)
        assert r.code == 8, (args, r.stderr)  # missing outranks damaged
        kinds = {p["key"]: p["kind"] for p in b["problems"]}
        assert kinds == {objs[0]["key"]: "missing", objs[3]["key"]: "corrupt"}, args
        assert sum(b["checked"].values()) == 4


def test_bad_mode_options_are_usage_errors(cli, store_dir, backed_up):
    backup_id, _ = backed_up
    for args in (["--quick", "--read-data"], ["--read-data", "--read-data-subset", "10%"],
                 ["--read-data-subset", "0/3"], ["--read-data-subset", "ten"]):
        r = cli("verify", store_dir, backup_id, *args)
        assert r.code == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_verify_all_with_subset(cli, lite, store_dir, backed_up):
    r = cli("verify", store_dir, "--all", "--read-data-subset", "2/2", "--json")
    assert r.code == 0, r.stderr
    assert all(b["mode"] == "read-data-subset 2/2" for b in r.json()["backups"])


def test_log_format_json(cli, store_dir, backed_up):
    backup_id, manifest = backed_up
    r = cli("verify", store_dir, backup_id, "--log-format", "json")
    assert r.code == 0, r.stderr
    lines = [orjson.loads(line) for line in r.stderr.splitlines()]
    assert lines, "progress is logged"
    assert {ln["level"] for ln in lines} == {"info"}
    assert {ln.get("event") for ln in lines} >= {"start", "finish"}
    assert all({"ts", "level", "msg"} <= set(ln) for ln in lines)
    assert all(ln["ts"].endswith("Z") for ln in lines)
    _path(store_dir, _objects(manifest)[0]["key"]).unlink()
    r = cli("verify", store_dir, backup_id, "--log-format", "json", "--json")
    assert r.code == 8
    assert r.json()["ok"] is False  # stdout still holds exactly one JSON document
    lines = [orjson.loads(line) for line in r.stderr.splitlines()]  # every stderr line is JSON
    warnings = [ln for ln in lines if ln["level"] == "warning"]
    errors = [ln for ln in lines if ln["level"] == "error"]
    assert len(warnings) == 1 and warnings[0]["msg"].startswith("missing:")
    assert len(errors) == 1 and errors[0]["exit_code"] == 8
    # text stays the default
    r = cli("verify", store_dir, backup_id)
    assert r.code == 8 and any(line.startswith("error: ") for line in r.stderr.splitlines())


@pytest.mark.parametrize("command", ["backup", "restore", "prune", "delete", "gc", "verify"])
def test_log_format_json_errors_on_every_command(cli, store_dir, command, monkeypatch):
    monkeypatch.setenv("VECBACKUP_LOG_FORMAT", "json")  # the environment works as well as the option
    missing = f"file://{store_dir}/nope"
    args = {"backup": ["milvus://127.0.0.1:1", missing, "-c", "x"],
            "restore": [missing, "milvus-lite:///tmp/x.db"],
            "prune": [missing, "--keep-last", "1"],
            "delete": [missing, "20261122T021500.123456Z-3fa9c2d1"],
            "gc": [missing],
            "verify": [missing]}[command]
    r = cli(command, *args)
    assert r.code in (4, 6), r.stderr
    (line,) = [orjson.loads(x) for x in r.stderr.splitlines()]
    assert line["level"] == "error" and line["exit_code"] == r.code and line["msg"]
