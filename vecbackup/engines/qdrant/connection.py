"""One qdrant-client connection to a Qdrant server or a local-mode folder, and what every role of the engine shares:
calls translated into vecbackup.errors (:func:`translate_error`), collections and aliases listed, points counted.
qdrant-client is imported lazily."""

from __future__ import annotations

import ssl
import warnings
from typing import Any

import orjson

from vecbackup.engines.qdrant.model import (
    _models,
    _one_line,
    _qdrant,
)
from vecbackup.errors import AlreadyExists, NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.format.manifest import SourceInfo
from vecbackup.schema import CollectionSpec
from vecbackup.urls import QdrantURL
from vecbackup.words import param


class Connection:
    """The client, its server's version and the notes connecting left (an unverified certificate, an API key sent
    in the clear); the base of QdrantSource, QdrantSink and QdrantInspector."""

    def __init__(self, url: QdrantURL):
        self.url = url
        self.display = url.display
        qc = _qdrant()
        self._m = _models()
        self._created: set[str] = set()
        self._connect_notes: list[str] = []
        verify = None if url.local else _verify(url)  # a bad certificate file is the user's to fix (exit 2)
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                if url.local:
                    self.client = qc.QdrantClient(path=url.path)
                else:
                    scheme = "https" if url.https else "http"
                    self.client = qc.QdrantClient(
                        url=f"{scheme}://{url.host}:{url.port}", port=url.port, grpc_port=url.grpc_port,
                        prefer_grpc=url.prefer_grpc, https=url.https, api_key=url.api_key or None,
                        prefix=url.prefix or None, timeout=max(1, int(url.timeout)), check_compatibility=False,
                        **({} if verify is None else {"verify": verify}))
        except Exception as e:
            if "already accessed by another instance" in str(e):
                raise Unreachable(f"Qdrant local folder {url.path} is in use by another client",
                                  hint="qdrant-client local mode allows one client per folder; stop the other one "
                                       "or use a Qdrant server") from None
            raise Unreachable(f"cannot open Qdrant at {self.display}: {_one_line(e)}") from None
        try:
            self._version = str(self.client.info().version)
        except Exception as e:
            self.close()
            err = translate_error(f"cannot connect to Qdrant at {self.display}", e, local=url.local)
            if isinstance(err, Unreachable) and err.hint is None:
                err.hint = "check the URL, that the server is up, and the API key"
            raise err from None
        if url.tls.insecure:
            self._connect_notes.append(f"the TLS certificate of {self.display} was not verified (--insecure)")
        if url.api_key and not url.https and not url.local:
            self._connect_notes.append(f"the API key was sent unencrypted to {self.display}; use qdrant+https:// "
                                       "(or qdrant+grpcs://) where the server has TLS")

    @property
    def engine(self) -> str:
        """``qdrant`` or ``qdrant-local`` (SourceInfo.engine; cross-engine restores map by it)."""
        return "qdrant-local" if self.url.local else "qdrant"

    def info(self) -> SourceInfo:
        return SourceInfo(engine=self.engine, server_version=self._version, address=self.display)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass

    def _error(self, what: str, e: BaseException) -> VecbackupError:
        return translate_error(f"Qdrant at {self.display}: {what} failed", e, local=self.url.local)

    def _call(self, what: str, fn: Any, *args: Any, notes: list[str] | None = None, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = fn(*args, **kwargs)
        except Exception as e:
            raise self._error(what, e) from None
        if notes is not None:
            for w in caught:
                text = f"{what}: {_one_line(str(w.message))}"
                if text not in notes:
                    notes.append(text)
        return result

    def list_collections(self) -> list[str]:
        res = self._call("list collections", self.client.get_collections)
        return sorted(c.name for c in res.collections)

    def _aliases(self) -> dict[str, str]:
        """alias -> collection, for every alias on the server."""
        res = self._call("list aliases", self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in res.aliases}

    def has_collection(self, name: str) -> bool:
        if self._call("check for collection", self.client.collection_exists, name):
            return True
        return name in self._aliases()

    def count(self, spec_or_name: CollectionSpec | str) -> int:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        res = self._call(f"count points of {name!r}", self.client.count, name, exact=True)
        return int(res.count)

    def _shard_key(self, spec: CollectionSpec, partition: str) -> Any:
        for entry in spec.extra.get("qdrant_shard_keys", []):
            if str(entry["key"]) == partition:
                return entry["key"]
        return None


def _verify(url: QdrantURL) -> ssl.SSLContext | bool | None:
    """How the REST client (httpx) checks the server: a context with the CA bundle and our client certificate,
    False with --insecure, None for the system's defaults."""
    tls = url.tls
    if tls.insecure:
        return False
    if not (tls.ca_cert or tls.client_cert):
        return None
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_cert or None)
        if tls.client_cert:
            ctx.load_cert_chain(tls.client_cert, tls.client_key)
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"cannot load the TLS certificates for {url.display}: {e}",
                         hint=f"{param('ca_cert')}, {param('client_cert')} and {param('client_key')} take PEM files "
                              "(the key unencrypted)") from None
    return ctx


def translate_error(where: str, e: BaseException, *, local: bool = False) -> VecbackupError:
    """A qdrant-client exception (REST, gRPC or local mode) as a vecbackup error; ``where`` starts the message
    ("Qdrant at URL: WHAT failed"). Messages carry the server's error text, never a request header."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(e, VecbackupError):
        return e
    if isinstance(e, UnexpectedResponse):
        detail = _response_error(e)
        code = e.status_code or 0
        if code == 404:
            return NotFound(f"{where}: {detail}")
        if code in (401, 403):
            return Unreachable(f"{where}: the server refused the credentials ({code} {detail})",
                               hint=f"check the API key: {param('api_key')} or VECBACKUP_QDRANT_API_KEY")
        if code == 409:
            return AlreadyExists(f"{where}: {detail}")
        if code in (502, 503, 504):
            return Unreachable(f"{where}: {code} {detail}")
        return VecbackupError(f"{where}: {code} {detail}")
    if isinstance(e, ResponseHandlingException):
        return Unreachable(f"{where}: {_one_line(e.source)}")
    grpc_code = _grpc_code(e)
    if grpc_code is not None:
        detail = _one_line(getattr(e, "details", lambda: str(e))() or grpc_code)
        if grpc_code == "NOT_FOUND":
            return NotFound(f"{where}: {detail}")
        if grpc_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return Unreachable(f"{where}: the server refused the credentials ({detail})",
                               hint=f"check the API key: {param('api_key')} or VECBACKUP_QDRANT_API_KEY")
        if grpc_code == "ALREADY_EXISTS":
            return AlreadyExists(f"{where}: {detail}")
        if grpc_code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return Unreachable(f"{where}: {detail}")
        return VecbackupError(f"{where}: {detail}")
    if isinstance(e, NotImplementedError):  # local mode: sharding, snapshots, ...
        return Unsupported(f"{where}: {_one_line(e)}", hint="use a Qdrant server")
    msg = _one_line(e)
    if isinstance(e, ValueError) and local:
        if "not found" in msg:
            return NotFound(f"{where}: {msg}")
        if "already exists" in msg:
            return AlreadyExists(f"{where}: {msg}")
    if isinstance(e, (ConnectionError, TimeoutError, OSError)):
        return Unreachable(f"{where}: {msg}")
    return VecbackupError(f"{where}: {msg}")


def _response_error(e: Any) -> str:
    """The error text of a Qdrant REST error response ({"status": {"error": "..."}})."""
    try:
        doc = orjson.loads(e.content)
        status = doc.get("status") if isinstance(doc, dict) else None
        if isinstance(status, dict) and status.get("error"):
            return _one_line(status["error"])
    except Exception:
        pass
    text = e.content.decode("utf-8", "replace") if isinstance(e.content, bytes) else str(e.content)
    return _one_line(text or e.reason_phrase or "")


def _grpc_code(e: BaseException) -> str | None:
    code = getattr(e, "code", None)
    if not callable(code):
        return None
    try:
        import grpc
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(e, grpc.RpcError):
        return None
    try:
        value = code()
    except Exception:
        return None
    return str(getattr(value, "name", value))
