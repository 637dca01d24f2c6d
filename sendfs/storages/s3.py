"""S3 objects through s3fs, used natively (``asynchronous=True``).

Every byte range is ONE streaming ``get_object`` request, ``Range: bytes=a-b``, pinned to the
object seen at open time (``VersionId`` when the bucket is versioned, else ``IfMatch`` with its
ETag), its body iterated in large chunks and closed in ``finally``. A range never downloads more
than it asks for, and an object overwritten mid-download makes the read fail instead of mixing
bytes of two versions.

s3fs maps both ``PreconditionFailed`` and ``InvalidRange`` to ``OSError(EINVAL)``; the S3 error
code is read from the botocore error on ``__cause__`` to tell them apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..exceptions import BackendError, SourceChanged, SourceForbidden
from .base import FileInfo, ResourceBase

__all__ = ["S3Resource", "is_s3_filesystem", "s3_error_code"]

#: s3fs reads the body in pieces of this size; aiobotocore's plain iteration yields 1 KiB.
S3_CHUNK_SIZE = 1024 * 1024

_CHANGED_CODES = frozenset({"PreconditionFailed", "InvalidRange", "NoSuchKey", "NoSuchVersion"})


def is_s3_filesystem(fs: object) -> bool:
    """Tell whether ``fs`` is an s3fs ``S3FileSystem`` or its class (without importing s3fs)."""
    cls = fs if isinstance(fs, type) else type(fs)
    return any(
        klass.__module__.startswith("s3fs.") and klass.__name__ == "S3FileSystem"
        for klass in cls.__mro__
    )


def s3_error_code(exc: BaseException) -> str | None:
    """Find the S3 error code (``"NoSuchKey"``, ``"PreconditionFailed"``...) behind an error.

    Args:
        exc: An error raised by s3fs or botocore, possibly wrapping the botocore one.

    Returns:
        The code from the first botocore ``ClientError`` in the chain, else ``None``.
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            return str(code) if code is not None else None
        seen = seen.__cause__ or seen.__context__
    return None


class S3Resource(ResourceBase):
    """One S3 object, read with pinned, ranged, streaming ``get_object`` calls.

    Args:
        fs: An ``S3FileSystem`` created with ``asynchronous=True`` in the running loop.
        path: ``bucket/key`` as s3fs spells it.
        info: The metadata from ``_info(path)`` at open time.
    """

    chunk_size_hint = S3_CHUNK_SIZE

    def __init__(self, fs: Any, path: str, info: FileInfo) -> None:
        self._fs = fs
        self._path = path
        self._info = info

    def get_object_kwargs(self, start: int, stop: int) -> dict[str, Any]:
        """The ``get_object`` arguments for ``[start, stop)``, pinned to the opened object."""
        bucket, key, path_version = self._fs.split_path(self._path)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        kwargs["Range"] = f"bytes={start}-{stop - 1}"
        version = self._info.version or path_version
        if version:
            kwargs["VersionId"] = version
        elif self._info.etag:
            kwargs["IfMatch"] = f'"{self._info.etag}"'
        return kwargs

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Stream ``[start, stop)`` with one ranged request; nothing for an empty range."""
        end = self.range_end(stop)
        if start >= end:
            return
        try:
            response = await self._fs._call_s3("get_object", **self.get_object_kwargs(start, end))
        except Exception as exc:
            raise self._map_error(exc) from exc
        body = response["Body"]
        received = 0
        try:
            async for chunk in body.iter_chunks(chunk_size):
                received += len(chunk)
                yield chunk
        except Exception as exc:
            raise BackendError(f"s3://{self._path}: the stream broke: {exc!r}") from exc
        finally:
            body.close()
        if received != end - start:
            raise BackendError(
                f"s3://{self._path}: got {received} bytes for a range of {end - start}"
            )

    def _map_error(self, exc: BaseException) -> Exception:
        code = s3_error_code(exc)
        if code in _CHANGED_CODES or isinstance(exc, FileNotFoundError):
            return SourceChanged(f"s3://{self._path} changed since it was opened ({code})")
        if code in {"AccessDenied", "Forbidden"} or isinstance(exc, PermissionError):
            return SourceForbidden(f"access to s3://{self._path} denied")
        return BackendError(f"s3://{self._path}: get_object failed: {exc!r}")
