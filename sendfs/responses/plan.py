"""The HTTP decision: from method, request headers and metadata to what to send. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from ..storages.base import ReadHint
from .conditional import Validators, evaluate_preconditions, if_range_holds, parse_etags
from .headers import parse_http_date, quote_etag
from .ranges import (
    MAX_RANGES,
    ByteRange,
    MalformedRange,
    MultipartPlan,
    RangeNotSatisfiable,
    multipart_plan,
    parse_range_header,
    single_range_spec,
)

__all__ = ["Plan", "decide", "read_hint"]

_PRECONDITION_FIELDS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to answer.

    Attributes:
        status: 200, 206, 304, 412 or 416.
        ranges: For 206, the ranges to send (one, or several for multipart).
        multipart: For a multipart 206, its framing.
    """

    status: int
    ranges: tuple[ByteRange, ...] = ()
    multipart: MultipartPlan | None = None


def _range_plan(range_header: str, size: int, content_type: str) -> Plan:
    try:
        ranges = parse_range_header(range_header, size)
    except MalformedRange:
        return Plan(200)
    except RangeNotSatisfiable:
        return Plan(416)
    if len(ranges) == 1:
        return Plan(206, (ranges[0],))
    if len(ranges) > MAX_RANGES:
        return Plan(200)
    multipart = multipart_plan(ranges, size, content_type)
    if multipart.content_length > 2 * size:
        # Many tiny ranges of a small file: the framing would outweigh the file.
        return Plan(200)
    return Plan(206, tuple(ranges), multipart)


def decide(
    method: str,
    headers: dict[str, str],
    *,
    size: int | None,
    validators: Validators,
    content_type: str,
    conditional: bool = True,
    ranges: bool = True,
    if_range_dates: bool = True,
) -> Plan:
    """Decide the answer to a request for a representation.

    Preconditions first (RFC 9110 section 13.2.2), then Range for GET only (section 14.2: a
    server ignores Range on other methods), guarded by If-Range.

    Args:
        method: The request method, upper case.
        headers: Request headers, lower-case names, repeated fields joined with ``, ``.
        size: The representation's length; ``None`` (a stream) disables ranges.
        validators: Its ETag and Last-Modified, for preconditions and If-Range.
        content_type: Its Content-Type, for multipart parts.
        conditional: Evaluate If-Match / If-None-Match / If-(Un)Modified-Since.
        ranges: Honour Range requests.
        if_range_dates: Whether an If-Range date may validate (see
            :func:`~sendfs.responses.conditional.if_range_holds`).

    A request for more than ``MAX_RANGES`` ranges, or for ranges whose multipart framing would
    be over twice the file's size, is answered with the whole file (200), which RFC 9110
    allows: the response is never much larger than the file.
    """
    if conditional:
        status = evaluate_preconditions(method, headers, validators)
        if status is not None:
            return Plan(status)
    range_header = headers.get("range")
    if (
        ranges
        and method == "GET"
        and size is not None
        and range_header is not None
        and if_range_holds(headers.get("if-range"), validators, dates=if_range_dates)
    ):
        return _range_plan(range_header, size, content_type)
    return Plan(200)


def _one_tag(value: str, *, weak_ok: bool) -> str | None:
    """``*`` or the single tag of an If-(None-)Match list, quoted strong; else ``None``."""
    tags = parse_etags(value)
    if tags is None:
        return "*"
    if len(tags) != 1 or (tags[0].weak and not weak_ok):
        return None
    return quote_etag(tags[0].tag)


def read_hint(
    method: str,
    headers: dict[str, str],
    *,
    conditional: bool = True,
    ranges: bool = True,
    storage_validators: bool = True,
) -> ReadHint | None:
    """What a request will most likely read, for storages that can open and read at once.

    A hint is only an optimisation: :func:`decide` still makes every decision from the metadata
    the storage returns. So the hint carries only what the storage evaluates exactly as
    :func:`decide` would, and is ``None`` (open plainly) whenever that is in doubt: any method
    but GET, If-Range, several ranges, tag lists, a weak If-Match, or preconditions against
    validators the caller overrode.

    Args:
        method: The request method, upper case.
        headers: Request headers, lower-case names.
        conditional: Whether preconditions will be evaluated.
        ranges: Whether Range will be honoured.
        storage_validators: Whether the response's ETag and Last-Modified are the storage's
            own (no ``etag=`` or ``last_modified=`` override).

    Returns:
        The hint, or ``None`` to open without one.
    """
    if method != "GET" or (ranges and "if-range" in headers):
        return None
    spec: str | None = None
    range_header = headers.get("range") if ranges else None
    if range_header is not None:
        try:
            spec = single_range_spec(range_header)
        except MalformedRange:
            spec = None  # ignored: the whole object is read
        else:
            if spec is None:
                return None
    if not conditional or not any(name in headers for name in _PRECONDITION_FIELDS):
        return ReadHint(range=spec)
    if not storage_validators:
        return None
    if_match = if_none_match = None
    if "if-match" in headers:
        if_match = _one_tag(headers["if-match"], weak_ok=False)  # strong comparison
        if if_match is None:
            return None
    if "if-none-match" in headers:
        # Weak comparison: W/"x" matches the strong "x" a storage compares against.
        if_none_match = _one_tag(headers["if-none-match"], weak_ok=True)
        if if_none_match is None:
            return None
    since = None if if_none_match else parse_http_date(headers.get("if-modified-since"))
    until = None if if_match else parse_http_date(headers.get("if-unmodified-since"))
    return ReadHint(spec, if_match, if_none_match, since, until)
