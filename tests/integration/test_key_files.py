"""Key files someone who can write the store planted, to slow every command down (issue 20, finding 6): they are
tried after ours when they cost more, the search is bounded in key files and in scrypt work, a search stopped by a
bound fails with exit 13 naming --key-id, and --key-id (VECBACKUP_KEY_ID, a job's key_id) tries only the key file it
names. Real scrypt, real stores; what is derived is counted, never timed."""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest

from vecbackup.errors import WrongKey
from vecbackup.format.crypto import SCRYPT_N, SCRYPT_P, SCRYPT_R, SCRYPT_WORK, KeyFile, Scrypt1, StoreConfig
from vecbackup.passphrase import Passphrase
from vecbackup.stores import open_raw_store, open_store
from vecbackup.stores.encrypted import MAX_KEY_FILES, SCRYPT_BUDGET, EncryptedStore

PASSPHRASE = "correct horse battery staple, twice over"
NOKEY = WrongKey.exit_code  # 13
OURS = (SCRYPT_N, SCRYPT_R, SCRYPT_P)
GIB = (2**20, 8, 1)  # the most a key file read from a store may ask for: 1 GiB of memory, 32 times our work


class Derivations:
    """Every scrypt run, in order, as (n, r, p): real ones, except that a key file planted at 1 GiB is not run (it
    can open nothing; a regression would only be slower) and is recorded all the same."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[int, int, int]] = []
        real = Scrypt1.derive

        def derive(kdf: Scrypt1, secret: bytes) -> bytes:
            self.seen.append((kdf.n, kdf.r, kdf.p))
            return bytes(32) if (kdf.n, kdf.r, kdf.p) == GIB else real(kdf, secret)

        monkeypatch.setattr(Scrypt1, "derive", derive)

    @property
    def work(self) -> int:
        return sum(n * r * p for n, r, p in self.seen)


def _repository(raw: Any) -> str:
    return StoreConfig.from_json(raw.get("vecbackup.json")).repository


def _plant(raw: Any, n: int, r: int, p: int, *, created: str = "9999-12-31T23:59:59Z", key_id: str | None = None,
           ) -> str:
    """A key file of the store's repository that no passphrase opens (random bytes as its wrapped key), asking for
    scrypt (n, r, p), claiming to be the newest."""
    kid = key_id or secrets.token_hex(8)
    kf = KeyFile(kid, _repository(raw), created, Scrypt1(secrets.token_bytes(16), n, r, p),
                 secrets.token_bytes(12 + 64 + 16), label="backup key (rotated)", host="ops")
    raw.put(kf.store_key, kf.to_json(), if_absent=True)
    return kid


def _init(cli: Any, url: str) -> str:
    r = cli("init", url, "--encrypt", "--json")
    assert r.code == 0, r.stderr
    return str(r.json()["key"]["id"])


def test_planted_costly_key_files_never_delay_ours(cli, any_store, monkeypatch):
    """Three planted key files at 1 GiB of scrypt each, the newest by their `created` (what made `list` take 25 s):
    ours is the only key file derived, once per command, on every store."""
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    ours = _init(cli, any_store.url)
    raw = open_raw_store(any_store.url)
    planted = [_plant(raw, *GIB) for _ in range(3)]
    derived = Derivations(monkeypatch)
    for args in (("list", any_store.url), ("key", "list", any_store.url, "--json")):
        r = cli(*args)
        assert r.code == 0, r.stderr
    assert derived.seen == [OURS, OURS]
    keys = r.json()["keys"]
    assert {k["id"] for k in keys} == {ours, *planted} and [k["id"] for k in keys if k["current"]] == [ours]


def test_the_search_is_bounded_and_a_stopped_one_names_key_id(cli, tmp_path, monkeypatch):
    """Key files a little cheaper than ours, tried before it: the search stops within SCRYPT_BUDGET and says so
    (exit 13, naming --key-id); --key-id and VECBACKUP_KEY_ID then open the store with one derivation."""
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    ours = _init(cli, url)
    raw = open_raw_store(url)
    cheaper = (SCRYPT_N, SCRYPT_R - 1, SCRYPT_P)  # 7/8 of our work: 19 of them are more than the budget
    for _ in range(MAX_KEY_FILES - 1):
        _plant(raw, *cheaper)
    derived = Derivations(monkeypatch)
    r = cli("list", url)
    assert r.code == NOKEY
    line = r.error_line()
    tried = SCRYPT_BUDGET // (cheaper[0] * cheaper[1] * cheaper[2])
    assert f"opens none of the {tried} key files tried of the {MAX_KEY_FILES} in" in line, line
    assert "--key-id" in r.stderr and "VECBACKUP_KEY_ID" in r.stderr and PASSPHRASE not in r.stderr
    assert derived.seen == [cheaper] * tried and derived.work <= SCRYPT_BUDGET

    derived.seen.clear()
    r = cli("key", "list", url, "--key-id", ours[:6], "--json")
    assert r.code == 0, r.stderr
    assert [k["id"] for k in r.json()["keys"] if k["current"]] == [ours] and len(r.json()["keys"]) == MAX_KEY_FILES
    monkeypatch.setenv("VECBACKUP_KEY_ID", ours.upper())
    assert cli("list", url).code == 0
    assert derived.seen == [OURS, OURS]


def test_the_key_files_read_are_bounded_too(cli, tmp_path, monkeypatch):
    """More key files than MAX_KEY_FILES, all older than ours by the store's clock: only MAX_KEY_FILES are read, so
    ours is not among them, and the error says how many the store holds."""
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    ours = _init(cli, url)
    raw = open_raw_store(url)
    keys = tmp_path / "store" / "keys"
    for i in range(MAX_KEY_FILES + 5):
        kid = _plant(raw, 2**10, 1, 1)  # as cheap as a key file may be
        os.utime(keys / f"{kid}.json", (1_000_000 + i, 1_000_000 + i))
    derived = Derivations(monkeypatch)
    r = cli("list", url)
    assert r.code == NOKEY and "--key-id" in r.stderr
    assert f"opens none of the {MAX_KEY_FILES} key files tried of the {MAX_KEY_FILES + 6} in" in r.error_line()
    assert derived.seen == [(2**10, 1, 1)] * MAX_KEY_FILES
    assert cli("list", url, "--key-id", ours).code == 0


def test_key_id_errors(cli, tmp_path, monkeypatch):
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    ours = _init(cli, url)
    raw = open_raw_store(url)
    twin = _plant(raw, *OURS, key_id=ours[:4] + ("0" * 12 if ours[4:] != "0" * 12 else "1" * 12))
    r = cli("list", url, "--key-id", ours[:4])
    assert r.code == 2 and "matches 2 key files" in r.error_line()
    r = cli("list", url, "--key-id", twin)  # exists, but our passphrase does not open it
    assert r.code == NOKEY and f"does not open key file {twin}" in r.error_line()
    r = cli("list", url, "--key-id", "f" * 16 if not ours.startswith("f") else "e" * 16)
    assert r.code == NOKEY and "no key file of" in r.error_line()
    r = cli("list", url, "--key-id", "not-hex")
    assert r.code == 2 and "is not a key id" in r.error_line()
    assert cli("list", url, "--key-id", ours).code == 0


def test_the_api_and_a_scheduled_job_take_the_key_id(cli, lite, tmp_path, monkeypatch):
    """`Passphrase(key_id=...)` in the API, `key_id` in a [[jobs]] table: only that key file is derived."""
    from tests.datasets import build_vector_only

    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("VECBACKUP_PASSPHRASE", PASSPHRASE)
    ours = _init(cli, url)
    for _ in range(3):
        _plant(open_raw_store(url), SCRYPT_N // 2, SCRYPT_R, SCRYPT_P)  # cheaper: tried first without a hint
    monkeypatch.delenv("VECBACKUP_PASSPHRASE")
    derived = Derivations(monkeypatch)
    store = open_store(url, passphrase=Passphrase(PASSPHRASE, key_id=ours[:8]))
    assert isinstance(store, EncryptedStore) and store.key_id == ours and derived.seen == [OURS]

    name = lite.new_name("job")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=50)
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(f'[[jobs]]\nname = "enc"\nsource = "{lite.url}"\nstore = "{url}"\ncollections = ["{name}"]\n'
                        f'every = "6h"\npassphrase_file = "{pw}"\nkey_id = "{ours}"\n')
    derived.seen.clear()
    r = cli("schedule", schedule, "--once", "--json")
    assert r.code == 0, r.stderr
    assert derived.seen and set(derived.seen) == {OURS}
    assert SCRYPT_WORK * 16 == SCRYPT_BUDGET  # the budget the docs state
