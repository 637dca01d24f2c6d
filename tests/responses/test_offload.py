"""Front-server offload in the core: which answers hand the bytes over, and what they carry.

The end-to-end proof, with nginx and lighttpd sending the bytes, is in
``tests/e2e/test_offload.py``; here each decision is checked in-process through the Lilya
face, with moto's S3 server for objects.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import fsspec
import httpx
import pytest

from sendfs import (
    FileResponse,
    StorageFiles,
    XAccelRedirect,
    XSendfile,
    send_file,
    send_from_storage,
)
from sendfs.responses.offload import bind_root, local_target, offload_fields
from sendfs.storages import StorageRegistry
from tests.helpers import asgi_client, lilya_app

pytestmark = pytest.mark.anyio

CONTENT = b"0123456789" * 1000
NGINX = XAccelRedirect("/_files/")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    (files / "sub dir").mkdir(parents=True)
    (files / "sub dir" / "50% off #1.pdf").write_bytes(CONTENT)
    (files / "a.txt").write_bytes(CONTENT)
    (tmp_path / "outside.txt").write_bytes(CONTENT)
    return files


def client(registry: StorageRegistry, source: Any, **options: Any) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_file(source, registry=registry, **options)

    return asgi_client(lilya_app(endpoint))


def stored_client(
    registry: StorageRegistry, root: Any, path: str, **options: Any
) -> httpx.AsyncClient:
    async def endpoint() -> FileResponse:
        return send_from_storage(root, path, registry=registry, **options)

    return asgi_client(lilya_app(endpoint))


# -- pure decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offload", "path", "expected"),
    [
        (XAccelRedirect("/_f/", root="/srv"), "/srv/a.pdf", "/_f/a.pdf"),
        (XAccelRedirect("/_f/", root="/srv"), "/srv/d/é 1%#?.pdf", "/_f/d/%C3%A9%201%25%23%3F.pdf"),
        (XAccelRedirect("/_f/", root="/srv"), "/srv-private/a.pdf", None),
        (XAccelRedirect("/_f/", root="/srv"), "/srv", None),
        (XAccelRedirect("/_f/", root="/srv"), "/srv/../etc/passwd", None),
        (XAccelRedirect(remote="/_r"), "/srv/a.pdf", None),
        (XSendfile(), "/srv/a b.pdf", "/srv/a%20b.pdf"),
        (XSendfile(root="/srv"), "/other/a.pdf", None),
        (XSendfile(root="/srv", location="/mnt/data"), "/srv/d/a.pdf", "/mnt/data/d/a.pdf"),
    ],
)
def test_local_target_maps_a_path_under_the_root_only(
    offload: XAccelRedirect | XSendfile, path: str, expected: str | None
) -> None:
    assert local_target(offload, path) == expected


def test_a_location_without_a_root_cannot_be_mapped() -> None:
    with pytest.raises(ValueError, match="give root="):
        local_target(XAccelRedirect("/_f/"), "/srv/a.pdf")


def test_bind_root_fills_only_a_missing_local_root() -> None:
    assert bind_root(NGINX, "/srv").root == "/srv"
    assert bind_root(XAccelRedirect("/_f/", root="/a"), "/srv").root == "/a"
    assert bind_root(NGINX, "s3://bucket/x").root is None
    assert bind_root(NGINX, None) is NGINX


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: XAccelRedirect(), "location= .* or remote="),
        (lambda: XAccelRedirect("_files/"), "starting with '/'"),
        (lambda: XAccelRedirect("/_files"), "must end with '/'"),
        (lambda: XAccelRedirect("/_f/\r\nX-Evil: 1/"), "CR, LF"),
        (lambda: XAccelRedirect(remote="/_r?x=1"), "'\\?'"),
        (lambda: XAccelRedirect("/_f/", root="s3://bucket"), "is a URL"),
        (lambda: XAccelRedirect(remote="/_r", expires=0), "expires"),
        (lambda: XAccelRedirect(remote="/_r", expires=10**8), "expires"),
        (lambda: XAccelRedirect("/_fïles/"), "ASCII"),
        (lambda: XSendfile(location="/mnt"), "root="),
        (lambda: XSendfile(root="/srv", location="mnt"), "absolute"),
        (lambda: XSendfile(header="X-Accel-Redirect"), "X-Sendfile"),
    ],
)
def test_a_bad_offload_fails_when_it_is_built(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_offload_fields_keep_the_apps_fields_and_protect_their_own() -> None:
    caller = [
        (b"x-accel-redirect", b"/etc/passwd"),
        (b"content-length", b"99"),
        (b"cache-control", b"private"),
        (b"set-cookie", b"a=1"),
    ]
    fields = offload_fields(
        NGINX,
        "/_files/a.pdf",
        media_type="application/pdf",
        disposition='attachment; filename="a.pdf"',
        max_age=60,
        caller=caller,
    )
    assert fields == [
        (b"content-type", b"application/pdf"),
        (b"content-disposition", b'attachment; filename="a.pdf"'),
        (b"cache-control", b"private"),
        (b"set-cookie", b"a=1"),
        (b"x-accel-redirect", b"/_files/a.pdf"),
        (b"content-length", b"0"),
    ]


def test_a_proxied_object_carries_the_presigned_url() -> None:
    fields = dict(
        offload_fields(
            XAccelRedirect(remote="/_r"),
            "/_r",
            media_type="text/csv",
            disposition=None,
            max_age=None,
            caller=[],
            reproxy_url="http://127.0.0.1:9/b/a.csv?X-Amz-Signature=x",
        )
    )
    assert b"content-disposition" not in fields
    assert fields[b"x-reproxy-url"] == b"http://127.0.0.1:9/b/a.csv?X-Amz-Signature=x"
    assert fields[b"x-accel-redirect"] == b"/_r"
    assert fields[b"cache-control"] == b"no-cache"


async def test_a_storage_whose_urls_carry_no_name_keeps_the_apps_disposition(
    registry: StorageRegistry,
) -> None:
    from tests.storages.test_fsspec_sign import signing_memory

    with signing_memory():
        async with client(
            registry,
            "signedmem://bucket/a.csv",
            offload=XAccelRedirect(remote="/_r"),
            as_attachment=True,
        ) as app:
            response = await app.get("/file")
    assert response.headers["x-reproxy-url"].startswith("https://signed.example/bucket/a.csv")
    assert response.headers["content-disposition"] == 'attachment; filename="a.csv"'


# -- through a face ------------------------------------------------------------------------------


async def test_a_local_file_is_handed_to_nginx_with_the_apps_fields(
    registry: StorageRegistry, root: Path
) -> None:
    offload = XAccelRedirect("/_files/", root=str(root))
    source = root / "sub dir" / "50% off #1.pdf"
    async with client(registry, source, offload=offload, as_attachment=True, max_age=60) as app:
        for method in ("GET", "HEAD"):
            response = await app.request(method, "/file", headers={"range": "bytes=0-1"})
            assert response.status_code == 200  # nginx answers the range
            assert response.content == b""
            assert (
                response.headers["x-accel-redirect"] == "/_files/sub%20dir/50%25%20off%20%231.pdf"
            )
            assert unquote(response.headers["x-accel-redirect"]) == "/_files/sub dir/50% off #1.pdf"
            assert response.headers["content-length"] == "0"
            assert response.headers["content-type"] == "application/pdf"
            assert response.headers["content-disposition"].startswith("attachment;")
            assert response.headers["cache-control"] == "public, max-age=60"
            for own in ("etag", "last-modified", "accept-ranges"):
                assert own not in response.headers  # nginx sends its own


async def test_conditional_requests_are_left_to_the_front_server(
    registry: StorageRegistry, root: Path
) -> None:
    offload = XAccelRedirect("/_files/", root=str(root))
    async with client(registry, root / "a.txt", offload=offload) as app:
        response = await app.get("/file", headers={"if-none-match": "*"})
    assert response.status_code == 200
    assert response.headers["x-accel-redirect"] == "/_files/a.txt"


async def test_send_from_storage_and_storage_files_fill_in_their_root(
    registry: StorageRegistry, root: Path
) -> None:
    async with stored_client(registry, root, "sub dir/50% off #1.pdf", offload=NGINX) as app:
        response = await app.get("/file")
    assert unquote(response.headers["x-accel-redirect"]) == "/_files/sub dir/50% off #1.pdf"
    files = StorageFiles(root, registry=registry, offload=NGINX)
    async with asgi_client(files) as app:
        response = await app.get("/sub%20dir/50%25%20off%20%231.pdf")
        missing = await app.get("/nothing.txt")
    assert unquote(response.headers["x-accel-redirect"]) == "/_files/sub dir/50% off #1.pdf"
    assert missing.status_code == 404
    assert "x-accel-redirect" not in missing.headers


async def test_a_mount_offloads_its_files_unless_the_call_says_otherwise(
    registry: StorageRegistry, root: Path
) -> None:
    registry.mount("media", str(root), offload=XAccelRedirect("/_media/"))
    async with client(registry, "media://a.txt") as app:
        mounted = await app.get("/file")
    async with stored_client(registry, "media", "sub dir/50% off #1.pdf") as app:
        located = await app.get("/file")
    async with client(registry, "media://a.txt", offload=XSendfile()) as app:
        overridden = await app.get("/file")
    assert mounted.headers["x-accel-redirect"] == "/_media/a.txt"
    assert unquote(located.headers["x-accel-redirect"]) == "/_media/sub dir/50% off #1.pdf"
    assert overridden.headers["x-sendfile"] == str(root / "a.txt")
    assert "x-accel-redirect" not in overridden.headers


async def test_what_an_offload_does_not_cover_is_sent_by_the_app(
    registry: StorageRegistry, root: Path
) -> None:
    offload = XAccelRedirect("/_files/", root=str(root), remote="/_r")
    with fsspec.open("memory://offload/a.txt", "wb") as handle:
        handle.write(CONTENT)
    # A file outside the root; a storage that cannot presign.
    for source in (root.parent / "outside.txt", "memory://offload/a.txt"):
        async with client(registry, source, offload=offload) as app:
            response = await app.get("/file")
        assert response.status_code == 200
        assert response.content == CONTENT
        assert "x-accel-redirect" not in response.headers


@pytest.mark.parametrize(
    ("source", "offload", "message"),
    [
        ("bytesio", NGINX, "only the app"),
        ("local", XAccelRedirect(remote="/_r"), "needs location="),
        ("memory://a.txt", XSendfile(), "XAccelRedirect\\(remote="),
        ("memory://a.txt", XAccelRedirect("/_files/", root="/srv"), "XAccelRedirect\\(remote="),
    ],
)
def test_an_offload_that_can_never_apply_fails_when_built(
    root: Path, source: str, offload: XAccelRedirect | XSendfile, message: str
) -> None:
    chosen: Any = {"bytesio": io.BytesIO(CONTENT), "local": root / "a.txt"}.get(source, source)
    with pytest.raises(ValueError, match=message):
        send_file(chosen, offload=offload)
    if source == "local":
        with pytest.raises(ValueError, match=message):
            StorageFiles(root, offload=offload)


async def test_a_missing_file_is_still_the_apps_404(registry: StorageRegistry, root: Path) -> None:
    offload = XAccelRedirect("/_files/", root=str(root))
    async with client(registry, root / "missing.pdf", offload=offload) as app:
        response = await app.get("/file")
    assert response.status_code == 404
    assert "x-accel-redirect" not in response.headers


async def test_x_sendfile_names_the_percent_encoded_path(
    registry: StorageRegistry, root: Path
) -> None:
    source = root / "sub dir" / "50% off #1.pdf"
    async with client(registry, source, offload=XSendfile()) as app:
        response = await app.get("/file")
    assert unquote(response.headers["x-sendfile"]) == str(source)
    assert response.headers["content-length"] == "0"
    lighttpd = XSendfile(root=str(root), location="/data", header="X-LIGHTTPD-send-file")
    async with client(registry, source, offload=lighttpd) as app:
        response = await app.get("/file")
    assert response.headers["x-lighttpd-send-file"] == "/data/sub%20dir/50%25%20off%20%231.pdf"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"offload": NGINX}, "give root="),
        ({"offload": XSendfile(), "status_code": 201}, "plain 200"),
        ({"offload": XSendfile(), "conditional": False}, "plain 200"),
        ({"offload": XSendfile(), "etag": "v1"}, "validators"),
        ({"offload": XSendfile(), "last_modified": 0.0}, "validators"),
        ({"offload": XSendfile(), "precompressed": True}, "gzip_static"),
    ],
)
def test_a_conflicting_option_fails_when_the_response_is_built(
    root: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        send_file(root / "a.txt", **options)


def test_offload_must_be_one_of_the_two(root: Path) -> None:
    with pytest.raises(TypeError, match="XAccelRedirect or XSendfile"):
        send_file(root / "a.txt", offload="/_files/")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="XAccelRedirect or XSendfile"):
        StorageRegistry().mount("m", str(root), offload="/_files/")  # type: ignore[arg-type]


# -- objects: nginx proxies a presigned URL ------------------------------------------------------


@pytest.mark.s3
async def test_an_object_is_proxied_by_nginx_from_a_presigned_url(
    registry: StorageRegistry, s3_client: Any, bucket: str, moto_endpoint: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="q3.csv", Body=CONTENT)
    options = {"endpoint_url": moto_endpoint}
    offload = XAccelRedirect(remote="/_reproxy", expires=30)
    async with client(
        registry,
        f"s3://{bucket}/q3.csv",
        offload=offload,
        storage_options=options,
        as_attachment=True,
        max_age=5,
    ) as app:
        get = await app.get("/file")
        head = await app.head("/file")
    assert get.status_code == 200
    assert get.content == b""
    assert get.headers["x-accel-redirect"] == "/_reproxy"
    assert "content-disposition" not in get.headers  # in the URL: nginx would send two
    assert get.headers["cache-control"] == "public, max-age=5"
    url = get.headers["x-reproxy-url"]
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-disposition"] == ['attachment; filename="q3.csv"']
    assert query["response-content-type"] == ["text/csv; charset=utf-8"]
    assert query["X-Amz-Expires"] == ["30"]
    fetched = httpx.get(url, trust_env=False)  # what nginx gets
    assert fetched.content == CONTENT
    assert fetched.headers["content-disposition"] == 'attachment; filename="q3.csv"'
    # A URL presigned for GET does not validate for HEAD: the app answers it itself.
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(CONTENT))
    assert "x-accel-redirect" not in head.headers


@pytest.mark.s3
async def test_redirect_wins_over_the_reproxy_for_objects(
    registry: StorageRegistry, s3_client: Any, bucket: str, moto_endpoint: str, root: Path
) -> None:
    s3_client.put_object(Bucket=bucket, Key="q3.csv", Body=CONTENT)
    offload = XAccelRedirect("/_files/", root=str(root), remote="/_reproxy")
    options = {"endpoint_url": moto_endpoint}
    source = f"s3://{bucket}/q3.csv"
    async with client(
        registry, source, offload=offload, redirect=True, storage_options=options
    ) as app:
        response = await app.get("/file")
    assert response.status_code == 307
    async with client(registry, root / "a.txt", offload=offload, redirect=True) as app:
        response = await app.get("/file")
    assert response.headers["x-accel-redirect"] == "/_files/a.txt"


def test_the_local_root_is_abspathed(tmp_path: Path) -> None:
    relative = os.path.relpath(tmp_path)
    assert XAccelRedirect("/_f/", root=relative).root == str(tmp_path)


@pytest.mark.s3
async def test_the_callers_disposition_travels_in_the_presigned_url_only(
    registry: StorageRegistry, s3_client: Any, bucket: str, moto_endpoint: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="q3.csv", Body=CONTENT)
    caller = "attachment; filename=caller.txt"
    async with client(
        registry,
        f"s3://{bucket}/q3.csv",
        offload=XAccelRedirect(remote="/_reproxy"),
        storage_options={"endpoint_url": moto_endpoint},
        headers={"Content-Disposition": caller},
    ) as app:
        response = await app.get("/file")
    assert "content-disposition" not in response.headers  # nginx would send two
    query = parse_qs(urlsplit(response.headers["x-reproxy-url"]).query)
    assert query["response-content-disposition"] == [caller]


async def test_a_sniffed_type_reaches_the_front_server(
    registry: StorageRegistry, root: Path
) -> None:
    pytest.importorskip("magic")
    (root / "page").write_bytes(b"%PDF-1.4\n" + CONTENT)
    offload = XAccelRedirect("/_files/", root=str(root))
    async with client(
        registry, root / "page", offload=offload, deduce_media_type_from_body=True
    ) as app:
        response = await app.get("/file")
    assert response.headers["x-accel-redirect"] == "/_files/page"
    assert response.headers["content-type"] == "application/pdf"


@pytest.mark.parametrize(
    ("url", "offload", "message"),
    [
        ("local", XAccelRedirect(remote="/_r"), "needs location="),
        ("memory://bucket", XSendfile(), "remote="),
        ("memory://bucket", XAccelRedirect("/_files/", root="/srv"), "remote="),
    ],
)
def test_a_mount_refuses_an_offload_that_cannot_apply(
    root: Path, url: str, offload: XAccelRedirect | XSendfile, message: str
) -> None:
    registry = StorageRegistry()
    with pytest.raises(ValueError, match=message):
        registry.mount("m", str(root) if url == "local" else url, offload=offload)
    assert "m" not in registry.mounts
    registry.mount("ok", str(root), offload=XSendfile())  # what fits is taken
