"""The Flask and Werkzeug face: ``send_file``, ``send_from_storage``, ``send_zip``, blueprints.

:func:`send_file` takes Flask's parameters in Flask's order, so replacing
``from flask import send_file`` with ``from sendfs.flask import send_file`` keeps every call
working, and adds what Flask's lacks: multi-range requests, ``If-Unmodified-Since``, S3 and
every fsspec filesystem, download events. :func:`send_from_directory` is
:func:`send_from_storage` under Flask's name::

    from flask import Flask
    from sendfs.flask import send_file, send_from_directory

    app = Flask(__name__)

    @app.get("/report")
    def report():
        return send_file("s3://reports/q3.pdf", as_attachment=True)

    @app.get("/uploads/<path:name>")
    def upload(name):
        return send_from_directory("uploads", name)

:func:`storage_blueprint` serves a whole root (a directory, a mount, ``s3://bucket/prefix``)
the way Flask's static folder serves its directory.

The answer is decided in the view, as Flask's own ``send_file`` does: the storage is opened
and the body's first chunk read before the view returns, so a missing source is a Werkzeug
``NotFound`` (``Forbidden``, ``BadGateway``, ``ServiceUnavailable`` with ``Retry-After``) that
the app's error handlers render. The response is the app's ``response_class`` (Werkzeug's
``Response`` outside Flask) in ``direct_passthrough`` mode, carrying exactly the core's header
fields; ``after_request`` hooks (flask-cors, cookies) add theirs as on any response.

The storage work runs on ONE event-loop thread per process
(:mod:`sendfs.responses.blocking`), where async filesystems (s3fs) keep their connection
pools; the WSGI server's thread drains the body one chunk per call. A full 200 of a local file
goes through ``environ["wsgi.file_wrapper"]`` when the server offers one (gunicorn sends it
with ``sendfile``, waitress from its own I/O thread).

Outside a Flask request (a plain Werkzeug app), pass the WSGI environ with ``environ=``: then
relative paths are relative to the working directory and ``max_age=None`` means ``no-cache``.
In a Flask app, ``USE_X_SENDFILE`` makes ``offload=XSendfile()`` the default, as Flask's own
``send_file`` sends ``X-Sendfile`` then (see :mod:`sendfs.responses.offload`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import anyio
from flask import Blueprint, current_app, has_app_context, has_request_context, redirect, request
from werkzeug.datastructures import EnvironHeaders, Headers
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    default_exceptions,
)
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from .exceptions import SendfsError, SourceIsDirectory, SourceNotFound, StorageBusy
from .responses import blocking
from .responses.core import (
    DEFAULT_EXPIRES,
    DEFAULT_STORAGE_TIMEOUT,
    Download,
    caller_fields,
    check_headers,
)
from .responses.errors import HTTPError, status_error
from .responses.offload import Offload, XSendfile
from .responses.static import render_listing
from .storages.base import DEFAULT_CHUNK_SIZE, DirEntry
from .storages.registry import Resolved, StorageRegistry
from .storages.registry import registry as default_registry

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from typing_extensions import Unpack

    from .events import DownloadHook
    from .responses.links import LinkSigner
    from .responses.presigned import PresignOptions

__all__ = [
    "presigned_url",
    "send_file",
    "send_from_directory",
    "send_from_storage",
    "send_zip",
    "storage_blueprint",
]

#: ``max_age``: seconds, ``None``, or a function of the file's path (or URL) returning either.
MaxAge = int | Callable[[str | None], int | None] | None

#: A source string with a scheme is a URL (``s3://``, ``memory://``, a mount), else a path.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: The Werkzeug exceptions that carry ``Retry-After``.
_RETRY_AFTER = (ServiceUnavailable, TooManyRequests)
#: The :func:`send_file` options a :func:`storage_blueprint` applies to every file. Those that
#: describe one file (``download_name``, ``last_modified``, ``size``, ``status_code``) or one
#: request (``environ``) are refused.
_BLUEPRINT_FILE_OPTIONS = frozenset(
    {
        "as_attachment",
        "chunk_size",
        "conditional",
        "deduce_media_type_from_body",
        "etag",
        "expires",
        "headers",
        "max_age",
        "mimetype",
        "offload",
        "on_complete",
        "precompressed",
        "redirect",
        "signer",
        "response_class",
        "storage_timeout",
    }
)


def werkzeug_exception(error: HTTPError) -> HTTPException:
    """``error`` as the Werkzeug exception Flask (and a Werkzeug app) renders.

    Args:
        error: The answer to render: 404 ``NotFound``, 403 ``Forbidden``, 502 ``BadGateway``
            or 503 ``ServiceUnavailable`` (with its ``Retry-After``).

    Security:
        The exception carries Werkzeug's generic description only: paths, bucket names and
        storage messages never reach the client.
    """
    exception_class = default_exceptions.get(error.status_code, InternalServerError)
    retry_after = error.headers.get("Retry-After")
    if retry_after is not None and issubclass(exception_class, _RETRY_AFTER):
        return exception_class(retry_after=int(retry_after))
    return exception_class()


def send_file(
    path_or_file: Any,
    mimetype: str | None = None,
    as_attachment: bool = False,
    download_name: str | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: datetime | float | None = None,
    max_age: MaxAge = None,
    *,
    environ: WSGIEnvironment | None = None,
    response_class: type[Response] | None = None,
    headers: Mapping[str, str] | None = None,
    status_code: int = 200,
    storage_options: Mapping[str, Any] | None = None,
    registry: StorageRegistry | None = None,
    chunk_size: int | None = None,
    on_complete: DownloadHook | None = None,
    redirect: bool | Literal["required"] = False,
    expires: int = DEFAULT_EXPIRES,
    size: int | None = None,
    storage_timeout: float | None = DEFAULT_STORAGE_TIMEOUT,
    deduce_media_type_from_body: bool = False,
    offload: Offload | None = None,
    precompressed: bool | Sequence[str] = False,
    signer: LinkSigner | None = None,
) -> Response:
    """Answer the current request with ``path_or_file``, with full HTTP semantics.

    The first eight parameters are Flask's, in Flask's order; the rest are keyword-only:
    Werkzeug's ``environ`` and ``response_class``, then sendfs's options (see
    :func:`sendfs.send_file` for each in full).

    Args:
        path_or_file: A local path (in a Flask app relative to ``app.root_path``, else to the
            working directory, as Flask and Werkzeug do), a binary file object (served from
            its position, closed afterwards), a URL (``s3://bucket/key``, ``memory://...``,
            any fsspec protocol, a named mount), an async iterable of bytes, or what
            ``registry.locate(root, user_path)`` returned.
        mimetype: The Content-Type; guessed from the download name, the source's name, then
            the storage's record, else ``application/octet-stream``.
        as_attachment: ``Content-Disposition: attachment`` (save) rather than ``inline``.
        download_name: The name the browser saves as; by default the source's name.
            Non-ASCII names get an RFC 8187 ``filename*`` and an ASCII fallback.
        conditional: Answer conditional and range requests (304, 412, 206, 416).
        etag: ``True`` for the storage's entity tag, ``False`` for none, or a tag of your own.
        last_modified: Overrides the storage's modification time (datetime or timestamp).
        max_age: Seconds caches may reuse the response (``public, max-age=N``); ``None``
            sends ``no-cache``. A callable gets the local file's absolute path (or the URL;
            ``None`` for file objects and streams) and returns either. In a Flask app,
            ``None`` means ``app.get_send_file_max_age`` (``SEND_FILE_MAX_AGE_DEFAULT``).
        environ: The WSGI environ of the request; by default Flask's ``request.environ``.
            Required outside a Flask request (a plain Werkzeug app).
        response_class: The class of the response; by default the app's ``response_class``
            in Flask, else ``werkzeug.wrappers.Response``.
        headers: Extra response fields; they override computed ones except the framing
            fields (ETag and Last-Modified go through ``etag=`` and ``last_modified=``).
        status_code: The status of a full response; anything but 200 turns conditional and
            range handling off.
        storage_options: Options for the backend, e.g. ``{"endpoint_url": ...}`` for S3.
        registry: The storage registry (default: the global one).
        chunk_size: Bytes per read (and per WSGI chunk); by default what suits the backend.
        on_complete: Called with a :class:`~sendfs.events.DownloadEvent` when the WSGI server
            closes the response (sync or async; it runs on the event-loop thread).
        redirect: ``True`` answers ``307`` to a presigned URL when the storage can sign;
            ``"required"`` raises instead of streaming.
        expires: Lifetime of a presigned URL, in seconds.
        size: For an async iterable: the exact number of bytes it yields.
        storage_timeout: Seconds the storage may take to start answering a read; before the
            first byte the answer is then ``503`` with ``Retry-After``.
        deduce_media_type_from_body: Without ``mimetype``, let python-magic name the type
            from the first 2 KiB.
        offload: Let a front server send the bytes (:class:`~sendfs.XAccelRedirect` for
            nginx, :class:`~sendfs.XSendfile` for Apache and lighttpd). In a Flask app with
            ``USE_X_SENDFILE`` set, local files get ``XSendfile()`` unless this says
            otherwise, as Flask's ``send_file`` does.
        precompressed: Serve ``.br`` / ``.gz`` siblings the client accepts.
        signer: Answer only requests whose URL carries a valid signature from this
            :class:`~sendfs.LinkSigner` (else 403).

    Returns:
        The response, decided already: a full or partial body, or an empty 304, 412, 416 or
        307. Its body must be closed (every WSGI server does), which releases the storage.

    Raises:
        werkzeug.exceptions.NotFound: The source is missing, is a directory, or is a mount
            path that climbs out of its mount.
        werkzeug.exceptions.Forbidden: The storage refused access.
        werkzeug.exceptions.BadGateway: The storage failed.
        werkzeug.exceptions.ServiceUnavailable: The storage was busy (``Retry-After``), or the
            object changed while it was opened.
        RuntimeError: Outside a Flask request without ``environ=``.
        TypeError: ``path_or_file`` is a text stream or no source at all.
        ValueError: An option is out of range or a header holds CR, LF or NUL.
        sendfs.exceptions.UnknownScheme: No backend serves the URL's scheme.
        sendfs.exceptions.MissingDependency: The backend's optional package is missing.

    Security:
        ``path_or_file`` is trusted: never build it from request data. To serve a
        user-chosen file under a directory or bucket, use :func:`send_from_storage`. The
        download name and header values are sanitised, so they can come from users.
    """
    environ = _request_environ(environ)
    source = _located(path_or_file)
    check_headers(headers)
    try:
        download = Download(
            source,
            status_code=status_code,
            media_type=mimetype,
            filename=download_name,
            disposition="attachment" if as_attachment else "inline",
            etag=etag,
            last_modified=last_modified,
            max_age=_max_age(max_age, source),
            conditional=conditional,
            chunk_size=chunk_size,
            storage_options=storage_options,
            registry=registry,
            sniff_media_type=deduce_media_type_from_body,
            on_complete=on_complete,
            redirect=redirect,
            expires=expires,
            size=size,
            storage_timeout=storage_timeout,
            offload=_offload(
                offload,
                source,
                registry or default_registry,
                plain=status_code == 200
                and conditional
                and not isinstance(etag, str)
                and last_modified is None
                and not precompressed,
            ),
            precompressed=precompressed,
            signer=signer,
        )
    except HTTPError as exc:  # a mount path that climbs out: a plain 404
        raise werkzeug_exception(exc) from exc.__cause__
    return _respond(download, environ, headers, response_class)


def send_from_storage(
    root: str | os.PathLike[str],
    path: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    registry: StorageRegistry | None = None,
    **options: Any,
) -> Response:
    """Answer with the file at an untrusted ``path`` under a trusted ``root``, safely.

    Also available as :func:`send_from_directory`, Flask's name.

    Args:
        root: A mount name (``"media"``), a local directory (relative to ``app.root_path`` in
            a Flask app, as Flask's ``send_from_directory`` does, else to the working
            directory), or a URL prefix (``"s3://bucket/public"``).
        path: The relative path the user asked for (a ``<path:...>`` URL variable).
        storage_options: Options for the backend of ``root``.
        registry: The storage registry (default: the global one).
        **options: Any other :func:`send_file` option (``as_attachment``, ``max_age``,
            ``environ``...).

    Returns:
        The response, as :func:`send_file` returns it.

    Raises:
        werkzeug.exceptions.NotFound: ``path`` leaves ``root``, or names no file.
        werkzeug.exceptions.HTTPException: As :func:`send_file` raises them.

    Security:
        ``..`` segments, absolute paths, backslashes, NUL and control characters,
        percent-encoded separators or dots, Windows drive letters and device names are all
        answered 404, before any storage is touched. ``/srv/files`` never reaches
        ``/srv/files-private``; on local disk the file is opened beneath the root, so a
        symbolic link or a rename cannot lead out of it.
    """
    reg = registry or default_registry
    try:
        resolved = reg.locate(_storage_root(root, reg), path, **dict(storage_options or {}))
    except SourceNotFound as exc:  # a path that leaves its root: a plain 404
        raise _http_exception(exc) from exc
    return send_file(resolved, registry=reg, **options)


send_from_directory = send_from_storage
""":func:`send_from_storage` under the name of Flask's ``send_from_directory``."""


def send_zip(
    entries: Mapping[str, Any] | Iterable[tuple[str, Any]],
    download_name: str = "export.zip",
    *,
    compress: bool = False,
    force_zip64: bool = False,
    environ: WSGIEnvironment | None = None,
    response_class: type[Response] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    headers: Mapping[str, str] | None = None,
    registry: StorageRegistry | None = None,
    on_complete: DownloadHook | None = None,
    storage_timeout: float | None = DEFAULT_STORAGE_TIMEOUT,
) -> Response:
    """Answer with a ZIP archive of any sources, as an attachment, in constant memory.

    Args:
        entries: Archive name to source, as a mapping or ``(name, source)`` pairs, in archive
            order; see :func:`sendfs.send_zip`. Relative local paths are resolved as
            :func:`send_file` resolves them (a ``ZipEntry``'s source is used as it is).
        download_name: The file name the browser saves.
        compress: Deflate every entry (then the length is not known in advance).
        force_zip64: Use ZIP64 fields even when no size or offset needs them.
        environ: The WSGI environ; by default Flask's ``request.environ``.
        response_class: As for :func:`send_file`.
        storage_options: Options for the backends of the entries' sources.
        chunk_size: Bytes per WSGI chunk (about).
        headers: Extra response fields.
        registry: The registry that opens the entries (default: the global one).
        on_complete: A download hook (see :mod:`sendfs.events`).
        storage_timeout: As for :func:`send_file`; it bounds opening the entries.

    Returns:
        A response with ``Content-Type: application/zip``.

    Raises:
        werkzeug.exceptions.NotFound: An entry is missing (every entry is opened for its
            metadata before the first byte).
        ValueError: An unsafe or duplicate archive name, or a bad option.
        TypeError: A name that is not a string.
        RuntimeError: Outside a Flask request without ``environ=``.

    Security:
        Archive names are checked so the archive extracts safely anywhere; sources are
        trusted, so build them from request data only through ``registry.locate``.
    """
    from .storages.archive import ZipArchive  # the zip writer loads with the first archive

    environ = _request_environ(environ)
    check_headers(headers)
    pairs = entries.items() if isinstance(entries, Mapping) else entries
    archive = ZipArchive(
        [(name, _located(source)) for name, source in pairs],
        compress=compress,
        force_zip64=force_zip64,
        storage_options=storage_options,
        name=download_name,
    )
    download = Download(
        archive,
        media_type="application/zip",
        filename=download_name,
        disposition="attachment",
        chunk_size=chunk_size,
        registry=registry or default_registry,
        on_complete=on_complete,
        storage_timeout=storage_timeout,
    )
    return _respond(download, environ, headers, response_class)


def storage_blueprint(
    name: str,
    root: str | os.PathLike[str],
    *,
    url_prefix: str | None = None,
    listing: bool = False,
    html: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    registry: StorageRegistry | None = None,
    **file_options: Any,
) -> Blueprint:
    """A Blueprint serving every file under ``root``, as Flask's static folder serves its own.

    ::

        files = storage_blueprint("files", "s3://bucket/public", url_prefix="/files")
        app.register_blueprint(files)

    ``GET`` and ``HEAD`` of ``/<path>`` answer as :func:`send_from_storage` does (ranges,
    304, 412...); ``url_for("files.serve", path="a.txt")`` builds a file's URL. A directory
    asked for with its ``/`` gets its ``index.html`` (``html=True``), else its listing
    (``listing=True``), else 404. Asked for without its ``/``, it is redirected there with a
    ``307`` when either is on: temporary, because the storage may later hold a file of that
    name, and the method is kept. The prefix itself (``/files``) is redirected to ``/files/``
    by Werkzeug's router, with a ``308``: it depends on the app, not on the storage. Other
    methods get Werkzeug's 405.

    Args:
        name: The blueprint's name, the prefix of its endpoint (``"<name>.serve"``).
        root: A local directory (relative to ``app.root_path``, as for
            :func:`send_from_storage`), a mount name (``"media"``) or a URL prefix
            (``"s3://bucket/public"``, ``"memory://site"``).
        url_prefix: Where the blueprint is mounted; also accepted by ``register_blueprint``.
        listing: Render an HTML listing for a directory without ``index.html``.
        html: Serve ``index.html`` for a directory.
        storage_options: Options for the backend of ``root`` (credentials, endpoint...).
        registry: The storage registry (default: the global one).
        **file_options: :func:`send_file` options applied to every file: ``as_attachment``,
            ``mimetype``, ``conditional``, ``etag`` (``True`` or ``False``), ``max_age``,
            ``headers``, ``chunk_size``, ``on_complete``, ``redirect``, ``expires``,
            ``storage_timeout`` (it bounds listings too), ``response_class``,
            ``deduce_media_type_from_body``, ``offload``, ``precompressed`` and ``signer``.

    Returns:
        The blueprint, to pass to ``app.register_blueprint``.

    Raises:
        TypeError: An option that is not one of the above, or ``etag`` that is not a bool.
        ValueError: An option's value is out of range, or ``listing=True`` with a
            ``signer`` (a listing's links are not signed).
        sendfs.exceptions.UnknownScheme: No backend serves ``root``'s scheme.
        sendfs.exceptions.MissingDependency: The backend's optional package is missing.
        sendfs.exceptions.RedirectUnavailable: ``redirect="required"`` for a local root.

    Security:
        Request paths are untrusted and confined as :func:`send_from_storage` confines them:
        ``..``, encoded separators and the like are a 404, listings included. Listings escape
        every name. Guard the blueprint (``before_request``) as you would any other route.
    """
    reg = registry or default_registry
    options = dict(storage_options or {})
    if listing and file_options.get("signer") is not None:
        raise ValueError("listing=True lists unsigned links: it does not mix with signer=")
    _check_file_options(reg.locate(_storage_root(root, reg), "", **options), reg, file_options)
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)

    def serve_file(path: str) -> Response:
        return send_from_storage(root, path, storage_options=options, registry=reg, **file_options)

    @blueprint.route("/", defaults={"path": ""}, methods=["GET", "HEAD"])
    @blueprint.route("/<path:path>", methods=["GET", "HEAD"])
    def serve(path: str) -> Response:
        if path and not path.endswith("/"):
            try:
                return serve_file(path)
            except NotFound as exc:
                if (html or listing) and isinstance(exc.__cause__, SourceIsDirectory):
                    return _redirect_to_directory()
                raise
        if html:
            try:
                return serve_file(path + "index.html")
            except NotFound:
                if not listing:
                    raise
        if listing:
            timeout = file_options.get("storage_timeout", DEFAULT_STORAGE_TIMEOUT)
            return _listing(reg, _storage_root(root, reg), path, options, timeout)
        raise NotFound()

    return blueprint


def presigned_url(
    source: str | os.PathLike[str] | Resolved, **options: Unpack[PresignOptions]
) -> str:
    """A presigned URL that downloads ``source`` straight from its storage (no request needed).

    The URL makes the storage answer with the download name and type; see
    :func:`sendfs.presigned_url`, which this runs on sendfs's event-loop thread.

    Args:
        source: A URL of a storage that signs (``s3://``, ``az://``, a mount of one), or what
            ``registry.locate(root, user_path)`` returned.
        **options: ``download_name``, ``mimetype``, ``as_attachment``, ``expires``,
            ``storage_options``, ``registry`` (see :class:`PresignOptions`).

    Raises:
        sendfs.exceptions.RedirectUnavailable: A local path or credentials that cannot sign.
        sendfs.exceptions.SourceNotFound: No such object.

    Security:
        The URL is a bearer token until it expires: keep ``expires`` short.
    """
    return blocking.presigned_url(source, **options)


# -- translating an answer ---------------------------------------------------------------------


def _respond(
    download: Download,
    environ: WSGIEnvironment,
    headers: Mapping[str, str] | None,
    response_class: type[Response] | None,
) -> Response:
    """Decide the answer now, in the view, and wrap it in a passthrough response.

    The fields replace the response's own header store, so Werkzeug adds no default
    Content-Type to a 304, 412 or 416. Every body is an iterable with ``close()``, also an
    empty one: Werkzeug closes it for HEAD and 304 too, which releases the storage and emits
    the download event.
    """
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    can_wrap = "wsgi.file_wrapper" in environ
    caller = caller_fields((headers or {}).items())
    try:
        answer, first, tracker = blocking.answer(
            download,
            method,
            _request_headers(environ),
            caller,
            file_wrapper=can_wrap,
            path=_request_path(environ),
            query=environ.get("QUERY_STRING", ""),
        )
    except HTTPError as exc:
        raise werkzeug_exception(exc) from exc.__cause__
    hooks = download.hooks()
    body: Iterable[bytes]
    if answer.whole_file:  # a full 200 of a local file: the server sends it
        block_size = download.chunk_size or DEFAULT_CHUNK_SIZE
        body = wrap_file(environ, blocking.LocalFile(answer, tracker, hooks), block_size)
    else:
        body = blocking.BlockingBody(answer, first, tracker, hooks)
    try:
        response = (response_class or _app_response_class())(
            body, status=answer.status, direct_passthrough=True
        )
    except BaseException:
        getattr(body, "close", lambda: None)()  # release the storage: no server will
        raise
    response.headers = Headers(
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in answer.headers]
    )
    return response


def _request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's fields as the core takes them: lower-case names, WSGI (Latin-1) values.

    Args:
        environ: The WSGI environ (repeated fields are joined by the server).
    """
    return {name.lower(): value for name, value in EnvironHeaders(environ).items()}


def _request_path(environ: WSGIEnvironment) -> str:
    """The request's URL path, decoded, as a :class:`~sendfs.LinkSigner` signed it.

    WSGI carries the decoded bytes as Latin-1 characters; the path is UTF-8 (as Werkzeug's
    ``request.path`` decodes it).
    """
    raw = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return raw.encode("latin-1", "replace").decode("utf-8", "replace") or "/"


def _offload(
    offload: Offload | None, source: Any, registry: StorageRegistry, *, plain: bool
) -> Offload | None:
    """``offload``, else Flask's ``USE_X_SENDFILE`` as an :class:`XSendfile`, where it fits.

    As in Flask, the setting is a default, not a demand: it applies to a local file sent as
    a plain 200 (no ``etag=``, ``last_modified=``, ``precompressed=``, other status or
    ``conditional=False``), and never over a mount's own offload.

    Args:
        offload: The call's offload.
        source: The source, as :class:`~sendfs.responses.core.Download` will resolve it.
        registry: The registry that resolves it.
        plain: Whether the call's other options leave the answer to a front server.
    """
    if offload is not None or not plain:
        return offload
    if not has_app_context() or not current_app.config.get("USE_X_SENDFILE"):
        return None
    try:
        resolved = registry.resolve(source)
    except (SendfsError, TypeError):
        return None  # Download reports it
    if resolved.offload is not None or registry.local_path(resolved) is None:
        return None
    return XSendfile()


def _app_response_class() -> type[Response]:
    """The app's ``response_class`` (``make_response`` keeps it as it is), else Werkzeug's."""
    if has_app_context():
        app_class: type[Response] = current_app.response_class
        return app_class
    return Response


def _request_environ(environ: WSGIEnvironment | None) -> WSGIEnvironment:
    if environ is not None:
        return environ
    if has_request_context():
        return request.environ
    raise RuntimeError(
        "sendfs.flask needs a request: call it in a Flask view, or pass the WSGI environ "
        "(send_file(..., environ=environ))"
    )


def _located(source: Any) -> Any:
    """A relative local path made absolute as Flask (``app.root_path``) or Werkzeug (CWD) does.

    URLs, file objects, streams and ``registry.locate`` results are returned as they are.
    """
    path = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(path, str) or _URL.match(path):
        return source
    if has_app_context():
        return os.path.join(current_app.root_path, path)
    return os.path.abspath(path)


def _max_age(max_age: MaxAge, source: Any) -> int | None:
    """``max_age`` resolved as Werkzeug does: a callable gets the path (``None`` for a file).

    In a Flask app, ``None`` defers to ``app.get_send_file_max_age``, as Flask's ``send_file``
    does.
    """
    if max_age is None and has_app_context():
        max_age = current_app.get_send_file_max_age
    if not callable(max_age):
        return max_age
    name = source.target if isinstance(source, Resolved) else source
    return max_age(name if isinstance(name, str) else None)


def _storage_root(root: str | os.PathLike[str], registry: StorageRegistry) -> str:
    """``root`` as :meth:`StorageRegistry.locate` takes it: a relative directory made absolute."""
    root = os.fspath(root)
    located: str = root if root.lower() in registry.mounts else _located(root)
    return located


def _http_exception(exc: SendfsError) -> Exception:
    """The Werkzeug exception for a storage error, or the error itself when it has no status."""
    error = status_error(exc)
    return werkzeug_exception(error) if isinstance(error, HTTPError) else error


# -- serving a whole root ----------------------------------------------------------------------


def _check_file_options(
    resolved: Resolved, registry: StorageRegistry, options: Mapping[str, Any]
) -> None:
    """Refuse, when a blueprint is built, what :func:`send_file` would refuse at each request.

    Raises:
        TypeError: An option a blueprint does not apply, or a fixed entity tag (one tag for
            every file, never changing, would answer 304 for files that changed).
        ValueError: A value out of range.
    """
    unknown = set(options) - _BLUEPRINT_FILE_OPTIONS
    if unknown:
        raise TypeError(f"storage_blueprint got unexpected options: {', '.join(sorted(unknown))}")
    if not isinstance(options.get("etag", True), bool):
        raise TypeError("storage_blueprint takes etag=True or etag=False, not a fixed tag")
    check_headers(options.get("headers"))
    max_age = options.get("max_age")
    Download(  # checks the values against the root; opens nothing
        resolved,
        registry=registry,
        max_age=None if callable(max_age) else max_age,
        chunk_size=options.get("chunk_size"),
        redirect=options.get("redirect", False),
        expires=options.get("expires", DEFAULT_EXPIRES),
        storage_timeout=options.get("storage_timeout", DEFAULT_STORAGE_TIMEOUT),
        sniff_media_type=options.get("deduce_media_type_from_body", False),
        offload=options.get("offload"),
        precompressed=options.get("precompressed", False),
        signer=options.get("signer"),
    )


def _listing(
    registry: StorageRegistry,
    root: str,
    path: str,
    storage_options: Mapping[str, Any],
    timeout: float | None,
) -> Response:
    """The HTML listing of the directory ``path`` under ``root``, read on the loop thread.

    Raises:
        werkzeug.exceptions.NotFound: ``path`` leaves ``root``, names no directory, or the
            backend cannot list.
        werkzeug.exceptions.HTTPException: The storage failed (502) or was busy (503).
    """
    try:
        resolved = registry.locate(root, path, **storage_options)
        entries = blocking.call(functools.partial(_list, registry, resolved, timeout))
    except SendfsError as exc:
        raise _http_exception(exc) from exc
    page = render_listing(request.script_root + request.path, entries)
    response = _app_response_class()(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _list(
    registry: StorageRegistry, resolved: Resolved, seconds: float | None
) -> list[DirEntry]:
    with anyio.move_on_after(seconds) as deadline:
        entries: list[DirEntry] = await registry.list(resolved.target, **resolved.options)
    if deadline.cancelled_caught:
        raise StorageBusy(f"listing took over {seconds} s")
    return entries


def _redirect_to_directory() -> Response:
    """A 307 from a directory's path to its ``/``, the query kept."""
    # One leading slash: "//evil.example" must not become a protocol-relative redirect.
    location = quote("/" + (request.script_root + request.path).lstrip("/") + "/")
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    return redirect(location, 307)
