"""FastAPI and Starlette apps return ``sendfs.starlette`` responses from their routes.

FastAPI passes a returned value through only when it is a Starlette ``Response`` (anything else
is encoded as JSON): the Starlette face's responses always are. The Lilya face's never are,
whatever the process imported: the class a user gets depends on the face imported only.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.responses import Response as StarletteResponse

from sendfs import FileResponse as PlainFileResponse
from sendfs import StorageFiles
from sendfs import send_file as plain_send_file
from sendfs.starlette import FileResponse, send_file, send_zip
from tests.helpers import asgi_client

pytestmark = pytest.mark.anyio

CONTENT = bytes(range(256)) * 8


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "data.bin").write_bytes(CONTENT)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_bytes(b"a")
    return tmp_path


@pytest.fixture
def client(files: Path) -> httpx.AsyncClient:
    app = FastAPI()
    ran: list[str] = []
    app.state.ran = ran

    @app.api_route("/download", methods=["GET", "HEAD"])
    async def download(tasks: BackgroundTasks) -> FileResponse:
        tasks.add_task(ran.append, "after")
        return send_file(files / "data.bin", as_attachment=True)

    @app.get("/missing")
    async def missing() -> FileResponse:
        return send_file(files / "nope.bin")

    @app.get("/memory")
    def memory() -> FileResponse:  # a sync route: FastAPI runs it in a thread
        return send_file(io.BytesIO(b"made in memory"), download_name="m.txt")

    app.mount("/static", StorageFiles(files))
    return asgi_client(app)


async def test_a_returned_response_is_a_starlette_response() -> None:
    response = send_file(io.BytesIO(b"x"))
    assert isinstance(response, FileResponse)
    assert isinstance(response, StarletteResponse)
    zipped = send_zip({"x.txt": io.BytesIO(b"x")})
    assert isinstance(zipped, FileResponse)


async def test_the_lilya_face_stays_lilya_with_starlette_imported() -> None:
    response = plain_send_file(io.BytesIO(b"x"))
    assert type(response) is PlainFileResponse
    assert StarletteResponse not in type(response).__mro__


async def test_fastapi_route_serves_the_file_with_its_headers(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/download")
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["content-disposition"] == 'attachment; filename="data.bin"'
    assert response.headers["etag"].startswith('"')


async def test_fastapi_ranges_conditionals_and_head(client: httpx.AsyncClient) -> None:
    async with client:
        first = await client.get("/download", headers={"Range": "bytes=10-19"})
        etag = first.headers["etag"]
        cached = await client.get("/download", headers={"If-None-Match": etag})
        head = await client.head("/download")
    assert first.status_code == 206
    assert first.content == CONTENT[10:20]
    assert cached.status_code == 304
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(CONTENT))


async def test_fastapi_background_tasks_run_after_the_download(
    client: httpx.AsyncClient,
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    async with client:
        await client.get("/download")
    assert app.state.ran == ["after"]


async def test_fastapi_renders_a_missing_source_as_its_404(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/missing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_fastapi_sync_route_and_mounted_storage_files(client: httpx.AsyncClient) -> None:
    async with client:
        memory = await client.get("/memory")
        static = await client.get("/static/sub/a.txt")
        escape = await client.get("/static/..%2fdata.bin")
    assert memory.content == b"made in memory"
    assert static.content == b"a"
    assert escape.status_code == 404


async def test_subclasses_keep_their_class() -> None:
    class Mine(PlainFileResponse):
        marker = "mine"

    response = Mine(io.BytesIO(b"x"))
    assert type(response) is Mine
    assert StarletteResponse not in type(response).__mro__
    assert response.marker == "mine"


async def test_a_mount_path_climbing_out_is_starlettes_404() -> None:
    from starlette.exceptions import HTTPException

    from sendfs.storages import StorageRegistry

    registry = StorageRegistry(entry_points=False)
    registry.mount("media", "memory://media")
    with pytest.raises(HTTPException) as raised:
        send_file("media://../x", registry=registry)
    assert raised.value.status_code == 404


def test_without_starlette_loaded_nothing_imports_it() -> None:
    code = (
        "import io, sys; from sendfs import send_file; r = send_file(io.BytesIO(b'x')); "
        "print('starlette' in sys.modules, [c.__module__ for c in type(r).__mro__])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("False")
    assert "starlette.responses" not in out
