"""The Scaling out page: its apps run, and its front-server configurations are the tested ones.

The python snippets run in-process like the other pages' (``load_snippet``). The nginx and
lighttpd configurations are files too (``docs/snippets/*.conf``), shown on the page after a
``<!-- config: docs/snippets/x.conf -->`` marker and kept equal here; the offload end-to-end
tests (``tests/e2e/test_offload.py``) run them, and the tests marked ``e2e`` below run the
page's own apps behind them: curl-free, with httpx through a real nginx and lighttpd.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
import pytest

from sendfs import LinkSigner, registry
from sendfs.cli import main as sendfs_main
from tests.conftest import free_port
from tests.docs.sync_snippets import DOCS, ROOT, SNIPPETS
from tests.e2e.frontservers import documented_config, running_lighttpd, running_nginx
from tests.helpers import asgi_client
from tests.snippets import load_snippet

PAGE = DOCS / "scaling.md"
CONFIG_MARKER = re.compile(r"^<!-- config: (\S+) -->\n```(\w+)\n(.*?)^```$", re.M | re.S)
FIX = "copy the file into the fence after its <!-- config: ... --> marker"
PDF = b"%PDF-1.7 manual " * 4096
SECRET = "s" * 32
OLD_SECRET = "o" * 32


# -- the configurations the page shows ------------------------------------------------------------


def _shown_configs(pages: list[Path]) -> dict[str, tuple[str, str]]:
    """Each config marker of ``pages``: path -> (fence language, fence content)."""
    shown = {}
    for page in pages:
        for match in CONFIG_MARKER.finditer(page.read_text(encoding="utf-8")):
            shown[match.group(1)] = (match.group(2), match.group(3))
    return shown


@pytest.mark.parametrize("name", sorted(p.name for p in SNIPPETS.glob("*.conf")))
def test_every_configuration_is_shown_verbatim(name: str) -> None:
    path = f"docs/snippets/{name}"
    shown = _shown_configs(sorted(DOCS.glob("*.md")))
    assert path in shown, f"{path} is shown by no page: add a <!-- config: {path} --> marker"
    _language, fence = shown[path]
    assert fence == (ROOT / path).read_text(encoding="utf-8"), f"{path} differs; {FIX}"


def test_the_scaling_page_shows_the_tested_configurations() -> None:
    languages = {path: language for path, (language, _) in _shown_configs([PAGE]).items()}
    assert languages == {
        "docs/snippets/nginx_offload.conf": "nginx",
        "docs/snippets/lighttpd_offload.conf": "lighttpd",
    }


# -- nginx offload, in-process --------------------------------------------------------------------


@pytest.fixture
def served_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """FILES_DIR and MEDIA_DIR with a few files; the page's mounts forgotten afterwards."""
    files, media = tmp_path / "files", tmp_path / "media"
    (media / "avatars").mkdir(parents=True)
    files.mkdir()
    (files / "manual.pdf").write_bytes(PDF)
    (files / "50% off #1.txt").write_bytes(b"half price")
    (media / "avatars" / "7.png").write_bytes(b"\x89PNG seven")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    monkeypatch.setenv("FILES_DIR", str(files))
    monkeypatch.setenv("MEDIA_DIR", str(media))
    yield tmp_path
    for name in ("media", "reports"):
        if name in registry:
            registry.unregister(name)


@pytest.fixture
async def reports_bucket(
    s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """REPORTS_URL naming a fresh moto bucket holding ``2025/q3.pdf``."""
    s3_client.put_object(Bucket=bucket, Key="2025/q3.pdf", Body=PDF)
    monkeypatch.setenv("REPORTS_URL", f"s3://{bucket}")
    yield bucket
    await registry.aclose()


@pytest.mark.anyio
@pytest.mark.s3
@pytest.mark.usefixtures("served_dirs", "reports_bucket")
async def test_nginx_offload_app_answers_with_internal_redirects() -> None:
    async with asgi_client(load_snippet("offload_nginx").app) as client:
        manual = await client.get("/manual")
        odd = await client.get("/downloads/50%25%20off%20%231.txt")
        avatar = await client.get("/avatars/7")
        listed = await client.get("/files/manual.pdf")
        report = await client.get("/reports/2025/q3.pdf")
        report_head = await client.head("/reports/2025/q3.pdf")
        missing = await client.get("/files/missing.pdf")
        climbing = await client.get("/downloads/..%2Fsecret.txt")
    assert manual.headers["x-accel-redirect"] == "/_files/manual.pdf"
    assert manual.headers["cache-control"] == "public, max-age=3600"
    assert (manual.content, manual.headers["content-length"]) == (b"", "0")
    assert odd.headers["x-accel-redirect"] == "/_files/50%25%20off%20%231.txt"
    assert odd.headers["content-disposition"].startswith("attachment")
    assert avatar.headers["x-accel-redirect"] == "/_media/avatars/7.png"
    assert listed.headers["x-accel-redirect"] == "/_files/manual.pdf"
    assert report.headers["x-accel-redirect"] == "/_reproxy"
    assert "content-disposition" not in report.headers  # it is in the presigned URL
    assert "x-amz-expires=60" in report.headers["x-reproxy-url"].lower()
    fetched = httpx.get(report.headers["x-reproxy-url"])
    assert fetched.content == PDF
    assert fetched.headers["content-disposition"] == 'attachment; filename="q3.pdf"'
    # A HEAD is answered by the app: a URL presigned for GET does not validate for HEAD.
    assert "x-accel-redirect" not in report_head.headers
    assert report_head.headers["content-length"] == str(len(PDF))
    assert (missing.status_code, climbing.status_code) == (404, 404)
    assert "x-accel-redirect" not in missing.headers


# -- X-Sendfile, in-process -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_sendfile_app_maps_the_root_to_where_the_front_server_sees_it(
    served_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONT_FILES_DIR", "/volumes/files")
    async with asgi_client(load_snippet("offload_sendfile").app) as client:
        manual = await client.get("/manual")
        odd = await client.get("/files/50%25%20off%20%231.txt")
        missing = await client.get("/files/missing.pdf")
    assert manual.headers["x-sendfile"] == "/volumes/files/manual.pdf"
    assert (manual.content, manual.headers["content-length"]) == (b"", "0")
    # Percent-encoded: Apache and lighttpd decode the value.
    assert odd.headers["x-sendfile"] == "/volumes/files/50%25%20off%20%231.txt"
    assert odd.headers["content-disposition"].startswith("attachment")
    assert missing.status_code == 404


@pytest.mark.usefixtures("served_dirs")
def test_flask_use_x_sendfile_makes_send_file_offload(served_dirs: Path) -> None:
    app = load_snippet("flask_x_sendfile").app
    answer = app.test_client().get("/manual")
    assert answer.status_code == 200
    assert answer.headers["X-Sendfile"] == str(served_dirs / "files" / "manual.pdf")
    assert answer.headers["Content-Length"] == "0"
    assert answer.headers["Cache-Control"] == "public, max-age=3600"
    assert answer.get_data() == b""


# -- presigned URLs -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.s3
@pytest.mark.usefixtures("served_dirs", "reports_bucket")
async def test_presigned_link_app_hands_out_urls_of_the_storage() -> None:
    async with asgi_client(load_snippet("presigned_links").app) as client:
        link = await client.get("/reports/2025/3/link")
        missing = await client.get("/reports/2025/4/link")
    assert link.json()["expires_in"] == 300
    url = link.json()["url"]
    assert "x-amz-expires=300" in url.lower()
    fetched = httpx.get(url)
    assert fetched.content == PDF
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["content-disposition"] == 'attachment; filename="Report 2025 Q3.pdf"'
    assert missing.status_code == 404


# -- signed links ---------------------------------------------------------------------------------


@pytest.fixture
def signed_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    reports, invoices = tmp_path / "reports", tmp_path / "invoices"
    reports.mkdir()
    invoices.mkdir()
    (reports / "q3 report.pdf").write_bytes(PDF)
    (invoices / "42.pdf").write_bytes(b"%PDF invoice 42")
    monkeypatch.setenv("REPORTS_DIR", str(reports))
    monkeypatch.setenv("INVOICES_DIR", str(invoices))
    monkeypatch.setenv("SENDFS_LINK_SECRETS", f"{SECRET},{OLD_SECRET}")
    return load_snippet("signed_links").app


@pytest.mark.anyio
async def test_signed_links_open_files_and_anything_else_is_403(signed_app: Any) -> None:
    async with asgi_client(signed_app) as client:
        shared = (await client.get("/share/q3 report.pdf")).json()["url"]
        report = await client.get(shared)
        unsigned = await client.get("/reports/q3%20report.pdf")
        tampered = await client.get(shared.replace("q3%20report", "q4%20report"))
        invoice = await client.get(LinkSigner(SECRET).sign("/invoices/42", expires_in=60))
        by_old_secret = await client.get(LinkSigner(OLD_SECRET).sign("/invoices/42"))
        by_stranger = await client.get(LinkSigner("x" * 32).sign("/invoices/42"))
    assert shared.startswith("/reports/q3%20report.pdf?expires=")
    assert (report.status_code, report.content) == (200, PDF)
    assert invoice.content == b"%PDF invoice 42"
    assert by_old_secret.status_code == 200
    assert [r.status_code for r in (unsigned, tampered, by_stranger)] == [403, 403, 403]


@pytest.mark.anyio
async def test_links_made_by_the_cli_open_files_of_the_app(
    signed_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sendfs_main(["sign", "/reports/q3 report.pdf", "--expires-in", "600"]) == 0
    link = capsys.readouterr().out.strip()
    expires = int(re.search(r"expires=(\d+)", link).group(1))  # type: ignore[union-attr]
    assert 590 <= expires - time.time() <= 600
    async with asgi_client(signed_app) as client:
        answer = await client.get(link)
    assert (answer.status_code, answer.content) == (200, PDF)


# -- precompressed siblings and caches ------------------------------------------------------------

APP_JS = b"console.log('sendfs');\n" * 200


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "assets"
    downloads = tmp_path / "downloads"
    directory.mkdir()
    downloads.mkdir()
    (directory / "app.js").write_bytes(APP_JS)
    (directory / "app.js.gz").write_bytes(gzip.compress(APP_JS))
    (directory / "app.js.br").write_bytes(b"brotli bytes, not checked by the server")
    (directory / "catalog.json").write_bytes(b'{"items": []}')
    (directory / "catalog.json.gz").write_bytes(gzip.compress(b'{"items": []}'))
    (downloads / "tool.tar").write_bytes(b"tar" * 1000)
    monkeypatch.setenv("ASSETS_DIR", str(directory))
    monkeypatch.setenv("DOWNLOADS_DIR", str(downloads))
    return directory


async def _raw(
    client: httpx.AsyncClient, path: str, accept_encoding: str, byte_range: str | None = None
) -> tuple[httpx.Response, bytes]:
    """The answer and its body as sent (httpx would decode a gzip body)."""
    headers = {"accept-encoding": accept_encoding}
    if byte_range is not None:
        headers["range"] = byte_range
    async with client.stream("GET", path, headers=headers) as answer:
        body = b"".join([chunk async for chunk in answer.aiter_raw()])
    return answer, body


@pytest.mark.anyio
async def test_precompressed_siblings_are_chosen_by_accept_encoding(assets: Path) -> None:
    async with asgi_client(load_snippet("precompressed").app) as client:
        brotli, brotli_body = await _raw(client, "/assets/app.js", "gzip, br")
        gzipped, gzip_body = await _raw(client, "/assets/app.js", "gzip")
        plain, plain_body = await _raw(client, "/assets/app.js", "identity")
        part, part_body = await _raw(client, "/assets/app.js", "gzip", "bytes=0-9")
        catalog, catalog_body = await _raw(client, "/catalog.json", "br, gzip")
    assert brotli.headers["content-encoding"] == "br"
    assert brotli_body == (assets / "app.js.br").read_bytes()
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzip_body == (assets / "app.js.gz").read_bytes()
    assert "content-encoding" not in plain.headers
    assert plain_body == APP_JS
    for answer in (brotli, gzipped, plain):
        assert answer.headers["vary"] == "accept-encoding"
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert len({brotli.headers["etag"], gzipped.headers["etag"], plain.headers["etag"]}) == 3
    # Ranges count the encoded bytes.
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-9/{len(gzip_body)}"
    assert part_body == gzip_body[:10]
    # No .br beside catalog.json: the gzip one.
    assert catalog.headers["content-encoding"] == "gzip"
    assert gzip.decompress(catalog_body) == b'{"items": []}'


@pytest.mark.anyio
async def test_cdn_app_sets_cache_lifetimes_and_revalidates(assets: Path) -> None:
    async with asgi_client(load_snippet("cdn").app) as client:
        asset = await client.get("/assets/app.js", headers={"accept-encoding": "br"})
        download = await client.get("/downloads/tool.tar")
        again = await client.get(
            "/downloads/tool.tar", headers={"if-none-match": download.headers["etag"]}
        )
    assert asset.headers["cache-control"] == "public, max-age=31536000"
    assert asset.headers["vary"] == "accept-encoding"
    assert download.headers["cache-control"] == "public, max-age=300"
    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, max-age=300"
    assert again.content == b""


# -- the page's apps behind the page's front-server configurations (e2e) --------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def running_snippet(name: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``uvicorn <name>:app`` from docs/snippets on a free port; yields its URL."""
    for _ in range(3):
        port = free_port()
        command = [
            *(sys.executable, "-m", "uvicorn", f"{name}:app", "--app-dir", str(SNIPPETS)),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        if _answers(process, url):
            break
        _stop(process)
        if "address already in use" not in log.read_text(errors="replace").lower():
            pytest.fail(f"uvicorn {name}:app did not start:\n{log.read_text(errors='replace')}")
    else:
        pytest.fail(f"no free port for uvicorn {name}:app")
    try:
        yield url
    finally:
        _stop(process)


def _answers(process: subprocess.Popen[bytes], url: str) -> bool:
    """True once the app answers HTTP at ``url``; False if it exited or took too long."""
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline and process.poll() is None:
            if _reachable(client, f"{url}/no-such-route"):
                return True
            time.sleep(0.05)
    return False


def _reachable(client: httpx.Client, url: str) -> bool:
    try:
        client.get(url)
    except httpx.TransportError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.e2e
@pytest.mark.s3
def test_the_page_app_behind_the_page_nginx_configuration(
    tmp_path: Path, s3_client: Any, bucket: str
) -> None:
    files, media = (tmp_path / "files").resolve(), (tmp_path / "media").resolve()
    (media / "avatars").mkdir(parents=True)
    files.mkdir()
    big = secrets.token_bytes(3 * 1024 * 1024)
    (files / "manual.pdf").write_bytes(big)
    (files / "50% off #1.txt").write_bytes(b"half price")
    (media / "avatars" / "7.png").write_bytes(b"\x89PNG seven")
    s3_client.put_object(Bucket=bucket, Key="2025/q3.pdf", Body=big)
    env = {"FILES_DIR": str(files), "MEDIA_DIR": str(media), "REPORTS_URL": f"s3://{bucket}"}
    with running_snippet("offload_nginx", env, tmp_path / "uvicorn.log") as app_url:
        config = documented_config(
            "nginx_offload.conf",
            {
                "/srv/files": str(files),
                "/srv/media": str(media),
                "http://127.0.0.1:8000": app_url,
                "/etc/ssl/certs/ca-certificates.crt": certifi.where(),
            },
        )
        with (
            running_nginx(tmp_path / "nginx", config) as nginx,
            httpx.Client(base_url=nginx.url, timeout=30, trust_env=False) as client,
        ):
            manual = client.get("/manual")
            part = client.get("/manual", headers={"Range": "bytes=100-199"})
            odd = client.get("/downloads/50%25%20off%20%231.txt")
            avatar = client.get("/avatars/7")
            listed = client.get("/files/manual.pdf")
            report = client.get("/reports/2025/q3.pdf")
            direct = client.get("/_files/manual.pdf")
    assert (manual.status_code, sha256(manual.content)) == (200, sha256(big))
    assert manual.headers["cache-control"] == "public, max-age=3600"
    assert (part.status_code, part.content) == (206, big[100:200])
    assert odd.content == b"half price"
    assert avatar.content == b"\x89PNG seven"
    assert avatar.headers["content-type"] == "image/png"
    assert sha256(listed.content) == sha256(big)
    assert (report.status_code, sha256(report.content)) == (200, sha256(big))
    assert report.headers["content-disposition"] == 'attachment; filename="q3.pdf"'
    assert "x-reproxy-url" not in report.headers
    assert direct.status_code == 404  # internal


@pytest.mark.e2e
def test_the_page_app_behind_the_page_lighttpd_configuration(tmp_path: Path) -> None:
    files = (tmp_path / "files").resolve()
    files.mkdir()
    big = secrets.token_bytes(3 * 1024 * 1024)
    (files / "manual.pdf").write_bytes(big)
    (files / "50% off #1.txt").write_bytes(b"half price")
    env = {"FILES_DIR": str(files)}
    with running_snippet("offload_sendfile", env, tmp_path / "uvicorn.log") as app_url:
        config = documented_config(
            "lighttpd_offload.conf",
            {"/srv/files": str(files), '"port" => 8000,': f'"port" => {urlsplit(app_url).port},'},
        )
        with (
            running_lighttpd(tmp_path / "lighttpd", config) as lighttpd,
            httpx.Client(base_url=lighttpd.url, timeout=30, trust_env=False) as client,
        ):
            manual = client.get("/manual")
            part = client.get("/manual", headers={"Range": "bytes=100-199"})
            odd = client.get("/files/50%25%20off%20%231.txt")
    assert (manual.status_code, sha256(manual.content)) == (200, sha256(big))
    assert "x-sendfile" not in manual.headers
    assert (part.status_code, part.content) == (206, big[100:200])
    assert odd.content == b"half price"
    assert odd.headers["content-disposition"].startswith("attachment")
