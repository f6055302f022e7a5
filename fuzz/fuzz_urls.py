"""Server and store URLs (urls.py): any text gives a UsageError with a one-line message, or a parsed URL; and a
password in a network URL never reaches a message, a display form or a repr.

First byte: bit 2 set = the rest is what follows ``<scheme>://user:<password>@`` (bits 3-5 pick the scheme) and the
password must not show; else the rest is the whole URL (fuzz._common.text).
"""

from __future__ import annotations

from typing import Any

from fuzz._common import Bug, as_text, one_line, text
from vecbackup.errors import UsageError
from vecbackup.urls import is_qdrant_url, parse_milvus_url, parse_qdrant_url, parse_store_url

MAX_LEN = 512
SECRET = "Zq9SeCrEt"
NETWORK = ("milvus", "milvus+https", "milvuss", "qdrant", "qdrant+grpc", "qdrant+grpcs", "s3", "azure")
PARSERS = (lambda u: parse_milvus_url(u, environ={}), lambda u: parse_qdrant_url(u, environ={}), parse_store_url)


def seeds() -> list[bytes]:
    urls = ["milvus://u:p@h:19530/db?columnar=off", "milvus+https://h", "milvus-lite:///tmp/x.db", "milvus://[::1",
            "qdrant+grpc://h:6334?rest_port=6333&timeout=3", "qdrant-local:///tmp/q", "qdrant://h/prefix",
            "s3://bucket/prefix?region=eu&concurrency=8", "azure://c/p?account=a", "file:///tmp/s", "/tmp/s",
            "s3://bucket/p?concurrency=²", "milvus://h:99999", "milvus://:x@℀"]
    out = [as_text(u) for u in urls]
    out += [bytes([4 | (i << 3)]) + rest.encode() for i in range(len(NETWORK)) for rest in ("h:1/db", "℀", "h/p?x=@")]
    return out


def parse_all(url: str) -> list[Any]:
    out: list[Any] = []
    for parse in PARSERS:
        try:
            out.append(parse(url))
        except UsageError as e:
            one_line(e)
            out.append(e)
    is_qdrant_url(url)
    return out


def one_input(data: bytes) -> None:
    if not data:
        return
    if not data[0] & 4:
        parse_all(text(data))
        return
    scheme = NETWORK[(data[0] >> 3) % len(NETWORK)]
    url = f"{scheme}://user:{SECRET}@" + data[1:].decode("utf-8", "surrogateescape")
    for result in parse_all(url):
        shown = str(result) if isinstance(result, UsageError) else f"{result.display} {result!r}"
        if SECRET in shown or SECRET in getattr(result, "uri", ""):
            raise Bug(f"the password of {url!r} shows: {shown!r}")


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("urls")
