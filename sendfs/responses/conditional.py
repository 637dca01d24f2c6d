"""Conditional requests (RFC 9110 section 13): preconditions and If-Range.

Pure functions over header strings and the representation's validators. The evaluation order
is the RFC's (section 13.2.2), which several anchors get wrong:

1. ``If-Match`` (strong comparison) fails -> 412;
2. else ``If-Unmodified-Since`` (only without If-Match) fails -> 412;
3. ``If-None-Match`` (weak comparison) matches -> 304 for GET/HEAD, 412 otherwise;
4. else ``If-Modified-Since`` (only without If-None-Match, only GET/HEAD) not modified -> 304;
5. then Range, honoured only when ``If-Range`` (strong comparison or exact date) holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from .headers import parse_http_date

__all__ = ["ETag", "Validators", "evaluate_preconditions", "if_range_holds", "parse_etags"]

_ETAG_ITEM = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


@dataclass(frozen=True, slots=True)
class ETag:
    """An entity tag as it appears in a request: the bare value and whether it is weak."""

    tag: str
    weak: bool = False


@dataclass(frozen=True, slots=True)
class Validators:
    """The validators of the current representation.

    Args:
        etag: Its strong entity tag (bare), or ``None``.
        last_modified: Its modification time, or ``None``.
    """

    etag: str | None
    last_modified: datetime | None

    @classmethod
    def current(cls, etag: str | None, last_modified: datetime | None, now: datetime) -> Validators:
        """The validators as sent at ``now``: a modification time in the future becomes ``now``.

        RFC 9110 section 8.8.2.1: an origin server must not send a Last-Modified later than
        the message's date, and replaces a future one (a clock set wrong, a file touched with
        a future date) with that date. Sent as it is, it would also defeat If-Modified-Since,
        which ignores dates in the future.

        Args:
            etag: The strong entity tag (bare), or ``None``.
            last_modified: The modification time, aware, or ``None``.
            now: The time of the response, aware.
        """
        if last_modified is not None and last_modified > now:
            last_modified = now
        return cls(etag, last_modified)


def parse_etags(value: str) -> list[ETag] | None:
    """Parse an If-Match / If-None-Match list.

    Args:
        value: ``*`` or a comma-separated list of (possibly weak) quoted entity tags.

    Returns:
        ``None`` for ``*`` (any current representation), else the tags found. Text that is not
        a quoted tag is skipped, so a malformed header matches only what was readable in it.
    """
    if value.strip() == "*":
        return None
    return [ETag(m.group(2), weak=bool(m.group(1))) for m in _ETAG_ITEM.finditer(value)]


# ``tags is None`` is ``*``: it matches any current representation, with or without an entity
# tag (RFC 9110 sections 13.1.1, 13.1.2); these functions only run when the source exists.


def _strong_match(tags: list[ETag] | None, etag: str | None) -> bool:
    if tags is None:
        return True
    return etag is not None and any(not t.weak and t.tag == etag for t in tags)


def _weak_match(tags: list[ETag] | None, etag: str | None) -> bool:
    if tags is None:
        return True
    return etag is not None and any(t.tag == etag for t in tags)


def _seconds(moment: datetime) -> datetime:
    # HTTP dates carry whole seconds: compare at that precision.
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def evaluate_preconditions(
    method: str,
    headers: dict[str, str],
    validators: Validators,
    *,
    now: datetime | None = None,
) -> int | None:
    """Evaluate the preconditions of a request, in RFC 9110 section 13.2.2 order.

    Args:
        method: The request method, upper case.
        headers: Request headers with lower-case names (repeated fields joined by ``, ``).
        validators: The current representation's ETag and Last-Modified.
        now: The current time (for tests); dates in the future are ignored (section 13.1.3).

    Returns:
        ``412`` (Precondition Failed), ``304`` (Not Modified), or ``None`` to go on.
    """
    etag, last_modified = validators.etag, validators.last_modified
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _strong_match(parse_etags(if_match), etag):
            return 412
    elif last_modified is not None:
        since = parse_http_date(headers.get("if-unmodified-since"))
        if since is not None and _seconds(last_modified) > since:
            return 412
    safe = method in ("GET", "HEAD")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _weak_match(parse_etags(if_none_match), etag):
            return 304 if safe else 412
    elif safe and last_modified is not None:
        since = parse_http_date(headers.get("if-modified-since"))
        current = now or datetime.now(timezone.utc)
        if since is not None and since <= current and _seconds(last_modified) <= since:
            return 304
    return None


def if_range_holds(value: str | None, validators: Validators, *, dates: bool = True) -> bool:
    """Tell whether the ranges of a request may be served (RFC 9110 section 13.1.5).

    Args:
        value: The If-Range header, or ``None`` when absent (then ranges are served).
        validators: The current representation's validators.
        dates: Whether a date may validate; not when representations chosen by
            Accept-Encoding share a modification time (``gzip -k`` keeps it), since their
            ranges would then be spliced together.

    Returns:
        True when there is no If-Range, when it is an entity tag that matches the current one
        *strongly* (a weak tag never does), or a date *equal* to Last-Modified. Anything else,
        an unparsable value included, means "send the whole representation".
    """
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        tags = parse_etags(value)
        return tags is not None and len(tags) == 1 and _strong_match(tags, validators.etag)
    since = parse_http_date(value)
    if since is None or validators.last_modified is None or not dates:
        return False
    return _seconds(validators.last_modified) == since
