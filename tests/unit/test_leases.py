"""The lease a restore keeps on its collection (format/lease.py), whether its owner still runs (ops/leases.py), and
what gc does with a collection given its lease (ops/leftovers.judge): worked cases, each of which a wrong rule
would get wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from vecbackup.format.lease import LEASE_KEY, SKEW_MARGIN, TTL, Lease, Owner, UnreadableLease, parse_lease, staging_kind
from vecbackup.ops.leases import new_lease, owner_alive, this_owner
from vecbackup.ops.leftovers import CLEAR, DROP, KEEP, judge

NOW = 1_800_000_000.0
ELSEWHERE = Owner(host="dr-2", pid=77, boot="other-boot", pidns="pid:[4026531836]", start="123")


def _lease(**kw: Any) -> Lease:
    base: dict[str, Any] = {"kind": "restore", "state": "filling", "target": "fxr", "collection": "fxr",
                            "backup_id": "20261122T021500Z-ab12", "owner": ELSEWHERE, "lease_id": "00ff" * 4,
                            "created": NOW - 1000, "expires": NOW + 100}
    base.update(kw)
    return Lease(**base)


def test_a_lease_round_trips_through_its_json_and_documents_every_field() -> None:
    assert LEASE_KEY == "vecbackup.lease"  # docs/FORMAT.md; the integration tests write it literally
    lease = _lease(run=None)
    text = lease.to_json()
    assert parse_lease(text) == lease
    assert set(orjson.loads(text)) == {"v", "kind", "state", "target", "collection", "backup_id", "run", "host",
                                       "pid", "boot", "pidns", "start", "lease_id", "created", "expires"}
    run = _lease(kind="run", run="nightly", expires=None)
    assert parse_lease(run.to_json()) == run
    assert run.renewed(NOW).expires is None and lease.renewed(NOW).expires == NOW + TTL


@pytest.mark.parametrize("value", [None, ""])
def test_no_value_and_an_emptied_one_are_no_lease(value: str | None) -> None:
    assert parse_lease(value) is None  # a 2.3 server cannot remove a property: a cleared lease is ""


@pytest.mark.parametrize("value", ["junk", "[]", '{"v": 2}', orjson.dumps({**orjson.loads(_lease().to_json()),
                                                                           "kind": "backup"}).decode(),
                                   orjson.dumps({**orjson.loads(_lease().to_json()), "expires": None}).decode(),
                                   orjson.dumps({**orjson.loads(_lease().to_json()), "pid": "x"}).decode()])
def test_anything_else_is_unreadable(value: str) -> None:
    with pytest.raises(UnreadableLease):
        parse_lease(value)


def test_staging_names() -> None:
    assert staging_kind("fxr_vbrestore_29f1feb7") == "restore"
    assert staging_kind("fxr_drill_0a1b2c3d") == "drill"
    assert staging_kind("fxr_vbrun_0123456789ab") == staging_kind("fxr_vbcommit_0123456789ab") == "run"
    for name in ("fxr", "fxr_vbrestore_29f1feb", "fxr_vbrestore_29F1FEB7", "fxr_vbrestore_29f1feb7_old"):
        assert staging_kind(name) is None


def test_owner_liveness_on_this_machine() -> None:
    me = this_owner()
    if not me.boot:
        pytest.skip("no /proc here: only the expiry decides")
    assert me.pid == os.getpid() and owner_alive(me) is True
    out = subprocess.run([sys.executable, "-c", "import dataclasses, orjson; from vecbackup.ops.leases import "
                          "this_owner; print(orjson.dumps(dataclasses.asdict(this_owner())).decode())"],
                         check=True, capture_output=True, text=True).stdout
    gone = Owner(**orjson.loads(out))
    assert gone.boot == me.boot and gone.pidns == me.pidns and owner_alive(gone) is False
    assert owner_alive(Owner(me.host, me.pid, me.boot, me.pidns, str(int(me.start) + 1))) is False  # pid reused
    assert owner_alive(Owner(me.host, me.pid, "another-boot", me.pidns, me.start)) is None  # another machine
    assert owner_alive(Owner(me.host, me.pid, me.boot, "pid:[1]", me.start)) is None  # another container's pids
    assert owner_alive(Owner(me.host, me.pid)) is None  # written where there is no /proc


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def test_a_process_that_exited_but_was_not_reaped_is_gone() -> None:
    me = this_owner()
    if not me.boot:
        pytest.skip("no /proc here: only the expiry decides")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    try:
        owner = Owner(me.host, child.pid, me.boot, me.pidns, _stat(child.pid)[19])
        assert owner_alive(owner) is True
        deadline = time.monotonic() + 30
        while _stat(child.pid)[0] != "Z":  # exited, not reaped
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert owner_alive(owner) is False
    finally:
        child.wait()
    assert owner_alive(owner) is False  # reaped: no such process


def test_a_new_lease_is_this_process_filling() -> None:
    lease = new_lease("drill", "x_drill_00000000", "x", "B", now=NOW)
    assert (lease.kind, lease.state, lease.expires, lease.owner.pid) == ("drill", "filling", NOW + TTL, os.getpid())


def _judge(name: str, lease: Lease | str | None, *, alive: bool | None = None, exists: dict[str, str] | None = None,
           superseded: bool = False, now: float = NOW) -> tuple[str, str] | None:
    value = lease.to_json() if isinstance(lease, Lease) else lease
    v = judge(name, value, now, alive=lambda o: alive, resolve=lambda n: (exists or {}).get(n),
              superseded=superseded)
    return None if v is None else (v.action, v.reason)


def _action(*args: Any, **kw: Any) -> str | None:
    v = _judge(*args, **kw)
    return None if v is None else v[0]


def test_the_lease_decides_never_the_name() -> None:
    assert _judge("fxr", None) is None  # an ordinary collection: not shown
    assert _action("fxr_vbrestore_29f1feb7", None) == KEEP  # named like one, no lease: shown, never dropped
    assert _action("fxr_vbrestore_29f1feb7", "") == KEEP
    assert _action("reports", _lease(target="reports", expires=NOW - 3600)) == DROP  # any name, a dead lease
    assert _action("fxr_vbrestore_29f1feb7", "garbage") == KEEP  # a lease we cannot read is never acted on


def test_expiry_with_the_margin_for_clock_skew_decides_for_another_machine() -> None:
    name = "fxr_vbrestore_29f1feb7"
    assert _action(name, _lease(expires=NOW + 1)) == KEEP
    assert _action(name, _lease(expires=NOW - 1)) == KEEP  # ran out, but that clock may be behind ours
    assert _action(name, _lease(expires=NOW - SKEW_MARGIN)) == KEEP
    assert _action(name, _lease(expires=NOW - SKEW_MARGIN - 1)) == DROP


def test_a_known_owner_decides_on_this_machine_whatever_the_expiry() -> None:
    name = "fxr_vbrestore_29f1feb7"
    assert _action(name, _lease(expires=NOW + 3600), alive=False) == DROP  # gone: no need to wait
    running = _judge(name, _lease(expires=NOW - 3600), alive=True)  # a restore stalled past its lease: its own
    assert running == (KEEP, "a restore into 'fxr' is running (pid 77 on dr-2)")


def test_runs_of_several_workers_are_kept_and_say_how_to_give_them_up() -> None:
    run = _lease(kind="run", run="nightly", expires=None, target="fxr")
    v = _judge("fxr_vbrun_0123456789ab", run, alive=False)
    assert v is not None and v[0] == KEEP and "--backup 20261122T021500Z-ab12 --as fxr --run nightly --abandon" in v[1]
    assert _action("fxr_vbcommit_0123456789ab", None) == KEEP


def test_dead_leases_by_kind_and_state() -> None:
    dead = {"alive": False}
    # a drill's scratch collection is never anyone's: dropped in any state, under any name
    assert _action("x_drill_0a1b2c3d", _lease(kind="drill", target="x_drill_0a1b2c3d", state="complete"),
                   **dead) == DROP
    # filling: half a copy, under a staging name or (Qdrant) the target's own
    assert _judge("fxr", _lease(), **dead) == (DROP, "left half-filled by a restore into 'fxr' that died (pid 77 on "
                                                     "dr-2 is gone)")
    assert _action("fxr_vbrestore_29f1feb7", _lease(), **dead) == DROP
    complete = _lease(state="complete")
    # complete and under the target's name (killed between the rename and clearing its lease): the restore's result
    assert _action("fxr", complete, **dead) == CLEAR
    # Qdrant: the target name is an alias of the staging collection
    assert _action("fxr_vbrestore_29f1feb7", complete, exists={"fxr": "fxr_vbrestore_29f1feb7"}, **dead) == CLEAR
    # complete, not yet in place, the target as it was: dropped
    assert _action("fxr_vbrestore_29f1feb7", complete, exists={"fxr": "fxr"}, **dead) == DROP
    # complete, the old target dropped, the rename never came: the only copy, kept and explained
    v = _judge("fxr_vbrestore_29f1feb7", complete, **dead)
    assert v is not None and v[0] == KEEP and v[1].startswith("the only copy of 'fxr'")
    # ... unless a restore into that target is starting: it replaces it
    assert _action("fxr_vbrestore_29f1feb7", complete, superseded=True, **dead) == DROP
