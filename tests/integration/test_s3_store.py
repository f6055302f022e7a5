"""S3Store against a real S3 server (SeaweedFS, started once for the module; a fresh bucket per test).

No mocks: every request goes over HTTP to `weed mini`, which checks signatures, supports multipart
uploads, ranged reads and If-None-Match. Credentials reach the store only through the standard AWS
environment variables, as they would in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import build_vector_only, read_rows
from tests.seaweedfs import SeaweedFS, free_ports
from vecbackup.errors import NotFound, Unsupported, UsageError
from vecbackup.stores import open_store
from vecbackup.stores.base import ObjectExists, ObjectNotFound, PermissionDenied, TransientError
from vecbackup.stores.retry import RetryingStore
from vecbackup.stores.s3 import S3Store
from vecbackup.urls import parse_store_url

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The server's credentials in the environment, and nothing of this machine's AWS setup."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env = seaweed.env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def bucket(seaweed: SeaweedFS) -> str:
    return seaweed.create_bucket(f"t-{uuid.uuid4().hex[:16]}")


def make_store(seaweed: SeaweedFS, bucket: str, prefix: str = "store/", **kw: Any) -> S3Store:
    return S3Store(bucket, prefix, endpoint_url=seaweed.endpoint, path_style=True, **kw)


@pytest.fixture
def store(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str]) -> S3Store:
    return make_store(seaweed, bucket)


def _one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text
    return text


# -- the protocol ------------------------------------------------------------------------------------


def test_put_get_round_trip(store: S3Store, seaweed: SeaweedFS, bucket: str) -> None:
    payload = os.urandom(100_000)
    store.put("data/ab/abc.vbc", payload)
    store.put("empty", b"")
    store.put("one", b"\x00")
    assert store.get("data/ab/abc.vbc") == payload
    assert store.get("empty") == b""
    assert store.get("one") == b"\x00"
    store.put("one", b"\x01\x02")  # a plain put replaces
    assert store.get("one") == b"\x01\x02"
    # the object key is prefix + key
    raw = seaweed.client().get_object(Bucket=bucket, Key="store/data/ab/abc.vbc")["Body"].read()
    assert raw == payload
    with pytest.raises(ObjectNotFound, match="missing"):
        store.get("missing")
    with pytest.raises(ValueError):
        store.get("../escape")


def test_ranged_gets(store: S3Store) -> None:
    data = bytes(range(256)) * 4
    store.put("r", data)
    store.put("empty", b"")
    store.put("one", b"x")
    assert store.get("r", offset=10) == data[10:]
    assert store.get("r", offset=10, length=20) == data[10:30]
    assert store.get("r", offset=0, length=5) == data[:5]
    assert store.get("r", offset=1000, length=100) == data[1000:]  # a length past the end is cut
    assert store.get("r", offset=1023) == data[1023:]
    assert store.get("r", offset=1024) == b""  # at the end
    assert store.get("r", offset=5000, length=3) == b""  # past the end
    assert store.get("r", offset=3, length=0) == b""
    assert store.get("empty", offset=0, length=10) == b""
    assert store.get("one", offset=1) == b""
    assert store.get("one", offset=0, length=1) == b"x"
    with pytest.raises(ObjectNotFound):
        store.get("nope", offset=5, length=5)
    with pytest.raises(ObjectNotFound):
        store.get("nope", length=0)


def test_stat(store: S3Store) -> None:
    store.put("manifests/c/one.json", b"12345")
    store.put("empty", b"")
    info = store.stat("manifests/c/one.json")
    assert info.key == "manifests/c/one.json" and info.size == 5
    assert abs(info.mtime - time.time()) < 300
    assert store.stat("empty").size == 0
    with pytest.raises(ObjectNotFound, match="nope"):
        store.stat("nope")
    with pytest.raises(ObjectNotFound):
        store.stat("manifests/c")  # a "folder" is not an object


def test_list_prefix_pagination_and_scope(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str]) -> None:
    store = make_store(seaweed, bucket, page_size=7)
    keys = [f"manifests/c{i % 3}/{i:03d}.json" for i in range(15)] + [f"data/{i:02x}/{i:064x}.vbc" for i in range(10)]
    for k in keys:
        store.put(k, k.encode())
    raw = seaweed.client()
    for outside in ("other/x", "storeroom/y", "store", "top.json"):  # outside the prefix "store/"
        raw.put_object(Bucket=bucket, Key=outside, Body=b"not ours")

    calls = []
    store.client.meta.events.register("before-parameter-build.s3.ListObjectsV2",
                                      lambda params, **kw: calls.append(dict(params)))
    listed = list(store.list())
    assert [o.key for o in listed] == sorted(keys)
    assert len(calls) == 4  # 25 keys, 7 a page
    assert all(c["MaxKeys"] == 7 for c in calls)
    assert {o.key: o.size for o in listed} == {k: len(k) for k in keys}

    assert [o.key for o in store.list("manifests/")] == sorted(k for k in keys if k.startswith("manifests/"))
    assert [o.key for o in store.list("manifests/c1/")] == sorted(k for k in keys if k.startswith("manifests/c1/"))
    assert [o.key for o in store.list("data/0")] == sorted(k for k in keys if k.startswith("data/0"))
    assert list(store.list("nothing/")) == []

    # a store at the bucket root sees everything
    root = make_store(seaweed, bucket, prefix="")
    assert {o.key for o in root.list()} >= {"other/x", "storeroom/y", "top.json", "store/" + keys[0]}


def test_list_is_in_key_order_where_a_folder_competes_with_its_siblings(store: S3Store) -> None:
    # '-' and '.' sort before '/', so manifests/a-b/... comes before manifests/a/... (SeaweedFS lists
    # a folder's contents first; the store restores key order)
    keys = ["manifests/a/1.json", "manifests/a-b/1.json", "manifests/a.c/1.json", "manifests/a0/1.json",
            "manifests/a/2.json"]
    for k in keys:
        store.put(k, b"x")
    assert [o.key for o in store.list("manifests/")] == sorted(keys)
    assert [o.key for o in store.list("manifests/a")] == sorted(keys)


def test_delete_is_idempotent(store: S3Store) -> None:
    store.put("data/aa/x.vbc", b"x")
    store.delete("data/aa/x.vbc")
    with pytest.raises(ObjectNotFound):
        store.get("data/aa/x.vbc")
    store.delete("data/aa/x.vbc")
    store.delete("never/was/there")
    assert list(store.list()) == []


def test_if_absent_keeps_the_original(store: S3Store) -> None:
    store.put("manifests/c/b.json", b"first", if_absent=True)
    with pytest.raises(ObjectExists, match="already exists"):
        store.put("manifests/c/b.json", b"second", if_absent=True)
    assert store.get("manifests/c/b.json") == b"first"


def test_if_absent_race_has_exactly_one_winner(store: S3Store) -> None:
    # (SeaweedFS serialises racing conditional writes: the losers answer 412 after up to a few seconds)
    n = 8
    barrier = threading.Barrier(n)
    outcome: dict[int, str] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.put("manifests/c/race.json", f"writer {i}".encode(), if_absent=True)
            outcome[i] = "won"
        except ObjectExists:
            outcome[i] = "exists"
        except Exception as e:  # pragma: no cover - reported by the assertion below
            outcome[i] = repr(e)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if o == "won"]
    assert len(winners) == 1, outcome
    assert sorted(outcome.values()) == ["exists"] * (n - 1) + ["won"]
    assert store.get("manifests/c/race.json") == f"writer {winners[0]}".encode()


def test_multipart_upload_round_trips(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str]) -> None:
    store = make_store(seaweed, bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, concurrency=4)
    data = os.urandom(13 * MiB)
    parts = []
    store.client.meta.events.register("before-parameter-build.s3.UploadPart",
                                      lambda params, **kw: parts.append(params["PartNumber"]))
    store.put("data/big/object.vbc", data)
    assert store.get("data/big/object.vbc") == data
    assert store.get("data/big/object.vbc", offset=6 * MiB, length=10) == data[6 * MiB : 6 * MiB + 10]
    assert store.stat("data/big/object.vbc").size == 13 * MiB
    assert len(parts) == 3
    raw = seaweed.client()
    etag = raw.head_object(Bucket=bucket, Key="store/data/big/object.vbc")["ETag"]
    assert "-" in etag, etag  # a multipart object's ETag is "<md5 of md5s>-<parts>"

    # create-if-absent of a large object: refused, original kept, no upload left behind
    with pytest.raises(ObjectExists):
        store.put("data/big/object.vbc", os.urandom(6 * MiB), if_absent=True)
    assert store.get("data/big/object.vbc") == data
    assert not raw.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_multipart_if_absent_race_commits_one(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str]) -> None:
    """Racers that all got past the existence check (made to, here) upload their parts at once; If-None-Match on
    CompleteMultipartUpload decides: one commits, the others get ObjectExists and their uploads are aborted.

    The completes are sent one at a time: SeaweedFS checks the condition and then completes, not atomically, so two
    completes arriving in the same instant can both succeed there (seen once: two winners). AWS S3 decides them
    atomically. What this test holds vecbackup to is sending the condition and reading the refusal."""
    store = make_store(seaweed, bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, concurrency=2)
    store._exists = lambda obj: False  # type: ignore[method-assign]  # every racer past the check
    complete, one_at_a_time = store.client.complete_multipart_upload, threading.Lock()

    def serialised(**kwargs: Any) -> Any:
        assert kwargs.get("IfNoneMatch") == "*"
        with one_at_a_time:
            return complete(**kwargs)

    store.client.complete_multipart_upload = serialised  # type: ignore[method-assign]
    payloads = [bytes([i]) * (6 * MiB) for i in range(3)]
    barrier = threading.Barrier(len(payloads))
    outcome: dict[int, str] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.put("manifests/c/big.json", payloads[i], if_absent=True)
            outcome[i] = "won"
        except ObjectExists:
            outcome[i] = "exists"
        except Exception as e:  # pragma: no cover
            outcome[i] = repr(e)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if o == "won"]
    assert len(winners) == 1 and sorted(outcome.values()) == ["exists", "exists", "won"], outcome
    assert store.get("manifests/c/big.json") == payloads[winners[0]]
    assert not seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


# -- configuration -------------------------------------------------------------------------------------


def test_from_url_with_credentials_from_the_environment(seaweed: SeaweedFS, bucket: str,
                                                        aws_env: dict[str, str]) -> None:
    url = parse_store_url(f"s3://{bucket}/some/prefix?endpoint={seaweed.endpoint}&path_style=1")
    store = S3Store.from_url(url)
    assert store.display == f"s3://{bucket}/some/prefix/"
    assert store.prefix == "some/prefix/"
    store.put("manifests/x/1.json", b"{}")
    assert seaweed.client().get_object(Bucket=bucket, Key="some/prefix/manifests/x/1.json")["Body"].read() == b"{}"
    assert [o.key for o in store.list()] == ["manifests/x/1.json"]

    # without the endpoint option boto3's AWS_ENDPOINT_URL_S3 applies; open_store adds retries
    opened = open_store(f"s3://{bucket}/some/prefix?path_style=yes&concurrency=8")
    assert isinstance(opened, RetryingStore) and isinstance(opened.inner, S3Store)
    assert opened.inner.concurrency == 8
    assert opened.get("manifests/x/1.json") == b"{}"
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in repr(opened.inner) + opened.display


def test_sse_and_storage_class_are_sent(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str]) -> None:
    # SeaweedFS implements SSE-S3 (AES256); SSE-KMS needs a KMS it does not have (it answers 500)
    store = make_store(seaweed, bucket, sse="AES256", storage_class="STANDARD",
                       multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    sent: list[dict[str, Any]] = []
    for op in ("PutObject", "CreateMultipartUpload"):
        store.client.meta.events.register(f"before-parameter-build.s3.{op}",
                                          lambda params, **kw: sent.append(dict(params)))
    big = os.urandom(6 * MiB)
    store.put("small", b"secret data")
    store.put("big", big)
    assert [(p["ServerSideEncryption"], p["StorageClass"]) for p in sent] == [("AES256", "STANDARD")] * 2
    raw = seaweed.client()
    for key in ("small", "big"):
        assert raw.head_object(Bucket=bucket, Key=f"store/{key}")["ServerSideEncryption"] == "AES256"
    assert store.get("small") == b"secret data" and store.get("big") == big


def test_region_and_option_checks(seaweed: SeaweedFS, aws_env: dict[str, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_store(seaweed, "b-1").client.meta.region_name == "us-east-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert make_store(seaweed, "b-1").client.meta.region_name == "eu-west-3"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert make_store(seaweed, "b-1").client.meta.region_name == "ap-south-1"
    assert make_store(seaweed, "b-1", region="us-west-2").client.meta.region_name == "us-west-2"
    assert S3Store.from_url(parse_store_url("s3://b-1/p?region=ca-central-1")).client.meta.region_name \
        == "ca-central-1"
    for bad in ("s3://b-1/p?sse=rot13", "s3://b-1/p?path_style=maybe", "s3://b-1/p?endpoint=ftp://x",
                "s3://b-1/p?sse=AES256&sse_kms_key_id=k1"):
        with pytest.raises(UsageError):
            S3Store.from_url(parse_store_url(bad))
    kms = S3Store.from_url(parse_store_url("s3://b-1/p?sse_kms_key_id=k1"))
    assert kms._extra == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}
    assert make_store(seaweed, "b-1", prefix="no/slash").prefix == "no/slash/"
    with pytest.raises(ValueError):
        make_store(seaweed, "b-1").stat("folder/")


def test_boto3_missing_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now raises ImportError
    with pytest.raises(Unsupported, match="S3 support is not installed") as e:
        S3Store("bucket")
    assert e.value.hint == "pip install 'vecbackup[s3]'"


def test_cli_help_does_not_import_boto3() -> None:
    code = "import sys; from vecbackup.cli import run; run(['--help']); sys.exit(3 if 'boto3' in sys.modules else 0)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# -- errors ---------------------------------------------------------------------------------------------


def test_wrong_secret_is_permission_denied(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    make_store(seaweed, bucket).put("k", b"v")
    wrong = "Wr0ngSecret" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    store = make_store(seaweed, bucket)
    calls = [lambda: store.get("k"), lambda: store.stat("k"), lambda: list(store.list()),
             lambda: store.put("k2", b"v"), lambda: store.delete("k")]
    for call in calls:
        with pytest.raises(PermissionDenied) as e:
            call()
        text = _one_line(e.value)
        assert wrong not in text and aws_env["AWS_SECRET_ACCESS_KEY"] not in text
        assert bucket in text or seaweed.endpoint in text
        assert "environment" in text  # where the credentials came from
    assert "AWS_SECRET_ACCESS_KEY" in (e.value.hint or "") or "AWS_ACCESS_KEY_ID" in (e.value.hint or "")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY")
    with pytest.raises(PermissionDenied) as e:
        make_store(seaweed, bucket).get("k")
    assert wrong not in str(e.value)


def test_no_credentials_is_permission_denied(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(PermissionDenied, match="no complete AWS credentials") as e:
        make_store(seaweed, bucket).get("k")
    assert "AWS_ACCESS_KEY_ID" in (e.value.hint or "")


def test_missing_bucket_is_not_found(seaweed: SeaweedFS, aws_env: dict[str, str]) -> None:
    name = f"missing-{uuid.uuid4().hex[:12]}"
    store = make_store(seaweed, name)
    calls = [lambda: store.get("k"), lambda: store.stat("k"), lambda: list(store.list()),
             lambda: store.put("k", b"v"), lambda: store.put("k", b"v", if_absent=True), lambda: store.delete("k")]
    for call in calls:
        with pytest.raises(NotFound) as e:
            call()
        assert not isinstance(e.value, ObjectNotFound)  # about the bucket, not one object
        assert f"bucket {name!r} does not exist at {seaweed.endpoint}" in _one_line(e.value)
        assert e.value.hint == "create it or check the bucket name and region"
    assert name not in [b["Name"] for b in seaweed.client().list_buckets()["Buckets"]]  # a put did not create it


def test_unreachable_endpoint_is_transient(bucket: str, aws_env: dict[str, str]) -> None:
    (port,) = free_ports(1)  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    store = S3Store(bucket, "p/", endpoint_url=endpoint, path_style=True, connect_timeout=2, read_timeout=5)
    for call in (lambda: store.get("k"), lambda: store.put("k", b"v"), lambda: list(store.list()),
                 lambda: store.stat("k"), lambda: store.delete("k")):
        with pytest.raises(TransientError) as e:
            call()
        assert endpoint in _one_line(e.value)


def test_server_stopped_then_restarted(seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str]) -> None:
    """A stopped server is a TransientError; RetryingStore rides out a restart; data survives it."""
    store = make_store(seaweed, bucket, connect_timeout=2, read_timeout=5)
    store.put("manifests/c/keep.json", b"kept")
    retrying = RetryingStore(store, attempts=40, max_seconds=90, base_delay=0.25, max_delay=1.0, rand=lambda: 1.0)
    seaweed.stop()
    restarter = threading.Thread(target=lambda: (time.sleep(2.0), seaweed.start()))
    try:
        with pytest.raises(TransientError) as e:
            store.get("manifests/c/keep.json")
        assert seaweed.endpoint in _one_line(e.value)
        restarter.start()
        started = time.monotonic()
        assert retrying.get("manifests/c/keep.json") == b"kept"
        assert retrying.retries > 0
        assert time.monotonic() - started >= 2.0
    finally:
        if restarter.is_alive():
            restarter.join()
        if not seaweed.running:
            seaweed.start()
    assert store.get("manifests/c/keep.json") == b"kept"


# -- the CLI end to end -----------------------------------------------------------------------------------


def test_cli_backup_list_verify_restore_over_s3(cli: Any, lite: Any, seaweed: SeaweedFS, bucket: str,
                                               aws_env: dict[str, str]) -> None:
    secret = aws_env["AWS_SECRET_ACCESS_KEY"]
    name = lite.new_name("s3")
    built = build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    url = f"s3://{bucket}/backups?endpoint={seaweed.endpoint}&path_style=1"

    r = cli("backup", lite.url, url, "-c", name, "--batch-size", "64", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["ok"] and doc["store"] == f"s3://{bucket}/backups/"
    backup_id = doc["backups"][0]["backup_id"]
    assert doc["backups"][0]["rows"] == built.rows
    for out in (r.stdout, r.stderr):
        assert secret not in out

    keys = [o["Key"] for o in seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"backups/manifests/{name}/{backup_id}.json" in keys
    assert sum(k.startswith("backups/data/") and k.endswith(".vbc") for k in keys) >= built.rows // 64

    r = cli("list", url, "--json")
    assert r.code == 0, r.stderr
    listed = r.json()
    assert [b["backup_id"] for b in listed["backups"]] == [backup_id]
    assert listed["store"] == f"s3://{bucket}/backups/" and secret not in r.stdout

    r = cli("verify", url, backup_id, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["ok"]

    copy = lite.new_name("copy")
    r = cli("restore", url, lite.url, "--backup", backup_id, "--as", copy, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == built.rows
    src, dst = read_rows(lite.client, name), read_rows(lite.client, copy)
    assert len(src) == built.rows and src == dst


def test_cli_errors_over_s3(cli: Any, seaweed: SeaweedFS, bucket: str, aws_env: dict[str, str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    r = cli("list", f"s3://{missing}/b?endpoint={seaweed.endpoint}&path_style=1", "--json")
    assert r.code == NotFound.exit_code, r.stderr
    assert missing in r.stderr and len(r.stderr.strip().splitlines()) == 1

    wrong = "Wr0ng" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    monkeypatch.setenv("VECBACKUP_STORE_RETRY_ATTEMPTS", "2")
    r = cli("list", f"s3://{bucket}/b?endpoint={seaweed.endpoint}&path_style=1", "--json")
    assert r.code == PermissionDenied.exit_code, r.stderr
    assert wrong not in r.stderr + r.stdout and aws_env["AWS_SECRET_ACCESS_KEY"] not in r.stderr + r.stdout
