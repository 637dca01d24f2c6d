"""Test helpers: in-process clients, a registry that records reads, a multipart parser."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from lilya.apps import Lilya
from lilya.routing import Path

from sendfs.storages import FileInfo, Resource, StorageRegistry


def lilya_app(endpoint: Callable[[], Awaitable[Any]], path: str = "/file") -> Lilya:
    """A Lilya app with one GET/HEAD route."""
    return Lilya(routes=[Path(path, endpoint, methods=["GET", "HEAD", "POST"])])


def asgi_client(app: Any) -> httpx.AsyncClient:
    """An httpx client talking to ``app`` in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@dataclass
class SpyResource:
    """Wraps a resource and records every range read and whether it was closed."""

    inner: Resource
    reads: list[tuple[int, int | None]]
    closed: list[bool]

    @property
    def info(self) -> FileInfo:
        return self.inner.info

    @property
    def chunk_size_hint(self) -> int:
        hint: int = getattr(self.inner, "chunk_size_hint", 256 * 1024)
        return hint

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        self.reads.append((start, stop))
        chunks = self.inner.iter_range(start, stop, chunk_size)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            # Close the inner reader now, as FileResponse does: an abandoned S3 reader would
            # otherwise keep its body open until garbage collection.
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async def aclose(self) -> None:
        self.closed.append(True)
        await self.inner.aclose()


class SpyRegistry(StorageRegistry):
    """A registry whose resources record their reads (the real backends do the work)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[int, int | None]] = []
        self.closed: list[bool] = []
        self.opened = 0

    async def open(self, source: Any, **options: Any) -> Resource:
        self.opened += 1
        inner = await super().open(source, **options)
        return SpyResource(inner, self.reads, self.closed)


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    body: bytes


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Parse multipart/byteranges strictly: CRLF framing, closing delimiter required."""
    match = re.fullmatch(r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]+)", content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    assert body.startswith(delimiter + b"\r\n"), body[:80]
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n"), body[-80:]
    inner = body[len(delimiter) + 2 : -(len(delimiter) + 6)]
    parts = []
    for raw in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, sep, data = raw.partition(b"\r\n\r\n")
        assert sep, raw[:80]
        headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, data))
    return parts


def http_scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """An HTTP GET scope for /file, as a server would build it (ASGI spec 2.4)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/file",
        "raw_path": b"/file",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {},
    }


@dataclass
class Recorded:
    """What an app did when called once like a server would call it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    #: How often ``receive()`` was called (the first call gets the request).
    receive_calls: int = 0
    #: What the app raised (a server would abort the connection).
    error: Exception | None = None

    @property
    def status(self) -> int | None:
        """The status of ``http.response.start``, if it was sent."""
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        return int(starts[0]["status"]) if starts else None

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The ``http.response.body`` messages."""
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body_messages(self) -> int:
        return len(self.bodies)

    @property
    def body(self) -> bytes:
        """Every body byte sent, in order."""
        return b"".join(m.get("body", b"") for m in self.bodies)

    @property
    def finished(self) -> bool:
        """Whether the final body message (``more_body`` false) was sent."""
        return any(not m.get("more_body", False) for m in self.bodies)


async def record_call(
    app: Any,
    scope: dict[str, Any] | None = None,
    *,
    raises: bool = False,
    on_body: Callable[[Recorded], Awaitable[None]] | None = None,
) -> Recorded:
    """Call ``app`` once for ``scope`` (default: ``GET /file``) and record what it sends.

    ``receive()`` answers the request and then waits forever, like a client that reads the
    whole response. With ``raises``, what the app raises is kept in ``error`` instead.
    ``on_body(recorded)`` runs after each body message (to break something mid-stream). A
    body message after the final one fails the call.
    """
    recorded = Recorded()

    async def receive() -> dict[str, Any]:
        recorded.receive_calls += 1
        if recorded.receive_calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            assert not recorded.finished, "a body message after the final one"
        recorded.messages.append(message)
        if message["type"] == "http.response.body" and on_body is not None:
            await on_body(recorded)

    with anyio.fail_after(30):  # a hang guard, not a timing assertion
        try:
            await app(scope if scope is not None else http_scope(), receive, send)
        except Exception as exc:
            if not raises:
                raise
            recorded.error = exc
    return recorded


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured_logs(name: str = "sendfs") -> Iterator[list[logging.LogRecord]]:
    """The records logged on ``name`` inside the block, at every level.

    A handler on the logger itself, not pytest's ``caplog``: Lilya's logging setup may replace
    the root handlers and stop propagation.
    """
    handler = _Collector()
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


#: The project's root: scripts run from there import the working tree's sendfs.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter from the project's root; its output as text.

    Args:
        script: The Python source.
        env: The environment; by default this process's.
    """
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=PROJECT_ROOT,
    )
