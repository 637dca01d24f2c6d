"""``FileResponse``: a Lilya response (and plain ASGI app) that serves one source correctly.

``__call__`` only dispatches: open the resource, let :func:`~sendfs.responses.plan.decide`
choose the answer, then run one small sender (empty, full, one range, multipart). The response
object is never mutated by a request, so one instance can answer many (except for file-object
sources, which can be read once).

Failures before the first byte are raised as HTTP exceptions the app renders (404, 403, 502,
503). After the first byte, a failure is raised to the server, which aborts the connection: the
client sees a body shorter than its Content-Length, never a silently truncated 200.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from lilya.responses import Response
from lilya.types import Message, Receive, Scope, Send

from ..events import DownloadHook, Tracker, describe_source, emit
from ..exceptions import BackendError, RedirectUnavailable, SendfsError, StorageBusy
from ..storages.base import DEFAULT_CHUNK_SIZE, FileInfo, ReadHint, Resource, SignableResource
from ..storages.metadata import to_utc_datetime
from ..storages.registry import StorageRegistry
from ..storages.registry import registry as default_registry
from .conditional import Validators
from .errors import http_error
from .headers import (
    cache_control,
    clean_filename,
    content_disposition,
    content_type,
    default_download_name,
    http_date,
    is_token,
    quote_etag,
)
from .plan import Plan, decide, read_hint

if TYPE_CHECKING:
    from lilya.background import Task

__all__ = ["FileResponse"]

_Headers = list[tuple[bytes, bytes]]

#: Lifetime of presigned redirect URLs when the caller does not say, in seconds.
DEFAULT_EXPIRES = 300

#: How long one body message may wait for the client to take the previous ones, in seconds
#: (nginx's ``send_timeout``). A message is at most one chunk.
DEFAULT_SEND_TIMEOUT = 60.0

#: How long the storage may take to start answering a read (a free connection in its pool,
#: then its first bytes), in seconds.
DEFAULT_STORAGE_TIMEOUT = 10.0

logger = logging.getLogger("sendfs")

#: How much of the body python-magic sees when the media type is sniffed.
SNIFF_LENGTH = 2048

#: Response fields a caller's ``headers`` may not override: they describe the body we frame.
_FRAMING = frozenset({b"content-length", b"content-range", b"transfer-encoding"})
#: Fields a 304 carries (RFC 9110 section 15.4.5), from the caller's headers too.
_NOT_MODIFIED_FIELDS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary", b"last-modified"}
)


def request_headers(scope: Scope) -> dict[str, str]:
    """Request headers as a dict: lower-case names, Latin-1 values, repeats joined by ``, ``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class FileResponse(Response):
    """Serve a path, a binary file object or a storage URL with full HTTP semantics.

    Most code calls :func:`sendfs.send_file`, which validates its arguments and builds this.

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
        sniff_media_type: Without ``media_type``, read the first 2 KiB and let python-magic
            name the type (Lilya's ``deduce_media_type_from_body``; costs one extra read).
        on_complete: A hook called with a :class:`~sendfs.events.DownloadEvent` when the
            response is over; the registry's ``on_complete`` hook, if any, runs after it.
        redirect: ``True`` answers ``307`` to a presigned storage URL when the storage can
            sign (:class:`~sendfs.storages.base.SignableResource`), else streams;
            ``"required"`` raises :class:`~sendfs.exceptions.RedirectUnavailable` instead of
            streaming. Conditional requests are still answered here (304, 412).
        expires: Lifetime of a presigned URL in seconds.
        send_timeout: Seconds one body message may wait for the client to take the ones
            before it; past that the response is aborted and its storage stream released.
            ``None`` waits for ever.
        storage_timeout: Seconds the storage may take to start answering each read (a
            connection from its pool, then the first bytes): past that, a 503 with
            ``Retry-After`` before the response starts, an aborted response after.
            ``None`` waits for ever.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> FileResponse:
        """Make the response a Starlette ``Response`` too when the app runs on Starlette.

        FastAPI passes a value a route returns through only if it is a Starlette
        ``Response``; anything else is encoded as JSON. Starlette is never imported here: an
        app on Starlette or FastAPI has imported it already.
        """
        if "starlette.responses" in sys.modules:
            return super().__new__(with_starlette_base(cls))
        return super().__new__(cls)

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
        last_modified: datetime | None = None,
        max_age: int | None = None,
        conditional: bool = True,
        chunk_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
        registry: StorageRegistry | None = None,
        sniff_media_type: bool = False,
        on_complete: DownloadHook | None = None,
        redirect: bool | str = False,
        expires: int = DEFAULT_EXPIRES,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        storage_timeout: float | None = DEFAULT_STORAGE_TIMEOUT,
    ) -> None:
        if content_disposition_type is not None and not is_token(content_disposition_type):
            raise ValueError(f"{content_disposition_type!r} is not a disposition type")
        self.source = source
        self.status_code = status_code
        self.media_type = media_type
        self.background = background
        self.encoders = []
        self.filename = filename
        self.content_disposition_type = content_disposition_type
        self.etag = etag
        self.last_modified = last_modified
        self.max_age = max_age
        self.conditional = conditional
        self.chunk_size = chunk_size
        self.storage_options = dict(storage_options or {})
        self.registry = registry or default_registry
        self.sniff_media_type = sniff_media_type
        self.on_complete = on_complete
        self.redirect = redirect
        self.expires = expires
        self.send_timeout = send_timeout
        self.storage_timeout = storage_timeout
        # Lilya's make_headers() mutates what it is given and adds Content-Type: give it a copy
        # and keep only the caller's fields (and cookies set later with set_cookie()).
        saved_media_type, self.media_type = self.media_type, None
        self.make_headers(dict(headers or {}))
        self.media_type = saved_media_type

    # -- dispatch ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request."""
        method = str(scope.get("method", "GET")).upper()
        hooks = self._hooks()
        tracker = Tracker(self.source, method) if hooks else None
        try:
            await self._serve(method, scope, receive, send, tracker)
        except ClientStalled as exc:
            # Client-made: INFO at most. Returning without the final message makes the server
            # close the connection, as after any failure once the response has started.
            logger.info("sendfs: %s; response aborted: %s", exc, describe_source(self.source))
            if tracker is not None:
                tracker.error = exc
        except BaseException as exc:
            if tracker is not None:
                tracker.error = exc
            raise
        finally:
            if tracker is not None:
                await emit(hooks, tracker.event())
        if self.background is not None and method != "HEAD":
            await self.background()

    def _hooks(self) -> list[DownloadHook]:
        """The ``on_complete`` hooks to run: this response's, then the registry's."""
        registry_hook = getattr(self.registry, "on_complete", None)
        return [hook for hook in (self.on_complete, registry_hook) if hook is not None]

    async def _serve(
        self, method: str, scope: Scope, receive: Receive, send: Send, tracker: Tracker | None
    ) -> None:
        if tracker is not None:
            send = tracker.wrap(send)
        resource = await self._open(method, request_headers(scope))
        try:
            await self._respond(resource, method, scope, receive, send, tracker)
        finally:
            with anyio.CancelScope(shield=True):  # release handles even on cancellation
                await resource.aclose()

    async def _open(self, method: str, headers: dict[str, str]) -> Resource:
        """Open the source; on S3 a GET's metadata and bytes come from one request.

        When the storage answered the hinted request "not modified" but the request's own
        evaluation wants more than a 304 (it has the final say), open again without a hint.
        """
        hint = self._read_hint(method, headers)
        resource = await self._open_with(hint)
        if not resource.info.validators_only:
            return resource
        plan = decide(
            method,
            headers,
            size=None,
            validators=self._validators(resource.info),
            content_type="",
            conditional=self.conditional and self.status_code == 200,
            ranges=False,
        )
        if plan.status == 304:
            return resource
        with anyio.CancelScope(shield=True):
            await resource.aclose()
        return await self._open_with(None)

    def _read_hint(self, method: str, headers: dict[str, str]) -> ReadHint | None:
        if self._sniffs():
            return None  # sniffing reads the first bytes, not the planned range
        if self.redirect:
            return None  # the storage will send the bytes: open without starting a body
        plain = self.conditional and self.status_code == 200
        return read_hint(
            method,
            headers,
            conditional=plain,
            ranges=plain,
            storage_validators=self.etag is True and self.last_modified is None,
        )

    async def _open_with(self, hint: ReadHint | None) -> Resource:
        try:
            with self._storage_deadline("opening"):
                return await self.registry.open(self.source, read_hint=hint, **self.storage_options)
        except SendfsError as exc:
            raise http_error(exc) from exc

    @contextmanager
    def _storage_deadline(self, doing: str) -> Iterator[None]:
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

    async def _respond(
        self,
        resource: Resource,
        method: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        tracker: Tracker | None = None,
    ) -> None:
        headers = request_headers(scope)
        info = resource.info
        validators = self._validators(info)
        media_type = self._media_type(info)
        plan = self._plan(method, headers, info, validators, media_type)
        if plan.status not in (304, 412) and (sniffed := await self._sniff(resource)):
            # Sniffing reads the body's start: only for answers that carry the type.
            media_type = self._media_type(info, sniffed)
            plan = self._plan(method, headers, info, validators, media_type)
        suggested: int = getattr(resource, "chunk_size_hint", DEFAULT_CHUNK_SIZE)
        chunk_size = self.chunk_size or suggested
        if tracker is not None:
            tracker.size = info.size
            tracker.ranges = tuple((r.start, r.stop) for r in plan.ranges)
            tracker.download_name = self.filename or info.name
            tracker.content_type = media_type
        if self.redirect and plan.status in (200, 206, 416):
            location = await self._presigned(resource, info, media_type)
            if location is not None:
                await self._send_empty(send, 307, self._redirect_headers(location))
                return
        if plan.status in (304, 412, 416):
            await self._send_empty(send, plan.status, self._status_headers(plan, info, validators))
            return
        response_headers = self._representation_headers(plan, info, validators, media_type)
        status = (self.status_code or 200) if plan.status == 200 else plan.status
        if method == "HEAD":
            await self._send_empty(send, status, response_headers)
        elif not plan.ranges and (path := _sendable_path(scope, resource)) is not None:
            await self._send_path(send, status, response_headers, path)
        elif plan.multipart is not None:
            body = self._multipart_body(resource, plan, chunk_size)
            total = plan.multipart.content_length
            await self._send_body(send, receive, status, response_headers, body, total)
        else:
            start, stop = (plan.ranges[0].start, plan.ranges[0].stop) if plan.ranges else (0, None)
            body = resource.iter_range(start, stop, chunk_size)
            length = info.size if stop is None else stop - start
            await self._send_body(send, receive, status, response_headers, body, length)

    def _plan(
        self,
        method: str,
        headers: dict[str, str],
        info: FileInfo,
        validators: Validators,
        media_type: str,
    ) -> Plan:
        plain = self.conditional and self.status_code == 200
        return decide(
            method,
            headers,
            size=info.size,
            validators=validators,
            content_type=media_type,
            conditional=plain,
            ranges=plain and info.seekable,
        )

    async def _presigned(self, resource: Resource, info: FileInfo, media_type: str) -> str | None:
        """A presigned URL answering with this response's type and disposition, if any.

        Raises:
            RedirectUnavailable: ``redirect="required"`` and the storage cannot sign.
        """
        url = None
        if isinstance(resource, SignableResource):
            try:
                url = await resource.presign(
                    expires=self.expires,
                    content_type=media_type,
                    content_disposition=self._disposition(info, media_type),
                )
            except SendfsError as exc:
                raise http_error(exc) from exc
        if url is None and self.redirect == "required":
            source = describe_source(self.source)
            raise RedirectUnavailable(
                f"redirect='required', but the storage cannot presign {source} with its credentials"
            )
        return url

    def _redirect_headers(self, location: str) -> _Headers:
        # The URL expires: the redirect must not outlive it in any cache.
        fields = [
            (b"location", location.encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]
        return self._with_caller_headers(fields, protect=frozenset({b"location", b"cache-control"}))

    # -- metadata ---------------------------------------------------------------------------

    def _validators(self, info: FileInfo) -> Validators:
        etag = info.etag if self.etag is True else (self.etag or None)
        modified = to_utc_datetime(self.last_modified or info.mtime)
        return Validators.current(etag, modified, datetime.now(timezone.utc))

    async def _sniff(self, resource: Resource) -> str | None:
        if not self._sniffs() or resource.info.size is None:
            return None
        import magic  # python-magic; send_file() checked that it is installed

        head = b""
        try:
            async with closing_iterator(
                resource.iter_range(0, SNIFF_LENGTH, SNIFF_LENGTH)
            ) as chunks:
                async for chunk in chunks:
                    head += chunk
        except SendfsError as exc:
            raise http_error(exc) from exc
        sniffed: str = magic.from_buffer(head, mime=True)
        return sniffed

    def _given_media_type(self) -> str | None:
        """A Content-Type in the caller's headers.

        It wins over every other source of the type, so that multipart parts and the default
        download name follow it too, and nothing is read to sniff one.
        """
        for name, value in self._caller_headers():
            if name == b"content-type":
                return value.decode("latin-1")
        return None

    def _sniffs(self) -> bool:
        """Whether the type is read from the body: asked for, and given nowhere else."""
        return self.sniff_media_type and not self.media_type and not self._given_media_type()

    def _media_type(self, info: FileInfo, sniffed: str | None = None) -> str:
        given = self._given_media_type()
        if given:
            return given
        return content_type(
            mimetype=self.media_type or sniffed,
            names=(self.filename, info.name),
            stored=info.content_type,
        )

    def _disposition(self, info: FileInfo, media_type: str) -> str | None:
        kind = self.content_disposition_type or "inline"
        name = clean_filename(self.filename or info.name or "")
        if kind == "attachment" and not name:
            name = default_download_name(media_type)
        if not name:
            return None
        return content_disposition(kind, name)

    def _validator_headers(self, validators: Validators) -> _Headers:
        fields: _Headers = []
        if validators.etag:
            fields.append((b"etag", quote_etag(validators.etag).encode("latin-1")))
        if validators.last_modified is not None:
            fields.append((b"last-modified", http_date(validators.last_modified).encode()))
        fields.append((b"cache-control", cache_control(self.max_age).encode()))
        return fields

    def _representation_headers(
        self, plan: Plan, info: FileInfo, validators: Validators, media_type: str
    ) -> _Headers:
        fields = self._validator_headers(validators)
        ranges_ok = (
            info.size is not None and info.seekable and self.conditional and self.status_code == 200
        )
        fields.append((b"accept-ranges", b"bytes" if ranges_ok else b"none"))
        disposition = self._disposition(info, media_type)
        if disposition is not None:
            fields.append((b"content-disposition", disposition.encode("latin-1")))
        if plan.multipart is not None:
            fields.append((b"content-type", plan.multipart.content_type.encode()))
            fields.append((b"content-length", str(plan.multipart.content_length).encode()))
            return self._with_caller_headers(fields, protect=frozenset({b"content-type"}))
        fields.append((b"content-type", media_type.encode("latin-1")))
        if plan.ranges:
            byte_range = plan.ranges[0]
            fields.append((b"content-range", byte_range.content_range(info.size or 0).encode()))
            fields.append((b"content-length", str(len(byte_range)).encode()))
        elif info.size is not None:
            fields.append((b"content-length", str(info.size).encode()))
        return self._with_caller_headers(fields, protect=frozenset())

    def _status_headers(self, plan: Plan, info: FileInfo, validators: Validators) -> _Headers:
        if plan.status == 304:
            # The same fields as the 200 would carry (RFC 9110 section 15.4.5), caller's included.
            caller = [f for f in self._caller_headers() if f[0] in _NOT_MODIFIED_FIELDS]
            overridden = {name for name, _ in caller}
            fields = self._validator_headers(validators)
            return [f for f in fields if f[0] not in overridden] + caller
        fields = [(b"content-length", b"0")]
        if plan.status == 416:
            fields.append((b"content-range", f"bytes */{info.size}".encode()))
        return fields

    def _caller_headers(self) -> _Headers:
        return [(name.lower(), value) for name, value in self.headers.get_encoded_multi_items()]

    def _with_caller_headers(
        self, fields: _Headers, protect: frozenset[bytes] | set[bytes]
    ) -> _Headers:
        caller = [
            (name, value)
            for name, value in self._caller_headers()
            if name not in _FRAMING and name not in protect
        ]
        overridden = {name for name, _ in caller}
        return [field for field in fields if field[0] not in overridden] + caller

    # -- senders ----------------------------------------------------------------------------

    @staticmethod
    async def _send_empty(send: Send, status: int, headers: _Headers) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _send_path(send: Send, status: int, headers: _Headers, path: str) -> None:
        """Let the server send the whole file by path (zero copy, no Python in the loop)."""
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.pathsend", "path": path})

    async def _send_body(
        self,
        send: Send,
        receive: Receive,
        status: int,
        headers: _Headers,
        body: AsyncIterator[bytes],
        length: int | None = None,
    ) -> None:
        """Send the start, then ``body``, watching for a disconnect while it streams.

        Args:
            send: The ASGI send callable.
            receive: The ASGI receive callable, watched for ``http.disconnect``.
            status: The response status.
            headers: The response fields.
            body: The chunks; closed on the way out.
            length: The body's length (its Content-Length) when known; a body whose first
                chunk holds all of it is sent in one message, with no stream to watch, and a
                body that passes it or ends short of it aborts the response.

        Raises:
            HTTPException: The source failed (or did not answer within ``storage_timeout``)
                before the first byte.
            ClientStalled: A message waited longer than ``send_timeout``.
        """
        send = bounded_send(send, self.send_timeout)
        async with closing_iterator(body):
            try:
                with self._storage_deadline("reading"):
                    first = await anext(body, b"")
                if length is not None and len(first) > length:
                    raise BackendError(f"the source sent more than its {length} bytes")
            except SendfsError as exc:
                raise http_error(exc) from exc
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if length is not None and len(first) == length:
                if await anext(body, None) is not None:
                    raise BackendError(f"the source sent more than its {length} bytes")
                await _send_chunk(send, first, more_body=False)
                return
            failure: Exception | None = None
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                try:
                    await _stream(send, first, body, length)
                except Exception as exc:  # noqa: BLE001 - re-raised below, not in a group
                    failure = exc
                group.cancel_scope.cancel()
            if failure is not None:
                # After the first byte: the server aborts the connection, the client sees a
                # body shorter than Content-Length.
                raise failure

    async def _multipart_body(
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
                with self._storage_deadline("reading"):  # each part is a request of its own
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


_STARLETTE_CLASSES: dict[type[FileResponse], type[FileResponse]] = {}


def with_starlette_base(cls: type[FileResponse]) -> type[FileResponse]:
    """``cls`` made a Starlette ``Response`` too, for FastAPI's ``isinstance`` check.

    :class:`FileResponse` itself maps to :class:`sendfs.starlette.FileResponse`; a subclass of
    it gets a class made the same way.
    """
    made = _STARLETTE_CLASSES.get(cls)
    if made is None:
        from .. import starlette

        if cls is FileResponse:
            made = starlette.FileResponse
        else:
            namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
            made = type(cls.__name__, (cls, starlette.FileResponse), namespace)
        _STARLETTE_CLASSES[cls] = made
    return made


def _sendable_path(scope: Scope, resource: Resource) -> str | None:
    """The file's path when the server offers ``http.response.pathsend`` and it is a local file.

    The descriptor the metadata came from stays open until the server is done, and its size
    was fixed at open time; a file replaced in between would be caught by the server's short
    read, like any other failure after the first byte. A file opened confined to a root says
    ``sendable_by_path = False``: the server's reopen by name could be led out of the root.
    """
    extensions = scope.get("extensions") or {}
    path = getattr(resource, "path", None)
    if not getattr(resource, "sendable_by_path", True):
        return None
    if "http.response.pathsend" in extensions and isinstance(path, str) and os.path.isabs(path):
        return path
    return None


@asynccontextmanager
async def closing_iterator(iterator: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """Close an async generator on exit, so its ``finally`` (file handles, S3 bodies) runs now."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


class ClientStalled(Exception):
    """The client took no body message for ``send_timeout`` seconds."""


def bounded_send(send: Send, timeout: float | None) -> Send:
    """``send`` that raises :class:`ClientStalled` when one message waits over ``timeout``.

    A server's ``send`` returns once it took the message; under back-pressure it first waits
    for the client to drain what the earlier messages left in its buffers. That wait is what
    is bounded: a client that stopped reading holds no storage stream for longer.

    Args:
        send: The server's ASGI ``send``.
        timeout: Seconds; ``None`` returns ``send`` itself.
    """
    if timeout is None:
        return send

    async def send_within(message: Message) -> None:
        with anyio.move_on_after(timeout) as deadline:
            await send(message)
        if deadline.cancelled_caught:
            raise ClientStalled(f"the client took no data for {timeout} s")

    return send_within


async def _prepend(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first`` (unless ``None``), then what ``rest`` yields."""
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


async def _stream(send: Send, first: bytes, rest: AsyncIterator[bytes], length: int | None) -> None:
    """Send ``first`` and then every chunk of ``rest``, ending with an empty final message.

    Args:
        send: The ASGI send callable.
        first: The chunk already read.
        rest: The chunks after it.
        length: The Content-Length sent, if any: a body that would pass it, or that ends
            short of it, raises before the offending chunk or the final message, so the server
            aborts the connection whatever it checks itself.

    Raises:
        BackendError: The source yielded more or fewer bytes than ``length``.
    """
    if first and not await _send_chunk(send, first, more_body=True):
        return
    sent = len(first)
    async for chunk in rest:
        sent += len(chunk)
        if length is not None and sent > length:
            raise BackendError(f"the source sent more than its {length} bytes")
        if not await _send_chunk(send, chunk, more_body=True):
            return
    if length is not None and sent != length:
        raise BackendError(f"the source ended after {sent} of its {length} bytes")
    await _send_chunk(send, b"", more_body=False)


async def _send_chunk(send: Send, chunk: bytes, *, more_body: bool) -> bool:
    """Send one body message; ``False`` when the client is gone (ASGI 2.4: OSError)."""
    try:
        await send({"type": "http.response.body", "body": chunk, "more_body": more_body})
    except OSError:
        return False
    if more_body:
        # Buffered storage reads and fast sends may complete without yielding: give the
        # disconnect watcher (and other requests) a turn after every chunk.
        await anyio.lowlevel.checkpoint()
    return True


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel the streaming as soon as the client disconnects."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
        # A well-behaved server blocks in receive() once the request body is read; a checkpoint
        # keeps a misbehaving one from starving the sender.
        await anyio.lowlevel.checkpoint()
