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


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if doc["kind"] in ("CronJob", "Job"):
        return spec["template"]["spec"]["containers"]
    return []


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
            args = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in c["args"]]
            check_invocation(args)
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


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
