"""The large-file and in-memory recipes of the documentation, run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import asgi_client, http_scope
from tests.snippets import load_snippet

MiB = 1024 * 1024


@pytest.fixture
def iso_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "isos"
    directory.mkdir()
    (directory / "disk.iso").write_bytes(bytes(range(256)) * (3 * MiB // 256 + 1))
    monkeypatch.setenv("ISO_DIR", str(directory))
    return directory


async def _run(app: Any, path: str, extensions: dict[str, Any]) -> list[dict[str, Any]]:
    scope = {**http_scope(), "path": path, "raw_path": path.encode(), "extensions": extensions}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_large_file_streams_in_1_mib_messages_under_a_plain_server(iso_dir: Path) -> None:
    data = (iso_dir / "disk.iso").read_bytes()
    sent = await _run(load_snippet("large_files").app, "/isos/disk.iso", {})
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert b"".join(bodies) == data
    assert max(len(body) for body in bodies) == MiB


@pytest.mark.anyio
async def test_a_path_the_app_chose_goes_to_the_server_when_it_offers_pathsend(
    iso_dir: Path,
) -> None:
    sent = await _run(
        load_snippet("large_files").app, "/isos/current", {"http.response.pathsend": {}}
    )
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert Path(sent[1]["path"]).samefile(iso_dir / "disk.iso")


@pytest.mark.anyio
async def test_a_user_named_file_streams_even_when_the_server_offers_pathsend(
    iso_dir: Path,
) -> None:
    data = (iso_dir / "disk.iso").read_bytes()
    sent = await _run(
        load_snippet("large_files").app, "/isos/disk.iso", {"http.response.pathsend": {}}
    )
    assert "http.response.pathsend" not in [m["type"] for m in sent]
    assert b"".join(m["body"] for m in sent if m["type"] == "http.response.body") == data


@pytest.mark.anyio
async def test_large_file_ranges_and_confinement(iso_dir: Path) -> None:
    data = (iso_dir / "disk.iso").read_bytes()
    async with asgi_client(load_snippet("large_files").app) as client:
        resumed = await client.get("/isos/disk.iso", headers={"Range": f"bytes={2 * MiB}-"})
        climbing = await client.get("/isos/..%2F..%2Fetc%2Fpasswd")
    assert resumed.status_code == 206
    assert resumed.content == data[2 * MiB :]
    assert climbing.status_code == 404


@pytest.mark.anyio
async def test_in_memory_exports_are_served_with_names_types_and_ranges() -> None:
    async with asgi_client(load_snippet("in_memory").app) as client:
        csv_file = await client.get("/exports/orders.csv")
        csv_tail = await client.get("/exports/orders.csv", headers={"Range": "bytes=-6"})
        log = await client.get("/exports/orders.log")
        pdf = await client.get("/invoices/42")
    assert csv_file.content == b"id,total\r\n1,9.50\r\n2,120.00\r\n3,0.99\r\n"
    assert csv_file.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv_file.headers["content-disposition"] == 'attachment; filename="orders.csv"'
    assert csv_tail.status_code == 206
    assert csv_tail.content == b"0.99\r\n"
    assert log.content == b"order 1: 9.50\norder 2: 120.00\norder 3: 0.99\n"
    assert "etag" not in log.headers
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'inline; filename="invoice-42.pdf"'
    assert pdf.headers["cache-control"] == "public, max-age=0"
    assert pdf.content.startswith(b"%PDF-1.4\n")
    assert b"(Invoice 42) Tj" in pdf.content


def test_the_generated_pdf_has_a_correct_cross_reference_table() -> None:
    out = io.BytesIO()
    load_snippet("in_memory").write_invoice_pdf(out, 7)
    pdf = out.getvalue()
    startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[startxref:].startswith(b"xref\n0 6\n")
    entries = pdf[startxref:].split(b"\n")[3:8]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry[:10])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)
    assert pdf.endswith(b"%%EOF\n")
