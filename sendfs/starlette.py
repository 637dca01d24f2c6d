"""The Starlette and FastAPI face: ``send_file``, ``send_from_storage`` and ``send_zip``.

Their responses are :class:`FileResponse`, a ``starlette.responses.Response`` subclass, so
FastAPI passes them through as they are and accepts the class as a route's return annotation.
Failures before the first byte are raised as Starlette ``HTTPException``, which Starlette and
FastAPI render. Every option is :func:`sendfs.send_file`'s; the HTTP work is sendfs's core::

    from fastapi import FastAPI
    from sendfs.starlette import FileResponse, send_file

    app = FastAPI()

    @app.get("/report")
    async def report() -> FileResponse:
        return send_file("s3://reports/q3.pdf")

Importing this module imports Starlette; :mod:`sendfs` itself never does, and what
:func:`sendfs.send_file` returns is a Lilya response whatever else is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .responses import file, send
from .responses.asgi import serve
from .responses.core import Download, caller_fields, check_headers
from .responses.errors import HTTPError

__all__ = ["FileResponse", "send_file", "send_from_storage", "send_zip"]


def starlette_exception(error: HTTPError) -> HTTPException:
    """``error`` as the ``HTTPException`` Starlette and FastAPI render.

    Args:
        error: The answer to render.
    """
    return HTTPException(error.status_code, error.detail, error.headers or None)


class FileResponse(Response):
    """A Starlette response serving a source with sendfs's HTTP semantics.

    Build it with :func:`send_file` and friends, or from a download
    (:meth:`from_download`). The caller's fields live in Starlette's ``raw_headers``, so
    ``set_cookie`` and middleware work as on any Starlette response.
    """

    def __init__(
        self,
        download: Download,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | Any | None = None,
    ) -> None:
        check_headers(headers)
        self.download = download
        self.status_code = download.status_code
        self.background = background
        # Starlette's init_headers() adds Content-Type from media_type and Content-Length from
        # a body: neither is set, so only the caller's fields are kept.
        self.media_type = None
        self.init_headers(headers)
        self.media_type = download.media_type

    @classmethod
    def from_download(
        cls,
        download: Download,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | Any | None = None,
    ) -> FileResponse:
        """The response for ``download`` (the same as calling the class).

        Args:
            download: What to serve.
            headers: The caller's extra fields.
            background: A task run after the response is sent (not after HEAD).
        """
        return cls(download, headers, background)

    @property
    def source(self) -> Any:
        """What is served."""
        return self.download.source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request."""
        caller = caller_fields(self.raw_headers)
        await serve(self.download, caller, scope, receive, send, error=starlette_exception)
        if self.background is not None and str(scope.get("method", "GET")).upper() != "HEAD":
            await self.background()


send_file = file.returning(send.send_file, FileResponse, starlette_exception)
""":func:`sendfs.send_file`, returning a Starlette :class:`FileResponse`."""

send_from_storage = file.returning(send.send_from_storage, FileResponse, starlette_exception)
""":func:`sendfs.send_from_storage`, returning a Starlette :class:`FileResponse`."""

send_zip = file.returning(send.send_zip, FileResponse, starlette_exception)
""":func:`sendfs.send_zip`, returning a Starlette :class:`FileResponse`."""
