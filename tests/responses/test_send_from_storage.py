"""send_from_storage: hostile request paths never leave their root, on every kind of storage.

Each root (a local directory, a ``memory://`` prefix, an ``s3://`` prefix on the moto server, a
mount name and a ``file://`` URL) has a secret just outside it, behind a name that shares the
root's prefix (``files`` / ``files-private``). Hostile paths must be refused with a 404 when
``send_from_storage`` is called, before any storage is opened; the legitimate file inside is
served byte for byte through a Lilya app.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.routing import Path as Route

from sendfs import send_from_storage
from sendfs.exceptions import UnsafePath
from sendfs.responses.file import FileResponse
from tests.helpers import SpyRegistry, asgi_client, lilya_app

pytestmark = pytest.mark.anyio

LEGIT = b"legit report\x00\xff\r\n"
LEGIT_PATH = "docs/report.txt"
SECRET = b"TOP SECRET: must never be served"

HOSTILE_PATHS = [
    "..",
    "../files-private/secret.txt",
    "a/../../x",
    "/etc/passwd",
    "\\..\\x",
    "a\\b",
    "%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "%2e%2e%2fsecret.txt",
    "..%5csecret.txt",
    "x\x00.txt",
    "x\n.txt",
    "C:/x",
    "c:secret.txt",
    "CON",
    "nul.txt",
    "aux",
    "com1.log",
    "lpt9",
    "../files-private",
]


@dataclass(frozen=True)
class Storage:
    """A root to serve from, with a legitimate file inside and a secret just outside."""

    kind: str
    root: str
    registry: SpyRegistry


# -- roots -----------------------------------------------------------------------------------


def _local_tree(base: Path) -> Path:
    """``base/files/docs/report.txt`` inside, ``base/files-private/secret.txt`` outside."""
    root = base / "files"
    (root / "docs").mkdir(parents=True)
    (root / LEGIT_PATH).write_bytes(LEGIT)
    (base / "files-private").mkdir()
    (base / "files-private" / "secret.txt").write_bytes(SECRET)
    (base / "secret.txt").write_bytes(SECRET)
    return root


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    return _local_tree(tmp_path)


@pytest.fixture
def memory_base() -> Iterator[str]:
    """A unique ``memory://`` prefix with ``files/`` inside and ``files-private/`` beside it."""
    fs = fsspec.filesystem("memory")
    base = f"sendfs-send-tests-{secrets.token_hex(6)}"
    fs.pipe(f"/{base}/files/{LEGIT_PATH}", LEGIT)
    fs.pipe(f"/{base}/files-private/secret.txt", SECRET)
    fs.pipe(f"/{base}/secret.txt", SECRET)
    try:
        yield f"memory://{base}"
    finally:
        fs.rm(f"/{base}", recursive=True)


@pytest.fixture
def s3_root(s3_client: Any, bucket: str) -> str:
    """``s3://bucket/root`` with the secret in ``root-private/`` and at the bucket's top."""
    s3_client.put_object(Bucket=bucket, Key=f"root/{LEGIT_PATH}", Body=LEGIT)
    s3_client.put_object(Bucket=bucket, Key="root-private/secret.txt", Body=SECRET)
    s3_client.put_object(Bucket=bucket, Key="secret.txt", Body=SECRET)
    return f"s3://{bucket}/root"


@pytest.fixture(
    params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3), "mount", "file-url"]
)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each kind of root, with a registry that records opens; its sessions closed after."""
    spy = SpyRegistry()
    kind: str = request.param
    if kind == "memory":
        root = f"{request.getfixturevalue('memory_base')}/files"
    elif kind == "s3":
        root = request.getfixturevalue("s3_root")
    else:
        local = _local_tree(tmp_path)
        root = str(local)
        if kind == "mount":
            spy.mount("media", root)
            root = "media"
        elif kind == "file-url":
            root = local.as_uri()
    try:
        yield Storage(kind, root, spy)
    finally:
        await spy.aclose()


def endpoint_for(storage: Storage, path: str) -> Lilya:
    async def download() -> FileResponse:
        return send_from_storage(storage.root, path, registry=storage.registry)

    return lilya_app(download)


# -- hostile paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_hostile_path_is_refused_with_404_before_any_storage_is_touched(
    storage: Storage, path: str
) -> None:
    with pytest.raises(HTTPException) as caught:
        send_from_storage(storage.root, path, registry=storage.registry)
    assert caught.value.status_code == 404
    assert caught.value.detail == "Not Found"  # nothing about the path or the storage
    assert isinstance(caught.value.__cause__, UnsafePath)
    assert storage.registry.opened == 0
    assert storage.registry.reads == []


async def test_hostile_path_from_a_route_parameter_is_answered_404_without_the_secret(
    storage: Storage,
) -> None:
    async def download(path: str) -> FileResponse:
        return send_from_storage(storage.root, path, registry=storage.registry)

    app = Lilya(routes=[Route("/dl/{path:path}", download)])
    async with asgi_client(app) as client:
        for raw in ("..%2ffiles-private%2fsecret.txt", "%2e%2e/secret.txt", "docs/..%2f..%2fx"):
            response = await client.get(f"/dl/{raw}")
            assert response.status_code == 404, raw
            assert SECRET not in response.content
        assert storage.registry.opened == 0
        served = await client.get(f"/dl/{LEGIT_PATH}")  # the route itself does match
    assert served.content == LEGIT
    assert storage.registry.opened == 1


# -- the legitimate file ---------------------------------------------------------------------


async def test_file_inside_the_root_is_served_with_exact_bytes_and_its_base_name(
    storage: Storage,
) -> None:
    async with asgi_client(endpoint_for(storage, LEGIT_PATH)) as client:
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.content == LEGIT
    assert response.headers["content-length"] == str(len(LEGIT))
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'inline; filename="report.txt"'
    assert storage.registry.opened == 1
    assert storage.registry.closed == [True]


async def test_dot_segments_and_doubled_slashes_inside_the_root_are_served(
    storage: Storage,
) -> None:
    async with asgi_client(endpoint_for(storage, "./docs//./report.txt")) as client:
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.content == LEGIT


async def test_missing_file_inside_the_root_is_a_404_from_the_app(storage: Storage) -> None:
    async with asgi_client(endpoint_for(storage, "docs/missing.txt")) as client:
        response = await client.get("/file")
    assert response.status_code == 404


async def test_a_directory_inside_the_root_is_a_404_from_the_app(storage: Storage) -> None:
    async with asgi_client(endpoint_for(storage, "docs")) as client:
        response = await client.get("/file")
    assert response.status_code == 404


# -- symbolic links on local disk ------------------------------------------------------------


@pytest.fixture(params=["directory", "mount", "file-url"])
def linked_root(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A local root with links inside it, given in each of the forms a root can take."""
    root = _local_tree(tmp_path)
    private = tmp_path / "files-private"
    (root / "leak.txt").symlink_to(private / "secret.txt")
    (root / "relative-leak.txt").symlink_to(Path("..") / "files-private" / "secret.txt")
    (root / "private-dir").symlink_to(private, target_is_directory=True)
    (root / "alias.txt").symlink_to(root / LEGIT_PATH)
    (root / "relative-alias.txt").symlink_to(Path(LEGIT_PATH))
    (root / "docs-alias").symlink_to(root / "docs", target_is_directory=True)
    spy = SpyRegistry()
    form: str = request.param
    if form == "mount":
        spy.mount("media", str(root))
        return Storage("mount", "media", spy)
    if form == "file-url":
        return Storage("file-url", root.as_uri(), spy)
    return Storage("local", str(root), spy)


@pytest.mark.parametrize("path", ["leak.txt", "relative-leak.txt", "private-dir/secret.txt"])
async def test_symlink_inside_the_root_leading_outside_is_answered_404(
    linked_root: Storage, path: str
) -> None:
    async with asgi_client(endpoint_for(linked_root, path)) as client:
        response = await client.get("/file")
    assert response.status_code == 404
    assert SECRET not in response.content
    assert linked_root.registry.reads == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("alias.txt", "alias.txt"),
        ("relative-alias.txt", "relative-alias.txt"),
        ("docs-alias/report.txt", "report.txt"),
    ],
)
async def test_symlink_inside_the_root_leading_inside_is_served(
    linked_root: Storage, path: str, name: str
) -> None:
    async with asgi_client(endpoint_for(linked_root, path)) as client:
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.content == LEGIT
    assert response.headers["content-disposition"] == f'inline; filename="{name}"'


async def test_root_that_is_itself_a_symlink_serves_the_files_inside(tmp_path: Path) -> None:
    real = _local_tree(tmp_path / "releases")
    current = tmp_path / "current"
    current.symlink_to(real, target_is_directory=True)
    storage = Storage("local", str(current), SpyRegistry())
    async with asgi_client(endpoint_for(storage, LEGIT_PATH)) as client:
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.content == LEGIT


async def test_root_given_as_a_path_object_is_confined_too(local_root: Path) -> None:
    (local_root / "leak.txt").symlink_to(local_root.parent / "files-private" / "secret.txt")
    spy = SpyRegistry()

    async def download(path: str) -> FileResponse:
        return send_from_storage(local_root, path, registry=spy)

    app = Lilya(routes=[Route("/dl/{path:path}", download)])
    async with asgi_client(app) as client:
        served = await client.get(f"/dl/{LEGIT_PATH}")
        leaked = await client.get("/dl/leak.txt")
    assert served.status_code == 200
    assert served.content == LEGIT
    assert leaked.status_code == 404
    assert SECRET not in leaked.content


# -- options ---------------------------------------------------------------------------------


async def test_send_file_options_pass_through(storage: Storage) -> None:
    async def download() -> FileResponse:
        return send_from_storage(
            storage.root,
            LEGIT_PATH,
            registry=storage.registry,
            as_attachment=True,
            download_name="Q3 report.txt",
            max_age=60,
        )

    async with asgi_client(lilya_app(download)) as client:
        response = await client.get("/file", headers={"Range": "bytes=0-4"})
    assert response.status_code == 206
    assert response.content == LEGIT[:5]
    assert response.headers["content-range"] == f"bytes 0-4/{len(LEGIT)}"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["content-disposition"] == ('attachment; filename="Q3 report.txt"')


async def test_unknown_scheme_root_is_a_programming_error_not_a_404() -> None:
    from sendfs.exceptions import UnknownScheme

    with pytest.raises(UnknownScheme):
        send_from_storage("nope://bucket/files", LEGIT_PATH, registry=SpyRegistry())
