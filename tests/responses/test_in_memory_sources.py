"""In-memory file objects are served a chunk at a time: never copied whole, never in one step.

A ``BytesIO(data)`` shares the caller's ``data`` until something makes it own a copy
(``getbuffer()``, a write): serving it must not, or every download of a 200 MiB export costs
another 200 MiB and stops the event loop while the copy is made. ``tracemalloc`` sees every
allocation, so the tests measure what is allocated between two messages of the response (one
chunk and some change) and over the whole download, with the source allocated before tracing.
"""

from __future__ import annotations

import hashlib
import io
import platform
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import pytest

from sendfs import send_file
from sendfs.storages import FileObjBackend
from sendfs.storages.base import DEFAULT_CHUNK_SIZE
from tests.helpers import http_scope, parse_multipart

pytestmark = pytest.mark.anyio

KIB = 1024
MIB = 1024 * KIB
#: Big enough that a whole copy dwarfs any chunk.
SIZE = 64 * MIB
#: What a step may allocate besides its chunk (message dicts, coroutine frames, headers).
SLACK = 64 * KIB


class ViewReader:
    """A seekable reader over a ``memoryview``, as a library may hand one out."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        stop = len(self._view) if size < 0 else self._position + size
        piece = bytes(self._view[self._position : stop])
        self._position += len(piece)
        return piece

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        self._position = start[whence] + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._view.release()


def _spooled(data: bytes) -> Any:
    spooled = tempfile.SpooledTemporaryFile(max_size=2 * len(data))  # noqa: SIM115
    spooled.write(data)
    spooled.seek(0)
    return spooled


def _buffered(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))


#: Every kind of in-memory source, each built from the data before tracing starts.
SOURCES: dict[str, Callable[[bytes], Any]] = {
    "BytesIO": io.BytesIO,
    "SpooledTemporaryFile": _spooled,
    "BufferedReader-over-BytesIO": _buffered,
    "memoryview-reader": ViewReader,
}


@pytest.fixture(scope="module")
def data() -> bytes:
    """SIZE bytes in which neighbouring offsets differ, allocated before any tracing."""
    return bytes(range(251)) * (SIZE // 251) + bytes(range(SIZE % 251))


@dataclass
class Traced:
    """What a response sent, and the memory it allocated while sending it."""

    keep_body: bool = False
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    digest: Any = field(default_factory=hashlib.sha256)
    length: int = 0
    pieces: list[bytes] = field(default_factory=list)
    #: The most allocated between two messages, above what was held at the first of them.
    largest_step: int = 0
    #: The most held at once, above what was held when the response was called.
    peak: int = 0
    _start: int = 0
    _level: int = 0

    def begin(self) -> None:
        tracemalloc.reset_peak()
        self._start = self._level = tracemalloc.get_traced_memory()[0]

    def step(self) -> None:
        current, peak = tracemalloc.get_traced_memory()
        self.largest_step = max(self.largest_step, peak - self._level)
        self.peak = max(self.peak, peak - self._start)
        tracemalloc.reset_peak()
        self._level = current

    def record(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            self.digest.update(body)
            self.length += len(body)
            if self.keep_body:
                self.pieces.append(body)

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


@contextmanager
def tracing() -> Iterator[None]:
    """Trace allocations in the block (one frame each: only the sizes matter here)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        yield
    finally:
        if not was_tracing:
            tracemalloc.stop()


async def traced_download(
    response: Any, headers: list[tuple[bytes, bytes]] | None = None, *, keep_body: bool = False
) -> Traced:
    """Call ``response`` as a server would, measuring allocations between its messages.

    The body is hashed and dropped (kept only with ``keep_body``), so the client's copy of it
    is not counted; ``receive()`` waits like a client reading the whole response.
    """
    traced = Traced(keep_body=keep_body)
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        traced.step()
        traced.record(message)

    with anyio.fail_after(60), tracing():  # a hang guard, not a timing assertion
        traced.begin()
        await response(http_scope(headers), receive, send)
        traced.step()
    return traced


# -- no whole copy, no step bigger than a chunk ----------------------------------------------


@pytest.mark.parametrize("kind", list(SOURCES))
@pytest.mark.parametrize("chunk_size", [64 * KIB, DEFAULT_CHUNK_SIZE, MIB])
async def test_a_full_download_allocates_one_chunk_per_step(
    data: bytes, kind: str, chunk_size: int
) -> None:
    source = SOURCES[kind](data)
    traced = await traced_download(send_file(source, chunk_size=chunk_size))
    assert traced.status == 200
    assert traced.length == SIZE
    assert traced.digest.digest() == hashlib.sha256(data).digest()
    # A whole copy of the source would be 64 MiB in one step.
    assert traced.largest_step <= chunk_size + SLACK, traced.largest_step
    # The chunk being sent, the one read next, and the response's own: never the source.
    assert traced.peak <= 4 * chunk_size, traced.peak


async def test_a_bytesio_served_from_its_position_is_not_copied_whole(data: bytes) -> None:
    buffer = io.BytesIO(data)
    buffer.seek(SIZE // 2)
    traced = await traced_download(send_file(buffer))
    assert traced.length == SIZE - SIZE // 2
    assert traced.digest.digest() == hashlib.sha256(data[SIZE // 2 :]).digest()
    assert traced.largest_step <= DEFAULT_CHUNK_SIZE + SLACK, traced.largest_step


async def test_a_small_bytesio_read_whole_allocates_nothing_for_its_body() -> None:
    data = bytes(range(256)) * 512  # 128 KiB: one chunk; BytesIO.read hands back `data` itself
    traced = await traced_download(send_file(io.BytesIO(data)))
    assert traced.digest.digest() == hashlib.sha256(data).digest()
    assert traced.peak < len(data) // 2, traced.peak


# -- ranges and multipart ranges over a big BytesIO ------------------------------------------

RANGES = [(100, 300_000), (5 * MIB - 7, 5 * MIB + 700_000), (SIZE - 1000, SIZE - 1)]


async def test_a_range_across_chunks_is_exact_and_not_a_whole_copy(data: bytes) -> None:
    first, last = RANGES[1]
    traced = await traced_download(
        send_file(io.BytesIO(data)), [(b"range", f"bytes={first}-{last}".encode())], keep_body=True
    )
    assert traced.status == 206
    assert traced.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert traced.body == data[first : last + 1]
    assert traced.largest_step <= DEFAULT_CHUNK_SIZE + SLACK, traced.largest_step


async def test_multipart_ranges_of_one_bytesio_are_exact_and_in_request_order(
    data: bytes,
) -> None:
    spec = ",".join(f"{first}-{last}" for first, last in reversed(RANGES))
    traced = await traced_download(
        send_file(io.BytesIO(data)), [(b"range", f"bytes={spec}".encode())], keep_body=True
    )
    assert traced.status == 206
    assert int(traced.headers["content-length"]) == traced.length
    parts = parse_multipart(traced.headers["content-type"], traced.body)
    assert [part.body for part in parts] == [data[a : b + 1] for a, b in reversed(RANGES)]
    assert [part.headers["content-range"] for part in parts] == [
        f"bytes {a}-{b}/{SIZE}" for a, b in reversed(RANGES)
    ]
    # A part's header is joined to its first chunk, a second copy of that chunk: two chunks
    # in that step, never the source.
    assert traced.largest_step <= 2 * DEFAULT_CHUNK_SIZE + SLACK, traced.largest_step


# -- the caller's buffer stays shared; reads stay on the loop --------------------------------


@pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="BytesIO sharing is CPython's"
)
async def test_reading_a_bytesio_leaves_it_sharing_the_callers_bytes() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    buffer = io.BytesIO(data)
    resource = await FileObjBackend().open(buffer)
    try:
        pieces = [piece async for piece in resource.iter_range(0, None, 64 * KIB)]
        pieces += [piece async for piece in resource.iter_range(1000, 2000, 64 * KIB)]
        assert b"".join(pieces) == data + data[1000:2000]
        # CPython's BytesIO.read() hands back the bytes it was built from while it still
        # shares them; once anything made it copy them (getbuffer()), it returns its copy.
        buffer.seek(0)
        assert buffer.read() is data
    finally:
        await resource.aclose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions sent to worker threads while the test runs."""
    sent: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(function, "__name__", repr(function)))
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return sent


@pytest.mark.parametrize("kind", ["BytesIO", "SpooledTemporaryFile"])
async def test_in_memory_chunks_are_read_without_a_thread_hop_each(
    data: bytes, hops: list[str], kind: str
) -> None:
    source = SOURCES[kind](data[: 4 * MIB])
    resource = await FileObjBackend().open(source)
    try:
        pieces = [piece async for piece in resource.iter_range(0, None, 64 * KIB)]
    finally:
        await resource.aclose()
    assert b"".join(pieces) == data[: 4 * MIB]
    assert len(pieces) == 64
    assert len(hops) <= 2, hops  # measuring and closing, not one per chunk


class OwnReadBytesIO(io.BytesIO):
    """A BytesIO subclass with a ``read`` of its own, which may block: read in threads."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(size)


async def test_a_bytesio_subclass_with_its_own_read_is_read_in_threads(
    hops: list[str],
) -> None:
    resource = await FileObjBackend().open(OwnReadBytesIO(b"x" * 1000))
    try:
        pieces = [piece async for piece in resource.iter_range(0, None, 300)]
    finally:
        await resource.aclose()
    assert b"".join(pieces) == b"x" * 1000
    assert hops.count("_read_at") == 4
