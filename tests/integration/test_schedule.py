"""`vecbackup schedule` against Milvus Lite and local stores, and option precedence (file < env < flag)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.datasets import build_in_own_process, build_vector_only

pytestmark = pytest.mark.lite


def _toml_str(p: object) -> str:
    return '"' + str(p).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _manifests(store_dir: Path) -> list[Path]:
    return sorted(store_dir.rglob("manifests/**/*.json"))


def _data_files(store_dir: Path) -> list[Path]:
    return sorted((store_dir / "data").rglob("*.vbc"))


# -- configuration: file < environment < flag ----------------------------------------------------------------


def _batch_size_of_last_backup(cli, store_dir: Path) -> int:
    r = cli("show", store_dir, "latest", "--json")
    assert r.code == 0, r.stderr
    return r.json()["options"]["batch_size"]


def test_option_precedence_file_env_flag(cli, lite, store_dir, tmp_path, monkeypatch):
    name = lite.new_name("prec")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=120)
    cfg = tmp_path / "conf.toml"
    cfg.write_text(f"[defaults]\ncompression_level = 5\n[backup]\nbatch_size = 50\ncollection = [\"{name}\"]\n")
    monkeypatch.setenv("VECBACKUP_CONFIG", str(cfg))
    for var in ("VECBACKUP_BACKUP_BATCH_SIZE", "VECBACKUP_BACKUP_COLLECTION"):
        monkeypatch.delenv(var, raising=False)

    # the file: batch_size and the collection (a multiple option, from a TOML list)
    r = cli("backup", lite.url, store_dir, "-q")
    assert r.code == 0, r.stderr
    assert _batch_size_of_last_backup(cli, store_dir) == 50
    show = cli("show", store_dir, "latest", "--json").json()
    assert show["options"]["compression_level"] == 5  # [defaults] reaches backup

    # the environment beats the file
    monkeypatch.setenv("VECBACKUP_BACKUP_BATCH_SIZE", "70")
    assert cli("backup", lite.url, store_dir, "-q").code == 0
    assert _batch_size_of_last_backup(cli, store_dir) == 70

    # a flag beats both
    assert cli("backup", lite.url, store_dir, "--batch-size", "90", "-q").code == 0
    assert _batch_size_of_last_backup(cli, store_dir) == 90

    # --config before the command name beats VECBACKUP_CONFIG
    other = tmp_path / "other.toml"
    other.write_text(f"[backup]\nbatch_size = 30\ncollection = \"{name}\"\n")
    monkeypatch.delenv("VECBACKUP_BACKUP_BATCH_SIZE")
    assert cli("--config", other, "backup", lite.url, store_dir, "-q").code == 0
    assert _batch_size_of_last_backup(cli, store_dir) == 30


def test_flag_named_env_var_and_help_shows_config_defaults(cli, lite, store_dir, tmp_path, monkeypatch):
    name = lite.new_name("envall")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=40)
    monkeypatch.setenv("VECBACKUP_BACKUP_ALL", "1")  # --all: named after the flag, not click's all_
    r = cli("backup", lite.url, store_dir, "--json")
    assert r.code == 0, r.stderr
    assert [b["collection"] for b in r.json()["backups"]] == [name]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[backup]\nbatch_size = 1234\n")
    r = cli("--config", cfg, "backup", "--help")
    assert r.code == 0 and "default: 1234" in r.stdout


def test_config_file_with_a_secret_is_refused(cli, lite, store_dir, tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[backup]\ntoken = "root:Milvus"\n')
    monkeypatch.setenv("VECBACKUP_CONFIG", str(cfg))
    r = cli("backup", lite.url, store_dir, "--all")
    assert r.code == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'token'" in errors[0] and "environment" in errors[0], r.stderr
    assert "root:Milvus" not in r.stderr + r.stdout
    assert not store_dir.exists()


def test_unknown_config_key_is_a_usage_error(cli, tmp_path, store_dir, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[list]\nbatch_size = 3\n")
    monkeypatch.setenv("VECBACKUP_CONFIG", str(cfg))
    r = cli("list", store_dir)
    assert r.code == 2 and "unknown option 'batch_size'" in r.stderr
    assert "known: allow_unencrypted, as_of, collection, json" in r.stderr


# -- schedule ------------------------------------------------------------------------------------------------


def _schedule_file(tmp_path: Path, heartbeat: Path, jobs: list[dict[str, object]]) -> Path:
    lines = [f"heartbeat = {_toml_str(heartbeat)}", ""]
    for job in jobs:
        lines.append("[[jobs]]")
        for k, v in job.items():
            if isinstance(v, list):
                lines.append(f"{k} = [{', '.join(_toml_str(x) for x in v)}]")
            elif isinstance(v, bool):
                lines.append(f"{k} = {str(v).lower()}")
            elif isinstance(v, int):
                lines.append(f"{k} = {v}")
            else:
                lines.append(f"{k} = {_toml_str(v)}")
        lines.append("")
    f = tmp_path / "schedule.toml"
    f.write_text("\n".join(lines))
    return f


def test_schedule_runs_jobs_repeatedly_and_a_failure_does_not_stop_others(cli, lite, store_dir, tmp_path):
    name = lite.new_name("sched")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=200)
    hb = tmp_path / "hb" / "vecbackup.heartbeat"
    f = _schedule_file(tmp_path, hb, [
        {"name": "good", "source": lite.url, "store": str(store_dir), "collections": [name], "every": "1s",
         "batch_size": 64, "keep_last": 2},
        {"name": "bad", "source": lite.url, "store": str(store_dir), "collections": ["no_such_collection"],
         "every": "1s"},
    ])
    prom = tmp_path / "metrics" / "vecbackup.prom"
    prom.parent.mkdir()
    t0 = time.monotonic()
    r = cli("schedule", f, "--max-runtime", "6", "--json", "--metrics-textfile", prom)
    assert r.code == 0, r.stderr
    assert time.monotonic() - t0 < 30
    doc = r.json()
    state = orjson.loads(hb.read_bytes())
    for d in (doc, state):
        good, bad = d["jobs"]["good"], d["jobs"]["bad"]
        assert good["runs"] >= 3 and good["failures"] == 0 and good["status"] == "ok", good
        assert bad["runs"] >= 3 and bad["failures"] == bad["runs"] and bad["status"] == "failed", bad
        assert bad["last_exit_code"] == 4 and "no_such_collection" in bad["last_error"]
        assert good["last_result"]["backups"][0]["rows"] == 200
        assert len(good["last_result"]["pruned"][0]["kept"]) == 2  # the ids of the backups kept, as prune says
    assert "job bad failed (exit 4)" in r.stderr
    # metrics (vecbackup.metrics): the job label is the job's name
    from vecbackup.metrics import parse

    series = {(name_, dict(labels)["job"], dict(labels)["collection"], dict(labels)["operation"]): v
              for (name_, labels), v in parse(prom.read_text()).items()}
    assert series[("vecbackup_last_run_success", "good", name, "backup")] == 1
    assert series[("vecbackup_rows", "good", name, "backup")] == 200
    assert series[("vecbackup_failures_total", "good", name, "backup")] == 0
    assert series[("vecbackup_last_run_success", "bad", "no_such_collection", "backup")] == 0
    assert series[("vecbackup_failures_total", "bad", "no_such_collection", "backup")] == state["jobs"]["bad"]["runs"]
    assert series[("vecbackup_last_run_success", "good", name, "prune")] == 1
    # retention ran after each successful backup: keep_last 2
    listed = cli("list", store_dir, "--json").json()["backups"]
    assert len(listed) == 2 and {b["collection"] for b in listed} == {name}
    assert cli("verify", store_dir, "--all").code == 0


def test_schedule_once(cli, lite, store_dir, tmp_path):
    name = lite.new_name("once")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=50)
    hb = tmp_path / "hb.json"
    good = {"name": "good", "source": lite.url, "store": str(store_dir), "collections": [name], "every": "6h"}
    bad = {"name": "bad", "source": lite.url, "store": str(store_dir), "collections": ["nope"], "at": "02:15"}
    r = cli("schedule", _schedule_file(tmp_path, hb, [good, bad]), "--once", "--json")
    assert r.code == 3, r.stderr
    assert r.json()["ok"] is False and r.json()["jobs"]["bad"]["status"] == "failed"
    assert r.json()["jobs"]["good"]["runs"] == 1
    assert len(_manifests(store_dir)) == 1
    r = cli("schedule", _schedule_file(tmp_path, hb, [good]), "--once", "-q")
    assert r.code == 0, r.stderr
    assert orjson.loads(hb.read_bytes())["jobs"]["good"]["status"] == "ok"
    assert len(_manifests(store_dir)) == 2


def test_schedule_file_errors(cli, tmp_path, store_dir):
    f = tmp_path / "s.toml"
    f.write_text('[[jobs]]\nname = "a"\nsource = "milvus-lite:///x.db"\nstore = "/tmp/x"\nall = true\n'
                 'every = "1h"\npassword = "p"\n')
    r = cli("schedule", f, "--once")
    assert r.code == 2 and "'password' is a secret" in r.stderr and "\"p\"" not in r.stderr
    r = cli("schedule", tmp_path / "missing.toml", "--once")
    assert r.code == 2 and "not found" in r.stderr


def test_sigterm_interrupts_the_running_job_and_exits_0(store_dir, tmp_path):
    """A container stop mid-backup: the scheduler exits 0 promptly, no manifest, chunks left for the next run."""
    db = tmp_path / "own.db"  # Milvus Lite lets one process at a time open a file: build it in another
    build_in_own_process(db, "big", n=3000)
    hb = tmp_path / "hb.json"
    f = _schedule_file(tmp_path, hb, [{"name": "big", "source": f"milvus-lite://{db}", "store": str(store_dir),
                                       "collections": ["big"], "every": "1s", "batch_size": 10}])
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", "schedule", str(f)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_data_files(store_dir)) < 3 and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        assert _data_files(store_dir), "the job never started"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if _manifests(store_dir):
        pytest.fail("the backup finished before SIGTERM; make the collection bigger")
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 20
    assert "Traceback" not in err and "interrupted" in err
    state = orjson.loads(hb.read_bytes())
    assert state["jobs"]["big"]["status"] == "interrupted" and state["running"] is None
    assert not list(store_dir.rglob("locks/*.json"))  # its lock was released


def test_sigterm_while_idle_exits_0(store_dir, tmp_path):
    hb = tmp_path / "hb.json"
    f = _schedule_file(tmp_path, hb, [{"name": "later", "source": f"milvus-lite://{tmp_path / 'x.db'}",
                                       "store": str(store_dir), "all": True, "at": "02:15"}])
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", "schedule", str(f)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hb.exists():
            time.sleep(0.05)
        assert hb.exists()
        before = hb.stat().st_mtime
        time.sleep(1.5)
        assert hb.stat().st_mtime > before  # rewritten every loop iteration
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    state = orjson.loads(hb.read_bytes())
    assert state["jobs"]["later"]["status"] == "never" and state["jobs"]["later"]["next_run"]
