"""Storage errors as HTTP errors: the one place sendfs picks a status code for a failure.

A failure before the first byte becomes an :class:`HTTPError`, framework-free, which each face
turns into the exception its framework renders (:func:`lilya_exception` for Lilya).

Frameworks do not log the HTTP exceptions they render, so the failure is logged here, on the
``sendfs`` logger: a storage that failed (502) at WARNING, an object that changed mid-read (503)
at INFO, a missing or forbidden source (404, 403) at DEBUG, as clients cause those at will.
"""

from __future__ import annotations

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

__all__ = ["HTTPError", "http_error", "lilya_exception", "status_error", "status_for"]

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


class HTTPError(SendfsError):
    """The answer sendfs gives instead of the file, decided before the first byte.

    Framework-free: each face turns it into its framework's exception (Lilya's and
    Starlette's ``HTTPException``, Werkzeug's, Django's ``Http404``), which the app renders.
    The storage error behind it is on ``__cause__``.

    Args:
        status_code: 404, 403, 502 or 503.
        headers: Fields the answer must carry (``Retry-After`` for a busy storage).

    Security:
        ``detail`` is the status phrase only: paths, bucket names and storage messages never
        reach the client.
    """

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.detail = http.HTTPStatus(status_code).phrase
        super().__init__(f"{status_code}: {self.detail}")


def status_error(exc: SendfsError) -> SendfsError:
    """Turn a storage error into the :class:`HTTPError` to raise before the response starts.

    The failure is logged on the ``sendfs`` logger with the status the client got (see the
    module docstring for the levels).

    Args:
        exc: The storage error.

    Returns:
        An :class:`HTTPError` (a ``StorageBusy`` 503 carries ``Retry-After``), or ``exc``
        itself when it has no status (see :func:`status_for`): a configuration error, which
        propagates and which the server logs as a 500.

    Security:
        Every URL in the logged message has its user info and query masked, a third-party
        backend's included; the storage's own error text (botocore, ``OSError``) is quoted.
    """
    if isinstance(exc, HTTPError):
        return exc
    status = status_for(exc)
    if status is None:
        return exc
    # Backends mask the URLs they quote; this is the last gate, for those that do not.
    message = shorten(redact_urls_in(str(exc)), LOG_MESSAGE_LIMIT)
    logger.log(_LOG_LEVELS.get(status, logging.DEBUG), "sendfs: HTTP %d: %s", status, message)
    headers = {"Retry-After": str(RETRY_AFTER)} if isinstance(exc, StorageBusy) else None
    return HTTPError(status, headers)


def lilya_exception(error: HTTPError) -> LilyaHTTPException:
    """``error`` as the ``HTTPException`` Lilya apps render.

    Args:
        error: The answer to render.
    """
    return LilyaHTTPException(
        status_code=error.status_code, detail=error.detail, headers=error.headers or None
    )


def http_error(exc: SendfsError) -> Exception:
    """A storage error as the Lilya ``HTTPException`` to raise before the response starts.

    Args:
        exc: The storage error.

    Returns:
        The exception, or ``exc`` itself for a configuration error (see :func:`status_error`).
    """
    error = status_error(exc)
    return lilya_exception(error) if isinstance(error, HTTPError) else error
