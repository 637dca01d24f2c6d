"""The header fields of an answer, built by pure functions of the plan, metadata and options.

Every face (Lilya, Starlette, Flask, Django, Litestar) sends exactly these fields; none builds
its own. Field names are lower-case ``bytes``, values Latin-1 ``bytes``, as ASGI carries them;
the WSGI faces decode them once.

The caller's fields (``headers=`` and whatever the framework adds to the response object
before it is sent, cookies and CORS included) override the computed ones, except the framing
fields, which describe the body sendfs frames.
"""

from __future__ import annotations

from collections.abc import Iterable

from .conditional import Validators
from .headers import (
    cache_control,
    clean_filename,
    content_disposition,
    default_download_name,
    http_date,
    quote_etag,
)
from .plan import Plan

__all__ = [
    "Fields",
    "disposition_value",
    "empty_status_fields",
    "given_media_type",
    "not_modified_fields",
    "redirect_fields",
    "representation_fields",
    "validator_fields",
    "with_encoding",
]

Fields = list[tuple[bytes, bytes]]

#: Fields a caller may not override: they describe the body sendfs frames.
FRAMING = frozenset({b"content-length", b"content-range", b"transfer-encoding"})
#: Fields a 304 carries (RFC 9110 section 15.4.5), from the caller's headers too.
NOT_MODIFIED = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary", b"last-modified"}
)


def given_media_type(caller: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The Content-Type among the caller's fields, if any.

    It wins over every other source of the type, so that multipart parts and the default
    download name follow it too, and nothing is read to sniff one.

    Args:
        caller: The caller's fields, lower-case names.
    """
    for name, value in caller:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


def disposition_value(
    kind: str | None, filename: str | None, stored_name: str | None, media_type: str
) -> str | None:
    """The Content-Disposition value, or ``None`` for an inline answer without a name.

    Args:
        kind: ``"attachment"``, ``"inline"`` or ``None`` (inline).
        filename: The download name the caller chose.
        stored_name: The source's own name.
        media_type: The Content-Type; a nameless attachment is named ``download`` plus its
            extension.
    """
    kind = kind or "inline"
    name = clean_filename(filename or stored_name or "")
    if kind == "attachment" and not name:
        name = default_download_name(media_type)
    if not name:
        return None
    return content_disposition(kind, name)


def validator_fields(validators: Validators, max_age: int | None) -> Fields:
    """ETag, Last-Modified and Cache-Control.

    Args:
        validators: The representation's validators.
        max_age: Seconds caches may reuse it; ``None`` for ``no-cache``.
    """
    fields: Fields = []
    if validators.etag:
        fields.append((b"etag", quote_etag(validators.etag).encode("latin-1")))
    if validators.last_modified is not None:
        fields.append((b"last-modified", http_date(validators.last_modified).encode()))
    fields.append((b"cache-control", cache_control(max_age).encode()))
    return fields


def representation_fields(
    plan: Plan,
    *,
    size: int | None,
    validators: Validators,
    max_age: int | None,
    ranges_ok: bool,
    media_type: str,
    disposition: str | None,
    caller: Fields,
) -> Fields:
    """The fields of a 200 or 206 (one range, or multipart).

    Args:
        plan: The decision (its ranges and multipart framing).
        size: The representation's length, ``None`` for a stream (then no Content-Length).
        validators: Its validators.
        max_age: For Cache-Control.
        ranges_ok: Whether Range would be honoured (``Accept-Ranges: bytes``).
        media_type: Its Content-Type (the parts' type for multipart).
        disposition: The Content-Disposition value, if any.
        caller: The caller's fields.
    """
    fields = validator_fields(validators, max_age)
    fields.append((b"accept-ranges", b"bytes" if ranges_ok else b"none"))
    if disposition is not None:
        fields.append((b"content-disposition", disposition.encode("latin-1")))
    if plan.multipart is not None:
        fields.append((b"content-type", plan.multipart.content_type.encode()))
        fields.append((b"content-length", str(plan.multipart.content_length).encode()))
        return with_caller_fields(fields, caller, protect=frozenset({b"content-type"}))
    fields.append((b"content-type", media_type.encode("latin-1")))
    if plan.ranges:
        byte_range = plan.ranges[0]
        fields.append((b"content-range", byte_range.content_range(size or 0).encode()))
        fields.append((b"content-length", str(len(byte_range)).encode()))
    elif size is not None:
        fields.append((b"content-length", str(size).encode()))
    return with_caller_fields(fields, caller)


def not_modified_fields(validators: Validators, max_age: int | None, caller: Fields) -> Fields:
    """The fields of a 304: those a 200 would carry that RFC 9110 section 15.4.5 lists.

    Args:
        validators: The representation's validators.
        max_age: For Cache-Control.
        caller: The caller's fields; those a 304 carries win.
    """
    kept = [field for field in caller if field[0] in NOT_MODIFIED]
    overridden = {name for name, _ in kept}
    fields = validator_fields(validators, max_age)
    return [field for field in fields if field[0] not in overridden] + kept


def empty_status_fields(status: int, size: int | None) -> Fields:
    """The fields of a 412 or 416: an empty body, and for 416 the size (``bytes */N``).

    Args:
        status: 412 or 416.
        size: The representation's length.
    """
    fields = [(b"content-length", b"0")]
    if status == 416:
        fields.append((b"content-range", f"bytes */{size}".encode()))
    return fields


def redirect_fields(location: str, caller: Fields) -> Fields:
    """The fields of a 307 to a presigned URL.

    The URL expires, so the redirect must not outlive it in any cache: ``no-store``, which the
    caller cannot override (nor the Location).

    Args:
        location: The presigned URL.
        caller: The caller's fields.
    """
    fields = [
        (b"location", location.encode("latin-1")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    return with_caller_fields(fields, caller, protect=frozenset({b"location", b"cache-control"}))


def with_caller_fields(
    fields: Fields, caller: Fields, protect: frozenset[bytes] = frozenset()
) -> Fields:
    """``fields`` with the caller's fields added, each replacing the computed one of its name.

    Args:
        fields: The computed fields.
        caller: The caller's fields, lower-case names (repeats kept: ``set-cookie``).
        protect: Names the caller may not override, besides the framing fields.
    """
    kept = [field for field in caller if field[0] not in FRAMING and field[0] not in protect]
    overridden = {name for name, _ in kept}
    return [field for field in fields if field[0] not in overridden] + kept


def with_encoding(fields: Fields, encoding: str | None, *, vary: bool) -> Fields:
    """``fields`` for an answer chosen by the request's Accept-Encoding.

    Args:
        fields: The answer's fields.
        encoding: The content coding of the body (a precompressed sibling's), if any; the
            caller cannot override it.
        vary: Add ``accept-encoding`` to Vary (merged into the caller's Vary, if any): the
            answer depends on it, for caches, whichever file was chosen.
    """
    if encoding is None and not vary:
        return fields
    result = [field for field in fields if encoding is None or field[0] != b"content-encoding"]
    if encoding is not None:
        result.append((b"content-encoding", encoding.encode()))
    if vary:
        result = _add_vary(result, b"accept-encoding")
    return result


def _add_vary(fields: Fields, token: bytes) -> Fields:
    """``fields`` whose Vary names ``token`` (once, whatever the case of existing tokens)."""
    for index, (name, value) in enumerate(fields):
        if name != b"vary":
            continue
        tokens = [part.strip().lower() for part in value.split(b",")]
        if token in tokens or b"*" in tokens:
            return fields
        return [*fields[:index], (b"vary", value + b", " + token), *fields[index + 1 :]]
    return [*fields, (b"vary", token)]
