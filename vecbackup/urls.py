"""Parse source/target and store URLs into frozen dataclasses. No I/O here.

Secrets (passwords, tokens) are never part of a URL we display: ``display``
is the only form that reaches logs, errors, manifests and ``--json`` output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, unquote, urlsplit

from vecbackup.errors import UsageError
from vecbackup.words import param

MILVUS_SCHEMES = {"milvus": "http", "milvus+http": "http", "milvus+https": "https", "milvuss": "https"}
LITE_SCHEME = "milvus-lite"
DEFAULT_MILVUS_PORT = 19530

#: environment variables read for Milvus credentials (first one set wins)
ENV_TOKEN = ("VECBACKUP_MILVUS_TOKEN", "MILVUS_TOKEN")
ENV_USER = ("VECBACKUP_MILVUS_USER", "MILVUS_USER")
ENV_PASSWORD = ("VECBACKUP_MILVUS_PASSWORD", "MILVUS_PASSWORD")


def _env(names: tuple[str, ...], environ: dict[str, str] | None) -> str:
    env = os.environ if environ is None else environ
    for name in names:
        if env.get(name):
            return env[name]
    return ""


@dataclass(frozen=True)
class TLS:
    """TLS settings for a database connection: a CA bundle to verify the server with, a client certificate and key
    for mutual TLS, and (only when asked) no verification at all. Paths, not secrets."""

    ca_cert: str = ""  # PEM: the CA(s) that signed the server's certificate
    client_cert: str = ""  # PEM: our certificate, for servers (or proxies) that demand one
    client_key: str = ""  # PEM: its private key (unencrypted)
    insecure: bool = False  # do not verify the server's certificate

    @property
    def given(self) -> bool:
        return bool(self.ca_cert or self.client_cert or self.client_key or self.insecure)

    def check(self, display: str, *, tls: bool, grpc: bool) -> TLS:
        """UsageError for settings that cannot work; ``tls``: the URL asks for TLS; ``grpc``: over gRPC (whose
        Python client can neither skip verification nor take a client certificate without a CA bundle)."""
        if bool(self.client_cert) != bool(self.client_key):
            raise UsageError(f"{param('client_cert')} and {param('client_key')} go together",
                             hint="give both for mutual TLS")
        if self.given and not tls:
            raise UsageError(f"TLS options given for {display}, which does not use TLS",
                             hint="use milvus+https://, qdrant+https:// or qdrant+grpcs:// for a server with TLS")
        if self.insecure and (self.ca_cert or self.client_cert):
            raise UsageError(f"{param('insecure', True)} skips verifying the server, so {param('ca_cert')} is "
                             "pointless",
                             hint="drop one of them")
        if grpc and self.insecure:
            raise UsageError(f"{param('insecure', True)} is not possible over gRPC ({display}): its client cannot "
                             "skip verifying the server's certificate",
                             hint=f"give {param('ca_cert')} with the CA (or the self-signed certificate) of the "
                                  "server")
        if grpc and self.client_cert and not self.ca_cert:
            raise UsageError(f"mutual TLS over gRPC needs {param('ca_cert')} too",
                             hint="give the CA that signed the server's certificate")
        return self


@dataclass(frozen=True)
class MilvusURL:
    """Where a Milvus server (or a Milvus Lite file) is, and how to log in."""

    uri: str  # what pymilvus gets: http(s)://host:port, or a file path for Milvus Lite
    display: str  # safe to print: no secrets
    lite: bool = False
    db_name: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    server_pem_path: str = ""  # the CA bundle (--ca-cert)
    tls: TLS = TLS()
    timeout: float = 30.0
    #: read the Query RPC's columns and insert columns (the default), or, with ``?columnar=off``, go through
    #: pymilvus's rows both ways (slower; a way round the columnar path should a server answer oddly)
    columnar: bool = True

    @property
    def engine(self) -> str:
        return "milvus"


def _columnar(query: str, url: str) -> bool:
    """A Milvus URL's ``?columnar=on|off`` (default on): a backup reads the Query RPC's columns and a restore inserts
    columns (engines/milvus/columnar.py, inserts.py); off goes through pymilvus's rows both ways."""
    values = parse_qs(query).get("columnar", ["on"])
    if values[-1] not in ("on", "off"):
        raise UsageError(f"bad columnar={values[-1]!r} in {_redact(url)!r}", hint="use columnar=on or columnar=off")
    return values[-1] == "on"


def parse_milvus_url(
    url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    server_pem_path: str | None = None,
    tls: TLS | None = None,
    environ: dict[str, str] | None = None,
) -> MilvusURL:
    """``milvus://host:19530[/db]``, ``milvus+https://host``, ``milvus-lite:///path/file.db``."""
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise UsageError(f"bad URL {_redact(url)!r}: {_why(e)}") from None
    scheme = parts.scheme.lower()
    if scheme == LITE_SCHEME:
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise UsageError(
                f"bad URL {_redact(url)!r}: no file path", hint="use milvus-lite:///absolute/path.db"
            )
        return MilvusURL(uri=path, display=f"milvus-lite://{path}", lite=True,
                          columnar=_columnar(parts.query, url))
    if "@" in parts.path + parts.query + parts.fragment:
        raise UsageError(f"bad URL {_redact(url)!r}: '@' after the host",
                         hint="percent-encode '/', '?', '#' and '@' in the password (%2F, %3F, %23, %40), "
                              "or pass it in VECBACKUP_MILVUS_PASSWORD")
    if scheme not in MILVUS_SCHEMES:
        raise UsageError(
            f"unsupported server URL scheme {parts.scheme + '://' if parts.scheme else _redact(url)!r}",
            hint="use milvus://host:19530, milvus+https://host:443, milvus-lite:///path/file.db, "
                 "qdrant://host:6333 or qdrant-local:///path",
        )
    if not parts.hostname:
        raise UsageError(f"bad URL {_redact(url)!r}: no host", hint="use milvus://host:19530")
    try:
        port = parts.port or DEFAULT_MILVUS_PORT
    except ValueError:
        raise UsageError(f"bad URL {_redact(url)!r}: the port is not a number") from None
    http = MILVUS_SCHEMES[scheme]
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    db_name = parts.path.strip("/")
    query = parse_qs(parts.query)
    if not db_name and query.get("db"):
        db_name = query["db"][0]
    url_user = unquote(parts.username) if parts.username else ""
    url_password = unquote(parts.password) if parts.password else ""
    display = f"{scheme}://{host}:{port}" + (f"/{db_name}" if db_name else "")
    settings = replace(tls or TLS(), ca_cert=(tls.ca_cert if tls else "") or server_pem_path or "")
    settings.check(display, tls=http == "https", grpc=True)
    return MilvusURL(
        uri=f"{http}://{host}:{port}",
        display=display,
        db_name=db_name,
        user=user or url_user or _env(ENV_USER, environ),
        password=password or url_password or _env(ENV_PASSWORD, environ),
        token=token or _env(ENV_TOKEN, environ),
        server_pem_path=settings.ca_cert,
        tls=settings,
        columnar=_columnar(parts.query, url),
    )


#: Qdrant URL schemes -> (TLS, prefer gRPC)
QDRANT_SCHEMES = {"qdrant": (False, False), "qdrant+http": (False, False), "qdrant+https": (True, False),
                  "qdrant+grpc": (False, True), "qdrant+grpcs": (True, True)}
QDRANT_LOCAL_SCHEME = "qdrant-local"
DEFAULT_QDRANT_PORT = 6333
DEFAULT_QDRANT_GRPC_PORT = 6334
#: environment variables read for the Qdrant API key (first one set wins)
ENV_QDRANT_API_KEY = ("VECBACKUP_QDRANT_API_KEY", "QDRANT_API_KEY")


@dataclass(frozen=True)
class QdrantURL:
    """Where a Qdrant server (or a qdrant-client local-mode folder) is, and its API key."""

    display: str  # safe to print: no secrets
    host: str = ""  # "" for local mode
    port: int = DEFAULT_QDRANT_PORT  # REST port
    grpc_port: int = DEFAULT_QDRANT_GRPC_PORT
    https: bool = False
    prefer_grpc: bool = False
    prefix: str = ""  # REST path prefix behind a proxy, "" for none
    path: str = ""  # local mode folder
    api_key: str = field(default="", repr=False)
    timeout: float = 30.0
    tls: TLS = TLS()

    @property
    def local(self) -> bool:
        return bool(self.path)

    @property
    def engine(self) -> str:
        return "qdrant"


def is_qdrant_url(url: str) -> bool:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    return scheme in QDRANT_SCHEMES or scheme == QDRANT_LOCAL_SCHEME


def is_engine_url(url: str) -> bool:
    """Whether ``url`` names a database (Milvus, Milvus Lite, Qdrant, Qdrant local mode, Qdrant Edge) rather than a
    store."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    return scheme in MILVUS_SCHEMES or scheme == LITE_SCHEME or is_qdrant_url(url) or is_edge_url(url)


#: Qdrant Edge: shards (folders) on this machine, opened in-process
EDGE_SCHEME = "qdrant-edge"


@dataclass(frozen=True)
class EdgeURL:
    """Where Qdrant Edge shards are: ``qdrant-edge:///path``, a shard's folder or a folder of shards."""

    display: str
    path: str  # absolute


def is_edge_url(url: str) -> bool:
    return (url.partition("://")[0].lower() if "://" in url else "") == EDGE_SCHEME


def parse_edge_url(url: str, *, tls: TLS | None = None) -> EdgeURL:
    """``qdrant-edge:///absolute/path``: a Qdrant Edge shard's folder (its one collection, named after the
    folder), or a folder whose sub-folders are shards (one collection each). No host, query or credentials."""
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise UsageError(f"bad URL {_redact(url)!r}: {_why(e)}") from None
    if parts.scheme.lower() != EDGE_SCHEME:
        raise UsageError(f"not a Qdrant Edge URL: {_redact(url)!r}", hint="use qdrant-edge:///absolute/path")
    path = unquote(parts.netloc + parts.path)
    if not path.startswith("/") or parts.query or parts.fragment:
        raise UsageError(f"bad URL {_redact(url)!r}: a Qdrant Edge URL is qdrant-edge:// and an absolute folder path",
                         hint="use qdrant-edge:///absolute/path (three slashes)")
    path = path.rstrip("/") or "/"
    (tls or TLS()).check(f"qdrant-edge://{path}", tls=False, grpc=False)
    return EdgeURL(display=f"qdrant-edge://{path}", path=path)


def parse_qdrant_url(url: str, *, api_key: str | None = None, tls: TLS | None = None,
                     environ: dict[str, str] | None = None) -> QdrantURL:
    """``qdrant://host:6333[/prefix]`` (REST), ``qdrant+https://host``, ``qdrant+grpc://host:6334`` (gRPC,
    ``?rest_port=6333`` for the few REST-only calls), ``qdrant+grpcs://`` (gRPC over TLS),
    ``qdrant-local:///path`` (qdrant-client's embedded local mode)."""
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise UsageError(f"bad URL {_redact(url)!r}: {_why(e)}") from None
    scheme = parts.scheme.lower()
    if scheme == QDRANT_LOCAL_SCHEME:
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise UsageError(f"bad URL {_redact(url)!r}: no folder path", hint="use qdrant-local:///absolute/path")
        (tls or TLS()).check(f"qdrant-local://{path}", tls=False, grpc=False)
        return QdrantURL(display=f"qdrant-local://{path}", path=path)
    if scheme not in QDRANT_SCHEMES:
        raise UsageError(f"unsupported Qdrant URL scheme {scheme + '://'!r}",
                         hint="use qdrant://host:6333, qdrant+https://host:6333, qdrant+grpc://host:6334 "
                              "or qdrant-local:///path")
    if "@" in parts.netloc:
        raise UsageError(f"credentials in the Qdrant URL {_redact(url)!r}",
                         hint=f"pass the API key in VECBACKUP_QDRANT_API_KEY (or {param('api_key')}), never in the "
                              "URL")
    if not parts.hostname:
        raise UsageError(f"bad URL {_redact(url)!r}: no host", hint="use qdrant://host:6333")
    tls_on, grpc = QDRANT_SCHEMES[scheme]
    try:
        explicit = parts.port
    except ValueError:
        raise UsageError(f"bad URL {_redact(url)!r}: the port is not a number") from None
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"rest_port", "timeout"})
    if unknown:
        raise UsageError(f"unknown Qdrant URL parameter {unknown[0]!r}", hint="known: rest_port, timeout")
    try:
        rest_port = int(query["rest_port"][-1]) if "rest_port" in query else None
        timeout = float(query["timeout"][-1]) if "timeout" in query else 30.0
    except ValueError:
        raise UsageError(f"bad URL {_redact(url)!r}: rest_port and timeout must be numbers") from None
    if rest_port is not None and not grpc:
        raise UsageError("rest_port only applies to qdrant+grpc:// URLs", hint="give the REST port as host:PORT")
    if rest_port is not None and not 0 < rest_port < 65536:
        raise UsageError(f"bad URL {_redact(url)!r}: rest_port out of range")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    prefix = unquote(parts.path).strip("/")
    if grpc:
        port = explicit or DEFAULT_QDRANT_GRPC_PORT
        rest = rest_port or DEFAULT_QDRANT_PORT
        grpc_port = port
    else:
        port = rest = explicit or DEFAULT_QDRANT_PORT
        grpc_port = DEFAULT_QDRANT_GRPC_PORT
    display = f"{scheme}://{host}:{port}" + (f"/{prefix}" if prefix else "")
    settings = (tls or TLS()).check(display, tls=tls_on, grpc=grpc)
    if grpc and (settings.ca_cert or settings.client_cert):
        raise UsageError(f"{param('ca_cert')} and {param('client_cert')} are not supported over Qdrant's gRPC "
                         f"({display}): its "
                         "client only trusts the system's CAs there", hint="use qdrant+https:// (REST) for a "
                         "private CA or mutual TLS")
    return QdrantURL(display=display, host=host, port=rest, grpc_port=grpc_port, https=tls_on, prefer_grpc=grpc,
                     prefix=prefix, api_key=api_key or _env(ENV_QDRANT_API_KEY, environ), timeout=timeout,
                     tls=settings)


#: store URL query parameters we accept (non-secret settings); secrets come from the environment
S3_PARAMS = {"endpoint", "region", "path_style", "sse", "sse_kms_key_id", "storage_class", "concurrency",
             "profile"}
AZURE_PARAMS = {"account", "endpoint", "tier", "concurrency"}
SECRET_PARAMS = {"key", "secret", "password", "token", "sas", "sig", "account_key", "access_key",
                 "secret_key", "connection_string", "aws_secret_access_key"}


@dataclass(frozen=True)
class StoreURL:
    """Where backups are: ``file:///path``, ``s3://bucket/prefix?...``, ``azure://container/prefix?...``."""

    scheme: str  # "file" | "s3" | "azure"
    location: str  # folder path for file://, bucket or container name otherwise
    display: str  # safe to print
    prefix: str = ""  # key prefix inside the bucket/container, "" or ending in "/"
    options: dict[str, str] = field(default_factory=dict)  # validated query parameters


def parse_store_url(url: str) -> StoreURL:
    """``file:///abs/path``, ``file://relative/path``, a plain folder path, ``s3://bucket/prefix``
    or ``azure://container/prefix``, with non-secret settings as query parameters."""
    if "://" not in url:
        if not url:
            raise UsageError("empty store URL", hint="use file:///path/to/backups")
        return StoreURL("file", url, f"file://{url}")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise UsageError(f"bad store URL {_redact(url)!r}: {_why(e)}") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise UsageError(f"bad store URL {url!r}: no folder path", hint="use file:///path/to/backups")
        return StoreURL("file", path, f"file://{path}")
    if scheme not in ("s3", "azure"):
        raise UsageError(f"unsupported store URL scheme {scheme + '://'!r}",
                         hint="use file:///path, s3://bucket/prefix or azure://container/prefix")
    if parts.username or parts.password or "@" in parts.netloc:
        raise UsageError(f"credentials in the store URL {_redact(url)!r}",
                         hint="pass secrets in the environment (see docs/STORES.md), never in URLs")
    bucket = parts.netloc
    what = "bucket" if scheme == "s3" else "container"
    if not bucket:
        raise UsageError(f"bad store URL {url!r}: no {what}", hint=f"use {scheme}://{what}/prefix")
    prefix = unquote(parts.path).strip("/")
    if prefix:
        if ".." in prefix.split("/") or "//" in prefix:
            raise UsageError(f"bad store URL {url!r}: the prefix may not hold '..' or '//'")
        prefix += "/"
    raw = parse_qs(parts.query, keep_blank_values=True)
    allowed = S3_PARAMS if scheme == "s3" else AZURE_PARAMS
    options: dict[str, str] = {}
    for key, values in raw.items():
        if key.lower() in SECRET_PARAMS:
            raise UsageError(f"store URL parameter {key!r} looks like a secret",
                             hint="pass secrets in the environment (see docs/STORES.md), never in URLs")
        if key not in allowed:
            raise UsageError(f"unknown {scheme}:// URL parameter {key!r}",
                             hint="known: " + ", ".join(sorted(allowed)))
        options[key] = values[-1]
    c = options.get("concurrency")
    if c is not None and not (c.isascii() and c.isdigit() and len(c) <= 4 and 1 <= int(c) <= 64):  # not "²", "٨"
        raise UsageError(f"bad concurrency {options['concurrency']!r} in store URL", hint="use 1 to 64")
    display = f"{scheme}://{bucket}/{prefix}"
    return StoreURL(scheme, bucket, display, prefix, options)


def _why(e: ValueError) -> str:
    """urlsplit's complaint, unless it quotes the netloc and so the credentials in it (its NFKC check does)."""
    return str(e) if "@" not in str(e) else "the host part holds characters that change under NFKC normalization"


def _redact(url: str) -> str:
    """The URL with any password in it replaced by ***.

    Works on the raw text, not on a parse: a password holding an unencoded '/', '?' or '#' would
    end a parser's idea of the host early, and its password would slip through."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<URL with credentials>" if "@" in url else url
    at = rest.rfind("@")
    if at < 0:
        return url
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{rest[at + 1 :]}"
