"""``send_file`` and ``send_from_storage``: the calls endpoints make.

Names follow Flask/Werkzeug and Lilya, so existing code moves over by changing an import.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import SourceNotFound
from ..storages.registry import StorageRegistry
from ..storages.registry import registry as default_registry
from .core import (
    DEFAULT_EXPIRES,
    DEFAULT_SEND_TIMEOUT,
    DEFAULT_STORAGE_TIMEOUT,
    Source,
)
from .errors import http_error
from .file import FileResponse

if TYPE_CHECKING:
    from lilya.background import Task
    from typing_extensions import Never

    from ..events import DownloadHook
    from .links import LinkSigner
    from .offload import Offload

__all__ = ["send_file", "send_from_storage", "send_zip"]

#: Other libraries' keywords for what ``send_file`` takes, with sendfs's name and whose they
#: are. Not aliases: each is refused with a message that names the keyword to use.
_OTHER_NAMES = {
    "media_type": ("mimetype=", "Starlette's name"),
    "filename": (
        "download_name=",
        "Starlette's name; Starlette also defaults to as_attachment=True",
    ),
    "content_disposition_type": (
        "as_attachment=",
        "Starlette's name: as_attachment=True for 'attachment', the default for 'inline'",
    ),
    "path": ("the source as its first argument", "Starlette's name"),
    "filename_or_fp": ("the source as its first argument", "Lilya's name"),
    "path_or_file": ("the source as its first argument", "Flask's name"),
    "cache_timeout": ("max_age=", "Flask's name before 2.0"),
    "add_etags": ("etag=", "Flask's name before 2.0"),
}


def unexpected_keyword(function: str, given: Iterable[str], accepted: Iterable[str]) -> TypeError:
    """The error for keywords a call does not take, naming the keyword it takes instead.

    Other libraries' names (``media_type=``, ``filename=``...) are not aliases: each is refused
    with a message that names sendfs's keyword; a typo gets the closest accepted keyword.

    Args:
        function: The name of the function called, for the message.
        given: The keywords it does not take.
        accepted: The keywords it takes.
    """
    name = sorted(given)[0]
    known = _OTHER_NAMES.get(name)
    if known is not None:
        ours, whose = known
        return TypeError(f"{function}() takes {ours}, not {name}= ({whose})")
    near = difflib.get_close_matches(name, list(accepted), n=1)
    guess = f"; did you mean {near[0]}=?" if near else ""
    return TypeError(f"{function}() got an unexpected keyword argument {name!r}{guess}")


def _keywords(func: Callable[..., Any]) -> list[str]:
    """The named parameters of ``func``."""
    return [
        parameter.name
        for parameter in inspect.signature(func).parameters.values()
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    ]


def send_file(
    source: Source,
    mimetype: str | None = None,
    as_attachment: bool = False,
    attachment_filename: str | None = None,
    max_age: int | None = None,
    deduce_media_type_from_body: bool | None = None,
    *,
    download_name: str | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: datetime | float | None = None,
    storage_options: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    background: Task | None = None,
    registry: StorageRegistry | None = None,
    on_complete: DownloadHook | None = None,
    redirect: bool | Literal["required"] = False,
    expires: int = DEFAULT_EXPIRES,
    size: int | None = None,
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
    storage_timeout: float | None = DEFAULT_STORAGE_TIMEOUT,
    offload: Offload | None = None,
    precompressed: bool | Sequence[str] = False,
    signer: LinkSigner | None = None,
    **unexpected: Never,
) -> FileResponse:
    """Build a response that serves ``source`` with full HTTP semantics.

    The first five parameters keep the order of ``lilya.contrib.responses.files.send_file``,
    so replacing that import keeps positional calls working; the rest are keyword-only, named
    as in Flask/Werkzeug.

    Args:
        source: What to serve: a local path (``str`` or ``os.PathLike``), a binary file object
            (``io.BytesIO``, a spooled temporary file, a file opened with ``"rb"``; served from
            its current position and closed afterwards), a URL: ``file://``, any fsspec
            protocol (``s3://bucket/key``, ``memory://...``) or a named mount (``media://...``),
            an async iterable of bytes (an async generator writing a CSV, say), served as
            it is produced, once, without ranges or validators, or what
            ``registry.locate(root, user_path)`` returned (confined to ``root``).
        mimetype: The Content-Type; guessed from the download name, the source's name, then
            the storage's record, else ``application/octet-stream``. ``text/*`` types get
            ``charset=utf-8``.
        as_attachment: Ask the browser to save the file (``Content-Disposition: attachment``)
            rather than show it (``inline``).
        attachment_filename: Lilya's name for ``download_name``.
        max_age: Seconds caches may reuse the response (``Cache-Control: public, max-age=N``);
            ``None`` sends ``no-cache`` (cache, but revalidate: conditional requests get 304).
        deduce_media_type_from_body: Lilya's option: when no ``mimetype`` is given, sniff
            the type from the first 2 KiB with ``python-magic`` (which must be installed).
        download_name: The file name the browser saves as; by default the source's name.
            Non-ASCII names are sent as an RFC 8187 ``filename*`` with an ASCII fallback.
        conditional: Answer conditional and range requests (304, 412, 206, 416). Off, every
            GET is a plain 200.
        etag: ``True`` uses the storage's entity tag (S3 ETag, or one derived from inode,
            mtime and size); ``False`` sends none; a string is used as the tag.
        last_modified: Overrides the storage's modification time (datetime or timestamp).
        storage_options: Options for the backend, e.g. ``{"endpoint_url": ...}`` for S3.
        chunk_size: Bytes per read and per ASGI message; by default 256 KiB for files and
            1 MiB for S3.
        status_code: The status of a full response. Anything but 200 turns conditional and
            range handling off; 204, 205, 206, 304 and 416 are refused (they cannot carry a
            whole file).
        headers: Extra response headers (override computed ones, not the framing fields;
            ETag and Last-Modified go through ``etag=`` and ``last_modified=`` instead).
        background: A task to run after the response is sent.
        registry: The storage registry to resolve ``source`` with (default: the global one).
        on_complete: Called with a :class:`~sendfs.events.DownloadEvent` once the response is
            over (complete, aborted or failed), before the registry's own hook; for metering
            and audit. Sync or async; errors it raises are logged, never sent to the client.
        redirect: ``True``: when the storage can presign the object (S3, Azure with a key),
            answer GET and HEAD with ``307 Temporary Redirect`` to a presigned URL that makes
            the storage answer with this response's Content-Type and Content-Disposition, so
            the bytes never pass through the app; other sources are streamed as usual.
            ``"required"``: never stream; raise
            :class:`~sendfs.exceptions.RedirectUnavailable` instead. Conditional requests are
            still answered by the app (304, 412), without a round trip to the storage's URL.
        expires: Lifetime of the presigned URL, in seconds (1 to 604800, S3's maximum).
        size: For an async iterable ``source``: the exact number of bytes it yields, sent as
            Content-Length (a producer that yields more or fewer aborts the connection).
            Without it, the body is sent chunked.
        send_timeout: Seconds one body message (at most one chunk) may wait for the client
            to take the data before it (nginx's ``send_timeout``, 60 by default). A client
            that stopped reading is cut off then, and the storage stream (an S3 connection)
            released. A client must read about 1 MB per ``send_timeout`` (what the server's
            socket buffers hold) to count as reading.
            ``None`` waits for ever.
        storage_timeout: Seconds the storage may take to start answering a read: a free
            connection in its pool, then its first bytes (10 by default). Before the first
            byte the answer is then ``503 Service Unavailable`` with ``Retry-After``, after
            it the connection is aborted. ``None`` waits for ever.
        offload: Let a front server send the bytes: :class:`~sendfs.XAccelRedirect` (nginx)
            or :class:`~sendfs.XSendfile` (Apache, lighttpd). The app opens the source,
            answers 404 for a missing one and sets Content-Type, Content-Disposition and
            Cache-Control; the front server sends the body and answers Range and
            conditional requests. See the Scaling out guide.
        precompressed: Serve ``name.br`` or ``name.gz`` beside a path or URL source when
            it exists and the client accepts its encoding (``True`` for Brotli then gzip,
            or a sequence such as ``("zstd", "br", "gzip")``), with ``Content-Encoding`` and
            ``Vary: Accept-Encoding``. Off by default: each encoding tried costs one open.
        signer: Answer only requests whose URL carries a valid, unexpired signature from
            this :class:`~sendfs.LinkSigner` (minted with ``signer.sign(path)``); any other
            is refused with 403 before the storage is touched.
        **unexpected: Nothing else is taken (a type checker flags any other keyword). Other
            libraries' names raise a ``TypeError`` naming sendfs's: Starlette's
            ``media_type=`` is ``mimetype=``, ``filename=`` is ``download_name=``,
            ``content_disposition_type=`` is ``as_attachment=``; Flask 1's
            ``cache_timeout=`` is ``max_age=``. They are deliberately not aliases: one name per
            option keeps calls searchable and reviews short (``attachment_filename`` stays
            only because Lilya's positional order needs it). Other typos get a "did you mean".

    Returns:
        A :class:`~sendfs.responses.FileResponse`; nothing is opened or read until it is
        called by the server. The source's backend is found now: an unknown URL scheme or a
        missing package (``s3://`` without s3fs) raises here, not at the first request.

    Raises:
        TypeError: ``source`` is a text stream or not a source at all; both
            ``download_name`` and ``attachment_filename`` are given; a keyword
            ``send_file`` does not take (the message names the one it takes).
        ValueError: An option is out of range or a header value contains CR/LF/NUL.
        sendfs.exceptions.RedirectUnavailable: ``redirect="required"`` for a local path or a
            file object, which no storage can presign.
        sendfs.exceptions.UnknownScheme: No backend serves the URL's scheme (the message
            suggests near ones: ``s4://`` gets ``'s3'``).
        sendfs.exceptions.MissingDependency: The backend's optional package is missing (the
            message says what to ``pip install``), or python-magic for
            ``deduce_media_type_from_body``.

    Security:
        ``source`` is trusted: never build it from request data. To serve a user-chosen file
        from a directory or bucket, use ``send_from_storage``, which refuses paths that
        leave their root. The download name and header values are sanitised, so they can
        come from users.
    """
    if unexpected:
        raise unexpected_keyword("send_file", unexpected, _keywords(send_file))
    if download_name is not None and attachment_filename is not None:
        raise TypeError("pass download_name or its alias attachment_filename, not both")
    return FileResponse(
        source,
        status_code=status_code,
        headers=headers,
        media_type=mimetype,
        background=background,
        filename=download_name or attachment_filename,
        content_disposition_type="attachment" if as_attachment else "inline",
        etag=etag,
        last_modified=last_modified,
        max_age=max_age,
        conditional=conditional,
        chunk_size=chunk_size,
        storage_options=storage_options,
        registry=registry,
        sniff_media_type=bool(deduce_media_type_from_body),
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


def send_from_storage(
    root: str | os.PathLike[str],
    path: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    registry: StorageRegistry | None = None,
    **options: Any,
) -> FileResponse:
    """Serve the file at an untrusted ``path`` under a trusted ``root``, safely.

    Args:
        root: A mount name (``"media"``), a local directory, or a URL prefix
            (``"s3://bucket/public"``).
        path: The relative path the user asked for (e.g. a path parameter).
        storage_options: Options for the backend of ``root``.
        registry: The storage registry (default: the global one).
        **options: Any other :func:`send_file` option (``as_attachment``, ``max_age``...).

    Returns:
        The response; a path that tries to leave ``root`` raises a 404 ``HTTPException`` here,
        before any storage is touched.

    Security:
        ``..`` segments, absolute paths, backslashes, NUL and control characters,
        percent-encoded separators or dots, Windows drive letters and device names are all
        refused (answered 404, like a missing file). ``/srv/files`` never reaches
        ``/srv/files-private``. On local disk a symbolic link that resolves outside ``root``
        is refused when the file is opened.
    """
    reg = registry or default_registry
    try:
        resolved = reg.locate(root, path, **dict(storage_options or {}))
    except SourceNotFound as exc:
        raise http_error(exc) from exc
    return send_file(resolved, registry=reg, **options)


def send_zip(
    entries: Mapping[str, Any] | Iterable[tuple[str, Any]],
    download_name: str = "export.zip",
    *,
    compress: bool = False,
    force_zip64: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    headers: Mapping[str, str] | None = None,
    background: Task | None = None,
    registry: StorageRegistry | None = None,
    on_complete: DownloadHook | None = None,
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
    storage_timeout: float | None = DEFAULT_STORAGE_TIMEOUT,
) -> FileResponse:
    """Stream a ZIP archive of any sources, as an attachment, in constant memory.

    Args:
        entries: Archive name to source, as a mapping or ``(name, source)`` pairs, in archive
            order. A source is anything :func:`send_file` takes (paths, binary file objects,
            storage URLs, async iterables of bytes), or a
            :class:`~sendfs.storages.archive.ZipEntry` with per-entry options (the size of an
            async iterable, a modification time, compression).
        download_name: The file name the browser saves.
        compress: Deflate every entry. By default entries are stored: with every size known,
            the response has an exact Content-Length and browsers show progress.
        force_zip64: Use ZIP64 fields even when no size or offset needs them.
        storage_options: Options for the backends of the entries' sources.
        chunk_size: Bytes per ASGI message (about).
        headers: Extra response headers.
        background: A task to run after the response is sent.
        registry: The registry that opens the entries (default: the global one).
        on_complete: A download hook (see :mod:`sendfs.events`).
        send_timeout: As for :func:`send_file`.
        storage_timeout: As for :func:`send_file`; it bounds opening the entries and the
            first read.

    Returns:
        A response with ``Content-Type: application/zip``. Every entry is opened once for its
        metadata before the first byte: a missing one answers 404, like a missing file.
        After the first byte, an entry that fails or changes size aborts the connection.

    Raises:
        ValueError: An unsafe or duplicate archive name (absolute, ``..``, backslashes,
            control characters), or a bad option.
        TypeError: A name that is not a string.

    Security:
        Archive names are checked so the archive extracts safely anywhere ("zip slip"), but
        sources are trusted: build them from request data only through
        ``registry.locate(root, user_path)``, whose result is a source, as
        :func:`send_from_storage` does.
    """
    from ..storages.archive import ZipArchive  # the zip writer loads with the first archive

    archive = ZipArchive(
        entries,
        compress=compress,
        force_zip64=force_zip64,
        storage_options=storage_options,
        name=download_name,
    )
    return FileResponse(
        archive,
        headers=headers,
        media_type="application/zip",
        background=background,
        filename=download_name,
        content_disposition_type="attachment",
        chunk_size=chunk_size,
        registry=registry or default_registry,
        on_complete=on_complete,
        send_timeout=send_timeout,
        storage_timeout=storage_timeout,
    )
