"""The ASGI app the end-to-end tests run under a real uvicorn server.

Built by :func:`create_app` (``uvicorn --factory tests.e2e.app:create_app``) from the
environment, so importing this module has no side effects:

- ``SENDFS_E2E_ROOT``: the directory holding the local test files (:data:`LOCAL_FILES`);
- ``SENDFS_E2E_BUCKET``: the S3 bucket behind ``/s3/{key}`` (the endpoint and credentials come
  from the usual ``AWS_*`` variables);
- ``SENDFS_E2E_TOKEN`` (optional): what ``/ping`` answers, so the tests know it is their server.

Routes (GET, and HEAD which the frameworks add):

- ``/ping``: ``SENDFS_E2E_TOKEN`` (default ``ok``), for the readiness probe;
- ``/local/{name}``: ``send_file(os.path.join(root, name))`` for one of the fixed test files;
- ``/attachment``: the big file as an attachment with a non-ASCII download name;
- ``/s3/{key}``: ``send_file("s3://{bucket}/{key}")``;
- ``/bytes``: an ``io.BytesIO`` holding :data:`BYTES_CONTENT`;
- ``/broken``: a backend that yields one chunk and then raises ``BackendError``;
- ``/missing``: a local file that does not exist;
- ``/starlette/...``: a Starlette app serving ``/local/{name}`` and ``/missing`` the same way;
- ``/memory/{name}``: ``send_file("memory://sendfs-e2e/{name}")``, a copy of the local test file
  ``name`` that :func:`create_app` writes into fsspec's memory filesystem at startup;
- ``/large/{name}``: ``send_file(os.path.join(root, name))`` for :data:`LARGE_NAME` only, a file
  the real-client tests write before they download it (not there at startup).
- ``/redirect/{key}``: ``send_file("s3://{bucket}/{key}", redirect=True)`` as an attachment
  named :data:`ATTACHMENT_NAME`: a 307 to a presigned moto URL;
- ``/export.zip``: ``send_zip`` of the big local file, its S3 copy, the notes from
  ``memory://`` and a generated CSV of known size;
- ``/events``: the :class:`~sendfs.DownloadEvent` of every response served through the default
  registry so far, as JSON (the registry's ``on_complete`` hook records them).

Shutdown closes the storage sessions (s3fs's aiohttp client) in an ``on_shutdown`` hook, which
then logs :data:`SESSIONS_CLOSED`.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.responses import JSONResponse, PlainText
from lilya.routing import Include, Path
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.routing import Route

import sendfs
from sendfs import (
    BackendError,
    DownloadEvent,
    FileInfo,
    FileResponse,
    ResourceBase,
    StorageRegistry,
    ZipEntry,
    send_file,
    send_zip,
)
from sendfs import starlette as starlette_face

__all__ = [
    "ATTACHMENT_NAME",
    "BIG_NAME",
    "BROKEN_CHUNK",
    "BROKEN_SIZE",
    "BYTES_CONTENT",
    "EXPORT_CSV_SIZE",
    "EXPORT_ROWS",
    "LARGE_NAME",
    "LOCAL_FILES",
    "MEMORY_ROOT",
    "SESSIONS_CLOSED",
    "TEXT_NAME",
    "create_app",
    "create_starlette_app",
]

BIG_NAME = "big.bin"
TEXT_NAME = "notes.txt"
#: The only names ``/local/{name}`` serves: the path parameter never reaches the disk otherwise.
LOCAL_FILES = frozenset({BIG_NAME, TEXT_NAME})
ATTACHMENT_NAME = "résumé «final».pdf"
BYTES_CONTENT = bytes(range(256)) * 64
#: What ``/broken`` announces, and what it sends before failing.
BROKEN_SIZE = 256 * 1024
BROKEN_CHUNK = 64 * 1024
#: Where ``/memory/{name}`` reads: copies of :data:`LOCAL_FILES` made at startup.
MEMORY_ROOT = "memory://sendfs-e2e"
#: The one name ``/large/{name}`` serves (tens of MiB, for download managers and resumes).
LARGE_NAME = "large.bin"

#: Lilya and Starlette add HEAD to GET routes themselves (listing it too doubles it in Allow).
_METHODS = ["GET"]
#: The generated CSV in ``/export.zip``: rows, and its exact size.
EXPORT_ROWS = 10_000
EXPORT_CSV_SIZE = sum(len(f"{index},{index * index}\n") for index in range(EXPORT_ROWS))
#: Logged (to uvicorn's error log) once the shutdown hook has closed the storage sessions.
SESSIONS_CLOSED = "sendfs e2e: storage sessions closed"


class _BrokenResource(ResourceBase):
    """Announces BROKEN_SIZE bytes, yields one chunk of them, then fails like a dead disk."""

    def __init__(self) -> None:
        self._info = FileInfo(size=BROKEN_SIZE, name="broken.bin", etag="broken-v1")

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        end = BROKEN_SIZE if stop is None else stop
        yield b"x" * min(BROKEN_CHUNK, chunk_size, end - start)
        raise BackendError("the storage failed after the first chunk")


class _BrokenBackend:
    async def open(self, source: Any, **options: Any) -> _BrokenResource:
        return _BrokenResource()


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} must be set to run the e2e app")
    return value


def _local_path(root: str, name: str) -> str:
    if name not in LOCAL_FILES:
        raise HTTPException(status_code=404, detail="Not Found")
    return os.path.join(root, name)


def _copy_into_memory(root: str) -> None:
    """Write each of :data:`LOCAL_FILES` found in ``root`` to :data:`MEMORY_ROOT`."""
    import fsspec

    memory = fsspec.filesystem("memory")
    for name in sorted(LOCAL_FILES):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as file:
                memory.pipe_file(f"{MEMORY_ROOT}/{name}", file.read())


def create_starlette_app(root: str) -> Starlette:
    """The Starlette variant: the Starlette face's responses from Starlette endpoints."""

    async def local(request: StarletteRequest) -> starlette_face.FileResponse:
        return starlette_face.send_file(_local_path(root, str(request.path_params["name"])))

    async def missing(request: StarletteRequest) -> starlette_face.FileResponse:
        return starlette_face.send_file(os.path.join(root, "missing.bin"))

    return Starlette(
        routes=[
            Route("/local/{name}", local, methods=_METHODS),
            Route("/missing", missing, methods=_METHODS),
        ]
    )


def create_app() -> Lilya:
    """The Lilya app under test, configured from ``SENDFS_E2E_ROOT`` and ``SENDFS_E2E_BUCKET``."""
    root = _env("SENDFS_E2E_ROOT")
    bucket = _env("SENDFS_E2E_BUCKET")
    broken_registry = StorageRegistry(entry_points=False)
    broken_registry.register("broken", _BrokenBackend())

    token = os.environ.get("SENDFS_E2E_TOKEN", "ok")
    _copy_into_memory(root)
    events: list[DownloadEvent] = []
    sendfs.registry.on_complete = events.append

    async def redirect(key: str) -> FileResponse:
        return send_file(
            f"s3://{bucket}/{key}",
            redirect=True,
            as_attachment=True,
            download_name=ATTACHMENT_NAME,
        )

    async def export() -> FileResponse:
        async def squares() -> AsyncIterator[bytes]:
            for index in range(EXPORT_ROWS):
                yield f"{index},{index * index}\n".encode()

        return send_zip(
            {
                "local/big.bin": os.path.join(root, BIG_NAME),
                "s3/big.bin": f"s3://{bucket}/dir/{BIG_NAME}",
                "memory/notes.txt": f"{MEMORY_ROOT}/{TEXT_NAME}",
                "squares.csv": ZipEntry(squares(), size=EXPORT_CSV_SIZE),
            }
        )

    async def recorded() -> JSONResponse:
        return JSONResponse([dataclasses.asdict(event) for event in events])

    async def ping() -> PlainText:
        return PlainText(token)

    async def local(name: str) -> FileResponse:
        return send_file(_local_path(root, name))

    async def attachment() -> FileResponse:
        return send_file(
            os.path.join(root, BIG_NAME), as_attachment=True, download_name=ATTACHMENT_NAME
        )

    async def s3(key: str) -> FileResponse:
        return send_file(f"s3://{bucket}/{key}")

    async def in_memory() -> FileResponse:
        return send_file(io.BytesIO(BYTES_CONTENT))

    async def broken() -> FileResponse:
        return send_file("broken://anything", registry=broken_registry)

    async def missing() -> FileResponse:
        return send_file(os.path.join(root, "missing.bin"))

    async def memory(name: str) -> FileResponse:
        if name not in LOCAL_FILES:
            raise HTTPException(status_code=404, detail="Not Found")
        return send_file(f"{MEMORY_ROOT}/{name}")

    async def large(name: str) -> FileResponse:
        if name != LARGE_NAME:
            raise HTTPException(status_code=404, detail="Not Found")
        return send_file(os.path.join(root, LARGE_NAME))

    async def close_storages() -> None:
        await sendfs.registry.aclose()
        await broken_registry.aclose()
        logging.getLogger("uvicorn.error").info(SESSIONS_CLOSED)

    return Lilya(
        routes=[
            Path("/ping", ping, methods=_METHODS),
            Path("/local/{name}", local, methods=_METHODS),
            Path("/attachment", attachment, methods=_METHODS),
            Path("/s3/{key:path}", s3, methods=_METHODS),
            Path("/bytes", in_memory, methods=_METHODS),
            Path("/broken", broken, methods=_METHODS),
            Path("/missing", missing, methods=_METHODS),
            Include("/starlette", app=create_starlette_app(root)),
            Path("/memory/{name}", memory, methods=_METHODS),
            Path("/large/{name}", large, methods=_METHODS),
            Path("/redirect/{key:path}", redirect, methods=_METHODS),
            Path("/export.zip", export, methods=_METHODS),
            Path("/events", recorded, methods=_METHODS),
        ],
        on_shutdown=[close_storages],
    )
