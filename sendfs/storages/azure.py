"""Azure Blob Storage through adlfs, used natively (``asynchronous=True``).

Reads go through azure-storage-blob's async client that adlfs holds: each window of a range
(4 MiB, or the chunk size if larger) is one ``download_blob`` request pinned to the blob seen
at open time (``If-Match`` with its ETag, or its ``versionid``), so an overwritten blob fails
the read with :class:`~sendfs.exceptions.SourceChanged` instead of mixing two versions, and a
response holds at most one window in memory.

:meth:`AzureResource.presign` makes a read-only SAS URL that makes the service answer with the
response's Content-Type and Content-Disposition (``rsct``/``rscd``), for redirects.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from ..exceptions import BackendError, SourceChanged, SourceForbidden
from .base import FileInfo, ResourceBase
from .paths import redact_urls_in

__all__ = ["AZURE_WINDOW", "AzureResource", "close_azure_filesystem", "is_azure_filesystem"]

#: Bytes per ``download_blob`` request (and the most a response holds in memory).
AZURE_WINDOW = 4 * 1024 * 1024


def is_azure_filesystem(fs: object) -> bool:
    """Whether ``fs`` is adlfs's ``AzureBlobFileSystem`` or its class (without importing it)."""
    cls = fs if isinstance(fs, type) else type(fs)
    return any(
        klass.__module__.startswith("adlfs") and klass.__name__ == "AzureBlobFileSystem"
        for klass in cls.__mro__
    )


async def close_azure_filesystem(fs: Any) -> None:
    """Close an async adlfs filesystem's clients in the loop that made them.

    adlfs also registers ``weakref.finalize`` callbacks that close them later through the
    filesystem's loop; once that loop has ended they fail ("Loop is not running") at garbage
    collection, so the ones for ``fs`` are detached after closing here.

    Args:
        fs: An ``AzureBlobFileSystem`` created with ``asynchronous=True``.
    """
    for client in (getattr(fs, "service_client", None), getattr(fs, "credential", None)):
        close = getattr(client, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result
    registry: Any = getattr(weakref.finalize, "_registry", {})  # no public way to find them
    for finalizer in list(registry):
        if finalizer.peek() is not None and finalizer.peek()[0] is fs:
            finalizer.detach()


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


class AzureResource(ResourceBase):
    """One blob, read in pinned windows.

    Args:
        fs: An ``AzureBlobFileSystem`` created with ``asynchronous=True`` in the running loop.
        path: ``container/blob`` as adlfs spells it.
        info: The metadata from ``_info(path)`` at open time.
    """

    chunk_size_hint = 1024 * 1024
    #: SAS URLs carry the type and disposition (``rsct``, ``rscd``).
    presign_sets_headers = True

    def __init__(self, fs: Any, path: str, info: FileInfo) -> None:
        self._fs = fs
        self._path = path
        self._info = info
        container, blob, version = fs.split_path(path)
        self._container = container
        self._blob = blob
        self._version = info.version or version

    def _client(self) -> Any:
        return self._fs.service_client.get_blob_client(self._container, self._blob)

    def _pin(self) -> dict[str, Any]:
        from azure.core import MatchConditions

        if self._version:
            return {"version_id": self._version}
        if self._info.etag:
            return {
                "etag": f'"{self._info.etag}"',
                "match_condition": MatchConditions.IfNotModified,
            }
        return {}

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield ``[start, stop)`` in pieces of at most ``chunk_size`` bytes."""
        end = self.range_end(stop)
        window = max(chunk_size, AZURE_WINDOW)
        client = self._client()
        pin = self._pin()
        offset = start
        while offset < end:
            length = min(window, end - offset)
            try:
                downloader = await client.download_blob(offset=offset, length=length, **pin)
                data: bytes = await downloader.readall()
            except Exception as exc:
                raise self._map_error(exc) from exc
            if len(data) != length:
                raise SourceChanged(f"az://{self._path} changed while it was being read")
            offset += length
            view = memoryview(data)
            for piece in range(0, length, chunk_size):
                yield bytes(view[piece : piece + chunk_size])

    def _map_error(self, exc: BaseException) -> Exception:
        status = _status(exc)
        if status in (404, 412) or type(exc).__name__ in {
            "ResourceModifiedError",
            "ResourceNotFoundError",
        }:
            return SourceChanged(f"az://{self._path} changed since it was opened")
        if status == 403 or type(exc).__name__ == "ClientAuthenticationError":
            return SourceForbidden(f"access to az://{self._path} denied")
        return BackendError(f"az://{self._path}: download failed: {redact_urls_in(repr(exc))}")

    async def presign(
        self,
        *,
        expires: int,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        """A read-only SAS URL of this blob (of the opened version, when versioned).

        Args:
            expires: Lifetime of the URL in seconds.
            content_type: Sent as ``rsct``: the service answers with it.
            content_disposition: Sent as ``rscd``.

        Returns:
            The URL, or ``None`` when the filesystem has no account key to sign with
            (anonymous access, a SAS token, or Azure AD credentials).

        Security:
            The URL lets anyone holding it read this blob until it expires.
        """
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        credential = getattr(self._fs.service_client, "credential", None)
        account = getattr(credential, "account_name", None) or getattr(
            self._fs, "account_name", None
        )
        key = getattr(credential, "account_key", None) or getattr(self._fs, "account_key", None)
        if not account or not key:
            return None
        now = datetime.now(timezone.utc)
        extra: dict[str, Any] = {}
        if self._version:
            extra["version_id"] = self._version
        token = generate_blob_sas(
            account,
            self._container,
            self._blob,
            account_key=key,
            permission=BlobSasPermissions(read=True),
            start=now - timedelta(minutes=5),  # clocks differ a little
            expiry=now + timedelta(seconds=expires),
            content_type=content_type,
            content_disposition=content_disposition,
            **extra,
        )
        url: str = self._client().url
        return f"{url}{'&' if '?' in url else '?'}{token}"
