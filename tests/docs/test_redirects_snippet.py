"""The redirects page: its app answers 307 to presigned URLs that serve the object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import sendfs
from tests.helpers import asgi_client
from tests.snippets import load_snippet

pytestmark = [pytest.mark.anyio, pytest.mark.s3]


@pytest.fixture
def media(s3_client: Any) -> Iterator[None]:
    s3_client.create_bucket(Bucket="acme-media")
    s3_client.put_object(Bucket="acme-media", Key="uploads/videos/intro.mp4", Body=b"\x00" * 999)
    try:
        yield
    finally:
        sendfs.registry.unregister("media")


@pytest.mark.usefixtures("media")
async def test_the_redirect_recipe_sends_clients_to_presigned_s3_urls() -> None:
    app = load_snippet("redirects").app
    async with asgi_client(app) as client:
        video = await client.get("/videos/intro.mp4")
        listed = await client.get("/files/videos/intro.mp4")
        missing = await client.get("/videos/outro.mp4")
    assert video.status_code == listed.status_code == 307
    followed = httpx.get(video.headers["location"])
    assert followed.content == b"\x00" * 999
    assert followed.headers["content-type"] == "video/mp4"
    assert followed.headers["content-disposition"] == 'attachment; filename="intro.mp4"'
    assert httpx.get(listed.headers["location"]).content == b"\x00" * 999
    assert missing.status_code == 404
    await sendfs.registry.aclose()
