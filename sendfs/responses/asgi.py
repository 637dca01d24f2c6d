"""The ASGI sender: one :class:`~sendfs.responses.core.Answer` as ASGI messages.

Shared by the ASGI faces (Lilya, Starlette and FastAPI, Litestar, ``StorageFiles``): each calls
:func:`serve` with its download, its caller fields and a function that turns an
:class:`~sendfs.responses.errors.HTTPError` into its framework's exception.

While a body streams, ``http.disconnect`` is watched and every message waits at most
``send_timeout`` for the client: a client that left or stopped reading releases the storage
stream at once. A failure after the first byte is raised to the server, which aborts the
connection: the client sees a body shorter than its Content-Length, never a silently
truncated 200.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import anyio.lowlevel
from lilya.types import Message, Receive, Scope, Send

from ..events import Tracker, describe_source, emit
from .core import Answer, Body, Download
from .errors import HTTPError
from .fields import Fields

__all__ = [
    "ClientStalled",
    "bounded_send",
    "request_headers",
    "request_path",
    "send_answer",
    "serve",
]

logger = logging.getLogger("sendfs")


def request_headers(scope: Scope) -> dict[str, str]:
    """Request headers as a dict: lower-case names, Latin-1 values, repeats joined by ``, ``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def request_path(scope: Scope) -> str:
    """The request's whole URL path, decoded: the mount point's prefix included.

    ASGI puts ``root_path`` in ``path``; a router that does not (an older one, mounting an
    app) leaves it only in ``root_path``, and it is put back.
    """
    path: str = scope.get("path", "/")
    root_path: str = scope.get("root_path", "")
    if root_path and not path.startswith(root_path):
        return root_path + path
    return path


async def serve(
    download: Download,
    caller: Fields,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    error: Callable[[HTTPError], Exception],
) -> None:
    """Answer one HTTP request for ``download``, its events included.

    Args:
        download: What to serve.
        caller: The caller's response fields (cookies, CORS...).
        scope: The ASGI scope.
        receive: The ASGI receive callable.
        send: The ASGI send callable.
        error: Turns an :class:`HTTPError` (a failure before the first byte) into the
            exception the framework renders.

    Raises:
        Exception: What ``error`` returned, before the first byte; the storage's error after
            it (the server aborts the connection).
    """
    method = str(scope.get("method", "GET")).upper()
    hooks = download.hooks()
    tracker = Tracker(download.source, method) if hooks else None
    try:
        await _serve(download, caller, method, scope, receive, send, tracker)
    except ClientStalled as exc:
        # Client-made: INFO at most. Returning without the final message makes the server
        # close the connection, as after any failure once the response has started.
        logger.info("sendfs: %s; response aborted: %s", exc, describe_source(download.source))
        if tracker is not None:
            tracker.error = exc
    except HTTPError as exc:
        if tracker is not None:
            tracker.error = exc
        raise error(exc) from exc.__cause__
    except BaseException as exc:
        if tracker is not None:
            tracker.error = exc
        raise
    finally:
        if tracker is not None:
            await emit(hooks, tracker.event())


async def _serve(
    download: Download,
    caller: Fields,
    method: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    tracker: Tracker | None,
) -> None:
    if tracker is not None:
        send = tracker.wrap(send)
    answer = await download.answer(
        method,
        request_headers(scope),
        caller,
        tracker,
        path=request_path(scope),
        query=scope.get("query_string", b""),
    )
    try:
        await send_answer(answer, scope, receive, send, download.send_timeout)
    finally:
        await answer.aclose()


async def send_answer(
    answer: Answer, scope: Scope, receive: Receive, send: Send, send_timeout: float | None
) -> None:
    """Send ``answer``: empty, by path (``http.response.pathsend``), or streamed.

    Args:
        answer: What to send; the caller closes it afterwards.
        scope: The ASGI scope (its ``extensions``).
        receive: Watched for ``http.disconnect`` while a body streams.
        send: The ASGI send callable.
        send_timeout: Seconds one message may wait for the client.

    Raises:
        HTTPError: The body failed before its first byte.
        ClientStalled: A message waited longer than ``send_timeout``.
    """
    if answer.body is None:
        # Nothing more is read: release the storage first (on S3 the connection an answered
        # GET holds), then wait for the client, boundedly (a pipelining client that reads
        # nothing would otherwise hold the resource for ever).
        await answer.aclose()
        await _send_empty(bounded_send(send, send_timeout), answer.status, answer.headers)
    elif answer.path is not None and "http.response.pathsend" in (scope.get("extensions") or {}):
        # The server sends the file itself: zero copy, no Python in the loop. The descriptor
        # the metadata came from stays open until it is done.
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        )
        await send({"type": "http.response.pathsend", "path": answer.path})
    else:
        await _send_body(bounded_send(send, send_timeout), receive, answer, answer.body)


async def _send_empty(send: Send, status: int, headers: Fields) -> None:
    # Always a final body message, also for HEAD, 304 and 416: a response without one makes
    # uvicorn close the connection and granian answer 500.
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_body(send: Send, receive: Receive, answer: Answer, body: Body) -> None:
    """Send the start, then the body, watching for a disconnect while it streams.

    The first chunk is read before the start: a failure there is still a clean HTTP error. A
    body whose first chunk is all of it goes out in one message, with no stream to watch.
    """
    first = await body.start()
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    if body.whole:
        await _send_chunk(send, first, more_body=False)
        return
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
        try:
            await _stream(send, first, body)
        except Exception as exc:  # noqa: BLE001 - re-raised below, not in a group
            failure = exc
        group.cancel_scope.cancel()
    if failure is not None:
        # After the first byte: the server aborts the connection, the client sees a body
        # shorter than Content-Length.
        raise failure


async def _stream(send: Send, first: bytes, body: Body) -> None:
    """Send ``first`` and every later chunk of ``body``, ending with an empty final message."""
    if first and not await _send_chunk(send, first, more_body=True):
        return
    async for chunk in body:
        if not await _send_chunk(send, chunk, more_body=True):
            return
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
            raise ClientStalled(f"a message waited over {timeout} s for the client to read")

    return send_within
