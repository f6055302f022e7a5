"""Start and stop the real servers the tests (and benchmarks) talk to. No Docker, no mocks.

Milvus standalone 2.3 (``pip install milvus==2.3.5`` ships ``milvus-server``) listens on all
interfaces, so it is only started inside a private network namespace (see ``make test``):
there the only interface is ``lo`` and every server is reachable on loopback only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.procs import log_tail, stop_group

STANDALONE_PORT = 19530
PIDFILE = Path("/run/milvus/standalone.pid")
#: the proxy port of the test session's own 2.3 server: 19530, or another for a second session of the tests that
#: need one (scripts/run_tests.py sets VECBACKUP_TEST_MILVUS_PORT for it), each with a server of its own
SESSION_PORT = int(os.environ.get("VECBACKUP_TEST_MILVUS_PORT") or STANDALONE_PORT)
SESSION_URL = f"milvus://127.0.0.1:{SESSION_PORT}"  # as the CLI names it
SESSION_URI = f"http://127.0.0.1:{SESSION_PORT}"  # as pymilvus does


class ServerFailed(RuntimeError):
    pass


def in_private_netns() -> bool:
    """True when this process sees no network interface but loopback."""
    try:  # /proc/net/dev follows the network namespace (/sys/class/net may not)
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


def _exited_child(pgid: int) -> bool:
    """True when a process of the group ``pgid`` other than its leader has exited: milvus-server does not reap the
    Milvus it started (until it stops it), so a Milvus that died stays a zombie of its group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
        except OSError:
            continue  # gone meanwhile
        fields = rest.rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
        if int(pid) != pgid and int(fields[2]) == pgid and fields[0] == "Z":
            return True
    return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


#: server settings the test session starts Milvus with (``milvus-server --extra-config KEY=VALUE``): latency only,
#: nothing a test checks. A flush waits until every segment allocation of the collection has expired: the default
#: 2000 ms made each flush take 2.5-3 s, 400 ms about 1 s (the setting's warning is about lowering it for a data
#: directory a server has run on before; the session's server always starts on a fresh one). A Strong query waits
#: for the next time tick: 200 ms each at the default interval (every page of a backup, of read_rows), 66 ms at
#: 50 ms (20 ms would make it 32 ms, but more than doubles the idle server's CPU on this 2-core machine).
TEST_CONFIG = {"dataCoord.segment.assignmentExpiration": "400", "proxy.timeTickInterval": "50",
               "queryCoord.checkInterval": "200", "queryCoord.distPullInterval": "100"}

#: settings milvus.yaml of 2.3.5 does not list (``--extra-config`` only replaces listed keys), given the way Milvus
#: reads any setting from the environment: also latency only. A load waits for the query coordinator's channel and
#: segment checkers and an index build for the index scheduler, each at 1 s by default; at 200/200/100 ms a 700-row
#: restore took 4.9 s instead of 6.7 and a 5,000-row one 4.5 instead of 8.0 (idle CPU with 3 loaded collections:
#: 2 s per 15 s instead of 1)
TEST_ENV = {"QUERYCOORD_CHECKSEGMENTINTERVAL": "200", "QUERYCOORD_CHECKCHANNELINTERVAL": "200",
            "INDEXCOORD_SCHEDULER_INTERVAL": "100"}


class MilvusStandalone:
    """A real Milvus 2.3 standalone server on 127.0.0.1:``port`` (19530) with a fresh data directory, and
    ``extra_config`` (milvus.yaml keys, dotted) and ``extra_env`` (settings as environment variables) over the
    defaults. A second server beside the session's takes another ``port`` (its internal ports are picked free)."""

    def __init__(self, data_dir: Path, extra_config: dict[str, str] | None = None,
                 extra_env: dict[str, str] | None = None, port: int = STANDALONE_PORT, args: tuple[str, ...] = ()):
        self.port = port
        self.args = args  # more milvus-server options (``--etcd-port N``)
        self.data_dir = Path(data_dir)
        self.extra_env = dict(extra_env or {})
        self.log_path = self.data_dir.parent / "milvus-server.log"
        self.extra_config = dict(extra_config or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.failures: list[str] = []  # why the attempts of the last start() before the one that answered failed
        self.uri = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 180.0, attempts: int = 2) -> MilvusStandalone:
        """Start the server and wait until it answers. milvus-server checks its listen ports free, then starts
        Milvus, which panics when a port was taken in between ("bind: address already in use"), while the wrapper
        waits on: a Milvus that dies, or is not ready in ``timeout`` seconds, is started again on a fresh data
        directory, ``attempts`` times in all."""
        if not in_private_netns():
            raise ServerFailed(
                "refusing to start milvus-server outside a private network namespace (it listens on all "
                "interfaces); run the tests with `make test`")
        local = Path(sys.executable).parent / "milvus-server"  # the venv's, even when it is not on PATH
        exe = str(local) if local.exists() else shutil.which("milvus-server")
        if exe is None:
            raise ServerFailed("milvus-server not found; `pip install milvus==2.3.5` (make test does)")
        self.failures = []
        for _ in range(attempts):
            failure = self._start_once(exe, timeout)
            if not failure:
                return self
            self.failures.append(f"{failure}:\n{self.log_tail()}")
            shutil.rmtree(self.data_dir, ignore_errors=True)
        raise ServerFailed("\n".join(f"attempt {i + 1}: {f}" for i, f in enumerate(self.failures)))

    def _start_once(self, exe: str, timeout: float) -> str:
        """Start the server once: "" when it answers, else what went wrong (the server stopped)."""
        if _port_open(self.port):
            raise ServerFailed(f"port {self.port} is already in use in this namespace")
        self._clear_stale_pidfile()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "--data", str(self.data_dir)] + (["--proxy-port", str(self.port)] if self.port != STANDALONE_PORT
                                                      else []) + list(self.args)
        for key, value in self.extra_config.items():
            cmd += ["--extra-config", f"{key}={value}"]
        with open(self.log_path, "wb") as log:  # the server writes to its own copy of the descriptor
            proc = self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True, env={**os.environ, **self.extra_env})
        deadline = time.monotonic() + timeout
        failure = f"milvus-server not ready after {timeout:.0f}s"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                failure = f"milvus-server exited with {proc.returncode}"
                break
            if _exited_child(proc.pid):  # the wrapper does not notice: it would wait its own 180 s
                failure = "milvus exited under milvus-server"
                break
            if _port_open(self.port) and self._ready():
                return ""
            time.sleep(0.25)
        self.stop()
        return failure

    def _ready(self) -> bool:
        try:
            from pymilvus import MilvusClient

            c = MilvusClient(uri=self.uri, timeout=5)
            c.list_collections()
            c.close()
            return True
        except Exception:
            return False

    def log_tail(self, n: int = 60) -> str:
        """The wrapper's output (empty when it started Milvus), then Milvus's errors and the start of its panic."""
        logs = self.data_dir / "logs"
        parts = [log_tail(self.log_path, n)]
        try:
            errors = [line for line in (logs / "milvus-stdout.log").read_text(errors="replace").splitlines()
                      if "[ERROR]" in line or "[FATAL]" in line]
            parts.append("milvus-stdout.log, errors:\n" + "\n".join(line[:400] for line in errors[-10:]))
            stderr = (logs / "milvus-stderr.log").read_text(errors="replace")
            panic = stderr.find("panic:")
            parts.append("milvus-stderr.log: " + (stderr[panic:panic + 400] if panic >= 0 else stderr[-400:]))
        except OSError:
            pass
        return "\n".join(parts)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the group, then SIGKILL: the `milvus run standalone` child ignores SIGTERM."""
        if self.proc is None:
            return
        stop_group(self.proc, grace)
        self.proc = None
        self._clear_stale_pidfile()

    @staticmethod
    def _clear_stale_pidfile() -> None:
        try:
            pid = int(PIDFILE.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 0)
            alive = Path(f"/proc/{pid}/cmdline").read_bytes().find(b"milvus") >= 0
        except OSError:
            alive = False
        if not alive:
            PIDFILE.unlink(missing_ok=True)


def beside_the_session(data_dir: Path, extra_config: dict[str, str], port: int = 19540) -> MilvusStandalone:
    """A second 2.3 server (not started) that runs beside the session's: another proxy port, and its own embedded
    etcd on free ports (etcd's peer port, 2380, is fixed but for an embed config file, which Milvus reads from
    ``etcd.config.path``, here the environment's ETCD_CONFIG_PATH: milvus.yaml of 2.3.5 does not list that key)."""
    from tests.seaweedfs import free_ports

    client_port, peer_port = free_ports(2)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    etcd = data_dir.parent / "etcd.yaml"
    peer, client = f"http://127.0.0.1:{peer_port}", f"http://127.0.0.1:{client_port}"
    etcd.write_text(f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n"
                    f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n")
    return MilvusStandalone(data_dir, {**TEST_CONFIG, **extra_config}, {**TEST_ENV, "ETCD_CONFIG_PATH": str(etcd)},
                            port=port, args=("--etcd-port", str(client_port)))


def session_server(data_dir: Path) -> MilvusStandalone:
    """The test session's 2.3 server (not started): on 19530, or beside another session's on SESSION_PORT."""
    if SESSION_PORT == STANDALONE_PORT:
        return MilvusStandalone(data_dir, TEST_CONFIG, TEST_ENV)
    return beside_the_session(data_dir, {}, port=SESSION_PORT)
