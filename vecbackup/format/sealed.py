"""What a sealed object looks like from outside, without the means to open it (docs/FORMAT.md, "Encryption"). Pure.

Every object of an encrypted store but its settings and key files starts with ``VBE1``. A reader that meets one in a
store it opened as unencrypted refuses it (:func:`refuse_sealed`) instead of reporting it as damaged: the store's
settings file was removed, and nothing may be read or written there in the clear.
"""

from __future__ import annotations

from vecbackup.errors import AuthenticationFailed

SEALED_MAGIC = b"VBE1"

#: where docs/OPERATIONS.md says how to give an encrypted store whose settings were removed its settings back
RECOVER_HINT = ("vecbackup.json was removed: `vecbackup init STORE --encrypt --recover` writes it again from a key "
                "file the passphrase opens (docs/OPERATIONS.md, \"An encrypted store without its settings\")")


def is_sealed(data: bytes) -> bool:
    return data[:len(SEALED_MAGIC)] == SEALED_MAGIC


def refuse_sealed(data: bytes, where: str) -> None:
    """AuthenticationFailed if ``data`` is a sealed object: ``where`` is read from a store opened as unencrypted."""
    if is_sealed(data):
        raise AuthenticationFailed(f"{where} is encrypted, but the store has no settings file saying it is an "
                                   "encrypted store; nothing is read or written there in the clear",
                                   hint=RECOVER_HINT)


__all__ = ["RECOVER_HINT", "SEALED_MAGIC", "is_sealed", "refuse_sealed"]
