"""``undelete --as-of TIME``: bring back what was deleted from a versioned store since TIME (stores/versions.py
plans it: the delete markers written since over what the store held then are removed, and the tombstones written
since are deleted), under an exclusive store lock, as gc and prune run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vecbackup.errors import Unsupported
from vecbackup.stores.base import BlobStore
from vecbackup.stores.versions import ObjectVersion, check_versioning, plan_undelete, versioned
from vecbackup.times import iso_z


@dataclass
class UndeleteResult:
    as_of: str
    dry_run: bool
    restored: list[str] = field(default_factory=list)  # keys current again (or, with dry_run, that would be)
    markers_removed: int = 0
    tombstones_deleted: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)  # rewritten since: left as they are
    skipped: list[str] = field(default_factory=list)  # store locks: never brought back

    def to_dict(self) -> dict[str, object]:
        return {"as_of": self.as_of, "dry_run": self.dry_run, "restored": self.restored,
                "markers_removed": self.markers_removed, "tombstones_deleted": self.tombstones_deleted,
                "overwritten": self.overwritten, "skipped": self.skipped}


def undelete(store: BlobStore, when: datetime, *, dry_run: bool = False) -> UndeleteResult:
    """Remove the delete markers written since ``when`` over the versions ``store`` held then, and delete the
    tombstones written since; with ``dry_run`` only say what would be. Unsupported (exit 9) for a store without
    versions. The caller holds the store's exclusive lock."""
    raw = versioned(store)
    if raw is None:
        raise Unsupported(f"{store.display} keeps no object versions: what was deleted from it is gone",
                          hint="undelete works on S3 buckets and Azure containers with versioning (or object lock) "
                               "enabled")
    check_versioning(raw)
    plan = plan_undelete(raw.versions(""), when)
    result = UndeleteResult(as_of=iso_z(when, "seconds"), dry_run=dry_run, restored=[v.key for v in plan.restored],
                            markers_removed=len(plan.markers), tombstones_deleted=plan.tombstones,
                            overwritten=plan.overwritten, skipped=plan.skipped)
    if dry_run:
        return result
    # data and row digests first, manifests after them, the tombstones last: a backup brought back is whole
    # before anything lists it
    markers: dict[str, list[ObjectVersion]] = {}
    for marker in plan.markers:
        markers.setdefault(marker.key, []).append(marker)
    for version in sorted(plan.restored, key=lambda v: _order(v.key)):
        raw.undelete(version, markers.get(version.key, []))
    for key in plan.tombstones:
        store.delete(key)
    return result


def _order(key: str) -> int:
    from vecbackup.format import layout

    return 0 if key.startswith((layout.DATA, layout.DIGESTS)) else 2 if key.startswith(layout.MANIFESTS) else 1
