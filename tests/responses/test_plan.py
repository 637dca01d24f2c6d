"""The HTTP decision (preconditions, then Range) and the status of storage errors: pure tables."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from lilya.exceptions import HTTPException as LilyaHTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException

from sendfs.exceptions import (
    BackendError,
    MissingDependency,
    SendfsError,
    SourceChanged,
    SourceForbidden,
    SourceNotFound,
    StorageBusy,
    UnknownScheme,
    UnsafePath,
)
from sendfs.responses.conditional import Validators
from sendfs.responses.errors import (
    HTTPError,
    http_error,
    lilya_exception,
    status_error,
    status_for,
)
from sendfs.responses.plan import Plan, decide
from sendfs.responses.ranges import MAX_RANGES, ByteRange
from sendfs.starlette import starlette_exception

B = ByteRange
SIZE = 10_000
LAST_MODIFIED = datetime(1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc)
AT = "Sun, 06 Nov 1994 08:49:37 GMT"
SECOND_BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT"
VALIDATORS = Validators("abc", LAST_MODIFIED)


def _disjoint(count: int) -> str:
    """A Range header asking for ``count`` one-byte ranges that stay apart after coalescing."""
    return "bytes=" + ",".join(f"{index * 100}-{index * 100}" for index in range(count))


# -- decide ----------------------------------------------------------------------------------------

CASES = [
    # no conditions
    pytest.param("GET", {}, {}, 200, (), id="plain-get"),
    pytest.param("HEAD", {}, {}, 200, (), id="plain-head"),
    # ranges
    pytest.param("GET", {"range": "bytes=0-99"}, {}, 206, (B(0, 100),), id="one-range"),
    pytest.param("GET", {"range": "bytes=-100"}, {}, 206, (B(9900, 10000),), id="suffix-range"),
    pytest.param(
        "GET",
        {"range": "bytes=500-599,0-99"},
        {},
        206,
        (B(500, 600), B(0, 100)),
        id="several-ranges-multipart-in-request-order",
    ),
    pytest.param(
        "GET", {"range": "bytes=0-99,100-199"}, {}, 206, (B(0, 200),), id="adjacent-become-one"
    ),
    pytest.param("GET", {"range": "bytes=20000-"}, {}, 416, (), id="unsatisfiable"),
    pytest.param("GET", {"range": "bytes=-0"}, {}, 416, (), id="zero-suffix"),
    pytest.param("GET", {"range": "bytes=abc"}, {}, 200, (), id="malformed-ignored"),
    pytest.param("GET", {"range": "bytes=5-2"}, {}, 200, (), id="last-before-first-ignored"),
    pytest.param("GET", {"range": "items=0-1"}, {}, 200, (), id="unknown-unit-ignored"),
    pytest.param("HEAD", {"range": "bytes=0-99"}, {}, 200, (), id="range-ignored-for-head"),
    pytest.param("POST", {"range": "bytes=0-99"}, {}, 200, (), id="range-ignored-for-post"),
    pytest.param("PUT", {"range": "bytes=0-99"}, {}, 200, (), id="range-ignored-for-put"),
    pytest.param("HEAD", {"range": "bytes=20000-"}, {}, 200, (), id="no-416-for-head"),
    # If-Range
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-range": '"abc"'},
        {},
        206,
        (B(0, 100),),
        id="if-range-tag",
    ),
    pytest.param(
        "GET", {"range": "bytes=0-99", "if-range": AT}, {}, 206, (B(0, 100),), id="if-range-date"
    ),
    pytest.param(
        "GET", {"range": "bytes=0-99", "if-range": '"xyz"'}, {}, 200, (), id="if-range-other-tag"
    ),
    pytest.param(
        "GET", {"range": "bytes=0-99", "if-range": 'W/"abc"'}, {}, 200, (), id="if-range-weak-tag"
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-range": SECOND_BEFORE},
        {},
        200,
        (),
        id="if-range-other-date",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=20000-", "if-range": '"xyz"'},
        {},
        200,
        (),
        id="if-range-mismatch-beats-416",
    ),
    pytest.param("GET", {"if-range": '"xyz"'}, {}, 200, (), id="if-range-without-range"),
    # preconditions come first
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-none-match": '"abc"'},
        {},
        304,
        (),
        id="304-beats-range",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-modified-since": AT},
        {},
        304,
        (),
        id="304-by-date-beats-range",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=20000-", "if-none-match": '"abc"'},
        {},
        304,
        (),
        id="304-beats-416",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-match": '"xyz"'},
        {},
        412,
        (),
        id="412-beats-range",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=20000-", "if-match": '"xyz"'},
        {},
        412,
        (),
        id="412-beats-416",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-unmodified-since": SECOND_BEFORE},
        {},
        412,
        (),
        id="412-by-date-beats-range",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-match": '"abc"'},
        {},
        206,
        (B(0, 100),),
        id="if-match-holds-then-range",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-none-match": '"xyz"', "if-modified-since": AT},
        {},
        206,
        (B(0, 100),),
        id="inm-miss-then-range",
    ),
    pytest.param("HEAD", {"if-none-match": '"abc"'}, {}, 304, (), id="304-for-head"),
    pytest.param("POST", {"if-none-match": '"abc"'}, {}, 412, (), id="412-for-post"),
    # streams and empty files
    pytest.param("GET", {"range": "bytes=0-99"}, {"size": None}, 200, (), id="stream-no-ranges"),
    pytest.param("GET", {"range": "bytes=20000-"}, {"size": None}, 200, (), id="stream-no-416"),
    pytest.param(
        "GET", {"if-none-match": '"abc"'}, {"size": None}, 304, (), id="stream-still-conditional"
    ),
    pytest.param("GET", {"range": "bytes=0-"}, {"size": 0}, 416, (), id="empty-file-first-pos"),
    pytest.param("GET", {"range": "bytes=-5"}, {"size": 0}, 200, (), id="empty-file-suffix"),
    # switches
    pytest.param(
        "GET", {"if-none-match": '"abc"'}, {"conditional": False}, 200, (), id="conditional-off"
    ),
    pytest.param(
        "GET", {"if-match": '"xyz"'}, {"conditional": False}, 200, (), id="conditional-off-if-match"
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-99", "if-none-match": '"abc"'},
        {"conditional": False},
        206,
        (B(0, 100),),
        id="conditional-off-range-on",
    ),
    pytest.param("GET", {"range": "bytes=0-99"}, {"ranges": False}, 200, (), id="ranges-off"),
    pytest.param(
        "GET", {"range": "bytes=20000-"}, {"ranges": False}, 200, (), id="ranges-off-no-416"
    ),
    pytest.param(
        "GET", {"if-none-match": '"abc"'}, {"ranges": False}, 304, (), id="ranges-off-still-304"
    ),
    # how many ranges
    pytest.param(
        "GET",
        {"range": _disjoint(MAX_RANGES)},
        {},
        206,
        tuple(B(index * 100, index * 100 + 1) for index in range(MAX_RANGES)),
        id="max-ranges-multipart",
    ),
    pytest.param(
        "GET", {"range": _disjoint(MAX_RANGES + 1)}, {}, 200, (), id="too-many-ranges-whole-file"
    ),
    pytest.param(
        "GET",
        {"range": "bytes=" + ",".join(f"{index}-{index}" for index in range(50))},
        {},
        206,
        (B(0, 50),),
        id="many-adjacent-ranges-coalesce-to-one",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-0,2-2,4-4"},
        {"size": 20},
        200,
        (),
        id="framing-over-twice-the-file",
    ),
    pytest.param(
        "GET",
        {"range": "bytes=0-399,600-999"},
        {"size": 1000},
        206,
        (B(0, 400), B(600, 1000)),
        id="framing-small-enough",
    ),
]


@pytest.mark.parametrize(("method", "headers", "options", "status", "ranges"), CASES)
def test_decide(
    method: str,
    headers: dict[str, str],
    options: dict[str, Any],
    status: int,
    ranges: tuple[ByteRange, ...],
) -> None:
    arguments: dict[str, Any] = {
        "size": SIZE,
        "validators": VALIDATORS,
        "content_type": "application/pdf",
        **options,
    }
    plan = decide(method, headers, **arguments)
    assert plan.status == status
    assert plan.ranges == ranges
    if len(ranges) > 1:
        assert plan.multipart is not None
        assert plan.multipart.ranges == ranges
        assert plan.multipart.content_length <= 2 * arguments["size"]
    else:
        assert plan.multipart is None


def test_multipart_plan_frames_parts_with_the_file_type() -> None:
    plan = decide(
        "GET",
        {"range": "bytes=0-99,200-299"},
        size=SIZE,
        validators=VALIDATORS,
        content_type="application/pdf",
    )
    assert plan.multipart is not None
    boundary = plan.multipart.boundary
    assert plan.multipart.parts == (
        f"--{boundary}\r\nContent-Type: application/pdf\r\n"
        "Content-Range: bytes 0-99/10000\r\n\r\n".encode(),
        f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n"
        "Content-Range: bytes 200-299/10000\r\n\r\n".encode(),
    )


def test_plan_defaults_to_no_ranges() -> None:
    assert Plan(200) == Plan(200, (), None)


# -- errors ----------------------------------------------------------------------------------------

SECRET = "s3://private-bucket/customers/alice/tax-2024.pdf"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(SourceNotFound(SECRET), 404, id="not-found"),
        pytest.param(UnsafePath(SECRET), 404, id="unsafe-path-looks-not-found"),
        pytest.param(SourceForbidden(SECRET), 403, id="forbidden"),
        pytest.param(SourceChanged(SECRET), 503, id="changed-retry"),
        pytest.param(BackendError(SECRET), 502, id="backend"),
        pytest.param(UnknownScheme(SECRET), None, id="unknown-scheme"),
        pytest.param(MissingDependency(SECRET), None, id="missing-dependency"),
        pytest.param(SendfsError(SECRET), None, id="base"),
    ],
)
def test_status_for(error: SendfsError, status: int | None) -> None:
    assert status_for(error) == status


@pytest.mark.parametrize(
    ("error", "status", "phrase"),
    [
        pytest.param(SourceNotFound(SECRET), 404, "Not Found", id="not-found"),
        pytest.param(UnsafePath(SECRET), 404, "Not Found", id="unsafe-path"),
        pytest.param(SourceForbidden(SECRET), 403, "Forbidden", id="forbidden"),
        pytest.param(SourceChanged(SECRET), 503, "Service Unavailable", id="changed"),
        pytest.param(BackendError(SECRET), 502, "Bad Gateway", id="backend"),
    ],
)
def test_each_face_renders_the_status_with_only_the_phrase(
    error: SendfsError, status: int, phrase: str
) -> None:
    core = status_error(error)
    assert isinstance(core, HTTPError)
    lilya = http_error(error)
    starlette = starlette_exception(core)
    assert isinstance(lilya, LilyaHTTPException)
    assert StarletteHTTPException not in type(lilya).__mro__
    assert isinstance(starlette, StarletteHTTPException)
    for exc in (core, lilya, starlette):
        assert exc.status_code == status
        assert exc.detail == phrase
        assert not exc.headers
        for text in (str(exc), repr(exc), *map(str, exc.args)):
            assert "private-bucket" not in text
            assert "alice" not in text


def test_a_busy_storage_is_a_503_with_retry_after_in_every_face() -> None:
    core = status_error(StorageBusy("pool"))
    assert isinstance(core, HTTPError)
    for exc in (core, lilya_exception(core), starlette_exception(core)):
        assert exc.status_code == 503
        assert exc.headers == {"Retry-After": "5"}


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(UnknownScheme("ftp"), id="unknown-scheme"),
        pytest.param(MissingDependency("pip install 'sendfs[s3]'"), id="missing-dependency"),
        pytest.param(SendfsError("x"), id="base"),
    ],
)
def test_http_error_returns_configuration_errors_themselves(error: SendfsError) -> None:
    assert http_error(error) is error


def test_status_errors_share_one_class() -> None:
    assert type(status_error(SourceNotFound("a"))) is type(status_error(BackendError("b")))
