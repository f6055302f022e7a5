"""Runs one fuzz target: ``python -m fuzz._harness TARGET [--seconds N] [--engine auto|atheris|hypothesis] ...``.

* atheris (coverage-guided libFuzzer; ``pip install atheris``, Linux x86-64 wheels): vecbackup is instrumented as
  the target imports it; the corpus (seeds from the target's ``seeds()``, then whatever libFuzzer finds) lives in
  ``<workdir>/corpus``, a crashing input goes to ``<workdir>/crashes/crash-<sha1>`` (``timeout-``, ``oom-``);
* hypothesis (the fallback when atheris is not installed): random bytes, the seeds, and the seeds with random
  edits, in rounds of 1000 inputs until the time is up; a crasher is shrunk and written the same way.

Both print libFuzzer's final stats lines (``stat::number_of_executed_units: N``, ``stat::average_exec_per_sec:``)
for fuzz/run.py, and exit non-zero on a crash. ``--reproduce FILE...`` runs the target once on each file.
Nothing from vecbackup is imported before the target is (so atheris can instrument it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn

TARGETS = ("manifest", "chunk", "digests", "keys", "local_store", "urls", "config", "options", "crypto", "binlog")
HERE = Path(__file__).resolve().parent


def have_atheris() -> bool:
    return importlib.util.find_spec("atheris") is not None


def load(name: str, *, instrument: bool) -> ModuleType:
    module = f"fuzz.fuzz_{name}"
    if not instrument:
        return importlib.import_module(module)
    import atheris

    if any(m == "vecbackup" or m.startswith("vecbackup.") for m in sys.modules):
        raise RuntimeError("vecbackup was imported before the harness could instrument it")
    with atheris.instrument_imports(include=["vecbackup", "fuzz"]):
        return importlib.import_module(module)


def write_seeds(target: ModuleType, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds():
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)


def stats(executions: int, seconds: float) -> None:
    print(f"stat::number_of_executed_units: {executions}", file=sys.stderr)
    print(f"stat::average_exec_per_sec: {int(executions / max(seconds, 1e-9))}", file=sys.stderr)


def run_atheris(name: str, seconds: int, work: Path, rss_limit_mb: int, timeout: int, extra: list[str]) -> NoReturn:
    import atheris

    target = load(name, instrument=True)
    write_seeds(target, work / "corpus")
    (work / "crashes").mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], f"-max_total_time={seconds}", f"-rss_limit_mb={rss_limit_mb}", f"-timeout={timeout}",
            f"-max_len={target.MAX_LEN}", "-len_control=0", f"-artifact_prefix={work / 'crashes'}/",
            "-print_final_stats=1", *extra, str(work / "corpus")]
    atheris.Setup(argv, target.one_input)
    atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a crash
    raise AssertionError("atheris.Fuzz() returned")


def run_hypothesis(name: str, seconds: int, work: Path) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    target = load(name, instrument=False)
    seeds = list(target.seeds())
    write_seeds(target, work / "corpus")

    @st.composite
    def edited(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data)))
            op = draw(st.integers(0, 5))
            if op == 0 and pos < len(data):
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == 1 and pos < len(data):
                data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]) | st.integers(0, 255))
            elif op == 2:
                data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
            elif op == 3:
                del data[pos : pos + draw(st.integers(1, 32))]
            elif op == 4:
                data[pos:pos] = data[pos : pos + draw(st.integers(1, 32))]
            else:
                other = draw(st.sampled_from(seeds))
                data[pos:] = other[draw(st.integers(0, len(other))) :]
        return bytes(data[: target.MAX_LEN])

    executions = 0
    last = [b""]

    @settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=(Phase.generate, Phase.shrink), report_multiple_bugs=False)
    @given(st.binary(max_size=target.MAX_LEN) | st.sampled_from(seeds) | edited())
    def one_round(data: bytes) -> None:
        nonlocal executions
        executions += 1
        last[0] = data
        target.one_input(data)

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            one_round()
        except Exception:
            crashes = work / "crashes"
            crashes.mkdir(parents=True, exist_ok=True)
            path = crashes / f"crash-{hashlib.sha1(last[0]).hexdigest()}"
            path.write_bytes(last[0])  # hypothesis runs the shrunk example last
            traceback.print_exc()
            print(f"crash: {path}", file=sys.stderr)
            stats(executions, time.monotonic() - start)
            return 1
    stats(executions, time.monotonic() - start)
    return 0


def reproduce(name: str, files: list[str]) -> int:
    target = load(name, instrument=False)
    failed = 0
    for f in files:
        try:
            target.one_input(Path(f).read_bytes())
            print(f"{f}: ok")
        except Exception:
            failed += 1
            print(f"{f}: crashes", file=sys.stderr)
            traceback.print_exc()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz._harness", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=TARGETS)
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    p.add_argument("--workdir", type=Path, default=None, help="default: fuzz/.work/<target>")
    p.add_argument("--rss-limit-mb", type=int, default=2048)
    p.add_argument("--timeout", type=int, default=30, help="seconds one input may take (atheris)")
    p.add_argument("--reproduce", nargs="+", metavar="FILE", help="run the target once on each file")
    p.add_argument("--libfuzzer", action="append", default=[], metavar="-FLAG=VALUE",
                   help="an extra libFuzzer flag (repeatable)")
    args = p.parse_args(argv)
    work = (args.workdir or HERE / ".work" / args.target).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["VECBACKUP_FUZZ_WORKDIR"] = str(work)
    if args.reproduce:
        return reproduce(args.target, args.reproduce)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if have_atheris() else "hypothesis"
    print(f"engine: {engine}", file=sys.stderr, flush=True)
    if engine == "atheris":
        run_atheris(args.target, args.seconds, work, args.rss_limit_mb, args.timeout, args.libfuzzer)
    return run_hypothesis(args.target, args.seconds, work)


def main_for(target: str) -> NoReturn:
    """``python -m fuzz.fuzz_<target> [options]``: the same as ``python -m fuzz._harness <target> [options]``, in a
    fresh interpreter (this one imported vecbackup uninstrumented already)."""
    os.execv(sys.executable, [sys.executable, "-m", "fuzz._harness", target, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
