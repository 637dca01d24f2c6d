"""The contender ASGI apps, built from the environment by factories the servers import.

- ``sendfs_app``: a Lilya app serving with :func:`sendfs.send_file`;
- ``starlette_app``: what a user writes without sendfs: Starlette's ``FileResponse``, and for
  S3 a hand-written relay (``StreamingResponse`` over aiobotocore ``get_object`` +
  ``Body.iter_chunks(1 MiB)``, one client made at startup);
- ``lilya_app``: Lilya's own ``FileResponse`` (a reference);
- ``sendfs_offload_app``: ``send_file(path, offload=XAccelRedirect("/_files/", root=ROOT))``
  for nginx in front, wrapped in :class:`BodyBytes`.

Every app has ``/ping`` (a tiny text), ``/big`` and ``/small`` (the local files named by
``SENDFS_BENCH_BIG`` and ``SENDFS_BENCH_SMALL``). With ``SENDFS_BENCH_S3`` set, the sendfs and
Starlette apps also serve ``/s3`` (that object; endpoint and credentials from the ``AWS_*``
variables); with ``SENDFS_BENCH_S3_STATS=1`` the sendfs app has ``/_stats``: botocore event
hooks count the S3 requests by operation and the bytes GetObject announced (``POST /_stats``
resets them).

In-memory exports: ``sendfs_bytesio_app`` and ``starlette_bytesio_app`` build one ``bytes`` of
``SENDFS_BENCH_BYTESIO_SIZE`` bytes at startup and serve a new ``io.BytesIO`` over it at
``/export`` on every request (with ``/ping``): ``send_file`` in one, a ``StreamingResponse`` over
``read(256 KiB)`` calls (sendfs's chunk size) in the other.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from lilya.apps import Lilya
from lilya.requests import Request as LilyaRequest
from lilya.responses import FileResponse as LilyaFileResponse
from lilya.responses import JSONResponse, PlainText, Response
from lilya.routing import Path
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import FileResponse as StarletteFileResponse
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

import sendfs
from benchmarks.data import RELAY_CHUNK, s3_location

__all__ = [
    "BodyBytes",
    "S3Stats",
    "lilya_app",
    "sendfs_app",
    "sendfs_bytesio_app",
    "sendfs_offload_app",
    "starlette_app",
    "starlette_bytesio_app",
]

#: The chunk the Starlette export reads: sendfs's default, so both copy the same amounts.
EXPORT_CHUNK = 256 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} must be set to build the benchmark apps")
    return value


class S3Stats:
    """Counts the S3 requests an aiobotocore session sends, and the bytes GetObject returns."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.get_bytes = 0

    def register(self, session: Any) -> None:
        """Hook into every client the session creates from now on."""
        session.register("before-send.s3", self._before_send)
        session.register("after-call.s3.GetObject", self._after_get)

    def _before_send(self, event_name: str = "", **kwargs: Any) -> None:
        # Returning anything but None would short-circuit the request.
        self.requests[event_name.rsplit(".", 1)[-1]] += 1

    def _after_get(self, parsed: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.get_bytes += int((parsed or {}).get("ContentLength") or 0)

    def snapshot(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "get_bytes": self.get_bytes}

    def reset(self) -> None:
        self.requests.clear()
        self.get_bytes = 0


def _s3_routes() -> list[Path]:
    url = os.environ.get("SENDFS_BENCH_S3")
    if not url:
        return []
    options: dict[str, Any] = {}
    routes: list[Path] = []
    if os.environ.get("SENDFS_BENCH_S3_STATS") == "1":
        from aiobotocore.session import AioSession

        stats = S3Stats()
        session = AioSession()
        stats.register(session)
        options["session"] = session

        async def read_stats(request: LilyaRequest) -> JSONResponse:
            if request.method == "POST":
                stats.reset()
            return JSONResponse(stats.snapshot())

        routes.append(Path("/_stats", read_stats, methods=["GET", "POST"]))

    async def s3() -> sendfs.FileResponse:
        return sendfs.send_file(url, storage_options=options or None)

    routes.append(Path("/s3", s3, methods=["GET"]))
    return routes


def sendfs_app() -> Lilya:
    """sendfs under Lilya: ``send_file(path)`` and ``send_file("s3://...")``."""
    big, small = _env("SENDFS_BENCH_BIG"), _env("SENDFS_BENCH_SMALL")

    async def ping() -> PlainText:
        return PlainText("ok")

    async def big_file() -> sendfs.FileResponse:
        return sendfs.send_file(big)

    async def small_file() -> sendfs.FileResponse:
        return sendfs.send_file(small)

    with open(small, "rb") as handle:  # at startup, before the server serves anything
        in_memory = handle.read()

    async def small_from_memory() -> Response:
        # The floor of small files: the same app and server, no file and no worker thread.
        return Response(in_memory, media_type="application/octet-stream")

    async def close_storages() -> None:
        await sendfs.registry.aclose()

    return Lilya(
        routes=[
            Path("/ping", ping, methods=["GET"]),
            Path("/big", big_file, methods=["GET"]),
            Path("/small", small_file, methods=["GET"]),
            Path("/small-memory", small_from_memory, methods=["GET"]),
            *_s3_routes(),
        ],
        on_shutdown=[close_storages],
    )


def _starlette_relay() -> tuple[list[Route], Callable[[Starlette], Any] | None]:
    """``/s3`` as users write it without sendfs, and the lifespan that holds its client."""
    url = os.environ.get("SENDFS_BENCH_S3")
    if not url:
        return [], None
    from aiobotocore.session import AioSession

    bucket, key = s3_location(url)
    clients: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AioSession().create_client("s3") as client:
            clients.append(client)
            yield

    async def relay(request: StarletteRequest) -> StreamingResponse:
        answer = await clients[0].get_object(Bucket=bucket, Key=key)
        body = answer["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            async with body:
                async for chunk in body.iter_chunks(RELAY_CHUNK):
                    yield chunk

        headers = {"Content-Length": str(answer["ContentLength"])}
        return StreamingResponse(chunks(), media_type=answer["ContentType"], headers=headers)

    return [Route("/s3", relay, methods=["GET"])], lifespan


def starlette_app() -> Starlette:
    """Starlette's ``FileResponse`` (64 KiB chunks; ``pathsend`` under granian), the S3 relay."""
    big, small = _env("SENDFS_BENCH_BIG"), _env("SENDFS_BENCH_SMALL")

    async def ping(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def big_file(request: StarletteRequest) -> StarletteFileResponse:
        return StarletteFileResponse(big)

    async def small_file(request: StarletteRequest) -> StarletteFileResponse:
        return StarletteFileResponse(small)

    relay_routes, lifespan = _starlette_relay()
    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/big", big_file, methods=["GET"]),
            Route("/small", small_file, methods=["GET"]),
            *relay_routes,
        ],
        lifespan=lifespan,
    )


def lilya_app() -> Lilya:
    """Lilya's own ``FileResponse``."""
    big, small = _env("SENDFS_BENCH_BIG"), _env("SENDFS_BENCH_SMALL")

    async def ping() -> PlainText:
        return PlainText("ok")

    async def big_file() -> LilyaFileResponse:
        return LilyaFileResponse(big)

    async def small_file() -> LilyaFileResponse:
        return LilyaFileResponse(small)

    return Lilya(
        routes=[
            Path("/ping", ping, methods=["GET"]),
            Path("/big", big_file, methods=["GET"]),
            Path("/small", small_file, methods=["GET"]),
        ]
    )


def export_data() -> bytes:
    """``SENDFS_BENCH_BYTESIO_SIZE`` bytes (a 16 MiB random block repeated), allocated once."""
    size = int(_env("SENDFS_BENCH_BYTESIO_SIZE"))
    block = os.urandom(min(size, 16 * 1024 * 1024))
    count, rest = divmod(size, len(block))
    return b"".join([*([block] * count), block[:rest]])  # one allocation of the whole size


def sendfs_bytesio_app() -> Lilya:
    """``send_file(io.BytesIO(DATA))`` at ``/export``, the bytes made at startup."""
    data = export_data()

    async def ping() -> PlainText:
        return PlainText("ok")

    async def export() -> sendfs.FileResponse:
        return sendfs.send_file(io.BytesIO(data), download_name="export.bin", as_attachment=True)

    return Lilya(
        routes=[Path("/ping", ping, methods=["GET"]), Path("/export", export, methods=["GET"])]
    )


def _chunks(buffer: io.BytesIO) -> Iterator[bytes]:
    return iter(partial(buffer.read, EXPORT_CHUNK), b"")


def starlette_bytesio_app() -> Starlette:
    """What users write without sendfs: ``StreamingResponse`` over ``read(EXPORT_CHUNK)``.

    Starlette runs a synchronous iterator's ``next()`` in its thread pool, one hop per chunk;
    the body is chunked, without a Content-Length or ranges.
    """
    data = export_data()

    async def ping(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def export(request: StarletteRequest) -> StreamingResponse:
        headers = {"Content-Disposition": 'attachment; filename="export.bin"'}
        chunks = _chunks(io.BytesIO(data))
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    return Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), Route("/export", export, methods=["GET"])]
    )


class BodyBytes:
    """ASGI middleware: the body bytes the app hands to the server, for the offload section.

    Every response but ``/ping``'s is counted: the bytes of its ``http.response.body``
    messages, and the type of any other message (``http.response.pathsend`` and the like
    would carry a body this count cannot see). ``GET /_body_bytes`` answers
    ``{"body_bytes": n, "other": {type: count}}``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.body_bytes = 0
        self.other: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/ping":
            await self.app(scope, receive, send)
        elif scope["path"] == "/_body_bytes":
            await self._report(send)
        else:
            await self.app(scope, receive, self._counting(send))

    def _counting(self, send: Send) -> Send:
        async def counting(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                self.body_bytes += len(message.get("body", b""))
            elif kind != "http.response.start":
                self.other[kind] += 1
            await send(message)

        return counting

    async def _report(self, send: Send) -> None:
        body = json.dumps({"body_bytes": self.body_bytes, "other": dict(self.other)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def sendfs_offload_app() -> BodyBytes:
    """``send_file(path, offload=XAccelRedirect("/_files/", root=ROOT))`` for nginx in front.

    ROOT is the directory of the benchmark files; nginx maps ``/_files/`` to it.
    """
    big, small = _env("SENDFS_BENCH_BIG"), _env("SENDFS_BENCH_SMALL")
    offload = sendfs.XAccelRedirect("/_files/", root=os.path.dirname(big))

    async def ping() -> PlainText:
        return PlainText("ok")

    async def big_file() -> sendfs.FileResponse:
        return sendfs.send_file(big, offload=offload)

    async def small_file() -> sendfs.FileResponse:
        return sendfs.send_file(small, offload=offload)

    app = Lilya(
        routes=[
            Path("/ping", ping, methods=["GET"]),
            Path("/big", big_file, methods=["GET"]),
            Path("/small", small_file, methods=["GET"]),
        ]
    )
    return BodyBytes(app)
