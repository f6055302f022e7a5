"""The committed golden encrypted store (tests/golden/encrypted-v1, made by ``make_golden --encrypted``) must always
open with its passphrase and restore, whatever the code becomes; and a reader written from docs/FORMAT.md
("Encryption") alone, with nothing of vecbackup but the chunk decoder, opens it too."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tests.datasets import read_rows
from tests.golden.make_golden import GOLDEN_PASSPHRASE
from vecbackup.format.codec import decode_chunk

GOLDEN = Path(__file__).parent / "encrypted-v1"




def test_golden_encrypted_store_restores_with_its_passphrase(cli, lite, golden_store, expected, monkeypatch):
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", GOLDEN_PASSPHRASE)
    r = cli("verify", golden_store, "--read-data", "--json")
    assert r.code == 0, r.stdout + r.stderr
    r = cli("restore", golden_store, lite.url, "--json")
    assert r.code == 0, r.stderr
    assert {str(k): v for k, v in read_rows(lite.client, "golden").items()} == expected["rows"]
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", GOLDEN_PASSPHRASE + "!")
    assert cli("list", golden_store).code == 13


def test_a_reader_from_the_spec_opens_the_golden_store(golden_store, expected):
    settings = orjson.loads((golden_store / "vecbackup.json").read_bytes())
    assert settings["format"] == "vecbackup-store" and settings["encryption"]["cipher"] == "AES-256-GCM"
    (key_path,) = (golden_store / "keys").iterdir()
    kf = orjson.loads(key_path.read_bytes())
    assert key_path.name == f"{kf['id']}.json" and kf["repository"] == settings["repository"]
    kdf = kf["kdf"]
    kek = Scrypt(salt=base64.b64decode(kdf["salt"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
        GOLDEN_PASSPHRASE.encode())
    wrapped = base64.b64decode(kf["wrapped"])
    master = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], f"vecbackup key\0{kf['id']}\0{kf['repository']}".encode())
    enc_key, mac_key = master[:32], master[32:]

    def open_sealed(key: str) -> bytes:
        blob = (golden_store / key).read_bytes()
        assert blob[:4] == b"VBE1"
        return AESGCM(enc_key).decrypt(blob[4:16], blob[16:], b"vecbackup object\0" + key.encode())

    (manifest_path,) = (golden_store / "manifests" / "golden").iterdir()
    manifest = orjson.loads(open_sealed(f"manifests/golden/{manifest_path.name}"))
    assert manifest["backup_id"] == expected["backup_id"]
    rows = 0
    for obj in manifest["objects"]:
        plain = open_sealed(obj["key"])
        name = hmac.new(mac_key, plain, hashlib.sha256).hexdigest()
        assert obj["key"] == f"data/{name[:2]}/{name}.vbc" and obj["sha256"] == name and obj["size"] == len(plain)
        rows += decode_chunk(plain).num_rows
        assert open_sealed(f"digests/{name[:2]}/{name}.vbd")[:4] == b"VBRD"
    assert rows == len(expected["rows"]) == 90
