"""Amazon S3 and S3-compatible object stores (``s3://bucket/prefix?endpoint=...``) over boto3.

Credentials come only from the standard AWS chain (environment, AWS_PROFILE or the ``profile``
option, shared config, web identity, instance role), never from the URL. boto3 is imported when a
store is opened, so commands that never touch S3 do not pay for it.

Retries are not done here: botocore's own are switched off and :class:`RetryingStore` retries the
TransientError this module raises. Every boto3/botocore/urllib3 error is translated by one helper,
:meth:`S3Store._errors`, into the store errors of :mod:`vecbackup.stores.base`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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
    valid_key,
)
from vecbackup.stores.versions import ObjectVersion

if TYPE_CHECKING:
    from vecbackup.urls import StoreURL

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part (all but the last)
MAX_PARTS = 10_000  # S3's most parts in one upload

SSE_VALUES = ("AES256", "aws:kms", "aws:kms:dsse")
_TRUE = ("1", "true", "yes", "on", "")
_FALSE = ("0", "false", "no", "off")

# error codes, by what they mean to us
_PERMISSION_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
    "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidSecurity", "InvalidClientTokenId",
    "UnrecognizedClientException", "NotSignedUp", "AuthFailure", "401", "403", "Forbidden", "Unauthorized",
}
_TRANSIENT_CODES = {
    "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException",
    "RequestThrottled", "TooManyRequests", "RequestLimitExceeded", "BandwidthLimitExceeded", "OperationAborted",
    "ConditionalRequestConflict", "NoSuchUpload", "ServerBusy", "BadDigest",
    "XAmzContentSHA256Mismatch", "500", "502", "503", "504", "429",
}
_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}
_USAGE_CODES = {
    "InvalidBucketName", "InvalidStorageClass", "InvalidArgument", "InvalidEncryptionAlgorithmError",
    "KMS.NotFoundException", "KMS.DisabledException", "KMS.KMSInvalidStateException", "PermanentRedirect",
    "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "InvalidRequest", "InvalidBucketState",
}
_NO_KEY_CODES = {"NoSuchKey", "404", "NotFound"}

#: how the credentials in use were found (botocore's Credentials.method), in words
_CREDENTIAL_SOURCES = {
    "env": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment",
    "explicit": "the credentials passed in",
    "shared-credentials-file": "the shared credentials file (~/.aws/credentials, AWS_PROFILE or the profile option)",
    "config-file": "the AWS config file (~/.aws/config, AWS_PROFILE or the profile option)",
    "custom-process": "the credential_process of the AWS profile",
    "assume-role": "the assume-role settings of the AWS profile",
    "assume-role-with-web-identity": "the web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN)",
    "sso": "the AWS SSO login of the profile (run `aws sso login`)",
    "container-role": "the container role (ECS task role)",
    "iam-role": "the instance role (EC2 instance profile)",
}


def _one_line(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _truthy(value: str | bool | None, what: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise UsageError(f"bad {what} {value!r} in store URL", hint="use 1/true/yes or 0/false/no")



def _import_boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise Unsupported("S3 support is not installed", hint="pip install 'vecbackup[s3]'") from None
    return boto3


class S3Store:
    """Objects in one bucket, under an optional key prefix. Thread-safe (one boto3 client, shared)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool | str = False,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        storage_class: str | None = None,
        concurrency: int = 4,
        page_size: int = 1000,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
        profile: str | None = None,
        client: Any = None,
        display: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        credentials: tuple[str, str] | None = None,
        credentials_from: str = "",
    ) -> None:
        if not bucket or "/" in bucket:
            raise UsageError(f"bad S3 bucket name {bucket!r}", hint="use s3://bucket/prefix")
        prefix = prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if prefix and not valid_key(prefix.rstrip("/")):
            raise UsageError(f"bad S3 key prefix {prefix!r}")
        if not 1 <= concurrency <= 64:
            raise UsageError(f"bad S3 concurrency {concurrency}", hint="use 1 to 64")
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size {page_size} is out of range 1-1000")
        if multipart_chunksize < MIN_PART:
            raise ValueError(f"multipart_chunksize must be at least {MIN_PART} bytes")
        if sse_kms_key_id and not sse:
            sse = "aws:kms"
        if sse and sse not in SSE_VALUES:
            raise UsageError(f"bad sse {sse!r} in store URL", hint="use sse=AES256 or sse=aws:kms")
        if sse_kms_key_id and not (sse or "").startswith("aws:kms"):
            raise UsageError("sse_kms_key_id needs sse=aws:kms", hint="drop sse or set sse=aws:kms")
        if endpoint_url and urlsplit(endpoint_url).scheme not in ("http", "https"):
            raise UsageError(f"bad S3 endpoint {endpoint_url!r}", hint="use http://host:port or https://host")
        self.bucket = bucket
        self.prefix = prefix
        self.display = display or f"s3://{bucket}/{prefix}"
        self.concurrency = concurrency
        self.page_size = page_size
        self.multipart_threshold = max(1, multipart_threshold)
        self.multipart_chunksize = multipart_chunksize
        self._extra: dict[str, str] = {}
        if sse:
            self._extra["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            self._extra["SSEKMSKeyId"] = sse_kms_key_id
        if storage_class:
            self._extra["StorageClass"] = storage_class
        self._bucket_seen = False  # a request on the bucket succeeded: a 404 is about the object
        self._lock: ObjectLock | None = None  # lock_objects(): the retention of every object kept
        self._session: Any = None
        #: an access key id and secret given in place of the AWS chain's (the segment source's own variables, which
        #: a store of backups beside it must not share), and where they came from, in words
        self._credentials = credentials
        self._credentials_from = credentials_from
        if client is None:
            client = self._make_client(endpoint_url, region, _truthy(path_style, "path_style"), profile,
                                       connect_timeout, read_timeout)
        self.client = client
        self.endpoint: str = str(getattr(getattr(client, "meta", None), "endpoint_url", None) or endpoint_url or "")
        host = urlsplit(self.endpoint).hostname or ""
        self._custom_endpoint = bool(self.endpoint) and not host.endswith(("amazonaws.com", "amazonaws.com.cn"))

    @classmethod
    def from_url(cls, url: StoreURL, *, credentials: tuple[str, str] | None = None,
                 credentials_from: str = "") -> S3Store:
        """A store for ``s3://bucket/prefix?endpoint=...&region=...&path_style=1&sse=...&concurrency=N``, with the
        AWS chain's credentials unless ``credentials`` (access key id, secret) are given (from ``credentials_from``,
        in words, for errors)."""
        o = url.options
        concurrency = o.get("concurrency") or "4"
        if not concurrency.isdigit():
            raise UsageError(f"bad concurrency {concurrency!r} in store URL", hint="use 1 to 64")
        return cls(
            url.location,
            url.prefix,
            endpoint_url=o.get("endpoint") or None,
            region=o.get("region") or None,
            path_style=_truthy(o.get("path_style", "0"), "path_style"),
            sse=o.get("sse") or None,
            sse_kms_key_id=o.get("sse_kms_key_id") or None,
            storage_class=o.get("storage_class") or None,
            concurrency=int(concurrency),
            profile=o.get("profile") or None,
            display=url.display,
            credentials=credentials,
            credentials_from=credentials_from,
        )

    def _make_client(self, endpoint_url: str | None, region: str | None, path_style: bool, profile: str | None,
                     connect_timeout: float, read_timeout: float) -> Any:
        boto3 = _import_boto3()
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        try:
            keys = {} if self._credentials is None else {"aws_access_key_id": self._credentials[0],
                                                         "aws_secret_access_key": self._credentials[1]}
            session = boto3.session.Session(profile_name=profile, **keys)
        except ProfileNotFound:
            raise UsageError(f"AWS profile {profile!r} not found",
                             hint="check ~/.aws/config, or drop the profile option") from None
        except BotoCoreError as e:
            raise UsageError(f"cannot load the AWS configuration: {_one_line(e)}") from None
        self._session = session
        options: dict[str, Any] = {
            # AWS_DEFAULT_REGION or the profile's region (boto3), else AWS_REGION (what other SDKs read)
            "region_name": region or session.region_name or os.environ.get("AWS_REGION") or "us-east-1",
            "retries": {"total_max_attempts": 1},  # RetryingStore retries
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max(10, self.concurrency + 2),
            # S3-compatible servers differ in the flexible checksums they accept; every body we send
            # carries a Content-MD5 instead, and every object we read is checked against its SHA-256
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        if path_style:
            options["s3"] = {"addressing_style": "path"}
        try:
            config = Config(**options)
        except TypeError:  # botocore before 1.36 has no checksum settings (and sends none by default)
            del options["request_checksum_calculation"], options["response_checksum_validation"]
            config = Config(**options)
        try:
            return session.client("s3", endpoint_url=endpoint_url or None, config=config)
        except (BotoCoreError, ValueError) as e:
            raise UsageError(f"cannot set up the S3 client for {self.display}: {_one_line(e)}") from None

    # -- keys ----------------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        if not valid_key(key) or key.endswith("/"):
            raise ValueError(f"invalid store key {key!r}")
        return self.prefix + key

    # -- error translation ---------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str, key: str | None = None, *, on_object: bool = True) -> Iterator[None]:
        """Run a block of boto3 calls; translate whatever they raise into our errors (one line each).

        ``on_object``: the block is about one object, so a 404 means that object is missing (unless the
        bucket is); otherwise (listing) a 404 means the bucket is missing."""
        try:
            yield
            self._bucket_seen = True
        except VecbackupError:
            raise
        except Exception as e:
            translated = self._translate(e, doing, key, on_object)
            if isinstance(e, (KeyError, TypeError, AttributeError)):
                raise translated from e  # keep the cause: the answer's shape, or a bug of ours
            raise translated from None

    def _translate(self, e: BaseException, doing: str, key: str | None, on_object: bool) -> Exception:
        from botocore import exceptions as bx

        what = f"{doing} {key} in {self.display}" if key else f"{doing} {self.display}"
        where = self.endpoint or "AWS"
        if isinstance(e, bx.ClientError):
            code, status = _code(e), _status(e)
            message = (e.response.get("Error", {}) or {}).get("Message")
            detail = f"{code or status}" + (f": {_one_line(message, 120)}" if message else "")
            if code == "NoSuchBucket" or (status == 404 and not on_object):
                return self._no_bucket()
            if code in _NO_KEY_CODES or status == 404:
                if code != "NoSuchKey" and not self._bucket_seen and self._bucket_missing():
                    return self._no_bucket()  # a HEAD answer has no body: its 404 may be about the bucket
                return ObjectNotFound(f"{key} not found in {self.display}")
            if code == "PreconditionFailed" or status == 412:
                return ObjectExists(f"{key} already exists in {self.display}")
            if code in _PERMISSION_CODES or status in (401, 403):
                return self._denied(code or str(status), what)
            if code == "InvalidRequest" and self._lock is not None:
                return Unsupported(f"{what} was refused by {where}: {detail}",
                                   hint=f"the store's settings (vecbackup.json) ask for object lock {self._lock}: "
                                        f"bucket {self.bucket!r} needs Object Lock enabled")
            if code in _USAGE_CODES:
                hint = "check the region option" if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") \
                    else "check the store URL options (sse, sse_kms_key_id, storage_class, region)"
                return UsageError(f"{what} was refused by {where}: {detail}", hint=hint)
            if code == "NotImplemented" or status == 501:
                return Unsupported(f"{what}: {where} does not implement this request ({detail})",
                                   hint="this S3-compatible server lacks a feature used here (conditional "
                                        "writes, multipart uploads, sse or storage_class)")
            if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
                return TransientError(f"{what} failed at {where}: {detail}")
            return Unreachable(f"{what} failed at {where}: {detail}")
        if isinstance(e, bx.SSLError):
            return Unreachable(f"TLS error talking to {where} while {what}: {_one_line(e, 160)}",
                               hint="check the endpoint, or point AWS_CA_BUNDLE at the CA certificate")
        if isinstance(e, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ProxyConnectionError)):
            return TransientError(f"cannot connect to {where} while {what} ({type(e).__name__})",
                                  hint="check that the S3 endpoint is up and reachable")
        if isinstance(e, (bx.HTTPClientError, bx.ConnectionError, bx.IncompleteReadError, bx.ChecksumError,
                          bx.FlexibleChecksumError, bx.CapacityNotAvailableError)):
            # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError: the connection broke
            return TransientError(f"connection to {where} failed while {what} ({type(e).__name__})")
        if isinstance(e, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return PermissionDenied(f"no complete AWS credentials found for {self.display}",
                                    hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                                         "a web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) "
                                         "or an instance role")
        if isinstance(e, (bx.CredentialRetrievalError, bx.TokenRetrievalError, bx.SSOError, bx.NoAuthTokenError,
                          bx.MetadataRetrievalError, bx.RefreshWithMFAUnsupportedError)):
            return PermissionDenied(f"cannot obtain AWS credentials for {self.display} ({type(e).__name__})",
                                    hint="check AWS_PROFILE / the profile option, the web identity token "
                                         "file and role, or your SSO login")
        if isinstance(e, bx.BotoCoreError):
            return Unreachable(f"{what} failed: {type(e).__name__}: {_one_line(e, 160)}")
        if isinstance(e, OSError) or _is_urllib3_error(e):
            return TransientError(f"connection to {where} failed while {what} ({type(e).__name__})")
        # a response without the fields S3 always sends (KeyError, TypeError), or a bug of ours
        return Unreachable(f"{what}: unexpected answer from {where} ({type(e).__name__}: {_one_line(e, 120)})")

    def _no_bucket(self) -> NotFound:
        where = self.endpoint if self._custom_endpoint else "AWS"
        return NotFound(f"bucket {self.bucket!r} does not exist at {where}",
                        hint="create it or check the bucket name and region")

    def _denied(self, code: str, what: str) -> PermissionDenied:
        source = self._credential_source()
        if code == "InvalidAccessKeyId":
            msg, check = "the access key id is not known there", "check AWS_ACCESS_KEY_ID or the profile's key"
        elif code == "SignatureDoesNotMatch":
            msg, check = "the secret key does not match the access key", \
                "check AWS_SECRET_ACCESS_KEY or the profile's secret"
        elif code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
            msg, check = "the session token is expired or invalid", \
                "refresh AWS_SESSION_TOKEN, the SSO login or the role session"
        else:
            msg, check = "access denied", "check that these credentials may read, write, list and delete " \
                f"objects in bucket {self.bucket!r} (IAM and bucket policy)"
            if self._lock is not None:
                check += f"; with object lock {self._lock} also s3:PutObjectRetention"
        where = self.endpoint or "AWS"
        return PermissionDenied(f"{where} refused the credentials while {what}: {msg} ({code}); "
                                f"credentials from {source}", hint=check)

    def _credential_source(self) -> str:
        if self._credentials is not None and self._credentials_from:
            return self._credentials_from
        try:
            creds = self._session.get_credentials() if self._session is not None else None
        except Exception:
            creds = None
        method = getattr(creds, "method", None) if creds is not None else None
        if not method:
            return "the standard AWS chain"
        return _CREDENTIAL_SOURCES.get(method, f"the AWS chain ({method})")

    def _bucket_missing(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            return _status(e) == 404 or _code(e) == "NoSuchBucket"
        self._bucket_seen = True
        return False

    # -- the protocol ----------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        obj = self._key(key)
        data = bytes(data)
        with self._errors("writing", key):
            if if_absent and self._exists(obj):
                # If-None-Match below is what makes this safe against a race; this check also
                # protects on S3-compatible servers that ignore the header
                raise ObjectExists(f"{key} already exists in {self.display}")
            if len(data) >= self.multipart_threshold and len(data) > MIN_PART:
                self._put_multipart(obj, data, if_absent, self._retention_headers(key))
            else:
                kwargs: dict[str, Any] = {**self._extra, **self._retention_headers(key)}
                if if_absent:
                    kwargs["IfNoneMatch"] = "*"
                self.client.put_object(Bucket=self.bucket, Key=obj, Body=data, ContentMD5=_md5(data), **kwargs)

    def _exists(self, obj: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=obj)
        except ClientError as e:
            if _status(e) == 404 and _code(e) != "NoSuchBucket":
                if not self._bucket_seen and self._bucket_missing():
                    raise self._no_bucket() from None
                return False
            raise
        return True

    def _put_multipart(self, obj: str, data: bytes, if_absent: bool, retention: dict[str, Any]) -> None:
        """Parts uploaded by at most ``concurrency`` threads; any failure aborts the upload."""
        size = len(data)
        chunk = max(self.multipart_chunksize, -(-size // MAX_PARTS))
        ranges = [(start, min(start + chunk, size)) for start in range(0, size, chunk)]
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=obj, **self._extra,
                                                        **retention)["UploadId"]
        try:
            etags: dict[int, str] = {}
            failed = threading.Event()

            def upload(number: int, start: int, end: int) -> None:
                if failed.is_set():
                    return
                body = data[start:end]
                try:
                    r = self.client.upload_part(Bucket=self.bucket, Key=obj, UploadId=upload_id, PartNumber=number,
                                                Body=body, ContentMD5=_md5(body))
                except BaseException:
                    failed.set()
                    raise
                etags[number] = r["ETag"]

            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(ranges)),
                                    thread_name_prefix="vecbackup-s3-part") as pool:
                futures = [pool.submit(upload, n, s, e) for n, (s, e) in enumerate(ranges, start=1)]
                wait(futures, return_when=FIRST_EXCEPTION)
                for f in futures:
                    f.cancel()  # the ones not started yet
                errors = [exc for f in futures if not f.cancelled() and (exc := f.exception()) is not None]
            if errors:
                raise errors[0]
            parts = [{"ETag": etags[n], "PartNumber": n} for n in range(1, len(ranges) + 1)]
            kwargs: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=obj, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts}, **kwargs)
        except BaseException:
            self._abort(obj, upload_id)
            raise

    def _abort(self, obj: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=obj, UploadId=upload_id)
        except Exception:
            pass  # best effort: a bucket lifecycle rule should clean up incomplete uploads

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self._read(key, offset, length, {})

    def _read(self, key: str, offset: int, length: int | None, kwargs: dict[str, Any]) -> bytes:
        """GetObject of ``key`` (``kwargs``: a VersionId), or ``length`` bytes of it from ``offset``."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"bad range offset={offset} length={length}")
        obj = self._key(key)
        if length == 0:
            if kwargs:
                return b""
            self.stat(key)  # still ObjectNotFound when absent
            return b""
        from botocore.exceptions import ClientError

        ranged = bool(offset or length is not None)
        if ranged:
            kwargs = {**kwargs, "Range": f"bytes={offset}-" + ("" if length is None else str(offset + length - 1))}
        with self._errors("reading", key):
            try:
                r = self.client.get_object(Bucket=self.bucket, Key=obj, **kwargs)
            except ClientError as e:
                if _code(e) == "InvalidRange" or _status(e) == 416:
                    return b""  # the offset is at or past the end
                raise
            body = r["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            expected = r.get("ContentLength")
            if expected is not None and len(data) != expected:
                raise TransientError(f"reading {key} in {self.display}: got {len(data)} of {expected} bytes")
            if ranged and not r.get("ContentRange"):  # a server that ignored the Range header
                data = data[offset:] if length is None else data[offset : offset + length]
            return data

    def stat(self, key: str) -> ObjectInfo:
        obj = self._key(key)
        with self._errors("checking", key):
            r = self.client.head_object(Bucket=self.bucket, Key=obj)
            return ObjectInfo(key, int(r["ContentLength"]), r["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, in key order.

        The pages are collected before the first object is yielded: S3-compatible servers built on a
        file system (SeaweedFS) list a folder's contents before its siblings that sort earlier
        (``a/b`` before ``a-b``), so the order is checked and restored here. (RetryingStore holds a
        whole listing in memory anyway.)"""
        if prefix and not valid_key(prefix):
            raise ValueError(f"invalid store key prefix {prefix!r}")
        full = self.prefix + prefix
        base = len(self.prefix)
        found: list[ObjectInfo] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": self.page_size}
            if full:
                kwargs["Prefix"] = full
            if token:
                kwargs["ContinuationToken"] = token
            with self._errors("listing", prefix, on_object=False):
                page = self.client.list_objects_v2(**kwargs)
                for item in page.get("Contents") or []:
                    k: str = item["Key"]
                    if k.startswith(full) and not k.endswith("/"):  # folder markers are not objects
                        found.append(ObjectInfo(k[base:], int(item.get("Size", 0)), item["LastModified"].timestamp()))
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                break
        if any(a.key >= b.key for a, b in pairwise(found)):
            found = sorted({o.key: o for o in found}.values(), key=lambda o: o.key)
        yield from found

    def delete(self, key: str) -> None:
        obj = self._key(key)
        from botocore.exceptions import ClientError

        with self._errors("deleting", key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=obj)
            except ClientError as e:
                if _code(e) == "NoSuchKey":
                    return
                raise

    # -- versions (stores/versions.py: --as-of and undelete) ------------------------------------------------------

    def versioning(self) -> str:
        """The bucket's versioning status: "Enabled", "Suspended" or "" (never turned on)."""
        with self._errors("reading the versioning of", None, on_object=False):
            return str(self.client.get_bucket_versioning(Bucket=self.bucket).get("Status") or "")

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """Every version and delete marker under ``prefix``, keys in order, each key's entries newest first (as
        ListObjectVersions gives them; collected before the first is yielded, as :meth:`list` does)."""
        if prefix and not valid_key(prefix):
            raise ValueError(f"invalid store key prefix {prefix!r}")
        full = self.prefix + prefix
        found: list[tuple[str, int, ObjectVersion]] = []
        markers: dict[str, str] = {}
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": self.page_size}
            if full:
                kwargs["Prefix"] = full
            kwargs.update(markers)
            with self._errors("listing the versions of", prefix, on_object=False):
                page = self.client.list_object_versions(**kwargs)
            entries = [(item, False) for item in page.get("Versions") or []]
            entries += [(item, True) for item in page.get("DeleteMarkers") or []]
            for item, deleted in entries:
                v = self._version(item, deleted, full)
                if v is not None:
                    found.append((v.key, len(found), v))
            if not page.get("IsTruncated"):
                break
            markers = {"KeyMarker": page.get("NextKeyMarker") or "",
                       "VersionIdMarker": page.get("NextVersionIdMarker") or ""}
            if not markers["KeyMarker"]:
                break
        # versions and markers come in two lists: each key's entries newest first again (the latest, then by time;
        # within one second a delete marker before a version: a write and its delete in the same second is far
        # likelier than a delete and a rewrite of the same key, which vecbackup's keys never see)
        found.sort(key=lambda e: (e[0], not e[2].latest, -e[2].mtime, not e[2].deleted, e[1]))
        for _, _, v in found:
            yield v

    def _version(self, item: Any, deleted: bool, full: str) -> ObjectVersion | None:
        """One entry of a ListObjectVersions page under ``full``, or None for a folder marker or a key outside it;
        CorruptData for an entry without a key, version id or time (a server's answer is input like any other)."""
        try:
            k, vid, when = item["Key"], item["VersionId"], item["LastModified"].timestamp()
            size = int(item.get("Size", 0) or 0)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise CorruptData(f"{self.display}: the server listed a version without its key, version id or time "
                              f"({_one_line(item)})") from None
        if not isinstance(k, str) or not k.startswith(full) or k.endswith("/") or not valid_key(k[len(self.prefix):]):
            return None
        return ObjectVersion(k[len(self.prefix):], str(vid), size, when, deleted, bool(item.get("IsLatest")))

    def get_version(self, key: str, version_id: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self._read(key, offset, length, {"VersionId": version_id})

    def undelete(self, version: ObjectVersion, markers: Sequence[ObjectVersion]) -> None:
        """Remove the delete markers written over ``version``: the version below them is current again."""
        for marker in markers:
            with self._errors("removing a delete marker of", marker.key):
                self.client.delete_object(Bucket=self.bucket, Key=self._key(marker.key), VersionId=marker.version_id)

    # -- object lock (stores.base.Retaining) --------------------------------------------------------------

    @property
    def object_lock(self) -> ObjectLock | None:
        return self._lock

    def lock_objects(self, lock: ObjectLock) -> None:
        self._lock = lock

    def _retention_headers(self, key: str) -> dict[str, Any]:
        """The lock a new object under ``key`` is written with: none for a transient one (a store lock)."""
        if self._lock is None or is_transient(key):
            return {}
        return {"ObjectLockMode": self._lock.mode.upper(),
                "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=self._lock.days)}

    def check_object_lock(self) -> None:
        from botocore.exceptions import ClientError

        enable = (f"bucket {self.bucket!r} has no Object Lock: create the bucket with Object Lock enabled (aws s3api "
                  f"create-bucket --bucket NAME --object-lock-enabled-for-bucket; or `aws s3api "
                  "put-object-lock-configuration` on a versioned bucket), or init without --object-lock")
        with self._errors("reading the object lock configuration of", on_object=False):
            try:
                r = self.client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) in ("ObjectLockConfigurationNotFoundError", "InvalidRequest") or (
                        _status(e) == 404 and _code(e) != "NoSuchBucket"):
                    raise Unsupported(enable) from None
                if _code(e) == "NotImplemented" or _status(e) == 501:
                    raise Unsupported(f"{self.endpoint or 'the S3 server'} does not implement Object Lock; "
                                      "init without --object-lock") from None
                raise
        if (r.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
            raise Unsupported(enable)

    def retention(self, key: str) -> Retention | None:
        obj = self._key(key)
        with self._errors("reading the retention of", key):
            r = self.client.head_object(Bucket=self.bucket, Key=obj)
        mode, until = r.get("ObjectLockMode"), r.get("ObjectLockRetainUntilDate")
        if not mode or until is None:
            return None
        return Retention(str(mode).lower(), until.astimezone(UTC))

    def retain(self, key: str, retention: Retention) -> None:
        obj = self._key(key)
        with self._errors("extending the retention of", key):
            self.client.put_object_retention(Bucket=self.bucket, Key=obj, Retention={
                "Mode": retention.mode.upper(), "RetainUntilDate": retention.until})

    def __repr__(self) -> str:
        return f"S3Store({self.display!r})"


def _code(e: BaseException) -> str:
    response = getattr(e, "response", None) or {}
    return str((response.get("Error", {}) or {}).get("Code") or "")


def _status(e: BaseException) -> int:
    response = getattr(e, "response", None) or {}
    return int((response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def _is_urllib3_error(e: BaseException) -> bool:
    try:
        from urllib3.exceptions import HTTPError
    except ImportError:  # pragma: no cover - botocore depends on urllib3
        return False
    return isinstance(e, HTTPError)


__all__ = ["S3Store"]
