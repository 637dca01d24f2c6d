"""The contract between storages and responses: ``FileInfo``, ``Resource`` and ``Backend``.

A backend turns a source into a :class:`Resource`: the metadata of one object, fixed at open
time, plus a way to read any half-open byte range ``[start, stop)`` of it as an async stream.
Everything the HTTP side needs comes through these three names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_EXPIRES",
    "Backend",
    "DirEntry",
    "FileInfo",
    "HintedBackend",
    "ReadHint",
    "Resource",
    "ResourceBase",
    "SignableResource",
    "check_expires",
]

#: Bytes per read when the caller does not say: large enough to keep per-chunk overhead (thread
#: hops, ASGI messages) small, small enough that a few in flight per response stay cheap.
DEFAULT_CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a storage knows about one object, normalised across backends.

    Args:
        size: Length in bytes, or ``None`` for a stream of unknown length (no ranges then).
        mtime: Last modification time, timezone-aware UTC, or ``None`` when unknown.
        etag: The entity tag *without* quotes or ``W/`` prefix (the response quotes it), or
            ``None`` when the storage offers none and none could be derived.
        content_type: The media type the storage recorded (S3 ``ContentType``), if any.
        name: The object's base name, used for Content-Type and Content-Disposition.
        version: A storage version id (S3 ``VersionId``, GCS ``generation``), if any.
        seekable: Whether any byte range can be read; ``False`` for streams generated once
            (an async iterable, a zip archive), which get no ranges even with a known size.
        validators_only: The storage answered a hinted open "not modified"
            (:class:`ReadHint`): only ``etag`` and ``mtime`` are known, and there are no bytes
            to read. A response that needs more than a 304 opens the source again.
    """

    size: int | None
    mtime: datetime | None = None
    etag: str | None = None
    content_type: str | None = None
    name: str | None = None
    version: str | None = None
    seekable: bool = True
    validators_only: bool = False


@dataclass(frozen=True, slots=True)
class ReadHint:
    """What a GET will most likely read, so a storage can send metadata and bytes in one request.

    Storages that take hints make one request carrying the range and the preconditions and
    take the metadata from its answer (S3), or open and read a small file in one worker-thread
    call (local files); the response still decides everything from that metadata, and reads
    again whatever the hint got wrong. A hint never changes what is sent.

    Args:
        range: One canonical ``bytes=`` range (``bytes=0-99``, ``bytes=100-``, ``bytes=-500``),
            or ``None`` for the whole object.
        if_match: ``*`` or one quoted strong entity tag, for a 412 without a body.
        if_none_match: ``*`` or one quoted strong entity tag, for a 304 without a body.
        if_modified_since: Sent only without ``if_none_match``.
        if_unmodified_since: Sent only without ``if_match``.
    """

    range: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class DirEntry:
    """One entry of a directory listing.

    Args:
        name: The entry's base name.
        is_dir: Whether it is a directory (or an object-store prefix).
        size: Its size in bytes, for files.
        mtime: Its modification time, when known.
    """

    name: str
    is_dir: bool
    size: int | None = None
    mtime: datetime | None = None


@runtime_checkable
class Resource(Protocol):
    """One opened object: metadata plus ranged async reads.

    Ranges are half-open, ``[start, stop)``; ``stop=None`` means "to the end". A resource must be
    closed with :meth:`aclose` (or ``async with``) once the response is done with it.
    """

    @property
    def info(self) -> FileInfo:
        """The metadata seen when the resource was opened."""
        ...

    def iter_range(self, start: int, stop: int | None, chunk_size: int) -> AsyncIterator[bytes]:
        """Yield the bytes of ``[start, stop)`` in pieces of at most ``chunk_size`` bytes.

        Args:
            start: First byte offset, ``0 <= start``.
            stop: One past the last byte, or ``None`` for the end of the object.
            chunk_size: Largest piece to yield.

        Raises:
            sendfs.exceptions.BackendError: The storage failed while reading.
            sendfs.exceptions.SourceChanged: The object changed since it was opened.
        """
        ...

    async def aclose(self) -> None:
        """Release every handle the resource holds. Safe to call more than once."""
        ...


#: S3's longest presigned URL lifetime (SigV4): 7 days.
MAX_EXPIRES = 7 * 24 * 3600


def check_expires(expires: object) -> None:
    """Refuse a presigned URL's lifetime that is not an int of seconds from 1 to 7 days.

    Args:
        expires: The lifetime.

    Raises:
        ValueError: Out of range, or not an int.
    """
    if isinstance(expires, bool) or not isinstance(expires, int) or not 0 < expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be an int of seconds from 1 to {MAX_EXPIRES}")


@runtime_checkable
class SignableResource(Resource, Protocol):
    """A resource whose storage can hand out a presigned URL for it (S3, Azure SAS, GCS).

    Responses use it to answer with a redirect, so the bytes come from the storage (or its
    CDN) and never pass through the app. Backends that cannot sign simply do not implement it.
    A resource whose URLs make the storage answer with the given type and disposition says
    so with a true ``presign_sets_headers`` attribute.
    """

    async def presign(
        self,
        *,
        expires: int,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        """A URL that serves this object with a plain GET for ``expires`` seconds.

        Args:
            expires: Lifetime of the URL in seconds.
            content_type: The Content-Type the storage must answer with (S3
                ``response-content-type``, Azure ``rsct``), or ``None`` to leave it.
            content_disposition: The Content-Disposition the storage must answer with (S3
                ``response-content-disposition``, Azure ``rscd``), or ``None`` to leave it.

        Returns:
            The URL, pinned to the version that was opened when the storage allows it, or
            ``None`` when these credentials cannot sign (anonymous access, say).

        Security:
            The URL is a bearer credential for one object until it expires: keep ``expires``
            short and never log it.
        """
        ...


class ResourceBase:
    """Convenience base class for resources: ``async with`` support and a readable repr."""

    _info: FileInfo

    @property
    def info(self) -> FileInfo:
        """The metadata seen when the resource was opened."""
        return self._info

    def range_end(self, stop: int | None) -> int:
        """Where a read of ``[start, stop)`` ends: ``stop`` clamped to the size."""
        size = self._info.size or 0
        return size if stop is None else min(stop, size)

    async def aclose(self) -> None:
        """Release the handles of this resource (nothing by default)."""

    async def __aenter__(self) -> ResourceBase:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._info!r}>"


@runtime_checkable
class HintedBackend(Protocol):
    """A backend that can open a source and start reading it in one storage request."""

    async def open_hinted(self, source: Any, hint: ReadHint, **options: Any) -> Resource:
        """Open ``source`` for the read ``hint`` describes.

        The resource's ``iter_range`` serves the hinted range from the bytes already requested
        and any other range with new requests, so callers use it like any other resource.

        Args:
            source: What the registry resolved.
            hint: The range and preconditions the request carries.
            **options: Backend options, as for :meth:`Backend.open`.

        Raises:
            sendfs.exceptions.SendfsError: As :meth:`Backend.open`.
        """
        ...


@runtime_checkable
class Backend(Protocol):
    """Turns a source into an opened :class:`Resource`.

    Register an implementation for a URL scheme with
    :meth:`sendfs.storages.StorageRegistry.register`, or ship it in the ``sendfs.backends``
    entry-point group.
    """

    async def open(self, source: Any, **options: Any) -> Resource:
        """Open ``source`` and read its metadata.

        Args:
            source: What the registry resolved: a path, a URL or a file object.
            **options: Backend options (for fsspec backends, the storage options).

        Raises:
            sendfs.exceptions.SourceNotFound: No such object (or it is a directory).
            sendfs.exceptions.SourceForbidden: The storage refused access.
            sendfs.exceptions.BackendError: The storage failed or could not be reached.
        """
        ...
