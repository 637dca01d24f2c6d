"""ZIP archives of any sources, streamed as they are read: :class:`ZipArchive`.

Every entry is a source ``send_file`` takes (a path, a binary file object, a storage URL, an
async iterable). Before the first byte, every entry is opened once for its metadata (eight at
a time), so a missing entry is a clean 404 and, when all entries are stored (the default) with
known sizes, the archive's exact length is known: browsers show progress. Then each entry is
opened again, in turn, and streamed through a CRC-32; only one is open at a time, and memory
stays at about one chunk whatever the sizes.

Why not a library: zipstream-ng and stream-zip both take *synchronous* iterables, while sendfs's
sources are async (s3fs, adlfs); bridging every chunk through a worker thread would cost a
thread hop per chunk. The container itself is small and fully specified (``zipformat``), and
is checked against the standard library's ``zipfile`` and Info-ZIP's ``unzip`` in the tests.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import anyio
import anyio.to_thread

from ..exceptions import BackendError, SourceChanged
from .base import DEFAULT_CHUNK_SIZE, FileInfo, Resource, ResourceBase
from .fileobj import is_file_object
from .streams import Stream, is_async_iterable
from .zipformat import (
    DEFLATED,
    STORED,
    EntryLayout,
    archive_length,
    central_directory,
    data_descriptor,
    local_header,
    place,
)

__all__ = ["ZipArchive", "ZipEntry", "check_archive_name"]

#: Entries opened at once for their metadata, before the archive starts.
OPEN_CONCURRENCY = 8

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipEntry:
    """One archive member with options.

    Args:
        source: What to put in it: anything ``send_file`` takes.
        size: The size of an async iterable source, when known (for an exact Content-Length).
        modified: Its modification time; by default the source's, else the time of the
            request.
        compress: Deflate it (the archive then has no Content-Length up front).
    """

    source: Any
    size: int | None = None
    modified: datetime | None = None
    compress: bool = False


def check_archive_name(name: object) -> str:
    """Refuse archive names that would write outside the folder they are extracted to.

    Args:
        name: A member name, ``/``-separated (``"reports/2026/q3.csv"``).

    Returns:
        The name.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: It is empty, absolute, has a drive letter, a backslash, a control
            character, an empty, ``.`` or ``..`` segment, or ends with ``/``.

    Security:
        These are the names unzip tools would otherwise follow out of the target folder
        ("zip slip"); refusing them keeps archives safe to extract anywhere.
    """
    if not isinstance(name, str):
        raise TypeError(f"a zip entry name is a str, not {type(name).__name__}")
    problem = None
    if not name or name.startswith("/") or _DRIVE.match(name):
        problem = "is empty or absolute"
    elif "\\" in name or _CONTROL.search(name):
        problem = "has a backslash or a control character"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        problem = "has an empty, '.' or '..' segment (or ends with '/')"
    if problem is not None:
        raise ValueError(f"zip entry name {name!r} {problem}")
    return name


def _entries(entries: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[tuple[str, ZipEntry]]:
    pairs = entries.items() if isinstance(entries, Mapping) else entries
    checked: list[tuple[str, ZipEntry]] = []
    seen: set[str] = set()
    for pair in pairs:
        name, source = pair
        check_archive_name(name)
        if name in seen:
            raise ValueError(f"zip entry name {name!r} appears twice")
        seen.add(name)
        entry = source if isinstance(source, ZipEntry) else ZipEntry(source)
        if entry.size is not None and not is_async_iterable(entry.source):
            raise TypeError(f"size= is for async iterables; {name!r} knows its own size")
        checked.append((name, entry))
    return checked


@dataclass
class _Member:
    """An entry, measured: what to open again, and what it must still be."""

    name: bytes
    entry: ZipEntry
    source: Any
    info: FileInfo
    modified: datetime
    kept: Resource | None  # file objects and streams cannot be opened twice


class ZipArchive:
    """A ZIP archive of sources, generated as it is sent (``send_zip`` builds one).

    Args:
        entries: Archive name to source (or :class:`ZipEntry`), as a mapping or as pairs, in
            archive order.
        compress: Deflate every entry by default (``ZipEntry.compress`` per entry).
        force_zip64: Use ZIP64 fields even for small archives (for tools that need them).
        storage_options: Options for the backends of the entries' sources.
        name: The archive's file name.

    Raises:
        ValueError: An unsafe or duplicate archive name (see :func:`check_archive_name`).
        TypeError: A name that is not a string, or ``size=`` on a source that is not an
            async iterable.
    """

    def __init__(
        self,
        entries: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        compress: bool = False,
        force_zip64: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        name: str = "export.zip",
    ) -> None:
        self.entries = _entries(entries)
        if compress:
            self.entries = [
                (name_, ZipEntry(e.source, e.size, e.modified, True)) for name_, e in self.entries
            ]
        self.force_zip64 = force_zip64
        self.storage_options = dict(storage_options or {})
        self.name = name

    def __repr__(self) -> str:
        return f"<ZipArchive {self.name!r} of {len(self.entries)} entries>"

    async def open_resource(self, registry: Any) -> ZipResource:
        """Measure every entry (eight at a time) and lay the archive out.

        Args:
            registry: The registry that opens the entries' sources.

        Raises:
            sendfs.exceptions.SendfsError: An entry could not be opened (a missing one is
                ``SourceNotFound``: the whole archive is a 404).
        """
        now = datetime.now(timezone.utc)
        members: list[_Member | None] = [None] * len(self.entries)
        errors: list[Exception] = []
        pending = iter(enumerate(self.entries))

        async def worker() -> None:  # OPEN_CONCURRENCY of them share the entries
            for index, (name, entry) in pending:
                if errors:
                    return  # one entry failed: the archive will not be sent
                try:
                    members[index] = await self._measure(registry, name, entry, now)
                except Exception as exc:  # noqa: BLE001 - re-raised below, outside the group
                    errors.append(exc)

        try:
            async with anyio.create_task_group() as group:
                for _ in range(min(OPEN_CONCURRENCY, len(self.entries))):
                    group.start_soon(worker)
            if errors:
                raise errors[0]
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _close_kept(members)  # file objects and streams measured so far
                for index, (_, entry) in enumerate(self.entries):
                    if members[index] is None:
                        await _close_source(entry.source)  # never measured: still ours
            raise
        ready = [member for member in members if member is not None]
        return ZipResource(self, ready, registry)

    async def _measure(self, registry: Any, name: str, entry: ZipEntry, now: datetime) -> _Member:
        source = entry.source
        if is_async_iterable(source) and not isinstance(source, Stream):
            source = Stream(source, size=entry.size)
        resource = await registry.open(source, **self.storage_options)
        info = resource.info
        keep = is_file_object(source) or isinstance(source, Stream) or not info.seekable
        if not keep:
            with anyio.CancelScope(shield=True):
                await resource.aclose()
        modified = entry.modified or info.mtime or now
        return _Member(
            name.encode("utf-8"), entry, source, info, modified, resource if keep else None
        )


async def _close_source(source: Any) -> None:
    """Close a file object or async generator the archive owns but never opened."""
    if isinstance(source, Stream):
        source = source.iterable
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
    elif is_file_object(source) and callable(getattr(source, "close", None)):
        await anyio.to_thread.run_sync(source.close)


async def _close_kept(members: list[_Member | None]) -> None:
    with anyio.CancelScope(shield=True):
        for member in members:
            if member is not None and member.kept is not None:
                await member.kept.aclose()


class ZipResource(ResourceBase):
    """A :class:`ZipArchive` being sent: read once, whole.

    Args:
        archive: The archive.
        members: Its measured entries.
        registry: Opens each entry again when its turn comes.
    """

    chunk_size_hint = DEFAULT_CHUNK_SIZE

    def __init__(self, archive: ZipArchive, members: list[_Member], registry: Any) -> None:
        self._archive = archive
        self._members = members
        self._registry = registry
        self._started = False
        size = archive_length(
            [(m.name, m.info.size, self._method(m), m.modified) for m in members],
            force_zip64=archive.force_zip64,
        )
        self._info = FileInfo(
            size=size, name=archive.name, content_type="application/zip", seekable=False
        )

    @staticmethod
    def _method(member: _Member) -> int:
        return DEFLATED if member.entry.compress else STORED

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield the archive in pieces of about ``chunk_size`` bytes.

        Raises:
            SourceChanged: An entry's size changed since it was measured.
            BackendError: An entry failed, or a second read was attempted.
        """
        if start != 0 or stop not in (None, self._info.size) or self._started:
            raise BackendError("a zip archive can only be read once, whole")
        self._started = True
        out = _Coalescer(chunk_size)
        offset = 0
        written: list[tuple[EntryLayout, int, int, int]] = []
        for member in self._members:
            entry = place(
                member.name,
                member.info.size,
                self._method(member),
                member.modified,
                offset,
                force_zip64=self._archive.force_zip64,
            )
            header = local_header(entry)
            for piece in out.add(header):
                yield piece
            crc = compressed = size = 0
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15) if member.entry.compress else None
            resource = await self._reopen(member)
            try:
                chunks = resource.iter_range(0, None, chunk_size)
                try:
                    async for chunk in chunks:
                        crc = zlib.crc32(chunk, crc)
                        size += len(chunk)
                        data = compressor.compress(chunk) if compressor else chunk
                        compressed += len(data)
                        for piece in out.add(data):
                            yield piece
                finally:
                    await chunks.aclose()  # type: ignore[attr-defined]
            finally:
                with anyio.CancelScope(shield=True):
                    await resource.aclose()
            if compressor is not None:
                tail = compressor.flush()
                compressed += len(tail)
                for piece in out.add(tail):
                    yield piece
            if member.info.size is not None and size != member.info.size:
                raise SourceChanged(
                    f"zip entry {member.name.decode()!r} has {size} bytes, not "
                    f"{member.info.size} as measured"
                )
            if not entry.zip64 and max(size, compressed) >= 0xFFFFFFFF:
                raise BackendError(f"zip entry {member.name.decode()!r} outgrew its ZIP32 fields")
            descriptor = data_descriptor(entry, crc, compressed, size)
            for piece in out.add(descriptor):
                yield piece
            offset += len(header) + compressed + len(descriptor)
            written.append((entry, crc, compressed, size))
        for piece in out.add(
            central_directory(written, offset, force_zip64=self._archive.force_zip64)
        ):
            yield piece
        if rest := out.flush():
            yield rest

    async def _reopen(self, member: _Member) -> Resource:
        if member.kept is not None:
            kept, member.kept = member.kept, None
            return kept
        resource: Resource = await self._registry.open(
            member.source, **self._archive.storage_options
        )
        before, now = member.info, resource.info
        if (now.size, now.etag) != (before.size, before.etag):
            with anyio.CancelScope(shield=True):
                await resource.aclose()
            raise SourceChanged(f"zip entry {member.name.decode()!r} changed since it was measured")
        return resource

    async def aclose(self) -> None:
        """Close the entries still held open (file objects, streams never reached)."""
        await _close_kept(list(self._members))


class _Coalescer:
    """Joins small pieces (headers, small entries) into messages of about ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffer = bytearray()

    def add(self, data: bytes) -> list[bytes]:
        if not self._buffer and len(data) >= self._size:
            return [data]  # large pieces go out as they are, without a copy
        self._buffer += data
        if len(self._buffer) < self._size:
            return []
        piece = bytes(self._buffer)
        self._buffer.clear()
        return [piece]

    def flush(self) -> bytes:
        piece = bytes(self._buffer)
        self._buffer.clear()
        return piece
