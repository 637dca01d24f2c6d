"""The exports page: a generated CSV, and a zip of S3 objects, a file and a generated entry."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

import sendfs
from tests.helpers import asgi_client
from tests.snippets import load_snippet

pytestmark = pytest.mark.anyio


async def test_the_csv_export_streams_the_rows() -> None:
    async with asgi_client(load_snippet("exports_csv").app) as client:
        response = await client.get("/orders.csv")
    assert response.text.splitlines() == [
        "id,region,total",
        "1,north,9.5",
        "2,south,12.0",
        "3,east,7.25",
    ]
    assert response.headers["content-disposition"] == 'attachment; filename="orders.csv"'
    assert "content-length" not in response.headers


@pytest.mark.s3
async def test_the_zip_export_bundles_s3_objects_a_file_and_a_summary(
    s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_client.create_bucket(Bucket="acme-reports")
    s3_client.put_object(Bucket="acme-reports", Key="q3/report.pdf", Body=b"%PDF q3")
    s3_client.put_object(Bucket="acme-reports", Key="q3/invoices.csv", Body=b"n,amount\n1,5\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "export-readme.txt").write_bytes(b"Quarterly export.\n")
    snippet = load_snippet("exports_zip")
    async with asgi_client(snippet.app) as client:
        response = await client.get("/exports/q3.zip")
    await sendfs.registry.aclose()
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-disposition"] == 'attachment; filename="acme-q3.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    assert archive.read("q3/report.pdf") == b"%PDF q3"
    assert archive.read("q3/invoices.csv") == b"n,amount\n1,5\n"
    assert archive.read("README.txt") == b"Quarterly export.\n"
    assert archive.read("summary.csv") == snippet.SUMMARY
