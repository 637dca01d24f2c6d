"""The example backend of docs/backends.md, registered and served through send_file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from lilya.apps import Lilya
from lilya.routing import Path as Route

from sendfs import FileResponse, registry, send_file
from sendfs.exceptions import SourceChanged, SourceNotFound
from sendfs.storages import Backend, Resource, StorageRegistry
from tests.helpers import asgi_client, parse_multipart
from tests.snippets import load_snippet

DATA = bytes(range(256)) * 40  # 10240 bytes


def _store(database: Path, blob_id: int, name: str, data: bytes) -> None:
    snippet = load_snippet("sqlite_backend")
    with sqlite3.connect(database) as connection:
        connection.execute(snippet.SCHEMA)
        connection.execute(
            "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?, ?)",
            (blob_id, name, None, hashlib.sha256(data).hexdigest(), 1_700_000_000.0, data),
        )
    connection.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "files.db"
    _store(path, 42, "scan.pdf", DATA)
    return path


def _app(reg: StorageRegistry) -> Lilya:
    async def blob(blob_id: str) -> FileResponse:
        return send_file(f"blobs://{blob_id}", registry=reg, chunk_size=4096)

    return Lilya(routes=[Route("/blobs/{blob_id}", blob, methods=["GET", "HEAD"])])


def test_the_example_satisfies_the_protocols(database: Path) -> None:
    backend = load_snippet("sqlite_backend").SQLiteBlobBackend(str(database))
    assert isinstance(backend, Backend)


@pytest.mark.anyio
async def test_registered_backend_answers_200_206_304_and_404(database: Path) -> None:
    snippet = load_snippet("sqlite_backend")
    reg = StorageRegistry(entry_points=False)
    reg.register("blobs", snippet.SQLiteBlobBackend(str(database)))
    async with asgi_client(_app(reg)) as client:
        full = await client.get("/blobs/42")
        part = await client.get("/blobs/42", headers={"Range": "bytes=4000-4199"})
        parts = await client.get("/blobs/42", headers={"Range": "bytes=0-9,-10"})
        cached = await client.get("/blobs/42", headers={"If-None-Match": full.headers["etag"]})
        head = await client.head("/blobs/42")
        missing = await client.get("/blobs/7")
        not_an_id = await client.get("/blobs/abc")
    assert full.status_code == 200
    assert full.content == DATA
    assert full.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert full.headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert full.headers["content-type"] == "application/pdf"
    assert part.status_code == 206
    assert part.content == DATA[4000:4200]
    assert part.headers["content-range"] == f"bytes 4000-4199/{len(DATA)}"
    assert parts.status_code == 206
    bodies = [p.body for p in parse_multipart(parts.headers["content-type"], parts.content)]
    assert bodies == [DATA[:10], DATA[-10:]]
    assert cached.status_code == 304
    assert head.headers["content-length"] == str(len(DATA))
    assert head.content == b""
    assert missing.status_code == 404
    assert not_an_id.status_code == 404


@pytest.mark.anyio
async def test_a_row_rewritten_after_open_fails_the_read(database: Path) -> None:
    backend = load_snippet("sqlite_backend").SQLiteBlobBackend(str(database))
    resource = await backend.open("blobs://42")
    assert isinstance(resource, Resource)
    assert resource.info.size == len(DATA)
    _store(database, 42, "scan.pdf", b"a new scan")
    with pytest.raises(SourceChanged):
        async for _ in resource.iter_range(0, None, 4096):
            pass
    await resource.aclose()
    await resource.aclose()  # idempotent


@pytest.mark.anyio
async def test_reads_are_half_open_and_clamped(database: Path) -> None:
    backend = load_snippet("sqlite_backend").SQLiteBlobBackend(str(database))
    async with await backend.open("blobs://42") as resource:
        middle = b"".join([c async for c in resource.iter_range(10, 20, 3)])
        tail = b"".join([c async for c in resource.iter_range(10_000, 99_999, 4096)])
        empty = [c async for c in resource.iter_range(5, 5, 4096)]
    assert middle == DATA[10:20]
    assert tail == DATA[10_000:]
    assert empty == []


@pytest.mark.anyio
async def test_install_registers_the_scheme_on_the_default_registry(database: Path) -> None:
    snippet = load_snippet("sqlite_backend")
    snippet.install(str(database))
    try:
        resource = await registry.open("blobs://42")
        assert resource.info.name == "scan.pdf"
        await resource.aclose()
        with pytest.raises(SourceNotFound):
            await registry.open("blobs://43")
    finally:
        registry.unregister("blobs")
