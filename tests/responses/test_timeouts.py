"""Clients that stop reading and storages that stop answering are bounded in time.

``send_timeout``: a body message the client does not take within it aborts the response and
releases the storage stream (a stalled client must not hold an S3 connection for ever).
``storage_timeout``: a storage that does not start answering within it (every connection of
its pool taken) is a 503 with ``Retry-After`` before the first byte, an abort after it.

The app is driven in-process like a server drives it; ``send()`` blocking is how a server
applies back-pressure from a client that reads nothing. The real-server version, with more
stalled clients than the S3 pool holds, is ``tests/e2e/test_stalled_clients.py``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from sendfs import DownloadEvent, StorageFiles, send_file
from sendfs.responses.file import bounded_send
from sendfs.storages import FileInfo, ResourceBase, StorageRegistry
from sendfs.storages.base import DirEntry
from tests.helpers import Recorded, SpyRegistry, asgi_client, captured_logs, http_scope, record_call

pytestmark = pytest.mark.anyio

SIZE = 1024 * 1024
CHUNK = 64 * 1024
CONTENT = random.Random(13).randbytes(SIZE)
#: Short bounds for the tests; the hang guard of record_call is 30 s.
SEND_TIMEOUT = 0.3
STORAGE_TIMEOUT = 0.3


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(CONTENT)
    return path


def stall_after(messages: int) -> Any:
    """An ``on_body`` hook: the client takes ``messages`` body messages, then nothing."""

    async def on_body(recorded: Recorded) -> None:
        if recorded.body_messages >= messages:
            await anyio.sleep_forever()

    return on_body


# -- send_timeout ----------------------------------------------------------------------------


async def test_a_client_that_stops_reading_is_cut_off_and_the_file_released(
    big_file: Path,
) -> None:
    registry = SpyRegistry()
    events: list[DownloadEvent] = []
    response = send_file(
        big_file,
        chunk_size=CHUNK,
        registry=registry,
        send_timeout=SEND_TIMEOUT,
        on_complete=events.append,
    )
    with captured_logs() as records, anyio.fail_after(5):
        recorded = await record_call(response, on_body=stall_after(3))
    assert recorded.status == 200
    assert recorded.body == CONTENT[: 3 * CHUNK]
    assert not recorded.finished  # the server closes the connection: a short body
    assert registry.closed == [True]
    assert registry.reads == [(0, None)]
    assert [event.aborted for event in events] == [True]
    assert events[0].error == "ClientStalled"
    assert [r.levelno for r in records] == [logging.INFO]
    assert f"waited over {SEND_TIMEOUT} s for the client" in records[0].getMessage()


async def test_a_client_that_stops_before_the_only_message_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(b"small")
    with captured_logs() as records, anyio.fail_after(5):
        recorded = await record_call(
            send_file(path, send_timeout=SEND_TIMEOUT), on_body=stall_after(0)
        )
    assert recorded.status == 200
    assert max(r.levelno for r in records) == logging.INFO


async def test_a_slow_client_that_keeps_reading_gets_every_byte(big_file: Path) -> None:
    async def slow(recorded: Recorded) -> None:
        await anyio.sleep(SEND_TIMEOUT / 10)

    response = send_file(big_file, chunk_size=4 * CHUNK, send_timeout=SEND_TIMEOUT)
    recorded = await record_call(response, on_body=slow)
    assert recorded.finished
    assert recorded.body == CONTENT


async def test_no_send_timeout_leaves_send_as_it_is() -> None:
    async def send(message: Any) -> None:
        pass

    assert bounded_send(send, None) is send


# -- storage_timeout: a storage that does not answer -----------------------------------------


class HangingResource(ResourceBase):
    """An object whose reads of ``hang_from`` onwards never start (no free connection)."""

    def __init__(self, hang_from: int) -> None:
        self._info = FileInfo(size=SIZE, etag="e1")
        self.hang_from = hang_from
        self.closed = False

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        if start >= self.hang_from:
            await anyio.sleep_forever()
        end = self.range_end(stop)
        for offset in range(start, end, chunk_size):
            yield CONTENT[offset : min(offset + chunk_size, end)]

    async def aclose(self) -> None:
        self.closed = True


class HangingBackend:
    """``hang://open`` never opens; ``hang://read`` opens, and its reads from byte 0 hang;
    ``hang://second`` hangs from the middle on. Listing never answers."""

    def __init__(self) -> None:
        self.resources: list[HangingResource] = []

    async def open(self, source: Any, **options: Any) -> HangingResource:
        if str(source) == "hang://open":
            await anyio.sleep_forever()
        resource = HangingResource(0 if str(source) == "hang://read" else SIZE // 2)
        self.resources.append(resource)
        return resource

    async def list(self, source: Any, **options: Any) -> list[DirEntry]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture
def hanging() -> tuple[StorageRegistry, HangingBackend]:
    registry = StorageRegistry(entry_points=False)
    backend = HangingBackend()
    registry.register("hang", backend)
    return registry, backend


@pytest.mark.parametrize("source", ["hang://open", "hang://read"])
async def test_a_storage_that_does_not_answer_is_a_503_with_retry_after(
    hanging: tuple[StorageRegistry, HangingBackend], source: str
) -> None:
    registry, backend = hanging
    response = send_file(source, registry=registry, storage_timeout=STORAGE_TIMEOUT)
    with captured_logs() as records, anyio.fail_after(5):
        recorded = await record_call(response, raises=True)
    assert recorded.status is None
    assert getattr(recorded.error, "status_code", None) == 503
    assert getattr(recorded.error, "headers", None) == {"Retry-After": "5"}
    assert all(resource.closed for resource in backend.resources)
    assert [r.levelno for r in records] == [logging.INFO]
    assert f"took over {STORAGE_TIMEOUT} s" in records[0].getMessage()


async def test_a_part_the_storage_does_not_start_aborts_the_multipart_response(
    hanging: tuple[StorageRegistry, HangingBackend],
) -> None:
    registry, backend = hanging
    response = send_file("hang://second", registry=registry, storage_timeout=STORAGE_TIMEOUT)
    scope = http_scope([(b"range", f"bytes=0-9,{SIZE - 10}-".encode())])
    with anyio.fail_after(5):
        recorded = await record_call(response, scope, raises=True)
    assert recorded.status == 206
    assert not recorded.finished
    assert type(recorded.error).__name__ == "StorageBusy"
    assert backend.resources[0].closed


async def test_storage_files_renders_the_503_with_its_retry_after(
    hanging: tuple[StorageRegistry, HangingBackend],
) -> None:
    registry, _ = hanging
    app = StorageFiles("hang://", registry=registry, storage_timeout=STORAGE_TIMEOUT, listing=True)
    async with asgi_client(app) as client:
        with anyio.fail_after(5):
            opening = await client.get("/open")
            listing = await client.get("/")
    for answer in (opening, listing):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, float("nan"), "10", True])
@pytest.mark.parametrize("name", ["send_timeout", "storage_timeout"])
def test_a_bad_timeout_fails_when_the_response_is_built(
    big_file: Path, name: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=name):
        send_file(big_file, **{name: value})
    with pytest.raises(ValueError, match=name):
        StorageFiles(big_file.parent, **{name: value})


@pytest.mark.parametrize(
    "headers",
    [[], [(b"if-none-match", b"*")]],
    ids=["head", "not-modified"],
)
async def test_an_answer_without_a_body_releases_the_storage_before_it_waits(
    big_file: Path, headers: list[tuple[bytes, bytes]]
) -> None:
    """A pipelining client that reads nothing must not hold a file (or an S3 connection)."""
    registry = SpyRegistry()
    closed_when_sent: list[list[bool]] = []
    response = send_file(big_file, registry=registry, send_timeout=SEND_TIMEOUT)
    scope = {**http_scope(headers), "method": "HEAD" if not headers else "GET"}

    async def stall(message: MutableMapping[str, Any]) -> None:
        closed_when_sent.append(list(registry.closed))
        await anyio.sleep_forever()

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    with captured_logs() as records, anyio.fail_after(5):
        await response(scope, receive, stall)
    assert closed_when_sent == [[True]]
    assert [r.levelno for r in records] == [logging.INFO]
