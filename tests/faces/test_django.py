"""The Django face: sync and async views under Django's WSGI and ASGI handlers, and servers.

In process, Django's test ``Client`` (the WSGI path) and ``AsyncClient`` (the ASGI path) call
the views of this module (``urlpatterns`` below), and Django's real ``WSGIHandler`` and
``ASGIHandler`` stream a 64 MiB file under ``tracemalloc`` to show that no path reads a body
whole. The e2e tests run gunicorn and uvicorn on the contract app ``tests.faces.apps.django_app``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import http.client
import io
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import wsgiref.util
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import django  # type: ignore[import-untyped]
import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings  # type: ignore[import-untyped]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="sendfs-django-face-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.exceptions import PermissionDenied  # type: ignore[import-untyped]
from django.core.files.storage import (  # type: ignore[import-untyped]
    FileSystemStorage,
    InMemoryStorage,
)
from django.core.handlers.asgi import ASGIHandler  # type: ignore[import-untyped]
from django.core.handlers.wsgi import WSGIHandler  # type: ignore[import-untyped]
from django.db.models import FileField  # type: ignore[import-untyped]
from django.db.models.fields.files import FieldFile  # type: ignore[import-untyped]
from django.http import HttpResponse  # type: ignore[import-untyped]
from django.test import AsyncClient, Client  # type: ignore[import-untyped]
from django.test.client import (  # type: ignore[import-untyped]
    AsyncRequestFactory,
    RequestFactory,
)
from django.test.utils import override_settings  # type: ignore[import-untyped]
from django.urls import path  # type: ignore[import-untyped]

from sendfs import DownloadEvent, StorageRegistry, registry
from sendfs.django import (
    _apply_fields,
    asend_file,
    file_source,
    s3_storage_options,
    send_file,
    serve,
)
from sendfs.exceptions import (
    BackendError,
    SourceForbidden,
    SourceNotFound,
    StorageBusy,
    UnsafePath,
)
from sendfs.responses.blocking import LocalFile
from sendfs.storages.registry import Resolved
from tests.conftest import free_port
from tests.faces.apps.common import ATTACHMENT_PREFIX
from tests.helpers import parse_multipart

# Django warns, and then reads the whole body into a list, when a handler gets the wrong kind
# of iterator: here that is an error.
pytestmark = pytest.mark.filterwarnings("error:StreamingHttpResponse must consume")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEXT = "héllo, sendfs\n".encode() * 10
DATA = secrets.token_bytes(100 * 1024)
REPORT = secrets.token_bytes(50 * 1024)
BIG_SIZE = 64 * 1024 * 1024
#: The most Python may allocate at once while 64 MiB stream (chunks are 256 KiB to 1 MiB).
FLAT_MEMORY = 16 * 1024 * 1024
MEMORY_PREFIX = "memory://sendfs-django-tests"
HANDLERS = ["wsgi-sync", "wsgi-async", "asgi-sync", "asgi-async"]


# -- the views under test --------------------------------------------------------------------


@dataclass
class State:
    """What the views serve: the local tree, optional storages, and the download events."""

    root: Path = Path()
    s3_storage: Any = None
    events: list[DownloadEvent] = field(default_factory=list)


STATE = State()


def _source(kind: str, name: str) -> Any:
    root = STATE.root
    if kind == "local":
        return str(root / name)
    if kind == "bytes":
        return io.BytesIO((root / name).read_bytes())
    if kind == "memory":
        return f"{MEMORY_PREFIX}/{name}"
    if kind == "field":
        storage = FileSystemStorage(location=root / "media")
        return FieldFile(None, FileField(storage=storage), name)
    if kind == "memfield":
        storage = InMemoryStorage()
        storage.save(name, io.BytesIO((root / name).read_bytes()))
        return FieldFile(None, FileField(storage=storage), name)
    if kind == "s3field":
        return FieldFile(None, FileField(storage=STATE.s3_storage), name)
    if kind == "s3file":
        return STATE.s3_storage.open(name)
    raise AssertionError(kind)


def _options(kind: str, name: str) -> dict[str, Any]:
    options: dict[str, Any] = {"on_complete": STATE.events.append}
    if name == "custom.bin":
        options["headers"] = {"X-Extra": "1", "Content-Type": "application/x-custom"}
    return options


def sync_view(request: Any, kind: str, name: str) -> Any:
    if kind == "attachment":
        return send_file(
            request,
            str(STATE.root / name),
            as_attachment=True,
            download_name=ATTACHMENT_PREFIX + name,
        )
    return send_file(request, _source(kind, name), **_options(kind, name))


async def async_view(request: Any, kind: str, name: str) -> Any:
    if kind == "attachment":
        return await asend_file(
            request,
            str(STATE.root / name),
            as_attachment=True,
            download_name=ATTACHMENT_PREFIX + name,
        )
    source = await sync_to_async(_source)(kind, name)
    return await asend_file(request, source, **_options(kind, name))


def indexed_view(request: Any, path: str) -> Any:
    return serve(request, path, document_root=STATE.root, show_indexes=True)


def plain_view(request: Any, path: str) -> Any:
    return serve(request, path, str(STATE.root), max_age=60)


urlpatterns = [
    path("sync/<str:kind>/<path:name>", sync_view),
    path("async/<str:kind>/<path:name>", async_view),
    path("serve/", indexed_view, {"path": ""}),
    path("serve/<path:path>", indexed_view),
    path("static/<path:path>", plain_view),
]


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The files the views serve, and a file outside them."""
    base = tmp_path_factory.mktemp("django-face")
    root = base / "root"
    (root / "media" / "docs").mkdir(parents=True)
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "hello.txt").write_bytes(TEXT)
    (root / "data.bin").write_bytes(DATA)
    (root / "custom.bin").write_bytes(DATA)
    (root / "media" / "docs" / "report.bin").write_bytes(REPORT)
    (root / "sub" / "a <b>.txt").write_bytes(b"a")
    (base / "outside.txt").write_bytes(b"secret")
    import fsspec

    memory = fsspec.filesystem("memory")
    for name in ("hello.txt", "data.bin"):
        memory.pipe_file(f"{MEMORY_PREFIX}/{name}", (root / name).read_bytes())
    STATE.root = root
    yield root
    memory.rm(MEMORY_PREFIX, recursive=True)


@pytest.fixture(autouse=True)
def django_urls(tree: Path) -> Iterator[None]:
    """This module's views, behind the middleware most projects run."""
    middleware = [
        "django.middleware.common.CommonMiddleware",
        "django.middleware.http.ConditionalGetMiddleware",
    ]
    STATE.events.clear()
    with override_settings(
        ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], MIDDLEWARE=middleware, DEBUG=False
    ):
        yield


@pytest.fixture(scope="module")
def big_file(tree: Path) -> Path:
    """64 MiB (sparse: reading it costs no disk)."""
    big = tree / "big.bin"
    with big.open("wb") as file:
        file.truncate(BIG_SIZE)
    return big


@dataclass
class Fetched:
    """A response as a client saw it: lower-case header names, the body read whole."""

    status: int
    headers: dict[str, str]
    body: bytes
    is_async: bool | None


def fetch(handler: str, url: str, method: str = "GET", **headers: str) -> Fetched:
    """Request ``url`` of this module's views through one handler.

    ``handler`` is ``"<wsgi|asgi>-<sync|async>"``: Django's test ``Client`` or
    ``AsyncClient``, and the sync or async views.
    """
    mode, views = handler.split("-")
    full = url.replace("{views}", views)
    if mode == "wsgi":
        response = Client().generic(method, full, headers=headers)
        return _fetched(response, _sync_body(response))

    async def fetch_async() -> Fetched:
        try:
            response = await AsyncClient().generic(method, full, headers=headers)
            return _fetched(response, await _async_body(response))
        finally:
            await registry.aclose()  # S3 sessions opened in this loop

    return asyncio.run(fetch_async())


def _sync_body(response: Any) -> bytes:
    if not response.streaming:
        return bytes(response.content)
    assert not response.is_async, "an async iterator under WSGI is read whole by Django"
    body = b"".join(response.streaming_content)
    response.close()
    return body


async def _async_body(response: Any) -> bytes:
    if not response.streaming:
        return bytes(response.content)
    assert response.is_async, "a sync iterator under ASGI is read whole by Django"
    return b"".join([chunk async for chunk in response.streaming_content])


def _fetched(response: Any, body: bytes) -> Fetched:
    headers = {name.lower(): value for name, value in response.items()}
    is_async = response.is_async if response.streaming else None
    return Fetched(response.status_code, headers, body, is_async)


def etag_of(handler: str, name: str) -> str:
    return fetch(handler, f"/{{views}}/local/{name}", "HEAD").headers["etag"]


# -- full answers, HEAD, ranges, preconditions -----------------------------------------------


@pytest.mark.parametrize("handler", HANDLERS)
def test_full_get_sends_exact_bytes_and_headers(handler: str) -> None:
    got = fetch(handler, "/{views}/local/data.bin")
    assert (got.status, got.body) == (200, DATA)
    assert got.is_async is handler.startswith("asgi")
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["cache-control"] == "no-cache"
    assert got.headers["content-disposition"] == 'inline; filename="data.bin"'
    assert got.headers["etag"].startswith('"')
    assert got.headers["last-modified"].endswith(" GMT")
    text = fetch(handler, "/{views}/local/hello.txt")
    assert (text.body, text.headers["content-type"]) == (TEXT, "text/plain; charset=utf-8")


@pytest.mark.parametrize("handler", HANDLERS)
def test_head_sends_the_headers_of_get_without_a_body(handler: str) -> None:
    got = fetch(handler, "/{views}/local/data.bin", "HEAD")
    assert (got.status, got.body) == (200, b"")
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("handler", HANDLERS)
def test_single_range_is_206_with_exact_bytes(handler: str) -> None:
    got = fetch(handler, "/{views}/local/data.bin", Range="bytes=100-1099")
    assert (got.status, got.body) == (206, DATA[100:1100])
    assert got.headers["content-range"] == f"bytes 100-1099/{len(DATA)}"
    assert got.headers["content-length"] == "1000"


@pytest.mark.parametrize("handler", HANDLERS)
def test_multiple_ranges_are_a_multipart_206(handler: str) -> None:
    got = fetch(handler, "/{views}/local/data.bin", Range="bytes=0-9,-10")
    assert got.status == 206
    assert got.headers["content-length"] == str(len(got.body))
    parts = parse_multipart(got.headers["content-type"], got.body)
    assert [part.body for part in parts] == [DATA[:10], DATA[-10:]]
    assert (
        parts[1].headers["content-range"] == f"bytes {len(DATA) - 10}-{len(DATA) - 1}/{len(DATA)}"
    )


@pytest.mark.parametrize("handler", HANDLERS)
def test_unsatisfiable_range_is_416(handler: str) -> None:
    got = fetch(handler, "/{views}/local/data.bin", Range=f"bytes={len(DATA)}-")
    assert (got.status, got.body) == (416, b"")
    assert got.headers["content-range"] == f"bytes */{len(DATA)}"
    assert "text/html" not in got.headers.get("content-type", "")


@pytest.mark.parametrize("handler", HANDLERS)
def test_matching_if_none_match_is_304(handler: str) -> None:
    etag = etag_of(handler, "data.bin")
    got = fetch(handler, "/{views}/local/data.bin", If_None_Match=etag)
    assert (got.status, got.body) == (304, b"")
    assert got.headers["etag"] == etag
    assert "content-type" not in got.headers


@pytest.mark.parametrize("handler", HANDLERS)
def test_failed_if_match_is_412(handler: str) -> None:
    got = fetch(handler, "/{views}/local/data.bin", If_Match='"not-the-tag"')
    assert (got.status, got.body) == (412, b"")


@pytest.mark.parametrize("handler", HANDLERS)
def test_missing_file_is_a_404_rendered_by_django(handler: str) -> None:
    got = fetch(handler, "/{views}/local/no-such.bin")
    assert got.status == 404
    assert got.is_async is None  # Django's own 404 page
    assert b"no-such" not in got.body
    assert STATE.events[-1].status == 404


@pytest.mark.parametrize("handler", HANDLERS)
def test_download_event_reports_the_bytes_sent(handler: str) -> None:
    fetch(handler, "/{views}/local/data.bin")
    [event] = STATE.events
    assert (event.status, event.bytes_sent, event.aborted) == (200, len(DATA), False)


# -- sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", HANDLERS)
def test_bytesio_is_served_with_ranges(handler: str) -> None:
    full = fetch(handler, "/{views}/bytes/data.bin")
    part = fetch(handler, "/{views}/bytes/data.bin", Range="bytes=-5")
    assert (full.status, full.body) == (200, DATA)
    assert (part.status, part.body) == (206, DATA[-5:])


@pytest.mark.parametrize("handler", HANDLERS)
def test_memory_url_is_served(handler: str) -> None:
    got = fetch(handler, "/{views}/memory/hello.txt")
    assert (got.status, got.body) == (200, TEXT)
    assert got.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("handler", HANDLERS)
def test_fieldfile_on_filesystem_storage_is_served_from_its_location(handler: str) -> None:
    got = fetch(handler, "/{views}/field/docs/report.bin", Range="bytes=0-99")
    assert (got.status, got.body) == (206, REPORT[:100])
    assert got.headers["content-disposition"] == 'inline; filename="report.bin"'


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("name", ["../hello.txt", "docs/../../outside.txt", "/etc/passwd"])
def test_fieldfile_name_leaving_the_storage_location_is_404(handler: str, name: str) -> None:
    assert fetch(handler, f"/{{views}}/field/{name}").status == 404


@pytest.mark.parametrize("handler", HANDLERS)
def test_fieldfile_on_another_storage_is_read_through_storage_open(handler: str) -> None:
    got = fetch(handler, "/{views}/memfield/data.bin", Range="bytes=10-19")
    assert (got.status, got.body) == (206, DATA[10:20])


@pytest.mark.parametrize("handler", ["wsgi-sync", "asgi-async"])
def test_attachment_carries_a_non_ascii_download_name(handler: str) -> None:
    got = fetch(handler, "/{views}/attachment/hello.txt")
    assert got.body == TEXT
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"resume hello.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20hello.txt"
    )


@pytest.mark.parametrize("handler", ["wsgi-sync", "asgi-async"])
def test_caller_headers_override_computed_ones(handler: str) -> None:
    got = fetch(handler, "/{views}/local/custom.bin")
    assert got.headers["x-extra"] == "1"
    assert got.headers["content-type"] == "application/x-custom"


# -- errors before the first byte ------------------------------------------------------------


class FailingBackend:
    """A backend whose every open fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def open(self, source: Any, **options: Any) -> Any:
        raise self.error


def failing_registry(error: Exception) -> StorageRegistry:
    reg = StorageRegistry(entry_points=False)
    reg.register("broken", FailingBackend(error))
    return reg


def test_forbidden_source_raises_permission_denied() -> None:
    request = RequestFactory().get("/x")
    reg = failing_registry(SourceForbidden("no"))
    with pytest.raises(PermissionDenied):
        send_file(request, "broken://x", registry=reg)


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [(BackendError("down"), 502, None), (StorageBusy("busy"), 503, "5")],
)
def test_storage_failures_answer_502_and_503(
    error: Exception, status: int, retry_after: str | None
) -> None:
    response = send_file(RequestFactory().get("/x"), "broken://x", registry=failing_registry(error))
    assert isinstance(response, HttpResponse)
    assert response.status_code == status
    assert response.get("Retry-After") == retry_after
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"down" not in response.content


@pytest.mark.anyio
async def test_asend_file_translates_errors_the_same_way() -> None:
    request = AsyncRequestFactory().get("/x")
    with pytest.raises(PermissionDenied):
        await asend_file(request, "broken://x", registry=failing_registry(SourceForbidden("no")))
    busy = await asend_file(request, "broken://x", registry=failing_registry(StorageBusy("x")))
    assert (busy.status_code, busy["Retry-After"]) == (503, "5")


@pytest.mark.anyio
async def test_send_file_refuses_a_running_event_loop(tree: Path) -> None:
    with pytest.raises(RuntimeError, match="asend_file"):
        send_file(AsyncRequestFactory().get("/x"), str(tree / "data.bin"))


def test_repeated_fields_are_joined_and_django_defaults_dropped() -> None:
    response = HttpResponse(b"")
    _apply_fields(response, [(b"vary", b"Origin"), (b"x-a", b"1"), (b"vary", b"Cookie")])
    assert dict(response.items()) == {"vary": "Origin, Cookie", "x-a": "1"}
    with pytest.raises(ValueError, match="set_cookie"):
        _apply_fields(HttpResponse(b""), [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")])


# -- Django files mapped to their storage (table) --------------------------------------------


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``AWS_*`` variables: django-storages reads them as defaults (the moto fixture sets
    them for the whole session once an S3 test ran)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


def _s3_storage(**options: Any) -> Any:
    from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

    return S3Storage(**{"bucket_name": "bkt", "access_key": "ak", "secret_key": "sk", **options})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"key": "ak", "secret": "sk"}),
        (
            {
                "endpoint_url": "http://127.0.0.1:9000",
                "security_token": "tok",
                "region_name": "eu-west-3",
                "addressing_style": "path",
                "signature_version": "s3v4",
                "use_ssl": False,
                "verify": False,
            },
            {
                "endpoint_url": "http://127.0.0.1:9000",
                "key": "ak",
                "secret": "sk",
                "token": "tok",
                "use_ssl": False,
                "client_kwargs": {"region_name": "eu-west-3", "verify": False},
                "config_kwargs": {"s3": {"addressing_style": "path"}, "signature_version": "s3v4"},
            },
        ),
        (
            {"access_key": None, "secret_key": None, "session_profile": "media"},
            {"profile": "media"},
        ),
    ],
    ids=["credentials", "endpoint-region-addressing", "profile"],
)
@pytest.mark.usefixtures("no_aws_environment")
def test_s3_storage_options_follow_the_storage_settings(
    options: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert s3_storage_options(_s3_storage(**options)) == expected


@pytest.mark.usefixtures("no_aws_environment")
def test_s3_storage_options_keep_a_client_config_of_the_project() -> None:
    from botocore.config import Config

    config = Config(s3={"addressing_style": "virtual"}, proxies={"https": "http://proxy:3128"})
    got = s3_storage_options(_s3_storage(client_config=config))
    assert got["config_kwargs"] == {
        "s3": {"addressing_style": "virtual"},
        "proxies": {"https": "http://proxy:3128"},
    }


@pytest.mark.parametrize(
    ("storage", "name", "target", "root"),
    [
        ("filesystem", "docs/report.bin", "{root}/media/docs/report.bin", "{root}/media"),
        ("s3", "docs/report.bin", "s3://bkt/docs/report.bin", None),
        ("s3-location", "docs/report.bin", "s3://bkt/media/uploads/docs/report.bin", None),
        ("s3boto3", "a b.pdf", "s3://bkt/a b.pdf", None),
    ],
)
@pytest.mark.usefixtures("no_aws_environment")
def test_file_source_maps_fieldfiles_to_their_storage_root(
    tree: Path, storage: str, name: str, target: str, root: str | None
) -> None:
    from storages.backends.s3boto3 import S3Boto3Storage  # type: ignore[import-untyped]

    storages = {
        "filesystem": lambda: FileSystemStorage(location=tree / "media"),
        "s3": lambda: _s3_storage(),
        "s3-location": lambda: _s3_storage(location="media/uploads/"),
        "s3boto3": lambda: S3Boto3Storage(bucket_name="bkt"),
    }
    field_file = FieldFile(None, FileField(storage=storages[storage]()), name)
    got = file_source(field_file, registry, {"anon": False})
    assert isinstance(got, Resolved)
    assert got.target == target.format(root=tree)
    assert got.options.get("root") == (root.format(root=tree) if root else None)
    assert got.options["anon"] is False  # the caller's storage options are kept
    if storage.startswith("s3"):
        assert got.options.get("key") == ("ak" if storage != "s3boto3" else None)


def test_file_source_opens_fieldfiles_of_other_storages(tree: Path) -> None:
    storage = InMemoryStorage()
    storage.save("x.bin", io.BytesIO(b"xyz"))
    got = file_source(FieldFile(None, FileField(storage=storage), "x.bin"), registry)
    assert got.read() == b"xyz"
    got.close()


@pytest.mark.parametrize(
    "source", ["/srv/a.bin", "s3://bucket/key", io.BytesIO(b"x")], ids=["path", "url", "bytesio"]
)
def test_file_source_leaves_other_sources_alone(source: Any) -> None:
    assert file_source(source, registry) is source


@pytest.mark.parametrize(
    ("name", "error"),
    [("", SourceNotFound), ("../x", UnsafePath), ("missing.bin", SourceNotFound)],
)
def test_file_source_refuses_empty_unsafe_and_missing_names(
    tree: Path, name: str, error: type[Exception]
) -> None:
    storage = FileSystemStorage(location=tree) if name != "missing.bin" else InMemoryStorage()
    with pytest.raises(error):
        file_source(FieldFile(None, FileField(storage=storage), name), registry)


# -- serve ------------------------------------------------------------------------------------


def test_serve_answers_ranges_and_304() -> None:
    client = Client()
    full = client.get("/static/data.bin")
    assert b"".join(full.streaming_content) == DATA
    assert full["Cache-Control"] == "public, max-age=60"
    part = client.get("/static/data.bin", headers={"Range": "bytes=5-9"})
    assert (part.status_code, b"".join(part.streaming_content)) == (206, DATA[5:10])
    since = client.get("/static/data.bin", headers={"If-Modified-Since": full["Last-Modified"]})
    assert since.status_code == 304


@pytest.mark.parametrize(
    "url", ["/static/../outside.txt", "/static/%2e%2e/outside.txt", "/static/sub/", "/static/sub"]
)
def test_serve_refuses_paths_leaving_the_root_and_directories(url: str) -> None:
    assert Client().get(url).status_code == 404


def test_serve_lists_directories_with_show_indexes() -> None:
    client = Client()
    root = client.get("/serve/")
    assert root.status_code == 200
    assert root["Content-Type"] == "text/html; charset=utf-8"
    assert b'href="sub/"' in root.content
    assert b'href="hello.txt"' in root.content
    sub = client.get("/serve/sub/")
    assert b'href="a%20%3Cb%3E.txt"' in sub.content
    assert b"a &lt;b&gt;.txt" in sub.content
    head = client.head("/serve/sub/")
    assert (head.content, head["Content-Length"]) == (b"", str(len(sub.content)))


def test_serve_redirects_a_directory_to_its_slash_with_show_indexes() -> None:
    response = Client().get("/serve/sub", QUERY_STRING="sort=name")
    assert (response.status_code, response["Location"]) == (307, "/serve/sub/?sort=name")


def test_serve_needs_a_document_root() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        serve(RequestFactory().get("/x"), "a.txt")


# -- Django's real handlers: iterator kinds, file_wrapper, flat memory, disconnects -----------


def wsgi_environ(path_info: str, **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path_info, "REQUEST_METHOD": "GET", **extra}
    wsgiref.util.setup_testing_defaults(environ)
    environ["SERVER_NAME"] = environ["HTTP_HOST"] = "testserver"
    return environ


def call_wsgi(environ: dict[str, Any]) -> tuple[str, Any]:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return None

    result = WSGIHandler()(environ, start_response)
    return statuses[0], result


def drain_measured(chunks: Iterator[bytes]) -> tuple[int, int]:
    """Read every chunk, keeping none; return the byte count and the peak traced memory."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        total = sum(len(chunk) for chunk in chunks)
        return total, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("views", ["sync", "async"])
def test_wsgi_handler_streams_a_large_body_in_flat_memory(big_file: Path, views: str) -> None:
    status, result = call_wsgi(wsgi_environ(f"/{views}/local/big.bin"))
    try:
        total, peak = drain_measured(iter(result))
    finally:
        result.close()
    assert (status, total) == ("200 OK", BIG_SIZE)
    assert peak < FLAT_MEMORY
    assert STATE.events[-1].bytes_sent == BIG_SIZE


def test_wsgi_handler_hands_a_whole_local_file_to_the_file_wrapper(tree: Path) -> None:
    environ = wsgi_environ(
        "/sync/local/data.bin", **{"wsgi.file_wrapper": wsgiref.util.FileWrapper}
    )
    _, result = call_wsgi(environ)
    assert isinstance(result, wsgiref.util.FileWrapper)
    assert isinstance(result.filelike, LocalFile)
    assert b"".join(result) == DATA
    assert STATE.events == []  # the event comes when the server closes the wrapper
    result.close()
    assert result.filelike.closed
    [event] = STATE.events
    assert (event.status, event.bytes_sent, event.aborted) == (200, len(DATA), False)
    ranged = wsgi_environ(
        "/sync/local/data.bin",
        HTTP_RANGE="bytes=0-1",
        **{"wsgi.file_wrapper": wsgiref.util.FileWrapper},
    )
    _, partial = call_wsgi(ranged)
    assert not isinstance(partial, wsgiref.util.FileWrapper)  # ranges stream
    assert b"".join(partial) == DATA[:2]
    partial.close()


def asgi_scope(path_info: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path_info,
        "raw_path": path_info.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


@dataclass
class AsgiRun:
    """What Django's ASGIHandler sent: the status, the body's size and the peak memory."""

    status: int = 0
    received: int = 0
    messages: int = 0
    peak: int = 0


async def run_asgi(path_info: str, disconnect_after: int | None = None) -> AsgiRun:
    """Call Django's ASGIHandler; the client leaves after ``disconnect_after`` body messages."""
    run = AsgiRun()
    gone = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            run.status = message["status"]
        elif message["type"] == "http.response.body":
            run.received += len(message.get("body", b""))
            run.messages += 1
            if disconnect_after is not None and run.messages >= disconnect_after:
                gone.set()
                await asyncio.sleep(1)  # the handler cancels this send
        await asyncio.sleep(0)

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        await ASGIHandler()(asgi_scope(path_info), receive, send)
        run.peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return run


@pytest.mark.anyio
@pytest.mark.parametrize("views", ["async", "sync"])
async def test_asgi_handler_streams_a_large_body_in_flat_memory(big_file: Path, views: str) -> None:
    run = await run_asgi(f"/{views}/local/big.bin")
    assert (run.status, run.received) == (200, BIG_SIZE)
    assert run.messages > 100  # Django's 64 KiB messages, as they were read
    assert run.peak < FLAT_MEMORY
    assert STATE.events[-1].bytes_sent == BIG_SIZE


async def wait_for_events(count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(STATE.events) < count and time.monotonic() < deadline:
        gc.collect()
        await asyncio.sleep(0.02)


@pytest.mark.anyio
@pytest.mark.parametrize("views", ["async", "sync"])
async def test_asgi_client_that_leaves_releases_the_stream(big_file: Path, views: str) -> None:
    run = await run_asgi(f"/{views}/local/big.bin", disconnect_after=3)
    assert run.received < BIG_SIZE
    await wait_for_events(1)
    [event] = STATE.events
    assert event.aborted
    assert event.bytes_sent < BIG_SIZE


# -- S3 through django-storages ---------------------------------------------------------------


class CountingProxy:
    """A reverse proxy in front of moto recording each request's method, path and Range.

    It counts the requests the S3 client makes on the wire; nothing of S3 is patched.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = httpx.URL(upstream)
        self.requests: list[tuple[str, str, str | None]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path, self.headers.get("Range")))
                upstream = http.client.HTTPConnection(
                    proxy.upstream.host, proxy.upstream.port, timeout=30
                )
                skip = {"connection", "keep-alive", "transfer-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                content = answer.read()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in skip | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)
                upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def gets(self, key: str) -> list[str | None]:
        """The Range header of every GET of ``key`` (``None`` for a GET without one)."""
        return [rng for method, path_, rng in self.requests if method == "GET" and key in path_]

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def s3_proxy(moto_endpoint: str) -> Iterator[CountingProxy]:
    with CountingProxy(moto_endpoint) as proxy:
        yield proxy


@pytest.fixture
def s3_media(bucket: str, s3_client: Any, s3_proxy: CountingProxy) -> Iterator[CountingProxy]:
    """``media/docs/report.bin`` in the bucket, and an ``S3Storage`` reaching it via the proxy."""
    from storages.backends.s3 import S3Storage

    s3_client.put_object(Bucket=bucket, Key="media/docs/report.bin", Body=REPORT)
    STATE.s3_storage = S3Storage(
        bucket_name=bucket,
        location="media",
        endpoint_url=s3_proxy.url,
        access_key="testing",
        secret_key="testing",
        region_name="us-east-1",
        addressing_style="path",
    )
    yield s3_proxy
    STATE.s3_storage = None


@pytest.mark.s3
@pytest.mark.parametrize("handler", ["wsgi-sync", "asgi-async"])
def test_fieldfile_on_s3_storage_is_one_ranged_get_object(
    s3_media: CountingProxy, handler: str
) -> None:
    try:
        got = fetch(handler, "/{views}/s3field/docs/report.bin", Range="bytes=10-29")
        assert (got.status, got.body) == (206, REPORT[10:30])
        assert s3_media.gets("media/docs/report.bin") == ["bytes=10-29"]
        full = fetch(handler, "/{views}/s3field/docs/report.bin")
        assert (full.status, full.body) == (200, REPORT)
        assert len(s3_media.gets("media/docs/report.bin")) == 2
        assert full.headers["etag"] == f'"{hashlib.md5(REPORT).hexdigest()}"'
    finally:
        if handler.startswith("wsgi"):
            from sendfs.responses import blocking

            blocking.call(registry.aclose)


@pytest.mark.s3
def test_file_from_s3_storage_open_is_served_from_its_object(s3_media: CountingProxy) -> None:
    try:
        got = fetch("wsgi-sync", "/{views}/s3file/docs/report.bin", Range="bytes=0-4")
        assert (got.status, got.body) == (206, REPORT[:5])
        # The storage's own HEAD when it opened the file, then sendfs's one ranged GET.
        assert s3_media.gets("media/docs/report.bin") == ["bytes=0-4"]
    finally:
        from sendfs.responses import blocking

        blocking.call(registry.aclose)


# -- real servers: gunicorn (WSGI, sync views) and uvicorn (ASGI, async or sync views) --------

BIG_LOCAL = 3 * 1024 * 1024
CONCURRENT_SIZE = 8 * 1024 * 1024
CONCURRENT_CLIENTS = 20
STARTUP_DEADLINE = 30.0


@dataclass
class Server:
    """A server process on 127.0.0.1; ``stop()`` ends it by its PID."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass(frozen=True)
class ServedData:
    root: Path
    bucket: str
    big: bytes
    s3_small: bytes
    s3_big: bytes


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> ServedData:
    import boto3

    root = tmp_path_factory.mktemp("django-served")
    big = secrets.token_bytes(BIG_LOCAL)
    (root / "big.bin").write_bytes(big)
    (root / "hello.txt").write_bytes(TEXT)
    bucket = f"sendfs-django-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    s3_small = secrets.token_bytes(BIG_LOCAL)
    s3_big = secrets.token_bytes(CONCURRENT_SIZE)
    client.put_object(Bucket=bucket, Key="dir/small.bin", Body=s3_small)
    client.put_object(Bucket=bucket, Key="dir/big.bin", Body=s3_big)
    return ServedData(root, bucket, big, s3_small, s3_big)


SERVER_COMMANDS = {
    "gunicorn-sync": [
        *("-m", "gunicorn", "--workers", "4", "--worker-class", "sync", "--timeout", "120"),
        *("--no-control-socket", "--bind", "127.0.0.1:{port}"),
        "tests.faces.apps.django_app.wsgi:application",
    ],
    "uvicorn-async": [
        *("-m", "uvicorn", "tests.faces.apps.django_app.asgi:application"),
        *("--host", "127.0.0.1", "--port", "{port}", "--lifespan", "off", "--no-access-log"),
    ],
    "uvicorn-sync": [
        *("-m", "uvicorn", "tests.faces.apps.django_app.asgi:application"),
        *("--host", "127.0.0.1", "--port", "{port}", "--lifespan", "off", "--no-access-log"),
    ],
}


def start_server(name: str, data: ServedData, log: Path) -> Server:
    token = secrets.token_hex(8)
    for _ in range(3):
        port = free_port()
        env = {
            **os.environ,  # AWS_ENDPOINT_URL and the fake credentials of the moto fixture
            "SENDFS_FACES_ROOT": str(data.root),
            "SENDFS_FACES_BUCKET": data.bucket,
            "SENDFS_FACES_TOKEN": token,
            "SENDFS_DJANGO_VIEWS": name.split("-")[1],
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [sys.executable, *(arg.format(port=port) for arg in SERVER_COMMANDS[name])]
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        server = Server(name, f"http://127.0.0.1:{port}", process, log)
        if _answers(server, token):
            return server
        server.stop()
        if "address already in use" not in log.read_text(errors="replace").lower():
            break
    pytest.fail(f"{name} did not start:\n{log.read_text(errors='replace')}")


def _answers(server: Server, token: str) -> bool:
    deadline = time.monotonic() + STARTUP_DEADLINE
    with httpx.Client(base_url=server.url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline and server.process.poll() is None:
            try:
                if client.get("/ping").text == token:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module", params=list(SERVER_COMMANDS))
def server(
    request: pytest.FixtureRequest, served: ServedData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name = str(request.param)
    running = start_server(name, served, tmp_path_factory.mktemp(name) / "server.log")
    try:
        yield running
    finally:
        running.stop()
    log = running.log.read_text(errors="replace")
    # Django warns when it must read a whole body to turn it into the other kind of iterator.
    assert "must consume" not in log, log
    assert "Traceback" not in log, log


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60.0, trust_env=False)


@pytest.mark.e2e
@pytest.mark.s3
def test_server_serves_local_files_whole_and_in_ranges(server: Server, served: ServedData) -> None:
    with _client(server) as client:
        full = client.get("/local/big.bin")
        part = client.get("/local/big.bin", headers={"Range": "bytes=1000-2999999"})
        head = client.head("/local/big.bin")
    assert (full.status_code, full.content) == (200, served.big)
    assert full.headers["content-length"] == str(BIG_LOCAL)
    assert (part.status_code, part.content) == (206, served.big[1000:3000000])
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(BIG_LOCAL)


@pytest.mark.e2e
@pytest.mark.s3
def test_server_serves_s3_objects_whole_and_in_ranges(server: Server, served: ServedData) -> None:
    with _client(server) as client:
        full = client.get("/s3/dir/small.bin")
        part = client.get("/s3/dir/small.bin", headers={"Range": "bytes=-100"})
    assert (full.status_code, full.content) == (200, served.s3_small)
    assert (part.status_code, part.content) == (206, served.s3_small[-100:])


@pytest.mark.e2e
@pytest.mark.s3
def test_server_answers_304_and_404(server: Server) -> None:
    with _client(server) as client:
        etag = client.head("/local/hello.txt").headers["etag"]
        not_modified = client.get("/local/hello.txt", headers={"If-None-Match": etag})
        missing = client.get("/missing")
        escaped = client.get("/files/%2e%2e/etc/passwd")
        s3_missing = client.get("/s3/dir/nope.bin")
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert missing.status_code == 404
    assert escaped.status_code == 404
    assert s3_missing.status_code == 404


@pytest.mark.e2e
@pytest.mark.s3
def test_server_serves_every_contract_source(server: Server, served: ServedData) -> None:
    with _client(server) as client:
        files = client.get("/files/hello.txt")
        blob = client.get("/bytes/hello.txt", headers={"Range": "bytes=0-4"})
        memory = client.get("/memory/hello.txt")
        attachment = client.get("/attachment/hello.txt")
    assert (files.status_code, files.content) == (200, TEXT)
    assert (blob.status_code, blob.content) == (206, TEXT[:5])
    assert (memory.status_code, memory.content) == (200, TEXT)
    assert attachment.content == TEXT
    assert attachment.headers["content-disposition"].startswith('attachment; filename="resume')


@pytest.mark.e2e
@pytest.mark.s3
def test_server_serves_twenty_concurrent_s3_downloads(server: Server, served: ServedData) -> None:
    expected = hashlib.sha256(served.s3_big).hexdigest()

    def download(_: int) -> tuple[int, str]:
        with _client(server) as client:
            response = client.get("/s3/dir/big.bin")
            return response.status_code, hashlib.sha256(response.content).hexdigest()

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        results = list(pool.map(download, range(CONCURRENT_CLIENTS)))
    assert results == [(200, expected)] * CONCURRENT_CLIENTS


# -- the documentation page --------------------------------------------------------------------


def test_the_django_page_examples_are_python_using_real_names() -> None:
    import ast
    import re

    import sendfs.django

    page = (PROJECT_ROOT / "docs" / "django.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 4
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module == "sendfs.django":
                assert all(hasattr(sendfs.django, alias.name) for alias in node.names)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"media_type": "text/plain"}, r"takes mimetype=, not media_type="),
        ({"donwload_name": "x.txt"}, r"did you mean download_name=\?"),
    ],
)
def test_an_unknown_option_is_a_type_error_naming_the_right_one(
    tree: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        send_file(RequestFactory().get("/x"), str(tree / "data.bin"), **options)
