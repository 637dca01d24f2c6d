"""A local file changed in place during a download is caught before its last chunk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sendfs import SourceChanged
from sendfs.storages import LocalBackend

pytestmark = pytest.mark.anyio

CHUNK = 1024


async def _read_changing(path: Path, change: str) -> list[bytes]:
    resource = await LocalBackend().open(str(path))
    received: list[bytes] = []
    try:
        async for chunk in resource.iter_range(0, None, CHUNK):
            received.append(chunk)
            if len(received) == 1:
                if change == "rewrite":
                    with path.open("r+b") as handle:
                        handle.write(b"Y" * CHUNK)
                    stat = path.stat()
                    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
                else:
                    os.truncate(path, 2 * CHUNK + 10)
    finally:
        await resource.aclose()
    return received


@pytest.mark.parametrize("change", ["rewrite", "truncate-inside-last-chunk"])
async def test_change_during_read_raises_before_the_last_chunk(tmp_path: Path, change: str) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"X" * (3 * CHUNK))
    with pytest.raises(SourceChanged):
        await _read_changing(path, change)


async def test_unchanged_file_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"X" * (3 * CHUNK))
    resource = await LocalBackend().open(str(path))
    try:
        data = b"".join([c async for c in resource.iter_range(0, None, CHUNK)])
    finally:
        await resource.aclose()
    assert data == b"X" * (3 * CHUNK)
