"""The Azure guide's app, against the Azurite emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

import sendfs
from tests.helpers import asgi_client
from tests.snippets import load_snippet

pytestmark = [pytest.mark.anyio, pytest.mark.azure]


@pytest.fixture
def contracts(azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("contracts")
    container.upload_blob("2026/acme.pdf", b"%PDF acme")
    container.upload_blob("public/brochure.pdf", b"%PDF brochure")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    try:
        yield
    finally:
        sendfs.registry.unregister("contracts")
        service.delete_container("contracts")


@pytest.mark.usefixtures("contracts")
async def test_the_azure_guide_app_serves_redirects_and_confines_paths() -> None:
    app = load_snippet("azure").app
    async with asgi_client(app) as client:
        contract = await client.get("/contracts/2026/acme.pdf")
        escape = await client.get("/contracts/..%2Fother/secret.pdf")
        brochure = await client.get("/brochure")
        public = await client.get("/public/brochure.pdf", headers={"Range": "bytes=0-3"})
    await sendfs.registry.aclose()
    assert contract.content == b"%PDF acme"
    assert contract.headers["content-disposition"] == 'attachment; filename="acme.pdf"'
    assert escape.status_code == 404
    assert brochure.status_code == 307
    followed = await anyio.to_thread.run_sync(httpx.get, brochure.headers["location"])
    assert followed.content == b"%PDF brochure"
    assert followed.headers["content-type"] == "application/pdf"
    assert (public.status_code, public.content) == (206, b"%PDF")
    assert public.headers["cache-control"] == "public, max-age=3600"
