"""The HTTP decision: from method, request headers and metadata to what to send. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from .conditional import Validators, evaluate_preconditions, if_range_holds
from .ranges import (
    MAX_RANGES,
    ByteRange,
    MalformedRange,
    MultipartPlan,
    RangeNotSatisfiable,
    multipart_plan,
    parse_range_header,
)

__all__ = ["Plan", "decide"]


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
        and if_range_holds(headers.get("if-range"), validators)
    ):
        return _range_plan(range_header, size, content_type)
    return Plan(200)
