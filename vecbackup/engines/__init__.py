"""Databases behind the Source / Sink protocols (:mod:`vecbackup.engines.base`): Milvus, Qdrant and Qdrant Edge."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vecbackup.engines.base import Engine
from vecbackup.errors import UsageError
from vecbackup.urls import TLS, is_edge_url, is_qdrant_url, parse_edge_url, parse_milvus_url, parse_qdrant_url
from vecbackup.words import param

if TYPE_CHECKING:
    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.engines.qdrant import QdrantEngine
    from vecbackup.engines.qdrant.edge import EdgeEngine


def engine_class(url: str) -> type[MilvusEngine] | type[QdrantEngine] | type[EdgeEngine]:
    """The engine class a URL's scheme names, without connecting (its limits, e.g. ``max_batch``)."""
    if is_edge_url(url):
        from vecbackup.engines.qdrant.edge import EdgeEngine

        return EdgeEngine
    if is_qdrant_url(url):
        from vecbackup.engines.qdrant import QdrantEngine

        return QdrantEngine
    from vecbackup.engines.milvus import MilvusEngine

    return MilvusEngine


def open_engine(url: str, *, token: str | None = None, user: str | None = None, password: str | None = None,
                ca_cert: str | None = None, api_key: str | None = None, client_cert: str | None = None,
                client_key: str | None = None, insecure: bool = False) -> MilvusEngine | QdrantEngine | EdgeEngine:
    """Open the engine the URL's scheme names: qdrant-edge:// -> EdgeEngine, qdrant*:// -> QdrantEngine, anything
    else -> MilvusEngine.
    ``ca_cert``, ``client_cert``/``client_key`` (mutual TLS) and ``insecure`` apply to TLS URLs (urls.TLS)."""
    tls = TLS(ca_cert or "", client_cert or "", client_key or "", insecure)
    for option, path in (("ca_cert", tls.ca_cert), ("client_cert", tls.client_cert), ("client_key", tls.client_key)):
        if path and not os.path.isfile(path):
            raise UsageError(f"{param(option)} file {path!r} not found")
    if is_edge_url(url):
        from vecbackup.engines.qdrant.edge import EdgeEngine

        return EdgeEngine(parse_edge_url(url, tls=tls))
    if is_qdrant_url(url):
        from vecbackup.engines.qdrant import QdrantEngine

        return QdrantEngine(parse_qdrant_url(url, api_key=api_key, tls=tls))
    from vecbackup.engines.milvus import MilvusEngine

    return MilvusEngine(parse_milvus_url(url, token=token, user=user, password=password, tls=tls))


__all__ = ["Engine", "engine_class", "open_engine"]
