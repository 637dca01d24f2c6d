"""Async iterables as sources: served once, whole, chunked or with an exact size."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from sendfs import FileResponse, Stream, send_file
from tests.helpers import Recorded, asgi_client, lilya_app
from tests.responses.test_disconnects import aborted_download
from tests.storages.test_faults import drive

pytestmark = pytest.mark.anyio


async def csv_rows(count: int = 3) -> AsyncIterator[bytes]:
    yield b"id,name\n"
    for index in range(count):
        yield f"{index},row {index}\n".encode()


CSV = b"id,name\n0,row 0\n1,row 1\n2,row 2\n"
CHUNK = 64 * 1024


def client(make: Any, **options: Any) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_file(make(), **options)

    return asgi_client(lilya_app(endpoint))


async def test_without_a_size_the_body_is_chunked() -> None:
    async with client(csv_rows, download_name="report.csv") as app:
        response = await app.get("/file", headers={"Range": "bytes=0-3"})
    assert response.status_code == 200  # no ranges on a stream
    assert response.content == CSV
    assert "content-length" not in response.headers
    assert response.headers["accept-ranges"] == "none"
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'inline; filename="report.csv"'
    assert "etag" not in response.headers
    assert "last-modified" not in response.headers


async def test_with_a_size_the_length_is_exact() -> None:
    async with client(csv_rows, size=len(CSV), as_attachment=True) as app:
        response = await app.get("/file")
        conditional = await app.get("/file", headers={"If-None-Match": "*"})
    assert response.headers["content-length"] == str(len(CSV))
    assert response.content == CSV
    assert response.headers["accept-ranges"] == "none"
    # No validators: nothing to compare an If-None-Match against but "any representation".
    assert conditional.status_code == 304


async def test_large_pieces_are_split_into_chunks() -> None:
    async def one_big_piece() -> AsyncIterator[bytes]:
        yield bytes(1000)

    async def endpoint() -> FileResponse:
        return send_file(one_big_piece(), chunk_size=64)

    transcript = await drive(lilya_app(endpoint))
    assert transcript.finished
    assert transcript.body == bytes(1000)
    assert transcript.body_messages == 1000 // 64 + 1 + 1  # pieces, the remainder, the end


@pytest.mark.parametrize("kind", [bytearray, memoryview, "ints"])
async def test_a_large_buffer_is_copied_a_chunk_at_a_time_never_whole(kind: Any) -> None:
    """A caller's 16 MiB bytearray or memoryview costs a chunk or two, not a copy of it."""
    data = bytearray(random.Random(3).randbytes(16 * 1024 * 1024))
    item: Any = memoryview(data).cast("i") if kind == "ints" else kind(data)

    async def one_buffer() -> AsyncIterator[Any]:
        yield item

    async def endpoint() -> FileResponse:
        return send_file(one_buffer(), chunk_size=CHUNK)

    received = hashlib.sha256()

    async def digest(recorded: Recorded) -> None:
        # Keep the digest, not the bytes: the recorder would otherwise hold all 16 MiB.
        message = recorded.messages[-1]
        received.update(message["body"])
        message["body"] = b""

    tracemalloc.start()
    try:
        transcript = await drive(lilya_app(endpoint), on_body=digest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert transcript.finished
    assert received.digest() == hashlib.sha256(data).digest()
    assert peak < 8 * CHUNK, peak  # the old code's bytes(item): 16 MiB at once


async def test_a_memoryview_that_is_not_contiguous_is_a_type_error() -> None:
    async def strided() -> AsyncIterator[memoryview]:
        yield memoryview(bytes(100))[::2]

    async def endpoint() -> FileResponse:
        return send_file(strided())

    transcript = await drive(lilya_app(endpoint))
    assert isinstance(transcript.error, TypeError)
    assert "contiguous" in str(transcript.error)


@pytest.mark.parametrize(("size", "produced"), [(len(CSV) + 5, "fewer"), (len(CSV) - 5, "more")])
async def test_a_stream_that_breaks_its_size_aborts(size: int, produced: str) -> None:
    async def endpoint() -> FileResponse:
        return send_file(csv_rows(), size=size, chunk_size=8)

    transcript = await drive(lilya_app(endpoint))
    assert transcript.status == 200
    assert not transcript.finished
    assert type(transcript.error).__name__ == "BackendError"
    assert len(transcript.body) <= size


async def test_text_items_are_a_type_error_that_says_what_to_do() -> None:
    async def text() -> AsyncIterator[str]:
        yield "not bytes"

    async def endpoint() -> FileResponse:
        return send_file(text())  # type: ignore[arg-type]

    transcript = await drive(lilya_app(endpoint))
    assert isinstance(transcript.error, TypeError)
    assert "encode" in str(transcript.error)


def test_bad_sources_and_sizes_are_refused() -> None:
    with pytest.raises(TypeError, match="async iterable"):
        send_file(iter([b"sync"]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="size= is for async iterable"):
        send_file("/etc/hostname", size=3)
    with pytest.raises(ValueError, match="non-negative"):
        send_file(csv_rows(), size=-1)
    with pytest.raises(TypeError, match="async iterable"):
        Stream([b"a"])  # type: ignore[arg-type]


async def test_head_never_starts_the_generator() -> None:
    started = False

    async def watched() -> AsyncIterator[bytes]:
        nonlocal started
        started = True
        yield b"x"

    async with client(watched, size=1) as app:
        response = await app.head("/file")
    assert response.headers["content-length"] == "1"
    assert not started


async def test_a_client_leaving_closes_the_generator() -> None:
    closed = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"." * 4096
        finally:
            closed.set()

    async def endpoint() -> FileResponse:
        return send_file(endless())

    outcome = await aborted_download(lilya_app(endpoint), "disconnect", [])
    assert not outcome.finished
    assert closed.is_set()


async def test_a_stream_object_can_carry_its_name() -> None:
    async with client(lambda: Stream(csv_rows(), size=len(CSV), name="rows.csv")) as app:
        response = await app.get("/file")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'inline; filename="rows.csv"'
