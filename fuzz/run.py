"""``make fuzz``: every fuzz target for ``--seconds`` each (default 300), one after the other, each in its own process.

    python -m fuzz.run                         # all targets, 5 minutes each, atheris if installed
    python -m fuzz.run --seconds 60 chunk urls # some targets, a minute each
    make fuzz FUZZ_ARGS="--seconds 60 --engine hypothesis"

Writes a summary (target, engine, seconds, executions, executions/s, corpus size, crashes) to fuzz/RESULTS.md and
exits 1 if any target crashed, printing the crasher's traceback and how to run it again:

    python -m fuzz._harness chunk --reproduce fuzz/.work/chunk/crashes/crash-<sha1>

Each target's corpus and crashers stay in fuzz/.work/<target>/ (not committed; later runs start from the corpus).
A crasher, once fixed, belongs in tests/unit/test_fuzz_parsers.py as a regression example.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from fuzz._harness import TARGETS, have_atheris

HERE = Path(__file__).resolve().parent
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


@dataclass
class Result:
    target: str
    engine: str
    seconds: float
    executions: int
    exec_per_sec: int
    corpus: int
    crashes: list[Path]
    returncode: int
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.crashes


def _stat(log: str, name: str) -> int:
    found = re.findall(rf"stat::{name}:\s*(\d+)", log)
    return int(found[-1]) if found else 0


def run_target(name: str, args: argparse.Namespace) -> Result:
    work = (args.workdir / name).resolve()
    crashes = work / "crashes"
    before = set(crashes.iterdir()) if crashes.is_dir() else set()
    cmd = [sys.executable, "-m", "fuzz._harness", name, "--seconds", str(args.seconds), "--engine", args.engine,
           "--workdir", str(work), "--rss-limit-mb", str(args.rss_limit_mb), "--timeout", str(args.timeout)]
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    start = time.monotonic()
    with log.open("wb") as out:
        try:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=HERE.parent,
                                timeout=args.seconds + 300).returncode
        except subprocess.TimeoutExpired:
            rc = -1  # hung past its time: counted as a crash
    elapsed = time.monotonic() - start
    text = log.read_text(errors="replace")
    engine = re.search(r"^engine: (\w+)", text, re.M)
    new = sorted(p for p in (set(crashes.iterdir()) if crashes.is_dir() else set()) - before
                 if p.name.startswith(ARTIFACTS))
    corpus = work / "corpus"
    return Result(name, engine.group(1) if engine else args.engine, round(elapsed, 1),
                  _stat(text, "number_of_executed_units"), _stat(text, "average_exec_per_sec"),
                  sum(1 for _ in corpus.iterdir()) if corpus.is_dir() else 0, new, rc, log)


def report(results: list[Result], args: argparse.Namespace) -> str:
    atheris = metadata.version("atheris") if have_atheris() else "not installed"
    lines = [
        "# Fuzzing results",
        "",
        f"`python -m fuzz.run --seconds {args.seconds}` (`make fuzz`), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, atheris {atheris}, {platform.machine()}.",
        "",
        "| target | engine | seconds | executions | exec/s | corpus | crashes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        crashed = len(r.crashes) or (0 if r.returncode == 0 else 1)
        lines.append(f"| {r.target} | {r.engine} | {r.seconds:g} | {r.executions} | {r.exec_per_sec} | {r.corpus} | "
                     f"{crashed} |")
    lines += ["", "What each target checks: the docstring of fuzz/fuzz_<target>.py. Crashers found and fixed are "
              "kept as regression tests in tests/unit/test_fuzz_parsers.py.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.splitlines()[0])
    p.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: all of {', '.join(TARGETS)}")
    p.add_argument("--seconds", type=int, default=300, help="per target (default 300)")
    p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    p.add_argument("--workdir", type=Path, default=HERE / ".work")
    p.add_argument("--rss-limit-mb", type=int, default=2048, help="a target using more crashes (atheris)")
    p.add_argument("--timeout", type=int, default=30, help="seconds one input may take (atheris)")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = p.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    targets = args.targets or list(TARGETS)
    results = []
    for name in targets:
        print(f"fuzz {name}: {args.seconds} s ...", flush=True)
        r = run_target(name, args)
        results.append(r)
        status = "ok" if r.ok else f"CRASH (exit {r.returncode})"
        print(f"fuzz {name}: {status}, {r.executions} executions in {r.seconds:g} s ({r.exec_per_sec}/s), "
              f"corpus {r.corpus}", flush=True)
        if not r.ok:
            tail = r.log.read_text(errors="replace").splitlines()[-60:]
            print("\n".join(f"    {line}" for line in tail), flush=True)
            for c in r.crashes:
                print(f"    again: python -m fuzz._harness {name} --reproduce {c}", flush=True)
    args.results.write_text(report(results, args))
    print(f"summary: {args.results}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
