"""Backend faults: an S3 server dying mid-stream, endpoints that hang or refuse, http(s) origins
that fail, disk read errors, and an S3 object overwritten during a download.

Before the first byte a fault is a clean 502; after it the response aborts (the error reaches the
server, no final body message), never a short 200 and never a hang. Every wait is bounded by
``anyio.fail_after``: a hang guard, not a timing assertion.

Faults are real: the S3 connection is cut by closing sockets (a TCP proxy between s3fs and its own
moto server, which is stopped too), the hanging endpoint is a socket that accepts and never
answers, and the disk error is the kernel refusing ``pread`` on a descriptor not open for reading.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream

from sendfs import BackendError, SourceChanged, send_file
from sendfs.responses.file import FileResponse
from sendfs.storages import Resource, StorageRegistry
from sendfs.storages.local import LocalResource
from tests.conftest import FAKE_AWS_ENV, free_port
from tests.helpers import Recorded, asgi_client, captured_logs, http_scope, lilya_app, record_call

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
HANG_GUARD = 30


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials for tests that run their own S3 endpoints."""
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# -- driving the app like a server -----------------------------------------------------------


async def drive(
    app: Any,
    on_body: Callable[[Recorded], Awaitable[None]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Recorded:
    """Call ``app`` for ``GET /file``, keeping what it raises (the server would abort).

    ``on_body(recorded)`` runs after each body message, to break something mid-stream.
    """
    return await record_call(app, http_scope(headers), raises=True, on_body=on_body)


def caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is a ``kind``."""
    seen = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def assert_aborted_after_first_byte(transcript: Recorded, size: int) -> None:
    """Headers and some bytes went out, then the error reached the server: no short 200."""
    assert transcript.status in (200, 206)
    assert transcript.body_messages >= 1
    assert not transcript.finished
    assert len(transcript.body) < size
    assert caused_by(transcript.error, BackendError), repr(transcript.error)


# -- a cuttable TCP path to S3 ---------------------------------------------------------------


@dataclass
class Proxy:
    """A TCP proxy on 127.0.0.1 that relays at most ``budget`` bytes per connection downstream
    (what a server sent before it died) and closes every socket when cut."""

    upstream_port: int
    budget: int
    port: int = 0
    cut_event: anyio.Event = field(default_factory=anyio.Event)
    connections: int = 0
    #: Flip the bits of the downstream byte at this offset of each connection (a corrupted hop).
    corrupt_at: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.cut_event.set()

    async def handle(self, client: SocketStream) -> None:
        self.connections += 1
        async with client, await anyio.connect_tcp("127.0.0.1", self.upstream_port) as server:  # noqa: SIM117
            async with anyio.create_task_group() as group:
                group.start_soon(self._pump, client, server, None, group.cancel_scope)
                group.start_soon(self._pump, server, client, self.budget, group.cancel_scope)
                await self.cut_event.wait()
                group.cancel_scope.cancel()
        # Leaving both ``async with`` blocks closed both sockets: to s3fs, the server is gone.

    async def _pump(
        self,
        source: SocketStream,
        sink: SocketStream,
        budget: int | None,
        scope: anyio.CancelScope,
    ) -> None:
        relayed = 0
        try:
            while budget is None or relayed < budget:
                data = await source.receive(65536 if budget is None else min(65536, budget))
                if budget is not None:
                    data = data[: budget - relayed]
                    data = self._corrupted(data, relayed)
                await sink.send(data)
                relayed += len(data)
            await self.cut_event.wait()  # the rest never comes: the server died
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        scope.cancel()

    def _corrupted(self, data: bytes, offset: int) -> bytes:
        at = None if self.corrupt_at is None else self.corrupt_at - offset
        if at is None or not 0 <= at < len(data):
            return data
        return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@asynccontextmanager
async def cuttable_proxy(
    upstream_port: int, budget: int, corrupt_at: int | None = None
) -> AsyncIterator[Proxy]:
    proxy = Proxy(upstream_port, budget, corrupt_at=corrupt_at)
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as group,
    ):
        proxy.port = listener.extra(SocketAttribute.local_port)
        group.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            proxy.cut()
            group.cancel_scope.cancel()


@dataclass
class DyingS3:
    """A moto server of this test's own, reached through a cuttable proxy."""

    server: Any
    port: int
    client: Any
    bucket: str = "dying-s3"
    stopped: bool = False

    def stop(self) -> None:
        """Stop moto; a stopped moto still finishes bodies in flight, the proxy cut ends them."""
        if not self.stopped:
            self.stopped = True
            self.server.stop()

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


@pytest.fixture
def dying_s3(fake_aws: None) -> Iterator[DyingS3]:
    """A SEPARATE ThreadedMotoServer (not the shared one): this test stops it."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    s3 = DyingS3(server, port, client)
    try:
        client.create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        s3.stop()


# -- (a) the S3 server dies mid-stream -------------------------------------------------------


EIGHT_MIB = random.Random(3).randbytes(8 * MIB)


async def test_s3_server_dying_mid_stream_raises_backend_error(dying_s3: DyingS3) -> None:
    dying_s3.put("big.bin", EIGHT_MIB)
    registry = StorageRegistry()
    try:
        async with cuttable_proxy(dying_s3.port, budget=2 * MIB) as proxy:
            resource = await registry.open(
                f"s3://{dying_s3.bucket}/big.bin", endpoint_url=proxy.url
            )
            try:
                chunks = resource.iter_range(0, None, MIB)
                received = len(await anext(chunks))
                assert 0 < received <= MIB
                dying_s3.stop()
                proxy.cut()
                with anyio.fail_after(HANG_GUARD), pytest.raises(BackendError):  # noqa: PT012
                    async for chunk in chunks:
                        received += len(chunk)
                assert received < len(EIGHT_MIB)
                await chunks.aclose()  # type: ignore[attr-defined]
            finally:
                await resource.aclose()
    finally:
        await registry.aclose()


async def test_s3_server_dying_mid_response_aborts_it_instead_of_a_short_200(
    dying_s3: DyingS3,
) -> None:
    dying_s3.put("big.bin", EIGHT_MIB)
    registry = StorageRegistry()
    try:
        async with cuttable_proxy(dying_s3.port, budget=2 * MIB) as proxy:

            async def endpoint() -> FileResponse:
                return send_file(
                    f"s3://{dying_s3.bucket}/big.bin",
                    storage_options={"endpoint_url": proxy.url},
                    chunk_size=MIB,
                    registry=registry,
                )

            async def die_after_first_chunk(transcript: Recorded) -> None:
                if transcript.body_messages == 1:
                    dying_s3.stop()
                    proxy.cut()

            transcript = await drive(lilya_app(endpoint), die_after_first_chunk)
    finally:
        await registry.aclose()
    assert transcript.status == 200
    assert_aborted_after_first_byte(transcript, len(EIGHT_MIB))
    assert EIGHT_MIB.startswith(transcript.body)


async def test_s3_body_corrupted_on_the_way_aborts_before_its_last_byte(
    dying_s3: DyingS3,
) -> None:
    # boto3 uploads with a CRC32 and moto sends it back with the body (x-amz-checksum-crc32);
    # a byte flipped between S3 and the app must not reach the client as a complete body.
    dying_s3.put("big.bin", EIGHT_MIB)
    registry = StorageRegistry()
    try:
        async with cuttable_proxy(dying_s3.port, budget=1 << 40, corrupt_at=4 * MIB) as proxy:

            async def endpoint() -> FileResponse:
                return send_file(
                    f"s3://{dying_s3.bucket}/big.bin",
                    storage_options={"endpoint_url": proxy.url},
                    chunk_size=MIB,
                    registry=registry,
                )

            transcript = await drive(lilya_app(endpoint))
    finally:
        await registry.aclose()
    assert transcript.status == 200
    assert_aborted_after_first_byte(transcript, len(EIGHT_MIB))
    assert (
        "checksum" in repr(transcript.error).lower()
        or "crc" in repr(transcript.error.__cause__ if transcript.error else None).lower()
    )


# -- (b) before the first byte: endpoints that hang or refuse ---------------------------------

#: Short timeouts and one attempt, so a dead endpoint is a 502 in a few seconds.
IMPATIENT: dict[str, Any] = {
    "config_kwargs": {"read_timeout": 1, "connect_timeout": 1, "retries": {"max_attempts": 1}},
    "retries": 1,
}


@dataclass
class SilentEndpoint:
    """An endpoint that accepts TCP connections and never answers; it counts the attempts."""

    url: str = ""
    connections: int = 0

    async def hold(self, stream: SocketStream) -> None:
        self.connections += 1
        async with stream:
            await anyio.sleep_forever()


@asynccontextmanager
async def loopback_endpoint(
    handler: Callable[[SocketStream], Awaitable[None]],
) -> AsyncIterator[str]:
    """Serve TCP connections on 127.0.0.1 with ``handler``; yields ``http://127.0.0.1:PORT``."""
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as group,
    ):
        group.start_soon(listener.serve, handler)
        try:
            yield f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
        finally:
            group.cancel_scope.cancel()


@asynccontextmanager
async def silent_endpoint() -> AsyncIterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    async with loopback_endpoint(endpoint.hold) as url:
        endpoint.url = url
        yield endpoint


async def _open_error(endpoint_url: str) -> BackendError:
    """The error opening an object behind ``endpoint_url`` raises."""
    registry = StorageRegistry()
    try:
        with anyio.fail_after(HANG_GUARD), pytest.raises(BackendError) as caught:
            await registry.open("s3://no-answer/key.bin", **IMPATIENT, endpoint_url=endpoint_url)
    finally:
        await registry.aclose()
    return caught.value


async def _status_from(endpoint_url: str) -> int:
    """The status an app serving an object behind ``endpoint_url`` answers."""
    registry = StorageRegistry()
    options = {**IMPATIENT, "endpoint_url": endpoint_url}

    async def endpoint() -> FileResponse:
        return send_file("s3://no-answer/key.bin", storage_options=options, registry=registry)

    try:
        with anyio.fail_after(HANG_GUARD):
            async with asgi_client(lilya_app(endpoint)) as client:
                response = await client.get("/file")
    finally:
        await registry.aclose()
    assert response.text == "Bad Gateway"  # the phrase only: no endpoint or bucket leaks
    return response.status_code


async def test_s3_endpoint_that_never_answers_is_a_502_not_a_hang(fake_aws: None) -> None:
    from botocore.exceptions import ReadTimeoutError

    async with silent_endpoint() as silent:
        assert await _status_from(silent.url) == 502
        attempts = silent.connections
        error = await _open_error(silent.url)
        assert caused_by(error, ReadTimeoutError), repr(error)
        # One attempt per call (HEAD, then s3fs's listing fallback): ``retries`` is s3fs's own
        # count (5 by default) on top of botocore's ``max_attempts``; both are set to one.
        assert 1 <= attempts <= 2
        assert silent.connections - attempts <= 2


async def test_s3_endpoint_that_refuses_connections_is_a_502(fake_aws: None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert await _status_from(url) == 502
    assert caused_by(await _open_error(url), ConnectionRefusedError)


# -- (b') an http(s) origin that refuses, hangs or answers an error ---------------------------
# fsspec's http filesystem turns every failure of its info call into FileNotFoundError; only a
# 404 or 410 from the origin is a missing file.


@dataclass
class AnsweringEndpoint:
    """An origin that answers every GET with ``status`` and an empty body, or hangs up.

    ``head``: what a HEAD gets instead, ``(status, Content-Length)``: a file that exists, so
    that the failure comes with the first read. ``status`` 0 closes the connection unanswered.
    """

    status: int
    head: tuple[int, int] | None = None
    url: str = ""
    requests: int = 0

    async def answer(self, stream: SocketStream) -> None:
        async with stream:
            received = b""
            while b"\r\n\r\n" not in received:
                received += await stream.receive()
            self.requests += 1
            status, length = self.status, 0
            if self.head is not None and received.startswith(b"HEAD "):
                status, length = self.head
            if status == 0:
                return
            head = f"HTTP/1.1 {status} Whatever\r\nContent-Length: {length}\r\n"
            await stream.send(head.encode() + b"Connection: close\r\n\r\n")


@asynccontextmanager
async def answering_endpoint(
    status: int, head: tuple[int, int] | None = None
) -> AsyncIterator[AnsweringEndpoint]:
    endpoint = AnsweringEndpoint(status, head)
    async with loopback_endpoint(endpoint.answer) as url:
        endpoint.url = url
        yield endpoint


async def _http_source_answer(url: str, **options: Any) -> httpx.Response:
    """What an app serving the http(s) source ``url`` answers."""
    registry = StorageRegistry()

    async def endpoint() -> FileResponse:
        return send_file(url, storage_options=options, registry=registry)

    try:
        with anyio.fail_after(HANG_GUARD):
            async with asgi_client(lilya_app(endpoint)) as client:
                return await client.get("/file")
    finally:
        await registry.aclose()


@pytest.mark.parametrize(
    ("origin_status", "status", "reason"),
    [
        (404, 404, "no object at {url!r} (HTTP 404)"),
        (410, 404, "no object at {url!r} (HTTP 410)"),
        (401, 403, "access to {url!r} denied (HTTP 401)"),
        (403, 403, "access to {url!r} denied (HTTP 403)"),
        (500, 502, "cannot open {url!r}: the origin answered HTTP 500"),
    ],
)
async def test_an_http_origin_error_maps_to_its_own_status(
    origin_status: int, status: int, reason: str
) -> None:
    async with answering_endpoint(origin_status) as origin:
        with captured_logs() as records:
            response = await _http_source_answer(f"{origin.url}/report.pdf?sig=SECRET")
    assert origin.requests >= 1
    assert response.status_code == status
    shown = f"{origin.url}/report.pdf?***"  # the signature never reaches the logs
    assert [r.getMessage() for r in records] == [
        f"sendfs: HTTP {status}: " + reason.format(url=shown)
    ]


async def test_an_http_origin_that_refuses_connections_is_a_502_not_a_404() -> None:
    response = await _http_source_answer(f"http://127.0.0.1:{free_port()}/report.pdf")
    assert (response.status_code, response.text) == (502, "Bad Gateway")


async def test_an_http_origin_that_never_answers_is_a_502_not_a_404() -> None:
    import aiohttp

    timeout = {"timeout": aiohttp.ClientTimeout(total=0.5, connect=0.3)}
    async with silent_endpoint() as silent:
        with captured_logs() as records:
            response = await _http_source_answer(
                f"{silent.url}/report.pdf?sig=SECRET", client_kwargs=timeout
            )
    assert silent.connections >= 1
    assert (response.status_code, response.text) == (502, "Bad Gateway")
    [record] = records
    assert "SECRET" not in record.getMessage()  # aiohttp's text quotes the URL: masked


async def test_an_http_origin_that_hangs_up_is_a_502_not_a_404() -> None:
    async with answering_endpoint(0) as origin:
        response = await _http_source_answer(f"{origin.url}/report.pdf")
    assert origin.requests >= 1
    assert (response.status_code, response.text) == (502, "Bad Gateway")


async def test_an_http_read_failing_after_the_open_is_logged_without_the_signature() -> None:
    # HEAD says the file exists (1000 bytes); the GET of its bytes gets a 500.
    async with answering_endpoint(500, head=(200, 1000)) as origin:
        with captured_logs() as records:
            response = await _http_source_answer(f"{origin.url}/report.pdf?sig=SECRET")
    assert response.status_code == 502
    shown = f"{origin.url}/report.pdf?***"
    assert [r.getMessage() for r in records] == [
        f"sendfs: HTTP 502: reading {shown!r} failed: the origin answered HTTP 500"
    ]


# -- (c) a local read error ------------------------------------------------------------------

LOCAL = random.Random(4).randbytes(3 * MIB)


def break_descriptor(resource: Resource, tmp_path: Path) -> None:
    """Make the resource's descriptor unreadable for real: the kernel answers EBADF to pread.

    A descriptor opened write-only is put in its place with ``dup2``; closing the original
    instead could let another thread reuse the number, and ``aclose`` would close its file.
    """
    assert isinstance(resource, LocalResource)
    assert resource._fd is not None
    write_only = os.open(tmp_path / "write-only", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.dup2(write_only, resource._fd)
    finally:
        os.close(write_only)


class BreakingRegistry(StorageRegistry):
    """Breaks the descriptor of every local file it opens, once ``armed``."""

    def __init__(self, tmp_path: Path, *, armed: bool) -> None:
        super().__init__()
        self.tmp_path = tmp_path
        self.armed = armed
        self.resources: list[Resource] = []

    async def open(self, source: Any, **options: Any) -> Resource:
        resource = await super().open(source, **options)
        self.resources.append(resource)
        if self.armed:
            break_descriptor(resource, self.tmp_path)
        return resource


@pytest.fixture
def local_file(tmp_path: Path) -> str:
    path = tmp_path / "data.bin"
    path.write_bytes(LOCAL)
    return str(path)


async def test_local_read_error_raises_backend_error_not_os_error(
    local_file: str, tmp_path: Path
) -> None:
    registry = BreakingRegistry(tmp_path, armed=True)
    resource = await registry.open(local_file)
    try:
        with pytest.raises(BackendError) as caught:
            async for _ in resource.iter_range(0, None, MIB):
                pass  # pragma: no cover - the first read fails
        assert not isinstance(caught.value, SourceChanged)
        assert isinstance(caught.value.__cause__, OSError)
    finally:
        await resource.aclose()


async def test_local_read_error_before_the_first_byte_is_a_502(
    local_file: str, tmp_path: Path
) -> None:
    registry = BreakingRegistry(tmp_path, armed=True)
    fds_before = len(os.listdir("/proc/self/fd"))

    async def endpoint() -> FileResponse:
        return send_file(local_file, registry=registry)

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.status_code == 502
    assert response.text == "Bad Gateway"
    assert len(os.listdir("/proc/self/fd")) <= fds_before  # the descriptor was closed


async def test_local_read_error_after_the_first_byte_aborts_the_response(
    local_file: str, tmp_path: Path
) -> None:
    registry = BreakingRegistry(tmp_path, armed=False)

    async def endpoint() -> FileResponse:
        return send_file(local_file, chunk_size=MIB, registry=registry)

    async def fail_disk_after_first_chunk(transcript: Recorded) -> None:
        if transcript.body_messages == 1:
            break_descriptor(registry.resources[-1], tmp_path)

    transcript = await drive(lilya_app(endpoint), fail_disk_after_first_chunk)
    assert_aborted_after_first_byte(transcript, len(LOCAL))
    assert LOCAL.startswith(transcript.body)


# -- (d) an S3 object overwritten mid-download -----------------------------------------------

OLD = random.Random(5).randbytes(3 * MIB)
NEW = bytes(255 - byte for byte in OLD)  # same size, every byte different


@pytest.mark.s3
async def test_s3_object_overwritten_mid_download_never_mixes_versions(
    s3_client: Any, bucket: str, storage_registry: StorageRegistry
) -> None:
    s3_client.put_object(Bucket=bucket, Key="changing.bin", Body=OLD)
    resource = await storage_registry.open(f"s3://{bucket}/changing.bin")
    try:
        chunks = resource.iter_range(0, None, MIB)
        received = [await anext(chunks)]
        s3_client.put_object(Bucket=bucket, Key="changing.bin", Body=NEW)
        try:
            with anyio.fail_after(HANG_GUARD):
                async for chunk in chunks:
                    received.append(chunk)  # noqa: PERF401
        except BackendError:
            # Failing is fine; what was delivered is still a prefix of one version.
            assert OLD.startswith(b"".join(received))
        else:
            # One streaming GET: it may finish with the old bytes, all of them.
            assert b"".join(received) == OLD

        # A new read of the same resource is pinned to the old ETag: it fails.
        with anyio.fail_after(HANG_GUARD), pytest.raises(SourceChanged):
            async for _ in resource.iter_range(0, None, MIB):
                pass  # pragma: no cover - the pinned GET fails
    finally:
        await resource.aclose()


@pytest.mark.s3
async def test_s3_object_overwritten_between_multipart_parts_aborts_the_response(
    s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="changing.bin", Body=OLD)
    registry = StorageRegistry()

    async def endpoint() -> FileResponse:
        return send_file(f"s3://{bucket}/changing.bin", chunk_size=MIB, registry=registry)

    async def overwrite_after_first_chunk(transcript: Recorded) -> None:
        if transcript.body_messages == 1:
            s3_client.put_object(Bucket=bucket, Key="changing.bin", Body=NEW)

    app = lilya_app(endpoint)
    try:
        # Two ranges: two pinned GETs; the object changes while the first part is sent.
        transcript = await drive(
            app, overwrite_after_first_chunk, [(b"range", b"bytes=0-1048575,2097152-")]
        )
    finally:
        await registry.aclose()
    assert transcript.status == 206
    assert not transcript.finished
    assert caused_by(transcript.error, SourceChanged), repr(transcript.error)
    # Only the first part (and its old bytes) went out; nothing of the new version.
    assert OLD[:MIB] in transcript.body
    assert NEW[2 * MIB : 2 * MIB + 64] not in transcript.body
