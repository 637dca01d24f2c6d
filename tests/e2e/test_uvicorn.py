"""End to end: ``tests.e2e.app`` under a real uvicorn server, with curl and httpx over TCP.

What in-process tests cannot show: the bytes and headers a real HTTP/1.1 server puts on the
wire, real clients' range, resume and file-name handling, connection reuse after bodiless
responses, and an abort after the first byte reaching the client as an incomplete body.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.e2e.app import (
    ATTACHMENT_NAME,
    BIG_NAME,
    BROKEN_CHUNK,
    BROKEN_SIZE,
    BYTES_CONTENT,
    EXPORT_ROWS,
    LARGE_NAME,
    SESSIONS_CLOSED,
    TEXT_NAME,
)
from tests.e2e.conftest import BIG_SIZE, S3_KEY, E2EData, Payload, UvicornServer
from tests.helpers import parse_multipart

pytestmark = [pytest.mark.e2e]

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")
CURL_TIMEOUT = 15
MIB = 1024 * 1024

#: The big file under each route that serves it, by test id.
BIG_ROUTES = {
    "local": f"/local/{BIG_NAME}",
    "s3": f"/s3/{S3_KEY}",
    "starlette": f"/starlette/local/{BIG_NAME}",
}
big_route = pytest.mark.parametrize("route", list(BIG_ROUTES.values()), ids=list(BIG_ROUTES))
local_and_s3 = pytest.mark.parametrize(
    "route", [BIG_ROUTES["local"], BIG_ROUTES["s3"]], ids=["local", "s3"]
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- curl ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurlResult:
    """One curl run: exit code, the last response's status and headers, what it wrote."""

    returncode: int
    status: int | None
    headers: dict[str, str]
    raw_headers: bytes
    stdout: str
    stderr: str


def _last_header_block(raw: bytes) -> tuple[int | None, dict[str, str]]:
    blocks = [block for block in raw.split(b"\r\n\r\n") if block.strip()]
    if not blocks:
        return None, {}
    status_line, *lines = blocks[-1].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def curl(url: str, *options: str, workdir: Path, output: Path | None = None) -> CurlResult:
    """Run ``curl -sS --fail-with-body -D <headers> [-o output] <options> <url>`` in ``workdir``.

    The headers file holds every response curl saw (one block each); ``headers`` is the last.
    """
    assert CURL is not None
    headers_file = workdir / f"headers-{secrets.token_hex(4)}"
    command = [CURL, "-sS", "--fail-with-body", "--noproxy", "*", "--max-time", str(CURL_TIMEOUT)]
    command += ["-D", str(headers_file)]
    if output is not None:
        command += ["-o", str(output)]
    command += [*options, url]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, timeout=CURL_TIMEOUT + 5, check=False
    )
    raw = headers_file.read_bytes() if headers_file.exists() else b""
    status, headers = _last_header_block(raw)
    return CurlResult(
        returncode=done.returncode,
        status=status,
        headers=headers,
        raw_headers=raw,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=done.stderr.decode("utf-8", "replace"),
    )


def read_or_empty(path: Path) -> bytes:
    """What curl wrote; curl creates no file for an empty body."""
    return path.read_bytes() if path.exists() else b""


@needs_curl
@big_route
def test_curl_full_download_is_byte_exact(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path, route: str
) -> None:
    out = tmp_path / "download"
    result = curl(uvicorn_server.url + route, workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    assert result.status == 200
    assert result.headers["content-length"] == str(BIG_SIZE)
    assert result.headers["accept-ranges"] == "bytes"
    assert result.headers["etag"].startswith('"')
    assert sha256(out.read_bytes()) == e2e_data.big_sha256


@needs_curl
def test_curl_downloads_a_bytesio_without_validators(
    uvicorn_server: UvicornServer, tmp_path: Path
) -> None:
    out = tmp_path / "download"
    result = curl(uvicorn_server.url + "/bytes", workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    assert result.status == 200
    assert result.headers["content-length"] == str(len(BYTES_CONTENT))
    assert "etag" not in result.headers
    assert out.read_bytes() == BYTES_CONTENT


@needs_curl
@big_route
def test_curl_range_is_206_with_the_exact_slice(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path, route: str
) -> None:
    out = tmp_path / "slice"
    result = curl(uvicorn_server.url + route, "-r", "100-199", workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    assert result.status == 206
    assert result.headers["content-range"] == f"bytes 100-199/{BIG_SIZE}"
    assert result.headers["content-length"] == "100"
    assert out.read_bytes() == e2e_data.big[100:200]


@needs_curl
@local_and_s3
def test_curl_resume_completes_a_partial_download(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path, route: str
) -> None:
    out = tmp_path / "partial"
    out.write_bytes(e2e_data.big[:MIB])
    result = curl(uvicorn_server.url + route, "-C", "-", workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    assert result.status == 206
    assert result.headers["content-range"] == f"bytes {MIB}-{BIG_SIZE - 1}/{BIG_SIZE}"
    assert result.headers["content-length"] == str(BIG_SIZE - MIB)
    assert sha256(out.read_bytes()) == e2e_data.big_sha256


@needs_curl
@local_and_s3
def test_curl_multi_range_is_multipart_byteranges_with_exact_length(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path, route: str
) -> None:
    out = tmp_path / "multipart"
    result = curl(uvicorn_server.url + route, "-r", "0-9,100-109", workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    assert result.status == 206
    body = out.read_bytes()
    assert result.headers["content-length"] == str(len(body))
    assert "content-range" not in result.headers
    parts = parse_multipart(result.headers["content-type"], body)
    assert [part.body for part in parts] == [e2e_data.big[0:10], e2e_data.big[100:110]]
    assert [part.headers["content-range"] for part in parts] == [
        f"bytes 0-9/{BIG_SIZE}",
        f"bytes 100-109/{BIG_SIZE}",
    ]
    assert {part.headers["content-type"] for part in parts} == {"application/octet-stream"}


@needs_curl
@local_and_s3
def test_curl_head_has_the_get_headers_no_body_and_keeps_the_connection(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path, route: str
) -> None:
    # One curl run, two transfers (--next): HEAD, then GET on the same connection if the HEAD
    # response was framed correctly. -w prints new connections and body bytes per transfer.
    url = uvicorn_server.url + route
    get_headers, out = tmp_path / "get-headers", tmp_path / "body"
    stats = "%{num_connects} %{size_download}\\n"
    result = curl(  # the helper's -D applies to the HEAD transfer, the URL to the GET one
        url,
        *("-I", "-o", str(tmp_path / "head-output"), "-w", stats, url),
        "--next",
        *("-sS", "--fail-with-body", "--noproxy", "*", "--max-time", str(CURL_TIMEOUT)),
        *("-D", str(get_headers), "-o", str(out), "-w", stats),
        workdir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.status == 200
    (head_connects, head_bytes), (get_connects, _) = (
        line.split() for line in result.stdout.splitlines()
    )
    assert (head_connects, head_bytes) == ("1", "0")
    assert get_connects == "0", "the GET needed a new connection: the HEAD broke keep-alive"
    get_status, get = _last_header_block(get_headers.read_bytes())
    assert get_status == 200
    assert sha256(out.read_bytes()) == e2e_data.big_sha256
    for name in ("content-length", "etag", "last-modified", "content-type", "accept-ranges"):
        assert result.headers[name] == get[name], name
    assert get["content-length"] == str(BIG_SIZE)


@needs_curl
@local_and_s3
def test_curl_if_none_match_with_the_etag_is_304_without_body(
    uvicorn_server: UvicornServer, tmp_path: Path, route: str
) -> None:
    url = uvicorn_server.url + route
    etag = curl(url, "-I", workdir=tmp_path, output=tmp_path / "head").headers["etag"]
    out = tmp_path / "body"
    result = curl(
        url,
        "-H",
        f"If-None-Match: {etag}",
        "-w",
        "%{size_download}",
        workdir=tmp_path,
        output=out,
    )
    assert result.returncode == 0, result.stderr
    assert result.status == 304
    assert result.stdout == "0"
    assert read_or_empty(out) == b""
    assert result.headers["etag"] == etag
    assert "content-length" not in result.headers


@needs_curl
def test_curl_remote_header_name_saves_under_the_ascii_fallback(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path
) -> None:
    workdir = tmp_path / "downloads"
    workdir.mkdir()
    result = curl(uvicorn_server.url + "/attachment", "-O", "-J", workdir=workdir)
    assert result.returncode == 0, result.stderr
    assert result.status == 200
    # curl -J reads only the quoted ASCII filename= (it ignores RFC 8187 filename*).
    saved = workdir / "resume final.pdf"
    assert sorted(p.name for p in workdir.iterdir() if not p.name.startswith("headers-")) == [
        saved.name
    ]
    assert sha256(saved.read_bytes()) == e2e_data.big_sha256
    quoted = "r%C3%A9sum%C3%A9%20%C2%ABfinal%C2%BB.pdf"
    assert unquote(quoted, errors="strict") == ATTACHMENT_NAME
    assert f"filename*=UTF-8''{quoted}".encode() in result.raw_headers
    assert result.headers["content-disposition"] == (
        f"attachment; filename=\"resume final.pdf\"; filename*=UTF-8''{quoted}"
    )
    assert result.headers["content-type"] == "application/pdf"


@needs_curl
@pytest.mark.parametrize("route", ["/missing", "/starlette/missing", "/local/nothing.bin"], ids=str)
def test_curl_missing_file_is_404(
    uvicorn_server: UvicornServer, tmp_path: Path, route: str
) -> None:
    out = tmp_path / "body"
    result = curl(uvicorn_server.url + route, workdir=tmp_path, output=out)
    assert result.returncode == 22  # --fail-with-body: HTTP error
    assert result.status == 404
    assert b"missing" not in read_or_empty(out)


@needs_curl
def test_curl_failure_after_the_first_byte_is_a_partial_transfer(
    uvicorn_server: UvicornServer, tmp_path: Path
) -> None:
    out = tmp_path / "body"
    result = curl(uvicorn_server.url + "/broken", workdir=tmp_path, output=out)
    assert result.returncode == 18, result.stderr  # CURLE_PARTIAL_FILE
    assert result.status == 200
    assert result.headers["content-length"] == str(BROKEN_SIZE)
    assert read_or_empty(out) == b"x" * BROKEN_CHUNK


# -- httpx over TCP -----------------------------------------------------------------------------


def http_client(server: UvicornServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10.0, trust_env=False)


def local_port(response: httpx.Response) -> int | None:
    """The client-side port of the connection that carried ``response``; None once closed."""
    try:
        port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    except OSError:  # httpx already closed the socket: the server ended the connection
        return None
    return port


@big_route
def test_httpx_streamed_download_is_byte_exact(
    uvicorn_server: UvicornServer, e2e_data: E2EData, route: str
) -> None:
    digest = hashlib.sha256()
    received = 0
    with http_client(uvicorn_server) as client, client.stream("GET", route) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(BIG_SIZE)
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == BIG_SIZE
    assert digest.hexdigest() == e2e_data.big_sha256


def test_httpx_text_file_has_a_utf8_charset(
    uvicorn_server: UvicornServer, e2e_data: E2EData
) -> None:
    with http_client(uvicorn_server) as client:
        response = client.get(f"/local/{TEXT_NAME}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == f'inline; filename="{TEXT_NAME}"'
    assert response.content == e2e_data.text


def read_into(buffer: bytearray, response: httpx.Response) -> None:
    """Read the raw body into ``buffer``, so what arrived is kept when the read fails."""
    for chunk in response.iter_raw():
        buffer += chunk


def _wait_for_log(server: UvicornServer, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while needle not in (text := server.log_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


def test_httpx_failure_after_the_first_byte_is_an_incomplete_body_and_the_server_survives(
    uvicorn_server: UvicornServer, e2e_data: E2EData
) -> None:
    received = bytearray()
    with http_client(uvicorn_server) as client:
        with client.stream("GET", "/broken") as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(BROKEN_SIZE)
            with pytest.raises(httpx.RemoteProtocolError, match=r"without sending complete"):
                read_into(received, response)
        assert bytes(received) == b"x" * BROKEN_CHUNK
        after = client.get(f"/local/{TEXT_NAME}")
    assert after.status_code == 200
    assert after.content == e2e_data.text
    assert "BackendError" in _wait_for_log(uvicorn_server, "BackendError")


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("HEAD", {}, 200),
        ("GET", {"If-None-Match": "*"}, 304),
        ("GET", {"Range": f"bytes={BIG_SIZE}-"}, 416),
        ("GET", {"If-Match": '"other"'}, 412),
    ],
    ids=["head", "304", "416", "412"],
)
def test_httpx_bodiless_response_keeps_the_connection_usable(
    uvicorn_server: UvicornServer,
    e2e_data: E2EData,
    method: str,
    headers: dict[str, str],
    status: int,
) -> None:
    route = BIG_ROUTES["local"]
    with http_client(uvicorn_server) as client:
        first = client.request(method, route, headers=headers)
        first_port = local_port(first)
        second = client.get(route)
        second_port = local_port(second)
    assert first.status_code == status
    assert first.content == b""
    assert second.status_code == 200
    assert sha256(second.content) == e2e_data.big_sha256
    assert first_port is not None, "the server closed the connection after the first answer"
    assert first_port == second_port, "the second request needed a new connection"


def test_httpx_client_disconnect_mid_download_leaves_the_server_serving(
    uvicorn_server: UvicornServer, e2e_data: E2EData
) -> None:
    log_before = len(uvicorn_server.log_text())
    with http_client(uvicorn_server) as client:
        with client.stream("GET", BIG_ROUTES["s3"]) as response:
            first = next(response.iter_raw(64 * 1024))
        assert first == e2e_data.big[: len(first)]
        after = client.get(BIG_ROUTES["s3"])
    assert after.status_code == 200
    assert sha256(after.content) == e2e_data.big_sha256
    assert "Traceback" not in uvicorn_server.log_text()[log_before:]


def test_shutdown_closes_the_storage_sessions(
    start_uvicorn: Callable[[], AbstractContextManager[UvicornServer]], e2e_data: E2EData
) -> None:
    with start_uvicorn() as server:
        with http_client(server) as client:
            response = client.get(BIG_ROUTES["s3"])
        assert sha256(response.content) == e2e_data.big_sha256
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
        assert server.stop() in (0, -signal.SIGTERM)
    log = server.log_text()
    assert SESSIONS_CLOSED in log
    assert "Application shutdown complete." in log
    assert "Unclosed" not in log, log
    assert "Traceback" not in log, log


@needs_curl
def test_download_events_record_what_curl_received(
    uvicorn_server: UvicornServer, large_local: Payload, tmp_path: Path
) -> None:
    url = uvicorn_server.url + large_local.route
    ranged = curl(url, "-r", "100-199", workdir=tmp_path, output=tmp_path / "slice")
    # curl gives up after 1 s at 256 KiB/s: the server sees the client go away mid-body
    # (32 MiB is more than the socket buffers between them hold).
    cut = curl(
        url, "--limit-rate", "256K", "--max-time", "1", workdir=tmp_path, output=tmp_path / "cut"
    )
    assert ranged.status == 206
    assert cut.returncode == 28  # operation timed out
    received = len(read_or_empty(tmp_path / "cut"))
    deadline = time.monotonic() + 10
    while True:  # the cut download's event lands once the server notices the disconnect
        events = httpx.get(uvicorn_server.url + "/events").json()
        mine = [event for event in events if event["source"].endswith(LARGE_NAME)]
        if (len(mine) >= 2 and mine[-1]["aborted"]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    *_, range_event, cut_event = mine
    assert range_event["status"] == 206
    assert range_event["ranges"] == [[100, 200]]
    assert range_event["bytes_sent"] == 100
    assert not range_event["aborted"]
    assert cut_event["status"] == 200
    assert cut_event["aborted"]
    assert received <= cut_event["bytes_sent"] < len(large_local.data)


@needs_curl
def test_curl_follows_a_presigned_redirect_to_s3(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path
) -> None:
    out = tmp_path / "followed"
    result = curl(uvicorn_server.url + f"/redirect/{S3_KEY}", "-L", workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    first = result.raw_headers.split(b"\r\n", 1)[0]
    assert b" 307" in first
    assert result.status == 200  # moto's answer
    assert sha256(out.read_bytes()) == e2e_data.big_sha256
    assert result.headers["content-disposition"].startswith('attachment; filename="resume')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9" in result.headers["content-disposition"]


@needs_curl
def test_curl_downloads_a_zip_export_with_an_exact_length(
    uvicorn_server: UvicornServer, e2e_data: E2EData, tmp_path: Path
) -> None:
    import io
    import zipfile

    out = tmp_path / "export.zip"
    result = curl(uvicorn_server.url + "/export.zip", workdir=tmp_path, output=out)
    assert result.returncode == 0, result.stderr
    assert result.status == 200
    body = out.read_bytes()
    assert result.headers["content-length"] == str(len(body))
    assert result.headers["content-disposition"] == 'attachment; filename="export.zip"'
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    assert sha256(archive.read("local/big.bin")) == e2e_data.big_sha256
    assert sha256(archive.read("s3/big.bin")) == e2e_data.big_sha256
    squares = archive.read("squares.csv").splitlines()
    assert len(squares) == EXPORT_ROWS
    assert squares[-1] == f"{EXPORT_ROWS - 1},{(EXPORT_ROWS - 1) ** 2}".encode()
