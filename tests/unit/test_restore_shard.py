"""The pure parts of a restore by several workers (ops/restore_shard.py): the names a run uses, which objects a
worker inserts, reading the markers, the delete filters of a re-run; and the command line's refusals, which come
before anything is opened."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecbackup.engines.milvus.sink import key_filters, name_problem
from vecbackup.errors import UsageError
from vecbackup.format.manifest import DataObject
from vecbackup.format.shard import Shard
from vecbackup.ops.restore_shard import assigned, pinned, run_names
from vecbackup.words import cli_words


def _objects(n: int) -> list[DataObject]:
    return [DataObject(key=f"data/{i:02x}/{i:062x}.vbc", partition="_default", rows=i + 1, size=10, sha256="0" * 64)
            for i in range(n)]


@given(st.integers(0, 60), st.integers(1, 9))
def test_the_workers_insert_every_object_once(objects: int, n: int) -> None:
    objs = _objects(objects)
    shares = [assigned(objs, Shard(i, n)) for i in range(n)]
    assert sorted(o.key for share in shares for o in share) == sorted(o.key for o in objs)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced by object count


def test_run_names_are_the_same_for_every_worker_and_differ_between_runs_backups_and_targets() -> None:
    a = run_names("articles", "nightly-1", "B1")
    assert a == run_names("articles", "nightly-1", "B1")
    others = [run_names("articles", "nightly-2", "B1"), run_names("articles", "nightly-1", "B2"),
              run_names("articles_dr", "nightly-1", "B1")]
    assert len({a.staging, *(o.staging for o in others)}) == 4
    assert len({a.prefix, *(o.prefix for o in others)}) == 4
    for name in (a.staging, a.committing, a.started(Shard(3, 4)), a.done(Shard(3, 4))):
        assert name_problem(name) is None  # a valid Milvus collection / alias name
    long = run_names("x" * 255, "r" * 128, "B")
    assert name_problem(long.staging) is None and name_problem(long.committing) is None


def test_bad_run_ids_are_refused() -> None:
    for run in ("", "-x", "a b", "x" * 129, "../x"):
        with pytest.raises(UsageError, match="run="):
            run_names("t", run, "B")
        with cli_words(), pytest.raises(UsageError, match="--run"):
            run_names("t", run, "B")


def test_markers_name_the_done_workers_and_refuse_mixed_counts() -> None:
    names = run_names("t", "r", "B")
    other = run_names("t", "r2", "B")
    markers = {names.started(Shard(0, 3)), names.done(Shard(0, 3)), names.started(Shard(2, 3)),
               other.done(Shard(1, 3)), "user_alias"}
    assert names.done_shards(markers) == (3, {0})
    assert names.done_shards({"user_alias"}) == (None, set())
    with pytest.raises(UsageError, match=r"different N \(2, 3\)"):
        names.done_shards(markers | {names.done(Shard(1, 2))})


def test_latest_is_refused_for_a_run() -> None:
    with pytest.raises(UsageError, match="needs backup=ID"):
        pinned("latest")
    with cli_words(), pytest.raises(UsageError, match="needs --backup ID"):
        pinned("latest")
    assert pinned("20261201T000000Z-abc") == "20261201T000000Z-abc"


_KEYS = st.one_of(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=200, unique=True),
                  st.lists(st.text(max_size=40), max_size=200, unique=True))


@given(_KEYS, st.integers(30, 400))
def test_key_filters_name_every_key_once_within_the_limit(keys: list[object], max_chars: int) -> None:
    filters = key_filters("pk", keys, max_chars=max_chars)
    back: list[object] = []
    for f in filters:
        m = re.fullmatch(r"pk in (\[.*\])", f, flags=re.S)
        assert m, f
        part = orjson.loads(m.group(1))
        assert part  # no empty filter
        assert len(f) <= max_chars or len(part) == 1  # one key longer than the limit goes on its own
        back.extend(part)
    assert back == keys


def test_options_of_a_run_that_do_not_fit_together_are_refused_before_anything_is_opened(cli, tmp_path) -> None:
    store, target = tmp_path / "nothing-here", "milvus-lite:///nonexistent/x.db"
    cases = [
        (("--shard", "0/2"), "--shard needs --run"),
        (("--commit",), "--commit needs --run"),
        (("--abandon",), "--abandon needs --run"),
        (("--run", "r"), "--run needs --shard I/N"),
        (("--run", "r", "--abandon", "--commit"), "takes neither --shard nor --commit"),
        (("--run", "r", "--shard", "2/2"), "out of range"),
        (("--run", "r", "--shard", "x"), "is not I/N"),
        (("--run", "r", "--shard", "0/2"), "needs --backup ID, not latest"),
        (("--run", "a b", "--shard", "0/2", "--backup", "B"), "not a valid run id"),
        (("--run", "r", "--commit", "--dry-run"), "takes no --commit"),
    ]
    for args, message in cases:
        r = cli("restore", store, target, *args)
        assert r.code == 2, (args, r.stderr)
        assert message in r.error_line(), args
        assert not store.exists()
