"""The S3 guide's app against the moto S3 server, and the guide's claims about versions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sendfs import registry, send_file
from sendfs.storages import StorageRegistry
from tests.helpers import asgi_client, lilya_app
from tests.snippets import load_snippet

pytestmark = [pytest.mark.anyio, pytest.mark.s3]


@pytest.fixture
async def s3_app(
    bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    monkeypatch.setenv("REPORTS_BUCKET", bucket)
    monkeypatch.setenv("S3_ENDPOINT_URL", moto_endpoint)
    snippet = load_snippet("s3_app")
    try:
        yield snippet.app
    finally:
        registry.unregister("reports")
        await registry.aclose()


async def test_s3_guide_app_serves_the_mounted_prefix(
    s3_client: Any, bucket: str, s3_app: Any
) -> None:
    s3_client.put_object(
        Bucket=bucket,
        Key="published/q3.pdf",
        Body=b"%PDF q3" * 100,
        ContentType="application/pdf",
    )
    s3_client.put_object(Bucket=bucket, Key="private/salaries.csv", Body=b"secret")
    async with asgi_client(s3_app) as client:
        full = await client.get("/reports/q3.pdf")
        part = await client.get("/reports/q3.pdf", headers={"Range": "bytes=7-13"})
        cached = await client.get(
            "/reports/q3.pdf", headers={"If-None-Match": full.headers["etag"]}
        )
        missing = await client.get("/reports/q4.pdf")
        climbing = await client.get("/reports/..%2Fprivate%2Fsalaries.csv")
        version_query = await client.get("/reports/q3.pdf%3FversionId%3Dabc")
    assert full.status_code == 200
    assert full.content == b"%PDF q3" * 100
    assert full.headers["content-disposition"] == 'attachment; filename="q3.pdf"'
    assert full.headers["cache-control"] == "public, max-age=600"
    assert part.status_code == 206
    assert part.content == b"%PDF q3"
    assert cached.status_code == 304
    assert missing.status_code == 404
    assert climbing.status_code == 404
    assert version_query.status_code == 404


async def test_versioned_bucket_serves_a_pinned_version_with_version_aware(
    s3_client: Any, bucket: str, storage_registry: StorageRegistry
) -> None:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3_client.put_object(Bucket=bucket, Key="terms.txt", Body=b"terms v1")["VersionId"]
    s3_client.put_object(Bucket=bucket, Key="terms.txt", Body=b"terms v2")

    async def latest() -> Any:
        return send_file(f"s3://{bucket}/terms.txt", registry=storage_registry)

    async def pinned() -> Any:
        return send_file(
            f"s3://{bucket}/terms.txt?versionId={old}",
            storage_options={"version_aware": True},
            registry=storage_registry,
        )

    async with asgi_client(lilya_app(latest, "/latest")) as client:
        new_body = await client.get("/latest")
    async with asgi_client(lilya_app(pinned, "/pinned")) as client:
        old_body = await client.get("/pinned")
        old_part = await client.get("/pinned", headers={"Range": "bytes=6-7"})
    assert new_body.content == b"terms v2"
    assert old_body.content == b"terms v1"
    assert old_part.content == b"v1"
    assert old_body.headers["etag"] != new_body.headers["etag"]
