"""The sync twins of ``presigned_url`` in the Flask and Django faces, against moto's S3 server."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sendfs import RedirectUnavailable
from sendfs.storages import StorageRegistry

pytestmark = pytest.mark.s3

CONTENT = b"col\n1\n"


@pytest.fixture
def url(s3_client: Any, bucket: str) -> str:
    s3_client.put_object(Bucket=bucket, Key="exports/q3.csv", Body=CONTENT)
    return f"s3://{bucket}/exports/q3.csv"


def check(signed: str) -> None:
    query = parse_qs(urlsplit(signed).query)
    assert query["response-content-disposition"] == ['attachment; filename="Q3.csv"']
    response = httpx.get(signed, trust_env=False)
    assert response.content == CONTENT
    assert response.headers["content-disposition"] == 'attachment; filename="Q3.csv"'


def test_flask_presigned_url_runs_without_a_request(url: str, moto_endpoint: str) -> None:
    from sendfs.flask import presigned_url

    registry = StorageRegistry()
    signed = presigned_url(
        url,
        download_name="Q3.csv",
        as_attachment=True,
        storage_options={"endpoint_url": moto_endpoint},
        registry=registry,
    )
    check(signed)
    with pytest.raises(RedirectUnavailable):
        presigned_url(__file__, registry=registry)


def test_django_presigned_url_and_its_async_twin(url: str, moto_endpoint: str) -> None:
    pytest.importorskip("django")
    import anyio

    from sendfs.django import apresigned_url, presigned_url

    options = {"endpoint_url": moto_endpoint}
    registry = StorageRegistry()
    check(
        presigned_url(
            url,
            download_name="Q3.csv",
            as_attachment=True,
            storage_options=options,
            registry=registry,
        )
    )

    async def in_a_loop() -> str:
        other = StorageRegistry()
        try:
            with pytest.raises(RuntimeError):
                presigned_url(url, storage_options=options, registry=other)
            return await apresigned_url(
                url,
                download_name="Q3.csv",
                as_attachment=True,
                storage_options=options,
                registry=other,
            )
        finally:
            await other.aclose()

    check(anyio.run(in_a_loop))
