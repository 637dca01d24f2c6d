"""Range requests (RFC 9110 section 14): parsing ``Range`` and framing multipart/byteranges.

Pure functions. Ranges are half-open ``[start, stop)`` here as everywhere in sendfs; only the
wire format (``bytes=0-499``, ``Content-Range: bytes 0-499/1234``) is inclusive.

Parsing follows the RFC where the anchors do not: a malformed header or an unknown unit is
*ignored* (the whole file, 200), not a 400 or 416; only a well-formed ``bytes`` range set with no
satisfiable range is a 416.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = [
    "MAX_RANGES",
    "ByteRange",
    "MalformedRange",
    "MultipartPlan",
    "RangeNotSatisfiable",
    "multipart_plan",
    "parse_range_header",
    "single_range_spec",
]

#: Most ranges served as one multipart response; more are answered with the whole file.
MAX_RANGES = 16

#: Longest Range header read; anything longer is ignored like a malformed one.
MAX_RANGE_HEADER_LENGTH = 4096

#: RFC 9110 int-range and suffix-range; DIGIT is ASCII only (``str.isdigit`` is not).
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")


class MalformedRange(ValueError):
    """Ignore the Range header (send the whole representation, 200).

    Raised when the header does not parse or uses a unit other than ``bytes``, and when its
    only satisfiable ranges are suffixes of an empty representation: RFC 9110 section 14.1.2
    counts those as satisfiable (so no 416), yet no Content-Range can describe zero bytes.
    """


class RangeNotSatisfiable(ValueError):
    """A valid ``bytes`` range set of which no range overlaps the representation: 416."""


@dataclass(frozen=True, slots=True, order=True)
class ByteRange:
    """The half-open byte range ``[start, stop)``."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        """The Content-Range value for this range of a representation of ``size`` bytes."""
        return f"bytes {self.start}-{self.stop - 1}/{size}"


def _parse_spec(spec: str, size: int) -> ByteRange | None:
    """One range-spec; ``None`` when it is valid but not satisfiable; may be empty if size is 0."""
    match = _INT_RANGE.fullmatch(spec)
    if match:
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else None
        if last is not None and last < first:
            raise MalformedRange(f"{spec!r}: last-pos before first-pos")
        if first >= size:
            return None
        return ByteRange(first, size if last is None else min(last + 1, size))
    match = _SUFFIX_RANGE.fullmatch(spec)
    if match:
        length = int(match.group(1))
        if length == 0:
            return None
        return ByteRange(max(size - length, 0), size)
    raise MalformedRange(f"{spec!r} is not a byte range")


def coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Merge ranges that overlap or touch, keeping the order in which they were asked for.

    RFC 9110 section 15.3.7.2 lets a server coalesce overlapping ranges regardless of their
    order, and says it SHOULD send the parts in the order the range-specs appeared, leaving out
    those coalesced into others: a merged range takes the place of its earliest member.

    Args:
        ranges: Non-empty ranges in request order.
    """
    merged: list[tuple[ByteRange, int]] = []  # (range, position of its earliest member)
    for position, current in sorted(enumerate(ranges), key=lambda item: item[1]):
        if merged and current.start <= merged[-1][0].stop:
            last, first = merged[-1]
            merged[-1] = (ByteRange(last.start, max(last.stop, current.stop)), min(first, position))
        else:
            merged.append((current, position))
    return [byte_range for byte_range, _ in sorted(merged, key=lambda item: item[1])]


def parse_range_header(value: str, size: int) -> list[ByteRange]:
    """Parse a Range header against a representation of ``size`` bytes.

    Args:
        value: The header value, e.g. ``"bytes=0-99, -100"``. The unit is case-insensitive;
            whitespace around commas is allowed; empty list elements are skipped.
        size: The length of the representation.

    Returns:
        The satisfiable ranges, clamped to ``size``, coalesced, in request order (at least
        one).

    Raises:
        MalformedRange: Ignore the header: it does not parse, the unit is not ``bytes``, or it
            asks only for suffixes of an empty representation.
        RangeNotSatisfiable: It parses, but no range is satisfiable (RFC 9110 section 14.1.2:
            no first-pos below ``size`` and no suffix-range with a non-zero length).
    """
    if len(value) > MAX_RANGE_HEADER_LENGTH:
        raise MalformedRange("Range header too long")
    unit, sep, range_set = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        raise MalformedRange(f"unit {unit.strip()!r} is not 'bytes'")
    specs = [spec.strip() for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]
    if not specs:
        raise MalformedRange("empty range set")
    found = [_parse_spec(spec, size) for spec in specs]
    ranges = [r for r in found if r is not None]
    if not ranges:
        raise RangeNotSatisfiable(f"none of {value!r} lies within {size} bytes")
    ranges = [r for r in ranges if len(r)]
    if not ranges:
        raise MalformedRange("a suffix of an empty representation has no bytes to send")
    return coalesce(ranges)


def single_range_spec(value: str) -> str | None:
    """The canonical form of a Range header asking for one range, to forward to a storage.

    Args:
        value: The request's Range header.

    Returns:
        ``bytes=first-last``, ``bytes=first-`` or ``bytes=-length`` when the header asks for
        exactly one range that a storage can resolve without knowing the size; ``None`` when
        it asks for several, or for a zero-length suffix (a 416 or 200 only the size decides).

    Raises:
        MalformedRange: The header would be ignored (so the whole object will be read).
    """
    if len(value) > MAX_RANGE_HEADER_LENGTH:
        raise MalformedRange("Range header too long")
    unit, sep, range_set = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        raise MalformedRange(f"unit {unit.strip()!r} is not 'bytes'")
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if not specs:
        raise MalformedRange("empty range set")
    for spec in specs:  # one malformed spec makes the whole header ignored
        _parse_spec(spec, 1)
    if len(specs) != 1:
        return None
    match = _INT_RANGE.fullmatch(specs[0])
    if match:
        last = f"{int(match.group(2))}" if match.group(2) else ""
        return f"bytes={int(match.group(1))}-{last}"
    length = int(specs[0][1:])
    return f"bytes=-{length}" if length else None


@dataclass(frozen=True, slots=True)
class MultipartPlan:
    """The framing of a multipart/byteranges body, fixed before the first byte is sent.

    Attributes:
        boundary: The random boundary.
        parts: For each range, the bytes sent before its data.
        closing: The bytes sent after the last part's data.
        content_length: The exact length of the whole body.
    """

    boundary: str
    ranges: tuple[ByteRange, ...]
    parts: tuple[bytes, ...]
    closing: bytes
    content_length: int

    @property
    def content_type(self) -> str:
        """The Content-Type of the whole response."""
        return f"multipart/byteranges; boundary={self.boundary}"


def multipart_plan(
    ranges: list[ByteRange], size: int, content_type: str, boundary: str | None = None
) -> MultipartPlan:
    """Frame ``ranges`` as multipart/byteranges (RFC 9110 section 14.6), with CRLF line ends.

    Each part is ``--boundary CRLF Content-Type CRLF Content-Range CRLF CRLF data``; parts are
    separated by CRLF and the body ends with ``CRLF --boundary-- CRLF``.

    Args:
        ranges: Two or more coalesced ranges.
        size: The length of the representation.
        content_type: The Content-Type of each part (the file's type).
        boundary: For tests only; by default 32 random hex digits (``secrets``), so no part of
            a file can fake a boundary.
    """
    boundary = boundary or secrets.token_hex(16)
    parts = tuple(
        (
            ("\r\n" if index else "")
            + f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            + f"Content-Range: {byte_range.content_range(size)}\r\n\r\n"
        ).encode("latin-1")
        for index, byte_range in enumerate(ranges)
    )
    closing = f"\r\n--{boundary}--\r\n".encode("latin-1")
    length = sum(len(part) for part in parts) + sum(len(r) for r in ranges) + len(closing)
    return MultipartPlan(boundary, tuple(ranges), parts, closing, length)
