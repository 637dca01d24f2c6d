"""Header values: Content-Disposition, Content-Type, entity tags, HTTP dates, Cache-Control.

Pure functions. Every value they return is safe to put on the wire: printable ASCII (or
Latin-1 obs-text for entity tags), never CR, LF, NUL or other control characters, whatever the
input, so no header built here can split a response or crash a server.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote

__all__ = [
    "cache_control",
    "content_disposition",
    "content_type",
    "http_date",
    "parse_http_date",
    "quote_etag",
]

#: Longest file name put in Content-Disposition, in UTF-8 bytes (where most file systems stop).
MAX_FILENAME_LENGTH = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Lone surrogates: what ``os.fsdecode`` makes of a file name that is not valid UTF-8.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: Unicode categories dropped from names: format (bidi overrides, zero-width), separators.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})
_NOT_ASCII_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: RFC 8187 attr-char: what may stand unencoded in ``filename*``.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"
#: The media type of the bytes of a file whose name ends in a compression suffix.
_COMPRESSED_TYPES = {
    "br": "application/x-brotli",
    "bzip2": "application/x-bzip2",
    "compress": "application/x-compress",
    "gzip": "application/gzip",
    "xz": "application/x-xz",
}

#: RFC 9110 section 5.6.7: IMF-fixdate, then the obsolete rfc850-date and asctime-date.
_HTTP_DATES = tuple(
    re.compile(pattern)
    for pattern in (
        r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?P<day>[0-9]{2}) (?P<month>[A-Z][a-z]{2}) "
        r"(?P<year>[0-9]{4}) (?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2}) GMT",
        r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (?P<day>[0-9]{2})-"
        r"(?P<month>[A-Z][a-z]{2})-(?P<year>[0-9]{2}) (?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2}) GMT",
        r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) (?P<day>[0-9]{2}| [0-9]) "
        r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2}) (?P<year>[0-9]{4})",
    )
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """Format a moment as an HTTP date (IMF-fixdate), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``.

    Args:
        moment: An aware datetime (a naive one is taken as UTC).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """Parse an HTTP date in any of the three formats RFC 9110 section 5.6.7 makes recipients read.

    Only those formats are read, exactly (``GMT``, case-sensitive, one date): the conditional
    fields must be ignored when their value is not a valid HTTP-date, a list of dates included
    (RFC 9110 sections 13.1.3, 13.1.4), so a lenient parser would evaluate what it must not.

    Args:
        value: The header value.

    Returns:
        An aware UTC datetime, or ``None`` when the value is missing or not an HTTP date.
    """
    if not value:
        return None
    value = value.strip(" \t")
    for pattern in _HTTP_DATES:
        match = pattern.fullmatch(value)
        if match:
            break
    else:
        return None
    fields = match.groupdict()
    if fields["month"] not in _MONTHS:
        return None
    year = int(fields["year"])
    if len(fields["year"]) == 2:
        year = _rfc850_year(year)
    hour, minute, second = (int(part) for part in fields["time"].split(":"))
    try:
        return datetime(
            year,
            _MONTHS.index(fields["month"]) + 1,
            int(fields["day"]),
            hour,
            minute,
            second,
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None


def _rfc850_year(two_digits: int) -> int:
    # RFC 9110 section 5.6.7: a two-digit year more than 50 years in the future is the most
    # recent past year with the same last two digits.
    this_year = datetime.now(timezone.utc).year
    year = this_year - this_year % 100 + two_digits
    if year > this_year + 50:
        return year - 100
    if year + 100 <= this_year + 50:
        return year + 100
    return year


def quote_etag(tag: str, *, weak: bool = False) -> str:
    """Quote a bare entity tag for the ETag header: ``abc`` becomes ``"abc"`` (``W/"abc"``)."""
    return f'{"W/" if weak else ""}"{tag}"'


def cache_control(max_age: int | None) -> str:
    """The Cache-Control value for a download.

    Args:
        max_age: Seconds a cache may reuse the response without asking; ``None`` means caches
            must revalidate every time (``no-cache``: they still store it and send conditional
            requests, which sendfs answers with 304).
    """
    if max_age is None:
        return "no-cache"
    return f"public, max-age={max_age}"


def content_type(*, mimetype: str | None, names: tuple[str | None, ...], stored: str | None) -> str:
    """Choose the Content-Type of a download.

    Args:
        mimetype: What the caller asked for; wins when it is a clean header value.
        names: Candidate file names in order of preference (download name, source name).
        stored: The media type the storage recorded (S3 ``ContentType``).

    Returns:
        A media type; ``text/*`` types get ``; charset=utf-8`` unless they name a charset;
        ``application/octet-stream`` when nothing is known.
    """
    chosen = _clean_media_type(mimetype)
    for name in names:
        if chosen:
            break
        if name:
            chosen = _guess_media_type(name)
    chosen = chosen or _clean_media_type(stored) or "application/octet-stream"
    if chosen.lower().startswith("text/") and "charset" not in chosen.lower():
        chosen += "; charset=utf-8"
    return chosen


def _guess_media_type(name: str) -> str | None:
    media_type, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        # ``a.tar.gz`` is gzip bytes: sent without Content-Encoding, its type is gzip's.
        return _COMPRESSED_TYPES.get(encoding)
    return media_type


def _clean_media_type(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if not value or _NOT_ASCII_PRINTABLE.search(value) or "/" not in value:
        return None
    return value


def _truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    return text.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")


def _limit_length(name: str) -> str:
    if len(name.encode("utf-8", "surrogatepass")) <= MAX_FILENAME_LENGTH:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) < 16:
        tail = "." + ext
        return _truncate_utf8(stem, MAX_FILENAME_LENGTH - len(tail.encode("utf-8"))) + tail
    return _truncate_utf8(name, MAX_FILENAME_LENGTH)


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_name = decomposed.encode("ascii", "ignore").decode("ascii")
    ascii_name = _NOT_ASCII_PRINTABLE.sub("", ascii_name).replace("%", "_").strip()
    # NFKD turns fullwidth solidus and friends into real separators: replace them again.
    # A quote becomes an apostrophe: some clients keep the backslash of an escaped quote
    # (RFC 6266 appendix D); the exact name then travels in filename*.
    ascii_name = ascii_name.replace("/", "_").replace("\\", "_").replace('"', "'")
    if not ascii_name.strip(". "):
        return "download"
    if ascii_name.startswith(".") and not name.startswith("."):
        # Only the extension survived (``日本語.txt``): not a hidden ``.txt``.
        ascii_name = "download" + ascii_name
    # NFKD can lengthen a name (``⑽`` is ``(10)``).
    return _limit_length(ascii_name)


def clean_filename(name: str) -> str:
    """Make a download name safe for any header and any file system.

    Control and format characters go (a bidirectional override, U+202E, can make a name show
    a fake extension), path separators become ``_`` (the name is a name, not a path), lone
    surrogates (undecodable bytes of a file name) become U+FFFD, and the result is cut to
    :data:`MAX_FILENAME_LENGTH` UTF-8 bytes keeping the extension.

    Args:
        name: A download name, possibly from an untrusted source.

    Returns:
        The clean name, or ``""`` when nothing usable is left (only dots and spaces, like
        ``..``): the caller then treats the download as nameless.
    """
    name = _SURROGATE.sub("\ufffd", name)
    name = _CONTROL.sub("", name).replace("/", "_").replace("\\", "_")
    name = "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE).strip()
    if not name.strip(". "):
        return ""
    return _limit_length(name)


def content_disposition(disposition: str, filename: str | None) -> str:
    """Build a Content-Disposition value (RFC 6266) with an RFC 8187 ``filename*`` when needed.

    ``filename=`` always carries a quoted ASCII fallback (quotes and backslashes escaped,
    accents transliterated); ``filename*=UTF-8''...`` carries the exact name when the fallback
    had to change it.

    Args:
        disposition: ``"attachment"`` or ``"inline"``.
        filename: The download name; ``None`` or empty gives the bare disposition.

    Security:
        The name is cleaned with :func:`clean_filename`; CR, LF and other controls never reach
        the header, and a name like ``../../etc/passwd`` arrives as ``.._.._etc_passwd``.
    """
    name = clean_filename(filename) if filename else ""
    if not name:
        return disposition
    fallback = _ascii_fallback(name)
    escaped = fallback.replace("\\", "\\\\").replace('"', '\\"')
    value = f'{disposition}; filename="{escaped}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe=_ATTR_CHAR_SAFE)}"
    return value


def default_download_name(media_type: str) -> str:
    """A name for an attachment that has none: ``download`` plus the type's usual extension."""
    extension = mimetypes.guess_extension(media_type.split(";", 1)[0].strip(), strict=False)
    return f"download{extension or ''}"


def is_token(value: str) -> bool:
    """Tell whether ``value`` is an RFC 9110 token (what a disposition type must be)."""
    return _TOKEN.fullmatch(value) is not None
