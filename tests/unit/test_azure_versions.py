"""``--as-of`` and ``undelete`` on Azure (stores/azure.py, stores/versions.py): blob versions, read and brought back.

Azurite 3.35 implements no blob versioning (it lists every blob without a version id: the integration test
test_azure_store.py checks that vecbackup refuses it in one line), so these tests run the Azure SDK's own request
pipeline against a recorder (tests/azure_recorder.py) answering as a container with versioning does, per Azure's
REST reference: every write a new version (``x-ms-version-id``, the time it was written), a delete leaving the
blob's versions and no current one, List Blobs with ``include=versions`` giving each version with ``VersionId`` and
``IsCurrentVersion``, Get Blob of ``?versionid=``, and Copy Blob from a version's URL writing a new current version.
What Azure itself does beyond that (its consistency, its authorization of the copy's source) is not tested here:
docs/STORES.md says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest
from azure.core.pipeline.transport import HttpRequest

from tests.azure_recorder import Answer, azure_store, query
from vecbackup.errors import CorruptData, Unsupported, VecbackupError
from vecbackup.format.crypto import ObjectLock
from vecbackup.ops.undelete import undelete
from vecbackup.stores.azure import _version_time
from vecbackup.stores.base import ObjectNotFound
from vecbackup.stores.versions import UNKNOWN_TIME, ObjectVersion, as_of

HTTP_DATE = "%a, %d %b %Y %H:%M:%S GMT"
T0 = datetime(2026, 12, 7, 9, 0, 0, tzinfo=UTC)


def version_id(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


@dataclass
class Version:
    vid: str
    data: bytes
    written: datetime


@dataclass
class Container:
    """A container of an account with blob versioning, as Azure's REST reference describes one: ``blobs`` maps a
    blob's name to its versions (oldest first) and which of them is current (None once it is deleted)."""

    now: datetime = T0
    versions: dict[str, list[Version]] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)
    copy_status: list[str] = field(default_factory=lambda: ["success"])  # what each Copy Blob answers, in turn
    polled: list[str] = field(default_factory=list)  # what Get Blob Properties says of a copy, in turn

    def tick(self, seconds: float = 60) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def write(self, name: str, data: bytes) -> str:
        vid = version_id(self.tick(1))
        self.versions.setdefault(name, []).append(Version(vid, data, self.now))
        self.current[name] = vid
        return vid

    def answer(self, request: HttpRequest) -> Answer:
        h = {"x-ms-request-id": "r", "x-ms-version": "2025-01-05", "Date": self.now.strftime(HTTP_DATE),
             "ETag": '"0x8D"', "Last-Modified": self.now.strftime(HTTP_DATE)}
        path = unquote(urlsplit(request.url).path)
        name = path.split("/", 2)[2] if path.count("/") >= 2 else ""
        if request.method == "GET" and query(request, "comp") == "list":
            return 200, {**h, "Content-Type": "application/xml"}, self._listing(request)
        vid = query(request, "versionid") or self.current.get(name)
        found = next((v for v in self.versions.get(name, []) if v.vid == vid), None)
        if request.method == "PUT" and "x-ms-copy-source" in request.headers:
            source = urlsplit(request.headers["x-ms-copy-source"])
            of = parse_qs(source.query)["versionid"][0]
            src = next(v for v in self.versions[unquote(source.path).split("/", 2)[2]] if v.vid == of)
            status = self.copy_status.pop(0) if len(self.copy_status) > 1 else self.copy_status[0]
            new = self.write(name, src.data)
            return 202, {**h, "x-ms-copy-id": "c1", "x-ms-copy-status": status, "x-ms-version-id": new}
        if request.method == "PUT":
            return 201, {**h, "x-ms-version-id": self.write(name, request.body or b"")}
        if request.method == "DELETE":
            if name not in self.current or self.current[name] is None:
                return 404, {**h, "x-ms-error-code": "BlobNotFound"}
            self.current[name] = None  # its versions stay
            return 202, h
        if found is None:
            return 404, {**h, "x-ms-error-code": "BlobNotFound"}
        base = {**h, "x-ms-blob-type": "BlockBlob", "Last-Modified": found.written.strftime(HTTP_DATE),
                "x-ms-version-id": found.vid}
        if request.method == "HEAD":
            props = {**base, "Content-Length": str(len(found.data))}
            if self.polled:
                props.update({"x-ms-copy-id": "c1", "x-ms-copy-status": self.polled.pop(0)})
            return 200, props
        first, _, last = request.headers.get("x-ms-range", "bytes=0-").removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last or len(found.data) - 1), len(found.data) - 1)
        if start >= len(found.data):
            return 416, {**h, "x-ms-error-code": "InvalidRange"}
        body = found.data[start:end + 1]
        return 206, {**base, "Content-Length": str(len(body)),
                     "Content-Range": f"bytes {start}-{end}/{len(found.data)}"}, body

    def _listing(self, request: HttpRequest) -> bytes:
        prefix = query(request, "prefix")
        versions = "versions" in query(request, "include").split(",")
        items = []
        for name in sorted(n for n in self.versions if n.startswith(prefix)):
            for v in self.versions[name]:
                current = self.current[name] == v.vid
                if not versions and not current:
                    continue
                vid = f"<VersionId>{v.vid}</VersionId><IsCurrentVersion>{str(current).lower()}</IsCurrentVersion>" \
                    if versions else ""
                items.append(f"<Blob><Name>{escape(name)}</Name>{vid}<Properties>"
                             f"<Last-Modified>{v.written.strftime(HTTP_DATE)}</Last-Modified><Etag>0x8D</Etag>"
                             f"<Content-Length>{len(v.data)}</Content-Length><BlobType>BlockBlob</BlobType>"
                             "</Properties><Metadata /></Blob>")
        return ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint='
                '"https://acct.blob.core.windows.net/" ContainerName="backups">'
                f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(items)}</Blobs><NextMarker /></EnumerationResults>"
                ).encode()


def at_time(t: datetime) -> datetime:
    return t.replace(microsecond=0) + timedelta(seconds=1)


def test_a_version_id_is_the_time_it_was_written() -> None:
    assert _version_time("2026-12-07T09:00:01.1234567Z") == pytest.approx(T0.timestamp() + 1.1234567)
    assert _version_time("2026-12-07T09:00:01Z") == T0.timestamp() + 1
    for bad in ("2026-12-07T09:00:01.12x4Z", "2026-12-07T09:00:01", "yesterday", ""):
        with pytest.raises(ValueError):
            _version_time(bad)


def test_versions_are_listed_newest_first_with_a_marker_over_a_deleted_blob() -> None:
    c = Container()
    store, t = azure_store(c.answer)
    store.put("data/aa/a.vbc", b"a1")
    store.put("data/aa/a.vbc", b"a2")
    a2 = c.current["p/data/aa/a.vbc"]
    store.put("manifests/c/b.json", b"b1")
    b1 = c.current["p/manifests/c/b.json"]
    store.delete("manifests/c/b.json")
    listed = list(store.versions(""))
    assert query(t.sent[-1], "include").split(",") == ["metadata", "versions"]
    assert [(v.key, v.version_id == a2, v.deleted, v.latest) for v in listed[:2]] == [
        ("data/aa/a.vbc", True, False, True), ("data/aa/a.vbc", False, False, False)]
    assert listed[0].mtime > listed[1].mtime
    # the deleted blob: its version, under a delete marker of unknown time (Azure records none)
    assert listed[2] == ObjectVersion("manifests/c/b.json", "", 0, UNKNOWN_TIME, deleted=True, latest=True)
    assert listed[3].version_id == b1 and not listed[3].latest and listed[3].size == 2
    assert [v.key for v in store.list("")] == ["data/aa/a.vbc"]  # the deleted one is not listed now


def test_the_store_as_of_a_time_reads_each_blob_at_its_version_deleted_since_or_not() -> None:
    c = Container()
    store, t = azure_store(c.answer)
    store.put("data/aa/a.vbc", b"old")
    store.put("manifests/c/b.json", b"manifest")
    then = at_time(c.tick())
    c.tick()
    store.put("data/aa/a.vbc", b"new")  # rewritten since
    store.delete("manifests/c/b.json")  # deleted since
    store.put("manifests/c/later.json", b"later")  # written since
    past = as_of(store, then)
    assert [(o.key, o.size) for o in past.list("")] == [("data/aa/a.vbc", 3), ("manifests/c/b.json", 8)]
    assert past.get("data/aa/a.vbc") == b"old"
    assert past.get("manifests/c/b.json") == b"manifest"
    assert past.get("manifests/c/b.json", offset=3, length=2) == b"if"
    assert query(t.sent[-1], "versionid") == c.versions["p/manifests/c/b.json"][0].vid
    with pytest.raises(ObjectNotFound):
        past.get("manifests/c/later.json")


def test_undelete_copies_each_version_over_its_blob_data_before_manifests() -> None:
    c = Container()
    store, t = azure_store(c.answer)
    store.put("data/aa/a.vbc", b"chunk")
    store.put("manifests/c/b.json", b"manifest")
    store.put("tombstones/c/0.json", b"there before")
    then = at_time(c.tick())
    c.tick()
    for key in ("data/aa/a.vbc", "manifests/c/b.json"):
        store.delete(key)
    store.put("tombstones/c/1.json", b"deleted since")
    store.lock_objects(ObjectLock("compliance", 35))
    sent = len(t.sent)
    result = undelete(store, then)
    assert sorted(result.restored) == ["data/aa/a.vbc", "manifests/c/b.json"]
    assert result.tombstones_deleted == ["tombstones/c/1.json"]
    copies = [r for r in t.sent[sent:] if "x-ms-copy-source" in r.headers]
    assert [urlsplit(r.url).path for r in copies] == ["/backups/p/data/aa/a.vbc", "/backups/p/manifests/c/b.json"]
    for r, name in zip(copies, ("p/data/aa/a.vbc", "p/manifests/c/b.json"), strict=True):
        source = urlsplit(r.headers["x-ms-copy-source"])
        assert source.path == f"/backups/{name}"
        assert parse_qs(source.query)["versionid"] == [c.versions[name][0].vid]
        assert r.headers.get("x-ms-immutability-policy-mode") == "Locked"  # a new version: locked again
    assert [o.key for o in store.list("")] == ["data/aa/a.vbc", "manifests/c/b.json", "tombstones/c/0.json"]
    assert store.get("manifests/c/b.json") == b"manifest"
    again = undelete(store, then)  # nothing left to bring back: the copies are versions written since the time
    assert again.restored == [] and again.overwritten == ["data/aa/a.vbc", "manifests/c/b.json"]


def test_undelete_waits_for_a_pending_copy_and_fails_in_one_line_on_a_failed_one(monkeypatch) -> None:
    monkeypatch.setattr("vecbackup.stores.azure.time.sleep", lambda s: None)
    c = Container(copy_status=["pending", "pending"], polled=["pending", "success"])
    store, t = azure_store(c.answer)
    store.put("data/aa/a.vbc", b"chunk")
    then = at_time(c.tick())
    store.delete("data/aa/a.vbc")
    assert undelete(store, then).restored == ["data/aa/a.vbc"]
    assert [r.method for r in t.sent[-2:]] == ["HEAD", "HEAD"]  # polled until done
    store.delete("data/aa/a.vbc")
    c.polled = ["failed"]
    with pytest.raises(VecbackupError) as e:
        undelete(store, then)
    assert "is failed" in str(e.value) and "\n" not in str(e.value)


def test_a_container_without_version_ids_is_refused_in_one_line() -> None:
    """Blob versioning is a setting of the account that the blob service does not report: blobs listed without
    version ids were written with it off."""

    def unversioned(request: HttpRequest) -> Answer:
        body = ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="https://acct.blob.core.'
                'windows.net/" ContainerName="backups"><Blobs><Blob><Name>p/data/aa/a.vbc</Name><Properties>'
                "<Last-Modified>Mon, 07 Dec 2026 09:00:00 GMT</Last-Modified><Content-Length>1</Content-Length>"
                "<BlobType>BlockBlob</BlobType></Properties></Blob></Blobs><NextMarker /></EnumerationResults>")
        return 200, {"Content-Type": "application/xml", "x-ms-request-id": "r"}, body.encode()

    store, _ = azure_store(unversioned)
    assert store.versioning() == ""
    with pytest.raises(Unsupported) as e:
        as_of(store, T0)
    assert "versioning is off" in str(e.value) and "\n" not in str(e.value)
    store, _ = azure_store(Container().answer)
    assert store.versioning() == "Enabled"  # nothing there yet: nothing to lose


def test_a_listed_version_without_a_time_is_corrupt_data() -> None:
    c = Container()
    store, _ = azure_store(c.answer)
    store.put("data/aa/a.vbc", b"x")
    c.versions["p/data/aa/a.vbc"][0].vid = "not-a-time"
    c.current["p/data/aa/a.vbc"] = "not-a-time"
    with pytest.raises(CorruptData) as e:
        list(store.versions(""))
    assert "without its time" in str(e.value) and "\n" not in str(e.value)


def test_a_sas_credential_goes_with_the_copy_source_and_never_into_a_message() -> None:
    """A SAS given as the credential (AZURE_STORAGE_SAS_TOKEN) signs each request in its query; the copy's source
    URL is read by Azure itself, so it carries the SAS too. A refused copy's error names the key, not the URL."""
    from azure.core.credentials import AzureSasCredential
    from azure.storage.blob import ContainerClient

    from tests.azure_recorder import Recorder
    from vecbackup.stores.azure import AzureStore

    sas = "sv=2025-01-05&ss=b&srt=o&sp=rwdlx&sig=SECRETSIG"
    c = Container()
    transport = Recorder(c.answer)
    client = ContainerClient("https://acct.blob.core.windows.net", "backups", transport=transport, retry_total=0,
                             credential=AzureSasCredential(sas))
    store = AzureStore("backups", "p/", client=client, credential=AzureSasCredential(sas))
    store.put("data/aa/a.vbc", b"chunk")
    then = at_time(c.tick())
    store.delete("data/aa/a.vbc")
    undelete(store, then)
    [copy] = [r for r in transport.sent if "x-ms-copy-source" in r.headers]
    source = parse_qs(urlsplit(copy.headers["x-ms-copy-source"]).query)
    assert source["sig"] == ["SECRETSIG"] and source["versionid"] == [c.versions["p/data/aa/a.vbc"][0].vid]
    store.delete("data/aa/a.vbc")
    c.copy_status = ["failed"]
    with pytest.raises(VecbackupError) as e:
        undelete(store, then)
    assert "SECRETSIG" not in str(e.value) and "SECRETSIG" not in str(e.value.hint or "")
