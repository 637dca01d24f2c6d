"""The Django face: ``send_file`` for sync views, ``asend_file`` for async views, ``serve``.

Django has no request context-local, so the request is passed in, as Django's own
``django.views.static.serve(request, path)`` takes it::

    from django.urls import path
    from sendfs.django import asend_file, send_file

    def report(request):
        return send_file(request, "s3://reports/q3.pdf", as_attachment=True)

    async def areport(request):
        return await asend_file(request, "s3://reports/q3.pdf", as_attachment=True)

The answer (status and fields) is decided in the view by sendfs's core, and the source is
opened there, so a missing source raises ``Http404`` and a forbidden one ``PermissionDenied``,
which Django renders. What the view returns is a ``StreamingHttpResponse`` whose body has the
kind of iterator the handler serving the request streams without buffering:

=========================  ===========================  ====================================
view, handler              where the storage is read    body given to Django
=========================  ===========================  ====================================
sync view, WSGI            sendfs's event-loop thread   a sync iterator (one loop call per
                                                        chunk); a whole local file goes to
                                                        ``wsgi.file_wrapper`` (sendfile)
sync view, ASGI            sendfs's event-loop thread   an async iterator pulling one chunk
                                                        at a time from a worker thread
async view, ASGI           the server's event loop      the core's async body itself
async view, WSGI           sendfs's event-loop thread   a sync iterator, as for a sync view
=========================  ===========================  ====================================

Django 5.2 reads an async iterator whole into a list under WSGI, and a sync iterator whole
under ASGI (with only a warning): each handler must get its own kind, which is why the request
tells the face which handler it came through (``ASGIRequest`` or not).

Django ``File`` objects are sources too: a ``FieldFile`` (``instance.document``) is served
from its storage (see :func:`file_source`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import quote

import anyio
from asgiref.sync import sync_to_async
from django.core.exceptions import (  # type: ignore[import-untyped]
    ImproperlyConfigured,
    PermissionDenied,
)
from django.core.files.storage import FileSystemStorage  # type: ignore[import-untyped]
from django.core.handlers.asgi import ASGIRequest  # type: ignore[import-untyped]
from django.db.models.fields.files import FieldFile  # type: ignore[import-untyped]
from django.http import (  # type: ignore[import-untyped]
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)

from .events import DownloadHook, Tracker, emit
from .exceptions import (
    RedirectUnavailable,
    SendfsError,
    SourceIsDirectory,
    SourceNotFound,
    StorageBusy,
)
from .responses import blocking
from .responses.core import (
    DEFAULT_EXPIRES,
    DEFAULT_STORAGE_TIMEOUT,
    Answer,
    Download,
    caller_fields,
    check_headers,
)
from .responses.errors import HTTPError, status_error
from .responses.fields import Fields
from .responses.links import LinkSigner
from .responses.offload import Offload
from .responses.send import unexpected_keyword
from .responses.static import render_listing
from .storages.base import DirEntry
from .storages.local import map_os_error
from .storages.registry import Resolved, StorageRegistry
from .storages.registry import registry as default_registry

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .responses.presigned import PresignOptions

__all__ = [
    "SendFileOptions",
    "apresigned_url",
    "asend_file",
    "asend_from_storage",
    "file_source",
    "presigned_url",
    "s3_storage_options",
    "send_file",
    "send_from_storage",
    "serve",
]

#: django-storages' S3 storage classes (``S3Boto3Storage`` is an alias since 1.14).
_S3_STORAGE_CLASSES = frozenset(
    {("storages.backends.s3", "S3Storage"), ("storages.backends.s3boto3", "S3Boto3Storage")}
)
_S3_STORAGE_MODULES = frozenset(module for module, _ in _S3_STORAGE_CLASSES)
#: Bytes per read for a local file the WSGI server sends itself without ``sendfile``.
_FILE_BLOCK_SIZE = 256 * 1024
#: Keeps the clean-up tasks that ``close()`` schedules alive until they finish.
_pending_cleanups: set[asyncio.Task[None]] = set()


class SendFileOptions(TypedDict, total=False):
    """The options of :func:`send_file` and :func:`asend_file`, named as ``sendfs.send_file``'s.

    Attributes:
        mimetype: The Content-Type; by default guessed from the download name, the source's
            name, then what the storage recorded.
        as_attachment: ``Content-Disposition: attachment`` (save) rather than ``inline``.
        download_name: The file name the browser saves as; by default the source's name.
        conditional: Answer conditional and range requests (304, 412, 206, 416).
        etag: ``True`` for the storage's entity tag, ``False`` for none, or a tag of your own.
        last_modified: Overrides the storage's modification time.
        max_age: ``Cache-Control: public, max-age=N``; ``None`` sends ``no-cache``.
        headers: Extra response fields (not the framing ones; ETag and Last-Modified go
            through ``etag=`` and ``last_modified=``). Cookies go through
            ``response.set_cookie()``.
        storage_options: Options for the backend (``{"endpoint_url": ...}`` for S3); for a
            ``FieldFile`` on S3 they override what the storage's settings give.
        registry: The storage registry (default: ``sendfs.registry``).
        chunk_size: Bytes per read.
        status_code: The status of a full answer; anything but 200 turns off conditional and
            range handling.
        on_complete: A download hook, called with a :class:`~sendfs.events.DownloadEvent`
            once the response is over.
        redirect: ``True`` or ``"required"``: answer ``307`` to a presigned storage URL.
        expires: Lifetime of a presigned URL, in seconds.
        size: For an async iterable source, the exact number of bytes it yields.
        storage_timeout: Seconds the storage may take to start answering a read (503 before
            the first byte, an aborted body after).
        offload: Let a front server send the bytes (:class:`~sendfs.XAccelRedirect` for
            nginx, :class:`~sendfs.XSendfile` for Apache and lighttpd).
        precompressed: Serve ``.br`` / ``.gz`` siblings the client accepts.
        signer: Answer only requests whose URL carries a valid signature from this
            :class:`~sendfs.LinkSigner` (else 403).
    """

    mimetype: str | None
    as_attachment: bool
    download_name: str | None
    conditional: bool
    etag: bool | str
    last_modified: datetime | float | None
    max_age: int | None
    headers: Mapping[str, str] | None
    storage_options: Mapping[str, Any] | None
    registry: StorageRegistry | None
    chunk_size: int | None
    status_code: int
    on_complete: DownloadHook | None
    redirect: bool | Literal["required"]
    expires: int
    size: int | None
    storage_timeout: float | None
    offload: Offload | None
    precompressed: bool | Sequence[str]
    signer: LinkSigner | None


# -- presigned URLs ----------------------------------------------------------------------------


def presigned_url(source: Any, **options: Unpack[PresignOptions]) -> str:
    """A presigned URL that downloads ``source`` straight from its storage, as ``storage.url``.

    Unlike django-storages' ``storage.url(name)``, the URL makes the storage answer with the
    download name and type (``response-content-disposition`` and ``-type`` on S3). For a
    sync view; :func:`apresigned_url` is the async twin. See :func:`sendfs.presigned_url`.

    Args:
        source: A ``FieldFile`` on django-storages' S3 storage, an ``S3File``, or a URL of a
            storage that signs (``s3://``, ``az://``, a mount).
        **options: ``download_name``, ``mimetype``, ``as_attachment``, ``expires``,
            ``storage_options`` (for S3 they override the storage's) and ``registry``
            (see :class:`~sendfs.responses.presigned.PresignOptions`).

    Raises:
        sendfs.exceptions.RedirectUnavailable: A file only the app can send (a
            ``FileSystemStorage`` field, a local path), or credentials that cannot sign.
        sendfs.exceptions.SourceNotFound: An empty field, or no such object.
        RuntimeError: Called inside an event loop (use :func:`apresigned_url`).

    Security:
        The URL is a bearer token until it expires: keep ``expires`` short.
    """
    _refuse_running_loop()
    return blocking.presigned_url(_signable(source, options), **options)


async def apresigned_url(source: Any, **options: Unpack[PresignOptions]) -> str:
    """:func:`presigned_url` for async views.

    Args:
        source: As for :func:`presigned_url`.
        **options: As for :func:`presigned_url`.
    """
    from .responses.presigned import presigned_url as make_url

    return await make_url(await sync_to_async(_signable)(source, options), **options)


def _signable(source: Any, options: PresignOptions) -> Any:
    """``source`` mapped to what a storage can sign; a file opened to find out is closed."""
    registry = options.get("registry") or default_registry
    target = file_source(source, registry, options.get("storage_options"))
    if target is not source and callable(getattr(target, "close", None)):
        target.close()
        raise RedirectUnavailable(
            f"{type(source).__name__} on a storage sendfs cannot presign: only the app can "
            "send it (send_file)"
        )
    return target


# -- Django files as sources -----------------------------------------------------------------


def file_source(
    source: Any, registry: StorageRegistry, storage_options: Mapping[str, Any] | None = None
) -> Any:
    """What sendfs opens for ``source``: a Django file mapped to its storage, else ``source``.

    - a ``FieldFile`` (``instance.document``) on a ``FileSystemStorage``: its name under
      ``storage.location``, confined there (``registry.locate``);
    - a ``FieldFile`` on django-storages' ``S3Storage``: ``s3://{bucket}/{location/}{name}``
      with the storage's endpoint, credentials, region and addressing
      (:func:`s3_storage_options`), read by sendfs's S3 backend: one ranged ``GetObject`` per
      request, never the storage's file object, which downloads whole objects;
    - a ``FieldFile`` on any other storage: ``storage.open(name, "rb")``, a binary file
      object read in worker threads (and closed when the response is done);
    - the ``S3File`` that ``S3Storage.open(name)`` returns: its object, as for a ``FieldFile``;
    - anything else (paths, URLs, file objects, other Django ``File`` objects): unchanged.

    Args:
        source: What the view passed.
        registry: The registry that confines names to their root.
        storage_options: The caller's storage options; for S3 they override the storage's.

    Returns:
        A source for :class:`~sendfs.responses.core.Download`: ``source`` itself, a
        ``Resolved`` (confined) or a file object.

    Raises:
        sendfs.exceptions.SourceNotFound: The field is empty, or the storage has no such
            file (``UnsafePath``, a subclass, for a name that climbs out of its root).
        sendfs.exceptions.SourceForbidden: The storage refused to open the file.
        sendfs.exceptions.BackendError: The storage failed to open it.

    Security:
        Names are confined to their storage's root as ``send_from_storage`` confines user
        paths: ``..``, absolute names and encoded separators are a 404, and on local disk a
        symbolic link leading out of ``location`` is refused when the file is opened.
    """
    options = dict(storage_options or {})
    if isinstance(source, FieldFile):
        if not source.name:
            raise SourceNotFound("the file field holds no file")
        return _storage_source(source.storage, source.name, registry, options)
    storage = _s3_file_storage(source)
    if storage is not None:
        # S3File.name is relative to the storage's location, as a field's name is. Nothing was
        # read through the file yet (opening it only checked that the object exists).
        located = _storage_source(storage, source.name, registry, options)
        source.close()
        return located
    return source


def _storage_source(
    storage: Any, name: str, registry: StorageRegistry, options: dict[str, Any]
) -> Any:
    if isinstance(storage, FileSystemStorage):
        return registry.locate(storage.location, name, **options)
    if _is_s3_storage(storage):
        return registry.locate(
            _s3_root(storage), name, **{**s3_storage_options(storage), **options}
        )
    try:
        return storage.open(name, "rb")
    except OSError as exc:
        raise map_os_error(exc, name) from exc


def _is_s3_storage(storage: object) -> bool:
    """Whether ``storage`` is django-storages' S3 storage (without importing it)."""
    return any((k.__module__, k.__name__) in _S3_STORAGE_CLASSES for k in type(storage).__mro__)


def _s3_file_storage(source: object) -> Any:
    """The S3 storage behind an ``S3File`` (``S3Storage.open(name)``), else ``None``.

    django-storages keeps it in ``S3File._storage``, its only link to the storage's settings.
    """
    module = type(source).__module__
    if module not in _S3_STORAGE_MODULES or not getattr(source, "name", None):
        return None
    storage = getattr(source, "_storage", None)
    return storage if _is_s3_storage(storage) else None


def _s3_root(storage: Any) -> str:
    if not storage.bucket_name:
        raise ImproperlyConfigured("the S3 storage has no bucket_name (AWS_STORAGE_BUCKET_NAME)")
    location = (storage.location or "").strip("/")
    return f"s3://{storage.bucket_name}/{location}" if location else f"s3://{storage.bucket_name}"


def s3_storage_options(storage: Any) -> dict[str, Any]:
    """s3fs options that reach the bucket the way a django-storages ``S3Storage`` does.

    Carried over: the endpoint, the credentials (key, secret, session token) or the profile,
    the region, ``use_ssl``, ``verify``, and from the storage's botocore ``Config`` the
    addressing style (``s3``), ``signature_version`` and ``proxies``. Settings left unset are
    left out, so botocore's own chain (environment, profile, instance role) applies, as it
    does for the storage.

    Args:
        storage: An ``S3Storage``.

    Returns:
        Keyword arguments for ``s3fs.S3FileSystem`` (sendfs's ``storage_options``).

    Security:
        The result holds the storage's credentials: never log it. sendfs's reprs and events
        never show storage options.
    """
    options: dict[str, Any] = {}
    for ours, theirs in (
        ("endpoint_url", "endpoint_url"),
        ("key", "access_key"),
        ("secret", "secret_key"),
        ("token", "security_token"),
        ("profile", "session_profile"),
    ):
        value = getattr(storage, theirs, None)
        if value:
            options[ours] = value
    if getattr(storage, "use_ssl", True) is False:
        options["use_ssl"] = False
    client_kwargs = {
        name: value
        for name, value in (
            ("region_name", getattr(storage, "region_name", None)),
            ("verify", getattr(storage, "verify", None)),
        )
        if value is not None
    }
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    config_kwargs = _config_kwargs(getattr(storage, "client_config", None))
    if config_kwargs:
        options["config_kwargs"] = config_kwargs
    return options


def _config_kwargs(config: Any) -> dict[str, Any]:
    """The botocore ``Config`` settings that decide how the bucket is reached, when set."""
    s3 = {name: value for name, value in (getattr(config, "s3", None) or {}).items() if value}
    chosen = {
        "s3": s3,
        "signature_version": getattr(config, "signature_version", None),
        "proxies": getattr(config, "proxies", None),
    }
    return {name: value for name, value in chosen.items() if value}


# -- options, errors, fields -------------------------------------------------------------------


def _prepare(source: Any, options: SendFileOptions) -> tuple[Download, Fields]:
    """Validate the options and build the download (no I/O but ``storage.open``).

    Raises:
        HTTPError: The source is missing (an empty field, a name out of its root: 404).
        TypeError: An option ``send_file`` does not take (another library's name for one
            names sendfs's).
    """
    accepted = SendFileOptions.__required_keys__ | SendFileOptions.__optional_keys__
    if unknown := set(options) - accepted:
        raise unexpected_keyword("send_file", unknown, accepted)
    headers = options.get("headers")
    check_headers(headers)
    registry = options.get("registry") or default_registry
    storage_options = options.get("storage_options")
    try:
        target = file_source(source, registry, storage_options)
    except SendfsError as exc:
        raise status_error(exc) from exc
    try:
        download = Download(
            target,
            status_code=options.get("status_code", 200),
            media_type=options.get("mimetype"),
            filename=options.get("download_name"),
            disposition="attachment" if options.get("as_attachment") else "inline",
            etag=options.get("etag", True),
            last_modified=options.get("last_modified"),
            max_age=options.get("max_age"),
            conditional=options.get("conditional", True),
            chunk_size=options.get("chunk_size"),
            storage_options=storage_options,
            registry=registry,
            on_complete=options.get("on_complete"),
            redirect=options.get("redirect", False),
            expires=options.get("expires", DEFAULT_EXPIRES),
            size=options.get("size"),
            storage_timeout=options.get("storage_timeout", DEFAULT_STORAGE_TIMEOUT),
            offload=options.get("offload"),
            precompressed=options.get("precompressed", False),
            signer=options.get("signer"),
        )
    except BaseException:
        if target is not source and callable(getattr(target, "close", None)):
            target.close()  # the file file_source opened
        raise
    return download, caller_fields((headers or {}).items())


def _error_response(error: HTTPError) -> HttpResponse:
    """The Django way to answer a failure before the first byte.

    404 raises ``Http404`` and 403 ``PermissionDenied``, so the project's ``handler404`` and
    ``handler403`` render them. Django has no exception for 502 and 503 (any other exception
    is a 500), so those are returned as a plain-text ``HttpResponse`` with the status and the
    fields the core gave (``Retry-After`` for a busy storage).

    Args:
        error: What the core raised.

    Raises:
        Http404: For a 404.
        PermissionDenied: For a 403.

    Security:
        The body is the status phrase only: paths, bucket names and storage messages stay in
        the server's log (the ``sendfs`` logger).
    """
    if error.status_code == 404:
        raise Http404(error.detail) from error
    if error.status_code == 403:
        raise PermissionDenied(error.detail) from error
    response = HttpResponse(
        error.detail.encode(), status=error.status_code, content_type="text/plain; charset=utf-8"
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _request_headers(request: HttpRequest) -> dict[str, str]:
    """The request's fields, lower-case names (servers join repeats with commas)."""
    return {name.lower(): value for name, value in request.headers.items()}


def _apply_fields(response: HttpResponseBase, fields: Fields) -> None:
    """Make the answer's fields the response's only ones.

    Django's default Content-Type (``text/html``) and what ``FileResponse`` derives from a
    file object go: the answer says everything. Django keeps one value per name: a repeated
    field is joined with ``", "`` (RFC 9110 section 5.3), except Set-Cookie, which cannot be.

    Args:
        response: A new response.
        fields: The answer's fields.

    Raises:
        ValueError: Set-Cookie twice (set cookies with ``response.set_cookie()``).
    """
    for name in list(response.headers):
        del response.headers[name]
    seen: set[str] = set()
    for raw_name, raw_value in fields:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name not in seen:
            response.headers[name] = value
        elif name == "set-cookie":
            raise ValueError("Set-Cookie twice: set cookies with response.set_cookie()")
        else:
            response.headers[name] = f"{response.headers[name]}, {value}"
        seen.add(name)


def _bodyless_response(answer: Answer) -> HttpResponse:
    """HEAD, 304, 307, 412 and 416: an ``HttpResponse`` without content.

    Not a streaming one: ``GZipMiddleware`` would give an empty stream a gzip body.
    """
    response = HttpResponse(b"", status=answer.status)
    _apply_fields(response, answer.headers)
    return response


def _streaming_response(answer: Answer, content: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, status=answer.status)
    _apply_fields(response, answer.headers)
    return response


def _is_asgi(request: HttpRequest) -> bool:
    return isinstance(request, ASGIRequest)


# -- sync views ------------------------------------------------------------------------------


def send_file(
    request: HttpRequest, source: Any, **options: Unpack[SendFileOptions]
) -> HttpResponseBase:
    """Serve ``source`` from a sync view, with sendfs's HTTP semantics.

    The source is opened and the answer decided here, on sendfs's event-loop thread (one per
    process, shared by every sync view, where async storages keep their connection pools).

    Args:
        request: The view's request.
        source: A local path, a binary file object, a URL (``s3://bucket/key``, a mount), an
            async iterable of bytes, what ``registry.locate`` returned, or a Django file
            (a ``FieldFile`` such as ``instance.document``: see :func:`file_source`).
        **options: See :class:`SendFileOptions`.

    Returns:
        A ``StreamingHttpResponse`` (a ``FileResponse`` for a whole local file under WSGI, so
        the server can send it with ``sendfile``), or an ``HttpResponse`` without content for
        HEAD, 304, 307, 412 and 416, or with a plain-text body for 502 and 503.

    Raises:
        Http404: The source is missing.
        PermissionDenied: The storage refused access.
        RuntimeError: Called from a running event loop (an async view: use
            :func:`asend_file`).
        TypeError: A source that is no source (a text stream...).
        ValueError: An option out of range, or a header with CR, LF or NUL.

    Security:
        ``source`` is trusted: never build it from request data. For user-chosen paths use
        :func:`send_from_storage` or :func:`serve`, which refuse paths leaving their root.
    """
    _refuse_running_loop()
    try:
        download, caller = _prepare(source, options)
        return _send(download, caller, request)
    except HTTPError as error:
        return _error_response(error)


def _refuse_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "send_file() blocks: call it from sync views; async views use await asend_file()"
    )


def _send(download: Download, caller: Fields, request: HttpRequest) -> HttpResponseBase:
    """Answer on sendfs's loop thread and wrap the body for the request's handler."""
    asgi = _is_asgi(request)
    file_wrapper = not asgi and "wsgi.file_wrapper" in request.META
    method = request.method.upper()
    answer, first, tracker = blocking.answer(
        download,
        method,
        _request_headers(request),
        caller,
        file_wrapper=file_wrapper,
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
    )
    hooks = download.hooks()
    if answer.body is None:
        if tracker is not None:
            tracker.finished = True
        blocking.BlockingBody(answer, b"", tracker, hooks).close()
        return _bodyless_response(answer)
    if answer.whole_file:  # only with file_wrapper: the server sends it (sendfile)
        return _file_response(answer, tracker, hooks, download.chunk_size)
    body = blocking.BlockingBody(answer, first, tracker, hooks)
    return _streaming_response(answer, _PulledChunks(body) if asgi else body)


def _file_response(
    answer: Answer, tracker: Tracker | None, hooks: list[DownloadHook], chunk_size: int | None
) -> FileResponse:
    """A Django ``FileResponse`` over the answer's file: WSGIHandler hands it to the server.

    Django's ``WSGIHandler`` passes ``file_to_stream`` to ``wsgi.file_wrapper`` and makes the
    server's ``close()`` reach ``response.close()``, which closes the file (emitting the event).
    """
    local = blocking.LocalFile(answer, tracker, hooks)
    response = FileResponse(local, status=answer.status, content_type="")
    response.block_size = chunk_size or _FILE_BLOCK_SIZE
    _apply_fields(response, answer.headers)
    return response


class _PulledChunks:
    """A sync body as Django's ASGI handler takes it: an async iterator, a chunk at a time.

    A sync view under ASGI runs in a worker thread, and its answer lives on sendfs's loop
    thread: each chunk is pulled in a worker thread, so the server's loop never blocks.
    """

    def __init__(self, body: blocking.BlockingBody) -> None:
        self._body = body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        pull = sync_to_async(_next_chunk, thread_sensitive=False)
        try:
            while (chunk := await pull(self._body)) is not None:
                yield chunk
        finally:
            # Also when the client left: the server's loop finalises this generator.
            await sync_to_async(self._body.close, thread_sensitive=False)()

    def close(self) -> None:
        """Release the body; what ``response.close()`` calls (a no-op once it was read)."""
        self._body.close()


def _next_chunk(body: blocking.BlockingBody) -> bytes | None:
    return next(body, None)


def send_from_storage(
    request: HttpRequest,
    root: str | os.PathLike[str],
    path: str,
    **options: Unpack[SendFileOptions],
) -> HttpResponseBase:
    """Serve the file at an untrusted ``path`` under a trusted ``root``, from a sync view.

    Args:
        request: The view's request.
        root: A local directory, a mount name (``"media"``) or a URL prefix
            (``"s3://bucket/public"``).
        path: The relative path the user asked for (a URL parameter).
        **options: See :class:`SendFileOptions`; ``storage_options`` are for ``root``.

    Returns:
        As :func:`send_file`.

    Raises:
        Http404: ``path`` leaves ``root``, or names no file.

    Security:
        ``..`` segments, absolute paths, backslashes, NUL and control characters and
        percent-encoded separators or dots are answered 404 before any storage is touched; on
        local disk a symbolic link leading out of ``root`` is refused when the file is opened.
    """
    try:
        resolved = _locate(root, path, options)
    except HTTPError as error:
        return _error_response(error)
    return send_file(request, resolved, **options)


def _locate(root: str | os.PathLike[str], path: str, options: SendFileOptions) -> Resolved:
    """``registry.locate(root, path)``.

    Raises:
        HTTPError: ``path`` leaves ``root`` (404).
        sendfs.exceptions.UnknownScheme: ``root`` is a URL nobody serves.
    """
    registry = options.get("registry") or default_registry
    try:
        return registry.locate(root, path, **dict(options.get("storage_options") or {}))
    except SendfsError as exc:
        raise status_error(exc) from exc


# -- async views -----------------------------------------------------------------------------


async def asend_file(
    request: HttpRequest, source: Any, **options: Unpack[SendFileOptions]
) -> HttpResponseBase:
    """Serve ``source`` from an async view, with sendfs's HTTP semantics.

    Under ASGI the source is opened in the server's event loop and the body streams from it
    as the core's async iterator. Under WSGI (Django runs async views in a short-lived loop
    there) this is :func:`send_file` run in a thread.

    Args:
        request: The view's request.
        source: As for :func:`send_file`.
        **options: See :class:`SendFileOptions`.

    Returns:
        As :func:`send_file`.

    Raises:
        Http404: The source is missing.
        PermissionDenied: The storage refused access.
        TypeError: A source that is no source (a text stream...).
        ValueError: An option out of range, or a header with CR, LF or NUL.

    Security:
        As for :func:`send_file`: ``source`` is trusted.
    """
    if not _is_asgi(request):
        sync_send: Callable[..., Awaitable[HttpResponseBase]] = sync_to_async(send_file)
        return await sync_send(request, source, **options)
    try:
        if isinstance(source, FieldFile) or _s3_file_storage(source) is not None:
            # Storages may do I/O, or use the ORM, to open a file: not on the loop.
            prepare: Callable[..., Awaitable[tuple[Download, Fields]]] = sync_to_async(_prepare)
            download, caller = await prepare(source, options)
        else:
            download, caller = _prepare(source, options)
        return await _asend(download, caller, request)
    except HTTPError as error:
        return _error_response(error)


async def _asend(download: Download, caller: Fields, request: HttpRequest) -> HttpResponseBase:
    method = request.method.upper()
    hooks = download.hooks()
    tracker = Tracker(download.source, method) if hooks else None
    try:
        answer = await download.answer(
            method,
            _request_headers(request),
            caller,
            tracker,
            path=request.path,
            query=request.META.get("QUERY_STRING", ""),
        )
        first = await _start(answer)
    except BaseException as exc:
        if tracker is not None:
            tracker.error = exc
            await emit(hooks, tracker.event())
        raise
    if tracker is not None:
        tracker.status = answer.status
    content = _LoopChunks(answer, first, tracker, hooks)
    if answer.body is None:
        if tracker is not None:
            tracker.finished = True
        await content.aclose()
        return _bodyless_response(answer)
    return _streaming_response(answer, content)


async def _start(answer: Answer) -> bytes:
    """The body's first chunk (``b""`` without a body); the answer is closed if it fails."""
    if answer.body is None:
        return b""
    try:
        return await answer.body.start()
    except BaseException:
        await answer.aclose()
        raise


class _LoopChunks:
    """The core's body as Django's ASGI handler takes it: an async iterator on the server loop.

    The iterator releases the answer when it ends, fails, or is closed; a client that leaves
    mid-body makes Django drop the response without ``close()``, and the loop then finalises
    the generator, which releases it too. ``close()`` (called by ``response.close()`` from a
    worker thread, or on the loop by Django's test client) covers a response never iterated.
    """

    def __init__(
        self, answer: Answer, first: bytes, tracker: Tracker | None, hooks: list[DownloadHook]
    ) -> None:
        self._answer = answer
        self._first = first
        self._tracker = tracker
        self._hooks = hooks
        self._loop = asyncio.get_running_loop()
        self._released = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        body = self._answer.body
        try:
            if self._first:
                yield self._counted(self._first)
            if body is not None and not body.whole:
                async for chunk in body:
                    yield self._counted(chunk)
            if self._tracker is not None:
                self._tracker.finished = True
        except Exception as exc:
            if self._tracker is not None:
                self._tracker.error = exc
            raise
        finally:
            await self.aclose()

    def _counted(self, chunk: bytes) -> bytes:
        if self._tracker is not None:
            self._tracker.bytes_sent += len(chunk)
        return chunk

    async def aclose(self) -> None:
        """Release the storage stream and emit the download event (once)."""
        if self._released:
            return
        self._released = True
        await self._answer.aclose()
        if self._tracker is not None:
            await emit(self._hooks, self._tracker.event())

    def close(self) -> None:
        """Schedule :meth:`aclose` on the loop the answer belongs to (from any thread)."""
        if self._released:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nothing left on it to release
            self._loop.call_soon_threadsafe(self._schedule_release)

    def _schedule_release(self) -> None:
        task = self._loop.create_task(self.aclose())
        _pending_cleanups.add(task)
        task.add_done_callback(_pending_cleanups.discard)


async def asend_from_storage(
    request: HttpRequest,
    root: str | os.PathLike[str],
    path: str,
    **options: Unpack[SendFileOptions],
) -> HttpResponseBase:
    """:func:`send_from_storage` for async views.

    Args:
        request: The view's request.
        root: A local directory, a mount name or a URL prefix.
        path: The untrusted relative path.
        **options: See :class:`SendFileOptions`.

    Returns:
        As :func:`send_file`.

    Raises:
        Http404: ``path`` leaves ``root``, or names no file.

    Security:
        As for :func:`send_from_storage`.
    """
    try:
        resolved = _locate(root, path, options)
    except HTTPError as error:
        return _error_response(error)
    return await asend_file(request, resolved, **options)


# -- serve: django.views.static.serve with ranges ----------------------------------------------


def serve(
    request: HttpRequest,
    path: str,
    document_root: str | os.PathLike[str] | None = None,
    show_indexes: bool = False,
    **options: Unpack[SendFileOptions],
) -> HttpResponseBase:
    """A drop-in for ``django.views.static.serve``, with ranges, 304 and 412.

    ::

        from sendfs.django import serve

        urlpatterns = [
            path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
        ]

    Args:
        request: The request.
        path: The path below ``document_root`` (the URL parameter).
        document_root: A local directory, or any sendfs root: a mount name or a URL prefix
            (``"s3://bucket/public"``).
        show_indexes: List directories (paths ending with ``/``) as HTML; a directory asked
            for without its ``/`` is redirected (307) to it.
        **options: See :class:`SendFileOptions` (``max_age``, ``as_attachment``...).

    Returns:
        The file's response, a listing, or a redirect to a directory's ``/``.

    Raises:
        Http404: ``path`` leaves the root, names no file, or a directory without
            ``show_indexes``.
        ImproperlyConfigured: No ``document_root``.

    Security:
        Paths are confined as by :func:`send_from_storage`; listings escape every name.
    """
    if document_root is None:
        raise ImproperlyConfigured("serve() needs a document_root")
    _refuse_running_loop()
    if show_indexes and options.get("signer") is not None:
        raise ImproperlyConfigured(
            "show_indexes lists unsigned links: it does not mix with signer="
        )
    try:
        if show_indexes and (not path or path.endswith("/")):
            return _listing(request, document_root, path, options)
        download, caller = _prepare(_locate(document_root, path, options), options)
        return _send(download, caller, request)
    except HTTPError as error:
        if show_indexes and isinstance(error.__cause__, SourceIsDirectory):
            return _redirect_to_directory(request)
        return _error_response(error)


def _listing(
    request: HttpRequest, root: str | os.PathLike[str], path: str, options: SendFileOptions
) -> HttpResponse:
    """The HTML listing of a directory under ``root``, read on sendfs's loop thread.

    Raises:
        HTTPError: No such directory (404), or the storage failed (502, 503).
    """
    resolved = _locate(root, path, options)
    registry = options.get("registry") or default_registry
    timeout = options.get("storage_timeout", DEFAULT_STORAGE_TIMEOUT)
    try:
        entries = blocking.call(functools.partial(_list, registry, resolved, timeout))
    except SendfsError as exc:
        raise status_error(exc) from exc
    page = render_listing(request.path, entries).encode("utf-8")
    head = request.method.upper() == "HEAD"
    response = HttpResponse(b"" if head else page, content_type="text/html; charset=utf-8")
    response.headers["Content-Length"] = str(len(page))
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


def _redirect_to_directory(request: HttpRequest) -> HttpResponse:
    # One leading slash: "//evil.example" must not become a protocol-relative redirect.
    location = quote("/" + request.path.lstrip("/") + "/")
    query = request.META.get("QUERY_STRING", "")
    response = HttpResponse(b"", status=307, content_type="text/plain; charset=utf-8")
    response.headers["Location"] = f"{location}?{query}" if query else location
    return response
