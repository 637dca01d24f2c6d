"""Every filesystem fsspec knows: ``s3://``, ``gs://``, ``az://``, ``memory://``, ``zip://``...

Strategies, chosen per filesystem class:

- s3fs: native async, see :mod:`sendfs.storages.s3` (one pinned ranged GET per range).
- other async filesystems (gcsfs, adlfs, http): native async, the range read in bounded
  ``_cat_file(path, start, end)`` windows.
- sync filesystems (memory, zip, ftp, sftp...): ``fs.open()`` then ``seek``/``read`` in worker
  threads; ``memory://`` slices its buffer with ``cat_file`` instead (``open`` would copy the
  whole object).

Resources of the last two kinds presign (for redirects) with the filesystem's own ``sign()``
when its class implements it (gcsfs does): see :func:`presign_with_fsspec`.

Async filesystems are created inside the running event loop with ``asynchronous=True`` and kept
per loop, so their HTTP sessions belong to the loop that uses them;
:meth:`FsspecBackend.aclose` closes the sessions of the current loop (call it at shutdown, e.g.
from the app's lifespan).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
import fsspec
from fsspec.spec import AbstractFileSystem
from fsspec.utils import tokenize

from ..exceptions import (
    BackendError,
    MissingDependency,
    SendfsError,
    SourceChanged,
    SourceForbidden,
    SourceIsDirectory,
    SourceNotFound,
    UnknownScheme,
)
from .azure import AzureResource, close_azure_filesystem, is_azure_filesystem
from .base import DirEntry, FileInfo, ReadHint, Resource, ResourceBase
from .metadata import info_from_fsspec
from .paths import redact_url, redact_urls_in, shorten
from .s3 import S3Resource, is_s3_filesystem, open_hinted, s3_error_code, with_pool_size

__all__ = [
    "FsspecBackend",
    "filesystem_class",
    "install_hint",
    "map_open_error",
    "map_read_error",
    "presign_with_fsspec",
]

#: The ``pip install`` hint for protocols whose implementation is one of sendfs's extras.
EXTRA_FOR_PROTOCOL = {"s3": "s3", "s3a": "s3", "az": "azure", "abfs": "azure", "abfss": "azure"}

#: S3 answers that mean "no such object here". A key or bucket name no object can have (too
#: long, malformed) is one: clients choose request paths, and such a path is not a storage failure.
_NOT_FOUND_CODES = frozenset(
    {"NoSuchKey", "NoSuchBucket", "404", "KeyTooLongError", "InvalidBucketName"}
)

#: Window of one ``_cat_file`` call for async filesystems other than s3fs.
ASYNC_WINDOW = 1024 * 1024

#: Protocols of Google Cloud Storage (gcsfs), whose ``sign()`` hands its keywords to
#: google-cloud-storage's ``Blob.generate_signed_url``.
GCS_PROTOCOLS = frozenset({"gs", "gcs"})


def filesystem_class(protocol: str) -> type[AbstractFileSystem]:
    """Find the fsspec filesystem class of ``protocol``, with actionable errors.

    Args:
        protocol: A URL scheme such as ``"s3"`` or ``"memory"``.

    Raises:
        MissingDependency: fsspec knows the protocol but its package is not installed.
        UnknownScheme: fsspec does not know the protocol.
    """
    try:
        cls: type[AbstractFileSystem] = fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        raise MissingDependency(install_hint(protocol, exc)) from exc
    except ValueError as exc:
        raise UnknownScheme(f"fsspec knows no protocol {protocol!r}") from exc
    return cls


def install_hint(protocol: str, exc: ImportError) -> str:
    """What to install for ``protocol``, from the error fsspec raised when importing it.

    sendfs's own extras for S3 and Azure (which pin versions sendfs is tested with); for any
    other protocol the module found missing (``pip install gcsfs``) and fsspec's own advice,
    the ``err`` text of ``fsspec.registry.known_implementations``.

    Args:
        protocol: The URL scheme.
        exc: The ``ImportError`` of ``fsspec.get_filesystem_class``; the import that failed
            is on its ``__cause__``.
    """
    extra = EXTRA_FOR_PROTOCOL.get(protocol)
    if extra is not None:
        return (
            f"the {protocol!r} scheme needs sendfs's {extra} extra: pip install 'sendfs[{extra}]'"
        )
    advice = f"fsspec says: {exc}" if str(exc) else "fsspec gives no advice"
    cause = exc.__cause__
    missing = cause.name if isinstance(cause, ModuleNotFoundError) else None
    if not missing:
        return f"the {protocol!r} scheme needs a package that could not be imported ({advice})"
    # The top-level module is the distribution's name for every implementation fsspec lists.
    package = missing.partition(".")[0]
    return (
        f"the {protocol!r} scheme needs {package}, which is not installed: "
        f"pip install {package} ({advice})"
    )


def map_open_error(exc: BaseException, url: str) -> Exception:
    """Map an error raised while opening a source of any storage into the sendfs error tree.

    Args:
        exc: What the filesystem raised.
        url: The source, for the message (user info and query masked: see ``redact_url``).
    """
    if isinstance(exc, SendfsError):
        return exc
    shown = shorten(redact_url(url))
    failure = _failure_behind_not_found(exc)
    if failure is not None:
        return _map_http_failure(failure, shown)
    code = s3_error_code(exc)
    if isinstance(exc, IsADirectoryError):
        return SourceIsDirectory(f"{shown!r} is a directory")
    if isinstance(exc, FileNotFoundError | NotADirectoryError) or code in _NOT_FOUND_CODES:
        return SourceNotFound(f"no object at {shown!r}")
    if isinstance(exc, PermissionError) or code in {"AccessDenied", "403"}:
        return SourceForbidden(f"access to {shown!r} denied")
    return BackendError(f"cannot open {shown!r}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """What failed, for a message that may be logged.

    An HTTP answer (aiohttp's ``ClientResponseError`` carries its ``status``) is told by its
    status alone, as its text quotes the whole request URL, query (a signature) included; any
    other error by its repr with the URLs in it masked.
    """
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"the origin answered HTTP {status}"
    return redact_urls_in(repr(exc))


def _failure_behind_not_found(exc: BaseException) -> BaseException | None:
    """The failure a ``FileNotFoundError`` stands for, when it is not a missing object.

    fsspec's http filesystem raises ``FileNotFoundError`` for every failure of its info call
    and keeps the real one on ``__cause__``: an HTTP answer (aiohttp's ``ClientResponseError``
    carries its ``status``), a refused or dropped connection, a timeout. Those are told apart
    here so that an unreachable or failing origin is a 502, not a 404. Other storages' causes
    (s3fs keeps botocore's ``NoSuchKey`` there) stay a missing object.
    """
    cause = exc.__cause__
    if not isinstance(exc, FileNotFoundError) or cause is None:
        return None
    if isinstance(getattr(cause, "status", None), int):
        return cause
    if isinstance(cause, FileNotFoundError | NotADirectoryError | PermissionError):
        return None
    if isinstance(cause, OSError | asyncio.TimeoutError) or _is_aiohttp_error(cause):
        return cause
    return None


def _is_aiohttp_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of aiohttp's (without importing aiohttp to ask)."""
    return any(kind.__module__.split(".")[0] == "aiohttp" for kind in type(exc).__mro__)


def _map_http_failure(failure: BaseException, shown: str) -> Exception:
    """The sendfs error for a failure found by :func:`_failure_behind_not_found`."""
    status = getattr(failure, "status", None)
    if status in {404, 410}:
        return SourceNotFound(f"no object at {shown!r} (HTTP {status})")
    if status in {401, 403}:
        return SourceForbidden(f"access to {shown!r} denied (HTTP {status})")
    return BackendError(f"cannot open {shown!r}: {_describe(failure)}")


def map_read_error(exc: BaseException, path: str) -> Exception:
    """Map an error raised while reading an opened object: it vanished, or the storage failed.

    Args:
        exc: What the filesystem raised.
        path: The object's path, for the message (for http(s) the whole URL: masked).
    """
    shown = shorten(redact_url(path))
    if isinstance(exc, FileNotFoundError):
        return SourceChanged(f"{shown!r} disappeared while it was being read")
    return BackendError(f"reading {shown!r} failed: {_describe(exc)}")


async def presign_with_fsspec(
    fs: Any,
    path: str,
    *,
    expires: int,
    content_type: str | None = None,
    content_disposition: str | None = None,
) -> str | None:
    """A presigned GET URL of ``path`` made by the filesystem's own ``sign()``.

    An async ``_sign`` coroutine, when the class has one, is awaited; otherwise ``sign()``
    runs in a worker thread, as it may do I/O (gcsfs refreshes credentials, or asks Google's
    IAM service to sign). Only Google Cloud Storage (``gs://``, ``gcs://``) is asked to make
    its answer carry ``content_type`` and ``content_disposition`` (``response_type`` and
    ``response_disposition`` of ``Blob.generate_signed_url``), in a V4 signature, which
    covers them; every other filesystem gets ``sign(path, expiration=expires)`` alone, as
    fsspec defines no keyword for them, so its URL serves the object with the name and type
    it is stored with.

    Args:
        fs: The filesystem instance.
        path: The object's path, without protocol.
        expires: Lifetime of the URL in seconds, passed as ``expiration``.
        content_type: The Content-Type the answer should carry (GCS only).
        content_disposition: The Content-Disposition the answer should carry (GCS only).

    Returns:
        The URL, or ``None`` when the filesystem cannot sign: its class keeps fsspec's
        ``sign()``, or its ``sign()`` raised ``NotImplementedError`` or returned nothing, or
        (GCS) its credentials are anonymous or hold no signer (a user's token).

    Raises:
        BackendError: ``sign()`` failed; the message names the error's type only, since
            signing errors may quote keys or tokens (the error itself is on ``__cause__``).

    Security:
        The URL is a bearer credential for the object until it expires. GCS applies
        ``response-content-type`` and ``response-content-disposition`` only to objects stored
        without a Content-Type and Content-Disposition of their own: to force a download of
        untrusted content there, store the object with those fields.
    """
    gcs = _is_gcs(fs)
    if gcs and not _gcs_credentials_sign(fs):
        return None
    kwargs = _gcs_sign_options(content_type, content_disposition) if gcs else {}
    native = getattr(fs, "_sign", None)
    try:
        if inspect.iscoroutinefunction(native):
            url = await native(path, expiration=expires, **kwargs)
        elif type(fs).sign is AbstractFileSystem.sign:
            return None
        else:
            url = await anyio.to_thread.run_sync(
                lambda: fs.sign(path, expiration=expires, **kwargs)
            )
    except NotImplementedError:
        return None
    except SendfsError:
        raise
    except Exception as exc:
        raise BackendError(
            f"cannot presign {shorten(redact_url(path))!r}: {_describe_sign_failure(exc)}"
        ) from exc
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        raise BackendError(f"{type(fs).__name__}.sign() returned {type(url).__name__}, not a URL")
    return url


def _is_gcs(fs: Any) -> bool:
    """Whether ``fs`` serves a Google Cloud Storage protocol (gcsfs: ``gs``, ``gcs``)."""
    protocol = getattr(fs, "protocol", ())
    protocols = {protocol} if isinstance(protocol, str) else set(protocol)
    return bool(protocols & GCS_PROTOCOLS)


def _gcs_credentials_sign(fs: Any) -> bool:
    """Whether gcsfs's credentials can sign: not anonymous, and holding a signer.

    google-cloud-storage signs only with ``google.auth.credentials.Signing`` credentials (a
    service account) and raises ``AttributeError`` for the others (a user's token, bare
    Compute Engine credentials): those cannot sign, which is not a storage failure.
    """
    holder = getattr(fs, "credentials", None)
    if holder is None or not hasattr(holder, "credentials"):
        return True  # not gcsfs's credential holder: let sign() decide
    credentials = holder.credentials
    if credentials is None:  # token="anon"
        return False
    try:
        signing = importlib.import_module("google.auth.credentials").Signing
    except (ImportError, AttributeError):
        return True
    return isinstance(credentials, signing)


def _gcs_sign_options(content_type: str | None, content_disposition: str | None) -> dict[str, str]:
    """The ``sign()`` keywords that make GCS answer with this type and disposition.

    The signature is V4, which covers the query (the default, V2, does not: anyone holding
    the URL could change the answer's headers) and, like S3's, lasts at most 7 days.
    """
    # Not ``content_type``: for google-cloud-storage that is the request's own type (uploads).
    options = {"response_type": content_type, "response_disposition": content_disposition}
    return {"version": "v4", **{name: value for name, value in options.items() if value}}


def _describe_sign_failure(exc: BaseException) -> str:
    """What failed, told without the error's text, which may quote a key or a token."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"the storage answered HTTP {status}"
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


class _FsSigning:
    """``presign`` for resources of generic fsspec filesystems (gcsfs and any other)."""

    _fs: Any
    _path: str

    @property
    def presign_sets_headers(self) -> bool:
        """Whether presigned URLs carry the type and disposition (on GCS only)."""
        return _is_gcs(self._fs)

    async def presign(
        self,
        *,
        expires: int,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        """A URL that serves this object with a plain GET, made by the filesystem's ``sign()``.

        Args:
            expires: Lifetime of the URL in seconds.
            content_type: The Content-Type the storage should answer with; only GCS takes it
                (``response_type``), other filesystems serve the type stored with the object.
            content_disposition: The Content-Disposition the storage should answer with; only
                GCS takes it (``response_disposition``), other filesystems serve the object's
                own.

        Returns:
            The URL, or ``None`` when the filesystem cannot sign (it does not implement
            ``sign()``, or these credentials cannot). It is not pinned to the opened version
            unless the path names one (a gcsfs ``#generation``).

        Raises:
            sendfs.exceptions.BackendError: The filesystem failed to sign.

        Security:
            The URL lets anyone holding it read this object until it expires: keep
            ``expires`` short and never log it.
        """
        return await presign_with_fsspec(
            self._fs,
            self._path,
            expires=expires,
            content_type=content_type,
            content_disposition=content_disposition,
        )


class SyncFsResource(_FsSigning, ResourceBase):
    """An object on a synchronous fsspec filesystem, read in worker threads.

    It presigns with the filesystem's ``sign()``, when its class implements one.

    Args:
        fs: The filesystem instance.
        path: The path without protocol.
        info: Its metadata.
    """

    def __init__(self, fs: AbstractFileSystem, path: str, info: FileInfo) -> None:
        self._fs = fs
        self._path = path
        self._info = info

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield ``[start, stop)``; one file handle per call, closed in ``finally``."""
        end = self.range_end(stop)
        if start >= end:
            return
        if type(self._fs).__name__ == "MemoryFileSystem":
            read = self._memory_reader()
            handle = None
        else:
            handle = await self._run(self._fs.open, self._path, "rb", block_size=0)
            read = self._handle_reader(handle)
        try:
            offset = start
            while offset < end:
                data = await self._run(read, offset, min(chunk_size, end - offset))
                if not data:
                    shown = redact_url(self._path)
                    raise SourceChanged(f"{shown!r} shrank while it was being read")
                offset += len(data)
                yield data
        finally:
            if handle is not None:
                with anyio.CancelScope(shield=True):  # close even when cancelled
                    await anyio.to_thread.run_sync(handle.close)

    def _memory_reader(self) -> Callable[[int, int], bytes]:
        def read(offset: int, size: int) -> bytes:
            data: bytes = self._fs.cat_file(self._path, start=offset, end=offset + size)
            return data

        return read

    @staticmethod
    def _handle_reader(handle: Any) -> Callable[[int, int], bytes]:
        def read(offset: int, size: int) -> bytes:
            if handle.tell() != offset:
                handle.seek(offset)
            data: bytes = handle.read(size)
            return data

        return read

    async def _run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: func(*args, **kwargs))
        except SendfsError:
            raise
        except Exception as exc:
            raise map_read_error(exc, self._path) from exc


class AsyncFsResource(_FsSigning, ResourceBase):
    """An object on an async fsspec filesystem other than s3fs, read in bounded windows.

    It presigns with the filesystem's ``_sign`` coroutine or ``sign()`` (gcsfs), if any.

    Args:
        fs: The filesystem, created with ``asynchronous=True`` in the running loop.
        path: The path without protocol.
        info: Its metadata.
    """

    chunk_size_hint = ASYNC_WINDOW

    def __init__(self, fs: Any, path: str, info: FileInfo) -> None:
        self._fs = fs
        self._path = path
        self._info = info

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield ``[start, stop)`` in ``chunk_size`` pieces.

        One ``_cat_file`` request per window of at least 1 MiB, however small the chunks.
        """
        end = self.range_end(stop)
        window = max(chunk_size, ASYNC_WINDOW)
        offset = start
        while offset < end:
            window_end = min(offset + window, end)
            try:
                data: bytes = await self._fs._cat_file(self._path, start=offset, end=window_end)
            except Exception as exc:
                raise map_read_error(exc, self._path) from exc
            if len(data) != window_end - offset:
                raise SourceChanged(f"{redact_url(self._path)!r} changed while it was being read")
            offset = window_end
            if len(data) <= chunk_size:
                yield data
                continue
            view = memoryview(data)
            for piece in range(0, len(data), chunk_size):
                yield bytes(view[piece : piece + chunk_size])


class FsspecBackend:
    """The backend for fsspec URLs: one instance serves every protocol fsspec knows."""

    def __init__(self) -> None:
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def open(self, source: Any, **options: Any) -> Resource:
        """Open an fsspec URL.

        Args:
            source: A URL such as ``"s3://bucket/key"`` or ``"memory://exports/a.csv"``.
            **options: Storage options for the filesystem (credentials, ``endpoint_url``...).

        Raises:
            UnknownScheme: fsspec knows no such protocol.
            MissingDependency: The protocol's package is not installed.
            SourceNotFound: No such object.
            SourceIsDirectory: A directory or prefix.
            SourceForbidden: The storage refused access.
            BackendError: Anything else the storage raised.
        """
        url = str(source)
        fs, path = await self._filesystem(url, options)
        try:
            if fs.async_impl:
                fs.invalidate_cache(path)
                raw = await fs._info(path)
            else:
                raw = await anyio.to_thread.run_sync(_fresh_info, fs, path)
        except Exception as exc:
            raise map_open_error(exc, url) from exc
        if raw.get("type") == "directory":
            raise SourceIsDirectory(f"{redact_url(url)!r} is a directory")
        info = info_from_fsspec(raw, path=path)
        if fs.async_impl and is_s3_filesystem(fs):
            return S3Resource(fs, path, info)
        if fs.async_impl and is_azure_filesystem(fs):
            return AzureResource(fs, path, info)
        if fs.async_impl:
            return AsyncFsResource(fs, path, info)
        return SyncFsResource(fs, path, info)

    async def open_hinted(self, source: Any, hint: ReadHint, **options: Any) -> Resource:
        """Open an fsspec URL for the read ``hint`` describes.

        On S3 the metadata and the hinted bytes come from one ``get_object`` request (see
        :func:`sendfs.storages.s3.open_hinted`); other storages are opened as by :meth:`open`.

        Args:
            source: A URL such as ``"s3://bucket/key"``.
            hint: The range and preconditions of the request.
            **options: Storage options for the filesystem.

        Raises:
            sendfs.exceptions.SendfsError: As :meth:`open`.
        """
        url = str(source)
        fs, path = await self._filesystem(url, options)
        if fs.async_impl and is_s3_filesystem(fs):
            try:
                resource = await open_hinted(fs, path, hint)
            except Exception as exc:
                raise map_open_error(exc, url) from exc
            if resource is not None:
                return resource
        return await self.open(source, **options)

    async def list(self, source: Any, **options: Any) -> list[DirEntry]:
        """List a directory or object-store prefix, directories first, then by name.

        Args:
            source: A URL such as ``"s3://bucket/prefix/"``.
            **options: Storage options for the filesystem.

        Raises:
            SourceNotFound: No such directory (or ``source`` is a file).
        """
        url = str(source)
        fs, path = await self._filesystem(url, options)
        try:
            if fs.async_impl:
                fs.invalidate_cache(path)
                raw = await fs._ls(path, detail=True)
            else:
                raw = await anyio.to_thread.run_sync(lambda: fs.ls(path, detail=True))
        except Exception as exc:
            raise map_open_error(exc, url) from exc
        own = path.rstrip("/")
        items = [item for item in raw if str(item.get("name", "")).rstrip("/") != own]
        if not items and any(item.get("type") == "file" for item in raw):
            raise SourceNotFound(f"{redact_url(url)!r} is a file, not a directory")
        entries = [_entry(item) for item in items]
        return sorted(entries, key=lambda entry: (not entry.is_dir, entry.name))

    async def _filesystem(self, url: str, options: dict[str, Any]) -> tuple[Any, str]:
        """The filesystem instance for ``url`` and the path within it."""
        protocol = fsspec.core.split_protocol(url)[0] or "file"
        cls = filesystem_class(protocol)
        path = cls._strip_protocol(url)
        storage_options = {**cls._get_kwargs_from_urls(url), **options}
        try:
            if cls.async_impl:
                return await self._async_filesystem(cls, protocol, storage_options), path
            return await anyio.to_thread.run_sync(lambda: cls(**storage_options)), path
        except SendfsError:
            raise
        except Exception as exc:
            raise map_open_error(exc, url) from exc

    async def _async_filesystem(
        self, cls: type[AbstractFileSystem], protocol: str, options: dict[str, Any]
    ) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise BackendError(
                f"the {protocol!r} filesystem is asyncio-based; run the app on asyncio"
            ) from exc
        key = tokenize(cls.__module__, cls.__qualname__, options)
        instances = self._async.setdefault(loop, {})
        fs = instances.get(key)
        if fs is None:
            kwargs = dict(options)
            # s3fs retries every call ``fs.retries`` times (5) on top of botocore's policy, but
            # takes no ``retries`` argument: set it on the instance, so the time before a 502
            # can be bounded.
            retries = kwargs.pop("retries", None) if is_s3_filesystem(cls) else None
            if retries is not None and (not isinstance(retries, int) or retries < 1):
                raise ValueError(f"retries must be a positive int, not {retries!r}")
            if is_s3_filesystem(cls):
                kwargs = with_pool_size(kwargs)
            fs = cls(asynchronous=True, skip_instance_cache=True, **kwargs)
            if retries is not None:
                fs.retries = retries
            instances[key] = fs
        return fs

    async def aclose(self) -> None:
        """Close the sessions of the async filesystems created in the running loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for fs in self._async.pop(loop, {}).values():
            await _close_async_filesystem(fs)

    def __repr__(self) -> str:
        return "FsspecBackend()"


def _entry(item: dict[str, Any]) -> DirEntry:
    is_dir = item.get("type") == "directory"
    info = info_from_fsspec(item, path=str(item.get("name", "")))
    return DirEntry(
        name=info.name or "",
        is_dir=is_dir,
        size=None if is_dir else info.size,
        mtime=info.mtime,
    )


def _fresh_info(fs: AbstractFileSystem, path: str) -> dict[str, Any]:
    fs.invalidate_cache(path)
    info: dict[str, Any] = fs.info(path)
    return info


async def _close_async_filesystem(fs: Any) -> None:
    """Close the client session of an async filesystem (s3fs and aiohttp-based ones)."""
    creator = getattr(fs, "_s3creator", None)
    if creator is not None:
        await creator.__aexit__(None, None, None)
        fs._s3 = None
        return
    if is_azure_filesystem(fs):
        await close_azure_filesystem(fs)
        return
    session = getattr(fs, "_session", None)
    close = getattr(session, "close", None)
    if close is not None and asyncio.iscoroutinefunction(close):
        await close()
