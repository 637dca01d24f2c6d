"""Download events: one record per response, whatever happened, never in the way.

The hook sees what the response actually sent: status, ranges, bytes, whether it was cut
short. Hooks that fail are logged and do not change the response.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sendfs import DownloadEvent, FileResponse, StorageFiles, send_file, send_from_storage
from sendfs.events import describe_source
from sendfs.storages import StorageRegistry
from tests.helpers import asgi_client, captured_logs, http_scope, lilya_app, parse_multipart
from tests.responses.test_disconnects import aborted_download
from tests.storages.test_faults import BreakingRegistry, break_descriptor, drive

pytestmark = pytest.mark.anyio

CONTENT = bytes(range(256)) * 64  # 16 KiB
CHUNK = 4096


class Recorder:
    """A sync hook that keeps every event."""

    def __init__(self) -> None:
        self.events: list[DownloadEvent] = []

    def __call__(self, event: DownloadEvent) -> None:
        self.events.append(event)

    @property
    def only(self) -> DownloadEvent:
        assert len(self.events) == 1, self.events
        return self.events[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    return path


def client_for(source: Callable[[], Any], hook: Recorder, **options: Any) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_file(source(), on_complete=hook, chunk_size=CHUNK, **options)

    return asgi_client(lilya_app(endpoint))


async def test_full_download(data: Path) -> None:
    hook = Recorder()
    async with client_for(lambda: data, hook, as_attachment=True) as client:
        response = await client.get("/file")
    assert response.content == CONTENT
    event = hook.only
    assert event.source == str(data)
    assert (event.method, event.status, event.ranges) == ("GET", 200, ())
    assert event.size == event.bytes_sent == len(CONTENT)
    assert not event.aborted
    assert event.error is None
    assert event.download_name == "data.bin"
    assert event.content_type == "application/octet-stream"
    assert event.duration >= 0


async def test_single_range_and_multipart(data: Path) -> None:
    hook = Recorder()
    async with client_for(lambda: data, hook) as client:
        single = await client.get("/file", headers={"Range": "bytes=100-199"})
        multi = await client.get("/file", headers={"Range": "bytes=0-9, 1000-1009"})
    assert single.status_code == multi.status_code == 206
    first, second = hook.events
    assert (first.status, first.ranges, first.bytes_sent) == (206, ((100, 200),), 100)
    assert second.ranges == ((0, 10), (1000, 1010))
    parts = parse_multipart(multi.headers["content-type"], multi.content)
    assert [part.body for part in parts] == [CONTENT[:10], CONTENT[1000:1010]]
    assert second.bytes_sent == len(multi.content)  # framing included


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "*"}, 304),
        ({"If-Match": '"nope"'}, 412),
        ({"Range": "bytes=99999-"}, 416),
    ],
)
async def test_bodyless_answers(data: Path, headers: dict[str, str], status: int) -> None:
    hook = Recorder()
    async with client_for(lambda: data, hook) as client:
        response = await client.get("/file", headers=headers)
    assert response.status_code == status
    event = hook.only
    assert (event.status, event.bytes_sent, event.ranges, event.aborted) == (status, 0, (), False)


async def test_head(data: Path) -> None:
    hook = Recorder()
    async with client_for(lambda: data, hook) as client:
        await client.head("/file")
    event = hook.only
    assert (event.method, event.status, event.bytes_sent, event.size) == (
        "HEAD",
        200,
        0,
        len(CONTENT),
    )


async def test_missing_source_is_a_404_event_and_the_app_still_renders_it(
    tmp_path: Path,
) -> None:
    hook = Recorder()
    async with client_for(lambda: tmp_path / "nope.bin", hook) as client:
        response = await client.get("/file")
    assert response.status_code == 404
    event = hook.only
    assert (event.status, event.bytes_sent, event.aborted) == (404, 0, False)
    assert event.error == "SourceNotFound"


@pytest.mark.parametrize("mode", ["disconnect", "oserror"])
async def test_client_going_away_is_an_aborted_event(data: Path, mode: str) -> None:
    hook = Recorder()

    async def endpoint() -> FileResponse:
        return send_file(data, on_complete=hook, chunk_size=CHUNK)

    outcome = await aborted_download(lilya_app(endpoint), mode, [])
    assert not outcome.finished
    event = hook.only
    assert event.status == 200
    assert event.aborted
    assert 0 < event.bytes_sent < len(CONTENT)
    assert event.bytes_sent == outcome.delivered


async def test_storage_failing_after_the_first_byte_is_an_aborted_event_with_the_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(CONTENT * 64)
    hook = Recorder()
    registry = BreakingRegistry(tmp_path, armed=False)

    async def endpoint() -> FileResponse:
        return send_file(path, on_complete=hook, chunk_size=CHUNK, registry=registry)

    async def break_after_first(transcript: Any) -> None:
        if transcript.body_messages == 1:
            break_descriptor(registry.resources[-1], tmp_path)

    transcript = await drive(lilya_app(endpoint), break_after_first)
    assert transcript.error is not None
    event = hook.only
    assert event.aborted
    assert event.error == "BackendError"
    assert event.bytes_sent == len(transcript.body)


async def test_cancelled_response_still_reports(data: Path) -> None:
    hook = Recorder()
    app: Any = send_file(data, on_complete=hook, chunk_size=CHUNK)
    started = anyio.Event()

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            started.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as group:
        group.start_soon(app, http_scope(), receive, send)
        await started.wait()
        group.cancel_scope.cancel()
    event = hook.only
    assert event.aborted
    assert event.error is not None  # the cancellation


async def test_bytesio_and_async_hook() -> None:
    seen: list[DownloadEvent] = []

    async def hook(event: DownloadEvent) -> None:
        await anyio.sleep(0)
        seen.append(event)

    async def endpoint() -> FileResponse:
        return send_file(io.BytesIO(b"made in memory"), on_complete=hook, download_name="m.txt")

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.content == b"made in memory"
    [event] = seen
    assert event.source == "<BytesIO>"
    assert (event.bytes_sent, event.download_name) == (14, "m.txt")


async def test_a_failing_hook_is_logged_and_the_response_is_untouched(data: Path) -> None:
    def broken(event: DownloadEvent) -> None:
        raise RuntimeError("metering is down")

    later = Recorder()
    registry = StorageRegistry(on_complete=later)

    async def endpoint() -> FileResponse:
        return send_file(data, on_complete=broken, registry=registry)

    with captured_logs() as records:
        async with asgi_client(lilya_app(endpoint)) as client:
            response = await client.get("/file")
    assert response.content == CONTENT
    [record] = records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "metering is down"
    assert later.only.status == 200  # the registry's hook still ran


async def test_per_call_hook_runs_before_the_registry_hook(data: Path) -> None:
    order: list[str] = []
    registry = StorageRegistry(on_complete=lambda event: order.append("registry"))

    async def endpoint() -> FileResponse:
        return send_file(data, on_complete=lambda event: order.append("call"), registry=registry)

    async with asgi_client(lilya_app(endpoint)) as client:
        await client.get("/file")
        registry.on_complete = None
        await client.get("/file")
    assert order == ["call", "registry", "call"]


async def test_registry_hook_covers_send_from_storage_and_storage_files(
    tmp_path: Path, data: Path
) -> None:
    hook = Recorder()
    registry = StorageRegistry(on_complete=hook)
    registry.mount("media", str(tmp_path))
    files = StorageFiles("media", registry=registry)

    async def endpoint() -> FileResponse:
        return send_from_storage("media", "data.bin", registry=registry)

    async with asgi_client(lilya_app(endpoint)) as client:
        await client.get("/file")
    async with asgi_client(files) as client:
        await client.get("/data.bin")
        await client.get("/missing.bin")
    assert [event.status for event in hook.events] == [200, 200, 404]
    assert {event.source for event in hook.events[:2]} == {str(data)}


async def test_storage_files_hook(data: Path) -> None:
    hook = Recorder()
    async with asgi_client(StorageFiles(data.parent, on_complete=hook)) as client:
        await client.get("/data.bin", headers={"Range": "bytes=0-0"})
    assert hook.only.ranges == ((0, 1),)


@pytest.mark.parametrize(
    ("source", "described"),
    [
        ("s3://AKIA:secret@bucket/key.bin", "s3://***@bucket/key.bin"),
        ("https://host/f.pdf?X-Amz-Signature=abc", "https://host/f.pdf?***"),
        ("memory://exports/a.csv", "memory://exports/a.csv"),
        (Path("/srv/a.txt"), "/srv/a.txt"),
        ("/srv/b.txt", "/srv/b.txt"),
        (
            StorageRegistry().locate("https://u:pw@host/files", "c.pdf"),
            "https://***@host/files/c.pdf",
        ),
    ],
)
def test_source_descriptions_never_carry_credentials(source: Any, described: str) -> None:
    assert describe_source(source) == described


def test_file_objects_are_described_by_type_and_name(data: Path) -> None:
    with data.open("rb") as handle:
        assert describe_source(handle) == "<BufferedReader data.bin>"
    assert describe_source(io.BytesIO()) == "<BytesIO>"


async def test_pathsend_counts_the_file_the_server_sends(data: Path) -> None:
    hook = Recorder()
    app: Any = send_file(data, on_complete=hook)
    scope = http_scope()
    scope["extensions"] = {"http.response.pathsend": {}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [message["type"] for message in sent] == [
        "http.response.start",
        "http.response.pathsend",
    ]
    event = hook.only
    assert (event.bytes_sent, event.aborted) == (len(CONTENT), False)


@pytest.mark.s3
async def test_s3_download_event(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n" * 1000)
    hook = Recorder()
    registry = StorageRegistry(on_complete=hook)

    async def endpoint() -> FileResponse:
        return send_file(f"s3://{bucket}/report.csv", registry=registry)

    try:
        async with asgi_client(lilya_app(endpoint)) as client:
            response = await client.get("/file", headers={"Range": "bytes=-4"})
    finally:
        await registry.aclose()
    assert response.content == b"a,b\n"
    event = hook.only
    assert event.source == f"s3://{bucket}/report.csv"
    assert (event.status, event.ranges, event.size, event.bytes_sent) == (
        206,
        ((3996, 4000),),
        4000,
        4,
    )
    assert event.content_type == "text/csv; charset=utf-8"
