"""``StorageFiles``: an ASGI app serving every object under a root (directory, mount or URL).

Mount it in Lilya (``Include("/files", app=StorageFiles("s3://bucket/public"))``) or in
Starlette/FastAPI (``Mount("/files", app=StorageFiles("/srv/files"))``), or run it on its own
(``sendfs serve``). Files get the full HTTP semantics of ``send_file``; every request path goes
through :meth:`~sendfs.storages.StorageRegistry.locate`, so nothing outside the root is served.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import timezone
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import quote

import anyio
from lilya.exceptions import HTTPException
from lilya.types import Receive, Scope, Send

from ..exceptions import (
    RedirectUnavailable,
    SendfsError,
    SourceIsDirectory,
    SourceNotFound,
    StorageBusy,
)
from ..storages.base import DirEntry
from ..storages.paths import redact_urls_in, shorten
from ..storages.registry import StorageRegistry
from ..storages.registry import registry as default_registry
from .core import DEFAULT_STORAGE_TIMEOUT, check_timeout
from .errors import http_error
from .file import FileResponse
from .headers import http_date
from .send import send_from_storage

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..events import DownloadHook
    from .links import LinkSigner
    from .offload import Offload

__all__ = ["StorageFiles", "render_listing"]

#: Why each request was answered 404, at DEBUG: clients cause those at will. ``sendfs serve``
#: turns this logger up to show them at ``--log-level info``.
logger = logging.getLogger(__name__)

#: The longest request path quoted in a 404 line, and the longest line: a client can send a
#: path of kilobytes, and the storage's message quotes it again.
LOG_PATH_LIMIT = 200
LOG_LINE_LIMIT = 500


#: send_file options StorageFiles passes on to every file it serves.
class FileOptions(TypedDict, total=False):
    """The :func:`~sendfs.send_file` options :class:`StorageFiles` applies to every file.

    Attributes:
        as_attachment: ``Content-Disposition: attachment`` rather than ``inline``.
        max_age: ``Cache-Control: public, max-age=N``; ``None`` sends ``no-cache``.
        conditional: Answer conditional and range requests.
        etag: ``True`` for the storage's tags, ``False`` for none.
        chunk_size: Bytes per read.
        headers: Extra response fields.
        mimetype: One Content-Type for every file.
        on_complete: A download hook (see :mod:`sendfs.events`).
        redirect: Answer with 307 to presigned storage URLs (``True`` or ``"required"``).
        expires: Lifetime of those URLs, in seconds.
        send_timeout: Seconds a body message may wait for the client.
        storage_timeout: Seconds the storage may take to start answering (listings too).
        offload: Let a front server send the files (:class:`~sendfs.XAccelRedirect`,
            :class:`~sendfs.XSendfile`); a local root fills in the offload's ``root``.
        precompressed: Serve ``.br`` / ``.gz`` siblings the client accepts (``True`` for
            Brotli then gzip, or the encodings in order of preference).
        signer: Answer only links signed by this :class:`~sendfs.LinkSigner` (else 403).
    """

    as_attachment: bool
    max_age: int | None
    conditional: bool
    etag: bool | str
    chunk_size: int | None
    headers: Mapping[str, str] | None
    mimetype: str | None
    on_complete: DownloadHook | None
    redirect: bool | Literal["required"]
    expires: int
    send_timeout: float | None
    storage_timeout: float | None
    offload: Offload | None
    precompressed: bool | Sequence[str]
    signer: LinkSigner | None


#: The names :class:`FileOptions` holds (what StorageFiles passes on to every file).
FILE_OPTIONS = FileOptions.__optional_keys__ | FileOptions.__required_keys__


def route_path(scope: Scope) -> str:
    """The request path below the mount point (``/a/b`` for ``/files/a/b`` under ``/files``)."""
    path: str = scope.get("path", "/")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path


def _format_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)  # pragma: no cover


#: The listing's style: aligned sizes and dates, names that wrap on a phone, dark mode.
LISTING_CSS = """\
body{font:16px/1.45 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:.5rem 1rem}
h1{font-size:1.2rem;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}
th,td{padding:.3rem .4rem;text-align:left;vertical-align:top}
th{border-bottom:1px solid #8884}
tr:hover td{background:#8881}
td:first-child{width:100%;overflow-wrap:anywhere}
td+td{white-space:nowrap;font-variant-numeric:tabular-nums}
tr>:nth-child(2){text-align:right}
a{text-decoration:none}a:hover{text-decoration:underline}
:root{color-scheme:light dark}"""


def _format_date(entry: DirEntry) -> str:
    """``2023-11-14 22:13`` (UTC) in a ``<time>`` element; the exact HTTP date on hover."""
    if entry.mtime is None:
        return ""
    moment = entry.mtime if entry.mtime.tzinfo else entry.mtime.replace(tzinfo=timezone.utc)
    utc = moment.astimezone(timezone.utc)
    return (
        f'<time datetime="{utc:%Y-%m-%dT%H:%M:%SZ}" title="{http_date(utc)}">'
        f"{utc:%Y-%m-%d %H:%M}</time>"
    )


def _listing_row(href: str, name: str, size: str = "", date: str = "") -> str:
    """One row; ``href`` and ``name`` arrive escaped."""
    return f'<tr><td><a href="{href}">{name}</a></td><td>{size}</td><td>{date}</td></tr>'


def render_listing(title_path: str, entries: list[DirEntry], *, parent: bool = True) -> str:
    """A small HTML directory listing; every name is escaped and every link percent-encoded.

    Sizes are right-aligned, dates are UTC (``2023-11-14 22:13``, the exact HTTP date in the
    ``title``), and long names wrap, so the page reads on a phone without scrolling sideways.

    Args:
        title_path: The request path shown in the title.
        entries: The directory's entries.
        parent: Link to ``../``; ``False`` for the root, which has no parent to show.
    """
    title = html.escape(f"Index of {title_path}")
    rows = [_listing_row("../", "../")] if parent else []
    for entry in entries:
        suffix = "/" if entry.is_dir else ""
        href = html.escape(quote(entry.name) + suffix, quote=True)
        name = html.escape(entry.name + suffix)
        size = "" if entry.is_dir else _format_size(entry.size)
        rows.append(_listing_row(href, name, size, _format_date(entry)))
    body = "\n".join(rows)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>\n<style>\n{LISTING_CSS}\n</style></head>\n"
        f"<body><h1>{title}</h1>\n<table>\n"
        "<thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>\n</body></html>\n"
    )


async def _send_simple(
    send: Send,
    method: str,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _send_http_exception(send: Send, method: str, exc: Exception) -> None:
    """Render an ``HTTPException`` raised before the first byte, its headers included."""
    if not isinstance(exc, HTTPException):
        raise exc  # a configuration error: the server answers 500 and logs it
    extra = [(k.lower().encode(), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
    await _send_simple(send, method, exc.status_code or 500, str(exc.detail).encode(), extra=extra)


def is_hidden(relative: str) -> bool:
    """Whether a path below the root has a segment starting with a dot (``.env``, ``.git/x``)."""
    return any(segment.startswith(".") for segment in relative.split("/"))


def _reason(exc: BaseException) -> str:
    """A storage error as the reason of a 404, fit for a log line (URLs masked)."""
    return redact_urls_in(str(exc) or type(exc).__name__)


class StorageFiles:
    """Serve every object under ``root`` with the HTTP semantics of :func:`send_file`.

    Args:
        root: A local directory, a mount name (``"media"``) or a URL prefix
            (``"s3://bucket/public"``). A local root must be an existing directory.
        html: Serve ``index.html`` for directory paths (``/docs/``), and redirect ``/docs``
            to ``/docs/``.
        listing: Render an HTML listing for directory paths without ``index.html``.
        dotfiles: Serve and list names starting with a dot (``.env``, ``.git/``). With
            ``False``, a path with any such segment is answered 404 and listings leave
            those names out.
        storage_options: Options for the backend of ``root`` (credentials, endpoint...).
        registry: The storage registry (default: the global one).
        **file_options: Options for every file: ``as_attachment``, ``max_age``,
            ``conditional``, ``etag``, ``chunk_size``, ``headers``, ``mimetype``,
            ``on_complete`` (a download hook, see :mod:`sendfs.events`), ``redirect`` and
            ``expires`` (answer with 307 to presigned storage URLs, see :func:`send_file`),
            ``send_timeout`` and ``storage_timeout`` (cut off clients that stopped reading;
            answer 503 when the storage's connections are all taken; the latter bounds
            listings too), ``offload`` (let nginx, Apache or lighttpd send the files),
            ``precompressed`` (serve ``.br`` / ``.gz`` siblings) and ``signer`` (require
            signed, expiring links: see :class:`~sendfs.LinkSigner`).

    Raises:
        ValueError: ``listing=True`` with a ``signer`` (a listing's links are not signed).
        SourceNotFound: A local ``root`` that is not an existing directory. URL roots are
            not checked here (that would need I/O): a missing bucket is a 404 per request.
        UnknownScheme: ``root`` is a URL nobody serves.

    Security:
        Request paths are untrusted: ``..``, encoded separators, control characters and the
        like are answered 404 before any storage is touched, and on local disk symbolic links
        leading outside ``root`` are refused. Listings escape every name. ``dotfiles=False``
        hides names starting with a dot; other secrets under ``root`` are served: keep them
        out of it. Authentication is the app's job: put StorageFiles behind whatever guards
        the rest of the app. Why each request got a 404 is logged at DEBUG on the
        ``sendfs.responses.static`` logger.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        html: bool = False,
        listing: bool = False,
        dotfiles: bool = True,
        storage_options: Mapping[str, Any] | None = None,
        registry: StorageRegistry | None = None,
        **file_options: Unpack[FileOptions],
    ) -> None:
        unknown = set(file_options) - FILE_OPTIONS
        if unknown:
            raise TypeError(f"StorageFiles got unexpected options: {', '.join(sorted(unknown))}")
        if listing and file_options.get("signer") is not None:
            raise ValueError("listing=True lists unsigned links: it does not mix with signer=")
        check_timeout("send_timeout", file_options.get("send_timeout"))
        check_timeout("storage_timeout", file_options.get("storage_timeout"))
        self.root = os.fspath(root)
        self.html = html
        self.listing = listing
        self.dotfiles = dotfiles
        self.storage_options = dict(storage_options or {})
        self.registry = registry or default_registry
        self.file_options = file_options
        resolved = self.registry.locate(self.root, "", **self.storage_options)  # unknown scheme
        if self.registry.serves_locally(resolved):
            _check_local_root(self.root, resolved.target)
        if file_options.get("redirect") == "required" and self.registry.serves_locally(resolved):
            raise RedirectUnavailable(
                f"redirect='required' needs a storage that can presign URLs, not {self.root!r}"
            )
        self._file_response("")  # every file option checked now, against the root; no I/O

    def __repr__(self) -> str:
        return (
            f"StorageFiles({self.root!r}, html={self.html}, listing={self.listing}, "
            f"dotfiles={self.dotfiles})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (and the lifespan, when StorageFiles is the whole app)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError("StorageFiles serves HTTP only")
        method = str(scope.get("method", "GET")).upper()
        if method not in ("GET", "HEAD"):
            await _send_simple(
                send, method, 405, b"Method Not Allowed", extra=[(b"allow", b"GET, HEAD")]
            )
            return
        path = route_path(scope)
        if not self.dotfiles and is_hidden(path.strip("/")):
            await self._not_found(
                send, method, path, "a name starting with '.' is hidden (dotfiles=False)"
            )
        elif path.endswith("/"):
            await self._serve_directory(scope, receive, send, method, path)
        else:
            await self._serve_file(scope, receive, send, method, path)

    def _file_response(self, relative: str) -> FileResponse:
        """The response for a file under the root; unsafe paths raise a 404 HTTPException."""
        return send_from_storage(
            self.root,
            relative,
            storage_options=self.storage_options,
            registry=self.registry,
            **self.file_options,
        )

    async def _serve_file(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> None:
        try:
            await self._file_response(path.lstrip("/"))(scope, receive, send)
        except HTTPException as exc:  # raised by the response before its first byte
            if isinstance(exc.__cause__, SourceIsDirectory) and (self.html or self.listing):
                await self._redirect_to_directory(scope, send, method)
            else:
                await self._send_error(send, method, path, exc)

    async def _serve_directory(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> None:
        relative = path.lstrip("/")
        try:
            if self.html:
                try:
                    await self._file_response(relative + "index.html")(scope, receive, send)
                except HTTPException as exc:
                    if exc.status_code != 404 or not self.listing:
                        raise
                else:
                    return
            if self.listing:
                await self._serve_listing(scope, send, method, relative)
                return
        except HTTPException as exc:
            await self._send_error(send, method, path, exc)
            return
        await self._not_found(send, method, path, "a directory, and listing is off")

    async def _serve_listing(self, scope: Scope, send: Send, method: str, relative: str) -> None:
        timeout = self.file_options.get("storage_timeout", DEFAULT_STORAGE_TIMEOUT)
        try:
            resolved = self.registry.locate(self.root, relative, **self.storage_options)
            with anyio.move_on_after(timeout) as deadline:
                entries = await self.registry.list(resolved.target, **resolved.options)
            if deadline.cancelled_caught:
                raise StorageBusy(f"listing {relative!r} took over {timeout} s")
        except SendfsError as exc:
            await self._send_error(send, method, "/" + relative, http_error(exc), cause=exc)
            return
        if not self.dotfiles:
            entries = [entry for entry in entries if not entry.name.startswith(".")]
        page = render_listing(scope.get("path", "/"), entries, parent=bool(relative))
        extra = [(b"cache-control", b"no-cache")]
        body = page.encode("utf-8")
        await _send_simple(send, method, 200, body, "text/html; charset=utf-8", extra)

    async def _send_error(
        self, send: Send, method: str, path: str, exc: Exception, cause: Exception | None = None
    ) -> None:
        """Answer with an ``HTTPException``; a 404 logs why first (the storage error behind it)."""
        if isinstance(exc, HTTPException) and exc.status_code == 404:
            self._log_not_found(path, _reason(cause or exc.__cause__ or exc))
        await _send_http_exception(send, method, exc)

    async def _not_found(self, send: Send, method: str, path: str, reason: str) -> None:
        self._log_not_found(path, reason)
        await _send_simple(send, method, 404, b"Not Found")

    @staticmethod
    def _log_not_found(path: str, reason: str) -> None:
        line = f"sendfs: 404 {shorten(path, LOG_PATH_LIMIT)}: {reason}"
        logger.debug("%s", shorten(line, LOG_LINE_LIMIT))

    @staticmethod
    async def _redirect_to_directory(scope: Scope, send: Send, method: str) -> None:
        full_path: str = scope.get("path", "/")
        # One leading slash: "//evil.example" must not become a protocol-relative redirect.
        location = quote("/" + full_path.lstrip("/") + "/")
        query: bytes = scope.get("query_string", b"")
        if query:
            location += "?" + query.decode("latin-1")
        extra = [(b"location", location.encode("latin-1"))]
        await _send_simple(send, method, 307, b"", extra=extra)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.registry.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _check_local_root(root: str, target: Any) -> None:
    """Refuse a local root that is not a directory: every request would be a silent 404."""
    if not isinstance(target, (str, os.PathLike)):
        return
    if not os.path.exists(target):
        raise SourceNotFound(f"StorageFiles root {root!r} does not exist")
    if not os.path.isdir(target):
        raise SourceNotFound(f"StorageFiles root {root!r} is not a directory")
