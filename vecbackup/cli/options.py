"""Options shared by several commands (typer Annotated aliases) and the helpers that open things."""

from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import ui
from vecbackup.config import parse_milvus_url
from vecbackup.sources.milvus import MilvusEngine
from vecbackup.stores import open_store
from vecbackup.stores.base import BlobStore

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of text.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Token = Annotated[str | None, typer.Option("--token", envvar="VECBACKUP_MILVUS_TOKEN", show_envvar=True,
                                            help="Milvus token (prefer the environment variable).")]
User = Annotated[str | None, typer.Option("--user", envvar="VECBACKUP_MILVUS_USER", show_envvar=True,
                                           help="Milvus user name.")]
Password = Annotated[str | None, typer.Option("--password", envvar="VECBACKUP_MILVUS_PASSWORD",
                                               show_envvar=True, show_default=False,
                                               help="Milvus password (prefer the environment variable).")]
CaCert = Annotated[str | None, typer.Option("--ca-cert", help="PEM file to verify the server's TLS certificate.")]
StoreArg = Annotated[str, typer.Argument(metavar="STORE_URL", help="Where backups are: file:///path/to/folder.")]
CollectionOpt = Annotated[str | None, typer.Option("--collection", "-c", help="Only backups of this collection.")]


def setup(json: bool, quiet: bool) -> None:
    ui.configure(json=json, quiet=quiet)


def connect(url: str, token: str | None, user: str | None, password: str | None,
            ca_cert: str | None) -> MilvusEngine:
    return MilvusEngine(parse_milvus_url(url, token=token, user=user, password=password, server_pem_path=ca_cert))


def store(url: str, *, create: bool = False) -> BlobStore:
    return open_store(url, create=create)
