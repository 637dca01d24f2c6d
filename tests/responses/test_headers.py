"""Header values (RFC 6266, RFC 8187, RFC 9110 sections 5.6.7, 8.8.3): pure tables."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendfs.responses.headers import (
    MAX_FILENAME_LENGTH,
    cache_control,
    clean_filename,
    content_disposition,
    content_type,
    default_download_name,
    http_date,
    is_token,
    parse_http_date,
    quote_etag,
)

UTC = timezone.utc
RFC_EXAMPLE = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)

# -- content_disposition ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "filename", "expected"),
    [
        pytest.param("attachment", "report.pdf", 'attachment; filename="report.pdf"', id="ascii"),
        pytest.param("inline", "report.pdf", 'inline; filename="report.pdf"', id="inline"),
        pytest.param("attachment", None, "attachment", id="no-name"),
        pytest.param("attachment", "", "attachment", id="empty-name"),
        pytest.param("inline", "\r\n\x00", "inline", id="only-controls"),
        pytest.param("attachment", "my file.txt", 'attachment; filename="my file.txt"', id="space"),
        pytest.param(".bashrc", ".bashrc", '.bashrc; filename=".bashrc"', id="dotfile"),
        pytest.param(
            "attachment",
            'say "hi".txt',
            "attachment; filename=\"say 'hi'.txt\"; filename*=UTF-8''say%20%22hi%22.txt",
            id="quotes-become-apostrophes-in-the-fallback",
        ),
        pytest.param(
            "attachment", "a\\b.txt", 'attachment; filename="a_b.txt"', id="backslash-replaced"
        ),
        pytest.param(
            "attachment",
            "../../etc/passwd",
            'attachment; filename=".._.._etc_passwd"',
            id="slashes-replaced",
        ),
        pytest.param(
            "attachment",
            "résumé 2024.pdf",
            'attachment; filename="resume 2024.pdf"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf",
            id="accents-transliterated",
        ),
        pytest.param(
            "attachment",
            "Ñandú.txt",
            "attachment; filename=\"Nandu.txt\"; filename*=UTF-8''%C3%91and%C3%BA.txt",
            id="capital-accents",
        ),
        pytest.param(
            "attachment",
            "ﬁle.txt",
            "attachment; filename=\"file.txt\"; filename*=UTF-8''%EF%AC%81le.txt",
            id="ligature-decomposed",
        ),
        pytest.param(
            "attachment",
            "日本語.txt",
            'attachment; filename="download.txt"; '
            "filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
            id="cjk-only-stem",
        ),
        pytest.param(
            "attachment",
            "日本語",
            "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E",
            id="cjk-no-extension",
        ),
        pytest.param(
            "attachment",
            "🎉.png",
            "attachment; filename=\"download.png\"; filename*=UTF-8''%F0%9F%8E%89.png",
            id="emoji-stem",
        ),
        pytest.param(
            "attachment",
            "報告 2024.pdf",
            "attachment; filename=\"2024.pdf\"; filename*=UTF-8''%E5%A0%B1%E5%91%8A%202024.pdf",
            id="cjk-with-ascii-part",
        ),
        pytest.param(
            "attachment",
            "100%.txt",
            "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt",
            id="percent",
        ),
        pytest.param(
            "attachment",
            "%41%42.txt",
            "attachment; filename=\"_41_42.txt\"; filename*=UTF-8''%2541%2542.txt",
            id="percent-escapes-not-decoded",
        ),
        pytest.param(
            "attachment",
            "a\r\nSet-Cookie: x=y.txt",
            'attachment; filename="aSet-Cookie: x=y.txt"',
            id="crlf-removed",
        ),
        pytest.param("attachment", "a\x00b.txt", 'attachment; filename="ab.txt"', id="nul"),
        pytest.param("attachment", "tab\there.txt", 'attachment; filename="tabhere.txt"', id="tab"),
        pytest.param("attachment", "\x1b[31mred", 'attachment; filename="[31mred"', id="escape"),
        pytest.param("attachment", "a\x7fb", 'attachment; filename="ab"', id="del"),
        pytest.param("attachment", "a\x85b", 'attachment; filename="ab"', id="c1-nel"),
        pytest.param(
            "attachment",
            "a\u2028b.txt",
            'attachment; filename="ab.txt"',
            id="unicode-line-separator-dropped",
        ),
        pytest.param(
            "attachment",
            "a\uff3cb.txt",
            "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%EF%BC%BCb.txt",
            id="fullwidth-backslash-not-a-separator-after-nfkd",
        ),
        pytest.param(
            "attachment",
            "\uff0e\uff0e\uff0fetc\uff0fpasswd",
            'attachment; filename="download.._etc_passwd"; '
            "filename*=UTF-8''%EF%BC%8E%EF%BC%8E%EF%BC%8Fetc%EF%BC%8Fpasswd",
            id="fullwidth-traversal-not-a-path-after-nfkd",
        ),
        pytest.param(
            "attachment",
            "caf\udce9.txt",
            "attachment; filename=\"caf.txt\"; filename*=UTF-8''caf%EF%BF%BD.txt",
            id="undecodable-file-name-bytes",
        ),
        pytest.param(
            "attachment",
            "a!#$&+-.^_`|~b",
            'attachment; filename="a!#$&+-.^_`|~b"',
            id="attr-chars",
        ),
        pytest.param(
            "attachment",
            "é'(){};=@,[]",
            'attachment; filename="e\'(){};=@,[]"; '
            "filename*=UTF-8''%C3%A9%27%28%29%7B%7D%3B%3D%40%2C%5B%5D",
            id="non-attr-chars-percent-encoded",
        ),
    ],
)
def test_content_disposition(disposition: str, filename: str | None, expected: str) -> None:
    assert content_disposition(disposition, filename) == expected


@pytest.mark.parametrize(
    ("filename", "fallback", "exact"),
    [
        pytest.param("a" * 300 + ".txt", "a" * 251 + ".txt", "a" * 251 + ".txt", id="ascii"),
        pytest.param("a" * 300, "a" * 255, "a" * 255, id="no-extension"),
        pytest.param(
            "a" * 300 + "." + "x" * 20, "a" * 255, "a" * 255, id="extension-too-long-to-keep"
        ),
        # 2 and 3 bytes a character in UTF-8: 125 and 83 of them fit beside ".txt".
        pytest.param("é" * 300 + ".txt", "e" * 125 + ".txt", "é" * 125 + ".txt", id="accents"),
        pytest.param(
            "⑽" * 100 + ".txt",
            ("(10)" * 83)[:251] + ".txt",
            "⑽" * 83 + ".txt",
            id="fallback-longer-than-name",
        ),
    ],
)
def test_long_names_are_cut_to_255_utf8_bytes_keeping_the_extension(
    filename: str, fallback: str, exact: str
) -> None:
    value = content_disposition("attachment", filename)
    match = re.fullmatch(r"attachment; filename=\"([^\"]*)\"(?:; filename\*=UTF-8''(\S+))?", value)
    assert match is not None
    assert match.group(1) == fallback
    assert len(match.group(1)) <= MAX_FILENAME_LENGTH
    assert unquote(match.group(2) or match.group(1)) == exact
    assert len(exact.encode()) <= MAX_FILENAME_LENGTH


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("report.pdf", "report.pdf", id="unchanged"),
        pytest.param("  padded.txt  ", "padded.txt", id="stripped"),
        pytest.param("a/b\\c", "a_b_c", id="separators"),
        pytest.param("..", "", id="dot-dot-is-no-name"),
        pytest.param(" . . ", "", id="dots-and-spaces-are-no-name"),
        pytest.param("..hidden", "..hidden", id="leading-dots-are-kept"),
        pytest.param("a\x00\r\n\tb", "ab", id="controls"),
        pytest.param("\ud800x", "\ufffdx", id="lone-surrogate"),
    ],
)
def test_clean_filename(name: str, expected: str) -> None:
    assert clean_filename(name) == expected


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=400)


@given(name=_ANY_TEXT, disposition=st.sampled_from(["attachment", "inline"]))
def test_any_name_gives_a_printable_ascii_header_value(name: str, disposition: str) -> None:
    value = content_disposition(disposition, name)
    value.encode("latin-1")
    assert all(0x20 <= ord(char) <= 0x7E for char in value)
    assert value == disposition or value.startswith(f'{disposition}; filename="')


@given(name=_ANY_TEXT)
def test_filename_star_carries_the_cleaned_name_exactly(name: str) -> None:
    value = content_disposition("attachment", name)
    exact = re.search(r"filename\*=UTF-8''(.*)$", value)
    cleaned = clean_filename(name)
    if exact is not None:
        assert unquote(exact.group(1), errors="strict") == cleaned
    quoted = re.search(r'filename="((?:[^"\\]|\\.)*)"', value)
    if cleaned:
        assert quoted is not None
        fallback = re.sub(r"\\(.)", r"\1", quoted.group(1))
        assert 0 < len(fallback) <= MAX_FILENAME_LENGTH
        assert "/" not in fallback
        assert "\\" not in fallback
        assert "%" not in fallback
        if exact is None:
            assert fallback == cleaned
    else:
        assert value == "attachment"


# -- content_type ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mimetype", "names", "stored", "expected"),
    [
        pytest.param(
            "application/pdf", ("a.png",), "image/gif", "application/pdf", id="mimetype-wins"
        ),
        pytest.param("text/html", (), None, "text/html; charset=utf-8", id="text-gets-charset"),
        pytest.param(
            "text/html; charset=iso-8859-1",
            (),
            None,
            "text/html; charset=iso-8859-1",
            id="text-keeps-its-charset",
        ),
        pytest.param(
            "text/plain; Charset=UTF-16",
            (),
            None,
            "text/plain; Charset=UTF-16",
            id="charset-parameter-name-any-case",
        ),
        pytest.param("TEXT/PLAIN", (), None, "TEXT/PLAIN; charset=utf-8", id="text-type-any-case"),
        pytest.param("  image/png  ", (), None, "image/png", id="mimetype-stripped"),
        pytest.param(
            "text/html\r\nX-Evil: 1", ("a.pdf",), None, "application/pdf", id="crlf-mimetype"
        ),
        pytest.param("nonsense", ("a.png",), None, "image/png", id="mimetype-without-slash"),
        pytest.param("imagé/png", ("a.png",), None, "image/png", id="non-ascii-mimetype"),
        pytest.param("", ("a.png",), None, "image/png", id="empty-mimetype"),
        pytest.param("   ", ("a.png",), None, "image/png", id="blank-mimetype"),
        pytest.param(None, ("a.csv", "b.pdf"), None, "text/csv; charset=utf-8", id="first-name"),
        pytest.param(None, (None, "b.pdf"), None, "application/pdf", id="missing-first-name"),
        pytest.param(None, ("", "b.pdf"), None, "application/pdf", id="empty-first-name"),
        pytest.param(None, ("README", "b.pdf"), None, "application/pdf", id="unknown-first-name"),
        pytest.param(None, ("A.PDF",), None, "application/pdf", id="extension-any-case"),
        pytest.param(None, ("notes.txt",), None, "text/plain; charset=utf-8", id="txt"),
        pytest.param(None, ("x.unknownext",), "image/webp", "image/webp", id="stored-type"),
        pytest.param(None, (), "text/plain", "text/plain; charset=utf-8", id="stored-text"),
        pytest.param(None, ("a.png",), "image/gif", "image/png", id="name-beats-stored"),
        pytest.param(
            None, (), "text/html\n", "text/html; charset=utf-8", id="stored-trailing-newline"
        ),
        pytest.param(None, (), "bad\r\nX: y/z", "application/octet-stream", id="stored-with-crlf"),
        pytest.param(None, (), "garbage", "application/octet-stream", id="stored-without-slash"),
        pytest.param(None, (), None, "application/octet-stream", id="nothing-known"),
        pytest.param(None, (None, None), "", "application/octet-stream", id="all-empty"),
        pytest.param(None, ("a.tar.gz",), None, "application/gzip", id="tar-gz-is-gzip-bytes"),
        pytest.param(None, ("a.gz",), None, "application/gzip", id="gz"),
        pytest.param(None, ("a.tar.bz2",), None, "application/x-bzip2", id="bz2"),
        pytest.param(None, ("a.txt.xz",), None, "application/x-xz", id="xz-not-text"),
        pytest.param(
            "application/x-tar", ("a.tar.gz",), None, "application/x-tar", id="mimetype-beats-gz"
        ),
    ],
)
def test_content_type(
    mimetype: str | None, names: tuple[str | None, ...], stored: str | None, expected: str
) -> None:
    assert content_type(mimetype=mimetype, names=names, stored=stored) == expected


@given(mimetype=st.one_of(st.none(), st.text()), stored=st.one_of(st.none(), st.text()))
def test_content_type_is_always_printable_ascii(mimetype: str | None, stored: str | None) -> None:
    value = content_type(mimetype=mimetype, names=("file.bin",), stored=stored)
    assert value
    assert all(0x20 <= ord(char) <= 0x7E for char in value)
    assert not value.endswith("; charset=utf-8; charset=utf-8")


# -- HTTP dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(RFC_EXAMPLE, "Sun, 06 Nov 1994 08:49:37 GMT", id="utc"),
        pytest.param(RFC_EXAMPLE.replace(tzinfo=None), "Sun, 06 Nov 1994 08:49:37 GMT", id="naive"),
        pytest.param(
            RFC_EXAMPLE.astimezone(timezone(timedelta(hours=-5))),
            "Sun, 06 Nov 1994 08:49:37 GMT",
            id="other-offset",
        ),
        pytest.param(
            RFC_EXAMPLE.replace(microsecond=999_999),
            "Sun, 06 Nov 1994 08:49:37 GMT",
            id="microseconds-dropped",
        ),
        pytest.param(
            datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
            "Thu, 29 Feb 2024 23:59:59 GMT",
            id="leap-day",
        ),
        pytest.param(
            datetime(1, 1, 1, tzinfo=UTC), "Mon, 01 Jan 0001 00:00:00 GMT", id="four-digit-year"
        ),
    ],
)
def test_http_date_is_imf_fixdate(moment: datetime, expected: str) -> None:
    assert http_date(moment) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE, id="imf-fixdate"),
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", RFC_EXAMPLE, id="rfc850"),
        pytest.param("Sun Nov  6 08:49:37 1994", RFC_EXAMPLE, id="asctime"),
        pytest.param(
            "Thu Feb 29 12:00:00 2024",
            datetime(2024, 2, 29, 12, tzinfo=UTC),
            id="asctime-two-digit-day",
        ),
        pytest.param("  Sun, 06 Nov 1994 08:49:37 GMT\t", RFC_EXAMPLE, id="surrounding-whitespace"),
        pytest.param(
            "Saturday, 01-Jan-00 00:00:00 GMT", datetime(2000, 1, 1, tzinfo=UTC), id="rfc850-00"
        ),
        pytest.param(
            "Friday, 31-Dec-99 23:59:59 GMT",
            datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
            id="rfc850-99",
        ),
        pytest.param("Mon, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE, id="day-name-not-cross-checked"),
    ],
)
def test_parse_http_date_reads_the_three_rfc_formats(value: str, expected: datetime) -> None:
    parsed = parse_http_date(value)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("0", id="zero"),
        pytest.param("784111777", id="epoch-seconds"),
        pytest.param("1994-11-06T08:49:37Z", id="iso-8601"),
        pytest.param("Sun, 06 Nov 1994 08:49:37", id="no-zone"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 +0000", id="numeric-zone"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 UTC", id="utc-zone-name"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 EST", id="other-zone-name"),
        pytest.param("06 Nov 1994 08:49:37 GMT", id="no-day-name"),
        pytest.param("Sun, 6 Nov 1994 08:49:37 GMT", id="one-digit-day"),
        pytest.param("Sun, 06 Nov 94 08:49:37 GMT", id="two-digit-year-in-fixdate"),
        pytest.param("sun, 06 nov 1994 08:49:37 gmt", id="lower-case"),
        pytest.param("SUN, 06 NOV 1994 08:49:37 GMT", id="upper-case"),
        pytest.param("Sun,  06 Nov 1994 08:49:37 GMT", id="double-space"),
        pytest.param("Sun, 06 Foo 1994 08:49:37 GMT", id="unknown-month"),
        pytest.param("Sun, 31 Feb 1994 08:49:37 GMT", id="no-such-day"),
        pytest.param("Sun, 06 Nov 1994 24:00:00 GMT", id="hour-24"),
        pytest.param("Sun, 06 Nov 1994 08:60:00 GMT", id="minute-60"),
        pytest.param("Sun, 00 Nov 1994 08:49:37 GMT", id="day-zero"),
        pytest.param("Sun, 06 Nov 0000 08:49:37 GMT", id="year-zero"),
        pytest.param("Sun, \u0660\u0666 Nov 1994 08:49:37 GMT", id="arabic-indic-digits"),
        pytest.param(
            "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", id="list-of-dates"
        ),
        pytest.param("Sun Nov  6 08:49:37 1994, Sun Nov  6 08:49:37 1994", id="list-of-asctime"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT garbage", id="trailing-garbage"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT\n", id="trailing-newline"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT" + " " * 10_000 + "x", id="very-long"),
    ],
)
def test_parse_http_date_rejects_anything_else(value: str | None) -> None:
    assert parse_http_date(value) is None


@given(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)))
def test_http_date_round_trips_to_the_second(moment: datetime) -> None:
    assert parse_http_date(http_date(moment)) == moment.replace(microsecond=0)


@given(two_digits=st.integers(0, 99))
def test_rfc850_two_digit_year_is_never_more_than_50_years_ahead(two_digits: int) -> None:
    parsed = parse_http_date(f"Sunday, 01-Jan-{two_digits:02d} 00:00:00 GMT")
    assert parsed is not None
    this_year = datetime.now(UTC).year
    assert parsed.year % 100 == two_digits
    assert this_year - 50 <= parsed.year <= this_year + 50


# -- entity tags, tokens, Cache-Control, default names ---------------------------------------------


@pytest.mark.parametrize(
    ("tag", "weak", "expected"),
    [
        pytest.param("abc", False, '"abc"', id="strong"),
        pytest.param("abc", True, 'W/"abc"', id="weak"),
        pytest.param(
            "d41d8cd98f00b204e9800998ecf8427e-2",
            False,
            '"d41d8cd98f00b204e9800998ecf8427e-2"',
            id="s3",
        ),
    ],
)
def test_quote_etag(tag: str, weak: bool, expected: str) -> None:
    assert quote_etag(tag, weak=weak) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("attachment", True, id="attachment"),
        pytest.param("inline", True, id="inline"),
        pytest.param("x-custom.type", True, id="custom"),
        pytest.param("", False, id="empty"),
        pytest.param("attachment\n", False, id="trailing-newline"),
        pytest.param("attach ment", False, id="space"),
        pytest.param("attachment;", False, id="semicolon"),
        pytest.param("piè", False, id="non-ascii"),
    ],
)
def test_is_token(value: str, expected: bool) -> None:
    assert is_token(value) is expected


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        pytest.param(None, "no-cache", id="revalidate"),
        pytest.param(0, "public, max-age=0", id="zero"),
        pytest.param(3600, "public, max-age=3600", id="hour"),
    ],
)
def test_cache_control(max_age: int | None, expected: str) -> None:
    assert cache_control(max_age) == expected


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        pytest.param("application/pdf", "download.pdf", id="pdf"),
        pytest.param("image/png", "download.png", id="png"),
        pytest.param("text/plain; charset=utf-8", "download.txt", id="parameters-ignored"),
        pytest.param("application/x-no-such-type", "download", id="unknown"),
    ],
)
def test_default_download_name(media_type: str, expected: str) -> None:
    assert default_download_name(media_type) == expected
