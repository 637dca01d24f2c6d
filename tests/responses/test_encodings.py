"""Accept-Encoding negotiation for precompressed siblings (RFC 9110 section 12.5.3): tables."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from sendfs.responses.encodings import (
    DEFAULT_ENCODINGS,
    SUFFIXES,
    accepted_encodings,
    check_encodings,
)

ALL = ("br", "zstd", "gzip")


def test_suffixes_and_defaults() -> None:
    assert dict(SUFFIXES) == {"br": ".br", "zstd": ".zst", "gzip": ".gz"}
    assert DEFAULT_ENCODINGS == ("br", "gzip")
    with pytest.raises(TypeError):
        SUFFIXES["deflate"] = ".zz"  # type: ignore[index]


# check_encodings: the option.


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, ()),
        (True, ("br", "gzip")),
        ((), ()),
        ([], ()),
        (["gzip"], ("gzip",)),
        (["gzip", "br"], ("gzip", "br")),
        (("zstd", "br", "gzip"), ("zstd", "br", "gzip")),
        (["GZIP", "Br"], ("gzip", "br")),
        (["br", "gzip", "br"], ("br", "gzip")),
    ],
)
def test_check_encodings_accepts(value: bool | Sequence[str], expected: tuple[str, ...]) -> None:
    assert check_encodings(value) == expected


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("br", ValueError, "not the str 'br'"),
        ("", ValueError, "not the str ''"),
        (["deflate"], ValueError, "unknown precompressed encoding 'deflate'"),
        (["br", "x-gzip"], ValueError, "'x-gzip'"),
        (["identity"], ValueError, "identity"),
        (["*"], ValueError, r"\*"),
        ([".gz"], ValueError, "'.gz'"),
        ([" br"], ValueError, "' br'"),
        ([b"br"], ValueError, "b'br'"),
        ([None], ValueError, "None"),
        ([["br"]], ValueError, r"\['br'\]"),
        (None, TypeError, "NoneType"),
        (1, TypeError, "int"),
        ({"br"}, TypeError, "set"),
        ({"br": True}, TypeError, "dict"),
    ],
)
def test_check_encodings_refuses(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_encodings(value)  # type: ignore[arg-type]


def test_check_encodings_error_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="known: 'br', 'zstd', 'gzip'"):
        check_encodings(["deflate"])


# accepted_encodings: the header.


@pytest.mark.parametrize(
    ("header", "offered", "expected"),
    [
        # Absent or empty: the file itself.
        (None, ALL, []),
        ("", ALL, []),
        (" ", ALL, []),
        (",", ALL, []),
        (" , ,\t,", ALL, []),
        ("gzip", (), []),
        # What browsers send.
        ("gzip, deflate, br, zstd", ALL, ["br", "zstd", "gzip"]),
        ("gzip, deflate, br", ALL, ["br", "gzip"]),
        ("gzip, deflate", ALL, ["gzip"]),
        ("gzip, deflate, br", ("gzip", "br"), ["gzip", "br"]),
        ("deflate", ALL, []),
        ("identity", ALL, []),
        # q-values: the client's order first, ties in the server's.
        ("gzip;q=1, br;q=0.5", ALL, ["gzip", "br"]),
        ("br;q=0.5, gzip;q=0.8, zstd;q=0.9", ALL, ["zstd", "gzip", "br"]),
        ("gzip;q=0.5, br;q=0.5", ALL, ["br", "gzip"]),
        ("gzip;q=0.5, br;q=0.5", ("gzip", "br"), ["gzip", "br"]),
        ("gzip;q=0.001, br", ALL, ["br", "gzip"]),
        ("gzip;q=0.501, br;q=0.5", ALL, ["gzip", "br"]),
        ("br;q=1.000, gzip", ALL, ["br", "gzip"]),
        ("br;q=1., gzip;q=0.", ALL, ["br"]),
        ("br;q=0.9, gzip;q=1.0", ALL, ["gzip", "br"]),
        # q=0 refuses.
        ("gzip;q=0, br", ALL, ["br"]),
        ("gzip;q=0.0, br;q=0.000", ALL, []),
        ("identity;q=0", ALL, []),
        ("gzip, identity;q=0", ALL, ["gzip"]),
        # The wildcard covers what is not named.
        ("*", ALL, ["br", "zstd", "gzip"]),
        ("*;q=0", ALL, []),
        ("*;q=0, gzip", ALL, ["gzip"]),
        ("gzip, *;q=0", ALL, ["gzip"]),
        ("br;q=0, *", ALL, ["zstd", "gzip"]),
        ("*;q=0.5, gzip", ALL, ["gzip", "br", "zstd"]),
        ("*;q=0.5, gzip;q=0.1", ALL, ["br", "zstd", "gzip"]),
        ("*, gzip;q=0", ALL, ["br", "zstd"]),
        # Case and the x-gzip alias.
        ("GZIP, Br", ALL, ["br", "gzip"]),
        ("gzip;Q=0, br", ALL, ["br"]),
        ("x-gzip", ALL, ["gzip"]),
        ("X-GZIP;q=0.5, br;q=0.4", ALL, ["gzip", "br"]),
        ("x-gzip;q=0, gzip", ALL, []),
        ("gzip", ("GZIP",), ["GZIP"]),
        # Duplicates: the lowest q-value, so a refusal wins.
        ("gzip, gzip", ALL, ["gzip"]),
        ("gzip;q=0.2, gzip;q=0.9, br;q=0.5", ALL, ["br", "gzip"]),
        ("gzip;q=0, gzip", ALL, []),
        ("gzip, gzip;q=0", ALL, []),
        ("gzip", ("gzip", "gzip", "GZIP"), ["gzip"]),
        # Odd whitespace.
        ("  gzip  ,\tbr\t", ALL, ["br", "gzip"]),
        ("gzip ; q=0.5 , br ;q=0.4", ALL, ["gzip", "br"]),
        ("gzip;q = 0.5, br;q=0.4", ALL, ["gzip", "br"]),
        ("gzip,br", ALL, ["br", "gzip"]),
        ("gzip;;q=0.5;, br;q=0.4", ALL, ["gzip", "br"]),
        # Malformed members are ignored, the rest kept.
        ("gzip;q=abc, br", ALL, ["br"]),
        ("gzip;q=1.0001, br", ALL, ["br"]),
        ("gzip;q=1.5, br", ALL, ["br"]),
        ("gzip;q=2, br", ALL, ["br"]),
        ("gzip;q=-1, br", ALL, ["br"]),
        ("gzip;q=0.1234, br", ALL, ["br"]),
        ("gzip;q=.5, br", ALL, ["br"]),
        ("gzip;q=, br", ALL, ["br"]),
        ("gzip;q, br", ALL, ["br"]),
        ("gzip;q=0.5;q=0.6, br", ALL, ["br"]),
        ("gzip;q=1e0, br", ALL, ["br"]),
        ("gzip;q=0x1, br", ALL, ["br"]),
        ("gzip;q=\uff11, br", ALL, ["br"]),  # fullwidth digit one
        ('gzip;q="0.5", br', ALL, ["br"]),
        ("*;q=abc, gzip", ALL, ["gzip"]),
        ("g zip, br", ALL, ["br"]),
        ("gzip br", ALL, []),
        ("gzip\x00, br", ALL, ["br"]),
        ("gzíp, br", ALL, ["br"]),
        ("gzip\r\n, br", ALL, ["br"]),
        (";q=1, br", ALL, ["br"]),
        ("=gzip", ALL, []),
        # Parameters other than q are ignored.
        ("gzip;level=9, br;q=0.5", ALL, ["gzip", "br"]),
        ("gzip;level=9;q=0.1, br;q=0.5", ALL, ["br", "gzip"]),
        ("gzip;level, br;q=0.5", ALL, ["gzip", "br"]),
    ],
)
def test_accepted_encodings(
    header: str | None, offered: Sequence[str], expected: list[str]
) -> None:
    assert accepted_encodings(header, offered) == expected


@pytest.mark.parametrize(
    "header",
    [
        "gzip, " * 20_000,
        "x" * 100_000,
        ";" * 100_000,
        "," * 100_000 + "br",
        "gzip;q=" + "0" * 100_000,
        "gzip;q=0." + "0" * 100_000 + "1, br",
        "br" + ";q=1" * 20_000,
        "=" * 100_000,
        " " * 100_000 + "br",
    ],
)
def test_very_long_headers_are_read_quickly_without_raising(header: str) -> None:
    started = time.perf_counter()
    result = accepted_encodings(header, ALL)
    assert time.perf_counter() - started < 2
    assert set(result) <= set(ALL)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, " * 20_000, ["gzip"]),
        ("," * 100_000 + "br", ["br"]),
        (" " * 100_000 + "br", ["br"]),
        ("gzip;q=0." + "0" * 100_000 + "1, br", ["br"]),
        ("br" + ";q=1" * 20_000, []),
    ],
)
def test_very_long_headers_are_read_correctly(header: str, expected: list[str]) -> None:
    assert accepted_encodings(header, ALL) == expected


def test_result_is_a_new_list_and_offered_is_untouched() -> None:
    offered = ["gzip", "br"]
    first = accepted_encodings("br, gzip", offered)
    first.append("zstd")
    assert offered == ["gzip", "br"]
    assert accepted_encodings("br, gzip", offered) == ["gzip", "br"]
