"""send_zip: archives of any sources, checked by the standard library's zipfile and by unzip.

Every archive is read back: names, bytes, CRCs (``testzip``), sizes, modification times, and
the Content-Length announced against the body received.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import fsspec
import httpx
import pytest

from sendfs import DownloadEvent, FileResponse, ZipEntry, send_zip
from sendfs.storages import StorageRegistry
from sendfs.storages.archive import check_archive_name
from tests.helpers import Recorded, asgi_client, lilya_app
from tests.responses.test_disconnects import aborted_download
from tests.storages.test_faults import drive

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def rows(count: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield f"{index},{index * index}\n".encode()


def rows_size(count: int) -> int:
    return sum(len(f"{index},{index * index}\n") for index in range(count))


def client(entries: Any, **options: Any) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_zip(entries, **options)

    return asgi_client(lilya_app(endpoint))


async def download(entries: Any, **options: Any) -> tuple[httpx.Response, zipfile.ZipFile]:
    async with client(entries, **options) as app:
        response = await app.get("/file")
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None  # every CRC matches
    return response, archive


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 " * 1000)
    (tmp_path / "empty.txt").write_bytes(b"")
    return tmp_path


async def test_mixed_sources_with_an_exact_content_length(files: Path) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe_file("/zip-tests/notes.md", "# Notes é\n".encode())
    try:
        response, archive = await download(
            {
                "report.pdf": files / "report.pdf",
                "empty.txt": str(files / "empty.txt"),
                "memory/notes.md": "memory://zip-tests/notes.md",
                "buffers/hello.bin": io.BytesIO(b"hello"),
                "data/squares.csv": ZipEntry(rows(100), size=rows_size(100)),
                "naïve ünïcode 日本.txt": io.BytesIO(b"utf-8 names"),
            },
            download_name="export.zip",
        )
    finally:
        memory.rm("/zip-tests", recursive=True)
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="export.zip"'
    assert response.headers["accept-ranges"] == "none"
    assert "etag" not in response.headers
    assert archive.namelist() == [
        "report.pdf",
        "empty.txt",
        "memory/notes.md",
        "buffers/hello.bin",
        "data/squares.csv",
        "naïve ünïcode 日本.txt",
    ]
    assert archive.read("report.pdf") == b"%PDF-1.7 " * 1000
    assert archive.read("empty.txt") == b""
    assert archive.read("memory/notes.md") == "# Notes é\n".encode()
    assert archive.read("buffers/hello.bin") == b"hello"
    assert archive.read("data/squares.csv").startswith(b"0,0\n1,1\n2,4\n")
    assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())


async def test_modification_times_come_from_the_sources(files: Path) -> None:
    when = datetime(2024, 2, 29, 13, 37, 42, tzinfo=timezone.utc)
    import os

    os.utime(files / "report.pdf", (when.timestamp(), when.timestamp()))
    chosen = datetime(2025, 1, 2, 3, 4, 6, tzinfo=timezone.utc)
    _, archive = await download(
        {
            "report.pdf": files / "report.pdf",
            "chosen.txt": ZipEntry(io.BytesIO(b"x"), modified=chosen),
        }
    )
    assert archive.getinfo("report.pdf").date_time == (2024, 2, 29, 13, 37, 42)
    assert archive.getinfo("chosen.txt").date_time == (2025, 1, 2, 3, 4, 6)


async def test_a_stream_of_unknown_size_makes_a_chunked_zip64_archive() -> None:
    response, archive = await download({"squares.csv": rows(1000), "b.txt": io.BytesIO(b"b")})
    assert "content-length" not in response.headers
    assert archive.read("squares.csv") == b"".join(
        f"{index},{index * index}\n".encode() for index in range(1000)
    )
    assert archive.read("b.txt") == b"b"


async def test_compressed_entries(files: Path) -> None:
    response, archive = await download(
        {"report.pdf": files / "report.pdf", "keep.bin": io.BytesIO(b"k" * 100)}, compress=True
    )
    assert "content-length" not in response.headers
    info = archive.getinfo("report.pdf")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert info.compress_size < info.file_size
    assert archive.read("report.pdf") == b"%PDF-1.7 " * 1000
    _, mixed = await download(
        {"a": ZipEntry(io.BytesIO(b"a" * 1000), compress=True), "b": io.BytesIO(b"b")}
    )
    assert mixed.getinfo("a").compress_type == zipfile.ZIP_DEFLATED
    assert mixed.getinfo("b").compress_type == zipfile.ZIP_STORED


async def test_forced_zip64_archive_reads_back(files: Path) -> None:
    response, archive = await download(
        {"report.pdf": files / "report.pdf", "a/b.txt": io.BytesIO(b"b")}, force_zip64=True
    )
    assert response.headers["content-length"] == str(len(response.content))
    assert b"PK\x06\x06" in response.content  # the ZIP64 end of central directory record
    assert archive.read("a/b.txt") == b"b"


@pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip is not installed")
async def test_unzip_accepts_the_archives(files: Path, tmp_path: Path) -> None:
    for options in ({}, {"force_zip64": True}, {"compress": True}):
        response, _ = await download(
            {"report.pdf": files / "report.pdf", "d/squares.csv": rows(50)}, **options
        )
        path = tmp_path / "check.zip"
        path.write_bytes(response.content)
        done = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, (options, done.stdout, done.stderr)
        assert "No errors detected" in done.stdout


@pytest.mark.s3
async def test_s3_objects_in_an_archive(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="exports/a.csv", Body=b"a,b\n1,2\n")
    s3_client.put_object(Bucket=bucket, Key="exports/big.bin", Body=b"\x01" * (3 * MIB + 5))
    registry = StorageRegistry()
    try:
        response, archive = await download(
            [
                ("a.csv", f"s3://{bucket}/exports/a.csv"),
                ("big.bin", f"s3://{bucket}/exports/big.bin"),
            ],
            registry=registry,
        )
    finally:
        await registry.aclose()
    assert response.headers["content-length"] == str(len(response.content))
    assert archive.read("a.csv") == b"a,b\n1,2\n"
    assert archive.read("big.bin") == b"\x01" * (3 * MIB + 5)


async def test_a_missing_entry_is_a_404_before_anything_is_sent(files: Path) -> None:
    buffer = io.BytesIO(b"kept open until measured")
    async with client({"a.pdf": files / "report.pdf", "b": files / "nope", "c": buffer}) as app:
        response = await app.get("/file")
    assert response.status_code == 404
    assert buffer.closed  # the file object measured before the failure was released


async def test_entries_located_under_a_root_are_served_and_stay_confined(
    files: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_bytes(b"secret")
    (files / "leak.txt").symlink_to(outside)
    registry = StorageRegistry()
    _, archive = await download(
        {"report.pdf": registry.locate(files, "report.pdf")}, download_name="r.zip"
    )
    assert archive.read("report.pdf") == b"%PDF-1.7 " * 1000
    async with client({"leak.txt": registry.locate(files, "leak.txt")}) as app:
        response = await app.get("/file")
    assert response.status_code == 404
    assert b"secret" not in response.content


async def test_sources_never_reached_after_a_failure_are_closed_too(files: Path) -> None:
    closed = anyio.Event()

    async def generated() -> AsyncIterator[bytes]:
        try:
            yield b"never sent"
        finally:
            closed.set()

    missing = {f"missing-{index}": files / f"nope-{index}" for index in range(8)}
    buffer = io.BytesIO(b"never measured")
    gen = generated()
    await anext(gen)  # started, so that closing it runs its finally
    async with client({**missing, "buffer": buffer, "generated": gen}) as app:
        response = await app.get("/file")
    assert response.status_code == 404
    assert buffer.closed
    assert closed.is_set()


async def test_head_reads_no_entry(files: Path) -> None:
    async with client({"report.pdf": files / "report.pdf"}) as app:
        head = await app.head("/file")
        get = await app.get("/file")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../up.txt",
        "a/../../b",
        "a/./b",
        "a//b",
        "dir/",
        "C:evil",
        "a\\b",
        "a\x00b",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="zip entry name"):
        send_zip({name: io.BytesIO(b"x")})
    with pytest.raises(ValueError, match="zip entry name"):
        check_archive_name(name)


def test_duplicates_and_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        send_zip([("a.txt", io.BytesIO(b"1")), ("a.txt", io.BytesIO(b"2"))])
    with pytest.raises(TypeError, match="str"):
        send_zip([(b"a.txt", io.BytesIO(b"1"))])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="size= is for async iterables"):
        send_zip({"a": ZipEntry(io.BytesIO(b"1"), size=1)})


async def test_a_source_failing_mid_archive_aborts_the_response(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * MIB
        raise OSError("the report generator crashed")

    async def endpoint() -> FileResponse:
        return send_zip({"ok.bin": io.BytesIO(b"y" * MIB), "bad.bin": failing()})

    transcript = await drive(lilya_app(endpoint))
    assert transcript.status == 200
    assert not transcript.finished  # no final message: the server aborts the connection
    assert isinstance(transcript.error, OSError)


async def test_an_entry_that_changed_since_it_was_measured_aborts(tmp_path: Path) -> None:
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(b"1" * (2 * MIB))
    second.write_bytes(b"2" * 100)

    async def endpoint() -> FileResponse:
        return send_zip({"first.bin": first, "second.bin": second}, chunk_size=64 * 1024)

    async def grow_second(transcript: Any) -> None:
        if transcript.body_messages == 1:
            second.write_bytes(b"2" * 200)

    transcript = await drive(lilya_app(endpoint), grow_second)
    assert not transcript.finished
    assert type(transcript.error).__name__ == "SourceChanged"


async def test_a_client_leaving_closes_the_generators() -> None:
    closed = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"z" * 65536
        finally:
            closed.set()

    async def endpoint() -> FileResponse:
        return send_zip({"endless.bin": endless()})

    outcome = await aborted_download(lilya_app(endpoint), "disconnect", [])
    assert not outcome.finished
    assert closed.is_set()


async def test_memory_stays_flat_for_a_large_generated_entry() -> None:
    size = 200 * MIB
    piece = b"\x00" * MIB

    async def large() -> AsyncIterator[bytes]:
        for _ in range(size // MIB):
            yield piece

    async def endpoint() -> FileResponse:
        return send_zip({"large.bin": ZipEntry(large(), size=size)})

    received = 0
    largest = 0

    async def count(recorded: Recorded) -> None:
        nonlocal received, largest
        message = recorded.messages[-1]
        largest = max(largest, len(message["body"]))
        received += len(message["body"])
        recorded.messages[-1] = {**message, "body": b""}  # a client writing to disk keeps nothing

    tracemalloc.start()
    try:
        transcript = await drive(lilya_app(endpoint), count)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert transcript.finished
    assert received > size
    assert peak < 16 * MIB  # a few chunks in flight, not the entry


async def test_download_event_of_an_archive(files: Path) -> None:
    events: list[DownloadEvent] = []
    response, _ = await download({"r.pdf": files / "report.pdf"}, on_complete=events.append)
    [event] = events
    assert event.source == "<ZipArchive>"
    assert event.bytes_sent == len(response.content) == event.size
    assert event.download_name == "export.zip"
