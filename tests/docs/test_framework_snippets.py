"""The FastAPI and Starlette recipes: the same calls work in both frameworks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from tests.helpers import asgi_client
from tests.snippets import load_snippet


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "manual.pdf").write_bytes(b"%PDF manual" * 50)
    yield
    # The snippets put their demo data in the process-wide memory filesystem when imported.
    memory = fsspec.filesystem("memory")
    for root in ("/exports", "/public"):
        if memory.exists(root):
            memory.rm(root, recursive=True)


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["fastapi_app", "starlette_app"])
@pytest.mark.usefixtures("files")
async def test_framework_recipe_serves_files_ranges_exports_and_mounts(name: str) -> None:
    app = load_snippet(name).app
    async with asgi_client(app) as client:
        manual = await client.get("/manual")
        part = await client.get("/manual", headers={"Range": "bytes=-6"})
        head = await client.head("/manual")
        export = await client.get("/exports/orders.csv")
        missing = await client.get("/exports/nothing.csv")
        climbing = await client.get("/exports/..%2Fpublic%2Flogo.svg")
        logo = await client.get("/public/logo.svg")
    assert manual.status_code == 200
    assert manual.content == b"%PDF manual" * 50
    assert manual.headers["content-type"] == "application/pdf"
    assert part.status_code == 206
    assert part.content == b"manual"
    assert head.headers["content-length"] == str(11 * 50)
    assert head.content == b""
    assert export.content == b"id,total\n1,9.50\n"
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"] == 'attachment; filename="orders.csv"'
    assert missing.status_code == 404
    assert climbing.status_code == 404
    assert logo.content == b"<svg/>"
    assert logo.headers["cache-control"] == "public, max-age=300"
