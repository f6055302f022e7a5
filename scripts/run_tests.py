"""``make test``: the test suite as three pytest sessions at once, inside the caller's private network namespace.

* the tests marked ``standalone`` (tests/conftest.py marks every test that needs the session's Milvus 2.3 server),
  against a 2.3 server on 19530;
* the tests marked ``second_server`` (every test of the modules in tests/conftest.py SECOND_SERVER_MODULES), those
  of them that need a 2.3 server against one of their own on SECOND_PORT;
* the rest (Milvus Lite, Qdrant local mode, the stores, unit tests).

The server tests spend most of their time waiting on the server's own timers (flushes, index builds, loads) rather
than on the CPU, so on two cores the three overlap well. Each session has its own temporary directory and its own
servers (SeaweedFS, Azurite on free ports); a test that needs a Milvus server but is not marked fails on a missing
one instead of passing quietly. The first session's output streams; the others' are printed when all are done. The
exit code is the worst of them (pytest's 5, "no tests collected", counts as success unless no session collected
any).

    python -m scripts.run_tests [PYTEST ARGS...]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NO_TESTS = 5
#: the proxy port of the second session's 2.3 server (tests/servers.py SESSION_PORT), and the variable naming it
SECOND_PORT = "19560"
PORT_VARIABLE = "VECBACKUP_TEST_MILVUS_PORT"
#: (name, marker expression, environment) of each session; the first streams its output
GROUPS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("standalone", "standalone and not second_server", {}),
    ("second-server", "second_server", {PORT_VARIABLE: SECOND_PORT}),
    ("rest", "not standalone and not second_server", {}),
)


def main(argv: list[str]) -> int:
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="vecbackup-tests-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: root / f"{name}.log" for name, _, _ in GROUPS[1:]}
    outs = {name: open(log, "wb") for name, log in logs.items()}  # noqa: SIM115 - closed below
    inherited = {k: v for k, v in os.environ.items() if k != PORT_VARIABLE}  # the first server is on 19530
    try:
        for name, marker, env in GROUPS:
            cmd = [sys.executable, "-m", "pytest", "-m", marker, f"--basetemp={root / name}", *argv]
            out = outs.get(name)  # (None: the first session's output streams)
            procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None,
                                           env={**inherited, **env})
        codes = {name: proc.wait() for name, proc in procs.items()}
    finally:
        for f in outs.values():
            f.close()
    for name, marker, _ in GROUPS[1:]:
        print(f"\n===== the {name} session ({marker}) =====", flush=True)
        sys.stdout.write(logs[name].read_text(errors="replace"))
    summary = ", ".join(f"{name}: exit {code}" for name, code in codes.items())
    print(f"\n===== all sessions done in {time.monotonic() - t0:.0f}s ({summary}) =====", flush=True)
    if all(code == NO_TESTS for code in codes.values()):
        return NO_TESTS
    failed = [code for code in codes.values() if code not in (0, NO_TESTS)]
    if not failed:  # a failure's files stay for a look
        shutil.rmtree(root, ignore_errors=True)
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
