"""Object storage: a run under a URL prefix (``s3://bucket/prefix``, ``memory://prefix``), the one place
that imports fsspec and s3fs.

Objects are never half-visible: a PUT (or a multipart upload's completion) makes the whole object
appear at once. A shard is written once by conditional create (``If-None-Match: *``), the manifest
is replaced by compare-and-swap on its ETag (``If-Match``). Every failure leaves here as one
ObjectStoreError line: missing credentials, a missing bucket, access denied, an endpoint that cannot
be reached, throttling or a 5xx that the client's retries (with backoff) did not get past.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from trajgen.errors import StorageError
from trajgen.store._fs import pause_point

SCHEMES = {"s3": "s3fs", "s3a": "s3fs", "memory": "fsspec"}  # scheme -> the package that serves it
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
ATTEMPTS = 6  # tries of a request that met throttling, a 5xx or a dropped connection, with backoff between


def attempts_allowed() -> int:
    return max(1, int(os.environ.get("TRAJGEN_S3_ATTEMPTS", ATTEMPTS)))


PART_BYTES = 32 * 2**20  # objects of twice this or more go up in parts of this size (a multipart upload)


def part_bytes() -> int:
    """The multipart part size (TRAJGEN_S3_PART_BYTES, at least S3's minimum of 5 MiB)."""
    return max(5 * 2**20, int(os.environ.get("TRAJGEN_S3_PART_BYTES", PART_BYTES)))


_default_options: dict = {}  # --storage-options, for every Bucket this process opens without options of its own


def set_default_options(options: dict) -> None:
    global _default_options
    _default_options = dict(options)


class ObjectStoreError(StorageError):
    """Object storage refused or failed an operation; one line that says what to do next."""


class PreconditionFailed(ObjectStoreError):
    """A conditional write lost: the object exists already (create) or changed since it was read (replace)."""


def is_url(location: object) -> bool:
    """Whether a run location is a URL (``s3://...``), not a path; a Windows drive ('C:/') is a path."""
    return isinstance(location, str) and _URL.match(location) is not None


def check_url(url: str) -> str:
    """The URL with no trailing slash; ObjectStoreError (exit 2 at the CLI) for a scheme trajgen cannot serve."""
    found = _URL.match(url)
    scheme = found.group(1).lower() if found is not None else ""
    if scheme not in SCHEMES:
        raise UnsupportedURLError(
            f"{url}: trajgen keeps runs on a local or mounted filesystem, or in object storage under s3:// "
            f"(AWS S3 or any S3-compatible store via AWS_ENDPOINT_URL_S3) or memory://; give a path or an s3:// URL"
        )
    rest = url[len(scheme) + 3 :].strip("/")
    if scheme != "memory" and "/" not in rest:
        raise UnsupportedURLError(f"{url} names a whole bucket; give a prefix for the run, e.g. {url.rstrip('/')}/run1")
    return f"{scheme}://{rest}"


class UnsupportedURLError(ObjectStoreError):
    exit_code = 2


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


_memory_lock = threading.Lock()  # memory:// lives in this process: one lock makes its conditional writes exact


class Bucket:
    """The objects under one run's URL prefix. Picklable (a worker rebuilds its own client)."""

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = check_url(url)
        self.scheme = self.url.split("://", 1)[0]
        self.root = self.url.split("://", 1)[1]
        self.bucket = self.root.split("/", 1)[0]
        self.options = dict(_default_options if storage_options is None else storage_options)
        self._fs = None
        self._pid = -1

    def __getstate__(self):
        return {"url": self.url, "options": self.options}

    def __setstate__(self, state):
        Bucket.__init__(self, state["url"], state["options"])

    def __repr__(self):
        return f"Bucket({self.url!r})"

    @property
    def fs(self):
        if self._fs is None or self._pid != os.getpid():  # a forked worker must not share the parent's sessions
            self._fs, self._pid = _filesystem(self.scheme, self.options), os.getpid()
        return self._fs

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def url_of(self, name: str) -> str:
        return f"{self.url}/{name}"

    # reads
    def read(self, name: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        return self.read_tagged(name)[0]

    def read_tagged(self, name: str) -> tuple[bytes | None, str | None]:
        """(bytes, ETag) of the object, or (None, None) when there is none."""
        with translated(self, f"read {self.url_of(name)}"):
            if self.scheme == "memory":
                with _memory_lock:
                    try:
                        data = self.fs.cat_file(self.path(name))
                    except FileNotFoundError:
                        return None, None
                    return data, _etag(data)
            from fsspec.asyn import sync

            try:
                return sync(self.fs.loop, _get_tagged, self.fs, self.bucket, self._key(name))
            except FileNotFoundError as e:
                if "bucket" in str(e).lower():
                    raise
                return None, None

    def read_into(self, name: str, local_path: str) -> bool:
        """Download the object to a local file; False when there is no such object."""
        with translated(self, f"download {self.url_of(name)}"):
            try:
                self.fs.get_file(self.path(name), local_path)
            except FileNotFoundError as e:
                if "bucket" in str(e).lower():
                    raise
                return False
        return True

    def names(self, prefix: str = "") -> list[str]:
        """Names (relative to the run) of every object under ``prefix``, listed afresh (never from a cache)."""
        with translated(self, f"list {self.url_of(prefix)}"):
            base = self.path(prefix).rstrip("/")
            try:
                found = self.fs.find(base, refresh=True) if self.scheme != "memory" else self.fs.find(base)
            except FileNotFoundError as e:
                if "bucket" in str(e).lower():
                    raise
                return []
            found = [p.lstrip("/") for p in found]  # memory:// names its paths with a leading slash
            start = len(self.root) + 1
            return sorted(p[start:] for p in found if p.startswith(self.root + "/"))

    # writes
    def create(self, name: str, data: bytes) -> str:
        """Write a new object, only if none is there (``If-None-Match: *``); its ETag. PreconditionFailed
        when one exists. A failed upload leaves nothing under the name (aborted, or never completed)."""
        with translated(self, f"write {self.url_of(name)}"):
            if self.scheme == "memory":
                with _memory_lock:
                    if self.fs.exists(self.path(name)):
                        raise PreconditionFailed(f"{self.url_of(name)} exists already")
                    self.fs.pipe_file(self.path(name), bytes(data))
                    return _etag(bytes(data))
            try:
                if len(data) >= 2 * part_bytes():
                    return self._create_in_parts(name, data)
                return self.fs.call_s3(
                    "put_object", Bucket=self.bucket, Key=self._key(name), Body=bytes(data), IfNoneMatch="*"
                )["ETag"]
            except (OSError, FileExistsError) as e:
                if isinstance(e, FileExistsError) or _precondition(e):
                    raise PreconditionFailed(f"{self.url_of(name)} exists already") from None
                raise
            finally:
                self.fs.invalidate_cache(self.path(name))

    def _create_in_parts(self, name: str, data: bytes) -> str:
        """A multipart upload: nothing is visible under ``name`` until its completion, which is the
        conditional create; aborted on any failure (a killed writer's upload stays pending: resume aborts it)."""
        key, view = self._key(name), memoryview(data).cast("B")
        upload = self.fs.call_s3("create_multipart_upload", Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts, size = [], part_bytes()
            for number, start in enumerate(range(0, len(view), size), 1):
                part = bytes(view[start : start + size])
                etag = self.fs.call_s3(
                    "upload_part", Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=part
                )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                pause_point("upload-part")
            return self.fs.call_s3(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )["ETag"]
        except BaseException:
            try:
                self.fs.call_s3("abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload)
            except Exception:
                pass  # left pending: the next resume aborts it
            raise

    def replace(self, name: str, data: bytes, etag: str) -> str:
        """Replace the object only if it still has ``etag`` (``If-Match``); its new ETag. PreconditionFailed
        when someone changed or removed it since."""
        with translated(self, f"write {self.url_of(name)}"):
            if self.scheme == "memory":
                with _memory_lock:
                    try:
                        current = _etag(self.fs.cat_file(self.path(name)))
                    except FileNotFoundError:
                        current = None
                    if current != etag:
                        raise PreconditionFailed(f"{self.url_of(name)} changed since it was read")
                    self.fs.pipe_file(self.path(name), bytes(data))
                    return _etag(bytes(data))
            try:
                response = self.fs.call_s3(
                    "put_object", Bucket=self.bucket, Key=self._key(name), Body=bytes(data), IfMatch=etag
                )
            except (OSError, FileNotFoundError) as e:
                if _precondition(e):
                    raise PreconditionFailed(f"{self.url_of(name)} changed since it was read") from None
                raise
            self.fs.invalidate_cache(self.path(name))
            return response["ETag"]

    def put(self, name: str, data: bytes) -> None:
        """Write or overwrite an object that is not part of the commit record (PROGRESS.txt, run.log)."""
        with translated(self, f"write {self.url_of(name)}"):
            if self.scheme == "memory":
                with _memory_lock:
                    self.fs.pipe_file(self.path(name), bytes(data))
                return
            self.fs.pipe_file(self.path(name), bytes(data))

    def remove(self, name: str) -> None:
        with translated(self, f"remove {self.url_of(name)}"):
            try:
                self.fs.rm_file(self.path(name))
            except FileNotFoundError:
                pass

    # multipart uploads a killed writer left pending
    def pending_uploads(self, prefix: str = "") -> list[tuple[str, str]]:
        """(name, upload id) of every multipart upload begun and never completed under ``prefix``."""
        if self.scheme == "memory":
            return []
        with translated(self, f"list the pending uploads under {self.url_of(prefix)}"):
            found: list[tuple[str, str]] = []
            marker: dict[str, str] = {}
            while True:
                page = self.fs.call_s3("list_multipart_uploads", Bucket=self.bucket, Prefix=self._key(prefix), **marker)
                start = len(self._key(""))
                found += [(u["Key"][start:], u["UploadId"]) for u in page.get("Uploads", [])]
                if not page.get("IsTruncated"):
                    return found
                marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def abort_upload(self, name: str, upload_id: str) -> None:
        with translated(self, f"abort a pending upload of {self.url_of(name)}"):
            self.fs.call_s3("abort_multipart_upload", Bucket=self.bucket, Key=self._key(name), UploadId=upload_id)

    def check_reachable(self) -> None:
        """ObjectStoreError unless the bucket exists and these credentials may list it."""
        if self.scheme == "memory":
            return
        with translated(self, f"open {self.url}"):
            self.fs.call_s3("list_objects_v2", Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)

    def _key(self, name: str) -> str:
        prefix = self.root.split("/", 1)[1] if "/" in self.root else ""
        return f"{prefix}/{name}" if prefix else name


_clients: dict[tuple[int, str, str], object] = {}  # (pid, scheme, options and AWS_* environment): one client each
_clients_lock = threading.Lock()


def _filesystem(scheme: str, options: dict):
    """This process's client for ``scheme`` with ``options`` (and the AWS_* environment): made once (a
    client costs ~0.3 s of CPU), then shared by every Bucket, e.g. by each shard a worker makes."""
    environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))  # credentials, endpoint
    key = (os.getpid(), scheme, json.dumps([options, environment], sort_keys=True, default=str))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _new_filesystem(scheme, options)
        return _clients[key]


def _new_filesystem(scheme: str, options: dict):
    try:
        import fsspec
    except ImportError:
        raise ObjectStoreError(
            "object storage needs fsspec and s3fs; install them with: pip install 'trajgen[s3]'"
        ) from None
    if scheme in ("s3", "s3a"):
        try:
            import s3fs
        except ImportError:
            raise ObjectStoreError("s3:// needs s3fs; install it with: pip install 'trajgen[s3]'") from None
        settings = {"skip_instance_cache": True} | options
        attempts = {"total_max_attempts": attempts_allowed(), "mode": "standard"}  # exponential backoff, jitter
        settings["config_kwargs"] = {"retries": attempts} | settings.get("config_kwargs", {})
        fs = s3fs.S3FileSystem(**settings)
        fs.retries = 1  # botocore retries (above); s3fs's own retries around each of those would multiply them
        return fs
    return fsspec.filesystem(scheme, skip_instance_cache=True, **options)


async def _get_tagged(fs, bucket: str, key: str) -> tuple[bytes, str]:
    """One GET: the bytes and the ETag of that very version (a HEAD after it could see a newer one)."""
    response = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return await body.read(), response["ETag"]


def _precondition(e: BaseException) -> bool:
    text = str(e)
    return "PreconditionFailed" in text or "pre-conditions you specified did not hold" in text


_ENDPOINT = "AWS_ENDPOINT_URL_S3"


@contextmanager
def translated(bucket: Bucket, what: str) -> Iterator[None]:
    """Any failure of the client as one ObjectStoreError line: what failed, why, and what to do."""
    try:
        yield
    except (ObjectStoreError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        raise ObjectStoreError(explain(bucket, what, e)) from None


def explain(bucket: Bucket, what: str, e: BaseException) -> str:
    reason = " ".join(str(e).split()) or type(e).__name__
    name = type(e).__name__
    lowered = reason.lower()
    if name in ("NoCredentialsError", "PartialCredentialsError") or "unable to locate credentials" in lowered:
        return (
            f"could not {what}: no credentials for {bucket.scheme}://; set AWS_ACCESS_KEY_ID and "
            f'AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass --storage-options \'{{"key": ..., "secret": ...}}\''
        )
    if "bucket does not exist" in lowered or "nosuchbucket" in lowered:
        return f"could not {what}: the bucket {bucket.bucket!r} does not exist; create it, or check the URL"
    if isinstance(e, PermissionError) or any(
        code in reason for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden")
    ):
        return (
            f"could not {what}: access denied ({reason}); check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) "
            f"and that they may read and write {bucket.url}"
        )
    endpoint = os.environ.get(_ENDPOINT) or bucket.options.get("endpoint_url") or "the storage endpoint"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or "connect" in lowered:
        return f"could not {what}: cannot reach {endpoint} ({reason}); check the network and {_ENDPOINT}"
    return (
        f"could not {what}: {reason} (after {attempts_allowed()} attempts with backoff); the store or the connection "
        f"failed, nothing partial was committed; try again when {endpoint} answers"
    )
