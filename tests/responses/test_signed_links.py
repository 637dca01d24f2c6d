"""Signed, expiring links through a response: refused before the storage is touched."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lilya.apps import Lilya
from lilya.routing import Include
from lilya.routing import Path as Route

from sendfs import LinkSigner, StorageFiles, send_from_storage
from tests.helpers import SpyRegistry, asgi_client, captured_logs

pytestmark = pytest.mark.anyio

SECRET = "s" * 32
OLD_SECRET = "o" * 32
CONTENT = b"quarterly numbers\n"


@pytest.fixture
async def registry() -> AsyncIterator[SpyRegistry]:
    registry = SpyRegistry()
    try:
        yield registry
    finally:
        await registry.aclose()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "q 3.csv").write_bytes(CONTENT)
    (tmp_path / "other.csv").write_bytes(CONTENT)
    return tmp_path


def app(root: Path, registry: SpyRegistry, signer: LinkSigner) -> Any:
    async def download(request: Any) -> Any:
        path = request.path_params["name"]
        return send_from_storage(root, path, registry=registry, signer=signer)

    files = StorageFiles(root, registry=registry, signer=signer)
    return Lilya(
        routes=[
            Route("/get/{name:path}", download),
            Include("/files", app=files),
        ]
    )


@pytest.mark.parametrize("prefix", ["/get", "/files"])
async def test_only_a_valid_link_for_that_path_downloads(
    root: Path, registry: SpyRegistry, prefix: str
) -> None:
    signer = LinkSigner([SECRET])
    link = signer.sign(f"{prefix}/q 3.csv", expires_in=60)
    expired = LinkSigner([SECRET], clock=lambda: time.time() - 7200).sign(
        f"{prefix}/q 3.csv", expires_in=60
    )
    other = signer.sign(f"{prefix}/other.csv")
    async with asgi_client(app(root, registry, signer)) as client:
        ok = await client.get(link)
        head = await client.head(link)
        registry.opened = 0
        refused = [
            await client.get(f"{prefix}/q%203.csv"),
            await client.get(expired),
            await client.get(link.replace("expires=", "expires=1")),
            await client.get(link[:-2] + "AA"),
            await client.get(other.replace("other.csv", "q%203.csv")),
        ]
    assert ok.status_code == 200
    assert ok.content == CONTENT
    assert head.status_code == 200
    assert [response.status_code for response in refused] == [403] * 5
    assert registry.opened == 0  # refused before any storage call


async def test_rotated_keys_are_accepted_until_removed(root: Path, registry: SpyRegistry) -> None:
    old_link = LinkSigner([OLD_SECRET]).sign("/get/q 3.csv")
    async with asgi_client(app(root, registry, LinkSigner([SECRET, OLD_SECRET]))) as client:
        assert (await client.get(old_link)).status_code == 200
    async with asgi_client(app(root, registry, LinkSigner([SECRET]))) as client:
        assert (await client.get(old_link)).status_code == 403


async def test_refusals_are_logged_at_debug_only(root: Path, registry: SpyRegistry) -> None:
    async with asgi_client(app(root, registry, LinkSigner([SECRET]))) as client:
        with captured_logs() as records:
            response = await client.get("/get/q%203.csv?expires=1&signature=x")
    assert response.status_code == 403
    assert records
    assert max(record.levelno for record in records) == logging.DEBUG


def test_listings_do_not_mix_with_signed_links(root: Path) -> None:
    with pytest.raises(ValueError, match="signer"):
        StorageFiles(root, listing=True, signer=LinkSigner([SECRET]))


def test_signer_must_be_a_link_signer(root: Path) -> None:
    with pytest.raises(TypeError, match="LinkSigner"):
        send_from_storage(root, "other.csv", signer=SECRET)
