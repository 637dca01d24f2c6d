"""Range parsing and multipart/byteranges framing (RFC 9110 sections 14.1, 14.6): pure tables."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendfs.responses.ranges import (
    MAX_RANGE_HEADER_LENGTH,
    ByteRange,
    MalformedRange,
    RangeNotSatisfiable,
    multipart_plan,
    parse_range_header,
)

B = ByteRange

# -- parse_range_header: satisfiable ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        pytest.param("bytes=0-499", 1000, [B(0, 500)], id="first-last"),
        pytest.param("bytes=0-0", 1000, [B(0, 1)], id="first-byte-only"),
        pytest.param("bytes=999-999", 1000, [B(999, 1000)], id="last-byte-only"),
        pytest.param("bytes=500-", 1000, [B(500, 1000)], id="open-end"),
        pytest.param("bytes=0-", 1000, [B(0, 1000)], id="open-end-from-zero"),
        pytest.param("bytes=-100", 1000, [B(900, 1000)], id="suffix"),
        pytest.param("bytes=-1", 1000, [B(999, 1000)], id="suffix-of-one"),
        pytest.param("bytes=-1000", 1000, [B(0, 1000)], id="suffix-equal-to-size"),
        pytest.param("bytes=-5000", 1000, [B(0, 1000)], id="suffix-longer-than-file-is-whole-file"),
        pytest.param("bytes=900-5000", 1000, [B(900, 1000)], id="end-past-size-clamped"),
        pytest.param("bytes=0-99999999999999999999", 10, [B(0, 10)], id="huge-end-clamped"),
        pytest.param("bytes=0-0", 1, [B(0, 1)], id="one-byte-file"),
        pytest.param("BYTES=0-1", 10, [B(0, 2)], id="unit-upper-case"),
        pytest.param("Bytes=0-1", 10, [B(0, 2)], id="unit-mixed-case"),
        pytest.param("bytes=0-1, 4-5", 10, [B(0, 2), B(4, 6)], id="space-after-comma"),
        pytest.param("bytes=0-1 ,4-5", 10, [B(0, 2), B(4, 6)], id="space-before-comma"),
        pytest.param("bytes=0-1\t,\t4-5", 10, [B(0, 2), B(4, 6)], id="tabs-around-comma"),
        pytest.param("bytes=0-1,,4-5", 10, [B(0, 2), B(4, 6)], id="empty-list-element"),
        pytest.param("bytes=,0-1,", 10, [B(0, 2)], id="leading-and-trailing-empty-elements"),
        pytest.param("bytes=0-1, ,4-5", 10, [B(0, 2), B(4, 6)], id="blank-list-element"),
    ],
)
def test_satisfiable_range_sets_parse_to_half_open_ranges(
    header: str, size: int, expected: list[ByteRange]
) -> None:
    assert parse_range_header(header, size) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("bytes=0-4,2-7", [B(0, 8)], id="overlapping"),
        pytest.param("bytes=0-4,5-9", [B(0, 10)], id="adjacent"),
        pytest.param("bytes=5-9,0-4", [B(0, 10)], id="adjacent-out-of-order"),
        pytest.param("bytes=0-9,2-3", [B(0, 10)], id="contained"),
        pytest.param("bytes=2-3,2-3", [B(2, 4)], id="duplicate"),
        pytest.param(
            "bytes=50-59,0-9,20-29", [B(50, 60), B(0, 10), B(20, 30)], id="request-order-kept"
        ),
        pytest.param("bytes=0-0,2-2", [B(0, 1), B(2, 3)], id="one-byte-gap-kept-apart"),
        pytest.param("bytes=-10,0-9", [B(90, 100), B(0, 10)], id="suffix-first-stays-first"),
        pytest.param(
            "bytes=90-99,0-9,5-14", [B(90, 100), B(0, 15)], id="merged-range-keeps-first-place"
        ),
        pytest.param("bytes=50-59,0-9,8-52", [B(0, 60)], id="merge-spanning-all-becomes-one"),
        pytest.param(
            "bytes=70-79,30-39,0-9,35-44",
            [B(70, 80), B(30, 45), B(0, 10)],
            id="later-member-joins-earlier-place",
        ),
        pytest.param("bytes=-10,85-", [B(85, 100)], id="suffix-inside-open-end"),
        pytest.param("bytes=0-,-10", [B(0, 100)], id="open-end-swallows-suffix"),
        pytest.param("bytes=10-19,0-9,20-29", [B(0, 30)], id="chain-of-adjacent"),
    ],
)
def test_overlapping_and_adjacent_ranges_are_coalesced_in_request_order(
    header: str, expected: list[ByteRange]
) -> None:
    assert parse_range_header(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("bytes=0-1,100-200", [B(0, 2)], id="second-starts-past-end"),
        pytest.param("bytes=100-,5-", [B(5, 10)], id="first-starts-past-end"),
        pytest.param("bytes=-0,3-4", [B(3, 5)], id="zero-suffix-dropped"),
        pytest.param("bytes=10-10,-2", [B(8, 10)], id="first-pos-equal-size-dropped"),
    ],
)
def test_unsatisfiable_ranges_are_dropped_when_another_is_satisfiable(
    header: str, expected: list[ByteRange]
) -> None:
    assert parse_range_header(header, 10) == expected


# -- parse_range_header: ignored (200) or refused (416) --------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty-header"),
        pytest.param("bytes", id="no-equals"),
        pytest.param("0-1", id="no-unit"),
        pytest.param("bytes 0-1", id="space-instead-of-equals"),
        pytest.param("bytes=", id="empty-range-set"),
        pytest.param("bytes=,", id="only-empty-elements"),
        pytest.param("bytes= , ", id="only-blank-elements"),
        pytest.param("bytes=-", id="dash-only"),
        pytest.param("bytes=abc", id="letters"),
        pytest.param("bytes=a-b", id="letters-around-dash"),
        pytest.param("bytes=5-2", id="last-before-first"),
        pytest.param("bytes=0-1,5-2", id="one-invalid-spec-spoils-the-set"),
        pytest.param("bytes=-5-10", id="negative-first"),
        pytest.param("bytes=0--5", id="negative-last"),
        pytest.param("bytes=--5", id="double-dash-suffix"),
        pytest.param("bytes=+1-2", id="plus-sign"),
        pytest.param("bytes=0x10-0x20", id="hex"),
        pytest.param("bytes=1.5-2", id="decimal"),
        pytest.param("bytes=1e3-", id="exponent"),
        pytest.param("bytes=0 - 1", id="spaces-inside-spec"),
        pytest.param("bytes=0-1;2-3", id="semicolon-separator"),
        pytest.param("bytes=\u0661-\u0662", id="arabic-indic-digits"),
        pytest.param("bytes=\uff10-\uff11", id="fullwidth-digits"),
        pytest.param("bytes=\u00b2-\u00b3", id="superscript-digits"),
        pytest.param("items=0-1", id="unknown-unit"),
        pytest.param("none=0-1", id="unit-none"),
        pytest.param("byte=0-1", id="unit-singular"),
        pytest.param("=0-1", id="empty-unit"),
        pytest.param("bytes=0-1=2", id="second-equals"),
    ],
)
def test_malformed_or_foreign_range_headers_are_ignored(header: str) -> None:
    with pytest.raises(MalformedRange):
        parse_range_header(header, 1000)


@pytest.mark.parametrize(
    ("header", "size"),
    [
        pytest.param("bytes=1000-", 1000, id="first-pos-equal-size"),
        pytest.param("bytes=1000-2000", 1000, id="first-last-past-end"),
        pytest.param("bytes=5000-5001", 1000, id="far-past-end"),
        pytest.param("bytes=-0", 1000, id="zero-suffix"),
        pytest.param("bytes=-0,-0", 1000, id="zero-suffixes"),
        pytest.param("bytes=1000-,2000-", 1000, id="all-past-end"),
        pytest.param("bytes=0-", 0, id="empty-file-open-end"),
        pytest.param("bytes=0-0", 0, id="empty-file-first-byte"),
        pytest.param("bytes=0-99", 0, id="empty-file-first-last"),
        pytest.param("bytes=5-", 0, id="empty-file-past-end"),
        pytest.param("bytes=-0", 0, id="empty-file-zero-suffix"),
    ],
)
def test_range_sets_with_nothing_satisfiable_are_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range_header(header, size)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=-1", id="suffix"),
        pytest.param("bytes=-500", id="long-suffix"),
        pytest.param("bytes=0-,-5", id="suffix-beside-unsatisfiable-int-range"),
    ],
)
def test_suffix_of_an_empty_file_is_satisfiable_but_ignored(header: str) -> None:
    # RFC 9110 section 14.1.2: "When a selected representation has zero length, the only
    # satisfiable form of range-spec in a GET request is a suffix-range with a non-zero
    # suffix-length." So no 416; but no Content-Range can describe zero bytes: send the 200.
    with pytest.raises(MalformedRange):
        parse_range_header(header, 0)


def test_header_at_the_length_limit_is_parsed() -> None:
    header = "bytes=0-1," + " " * (MAX_RANGE_HEADER_LENGTH - len("bytes=0-1,"))
    assert len(header) == MAX_RANGE_HEADER_LENGTH
    assert parse_range_header(header, 10) == [B(0, 2)]


def test_header_over_the_length_limit_is_ignored() -> None:
    header = "bytes=0-1," + " " * (MAX_RANGE_HEADER_LENGTH - len("bytes=0-1,") + 1)
    with pytest.raises(MalformedRange):
        parse_range_header(header, 10)


def test_malformed_and_not_satisfiable_are_both_value_errors() -> None:
    assert issubclass(MalformedRange, ValueError)
    assert issubclass(RangeNotSatisfiable, ValueError)
    assert not issubclass(MalformedRange, RangeNotSatisfiable)
    assert not issubclass(RangeNotSatisfiable, MalformedRange)


# -- ByteRange -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byte_range", "size", "expected"),
    [
        pytest.param(B(0, 500), 1000, "bytes 0-499/1000", id="first-half"),
        pytest.param(B(0, 1), 1, "bytes 0-0/1", id="single-byte-file"),
        pytest.param(B(999, 1000), 1000, "bytes 999-999/1000", id="last-byte"),
        pytest.param(B(0, 1000), 1000, "bytes 0-999/1000", id="whole"),
    ],
)
def test_content_range_is_inclusive_on_the_wire(
    byte_range: ByteRange, size: int, expected: str
) -> None:
    assert byte_range.content_range(size) == expected


def test_byte_range_length_is_stop_minus_start() -> None:
    assert len(B(10, 25)) == 15
    assert len(B(7, 7)) == 0


def test_byte_ranges_order_by_start_then_stop() -> None:
    assert sorted([B(5, 6), B(0, 9), B(0, 2)]) == [B(0, 2), B(0, 9), B(5, 6)]


# -- multipart_plan --------------------------------------------------------------------------------


def test_multipart_framing_is_exact_crlf_bytes() -> None:
    plan = multipart_plan([B(0, 3), B(7, 10)], 10, "text/plain; charset=utf-8", boundary="b")
    assert plan.boundary == "b"
    assert plan.ranges == (B(0, 3), B(7, 10))
    assert plan.parts == (
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-2/10\r\n\r\n",
        b"\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Range: bytes 7-9/10\r\n\r\n",
    )
    assert plan.closing == b"\r\n--b--\r\n"
    assert plan.content_type == "multipart/byteranges; boundary=b"


def test_multipart_body_assembled_from_the_plan_is_the_rfc_shape() -> None:
    data = b"0123456789"
    plan = multipart_plan([B(0, 3), B(7, 10)], 10, "application/octet-stream", boundary="XYZ")
    body = b"".join(
        part + data[r.start : r.stop] for part, r in zip(plan.parts, plan.ranges, strict=True)
    )
    body += plan.closing
    assert body == (
        b"--XYZ\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 0-2/10\r\n"
        b"\r\n"
        b"012\r\n"
        b"--XYZ\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 7-9/10\r\n"
        b"\r\n"
        b"789\r\n"
        b"--XYZ--\r\n"
    )
    assert plan.content_length == len(body)


@pytest.mark.parametrize(
    ("ranges", "boundary"),
    [
        pytest.param([B(0, 1), B(2, 3)], "b", id="two-one-byte-parts"),
        pytest.param([B(0, 100), B(5000, 5001), B(9000, 10240)], None, id="random-boundary"),
        pytest.param([B(r * 600, r * 600 + 17) for r in range(16)], None, id="sixteen-parts"),
    ],
)
def test_multipart_content_length_equals_the_assembled_body(
    tmp_path: Path, ranges: list[ByteRange], boundary: str | None
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 40)
    size = path.stat().st_size
    plan = multipart_plan(ranges, size, "application/pdf", boundary=boundary)
    body = b""
    with path.open("rb") as handle:
        for part, byte_range in zip(plan.parts, plan.ranges, strict=True):
            handle.seek(byte_range.start)
            body += part + handle.read(len(byte_range))
    body += plan.closing
    assert plan.content_length == len(body)
    assert body.count(b"\r\n--" + plan.boundary.encode() + b"\r\n") == len(ranges) - 1
    assert body.startswith(b"--" + plan.boundary.encode() + b"\r\n")
    assert body.endswith(b"\r\n--" + plan.boundary.encode() + b"--\r\n")


def test_multipart_parts_never_contain_a_bare_lf() -> None:
    plan = multipart_plan([B(0, 1), B(5, 6)], 10, "image/png", boundary="b")
    for framing in (*plan.parts, plan.closing):
        assert b"\n" not in framing.replace(b"\r\n", b"")


def test_default_boundary_is_32_random_hex_digits() -> None:
    first = multipart_plan([B(0, 1), B(2, 3)], 10, "text/plain")
    second = multipart_plan([B(0, 1), B(2, 3)], 10, "text/plain")
    assert re.fullmatch(r"[0-9a-f]{32}", first.boundary)
    assert re.fullmatch(r"[0-9a-f]{32}", second.boundary)
    assert first.boundary != second.boundary
    assert first.parts[0].startswith(f"--{first.boundary}\r\n".encode())
    assert first.content_length == second.content_length


# -- properties ------------------------------------------------------------------------------------

_RANGE_ALPHABET = st.sampled_from(list("0123456789-,= \tbytesBYTES\u0661x"))
_RANGE_HEADERS = st.one_of(
    st.text(),
    st.text(_RANGE_ALPHABET, max_size=40),
    st.builds(lambda spec: f"bytes={spec}", st.text(_RANGE_ALPHABET, max_size=40)),
    st.lists(
        st.tuples(st.integers(0, 12_000), st.one_of(st.none(), st.integers(0, 12_000))),
        min_size=1,
        max_size=20,
    ).map(
        lambda pairs: (
            "bytes="
            + ",".join(f"{a}-{'' if b is None else b}" if a % 3 else f"-{a}" for a, b in pairs)
        )
    ),
)


@given(header=_RANGE_HEADERS, size=st.integers(0, 10_000))
def test_any_range_header_parses_to_disjoint_ranges_inside_the_file(header: str, size: int) -> None:
    try:
        ranges = parse_range_header(header, size)
    except (MalformedRange, RangeNotSatisfiable):
        return
    assert ranges
    for byte_range in ranges:
        assert 0 <= byte_range.start < byte_range.stop <= size
    for before, after in itertools.pairwise(sorted(ranges)):
        assert before.stop < after.start  # neither overlapping nor adjacent


@given(
    starts=st.lists(st.integers(0, 999), min_size=2, max_size=16, unique=True),
    size=st.integers(1000, 5000),
)
def test_multipart_content_length_is_exact_for_any_ranges(starts: list[int], size: int) -> None:
    header = "bytes=" + ",".join(f"{start}-{start}" for start in starts)
    ranges = parse_range_header(header, size)
    plan = multipart_plan(ranges, size, "application/octet-stream")
    assembled = sum(len(p) for p in plan.parts) + sum(len(r) for r in ranges) + len(plan.closing)
    assert plan.content_length == assembled
