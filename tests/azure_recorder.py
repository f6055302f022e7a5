"""The Azure SDK's own request pipeline with a recorder at its end (the transport): tests of what vecbackup sends to
Azure Blob Storage where Azurite, the emulator the other Azure tests run against, implements none of it (blob
versioning, immutability policies). The SDK serializes, signs and parses as it does against Azure; only the
transport is replaced, answering each request with what Azure's REST reference gives for that operation."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport
from azure.core.utils import CaseInsensitiveDict
from azure.storage.blob import ContainerClient

from vecbackup.stores.azure import AzureStore

#: an answer: status, headers, and optionally a body
Answer = tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]


class _Response(HttpResponse):
    def __init__(self, request: HttpRequest, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        super().__init__(request, None)
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers)
        self.reason = "OK" if status < 300 else "Error"
        self.content_type = self.headers.get("content-type")
        self._body = body

    def body(self) -> bytes:
        return self._body

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Iterator[bytes]:  # how a download reads a body
        return _Stream(self)


class _Stream(Iterator[bytes]):
    """A body as the SDK's download reads it (azure-core's StreamDownloadGenerator): an iterator over its bytes,
    with the response it comes from and its length."""

    def __init__(self, response: _Response) -> None:
        self.response = response
        self.content_length = len(response.body())
        self._chunks = iter([response.body()] if response.body() else [])

    def __next__(self) -> bytes:
        return next(self._chunks)


class Recorder(HttpTransport):
    """The end of the SDK's pipeline: records each request and answers it with ``answer(request)``."""

    def __init__(self, answer: Callable[[HttpRequest], Answer]) -> None:
        self.sent: list[HttpRequest] = []
        self.answer = answer

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.sent.append(request)
        return _Response(request, *self.answer(request))


def query(request: HttpRequest, name: str) -> str:
    return parse_qs(urlsplit(request.url).query).get(name, [""])[0]


def comp(request: HttpRequest) -> str:
    return query(request, "comp")


def azure_store(answer: Callable[[HttpRequest], Answer], **kwargs: Any) -> tuple[AzureStore, Recorder]:
    """An AzureStore of container ``backups``, prefix ``p/``, at a made-up account, over a Recorder."""
    transport = Recorder(answer)
    client = ContainerClient("https://acct.blob.core.windows.net", "backups", transport=transport, retry_total=0,
                             credential=AzureNamedKeyCredential("acct", base64.b64encode(b"k" * 32).decode()),
                             **kwargs)
    return AzureStore("backups", "p/", client=client), transport
