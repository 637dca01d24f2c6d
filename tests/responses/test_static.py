"""StorageFiles mounted in Lilya and Starlette, over a local directory and an S3 prefix (moto).

Every request goes through the real framework routing in-process; paths are sent raw, so
encoded dots, slashes and NULs reach the app exactly as a client wrote them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lilya.apps import Lilya
from lilya.routing import Include
from starlette.applications import Starlette
from starlette.routing import Mount

from sendfs.exceptions import SourceNotFound, UnknownScheme
from sendfs.responses.static import StorageFiles, render_listing
from sendfs.storages import StorageRegistry
from sendfs.storages.base import DirEntry
from tests.helpers import asgi_client, captured_logs

pytestmark = pytest.mark.anyio

PAGE = b"nested page\r\nwith \x00 binary \xff bytes\n" * 3
INDEX = b"<!doctype html><title>docs</title>"
EVIL_INDEX = b"<p>not an open redirect</p>"
DATA = bytes(range(256)) * 4
SECRET = b"TOP SECRET: outside the root"
#: A file name full of HTML; "/" cannot be part of a file name, so no closing tag.
NASTY = "<script>alert(1)<script>&\"'.txt"
NASTY_BODY = b"nasty but harmless"
#: 2023-11-14 22:13:20 UTC, so listings render a known date.
MTIME = 1_700_000_000
#: MTIME as a listing shows it: minutes in UTC, the exact HTTP date on hover.
MTIME_HTML = (
    '<time datetime="2023-11-14T22:13:20Z" title="Tue, 14 Nov 2023 22:13:20 GMT">'
    "2023-11-14 22:13</time>"
)

#: Paths a client can write that must never leave the root, answered like a missing file.
TRAVERSALS = [
    "/files/..%2f..%2fetc/passwd",
    "/files/%2e%2e/x",
    "/files/%2e%2e/site-private/secret.txt",
    "/files/..%2fsite-private%2fsecret.txt",
    "/files/%2e%2e%2fsite-private%2fsecret.txt",
    "/files/docs/%2e%2e/%2e%2e/site-private/secret.txt",
    "/files/docs%2f..%2f..%2fsite-private/secret.txt",
    "/files/..%5csite-private%5csecret.txt",
    "/files/%5c..%5csite-private/secret.txt",
    "/files/a%00b.txt",
    "/files/data.bin%00.txt",
    "/files/docs/%00/",
    "/files/%2e%2e/",
    "/files/..%2f",
    "/files/C:/x",
    "/files/CON",
    "/files/docs/nul.txt",
]


@dataclass(frozen=True)
class Site:
    """A root holding the test files, and the registry serving it."""

    kind: str
    root: str
    registry: StorageRegistry


# -- the files -------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))


def _local_site(base: Path) -> Path:
    root = base / "site"
    _write(root / "docs" / "index.html", INDEX)
    _write(root / "docs" / "guide" / "page.txt", PAGE)
    _write(root / "evil.example" / "index.html", EVIL_INDEX)
    _write(root / "data.bin", DATA)
    _write(root / NASTY, NASTY_BODY)
    (root / "empty-dir").mkdir()
    for directory in ("docs/guide", "docs", "evil.example", "empty-dir"):
        os.utime(root / directory, (MTIME, MTIME))
    _write(base / "site-private" / "secret.txt", SECRET)
    _write(base / "secret.txt", SECRET)
    return root


def _s3_site(s3_client: Any, bucket: str) -> str:
    objects = {
        "site/docs/index.html": INDEX,
        "site/docs/guide/page.txt": PAGE,
        "site/evil.example/index.html": EVIL_INDEX,
        "site/data.bin": DATA,
        "site/a&b <c>.txt": NASTY_BODY,
        "site-private/secret.txt": SECRET,
        "secret.txt": SECRET,
    }
    for key, body in objects.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/site"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def site(request: pytest.FixtureRequest, tmp_path: Path, storage_registry: StorageRegistry) -> Site:
    if request.param == "s3":
        s3_client = request.getfixturevalue("s3_client")
        root = _s3_site(s3_client, request.getfixturevalue("bucket"))
        return Site("s3", root, storage_registry)
    return Site("local", str(_local_site(tmp_path)), storage_registry)


@pytest.fixture
def local_site(tmp_path: Path, storage_registry: StorageRegistry) -> Site:
    return Site("local", str(_local_site(tmp_path)), storage_registry)


# -- the apps --------------------------------------------------------------------------------

Mounter = Callable[[StorageFiles], Any]


def in_lilya(files: StorageFiles) -> Lilya:
    return Lilya(routes=[Include("/files", app=files)])


def in_starlette(files: StorageFiles) -> Starlette:
    return Starlette(routes=[Mount("/files", app=files)])


@pytest.fixture(params=[in_lilya, in_starlette], ids=["lilya", "starlette"])
def mount(request: pytest.FixtureRequest) -> Mounter:
    mounter: Mounter = request.param
    return mounter


@pytest.fixture
async def client(site: Site, mount: Mounter) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the site served plainly: no index.html, no listing."""
    async with asgi_client(mount(StorageFiles(site.root, registry=site.registry))) as client:
        yield client


def files_client(site: Site, mount: Mounter, **options: Any) -> httpx.AsyncClient:
    return asgi_client(mount(StorageFiles(site.root, registry=site.registry, **options)))


def hrefs(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)">', page)


# -- files -----------------------------------------------------------------------------------


async def test_get_nested_file_serves_exact_bytes_and_headers(
    site: Site, client: httpx.AsyncClient
) -> None:
    response = await client.get("/files/docs/guide/page.txt")
    assert response.status_code == 200
    assert response.content == PAGE
    headers = response.headers
    assert sorted(headers) == [
        "accept-ranges",
        "cache-control",
        "content-disposition",
        "content-length",
        "content-type",
        "etag",
        "last-modified",
    ]
    assert headers["content-length"] == str(len(PAGE))
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-disposition"] == 'inline; filename="page.txt"'
    assert headers["accept-ranges"] == "bytes"
    assert headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[^"]+"', headers["etag"])
    if site.kind == "s3":
        assert headers["etag"] == f'"{hashlib.md5(PAGE).hexdigest()}"'
    else:
        assert headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"


async def test_range_request_gets_206_with_the_exact_slice(client: httpx.AsyncClient) -> None:
    response = await client.get("/files/data.bin", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == DATA[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    assert response.headers["content-length"] == "10"
    assert response.headers["content-type"] == "application/octet-stream"


async def test_suffix_range_gets_the_last_bytes(client: httpx.AsyncClient) -> None:
    response = await client.get("/files/data.bin", headers={"Range": "bytes=-3"})
    assert response.status_code == 206
    assert response.content == DATA[-3:]
    assert response.headers["content-range"] == f"bytes {len(DATA) - 3}-{len(DATA) - 1}/{len(DATA)}"


async def test_head_sends_the_get_headers_without_a_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/files/data.bin")
    head = await client.head("/files/data.bin")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(DATA))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["last-modified"] == get.headers["last-modified"]


async def test_if_none_match_with_the_current_etag_gets_304(client: httpx.AsyncClient) -> None:
    etag = (await client.get("/files/docs/guide/page.txt")).headers["etag"]
    response = await client.get("/files/docs/guide/page.txt", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    stale = await client.get("/files/docs/guide/page.txt", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == PAGE


async def test_missing_file_is_a_plain_text_404(client: httpx.AsyncClient) -> None:
    for path in ("/files/missing.txt", "/files/docs/guide/missing/deeper.txt"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.content == b"Not Found"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.headers["content-length"] == "9"


async def test_file_path_with_a_trailing_slash_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/files/data.bin/")
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_get_405_with_allow(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/files/data.bin")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.content == b"Method Not Allowed"


@pytest.mark.parametrize("raw_path", TRAVERSALS)
async def test_traversal_in_the_raw_url_is_a_404(site: Site, mount: Mounter, raw_path: str) -> None:
    async with files_client(site, mount, html=True, listing=True) as client:
        response = await client.get(raw_path)
    assert response.status_code == 404, raw_path
    assert response.content == b"Not Found"
    assert SECRET not in response.content


async def test_directory_without_slash_is_404_by_default(client: httpx.AsyncClient) -> None:
    for path in ("/files/docs", "/files/docs/guide"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "location" not in response.headers
        assert response.content == b"Not Found"


async def test_directory_with_slash_is_404_by_default(client: httpx.AsyncClient) -> None:
    for path in ("/files/docs/", "/files/"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.content == b"Not Found"


# -- options ---------------------------------------------------------------------------------


async def test_file_options_apply_to_every_file(site: Site, mount: Mounter) -> None:
    async with files_client(site, mount, max_age=60, as_attachment=True) as client:
        response = await client.get("/files/docs/guide/page.txt")
    assert response.status_code == 200
    assert response.content == PAGE
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["content-disposition"] == 'attachment; filename="page.txt"'


def test_unknown_option_is_a_type_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="max_agee"):
        StorageFiles(str(tmp_path), max_agee=60)  # type: ignore[call-arg]


def test_unknown_scheme_root_fails_at_construction() -> None:
    with pytest.raises(UnknownScheme, match="nope"):
        StorageFiles("nope://bucket/site")


def test_unknown_mount_looking_root_fails_at_construction() -> None:
    registry = StorageRegistry(entry_points=False)
    with pytest.raises(UnknownScheme):
        StorageFiles("media://site", registry=registry)


# -- html=True -------------------------------------------------------------------------------


async def test_html_redirects_a_directory_without_slash(site: Site, mount: Mounter) -> None:
    async with files_client(site, mount, html=True) as client:
        response = await client.get("/files/docs")
        with_query = await client.get("/files/docs?lang=en&x=%2F")
    assert response.status_code == 307
    assert response.headers["location"] == "/files/docs/"
    assert response.content == b""
    assert with_query.status_code == 307
    assert with_query.headers["location"] == "/files/docs/?lang=en&x=%2F"


async def test_html_serves_index_html_for_a_directory_with_slash(
    site: Site, mount: Mounter
) -> None:
    async with files_client(site, mount, html=True) as client:
        response = await client.get("/files/docs/")
        head = await client.head("/files/docs/")
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(INDEX))


async def test_html_directory_without_index_is_404_without_listing(
    site: Site, mount: Mounter
) -> None:
    async with files_client(site, mount, html=True) as client:
        response = await client.get("/files/docs/guide/")
    assert response.status_code == 404
    assert response.content == b"Not Found"


async def test_html_and_listing_list_a_directory_without_index(site: Site, mount: Mounter) -> None:
    async with files_client(site, mount, html=True, listing=True) as client:
        with_index = await client.get("/files/docs/")
        without_index = await client.get("/files/docs/guide/")
    assert with_index.content == INDEX
    assert without_index.status_code == 200
    assert hrefs(without_index.text) == ["../", "page.txt"]


async def test_redirects_never_become_protocol_relative(site: Site) -> None:
    files = StorageFiles(site.root, html=True, registry=site.registry)
    for app, raw_path, location in [
        (files, "//evil.example", "/evil.example/"),
        (files, "///evil.example", "/evil.example/"),
        (files, "/%2Fevil.example", "/evil.example/"),
        (files, "/%2F%2Fevil.example", "/evil.example/"),
        (in_lilya(files), "/files//evil.example", "/files//evil.example/"),
        (in_starlette(files), "/files//evil.example", "/files//evil.example/"),
    ]:
        async with asgi_client(app) as client:
            response = await client.get(f"http://testserver{raw_path}")
        assert response.status_code == 307, raw_path
        assert response.headers["location"] == location, raw_path
    async with asgi_client(files) as client:
        for raw_path in ("/%5Cevil.example", "/%5C%5Cevil.example", "/\\evil.example"):
            response = await client.get(f"http://testserver{raw_path}")
            assert response.status_code == 404, raw_path
            assert "location" not in response.headers


# -- listing=True ----------------------------------------------------------------------------


async def test_listing_renders_directories_first_with_escaped_names(
    local_site: Site, mount: Mounter
) -> None:
    async with files_client(local_site, mount, listing=True) as client:
        response = await client.get("/files/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        page = response.text
        nasty_href = "%3Cscript%3Ealert%281%29%3Cscript%3E%26%22%27.txt"
        assert hrefs(page) == [
            "docs/",
            "empty-dir/",
            "evil.example/",
            nasty_href,
            "data.bin",
        ]
        assert (
            f'<tr><td><a href="{nasty_href}">'
            "&lt;script&gt;alert(1)&lt;script&gt;&amp;&quot;&#x27;.txt</a></td>"
            f"<td>18 B</td><td>{MTIME_HTML}</td></tr>"
        ) in page
        assert (
            '<tr><td><a href="data.bin">data.bin</a></td><td>1.0 KiB</td>'
            f"<td>{MTIME_HTML}</td></tr>"
        ) in page
        assert '<tr><td><a href="docs/">docs/</a></td><td></td>' in page
        assert "<script>" not in page
        assert "<title>Index of /files/</title>" in page
        # The link, resolved against the page's URL as a browser does, serves the file.
        followed = await client.get(f"/files/{nasty_href}")
    assert followed.status_code == 200
    assert followed.content == NASTY_BODY


@pytest.mark.s3
async def test_listing_of_an_s3_prefix_renders_prefixes_first(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str, mount: Mounter
) -> None:
    site = Site("s3", _s3_site(s3_client, bucket), storage_registry)
    async with files_client(site, mount, listing=True) as client:
        top = await client.get("/files/")
        nested = await client.get("/files/docs/")
        followed = await client.get("/files/a%26b%20%3Cc%3E.txt")
    assert top.status_code == 200
    assert hrefs(top.text) == ["docs/", "evil.example/", "a%26b%20%3Cc%3E.txt", "data.bin"]
    assert ">a&amp;b &lt;c&gt;.txt</a></td><td>18 B</td>" in top.text
    assert hrefs(nested.text) == ["../", "guide/", "index.html"]
    assert followed.content == NASTY_BODY


async def test_listing_of_an_empty_directory_has_only_the_parent_link(
    local_site: Site, mount: Mounter
) -> None:
    async with files_client(local_site, mount, listing=True) as client:
        response = await client.get("/files/empty-dir/")
    assert response.status_code == 200
    assert hrefs(response.text) == ["../"]


async def test_listing_redirects_a_directory_without_slash(site: Site, mount: Mounter) -> None:
    async with files_client(site, mount, listing=True) as client:
        response = await client.get("/files/docs/guide")
    assert response.status_code == 307
    assert response.headers["location"] == "/files/docs/guide/"


async def test_listing_head_sends_headers_without_a_body(site: Site, mount: Mounter) -> None:
    async with files_client(site, mount, listing=True) as client:
        get = await client.get("/files/docs/")
        head = await client.head("/files/docs/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))


async def test_listing_of_a_missing_directory_is_404(site: Site, mount: Mounter) -> None:
    async with files_client(site, mount, listing=True) as client:
        missing = await client.get("/files/missing/")
        a_file = await client.get("/files/data.bin/")
    assert missing.status_code == 404
    assert missing.content == b"Not Found"
    assert a_file.status_code == 404


async def test_listing_of_the_root_has_no_parent_link_but_subdirectories_do(
    local_site: Site, mount: Mounter
) -> None:
    async with files_client(local_site, mount, listing=True) as client:
        root = await client.get("/files/")
        nested = await client.get("/files/docs/guide/")
    assert "../" not in hrefs(root.text)
    assert ">../<" not in root.text
    assert hrefs(nested.text) == ["../", "page.txt"]


async def test_listing_is_styled_for_phones_with_aligned_columns(
    local_site: Site, mount: Mounter
) -> None:
    async with files_client(local_site, mount, listing=True) as client:
        page = (await client.get("/files/")).text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<style>" in page
    assert "tr>:nth-child(2){text-align:right}" in page  # sizes
    assert "td:first-child{width:100%;overflow-wrap:anywhere}" in page  # long names wrap
    assert "<thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>" in page


def test_render_listing_without_parent_starts_with_the_entries() -> None:
    entries = [DirEntry("a&b.txt", is_dir=False, size=2048), DirEntry("sub dir", is_dir=True)]
    page = render_listing("/<x>/", entries, parent=False)
    assert hrefs(page) == ["a%26b.txt", "sub%20dir/"]
    assert "<title>Index of /&lt;x&gt;/</title>" in page
    assert (
        '<tr><td><a href="a%26b.txt">a&amp;b.txt</a></td><td>2.0 KiB</td><td></td></tr>'
    ) in page
    assert hrefs(render_listing("/x/", entries)) == ["../", "a%26b.txt", "sub%20dir/"]


# -- dotfiles --------------------------------------------------------------------------------

#: Hidden files under the local site, and their bodies.
DOTFILES = {
    ".env": b"SECRET_KEY=dotenv",
    ".git/config": b"[core]",
    "docs/.hidden/notes.txt": b"hidden notes",
    "docs/.profile": b"profile",
}


@pytest.fixture
def dotted_site(local_site: Site) -> Site:
    for name, body in DOTFILES.items():
        _write(Path(local_site.root) / name, body)
    _write(Path(local_site.root) / ".git" / "index.html", b"<p>git index</p>")
    return local_site


async def test_dotfiles_are_served_and_listed_by_default(dotted_site: Site, mount: Mounter) -> None:
    async with files_client(dotted_site, mount, listing=True) as client:
        bodies = {name: (await client.get(f"/files/{name}")).content for name in DOTFILES}
        listing = await client.get("/files/")
    assert bodies == DOTFILES
    assert ".env" in hrefs(listing.text)
    assert ".git/" in hrefs(listing.text)


@pytest.mark.parametrize(
    "path",
    [
        "/files/.env",
        "/files/.git/config",
        "/files/.git/",
        "/files/.git",
        "/files/docs/.hidden/notes.txt",
        "/files/docs/.hidden/",
        "/files/docs/.profile",
        "/files/.missing",
    ],
)
async def test_hidden_dotfiles_are_404_without_redirect(
    dotted_site: Site, mount: Mounter, path: str
) -> None:
    async with files_client(dotted_site, mount, html=True, listing=True, dotfiles=False) as client:
        get = await client.get(path)
        head = await client.head(path)
    assert get.status_code == 404, path
    assert get.content == b"Not Found"
    assert "location" not in get.headers
    assert head.status_code == 404
    assert head.content == b""


async def test_hidden_dotfiles_are_left_out_of_listings(dotted_site: Site, mount: Mounter) -> None:
    async with files_client(dotted_site, mount, listing=True, dotfiles=False) as client:
        root = await client.get("/files/")
        docs = await client.get("/files/docs/")
        visible = await client.get("/files/data.bin")
    assert hrefs(root.text) == [
        "docs/",
        "empty-dir/",
        "evil.example/",
        "%3Cscript%3Ealert%281%29%3Cscript%3E%26%22%27.txt",
        "data.bin",
    ]
    assert hrefs(docs.text) == ["../", "guide/", "index.html"]
    assert ".env" not in root.text
    assert ".profile" not in docs.text
    assert visible.content == DATA


async def test_a_root_inside_a_dot_directory_is_served(tmp_path: Path) -> None:
    # Only names below the root are hidden: serving ~/.cache/site itself is the user's choice.
    _write(tmp_path / ".cache" / "site" / "page.txt", PAGE)
    files = StorageFiles(tmp_path / ".cache" / "site", dotfiles=False, listing=True)
    async with asgi_client(files) as client:
        page = await client.get("/page.txt")
        listing = await client.get("/")
    assert page.content == PAGE
    assert hrefs(listing.text) == ["page.txt"]


# -- why a 404 -------------------------------------------------------------------------------


async def test_each_404_logs_why_at_debug(dotted_site: Site, mount: Mounter) -> None:
    with captured_logs("sendfs.responses.static") as records:
        async with files_client(dotted_site, mount, dotfiles=False) as client:
            for path in ("/files/.env", "/files/docs/guide/", "/files/missing.txt"):
                assert (await client.get(path)).status_code == 404
    assert [r.levelno for r in records] == [logging.DEBUG] * 3
    messages = [r.getMessage() for r in records]
    assert messages[0] == "sendfs: 404 /.env: a name starting with '.' is hidden (dotfiles=False)"
    assert messages[1] == "sendfs: 404 /docs/guide/: a directory, and listing is off"
    assert messages[2].startswith("sendfs: 404 /missing.txt: ")
    assert "missing.txt" in messages[2].removeprefix("sendfs: 404 /missing.txt: ")


# -- the root --------------------------------------------------------------------------------


def test_missing_local_root_fails_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(SourceNotFound, match="does not exist") as caught:
        StorageFiles(missing)
    assert str(missing) in str(caught.value)


def test_file_as_local_root_fails_at_construction(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_bytes(b"x")
    with pytest.raises(SourceNotFound, match="is not a directory") as caught:
        StorageFiles(f"file://{a_file}")
    assert str(a_file) in str(caught.value)


def test_url_roots_are_not_checked_at_construction() -> None:
    # Checking a bucket or prefix needs I/O: a missing one is a 404 per request instead.
    files = StorageFiles("memory://no-such-prefix-anywhere")
    assert files.root == "memory://no-such-prefix-anywhere"


# -- symbolic links on local disk ------------------------------------------------------------


@pytest.fixture
def linked_site(local_site: Site) -> Site:
    root = Path(local_site.root)
    private = root.parent / "site-private"
    (root / "leak.txt").symlink_to(private / "secret.txt")
    (root / "private-dir").symlink_to(private, target_is_directory=True)
    (root / "alias.bin").symlink_to(root / "data.bin")
    return local_site


async def test_symlinks_leading_outside_the_root_are_404_and_unlisted(
    linked_site: Site, mount: Mounter
) -> None:
    async with files_client(linked_site, mount, html=True, listing=True) as client:
        for path in ("/files/leak.txt", "/files/private-dir/secret.txt", "/files/private-dir/"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.content == b"Not Found"
        # No redirect either: that would tell the directory exists.
        no_redirect = await client.get("/files/private-dir")
        listing = await client.get("/files/")
        alias = await client.get("/files/alias.bin")
    assert no_redirect.status_code == 404
    assert "location" not in no_redirect.headers
    assert "leak.txt" not in listing.text
    assert "private-dir" not in listing.text
    assert "alias.bin" in hrefs(listing.text)
    assert alias.status_code == 200
    assert alias.content == DATA
