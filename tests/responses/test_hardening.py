"""Regression tests for findings of the code review: each one failed before its fix."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.routing import Include

from sendfs import FileResponse, StorageFiles, UnsafePath, send_file, send_from_storage
from sendfs.responses.headers import clean_filename
from sendfs.storages import LocalBackend, StorageRegistry
from sendfs.storages.fileobj import FileObjBackend
from sendfs.storages.metadata import info_from_fsspec
from tests.helpers import asgi_client, lilya_app

pytestmark = pytest.mark.anyio


async def test_url_query_in_a_user_path_cannot_select_an_old_s3_version(
    s3_client: Any, bucket: str, storage_registry: StorageRegistry
) -> None:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3_client.put_object(Bucket=bucket, Key="pub/report.txt", Body=b"OLD SECRET")
    s3_client.put_object(Bucket=bucket, Key="pub/report.txt", Body=b"new")
    for path in (f"report.txt?versionId={old['VersionId']}", "report.txt#x"):
        with pytest.raises(UnsafePath):
            storage_registry.locate(f"s3://{bucket}/pub", path)
        with pytest.raises(HTTPException) as caught:
            send_from_storage(f"s3://{bucket}/pub", path, registry=storage_registry)
        assert caught.value.status_code == 404
    app = Lilya(
        routes=[Include("/f", app=StorageFiles(f"s3://{bucket}/pub", registry=storage_registry))]
    )
    async with asgi_client(app) as client:
        response = await client.get(f"/f/report.txt%3FversionId%3D{old['VersionId']}")
    assert response.status_code == 404
    assert b"SECRET" not in response.content


def test_local_names_with_hash_and_question_mark_are_still_served(tmp_path: Path) -> None:
    resolved = StorageRegistry().locate(tmp_path, "C#?.txt")
    assert resolved.target == f"{tmp_path}/C#?.txt"


async def test_not_modified_carries_the_callers_cache_control(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")

    async def endpoint() -> FileResponse:
        return send_file(path, headers={"Cache-Control": "private, max-age=60"})

    async with asgi_client(lilya_app(endpoint)) as client:
        full = await client.get("/file")
        again = await client.get("/file", headers={"If-None-Match": full.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == full.headers["cache-control"] == "private, max-age=60"
    assert again.headers["etag"] == full.headers["etag"]


@pytest.mark.parametrize("name", ["ETag", "last-modified"])
def test_validators_in_headers_are_refused_with_the_option_to_use(name: str) -> None:
    with pytest.raises(ValueError, match="option"):
        send_file("/etc/hostname", headers={name: '"x"'})


@pytest.mark.parametrize("status", [204, 205, 206, 304, 416, 199])
def test_statuses_that_cannot_carry_a_whole_file_are_refused(status: int) -> None:
    with pytest.raises(ValueError, match="status_code"):
        send_file("/etc/hostname", status_code=status)


def test_weak_user_etag_is_refused() -> None:
    with pytest.raises(ValueError, match="strong"):
        send_file("/etc/hostname", etag='W/"x"')


def test_bad_disposition_type_is_refused() -> None:
    with pytest.raises(ValueError):
        FileResponse("/etc/hostname", content_disposition_type="inline\r\nX: y")


async def test_binary_zip_member_is_served(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner.bin", b"zipped bytes")

    async def endpoint() -> FileResponse:
        return send_file(zipfile.ZipFile(archive).open("inner.bin"), download_name="inner.bin")

    async with asgi_client(lilya_app(endpoint)) as client:
        response = await client.get("/file")
    assert response.content == b"zipped bytes"


def test_url_name_never_carries_its_query() -> None:
    info = info_from_fsspec(
        {"name": "https://h/a.pdf?X-Amz-Signature=secret", "size": 3, "ETag": '"t"'},
        path="https://h/a.pdf?X-Amz-Signature=secret",
    )
    assert info.name == "a.pdf"


def test_weak_storage_etag_is_replaced_by_a_derived_strong_one() -> None:
    info = info_from_fsspec(
        {"name": "a", "size": 3, "ETag": 'W/"weak"', "mtime": 1_700_000_000.0}, path="a"
    )
    assert info.etag is not None
    assert info.etag != "weak"


def test_bidi_override_is_dropped_from_download_names() -> None:
    assert clean_filename("evil\u202etxt.exe") == "eviltxt.exe"


async def test_directory_index_gets_the_file_options(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("<p>hi</p>")
    app = Lilya(routes=[Include("/f", app=StorageFiles(tmp_path, html=True, max_age=60))])
    async with asgi_client(app) as client:
        response = await client.get("/f/docs/")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"


async def test_confined_open_uses_the_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(b"x")
    os.symlink(tmp_path / "real.bin", tmp_path / "link.bin")
    resource = await LocalBackend().open(str(tmp_path / "link.bin"), root=str(tmp_path))
    try:
        assert resource.path == os.path.realpath(tmp_path / "real.bin")
    finally:
        await resource.aclose()


async def test_file_object_is_closed_even_in_a_cancelled_scope() -> None:
    buffer = io.BufferedReader(io.BytesIO(b"abc"))  # closed through a worker thread
    resource = await FileObjBackend().open(buffer)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await resource.aclose()
    assert buffer.closed
