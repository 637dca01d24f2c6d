"""The ZIP container for streaming, as pure functions (PKWARE APPNOTE 6.3.10).

Written front to back, never seeking: each entry is a local header, the data, then a data
descriptor carrying the CRC-32 and sizes (general purpose bit 3); the central directory comes
last. Names are UTF-8 (bit 11). An entry whose size is unknown or reaches 4 GiB, or that
starts beyond 4 GiB, uses ZIP64 fields; so does the end record when the directory needs them.

Every length here is fixed before any data is read, so for stored entries of known size the
whole archive's length is known up front (:func:`archive_length`): browsers show progress.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = [
    "DEFLATED",
    "STORED",
    "EntryLayout",
    "archive_length",
    "central_directory",
    "data_descriptor",
    "entry_length",
    "local_header",
    "place",
]

STORED = 0
DEFLATED = 8

_LOCAL = 0x04034B50
_CENTRAL = 0x02014B50
_DESCRIPTOR = 0x08074B50
_END = 0x06054B50
_END64 = 0x06064B50
_LOCATOR64 = 0x07064B50

_FLAGS = 0x0008 | 0x0800  # sizes in a data descriptor; UTF-8 names
_LIMIT = 0xFFFFFFFF  # a 4-byte field holding this means "see the ZIP64 field"
_MADE_BY = (3 << 8) | 45  # Unix, spec 4.5
_UNIX_FILE = 0o100644 << 16  # regular file, rw-r--r--
_EPOCH_1980 = datetime(1980, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class EntryLayout:
    """Where one entry goes and how it is framed, fixed before its data is read.

    Args:
        name: The archive name, UTF-8 encoded.
        offset: Where its local header starts.
        size: Its uncompressed size, when known.
        method: :data:`STORED` or :data:`DEFLATED`.
        modified: Its modification time (UTC).
        zip64: Whether its sizes and offset use ZIP64 fields.
    """

    name: bytes
    offset: int
    size: int | None
    method: int
    modified: datetime
    zip64: bool


def _dos_time(moment: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS format, clamped to 1980..2107, two-second resolution."""
    moment = max(moment.astimezone(timezone.utc), _EPOCH_1980)
    year = min(moment.year, 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return time, date


def _timestamp_extra(moment: datetime) -> bytes:
    """The extended-timestamp extra field (0x5455) with the modification time, in UTC."""
    seconds = max(0, min(int(moment.timestamp()), 0xFFFFFFFF))
    return struct.pack("<HHBI", 0x5455, 5, 1, seconds)


def _local_extra(entry: EntryLayout) -> bytes:
    extra = _timestamp_extra(entry.modified)
    if entry.zip64:  # sizes go in the descriptor; the field says so (APPNOTE 4.3.9.1)
        extra += struct.pack("<HHQQ", 0x0001, 16, 0, 0)
    return extra


def local_header(entry: EntryLayout) -> bytes:
    """The local file header of ``entry`` (sizes and CRC follow in its data descriptor).

    Args:
        entry: The entry's layout.
    """
    time, date = _dos_time(entry.modified)
    size_field = _LIMIT if entry.zip64 else 0
    extra = _local_extra(entry)
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            _LOCAL,
            45 if entry.zip64 else 20,
            _FLAGS,
            entry.method,
            time,
            date,
            0,
            size_field,
            size_field,
            len(entry.name),
            len(extra),
        )
        + entry.name
        + extra
    )


def data_descriptor(entry: EntryLayout, crc: int, compressed: int, size: int) -> bytes:
    """The data descriptor after ``entry``'s data.

    Args:
        entry: The entry's layout.
        crc: CRC-32 of the uncompressed data.
        compressed: Bytes of data written.
        size: Uncompressed bytes.
    """
    if entry.zip64:
        return struct.pack("<IIQQ", _DESCRIPTOR, crc, compressed, size)
    return struct.pack("<IIII", _DESCRIPTOR, crc, compressed, size)


def _central_header(entry: EntryLayout, crc: int, compressed: int, size: int) -> bytes:
    time, date = _dos_time(entry.modified)
    extra = _timestamp_extra(entry.modified)
    if entry.zip64:
        extra += struct.pack("<HHQQQ", 0x0001, 24, size, compressed, entry.offset)
    sizes = (_LIMIT, _LIMIT) if entry.zip64 else (compressed, size)
    offset = _LIMIT if entry.zip64 else entry.offset
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            _CENTRAL,
            _MADE_BY,
            45 if entry.zip64 else 20,
            _FLAGS,
            entry.method,
            time,
            date,
            crc,
            *sizes,
            len(entry.name),
            len(extra),
            0,
            0,
            0,
            _UNIX_FILE,
            offset,
        )
        + entry.name
        + extra
    )


def central_directory(
    entries: Sequence[tuple[EntryLayout, int, int, int]], offset: int, *, force_zip64: bool = False
) -> bytes:
    """The central directory and end records.

    Args:
        entries: Each entry's layout with its CRC-32, compressed and uncompressed sizes.
        offset: Where the central directory starts (the bytes written so far).
        force_zip64: Write the ZIP64 end records even when nothing needs them.
    """
    directory = b"".join(_central_header(*item) for item in entries)
    count = len(entries)
    zip64 = (
        force_zip64
        or count >= 0xFFFF
        or offset >= _LIMIT
        or len(directory) >= _LIMIT
        or any(entry.zip64 for entry, *_ in entries)
    )
    tail = b""
    if zip64:
        end64_offset = offset + len(directory)
        tail += struct.pack(
            "<IQHHIIQQQQ", _END64, 44, _MADE_BY, 45, 0, 0, count, count, len(directory), offset
        )
        tail += struct.pack("<IIQI", _LOCATOR64, 0, end64_offset, 1)
    tail += struct.pack(
        "<IHHHHIIH",
        _END,
        0,
        0,
        min(count, 0xFFFF),
        min(count, 0xFFFF),
        min(len(directory), _LIMIT),
        min(offset, _LIMIT),
        0,
    )
    return directory + tail


def place(
    name: bytes,
    size: int | None,
    method: int,
    modified: datetime,
    offset: int,
    *,
    force_zip64: bool = False,
) -> EntryLayout:
    """Lay out one entry starting at ``offset``, choosing ZIP64 where 4-byte fields won't do.

    Args:
        name: The archive name, UTF-8 encoded.
        size: Its uncompressed size, or ``None`` when unknown.
        method: :data:`STORED` or :data:`DEFLATED`.
        modified: Its modification time.
        offset: Where its local header starts.
        force_zip64: Use ZIP64 fields even when nothing needs them.

    Raises:
        ValueError: The name is over 65535 bytes.
    """
    if len(name) > 0xFFFF:
        raise ValueError("a zip entry name is at most 65535 bytes")
    # Deflate can grow incompressible data slightly: leave room below the 4-byte limit.
    limit = _LIMIT if method == STORED else 0xF0000000
    zip64 = force_zip64 or size is None or size >= limit or offset >= _LIMIT
    return EntryLayout(name, offset, size, method, modified, zip64)


def entry_length(entry: EntryLayout, compressed: int) -> int:
    """Bytes ``entry`` takes in the archive: header, ``compressed`` data, descriptor.

    Args:
        entry: The entry's layout.
        compressed: Bytes of data it holds.
    """
    return len(local_header(entry)) + compressed + (24 if entry.zip64 else 16)


def archive_length(
    entries: Sequence[tuple[bytes, int | None, int, datetime]], *, force_zip64: bool = False
) -> int | None:
    """The exact length of an archive, or ``None`` unless every entry is stored with a size.

    Args:
        entries: ``(name, size, method, modified)`` per entry, in archive order.
        force_zip64: As the writer is told.
    """
    offset = 0
    placed: list[tuple[EntryLayout, int, int, int]] = []
    for name, size, method, modified in entries:
        if size is None or method != STORED:
            return None
        entry = place(name, size, method, modified, offset, force_zip64=force_zip64)
        placed.append((entry, 0, size, size))  # the CRC does not change any length
        offset += entry_length(entry, size)
    return offset + len(central_directory(placed, offset, force_zip64=force_zip64))
