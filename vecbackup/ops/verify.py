"""Check that a backup is complete and intact by reading back every object."""

from __future__ import annotations

from dataclasses import dataclass, field

from vecbackup.errors import CorruptData, MissingData
from vecbackup.format.codec import read_chunk_header
from vecbackup.format.manifest import Manifest
from vecbackup.ops.fetch import fetch_object
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.stores.base import BlobStore


@dataclass
class Problem:
    key: str
    kind: str  # "missing" | "corrupt"
    message: str


@dataclass
class VerifyResult:
    backup_id: str
    collection: str
    objects: int
    rows: int
    bytes_read: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "collection": self.collection, "ok": self.ok,
                "objects": self.objects, "rows": self.rows, "bytes_read": self.bytes_read,
                "problems": [{"key": p.key, "kind": p.kind, "message": p.message} for p in self.problems]}

    def raise_for_problems(self) -> None:
        """MissingData if any object is missing (exit 8), else CorruptData if any is damaged (exit 7)."""
        missing = [p for p in self.problems if p.kind == "missing"]
        corrupt = [p for p in self.problems if p.kind == "corrupt"]
        if missing:
            raise MissingData(f"backup {self.backup_id}: {len(missing)} of {self.objects} data objects missing, "
                              f"{len(corrupt)} damaged; first: {missing[0].key}")
        if corrupt:
            raise CorruptData(f"backup {self.backup_id}: {len(corrupt)} of {self.objects} data objects damaged; "
                              f"first: {corrupt[0].message}")


def verify_backup(store: BlobStore, manifest: Manifest, *, progress: Progress | None = None) -> VerifyResult:
    """Read every data object: present, right size, right SHA-256, a chunk header that decodes and
    holds the recorded row count. Finds every problem rather than stopping at the first."""
    progress = progress or NullProgress()
    result = VerifyResult(manifest.backup_id, manifest.collection.name, len(manifest.objects), 0, 0)
    progress.start(f"verify {manifest.backup_id}", manifest.rows)
    for obj in manifest.objects:
        try:
            data = fetch_object(store, obj)
            header = read_chunk_header(data)
            if int(header.get("rows", -1)) != obj.rows:
                raise CorruptData(f"data object {obj.key} holds {header.get('rows')} rows, manifest says {obj.rows}")
            result.rows += obj.rows
            result.bytes_read += len(data)
        except MissingData as e:
            result.problems.append(Problem(obj.key, "missing", str(e)))
        except CorruptData as e:
            result.problems.append(Problem(obj.key, "corrupt", str(e)))
        progress.advance(obj.rows, obj.size)
    progress.finish()
    return result
