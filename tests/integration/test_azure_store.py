"""AzureStore against a real Azure Blob endpoint (Azurite, started by the test module). No mocks."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.azurite import Azurite
from tests.datasets import build_vector_only, read_rows
from vecbackup.errors import NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.stores import open_store
from vecbackup.stores.azure import AzureStore
from vecbackup.stores.base import ObjectExists, ObjectNotFound, PermissionDenied, TransientError
from vecbackup.stores.retry import RetryingStore
from vecbackup.urls import parse_store_url

MiB = 1024 * 1024
ENV_VARS = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_BLOB_ENDPOINT",
            "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN")
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc9PQ=="


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.stop()


@pytest.fixture
def container(azurite: Azurite) -> str:
    name = f"t{uuid.uuid4().hex[:16]}"
    azurite.create_container(name)
    return name


@pytest.fixture
def store(azurite: Azurite, container: str) -> AzureStore:
    return AzureStore(container, "backups/", connection_string=azurite.connection_string)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite of its own, for tests that stop the server."""
    server = Azurite(tmp_path / "own-azurite").start()
    yield server
    server.stop()


def assert_clean(e: BaseException, azurite: Azurite) -> None:
    """One line, and none of the secrets (key, connection string, SAS signature) in it."""
    text = str(e)
    assert "\n" not in text, text
    assert azurite.account_key not in text and azurite.connection_string not in text, text
    assert WRONG_KEY not in text and "sig=" not in text and "AccountKey" not in text, text


def raw(azurite: Azurite, container: str) -> Any:
    return azurite.service_client().get_container_client(container)


# -- the protocol ---------------------------------------------------------------------------------------------


def test_put_get_and_empty_object(store: AzureStore, azurite: Azurite, container: str) -> None:
    store.put("data/ab/abc.vbc", b"hello azure")
    assert store.get("data/ab/abc.vbc") == b"hello azure"
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.stat("empty").size == 0
    store.put("data/ab/abc.vbc", b"replaced")  # a plain put overwrites
    assert store.get("data/ab/abc.vbc") == b"replaced"
    # keys are relative to the prefix; %XX (escaped collection names) survive as they are
    store.put("manifests/a%2Eb%20c/20260101T000000.000000Z-0123abcd.json", b"{}")
    names = [b.name for b in raw(azurite, container).list_blobs()]
    assert "backups/manifests/a%2Eb%20c/20260101T000000.000000Z-0123abcd.json" in names
    assert "backups/data/ab/abc.vbc" in names
    with pytest.raises(ObjectNotFound) as e:
        store.get("data/ab/missing.vbc")
    assert "data/ab/missing.vbc" in str(e.value) and store.display in str(e.value)
    for bad in ("", "/abs", "a/../b"):
        with pytest.raises(ValueError):
            store.put(bad, b"x")


def test_ranges(store: AzureStore) -> None:
    data = bytes(range(200))
    store.put("r", data)
    assert store.get("r", offset=150) == data[150:]
    assert store.get("r", offset=10, length=20) == data[10:30]
    assert store.get("r", offset=190, length=50) == data[190:]  # a length past the end is cut
    assert store.get("r", offset=0, length=5) == data[:5]
    assert store.get("r", offset=200) == b""  # at the end
    assert store.get("r", offset=500) == b""  # past the end
    assert store.get("r", offset=500, length=3) == b""
    assert store.get("r", offset=3, length=0) == b""
    store.put("e", b"")
    assert store.get("e", offset=0, length=5) == b""
    assert store.get("e", offset=7) == b""
    with pytest.raises(ObjectNotFound):
        store.get("missing", offset=5, length=5)
    with pytest.raises(ObjectNotFound):
        store.get("missing", length=0)


def test_stat(store: AzureStore) -> None:
    before = time.time()
    store.put("s/one", b"x" * 1234)
    info = store.stat("s/one")
    assert info.key == "s/one" and info.size == 1234
    assert before - 5 <= info.mtime <= time.time() + 5
    with pytest.raises(ObjectNotFound):
        store.stat("s/two")


def test_list_pages_prefixes_and_order(azurite: Azurite, container: str) -> None:
    requests: list[str] = []
    client = azurite.service_client(
        raw_response_hook=lambda r: requests.append(r.http_request.url)).get_container_client(container)
    store = AzureStore(container, "backups/", client=client, page_size=7)
    keys = [f"data/{i % 3:02d}/{i:04d}.vbc" for i in range(25)]
    for k in reversed(keys):
        store.put(k, k.encode())
    store.put("manifests/c1/b1.json", b"m")
    store.put("manifests/c1-x/b.json", b"m")  # '-' sorts before '/'
    store.put("manifests/c1/nested/deeper/b2.json", b"m")
    other = raw(azurite, container)
    other.upload_blob("outside/data/00/x.vbc", b"no")  # not under the store prefix
    other.upload_blob("backupsX/data/00/y.vbc", b"no")  # shares the prefix's text but not its folder
    other.upload_blob("backups", b"no")

    requests.clear()
    listed = list(store.list("data/"))
    assert [o.key for o in listed] == sorted(keys)
    assert all(o.size == len(o.key) for o in listed)
    assert sum("comp=list" in u for u in requests) == 4  # 25 keys in pages of 7

    everything = [o.key for o in store.list()]
    assert everything == sorted([*keys, "manifests/c1/b1.json", "manifests/c1-x/b.json",
                                 "manifests/c1/nested/deeper/b2.json"])
    assert [o.key for o in store.list("manifests/c1/")] == ["manifests/c1/b1.json",
                                                             "manifests/c1/nested/deeper/b2.json"]
    assert [o.key for o in store.list("data/01/")] == sorted(k for k in keys if k.startswith("data/01/"))
    assert list(store.list("nothing/")) == []
    # a store at the container root sees everything
    root = AzureStore(container, connection_string=azurite.connection_string)
    assert {o.key for o in root.list()} >= {"outside/data/00/x.vbc", "backupsX/data/00/y.vbc", "backups"}


def test_delete_is_idempotent(store: AzureStore) -> None:
    store.put("d/x", b"1")
    store.delete("d/x")
    with pytest.raises(ObjectNotFound):
        store.get("d/x")
    store.delete("d/x")
    store.delete("d/never-there")
    assert list(store.list("d/")) == []


def test_if_absent_keeps_the_original(store: AzureStore) -> None:
    store.put("manifests/c/b.json", b"first", if_absent=True)
    with pytest.raises(ObjectExists) as e:
        store.put("manifests/c/b.json", b"second", if_absent=True)
    assert "manifests/c/b.json" in str(e.value)
    assert store.get("manifests/c/b.json") == b"first"


def test_if_absent_race_has_one_winner(store: AzureStore) -> None:
    barrier = threading.Barrier(8)
    results: dict[int, str] = {}

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("manifests/race/b.json", f"writer {i}".encode(), if_absent=True)
            results[i] = "won"
        except ObjectExists:
            results[i] = "exists"
        except Exception as e:  # pragma: no cover - reported by the assertion below
            results[i] = repr(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in results.items() if r == "won"]
    assert len(winners) == 1 and sorted(results.values()) == ["exists"] * 7 + ["won"], results
    assert store.get("manifests/race/b.json") == f"writer {winners[0]}".encode()


def test_large_object_goes_up_in_blocks(azurite: Azurite, container: str) -> None:
    store = AzureStore(container, "big/", connection_string=azurite.connection_string,
                       max_single_put_size=1 * MiB, max_block_size=1 * MiB, concurrency=4)
    data = os.urandom(13 * MiB + 12345)
    store.put("data/ff/large.vbc", data, if_absent=True)
    assert store.stat("data/ff/large.vbc").size == len(data)
    assert store.get("data/ff/large.vbc") == data
    assert store.get("data/ff/large.vbc", offset=5 * MiB + 3, length=MiB) == data[5 * MiB + 3 : 6 * MiB + 3]
    blob = raw(azurite, container).get_blob_client("big/data/ff/large.vbc")
    assert blob.get_blob_properties().blob_type == "BlockBlob"
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 14 and not uncommitted
    assert sum(b.size for b in committed) == len(data)
    with pytest.raises(ObjectExists):  # the commit point holds for block uploads too
        store.put("data/ff/large.vbc", os.urandom(2 * MiB), if_absent=True)
    assert store.get("data/ff/large.vbc") == data


# -- errors ---------------------------------------------------------------------------------------------------


def test_wrong_key_is_permission_denied(azurite: Azurite, container: str, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_STORAGE_KEY", WRONG_KEY)
    url = parse_store_url(f"azure://{container}/b?account={azurite.account_name}"
                          f"&endpoint={quote(azurite.blob_endpoint, safe='')}")
    store = AzureStore.from_url(url)
    calls = [lambda: store.get("k"), lambda: store.stat("k"), lambda: list(store.list()),
             lambda: store.put("k", b"x"), lambda: store.put("k", b"x", if_absent=True), lambda: store.delete("k")]
    for call in calls:
        with pytest.raises(PermissionDenied) as e:
            call()
        assert_clean(e.value, azurite)
        assert "AZURE_STORAGE_KEY" in str(e.value) and f"azure://{container}/b/" in str(e.value)
    retrying = RetryingStore(store, sleep=lambda s: None)
    with pytest.raises(PermissionDenied):
        retrying.get("k")
    assert retrying.retries == 0  # never retried
    # a shared key that is not even base64 fails the same way, before any request
    clean_env.setenv("AZURE_STORAGE_KEY", "not base64!")
    with pytest.raises(PermissionDenied) as e:
        AzureStore.from_url(url).get("k")
    assert "not base64" not in str(e.value)


def test_missing_container_is_not_found(azurite: Azurite) -> None:
    store = AzureStore("no-such-container", "p/", connection_string=azurite.connection_string)
    calls = [lambda: store.get("k"), lambda: store.get("k", offset=3), lambda: store.stat("k"),
             lambda: list(store.list()), lambda: store.put("k", b"x"), lambda: store.put("k", b"x", if_absent=True),
             lambda: store.delete("k")]
    for call in calls:
        with pytest.raises(NotFound) as e:
            call()
        assert type(e.value) is NotFound  # not ObjectNotFound: the container, not an object, is missing
        assert str(e.value) == ("container 'no-such-container' does not exist in devstoreaccount1 "
                                "(create it or check the name)")
        assert_clean(e.value, azurite)


def test_stopped_server_is_transient(own_azurite: Azurite) -> None:
    own_azurite.create_container("stopped")
    store = AzureStore("stopped", connection_string=own_azurite.connection_string, timeout=5)
    store.put("k", b"v")
    own_azurite.stop()
    for call in (lambda: store.get("k"), lambda: store.stat("k"), lambda: list(store.list()),
                 lambda: store.put("k", b"x"), lambda: store.delete("k")):
        with pytest.raises(TransientError) as e:
            call()
        assert own_azurite.blob_endpoint in str(e.value) and "connection refused" in str(e.value)
        assert_clean(e.value, own_azurite)


def test_silent_server_times_out_as_transient() -> None:
    """A server that accepts connections and never answers: the read timeout ends the wait."""
    from azure.core.credentials import AzureNamedKeyCredential

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/acct"
        store = AzureStore("c", account_url=endpoint, credential=AzureNamedKeyCredential("acct", "QUFB"), timeout=1)
        started = time.monotonic()
        with pytest.raises(TransientError) as e:
            store.get("k")
        assert time.monotonic() - started < 10
        assert str(e.value) == f"cannot reach {endpoint} while reading k in azure://c/: timed out"


def test_retrying_store_rides_out_a_restart(own_azurite: Azurite) -> None:
    own_azurite.create_container("restart")
    store = RetryingStore(AzureStore("restart", "p/", connection_string=own_azurite.connection_string, timeout=5),
                          attempts=20, max_seconds=40, base_delay=0.2, max_delay=1.0, rand=lambda: 1.0)
    store.put("data/aa/x.vbc", b"survives")
    own_azurite.stop()
    restarter = threading.Timer(2.0, own_azurite.start)
    restarter.start()
    started = time.monotonic()
    try:
        assert store.get("data/aa/x.vbc") == b"survives"
    finally:
        restarter.join()
    assert store.retries >= 2 and time.monotonic() - started >= 2.0
    store.put("data/aa/y.vbc", b"after", if_absent=True)
    assert [o.key for o in store.list("data/")] == ["data/aa/x.vbc", "data/aa/y.vbc"]


# -- configuration ---------------------------------------------------------------------------------------------


def test_from_url_with_connection_string(azurite: Azurite, container: str, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    store = open_store(f"azure://{container}/team/backups?concurrency=2")
    assert isinstance(store, RetryingStore) and isinstance(store.inner, AzureStore)
    assert store.display == f"azure://{container}/team/backups/"
    assert store.inner.prefix == "team/backups/" and store.inner.concurrency == 2
    store.put("manifests/c/x.json", b"{}", if_absent=True)
    assert [o.key for o in store.list()] == ["manifests/c/x.json"]
    assert raw(azurite, container).get_blob_client("team/backups/manifests/c/x.json").exists()
    with pytest.raises(UsageError) as e:  # the URL and the connection string disagree on the account
        open_store(f"azure://{container}/x?account=someoneelse")
    assert_clean(e.value, azurite)


def test_from_url_with_account_key_and_endpoint(azurite: Azurite, container: str,
                                                clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_STORAGE_KEY", azurite.account_key)
    endpoint = quote(azurite.blob_endpoint, safe="")
    store = open_store(f"azure://{container}/k?account={azurite.account_name}&endpoint={endpoint}")
    store.put("a", b"shared key")
    assert store.get("a") == b"shared key"
    # the same from the environment alone
    clean_env.setenv("AZURE_STORAGE_ACCOUNT", azurite.account_name)
    clean_env.setenv("AZURE_STORAGE_BLOB_ENDPOINT", azurite.blob_endpoint)
    assert open_store(f"azure://{container}/k").get("a") == b"shared key"


def test_from_url_with_sas_token(azurite: Azurite, container: str, clean_env: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(azurite.account_name, container, account_key=azurite.account_key,
                                 permission=ContainerSasPermissions(read=True, add=True, create=True, write=True,
                                                                    delete=True, list=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    clean_env.setenv("AZURE_STORAGE_ACCOUNT", azurite.account_name)
    clean_env.setenv("AZURE_STORAGE_BLOB_ENDPOINT", azurite.blob_endpoint)
    clean_env.setenv("AZURE_STORAGE_SAS_TOKEN", "?" + sas)
    store = open_store(f"azure://{container}/sas")
    store.put("a", b"via sas", if_absent=True)
    assert store.get("a") == b"via sas" and [o.key for o in store.list()] == ["a"]
    # a read-only SAS cannot write: denied, never retried, and the signature stays out of the message
    ro = generate_container_sas(azurite.account_name, container, account_key=azurite.account_key,
                                permission=ContainerSasPermissions(read=True, list=True),
                                expiry=datetime.now(UTC) + timedelta(hours=1))
    clean_env.setenv("AZURE_STORAGE_SAS_TOKEN", ro)
    store = open_store(f"azure://{container}/sas")
    assert store.get("a") == b"via sas"
    with pytest.raises(PermissionDenied) as e:
        store.put("b", b"x")
    assert "AZURE_STORAGE_SAS_TOKEN" in str(e.value) and ro not in str(e.value)
    assert_clean(e.value, azurite)


def test_from_url_without_credentials(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError) as e:
        open_store("azure://c/p")
    assert "AZURE_STORAGE_CONNECTION_STRING" in str(e.value) and "AZURE_STORAGE_ACCOUNT" in str(e.value)
    # an account but no key or SAS: DefaultAzureCredential, which only sends tokens over https
    with pytest.raises(UsageError) as e:
        open_store("azure://c/p?account=acct&endpoint=http%3A%2F%2F127.0.0.1%3A1%2Facct")
    assert "https" in str(e.value)
    # and without azure-identity installed, the error names the extra
    clean_env.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(UsageError) as e:
        open_store("azure://c/p?account=acct")
    assert "vecbackup[azure-identity]" in str(e.value) and "AZURE_STORAGE_KEY" in str(e.value)


def test_bad_connection_string_is_a_usage_error(clean_env: pytest.MonkeyPatch) -> None:
    secretish = "AccountName=x;Garbage;AccountKey=c2VjcmV0"
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", secretish)
    with pytest.raises(UsageError) as e:
        open_store("azure://c/p")
    assert "c2VjcmV0" not in str(e.value) and "AZURE_STORAGE_CONNECTION_STRING" in str(e.value)


def test_missing_sdk_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.storage.blob", None)
    with pytest.raises(Unsupported) as e:
        AzureStore("c", connection_string="UseDevelopmentStorage=true")
    assert str(e.value) == "Azure support is not installed (pip install 'vecbackup[azure]')"


def test_credential_unavailable_is_permission_denied(store: AzureStore) -> None:
    from azure.identity import CredentialUnavailableError

    err = store._error(CredentialUnavailableError("DefaultAzureCredential failed\nlong\nstory"), "reading", "k")
    assert isinstance(err, PermissionDenied) and "\n" not in str(err) and "AZURE_STORAGE_KEY" in str(err)


def test_tiers(azurite: Azurite, container: str, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    blobs = raw(azurite, container)
    cool = open_store(f"azure://{container}/cool?tier=cool")
    cool.put("a", b"cool data")
    assert blobs.get_blob_client("cool/a").get_blob_properties().blob_tier == "Cool"  # Azurite records tiers
    assert cool.get("a") == b"cool data"
    big = AzureStore(container, "cold/", connection_string=azurite.connection_string, tier="Cold",
                     max_single_put_size=MiB, max_block_size=MiB)
    big.put("b", os.urandom(3 * MiB))  # the tier is set on the block list's commit too
    assert blobs.get_blob_client("cold/b").get_blob_properties().blob_tier == "Cold"
    # Archive: writes and listings work, reads fail until rehydrated (Azurite enforces this as Azure does)
    archive = open_store(f"azure://{container}/archive?tier=Archive")
    archive.put("c", b"frozen")
    assert archive.stat("c").size == 6 and [o.key for o in archive.list()] == ["c"]
    with pytest.raises(VecbackupError) as e:
        archive.get("c")
    assert not isinstance(e.value, ObjectExists | TransientError) and "Archive" in str(e.value)
    with pytest.raises(UsageError):
        open_store(f"azure://{container}/x?tier=Glacier")


# -- the command line end to end -------------------------------------------------------------------------------


def test_cli_backup_list_verify_restore(cli: Any, lite: Any, azurite: Azurite, container: str,
                                        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    name = lite.new_name("az")
    built = build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    store_url = f"azure://{container}/backups"
    outputs = []

    r = cli("backup", lite.url, store_url, "-c", name, "--batch-size", "64", "--json")
    outputs.append(r)
    assert r.code == 0, r.stderr
    backup = r.json()["backups"][0]
    assert backup["rows"] == built.rows and r.json()["store"] == f"azure://{container}/backups/"
    names = [b.name for b in raw(azurite, container).list_blobs()]
    assert any(n.startswith(f"backups/manifests/{name}/") for n in names)
    assert sum(n.startswith("backups/data/") for n in names) >= 5

    r = cli("list", store_url, "--json")
    outputs.append(r)
    assert r.code == 0, r.stderr
    assert backup["backup_id"] in r.stdout

    r = cli("verify", store_url, backup["backup_id"], "--json")
    outputs.append(r)
    assert r.code == 0, r.stderr

    copy = lite.new_name("copy")
    r = cli("restore", store_url, lite.url, "--backup", backup["backup_id"], "--as", copy, "--json")
    outputs.append(r)
    assert r.code == 0, r.stderr
    source, restored = read_rows(lite.client, name), read_rows(lite.client, copy)
    assert len(source) == built.rows and restored == source

    # errors reach the user as one line with the right exit code, and without secrets
    r = cli("list", "azure://no-such-container/backups", "--json")
    outputs.append(r)
    assert r.code == NotFound.exit_code and "no-such-container" in r.stderr
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING",
                     azurite.connection_string.replace(azurite.account_key, WRONG_KEY))
    r = cli("list", store_url, "--json")
    outputs.append(r)
    assert r.code == Unreachable.exit_code and "AZURE_STORAGE_CONNECTION_STRING" in r.stderr

    for out in outputs:
        for secret in (azurite.account_key, WRONG_KEY, azurite.connection_string):
            assert secret not in out.stdout and secret not in out.stderr
