"""Preconditions and If-Range (RFC 9110 sections 8.8.3, 13.1, 13.2.2): pure tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sendfs.responses.conditional import (
    ETag,
    Validators,
    evaluate_preconditions,
    if_range_holds,
    parse_etags,
)
from sendfs.responses.headers import http_date

UTC = timezone.utc

#: The representation: strong tag ``abc``, modified at the RFC's example date.
TAG = '"abc"'
LAST_MODIFIED = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
AT = "Sun, 06 Nov 1994 08:49:37 GMT"
SECOND_BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT"
SECOND_AFTER = "Sun, 06 Nov 1994 08:49:38 GMT"
#: "Now" for the tests: ten seconds after the modification.
NOW = LAST_MODIFIED + timedelta(seconds=10)
AT_NOW = "Sun, 06 Nov 1994 08:49:47 GMT"
AFTER_NOW = "Sun, 06 Nov 1994 08:49:48 GMT"

BOTH = Validators("abc", LAST_MODIFIED)
ETAG_ONLY = Validators("abc", None)
DATE_ONLY = Validators(None, LAST_MODIFIED)
NEITHER = Validators(None, None)


# -- parse_etags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("*", None, id="star"),
        pytest.param(" * ", None, id="star-with-whitespace"),
        pytest.param('"abc"', [ETag("abc")], id="one-strong"),
        pytest.param('W/"abc"', [ETag("abc", weak=True)], id="one-weak"),
        pytest.param('""', [ETag("")], id="empty-tag"),
        pytest.param(
            '"a", W/"b", "c"',
            [ETag("a"), ETag("b", weak=True), ETag("c")],
            id="list",
        ),
        pytest.param('"a","b"', [ETag("a"), ETag("b")], id="list-without-spaces"),
        pytest.param('"a",, "b"', [ETag("a"), ETag("b")], id="list-with-empty-element"),
        pytest.param('"a,b"', [ETag("a,b")], id="comma-inside-tag"),
        pytest.param('"a,b", "c"', [ETag("a,b"), ETag("c")], id="comma-inside-tag-in-list"),
        pytest.param('W/"x,y"', [ETag("x,y", weak=True)], id="comma-inside-weak-tag"),
        pytest.param('"caf\xe9"', [ETag("caf\xe9")], id="obs-text"),
        pytest.param(
            '"d41d8cd98f00b204e9800998ecf8427e-2"',
            [ETag("d41d8cd98f00b204e9800998ecf8427e-2")],
            id="s3-multipart",
        ),
        pytest.param("", [], id="empty"),
        pytest.param("abc", [], id="unquoted"),
        pytest.param('"abc', [], id="unterminated"),
        pytest.param('"a b"', [], id="space-inside-quotes"),
        pytest.param('abc, "def"', [ETag("def")], id="garbage-then-tag"),
        pytest.param('"def", junk', [ETag("def")], id="tag-then-garbage"),
        pytest.param('*, "a"', [ETag("a")], id="star-mixed-with-tags-is-not-star"),
    ],
)
def test_parse_etags(value: str, expected: list[ETag] | None) -> None:
    assert parse_etags(value) == expected


# -- evaluate_preconditions ------------------------------------------------------------------------

IF_MATCH = [
    pytest.param("GET", {"if-match": TAG}, BOTH, None, id="if-match-same-tag"),
    pytest.param("GET", {"if-match": '"xyz"'}, BOTH, 412, id="if-match-other-tag"),
    pytest.param("GET", {"if-match": 'W/"abc"'}, BOTH, 412, id="if-match-weak-tag-never-matches"),
    pytest.param("GET", {"if-match": '"xyz", "abc"'}, BOTH, None, id="if-match-list-hit"),
    pytest.param("GET", {"if-match": '"xyz", W/"abc"'}, BOTH, 412, id="if-match-list-weak-only"),
    pytest.param("GET", {"if-match": "*"}, BOTH, None, id="if-match-star"),
    pytest.param("GET", {"if-match": "*"}, NEITHER, None, id="if-match-star-without-etag"),
    pytest.param("GET", {"if-match": "*"}, DATE_ONLY, None, id="if-match-star-date-only"),
    pytest.param("GET", {"if-match": TAG}, DATE_ONLY, 412, id="if-match-tag-without-etag"),
    pytest.param("GET", {"if-match": ""}, BOTH, 412, id="if-match-empty-list"),
    pytest.param("GET", {"if-match": "abc"}, BOTH, 412, id="if-match-unquoted-garbage"),
    pytest.param("PUT", {"if-match": TAG}, BOTH, None, id="if-match-put-same"),
    pytest.param("PUT", {"if-match": '"xyz"'}, BOTH, 412, id="if-match-put-other"),
    pytest.param("DELETE", {"if-match": '"xyz"'}, BOTH, 412, id="if-match-delete-other"),
    pytest.param(
        "GET",
        {"if-match": '"xyz"', "if-none-match": '"xyz"'},
        BOTH,
        412,
        id="if-match-fails-before-if-none-match",
    ),
    pytest.param(
        "GET",
        {"if-match": '"xyz"', "if-modified-since": AT},
        BOTH,
        412,
        id="if-match-fails-before-if-modified-since",
    ),
]

IF_UNMODIFIED_SINCE = [
    pytest.param("GET", {"if-unmodified-since": AT}, BOTH, None, id="ius-equal"),
    pytest.param("GET", {"if-unmodified-since": SECOND_AFTER}, BOTH, None, id="ius-later"),
    pytest.param("GET", {"if-unmodified-since": SECOND_BEFORE}, BOTH, 412, id="ius-earlier"),
    pytest.param("PUT", {"if-unmodified-since": SECOND_BEFORE}, BOTH, 412, id="ius-earlier-put"),
    pytest.param("POST", {"if-unmodified-since": AT}, BOTH, None, id="ius-equal-post"),
    pytest.param(
        "GET",
        {"if-match": TAG, "if-unmodified-since": SECOND_BEFORE},
        BOTH,
        None,
        id="ius-ignored-with-if-match",
    ),
    pytest.param(
        "GET",
        {"if-match": "*", "if-unmodified-since": SECOND_BEFORE},
        BOTH,
        None,
        id="ius-ignored-with-if-match-star",
    ),
    pytest.param("GET", {"if-unmodified-since": "yesterday"}, BOTH, None, id="ius-invalid-date"),
    pytest.param("GET", {"if-unmodified-since": ""}, BOTH, None, id="ius-empty"),
    pytest.param(
        "GET",
        {"if-unmodified-since": f"{SECOND_BEFORE}, {SECOND_BEFORE}"},
        BOTH,
        None,
        id="ius-list-of-dates-ignored",
    ),
    pytest.param(
        "GET", {"if-unmodified-since": SECOND_BEFORE}, ETAG_ONLY, None, id="ius-no-last-modified"
    ),
    pytest.param(
        "GET",
        {"if-unmodified-since": SECOND_BEFORE, "if-none-match": TAG},
        BOTH,
        412,
        id="ius-fails-before-if-none-match",
    ),
]

IF_NONE_MATCH = [
    pytest.param("GET", {"if-none-match": TAG}, BOTH, 304, id="inm-get"),
    pytest.param("HEAD", {"if-none-match": TAG}, BOTH, 304, id="inm-head"),
    pytest.param("POST", {"if-none-match": TAG}, BOTH, 412, id="inm-post"),
    pytest.param("PUT", {"if-none-match": TAG}, BOTH, 412, id="inm-put"),
    pytest.param("DELETE", {"if-none-match": TAG}, BOTH, 412, id="inm-delete"),
    pytest.param("GET", {"if-none-match": 'W/"abc"'}, BOTH, 304, id="inm-weak-comparison"),
    pytest.param("GET", {"if-none-match": '"xyz"'}, BOTH, None, id="inm-other-tag"),
    pytest.param("GET", {"if-none-match": '"xyz", W/"abc"'}, BOTH, 304, id="inm-list-hit"),
    pytest.param("GET", {"if-none-match": '"xyz", "uvw"'}, BOTH, None, id="inm-list-miss"),
    pytest.param("GET", {"if-none-match": "*"}, BOTH, 304, id="inm-star-get"),
    pytest.param("POST", {"if-none-match": "*"}, BOTH, 412, id="inm-star-post"),
    pytest.param("GET", {"if-none-match": "*"}, NEITHER, 304, id="inm-star-without-etag"),
    pytest.param("PUT", {"if-none-match": "*"}, DATE_ONLY, 412, id="inm-star-put-date-only"),
    pytest.param("GET", {"if-none-match": TAG}, DATE_ONLY, None, id="inm-tag-without-etag"),
    pytest.param("GET", {"if-none-match": ""}, BOTH, None, id="inm-empty-list"),
    pytest.param(
        "GET",
        {"if-match": TAG, "if-none-match": TAG},
        BOTH,
        304,
        id="inm-after-if-match-holds",
    ),
]

IF_MODIFIED_SINCE = [
    pytest.param("GET", {"if-modified-since": AT}, BOTH, 304, id="ims-equal"),
    pytest.param("HEAD", {"if-modified-since": AT}, BOTH, 304, id="ims-equal-head"),
    pytest.param("GET", {"if-modified-since": SECOND_AFTER}, BOTH, 304, id="ims-later"),
    pytest.param("GET", {"if-modified-since": SECOND_BEFORE}, BOTH, None, id="ims-earlier"),
    pytest.param("GET", {"if-modified-since": AT_NOW}, BOTH, 304, id="ims-equal-to-now"),
    pytest.param("GET", {"if-modified-since": AFTER_NOW}, BOTH, None, id="ims-future-ignored"),
    pytest.param("POST", {"if-modified-since": AT}, BOTH, None, id="ims-ignored-for-post"),
    pytest.param("PUT", {"if-modified-since": AT}, BOTH, None, id="ims-ignored-for-put"),
    pytest.param("GET", {"if-modified-since": "yesterday"}, BOTH, None, id="ims-invalid-date"),
    pytest.param(
        "GET", {"if-modified-since": f"{AT}, {AT}"}, BOTH, None, id="ims-list-of-dates-ignored"
    ),
    pytest.param("GET", {"if-modified-since": AT}, ETAG_ONLY, None, id="ims-no-last-modified"),
    pytest.param("GET", {"if-modified-since": AT}, DATE_ONLY, 304, id="ims-date-only"),
    pytest.param(
        "GET",
        {"if-modified-since": "Sunday, 06-Nov-94 08:49:37 GMT"},
        BOTH,
        304,
        id="ims-rfc850-date",
    ),
    pytest.param(
        "GET", {"if-modified-since": "Sun Nov  6 08:49:37 1994"}, BOTH, 304, id="ims-asctime-date"
    ),
    pytest.param(
        "GET",
        {"if-none-match": '"xyz"', "if-modified-since": AT},
        BOTH,
        None,
        id="ims-ignored-with-non-matching-inm",
    ),
    pytest.param(
        "GET",
        {"if-none-match": '"xyz"', "if-modified-since": AT},
        DATE_ONLY,
        None,
        id="ims-ignored-with-inm-even-without-etag",
    ),
    pytest.param(
        "GET",
        {"if-match": TAG, "if-modified-since": AT},
        BOTH,
        304,
        id="ims-after-if-match-holds",
    ),
]

NO_CONDITIONS = [
    pytest.param("GET", {}, BOTH, None, id="no-headers"),
    pytest.param("GET", {"range": "bytes=0-1", "if-range": TAG}, BOTH, None, id="only-range"),
    pytest.param("POST", {}, NEITHER, None, id="no-headers-no-validators"),
]


@pytest.mark.parametrize(
    ("method", "headers", "validators", "expected"),
    IF_MATCH + IF_UNMODIFIED_SINCE + IF_NONE_MATCH + IF_MODIFIED_SINCE + NO_CONDITIONS,
)
def test_preconditions_follow_rfc_9110_evaluation_order(
    method: str, headers: dict[str, str], validators: Validators, expected: int | None
) -> None:
    assert evaluate_preconditions(method, headers, validators, now=NOW) == expected


@pytest.mark.parametrize(
    ("last_modified", "expected"),
    [
        pytest.param(LAST_MODIFIED.replace(microsecond=1), 304, id="one-microsecond-later"),
        pytest.param(LAST_MODIFIED.replace(microsecond=999_999), 304, id="almost-a-second-later"),
        pytest.param(LAST_MODIFIED + timedelta(seconds=1), None, id="one-second-later"),
        pytest.param(
            LAST_MODIFIED.astimezone(timezone(timedelta(hours=2))), 304, id="other-time-zone"
        ),
    ],
)
def test_if_modified_since_compares_whole_seconds(
    last_modified: datetime, expected: int | None
) -> None:
    validators = Validators("abc", last_modified)
    assert evaluate_preconditions("GET", {"if-modified-since": AT}, validators, now=NOW) == expected


@pytest.mark.parametrize(
    ("last_modified", "expected"),
    [
        pytest.param(LAST_MODIFIED.replace(microsecond=999_999), None, id="same-second"),
        pytest.param(LAST_MODIFIED + timedelta(seconds=1), 412, id="next-second"),
    ],
)
def test_if_unmodified_since_compares_whole_seconds(
    last_modified: datetime, expected: int | None
) -> None:
    validators = Validators("abc", last_modified)
    headers = {"if-unmodified-since": AT}
    assert evaluate_preconditions("GET", headers, validators, now=NOW) == expected


def test_if_modified_since_defaults_now_to_the_clock() -> None:
    header = http_date(datetime.now(UTC) + timedelta(days=1))
    validators = Validators("abc", LAST_MODIFIED)
    assert evaluate_preconditions("GET", {"if-modified-since": header}, validators) is None
    assert evaluate_preconditions("GET", {"if-modified-since": AT}, validators) == 304


# -- if_range_holds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "validators", "expected"),
    [
        pytest.param(None, BOTH, True, id="absent"),
        pytest.param(None, NEITHER, True, id="absent-without-validators"),
        pytest.param(TAG, BOTH, True, id="same-strong-tag"),
        pytest.param(f"  {TAG}  ", BOTH, True, id="same-tag-with-whitespace"),
        pytest.param(TAG, ETAG_ONLY, True, id="same-tag-etag-only"),
        pytest.param('W/"abc"', BOTH, False, id="weak-tag-never-holds"),
        pytest.param('"xyz"', BOTH, False, id="other-tag"),
        pytest.param(f'{TAG}, "xyz"', BOTH, False, id="list-of-tags"),
        pytest.param('"abc', BOTH, False, id="unterminated-tag"),
        pytest.param("*", BOTH, False, id="star"),
        pytest.param(TAG, DATE_ONLY, False, id="tag-without-current-etag"),
        pytest.param(AT, BOTH, True, id="date-equal"),
        pytest.param(AT, DATE_ONLY, True, id="date-equal-date-only"),
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", BOTH, True, id="date-equal-rfc850"),
        pytest.param("Sun Nov  6 08:49:37 1994", BOTH, True, id="date-equal-asctime"),
        pytest.param(SECOND_BEFORE, BOTH, False, id="date-earlier"),
        pytest.param(SECOND_AFTER, BOTH, False, id="date-later"),
        pytest.param(AT, ETAG_ONLY, False, id="date-without-last-modified"),
        pytest.param("yesterday", BOTH, False, id="garbage"),
        pytest.param("", BOTH, False, id="empty"),
        pytest.param(TAG, NEITHER, False, id="tag-without-validators"),
        pytest.param(AT, NEITHER, False, id="date-without-validators"),
    ],
)
def test_if_range_holds_only_for_strong_tag_or_exact_date(
    value: str | None, validators: Validators, expected: bool
) -> None:
    assert if_range_holds(value, validators) is expected


def test_if_range_date_compares_whole_seconds() -> None:
    validators = Validators("abc", LAST_MODIFIED.replace(microsecond=250_000))
    assert if_range_holds(AT, validators) is True
