"""Precompressed siblings (``a.csv.br`` / ``a.csv.gz`` beside ``a.csv``), as gzip_static does.

The bytes are compared raw: the client under test must not decode them, so every request
reads the body without content decoding.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

from sendfs import StorageFiles, send_file
from sendfs.responses.fields import with_encoding
from sendfs.storages import StorageRegistry
from tests.helpers import asgi_client

pytestmark = pytest.mark.anyio

ORIGINAL = b"name,total\n" + b"alice,1\n" * 500
GZIPPED = gzip.compress(ORIGINAL)
BROTLI = b"pretend-brotli:" + bytes(range(200))  # the server never decodes it


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "report.csv").write_bytes(ORIGINAL)
    (tmp_path / "report.csv.gz").write_bytes(GZIPPED)
    (tmp_path / "report.csv.br").write_bytes(BROTLI)
    (tmp_path / "plain.csv").write_bytes(ORIGINAL)
    (tmp_path / "only.txt.gz").write_bytes(GZIPPED)
    return tmp_path


async def fetch(app: httpx.AsyncClient, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its raw (undecoded) body."""
    request = app.build_request("GET", path, headers=headers)
    response = await app.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, raw


def files(root: Path, registry: StorageRegistry, **options: Any) -> httpx.AsyncClient:
    return asgi_client(StorageFiles(root, registry=registry, precompressed=True, **options))


@pytest.mark.parametrize(
    ("accept", "body", "encoding"),
    [
        ("br, gzip", BROTLI, "br"),
        ("gzip, br;q=0.5", GZIPPED, "gzip"),
        ("gzip", GZIPPED, "gzip"),
        ("x-gzip", GZIPPED, "gzip"),
        ("br;q=0, gzip;q=0", ORIGINAL, None),
        ("identity", ORIGINAL, None),
        ("", ORIGINAL, None),
    ],
)
async def test_the_best_accepted_sibling_is_served_with_its_encoding(
    root: Path, registry: StorageRegistry, accept: str, body: bytes, encoding: str | None
) -> None:
    async with files(root, registry) as app:
        response, raw = await fetch(app, "/report.csv", **{"accept-encoding": accept})
    assert response.status_code == 200
    assert raw == body
    assert response.headers.get("content-encoding") == encoding
    assert response.headers["content-length"] == str(len(body))
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'inline; filename="report.csv"'
    assert response.headers["vary"] == "accept-encoding"


async def test_each_encoding_has_its_own_etag_and_revalidates(
    root: Path, registry: StorageRegistry
) -> None:
    async with files(root, registry) as app:
        tags = {}
        for accept in ("br", "gzip", "identity"):
            response, _ = await fetch(app, "/report.csv", **{"accept-encoding": accept})
            tags[accept] = response.headers["etag"]
        assert len(set(tags.values())) == 3
        revalidated, raw = await fetch(
            app, "/report.csv", **{"accept-encoding": "gzip", "if-none-match": tags["gzip"]}
        )
        stale, _ = await fetch(
            app, "/report.csv", **{"accept-encoding": "br", "if-none-match": tags["gzip"]}
        )
    assert revalidated.status_code == 304
    assert raw == b""
    assert revalidated.headers["vary"] == "accept-encoding"
    assert stale.status_code == 200


async def test_ranges_count_the_encoded_bytes(root: Path, registry: StorageRegistry) -> None:
    async with files(root, registry) as app:
        response, raw = await fetch(
            app, "/report.csv", **{"accept-encoding": "gzip", "range": "bytes=10-19"}
        )
    assert response.status_code == 206
    assert raw == GZIPPED[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{len(GZIPPED)}"
    assert response.headers["content-encoding"] == "gzip"


async def test_head_answers_for_the_sibling(root: Path, registry: StorageRegistry) -> None:
    async with files(root, registry) as app:
        response = await app.head("/report.csv", headers={"accept-encoding": "br"})
    assert response.headers["content-length"] == str(len(BROTLI))
    assert response.headers["content-encoding"] == "br"


async def test_without_a_sibling_the_file_is_served_and_still_varies(
    root: Path, registry: StorageRegistry
) -> None:
    async with files(root, registry) as app:
        response, raw = await fetch(app, "/plain.csv", **{"accept-encoding": "br, gzip"})
        missing, _ = await fetch(app, "/nothing.csv", **{"accept-encoding": "br, gzip"})
        asked, raw_sibling = await fetch(app, "/report.csv.gz", **{"accept-encoding": "gzip"})
    assert raw == ORIGINAL
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "accept-encoding"
    assert missing.status_code == 404
    # Asked for by its own name, a sibling is a gzip file, not an encoding.
    assert raw_sibling == GZIPPED
    assert "content-encoding" not in asked.headers
    assert asked.headers["content-type"] == "application/gzip"


async def test_a_sibling_without_its_file_is_not_served(
    root: Path, registry: StorageRegistry
) -> None:
    # An uploaded evil.html.gz alone must not become an HTML page at /evil.html.
    (root / "evil.html.gz").write_bytes(gzip.compress(b"<script>alert(1)</script>"))
    async with files(root, registry) as app:
        for path in ("/only.txt", "/evil.html"):
            for accept in ("gzip", "identity"):
                response, _ = await fetch(app, path, **{"accept-encoding": accept})
                assert response.status_code == 404


async def test_a_sibling_older_than_its_file_is_stale(
    root: Path, registry: StorageRegistry
) -> None:
    import os

    stat = (root / "report.csv").stat()
    os.utime(root / "report.csv.gz", ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    async with files(root, registry) as app:
        response, raw = await fetch(app, "/report.csv", **{"accept-encoding": "gzip"})
    assert raw == ORIGINAL
    assert "content-encoding" not in response.headers


async def test_an_if_range_date_never_splices_two_encodings(
    root: Path, registry: StorageRegistry
) -> None:
    import os

    # gzip -k keeps the file's modification time: a date cannot tell the two apart.
    stat = (root / "report.csv").stat()
    os.utime(root / "report.csv.gz", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    async with files(root, registry) as app:
        first, _ = await fetch(app, "/report.csv", range="bytes=0-4")
        modified = first.headers["last-modified"]
        resumed, raw = await fetch(
            app,
            "/report.csv",
            **{"accept-encoding": "gzip", "range": "bytes=5-", "if-range": modified},
        )
        etag, _ = await fetch(app, "/report.csv", **{"accept-encoding": "gzip"})
        by_tag, part = await fetch(
            app,
            "/report.csv",
            **{"accept-encoding": "gzip", "range": "bytes=5-", "if-range": etag.headers["etag"]},
        )
    assert first.status_code == 206
    assert resumed.status_code == 200  # the whole gzip file, not its bytes 5- after identity's
    assert raw == GZIPPED
    assert by_tag.status_code == 206
    assert part == GZIPPED[5:]


async def test_off_by_default_for_send_file(root: Path, registry: StorageRegistry) -> None:
    async def endpoint() -> Any:
        return send_file(root / "report.csv", registry=registry)

    from tests.helpers import lilya_app

    async with asgi_client(lilya_app(endpoint)) as app:
        response, raw = await fetch(app, "/file", **{"accept-encoding": "br, gzip"})
    assert raw == ORIGINAL
    assert "vary" not in response.headers


async def test_the_callers_vary_is_kept(root: Path, registry: StorageRegistry) -> None:
    async with files(root, registry, headers={"Vary": "Cookie"}) as app:
        response, _ = await fetch(app, "/report.csv", **{"accept-encoding": "gzip"})
    assert response.headers["vary"] == "Cookie, accept-encoding"


@pytest.mark.s3
async def test_siblings_in_a_bucket_keep_the_files_stored_type(
    registry: StorageRegistry, s3_client: Any, bucket: str, moto_endpoint: str
) -> None:
    s3_client.put_object(
        Bucket=bucket, Key="site/data", Body=ORIGINAL, ContentType="application/json"
    )
    s3_client.put_object(
        Bucket=bucket, Key="site/data.gz", Body=GZIPPED, ContentType="application/gzip"
    )
    app_files = StorageFiles(
        f"s3://{bucket}/site",
        registry=registry,
        storage_options={"endpoint_url": moto_endpoint},
        precompressed=True,
    )
    async with asgi_client(app_files) as app:
        response, raw = await fetch(app, "/data", **{"accept-encoding": "br, gzip"})
        plain, _ = await fetch(app, "/data")
    assert raw == GZIPPED
    assert response.headers["content-encoding"] == "gzip"
    # The type stored with the sibling is the encoding's; the answer's is the file's.
    assert response.headers["content-type"] == plain.headers["content-type"]
    assert plain.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"precompressed": ("deflate",)}, ValueError, "deflate"),
        ({"precompressed": "br"}, ValueError, "list of names"),
        ({"precompressed": True, "redirect": True}, ValueError, "redirect"),
    ],
)
def test_a_bad_option_fails_when_built(
    root: Path, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        send_file(root / "report.csv", **options)


def test_a_file_object_has_no_siblings() -> None:
    import io

    with pytest.raises(ValueError, match="path or URL"):
        send_file(io.BytesIO(ORIGINAL), precompressed=True)


@pytest.mark.parametrize(
    ("fields", "encoding", "vary", "expected"),
    [
        ([], None, False, []),
        ([], "br", True, [(b"content-encoding", b"br"), (b"vary", b"accept-encoding")]),
        ([(b"vary", b"Accept-Encoding")], None, True, [(b"vary", b"Accept-Encoding")]),
        ([(b"vary", b"*")], None, True, [(b"vary", b"*")]),
        ([(b"vary", b"cookie")], None, True, [(b"vary", b"cookie, accept-encoding")]),
        ([(b"content-encoding", b"x")], "gzip", False, [(b"content-encoding", b"gzip")]),
    ],
)
def test_with_encoding(
    fields: list[tuple[bytes, bytes]],
    encoding: str | None,
    vary: bool,
    expected: list[tuple[bytes, bytes]],
) -> None:
    assert with_encoding(fields, encoding, vary=vary) == expected
