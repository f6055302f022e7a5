"""Object store throughput: the local folder store, S3 (a real SeaweedFS) and Azure Blob (a real Azurite).

Both servers are started here on 127.0.0.1, on the same machine as the client, and stopped before
``run`` returns (even on error). Two workloads, each timed as one wall-clock interval around store calls:

- one large object: ``store.put`` then ``store.get`` of ``large_mib`` MiB of random bytes, with the store's
  own ``concurrency`` at each level (S3: parallel multipart parts of ``S3_PART``; Azure: parallel blocks
  of ``AZURE_BLOCK`` on upload, parallel ranged reads on download; the local store has no such knob);
- many backup-sized objects: ``small_count`` objects of ``small_bytes`` (one 5000-row chunk of 128-d
  vectors), ``n`` at a time through a thread pool over ``store.put`` / ``store.get``, as a backup's data
  objects go up (ops/backup.py) and come back (ops/fetch.py).

The stores are the ones vecbackup opens (remote ones wrapped in RetryingStore); CPU time of this process
and of the server's process group is recorded alongside each interval.
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
S3_PART = 16 * MiB  # multipart chunk size for the large S3 object
AZURE_BLOCK = 8 * MiB  # block size for the large Azure object
DEFAULT_CONCURRENCY = 4  # S3Store's and AzureStore's default
SMALL_BYTES = 5000 * 128 * 4 + 5000 * 12  # ~2.5 MiB: a 5000-row chunk of 128-d float32 vectors (+ ids etc.)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting --------------------------------------------------------------------------------------


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return ru.ru_utime + ru.ru_stime


def _group_cpu(pgid: int | None) -> float:
    """user + system CPU seconds of the live processes in process group ``pgid`` (a server and its children)."""
    if pgid is None:
        return 0.0
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:  # state ppid pgrp ... utime(14) stime(15)
            total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def _machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


class Meter:
    """Wall time and CPU (this process, the server, everything else on the machine) of one interval."""

    def __init__(self, server_pgid: int | None, totals: dict[str, float]) -> None:
        self.pgid = server_pgid
        self.totals = totals  # summed over every interval measured: seconds, other_cpu_s

    @contextmanager
    def measure(self, out: dict[str, float]) -> Iterator[None]:
        gc.collect()
        c0, s0, m0, t0 = _self_cpu(), _group_cpu(self.pgid), _machine_cpu(), time.perf_counter()
        yield
        out["seconds"] = time.perf_counter() - t0
        out["client_cpu_s"] = _self_cpu() - c0
        out["server_cpu_s"] = _group_cpu(self.pgid) - s0
        # the rest of the machine: other people's work competing for the same cores (clock-tick granular)
        out["other_cpu_s"] = max(0.0, _machine_cpu() - m0 - out["client_cpu_s"] - out["server_cpu_s"])
        for k in ("seconds", "other_cpu_s"):
            self.totals[k] = self.totals.get(k, 0.0) + out[k]


def _rate(nbytes: int, r: dict[str, float]) -> dict[str, float]:
    r["mb_per_s"] = nbytes / 1e6 / r["seconds"]
    r["cores_busy"] = (r["client_cpu_s"] + r["server_cpu_s"]) / r["seconds"]
    return r


# -- the two workloads -------------------------------------------------------------------------------------


def _large(store: Any, meter: Meter, key: str, data: bytes) -> dict[str, Any]:
    up: dict[str, float] = {}
    down: dict[str, float] = {}
    with meter.measure(up):
        store.put(key, data)
    with meter.measure(down):
        got = store.get(key)
    if got != data:
        raise RuntimeError(f"{key}: read back {len(got)} bytes that differ from the {len(data)} written")
    del got
    store.delete(key)
    return {"put": _rate(len(data), up), "get": _rate(len(data), down)}


def _many(store: Any, meter: Meter, prefix: str, objects: Sequence[bytes], in_flight: int) -> dict[str, Any]:
    keys = [f"{prefix}/{i:04d}" for i in range(len(objects))]
    total = sum(len(o) for o in objects)
    up: dict[str, float] = {}
    down: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="bench-store") as pool:
        with meter.measure(up):
            list(pool.map(store.put, keys, objects))
        with meter.measure(down):
            got = list(pool.map(store.get, keys))
        if got != list(objects):
            raise RuntimeError(f"{prefix}: objects read back differ from the ones written")
        del got
        list(pool.map(store.delete, keys))
    return {"put": _rate(total, up), "get": _rate(total, down)}


@dataclass
class Plan:
    large: bytes
    objects: Sequence[bytes]
    levels: Sequence[int]  # store concurrency for the large object
    in_flight: Sequence[int]  # objects in flight for the many objects
    repeat: int
    log: Callable[[str], None]
    totals: dict[str, float] = field(default_factory=dict)


def _median_run(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The run with the median time, plus every run's MB/s."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[(len(ordered) - 1) // 2], "all_mb_per_s": [r["mb_per_s"] for r in runs]}


def _bench_store(name: str, make_store: Callable[[int], Any], meter: Meter, plan: Plan,
                 store_concurrency: bool = True) -> dict[str, Any]:
    """Every level ``repeat`` times, round-robin (so a slow spell of the machine hits all levels alike)."""
    large, objects, log = plan.large, plan.objects, plan.log
    large_levels: list[int | None] = list(plan.levels) if store_concurrency else [None]
    large_runs: dict[int | None, list[dict[str, Any]]] = {c: [] for c in large_levels}
    many_runs: dict[int, list[dict[str, Any]]] = {n: [] for n in plan.in_flight}
    for rep in range(plan.repeat):
        for c in large_levels:
            store = make_store(c or 1)
            try:
                large_runs[c].append(_large(store, meter, f"large-c{c or 0}-r{rep}", large))
            finally:
                _close(store)
        store = make_store(DEFAULT_CONCURRENCY)  # single-request objects: the store's own concurrency is unused
        try:
            for n in plan.in_flight:
                many_runs[n].append(_many(store, meter, f"many-{n}-r{rep}", objects, n))
        finally:
            _close(store)
    out: dict[str, Any] = {"large": [], "many": []}
    for c, runs in large_runs.items():
        r = {"concurrency": c, **{op: _median_run([x[op] for x in runs]) for op in ("put", "get")}}
        log(f"    {name} large object, concurrency {c or '-'}: put {r['put']['mb_per_s']:.0f} MB/s, "
            f"get {r['get']['mb_per_s']:.0f} MB/s")
        out["large"].append(r)
    for n, runs in many_runs.items():
        r = {"in_flight": n, **{op: _median_run([x[op] for x in runs]) for op in ("put", "get")}}
        log(f"    {name} {len(objects)} objects, {n} in flight: put {r['put']['mb_per_s']:.0f} MB/s, "
            f"get {r['get']['mb_per_s']:.0f} MB/s")
        out["many"].append(r)
    return out


def _close(store: Any) -> None:
    inner = getattr(store, "inner", store)
    close = getattr(inner, "close", None)
    if close is not None:
        close()


# -- the three stores ------------------------------------------------------------------------------------------


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _local(work: Path, plan: Plan) -> dict[str, Any]:
    from vecbackup.stores.local import LocalStore

    root = work / "local"
    try:
        res = _bench_store("local", lambda _c: LocalStore(root, create=True), Meter(None, plan.totals), plan,
                           store_concurrency=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"name": "local folder", "server": None, **res}


def _s3(work: Path, plan: Plan) -> dict[str, Any]:
    from tests.seaweedfs import SeaweedFS, weed_binary
    from vecbackup.stores.retry import RetryingStore
    from vecbackup.stores.s3 import S3Store

    server = SeaweedFS(work / "seaweedfs")
    t0 = time.perf_counter()
    try:
        server.start()
        start_s = time.perf_counter() - t0
        plan.log(f"  SeaweedFS ready in {start_s:.1f}s")
        bucket = server.create_bucket("bench")
        env = {k: v for k, v in server.env().items() if k != "AWS_ENDPOINT_URL_S3"}

        def make(c: int) -> Any:
            with _environ(env):  # the standard AWS chain, as vecbackup uses it
                return RetryingStore(S3Store(bucket, "bench", endpoint_url=server.endpoint, region=server.region,
                                             path_style=True, concurrency=c, multipart_chunksize=S3_PART))

        assert server.proc is not None
        res = _bench_store("s3", make, Meter(server.proc.pid, plan.totals), plan)
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    version = _first_line([weed_binary(), "version"])
    return {"name": "S3 (SeaweedFS)", "server": f"SeaweedFS `weed mini` {version}", "start_s": start_s,
            "client": f"boto3 {_dist('boto3')}", **res}


def _azure(work: Path, plan: Plan) -> dict[str, Any]:
    from tests.azurite import AZURITE_BIN, Azurite
    from vecbackup.stores.azure import AzureStore
    from vecbackup.stores.retry import RetryingStore

    server = Azurite(work / "azurite")
    t0 = time.perf_counter()
    try:
        server.start()
        start_s = time.perf_counter() - t0
        plan.log(f"  Azurite ready in {start_s:.1f}s")
        server.create_container("bench")

        def make(c: int) -> Any:
            return RetryingStore(AzureStore("bench", "bench/", connection_string=server.connection_string,
                                            concurrency=c, max_block_size=AZURE_BLOCK))

        assert server.proc is not None
        res = _bench_store("azure", make, Meter(server.proc.pid, plan.totals), plan)
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    try:
        pkg = AZURITE_BIN.parents[1] / "azurite" / "package.json"
        version = json.loads(pkg.read_text())["version"]
    except (OSError, ValueError, KeyError):
        version = "?"
    node = _first_line(["node", "--version"])
    return {"name": "Azure Blob (Azurite)", "server": f"Azurite {version} (Node {node})", "start_s": start_s,
            "client": f"azure-storage-blob {_dist('azure-storage-blob')}", **res}


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    line = out.strip().splitlines()[0] if out.strip() else "?"
    m = re.match(r"version\s+\S+\s+(\S+)", line)  # weed: "version 8000GB 4.48 pypi linux amd64"
    return m.group(1) if m else line


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(work: Path, *, large_mib: int = 256, count: int = 64, small_bytes: int = SMALL_BYTES,
        levels: Sequence[int] = (1, 4, 8), in_flight: Sequence[int] = (1, 2, 4, 8), repeat: int = 3,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every store (median of ``repeat`` runs); a store that fails is reported in ``errors`` and the
    others still run."""
    work = Path(work) / "stores"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    large = os.urandom(large_mib * MiB)
    pool = os.urandom(count * small_bytes)
    objects = [pool[i * small_bytes:(i + 1) * small_bytes] for i in range(count)]
    del pool
    plan = Plan(large, objects, levels, in_flight, repeat, log)
    out: dict[str, Any] = {"large_bytes": len(large), "count": count, "small_bytes": small_bytes,
                           "levels": list(levels), "in_flight": list(in_flight),
                           "repeat": repeat, "s3_part_bytes": S3_PART,
                           "azure_block_bytes": AZURE_BLOCK, "default_concurrency": DEFAULT_CONCURRENCY,
                           "stores": [], "errors": {}}
    try:
        for key, fn in (("local", _local), ("s3", _s3), ("azure", _azure)):
            log(f"  store: {key}")
            try:
                out["stores"].append({"key": key, **fn(work, plan)})
            except Exception as e:
                traceback.print_exc()
                out["errors"][key] = repr(e)
            gc.collect()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    measured = plan.totals.get("seconds", 0.0)
    out["measured_seconds"] = measured
    out["other_cores_busy"] = plan.totals.get("other_cpu_s", 0.0) / measured if measured else 0.0
    return out


if __name__ == "__main__":
    import sys
    import tempfile

    import orjson

    with tempfile.TemporaryDirectory(prefix="vecbench-stores-") as tmp:
        result = run(Path(tmp), log=lambda m: print(m, file=sys.stderr, flush=True))
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
