"""``FileResponse``: the Lilya face, a Lilya response (and plain ASGI app) serving one source.

Everything about HTTP happens in :mod:`sendfs.responses.core`; this class keeps the caller's
fields in Lilya's header store (so ``set_cookie`` and middleware work as on any Lilya
response), sends the answer with :mod:`sendfs.responses.asgi` and renders failures before
the first byte as Lilya ``HTTPException``. The response object is never mutated by a request,
so one instance can answer many (except for file-object sources, which can be read once).

It is a Lilya response whatever else the process imported; Starlette and FastAPI apps use
:mod:`sendfs.starlette`, whose responses are Starlette responses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from lilya.exceptions import HTTPException as LilyaHTTPException
from lilya.responses import Response
from lilya.types import Receive, Scope, Send

from ..storages.registry import StorageRegistry
from .asgi import ClientStalled, bounded_send, request_headers, serve
from .core import (
    DEFAULT_EXPIRES,
    DEFAULT_SEND_TIMEOUT,
    DEFAULT_STORAGE_TIMEOUT,
    Download,
    caller_fields,
    check_headers,
    closing_iterator,
)
from .errors import HTTPError, lilya_exception

if TYPE_CHECKING:
    from lilya.background import Task

    from ..events import DownloadHook
    from .links import LinkSigner
    from .offload import Offload

__all__ = [
    "DEFAULT_EXPIRES",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_STORAGE_TIMEOUT",
    "ClientStalled",
    "FileResponse",
    "bounded_send",
    "closing_iterator",
    "request_headers",
    "returning",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class FileResponse(Response):
    """Serve a path, a binary file object or a storage URL with full HTTP semantics.

    Most code calls :func:`sendfs.send_file`, which takes Flask's and Lilya's names for the
    options and builds this. Options are validated here, when the response is built.

    Args:
        source: A local path, a binary file object or a URL (``s3://bucket/key``, a mount).
        status_code: The status of a full response; anything but 200 turns off conditional
            and range handling (the body is then not "the representation").
        headers: Extra response headers; they override computed ones except the framing
            fields (Content-Length, Content-Range, Transfer-Encoding).
        media_type: The Content-Type; by default guessed from ``filename``, then the source's
            name, then what the storage recorded, else ``application/octet-stream``.
        background: A Lilya task run after the response is sent (not after HEAD).
        filename: The download name for Content-Disposition.
        content_disposition_type: ``"attachment"``, ``"inline"``, or ``None`` for inline with
            the name when one is known.
        etag: ``True`` for the storage's tag, ``False`` for none, or a tag of your own.
        last_modified: Overrides the storage's modification time.
        max_age: Cache-Control ``public, max-age=N``; ``None`` sends ``no-cache``.
        conditional: Answer conditional requests (304 / 412) and honour Range.
        chunk_size: Bytes per read; by default what suits the backend.
        storage_options: Options for the backend (fsspec storage options).
        registry: The storage registry; by default :data:`sendfs.storages.registry`.
        sniff_media_type: Read the first 2 KiB and let python-magic name the type.
        on_complete: A hook called with a :class:`~sendfs.events.DownloadEvent`.
        redirect: ``True`` or ``"required"``: answer ``307`` to a presigned storage URL.
        expires: Lifetime of a presigned URL in seconds.
        size: For an async iterable source, the exact number of bytes it yields.
        send_timeout: Seconds one body message may wait for the client.
        storage_timeout: Seconds the storage may take to start answering each read.
        offload: Let a front server send the bytes (:class:`~sendfs.XAccelRedirect`,
            :class:`~sendfs.XSendfile`).
        precompressed: Serve ``.br`` / ``.gz`` siblings the client accepts.
        signer: Answer only links signed by this :class:`~sendfs.LinkSigner` (else 403).

    See :class:`~sendfs.responses.core.Download` for each option in full.

    Raises:
        ValueError: An option out of range, or a header with CR, LF or NUL.
        TypeError: A source that is no source (a text stream...).
        HTTPException: A mount path that climbs out of its mount (404).
    """

    def __init__(
        self,
        source: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: Task | None = None,
        *,
        filename: str | None = None,
        content_disposition_type: str | None = None,
        etag: bool | str = True,
        last_modified: datetime | float | None = None,
        max_age: int | None = None,
        conditional: bool = True,
        chunk_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
        registry: StorageRegistry | None = None,
        sniff_media_type: bool = False,
        on_complete: DownloadHook | None = None,
        redirect: bool | str = False,
        expires: int = DEFAULT_EXPIRES,
        size: int | None = None,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        storage_timeout: float | None = DEFAULT_STORAGE_TIMEOUT,
        offload: Offload | None = None,
        precompressed: bool | Sequence[str] = False,
        signer: LinkSigner | None = None,
    ) -> None:
        check_headers(headers)
        try:
            download = Download(
                source,
                status_code=status_code,
                media_type=media_type,
                filename=filename,
                disposition=content_disposition_type,
                etag=etag,
                last_modified=last_modified,
                max_age=max_age,
                conditional=conditional,
                chunk_size=chunk_size,
                storage_options=storage_options,
                registry=registry,
                sniff_media_type=sniff_media_type,
                on_complete=on_complete,
                redirect=redirect,
                expires=expires,
                size=size,
                send_timeout=send_timeout,
                storage_timeout=storage_timeout,
                offload=offload,
                precompressed=precompressed,
                signer=signer,
            )
        except HTTPError as exc:  # a mount path that climbs out: a plain 404
            raise lilya_exception(exc) from exc.__cause__
        self._adopt(download, headers, background)

    @classmethod
    def from_download(
        cls,
        download: Download,
        headers: Mapping[str, str] | None = None,
        background: Task | None = None,
    ) -> FileResponse:
        """A response for a download built already (by ``send_file``, say).

        Args:
            download: What to serve.
            headers: The caller's extra fields.
            background: A task run after the response is sent.
        """
        check_headers(headers)
        response = cls.__new__(cls)
        response._adopt(download, headers, background)
        return response

    def _adopt(
        self, download: Download, headers: Mapping[str, str] | None, background: Task | None
    ) -> None:
        self.download = download
        self.source = download.source
        self.status_code = download.status_code
        self.background = background
        self.encoders = []
        # Lilya's make_headers() mutates what it is given and adds Content-Type: give it a copy
        # and keep only the caller's fields (and cookies set later with set_cookie()).
        self.media_type = None
        self.make_headers(dict(headers or {}))
        self.media_type = download.media_type

    def caller_fields(self) -> list[tuple[bytes, bytes]]:
        """The caller's fields: ``headers=``, cookies and what middleware set on the object."""
        return caller_fields(self.headers.get_encoded_multi_items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request."""
        await serve(
            self.download, self.caller_fields(), scope, receive, send, error=lilya_exception
        )
        if self.background is not None and str(scope.get("method", "GET")).upper() != "HEAD":
            await self.background()


def returning(
    call: Callable[_P, FileResponse],
    response: Callable[[Download, dict[str, str], Any], _R],
    error: Callable[[HTTPError], Exception],
) -> Callable[_P, _R]:
    """``call`` (``send_file``, ``send_zip``...) returning another face's response instead.

    The download ``call`` built and validated is reused, nothing is opened twice, and the
    signature (for editors and type checkers) stays ``call``'s.

    Args:
        call: A Lilya-face call.
        response: Builds the other face's response from the download, the caller's header
            fields and the background task.
        error: Turns an :class:`~sendfs.responses.errors.HTTPError` raised while building (a
            path that climbs out of its root: 404) into that face's exception.
    """

    @functools.wraps(call)
    def build(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            lilya_response = call(*args, **kwargs)
        except LilyaHTTPException as exc:
            raise error(HTTPError(exc.status_code or 404, exc.headers)) from exc.__cause__
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in lilya_response.caller_fields()
        }
        return response(lilya_response.download, headers, lilya_response.background)

    return build
