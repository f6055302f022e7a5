"""Prometheus metrics: the exposition format, merging into a textfile, counters across runs, atomic writes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from vecbackup import metrics
from vecbackup.metrics import Outcome, Recorder, merge, parse, recording, render, update_textfile

# -- an independent, strict reader of the text exposition format (version 0.0.4) -----------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
_LABELS = rf"\{{(?:[a-zA-Z_][a-zA-Z0-9_]*={_LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*={_LABEL_VALUE})*)?\}}"
_VALUE = r"(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|[+-]Inf)"
SAMPLE = re.compile(rf"^({_NAME})({_LABELS})? ({_VALUE})$")
HELP = re.compile(rf"^# HELP ({_NAME}) (.*)$")
TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
PAIR = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)=({_LABEL_VALUE})")


def strict_parse(text: str) -> dict[str, dict[str, object]]:
    """{family: {"type", "help", "samples": [(labels dict, value)]}}; asserts on anything invalid."""
    assert text.endswith("\n")
    families: dict[str, dict[str, object]] = {}
    current = None
    for line in text.splitlines():
        if m := HELP.match(line):
            assert m.group(1) not in families, f"family {m.group(1)} appears twice"
            current = m.group(1)
            families[current] = {"help": m.group(2), "type": None, "samples": []}
        elif m := TYPE.match(line):
            assert m.group(1) == current, "TYPE must follow the family's HELP"
            assert not families[current]["samples"], "TYPE must come before the samples"
            families[current]["type"] = m.group(2)
        else:
            m = SAMPLE.match(line)
            assert m, f"not a valid sample line: {line!r}"
            assert m.group(1) == current, f"sample {m.group(1)} outside its family"
            labels = {k: re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), v[1:-1])
                      for k, v in PAIR.findall(m.group(2) or "")}
            families[current]["samples"].append((labels, float(m.group(3))))  # type: ignore[attr-defined]
    for name, fam in families.items():
        assert fam["type"] in ("gauge", "counter"), name
        if fam["type"] == "counter":
            assert name.endswith("_total")
    return families


def value(text: str, name: str, **labels: str) -> float | None:
    for lab, v in strict_parse(text).get(name, {"samples": []})["samples"]:  # type: ignore[attr-defined]
        if all(lab.get(k) == want for k, want in labels.items()):
            return float(v)
    return None


# -- tests -----------------------------------------------------------------------------------------------


def test_render_is_valid_exposition_with_help_type_and_all_labels():
    text = render(merge({}, [Outcome("articles", True, 12.5, rows=300, bytes=4096, uploaded=512)], job="vecbackup",
                        operation="backup", now=1_700_000_000.25))
    fams = strict_parse(text)
    assert set(fams) == {name for name, _, _ in metrics.FAMILIES}
    assert value(text, "vecbackup_uploaded_bytes") == 512
    for fam in fams.values():
        for labels, _ in fam["samples"]:  # type: ignore[attr-defined]
            assert labels == {"job": "vecbackup", "collection": "articles", "operation": "backup"}
    assert value(text, "vecbackup_last_success_timestamp_seconds") == 1_700_000_000.25
    assert value(text, "vecbackup_last_run_timestamp_seconds") == 1_700_000_000.25
    assert value(text, "vecbackup_last_run_success") == 1
    assert value(text, "vecbackup_duration_seconds") == 12.5
    assert value(text, "vecbackup_rows") == 300
    assert value(text, "vecbackup_bytes") == 4096
    assert value(text, "vecbackup_failures_total") == 0
    assert fams["vecbackup_failures_total"]["type"] == "counter"
    assert parse(text) == merge({}, [Outcome("articles", True, 12.5, rows=300, bytes=4096, uploaded=512)],
                                job="vecbackup",
                                operation="backup", now=1_700_000_000.25)


def test_label_values_are_escaped_and_round_trip():
    nasty = 'we"ird\\name\nline2'
    text = render(merge({}, [Outcome(nasty, True, 1.0, rows=1)], job='j"ob', operation="verify", now=1.0))
    assert '\\"' in text and "\\\\" in text and "\\n" in text
    assert len([line for line in text.splitlines() if line.startswith("vecbackup_rows")]) == 1
    assert value(text, "vecbackup_rows", collection=nasty, job='j"ob') == 1
    assert ("vecbackup_rows", (("collection", nasty), ("job", 'j"ob'), ("operation", "verify"))) in parse(text)


def test_special_values_round_trip():
    labels = (("collection", "a"), ("job", "j"), ("operation", "backup"))
    series = {("vecbackup_duration_seconds", labels): float("inf"), ("vecbackup_rows", labels): 3.0,
              ("vecbackup_bytes", labels): 0.5, ("vecbackup_last_run_timestamp_seconds", labels): 1_700_000_000.25}
    text = render(series)
    strict_parse(text)
    assert parse(text) == series
    nan = parse(render({("vecbackup_rows", labels): float("nan")}))
    assert list(nan) == [("vecbackup_rows", labels)] and nan[("vecbackup_rows", labels)] != 3.0
    assert render({}) == ""


def test_failure_counts_on_and_keeps_last_success(tmp_path: Path):
    path = tmp_path / "vecbackup.prom"
    update_textfile(path, [Outcome("a", True, 2.0, rows=10, bytes=100)], job="vecbackup", operation="backup",
                    now=1000.0)
    update_textfile(path, [Outcome("a", False, 3.0)], job="vecbackup", operation="backup", now=2000.0)
    text = update_textfile(path, [Outcome("a", False, 4.0)], job="vecbackup", operation="backup", now=3000.0)
    assert value(text, "vecbackup_failures_total") == 2
    assert value(text, "vecbackup_last_run_success") == 0
    assert value(text, "vecbackup_last_run_timestamp_seconds") == 3000.0
    assert value(text, "vecbackup_last_success_timestamp_seconds") == 1000.0  # unchanged by failures
    assert value(text, "vecbackup_rows") == 10  # of the last successful run
    assert value(text, "vecbackup_duration_seconds") == 4.0
    text = update_textfile(path, [Outcome("a", True, 1.0, rows=11, bytes=110)], job="vecbackup",
                           operation="backup", now=4000.0)
    assert value(text, "vecbackup_failures_total") == 2  # a counter never goes down
    assert value(text, "vecbackup_last_run_success") == 1
    assert value(text, "vecbackup_last_success_timestamp_seconds") == 4000.0
    assert value(text, "vecbackup_rows") == 11
    assert path.read_text() == text


def test_merge_keeps_other_collections_operations_and_jobs(tmp_path: Path):
    path = tmp_path / "vecbackup.prom"
    update_textfile(path, [Outcome("a", True, 1.0, rows=1)], job="vecbackup", operation="backup", now=10.0)
    update_textfile(path, [Outcome("b", False, 1.0)], job="vecbackup", operation="backup", now=20.0)
    update_textfile(path, [Outcome("a", True, 1.0, bytes=5)], job="vecbackup", operation="verify", now=30.0)
    text = update_textfile(path, [Outcome("a", True, 1.0)], job="nightly", operation="backup", now=40.0)
    series = {(lab["job"], lab["collection"], lab["operation"])
              for lab, _ in strict_parse(text)["vecbackup_last_run_timestamp_seconds"]["samples"]}  # type: ignore
    assert series == {("vecbackup", "a", "backup"), ("vecbackup", "b", "backup"), ("vecbackup", "a", "verify"),
                      ("nightly", "a", "backup")}
    assert value(text, "vecbackup_last_run_timestamp_seconds", collection="a", operation="backup",
                 job="vecbackup") == 10.0
    assert value(text, "vecbackup_failures_total", collection="b") == 1
    assert value(text, "vecbackup_last_success_timestamp_seconds", collection="b") is None  # never succeeded


def test_foreign_series_are_dropped_and_a_damaged_file_is_replaced(tmp_path: Path):
    path = tmp_path / "vecbackup.prom"
    path.write_text('# HELP other x\n# TYPE other gauge\nother{a="b"} 1\n')
    text = update_textfile(path, [Outcome("a", True, 1.0)], job="vecbackup", operation="backup", now=1.0)
    assert "other" not in strict_parse(text)
    path.write_text("this is {not exposition\n")
    text = update_textfile(path, [Outcome("a", False, 1.0)], job="vecbackup", operation="backup", now=2.0)
    assert value(text, "vecbackup_failures_total") == 1


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "vecbackup.prom"
    first = update_textfile(path, [Outcome("a", True, 1.0)], job="vecbackup", operation="backup", now=1.0)
    assert {p.name for p in tmp_path.iterdir()} == {"vecbackup.prom", "vecbackup.prom.lock"}  # nothing left over
    renames: list[tuple[str, str]] = []
    real_rename = os.rename

    def failing_rename(src: str, dst: str) -> None:
        renames.append((str(src), str(dst)))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError):
        update_textfile(path, [Outcome("a", False, 1.0)], job="vecbackup", operation="backup", now=2.0)
    ((src, dst),) = renames  # written beside it, then renamed over it
    assert dst == str(path) and Path(src).parent == path.parent and Path(src).name.startswith("vecbackup.prom.")
    assert path.read_text() == first  # a reader never sees a half-written or failed update
    assert not Path(src).exists()  # the failed write left nothing behind
    monkeypatch.setattr(os, "rename", real_rename)
    text = update_textfile(path, [Outcome("a", False, 1.0)], job="vecbackup", operation="backup", now=3.0)
    assert value(text, "vecbackup_failures_total") == 1


def test_recording_writes_on_failure_and_reraises(tmp_path: Path):
    path = tmp_path / "m.prom"
    warnings: list[str] = []
    with pytest.raises(RuntimeError), recording("backup", textfile=str(path), pushgateway=None, job=None,
                                                on_failure=["x", "y"], warn=warnings.append):
        raise RuntimeError("boom")
    text = path.read_text()
    assert value(text, "vecbackup_failures_total", collection="x") == 1
    assert value(text, "vecbackup_failures_total", collection="y") == 1
    assert value(text, "vecbackup_last_run_success", collection="x", job="vecbackup") == 0
    assert not warnings
    with pytest.raises(RuntimeError), recording("prune", textfile=str(path), pushgateway=None, job="j"):
        raise RuntimeError("boom")
    assert value(path.read_text(), "vecbackup_failures_total", collection="_all", operation="prune") == 1


def test_recorder_adds_up_several_backups_of_one_collection():
    rec = Recorder("verify")
    rec.record("a", True, seconds=1.0, rows=10, nbytes=100)
    rec.record("a", False, seconds=2.0, rows=5, nbytes=50)
    o = rec.outcomes["a"]
    assert (o.success, o.seconds, o.rows, o.bytes) == (False, 2.0, 15, 150)
    assert rec.flush() is None  # nothing configured: nothing written


def test_unwritable_textfile_and_bad_pushgateway_are_warnings(tmp_path: Path):
    warnings: list[str] = []
    rec = Recorder("backup", textfile=str(tmp_path / "no" / "such" / "dir" / "m.prom"),
                   pushgateway="ftp://user:secret@gw/x", warn=warnings.append)
    rec.record("a", True, rows=1)
    text = rec.flush()
    assert text is not None and value(text, "vecbackup_rows") == 1
    assert len(warnings) == 2
    assert "could not write metrics" in warnings[0]
    assert "secret" not in warnings[1] and "not an http(s) URL" in warnings[1]


def test_schedule_hook_writes_where_the_environment_says(tmp_path: Path):
    path = tmp_path / "sched.prom"
    env = {"VECBACKUP_METRICS_TEXTFILE": str(path)}
    assert metrics.record_schedule_run(job="nightly", status="ok", seconds=3.0, runs=1, env=env)
    text = metrics.record_schedule_run(job="nightly", status="failed", seconds=1.0, runs=2, failures=1,
                                       error="boom: secret detail", env=env)
    assert text == path.read_text()
    labels = {"job": "nightly", "collection": "_all", "operation": "schedule"}
    assert value(text, "vecbackup_failures_total", **labels) == 1
    assert value(text, "vecbackup_last_run_success", **labels) == 0
    assert value(text, "vecbackup_last_success_timestamp_seconds", **labels) is not None
    assert "boom" not in text
    assert metrics.record_schedule_run(job="nightly", status="ok", seconds=1.0, env={}) is None
