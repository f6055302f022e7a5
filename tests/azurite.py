"""Azurite, Microsoft's Azure Storage emulator: a real Azure Blob endpoint for the tests. No mocks.

``make test`` installs it into ``.tools`` (``npm install --prefix .tools azurite@3.35.0``). It listens on
127.0.0.1 only, on a free port, with its data in a folder of the test's choosing.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.procs import log_tail, stop_group

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"

ACCOUNT_NAME = "devstoreaccount1"
#: Azurite's well-known development key (public, documented by Microsoft; not a secret)
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    """One azurite-blob process on 127.0.0.1:<free port>, its data under ``workdir``."""

    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "azurite.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
                f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};")

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (or monkeypatch) that should use this Azurite."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Azurite:
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"Azurite is not installed ({AZURITE_BIN} is missing); `make test` installs it "
                               "(npm install --prefix .tools azurite@3.35.0)")
        if self.proc is not None:
            raise RuntimeError("Azurite is already running")
        if not self.port:
            self.port = _free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
               "--location", str(self.data_dir), "--silent", "--skipApiVersionCheck", "--loose",
               "--disableTelemetry"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server writes to it until stop()
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"azurite-blob exited with {code}:\n{self.log_tail()}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"azurite-blob not ready on port {self.port} after {timeout:.0f}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        # any HTTP answer (even 400/403) means the server is listening and handling requests
        try:
            with urllib.request.urlopen(f"{self.blob_endpoint}?comp=list", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, grace)

    def restart(self, timeout: float = 60.0) -> Azurite:
        """Stop and start again on the same port with the same data."""
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        return log_tail(self.log_path, n)

    # -- clients -----------------------------------------------------------------------------------

    def service_client(self, **kwargs: Any) -> Any:
        from azure.storage.blob import BlobServiceClient

        kwargs.setdefault("retry_total", 0)
        return BlobServiceClient.from_connection_string(self.connection_string, **kwargs)

    def create_container(self, name: str) -> Any:
        """Create a container and return its ContainerClient."""
        return self.service_client().create_container(name)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
