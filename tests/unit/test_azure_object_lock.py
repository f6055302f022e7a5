"""Object lock on Azure (stores/azure.py): version-level immutability policies, set on write, read back, extended.

Azurite (3.35, the emulator the other Azure tests run against) implements neither blob versioning nor immutability
policies (Azure/Azurite#2648), so these tests check what vecbackup sends (tests/azure_recorder.py): the SDK's own
request pipeline runs as it does against Azure, and only the transport at its end is replaced by one that records each
request and answers it with the status and headers Azure's REST reference gives for that operation (Put Blob, Put
Block List, Get Blob Properties, Set Blob Immutability Policy, Get Container Properties). What the
service does with them (enforcement, versions) is not tested here: docs/STORES.md says so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from azure.core.pipeline.transport import HttpRequest

from tests.azure_recorder import azure_store, comp
from vecbackup.errors import Unsupported
from vecbackup.format.crypto import ObjectLock
from vecbackup.stores.base import Retention
from vecbackup.stores.objectlock import extended_until, retain_all

HTTP_DATE = "%a, %d %b %Y %H:%M:%S GMT"
SLACK = timedelta(seconds=2)  # the header holds whole seconds


def azure_answers(policies: dict[str, tuple[str, datetime]] | None = None, *, vlw: bool = True
                  ) -> Callable[[HttpRequest], tuple[int, dict[str, str]]]:
    """Azure's answers: 201 to a Put Blob / Put Block / Put Block List, 200 to a Set Blob Immutability Policy, Get
    Blob Properties with the blob's policy from ``policies`` (blob name -> (mode, until)), Get Container Properties
    with version-level immutability support or not."""
    policies = {} if policies is None else policies

    def answer(request: HttpRequest) -> tuple[int, dict[str, str]]:
        h = {"x-ms-request-id": "r", "x-ms-version": "2025-01-05", "Date": "Mon, 07 Dec 2026 10:00:00 GMT",
             "ETag": '"0x8D"', "Last-Modified": "Mon, 07 Dec 2026 10:00:00 GMT"}
        path = urlsplit(request.url).path
        if request.method == "GET" and "restype=container" in request.url:
            if vlw:
                h["x-ms-immutable-storage-with-versioning-enabled"] = "true"
            return 200, h
        if request.method == "HEAD":
            name = path.split("/", 2)[2]
            h.update({"Content-Length": "5", "x-ms-blob-type": "BlockBlob"})
            if name in policies:
                mode, until = policies[name]
                h.update({"x-ms-immutability-policy-mode": mode,
                          "x-ms-immutability-policy-until-date": until.strftime(HTTP_DATE)})
            return 200, h
        if request.method == "PUT" and comp(request) == "immutabilityPolicies":
            return 200, h
        if request.method == "PUT":
            return 201, h
        return 400, h

    return answer


def policy_of(request: HttpRequest) -> tuple[str | None, datetime | None]:
    mode = request.headers.get("x-ms-immutability-policy-mode")
    until = request.headers.get("x-ms-immutability-policy-until-date")
    return mode, None if until is None else datetime.strptime(until, HTTP_DATE).replace(tzinfo=UTC)


@pytest.mark.parametrize(("mode", "sent"), [("compliance", "Locked"), ("governance", "Unlocked")])
def test_every_blob_a_store_keeps_is_written_with_its_policy(mode: str, sent: str) -> None:
    store, t = azure_store(azure_answers())
    store.put("data/ab/before.vbc", b"x")
    assert policy_of(t.sent[-1]) == (None, None)  # no lock chosen: no policy
    store.lock_objects(ObjectLock(mode, 35))
    t0 = datetime.now(UTC)
    store.put("data/ab/abc.vbc", b"chunk")
    store.put("manifests/c/b.json", b"{}", if_absent=True)
    t1 = datetime.now(UTC)
    for request in t.sent[-2:]:
        assert request.method == "PUT" and request.headers.get("x-ms-blob-type") == "BlockBlob"
        got_mode, until = policy_of(request)
        assert got_mode == sent and until is not None
        assert t0 + timedelta(days=35) - SLACK <= until <= t1 + timedelta(days=35) + SLACK
    assert urlsplit(t.sent[-2].url).path == "/backups/p/data/ab/abc.vbc"
    store.put("locks/backup-1.json", b"{}")  # a store lock is removed by its holder: never locked
    assert policy_of(t.sent[-1]) == (None, None)


def test_a_blob_uploaded_in_blocks_carries_the_policy_on_its_commit() -> None:
    """Above max_single_put_size a blob goes up as blocks committed by Put Block List: the commit creates the blob
    version, so it carries the policy (the blocks do not need it)."""
    store, t = azure_store(azure_answers(), max_single_put_size=1024, max_block_size=1024)
    store.lock_objects(ObjectLock("compliance", 7))
    store.put("data/cd/big.vbc", bytes(5000))
    blocks = [r for r in t.sent if comp(r) == "block"]
    [commit] = [r for r in t.sent if comp(r) == "blocklist"]
    assert len(blocks) == 5
    assert policy_of(commit)[0] == "Locked" and policy_of(commit)[1] is not None


def test_a_blobs_policy_is_read_back_as_its_retention() -> None:
    until = datetime(2027, 1, 9, 10, tzinfo=UTC)
    store, t = azure_store(azure_answers({"p/data/a.vbc": ("locked", until), "p/data/b.vbc": ("unlocked", until),
                                          "p/data/c.vbc": ("mutable", until)}))
    assert store.retention("data/a.vbc") == Retention("compliance", until)
    assert store.retention("data/b.vbc") == Retention("governance", until)
    assert store.retention("data/c.vbc") is None  # a policy made mutable (deleted) holds nothing
    assert store.retention("data/d.vbc") is None  # none
    assert all(r.method == "HEAD" for r in t.sent)


def test_a_retention_is_extended_with_set_blob_immutability_policy() -> None:
    store, t = azure_store(azure_answers())
    until = datetime(2027, 2, 1, tzinfo=UTC)
    store.retain("data/a.vbc", Retention("governance", until))
    [request] = t.sent
    assert request.method == "PUT" and comp(request) == "immutabilityPolicies"
    assert urlsplit(request.url).path == "/backups/p/data/a.vbc"
    assert policy_of(request) == ("Unlocked", until)


def test_a_backup_extends_on_azure_what_ends_before_its_own_end() -> None:
    """stores/objectlock.retain_all through the Azure store: a HEAD per object, and a Set Blob Immutability Policy
    for each one whose policy ends sooner (or that has none), to the next UTC midnight after the backup's end, in
    compliance mode where the blob has it; never one that ends later."""
    now = datetime.now(UTC)
    end = now + timedelta(days=35)
    policies = {"p/data/old.vbc": ("unlocked", now + timedelta(days=2)),
                "p/data/kept.vbc": ("locked", end + timedelta(days=3)),
                "p/digests/old.vbd": ("locked", now + timedelta(days=1))}
    store, t = azure_store(azure_answers(policies))
    store.lock_objects(ObjectLock("governance", 35))
    done = retain_all(store, ["data/old.vbc", "data/kept.vbc", "digests/old.vbd", "data/none.vbc"], end)
    assert (done.checked, done.extended, done.until) == (4, 3, extended_until(end))
    sets = {urlsplit(r.url).path: policy_of(r) for r in t.sent if comp(r) == "immutabilityPolicies"}
    assert sets == {"/backups/p/data/old.vbc": ("Unlocked", extended_until(end)),
                    "/backups/p/digests/old.vbd": ("Locked", extended_until(end)),
                    "/backups/p/data/none.vbc": ("Unlocked", extended_until(end))}


def test_a_container_without_version_level_immutability_is_refused_in_one_line() -> None:
    store, _ = azure_store(azure_answers(vlw=True))
    store.check_object_lock()
    store, t = azure_store(azure_answers(vlw=False))
    with pytest.raises(Unsupported) as e:
        store.check_object_lock()
    assert "version-level immutability" in str(e.value) and "\n" not in str(e.value)
    assert [r.method for r in t.sent] == ["GET"]
