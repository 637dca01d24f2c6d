"""Presigned redirects: the app answers 307 and the storage (moto's S3 server) sends the bytes.

Each test follows the redirect with a plain HTTP client against the moto server, so what is
checked is what a browser would get: the bytes, and the Content-Type and Content-Disposition
the storage answers with because the URL asks for them.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sendfs import DownloadEvent, FileResponse, RedirectUnavailable, StorageFiles, send_file
from sendfs.storages import StorageRegistry
from tests.helpers import asgi_client, lilya_app

pytestmark = [pytest.mark.anyio, pytest.mark.s3]

CONTENT = bytes((i * 31 + 7) % 256 for i in range(5000))


@pytest.fixture
def url(s3_client: Any, bucket: str) -> str:
    s3_client.put_object(Bucket=bucket, Key="reports/q3.pdf", Body=CONTENT)
    return f"s3://{bucket}/reports/q3.pdf"


def client(registry: StorageRegistry, source: Any, **options: Any) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_file(source, registry=registry, **options)

    return asgi_client(lilya_app(endpoint))


def query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


async def test_get_is_a_307_to_a_url_that_serves_the_bytes_with_our_headers(
    registry: StorageRegistry, url: str
) -> None:
    async with client(
        registry, url, redirect=True, as_attachment=True, download_name="résumé Q3.pdf"
    ) as app:
        response = await app.get("/file")
    assert response.status_code == 307
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:")
    followed = httpx.get(location)
    assert followed.status_code == 200
    assert followed.content == CONTENT
    assert followed.headers["content-type"] == "application/pdf"
    assert followed.headers["content-disposition"] == (
        "attachment; filename=\"resume Q3.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20Q3.pdf"
    )


async def test_a_redirect_opens_the_object_without_starting_its_body(
    registry: StorageRegistry, url: str
) -> None:
    operations: list[str] = []
    warm = await registry.open(url)  # creates the s3fs client, so the hook sees every call
    await warm.aclose()
    events = warm._fs._s3.meta.events  # type: ignore[attr-defined]
    events.register(
        "before-send.s3", lambda event_name, **_: operations.append(event_name.split(".")[-1])
    )
    async with client(registry, url, redirect=True) as app:
        response = await app.get("/file")
    assert response.status_code == 307
    assert operations == ["HeadObject"]


async def test_ranges_go_to_the_storage(registry: StorageRegistry, url: str) -> None:
    async with client(registry, url, redirect=True) as app:
        response = await app.get("/file", headers={"Range": "bytes=100-199"})
    assert response.status_code == 307
    followed = httpx.get(response.headers["location"], headers={"Range": "bytes=100-199"})
    assert followed.status_code == 206
    assert followed.content == CONTENT[100:200]


async def test_head_is_a_307_too(registry: StorageRegistry, url: str) -> None:
    async with client(registry, url, redirect=True) as app:
        response = await app.head("/file")
    assert response.status_code == 307
    assert "location" in response.headers


async def test_conditional_requests_are_answered_by_the_app(
    registry: StorageRegistry, url: str
) -> None:
    async with client(registry, url) as app:
        etag = (await app.head("/file")).headers["etag"]
    async with client(registry, url, redirect=True) as app:
        not_modified = await app.get("/file", headers={"If-None-Match": etag})
        failed = await app.get("/file", headers={"If-Match": '"other"'})
    assert not_modified.status_code == 304
    assert failed.status_code == 412
    assert "location" not in not_modified.headers
    assert "location" not in failed.headers


async def test_versioned_bucket_pins_the_url_to_the_opened_version(
    registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3_client.put_object(Bucket=bucket, Key="terms.txt", Body=b"version one")
    async with client(registry, f"s3://{bucket}/terms.txt", redirect=True) as app:
        response = await app.get("/file")
    location = response.headers["location"]
    assert query(location)["versionId"]
    s3_client.put_object(Bucket=bucket, Key="terms.txt", Body=b"version two!")
    assert httpx.get(location).content == b"version one"


async def test_the_url_expires_when_asked(registry: StorageRegistry, url: str) -> None:
    async with client(registry, url, redirect=True, expires=60) as app:
        location = (await app.get("/file")).headers["location"]
    params = query(location)
    if "X-Amz-Expires" in params:  # SigV4
        assert params["X-Amz-Expires"] == ["60"]
    else:  # SigV2: an absolute time
        assert abs(int(params["Expires"][0]) - (time.time() + 60)) < 30


async def test_a_storage_that_cannot_sign_is_streamed(registry: StorageRegistry) -> None:
    import fsspec

    fsspec.filesystem("memory").pipe_file("/redirects/a.txt", b"in memory")
    try:
        async with client(registry, "memory://redirects/a.txt", redirect=True) as app:
            response = await app.get("/file")
        assert response.status_code == 200
        assert response.content == b"in memory"
        async with client(registry, "memory://redirects/a.txt", redirect="required") as app:
            with pytest.raises(RedirectUnavailable, match="cannot presign"):
                await app.get("/file")
    finally:
        fsspec.filesystem("memory").rm("/redirects", recursive=True)


async def test_anonymous_s3_cannot_sign_so_it_streams(
    registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="public.txt", Body=b"for all", ACL="public-read")
    source = f"s3://{bucket}/public.txt"
    anonymous = {"anon": True}
    async with client(registry, source, redirect=True, storage_options=anonymous) as app:
        response = await app.get("/file")
    assert (response.status_code, response.content) == (200, b"for all")
    async with client(registry, source, redirect="required", storage_options=anonymous) as app:
        with pytest.raises(RedirectUnavailable):
            await app.get("/file")


async def test_local_files_and_file_objects_never_redirect(
    registry: StorageRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"local")
    async with client(registry, path, redirect=True) as app:
        response = await app.get("/file")
    assert (response.status_code, response.content) == (200, b"local")
    for source in (path, str(path), io.BytesIO(b"x")):
        with pytest.raises(RedirectUnavailable, match="local paths, file objects and streams"):
            send_file(source, redirect="required", registry=registry)


@pytest.mark.parametrize(
    "options",
    [
        {"redirect": "yes"},
        {"redirect": True, "expires": 0},
        {"redirect": True, "expires": -5},
        {"redirect": True, "expires": 7 * 24 * 3600 + 1},
        {"redirect": True, "expires": True},
        {"redirect": True, "expires": "60"},
        {"redirect": True, "status_code": 203},
    ],
)
async def test_bad_redirect_options_are_refused(
    registry: StorageRegistry, url: str, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        send_file(url, registry=registry, **options)


async def test_storage_files_redirect(registry: StorageRegistry, url: str, tmp_path: Path) -> None:
    root = url.rsplit("/", 1)[0]
    files = StorageFiles(root, registry=registry, redirect=True, expires=120)
    async with asgi_client(files) as app:
        found = await app.get("/q3.pdf")
        missing = await app.get("/q4.pdf")
    assert found.status_code == 307
    assert httpx.get(found.headers["location"]).content == CONTENT
    assert missing.status_code == 404
    with pytest.raises(RedirectUnavailable):
        StorageFiles(tmp_path, redirect="required")


async def test_the_download_event_records_the_redirect(registry: StorageRegistry, url: str) -> None:
    events: list[DownloadEvent] = []
    async with client(registry, url, redirect=True, on_complete=events.append) as app:
        await app.get("/file")
    [event] = events
    assert (event.status, event.bytes_sent, event.aborted) == (307, 0, False)
