"""Milvus (standalone, distributed, Zilliz, Milvus Lite) as a Source, a Sink and an Inspector, through pymilvus.

pymilvus is imported lazily so ``vecbackup --help`` stays fast; every pymilvus
error is translated here into :mod:`vecbackup.errors`.
"""

from __future__ import annotations

from vecbackup.engines.milvus.connection import MAX_BATCH, Connection
from vecbackup.engines.milvus.inspect import MilvusInspector
from vecbackup.engines.milvus.rows import chunk_to_rows, rows_to_chunk
from vecbackup.engines.milvus.sink import MilvusSink, name_problem
from vecbackup.engines.milvus.source import MilvusSource


class MilvusEngine(MilvusSource, MilvusSink, MilvusInspector):
    """One connection to a Milvus server or Milvus Lite file; implements Source, Sink and Inspector
    (engines/milvus/source.py, sink.py, inspect.py over the shared connection.py)."""

    #: rows per data chunk at most (one query page holds at most this many)
    max_batch = MAX_BATCH


__all__ = ["MAX_BATCH", "Connection", "MilvusEngine", "chunk_to_rows", "name_problem", "rows_to_chunk"]
