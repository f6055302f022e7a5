"""`vecbackup prune` against every store (local, S3 on SeaweedFS, Azure on Azurite).

Backup ids and times come from the real clock, so the store states here are made from real backups of
Milvus Lite collections whose manifests are copied under new ids and chosen times (started_at,
completed_at) through the store API: the data objects are real, and several backups share them, as
backups of unchanged data do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.datasets import build_vector_only
from vecbackup.engines.milvus import MilvusEngine
from vecbackup.format import layout
from vecbackup.ops.backup import backup_collection
from vecbackup.stores.local import LocalStore
from vecbackup.urls import parse_milvus_url

X, Y = "articles", "users"
POLICY = ["--keep-last", "1", "--keep-monthly", "2", "--keep-yearly", "1"]


@dataclass
class Template:
    """A real backup: its manifest (as JSON) and its data objects."""

    manifest: dict[str, Any]
    objects: dict[str, bytes]

    @property
    def keys(self) -> set[str]:
        return set(self.objects)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    """Three real backups: collection X with its old rows, X after its rows changed, and collection Y."""
    from pymilvus import MilvusClient

    tmp = tmp_path_factory.mktemp("prune-templates")
    db, store = tmp / "lite.db", LocalStore(tmp / "store", create=True)
    client = MilvusClient(str(db))
    engine = MilvusEngine(parse_milvus_url(f"milvus-lite://{db}"))
    out: dict[str, Template] = {}
    try:
        for label, coll, seed in (("x_old", X, 3), ("x_new", X, 4), ("y", Y, 5)):
            if client.has_collection(coll):
                client.drop_collection(coll)
            build_vector_only(client, coll, "FLOAT_VECTOR", n=120, seed=seed)
            r = backup_collection(engine, store, coll, batch_size=50)
            manifest = orjson.loads(store.get(layout.manifest_key(coll, r.backup_id)))
            out[label] = Template(manifest, {o["key"]: store.get(o["key"]) for o in manifest["objects"]})
    finally:
        engine.close()
        client.close()
    assert len(out["x_old"].objects) == 3
    assert not out["x_old"].keys & out["x_new"].keys and not out["x_new"].keys & out["y"].keys
    return out


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def seed(store: Any, templates: dict[str, Template], plan: list[tuple[str, datetime]]) -> dict[datetime, str]:
    """Write each template's data objects and, for each (template, time), a copy of its manifest as a
    backup completed at that time. Returns the backup id of each time."""
    ids: dict[datetime, str] = {}
    for label, t in plan:
        tpl = templates[label]
        for key, data in tpl.objects.items():
            store.put(key, data)
        backup_id = layout.new_backup_id(t - timedelta(minutes=2))
        m = dict(tpl.manifest, backup_id=backup_id, started_at=_iso(t - timedelta(minutes=2)), completed_at=_iso(t))
        store.put(layout.manifest_key(m["collection"]["name"], backup_id), orjson.dumps(m), if_absent=True)
        ids[t] = backup_id
    return ids


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# dates in the past, so the count rules (which do not depend on now) decide the same whatever the date
PLAN = [
    ("x_old", T("2024-03-10T10:00")), ("x_old", T("2024-07-01T10:00")), ("x_old", T("2024-12-31T23:00")),
    ("x_new", T("2025-01-01T01:00")), ("x_new", T("2025-06-10T08:00")), ("x_new", T("2025-06-20T08:00")),
    ("x_new", T("2025-06-20T09:00")),
    ("y", T("2025-02-02T00:00")), ("y", T("2025-03-03T00:00")),
]
# POLICY (last 1, monthly 2, yearly 1) keeps, newest first:
KEPT = {
    T("2025-06-20T09:00"): ["last #1", "monthly #1", "yearly #1"],
    T("2025-01-01T01:00"): ["monthly #2"],  # June 2025 is monthly #1; 2024-12-31 is a third month
    T("2025-03-03T00:00"): ["last #1", "monthly #1", "yearly #1"],
    T("2025-02-02T00:00"): ["monthly #2"],
}


def _state(store: Any) -> dict[str, int]:
    return {o.key: o.size for o in store.list("")}


def _leftover(store: Any) -> str:
    """An unreferenced data object, as an interrupted backup leaves (just written: younger than 24h)."""
    data = b"leftover of an interrupted backup"
    key = layout.data_key(hashlib.sha256(data).hexdigest())
    store.put(key, data)
    return key


def test_dry_run_then_prune_then_again(cli, any_store, templates):
    store = any_store.open()
    ids = seed(store, templates, PLAN)
    leftover = _leftover(store)
    by_id = {v: k for k, v in ids.items()}
    before = _state(store)

    # dry run: every decision listed, nothing deleted
    r = cli("prune", any_store.url, *POLICY, "--dry-run", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["ok"] and doc["dry_run"] and doc["policy"] == {"keep_last": 1, "keep_monthly": 2, "keep_yearly": 1}
    assert len(doc["backups"]) == len(PLAN)
    assert {by_id[b["backup_id"]]: b["reasons"] for b in doc["backups"] if b["keep"]} == KEPT
    assert all(b["reasons"] == [] for b in doc["backups"] if not b["keep"])
    assert [b["collection"] for b in doc["backups"]] == [X] * 7 + [Y] * 2  # per collection, newest first
    assert (len(doc["kept"]), len(doc["removed"])) == (4, 5)
    assert doc["kept"] == [b["backup_id"] for b in doc["backups"] if b["keep"]]  # ids, in the table's order
    assert doc["removed"] == [b["backup_id"] for b in doc["backups"] if not b["keep"]]
    assert doc["objects_deleted"] == len(templates["x_old"].objects)  # would be
    assert doc["objects_kept"] == len(templates["x_new"].objects)
    assert doc["gc"]["kept_young"] == 1
    assert _state(store) == before

    # the human table says the same
    r = cli("prune", any_store.url, *POLICY, "--dry-run")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    for t, backup_id in ids.items():
        line = next(line for line in lines if backup_id in line)
        assert ("keep" in line and ", ".join(KEPT[t]) in line) if t in KEPT else "remove" in line
    assert "would remove 5 backups, keep 4" in r.stdout
    assert _state(store) == before

    # the real thing
    r = cli("prune", any_store.url, *POLICY, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert not doc["dry_run"] and (len(doc["kept"]), len(doc["removed"])) == (4, 5)
    assert sorted(doc["kept"]) == sorted(ids[t] for t in KEPT)
    old = templates["x_old"]
    assert doc["objects_deleted"] == len(old.objects)
    assert doc["bytes_freed"] == sum(len(b) for b in old.objects.values())
    assert doc["gc"]["deleted"] == 0 and doc["gc"]["kept_young"] == 1
    after = _state(store)
    manifests = {k for k in after if k.startswith(layout.MANIFESTS)}
    collection_of = {t: templates[label].manifest["collection"]["name"] for label, t in PLAN}
    assert manifests == {layout.manifest_key(collection_of[t], ids[t]) for t in KEPT}
    data = {k for k in after if k.startswith(layout.DATA)}
    assert data == templates["x_new"].keys | templates["y"].keys | {leftover}  # data only removed backups used: gone
    listed = cli("list", any_store.url, "--json").json()["backups"]
    assert sorted(b["backup_id"] for b in listed) == sorted(ids[t] for t in KEPT)
    r = cli("verify", any_store.url, "--all", "--json")
    assert r.code == 0, r.stderr
    assert len(r.json()["backups"]) == 4

    # the same policy again removes nothing
    r = cli("prune", any_store.url, *POLICY, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert (len(doc["kept"]), doc["removed"], doc["objects_deleted"]) == (4, [], 0)
    assert {by_id[b["backup_id"]]: b["reasons"] for b in doc["backups"]} == KEPT
    assert _state(store) == after

    # leftovers of failed backups go once past --gc-min-age
    r = cli("prune", any_store.url, *POLICY, "--gc-min-age", "0", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["gc"]["keys"] == [leftover]
    assert _state(store) == {k: v for k, v in after.items() if k != leftover}


def test_keep_within_one_collection(cli, any_store, templates):
    """--keep-within counts back from now; --collection leaves the other collections alone; a collection
    with no backup in the window keeps its newest."""
    store = any_store.open()
    now = datetime.now(UTC)
    plan = [("x_old", now - timedelta(days=400)), ("x_old", now - timedelta(days=40)),
            ("x_new", now - timedelta(days=20)), ("x_new", now - timedelta(hours=1)),
            ("y", T("2025-02-02T00:00"))]
    ids = seed(store, templates, plan)
    r = cli("prune", any_store.url, "--collection", X, "--keep-within", "30d", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["policy"] == {"keep_within": "30d"}
    assert {b["backup_id"]: (b["keep"], b["reasons"]) for b in doc["backups"]} == {
        ids[plan[0][1]]: (False, []), ids[plan[1][1]]: (False, []),
        ids[plan[2][1]]: (True, ["within 30d"]), ids[plan[3][1]]: (True, ["within 30d"])}
    data = {o.key for o in store.list(layout.DATA)}
    assert data == templates["x_new"].keys | templates["y"].keys
    assert [b["backup_id"] for b in cli("list", any_store.url, "-c", Y, "--json").json()["backups"]] == \
        [ids[plan[4][1]]]
    assert cli("verify", any_store.url, "--all").code == 0

    # every collection, and Y has nothing within 30d: its newest stays, with a warning
    ids.update(seed(store, templates, [("y", T("2025-01-01T00:00"))]))
    r = cli("prune", any_store.url, "--keep-within", "30d", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert {b["backup_id"]: b["reasons"] for b in doc["backups"] if b["collection"] == Y} == {
        ids[plan[4][1]]: ["newest, as no rule keeps any"], ids[T("2025-01-01T00:00")]: []}
    assert doc["removed"] == [ids[T("2025-01-01T00:00")]] and "users" in r.stderr and "kept anyway" in doc["notes"][0]
    assert cli("verify", any_store.url, "--all").code == 0


def test_empty_policy_exits_2(cli, any_store, templates):
    store = any_store.open()
    seed(store, templates, PLAN[:3])
    before = _state(store)
    for extra in ([], ["--keep-last", "0", "--keep-within", "0"]):
        r = cli("prune", any_store.url, *extra, "--json")
        assert r.code == 2, r.stderr
        assert "no keep rule" in r.stderr and r.json() == {"ok": False, "error": r.json()["error"], "exit_code": 2}
    assert cli("prune", any_store.url, "--keep-last", "-1").code == 2
    assert cli("prune", any_store.url, "--keep-within", "soon").code == 2
    assert _state(store) == before


def test_unreadable_manifest_deletes_nothing(cli, any_store, templates):
    store = any_store.open()
    seed(store, templates, PLAN)
    store.put(layout.manifest_key(Y, layout.new_backup_id(T("2025-05-05T00:00"))), b"{not json")
    before = _state(store)
    r = cli("prune", any_store.url, "--keep-last", "1")
    assert r.code == 7, r.stderr
    assert "cannot be read" in r.stderr and "nothing deleted" in r.stderr
    assert _state(store) == before


def test_quiet(cli, any_store, templates):
    store = any_store.open()
    seed(store, templates, PLAN[:4])
    r = cli("prune", any_store.url, "--keep-last", "2", "--quiet")
    assert r.code == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert len(list(store.list(layout.MANIFESTS))) == 2


def test_data_shared_with_another_collection_stays(cli, any_store, templates):
    """Chunks are content-addressed, so another collection's backup may use the same objects: pruning one
    collection must count every collection's backups as users."""
    store = any_store.open()
    ids = seed(store, templates, [("x_old", T("2024-01-01T00:00")), ("x_new", T("2025-01-01T00:00"))])
    twin = Template(dict(templates["x_old"].manifest, collection={**templates["x_old"].manifest["collection"],
                                                                  "name": Y}), templates["x_old"].objects)
    ids.update(seed(store, {"twin": twin}, [("twin", T("2024-02-02T00:00"))]))
    r = cli("prune", any_store.url, "-c", X, "--keep-last", "1", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert [(b["backup_id"], b["keep"]) for b in doc["backups"]] == [(ids[T("2025-01-01T00:00")], True),
                                                                     (ids[T("2024-01-01T00:00")], False)]
    assert (doc["objects_deleted"], doc["objects_kept"]) == (0, len(twin.objects))
    assert {o.key for o in store.list(layout.DATA)} == templates["x_old"].keys | templates["x_new"].keys
    assert cli("verify", any_store.url, "--all").code == 0


def test_bad_completed_at_deletes_nothing(cli, any_store, templates):
    store = any_store.open()
    seed(store, templates, PLAN[:3])
    m = dict(templates["x_old"].manifest, backup_id=layout.new_backup_id(T("2025-05-05T00:00")),
             completed_at="yesterday")
    store.put(layout.manifest_key(X, m["backup_id"]), orjson.dumps(m))
    before = _state(store)
    r = cli("prune", any_store.url, "--keep-last", "1")
    assert r.code == 7, r.stderr
    assert "completed_at" in r.stderr and "nothing deleted" in r.stderr
    assert _state(store) == before


def test_prune_backed_up_prunes_what_the_run_backed_up_and_nothing_else(lite, store_dir):
    """vecbackup.prune_backed_up, a schedule job's retention through the API: each collection the run backed up,
    by the policy, in the run's order; a collection the run failed on, or did not back up, keeps its backups."""
    import vecbackup

    a, b = lite.new_name("pa"), lite.new_name("pb")
    for name in (a, b):
        build_vector_only(lite.client, name, "FLOAT_VECTOR", n=50)
    store = f"file://{store_dir}"
    vecbackup.backup(lite.url, store, [a, b]).raise_for_failures()
    first_a = vecbackup.show(store, "latest", a).backup_id
    run = vecbackup.backup(lite.url, store, [a, "no_such_collection"])
    assert [f.collection for f in run.failures] == ["no_such_collection"]
    heard: list[vecbackup.CollectionPruned] = []
    pruned = vecbackup.prune_backed_up(store, run, vecbackup.Policy(keep_last=1), gc_min_age=0, on_pruned=heard.append)
    assert heard == pruned and [p.collection for p in pruned] == [a]
    assert pruned[0].to_dict() == {"collection": a, "kept": [run.results[0].backup_id], "removed": [first_a],
                                   "bytes_freed": 0}  # the second backup reused every object of the first
    assert sorted((m.collection.name, m.backup_id) for m in vecbackup.list_backups(store).backups) == sorted(
        [(a, run.results[0].backup_id), (b, vecbackup.show(store, "latest", b).backup_id)])
