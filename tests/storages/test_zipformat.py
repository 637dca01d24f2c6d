"""The ZIP container functions: ZIP64 decisions, exact lengths, and archives zipfile reads."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from datetime import datetime, timezone

import pytest

from sendfs.storages.zipformat import (
    STORED,
    archive_length,
    central_directory,
    data_descriptor,
    entry_length,
    local_header,
    place,
)

WHEN = datetime(2026, 3, 4, 5, 6, 8, tzinfo=timezone.utc)
GIB = 1024**3


def build(members: list[tuple[str, bytes]], *, force_zip64: bool = False) -> bytes:
    """An archive written with the container functions alone, as the streaming writer does."""
    out = bytearray()
    written = []
    for name, data in members:
        entry = place(name.encode(), len(data), STORED, WHEN, len(out), force_zip64=force_zip64)
        crc = zlib.crc32(data)
        out += local_header(entry) + data + data_descriptor(entry, crc, len(data), len(data))
        written.append((entry, crc, len(data), len(data)))
    out += central_directory(written, len(out), force_zip64=force_zip64)
    return bytes(out)


@pytest.mark.parametrize(
    ("size", "offset", "forced", "zip64"),
    [
        (0, 0, False, False),
        (0xFFFFFFFE, 0, False, False),
        (0xFFFFFFFF, 0, False, True),  # the marker value itself cannot be a size
        (5 * GIB, 0, False, True),
        (10, 0xFFFFFFFF, False, True),  # starts beyond what a 4-byte offset holds
        (None, 0, False, True),  # unknown size: it may grow past 4 GiB
        (10, 0, True, True),
    ],
)
def test_zip64_is_chosen_where_four_bytes_cannot_hold_a_field(
    size: int | None, offset: int, forced: bool, zip64: bool
) -> None:
    assert place(b"a", size, STORED, WHEN, offset, force_zip64=forced).zip64 is zip64


def test_zip64_descriptors_and_headers_carry_eight_byte_sizes() -> None:
    entry = place(b"big.bin", 5 * GIB, STORED, WHEN, 0)
    descriptor = data_descriptor(entry, 0xDEADBEEF, 5 * GIB, 5 * GIB)
    assert struct.unpack("<IIQQ", descriptor) == (0x08074B50, 0xDEADBEEF, 5 * GIB, 5 * GIB)
    header = local_header(entry)
    assert struct.unpack_from("<II", header, 18) == (0xFFFFFFFF, 0xFFFFFFFF)
    directory = central_directory([(entry, 1, 5 * GIB, 5 * GIB)], entry_length(entry, 5 * GIB))
    assert struct.pack("<QQQ", 5 * GIB, 5 * GIB, 0) in directory  # the ZIP64 extra field
    assert b"PK\x06\x06" in directory
    assert b"PK\x06\x07" in directory


def test_predicted_length_of_a_huge_archive_matches_its_framing() -> None:
    sizes = [5 * GIB, 3, 0xFFFFFFFE]
    entries = [(f"f{index}".encode(), size, STORED, WHEN) for index, size in enumerate(sizes)]
    offset = 0
    written = []
    for name, size, method, modified in entries:
        entry = place(name, size, method, modified, offset)
        written.append((entry, 0, size, size))
        offset += entry_length(entry, size)
    assert written[1][0].zip64  # starts past 4 GiB
    assert archive_length(entries) == offset + len(central_directory(written, offset))


@pytest.mark.parametrize("force_zip64", [False, True])
def test_archives_read_back_with_zipfile(force_zip64: bool) -> None:
    members = [("a.txt", b"alpha"), ("dir/é.bin", bytes(range(256)) * 10), ("empty", b"")]
    data = build(members, force_zip64=force_zip64)
    spec = [(n.encode(), len(d), STORED, WHEN) for n, d in members]
    assert archive_length(spec, force_zip64=force_zip64) == len(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert [(i.filename, i.file_size, i.date_time) for i in archive.infolist()] == [
        (name, len(body), (2026, 3, 4, 5, 6, 8)) for name, body in members
    ]
    assert archive.read("dir/é.bin") == bytes(range(256)) * 10


def test_more_than_65535_entries_use_the_zip64_end_record() -> None:
    members = [(f"{index:05d}", b"") for index in range(70_000)]
    data = build(members)
    assert archive_length([(n.encode(), 0, STORED, WHEN) for n, _ in members]) == len(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert len(archive.infolist()) == 70_000
    assert archive.namelist()[-1] == "69999"


def test_long_names_are_refused() -> None:
    with pytest.raises(ValueError, match="65535"):
        place(b"x" * 70_000, 1, STORED, WHEN, 0)


def test_times_before_1980_are_clamped() -> None:
    entry = place(b"old", 0, STORED, datetime(1970, 1, 1, tzinfo=timezone.utc), 0)
    data = local_header(entry)
    assert struct.unpack_from("<HH", data, 10) == (0, (0 << 9) | (1 << 5) | 1)
