"""Regenerate docs/CLI.md from the commands' --help (``make docs``); tests check it is complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INTRO = {
    "backup": """Back up one or more collections. Each collection becomes its own backup (its own manifest), so
retention and restores work per collection. Data chunks are content-addressed: chunks already in the store (from
an earlier backup of unchanged data, or from an interrupted run of this one) are not uploaded again. Each backup
reports its data (`bytes_stored` in `--json`: the data objects it references, new or already in the store) and what
it uploaded (`bytes_uploaded`: its new data objects and the row digests written beside each, so a first backup
uploads a little more than its data, and a backup of unchanged data nothing).

```sh
vecbackup backup milvus://db:19530 file:///backups --collection articles --collection users
VECBACKUP_MILVUS_TOKEN=... vecbackup backup milvus+https://db:443 s3://bucket/milvus --all --json
```""",
    "commit": """Join the shards of a sharded backup into one backup. A collection too large for one process is
backed up by N workers, `backup --shard I/N --run RUN` for I = 0 … N-1 (processes, machines, or the pods of a
Kubernetes Indexed Job: deploy/kubernetes/cronjob-sharded-backup.yaml); each writes its data and a shard record.
`commit` writes the backup's manifest only when all N records are there: until then there is no backup, and it
exits 8 naming the missing shards. Committing twice finds the same backup. `backup --shard ... --commit` makes each
worker try it after its own shard, so the last one to finish commits. `delete`, `prune` and `gc` keep the data of
runs not committed yet; `--abandon` gives a run up.

```sh
vecbackup backup milvus://db:19530 s3://bucket/milvus -c articles --shard 0/4 --run nightly-1201   # on 4 workers
vecbackup commit s3://bucket/milvus -c articles --run nightly-1201
```""",
    "restore": """Restore a backup. Every data object's SHA-256 is checked before its rows are inserted, and an
existing collection is never touched unless `--drop-existing` is given. Aliases are recreated when restoring under
the original name.

* Milvus: the collection is created under a staging name (`<name>_vbrestore_<hex>`), filled, indexed and loaded,
  and only then renamed to the target; on failure the staging collection is dropped.
* Qdrant has no rename: a new collection is restored straight under its name (and deleted again if the restore
  fails); with `--drop-existing` the data fills `<name>_vbrestore_<hex>` first, then the old collection is deleted
  and an alias with its name points at the new one. `--shards` and `--replication-factor` override the recorded
  topology, for restoring into a different cluster.
* The collection being filled carries a lease the restore renews. A restore that cannot clean up (killed, its
  machine lost) leaves it behind with a lease that says so: the next restore into the same target drops it first
  (and says so: `dropped` in `--json`), as does `vecbackup gc TARGET_URL`. A collection a live restore is filling
  is never touched.

`--index-params FIELD:M=16,efConstruction=200` supplies build parameters the source did not report (Milvus Lite)
or overrides recorded ones. `--index-fallback` builds the engine's default index where the target cannot build the
recorded type, and says so in the output. `--new-ids` lets a server that refuses recorded primary keys of an
auto-id collection assign new ones (Milvus before 2.4).

On a terminal, stderr shows a bar of the rows written, then each phase the restore waits on, one line each from
the moment it begins: `flushing`, `building index NAME` (with the rows the server has indexed), `loading` (with the
percent loaded), `counting rows`, `renaming` (through `--bulk-import-via`, `importing rows` comes first: the rows
the server's last import tasks have taken in). A line shows a spinner and the time taken while its phase lasts,
redrawn several times a second, and a check mark once it is done; the counts are the server's own, looked at every
second (Milvus Lite reports none while it builds an index or loads: its lines show the phase and the time taken).
Elsewhere (a pipe or a file, `--json`, `--log-format json`, `--quiet`) the phases print nothing: the row count's
lines are what they were.

A collection's functions (a BM25 function filling a sparse vector from a text field, ...) are recreated, and the
target computes their output fields from the restored inputs. A target that cannot hold a function (a Milvus before
2.5, Qdrant) is refused before anything is created (exit 9, naming the function); `--drop-functions` restores
without the functions and their output fields, and the plan (`--dry-run`) says so.

```sh
vecbackup restore file:///backups milvus://dr:19530 --collection articles --as articles_dr
vecbackup restore s3://bucket/milvus milvus-lite:///tmp/check.db --backup 20261122T0215 --drop-existing
```""",
    "drill": """Disaster-recovery drill, for CI and for auditors: restore the latest (or `--backup`) backup of
`--collection` into a scratch collection `<name>_drill_<hex>` on TARGET_URL, check it, write the reports, and drop
the scratch collection (also when a check fails; `--keep` leaves it). Checks: `restore` (every object's SHA-256;
its wall time is the RTO), `row_count` (the restored copy holds exactly the backup's rows; with `--source` the
live source's count is reported, and `--max-source-drift N` fails when the two differ by more than N rows),
`sample_rows` (`--sample` rows read from the backup's data objects equal, field by field and exactly, the rows
with the same primary keys in the restored copy), `search_recall` (`--queries` vectors of sampled rows, top
`--top-k`: recall of the restored copy against the live source with `--source`, else how often a row finds itself
in its own top k, which catches a broken index; fails below `--min-recall`), `text_search` (collections with a BM25
function: full-text queries made of words of sampled rows, top `--top-k` of the restored copy against the live
source's with `--source`, ties at the k-th score counted as agreeing, fails when the agreement is more than
`--recall-tolerance` below 1; else each sampled row must be found by a query of its own words) and `backup_age`
(the RPO, fails above `--max-age`). Exit 12 when any check fails; the reports say which and why. A drill that dies
leaves its scratch collection under a lease that says so: the next drill of the collection drops it (a note says
so), as does `vecbackup gc TARGET_URL`. On a terminal the drill shows its restore as `restore` does (the rows, then
each phase it waits on), then each check of the copy as it runs and the scratch collection's drop.

```sh
vecbackup drill s3://bucket/milvus milvus://dr:19530 --collection articles --source milvus://db:19530 \\
    --max-age 26h --junit drill.xml --report-json drill.json
```""",
    "list": "List complete backups (those with a manifest), oldest first.",
    "show": "Show one backup's manifest: schema, indexes and their parameters, partitions with row counts, notes. "
            "`--json` prints the manifest itself.",
    "verify": "Read back every data object of a backup (or `--all` backups) and check presence, size, SHA-256 and "
              "the chunk header's row count. Exit 8 when an object is missing, 7 when one is damaged.",
    "delete": "Delete a backup: its manifest first, then each data object no other backup references.",
    "prune": """Apply a retention policy, as restic's `forget --prune`. Each collection is judged on its own, by
its backups' completion times in UTC, newest first: `--keep-last N` keeps the N newest; `--keep-hourly`,
`--keep-daily`, `--keep-weekly` (ISO weeks), `--keep-monthly` and `--keep-yearly N` keep the newest backup of each
of the last N hours/days/weeks/months/years that have a backup (a gap does not use up the count); `--keep-within
30d` keeps every backup completed in the last 30 days. A backup is kept if any rule keeps it, and the output
names every rule that does. Backups dated after now (a clock ahead) are always kept, and so is the newest backup of
each collection, even when no rule keeps it (`--keep-within` alone, for a collection with no backup in the window).
With no `--keep` option at all it refuses (exit 2) rather than remove everything.

Removed backups' manifests are deleted first, then the data objects no remaining backup references, then (as `gc`)
unreferenced leftovers of failed backups older than `--gc-min-age`. Refuses to delete anything if any manifest is
unreadable. Run `--dry-run` first: it prints the same table and deletes nothing. `--json` lists the ids of the
backups kept and removed (`kept`, `removed`; with `--dry-run`, that would be) and every backup judged, with its
reasons (`backups`).

```sh
vecbackup prune file:///backups --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 3 --dry-run
vecbackup prune s3://bucket/milvus --collection articles --keep-last 3 --keep-within 30d --json
```""",
    "gc": """Given a store: delete data objects no backup references, leftovers of failed or interrupted backups.
Objects younger than `--min-age` (default 24h) are kept, since a backup still running may be about to reference
them. Refuses to delete anything if any manifest is unreadable. Do not run it with `--min-age 0` while a backup to
the same store is running.

Given a database (`milvus://`, `milvus-lite://`, `qdrant://`, `qdrant-local://`, `qdrant-edge://`): drop the
collections (Edge: shard folders) that restores and drills which died (SIGKILL, a lost node) left there, and say
what it dropped. Every collection a restore or drill fills carries a lease its process renews; `gc` drops a
collection whose lease belongs to a process of this machine that no longer runs, or ran out more than 5 minutes
ago; it never touches a collection whose lease is live, nor one without a lease, whatever its name (one named like
a staging collection is listed as kept). The staging collections of restores by several workers are listed and kept
(`restore --run RUN --abandon` drops them).
`--dry-run` lists what it would do. See [OPERATIONS.md](OPERATIONS.md#leftovers-of-restores-and-drills).

```sh
vecbackup gc s3://bucket/milvus --min-age 7d
vecbackup gc milvus://dr:19530 --dry-run
```""",
    "stats": """What a store holds and what each backup costs. Per backup: `size` (every data object it uses, shared
or not), `uploaded` (what it wrote: incremental backups upload only new rows) and `unique` (the data objects and
row digests no other backup nor uncommitted shard record uses: exactly what `delete` of that backup alone frees).
For the store: its total (data, row digests, manifests, shard records), the unreferenced objects `gc` would remove,
and the deduplication ratio (the bytes the backups reference over the bytes their data objects occupy). With
`--collection` only its backups are listed and counted in the ratio, but uniqueness is still judged against every
backup in the store. Reads only and takes no lock. An unreadable manifest is reported, and unique bytes are then
unknown.

```sh
vecbackup stats s3://bucket/milvus
vecbackup stats file:///backups --collection articles --json
```""",
    "unlock": "Remove stale locks (left by runs that died) or, with `--all`, every lock; `--list` shows them. "
              "Backups take shared locks, delete/prune/gc exclusive ones; a run that finds a conflicting lock "
              "exits 11 unless `--lock-wait` lets it wait.",
    "undelete": """Bring back what was deleted from an S3 bucket with versioning (or Object Lock) since TIME: the
delete markers written since over the objects the store held then are removed (data and row digests first, manifests
after them), and the tombstones written since are deleted, so backups deleted since, by `delete`, `prune` or anyone
with delete rights, are listed, verified and restored again. An object written again since is left as it is and
reported (`--as-of` still reads the old version); store locks are never brought back. Under an exclusive lock, as
`gc`. An encrypted store is unlocked with the key files it had at TIME, so it works after its settings and key files
were deleted too. Local folders, Azure and buckets without versioning: exit 9. Every read-only command takes
`--as-of TIME` to read the store as it was, without changing it (docs/STORES.md, "Versioned buckets").

```sh
vecbackup list s3://bucket/milvus --as-of 2026-12-07T05:00:00Z        # what was there before the incident
vecbackup restore s3://bucket/milvus milvus://host:19530 --as-of 3h   # restore from it, without changing it
vecbackup undelete s3://bucket/milvus --as-of 2026-12-07T05:00:00Z --dry-run
```""",
    "schedule": """Run backup jobs on a timetable in one long-running process, for containers without cron. The
file holds `[[jobs]]` (name, source, store, `collections` or `all = true`, `every = "6h"` or `at = "02:15"` daily
UTC, optional `keep_*` retention applied after each successful backup, `batch_size`, ...) and an optional
`heartbeat` file; see [CONFIG.md](CONFIG.md#schedule). Jobs run one after another, never two at once; a job still
running when it is due again has that run skipped (with a warning); a failing job is logged and the others go on.
SIGTERM/SIGINT interrupt the running job as Ctrl-C interrupts `backup` (nothing committed; its chunks are reused
next time) and exit 0. The heartbeat file holds JSON with every job's last run and status, rewritten every second
and after each job. `--once` runs every job once and exits 3 if any failed (CronJobs sharing the file).

```sh
vecbackup schedule /etc/vecbackup/schedule.toml
vecbackup schedule schedule.toml --once --json
```""",
    "init": """Prepare a store. With `--encrypt`, make it an encrypted store: every manifest, data object and row
digest is encrypted and authenticated on the client (AES-256-GCM) with a repository key, and data objects are named
by a keyed MAC of their content; the repository key is wrapped in a key file by the passphrase (scrypt). The store
must be empty (exit 5 if it holds unencrypted backups or is encrypted already). The passphrase comes from
`VECBACKUP_PASSPHRASE`, `--passphrase-file` or `--key-command` (or is asked for at a terminal); every other command
takes it the same way, and fails with exit 13 without one that opens the store. **Keep it safe: without it (or
another key's) the backups cannot be read.** See [SECURITY.md](SECURITY.md#encryption).

```sh
VECBACKUP_PASSPHRASE_FILE=/run/secrets/vb-pass vecbackup init s3://bucket/milvus --encrypt --label prod
vecbackup init file:///backups/milvus --encrypt --key-command "vault kv get -field=pw secret/vecbackup"
```""",
    "key add": """Add a passphrase that opens an encrypted store: a new key file wrapping the same repository key, so
nothing is re-encrypted or uploaded again. The store is opened with an existing passphrase (`VECBACKUP_PASSPHRASE`,
`--passphrase-file`, `--key-command`); the new one comes from `VECBACKUP_NEW_PASSPHRASE`, `--new-passphrase-file` or
`--new-key-command` (or is asked for at a terminal).

```sh
vecbackup key add s3://bucket/milvus --new-passphrase-file /secure/dr-pass --label "DR team"
```""",
    "key list": "List the key files of an encrypted store: id, creation time, host and label; `*` marks the one "
                "the passphrase given opened.",
    "key remove": """Remove a key file: its passphrase no longer opens the store. The key this run opened the store
with is never removed (so neither is the last one): to rotate, add the new passphrase, then remove the old key with
the new passphrase. Removing a key file does not re-encrypt anything; see [SECURITY.md](SECURITY.md#encryption) for
what that means for revoking access.

```sh
vecbackup key remove s3://bucket/milvus 3db6943d --passphrase-file /secure/new-pass
```""",
    "collections": "List the collections on a server with their row counts (useful before `backup --collection`).",
    "version": "Print vecbackup's version and the format versions it writes.",
}

HEADER = """# Command line reference

`vecbackup COMMAND --help` prints the same; this file is generated by `make docs`.

* Milvus: `milvus://host:19530[/db]`, `milvus+https://host:443` (TLS) or `milvus-lite:///path/to/file.db`.
  Credentials: `VECBACKUP_MILVUS_TOKEN`, or `VECBACKUP_MILVUS_USER` + `VECBACKUP_MILVUS_PASSWORD` (flags exist,
  but flags show up in process lists). A backup reads the Query RPC's columns and a restore inserts columns;
  `?columnar=off` makes both go row by row through pymilvus (`query_iterator`, `insert`) instead (slower; a way
  round should a server answer in a way the columnar path does not expect, which it otherwise detects itself and
  notes in the backup or the restore).
* Qdrant: `qdrant://host:6333` (REST), `qdrant+https://host:6333`, `qdrant+grpc://host:6334` (gRPC),
  `qdrant-local:///path` (qdrant-client's local mode). API key: `VECBACKUP_QDRANT_API_KEY` or `QDRANT_API_KEY`.
* Stores: `file:///path/to/folder` (or a plain path), `s3://bucket/prefix?...`, `azure://container/prefix?...`;
  settings and credentials in [STORES.md](STORES.md).
* Exit codes: [EXIT_CODES.md](EXIT_CODES.md).
* Every option can also come from `VECBACKUP_<COMMAND>_<OPTION>` (shown as `env var` below) or a TOML config file
  (`vecbackup --config FILE COMMAND ...`, `VECBACKUP_CONFIG`, or `./vecbackup.toml`): flags beat the environment,
  which beats the file. Secrets never come from the file. See [CONFIG.md](CONFIG.md).
"""


def main() -> None:
    out = [HEADER]
    env = {"COLUMNS": "110", "PATH": os.environ.get("PATH", "/usr/bin"), "TERM": "dumb"}
    for cmd in INTRO:
        r = subprocess.run([sys.executable, "-m", "vecbackup", *cmd.split(), "--help"], capture_output=True, text=True,
                           env=env, check=True)
        out += [f"## vecbackup {cmd}", "", INTRO[cmd], "", "```", r.stdout.rstrip(), "```", ""]
    Path("docs/CLI.md").write_text("\n".join(out))


if __name__ == "__main__":
    main()
