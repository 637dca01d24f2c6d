"""The Litestar face: ``send_file``, ``send_from_storage``, ``send_zip`` and ``storage_files``.

Their responses are :class:`FileResponse`, a ``litestar.Response`` subclass: a handler returns
one (and may name the class as its return annotation), Litestar runs its ``after_request``
hooks on it and adds the headers and cookies of its layers, then calls
:meth:`FileResponse.to_asgi_response`, whose result sends the answer with sendfs's core.
Failures before the first byte are raised as Litestar ``HTTPException`` subclasses
(``NotFoundException``, ``PermissionDeniedException``, ``ServiceUnavailableException``...),
which the app's exception handlers render. Every option is :func:`sendfs.send_file`'s::

    from litestar import Litestar, get
    from sendfs.litestar import FileResponse, send_file

    @get("/report")
    async def report() -> FileResponse:
        return send_file("s3://reports/q3.pdf")

    app = Litestar([report])

:func:`storage_files` mounts a :class:`~sendfs.responses.static.StorageFiles` app. Importing
this module imports Litestar; :mod:`sendfs` itself never does, and what
:func:`sendfs.send_file` returns is a Lilya response whatever else is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, unquote

from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.response import Response
from litestar.response.base import ASGIResponse
from litestar.types import Guard, Receive, Scope, Send

from .responses import file, send
from .responses.asgi import serve
from .responses.core import Download, caller_fields, check_headers
from .responses.errors import HTTPError
from .responses.static import StorageFiles

if TYPE_CHECKING:
    from litestar.app import Litestar
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.connection import Request
    from litestar.enums import MediaType
    from litestar.types import ResponseCookies, TypeEncodersMap

__all__ = [
    "DownloadASGIResponse",
    "FileResponse",
    "send_file",
    "send_from_storage",
    "send_zip",
    "storage_files",
]

#: The Litestar exception for each status sendfs answers with before the first byte.
_EXCEPTIONS: dict[int, type[HTTPException]] = {
    403: PermissionDeniedException,
    404: NotFoundException,
    503: ServiceUnavailableException,
}


def litestar_exception(error: HTTPError) -> HTTPException:
    """``error`` as the ``HTTPException`` subclass Litestar's exception handlers render.

    Args:
        error: The answer to render (its ``Retry-After`` header included).
    """
    fallback = InternalServerException if error.status_code >= 500 else HTTPException
    kind = _EXCEPTIONS.get(error.status_code, fallback)
    return kind(detail=error.detail, status_code=error.status_code, headers=error.headers or None)


class DownloadASGIResponse(ASGIResponse):
    """The ASGI response Litestar calls: one download, with the fields Litestar collected.

    Built by :meth:`FileResponse.to_asgi_response`. Its ``headers`` and cookies are the
    caller's fields (the response's, its layers', ``after_request`` hooks'); sendfs's core
    adds the representation's own and frames the body.

    Args:
        download: What to serve.
        headers: The caller's header fields.
        cookies: The cookies to set.
        background: Run after the response is sent (not after HEAD).
    """

    def __init__(
        self,
        download: Download,
        *,
        headers: Mapping[str, str],
        cookies: Iterable[Cookie],
        background: BackgroundTask | BackgroundTasks | None,
    ) -> None:
        typed = any(name.lower() == "content-type" for name in headers)
        super().__init__(
            background=background,
            cookies=cookies,
            headers=dict(headers),
            status_code=download.status_code,
        )
        # Litestar gave its empty body a length and a JSON type: sendfs's core frames the body
        # and decides its type (unless the caller set one).
        self.headers.pop("content-length", None)
        if not typed:
            self.headers.pop("content-type", None)
        self.download = download

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request.

        Raises:
            HTTPException: The source is missing, forbidden, failing or busy (404, 403, 502,
                503), before the first byte; Litestar's exception handlers render it.
        """
        caller = caller_fields(self.encode_headers())
        await serve(
            self.download,
            caller,
            cast("Any", scope),
            cast("Any", receive),
            cast("Any", send),
            error=litestar_exception,
        )
        if str(scope.get("method", "GET")).upper() != "HEAD":
            await self.after_response()


class FileResponse(Response[None]):
    """A Litestar response serving a source with sendfs's HTTP semantics.

    Build it with :func:`send_file` and friends, or from a download. ``set_header``,
    ``set_cookie``, ``cookies=``, ``after_request`` hooks and the headers and cookies of the
    route's layers all reach the client; they override the computed fields except the framing
    ones (Content-Length, Content-Range, Transfer-Encoding). A ``Content-Type`` header, or a
    new ``media_type``, replaces the type sendfs would send.

    The status comes from the ``status_code=`` option of :func:`send_file`; the ``media_type``
    and ``status_code`` of the route decorator are not used (they still document the route in
    the OpenAPI schema).

    Args:
        download: What to serve.
        headers: The caller's extra fields.
        cookies: Cookies to set, as :class:`~litestar.datastructures.Cookie` objects or a
            mapping of names to values.
        background: A task run after the response is sent (not after HEAD).

    Raises:
        ValueError: A header holds CR, LF or NUL, or sets ETag or Last-Modified (use the
            ``etag=`` and ``last_modified=`` options).
    """

    def __init__(
        self,
        download: Download,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: ResponseCookies | None = None,
        background: BackgroundTask | BackgroundTasks | None = None,
    ) -> None:
        check_headers(headers)
        super().__init__(
            None,
            background=background,
            cookies=cookies,
            headers=dict(headers or {}),
            media_type=download.media_type,
            status_code=download.status_code,
        )
        self.download = download

    @classmethod
    def from_download(
        cls,
        download: Download,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | BackgroundTasks | None = None,
    ) -> FileResponse:
        """The response for ``download`` (the same as calling the class).

        Args:
            download: What to serve.
            headers: The caller's extra fields.
            background: A task run after the response is sent (not after HEAD).
        """
        return cls(download, headers=headers, background=background)

    @property
    def source(self) -> Any:
        """What is served."""
        return self.download.source

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> DownloadASGIResponse:
        """The ASGI response Litestar sends, with the fields of the response and its layers.

        The response's own headers and cookies win over its layers' (as on any Litestar
        response). ``media_type``, ``status_code`` and ``type_encoders`` (the route's) are not
        used: sendfs decides the type, and the status is the download's.

        Args:
            app: Unused (deprecated by Litestar).
            request: The request.
            background: The route's background task, used when the response has none.
            cookies: The layers' cookies.
            encoded_headers: Already encoded header fields (deprecated by Litestar).
            headers: The layers' headers.
            is_head_response: Unused: the request's method decides.
            media_type: Unused.
            status_code: Unused.
            type_encoders: Unused.

        Raises:
            ValueError: The status was changed on the response (set it with ``status_code=``
                of :func:`send_file`), or a header is invalid (see the class).
        """
        if self.status_code != self.download.status_code:
            raise ValueError("set the status with send_file(status_code=...), not on the response")
        fields = self._fields(headers, encoded_headers)
        check_headers(fields)
        return DownloadASGIResponse(
            self.download,
            headers=fields,
            cookies=[*self.cookies, *(cookies or ())],
            background=self.background or background,
        )

    def _fields(
        self,
        layers: Mapping[str, str] | None,
        encoded: Iterable[tuple[bytes, bytes]] | None,
    ) -> dict[str, str]:
        """The caller's header fields; names compare without case, the response's win."""
        merged: dict[str, tuple[str, str]] = {}
        for name, value in (*(layers or {}).items(), *self.headers.items()):
            merged[name.lower()] = (name, str(value))
        for raw_name, raw_value in encoded or ():
            name = raw_name.decode("latin-1")
            merged[name.lower()] = (name, raw_value.decode("latin-1"))
        if self.media_type and self.media_type != self.download.media_type:
            merged.setdefault("content-type", ("content-type", str(self.media_type)))
        return dict(merged.values())


def _response(download: Download, headers: dict[str, str], background: Any) -> FileResponse:
    # A Lilya task is awaited as Litestar awaits its own: ``await task()``.
    return FileResponse(download, headers=headers, background=background)


send_file = file.returning(send.send_file, _response, litestar_exception)
""":func:`sendfs.send_file`, returning a Litestar :class:`FileResponse`."""

send_from_storage = file.returning(send.send_from_storage, _response, litestar_exception)
""":func:`sendfs.send_from_storage`, returning a Litestar :class:`FileResponse`."""

send_zip = file.returning(send.send_zip, _response, litestar_exception)
""":func:`sendfs.send_zip`, returning a Litestar :class:`FileResponse`."""


# -- mounting StorageFiles ------------------------------------------------------------------


def storage_files(
    path: str,
    root: str | os.PathLike[str],
    *,
    name: str | None = None,
    guards: Sequence[Guard] | None = None,
    opt: Mapping[str, Any] | None = None,
    **options: Any,
) -> ASGIRouteHandler:
    """A Litestar route handler serving every object under ``root`` at ``path`` and below.

    Register it like any handler (``Litestar([storage_files("/files", "s3://bucket/public")])``,
    or in a ``Router``): ``/files/a.txt`` serves ``a.txt``, ``/files/sub/`` the directory
    ``sub`` (its ``index.html`` or listing, when enabled), ``/files/sub`` redirects there
    when ``html`` or ``listing`` is on, and ``/files`` redirects to ``/files/``.

    Args:
        path: The mount path.
        root: A local directory, a mount name (``"media"``) or a URL prefix
            (``"s3://bucket/public"``).
        name: The handler's name (for ``app.route_reverse``).
        guards: Litestar guards run before every request.
        opt: The handler's ``opt`` mapping (for guards, or a middleware's ``exclude_opt_key``).
        **options: :class:`~sendfs.responses.static.StorageFiles` options: ``html``,
            ``listing``, ``storage_options``, ``registry`` and the file options
            (``as_attachment``, ``max_age``...).

    Raises:
        TypeError: An unknown option.
        sendfs.exceptions.UnknownScheme: No backend serves ``root``'s scheme.

    Security:
        Request paths are untrusted and checked as :class:`StorageFiles` checks them: nothing
        outside ``root`` is served. The mounted app needs the server's ``raw_path`` (every
        server sends it) to tell ``/files/sub`` from ``/files/sub/``: Litestar passes mounted
        apps a normalised path. Put ``guards`` on it, or a guarded ``Router`` around it, as
        for any other route.
    """
    files = StorageFiles(root, **options)

    async def serve_files(scope: Scope, receive: Receive, send: Send) -> None:
        await _call_mounted(files, scope, receive, send)

    serve_files.__name__ = serve_files.__qualname__ = f"storage_files_{path.strip('/')}"
    handler = asgi(path, is_mount=True, copy_scope=False, name=name, guards=guards, opt=opt)
    return handler(serve_files)


async def _call_mounted(files: StorageFiles, scope: Scope, receive: Receive, send: Send) -> None:
    """Call ``files`` with the scope an ASGI mount gives, or answer a redirect or 404."""
    if scope["type"] != ScopeType.HTTP:
        raise NotFoundException()
    full = _request_path(scope)
    mount = _mount_path(full, scope["path"])
    if mount is None:
        raise NotFoundException()  # Litestar matched the mount as a prefix of another name
    if full == mount:
        # The mount itself, without its slash: redirect (as Starlette's and Lilya's routers
        # do), so relative links in listings resolve below the mount.
        await _redirect(send, "/" + full.lstrip("/") + "/", scope.get("query_string", b""))
        return
    mounted = {**scope, "path": full, "root_path": mount}
    await files(mounted, cast("Any", receive), cast("Any", send))


def _request_path(scope: Scope) -> str:
    """The request's whole path, decoded, its trailing slash kept (from ``raw_path``).

    Raises:
        RuntimeError: The server sent no ``raw_path``.
    """
    raw: bytes | None = scope.get("raw_path")
    if not raw:
        raise RuntimeError("serving StorageFiles in Litestar needs the server's raw_path")
    # Test clients may pass the query along; servers decode the path as UTF-8 with
    # replacement characters.
    return unquote(raw.partition(b"?")[0].decode("latin-1"))


def _mount_path(full: str, below: str) -> str | None:
    """The part of ``full`` before the path Litestar passed the mounted app, if it matches.

    Litestar hands a mounted app the path below the mount, normalised (no empty segment) and
    ending with a slash; the server's ``root_path`` is left as it was. ``full`` ends with
    the same segments, and what comes before them is the mount (``root_path`` included).
    Litestar also matches a mount as a mere prefix (``/files`` for ``/filesX/a``, passing
    ``X/a/``): then the first segment differs, and there is no mount path.

    Args:
        full: The request's whole path.
        below: Litestar's ``scope["path"]``.
    """
    mount = full.rstrip("/")
    for segment in reversed([part for part in below.split("/") if part]):
        mount, slash, last = mount.rpartition("/")
        if not slash or last != segment:
            return None
        mount = mount.rstrip("/")
    return mount


async def _redirect(send: Send, location: str, query: bytes) -> None:
    """A ``307`` to ``location`` (a path, percent-encoded here) with the request's query."""
    target = quote(location) + ("?" + query.decode("latin-1") if query else "")
    headers = [(b"location", target.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
