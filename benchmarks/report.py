"""Render results.json as RESULTS.md."""

from __future__ import annotations

from typing import Any

from benchmarks.measure import mib


def _table(header: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _n(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _mb(b: float) -> str:
    return f"{mib(b):,.1f}"


def _machine(m: dict[str, Any]) -> str:
    v = m["versions"]
    return "\n".join([
        f"- Date: {m['date']}",
        f"- CPU: {m['nproc']} cores ({m['cpu']})",
        f"- Memory: {mib(m['memory_bytes']) / 1024:.1f} GiB",
        f"- OS: {m['platform']}",
        f"- Python {m['python']}; vecbackup {v['vecbackup']}, pymilvus {v['pymilvus']}, zstandard {v['zstandard']}, "
        f"numpy {v['numpy']}, orjson {v['orjson']}, grpcio {v['grpcio']}, milvus (server package) {v['milvus']}, "
        f"milvus-lite {v['milvus-lite']}",
    ])


def _codec(c: dict[str, Any]) -> str:
    n = c["rows"]
    out = [
        f"{_n(n)} rows like a real collection: int64 id, {c['dim']}-d float32 vector (standard normal), VARCHAR title "
        "(~60 chars), JSON dict with 4 keys, ARRAY of 0-8 int64, and two dynamic fields (`$meta`). Rows are "
        "dicts shaped exactly as pymilvus `query_iterator` returns them (vectors as lists of Python floats). "
        f"vecbackup: chunks of {c['batch_size']} rows. Baseline: `json.dumps(rows)` + gzip level 6. "
        f"Raw float32 vector data: {_mb(c['raw_vector_bytes'])} MiB. "
        f"Times are the median of {c['repeat']} runs, single thread.",
        "",
        "**Bytes stored**",
        "",
        _table(["format", "bytes", "MiB", "÷ raw vector bytes", "baseline ÷ this"],
               [[s["name"], _n(s["bytes"]), _mb(s["bytes"]), f"{s['vs_raw_vectors']:.2f}",
                 f"{s['baseline_over_this']:.2f}×"] for s in c["sizes"]]),
        "",
        "**Throughput** (MB/s = MB of raw float32 vector data per second)",
        "",
        _table(["step", "seconds", "rows/s", "vector MB/s"],
               [[t["name"], f"{t['seconds']:.3f}", _n(t["rows_per_s"]), _n(t["vector_mb_per_s"], 1)]
                for t in c["throughput"]]),
        "",
        f"Both formats round-trip these rows exactly: vecbackup {c['vecbackup_roundtrip_exact']}, "
        f"JSON {c['json_roundtrip_exact']}. gzip is {c['baseline_gzip_share'] * 100:.0f}% of the baseline's "
        "encode time, `json.dumps` the rest.",
    ]
    return "\n".join(out)


def _e2e(e: dict[str, Any]) -> str:
    out = [
        "A real Milvus 2.3 standalone server (`milvus-server` from the `milvus==2.3.5` wheel; it reports "
        f"version `{e['server_version']}`) on 127.0.0.1 in a private network namespace, sharing the machine's "
        "cores with the clients (server ready in "
        f"{e['server_start_s']:.0f}s). Same row generator as above; each collection is inserted in batches of 5000, "
        "flushed once, indexed (HNSW, M=16, efConstruction=100, L2) and loaded before anything is measured. "
        "Every measurement is one run of one fresh subprocess (no repeats); wall time includes interpreter "
        "start-up and imports; "
        "peak RSS is that process's maximum resident set size from GNU `time -f %M` (its own wait4 rusage, taken "
        "through a small parent because Linux carries the parent's RSS high-water mark into a fork+exec'd "
        "child's `ru_maxrss`). For reference, a process that only imports "
        f"pymilvus and connects peaks at **{_mb(e['floor']['peak_rss_bytes'])} MiB**.",
        "",
        "Commands: `vecbackup backup milvus://127.0.0.1:19530 file:///tmp/... -c NAME --batch-size 5000 --json`; "
        "baseline `python -m benchmarks.baseline_export` (pymilvus `query_iterator`, batch 5000, "
        "`output_fields=[\"*\"]`, Strong; naive = collect all rows, `json.dumps(rows)`, gzip-6; streaming = one "
        "`json.dumps(row)` line at a time into a gzip-6 stream); "
        "`vecbackup restore file:///tmp/... milvus://127.0.0.1:19530 -c NAME --as NAME_restored --json`.",
        "",
        "**Backup / export**",
        "",
    ]
    rows = []
    for s in e["sizes"]:
        for r in s["backup"]:
            rows.append([_n(s["rows"]), r["tool"], f"{r['wall_s']:.1f}", _n(r["rows_per_s"]),
                         f"{s['rows'] / r['tool_seconds']:,.0f}", _mb(r["peak_rss_bytes"]), _mb(r["bytes"]),
                         f"{r['cpu_user_s'] + r['cpu_sys_s']:.1f}"])
    out.append(_table(["rows", "tool", "wall s", "rows/s (wall)", "rows/s (in-tool)", "peak RSS MiB",
                       "stored MiB", "client CPU s"], rows, "rlrrrrrr"))
    out += ["", "\"in-tool\" excludes interpreter start-up and imports (vecbackup's own `seconds`, the "
            "baseline script's own timer)."]
    speeds = [(s["rows"], s["backup_speed"]) for s in e["sizes"] if s.get("backup_speed")]
    if speeds:
        out += ["", f"**Backup against the client's own floor**, medians of {speeds[0][1]['rounds']} alternating "
                "rounds in this run, each a fresh process (wall includes interpreter start-up and imports). The "
                "yardstick is the bare pymilvus export: `query_iterator` (batch 5000, all fields, Strong), every page "
                "read and discarded; pymilvus builds the vectors as Python lists only when asked, so it does not "
                "even do that. vecbackup reads the Query RPC's columns itself (engines/milvus/columnar.py) and "
                "encodes and uploads while the next page is read; `?columnar=off` is its row path through "
                "`query_iterator`. Server and client share the 2 cores.", ""]

        def ratio(sp: dict[str, Any], mode: str, key: str) -> str:
            return f"{sp[mode][key]:.1f} ({sp[mode][key] / sp['bare'][key]:.2f}×)"

        out.append(_table(
            ["rows", "bare export wall s", "vecbackup wall s (× bare)", "row path wall s (× bare)",
             "bare in-tool s", "vecbackup in-tool s (× bare)", "peak RSS MiB vecbackup / bare"],
            [[_n(n), f"{sp['bare']['wall_s']:.1f}", ratio(sp, "columns", "wall_s"), ratio(sp, "rows", "wall_s"),
              f"{sp['bare']['tool_s']:.1f}", ratio(sp, "columns", "tool_s"),
              f"{_mb(sp['columns']['peak_rss_bytes'])} / {_mb(sp['bare']['peak_rss_bytes'])}"] for n, sp in speeds]))
    out += ["", "**Peak memory against collection size**", ""]
    sizes = e["sizes"]
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        mem_rows = []
        for ra, rb in zip(a["backup"], b["backup"], strict=True):
            grow = rb["peak_rss_bytes"] - ra["peak_rss_bytes"]
            per = grow / ((b["rows"] - a["rows"]) / 10_000)
            mem_rows.append([ra["tool"], _mb(ra["peak_rss_bytes"]), _mb(rb["peak_rss_bytes"]), _mb(grow),
                             _mb(per)])
        ra, rb = a["restore"], b["restore"]
        grow = rb["peak_rss_bytes"] - ra["peak_rss_bytes"]
        mem_rows.append(["vecbackup restore", _mb(ra["peak_rss_bytes"]), _mb(rb["peak_rss_bytes"]), _mb(grow),
                         _mb(grow / ((b["rows"] - a["rows"]) / 10_000))])
        out.append(_table(["process", f"peak RSS MiB @ {_n(a['rows'])}", f"peak RSS MiB @ {_n(b['rows'])}",
                           "growth MiB", "MiB per extra 10k rows"], mem_rows))
    out += ["", "**Restore** (`--as` a new name; includes creating the collection, inserting, flush, building "
            "the HNSW index and loading it, which the server does while the client waits)", ""]
    out.append(_table(["rows", "wall s", "rows/s (wall)", "rows/s (in-tool)", "peak RSS MiB", "client CPU s"],
                      [[_n(s["rows"]), f"{s['restore']['wall_s']:.1f}", _n(s["restore"]["rows_per_s"]),
                        f"{s['rows'] / s['restore']['tool_seconds']:,.0f}", _mb(s["restore"]["peak_rss_bytes"]),
                        f"{s['restore']['cpu_user_s'] + s['restore']['cpu_sys_s']:.1f}"] for s in sizes]))
    par = [s for s in sizes if s.get("restore_parallel")]
    if par:
        ks = list(par[0]["restore_parallel"])
        out += ["", "**Restore with K insert requests in flight** (`restore --parallel K`) against the yardstick of "
                "the same run: loading the same rows with plain pymilvus (insert in 5000-row batches, flush, HNSW, "
                "load; the \"+ loaded s\" column below). Both wait for the index and the load. Server and client "
                "share the 2 cores." + (" The restores ran once the source collection was compacted and indexed again "
                "(else the server's rebuild of its merged segment can queue ahead of a restore's index build; "
                "docs/SCALING.md)." if all("settle_s" in s for s in par) else ""), ""]

        def cell(s: dict[str, Any], k: str) -> str:
            r = s["restore_parallel"][k]
            return f"{r['wall_s']:.1f} ({r['wall_s'] / s['load']['loaded_s']:.2f})"

        def cpu(r: dict[str, Any]) -> float:
            return float(r["cpu_user_s"] + r["cpu_sys_s"])

        def workers(s: dict[str, Any]) -> str:
            w = s.get("restore_workers")
            if not w:
                return "–"
            return f"{w['wall_s']:.1f} ({w['wall_s'] / s['load']['loaded_s']:.2f}; commit {w['commit_s']:.1f})"

        out.append(_table(
            ["rows", "plain load s", *[f"K={k} s (× load)" for k in ks], "2 workers + commit s (× load)",
             "client CPU s, first / last K"],
            [[_n(s["rows"]), f"{s['load']['loaded_s']:.1f}", *[cell(s, k) for k in ks], workers(s),
              f"{cpu(s['restore_parallel'][ks[0]]):.1f} / {cpu(s['restore_parallel'][ks[-1]]):.1f}"] for s in par]))
        out += ["", "What limits the curve here: the server (WAL, flush, the HNSW build after it) does most of the "
                "work on the same 2 cores as the client, whose own CPU (last column) is a fraction of the wall "
                "time; more requests in flight only queue on the server. The differences between K are within the "
                "run-to-run noise of single runs, so `--parallel` defaults to 1; it is for servers with cores to "
                "spare, which this machine cannot show. \"2 workers + commit\" is `restore --shard I/2 --run RUN "
                "--commit` as two processes started together (docs/SCALING.md), each inserting half of the objects, "
                "the last to finish flushing, indexing, loading, counting and renaming (the commit's own seconds in "
                "brackets): the shape of a restore by several machines, here on the same 2 cores."]
    drills = [s for s in sizes if s.get("drill")]
    if drills:
        out += ["", "**Drill** (`vecbackup drill STORE milvus://127.0.0.1:19530 -c NAME --source "
                "milvus://127.0.0.1:19530`: restore into a scratch collection and wait for its index (the RTO), "
                "compare 100 sampled rows, search 100 queries on both collections (ef 512) and score both against "
                "the exact top 10 from one brute-force pass over the backup, drop the scratch copy). The yardstick "
                "is the plain `restore` of the same backup in the same run.", ""]
        out.append(_table(
            ["rows", "drill wall s", "× restore wall", "RTO s", "search check s", "sample check s", "peak RSS MiB",
             "recall restored / source / overlap"],
            [[_n(s["rows"]), f"{s['drill']['wall_s']:.1f}", f"{s['drill']['wall_s'] / s['restore']['wall_s']:.2f}",
              f"{s['drill']['rto_s']:.1f}", f"{s['drill']['search_check_s']:.1f}",
              f"{s['drill']['sample_check_s']:.1f}", _mb(s["drill"]["peak_rss_bytes"]),
              f"{s['drill']['restored_recall']:.3f} / {s['drill']['source_recall']:.3f} / "
              f"{s['drill']['restored_vs_source']:.3f}"] for s in drills], "rrrrrrrl"))
    out += ["", "Loading the source collections (pymilvus insert of generated rows, for context):", ""]
    out.append(_table(["rows", "insert s", "insert rows/s", "+ flush done s", "+ index built s", "+ loaded s"],
                      [[_n(s["rows"]), f"{s['load']['insert_s']:.1f}", _n(s["rows"] / s["load"]["insert_s"]),
                        f"{s['load']['flush_done_s']:.1f}", f"{s['load']['index_done_s']:.1f}",
                        f"{s['load']['loaded_s']:.1f}"] for s in sizes]))
    return "\n".join(out)


def _lite(li: dict[str, Any]) -> str:
    n = li["rows"]
    rows = [["load (pymilvus insert + flush + index + load)", f"{li['load']['wall_s']:.1f}",
             _n(li["load"]["rows_per_s"]), "", ""]]
    for key in ("backup", "restore"):
        r = li[key]
        rows.append([f"vecbackup {key}", f"{r['wall_s']:.1f}", _n(r["rows_per_s"]),
                     f"{n / r['tool_seconds']:,.0f}", _mb(r["peak_rss_bytes"])])
    return "\n".join([
        f"{_n(n)} rows of the same collection in a Milvus Lite database file (milvus-lite runs inside the "
        "process that opens it, so its memory is part of the figure).",
        "",
        _table(["step", "wall s", "rows/s (wall)", "rows/s (in-tool)", "peak RSS MiB"], rows),
    ])


_QDRANT_WARNING = (
    "> **Not a Qdrant server.** No Qdrant server can be installed on this machine, so this section runs against "
    "qdrant-client's *local mode* (`qdrant-local:///folder`): an in-process Python implementation of Qdrant, much "
    "slower than a real server, that keeps the whole collection in the memory of whichever process opens the "
    "folder. The numbers show vecbackup's own overhead and memory behaviour, not Qdrant throughput.")


def _qdrant(q: dict[str, Any]) -> str:
    sizes = q["sizes"]
    out = [
        _QDRANT_WARNING,
        "",
        f"qdrant-client {q['qdrant_client']}. Each collection has an unnamed {q['dim']}-d Cosine vector (standard "
        f"normal float32), a sparse vector `text` with {q['sparse_nnz']} non-zeros, and a payload of five keys "
        "(title string, source, year, score, a list of 0-5 tags); integer ids. A subprocess creates it and upserts "
        "the points in batches of 1000 (local mode allows one process per folder). Every measured command is one "
        "fresh subprocess, measured like sections 2-3 (wall time including interpreter start-up; peak RSS from "
        f"GNU `time -f %M`). The local-mode folders are on {q.get('folders_on', 'disk')}: local mode commits "
        "its sqlite file once per point, and with the folder on this machine's shared disk a trial load of 8,000 "
        "points took 19s instead of 1.9s: that would measure the disk's syncs, not vecbackup.",
        "",
        f"Commands: `vecbackup backup qdrant-local:///SRC file:///STORE -c NAME --batch-size {q['batch_size']} "
        "--json` and `vecbackup restore file:///STORE qdrant-local:///DST -c NAME --as NAME_restored --json` "
        "(DST a new, empty folder, so the restoring process holds only the collection it writes).",
        "",
        "**Memory floors.** Local mode's memory grows with the collection in any process that uses it, so each "
        "figure needs its own reference. *Open + count* is a process that only opens the source folder and counts "
        "the points: Python, qdrant-client and the collection as local mode loads it from its sqlite file (every "
        "point unpickled); a backup opens the folder the same way, so what it peaks above this is vecbackup's. A "
        "restore builds the collection by upserts, like the *loader* process (which upserts generated points in "
        "batches of 1000), so the loader's peak is the restore's reference.",
        "",
    ]
    rows = []
    for s in sizes:
        n, b, r = s["points"], s["backup"], s["restore"]
        fl, ld = s["floor_source"]["peak_rss_bytes"], s["load"]["peak_rss_bytes"]
        rows.append([_n(n), "load (generate + upsert, for context)", f"{s['load']['wall_s']:.1f}",
                     _n(n / s["load"]["wall_s"]), _n(n / s["load"]["seconds"]), _mb(ld), "", "", ""])
        rows.append([_n(n), "open + count (floor)", f"{s['floor_source']['wall_s']:.1f}", "", "", _mb(fl), "",
                     "", ""])
        rows.append([_n(n), "vecbackup backup", f"{b['wall_s']:.1f}", _n(b["points_per_s"]),
                     _n(n / b["tool_seconds"]), _mb(b["peak_rss_bytes"]), f"{mib(b['peak_rss_bytes'] - fl):+.0f} "
                     "vs open + count", _mb(b["bytes"]), f"{b['cpu_user_s'] + b['cpu_sys_s']:.1f}"])
        rows.append([_n(n), "vecbackup restore", f"{r['wall_s']:.1f}", _n(r["points_per_s"]),
                     _n(n / r["tool_seconds"]), _mb(r["peak_rss_bytes"]),
                     f"{mib(r['peak_rss_bytes'] - ld):+.0f} vs loader", "", f"{r['cpu_user_s'] + r['cpu_sys_s']:.1f}"])
    out.append(_table(["points", "step", "wall s", "points/s (wall)", "points/s (in-tool)", "peak RSS MiB",
                       "above its floor, MiB", "stored MiB", "CPU s"], rows, "rlrrrrrrr"))
    out += ["", "\"in-tool\" is vecbackup's own `seconds` (for the loader, its own timer): it excludes start-up, "
            "imports and, for a backup, local mode reading the folder into memory. Stored = the backup's data "
            f"objects ({q['batch_size']} points each); raw float32 dense-vector bytes are "
            + " and ".join(f"{_mb(s['raw_vector_bytes'])} MiB at {_n(s['points'])}" for s in sizes) + "."]
    if len(sizes) >= 2:
        a, z = sizes[0], sizes[-1]
        per = (z["points"] - a["points"]) / 10_000

        def row(label: str, key: str, ref: str | None) -> list[Any]:
            va, vz = a[key]["peak_rss_bytes"], z[key]["peak_rss_bytes"]
            if ref:
                va, vz = va - a[ref]["peak_rss_bytes"], vz - z[ref]["peak_rss_bytes"]
            return [label, _mb(va), _mb(vz), f"{mib(vz - va):+.1f}", f"{mib(vz - va) / per:+.1f}"]

        out += ["", "**Peak memory against collection size**", "",
                _table(["figure", f"MiB @ {_n(a['points'])}", f"MiB @ {_n(z['points'])}", "growth MiB",
                        "MiB per extra 10k points"],
                       [row("open + count (local mode holding the collection)", "floor_source", None),
                        row("vecbackup backup, peak RSS", "backup", None),
                        row("vecbackup backup above open + count", "backup", "floor_source"),
                        row("loader (local mode upserting the collection)", "load", None),
                        row("vecbackup restore, peak RSS", "restore", None),
                        row("vecbackup restore above the loader", "restore", "load")]),
                "", "Reopening each restored folder and counting it found all points and peaked at "
                + " and ".join(f"{_mb(s['floor_target']['peak_rss_bytes'])} MiB" for s in sizes)
                + " (the source folders' open + count: "
                + " and ".join(f"{_mb(s['floor_source']['peak_rss_bytes'])} MiB" for s in sizes) + ")."]
    return "\n".join(out)


def _qdrant_summary(q: dict[str, Any]) -> str:
    sizes = q["sizes"]
    a, z = sizes[0], sizes[-1]
    text = ("**Qdrant** (section 5; qdrant-client *local mode*, an in-process Python implementation, not a server: "
            "these figures are vecbackup's overhead and memory, not Qdrant throughput). ")
    if len(sizes) >= 2:
        b_a = a["backup"]["peak_rss_bytes"] - a["floor_source"]["peak_rss_bytes"]
        b_z = z["backup"]["peak_rss_bytes"] - z["floor_source"]["peak_rss_bytes"]
        r_a = a["restore"]["peak_rss_bytes"] - a["load"]["peak_rss_bytes"]
        r_z = z["restore"]["peak_rss_bytes"] - z["load"]["peak_rss_bytes"]
        text += (f"From {_n(a['points'])} to {_n(z['points'])} points, what `vecbackup backup` used above a process "
                 f"that only opens the folder went {_mb(b_a)} → {_mb(b_z)} MiB ({mib(b_z - b_a):+.1f}), and what "
                 f"`restore` used above the loader {_mb(r_a)} → {_mb(r_z)} MiB ({mib(r_z - r_a):+.1f}), while local "
                 f"mode's own copy of the collection grew from {_mb(a['floor_source']['peak_rss_bytes'])} to "
                 f"{_mb(z['floor_source']['peak_rss_bytes'])} MiB (open + count): vecbackup's share is set by its "
                 "batch size, the rest is local mode. ")
    text += (f"At {_n(z['points'])} points backup took {z['backup']['wall_s']:.1f}s "
             f"({_n(z['backup']['points_per_s'])} points/s wall, {_n(z['points'] / z['backup']['tool_seconds'])} "
             f"in-tool, {_mb(z['backup']['bytes'])} MiB stored) and restore {z['restore']['wall_s']:.1f}s "
             f"({_n(z['restore']['points_per_s'])} points/s), against {z['load']['wall_s']:.1f}s for local mode to "
             "load the same points in the first place.")
    return text


def _edge(e: dict[str, Any]) -> str:
    sizes = e["sizes"]
    out = [
        f"qdrant-edge-py {e['qdrant_edge']}: Qdrant's own engine (segments, HNSW, payload storage), running in the "
        "measured process on a shard's folder. The points are section 5's (an unnamed "
        f"{e['dim']}-d Cosine vector, a sparse vector `text` with {e['sparse_nnz']} non-zeros, a five-key payload, "
        "integer ids), upserted by a loader subprocess in batches of 1000 and then optimized (Edge builds the HNSW "
        "graph once a segment passes its indexing threshold, about 20,000 such vectors). Every measured command is "
        f"one fresh subprocess, measured like sections 2-3. The shards are on {e.get('folders_on', 'disk')}.",
        "",
        f"Commands: `vecbackup backup qdrant-edge:///SRC/NAME file:///STORE -c NAME --batch-size {e['batch_size']} "
        "--json` and `vecbackup restore file:///STORE qdrant-edge:///DST -c NAME --json` (a restore fills a staging "
        "shard, optimizes it and renames it to DST/NAME).",
        "",
        "**Memory.** Edge maps a shard's segment files into the process that opens it, and the pages a scroll or "
        "an upsert touches count in its RSS (on tmpfs as shared memory; on disk as file pages the kernel can drop), "
        "so peak RSS grows with the shard whoever reads it. *Anon* is the peak of the process's anonymous memory "
        "(RssAnon, sampled every 20 ms): its heap, where vecbackup's batches live, without the shard's pages. "
        "*Open + count* is a process that only opens the source shard and counts its points; a restore upserts and "
        "optimizes like the *loader*.",
        "",
    ]
    rows = []
    for s in sizes:
        n, b, r = s["points"], s["backup"], s["restore"]
        fl, ld = s["floor_source"], s["load"]
        rows.append([_n(n), "load (generate + upsert + optimize, for context)", f"{ld['wall_s']:.1f}",
                     _n(n / ld["wall_s"]), _n(n / ld["seconds"]), _mb(ld["peak_rss_bytes"]),
                     _mb(ld["peak_anon_bytes"]), "", ""])
        rows.append([_n(n), "open + count (floor)", f"{fl['wall_s']:.1f}", "", "", _mb(fl["peak_rss_bytes"]),
                     _mb(fl["peak_anon_bytes"]), "", ""])
        rows.append([_n(n), "vecbackup backup", f"{b['wall_s']:.1f}", _n(b["points_per_s"]),
                     _n(n / b["tool_seconds"]), _mb(b["peak_rss_bytes"]), _mb(b["peak_anon_bytes"]),
                     _mb(b["bytes"]), f"{b['cpu_user_s'] + b['cpu_sys_s']:.1f}"])
        rows.append([_n(n), "vecbackup restore", f"{r['wall_s']:.1f}", _n(r["points_per_s"]),
                     _n(n / r["tool_seconds"]), _mb(r["peak_rss_bytes"]), _mb(r["peak_anon_bytes"]), "",
                     f"{r['cpu_user_s'] + r['cpu_sys_s']:.1f}"])
    out.append(_table(["points", "step", "wall s", "points/s (wall)", "points/s (in-tool)", "peak RSS MiB",
                       "peak anon MiB", "stored MiB", "CPU s"], rows, "rlrrrrrrr"))
    out += ["", "\"in-tool\" is vecbackup's own `seconds` (for the loader, its own timer): it excludes start-up "
            f"and imports. Stored = the backup's data objects ({e['batch_size']} points each); raw float32 "
            "dense-vector bytes are "
            + " and ".join(f"{_mb(s['raw_vector_bytes'])} MiB at {_n(s['points'])}" for s in sizes) + "."]
    if len(sizes) >= 2:
        a, z = sizes[0], sizes[-1]
        per = (z["points"] - a["points"]) / 10_000

        def row(label: str, key: str, what: str) -> list[Any]:
            va, vz = a[key][what], z[key][what]
            return [label, _mb(va), _mb(vz), f"{mib(vz - va):+.1f}", f"{mib(vz - va) / per:+.1f}"]

        out += ["", "**Peak memory against shard size**", "",
                _table(["figure", f"MiB @ {_n(a['points'])}", f"MiB @ {_n(z['points'])}", "growth MiB",
                        "MiB per extra 10k points"],
                       [row("open + count, RSS", "floor_source", "peak_rss_bytes"),
                        row("vecbackup backup, RSS", "backup", "peak_rss_bytes"),
                        row("vecbackup backup, anon", "backup", "peak_anon_bytes"),
                        row("loader (Edge upserting and optimizing), RSS", "load", "peak_rss_bytes"),
                        row("loader, anon", "load", "peak_anon_bytes"),
                        row("vecbackup restore, RSS", "restore", "peak_rss_bytes"),
                        row("vecbackup restore, anon", "restore", "peak_anon_bytes")]),
                "", "Reopening each restored shard and counting it found all points and peaked at "
                + " and ".join(f"{_mb(s['floor_target']['peak_rss_bytes'])} MiB" for s in sizes) + "."]
    return "\n".join(out)


def _edge_summary(e: dict[str, Any]) -> str:
    sizes = e["sizes"]
    a, z = sizes[0], sizes[-1]
    text = "**Qdrant Edge** (section 10; Qdrant's engine in-process). "
    if len(sizes) >= 2:
        def growth(key: str) -> str:
            va, vz = a[key]["peak_anon_bytes"], z[key]["peak_anon_bytes"]
            return f"{_mb(va)} → {_mb(vz)} MiB ({mib(vz - va):+.1f})"

        text += (f"From {_n(a['points'])} to {_n(z['points'])} points, the anonymous memory (the heap, without the "
                 f"shard's mapped pages) of `vecbackup backup` went {growth('backup')} and of `restore` "
                 f"{growth('restore')}; peak RSS, which counts the shard's pages Edge maps, went "
                 f"{_mb(a['backup']['peak_rss_bytes'])} → {_mb(z['backup']['peak_rss_bytes'])} MiB for the backup. ")
    text += (f"At {_n(z['points'])} points backup took {z['backup']['wall_s']:.1f}s "
             f"({_n(z['backup']['points_per_s'])} points/s wall, {_mb(z['backup']['bytes'])} MiB stored) and restore "
             f"{z['restore']['wall_s']:.1f}s ({_n(z['restore']['points_per_s'])} points/s, its HNSW build "
             f"included), against {z['load']['wall_s']:.1f}s for the loader.")
    return text


def _rate(r: dict[str, Any]) -> str:
    runs = r.get("all_mb_per_s") or [r["mb_per_s"]]
    if len(runs) < 2:
        return _n(r["mb_per_s"])
    return f"{_n(r['mb_per_s'])} ({_n(min(runs))}–{_n(max(runs))})"


def _cores(r: dict[str, Any], server: bool = True) -> str:
    client = f"{r['client_cpu_s'] / r['seconds']:.2f}"
    return f"{client} + {r['server_cpu_s'] / r['seconds']:.2f}" if server else client


def _by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


def _stores(st: dict[str, Any], e2e: dict[str, Any] | None = None) -> str:
    big, small, n = st["large_bytes"], st["small_bytes"], st["count"]
    servers = "; ".join(f"{s['name']}: {s['server']}, client {s['client']}, ready in {s['start_s']:.1f}s"
                        for s in st["stores"] if s.get("server"))
    out = [
        "vecbackup's three stores, built as `open_store` builds them (S3 and Azure wrapped in `RetryingStore`; "
        "part and block sizes as below), against "
        f"real servers started by the benchmark on 127.0.0.1 ({servers}) and a local folder (each put writes a "
        "temporary file, fsyncs it and renames it; gets are served from the page cache). Payloads are random bytes "
        "(incompressible, like vector data). Each figure is the median of "
        f"{st['repeat']} runs (range in brackets; the levels take turns, so a slow spell hits all of them) of one "
        "timed interval around the store calls; MB = 10⁶ bytes. Everything read back is compared with what was "
        "written, outside the timing. \"cores busy\" is CPU seconds per wall second during the interval, of this "
        "client process + of the server's processes (the machine has "
        "2 cores; the local folder has no server).",
        "",
        f"**One large object** ({_mb(big)} MiB, one `put` then one `get`). `concurrency` is the store's own option: "
        f"S3 uploads multipart parts of {mib(st['s3_part_bytes']):.0f} MiB that many at a time (objects from 64 MiB "
        f"up{'' if big >= 64 * 2**20 else ', so not this one'}); Azure uploads blocks of "
        f"{mib(st['azure_block_bytes']):.0f} MiB that many at a time and downloads "
        "ranges that many at a time. `S3Store.get` is always one GET request, whatever `concurrency` is.",
        "",
    ]
    rows = []
    for s in st["stores"]:
        for r in s["large"]:
            rows.append([s["name"], r["concurrency"] or "—", _rate(r["put"]), _rate(r["get"]),
                         _cores(r["put"], bool(s["server"])), _cores(r["get"], bool(s["server"]))])
    out.append(_table(["store", "concurrency", "put MB/s", "get MB/s", "put cores busy (client + server)",
                       "get cores busy (client + server)"], rows, "lrrrrr"))
    out += ["", f"**Many backup-sized objects** ({n} objects of {_mb(small)} MiB, the size of one 5000-row chunk of "
            f"128-d vectors; {_mb(n * small)} MiB in all), `put` and then `get` of each through a thread pool with "
            "this many objects in flight, as a backup's data objects go up (ops/backup.py, `PIPELINE = 2`) and come "
            "back in a restore (ops/fetch.py, `read_ahead = 2`). Each object is one request, so the store's own "
            f"`concurrency` (left at its default, {st['default_concurrency']}) plays no part.", ""]
    rows = []
    for s in st["stores"]:
        for r in s["many"]:
            rows.append([s["name"], r["in_flight"], _rate(r["put"]), _rate(r["get"]),
                         _cores(r["put"], bool(s["server"])), _cores(r["get"], bool(s["server"]))])
    out.append(_table(["store", "objects in flight", "put MB/s", "get MB/s", "put cores busy (client + server)",
                       "get cores busy (client + server)"], rows, "lrrrrr"))
    out += ["", _stores_reading(st, e2e)]
    return "\n".join(out)


def _milvus_mb_s(e2e: dict[str, Any] | None) -> tuple[int, float, float] | None:
    """Rows, and MB/s of stored bytes that `vecbackup backup` / `restore` moved in-tool (largest standalone run)."""
    if not e2e or not e2e.get("sizes"):
        return None
    size = e2e["sizes"][-1]
    vb = next((r for r in size["backup"] if r["tool"] == "vecbackup backup"), None)
    if vb is None:
        return None
    return size["rows"], vb["bytes"] / 1e6 / vb["tool_seconds"], vb["bytes"] / 1e6 / size["restore"]["tool_seconds"]


def _stores_reading(st: dict[str, Any], e2e: dict[str, Any] | None = None) -> str:
    """The interpretation paragraph: the ratios are computed, the reasoning is about the code and the setup."""
    remote = [s for s in st["stores"] if s.get("server")]
    if not remote:
        return ""
    lo, hi = min(st["in_flight"]), max(st["in_flight"])
    lc, hc = min(st["levels"]), max(st["levels"])
    parts = []
    busiest = 0.0
    for s in remote:
        many, large = _by(s["many"], "in_flight"), _by(s["large"], "concurrency")
        seq = ", ".join(f"{_n(many[k]['put']['mb_per_s'])}" for k in st["in_flight"])
        seq_get = ", ".join(f"{_n(many[k]['get']['mb_per_s'])}" for k in st["in_flight"])
        text = (f"**{s['name']}**: many objects went up at {seq} MB/s with "
                f"{', '.join(str(k) for k in st['in_flight'])} in flight "
                f"(×{many[hi]['put']['mb_per_s'] / many[lo]['put']['mb_per_s']:.1f} from {lo} to {hi}) and came down "
                f"at {seq_get} MB/s (×{many[hi]['get']['mb_per_s'] / many[lo]['get']['mb_per_s']:.1f})")
        if 2 in many and hi > 2:
            up2, down2 = (many[2][op]["mb_per_s"] / many[hi][op]["mb_per_s"] for op in ("put", "get"))
            text += (f"; 2 in flight, vecbackup's setting, reached {up2:.0%} of the {hi}-in-flight upload rate and "
                     f"{down2:.0%} of its download rate")
        if 4 in many and hi > 4:
            up48, down48 = (many[hi][op]["mb_per_s"] / many[4][op]["mb_per_s"] - 1 for op in ("put", "get"))
            text += f"; going from 4 to {hi} changed upload by {up48:+.0%} and download by {down48:+.0%}"
        text += (f". The large object's `concurrency` {lc} → {hc} changed put by "
                 f"×{large[hc]['put']['mb_per_s'] / large[lc]['put']['mb_per_s']:.1f} and get by "
                 f"×{large[hc]['get']['mb_per_s'] / large[lc]['get']['mb_per_s']:.1f}.")
        parts.append(text)
        for r in [*s["many"], *s["large"]]:
            for op in ("put", "get"):
                busiest = max(busiest, (r[op]["client_cpu_s"] + r[op]["server_cpu_s"]) / r[op]["seconds"])
    other = st.get("other_cores_busy", 0.0)
    puts = [r["put"] for s in remote for r in [*s["many"], *s["large"]]]
    server_share = sum(p["server_cpu_s"] for p in puts) / sum(p["server_cpu_s"] + p["client_cpu_s"] for p in puts)
    parts.append(
        "**What this means.** Client and server share this machine's 2 cores over loopback, so these rates are "
        f"CPU-bound, not network-bound: client and server together kept up to {busiest:.1f} of the 2 cores busy "
        f"(the servers used {server_share:.0%} of that CPU during uploads). More requests in flight can then only "
        "overlap one side's CPU with the other's and with disk waits; once both cores are busy there is nothing "
        "left for more parallelism to use, so the gains here are capped by the 2 cores and noisy (see the ranges), "
        "and splitting one object into parallel parts or blocks buys least of all (the same CPU work, plus "
        "coordination). A real cloud is the "
        "opposite case: each request spends tens of milliseconds in network latency, and one connection carries "
        "far less than a loopback one, so requests in flight matter more there than these numbers show; read them "
        "as a lower bound on what concurrency buys, not as a forecast of cloud throughput. Other processes on this "
        f"shared machine used {other:.2f} cores on average during the measurements"
        + (" (the ranges show how much that moved the numbers)." if other >= 0.1 else "."))
    parts.append(
        "**Recommendation.** vecbackup's data objects (one per batch: ~2.5 MiB at 5000 rows × 128-d) stay "
        "below S3Store's 64 MiB multipart threshold and AzureStore's 8 MiB single-put size (a 1536-d batch, "
        "~30 MiB, would still be one S3 request), so the store's `concurrency` option hardly ever applies to them; "
        "what decides a backup's upload parallelism is ops/backup.py's `PIPELINE = 2`, and a restore's is "
        "`iter_chunks(read_ahead=2)`.")
    milvus = _milvus_mb_s(e2e)
    slowest = min(r[op]["mb_per_s"] for s in remote for r in s["many"] if r["in_flight"] == lo for op in ("put", "get"))
    if milvus:
        rows, up, down = milvus
        per_req = max(up, down) / 2
        parts[-1] += (
            f" For scale, `vecbackup backup` of {rows:,} rows from Milvus standalone (section 2) produced "
            f"{up:.1f} MB/s of objects and `restore` consumed {down:.1f} MB/s"
            + (f": at least {slowest / max(up, down):.0f}× below even one object at a time on either server here, "
               "so Milvus, not the store, sets the pace." if slowest > max(up, down) else
               f", against {slowest:.0f} MB/s for the slowest store with one object at a time.")
            + " With 2 in flight the store only holds vecbackup back once a single "
            f"request carries less than about {per_req:.1f} MB/s (one {mib(st['small_bytes']):.1f} MiB object taking "
            f"over {st['small_bytes'] / 1e6 / per_req:.1f}s); in-region cloud storage answers small requests in "
            "tens of milliseconds, so 2 is enough there, and a slow or distant link (cross-region, on-premises to "
            "cloud) is where more would pay off.")
    parts[-1] += (
        " So: let `PIPELINE` and `read_ahead` follow the store's `concurrency` (default 4, `?concurrency=N` in the "
        "URL) for S3 and Azure, as the one knob a user already has for slow links, and keep 2 for a local folder; "
        "it costs about one more batch in memory per slot (a few MiB at 128-d), but do not expect it to speed up "
        "a backup or restore that Milvus is pacing. Parallel "
        "ranged GETs in `S3Store.get` would only help objects far bigger than a batch.")
    return "\n\n".join(parts)


def _summary(res: dict[str, Any]) -> str:
    parts = []
    c = res.get("codec")
    if c:
        size = {s["name"]: s["bytes"] for s in c["sizes"]}
        thr = {t["name"]: t for t in c["throughput"]}
        vb, base = size["vecbackup zstd-3"], size["JSON + gzip-6 (baseline)"]
        enc_vb = thr["vecbackup rows -> bytes (rows_to_chunk + encode, zstd-3)"]["rows_per_s"]
        dec_vb = thr["vecbackup bytes -> rows (decode + chunk_to_rows, zstd-3)"]["rows_per_s"]
        enc_b = thr["baseline json.dumps + gzip-6"]["rows_per_s"]
        dec_b = thr["baseline gunzip + json.loads"]["rows_per_s"]
        levels = "; ".join(
            f"{name.split()[-1]}: {_mb(nbytes)} MiB, encoded in "
            f"{thr['vecbackup encode_chunk ' + name.split()[-1]]['seconds']:.3f}s"
            for name, nbytes in size.items() if name.startswith("vecbackup"))
        parts.append(
            f"**Size.** On {_n(c['rows'])} rows vecbackup (zstd-3) stores {_mb(vb)} MiB against {_mb(base)} MiB for "
            f"JSON + gzip-6: {base / vb:.2f}× smaller. That is {vb / c['raw_vector_bytes']:.2f}× the raw float32 "
            "vector bytes: random float32 mantissas do not compress, so the columnar format's win is mostly not "
            f"spelling every float as ~18 decimal digits; the zstd level barely matters here ({levels}). "
            f"**Codec speed.** Rows → bytes including the row-to-column conversion: {_n(enc_vb)} rows/s against "
            f"{_n(enc_b)} rows/s ({enc_vb / enc_b:.0f}×); bytes → insertable rows: {_n(dec_vb)} against "
            f"{_n(dec_b)} rows/s ({dec_vb / dec_b:.1f}×). Turning columns back into pymilvus row dicts with "
            f"`chunk_to_rows` ({thr['chunk_to_rows (columns -> insert rows)']['seconds']:.3f}s, mostly "
            "`ndarray.tolist()` of the vectors) costs more than decoding the chunks "
            f"({thr['vecbackup decode_chunk zstd-3']['seconds']:.3f}s).")
    e = res.get("standalone")
    if e and len(e.get("sizes", [])) >= 2:
        a, b = e["sizes"][0], e["sizes"][-1]
        by = {r["tool"]: (ra, r) for ra, r in zip(a["backup"], b["backup"], strict=True)}
        vb_a, vb_b = by["vecbackup backup"]
        nv_a, nv_b = by["JSON + gzip-6, naive (json.dumps(rows))"]
        st_a, st_b = by["JSON lines + gzip-6, streaming"]
        per_10k = mib(nv_b["peak_rss_bytes"] - nv_a["peak_rss_bytes"]) / ((b["rows"] - a["rows"]) / 10_000)
        parts.append(
            f"**Memory.** Going from {_n(a['rows'])} to {_n(b['rows'])} rows, the peak RSS of `vecbackup backup` "
            f"went {_mb(vb_a['peak_rss_bytes'])} → {_mb(vb_b['peak_rss_bytes'])} MiB "
            f"({mib(vb_b['peak_rss_bytes'] - vb_a['peak_rss_bytes']):+.0f} MiB), the naive JSON export "
            f"{_mb(nv_a['peak_rss_bytes'])} → {_mb(nv_b['peak_rss_bytes'])} MiB "
            f"({mib(nv_b['peak_rss_bytes'] - nv_a['peak_rss_bytes']):+.0f} MiB, about {per_10k:.0f} MiB "
            f"per 10k rows, i.e. roughly {per_10k * 1000 / 1024:.0f} GiB for 10 million rows if it stays linear) "
            "and the streaming JSON-lines export "
            f"{_mb(st_a['peak_rss_bytes'])} → {_mb(st_b['peak_rss_bytes'])} MiB. vecbackup's memory is bounded by "
            "its batch size, not the collection size (of its peak, "
            f"{_mb(e['floor']['peak_rss_bytes'])} MiB is Python + pymilvus alone); writing JSON lines as a stream "
            "is flat too, so against a careful exporter vecbackup's gain is speed and size, not memory. "
            f"**Speed and size end to end** at {_n(b['rows'])} rows: vecbackup {vb_b['wall_s']:.1f}s "
            f"({_n(vb_b['rows_per_s'])} rows/s, {_mb(vb_b['bytes'])} MiB) against {nv_b['wall_s']:.1f}s "
            f"({_mb(nv_b['bytes'])} MiB) naive and {st_b['wall_s']:.1f}s streaming: "
            f"{nv_b['wall_s'] / vb_b['wall_s']:.1f}× faster and {nv_b['bytes'] / vb_b['bytes']:.1f}× smaller. "
            f"vecbackup's client CPU was {vb_b['cpu_user_s'] + vb_b['cpu_sys_s']:.1f}s against "
            f"{nv_b['cpu_user_s'] + nv_b['cpu_sys_s']:.1f}s for the naive export (pymilvus decoding the query "
            "results is part of both); the rest of vecbackup's wall time is waiting for the server's query pages. "
            "Restore of "
            f"{_n(b['rows'])} rows took {b['restore']['wall_s']:.1f}s ({_n(b['restore']['rows_per_s'])} rows/s) "
            f"with a peak RSS of {_mb(b['restore']['peak_rss_bytes'])} MiB "
            f"({_mb(a['restore']['peak_rss_bytes'])} MiB at {_n(a['rows'])} rows), including the server's flush, "
            f"HNSW build and load; the restoring process itself used only "
            f"{b['restore']['cpu_user_s'] + b['restore']['cpu_sys_s']:.1f}s of CPU, so restore speed is the "
            f"server's (loading the source collection the same way took {b['load']['loaded_s']:.1f}s).")
    li = res.get("lite")
    if li:
        parts.append(
            f"**Milvus Lite** ({_n(li['rows'])} rows): backup {_n(li['backup']['rows_per_s'])} rows/s wall "
            f"({_n(li['rows'] / li['backup']['tool_seconds'])} rows/s in-tool), restore "
            f"{_n(li['restore']['rows_per_s'])} rows/s wall ({_n(li['rows'] / li['restore']['tool_seconds'])} "
            "in-tool); at this size process start-up is a large share of the wall time.")
    st = res.get("stores")
    if st and st.get("stores"):
        rates = []
        for s in st["stores"]:
            many = _by(s["many"], "in_flight")
            lo, hi = min(many), max(many)
            rates.append(f"{s['name']} {_n(many[lo]['put']['mb_per_s'])} → {_n(many[hi]['put']['mb_per_s'])} MB/s up "
                         f"and {_n(many[lo]['get']['mb_per_s'])} → {_n(many[hi]['get']['mb_per_s'])} MB/s down")
        milvus = _milvus_mb_s(e)
        slowest = min(r[op]["mb_per_s"] for s in st["stores"] for r in s["many"] if r["in_flight"] == 1
                      for op in ("put", "get"))
        paced = milvus is not None and slowest > max(milvus[1], milvus[2])
        parts.append(
            f"**Object stores** (section 4; servers on this same machine, so CPU-bound): moving backup-sized objects "
            f"{min(st['in_flight'])} → {max(st['in_flight'])} at a time took " + "; ".join(rates)
            + ". Objects in flight matter more than a store's part/block concurrency, which vecbackup's "
            "~2.5 MiB objects never use. "
            + ("Even one object at a time outruns what Milvus feeds a backup or takes in a restore here; "
               if paced else "")
            + "backup's `PIPELINE` and restore's `read_ahead` (both 2) could follow the store's `concurrency` for "
            "slow links.")
    q = res.get("qdrant")
    if q and q.get("sizes"):
        parts.append(_qdrant_summary(q))
    e = res.get("edge")
    if e and e.get("sizes"):
        parts.append(_edge_summary(e))
    return "\n\n".join(parts)


_CAVEATS = """\
- One run per end-to-end measurement; on this shared 2-core machine repeated runs of the same step differ by
  roughly 10-20% (restore, which waits on the server's index build, the most).
- The Milvus server runs on the same 2 cores as the client, so server work and client work compete.
- Vectors are standard-normal float32, the worst case for compression; real embeddings (often normalised, sometimes
  low-entropy) may compress a little better in both formats.
- Wall times include Python start-up and imports (about 1s); the "in-tool" columns do not.
- The object store servers (SeaweedFS, Azurite) run on the same 2 cores as the client, over loopback: their rates
  measure CPU, not a network, and are no forecast of AWS S3 or Azure Blob throughput.
- The Qdrant figures (section 5) come from qdrant-client's local mode, a Python re-implementation running inside
  the measured process; a real Qdrant server answers scroll and upsert far faster, so there vecbackup's own
  codec and store work would be a larger share of the time.
- The JSON baseline is exact only because Python's `repr` of a float round-trips; it stores ~18 characters per
  float32 value."""


def _scale(sc: dict[str, Any]) -> str:
    """``make bench-scale`` (benchmarks/scale.py): each figure beside its yardstick from the same run."""
    m = sc["machine"]
    out = [f"Generated by `make bench-scale` on {m['date']} (Milvus {sc.get('server_version', '?')} standalone; "
           f"{m['nproc']} cores shared by the server and the client, so absolute figures are this machine's; "
           f"run time {sc.get('total_seconds', 0) / 60:.0f} min). Collections: int64 id, float32 vectors from a "
           "normal distribution, VARCHAR, JSON, ARRAY<INT64>, two dynamic keys. Medians of "
           f"{sc['configs'][0]['rounds'] if sc.get('configs') else '?'} alternating rounds for the backup and its "
           "yardstick; one run for the rest.", ""]
    earlier = [c for c in sc.get("configs", []) if c.get("measured", m["date"]) != m["date"]]
    if earlier:  # `--merge`: configs this run did not re-measure
        out[-2] += (" Carried over from earlier runs (`--merge`): " + "; ".join(
            f"{_n(c['rows'])} × {c['dim']} measured {c['measured']}" for c in earlier) + ".")
    if sc.get("errors"):
        out += [f"- error in {k}: `{v}`" for k, v in sc["errors"].items()] + [""]
    rows = []
    for c in sc.get("configs", []):
        n, b = c["rows"], c["backup"]
        bare_s, ours_s = b["bare"]["wall_s"], b["backup"]["wall_s"]
        rows.append([f"{_n(n)} × {c['dim']}", f"{bare_s:.1f}", f"{ours_s:.1f} ({ours_s / bare_s:.2f}×)",
                     f"{b['bare']['tool_s']:.1f} / {b['backup']['tool_s']:.1f} "
                     f"({b['backup']['tool_s'] / b['bare']['tool_s']:.2f}×)",
                     f"{n / ours_s:,.0f}", f"{c['raw_vector_bytes'] / 2**20 / ours_s:,.0f}",
                     f"{b['backup']['cpu_s']:.0f} / {b['bare']['cpu_s']:.0f}",
                     f"{_mb(b['backup']['peak_rss_bytes'])} / {_mb(b['bare']['peak_rss_bytes'])}",
                     f"{b['backup']['bytes'] / c['raw_vector_bytes']:.2f}",
                     f"{c['backup_parallel2']['wall_s']:.1f} ({c['backup_parallel2']['wall_s'] / bare_s:.2f}×)",
                     f"{c['sharded2']['wall_s']:.1f} ({c['sharded2']['wall_s'] / bare_s:.2f}×)"])
    out += ["**Backup** against the bare pymilvus export (`query_iterator`, all fields, pages discarded) of the same "
            "collection. Wall includes interpreter start-up; in-tool is each program's own timer.", ""]
    out.append(_table(["rows × dim", "bare export wall s", "backup wall s (× bare)", "in-tool s bare / backup (×)",
                       "rows/s", "vector MB/s", "client CPU s backup / bare", "peak RSS MiB backup / bare",
                       "stored ÷ raw vectors", "--parallel 2 wall s (× bare)", "2 shards + commit wall s (× bare)"],
                      rows))
    rows = []
    for c in sc.get("configs", []):
        n, load = c["rows"], c["load"]
        cells = [f"{_n(n)} × {c['dim']}" + ("" if "settle_s" in c else " *"), f"{c['index']} {c['index_params']}",
                 f"{load['wall_s']:.1f} (insert {load['insert_s']:.0f}, flush {load['flush_s']:.0f}, "
                 f"index {load['index_s']:.0f}, load {load['load_s']:.0f})"]
        for k in ("1", "2", "workers2", "import", "binlog", "rows"):
            r = c["restore"].get(k)
            cells.append(f"{r['wall_s']:.1f} ({r['wall_s'] / load['wall_s']:.2f}×)" if r else "–")
        r1 = c["restore"]["1"]
        cells += [f"{n / r1['wall_s']:,.0f}", f"{r1['cpu_user_s'] + r1['cpu_sys_s']:.0f}", _mb(r1["peak_rss_bytes"])]
        rows.append(cells)
    out += ["", "**Restore** against the plain pymilvus load of the same rows (insert in 5000-row batches + flush + "
            "index + load; generating the rows is not timed), measured once the source collection was compacted and "
            "indexed again (else the server's rebuild of its merged segment queues ahead of a restore's index "
            "build; docs/SCALING.md). Restore = create, insert the decoded columns, flush, "
            "index, load, rename; `--parallel K` inserts in flight; \"2 workers + commit\": `restore --shard I/2 "
            "--run RUN --commit` as two processes started together, each inserting half of the objects, the last "
            "to finish flushing, indexing, loading, counting and renaming; \"server's import\": `restore "
            "--bulk-import-via` with the files staged in a folder this server (local storage) reads, 128 MB of rows "
            "per task (docs/SCALING.md).", ""]
    out.append(_table(["rows × dim", "index", "plain load s", "restore K=1 s (× load)", "K=2 s (× load)",
                       "2 workers + commit s (× load)", "server's import s (× load)", "binlog import s (× load)",
                       "through pymilvus rows s (× load)", "rows/s K=1",
                       "client CPU s K=1", "peak RSS MiB K=1"],
                      rows))
    if any("settle_s" not in c for c in sc.get("configs", [])):
        out += ["", "\\* measured in an earlier run, before `make bench-scale` let the source collection settle first."]
    cfgs = sc.get("configs", [])
    big = [c for c in cfgs if c["dim"] == 768]
    if len(big) >= 2:
        a, b = big[0], big[-1]
        ra, rb = a["backup"]["backup"]["peak_rss_bytes"], b["backup"]["backup"]["peak_rss_bytes"]
        out += ["", f"**Memory stays flat**: peak RSS of `vecbackup backup` {_mb(ra)} MiB at {_n(a['rows'])} × 768 and "
                f"{_mb(rb)} MiB at {_n(b['rows'])} × 768 ({_mb(rb - ra)} MiB apart); restore "
                f"{_mb(a['restore']['1']['peak_rss_bytes'])} and {_mb(b['restore']['1']['peak_rss_bytes'])} MiB."]
    seed = sc.get("seed")
    if seed:
        out += ["", f"**The seed's approach** (`query(offset, limit)` pages into one list + `json.dumps` + gzip) on a "
                f"{_n(seed['of'])}-row collection: it read {_n(seed['rows'])} rows in {seed['wall_s']:.1f}s "
                f"({_mb(seed['peak_rss_bytes'])} MiB peak) and then "
                + (f"stopped: the server answered `{seed['error']}`." if seed.get("error") else "finished.")]
    return "\n".join(out)


def _carried(res: dict[str, Any]) -> list[str]:
    carried = res.get("carried_over") or {}
    if not carried:
        return []
    return ["Sections not re-run this time, with their numbers from an earlier run: "
            + "; ".join(f"{_SECTION_NAMES.get(k, k)} ({date})" for k, date in carried.items())
            + ". The run time above is this run's only.", ""]


_SECTION_NAMES = {"codec": "1. codec", "standalone": "2. Milvus standalone", "lite": "3. Milvus Lite",
                  "stores": "4. object stores", "qdrant": "5. Qdrant", "incremental": "7. incremental uploads",
                  "encryption": "8. encryption", "edge": "10. Qdrant Edge", "asof": "12. --as-of"}


def _imports(imp: dict[str, Any]) -> str:
    rows = []
    for c in imp["configs"]:
        load, r = c["load"], c["restore"]
        cells = [f"{_n(c['rows'])} × {c['dim']}", f"{c['index']} {c['index_params']}",
                 f"{load['wall_s']:.1f} (index {load['index_s']:.0f})"]
        for k in ("1", "import", "binlog"):
            x = r.get(k)
            cells.append(f"{x['wall_s']:.1f} ({x['wall_s'] / load['wall_s']:.2f}×)" if x else "–")
        cells += [str((r.get("import") or {}).get("import_tasks", "–")), str((r.get("binlog") or {}).get(
            "import_tasks", "–"))]
        cells.append(" / ".join(_mb(r[k]["peak_rss_bytes"]) if r.get(k) else "–" for k in ("1", "import", "binlog")))
        cells.append(c.get("measured", imp["machine"]["date"]))
        rows.append(cells)
    return "\n".join([
        "A restore by inserts against the server importing the rows itself, from numpy files (`--bulk-import-format "
        "files`) and from its own insert binlogs that vecbackup writes (`--bulk-import-format binlog`), staged in a "
        "folder this server (local storage) reads, 128 MB per task; each against the plain pymilvus load of the same "
        "rows (insert in 5000-row batches + flush + index + load) in the same run, the source settled first. Every "
        "restore ends with flush, index, load, count and rename. The server and the client share the machine's 2 "
        "cores, so the absolute seconds are this machine's; the ratios are the result.", "",
        _table(["rows × dim", "index", "plain load s", "restore by inserts s (× load)", "files' import s (× load)",
                "binlog import s (× load)", "tasks files", "tasks binlog", "peak RSS MiB inserts / files / binlog",
                "measured"], rows)])


def _incremental(inc: dict[str, Any]) -> str:
    rows = []
    for c in inc["changes"]:
        ch, first, i = c["changed"], c["first"], c["incremental"]
        rows.append([f"{c['fraction']:.1%}", f"{ch['updated']}/{ch['deleted']}/{ch['inserted']}",
                     _mb(first["store_bytes"]), _mb(i["store_growth"]), f"{c['uploaded_ratio']:.2%}",
                     _mb(i.get("reused_bytes") or 0),
                     f"{i['rows_reused']:,} of {i['rows']:,}", f"{i['objects_new']} new / {i['objects']}",
                     f"{c['full_uploaded_ratio']:.1%}", f"{c['wall_ratio']:.2f}x"])
    d = inc["daily"]
    series = d["series"]
    days = [s for s in series if s["day"] in (1, 2, 5, 10, 20, d["days"])]
    daily_rows = [[str(s["day"]), _mb(s["inc_store"]), f"{s['inc_store'] / d['one_full']:.2f}x",
                   _mb(s["full_store"]), f"{s['full_store'] / d['one_full']:.2f}x"] for s in days]
    check = d.get("last_restore") or {}
    return "\n".join([
        f"{_n(inc['rows'])} rows of the benchmark collection in Milvus Lite (batch {inc['batch_size']}); a change of "
        "f is f/2 of the rows updated (new vector and title), f/4 deleted and f/4 inserted, drawn at random over the "
        "whole key range (spread changes, the hard case for chunk-level deduplication). *Uploaded* is everything "
        "the second backup added to the store (data, row digests and manifest) over the store after the first. "
        "*--full* stores every row anew, as every backup did before incremental uploads. The incremental backup's "
        "wall time includes reading back and checking one reused object (2% of those it reuses, at least one: "
        "docs/OPERATIONS.md, \"Damaged objects\").",
        "",
        _table(["changed", "upd/del/ins", "first backup MiB", "next uploads MiB", "÷ first", "reused MiB",
                "rows reused", "objects", "--full ÷ first", "wall ÷ --full"], rows),
        "",
        f"{d['days']} daily backups at {d['fraction']:.0%} churn (total in the store after each day; "
        f"one full backup = {_mb(d['one_full'])} MiB): **{d['inc_total_ratio']:.2f}x** one full backup with "
        f"incremental uploads, {d['full_total_ratio']:.2f}x with `--full`. The last backup restored "
        f"{'the same keys as the collection' if check.get('same_keys') else 'DIFFERENT keys'} "
        f"({_n(check.get('rows', 0))} rows).",
        "",
        _table(["day", "incremental store MiB", "÷ one full", "--full store MiB", "÷ one full"], daily_rows),
    ])


def _encryption(en: dict[str, Any]) -> str:
    med, ratio, prim = en["median"], en["ratios"], en["primitives"]
    rows = [[what, f"{med['plain'][key]:.2f}", f"{med['encrypted'][key]:.2f}", f"{ratio[key]:.2f}x"]
            for what, key in (("backup (--full)", "backup_s"), ("verify --read-data", "verify_s"),
                              ("restore", "restore_s"))]
    rows.append(["stored bytes", _mb(med["plain"]["stored_bytes"]), _mb(med["encrypted"]["stored_bytes"]),
                 f"{ratio['stored_bytes']:.4f}x"])
    return "\n".join([
        f"{_n(en['rows'])} rows of the benchmark collection in Milvus Lite (batch {en['batch_size']}), backed up "
        "with `--full`, verified with `--read-data` and restored, into an unencrypted and an encrypted local store; "
        f"the two alternate, {en['repeat']} rounds each, medians. Milvus Lite and the client share the machine's "
        "2 cores, so the seconds are this machine's only: the ratio is the figure to read.",
        "",
        _table(["", "unencrypted s", "encrypted s", "encrypted ÷ unencrypted"], rows),
        "",
        f"Primitives, one core, an 8 MiB object: AES-256-GCM seal {prim['seal_mb_s']:.0f} MB/s, open "
        f"{prim['open_mb_s']:.0f} MB/s; HMAC-SHA256 naming {prim['name_mb_s']:.0f} MB/s. Unlocking a store (scrypt "
        f"2^15 x 8, one key file) takes {prim['unwrap_s']:.2f}s; opening the encrypted store (settings, key list, "
        f"unlock) took {med['encrypted']['unlock_s']:.2f}s in the run above.",
    ])


def _segments(res: dict[str, Any]) -> str:
    """Segment backups (benchmarks/scale.py ``segments``): each beside the logical backup of the same collection in
    the same run, then after 1% of the rows changed."""
    runs = [c for src in (res.get("segments"), res.get("scale")) if src for c in src.get("configs", [])
            if "segments" in c]
    sc = res.get("segments") or res.get("scale") or {}
    m = sc.get("machine", {})
    out = [f"Generated by `make bench-scale` (`--segments-only` measures just these) on {m.get('date', '?')} "
           f"(Milvus {sc.get('server_version', '?')} standalone, local storage; {m.get('nproc', '?')} cores shared "
           "by the server and the client, so absolute figures are this machine's). The logical backup reads every "
           "row through the server's query path; the segment backup reads the sealed segments' binlogs from the "
           "server's storage folder and stores the same chunks. \"After 1% changed\": a third of 1% of the rows "
           "deleted, a third upserted, a third inserted anew, across the whole key range, then flushed; the logical "
           "backup of that change starts from the same base. Where a config was settled first (its segments "
           "compacted and indexed again, as a long-lived collection's are), both backups read the settled "
           "collection; the first segment backup runs twice, each into an empty store (the median, and both runs).",
           ""]
    earlier = [c for c in runs if c.get("measured", m.get("date")) != m.get("date")]
    if earlier:  # `--merge`: configs this run did not re-measure
        out[-2] += (" Carried over from earlier runs (`--merge`): " + "; ".join(
            f"{_n(c['rows'])} × {c['dim']} measured {c['measured']}" for c in earlier) + ".")
    rows = []
    for c in runs:
        sg = c["segments"]
        first, after, logical_after = sg["first"], sg["after_1pct"], sg["logical_after_1pct"]
        logical = c.get("logical") or {"wall_s": c["backup"]["backup"]["wall_s"],
                                       "peak_rss_bytes": c["backup"]["backup"]["peak_rss_bytes"]}
        rows.append([f"{_n(c['rows'])} × {c['dim']}", f"{logical['wall_s']:.1f}",
                     f"{first['wall_s']:.1f} ({first['wall_s'] / logical['wall_s']:.2f}×)"
                     + (f"; runs {' / '.join(f'{w:.1f}' for w in first['walls'])}" if first.get("walls") else ""),
                     f"{first['bytes_read'] / 2**20:,.0f}",
                     f"{c['raw_vector_bytes'] / 2**20 / first['wall_s']:,.0f}",
                     f"{_mb(first['peak_rss_bytes'])} / {_mb(logical['peak_rss_bytes'])}",
                     f"{after['wall_s']:.1f}", f"{after['bytes_read'] / first['bytes_read']:.2%}",
                     f"{after['bytes_uploaded'] / first['bytes_uploaded']:.2%}",
                     f"{logical_after['wall_s']:.1f} / "
                     f"{logical_after['bytes_uploaded'] / first['bytes_uploaded']:.2%}"])
    out.append(_table(["rows × dim", "logical backup wall s", "segment backup wall s (× logical)", "read MiB",
                       "vector MB/s", "peak RSS MiB segment / logical", "after 1% changed: wall s",
                       "read ÷ first", "uploaded ÷ first", "logical after 1%: wall s / uploaded ÷ first"], rows))
    compacted = [c for c in runs if c["segments"].get("after_compaction")]
    if compacted:
        crow = []
        for c in compacted:
            first, after = c["segments"]["first"], c["segments"]["after_compaction"]
            seg, log = after["segments"], after["logical"]
            stored = seg.get("bytes_stored")
            crow.append([f"{_n(c['rows'])} × {c['dim']}", f"{after['settle_s']:.0f}", f"{seg['wall_s']:.1f}",
                         f"{seg['bytes_read'] / first['bytes_read']:.1%}",
                         f"{seg['bytes_uploaded'] / first['bytes_uploaded']:.1%}",
                         "" if stored is None or not first.get("bytes_stored") else
                         f"{stored / first['bytes_stored']:.1%}", f"{log['wall_s']:.1f}",
                         f"{log['bytes_uploaded'] / first['bytes_uploaded']:.1%}"])
        out += ["", "After a compaction: then a quarter of the rows deleted (every key divisible by 4) and compacted "
                "away, which rewrites the segments that held them; the next segment backup beside the logical backup "
                "of the same change from the same base. A rewritten segment is read again, and its rows found in the "
                "base's objects by their digests, as the logical backup finds each row it reads (until 2026-12-07 a "
                "segment was reused whole or uploaded again: 75% uploaded). \"restore reads\": the bytes of the "
                "objects the backup lists (a restore downloads them whole), ÷ the first backup's.",
                "", _table(["rows × dim", "compaction s", "segment backup wall s", "read ÷ first", "uploaded ÷ first",
                            "restore reads ÷ first", "logical backup wall s", "logical uploaded ÷ first"], crow)]
    on_logical = [c for c in runs if c["segments"].get("on_logical")]
    if on_logical:
        lrow = []
        for c in on_logical:
            first = c["segments"]["first"]
            for when, key in (("at once", "on_logical"), ("after the 1% change", "on_logical_after_1pct")):
                seg = c["segments"].get(key)
                if seg is None:
                    continue
                lrow.append([f"{_n(c['rows'])} × {c['dim']}", when, f"{seg['wall_s']:.1f}",
                             f"{seg['bytes_read'] / first['bytes_read']:.1%}",
                             f"{seg['bytes_uploaded'] / first['bytes_uploaded']:.1%}",
                             f"{_n(seg['rows_reused'])}"])
        out += ["", "On top of a logical backup: a segment backup into the store of the logical backup of the same "
                "collection (its base), as the first segment backup of a store that logical backups filled: at once, "
                "and after the 1% change (the segments then hold rows deleted since, which the logical backup does "
                "not). Every segment is read; a batch whose every live row the logical backup holds is named in its "
                "objects instead of uploaded, and only its rows deleted since are stored (until 2026-12-07 every row "
                "was uploaded again; until the session after, a batch holding a row deleted since was uploaded whole).",
                "", _table(["rows × dim", "when", "wall s", "read ÷ first", "uploaded ÷ first", "rows found"], lrow)]
    return "\n".join(out)


def _asof(a: dict[str, Any]) -> str:
    med, ratio = a["median"], a["ratios"]
    rows = [[what, f"{med[key]:.2f}", f"{med[key + '_as_of']:.2f}", f"{ratio[key]:.2f}x"]
            for what, key in (("list", "list"), ("verify --read-data", "verify"), ("restore", "restore"))]
    return "\n".join([
        f"{_n(a['rows'])} rows of the benchmark collection in Milvus Lite, backed up in batches of {a['batch_size']} "
        f"({_n(a['objects'])} objects) into a SeaweedFS bucket with versioning; then every current object deleted and "
        f"brought back with `undelete --as-of` ({a['undelete_s']:.1f}s), so each key has a delete marker and two "
        "versions to choose from. Each command runs on the store as it is and as of before the deletion, "
        f"alternated, {a['repeat']} rounds, medians, through the CLI in one process (`python -m "
        "benchmarks.asof_bench`). SeaweedFS, Lite and the client share the machine's 2 cores: the ratio is the "
        "figure to read. A store read as of a time lists each top-level prefix's versions once "
        "(stores/versions.py) instead of one listing per object read.",
        "",
        _table(["", "now s", "--as-of s", "--as-of ÷ now"], rows),
    ])


def render(res: dict[str, Any]) -> str:
    out = ["# vecbackup benchmarks", "",
           "Generated by `make bench` (`python -m benchmarks.run`); raw numbers in `benchmarks/results.json`. "
           f"Total benchmark run time: {res.get('total_seconds', 0):.0f}s.", "",
           *_carried(res),
           "## Machine", "", _machine(res["machine"]), ""]
    if res.get("errors"):
        out += ["## Errors", "", *[f"- {k}: `{v}`" for k, v in res["errors"].items()], ""]
    out += ["## What this shows", "", _summary(res), ""]
    if res.get("codec"):
        out += ["## 1. Codec level (no server)", "", _codec(res["codec"]), ""]
    if res.get("standalone"):
        out += ["## 2. End to end: Milvus 2.3 standalone", "", _e2e(res["standalone"]), ""]
    if res.get("lite"):
        out += ["## 3. End to end: Milvus Lite", "", _lite(res["lite"]), ""]
    if res.get("stores") and res["stores"].get("stores"):
        out += ["## 4. Object stores: S3 (SeaweedFS), Azure (Azurite), local folder", "",
                _stores(res["stores"], res.get("standalone")), ""]
    if res.get("qdrant") and res["qdrant"].get("sizes"):
        out += ["## 5. End to end: Qdrant (qdrant-client local mode, not a server)", "", _qdrant(res["qdrant"]), ""]
    if res.get("scale"):
        out += ["## 6. At scale (`make bench-scale`)", "", _scale(res["scale"]), ""]
    if res.get("incremental"):
        out += ["## 7. Incremental uploads", "", _incremental(res["incremental"]), ""]
    if res.get("encryption"):
        out += ["## 8. Encryption", "", _encryption(res["encryption"]), ""]
    if res.get("segments") or any("segments" in c for c in (res.get("scale") or {}).get("configs", [])):
        out += ["## 9. Segment backups (`backup --segments-from`)", "", _segments(res), ""]
    if res.get("edge") and res["edge"].get("sizes"):
        out += ["## 10. End to end: Qdrant Edge", "", _edge(res["edge"]), ""]
    if res.get("imports") and res["imports"].get("configs"):
        out += ["## 11. Restores through the server's imports (`make bench-scale SCALE_ARGS=--imports-only`)", "",
                _imports(res["imports"]), ""]
    if res.get("asof"):
        out += ["## 12. Reading a store as it was (`--as-of`)", "", _asof(res["asof"]), ""]
    out += ["## Caveats", "", _CAVEATS, ""]
    return "\n".join(out)
