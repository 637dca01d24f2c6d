"""The HTTP core, framework-free: a prepared download answers requests.

:class:`Download` holds a source and its options, validated once when it is built (every face,
and a direct ``FileResponse(...)``, goes through it). :meth:`Download.answer` turns (method,
request headers, the caller's fields) into an :class:`Answer`: a status, the header fields
and a body, which is nothing, a stream of chunks, or a local file a server may send itself.
The faces (Lilya, Starlette, Flask, Django, Litestar) only translate an answer into their
framework's response and send it; no face decides anything about HTTP.

Failures before the first byte are raised as :class:`~sendfs.responses.errors.HTTPError`
(404, 403, 502, 503), which each face turns into its framework's exception. After the first
byte, the body raises :class:`~sendfs.exceptions.BackendError` and the face aborts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, TypeAlias, cast

import anyio

from ..events import DownloadHook, Tracker, describe_source
from ..exceptions import (
    BackendError,
    MissingDependency,
    RedirectUnavailable,
    SendfsError,
    SourceForbidden,
    SourceNotFound,
    StorageBusy,
)
from ..storages.base import (
    DEFAULT_CHUNK_SIZE,
    MAX_EXPIRES,
    FileInfo,
    ReadHint,
    Resource,
    SignableResource,
    check_expires,
)
from ..storages.metadata import to_utc_datetime, unquote_etag
from ..storages.paths import shorten
from ..storages.registry import Resolved, StorageRegistry
from ..storages.registry import registry as default_registry
from ..storages.streams import GeneratedSource, Stream, is_async_iterable
from .conditional import Validators
from .encodings import SUFFIXES, accepted_encodings, check_encodings
from .errors import HTTPError, status_error
from .fields import (
    Fields,
    disposition_value,
    empty_status_fields,
    given_media_type,
    not_modified_fields,
    redirect_fields,
    representation_fields,
    with_encoding,
)
from .headers import content_type, is_token
from .links import LinkSigner
from .offload import Offload, XAccelRedirect, XSendfile, bind_root, local_target, offload_fields
from .plan import Plan, decide, read_hint

__all__ = [
    "DEFAULT_EXPIRES",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_STORAGE_TIMEOUT",
    "MAX_EXPIRES",
    "Answer",
    "BinaryFile",
    "Body",
    "Download",
    "Source",
    "caller_fields",
    "check_expires",
    "check_headers",
    "check_timeout",
    "closing_iterator",
]

logger = logging.getLogger("sendfs")

#: Lifetime of presigned redirect URLs when the caller does not say, in seconds.
DEFAULT_EXPIRES = 300

#: How long one body message may wait for the client to take the previous ones, in seconds
#: (nginx's ``send_timeout``). A message is at most one chunk.
DEFAULT_SEND_TIMEOUT = 60.0

#: How long the storage may take to start answering a read (a free connection in its pool,
#: then its first bytes), in seconds.
DEFAULT_STORAGE_TIMEOUT = 10.0

#: How much of the body python-magic sees when the media type is sniffed.
SNIFF_LENGTH = 2048

#: Statuses whose semantics forbid or redefine the body a download frames.
_BODYLESS_STATUSES = frozenset({204, 205, 206, 304, 416})
#: Validators in ``headers`` would disagree with what preconditions are evaluated against.
_VALIDATOR_FIELDS = {"etag": "etag=", "last-modified": "last_modified="}
_UNSAFE_HEADER_CHARACTERS = ("\x00", "\r", "\n")


# -- what can be served ----------------------------------------------------------------------


class BinaryFile(Protocol):
    """A binary file object: ``io.BytesIO``, a file opened ``"rb"``, a spooled temporary file.

    Only ``read`` is required; ``seek``, ``tell`` and ``fileno``, when present, give ranges
    and a size. A text stream (``read`` returns ``str``) is not one.
    """

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes (all of them for ``-1``)."""
        ...


#: What ``send_file``, ``FileResponse`` and :class:`Download` serve: a local path, a URL
#: (``s3://bucket/key``, a mount), a binary file object, an async iterable of bytes (or
#: ``bytearray`` / ``memoryview`` pieces), what ``registry.locate`` returned, or a generated
#: source (:class:`~sendfs.storages.streams.Stream`, a ZIP archive). Text streams and sync
#: iterables are not sources; a type checker says so before the runtime ``TypeError`` does.
Source: TypeAlias = (
    str
    | os.PathLike[str]
    | BinaryFile
    | AsyncIterable[bytes | bytearray | memoryview]
    | Resolved
    | Stream
    | GeneratedSource
)


# -- validation ------------------------------------------------------------------------------


def check_headers(headers: Mapping[str, str] | None) -> None:
    """Refuse caller fields that would split the response or contradict the validators.

    Args:
        headers: The caller's extra response fields.

    Raises:
        ValueError: A name or value holds CR, LF or NUL, or sets ETag or Last-Modified
            (which the ``etag=`` and ``last_modified=`` options set).
    """
    for name, value in (headers or {}).items():
        if any(bad in f"{name}{value}" for bad in _UNSAFE_HEADER_CHARACTERS):
            raise ValueError(f"header {name!r} contains CR, LF or NUL")
        option = _VALIDATOR_FIELDS.get(name.lower())
        if option is not None:
            raise ValueError(f"set {name} with the {option} option, not in headers")


def check_timeout(name: str, value: float | None) -> None:
    """Refuse a timeout that is not a positive number of seconds or ``None``.

    Args:
        name: The option's name, for the message.
        value: Its value.

    Raises:
        ValueError: ``value`` is zero, negative or not a number.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")


def _check_positive(name: str, value: int | None, *, zero: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} int")


def _check_status(status_code: int) -> None:
    if not 200 <= status_code <= 599 or status_code in _BODYLESS_STATUSES:
        raise ValueError(f"status_code {status_code} cannot carry a whole file")


def _check_etag(etag: bool | str) -> bool | str:
    if isinstance(etag, bool):
        return etag
    bare = unquote_etag(etag)
    if bare is None or etag.strip().startswith("W/"):
        raise ValueError(
            f"etag {etag!r} is not a strong entity tag (printable ASCII, no quotes, no W/): "
            "sendfs serves exact bytes, so its tags are strong"
        )
    return bare


def _check_last_modified(value: datetime | float | None) -> datetime | None:
    if value is None:
        return None
    moment = to_utc_datetime(value)
    if moment is None:
        raise TypeError(f"last_modified must be a datetime or a POSIX timestamp, not {value!r}")
    return moment


def _check_redirect(redirect: object, expires: int, status_code: int) -> None:
    if redirect not in (False, True, "required"):
        raise ValueError(f"redirect must be True, False or 'required', not {redirect!r}")
    check_expires(expires)
    if redirect and status_code != 200:
        raise ValueError("a redirect answers 307: status_code must stay 200")


# -- the answer ------------------------------------------------------------------------------


class Body:
    """The bytes of an answer, read from the storage as the face sends them.

    :meth:`start` reads the first chunk (a failure there is still an HTTP error); iterating
    then yields the rest. A body that would pass its length, or ends short of it, raises
    :class:`~sendfs.exceptions.BackendError` before the offending chunk or the end, so the face
    aborts whatever the server checks itself.

    Args:
        chunks: The storage's chunks; closed by :meth:`aclose`.
        length: The body's length (its Content-Length), when known.
        download: The download, for its storage deadline.
    """

    def __init__(self, chunks: AsyncIterator[bytes], length: int | None, download: Download):
        self.length = length
        self._chunks = chunks
        self._download = download
        self._sent = 0
        #: Whether the first chunk was the whole body (the face may send it as the last one).
        self.whole = False

    async def start(self) -> bytes:
        """Read the first chunk (``b""`` for an empty body).

        Raises:
            HTTPError: The storage failed, or did not start answering within
                ``storage_timeout``: nothing was sent yet.
        """
        try:
            with self._download.storage_deadline("reading"):
                first = await anext(self._chunks, b"")
            self._sent = len(first)
            if self.length is not None and len(first) >= self.length:
                self._check_more(len(first))
                if await anext(self._chunks, None) is not None:
                    self._check_more(self.length + 1)
                self.whole = True
        except SendfsError as exc:
            raise status_error(exc) from exc
        return first

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._rest()

    async def _rest(self) -> AsyncIterator[bytes]:
        if self.whole:
            return
        async for chunk in self._chunks:
            self._sent += len(chunk)
            self._check_more(self._sent)
            yield chunk
        if self.length is not None and self._sent != self.length:
            raise BackendError(f"the source ended after {self._sent} of its {self.length} bytes")

    def _check_more(self, sent: int) -> None:
        if self.length is not None and sent > self.length:
            raise BackendError(f"the source sent more than its {self.length} bytes")

    async def aclose(self) -> None:
        """Close the storage's chunks (their ``finally`` runs now: handles, S3 bodies)."""
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()


class Answer:
    """What to send: a status, the header fields and, for a 200 or 206 GET, a body.

    Args:
        status: The status code.
        headers: The fields, lower-case names (see :mod:`sendfs.responses.fields`).
        body: The bytes to send; ``None`` for HEAD, 304, 307, 412 and 416.
        path: For a full answer from a local file that may be opened again by name, its
            path, which a server that sends files itself (``http.response.pathsend``) may use
            instead of the body. ``None`` for a file confined to a root: a rename between the
            two opens could lead the name out of the root.
        resource: The opened source, closed by :meth:`aclose`.
        whole_file: Whether the body is the whole of the resource's open local file, which a
            WSGI server may send from a duplicate of its descriptor
            (:meth:`file_descriptor`, ``wsgi.file_wrapper``): no name is opened again, so
            this holds for confined files too.
    """

    def __init__(
        self,
        status: int,
        headers: Fields,
        body: Body | None = None,
        *,
        path: str | None = None,
        resource: Resource | None = None,
        whole_file: bool = False,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.path = path
        self.resource = resource
        self.whole_file = whole_file
        self._closed = False

    def file_descriptor(self) -> int | None:
        """The open descriptor of a :attr:`whole_file` body, for ``wsgi.file_wrapper``.

        The caller duplicates it (``os.dup``): this one is closed by :meth:`aclose`.
        """
        fileno = getattr(self.resource, "fileno", None)
        return fileno() if callable(fileno) and self.whole_file else None

    async def aclose(self) -> None:
        """Release the body and the resource (once), even when the request was cancelled.

        The resource is closed even when closing the body fails.
        """
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                if self.body is not None:
                    await self.body.aclose()
            finally:
                if self.resource is not None:
                    await self.resource.aclose()


class Download:
    """A source with its options, validated: it answers any number of requests.

    Args:
        source: A local path, a binary file object, a URL (``s3://bucket/key``, a mount),
            an async iterable of bytes, or what ``registry.locate`` returned.
        status_code: The status of a full answer; anything but 200 turns off conditional and
            range handling (the body is then not "the representation").
        media_type: The Content-Type; by default guessed from ``filename``, then the source's
            name, then what the storage recorded, else ``application/octet-stream``.
        filename: The download name for Content-Disposition.
        disposition: ``"attachment"``, ``"inline"``, or ``None`` for inline with the name
            when one is known.
        etag: ``True`` for the storage's tag, ``False`` for none, or a strong tag of your own.
        last_modified: Overrides the storage's modification time.
        max_age: Cache-Control ``public, max-age=N``; ``None`` sends ``no-cache``.
        conditional: Answer conditional requests (304 / 412) and honour Range.
        chunk_size: Bytes per read; by default what suits the backend.
        storage_options: Options for the backend (fsspec storage options).
        registry: The storage registry; by default :data:`sendfs.storages.registry`.
        sniff_media_type: Without ``media_type``, read the first 2 KiB and let python-magic
            name the type (one extra read).
        on_complete: A hook called with a :class:`~sendfs.events.DownloadEvent` when the
            response is over; the registry's ``on_complete`` hook, if any, runs after it.
        redirect: ``True`` answers ``307`` to a presigned storage URL when the storage can
            sign, else streams; ``"required"`` raises
            :class:`~sendfs.exceptions.RedirectUnavailable` instead of streaming.
        expires: Lifetime of a presigned URL in seconds.
        size: For an async iterable source, the exact number of bytes it yields.
        send_timeout: Seconds one body message may wait for the client (the faces' senders
            apply it); ``None`` waits for ever.
        storage_timeout: Seconds the storage may take to start answering each read: a 503
            with ``Retry-After`` before the first byte, an abort after. ``None`` waits for ever.
        offload: Let a front server send the bytes (:class:`~sendfs.XAccelRedirect` for
            nginx, :class:`~sendfs.XSendfile` for Apache and lighttpd); by default the
            offload of the mount the source is under, if any. The front server then answers
            Range and conditional requests from its own validators.
        precompressed: Serve ``name.br`` / ``name.gz`` beside the source, when it exists and
            the client accepts that encoding, with ``Content-Encoding`` and
            ``Vary: Accept-Encoding``: ``True`` for Brotli then gzip, or the encodings in
            order of preference (``("zstd", "br", "gzip")``). Each sibling is a file of its
            own: its own ETag, and ranges count its encoded bytes.
        signer: Answer only requests whose URL carries a valid, unexpired signature from this
            :class:`~sendfs.LinkSigner` (else 403); the faces pass the request's path and
            query.

    Raises:
        TypeError: ``source`` is a text stream or no source at all, or ``size=`` for a source
            that is not an async iterable.
        ValueError: An option out of range.
        sendfs.exceptions.RedirectUnavailable: ``redirect="required"`` for a source only the
            app can send (a local path, a file object, a stream).
        sendfs.exceptions.UnknownScheme: No backend serves the URL's scheme.
        sendfs.exceptions.MissingDependency: The backend's optional package is missing, or
            python-magic for ``sniff_media_type``.
        HTTPError: A mount path that climbs out of its mount (a 404).
    """

    def __init__(
        self,
        source: Source,
        *,
        status_code: int = 200,
        media_type: str | None = None,
        filename: str | None = None,
        disposition: Literal["attachment", "inline"] | str | None = None,
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
        from ..storages.fileobj import check_binary_file, is_file_object

        if is_file_object(source):
            check_binary_file(source)
        if size is not None:
            if not is_async_iterable(source):
                raise TypeError(
                    "size= is for async iterable sources; other sources know their size"
                )
            _check_positive("size", size, zero=True)
            source = Stream(cast("AsyncIterable[Any]", source), size=size)
        if disposition is not None and not is_token(disposition):
            raise ValueError(f"{disposition!r} is not a disposition type")
        self.registry = registry or default_registry
        self.storage_options = dict(storage_options or {})
        try:
            resolved = self.registry.resolve(source, **self.storage_options)
        except SourceNotFound as exc:  # a mount path that climbs out: a plain 404
            raise status_error(exc) from exc
        _check_redirect(redirect, expires, status_code)
        if redirect == "required" and self.registry.serves_locally(resolved):
            raise RedirectUnavailable(
                "redirect='required' needs a storage that can presign URLs (s3://, az://...); "
                "local paths, file objects and streams can only be sent by the app"
            )
        if sniff_media_type and importlib.util.find_spec("magic") is None:
            raise MissingDependency(
                "sniffing the media type needs python-magic: pip install python-magic"
            )
        _check_positive("max_age", max_age, zero=True)
        _check_positive("chunk_size", chunk_size, zero=False)
        _check_status(status_code)
        check_timeout("send_timeout", send_timeout)
        check_timeout("storage_timeout", storage_timeout)
        self.source = source
        self.status_code = status_code
        self.media_type = media_type
        self.filename = filename
        self.disposition = disposition
        self.etag = _check_etag(etag)
        self.last_modified = _check_last_modified(last_modified)
        self.max_age = max_age
        self.conditional = conditional
        self.chunk_size = chunk_size
        self.sniff_media_type = sniff_media_type
        self.on_complete = on_complete
        self.redirect = redirect
        self.expires = expires
        self.send_timeout = send_timeout
        self.storage_timeout = storage_timeout
        self.resolved = resolved
        self.encodings = self._check_precompressed(precompressed)
        self.offload = self._check_offload(offload if offload is not None else resolved.offload)
        if signer is not None and not isinstance(signer, LinkSigner):
            raise TypeError(f"signer must be a sendfs.LinkSigner, not {type(signer).__name__}")
        self.signer = signer

    def _check_precompressed(self, precompressed: bool | Sequence[str]) -> tuple[str, ...]:
        encodings = check_encodings(precompressed)
        if not encodings:
            return encodings
        named = isinstance(self.resolved.target, str) and (
            self.registry.local_path(self.resolved) is not None
            or not self.registry.serves_locally(self.resolved)
        )
        if not named:
            raise ValueError(
                "precompressed= finds siblings by name: the source must be a path or URL"
            )
        if self.redirect:
            raise ValueError("precompressed siblings are sent by the app: not with redirect=")
        return encodings

    def _check_offload(self, offload: Offload | None) -> Offload | None:
        if offload is None:
            return None
        if not isinstance(offload, XAccelRedirect | XSendfile):
            raise TypeError(f"offload must be an XAccelRedirect or XSendfile, not {offload!r}")
        offload = bind_root(offload, self.resolved.options.get("root"))
        if self.status_code != 200 or not self.conditional:
            raise ValueError("an offloaded answer is a plain 200: keep status_code and conditional")
        if isinstance(self.etag, str) or self.last_modified is not None:
            raise ValueError(
                "with offload= the front server sends its own validators: etag= and "
                "last_modified= do not apply"
            )
        if self.encodings:
            raise ValueError(
                "precompressed= and offload= do not mix: let the front server pick siblings "
                "(nginx: gzip_static on, brotli_static on)"
            )
        path = self.registry.local_path(self.resolved)
        if path is not None:
            if isinstance(offload, XAccelRedirect) and offload.location is None:
                raise ValueError(
                    "XAccelRedirect(remote=) hands objects of a storage to nginx: a local file "
                    "needs location= (an internal location serving its root)"
                )
            local_target(offload, path)  # an nginx location without a root fails now
        elif self.registry.serves_locally(self.resolved):
            raise ValueError("offload= is for files and objects: only the app can send this source")
        elif isinstance(offload, XSendfile) or offload.remote is None:
            raise ValueError(
                "a front server cannot open an object in a storage: offload it with "
                "XAccelRedirect(remote=...), through nginx"
            )
        return offload

    def __repr__(self) -> str:
        return f"<Download {describe_source(self.source)}>"

    @property
    def plain(self) -> bool:
        """Whether preconditions and ranges apply (a 200 answer, conditional on)."""
        return self.conditional and self.status_code == 200

    def hooks(self) -> list[DownloadHook]:
        """The ``on_complete`` hooks to run: this download's, then the registry's."""
        registry_hook = getattr(self.registry, "on_complete", None)
        return [hook for hook in (self.on_complete, registry_hook) if hook is not None]

    # -- answering ----------------------------------------------------------------------

    async def answer(
        self,
        method: str,
        headers: Mapping[str, str],
        caller: Fields,
        tracker: Tracker | None = None,
        *,
        path: str | None = None,
        query: str | bytes = "",
    ) -> Answer:
        """Open the source and decide the answer to one request.

        Args:
            method: The request method, upper case.
            headers: The request's fields: lower-case names, repeats joined with ``, ``.
            caller: The caller's response fields (lower-case names), which override the
                computed ones except the framing fields.
            tracker: Filled with what the answer carries, for download events.
            path: The request's URL path, decoded (what a :class:`~sendfs.LinkSigner`
                signed); required when the download has a ``signer``.
            query: The request's raw query string.

        Returns:
            The answer; the caller sends it and then calls :meth:`Answer.aclose`.

        Raises:
            HTTPError: The source is missing, forbidden or failed (404, 403, 502, 503), or
                the link's signature is missing, expired or wrong (403, before any I/O).
            sendfs.exceptions.RedirectUnavailable: ``redirect="required"`` and the storage
                cannot sign with its credentials.
        """
        self._check_link(path, query)
        resource, encoding, identity = await self._open_encoded(method, headers, caller)
        try:
            return await self._decide(
                resource, method, headers, caller, tracker, encoding, identity
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await resource.aclose()
            raise

    async def _decide(
        self,
        resource: Resource,
        method: str,
        headers: Mapping[str, str],
        caller: Fields,
        tracker: Tracker | None,
        encoding: str | None,
        identity: FileInfo,
    ) -> Answer:
        info = resource.info
        name, stored_type = identity.name, identity.content_type
        validators = self._validators(info)
        media_type = self._media_type(name, stored_type, caller)
        if tracker is not None:
            tracker.size = info.size
            tracker.download_name = self.filename or name
            tracker.content_type = media_type
        sniffed: str | None = None
        if self.offload is not None:  # the front server answers: the type is needed now
            if sniffed := await self._sniff(resource, caller):
                media_type = self._media_type(name, stored_type, caller, sniffed)
            offloaded = await self._offloaded(resource, method, name, media_type, caller)
            if offloaded is not None:
                return offloaded
        plan = self._plan(method, headers, info, validators, media_type)
        if (
            sniffed is None
            and plan.status not in (304, 412)
            and encoding is None  # the encoded bytes say nothing of the type
            and (sniffed := await self._sniff(resource, caller))
        ):
            # Sniffing reads the body's start: only for answers that carry the type.
            media_type = self._media_type(name, stored_type, caller, sniffed)
            plan = self._plan(method, headers, info, validators, media_type)
        if tracker is not None:
            tracker.ranges = tuple((r.start, r.stop) for r in plan.ranges)
            tracker.content_type = media_type
        disposition = disposition_value(self.disposition, self.filename, name, media_type)
        vary = bool(self.encodings)
        if self.redirect and plan.status in (200, 206, 416):
            location = await self._presigned(resource, media_type, disposition)
            if location is not None:
                return Answer(307, redirect_fields(location, caller), resource=resource)
        if plan.status == 304:
            fields = not_modified_fields(validators, self.max_age, caller)
            return Answer(304, with_encoding(fields, None, vary=vary), resource=resource)
        if plan.status in (412, 416):
            fields = empty_status_fields(plan.status, info.size)
            return Answer(plan.status, with_encoding(fields, None, vary=vary), resource=resource)
        fields = representation_fields(
            plan,
            size=info.size,
            validators=validators,
            max_age=self.max_age,
            ranges_ok=info.size is not None and info.seekable and self.plain,
            media_type=media_type,
            disposition=disposition,
            caller=caller,
        )
        fields = with_encoding(fields, encoding, vary=vary)
        status = self.status_code if plan.status == 200 else plan.status
        if method == "HEAD":
            return Answer(status, fields, resource=resource)
        body = self._body(resource, plan, info)
        whole = not plan.ranges and callable(getattr(resource, "fileno", None))
        path = _local_path(resource) if whole else None
        return Answer(status, fields, body, path=path, resource=resource, whole_file=whole)

    def _body(self, resource: Resource, plan: Plan, info: FileInfo) -> Body:
        suggested: int = getattr(resource, "chunk_size_hint", DEFAULT_CHUNK_SIZE)
        chunk_size = self.chunk_size or suggested
        if plan.multipart is not None:
            chunks = self._multipart_chunks(resource, plan, chunk_size)
            return Body(chunks, plan.multipart.content_length, self)
        start, stop = (plan.ranges[0].start, plan.ranges[0].stop) if plan.ranges else (0, None)
        length = info.size if stop is None else stop - start
        return Body(resource.iter_range(start, stop, chunk_size), length, self)

    async def _multipart_chunks(
        self, resource: Resource, plan: Plan, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """The multipart body; each part's header travels with the part's first data chunk.

        Raises:
            BackendError: A range yielded more or fewer bytes than it spans (its part would
                carry another part's bytes under its own header).
            StorageBusy: The storage took longer than ``storage_timeout`` to start a part.
        """
        assert plan.multipart is not None
        for byte_range, part_header in zip(plan.ranges, plan.multipart.parts, strict=True):
            pending = part_header
            received = 0
            async with closing_iterator(
                resource.iter_range(byte_range.start, byte_range.stop, chunk_size)
            ) as chunks:
                with self.storage_deadline("reading"):  # each part is a request of its own
                    opening = await anext(chunks, None)
                async for chunk in _prepend(opening, chunks):
                    received += len(chunk)
                    yield pending + chunk if pending else chunk
                    pending = b""
            if received != len(byte_range):
                raise BackendError(
                    f"the source sent {received} bytes for a range of {len(byte_range)}"
                )
        yield plan.multipart.closing

    # -- opening ------------------------------------------------------------------------

    def _check_link(self, path: str | None, query: str | bytes) -> None:
        """Refuse a request whose link is not signed by :attr:`signer` (no I/O yet).

        Raises:
            HTTPError: 403: the signature is missing, malformed, expired or wrong.
            TypeError: The face did not pass the request's path.
        """
        if self.signer is None:
            return
        if path is None:
            raise TypeError("a download with signer= needs the request's path and query")
        reason = self.signer.check(path, query)
        if reason is not None:
            # Client-made: DEBUG, as for a 404.
            logger.debug("sendfs: HTTP 403: %s signed link for %r", reason, shorten(path, 200))
            raise HTTPError(403)

    async def _open_encoded(
        self, method: str, headers: Mapping[str, str], caller: Fields
    ) -> tuple[Resource, str | None, FileInfo]:
        """Open the best precompressed sibling the client accepts, else the source itself.

        The source is opened first: a sibling is served only beside its file (an uploaded
        ``evil.html.gz`` alone is no HTML page) and only when it is not older than the file
        (a stale sibling). Each sibling tried then costs one open (a ``stat``, an S3 HEAD).

        Returns:
            The resource to send, its content coding (``None`` for the file itself), and the
            file's own metadata, whose name and stored type the answer carries.
        """
        accepted = []
        if self.encodings and method in ("GET", "HEAD"):
            accepted = accepted_encodings(headers.get("accept-encoding"), self.encodings)
        if not accepted:
            resource = await self._open(method, headers, caller, self.source)
            return resource, None, resource.info
        original = await self._open_with(None, self.source)  # the bytes may be a sibling's
        try:
            for encoding in accepted:
                sibling = await self._open_sibling(encoding, original.info)
                if sibling is not None:
                    with anyio.CancelScope(shield=True):
                        await original.aclose()
                    return sibling, encoding, original.info
        except BaseException:
            with anyio.CancelScope(shield=True):
                await original.aclose()
            raise
        return original, None, original.info

    async def _open_sibling(self, encoding: str, original: FileInfo) -> Resource | None:
        """The sibling of ``encoding`` (``name.br``...), unless missing or older than the file."""
        target = self.resolved.target + SUFFIXES[encoding]
        source = dataclasses.replace(self.resolved, target=target)
        try:
            resource = await self._open_with(None, source, sibling=True)
        except (SourceNotFound, SourceForbidden):
            return None  # no such sibling (or a directory)
        mtime, file_mtime = resource.info.mtime, original.mtime
        if mtime is not None and file_mtime is not None and mtime < file_mtime:
            with anyio.CancelScope(shield=True):
                await resource.aclose()
            return None  # the file changed since its sibling was made
        return resource

    async def _open(
        self, method: str, headers: Mapping[str, str], caller: Fields, source: Any
    ) -> Resource:
        """Open ``source``; on S3 a GET's metadata and bytes come from one request.

        When the storage answered the hinted request "not modified" but the request's own
        evaluation wants more than a 304 (it has the final say), open again without a hint.

        Raises:
            HTTPError: The source is missing, forbidden or failed.
        """
        hint = self._read_hint(method, headers, caller)
        resource = await self._open_with(hint, source)
        if not resource.info.validators_only:
            return resource
        plan = decide(
            method,
            dict(headers),
            size=None,
            validators=self._validators(resource.info),
            content_type="",
            conditional=self.plain,
            ranges=False,
        )
        if plan.status == 304:
            return resource
        with anyio.CancelScope(shield=True):
            await resource.aclose()
        return await self._open_with(None, source)

    def _read_hint(
        self, method: str, headers: Mapping[str, str], caller: Fields
    ) -> ReadHint | None:
        if self._sniffs(caller):
            return None  # sniffing reads the first bytes, not the planned range
        if self.redirect or self.offload is not None:
            return None  # the storage or the front server may send the bytes: no body yet
        return read_hint(
            method,
            dict(headers),
            conditional=self.plain,
            ranges=self.plain,
            storage_validators=self.etag is True and self.last_modified is None,
        )

    async def _open_with(
        self, hint: ReadHint | None, source: Any, *, sibling: bool = False
    ) -> Resource:
        """Open ``source`` within ``storage_timeout``.

        Raises:
            HTTPError: The source is missing, forbidden or failed.
            SourceNotFound: A missing ``sibling`` (not an answer: nothing is logged);
                ``SourceForbidden`` too.
        """
        try:
            with self.storage_deadline("opening"):
                return await self.registry.open(source, read_hint=hint, **self.storage_options)
        except SendfsError as exc:
            if sibling and isinstance(exc, SourceNotFound | SourceForbidden):
                # No answer, nothing to log. S3 answers 403 for a missing key to credentials
                # that may not list the bucket.
                raise
            raise status_error(exc) from exc

    @contextmanager
    def storage_deadline(self, doing: str) -> Iterator[None]:
        """Bound a wait for the storage's answer by ``storage_timeout``.

        Args:
            doing: What is waited for, for the message.

        Raises:
            StorageBusy: The storage did not answer in time.
        """
        with anyio.move_on_after(self.storage_timeout) as deadline:
            yield
        if deadline.cancelled_caught:
            source = describe_source(self.source)
            raise StorageBusy(
                f"the storage took over {self.storage_timeout} s {doing} {source} "
                "(every connection of its pool in use?)"
            )

    # -- deciding -----------------------------------------------------------------------

    def _plan(
        self,
        method: str,
        headers: Mapping[str, str],
        info: FileInfo,
        validators: Validators,
        media_type: str,
    ) -> Plan:
        return decide(
            method,
            dict(headers),
            size=info.size,
            validators=validators,
            content_type=media_type,
            conditional=self.plain,
            ranges=self.plain and info.seekable,
            if_range_dates=not self.encodings,
        )

    def _validators(self, info: FileInfo) -> Validators:
        etag = info.etag if self.etag is True else (self.etag or None)
        modified = to_utc_datetime(self.last_modified or info.mtime)
        return Validators.current(etag, modified, datetime.now(timezone.utc))

    def _sniffs(self, caller: Fields) -> bool:
        """Whether the type is read from the body: asked for, and given nowhere else."""
        return self.sniff_media_type and not self.media_type and not given_media_type(caller)

    def _media_type(
        self, name: str | None, stored: str | None, caller: Fields, sniffed: str | None = None
    ) -> str:
        given = given_media_type(caller)
        if given:
            return given
        return content_type(
            mimetype=self.media_type or sniffed, names=(self.filename, name), stored=stored
        )

    async def _sniff(self, resource: Resource, caller: Fields) -> str | None:
        if not self._sniffs(caller) or resource.info.size is None:
            return None
        import magic  # python-magic; checked when the download was built

        head = b""
        try:
            with self.storage_deadline("reading"):
                async with closing_iterator(
                    resource.iter_range(0, SNIFF_LENGTH, SNIFF_LENGTH)
                ) as chunks:
                    async for chunk in chunks:
                        head += chunk
        except SendfsError as exc:
            raise status_error(exc) from exc
        sniffed: str = magic.from_buffer(head, mime=True)
        return sniffed

    async def _offloaded(
        self,
        resource: Resource,
        method: str,
        name: str | None,
        media_type: str,
        caller: Fields,
    ) -> Answer | None:
        """The answer that hands the bytes to the front server, or ``None`` if it cannot.

        A local file under the offload's root goes by its path; an object goes through
        nginx's ``remote`` location by a presigned URL, for a GET (the app answers a HEAD
        from the metadata it has), unless ``redirect`` sends the client there instead.
        """
        offload = self.offload
        assert offload is not None
        disposition = disposition_value(self.disposition, self.filename, name, media_type)
        path = self.registry.local_path(self.resolved)
        url = None
        if path is not None:
            target = local_target(offload, path)
        elif (
            isinstance(offload, XAccelRedirect)
            and offload.remote is not None
            and method == "GET"
            and not self.redirect
            and isinstance(resource, SignableResource)
        ):
            carried = getattr(resource, "presign_sets_headers", False)
            disposition = _caller_field(caller, b"content-disposition") or disposition
            try:
                url = await resource.presign(
                    expires=offload.expires,
                    content_type=media_type,
                    content_disposition=disposition,
                )
            except SendfsError as exc:
                raise status_error(exc) from exc
            if carried:  # the storage sends them: nginx would pass on both dispositions
                disposition = None
                caller = [field for field in caller if field[0] != b"content-disposition"]
            target = offload.remote if url is not None else None
        else:
            target = None
        if target is None:
            return None
        fields = offload_fields(
            offload,
            target,
            media_type=media_type,
            disposition=disposition,
            max_age=self.max_age,
            caller=caller,
            reproxy_url=url,
        )
        return Answer(200, fields, resource=resource)

    async def _presigned(
        self, resource: Resource, media_type: str, disposition: str | None
    ) -> str | None:
        """A presigned URL answering with this download's type and disposition, if any.

        Raises:
            RedirectUnavailable: ``redirect="required"`` and the storage cannot sign.
        """
        url = None
        if isinstance(resource, SignableResource):
            try:
                url = await resource.presign(
                    expires=self.expires, content_type=media_type, content_disposition=disposition
                )
            except SendfsError as exc:
                raise status_error(exc) from exc
        if url is None and self.redirect == "required":
            source = describe_source(self.source)
            raise RedirectUnavailable(
                f"redirect='required', but the storage cannot presign {source} with its credentials"
            )
        return url


def _caller_field(caller: Fields, name: bytes) -> str | None:
    """The value of the caller's field ``name`` (lower case), if any."""
    for field, value in caller:
        if field == name:
            return value.decode("latin-1")
    return None


def _local_path(resource: Resource) -> str | None:
    """The path of a local file that a server may open and send itself, if it is one.

    A file opened confined to a root says ``sendable_by_path = False``: the server would open
    the path again by name, and a rename in between could lead that name out of the root.
    """
    path = getattr(resource, "path", None)
    if not getattr(resource, "sendable_by_path", False):
        return None
    return path if isinstance(path, str) and os.path.isabs(path) else None


@asynccontextmanager
async def closing_iterator(iterator: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """Close an async generator on exit, so its ``finally`` (file handles, S3 bodies) runs now."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


async def _prepend(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first`` (unless ``None``), then what ``rest`` yields."""
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


def caller_fields(items: Iterable[tuple[str | bytes, str | bytes]]) -> Fields:
    """Caller fields as the core takes them: lower-case ``bytes`` names, Latin-1 values.

    Args:
        items: Name-value pairs, as ``str`` or ``bytes`` (a framework's header store).
    """
    fields: Fields = []
    for name, value in items:
        raw_name = name.encode("latin-1") if isinstance(name, str) else name
        raw_value = value.encode("latin-1") if isinstance(value, str) else value
        fields.append((raw_name.lower(), raw_value))
    return fields
