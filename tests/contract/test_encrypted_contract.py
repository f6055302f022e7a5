"""The store contract again, through the encryption wrapper over every real store: above EncryptedStore a store
must behave exactly as the contract says (sizes are the plaintext's, ranges are of the plaintext, conditional
creates still have one winner), or the operations above it would not work on encrypted stores."""

from __future__ import annotations

import pytest

from tests.contract.test_store_contract import (  # noqa: F401  (collected here with this module's `store`)
    test_conditional_create,
    test_conditional_create_race_has_one_winner,
    test_delete,
    test_empty_and_binary_objects,
    test_large_object,
    test_list_prefix_order_and_nesting,
    test_missing_objects,
    test_put_get_overwrite,
    test_ranges,
    test_real_layout_keys,
    test_stat_time_is_recent,
)
from vecbackup.format.crypto import OVERHEAD, STORE_CONFIG, KeyFile, RepositoryKey, Scrypt1, StoreConfig
from vecbackup.passphrase import Passphrase
from vecbackup.stores.base import BlobStore
from vecbackup.stores.encrypted import EncryptedStore, open_encrypted


@pytest.fixture
def store(any_store) -> BlobStore:
    raw = any_store.open()
    key = RepositoryKey.generate()
    kf = KeyFile.wrap(key, b"contract", created="2026-12-02T00:00:00Z", kdf=Scrypt1(b"salt" * 4, n=2**10))
    raw.put(kf.store_key, kf.to_json())
    raw.put(STORE_CONFIG, StoreConfig(key.repository).to_json())
    opened = open_encrypted(raw, Passphrase("contract"))
    assert isinstance(opened, EncryptedStore)
    return _WithoutSettings(opened)


class _WithoutSettings:
    """The encrypted store minus its settings and key files in listings of everything (the contract lists the
    whole store and expects only what it wrote); and a check that what lies below is sealed."""

    def __init__(self, inner: EncryptedStore) -> None:
        self.inner = inner
        self.display = inner.display

    def put(self, key, data, *, if_absent=False):
        self.inner.put(key, data, if_absent=if_absent)
        assert self.inner.inner.stat(key).size == len(data) + OVERHEAD

    def get(self, key, *, offset=0, length=None):
        return self.inner.get(key, offset=offset, length=length)

    def stat(self, key):
        return self.inner.stat(key)

    def list(self, prefix=""):
        return (i for i in self.inner.list(prefix) if i.key != STORE_CONFIG and not i.key.startswith("keys/"))

    def delete(self, key):
        self.inner.delete(key)
