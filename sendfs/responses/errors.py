"""Storage errors as HTTP errors: the one place sendfs picks a status code for a failure.

A failure before the first byte becomes an ``HTTPException`` that the app's exception handlers
render. The exception class is a Lilya ``HTTPException`` and, when Starlette is installed, a
Starlette one too, so Starlette and FastAPI apps render it with their handlers as well.

Frameworks do not log the HTTP exceptions they render, so the failure is logged here, on the
``sendfs`` logger: a storage that failed (502) at WARNING, an object that changed mid-read (503)
at INFO, a missing or forbidden source (404, 403) at DEBUG, as clients cause those at will.
"""

from __future__ import annotations

import functools
import http
import logging

from lilya.exceptions import HTTPException as LilyaHTTPException

from ..exceptions import (
    BackendError,
    SendfsError,
    SourceChanged,
    SourceForbidden,
    SourceNotFound,
    StorageBusy,
)
from ..storages.paths import redact_urls_in, shorten

__all__ = ["http_error", "status_for"]

logger = logging.getLogger("sendfs")

#: The level each status is logged at (see the module docstring).
_LOG_LEVELS = {502: logging.WARNING, 503: logging.INFO}

#: Seconds a client is asked to wait before retrying a request the busy storage could not take.
RETRY_AFTER = 5

#: The longest message logged; the rest of a longer one (a path thousands of bytes long, say)
#: is cut off.
LOG_MESSAGE_LIMIT = 500


def status_for(exc: SendfsError) -> int | None:
    """The HTTP status for a storage error, or ``None`` for errors that are the programmer's.

    ``SourceNotFound`` (and ``UnsafePath``) 404, ``SourceForbidden`` 403, ``SourceChanged`` 503
    (the object moved between open and read; a retry gets the new one), ``StorageBusy`` 503
    (the storage did not start answering in time), other ``BackendError`` 502.
    ``UnknownScheme`` and ``MissingDependency`` are configuration errors: no status, they
    propagate as they are.
    """
    if isinstance(exc, SourceNotFound):
        return 404
    if isinstance(exc, SourceForbidden):
        return 403
    if isinstance(exc, SourceChanged | StorageBusy):
        return 503
    if isinstance(exc, BackendError):
        return 502
    return None


@functools.cache
def _exception_class() -> type[LilyaHTTPException]:
    try:
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError:  # pragma: no cover - starlette is optional
        return LilyaHTTPException
    return type("HTTPException", (LilyaHTTPException, StarletteHTTPException), {})


def http_error(exc: SendfsError) -> Exception:
    """Turn a storage error into the exception to raise before the response starts.

    The detail is the status phrase only: paths, bucket names and backend messages never reach
    the client. They go to the ``sendfs`` logger, with the status the client got.

    Args:
        exc: The storage error.

    Returns:
        An HTTP exception, or ``exc`` itself when it has no status (see :func:`status_for`):
        a configuration error, which propagates and which the server logs as a 500. A
        ``StorageBusy`` 503 carries ``Retry-After``.

    Security:
        Every URL in the logged message has its user info and query masked, a third-party
        backend's included; the storage's own error text (botocore, ``OSError``) is quoted.
    """
    status = status_for(exc)
    if status is None:
        return exc
    # Backends mask the URLs they quote; this is the last gate, for those that do not.
    message = shorten(redact_urls_in(str(exc)), LOG_MESSAGE_LIMIT)
    logger.log(_LOG_LEVELS.get(status, logging.DEBUG), "sendfs: HTTP %d: %s", status, message)
    headers = {"Retry-After": str(RETRY_AFTER)} if isinstance(exc, StorageBusy) else None
    phrase = http.HTTPStatus(status).phrase
    return _exception_class()(status_code=status, detail=phrase, headers=headers)
