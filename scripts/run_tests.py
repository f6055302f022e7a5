"""``make test``: the test suite as two pytest sessions at once, inside the caller's private network namespace.

One session runs the tests marked ``standalone`` (tests/conftest.py marks every test that needs the session's
Milvus 2.3 server); the other runs the rest (Milvus Lite, Qdrant local mode, the stores, unit tests). Both spend
most of their time waiting on round trips and on the server's own timers rather than on the CPU, so on two cores
they overlap well. Each has its own temporary directory and its own servers (SeaweedFS, Azurite on free ports); only
the standalone session starts a Milvus server, so a test marked wrongly fails on a taken port instead of passing
quietly. The standalone session's output streams; the other's is printed when both are done. The exit code is the
worse of the two (pytest's 5, "no tests collected", counts as success unless neither session collected any).

    python -m scripts.run_tests [PYTEST ARGS...]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NO_TESTS = 5
GROUPS = (("standalone", "standalone"), ("rest", "not standalone"))


def main(argv: list[str]) -> int:
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="vecbackup-tests-"))
    log = root / "rest.log"
    procs = {}
    with open(log, "w") as rest_out:
        for name, marker in GROUPS:
            cmd = [sys.executable, "-m", "pytest", "-m", marker, f"--basetemp={root / name}", *argv]
            out = None if name == "standalone" else rest_out
            procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None)
        codes = {name: p.wait() for name, p in procs.items()}
    print(f"\n===== the other session ({GROUPS[1][1]}) =====", flush=True)
    sys.stdout.write(log.read_text())
    summary = ", ".join(f"{name}: exit {code}" for name, code in codes.items())
    print(f"\n===== both sessions done in {time.monotonic() - t0:.0f}s ({summary}) =====", flush=True)
    if all(code == NO_TESTS for code in codes.values()):
        return NO_TESTS
    failed = [code for code in codes.values() if code not in (0, NO_TESTS)]
    if not failed:  # a failure's files stay for a look
        shutil.rmtree(root, ignore_errors=True)
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
