"""S3 objects through s3fs, used natively (``asynchronous=True``).

A GET usually costs ONE request: with a :class:`~sendfs.storages.base.ReadHint`, the object is
opened with ``get_object`` carrying the client's range and preconditions, its metadata is taken
from that answer (a 304 included) and its body is kept for the range the response then reads.
Without a hint (HEAD, multipart ranges, If-Range), ``head_object`` opens it.

Every other byte range is ONE streaming ``get_object`` request, ``Range: bytes=a-b``, pinned to
the object seen at open time (``IfMatch`` with its ETag, and ``VersionId`` too when the bucket
is versioned), its body iterated in large chunks and closed in ``finally``. A range never
downloads more than it asks for, and an object overwritten mid-download makes the read fail
instead of mixing bytes of two versions.

botocore checks the CRC S3 sends with a body (``x-amz-checksum-*``; real S3 sends none for a
ranged GET) when the body has been read to its end. The last piece of every range is held back
until then, so a body corrupted on the way aborts the response before its last byte instead of
reaching the client whole.

s3fs maps both ``PreconditionFailed`` and ``InvalidRange`` to ``OSError(EINVAL)``; the S3 error
code is read from the botocore error on ``__cause__`` to tell them apart.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from typing import Any

from ..exceptions import BackendError, SourceChanged, SourceForbidden
from .base import FileInfo, ReadHint, ResourceBase
from .metadata import info_from_fsspec, to_utc_datetime, unquote_etag

__all__ = [
    "S3_POOL_CONNECTIONS",
    "S3_SIGNATURE_VERSION",
    "S3Resource",
    "is_s3_filesystem",
    "open_hinted",
    "s3_error_code",
    "with_pool_size",
]

#: s3fs reads the body in pieces of this size; aiobotocore's plain iteration yields 1 KiB.
S3_CHUNK_SIZE = 1024 * 1024

#: Connections in the pool of each S3 filesystem sendfs creates (botocore's default is 10). A
#: download holds one for as long as it streams; a request that finds them all taken waits for
#: one (``storage_timeout`` bounds the wait). Set with the storage option
#: ``config_kwargs={"max_pool_connections": N}``.
S3_POOL_CONNECTIONS = 64

#: botocore's signature version for the S3 filesystems sendfs creates: SigV4 for requests and
#: for presigned URLs alike. Set with the storage option ``config_kwargs={"signature_version":
#: ...}``.
S3_SIGNATURE_VERSION = "s3v4"

_CHANGED_CODES = frozenset({"PreconditionFailed", "InvalidRange", "NoSuchKey", "NoSuchVersion"})


def is_s3_filesystem(fs: object) -> bool:
    """Tell whether ``fs`` is an s3fs ``S3FileSystem`` or its class (without importing s3fs)."""
    cls = fs if isinstance(fs, type) else type(fs)
    return any(
        klass.__module__.startswith("s3fs.") and klass.__name__ == "S3FileSystem"
        for klass in cls.__mro__
    )


def with_pool_size(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``S3FileSystem`` with sendfs's botocore defaults, unless they set their own.

    The defaults: :data:`S3_POOL_CONNECTIONS` connections, and :data:`S3_SIGNATURE_VERSION`,
    so presigned URLs are SigV4 (botocore may still presign with SigV2, whose URLs leak the
    access key id and do not work in newer regions; ``expires`` up to 7 days is SigV4's rule).
    Anonymous filesystems keep sending unsigned requests: s3fs replaces the signature version.

    Args:
        options: Storage options; ``config_kwargs`` (botocore ``Config`` arguments) may
            already carry ``max_pool_connections`` or ``signature_version``.
    """
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", S3_POOL_CONNECTIONS)
    config.setdefault("signature_version", S3_SIGNATURE_VERSION)
    return {**options, "config_kwargs": config}


def s3_error_response(exc: BaseException) -> dict[str, Any] | None:
    """Find the parsed S3 error response behind an error s3fs raised.

    Args:
        exc: An error raised by s3fs or botocore, possibly wrapping the botocore one.

    Returns:
        The ``response`` of the first botocore ``ClientError`` in the chain, else ``None``.
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return response
        seen = seen.__cause__ or seen.__context__
    return None


def s3_error_code(exc: BaseException) -> str | None:
    """Find the S3 error code (``"NoSuchKey"``, ``"PreconditionFailed"``...) behind an error.

    Args:
        exc: An error raised by s3fs or botocore, possibly wrapping the botocore one.

    Returns:
        The code from the first botocore ``ClientError`` in the chain, else ``None``.
    """
    response = s3_error_response(exc)
    code = None if response is None else response.get("Error", {}).get("Code")
    return None if code is None else str(code)


def hinted_get_object_kwargs(
    bucket: str, key: str, version: str | None, hint: ReadHint
) -> dict[str, Any]:
    """The ``get_object`` arguments that carry a read hint's range and preconditions.

    Args:
        bucket: The bucket.
        key: The object key.
        version: A version id from the URL, if any.
        hint: What the response expects to read.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        kwargs["VersionId"] = version
    if hint.range is not None:
        kwargs["Range"] = hint.range
    if hint.if_match is not None:
        kwargs["IfMatch"] = hint.if_match
    if hint.if_none_match is not None:
        kwargs["IfNoneMatch"] = hint.if_none_match
    if hint.if_modified_since is not None:
        kwargs["IfModifiedSince"] = hint.if_modified_since
    if hint.if_unmodified_since is not None:
        kwargs["IfUnmodifiedSince"] = hint.if_unmodified_since
    return kwargs


def _content_range(value: object) -> tuple[int, int, int] | None:
    """``(start, stop, size)`` from ``bytes first-last/size``; ``None`` if it is not that."""
    if not isinstance(value, str) or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, last = span.partition("-")
    try:
        return int(first), int(last) + 1, int(total)
    except ValueError:
        return None


async def open_hinted(fs: Any, path: str, hint: ReadHint) -> S3Resource | None:
    """Open ``path`` with one ``get_object`` carrying ``hint``; ``None`` to open it plainly.

    The metadata comes from the answer: ``Content-Range`` gives the size of a ranged answer, a
    304 gives the validators only. Any S3 error code (no such key, which may be a prefix; a
    failed precondition or range, which needs the size) returns ``None``, so the caller opens
    with ``head_object`` and gets the same answer it would have without a hint.

    Args:
        fs: An ``S3FileSystem`` created with ``asynchronous=True`` in the running loop.
        path: ``bucket/key`` as s3fs spells it.
        hint: The range and preconditions of the request.

    Raises:
        Exception: Whatever s3fs raised for errors that are not S3 answers (unreachable
            endpoint, timeouts), for the caller to map.
    """
    bucket, key, version = fs.split_path(path)
    try:
        response = await fs._call_s3(
            "get_object", **hinted_get_object_kwargs(bucket, key, version, hint)
        )
    except Exception as exc:
        error = s3_error_response(exc)
        if error is None:
            raise
        if str(error.get("Error", {}).get("Code")) in {"304", "NotModified"}:
            fields = error.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            info = FileInfo(
                size=None,
                mtime=to_utc_datetime(fields.get("last-modified")),
                etag=unquote_etag(fields.get("etag")),
                name=posixpath.basename(key) or None,
                version=fields.get("x-amz-version-id") or version,
                validators_only=True,
            )
            return S3Resource(fs, path, info)
        return None
    body = response["Body"]
    span = _content_range(response.get("ContentRange"))
    length = int(response.get("ContentLength", 0))
    start, stop, size = span if span is not None else (0, length, length)
    raw = {
        "name": path,
        "size": size,
        "ETag": response.get("ETag"),
        "LastModified": response.get("LastModified"),
        "ContentType": response.get("ContentType"),
        "VersionId": response.get("VersionId") or version,
    }
    resource = S3Resource(fs, path, info_from_fsspec(raw, path=path))
    resource.keep_body(start, stop, body)
    return resource


class S3Resource(ResourceBase):
    """One S3 object, read with pinned, ranged, streaming ``get_object`` calls.

    Args:
        fs: An ``S3FileSystem`` created with ``asynchronous=True`` in the running loop.
        path: ``bucket/key`` as s3fs spells it.
        info: The metadata from ``_info(path)`` at open time.
    """

    chunk_size_hint = S3_CHUNK_SIZE
    #: Presigned URLs carry the type and disposition (``response-content-*``).
    presign_sets_headers = True

    def __init__(self, fs: Any, path: str, info: FileInfo) -> None:
        self._fs = fs
        self._path = path
        self._info = info
        self._kept: tuple[int, int, Any] | None = None

    def keep_body(self, start: int, stop: int, body: Any) -> None:
        """Keep the unread body of an answer that covers ``[start, stop)``, for ``iter_range``.

        Args:
            start: The first byte the body holds.
            stop: One past its last byte.
            body: The aiobotocore streaming body; closed by :meth:`aclose` if never read.
        """
        self._kept = (start, stop, body)

    def _take_body(self, start: int, stop: int) -> Any:
        """The kept body if it holds exactly ``[start, stop)``; any other is closed."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        if kept[:2] == (start, stop):
            return kept[2]
        kept[2].close()
        return None

    async def aclose(self) -> None:
        """Close a kept body that was never read (releasing its connection)."""
        kept, self._kept = self._kept, None
        if kept is not None:
            kept[2].close()

    def get_object_kwargs(self, start: int, stop: int) -> dict[str, Any]:
        """The ``get_object`` arguments for ``[start, stop)``, pinned to the opened object."""
        bucket, key, path_version = self._fs.split_path(self._path)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        kwargs["Range"] = f"bytes={start}-{stop - 1}"
        version = self._info.version or path_version
        if version:
            kwargs["VersionId"] = version
        if self._info.etag:
            # Also with a version: on a bucket whose versioning is suspended the version is
            # "null", and an overwrite replaces that version in place.
            kwargs["IfMatch"] = f'"{self._info.etag}"'
        return kwargs

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Stream ``[start, stop)`` with one ranged request; nothing for an empty range."""
        end = self.range_end(stop)
        if start >= end:
            return
        body = self._take_body(start, end)
        if body is None:
            try:
                response = await self._fs._call_s3(
                    "get_object", **self.get_object_kwargs(start, end)
                )
            except Exception as exc:
                raise self._map_error(exc) from exc
            body = response["Body"]
        received = 0
        held = b""  # the last piece waits for the end of the body, where its checksum is checked
        try:
            async for chunk in body.iter_chunks(chunk_size):
                received += len(chunk)
                if held:
                    yield held
                held = chunk
        except Exception as exc:
            raise BackendError(f"s3://{self._path}: the stream broke: {exc!r}") from exc
        finally:
            body.close()
        if received != end - start:
            raise BackendError(
                f"s3://{self._path}: got {received} bytes for a range of {end - start}"
            )
        if held:
            yield held

    async def presign(
        self,
        *,
        expires: int,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        """A presigned ``GetObject`` URL for the opened version of this object.

        Args:
            expires: Lifetime of the URL in seconds (S3 allows up to 7 days).
            content_type: Sent as ``response-content-type``: S3 answers with it.
            content_disposition: Sent as ``response-content-disposition``.

        Returns:
            The URL, pinned with ``versionId`` on versioned buckets; ``None`` for anonymous
            filesystems and when no credentials are found (nothing to sign with).

        Security:
            The URL lets anyone holding it read this object until it expires.
        """
        if getattr(self._fs, "anon", False):
            return None
        _, _, path_version = self._fs.split_path(self._path)
        params: dict[str, Any] = {}
        if self._info.version and not path_version:
            params["VersionId"] = self._info.version
        if content_type is not None:
            params["ResponseContentType"] = content_type
        if content_disposition is not None:
            params["ResponseContentDisposition"] = content_disposition
        try:
            url: str = await self._fs._url(self._path, expires=expires, **params)
        except Exception as exc:
            if type(exc).__name__ in {"NoCredentialsError", "PartialCredentialsError"}:
                return None
            raise BackendError(f"s3://{self._path}: cannot presign: {exc!r}") from exc
        return url

    def _map_error(self, exc: BaseException) -> Exception:
        code = s3_error_code(exc)
        if code in _CHANGED_CODES or isinstance(exc, FileNotFoundError):
            return SourceChanged(f"s3://{self._path} changed since it was opened ({code})")
        if code in {"AccessDenied", "Forbidden"} or isinstance(exc, PermissionError):
            return SourceForbidden(f"access to s3://{self._path} denied")
        return BackendError(f"s3://{self._path}: get_object failed: {exc!r}")
