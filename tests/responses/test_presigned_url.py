"""``presigned_url``: URLs a storage answers with the download's name and type.

Each URL is fetched with a plain HTTP client from the storage itself (moto's S3 server,
Azurite), so what is checked is what a browser holding it would get.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from sendfs.exceptions import RedirectUnavailable, SourceNotFound
from sendfs.responses.presigned import presigned_url
from sendfs.storages import StorageRegistry
from tests.helpers import SpyRegistry
from tests.storages.test_fsspec_sign import PROTOCOL, SigningMemoryFileSystem, signing_memory

pytestmark = pytest.mark.anyio

CONTENT = bytes((i * 13 + 5) % 256 for i in range(3000))
RESUME = "attachment; filename=\"resume Q3.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20Q3.pdf"


@pytest.fixture
def url(s3_client: Any, bucket: str) -> str:
    s3_client.put_object(
        Bucket=bucket, Key="reports/q3.pdf", Body=CONTENT, ContentType="binary/octet-stream"
    )
    return f"s3://{bucket}/reports/q3.pdf"


@pytest.fixture
def signed_fs() -> Iterator[type[SigningMemoryFileSystem]]:
    with signing_memory() as fs_class:
        yield fs_class


async def fetch(location: str) -> httpx.Response:
    return await anyio.to_thread.run_sync(httpx.get, location)


# -- S3 (moto) ---------------------------------------------------------------------------------


@pytest.mark.s3
async def test_the_url_serves_the_bytes_with_the_name_and_type_given(
    registry: StorageRegistry, url: str
) -> None:
    location = await presigned_url(
        url,
        download_name="résumé Q3.pdf",
        mimetype="application/x-report",
        as_attachment=True,
        registry=registry,
    )
    response = await fetch(location)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-type"] == "application/x-report"
    assert response.headers["content-disposition"] == RESUME


@pytest.mark.s3
async def test_by_default_the_url_is_inline_with_the_objects_name_and_guessed_type(
    registry: StorageRegistry, url: str
) -> None:
    response = await fetch(await presigned_url(url, registry=registry))
    assert response.content == CONTENT
    # Guessed from the name before the stored type, as a download would.
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="q3.pdf"'


@pytest.mark.s3
async def test_as_attachment_with_the_objects_own_name(registry: StorageRegistry, url: str) -> None:
    response = await fetch(await presigned_url(url, as_attachment=True, registry=registry))
    assert response.headers["content-disposition"] == 'attachment; filename="q3.pdf"'


@pytest.mark.s3
async def test_the_url_expires_when_asked(registry: StorageRegistry, url: str) -> None:
    location = await presigned_url(url, expires=60, registry=registry)
    params = parse_qs(urlsplit(location).query)
    assert params["X-Amz-Expires"] == ["60"]


@pytest.mark.s3
async def test_the_url_is_pinned_to_the_version_opened(
    registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3_client.put_object(Bucket=bucket, Key="terms.txt", Body=b"version one")
    location = await presigned_url(f"s3://{bucket}/terms.txt", registry=registry)
    s3_client.put_object(Bucket=bucket, Key="terms.txt", Body=b"version two!")
    assert parse_qs(urlsplit(location).query)["versionId"]
    assert (await fetch(location)).content == b"version one"


@pytest.mark.s3
async def test_a_missing_key_is_source_not_found(registry: StorageRegistry, bucket: str) -> None:
    with pytest.raises(SourceNotFound):
        await presigned_url(f"s3://{bucket}/nope.pdf", registry=registry)


@pytest.mark.s3
async def test_anonymous_s3_cannot_sign(
    registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="public.txt", Body=b"for all", ACL="public-read")
    with pytest.raises(RedirectUnavailable, match="cannot presign"):
        await presigned_url(
            f"s3://{bucket}/public.txt", storage_options={"anon": True}, registry=registry
        )


# -- sources the app must send, and arguments ------------------------------------------------


async def test_a_local_path_is_refused_without_io(tmp_path: Path) -> None:
    registry = SpyRegistry()
    missing = tmp_path / "not-there.pdf"  # opening it would raise SourceNotFound
    for source in (missing, str(missing), io.BytesIO(b"x")):
        with pytest.raises(RedirectUnavailable, match="can only be sent by the app"):
            await presigned_url(source, registry=registry)  # type: ignore[arg-type]
    assert registry.opened == 0


@pytest.mark.parametrize("expires", [0, -5, 7 * 24 * 3600 + 1, True, "60", 1.5])
async def test_bad_expires_is_refused_before_any_io(expires: Any) -> None:
    registry = SpyRegistry()
    with pytest.raises(ValueError, match="expires must be an int"):
        await presigned_url("memory://nowhere/a.pdf", expires=expires, registry=registry)
    assert registry.opened == 0


async def test_a_storage_that_cannot_sign_is_refused_and_closed() -> None:
    import fsspec

    registry = SpyRegistry()
    fsspec.filesystem("memory").pipe_file("/presigned-tests/a.txt", b"in memory")
    try:
        with pytest.raises(RedirectUnavailable, match="cannot presign"):
            await presigned_url("memory://presigned-tests/a.txt", registry=registry)
    finally:
        fsspec.filesystem("memory").rm("/presigned-tests", recursive=True)
    assert (registry.opened, registry.closed) == (1, [True])


# -- any fsspec filesystem with sign() --------------------------------------------------------


async def test_a_filesystem_with_sign_gives_its_url(
    registry: StorageRegistry, signed_fs: type[SigningMemoryFileSystem]
) -> None:
    location = await presigned_url(
        f"{PROTOCOL}://bucket/a.csv",
        download_name="Q3.csv",
        as_attachment=True,
        expires=120,
        registry=registry,
    )
    assert location == "https://signed.example/bucket/a.csv?expires=120&sig=c2lnbmVk"
    # Not GCS: the name and type are the object's own, so no keyword carries them.
    assert signed_fs.calls == [{"path": "/bucket/a.csv", "expiration": 120, "main_thread": False}]


async def test_a_missing_object_of_such_a_filesystem_is_source_not_found(
    registry: StorageRegistry, signed_fs: type[SigningMemoryFileSystem]
) -> None:
    with pytest.raises(SourceNotFound):
        await presigned_url(f"{PROTOCOL}://bucket/missing.csv", registry=registry)
    assert signed_fs.calls == []


# -- Azure (Azurite) ---------------------------------------------------------------------------


@pytest.fixture
def blob(azurite: Any) -> Iterator[str]:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"sendfs-{secrets.token_hex(4)}"
    container = service.create_container(name)
    container.upload_blob(
        "reports/q3.pdf",
        CONTENT,
        content_settings=ContentSettings(content_type="application/x-stored"),
    )
    try:
        yield f"az://{name}/reports/q3.pdf"
    finally:
        service.delete_container(name)


@pytest.mark.azure
async def test_an_azure_sas_url_carries_the_name_and_type(
    registry: StorageRegistry, blob: str, azurite: Any
) -> None:
    location = await presigned_url(
        blob,
        download_name="résumé Q3.pdf",
        as_attachment=True,
        storage_options={"connection_string": azurite.connection_string},
        registry=registry,
    )
    response = await fetch(location)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == RESUME
