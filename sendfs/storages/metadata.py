"""Metadata normalisation: one ``FileInfo`` from the many shapes storages describe objects in.

fsspec backends disagree on key names and types: local gives ``mtime`` (a float), memory
``created`` (a float), s3fs ``LastModified`` (an aware datetime) and ``ETag`` (quoted), adlfs
``last_modified`` and ``etag``, gcsfs ``updated`` (an ISO string), ``etag`` and ``generation``,
http ``Last-Modified`` (an HTTP date) and ``ETag``.
The functions here are pure and tolerant: a value they cannot read becomes ``None``.
"""

from __future__ import annotations

import email.utils
import hashlib
import posixpath
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from .base import FileInfo

__all__ = [
    "derived_etag",
    "info_from_fsspec",
    "to_utc_datetime",
    "unquote_etag",
]

_MTIME_KEYS = (
    "mtime",
    "LastModified",
    "last_modified",
    "Last-Modified",
    "updated",
    "modified",
    "created",
)
_ETAG_KEYS = ("ETag", "etag", "Etag", "md5Hash")
_VERSION_KEYS = ("VersionId", "version_id", "generation", "version")
_CONTENT_TYPE_KEYS = ("ContentType", "content_type", "contentType", "mimetype")


def to_utc_datetime(value: object) -> datetime | None:
    """Read a timestamp, datetime, ISO 8601 or HTTP date string as an aware UTC datetime.

    Args:
        value: A POSIX timestamp (int or float), a datetime (naive means UTC), an ISO 8601
            string or an HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``).

    Returns:
        The moment in UTC, or ``None`` when ``value`` is none of these or out of range.
    """
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        if isinstance(value, str) and value:
            value = _parse_date_text(value)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    return None


def _parse_date_text(text: str) -> datetime:
    """Read an ISO 8601 date, or an HTTP date (``Last-Modified`` of fsspec's http filesystem)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return email.utils.parsedate_to_datetime(text)


def unquote_etag(value: object) -> str | None:
    """Strip the quotes and any ``W/`` prefix from an entity tag as a storage reports it.

    Args:
        value: The raw tag (s3fs gives ``'"abc"'``, adlfs ``'0x8D...'``), or anything else.

    Returns:
        The bare tag, or ``None`` when there is none. Characters HTTP does not allow inside an
        entity tag (``"``, controls, non-ASCII) are not expected from storages; a tag holding
        them is dropped rather than risk a malformed header.
    """
    if not isinstance(value, str):
        return None
    tag = value.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    if not tag or any(c == '"' or not 0x21 <= ord(c) <= 0x7E for c in tag):
        return None
    return tag


def derived_etag(*parts: object) -> str:
    """Build a stable entity tag from identifying parts (path, inode, mtime, size...).

    Args:
        *parts: Values that together change whenever the content may have changed.

    Returns:
        A short hex digest; not a content hash, but it changes with any of ``parts``.
    """
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()


def _first(info: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = info.get(key)
        if value not in (None, ""):
            return value
    return None


def info_from_fsspec(info: Mapping[str, Any], *, path: str) -> FileInfo:
    """Normalise the ``info()`` mapping of any fsspec filesystem.

    When the storage reports no entity tag, one is derived from the path, the modification time
    and the size, so conditional requests still work (memory://, zip://, local files).

    Args:
        info: What ``fs.info(path)`` returned.
        path: The path that was asked for (used for the name and a derived tag).

    Returns:
        The normalised :class:`FileInfo`.
    """
    size = info.get("size")
    mtime = to_utc_datetime(_first(info, _MTIME_KEYS))
    raw_etag = _first(info, _ETAG_KEYS)
    # A weak tag would become strong once re-quoted: drop it and derive a tag of our own.
    weak = isinstance(raw_etag, str) and raw_etag.strip().startswith("W/")
    etag = None if weak else unquote_etag(raw_etag)
    version = _first(info, _VERSION_KEYS)
    content_type = _first(info, _CONTENT_TYPE_KEYS)
    settings = info.get("content_settings")  # adlfs: azure-storage-blob's ContentSettings
    if content_type is None and settings is not None:
        content_type = getattr(settings, "content_type", None)
    raw_name = str(info.get("name") or path)
    if "://" in raw_name:  # http(s) sources: never echo a query (presigned credentials)
        raw_name = urlsplit(raw_name).path
    name = posixpath.basename(raw_name.rstrip("/")) or None
    if etag is None and mtime is not None and isinstance(size, int):
        etag = derived_etag(path, mtime.timestamp(), size, version)
    return FileInfo(
        size=size if isinstance(size, int) else None,
        mtime=mtime,
        etag=etag,
        content_type=content_type if isinstance(content_type, str) else None,
        name=name,
        version=None if version is None else str(version),
    )
