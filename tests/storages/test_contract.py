"""One contract every built-in backend keeps: metadata, exact ranged reads, errors, cleanup.

The ``case`` fixture is parametrised over the backends (a local file, ``io.BytesIO``, a
non-seekable pipe, ``memory://``, ``zip://`` (a synchronous fsspec filesystem read through file
handles), ``s3://`` on the moto server, and ``http://`` from the same server (fsspec's async
http filesystem, read in ``_cat_file`` windows)); each test opens the case's
source through a fresh registry and checks exact bytes and values.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tempfile
import threading
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest

from sendfs.exceptions import BackendError, SourceChanged, SourceForbidden, SourceNotFound
from sendfs.storages import Resource, ResourceBase, StorageRegistry

pytestmark = pytest.mark.anyio

#: 1000 bytes in which every offset holds a value its neighbours do not, so an off-by-one shows.
CONTENT = bytes((i * 7 + 3) % 251 for i in range(1000))
SIZE = len(CONTENT)
S3_CONTENT_TYPE = "application/x-sendfs-test"

#: The kinds served by the moto server carry the ``s3`` mark (``-m "not s3"`` skips them).
S3 = pytest.param("s3", marks=pytest.mark.s3)
HTTP = pytest.param("http", marks=pytest.mark.s3)
SEEKABLE_KINDS: list[Any] = ["local", "bytesio", "memory", "zip", S3, HTTP]
ALL_KINDS: list[Any] = [*SEEKABLE_KINDS, "pipe"]


@dataclass
class Case:
    """A source and what every backend must say about it."""

    kind: str
    source: Any
    content: bytes
    size: int | None
    name: str | None
    #: The modification time the storage itself reports, or None where it has none.
    mtime: datetime | None
    #: The exact etag, or True for "present, derived", or None for "absent".
    etag: str | bool | None
    content_type: str | None = None
    missing: Any = None
    directory: Any = None
    #: Options passed to ``open`` with every source of the case (fsspec storage options).
    options: dict[str, Any] = field(default_factory=dict)
    #: Replaces the object's content in the storage, where the test can do so.
    rewrite: Callable[[bytes], object] | None = None
    #: Deletes the object from the storage, where the test can do so.
    delete: Callable[[], object] | None = None
    #: What reading after the delete does: the opened bytes (None) or this error.
    deleted_read_error: type[Exception] | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def _local_case(tmp_path: Path) -> Case:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    (tmp_path / "subdir").mkdir()
    return Case(
        kind="local",
        source=str(path),
        content=CONTENT,
        size=SIZE,
        name="data.bin",
        mtime=mtime,
        etag=True,
        missing=str(tmp_path / "missing.bin"),
        directory=str(tmp_path / "subdir"),
        rewrite=path.write_bytes,
        delete=path.unlink,
    )


def _bytesio_case() -> Case:
    return Case("bytesio", io.BytesIO(CONTENT), CONTENT, SIZE, None, None, None)


def _pipe_case() -> Case:
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)

    def write() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as writer:
            try:
                for offset in range(0, SIZE, 100):
                    writer.write(CONTENT[offset : offset + 100])
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    case = Case("pipe", reader, CONTENT, None, None, None, None)

    def cleanup() -> None:
        reader.close()
        thread.join(timeout=10)

    case.cleanups.append(cleanup)
    return case


def _memory_case() -> Case:
    fs = fsspec.filesystem("memory")
    root = f"/sendfs-tests/{secrets.token_hex(6)}"
    fs.pipe(f"{root}/data.bin", CONTENT)
    fs.pipe(f"{root}/dir/inside.bin", b"x")
    case = Case(
        kind="memory",
        source=f"memory://{root}/data.bin",
        content=CONTENT,
        size=SIZE,
        name="data.bin",
        mtime=fs.info(f"{root}/data.bin")["created"],
        etag=True,
        missing=f"memory://{root}/missing.bin",
        directory=f"memory://{root}/dir",
        rewrite=lambda data: fs.pipe(f"{root}/data.bin", data),
        delete=lambda: fs.rm(f"{root}/data.bin"),
        deleted_read_error=SourceChanged,
    )
    case.cleanups.append(lambda: fs.rm(root, recursive=True))
    return case


def _zip_case(tmp_path: Path) -> Case:
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data.bin", CONTENT)
        zipped.writestr("dir/inside.bin", b"x")
    return Case(
        kind="zip",
        source="zip://data.bin",
        content=CONTENT,
        size=SIZE,
        name="data.bin",
        mtime=None,
        etag=None,
        missing="zip://missing.bin",
        directory="zip://dir",
        options={"fo": str(archive)},
    )


def _s3_case(request: pytest.FixtureRequest) -> Case:
    s3_client: Any = request.getfixturevalue("s3_client")
    bucket: str = request.getfixturevalue("bucket")
    s3_client.put_object(Bucket=bucket, Key="data.bin", Body=CONTENT, ContentType=S3_CONTENT_TYPE)
    s3_client.put_object(Bucket=bucket, Key="prefix/inside.bin", Body=b"x")
    return Case(
        kind="s3",
        source=f"s3://{bucket}/data.bin",
        content=CONTENT,
        size=SIZE,
        name="data.bin",
        mtime=s3_client.head_object(Bucket=bucket, Key="data.bin")["LastModified"],
        etag=hashlib.md5(CONTENT).hexdigest(),
        content_type=S3_CONTENT_TYPE,
        missing=f"s3://{bucket}/missing.bin",
        directory=f"s3://{bucket}/prefix/",
        rewrite=lambda data: s3_client.put_object(Bucket=bucket, Key="data.bin", Body=data),
        delete=lambda: s3_client.delete_object(Bucket=bucket, Key="data.bin"),
        deleted_read_error=SourceChanged,
    )


def _http_case(request: pytest.FixtureRequest) -> Case:
    """An object on moto served as a public web page: fsspec's async http filesystem."""
    s3_client: Any = request.getfixturevalue("s3_client")
    bucket: str = request.getfixturevalue("bucket")
    endpoint: str = request.getfixturevalue("moto_endpoint")

    def put(key: str, body: bytes) -> None:
        s3_client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=S3_CONTENT_TYPE, ACL="public-read"
        )

    put("data.bin", CONTENT)
    put("prefix/inside.bin", b"x")
    return Case(
        kind="http",
        source=f"{endpoint}/{bucket}/data.bin",
        content=CONTENT,
        size=SIZE,
        name="data.bin",
        mtime=s3_client.head_object(Bucket=bucket, Key="data.bin")["LastModified"],
        etag=hashlib.md5(CONTENT).hexdigest(),  # S3 single-part ETag
        content_type=S3_CONTENT_TYPE,
        missing=f"{endpoint}/{bucket}/missing.bin",
        directory=f"{endpoint}/{bucket}/prefix/",
        rewrite=lambda data: put("data.bin", data),
        delete=lambda: s3_client.delete_object(Bucket=bucket, Key="data.bin"),
        deleted_read_error=SourceChanged,
    )


def _build(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    if kind == "local":
        case = _local_case(tmp_path)
    elif kind == "bytesio":
        case = _bytesio_case()
    elif kind == "pipe":
        case = _pipe_case()
    elif kind == "memory":
        case = _memory_case()
    elif kind == "zip":
        case = _zip_case(tmp_path)
    elif kind == "http":
        case = _http_case(request)
    else:
        case = _s3_case(request)
    try:
        yield case
    finally:
        for cleanup in case.cleanups:
            cleanup()


@pytest.fixture(params=ALL_KINDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    """Every backend, the non-seekable stream included."""
    yield from _build(request.param, request, tmp_path)


@pytest.fixture(params=SEEKABLE_KINDS)
def seekable_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    """The backends that know their size and serve any range."""
    yield from _build(request.param, request, tmp_path)


@pytest.fixture(params=["local", "memory", "zip", S3, HTTP])
def located_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    """The backends reached by path or URL, where a source can be missing or a directory."""
    yield from _build(request.param, request, tmp_path)


@pytest.fixture(params=["local", "memory", S3, HTTP])
def rewritable_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    """The backends whose objects this suite can replace between two opens."""
    yield from _build(request.param, request, tmp_path)


async def read(resource: Resource, start: int, stop: int | None, chunk_size: int) -> list[bytes]:
    """Collect the pieces ``iter_range`` yields, checking none is empty or over ``chunk_size``."""
    pieces = [piece async for piece in resource.iter_range(start, stop, chunk_size)]
    for piece in pieces:
        assert isinstance(piece, bytes)
        assert 0 < len(piece) <= chunk_size
    return pieces


async def read_into(
    received: bytearray, resource: Resource, start: int, stop: int | None, chunk_size: int
) -> None:
    """Append what ``iter_range`` yields to ``received``, so a test sees bytes before an error."""
    async for piece in resource.iter_range(start, stop, chunk_size):
        received += piece


@pytest.fixture
async def opened(
    case: Case, storage_registry: StorageRegistry
) -> AsyncIterator[tuple[Case, Resource]]:
    resource = await storage_registry.open(case.source, **case.options)
    try:
        yield case, resource
    finally:
        await resource.aclose()


@pytest.fixture
async def seekable(
    seekable_case: Case, storage_registry: StorageRegistry
) -> AsyncIterator[tuple[Case, Resource]]:
    resource = await storage_registry.open(seekable_case.source, **seekable_case.options)
    try:
        yield seekable_case, resource
    finally:
        await resource.aclose()


# -- metadata ------------------------------------------------------------------------------


async def test_info_reports_size_name_and_content_type(opened: tuple[Case, Resource]) -> None:
    case, resource = opened
    info = resource.info
    assert info.size == case.size
    assert info.name == case.name
    assert info.content_type == case.content_type
    assert info.version is None


async def test_mtime_is_aware_utc_where_the_backend_has_one(
    opened: tuple[Case, Resource],
) -> None:
    case, resource = opened
    mtime = resource.info.mtime
    if case.mtime is None:
        assert mtime is None
        return
    assert mtime is not None
    assert mtime.tzinfo is not None
    assert mtime.utcoffset() == timedelta(0)
    assert mtime == case.mtime


async def test_etag_is_present_and_unquoted_where_expected(
    opened: tuple[Case, Resource],
) -> None:
    case, resource = opened
    etag = resource.info.etag
    if case.etag is None:
        assert etag is None
        return
    assert etag
    assert '"' not in etag
    assert not etag.startswith("W/")
    assert all(0x21 <= ord(char) <= 0x7E for char in etag)
    if isinstance(case.etag, str):
        assert etag == case.etag


async def test_etag_is_the_same_when_the_source_is_opened_again(
    located_case: Case, storage_registry: StorageRegistry
) -> None:
    first = await storage_registry.open(located_case.source, **located_case.options)
    second = await storage_registry.open(located_case.source, **located_case.options)
    try:
        assert first.info == second.info
    finally:
        await first.aclose()
        await second.aclose()


async def test_reopening_after_a_change_sees_the_new_object(
    rewritable_case: Case, storage_registry: StorageRegistry
) -> None:
    case = rewritable_case
    assert case.rewrite is not None
    first = await storage_registry.open(case.source, **case.options)
    await first.aclose()
    case.rewrite(b"new content")
    second = await storage_registry.open(case.source, **case.options)
    try:
        assert second.info.size == len(b"new content")
        assert second.info.etag != first.info.etag
        assert b"".join(await read(second, 0, None, 4)) == b"new content"
    finally:
        await second.aclose()


async def test_object_deleted_after_open_is_served_whole_or_reported_changed(
    rewritable_case: Case, storage_registry: StorageRegistry
) -> None:
    case = rewritable_case
    assert case.delete is not None
    resource = await storage_registry.open(case.source, **case.options)
    try:
        case.delete()
        received = bytearray()
        if case.deleted_read_error is None:
            await read_into(received, resource, 0, None, 256)
            assert bytes(received) == case.content
        else:
            with pytest.raises(case.deleted_read_error):
                await read_into(received, resource, 0, None, 256)
            assert bytes(received) == b""
    finally:
        await resource.aclose()


# -- reads ---------------------------------------------------------------------------------


async def test_full_read_returns_the_content(opened: tuple[Case, Resource]) -> None:
    case, resource = opened
    pieces = await read(resource, 0, None, 64)
    assert b"".join(pieces) == case.content


async def test_first_byte_range_returns_one_byte(seekable: tuple[Case, Resource]) -> None:
    case, resource = seekable
    assert await read(resource, 0, 1, 64) == [case.content[:1]]


async def test_last_byte_range_returns_the_last_byte(seekable: tuple[Case, Resource]) -> None:
    case, resource = seekable
    assert await read(resource, SIZE - 1, SIZE, 64) == [case.content[-1:]]


@pytest.mark.parametrize("offset", [0, 1, 500, SIZE - 1, SIZE])
async def test_empty_range_yields_nothing(seekable: tuple[Case, Resource], offset: int) -> None:
    _, resource = seekable
    assert await read(resource, offset, offset, 64) == []


async def test_whole_range_returns_the_content(seekable: tuple[Case, Resource]) -> None:
    case, resource = seekable
    pieces = await read(resource, 0, SIZE, SIZE)
    assert b"".join(pieces) == case.content


async def test_middle_range_in_small_chunks_joins_exactly(
    seekable: tuple[Case, Resource],
) -> None:
    case, resource = seekable
    pieces = await read(resource, 123, 789, 100)
    assert b"".join(pieces) == case.content[123:789]
    assert len(pieces) >= 7


async def test_chunk_size_of_one_yields_single_bytes(seekable: tuple[Case, Resource]) -> None:
    case, resource = seekable
    assert await read(resource, 10, 15, 1) == [case.content[i : i + 1] for i in range(10, 15)]


async def test_stop_none_reads_to_the_end(seekable: tuple[Case, Resource]) -> None:
    case, resource = seekable
    assert b"".join(await read(resource, 900, None, 64)) == case.content[900:]


async def test_stop_past_the_size_is_clamped(seekable: tuple[Case, Resource]) -> None:
    case, resource = seekable
    assert b"".join(await read(resource, 990, SIZE + 1000, 64)) == case.content[990:]


async def test_start_at_the_size_yields_nothing(seekable: tuple[Case, Resource]) -> None:
    _, resource = seekable
    assert await read(resource, SIZE, None, 64) == []


async def test_ranges_can_be_read_again_and_in_any_order(
    seekable: tuple[Case, Resource],
) -> None:
    case, resource = seekable
    assert b"".join(await read(resource, 800, 900, 64)) == case.content[800:900]
    assert b"".join(await read(resource, 0, 10, 64)) == case.content[0:10]
    assert b"".join(await read(resource, 800, 900, 64)) == case.content[800:900]


async def test_resource_works_as_async_context_manager(
    seekable_case: Case, storage_registry: StorageRegistry
) -> None:
    resource = await storage_registry.open(seekable_case.source, **seekable_case.options)
    assert isinstance(resource, Resource)
    assert isinstance(resource, ResourceBase)
    async with resource as entered:
        assert entered is resource
        assert b"".join(await read(resource, 0, 4, 64)) == seekable_case.content[:4]


async def test_aclose_can_be_called_twice(opened: tuple[Case, Resource]) -> None:
    _, resource = opened
    await resource.aclose()
    await resource.aclose()


# -- missing sources and directories --------------------------------------------------------


async def test_missing_source_raises_source_not_found(
    located_case: Case, storage_registry: StorageRegistry
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open(located_case.missing, **located_case.options)


async def test_directory_raises_source_not_found(
    located_case: Case, storage_registry: StorageRegistry
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open(located_case.directory, **located_case.options)


@pytest.mark.s3
async def test_s3_prefix_without_trailing_slash_raises_source_not_found(
    s3_client: Any, bucket: str, storage_registry: StorageRegistry
) -> None:
    s3_client.put_object(Bucket=bucket, Key="prefix/inside.bin", Body=b"x")
    with pytest.raises(SourceNotFound):
        await storage_registry.open(f"s3://{bucket}/prefix")


@pytest.mark.s3
async def test_s3_bucket_root_raises_source_not_found(
    bucket: str, storage_registry: StorageRegistry
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open(f"s3://{bucket}")


# -- non-seekable streams ------------------------------------------------------------------


@pytest.fixture
async def pipe_resource(storage_registry: StorageRegistry) -> AsyncIterator[Resource]:
    case = _pipe_case()
    resource = await storage_registry.open(case.source, **case.options)
    try:
        yield resource
    finally:
        await resource.aclose()
        for cleanup in case.cleanups:
            cleanup()


async def test_non_seekable_stream_has_no_size_and_reads_once(pipe_resource: Resource) -> None:
    assert pipe_resource.info.size is None
    assert b"".join(await read(pipe_resource, 0, None, 128)) == CONTENT
    with pytest.raises(BackendError):
        await read(pipe_resource, 0, None, 128)


async def test_non_seekable_stream_refuses_ranges(pipe_resource: Resource) -> None:
    with pytest.raises(BackendError):
        await read(pipe_resource, 10, None, 128)
    with pytest.raises(BackendError):
        await read(pipe_resource, 0, 10, 128)


class ReadOnlyStream:
    """The least a caller may pass: ``read()`` and ``seekable()`` and nothing else."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def seekable(self) -> bool:
        return False


async def test_minimal_read_only_stream_streams_once_and_closes_quietly(
    storage_registry: StorageRegistry,
) -> None:
    resource = await storage_registry.open(ReadOnlyStream(CONTENT))
    try:
        assert resource.info.size is None
        assert b"".join(await read(resource, 0, None, 300)) == CONTENT
        with pytest.raises(BackendError):
            await read(resource, 0, None, 300)
    finally:
        await resource.aclose()
    await resource.aclose()


# -- file objects --------------------------------------------------------------------------


async def test_bytesio_is_served_from_its_current_position(
    storage_registry: StorageRegistry,
) -> None:
    buffer = io.BytesIO(CONTENT)
    buffer.seek(100)
    resource = await storage_registry.open(buffer)
    try:
        assert resource.info.size == SIZE - 100
        assert b"".join(await read(resource, 0, None, 64)) == CONTENT[100:]
        assert b"".join(await read(resource, 0, 2, 64)) == CONTENT[100:102]
    finally:
        await resource.aclose()


async def test_binary_file_gets_mtime_etag_and_name(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(CONTENT)
    handle = path.open("rb")
    resource = await storage_registry.open(handle)
    try:
        info = resource.info
        assert info.size == SIZE
        assert info.name == "report.pdf"
        assert info.mtime == datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        assert info.etag
        assert '"' not in info.etag
        assert b"".join(await read(resource, 500, 600, 64)) == CONTENT[500:600]
    finally:
        await resource.aclose()
    assert handle.closed


def _text_objects(tmp_path: Path) -> list[Any]:
    path = tmp_path / "text.txt"
    path.write_text("hello")
    return [
        io.StringIO("hello"),
        path.open("r", encoding="utf-8"),
        tempfile.SpooledTemporaryFile(mode="w+"),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["StringIO", "open-r", "SpooledTemporaryFile"])
async def test_text_mode_objects_raise_type_error_asking_for_binary(
    tmp_path: Path, storage_registry: StorageRegistry, index: int
) -> None:
    objects = _text_objects(tmp_path)
    try:
        with pytest.raises(TypeError, match="'rb'") as excinfo:
            await storage_registry.open(objects[index])
        assert "binary" in str(excinfo.value)
    finally:
        for obj in objects:
            obj.close()


async def test_aclose_closes_file_objects(storage_registry: StorageRegistry) -> None:
    buffer = io.BytesIO(CONTENT)
    resource = await storage_registry.open(buffer)
    await resource.aclose()
    assert buffer.closed


async def test_closed_file_object_raises_backend_error(storage_registry: StorageRegistry) -> None:
    buffer = io.BytesIO(CONTENT)
    buffer.close()
    with pytest.raises(BackendError):
        await storage_registry.open(buffer)


# -- local files ---------------------------------------------------------------------------


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_aclose_releases_the_local_descriptor(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    before = _open_descriptors()
    resource = await storage_registry.open(str(path))
    assert _open_descriptors() == before + 1
    assert b"".join(await read(resource, 0, None, 64)) == CONTENT
    await resource.aclose()
    assert _open_descriptors() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_missing_local_file_leaks_no_descriptor(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    (tmp_path / "dir").mkdir()
    before = _open_descriptors()
    for source in (tmp_path / "missing", tmp_path / "dir"):
        with pytest.raises(SourceNotFound):
            await storage_registry.open(source)
    assert _open_descriptors() == before


async def test_local_file_truncated_after_open_raises_source_changed(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    resource = await storage_registry.open(str(path))
    try:
        os.truncate(path, 10)
        received = bytearray()
        with pytest.raises(SourceChanged):
            await read_into(received, resource, 0, None, 64)
        assert bytes(received) == CONTENT[:10]
    finally:
        await resource.aclose()


async def test_local_file_replaced_after_open_is_still_read_from_the_opened_file(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    resource = await storage_registry.open(str(path))
    try:
        replacement = tmp_path / "new.bin"
        replacement.write_bytes(b"N" * SIZE)
        os.replace(replacement, path)
        assert b"".join(await read(resource, 0, None, 256)) == CONTENT
    finally:
        await resource.aclose()


async def test_reading_a_closed_local_resource_raises_backend_error(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    resource = await storage_registry.open(str(path))
    await resource.aclose()
    with pytest.raises(BackendError):
        await read(resource, 0, None, 64)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_named_pipe_is_not_found_and_does_not_block(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SourceNotFound):
        await storage_registry.open(str(fifo))


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
async def test_device_is_not_found(storage_registry: StorageRegistry) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open("/dev/null")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
async def test_unreadable_local_file_is_forbidden(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "secret.bin"
    path.write_bytes(CONTENT)
    path.chmod(0)
    try:
        with pytest.raises(SourceForbidden):
            await storage_registry.open(str(path))
    finally:
        path.chmod(0o600)


async def test_local_path_with_nul_is_not_found(storage_registry: StorageRegistry) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.open("/tmp/a\x00b")


async def test_binary_file_truncated_after_open_raises_source_changed(
    tmp_path: Path, storage_registry: StorageRegistry
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    resource = await storage_registry.open(path.open("rb"))
    try:
        os.truncate(path, 10)
        received = bytearray()
        with pytest.raises(SourceChanged):
            await read_into(received, resource, 0, None, 64)
        assert bytes(received) == CONTENT[:10]
    finally:
        await resource.aclose()


class SeekWithoutSeekable:
    """``seek`` and ``tell`` but no ``seekable()``, like Python 3.10's SpooledTemporaryFile;
    and a ``seek`` that returns nothing, like older file-like wrappers."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> None:
        self._buffer.seek(offset, whence)

    def tell(self) -> int:
        return self._buffer.tell()

    def close(self) -> None:
        self._buffer.close()


async def test_a_file_object_with_only_seek_and_tell_serves_ranges(
    storage_registry: StorageRegistry,
) -> None:
    source = SeekWithoutSeekable(CONTENT)
    source.seek(100)
    resource = await storage_registry.open(source)
    try:
        assert resource.info.size == SIZE - 100
        assert b"".join(await read(resource, 200, 210, 4)) == CONTENT[300:310]
    finally:
        await resource.aclose()


@pytest.mark.parametrize("rolled_over", [False, True])
async def test_binary_spooled_temporary_file_serves_ranges(
    storage_registry: StorageRegistry, rolled_over: bool
) -> None:
    spooled = tempfile.SpooledTemporaryFile(max_size=10 if rolled_over else 10**6)  # noqa: SIM115
    spooled.write(CONTENT)
    spooled.seek(0)
    resource = await storage_registry.open(spooled)
    try:
        assert resource.info.size == SIZE
        assert b"".join(await read(resource, 0, None, 64)) == CONTENT
        assert b"".join(await read(resource, 300, 310, 4)) == CONTENT[300:310]
        # Serving it never moves a spooled file from memory to disk.
        assert getattr(spooled, "_rolled") is rolled_over  # noqa: B009
        # Only a file on disk has a modification time and a tag to validate against.
        assert (resource.info.etag is not None) is rolled_over
    finally:
        await resource.aclose()
    assert spooled.closed
