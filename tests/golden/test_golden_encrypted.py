"""The committed golden encrypted store (tests/golden/encrypted-v1, made by ``make_golden --encrypted``) must always
open with its passphrase and restore, whatever the code becomes; and a reader written from docs/FORMAT.md
("Encryption") alone, with nothing of vecbackup but the chunk decoder (and the schema's field types, for the row
digest recipe), opens it too."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.datasets import read_rows
from tests.golden.make_golden import GOLDEN_PASSPHRASE
from tests.unit.test_digests import reference_digest
from vecbackup.format.codec import decode_chunk
from vecbackup.schema import Field, FieldType

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
    """Everything as docs/FORMAT.md says it outright: the key file's standard base64, scrypt from the standard
    library with the documented maxmem, the ids in the wrap's associated data as text, each object's associated
    data its full store key, lower-case hex names, the chunk header's partition equal to the manifest's, and the
    stored row digests equal to the recipe's (tests/unit/test_digests.py, written from the same section)."""
    settings = orjson.loads((golden_store / "vecbackup.json").read_bytes())
    assert settings["format"] == "vecbackup-store" and settings["encryption"]["cipher"] == "AES-256-GCM"
    (key_path,) = (golden_store / "keys").iterdir()
    kf = orjson.loads(key_path.read_bytes())
    assert key_path.name == f"{kf['id']}.json" and kf["repository"] == settings["repository"]
    assert re.fullmatch("[0-9a-f]{16}", kf["id"]) and re.fullmatch("[0-9a-f]{32}", kf["repository"])
    kdf = kf["kdf"]
    n, r, p = kdf["n"], kdf["r"], kdf["p"]
    kek = hashlib.scrypt(GOLDEN_PASSPHRASE.encode(), salt=base64.b64decode(kdf["salt"], validate=True), n=n, r=r,
                         p=p, dklen=32, maxmem=128 * r * (n + p + 2))
    wrapped = base64.b64decode(kf["wrapped"], validate=True)
    master = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], f"vecbackup key\0{kf['id']}\0{kf['repository']}".encode())
    enc_key, mac_key = master[:32], master[32:]

    def open_sealed(key: str) -> bytes:
        blob = (golden_store / key).read_bytes()
        assert blob[:4] == b"VBE1"
        return AESGCM(enc_key).decrypt(blob[4:16], blob[16:], b"vecbackup object\0" + key.encode())

    (manifest_path,) = (golden_store / "manifests" / "golden").iterdir()
    manifest = orjson.loads(open_sealed(f"manifests/golden/{manifest_path.name}"))
    assert manifest["backup_id"] == expected["backup_id"]
    fields = [Field.from_dict(f) for f in manifest["collection"]["fields"]]
    if manifest["collection"]["enable_dynamic_field"]:
        fields.append(Field("$meta", FieldType.JSON))
    assert any(f.type is FieldType.ARRAY and f.element_type is FieldType.VARCHAR for f in fields)
    rows = 0
    for obj in manifest["objects"]:
        plain = open_sealed(obj["key"])  # the full store key
        name = hmac.new(mac_key, plain, hashlib.sha256).hexdigest()
        assert obj["key"] == f"data/{name[:2]}/{name}.vbc" and obj["sha256"] == name and obj["size"] == len(plain)
        (h,) = struct.unpack_from("<I", plain, 8)
        assert orjson.loads(plain[16:16 + h])["partition"] == obj["partition"]
        chunk = decode_chunk(plain)
        rows += chunk.num_rows
        vbd = open_sealed(f"digests/{name[:2]}/{name}.vbd")
        assert vbd[:4] == b"VBRD" and struct.unpack_from("<I", vbd, 8)[0] == chunk.num_rows
        assert [vbd[16 + 16 * i:32 + 16 * i] for i in range(chunk.num_rows)] == [
            reference_digest(fields, chunk, i) for i in range(chunk.num_rows)]
    assert rows == len(expected["rows"]) == 90
