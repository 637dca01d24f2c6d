"""Local files: ``str`` and ``os.PathLike`` paths, and ``file://`` URLs.

The file is opened and ``fstat``-ed in one worker-thread call when the resource opens, so the
metadata describes exactly the file that is then read (a rename in between cannot swap it).
Reads are positional (``os.pread``) in worker threads; the event loop never touches the disk.
A plain GET of a small file (:data:`SMALL_FILE`) is opened and read in that same call: one
thread hop per request instead of two.

Security: this backend serves whatever path it is given. Never pass a user-supplied path to it;
join user paths onto a root with :func:`sendfs.storages.paths.safe_join` (what
``send_from_storage`` does).
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread

from ..exceptions import (
    BackendError,
    SourceChanged,
    SourceForbidden,
    SourceIsDirectory,
    SourceNotFound,
    UnsafePath,
)
from .base import DirEntry, FileInfo, ReadHint, ResourceBase
from .metadata import derived_etag, to_utc_datetime

__all__ = ["SMALL_FILE", "LocalBackend", "LocalResource", "is_within"]

#: Files up to this many bytes are read whole when opened for a plain GET.
SMALL_FILE = 64 * 1024

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS |= getattr(os, "O_BINARY", 0)


def is_within(path: str, root: str) -> bool:
    """Tell whether ``path``, symbolic links resolved, lies inside the directory ``root``.

    Args:
        path: The candidate path.
        root: The directory it must stay in (``/srv/files`` does not contain
            ``/srv/files-private/x``: the comparison is by whole path segments).
    """
    real_root = os.path.realpath(root)
    real_path = os.path.realpath(path)
    return real_path == real_root or real_path.startswith(real_root.rstrip(os.sep) + os.sep)


def _open_regular_file(path: str, root: str | None = None) -> tuple[str, int, os.stat_result]:
    """Open ``path`` read-only and stat it; refuse anything but a regular file.

    ``O_NONBLOCK`` keeps a FIFO from blocking the worker thread forever; it has no effect on
    regular files. With ``root``, a path whose symbolic links lead outside it is refused, and
    the *resolved* path is what gets opened (with ``O_NOFOLLOW``), so a link swapped in after
    the check cannot redirect the open. Returns the path opened, the descriptor and its stat.
    """
    flags = _OPEN_FLAGS
    if root is not None:
        if not is_within(path, root):
            raise UnsafePath(f"{path!r} resolves outside {root!r}")
        path = os.path.realpath(path)
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(path) if stat.S_ISDIR(st.st_mode) else FileNotFoundError(path)
    except BaseException:
        os.close(fd)
        raise
    return path, fd, st


def _open_small_file(
    path: str, root: str | None = None
) -> tuple[str, int, os.stat_result, bytes | None]:
    """:func:`_open_regular_file`, and the whole content when the file is small.

    The content is ``None`` for a larger file, and for one that changed between the ``fstat``
    and the read: it is then read chunk by chunk, which notices the change.
    """
    opened, fd, st = _open_regular_file(path, root)
    if st.st_size > SMALL_FILE:
        return opened, fd, st, None
    try:
        data = _read_at(fd, st.st_size, 0)
        after = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    unchanged = len(data) == st.st_size and (after.st_size, after.st_mtime_ns) == (
        st.st_size,
        st.st_mtime_ns,
    )
    return opened, fd, st, data if unchanged else None


def _read_at(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows has no pread
    return os.read(fd, size)  # pragma: no cover


def _read_chunk(
    fd: int, size: int, offset: int, last: bool
) -> tuple[bytes, tuple[int, int] | None]:
    """Read a chunk; with ``last``, also the file's (size, mtime_ns) after it, in the same hop.

    A file truncated or rewritten in place during a download is caught by comparing that stamp
    with the one taken at open time.
    """
    data = _read_at(fd, size, offset)
    if not last:
        return data, None
    st = os.fstat(fd)
    return data, (st.st_size, st.st_mtime_ns)


def map_os_error(exc: OSError, source: object) -> Exception:
    """Map an ``OSError`` from the file system into the sendfs error tree.

    Args:
        exc: The error raised by ``os.open``, ``os.stat`` and friends.
        source: What was being opened, for the message.

    Returns:
        The sendfs error to raise ``from exc``.
    """
    if isinstance(exc, IsADirectoryError):
        return SourceIsDirectory(f"{source!r} is a directory")
    if isinstance(exc, NotADirectoryError):
        return SourceNotFound(f"{source!r} is not a directory (or a path through a file)")
    if isinstance(exc, FileNotFoundError):
        return SourceNotFound(f"{source!r} does not exist")
    if isinstance(exc, PermissionError):
        return SourceForbidden(f"permission denied for {source!r}")
    return BackendError(f"cannot read {source!r}: {exc}")


class LocalResource(ResourceBase):
    """An open local file.

    Args:
        path: The file's path (kept for servers that can send a file by path).
        fd: An open, read-only descriptor the resource now owns.
        st: The ``fstat`` result of ``fd``.
        name: The download name, when it differs from the base name of ``path``.
        content: The whole file, read with ``st``; ranges are then served from it.
    """

    def __init__(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        name: str | None = None,
        content: bytes | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self._stamp = (st.st_size, st.st_mtime_ns)
        self._fd: int | None = fd
        self._content = content
        self._info = FileInfo(
            size=st.st_size,
            mtime=to_utc_datetime(st.st_mtime),
            etag=derived_etag(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size),
            name=name or os.path.basename(path) or None,
        )

    async def iter_range(
        self, start: int, stop: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """Yield ``[start, stop)`` of the file, reading in worker threads."""
        fd = self._fd
        if fd is None:
            raise BackendError(f"{self.path!r} is closed")
        end = self.range_end(stop)
        if self._content is not None:
            content = self._content
            for offset in range(start, end, chunk_size):
                yield content[offset : min(offset + chunk_size, end)]
            return
        offset = start
        while offset < end:
            want = min(chunk_size, end - offset)
            last = offset + want >= end
            try:
                data, stamp = await anyio.to_thread.run_sync(_read_chunk, fd, want, offset, last)
            except OSError as exc:
                raise map_os_error(exc, self.path) from exc
            if not data or (stamp is not None and stamp != self._stamp):
                # Caught before the last chunk goes out: the client sees an aborted response.
                raise SourceChanged(f"{self.path!r} changed while it was being read")
            offset += len(data)
            yield data

    async def aclose(self) -> None:
        """Close the descriptor (once)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class LocalBackend:
    """The backend for local paths and ``file://`` URLs (already turned into paths)."""

    async def open(self, source: Any, **options: Any) -> LocalResource:
        """Open a local regular file.

        Args:
            source: A ``str`` or ``os.PathLike`` path.
            **options: ``root``: a directory the file must stay inside once symbolic links
                are resolved (set by mounts and ``send_from_storage``). Others are ignored.

        Raises:
            SourceNotFound: No such file, or a FIFO or device.
            SourceIsDirectory: A directory.
            UnsafePath: With ``root``, the path leads outside it through a symbolic link.
            SourceForbidden: The process may not read it.
            BackendError: Any other operating-system error.
        """
        return await self._open(source, options, read_small=False)

    async def open_hinted(self, source: Any, hint: ReadHint, **options: Any) -> LocalResource:
        """Open a local regular file for a GET; a small one is read in the same thread hop.

        Conditional GETs (the hint carries preconditions) are opened plainly: they are most
        often answered 304, without the bytes.

        Args:
            source: A ``str`` or ``os.PathLike`` path.
            hint: The request's range and preconditions.
            **options: As for :meth:`open`.

        Raises:
            SendfsError: As :meth:`open`.
        """
        plain = hint.if_match is None and hint.if_none_match is None
        plain = plain and hint.if_modified_since is None and hint.if_unmodified_since is None
        return await self._open(source, options, read_small=plain)

    async def _open(
        self, source: Any, options: dict[str, Any], *, read_small: bool
    ) -> LocalResource:
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if "\x00" in path:
            raise SourceNotFound("a path with a NUL character names no file")
        content: bytes | None = None
        try:
            if read_small:
                opened, fd, st, content = await anyio.to_thread.run_sync(
                    _open_small_file, path, options.get("root")
                )
            else:
                opened, fd, st = await anyio.to_thread.run_sync(
                    _open_regular_file, path, options.get("root")
                )
        except OSError as exc:
            raise map_os_error(exc, path) from exc
        # The download is named after what was asked for, even through a symbolic link.
        return LocalResource(opened, fd, st, name=os.path.basename(path), content=content)

    async def list(self, source: Any, **options: Any) -> list[DirEntry]:
        """List a local directory, directories first, then by name.

        Args:
            source: The directory's path.
            **options: ``root``, as for :meth:`open`; symbolic links in the directory that
                lead outside it are left out of the listing.

        Raises:
            SourceNotFound: No such directory, or a file.
            UnsafePath: With ``root``, the directory lies outside it through a symbolic link.
        """
        path = os.fspath(source)
        if "\x00" in path:
            raise SourceNotFound("a path with a NUL character names no directory")
        try:
            return await anyio.to_thread.run_sync(_scan_directory, path, options.get("root"))
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    def __repr__(self) -> str:
        return "LocalBackend()"


def _scan_directory(path: str, root: str | None) -> list[DirEntry]:
    if root is not None and not is_within(path, root):
        raise UnsafePath(f"{path!r} resolves outside {root!r}")
    entries = []
    with os.scandir(path) as found:
        for entry in found:
            if root is not None and entry.is_symlink() and not is_within(entry.path, root):
                continue  # served as 404: listing it would leak its size and mtime
            try:
                st = entry.stat()
            except OSError:  # a dangling symbolic link: nothing to serve
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            size = None if is_dir else st.st_size
            entries.append(DirEntry(entry.name, is_dir, size, to_utc_datetime(st.st_mtime)))
    return sorted(entries, key=lambda entry: (not entry.is_dir, entry.name))
