"""Presigning with any fsspec filesystem's own ``sign()`` (gcsfs implements it).

The filesystems here are real fsspec filesystems of the tests' own: an in-memory one whose
``sign()`` returns a fixed URL and records how it was called, registered for its own protocol
like a third-party implementation would be.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import _registry as fsspec_classes
from fsspec.registry import known_implementations

from sendfs import RedirectUnavailable
from sendfs.exceptions import BackendError
from sendfs.storages import FileInfo, StorageRegistry
from sendfs.storages.base import SignableResource
from sendfs.storages.fsspec import AsyncFsResource, SyncFsResource
from tests.responses.test_redirects import client

pytestmark = pytest.mark.anyio

PROTOCOL = "signedmem"
SIGNED = "https://signed.example/bucket/a.csv?expires=60&sig=c2lnbmVk"
SECRET = "sk-live-0123456789"


class SigningMemoryFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """``memory://`` with a store of its own and a ``sign()`` that records its calls."""

    protocol = PROTOCOL
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    calls: ClassVar[list[dict[str, Any]]] = []
    failure: ClassVar[BaseException | None] = None

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str):
            path = path.removeprefix(f"{PROTOCOL}://")
        return super()._strip_protocol(path)

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        self.calls.append(
            {"path": path, "expiration": expiration, "main_thread": _on_main_thread(), **kwargs}
        )
        if self.failure is not None:
            raise self.failure
        return f"https://signed.example{path}?expires={expiration}&sig=c2lnbmVk"


class GcsLikeFileSystem(SigningMemoryFileSystem):
    """The same, answering to gcsfs's protocols, so it gets the GCS keywords."""

    protocol = ("gs", "gcs")  # type: ignore[assignment]


class SigningAsyncFileSystem(AsyncFileSystem):  # type: ignore[misc]
    """An async filesystem with a ``_sign`` coroutine (awaited, not run in a thread)."""

    protocol = "signedasync"
    calls: ClassVar[list[dict[str, Any]]] = []

    async def _sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        self.calls.append({"path": path, "expiration": expiration, **kwargs})
        return f"https://async.example{path}?expires={expiration}"


class SyncSigningAsyncFileSystem(AsyncFileSystem):  # type: ignore[misc]
    """An async filesystem whose ``sign()`` is plain and blocking, as gcsfs's is."""

    protocol = "syncsignedasync"
    calls: ClassVar[list[dict[str, Any]]] = []

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        self.calls.append({"main_thread": _on_main_thread(), "expiration": expiration})
        return f"https://blocking.example{path}"


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signing_memory() -> Iterator[type[SigningMemoryFileSystem]]:
    """``signedmem://`` registered with fsspec, holding ``/bucket/a.csv``; removed after.

    Registered by dotted path, as a package's entry would be: sendfs learns fsspec's
    protocols from ``fsspec.available_protocols()``, which lists only those.
    """
    dotted = f"{__name__}.{SigningMemoryFileSystem.__qualname__}"
    fsspec.register_implementation(PROTOCOL, dotted, clobber=True)
    SigningMemoryFileSystem.calls.clear()
    SigningMemoryFileSystem.failure = None
    SigningMemoryFileSystem().pipe_file("/bucket/a.csv", b"id,total\n1,10\n")
    try:
        yield SigningMemoryFileSystem
    finally:
        SigningMemoryFileSystem.store.clear()
        SigningMemoryFileSystem.pseudo_dirs[:] = [""]
        SigningMemoryFileSystem.failure = None
        # fsspec has no public way to unregister a protocol.
        known_implementations.pop(PROTOCOL, None)
        fsspec_classes.pop(PROTOCOL, None)


@pytest.fixture
def signed_fs() -> Iterator[type[SigningMemoryFileSystem]]:
    with signing_memory() as fs_class:
        yield fs_class


def _info() -> FileInfo:
    return FileInfo(size=14, name="a.csv")


async def test_a_filesystem_with_sign_presigns_with_the_expiration_asked(
    registry: StorageRegistry, signed_fs: type[SigningMemoryFileSystem]
) -> None:
    resource = await registry.open(f"{PROTOCOL}://bucket/a.csv")
    try:
        assert isinstance(resource, SyncFsResource)
        assert isinstance(resource, SignableResource)
        url = await resource.presign(
            expires=60, content_type="text/csv", content_disposition='inline; filename="a.csv"'
        )
    finally:
        await resource.aclose()
    assert url == SIGNED
    # Not GCS: only the expiration, in a worker thread.
    assert signed_fs.calls == [{"path": "/bucket/a.csv", "expiration": 60, "main_thread": False}]


async def test_gcs_gets_the_type_and_disposition_in_a_v4_signature() -> None:
    GcsLikeFileSystem.calls.clear()
    resource = SyncFsResource(GcsLikeFileSystem(), "/bucket/a.csv", _info())
    url = await resource.presign(
        expires=90, content_type="text/csv", content_disposition='attachment; filename="a.csv"'
    )
    assert url == "https://signed.example/bucket/a.csv?expires=90&sig=c2lnbmVk"
    assert GcsLikeFileSystem.calls == [
        {
            "path": "/bucket/a.csv",
            "expiration": 90,
            "main_thread": False,
            "version": "v4",
            "response_type": "text/csv",
            "response_disposition": 'attachment; filename="a.csv"',
        }
    ]


async def test_gcs_without_a_disposition_gets_no_disposition_keyword() -> None:
    GcsLikeFileSystem.calls.clear()
    resource = SyncFsResource(GcsLikeFileSystem(), "/bucket/a.csv", _info())
    await resource.presign(expires=30, content_type="text/csv")
    [call] = GcsLikeFileSystem.calls
    assert "response_disposition" not in call
    assert call["response_type"] == "text/csv"


async def test_anonymous_gcs_cannot_sign() -> None:
    class AnonymousCredentials:
        credentials = None  # what gcsfs holds for token="anon"

    GcsLikeFileSystem.calls.clear()
    fs = GcsLikeFileSystem(skip_instance_cache=True)
    fs.credentials = AnonymousCredentials()
    resource = SyncFsResource(fs, "/bucket/a.csv", _info())
    assert await resource.presign(expires=30) is None
    assert GcsLikeFileSystem.calls == []


async def test_a_plain_memory_resource_cannot_sign() -> None:
    fsspec.filesystem("memory").pipe_file("/sign-tests/a.txt", b"x")
    registry = StorageRegistry()
    try:
        resource = await registry.open("memory://sign-tests/a.txt")
        assert isinstance(resource, SignableResource)
        assert await resource.presign(expires=60, content_type="text/plain") is None
    finally:
        fsspec.filesystem("memory").rm("/sign-tests", recursive=True)
        await registry.aclose()


async def test_not_implemented_means_cannot_sign(
    signed_fs: type[SigningMemoryFileSystem],
) -> None:
    signed_fs.failure = NotImplementedError("no signing here")
    resource = SyncFsResource(signed_fs(), "/bucket/a.csv", _info())
    assert await resource.presign(expires=60) is None


async def test_a_failing_sign_is_a_backend_error_without_its_text(
    signed_fs: type[SigningMemoryFileSystem],
) -> None:
    signed_fs.failure = OSError(f"refresh with key {SECRET} refused")
    resource = SyncFsResource(signed_fs(), "/bucket/a.csv", _info())
    with pytest.raises(BackendError) as caught:
        await resource.presign(expires=60)
    message = str(caught.value)
    assert SECRET not in message
    assert message == "cannot presign '/bucket/a.csv': builtins.OSError"
    assert caught.value.__cause__ is signed_fs.failure


async def test_an_async_sign_coroutine_is_awaited() -> None:
    SigningAsyncFileSystem.calls.clear()
    fs = SigningAsyncFileSystem(asynchronous=True, skip_instance_cache=True)
    resource = AsyncFsResource(fs, "/bucket/a.csv", _info())
    assert isinstance(resource, SignableResource)
    url = await resource.presign(expires=45, content_type="text/csv")
    assert url == "https://async.example/bucket/a.csv?expires=45"
    assert SigningAsyncFileSystem.calls == [{"path": "/bucket/a.csv", "expiration": 45}]


async def test_a_blocking_sign_of_an_async_filesystem_runs_in_a_thread() -> None:
    SyncSigningAsyncFileSystem.calls.clear()
    fs = SyncSigningAsyncFileSystem(asynchronous=True, skip_instance_cache=True)
    resource = AsyncFsResource(fs, "/bucket/a.csv", _info())
    assert await resource.presign(expires=45) == "https://blocking.example/bucket/a.csv"
    assert SyncSigningAsyncFileSystem.calls == [{"main_thread": False, "expiration": 45}]


async def test_an_async_filesystem_without_sign_cannot_sign() -> None:
    fs = AsyncFileSystem(asynchronous=True, skip_instance_cache=True)
    resource = AsyncFsResource(fs, "/bucket/a.csv", _info())
    assert await resource.presign(expires=45) is None


async def test_send_file_redirects_to_the_filesystems_signed_url(
    registry: StorageRegistry, signed_fs: type[SigningMemoryFileSystem]
) -> None:
    async with client(registry, f"{PROTOCOL}://bucket/a.csv", redirect=True) as app:
        response = await app.get("/file")
    assert response.status_code == 307
    assert response.headers["location"] == SIGNED.replace("expires=60", "expires=300")
    assert response.content == b""
    [call] = signed_fs.calls
    assert call["expiration"] == 300
    assert not {"response_type", "response_disposition", "version"} & set(call)


async def test_send_file_streams_when_the_filesystem_cannot_sign(
    registry: StorageRegistry, signed_fs: type[SigningMemoryFileSystem]
) -> None:
    signed_fs.failure = NotImplementedError()
    async with client(registry, f"{PROTOCOL}://bucket/a.csv", redirect=True) as app:
        response = await app.get("/file")
    assert (response.status_code, response.content) == (200, b"id,total\n1,10\n")


async def test_redirect_required_on_memory_raises_on_the_request(
    registry: StorageRegistry,
) -> None:
    fsspec.filesystem("memory").pipe_file("/sign-tests/b.txt", b"in memory")
    try:
        async with client(registry, "memory://sign-tests/b.txt", redirect="required") as app:
            with pytest.raises(RedirectUnavailable, match="cannot presign"):
                await app.get("/file")
    finally:
        fsspec.filesystem("memory").rm("/sign-tests", recursive=True)
