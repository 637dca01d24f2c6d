"""Clients that leave mid-download: reading stops within a chunk and every handle is released.

The app is driven like a server would drive it, in the two ways ASGI lets a server report a
client that went away: ``receive()`` answers ``http.disconnect`` (once the first body message is
out), or ``send()`` raises ``OSError`` (ASGI 2.4). After hundreds of aborted downloads the
process holds no more descriptors, sockets or memory than before, and the next download is whole.
"""

from __future__ import annotations

import errno
import gc
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from lilya.apps import Lilya

from sendfs import send_file
from sendfs.responses.file import FileResponse, closing_iterator
from sendfs.storages import FileInfo, Resource, StorageRegistry
from sendfs.storages.s3 import S3Resource
from tests.helpers import http_scope, lilya_app, record_call

pytestmark = pytest.mark.anyio

SIZE = 4 * 1024 * 1024
CHUNK = 64 * 1024
CONTENT = random.Random(6).randbytes(SIZE)
ABORTS = 500
S3_ABORTS = 30
MODES = ("disconnect", "oserror")


# -- observing the backend -------------------------------------------------------------------


@dataclass
class CountedResource:
    """Wraps a resource: counts the chunks pulled out of the backend and the closes."""

    inner: Resource
    registry: CountingRegistry

    @property
    def info(self) -> FileInfo:
        return self.inner.info

    @property
    def chunk_size_hint(self) -> int:
        hint: int = getattr(self.inner, "chunk_size_hint", CHUNK)
        return hint

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        # Closing the inner generator when this one is closed, as the response does: a plain
        # ``async for`` would leave it (and an S3 body) open until garbage collection.
        async with closing_iterator(self.inner.iter_range(start, stop, chunk_size)) as chunks:
            async for chunk in chunks:
                self.registry.chunks_read += 1
                yield chunk

    async def aclose(self) -> None:
        self.registry.closed += 1
        await self.inner.aclose()


@dataclass
class S3Bodies:
    """Every GetObject body the s3fs client handed out (botocore ``after-call`` hook)."""

    bodies: list[Any] = field(default_factory=list)
    hooked: set[int] = field(default_factory=set)

    def watch(self, resource: S3Resource) -> None:
        client = resource._fs._s3
        if id(client) in self.hooked:
            return
        self.hooked.add(id(client))

        def after_call(parsed: dict[str, Any], **_: Any) -> None:
            self.bodies.append(parsed["Body"])

        client.meta.events.register("after-call.s3.GetObject", after_call)

    def open_bodies(self) -> list[Any]:
        """The bodies whose aiohttp response is not closed."""
        return [body for body in self.bodies if not body._raw_stream.closed]


class CountingRegistry(StorageRegistry):
    """A registry whose resources count opens, closes and chunks read, and watch S3 bodies."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.closed = 0
        self.chunks_read = 0
        self.s3 = S3Bodies()

    async def open(self, source: Any, **options: Any) -> Resource:
        resource = await super().open(source, **options)
        self.opened += 1
        if isinstance(resource, S3Resource):
            self.s3.watch(resource)
        return CountedResource(resource, self)


# -- driving the app like a server -----------------------------------------------------------


@dataclass
class Outcome:
    """What the app sent before (and after) the client left."""

    status: int | None = None
    body_messages: int = 0
    delivered: int = 0
    finished: bool = False


async def aborted_download(app: Any, mode: str, headers: list[tuple[bytes, bytes]]) -> Outcome:
    """A client that goes away right after the first body message reaches it."""
    outcome = Outcome()
    first_body_sent = anyio.Event()
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if mode == "disconnect":
            await first_body_sent.wait()
            return {"type": "http.disconnect"}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
            return
        outcome.body_messages += 1
        if mode == "oserror" and outcome.body_messages > 1:
            raise OSError(errno.EPIPE, "the client closed the connection")
        outcome.delivered += len(message.get("body", b""))
        outcome.finished = not message.get("more_body", False)
        first_body_sent.set()

    with anyio.fail_after(30):  # a hang guard, not a timing assertion
        await app(http_scope(headers), receive, send)
    return outcome


async def full_download(app: Any, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A client that reads the whole response."""
    recorded = await record_call(app, http_scope(headers))
    assert recorded.finished
    return recorded.body


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_sockets() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:  # noqa: PERF203 - closed between listdir and readlink
            continue
    return count


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")  # pragma: no cover


async def settle(condition: Any, seconds: float = 10) -> None:
    """Give in-process servers a moment to close their side; a bounded wait, not a timing."""
    with anyio.move_on_after(seconds):
        while not condition():
            gc.collect()
            await anyio.sleep(0.05)


def file_app(source: Any, registry: CountingRegistry) -> Lilya:
    async def endpoint() -> FileResponse:
        return send_file(source, chunk_size=CHUNK, registry=registry)

    return lilya_app(endpoint)


@pytest.fixture
def big_file(tmp_path: Path) -> str:
    path = tmp_path / "big.bin"
    path.write_bytes(CONTENT)
    return str(path)


@pytest.fixture
async def counting() -> AsyncIterator[CountingRegistry]:
    reg = CountingRegistry()
    try:
        yield reg
    finally:
        await reg.aclose()


def assert_aborted_promptly(
    outcome: Outcome, chunks_read: int, status: int, *, slack: int = 0
) -> None:
    """Nothing sent after the first chunk, and the backend read at most one chunk more.

    ``slack`` allows extra chunks for sources whose next piece is already buffered in memory
    (an S3 body read from aiohttp's buffer does not suspend), so the disconnect, which travels
    through the app's receive chain, lands a scheduling step later.
    """
    assert outcome.status == status
    assert not outcome.finished
    assert 1 <= outcome.body_messages <= 2 + slack
    # Each message carries at most one chunk (and, for multipart, a part header).
    assert 0 < outcome.delivered <= outcome.body_messages * (CHUNK + 200)
    assert chunks_read <= 2 + slack, (chunks_read, outcome)


# -- local files -----------------------------------------------------------------------------


async def test_500_aborted_downloads_release_every_descriptor_and_keep_memory_flat(
    big_file: str, counting: CountingRegistry
) -> None:
    app = file_app(big_file, counting)
    # Warm up (worker threads, lazy imports) before taking the baseline.
    assert await full_download(app) == CONTENT
    await aborted_download(app, "disconnect", [])
    gc.collect()
    fds_before, rss_before = open_fds(), rss_bytes()
    opened_before = counting.opened

    for attempt in range(ABORTS):
        chunks_before = counting.chunks_read
        outcome = await aborted_download(app, MODES[attempt % 2], [])
        assert_aborted_promptly(outcome, counting.chunks_read - chunks_before, 200)
        # Closed before the app returned, not some time later.
        assert counting.closed == counting.opened

    gc.collect()
    assert counting.opened == opened_before + ABORTS
    assert open_fds() <= fds_before + 2
    assert rss_bytes() - rss_before < 32 * 1024 * 1024
    assert await full_download(app) == CONTENT
    assert counting.closed == counting.opened


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("range_header", "status"),
    [
        (b"bytes=1000-", 206),
        (b"bytes=0-99999,200000-299999,3000000-", 206),  # multipart
    ],
    ids=["range", "multipart"],
)
async def test_aborted_range_downloads_stop_reading_and_close_the_file(
    big_file: str, counting: CountingRegistry, mode: str, range_header: bytes, status: int
) -> None:
    app = file_app(big_file, counting)
    fds_before = open_fds()
    for _ in range(20):
        chunks_before = counting.chunks_read
        outcome = await aborted_download(app, mode, [(b"range", range_header)])
        assert_aborted_promptly(outcome, counting.chunks_read - chunks_before, status)
        assert counting.closed == counting.opened
    assert open_fds() <= fds_before + 2
    body = await full_download(app, [(b"range", b"bytes=1000-")])
    assert body == CONTENT[1000:]


# -- S3 --------------------------------------------------------------------------------------


@pytest.mark.s3
async def test_aborted_s3_downloads_close_every_body_and_socket(
    s3_client: Any, bucket: str, counting: CountingRegistry
) -> None:
    s3_client.put_object(Bucket=bucket, Key="big.bin", Body=CONTENT)
    app = file_app(f"s3://{bucket}/big.bin", counting)
    assert await full_download(app) == CONTENT
    await settle(lambda: not counting.s3.open_bodies())
    sockets_before = open_sockets()
    fds_before = open_fds()
    bodies_before = len(counting.s3.bodies)

    for attempt in range(S3_ABORTS):
        chunks_before = counting.chunks_read
        outcome = await aborted_download(app, MODES[attempt % 2], [])
        assert_aborted_promptly(outcome, counting.chunks_read - chunks_before, 200, slack=1)
        assert counting.closed == counting.opened
        # The aiobotocore body (its aiohttp response) is closed before the app returns.
        assert counting.s3.open_bodies() == [], (
            attempt,
            [counting.s3.bodies.index(b) for b in counting.s3.open_bodies()],
            outcome,
        )

    # One GetObject per download: it opens the object and streams it.
    assert len(counting.s3.bodies) - bodies_before == S3_ABORTS
    # moto runs in this process: its side of each cut connection closes on its own thread.
    await settle(lambda: open_sockets() <= sockets_before + 2 and open_fds() <= fds_before + 2)
    assert open_sockets() <= sockets_before + 2
    assert open_fds() <= fds_before + 2
    assert await full_download(app) == CONTENT
