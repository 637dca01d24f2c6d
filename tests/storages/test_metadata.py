"""Metadata normalisation: timestamps, entity tags and fsspec info dicts of every shape."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from sendfs.storages import FileInfo
from sendfs.storages.metadata import derived_etag, info_from_fsspec, to_utc_datetime, unquote_etag

UTC = timezone.utc
PLUS_2 = timezone(timedelta(hours=2))
MINUS_5 = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1700000000.5, datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
        (0.25, datetime(1970, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
        (datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (datetime(2024, 1, 2, 5, 4, 5, tzinfo=PLUS_2), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (datetime(2024, 1, 1, 22, 4, 5, tzinfo=MINUS_5), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.678Z", datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2024-01-02T03:04:05+00:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 1994 10:49:37 +0200", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 03:04:05 GMT", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_to_utc_datetime_reads_timestamps_datetimes_and_iso_strings(
    value: object, expected: datetime
) -> None:
    result = to_utc_datetime(value)
    assert result == expected
    assert result is not None
    assert result.utcoffset() == timedelta(0)
    assert result.tzinfo == UTC


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "2024-13-45T99:00:00Z",
        "yesterday",
        "1700000000",
        "Sun, 99 Nov 1994 08:49:37 GMT",
        True,
        False,
        float("nan"),
        float("inf"),
        1e20,
        b"2024-01-02T03:04:05Z",
        [2024, 1, 2],
        object(),
    ],
)
def test_to_utc_datetime_gives_none_for_what_it_cannot_read(value: object) -> None:
    assert to_utc_datetime(value) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"abc"', "abc"),
        ('W/"abc"', "abc"),
        ("abc", "abc"),
        ('  "abc"  ', "abc"),
        ('"d41d8cd98f00b204e9800998ecf8427e"', "d41d8cd98f00b204e9800998ecf8427e"),
        ('"9b2cf535f27731c974343645a3985328-3"', "9b2cf535f27731c974343645a3985328-3"),
        ('"0x8DC0A1B2C3D4E5F"', "0x8DC0A1B2C3D4E5F"),
        ("CKih16GjycICEAE=", "CKih16GjycICEAE="),
        ("W/abc", "abc"),
    ],
)
def test_unquote_etag_strips_quotes_and_weak_prefix(raw: str, expected: str) -> None:
    assert unquote_etag(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        '""',
        "W/",
        'W/""',
        "   ",
        '"a"b"',
        'abc"',
        '"abc',
        "café",
        '"café"',
        "a b",
        "tab\there",
        "del\x7f",
        "nul\x00",
        None,
        123,
        b'"abc"',
    ],
)
def test_unquote_etag_gives_none_for_empty_or_malformed_tags(raw: object) -> None:
    assert unquote_etag(raw) is None


LAST_MODIFIED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "path", "expected"),
    [
        pytest.param(
            {
                "name": "/data/report.csv",
                "size": 12,
                "type": "file",
                "created": 1000000000.0,
                "mtime": 1700000000.25,
                "islink": False,
                "mode": 0o100644,
                "ino": 123,
                "nlink": 1,
            },
            "/data/report.csv",
            FileInfo(
                size=12,
                mtime=datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC),
                etag=derived_etag("/data/report.csv", 1700000000.25, 12, None),
                name="report.csv",
            ),
            id="local",
        ),
        pytest.param(
            {"name": "/exports/a.csv", "size": 3, "type": "file", "created": LAST_MODIFIED},
            "/exports/a.csv",
            FileInfo(
                size=3,
                mtime=LAST_MODIFIED,
                etag=derived_etag("/exports/a.csv", LAST_MODIFIED.timestamp(), 3, None),
                name="a.csv",
            ),
            id="memory-datetime-created",
        ),
        pytest.param(
            {"name": "/exports/a.csv", "size": 3, "type": "file", "created": 1704164645.0},
            "/exports/a.csv",
            FileInfo(
                size=3,
                mtime=LAST_MODIFIED,
                etag=derived_etag("/exports/a.csv", LAST_MODIFIED.timestamp(), 3, None),
                name="a.csv",
            ),
            id="memory-float-created",
        ),
        pytest.param(
            {
                "ETag": '"9a0364b9e99bb480dd25e1f0284c8555"',
                "LastModified": LAST_MODIFIED,
                "size": 7,
                "name": "bucket/dir/obj.bin",
                "type": "file",
                "StorageClass": "STANDARD",
                "VersionId": None,
                "ContentType": "text/plain",
            },
            "bucket/dir/obj.bin",
            FileInfo(
                size=7,
                mtime=LAST_MODIFIED,
                etag="9a0364b9e99bb480dd25e1f0284c8555",
                content_type="text/plain",
                name="obj.bin",
            ),
            id="s3",
        ),
        pytest.param(
            {
                "ETag": '"9b2cf535f27731c974343645a3985328-3"',
                "LastModified": LAST_MODIFIED,
                "size": 15728640,
                "name": "bucket/big.iso",
                "type": "file",
                "StorageClass": "STANDARD",
                "VersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
                "ContentType": "binary/octet-stream",
            },
            "bucket/big.iso",
            FileInfo(
                size=15728640,
                mtime=LAST_MODIFIED,
                etag="9b2cf535f27731c974343645a3985328-3",
                content_type="binary/octet-stream",
                name="big.iso",
                version="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            ),
            id="s3-versioned-multipart",
        ),
        pytest.param(
            {
                "name": "container/dir/blob.txt",
                "size": 5,
                "type": "file",
                "last_modified": datetime(2024, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
                "etag": '"0x8DC0A1B2C3D4E5F"',
                "version_id": None,
                "content_settings": {"content_type": "text/plain"},
                "metadata": {},
            },
            "container/dir/blob.txt",
            FileInfo(size=5, mtime=LAST_MODIFIED, etag="0x8DC0A1B2C3D4E5F", name="blob.txt"),
            id="adlfs",
        ),
        pytest.param(
            {
                "name": "container/blob.txt",
                "size": 5,
                "type": "file",
                "last_modified": LAST_MODIFIED,
                "etag": "0x8DC0A1B2C3D4E5F",
                "version_id": "2024-01-02T03:04:05.0000000Z",
            },
            "container/blob.txt",
            FileInfo(
                size=5,
                mtime=LAST_MODIFIED,
                etag="0x8DC0A1B2C3D4E5F",
                name="blob.txt",
                version="2024-01-02T03:04:05.0000000Z",
            ),
            id="adlfs-versioned-unquoted",
        ),
        pytest.param(
            {
                "kind": "storage#object",
                "name": "bucket/img/logo.png",
                "bucket": "bucket",
                "size": 10,
                "updated": "2024-01-02T03:04:05.678Z",
                "timeCreated": "2023-01-01T00:00:00.000Z",
                "etag": "CKih16GjycICEAE=",
                "generation": "1700000000000000",
                "metageneration": "1",
                "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww==",
                "contentType": "image/png",
                "type": "file",
            },
            "bucket/img/logo.png",
            FileInfo(
                size=10,
                mtime=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
                etag="CKih16GjycICEAE=",
                content_type="image/png",
                name="logo.png",
                version="1700000000000000",
            ),
            id="gcs",
        ),
        pytest.param(
            {
                "name": "bucket/a.txt",
                "size": 1,
                "type": "file",
                "updated": "2024-01-02T03:04:05Z",
                "md5Hash": "DMF1ucDxtqgxw5niaXcmYQ==",
                "generation": 1700000000000000,
            },
            "bucket/a.txt",
            FileInfo(
                size=1,
                mtime=LAST_MODIFIED,
                etag="DMF1ucDxtqgxw5niaXcmYQ==",
                name="a.txt",
                version="1700000000000000",
            ),
            id="gcs-md5-and-integer-generation",
        ),
        pytest.param(
            {
                "name": "https://example.com/files/report.pdf",
                "size": 10,
                "mimetype": "application/pdf",
                "url": "https://example.com/files/report.pdf",
                "ETag": '"781e5e245d69b566979b86e28d23f2c7"',
                "Last-Modified": "Tue, 02 Jan 2024 03:04:05 GMT",
                "type": "file",
            },
            "https://example.com/files/report.pdf",
            FileInfo(
                size=10,
                mtime=LAST_MODIFIED,
                etag="781e5e245d69b566979b86e28d23f2c7",
                content_type="application/pdf",
                name="report.pdf",
            ),
            id="http",
        ),
        pytest.param(
            {"name": "archive.zip/inner/file.txt", "size": 4, "type": "file"},
            "inner/file.txt",
            FileInfo(size=4, name="file.txt"),
            id="no-mtime-no-etag",
        ),
        pytest.param(
            {"size": 4, "type": "file", "mtime": 1704164645},
            "dir/fallback.txt",
            FileInfo(
                size=4,
                mtime=LAST_MODIFIED,
                etag=derived_etag("dir/fallback.txt", LAST_MODIFIED.timestamp(), 4, None),
                name="fallback.txt",
            ),
            id="name-from-path",
        ),
        pytest.param(
            {"name": "bucket/weird", "size": 2, "ETag": 'we"ird', "mtime": 1704164645},
            "bucket/weird",
            FileInfo(
                size=2,
                mtime=LAST_MODIFIED,
                etag=derived_etag("bucket/weird", LAST_MODIFIED.timestamp(), 2, None),
                name="weird",
            ),
            id="malformed-etag-replaced-by-derived",
        ),
        pytest.param(
            {"name": "bucket/nosize", "type": "file", "ETag": '"abc"', "size": None},
            "bucket/nosize",
            FileInfo(size=None, etag="abc", name="nosize"),
            id="unknown-size",
        ),
        pytest.param(
            {"name": "bucket/odd", "size": "12", "ETag": '"abc"', "LastModified": "nonsense"},
            "bucket/odd",
            FileInfo(size=None, etag="abc", name="odd"),
            id="unreadable-values-become-none",
        ),
    ],
)
def test_info_from_fsspec_normalises_every_backend_shape(
    raw: dict[str, Any], path: str, expected: FileInfo
) -> None:
    assert info_from_fsspec(raw, path=path) == expected


def test_info_from_fsspec_keeps_the_version_in_the_derived_etag() -> None:
    raw = {"name": "b/k", "size": 1, "mtime": 1704164645.0, "version": "v1"}
    info = info_from_fsspec(raw, path="b/k")
    assert info.version == "v1"
    assert info.etag == derived_etag("b/k", 1704164645.0, 1, "v1")
    assert info.etag != info_from_fsspec({**raw, "version": "v2"}, path="b/k").etag


def test_info_from_fsspec_derived_etag_changes_with_size_and_mtime() -> None:
    raw = {"name": "/x", "size": 1, "mtime": 1704164645.0}
    base = info_from_fsspec(raw, path="/x").etag
    assert base is not None
    assert info_from_fsspec({**raw, "size": 2}, path="/x").etag != base
    assert info_from_fsspec({**raw, "mtime": 1704164646.0}, path="/x").etag != base
    assert info_from_fsspec(raw, path="/y").etag != base
    assert info_from_fsspec(dict(raw), path="/x").etag == base


def test_derived_etag_is_stable_for_the_same_parts() -> None:
    assert derived_etag("/a", 1, 2.5, None) == derived_etag("/a", 1, 2.5, None)
    assert derived_etag() == derived_etag()


def test_derived_etag_is_short_lowercase_hex() -> None:
    tag = derived_etag("/srv/ファイル.txt", 66306, 1234, 1700000000123456789, 42)
    assert re.fullmatch(r"[0-9a-f]{24}", tag)
    assert unquote_etag(tag) == tag


def test_derived_etag_handles_unencodable_path_text() -> None:
    tag = derived_etag("/srv/\udcff.bin", 1)
    assert re.fullmatch(r"[0-9a-f]{24}", tag)


@pytest.mark.parametrize(
    "changed",
    [
        ("/b", 1, 2, 3),
        ("/a", 9, 2, 3),
        ("/a", 1, 9, 3),
        ("/a", 1, 2, 9),
        ("/a", 1, 2),
        ("/a", 1, 2, 3, 0),
        (1, 2, 3, "/a"),
    ],
)
def test_derived_etag_changes_when_any_part_changes(changed: tuple[object, ...]) -> None:
    assert derived_etag(*changed) != derived_etag("/a", 1, 2, 3)
