"""Joining untrusted relative paths onto a trusted root, and URLs made fit for logs.

Security: :func:`safe_join` is the one gate every user-supplied path goes through (named
mounts, ``send_from_storage``). It works on the *text* of the path, before any storage is
touched, and refuses rather than repairs: a refused path is answered like a missing file.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from ..exceptions import UnsafePath

__all__ = [
    "LOG_VALUE_LIMIT",
    "clean_relative_path",
    "redact_url",
    "redact_urls_in",
    "safe_join",
    "shorten",
]

#: The longest path or URL quoted in a message: request paths can be kilobytes long.
LOG_VALUE_LIMIT = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: A URL inside free text (an error message): up to whitespace, a quote or a closing bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]]+")
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Names Windows maps to devices, whatever the extension (``con.txt`` is the console too).
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
)


def _check_segment(segment: str, original: str) -> None:
    if segment == "..":
        raise UnsafePath(f"{original!r} climbs out of its root")
    stem = segment.split(".", 1)[0].rstrip(" ").lower()
    if stem in _WINDOWS_DEVICES:
        raise UnsafePath(f"{original!r} names a Windows device")


def clean_relative_path(path: str) -> str:
    """Check an untrusted relative path and return it in canonical ``a/b/c`` form.

    ``.`` and empty segments are dropped (``a//./b`` is ``a/b``). Everything that could leave the
    root or mean different things to different storages is refused.

    Args:
        path: The path from the request, already percent-decoded once by the framework.

    Returns:
        The segments joined with ``/``; ``""`` for the root itself.

    Raises:
        UnsafePath: ``..`` segments, absolute paths, backslashes, NUL and control characters,
            Windows drive letters and device names, or separators and dots still
            percent-encoded (``%2e%2e%2f``: a second decoding somewhere would climb out).
    """
    if _CONTROL.search(path):
        raise UnsafePath(f"{path!r} contains control characters")
    if "\\" in path:
        raise UnsafePath(f"{path!r} contains a backslash")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafePath(f"{path!r} is absolute")
    decoded = unquote(path)
    if decoded != path and (
        decoded.count("/") != path.count("/")
        or "\\" in decoded
        or _CONTROL.search(decoded)
        or ".." in decoded.split("/")
    ):
        raise UnsafePath(f"{path!r} hides separators or dots behind percent-encoding")
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    for segment in segments:
        _check_segment(segment, path)
    return "/".join(segments)


def safe_join(root: str, path: str) -> str:
    """Join an untrusted relative ``path`` onto a trusted ``root`` (a directory or URL prefix).

    The result always lies under ``root`` as text: ``/srv/files`` and ``a`` give
    ``/srv/files/a``, never ``/srv/files-private/a``. On local disk a symbolic link inside the
    root can still point outside it; ``send_from_storage`` checks the resolved path for that.

    Args:
        root: The trusted root, e.g. ``"/srv/files"`` or ``"s3://bucket/prefix"``.
        path: The untrusted path.

    Returns:
        ``root`` and the cleaned path joined with exactly one ``/`` (a bare ``scheme://``
        root is only prefixed: ``memory://`` and ``a`` give ``memory://a``).

    Raises:
        UnsafePath: See :func:`clean_relative_path`.
    """
    relative = clean_relative_path(path)
    if not relative:
        return root
    if root.endswith("://"):  # a bare scheme: "memory://" and "a" give "memory://a"
        return root + relative
    return f"{root.rstrip('/')}/{relative}"


def redact_url(url: str) -> str:
    """``url`` fit for logs and reprs: user info and query (credentials, signatures) masked.

    Args:
        url: A URL or a local path.

    Security:
        ``s3://KEY:SECRET@bucket``, ``https://user:pw@host/`` and presigned queries
        (``?X-Amz-Signature=...``, SAS ``?sig=...``) are bearer credentials.
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_urls_in(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`.

    For error messages of other libraries (aiohttp quotes the request URL, query included),
    before they reach a log.

    Args:
        text: Free text, e.g. ``repr(exc)``.
    """
    return _URL_IN_TEXT.sub(lambda match: redact_url(match[0]), text)


def shorten(text: str, limit: int = LOG_VALUE_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, marked with ``...`` where it was cut.

    For values quoted in messages that may be logged: a client can send a path of kilobytes.

    Args:
        text: A path, a URL or a whole message.
        limit: The longest result, at least 4.
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."
