"""Download events: one small frozen record per response, for metering and audit.

A hook receives a :class:`DownloadEvent` once the response is over, whatever its outcome: a
complete download, a 206 or 304, a 404 raised for the app to render, a client that went away,
a storage that failed mid-stream. Hooks run after the last byte was handed to the server, so
they never delay the client; a hook that raises is logged and swallowed, so it never breaks a
response.

Hooks are set per call (``send_file(..., on_complete=hook)``), per ``StorageFiles`` and per
registry (``StorageRegistry(on_complete=hook)`` or ``registry.on_complete = hook``, which
covers every response served through it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from .storages.fileobj import is_file_object
from .storages.paths import redact_url
from .storages.registry import Resolved

__all__ = ["DownloadEvent", "DownloadHook", "describe_source"]

logger = logging.getLogger("sendfs")

#: Longest a hook may run after a cancelled response (the request is gone; do not hang on it).
HOOK_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class DownloadEvent:
    """What one response did.

    Args:
        source: The source as a safe description: a path or URL with any user info and query
            masked (presigned signatures, passwords), or ``<BytesIO>`` / ``<BufferedReader
            report.pdf>`` for file objects. Never the source object itself.
        method: The request method.
        status: The status sent: 200, 206, 304, 307, 412, 416..., or for an error raised
            before the response started (for the app to render), the status it maps to
            (404, 403, 502, 503; 500 for anything else).
        ranges: The half-open byte ranges ``(start, stop)`` of a 206, in the order sent;
            empty for anything else.
        size: The full size of the representation, when it was known.
        bytes_sent: Body bytes handed to the server (multipart framing included); for a file
            handed over with ``http.response.pathsend``, its size.
        duration: Seconds from the call of the response to its end (monotonic clock).
        aborted: The response started but did not finish: the client went away, or the
            storage failed after the first byte and the connection was aborted.
        error: The type name of the error that ended the response, if one did.
        download_name: The file name the response offered (Content-Disposition), if any.
        content_type: The Content-Type sent with the file, if it got that far.
    """

    source: str
    method: str
    status: int
    ranges: tuple[tuple[int, int], ...] = ()
    size: int | None = None
    bytes_sent: int = 0
    duration: float = 0.0
    aborted: bool = False
    error: str | None = None
    download_name: str | None = None
    content_type: str | None = None


#: A hook: a function or coroutine function taking the event. Its return value is ignored.
DownloadHook = Callable[[DownloadEvent], Awaitable[None] | None]


def describe_source(source: Any) -> str:
    """A description of ``source`` safe for logs: no credentials, no signatures.

    Args:
        source: Anything ``send_file`` accepts.

    Security:
        URL user info and queries are masked (``s3://***@bucket/key``,
        ``https://host/file?***``): they carry passwords and presigned signatures.
    """
    if isinstance(source, Resolved):
        return describe_source(source.target)
    if is_file_object(source):
        name = getattr(source, "name", None)
        label = os.path.basename(os.fsdecode(name)) if isinstance(name, str | bytes) else ""
        return f"<{type(source).__name__}{' ' + label if label else ''}>"
    if isinstance(source, str):
        return redact_url(source)
    if isinstance(source, os.PathLike):
        return os.fsdecode(os.fspath(source))
    return f"<{type(source).__name__}>"


@dataclass
class Tracker:
    """What a response did so far; built only when a hook is set (one per request).

    Args:
        source: The response's source.
        method: The request method.
    """

    source: Any
    method: str
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    finished: bool = False
    bytes_sent: int = 0
    size: int | None = None
    ranges: tuple[tuple[int, int], ...] = ()
    download_name: str | None = None
    content_type: str | None = None
    error: BaseException | None = None

    def wrap(self, send: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """``send`` that also counts what goes through it.

        Args:
            send: The server's ASGI ``send``.
        """

        async def counting_send(message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self.status = message["status"]
            elif kind == "http.response.body":
                await send(message)
                self.bytes_sent += len(message.get("body", b""))
                self.finished = not message.get("more_body", False)
                return
            elif kind == "http.response.pathsend":
                await send(message)
                self.bytes_sent += self.size or 0
                self.finished = True
                return
            await send(message)

        return counting_send

    def event(self) -> DownloadEvent:
        """The record of the response as it ended."""
        status = self.status
        if status is None:
            code = getattr(self.error, "status_code", None)
            status = code if isinstance(code, int) else 500
        error = self.error
        if error is not None and self.status is None and error.__cause__ is not None:
            error = error.__cause__  # the storage's error behind the HTTP one
        return DownloadEvent(
            source=describe_source(self.source),
            method=self.method,
            status=status,
            ranges=self.ranges if status == 206 else (),
            size=self.size,
            bytes_sent=self.bytes_sent,
            duration=time.monotonic() - self.started,
            aborted=self.status is not None and not self.finished,
            error=None if error is None else type(error).__name__,
            download_name=self.download_name,
            content_type=self.content_type,
        )


async def emit(hooks: Iterable[DownloadHook], event: DownloadEvent) -> None:
    """Run each hook with ``event``; errors are logged, never raised.

    Runs shielded from cancellation (a cancelled request still gets its event) but for at
    most :data:`HOOK_GRACE_SECONDS`.

    Args:
        hooks: The hooks, in order.
        event: The event.
    """
    with anyio.CancelScope(shield=True), anyio.move_on_after(HOOK_GRACE_SECONDS):
        for hook in hooks:
            await _run_hook(hook, event)


async def _run_hook(hook: DownloadHook, event: DownloadEvent) -> None:
    try:
        result = hook(event)
        if result is not None and hasattr(result, "__await__"):
            await result
    except Exception:
        logger.exception("sendfs: on_complete hook %r failed", hook)
