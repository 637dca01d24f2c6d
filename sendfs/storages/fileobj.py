"""Binary file objects: ``io.BytesIO``, spooled temporary files, files opened with ``"rb"``.

The object is served from its position when the resource opens to its end. A seekable object
gets a size and ranges; a non-seekable one (a pipe, a socket file) streams once, without a
Content-Length or ranges. An object backed by a real file (``fileno()``) also gets a
modification time and an entity tag, so conditional requests work for it too.

Every read is ``seek`` then ``read`` of one chunk, so no object is ever copied whole. Reads run
in worker threads, except for objects whose bytes are already in memory (an ``io.BytesIO``, a
``SpooledTemporaryFile`` that has not rolled over): their read is a copy of one chunk, done on
the event loop, which costs less than a thread hop. A ``BytesIO(data)`` keeps sharing the
caller's ``data``; its ``getbuffer()`` would make it copy all of it first, so it is not used.

The resource owns the object: it is closed when the response is done, as Werkzeug does.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import IO, Any

import anyio
import anyio.to_thread

from ..exceptions import BackendError, SourceChanged
from .base import FileInfo, ResourceBase
from .metadata import derived_etag, to_utc_datetime

__all__ = ["FileObjBackend", "FileObjResource", "check_binary_file", "is_file_object"]


def is_file_object(source: object) -> bool:
    """Tell whether ``source`` is a file-like object rather than a path or URL.

    Args:
        source: Anything passed to ``send_file``.
    """
    return callable(getattr(source, "read", None)) and not isinstance(source, str | bytes)


def check_binary_file(source: object) -> None:
    """Refuse text-mode file objects with a message that says what to pass instead.

    Args:
        source: A file-like object.

    Raises:
        TypeError: ``source`` is a text stream (``io.StringIO``, ``open(path)`` without
            ``"b"``, a ``SpooledTemporaryFile(mode="w+")``).
    """
    mode = getattr(source, "mode", None)
    binary = isinstance(source, io.BufferedIOBase | io.RawIOBase)
    text_mode = isinstance(mode, str) and "b" not in mode and not binary
    if isinstance(source, io.TextIOBase) or text_mode:
        raise TypeError(
            f"send_file() needs a binary file object, got text stream {source!r}: open files "
            "with 'rb', or pass io.BytesIO(text.encode('utf-8')) for text built in memory"
        )


def _seekable(obj: IO[bytes]) -> bool:
    """Whether ``obj`` can seek: its ``seekable()``, else whether ``tell()`` works.

    Objects with ``seek`` and ``tell`` but no ``seekable`` exist: Python 3.10's
    ``SpooledTemporaryFile`` is one.
    """
    try:
        if hasattr(obj, "seekable"):
            return bool(obj.seekable())
        position = obj.tell()
    except (AttributeError, OSError, ValueError):
        return False
    return isinstance(position, int) and callable(getattr(obj, "seek", None))


def _measure(obj: IO[bytes]) -> tuple[int, int, os.stat_result | None]:
    """Return (start position, size from there, fstat of the backing file or None)."""
    base = obj.tell()
    obj.seek(0, io.SEEK_END)
    end = obj.tell()  # not seek()'s result: older file-like wrappers return None
    obj.seek(base)
    st: os.stat_result | None = None
    if _in_memory_spooled(obj):
        return base, max(end - base, 0), None  # fileno() would move it from memory to disk
    try:
        st = os.fstat(obj.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        st = None
    return base, max(end - base, 0), st


def _in_memory_spooled(obj: object) -> bool:
    """Whether ``obj`` is a ``SpooledTemporaryFile`` that has not rolled over to disk yet."""
    tempfile = sys.modules.get("tempfile")  # whoever made one imported it; we need not
    spooled = tempfile is not None and isinstance(obj, tempfile.SpooledTemporaryFile)
    return spooled and not getattr(obj, "_rolled", True)


def _in_memory(obj: object) -> bool:
    """Whether ``obj`` reads from memory only, so a read of one chunk is one copy of it.

    That is a ``BytesIO`` (or a subclass that keeps its ``read`` and ``seek``) or a
    ``SpooledTemporaryFile`` that has not rolled over to disk.

    Args:
        obj: A binary file object.
    """
    if isinstance(obj, io.BytesIO):
        kind = type(obj)
        return kind.read is io.BytesIO.read and kind.seek is io.BytesIO.seek
    return _in_memory_spooled(obj)


def _read_at(obj: IO[bytes], offset: int, size: int) -> bytes:
    """Read up to ``size`` bytes at ``offset``: a copy of those bytes, never of the whole object.

    A shared ``BytesIO`` read whole from 0 even returns the caller's ``bytes`` itself.

    Args:
        obj: A seekable binary file object.
        offset: Where to read, from the start of the object.
        size: How many bytes at most.
    """
    obj.seek(offset)
    return obj.read(size)


def _name_of(obj: object) -> str | None:
    name = getattr(obj, "name", None)
    if isinstance(name, str | bytes) and name:
        return os.path.basename(os.fsdecode(name)) or None
    return None


class FileObjResource(ResourceBase):
    """An opened binary file object.

    Args:
        obj: The file object; the resource closes it in :meth:`aclose`.
        base: The position served as byte 0.
        info: Its metadata (``size`` is ``None`` for non-seekable objects).
    """

    def __init__(self, obj: IO[bytes], base: int, info: FileInfo) -> None:
        self._obj = obj
        self._base = base
        self._info = info
        self._consumed = False

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield ``[start, stop)``; a non-seekable object only ever from 0 to the end, once."""
        if self._info.size is None:
            async for chunk in self._iter_stream(start, stop, chunk_size):
                yield chunk
            return
        end = self.range_end(stop)
        offset = start
        while offset < end:
            want = min(chunk_size, end - offset)
            data = await self._read(self._base + offset, want)
            if not data:
                raise SourceChanged(f"{self._obj!r} shrank while it was being read")
            offset += len(data)
            yield data

    async def _read(self, position: int, size: int) -> bytes:
        try:
            if _in_memory(self._obj):
                # One chunk copied on the loop: cheaper than a thread hop, and the GIL would
                # keep the loop waiting for the copy in a thread too.
                return _read_at(self._obj, position, size)
            return await anyio.to_thread.run_sync(_read_at, self._obj, position, size)
        except (OSError, ValueError) as exc:
            raise BackendError(f"reading {self._obj!r} failed: {exc}") from exc

    async def _iter_stream(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        if start != 0 or stop is not None or self._consumed:
            raise BackendError("a non-seekable stream can only be read once, from the start")
        self._consumed = True
        while True:
            try:
                data = await anyio.to_thread.run_sync(self._obj.read, chunk_size)
            except (OSError, ValueError) as exc:
                raise BackendError(f"reading {self._obj!r} failed: {exc}") from exc
            if not data:
                return
            yield data

    async def aclose(self) -> None:
        """Close the file object (objects with only ``read()`` have nothing to close)."""
        close = getattr(self._obj, "close", None)
        if callable(close) and not getattr(self._obj, "closed", False):
            with anyio.CancelScope(shield=True):  # close even when the request was cancelled
                await anyio.to_thread.run_sync(close)


class FileObjBackend:
    """The backend for binary file objects."""

    async def open(self, source: Any, **options: Any) -> FileObjResource:
        """Measure a binary file object.

        Args:
            source: A binary file object, positioned where the download starts.
            **options: Not used.

        Raises:
            TypeError: ``source`` is a text stream.
            BackendError: The object is closed or cannot be measured.
        """
        check_binary_file(source)
        obj: IO[bytes] = source
        name = _name_of(obj)
        if getattr(obj, "closed", False):
            raise BackendError(f"{obj!r} is closed")
        if not _seekable(obj):
            return FileObjResource(obj, 0, FileInfo(size=None, name=name))
        try:
            base, size, st = await anyio.to_thread.run_sync(_measure, obj)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot measure {obj!r}: {exc}") from exc
        if st is None:
            return FileObjResource(obj, base, FileInfo(size=size, name=name))
        info = FileInfo(
            size=size,
            mtime=to_utc_datetime(st.st_mtime),
            etag=derived_etag(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, base),
            name=name,
        )
        return FileObjResource(obj, base, info)

    def __repr__(self) -> str:
        return "FileObjBackend()"
