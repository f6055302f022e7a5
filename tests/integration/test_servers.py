"""The test setup's own Milvus start, against the real server: a port taken between milvus-server's check and
Milvus's listen (as once in CI) is seen at once and the server started again."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.servers import beside_the_session


def _take_root_coord_port(config: Path, taken: list[socket.socket], stop: threading.Event) -> None:
    """Listen on root coord's port as soon as milvus-server has written it to the config, before Milvus starts
    (the wrapper unpacks its binaries in between)."""
    while not stop.is_set():
        text = config.read_text() if config.exists() else ""
        found = re.search(r"^rootCoord:\n(?:[ #].*\n)*?  port: (\d+)", text, re.M)
        if found:
            sock = socket.socket()
            sock.bind(("0.0.0.0", int(found.group(1))))  # Milvus listens on every interface
            sock.listen()
            taken.append(sock)
            return
        time.sleep(0.02)


def test_a_milvus_that_loses_a_port_is_seen_dying_and_started_again(standalone: Any, tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    server = beside_the_session(tmp_path / "data", {}, port=19550)
    taken: list[socket.socket] = []
    stop = threading.Event()
    thief = threading.Thread(target=_take_root_coord_port,
                             args=(server.data_dir / "configs" / "milvus.yaml", taken, stop), daemon=True)
    thief.start()
    try:
        server.start(timeout=120, attempts=2)
        client = MilvusClient(uri=server.uri, timeout=10)
        assert isinstance(client.list_collections(), list)
        client.close()
    finally:
        stop.set()
        server.stop()
        ports = [sock.getsockname()[1] for sock in taken]
        for sock in taken:
            sock.close()
    assert len(ports) == 1
    # the first attempt: Milvus panicked on the taken port, under a wrapper that would have waited 180 s; the error
    # says so with Milvus's own words (the wrapper's output is empty)
    assert len(server.failures) == 1, server.failures
    first = server.failures[0]
    assert first.startswith("milvus exited under milvus-server"), first
    assert f":{ports[0]}: bind: address already in use" in first, first
