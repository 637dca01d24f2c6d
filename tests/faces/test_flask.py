"""The Flask and Werkzeug face: Flask's test client, a plain Werkzeug app, real WSGI servers.

In-process tests drive :mod:`sendfs.flask` through Flask's test client (which, like every WSGI
server, closes the body it was given) and assert exact bytes and header sets. The end-to-end
tests run ``tests/faces/apps/flask_app.py`` under gunicorn (sync and gthread workers) and
waitress on 127.0.0.1 and download from them with curl and httpx.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import hashlib
import importlib
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pytest
from flask import Flask, Response, url_for
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.test import Client
from werkzeug.test import TestResponse as WerkzeugTestResponse
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as WerkzeugResponse
from werkzeug.wsgi import FileWrapper

from sendfs import BackendError, DownloadEvent, FileInfo, ResourceBase, StorageRegistry
from sendfs.exceptions import (
    RedirectUnavailable,
    SendfsError,
    SourceForbidden,
    StorageBusy,
    UnknownScheme,
)
from sendfs.flask import (
    send_file,
    send_from_directory,
    send_from_storage,
    send_zip,
    storage_blueprint,
)
from sendfs.responses import blocking
from tests.conftest import free_port
from tests.helpers import parse_multipart

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = secrets.token_bytes(300 * 1024)  # more than one 256 KiB chunk
NOTES = "héllo, flask\n".encode()
SECRET = b"outside the root"


# -- an app over a directory of test files --------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """``files/`` with ``data.bin`` and ``notes.txt``; ``secret.txt`` next to it, outside."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "data.bin").write_bytes(DATA)
    (files / "notes.txt").write_bytes(NOTES)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return files


@pytest.fixture
def events() -> list[DownloadEvent]:
    return []


@pytest.fixture
def app(root: Path, events: list[DownloadEvent]) -> Flask:
    """Routes over ``root``, which is also the app's root path (for relative paths)."""
    app = Flask(__name__, root_path=str(root))

    @app.get("/local/<name>")
    def local(name: str) -> WerkzeugResponse:
        return send_file(str(root / name), on_complete=events.append)

    @app.get("/relative/<name>")
    def relative(name: str) -> WerkzeugResponse:
        return send_file(name)

    @app.get("/files/<path:path>")
    def files(path: str) -> WerkzeugResponse:
        return send_from_directory(str(root), path)

    return app


def _get(app: Flask, url: str, method: str = "GET", **kwargs: Any) -> WerkzeugTestResponse:
    """One request through the test client; the response is read and closed, as a server does."""
    response = app.test_client().open(url, method=method, **kwargs)
    try:
        response.get_data()
    finally:
        response.close()
    return response


def _fields(response: WerkzeugResponse) -> dict[str, str]:
    """The response's header fields, lower-case names (one value each)."""
    return {name.lower(): value for name, value in response.headers.items()}


def _http_date(path: Path) -> str:
    return email.utils.formatdate(int(path.stat().st_mtime), usegmt=True)


# -- full, HEAD, ranges, preconditions --------------------------------------------------------


def test_full_get_sends_exact_bytes_and_only_the_cores_headers(app: Flask, root: Path) -> None:
    response = _get(app, "/local/data.bin")
    assert response.status_code == 200
    assert response.get_data() == DATA
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag)
    assert _fields(response) == {
        "etag": etag,
        "last-modified": _http_date(root / "data.bin"),
        "cache-control": "no-cache",
        "accept-ranges": "bytes",
        "content-disposition": 'inline; filename="data.bin"',
        "content-type": "application/octet-stream",
        "content-length": str(len(DATA)),
    }


def test_the_response_is_the_apps_response_class_in_passthrough_mode(root: Path) -> None:
    class AppResponse(Response):
        pass

    app = Flask(__name__)
    app.response_class = AppResponse
    seen: list[WerkzeugResponse] = []

    @app.get("/data")
    def data() -> WerkzeugResponse:
        response = send_file(str(root / "data.bin"))
        seen.append(response)
        return response

    assert _get(app, "/data").get_data() == DATA
    [response] = seen
    assert type(response) is AppResponse
    assert response.direct_passthrough


def test_text_files_get_a_charset(app: Flask) -> None:
    response = _get(app, "/local/notes.txt")
    assert response.get_data() == NOTES
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_head_sends_the_get_headers_without_a_body(app: Flask) -> None:
    full = _get(app, "/local/data.bin")
    head = _get(app, "/local/data.bin", method="HEAD")
    assert head.status_code == 200
    assert head.get_data() == b""
    assert _fields(head) == _fields(full)


def test_single_range_is_a_206_with_exact_bytes(app: Flask) -> None:
    response = _get(app, "/local/data.bin", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.get_data() == DATA[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert response.headers["Content-Length"] == "100"


def test_suffix_range_across_chunks(app: Flask) -> None:
    response = _get(app, "/local/data.bin", headers={"Range": f"bytes=-{len(DATA) - 5}"})
    assert response.status_code == 206
    assert response.get_data() == DATA[5:]


def test_several_ranges_are_a_multipart_206(app: Flask) -> None:
    response = _get(app, "/local/data.bin", headers={"Range": "bytes=0-9,-10"})
    assert response.status_code == 206
    body = response.get_data()
    assert response.headers["Content-Length"] == str(len(body))
    parts = parse_multipart(response.headers["Content-Type"], body)
    assert [part.body for part in parts] == [DATA[:10], DATA[-10:]]
    assert [part.headers["content-range"] for part in parts] == [
        f"bytes 0-9/{len(DATA)}",
        f"bytes {len(DATA) - 10}-{len(DATA) - 1}/{len(DATA)}",
    ]


def test_unsatisfiable_range_is_a_416(app: Flask) -> None:
    response = _get(app, "/local/data.bin", headers={"Range": f"bytes={len(DATA)}-"})
    assert response.status_code == 416
    assert response.get_data() == b""
    assert _fields(response) == {"content-length": "0", "content-range": f"bytes */{len(DATA)}"}


def test_if_none_match_is_a_304_without_a_body(app: Flask) -> None:
    etag = _get(app, "/local/data.bin").headers["ETag"]
    response = _get(app, "/local/data.bin", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.get_data() == b""
    # Werkzeug drops Last-Modified from a 304 (its entity-header rule); the rest is the core's.
    assert _fields(response) == {"etag": etag, "cache-control": "no-cache"}


def test_if_match_with_another_tag_is_a_412(app: Flask) -> None:
    response = _get(app, "/local/data.bin", headers={"If-Match": '"another"'})
    assert response.status_code == 412
    assert response.get_data() == b""
    assert _fields(response) == {"content-length": "0"}


def test_if_range_serves_the_range_only_for_the_current_tag(app: Flask) -> None:
    etag = _get(app, "/local/data.bin").headers["ETag"]
    current = _get(app, "/local/data.bin", headers={"Range": "bytes=0-3", "If-Range": etag})
    stale = _get(app, "/local/data.bin", headers={"Range": "bytes=0-3", "If-Range": '"old"'})
    assert (current.status_code, current.get_data()) == (206, DATA[:4])
    assert (stale.status_code, stale.get_data()) == (200, DATA)


# -- errors: Flask renders them ---------------------------------------------------------------


def test_a_missing_file_is_flasks_404(app: Flask) -> None:
    response = _get(app, "/local/nothing.bin")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"Not Found" in response.get_data()
    assert b"nothing.bin" not in response.get_data()


def test_a_missing_file_goes_through_the_apps_404_handler(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(error: HTTPException) -> tuple[str, int]:
        return f"custom {type(error).__name__}", 404

    response = _get(app, "/local/nothing.bin")
    assert (response.status_code, response.get_data()) == (404, b"custom NotFound")


@pytest.mark.parametrize(
    "url", ["/files/..%2Fsecret.txt", "/files/sub/..%2F..%2Fsecret.txt", "/files/%2E%2E/secret.txt"]
)
def test_send_from_directory_refuses_paths_out_of_the_root(app: Flask, url: str) -> None:
    response = _get(app, url)
    assert response.status_code == 404
    assert SECRET not in response.get_data()


def test_send_from_storage_refuses_parent_segments_before_any_io(root: Path) -> None:
    app = Flask(__name__)
    with app.test_request_context("/"), pytest.raises(NotFound):
        send_from_storage(str(root), "../secret.txt")


def test_send_from_directory_serves_nested_files_and_404s_directories(
    app: Flask, root: Path
) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_bytes(b"nested")
    assert _get(app, "/files/sub/a.txt").get_data() == b"nested"
    assert _get(app, "/files/sub").status_code == 404


class FailingBackend:
    """A backend whose every open raises the error it was made with."""

    def __init__(self, error: SendfsError) -> None:
        self.error = error

    async def open(self, source: Any, **options: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (SourceForbidden("denied"), 403, None),
        (BackendError("connection reset"), 502, None),
        (StorageBusy("every connection in use"), 503, "5"),
    ],
)
def test_storage_failures_are_werkzeug_exceptions(
    error: SendfsError, status: int, retry_after: str | None
) -> None:
    registry = StorageRegistry(entry_points=False)
    registry.register("broken", FailingBackend(error))
    app = Flask(__name__)

    @app.get("/broken")
    def broken() -> WerkzeugResponse:
        return send_file("broken://x", registry=registry)

    response = _get(app, "/broken")
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert b"broken://x" not in response.get_data()


class _BrokenResource(ResourceBase):
    """Announces 1000 bytes, yields 100, then fails like a dead disk."""

    def __init__(self) -> None:
        self._info = FileInfo(size=1000, name="broken.bin", etag="broken-v1")

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        yield b"x" * 100
        raise BackendError("the storage failed after the first chunk")


class _BrokenBackend:
    async def open(self, source: Any, **options: Any) -> _BrokenResource:
        return _BrokenResource()


def test_a_failure_after_the_first_byte_is_raised_to_the_server(
    events: list[DownloadEvent],
) -> None:
    registry = StorageRegistry(entry_points=False)
    registry.register("broken", _BrokenBackend())
    app = Flask(__name__)

    @app.get("/broken")
    def broken() -> WerkzeugResponse:
        return send_file("broken://x", registry=registry, on_complete=events.append)

    response = app.test_client().get("/broken")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "1000"
    with pytest.raises(BackendError):
        response.get_data()
    response.close()
    [event] = events
    assert (event.status, event.bytes_sent, event.aborted, event.error) == (
        200,
        100,
        True,
        "BackendError",
    )


# -- other sources ----------------------------------------------------------------------------


def test_bytesio_with_a_download_name_supports_ranges() -> None:
    app = Flask(__name__)

    @app.get("/bytes")
    def in_memory() -> WerkzeugResponse:
        return send_file(io.BytesIO(DATA), download_name="report.csv", as_attachment=True)

    full = _get(app, "/bytes")
    part = _get(app, "/bytes", headers={"Range": "bytes=10-19"})
    assert full.get_data() == DATA
    assert full.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert full.headers["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert (part.status_code, part.get_data()) == (206, DATA[10:20])


def test_memory_url_full_and_range() -> None:
    url = f"memory://sendfs-flask-{secrets.token_hex(4)}/notes.txt"
    fsspec.filesystem("memory").pipe_file(url, NOTES)
    app = Flask(__name__)

    @app.get("/memory")
    def memory() -> WerkzeugResponse:
        return send_file(url)

    try:
        full = _get(app, "/memory")
        part = _get(app, "/memory", headers={"Range": "bytes=0-4"})
    finally:
        fsspec.filesystem("memory").rm(url)
    assert (full.status_code, full.get_data()) == (200, NOTES)
    assert full.headers["Content-Length"] == str(len(NOTES))
    assert (part.status_code, part.get_data()) == (206, NOTES[:5])


def test_async_iterable_with_a_size_streams_with_a_content_length() -> None:
    async def rows() -> AsyncIterator[bytes]:
        for index in range(1000):
            yield f"{index}\n".encode()

    expected = b"".join(f"{index}\n".encode() for index in range(1000))
    app = Flask(__name__)

    @app.get("/export")
    def export() -> WerkzeugResponse:
        return send_file(rows(), download_name="rows.txt", size=len(expected))

    response = _get(app, "/export")
    assert response.get_data() == expected
    assert response.headers["Content-Length"] == str(len(expected))


def test_send_zip_streams_an_archive(root: Path) -> None:
    import zipfile

    app = Flask(__name__, root_path=str(root))

    @app.get("/export.zip")
    def export() -> WerkzeugResponse:
        return send_zip([("data.bin", "data.bin"), ("notes.txt", io.BytesIO(NOTES))])

    response = _get(app, "/export.zip")
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="export.zip"'
    assert response.headers["Content-Length"] == str(len(response.get_data()))
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        assert archive.read("data.bin") == DATA
        assert archive.read("notes.txt") == NOTES


@dataclass
class ObservedS3:
    """A registry whose S3 client records every operation it sends."""

    registry: StorageRegistry
    url: str
    operations: list[str]


@pytest.fixture
def observed_s3(s3_client: Any, bucket: str) -> Iterator[ObservedS3]:
    s3_client.put_object(Bucket=bucket, Key="dir/data.bin", Body=DATA)
    registry = StorageRegistry()
    url = f"s3://{bucket}/dir/data.bin"
    warm: Any = blocking.call(registry.open, url)  # the s3fs client, on the portal's loop
    blocking.call(warm.aclose)
    operations: list[str] = []

    def before_send(event_name: str, **_: Any) -> None:
        operations.append(event_name.rsplit(".", 1)[-1])

    warm._fs._s3.meta.events.register("before-send.s3", before_send)
    try:
        yield ObservedS3(registry, url, operations)
    finally:
        blocking.call(registry.aclose)


@pytest.mark.s3
def test_s3_object_full_is_one_get_object_and_exact_bytes(observed_s3: ObservedS3) -> None:
    app = Flask(__name__)

    @app.get("/s3")
    def s3() -> WerkzeugResponse:
        return send_file(observed_s3.url, registry=observed_s3.registry, chunk_size=64 * 1024)

    full = _get(app, "/s3")
    assert observed_s3.operations == ["GetObject"]
    observed_s3.operations.clear()
    part = _get(app, "/s3", headers={"Range": "bytes=1000-1999"})
    assert observed_s3.operations == ["GetObject"]
    assert (full.status_code, full.get_data()) == (200, DATA)
    assert full.headers["Content-Length"] == str(len(DATA))
    assert full.headers["ETag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    assert (part.status_code, part.get_data()) == (206, DATA[1000:2000])


@pytest.mark.s3
def test_s3_redirect_is_a_307_to_a_presigned_url(observed_s3: ObservedS3) -> None:
    app = Flask(__name__)

    @app.get("/s3")
    def s3() -> WerkzeugResponse:
        return send_file(
            observed_s3.url, registry=observed_s3.registry, redirect=True, as_attachment=True
        )

    response = _get(app, "/s3")
    assert response.status_code == 307
    assert response.headers["Cache-Control"] == "no-store"
    followed = httpx.get(response.headers["Location"], trust_env=False)
    assert followed.content == DATA
    assert followed.headers["content-disposition"] == 'attachment; filename="data.bin"'


# -- max_age, relative paths, hooks, CORS -----------------------------------------------------


def test_callable_max_age_gets_the_absolute_path(root: Path) -> None:
    seen: list[str | None] = []

    def max_age(path: str | None) -> int:
        seen.append(path)
        return 120

    app = Flask(__name__, root_path=str(root))

    @app.get("/relative")
    def relative() -> WerkzeugResponse:
        return send_file("notes.txt", max_age=max_age)

    @app.get("/bytes")
    def in_memory() -> WerkzeugResponse:
        return send_file(io.BytesIO(NOTES), max_age=max_age)

    @app.get("/files/<path:path>")
    def files(path: str) -> WerkzeugResponse:
        return send_from_directory(str(root), path, max_age=max_age)

    response = _get(app, "/relative")
    assert response.headers["Cache-Control"] == "public, max-age=120"
    assert _get(app, "/bytes").headers["Cache-Control"] == "public, max-age=120"
    assert _get(app, "/files/data.bin").headers["Cache-Control"] == "public, max-age=120"
    assert seen == [str(root / "notes.txt"), None, str(root / "data.bin")]


def test_max_age_none_defers_to_the_apps_get_send_file_max_age(root: Path) -> None:
    seen: list[str | None] = []

    class App(Flask):
        def get_send_file_max_age(self, filename: str | None) -> int | None:
            seen.append(filename)
            return super().get_send_file_max_age(filename)

    app = App(__name__, root_path=str(root))
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 60

    @app.get("/notes")
    def notes() -> WerkzeugResponse:
        return send_file("notes.txt")

    @app.get("/fixed")
    def fixed() -> WerkzeugResponse:
        return send_file("notes.txt", max_age=5)

    assert _get(app, "/notes").headers["Cache-Control"] == "public, max-age=60"
    assert _get(app, "/fixed").headers["Cache-Control"] == "public, max-age=5"
    assert seen == [str(root / "notes.txt")]


def test_relative_paths_are_relative_to_the_app_root_path(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the root path: the working directory does not count
    assert _get(app, "/relative/data.bin").get_data() == DATA


def test_send_from_directory_takes_a_directory_relative_to_the_root_path(root: Path) -> None:
    app = Flask(__name__, root_path=str(root.parent))

    @app.get("/files/<path:path>")
    def files(path: str) -> WerkzeugResponse:
        return send_from_directory("files", path)

    assert _get(app, "/files/notes.txt").get_data() == NOTES
    assert _get(app, "/files/..%2Fsecret.txt").status_code == 404


def test_after_request_headers_go_out_on_every_answer(app: Flask) -> None:
    @app.after_request
    def stamp(response: WerkzeugResponse) -> WerkzeugResponse:
        response.headers["X-Served-By"] = "flask"
        response.set_cookie("seen", "1")
        return response

    etag = _get(app, "/local/data.bin").headers["ETag"]
    for method, headers in [
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"Range": "bytes=0-0"}),
        ("GET", {"If-None-Match": etag}),
    ]:
        response = _get(app, "/local/data.bin", method=method, headers=headers)
        assert response.headers["X-Served-By"] == "flask", (method, headers)
        assert response.headers["Set-Cookie"].startswith("seen=1"), (method, headers)


def test_flask_cors_headers_go_out(app: Flask) -> None:
    CORS(app, expose_headers=["Content-Range"])
    response = _get(
        app, "/local/data.bin", headers={"Origin": "https://example.com", "Range": "bytes=0-9"}
    )
    assert (response.status_code, response.get_data()) == (206, DATA[:10])
    assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert response.headers["Access-Control-Expose-Headers"] == "Content-Range"


def test_caller_headers_override_computed_ones(root: Path) -> None:
    app = Flask(__name__)

    @app.get("/data")
    def data() -> WerkzeugResponse:
        headers = {"Cache-Control": "private, max-age=10", "X-Report": "q3"}
        return send_file(str(root / "data.bin"), headers=headers)

    response = _get(app, "/data")
    assert response.headers["Cache-Control"] == "private, max-age=10"
    assert response.headers["X-Report"] == "q3"
    assert response.headers["Content-Length"] == str(len(DATA))


# -- a plain Werkzeug app ---------------------------------------------------------------------


def test_plain_werkzeug_app_with_environ(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)  # relative paths are relative to the working directory

    @Request.application
    def wsgi_app(request: Request) -> WerkzeugResponse:
        return send_file("data.bin", environ=request.environ)

    client = Client(wsgi_app)
    with client.get("/", headers={"Range": "bytes=5-9"}) as part:
        assert (part.status_code, part.get_data()) == (206, DATA[5:10])
    with client.get("/") as full:
        assert full.get_data() == DATA
        assert full.headers["Cache-Control"] == "no-cache"
    with client.head("/") as head:
        assert head.get_data() == b""
        assert head.headers["Content-Length"] == str(len(DATA))


def test_plain_werkzeug_app_renders_a_missing_file_as_its_404(root: Path) -> None:
    @Request.application
    def wsgi_app(request: Request) -> WerkzeugResponse:
        try:
            return send_file(str(root / "nothing"), environ=request.environ)
        except HTTPException as exc:
            return exc.get_response(request.environ)

    with Client(wsgi_app).get("/") as response:
        assert response.status_code == 404


def test_outside_a_request_without_environ_is_an_error(root: Path) -> None:
    with pytest.raises(RuntimeError, match="environ="):
        send_file(str(root / "data.bin"))


# -- wsgi.file_wrapper, events, closing -------------------------------------------------------


def test_a_full_local_file_goes_through_the_servers_file_wrapper(
    app: Flask, events: list[DownloadEvent]
) -> None:
    wrapped: list[Any] = []

    def file_wrapper(file: Any, block_size: int = 8192) -> FileWrapper:
        wrapped.append(file)
        return FileWrapper(file, block_size)

    overrides = {"wsgi.file_wrapper": file_wrapper}
    full = _get(app, "/local/data.bin", environ_overrides=overrides)
    part = _get(app, "/local/data.bin", headers={"Range": "bytes=0-9"}, environ_overrides=overrides)
    assert full.get_data() == DATA
    assert full.headers["Content-Length"] == str(len(DATA))
    assert part.get_data() == DATA[:10]
    [file] = wrapped  # the range streamed
    assert isinstance(file, blocking.LocalFile)
    assert file.closed
    assert [(e.status, e.bytes_sent, e.aborted) for e in events] == [
        (200, len(DATA), False),
        (206, 10, False),
    ]


def test_events_fire_once_per_response_with_bytes_sent(
    app: Flask, events: list[DownloadEvent]
) -> None:
    etag = _get(app, "/local/data.bin").headers["ETag"]
    _get(app, "/local/data.bin", method="HEAD")
    _get(app, "/local/data.bin", headers={"Range": "bytes=0-9,20-29"})
    _get(app, "/local/data.bin", headers={"If-None-Match": etag})
    _get(app, "/local/nothing.bin")
    summary = [(e.method, e.status, e.bytes_sent, e.aborted, e.error) for e in events]
    multipart = _get(app, "/files/data.bin", headers={"Range": "bytes=0-9,20-29"})
    multipart_length = int(multipart.headers["Content-Length"])
    assert summary == [
        ("GET", 200, len(DATA), False, None),
        ("HEAD", 200, 0, False, None),
        ("GET", 206, multipart_length, False, None),
        ("GET", 304, 0, False, None),
        ("GET", 404, 0, False, "SourceNotFound"),
    ]
    assert events[2].ranges == ((0, 10), (20, 30))


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_descriptor_leaks_after_50_requests(app: Flask) -> None:
    overrides = {"wsgi.file_wrapper": FileWrapper}
    etag = _get(app, "/local/data.bin").headers["ETag"]  # starts the portal, warms imports
    _get(app, "/local/data.bin", environ_overrides=overrides)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/local/data.bin", {}),
        ("GET", "/local/data.bin", {"environ_overrides": overrides}),
        ("HEAD", "/local/data.bin", {}),
        ("GET", "/local/data.bin", {"headers": {"Range": "bytes=0-9,-5"}}),
        ("GET", "/local/data.bin", {"headers": {"If-None-Match": etag}}),
        ("GET", "/local/data.bin", {"headers": {"Range": "bytes=999999999-"}}),
        ("GET", "/local/nothing.bin", {}),
        ("GET", "/files/notes.txt", {}),
        ("GET", "/files/..%2Fsecret.txt", {}),
        ("GET", "/relative/data.bin", {"headers": {"Range": "bytes=5-"}}),
    ]
    before = _open_descriptors()
    for index in range(50):
        method, url, kwargs = requests[index % len(requests)]
        _get(app, url, method=method, **kwargs)
    assert _open_descriptors() == before


# -- storage_blueprint: a whole root, as Flask's static folder -------------------------------


def _site(root: str | Path, **options: Any) -> Flask:
    """An app with ``root`` served at ``/site`` by a storage blueprint built with ``options``."""
    app = Flask(__name__)
    app.register_blueprint(storage_blueprint("site", root, url_prefix="/site", **options))
    return app


@pytest.fixture
def site_root(root: Path) -> Path:
    """``root`` plus ``sub/`` with an ``index.html`` and ``bare/`` without one."""
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<p>sub index</p>")
    (root / "bare").mkdir()
    (root / "bare" / "a.txt").write_bytes(b"a")
    return root


def test_blueprint_serves_a_range_of_a_file_with_exact_bytes(root: Path) -> None:
    app = _site(root)
    response = _get(app, "/site/data.bin", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.get_data() == DATA[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    full = _get(app, "/site/notes.txt")
    assert (full.status_code, full.get_data()) == (200, NOTES)
    assert full.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_blueprint_answers_304_for_the_current_tag_and_applies_file_options(root: Path) -> None:
    app = _site(root, max_age=60, as_attachment=True)
    first = _get(app, "/site/notes.txt")
    assert first.headers["Cache-Control"] == "public, max-age=60"
    assert first.headers["Content-Disposition"] == 'attachment; filename="notes.txt"'
    again = _get(app, "/site/notes.txt", headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status_code, again.get_data()) == (304, b"")
    assert again.headers["ETag"] == first.headers["ETag"]


def test_blueprint_listing_escapes_names_and_links(site_root: Path) -> None:
    (site_root / '<b>&"x.txt').write_bytes(b"12345")
    app = _site(site_root, listing=True)
    response = _get(app, "/site/")
    assert response.status_code == 200
    assert _fields(response) == {
        "content-type": "text/html; charset=utf-8",
        "content-length": str(len(response.get_data())),
        "cache-control": "no-cache",
    }
    page = response.get_data(as_text=True)
    assert "<title>Index of /site/</title>" in page
    assert '<a href="%3Cb%3E%26%22x.txt">&lt;b&gt;&amp;&quot;x.txt</a></td><td>5 B</td>' in page
    assert '<a href="sub/">sub/</a>' in page
    assert "<b>" not in page
    head = _get(app, "/site/", method="HEAD")
    assert (head.status_code, head.get_data()) == (200, b"")
    assert head.headers["Content-Length"] == response.headers["Content-Length"]


def test_blueprint_lists_nested_directories_and_404s_missing_ones(site_root: Path) -> None:
    app = _site(site_root, listing=True)
    page = _get(app, "/site/bare/").get_data(as_text=True)
    assert "<title>Index of /site/bare/</title>" in page
    assert '<a href="a.txt">a.txt</a>' in page
    assert _get(app, "/site/missing/").status_code == 404
    assert _get(app, "/site/notes.txt/").status_code == 404


def test_blueprint_serves_index_html_for_directories(site_root: Path) -> None:
    (site_root / "index.html").write_bytes(b"<p>top index</p>")
    app = _site(site_root, html=True)
    top = _get(app, "/site/")
    assert (top.status_code, top.get_data()) == (200, b"<p>top index</p>")
    assert top.headers["Content-Type"] == "text/html; charset=utf-8"
    assert _get(app, "/site/sub/").get_data() == b"<p>sub index</p>"
    assert _get(app, "/site/bare/").status_code == 404  # no index.html, no listing


def test_blueprint_lists_a_directory_without_index_html_when_both_are_on(
    site_root: Path,
) -> None:
    app = _site(site_root, html=True, listing=True)
    assert _get(app, "/site/sub/").get_data() == b"<p>sub index</p>"
    assert '<a href="a.txt">a.txt</a>' in _get(app, "/site/bare/").get_data(as_text=True)


@pytest.mark.parametrize("options", [{"html": True}, {"listing": True}])
def test_blueprint_redirects_a_directory_to_its_slash_with_a_307(
    site_root: Path, options: dict[str, bool]
) -> None:
    app = _site(site_root, **options)
    response = _get(app, "/site/sub?page=2")
    assert response.status_code == 307
    assert response.headers["Location"] == "/site/sub/?page=2"
    assert _get(app, "/site/sub", method="HEAD").status_code == 307


def test_blueprint_without_html_or_listing_404s_directories(site_root: Path) -> None:
    app = _site(site_root)
    for url in ("/site/", "/site/sub", "/site/sub/", "/site/bare/"):
        assert _get(app, url).status_code == 404, url


@pytest.mark.parametrize(
    "url",
    [
        "/site/..%2Fsecret.txt",
        "/site/%2E%2E/secret.txt",
        "/site/sub/..%2F..%2Fsecret.txt",
        "/site/..%5Csecret.txt",
        "/site/..%2F",
        "/site/sub/%2E%2E/%2E%2E/",
        "/site/..%2Ffiles",
    ],
)
def test_blueprint_refuses_paths_out_of_the_root(site_root: Path, url: str) -> None:
    app = _site(site_root, html=True, listing=True)
    response = _get(app, url)
    assert response.status_code == 404
    assert SECRET not in response.get_data()
    assert b"secret.txt" not in response.get_data()


def test_blueprint_answers_other_methods_with_405(root: Path) -> None:
    response = _get(_site(root), "/site/notes.txt", method="POST")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_blueprint_over_a_memory_root_serves_ranges_listings_and_redirects() -> None:
    base = f"memory://sendfs-flask-{secrets.token_hex(4)}"
    memory = fsspec.filesystem("memory")
    memory.pipe_file(f"{base}/notes.txt", NOTES)
    memory.pipe_file(f"{base}/docs/a.txt", b"a")
    app = _site(base, listing=True)
    try:
        part = _get(app, "/site/notes.txt", headers={"Range": "bytes=0-4"})
        top = _get(app, "/site/").get_data(as_text=True)
        moved = _get(app, "/site/docs")
        docs = _get(app, "/site/docs/").get_data(as_text=True)
        outside = _get(app, "/site/..%2Fnotes.txt")
    finally:
        memory.rm(base, recursive=True)
    assert (part.status_code, part.get_data()) == (206, NOTES[:5])
    assert '<a href="notes.txt">notes.txt</a>' in top
    assert '<a href="docs/">docs/</a>' in top
    assert (moved.status_code, moved.headers["Location"]) == (307, "/site/docs/")
    assert '<a href="a.txt">a.txt</a>' in docs
    assert outside.status_code == 404


def test_blueprint_resolves_a_relative_root_against_the_app_root_path(root: Path) -> None:
    app = Flask(__name__, root_path=str(root.parent))
    app.register_blueprint(storage_blueprint("files", "files", url_prefix="/files"))
    assert _get(app, "/files/notes.txt").get_data() == NOTES
    with app.test_request_context():
        assert url_for("files.serve", path="sub/a b.txt") == "/files/sub/a%20b.txt"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"download_name": "x.txt"}, TypeError),
        ({"environ": {}}, TypeError),
        ({"etag": "fixed"}, TypeError),
        ({"chunk_size": 0}, ValueError),
        ({"max_age": -1}, ValueError),
        ({"expires": 0}, ValueError),
        ({"storage_timeout": 0}, ValueError),
        ({"redirect": "sometimes"}, ValueError),
        ({"headers": {"X-Bad": "a\r\nSet-Cookie: x=1"}}, ValueError),
        ({"redirect": "required"}, RedirectUnavailable),
    ],
)
def test_blueprint_refuses_bad_options_when_it_is_built(
    root: Path, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        storage_blueprint("site", root, **options)


def test_blueprint_refuses_an_unknown_scheme_when_it_is_built() -> None:
    with pytest.raises(UnknownScheme):
        storage_blueprint("site", "nosuchscheme://bucket/prefix")


# -- the documentation's example --------------------------------------------------------------


def test_the_docs_example_runs(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = (PROJECT_ROOT / "docs" / "flask.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert blocks
    namespace: dict[str, Any] = {"__name__": "flask_docs_example"}
    exec(compile(blocks[0], "docs/flask.md", "exec"), namespace)
    app: Flask = namespace["app"]
    app.root_path = str(root.parent)
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(root))
    response = _get(app, "/uploads/notes.txt")
    assert (response.status_code, response.get_data()) == (200, NOTES)
    assert response.headers["Content-Disposition"] == 'attachment; filename="notes.txt"'
    assert _get(app, "/uploads/..%2Fsecret.txt").status_code == 404


def test_the_docs_blueprint_example_runs(root: Path) -> None:
    page = (PROJECT_ROOT / "docs" / "flask.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    (example,) = [block for block in blocks if "storage_blueprint(" in block]
    namespace: dict[str, Any] = {"__name__": "flask_docs_blueprint_example"}
    exec(compile(example, "docs/flask.md", "exec"), namespace)
    app: Flask = namespace["app"]
    app.root_path = str(root.parent)
    guide = root.parent / "public" / "guide"
    guide.mkdir(parents=True)
    (guide / "index.html").write_bytes(b"<h1>Guide</h1>")
    assert _get(app, "/").get_data() == b'<a href="/public/guide/">Guide</a>'
    moved = _get(app, "/public/guide")
    assert (moved.status_code, moved.headers["Location"]) == (307, "/public/guide/")
    page_response = _get(app, "/public/guide/")
    assert (page_response.status_code, page_response.get_data()) == (200, b"<h1>Guide</h1>")
    assert page_response.headers["Cache-Control"] == "public, max-age=86400"
    assert _get(app, "/public/..%2Ffiles/notes.txt").status_code == 404


# -- real servers: gunicorn and waitress ------------------------------------------------------

BIG = secrets.token_bytes(3 * 1024 * 1024)
MEDIUM = secrets.token_bytes(8 * 1024 * 1024)
STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 5.0
SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "-k", "sync", "-w", "1"],
    "gunicorn-gthread": ["-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "24"],
    "waitress": ["-m", "waitress", "--threads=24"],
}


@dataclass(frozen=True)
class FacesData:
    root: Path
    bucket: str


@dataclass
class Server:
    """A running WSGI server; ``stop()`` sends SIGTERM by PID, then SIGKILL."""

    name: str
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_DEADLINE)

    def worker_pid(self) -> int:
        """The process that runs the app: gunicorn's one worker, or waitress itself."""
        if not self.name.startswith("gunicorn"):
            return self.process.pid
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])


@pytest.fixture(scope="module")
def faces_data(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> FacesData:
    import boto3

    root = tmp_path_factory.mktemp("flask-faces")
    (root / "big.bin").write_bytes(BIG)
    (root / "notes.txt").write_bytes(NOTES)
    bucket = f"sendfs-flask-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="dir/big.bin", Body=BIG)
    client.put_object(Bucket=bucket, Key="dir/medium.bin", Body=MEDIUM)
    return FacesData(root, bucket)


def _no_control_socket() -> list[str]:
    """gunicorn 25+ opens a control socket at one shared path (~/.gunicorn): not for tests."""
    config = importlib.import_module("gunicorn.config")  # untyped: no stubs
    names = {setting.name for setting in config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def _spawn(name: str, data: FacesData, log: Path, token: str) -> Server:
    port = free_port()
    if name == "waitress":
        where = ["--host=127.0.0.1", f"--port={port}", "--call"]
        target = "tests.faces.apps.flask_app:create_app"
    else:
        where = ["-b", f"127.0.0.1:{port}", "--timeout", "60", "--graceful-timeout", "3"]
        where += _no_control_socket()
        target = "tests.faces.apps.flask_app:create_app()"
    env = {
        **os.environ,  # AWS_ENDPOINT_URL and the fake credentials of the moto fixture
        "SENDFS_FACES_ROOT": str(data.root),
        "SENDFS_FACES_BUCKET": data.bucket,
        "SENDFS_FACES_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, *SERVERS[name], *where, target],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Server(name, f"http://127.0.0.1:{port}", log, process)


def _ready(server: Server, token: str) -> bool:
    deadline = time.monotonic() + STARTUP_DEADLINE
    with httpx.Client(base_url=server.url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if client.get("/ping").text == token:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    server.stop()
    pytest.fail(f"{server.name} did not answer in {STARTUP_DEADLINE} s:\n{server.log.read_text()}")


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(
    request: pytest.FixtureRequest, faces_data: FacesData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name = str(request.param)
    token = secrets.token_hex(8)
    log = tmp_path_factory.mktemp(f"flask-{name}") / "server.log"
    for _ in range(3):  # a port taken between free_port() and the bind: try another
        running = _spawn(name, faces_data, log, token)
        if _ready(running, token):
            break
    else:
        pytest.fail(f"{name} did not start:\n{log.read_text()}")
    try:
        yield running
    finally:
        running.stop()


def _curl(url: str, *headers: str) -> tuple[str, dict[str, str], bytes]:
    """GET with curl: the status line, the header fields (lower-case names) and the body."""
    command = ["curl", "--silent", "--show-error", "--noproxy", "*", "--dump-header", "-"]
    for header in headers:
        command += ["--header", header]
    result = subprocess.run([*command, url], capture_output=True, check=True, timeout=60)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, body


def _written_bytes(pid: int) -> int:
    """Bytes the process wrote through the VFS (``sendfile`` counts; ``send`` does not)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/<pid>/io")


@pytest.mark.e2e
@pytest.mark.s3
def test_real_server_sends_a_local_file_whole_and_by_range(server: Server) -> None:
    pid = server.worker_pid()
    written = _written_bytes(pid)
    status, fields, body = _curl(f"{server.url}/local/big.bin")
    sent_by_file = _written_bytes(pid) - written
    assert status.split()[1] == "200"
    assert body == BIG
    assert fields["content-length"] == str(len(BIG))
    assert fields["accept-ranges"] == "bytes"
    written = _written_bytes(pid)
    status, fields, body = _curl(f"{server.url}/local/big.bin", "Range: bytes=1000-1999")
    sent_by_range = _written_bytes(pid) - written
    assert status.split()[1] == "206"
    assert body == BIG[1000:2000]
    assert fields["content-range"] == f"bytes 1000-1999/{len(BIG)}"
    if server.name.startswith("gunicorn"):
        # gunicorn sent the file with sendfile(2) (counted as written through the VFS);
        # the range went through socket sends (not counted).
        assert sent_by_file >= len(BIG)
        assert sent_by_range < len(BIG)


@pytest.mark.e2e
@pytest.mark.s3
def test_real_server_answers_every_route(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        s3_full = client.get("/s3/dir/big.bin")
        s3_part = client.get("/s3/dir/big.bin", headers={"Range": "bytes=-100"})
        etag = client.get("/local/notes.txt").headers["etag"]
        not_modified = client.get("/local/notes.txt", headers={"If-None-Match": etag})
        head = client.head("/local/big.bin")
        files = client.get("/files/notes.txt")
        escape = client.get("/files/..%2Fbig.bin")
        in_memory = client.get("/bytes/notes.txt", headers={"Range": "bytes=0-4"})
        memory = client.get("/memory/big.bin")
        attachment = client.head("/attachment/notes.txt")
        missing = client.get("/missing")
    assert (s3_full.status_code, s3_full.content) == (200, BIG)
    assert s3_full.headers["content-length"] == str(len(BIG))
    assert (s3_part.status_code, s3_part.content) == (206, BIG[-100:])
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["etag"] == etag
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(BIG))
    assert (files.status_code, files.content) == (200, NOTES)
    assert escape.status_code == 404
    assert (in_memory.status_code, in_memory.content) == (206, NOTES[:5])
    assert (memory.status_code, memory.content) == (200, BIG)
    assert attachment.headers["content-disposition"] == (
        "attachment; filename=\"resume notes.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20notes.txt"
    )
    assert missing.status_code == 404


@pytest.mark.e2e
@pytest.mark.s3
def test_real_server_serves_20_concurrent_s3_downloads(server: Server) -> None:
    expected = hashlib.sha256(MEDIUM).hexdigest()

    def download(_: int) -> tuple[int, str]:
        digest = hashlib.sha256()
        with (
            httpx.Client(base_url=server.url, timeout=120, trust_env=False) as client,
            client.stream("GET", "/s3/dir/medium.bin") as response,
        ):
            for chunk in response.iter_bytes():
                digest.update(chunk)
        return response.status_code, digest.hexdigest()

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(download, range(20)))
    assert results == [(200, expected)] * 20
    assert server.process.poll() is None


def test_use_x_sendfile_is_a_default_for_plain_local_answers_only(tmp_path: Path) -> None:
    from sendfs import XAccelRedirect
    from sendfs.flask import send_file as flask_send_file

    (tmp_path / "a.txt").write_bytes(b"hello")
    registry = StorageRegistry()
    registry.mount("media", str(tmp_path), offload=XAccelRedirect("/_media/"))
    flask_app = Flask(__name__)
    flask_app.config["USE_X_SENDFILE"] = True
    views = {
        "plain": lambda: flask_send_file(tmp_path / "a.txt", registry=registry),
        "etag": lambda: flask_send_file(tmp_path / "a.txt", etag="v1", registry=registry),
        "fixed": lambda: flask_send_file(tmp_path / "a.txt", conditional=False, registry=registry),
        "bytes": lambda: flask_send_file(io.BytesIO(b"hello"), registry=registry),
        "mount": lambda: flask_send_file("media://a.txt", registry=registry),
    }
    for name, view in views.items():
        flask_app.add_url_rule(f"/{name}", name, view)
    client = flask_app.test_client()
    plain = client.get("/plain")
    assert plain.headers["X-Sendfile"] == str(tmp_path / "a.txt")
    assert plain.get_data() == b""
    for name in ("etag", "fixed", "bytes"):  # Flask's send_file answers these: so do we
        answer = client.get(f"/{name}")
        assert answer.status_code == 200
        assert answer.get_data() == b"hello"
        assert "X-Sendfile" not in answer.headers
    mounted = client.get("/mount")  # the mount's own offload wins
    assert mounted.headers["X-Accel-Redirect"] == "/_media/a.txt"
    assert "X-Sendfile" not in mounted.headers
