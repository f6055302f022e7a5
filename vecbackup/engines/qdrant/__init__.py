"""Qdrant (a server over REST or gRPC, or qdrant-client's embedded local mode) as a Source, a Sink and an Inspector.

``connection.py`` holds the client and translates qdrant-client's errors; ``source.py``, ``sink.py`` and ``inspect.py``
move data for each role; ``model.py`` is the pure translation between a Qdrant collection and the engine-neutral
:class:`~vecbackup.schema.CollectionSpec` (docs/FORMAT.md, "Qdrant collections"). ``edge.py`` is Qdrant Edge (a shard
folder opened in-process by qdrant-edge-py) behind the same protocols, described through ``edge_config.py`` as the
collection a server with its configuration would report.
"""

from __future__ import annotations

from vecbackup.engines.qdrant.connection import Connection, translate_error
from vecbackup.engines.qdrant.inspect import QdrantInspector
from vecbackup.engines.qdrant.sink import QdrantSink, name_problem
from vecbackup.engines.qdrant.source import QdrantSource


class QdrantEngine(QdrantSource, QdrantSink, QdrantInspector):
    """One connection to a Qdrant server or local-mode folder; implements Source, Sink and Inspector
    (engines/qdrant/source.py, sink.py, inspect.py over the shared connection.py)."""

    #: points per scroll page and data chunk at most
    max_batch = 16384


__all__ = ["Connection", "QdrantEngine", "name_problem", "translate_error"]
