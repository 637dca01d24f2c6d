"""StorageRegistry: registration, mounts, resolution, entry points and actionable errors."""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from sendfs.exceptions import (
    MissingDependency,
    SendfsError,
    SourceNotFound,
    UnknownScheme,
    UnsafePath,
)
from sendfs.storages import (
    FileInfo,
    FsspecBackend,
    LocalBackend,
    Mount,
    Resource,
    ResourceBase,
    StorageRegistry,
)
from sendfs.storages.fileobj import FileObjBackend
from tests.helpers import run_python

pytestmark = pytest.mark.anyio


class EchoResource(ResourceBase):
    """A resource whose bytes are the source it was opened with."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._info = FileInfo(size=len(data), name="echo")

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        end = len(self._data) if stop is None else min(stop, len(self._data))
        for offset in range(start, end, chunk_size):
            yield self._data[offset : min(offset + chunk_size, end)]


class EchoBackend:
    """A user backend: records what it was asked to open."""

    def __init__(self, tag: str = "echo") -> None:
        self.tag = tag
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    async def open(self, source: Any, **options: Any) -> Resource:
        self.calls.append((source, options))
        return EchoResource(f"{self.tag}:{source}".encode())


async def read_all(resource: Resource) -> bytes:
    try:
        return b"".join([piece async for piece in resource.iter_range(0, None, 1024)])
    finally:
        await resource.aclose()


@pytest.fixture
def reg() -> StorageRegistry:
    """A registry that ignores installed entry points, for deterministic contents."""
    return StorageRegistry(entry_points=False)


@pytest.fixture
def memory_root() -> Iterator[str]:
    fs = fsspec.filesystem("memory")
    root = f"/sendfs-registry-tests/{secrets.token_hex(6)}"
    try:
        yield root
    finally:
        if fs.exists(root):
            fs.rm(root, recursive=True)


# -- registration ----------------------------------------------------------------------------


async def test_registered_backend_opens_urls_of_its_scheme(reg: StorageRegistry) -> None:
    backend = EchoBackend()
    reg.register("echo", backend)
    resource = await reg.open("echo://hello/world", flavour="plain")
    assert await read_all(resource) == b"echo:echo://hello/world"
    assert backend.calls == [("echo://hello/world", {"flavour": "plain"})]


async def test_scheme_is_case_insensitive(reg: StorageRegistry) -> None:
    backend = EchoBackend()
    reg.register("Echo", backend)
    assert "echo" in reg
    assert "ECHO" in reg
    assert await read_all(await reg.open("ECHO://x")) == b"echo:ECHO://x"


async def test_register_refuses_to_replace_silently(reg: StorageRegistry) -> None:
    first, second = EchoBackend("first"), EchoBackend("second")
    reg.register("echo", first)
    with pytest.raises(ValueError, match="replace=True"):
        reg.register("echo", second)
    with pytest.raises(ValueError, match="replace=True"):
        reg.register("ECHO", second)
    assert await read_all(await reg.open("echo://x")) == b"first:echo://x"


async def test_register_with_replace_replaces(reg: StorageRegistry) -> None:
    reg.register("echo", EchoBackend("first"))
    reg.register("echo", EchoBackend("second"), replace=True)
    assert await read_all(await reg.open("echo://x")) == b"second:echo://x"


async def test_register_refuses_the_built_in_file_scheme_without_replace(
    reg: StorageRegistry,
) -> None:
    with pytest.raises(ValueError, match="replace=True"):
        reg.register("file", EchoBackend())


async def test_register_with_replace_replaces_a_mount(reg: StorageRegistry, tmp_path: Path) -> None:
    reg.mount("media", str(tmp_path))
    with pytest.raises(ValueError, match="replace=True"):
        reg.register("media", EchoBackend())
    reg.register("media", EchoBackend(), replace=True)
    assert reg.mounts == {}
    assert await read_all(await reg.open("media://x")) == b"echo:media://x"


def test_register_refuses_objects_without_open(reg: StorageRegistry) -> None:
    with pytest.raises(TypeError, match="open"):
        reg.register("thing", object())  # type: ignore[arg-type]
    assert "thing" not in reg


async def test_refused_register_leaves_the_previous_backend_in_place(
    reg: StorageRegistry,
) -> None:
    reg.register("echo", EchoBackend("kept"))
    with pytest.raises(TypeError):
        reg.register("echo", object(), replace=True)  # type: ignore[arg-type]
    assert "echo" in reg
    assert await read_all(await reg.open("echo://x")) == b"kept:echo://x"


async def test_refused_mount_leaves_the_previous_mount_in_place(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"kept")
    reg.mount("media", str(tmp_path))
    with pytest.raises(ValueError, match="own scheme"):
        reg.mount("media", "media://elsewhere", replace=True)
    assert reg.mounts["media"].url == str(tmp_path)
    assert await read_all(await reg.open("media://a.txt")) == b"kept"


async def test_unregister_forgets_the_scheme(reg: StorageRegistry) -> None:
    reg.register("echo", EchoBackend())
    reg.unregister("ECHO")
    assert "echo" not in reg
    with pytest.raises(UnknownScheme):
        await reg.open("echo://x")


def test_unregister_forgets_a_mount(reg: StorageRegistry, tmp_path: Path) -> None:
    reg.mount("media", str(tmp_path))
    reg.unregister("media")
    assert "media" not in reg
    assert reg.mounts == {}


def test_unregister_unknown_scheme_raises_key_error(reg: StorageRegistry) -> None:
    with pytest.raises(KeyError):
        reg.unregister("nothing")


@pytest.mark.parametrize(
    "scheme", ["", "1abc", "a b", "a_b", "-abc", "+abc", "a:b", "a/b", "ab://", "é", "s3 ", "a\n"]
)
def test_invalid_scheme_names_are_refused(reg: StorageRegistry, scheme: str) -> None:
    with pytest.raises(ValueError, match="not a URL scheme"):
        reg.register(scheme, EchoBackend())
    with pytest.raises(ValueError, match="not a URL scheme"):
        reg.mount(scheme, "/srv")
    assert list(reg) == ["file"]


@pytest.mark.parametrize("scheme", ["a", "abc", "a1", "a+b", "a.b", "a-b", "git+ssh", "x-y.z+1"])
def test_valid_scheme_names_are_accepted(reg: StorageRegistry, scheme: str) -> None:
    reg.register(scheme, EchoBackend())
    assert scheme in reg


async def test_registered_backend_takes_precedence_over_fsspec(reg: StorageRegistry) -> None:
    reg.register("memory", EchoBackend("mine"))
    assert await read_all(await reg.open("memory://x")) == b"mine:memory://x"


# -- unknown schemes -------------------------------------------------------------------------


async def test_unknown_scheme_lists_the_registered_schemes(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    reg.register("echo", EchoBackend())
    reg.mount("media", str(tmp_path))
    with pytest.raises(UnknownScheme) as excinfo:
        await reg.open("nosuchscheme://bucket/key")
    message = str(excinfo.value)
    assert "'nosuchscheme'" in message
    assert "echo, file, media" in message
    assert "fsspec" in message
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, SendfsError)


def test_unknown_scheme_is_raised_by_resolve_without_io(reg: StorageRegistry) -> None:
    with pytest.raises(UnknownScheme, match="registered: file"):
        reg.resolve("nosuchscheme://x")


# -- mounts ----------------------------------------------------------------------------------


async def test_mount_of_a_local_directory(reg: StorageRegistry, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.txt").write_bytes(b"local bytes")
    reg.mount("media", str(tmp_path))
    resource = await reg.open("media://a/b.txt")
    assert isinstance(resource.info, FileInfo)
    assert resource.info.name == "b.txt"
    assert resource.info.size == 11
    assert await read_all(resource) == b"local bytes"


async def test_mount_of_a_memory_prefix(reg: StorageRegistry, memory_root: str) -> None:
    fsspec.filesystem("memory").pipe(f"{memory_root}/x/y.txt", b"memory bytes")
    reg.mount("mem", f"memory://{memory_root}")
    resource = await reg.open("mem://x/y.txt")
    assert resource.info.name == "y.txt"
    assert await read_all(resource) == b"memory bytes"


@pytest.mark.s3
async def test_mount_of_an_s3_prefix_uses_its_storage_options(
    storage_registry: StorageRegistry,
    s3_client: Any,
    bucket: str,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_client.put_object(Bucket=bucket, Key="prefix/reports/q3.txt", Body=b"s3 bytes")
    # Without the mount's endpoint_url, s3fs would go to AWS and fail.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    storage_registry.mount("media", f"s3://{bucket}/prefix", endpoint_url=moto_endpoint)
    resolved = storage_registry.resolve("media://reports/q3.txt")
    assert resolved.target == f"s3://{bucket}/prefix/reports/q3.txt"
    assert dict(resolved.options) == {"endpoint_url": moto_endpoint}
    resource = await storage_registry.open("media://reports/q3.txt")
    assert resource.info.name == "q3.txt"
    assert await read_all(resource) == b"s3 bytes"


async def test_mount_to_a_user_backend(reg: StorageRegistry) -> None:
    backend = EchoBackend()
    reg.register("echo", backend)
    reg.mount("files", "echo://base/", token="t")
    assert await read_all(await reg.open("files://a//b")) == b"echo:echo://base/a/b"
    assert backend.calls == [("echo://base/a/b", {"token": "t"})]


async def test_mount_to_another_mount(reg: StorageRegistry, tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "f.txt").write_bytes(b"nested")
    reg.mount("base", str(tmp_path))
    reg.mount("inner", "base://inner")
    assert await read_all(await reg.open("inner://f.txt")) == b"nested"


@pytest.mark.parametrize(
    "source",
    ["media://../secret.txt", "media://a/../../secret.txt", "media://%2e%2e/secret.txt"],
)
async def test_mount_path_that_climbs_out_is_unsafe(
    reg: StorageRegistry, tmp_path: Path, source: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_bytes(b"secret")
    reg.mount("media", str(root))
    with pytest.raises(UnsafePath):
        reg.resolve(source)
    with pytest.raises(SourceNotFound):
        await reg.open(source)


async def test_mount_root_itself_is_a_directory_not_found(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    reg.mount("media", str(tmp_path))
    with pytest.raises(SourceNotFound):
        await reg.open("media://")


def test_mount_cannot_point_to_its_own_scheme(reg: StorageRegistry) -> None:
    with pytest.raises(ValueError, match="own scheme"):
        reg.mount("media", "media://x")
    assert "media" not in reg


def test_mounts_that_would_form_a_cycle_are_refused(reg: StorageRegistry, tmp_path: Path) -> None:
    # A mount points to an existing one (unknown schemes fail at mount time), so a cycle can
    # only be closed by replacing a link of the chain.
    reg.mount("c", str(tmp_path))
    reg.mount("b", "c://y")
    reg.mount("a", "b://x")
    with pytest.raises(ValueError, match="cycle of mounts: c -> a -> b -> c"):
        reg.mount("c", "a://z", replace=True)
    assert reg.mounts["c"].url == str(tmp_path)
    with pytest.raises(ValueError, match="cycle"):
        reg.mount("b", "a://y", replace=True)
    assert reg.mounts["b"].url == "c://y"
    assert reg.resolve("a://f.txt").target == str(tmp_path / "y" / "x" / "f.txt")


def test_mount_refuses_to_replace_silently(reg: StorageRegistry, tmp_path: Path) -> None:
    reg.mount("media", str(tmp_path))
    with pytest.raises(ValueError, match="replace=True"):
        reg.mount("media", "memory://other")
    reg.mount("media", "memory://other", replace=True)
    assert reg.mounts["media"].url == "memory://other"


def test_call_options_override_mount_options(reg: StorageRegistry) -> None:
    reg.mount("media", "memory://root", a=1, b=2)
    resolved = reg.resolve("media://x.bin", b=3, c=4)
    assert resolved.target == "memory://root/x.bin"
    assert isinstance(resolved.backend, FsspecBackend)
    assert dict(resolved.options) == {"a": 1, "b": 3, "c": 4}
    assert dict(reg.resolve("media://x.bin").options) == {"a": 1, "b": 2}


def test_mounts_mapping_is_a_copy(reg: StorageRegistry, tmp_path: Path) -> None:
    reg.mount("media", str(tmp_path))
    mounts = reg.mounts
    assert mounts == {"media": Mount("media", str(tmp_path), {})}
    del mounts["media"]  # type: ignore[attr-defined]
    assert "media" in reg.mounts


# -- container protocol and repr -------------------------------------------------------------


def test_contains_covers_backends_and_mounts_only(reg: StorageRegistry, tmp_path: Path) -> None:
    reg.register("echo", EchoBackend())
    reg.mount("media", str(tmp_path))
    assert "file" in reg
    assert "echo" in reg
    assert "media" in reg
    assert "MEDIA" in reg
    assert "memory" not in reg
    assert "s3" not in reg
    assert 42 not in reg
    assert None not in reg


def test_iteration_lists_schemes_and_mounts_sorted(reg: StorageRegistry, tmp_path: Path) -> None:
    assert list(reg) == ["file"]
    reg.register("zeta", EchoBackend())
    reg.mount("media", str(tmp_path))
    reg.register("alpha", EchoBackend())
    assert list(reg) == ["alpha", "file", "media", "zeta"]


def test_repr_hides_storage_option_values(reg: StorageRegistry) -> None:
    reg.mount("media", "s3://bucket/prefix", key="AKIAEXAMPLE", secret="s3cr3t")
    mount = reg.mounts["media"]
    assert "s3cr3t" not in repr(reg)
    assert "s3cr3t" not in repr(mount)
    assert "AKIAEXAMPLE" not in repr(reg)
    assert "AKIAEXAMPLE" not in repr(mount)
    assert "secret" in repr(mount)
    assert "media" in repr(reg)
    assert "s3://bucket/prefix" in repr(reg)


@pytest.mark.parametrize(
    ("url", "hidden", "shown"),
    [
        ("s3://AKIAEXAMPLE:s3cr3t@bucket/prefix", "s3cr3t", "s3://***@bucket/prefix"),
        ("https://host/p?X-Amz-Signature=abc&sig=def", "abc", "https://host/p?***"),
        ("/srv/files", "", "/srv/files"),
    ],
)
def test_repr_masks_credentials_in_mount_urls(
    reg: StorageRegistry, url: str, hidden: str, shown: str
) -> None:
    reg.mount("media", url)
    assert shown in repr(reg.mounts["media"])
    if hidden:
        assert hidden not in repr(reg)


def test_repr_names_backends(reg: StorageRegistry) -> None:
    reg.register("echo", EchoBackend())
    assert repr(reg) == "<StorageRegistry backends=[echo=EchoBackend, file=LocalBackend] mounts=[]>"


# -- local paths, file URLs and other sources ------------------------------------------------


async def test_file_url_opens_the_local_file(reg: StorageRegistry, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"via url")
    resource = await reg.open(path.as_uri())
    assert resource.info.name == "a.txt"
    assert await read_all(resource) == b"via url"


async def test_file_url_with_percent_encoded_spaces(reg: StorageRegistry, tmp_path: Path) -> None:
    path = tmp_path / "my report 2024.txt"
    path.write_bytes(b"spaces")
    url = path.as_uri()
    assert "%20" in url
    resource = await reg.open(url)
    assert resource.info.name == "my report 2024.txt"
    assert await read_all(resource) == b"spaces"


async def test_file_url_with_localhost(reg: StorageRegistry, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"localhost")
    assert await read_all(await reg.open(f"file://localhost{path}")) == b"localhost"


async def test_file_url_on_another_host_is_not_found(reg: StorageRegistry) -> None:
    with pytest.raises(SourceNotFound):
        await reg.open("file://fileserver/share/a.txt")


async def test_missing_file_url_is_not_found(reg: StorageRegistry, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound):
        await reg.open((tmp_path / "missing.txt").as_uri())


async def test_path_objects_open_as_local_files(reg: StorageRegistry, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"pathlib")
    resolved = reg.resolve(path)
    assert isinstance(resolved.backend, LocalBackend)
    assert resolved.target == str(path)
    assert await read_all(await reg.open(path)) == b"pathlib"


class CustomPath:
    def __init__(self, path: str) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return self._path


async def test_any_pathlike_opens_as_a_local_file(reg: StorageRegistry, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"pathlike")
    assert await read_all(await reg.open(CustomPath(str(path)))) == b"pathlike"


async def test_plain_string_path_opens_as_a_local_file(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "a b.txt"
    path.write_bytes(b"plain")
    assert await read_all(await reg.open(str(path))) == b"plain"


def test_relative_path_without_scheme_is_local(reg: StorageRegistry) -> None:
    resolved = reg.resolve("some/relative/path.txt")
    assert isinstance(resolved.backend, LocalBackend)
    assert resolved.target == "some/relative/path.txt"


def test_binary_file_object_resolves_to_the_file_object_backend(reg: StorageRegistry) -> None:
    import io

    buffer = io.BytesIO(b"x")
    resolved = reg.resolve(buffer)
    assert isinstance(resolved.backend, FileObjBackend)
    assert resolved.target is buffer


def test_fsspec_protocols_resolve_to_fsspec(reg: StorageRegistry) -> None:
    resolved = reg.resolve("memory://a/b")
    assert isinstance(resolved.backend, FsspecBackend)
    assert resolved.target == "memory://a/b"


@pytest.mark.parametrize("source", [42, None, 3.5, b"/etc/passwd", ["a"], {"path": "a"}])
async def test_non_source_objects_raise_type_error(reg: StorageRegistry, source: Any) -> None:
    with pytest.raises(TypeError, match="source"):
        await reg.open(source)


# -- missing dependencies --------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
@pytest.mark.parametrize("url", ["gs://bucket/key.txt", "gcs://bucket/key.txt"])
async def test_gcs_without_gcsfs_raises_missing_dependency(reg: StorageRegistry, url: str) -> None:
    with pytest.raises(MissingDependency, match="gcsfs") as excinfo:
        await reg.open(url)
    assert isinstance(excinfo.value, ImportError)


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [
        ("s3fs", "s3://bucket/key", "s3"),
        ("adlfs", "az://container/blob", "azure"),
        ("adlfs", "abfs://container/blob", "azure"),
    ],
)
def test_a_missing_package_names_the_extra(module: str, url: str, extra: str) -> None:
    script = (
        textwrap.dedent(
            """
        import asyncio, sys
        sys.modules[MODULE] = None
        import sendfs
        from sendfs.exceptions import MissingDependency

        async def main():
            try:
                await sendfs.StorageRegistry(entry_points=False).open(URL)
            except MissingDependency as exc:
                assert isinstance(exc, ImportError)
                print("MISSING:", exc)
            else:
                print("OPENED")

        asyncio.run(main())
        """
        )
        .replace("MODULE", repr(module))
        .replace("URL", repr(url))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = run_python(script, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MISSING:")
    assert f"pip install 'sendfs[{extra}]'" in done.stdout


# -- entry points ----------------------------------------------------------------------------

PLUGIN_MODULE = """
from sendfs.storages import FileInfo, ResourceBase


class PlugResource(ResourceBase):
    def __init__(self, data):
        self._data = data
        self._info = FileInfo(size=len(data), name="plug")

    async def iter_range(self, start, stop, chunk_size):
        end = len(self._data) if stop is None else min(stop, len(self._data))
        for offset in range(start, end, chunk_size):
            yield self._data[offset : min(offset + chunk_size, end)]


class PlugBackend:
    async def open(self, source, **options):
        return PlugResource(f"plugged:{source}:{sorted(options.items())}".encode())


plug_instance = PlugBackend()
"""

ENTRY_POINTS = """\
[sendfs.backends]
plug = sendfs_test_plugin:PlugBackend
plugobj = sendfs_test_plugin:plug_instance
broken = sendfs_test_missing_module_8f3a:Backend
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed-looking distribution declaring backends in ``sendfs.backends``."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sendfs_test_plugin.py").write_text(PLUGIN_MODULE)
    dist_info = site / "sendfs_test_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sendfs_test_plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    try:
        yield site
    finally:
        sys.modules.pop("sendfs_test_plugin", None)


async def test_entry_point_backend_is_loaded_on_first_use(plugin: Path) -> None:
    reg = StorageRegistry()
    assert "plug" not in reg
    resource = await reg.open("plug://x", opt=1)
    assert resource.info.name == "plug"
    assert await read_all(resource) == b"plugged:plug://x:[('opt', 1)]"
    assert "plug" in reg
    assert type(reg.resolve("plug://y").backend).__name__ == "PlugBackend"


async def test_entry_point_may_name_a_backend_instance(plugin: Path) -> None:
    reg = StorageRegistry()
    assert await read_all(await reg.open("plugobj://x")) == b"plugged:plugobj://x:[]"


async def test_entry_points_can_be_turned_off(plugin: Path) -> None:
    reg = StorageRegistry(entry_points=False)
    with pytest.raises(UnknownScheme):
        await reg.open("plug://x")
    assert "plug" not in reg


async def test_registered_backend_wins_over_an_entry_point(plugin: Path) -> None:
    reg = StorageRegistry()
    reg.register("plug", EchoBackend())
    assert await read_all(await reg.open("plug://x")) == b"echo:plug://x"


async def test_entry_point_that_fails_to_import_raises_missing_dependency(plugin: Path) -> None:
    reg = StorageRegistry()
    with pytest.raises(MissingDependency, match="sendfs_test_missing_module_8f3a") as excinfo:
        await reg.open("broken://x")
    assert isinstance(excinfo.value, ImportError)
    assert "'broken'" in str(excinfo.value)
    assert "plug" not in reg
    assert await read_all(await reg.open("plug://x")) == b"plugged:plug://x:[]"


@pytest.mark.parametrize(
    "name", ["report#1.txt", "q?x=1.txt", "100%25.txt", "100%.txt", "a b.txt", "ü;x=1.txt"]
)
async def test_mount_of_a_file_url_serves_names_literally(
    reg: StorageRegistry, tmp_path: Path, name: str
) -> None:
    root = tmp_path / "my root"
    root.mkdir()
    (root / name).write_bytes(b"right file")
    for decoy in ("report", "q", "100%.txt", "100%25.txt", "a"):
        if decoy != name:
            (root / decoy).write_bytes(b"WRONG FILE")
    reg.mount("media", root.as_uri())
    resource = await reg.open(f"media://{name}")
    assert resource.info.name == name
    assert await read_all(resource) == b"right file"


def test_a_protocol_fsspec_registered_as_a_class_is_served() -> None:
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class ClassOnly(MemoryFileSystem):  # type: ignore[misc]
        protocol = "sendfsclassonly"

    fsspec.register_implementation("sendfsclassonly", ClassOnly, clobber=True)
    try:
        resolved = StorageRegistry().resolve("sendfsclassonly://a/b.txt")
        assert resolved.target == "sendfsclassonly://a/b.txt"
    finally:
        sys.modules["fsspec.registry"]._registry.pop("sendfsclassonly", None)  # no unregister
