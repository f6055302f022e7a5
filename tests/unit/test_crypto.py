"""Encryption as bytes in, bytes out (vecbackup/format/crypto.py), the passphrase sources, and the wrapper store
over a real local folder. The sealed layout is also decoded here by a reader written from docs/FORMAT.md alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
from pathlib import Path

import orjson
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vecbackup.errors import AuthenticationFailed, CorruptData, Unsupported, UsageError, WrongKey
from vecbackup.format.crypto import OVERHEAD, KeyFile, RepositoryKey, Scrypt1, StoreConfig, key_file_key
from vecbackup.format.layout import manifest_key
from vecbackup.passphrase import Passphrase
from vecbackup.stores.encrypted import EncryptedStore, open_encrypted
from vecbackup.stores.local import LocalStore

FAST = Scrypt1(b"s" * 16, n=2**10, r=8, p=1)  # a cheap work factor: these tests are about the format


def test_seal_open_round_trip_and_layout_from_the_spec():
    key = RepositoryKey.generate()
    blob = key.seal("data/ab/x.vbc", b"hello world")
    assert len(blob) == len(b"hello world") + OVERHEAD
    assert key.open("data/ab/x.vbc", blob) == b"hello world"
    # docs/FORMAT.md, "Encryption": "VBE1" | 12-byte nonce | AES-256-GCM(ciphertext || 16-byte tag), associated
    # data "vecbackup object\0" + the store key; the repository key is 32 bytes of AES key then 32 of MAC key
    raw = key.to_bytes()
    assert blob[:4] == b"VBE1"
    plain = AESGCM(raw[:32]).decrypt(blob[4:16], blob[16:], b"vecbackup object\0data/ab/x.vbc")
    assert plain == b"hello world"
    assert key.name(b"abc") == hmac.new(raw[32:], b"abc", hashlib.sha256).hexdigest()
    assert key.name(b"abc") != hashlib.sha256(b"abc").hexdigest()
    assert key.seal("k", b"same") != key.seal("k", b"same")  # a fresh nonce each time


@pytest.mark.parametrize("damage", ["flip", "truncate", "other_key", "other_store_key", "plaintext", "short"])
def test_open_detects_every_kind_of_tampering(damage):
    key = RepositoryKey.generate()
    blob = key.seal("data/ab/x.vbc", b"payload" * 100)
    name = "data/ab/x.vbc"
    if damage == "flip":
        blob = blob[:40] + bytes([blob[40] ^ 1]) + blob[41:]
    elif damage == "truncate":
        blob = blob[:-1]
    elif damage == "other_key":
        key = RepositoryKey.generate()
    elif damage == "other_store_key":  # the right bytes under another name: a swapped object
        name = "data/cd/y.vbc"
    elif damage == "plaintext":
        blob = b"VBC1" + b"payload" * 100
    else:
        blob = blob[:10]
    with pytest.raises(AuthenticationFailed) as ei:
        key.open(name, blob)
    assert ei.value.exit_code == 14 and isinstance(ei.value, CorruptData)


def test_key_file_wraps_and_unwraps_only_with_its_passphrase():
    key = RepositoryKey.generate()
    kf = KeyFile.wrap(key, b"correct horse", created="2026-12-02T00:00:00Z", label="ops", host="h", kdf=FAST)
    again = KeyFile.from_json(kf.to_json(), where=key_file_key(kf.id))
    assert again == kf
    opened = again.unwrap(b"correct horse")
    assert opened is not None and opened.to_bytes() == key.to_bytes() and opened.repository == key.repository
    assert again.unwrap(b"correct horsf") is None
    # a reader from the spec: scrypt(passphrase, salt, n, r, p) -> 32 bytes; AES-256-GCM over the 64-byte key with
    # associated data "vecbackup key\0<id>\0<repository>"
    d = orjson.loads(kf.to_json())
    kek = Scrypt(salt=base64.b64decode(d["kdf"]["salt"]), length=32, n=d["kdf"]["n"], r=d["kdf"]["r"],
                 p=d["kdf"]["p"]).derive(b"correct horse")
    wrapped = base64.b64decode(d["wrapped"])
    raw = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], f"vecbackup key\0{d['id']}\0{d['repository']}".encode())
    assert raw == key.to_bytes()


def test_scrypt_from_the_standard_library_with_the_documented_maxmem():
    """docs/FORMAT.md ("Encryption"): new key files use n=2^15, r=8, p=1; Python's hashlib.scrypt needs
    maxmem=128 * r * (n + p + 2) for them (its 32 MiB default is too little), and then derives what vecbackup
    derives."""
    doc = (Path(__file__).parents[2] / "docs" / "FORMAT.md").read_text()
    assert "`maxmem=128 * r * (n + p + 2)`" in doc and "33,557,504 bytes for the defaults" in doc
    kdf = Scrypt1(b"0123456789abcdef")
    n, r, p = kdf.n, kdf.r, kdf.p
    assert (n, r, p) == (2**15, 8, 1) and 128 * r * (n + p + 2) == 33_557_504
    assert 128 * n * r == 32 * 2**20  # "32 MiB for these"
    with pytest.raises(ValueError, match="memory limit exceeded"):
        hashlib.scrypt(b"pw", salt=kdf.salt, n=n, r=r, p=p, dklen=32)
    with pytest.raises(ValueError, match="memory limit exceeded"):  # the formula is the least that works
        hashlib.scrypt(b"pw", salt=kdf.salt, n=n, r=r, p=p, dklen=32, maxmem=128 * r * (n + p + 2) - 1)
    got = hashlib.scrypt("pässword".encode(), salt=kdf.salt, n=n, r=r, p=p, dklen=32, maxmem=128 * r * (n + p + 2))
    assert got == kdf.derive("pässword".encode())


def test_key_wrap_associated_data_holds_the_ids_as_text():
    """The wrap's associated data is "vecbackup key" NUL <id> NUL <repository> with the ids as their hex
    characters, not the bytes they spell; and the key file's base64 is the standard alphabet with padding."""
    key = RepositoryKey.generate()
    kf = KeyFile.wrap(key, b"pw", created="c", kdf=FAST)
    d = orjson.loads(kf.to_json())
    assert d["id"] == d["id"].lower() and d["repository"] == d["repository"].lower()
    wrapped = base64.b64decode(d["wrapped"], validate=True)
    assert len(d["wrapped"]) == 4 * -(-len(wrapped) // 3)  # padded
    kek = FAST.derive(b"pw")
    as_text = b"vecbackup key\0" + d["id"].encode("ascii") + b"\0" + d["repository"].encode("ascii")
    assert AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], as_text) == key.to_bytes()
    as_bytes = b"vecbackup key\0" + bytes.fromhex(d["id"]) + b"\0" + bytes.fromhex(d["repository"])
    with pytest.raises(InvalidTag):
        AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], as_bytes)
    for other in (d["wrapped"].replace("+", "-").replace("/", "_"), d["wrapped"].rstrip("=")):
        if other != d["wrapped"]:  # the URL-safe alphabet, or no padding: refused
            with pytest.raises(CorruptData):
                KeyFile.from_json(orjson.dumps({**d, "wrapped": other}), where="the key file under test")
    with pytest.raises(CorruptData):  # upper-case hex is not an id
        KeyFile.from_json(orjson.dumps({**d, "id": d["id"].upper()}), where="the key file under test")


def test_no_secret_in_repr_or_listing():
    key = RepositoryKey.generate()
    kf = KeyFile.wrap(key, b"pw", created="c", kdf=FAST)
    texts = [repr(key), repr(kf), str(kf.to_dict()), repr(Passphrase("hunter2")), repr(FAST)]
    for secret in (key.to_bytes()[:32].hex(), key.to_bytes()[32:].hex(), "hunter2",
                   base64.b64encode(kf.wrapped).decode(), base64.b64encode(FAST.salt).decode()):
        assert not any(secret in t for t in texts)


def _key_json(**changes: object) -> bytes:
    kf = KeyFile.wrap(RepositoryKey.generate(), b"pw", created="c", kdf=FAST)
    d = orjson.loads(kf.to_json())
    for k, v in changes.items():
        if k.startswith("kdf_"):
            d["kdf"][k[4:]] = v
        else:
            d[k] = v
    return orjson.dumps(d)


@pytest.mark.parametrize(("changes", "error"), [
    ({"kdf_n": 2**40}, CorruptData),  # would allocate terabytes
    ({"kdf_n": 3000}, CorruptData),  # not a power of two
    ({"kdf_r": 10**6}, CorruptData),
    ({"kdf_p": 0}, CorruptData),
    ({"kdf_n": True}, CorruptData),
    ({"kdf_salt": "!!"}, CorruptData),
    ({"kdf_name": "argon2id"}, Unsupported),
    ({"wrapped": "QUJD"}, CorruptData),
    ({"id": "../../etc"}, CorruptData),
    ({"repository": "x"}, CorruptData),
    ({"label": "x" * 1000}, CorruptData),
    ({"version": 2}, Unsupported),
    ({"format": "other"}, CorruptData),
])
def test_hostile_key_files_are_refused(changes, error):
    with pytest.raises(error):
        KeyFile.from_json(_key_json(**changes), where="the key file under test")


def test_key_file_must_be_named_by_its_id():
    data = _key_json()
    kid = orjson.loads(data)["id"]
    KeyFile.from_json(data, where=f"keys/{kid}.json")
    with pytest.raises(CorruptData):
        KeyFile.from_json(data, where="keys/0000000000000000.json")


def test_store_config_round_trip_and_refusals():
    c = StoreConfig("ab" * 16)
    assert StoreConfig.from_json(c.to_json()) == c
    d = orjson.loads(c.to_json())
    d["encryption"]["cipher"] = "ChaCha20"
    with pytest.raises(Unsupported):
        StoreConfig.from_json(orjson.dumps(d))
    with pytest.raises(CorruptData):
        StoreConfig.from_json(b"[]")


# -- where the passphrase comes from --------------------------------------------------------------------------


def test_passphrase_sources(tmp_path):
    f = tmp_path / "pw"
    f.write_bytes(b"from file\n")
    assert Passphrase(file=str(f)).secret() == b"from file"
    f.write_bytes(b"keeps inner\nnewlines\r\n")
    assert Passphrase(file=str(f)).secret() == b"keeps inner\nnewlines"
    assert Passphrase("v").secret() == b"v"
    cmd = f"{sys.executable} -c \"print('from command')\""
    assert Passphrase(command=cmd).secret() == b"from command"
    env = {"VECBACKUP_PASSPHRASE": "e", "VECBACKUP_KEY_COMMAND": "x"}
    with pytest.raises(UsageError, match="2 ways"):
        Passphrase.from_env(environ=env).secret()
    assert not Passphrase.from_env(environ={}).given


def test_passphrase_source_failures_name_the_source_not_the_secret(tmp_path):
    with pytest.raises(UsageError, match="cannot read passphrase file"):
        Passphrase(file=str(tmp_path / "missing")).secret()
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(UsageError, match="empty"):
        Passphrase(file=str(tmp_path / "empty")).secret()
    failing = f"{sys.executable} -c \"print('half-a-secret'); raise SystemExit(3)\""
    with pytest.raises(WrongKey) as ei:
        Passphrase(command=failing).secret()
    assert "exit status 3" in str(ei.value) and "half-a-secret" not in str(ei.value)
    with pytest.raises(UsageError, match="not found"):
        Passphrase(command="/nonexistent/vault read").secret()
    with pytest.raises(WrongKey):
        Passphrase().secret()


# -- the wrapper over a real folder ---------------------------------------------------------------------------


def _encrypted_folder(tmp_path) -> tuple[LocalStore, EncryptedStore]:
    raw = LocalStore(tmp_path / "s", create=True)
    key = RepositoryKey.generate()
    kf = KeyFile.wrap(key, b"pw", created="c", kdf=FAST)
    raw.put(kf.store_key, kf.to_json())
    raw.put("vecbackup.json", StoreConfig(key.repository).to_json())
    store = open_encrypted(raw, Passphrase("pw"))
    assert isinstance(store, EncryptedStore)
    return raw, store


def test_the_messages_of_a_wrong_passphrase_and_of_removing_the_key_in_use_are_one_sentence(tmp_path):
    """Issue 23: what is wrong and how to fix it, without brackets in brackets."""
    from vecbackup.ops.keys import remove_key
    from vecbackup.words import cli_words

    raw, store = _encrypted_folder(tmp_path)
    with cli_words(), pytest.raises(WrongKey) as e:
        open_encrypted(raw, Passphrase("nope"))
    assert str(e.value) == (f"the passphrase does not open encrypted store {raw.display}, whose key file takes "
                            "another: give the passphrase the store was created with, or one added with "
                            "`vecbackup key add`")
    with cli_words(), pytest.raises(UsageError) as u:
        remove_key(store, store.key_id)
    assert str(u.value) == (f"key {store.key_id} is the one this run opened the store with, and is not removed (it "
                            "is the store's only key: add another first with `vecbackup key add`)")
    with pytest.raises(UsageError) as u:
        remove_key(store, store.key_id)
    assert str(u.value).endswith("add another first with add_key())")


def test_wrapper_seals_below_and_looks_plain_above(tmp_path):
    raw, store = _encrypted_folder(tmp_path)
    store.put("data/ab/x", b"0123456789")
    assert raw.get("data/ab/x").startswith(b"VBE1") and b"0123456789" not in raw.get("data/ab/x")
    assert store.get("data/ab/x") == b"0123456789"
    assert store.get("data/ab/x", offset=2, length=3) == b"234"
    assert store.stat("data/ab/x").size == 10 and raw.stat("data/ab/x").size == 10 + OVERHEAD
    assert {i.key: i.size for i in store.list("data/")} == {"data/ab/x": 10}
    raw.put("data/ab/y", raw.get("data/ab/x"))  # the same sealed bytes under another name
    with pytest.raises(AuthenticationFailed):
        store.get("data/ab/y")


def test_a_manifests_associated_data_is_its_escaped_key(tmp_path):
    """docs/FORMAT.md, "Encryption": the associated data is the object's key as stored, the collection name escaped
    (``manifests/my%20docs/...``), not the name itself."""
    raw, store = _encrypted_folder(tmp_path)
    key = manifest_key("my docs", "20261201T021500.123456Z-9f3a0c1e")
    assert key == "manifests/my%20docs/20261201T021500.123456Z-9f3a0c1e.json"
    store.put(key, b"{}")
    sealed = raw.get(key)
    enc = store.repository_key.to_bytes()[:32]  # to decrypt by the spec
    assert AESGCM(enc).decrypt(sealed[4:16], sealed[16:], b"vecbackup object\0" + key.encode()) == b"{}"
    with pytest.raises(InvalidTag):
        AESGCM(enc).decrypt(sealed[4:16], sealed[16:], b"vecbackup object\0manifests/my docs/"
                            b"20261201T021500.123456Z-9f3a0c1e.json")


def test_wrong_or_missing_passphrase_and_foreign_key_files(tmp_path):
    raw, _ = _encrypted_folder(tmp_path)
    with pytest.raises(WrongKey, match=r"does not open encrypted store .*, whose key file takes another"):
        open_encrypted(raw, Passphrase("nope"))
    with pytest.raises(WrongKey, match="is encrypted"):
        open_encrypted(raw, Passphrase())
    # a key file of another store, with a passphrase we know, does not open this one
    other = KeyFile.wrap(RepositoryKey.generate(), b"mine", created="d", kdf=FAST)
    raw.put(other.store_key, other.to_json())
    with pytest.raises(WrongKey):
        open_encrypted(raw, Passphrase("mine"))


def test_unencrypted_store_with_a_passphrase_is_refused_unless_asked(tmp_path):
    raw = LocalStore(tmp_path / "plain", create=True)
    raw.put("manifests/x", b"old")
    with pytest.raises(UsageError, match="not encrypted, but a passphrase was given"):
        open_encrypted(raw, Passphrase("pw"))
    assert open_encrypted(raw, Passphrase("pw"), allow_unencrypted=True) is raw
    assert open_encrypted(raw, Passphrase()) is raw
