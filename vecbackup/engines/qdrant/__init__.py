"""Qdrant (a server over REST or gRPC, or qdrant-client's embedded local mode) as a Source, a Sink and an Inspector.

``engine.py`` moves data and translates qdrant-client's errors; ``model.py`` is the pure translation between a Qdrant
collection and the engine-neutral :class:`~vecbackup.schema.CollectionSpec` (docs/FORMAT.md, "Qdrant collections").
"""

from __future__ import annotations

from vecbackup.engines.qdrant.engine import QdrantEngine

__all__ = ["QdrantEngine"]
