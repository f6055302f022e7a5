"""The drill's report writers (JSON, JUnit XML) and its exact row comparison."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import orjson

from vecbackup.ops.drill import CHECKS, Check, DrillReport, row_differences, same_value, write_json
from vecbackup.ops.drill.junit import junit_xml, write_junit


def _report(statuses: dict[str, str]) -> DrillReport:
    checks = [Check(name, statuses.get(name, "passed"), f"{name} message", seconds=0.25) for name in CHECKS]
    return DrillReport(backup_id="20261122T021500.123456Z-3fa9c2d1", collection="articles", store="file:///b",
                       target="milvus://dr:19530", scratch_collection="articles_drill_0a1b2c3d",
                       started_at="2026-11-22T02:30:00.000000Z", finished_at="2026-11-22T02:31:00.000000Z",
                       rto_seconds=12.3456, rpo_seconds=3600.0, seed=42, scratch_dropped=True, checks=checks)


def test_json_report(tmp_path):
    report = _report({"search_recall": "failed", "row_count": "skipped"})
    report.check("search_recall").message = "recall@10 0.500 is below --min-recall 0.95"
    write_json(report, str(tmp_path / "r.json"))
    doc = orjson.loads((tmp_path / "r.json").read_bytes())
    assert doc["ok"] is False and doc["exit_code"] == 12 and doc["suite"] == "vecbackup-drill"
    assert [c["name"] for c in doc["checks"]] == list(CHECKS)
    assert doc["failures"] == ["search_recall: recall@10 0.500 is below --min-recall 0.95"]
    assert doc["rto_seconds"] == 12.346 and doc["rpo_seconds"] == 3600.0
    assert _report({}).to_dict()["ok"] is True and _report({"restore": "skipped"}).ok


def test_junit_all_passed(tmp_path):
    write_junit(_report({}).to_dict(), str(tmp_path / "j.xml"))
    data = (tmp_path / "j.xml").read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(data)
    assert root.tag == "testsuites" and root.get("tests") == "6" and root.get("failures") == "0"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "vecbackup-drill" and suite.get("errors") == "0" and suite.get("skipped") == "0"
    assert suite.get("timestamp") == "2026-11-22T02:30:00.000000Z" and suite.get("time") == "1.500"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == list(CHECKS)
    assert {c.get("classname") for c in cases} == {"vecbackup.drill.articles"}
    assert all(c.get("time") == "0.250" and c.find("failure") is None for c in cases)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["backup_id"] == "20261122T021500.123456Z-3fa9c2d1" and props["rto_seconds"] == "12.346"
    assert "source" not in props  # None values are left out


def test_junit_failures_skips_and_awkward_text():
    report = _report({"restore": "failed", "row_count": "skipped", "sample_rows": "skipped",
                      "search_recall": "skipped", "text_search": "skipped"})
    nasty = 'data object data/ab/ab12.vbc fails its SHA-256 check <&> "quoted" \x00\x1b end'
    report.check("restore").message = nasty
    report.check("restore").details = {"rto_seconds": 0.5, "why": "<tag>&"}
    report.check("row_count").message = "skipped: restore failed"
    root = ET.fromstring(junit_xml(report.to_dict()))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "1", "4")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    failure = cases["restore"].find("failure")
    assert failure is not None and failure.get("type") == "DrillCheckFailed"
    message = failure.get("message", "")
    assert message.startswith('data object data/ab/ab12.vbc fails its SHA-256 check <&> "quoted" ')
    assert "\x00" not in message and message.endswith(" end")
    assert '"why": "<tag>&"' in (failure.text or "")
    skipped = cases["row_count"].find("skipped")
    assert skipped is not None and skipped.get("message") == "skipped: restore failed"
    assert cases["backup_age"].find("failure") is None and cases["backup_age"].find("skipped") is None


def test_same_value_is_exact():
    assert same_value(0.1, 0.1) and not same_value(0.1, 0.1 + 1e-17 * 10)
    assert same_value(math.nan, math.nan) and not same_value(math.nan, 0.0)
    assert same_value([1.0, 2.5], [1.0, 2.5]) and not same_value([1.0, 2.5], [1.0, 2.5000001])
    assert same_value(b"\x00\x01", b"\x00\x01") and not same_value(b"\x00\x01", b"\x00\x02")
    assert same_value({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert not same_value({"a": 1}, {"a": 1, "b": 2})
    assert not same_value(1, True) and not same_value(1, 1.0) and not same_value(None, 0)


def test_row_differences():
    backup = {"id": 1, "vec": [0.5, 0.25], "title": "x", "meta": {"k": 1}, "opt": None}
    assert row_differences(backup, dict(backup)) == []
    assert row_differences(backup, {**backup, "vec": [0.5, 0.2500001], "opt": 0}) == ["opt", "vec"]
    assert row_differences(backup, {k: v for k, v in backup.items() if k != "title"} | {"color": "red"}) == [
        "color", "title"]


def test_junit_carries_the_recall_numbers():
    report = _report({})
    report.check("search_recall").details = {"restored_recall": 0.91, "source_recall": 0.97,
                                             "restored_vs_source": 0.8, "min_recall": None, "queries": 100}
    props = {p.get("name"): p.get("value") for p in ET.fromstring(junit_xml(report.to_dict())).iter("property")}
    assert props["search_recall.restored_recall"] == "0.91" and props["search_recall.source_recall"] == "0.97"
    assert props["search_recall.restored_vs_source"] == "0.8"
    assert "search_recall.min_recall" not in props and "search_recall.queries" not in props


def test_values_are_shown_or_hashed_with_the_store_key(tmp_path):
    """An unencrypted store's report shows values (repr, cut to 120 characters); an encrypted one's hashes them with
    a key only the store's key holders have: the same value gives the same hash in one store, another in another."""
    import numpy as np
    import pytest

    from vecbackup import api
    from vecbackup.errors import UsageError
    from vecbackup.ops.drill import HASHED, SHOWN, Values
    from vecbackup.ops.drill.report import canonical
    from vecbackup.passphrase import Passphrase
    from vecbackup.stores import open_store

    plain = open_store(f"file://{tmp_path / 'plain'}", create=True)
    shown = Values.for_store(plain, report_values=False)
    assert shown.mode == SHOWN and shown.show(42) == "42" and shown.show("x" * 200) == repr("x" * 200)[:117] + "..."
    with pytest.raises(UsageError):
        api.report_hash(plain, 42)

    hashes = []
    for name in ("a", "b"):
        pw = Passphrase(f"passphrase {name}")
        api.init(f"file://{tmp_path / name}", encrypt=True, passphrase=pw)
        store = open_store(f"file://{tmp_path / name}", passphrase=pw)
        values = Values.for_store(store, report_values=False)
        assert values.mode == HASHED and Values.for_store(store, report_values=True).mode == SHOWN
        h = values.show(42)
        assert h == api.report_hash(store, 42) == api.report_hash(store, np.int64(42)) != values.show("42")
        assert h.startswith("hmac-sha256:") and len(h) == len("hmac-sha256:") + 16
        hashes.append(h)
    assert hashes[0] != hashes[1]
    # one canonical form per value, whatever its Python shape
    assert canonical({"b": 1, "a": [1.5, None]}) == canonical({"a": [1.5, None], "b": 1}) == b'{"a":[1.5,null],"b":1}'
    assert canonical(b"\x01\xff") == b'{"$bytes":"01ff"}'
    assert canonical(np.array([1, 2], dtype=np.int8)) == canonical([1, 2]) and canonical(np.float16(0.5)) == b"0.5"
