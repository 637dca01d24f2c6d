"""Storage errors as HTTP errors: the one place sendfs picks a status code for a failure.

A failure before the first byte becomes an ``HTTPException`` that the app's exception handlers
render. The exception class is a Lilya ``HTTPException`` and, when Starlette is installed, a
Starlette one too, so Starlette and FastAPI apps render it with their handlers as well.
"""

from __future__ import annotations

import functools
import http

from lilya.exceptions import HTTPException as LilyaHTTPException

from ..exceptions import BackendError, SendfsError, SourceChanged, SourceForbidden, SourceNotFound

__all__ = ["http_error", "status_for"]


def status_for(exc: SendfsError) -> int | None:
    """The HTTP status for a storage error, or ``None`` for errors that are the programmer's.

    ``SourceNotFound`` (and ``UnsafePath``) 404, ``SourceForbidden`` 403, ``SourceChanged`` 503
    (the object moved between open and read; a retry gets the new one), other ``BackendError``
    502. ``UnknownScheme`` and ``MissingDependency`` are configuration errors: no status, they
    propagate as they are.
    """
    if isinstance(exc, SourceNotFound):
        return 404
    if isinstance(exc, SourceForbidden):
        return 403
    if isinstance(exc, SourceChanged):
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

    The detail is the status phrase only: paths, bucket names and backend messages stay on
    ``__cause__`` for the logs and never reach the client.

    Args:
        exc: The storage error.

    Returns:
        An HTTP exception, or ``exc`` itself when it has no status (see :func:`status_for`).
    """
    status = status_for(exc)
    if status is None:
        return exc
    return _exception_class()(status_code=status, detail=http.HTTPStatus(status).phrase)
