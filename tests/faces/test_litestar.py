"""Litestar apps return ``sendfs.litestar`` responses and mount ``StorageFiles``.

Litestar turns a returned ``Response`` into the ASGI response it sends with the response's
``to_asgi_response``, adding the headers and cookies of the route's layers: the face's
response sends sendfs's answer from there, and raises Litestar's ``HTTPException`` subclasses
before the first byte, so the app's exception handlers render failures. A mounted app gets
a normalised path from Litestar; ``storage_files`` gives StorageFiles the request's own.

The in-process tests use Litestar's ``AsyncTestClient``; the ``e2e`` ones run the contract
app (``tests/faces/apps/litestar_app.py``) under a real uvicorn server.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
import types
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from litestar import Litestar, Request, Response, Router, get, route
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie, ResponseHeader
from litestar.enums import HttpMethod
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from sendfs import BackendError, SourceForbidden, SourceNotFound, StorageRegistry
from sendfs import FileResponse as LilyaFileResponse
from sendfs import send_file as lilya_send_file
from sendfs.litestar import (
    FileResponse,
    litestar_exception,
    send_file,
    send_from_storage,
    send_zip,
    storage_files,
)
from sendfs.responses.errors import HTTPError
from sendfs.storages import FileInfo, ResourceBase
from tests.conftest import free_port
from tests.faces.apps.litestar_app import SESSIONS_CLOSED
from tests.helpers import parse_multipart

pytestmark = pytest.mark.anyio

CONTENT = random.Random(7).randbytes(200 * 1024)
SIZE = len(CONTENT)
METHODS = [HttpMethod.GET, HttpMethod.HEAD]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """``public/`` (data.bin, notes.txt, sub/a.txt) beside a ``secret.txt`` it must not leak."""
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "data.bin").write_bytes(CONTENT)
    (public / "notes.txt").write_bytes("héllo\n".encode())
    (public / "sub" / "a.txt").write_bytes(b"a")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    return public


def client(*handlers: Any, **options: Any) -> AsyncTestClient[Litestar]:
    """An in-process client of a Litestar app made of ``handlers``."""
    return AsyncTestClient(Litestar(route_handlers=list(handlers), **options))


def download_route(root: Path, path: str = "/download") -> HTTPRouteHandler:
    @route(path, http_method=METHODS)
    async def download() -> FileResponse:
        return send_file(root / "data.bin")

    return download


# -- the response class ----------------------------------------------------------------------


async def test_the_responses_are_litestar_responses() -> None:
    assert isinstance(send_file(io.BytesIO(b"x")), Response)
    assert isinstance(send_zip({"x.txt": io.BytesIO(b"x")}), FileResponse)


async def test_the_lilya_face_stays_lilya_with_litestar_imported() -> None:
    response = lilya_send_file(io.BytesIO(b"x"))
    assert type(response) is LilyaFileResponse
    assert Response not in type(response).__mro__


async def test_options_are_validated_when_the_response_is_built(root: Path) -> None:
    with pytest.raises(ValueError, match="max_age"):
        send_file(root / "data.bin", max_age=-1)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        send_file(root / "data.bin", headers={"X-Bad": "a\r\nb"})


# -- answers ---------------------------------------------------------------------------------


async def test_a_full_get_is_exact_with_its_fields_and_nothing_litestar_adds(root: Path) -> None:
    async with client(download_route(root)) as http:
        response = await http.get("/download")
    assert response.status_code == 200
    assert response.content == CONTENT
    headers = response.headers
    assert headers.get_list("content-length") == [str(SIZE)]
    assert headers.get_list("content-type") == ["application/octet-stream"]
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-disposition"] == 'inline; filename="data.bin"'
    assert headers["cache-control"] == "no-cache"
    assert headers["etag"].startswith('"')
    assert headers["last-modified"].endswith(" GMT")


async def test_head_has_the_fields_of_get_and_no_body(root: Path) -> None:
    async with client(download_route(root)) as http:
        get_response = await http.get("/download")
        head = await http.head("/download")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers == get_response.headers


async def test_one_range_is_a_206_with_exactly_those_bytes(root: Path) -> None:
    async with client(download_route(root)) as http:
        response = await http.get("/download", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == CONTENT[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{SIZE}"
    assert response.headers.get_list("content-length") == ["100"]


async def test_several_ranges_are_a_multipart_206(root: Path) -> None:
    async with client(download_route(root)) as http:
        response = await http.get("/download", headers={"Range": "bytes=0-9,-10"})
    assert response.status_code == 206
    assert response.headers["content-length"] == str(len(response.content))
    parts = parse_multipart(response.headers["content-type"], response.content)
    assert [part.body for part in parts] == [CONTENT[:10], CONTENT[-10:]]
    assert parts[1].headers["content-range"] == f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"


async def test_an_unsatisfiable_range_is_a_416(root: Path) -> None:
    async with client(download_route(root)) as http:
        response = await http.get("/download", headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.content == b""


async def test_a_matching_if_none_match_is_a_304(root: Path) -> None:
    async with client(download_route(root)) as http:
        etag = (await http.head("/download")).headers["etag"]
        response = await http.get("/download", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "content-type" not in response.headers


async def test_a_failed_if_match_is_a_412(root: Path) -> None:
    async with client(download_route(root)) as http:
        response = await http.get("/download", headers={"If-Match": '"other"'})
    assert response.status_code == 412
    assert response.content == b""


async def test_any_return_annotation_works(root: Path) -> None:
    # Litestar gives such routes a JSON media type: it must not reach the response.
    @get("/any")
    async def anything() -> Any:
        return send_file(root / "notes.txt")

    async with client(anything) as http:
        response = await http.get("/any")
    assert response.status_code == 200
    assert response.content == "héllo\n".encode()
    assert response.headers.get_list("content-type") == ["text/plain; charset=utf-8"]


async def test_a_sync_handler_works(root: Path) -> None:
    @get("/sync", sync_to_thread=True)
    def sync() -> FileResponse:
        return send_file(root / "data.bin")

    async with client(sync) as http:
        response = await http.get("/sync")
    assert response.content == CONTENT


# -- sources ---------------------------------------------------------------------------------


async def test_a_bytesio_is_served_with_ranges() -> None:
    @route("/bytes", http_method=METHODS)
    async def from_memory() -> FileResponse:
        return send_file(io.BytesIO(CONTENT), download_name="made.bin")

    async with client(from_memory) as http:
        full = await http.get("/bytes")
        part = await http.get("/bytes", headers={"Range": "bytes=-5"})
    assert full.content == CONTENT
    assert full.headers["content-disposition"] == 'inline; filename="made.bin"'
    assert part.status_code == 206
    assert part.content == CONTENT[-5:]


async def test_a_memory_url_is_served() -> None:
    import fsspec

    fsspec.filesystem("memory").pipe_file("memory://sendfs-litestar/m.bin", CONTENT)

    @get("/memory")
    async def from_fsspec() -> FileResponse:
        return send_file("memory://sendfs-litestar/m.bin")

    async with client(from_fsspec) as http:
        response = await http.get("/memory", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == CONTENT[10:20]


@pytest.mark.s3
async def test_an_s3_object_is_served_from_moto(
    s3_client: Any, bucket: str, storage_registry: StorageRegistry
) -> None:
    s3_client.put_object(Bucket=bucket, Key="dir/data.bin", Body=CONTENT)

    @route("/s3/{key:path}", http_method=METHODS)
    async def from_s3(key: FromPath[str]) -> FileResponse:
        return send_file(f"s3://{bucket}/{key.lstrip('/')}", registry=storage_registry)

    # Litestar's test clients run the app on a loop of their own (a portal), where the S3
    # session is opened: the app's shutdown hook closes it there, as a server's would.
    async with client(from_s3, on_shutdown=[storage_registry.aclose]) as http:
        full = await http.get("/s3/dir/data.bin")
        part = await http.get("/s3/dir/data.bin", headers={"Range": "bytes=1000-1999"})
        cached = await http.get("/s3/dir/data.bin", headers={"If-None-Match": full.headers["etag"]})
        missing = await http.get("/s3/dir/nope.bin")
    assert full.content == CONTENT
    assert full.headers["content-length"] == str(SIZE)
    assert part.status_code == 206
    assert part.content == CONTENT[1000:2000]
    assert cached.status_code == 304
    assert missing.status_code == 404


async def test_a_zip_is_streamed(root: Path) -> None:
    @get("/export")
    async def export() -> FileResponse:
        return send_zip({"data.bin": root / "data.bin", "notes.txt": root / "notes.txt"})

    async with client(export) as http:
        response = await http.get("/export")
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-length"] == str(len(response.content))
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.read("data.bin") == CONTENT


# -- errors ----------------------------------------------------------------------------------


async def test_a_missing_file_is_litestars_404(root: Path) -> None:
    @get("/missing")
    async def missing() -> FileResponse:
        return send_file(root / "nope.bin")

    async with client(missing) as http:
        response = await http.get("/missing")
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "detail": "Not Found"}


async def test_the_apps_exception_handler_renders_the_404(root: Path) -> None:
    seen: list[HTTPException] = []

    def not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[str]:
        seen.append(exc)
        return Response("nothing here", status_code=404, media_type="text/plain")

    @get("/missing")
    async def missing() -> FileResponse:
        return send_file(root / "nope.bin")

    async with client(missing, exception_handlers={NotFoundException: not_found}) as http:
        response = await http.get("/missing")
    assert response.status_code == 404
    assert response.text == "nothing here"
    assert [type(exc) for exc in seen] == [NotFoundException]
    assert isinstance(seen[0].__cause__, SourceNotFound)


async def test_a_path_that_leaves_the_root_is_a_404_raised_by_the_handler(root: Path) -> None:
    @get("/files/{path:path}")
    async def confined(path: FromPath[str]) -> FileResponse:
        return send_from_storage(root, path.lstrip("/"))

    async with client(confined) as http:
        served = await http.get("/files/sub/a.txt")
        escaped = await http.get("/files/..%2fsecret.txt")
    assert served.content == b"a"
    assert escaped.status_code == 404
    assert b"secret" not in escaped.content


class FailingBackend:
    """``fail://<status>``: opening fails with the storage error behind that status."""

    ERRORS: ClassVar[dict[str, Exception]] = {
        "403": SourceForbidden("no"),
        "404": SourceNotFound("gone"),
        "502": BackendError("broken"),
    }

    async def open(self, source: Any, **options: Any) -> Any:
        raise self.ERRORS[str(source).removeprefix("fail://")]


class HangingBackend:
    """Opening never finishes: a storage whose connections are all taken."""

    async def open(self, source: Any, **options: Any) -> Any:
        await anyio.sleep_forever()


@pytest.fixture
def failing() -> StorageRegistry:
    registry = StorageRegistry(entry_points=False)
    registry.register("fail", FailingBackend())
    registry.register("hang", HangingBackend())
    return registry


@pytest.mark.parametrize(
    ("source", "status", "kind"),
    [
        ("fail://403", 403, PermissionDeniedException),
        ("fail://404", 404, NotFoundException),
        ("fail://502", 502, InternalServerException),
        ("hang://busy", 503, ServiceUnavailableException),
    ],
)
async def test_storage_failures_are_litestar_exceptions(
    failing: StorageRegistry, source: str, status: int, kind: type[HTTPException]
) -> None:
    seen: list[HTTPException] = []

    def handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
        seen.append(exc)
        return Response("handled", status_code=exc.status_code, headers=exc.headers)

    @get("/fail")
    async def fail() -> FileResponse:
        return send_file(source, registry=failing, storage_timeout=0.2)

    async with client(fail, exception_handlers={HTTPException: handler}) as http:
        with anyio.fail_after(5):
            response = await http.get("/fail")
    assert response.status_code == status
    assert response.text == "handled"
    assert [type(exc) for exc in seen] == [kind]
    if status == 503:
        assert response.headers["retry-after"] == "5"
    else:
        assert "retry-after" not in response.headers


async def test_litestar_exception_keeps_the_status_detail_and_headers() -> None:
    exc = litestar_exception(HTTPError(503, {"Retry-After": "5"}))
    assert isinstance(exc, ServiceUnavailableException)
    assert (exc.status_code, exc.detail, exc.headers) == (
        503,
        "Service Unavailable",
        {"Retry-After": "5"},
    )


class BrokenResource(ResourceBase):
    """Announces SIZE bytes, sends one chunk, then fails like a dead disk."""

    def __init__(self) -> None:
        self._info = FileInfo(size=SIZE, etag="b1")

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        yield CONTENT[:chunk_size]
        raise BackendError("the disk died")


class BrokenBackend:
    async def open(self, source: Any, **options: Any) -> BrokenResource:
        return BrokenResource()


async def test_a_failure_after_the_first_byte_is_raised_never_rendered() -> None:
    registry = StorageRegistry(entry_points=False)
    registry.register("broken", BrokenBackend())

    @get("/broken")
    async def broken() -> FileResponse:
        return send_file("broken://x", registry=registry, chunk_size=1024)

    async with client(broken) as http:
        with pytest.raises(Exception, match="after response started") as caught:
            await http.get("/broken")
    assert isinstance(caught.value.__cause__, BackendError)


# -- what Litestar adds to the response ------------------------------------------------------


async def test_litestar_headers_and_cookies_go_out(root: Path) -> None:
    ran: list[str] = []

    async def stamp(response: Response[Any]) -> Response[Any]:
        response.set_header("X-After-Request", "yes")
        return response

    @route(
        "/download",
        http_method=METHODS,
        response_headers=[ResponseHeader(name="X-Route", value="route")],
        response_cookies=[Cookie(key="route", value="r")],
        background=BackgroundTask(ran.append, "route task"),
    )
    async def download() -> FileResponse:
        response = send_file(root / "data.bin", headers={"X-Option": "option"})
        response.set_header("X-Handler", "handler")
        response.set_header("Cache-Control", "private, max-age=60")
        response.set_header("Content-Length", "1")  # framing: sendfs's wins
        response.set_cookie("session", "s1", httponly=True)
        return response

    app_options: dict[str, Any] = {
        "response_headers": {"X-App": "app", "X-Route": "overridden by the route"},
        "after_request": stamp,
    }
    async with client(download, **app_options) as http:
        response = await http.get("/download")
        head = await http.head("/download")
    assert response.content == CONTENT
    headers = response.headers
    assert headers.get_list("content-length") == [str(SIZE)]
    assert headers["cache-control"] == "private, max-age=60"
    assert (headers["x-option"], headers["x-handler"]) == ("option", "handler")
    assert (headers["x-app"], headers["x-route"]) == ("app", "route")
    assert headers["x-after-request"] == "yes"
    cookies = headers.get_list("set-cookie")
    assert "session=s1; HttpOnly; Path=/; SameSite=lax" in cookies
    assert any(cookie.startswith("route=r;") for cookie in cookies)
    assert head.headers.get_list("set-cookie") == cookies
    assert ran == ["route task"]  # after the GET, not after the HEAD


async def test_a_content_type_set_on_the_response_wins(root: Path) -> None:
    @get("/header")
    async def by_header() -> FileResponse:
        response = send_file(root / "data.bin")
        response.set_header("Content-Type", "application/x-custom")
        return response

    @get("/attribute")
    async def by_attribute() -> FileResponse:
        response = send_file(root / "data.bin")
        response.media_type = "image/png"
        return response

    async with client(by_header, by_attribute) as http:
        header = await http.get("/header")
        attribute = await http.get("/attribute")
    assert header.headers.get_list("content-type") == ["application/x-custom"]
    assert attribute.headers.get_list("content-type") == ["image/png"]


async def test_the_status_comes_from_the_option(root: Path) -> None:
    @get("/created", status_code=201)
    async def created() -> FileResponse:
        return send_file(root / "notes.txt", status_code=203)

    @get("/changed")
    async def changed() -> FileResponse:
        response = send_file(root / "notes.txt")
        response.status_code = 201
        return response

    errors: list[Exception] = []

    async def record(exc: Exception, scope: Any) -> None:
        errors.append(exc)

    async with client(created, changed, after_exception=[record]) as http:
        assert (await http.get("/created")).status_code == 203
        # A programming error: Litestar renders it as a 500.
        assert (await http.get("/changed")).status_code == 500
    assert [str(exc) for exc in errors] == [
        "set the status with send_file(status_code=...), not on the response"
    ]


async def test_an_etag_header_is_refused(root: Path) -> None:
    @get("/etag")
    async def etag() -> FileResponse:
        response = send_file(root / "data.bin")
        response.set_etag('"mine"')
        return response

    errors: list[Exception] = []

    async def record(exc: Exception, scope: Any) -> None:
        errors.append(exc)

    async with client(etag, after_exception=[record]) as http:
        response = await http.get("/etag")
    assert response.status_code == 500
    assert "etag" not in response.headers
    assert [type(exc) for exc in errors] == [ValueError]
    assert "etag=" in str(errors[0])


# -- StorageFiles, mounted -------------------------------------------------------------------


async def test_a_mounted_storage_serves_files_with_full_http(root: Path) -> None:
    async with client(storage_files("/files", root)) as http:
        full = await http.get("/files/data.bin")
        head = await http.head("/files/data.bin")
        part = await http.get("/files/data.bin", headers={"Range": "bytes=5-9"})
        nested = await http.get("/files/sub/a.txt")
        directory = await http.get("/files/sub/")
    assert full.status_code == 200
    assert full.content == CONTENT
    assert head.content == b""
    assert head.headers["content-length"] == str(SIZE)
    assert part.status_code == 206
    assert part.content == CONTENT[5:10]
    assert nested.content == b"a"
    assert directory.status_code == 404  # neither html nor listing


async def test_a_mounted_storage_lists_directories_and_redirects_to_them(root: Path) -> None:
    async with client(storage_files("/files", root, listing=True)) as http:
        top = await http.get("/files/")
        listing = await http.get("/files/sub/")
        to_directory = await http.get("/files/sub?x=1", follow_redirects=False)
        to_top = await http.get("/files", follow_redirects=False)
    assert top.status_code == 200
    assert 'href="data.bin"' in top.text
    assert listing.status_code == 200
    assert "Index of /files/sub/" in listing.text
    assert 'href="a.txt"' in listing.text
    assert (to_directory.status_code, to_directory.headers["location"]) == (307, "/files/sub/?x=1")
    assert (to_top.status_code, to_top.headers["location"]) == (307, "/files/")


async def test_a_mounted_storage_serves_index_html(root: Path) -> None:
    (root / "sub" / "index.html").write_text("<p>sub</p>")
    async with client(storage_files("/files", root, html=True)) as http:
        page = await http.get("/files/sub/")
        redirect = await http.get("/files/sub", follow_redirects=False)
    assert page.text == "<p>sub</p>"
    assert redirect.headers["location"] == "/files/sub/"


async def test_a_mounted_storage_refuses_paths_out_of_its_root(root: Path) -> None:
    async with client(storage_files("/files", root, listing=True)) as http:
        for path in ("/files/..%2fsecret.txt", "/files/sub/..%2f..%2fsecret.txt", "/files/%2e%2e/"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert b"secret" not in response.content


async def test_a_mount_is_not_a_prefix_of_other_names(root: Path) -> None:
    async with client(storage_files("/files", root)) as http:
        response = await http.get("/filesdata.bin")
        sibling = await http.get("/files-other/data.bin")
    assert response.status_code == 404
    assert sibling.status_code == 404


async def test_a_mount_in_a_router_and_at_the_root(root: Path) -> None:
    api = Router(path="/api", route_handlers=[storage_files("/static", root, listing=True)])
    async with client(api) as http:
        served = await http.get("/api/static/sub/a.txt")
        redirect = await http.get("/api/static/sub", follow_redirects=False)
    assert served.content == b"a"
    assert redirect.headers["location"] == "/api/static/sub/"
    async with client(storage_files("/", root, listing=True)) as http:
        served = await http.get("/data.bin")
        top = await http.get("/")
    assert served.content == CONTENT
    assert 'href="sub/"' in top.text


async def test_a_mount_beside_routes(root: Path) -> None:
    async with client(storage_files("/files", root), download_route(root)) as http:
        mounted = await http.get("/files/notes.txt")
        routed = await http.get("/download")
    assert mounted.content == "héllo\n".encode()
    assert routed.content == CONTENT


async def call_app(app: Litestar, path: str, root_path: str = "") -> dict[str, Any]:
    """Call ``app`` as uvicorn does behind ``--root-path``: the root path leads ``path``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {},
        "state": {},
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)  # type: ignore[arg-type]
    start = messages[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return {"status": start["status"], "headers": headers, "body": body}


async def test_a_mount_behind_a_root_path_redirects_below_it(root: Path) -> None:
    app = Litestar([storage_files("/files", root, listing=True)])
    served = await call_app(app, "/files/sub/a.txt", root_path="/prefix")
    redirect = await call_app(app, "/files/sub", root_path="/prefix")
    listing = await call_app(app, "/files/sub/", root_path="/prefix")
    assert (served["status"], served["body"]) == (200, b"a")
    assert (redirect["status"], redirect["headers"]["location"]) == (307, "/prefix/files/sub/")
    assert b"Index of /prefix/files/sub/" in listing["body"]


async def test_compression_can_be_kept_away_from_downloads(root: Path) -> None:
    from litestar.config.compression import CompressionConfig

    @get("/compressed")
    async def compressed() -> FileResponse:
        return send_file(root / "data.bin")

    @get("/identity", opt={"no_compression": True})
    async def identity() -> FileResponse:
        return send_file(root / "data.bin")

    config = CompressionConfig(backend="gzip", exclude_opt_key="no_compression")
    mount = storage_files("/files", root, opt={"no_compression": True})
    range_request = {"Range": "bytes=0-9999", "Accept-Encoding": "gzip"}
    async with client(compressed, identity, mount, compression_config=config) as http:
        rewritten = await http.get("/compressed", headers=range_request)
        kept = await http.get("/identity", headers=range_request)
        mounted = await http.get("/files/data.bin", headers=range_request)
    # Litestar compresses a 206 whose Content-Range counts the identity bytes: hence the doc.
    assert rewritten.headers["content-encoding"] == "gzip"
    for response in (kept, mounted):
        assert response.status_code == 206
        assert "content-encoding" not in response.headers
        assert response.content == CONTENT[:10000]


# -- OpenAPI ---------------------------------------------------------------------------------


async def test_the_openapi_schema_builds_with_the_return_annotation(root: Path) -> None:
    @get("/report", media_type="application/pdf", response_description="The report")
    async def report() -> FileResponse:
        return send_file(root / "data.bin")

    app = Litestar(route_handlers=[report, download_route(root), storage_files("/files", root)])
    schema = app.openapi_schema.to_schema()
    ok = schema["paths"]["/report"]["get"]["responses"]["200"]
    assert ok["description"] == "The report"
    assert "application/pdf" in ok["content"]
    assert "/download" in schema["paths"]
    async with AsyncTestClient(app) as http:
        response = await http.get("/report")
    # The decorator's media type documents the route; the file decides what is sent.
    assert response.headers["content-type"] == "application/octet-stream"


# -- the documentation page ------------------------------------------------------------------

PAGE = PROJECT_ROOT / "docs" / "litestar.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXAMPLES = PYTHON_BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def run_example(index: int) -> Litestar:
    """Run the page's example ``index`` as a module (Litestar reads its annotations there)."""
    module = types.ModuleType(f"docs_litestar_{index}")
    sys.modules[module.__name__] = module
    exec(compile(EXAMPLES[index], f"{PAGE}:example-{index}", "exec"), module.__dict__)
    app = module.app
    assert isinstance(app, Litestar)
    return app


@pytest.fixture
def docs_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The relative paths the examples serve, in a working directory of their own."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "media").mkdir()
    (tmp_path / "downloads").mkdir()
    (tmp_path / "docs" / "manual.pdf").write_bytes(b"%PDF-1.7 manual")
    (tmp_path / "docs" / "notes.txt").write_bytes(b"notes")
    (tmp_path / "media" / "avatar.png").write_bytes(b"\x89PNG avatar")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
@pytest.mark.usefixtures("docs_files")
def test_every_example_builds_an_app_and_its_schema(index: int) -> None:
    app = run_example(index)
    assert app.openapi_schema.to_schema()["openapi"].startswith("3.")


def _example_with(route_path: str) -> Litestar:
    for index in range(len(EXAMPLES)):
        app = run_example(index)
        if route_path in app.openapi_schema.to_schema()["paths"]:
            return app
    raise AssertionError(f"no example serves {route_path}")


async def test_the_examples_serve_what_the_page_says(docs_files: Path) -> None:
    async with AsyncTestClient(run_example(0)) as http:
        manual = await http.get("/manual")
        head = await http.head("/manual")
    assert manual.content == b"%PDF-1.7 manual"
    assert manual.headers["content-type"] == "application/pdf"
    assert head.headers["content-length"] == str(len(manual.content))
    async with AsyncTestClient(_example_with("/terms")) as http:
        terms = await http.get("/terms")
    assert (terms.status_code, terms.text) == (404, "No such document.")
    async with AsyncTestClient(_example_with("/avatar")) as http:
        avatar = await http.get("/avatar")
    assert avatar.headers["cache-control"] == "private, max-age=3600"
    assert avatar.headers["x-robots-tag"] == "noindex"
    assert avatar.headers["set-cookie"].startswith("seen=1;")
    async with AsyncTestClient(_example_with("/manual")) as http:
        documented = await http.get("/manual")
    assert documented.content == b"%PDF-1.7 manual"


# -- a real server ---------------------------------------------------------------------------

BIG_SIZE = 3 * 1024 * 1024
MEDIUM_SIZE = 8 * 1024 * 1024
CONCURRENT = 20
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 10.0


@dataclass
class Server:
    """The contract app under uvicorn, and what it serves."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    big: bytes
    medium: bytes

    def stop(self) -> int:
        """SIGTERM by PID, SIGKILL after STOP_DEADLINE; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_DEADLINE)
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _start(root: Path, bucket: str, log: Path, big: bytes, medium: bytes) -> Server:
    token = secrets.token_hex(8)
    for _ in range(3):
        port = free_port()
        command = [
            *(sys.executable, "-m", "uvicorn", "--factory"),
            "tests.faces.apps.litestar_app:create_app",
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
            *("--timeout-graceful-shutdown", "3"),
        ]
        env = {
            **os.environ,  # the moto endpoint and its fake credentials
            "SENDFS_FACES_ROOT": str(root),
            "SENDFS_FACES_BUCKET": bucket,
            "SENDFS_FACES_TOKEN": token,
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        server = Server(f"http://127.0.0.1:{port}", process, log, big, medium)
        if _ready(server, token):
            return server
        server.stop()
        if "address already in use" not in server.log_text().lower():
            break
    pytest.fail(f"uvicorn did not start:\n{server.log_text()}")


def _ready(server: Server, token: str) -> bool:
    deadline = time.monotonic() + STARTUP_DEADLINE
    with httpx.Client(base_url=server.url, timeout=2.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if http.get("/ping").text == token:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Server]:
    import boto3

    root = tmp_path_factory.mktemp("litestar-files")
    big = secrets.token_bytes(BIG_SIZE)
    medium = secrets.token_bytes(MEDIUM_SIZE)
    (root / "big.bin").write_bytes(big)
    bucket = f"sendfs-litestar-{secrets.token_hex(4)}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/big.bin", Body=big)
    s3.put_object(Bucket=bucket, Key="dir/medium.bin", Body=medium)
    log = tmp_path_factory.mktemp("litestar-log") / "uvicorn.log"
    running = _start(root, bucket, log, big, medium)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http_client:
        yield http_client


@pytest.mark.e2e
@pytest.mark.s3
@pytest.mark.parametrize("path", ["/local/big.bin", "/files/big.bin", "/s3/dir/big.bin"])
def test_uvicorn_serves_full_and_ranges(server: Server, http: httpx.Client, path: str) -> None:
    full = http.get(path)
    assert full.status_code == 200
    assert full.content == server.big
    assert full.headers["content-length"] == str(BIG_SIZE)
    part = http.get(path, headers={"Range": "bytes=1048576-2097151"})
    assert part.status_code == 206
    assert part.content == server.big[1048576:2097152]
    assert part.headers["content-range"] == f"bytes 1048576-2097151/{BIG_SIZE}"
    cached = http.get(path, headers={"If-None-Match": full.headers["etag"]})
    assert cached.status_code == 304
    assert cached.content == b""


@pytest.mark.e2e
@pytest.mark.s3
def test_uvicorn_serves_the_other_routes(server: Server, http: httpx.Client) -> None:
    assert http.get("/bytes/big.bin").content == server.big
    assert http.get("/memory/big.bin", headers={"Range": "bytes=0-9"}).content == server.big[:10]
    attachment = http.get("/attachment/big.bin")
    assert attachment.headers["content-disposition"] == (
        "attachment; filename=\"resume big.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20big.bin"
    )
    head = http.head("/s3/dir/big.bin")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(BIG_SIZE)
    missing = http.get("/missing")
    assert missing.status_code == 404
    assert missing.json() == {"status_code": 404, "detail": "Not Found"}
    assert http.get("/s3/dir/nope.bin").status_code == 404
    assert http.get("/files/..%2fbig.bin").status_code == 404


@pytest.mark.e2e
@pytest.mark.s3
async def test_uvicorn_serves_concurrent_s3_downloads_exactly(server: Server) -> None:
    expected = hashlib.sha256(server.medium).hexdigest()
    digests: list[str] = []
    limits = httpx.Limits(max_connections=CONCURRENT)

    async def download(http_client: httpx.AsyncClient) -> None:
        digest = hashlib.sha256()
        async with http_client.stream("GET", "/s3/dir/medium.bin") as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
        digests.append(digest.hexdigest())

    async with httpx.AsyncClient(
        base_url=server.url, timeout=60.0, trust_env=False, limits=limits
    ) as http_client:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for _ in range(CONCURRENT):
                    group.start_soon(download, http_client)
    assert digests == [expected] * CONCURRENT


@pytest.mark.e2e
@pytest.mark.s3
def test_uvicorn_stops_cleanly_closing_the_storage_sessions(server: Server) -> None:
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert server.stop() in (0, -signal.SIGTERM)
    log = server.log_text()
    assert SESSIONS_CLOSED in log
    assert "Application shutdown complete." in log
    assert "Traceback" not in log, log
    assert "Unclosed" not in log, log
