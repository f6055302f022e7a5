"""Encrypted stores end to end, through the CLI, against real Milvus Lite and every real store (a folder, S3 on
SeaweedFS, Azure on Azurite): round trips, incremental reuse under encryption, wrong keys, tampering, key
rotation, refusals between encrypted and unencrypted, and a grep of everything a full run outputs or stores for
the passphrase and the keys."""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

import pytest

from tests.datasets import build_rich, build_vector_only, read_rows
from vecbackup.errors import AuthenticationFailed, WrongKey
from vecbackup.format import layout
from vecbackup.format.crypto import KeyFile
from vecbackup.ops import catalog
from vecbackup.passphrase import Passphrase
from vecbackup.stores import open_raw_store, open_store
from vecbackup.stores.encrypted import EncryptedStore

PASSPHRASE = "tr0ub4dor&3 staple battery"
SECOND = "a completely different passphrase"
WRONG = AuthenticationFailed.exit_code  # 14, tampering
NOKEY = WrongKey.exit_code  # 13


def _pwfile(tmp_path: Path, text: str, name: str = "pw") -> Path:
    p = tmp_path / name
    p.write_text(text + "\n")
    return p


def _raw_objects(url: str, *, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    raw = open_raw_store(url)
    return {i.key: raw.get(i.key) for i in raw.list() if not i.key.startswith(skip)}


def _data_state(url: str) -> dict[str, bytes]:
    """The stored bytes of every data object and row-digest object, as they are below the encryption."""
    return {k: v for k, v in _raw_objects(url).items() if k.startswith((layout.DATA, layout.DIGESTS))}


def test_encrypted_round_trip_on_every_store(cli, lite, any_store, tmp_path, monkeypatch):
    """init --encrypt, backup, list, show, verify --read-data, stats, restore, drill, prune, gc, delete on an
    encrypted store; everything below the encryption is sealed, names are keyed MACs, and a second backup of
    unchanged data uploads nothing."""
    pw = _pwfile(tmp_path, PASSPHRASE)
    name = lite.new_name("enc")
    build_rich(lite.client, name, "lite", n=600)
    url = any_store.url
    r = cli("init", url, "--encrypt", "--passphrase-file", pw, "--label", "ci", "--json")
    assert r.code == 0, r.stderr
    key_id = r.json()["key"]["id"]
    assert r.json()["encrypted"] is True and r.json()["key"]["label"] == "ci"

    r = cli("backup", lite.url, url, "-c", name, "--batch-size", "150", "--passphrase-file", pw, "--json")
    assert r.code == 0, r.stderr
    first = r.json()["backups"][0]
    assert first["objects"] >= 4 and first["bytes_uploaded"] > 0  # 3 partitions, 600 rows, 150 per chunk

    # below the wrapper: sealed, and no content hash, collection field name or value in the clear
    store = open_store(url, passphrase=Passphrase(file=str(pw)))
    assert isinstance(store, EncryptedStore) and store.key_id == key_id
    raw = _raw_objects(url)
    sealed = {k: v for k, v in raw.items() if k != "vecbackup.json" and not k.startswith("keys/")}
    assert any(k.startswith(layout.MANIFESTS) for k in sealed) and len(sealed) >= 9
    for k, v in sealed.items():
        assert v.startswith(b"VBE1"), k
        assert b"title" not in v and name.encode() not in v and b'"rows"' not in v, k
    for k in (k for k in sealed if k.startswith(layout.DATA)):
        plain = store.get(k)
        sha = layout.parse_data_key(k)
        assert sha == store.content_hash(plain) and sha != hashlib.sha256(plain).hexdigest()
        assert hashlib.sha256(raw[k]).hexdigest() != sha

    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)  # the other way to give it
    listed = cli("list", url, "--json")
    assert listed.code == 0 and listed.json()["encrypted"] is True
    assert [b["backup_id"] for b in listed.json()["backups"]] == [first["backup_id"]]
    assert cli("show", url, "--json").json()["backup_id"] == first["backup_id"]
    r = cli("verify", url, "--read-data", "--json")
    assert r.code == 0 and r.json()["ok"] is True, r.stdout + r.stderr
    assert cli("stats", url, "--json").json()["data_objects"] == first["objects"]

    before = _data_state(url)
    r = cli("backup", lite.url, url, "-c", name, "--batch-size", "150", "--json")
    assert r.code == 0, r.stderr
    second = r.json()["backups"][0]
    assert second["bytes_uploaded"] == 0 and second["objects_new"] == 0 and second["rows_reused"] == 600
    assert _data_state(url) == before  # nothing uploaded again, byte for byte

    r = cli("restore", url, lite.url, "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)
    if any_store.kind == "local":  # a drill is a restore and reads; the remote stores' reads are covered above
        r = cli("drill", url, lite.url, "-c", name, "--json")
        assert r.code == 0, r.stdout + r.stderr

    r = cli("prune", url, "--keep-last", "1", "--json")
    assert r.code == 0 and len(r.json()["removed"]) == 1, r.stdout + r.stderr  # the id of the first backup
    r = cli("delete", url, second["backup_id"], "--json")
    assert r.code == 0, r.stderr
    assert cli("gc", url, "--min-age", "0", "--json").code == 0
    left = _raw_objects(url)
    assert not [k for k in left if k.startswith((layout.DATA, layout.DIGESTS, layout.MANIFESTS))]
    assert "vecbackup.json" in left and f"keys/{key_id}.json" in left  # the store stays encrypted


def _encrypted_backup(cli, lite, tmp_path, *, n: int = 400, batch: int = 90) -> tuple[str, str, Path, str]:
    tmp_path.mkdir(exist_ok=True)
    pw = _pwfile(tmp_path, PASSPHRASE)
    url = f"file://{tmp_path / 'store'}"
    name = lite.new_name("enc")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=n)
    assert cli("init", url, "--encrypt", "--passphrase-file", pw).code == 0
    r = cli("backup", lite.url, url, "-c", name, "--batch-size", str(batch), "--passphrase-file", pw, "--json")
    assert r.code == 0, r.stderr
    return url, name, pw, r.json()["backups"][0]["backup_id"]


def test_a_local_store_is_private_to_its_user(cli, lite, tmp_path):
    """Under the usual umask 022, an encrypted local store's key files, settings, manifests, data and locks are
    0600 and its folders 0700, so other users of the machine cannot read the key files (a slow offline guess of
    their passphrase each) or list what is backed up."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        url, name, pw, _ = _encrypted_backup(cli, lite, tmp_path / "x", n=120, batch=50)
        new_pw = _pwfile(tmp_path, SECOND, "new")
        assert cli("key", "add", url, "--passphrase-file", pw, "--new-passphrase-file", new_pw).code == 0
        assert cli("backup", lite.url, url, "-c", name, "--passphrase-file", pw, "--full").code == 0
    finally:
        os.umask(old)
    root = tmp_path / "x" / "store"
    files = [p for p in root.rglob("*") if p.is_file()]
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert {p.relative_to(root).parts[0] for p in files} >= {"keys", "vecbackup.json", "manifests", "data"}
    assert len([p for p in files if p.parent.name == "keys"]) == 2
    assert {p.relative_to(root).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        p.relative_to(root).as_posix(): "0o600" for p in files}
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {str(p): "0o700" for p in folders}


def test_wrong_or_missing_key_fails_fast_with_its_own_code(cli, lite, tmp_path, monkeypatch):
    url, name, pw, _ = _encrypted_backup(cli, lite, tmp_path)
    wrong = _pwfile(tmp_path, "not the passphrase", "wrong")
    for args in (("list", url), ("show", url), ("verify", url), ("stats", url), ("gc", url),
                 ("backup", lite.url, url, "-c", name), ("restore", url, lite.url, "--as", f"{name}_x"),
                 ("drill", url, lite.url, "-c", name), ("key", "list", url)):
        r = cli(*args, "--passphrase-file", wrong)
        assert r.code == NOKEY, (args, r.stderr)
        assert r.error_line() == (f"error: the passphrase in {str(wrong)!r} does not open encrypted store {url}, whose "
                                  "key file takes another: give the passphrase the store was created with, or one "
                                  "added with `vecbackup key add`"), r.error_line()
        assert "not the passphrase" not in r.stderr
        r = cli(*args)  # no passphrase at all
        assert r.code == NOKEY and "is encrypted: give its passphrase" in r.error_line(), (args, r.stderr)
    assert f"{name}_x" not in lite.client.list_collections()
    # a key command: a secrets manager that answers, one that fails (its output is never shown)
    script = tmp_path / "vault.py"
    script.write_text(f"import sys\nprint({PASSPHRASE!r})\nsys.exit(int(sys.argv[1]))\n")
    assert cli("list", url, "--key-command", f"{sys.executable} {script} 0").code == 0
    r = cli("list", url, "--key-command", f"{sys.executable} {script} 5")
    assert r.code == NOKEY and "exit status 5" in r.error_line() and PASSPHRASE not in r.stderr + r.stdout
    # two sources at once is a usage error, not a guess
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    r = cli("list", url, "--passphrase-file", pw)
    assert r.code == 2 and "2 ways" in r.error_line()


def test_a_key_command_runs_in_a_minimal_environment(cli, tmp_path, monkeypatch):
    """`key add --new-key-command` with VECBACKUP_PASSPHRASE set (how the leak was seen), then `--key-command` with
    VECBACKUP_NEW_PASSPHRASE set: the command, a real program that records its environment and prints a
    passphrase, gets PATH, HOME, the locale, its secrets manager's variables and what VECBACKUP_KEY_COMMAND_ENV
    adds; never a passphrase, a database or storage secret, or anything else."""
    import json
    import os

    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    assert cli("init", url, "--encrypt").code == 0
    script = tmp_path / "secrets-manager.py"
    script.write_text("import json, os, sys\nwith open(sys.argv[1], 'w') as f:\n    json.dump(dict(os.environ), f)\n"
                      "print(sys.argv[2])\n")
    planted = {"VAULT_ADDR": "https://vault.internal:8200", "VAULT_TOKEN": "s.vault-token", "AWS_REGION": "eu-west-1",
               "LC_ALL": "C.UTF-8", "MYCORP_VAULT_ROLE": "backup", "VECBACKUP_MILVUS_TOKEN": "milvus-secret",
               "QDRANT_API_KEY": "qdrant-secret", "AZURE_STORAGE_KEY": "azure-secret",
               "CI_DEPLOY_PASSWORD": "unrelated-secret", "VECBACKUP_KEY_COMMAND_ENV": "MYCORP_*"}
    for k, v in planted.items():
        monkeypatch.setenv(k, v)

    def seen(dump: Path) -> dict[str, str]:
        text = dump.read_text()
        for secret in (PASSPHRASE, SECOND, "milvus-secret", "qdrant-secret", "azure-secret", "unrelated-secret"):
            assert secret not in text
        env: dict[str, str] = json.loads(text)
        assert not [k for k in env if k.startswith("VECBACKUP_")], env
        for k in ("VAULT_ADDR", "VAULT_TOKEN", "AWS_REGION", "LC_ALL", "MYCORP_VAULT_ROLE"):
            assert env[k] == planted[k]
        assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
        assert "CI_DEPLOY_PASSWORD" not in env and "QDRANT_API_KEY" not in env and "AZURE_STORAGE_KEY" not in env
        return env

    r = cli("key", "add", url, "--new-key-command", f"{sys.executable} {script} {tmp_path / 'add.json'} '{SECOND}'")
    assert r.code == 0, r.stderr
    seen(tmp_path / "add.json")
    monkeypatch.delenv("VECBACKUP_PASSPHRASE")
    monkeypatch.setenv("VECBACKUP_NEW_PASSPHRASE", "a third passphrase")
    r = cli("key", "list", url, "--key-command", f"{sys.executable} {script} {tmp_path / 'open.json'} '{SECOND}'",
            "--json")
    assert r.code == 0 and len(r.json()["keys"]) == 2, r.stderr  # the new key, made from the command's output
    assert "a third passphrase" not in (tmp_path / "open.json").read_text()
    seen(tmp_path / "open.json")
    monkeypatch.setenv("VECBACKUP_KEY_COMMAND_ENV", "VECBACKUP_NEW_PASSPHRASE")  # asked for: refused, said why
    r = cli("list", url, "--key-command", f"{sys.executable} {script} {tmp_path / 'x.json'} '{SECOND}'")
    assert r.code == 2 and "never given to a key command" in r.error_line()
    assert not (tmp_path / "x.json").exists()


def test_tampered_swapped_and_foreign_objects_each_fail_authentication(cli, lite, tmp_path, monkeypatch):
    """A changed data object, two swapped data objects, a plaintext object, a changed manifest and a manifest of
    another backup put in its place: each exits 14, and a restore stops before the target is touched."""
    url, name, _, first_id = _encrypted_backup(cli, lite, tmp_path)
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    lite.client.insert(name, [{"pk": 10_000, "v": [0.5] * 16, "label": "new"}])  # a second, different backup
    r = cli("backup", lite.url, url, "-c", name, "--batch-size", "90", "--full", "--json")
    assert r.code == 0, r.stderr
    second_id = r.json()["backups"][0]["backup_id"]
    raw = open_raw_store(url)
    enc = open_store(url)
    data = [o.key for o in catalog.find(enc, first_id).objects]  # the first backup's objects, in its order
    assert len(data) == 5
    m1, m2 = layout.manifest_key(name, first_id), layout.manifest_key(name, second_id)
    original = {k: raw.get(k) for k in [*data, m1, m2]}
    # an existing target restored over with --drop-existing must come through every failure untouched
    target = f"{name}_live"
    build_vector_only(lite.client, target, "FLOAT_VECTOR", n=50)
    live = read_rows(lite.client, target)

    def restore_fails(backup: str) -> None:
        r = cli("restore", url, lite.url, "--backup", backup, "--as", target, "--drop-existing")
        assert r.code == WRONG and "authentication" in r.error_line(), r.stderr
        assert read_rows(lite.client, target) == live
        assert not [c for c in lite.client.list_collections() if "_vbrestore_" in c]

    flipped = bytearray(original[data[1]])
    flipped[len(flipped) // 2] ^= 0x01
    raw.put(data[1], bytes(flipped))
    r = cli("verify", url, first_id, "--json")
    assert r.code == WRONG and r.json()["backups"][0]["problems"][0]["kind"] == "tampered"
    restore_fails(first_id)
    raw.put(data[1], original[data[1]])

    raw.put(data[0], original[data[2]])  # swapped: each is a valid sealed object, under the other's name
    raw.put(data[2], original[data[0]])
    assert cli("verify", url, first_id).code == WRONG
    restore_fails(first_id)
    raw.put(data[0], original[data[0]])
    raw.put(data[2], original[data[2]])

    raw.put(data[3], b"VBC1 an object written without the key")
    assert cli("verify", url, first_id).code == WRONG
    raw.put(data[3], original[data[3]])

    bad = bytearray(original[m1])
    bad[20] ^= 0x80
    raw.put(m1, bytes(bad))
    r = cli("show", url, first_id)
    assert r.code == WRONG and m1 in r.error_line()
    restore_fails(first_id)

    raw.put(m1, original[m2])  # the second backup's manifest as the first's
    assert cli("show", url, first_id).code == WRONG
    restore_fails(first_id)
    raw.put(m1, original[m1])
    assert cli("verify", url, "--all", "--read-data").code == 0  # all put back: nothing else was damaged


def test_key_add_and_remove_rotate_access_without_touching_data(cli, lite, tmp_path):
    url, name, old_pw, backup_id = _encrypted_backup(cli, lite, tmp_path)
    new_pw = _pwfile(tmp_path, SECOND, "new")
    before = _data_state(url)
    r = cli("key", "add", url, "--passphrase-file", old_pw, "--new-passphrase-file", new_pw, "--label", "rotated",
            "--json")
    assert r.code == 0, r.stderr
    new_id = r.json()["key"]["id"]
    keys = cli("key", "list", url, "--passphrase-file", new_pw, "--json").json()["keys"]
    assert len(keys) == 2 and [k["id"] for k in keys if k["current"]] == [new_id]
    old_id = next(k["id"] for k in keys if k["id"] != new_id)
    # the key in use cannot be removed (so neither can the last one); an unknown id is not found
    r = cli("key", "remove", url, new_id, "--passphrase-file", new_pw)
    assert r.code == 2 and "is the one this run opened" in r.error_line()
    assert cli("key", "remove", url, "ffffffff", "--passphrase-file", new_pw).code == 4
    r = cli("key", "remove", url, old_id[:6], "--passphrase-file", new_pw, "--json")
    assert r.code == 0 and r.json()["removed"]["id"] == old_id, r.stderr
    assert cli("list", url, "--passphrase-file", old_pw).code == NOKEY  # the old passphrase stopped working
    r = cli("restore", url, lite.url, "--as", f"{name}_r", "--passphrase-file", new_pw)
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)
    assert _data_state(url) == before  # nothing re-encrypted or uploaded again
    r = cli("key", "remove", url, new_id, "--passphrase-file", new_pw)
    assert r.code == 2 and "only key" in r.error_line()
    assert cli("verify", url, backup_id, "--passphrase-file", new_pw).code == 0


def test_encrypted_and_unencrypted_stores_refuse_each_other(cli, lite, tmp_path, monkeypatch):
    name = lite.new_name("plain")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=100)
    plain = f"file://{tmp_path / 'plain'}"
    assert cli("backup", lite.url, plain, "-c", name).code == 0
    manifests = lambda: [k for k in _raw_objects(plain) if k.startswith(layout.MANIFESTS)]  # noqa: E731
    # a passphrase given for an unencrypted store: refused, unless asked (nothing meant to be encrypted is written in
    # the clear, and nothing is read from a store that may have lost its encryption)
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    for args in (("list", plain), ("backup", lite.url, plain, "-c", name), ("prune", plain, "--keep-last", "1"),
                 ("restore", plain, lite.url, "--as", f"{name}_r")):
        r = cli(*args)
        assert r.code == 2 and "is not encrypted, but a passphrase was given" in r.error_line(), (args, r.stderr)
    assert len(manifests()) == 1 and f"{name}_r" not in lite.client.list_collections()
    assert cli("list", plain, "--allow-unencrypted").code == 0
    r = cli("backup", lite.url, plain, "-c", name, "--allow-unencrypted", "--json")  # asked for
    assert r.code == 0, r.stderr
    assert len(manifests()) == 2
    # encryption starts in an empty store; an encrypted store is not encrypted twice
    r = cli("init", plain, "--encrypt")
    assert r.code == 5 and "holds unencrypted backups" in r.error_line()
    enc = f"file://{tmp_path / 'enc'}"
    assert cli("init", enc, "--encrypt").code == 0
    r = cli("init", enc, "--encrypt")
    assert r.code == 5 and "already encrypted (1 key file)" in r.error_line()
    r = cli("init", enc)
    assert r.code == 2 and "--encrypt" in r.error_line()
    monkeypatch.delenv("VECBACKUP_PASSPHRASE")
    r = cli("backup", lite.url, enc, "-c", name)  # and an encrypted store never takes writes without its key
    assert r.code == NOKEY
    assert not [k for k in _raw_objects(enc) if not k.startswith(("keys/", "vecbackup.json"))]
    assert cli("init", f"file://{tmp_path / 'fresh'}", "--json").json()["encrypted"] is False


def _secret_forms(secret: bytes) -> list[bytes]:
    out = [secret, secret.hex().encode(), base64.b64encode(secret), base64.urlsafe_b64encode(secret)]
    return [s for s in out if len(s) >= 8]


def test_no_passphrase_or_key_in_anything_a_full_encrypted_run_outputs_or_stores(cli, lite, tmp_path, monkeypatch):
    """Every command on an encrypted store (a sharded backup and its commit too), JSON and text, logs as JSON,
    metrics, drill reports, the scheduler's heartbeat, and every byte stored: none holds the passphrases, the
    repository keys, or a key derived from a passphrase, in any of the usual encodings."""
    name = lite.new_name("grep")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    url = f"file://{tmp_path / 'store'}"
    pw, new_pw = _pwfile(tmp_path, PASSPHRASE), _pwfile(tmp_path, SECOND, "new")
    prom, out = tmp_path / "metrics.prom", tmp_path / "out"
    out.mkdir()
    common = ["--passphrase-file", str(pw)]
    runs = [
        ["init", url, "--encrypt", *common, "--label", "grep"],
        ["backup", lite.url, url, "-c", name, "--batch-size", "70", "--log-format", "json",
         "--metrics-textfile", prom, *common],
        ["backup", lite.url, url, "-c", name, "--json", *common],
        ["backup", lite.url, url, "-c", name, "--shard", "0/2", "--run", "r1", *common],  # shard records, sealed
        ["backup", lite.url, url, "-c", name, "--shard", "1/2", "--run", "r1", "--json", *common],
        ["commit", url, "-c", name, "--run", "r1", "--json", *common],
        ["list", url, "--json", *common], ["list", url, *common],
        ["show", url, "--json", *common], ["show", url, *common],
        ["verify", url, "--read-data", "--json", "--log-format", "json", "--metrics-textfile", prom, *common],
        ["stats", url, "--json", *common],
        ["restore", url, lite.url, "--as", f"{name}_r", "--metrics-textfile", prom, *common],
        ["drill", url, lite.url, "-c", name, "--report-json", out / "drill.json", "--junit", out / "drill.xml",
         *common],
        ["key", "add", url, "--new-passphrase-file", new_pw, "--json", *common],
        ["key", "list", url, *common],
        ["prune", url, "--keep-last", "1", "--json", "--metrics-textfile", prom, *common],
        ["gc", url, "--min-age", "0", "--json", *common],
        ["unlock", url, "--list", "--json", *common],
        ["list", url, "--passphrase-file", tmp_path / "missing"],  # failures print too
        ["list", url, "--key-command", f"{sys.executable} -c \"print('{PASSPHRASE}'); exit(2)\""],
    ]
    texts: list[bytes] = []
    codes = []
    for args in runs:
        r = cli(*args)
        codes.append(r.code)
        texts += [r.stdout.encode(), r.stderr.encode()]
    assert codes[:-2] == [0] * (len(runs) - 2), list(zip(codes, [a[0] for a in runs], strict=True))
    assert codes[-2:] == [2, NOKEY]
    hb = tmp_path / "hb.json"
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(f'heartbeat = "{hb}"\n[[jobs]]\nname = "enc"\nsource = "{lite.url}"\nstore = "{url}"\n'
                        f'collections = ["{name}"]\nevery = "6h"\nkeep_last = 2\npassphrase_file = "{new_pw}"\n')
    r = cli("schedule", schedule, "--once", "--json", "--metrics-textfile", prom)
    assert r.code == 0, r.stderr
    texts += [r.stdout.encode(), r.stderr.encode(), hb.read_bytes(), schedule.read_bytes()]
    texts += [prom.read_bytes()] + [p.read_bytes() for p in out.iterdir()]
    stored = _raw_objects(url)
    texts += [k.encode() + b"\0" + v for k, v in stored.items()]
    # what we look for: both passphrases, the repository keys, and each key file's passphrase-derived key
    store = open_store(url, passphrase=Passphrase(SECOND))
    assert isinstance(store, EncryptedStore)
    raw_key = store.repository_key.to_bytes()
    secrets = [PASSPHRASE.encode(), SECOND.encode(), raw_key, raw_key[:32], raw_key[32:]]
    for k, v in stored.items():
        if k.startswith("keys/"):
            kf = KeyFile.from_json(v, where=k)
            secrets += [kf.kdf.derive(PASSPHRASE.encode()), kf.kdf.derive(SECOND.encode())]
    assert len([k for k in stored if k.startswith("keys/")]) == 2
    blob = b"\n".join(texts)
    assert len(blob) > 50_000  # the run did output and store things
    for secret in secrets:
        for form in _secret_forms(secret):
            assert form not in blob, "a secret appears in the output or the store"


@pytest.mark.parametrize("store_kind", ["s3", "azure"])
def test_wrong_key_and_tampering_on_remote_stores(cli, lite, store_kind, request, tmp_path, monkeypatch):
    """The exit codes hold on S3 and Azure too (their errors take another path through the retrying store)."""
    from tests.conftest import make_store

    sut = make_store(store_kind, request, tmp_path, monkeypatch)
    name = lite.new_name("remote")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=120)
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    assert cli("init", sut.url, "--encrypt").code == 0
    assert cli("backup", lite.url, sut.url, "-c", name, "--batch-size", "50").code == 0
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", SECOND)
    assert cli("list", sut.url).code == NOKEY
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    raw = sut.open()
    key = next(i.key for i in raw.list(layout.DATA))
    sealed = raw.get(key)
    raw.put(key, sealed[:-3] + bytes(b ^ 0xFF for b in sealed[-3:]))
    assert cli("verify", sut.url).code == WRONG
    r = cli("restore", sut.url, lite.url, "--as", f"{name}_r")
    assert r.code == WRONG and f"{name}_r" not in lite.client.list_collections()


def _at_a_terminal(argv: list[str], answers: list[str], env: dict[str, str], timeout: float = 60.0) -> tuple[int, str]:
    """Run ``vecbackup ARGV`` with a pseudo-terminal as its controlling terminal, typing each answer when a prompt
    (a line ending in ': ') appears; its exit code and everything it wrote to the terminal."""
    import os
    import pty
    import select
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execve(sys.executable, [sys.executable, "-m", "vecbackup", *argv], env)
    out, pending, answered, deadline = b"", list(answers), 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            prompt = out.rstrip(b" ")
            if pending and prompt.endswith(b":") and len(prompt) > answered:  # a new prompt, answered once
                answered = len(prompt)
                while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < deadline:
                    time.sleep(0.02)  # type once the prompt has turned echo off (what is typed ahead is flushed)
                os.write(fd, pending.pop(0).encode() + b"\n")
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_the_passphrase_is_asked_for_at_a_terminal_and_never_echoed(tmp_path):
    """At 2 a.m. at a terminal with no VECBACKUP_PASSPHRASE: init asks twice (and refuses a mismatch), every other
    command asks once, nothing typed is echoed, and a wrong answer is exit 13."""
    import os

    url = f"file://{tmp_path / 'store'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECBACKUP_")}
    code, out = _at_a_terminal(["init", url, "--encrypt"], [PASSPHRASE, PASSPHRASE + "x", PASSPHRASE, PASSPHRASE],
                               env)
    assert code == 0, out
    assert "do not match" in out.lower() and "encrypted store" in out and PASSPHRASE not in out
    code, out = _at_a_terminal(["key", "list", url], [PASSPHRASE], env)
    assert code == 0 and "*" in out and PASSPHRASE not in out, out
    code, out = _at_a_terminal(["list", url], ["not it"], env)
    assert code == NOKEY and "does not open encrypted store" in out and "whose key file takes another" in out, out


def test_a_store_stripped_of_its_encryption_is_not_trusted(cli, lite, tmp_path, monkeypatch):
    """Someone who can write the bucket removes an encrypted store's settings and key files and plants a plaintext
    backup of their own: with the passphrase given or not (and even with --allow-unencrypted), vecbackup refuses to
    read it (nor will it write there in the clear): the sealed objects left say what the store is."""
    url, name, pw, _ = _encrypted_backup(cli, lite, tmp_path, n=120)
    planted = lite.new_name("planted")
    build_vector_only(lite.client, planted, "FLOAT_VECTOR", n=30, seed=9)
    other = f"file://{tmp_path / 'attacker'}"
    assert cli("backup", lite.url, other, "-c", planted).code == 0
    raw = open_raw_store(url)
    for k in [i.key for i in raw.list() if i.key == "vecbackup.json" or i.key.startswith("keys/")]:
        raw.delete(k)
    for k, v in _raw_objects(other).items():
        raw.put(k, v)
    for args in (("restore", url, lite.url, "-c", planted, "--as", f"{planted}_r"), ("list", url),
                 ("backup", lite.url, url, "-c", name)):
        for extra in (("--passphrase-file", pw), (), ("--allow-unencrypted",)):
            r = cli(*args, *extra)
            assert r.code == WRONG and "no settings file" in r.error_line(), (args, extra, r.stderr)
    assert f"{planted}_r" not in lite.client.list_collections()
