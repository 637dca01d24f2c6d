"""StorageRegistry.locate, list and lifespan: roots of every form, listings, closed sessions."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import secrets
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import fsspec
import pytest
from lilya.apps import Lilya
from lilya.routing import Path as Route
from lilya.types import Message

from sendfs import send_file
from sendfs.exceptions import SourceNotFound, UnknownScheme, UnsafePath
from sendfs.responses.file import FileResponse
from sendfs.storages import FsspecBackend, LocalBackend, StorageRegistry
from sendfs.storages.base import DirEntry
from sendfs.storages.metadata import to_utc_datetime
from tests.helpers import asgi_client
from tests.storages.test_registry import read_all

pytestmark = pytest.mark.anyio

#: A fixed modification time (2023-11-14 22:13:20 UTC), so listings compare exactly.
MTIME = 1_700_000_000
MTIME_UTC = datetime.fromtimestamp(MTIME, timezone.utc)


@pytest.fixture
def reg() -> StorageRegistry:
    """A registry that ignores installed entry points, for deterministic contents."""
    return StorageRegistry(entry_points=False)


# -- locate ----------------------------------------------------------------------------------


def test_locate_under_a_local_directory_confines_to_it(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    resolved = reg.locate(str(tmp_path), "a/b.txt")
    assert isinstance(resolved.backend, LocalBackend)
    assert resolved.target == f"{tmp_path}/a/b.txt"
    assert resolved.options == {"root": str(tmp_path)}


def test_locate_accepts_a_path_object_as_root(reg: StorageRegistry, tmp_path: Path) -> None:
    resolved = reg.locate(tmp_path, "./a//b.txt")
    assert resolved.target == f"{tmp_path}/a/b.txt"
    assert resolved.options == {"root": str(tmp_path)}


def test_locate_with_an_empty_path_is_the_root_itself(reg: StorageRegistry, tmp_path: Path) -> None:
    assert reg.locate(str(tmp_path), "").target == str(tmp_path)
    assert reg.locate("s3://bucket/public", "").target == "s3://bucket/public"


def test_locate_under_a_trailing_slash_root_joins_with_one_slash(reg: StorageRegistry) -> None:
    assert reg.locate("/srv/files/", "a.txt").target == "/srv/files/a.txt"
    assert reg.locate("s3://bucket/public/", "a.txt").target == "s3://bucket/public/a.txt"


def test_locate_under_a_mount_of_a_local_directory_confines_to_it(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    reg.mount("media", str(tmp_path))
    resolved = reg.locate("media", "reports/q3.pdf")
    assert isinstance(resolved.backend, LocalBackend)
    assert resolved.target == f"{tmp_path}/reports/q3.pdf"
    assert resolved.options == {"root": str(tmp_path)}


def test_locate_finds_mounts_whatever_the_case_of_their_name(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    reg.mount("Media", str(tmp_path))
    assert reg.locate("MEDIA", "a.txt").target == f"{tmp_path}/a.txt"


def test_locate_under_a_mount_of_a_file_url_joins_onto_the_directory(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    directory = tmp_path / "my files"
    reg.mount("media", directory.as_uri())  # .../my%20files
    resolved = reg.locate("media", "a#1 100%.txt")
    assert isinstance(resolved.backend, LocalBackend)
    assert resolved.target == f"{directory}/a#1 100%.txt"
    assert resolved.options == {"root": str(directory)}


def test_locate_under_a_file_url_root_joins_onto_the_directory(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    directory = tmp_path / "my files"
    resolved = reg.locate(directory.as_uri(), "a#1.txt")
    assert isinstance(resolved.backend, LocalBackend)
    assert resolved.target == f"{directory}/a#1.txt"
    assert resolved.options == {"root": str(directory)}


def test_locate_refuses_a_file_url_root_on_another_host(reg: StorageRegistry) -> None:
    with pytest.raises(SourceNotFound, match="another host"):
        reg.locate("file://fileserver/share", "a.txt")


def test_locate_under_an_s3_mount_keeps_its_options_and_adds_no_root(
    reg: StorageRegistry,
) -> None:
    reg.mount("media", "s3://bucket/uploads", endpoint_url="http://127.0.0.1:9", anon=False)
    resolved = reg.locate("media", "reports/q3.pdf")
    assert isinstance(resolved.backend, FsspecBackend)
    assert resolved.target == "s3://bucket/uploads/reports/q3.pdf"
    assert resolved.options == {"endpoint_url": "http://127.0.0.1:9", "anon": False}


def test_locate_options_take_precedence_over_the_mounts(reg: StorageRegistry) -> None:
    reg.mount("media", "s3://bucket/uploads", endpoint_url="http://mount", anon=False)
    resolved = reg.locate("media", "a.txt", endpoint_url="http://call")
    assert resolved.options == {"endpoint_url": "http://call", "anon": False}


@pytest.mark.parametrize(
    ("root", "target"),
    [
        ("s3://bucket/public", "s3://bucket/public/a/b.txt"),
        ("memory://exports", "memory://exports/a/b.txt"),
        ("memory://", "memory://a/b.txt"),
        ("s3://bucket", "s3://bucket/a/b.txt"),
    ],
)
def test_locate_under_a_url_prefix_joins_onto_the_url(
    reg: StorageRegistry, root: str, target: str
) -> None:
    resolved = reg.locate(root, "a/b.txt", anon=True)
    assert isinstance(resolved.backend, FsspecBackend)
    assert resolved.target == target
    assert resolved.options == {"anon": True}


def test_locate_under_a_mount_of_a_bare_scheme_stays_on_that_storage(
    reg: StorageRegistry,
) -> None:
    reg.mount("scratch", "memory://")
    resolved = reg.locate("scratch", "a/b.txt")
    assert isinstance(resolved.backend, FsspecBackend)
    assert resolved.target == "memory://a/b.txt"


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "%2e%2e/x", "a\\b", "CON"])
def test_locate_refuses_paths_leaving_any_root(
    reg: StorageRegistry, tmp_path: Path, path: str
) -> None:
    reg.mount("media", str(tmp_path))
    for root in (str(tmp_path), "media", tmp_path.as_uri(), "s3://bucket/public"):
        with pytest.raises(UnsafePath):
            reg.locate(root, path)


def test_locate_under_an_unknown_scheme_raises_unknown_scheme(reg: StorageRegistry) -> None:
    with pytest.raises(UnknownScheme, match="nope"):
        reg.locate("nope://bucket/files", "a.txt")


async def test_located_symlink_leading_outside_the_root_is_refused_when_opened(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (tmp_path / "files-private").mkdir()
    (tmp_path / "files-private" / "secret.txt").write_bytes(b"secret")
    (root / "leak.txt").symlink_to(tmp_path / "files-private" / "secret.txt")
    reg.mount("media", str(root))
    for resolved in (reg.locate(str(root), "leak.txt"), reg.locate("media", "leak.txt")):
        with pytest.raises(UnsafePath):
            await reg.open(resolved.target, **resolved.options)
    # Without the root option the registry serves what it is given: the option is the guard.
    resource = await reg.open(str(root / "leak.txt"))
    await resource.aclose()


async def test_a_located_source_opens_as_it_is_and_keeps_its_root(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.txt").write_bytes(b"inside")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    assert await read_all(await reg.open(reg.locate(root, "a.txt"))) == b"inside"
    leak = reg.locate(root, "leak.txt")
    # The located root wins over an option given with it: the confinement cannot be undone.
    assert reg.resolve(leak, root=str(tmp_path)).options == {"root": str(root)}
    with pytest.raises(UnsafePath):
        await reg.open(leak, root=str(tmp_path))


# -- list: local -----------------------------------------------------------------------------


def _touch(path: Path, data: bytes = b"") -> None:
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    """``files/`` with two files and two directories, all modified at MTIME."""
    root = tmp_path / "files"
    root.mkdir()
    _touch(root / "b.txt", b"bbb")
    _touch(root / "a.bin", b"aaaaa")
    _touch(root / "Z-upper.txt", b"")
    for name in ("zdir", "adir"):
        (root / name).mkdir()
        _touch(root / name / "inner.txt", b"inner")
        os.utime(root / name, (MTIME, MTIME))
    (tmp_path / "files-private").mkdir()
    (tmp_path / "files-private" / "secret.txt").write_bytes(b"secret")
    return root


async def test_list_local_directory_puts_directories_first_with_sizes_and_mtimes(
    reg: StorageRegistry, local_tree: Path
) -> None:
    assert await reg.list(str(local_tree)) == [
        DirEntry("adir", True, None, MTIME_UTC),
        DirEntry("zdir", True, None, MTIME_UTC),
        DirEntry("Z-upper.txt", False, 0, MTIME_UTC),
        DirEntry("a.bin", False, 5, MTIME_UTC),
        DirEntry("b.txt", False, 3, MTIME_UTC),
    ]


async def test_list_accepts_a_path_object_and_a_file_url(
    reg: StorageRegistry, local_tree: Path
) -> None:
    expected = await reg.list(str(local_tree))
    assert await reg.list(local_tree) == expected
    assert await reg.list(local_tree.as_uri()) == expected


async def test_list_of_a_located_root_lists_it(reg: StorageRegistry, local_tree: Path) -> None:
    reg.mount("media", str(local_tree))
    resolved = reg.locate("media", "adir")
    assert await reg.list(resolved.target, **resolved.options) == [
        DirEntry("inner.txt", False, 5, MTIME_UTC)
    ]


async def test_list_of_an_empty_directory_is_empty(reg: StorageRegistry, tmp_path: Path) -> None:
    assert await reg.list(str(tmp_path)) == []


async def test_list_skips_dangling_symlinks(reg: StorageRegistry, tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    _touch(tmp_path / "real.txt", b"x")
    assert await reg.list(str(tmp_path)) == [DirEntry("real.txt", False, 1, MTIME_UTC)]


async def test_list_of_a_local_file_is_source_not_found(
    reg: StorageRegistry, local_tree: Path
) -> None:
    with pytest.raises(SourceNotFound):
        await reg.list(str(local_tree / "b.txt"))


async def test_list_of_a_missing_local_directory_is_source_not_found(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    with pytest.raises(SourceNotFound):
        await reg.list(str(tmp_path / "missing"))


async def test_list_of_a_symlinked_directory_leading_outside_the_root_is_unsafe(
    reg: StorageRegistry, local_tree: Path
) -> None:
    (local_tree / "private-dir").symlink_to(local_tree.parent / "files-private")
    with pytest.raises(UnsafePath):
        await reg.list(str(local_tree / "private-dir"), root=str(local_tree))
    resolved = reg.locate(str(local_tree), "private-dir")
    with pytest.raises(UnsafePath):
        await reg.list(resolved.target, **resolved.options)


async def test_list_of_a_symlinked_directory_leading_inside_the_root_lists_it(
    reg: StorageRegistry, local_tree: Path
) -> None:
    (local_tree / "alias").symlink_to(local_tree / "adir")
    assert await reg.list(str(local_tree / "alias"), root=str(local_tree)) == [
        DirEntry("inner.txt", False, 5, MTIME_UTC)
    ]


async def test_list_with_root_leaves_out_symlinks_leading_outside_it(
    reg: StorageRegistry, local_tree: Path
) -> None:
    private = local_tree.parent / "files-private"
    (local_tree / "leak.txt").symlink_to(private / "secret.txt")
    (local_tree / "private-dir").symlink_to(private)
    (local_tree / "alias.txt").symlink_to(local_tree / "b.txt")
    names = [entry.name for entry in await reg.list(str(local_tree), root=str(local_tree))]
    assert names == ["adir", "zdir", "Z-upper.txt", "a.bin", "alias.txt", "b.txt"]
    # Unconfined, the registry lists what is there.
    unconfined = [entry.name for entry in await reg.list(str(local_tree))]
    assert "leak.txt" in unconfined
    assert "private-dir" in unconfined


async def test_list_of_a_source_whose_backend_cannot_list_is_source_not_found(
    reg: StorageRegistry,
) -> None:
    with pytest.raises(SourceNotFound, match="cannot list"):
        await reg.list(io.BytesIO(b"x"))


# -- list: memory:// -------------------------------------------------------------------------


@pytest.fixture
def memory_tree() -> Iterator[str]:
    """``memory://<unique>/files`` with a file and a directory; ``files-private`` beside it."""
    fs = fsspec.filesystem("memory")
    base = f"/sendfs-listing-tests-{secrets.token_hex(6)}"
    fs.pipe(f"{base}/files/b.txt", b"bbb")
    fs.pipe(f"{base}/files/a.bin", b"aaaaa")
    fs.pipe(f"{base}/files/sub/inner.txt", b"inner")
    fs.pipe(f"{base}/files-private/secret.txt", b"secret")
    try:
        yield f"memory:/{base}"
    finally:
        fs.rm(base, recursive=True)


async def test_list_memory_prefix_puts_directories_first_with_sizes_and_mtimes(
    reg: StorageRegistry, memory_tree: str
) -> None:
    fs = fsspec.filesystem("memory")
    created = {
        name: to_utc_datetime(fs.info(f"{memory_tree}/files/{name}")["created"])
        for name in ("a.bin", "b.txt")
    }
    expected = [
        DirEntry("sub", True, None, None),
        DirEntry("a.bin", False, 5, created["a.bin"]),
        DirEntry("b.txt", False, 3, created["b.txt"]),
    ]
    assert await reg.list(f"{memory_tree}/files") == expected
    assert await reg.list(f"{memory_tree}/files/") == expected


async def test_list_memory_located_root_does_not_reach_its_sibling_prefix(
    reg: StorageRegistry, memory_tree: str
) -> None:
    resolved = reg.locate(f"{memory_tree}/files", "")
    names = [entry.name for entry in await reg.list(resolved.target, **resolved.options)]
    assert names == ["sub", "a.bin", "b.txt"]


async def test_list_of_a_memory_file_is_source_not_found(
    reg: StorageRegistry, memory_tree: str
) -> None:
    with pytest.raises(SourceNotFound):
        await reg.list(f"{memory_tree}/files/b.txt")


async def test_list_of_a_missing_memory_prefix_is_source_not_found(
    reg: StorageRegistry, memory_tree: str
) -> None:
    with pytest.raises(SourceNotFound):
        await reg.list(f"{memory_tree}/missing")


# -- list: s3:// (moto) ----------------------------------------------------------------------


@pytest.fixture
def s3_tree(s3_client: Any, bucket: str) -> str:
    """``s3://bucket/root`` with two objects and a sub-prefix; ``root-private/`` beside it."""
    for key, body in {
        "root/b.txt": b"bbb",
        "root/a.bin": b"aaaaa",
        "root/sub/inner.txt": b"inner",
        "root-private/secret.txt": b"secret",
        "secret.txt": b"secret",
    }.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}"


@pytest.mark.s3
async def test_list_s3_prefix_puts_directories_first_with_sizes_and_mtimes(
    storage_registry: StorageRegistry, s3_tree: str, s3_client: Any, bucket: str
) -> None:
    modified = {
        name: s3_client.head_object(Bucket=bucket, Key=f"root/{name}")["LastModified"]
        for name in ("a.bin", "b.txt")
    }
    expected = [
        DirEntry("sub", True, None, None),
        DirEntry("a.bin", False, 5, modified["a.bin"]),
        DirEntry("b.txt", False, 3, modified["b.txt"]),
    ]
    assert await storage_registry.list(f"{s3_tree}/root") == expected
    assert await storage_registry.list(f"{s3_tree}/root/") == expected
    assert all(entry.mtime is None or entry.mtime.tzinfo is not None for entry in expected)


@pytest.mark.s3
async def test_list_s3_bucket_top_lists_prefixes_then_objects(
    storage_registry: StorageRegistry, s3_tree: str
) -> None:
    names = [(entry.name, entry.is_dir) for entry in await storage_registry.list(s3_tree)]
    assert names == [("root", True), ("root-private", True), ("secret.txt", False)]


@pytest.mark.s3
async def test_list_s3_located_root_does_not_reach_its_sibling_prefix(
    storage_registry: StorageRegistry, s3_tree: str
) -> None:
    storage_registry.mount("media", f"{s3_tree}/root")
    resolved = storage_registry.locate("media", "")
    names = [entry.name for entry in await storage_registry.list(resolved.target)]
    assert names == ["sub", "a.bin", "b.txt"]


@pytest.mark.s3
async def test_list_of_an_s3_object_is_source_not_found(
    storage_registry: StorageRegistry, s3_tree: str
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.list(f"{s3_tree}/root/b.txt")


@pytest.mark.s3
@pytest.mark.parametrize("suffix", ["/missing", "/missing/", "/root/sub/nope"])
async def test_list_of_a_missing_s3_prefix_is_source_not_found(
    storage_registry: StorageRegistry, s3_tree: str, suffix: str
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.list(f"{s3_tree}{suffix}")


@pytest.mark.s3
async def test_list_of_a_missing_bucket_is_source_not_found(
    storage_registry: StorageRegistry, moto_endpoint: str
) -> None:
    with pytest.raises(SourceNotFound):
        await storage_registry.list("s3://sendfs-no-such-bucket-xyz")


# -- lifespan --------------------------------------------------------------------------------


def _aiohttp_sessions(fs: Any) -> list[Any]:
    """The aiohttp sessions behind an s3fs filesystem's client (aiobotocore internals)."""
    sessions = fs._s3._endpoint.http_session._sessions
    return list(sessions.values()) if sessions else []


async def _read_s3(reg: StorageRegistry, url: str) -> bytes:
    resource = await reg.open(url)
    try:
        return b"".join([piece async for piece in resource.iter_range(0, None, 1024)])
    finally:
        await resource.aclose()


class LifespanDriver:
    """Runs an ASGI app's lifespan protocol the way a server does: startup, then shutdown."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: list[str] = []
        self._answered = anyio.Event()
        self._to_app, self._app_inbox = anyio.create_memory_object_stream[Message](2)

    async def _send(self, message: Message) -> None:
        self.sent.append(message["type"])
        self._answered.set()

    async def _ask(self, message_type: str) -> None:
        """Send one lifespan event and wait (bounded) for the app's answer."""
        self._answered = anyio.Event()
        await self._to_app.send({"type": message_type})
        with anyio.fail_after(30):
            await self._answered.wait()
        assert self.sent[-1] == f"{message_type}.complete", self.sent

    async def run(self, during: Callable[[], Awaitable[None]]) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        async with anyio.create_task_group() as tg, self._to_app, self._app_inbox:
            tg.start_soon(self.app, scope, self._app_inbox.receive, self._send)
            await self._ask("lifespan.startup")
            await during()
            await self._ask("lifespan.shutdown")


@pytest.fixture
def s3_object(s3_client: Any, bucket: str) -> str:
    s3_client.put_object(Bucket=bucket, Key="root/a.txt", Body=b"from s3")
    return f"s3://{bucket}/root/a.txt"


def _unclosed_session_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "Unclosed" in str(w.message)]


@pytest.mark.s3
async def test_lifespan_context_closes_the_s3_sessions_of_the_loop(s3_object: str) -> None:
    reg = StorageRegistry()
    loop = asyncio.get_running_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with reg.lifespan(None):
            assert await _read_s3(reg, s3_object) == b"from s3"
            filesystems = list(reg._fsspec._async[loop].values())
            sessions = [s for fs in filesystems for s in _aiohttp_sessions(fs)]
            assert filesystems
            assert sessions
            assert not any(session.closed for session in sessions)
        assert loop not in reg._fsspec._async
        assert all(fs._s3 is None for fs in filesystems)
        assert all(session.closed for session in sessions)
        del filesystems, sessions
        gc.collect()
    assert _unclosed_session_warnings(caught) == []


@pytest.mark.s3
async def test_registry_opens_new_sessions_after_its_lifespan_ends(s3_object: str) -> None:
    reg = StorageRegistry()
    async with reg.lifespan():
        assert await _read_s3(reg, s3_object) == b"from s3"
    try:
        assert await _read_s3(reg, s3_object) == b"from s3"
    finally:
        await reg.aclose()


@pytest.fixture(params=["lilya", "starlette"])
async def s3_app(
    request: pytest.FixtureRequest, s3_object: str
) -> AsyncIterator[tuple[Any, StorageRegistry, list[Any]]]:
    """An app whose lifespan is the registry's, with a route serving an S3 object."""
    reg = StorageRegistry()
    seen: list[Any] = []

    async def download() -> FileResponse:
        loop = asyncio.get_running_loop()
        seen.append(loop)
        seen.extend(reg._fsspec._async.get(loop, {}).values())
        return send_file(s3_object, registry=reg)

    app: Any
    if request.param == "lilya":
        app = Lilya(routes=[Route("/file", download)], lifespan=reg.lifespan)
    else:
        from starlette.applications import Starlette
        from starlette.routing import Route as StarletteRoute

        async def starlette_download(_: Any) -> FileResponse:
            return await download()

        app = Starlette(routes=[StarletteRoute("/file", starlette_download)], lifespan=reg.lifespan)
    try:
        yield app, reg, seen
    finally:
        await reg.aclose()


@pytest.mark.s3
async def test_app_with_the_registry_lifespan_closes_s3_sessions_on_shutdown(
    s3_app: tuple[Any, StorageRegistry, list[Any]],
) -> None:
    app, reg, seen = s3_app
    loop = asyncio.get_running_loop()

    async def serve_twice() -> None:
        async with asgi_client(app) as client:
            for _ in range(2):
                response = await client.get("/file")
                assert response.status_code == 200
                assert response.content == b"from s3"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        driver = LifespanDriver(app)
        await driver.run(serve_twice)
        assert driver.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        filesystems = [fs for fs in seen if fs is not loop]
        assert filesystems  # the second request found the filesystem the first one created
        assert loop not in reg._fsspec._async
        assert all(fs._s3 is None for fs in filesystems)
        del filesystems, seen[:]
        gc.collect()
    assert _unclosed_session_warnings(caught) == []
