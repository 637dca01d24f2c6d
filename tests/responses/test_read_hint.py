"""The read hint: what a GET is forwarded to a storage that opens and reads in one request.

A hint must carry only what the storage evaluates exactly as ``decide`` does; anything in doubt
gives no hint (open plainly), never a different answer.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sendfs.responses.plan import read_hint
from sendfs.responses.ranges import MalformedRange, single_range_spec
from sendfs.storages.base import ReadHint

DATE = "Wed, 21 Oct 2026 07:28:00 GMT"
MOMENT = datetime(2026, 10, 21, 7, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", "bytes=0-99"),
        ("bytes=0099-0199", "bytes=99-199"),
        ("BYTES = 5-", "bytes=5-"),
        ("bytes=-500", "bytes=-500"),
        ("bytes= 7-7 ,", "bytes=7-7"),
        ("bytes=0-0, 5-9", None),  # several ranges: multipart needs the size first
        ("bytes=-0", None),  # zero-length suffix: only the size says 416 or 200
    ],
)
def test_single_range_spec_canonicalises_one_range(header: str, expected: str | None) -> None:
    assert single_range_spec(header) == expected


@pytest.mark.parametrize(
    "header", ["bytes=9-5", "bytes=a-b", "items=0-5", "bytes=", "bytes=0-5, x", "bytes=1-2-3"]
)
def test_single_range_spec_flags_headers_decide_ignores(header: str) -> None:
    with pytest.raises(MalformedRange):
        single_range_spec(header)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, ReadHint()),
        ("GET", {"range": "bytes=10-19"}, ReadHint(range="bytes=10-19")),
        ("GET", {"range": "bytes=-3"}, ReadHint(range="bytes=-3")),
        ("GET", {"range": "bytes=x"}, ReadHint()),  # ignored Range: the whole object
        ("GET", {"range": "bytes=0-0,9-9"}, None),
        ("GET", {"range": "bytes=0-9", "if-range": '"a"'}, None),
        ("HEAD", {}, None),
        ("POST", {}, None),
        ("GET", {"if-none-match": '"a"'}, ReadHint(if_none_match='"a"')),
        # Weak comparison: W/"a" matches exactly what a storage's strong "a" matches.
        ("GET", {"if-none-match": 'W/"a"'}, ReadHint(if_none_match='"a"')),
        ("GET", {"if-none-match": "*"}, ReadHint(if_none_match="*")),
        ("GET", {"if-none-match": '"a", "b"'}, None),
        ("GET", {"if-match": '"a"'}, ReadHint(if_match='"a"')),
        ("GET", {"if-match": 'W/"a"'}, None),  # never matches strongly: decide says 412
        ("GET", {"if-modified-since": DATE}, ReadHint(if_modified_since=MOMENT)),
        ("GET", {"if-unmodified-since": DATE}, ReadHint(if_unmodified_since=MOMENT)),
        # RFC 9110 13.2.2: a date is ignored beside its tag counterpart, so it is not forwarded.
        (
            "GET",
            {"if-none-match": '"a"', "if-modified-since": DATE},
            ReadHint(if_none_match='"a"'),
        ),
        ("GET", {"if-match": '"a"', "if-unmodified-since": DATE}, ReadHint(if_match='"a"')),
        ("GET", {"if-modified-since": "not a date"}, ReadHint()),
        (
            "GET",
            {"range": "bytes=0-0", "if-none-match": '"a"'},
            ReadHint(range="bytes=0-0", if_none_match='"a"'),
        ),
    ],
)
def test_read_hint(method: str, headers: dict[str, str], expected: ReadHint | None) -> None:
    assert read_hint(method, headers) == expected


def test_no_preconditions_or_range_are_forwarded_when_they_are_not_evaluated() -> None:
    headers = {"range": "bytes=0-0", "if-none-match": '"a"', "if-range": '"a"'}
    assert read_hint("GET", headers, conditional=False, ranges=False) == ReadHint()


def test_preconditions_against_caller_validators_are_not_left_to_the_storage() -> None:
    assert read_hint("GET", {"if-none-match": '"mine"'}, storage_validators=False) is None
    # Without preconditions the storage's validators do not matter.
    assert read_hint("GET", {"range": "bytes=1-2"}, storage_validators=False) == ReadHint(
        range="bytes=1-2"
    )
