from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    ApiKey,
    CaCert,
    ClientCert,
    ClientKey,
    Insecure,
    Json,
    Password,
    Quiet,
    Token,
    User,
    credentials,
    setup,
)


def collections(
    source: Annotated[str, typer.Argument(metavar="SOURCE_URL", help="milvus://host:19530, milvus-lite:///file.db, "
                                          "qdrant://host:6333, qdrant-local:///folder or "
                                          "qdrant-edge:///folder")],
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    client_cert: ClientCert = None, client_key: ClientKey = None, insecure: Insecure = False,
    api_key: ApiKey = None, json: Json = False, quiet: Quiet = False,
) -> None:
    """List the collections on a server, with row counts."""
    setup(json, quiet)
    engine = api.connect(source, credentials(token, user, password, ca_cert, api_key, client_cert, client_key,
                                             insecure), existing=True)
    try:
        rows = [(name, engine.count(name)) for name in api.collections(engine)]
    finally:
        engine.close()
    ui.emit({"server": engine.display, "collections": [{"name": n, "rows": c} for n, c in rows]},
            lambda: ui.table(["collection", "rows"], rows))
