"""The header fields every face sends, as tables: pure functions of plan, metadata and options."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sendfs.responses.conditional import Validators
from sendfs.responses.fields import (
    Fields,
    disposition_value,
    empty_status_fields,
    given_media_type,
    not_modified_fields,
    redirect_fields,
    representation_fields,
    validator_fields,
)
from sendfs.responses.plan import Plan
from sendfs.responses.ranges import ByteRange, multipart_plan

MODIFIED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TAGGED = Validators(etag="abc", last_modified=MODIFIED)
DATE = b"Sun, 01 Mar 2026 12:00:00 GMT"


@pytest.mark.parametrize(
    ("validators", "max_age", "expected"),
    [
        (
            TAGGED,
            None,
            [(b"etag", b'"abc"'), (b"last-modified", DATE), (b"cache-control", b"no-cache")],
        ),
        (
            TAGGED,
            60,
            [
                (b"etag", b'"abc"'),
                (b"last-modified", DATE),
                (b"cache-control", b"public, max-age=60"),
            ],
        ),
        (Validators(etag=None, last_modified=None), 0, [(b"cache-control", b"public, max-age=0")]),
    ],
    ids=["tagged", "max-age", "none"],
)
def test_validator_fields(validators: Validators, max_age: int | None, expected: Fields) -> None:
    assert validator_fields(validators, max_age) == expected


@pytest.mark.parametrize(
    ("kind", "filename", "stored", "media_type", "expected"),
    [
        (None, None, None, "text/plain", None),
        ("inline", None, "a.txt", "text/plain", 'inline; filename="a.txt"'),
        ("attachment", "r.pdf", "a.txt", "application/pdf", 'attachment; filename="r.pdf"'),
        ("attachment", None, None, "application/pdf", 'attachment; filename="download.pdf"'),
        (
            "attachment",
            "résumé.pdf",
            None,
            "application/pdf",
            "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
        ),
        ("inline", "..", None, "text/plain", None),
    ],
    ids=["nameless-inline", "stored-name", "given-name", "nameless-attachment", "utf8", "unusable"],
)
def test_disposition_value(
    kind: str | None,
    filename: str | None,
    stored: str | None,
    media_type: str,
    expected: str | None,
) -> None:
    assert disposition_value(kind, filename, stored, media_type) == expected


def _fields(plan: Plan, *, caller: Fields | None = None, ranges_ok: bool = True) -> Fields:
    return representation_fields(
        plan,
        size=1000,
        validators=TAGGED,
        max_age=None,
        ranges_ok=ranges_ok,
        media_type="text/csv; charset=utf-8",
        disposition='attachment; filename="a.csv"',
        caller=caller or [],
    )


def test_a_full_answer_carries_every_field() -> None:
    assert dict(_fields(Plan(200))) == {
        b"etag": b'"abc"',
        b"last-modified": DATE,
        b"cache-control": b"no-cache",
        b"accept-ranges": b"bytes",
        b"content-disposition": b'attachment; filename="a.csv"',
        b"content-type": b"text/csv; charset=utf-8",
        b"content-length": b"1000",
    }


def test_one_range_carries_its_content_range_and_length() -> None:
    fields = dict(_fields(Plan(206, (ByteRange(10, 20),))))
    assert fields[b"content-range"] == b"bytes 10-19/1000"
    assert fields[b"content-length"] == b"10"


def test_multipart_carries_its_own_type_and_length_the_caller_cannot_change() -> None:
    ranges = [ByteRange(0, 10), ByteRange(500, 510)]
    multipart = multipart_plan(ranges, 1000, "text/csv; charset=utf-8")
    plan = Plan(206, tuple(ranges), multipart)
    fields = dict(_fields(plan, caller=[(b"content-type", b"text/plain")]))
    assert fields[b"content-type"] == multipart.content_type.encode()
    assert fields[b"content-length"] == str(multipart.content_length).encode()


def test_no_ranges_says_none_and_a_stream_has_no_length() -> None:
    fields = dict(
        representation_fields(
            Plan(200),
            size=None,
            validators=Validators(etag=None, last_modified=None),
            max_age=None,
            ranges_ok=False,
            media_type="text/csv",
            disposition=None,
            caller=[],
        )
    )
    assert fields[b"accept-ranges"] == b"none"
    assert b"content-length" not in fields
    assert b"content-disposition" not in fields


def test_caller_fields_override_all_but_the_framing_and_keep_repeats() -> None:
    caller = [
        (b"cache-control", b"private"),
        (b"content-length", b"1"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    fields = _fields(Plan(200), caller=caller)
    assert (b"cache-control", b"private") in fields
    assert (b"cache-control", b"no-cache") not in fields
    assert [v for n, v in fields if n == b"content-length"] == [b"1000"]
    assert [v for n, v in fields if n == b"set-cookie"] == [b"a=1", b"b=2"]


def test_a_304_carries_only_the_fields_rfc_9110_lists() -> None:
    caller = [(b"vary", b"Accept"), (b"content-type", b"text/plain"), (b"etag", b'"x"')]
    assert not_modified_fields(TAGGED, 60, caller) == [
        (b"last-modified", DATE),
        (b"cache-control", b"public, max-age=60"),
        (b"vary", b"Accept"),
        (b"etag", b'"x"'),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (412, [(b"content-length", b"0")]),
        (416, [(b"content-length", b"0"), (b"content-range", b"bytes */1000")]),
    ],
)
def test_412_and_416_are_empty(status: int, expected: Fields) -> None:
    assert empty_status_fields(status, 1000) == expected


def test_a_redirect_is_never_stored_and_the_caller_cannot_move_it() -> None:
    caller = [(b"location", b"https://evil.example/"), (b"cache-control", b"max-age=9")]
    caller.append((b"x-request-id", b"7"))
    assert redirect_fields("https://s3.example/a?sig", caller) == [
        (b"location", b"https://s3.example/a?sig"),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
        (b"x-request-id", b"7"),
    ]


@pytest.mark.parametrize(
    ("caller", "expected"),
    [([], None), ([(b"content-type", b"text/html")], "text/html"), ([(b"x", b"y")], None)],
)
def test_given_media_type(caller: Fields, expected: str | None) -> None:
    assert given_media_type(caller) == expected
