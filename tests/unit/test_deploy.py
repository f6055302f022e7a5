"""Every deployment file parses, and every vecbackup command it runs is a valid invocation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from vecbackup.cli import app

DEPLOY = Path(__file__).parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
WORKFLOWS = sorted((DEPLOY / "ci").glob("*.yml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _config_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for path in MANIFESTS:
        for doc in _docs(path):
            if doc["kind"] in ("ConfigMap", "Secret"):
                values.update(doc.get("data") or {})
                values.update(doc.get("stringData") or {})
    return values


def _job_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc.get("spec", {})
    return spec["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else spec


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in ("CronJob", "Job"):
        return list(_job_spec(doc)["template"]["spec"]["containers"])
    return []


def _env(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """What Kubernetes puts in a container's environment besides the ConfigMap: its own ``env`` (a fieldRef
    stands for a value the pod gets, e.g. the Job's name) and, in an Indexed Job, JOB_COMPLETION_INDEX."""
    env = {e["name"]: e.get("value", "job-29415") for e in container.get("env", [])}
    if _job_spec(doc).get("completionMode") == "Indexed":
        env["JOB_COMPLETION_INDEX"] = str(_job_spec(doc)["completions"] - 1)
    return env


def check_invocation(args: list[str]) -> str:
    """Parse ``vecbackup ARGS`` exactly as the CLI would, without running it; returns the command name."""
    group = get_command(app)
    name, rest = args[0], list(args[1:])
    cmd = group.get_command(group.make_context("vecbackup", [name]), name)  # type: ignore[attr-defined]
    assert cmd is not None, f"no command {name!r}"
    cmd.make_context(name, rest)  # raises on an unknown option or a missing argument, runs nothing
    return name


def test_there_are_manifests():
    kinds = {d["kind"] for p in MANIFESTS for d in _docs(p)}
    assert {"CronJob", "Job", "Secret", "ConfigMap", "ServiceAccount"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_commands_are_valid(path: Path):
    values = _config_values()
    for doc in _docs(path):
        assert doc["apiVersion"] and doc["metadata"]["name"]
        for c in _containers(doc):
            assert "vecbackup" in c["image"]
            refs = {r["configMapRef"]["name"] for r in c.get("envFrom", []) if "configMapRef" in r}
            assert refs <= {"vecbackup-config"}
            env = {**values, **_env(doc, c)}
            args = [re.sub(r"\$\((\w+)\)", lambda m, env=env: env[m.group(1)], a) for a in c["args"]]
            check_invocation(args)
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_sharded_backup_and_restore_are_indexed_jobs_that_commit():
    jobs = [d for p in MANIFESTS for d in _docs(p) if d["kind"] in ("Job", "CronJob")
            and _job_spec(d).get("completionMode") == "Indexed"]
    assert jobs, "no Indexed Job in deploy/kubernetes"
    for doc in jobs:
        spec = _job_spec(doc)
        (c,) = _containers(doc)
        args = c["args"]
        shard = args[args.index("--shard") + 1]
        assert shard == f"$(JOB_COMPLETION_INDEX)/{spec['completions']}"  # one shard per pod, N = completions
        assert spec["parallelism"] <= spec["completions"]
        assert "--commit" in args  # the last worker to finish commits the run
        run = args[args.index("--run") + 1]
        (var,) = re.findall(r"\$\((\w+)\)", run)
        (entry,) = [e for e in c["env"] if e["name"] == var]  # the same run id in every pod of one Job
        assert "job-name" in entry["valueFrom"]["fieldRef"]["fieldPath"]
        if args[0] == "restore":  # every worker restores the same backup: an id, not "latest"
            backup = args[args.index("--backup") + 1]
            (var,) = re.findall(r"\$\((\w+)\)", backup)
            (entry,) = [e for e in c["env"] if e["name"] == var]
            assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}", entry["value"])
    assert {_containers(d)[0]["args"][0] for d in jobs} == {"backup", "restore"}


def test_secrets_only_in_secrets():
    secret_names = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY|CONNECTION_STRING|ACCOUNT_KEY", re.I)
    for path in MANIFESTS:
        for doc in _docs(path):
            if doc["kind"] == "ConfigMap":
                assert not [k for k in doc["data"] if secret_names.search(k)], path


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_commands_are_valid(path: Path):
    wf = yaml.safe_load(path.read_text())
    runs = [step["run"] for job in wf["jobs"].values() for step in job["steps"] if "run" in step]
    commands = [line.strip() for run in runs for line in run.replace("\\\n", " ").splitlines()
                if line.strip().startswith("vecbackup ")]
    assert commands
    for line in commands:
        args = [a.strip("'\"") for a in line.split()[1:]]
        args = [re.sub(r"\$\{\{[^}]+\}\}|\$\w+", "x", a) for a in args]
        check_invocation(args)


def test_invalid_invocations_are_caught():
    with pytest.raises(Exception):  # noqa: B017 - whatever the parser raises
        check_invocation(["backup", "--no-such-option"])
    with pytest.raises(Exception):  # noqa: B017
        check_invocation(["prune"])


def test_dockerfile_runs_vecbackup():
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["vecbackup"]' in text and "USER 10001" in text
