"""Azure Blob Storage through adlfs, against the Azurite emulator on 127.0.0.1.

Requests are counted on the wire with azure-core's ``raw_request_hook`` on the blob client's
pipeline, never by patching sendfs.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from sendfs import FileResponse, SourceChanged, send_file
from sendfs.storages import StorageRegistry
from sendfs.storages.azure import AZURE_WINDOW, AzureResource
from tests.helpers import asgi_client, lilya_app, parse_multipart

pytestmark = [pytest.mark.anyio, pytest.mark.azure]

CONTENT = bytes((i * 17 + 1) % 256 for i in range(10_000))
MIB = 1024 * 1024
DISPOSITION = "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"


@pytest.fixture
def container(azurite: Any) -> Iterator[tuple[Any, str]]:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"sendfs-{secrets.token_hex(4)}"
    service.create_container(name)
    try:
        yield service.get_container_client(name), name
    finally:
        service.delete_container(name)


@pytest.fixture
def blob(container: tuple[Any, str]) -> str:
    from azure.storage.blob import ContentSettings

    client, name = container
    client.upload_blob(
        "reports/data",
        CONTENT,
        content_settings=ContentSettings(content_type="application/x-sendfs"),
    )
    return f"az://{name}/reports/data"


@pytest.fixture
async def registry(azurite: Any) -> AsyncIterator[StorageRegistry]:
    registry = StorageRegistry()
    registry.mount("blobs", "az://", connection_string=azurite.connection_string)
    try:
        yield registry
    finally:
        await registry.aclose()


def options(azurite: Any) -> dict[str, Any]:
    return {"connection_string": azurite.connection_string}


def client(
    registry: StorageRegistry, source: str, azurite: Any, **kwargs: Any
) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_file(source, registry=registry, storage_options=options(azurite), **kwargs)

    return asgi_client(lilya_app(endpoint))


async def test_metadata_is_normalised(registry: StorageRegistry, blob: str, azurite: Any) -> None:
    resource = await registry.open(blob, **options(azurite))
    try:
        assert isinstance(resource, AzureResource)
        info = resource.info
        assert info.size == len(CONTENT)
        assert info.name == "data"
        assert info.content_type == "application/x-sendfs"
        assert info.etag is not None
        assert not info.etag.startswith(('"', "W/"))
        assert info.mtime is not None
        assert info.mtime.tzinfo is not None
    finally:
        await resource.aclose()


async def test_get_head_and_ranges(registry: StorageRegistry, blob: str, azurite: Any) -> None:
    async with client(registry, blob, azurite) as app:
        full = await app.get("/file")
        head = await app.head("/file")
        single = await app.get("/file", headers={"Range": "bytes=100-199"})
        suffix = await app.get("/file", headers={"Range": "bytes=-10"})
        multi = await app.get("/file", headers={"Range": "bytes=0-4, 9000-9004"})
        unsatisfiable = await app.get("/file", headers={"Range": "bytes=20000-"})
    assert full.status_code == 200
    assert full.content == CONTENT
    assert full.headers["content-type"] == "application/x-sendfs"
    assert full.headers["etag"].startswith('"0x')
    assert head.headers["content-length"] == str(len(CONTENT))
    assert head.content == b""
    assert (single.status_code, single.content) == (206, CONTENT[100:200])
    assert single.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
    assert suffix.content == CONTENT[-10:]
    parts = parse_multipart(multi.headers["content-type"], multi.content)
    assert [part.body for part in parts] == [CONTENT[:5], CONTENT[9000:9005]]
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(CONTENT)}"


async def test_conditional_requests(registry: StorageRegistry, blob: str, azurite: Any) -> None:
    async with client(registry, blob, azurite) as app:
        first = await app.get("/file")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        not_modified = await app.get("/file", headers={"If-None-Match": etag})
        not_modified_since = await app.get("/file", headers={"If-Modified-Since": modified})
        failed = await app.get("/file", headers={"If-Match": '"0xother"'})
        if_range_stale = await app.get(
            "/file", headers={"Range": "bytes=0-0", "If-Range": '"0xother"'}
        )
    assert not_modified.status_code == 304
    assert not_modified_since.status_code == 304
    assert failed.status_code == 412
    assert (if_range_stale.status_code, if_range_stale.content) == (200, CONTENT)


async def test_missing_blob_is_a_404(registry: StorageRegistry, blob: str, azurite: Any) -> None:
    async with client(registry, blob.replace("/data", "/nope"), azurite) as app:
        response = await app.get("/file")
    assert response.status_code == 404


async def test_each_window_is_one_pinned_download(
    registry: StorageRegistry, container: tuple[Any, str], azurite: Any
) -> None:
    client_, name = container
    big = secrets.token_bytes(AZURE_WINDOW + MIB)
    client_.upload_blob("big.bin", big)
    resource = await registry.open(f"az://{name}/big.bin", **options(azurite))
    assert isinstance(resource, AzureResource)
    seen: list[dict[str, str]] = []
    # azure-core's per-call raw_request_hook shows each request as it goes on the wire; the
    # resource's client is handed one that adds it to every download.
    blob_client = resource._fs.service_client.get_blob_client(name, "big.bin")
    plain_download = blob_client.download_blob

    async def download_blob(**kwargs: Any) -> Any:
        kwargs["raw_request_hook"] = lambda request: seen.append(dict(request.http_request.headers))
        return await plain_download(**kwargs)

    blob_client.download_blob = download_blob
    resource._client = lambda: blob_client  # type: ignore[method-assign]
    try:
        received = b"".join([piece async for piece in resource.iter_range(0, None, 256 * 1024)])
        ranged = b"".join([piece async for piece in resource.iter_range(10, 20, 256 * 1024)])
    finally:
        await resource.aclose()
    assert hashlib.sha256(received).digest() == hashlib.sha256(big).digest()
    assert ranged == big[10:20]
    ranges = [headers.get("x-ms-range") for headers in seen]
    assert ranges == [
        f"bytes=0-{AZURE_WINDOW - 1}",
        f"bytes={AZURE_WINDOW}-{len(big) - 1}",
        "bytes=10-19",
    ]
    assert all(headers.get("If-Match", "").startswith('"0x') for headers in seen)


async def test_a_blob_overwritten_mid_read_never_mixes_versions(
    registry: StorageRegistry, container: tuple[Any, str], azurite: Any
) -> None:
    client_, name = container
    old = b"o" * (AZURE_WINDOW + 100)
    client_.upload_blob("changing.bin", old)
    resource = await registry.open(f"az://{name}/changing.bin", **options(azurite))
    try:
        chunks = resource.iter_range(0, None, MIB)
        first = await anext(chunks)
        assert first == old[:MIB]
        client_.upload_blob("changing.bin", b"n" * len(old), overwrite=True)
        with pytest.raises(SourceChanged):  # noqa: PT012
            async for chunk in chunks:
                assert set(chunk) == {ord("o")}  # what was already fetched is the old blob
    finally:
        await resource.aclose()


async def test_presigned_sas_url_serves_the_blob_with_our_headers(
    registry: StorageRegistry, blob: str, azurite: Any
) -> None:
    resource = await registry.open(blob, **options(azurite))
    assert isinstance(resource, AzureResource)
    try:
        url = await resource.presign(
            expires=60,
            content_type="application/pdf",
            content_disposition=DISPOSITION,
        )
    finally:
        await resource.aclose()
    assert url is not None
    response = await anyio.to_thread.run_sync(httpx.get, url)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in response.headers["content-disposition"]
    # Without the signature, the emulator refuses the same URL.
    unsigned = await anyio.to_thread.run_sync(httpx.get, url.split("?")[0])
    assert unsigned.status_code in (401, 403, 404)


async def test_redirect_to_a_sas_url(registry: StorageRegistry, blob: str, azurite: Any) -> None:
    async with client(
        registry, blob, azurite, redirect=True, as_attachment=True, download_name="d.pdf"
    ) as app:
        response = await app.get("/file")
        cached = await app.get("/file", headers={"If-None-Match": "*"})
    assert response.status_code == 307
    followed = await anyio.to_thread.run_sync(httpx.get, response.headers["location"])
    assert followed.content == CONTENT
    assert followed.headers["content-type"] == "application/pdf"
    assert followed.headers["content-disposition"] == 'attachment; filename="d.pdf"'
    assert cached.status_code == 304


async def test_without_an_account_key_there_is_no_sas(blob: str, azurite: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from tests.azurite import ACCOUNT, ACCOUNT_KEY

    # A filesystem with only a SAS token can read, but has nothing to sign with.
    registry = StorageRegistry()
    container = blob.split("/")[2]
    token = generate_container_sas(
        ACCOUNT,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(timezone.utc) + timedelta(minutes=5),
    )
    try:
        resource = await registry.open(
            blob,
            connection_string=(f"BlobEndpoint={azurite.endpoint};SharedAccessSignature={token}"),
        )
        assert isinstance(resource, AzureResource)
        try:
            assert await resource.presign(expires=60) is None
            data = b"".join([piece async for piece in resource.iter_range(0, 10, 10)])
            assert data == CONTENT[:10]
        finally:
            await resource.aclose()
    finally:
        await registry.aclose()
