"""Encrypted stores (format/crypto.py): key files and the store's settings are read from a bucket someone else may
write, and so is every sealed object. Any bytes give CorruptData or Unsupported (key files, settings) or
AuthenticationFailed (sealed objects), with a one-line message; what parses writes back to the same value; nothing
asks scrypt for more than its bounds. First byte: 0 key file, 1 settings, 2 sealed object (mod 3)."""

from __future__ import annotations

from fuzz._common import Bug, allow
from vecbackup.errors import AuthenticationFailed, CorruptData, Unsupported
from vecbackup.format.crypto import KeyFile, RepositoryKey, Scrypt1, StoreConfig

MAX_LEN = 4096
_KEY = RepositoryKey("0" * 32, bytes(32), bytes(range(32)))
_FAST = Scrypt1(b"fuzzsaltfuzzsalt", n=2**10, r=1, p=1)


def seeds() -> list[bytes]:
    kf = KeyFile.wrap(_KEY, b"pw", created="2026-12-02T00:00:00Z", label="fuzz", host="h", kdf=_FAST)
    return [b"\0" + kf.to_json(), b"\1" + StoreConfig("ab" * 16).to_json(),
            b"\2" + _KEY.seal("data/ab/x.vbc", b"hello"), b"\2" + _KEY.seal("data/ab/x.vbc", b"")]


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    if mode == 0:
        kf = allow((CorruptData, Unsupported), KeyFile.from_json, body, where="fuzzed key file")
        if kf is None:
            return
        if KeyFile.from_json(kf.to_json(), where="fuzzed key file") != kf:
            raise Bug("a key file does not read back as it was written")
        if 128 * kf.kdf.n * kf.kdf.r * kf.kdf.p > 1 << 30:
            raise Bug(f"scrypt bounds not enforced: n={kf.kdf.n} r={kf.kdf.r} p={kf.kdf.p}")
        if kf.kdf.n * kf.kdf.r * kf.kdf.p <= 2**12:  # cheap enough to try here
            opened = kf.unwrap(b"pw")
            if opened is not None and opened.repository != kf.repository:
                raise Bug("an unwrapped key belongs to another repository")
    elif mode == 1:
        c = allow((CorruptData, Unsupported), StoreConfig.from_json, body)
        if c is not None and StoreConfig.from_json(c.to_json()) != c:
            raise Bug("the store settings do not read back as they were written")
    else:
        plain = allow((AuthenticationFailed,), _KEY.open, "data/ab/x.vbc", body)
        if plain is not None and _KEY.seal("data/ab/x.vbc", plain)[:4] != body[:4]:
            raise Bug("an object opened that was not sealed the documented way")
        if _KEY.open("data/ab/x.vbc", _KEY.seal("data/ab/x.vbc", body)) != body:
            raise Bug("seal then open is not the identity")


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("crypto")
