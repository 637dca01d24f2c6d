"""Answers for synchronous code (WSGI views): the async core driven from one event-loop thread.

A WSGI view cannot await. The faces for Flask and for Django's sync views hand the core's work to
ONE long-lived event loop, started in a daemon thread the first time it is needed (an anyio
blocking portal), never a new loop per request: async filesystems (s3fs, adlfs) keep their
connection pools on that loop, as they are bound to the loop that created them.

:func:`answer` opens the source and reads the first chunk in the view, so a missing or failing
source is still an exception the framework renders. :class:`BlockingBody` is the iterable a
WSGI server then drains; each ``next()`` runs one read on the loop, and ``close()`` (which
every WSGI server calls, also when the client went away) releases the storage stream and
emits the download event.

A process forked after the loop started (gunicorn with ``--preload``) starts its own: the
parent's loop thread does not exist in the child, which forgets it.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import io
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ..events import DownloadHook, Tracker, emit
from .core import Answer, Download
from .fields import Fields

__all__ = ["BlockingBody", "LocalFile", "answer", "call", "portal"]

_T = TypeVar("_T")

_lock = threading.Lock()
_state: dict[str, Any] = {}


#: How long interpreter exit waits for the loop thread to stop.
_STOP_SECONDS = 5.0


def _forget_after_fork() -> None:
    """Start afresh in a forked child: the parent's loop thread did not come along.

    The lock may be held by a thread that did not come along either. Nothing of the parent's
    loop is closed here: there is no thread to wait for, and nothing that would wait.
    """
    global _lock
    _lock = threading.Lock()
    _state.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _start() -> tuple[BlockingPortal, threading.Thread]:
    """Run a new event loop in a daemon thread; its portal once it runs."""
    ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

    async def serve() -> None:
        async with BlockingPortal() as started:
            ready.set_result(started)
            await started.sleep_until_stopped()

    def run() -> None:
        try:
            anyio.run(serve)
        except BaseException as exc:  # the loop could not start: tell the caller
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=run, name="sendfs-loop", daemon=True)
    thread.start()
    return ready.result(), thread


def portal() -> BlockingPortal:
    """The process's event-loop thread (started on first use, stopped at exit)."""
    with _lock:
        current: BlockingPortal | None = _state.get("portal")
        if current is not None and _state.get("pid") == os.getpid():
            return current
        started, thread = _start()
        _state.update(portal=started, thread=thread, pid=os.getpid(), registries=set())
        return started


def call(func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """Run ``func(*args)`` on the event-loop thread and wait for its result.

    Args:
        func: A coroutine function.
        *args: Its arguments.
    """
    return portal().call(func, *args)


def presigned_url(source: Any, **options: Any) -> str:
    """:func:`sendfs.presigned_url` for synchronous code, on the event-loop thread.

    The storage sessions it opens live on that thread's loop (async filesystems are bound to
    the loop that made them) and are closed at exit, as downloads' are.

    Args:
        source: As for :func:`sendfs.presigned_url`.
        **options: As for :func:`sendfs.presigned_url`.
    """
    from ..storages.registry import registry as default_registry
    from .presigned import presigned_url as make_url

    _state_registries().add(options.get("registry") or default_registry)
    return call(functools.partial(make_url, source, **options))


def answer(
    download: Download,
    method: str,
    headers: Mapping[str, str],
    caller: Fields,
    *,
    file_wrapper: bool = False,
    path: str | None = None,
    query: str | bytes = "",
) -> tuple[Answer, bytes, Tracker | None]:
    """Decide the answer for a synchronous view (on the loop thread) and read the first chunk.

    Args:
        download: What to serve.
        method: The request method, upper case.
        headers: The request's fields, lower-case names.
        caller: The caller's response fields.
        file_wrapper: Whether the server can send a local file itself (``wsgi.file_wrapper``):
            then a :attr:`~sendfs.responses.core.Answer.whole_file` answer reads nothing, for
            :class:`LocalFile`.
        path: The request's URL path, decoded (for a download with a ``signer``).
        query: The request's raw query string.

    Returns:
        The answer, its first chunk (``b""`` without a body, or for :class:`LocalFile`) and
        the download's event tracker (``None`` without hooks).

    Raises:
        HTTPError: A failure before the first byte (404, 403, 502, 503).
    """
    _state_registries().add(download.registry)
    tracker = Tracker(download.source, method) if download.hooks() else None

    async def decide() -> tuple[Answer, bytes]:
        result = await download.answer(method, headers, caller, tracker, path=path, query=query)
        if result.body is None or (file_wrapper and result.file_descriptor() is not None):
            return result, b""
        result.path, result.whole_file = None, False  # streamed: no one sends the file itself
        try:
            return result, await result.body.start()
        except BaseException:
            await result.aclose()
            raise

    try:
        result, first = call(decide)
    except BaseException as exc:
        if tracker is not None:
            tracker.error = exc
            call(emit, download.hooks(), tracker.event())
        raise
    if tracker is not None:
        tracker.status = result.status
    return result, first, tracker


class BlockingBody:
    """The body of an answer as a WSGI iterable: ``first``, then one loop call per chunk.

    Args:
        answer: The answer; closed by :meth:`close`.
        first: Its first chunk, read already.
        tracker: Counts the bytes handed to the server, for the download event.
        hooks: The download's hooks, run on :meth:`close`.
    """

    def __init__(
        self,
        answer: Answer,
        first: bytes,
        tracker: Tracker | None = None,
        hooks: list[DownloadHook] | None = None,
    ) -> None:
        self._answer = answer
        self._pending: bytes | None = first
        self._tracker = tracker
        self._hooks = hooks or []
        body = answer.body
        self._rest = None if body is None or body.whole else aiter(body)
        self._closed = False
        # A server may close the body from another thread while a read is in flight (Django's
        # ASGI handler on a disconnect): the close waits for that read instead of failing.
        self._busy = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk, self._pending = self._pending, None
        if not chunk:
            if self._rest is None:
                self._finish()
                raise StopIteration
            try:
                with self._busy:
                    if self._closed:
                        raise StopIteration
                    chunk = call(_next_chunk, self._rest)
            except StopAsyncIteration:
                self._finish()
                raise StopIteration from None
            except BaseException as exc:
                if self._tracker is not None:
                    self._tracker.error = exc
                raise
        if self._tracker is not None:
            self._tracker.bytes_sent += len(chunk)
        return chunk

    def _finish(self) -> None:
        if self._tracker is not None:
            self._tracker.finished = True

    def close(self) -> None:
        """Release the storage stream and emit the download event (once).

        An answer without a body (HEAD, 304, 412, 416, 307) is complete once the server has
        its head: servers and Werkzeug close such a body without iterating it.
        """
        if self._closed:
            return
        self._closed = True
        if self._answer.body is None and self._tracker is not None:
            self._tracker.finished = True
        try:
            with self._busy:
                call(self._answer.aclose)
        finally:
            if self._tracker is not None:
                call(emit, self._hooks, self._tracker.event())


class LocalFile(io.FileIO):
    """The answer's local file for ``wsgi.file_wrapper``: the server sends it (``sendfile``).

    A duplicate of the descriptor the metadata came from, positioned at 0, so the server sends
    exactly the file that was opened, whatever a rename does meanwhile. Closing it, which the
    server does when it is done, emits the download event.

    Args:
        answer: A :attr:`~sendfs.responses.core.Answer.whole_file` answer; it is
            closed here (the duplicate keeps the file open).
        tracker: The download's event tracker, if any.
        hooks: The download's hooks.
    """

    def __init__(self, answer: Answer, tracker: Tracker | None, hooks: list[DownloadHook]) -> None:
        try:
            fd = answer.file_descriptor()
            if fd is None:
                raise ValueError("the answer has no local file")
            duplicate = os.dup(fd)
        finally:
            call(answer.aclose)  # the duplicate keeps the file open; a failure leaks nothing
        try:
            os.lseek(duplicate, 0, os.SEEK_SET)
            super().__init__(duplicate, "rb", closefd=True)
        except BaseException:
            os.close(duplicate)
            raise
        self._tracker = tracker
        self._hooks = hooks
        self._size = answer.resource.info.size if answer.resource is not None else None

    def close(self) -> None:
        """Close the duplicate and emit the download event (once)."""
        if self.closed:
            return
        super().close()
        if self._tracker is not None:
            self._tracker.bytes_sent = self._size or 0
            self._tracker.finished = True
            call(emit, self._hooks, self._tracker.event())


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes:
    return await anext(chunks)


def _state_registries() -> set[Any]:
    portal()
    registries: set[Any] = _state["registries"]
    return registries


@atexit.register
def _stop() -> None:
    """Close the storage sessions opened on the loop, then stop it (bounded)."""
    with _lock:
        started: BlockingPortal | None = _state.pop("portal", None)
        thread: threading.Thread | None = _state.pop("thread", None)
        registries: set[Any] = _state.pop("registries", set())
        if started is None or thread is None or _state.pop("pid", None) != os.getpid():
            return
    with contextlib.suppress(Exception):  # at exit, there is no one left to report to
        for registry in registries:
            started.call(registry.aclose)
        started.call(started.stop, True)  # cancel what still runs: exit must not hang
    thread.join(_STOP_SECONDS)
