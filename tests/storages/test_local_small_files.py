"""A plain GET of a small local file is opened and read in one worker-thread hop."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sendfs import send_file
from sendfs.storages import LocalBackend, threads
from sendfs.storages.base import ReadHint
from sendfs.storages.local import SMALL_FILE
from tests.helpers import http_scope, record_call

pytestmark = pytest.mark.anyio

CONTENT = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions sent to worker threads while the test runs."""
    sent: list[str] = []
    run_sync = threads.run_sync

    async def counting(function: Callable[..., Any], *args: Any) -> Any:
        sent.append(getattr(function, "__name__", repr(function)))
        return await run_sync(function, *args)

    monkeypatch.setattr(threads, "run_sync", counting)
    return sent


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.bin"
    path.write_bytes(CONTENT)
    return path


async def read_all(resource: Any, start: int, stop: int | None, chunk_size: int) -> list[bytes]:
    try:
        return [chunk async for chunk in resource.iter_range(start, stop, chunk_size)]
    finally:
        await resource.aclose()


@pytest.mark.parametrize(
    ("start", "stop", "chunk_size", "expected"),
    [
        pytest.param(0, None, 1 << 20, [CONTENT], id="whole-in-one-chunk"),
        pytest.param(100, 200, 1 << 20, [CONTENT[100:200]], id="range"),
        pytest.param(
            0, None, 4096, [CONTENT[:4096], CONTENT[4096:8192], CONTENT[8192:]], id="chunked"
        ),
        pytest.param(5000, 5000, 4096, [], id="empty-range"),
    ],
)
async def test_a_small_file_opened_for_a_plain_get_is_read_in_the_same_hop(
    small: Path,
    hops: list[str],
    start: int,
    stop: int | None,
    chunk_size: int,
    expected: list[bytes],
) -> None:
    resource = await LocalBackend().open_hinted(str(small), ReadHint())
    assert await read_all(resource, start, stop, chunk_size) == expected
    assert hops == ["_open_small_file"]


@pytest.mark.parametrize(
    "hint",
    [
        pytest.param(ReadHint(if_none_match='"abc"'), id="if-none-match"),
        pytest.param(ReadHint(if_match="*"), id="if-match"),
    ],
)
async def test_a_conditional_get_opens_without_reading(
    small: Path, hops: list[str], hint: ReadHint
) -> None:
    # Most often answered 304 or 412: the bytes are read only if the body is sent.
    resource = await LocalBackend().open_hinted(str(small), hint)
    assert hops == ["_open_regular_file"]
    assert b"".join(await read_all(resource, 0, None, 1 << 20)) == CONTENT
    assert hops == ["_open_regular_file", "_read_chunk"]


async def test_a_file_larger_than_the_limit_is_read_chunk_by_chunk(
    tmp_path: Path, hops: list[str]
) -> None:
    path = tmp_path / "large.bin"
    path.write_bytes(b"x" * (SMALL_FILE + 1))
    resource = await LocalBackend().open_hinted(str(path), ReadHint())
    assert b"".join(await read_all(resource, 0, None, SMALL_FILE)) == b"x" * (SMALL_FILE + 1)
    assert hops == ["_open_small_file", "_read_chunk", "_read_chunk"]


async def test_a_file_read_at_open_is_served_as_it_was_then(small: Path) -> None:
    # The bytes match the metadata (size, ETag) taken in the same hop, even if the file is
    # rewritten before the response reads them.
    resource = await LocalBackend().open_hinted(str(small), ReadHint())
    small.write_bytes(b"rewritten")
    stat = small.stat()
    os.utime(small, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert resource.info.size == len(CONTENT)
    assert b"".join(await read_all(resource, 0, None, 1 << 20)) == CONTENT


async def test_a_small_file_response_takes_one_thread_hop(small: Path, hops: list[str]) -> None:
    recorded = await record_call(send_file(small))
    assert recorded.messages[1]["body"] == CONTENT
    ranged = await record_call(send_file(small), http_scope([(b"range", b"bytes=10-19")]))
    assert ranged.messages[0]["status"] == 206
    assert ranged.messages[1]["body"] == CONTENT[10:20]
    assert hops == ["_open_small_file", "_open_small_file"]


async def test_head_and_conditional_requests_read_no_bytes(small: Path, hops: list[str]) -> None:
    head = http_scope()
    head["method"] = "HEAD"
    recorded = await record_call(send_file(small), head)
    assert recorded.messages[0]["status"] == 200
    etag = dict(recorded.messages[0]["headers"])[b"etag"]
    revalidated = await record_call(send_file(small), http_scope([(b"if-none-match", etag)]))
    assert revalidated.messages[0]["status"] == 304
    assert hops == ["_open_regular_file", "_open_regular_file"]
