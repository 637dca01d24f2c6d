"""First contact with the registry: mistakes fail when the mount is made, with errors that teach.

An unknown scheme gets the near names it may be a typo of, a missing package names what to
install, ``storage_options=`` means what ``send_file`` means by it, and the URLs sendfs
presigns on S3 are SigV4.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sendfs.exceptions import MissingDependency, UnknownScheme
from sendfs.storages import FileInfo, Resource, ResourceBase, StorageRegistry
from sendfs.storages.registry import close_schemes
from sendfs.storages.s3 import S3Resource, with_pool_size
from tests.helpers import run_python

pytestmark = pytest.mark.anyio


class OptionsResource(ResourceBase):
    """A resource whose bytes are the sorted options it was opened with."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._info = FileInfo(size=len(data), name="options")

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        yield self._data[start:stop]


class OptionsBackend:
    """A user backend that answers with the options it was given."""

    async def open(self, source: Any, **options: Any) -> Resource:
        return OptionsResource(repr(sorted(options.items())).encode())


async def read_all(resource: Resource) -> bytes:
    try:
        return b"".join([piece async for piece in resource.iter_range(0, None, 1024)])
    finally:
        await resource.aclose()


@pytest.fixture
def reg() -> StorageRegistry:
    return StorageRegistry(entry_points=False)


def absent(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is None for module in modules)


# -- mounts fail when they are made ----------------------------------------------------------


def test_mounting_an_unknown_scheme_fails_at_mount_time_with_a_suggestion(
    reg: StorageRegistry,
) -> None:
    with pytest.raises(UnknownScheme) as excinfo:
        reg.mount("media", "s4://bucket/uploads")
    message = str(excinfo.value)
    assert message.startswith("cannot mount 'media': no backend for 's4'")
    assert "did you mean 's3'" in message
    assert "media" not in reg


def test_a_failed_mount_leaves_the_mount_it_would_replace(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    reg.mount("media", str(tmp_path))
    with pytest.raises(UnknownScheme, match=r"'memroy'.*did you mean 'memory'"):
        reg.mount("media", "memroy://elsewhere", replace=True)
    assert reg.mounts["media"].url == str(tmp_path)


def test_a_mount_of_a_mount_not_yet_made_fails(reg: StorageRegistry, tmp_path: Path) -> None:
    with pytest.raises(UnknownScheme, match="no backend for 'base'"):
        reg.mount("inner", "base://inner")
    reg.mount("base", str(tmp_path))
    reg.mount("inner", "base://inner")
    assert reg.resolve("inner://a.txt").target == str(tmp_path / "inner" / "a.txt")


@pytest.mark.skipif(not absent("gcsfs"), reason="gcsfs is installed")
@pytest.mark.parametrize("url", ["gs://bucket/uploads", "gcs://bucket/uploads"])
def test_mounting_gcs_without_gcsfs_fails_at_mount_time_naming_the_package(
    reg: StorageRegistry, url: str
) -> None:
    with pytest.raises(MissingDependency) as excinfo:
        reg.mount("media", url)
    message = str(excinfo.value)
    assert message.startswith("cannot mount 'media': ")
    assert "pip install gcsfs" in message
    assert "Please install gcsfs to access Google Storage" in message  # fsspec's own advice
    assert isinstance(excinfo.value, ImportError)
    assert "media" not in reg


@pytest.mark.skipif(not absent("ocifs"), reason="ocifs is installed")
def test_a_missing_package_is_named_from_fsspecs_registry(reg: StorageRegistry) -> None:
    with pytest.raises(MissingDependency, match=r"'oci' scheme needs ocifs.*pip install ocifs"):
        reg.resolve("oci://bucket@namespace/key")


def test_mounting_a_known_storage_with_its_package_installed_works(reg: StorageRegistry) -> None:
    reg.mount("scratch", "memory://scratch")
    assert "scratch" in reg


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [("s3fs", "s3://bucket/uploads", "s3"), ("adlfs", "az://container/uploads", "azure")],
)
def test_mounting_without_the_extra_fails_at_mount_time_naming_it(
    module: str, url: str, extra: str
) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{module!r}] = None
        from sendfs.exceptions import MissingDependency
        from sendfs.storages import StorageRegistry

        try:
            StorageRegistry(entry_points=False).mount("media", {url!r})
        except MissingDependency as exc:
            print("MISSING:", exc)
        else:
            print("MOUNTED")
        """
    )
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MISSING: cannot mount 'media': ")
    assert f"pip install 'sendfs[{extra}]'" in done.stdout


# -- unknown schemes suggest near names --------------------------------------------------------


def test_an_unknown_scheme_suggests_the_near_fsspec_protocol(reg: StorageRegistry) -> None:
    with pytest.raises(UnknownScheme, match=r"no backend for 's4' in 's4://bucket/key' \(did "):
        reg.resolve("s4://bucket/key")


def test_an_unknown_scheme_suggests_near_mounts_and_registered_schemes(
    reg: StorageRegistry, tmp_path: Path
) -> None:
    reg.mount("media", str(tmp_path))
    reg.register("reports", OptionsBackend())
    with pytest.raises(UnknownScheme, match="did you mean 'media'"):
        reg.resolve("madia://a.txt")
    with pytest.raises(UnknownScheme, match="did you mean 'reports'"):
        reg.resolve("report://a.txt")


def test_a_far_scheme_gets_no_suggestion(reg: StorageRegistry) -> None:
    with pytest.raises(UnknownScheme) as excinfo:
        reg.resolve("nosuchscheme://x")
    assert "did you mean" not in str(excinfo.value)


def test_the_unknown_scheme_message_masks_credentials(reg: StorageRegistry) -> None:
    with pytest.raises(UnknownScheme) as excinfo:
        reg.resolve("s4://user:PASSWORD@host/key?sig=SECRET")
    assert "PASSWORD" not in str(excinfo.value)
    assert "SECRET" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("scheme", "known", "expected"),
    [
        ("s4", ["gs", "s3", "file"], ["s3", "gs"]),
        ("memroy", ["memory", "media"], ["memory"]),
        ("b", ["box", "smb"], []),
        ("media2", ["webdav", "media"], ["media"]),
    ],
)
def test_close_schemes_put_likely_typos_first(
    scheme: str, known: list[str], expected: list[str]
) -> None:
    assert close_schemes(scheme, known) == expected


# -- storage_options= means what send_file means by it ----------------------------------------


async def test_open_takes_storage_options_as_the_same_as_keywords(reg: StorageRegistry) -> None:
    reg.register("opts", OptionsBackend())
    spelled = await read_all(await reg.open("opts://x", storage_options={"token": "t"}))
    keywords = await read_all(await reg.open("opts://x", token="t"))
    assert spelled == keywords == b"[('token', 't')]"


async def test_storage_options_merge_with_keywords_and_mount_options(
    reg: StorageRegistry,
) -> None:
    reg.register("opts", OptionsBackend())
    reg.mount("media", "opts://base", storage_options={"a": 1, "b": 1})
    resource = await reg.open("media://x", storage_options={"b": 2}, c=3)
    assert await read_all(resource) == b"[('a', 1), ('b', 2), ('c', 3)]"
    assert reg.mounts["media"].storage_options == {"a": 1, "b": 1}


def test_locate_and_resolve_take_storage_options(reg: StorageRegistry, tmp_path: Path) -> None:
    assert reg.resolve("memory://x", storage_options={"k": 1}).options == {"k": 1}
    located = reg.locate(str(tmp_path), "a.txt", storage_options={"k": 1})
    assert located.options == {"k": 1, "root": str(tmp_path)}


def test_an_option_given_in_both_spellings_is_a_type_error_before_any_io(
    reg: StorageRegistry,
) -> None:
    with pytest.raises(TypeError, match=r"both in storage_options and as keywords: \['anon'\]"):
        reg.resolve("s3://bucket/key", storage_options={"anon": True}, anon=False)


def test_storage_options_that_are_not_a_mapping_are_a_type_error(reg: StorageRegistry) -> None:
    with pytest.raises(TypeError, match="storage_options must be a mapping, not list"):
        reg.resolve("memory://x", storage_options=[("anon", True)])  # type: ignore[arg-type]


@pytest.mark.s3
async def test_open_on_s3_with_storage_options_opens_the_object(
    storage_registry: StorageRegistry, moto_endpoint: str, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="a.txt", Body=b"hello")
    resource = await storage_registry.open(
        f"s3://{bucket}/a.txt", storage_options={"endpoint_url": moto_endpoint}
    )
    assert await read_all(resource) == b"hello"


# -- S3 presigned URLs are SigV4 ---------------------------------------------------------------


def test_s3_filesystems_default_to_sigv4_unless_told_otherwise() -> None:
    assert with_pool_size({})["config_kwargs"]["signature_version"] == "s3v4"
    own = with_pool_size({"config_kwargs": {"signature_version": "s3"}})
    assert own["config_kwargs"] == {"signature_version": "s3", "max_pool_connections": 64}


@pytest.mark.s3
async def test_presigned_s3_urls_are_sigv4_and_serve_the_object(
    storage_registry: StorageRegistry, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="reports/q3.pdf", Body=b"%PDF-1.7 quarterly")
    resource = await storage_registry.open(f"s3://{bucket}/reports/q3.pdf")
    try:
        assert isinstance(resource, S3Resource)
        url = await resource.presign(expires=7 * 24 * 3600)
    finally:
        await resource.aclose()
    assert url is not None
    params = parse_qs(urlsplit(url).query)
    assert params["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert params["X-Amz-Expires"] == ["604800"]
    assert "AWSAccessKeyId" not in params
    followed = httpx.get(url)
    assert followed.status_code == 200
    assert followed.content == b"%PDF-1.7 quarterly"
