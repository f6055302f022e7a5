"""Azure Blob Storage (``azure://container/prefix?account=NAME&endpoint=URL&tier=Cool&concurrency=8``).

Objects are block blobs named ``prefix + key``. Credentials come from the environment, never from the URL,
in this order:

1. ``AZURE_STORAGE_CONNECTION_STRING`` (a real account's, or Azurite's);
2. the account (``?account=`` or ``AZURE_STORAGE_ACCOUNT``) at ``?endpoint=``, ``AZURE_STORAGE_BLOB_ENDPOINT`` or
   ``https://{account}.blob.core.windows.net``, with ``AZURE_STORAGE_KEY`` (shared key), else
   ``AZURE_STORAGE_SAS_TOKEN``, else ``DefaultAzureCredential`` (managed or workload identity, ``az login``;
   needs the ``vecbackup[azure-identity]`` extra).

Object lock (``init --object-lock``, stores/objectlock.py; docs/STORES.md "Object lock") is Azure's version-level
immutability: each blob vecbackup keeps is written with an immutability policy (``x-ms-immutability-policy-until-
date`` and ``-mode``: ``Locked`` for compliance, ``Unlocked`` for governance), extended with Set Blob Immutability
Policy and read back from Get Blob Properties; the container must have version-level immutability support (which
needs blob versioning on the account). Azurite implements none of it: the requests are tested in
tests/unit/test_azure_object_lock.py against the SDK's own request pipeline, not against a server.

The SDK's own retries are off: :class:`~vecbackup.stores.retry.RetryingStore` retries TransientError. Every
SDK error goes through :meth:`AzureStore._error`, which turns it into one of the store errors with a
one-line message that never holds a key, SAS token or connection string (nor the SDK's own message, which
may quote a request URL and its SAS signature).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from vecbackup.errors import CorruptData, NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.format.crypto import ObjectLock
from vecbackup.format.layout import is_transient
from vecbackup.stores.base import (
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    PermissionDenied,
    Retention,
    TransientError,
    check_key,
    valid_key,
)
from vecbackup.stores.versions import UNKNOWN_TIME, ObjectVersion
from vecbackup.urls import StoreURL

MiB = 1024 * 1024

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ENV_ACCOUNT = "AZURE_STORAGE_ACCOUNT"
ENV_ENDPOINT = "AZURE_STORAGE_BLOB_ENDPOINT"
ENV_KEY = "AZURE_STORAGE_KEY"
ENV_SAS = "AZURE_STORAGE_SAS_TOKEN"

TIERS = {"hot": "Hot", "cool": "Cool", "cold": "Cold", "archive": "Archive"}
MAX_PAGE_SIZE = 5000  # the most one List Blobs call returns
#: seconds undelete waits for the copy of a version over its blob (within an account it is usually done at once)
COPY_WAIT = 600.0

_AUTH_CODES = {"AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch",
               "AuthorizationSourceIPMismatch", "AuthorizationProtocolMismatch", "AuthorizationResourceTypeMismatch",
               "AuthorizationServiceMismatch", "InvalidAuthenticationInfo", "InsufficientAccountPermissions",
               "KeyBasedAuthenticationNotPermitted"}
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_TRANSIENT_CODES = {"ServerBusy", "OperationTimedOut", "InternalError"}
_ARCHIVED_CODES = {"BlobArchived", "BlobBeingRehydrated"}
_ALL_ENV = f"{ENV_CONNECTION_STRING}, or {ENV_ACCOUNT} with {ENV_KEY} or {ENV_SAS}"
#: an object lock's mode -> the immutability policy mode Azure keeps it in (and back)
POLICY_MODES = {"compliance": "Locked", "governance": "Unlocked"}


def _sdk() -> Any:
    try:
        import azure.storage.blob as blob
    except ImportError:
        raise Unsupported("Azure support is not installed", hint="pip install 'vecbackup[azure]'") from None
    return blob


class AzureStore:
    """A container (and a key prefix inside it) of an Azure storage account."""

    def __init__(
        self,
        container: str,
        prefix: str = "",
        *,
        account_url: str | None = None,
        connection_string: str | None = None,
        credential: Any = None,
        tier: str | None = None,
        concurrency: int = 4,
        page_size: int = MAX_PAGE_SIZE,
        max_single_put_size: int = 8 * MiB,
        max_block_size: int = 4 * MiB,
        timeout: float = 60.0,
        client: Any = None,
        display: str | None = None,
    ) -> None:
        if not container:
            raise UsageError("no Azure container given", hint="use azure://container/prefix")
        if prefix and (not prefix.endswith("/") or not valid_key(prefix)):
            raise UsageError(f"bad Azure key prefix {prefix!r}", hint="a prefix is '' or ends in '/', without '..'")
        if not 1 <= concurrency <= 64:
            raise UsageError(f"bad Azure concurrency {concurrency}", hint="use 1 to 64")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise UsageError(f"bad Azure listing page size {page_size}", hint=f"use 1 to {MAX_PAGE_SIZE}")
        if max_single_put_size < 1 or max_block_size < 1:
            raise UsageError("Azure upload sizes must be positive")
        self.container = container
        self.prefix = prefix
        self.display = display or f"azure://{container}/{prefix}"
        self.tier = _tier(tier)
        self.concurrency = concurrency
        self.page_size = page_size
        self._auth_hint = _auth_hint(connection_string, credential)
        if client is None:
            blob = _sdk()
            options: dict[str, Any] = {
                "retry_total": 0,  # RetryingStore retries, with its own budget
                "connection_timeout": min(timeout, 20.0),
                "read_timeout": timeout,
                "max_single_put_size": max_single_put_size,
                "max_block_size": max_block_size,
                "user_agent": f"vecbackup/{_version()}",
            }
            try:
                if connection_string:
                    client = blob.ContainerClient.from_connection_string(connection_string, container, **options)
                elif account_url:
                    if hasattr(credential, "get_token") and urlsplit(account_url).scheme != "https":
                        raise UsageError(f"token credentials (managed or workload identity) need an https endpoint, "
                                         f"not {_endpoint(account_url, '')}",
                                         hint=f"use https, or set {ENV_KEY} or {ENV_SAS}")
                    client = blob.ContainerClient(account_url, container, credential=credential, **options)
                else:
                    raise UsageError(f"no Azure account for {self.display}", hint=f"set {_ALL_ENV}")
            except (ValueError, TypeError):
                # the SDK's message may quote the connection string: say only which input is malformed
                what = ENV_CONNECTION_STRING if connection_string else "the Azure endpoint URL"
                raise UsageError(f"{what} is malformed (for {self.display})",
                                 hint="a connection string looks like DefaultEndpointsProtocol=https;AccountName=...;"
                                      "AccountKey=...;EndpointSuffix=core.windows.net") from None
        self._client = client
        self._lock: ObjectLock | None = None
        #: a SAS given as a credential (not in the URL), which undelete's copy passes on to authorize its source
        self._source_sas = str(getattr(credential, "signature", "") or "").lstrip("?")
        self.account = str(getattr(client, "account_name", None) or "the storage account")
        self.endpoint = _endpoint(str(getattr(client, "url", "") or ""), container)

    # -- construction from a store URL ----------------------------------------------------------------

    @classmethod
    def from_url(cls, url: StoreURL, *, environ: Mapping[str, str] | None = None) -> AzureStore:
        env = os.environ if environ is None else environ
        opts = url.options
        common: dict[str, Any] = {"tier": opts.get("tier"), "display": url.display}
        if opts.get("concurrency"):
            common["concurrency"] = int(opts["concurrency"])
        connection_string = env.get(ENV_CONNECTION_STRING, "").strip()
        if connection_string:
            store = cls(url.location, url.prefix, connection_string=connection_string, **common)
            want = opts.get("account")
            if want and store.account != "the storage account" and want != store.account:
                raise UsageError(f"{url.display}?account={want} does not match the account of {ENV_CONNECTION_STRING} "
                                 f"({store.account})", hint=f"unset {ENV_CONNECTION_STRING} or fix the URL")
            if opts.get("endpoint") and opts["endpoint"].rstrip("/") != store.endpoint.rstrip("/"):
                raise UsageError(f"the endpoint in {url.display} does not match {ENV_CONNECTION_STRING} "
                                 f"({store.endpoint})", hint=f"unset {ENV_CONNECTION_STRING} or fix the URL")
            return store
        account = opts.get("account") or env.get(ENV_ACCOUNT, "").strip()
        if not account:
            raise UsageError(f"no Azure storage account for {url.display}",
                             hint=f"set {ENV_CONNECTION_STRING}, or {ENV_ACCOUNT} (or ?account=NAME in the URL) "
                                  f"with {ENV_KEY}, {ENV_SAS} or a managed identity")
        endpoint = opts.get("endpoint") or env.get(ENV_ENDPOINT, "").strip() or f"https://{account}.blob.core.windows.net"
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or "@" in parts.netloc:
            source = "?endpoint=" if opts.get("endpoint") else ENV_ENDPOINT
            raise UsageError(f"bad Azure blob endpoint in {source}",
                             hint="use https://ACCOUNT.blob.core.windows.net (or your cloud's), without a query; "
                                  f"a SAS token goes in {ENV_SAS}")
        key = env.get(ENV_KEY, "").strip()
        sas = env.get(ENV_SAS, "").strip().lstrip("?")
        from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

        credential: Any
        if key:
            credential = AzureNamedKeyCredential(account, key)
        elif sas:
            credential = AzureSasCredential(sas)
        else:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError:
                raise UsageError(
                    f"no credential for Azure account {account}: {ENV_KEY} and {ENV_SAS} are not set, and "
                    "managed identity needs azure-identity",
                    hint=f"pip install 'vecbackup[azure-identity]', or set {ENV_KEY}, {ENV_SAS} or "
                         f"{ENV_CONNECTION_STRING}") from None
            credential = DefaultAzureCredential()
        return cls(url.location, url.prefix, account_url=endpoint, credential=credential, **common)

    # -- the protocol ----------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        name = self._name(key)
        tier = _sdk().StandardBlobTier(self.tier) if self.tier else None
        try:
            # big objects go up as blocks, `concurrency` at a time, committed at once (readers see all or none)
            self._client.upload_blob(name, data, overwrite=not if_absent, max_concurrency=self.concurrency,
                                     standard_blob_tier=tier, **self._policy(key))
        except Exception as e:
            raise self._error(e, "writing", key, if_absent=if_absent) from None

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self._download(key, offset, length, None)

    def _download(self, key: str, offset: int, length: int | None, version_id: str | None) -> bytes:
        name = self._name(key)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"bad range offset={offset} length={length}")
        if length == 0:  # still ObjectNotFound when absent
            if version_id is None:
                self.stat(key)
            else:
                self._download(key, 0, 1, version_id)
            return b""
        version = {} if version_id is None else {"version_id": version_id}
        try:
            # offset=None lets the SDK read an empty blob (a range request on one answers 416)
            downloader = self._client.download_blob(name, offset=offset or (0 if length else None), length=length,
                                                    max_concurrency=self.concurrency, **version)
            return bytes(downloader.readall())
        except Exception as e:
            if _status(e) == 416:  # the blob exists and the range starts at or after its end
                return b""
            raise self._error(e, "reading", key) from None

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        try:
            props = self._client.get_blob_client(name).get_blob_properties()
        except Exception as e:
            raise self._error(e, "checking", key) from None
        return ObjectInfo(key, int(props.size), props.last_modified.timestamp())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = len(self.prefix)
        for b in self._blobs(prefix, ()):
            yield ObjectInfo(b.name[start:], int(b.size), b.last_modified.timestamp())

    def _blobs(self, prefix: str, include: Sequence[str]) -> Iterator[Any]:
        """List Blobs under ``prefix`` with ``include`` (and always the metadata, which tells a folder), page by page,
        without the folders of an account with a hierarchical namespace (ADLS Gen2), which are not objects."""
        if prefix and not valid_key(prefix):
            raise ValueError(f"invalid store key prefix {prefix!r}")
        include = sorted({*include, "metadata"})
        try:
            pages = self._client.list_blobs(name_starts_with=self.prefix + prefix, include=include,
                                            results_per_page=self.page_size).by_page()
        except Exception as e:
            raise self._error(e, "listing", prefix or None) from None
        while True:
            try:  # a page is fetched when iterated: translate its errors, but not the consumer's
                page = next(pages, None)
                found = [] if page is None else list(page)
            except Exception as e:
                raise self._error(e, "listing", prefix or None) from None
            if page is None:
                return
            for b in found:
                if not (b.name.endswith("/") or (b.metadata or {}).get("hdi_isfolder") == "true"):
                    yield b

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            self._client.delete_blob(name)
        except Exception as e:
            if _code(e) == "BlobNotFound":
                return
            raise self._error(e, "deleting", key) from None

    # -- versions (stores/versions.py): blob versioning ------------------------------------------------------

    def versioning(self) -> str:
        """"Enabled" once a blob under the prefix has a version id, "" when none has: blob versioning is a setting
        of the storage account that the blob service does not report, and a blob written while it is on gets a
        version id. "Enabled" for a container holding nothing under the prefix, which has nothing to lose."""
        seen = False
        for b in self._blobs("", ["versions"]):
            if b.version_id:
                return "Enabled"
            seen = True
        return "" if seen else "Enabled"

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """Every version under ``prefix``, keys in order, each key's newest first; a key whose blob is deleted
        (none of its versions current) first gets a delete marker of unknown time (stores/versions.py). A blob
        written before versioning was turned on is listed as its one version, with the id ""."""
        start = len(self.prefix)
        by_key: dict[str, list[ObjectVersion]] = {}
        for b in self._blobs(prefix, ["versions"]):
            key = b.name[start:]
            if not valid_key(key):
                continue
            vid = b.version_id or ""
            try:
                when = _version_time(vid) if vid else b.last_modified.timestamp()
                size = int(b.size)
            except (TypeError, ValueError, AttributeError):
                raise CorruptData(f"{self.display}: the service listed a version of {key} without its time or size "
                                  f"(version id {vid[:40]!r})") from None
            by_key.setdefault(key, []).append(ObjectVersion(key, vid, size, when, False,
                                                            bool(b.is_current_version) or not vid))
        for key in sorted(by_key):
            entries = sorted(by_key[key], key=lambda v: (not v.latest, -v.mtime))
            if not entries[0].latest:
                yield ObjectVersion(key, "", 0, UNKNOWN_TIME, deleted=True, latest=True)
            yield from entries

    def get_version(self, key: str, version_id: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self._download(key, offset, length, version_id or None)

    def undelete(self, version: ObjectVersion, markers: Sequence[ObjectVersion]) -> None:
        """Copy ``version`` over its blob (Copy Blob from the version's URL, as Azure's documentation restores a
        previous version), with the store's tier and, under object lock, a new immutability policy; wait until the
        copy is done (within the account it usually is at once)."""
        if not version.version_id:  # a blob without versions: nothing to copy it from
            return
        blob = self._client.get_blob_client(self._name(version.key))
        # a SAS authorizes reading the source too: in the URL already (a connection string's), or added
        source = blob.url if "?" in blob.url or not self._source_sas else f"{blob.url}?{self._source_sas}"
        source += f"{'&' if '?' in source else '?'}versionid={quote(version.version_id)}"
        tier = _sdk().StandardBlobTier(self.tier) if self.tier else None
        try:
            copy = blob.start_copy_from_url(source, standard_blob_tier=tier, **self._policy(version.key))
            status = str(copy.get("copy_status") or "")
            deadline = time.monotonic() + COPY_WAIT
            while status == "pending" and time.monotonic() < deadline:
                time.sleep(1.0)
                status = str(getattr(blob.get_blob_properties().copy, "status", "") or "")
        except Exception as e:
            raise self._error(e, "bringing back", version.key) from None
        if status not in ("success", ""):
            raise VecbackupError(f"bringing back {version.key} in {self.display}: the copy of its version "
                                 f"{version.version_id} is {status or 'in an unknown state'}",
                                 hint="run undelete again: a key already brought back is left as it is")

    # -- object lock (stores.base.Retaining): version-level immutability policies -------------------------

    @property
    def object_lock(self) -> ObjectLock | None:
        return self._lock

    def lock_objects(self, lock: ObjectLock) -> None:
        self._lock = lock

    def _policy(self, key: str) -> dict[str, Any]:
        """The immutability policy a new blob under ``key`` is written with: none for a transient one (a store
        lock)."""
        if self._lock is None or is_transient(key):
            return {}
        until = datetime.now(UTC) + timedelta(days=self._lock.days)
        return {"immutability_policy": _sdk().ImmutabilityPolicy(expiry_time=until,
                                                                 policy_mode=POLICY_MODES[self._lock.mode])}

    def check_object_lock(self) -> None:
        try:
            props = self._client.get_container_properties()
        except Exception as e:
            raise self._error(e, "reading the properties of") from None
        if not getattr(props, "immutable_storage_with_versioning_enabled", False):
            raise Unsupported(f"container {self.container!r} of {self.account} has no version-level immutability "
                              "support: turn on blob versioning for the account, then create the container with it "
                              "(az storage container-rm create --enable-vlw, or the portal's \"Enable version-level "
                              "immutability support\"), or init without --object-lock")

    def retention(self, key: str) -> Retention | None:
        name = self._name(key)
        try:
            props = self._client.get_blob_client(name).get_blob_properties()
        except Exception as e:
            raise self._error(e, "reading the retention of", key) from None
        policy = getattr(props, "immutability_policy", None)
        until, raw = getattr(policy, "expiry_time", None), getattr(policy, "policy_mode", None)
        mode = str(getattr(raw, "value", raw) or "")  # the SDK's enum, or its string
        modes = {v.lower(): k for k, v in POLICY_MODES.items()}
        if until is None or mode.lower() not in modes:  # none, or "Mutable": a policy removed
            return None
        return Retention(modes[mode.lower()], until if until.tzinfo else until.replace(tzinfo=UTC))

    def retain(self, key: str, retention: Retention) -> None:
        name = self._name(key)
        policy = _sdk().ImmutabilityPolicy(expiry_time=retention.until, policy_mode=POLICY_MODES[retention.mode])
        try:
            self._client.get_blob_client(name).set_immutability_policy(policy)
        except Exception as e:
            raise self._error(e, "extending the retention of", key) from None

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass

    # -- errors -----------------------------------------------------------------------------------------

    def _error(self, e: BaseException, action: str, key: str | None = None, *, if_absent: bool = False) -> Exception:
        """The one translation of an SDK (or socket) error into a store error, for every method."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            DecodeError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        status, code = _status(e), _code(e)
        what = f"{key} in {self.display}" if key else self.display
        detail = " ".join(str(x) for x in (f"HTTP {status}" if status else "", code) if x)
        if code == "BlobNotFound" or (status == 404 and not code and key and action != "listing"):
            return ObjectNotFound(f"{key} not found in {self.display}")
        if code == "ContainerNotFound" or (status == 404 and action == "listing"):
            return NotFound(f"container {self.container!r} does not exist in {self.account}",
                            hint="create it or check the name")
        if if_absent and (code in ("BlobAlreadyExists", "ConditionNotMet") or status == 412):
            return ObjectExists(f"{key} already exists in {self.display}")
        if type(e).__name__ == "CredentialUnavailableError":
            return PermissionDenied(f"no Azure credential available for {self.display}",
                                    hint=f"set {_ALL_ENV}, or run where a managed or workload identity is available")
        if code in _AUTH_CODES or status in (401, 403) or isinstance(e, ClientAuthenticationError):
            return PermissionDenied(f"access denied to {what} while {action} "
                                    f"({detail or 'authentication failed'})", hint=self._auth_hint)
        if code in _ARCHIVED_CODES:
            return VecbackupError(f"{what} is in the Archive tier and cannot be read ({detail})",
                                  hint="rehydrate it to Hot or Cool first with az storage blob set-tier, or "
                                       "write backups with another tier")
        if status == 412 and action == "reading":
            return TransientError(f"{what} changed while it was being read ({detail})")
        if (status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES
                or isinstance(e, ServiceRequestError | ServiceResponseError | DecodeError | TimeoutError)):
            reason = _reason(e) or detail or "no answer"
            if _dns_failure(e):
                return Unreachable(f"cannot resolve the host of {self.endpoint} while {action} {what}",
                                   hint="check the account name and the endpoint")
            return TransientError(f"cannot reach {self.endpoint} while {action} {what}: {reason}")
        if isinstance(e, OSError):
            return TransientError(f"cannot reach {self.endpoint} while {action} {what}: {_reason(e) or 'I/O error'}")
        if status == 404:
            return NotFound(f"{self.endpoint} answered {detail} while {action} {what}",
                            hint="check the account name and the endpoint")
        if isinstance(e, HttpResponseError):
            return Unreachable(f"Azure refused {action} {what} ({detail or type(e).__name__})")
        return VecbackupError(f"unexpected error while {action} {what}: {type(e).__name__}")


# -- helpers ------------------------------------------------------------------------------------------------



def _version_time(version_id: str) -> float:
    """The time a blob version was written, from its id (``2026-12-07T10:00:00.1234567Z``: 100 ns ticks, of which
    a float keeps the microseconds); ValueError for anything else."""
    head, dot, frac = version_id.removesuffix("Z").partition(".")
    if not version_id.endswith("Z") or (dot and not frac.isdigit()):
        raise ValueError(version_id)
    when = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return when.timestamp() + (int(frac[:7].ljust(7, "0")) / 1e7 if frac else 0.0)


def _tier(tier: str | None) -> str | None:
    if not tier:
        return None
    try:
        return TIERS[tier.lower()]
    except KeyError:
        raise UsageError(f"unknown Azure access tier {tier!r}", hint="use Hot, Cool, Cold or Archive") from None


def _version() -> str:
    from vecbackup.version import __version__

    return __version__


def _endpoint(url: str, container: str) -> str:
    """The blob service address, without the container, a query (a SAS) or user info: safe to print."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/" + container):
        path = path[: -len(container) - 1]
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{path}" if parts.scheme else "the Azure endpoint"


def _auth_hint(connection_string: str | None, credential: Any) -> str:
    kind = type(credential).__name__
    if connection_string:
        return f"check the account key or SAS in {ENV_CONNECTION_STRING}, and the container's access policy"
    if kind == "AzureNamedKeyCredential":
        return f"check {ENV_KEY}: a key of the account in ?account= or {ENV_ACCOUNT}, with key access allowed"
    if kind == "AzureSasCredential":
        return f"check {ENV_SAS}: its expiry, permissions (read, add, create, write, delete, list) and allowed IPs"
    if credential is not None:
        return ("give the identity a data role on the container (Storage Blob Data Contributor), or set "
                f"AZURE_CLIENT_ID / AZURE_TENANT_ID for workload identity, or {ENV_KEY} / {ENV_SAS}")
    return f"check {_ALL_ENV}"


def _status(e: BaseException) -> int | None:
    status = getattr(e, "status_code", None)
    return status if isinstance(status, int) else None


def _code(e: BaseException) -> str:
    code = getattr(e, "error_code", None)
    code = getattr(code, "value", code)  # StorageErrorCode is a str Enum
    if not code:
        response = getattr(e, "response", None)
        headers = getattr(response, "headers", None)
        code = headers.get("x-ms-error-code") if headers is not None else None
    return "".join(c for c in str(code) if c.isalnum())[:64] if code else ""


def _causes(e: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (azure-core, requests and urllib3 all wrap differently)."""
    seen: set[int] = set()
    todo: list[BaseException] = [e]
    while todo:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        for inner in (x.__cause__, x.__context__, getattr(x, "inner_exception", None), getattr(x, "reason", None),
                      *getattr(x, "args", ())):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _reason(e: BaseException) -> str:
    """A short, secret-free reason: an OS error's text or "timed out" (never an SDK message: it may quote URLs)."""
    for x in _causes(e):
        if isinstance(x, TimeoutError) or "Timeout" in type(x).__name__:
            return "timed out"
        if isinstance(x, OSError) and x.errno is not None and x.errno > 0:
            return os.strerror(x.errno).lower()
    for x in _causes(e):
        name = type(x).__name__
        if "Reset" in name or "Aborted" in name or "Refused" in name:
            return name
        if name in ("IncompleteReadError", "IncompleteRead", "ProtocolError", "RemoteDisconnected"):
            return "the connection closed early"
    return ""


def _dns_failure(e: BaseException) -> bool:
    """True when the host name does not exist (a typo, not a hiccup: EAI_AGAIN stays transient)."""
    return any(isinstance(x, socket.gaierror) and x.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5))
               for x in _causes(e))


__all__ = ["AzureStore"]
