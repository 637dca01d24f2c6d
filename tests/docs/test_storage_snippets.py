"""The snippets of the landing page, the quickstart and the named-storages pages, run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sendfs import registry
from sendfs.exceptions import SourceNotFound
from sendfs.storages import Resource
from tests.helpers import asgi_client
from tests.snippets import load_snippet


@pytest.fixture
def media_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """MEDIA_URL / PUBLIC_URL pointing at a local directory; the mounts forgotten afterwards."""
    root = tmp_path / "media"
    (root / "avatars").mkdir(parents=True)
    (root / "attachments").mkdir()
    (root / "avatars" / "7.png").write_bytes(b"\x89PNG avatar 7")
    (root / "attachments" / "q3 report.pdf").write_bytes(b"%PDF-q3")
    (tmp_path / "secret.txt").write_bytes(b"outside the mount")
    monkeypatch.setenv("MEDIA_URL", str(root))
    monkeypatch.setenv("PUBLIC_URL", str(root))
    yield root
    if "media" in registry:
        registry.unregister("media")


@pytest.mark.anyio
async def test_quickstart_serves_the_manual_inline_and_as_attachment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manual.pdf").write_bytes(b"%PDF-1.7 manual" * 100)
    app = load_snippet("quickstart").app
    async with asgi_client(app) as client:
        inline = await client.get("/manual")
        part = await client.get("/manual", headers={"Range": "bytes=0-7"})
        saved = await client.get("/manual/download")
    assert inline.status_code == 200
    assert inline.content == b"%PDF-1.7 manual" * 100
    assert inline.headers["content-type"] == "application/pdf"
    assert inline.headers["cache-control"] == "public, max-age=3600"
    assert inline.headers["content-disposition"] == 'inline; filename="manual.pdf"'
    assert part.status_code == 206
    assert part.content == b"%PDF-1.7"
    assert saved.headers["content-disposition"] == 'attachment; filename="Manual 2025.pdf"'


@pytest.mark.anyio
async def test_quickstart_answers_404_when_the_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with asgi_client(load_snippet("quickstart").app) as client:
        response = await client.get("/manual")
    assert response.status_code == 404


@pytest.mark.anyio
@pytest.mark.s3
async def test_landing_serves_a_report_from_s3_and_a_local_logo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_client: Any
) -> None:
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket="reports")  # the bucket the landing example names
    s3_client.put_object(Bucket="reports", Key="2025.pdf", Body=b"%PDF report 2025")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "logo.png").write_bytes(b"\x89PNG logo")
    app = load_snippet("landing").app
    async with asgi_client(app) as client:
        report = await client.get("/reports/2025")
        missing = await client.get("/reports/1999")
        logo = await client.get("/logo")
    await registry.aclose()
    assert report.status_code == 200
    assert report.content == b"%PDF report 2025"
    assert report.headers["content-disposition"] == 'attachment; filename="2025.pdf"'
    assert report.headers["etag"].startswith('"')
    assert missing.status_code == 404
    assert logo.content == b"\x89PNG logo"
    assert logo.headers["content-type"] == "image/png"


@pytest.mark.anyio
async def test_named_storage_serves_app_paths_and_confines_user_paths(media_dir: Path) -> None:
    app = load_snippet("named_storages").app
    async with asgi_client(app) as client:
        avatar = await client.get("/avatars/7")
        no_avatar = await client.get("/avatars/8")
        attachment = await client.get("/attachments/q3 report.pdf")
        climbing = await client.get("/attachments/..%2F..%2Fsecret.txt")
        encoded = await client.get("/attachments/%252e%252e%252f%252e%252e%252fsecret.txt")
    assert avatar.status_code == 200
    assert avatar.content == b"\x89PNG avatar 7"
    assert avatar.headers["cache-control"] == "public, max-age=86400"
    assert no_avatar.status_code == 404
    assert attachment.content == b"%PDF-q3"
    assert attachment.headers["content-disposition"].startswith("attachment;")
    assert climbing.status_code == 404
    assert encoded.status_code == 404
    assert b"outside" not in climbing.content + encoded.content


@pytest.mark.anyio
async def test_storage_files_lists_directories_and_serves_files(media_dir: Path) -> None:
    (media_dir / "docs").mkdir()
    (media_dir / "docs" / "index.html").write_text("<h1>Docs</h1>")
    (media_dir / "docs" / "guide").mkdir()
    (media_dir / "docs" / "guide" / "index.html").write_text("<h1>Guide</h1>")
    app = load_snippet("storage_files").app
    async with asgi_client(app) as client:
        listing = await client.get("/files/avatars/")
        avatar = await client.get("/files/avatars/7.png")
        site = await client.get("/docs/")
        bare = await client.get("/docs/guide", follow_redirects=False)
        climbing = await client.get("/files/..%2Fsecret.txt")
    assert listing.status_code == 200
    assert '<a href="7.png">7.png</a>' in listing.text
    assert avatar.content == b"\x89PNG avatar 7"
    assert avatar.headers["cache-control"] == "public, max-age=300"
    assert site.text == "<h1>Docs</h1>"
    assert bare.status_code == 307
    assert bare.headers["location"].endswith("/docs/guide/")
    assert climbing.status_code == 404


class _Closing:
    """A backend that records when the registry closes it."""

    def __init__(self) -> None:
        self.closed = 0

    async def open(self, source: Any, **options: Any) -> Resource:
        raise SourceNotFound(source)  # never opened: the test is about closing

    async def aclose(self) -> None:
        self.closed += 1


@pytest.mark.anyio
async def test_own_lifespan_runs_its_work_and_closes_storage_sessions() -> None:
    snippet = load_snippet("lifespan")
    backend = _Closing()
    registry.register("closing-test", backend)
    try:
        async with snippet.lifespan(snippet.app):
            assert snippet.started == ["database pool"]
            assert backend.closed == 0
        assert backend.closed == 1
        assert snippet.started == []
    finally:
        registry.unregister("closing-test")
